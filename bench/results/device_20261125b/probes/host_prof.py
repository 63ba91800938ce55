"""cProfile of whole cupyflash.attention calls from torch (GPU kept busy by a sleep kernel, so no call waits on it):
d64 causal s1024 (192-row walk-table kernel) against d128 causal s1024."""
import cProfile, pstats, time, torch, cupyflash
for (b, s, h, d) in ((16, 1024, 32, 64), (16, 1024, 16, 128), (16, 1024, 32, 64)):
    q, k, v = (torch.randn(b, s, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    f = lambda: cupyflash.attention(q, k, v, causal=True)
    for _ in range(5): f()
    torch.cuda.synchronize()
    torch.cuda._sleep(1_500_000_000)
    pr = cProfile.Profile(); t0 = time.perf_counter(); pr.enable()
    for _ in range(200): f()
    pr.disable(); t1 = time.perf_counter(); torch.cuda.synchronize()
    print(f"=== d{d}: {(t1 - t0) / 200 * 1e6:.0f} us/call under cProfile")
    pstats.Stats(pr).sort_stats("tottime").print_stats(14)
    torch.cuda._sleep(1_500_000_000)
    t0 = time.perf_counter()
    for _ in range(200): f()
    t1 = time.perf_counter(); torch.cuda.synchronize()
    print(f"=== d{d}: {(t1 - t0) / 200 * 1e6:.0f} us/call plain")
