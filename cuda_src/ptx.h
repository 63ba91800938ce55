// Thin wrappers around the sm_80+ PTX we use: mma.sync (fp16/bf16 and f64), ldmatrix, cp.async,
// and float -> fp16/bf16 packing. Each wrapper is one instruction.
#pragma once
#include "common.h"

namespace cupyflash {

__device__ __forceinline__ u32 smem_addr(const void* p) {
  return static_cast<u32>(__cvta_generic_to_shared(p));
}

// threadIdx.x, blockIdx.x and gridDim.x read again (volatile: never merged with an
// earlier read), for a value the compiler would otherwise keep live, or spill, across a
// loop. Hazard: ptxas cannot tell that such a value is the same in every lane; a branch
// or loop bound on it needs warp_uniform (common.h), or the code after it is compiled as
// divergent (bench/notes/wgmma_tiles.md, "The split tail").
__device__ __forceinline__ int fresh_tid_x() {
  int v;
  asm volatile("mov.u32 %0, %%tid.x;\n" : "=r"(v));
  return v;
}
__device__ __forceinline__ int fresh_ctaid_x() {
  int v;
  asm volatile("mov.u32 %0, %%ctaid.x;\n" : "=r"(v));
  return v;
}
__device__ __forceinline__ int fresh_nctaid_x() {
  int v;
  asm volatile("mov.u32 %0, %%nctaid.x;\n" : "=r"(v));
  return v;
}

// One int read through the read-only path, and read again at every call (volatile):
// a walk-table word (block_order.h) that the compiler would otherwise keep live, or
// spill, across the item loop (the kv-once converters' 40 registers spilled 20 bytes).
__device__ __forceinline__ int ldg_fresh(const int* ptr) {
  int v;
  asm volatile("ld.global.nc.s32 %0, [%1];\n" : "=r"(v) : "l"(ptr));
  return v;
}

// ---- cp.async: 16-byte global -> shared copies that bypass the registers ----
// src_bytes = 0 zero-fills the 16 destination bytes without reading global
// memory: that is how rows past seqlen and columns past head_dim become zeros.
__device__ __forceinline__ void cp_async_16(u32 dst, const void* src, bool valid) {
  int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending)); }

// 4-byte global -> shared copy (cp.async.cg takes 16 bytes only): the float32
// pre-pass's scalar kernel, for inputs that cannot be read as float4.
__device__ __forceinline__ void cp_async_4(u32 dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(dst), "l"(src));
}

// 8-byte global -> shared copy; src_bytes = 0 zero-fills (rows past seqlen,
// columns past head_dim). 8 bytes needs only the element alignment every
// float64 array has, so no operand is ever staged.
__device__ __forceinline__ void cp_async_8(u32 dst, const void* src, bool valid) {
  const int src_bytes = valid ? 8 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}

// ---- ldmatrix: four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of matrix i ----
__device__ __forceinline__ void ldmatrix_x4(u32 (&r)[4], u32 addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(u32 (&r)[4], u32 addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

// ---- mma.sync m16n8k16, fp32 accumulate ----
// Fragment layout (g = lane / 4, t = lane % 4):
//   A (16x16, row-major): a0 = (g, 2t..2t+1)  a1 = (g+8, 2t..)  a2 = (g, 2t+8..)  a3 = (g+8, 2t+8..)
//   B (16x8,  col-major): b0 = (k 2t..2t+1, n g)   b1 = (k 2t+8.., n g)
//   C (16x8, fp32):       c0,c1 = (g, 2t..2t+1)    c2,c3 = (g+8, 2t..2t+1)
template <class Elem>
__device__ __forceinline__ void mma_16816(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1) {
  if constexpr (Elem::kIsBf16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// ---- mma.sync m8n8k4 f64 (DMMA, the fp64 tensor cores): D = A.B + D ----
// Fragments (g = lane / 4, t = lane % 4): a = (g, t); b = (k t, n g); c0, c1 = (g, 2t), (g, 2t+1).
__device__ __forceinline__ void dmma_884(double (&c)[2], double a, double b) {
  asm volatile("mma.sync.aligned.m8n8k4.row.col.f64.f64.f64.f64 {%0,%1}, {%2}, {%3}, {%0,%1};\n"
               : "+d"(c[0]), "+d"(c[1]) : "d"(a), "d"(b));
}

// Round two floats to the element type and pack them: lo in bits 0..15, hi in 16..31
// (cvt puts its first source in the upper half).
template <class Elem>
__device__ __forceinline__ u32 pack2(float lo, float hi) {
  u32 r;
  if constexpr (Elem::kIsBf16) {
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  } else {
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  }
  return r;
}

// The inverse of pack2<Half>: two fp16 values (lo in bits 0..15) as floats.
__device__ __forceinline__ float2 unpack_half2(u32 v) {
  float lo, hi;
  asm("{\n.reg .f16 l, h;\nmov.b32 {l, h}, %2;\ncvt.f32.f16 %0, l;\ncvt.f32.f16 %1, h;\n}\n"
      : "=f"(lo), "=f"(hi) : "r"(v));
  return make_float2(lo, hi);
}

// A float rounded to tf32 (10 mantissa bits), to nearest with ties away from zero:
// the bits of a float whose lower 13 mantissa bits are zero, which the tf32
// tensor cores then read exactly (they truncate whatever is there otherwise).
// NaN and inf stay NaN and inf; sm_80+.
__device__ __forceinline__ u32 round_tf32(float x) {
  u32 r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}

// 2^x with flush-to-zero: one MUFU.EX2. exp2f() without fast-math adds a
// denormal range check and two FMULs around it. Results below 2^-126 only ever
// weight a score against a row maximum, so flushing them to 0 changes nothing
// visible at fp16/bf16 precision. Not used by the exact fp32/fp64 kernel.
__device__ __forceinline__ float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

}  // namespace cupyflash
