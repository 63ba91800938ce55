// FlashAttention-2 forward on mma.sync (sm_80 and newer), fp16 and bf16.
//
// One CTA computes a kBlockM-row block of queries for one (batch, head). Each of
// its kNWarps warps owns 16 * kMTiles of those rows, so a warp never needs
// another warp's scores or softmax state. With kMTiles = 2 every K/V fragment a
// warp reads from shared memory feeds two mma instead of one: half the
// shared-memory traffic per FLOP, for twice the accumulator registers. Keys and values stream through shared memory in
// kBlockN-row tiles, from the last tile to the first (the tiles that need the
// causal/length mask come first, the rest run unmasked):
//
//   S = Q K^T              (mma, Q and K from shared memory via ldmatrix)
//   mask S where needed
//   P = exp2(S*scale*log2e - m), rescale O and the row sums   (online softmax)
//   O += P V               (mma, P straight from the S registers, V via ldmatrix.trans)
//
// Double duty of cp.async: V[j] is in flight while S = Q K[j]^T runs, and
// K[j-1] is in flight while the softmax of tile j and O += P V[j] run (see
// kNextKFirst for the one exception).
#pragma once
#include "mask.h"
#include "params.h"
#include "softmax.h"
#include "tile_io.h"

namespace cupyflash {

template <class Elem, int kD, int kBlockM, int kBlockN, int kNWarps, int kMTiles>
struct MmaKernelTraits {
  static constexpr int kThreads = kNWarps * kWarpSize;
  static constexpr int kRowsPerWarp = 16 * kMTiles;  // kMTiles m16 mma tiles of query rows per warp
  static constexpr int kNTiles = kBlockN / 8;        // n8 tiles of S per m tile
  static constexpr int kOTiles = kD / 8;             // n8 tiles of O per m tile
  static constexpr int kPitch = SmemTile<kD>::kPitch;
  static constexpr int kSmemQ = kBlockM * kPitch;  // elements
  static constexpr int kSmemKV = kBlockN * kPitch;
  static constexpr int kSmemBytes = (kSmemQ + 2 * kSmemKV) * 2;

  static_assert(kBlockM == kNWarps * kRowsPerWarp, "each warp owns exactly 16 * kMTiles query rows");
  static_assert(kMTiles == 1 || kMTiles == 2, "a warp owns one or two m16 tiles");
  static_assert(kD % 16 == 0 && kD <= 256, "head dim tile must be a multiple of 16, at most 256");
  static_assert(kBlockN % 16 == 0, "key tile must be a multiple of 16 (two n8 tiles per ldmatrix.x4)");
};

// S (the warp's rows x kBlockN) = Q (warp's rows) . K^T. per_step(kk) runs ahead of
// the ldmatrix of k16 step kk: a place to spread other work over the GEMM (kVSpread).
template <class Elem, class Tr, int kMTiles, class PerStep>
__device__ __forceinline__ void gemm_qk(float (&s)[kMTiles][Tr::kNTiles][4], const u16* sQ_warp, const u16* sK,
                                        int lane, PerStep&& per_step) {
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
    for (int j = 0; j < Tr::kNTiles; ++j) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.f;
  // ldmatrix row addresses: A = Q rows (lane % 16), column half (lane / 16);
  // B = K rows of two n8 tiles: (lane & 7) + 8 * (lane >> 4), column half ((lane >> 3) & 1).
  const u32 a_base = smem_addr(sQ_warp + (lane % 16) * Tr::kPitch + (lane / 16) * 8);
  const u32 b_base = smem_addr(sK + ((lane & 7) + ((lane >> 4) << 3)) * Tr::kPitch + ((lane >> 3) & 1) * 8);
#pragma unroll
  for (int kk = 0; kk < Tr::kOTiles / 2; ++kk) {  // k16 steps over the head dim
    per_step(kk);
    u32 a[kMTiles][4];
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) ldmatrix_x4(a[mt], a_base + (mt * 16 * Tr::kPitch + kk * 16) * 2);
#pragma unroll
    for (int nj = 0; nj < Tr::kNTiles / 2; ++nj) {
      u32 b[4];
      ldmatrix_x4(b, b_base + (nj * 16 * Tr::kPitch + kk * 16) * 2);
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
        mma_16816<Elem>(s[mt][2 * nj], a[mt], b[0], b[1]);
        mma_16816<Elem>(s[mt][2 * nj + 1], a[mt], b[2], b[3]);
      }
    }
  }
}

// O (the warp's rows x kD) += P (fp32, in registers) . V
template <class Elem, class Tr, int kMTiles>
__device__ __forceinline__ void gemm_pv(float (&acc_o)[kMTiles][Tr::kOTiles][4],
                                        const float (&p)[kMTiles][Tr::kNTiles][4], const u16* sV, int lane) {
  // ldmatrix.trans row addresses: V rows (keys) lane % 16, column half lane / 16.
  const u32 b_base = smem_addr(sV + (lane & 15) * Tr::kPitch + (lane >> 4) * 8);
#pragma unroll
  for (int kk = 0; kk < Tr::kNTiles / 2; ++kk) {  // k16 steps over the keys
    // The C fragment of two adjacent n8 score tiles is exactly the A fragment
    // of one k16 step: only a rounding to 16 bits is needed.
    u32 a[kMTiles][4];
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) {
      a[mt][0] = pack2<Elem>(p[mt][2 * kk][0], p[mt][2 * kk][1]);
      a[mt][1] = pack2<Elem>(p[mt][2 * kk][2], p[mt][2 * kk][3]);
      a[mt][2] = pack2<Elem>(p[mt][2 * kk + 1][0], p[mt][2 * kk + 1][1]);
      a[mt][3] = pack2<Elem>(p[mt][2 * kk + 1][2], p[mt][2 * kk + 1][3]);
    }
#pragma unroll
    for (int dj = 0; dj < Tr::kOTiles / 2; ++dj) {
      u32 b[4];
      ldmatrix_x4_trans(b, b_base + (kk * 16 * Tr::kPitch + dj * 16) * 2);
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
        mma_16816<Elem>(acc_o[mt][2 * dj], a[mt], b[0], b[1]);
        mma_16816<Elem>(acc_o[mt][2 * dj + 1], a[mt], b[2], b[3]);
      }
    }
  }
}

// The next K tile goes out before the softmax (FlashAttention-2's order), so its
// copy overlaps the exponentials as well as the P.V: +0.3-5 % on an H100 against
// issuing it after the softmax (bench/notes/mma.md, "Next K before the softmax").
// Except for sm_80 code at head dim <= 64 with 128-key tiles, where that order made
// ptxas (NVRTC 13.5) spill 4 bytes at 255 registers; sm_90a code is spill-free both ways.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
constexpr bool kTightRegistersArch = true;
#else
constexpr bool kTightRegistersArch = false;
#endif
// Widest head dim whose softmax runs its exponentials after O's rescale (see kExpAfterRescale).
constexpr int kExpAfterRescaleMaxWidth = 96;
constexpr int kLazyMaxMinWidth = 128;  // the lazy running max from this width on (see the kernel)

// kVSpread, the order of the K/V copies within a key tile:
//   0       the shipped order: V's copies in one block ahead of Q.K^T (load_tile_async).
//   n >= 1  K and V go through TileCopy, whose row tests compare against immediates
//           and so free the registers load_tile_async's tests keep live across the
//           key loop (16 at width 256). With them ptxas issues Q.K^T's ldmatrix
//           further ahead of their mma: at width 256 (NVRTC 13.0, sm_90a) a median
//           14 mma ahead and 8.9 fragments in flight, as in FA2's kernel, against 8
//           and 6.2. V's copies are spread evenly over the first n k16 steps of
//           Q.K^T, between its ldmatrix and mma (1: one block ahead of the first).
//           bench/notes/mma.md, "ldmatrix and HMMA order at d256".
template <class Elem, int kD, int kBlockM, int kBlockN, int kNWarps, int kMTiles, int kVSpread = 0>
__global__ void __launch_bounds__(kNWarps * kWarpSize)
    flash_fwd_mma(const __grid_constant__ FlashParams p) {
  using Tr = MmaKernelTraits<Elem, kD, kBlockM, kBlockN, kNWarps, kMTiles>;
  using VCopy = TileCopy<kBlockN, kD, Tr::kThreads>;
  static_assert(kVSpread >= 0 && kVSpread <= Tr::kOTiles / 2, "V spreads over at most every k16 step of Q.K^T");
  static_assert(kVSpread == 0 || VCopy::kActive == Tr::kThreads,
                "spread copies need every thread copying (rows of 10, 12, 20, 24, 28 chunks do not)");
  constexpr bool kNextKFirst = !(kTightRegistersArch && kD <= 64 && kBlockN == 128);
  // Exponentials after O's rescale, beside the P.V (softmax.h, online_softmax_step):
  // +1.5-4 % at widths 64, 80 and 96 against FA2 in the same rounds, but -1 to -3 %
  // at 256, and at 128 (two m16 tiles, 255 registers) it spilled 20 bytes on sm_90a
  // under NVRTC 13.5 (bench/notes/mma.md, "Exponentials beside the P.V").
  constexpr bool kExpAfterRescale = kD <= kExpAfterRescaleMaxWidth;
  // The lazy running max (softmax.h, kLazyMaxLog2: +2-4 % on the Hopper kernel at d128 and
  // d256) from width 128: the 255-register d64 128 x 128 variants spilled 4-12 bytes with it
  // (bench/notes/mma.md, "A lazy running max on the mma path").
  constexpr bool kLazyMax = kD >= kLazyMaxMinWidth;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  u16* sQ = reinterpret_cast<u16*>(smem_raw);
  u16* sK = sQ + Tr::kSmemQ;
  u16* sV = sK + Tr::kSmemKV;

  const int tid = threadIdx.x, lane = tid % kWarpSize, warp = tid / kWarpSize;
  // Longest blocks first: under a causal mask the last query blocks attend the most keys.
  const int m_block = gridDim.x - 1 - blockIdx.x;
  const int head = blockIdx.y, batch = blockIdx.z;
  const int kv_head = head / p.group;
  const int m0 = m_block * kBlockM;

  const u16* q = static_cast<const u16*>(p.q) + batch * p.q_batch_stride + head * p.q_head_stride + m0 * p.q_row_stride;
  const u16* k = static_cast<const u16*>(p.k) + batch * p.k_batch_stride + kv_head * p.k_head_stride;
  const u16* v = static_cast<const u16*>(p.v) + batch * p.v_batch_stride + kv_head * p.v_head_stride;

  // Keys this block can see: all of them, or under the causal mask up to the
  // last row's diagonal. Zero tiles means every row is fully masked.
  int n_end = p.seqlen_k;
  if (p.causal) n_end = min(n_end, m0 + kBlockM + p.causal_offset);
  const int n_tiles = n_end > 0 ? ceil_div(n_end, kBlockN) : 0;

  const int q_chunks = p.head_dim / kElemsPerChunk;
  const int v_chunks = p.head_dim_v / kElemsPerChunk;
  load_tile_async<kBlockM, kD, Tr::kThreads>(sQ, q, p.q_row_stride, p.seqlen_q - m0, q_chunks, tid);
  if (n_tiles > 0) {
    const int n0 = (n_tiles - 1) * kBlockN;
    load_tile_async<kBlockN, kD, Tr::kThreads>(sK, k + n0 * p.k_row_stride, p.k_row_stride, p.seqlen_k - n0, q_chunks, tid);
  }
  cp_async_commit();

  float acc_o[kMTiles][Tr::kOTiles][4];
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
    for (int j = 0; j < Tr::kOTiles; ++j) acc_o[mt][j][0] = acc_o[mt][j][1] = acc_o[mt][j][2] = acc_o[mt][j][3] = 0.f;
  RowState st[kMTiles];
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) st[mt].init();
  const u16* sQ_warp = sQ + warp * Tr::kRowsPerWarp * Tr::kPitch;
  const int warp_row0 = m0 + warp * Tr::kRowsPerWarp;

  for (int tile = n_tiles - 1; tile >= 0; --tile) {
    const int n0 = tile * kBlockN;
    // K[tile] (and Q) landed; every warp finished reading V[tile+1].
    cp_async_wait<0>();
    __syncthreads();
    float s[kMTiles][Tr::kNTiles][4];
    if constexpr (kVSpread == 0) {
      load_tile_async<kBlockN, kD, Tr::kThreads>(sV, v + n0 * p.v_row_stride, p.v_row_stride, p.seqlen_k - n0, v_chunks, tid);
      cp_async_commit();
      gemm_qk<Elem, Tr, kMTiles>(s, sQ_warp, sK, lane, [](int) {});
    } else {
      // V[tile] may be written from here on: every warp is past the barrier, done with V[tile+1].
      VCopy vcopy(sV, v + n0 * p.v_row_stride, p.v_row_stride, p.seqlen_k - n0, v_chunks, tid);
      gemm_qk<Elem, Tr, kMTiles>(s, sQ_warp, sK, lane, [&](int kk) {
        if (kk < kVSpread) {
#pragma unroll
          for (int i = kk * VCopy::kFullSteps / kVSpread; i < (kk + 1) * VCopy::kFullSteps / kVSpread; ++i)
            vcopy.full_step(i);
        }
      });
      vcopy.tail();
      cp_async_commit();  // the wait ahead of the P.V covers V's copies
    }
    if (tile_needs_mask<kBlockM, kBlockN>(p, m0, n0)) {
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) apply_mask(s[mt], p, warp_row0 + 16 * mt, n0, lane);
    }
    if constexpr (!kNextKFirst) {
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) online_softmax_step<kExpAfterRescale, kLazyMax>(s[mt], acc_o[mt], st[mt], p.scale_log2);
    }
    // V[tile] landed; every warp finished reading K[tile].
    cp_async_wait<0>();
    __syncthreads();
    if (tile > 0) {
      const int n0_next = n0 - kBlockN;
      const u16* k_next = k + n0_next * p.k_row_stride;
      if constexpr (kVSpread == 0)
        load_tile_async<kBlockN, kD, Tr::kThreads>(sK, k_next, p.k_row_stride, p.seqlen_k - n0_next, q_chunks, tid);
      else
        load_tile_by_copies<kBlockN, kD, Tr::kThreads>(sK, k_next, p.k_row_stride, p.seqlen_k - n0_next, q_chunks, tid);
    }
    cp_async_commit();
    if constexpr (kNextKFirst) {
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) online_softmax_step<kExpAfterRescale, kLazyMax>(s[mt], acc_o[mt], st[mt], p.scale_log2);
    }
    gemm_pv<Elem, Tr, kMTiles>(acc_o, s, sV, lane);
  }

  // ---- epilogue: normalise, write O through shared memory, write LSE ----
  const int g = lane / 4, t = lane % 4;
  // At head dim 64 with 128-key tiles (255 registers) NVRTC 13.0 spilled
  // warp_row0, live across the key loop, to the stack: there the epilogue
  // recomputes it from fresh special-register reads. Width 96 with 80- or
  // 96-key tiles (255 registers) spilled 4-12 B on sm_90a (13.0 at 80 keys,
  // 13.5 at 96) and is spill-free with the re-read. At head dim 128 the same
  // re-read makes ptxas spill something else, so the others keep warp_row0
  // (bench/notes/mma.md, "mma d64 128 x 128", "mma d80/d96, offline").
  constexpr bool kRereadRow0 = (kD <= 64 && kBlockN == 128) || (kD == 96 && kBlockN >= 80);
  const int out_row0 = kRereadRow0 ? (gridDim.x - 1 - fresh_ctaid_x()) * kBlockM +
                                         (fresh_tid_x() / kWarpSize) * Tr::kRowsPerWarp
                                   : warp_row0;
  float inv_sum[kMTiles][2];
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const float sum = quad_sum(st[mt].sum[half]);
      // sum == 0 only for a row that attends no key: output 0 and LSE -inf, never NaN.
      inv_sum[mt][half] = sum > 0.f ? 1.f / sum : 0.f;
      const int row = out_row0 + 16 * mt + g + 8 * half;
      if (p.lse != nullptr && t == 0 && row < p.seqlen_q) {
        const float lse = sum > 0.f ? (st[mt].max[half] * p.scale_log2 + __log2f(sum)) * kLn2 : neg_inf_f32();
        p.lse[(static_cast<i64>(batch) * p.heads_q + head) * p.seqlen_q + row] = lse;
      }
    }
  }
  // The warp's own rows of sQ become its staging buffer: no other warp reads
  // them. But when the block attended no key, the Q load is still in flight, and
  // a warp's Q rows were copied by other warps' threads: wait for every thread's
  // copies (wait_group covers only the calling thread's), then barrier.
  cp_async_wait<0>();
  __syncthreads();
  u16* stage = const_cast<u16*>(sQ_warp);
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
    for (int j = 0; j < Tr::kOTiles; ++j) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const u32 packed = pack2<Elem>(acc_o[mt][j][2 * half] * inv_sum[mt][half],
                                       acc_o[mt][j][2 * half + 1] * inv_sum[mt][half]);
        *reinterpret_cast<u32*>(stage + (16 * mt + g + 8 * half) * Tr::kPitch + j * 8 + 2 * t) = packed;
      }
    }
  }
  __syncwarp();
  u16* o = static_cast<u16*>(p.o) + batch * p.o_batch_stride + head * p.o_head_stride;
  constexpr int kChunksPerRow = SmemTile<kD>::kChunksPerRow;
#pragma unroll
  for (int idx = lane; idx < Tr::kRowsPerWarp * kChunksPerRow; idx += kWarpSize) {
    const int r = idx / kChunksPerRow, c = idx % kChunksPerRow;
    const int row = out_row0 + r;
    if (row < p.seqlen_q && c < v_chunks) {
      const uint4 val = *reinterpret_cast<const uint4*>(stage + r * Tr::kPitch + c * kElemsPerChunk);
      *reinterpret_cast<uint4*>(o + row * p.o_row_stride + c * kElemsPerChunk) = val;
    }
  }
}

}  // namespace cupyflash
