"""A NumPy reference of the float32 pre-pass (cupyflash/_split.py) and a CPU model
of the wgmma kernel that reads it (cuda_src/flash_fwd_wgmma.cuh, kFp32Terms > 0).

``reference_split`` is written from the original formula (the double-precision
one of the CuPy kernels it replaced), not from the kernel's integer version,
applied to every tile on its own: the GPU test compares the two bit for bit.
``model_attention`` runs the kernel's arithmetic on those hi/lo copies in
float32 (fp16 operands, float32 products and sums), tile by tile, undoing the
per-tile shifts the way the kernel does (softmax.h ScaledTile, add_pv's FFMA,
tile_shifts.h OUnits), so the scheme's accuracy is checked without a GPU."""

from __future__ import annotations

import math

import numpy as np

from cupyflash._split import KV_SHIFTS_PER_TILE, MAX_SHIFT, PAD_ELEMS, TARGET_EXP, shift_layout

TINY = 2.0 ** -1000  # the reference's stand-in for a zero maximum
LOG2E = 1.4426950408889634
FTZ = np.float32(2.0 ** -126)  # ex2.approx.ftz flushes results below the smallest normal float
MAX_P_SHIFT = 32  # kMaxPShift in cuda_src/tile_shifts.h
F32_MIN_NORMAL_EXP = -126
F32 = np.float32


def reference_shift(max_abs: float, max_shift: int, target: int = TARGET_EXP) -> int:
    """e = clip(target - ceil(log2(max(m, 2^-1000))), -max_shift, max_shift), in double precision."""
    e = target - math.ceil(math.log2(max(float(max_abs), TINY)))
    return int(min(max(e, -max_shift), max_shift))


def finite_absmax(x: np.ndarray) -> np.float32:
    a = np.abs(x[np.isfinite(x)])
    return np.float32(a.max()) if a.size else np.float32(0)


def tile_shifts(x: np.ndarray, rows: int, max_shift: int) -> np.ndarray:
    """(batch, heads, seq tiles) int array: each tile's shift, from its finite abs-max."""
    batch, seqlen, heads, _ = x.shape
    tiles = -(-seqlen // rows)
    out = np.zeros((batch, heads, tiles), dtype=np.int64)
    for b in range(batch):
        for h in range(heads):
            for t in range(tiles):
                out[b, h, t] = reference_shift(finite_absmax(x[b, t * rows:(t + 1) * rows, h]), max_shift)
    return out


def reference_split(xs: dict[str, np.ndarray], block_m: int, block_n: int, with_lo: bool = True,
                    q_rows: int | None = None):
    """hi, lo (name -> float16 (b, s, h, padded d), zero padding), the shifts
    array as the kernel lays it out (int32, cupyflash._split.shift_layout) and
    the shifts per tensor (name -> (batch, heads, tiles)) of q, k, v given as
    float32 bshd arrays; q tiles have block_m rows (q_rows: the kernel converts
    q itself, per consumer warpgroup's 64 rows), k and v tiles block_n."""
    rows = {"q": q_rows or block_m, "k": block_n, "v": block_n}
    shifts = {name: tile_shifts(x, rows[name], MAX_SHIFT[name]) for name, x in xs.items()}
    hi, lo = {}, {}
    with np.errstate(invalid="ignore", over="ignore"):
        for name, x in xs.items():
            # every row's factor: its tile's 2^e, broadcast over the head dim
            per_row = np.repeat(shifts[name], rows[name], axis=2)[:, :, :x.shape[1]]  # (b, h, s)
            factor = np.exp2(per_row.transpose(0, 2, 1).astype(np.float64)).astype(np.float32)[..., None]
            y = x.astype(np.float32) * factor  # float32 product, rounded once
            h = y.astype(np.float16)  # round to nearest even
            pad = (-x.shape[3]) % PAD_ELEMS
            widths = ((0, 0), (0, 0), (0, 0), (0, pad))
            hi[name] = np.pad(h, widths)
            if with_lo:
                lo[name] = np.pad((y - h.astype(np.float32)).astype(np.float16), widths)
    q, k = xs["q"], xs["k"]
    where = shift_layout(q.shape[0], q.shape[2], k.shape[2], q.shape[1], k.shape[1], rows["q"], block_n)
    flat = np.zeros(where.size, dtype=np.int32)
    kv = np.stack([shifts["k"], shifts["v"]], axis=-1)  # (b, h_kv, tiles, 2)
    flat[:where.q_offset] = kv.reshape(-1)
    flat[where.q_offset:] = shifts["q"].reshape(-1)
    assert KV_SHIFTS_PER_TILE == kv.shape[-1]
    return hi, lo, flat, shifts


def p_shift_of(d: int) -> int:
    """P's shift for a V tile d octaves smaller than O's units (p_shift_of in tile_shifts.h)."""
    return min(max(d, 0), MAX_P_SHIFT)


def unit_exp_of(d: int) -> int:
    """The exponent of O's factor when a tile's e_v is d above O's units (unit_exp_of)."""
    return max(min(d, 0), F32_MIN_NORMAL_EXP)


def _pow2(e: int) -> np.float32:
    return F32(2.0 ** e)


def _split16(x: np.ndarray, terms: int):
    """fp16 hi (and lo = fp16(x - hi)) of float32 values, as float32 arrays."""
    hi = x.astype(np.float16).astype(F32)
    return hi, ((x - hi).astype(np.float16).astype(F32) if terms == 3 else None)


def _product(ah, al, bh, bl):
    """a @ b with fp16 operands and float32 sums: hi*hi + (hi*lo + lo*hi), or hi*hi for one term."""
    out = ah @ bh
    return out if al is None else out + (ah @ bl + al @ bh)


def model_attention(q, k, v, *, causal: bool, offset: int, scale: float, block_m: int, block_n: int, terms: int,
                    per_tensor: bool = False, q_rows: int | None = None):
    """The kernel's result (out (b, sq, hq, dv) float32, lse (b, hq, sq)) for float32
    bshd q, k, v, with ``terms`` 3 (hi + lo) or 1 (hi). ``per_tensor`` gives every
    tile its tensor's shift instead (the scheme this one replaced), to show what
    the per-tile shifts gain. ``q_rows``: e_q per q_rows rows instead of per query
    block (KernelSpec.q_in_kernel: each consumer warpgroup's 64 rows have their own)."""
    batch, sq, hq, _ = q.shape
    sk, hkv, dv = k.shape[1], k.shape[2], v.shape[3]
    group = hq // hkv
    xs = {"q": q, "k": k, "v": v}
    hi, lo, _, shifts = reference_split(xs, block_m, block_n, with_lo=terms == 3, q_rows=q_rows)
    q_tile = q_rows or block_m
    if per_tensor:
        one = {n: reference_shift(finite_absmax(x), MAX_SHIFT[n]) for n, x in xs.items()}
        shifts = {n: np.full_like(s, one[n]) for n, s in shifts.items()}
        hi, lo = {}, {}
        for n, x in xs.items():
            h_, l_ = _split16(x * _pow2(one[n]), terms)
            hi[n], lo[n] = h_, l_
    cut = {n: hi[n][..., :xs[n].shape[3]].astype(F32) for n in xs}
    cut_lo = {n: (lo[n][..., :xs[n].shape[3]].astype(F32) if terms == 3 else None) for n in xs}
    scale_log2 = F32(scale * LOG2E)
    out = np.zeros((batch, sq, hq, dv), dtype=F32)
    lse = np.full((batch, hq, sq), -np.inf, dtype=F32)
    n_tiles = -(-sk // block_n)
    for b in range(batch):
        for h in range(hq):
            kvh = h // group
            for mb in range(-(-sq // block_m)):
                r0, r1 = mb * block_m, min(sq, (mb + 1) * block_m)
                qh = cut["q"][b, r0:r1, h]
                ql = None if terms == 1 else cut_lo["q"][b, r0:r1, h]
                rows = np.arange(r0, r1)[:, None]
                e_q = shifts["q"][b, h, rows[:, 0] // q_tile].astype(np.int64)  # per row: its q tile's
                n_end = min(sk, r0 + block_m + offset) if causal else sk  # work_item's key range
                tiles = -(-n_end // block_n) if n_end > 0 else 0
                mx = np.full(r1 - r0, -np.inf, dtype=F32)
                sm = np.zeros(r1 - r0, dtype=F32)
                o = np.zeros((r1 - r0, dv), dtype=F32)
                o_exp = 0
                for i in range(tiles):
                    t = tiles - 1 - i  # from the last key tile to the first
                    c0, c1 = t * block_n, min(sk, (t + 1) * block_n)
                    e_k, e_v = int(shifts["k"][b, kvh, t]), int(shifts["v"][b, kvh, t])
                    kh, kl = cut["k"][b, c0:c1, kvh], (None if terms == 1 else cut_lo["k"][b, c0:c1, kvh])
                    s = _product(qh, ql, kh.T, None if kl is None else kl.T)
                    if causal:
                        s = np.where(np.arange(c0, c1)[None, :] <= rows + offset, s, -np.inf).astype(F32)
                    mult = np.array([_pow2(-(int(e) + e_k)) for e in e_q], dtype=F32)  # per row
                    p_shift, unit, moved_units = 0, F32(1), False
                    if terms == 1:  # OUnits (tile_shifts.h)
                        if i == 0:
                            o_exp = e_v
                        else:
                            d = e_v - o_exp
                            moved_units, unit, p_shift = d < 0, _pow2(unit_exp_of(d)), p_shift_of(d)
                            o_exp = min(o_exp, e_v)
                    tile_max = (s.max(axis=1) * mult).astype(F32)
                    new_max = np.maximum(mx, tile_max)
                    off = np.where(np.isneginf(new_max), F32(0), new_max * scale_log2).astype(F32)
                    moved = new_max != mx
                    with np.errstate(invalid="ignore"):
                        corr = np.where(moved, np.exp2((mx * scale_log2 - off).astype(F32)), F32(1)).astype(F32)
                    mx = new_max
                    p_off = (off + F32(p_shift)).astype(F32)  # rounded, as the kernel's FADD
                    arg = (s.astype(np.float64) * (scale_log2 * mult).astype(F32).astype(np.float64)[:, None]
                           - p_off.astype(np.float64)[:, None])
                    p = np.exp2(arg.astype(F32))
                    p = np.where(p < FTZ, F32(0), p).astype(F32)
                    tile_sum = p.sum(axis=1, dtype=F32) * _pow2(p_shift)
                    sm = (sm * corr + tile_sum).astype(F32)
                    ph, pl = _split16(p, terms)
                    vh = cut["v"][b, c0:c1, kvh]
                    vl = None if terms == 1 else cut_lo["v"][b, c0:c1, kvh]
                    pv = _product(ph, pl, vh, vl)
                    # O's rescale for this tile lands before its P.V (the kernel adds the
                    # previous tile's P.V first, then rescales: the same products)
                    o = o * (corr * (unit if moved_units else F32(1)))[:, None]
                    o = (o + pv * _pow2(-e_v)) if terms == 3 else (o + pv)
                    o = o.astype(F32)
                out_mult = _pow2(-o_exp) if terms == 1 else F32(1)
                inv = np.where(sm > 0, out_mult / np.where(sm > 0, sm, 1), 0).astype(F32)
                out[b, r0:r1, h] = o * inv[:, None]
                with np.errstate(divide="ignore"):
                    lse[b, h, r0:r1] = np.where(sm > 0, (mx * scale_log2 + np.log2(np.where(sm > 0, sm, 1)))
                                                * math.log(2), -np.inf)
    return out, lse


def exact_attention(q, k, v, *, causal: bool, offset: int, scale: float):
    """float64 attention of bshd arrays: (out, lse)."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    group = q.shape[2] // k.shape[2]
    k, v = np.repeat(k, group, axis=2), np.repeat(v, group, axis=2)
    s = np.einsum("bqhd,bkhd->bhqk", q, k) * scale
    if causal:
        vis = np.arange(k.shape[1])[None, :] <= np.arange(q.shape[1])[:, None] + offset
        s = np.where(vis, s, -np.inf)
    m = s.max(axis=3, keepdims=True)
    m = np.where(np.isneginf(m), 0, m)
    p = np.exp(s - m)
    den = p.sum(axis=3, keepdims=True)
    out = np.einsum("bhqk,bkhd->bqhd", p / np.where(den > 0, den, 1), v)
    with np.errstate(divide="ignore"):
        lse = np.where(den[..., 0] > 0, m[..., 0] + np.log(np.where(den[..., 0] > 0, den[..., 0], 1)), -np.inf)
    return out, lse


def tiled_magnitudes(rng, shape, rows: int, spread_log2: int, by: str = "tile") -> np.ndarray:
    """N(0, 1) data (bshd), scaled by 2^j per tile of ``rows`` seq positions of one
    (batch, head), j in [-spread_log2, 0]: ``by="tile"``: j drawn per tile, the
    first two tiles of every head taking the two ends; ``by="head"``: j = 0 for
    head 0 and -spread_log2 for the others, the same for all their tiles.
    Either way tiles differ in magnitude by 2^spread_log2, the case per-tile
    shifts must get right; by head, also one a per-tensor shift loses precision
    on (the small heads sit 2^spread_log2 below the tensor's max, their lo
    parts in fp16's subnormals), visible in a per-head error."""
    batch, seqlen, heads, _ = shape
    x = rng.standard_normal(shape)
    tiles = -(-seqlen // rows)
    if by == "tile":
        j = rng.integers(-spread_log2, 1, size=(batch, tiles, heads))
        j[:, 0, :] = 0
        if tiles > 1:
            j[:, 1, :] = -spread_log2
    else:
        j = np.full((batch, tiles, heads), -spread_log2)
        j[:, :, 0] = 0
    factor = np.repeat(np.exp2(j.astype(np.float64)), rows, axis=1)[:, :seqlen, :, None]
    return (x * factor).astype(np.float32)
