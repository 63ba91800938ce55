"""Command line: ``python -m cupyflash.bench``.

Examples::

    python -m cupyflash.bench --quick
    python -m cupyflash.bench --set standard gqa --dtype bf16 --min-ratio 1.0
    python -m cupyflash.bench --set decode --peers torch-flash,torch-cudnn
    python -m cupyflash.bench --set standard --backend mma --peers torch-flash   # issue 4's comparison
    python -m cupyflash.bench --set odd --list        # no GPU needed
    python -m cupyflash.bench --set standard --match 'd64_causal' --list   # a slice of a set

Writes a JSON record (and PNG plots) into ``--out`` and prints the table last.
With ``--min-ratio X`` the exit status is 1 when any row's ratio cupyflash /
best peer is below X, or has no ratio (cupyflash or every peer failed).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import time
from pathlib import Path

from .flops import config_flops, config_kv_bytes
from .peers import PEER_NAMES
from .results import failing_rows
from .shapes import SETS, get_set

DEFAULT_REPEATS = 30
QUICK_REPEATS = 10


def _split(values):
    """Flatten ``["a,b", "c"]`` into ``["a", "b", "c"]``."""
    out = []
    for value in values or ():
        out.extend(part for part in value.split(",") if part)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cupyflash.bench",
        description="Forward-attention throughput of cupyflash against torch "
                    "SDPA backends and JAX, on the GPU torch sees first.")
    p.add_argument("--set", dest="sets", nargs="+", action="extend",
                   metavar="NAME",
                   help=f"shape set(s), space- or comma-separated: "
                        f"{', '.join(SETS)} (default: standard)")
    p.add_argument("--quick", action="store_true",
                   help=f"the 'quick' set (unless --set is given) with "
                        f"--repeats {QUICK_REPEATS} (unless given)")
    p.add_argument("--dtype", metavar="LIST",
                   help="comma-separated, e.g. bf16,fp16: replaces the "
                        "dtypes of every set except fp32")
    p.add_argument("--match", metavar="REGEX",
                   help="keep only the configs whose set:name matches REGEX "
                        "(re.search), e.g. 'd64_causal' or 's1024_.*bf16'")
    p.add_argument("--min-ratio", type=float, metavar="X",
                   help="exit 1 if any row's cupyflash / best-peer ratio is "
                        "below X or missing")
    p.add_argument("--out", default="bench/results", metavar="DIR",
                   help="directory for the JSON and PNG files "
                        "(default: bench/results)")
    p.add_argument("--repeats", type=int, metavar="N",
                   help=f"timed samples per cell (default {DEFAULT_REPEATS})")
    p.add_argument("--warmup", type=int, default=3, metavar="N",
                   help="untimed calls per input set before timing (default 3)")
    p.add_argument("--target-ms", type=float, default=5.0, metavar="MS",
                   help="length of one timed sample; calls per sample are "
                        "chosen to reach it (default 5)")
    p.add_argument("--peers", nargs="+", action="extend", metavar="NAME",
                   help=f"peers to run besides cupyflash (default all): "
                        f"{', '.join(PEER_NAMES[1:])}")
    p.add_argument("--backend", default="auto", metavar="NAME",
                   help="cupyflash's kernel family: auto (default), wgmma, mma "
                        "(the portable sm_80 path, also on Hopper) or simt")
    p.add_argument("--list", action="store_true",
                   help="print the selected configs and exit (no GPU needed)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.sets = _split(args.sets) or (["quick"] if args.quick else ["standard"])
    unknown = [s for s in args.sets if s not in SETS]
    if unknown:
        parser.error(f"unknown --set {unknown}; choose from {list(SETS)}")
    args.dtypes = _split([args.dtype]) if args.dtype else None
    args.peers = _split(args.peers)
    bad_peers = [n for n in args.peers if n not in PEER_NAMES]
    if bad_peers:
        parser.error(f"unknown --peers {bad_peers}; choose from {PEER_NAMES}")
    from .._dispatch import BACKENDS

    if args.backend not in BACKENDS:
        parser.error(f"unknown --backend {args.backend!r}; choose from {list(BACKENDS)}")
    if args.repeats is None:
        args.repeats = QUICK_REPEATS if args.quick else DEFAULT_REPEATS
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats} must be >= 1")
    if args.warmup < 0:
        parser.error(f"--warmup {args.warmup} must be >= 0")
    if args.min_ratio is not None and args.min_ratio <= 0:
        parser.error(f"--min-ratio {args.min_ratio} must be > 0")
    try:
        args.configs = [c for s in args.sets for c in get_set(s, args.dtypes)]
    except ValueError as exc:
        parser.error(str(exc))
    if args.match is not None:
        try:
            pattern = re.compile(args.match)
        except re.error as exc:
            parser.error(f"--match {args.match!r} is not a regular expression: {exc}")
        args.configs = [c for c in args.configs if pattern.search(f"{c.set_name}:{c.name}")]
        if not args.configs:
            parser.error(f"--match {args.match!r} keeps none of the {', '.join(args.sets)} configs")
    return args


def list_configs(configs) -> str:
    from tabulate import tabulate

    body = [[c.set_name, c.name, c.metric,
             f"{config_flops(c) / 1e9:.1f}", f"{config_kv_bytes(c) / 1e6:.1f}"]
            for c in configs]
    return tabulate(body, headers=["set", "config", "unit", "GFLOP", "K+V MB"],
                    tablefmt="github", disable_numparse=True)


def check_min_ratio(rows, min_ratio, stream=None) -> int:
    """0 if every row reaches ``min_ratio``, else 1; names each failing row."""
    stream = stream if stream is not None else sys.stderr
    fails = failing_rows(rows, min_ratio)
    for row, why in fails:
        print(f"FAIL {row.config.set_name}:{row.config.name}: {why}", file=stream)
    if fails:
        print(f"{len(fails)} of {len(rows)} rows below --min-ratio {min_ratio}",
              file=stream)
    return 1 if fails else 0


def write_outputs(rows, args, complete: bool) -> list[Path]:
    from . import env, report

    stem = f"{'-'.join(args.sets)}_{time.strftime('%Y%m%d-%H%M%S')}"
    settings = {k: getattr(args, k) for k in (
        "sets", "dtypes", "match", "repeats", "warmup", "target_ms", "peers", "min_ratio", "backend")}
    doc = report.document(rows, env.collect(), settings, complete=complete)
    paths = [report.write_json(doc, Path(args.out) / f"{stem}.json")]
    if not args.no_plot and rows:
        try:
            from . import plot
            paths += plot.plot(rows, args.out, stem)
        except ImportError as exc:
            print(f"no PNG: matplotlib is not installed ({exc})", file=sys.stderr)
    return paths


def _no_gpu_reason():
    """Inputs are torch CUDA tensors, so the run needs torch and a GPU."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed; it creates the inputs for every implementation"
    import torch

    if not torch.cuda.is_available():
        return "torch sees no CUDA GPU"
    return None


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        print(list_configs(args.configs))
        return 0

    why = _no_gpu_reason()
    if why is not None:
        print(f"python -m cupyflash.bench: {why}", file=sys.stderr)
        return 2

    from . import report
    from .peers import select_peers
    from .progress import Progress
    from .runner import run

    peers = select_peers(args.peers, args.backend, fp32_modes="fp32" in args.sets)
    progress = Progress(len(args.configs) * len(peers))
    rows = []
    complete = False
    try:
        run(args.configs, peers, repeats=args.repeats, warmup=args.warmup,
            target_ms=args.target_ms, progress=progress, rows=rows)
        complete = True
    finally:
        # Also on a crash: what finished is written, marked incomplete.
        progress.close()
        for path in write_outputs(rows, args, complete):
            print(f"wrote {path}", file=sys.stderr)

    status = 0
    if args.min_ratio is not None:
        status = check_min_ratio(rows, args.min_ratio)
    print(report.table(rows))
    return status
