"""Why the bench reads d64 causal s512-2048 lower than the kernel-only A/B: the bench's own Sampler
on the whole call, on the kernel alone, and on the whole call with long samples, against cuDNN,
interleaved as the runner does; plus the host's enqueue cost per call with the GPU kept busy."""
import sys, time, statistics, torch, cupy as cp
sys.path.insert(0, "bench")
import cupyflash
from cupyflash.bench.timing import Sampler
from cupyflash.bench.runner import round_order, make_inputs
from cupyflash.bench.shapes import get_set
from cupyflash._arrays import _cupy_buffer
from ab_auto import launcher
from torch.nn.attention import sdpa_kernel, SDPBackend

def host_us(f, n=100):
    f(); torch.cuda.synchronize()
    torch.cuda._sleep(400_000_000)  # ~0.2 s of GPU time: the host never waits on the queue
    t0 = time.perf_counter()
    for _ in range(n): f()
    t1 = time.perf_counter(); torch.cuda.synchronize()
    return (t1 - t0) / n * 1e6

cfgs = {c.name: c for c in get_set("standard", ["bf16"])}
for name in sys.argv[1:]:
    cfg = cfgs[name]
    q, k, v = make_inputs(cfg, 0)
    qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
    arrays = [cp.from_dlpack(x) for x in (q, k, v)]; arrays.append(cp.empty_like(arrays[0]))
    bufs = [_cupy_buffer(x) for x in arrays]
    stream = cp.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream)
    kern, variant = launcher(cupyflash, q, k, v, bufs, stream, cfg.causal, "auto")
    whole = lambda: cupyflash.attention(q, k, v, causal=cfg.causal)
    def cudnn():
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            return torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=cfg.causal)
    flops = 4 * cfg.batch * cfg.heads_q * cfg.head_dim * (cfg.seqlen_q * (cfg.seqlen_q + 1) / 2 if cfg.causal else cfg.seqlen_q ** 2)
    hosts = {n: host_us(f) for n, f in (("whole", whole), ("kernel", kern), ("cudnn", cudnn))}
    samplers = {"whole": Sampler([whole]), "kernel": Sampler([kern]), "whole_long": Sampler([whole], target_ms=20.0),
                "cudnn": Sampler([cudnn]), "cudnn_long": Sampler([cudnn], target_ms=20.0)}
    for r in range(30):
        for n in round_order(list(samplers), r):
            samplers[n].sample()
    res = {n: s.timing() for n, s in samplers.items()}
    print(f"{name} ({variant}); host us/call: " + ", ".join(f"{n} {u:.0f}" for n, u in hosts.items()))
    for n, t in res.items():
        print(f"  {n:11s} inner {t.inner:3d}  {flops / t.median_ms / 1e9:6.1f} TFLOP/s  (q1 {flops / t.q3_ms / 1e9:6.1f}, q3 {flops / t.q1_ms / 1e9:6.1f})"
              f"  x cudnn {res['cudnn'].median_ms / t.median_ms:.3f}", flush=True)
