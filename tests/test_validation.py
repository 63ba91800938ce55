"""Bad input raises a specific exception naming the argument; runs without a GPU
(validation happens before any GPU access), via explain(arch=90)."""

from __future__ import annotations

import numpy as np
import pytest

import cupyflash
from cupyflash import ArgumentError, DeviceError, DTypeError, LayoutError, ShapeError

from helpers import expected_grid, qkv


@pytest.fixture
def good():
    return qkv(np.random.default_rng(1), 2, 33, 47, 8, 2, 64, 64, "float16")


def check_valid_still_works(q, k, v):
    plan = cupyflash.explain(q, k, v, arch=90)
    assert plan.spec.family == "wgmma" and plan.grid == expected_grid(plan, 33, 8, 2)


BAD_CASES = [
    # (description, mutate(q, k, v) -> (q, k, v, kwargs), exception, message regex)
    ("q 3-D", lambda q, k, v: (q[0], k, v, {}), ShapeError, r"q must be 4-D"),
    ("k 5-D", lambda q, k, v: (q, k[None], v, {}), ShapeError, r"k must be 4-D"),
    ("batch mismatch", lambda q, k, v: (q, k[:1], v[:1], {}), ShapeError, r"batch sizes differ"),
    ("head_dim q/k", lambda q, k, v: (q, k[..., :32], v, {}), ShapeError, r"same head_dim"),
    ("seqlen k/v", lambda q, k, v: (q, k, v[:, :5], {}), ShapeError, r"k and v must have the same seqlen"),
    ("heads k/v", lambda q, k, v: (q, k, v[:, :, :1], {}), ShapeError, r"same number of heads"),
    ("heads not multiple", lambda q, k, v: (q[:, :, :7], k, v, {}), ShapeError, r"multiple of heads"),
    ("mixed dtypes", lambda q, k, v: (q, k.astype(np.float32), v, {}), DTypeError, r"same dtype"),
    ("int dtype", lambda q, k, v: (q.astype(np.int32), k.astype(np.int32), v.astype(np.int32), {}),
     DTypeError, r"q has dtype int32; supported dtypes"),
    ("head_dim > 256", lambda q, k, v: (np.zeros(q.shape[:3] + (264,), np.float16),
                                        np.zeros(k.shape[:3] + (264,), np.float16), v, {}),
     ShapeError, r"head_dim of q/k must be between 1 and 256"),
    ("head_dim_v > 256", lambda q, k, v: (q, k, np.zeros(v.shape[:3] + (300,), np.float16), {}),
     ShapeError, r"head_dim of v must be between 1 and 256"),
    ("strided last axis", lambda q, k, v: (np.concatenate([q, q], axis=3)[..., ::2], k, v, {}),
     LayoutError, r"q: the last axis"),
    ("NaN scale", lambda q, k, v: (q, k, v, {"softmax_scale": float("nan")}), ArgumentError, r"softmax_scale"),
    ("negative scale", lambda q, k, v: (q, k, v, {"softmax_scale": -1.0}), ArgumentError, r"softmax_scale"),
    ("string scale", lambda q, k, v: (q, k, v, {"softmax_scale": "0.1"}), ArgumentError, r"softmax_scale"),
    ("bad layout", lambda q, k, v: (q, k, v, {"layout": "sbhd"}), ArgumentError, r"layout must be one of"),
    ("bad alignment", lambda q, k, v: (q, k, v, {"causal_alignment": "center"}), ArgumentError,
     r"causal_alignment must be one of"),
    ("causal not bool", lambda q, k, v: (q, k, v, {"causal": 1}), ArgumentError, r"causal must be True"),
    ("bad backend", lambda q, k, v: (q, k, v, {"backend": "cudnn"}), ArgumentError, r"backend must be one of"),
    ("simt for fp16", lambda q, k, v: (q, k, v, {"backend": "simt"}), ArgumentError, r"backend='simt' serves"),
    ("not an array", lambda q, k, v: ([[1.0]], k, v, {}), DTypeError, r"q: expected a NumPy, CuPy"),
]


@pytest.mark.parametrize("case", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_raises_named_error(good, case):
    _, mutate, exc, msg = case
    q, k, v, kwargs = mutate(*good)
    with pytest.raises(exc, match=msg):
        cupyflash.explain(q, k, v, arch=90, **kwargs)
    check_valid_still_works(*good)


def test_fp8_rejected(good):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    q, k, v = (x.astype(ml_dtypes.float8_e4m3fn) for x in good)
    with pytest.raises(DTypeError, match=r"float8_e4m3fn; supported dtypes: float16, bfloat16, float32"):
        cupyflash.explain(q, k, v, arch=90)


def test_old_gpu_rejected_for_fp16(good):
    with pytest.raises(DeviceError, match=r"compute capability 8.0 or newer"):
        cupyflash.explain(*good, arch=75)


def test_mma_backend_rejects_fp32(good):
    q, k, v = (x.astype(np.float32) for x in good)
    with pytest.raises(ArgumentError, match=r"backend='mma' serves float16, bfloat16"):
        cupyflash.explain(q, k, v, arch=90, backend="mma")


def test_errors_are_standard_exception_types():
    assert issubclass(ShapeError, ValueError) and issubclass(DTypeError, TypeError)
    assert issubclass(cupyflash.NoGPUError, RuntimeError)
    for e in (ShapeError, DTypeError, LayoutError, DeviceError, ArgumentError):
        assert issubclass(e, cupyflash.CupyflashError)


def test_no_gpu_gives_clear_error(good):
    from conftest import GPU_SKIP_REASON

    if GPU_SKIP_REASON is None:
        pytest.skip("a GPU is present: the no-GPU error path cannot be exercised here")
    with pytest.raises(cupyflash.NoGPUError, match=r"reference.attention"):
        cupyflash.attention(*good)


def test_import_does_not_import_frameworks():
    import subprocess
    import sys

    code = "import sys, cupyflash; print(sorted(m for m in ('torch', 'jax', 'cupy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
