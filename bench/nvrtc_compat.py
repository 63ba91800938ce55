"""Compile every shipped variant and tuning candidate with another libnvrtc (for example 13.0, the one
CuPy uses on the device, while pip gives CI a newer one) through ctypes, and print
each variant's resource report. Spills and wgmma serialisation differ between
NVRTC versions, so check the device's version before spending device time.

    pip download --no-deps "nvidia-cuda-nvrtc==13.0.*" -d /tmp/w && unzip -q /tmp/w/*.whl -d /tmp/w
    LD_LIBRARY_PATH=/tmp/w/nvidia/cu13/lib python bench/nvrtc_compat.py /tmp/w/nvidia/cu13/lib/libnvrtc.so.13 [REGEX [ARCH]]

REGEX keeps the variants whose names it matches (re.search); ARCH one of sm_80, sm_90a.
LIB "cupy" takes the libnvrtc CuPy loads, the one that compiles at run time (on the
device the whole GPU suite once found spills that this check under pip's NVRTC of the
same version did not; bench/notes/wgmma_tiles.md, "The split tail"):

    python bench/nvrtc_compat.py cupy wgmma sm_90a
"""

from __future__ import annotations

import ctypes
import re
import sys

sys.path.insert(0, ".")

from cupyflash._compile import COMPILE_OPTIONS, CUPY_RUNTIME_OPTIONS, kernel_source  # noqa: E402
from cupyflash._offline import _parse_report, specs_by_unit  # noqa: E402
from cupyflash._spec import candidate_specs  # noqa: E402


def compile_group(lib, specs, arch):
    prog = ctypes.c_void_p()
    src = kernel_source(specs[0].entry_file).encode()
    if lib.nvrtcCreateProgram(ctypes.byref(prog), src, b"cupyflash.cu", 0, None, None):
        raise RuntimeError("nvrtcCreateProgram failed")
    for spec in specs:
        lib.nvrtcAddNameExpression(prog, spec.name_expression.encode())
    opts = [o.encode() for o in COMPILE_OPTIONS + CUPY_RUNTIME_OPTIONS] + [f"-arch={arch}".encode(), b"-Xptxas=-v"]
    rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    if rc:
        raise RuntimeError(f"NVRTC error {rc} for {arch}:\n{log.value.decode()[-3000:]}")
    lowered = {}
    for spec in specs:
        name = ctypes.c_char_p()
        lib.nvrtcGetLoweredName(prog, spec.name_expression.encode(), ctypes.byref(name))
        lowered[name.value.decode()] = spec.variant_name
    return _parse_report(log.value.decode(), lowered, arch)


def library_path(arg: str) -> str:
    """``arg``, or for "cupy" the libnvrtc file CuPy has loaded (Linux)."""
    if arg != "cupy":
        return arg
    from cupy_backends.cuda.libs import nvrtc

    print("CuPy's NVRTC", nvrtc.getVersion())  # loads the library
    with open("/proc/self/maps") as maps:
        (path,) = {line.split()[-1] for line in maps if "/libnvrtc.so" in line}
    print("from", path)
    return path


def main() -> int:
    lib = ctypes.CDLL(library_path(sys.argv[1]))
    keep = re.compile(sys.argv[2] if len(sys.argv) > 2 else "")
    bad = 0
    for arch in sys.argv[3:4] or ("sm_80", "sm_90a"):
        for group in specs_by_unit(arch, [s for s in candidate_specs() if keep.search(s.variant_name)]):
            # one program per variant, as at run time (a shared program changes ptxas' spills)
            for r in (r for spec in group for r in compile_group(lib, [spec], arch)):
                flag = "SPILL" if r.spills else ("SERIALISED" if r.wgmma_serialized else "")
                bad += bool(flag)
                print(f"{arch:7s} {r.variant:48s} {r.registers:4d} regs {r.spill_stores:4d} B spilled {flag}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
