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
constexpr int kProducerRegs = 24;  // setmaxnreg target of the producer warpgroup
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

template <class Elem, int kD, int kBlockN, int kStages, int kFp32Terms = 0, int kConsumerWGs = 2>
struct WgmmaKernelTraits {
  static constexpr bool kSplit = kFp32Terms == 3;  // hi and lo copies of every operand
  static constexpr bool kTf32 = Elem::kIsTf32;     // float32 operands, tf32 products
  static constexpr int kCopies = kSplit ? 2 : 1;
  // 2 consumer warpgroups (block_m 128) or 3 (block_m 192, for small head dims).
  static constexpr int kConsumerWarpgroups = kConsumerWGs;
  // setmaxnreg: the 64K registers of an SM, less the producer's, shared by the
  // consumers (a multiple of 8): 128*24 + 256*240 = 64512; 128*24 + 384*160 = 64512.
  static constexpr int kConsumerRegs =
      ((65536 - kProducerRegs * kWarpgroupThreads) / (kConsumerWGs * kWarpgroupThreads)) / 8 * 8;
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
  static constexpr int kBarrierBytes = 256;  // room for the barriers (8 bytes each)
  // 4 bytes per consumer thread for order_before_wait's store.
  static constexpr int kScratchBytes = kScratchBytesPerThread * kConsumerWarpgroups * kWarpgroupThreads;
  // Everything but the Q buffers, + slack to align the base up to 1024 bytes.
  static constexpr int kFixedBytes = 2 * kStages * kKVBytes + kBarrierBytes + kScratchBytes + kSwizzleAtomBytes;
  // Two Q buffers where they fit: a persistent CTA's producer then loads the next
  // item's Q while the current item still reads its own, so the next item's first
  // Q.K^T (issued with this item's last P.V) need not wait for it.
  static constexpr int kQStages = kFixedBytes + 2 * kQBytes <= kMaxSmemBytes ? 2 : 1;
  // Byte offsets into (1024-aligned) dynamic shared memory.
  static constexpr int kOffK = kQStages * kQBytes;
  static constexpr int kOffV = kOffK + kStages * kKVBytes;
  static constexpr int kOffBar = kOffV + kStages * kKVBytes;
  // Q full/empty per Q buffer, then full/empty for K and V per stage.
  static constexpr int kBarriers = 2 * kQStages + 4 * kStages;
  static constexpr int kOffScratch = kOffBar + kBarrierBytes;
  static constexpr int kSmemBytes = kOffScratch + kScratchBytes + kSwizzleAtomBytes;

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
  // tf32: V^T boxes cover whole key tiles (so no 80-key tiles); its wgmma has
  // instantiations for N = 64 and 128 only.
  static_assert(!kTf32 || (kBlockN % Elem::kBoxCols == 0 && kBlockN != 176 && kD <= 128),
                "tf32: key tile 64 or 128, head dim width 64 or 128");
};

}  // namespace cupyflash
