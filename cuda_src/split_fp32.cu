// Translation unit of the float32 pre-pass (cupyflash/_split.py): one kernel,
//   cupyflash::split_fp32_tiles<kVec, kLo>   hi (and lo) fp16 copies of q, k, v,
//                                            each tile scaled by its own 2^e
// over the tiles of all three tensors in one launch, one block per tile
// (blockIdx.x; each tensor's tiles are a range of blocks from first_block). A
// tile is the attention kernel's: kBlockM query rows or kBlockN key rows of one
// (batch, head) (tile_shifts.h). A block reads its tile from global memory once,
// into shared memory with cp.async (the whole tile in flight at once, no
// register held per element), takes the tile's finite abs-max, writes the
// tile's shift, then converts the tile from shared memory and writes hi (and lo)
// with their zero padding. Rows past seqlen do not exist in hi/lo (the attention
// kernel's TMA zero-fills them), so a head's last tile may simply be shorter.
// Threads: one per kVec-wide column group of an output row (padding columns
// included), kSplitThreads / groups rows at a time; a thread reads back only
// what its own copies wrote, at stage[pass][thread], so no bank conflicts.
// kVec = 4: 16-byte copies and 8-byte (4 x fp16) stores; the host picks it only
// when every tensor's base is 16-byte aligned, its strides are multiples of 4
// elements and its dim is a multiple of 4 (an input class, not a retry),
// otherwise kVec = 1 (4-byte copies).
#include "split_params.h"
#include "ptx.h"
#include "split_shift.h"
#include "tile_shifts.h"

namespace cupyflash {

constexpr int kSplitThreads = 256;  // mirrored by SPLIT_THREADS in cupyflash/_split.py
// Blocks per SM that __launch_bounds__ promises room for: a register cap of 64
// per thread. Shared memory decides the actual count (a 128 x 128 fp32 tile
// stages 64 KB: 3 blocks per SM, 192 KB of loads in flight per SM).
constexpr int kSplitBlocksPerSm = 4;  // mirrored by BLOCKS_PER_SM
template <int kVec>
struct F32Vec { float v[kVec]; };

// Which order the blocks take a tensor's tiles in. The blocks in flight at once are
// consecutive ones; where a head's rows lie farther apart than a row's heads (the
// bshd layout: a row of every head is one contiguous run), taking the heads of one
// seq tile together makes those blocks read (and write: hi is bshd) whole
// contiguous rows, where one head's consecutive tiles read 4 * dim bytes out of
// every heads * 4 * dim. In bhsd a head's tiles are contiguous already.
__device__ __forceinline__ bool walk_heads_first(const SplitTensor& t) {
  return t.heads > 1 && llabs(t.row_stride) > llabs(t.head_stride);
}

template <int kVec>
__device__ __forceinline__ void cp_async_vec(u32 dst, const float* src) {
  if constexpr (kVec == 4) cp_async_16(dst, src, true);
  else cp_async_4(dst, src);
}

template <int kVec, bool kLo>
__global__ void __launch_bounds__(kSplitThreads, kSplitBlocksPerSm) split_fp32_tiles(const __grid_constant__ SplitParams p) {
  // The tile in shared memory: pass j of thread i at stage[j * kSplitThreads + i]
  // (host-sized: the most passes of any tensor x kSplitThreads x kVec floats).
  // (One extern declaration for every instantiation: its type may not depend on kVec.)
  extern __shared__ float4 stage_raw[];
  F32Vec<kVec>* stage = reinterpret_cast<F32Vec<kVec>*>(stage_raw);
  __shared__ u32 warp_max[kSplitThreads / kWarpSize];
  const int block = blockIdx.x;
  // A tensor with no tile shares its first_block with the next one: the later wins.
  const int which = block >= p.t[2].first_block ? 2 : block >= p.t[1].first_block ? 1 : 0;
  const SplitTensor& t = p.t[which];
  // The tile's index among this tensor's blocks, and (below) its own index, which
  // places its shift: (batch * heads + head) * seq_tiles + seq tile.
  const int walk = block - t.first_block;
  int b, h, seq_tile;
  if (walk_heads_first(t)) {  // (batch, seq tile, head), head fastest
    h = walk % t.heads;
    const int bs = walk / t.heads;
    b = bs / t.seq_tiles;
    seq_tile = bs - b * t.seq_tiles;
  } else {  // (batch, head, seq tile), seq tile fastest
    seq_tile = walk % t.seq_tiles;
    const int bh = walk / t.seq_tiles;
    b = bh / t.heads;
    h = bh - b * t.heads;
  }
  const int tile = (b * t.heads + h) * t.seq_tiles + seq_tile;
  const int s0 = seq_tile * t.tile_rows;
  const int rows = min(t.tile_rows, t.seqlen - s0);
  const int vecs = t.padded_dim / kVec;  // output column groups per row: <= kSplitThreads (host-checked)
  const int in_vecs = t.dim / kVec;
  const int rows_per_pass = kSplitThreads / vecs;
  const int rsub = threadIdx.x / vecs;
  const int c = threadIdx.x - rsub * vecs;
  // Rows rsub + j * rows_per_pass, j < passes, are this thread's; threads past
  // rows_per_pass * vecs idle. rows - rsub > -rows_per_pass, so passes >= 0.
  const int passes = rsub < rows_per_pass ? ceil_div(rows - rsub, rows_per_pass) : 0;
  const bool reads = c < in_vecs;  // a padding column reads nothing and writes zeros

  if (reads) {
    const float* src = t.x + b * t.batch_stride + static_cast<i64>(s0 + rsub) * t.row_stride + h * t.head_stride +
                       c * kVec;
    const i64 src_step = rows_per_pass * t.row_stride;
    const u32 dst = smem_addr(stage + threadIdx.x);
#pragma unroll 4
    for (int j = 0; j < passes; ++j) cp_async_vec<kVec>(dst + j * (kSplitThreads * kVec * 4), src + j * src_step);
  }
  cp_async_commit();
  cp_async_wait<0>();
  // The copies wrote shared memory behind the compiler's back (asm without a
  // memory clobber): the barrier keeps the reads below after the wait.
  __syncthreads();

  u32 m = 0;  // max |x| as float bits: non-negative floats order like their bits
  if (reads) {
    for (int j = 0; j < passes; ++j) {
      const F32Vec<kVec> x = stage[j * kSplitThreads + threadIdx.x];
#pragma unroll
      for (int i = 0; i < kVec; ++i) {
        m = max(m, finite_abs_bits(x.v[i]));  // NaN and inf stay out of the factor
      }
    }
  }
  m = __reduce_max_sync(0xffffffffu, m);
  if (threadIdx.x % kWarpSize == 0) warp_max[threadIdx.x / kWarpSize] = m;
  __syncthreads();
#pragma unroll
  for (int i = 0; i < kSplitThreads / kWarpSize; ++i) m = max(m, warp_max[i]);
  const int e = split_shift(m, p.target_exp, p.max_shift[which]);
  if (threadIdx.x == 0) t.shifts[static_cast<i64>(tile) * t.shift_step] = e;
  const float s = pow2_f32(e);

  // hi/lo are contiguous (batch, seqlen, heads, padded_dim).
  i64 out = ((static_cast<i64>(b) * t.seqlen + s0 + rsub) * t.heads + h) * t.padded_dim + c * kVec;
  const i64 out_step = static_cast<i64>(rows_per_pass) * t.heads * t.padded_dim;
  for (int j = 0; j < passes; ++j, out += out_step) {
    F32Vec<kVec> x;
    if (reads) {
      x = stage[j * kSplitThreads + threadIdx.x];
    } else {  // a padding column: written as zeros, 0 * s = +0
#pragma unroll
      for (int i = 0; i < kVec; ++i) x.v[i] = 0.0f;
    }
    if constexpr (kVec == 4) {
      uint2 hi, lo;
      split_pair(x.v[0], x.v[1], s, hi.x, lo.x);
      split_pair(x.v[2], x.v[3], s, hi.y, lo.y);
      *reinterpret_cast<uint2*>(t.hi + out) = hi;  // 8-byte aligned: padded_dim % 8 == 0
      if constexpr (kLo) *reinterpret_cast<uint2*>(t.lo + out) = lo;
    } else {
      u32 hi, lo;
      split_pair(x.v[0], 0.0f, s, hi, lo);
      t.hi[out] = static_cast<u16>(hi);
      if constexpr (kLo) t.lo[out] = static_cast<u16>(lo);
    }
  }
}

}  // namespace cupyflash
