"""Dispatch: which kernel, tiles, grid and copies serve a problem, and why.
Pure Python: ``explain()`` and the tests use it without a GPU."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ._problem import Problem
from ._spec import (DMMA_CAUSAL_TILES, DMMA_SHORT_SEQLEN, DMMA_SHORT_TILES, KV_ONCE_MIN_SEQLEN_K, MMA_DTYPES,
                    SIMT_DTYPES, WGMMA_ARCH, WGMMA_CAUSAL_TILES, WGMMA_CTAS_PER_SM, WGMMA_FAST_CAUSAL_TILES,
                    WGMMA_FAST_Q_WIDTHS, WGMMA_KV_ONCE_FAST, WGMMA_LONG_TILES, WGMMA_SHORT_SEQLEN, WGMMA_SHORT_TILES,
                    WGMMA_SPLIT_TAIL_MIN_SEQLEN_K, WGMMA_SPLIT_TAIL_WIDTHS, WGMMA_SPLIT_TILES, WGMMA_TF32_TILES,
                    KernelSpec, dmma_spec, head_dim_bucket, mma_spec, mma_width, simt_spec, wgmma_fp32_spec,
                    wgmma_kv_once_spec, wgmma_q_in_kernel_spec, wgmma_spec, wgmma_tf32_spec, wgmma_width)
from ._params import q_row_shift, split_tail
from ._walk import causal_walk
from .errors import ArgumentError, DeviceError

BACKENDS = ("auto", "wgmma", "mma", "simt")
# float32 only: "highest" keeps fp32 accuracy (fp16 hi + lo on wgmma: auto on sm_90
# up to head dim 128; exact CUDA cores otherwise, or with backend="simt"); "fast"
# runs one pass of fp16 products on q, k, v rounded once by the one-read pre-pass
# (TF32-like error); "tf32" runs tf32 products (q and k as they are, head dims <= 128).
# Why "fast" is not the tf32 kernel: with the one-read pre-pass (bench/notes/fp32_fp64.md,
# "Per-tile scales in one pre-pass read") the fp16 pass was faster at every bench shape
# but one (bench/ab_tf32.py, H100, GFLOP/s of whole calls, fast-fp16 / tf32):
#   d64  s1024 full 248 / 216, causal 147 / 151;  s2048 full 350 / 272, causal 233 / 219
#   d128 s1024 full 291 / 229, causal 179 / 161;  s2048 full 410 / 304, causal 288 / 245
# (before that change the tf32 kernel won up to 1024 keys, 2048 under a causal mask).
PRECISIONS = ("highest", "fast", "tf32")
MMA_MIN_ARCH = 80
# Output elements each kernel family stores at once (16-byte chunks of 16-bit
# values; pairs; scalars): the output's strides must be multiples of it.
OUT_STORE_ELEMS = {"mma": 8, "wgmma": 2, "dmma": 1, "simt": 1}
# The wgmma kernel's 16-bit outputs leave through TMA stores: strides that are
# positive multiples of 16 bytes (its fp32 outputs are stored in pairs).
TMA_OUT_STORE_ELEMS = 8


def out_needs_staging(spec, strides: tuple[int, ...], sizes: tuple[int, ...]) -> bool:
    """Whether the output, with these (batch, row, head) strides and sizes, must be
    written through a staging buffer by this kernel variant (a size-1 axis is never stepped)."""
    tma = spec.family == "wgmma" and spec.dtype != "float32"  # fp32 outputs are stored from registers
    elems = TMA_OUT_STORE_ELEMS if tma else OUT_STORE_ELEMS[spec.family]
    for st, n in zip(strides, sizes):  # a loop, not any(...): this runs on every call
        if n > 1 and (st % elems or (tma and st <= 0)):
            return True
    return False
# The mma path copies rows with 16-byte cp.async: 8 elements of 16 bits.
MMA_ALIGN_ELEMS = 8
MMA_ALIGN_BYTES = 16


@dataclass(frozen=True)
class Plan:
    spec: KernelSpec
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    arch: int
    sm_count: int
    # operands that are first copied into an aligned, zero-padded buffer, with the reason
    staged: dict[str, str] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    # FlashParams.sk_items, sk_tiles: the split tail of a persistent walk (_params.split_tail)
    split_tail: tuple[int, int] = (0, 0)
    # a causal walk-table variant's walk (cupyflash._walk.causal_walk), laid out once per plan;
    # each call only looks up its device copy (device_table). b"": none
    walk_table: bytes = field(default=b"", repr=False)

    def describe(self) -> str:
        s = self.spec
        lines = [
            f"kernel   : {s.variant_name}",
            f"template : {s.name_expression}",
            f"arch     : sm_{self.arch}",
            f"tiles    : block_m={s.block_m} block_n={s.block_n} warps={s.warps} head_dim width={s.head_dim}",
            f"launch   : grid={self.grid} block={self.block} dynamic smem={s.smem_bytes} B"
            + (f" (persistent: {self.sm_count} SMs)" if s.persistent else ""),
        ]
        lines += [f"staged   : {name}: {why}" for name, why in self.staged.items()] or ["staged   : none (zero-copy)"]
        lines += [f"why      : {r}" for r in self.reasons]
        return "\n".join(lines)

    __str__ = describe


def _require_hopper(arch: int, what: str, instead: str) -> None:
    if arch != WGMMA_ARCH:
        raise DeviceError(f"{what} needs a Hopper GPU (compute capability 9.0: wgmma, TMA); this one is "
                          f"{arch // 10}.{arch % 10}. Use {instead}")


def _choose_spec(problem: Problem, arch: int, backend: str, precision: str = "highest") -> tuple[KernelSpec, list[str]]:
    if backend not in BACKENDS:
        raise ArgumentError(f"backend must be one of {', '.join(map(repr, BACKENDS))}; got {backend!r}")
    if precision not in PRECISIONS:
        raise ArgumentError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}; got {precision!r}")
    if precision != "highest" and problem.dtype != "float32":
        raise ArgumentError(f"precision={precision!r} applies to float32 input; {problem.dtype} runs at its own precision "
                            "(leave precision at 'highest')")
    width = head_dim_bucket(problem.head_dim, problem.head_dim_v)
    reasons = [f"head_dim {problem.head_dim}, head_dim_v {problem.head_dim_v} -> kernel width {width}"]
    if problem.dtype in MMA_DTYPES:
        if backend == "simt":
            raise ArgumentError(f"backend='simt' serves {', '.join(SIMT_DTYPES)}; {problem.dtype} runs on "
                                "backend 'auto', 'wgmma' (sm_90) or 'mma'")
        if backend == "wgmma" or (backend == "auto" and arch == WGMMA_ARCH):
            _require_hopper(arch, "backend='wgmma'", "backend 'auto' or 'mma'")
            width = wgmma_width(problem.head_dim, problem.head_dim_v)
            reasons[0] = (f"head_dim {problem.head_dim}, head_dim_v {problem.head_dim_v} -> kernel width {width} "
                          "(a multiple of the 64-column TMA box)")
            longest = max(problem.seqlen_q, problem.seqlen_k)
            why_tiles = []  # follow the line that says how, which needs the tiles' consumer count
            bound, tiles = WGMMA_LONG_TILES.get((width, problem.causal), (None, None))
            if bound is not None and longest >= bound:
                why_tiles.append(f"long sequences (>= {bound}): one CTA per query block, the tiles "
                                 f"(block_m, block_n, stages, pingpong, persistent) = {tiles}")
            else:
                tiles = WGMMA_CAUSAL_TILES.get(width) if problem.causal else None
                if tiles is not None:
                    why_tiles.append(f"causal: the causal tiles (block_m, block_n, stages, pingpong, persistent) = {tiles}")
            short = WGMMA_SHORT_TILES.get((width, problem.causal)) if longest <= WGMMA_SHORT_SEQLEN else None
            if short is not None:  # replaces the causal entry, where the width has both
                tiles = short
                why_tiles = [f"short sequences (<= {WGMMA_SHORT_SEQLEN}): the short-problem tiles "
                             f"(block_m, block_n, stages, pingpong, persistent) = {tiles}"]
            spec = wgmma_spec(problem.dtype, width, tiles)
            if (not problem.causal and spec.persistent and width in WGMMA_SPLIT_TAIL_WIDTHS
                    and problem.seqlen_k >= WGMMA_SPLIT_TAIL_MIN_SEQLEN_K):
                spec = dataclasses.replace(spec, split_tail=True)
                why_tiles.append(f"unmasked, >= {WGMMA_SPLIT_TAIL_MIN_SEQLEN_K} keys: the variant that can "
                                 "split its walk's tail")
            reasons.append(f"{problem.dtype} on sm_90: wgmma + TMA, warp-specialised (producer warpgroup, "
                           f"{spec.consumer_warpgroups} consumer warpgroups)"
                           + (" [auto]" if backend == "auto" else " [forced]"))
            return spec, reasons + why_tiles
        if arch < MMA_MIN_ARCH:
            raise DeviceError(f"{problem.dtype} attention needs a GPU of compute capability 8.0 or newer "
                              f"(mma.sync bf16/fp16); this one is {arch // 10}.{arch % 10}")
        width = mma_width(problem.head_dim, problem.head_dim_v)
        reasons[0] = f"head_dim {problem.head_dim}, head_dim_v {problem.head_dim_v} -> kernel width {width}"
        reasons.append(f"{problem.dtype}: tensor cores through mma.sync (sm_80+ path)"
                       + (" [auto]" if backend == "auto" else " [forced]"))
        return mma_spec(problem.dtype, width), reasons
    if precision in ("fast", "tf32"):
        if backend not in ("auto", "wgmma"):
            raise ArgumentError(f"precision={precision!r} runs on backend 'auto' or 'wgmma'; got {backend!r}")
        _require_hopper(arch, f"precision={precision!r}", "precision 'highest'")
        width = wgmma_width(problem.head_dim, problem.head_dim_v)
        reasons[0] = f"head_dim {problem.head_dim}, head_dim_v {problem.head_dim_v} -> kernel width {width}"
        if precision == "tf32":
            if width not in WGMMA_TF32_TILES:
                raise ArgumentError(f"precision='tf32' serves head_dim and head_dim_v up to {max(WGMMA_TF32_TILES)}; "
                                    f"got {max(problem.head_dim, problem.head_dim_v)}. Use precision 'fast' (one "
                                    "fp16 pass, the same error) or 'highest'")
            reasons.append("float32, precision='tf32': tf32 products on wgmma (q and k read as they are, rounded to "
                           "tf32 by their TFLOAT32 tensor maps; v transposed and rounded by a small pre-pass; p "
                           "rounded), fp32 accumulation and output")
            return wgmma_tf32_spec(width), reasons
        # Not the kernel that converts q, k, v itself (wgmma_convert_spec): measured
        # 0.53-0.86 x this pre-pass path (bench/notes/fp32_in_kernel.md, "In-kernel
        # conversion, measured"); it stays a tuning candidate.
        reasons.append("float32, precision='fast': q, k, v rescaled by a power of two per tile on the device and "
                       "rounded to fp16 (10-bit mantissa, TF32-like error), one wgmma pass, fp32 accumulation and "
                       "output (measured faster than precision='tf32' on an H100)")
        if kv_once_fits(problem, width):
            # +3-12 % over the pre-pass for k and v (bench/notes/fp32_kv_once.md, "K and V
            # converted once per call", "kv-once at causal seqlen 1024").
            reasons.append("q converted inside the kernel by each consumer warpgroup; k and v too, each key tile "
                           "once per call by the first CTA that claims it (no pre-pass)")
            return wgmma_kv_once_spec(width), reasons
        if width in WGMMA_FAST_Q_WIDTHS:
            # +4-11 % on whole calls (bench/notes/fp32_in_kernel.md, "Q converted by the
            # consumers, one term"); q's 64 rows per warpgroup take 64 registers at width 128.
            reasons.append("q converted inside the kernel by each consumer warpgroup (64 rows, one shift each); "
                           "k and v by the pre-pass")
            tiles = WGMMA_FAST_CAUSAL_TILES.get(width) if problem.causal else None
            if tiles is not None:
                reasons.append(f"causal: the fast causal tiles (block_m, block_n, stages, pingpong, persistent) = "
                               f"{tiles}")
            return wgmma_q_in_kernel_spec(width, tiles, 1), reasons
        return wgmma_fp32_spec(width, 1), reasons
    # auto on sm_90, float32, head dims <= 128: the split kernel (fp32 accuracy on
    # random inputs: the GPU suite checks <= 1e-5; 4-12x the exact SIMT kernel,
    # bench/notes/fp32_fp64.md, "fp32 and fp64, measured"). Wider heads stay exact
    # on SIMT.
    split_auto = (backend == "auto" and problem.dtype == "float32" and arch == WGMMA_ARCH
                  and max(problem.head_dim, problem.head_dim_v) <= max(WGMMA_SPLIT_TILES))
    if split_auto or (backend == "wgmma" and problem.dtype == "float32"):
        _require_hopper(arch, "backend='wgmma'", "backend 'auto' or 'simt'")
        width = wgmma_width(problem.head_dim, problem.head_dim_v)
        if width not in WGMMA_SPLIT_TILES:
            raise ArgumentError(f"backend='wgmma' with float32 serves head_dim and head_dim_v up to "
                                f"{max(WGMMA_SPLIT_TILES)}; got {max(problem.head_dim, problem.head_dim_v)}. "
                                "Use backend 'auto' or 'simt' (exact fp32)")
        reasons[0] = f"head_dim {problem.head_dim}, head_dim_v {problem.head_dim_v} -> kernel width {width}"
        reasons.append(f"float32 on wgmma {'[auto]' if split_auto else '[forced]'}: q, k, v rescaled by powers of "
                       "two on the device and split into fp16 hi + lo; three products per k-step "
                       "(hi*hi + hi*lo + lo*hi), fp32 accumulation (backend='simt': exact fp32 on CUDA cores)")
        # q is split by the kernel's consumer warpgroups, k and v by the pre-pass: +6-14 % on
        # whole calls against the pre-pass doing all three (bench/notes/fp32_in_kernel.md,
        # "Q converted by the consumers, measured").
        reasons.append("q split inside the kernel by each consumer warpgroup (64 rows, one shift each); "
                       "k and v by the pre-pass")
        return wgmma_q_in_kernel_spec(width), reasons
    # float64: the fp64 tensor cores (DMMA) on sm_80+, auto or backend="mma". Each
    # product and sum is an IEEE fp64 FMA, as on the CUDA cores, so nothing is
    # traded for the speed; backend="simt" keeps the CUDA-core kernel selectable.
    if problem.dtype == "float64" and (backend == "mma" or (backend == "auto" and arch >= MMA_MIN_ARCH)):
        if arch < MMA_MIN_ARCH:
            raise DeviceError(f"backend='mma' with float64 needs a GPU of compute capability 8.0 or newer "
                              f"(mma.sync f64); this one is {arch // 10}.{arch % 10}. Use backend 'auto' or 'simt'")
        reasons.append("float64: fp64 tensor cores through mma.sync m8n8k4 (DMMA), IEEE fp64 products and sums"
                       + (" [auto]" if backend == "auto" else " [forced]") + " (backend='simt': CUDA cores)")
        tiles = dmma_tiles(problem, width)
        if tiles is not None:
            reasons.append(f"{'causal' if problem.causal else f'short sequences (<= {DMMA_SHORT_SEQLEN})'}: "
                           f"the DMMA tiles (block_m, block_n, warps, m_tiles) = {tiles}")
        return dmma_spec(width, tiles), reasons
    if backend in ("mma", "wgmma"):
        serves = ", ".join(MMA_DTYPES) + (", float64" if backend == "mma" else ", float32")
        raise ArgumentError(f"backend={backend!r} serves {serves}; {problem.dtype} runs on backend "
                            "'auto' or 'simt'")
    reasons.append(f"{problem.dtype}: exact {problem.dtype} arithmetic on CUDA cores (no TF32)")
    return simt_spec(problem.dtype, width), reasons


def dmma_tiles(problem: Problem, width: int) -> tuple[int, int, int, int] | None:
    """The fp64 kernel's tiles where they differ from DMMA_TILES[width]: under a
    causal mask, else for short sequences (max(seqlen_q, seqlen_k) <= DMMA_SHORT_SEQLEN)."""
    if problem.causal:
        return DMMA_CAUSAL_TILES.get(width)
    if max(problem.seqlen_q, problem.seqlen_k) <= DMMA_SHORT_SEQLEN:
        return DMMA_SHORT_TILES.get(width)
    return None


def staging_needs(problem: Problem, spec: KernelSpec, pointers: dict[str, int] | None) -> dict[str, str]:
    """Operands that must be copied into an aligned, padded buffer first.

    The mma path loads rows with 16-byte copies and the wgmma path with TMA
    (16-byte-multiple strides), so both need head dims that are multiples of 8,
    row/head/batch strides that are multiples of 8 elements and 16-byte aligned
    base pointers. ``pointers`` (name -> device address) is None
    for host (NumPy) inputs, which are copied to fresh contiguous buffers anyway.
    """
    if spec.family not in ("mma", "wgmma"):
        return {}
    if spec.fp32_terms or spec.tf32:
        # The pre-passes write fresh, aligned, padded copies (fp16 q, k, v; V^T
        # for tf32, whose TMA reads q and k in place: fp32_tma_staging_needs; a
        # converting kernel reads all three in place); the fp32 output (written
        # two floats at a time) may need a staging buffer.
        # Q converted by the consumers (q_in_kernel) is read as float4s: TMA's rules cover them.
        # k and v converted once per call (kv_once) are read as float4s too.
        names = (("q", "k") if spec.tf32 else ("q", "k", "v") if spec.convert_stages or spec.kv_once else
                 ("q",) if spec.q_in_kernel else ())
        needs = fp32_tma_staging_needs(problem, pointers, names)
        dv = problem.head_dim_v
        if dv % MMA_ALIGN_ELEMS:
            needs["out"] = (f"head_dim {dv} is not a multiple of {MMA_ALIGN_ELEMS}: padded to "
                            f"{dv + (-dv) % MMA_ALIGN_ELEMS}")
        elif pointers is not None and pointers.get("out", 0) % MMA_ALIGN_BYTES:
            needs["out"] = f"base address is not {MMA_ALIGN_BYTES}-byte aligned"
        return needs
    needs: dict[str, str] = {}
    dims = {"q": problem.head_dim, "k": problem.head_dim, "v": problem.head_dim_v, "out": problem.head_dim_v}
    strides = {"q": problem.q_strides, "k": problem.k_strides, "v": problem.v_strides}
    # (batch, seq, heads) sizes, in the strides' order
    sizes = {"q": (problem.batch, problem.seqlen_q, problem.heads_q),
             "k": (problem.batch, problem.seqlen_k, problem.heads_kv),
             "v": (problem.batch, problem.seqlen_k, problem.heads_kv)}
    for name, dim in dims.items():
        if dim % MMA_ALIGN_ELEMS:
            padded = dim + (-dim) % MMA_ALIGN_ELEMS
            needs[name] = f"head_dim {dim} is not a multiple of {MMA_ALIGN_ELEMS}: padded to {padded}"
        elif pointers is not None and name in strides and any(s % MMA_ALIGN_ELEMS for s in strides[name]):
            needs[name] = f"strides {strides[name]} are not multiples of {MMA_ALIGN_ELEMS} elements"
        elif (spec.family == "wgmma" and pointers is not None and name in strides
              and any(s <= 0 and n > 1 for s, n in zip(strides[name], sizes[name]))):
            needs[name] = (f"strides {strides[name]} include a zero or negative one (a broadcast or reversed "
                           "axis): TMA needs positive strides")
        elif pointers is not None and pointers.get(name, 0) % MMA_ALIGN_BYTES:
            needs[name] = f"base address is not {MMA_ALIGN_BYTES}-byte aligned"
    return needs


# TMA reading float32 operands in place (the tf32 kernel's q and k; a converting
# kernel's q, k and v): 16-byte strides are 4 elements.
TF32_ALIGN_ELEMS = 4


def fp32_tma_staging_needs(problem: Problem, pointers: dict[str, int] | None,
                           names: tuple[str, ...] = ("q", "k")) -> dict[str, str]:
    """The float32 operands among ``names`` that TMA cannot map as they are: a head
    dim that is not a multiple of 4 (the row stride of a contiguous array would not
    be 16 bytes), strides that are not multiples of 4 elements or not positive, or
    a base that is not 16-byte aligned. They are copied, zero-padded to a multiple of 8."""
    needs: dict[str, str] = {}
    q_size, kv_size = (problem.batch, problem.seqlen_q, problem.heads_q), (problem.batch, problem.seqlen_k,
                                                                           problem.heads_kv)
    operands = {"q": (problem.q_strides, q_size, problem.head_dim), "k": (problem.k_strides, kv_size, problem.head_dim),
                "v": (problem.v_strides, kv_size, problem.head_dim_v)}
    for name in names:
        strides, size, dim = operands[name]
        if dim % TF32_ALIGN_ELEMS:
            needs[name] = (f"head_dim {dim} is not a multiple of {TF32_ALIGN_ELEMS}: padded to "
                           f"{dim + (-dim) % MMA_ALIGN_ELEMS}")
        elif pointers is not None and any(st % TF32_ALIGN_ELEMS for st, n in zip(strides, size) if n > 1):
            needs[name] = f"strides {strides} are not multiples of {TF32_ALIGN_ELEMS} elements"
        elif pointers is not None and any(st <= 0 and n > 1 for st, n in zip(strides, size)):
            needs[name] = (f"strides {strides} include a zero or negative one (a broadcast or reversed axis): "
                           "TMA needs positive strides")
        elif pointers is not None and pointers.get(name, 0) % MMA_ALIGN_BYTES:
            needs[name] = f"base address is not {MMA_ALIGN_BYTES}-byte aligned"
    return needs


# Multiprocessors assumed by explain(arch=...) on a machine without that GPU.
ASSUMED_SM_COUNT = {80: 108, 86: 84, 89: 128, 90: 132}
DEFAULT_SM_COUNT = 132


def plan(problem: Problem, arch: int, backend: str = "auto", pointers: dict[str, int] | None = None,
         sm_count: int | None = None, precision: str = "highest") -> Plan:
    spec, reasons = _choose_spec(problem, arch, backend, precision)
    if spec.q_staged:
        reasons.append("q's fp32 rows staged in shared memory by TMA a few key tiles ahead of each item, so the "
                       "consumers convert them without waiting on global memory")
    return plan_for_spec(problem, spec, arch, reasons, pointers, sm_count)


def kv_once_fits(problem: Problem, width: int) -> bool:
    """precision="fast" converts k and v inside the kernel (KernelSpec.kv_once) where that
    measured faster than the pre-pass: at the widths of WGMMA_KV_ONCE_FAST, head dims equal
    to the width (its converters read whole rows), seqlen_k from KV_ONCE_MIN_SEQLEN_K,
    with a causal mask or without."""
    return (width in WGMMA_KV_ONCE_FAST and problem.head_dim == problem.head_dim_v == width
            and problem.seqlen_k >= KV_ONCE_MIN_SEQLEN_K)


def plan_for_spec(problem: Problem, spec: KernelSpec, arch: int, reasons: list[str] | None = None,
                  pointers: dict[str, int] | None = None, sm_count: int | None = None) -> Plan:
    """The launch plan for a given kernel variant (dispatch, or a tuning sweep).
    ``sm_count`` sizes a persistent grid; None assumes the arch's usual count."""
    reasons = list(reasons or [f"variant {spec.variant_name} given explicitly"])
    sm_count = sm_count or ASSUMED_SM_COUNT.get(arch, DEFAULT_SM_COUNT)
    if problem.causal and spec.takes_walk_table and not spec.walk_table:
        spec = dataclasses.replace(spec, walk_table=True)  # the twin that reads the host's walk (_walk.py)
    m_blocks = -(-problem.seqlen_q // spec.block_m)
    grid = (m_blocks, problem.heads_q, problem.batch)
    sk = (0, 0)
    walk = b""
    if spec.persistent:
        items = m_blocks * problem.heads_q * problem.batch
        grid = (max(1, min(items, sm_count * WGMMA_CTAS_PER_SM)), 1, 1)
        reasons.append(f"persistent: {grid[0]} CTAs walk {items} query blocks")
        sk = split_tail(problem.causal, problem.seqlen_k, items, grid[0], spec)
        if sk[0]:
            reasons.append(f"split tail: the last {sk[0]} query blocks' {sk[0] * sk[1]} key tiles are shared out "
                           f"evenly over the {grid[0]} CTAs instead of a last wave of {items % grid[0]} blocks")
        if problem.causal and spec.walk_table:
            walk, listed, balance, fold = causal_walk(problem, spec, grid[0])
            reasons.append("causal: each CTA's query blocks come from a table laid out on the host (cupyflash._walk), "
                           + (f"each block to the CTA free first: the mean CTA's work over the last one's predicted "
                              f"{balance:.3f}, against {fold:.3f} folding block pairs" if listed else
                              f"block pairs (long, short) folded by stride: balance predicted {fold:.3f}"))
        if problem.causal and spec.rotates_chunks:
            reasons.append("causal: the consumer warpgroups rotate the block's 64-row chunks from item to item "
                           "and pass the key tiles past their own chunk's diagonal")
    if problem.causal:
        reasons.append(f"causal ({'bottom-right' if problem.causal_offset == problem.seqlen_k - problem.seqlen_q else 'top-left'}"
                       f" alignment, offset {problem.causal_offset}): key tiles past the diagonal are skipped, "
                       "query blocks run longest first")
        shift = q_row_shift(True, problem.seqlen_q, spec)
        if shift:
            reasons.append(f"causal: the first query block starts {shift} rows before row 0, so the padding of "
                           f"{spec.block_m}-row blocks falls in the block with the fewest key tiles")
    if problem.group > 1:
        reasons.append(f"GQA: {problem.group} query heads share each KV head")
    return Plan(spec, grid, (spec.threads, 1, 1), arch, sm_count, staging_needs(problem, spec, pointers),
                tuple(reasons), sk, walk)
