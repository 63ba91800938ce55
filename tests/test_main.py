"""``python -m cupyflash``, the README's first command: on a GPU it checks a
problem against float64 and exits 0; without one it says so in one line, exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import GPU_SKIP_REASON


@pytest.mark.skipif(GPU_SKIP_REASON is None, reason="a GPU is present: the no-GPU message cannot be exercised here")
def test_without_a_gpu_one_line_and_exit_2():
    run = subprocess.run([sys.executable, "-m", "cupyflash", "--repeats", "1"], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.startswith("cupyflash: python -m cupyflash needs a CUDA GPU") and "Traceback" not in run.stderr


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["bf16", "fp32"])
def test_main_job_passes_its_check(dtype, capsys):
    from cupyflash.__main__ import main

    assert main(["--dtype", dtype, "--batch", "1", "--heads", "4", "--seqlen", "512", "--repeats", "3"]) == 0
    assert "relative error vs float64 reference" in capsys.readouterr().out
