"""Array adapters: one per array library, chosen by the array's type.

No framework is imported here: a torch or jax array can only reach us if the
caller already imported its library, so we take the module from ``sys.modules``.
Each adapter reads metadata without touching the data (``describe``), and
converts to and from CuPy at the public boundary only.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

_TORCH_DTYPES = ("float16", "bfloat16", "float32", "float64")


@dataclass(frozen=True)
class ArrayInfo:
    """What validation needs to know about one array; no data access."""

    shape: tuple[int, ...]
    dtype: str  # canonical name: "float16", "bfloat16", "float32", ...
    strides: tuple[int, ...]  # in elements
    device: str  # "cpu" or "cuda:N"
    kind: str  # which adapter


def _top_module(x: object) -> str:
    return type(x).__module__.split(".")[0]


def _np_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= max(n, 1)
    return tuple(reversed(strides))


class NumpyAdapter:
    """Host arrays: copied to the current GPU, the result copied back."""

    kind = "numpy"

    @staticmethod
    def matches(x: object) -> bool:
        return isinstance(x, np.ndarray)

    @staticmethod
    def describe(x: np.ndarray) -> ArrayInfo:
        itemsize = x.dtype.itemsize
        strides = tuple(s // itemsize if s % itemsize == 0 else s / itemsize for s in x.strides)
        return ArrayInfo(tuple(x.shape), str(x.dtype), strides, "cpu", "numpy")

    @staticmethod
    def pointer(x) -> int | None:
        return None  # host data: copied to a fresh, aligned device buffer

    @staticmethod
    def caller_stream(x, device_id: int):
        import cupy

        return cupy.cuda.get_current_stream()

    @staticmethod
    def to_cupy(x: np.ndarray):
        import cupy

        return cupy.asarray(x)

    @staticmethod
    def empty(template, shape, dtype: str, device_id: int):
        import cupy

        return None, cupy.empty(shape, dtype=_np_dtype(dtype))

    @staticmethod
    def finish(native, cp_array, out=None):
        # Host results need the data: this copy waits for the stream (not the device).
        if out is not None:
            cp_array.get(out=out)
            return out
        return cp_array.get()


class CupyAdapter:
    kind = "cupy"

    @staticmethod
    def matches(x: object) -> bool:
        return _top_module(x) == "cupy" and type(x).__name__ == "ndarray"

    @staticmethod
    def describe(x) -> ArrayInfo:
        itemsize = x.dtype.itemsize
        strides = tuple(s // itemsize if s % itemsize == 0 else s / itemsize for s in x.strides)
        return ArrayInfo(tuple(x.shape), str(x.dtype), strides, f"cuda:{x.device.id}", "cupy")

    @staticmethod
    def pointer(x) -> int | None:
        return x.data.ptr

    @staticmethod
    def caller_stream(x, device_id: int):
        import cupy

        return cupy.cuda.get_current_stream()

    @staticmethod
    def to_cupy(x):
        return x

    @staticmethod
    def empty(template, shape, dtype: str, device_id: int):
        import cupy

        return None, cupy.empty(shape, dtype=_np_dtype(dtype))

    @staticmethod
    def finish(native, cp_array, out=None):
        return cp_array


class TorchAdapter:
    """torch CUDA tensors, shared with CuPy over DLPack (zero-copy)."""

    kind = "torch"

    @staticmethod
    def matches(x: object) -> bool:
        return _top_module(x) == "torch" and hasattr(x, "data_ptr")

    @staticmethod
    def describe(x) -> ArrayInfo:
        dtype = str(x.dtype).removeprefix("torch.")
        dev = x.device
        device = f"cuda:{dev.index}" if dev.type == "cuda" else dev.type
        return ArrayInfo(tuple(x.shape), dtype, tuple(x.stride()), device, "torch")

    @staticmethod
    def pointer(x) -> int | None:
        return x.data_ptr()

    @staticmethod
    def caller_stream(x, device_id: int):
        import cupy

        torch = sys.modules["torch"]
        ptr = torch.cuda.current_stream(x.device).cuda_stream
        return cupy.cuda.ExternalStream(ptr, device_id)

    @staticmethod
    def to_cupy(x):
        import cupy

        # Called with the launch stream current: torch sees the consumer stream
        # and orders itself before it (no device-wide synchronisation).
        return cupy.from_dlpack(x)

    @staticmethod
    def empty(template, shape, dtype: str, device_id: int):
        import cupy

        torch = sys.modules["torch"]
        native = torch.empty(shape, dtype=getattr(torch, dtype), device=template.device)
        return native, cupy.from_dlpack(native)

    @staticmethod
    def finish(native, cp_array, out=None):
        return out if out is not None else native


class JaxAdapter:
    """JAX GPU arrays over DLPack; results are handed back through DLPack too."""

    kind = "jax"

    @staticmethod
    def matches(x: object) -> bool:
        return _top_module(x) in ("jax", "jaxlib") and hasattr(x, "devices")

    @staticmethod
    def describe(x) -> ArrayInfo:
        (dev,) = tuple(x.devices())
        device = f"cuda:{dev.id}" if dev.platform in ("gpu", "cuda") else dev.platform
        shape = tuple(x.shape)
        return ArrayInfo(shape, str(x.dtype), _c_strides(shape), device, "jax")

    @staticmethod
    def pointer(x) -> int | None:
        return x.unsafe_buffer_pointer()

    @staticmethod
    def caller_stream(x, device_id: int):
        import cupy

        # JAX has no user-visible current stream; the DLPack handshake orders
        # JAX's producer stream before ours and ours before JAX's consumer.
        return cupy.cuda.get_current_stream()

    @staticmethod
    def to_cupy(x):
        import cupy

        return cupy.from_dlpack(x)

    @staticmethod
    def empty(template, shape, dtype: str, device_id: int):
        import cupy

        return None, cupy.empty(shape, dtype=_np_dtype(dtype))

    @staticmethod
    def finish(native, cp_array, out=None):
        jax = sys.modules["jax"]
        return jax.dlpack.from_dlpack(cp_array)


ADAPTERS = (NumpyAdapter, CupyAdapter, TorchAdapter, JaxAdapter)


def adapter_for(x: object, name: str):
    for adapter in ADAPTERS:
        if adapter.matches(x):
            return adapter
    from .errors import DTypeError

    raise DTypeError(f"{name}: expected a NumPy, CuPy, PyTorch or JAX array, got {type(x).__module__}."
                     f"{type(x).__name__}")
