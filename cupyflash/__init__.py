"""cupyflash: FlashAttention's forward pass for every array library.

    import cupyflash
    out = cupyflash.attention(q, k, v, causal=True)        # NumPy, CuPy, torch or JAX arrays
    print(cupyflash.explain(q, k, v, causal=True))        # which kernel would run, and why
    ref = cupyflash.reference.attention(q, k, v)          # explicit float64 CPU reference

Importing cupyflash imports neither torch nor jax (nor CuPy: it is loaded on
the first GPU call).
"""

from . import errors, reference
from ._compile import compile_count, no_compile
from ._dispatch import Plan
from .api import attention, explain
from .errors import (
    ArgumentError,
    CompileError,
    CompileInTimedRegionError,
    CupyflashError,
    DeviceError,
    DTypeError,
    LayoutError,
    NoGPUError,
    ShapeError,
)

__version__ = "0.1.0"

__all__ = [
    "attention", "explain", "reference", "errors", "Plan", "compile_count", "no_compile",
    "CupyflashError", "ShapeError", "DTypeError", "LayoutError", "DeviceError", "ArgumentError",
    "NoGPUError", "CompileError", "CompileInTimedRegionError", "__version__",
]
