// FlashAttention forward on Hopper (sm_90a): TMA loads, wgmma, warp specialisation.
//
// One CTA computes a kBlockM = 64 * kConsumerWGs-row block of queries (128, or 192 for small head dims) for one
// (batch, head) with 1 + kConsumerWGs warpgroups:
//   warpgroup 0, the producer (wgmma_producer.h): gives up registers (setmaxnreg.dec) and one
//     thread issues every TMA load: Q once, then K and V tiles into a ring of
//     kStages shared-memory slots, each slot guarded by a "full" mbarrier (TMA
//     bytes landed) and an "empty" mbarrier (every consumer warp is done with it);
//   warpgroups 1.., the consumers: take the registers (setmaxnreg.inc) and
//     each owns 64 query rows. Per key tile j:
//       S_j  = Q K_j^T        wgmma, Q and K from shared memory (K-major)   } issued
//       O   += P_{j-1} V_{j-1} wgmma, P from registers, V MN-major         } together
//       wait for S_j; mask; P_j = exp2(S_j*scale*log2e - m)  (online softmax, while
//                                                             the P.V above still runs)
//       wait for the P.V; rescale O by the row-max correction of tile j
//     so the exponentials of one tile overlap the tensor-core work of the other.
//   With kPingpong the consumer warpgroups also take turns issuing their wgmmas
//   (pingpong.h), so that one's softmax runs while another's GEMMs occupy the
//   tensor cores, instead of all computing exponentials at once.
//   With kPersistent the grid has one CTA per SM and each CTA walks work items
//   (query blocks; under a causal mask, pairs of a long and a short block, so
//   that every CTA gets the same work: block_order.h); the producer loads the next
//   item's Q (once the consumers release it) and K/V while the consumers finish
//   the current one, so a CTA's start-up and epilogue hide behind other work.
//   Otherwise each CTA runs exactly one item (the same loop, one trip).
//   kFp32Terms > 0, kConvertStages, kQInKernel, kKVOnce and Elem = Tf32: the float32
//   variants, described at the top of tile_shifts.h.
// Key tiles run from the last to the first, so the tiles that need the causal or
// length mask come first and the rest run unmasked.
//
// Shared memory: every operand tile is stored as boxes of (rows x 128 bytes: 64
// 16-bit or 32 float32 columns), each box 128-byte swizzled exactly as TMA writes
// it, 1024-byte aligned (wgmma_traits.h has the map).
#pragma once
#include "block_order.h"
#include "mask.h"
#include "p_fragment.h"
#include "pingpong.h"
#include "params.h"
#include "ptx_sm90.h"
#include "q_convert.h"
#include "softmax.h"
#include "split_tail.h"
#include "tile_shifts.h"
#include "tma_params.h"
#include "kv_once.h"
#include "wgmma_convert.h"
#include "wgmma_producer.h"
#include "wgmma_traits.h"
#include "work_item_sm90.h"

namespace cupyflash {

// Named barrier of each consumer warpgroup's epilogue (its rows of O are in shared
// memory); 1-2 and 10 are the pingpong turns (pingpong.h).
constexpr int kEpilogueBarrier0 = 3;

template <class Elem, int kD, int kBlockN, int kStages, bool kPingpong, bool kPersistent, int kFp32Terms = 0,
          int kConsumerWGs = 2, int kConvertStages = 0, bool kQInKernel = false, bool kKVOnce = false,
          bool kSplitTailArg = false, bool kTableWalk = false>
__global__ void __launch_bounds__(
    WgmmaKernelTraits<Elem, kD, kBlockN, kStages, kFp32Terms, kConsumerWGs, kConvertStages, kQInKernel,
                      kKVOnce>::kThreads,
    1) flash_fwd_wgmma(const __grid_constant__ FlashParams p, const __grid_constant__ TmaParams tma) {
  using Tr = WgmmaKernelTraits<Elem, kD, kBlockN, kStages, kFp32Terms, kConsumerWGs, kConvertStages, kQInKernel,
                               kKVOnce>;
  using Sm = WgmmaSmem<Tr>;
  constexpr bool kSplit = Tr::kSplit;
  constexpr bool kRescaled = kFp32Terms > 0;  // fp16 operands rescaled per tile by the pre-pass: p.tile_shifts
  constexpr bool kFp32 = kRescaled || Tr::kTf32;  // float32 input, float32 output
  // The split tail (block_order.h, split_tail.h), in variants of its own (kSplitTailArg): its code
  // cost the others 1-10 % where it is never taken (bench/notes/wgmma_tiles.md, "The split tail").
  constexpr bool kSplitTail = kPersistent && !kFp32 && kSplitTailArg;
  // The walk read from p.walk_table (block_order.h, "The walk laid out on the host"): the
  // variants compiled for causal calls; persistent ones without a split tail or conversion stages.
  static_assert(!kTableWalk || (kPersistent && !kSplitTailArg && kConvertStages == 0), "a walk-table variant");
  // Causal twins of the 192-row tile without turns: warpgroup cwg takes the block's 64-row chunk
  // (cwg + item) % 3 and passes the key tiles past that chunk's diagonal, so the longest chain (the
  // bottom chunk) goes round instead of always being the same warpgroup's (bench/notes/wgmma_tiles_cont.md,
  // "Rotated chunks"). 16-bit, and fp32 fast whose consumers convert q into their own rows of the Q buffer.
  constexpr bool kRotate = kTableWalk && kConsumerWGs == 3 && !kPingpong &&
                           (!kFp32 || (kQInKernel && kFp32Terms == 1 && !kKVOnce));
  // The rotated 16-bit twins wait for the P.V between the row max and the exponentials: +2-4 % at d64 causal
  // s1024-2048 (bench/notes/wgmma_softmax.md, "The P.V wait between the row max and the exponentials").
  constexpr bool kExpsAfterWait = kRotate && !kFp32;
  constexpr int kBlockM = Tr::kBlockM;
  extern __shared__ unsigned char smem_raw[];
  // wgmma's swizzle is a function of the address bits: tiles must start 1024-aligned.
  const Sm sm{(smem_addr(smem_raw) + kSwizzleAtomBytes - 1) & ~u32(kSwizzleAtomBytes - 1)};
  constexpr int kQS = Tr::kQStages;
  auto slot = [](int u) { return Sm::slot(u); };
  auto phase = [](int u) { return Sm::phase(u); };
  auto q_slot = [](int u) { return Sm::q_slot(u); };
  auto q_phase = [](int u) { return Sm::q_phase(u); };

  const int tid = threadIdx.x, lane = tid % kWarpSize, warp = tid / kWarpSize;
  const int warpgroup = tid / kWarpgroupThreads;
  const int m_blocks = ceil_div(p.seqlen_q, kBlockM);

  if (tid == 0) {
    // Converted buffers fill by the converter warps' arrivals (wgmma_convert.h), the others by TMA bytes.
    const u32 q_fills = Tr::kConvert ? converted_full_count<Tr>(true) : 1;
    const u32 kv_fills = Tr::kConvert ? converted_full_count<Tr>(false) : 1;
#pragma unroll
    for (int s = 0; s < kQS; ++s) {
      mbar_init(sm.full_q(s), q_fills);
      mbar_init(sm.empty_q(s), Tr::kConsumerWarps);
    }
#pragma unroll
    for (int s = 0; s < kStages; ++s) {
      mbar_init(sm.full_k(s), kv_fills);
      mbar_init(sm.full_v(s), kv_fills);
      mbar_init(sm.empty_k(s), Tr::kConsumerWarps);
      mbar_init(sm.empty_v(s), Tr::kConsumerWarps);
    }
#pragma unroll
    for (int s = 0; s < Tr::kStagesCvt; ++s) {
      mbar_init(sm.stage_full(s), 1);
      mbar_init(sm.stage_empty(s), kConverterWarps);
    }
    mbar_fence_init();
  }
  __syncthreads();

  if (warpgroup == 0) {
    // ------------------------------------------------------------ producer
    setmaxnreg_dec<Tr::kProducerRegs>();
    if constexpr (Tr::kConvert) {
      convert_producer<Tr, kPersistent>(p, tma, sm, m_blocks, tid);
    } else {
      if (warp == 0 && lane == 0) tma_producer<Tr, Elem, kPersistent, kSplitTail, kTableWalk>(p, tma, sm, m_blocks);
      if constexpr (kKVOnce) {
        if (warp > 0) kv_once_converters<Tr, kPersistent, kTableWalk>(p, sm, m_blocks, tid - kWarpSize);
      }
    }
    return;
  }

  // -------------------------------------------------------------- consumers
  setmaxnreg_inc<Tr::kConsumerRegs>();
  // Which 64 rows of the block. Through a shuffle so that the compiler knows it
  // is warp-uniform: Q's descriptors then live in uniform registers, with no
  // R2UR per wgmma.
  const int cwg = __shfl_sync(0xffffffffu, warpgroup, 0) - 1;
  // K-major operands (Q, K): 8-row groups 1024 bytes apart (SBO); LBO unused.
  u32 q_rows = 64 * cwg * kSwizzleRowBytes;  // this warpgroup's rows in a Q buffer (per item with kRotate)
  const u32 scratch = sm.scratch() + kScratchBytesPerThread * (tid - kWarpgroupThreads);
  float acc_o[Tr::kOTiles][4];
  // Split: each tile's P.V lands in its own zeroed accumulator and is added to O
  // with an ordinary (round-to-nearest) fp32 add. Hazard: the tensor cores'
  // fp32 accumulation is reported to round toward zero (Fasi et al., V100/A100);
  // over thousands of keys x three products that bias alone would cost ~2e-5
  // relative error (a simulation), beyond the 1e-5 that the split exists for.
  float acc_pv[kSplit ? Tr::kOTiles : 1][4];
  RowState st;

  // Issue S = Q K^T for the K tile in slot s and the Q buffer qs: kD / kK k-steps; a k-step is 32 bytes
  // along a swizzled row (k16 of 16-bit or k8 of tf32 values), and every 4 steps move to the next box.
  auto issue_qk = [&](float (&sc)[Tr::kNTiles][4], int s, int qs) {
    const u64 q_desc = make_smem_desc(sm.q(qs) + q_rows, 16, kSwizzleAtomBytes);
    const u64 k_desc = make_smem_desc(sm.k(s), 16, kSwizzleAtomBytes);
#pragma unroll
    for (int kk = 0; kk < Tr::kKSteps; ++kk) {
      const u32 col_bytes = (kk % kStepsPerSwizzleRow) * kWgmmaStepBytes;
      const u32 q_off = (kk / kStepsPerSwizzleRow) * Tr::kQBoxBytes + col_bytes;
      const u32 k_off = (kk / kStepsPerSwizzleRow) * Tr::kKVBoxBytes + col_bytes;
      Wgmma<Elem, kBlockN>::ss(sc, desc_add(q_desc, q_off), desc_add(k_desc, k_off), kk > 0);
      if constexpr (kSplit) {  // + q_hi k_lo + q_lo k_hi
        Wgmma<Elem, kBlockN>::ss(sc, desc_add(q_desc, q_off), desc_add(k_desc, k_off + Tr::kKVCopyBytes), 1);
        Wgmma<Elem, kBlockN>::ss(sc, desc_add(q_desc, q_off + Tr::kQCopyBytes), desc_add(k_desc, k_off), 1);
      }
    }
  };
  // Issue O += P V for the tile in slot s. 16-bit V is MN-major (head dim
  // contiguous), so the descriptor's LBO steps between 64-column boxes and SBO
  // between 8-key groups; a k-step is 16 keys. V^T (tf32) is K-major like K:
  // a k-step is 8 keys, 32 bytes along a row, chunk c starts at row c * kOChunk.
  // pf[0] is P (its hi part when split), pf[1] P's lo part (split only).
  // fresh: the item's first P.V, which overwrites O (scale_d 0 on its first
  // k-step) instead of adding to it, so O needs no zeroing per item: zeroing its
  // registers took 1.3 % of the stall samples at d128 s1024 (bench/notes/wgmma.md,
  // "Per-item cost after the Q prefetch").
  auto issue_pv = [&](const u32 (&pf)[Tr::kCopies][Tr::kPSteps][4], int s, bool fresh) {
    // LBO: 16-bit V steps between 64-column boxes with it; unused by K-major V^T.
    const u64 v_desc = make_smem_desc(sm.v(s), Tr::kVTransposed ? 16 : Tr::kKVBoxBytes, kSwizzleAtomBytes);
#pragma unroll
    for (int kk = 0; kk < Tr::kPSteps; ++kk) {
#pragma unroll
      for (int c = 0; c < kD / Tr::kOChunk; ++c) {
        u32 off;
        if constexpr (Tr::kVTransposed) {
          off = (kk / kStepsPerSwizzleRow) * Tr::kVtBoxBytes + c * Tr::kOChunk * kSwizzleRowBytes +
                (kk % kStepsPerSwizzleRow) * kWgmmaStepBytes;
        } else {
          off = (c * Tr::kOChunk / Elem::kBoxCols) * Tr::kKVBoxBytes + kk * 2 * kSwizzleAtomBytes;
        }
        float(*target)[4] = kSplit ? &acc_pv[0] : &acc_o[0];
        auto& acc = *reinterpret_cast<float(*)[Tr::kOChunk / 8][4]>(&target[c * Tr::kOChunk / 8]);
        // scale_d 0 on the first product of a split tile: acc_pv starts from zero;
        // and on the first product of an item's first tile otherwise (fresh).
        Wgmma<Elem, Tr::kOChunk>::rs(acc, pf[0][kk], desc_add(v_desc, off), kSplit ? kk > 0 : kk > 0 || !fresh);
        if constexpr (kSplit) {  // + p_hi v_lo + p_lo v_hi
          Wgmma<Elem, Tr::kOChunk>::rs(acc, pf[0][kk], desc_add(v_desc, off + Tr::kKVCopyBytes), 1);
          Wgmma<Elem, Tr::kOChunk>::rs(acc, pf[1][kk], desc_add(v_desc, off), 1);
        }
      }
    }
  };
  auto pack_p = [&](u32 (&pf)[Tr::kCopies][Tr::kPSteps][4], const float (&sc)[Tr::kNTiles][4]) {
    pack_p_fragments<Tr, Elem>(pf, sc);  // p_fragment.h
  };
  // Split: O += this tile's P.V (acc_pv) x pv_mult = 2^-e_v, after its wgmmas
  // completed: one FFMA per element, exact product (a power of two), so O is in
  // true units and rounds as the plain add did.
  float pv_mult = 1.f;  // split: 2^-e_v of the tile whose P.V is pending (set once the one before was added)
  auto add_pv = [&] {
    if constexpr (kSplit) {
      fence_acc(acc_pv);
#pragma unroll
      for (int j = 0; j < Tr::kOTiles; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc_o[j][e] = fmaf(acc_pv[j][e], pv_mult, acc_o[j][e]);
    }
  };
  auto release = [&](u32 bar) {
    __syncwarp();
    if (lane == 0) mbar_arrive(bar);  // this warp no longer reads that buffer
  };
  // Pingpong: take() waits for this warpgroup's turn to issue, pass() hands it over after issuing.
  const Turns<kPingpong, kConsumerWGs> turns{cwg};

  const float scale_log2 = p.scale_log2;  // true units, rescaled variants included (softmax.h, ScaledTile)
  // One term: the units O is held in (tile_shifts.h, OUnits); the epilogue undoes them.
  OUnits o_units{0};
  auto out_mult = [&] { return kRescaled && !kSplit ? o_units.out_mult() : 1.f; };
  int use = 0;    // K/V ring uses so far, in step with the producer
  int q_use = 0;  // Q buffer uses so far
  turns.prime();
  // The split adds each tile's acc_pv into O, which must start from zero.
  auto zero_o = [&] {
#pragma unroll
    for (int j = 0; j < Tr::kOTiles; ++j) acc_o[j][0] = acc_o[j][1] = acc_o[j][2] = acc_o[j][3] = 0.f;
  };
  // 16-bit outputs leave through shared memory and TMA: each warpgroup writes its rows of O into its own rows
  // of the item's Q buffer, free once the item's last Q.K^T completed. The buffer goes back to the producer
  // (empty_q) only once the TMA store has read it ("drain"), not right after that Q.K^T. Hazard: with one Q
  // buffer a persistent CTA would then load the next item's Q only after this epilogue, and with the cross-item
  // pipeline never (the epilogue waits for the next item's first softmax): those variants, and the fp32 outputs
  // (twice the bytes), store straight from registers.
  constexpr bool kSmemEpilogue = !kFp32 && (kQS == 2 || !kPersistent);
  // Draining the epilogue's store: every consumer warp arrives on empty_q of the buffer, once the thread that
  // issued the store has seen it read shared memory. The buffer is the last finished item's, q_slot(q_use - 1);
  // each item drains it once, where no wgmma is in flight (else ptxas serialises them): after its second tile's
  // P.V, or its only tile. The item before has always run its epilogue by then unless this is the CTA's first
  // item (q_use > 0); the kernel's end drains the last. (No flag: at 128 registers, 3 warpgroups, one more live
  // value spills.)
  auto drain_store = [&] {
    if constexpr (kSmemEpilogue) {
      if (q_use == 0) return;
      if (tid % kWarpgroupThreads == 0) bulk_wait_read<0>();
      release(sm.empty_q(q_slot(q_use - 1)));
    }
  };
  // Epilogue of item w, the last item counted in q_use, so it read Q buffer q_slot(q_use - 1) (a function:
  // lambdas called from several places may be left un-inlined, and then spill).
  // kRotate: the chunk of the block's rows this warpgroup owns in item use q (its Q rows, its output
  // rows, and its O staged in those same rows of the Q buffer, which no other warpgroup reads).
  auto chunk_of = [&](int q) { return kRotate ? (cwg + q) % kConsumerWGs : cwg; };
  auto write_out = [&](const WorkItem& w, const RowState& rs, float out_scale) {
    const int chunk = chunk_of(q_use - 1);
    const int row_off = 64 * chunk + 16 * (warp % 4);
    if constexpr (kSmemEpilogue) {
      const int qs_w = q_slot(q_use - 1);
      const float2 inv = finish_rows(p, w, rs, row_off, lane, scale_log2, out_scale);
      stage_o<Elem, Tr::kOTiles, Tr::kQBoxBytes>(sm.q(qs_w), inv, acc_o, 64 * (chunk - cwg));
      fence_proxy_async_smem();  // the TMA store (async proxy) must see these writes
      // Split-tail kernels read the warpgroup afresh (fresh_tid_x): kept live, it spilled at 192 rows.
      const u32 wg = kSplitTail ? static_cast<u32>(fresh_tid_x()) / kWarpgroupThreads - 1 : cwg;
      named_barrier_sync<kWarpgroupThreads>(kEpilogueBarrier0 + wg);
      if (tid % kWarpgroupThreads == 0) {
        const u32 rows = sm.q(qs_w) + 64 * chunk * kSwizzleRowBytes;
#pragma unroll
        for (int b = 0; b < Tr::kBoxes; ++b)
          tma_store_4d(&tma.o, rows + b * Tr::kQBoxBytes, b * Elem::kBoxCols, w.m0 + 64 * chunk, w.head, w.batch);
        bulk_commit();
      }
    } else {
      store_o<Elem, kFp32, Tr::kOTiles>(p, w, rs, acc_o, row_off, lane, scale_log2, out_scale);
    }
  };

  // The split tail (split_tail.h): true where this warpgroup handed its part of a cut item over.
  auto hand_over = [&](const WorkItem& w, RowState& rs) {
    if constexpr (kSplitTail) {
      const int cut = sk_cut<kBlockN>(p, w);
      if (cut >= 0)
        return sk_hand_over<Tr::kOTiles, kConsumerWGs, kEpilogueBarrier0>(p, cut, acc_o, rs, scale_log2);
    }
    return false;
  };

  u32 pf[Tr::kCopies][Tr::kPSteps][4];  // P of the previous tile, waiting for its P.V
  // The last item whose last P.V has not been issued yet (persistent CTAs only:
  // that P.V goes out together with the next item's first Q.K^T, so the tensor
  // cores have work while the next item's first softmax runs).
  // Only where S, P, O and the finished item's row state fit in registers at
  // once: ptxas spilled with 3 consumer warpgroups (160 registers each), head
  // dims above 128 (O alone is 128 registers at 256), 176-key tiles and the split.
  constexpr bool kCrossItem = kPersistent && kConsumerWGs == 2 && kD <= 128 && kBlockN <= 128 && !kSplit;
  WorkItem pending;
  bool has_pending = false;
  // The last tile's P.V of item w on its own, then its epilogue.
  auto finish = [&](const WorkItem& w) {
    const int u = use - 1;
    mbar_wait(sm.full_v(slot(u)), phase(u));
    turns.take();
    wgmma_fence();
    issue_pv(pf, slot(u), w.n_tiles == 1);
    wgmma_commit();
    turns.pass();
    wgmma_wait<0>();
    fence_acc(acc_o);
    fence_frag(pf);
    release(sm.empty_v(slot(u)));
    add_pv();
    if (!hand_over(w, st)) write_out(w, st, out_mult());
  };

  // Key tiles this warpgroup does not compute: it only keeps step, waiting for every
  // buffer a tile fills before releasing it (an early arrival would count towards the
  // slot's previous fill) and taking every pingpong turn, so the turns still alternate.
  auto pass_tiles = [&](int count) {
    for (int i = 0; i < count; ++i, ++use) {
      mbar_wait(sm.full_k(slot(use)), phase(use));
      turns.take();
      turns.pass();
      release(sm.empty_k(slot(use)));
      mbar_wait(sm.full_v(slot(use)), phase(use));
      release(sm.empty_v(slot(use)));
    }
  };
  // An item none of whose rows this warpgroup owns: its 64 rows all lie past seqlen_q
  // (at s1024 two of the 192-row tiles' last block's three warpgroups computed 128
  // unstored rows, 12.5 % of the work; bench/notes/wgmma.md, "Idle warpgroups") or,
  // shifted by FlashParams.q_row_shift, before row 0: every tile passed, n_tiles + 1 turns.
  // Hazard: the previous item's Q buffer goes back first (the producer refills it at
  // this item's tile kQPrefetchTile: drained only after the later K/V tiles, it
  // deadlocked every call with 4 or more key tiles and another item to follow).
  auto skip_item = [&](const WorkItem& w, int qs) {
    drain_store();
    if constexpr (Tr::kQByTma) mbar_wait(sm.full_q(qs), q_phase(q_use));
    pass_tiles(w.n_tiles);
    turns.take();
    turns.pass();
    if constexpr (!kSmemEpilogue && Tr::kQByTma) release(sm.empty_q(qs));
    ++q_use;
  };

  // One work item. Without kPersistent the grid has exactly one CTA per item and
  // no item loop is emitted: its counters would otherwise hold registers the
  // split fp32 variant needs.
  for_each_item<kPersistent, kSplitTail, kTableWalk>(p, m_blocks, [&](const BlockCoord& bc) {
    WorkItem w = work_item<kBlockM, kBlockN>(p, bc);
    const int chunk = chunk_of(q_use);
    if constexpr (kRotate && !kQInKernel) q_rows = 64 * chunk * kSwizzleRowBytes;  // where TMA put its rows
    const int warp_row0 = w.m0 + 64 * chunk + 16 * (warp % 4);
    if (w.n_tiles == 0) {  // every row masked: zeros and LSE -inf, no Q, no tile
      if (has_pending) finish(pending);
      has_pending = false;
      RowState none;
      none.init();
      store_o<Elem, kFp32, Tr::kOTiles, true>(p, w, none, acc_o, 64 * chunk + 16 * (warp % 4), lane, scale_log2,
                                              1.f);
      return;
    }
    const int qs = q_slot(q_use);
    // Not with the cross-item pipeline, whose pending P.V and epilogue cross this
    // point (its variants have 128-row blocks: partial only at odd lengths).
    if (!kCrossItem && (w.m0 + 64 * chunk >= p.seqlen_q || w.m0 + 64 * chunk + 64 <= 0)) {
      skip_item(w, qs);
      return;
    }
    // Causal, one item per CTA: the block's last key tile (walked first) is passed, not
    // computed, where it lies wholly past the diagonal for this warpgroup's rows: d64
    // s4096 +3.5 %, d256 +0.3-2.2 %; persistent CTAs lost ~1 % (bench/notes/wgmma_tiles.md,
    // "Key tiles per warpgroup"), unless the chunks rotate (kRotate). At most one tile
    // (kBlockM - 64 <= kBlockN) keeps any drain of a Q buffer (at the warpgroup's second
    // tile, so the item's tile kQPrefetchTile at the latest) ahead of the producer's wait.
    if constexpr ((!kPersistent || kRotate) && kBlockM - 64 <= kBlockN) {
      const int passed = w.n_tiles - warpgroup_tiles<kBlockN>(p, w, 64 * chunk);
      pass_tiles(passed);
      w.n_tiles -= passed;
      w.n_top -= passed * kBlockN;
      // Persistent: hand the last item's Q buffer back now, not at this warpgroup's second computed
      // tile (the item's third), which held the producer's next K/V load behind the next item's Q.
      if (kRotate && passed > 0) drain_store();
    }
    // Whether this warpgroup passed a tile and drained above (recomputed: a flag kept live spills).
    auto drained_early = [&] { return kRotate && w.n_top + kBlockN < key_end(p, w.m0 + kBlockM); };
    const int n_tiles = w.n_tiles;
    // Rescaled variants: this item's shifts (tile_shifts.h): e_q, and where its key
    // tiles' {e_k, e_v} pairs start; key tile i's is read at the top of its step
    // (tile_shift(i)). Converting in the kernel: in shared memory (converted_shift).
    const int2* kv_shifts = nullptr;
    int e_q = 0;
    if constexpr (kRescaled && !Tr::kConvert) {
      const int n_kv_tiles = ceil_div(p.seqlen_k, kBlockN);
      kv_shifts = reinterpret_cast<const int2*>(p.tile_shifts) +
                  kv_shift_index(w.batch, w.kv_head, p.heads_kv, n_kv_tiles);
      if constexpr (!kQInKernel)  // else the conversion below takes it
        e_q = p.tile_shifts[q_shift_index(w.batch, w.head, w.m0 / kBlockM, p.batch, p.heads_q, p.heads_kv, n_kv_tiles,
                                        m_blocks)];
    }
    auto tile_shift = [&](int i) {
      return kRescaled && !Tr::kConvert && !kKVOnce ? kv_shifts[w.n_top / kBlockN - i] : int2{};
    };
    // K and V converted once per call: read after the tile's full_k wait (kv_once.h, hazard (2)).
    auto once_shift = [&](int2 e, int i) {
      return kKVOnce ? ld_relaxed_gpu_v2(&kv_shifts[w.n_top / kBlockN - i].x) : e;
    };
    // Converting: key tile use u's shifts, once its S is ready and before its K
    // slot goes back (the converters then rewrite the slot's word). The one-term
    // softmax needs e_v already, so this waits for V's data too: the converters
    // finish V right after K, normally while the Q.K^T runs. e: tile_shift's.
    auto converted_shift = [&](int2 e, int u) {
      if constexpr (Tr::kConvert) {
        mbar_wait(sm.full_v(slot(u)), phase(u));
        e = make_int2(static_cast<int>(lds32(sm.shift_k(slot(u)))), static_cast<int>(lds32(sm.shift_v(slot(u)))));
      }
      return e;
    };
    // One key tile's scores: S = Q K^T into sc (issued by the caller), then mask
    // and softmax. Returns how O must be rescaled before this tile's P.V (with
    // one term, O's change of units included). e: the tile's shifts.
    // A lazy running max (softmax.h, kLazyMaxLog2): +2-4 % at d128, +1-3 % at d64 with
    // 192-row blocks and at d256, but -3.5 % on d64's 128-row blocks (bench/notes/wgmma_softmax.md,
    // "A lazy running max"), which keep the exact one.
    constexpr bool kLazyMax = !(kD == 64 && kConsumerWGs == 2);
    auto scores_to_p = [&](float (&sc)[Tr::kNTiles][4], int i, int2 e) {
      const int n0 = w.n_top - i * kBlockN;
      // 192-row blocks test per warp (their diagonal crosses two key tiles; a warp that sees
      // all of one skips ~170 instructions); bench/notes/wgmma_tiles.md, "The mask test per warp".
      if (tile_needs_mask<kBlockM, kBlockN>(p, kConsumerWGs == 3 ? warp_row0 : w.m0, n0))
        apply_mask(sc, p, warp_row0, n0, lane);
      if constexpr (!kRescaled) {
        return softmax_update<kLazyMax>(sc, st, scale_log2);
      } else if constexpr (kSplit) {
        return softmax_update<kLazyMax>(sc, st, scale_log2, ScaledTile{pow2_f32(-(e_q + e.x))});
      } else {
        if (i == 0) {  // the item's first tile: O starts over in its units
          o_units.start(e.y);
          return softmax_update<kLazyMax>(sc, st, scale_log2, ScaledShiftedTile{pow2_f32(-(e_q + e.x)), 0.f, 1.f});
        }
        bool moved;
        float unit;
        const int shift = o_units.enter(e.y, moved, unit);
        RowCorrection corr = softmax_update<kLazyMax>(
            sc, st, scale_log2,
            ScaledShiftedTile{pow2_f32(-(e_q + e.x)), static_cast<float>(shift), pow2_f32(shift)});
        if (moved) fold_unit_change(corr, unit);  // warp-uniform: the same shifts for every thread
        return corr;
      }
    };

    // The item's first tile: the one with the causal diagonal, or the last, partial
    // key tile, whenever some tile needs a mask. Masked by chunks of keys (mask.h,
    // apply_mask_chunked) and the chunks no row of the warp sees take no
    // exponentials: on a 128 x 128 diagonal tile 12 of a block's 32 warp chunks are
    // dead and 12 need no mask. One softmax for masked and unmasked first tiles
    // (all chunks live): a second copy grew the code, and in the loop cost 2-4 %.
    // Only the 192-row tiles: +1.2-2.6 % there, full rows too; the 128-row ones
    // lost up to 1.3 % (bench/notes/wgmma_softmax.md, "Dead chunks of the diagonal tile").
    // Rescaled variants keep scores_to_p.
    constexpr bool kChunkedFirst = !kRescaled && kConsumerWGs == 3 && Tr::kNTiles % kMaxChains == 0;
    auto first_scores_to_p = [&](float (&sc)[Tr::kNTiles][4], int2 e) {
      if constexpr (kChunkedFirst) {
        const int n0 = w.n_top;
        const unsigned live = tile_needs_mask<kBlockM, kBlockN>(p, w.m0, n0)
                                  ? apply_mask_chunked<kMaxChains>(sc, p, warp_row0, n0, lane)
                                  : ~0u;
        softmax_update<kLazyMax>(sc, st, scale_log2, UnitTile{}, LiveChunks{live});
      } else {
        scores_to_p(sc, 0, e);
      }
    };

    // The first tile. ptxas tracks which wgmma may still be running per control-flow path, so no wgmma is in
    // flight where paths join: each branch below, and each trip of the steady-state loop, ends with
    // wgmma_wait<0>. A path that merely looks possible otherwise makes ptxas insert waits and serialise every
    // wgmma (warning C7514).
    {
      float sc[Tr::kNTiles][4];
      int2 e = tile_shift(0);
      if constexpr (kQInKernel) {  // this warpgroup's rows of Q, converted here (q_convert.h)
        e_q = convert_q<Tr>(p, sm, w, qs, q_use, cwg, chunk, tid % kWarpgroupThreads);
      } else {
        mbar_wait(sm.full_q(qs), q_phase(q_use));
      }
      if constexpr (Tr::kConvert) e_q = static_cast<int>(lds32(sm.shift_q(qs, cwg)));  // this warpgroup's rows
      mbar_wait(sm.full_k(slot(use)), phase(use));
      if (!kCrossItem || !has_pending) e = once_shift(e, 0);  // the boundary reads it later
      if (kCrossItem && has_pending) {
        // Item boundary: the pending item's last P.V goes out first and this item's first Q.K^T
        // right behind it, so the pending item's epilogue runs while that Q.K^T computes. (Run
        // after this item's first softmax, it sat between the item's first two issues, on the
        // pingpong pair's path: d128 +1-3 %; bench/notes/wgmma_tiles_cont.md, "The epilogue under
        // the first Q.K^T".)
        const int u = use - 1;
        mbar_wait(sm.full_v(slot(u)), phase(u));
        turns.take();
        wgmma_fence();
        issue_pv(pf, slot(u), pending.n_tiles == 1);
        wgmma_commit();
        issue_qk(sc, slot(use), qs);
        wgmma_commit();
        turns.pass();
        wgmma_wait<1>();  // the pending item's O is complete; S may still run
        fence_acc(acc_o);
        fence_frag(pf);
        release(sm.empty_v(slot(u)));
        if (!hand_over(pending, st)) write_out(pending, st, out_mult());  // before this item resets O's units
        st.init();
        e = once_shift(e, 0);  // read here, not live across the epilogue: kv-once spilled 8 bytes
        wgmma_wait<0>();
        fence_acc(sc);
        e = converted_shift(e, use);
        release(sm.empty_k(slot(use)));
        first_scores_to_p(sc, e);  // O restarts from zero: nothing to rescale
        pack_p(pf, sc);
      } else {
        if constexpr (kSplit) zero_o();
        st.init();
        turns.take();
        wgmma_fence();
        issue_qk(sc, slot(use), qs);
        wgmma_commit();
        turns.pass();
        wgmma_wait<0>();
        fence_acc(sc);
        e = converted_shift(e, use);
        release(sm.empty_k(slot(use)));
        first_scores_to_p(sc, e);  // O is still zero: nothing to rescale
        if constexpr (kSplit) pv_mult = pow2_f32(-e.y);
        pack_p(pf, sc);
      }
    }
    for (int i = 1; i < n_tiles; ++i) {
      const int u = use + i;
      float sc[Tr::kNTiles][4];
      int2 e = tile_shift(i);  // used after the Q.K^T wgmma: its latency hides behind it
      mbar_wait(sm.full_k(slot(u)), phase(u));
      e = once_shift(e, i);
      mbar_wait(sm.full_v(slot(u - 1)), phase(u - 1));
      turns.take();
      wgmma_fence();
      issue_qk(sc, slot(u), qs);
      wgmma_commit();
      issue_pv(pf, slot(u - 1), i == 1);
      wgmma_commit();
      turns.pass();
      wgmma_wait<1>();  // S_i is ready; P_{i-1} V_{i-1} may still run
      fence_acc(sc);
      e = converted_shift(e, u);
      release(sm.empty_k(slot(u)));
      const RowCorrection corr = scores_to_p(sc, i, e);
      // Keeps the softmax (the rotated 16-bit twins: its row max only) ahead of the wait.
      order_before_wait(scratch, kExpsAfterWait ? st.max[0] : st.sum[0], kExpsAfterWait ? st.max[1] : st.sum[1]);
      wgmma_wait<0>();  // P_{i-1} V_{i-1} is in O; its P registers and V slot are free
      fence_acc(acc_o);
      fence_frag(pf);
      release(sm.empty_v(slot(u - 1)));
      // The last item's O left shared memory a tile ago: hand its Q buffer back.
      if (i == 1 && !drained_early()) drain_store();
      add_pv();
      if constexpr (kSplit) pv_mult = pow2_f32(-e.y);  // now that the previous tile's P.V is in O
      rescale_o(acc_o, corr);
      pack_p(pf, sc);
    }
    if (n_tiles == 1 && !drained_early()) drain_store();
    // Every Q.K^T of this item has completed: the producer may refill this Q
    // buffer, unless the epilogue is to use it first.
    if constexpr (!kSmemEpilogue && !kQInKernel) release(sm.empty_q(qs));
    use += n_tiles;
    ++q_use;
    if constexpr (kCrossItem) {
      pending = w;
      has_pending = true;
    } else {
      finish(w);
    }
  });
  if constexpr (kCrossItem) {
    if (has_pending) finish(pending);
  }
  drain_store();  // shared memory must outlive the last TMA store's reads
  if (cwg == 0) turns.take();  // consume the last warpgroup's last hand-over
}

}  // namespace cupyflash
