"""bench/ options added for the kernel families and precisions, without a GPU:
--backend, cupyflash's float32 modes as extra (never peer) columns, the fp64 set."""

from __future__ import annotations

import pytest

from cupyflash.bench.peers import select_peers


def test_backend_option_reaches_our_peer_and_is_checked():
    from cupyflash.bench.cli import parse_args

    args = parse_args(["--set", "standard", "--backend", "mma", "--list"])
    assert args.backend == "mma"
    ours = [p for p in select_peers(["torch-flash"], args.backend) if p.name == "cupyflash"]
    assert len(ours) == 1 and ours[0].backend == "mma"
    assert parse_args(["--list"]).backend == "auto"
    with pytest.raises(SystemExit):
        parse_args(["--backend", "cudnn", "--list"])


def test_fp32_modes_are_ours_never_peers():
    from cupyflash.bench.peers import FP32_MODES
    from cupyflash.bench.results import ImplResult, RowResult, is_ours

    assert all(is_ours(n) for n in FP32_MODES) and not is_ours("torch-flash")
    names = [p.name for p in select_peers(None, fp32_modes=True)]
    assert names[:3] == ["cupyflash", *FP32_MODES] and len(names) == 9
    assert len(select_peers(None)) == 7
    fields = {f: None for f in ImplResult.__dataclass_fields__}
    fast = ImplResult(**{**fields, "impl": "cupyflash-fp32fast", "status": "ok", "reason": "", "value": 500.0})
    eff = ImplResult(**{**fields, "impl": "torch-efficient", "status": "ok", "reason": "", "value": 46.0})
    ours = ImplResult(**{**fields, "impl": "cupyflash", "status": "ok", "reason": "", "value": 92.0})
    row = RowResult(config=None, impls={"cupyflash": ours, "cupyflash-fp32fast": fast, "torch-efficient": eff})
    assert row.best_peer() is eff and row.ratio() == 2.0


def test_fp64_set_fits_the_math_backend():
    from cupyflash.bench.peers import MAX_SCORE_BYTES
    from cupyflash.bench.shapes import get_set

    rows = get_set("fp64")
    assert rows and all(c.dtype == "fp64" for c in rows)
    assert all(c.batch * c.heads_q * c.seqlen_q * c.seqlen_k * 8 <= MAX_SCORE_BYTES for c in rows)
