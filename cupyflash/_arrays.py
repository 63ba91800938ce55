"""Array adapters: one per array library, chosen by the array's type.

No framework is imported here: a torch or jax array can only reach us if the
caller already imported its library, so we take the module from ``sys.modules``.
Each adapter reads metadata without touching the data: ``signature`` (the raw,
hashable metadata that validation depends on, the key of the call cache in
cupyflash._callcache) and ``info`` (that metadata as an ``ArrayInfo``), so
``describe(x) == info(signature(x))`` by construction. It also exposes a device
buffer (pointer + strides) for the kernel, allocates results in the
caller's own library, and hands results back in the caller's array type.

Per-call host cost matters: at seqlen 512 a kernel runs for ~0.2 ms, so the
fast paths (CuPy arrays; torch tensors on torch's current stream) read raw
pointers and build no intermediate arrays. DLPack is used where it carries
meaning: JAX arrays (its stream handshake orders JAX's async work before ours)
and torch tensors launched on a stream other than torch's current one.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._spec import SUPPORTED_DTYPES


@dataclass(frozen=True)
class ArrayInfo:
    """What validation needs to know about one array; no data access."""

    shape: tuple[int, ...]
    dtype: str  # canonical name: "float16", "bfloat16", "float32", ...
    strides: tuple[int, ...]  # in elements
    device: str  # "cpu" or "cuda:N"
    kind: str  # which adapter


class DeviceBuffer(NamedTuple):
    """A device array as the kernel sees it: address, shape and element strides.
    (A NamedTuple: built several times per call, at a third of a frozen dataclass's cost.)"""

    ptr: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]  # in elements
    dtype: str
    owner: object  # keeps the memory alive; a cupy.ndarray for buffers we created

    def as_cupy(self):
        """A CuPy view of the same memory (for the rare staging copies)."""
        import cupy

        if isinstance(self.owner, cupy.ndarray):
            return self.owner
        dt = np_dtype(self.dtype)
        extent = 0 if 0 in self.shape else 1 + sum((n - 1) * s for n, s in zip(self.shape, self.strides))
        mem = cupy.cuda.UnownedMemory(self.ptr, extent * dt.itemsize, self.owner)
        return cupy.ndarray(self.shape, dt, cupy.cuda.MemoryPointer(mem, 0),
                            tuple(s * dt.itemsize for s in self.strides))


def np_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _top_module(x: object) -> str:
    return type(x).__module__.split(".")[0]


def _c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= max(n, 1)
    return tuple(reversed(strides))


# NumPy 2 formats a dtype's name in Python (~2 us); every call names up to five
# buffers. Only the accepted dtypes are kept, so this stays a handful of entries.
_dtype_names: dict[np.dtype, str] = {}


def dtype_name(dtype: np.dtype) -> str:
    """``str(dtype)`` of a NumPy (or CuPy) dtype, memoised for the accepted ones."""
    name = _dtype_names.get(dtype)
    if name is None:
        name = str(dtype)
        if name in SUPPORTED_DTYPES:
            _dtype_names[dtype] = name
    return name


def _cupy_buffer(a) -> DeviceBuffer:
    itemsize = a.itemsize
    return DeviceBuffer(a.data.ptr, tuple(a.shape), tuple([s // itemsize for s in a.strides]), dtype_name(a.dtype), a)


def _cupy_empty(shape, dtype: str):
    import cupy

    a = cupy.empty(shape, dtype=np_dtype(dtype))
    return a, _cupy_buffer(a)


def _element_strides(byte_strides: tuple, itemsize: int) -> tuple:
    return tuple(s // itemsize if s % itemsize == 0 else s / itemsize for s in byte_strides)


def _current_cupy_stream(x, device_id: int):
    import cupy

    return cupy.cuda.get_current_stream()


class _Adapter:
    @classmethod
    def describe(cls, x) -> ArrayInfo:
        """What validation needs to know about ``x``: a function of its signature alone."""
        return cls.info(cls.signature(x))


class NumpyAdapter(_Adapter):
    """Host arrays: copied to the current GPU, the result copied back."""

    kind = "numpy"
    caller_stream = staticmethod(_current_cupy_stream)

    @staticmethod
    def matches(x: object) -> bool:
        return isinstance(x, np.ndarray)

    @staticmethod
    def signature(x: np.ndarray) -> tuple:
        return (x.shape, x.dtype, x.strides)

    @staticmethod
    def info(sig: tuple) -> ArrayInfo:
        shape, dtype, strides = sig
        return ArrayInfo(tuple(shape), dtype_name(dtype), _element_strides(strides, dtype.itemsize), "cpu", "numpy")

    @staticmethod
    def pointer(x) -> int | None:
        return None  # host data: copied to a fresh, aligned device buffer

    @staticmethod
    def device_buffer(x: np.ndarray, on_caller_stream: bool) -> DeviceBuffer:
        import cupy

        return _cupy_buffer(cupy.asarray(x))  # on the current (launch) stream

    @staticmethod
    def empty(template, shape, dtype: str):
        return _cupy_empty(shape, dtype)

    @staticmethod
    def finish(native, buf: DeviceBuffer, out=None):
        # Host results need the data: this copy waits for the stream (not the device).
        if out is not None:
            buf.owner.get(out=out)
            return out
        return buf.owner.get()


class CupyAdapter(_Adapter):
    kind = "cupy"
    caller_stream = staticmethod(_current_cupy_stream)

    @staticmethod
    def matches(x: object) -> bool:
        return _top_module(x) == "cupy" and type(x).__name__ == "ndarray"

    @staticmethod
    def signature(x) -> tuple:
        return (x.shape, x.dtype, x.strides, x.device.id)

    @staticmethod
    def info(sig: tuple) -> ArrayInfo:
        shape, dtype, strides, device_id = sig
        return ArrayInfo(tuple(shape), dtype_name(dtype), _element_strides(strides, dtype.itemsize),
                         f"cuda:{device_id}", "cupy")

    @staticmethod
    def pointer(x) -> int | None:
        return x.data.ptr

    @staticmethod
    def device_buffer(x, on_caller_stream: bool) -> DeviceBuffer:
        return _cupy_buffer(x)

    @staticmethod
    def empty(template, shape, dtype: str):
        return _cupy_empty(shape, dtype)

    @staticmethod
    def finish(native, buf: DeviceBuffer, out=None):
        return buf.owner if out is None else out


_external_streams: dict[tuple[int, int], object] = {}


class TorchAdapter(_Adapter):
    """torch CUDA tensors: raw pointers on torch's current stream, DLPack otherwise."""

    kind = "torch"

    @staticmethod
    def matches(x: object) -> bool:
        return _top_module(x) == "torch" and hasattr(x, "data_ptr")

    @staticmethod
    def signature(x) -> tuple:
        return (x.shape, x.dtype, x.stride(), x.device)

    @staticmethod
    def info(sig: tuple) -> ArrayInfo:
        shape, dtype, strides, dev = sig
        device = f"cuda:{dev.index}" if dev.type == "cuda" else dev.type
        return ArrayInfo(tuple(shape), str(dtype).removeprefix("torch."), tuple(strides), device, "torch")

    @staticmethod
    def pointer(x) -> int | None:
        return x.data_ptr()

    @staticmethod
    def caller_stream(x, device_id: int):
        import cupy

        ptr = sys.modules["torch"].cuda.current_stream(x.device).cuda_stream
        stream = _external_streams.get((ptr, device_id))
        if stream is None:  # wrapping is cheap but not free: keep one wrapper per stream
            stream = _external_streams[(ptr, device_id)] = cupy.cuda.ExternalStream(ptr, device_id)
        return stream

    @staticmethod
    def device_buffer(x, on_caller_stream: bool) -> DeviceBuffer:
        if on_caller_stream:  # same stream as the tensor's producer: already ordered
            return DeviceBuffer(x.data_ptr(), tuple(x.shape), tuple(x.stride()),
                                str(x.dtype).removeprefix("torch."), x)
        import cupy

        # Another stream: the DLPack handshake (made with the launch stream
        # current) orders torch's stream before ours.
        return _cupy_buffer(cupy.from_dlpack(x))

    @staticmethod
    def empty(template, shape, dtype: str):
        torch = sys.modules["torch"]
        t = torch.empty(shape, dtype=getattr(torch, dtype), device=template.device)
        return t, DeviceBuffer(t.data_ptr(), tuple(t.shape), tuple(t.stride()), dtype, t)

    @staticmethod
    def finish(native, buf: DeviceBuffer, out=None):
        return out if out is not None else native


class JaxAdapter(_Adapter):
    """JAX GPU arrays over DLPack; results are handed back through DLPack too."""

    kind = "jax"
    caller_stream = staticmethod(_current_cupy_stream)  # JAX has no user-visible current stream

    @staticmethod
    def matches(x: object) -> bool:
        return _top_module(x) in ("jax", "jaxlib") and hasattr(x, "devices")

    @staticmethod
    def signature(x) -> tuple:
        # The device set stays whole here: info() rejects a sharded array, as describe() always did.
        return (x.shape, x.dtype, tuple(x.devices()))

    @staticmethod
    def info(sig: tuple) -> ArrayInfo:
        shape, dtype, devices = sig
        (dev,) = devices
        device = f"cuda:{dev.id}" if dev.platform in ("gpu", "cuda") else dev.platform
        shape = tuple(shape)
        return ArrayInfo(shape, str(dtype), _c_strides(shape), device, "jax")

    @staticmethod
    def pointer(x) -> int | None:
        return x.unsafe_buffer_pointer()

    @staticmethod
    def device_buffer(x, on_caller_stream: bool) -> DeviceBuffer:
        import cupy

        # The DLPack handshake orders JAX's producer stream before ours.
        return _cupy_buffer(cupy.from_dlpack(x))

    @staticmethod
    def empty(template, shape, dtype: str):
        return _cupy_empty(shape, dtype)

    @staticmethod
    def finish(native, buf: DeviceBuffer, out=None):
        # JAX's consumer stream is ordered after ours by the same handshake.
        return sys.modules["jax"].dlpack.from_dlpack(buf.owner)


ADAPTERS = (NumpyAdapter, CupyAdapter, TorchAdapter, JaxAdapter)


# type -> the adapter that last matched an array of it: one dict lookup instead of
# trying the adapters in turn. The cached adapter is still asked (matches()), and
# it is the first in ADAPTERS to match whenever it matches: the NumPy and CuPy
# tests depend on the type alone, and the torch and JAX ones on disjoint modules.
# Only array types get an entry, so it stays as small as the set of libraries in use.
_adapter_of_type: dict[type, type] = {}


def find_adapter(x: object):
    """The adapter for ``x``, or None if ``x`` is no array that cupyflash takes."""
    adapter = _adapter_of_type.get(type(x))
    if adapter is not None and adapter.matches(x):
        return adapter
    for adapter in ADAPTERS:
        if adapter.matches(x):
            _adapter_of_type[type(x)] = adapter
            return adapter
    return None


def adapter_for(x: object, name: str):
    adapter = find_adapter(x)
    if adapter is not None:
        return adapter
    from .errors import DTypeError

    raise DTypeError(f"{name}: expected a NumPy, CuPy, PyTorch or JAX array, got {type(x).__module__}."
                     f"{type(x).__name__}")
