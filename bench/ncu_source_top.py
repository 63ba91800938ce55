"""Summarise ncu's source page (SASS, CSV) of one kernel: the instructions with
the most warp-stall samples, each with its main stall reasons, and the samples
per opcode. Column names differ across ncu versions, so they are looked up by
substring and printed first.

    python bench/ncu_source_top.py ncu_source.csv [--top 40] [--groups 14]

--groups also sums the samples over instructions that ran equally often (per-tile
code, per-item code, once per CTA ...), the split that says what an item's
fixed cost is against a key tile's.
"""

from __future__ import annotations

import argparse
import collections
import csv
import sys

TOP_REASONS = 3


def number(text: str) -> float:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--groups", type=int, default=14, help="execution-count groups to print (0: none)")
    args = ap.parse_args()
    with open(args.csv, newline="") as f:
        lines = [line for line in f if line.strip()]
    # ncu may print a banner before the table: start at the header row.
    start = next((i for i, line in enumerate(lines) if "Source" in line and "," in line), 0)
    rows = list(csv.DictReader(lines[start:]))
    if not rows:
        sys.exit(f"no rows in {args.csv}: {lines[:3]}")
    cols = list(rows[0])
    print("columns:", " | ".join(cols))
    source = next(c for c in cols if c.strip().lower() == "source")
    address = next((c for c in cols if "address" in c.lower()), None)
    total = next((c for c in cols if "stall sampling (all" in c.lower()), None)
    reasons = [c for c in cols if c.lower().startswith("stall_") or "stalled_" in c.lower()]
    if total is None:
        sys.exit("no 'Warp Stall Sampling (All Samples)' column")
    all_samples = sum(number(r[total]) for r in rows)
    print(f"{len(rows)} instructions, {all_samples:.0f} samples")
    by_op = collections.Counter()
    for r in rows:
        by_op[opcode(r[source])] += number(r[total])
    print("samples by opcode:", ", ".join(f"{op} {n / all_samples:.1%}" for op, n in by_op.most_common(12)))
    executed = next((c for c in cols if c.strip().lower() == "instructions executed"), None)
    if executed and args.groups:
        print_groups(rows, source, total, executed, all_samples, args.groups)
    ranked = sorted(rows, key=lambda r: -number(r[total]))[:args.top]
    for r in ranked:
        top = sorted(((number(r[c]), c) for c in reasons), reverse=True)[:TOP_REASONS]
        why = ", ".join(f"{c.split('_', 1)[-1]} {n:.0f}" for n, c in top if n)
        where = r[address] if address else ""
        print(f"{number(r[total]) / all_samples:6.1%} {where:>8} {r[source][:60]:60s} {why}")


def opcode(text: str) -> str:
    words = text.split()
    if words and words[0].startswith("@"):  # a predicate guard, not the opcode
        words = words[1:]
    return words[0] if words else "?"


def print_groups(rows, source, total, executed, all_samples, n_groups):
    """Samples summed per execution count (warp-level): the heaviest groups, each
    with its instruction count and its three heaviest opcodes."""
    groups = collections.defaultdict(list)
    for r in rows:
        groups[number(r[executed])].append(r)
    ranked = sorted(groups.items(), key=lambda kv: -sum(number(r[total]) for r in kv[1]))[:n_groups]
    print("samples by execution count (executions: share, instructions, heaviest opcodes):")
    for count, members in ranked:
        share = sum(number(r[total]) for r in members) / all_samples
        ops = collections.Counter()
        for r in members:
            ops[opcode(r[source])] += number(r[total])
        heavy = ", ".join(f"{op} {n / all_samples:.1%}" for op, n in ops.most_common(3))
        print(f"  {count:>12.0f}: {share:6.1%} {len(members):5d} instr  {heavy}")


if __name__ == "__main__":
    main()
