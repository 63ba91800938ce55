"""Benchmark instrument: cupyflash against torch SDPA backends and JAX.

Run ``python -m cupyflash.bench --help``. Modules, one concern each:

- ``shapes``: the shape sets, as frozen dataclasses (stdlib only)
- ``flops``: FLOPs from the exact attended length, K+V bytes for decode
- ``peers``: the implementations, with ``available()`` and ``prepare()``
- ``timing``: CUDA-event medians, peak memory, no-compile-while-timing check
- ``runner``: inputs and the (config x implementation) loop
- ``accuracy``, ``reference_rows``: every timed cell's output is checked
  (outside the timed region) against float64 on up to 128 query rows, every
  batch and head, with the GPU tests' tolerance rule; a cell that fails is an
  error ("wrong result"), never a number
- ``results``: result records and the ``--min-ratio`` rule
- ``report``, ``plot``, ``env``: table, JSON, PNG and environment record
- ``cli``: the command line

Nothing here imports torch, jax or cupy at import time.
"""
