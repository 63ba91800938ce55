"""TMA tensor maps for the Hopper kernel (cuda_src/tma_params.h), encoded by the
CUDA driver's ``cuTensorMapEncodeTiled`` through ctypes: the driver library is
present wherever a kernel can run, so this needs no extra package.

A map views one operand as 4-D (head_dim, seqlen, heads, batch), innermost
first, with the operand's own strides; the box is (one 128-byte row: 64 16-bit or
32 float32 columns, ``rows``, 1, 1) with the 128-byte swizzle that the kernel's
wgmma descriptors assume. Elements outside the tensor are filled with zeros,
which is how the kernel pads rows past seqlen and columns past head_dim. The tf32
kernel's V^T (cupyflash._vt) is mapped the same way with keys as the innermost
axis and the head dim as the rows.
"""

from __future__ import annotations

import ctypes
import functools

from .errors import DeviceError

TMA_DESC_BYTES = 128  # sizeof(CUtensorMap); mirrors kTmaDescBytes
TMA_BOX_BYTES = 128  # one 128-byte swizzle row: kTmaBoxCols 16-bit or Tf32::kBoxCols float32 columns
_DESC_ALIGN = 64

# CUtensorMap* enum values (cuda.h; checked against cuda-bindings in tests/test_vt.py).
# "tfloat32" maps float32 data as TFLOAT32: TMA rounds each value to tf32 on the way
# to shared memory (measured: bench/tf32_map_probe.py, 1.07e-3 -> 4.1e-4 relative
# error on N(0, 1) at d128 s1024, H100), where FLOAT32 left the 13 low bits for the
# tf32 wgmma to truncate: the tf32 kernel's q, k (and V^T, already rounded). "float32"
# keeps every bit: the kernels that convert float32 operands themselves
# (cuda_src/wgmma_convert.h) round them as the pre-pass does.
_DATA_TYPE = {"float16": 6, "bfloat16": 9, "float32": 7, "tfloat32": 11}
_ELEM_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "tfloat32": 4}
_INTERLEAVE_NONE = 0
_SWIZZLE_128B = 3
_L2_PROMOTION_256B = 3
_OOB_FILL_ZEROS = 0
_CUDA_SUCCESS = 0
_STRIDE_ALIGN_BYTES = 16  # TMA strides are multiples of 16 bytes


@functools.cache
def _encode_fn():
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError as exc:
        raise DeviceError(f"the CUDA driver library libcuda.so.1 cannot be loaded ({exc}); "
                          "the Hopper kernel needs it to build TMA tensor maps") from exc
    fn = lib.cuTensorMapEncodeTiled
    u64p = ctypes.POINTER(ctypes.c_uint64)
    u32p = ctypes.POINTER(ctypes.c_uint32)
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_void_p, u64p, u64p, u32p, u32p,
                   ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def box_cols(dtype: str) -> int:
    """Columns of one 128-byte box row: 64 (16-bit) or 32 (float32, tfloat32)."""
    return TMA_BOX_BYTES // _ELEM_BYTES[dtype]


@functools.lru_cache(maxsize=256)
def encode(dtype: str, ptr: int, head_dim: int, seqlen: int, heads: int, batch: int,
           strides: tuple[int, int, int], box_rows: int) -> bytes:
    """The 128-byte CUtensorMap for one operand.

    ``strides`` are (batch, row, head) in elements, as in FlashParams. The map
    depends only on these arguments, so it is cached: a pipeline that calls
    with the same buffers pays for the encoding once.
    """
    batch_stride, row_stride, head_stride = strides
    elem_bytes = _ELEM_BYTES[dtype]
    align = _STRIDE_ALIGN_BYTES // elem_bytes
    dims = (ctypes.c_uint64 * 4)(head_dim, seqlen, heads, batch)
    # Strides of dims 1..3 in bytes (dim 0 is contiguous by definition). A
    # dimension of size 1 is only ever read at coordinate 0, so its stride may be
    # anything the caller's array had (0, negative): give TMA a legal one, the
    # tensor's whole extent. Larger dimensions with such strides were staged.
    extent = max([head_dim] + [n * abs(st) for n, st in ((seqlen, row_stride), (heads, head_stride),
                                                          (batch, batch_stride))])
    extent += (-extent) % align
    legal = [st if n > 1 else (st if st > 0 and st % align == 0 else extent)
             for n, st in ((seqlen, row_stride), (heads, head_stride), (batch, batch_stride))]
    gstrides = (ctypes.c_uint64 * 3)(*(st * elem_bytes for st in legal))
    box = (ctypes.c_uint32 * 4)(box_cols(dtype), box_rows, 1, 1)
    elem_strides = (ctypes.c_uint32 * 4)(1, 1, 1, 1)
    raw = ctypes.create_string_buffer(TMA_DESC_BYTES + _DESC_ALIGN)
    addr = (ctypes.addressof(raw) + _DESC_ALIGN - 1) // _DESC_ALIGN * _DESC_ALIGN
    status = _encode_fn()(addr, _DATA_TYPE[dtype], 4, ptr, dims, gstrides, box, elem_strides,
                          _INTERLEAVE_NONE, _SWIZZLE_128B, _L2_PROMOTION_256B, _OOB_FILL_ZEROS)
    if status != _CUDA_SUCCESS:
        raise DeviceError(f"cuTensorMapEncodeTiled failed with CUresult {status} for a {dtype} tensor at "
                          f"0x{ptr:x}, dims {tuple(dims)}, byte strides {tuple(gstrides)}, box {tuple(box)}")
    return ctypes.string_at(addr, TMA_DESC_BYTES)
