"""Is a benchmark output right? The tolerance rule, and the check of one cell.

Project rule: every result is checked against a float64 reference. The bench
checks the output of one call per (config, implementation) cell, on the first
input set, after the timing (never inside it), on the query rows of
:func:`reference_rows.query_rows` for every batch and head. A cell that fails
becomes an error ("wrong result: ..."), so a wrong kernel never counts as fast.

The rule is the GPU tests' (``tests/test_gpu_attention.py``, ``check()``),
mirrored here because the package cannot import from ``tests/``;
``tests/test_bench_accuracy.py`` fails if the two drift apart:

- fp16 / bf16, FlashAttention-3's rule: ``max |out - ref| <= NAIVE_FACTOR *
  max |naive - ref| + ABS_FLOOR[dtype]``, where ``naive`` is the same attention
  computed naively in the input dtype (its scores, probabilities and output
  rounded to it) and the floor is half an ulp at 1.0, for rows whose naive
  error happens to be ~0.
- fp32 and fp64: ``||out - ref|| / ||ref|| <= REL_BOUND[dtype]`` (fp32: its
  own accuracy, met by cupyflash's exact CUDA-core and split tensor-core
  paths; fp64: 1e-12), except cupyflash's ``precision="fast"``, documented as
  TF32-like, which is held to ``FAST_FP32_BOUND``. Peers are held to the fp32
  bound as they are: one that computes fp32 inputs in TF32 fails it, and the
  table says so.
"""

from __future__ import annotations

from .reference_rows import (DEFAULT_ROWS, attention_rows, max_abs_error,
                             query_rows, rel_l2_error)
from .results import MAX_ABS, REL_L2, Accuracy

# Mirrors of tests/gpu_checks.py's check() and tests/gpu_reference.py.
NAIVE_FACTOR = 2.0
EPS = {"fp16": 2.0 ** -10, "bf16": 2.0 ** -7}  # spacing of the dtype's values at 1.0
ABS_FLOOR = {dtype: eps / 2 for dtype, eps in EPS.items()}
REL_BOUND = {"fp32": 1e-5, "fp64": 1e-12}
# precision="fast": one rescaled fp16 pass, ~4e-4 measured (cupyflash.attention's
# docstring says ~1e-3, TF32-like); tests/test_gpu_attention.py's FAST_FP32_BOUND.
FAST_FP32_BOUND = 2e-3

HIGHEST, FAST = "highest", "fast"  # cupyflash.attention's precision values


class WrongOutput(ValueError):
    """The output cannot be compared at all (e.g. its shape is wrong)."""


def tolerance(dtype: str, precision: str = HIGHEST, naive_error: float | None = None):
    """(metric, bound) an output of ``dtype`` is held to; ``precision`` is the
    implementation's (only fp32's "fast" changes the bound); fp16/bf16 need
    the naive computation's max abs error."""
    if precision not in (HIGHEST, FAST):
        raise ValueError(f"precision={precision!r} is not {HIGHEST!r} or {FAST!r}")
    if dtype in ABS_FLOOR:
        if naive_error is None:
            raise ValueError(f"a {dtype} bound needs the naive {dtype} computation's error")
        return MAX_ABS, NAIVE_FACTOR * naive_error + ABS_FLOOR[dtype]
    if dtype == "fp32" and precision == FAST:
        return REL_L2, FAST_FP32_BOUND
    if dtype in REL_BOUND:
        return REL_L2, REL_BOUND[dtype]
    raise ValueError(f"no tolerance for dtype {dtype!r}; known: {sorted([*ABS_FLOOR, *REL_BOUND])}")


def error(metric: str, got, ref) -> float:
    if metric == MAX_ABS:
        return max_abs_error(got, ref)
    if metric == REL_L2:
        return rel_l2_error(got, ref)
    raise ValueError(f"unknown error metric {metric!r}")


class OutputCheck:
    """The float64 reference of one config's first input set on the checked
    query rows, computed once (at the first :meth:`judge`) and shared by every
    implementation of the row."""

    def __init__(self, cfg, q, k, v, max_rows: int = DEFAULT_ROWS):
        self.cfg = cfg
        self.rows = query_rows(cfg.seqlen_q, max_rows)
        self._inputs = (q, k, v)
        self._ref = None
        self._naive_error = None

    @property
    def full_shape(self) -> tuple[int, ...]:
        c = self.cfg
        return (c.batch, c.seqlen_q, c.heads_q, c.head_dim_v)

    def sample(self, out):
        """The checked rows of ``out`` (batch, seq, heads, head_dim_v): a small
        copy, so the full output can be freed before the reference runs."""
        shape = tuple(out.shape)
        if shape != self.full_shape:
            raise WrongOutput(f"output shape {shape}, expected {self.full_shape}")
        return out[:, list(self.rows)]

    def _reference(self):
        if self._ref is None:
            q, k, v = self._inputs
            causal = self.cfg.causal
            self._ref = attention_rows(q, k, v, self.rows, causal=causal)
            if self.cfg.dtype in ABS_FLOOR:
                naive = attention_rows(q, k, v, self.rows, causal=causal, round_to=q.dtype)
                self._naive_error = max_abs_error(naive, self._ref)
        return self._ref, self._naive_error

    def judge(self, sample, precision: str = HIGHEST) -> Accuracy:
        """``sample`` (from :meth:`sample`) against the float64 reference."""
        ref, naive_error = self._reference()
        metric, bound = tolerance(self.cfg.dtype, precision, naive_error)
        return Accuracy(metric=metric, error=error(metric, sample, ref), bound=bound,
                        rows=len(self.rows), naive_error=naive_error)
