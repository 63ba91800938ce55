"""The pre-pass of the float32 wgmma kernels (backend "wgmma" or precision "fast").

Each of q, k, v is rescaled by a power of two (exact: no rounding) so that its
largest magnitude lands in (2^13, 2^14], inside fp16's range with room to spare,
and written as two contiguous, zero-padded fp16 tensors hi and lo with
x * 2^e = hi + lo up to fp16 rounding of lo (bench/notes/fp32_fp64.md, "fp32 on
tensor cores": 3 x FP16 keeps fp32 accuracy). The factors are computed and applied on
the device, so the call stays free of host synchronisation; the kernel reads
the two numbers that undo them from ``scales`` = [1 / (s_q * s_k), 1 / s_v].
With ``with_lo=False`` (precision "fast") only hi is made.

Device work per call (cuda_src/split_fp32.cu): one memset (the three maxima and
the two scales share one 5-word buffer), ``split_fp32_absmax`` (finite abs-max
of q, k and v in one launch, ``atomicMax`` on the float bits) and
``split_fp32_split`` (factors from the maxima, hi/lo and the zero padding of all
three tensors in one launch; block (0, 0) writes ``scales``). Both read the
inputs in place through their (batch, seq, head) strides: bhsd inputs need no copy.

The kernels take one ``SplitParams`` struct (cuda_src/split_params.h), mirrored
here by ``SPLIT_TENSOR_FIELDS`` / ``SPLIT_PARAMS_FIELDS`` and packed with one
``struct.pack`` (the struct has no padding; tests/test_split.py checks the
offsets against the header with NVRTC).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ._arrays import DeviceBuffer
from ._problem import to_bshd

# Target exponent: max |x * 2^e| in (2^(T-1), 2^T]; fp16's largest finite value is 65504 < 2^16.
TARGET_EXP = 14
# Bounds on the shift e, so that the undoing factors stay normal float32 numbers
# whatever the data (all-zero inputs included): |e_q|, |e_k| <= 63 keeps
# 1 / (s_q * s_k) within 2^+-126; |e_v| <= 120 keeps 1 / s_v normal. The range
# served exactly is therefore max |q|, max |k| in [2^-49, 2^77] (1.8e-15 .. 1.5e23)
# and max |v| in [2^-106, 2^134 capped by float32]; outside it the operands lose
# precision (tiny) or overflow fp16 (huge) and precision="highest" with the
# default backend (exact CUDA cores) is the right call.
MAX_SHIFT = {"q": 63, "k": 63, "v": 120}
PAD_ELEMS = 8  # hi/lo rows padded to a multiple of 8 fp16 elements (16-byte TMA strides)
# The reference formula's stand-in for log2(0): an all-zero tensor's max is taken as 2^-1000.
ZERO_CEIL_LOG2 = -1000
# The kernel builds 2^e from the float bits (cuda_src/split_fp32.cu, pow2_f32):
# exact for normal numbers only, so every factor and undoing factor must be one.
F32_MIN_NORMAL_EXP, F32_MAX_EXP = -126, 127
if not (MAX_SHIFT["q"] + MAX_SHIFT["k"] <= -F32_MIN_NORMAL_EXP and MAX_SHIFT["v"] <= -F32_MIN_NORMAL_EXP
        and max(MAX_SHIFT.values()) < -ZERO_CEIL_LOG2 - TARGET_EXP):
    raise AssertionError(f"MAX_SHIFT {MAX_SHIFT} lets a factor leave float32's normal range")

SPLIT_ENTRY_FILE = "split_fp32.cu"
SPLIT_THREADS = 256  # kSplitThreads
SPLIT_ROWS_IN_FLIGHT = 2  # kSplitRowsInFlight
VEC_ELEMS = 4  # the vectorised kernels' float4
VEC_ALIGN_BYTES = 16
# Grid: every block of both kernels resident at once, so the block-stride loops
# split the rows evenly (no second, partial wave). kSplitBlocksPerSm in
# split_fp32.cu (__launch_bounds__) guarantees this many fit per SM.
BLOCKS_PER_SM = 6
N_TENSORS = 3  # q, k, v: gridDim.y

_PTR, _I64, _I32 = np.uint64, np.int64, np.int32
SPLIT_TENSOR_FIELDS: tuple[tuple[str, type], ...] = (
    ("x", _PTR), ("hi", _PTR), ("lo", _PTR),
    ("batch_stride", _I64), ("row_stride", _I64), ("head_stride", _I64),
    ("rows", _I64),
    ("seqlen", _I32), ("heads", _I32), ("dim", _I32), ("padded_dim", _I32),
)
SPLIT_TENSOR_DTYPE = np.dtype(list(SPLIT_TENSOR_FIELDS), align=True)
SPLIT_PARAMS_FIELDS: tuple[tuple[str, object], ...] = (
    ("t", (SPLIT_TENSOR_DTYPE, (N_TENSORS,))),
    ("maxima", _PTR), ("scales", _PTR),
    ("target_exp", _I32), ("max_shift", (_I32, (N_TENSORS,))),
)
SPLIT_PARAMS_DTYPE = np.dtype([(name, *t) if isinstance(t, tuple) else (name, t) for name, t in SPLIT_PARAMS_FIELDS],
                              align=True)
# Hazard: the packing below is right only while the struct has no padding
# (tests/test_split.py compares it with SPLIT_PARAMS_DTYPE and the header).
_CODES = {_PTR: "Q", _I64: "q", _I32: "i"}
_TENSOR_FORMAT = "".join(_CODES[t] for _, t in SPLIT_TENSOR_FIELDS)
_PARAMS_STRUCT = struct.Struct("<" + _TENSOR_FORMAT * N_TENSORS + "QQ" + "i" * (1 + N_TENSORS))
_MAX_SHIFTS = (MAX_SHIFT["q"], MAX_SHIFT["k"], MAX_SHIFT["v"])
# One zeroed buffer: scales (2 float32) first, at the allocation's own alignment
# (the attention kernel may read both with one 8-byte load), then the maxima (u32 float bits).
_N_SCALES = 2
_WORDS = _N_SCALES + N_TENSORS


@dataclass
class SplitOperands:
    hi: dict  # name -> cupy float16 array (batch, seq, heads, padded dim), contiguous
    lo: dict  # the same, or empty without lo
    scales: object  # cupy float32 array [score multiplier, output multiplier]


def shift_exponent(max_abs: float, target: int = TARGET_EXP, max_shift: int = MAX_SHIFT["v"]) -> int:
    """The shift e of a tensor whose finite abs-max is ``max_abs`` (a float32 value):
    max |x * 2^e| in (2^(target-1), 2^target], clipped to +-max_shift; 0 takes
    +max_shift. The kernel's integer formula (split_shift in split_fp32.cu), in Python."""
    m = np.float32(max_abs)
    if m == 0:
        ceil_log2 = ZERO_CEIL_LOG2
    else:
        frac, exp = np.frexp(m)  # m = frac * 2^exp, frac in [0.5, 1); exact for subnormals too
        ceil_log2 = int(exp) - 1 if frac == 0.5 else int(exp)
    return min(max(target - ceil_log2, -max_shift), max_shift)


def padded_dim(dim: int) -> int:
    return dim + (-dim) % PAD_ELEMS


def vector_width(ptr: int, strides: tuple[int, int, int], sizes: tuple[int, int, int], dim: int) -> int:
    """4 when one operand can be read as float4 (16-byte aligned base, (batch, seq,
    head) strides that are multiples of 4 elements, dim a multiple of 4), else 1.
    A size-1 axis is never stepped, so its stride does not count."""
    if ptr % VEC_ALIGN_BYTES or dim % VEC_ELEMS:
        return 1
    for st, n in zip(strides, sizes):  # a loop, not any(...): this runs on every call
        if n > 1 and st % VEC_ELEMS:
            return 1
    return VEC_ELEMS


def grid_blocks(row_counts: list[int], vec_counts: list[int], sm_count: int) -> int:
    """gridDim.x of both kernels: enough blocks for the largest tensor's rows
    (each thread keeps SPLIT_ROWS_IN_FLIGHT rows in flight; ``vec_counts``: column
    groups per row of the split kernel, which the abs-max kernel's do not exceed), at most one resident
    wave of the three tensors together; at least 1 (block (0, 0) writes ``scales``)."""
    needed = 1
    for rows, vecs in zip(row_counts, vec_counts):
        if rows and vecs:
            per_block = max(SPLIT_THREADS // vecs, 1) * SPLIT_ROWS_IN_FLIGHT
            needed = max(needed, -(-rows // per_block))
    return max(1, min(needed, sm_count * BLOCKS_PER_SM // N_TENSORS))


def absmax_name(vec: int) -> str:
    return f"cupyflash::split_fp32_absmax<{vec}>"


def split_name(vec: int, with_lo: bool) -> str:
    return f"cupyflash::split_fp32_split<{vec}, {'true' if with_lo else 'false'}>"


def kernel_names() -> list[tuple[str, str]]:
    """(label, name expression) of every pre-pass kernel instantiation."""
    names = []
    for vec in (VEC_ELEMS, 1):
        names.append((f"split_fp32_absmax_v{vec}", absmax_name(vec)))
        for with_lo in (True, False):
            names.append((f"split_fp32_split_v{vec}_{'lo' if with_lo else 'hi'}", split_name(vec, with_lo)))
    return names


def pack_params(tensors: list[tuple], maxima_ptr: int, scales_ptr: int) -> np.void:
    """One ``SplitParams`` value; ``tensors`` holds, per q, k, v, the values of
    SPLIT_TENSOR_FIELDS in order."""
    flat = [v for t in tensors for v in t]
    raw = _PARAMS_STRUCT.pack(*flat, maxima_ptr, scales_ptr, TARGET_EXP, *_MAX_SHIFTS)
    return np.frombuffer(raw, SPLIT_PARAMS_DTYPE)[0]


_sm_counts: dict[int, int] = {}


def _sm_count(cupy) -> int:
    dev = cupy.cuda.Device()
    n = _sm_counts.get(dev.id)
    if n is None:
        n = _sm_counts[dev.id] = int(dev.attributes["MultiProcessorCount"])
    return n


def _kernel(cupy, name_expression: str):
    from ._compile import get_named_function

    return get_named_function(SPLIT_ENTRY_FILE, name_expression, cupy.cuda.Device().id)


def split_operands(cupy, bufs: dict[str, DeviceBuffer], layout: str, with_lo: bool = True) -> SplitOperands:
    """hi (and lo) fp16 copies of q, k, v (float32 DeviceBuffers) and the undoing
    factors, made on cupy's current stream without host synchronisation."""
    if list(bufs) != ["q", "k", "v"]:
        raise ValueError(f"split_operands takes q, k, v in that order; got {list(bufs)}")
    hi, lo, tensors, rows_all, vecs_out, vec = {}, {}, [], [], [], VEC_ELEMS
    for name, buf in bufs.items():
        batch, seqlen, heads, dim = to_bshd(buf.shape, layout)
        strides = to_bshd(buf.strides, layout)
        if dim > 1 and strides[3] != 1 and batch * seqlen * heads:
            raise ValueError(f"{name}: the last axis must be contiguous; got stride {strides[3]}")
        pad = padded_dim(dim)
        h = cupy.empty((batch, seqlen, heads, pad), dtype=cupy.float16)
        hi[name] = h
        if with_lo:
            lo[name] = cupy.empty((batch, seqlen, heads, pad), dtype=cupy.float16)
        rows = batch * seqlen * heads if dim else 0
        if rows:
            vec = min(vec, vector_width(buf.ptr, strides[:3], (batch, seqlen, heads), dim))
        rows_all.append(rows)
        tensors.append((buf.ptr, h.data.ptr, lo[name].data.ptr if with_lo else 0, *strides[:3], rows,
                        seqlen, heads, dim, pad))
        vecs_out.append(pad)
    words = cupy.zeros(_WORDS, dtype=cupy.uint32)  # atomicMax needs zeroed maxima
    scales = words[:_N_SCALES].view(cupy.float32)
    params = pack_params(tensors, words[_N_SCALES:].data.ptr, scales.data.ptr)
    grid = (grid_blocks(rows_all, [v // vec for v in vecs_out], _sm_count(cupy)), N_TENSORS)
    absmax, split = _kernel(cupy, absmax_name(vec)), _kernel(cupy, split_name(vec, with_lo))
    absmax(grid, (SPLIT_THREADS,), (params,))
    split(grid, (SPLIT_THREADS,), (params,))
    return SplitOperands(hi, lo, scales)

