"""Throughput-versus-length plots (matplotlib, Agg backend).

One PNG per (shape set, dtype). Inside it, one panel per (head_dim, causal,
GQA group) combination, one line per implementation, throughput against
seqlen_k on a log2 axis. Sets where no panel has two lengths (``gqa``) get no
plot: a line through one point says nothing.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from .report import impl_order


def _panel_key(cfg):
    return (cfg.head_dim, cfg.head_dim_v, cfg.causal, cfg.heads_q // cfg.heads_kv)


def _panel_title(key) -> str:
    d, dv, causal, group = key
    parts = [f"d={d}" if d == dv else f"d={d}, dv={dv}",
             "causal" if causal else "non-causal"]
    if group > 1:
        parts.append(f"{group} q heads per kv head")
    return ", ".join(parts)


def groups(rows):
    """{(set, dtype, kind): {panel key: [rows]}} for the groups worth plotting."""
    out = defaultdict(lambda: defaultdict(list))
    for row in rows:
        cfg = row.config
        out[(cfg.set_name, cfg.dtype, cfg.kind)][_panel_key(cfg)].append(row)
    return {
        gkey: panels for gkey, panels in out.items()
        if any(len({r.config.seqlen_k for r in rs}) >= 2 for rs in panels.values())
    }


def plot(rows, out_dir, stem: str) -> list[Path]:
    """Write the PNGs; returns their paths. Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = impl_order(rows)
    # One colour per implementation in every panel, even where some are missing.
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colour = {name: cycle[i % len(cycle)] for i, name in enumerate(names)}
    paths = []
    for (set_name, dtype, kind), panels in sorted(groups(rows).items()):
        keys = sorted(panels)
        ncols = min(3, len(keys))
        nrows = math.ceil(len(keys) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.8 * nrows),
                                 squeeze=False)
        metric = panels[keys[0]][0].config.metric
        for ax, key in zip(axes.flat, keys):
            panel_rows = sorted(panels[key], key=lambda r: r.config.seqlen_k)
            for name in names:
                pts = [(r.config.seqlen_k, r.impls[name].value)
                       for r in panel_rows if name in r.impls and r.impls[name].ok]
                if pts:
                    xs, ys = zip(*pts)
                    ax.plot(xs, ys, marker="o", label=name, color=colour[name],
                            linewidth=2.5 if name == names[0] else 1.2)
            ax.set_xscale("log", base=2)
            ax.set_ylim(bottom=0)
            ax.set_title(_panel_title(key), fontsize=10)
            ax.set_xlabel("seqlen_k")
            ax.set_ylabel(metric)
            ax.grid(True, alpha=0.3)
        for ax in list(axes.flat)[len(keys):]:
            ax.set_visible(False)
        handles, labels = [], []
        for ax in axes.flat:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        if handles:
            fig.legend(handles, labels, loc="lower center",
                       ncol=min(len(labels), 4), frameon=False)
        fig.suptitle(f"{set_name} ({kind}, {dtype})")
        fig.tight_layout(rect=(0, 0.08, 1, 0.95))
        path = out_dir / f"{stem}_{set_name}_{dtype}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
