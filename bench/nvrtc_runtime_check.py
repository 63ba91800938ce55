"""The spill report of the shipped kernel variants as CuPy's own NVRTC builds them:
the library that compiles them at run time, which may be another build than the one
cuda.bindings loads for tests/test_offline_compile.py (on the device, the whole GPU
suite once found 12-byte spills that the offline test run alone did not;
bench/notes/wgmma_tiles.md, "The split tail").

    python bench/nvrtc_runtime_check.py [REGEX]     # on the device; prints the library and each variant

Each variant is compiled alone with exactly the source and options of cupy.RawModule
(cupyflash._compile), plus -Xptxas=-v. Exits 1 if any variant spills.
"""

from __future__ import annotations

import re
import sys

sys.path.insert(0, ".")

from cupy_backends.cuda.libs import nvrtc  # noqa: E402

from cupyflash._compile import COMPILE_OPTIONS, kernel_source  # noqa: E402
from cupyflash._offline import _parse_report  # noqa: E402
from cupyflash._spec import shipped_specs  # noqa: E402


def loaded_nvrtc() -> list[str]:
    """The libnvrtc files mapped into this process (Linux)."""
    with open("/proc/self/maps") as maps:
        return sorted({line.split()[-1] for line in maps if "libnvrtc" in line})


def report(spec, arch: str):
    prog = nvrtc.createProgram(kernel_source(spec.entry_file), "cupyflash.cu", (), ())
    try:
        nvrtc.addNameExpression(prog, spec.name_expression)
        nvrtc.compileProgram(prog, [*COMPILE_OPTIONS, f"-arch={arch}", "-Xptxas=-v"])
        log = nvrtc.getProgramLog(prog)
        lowered = {nvrtc.getLoweredName(prog, spec.name_expression): spec.variant_name}
    finally:
        nvrtc.destroyProgram(prog)
    return _parse_report(log, lowered, arch)[0]


def main() -> int:
    keep = re.compile(sys.argv[1] if len(sys.argv) > 1 else "")
    print("NVRTC", nvrtc.getVersion())
    spilled = 0
    for spec in shipped_specs():
        if not keep.search(spec.variant_name):
            continue
        for arch in spec.archs:
            r = report(spec, arch)
            spilled += r.spills
            print(f"{arch:7s} {r.variant:56s} {r.registers:4d} regs {r.stack_frame:3d} B stack "
                  f"{r.spill_stores:3d}/{r.spill_loads:3d} B spilled{'  SPILL' if r.spills else ''}")
    print("libraries:", *loaded_nvrtc())
    return 1 if spilled else 0


if __name__ == "__main__":
    raise SystemExit(main())
