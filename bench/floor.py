"""Quick same-run comparison for one shape: cupyflash vs torch SDPA backends.
Used by bench/device_run.sh; the full instrument is ``python -m cupyflash.bench``.

    python bench/floor.py [--dtype bf16] [--seqlen 4096] [--head-dim 128] [--backend auto]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics

import cupy as cp
import torch

from cupyflash import _dispatch, api
from cupyflash._arrays import _cupy_buffer
from cupyflash._spec import simt_spec
from torch.nn.attention import SDPBackend, sdpa_kernel

import cupyflash


# torch SDPA's backends, by the names the sweeps and A/Bs use for them.
SDPA_BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
                 "efficient": SDPBackend.EFFICIENT_ATTENTION}


def sdpa(backend: str, qt, kt, vt, causal: bool):
    """torch SDPA forced to one backend (SDPA_BACKENDS), on bhsd tensors (GQA when
    k and v have fewer heads than q)."""
    with sdpa_kernel(SDPA_BACKENDS[backend]):
        return torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=causal,
                                                                enable_gqa=kt.shape[1] != qt.shape[1])


def time_ms(fn, warmup=5, repeats=30, inner=10):
    """Median per-call time; each sample times ``inner`` back-to-back calls so
    that host-side launch cost overlaps the GPU work, as in a real pipeline."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(inner):
            fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / inner)
    return statistics.median(times)


# GPU cycles of torch.cuda._sleep queued ahead of each single-call sample: ~1 ms,
# longer than any contender's host path (cupyflash's ~0.12 ms, bench/notes/full_bench.md).
HOST_SHADOW_CYCLES = 2_000_000


def gpu_ms(fn, warmup=2, repeats=10, calls=1):
    """Median GPU time per call of ``calls`` back-to-back calls of ``fn`` (one by
    default), without their host-side cost: each sample queues a sleep kernel
    first, long enough for the host to queue the calls, so the GPU is still busy
    when the host records the start event and launches them, and they start right
    after the event. (Timing a single call on an idle GPU counts the host's
    launch path too: ~0.1 ms on a 0.25 ms kernel at seqlen 1024, and its jitter
    was most of the +-8 % per-point noise of the first interleaved A/Bs.)"""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda._sleep(HOST_SHADOW_CYCLES * max(1, calls // 4))
        a.record()
        for _ in range(calls):
            fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / calls)
    return statistics.median(times)


def back_to_back_ms(fn, calls: int, repeats: int = 5, lead: int = 1) -> float:
    """Median GPU ms per call of ``calls`` - 1 back-to-back calls, timed from the end
    of ``lead`` untimed ones: the host queues the rest while those run (a call's host
    path, ~0.05 ms, is shorter than any kernel timed here), so the GPU never waits and
    never idles inside a sample, and samples follow one another with only a
    synchronise between them. Run for seconds, that holds an H100 at its power cap
    (~690 W, SM clock ~1.6-1.8 GHz, as in the bench) where gpu_ms's single calls after
    a sleep meet the boost clock. Under the cap the clock lags the power drawn, so a
    sample's first milliseconds run at the clock its predecessor left: the lead-in,
    the contender's own calls, lets the clock settle to its own draw first
    (bench/notes/full_bench.md, "The bench's clocks")."""
    fn()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        for _ in range(lead):
            fn()
        a.record()
        for _ in range(calls - 1):
            fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / (calls - 1))
    return statistics.median(times)


HOT_HELP = "time back-to-back calls at the power cap (floor.back_to_back_ms), as the bench meets them"
# The hot regime (--hot): samples of HOT_CALLS back-to-back calls, HOT_REPEATS per round.
HOT_CALLS = 21
HOT_REPEATS = 3
HOT_LEAD = 20  # untimed calls ahead of each sample (back_to_back_ms)
HOT_SEED = 0  # the rounds' contender orders are shuffled, reproducibly
_REGIME = {"hot": False}


def set_hot(hot: bool) -> None:
    """Time every later interleaved_ms in the hot regime (back_to_back_ms) or not (gpu_ms)."""
    _REGIME["hot"] = hot


def interleaved_ms(runs, rounds=7, repeats=10):
    """Median GPU ms per call of each of ``runs`` (name -> no-argument call), timed
    in interleaved rounds (a, b, c, a, b, c, ...; ``repeats`` single-call samples
    per contender per round, host cost excluded: gpu_ms): clock and power drift
    over a sweep then moves every contender alike instead of favouring whichever
    ran first. After set_hot(True), samples are back_to_back_ms's instead. At seqlen <= 2048 a call lasts ~0.1 ms and back-to-back sweeps
    differed by up to 20 % per variant (bench/notes/wgmma.md, "wgmma epilogue
    through shared memory")."""
    samples = {name: [] for name in runs}
    order = list(runs)
    shuffle = random.Random(HOT_SEED).shuffle
    for _ in range(rounds):
        if _REGIME["hot"]:
            shuffle(order)  # no contender always follows the same one (its clock's predecessor)
        for name in order:
            fn = runs[name]
            if _REGIME["hot"]:
                samples[name].append(back_to_back_ms(fn, HOT_CALLS, HOT_REPEATS, HOT_LEAD))
            else:
                samples[name].append(gpu_ms(fn, warmup=2, repeats=repeats))
    return {name: statistics.median(ts) for name, ts in samples.items()}


def load_trees(paths):
    """name -> package for each ``ab_NAME`` directory holding a cupyflash tree
    renamed ``cupyflash_NAME`` (bench/device_ab.sh), loaded side by side in this process."""
    import importlib
    import sys
    from pathlib import Path

    trees = {}
    for path in paths:
        name = Path(path).name.removeprefix("ab_")
        sys.path.insert(0, str(path))
        trees[name] = importlib.import_module(f"cupyflash_{name}")
    return trees


SWEEP_DTYPES = {"bf16": (torch.bfloat16, "bfloat16"), "fp16": (torch.float16, "float16")}


def sweep_args(doc: str, seqlens: str = "1024,4096", dims: str = "64,128,256", dtypes: bool = True,
               flags: tuple[tuple[str, str], ...] = (), numbers: tuple[tuple[str, float, str], ...] = (),
               texts: tuple[tuple[str, str], ...] = ()):
    """The sweeps' shared command line: --seqlens, --dims, (16-bit sweeps) --dtype,
    and a sweep's own on/off ``flags`` ((name, help) pairs), float options
    ``numbers`` ((name, default, help)) and string options ``texts`` ((name, help), default "")."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--seqlens", default=seqlens)
    ap.add_argument("--dims", default=dims)
    for name, help_text in flags:
        ap.add_argument(name, action="store_true", help=help_text)
    for name, default, help_text in numbers:
        ap.add_argument(name, type=float, default=default, help=help_text)
    for name, help_text in texts:
        ap.add_argument(name, default="", help=help_text)
    ap.add_argument("--hot", action="store_true", help=HOT_HELP)
    if dtypes:
        ap.add_argument("--dtype", default="bf16", choices=sorted(SWEEP_DTYPES))
    args = ap.parse_args()
    set_hot(args.hot)
    args.seqlens = [int(x) for x in args.seqlens.split(",")]
    args.dims = [int(x) for x in args.dims.split(",")]
    if dtypes:
        args.torch_dtype, args.dtype_name = SWEEP_DTYPES[args.dtype]
    return args


def check_output(run, out, ref, bound, label):
    """One call of ``run`` into ``out`` (poisoned with NaN first) and its relative
    L2 error against ``ref`` (printed as WRONG past ``bound``). The sweeps check
    every contender this way first, then time them all with ``interleaved_ms``."""
    import cupy as cp

    out.fill(float("nan"))
    run()
    rel = float(cp.linalg.norm(out - ref) / cp.linalg.norm(ref))
    if not rel <= bound:
        print(f"  WRONG: {label} rel err {rel:.3e} > {bound}", flush=True)
    return rel


def summary_line(row, peer: str, cands, table, extra=()) -> str:
    """One printed line of a checked sweep: the peer, ``extra`` columns, each
    candidate, the best one's ratio to the peer, the table's entry, the worst error."""
    best = max(cands, key=lambda n: row[n])
    cols = [peer, *extra, *cands]
    return (f"d={row['d']} s={row['s']} causal={row['causal']!s:5} " + "  ".join(f"{n}={row[n]:6.2f}" for n in cols)
            + f"  best={best} vs {peer}={row[best] / row[peer]:.2f}  table={table}"
            + f"  max_err={max(row[n + '_err'] for n in (*extra, *cands)):.1e}")


def write_results(results, filename):
    """A sweep's rows as JSON under $OUT (the device run's folder), else here."""
    with open(os.path.join(os.environ.get("OUT", "."), filename), "w") as f:
        json.dump(results, f, indent=1)


def fp32_rows(args):
    """The fp32 sweeps' rows (bench/tune_split.py, bench/ab_tf32.py): for each head dim,
    seqlen and mask of ``args``, yields (row dict, flops, problem, bufs = [q, k, v, out]
    DeviceBuffers, stream, out, exact, runs), where ``exact`` holds the exact CUDA-core
    kernel's output and ``runs`` starts with torch SDPA's call ("efficient" once the
    caller selects that backend). The bench's shapes: batch 16384 / s, heads 2048 / d."""
    for d in args.dims:
        for s in args.seqlens:
            b, h = max(16384 // s, 1), 2048 // d
            q, k, v = (torch.randn(b, s, h, d, device="cuda", dtype=torch.float32) for _ in range(3))
            out, exact = (cp.empty((b, s, h, d), dtype=cp.float32) for _ in range(2))
            ins = [_cupy_buffer(cp.from_dlpack(t)) for t in (q, k, v)]
            bufs = [*ins, _cupy_buffer(out)]
            stream = cp.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream)
            qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
            for causal in (False, True):
                flops = 4 * b * h * d * (s * (s + 1) / 2 if causal else s * s)
                _, problem = api._validate(*(x.owner for x in ins), causal, "bottom_right", None, "bshd")
                api._run(_dispatch.plan_for_spec(problem, simt_spec("float32", d), 90), problem, *ins,
                         _cupy_buffer(exact), None, stream, 0)
                runs = {"efficient": lambda causal=causal: torch.nn.functional.scaled_dot_product_attention(
                    qt, kt, vt, is_causal=causal)}
                yield {"d": d, "s": s, "causal": causal}, flops, problem, bufs, stream, out, exact, runs


def sweep_inputs(d, s, torch_dtype, heads=None):
    """The FlashAttention papers' shape for (head dim d, seqlen s): batch = 16384 / s,
    heads = 2048 / d, or ``heads`` = (query heads, KV heads) for GQA rows. Returns (b,
    query heads, (q, k, v) torch tensors, [q, k, v, out] as cupyflash DeviceBuffers over
    the same memory, torch's current stream for CuPy)."""
    import cupy as cp

    from cupyflash._arrays import _cupy_buffer

    b = max(16384 // s, 1)
    h, h_kv = heads or (2048 // d, 2048 // d)
    q = torch.randn(b, s, h, d, device="cuda", dtype=torch_dtype)
    k, v = (torch.randn(b, s, h_kv, d, device="cuda", dtype=torch_dtype) for _ in range(2))
    arrays = [cp.from_dlpack(x) for x in (q, k, v)]
    arrays.append(cp.empty_like(arrays[0]))
    bufs = [_cupy_buffer(x) for x in arrays]
    stream = cp.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream)
    return b, h, (q, k, v), bufs, stream


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--seqlen", type=int, default=4096)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args()
    dt = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    s, d = args.seqlen, args.head_dim
    b, h = max(16384 // s, 1), 2048 // d
    q, k, v = (torch.randn(b, s, h, d, device="cuda", dtype=dt) for _ in range(3))
    rows = []
    for causal in (False, True):
        flops = 4 * b * h * d * (s * (s + 1) / 2 if causal else s * s)
        res = {"cupyflash": time_ms(lambda: cupyflash.attention(q, k, v, causal=causal, backend=args.backend))}
        qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
        for name in SDPA_BACKENDS:
            try:
                res[name] = time_ms(lambda: sdpa(name, qt, kt, vt, causal))
            except RuntimeError as exc:
                res[name] = float("nan")
                print(f"{name}: rejected: {str(exc).splitlines()[0]}")
        tf = {k_: flops / (ms * 1e-3) / 1e12 for k_, ms in res.items()}
        rows.append((causal, tf))
    print(f"\n{torch.cuda.get_device_name()}  {args.dtype} b={b} h={h} s={s} d={d} backend={args.backend}  TFLOP/s (median of 30)")
    for causal, tf in rows:
        line = "  ".join(f"{k_}={v_:.1f}" for k_, v_ in tf.items())
        print(f"causal={causal!s:5}  {line}  ratio_vs_flash={tf['cupyflash'] / tf['flash']:.2f}")


if __name__ == "__main__":
    main()
