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
