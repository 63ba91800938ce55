"""Does TMA round float32 to tf32 when a tensor map says TFLOAT32? One question for
the device, asked through the tf32 kernel's accuracy: its Q and K are loaded with
CU_TENSOR_MAP_DATA_TYPE_FLOAT32 (bits unchanged, then truncated by the tensor
cores: ~1.1e-3 relative error on N(0, 1) data in the CPU model, ~4e-4 when q and k
are rounded to nearest first). This runs the same call with every float32 map
encoded as TFLOAT32 instead and prints both errors against the exact CUDA-core
kernel. If the TFLOAT32 error drops to ~4e-4, TMA rounds, and cupyflash/_tma.py
should map the tf32 kernel's q and k that way (V^T is rounded by its pre-pass).

    python bench/tf32_map_probe.py
"""

from __future__ import annotations

import cupy as cp

from cupyflash import _dispatch, _tma, api
from cupyflash._arrays import _cupy_buffer
from cupyflash._spec import simt_spec, wgmma_tf32_spec

TFLOAT32 = 11  # CU_TENSOR_MAP_DATA_TYPE_TFLOAT32 (cuda.h)


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
    original = _tma._DATA_TYPE["float32"]
    for label, code in (("FLOAT32 (shipped)", original), ("TFLOAT32", TFLOAT32)):
        _tma._DATA_TYPE["float32"] = code
        _tma.encode.cache_clear()
        out.fill(float("nan"))
        api._run(plan, problem, *bufs, _cupy_buffer(out), None, stream, 0)
        rel = float(cp.linalg.norm(out - exact) / cp.linalg.norm(exact))
        print(f"tf32 kernel, q/k maps {label:18s}: relative error {rel:.3e}", flush=True)
    _tma._DATA_TYPE["float32"] = original
    _tma.encode.cache_clear()


if __name__ == "__main__":
    main()
