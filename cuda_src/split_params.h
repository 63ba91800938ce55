// The parameter struct of the float32 pre-pass kernels (split_fp32.cu), passed by
// value (__grid_constant__). Mirrored in cupyflash/_split.py (SPLIT_TENSOR_FIELDS,
// SPLIT_PARAMS_FIELDS), which packs it; tests/test_split.py compiles offsetof
// checks against this header. Laid out with no padding (pointers and i64 first,
// then ints in groups of two) so the host packs it with one struct.pack.
#pragma once
#include "common.h"

namespace cupyflash {

// One operand (q, k or v). Rows are (batch, seq, head) triples in that order.
struct SplitTensor {
  const float* x;       // input, addressed through the strides below; last axis contiguous
  u16* hi;              // fp16 bits, contiguous (batch, seqlen, heads, padded_dim)
  u16* lo;              // the same layout; unused (may be null) by the hi-only kernel
  i64 batch_stride, row_stride, head_stride;  // of x, in elements (any sign; 0 = broadcast)
  i64 rows;             // batch * seqlen * heads; 0: nothing to read or write
  int seqlen, heads;
  int dim;              // elements per row of x
  int padded_dim;       // elements per row of hi/lo: dim rounded up to a multiple of 8 (zeros after dim)
};

struct SplitParams {
  SplitTensor t[3];     // q, k, v (blockIdx.y picks one)
  u32* maxima;          // finite abs-max of each tensor as float bits; zeroed before the abs-max kernel
  float* scales;        // out: {2^(-eq-ek), 2^(-ev)}, the kernel's score and output multipliers
  int target_exp;       // max |x * 2^e| lands in (2^(target_exp-1), 2^target_exp]
  int max_shift[3];     // |e| bounds for q, k, v (the host checks they keep every 2^e normal)
};

}  // namespace cupyflash
