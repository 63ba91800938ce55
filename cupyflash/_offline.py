"""Compile kernel variants with NVRTC directly, without a GPU or a driver.

CuPy's own compile helpers query the driver, so they fail on a machine with no
GPU; this module calls NVRTC through ``cuda.bindings`` on exactly the source and
options that ``cupy.RawModule`` compiles at run time (ours and those CuPy appends,
``_compile.CUPY_RUNTIME_OPTIONS``), and reads ptxas' resource
report (registers, stack frame, spills) for each kernel.

    python -m cupyflash._offline            # every shipped variant and the fp32 pre-passes, sm_80 and sm_90a
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass

from ._compile import COMPILE_OPTIONS, CUPY_RUNTIME_OPTIONS, kernel_source
from ._spec import KernelSpec, shipped_specs
from .errors import CompileError

TARGET_ARCHS: tuple[str, ...] = ("sm_80", "sm_90a")

_FUNC = re.compile(r"Compiling entry function '([^']+)' for '(\w+)'")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_REGS = re.compile(r"Used (\d+) registers")
_SERIALIZED = re.compile(r"\(C7514\).*in the function '([^']+)'")


@dataclass(frozen=True)
class ResourceReport:
    variant: str
    arch: str
    registers: int
    stack_frame: int
    spill_stores: int
    spill_loads: int
    # ptxas C7514: it found registers of an in-flight wgmma touched and serialised the wgmmas
    wgmma_serialized: bool = False
    symbol: str = ""  # the kernel's mangled name in the cubin

    @property
    def spills(self) -> bool:
        return self.spill_stores > 0 or self.spill_loads > 0


def _check(result, what: str, log: str = "") -> None:
    from cuda.bindings import nvrtc

    if result != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise CompileError(f"NVRTC {what} failed: {result}\n{log}")


def compile_specs(specs: list[KernelSpec], arch: str) -> tuple[list[ResourceReport], bytes]:
    """Compile ``specs`` (all from one translation unit) in one NVRTC program for
    ``arch``; return the resource reports (one per spec, in order) and the cubin."""
    entries = {spec.entry_file for spec in specs}
    if len(entries) != 1:
        raise ValueError(f"compile_specs takes variants of one translation unit; got {sorted(entries)}")
    return compile_names(entries.pop(), [(spec.variant_name, spec.name_expression) for spec in specs], arch)


def compile_names(entry: str, names: list[tuple[str, str]], arch: str) -> tuple[list[ResourceReport], bytes]:
    """Compile the kernels ``names`` ((label, name expression) pairs) of the
    translation unit ``entry`` in one NVRTC program for ``arch``; return their
    resource reports (in order, ``variant`` = the label) and the cubin."""
    return compile_program(kernel_source(entry), names, arch)


def compile_program(source: str, names: list[tuple[str, str]], arch: str) -> tuple[list[ResourceReport], bytes]:
    """compile_names for a whole translation unit given as text (headers already
    inlined), e.g. a test's wrapper kernel around one device building block."""
    from cuda.bindings import nvrtc

    src = source.encode()
    err, prog = nvrtc.nvrtcCreateProgram(src, b"cupyflash.cu", 0, [], [])
    _check(err, "create")
    try:
        for _, expr in names:
            (err,) = nvrtc.nvrtcAddNameExpression(prog, expr.encode())
            _check(err, f"add name {expr}")
        opts = [o.encode() for o in COMPILE_OPTIONS + CUPY_RUNTIME_OPTIONS] + [f"-arch={arch}".encode(), b"-Xptxas=-v"]
        (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        _, size = nvrtc.nvrtcGetProgramLogSize(prog)
        log_buf = b" " * size
        nvrtc.nvrtcGetProgramLog(prog, log_buf)
        log = log_buf.decode(errors="replace")
        _check(err, f"compile for {arch}", log)
        lowered = {}
        for label, expr in names:
            err, name = nvrtc.nvrtcGetLoweredName(prog, expr.encode())
            _check(err, f"lowered name of {expr}")
            lowered[name.decode()] = label
        _, cubin_size = nvrtc.nvrtcGetCUBINSize(prog)
        cubin = b" " * cubin_size
        nvrtc.nvrtcGetCUBIN(prog, cubin)
    finally:
        nvrtc.nvrtcDestroyProgram(prog)
    return _parse_report(log, lowered, arch), cubin


def _parse_report(log: str, lowered: dict[str, str], arch: str) -> list[ResourceReport]:
    reports: dict[str, ResourceReport] = {}
    current = None
    frame = None
    for line in log.splitlines():
        if m := _FUNC.search(line):
            current, frame = m.group(1), None
        elif (m := _FRAME.search(line)) and current:
            frame = tuple(int(x) for x in m.groups())
        elif (m := _REGS.search(line)) and current and frame is not None and current in lowered:
            reports[current] = ResourceReport(lowered[current], arch, int(m.group(1)), *frame, symbol=current)
            current = None
    serialized = set(_SERIALIZED.findall(log))
    for name in serialized & reports.keys():
        reports[name] = dataclasses.replace(reports[name], wgmma_serialized=True)
    missing = [lowered[n] for n in lowered if n not in reports]
    if missing:
        raise CompileError(f"no ptxas resource report for {missing} on {arch}:\n{log}")
    return [reports[n] for n in lowered]


def split_reports(arch: str) -> list[ResourceReport]:
    """The float32 pre-pass kernels (cupyflash._split), each compiled alone as at run time."""
    from ._split import SPLIT_ENTRY_FILE, kernel_names

    return [r for label_expr in kernel_names() for r in compile_names(SPLIT_ENTRY_FILE, [label_expr], arch)[0]]


def vt_reports(arch: str) -> list[ResourceReport]:
    """The tf32 kernel's V^T pre-pass (cupyflash._vt), compiled alone as at run time."""
    from ._vt import VT_ENTRY_FILE, VT_KERNEL

    return compile_names(VT_ENTRY_FILE, [("transpose_v_tf32", VT_KERNEL)], arch)[0]


def specs_by_unit(arch: str, specs: list[KernelSpec] | None = None) -> list[list[KernelSpec]]:
    """The variants built for ``arch``, grouped by translation unit."""
    groups: dict[str, list[KernelSpec]] = {}
    for spec in specs if specs is not None else shipped_specs():
        if arch in spec.archs:
            groups.setdefault(spec.entry_file, []).append(spec)
    return list(groups.values())


def main() -> int:
    from tabulate import tabulate

    rows, failed = [], False
    for arch in TARGET_ARCHS:
        reports = [r for group in specs_by_unit(arch) for r in compile_specs(group, arch)[0]]
        reports += split_reports(arch) + vt_reports(arch)
        for r in reports:
            failed |= r.spills
            rows.append((r.variant, r.arch, r.registers, r.stack_frame, r.spill_stores, r.spill_loads))
    print(tabulate(rows, headers=("variant", "arch", "regs", "stack", "spill st", "spill ld")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
