"""The environment a benchmark ran in, for the JSON record.

Every probe is optional: a missing package is recorded as None, never hidden.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import platform
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _version(dist: str):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _run(cmd, cwd=None):
    """stdout of ``cmd`` stripped, or None if it cannot run or fails."""
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                              timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def git_commit() -> str:
    """HEAD of the checkout this package runs from ("+dirty" with local edits);
    "unknown" for an installed copy, which may sit inside some other repo."""
    if not (REPO_ROOT / "cuda_src").is_dir() or not (REPO_ROOT / ".git").exists():
        return "unknown"
    commit = _run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT)
    if commit is None:
        return "unknown"
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no"],
                 cwd=REPO_ROOT)
    return commit + ("+dirty" if dirty else "")


def _torch_info() -> dict:
    if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
        return {"torch": None}
    import torch

    info = {"torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, sm_count=props.multi_processor_count,
                    compute_capability=f"{props.major}.{props.minor}",
                    gpu_memory_bytes=props.total_memory)
    return info


def _cupy_info() -> dict:
    # Only query cupy's runtime if it is already loaded (by cupyflash).
    cupy = sys.modules.get("cupy")
    if cupy is None:
        return {}
    runtime = cupy.cuda.runtime
    return {"cuda_driver_api": runtime.driverGetVersion(),
            "cuda_runtime_cupy": runtime.runtimeGetVersion()}


def _jax_info() -> dict:
    jax = sys.modules.get("jax")
    if jax is None:
        return {}
    try:
        return {"jax_devices": [str(d) for d in jax.devices("gpu")]}
    except RuntimeError:
        return {"jax_devices": []}


def collect() -> dict:
    """Versions, GPU and commit. Call after the run: it reports what was loaded."""
    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cupyflash_commit": git_commit(),
        "driver": _run(["nvidia-smi", "--query-gpu=driver_version",
                        "--format=csv,noheader"]),
        "versions": {dist: _version(dist) for dist in (
            "cupyflash", "numpy", "torch", "jax", "jaxlib",
            "jax-cuda13-plugin", "jax-cuda12-plugin", "nvidia-cudnn-cu13",
            "nvidia-cudnn-cu12", "cupy-cuda13x", "cupy-cuda12x", "cupy")},
    }
    env.update(_torch_info())
    env.update(_cupy_info())
    env.update(_jax_info())
    return env
