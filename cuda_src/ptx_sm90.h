// Thin wrappers around the Hopper (sm_90a) PTX the wgmma kernel uses: mbarrier,
// TMA (cp.async.bulk.tensor), wgmma, setmaxnreg and the proxy fences. Each
// wrapper is one instruction (or one instruction in a try-loop). This header is
// only ever compiled for sm_90a (flash_fwd_sm90.cu); the sm_80 path never sees it.
#pragma once
#include "ptx.h"

namespace cupyflash {

// ---------------------------------------------------------------- mbarrier
__device__ __forceinline__ void mbar_init(u32 bar, u32 count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
// Makes the initialised barriers visible to the async proxy (TMA) and to other threads.
__device__ __forceinline__ void mbar_fence_init() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }

__device__ __forceinline__ void mbar_arrive(u32 bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Arrive once `after` is computed: a value that depends on every shared-memory
// load this arrival releases, so that those loads have returned their data
// before the arrival can let an async-proxy (TMA) write overwrite the buffer.
__device__ __forceinline__ void mbar_arrive_after(u32 bar, u32 after) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar), "r"(after) : "memory");
}
// Arrive and announce `bytes` of TMA traffic that must land before the phase completes.
__device__ __forceinline__ void mbar_arrive_expect_tx(u32 bar, u32 bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
// Block until the phase of parity `phase` has completed. A fresh barrier is in
// phase 0, so waiting on parity 1 returns at once: that is how a producer's
// first pass over an "empty" ring goes through.
__device__ __forceinline__ void mbar_wait(u32 bar, u32 phase) {
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT_%=;\n"
      "}\n" ::"r"(bar),
      "r"(phase)
      : "memory");
}

// ---------------------------------------------------------------- TMA
// The tensor map lives in kernel parameter space (__grid_constant__); TMA takes
// its generic address.
__device__ __forceinline__ void tma_prefetch_desc(const void* desc) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<u64>(desc)) : "memory");
}
// 4-D tiled load: coordinates (innermost first) (col, row, head, batch). Elements
// outside the tensor are written as zeros and still count toward the bytes.
__device__ __forceinline__ void tma_load_4d(u32 dst, const void* desc, u32 bar, int c0, int c1, int c2, int c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5, %6}], [%2];\n" ::"r"(dst),
      "l"(reinterpret_cast<u64>(desc)), "r"(bar), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
      : "memory");
}

// 4-D tiled store of one box from shared memory (same coordinates as the load).
// Elements outside the tensor (rows past seqlen, columns past head_dim) are not
// written. The store joins this thread's current bulk group.
__device__ __forceinline__ void tma_store_4d(const void* desc, u32 src, int c0, int c1, int c2, int c3) {
  asm volatile("cp.async.bulk.tensor.4d.global.shared::cta.bulk_group [%0, {%2, %3, %4, %5}], [%1];\n" ::"l"(
                   reinterpret_cast<u64>(desc)),
               "r"(src), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
               : "memory");
}
__device__ __forceinline__ void bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
// Wait until at most kPending of this thread's bulk groups still read shared
// memory (their global writes may still be in flight): the source may then be reused.
template <int kPending>
__device__ __forceinline__ void bulk_wait_read() {
  asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(kPending) : "memory");
}
// Make this thread's ordinary shared-memory writes visible to the async proxy
// (a TMA store that a barrier later lets read them).
__device__ __forceinline__ void fence_proxy_async_smem() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// The same for global memory: ordinary stores that a TMA load (possibly on
// another SM, after a release/acquire pair) reads next; on the reading side,
// between the acquire and the TMA load.
__device__ __forceinline__ void fence_proxy_async_global() { asm volatile("fence.proxy.async.global;\n" ::: "memory"); }

// ---------------------------------------------------------------- flags between CTAs
// A flag word that other SMs poll: release store (every write this thread has
// observed, the converter warps' through their barrier, is visible first),
// acquire load (nothing after it is read earlier), and a relaxed gpu-scope load
// that reads L2, never a stale L1 line (ld.relaxed.gpu), for data written
// before a release that this SM already acquired.
__device__ __forceinline__ void st_release_gpu(u32* flag, u32 v) {
  asm volatile("st.release.gpu.global.u32 [%0], %1;\n" ::"l"(flag), "r"(v) : "memory");
}
__device__ __forceinline__ u32 ld_acquire_gpu(const u32* flag) {
  u32 v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(flag) : "memory");
  return v;
}
__device__ __forceinline__ int2 ld_relaxed_gpu_v2(const int* p) {
  int2 v;
  asm volatile("ld.relaxed.gpu.global.v2.s32 {%0, %1}, [%2];\n" : "=r"(v.x), "=r"(v.y) : "l"(p) : "memory");
  return v;
}

// Four 8 x 8 matrices of 16-bit values into shared memory: register r of every
// thread is row lane / 4, columns 2 * (lane % 4) and +1 of matrix r (an mma
// accumulator fragment's layout); lane i gives the address of row i % 8 of matrix i / 8.
__device__ __forceinline__ void stmatrix_x4(u32 addr, u32 r0, u32 r1, u32 r2, u32 r3) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r0), "r"(r1),
               "r"(r2), "r"(r3)
               : "memory");
}

// ---------------------------------------------------------------- register budget
template <int kRegs>
__device__ __forceinline__ void setmaxnreg_inc() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs)); }
template <int kRegs>
__device__ __forceinline__ void setmaxnreg_dec() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs)); }

// Named barrier over a subset of warps (id 0 is __syncthreads): sync waits
// until `threads` threads have arrived, counting itself; arrive does not wait.
// The id is an immediate: with a register id ptxas reserves all 16 barriers.
template <int kId, int kThreads>
__device__ __forceinline__ void named_barrier_sync() {
  asm volatile("bar.sync %0, %1;\n" ::"n"(kId), "n"(kThreads) : "memory");
}
template <int kId, int kThreads>
__device__ __forceinline__ void named_barrier_arrive() {
  asm volatile("bar.arrive %0, %1;\n" ::"n"(kId), "n"(kThreads) : "memory");
}

// The same with the id in a register: ptxas then reserves all 16 barriers, which
// costs nothing at one CTA per SM.
template <int kThreads>
__device__ __forceinline__ void named_barrier_sync(u32 id) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "n"(kThreads) : "memory");
}
template <int kThreads>
__device__ __forceinline__ void named_barrier_arrive(u32 id) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "n"(kThreads) : "memory");
}
// Named barrier that also ORs a predicate over the arriving threads: every one gets the
// result (ptxas cannot tell that it is the same in every lane: warp_uniform, common.h).
template <int kThreads>
__device__ __forceinline__ bool named_barrier_or(u32 id, bool pred) {
  u32 r;
  asm volatile(
      "{\n.reg .pred p, q;\n"
      "setp.ne.u32 p, %1, 0;\n"
      "bar.red.or.pred q, %2, %3, p;\n"
      "selp.u32 %0, 1, 0, q;\n}\n"
      : "=r"(r)
      : "r"(static_cast<u32>(pred)), "r"(id), "n"(kThreads)
      : "memory");
  return r != 0;
}
template <int kId, int kThreads>
__device__ __forceinline__ bool named_barrier_or(bool pred) {
  return named_barrier_or<kThreads>(kId, pred);
}

// ---------------------------------------------------------------- wgmma
// Shared-memory matrix descriptor (PTX ISA, "matrix descriptor"): start address,
// leading- and stride-dimension byte offsets, all >> 4, and the swizzle mode in
// bits 62-63 (1 = 128-byte swizzle). Every tile we describe starts on a
// 1024-byte boundary, so the base-offset field stays 0.
constexpr u64 kDescSwizzle128 = 1ull << 62;
__device__ __forceinline__ u64 make_smem_desc(u32 addr, u32 lbo_bytes, u32 sbo_bytes) {
  return static_cast<u64>((addr & 0x3FFFF) >> 4) | (static_cast<u64>(lbo_bytes >> 4) << 16) |
         (static_cast<u64>(sbo_bytes >> 4) << 32) | kDescSwizzle128;
}

// The descriptor of the tile offset_bytes past desc's start. The start-address
// field is addr >> 4 in bits 0-13, and shared-memory addresses stay below 2^18,
// so the offset adds to the low word without carrying out of that field: one
// add per wgmma. Building each descriptor with make_smem_desc took ~9 issue
// slots per wgmma, about a fifth of a key tile's instructions at head dim 128
// (bench/notes/wgmma.md, "Descriptors by offset").
__device__ __forceinline__ u64 desc_add(u64 desc, u32 offset_bytes) {
  u32 lo, hi;
  asm("mov.b64 {%0, %1}, %2;\n" : "=r"(lo), "=r"(hi) : "l"(desc));
  u64 out;
  asm("mov.b64 %0, {%1, %2};\n" : "=l"(out) : "r"(lo + (offset_bytes >> 4)), "r"(hi));
  return out;
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}

// A shared-memory store of values that the softmax finishes last, placed just
// before a wgmma wait. ptxas hoists WARPGROUP.DEPBAR to the top of its basic
// block unless an earlier memory operation holds it back: with this store the
// wait for the in-flight P.V lands after every exponential (the SASS shows
// all MUFU.EX2 of a tile between DEPBAR 1 and DEPBAR 0), otherwise before them.
// `slot` is this thread's own 4 bytes of scratch, so nothing ever reads it. The
// stored value is a + b: ptxas orders by the data the store really reads, and a
// store of a alone let the exponentials behind b move below the wait (CI's
// test_softmax_overlaps_the_previous_pv caught it). 8 bytes per thread, storing
// both, left no room for 80-key tiles at head dim 256. Given the row maxima instead, the
// wait lands between the maxima and the exponentials (flash_fwd_wgmma.cuh, kExpsAfterWait).
__device__ __forceinline__ void order_before_wait(u32 slot, float a, float b) {
  asm volatile("{\n.reg .f32 t;\nadd.f32 t, %1, %2;\nst.shared.f32 [%0], t;\n}\n" ::"r"(slot), "f"(a), "f"(b)
               : "memory");
}

// Keep the compiler from moving accumulator registers across an in-flight wgmma:
// an empty asm that claims to read and write every register of the fragment.
template <int kN8>
__device__ __forceinline__ void fence_acc(float (&d)[kN8][4]) {
#pragma unroll
  for (int j = 0; j < kN8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[j][e])::"memory");
}

// The same for register A operands (P): a wgmma reads them after it is issued,
// so they must stay in place until its wait. Without this fence the compiler
// sees P dead after the issuing asm, hands its registers to the softmax that
// follows, and ptxas must then hoist the wait above the whole softmax: the
// exponentials no longer overlap the P.V (seen in the SASS of wgmma v2).
template <int kCopies, int kK16>
__device__ __forceinline__ void fence_frag(u32 (&a)[kCopies][kK16][4]) {
#pragma unroll
  for (int c = 0; c < kCopies; ++c)
#pragma unroll
    for (int k = 0; k < kK16; ++k)
#pragma unroll
      for (int r = 0; r < 4; ++r) asm volatile("" : "+r"(a[c][k][r])::"memory");
}

// Accumulator layout of wgmma m64nNk16 (per warp w of the warpgroup, g = lane/4,
// t = lane%4): d[j][0..1] = rows 16w+g, cols 8j+2t..+1; d[j][2..3] = row 16w+g+8.
// That is mma.sync's C layout repeated over N/8 tiles, so the mma path's mask
// and softmax code applies unchanged.
#define CF_D4(j) "+f"(d[j][0]), "+f"(d[j][1]), "+f"(d[j][2]), "+f"(d[j][3])
#define CF_D32 CF_D4(0), CF_D4(1), CF_D4(2), CF_D4(3), CF_D4(4), CF_D4(5), CF_D4(6), CF_D4(7)
#define CF_D64 CF_D32, CF_D4(8), CF_D4(9), CF_D4(10), CF_D4(11), CF_D4(12), CF_D4(13), CF_D4(14), CF_D4(15)
#define CF_R32                                                                                                \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, " \
  "%23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define CF_R64                                                                                                 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, "  \
  "%23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, "   \
  "%44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"

#define CF_D40 CF_D32, CF_D4(8), CF_D4(9)
#define CF_R40                                                                                                \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, " \
  "%23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39}"
#define CF_D88 CF_D64, CF_D4(16), CF_D4(17), CF_D4(18), CF_D4(19), CF_D4(20), CF_D4(21)
#define CF_R88 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, " \
  "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, " \
  "%44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, " \
  "%66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87}"

// The scale-d operand: 0 overwrites the accumulator (first k step), 1 adds to it.
#define CF_SCALE_D(n) ".reg .pred p;\nsetp.ne.b32 p, %" #n ", 0;\n"

// D (64 x N, fp32) (+)= A (64 x 16, shared, K-major) . B (16 x N, shared, K-major)
#define CF_WGMMA_SS(N, TY, REGS, OPS, IA, IB, IS)                                                      \
  asm volatile("{\n" CF_SCALE_D(IS) "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TY "." TY " " REGS \
               ", %" #IA ", %" #IB ", p, 1, 1, 0, 0;\n}\n"                                             \
               : OPS                                                                                   \
               : "l"(desc_a), "l"(desc_b), "r"(scale_d))
// D (64 x N, fp32) (+)= A (64 x 16, registers) . B (16 x N, shared, MN-major: transposed)
#define CF_WGMMA_RS(N, TY, REGS, OPS, A0, A1, A2, A3, IB, IS)                                                   \
  asm volatile("{\n" CF_SCALE_D(IS) "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TY "." TY " " REGS        \
               ", {%" #A0 ", %" #A1 ", %" #A2 ", %" #A3 "}, %" #IB ", p, 1, 1, 1;\n}\n"                         \
               : OPS                                                                                          \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(scale_d))

template <class Elem, int kN>
struct Wgmma;

template <class Elem>
struct Wgmma<Elem, 64> {
  static __device__ __forceinline__ void ss(float (&d)[8][4], u64 desc_a, u64 desc_b, int scale_d) {
    if constexpr (Elem::kIsBf16) CF_WGMMA_SS(64, "bf16", CF_R32, CF_D32, 32, 33, 34);
    else CF_WGMMA_SS(64, "f16", CF_R32, CF_D32, 32, 33, 34);
  }
  static __device__ __forceinline__ void rs(float (&d)[8][4], const u32 (&a)[4], u64 desc_b, int scale_d) {
    if constexpr (Elem::kIsBf16) CF_WGMMA_RS(64, "bf16", CF_R32, CF_D32, 32, 33, 34, 35, 36, 37);
    else CF_WGMMA_RS(64, "f16", CF_R32, CF_D32, 32, 33, 34, 35, 36, 37);
  }
};

template <class Elem>
struct Wgmma<Elem, 128> {
  static __device__ __forceinline__ void ss(float (&d)[16][4], u64 desc_a, u64 desc_b, int scale_d) {
    if constexpr (Elem::kIsBf16) CF_WGMMA_SS(128, "bf16", CF_R64, CF_D64, 64, 65, 66);
    else CF_WGMMA_SS(128, "f16", CF_R64, CF_D64, 64, 65, 66);
  }
  static __device__ __forceinline__ void rs(float (&d)[16][4], const u32 (&a)[4], u64 desc_b, int scale_d) {
    if constexpr (Elem::kIsBf16) CF_WGMMA_RS(128, "bf16", CF_R64, CF_D64, 64, 65, 66, 67, 68, 69);
    else CF_WGMMA_RS(128, "f16", CF_R64, CF_D64, 64, 65, 66, 67, 68, 69);
  }
};

// N = 80: the key tile FlashAttention-3 uses at head dim 256 without a causal
// mask (25 % more keys per tile than 64 in the shared memory that Q's 64 KB
// leaves). Q.K^T only.
template <class Elem>
struct Wgmma<Elem, 80> {
  static __device__ __forceinline__ void ss(float (&d)[10][4], u64 desc_a, u64 desc_b, int scale_d) {
    if constexpr (Elem::kIsBf16) CF_WGMMA_SS(80, "bf16", CF_R40, CF_D40, 40, 41, 42);
    else CF_WGMMA_SS(80, "f16", CF_R40, CF_D40, 40, 41, 42);
  }
};

// N = 176: the key tile FlashAttention-3 uses at head dim 128 without a causal
// mask (fewer tiles, so fewer barriers and row reductions per key). Q.K^T only.
template <class Elem>
struct Wgmma<Elem, 176> {
  static __device__ __forceinline__ void ss(float (&d)[22][4], u64 desc_a, u64 desc_b, int scale_d) {
    if constexpr (Elem::kIsBf16) CF_WGMMA_SS(176, "bf16", CF_R88, CF_D88, 88, 89, 90);
    else CF_WGMMA_SS(176, "f16", CF_R88, CF_D88, 88, 89, 90);
  }
};

// tf32 (the Tf32 tag: float32 operands): m64nNk8, a k-step of 8 elements = 32 bytes.
// PTX has no transpose operand for tf32 (only 16-bit types may be transposed), so
// both shared-memory operands are K-major: V arrives as V^T (cupyflash/_vt.py).
// The tensor cores read the upper 19 bits of every fp32 input (the lower 13 are
// truncated, PTX ISA on wgmma .tf32); values rounded beforehand (round_tf32) lose nothing.
// A (registers, m64k8) per warp: a0 = (g, t), a1 = (g+8, t), a2 = (g, t+4),
// a3 = (g+8, t+4) (g = lane/4, t = lane%4; CUTLASS ALayout_64x8).
#define CF_WGMMA_TF32_SS(N, REGS, OPS, IA, IB, IS)                                                      \
  asm volatile("{\n" CF_SCALE_D(IS) "wgmma.mma_async.sync.aligned.m64n" #N "k8.f32.tf32.tf32 " REGS     \
               ", %" #IA ", %" #IB ", p, 1, 1;\n}\n"                                                    \
               : OPS                                                                                   \
               : "l"(desc_a), "l"(desc_b), "r"(scale_d))
#define CF_WGMMA_TF32_RS(N, REGS, OPS, A0, A1, A2, A3, IB, IS)                                          \
  asm volatile("{\n" CF_SCALE_D(IS) "wgmma.mma_async.sync.aligned.m64n" #N "k8.f32.tf32.tf32 " REGS     \
               ", {%" #A0 ", %" #A1 ", %" #A2 ", %" #A3 "}, %" #IB ", p, 1, 1;\n}\n"                    \
               : OPS                                                                                   \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(scale_d))

// Half a tf32 ulp added to a float's bits: the tensor cores' truncation of the
// lower 13 bits then completes a round to nearest (ties away from zero), one
// integer add where cvt.rna.tf32.f32 takes three instructions (its inf/NaN test
// included). Only for a register that a tf32 wgmma alone reads, and only for
// values below the largest finite float (the carry could reach inf): softmax
// probabilities in [0, 1] (0 becomes 0x1000, which truncates back to +0).
__device__ __forceinline__ u32 tf32_round_bias(float x) { return __float_as_uint(x) + 0x1000u; }

template <>
struct Wgmma<Tf32, 64> {
  static __device__ __forceinline__ void ss(float (&d)[8][4], u64 desc_a, u64 desc_b, int scale_d) {
    CF_WGMMA_TF32_SS(64, CF_R32, CF_D32, 32, 33, 34);
  }
  static __device__ __forceinline__ void rs(float (&d)[8][4], const u32 (&a)[4], u64 desc_b, int scale_d) {
    CF_WGMMA_TF32_RS(64, CF_R32, CF_D32, 32, 33, 34, 35, 36, 37);
  }
};

template <>
struct Wgmma<Tf32, 128> {
  static __device__ __forceinline__ void ss(float (&d)[16][4], u64 desc_a, u64 desc_b, int scale_d) {
    CF_WGMMA_TF32_SS(128, CF_R64, CF_D64, 64, 65, 66);
  }
  static __device__ __forceinline__ void rs(float (&d)[16][4], const u32 (&a)[4], u64 desc_b, int scale_d) {
    CF_WGMMA_TF32_RS(128, CF_R64, CF_D64, 64, 65, 66, 67, 68, 69);
  }
};

#undef CF_WGMMA_TF32_RS
#undef CF_WGMMA_TF32_SS
#undef CF_WGMMA_RS
#undef CF_WGMMA_SS
#undef CF_SCALE_D
#undef CF_R64
#undef CF_R88
#undef CF_D88
#undef CF_R40
#undef CF_D40
#undef CF_R32
#undef CF_D64
#undef CF_D32
#undef CF_D4

}  // namespace cupyflash
