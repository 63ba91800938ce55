"""What one benchmark run produces, and the pass/fail rule on it.

Pure data, no GPU: the report and the ``--min-ratio`` check are tested on fake
results built from these classes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

OURS = "cupyflash"


def is_ours(name: str) -> bool:
    """cupyflash itself or one of its extra modes (e.g. "cupyflash-fp32fast"):
    never counted as a peer."""
    return name == OURS or name.startswith(OURS + "-")

# ImplResult.status values.
OK = "ok"
REJECTED = "rejected"            # the implementation refused this config
NOT_INSTALLED = "not installed"  # not importable, or no GPU backend for it
ERROR = "error"                  # ran, but the measurement is invalid


@dataclass(frozen=True)
class Timing:
    """Per-call milliseconds over ``samples`` samples of ``inner`` calls each."""

    median_ms: float
    min_ms: float
    max_ms: float
    q1_ms: float
    q3_ms: float
    samples: int
    inner: int
    input_sets: int


# Accuracy.metric values.
MAX_ABS = "max_abs"  # max |out - ref| (fp16/bf16, FlashAttention-3's rule)
REL_L2 = "rel_l2"    # ||out - ref|| / ||ref|| (fp32, fp64)


@dataclass(frozen=True)
class Accuracy:
    """One output against the float64 reference (bench/accuracy.py), on
    ``rows`` query rows of the first input set, every batch and head."""

    metric: str
    error: float
    bound: float
    rows: int
    naive_error: float | None = None  # fp16/bf16: the yardstick the bound is built on

    @property
    def passed(self) -> bool:
        return self.error <= self.bound  # False for a NaN error

    def summary(self) -> str:
        """E.g. "rel err 3.10e-03 > bound 1.00e-05"."""
        label = "max abs err" if self.metric == MAX_ABS else "rel err"
        sign = "<=" if self.passed else ">"
        return f"{label} {self.error:.2e} {sign} bound {self.bound:.2e}"


@dataclass
class ImplResult:
    impl: str
    status: str
    reason: str = ""
    value: float | None = None  # throughput at the median time, in cfg.metric
    timing: Timing | None = None
    memory: dict = field(default_factory=dict)
    # The output's check; the runner makes a cell OK only when it passed, and an
    # ERROR ("wrong result: ...") that keeps the timing when it did not.
    accuracy: Accuracy | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK and self.value is not None

    def cell(self, width: int = 40) -> str:
        """Table cell: the number, or the status and the reason, shortened."""
        if self.ok:
            return f"{self.value:.1f}"
        if self.accuracy is not None and not self.accuracy.passed:
            # Short enough that the numbers survive the cell width; the
            # full reason is in the JSON.
            a = self.accuracy
            return f"WRONG: err {a.error:.1e} > {a.bound:.1e}"
        text = self.status if not self.reason else f"{self.status}: {self.reason}"
        text = " ".join(text.split())
        return text if len(text) <= width else text[: width - 3] + "..."

    def to_json(self) -> dict:
        out = asdict(self)
        out["timing"] = asdict(self.timing) if self.timing else None
        if self.accuracy is not None:
            out["accuracy"]["passed"] = self.accuracy.passed
        return out


@dataclass
class RowResult:
    config: object  # shapes.AttnConfig; kept loose so fakes are easy to build
    impls: dict[str, ImplResult]

    def best_peer(self) -> ImplResult | None:
        peers = [r for name, r in self.impls.items() if not is_ours(name) and r.ok]
        return max(peers, key=lambda r: r.value) if peers else None

    def ratio(self) -> float | None:
        """cupyflash / best working peer; None when either side has no number."""
        ours = self.impls.get(OURS)
        best = self.best_peer()
        if ours is None or not ours.ok or best is None:
            return None
        return ours.value / best.value

    def failure(self, min_ratio: float) -> str | None:
        """Why this row fails ``--min-ratio``, or None when it passes.

        A row without a ratio fails: either cupyflash did not produce a number
        or no peer did, and then the claim "ratio >= X" is not shown. So does
        a cupyflash number whose output was not checked against float64 (a
        wrong output is already an error, not a number).
        """
        ours = self.impls.get(OURS)
        if ours is None or not ours.ok:
            why = ours.cell(80) if ours is not None else "not run"
            return f"cupyflash has no result ({why})"
        if ours.accuracy is None or not ours.accuracy.passed:
            why = ours.accuracy.summary() if ours.accuracy is not None else "not checked"
            return f"cupyflash's output is not shown correct ({why})"
        ratio = self.ratio()
        if ratio is None:
            return "no peer produced a result to compare with"
        if ratio < min_ratio:
            best = self.best_peer()
            return f"ratio {ratio:.3f} < {min_ratio} (best peer {best.impl})"
        return None


def failing_rows(rows, min_ratio):
    """[(row, reason)] for every row that fails ``--min-ratio``."""
    out = []
    for row in rows:
        why = row.failure(min_ratio)
        if why is not None:
            out.append((row, why))
    return out
