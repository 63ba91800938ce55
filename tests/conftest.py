"""Shared fixtures. GPU tests carry the ``gpu`` marker and skip, with the
reason printed (pytest -rs), on a machine without a usable CUDA GPU."""

from __future__ import annotations

import pytest


def _gpu_reason() -> str | None:
    try:
        import cupy
    except ImportError as exc:
        return f"CuPy is not installed ({exc})"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError as exc:
        return f"no usable CUDA GPU: {exc}"
    return None if n > 0 else "no CUDA GPU found"


GPU_SKIP_REASON = _gpu_reason()


def pytest_collection_modifyitems(config, items):
    if GPU_SKIP_REASON is None:
        return
    skip = pytest.mark.skip(reason=f"GPU test: {GPU_SKIP_REASON}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def fake_torch(monkeypatch):
    """The bench tests' fake torch with an exact clock: (clock, module)."""
    from bench_fakes import install_fake_torch

    return install_fake_torch(monkeypatch)
