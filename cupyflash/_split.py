"""The pre-pass of the float32 wgmma kernels (backend "wgmma" or precision "fast").

Each tile of q, k, v is rescaled by its own power of two (exact: no rounding) so
that the tile's largest magnitude lands in (2^13, 2^14], inside fp16's range with
room to spare, and written into two contiguous, zero-padded fp16 tensors hi and
lo with x * 2^e = hi + lo up to fp16 rounding of lo (bench/notes/fp32_fp64.md,
"fp32 on tensor cores": 3 x FP16 keeps fp32 accuracy; "Per-tile scales in one
pre-pass read"). A tile is the attention kernel's unit of work, so the caller
passes the variant's tile rows: kBlockM query rows of one (batch, head) for q,
kBlockN key rows of one (batch, kv head) for k and v. The shifts e, one int per
tile, go into one int32 array (``shift_layout``; cuda_src/tile_shifts.h) that
the attention kernel reads to undo them tile by tile, so the call stays free of
host synchronisation. With ``with_lo=False`` (precision "fast") only hi is made.

Device work per call (cuda_src/split_fp32.cu): one launch of
``split_fp32_tiles``, one block per tile of q, k and v: the block copies its
tile into shared memory (one read of the inputs, in place through their (batch,
seq, head) strides: bhsd inputs need no copy), takes the tile's finite abs-max,
writes its shift, and converts the tile to hi/lo with the zero padding. No
memset, no atomics, no second read (the per-tensor scale it replaced read q, k,
v twice: once for the abs-max, once to convert).

The kernel takes one ``SplitParams`` struct (cuda_src/split_params.h), mirrored
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
# Bounds on a tile's shift e, so that the factors the attention kernel builds stay
# normal float32 numbers whatever the data (all-zero tiles included): |e_q|, |e_k|
# <= 63 keeps the score factor 2^-(e_q + e_k) within 2^+-126; |e_v| <= 120 keeps
# 2^-e_v normal. The range served exactly is therefore max |q|, max |k| of a tile
# in [2^-49, 2^77] (1.8e-15 .. 1.5e23) and max |v| in [2^-106, 2^134 capped by
# float32]; outside it that tile loses precision (tiny) or overflows fp16 (huge)
# and precision="highest" with the default backend (exact CUDA cores) is the right call.
MAX_SHIFT = {"q": 63, "k": 63, "v": 120}
PAD_ELEMS = 8  # hi/lo rows padded to a multiple of 8 fp16 elements (16-byte TMA strides)
# The reference formula's stand-in for log2(0): an all-zero tile's max is taken as 2^-1000.
ZERO_CEIL_LOG2 = -1000
# The kernels build 2^e from the float bits (cuda_src/tile_shifts.h, pow2_f32):
# exact for normal numbers only, so every factor and undoing factor must be one.
F32_MIN_NORMAL_EXP, F32_MAX_EXP = -126, 127
if not (MAX_SHIFT["q"] + MAX_SHIFT["k"] <= -F32_MIN_NORMAL_EXP and MAX_SHIFT["v"] <= -F32_MIN_NORMAL_EXP
        and max(MAX_SHIFT.values()) < -ZERO_CEIL_LOG2 - TARGET_EXP):
    raise AssertionError(f"MAX_SHIFT {MAX_SHIFT} lets a factor leave float32's normal range")

SPLIT_ENTRY_FILE = "split_fp32.cu"
SPLIT_THREADS = 256  # kSplitThreads
# kSplitBlocksPerSm in split_fp32.cu (__launch_bounds__): the register cap that
# lets this many blocks share an SM (shared memory usually allows fewer).
BLOCKS_PER_SM = 4
VEC_ELEMS = 4  # the vectorised kernel's float4
VEC_ALIGN_BYTES = 16
F32_BYTES = 4
N_TENSORS = 3  # q, k, v
# Shared memory a block may stage its tile in: a tile of the shipped variants
# needs at most 128 KB (128 rows x 256 columns, or 128 rows x 1 KB of scalar
# passes); sm_90 gives a block up to 227 KB.
SPLIT_MAX_STAGE_BYTES = 192 * 1024
KV_SHIFTS_PER_TILE = 2  # {e_k, e_v} side by side: one 8-byte load per key tile

_PTR, _I64, _I32 = np.uint64, np.int64, np.int32
SPLIT_TENSOR_FIELDS: tuple[tuple[str, type], ...] = (
    ("x", _PTR), ("hi", _PTR), ("lo", _PTR), ("shifts", _PTR),
    ("batch_stride", _I64), ("row_stride", _I64), ("head_stride", _I64),
    ("seqlen", _I32), ("heads", _I32), ("dim", _I32), ("padded_dim", _I32),
    ("tile_rows", _I32), ("seq_tiles", _I32), ("first_block", _I32), ("shift_step", _I32),
)
SPLIT_TENSOR_DTYPE = np.dtype(list(SPLIT_TENSOR_FIELDS), align=True)
SPLIT_PARAMS_FIELDS: tuple[tuple[str, object], ...] = (
    ("t", (SPLIT_TENSOR_DTYPE, (N_TENSORS,))),
    ("target_exp", _I32), ("max_shift", (_I32, (N_TENSORS,))),
)
SPLIT_PARAMS_DTYPE = np.dtype([(name, *t) if isinstance(t, tuple) else (name, t) for name, t in SPLIT_PARAMS_FIELDS],
                              align=True)
# Hazard: the packing below is right only while the struct has no padding
# (tests/test_split.py compares it with SPLIT_PARAMS_DTYPE and the header).
_CODES = {_PTR: "Q", _I64: "q", _I32: "i"}
_TENSOR_FORMAT = "".join(_CODES[t] for _, t in SPLIT_TENSOR_FIELDS)
_PARAMS_STRUCT = struct.Struct("<" + _TENSOR_FORMAT * N_TENSORS + "i" * (1 + N_TENSORS))
_MAX_SHIFTS = (MAX_SHIFT["q"], MAX_SHIFT["k"], MAX_SHIFT["v"])


@dataclass
class SplitOperands:
    hi: dict  # name -> cupy float16 array (batch, seq, heads, padded dim), contiguous
    lo: dict  # the same, or empty without lo
    shifts: object  # cupy int32 array: every tile's shift, laid out as shift_layout says


@dataclass(frozen=True)
class ShiftLayout:
    """Where each tile's shift sits in the int32 array (cuda_src/tile_shifts.h):
    first the {e_k, e_v} pairs of every (batch, kv head, key tile), then e_q of
    every (batch, query head, query block)."""

    batch: int
    heads_q: int
    heads_kv: int
    n_tiles: int   # key tiles per (batch, kv head): ceil(seqlen_k / block_n)
    m_blocks: int  # query blocks per (batch, head): ceil(seqlen_q / block_m)

    @property
    def q_offset(self) -> int:
        return KV_SHIFTS_PER_TILE * self.batch * self.heads_kv * self.n_tiles

    @property
    def size(self) -> int:
        return self.q_offset + self.batch * self.heads_q * self.m_blocks

    def kv_index(self, batch: int, kv_head: int, tile: int) -> int:
        """Index of e_k of key tile ``tile`` (e_v follows it); kv_shift_index on the device, in ints."""
        return KV_SHIFTS_PER_TILE * ((batch * self.heads_kv + kv_head) * self.n_tiles + tile)

    def q_index(self, batch: int, head: int, m_block: int) -> int:
        """Index of e_q of query block ``m_block`` (q_shift_index on the device)."""
        return self.q_offset + (batch * self.heads_q + head) * self.m_blocks + m_block


def shift_layout(batch: int, heads_q: int, heads_kv: int, seqlen_q: int, seqlen_k: int, block_m: int,
                 block_n: int, with_q: bool = True) -> ShiftLayout:
    """``with_q=False``: q is converted by the attention kernel itself (KernelSpec.q_in_kernel,
    cuda_src/q_convert.h), so the array holds no e_q (m_blocks 0)."""
    return ShiftLayout(batch, heads_q, heads_kv, -(-seqlen_k // block_n), -(-seqlen_q // block_m) if with_q else 0)


def shift_exponent(max_abs: float, target: int = TARGET_EXP, max_shift: int = MAX_SHIFT["v"]) -> int:
    """The shift e of a tile whose finite abs-max is ``max_abs`` (a float32 value):
    max |x * 2^e| in (2^(target-1), 2^target], clipped to +-max_shift; 0 takes
    +max_shift. The kernel's integer formula (split_shift in split_shift.h), in Python."""
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


def tile_passes(tile_rows: int, pad: int, vec: int) -> int:
    """Rows of a full tile that one thread owns (the kernel's passes): a block
    covers SPLIT_THREADS // (pad / vec) rows at a time."""
    return -(-tile_rows // (SPLIT_THREADS // (pad // vec)))


def stage_bytes(tile_rows: int, pad: int, vec: int) -> int:
    """Shared memory one block stages a tile in: a float (vec 1) or float4 per thread and pass."""
    return tile_passes(tile_rows, pad, vec) * SPLIT_THREADS * vec * F32_BYTES


def split_name(vec: int, with_lo: bool) -> str:
    return f"cupyflash::split_fp32_tiles<{vec}, {'true' if with_lo else 'false'}>"


def kernel_names() -> list[tuple[str, str]]:
    """(label, name expression) of every pre-pass kernel instantiation."""
    return [(f"split_fp32_tiles_v{vec}_{'lo' if with_lo else 'hi'}", split_name(vec, with_lo))
            for vec in (VEC_ELEMS, 1) for with_lo in (True, False)]


def pack_params(tensors: list[tuple]) -> np.void:
    """One ``SplitParams`` value; ``tensors`` holds, per q, k, v, the values of
    SPLIT_TENSOR_FIELDS in order."""
    flat = [v for t in tensors for v in t]
    raw = _PARAMS_STRUCT.pack(*flat, TARGET_EXP, *_MAX_SHIFTS)
    return np.frombuffer(raw, SPLIT_PARAMS_DTYPE)[0]


def _kernel(cupy, name_expression: str):
    """The loaded pre-pass kernel, allowed (once, when loaded: the compile cache's
    entry) to stage up to SPLIT_MAX_STAGE_BYTES of shared memory. Allowed whatever
    the launch asks for: its static shared memory (the block reduction) counts
    against the same default 48 KB, so a threshold on the stage alone failed a
    48 KB stage (192 query rows at width 64) with CUDA_ERROR_INVALID_VALUE."""
    from ._compile import get_named_function

    return get_named_function(SPLIT_ENTRY_FILE, name_expression, cupy.cuda.Device().id,
                              max_dynamic_smem=SPLIT_MAX_STAGE_BYTES)


def split_operands(cupy, bufs: dict[str, DeviceBuffer], layout: str, block_m: int, block_n: int,
                   with_lo: bool = True, with_q: bool = True) -> SplitOperands:
    """hi (and lo) fp16 copies of q, k, v (float32 DeviceBuffers), each tile scaled
    by its own power of two, and the tiles' shifts, made on cupy's current stream
    without host synchronisation. ``block_m`` / ``block_n``: the query rows and key
    rows of one tile of the attention kernel variant that will read them.
    ``with_q=False`` (KernelSpec.q_in_kernel): k and v only; q keeps its slot in
    the kernel's parameters with no tile (a tensor of no tile gives its blocks to
    the next one: split_fp32.cu), and hi, lo and the shifts hold no q."""
    if list(bufs) != ["q", "k", "v"]:
        raise ValueError(f"split_operands takes q, k, v in that order; got {list(bufs)}")
    shapes = {name: to_bshd(buf.shape, layout) for name, buf in bufs.items()}
    (batch, seqlen_q, heads_q, _), (bk, seqlen_k, heads_kv, _), kv_v = shapes.values()
    if (bk, seqlen_k, heads_kv) != kv_v[:3] or bk != batch:
        raise ValueError(f"split_operands: q, k, v must share the batch and k, v the keys and heads; got "
                         f"{[s[:3] for s in shapes.values()]} (batch, seqlen, heads)")
    where = shift_layout(batch, heads_q, heads_kv, seqlen_q, seqlen_k, block_m, block_n, with_q)
    shifts = cupy.empty(where.size, dtype=cupy.int32)  # every entry is written: one per tile
    base = shifts.data.ptr
    # (tile rows, first shift's address, ints between tiles) per tensor
    placement = {"q": (block_m, base + 4 * where.q_offset, 1), "k": (block_n, base, KV_SHIFTS_PER_TILE),
                 "v": (block_n, base + 4, KV_SHIFTS_PER_TILE)}
    hi, lo, tensors, pads, vec, first = {}, {}, [], [], VEC_ELEMS, 0
    for name, buf in bufs.items():
        batch, seqlen, heads, dim = shapes[name]
        strides = to_bshd(buf.strides, layout)
        if dim > 1 and strides[3] != 1 and batch * seqlen * heads:
            raise ValueError(f"{name}: the last axis must be contiguous; got stride {strides[3]}")
        if dim < 1:
            raise ValueError(f"{name}: the pre-pass needs a head dim of at least 1; got {dim}")
        pad = padded_dim(dim)
        rows, shift_ptr, step = placement[name]
        if name == "q" and not with_q:
            tensors.append((buf.ptr, 0, 0, shift_ptr, *strides[:3], seqlen, heads, dim, pad, rows, 0, first, step))
            continue
        h = cupy.empty((batch, seqlen, heads, pad), dtype=cupy.float16)
        hi[name] = h
        if with_lo:
            lo[name] = cupy.empty((batch, seqlen, heads, pad), dtype=cupy.float16)
        seq_tiles = -(-seqlen // rows)
        tiles = batch * heads * seq_tiles
        if tiles:
            vec = min(vec, vector_width(buf.ptr, strides[:3], (batch, seqlen, heads), dim))
            pads.append((name, rows, pad))
        tensors.append((buf.ptr, h.data.ptr, lo[name].data.ptr if with_lo else 0, shift_ptr, *strides[:3],
                        seqlen, heads, dim, pad, rows, seq_tiles, first, step))
        first += tiles
    if first == 0:
        return SplitOperands(hi, lo, shifts)
    if first >= 2**31:
        raise ValueError(f"split_operands: {first} tiles exceed one launch's 2^31 - 1 blocks")
    for name, rows, pad in pads:
        if pad // vec > SPLIT_THREADS:
            raise ValueError(f"{name}: rows of {pad} columns exceed the pre-pass's {SPLIT_THREADS} column "
                             f"groups of {vec} (the wgmma kernels serve head dims up to 256)")
    smem = max(stage_bytes(rows, pad, vec) for _, rows, pad in pads)
    if smem > SPLIT_MAX_STAGE_BYTES:
        raise ValueError(f"split_operands: a tile would stage {smem} bytes in shared memory, more than "
                         f"{SPLIT_MAX_STAGE_BYTES}; tiles: {[(n, r, p) for n, r, p in pads]} (name, rows, columns)")
    fn = _kernel(cupy, split_name(vec, with_lo))
    fn((first,), (SPLIT_THREADS,), (pack_params(tensors),), shared_mem=smem)
    return SplitOperands(hi, lo, shifts)


@dataclass
class KVOnceBuffers:
    """What a kernel that converts k and v once per call (KernelSpec.kv_once;
    cuda_src/kv_once.h) writes and reads: the fp16 copies (hi, and lo for 3 terms;
    (batch, seqlen_k, heads_kv, width) contiguous), the {e_k, e_v} pairs (the
    shift_layout of q-in-kernel variants), and, zeroed, one flag per key tile followed
    by one counter per (batch, kv head) (cuda_src/kv_flags.h, kv_counter_offset)."""

    hi: dict
    lo: dict
    shifts: object
    flags: object


def kv_once_buffers(cupy, batch: int, seqlen_k: int, heads_kv: int, width: int, block_n: int,
                    with_lo: bool) -> KVOnceBuffers:
    """The buffers of one call, on cupy's current stream: the copies and shifts
    uninitialised (the kernel writes every tile it reads), the flags zeroed (a
    memset in stream order, before the kernel)."""
    n_tiles = -(-seqlen_k // block_n)
    shape = (batch, seqlen_k, heads_kv, width)
    hi = {name: cupy.empty(shape, dtype=cupy.float16) for name in ("k", "v")}
    lo = {name: cupy.empty(shape, dtype=cupy.float16) for name in ("k", "v")} if with_lo else {}
    tiles = batch * heads_kv * n_tiles
    return KVOnceBuffers(hi, lo, cupy.empty(KV_SHIFTS_PER_TILE * tiles, dtype=cupy.int32),
                         cupy.zeros(tiles + batch * heads_kv, dtype=cupy.uint32))
