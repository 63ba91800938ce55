// The flags of the float32 wgmma kernel that converts K and V once per call
// (kv_once.h has the protocol): one u32 per (batch, kv head, key tile) in
// p.kv_flags, zeroed by the host before every call, and the TMA thread's wait
// for a tile (wgmma_producer.h).
#pragma once
#include "params.h"
#include "ptx_sm90.h"
#include "tile_shifts.h"
#include "work_item_sm90.h"

namespace cupyflash {

constexpr u32 kTileReady = 1;       // a key tile's flag: 0 until its copies and shifts are written
constexpr int kFlagPollNs = 64;     // back-off between polls of a flag that is not ready

// The per-head counters (kv_once.h) follow the flags: the word of (batch, kv head) is
// at this offset + batch * heads_kv + kv_head. Mirrored by _split.kv_once_buffers.
__host__ __device__ constexpr i64 kv_counter_offset(int batches, int heads_kv, int n_tiles) {
  return static_cast<i64>(batches) * heads_kv * n_tiles;
}
// The converters' broadcast word for a counter's answer, after their abs-max words
// in the convert area (convert_tile.h, converters_abs_max: three words).
constexpr int kClaimWordsOff = 16;

// Index of key tile n0 / kBlockN of item w: its flag, and its {e_k, e_v} pair in p.tile_shifts.
template <int kBlockN>
__device__ __forceinline__ i64 kv_tile_index(const FlashParams& p, const WorkItem& w, int n0) {
  return kv_shift_index(w.batch, w.kv_head, p.heads_kv, ceil_div(p.seqlen_k, kBlockN)) + n0 / kBlockN;
}

// The TMA thread: wait until key tile n0 of item w is converted.
template <int kBlockN>
__device__ __forceinline__ void wait_tile_ready(const FlashParams& p, const WorkItem& w, int n0) {
  const u32* flag = p.kv_flags + kv_tile_index<kBlockN>(p, w, n0);
  while (ld_acquire_gpu(flag) != kTileReady) __nanosleep(kFlagPollNs);
  fence_proxy_async_global();
}

}  // namespace cupyflash
