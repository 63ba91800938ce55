// Translation unit of the tf32 kernel's V pre-pass (cupyflash/_vt.py):
//   cupyflash::transpose_v_tf32   V (batch, seqlen_k, heads_kv, dim), any strides,
//                                 -> V^T (batch, heads_kv, dim, keys_pad), contiguous
// The tf32 wgmma reads its B operand K-major only (PTX allows the transpose bit for
// 16-bit types alone), so P.V needs V with the keys contiguous. Three things happen
// on the way, each checked bit for bit against NumPy (tests/test_vt.py):
//   * keys are permuted inside every group of 8: V^T column 8q + j holds key
//     8q + pi(j), pi(j) = 2j for j < 4 and 2(j - 4) + 1 for j >= 4. The kernel
//     feeds P to the wgmma straight from the Q.K^T accumulators, whose thread
//     layout puts key 2t at fragment position k = t and key 2t + 1 at k = t + 4
//     (flash_fwd_wgmma.cuh, pack_p); this order pairs each P with its own key.
//   * values are rounded to tf32 (cvt.rna: nearest, ties away from zero), which the
//     tensor cores would otherwise truncate (a bias of about -2^-11 on O).
//   * keys seqlen_k .. keys_pad - 1 are written as +0: a masked key's P is 0, and
//     0 * NaN would be NaN had the padding held garbage. keys_pad is seqlen_k
//     rounded up to a multiple of 8 (whole permutation groups, 32-byte rows); TMA
//     fills keys past keys_pad and rows past dim with zeros itself.
// One block moves a tile of 32 keys x 32 columns of one (batch, kv head) through
// shared memory: warps read rows of V (32 consecutive columns: coalesced) and
// write rows of V^T (32 consecutive keys: coalesced).
#include "ptx.h"

namespace cupyflash {

constexpr int kVtTile = 32;                        // keys and columns per tile
constexpr int kVtRowsPerPass = 8;                  // warps per block: each pass moves 8 rows
constexpr int kVtThreads = kVtTile * kVtRowsPerPass;  // mirrored by VT_THREADS in cupyflash/_vt.py
constexpr int kVtGroup = 8;                        // keys per permutation group

// The key stored at position j of its group of 8 (j = 0..7): 0 2 4 6 1 3 5 7.
__device__ __forceinline__ int vt_key_in_group(int j) {
  return j < kVtGroup / 2 ? 2 * j : 2 * (j - kVtGroup / 2) + 1;
}

// grid: (batch * heads_kv * key_tiles, ceil(dim / 32)), key_tiles = ceil(keys_pad / 32)
// (the (batch, head) pairs ride on x, whose limit is 2^31 - 1, not 65535); block: kVtThreads.
__global__ void __launch_bounds__(kVtThreads) transpose_v_tf32(const float* __restrict__ v, float* __restrict__ vt,
                                                               i64 batch_stride, i64 row_stride, i64 head_stride,
                                                               int seqlen, int heads, int dim, int keys_pad,
                                                               int key_tiles) {
  // +1 column: a warp reading one column of the tile (32 keys) hits 32 banks.
  __shared__ float tile[kVtTile][kVtTile + 1];
  const int lane = threadIdx.x % kWarpSize, row = threadIdx.x / kWarpSize;
  const int pair = blockIdx.x / key_tiles;  // batch * heads + head
  const int key0 = (blockIdx.x - pair * key_tiles) * kVtTile, col0 = blockIdx.y * kVtTile;
  const int batch = pair / heads, head = pair % heads;
  const float* src = v + batch * batch_stride + head * head_stride;
#pragma unroll
  for (int r = row; r < kVtTile; r += kVtRowsPerPass) {
    const int key = key0 + r, col = col0 + lane;
    // Keys past seqlen become +0 (the padding the kernel relies on); columns past dim are never stored.
    tile[r][lane] = key < seqlen && col < dim ? src[key * row_stride + col] : 0.f;
  }
  __syncthreads();
  float* dst = vt + static_cast<i64>(pair) * dim * keys_pad;
  const int key_pos = key0 + lane;  // this lane's position along the V^T row
  const int src_key = lane - lane % kVtGroup + vt_key_in_group(lane % kVtGroup);  // within the tile
#pragma unroll
  for (int r = row; r < kVtTile; r += kVtRowsPerPass) {
    const int col = col0 + r;
    if (col < dim && key_pos < keys_pad)
      dst[static_cast<i64>(col) * keys_pad + key_pos] = __uint_as_float(round_tf32(tile[src_key][r]));
  }
}

}  // namespace cupyflash
