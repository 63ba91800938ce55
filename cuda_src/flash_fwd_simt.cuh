// Exact-precision forward pass on the CUDA cores, for fp32 and fp64 inputs.
//
// No tensor cores and no TF32: every product and sum is done in the input's own
// precision (fp32 or fp64), so fp32 results are fp32-accurate. This is the
// correctness-first path; the fast fp32 path on tensor cores is a separate kernel.
//
// One CTA owns kNWarps * kRowsPerWarp query rows of one (batch, head). Each warp
// owns kRowsPerWarp rows. Keys and values stream through shared memory in tiles
// of 32 (one key per lane):
//   lane j computes the scores of key j for the warp's rows (dot over head_dim),
//   the warp reduces max and sum with shuffles (online softmax, exp2 domain),
//   then every lane accumulates its head_dim / 32 output columns over the 32 keys.
#pragma once
#include "params.h"

namespace cupyflash {

template <class T> struct SimtMath;
template <> struct SimtMath<float> {
  __device__ static float neg_inf() { return neg_inf_f32(); }
  __device__ static float exp2(float x) { return exp2f(x); }
  __device__ static float log2(float x) { return log2f(x); }
  __device__ static float scale_log2(const FlashParams& p) { return p.scale_log2; }
  static constexpr float kLn2v = kLn2;
};
template <> struct SimtMath<double> {
  __device__ static double neg_inf() { return neg_inf_f64(); }
  __device__ static double exp2(double x) { return ::exp2(x); }
  __device__ static double log2(double x) { return ::log2(x); }
  __device__ static double scale_log2(const FlashParams& p) { return p.softmax_scale * kLog2eF64; }
  static constexpr double kLn2v = kLn2F64;
};

template <class T>
__device__ __forceinline__ T warp_max(T x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x = max(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
template <class T>
__device__ __forceinline__ T warp_sum(T x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

template <class T, int kD, int kNWarps, int kRowsPerWarp>
struct SimtTraits {
  static constexpr int kThreads = kNWarps * kWarpSize;
  static constexpr int kBlockM = kNWarps * kRowsPerWarp;
  static constexpr int kBlockN = kWarpSize;  // one key per lane
  static constexpr int kCols = kD / kWarpSize;  // output columns per lane
  // K rows padded by one element: lane j reading K[j][d] hits bank (j*(kD+1)+d) % 32, all distinct.
  static constexpr int kKPitch = kD + 1;
  static constexpr int kSmemBytes = (kBlockM * kD + kBlockN * kKPitch + kBlockN * kD) * sizeof(T);
  static_assert(kD % kWarpSize == 0 && kD <= 256, "head dim tile must be a multiple of 32, at most 256");
};

template <class T, int kD, int kNWarps, int kRowsPerWarp>
__global__ void __launch_bounds__(kNWarps * kWarpSize)
    flash_fwd_simt(const __grid_constant__ FlashParams p) {
  using Tr = SimtTraits<T, kD, kNWarps, kRowsPerWarp>;
  using M = SimtMath<T>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);  // [kBlockM][kD]
  T* sK = sQ + Tr::kBlockM * kD;           // [kBlockN][kKPitch]
  T* sV = sK + Tr::kBlockN * Tr::kKPitch;  // [kBlockN][kD]

  const int tid = threadIdx.x, lane = tid % kWarpSize, warp = tid / kWarpSize;
  const int m_block = gridDim.x - 1 - blockIdx.x;  // longest (causal) blocks first
  const int head = blockIdx.y, batch = blockIdx.z;
  const int kv_head = head / p.group;
  const int m0 = m_block * Tr::kBlockM;

  const T* q = static_cast<const T*>(p.q) + batch * p.q_batch_stride + head * p.q_head_stride;
  const T* k = static_cast<const T*>(p.k) + batch * p.k_batch_stride + kv_head * p.k_head_stride;
  const T* v = static_cast<const T*>(p.v) + batch * p.v_batch_stride + kv_head * p.v_head_stride;

  // Q tile, zero-padded past seqlen_q and head_dim.
  for (int idx = tid; idx < Tr::kBlockM * kD; idx += Tr::kThreads) {
    const int r = idx / kD, d = idx % kD;
    const int row = m0 + r;
    sQ[idx] = (row < p.seqlen_q && d < p.head_dim) ? q[row * p.q_row_stride + d] : T(0);
  }

  int n_end = p.seqlen_k;
  if (p.causal) n_end = min(n_end, m0 + Tr::kBlockM + p.causal_offset);
  const int n_tiles = n_end > 0 ? ceil_div(n_end, Tr::kBlockN) : 0;

  const T scale_log2 = M::scale_log2(p);
  T acc[kRowsPerWarp][Tr::kCols];
  T row_max[kRowsPerWarp], row_sum[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    row_max[r] = M::neg_inf();
    row_sum[r] = T(0);
#pragma unroll
    for (int c = 0; c < Tr::kCols; ++c) acc[r][c] = T(0);
  }
  const int warp_row0 = m0 + warp * kRowsPerWarp;

  for (int tile = 0; tile < n_tiles; ++tile) {
    const int n0 = tile * Tr::kBlockN;
    __syncthreads();  // previous tile fully consumed (and, on entry, sQ written)
    for (int idx = tid; idx < Tr::kBlockN * kD; idx += Tr::kThreads) {
      const int j = idx / kD, d = idx % kD;
      const int key = n0 + j;
      const bool in = key < p.seqlen_k;
      sK[j * Tr::kKPitch + d] = (in && d < p.head_dim) ? k[key * p.k_row_stride + d] : T(0);
      sV[j * kD + d] = (in && d < p.head_dim_v) ? v[key * p.v_row_stride + d] : T(0);
    }
    __syncthreads();

    // Scores of key (n0 + lane) for the warp's rows.
    T s[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) s[r] = T(0);
    const T* k_row = sK + lane * Tr::kKPitch;
    const T* q_rows = sQ + warp * kRowsPerWarp * kD;
#pragma unroll 4
    for (int d = 0; d < kD; ++d) {
      const T kd = k_row[d];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) s[r] = fma(q_rows[r * kD + d], kd, s[r]);
    }

    const int key = n0 + lane;
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int row = warp_row0 + r;
      const bool visible = key < p.seqlen_k && (!p.causal || key <= row + p.causal_offset);
      const T x = visible ? s[r] : M::neg_inf();
      const T new_max = max(row_max[r], warp_max(x));
      // Fully masked so far: offset 0 keeps exp2(-inf - offset) = 0 instead of NaN.
      const T offset = new_max == M::neg_inf() ? T(0) : new_max * scale_log2;
      const T correction = M::exp2(row_max[r] * scale_log2 - offset);
      row_max[r] = new_max;
      s[r] = M::exp2(x * scale_log2 - offset);
      row_sum[r] = row_sum[r] * correction + warp_sum(s[r]);
#pragma unroll
      for (int c = 0; c < Tr::kCols; ++c) acc[r][c] *= correction;
    }

    // O += P V: broadcast each key's probability from its lane.
#pragma unroll 4
    for (int j = 0; j < Tr::kBlockN; ++j) {
      T vj[Tr::kCols];
#pragma unroll
      for (int c = 0; c < Tr::kCols; ++c) vj[c] = sV[j * kD + c * kWarpSize + lane];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const T pj = __shfl_sync(0xffffffffu, s[r], j);
#pragma unroll
        for (int c = 0; c < Tr::kCols; ++c) acc[r][c] = fma(pj, vj[c], acc[r][c]);
      }
    }
  }

  T* o = static_cast<T*>(p.o) + batch * p.o_batch_stride + head * p.o_head_stride;
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp_row0 + r;
    if (row >= p.seqlen_q) continue;
    const T inv = row_sum[r] > T(0) ? T(1) / row_sum[r] : T(0);  // no key attended: 0, not NaN
#pragma unroll
    for (int c = 0; c < Tr::kCols; ++c) {
      const int d = c * kWarpSize + lane;
      if (d < p.head_dim_v) o[row * p.o_row_stride + d] = acc[r][c] * inv;
    }
    if (p.lse != nullptr && lane == 0) {
      const T lse = row_sum[r] > T(0) ? (row_max[r] * scale_log2 + M::log2(row_sum[r])) * M::kLn2v : M::neg_inf();
      p.lse[(static_cast<i64>(batch) * p.heads_q + head) * p.seqlen_q + row] = static_cast<float>(lse);
    }
  }
}

}  // namespace cupyflash
