// Float64 forward pass on the fp64 tensor cores (DMMA: mma.sync m8n8k4 f64, sm_80+).
//
// Every product and sum is an IEEE fp64 fused multiply-add, exactly as on the
// CUDA cores, so the result is as accurate as the SIMT kernel's; DMMA has twice
// the fp64 throughput of the CUDA cores on A100/H100 and reads its operands
// straight from registers.
//
// The algorithm is the mma.sync kernel's (flash_fwd_mma.cuh) at fp64:
//   S = Q K^T              (DMMA, Q and K fragments from shared memory)
//   mask S where needed
//   P = exp2(S*scale*log2e - m), rescale O and the row sums   (online softmax, fp64)
//   O += P V               (DMMA, P straight from the S registers)
// One CTA owns kBlockM query rows of one (batch, head); each warp owns 8 * kMTiles
// of them. K and V stream through shared memory from the last key tile to the
// first; V[j] is in flight while S = Q K[j]^T runs, K[j-1] while O += P V[j] runs.
//
// Fragments of m8n8k4 f64 (g = lane / 4, t = lane % 4):
//   A (8x4, row): a = (g, t)    B (4x8, col): b = (k t, n g)    C (8x8): c0, c1 = (g, 2t), (g, 2t+1)
#pragma once
#include "mask.h"
#include "params.h"
#include "ptx.h"
#include "softmax.h"

namespace cupyflash {

// O += P.V needs P as A fragments (thread t holds key t of a k4 step), but the
// S accumulator gives thread t keys 2t and 2t+1 of each n8 tile. The order of
// the keys inside a sum is free, so k-step e of an n8 tile takes key 2t + e from
// thread t, and V's B fragment reads the same key: no shuffles.
//
// Shared-memory pitches (in doubles), chosen so that each half-warp's 8-byte
// fragment reads (the unit the banks serve for 64-bit accesses) hit 16 distinct
// 8-byte bank pairs:
//   Q, K (row g, column t): pitch = 4 (mod 16) puts rows g = 0..3 at pairs 4g + t.
//   V (row 2t + e, column g): pitch = 2 (mod 16) puts rows 2t at pairs 4t + g.
// Head-dim widths are multiples of 16 doubles, so kD + 4 and kD + 2 do that.
constexpr int kDmmaPadQK = 4;
constexpr int kDmmaPadV = 2;

template <int kD, int kBlockM, int kBlockN, int kNWarps, int kMTiles>
struct DmmaKernelTraits {
  static constexpr int kThreads = kNWarps * kWarpSize;
  static constexpr int kRowsPerWarp = 8 * kMTiles;  // kMTiles m8 tiles of query rows per warp
  static constexpr int kNTiles = kBlockN / 8;       // n8 tiles of S per m tile
  static constexpr int kOTiles = kD / 8;            // n8 tiles of O per m tile
  static constexpr int kPitchQK = kD + kDmmaPadQK;
  static constexpr int kPitchV = kD + kDmmaPadV;
  static constexpr int kSmemQ = kBlockM * kPitchQK;  // doubles
  static constexpr int kSmemK = kBlockN * kPitchQK;
  static constexpr int kSmemV = kBlockN * kPitchV;
  static constexpr int kSmemBytes = (kSmemQ + kSmemK + kSmemV) * 8;

  static_assert(kBlockM == kNWarps * kRowsPerWarp, "each warp owns exactly 8 * kMTiles query rows");
  static_assert(kD % 16 == 0 && kD <= 256, "head dim width must be a multiple of 16 (the pitch rule), at most 256");
  static_assert(kBlockN % 8 == 0, "key tile must be a multiple of 8 (n8 tiles of S)");
};

// The largest power of two (at most 256) that divides kD: that many threads
// share a row of a tile, each copying every kLanes-th column.
template <int kD>
__host__ __device__ constexpr int dmma_row_lanes() {
  int lanes = 256;
  while (kD % lanes != 0) lanes /= 2;
  return lanes;
}

// A kRows x kD tile (rows_valid rows, cols_valid columns of real data) into a
// padded shared tile. A thread's copies sit at fixed offsets from one shared and
// one global address (rows kRowStep apart, columns kLanes apart), so the
// unrolled loop needs no per-copy address registers. Consecutive threads copy
// consecutive columns: coalesced.
template <int kRows, int kD, int kPitch, int kThreads>
__device__ __forceinline__ void load_tile_f64(double* dst, const double* src, i64 row_stride, int rows_valid,
                                              int cols_valid, int tid) {
  constexpr int kLanes = dmma_row_lanes<kD>() < kThreads ? dmma_row_lanes<kD>() : kThreads;
  constexpr int kRowStep = kThreads / kLanes;
  static_assert(kRows % kRowStep == 0, "the threads' rows tile the tile's rows");
  const int r0 = tid / kLanes, c0 = tid % kLanes;
  const u32 dst0 = smem_addr(dst + r0 * kPitch + c0);
  const double* src0 = src + r0 * row_stride + c0;
#pragma unroll
  for (int i = 0; i < kRows / kRowStep; ++i) {
    const bool row_ok = r0 + i * kRowStep < rows_valid;
#pragma unroll
    for (int j = 0; j < kD / kLanes; ++j) {
      const bool valid = row_ok && c0 + j * kLanes < cols_valid;
      cp_async_8(dst0 + (i * kRowStep * kPitch + j * kLanes) * 8, valid ? src0 + j * kLanes : src, valid);
    }
    src0 += kRowStep * row_stride;
  }
}

// S (the warp's rows x kBlockN) = Q (warp's rows) . K^T
template <class Tr, int kMTiles>
__device__ __forceinline__ void dmma_qk(double (&s)[kMTiles][Tr::kNTiles][2], const double* sQ_warp,
                                        const double* sK, int lane) {
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
    for (int j = 0; j < Tr::kNTiles; ++j) s[mt][j][0] = s[mt][j][1] = 0.0;
  const int g = lane / 4, t = lane % 4;
  const double* a_ptr = sQ_warp + g * Tr::kPitchQK + t;  // Q row g, column t of the k4 step
  const double* b_ptr = sK + g * Tr::kPitchQK + t;       // K row (key) g, column t
#pragma unroll
  for (int kk = 0; kk < Tr::kOTiles * 2; ++kk) {  // k4 steps over the head dim
    double a[kMTiles];
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) a[mt] = a_ptr[mt * 8 * Tr::kPitchQK + kk * 4];
#pragma unroll
    for (int j = 0; j < Tr::kNTiles; ++j) {
      const double b = b_ptr[j * 8 * Tr::kPitchQK + kk * 4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) dmma_884(s[mt][j], a[mt], b);
    }
  }
}

// O (the warp's rows x kD) += P (in the S registers) . V
template <class Tr, int kMTiles>
__device__ __forceinline__ void dmma_pv(double (&acc_o)[kMTiles][Tr::kOTiles][2],
                                        const double (&p)[kMTiles][Tr::kNTiles][2], const double* sV, int lane) {
  const int g = lane / 4, t = lane % 4;
  const double* b_ptr = sV + 2 * t * Tr::kPitchV + g;  // V row (key) 2t of an n8 tile, column g
#pragma unroll
  for (int j = 0; j < Tr::kNTiles; ++j) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {  // k4 step e of key tile j: keys 2t + e (see the note at the top)
#pragma unroll
      for (int dj = 0; dj < Tr::kOTiles; ++dj) {
        const double b = b_ptr[(j * 8 + e) * Tr::kPitchV + dj * 8];
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) dmma_884(acc_o[mt][dj], p[mt][j][e], b);
      }
    }
  }
}

// Running state of the one row (g) a thread holds per m tile. max is in raw
// score units; sum is this thread's partial sum, reduced over the quad at the end.
struct RowStateF64 {
  double max = neg_inf_f64();
  double sum = 0.0;
};

// One online-softmax step for one m tile: s becomes p, the state moves on, and
// O's row is rescaled when its maximum moved (an fp64 exp2 is a few dozen
// instructions, so the unchanged case skips it). Requires scale_log2 > 0.
template <int kNTiles, int kOTiles>
__device__ __forceinline__ void online_softmax_f64(double (&s)[kNTiles][2], double (&acc_o)[kOTiles][2],
                                                   RowStateF64& st, double scale_log2) {
  double tile_max = neg_inf_f64();
#pragma unroll
  for (int j = 0; j < kNTiles; ++j) tile_max = fmax(tile_max, fmax(s[j][0], s[j][1]));
  const double new_max = fmax(st.max, quad_max(tile_max));
  // No visible key so far: offset 0 keeps exp2(-inf - offset) = 0, not NaN.
  const double offset = new_max == neg_inf_f64() ? 0.0 : new_max * scale_log2;
  if (new_max != st.max) {
    const double correction = exp2(st.max * scale_log2 - offset);
#pragma unroll
    for (int j = 0; j < kOTiles; ++j) {
      acc_o[j][0] *= correction;
      acc_o[j][1] *= correction;
    }
    st.sum *= correction;
    st.max = new_max;
  }
  double tile_sum = 0.0;
#pragma unroll
  for (int j = 0; j < kNTiles; ++j) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      s[j][e] = exp2(fma(s[j][e], scale_log2, -offset));
      tile_sum += s[j][e];
    }
  }
  st.sum += tile_sum;
}

template <int kD, int kBlockM, int kBlockN, int kNWarps, int kMTiles>
__global__ void __launch_bounds__(kNWarps * kWarpSize)
    flash_fwd_dmma(const __grid_constant__ FlashParams p) {
  using Tr = DmmaKernelTraits<kD, kBlockM, kBlockN, kNWarps, kMTiles>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  double* sQ = reinterpret_cast<double*>(smem_raw);
  double* sK = sQ + Tr::kSmemQ;
  double* sV = sK + Tr::kSmemK;

  const int tid = threadIdx.x, lane = tid % kWarpSize, warp = tid / kWarpSize;
  // Longest blocks first: under a causal mask the last query blocks attend the most keys.
  const int m_block = gridDim.x - 1 - blockIdx.x;
  const int head = blockIdx.y, batch = blockIdx.z;
  const int kv_head = head / p.group;
  const int m0 = m_block * kBlockM;

  const double* q = static_cast<const double*>(p.q) + batch * p.q_batch_stride + head * p.q_head_stride +
                    m0 * p.q_row_stride;
  const double* k = static_cast<const double*>(p.k) + batch * p.k_batch_stride + kv_head * p.k_head_stride;
  const double* v = static_cast<const double*>(p.v) + batch * p.v_batch_stride + kv_head * p.v_head_stride;

  // Keys this block can see: all, or under the causal mask up to the last row's
  // diagonal. Zero tiles means every row is fully masked.
  int n_end = p.seqlen_k;
  if (p.causal) n_end = min(n_end, m0 + kBlockM + p.causal_offset);
  const int n_tiles = n_end > 0 ? ceil_div(n_end, kBlockN) : 0;

  load_tile_f64<kBlockM, kD, Tr::kPitchQK, Tr::kThreads>(sQ, q, p.q_row_stride, p.seqlen_q - m0, p.head_dim, tid);
  if (n_tiles > 0) {
    const int n0 = (n_tiles - 1) * kBlockN;
    load_tile_f64<kBlockN, kD, Tr::kPitchQK, Tr::kThreads>(sK, k + n0 * p.k_row_stride, p.k_row_stride,
                                                           p.seqlen_k - n0, p.head_dim, tid);
  }
  cp_async_commit();

  double acc_o[kMTiles][Tr::kOTiles][2];
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
    for (int j = 0; j < Tr::kOTiles; ++j) acc_o[mt][j][0] = acc_o[mt][j][1] = 0.0;
  RowStateF64 st[kMTiles];
  const double scale_log2 = p.softmax_scale * kLog2eF64;
  const double* sQ_warp = sQ + warp * Tr::kRowsPerWarp * Tr::kPitchQK;
  const int warp_row0 = m0 + warp * Tr::kRowsPerWarp;

  for (int tile = n_tiles - 1; tile >= 0; --tile) {
    const int n0 = tile * kBlockN;
    // K[tile] (and Q) landed; every warp finished reading V[tile+1].
    cp_async_wait<0>();
    __syncthreads();
    load_tile_f64<kBlockN, kD, Tr::kPitchV, Tr::kThreads>(sV, v + n0 * p.v_row_stride, p.v_row_stride,
                                                          p.seqlen_k - n0, p.head_dim_v, tid);
    cp_async_commit();

    double s[kMTiles][Tr::kNTiles][2];
    dmma_qk<Tr, kMTiles>(s, sQ_warp, sK, lane);
    if (tile_needs_mask<kBlockM, kBlockN>(p, m0, n0)) {
      // apply_mask covers 16-row fragments (rows g and g + 8); an m8 tile has only row g.
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) apply_mask_rows<1>(s[mt], p, warp_row0 + 8 * mt, n0, lane);
    }
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) online_softmax_f64(s[mt], acc_o[mt], st[mt], scale_log2);

    // V[tile] landed; every warp finished reading K[tile].
    cp_async_wait<0>();
    __syncthreads();
    if (tile > 0) {
      const int n0_next = n0 - kBlockN;
      load_tile_f64<kBlockN, kD, Tr::kPitchQK, Tr::kThreads>(sK, k + n0_next * p.k_row_stride, p.k_row_stride,
                                                             p.seqlen_k - n0_next, p.head_dim, tid);
    }
    cp_async_commit();
    dmma_pv<Tr, kMTiles>(acc_o, s, sV, lane);
  }

  // ---- epilogue: normalise and write O (row g, columns 2t and 2t+1 of each n8 tile) and LSE ----
  const int g = lane / 4, t = lane % 4;
  double* o = static_cast<double*>(p.o) + batch * p.o_batch_stride + head * p.o_head_stride;
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
    const int row = warp_row0 + 8 * mt + g;
    const double sum = quad_sum(st[mt].sum);
    if (row >= p.seqlen_q) continue;
    // sum == 0 only for a row that attends no key: output 0 and LSE -inf, never NaN.
    const double inv = sum > 0.0 ? 1.0 / sum : 0.0;
#pragma unroll
    for (int j = 0; j < Tr::kOTiles; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int col = j * 8 + 2 * t + e;
        if (col < p.head_dim_v) o[row * p.o_row_stride + col] = acc_o[mt][j][e] * inv;
      }
    }
    if (p.lse != nullptr && t == 0) {
      const double lse = sum > 0.0 ? (st[mt].max * scale_log2 + log2(sum)) * kLn2F64 : neg_inf_f64();
      p.lse[(static_cast<i64>(batch) * p.heads_q + head) * p.seqlen_q + row] = static_cast<float>(lse);
    }
  }
}

}  // namespace cupyflash
