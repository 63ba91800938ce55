"""Where the bench's ratios and the kernel-only A/B's part: one row, five ways.

    python bench/gap_probe.py [--dims 64,128,256] [--seqlens 1024,2048,4096] [--dtype bf16] [--sustain 3 [--causal]]

The bench (``python -m cupyflash.bench``) times back-to-back public calls; the A/B
(bench/ab_auto.py) times one kernel launch after a sleep kernel. At s1024-2048 the
bench read us 3-6 % lower against cuDNN than the A/B did (bench/notes/full_bench.md,
"Full bench v3.6"). Per row, in interleaved rounds (floor.interleaved_ms):
- ``ours_1`` / ``peer_1``: one launch after a sleep (the A/B's number);
- ``ours_n`` / ``peer_n``: ``--calls`` launches back to back after a sleep, per call
  (the GPU never waits on the host; consecutive kernels meet each other's tails);
- ``api_n``: the same through ``cupyflash.attention`` on the torch tensors (the bench's path).
If ``ours_n / peer_n`` drops below ``ours_1 / peer_1`` the difference is on the GPU
(launch gaps, tails, clocks under sustained load); if ``api_n`` is slower than
``ours_n`` it is the host path.
"""

from __future__ import annotations

import statistics
import time

import torch

import cupyflash
from ab_auto import launcher  # bench/ is on sys.path as a script
from floor import SWEEP_DTYPES, gpu_ms, sdpa, sweep_args, sweep_inputs

ROUNDS = 7
REPEATS = 5
CALLS = 20  # back-to-back calls per sample of ours_n, api_n, peer_n


def sustained(name: str, fn, seconds: float) -> None:
    """Calls of ``fn`` back to back for ``seconds``; prints the wall-clock span and the
    per-call GPU ms of the last quarter (in batches of 10 calls between events)."""
    start = time.time()
    tail = []
    while time.time() - start < seconds:
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(10):
            fn()
        b.record()
        b.synchronize()
        if time.time() - start > 0.75 * seconds:
            tail.append(a.elapsed_time(b) / 10)
    print(f"  {name:8s} {start:.1f} .. {time.time():.1f}  last quarter {statistics.median(tail):.4f} ms per call",
          flush=True)


def main() -> None:
    args = sweep_args(__doc__, seqlens="1024,2048,4096",
                      flags=(("--causal", "sustained runs under a causal mask (the table has both)"),),
                      numbers=(("--sustain", 0.0, "seconds per sustained run (0: the five-way table)"),))
    calls = CALLS
    if args.sustain:
        for d in args.dims:
            for s in args.seqlens:
                _, _, (q, k, v), _, _ = sweep_inputs(d, s, SWEEP_DTYPES[args.dtype][0])
                qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
                causal = args.causal
                print(f"d={d} s={s} {'causal' if causal else 'full'}", flush=True)
                for _ in range(2):
                    sustained("ours", lambda: cupyflash.attention(q, k, v, causal=causal), args.sustain)
                    sustained("cudnn", lambda: sdpa("cudnn", qt, kt, vt, causal), args.sustain)
        return
    torch_dtype, _ = SWEEP_DTYPES[args.dtype]
    print(f"{'row':24s} {'ours_1':>7s} {'peer_1':>7s} {'ratio_1':>7s} {'ours_n':>7s} {'api_n':>7s} "
          f"{'peer_n':>7s} {'ratio_n':>7s} {'api/peer':>8s}  (ms per call, cuDNN peer)", flush=True)
    for d in args.dims:
        for s in args.seqlens:
            _, _, (q, k, v), bufs, stream = sweep_inputs(d, s, torch_dtype)
            qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
            for causal in (False, True):
                kernel, _ = launcher(cupyflash, q, k, v, bufs, stream, causal, "auto")
                runs = {
                    "ours_1": lambda: gpu_ms(kernel, repeats=REPEATS),
                    "peer_1": lambda: gpu_ms(lambda: sdpa("cudnn", qt, kt, vt, causal), repeats=REPEATS),
                    "ours_n": lambda: gpu_ms(kernel, repeats=REPEATS, calls=calls),
                    "api_n": lambda: gpu_ms(lambda: cupyflash.attention(q, k, v, causal=causal), repeats=REPEATS,
                                                   calls=calls),
                    "peer_n": lambda: gpu_ms(lambda: sdpa("cudnn", qt, kt, vt, causal), repeats=REPEATS, calls=calls),
                }
                samples = {name: [] for name in runs}
                for _ in range(ROUNDS):
                    for name, run in runs.items():
                        samples[name].append(run())
                m = {name: statistics.median(ts) for name, ts in samples.items()}
                print(f"d={d} s={s} {'causal' if causal else 'full':6s}   {m['ours_1']:7.4f} {m['peer_1']:7.4f} "
                      f"{m['peer_1'] / m['ours_1']:7.3f} {m['ours_n']:7.4f} {m['api_n']:7.4f} {m['peer_n']:7.4f} "
                      f"{m['peer_n'] / m['ours_n']:7.3f} {m['peer_n'] / m['api_n']:8.3f}", flush=True)


if __name__ == "__main__":
    main()
