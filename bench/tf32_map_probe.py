"""Does TMA round float32 to tf32 when a tensor map says TFLOAT32? Asked through the
tf32 kernel's accuracy against the exact CUDA-core kernel (N(0, 1), d128 s1024): the
same call with q and k mapped as TFLOAT32 (shipped, cupyflash/_tma.py) and as FLOAT32
(bits unchanged, the 13 low mantissa bits then truncated by the tensor cores). H100
(CUDA 13.0 driver): FLOAT32 1.071e-03, TFLOAT32 4.086e-04: TMA rounds, so the shipped
maps are TFLOAT32 (tests/test_gpu_tf32.py::test_tf32_error_on_normal_data keeps the
rounding's error). Kept to re-check another driver or GPU.

    python bench/tf32_map_probe.py
"""

from __future__ import annotations

import cupy as cp

from cupyflash import _dispatch, _tma, api
from cupyflash._arrays import _cupy_buffer
from cupyflash._spec import simt_spec, wgmma_tf32_spec

FLOAT32 = 7  # CU_TENSOR_MAP_DATA_TYPE_FLOAT32 (cuda.h); the shipped TFLOAT32 is 11


def main():
    b, s, h, d = 4, 1024, 8, 128
    rs = cp.random.RandomState(0)
    q, k, v = (rs.standard_normal((b, s, h, d), dtype=cp.float32) for _ in range(3))
    out, exact = cp.empty_like(q), cp.empty_like(q)
    bufs = [_cupy_buffer(x) for x in (q, k, v)]
    _, problem = api._validate(q, k, v, False, "bottom_right", None, "bshd")
    stream = cp.cuda.get_current_stream()
    api._run(_dispatch.plan_for_spec(problem, simt_spec("float32", d), 90), problem, *bufs, _cupy_buffer(exact), None,
             stream, 0)
    plan = _dispatch.plan_for_spec(problem, wgmma_tf32_spec(d), 90)
    original = _tma._DATA_TYPE["tfloat32"]
    for label, code in (("TFLOAT32 (shipped)", original), ("FLOAT32", FLOAT32)):
        _tma._DATA_TYPE["tfloat32"] = code
        _tma.encode.cache_clear()
        out.fill(float("nan"))
        api._run(plan, problem, *bufs, _cupy_buffer(out), None, stream, 0)
        rel = float(cp.linalg.norm(out - exact) / cp.linalg.norm(exact))
        print(f"tf32 kernel, q/k maps {label:18s}: relative error {rel:.3e}", flush=True)
    _tma._DATA_TYPE["tfloat32"] = original
    _tma.encode.cache_clear()


if __name__ == "__main__":
    main()
