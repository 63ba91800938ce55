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


@dataclass
class ImplResult:
    impl: str
    status: str
    reason: str = ""
    value: float | None = None  # throughput at the median time, in cfg.metric
    timing: Timing | None = None
    memory: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == OK and self.value is not None

    def cell(self, width: int = 40) -> str:
        """Table cell: the number, or the status and the reason, shortened."""
        if self.ok:
            return f"{self.value:.1f}"
        text = self.status if not self.reason else f"{self.status}: {self.reason}"
        text = " ".join(text.split())
        return text if len(text) <= width else text[: width - 3] + "..."

    def to_json(self) -> dict:
        out = asdict(self)
        out["timing"] = asdict(self.timing) if self.timing else None
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
        or no peer did, and then the claim "ratio >= X" is not shown.
        """
        ours = self.impls.get(OURS)
        if ours is None or not ours.ok:
            why = ours.cell(80) if ours is not None else "not run"
            return f"cupyflash has no result ({why})"
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
