"""The call cache: a repeated ``attention`` call skips argument validation.

Validation reads metadata only: each array's library, shape, dtype, strides
and device (the adapters' ``signature``, of which ``describe`` is a function),
and the scalar arguments. ``prepare`` keys a bounded LRU cache on exactly those
values, so a call whose key validated before gets its ``Prepared`` back for
the cost of reading the metadata and one hash, instead of ~30 us of checks.

Why this cannot change behaviour:
- An entry is stored only when validation returned; an exception is never
  cached, so a bad call raises on every call, as before.
- A key holds everything validation reads, nothing less: equal keys describe
  equal arrays and equal arguments, so they would validate identically.
- A call whose key cannot be formed (an argument that is no array, a scalar
  argument of any type but the plain ones, which keeps keys hashable and keeps
  ``True`` apart from ``1``) is validated from scratch, in the same order.
- No data pointer is part of an entry: alignment-dependent choices (the plan)
  and the TMA maps, which embed addresses, are made per call downstream.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from ._arrays import ADAPTERS, adapter_for, find_adapter
from ._dispatch import BACKENDS, PRECISIONS
from ._problem import Problem, build_problem, check_out
from .errors import ArgumentError

# Each distinct call shape (shapes x strides x dtypes x flags) holds one entry of a
# few hundred bytes. Bounded because some workloads never repeat a key (decoding
# with a growing KV cache makes a new seqlen_k every step); 512 covers the shapes
# of a whole model (its layers share keys) many times over.
CALL_CACHE_SIZE = 512

_ADAPTER_OF_KIND = {adapter.kind: adapter for adapter in ADAPTERS}
# softmax_scale types served from the cache (np.float64 is a float subclass: 1 / np.sqrt(d)).
_SCALE_TYPES = (float, int, np.float64)


class Prepared(NamedTuple):
    """A validated call."""

    adapter: type
    problem: Problem
    device_id: int | None  # None for host (NumPy) arrays: they run on the current device, read per call


def prepare(q, k, v, out, causal, causal_alignment, softmax_scale, layout, return_lse, backend,
            precision) -> Prepared:
    """Validate the arguments of ``attention`` (raising the error that names the
    first bad one) and return the call's adapter, problem and device."""
    sq, sk, sv = _signature(q), _signature(k), _signature(v)
    so = None if out is None else _signature(out)
    if (sq is None or sk is None or sv is None or (out is not None and so is None)
            or type(causal) is not bool or type(return_lse) is not bool or type(causal_alignment) is not str
            or type(layout) is not str or type(backend) is not str or type(precision) is not str
            or (softmax_scale is not None and type(softmax_scale) not in _SCALE_TYPES)):
        return _validate(_describe_array, q, k, v, out, causal, causal_alignment, softmax_scale, layout, return_lse,
                         backend, precision)
    return _validate_signatures(sq, sk, sv, so, causal, causal_alignment, softmax_scale, layout, return_lse,
                                backend, precision)


def _signature(x) -> tuple | None:
    """(adapter, the adapter's signature of x), or None if x is no array cupyflash takes."""
    adapter = find_adapter(x)
    return None if adapter is None else (adapter, adapter.signature(x))


def _describe_array(x, name: str):
    return adapter_for(x, name).describe(x)


def _describe_signature(sig: tuple, name: str):
    adapter, metadata = sig
    return adapter.info(metadata)


# typed=True: keys of equal value but different type never share an entry (the
# plain-type gate in prepare() already ensures it; this keeps it true if the gate widens).
@functools.lru_cache(maxsize=CALL_CACHE_SIZE, typed=True)
def _validate_signatures(sq, sk, sv, so, causal, causal_alignment, softmax_scale, layout, return_lse, backend,
                         precision) -> Prepared:
    return _validate(_describe_signature, sq, sk, sv, so, causal, causal_alignment, softmax_scale, layout,
                     return_lse, backend, precision)


def _validate(describe, q, k, v, out, causal, causal_alignment, softmax_scale, layout, return_lse, backend,
              precision) -> Prepared:
    """Every check of ``attention``'s arguments, in its documented order; ``describe``
    turns q, k, v and out (arrays, or their signatures) into ArrayInfo."""
    infos = [describe(x, name) for x, name in ((q, "q"), (k, "k"), (v, "v"))]
    problem = build_problem(*infos, causal=causal, causal_alignment=causal_alignment,
                            softmax_scale=softmax_scale, layout=layout)
    if not isinstance(return_lse, bool):
        raise ArgumentError(f"return_lse must be True or False; got {return_lse!r}")
    for name, value, accepted in (("backend", backend, BACKENDS), ("precision", precision, PRECISIONS)):
        if not isinstance(value, str) or value not in accepted:
            raise ArgumentError(f"{name} must be one of {', '.join(map(repr, accepted))}; got {value!r}")
    kind = infos[0].kind
    if out is not None:
        check_out(describe(out, "out"), problem, kind)
    device_id = None if problem.device == "cpu" else int(problem.device.split(":")[1])
    return Prepared(_ADAPTER_OF_KIND[kind], problem, device_id)
