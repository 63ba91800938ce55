"""CPU study for issue 6: how accurate is fp32 attention when the two GEMMs run on
tensor cores in reduced precision, with and without operand splitting?

Emulates the rounding of the operands (TF32: 10 explicit mantissa bits, round to
nearest with ties away, as cvt.rna.tf32.f32; BF16: 7 bits, round to nearest even)
and accumulates in float32 (numpy's sgemm, like the tensor cores' fp32
accumulators). Splitting: x = hi + lo with hi = round(x), lo = round(x - hi);
a product keeps hi*hi + hi*lo + lo*hi ("3x"), dropping lo*lo.

    python bench/split_precision_study.py        # prints a table, ~1 minute on 2 cores
"""

from __future__ import annotations

import numpy as np


def round_tf32(x: np.ndarray) -> np.ndarray:
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return ((u + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)


def round_bf16(x: np.ndarray) -> np.ndarray:
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    u = (u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return u.view(np.float32)


def round_fp16(x: np.ndarray) -> np.ndarray:
    """To float16 and back: 10 mantissa bits, but also fp16's range (subnormals below 6.1e-5)."""
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


ROUND = {"tf32": round_tf32, "bf16": round_bf16, "fp16": round_fp16}


def matmul(a, b, mode):
    """a @ b in float32 with tensor-core operand rounding per ``mode``."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    if mode == "fp32":
        return a @ b
    rnd = ROUND[mode[-4:]]
    ah, bh = rnd(a), rnd(b)
    if mode in ("tf32", "bf16", "fp16"):
        return ah @ bh
    al, bl = rnd(a - ah), rnd(b - bh)
    return ah @ bh + (ah @ bl + al @ bh)  # small terms summed first


def attention(q, k, v, causal, mode):
    s = matmul(q, k.T, mode) / np.float32(np.sqrt(q.shape[1]))
    if causal:
        s = np.where(np.tril(np.ones(s.shape, dtype=bool)), s, -np.inf)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    return matmul(p, v, mode) / p.sum(axis=1, keepdims=True)


def reference(q, k, v, causal):
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    s = q @ k.T / np.sqrt(q.shape[1])
    if causal:
        s = np.where(np.tril(np.ones(s.shape, dtype=bool)), s, -np.inf)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    return p @ v / p.sum(axis=1, keepdims=True)


def main() -> None:
    modes = ("fp32", "3xtf32", "3xfp16", "3xbf16", "tf32", "bf16")
    rng = np.random.default_rng(0)
    print(f"{'d':>4} {'seqlen':>6} {'causal':>6}  " + "  ".join(f"{m:>9}" for m in modes))
    for d in (64, 128):
        for s in (1024, 4096):
            for causal in (False, True):
                q, k, v = (rng.standard_normal((s, d)).astype(np.float32) for _ in range(3))
                ref = reference(q, k, v, causal)
                errs = [np.linalg.norm(attention(q, k, v, causal, m) - ref) / np.linalg.norm(ref) for m in modes]
                print(f"{d:4d} {s:6d} {causal!s:>6}  " + "  ".join(f"{e:9.2e}" for e in errs), flush=True)


if __name__ == "__main__":
    main()
