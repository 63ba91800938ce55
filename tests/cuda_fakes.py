"""A stand-in CUDA runtime, so ``cupyflash.attention`` runs its whole host path
on a machine without a GPU: fake ``cupy`` and ``torch`` modules (devices,
streams, allocation of metadata-only arrays, a kernel "launch" that records its
arguments) and a fake ``cuTensorMapEncodeTiled`` that writes the operand's
address and geometry into the map, so a stale map would show.

Only the paths that need no device work are served: aligned operands (no
staging copy) and 16-bit or float64/float32-on-SIMT inputs (no fp32 split).
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import struct
import sys
import types
from collections import OrderedDict

import numpy as np

from array_fakes import FakeCupyArray, FakeTorchTensor, _TorchDtype
from helpers import NP_DTYPES

_ALLOC_BASE = 0x7E0000000000
_ALLOC_STEP = 1 << 20  # fresh "allocations" are 1 MiB apart, so 256-byte aligned
FAKE_MAP = struct.Struct("<Q4Q3Q2I")  # what the fake encoder writes: address, dims, byte strides, box


class Launch:
    def __init__(self, grid, block, args, shared_mem, stream, name=""):
        self.grid, self.block, self.args, self.shared_mem, self.stream = grid, block, args, shared_mem, stream
        self.name = name  # the kernel's name expression (KernelSpec.name_expression)


class FakeCuda:
    """The fake runtime's state: the GPU it claims to be, and every launch made."""

    def __init__(self, arch: int = 90, sm_count: int = 132, pool: int | None = None):
        self.arch, self.sm_count = arch, sm_count
        self.launches: list[Launch] = []
        self.current_device = 0
        self.entered_devices: list[int] = []  # each ``with cupy.cuda.Device(i)``
        # pool=None: every allocation gets a new address; pool=n: addresses cycle
        # through n, as a caching allocator hands a freed block back.
        self._next = itertools.count() if pool is None else itertools.cycle(range(pool))

    def alloc(self) -> int:
        return _ALLOC_BASE + next(self._next) * _ALLOC_STEP

    def encode(self, addr, dtype, rank, ptr, dims, gstrides, box, elem_strides, *modes) -> int:
        ctypes.memmove(addr, FAKE_MAP.pack(ptr, *dims, *gstrides, box[0], box[1]), FAKE_MAP.size)
        return 0


def _make_cupy(state: FakeCuda):
    class Stream:
        def __init__(self, ptr=0):
            self.ptr = ptr

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    class ExternalStream(Stream):
        def __init__(self, ptr, device_id=-1):
            super().__init__(ptr)

    class Device:
        def __init__(self, device_id=None):
            self.id = state.current_device if device_id is None else device_id
            self.compute_capability = str(state.arch)
            self.attributes = {"MultiProcessorCount": state.sm_count}

        def __enter__(self):
            state.entered_devices.append(self.id)
            return self

        def __exit__(self, *exc):
            return False

    class Event:  # the walk table's upload (cupyflash._walk.device_table): always landed here
        def __init__(self, disable_timing=False):
            self.recorded = False

        def record(self, stream=None):
            self.recorded = True

        done = True

    class Function:
        def __init__(self, name=""):
            self.name = name

        def __call__(self, grid, block, args, shared_mem=0, stream=None):
            state.launches.append(Launch(grid, block, args, shared_mem, stream, self.name))

    class RawModule:
        def __init__(self, code, options, name_expressions):
            pass

        def get_function(self, name):
            return Function(name)

    def empty(shape, dtype):
        return FakeCupyArray(shape, np.dtype(dtype), ptr=state.alloc())

    def asarray(x):
        array = FakeCupyArray(x.shape, x.dtype, ptr=state.alloc())
        array.host = np.array(x)  # what was uploaded (the walk table: tests/test_host_path.py)
        return array

    default_stream = Stream()
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 1, CUDARuntimeError=type("CUDARuntimeError",
                                                                                      (RuntimeError,), {}))
    cuda = types.SimpleNamespace(Stream=Stream, ExternalStream=ExternalStream, Device=Device, runtime=runtime,
                                 Event=Event, get_current_stream=lambda: default_stream)
    cupy = types.ModuleType("cupy")
    cupy.cuda, cupy.RawModule, cupy.empty, cupy.asarray, cupy.ndarray = cuda, RawModule, empty, asarray, FakeCupyArray
    compiler = types.ModuleType("cupy.cuda.compiler")
    compiler.CompileException = type("CompileException", (Exception,), {})
    return cupy, compiler


def _make_torch(state: FakeCuda):
    torch = types.ModuleType("torch")
    for name in NP_DTYPES:
        setattr(torch, name, _TorchDtype(name))
    current = types.SimpleNamespace(cuda_stream=0x5000)
    torch.cuda = types.SimpleNamespace(current_stream=lambda device=None: current)

    def empty(shape, dtype, device):
        return FakeTorchTensor(shape, dtype.name, device=device.index, ptr=state.alloc())

    torch.empty = empty
    return torch


def install(monkeypatch, arch: int = 90, sm_count: int = 132, pool: int | None = None) -> FakeCuda:
    """Serve cupyflash's CUDA calls from fakes for one test (``monkeypatch`` undoes
    it all); returns the state that records the launches."""
    from cupyflash import _arrays, _compile, _tma, _walk, api

    state = FakeCuda(arch, sm_count, pool)
    cupy, compiler = _make_cupy(state)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupy.cuda.compiler", compiler)
    monkeypatch.setitem(sys.modules, "torch", _make_torch(state))
    monkeypatch.setattr(api, "_cupy", None, raising=False)  # found again: the fake
    monkeypatch.setattr(api, "_devices", {})
    monkeypatch.setattr(_arrays, "_external_streams", {})
    monkeypatch.setattr(_compile, "_functions", {})
    monkeypatch.setattr(_compile, "_compile_count", 0)
    monkeypatch.setattr(_compile, "kernel_source", lambda entry=None: "")
    monkeypatch.setattr(_tma, "_encode_fn", lambda: state.encode)
    # Maps are cached by address: a fresh cache, so no fake map outlives the test and no real one leaks in.
    monkeypatch.setattr(_tma, "encode", functools.lru_cache(maxsize=_tma.encode.cache_info().maxsize)(
        _tma.encode.__wrapped__))
    # Walk tables, likewise kept per (device, table): a fresh cache, so no fake upload reaches a later
    # GPU test in the same worker and no real CuPy array one of those left reaches this test.
    monkeypatch.setattr(_walk, "_DEVICE_TABLES", OrderedDict())
    return state
