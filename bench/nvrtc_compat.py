"""Compile every shipped variant with another libnvrtc (e.g. 13.0, the one CuPy uses on the
device, while pip gives CI a newer one) through ctypes, and print the resource report.
Spill and wgmma-serialisation results differ between NVRTC versions.

    LD_LIBRARY_PATH=DIR python bench/nvrtc_compat.py DIR/libnvrtc.so.13
"""
import ctypes, sys, re
sys.path.insert(0, '.')
from cupyflash._compile import kernel_source, COMPILE_OPTIONS
from cupyflash._offline import specs_by_unit, _parse_report
lib = ctypes.CDLL(sys.argv[1])
def compile_group(specs, arch):
    prog = ctypes.c_void_p()
    src = kernel_source(specs[0].entry_file).encode()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), src, b"x.cu", 0, None, None) == 0
    for s in specs: assert lib.nvrtcAddNameExpression(prog, s.name_expression.encode()) == 0
    opts = [o.encode() for o in COMPILE_OPTIONS] + [f"-arch={arch}".encode(), b"-Xptxas=-v"]
    arr = (ctypes.c_char_p * len(opts))(*opts)
    rc = lib.nvrtcCompileProgram(prog, len(opts), arr)
    n = ctypes.c_size_t(); lib.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
    buf = ctypes.create_string_buffer(n.value); lib.nvrtcGetProgramLog(prog, buf)
    log = buf.value.decode()
    assert rc == 0, log[-3000:]
    lowered = {}
    for s in specs:
        p = ctypes.c_char_p(); lib.nvrtcGetLoweredName(prog, s.name_expression.encode(), ctypes.byref(p)); lowered[p.value.decode()] = s
    return _parse_report(log, lowered, arch)
for arch in ('sm_80', 'sm_90a'):
    for g in specs_by_unit(arch):
        for r in compile_group(g, arch):
            flag = 'SPILL' if r.spills else ('SERIAL' if r.wgmma_serialized else '')
            print(arch, r.variant, r.registers, r.spill_stores, r.spill_loads, flag)
