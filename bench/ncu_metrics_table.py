"""Side-by-side table of selected ncu raw metrics from several one-kernel reports
(bench/profile_metrics.sh writes them with ``ncu -i REP --page raw --csv``).

    python bench/ncu_metrics_table.py NAME=metrics_NAME.csv [NAME=...]

Rows: the metrics that name where a kernel's time goes (duration, cycles,
instructions issued per pipe, issue activity, tensor-pipe activity, warp stalls);
each column one report. A metric missing from a report prints as '-'.
"""

from __future__ import annotations

import csv
import re
import sys

# Which raw metrics to show, by name pattern, in this order.
PATTERNS = [
    r"Kernel Name",
    r"gpu__time_duration\.sum",
    r"sm__cycles_elapsed\.avg\.per_second",
    r"launch__registers_per_thread",
    r"launch__grid_size",
    r"smsp__inst_executed\.sum",
    r"sm__inst_executed_pipe_[a-z_]+\.sum$",
    r"smsp__issue_active\.avg\.pct_of_peak_sustained_active",
    r"sm__pipe_[a-z_]+_cycles_active\.avg\.pct_of_peak_sustained_active",
    r"sm__inst_executed_pipe_[a-z_]+\.avg\.pct_of_peak_sustained_active",
    r"dram__throughput\.avg\.pct_of_peak_sustained_elapsed",
    r"lts__t_sector_hit_rate\.pct",
    r"smsp__average_warp_latency_issue_stalled_[a-z_]+\.ratio",
    r"smsp__average_warps_issue_stalled_[a-z_]+_per_issue_active\.ratio",
]


def read_report(path: str) -> dict[str, str]:
    """The kernel row of a one-kernel ncu raw-page CSV (the names, then a row of
    units, then the kernel: the last row)."""
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    header = next(i for i, r in enumerate(rows) if "Kernel Name" in r)
    names, values = rows[header], rows[-1]
    return dict(zip(names, values))


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    reports = {}
    for arg in argv:
        name, _, path = arg.partition("=")
        try:
            reports[name] = read_report(path)
        except (OSError, StopIteration, IndexError) as err:
            print(f"{name}: unreadable report {path} ({err!r})")
    if not reports:
        return 1
    keys: list[str] = []
    for pattern in PATTERNS:
        rx = re.compile(pattern)
        for rep in reports.values():
            for key in rep:
                if rx.fullmatch(key) and key not in keys:
                    keys.append(key)
    width = max(len(k) for k in keys)
    print(f"{'metric':<{width}} " + " ".join(f"{n:>16}" for n in reports))
    for key in keys:
        cells = [rep.get(key, "-") for rep in reports.values()]
        if key != "Kernel Name" and all(c in ("-", "0", "0.00", "") for c in cells):
            continue
        cells = [c[:16] for c in cells]
        print(f"{key:<{width}} " + " ".join(f"{c:>16}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
