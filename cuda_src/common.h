// Basic types and constants shared by every kernel. NVRTC compiles these sources
// with no system or CUDA toolkit headers at all: fp16/bf16 values are handled as
// raw 16-bit patterns and converted with our own PTX (see ptx.h), so the exact
// same source compiles offline (CI) and at run time (CuPy RawModule).
#pragma once

namespace cupyflash {

typedef unsigned short u16;
typedef unsigned int u32;
typedef long long i64;
typedef unsigned long long u64;

// log2(e): scores are scaled by softmax_scale * kLog2e once, so every
// exponential is a single exp2 (one FFMA feeding MUFU.EX2).
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr double kLog2eF64 = 1.4426950408889634;
constexpr double kLn2F64 = 0.6931471805599453;

constexpr int kWarpSize = 32;

// x as lane 0 has it, which ptxas then knows is the same in every lane (a value it
// cannot prove warp-uniform makes every branch on it, and what follows, divergent).
__device__ __forceinline__ int warp_uniform(int x) { return __shfl_sync(0xffffffffu, x, 0); }

// Element tags for the tensor-core path. The tag selects the mma instruction
// and the float -> 16-bit conversion; storage is a 16-bit pattern, except for
// Tf32 (Hopper only): float32 storage that the tf32 wgmma reads directly.
//   kBytes:   bytes per stored element
//   kBoxCols: elements in one 128-byte swizzled row (a TMA box row)
//   kK:       the wgmma k-step in elements; kK * kBytes = 32 bytes for every tag,
//             so a k-step advances a shared-memory descriptor by the same bytes
struct Half {
  static constexpr bool kIsBf16 = false;
  static constexpr bool kIsTf32 = false;
  static constexpr int kBytes = 2, kBoxCols = 64, kK = 16;
};
struct BFloat16 {
  static constexpr bool kIsBf16 = true;
  static constexpr bool kIsTf32 = false;
  static constexpr int kBytes = 2, kBoxCols = 64, kK = 16;
};
struct Tf32 {
  static constexpr bool kIsBf16 = false;
  static constexpr bool kIsTf32 = true;
  static constexpr int kBytes = 4, kBoxCols = 32, kK = 8;
};

__host__ __device__ constexpr int ceil_div(int a, int b) { return (a + b - 1) / b; }

// std::conditional without the standard library (NVRTC compiles with no headers).
template <bool kCond, class T, class F>
struct Conditional { using type = T; };
template <class T, class F>
struct Conditional<false, T, F> { using type = F; };

__device__ __forceinline__ float neg_inf_f32() { return __int_as_float(0xff800000); }
__device__ __forceinline__ double neg_inf_f64() { return __longlong_as_double(0xfff0000000000000ll); }
// -inf of the score type T (float or double), for code written once for both.
__device__ __forceinline__ float neg_inf_of(float) { return neg_inf_f32(); }
__device__ __forceinline__ double neg_inf_of(double) { return neg_inf_f64(); }

}  // namespace cupyflash
