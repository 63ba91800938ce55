// The per-tile power-of-two shifts of the float32 wgmma kernels (kFp32Terms > 0):
// written by the pre-pass (split_fp32.cu), read by the attention kernel
// (flash_fwd_wgmma.cuh). Mirrored in cupyflash/_split.py (shift_layout), which
// allocates the array and whose CPU model (tests/split_reference.py) undoes them.
//
// The pre-pass stores every operand tile x as fp16 hi (+ lo) = x * 2^e, with e
// chosen from that tile's own finite abs-max. A tile is the attention kernel's
// unit of work: kBlockM query rows of one (batch, head) for Q, kBlockN key rows
// of one (batch, kv head) for K and V. The shifts are one int array:
//   ints [0, 2 * batch * heads_kv * n_tiles): for (batch, kv head, key tile) the
//       pair {e_k, e_v}, so that one 8-byte load gives a key tile both;
//   then batch * heads_q * m_blocks ints: e_q for (batch, query head, query block);
// n_tiles = ceil(seqlen_k / kBlockN), m_blocks = ceil(seqlen_q / kBlockM).
//
// How the Hopper kernel (flash_fwd_wgmma.cuh) uses them, by variant:
// kFp32Terms > 0 computes fp32 attention from fp16 operands that the host
// pre-pass rescaled on the device, each tile of this kernel (a query block, a
// key tile) by its own power of two 2^e (the shifts come in p.tile_shifts,
// laid out above), and writes fp32. With 3 terms Q, K and V arrive as hi and lo
// fp16 tensors (x*2^e = hi + lo) and every product keeps hi*hi + hi*lo + lo*hi
// (three wgmmas per k-step, P split in registers the same way): fp32
// accuracy. With 1 term only hi exists: fp16's 10-bit mantissa, TF32-like
// error, the fp16 kernel's speed. bench/notes/fp32_fp64.md ("fp32 on tensor
// cores") has the error study behind the choice of fp16. Undoing the shifts,
// all exact (powers of two): key tile t's raw scores are true ones times
// 2^(e_q + e_k(t)), so the softmax takes 2^-(e_q + e_k(t)) into its exponent
// multiplier and keeps the row max in true units (softmax.h, ScaledTile); its
// P.V is P x V(t) 2^e_v(t): with 3 terms it lands in a zeroed accumulator and
// is added to O times 2^-e_v(t) (one FFMA, O in true units); with 1 term the
// wgmma adds it to O itself, so O is kept in the units of the largest V tile
// so far and smaller tiles enter with P scaled down (OUnits below).
// Key tile t's shifts are read at the top of its step (L2, 8 bytes): the
// Q.K^T wgmma hides their latency. Where the conversion happens: kConvertStages
// > 0, the producer's warps convert q, k, v into the fp16 buffers, shifts kept in
// shared memory (wgmma_convert.h); kQInKernel (widths <= 128), each consumer
// warpgroup its own 64 rows of Q, e_q included (q_convert.h), the pre-pass K and
// V; kKVOnce, K and V too, each key tile once per call (kv_once.h).
// Elem = Tf32 takes float32 operands as they are: Q and K straight from the
// caller's tensors, V as V^T from a small pre-pass (cupyflash/_vt.py; tf32
// wgmma cannot transpose B), and multiplies them as tf32 (m64nNk8 wgmma, 10-bit
// mantissas, fp32 accumulation). P stays fp32 in registers, rounded to tf32, as
// the A operand of P.V; the pre-pass orders V^T's keys to match (p_fragment.h). fp32 output.
#pragma once
#include "common.h"

namespace cupyflash {

constexpr int kF32ExpBias = 127;
constexpr int kF32MantBits = 23;
// The exponent range of normal floats: pow2_f32 is exact there and only there.
constexpr int kF32MinNormalExp = -126;

// 2^e as a float, exactly, for e in [-126, 127] (normal numbers; the host checks
// that MAX_SHIFT keeps every factor the kernels build from the shifts in that range).
__device__ __forceinline__ float pow2_f32(int e) {
  return __uint_as_float(static_cast<u32>(e + kF32ExpBias) << kF32MantBits);
}

// (constexpr on the host too: tests/test_split.py static_asserts them against the Python mirror.)
// Index of the {e_k, e_v} pair of key tile 0 of (batch, kv_head), in pairs.
__host__ __device__ constexpr i64 kv_shift_index(int batch, int kv_head, int heads_kv, int n_tiles) {
  return (static_cast<i64>(batch) * heads_kv + kv_head) * n_tiles;
}

// Index of e_q of query block m_block of (batch, head), in ints.
__host__ __device__ constexpr i64 q_shift_index(int batch, int head, int m_block, int batches, int heads_q,
                                                int heads_kv, int n_tiles, int m_blocks) {
  return 2 * static_cast<i64>(batches) * heads_kv * n_tiles + (static_cast<i64>(batch) * heads_q + head) * m_blocks +
         m_block;
}

// ---- the one-term variant's O units ----
// With one fp16 term the P.V wgmma accumulates P x (V * 2^e_v) straight into O,
// so O must be in the units of the V tile whose product lands next. O holds
// true O * 2^exp, exp the smallest e_v of the item's tiles so far (the tile of
// the largest magnitude: O never overflows, |O * 2^exp| <= row sum * 2^14). A
// tile with a larger e_v (smaller values) enters P scaled by 2^-(e_v - exp),
// exactly, through the softmax's exponent (its V values would be that much
// smaller in O's units): at most 2^-kMaxPShift, past which fp16 P is 0 anyway
// (fp16's smallest subnormal is 2^-24) and p * 2^-kMaxPShift still keeps every
// p >= 2^-94 a normal float32 for the row sum, which gets p back exactly.
// Not the tile's own units as O's: an all-zero or tiny V tile has e_v up to
// +120, and O scaled up by 2^120 would overflow; and neighbouring tiles of
// N(0, 1) data change e_v every other tile, so O would be rescaled on most tiles.
constexpr int kMaxPShift = 32;

// A tile whose e_v is d above O's units: P's shift, and the exponent of O's
// factor (min(d, 0): O moves only to a larger tile; 2^-126 at most, see enter).
__host__ __device__ constexpr int p_shift_of(int d) { return d < 0 ? 0 : d > kMaxPShift ? kMaxPShift : d; }
__host__ __device__ constexpr int unit_exp_of(int d) { return d > 0 ? 0 : d < kF32MinNormalExp ? kF32MinNormalExp : d; }

struct OUnits {
  int exp;  // O holds true O * 2^exp

  // The item's first tile: O starts in its units.
  __device__ __forceinline__ void start(int e_v) { exp = e_v; }
  // A later tile with shift e_v: P's shift (an integer in [0, kMaxPShift]), and
  // whether O's units move (to e_v, a larger tile), by the factor *unit <= 1.
  // Hazard: a move by more than 126 octaves takes 2^-126, not the exact factor
  // (it is not a normal float): what O held is then below 2^-112 of the new
  // tile's values, and rounds away in fp32 either way.
  __device__ __forceinline__ int enter(int e_v, bool& moved, float& unit) {
    const int d = e_v - exp;
    moved = d < 0;
    unit = pow2_f32(unit_exp_of(d));
    exp = min(exp, e_v);
    return p_shift_of(d);
  }
  // The epilogue's factor: true O = O * 2^-exp.
  __device__ __forceinline__ float out_mult() const { return pow2_f32(-exp); }
};

}  // namespace cupyflash
