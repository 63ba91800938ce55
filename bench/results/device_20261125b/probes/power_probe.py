"""Sustained back-to-back calls of cupyflash and cuDNN (d64 causal s1024 bf16, the bench's shape),
2 s each, alternated; prints per-phase ms/call and wall times to match with nvidia-smi's log."""
import sys, time, torch, cupyflash
from torch.nn.attention import sdpa_kernel, SDPBackend
s = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
b, h, d = 16384 // s, 32, 64
q, k, v = (torch.randn(b, s, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
ours = lambda: cupyflash.attention(q, k, v, causal=True)
def cudnn():
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        return torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=True)
flops = 4 * b * h * d * s * (s + 1) / 2
for f in (ours, cudnn):
    f(); torch.cuda.synchronize()
for rnd in range(3):
    for name, f in (("ours", ours), ("cudnn", cudnn)):
        torch.cuda.synchronize(); t0 = time.time(); n = 0
        a = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
        marks = []
        while time.time() - t0 < 2.0:
            a.record()
            for _ in range(50): f()
            e.record(); e.synchronize(); marks.append(a.elapsed_time(e) / 50)
        t1 = time.time()
        first, last = marks[0], sorted(marks[len(marks)//2:])[len(marks[len(marks)//2:])//2]
        print(f"{name:5s} s={s} {time.strftime('%H:%M:%S', time.localtime(t0))}.{int(t0%1*1000):03d}-"
              f"{time.strftime('%H:%M:%S', time.localtime(t1))}.{int(t1%1*1000):03d} first50 {flops/first/1e9:6.1f} "
              f"steady {flops/last/1e9:6.1f} TFLOP/s", flush=True)
