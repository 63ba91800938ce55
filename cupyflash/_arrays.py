"""Array adapters: one per array library, chosen by the array's type.

No framework is imported here: a torch or jax array can only reach us if the
caller already imported its library, so we take the module from ``sys.modules``.
Each adapter reads metadata without touching the data (``describe``), exposes a
device buffer (pointer + strides) for the kernel, allocates results in the
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

import numpy as np


@dataclass(frozen=True)
class ArrayInfo:
    """What validation needs to know about one array; no data access."""

    shape: tuple[int, ...]
    dtype: str  # canonical name: "float16", "bfloat16", "float32", ...
    strides: tuple[int, ...]  # in elements
    device: str  # "cpu" or "cuda:N"
    kind: str  # which adapter


@dataclass(frozen=True)
class DeviceBuffer:
    """A device array as the kernel sees it: address, shape and element strides."""

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


def _cupy_buffer(a) -> DeviceBuffer:
    return DeviceBuffer(a.data.ptr, tuple(a.shape), tuple(s // a.itemsize for s in a.strides), str(a.dtype), a)


def _cupy_empty(shape, dtype: str):
    import cupy

    a = cupy.empty(shape, dtype=np_dtype(dtype))
    return a, _cupy_buffer(a)


def _element_strides(x) -> tuple:
    itemsize = x.dtype.itemsize
    return tuple(s // itemsize if s % itemsize == 0 else s / itemsize for s in x.strides)


def _current_cupy_stream(x, device_id: int):
    import cupy

    return cupy.cuda.get_current_stream()


class NumpyAdapter:
    """Host arrays: copied to the current GPU, the result copied back."""

    kind = "numpy"
    caller_stream = staticmethod(_current_cupy_stream)

    @staticmethod
    def matches(x: object) -> bool:
        return isinstance(x, np.ndarray)

    @staticmethod
    def describe(x: np.ndarray) -> ArrayInfo:
        return ArrayInfo(tuple(x.shape), str(x.dtype), _element_strides(x), "cpu", "numpy")

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


class CupyAdapter:
    kind = "cupy"
    caller_stream = staticmethod(_current_cupy_stream)

    @staticmethod
    def matches(x: object) -> bool:
        return _top_module(x) == "cupy" and type(x).__name__ == "ndarray"

    @staticmethod
    def describe(x) -> ArrayInfo:
        return ArrayInfo(tuple(x.shape), str(x.dtype), _element_strides(x), f"cuda:{x.device.id}", "cupy")

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


class TorchAdapter:
    """torch CUDA tensors: raw pointers on torch's current stream, DLPack otherwise."""

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


class JaxAdapter:
    """JAX GPU arrays over DLPack; results are handed back through DLPack too."""

    kind = "jax"
    caller_stream = staticmethod(_current_cupy_stream)  # JAX has no user-visible current stream

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


def adapter_for(x: object, name: str):
    for adapter in ADAPTERS:
        if adapter.matches(x):
            return adapter
    from .errors import DTypeError

    raise DTypeError(f"{name}: expected a NumPy, CuPy, PyTorch or JAX array, got {type(x).__module__}."
                     f"{type(x).__name__}")
