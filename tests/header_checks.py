"""NVRTC compiles static_asserts against a header: how the tests prove that a
Python mirror of a C struct (FlashParams, SplitParams) has the C layout."""

from __future__ import annotations

import numpy as np
import pytest

from cupyflash._compile import source_dir


def layout_asserts(struct: str, dtype: np.dtype, names) -> list[str]:
    """static_asserts that ``struct`` has ``dtype``'s size and, for each of
    ``names``, its field offset."""
    checks = [f'static_assert(sizeof(cupyflash::{struct}) == {dtype.itemsize}, "size of {struct}");']
    checks += [f"static_assert(__builtin_offsetof(cupyflash::{struct}, {name}) == {dtype.fields[name][1]}, "
               f'"offset of {struct}::{name}");' for name in names]
    return checks


def compile_asserts(header: str, checks: list[str]) -> None:
    """Compile ``checks`` after ``#include header`` (cuda_src/) with NVRTC; a failed
    assert fails the test with NVRTC's log."""
    nvrtc = pytest.importorskip("cuda.bindings.nvrtc", reason="cuda-bindings (test extra) not installed")
    src = f'#include "{header}"\n' + "\n".join(checks) + "\n"
    err, prog = nvrtc.nvrtcCreateProgram(src.encode(), b"layout_check.cu", 0, [], [])
    opts = [f"-I{source_dir()}".encode(), b"-arch=sm_80", b"-std=c++17"]
    (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
    _, n = nvrtc.nvrtcGetProgramLogSize(prog)
    log = b" " * n
    nvrtc.nvrtcGetProgramLog(prog, log)
    nvrtc.nvrtcDestroyProgram(prog)
    if b'"__builtin_offsetof" is undefined' in log:
        pytest.skip("this NVRTC has no __builtin_offsetof; test_gpu_attention.py checks the offsets on the GPU")
    assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS, log.decode()
