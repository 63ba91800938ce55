// Translation unit of the float32 pre-pass (cupyflash/_split.py): two kernels,
// each over q, k and v in one launch (blockIdx.y = tensor), block-stride loops
// over rows (blockIdx.x), one thread per kVec-wide column group of a row.
//   cupyflash::split_fp32_absmax<kVec>       finite abs-max of each tensor
//   cupyflash::split_fp32_split<kVec, kLo>   hi (and lo) fp16 copies, scaled by 2^e
// kVec = 4: float4 loads and 8-byte (4 x fp16) stores; the host picks it only when
// every tensor's base is 16-byte aligned, its strides are multiples of 4 elements
// and its dim is a multiple of 4 (an input class, not a retry), otherwise kVec = 1.
#include "split_params.h"
#include "ptx.h"

namespace cupyflash {

constexpr int kSplitThreads = 256;  // mirrored by SPLIT_THREADS in cupyflash/_split.py
// Rows a thread loads before it uses any: two 16-byte loads in flight per thread
// keep enough bytes moving per SM to reach HBM bandwidth at full occupancy.
constexpr int kSplitRowsInFlight = 2;  // mirrored by SPLIT_ROWS_IN_FLIGHT
// Blocks resident per SM, mirrored by BLOCKS_PER_SM: the host sizes the grid to
// one such wave, so this caps the registers at 40 per thread (ptxas used 34-46
// uncapped; 8 blocks, 32 registers, spilled the abs-max kernel's row cursors).
// 1536 threads x 2 rows in flight x 16 bytes: 48 KB of loads in flight per SM.
constexpr int kSplitBlocksPerSm = 6;
constexpr u32 kF32AbsMask = 0x7fffffffu;
constexpr u32 kF32InfBits = 0x7f800000u;  // |x| bits below this: x is finite
constexpr int kF32ExpBias = 127;
constexpr int kF32MantBits = 23;
constexpr u32 kF32MantMask = (1u << kF32MantBits) - 1;
constexpr int kF32SubnormalExp = -149;  // a subnormal float is mantissa * 2^-149
// ceil(log2(0)) as the reference formula has it: log2 of 2^-1000, its stand-in for 0.
constexpr int kZeroCeilLog2 = -1000;

// ---- the factor formula (mirrored by shift_exponent in cupyflash/_split.py) ----

// ceil(log2(m)) for a finite m > 0, exactly: integer work on the bits, so it
// agrees with the reference's double-precision ceil(log2(m)) for every float.
__device__ __forceinline__ int ceil_log2_f32(u32 bits) {
  const int biased = static_cast<int>(bits >> kF32MantBits);
  const u32 mant = bits & kF32MantMask;
  if (biased == 0) {  // subnormal: ceil(log2(mant)) + kF32SubnormalExp, mant >= 1
    return (32 - __clz(static_cast<int>(mant - 1))) + kF32SubnormalExp;
  }
  return biased - kF32ExpBias + (mant != 0 ? 1 : 0);  // 1.f * 2^x: a power of two only when f = 0
}

// The shift e of one tensor from its finite abs-max (float bits): max |x * 2^e| in
// (2^(target-1), 2^target], clipped to +-max_shift; an all-zero tensor takes +max_shift.
__device__ __forceinline__ int split_shift(u32 max_bits, int target, int max_shift) {
  const int e = target - (max_bits == 0 ? kZeroCeilLog2 : ceil_log2_f32(max_bits));
  return min(max(e, -max_shift), max_shift);
}

// 2^e as a float, exactly, for e in [-126, 127] (normal numbers; the host checks
// that MAX_SHIFT keeps every factor and undoing factor in that range).
__device__ __forceinline__ float pow2_f32(int e) {
  return __uint_as_float(static_cast<u32>(e + kF32ExpBias) << kF32MantBits);
}

// ---- rows: (batch, seq, head) triples walked without a division per step ----

struct RowCursor {
  i64 r;        // linear row index, (b * seqlen + s) * heads + h
  int b, s, h;
};

__device__ __forceinline__ RowCursor row_at(i64 r, int seqlen, int heads) {
  const i64 bs = r / heads;
  return {r, static_cast<int>(bs / seqlen), static_cast<int>(bs % seqlen), static_cast<int>(r % heads)};
}

// c += step, with step's own (b, s, h) decomposition (s < seqlen, h < heads):
// each carry is at most one, so two compares replace the 64-bit divisions.
__device__ __forceinline__ void advance(RowCursor& c, const RowCursor& step, int seqlen, int heads) {
  c.r += step.r;
  c.h += step.h;
  if (c.h >= heads) { c.h -= heads; ++c.s; }
  c.s += step.s;
  if (c.s >= seqlen) { c.s -= seqlen; ++c.b; }
  c.b += step.b;
}

__device__ __forceinline__ i64 input_offset(const SplitTensor& t, const RowCursor& c) {
  return c.b * t.batch_stride + c.s * t.row_stride + c.h * t.head_stride;
}

// Which rows and column groups a thread owns: `vecs` groups per row; a block
// covers rows_per_pass rows at a time (threads past that idle); rows wider than
// the block loop over their columns.
struct RowWalk {
  int vecs, rows_per_pass, col0;
  RowCursor cur[kSplitRowsInFlight];
  RowCursor step;
};

__device__ __forceinline__ RowWalk row_walk(const SplitTensor& t, int vecs) {
  RowWalk w;
  w.vecs = vecs;
  w.rows_per_pass = max(kSplitThreads / vecs, 1);
  const int rsub = threadIdx.x / vecs;
  w.col0 = threadIdx.x - rsub * vecs;
  const i64 pass = static_cast<i64>(gridDim.x) * w.rows_per_pass;  // rows one sweep of the grid covers
  const i64 first = rsub < w.rows_per_pass ? static_cast<i64>(blockIdx.x) * w.rows_per_pass + rsub : t.rows;
#pragma unroll
  for (int j = 0; j < kSplitRowsInFlight; ++j) w.cur[j] = row_at(first + j * pass, t.seqlen, t.heads);
  w.step = row_at(pass * kSplitRowsInFlight, t.seqlen, t.heads);
  return w;
}

template <int kVec>
struct F32Vec { float v[kVec]; };

template <int kVec>
__device__ __forceinline__ F32Vec<kVec> load_vec(const float* p) {
  F32Vec<kVec> out;
  if constexpr (kVec == 4) {
    const float4 x = *reinterpret_cast<const float4*>(p);
    out.v[0] = x.x; out.v[1] = x.y; out.v[2] = x.z; out.v[3] = x.w;
  } else {
    out.v[0] = *p;
  }
  return out;
}

// ---- kernel 1: finite abs-max of q, k, v ----

template <int kVec>
__global__ void __launch_bounds__(kSplitThreads, kSplitBlocksPerSm) split_fp32_absmax(const __grid_constant__ SplitParams p) {
  const SplitTensor& t = p.t[blockIdx.y];
  u32 m = 0;  // max |x| as float bits: non-negative floats order like their bits
  if (t.rows > 0) {
    RowWalk w = row_walk(t, t.dim / kVec);
    while (w.cur[0].r < t.rows) {  // cur[0] is the lowest of the rows in flight
      for (int c = w.col0; c < w.vecs; c += kSplitThreads) {
        F32Vec<kVec> x[kSplitRowsInFlight];
#pragma unroll
        for (int j = 0; j < kSplitRowsInFlight; ++j) {
          if (w.cur[j].r < t.rows) {
            x[j] = load_vec<kVec>(t.x + input_offset(t, w.cur[j]) + c * kVec);
          } else {
#pragma unroll
            for (int i = 0; i < kVec; ++i) x[j].v[i] = 0.0f;
          }
        }
#pragma unroll
        for (int j = 0; j < kSplitRowsInFlight; ++j) {
#pragma unroll
          for (int i = 0; i < kVec; ++i) {
            const u32 a = __float_as_uint(x[j].v[i]) & kF32AbsMask;
            m = max(m, a < kF32InfBits ? a : 0u);  // NaN and inf stay out of the factor
          }
        }
      }
#pragma unroll
      for (int j = 0; j < kSplitRowsInFlight; ++j) advance(w.cur[j], w.step, t.seqlen, t.heads);
    }
  }
  __shared__ u32 warp_max[kSplitThreads / kWarpSize];
  m = __reduce_max_sync(0xffffffffu, m);
  if (threadIdx.x % kWarpSize == 0) warp_max[threadIdx.x / kWarpSize] = m;
  __syncthreads();
  if (threadIdx.x == 0) {
#pragma unroll
    for (int i = 1; i < kSplitThreads / kWarpSize; ++i) m = max(m, warp_max[i]);
    if (m != 0) atomicMax(p.maxima + blockIdx.y, m);
  }
}

// ---- kernel 2: hi = fp16(x * 2^e), lo = fp16(x * 2^e - hi), zero padding ----

// One pair of elements (the second is a dummy for kVec = 1). __fmul_rn and
// __fsub_rn are never contracted: an FMA would compute x * s - hi unrounded,
// which differs from the reference's rounded y - hi when x * s is subnormal.
__device__ __forceinline__ void split_pair(float a, float b, float s, u32& hi, u32& lo) {
  const float ya = __fmul_rn(a, s), yb = __fmul_rn(b, s);
  hi = pack2<Half>(ya, yb);  // cvt.rn: round to nearest even
  const float2 h = unpack_half2(hi);
  lo = pack2<Half>(__fsub_rn(ya, h.x), __fsub_rn(yb, h.y));
}

template <int kVec, bool kLo>
__global__ void __launch_bounds__(kSplitThreads, kSplitBlocksPerSm) split_fp32_split(const __grid_constant__ SplitParams p) {
  // The factors come from the maxima of split_fp32_absmax, earlier on the same
  // stream; every thread derives them itself (a broadcast load and a few integer ops).
  if (blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x == 0) {  // the one writer of scales
    const int eq = split_shift(p.maxima[0], p.target_exp, p.max_shift[0]);
    const int ek = split_shift(p.maxima[1], p.target_exp, p.max_shift[1]);
    const int ev = split_shift(p.maxima[2], p.target_exp, p.max_shift[2]);
    p.scales[0] = pow2_f32(-eq - ek);
    p.scales[1] = pow2_f32(-ev);
  }
  const SplitTensor& t = p.t[blockIdx.y];
  if (t.rows == 0) return;
  const float s = pow2_f32(split_shift(p.maxima[blockIdx.y], p.target_exp, p.max_shift[blockIdx.y]));
  const int in_vecs = t.dim / kVec;
  RowWalk w = row_walk(t, t.padded_dim / kVec);  // output groups: padding columns included
  while (w.cur[0].r < t.rows) {
    for (int c = w.col0; c < w.vecs; c += kSplitThreads) {
      F32Vec<kVec> x[kSplitRowsInFlight];
#pragma unroll
      for (int j = 0; j < kSplitRowsInFlight; ++j) {
        if (w.cur[j].r < t.rows && c < in_vecs) {
          x[j] = load_vec<kVec>(t.x + input_offset(t, w.cur[j]) + c * kVec);
        } else {  // a padding column (or no row): written as zeros, 0 * s = +0
#pragma unroll
          for (int i = 0; i < kVec; ++i) x[j].v[i] = 0.0f;
        }
      }
#pragma unroll
      for (int j = 0; j < kSplitRowsInFlight; ++j) {
        if (w.cur[j].r >= t.rows) continue;
        const i64 out = w.cur[j].r * t.padded_dim + c * kVec;  // hi/lo are contiguous
        if constexpr (kVec == 4) {
          uint2 hi, lo;
          split_pair(x[j].v[0], x[j].v[1], s, hi.x, lo.x);
          split_pair(x[j].v[2], x[j].v[3], s, hi.y, lo.y);
          *reinterpret_cast<uint2*>(t.hi + out) = hi;  // 8-byte aligned: padded_dim % 8 == 0
          if constexpr (kLo) *reinterpret_cast<uint2*>(t.lo + out) = lo;
        } else {
          u32 hi, lo;
          split_pair(x[j].v[0], 0.0f, s, hi, lo);
          t.hi[out] = static_cast<u16>(hi);
          if constexpr (kLo) t.lo[out] = static_cast<u16>(lo);
        }
      }
    }
#pragma unroll
    for (int j = 0; j < kSplitRowsInFlight; ++j) advance(w.cur[j], w.step, t.seqlen, t.heads);
  }
}

}  // namespace cupyflash
