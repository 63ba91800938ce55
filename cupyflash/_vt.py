"""The V^T pre-pass of the tf32 wgmma kernel (float32, precision="fast" on Hopper).

The tf32 wgmma reads its shared-memory B operand K-major only (PTX allows the
transpose bit for 16-bit types alone), so O += P.V needs V with the keys
contiguous. ``transpose_v`` writes V^T, one launch of ``transpose_v_tf32``
(cuda_src/vt_fp32.cu), on the caller's stream:

  V  (batch, seqlen_k, heads_kv, dim), any strides (bhsd views in place)
  -> V^T (batch, heads_kv, dim, keys_pad) float32, contiguous,

with keys permuted inside every group of 8 (``KEY_ORDER``: the order in which
the kernel's Q.K^T accumulators hand P to the P.V wgmma, see pack_p in
cuda_src/flash_fwd_wgmma.cuh), values rounded to tf32 (to nearest, ties away from
zero) and keys seqlen_k .. keys_pad - 1 written as zeros, so that a masked key
(P = 0) never meets garbage (0 * NaN = NaN). Q and K need no pass: the kernel's
TMA reads them from the caller's tensors as they are. ``reference_vt`` is the
same map in NumPy (tests/test_vt.py compares the two bit for bit on the GPU).
"""

from __future__ import annotations

import numpy as np

from ._arrays import DeviceBuffer
from ._problem import to_bshd

VT_ENTRY_FILE = "vt_fp32.cu"
VT_KERNEL = "cupyflash::transpose_v_tf32"
VT_THREADS = 256  # kVtThreads
VT_TILE = 32  # kVtTile: keys and columns per block
KEY_GROUP = 8  # kVtGroup: keys per permutation group; keys_pad is a multiple of it
# V^T position j of a group of 8 holds key KEY_ORDER[j] of that group (vt_key_in_group).
KEY_ORDER = np.array([0, 2, 4, 6, 1, 3, 5, 7])
# tf32 keeps 10 of float32's 23 mantissa bits.
TF32_DROPPED_BITS = 13
_TF32_MASK = np.uint32((0xFFFFFFFF << TF32_DROPPED_BITS) & 0xFFFFFFFF)
_TF32_HALF_ULP = np.uint32(1 << (TF32_DROPPED_BITS - 1))


def keys_padded(seqlen_k: int) -> int:
    """V^T's row length: seqlen_k rounded up to whole permutation groups (and 32-byte rows)."""
    return seqlen_k + (-seqlen_k) % KEY_GROUP


def round_tf32(x: np.ndarray) -> np.ndarray:
    """float32 -> tf32 values (as float32), as cvt.rna.tf32.f32 rounds: to nearest, ties
    away from zero (half an ulp added to the magnitude bits, then the 13 low bits
    cleared); inf and NaN keep their class. Finite values past the largest tf32 round to inf."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    finite = np.isfinite(x)
    rounded = np.where(finite, bits + _TF32_HALF_ULP, bits) & _TF32_MASK
    return rounded.view(np.float32)


def key_positions(keys_pad: int) -> np.ndarray:
    """For every V^T column, the key it holds (keys_pad must be a multiple of KEY_GROUP)."""
    groups = np.arange(keys_pad // KEY_GROUP)[:, None] * KEY_GROUP
    return (groups + KEY_ORDER[None, :]).reshape(-1)


def reference_vt(v_bshd: np.ndarray) -> np.ndarray:
    """NumPy V^T of a (batch, seqlen_k, heads_kv, dim) float32 array, exactly as the kernel writes it."""
    batch, seqlen, heads, dim = v_bshd.shape
    keys_pad = keys_padded(seqlen)
    padded = np.zeros((batch, keys_pad, heads, dim), dtype=np.float32)
    padded[:, :seqlen] = v_bshd
    permuted = padded[:, key_positions(keys_pad)]  # (batch, keys_pad, heads, dim) in V^T column order
    return round_tf32(np.ascontiguousarray(permuted.transpose(0, 2, 3, 1)))


def grid(batch: int, heads: int, dim: int, keys_pad: int) -> tuple[tuple[int, int, int], int]:
    """(grid, key_tiles) of one launch: (batch * heads * key_tiles, dim tiles, 1)."""
    key_tiles = -(-keys_pad // VT_TILE)
    return (batch * heads * key_tiles, -(-dim // VT_TILE), 1), key_tiles


def transpose_v(cupy, v: DeviceBuffer, layout: str):
    """V^T of a float32 DeviceBuffer v (``layout`` "bshd" or "bhsd"), on cupy's current
    stream, as a new contiguous cupy array (batch, heads_kv, dim, keys_pad)."""
    from ._compile import get_named_function

    batch, seqlen, heads, dim = to_bshd(v.shape, layout)
    batch_stride, row_stride, head_stride, col_stride = to_bshd(v.strides, layout)
    if dim > 1 and col_stride != 1 and batch * seqlen * heads:
        raise ValueError(f"v: the last axis must be contiguous; got stride {col_stride}")
    keys_pad = keys_padded(seqlen)
    vt = cupy.empty((batch, heads, dim, keys_pad), dtype=cupy.float32)
    if vt.size == 0:
        return vt
    (gx, gy, gz), key_tiles = grid(batch, heads, dim, keys_pad)
    fn = get_named_function(VT_ENTRY_FILE, VT_KERNEL, cupy.cuda.Device().id)
    fn((gx, gy, gz), (VT_THREADS,), (np.uint64(v.ptr), vt, np.int64(batch_stride), np.int64(row_stride),
                                     np.int64(head_stride), np.int32(seqlen), np.int32(heads), np.int32(dim),
                                     np.int32(keys_pad), np.int32(key_tiles)))
    return vt
