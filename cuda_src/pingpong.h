// Pingpong for the Hopper kernel's consumer warpgroups (flash_fwd_wgmma.cuh,
// kPingpong): they take turns issuing their wgmmas, so that one's softmax runs
// while another's GEMMs occupy the tensor cores, instead of all computing
// exponentials at once. Two warpgroups alternate; three go round (0, 1, 2, 0, ...):
// at width 64 the 192-row tile gained 1-4 % at causal s1024 that way (bench/notes/wgmma_tiles.md,
// "Three consumer warpgroups taking turns"), until its turnless twin with rotated chunks beat it
// (wgmma_tiles_cont.md): three-way turns are now a tuning candidate only, shipped nowhere.
//
// Warpgroup g waits at its own turn barrier and, after issuing, arrives at the next
// one's. Every warpgroup walks the same items and issues the same number of times
// (one group per key tile, plus one per item's finish), so the turns go round across
// items too. The last warpgroup primes warpgroup 0's barrier once at the start and
// warpgroup 0 waits once more at the very end. Hazard: never prime or drain per item:
// a warpgroup could then arrive twice before the next one waits, and 256 arrivals
// from one side would complete the barrier on their own. With three, warpgroup g - 1
// cannot arrive twice at g's barrier: its next turn needs g + 1's hand-over, which
// comes after g's own turn.
#pragma once
#include "ptx_sm90.h"
#include "work_item_sm90.h"

namespace cupyflash {

// Named barriers (0 is __syncthreads; 3-5 the epilogues, 6 the converters, 7-9 the
// consumers' q conversion): the turns of consumer warpgroups 0, 1 and 2.
constexpr int kTurnBarrier0 = 1;
constexpr int kTurnBarrier2 = 10;
constexpr int kPingpongThreads = 2 * kWarpgroupThreads;  // a turn barrier: the waiting warpgroup and the one before

template <bool kOn, int kWarpgroups>
struct Turns {
  static_assert(!kOn || kWarpgroups == 2 || kWarpgroups == 3, "pingpong: two or three consumer warpgroups");
  int cwg;  // this consumer warpgroup

  // Warpgroup g's barrier, its id in a register (ptxas then reserves all 16 barriers,
  // which costs nothing at one CTA per SM). Two warpgroups keep immediate ids.
  __device__ __forceinline__ static u32 barrier(int g) { return g < 2 ? kTurnBarrier0 + g : kTurnBarrier2; }

  __device__ __forceinline__ void prime() const {
    if constexpr (kOn) {
      if (cwg == kWarpgroups - 1) named_barrier_arrive<kTurnBarrier0, kPingpongThreads>();
    }
  }
  __device__ __forceinline__ void take() const {
    if constexpr (kOn && kWarpgroups == 3) {
      named_barrier_sync<kPingpongThreads>(barrier(cwg));
    } else if constexpr (kOn) {
      if (cwg == 0) named_barrier_sync<kTurnBarrier0, kPingpongThreads>();
      else named_barrier_sync<kTurnBarrier0 + 1, kPingpongThreads>();
    }
  }
  __device__ __forceinline__ void pass() const {
    if constexpr (kOn && kWarpgroups == 3) {
      named_barrier_arrive<kPingpongThreads>(barrier(cwg == 2 ? 0 : cwg + 1));
    } else if constexpr (kOn) {
      if (cwg == 0) named_barrier_arrive<kTurnBarrier0 + 1, kPingpongThreads>();
      else named_barrier_arrive<kTurnBarrier0, kPingpongThreads>();
    }
  }
};

}  // namespace cupyflash
