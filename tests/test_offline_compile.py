"""Every shipped kernel variant compiles offline (no GPU) for sm_80 and sm_90a
with no register spills; the compile cache key covers every cuda_src file."""

from __future__ import annotations

import dataclasses
import functools
import re
import shutil

import pytest

from cupyflash import _compile
from cupyflash._offline import TARGET_ARCHS, compile_names, compile_specs, specs_by_unit, split_reports, vt_reports
from cupyflash._spec import candidate_specs, dmma_spec, shipped_specs
from cupyflash._split import SPLIT_ENTRY_FILE
from cupyflash._vt import VT_ENTRY_FILE

pytest.importorskip("cuda.bindings.nvrtc", reason="cuda-bindings (test extra) not installed")

SK_MERGE_EXPS = 4  # the split tail's merge: a factor for each of a thread's 2 rows, for each of the 2 parts


@pytest.mark.parametrize("arch", TARGET_ARCHS)
def test_every_variant_compiles_without_spills(arch):
    # Each variant in its own program, as cupy.RawModule builds it at run time: the
    # other instantiations of a shared program change NVVM's output, and with it
    # ptxas' spills (seen: 12 bytes in a program of every variant, 0 alone).
    reports = []
    for specs in specs_by_unit(arch):
        for spec in specs:
            got, cubin = compile_specs([spec], arch)
            assert len(got) == 1 and len(cubin) > 0
            reports += got
    assert {r.variant for r in reports} == {s.variant_name for s in shipped_specs() if arch in s.archs}
    print(f"\n{'variant':44s} {'arch':7s} regs stack spill_st spill_ld")
    for r in reports:
        print(f"{r.variant:44s} {r.arch:7s} {r.registers:4d} {r.stack_frame:5d} {r.spill_stores:8d} {r.spill_loads:8d}")
    spilling = [f"{r.variant} ({r.spill_stores} B stored, {r.spill_loads} B loaded)" for r in reports if r.spills]
    assert not spilling, f"variants spill registers on {arch}: {spilling}"
    assert all(r.registers <= 255 for r in reports)
    serialized = [r.variant for r in reports if r.wgmma_serialized]
    assert not serialized, f"ptxas serialised the wgmmas of {serialized} (C7514): an accumulator is touched in flight"


@pytest.mark.parametrize("arch", TARGET_ARCHS)
def test_split_kernels_compile_without_spills(arch):
    """The float32 pre-pass kernels (split_fp32.cu), each alone as at run time:
    no spill, no stack frame (SplitParams is indexed by the block's tensor in place,
    as a __grid_constant__, not copied to local memory), and within the register
    cap of __launch_bounds__(256, BLOCKS_PER_SM): BLOCKS_PER_SM blocks fit an SM's
    registers, as many as tiles of up to 56 KB staged fit its shared memory."""
    from cupyflash._split import BLOCKS_PER_SM, SPLIT_THREADS, kernel_names

    reports = split_reports(arch)
    assert [r.variant for r in reports] == [label for label, _ in kernel_names()]
    for r in reports:
        print(f"\n{r.variant:28s} {r.arch:7s} regs {r.registers:3d} stack {r.stack_frame} "
              f"spill {r.spill_stores}/{r.spill_loads}", end="")
    bad = [r.variant for r in reports if r.spills or r.stack_frame]
    assert not bad, f"pre-pass kernels with spills or a stack frame on {arch}: {bad}"
    assert all(r.registers * SPLIT_THREADS * BLOCKS_PER_SM <= 64 * 1024 for r in reports)


@pytest.mark.parametrize("arch", TARGET_ARCHS)
def test_vt_kernel_compiles_without_spills(arch):
    """The tf32 kernel's V^T pre-pass (vt_fp32.cu): no spill, no stack frame."""
    (r,) = vt_reports(arch)
    assert not r.spills and not r.stack_frame, r


def test_tf32_variants_issue_tf32_hgmma():
    """The tf32 variants multiply on the tensor cores as tf32 (HGMMA ...F32.TF32, k8 steps),
    both GEMMs: Q.K^T from shared memory, P.V with P from registers."""
    from cupyflash._spec import WGMMA_TF32_TILES, wgmma_tf32_spec

    for width in WGMMA_TF32_TILES:
        spec = wgmma_tf32_spec(width)
        sass = _sass(compile_specs([spec], "sm_90a")[1])
        hgmma = [ln for ln in sass.splitlines() if "HGMMA" in ln]
        assert hgmma and all(".F32.TF32" in ln and "x8." in ln for ln in hgmma)
        assert any(re.search(r"HGMMA\.\S+ R\d+, R\d+, gdesc", ln) for ln in hgmma)  # P.V: A in registers
        assert "UTMALDG" in sass and not re.search(r"\b(LDL|STL)\b", sass)


def test_converting_variants_stage_fp32_and_convert_in_shared_memory():
    """The variants that convert float32 in the kernel (wgmma_convert.h): TMA loads,
    the converters' 16-byte staged reads and 8-byte fp16 stores, their proxy fence
    before the consumers' wgmma, fp16 HGMMA, no local memory (the producer's
    setmaxnreg budget holds a unit's share in registers)."""
    from cupyflash._spec import WGMMA_CONVERT_TILES, wgmma_convert_spec

    for width in WGMMA_CONVERT_TILES:
        (r,), cubin = compile_specs([wgmma_convert_spec(width)], "sm_90a")
        sass = _sass(cubin)
        assert not r.spills and not r.stack_frame, r
        assert "UTMALDG" in sass and "LDS.128" in sass and "STS.64" in sass and "FENCE.VIEW.ASYNC.S" in sass
        assert "HGMMA" in sass and ".F16" in sass and not re.search(r"\b(LDL|STL)\b", sass)


def test_split_kernels_issue_vector_memory_ops():
    """kVec = 4 copies 16 bytes global -> shared (LDGSTS.E.BYPASS.128: cp.async.cg, no
    register per element) and writes 4 x fp16 (STG.E.64); kVec = 1 copies 4 bytes.
    One read of global memory (no LDG of the input), no atomics (per-tile shifts)."""
    vec4 = _sass(compile_names("split_fp32.cu", [("s", "cupyflash::split_fp32_tiles<4, true>")], "sm_90a")[1])
    vec1 = _sass(compile_names("split_fp32.cu", [("s", "cupyflash::split_fp32_tiles<1, true>")], "sm_90a")[1])
    assert re.search(r"LDGSTS\.E\.BYPASS\S*\.128", vec4) and "STG.E.64" in vec4 and "STG.E.U16" not in vec4
    assert re.search(r"LDGSTS\.E(?!\S*\.128)", vec1) and "STG.E.U16" in vec1
    for sass in (vec4, vec1):
        assert not re.search(r"\bLDG\.", sass) and not re.search(r"\b(RED|ATOM)G?\.", sass)


def test_every_tuning_candidate_compiles_unserialised():
    """What the tuning sweeps (tune_wgmma, tune_split, tune_dmma, tune_mma) will time on the device
    compiles here, spill-free and unserialised, for every arch the variant is built for."""
    extra = [s for s in candidate_specs() if s not in shipped_specs()]
    assert {s.family for s in extra} == {"wgmma", "dmma", "mma"}
    reports = [r for spec in extra for arch in spec.archs
               for r in compile_specs([spec], arch)[0]]  # alone, as at run time
    bad = [r.variant for r in reports if r.spills or r.wgmma_serialized]
    assert not bad, f"candidates that spill or serialise: {bad}"


def test_every_shipped_variant_is_built_for_some_arch():
    built = {s.variant_name for arch in TARGET_ARCHS for g in specs_by_unit(arch) for s in g}
    assert built == {s.variant_name for s in shipped_specs()}
    assert any(s.family == "wgmma" for s in shipped_specs())
    assert all(s.archs == ("sm_90a",) for s in shipped_specs() if s.family == "wgmma")


def _find_tool(name):
    """A CUDA binary tool: on PATH, or from its pip wheel (nvidia/cu13/bin)."""
    found = shutil.which(name)
    if found:
        return found
    try:
        import nvidia
    except ImportError:
        return None
    for root in nvidia.__path__:
        for candidate in sorted(__import__("pathlib").Path(root).glob(f"cu*/bin/{name}")):
            return str(candidate)
    return None


def test_wgmma_variants_issue_hgmma():
    """The Hopper kernel must reach the wgmma units: HGMMA in its SASS, no HMMA-only fallback."""
    (group,) = [g for g in specs_by_unit("sm_90a") if g[0].family == "wgmma"]
    sass = _sass(compile_specs(group[:1], "sm_90a")[1])
    assert "HGMMA" in sass and "UTMALDG" in sass


@pytest.mark.parametrize("arch", ["sm_80", "sm_90a"])
def test_float64_kernel_issues_dmma(arch):
    """The fp64 kernel must run on the fp64 tensor cores: DMMA in its SASS, one
    per (m8, n8, k4) step of S and of P.V."""
    spec = dmma_spec(128)
    sass = _sass(compile_specs([spec], arch)[1])
    dmma = len(re.findall(r"\bDMMA\.(?:884|8x8x4)\b", sass))  # cuobjdump spells it per arch
    tiles = (spec.rows_per_warp // 8) * (spec.head_dim // 4) * (spec.block_n // 8) * 2  # S and P.V
    assert dmma == tiles, f"{dmma} DMMA in the SASS, expected {tiles}"


def test_source_inlines_every_header():
    src = "".join(_compile.kernel_source(entry)
                  for entry in ("flash_fwd.cu", "flash_fwd_sm90.cu", SPLIT_ENTRY_FILE, VT_ENTRY_FILE))
    assert '#include "' not in src
    src_lines = set(src.splitlines())
    for f in _compile.source_dir().iterdir():
        for line in f.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith(("#include", "#pragma once")):
                assert line in src_lines, f"{f.name}: {line!r} missing from the translation unit"


def test_editing_a_header_changes_the_source(tmp_path, monkeypatch):
    copy = tmp_path / "cuda_src"
    shutil.copytree(_compile.source_dir(), copy)
    monkeypatch.setattr(_compile, "source_dir", lambda: copy)
    before = _compile.kernel_source()
    with open(copy / "softmax.h", "a") as f:
        f.write("\n// an edit deep in an included header\n")
    after = _compile.kernel_source()
    assert before != after and "an edit deep in an included header" in after
    assert before.splitlines()[0] != after.splitlines()[0]  # the digest line moved too


def test_no_compile_region_is_reentrant_and_restores():
    with _compile.no_compile():
        with _compile.no_compile():
            assert _compile._forbid_depth == 2
    assert _compile._forbid_depth == 0


def _sass(cubin: bytes) -> str:
    import os
    import subprocess
    import tempfile

    cuobjdump, nvdisasm = _find_tool("cuobjdump"), _find_tool("nvdisasm")
    if cuobjdump is None or nvdisasm is None:
        pytest.skip("cuobjdump/nvdisasm not found (test extra: nvidia-cuda-cuobjdump, nvidia-cuda-nvdisasm)")
    env = dict(os.environ, PATH=f"{os.path.dirname(nvdisasm)}{os.pathsep}{os.environ.get('PATH', '')}")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        return subprocess.run([cuobjdump, "-sass", f.name], capture_output=True, text=True, check=True,
                              env=env).stdout


def _exps_around_pv_waits(sass: str) -> list[tuple[int, int]]:
    """For every 'one wgmma group left' wait (DEPBAR <= 1; none means ptxas serialised the
    wgmmas): exponentials between it and 'all done' (DEPBAR <= 0), and after that until the
    next wgmma. In the steady-state loop the first wait is 'S is ready' and the exponentials
    come before the second ('P.V is done'). At the cross-item boundary (KernelSpec.crosses_items)
    the first wait is 'the pending item's O is complete', its epilogue runs before the second,
    and the item's first exponentials after it."""
    lines = [ln for ln in sass.splitlines() if "DEPBAR" in ln or "MUFU.EX2" in ln or "HGMMA" in ln]
    found = []
    for i in (n for n, ln in enumerate(lines) if "DEPBAR.LE gsb0, 0x1" in ln):
        before = after = 0
        j = i + 1
        while "DEPBAR" not in lines[j]:
            before += "MUFU.EX2" in lines[j]
            j += 1
        j += 1
        while j < len(lines) and "HGMMA" not in lines[j] and "DEPBAR" not in lines[j]:
            after += "MUFU.EX2" in lines[j]
            j += 1
        found.append((before, after))
    return found


@functools.cache
def _wgmma_sass_by_variant() -> dict[str, str]:
    """Every wgmma candidate compiled in one program; SASS per variant name."""
    specs = [s for s in candidate_specs() if s.family == "wgmma"]
    reports, cubin = compile_specs(specs, "sm_90a")
    sections = _sass(cubin).split("Function : ")
    by_symbol = {sec.split(None, 1)[0]: sec for sec in sections[1:]}
    return {r.variant: by_symbol[r.symbol] for r in reports}


@pytest.mark.parametrize("variant", [s.variant_name for s in candidate_specs() if s.family == "wgmma"])
def test_softmax_overlaps_the_previous_pv(variant):
    """Every exponential of a tile runs while the previous tile's P.V is in flight:
    ptxas otherwise hoists the P.V wait above the softmax (seen in wgmma v2). The
    variants whose wait sits between the row max and the exponentials
    (KernelSpec.exps_after_pv_wait) run every steady tile's exponentials after it."""
    spec = next(s for s in candidate_specs() if s.variant_name == variant)
    waits = _exps_around_pv_waits(_wgmma_sass_by_variant()[variant])
    if spec.exps_after_pv_wait:
        # the first tile (no P.V in flight) has no such wait; at most the 2 corrections before it
        assert waits and all(b <= 2 and a >= spec.block_n // 2 for b, a in waits), waits
        return
    # The split tail's merge (cuda_src/split_tail.h) takes 2 rows x 2 factors once per
    # item, after the item's last P.V by design: no tile's exponential.
    merge_exps = SK_MERGE_EXPS if spec.walks_split_tail else 0
    # a thread owns 2 rows x block_n / 4 scores, plus 2 row-max corrections; no
    # wait at all means ptxas serialised every wgmma of the variant
    overlapped = [(b, a) for b, a in waits if b >= spec.block_n // 2 and a <= merge_exps]
    # the cross-item boundary: the epilogue (the merge's exponentials at most) under the
    # item's first Q.K^T, then that tile's softmax
    boundary = [(b, a) for b, a in waits if b <= merge_exps and a >= spec.block_n // 2]
    assert waits and overlapped and len(overlapped) + len(boundary) == len(waits), waits
    assert len(boundary) == (1 if spec.crosses_items else 0), (spec.crosses_items, waits)




def test_q_in_kernel_variants_convert_q_in_the_consumers():
    """KernelSpec.q_in_kernel (cuda_src/q_convert.h): one copy of the conversion
    per variant, each consumer thread's share of its 64 rows as 16-byte
    read-only loads issued together (kD / 8 of them: 2 atoms x 2 steps x kD / 32
    boxes), hi and lo (split) or hi alone (one term) as 8-byte stores, the abs-max by REDUX, a proxy fence
    before the first wgmma; Q's TMA loads gone (the shipped twin has them, and no
    16-byte global load), or, where q is staged (KernelSpec.q_staged), the loads read
    shared memory and TMA brings the fp32 rows (more loads than the twin's fp16 Q);
    spill-free, unserialised (test_softmax_overlaps_the_previous_pv covers the
    candidates' softmax placement)."""
    for spec in (s for s in candidate_specs() if s.q_in_kernel):
        (r,), cubin = compile_specs([spec], "sm_90a")
        (r0,), cubin0 = compile_specs([dataclasses.replace(spec, q_in_kernel=False, kv_once=False)], "sm_90a")
        sass, base = _sass(cubin), _sass(cubin0)
        assert not r.spills and not r.stack_frame and not r.wgmma_serialized, r
        loads = spec.head_dim // 8
        if spec.q_staged:
            assert sass.count("LDS.128") == base.count("LDS.128") + loads and "LDG.E.128" not in sass
            assert sass.count("UTMALDG") > base.count("UTMALDG"), spec.variant_name
        else:
            assert sass.count("LDG.E.128.CONSTANT") == loads and "LDG.E.128" not in base, spec.variant_name
            assert sass.count("UTMALDG") < base.count("UTMALDG"), spec.variant_name
        copies = 2 if spec.split else 1  # hi and lo, or hi alone (one term)
        assert sass.count("STS.64") == copies * loads and "REDUX.MAX" in sass
        assert not re.search(r"\b(LDL|STL)\b", sass)
        assert sass.count("FENCE.VIEW.ASYNC.S") == base.count("FENCE.VIEW.ASYNC.S") + 1
