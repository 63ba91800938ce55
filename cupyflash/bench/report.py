"""Turns results into the printed table and the JSON record."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from .flops import config_flops, config_kv_bytes, mean_attended_length
from .results import OURS, is_ours

# 2: each implementation's record has "accuracy" (error, bound, metric,
# rows, naive_error, passed), or null when its output was not checked.
SCHEMA_VERSION = 2


def impl_order(rows) -> list[str]:
    """cupyflash first, then the peers in the order they were run."""
    names = []
    for row in rows:
        for name in row.impls:
            if name not in names:
                names.append(name)
    return sorted(names, key=lambda n: (not is_ours(n), n != OURS))  # ours, our modes, then peers


def _ratio_cell(row) -> str:
    ratio = row.ratio()
    if ratio is not None:
        return f"{ratio:.2f}"
    ours = row.impls.get(OURS)
    return "n/a (cupyflash failed)" if ours is None or not ours.ok else "n/a (no peer)"


def _accuracy_cell(row) -> str:
    """cupyflash's error as a fraction of its bound: <= 1 passes. Every number
    in the table passed its own check; a cell that failed it says so."""
    ours = row.impls.get(OURS)
    if ours is None or ours.accuracy is None:
        return "n/a"
    return f"{ours.accuracy.error / ours.accuracy.bound:.2f}"


def table(rows, cell_width: int = 40, tablefmt: str = "github") -> str:
    """One line per config: throughput of each implementation (only for
    outputs that passed the float64 check), the ratio cupyflash / best peer
    and cupyflash's error / bound. Cells without a number say why."""
    from tabulate import tabulate

    names = impl_order(rows)
    headers = ["config", "unit", *names, "ratio", f"{OURS} err/bound"]
    body = []
    for row in rows:
        cfg = row.config
        cells = [row.impls[n].cell(cell_width) if n in row.impls else "not run"
                 for n in names]
        body.append([f"{cfg.set_name}:{cfg.name}", cfg.metric, *cells,
                     _ratio_cell(row), _accuracy_cell(row)])
    return tabulate(body, headers=headers, tablefmt=tablefmt,
                    disable_numparse=True)


def row_record(row) -> dict:
    cfg = row.config
    best = row.best_peer()
    return {
        "set": cfg.set_name,
        "name": cfg.name,
        "config": asdict(cfg),
        "metric": cfg.metric,
        "flops": config_flops(cfg),
        "kv_bytes": config_kv_bytes(cfg),
        "mean_attended_length": mean_attended_length(
            cfg.seqlen_q, cfg.seqlen_k, cfg.causal),
        "ratio": row.ratio(),
        "best_peer": best.impl if best is not None else None,
        "impls": {name: r.to_json() for name, r in row.impls.items()},
    }


def document(rows, env: dict, settings: dict, complete: bool = True) -> dict:
    """Everything measured, with the environment and the run's settings."""
    return {
        "schema": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "complete": complete,
        "settings": settings,
        "env": env,
        "rows": [row_record(r) for r in rows],
    }


def write_json(doc: dict, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    return path
