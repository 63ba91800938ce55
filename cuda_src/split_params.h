// The parameter struct of the float32 pre-pass kernel (split_fp32.cu), passed by
// value (__grid_constant__). Mirrored in cupyflash/_split.py (SPLIT_TENSOR_FIELDS,
// SPLIT_PARAMS_FIELDS), which packs it; tests/test_split.py compiles offsetof
// checks against this header. Laid out with no padding (pointers and i64 first,
// then ints in groups of two) so the host packs it with one struct.pack.
#pragma once
#include "common.h"

namespace cupyflash {

// One operand (q, k or v). Rows are (batch, seq, head) triples in that order; a
// tile is tile_rows consecutive seq positions of one (batch, head), the attention
// kernel's query block (q) or key tile (k, v); the last tile of a head may be shorter.
struct SplitTensor {
  const float* x;       // input, addressed through the strides below; last axis contiguous
  u16* hi;              // fp16 bits, contiguous (batch, seqlen, heads, padded_dim)
  u16* lo;              // the same layout; unused (may be null) by the hi-only kernel
  int* shifts;          // out: tile i's shift e goes to shifts[i * shift_step] (tile_shifts.h has the layout)
  i64 batch_stride, row_stride, head_stride;  // of x, in elements (any sign; 0 = broadcast)
  int seqlen, heads;
  int dim;              // elements per row of x
  int padded_dim;       // elements per row of hi/lo: dim rounded up to a multiple of 8 (zeros after dim)
  int tile_rows;        // rows per tile: kBlockM (q) or kBlockN (k, v) of the attention kernel
  int seq_tiles;        // tiles per (batch, head): ceil(seqlen / tile_rows)
  int first_block;      // blockIdx.x of this tensor's tile 0; its tiles are batch * heads * seq_tiles blocks
  int shift_step;       // 1 (q) or 2 (k, v: e_k and e_v of a key tile sit side by side)
};

struct SplitParams {
  SplitTensor t[3];     // q, k, v (blockIdx.x picks one: see first_block)
  int target_exp;       // max |x * 2^e| of a tile lands in (2^(target_exp-1), 2^target_exp]
  int max_shift[3];     // |e| bounds for q, k, v (the host checks they keep every 2^e normal)
};

}  // namespace cupyflash
