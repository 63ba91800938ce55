"""The Python mirror of FlashParams agrees with the C struct, checked by the
compiler itself: NVRTC compiles static_asserts on every field's offset."""

from __future__ import annotations

import pytest

from cupyflash._compile import source_dir
from cupyflash._params import PARAMS_DTYPE, PARAMS_FIELDS, make_params


def test_make_params_requires_every_field():
    with pytest.raises(TypeError, match="missing fields"):
        make_params(q=0)


def test_offsets_match_header():
    nvrtc = pytest.importorskip("cuda.bindings.nvrtc", reason="cuda-bindings (test extra) not installed")
    asserts = "\n".join(
        f"static_assert(__builtin_offsetof(cupyflash::FlashParams, {name}) == {PARAMS_DTYPE.fields[name][1]}, "
        f"\"offset of {name}\");" for name, _ in PARAMS_FIELDS)
    src = (f'#include "params.h"\nstatic_assert(sizeof(cupyflash::FlashParams) == {PARAMS_DTYPE.itemsize}, '
           f'"size");\n{asserts}\n').encode()
    err, prog = nvrtc.nvrtcCreateProgram(src, b"params_check.cu", 0, [], [])
    opts = [f"-I{source_dir()}".encode(), b"-arch=sm_80", b"-std=c++17"]
    (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
    _, n = nvrtc.nvrtcGetProgramLogSize(prog)
    log = b" " * n
    nvrtc.nvrtcGetProgramLog(prog, log)
    nvrtc.nvrtcDestroyProgram(prog)
    if b'"__builtin_offsetof" is undefined' in log:
        pytest.skip("this NVRTC has no __builtin_offsetof; test_gpu_attention.py checks the offsets on the GPU")
    assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS, log.decode()


def test_walk_group_pairs():
    from cupyflash._params import L2_WORKING_SET_BYTES, walk_group_pairs

    # d128 bf16 at seqlen 1024: 512 KB of K+V per head, so 32 heads fit in 16 MB.
    assert walk_group_pairs(1024, 128, 128, 1, 256) == L2_WORKING_SET_BYTES // (1024 * 256 * 2) == 32
    assert walk_group_pairs(1024, 128, 128, 1, 8) == 8        # never more pairs than exist
    assert walk_group_pairs(1 << 20, 256, 256, 1, 64) == 1    # one head alone overflows: still 1
    assert walk_group_pairs(1024, 128, 128, 4, 256) == 128    # 4 query heads share one KV head
    assert walk_group_pairs(0, 64, 64, 1, 3) == 3             # no keys: every pair fits
