// The power-of-two shift of one float32 tile, from its finite abs-max: shared by
// the pre-pass (split_fp32.cu) and the attention kernel's in-kernel conversion
// (convert_tile.h), so both compute it from one definition. Mirrored by
// shift_exponent in cupyflash/_split.py.
#pragma once
#include "common.h"
#include "ptx.h"
#include "tile_shifts.h"

namespace cupyflash {

constexpr u32 kF32AbsMask = 0x7fffffffu;
constexpr u32 kF32InfBits = 0x7f800000u;  // |x| bits below this: x is finite
constexpr u32 kF32MantMask = (1u << kF32MantBits) - 1;
constexpr int kF32SubnormalExp = -149;  // a subnormal float is mantissa * 2^-149
// ceil(log2(0)) as the reference formula has it: log2 of 2^-1000, its stand-in for 0.
constexpr int kZeroCeilLog2 = -1000;
// The shift's parameters as compile-time constants, for the attention kernel's
// in-kernel conversion (the pre-pass gets the same values at run time in
// SplitParams). Mirrored by TARGET_EXP and MAX_SHIFT in cupyflash/_split.py,
// which checks that every factor built from them stays a normal float.
constexpr int kSplitTargetExp = 14;
constexpr int kMaxShiftQ = 63;
constexpr int kMaxShiftK = 63;
constexpr int kMaxShiftV = 120;

// ---- the factor formula (mirrored by shift_exponent in cupyflash/_split.py) ----

// ceil(log2(m)) for a finite m > 0, exactly: integer work on the bits, so it
// agrees with the reference's double-precision ceil(log2(m)) for every float.
__device__ __forceinline__ int ceil_log2_f32(u32 bits) {
  const int biased = static_cast<int>(bits >> kF32MantBits);
  const u32 mant = bits & kF32MantMask;
  if (biased == 0) {  // subnormal: ceil(log2(mant)) + kF32SubnormalExp, mant >= 1
    return (32 - __clz(static_cast<int>(mant - 1))) + kF32SubnormalExp;
  }
  return biased - kF32ExpBias + (mant != 0 ? 1 : 0);  // 1.f * 2^x: a power of two only when f = 0
}

// The shift e of one tile from its finite abs-max (float bits): max |x * 2^e| in
// (2^(target-1), 2^target], clipped to +-max_shift; an all-zero tile takes +max_shift.
__device__ __forceinline__ int split_shift(u32 max_bits, int target, int max_shift) {
  const int e = target - (max_bits == 0 ? kZeroCeilLog2 : ceil_log2_f32(max_bits));
  return min(max(e, -max_shift), max_shift);
}

// One staged value's contribution to the abs-max: |x| as float bits if x is
// finite, else 0 (NaN and inf stay out of the factor).
__device__ __forceinline__ u32 finite_abs_bits(float x) {
  const u32 a = __float_as_uint(x) & kF32AbsMask;
  return a < kF32InfBits ? a : 0u;
}

// x * s of a pair of elements as fp16 hi and lo (x * s = hi + lo + O(2^-22)),
// shared by the pre-pass and the in-kernel conversion. __fmul_rn and
// __fsub_rn are never contracted: an FMA would compute x * s - hi unrounded,
// which differs from the reference's rounded y - hi when x * s is subnormal.
__device__ __forceinline__ void split_pair(float a, float b, float s, u32& hi, u32& lo) {
  const float ya = __fmul_rn(a, s), yb = __fmul_rn(b, s);
  hi = pack2<Half>(ya, yb);  // cvt.rn: round to nearest even
  const float2 h = unpack_half2(hi);
  lo = pack2<Half>(__fsub_rn(ya, h.x), __fsub_rn(yb, h.y));
}

}  // namespace cupyflash
