// Compile-time shape of the Hopper kernel (flash_fwd_wgmma.cuh): warpgroups,
// register budget, tile bytes and the shared-memory map, for 16-bit operands
// (Half, BFloat16: 64-column boxes, k16 steps) and float32 ones read as tf32
// (Tf32: 32-column boxes, k8 steps, V stored transposed). Mirrored on the host
// by KernelSpec.smem_bytes (cupyflash/_spec.py).
#pragma once
#include "common.h"
#include "work_item_sm90.h"

namespace cupyflash {

constexpr int kSwizzleAtomBytes = 8 * 128;      // 8 rows: the swizzle pattern's period
// setmaxnreg target of the producer warpgroup: its one TMA thread needs few;
// converting fp32 operands in the kernel, its three other warps hold a unit's
// share in registers (convert_tile.h, HeldUnit: 96 at width 128) and need 128
// with two consumer warpgroups (these keep 184 and spill nothing; at 120 the
// converters spilled 28 bytes under NVRTC 13.0). With three consumer
// warpgroups there is no room (at 32 the converters spilled; at 40 the
// consumers drop to 152, where ptxas serialised their wgmmas): those tiles
// do not convert.
constexpr int kTmaProducerRegs = 24;
template <int kConsumerWGs>
__host__ __device__ constexpr int convert_producer_regs() { return kConsumerWGs == 3 ? kTmaProducerRegs : 128; }
// Converting K and V once per call (kv_once.h), the converters stream chunks
// through shared memory and hold none; at 24 ptxas spilled their loop, and
// with three consumer warpgroups there is nothing to give (see above).
constexpr int kKVOnceProducerRegs = 40;
template <int kConsumerWGs>
__host__ __device__ constexpr int kv_once_producer_regs() {
  return kConsumerWGs == 3 ? kTmaProducerRegs : kKVOnceProducerRegs;
}
// With two Q buffers the producer loads the next item's Q after this tile of the
// current item (see the producer): the consumers hand the buffer back in tile 1,
// when they also free the ring slot of tile 2's V. After tile 1 instead, the
// producer sat on the Q buffer while tile 2's K slot was already free, and K2
// came late: -3 to -8 % (bench/notes/wgmma.md, "Where the consumers wait").
constexpr int kQPrefetchTile = 2;
constexpr int kMaxSmemBytes = 227 * 1024;  // dynamic shared memory per CTA on sm_90
constexpr int kScratchBytesPerThread = 4;   // order_before_wait's store (ptx_sm90.h)
constexpr int kWgmmaStepBytes = 32;  // one wgmma k-step along a swizzled row (k16 x 2 B, k8 x 4 B)
constexpr int kStepsPerSwizzleRow = kSwizzleRowBytes / kWgmmaStepBytes;
constexpr int kF32OperandBytes = 4;  // a caller's float32 element, staged for conversion
// In-kernel conversion: unit headers, shift words and the converters' abs-max words (WgmmaSmem).
constexpr int kConvertAreaBytes = 512;
constexpr int kUnitHeaderSlotBytes = 48;  // >= sizeof(UnitHeader) (wgmma_convert.h), 16-byte aligned

template <class Elem, int kD, int kBlockN, int kStages, int kFp32Terms = 0, int kConsumerWGs = 2,
          int kConvertStages = 0, bool kQInKernelArg = false, bool kKVOnceArg = false>
struct WgmmaKernelTraits {
  static constexpr bool kSplit = kFp32Terms == 3;  // hi and lo copies of every operand
  static constexpr bool kTf32 = Elem::kIsTf32;     // float32 operands, tf32 products
  static constexpr int kCopies = kSplit ? 2 : 1;
  // float32 operands converted in the kernel (kConvertStages > 0: wgmma_convert.h)
  // instead of by the host's pre-pass: TMA stages the caller's fp32 tiles in a
  // ring of kConvertStages slots, the producer's other warps convert them into
  // the fp16 Q buffers and K/V ring.
  static constexpr bool kConvert = kConvertStages > 0;
  // Split fp32 with Q converted by the consumer warpgroups (q_convert.h): the
  // pre-pass converts K and V only, no TMA loads Q, and each consumer
  // warpgroup writes its own 64 rows of the Q buffer when it starts an item.
  static constexpr bool kQInKernel = kQInKernelArg;
  // ... and K and V converted once per call by the producer's other warps, each
  // key tile by the first CTA to claim it (kv_once.h): no pre-pass at all.
  static constexpr bool kKVOnce = kKVOnceArg;
  // The template parameters, for code that takes the traits alone (WgmmaSmem, the producers).
  static constexpr int kWidth = kD;
  static constexpr int kTileN = kBlockN;
  static constexpr int kStagesKV = kStages;
  static constexpr int kStagesCvt = kConvertStages;
  static constexpr int kProducerRegs = kConvert   ? convert_producer_regs<kConsumerWGs>()
                                       : kKVOnce  ? kv_once_producer_regs<kConsumerWGs>()
                                                  : kTmaProducerRegs;
  // 2 consumer warpgroups (block_m 128) or 3 (block_m 192, for small head dims).
  static constexpr int kConsumerWarpgroups = kConsumerWGs;
  static constexpr int kThreadsAll = kWarpgroupThreads * (kConsumerWGs + 1);
  // setmaxnreg moves registers within the CTA's pool, which the launch sizes at
  // the kernel's register count (65536 / threads, rounded down to a multiple of
  // 8: 168 at 384 threads, 128 at 512) times the threads: the consumers share the
  // pool less the producer's (a multiple of 8): 128*24 + 256*240 = 64512;
  // 128*24 + 384*160 = 64512; converting, 128*128 + 256*184 = 63488.
  // Hazard: sized from 65536 instead, a producer target of 128 gave the consumers
  // 192 (a pool of 65536): their setmaxnreg.inc waited forever for the last 1024.
  static constexpr int kCtaRegs = kThreadsAll * ((65536 / kThreadsAll) / 8 * 8);
  static constexpr int kConsumerRegs =
      ((kCtaRegs - kProducerRegs * kWarpgroupThreads) / (kConsumerWGs * kWarpgroupThreads)) / 8 * 8;
  static_assert(kProducerRegs * kWarpgroupThreads + kConsumerRegs * kConsumerWGs * kWarpgroupThreads <= kCtaRegs,
                "setmaxnreg targets within the CTA's register pool");
  static constexpr int kBlockM = 64 * kConsumerWarpgroups;  // a consumer warpgroup owns 64 rows (wgmma M)
  static constexpr int kThreads = kWarpgroupThreads * (kConsumerWarpgroups + 1);
  static constexpr int kConsumerWarps = kConsumerWarpgroups * 4;
  // Q and K tiles: kD / kBoxCols boxes of (rows x one 128-byte swizzled row).
  static constexpr int kBoxes = kD / Elem::kBoxCols;
  static constexpr int kQBoxBytes = kBlockM * kSwizzleRowBytes;
  static constexpr int kKVBoxBytes = kBlockN * kSwizzleRowBytes;
  // V: 16-bit V is MN-major (its natural layout, boxes like K's; the wgmma
  // transposes it). tf32 cannot be transposed, so V arrives as V^T (keys
  // contiguous) and its tile is kBlockN / kBoxCols boxes of (kD rows x 128 bytes).
  static constexpr bool kVTransposed = kTf32;
  static constexpr int kVtBoxes = kBlockN / Elem::kBoxCols;
  static constexpr int kVtBoxBytes = kD * kSwizzleRowBytes;
  static constexpr int kQCopyBytes = kBoxes * kQBoxBytes;
  static constexpr int kKVCopyBytes = kBoxes * kKVBoxBytes;  // = kVtBoxes * kVtBoxBytes
  static constexpr int kQBytes = kCopies * kQCopyBytes;    // a copy's boxes, then the next copy's
  static constexpr int kKVBytes = kCopies * kKVCopyBytes;  // one ring slot of K (or V)
  static constexpr int kKSteps = kD / Elem::kK;      // k-steps of Q.K^T
  static constexpr int kPSteps = kBlockN / Elem::kK;  // k-steps of P.V: P's A fragments
  static constexpr int kNTiles = kBlockN / 8;  // n8 tiles of S per thread's rows
  static constexpr int kOTiles = kD / 8;       // n8 tiles of O
  static constexpr int kOChunk = kD % 128 == 0 ? 128 : 64;  // columns of O per PV wgmma
  // Conversion units: a Q unit is one consumer warpgroup's 64 rows (each has its
  // own shift), a K or V unit one key tile; a staging slot holds the larger.
  static constexpr int kQUnitRows = 64;
  static constexpr int kUnitMaxRows = kQUnitRows > kBlockN ? kQUnitRows : kBlockN;
  static constexpr int kStageBytes = kConvert ? kUnitMaxRows * kD * kF32OperandBytes : 0;
  // kv_once.h stages one fp32 key tile of K or V at a time.
  static constexpr int kKVOnceStageBytes = kKVOnce ? kBlockN * kD * kF32OperandBytes : 0;
  static constexpr bool kConvertArea = kConvert || kKVOnce;
  static constexpr int kConvertBytes =
      kConvertStages * kStageBytes + kKVOnceStageBytes + (kConvertArea ? kConvertAreaBytes : 0);
  static constexpr int kBarrierBytes = 256;  // room for the barriers (8 bytes each)
  // 4 bytes per consumer thread for order_before_wait's store.
  static constexpr int kScratchBytes = kScratchBytesPerThread * kConsumerWarpgroups * kWarpgroupThreads;
  // Everything but the Q buffers and Q's staging, + slack to align the base up to 1024 bytes.
  static constexpr int kFixedBytesUnstaged =
      2 * kStages * kKVBytes + kConvertBytes + kBarrierBytes + kScratchBytes + kSwizzleAtomBytes;
  // Q converted by the consumers, staged: the producer's TMA thread loads each item's fp32 q rows
  // into shared memory (one unit of 64 rows x kD floats per consumer warpgroup, 32-column
  // boxes: HeldUnit's layout) while the item before still runs, so that a warpgroup's item start
  // reads shared memory instead of waiting on HBM. Where it fits beside one Q buffer: not beside
  // kv-once's staged key tile (width 128), nor the split's hi + lo ring at width 128.
  static constexpr int kQUnitStageBytes = kQUnitRows * kD * kF32OperandBytes;
  static constexpr bool kQStaged =
      kQInKernel && !kKVOnce &&
      kFixedBytesUnstaged + kQBytes + kConsumerWarpgroups * kQUnitStageBytes <= kMaxSmemBytes;
  static constexpr int kQStageBytes = kQStaged ? kConsumerWarpgroups * kQUnitStageBytes : 0;
  // TMA fills Q's full barrier (16-bit or pre-pass Q into the Q buffers, or fp32 q staged).
  static constexpr bool kQByTma = !kQInKernel || kQStaged;
  static constexpr int kFixedBytes = kFixedBytesUnstaged + kQStageBytes;
  // Two Q buffers where they fit: a persistent CTA's producer then loads the next
  // item's Q while the current item still reads its own, so the next item's first
  // Q.K^T (issued with this item's last P.V) need not wait for it.
  // Converting Q in the consumers, one: a warpgroup rewrites its rows only once
  // its own last item is done with them, so a second buffer would never be used.
  static constexpr int kQStages = !kQInKernel && kFixedBytes + 2 * kQBytes <= kMaxSmemBytes ? 2 : 1;
  // Byte offsets into (1024-aligned) dynamic shared memory.
  static constexpr int kOffK = kQStages * kQBytes;
  static constexpr int kOffV = kOffK + kStages * kKVBytes;
  static constexpr int kOffStage = kOffV + kStages * kKVBytes;  // 1024-aligned: whole swizzle atoms before it
  static constexpr int kOffQStage = kOffStage + kConvertStages * kStageBytes + kKVOnceStageBytes;
  static constexpr int kOffBar = kOffQStage + kQStageBytes;
  // Q full/empty per Q buffer, full/empty for K and V per stage, then full/empty per staging slot.
  static constexpr int kBarriers = 2 * kQStages + 4 * kStages + 2 * kConvertStages;
  static constexpr int kOffScratch = kOffBar + kBarrierBytes;
  static constexpr int kOffConvert = kOffScratch + kScratchBytes;
  static constexpr int kSmemBytes = kOffConvert + (kConvertArea ? kConvertAreaBytes : 0) + kSwizzleAtomBytes;

  static_assert(Elem::kK * Elem::kBytes == kWgmmaStepBytes, "a k-step is 32 bytes of a swizzled row");
  static_assert(kD % 64 == 0 && kD <= 256, "head dim width must be a multiple of 64, at most 256");
  static_assert(kBlockN == 64 || kBlockN == 80 || kBlockN == 128 || kBlockN == 176,
                "key tile is one wgmma N: 64, 80, 128 or 176");
  static_assert(kStages >= 1 && kStages <= 4, "1 to 4 K/V stages");
  static_assert(kBarriers * 8 <= kBarrierBytes, "barrier area too small");
  static_assert(kConsumerWGs == 2 || kConsumerWGs == 3, "2 or 3 consumer warpgroups");
  static_assert(kSmemBytes <= kMaxSmemBytes, "shared memory per CTA on sm_90 is 227 KB");
  static_assert(kFp32Terms == 0 || kFp32Terms == 1 || kFp32Terms == 3, "fp32 terms: 0 (16-bit input), 1 or 3");
  static_assert(kFp32Terms == 0 || !(Elem::kIsBf16 || kTf32), "the fp32 pre-pass kernels take fp16 operands");
  // The held unit is 64 rows x kD floats over 128 threads: 64 registers at width 128.
  static_assert(!kQInKernel || (kFp32Terms > 0 && !kConvert && kD <= 128),
                "Q converted by the consumers: fp32 terms 1 or 3, the pre-pass for K and V only, width <= 128");
  static_assert(!kKVOnce || (kQInKernel && kD <= 128), "K and V converted once: with Q converted by the consumers");
  static_assert(!kConvert || (kFp32Terms > 0 && kConvertStages <= 2 && kConsumerWGs == 2),
                "conversion: fp32 terms 1 or 3, 1-2 staging slots, two consumer warpgroups");
  // tf32: V^T boxes cover whole key tiles (so no 80-key tiles); its wgmma has
  // instantiations for N = 64 and 128 only.
  static_assert(!kTf32 || (kBlockN % Elem::kBoxCols == 0 && kBlockN != 176 && kD <= 128),
                "tf32: key tile 64 or 128, head dim width 64 or 128");
};

// Addresses in the (1024-aligned) dynamic shared memory of one CTA, from the
// traits' map, and the ring arithmetic that producer and consumers share: the
// K/V ring, the Q buffers and the staging ring are each used in one sequence
// across all of the CTA's work items; use number u of a ring of n slots sits in
// slot u % n, in phase (u / n) & 1.
template <class Tr>
struct WgmmaSmem {
  u32 base;

  __device__ __forceinline__ u32 q(int s) const { return base + s * Tr::kQBytes; }
  __device__ __forceinline__ u32 k(int s) const { return base + Tr::kOffK + s * Tr::kKVBytes; }
  __device__ __forceinline__ u32 v(int s) const { return base + Tr::kOffV + s * Tr::kKVBytes; }
  __device__ __forceinline__ u32 bar(int i) const { return base + Tr::kOffBar + 8 * i; }
  __device__ __forceinline__ u32 full_q(int s) const { return bar(s); }
  __device__ __forceinline__ u32 empty_q(int s) const { return bar(Tr::kQStages + s); }
  __device__ __forceinline__ u32 full_k(int s) const { return bar(2 * Tr::kQStages + s); }
  __device__ __forceinline__ u32 full_v(int s) const { return bar(2 * Tr::kQStages + Tr::kStagesKV + s); }
  __device__ __forceinline__ u32 empty_k(int s) const { return bar(2 * Tr::kQStages + 2 * Tr::kStagesKV + s); }
  __device__ __forceinline__ u32 empty_v(int s) const { return bar(2 * Tr::kQStages + 3 * Tr::kStagesKV + s); }
  __device__ __forceinline__ u32 scratch() const { return base + Tr::kOffScratch; }
  // Q staged for the consumers' conversion (kQStaged): consumer warpgroup cwg's 64 fp32 rows.
  __device__ __forceinline__ u32 q_stage(int cwg) const {
    return base + Tr::kOffQStage + cwg * Tr::kQUnitStageBytes;
  }
  // In-kernel conversion only: the staging ring of fp32 units and its barriers,
  // the shift word of each fp16 buffer (Q: one per consumer warpgroup's rows),
  // and three sets of the converter warps' abs-max words (wgmma_convert.h).
  __device__ __forceinline__ u32 stage(int s) const { return base + Tr::kOffStage + s * Tr::kStageBytes; }
  __device__ __forceinline__ u32 stage_full(int s) const { return bar(2 * Tr::kQStages + 4 * Tr::kStagesKV + s); }
  __device__ __forceinline__ u32 stage_empty(int s) const {
    return bar(2 * Tr::kQStages + 4 * Tr::kStagesKV + Tr::kStagesCvt + s);
  }
  __device__ __forceinline__ u32 unit_header(int s) const { return base + Tr::kOffConvert + kUnitHeaderSlotBytes * s; }
  __device__ __forceinline__ u32 shift_q(int qs, int wg) const {
    return base + Tr::kOffConvert + kWordsOff + 4 * (qs * Tr::kConsumerWarpgroups + wg);
  }
  __device__ __forceinline__ u32 shift_k(int s) const { return base + Tr::kOffConvert + kKVWordsOff + 4 * s; }
  __device__ __forceinline__ u32 shift_v(int s) const {
    return base + Tr::kOffConvert + kKVWordsOff + 4 * (Tr::kStagesKV + s);
  }
  __device__ __forceinline__ u32 max_words(int parity) const {
    return base + Tr::kOffConvert + kKVWordsOff + 4 * (2 * Tr::kStagesKV + kMaxWordsPerSet * parity);
  }

  // kv_once.h: the staged fp32 tile and the converters' abs-max words.
  __device__ __forceinline__ u32 kv_once_stage() const { return base + Tr::kOffStage; }
  __device__ __forceinline__ u32 kv_once_words() const { return base + Tr::kOffConvert; }

  static constexpr int kWordsOff = kUnitHeaderSlotBytes * 4;  // unit headers: two per staging slot, up to 2 slots
  static constexpr int kKVWordsOff = kWordsOff + 4 * 2 * 3;    // Q words: up to 2 buffers x 3 consumer warpgroups
  static constexpr int kMaxWordsPerSet = 4;                     // 3 converter warps, padded
  static_assert(Tr::kStagesCvt <= 2 && Tr::kQStages * Tr::kConsumerWarpgroups <= 6, "convert area slots");
  // max_words: sets 0 and 1 by unit parity, set 2 for a unit's second (exact) round.
  static_assert(kKVWordsOff + 4 * (2 * Tr::kStagesKV + 3 * kMaxWordsPerSet) <= kConvertAreaBytes, "convert area");

  __device__ __forceinline__ static int slot(int u) { return u % Tr::kStagesKV; }
  __device__ __forceinline__ static u32 phase(int u) { return static_cast<u32>((u / Tr::kStagesKV) & 1); }
  __device__ __forceinline__ static int q_slot(int u) { return u % Tr::kQStages; }
  __device__ __forceinline__ static u32 q_phase(int u) { return static_cast<u32>((u / Tr::kQStages) & 1); }
  __device__ __forceinline__ static int stage_slot(int u) { return u % Tr::kStagesCvt; }
  __device__ __forceinline__ static int header_slot(int u) { return u % (2 * Tr::kStagesCvt); }
  __device__ __forceinline__ static u32 stage_phase(int u) { return static_cast<u32>((u / Tr::kStagesCvt) & 1); }
};

}  // namespace cupyflash
