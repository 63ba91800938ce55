"""Kernel source, compilation and the compile cache.

Source. ``kernel_source()`` inlines every ``#include "..."`` of cuda_src/ into
one translation unit. CuPy's disk cache keys on the source string, the options
and the NVRTC version; since the string now contains every header, an edited
header can never be served from a stale cache entry (CuPy alone would miss it).
The same string is what the offline compile (cupyflash._offline) checks in CI.

Lifecycle of a variant: looked up in this process's table; otherwise built
under a lock (one thread compiles, the others wait and reuse it) through
``cupy.RawModule``, which loads the cubin from CuPy's disk cache
(``CUPY_CACHE_DIR``, written by atomic rename, so concurrent processes are safe)
or compiles it with NVRTC and stores it there.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path

from ._spec import KernelSpec
from .errors import CompileError, CompileInTimedRegionError

ENTRY_FILE = "flash_fwd.cu"
# No fast-math: fp32/fp64 results must be exact to their precision.
COMPILE_OPTIONS: tuple[str, ...] = ("-std=c++17",)
# What cupy.RawModule appends to them at run time (CuPy 14, cupy/cuda/compiler.py), so
# that the offline compile (cupyflash._offline) reports on the code that runs: -ftz=true
# flushes float32 denormals (results below 1.2e-38) to zero, which every exponential
# here already does (exp2_ftz) and which leaves float64 alone; the other makes
# unannotated functions device functions. (It also adds --pch, which only caches parsed
# headers.)
CUPY_RUNTIME_OPTIONS: tuple[str, ...] = ("-ftz=true", "--device-as-default-execution-space")

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$')


def source_dir() -> Path:
    """cuda_src/: inside the installed package, or beside it in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "cuda_src", here.parent / "cuda_src"):
        if (candidate / ENTRY_FILE).is_file():
            return candidate
    raise FileNotFoundError(f"cupyflash: cannot find cuda_src/{ENTRY_FILE} next to {here}")


def _inline(path: Path, seen: set[str], out: list[str]) -> None:
    if path.name in seen:
        return
    seen.add(path.name)
    for line in path.read_text().splitlines():
        m = _INCLUDE.match(line)
        if m:
            _inline(path.parent / m.group(1), seen, out)
        elif line.strip() != "#pragma once":
            out.append(line)


def source_digest() -> str:
    """sha256 over every file in cuda_src/ (names and contents)."""
    h = hashlib.sha256()
    for f in sorted(source_dir().iterdir()):
        if f.is_file():
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def kernel_source(entry: str = ENTRY_FILE) -> str:
    """The single translation unit given to NVRTC for ``entry``, all headers inlined."""
    lines: list[str] = [f"// cupyflash cuda_src digest {source_digest()}"]
    _inline(source_dir() / entry, set(), lines)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- run-time cache
_lock = threading.Lock()
_functions: dict[tuple, object] = {}  # (spec, device) or (entry, name, options, device)
_compile_count = 0
_forbid_depth = 0


def compile_count() -> int:
    """How many kernel modules this process has compiled or loaded so far."""
    return _compile_count


@contextlib.contextmanager
def no_compile() -> Iterator[None]:
    """Inside this block, needing a kernel that is not yet loaded raises
    :class:`CompileInTimedRegionError` instead of compiling (for benchmarks)."""
    global _forbid_depth
    with _lock:
        _forbid_depth += 1
    try:
        yield
    finally:
        with _lock:
            _forbid_depth -= 1


def get_function(spec: KernelSpec, device_id: int):
    """The loaded kernel for ``spec`` on ``device_id``, compiling it if needed."""
    return _cached((spec, device_id), spec.variant_name, lambda: _build(spec))


def get_named_function(entry: str, name_expression: str, device_id: int, arch_options: tuple[str, ...] = (),
                       max_dynamic_smem: int = 0):
    """The loaded kernel ``name_expression`` of the translation unit ``entry`` (a
    cuda_src file with no KernelSpec: the float32 pre-passes) on ``device_id``.
    ``max_dynamic_smem`` > 0: the kernel is allowed that much dynamic shared memory
    once, when it is loaded (whatever a launch then asks for, up to it)."""
    key = (entry, name_expression, arch_options, max_dynamic_smem, device_id)
    return _cached(key, name_expression, lambda: _build_named(entry, name_expression, arch_options, max_dynamic_smem))


def _cached(key, label: str, build):
    fn = _functions.get(key)
    if fn is not None:
        return fn
    with _lock:
        fn = _functions.get(key)
        if fn is not None:
            return fn
        if _forbid_depth:
            raise CompileInTimedRegionError(
                f"kernel {label} is not loaded yet and compiling is forbidden here "
                "(cupyflash.no_compile); run the same call once before the timed region")
        fn = build()
        _functions[key] = fn
        return fn


def _load(entry: str, name_expression: str, arch_options: tuple[str, ...], label: str):
    global _compile_count
    import cupy
    from cupy.cuda.compiler import CompileException

    module = cupy.RawModule(code=kernel_source(entry), options=COMPILE_OPTIONS + arch_options,
                            name_expressions=[name_expression])
    try:
        fn = module.get_function(name_expression)
    except CompileException as exc:
        raise CompileError(f"NVRTC failed to compile {label} ({name_expression}):\n{exc.get_message()}") from exc
    _compile_count += 1
    return fn


def _build(spec: KernelSpec):
    fn = _load(spec.entry_file, spec.name_expression, spec.arch_options, spec.variant_name)
    if spec.smem_bytes > 48 * 1024:
        # Above 48 KB a kernel must opt in to dynamic shared memory.
        fn.max_dynamic_shared_size_bytes = spec.smem_bytes
    return fn


def _build_named(entry: str, name_expression: str, arch_options: tuple[str, ...], max_dynamic_smem: int):
    fn = _load(entry, name_expression, arch_options, name_expression)
    if max_dynamic_smem:
        fn.max_dynamic_shared_size_bytes = max_dynamic_smem
    return fn
