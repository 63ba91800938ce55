"""Metadata-only stand-ins for CuPy arrays and torch CUDA tensors, so the host
path (validation, the call cache, dispatch, parameter packing) can be tested
and timed without a GPU. They carry what the adapters read (shape, dtype,
strides, device, pointer) and no data; the adapters pick them by module and
type name exactly as they pick the real types."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from helpers import NP_DTYPES


def _c_strides(shape) -> tuple[int, ...]:
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= max(n, 1)
    return tuple(reversed(strides))


@dataclass(frozen=True)
class _CupyDevice:
    id: int


@dataclass(frozen=True)
class _CupyPointer:
    ptr: int


class ndarray:  # noqa: N801 -- the name CupyAdapter matches
    """A CuPy array's metadata: byte strides, a NumPy dtype, ``device.id``, ``data.ptr``."""

    __module__ = "cupy._core.core"

    def __init__(self, shape, dtype="float16", strides=None, device=0, ptr=0x7F0000000000):
        self.shape = tuple(shape)
        self.dtype = NP_DTYPES.get(dtype, np.dtype(dtype)) if isinstance(dtype, str) else dtype
        elem = strides if strides is not None else _c_strides(self.shape)
        self.strides = tuple(s * self.dtype.itemsize for s in elem)
        self.itemsize = self.dtype.itemsize
        self.device = _CupyDevice(device)
        self.data = _CupyPointer(ptr)

    def get(self, out=None) -> np.ndarray:
        """A host copy: zeros (a fake array has no data)."""
        if out is None:
            return np.zeros(self.shape, self.dtype)
        out[...] = 0
        return out


FakeCupyArray = ndarray


class _TorchDtype:
    """One object per name, hashed by identity, printed as ``torch.<name>`` (as torch.dtype)."""

    _all: dict[str, _TorchDtype] = {}

    def __new__(cls, name: str):
        if name not in cls._all:
            obj = super().__new__(cls)
            obj.name = name
            cls._all[name] = obj
        return cls._all[name]

    def __str__(self) -> str:
        return f"torch.{self.name}"


@dataclass(frozen=True)
class _TorchDevice:
    type: str
    index: int | None


class Tensor:
    """A torch tensor's metadata: ``stride()`` in elements, ``data_ptr()``, ``device``."""

    __module__ = "torch"

    def __init__(self, shape, dtype="float16", strides=None, device=0, ptr=0x7F0000000000):
        self.shape = tuple(shape)
        self.dtype = _TorchDtype(dtype)
        self._strides = tuple(strides) if strides is not None else _c_strides(self.shape)
        self.device = _TorchDevice("cuda", device) if device is not None else _TorchDevice("cpu", None)
        self._ptr = ptr

    def stride(self) -> tuple[int, ...]:
        return self._strides

    def data_ptr(self) -> int:
        return self._ptr


FakeTorchTensor = Tensor
