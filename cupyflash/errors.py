"""Exceptions raised by cupyflash. Every message names the offending argument."""

from __future__ import annotations


class CupyflashError(Exception):
    """Base class of every cupyflash error."""


class ShapeError(CupyflashError, ValueError):
    """An argument has the wrong number of dimensions, or sizes that disagree."""


class DTypeError(CupyflashError, TypeError):
    """An argument has an unsupported dtype, or dtypes disagree."""


class LayoutError(CupyflashError, ValueError):
    """An argument's memory layout is not accepted (for example a strided last axis)."""


class DeviceError(CupyflashError, ValueError):
    """Arguments live on different devices, or on a device cupyflash cannot use."""


class ArgumentError(CupyflashError, ValueError):
    """A keyword argument has an unsupported value."""


class NoGPUError(CupyflashError, RuntimeError):
    """No usable CUDA GPU: cupyflash never computes on the CPU behind your back.

    Use :func:`cupyflash.reference.attention` for an explicit float64 CPU result.
    """


class CompileError(CupyflashError, RuntimeError):
    """NVRTC rejected a kernel; the message carries the full compiler log."""


class CompileInTimedRegionError(CupyflashError, RuntimeError):
    """A kernel was compiled or loaded inside a :func:`cupyflash.no_compile` region."""
