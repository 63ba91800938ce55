"""One key tile of an mma.sync attention kernel, in issue order: how far ahead of
its HMMAs each ldmatrix (LDSM) is issued, where the stall samples fall, and the
instructions per tile by class.

    python bench/tile_order.py ncu_source.csv[.gz] [--min-share 0.9] [--list]
    python bench/tile_order.py kernel.sass --sass [--list]

From ncu's source page (bench/profile_source.sh) the tile is every instruction
executed at least --min-share times as often as the most executed one (a 16-tile
row block with a peeled or guarded first tile runs its tile code 15 or 16 times;
O's conditional rescale, ~2/3 of the tiles, falls out). From cuobjdump's SASS
(--sass; no execution counts, no samples) it is the body of the key loop, the
backward branch with the most HMMAs, with every forward branch inside it that
skips no HMMA, LDSM or LDGSTS taken (the mask and the conditional rescale).

Per GEMM (Q.K^T: HMMAs fed by LDSM.M88, P.V: by LDSM.MT88) it prints:
  lead     per LDSM, the HMMAs issued between it and the first HMMA that reads
           its registers: 0 means the HMMA waits for the full ldmatrix latency.
  ahead    per HMMA, the LDSMs issued before it whose fragments are still unread
           by any HMMA: how many fragments the code buffers.
  samples  (ncu only) the stall reasons of the HMMAs and of the LDSMs, per 10^4
           executions (a kernel with a peeled first tile runs its loop fewer times).
Then (ncu only) the samples by region of the tile: top, Q.K^T, between, P.V,
bottom. Regions follow addresses, so a block placed out of line (FA2's next-K
copy sits ahead of its loop head) counts in the top.
"""

from __future__ import annotations

import argparse
import collections
import csv
import gzip
import re
import statistics
from dataclasses import dataclass, field

TOP_REASONS = 4
# Instruction classes, first match wins (opcode prefixes).
CLASSES = (
    ("HMMA", ("HMMA",)), ("LDSM", ("LDSM",)), ("LDGSTS", ("LDGSTS",)), ("BAR", ("BAR",)),
    ("MUFU", ("MUFU",)), ("FFMA/FMUL/FADD", ("FFMA", "FMUL", "FADD")), ("FMNMX", ("FMNMX",)),
    ("FSEL/FSETP", ("FSEL", "FSETP")), ("F2FP", ("F2FP",)), ("SHFL", ("SHFL",)),
    ("int/addr", ("IADD", "IMAD", "LEA", "SEL", "ISETP", "SHF", "LOP", "UIADD", "UIMAD", "USHF", "ULEA",
                  "MOV", "IABS", "PRMT", "VIADD", "LDC", "ULDC", "S2R", "S2UR", "ISCADD", "UMOV", "ULOP",
                  "USEL", "UISETP", "R2UR", "PLOP3", "P2R", "R2P")),
)
_REG = re.compile(r"\bR(\d+)\b")


@dataclass
class Instr:
    text: str  # without predicate guard
    samples: dict[str, float] = field(default_factory=dict)  # stall reason -> samples (ncu only)
    executed: float = 0.0  # warp-level executions (ncu only)

    @property
    def per_tile(self) -> float:
        """Stall samples per 10^4 executions: comparable across kernels and launches."""
        return 1e4 * sum(self.samples.values()) / self.executed if self.executed else 0.0

    @property
    def op(self) -> str:
        return self.text.split()[0]

    def regs(self) -> list[int]:
        """Register operands in order (destination first); RZ is not matched."""
        return [int(r) for r in _REG.findall(self.text.split(None, 1)[1] if " " in self.text else "")]


def op_class(op: str) -> str:
    for name, prefixes in CLASSES:
        if op.startswith(prefixes):
            return name
    return "other"


def _strip_guard(text: str) -> str:
    words = text.split()
    return " ".join(words[1:] if words and words[0].startswith("@") else words)


def _number(text: str) -> float:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return 0.0


def from_ncu(path: str, min_share: float) -> list[Instr]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        lines = [line for line in f if line.strip()]
    start = next(i for i, line in enumerate(lines) if "Source" in line and "," in line)
    rows = list(csv.DictReader(lines[start:]))
    executed = next(c for c in rows[0] if c.strip().lower() == "instructions executed")
    reasons = [c for c in rows[0] if c.startswith("stall_") and "Not Issued" not in c]
    top = max(_number(r[executed]) for r in rows)
    return [Instr(_strip_guard(r["Source"]), {c.removeprefix("stall_"): _number(r[c]) for c in reasons},
                  _number(r[executed])) for r in rows if _number(r[executed]) >= min_share * top]


_SASS_LINE = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
_TARGET = re.compile(r"\bBRA\b.*?(0x[0-9a-f]+)")


def from_sass(path: str) -> list[Instr]:
    """The steady path through the key loop of the one kernel in a cuobjdump -sass listing."""
    code = []  # (address, text with guard)
    with open(path) as f:
        for line in f:
            m = _SASS_LINE.search(line)
            if m:
                code.append((int(m.group(1), 16), m.group(2)))
    index = {addr: i for i, (addr, _) in enumerate(code)}

    def is_work(text):
        return op_class(_strip_guard(text).split()[0]) in ("HMMA", "LDSM", "LDGSTS")

    loops = []  # (HMMAs inside, head index, back-branch index)
    for i, (addr, text) in enumerate(code):
        m = _TARGET.search(text)
        if m and int(m.group(1), 16) < addr:
            head = index[int(m.group(1), 16)]
            loops.append((sum("HMMA" in t for _, t in code[head:i]), head, i))
    if not loops:
        raise SystemExit(f"{path}: no backward branch (cuobjdump -sass output, with its /*address*/ comments?)")
    _, head, back = max(loops)
    path, i = [], head
    while i <= back:  # the back branch included: it issues every tile
        text = code[i][1]
        path.append(Instr(_strip_guard(text)))
        m = _TARGET.search(text)
        if m and text.startswith("@"):
            target = index[int(m.group(1), 16)]
            if i < target <= back and not any(is_work(t) for _, t in code[i + 1:target]):
                i = target
                continue
        i += 1
    return path


def analyse(tile: list[Instr], listing: bool) -> None:
    have_samples = any(ins.samples for ins in tile)
    total = sum(ins.per_tile for ins in tile)
    counts = collections.Counter(op_class(ins.op) for ins in tile)
    print(f"{len(tile)} instructions per tile: " + ", ".join(f"{c} {n}" for c, n in counts.most_common()))
    writer = {}  # register -> index of the LDSM that last wrote it
    ldsm_kind, first_use = {}, {}  # LDSM index -> "QK"/"PV"; -> index of the first HMMA reading it
    hmma_kind, hmma_at = {}, []
    for i, ins in enumerate(tile):
        if ins.op.startswith("LDSM"):
            d = ins.regs()[0]
            for r in range(d, d + 4):
                writer[r] = i
            ldsm_kind[i] = "PV" if ".MT88" in ins.op else "QK"
        elif ins.op.startswith("HMMA"):
            regs = ins.regs()
            # HMMA.16816 D, A (4 registers), B (2), C: the fragments read are A and B.
            sources = {writer.get(r) for r in (*range(regs[1], regs[1] + 4), regs[2], regs[2] + 1)} - {None}
            for s in sources:
                first_use.setdefault(s, i)
            kinds = {ldsm_kind[s] for s in sources}
            hmma_kind[i] = "PV" if "PV" in kinds else "QK" if kinds else "?"
            hmma_at.append(i)
        else:
            # a non-LDSM write ends the LDSM's ownership of that register
            regs = ins.regs()
            if regs and not ins.op.startswith(("ST", "LDGSTS", "BAR", "BRA", "SHFL")):
                writer.pop(regs[0], None)

    def hmmas_between(a, b):
        return sum(1 for h in hmma_at if a < h < b)

    for kind, name in (("QK", "Q.K^T"), ("PV", "P.V")):
        loads = sorted(i for i, k in ldsm_kind.items() if k == kind)
        hmmas = [i for i in hmma_at if hmma_kind[i] == kind]
        if not hmmas:
            continue
        leads = [hmmas_between(i, first_use[i]) for i in loads if i in first_use]
        before_first = sum(1 for i in loads if i < hmmas[0])
        ahead = []
        for h in hmmas:
            ahead.append(sum(1 for i in loads if i < h and first_use.get(i, h + 1) >= h))
        print(f"\n{name}: {len(hmmas)} HMMA, {len(loads)} LDSM; {before_first} LDSM before its first HMMA")
        print(f"  lead (HMMAs between an LDSM and its first reader): median {statistics.median(leads):.0f}, "
              f"min {min(leads)}, max {max(leads)}; {sum(x == 0 for x in leads)} of {len(leads)} at 0, "
              f"{sum(x <= 1 for x in leads)} at <= 1")
        print(f"  ahead (unread LDSMs at each HMMA): mean {statistics.mean(ahead):.1f}, "
              f"min {min(ahead)}, max {max(ahead)}")
        span = range(min(loads + hmmas), max(loads + hmmas) + 1)
        print(f"  span: {len(span)} instructions, {sum(1 for i in span if tile[i].op.startswith('HMMA'))} HMMA, "
              f"{sum(1 for i in span if op_class(tile[i].op) not in ('HMMA', 'LDSM'))} others")
        if have_samples:
            for label, idx in (("HMMA", hmmas), ("LDSM", loads)):
                got = collections.Counter()
                for i in idx:
                    got.update({r: 1e4 * v / tile[i].executed for r, v in tile[i].samples.items()})
                n = sum(got.values())
                print(f"  {label} samples per 10^4 tiles {n:.0f} ({n / total:.1%} of the tile): " +
                      ", ".join(f"{r} {v:.0f}" for r, v in got.most_common(TOP_REASONS)))
    print_regions(tile, ldsm_kind, hmma_kind, have_samples)
    if listing:
        print()
        for i, ins in enumerate(tile):
            mark = hmma_kind.get(i, ldsm_kind.get(i, ""))
            why = " ".join(f"{r}:{v:.0f}" for r, v in sorted(ins.samples.items(), key=lambda kv: -kv[1])[:2] if v)
            print(f"{i:4d} {mark:2s} {ins.text[:64]:64s} {why}")


def print_regions(tile, ldsm_kind, hmma_kind, have_samples):
    """The tile's five regions: the top (barrier, copies), the Q.K^T span, between the
    GEMMs (softmax, barrier, copies), the P.V span (FA2 interleaves its softmax there)
    and the bottom; their instructions and (ncu) stall samples per tile execution."""
    spans = {}
    for kind in ("QK", "PV"):
        idx = [i for i, k in (*ldsm_kind.items(), *hmma_kind.items()) if k == kind]
        spans[kind] = (min(idx), max(idx) + 1)
    bounds = [("top", 0, spans["QK"][0]), ("Q.K^T", *spans["QK"]), ("between", spans["QK"][1], spans["PV"][0]),
              ("P.V", *spans["PV"]), ("bottom", spans["PV"][1], len(tile))]
    total = sum(ins.per_tile for ins in tile)
    print("\nregions" + (f", stall samples per 10^4 executions of the tile: {total:.0f}" if have_samples else ""))
    for name, a, b in bounds:
        classes = collections.Counter(op_class(ins.op) for ins in tile[a:b])
        line = f"  {name:8s} {b - a:4d} instr "
        if have_samples:
            got = collections.Counter()
            for ins in tile[a:b]:
                got.update({r: 1e4 * v / ins.executed for r, v in ins.samples.items()})
            n = sum(got.values())
            line += (f"{n:6.0f} ({n / total:5.1%}): " +
                     ", ".join(f"{r} {v:.0f}" for r, v in got.most_common(TOP_REASONS)) + "  ")
        print(line + "[" + ", ".join(f"{c} {k}" for c, k in classes.most_common(5)) + "]")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--sass", action="store_true", help="the path is cuobjdump -sass output")
    ap.add_argument("--min-share", type=float, default=0.9)
    ap.add_argument("--list", action="store_true", help="print the tile, one instruction a line")
    args = ap.parse_args()
    analyse(from_sass(args.path) if args.sass else from_ncu(args.path, args.min_share), args.list)


if __name__ == "__main__":
    main()
