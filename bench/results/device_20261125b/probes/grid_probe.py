"""d64 causal (bench shapes), the dispatched persistent walk-table kernel at several grid sizes
(sm_count given to the plan), kernel-only, interleaved with cuDNN; boost (gpu_ms) and hot regimes.
If one SM is slow or taken on some machines, a static walk over all 132 waits for it."""
import sys, torch, cupy as cp
sys.path.insert(0, "bench")
from cupyflash import _dispatch, api
from floor import interleaved_ms, sweep_inputs, set_hot, sdpa
for s in [int(x) for x in sys.argv[1].split(",")]:
    d = 64
    b, h, (q, k, v), bufs, stream = sweep_inputs(d, s, torch.bfloat16)
    qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
    _, problem = api._validate(*(x.owner for x in bufs[:3]), True, "bottom_right", None, "bshd")
    flops = 4 * b * h * d * s * (s + 1) / 2
    runs = {"cudnn": lambda: sdpa("cudnn", qt, kt, vt, True)}
    for sm in (132, 131, 130, 128, 124):
        plan = _dispatch.plan(problem, 90, "auto", {n: 0 for n in ("q", "k", "v", "out")}, sm)
        runs[f"g{plan.grid[0]}"] = (lambda plan=plan: api._run(plan, problem, *bufs, None, stream, 0))
    ref = runs["cudnn"]().transpose(1, 2).float()
    out = torch.from_dlpack(bufs[3].owner)
    for n, f in runs.items():
        if n == "cudnn": continue
        out.fill_(float("nan")); f(); err = float((out.float() - ref).norm() / ref.norm())
        assert err < 2e-2, (n, err)
    for hot in (False, True):
        set_hot(hot)
        ms = interleaved_ms(runs)
        print(f"d64 causal s{s} {'hot  ' if hot else 'boost'} " + " ".join(
            f"{n}={flops / t / 1e9:6.1f}({ms['cudnn'] / t:.3f})" for n, t in ms.items()), flush=True)
