"""CUDA-event timing and peak-memory measurement of prepared calls.

How a number is taken (``Sampler``; ``measure`` runs one alone):

1. Warm-up, untimed: every input set is run ``warmup`` times, then the device
   is synchronised. Compilation, autotuning and plan building happen here (and
   in ``prepare``, which already ran the call once).
2. A short untimed estimate of one call's time fixes ``inner``: the number of
   back-to-back calls in one sample, so that a sample lasts about
   ``target_ms``.
3. ``repeats`` samples. A sample is: device synchronise, enqueue ``inner``
   untimed lead-in calls, record a start ``torch.cuda.Event`` on torch's current
   stream, enqueue ``inner`` calls (rotating among the input sets), wait for the
   last output (JAX arrays: ``block_until_ready``) and synchronise the whole
   device, then record the end event. The device-wide synchronise is what makes
   implementations that run on their own stream (JAX, and possibly CuPy-launched
   kernels) end inside the timed window. The lead-in is there for the clocks:
   under load an H100 runs at its power cap, where the SM clock follows the
   power drawn with a lag of milliseconds, so the first milliseconds of a sample
   run at the clock the previous implementation's sample left (a low-power peer
   lifts it for whoever comes next, a hungry one lowers it). Without the lead-in
   one candidate of a sweep read 6-14 % faster in every row only because it always
   ran right after a slow, low-power peer (bench/notes/full_bench.md, "The bench's
   clocks"). For calls on torch's current stream the host queues the lead-in and
   the timed calls without a break, so where the host is faster than the GPU the
   timed window holds GPU time only, and where it is slower (small problems) it
   holds the host's pace, as a caller would meet it. Calls on a stream of their
   own (JAX) wait for their lead-in before the start event (``own_stream``).
4. The median of the per-call times is the headline; min, max and the
   quartiles are the spread.

The bench's runner times the implementations of one row in interleaved
rounds (one sample of each in turn, in a seeded shuffled order and then its
reverse, ``repeats`` times), not one after the other: a GPU under minutes of
load changes its clocks, and timed one after the other the implementations
of a row met different clocks (an H100's long rows showed medians 20 % above
their minimum, and ratios that moved by 10 % between runs:
bench/notes/full_bench.md, "Interleaved rows").

If the callable compiles anything during the samples (``compile_count``
changes), the measurement is void: :class:`CompileDuringTiming` is raised.

Rotating input sets: when the inputs of one call fit in the L2 cache, repeated
calls on the same buffers would be served from L2 and flatter the kernel; the
runner then passes 3 input sets and consecutive calls alternate among them.
"""

from __future__ import annotations

import math
import statistics
import sys

from .results import Timing


class CompileDuringTiming(RuntimeError):
    """A kernel was compiled or loaded inside the timed region."""


def block(out) -> None:
    """Wait on the host until ``out`` is computed, for outputs that need it.

    torch tensors need nothing here (the device synchronise covers them);
    JAX arrays are waited on explicitly since JAX runs on its own stream.
    """
    if isinstance(out, (tuple, list)):
        for item in out:
            block(item)
        return
    wait = getattr(out, "block_until_ready", None)
    if wait is not None:
        wait()


def _finish(torch, out) -> None:
    block(out)
    torch.cuda.synchronize()


def _summarise(per_call_ms, inner, input_sets) -> Timing:
    ordered = sorted(per_call_ms)
    median = statistics.median(ordered)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = median
    return Timing(median_ms=median, min_ms=ordered[0], max_ms=ordered[-1],
                  q1_ms=q1, q3_ms=q3, samples=len(ordered), inner=inner,
                  input_sets=input_sets)


def choose_inner(estimate_ms: float, target_ms: float, max_inner: int) -> int:
    """Calls per sample so that one sample lasts about ``target_ms``."""
    if estimate_ms <= 0:
        return max_inner
    return max(1, min(max_inner, math.ceil(target_ms / estimate_ms)))


class Sampler:
    """One implementation's calls (one zero-argument callable per input set),
    warmed up and sized on construction (steps 1-2), then timed one sample at a
    time (``sample``), so that a caller can interleave several implementations.

    ``compile_count``: a zero-argument callable returning how many kernel modules
    have been compiled or loaded so far (``cupyflash.compile_count``); it must
    not change during a sample.

    ``own_stream``: the calls run on a stream of their own (JAX), not on torch's
    current one, where the events are recorded. A start event recorded right
    after the lead-in would then be passed at once, while the lead-in still runs,
    and the sample would time both: such samples wait for the lead-in to finish
    before the start event (a gap of one launch, tens of microseconds, that the
    calls on torch's stream do not pay).
    """

    def __init__(self, calls, *, warmup=3, target_ms=5.0, max_inner=1000, compile_count=None, own_stream=False):
        import torch

        self.calls = list(calls)
        self.own_stream = own_stream
        if not self.calls:
            raise ValueError("calls is empty: nothing to time")
        self.compile_count = compile_count
        out = None
        for _ in range(warmup):
            for call in self.calls:
                out = call()
        _finish(torch, out)
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for call in self.calls:
            out = call()
        _finish(torch, out)
        end.record()
        end.synchronize()
        self.inner = choose_inner(start.elapsed_time(end) / len(self.calls), target_ms, max_inner)
        self.per_call_ms = []
        self._step = 0

    def sample(self) -> None:
        """Time ``inner`` back-to-back calls after as many untimed ones (step 3) and
        record the per-call time."""
        import torch

        before = self.compile_count() if self.compile_count is not None else None
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        out = None
        for timed in (False, True):  # the lead-in (step 3), then the timed calls
            if timed:
                if self.own_stream:  # the start event goes on torch's stream, idle before the lead-in ends
                    _finish(torch, out)
                start.record()
            for _ in range(self.inner):
                out = self.calls[self._step % len(self.calls)]()
                self._step += 1
        _finish(torch, out)
        end.record()
        end.synchronize()
        del out
        if before is not None:
            after = self.compile_count()
            if after != before:
                raise CompileDuringTiming(
                    f"{after - before} kernel module(s) compiled or loaded during "
                    f"the timed samples; the measurement includes compile time")
        self.per_call_ms.append(start.elapsed_time(end) / self.inner)

    def timing(self) -> Timing:
        return _summarise(self.per_call_ms, self.inner, len(self.calls))


def measure(calls, *, repeats=30, warmup=3, target_ms=5.0, max_inner=1000,
            compile_count=None) -> Timing:
    """Time ``calls`` (one zero-argument callable per input set) on their own:
    ``repeats`` samples of one Sampler."""
    if repeats < 1:
        raise ValueError(f"repeats={repeats} must be >= 1")
    sampler = Sampler(calls, warmup=warmup, target_ms=target_ms, max_inner=max_inner,
                      compile_count=compile_count)
    for _ in range(repeats):
        sampler.sample()
    return sampler.timing()


def _cupy_pool():
    # Only if cupy is already in use: importing it here would create a CUDA
    # context for nothing.
    cupy = sys.modules.get("cupy")
    return cupy.get_default_memory_pool() if cupy is not None else None


def _jax_peak():
    jax = sys.modules.get("jax")
    if jax is None:
        return None
    try:
        device = jax.devices("gpu")[0]
    except RuntimeError:  # jax imported, but it has no GPU backend
        return None
    stats = device.memory_stats()
    return stats.get("peak_bytes_in_use") if stats else None


def measure_memory(call) -> dict:
    """Extra GPU memory of one call (output included), per allocator.

    - ``torch_peak_extra_bytes``: torch caching allocator, peak allocated
      during the call minus what was allocated before (inputs excluded). Sees
      everything allocated through torch: outputs, SDPA/cuDNN workspaces, and
      cupyflash's output if it is created with torch.
    - ``cupy_pool_used_delta_bytes``: CuPy's default memory pool, bytes in use
      after the call (output still alive) minus before. Not a peak: scratch
      freed before the call returns is invisible. Only when cupy is loaded.
    - ``jax_peak_increase_bytes``: increase of JAX's ``peak_bytes_in_use``,
      which is never reset, so this is a lower bound (0 once an earlier call
      reached a higher peak). Only when jax is loaded.

    Memory allocated outside these allocators (cudaMalloc by a library,
    cuDNN handle workspace) is not seen by any of them.
    """
    import torch

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    pool = _cupy_pool()
    cupy_before = pool.used_bytes() if pool is not None else None
    jax_before = _jax_peak()

    out = call()
    _finish(torch, out)

    memory = {"torch_peak_extra_bytes": torch.cuda.max_memory_allocated() - base}
    if pool is not None:
        memory["cupy_pool_used_delta_bytes"] = pool.used_bytes() - cupy_before
    if jax_before is not None:
        memory["jax_peak_increase_bytes"] = _jax_peak() - jax_before
    del out
    return memory
