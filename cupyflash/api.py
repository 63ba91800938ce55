"""The public entry points: ``attention`` and ``explain``."""

from __future__ import annotations

import functools

from . import _dispatch, _split, _tma, _vt
from ._arrays import DeviceBuffer, adapter_for, np_dtype
from ._compile import get_function
from ._dispatch import Plan
from ._callcache import CALL_CACHE_SIZE, prepare
from ._params import (LOG2E, fill_params, make_tma_params, params_template, problem_walk_group_pairs, q_row_shift,
                      split_tail_flag_words, split_tail_floats)
from ._problem import Problem, build_problem, to_bshd
from ._spec import WGMMA_ROWS_PER_WARPGROUP
from ._walk import device_table
from .errors import ArgumentError, NoGPUError


def attention(q, k, v, *, causal: bool = False, causal_alignment: str = "bottom_right",
              softmax_scale: float | None = None, layout: str = "bshd", return_lse: bool = False,
              out=None, stream=None, backend: str = "auto", precision: str = "highest"):
    r"""Scaled dot-product attention, ``softmax(q k^T * softmax_scale) v``, on the GPU.

    Parameters
    ----------
    q : array, (batch, seqlen_q, heads_q, head_dim)
    k : array, (batch, seqlen_k, heads_kv, head_dim)
    v : array, (batch, seqlen_k, heads_kv, head_dim_v)
        NumPy (host), CuPy, PyTorch (CUDA) or JAX (GPU) arrays, all from the same
        library and on the same device, all float16, bfloat16, float32 or float64.
        heads_q must be a multiple of heads_kv (GQA/MQA): query head h reads KV
        head ``h // (heads_q // heads_kv)``. head_dim and head_dim_v may be any
        value from 1 to 256 and may differ. Any strides are accepted without a
        copy as long as the last axis is contiguous; a strided last axis is
        rejected (LayoutError), never copied silently.
    causal : bool
        Mask keys after each query. With ``causal_alignment="bottom_right"``
        (the default, FlashAttention >= 2.1) query i attends key j iff
        ``j <= i + seqlen_k - seqlen_q``; with ``"top_left"`` (torch SDPA's
        ``is_causal``) iff ``j <= i``. For seqlen_q = 2, seqlen_k = 5
        (1 = attended)::

            bottom_right      top_left
            1 1 1 1 0         1 0 0 0 0
            1 1 1 1 1         1 1 0 0 0

        A query row that attends no key (possible when seqlen_q > seqlen_k with
        bottom-right alignment) outputs 0 and an LSE of -inf, never NaN.
    softmax_scale : float, optional
        Positive multiplier of the scores; default ``1 / sqrt(head_dim)``.
    layout : {"bshd", "bhsd"}
        "bhsd" takes torch SDPA's order (batch, heads, seqlen, head_dim) for all
        of q, k, v and the output.
    return_lse : bool
        Also return the natural-log log-sum-exp of the scaled scores, float32,
        shape (batch, heads_q, seqlen_q).
    out : array, optional
        Write the result here (same library, shape, dtype and device as the
        result would have): no allocation, safe inside CUDA-graph capture,
        except for float32 on wgmma (auto on Hopper with head dims up to 128,
        ``backend="wgmma"`` or ``precision="fast"``), whose device-side
        pre-pass allocates its fp16 copies (or, in the tf32 fast mode, V^T)
        on every call (``backend="simt"`` allocates nothing).
    stream : optional
        A CuPy stream, a torch.cuda.Stream or a raw ``cudaStream_t`` int. By
        default the caller's current stream: torch's for torch tensors, CuPy's
        for CuPy and NumPy arrays; JAX arrays are ordered by the DLPack stream
        handshake. No call synchronises the device.
    backend : {"auto", "wgmma", "mma", "simt"}
        "wgmma": Hopper tensor cores via wgmma and TMA (fp16/bf16, sm_90 only);
        "mma": tensor cores via mma.sync (fp16/bf16, and float64 on the fp64
        tensor cores (DMMA); sm_80+, Hopper included); "simt": exact fp32/fp64
        on CUDA cores. "auto" picks wgmma for fp16/bf16 on sm_90, mma on other
        GPUs; for float32 wgmma on sm_90 with head dims up to 128, simt
        otherwise; for float64 mma (DMMA) on sm_80+, simt on older GPUs; see
        :func:`explain`. float64 is exact on both: every product and sum is an
        IEEE fp64 fused multiply-add (relative error ~1e-15 against a float64
        reference computed in another order).
        float32 on wgmma runs on the tensor cores at fp32 accuracy (measured
        ~1e-6 relative error up to seqlen 16384): q, k and v are rescaled by
        one power of two per tile of the kernel (128 query rows, 64 key rows
        of one head) on the device and split into fp16 hi + lo, three
        products each. Values more than ~2^-24 below their tile's largest
        lose precision; for data with such a range use "simt".
    precision : {"highest", "fast", "tf32"}
        float32 only. "highest" (default) keeps fp32 accuracy (relative error
        ~1e-6). "fast" (Hopper) runs one tensor-core pass with fp32
        accumulation and output, at TF32-like accuracy (JAX's
        ``Precision.DEFAULT``, torch's ``allow_tf32``): relative error ~4e-4
        on N(0, 1) data, within 2e-3 (the GPU suite's bound): q, k, v rescaled
        by a power of two per kernel tile and rounded to fp16 once, then the
        fp16 kernel. "tf32" (Hopper, head dims <= 128) takes tf32 products
        instead: q and k rounded to tf32 by TMA as they load, v and p rounded
        to nearest (~4e-4 on N(0, 1) data), no rescaling at all; the H100
        measured it slower than "fast" at every bench shape but one (d64
        causal s1024, +3 %). Both keep fp32's exponent range.

    Returns
    -------
    The output, of q's array type and device, shape (batch, seqlen_q, heads_q,
    head_dim_v) in the given layout; with ``return_lse`` a tuple (out, lse).

    Example
    -------
    >>> import cupy as cp, cupyflash
    >>> q = cp.random.randn(2, 1024, 16, 128).astype(cp.float16)
    >>> k = cp.random.randn(2, 1024, 4, 128).astype(cp.float16)   # GQA 4:1
    >>> v = cp.random.randn(2, 1024, 4, 128).astype(cp.float16)
    >>> o = cupyflash.attention(q, k, v, causal=True)
    """
    call = prepare(q, k, v, out, causal, causal_alignment, softmax_scale, layout, return_lse, backend, precision)
    adapter, problem = call.adapter, call.problem
    cupy = _require_gpu()
    device_id = call.device_id if call.device_id is not None else cupy.cuda.Device().id
    with cupy.cuda.Device(device_id):
        launch_stream = _resolve_stream(cupy, stream, adapter, q, device_id)
        on_caller_stream = stream is None
        with launch_stream:
            bq = adapter.device_buffer(q, on_caller_stream)
            bk = adapter.device_buffer(k, on_caller_stream)
            bv = adapter.device_buffer(v, on_caller_stream)
            if out is None or adapter.kind == "numpy":  # host out=: the kernel writes a device buffer
                native_out, bo = adapter.empty(q, problem.out_shape(), problem.dtype)
            else:
                native_out, bo = out, adapter.device_buffer(out, on_caller_stream)
            native_lse = blse = None
            if return_lse:
                native_lse, blse = adapter.empty(q, problem.lse_shape(), "float32")
            if not problem.empty:
                align = _dispatch.MMA_ALIGN_BYTES
                misalignment = (bq.ptr % align, bk.ptr % align, bv.ptr % align, bo.ptr % align)
                the_plan = _cached_plan(problem, _device(cupy, device_id), backend, misalignment, precision)
                _run(the_plan, problem, bq, bk, bv, bo, blse, launch_stream, device_id)
            result = adapter.finish(native_out, bo, out)
            if return_lse:
                return result, adapter.finish(native_lse, blse)
            return result


def explain(q, k, v, *, causal: bool = False, causal_alignment: str = "bottom_right",
            softmax_scale: float | None = None, layout: str = "bshd", backend: str = "auto",
            precision: str = "highest", arch: int | None = None) -> Plan:
    """Say which kernel, tiles, grid and compiled variant ``attention`` would
    use for these arguments, and why. Nothing is launched or compiled.

    ``arch`` (e.g. 80, 90) defaults to the current GPU's compute capability;
    pass it to ask about another GPU, or on a machine without one.
    ``print(cupyflash.explain(q, k, v))`` gives a readable report.
    """
    adapter, problem = _validate(q, k, v, causal, causal_alignment, softmax_scale, layout)
    sm_count = None  # with arch= given: the usual count for that arch
    if arch is None:
        cupy = _require_gpu()
        arch, sm_count = _device(cupy, cupy.cuda.Device().id)
    pointers = None
    if adapter.kind != "numpy":
        pointers = {"q": adapter.pointer(q), "k": adapter.pointer(k), "v": adapter.pointer(v)}
    return _dispatch.plan(problem, arch, backend, pointers, sm_count, precision)


# ----------------------------------------------------------------------------- helpers
def _validate(q, k, v, causal, causal_alignment, softmax_scale, layout):
    """(adapter, Problem) of q, k and v, validated from scratch (explain(), the tuning scripts)."""
    adapter = adapter_for(q, "q")
    infos = [adapter_for(x, name).describe(x) for x, name in ((q, "q"), (k, "k"), (v, "v"))]
    problem = build_problem(*infos, causal=causal, causal_alignment=causal_alignment,
                            softmax_scale=softmax_scale, layout=layout)
    return adapter, problem


_cupy = None  # CuPy, once a GPU was found: a process keeps its GPUs


def _require_gpu():
    global _cupy
    if _cupy is not None:
        return _cupy
    try:
        import cupy
    except ImportError as exc:
        raise NoGPUError("cupyflash needs CuPy: pip install 'cupyflash[cuda13]' (or [cuda12]); "
                         "for a CPU result call cupyflash.reference.attention explicitly") from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError as exc:
        raise NoGPUError(f"no usable CUDA GPU ({exc}); cupyflash never falls back to the CPU. "
                         "For a CPU result call cupyflash.reference.attention explicitly") from exc
    if count == 0:
        raise NoGPUError("no CUDA GPU found; for a CPU result call cupyflash.reference.attention explicitly")
    _cupy = cupy
    return cupy


_devices: dict[int, tuple[int, int]] = {}


def _device(cupy, device_id: int) -> tuple[int, int]:
    """(compute capability as an int, multiprocessor count) of a device, cached."""
    info = _devices.get(device_id)
    if info is None:
        dev = cupy.cuda.Device(device_id)
        info = _devices[device_id] = (int(dev.compute_capability), int(dev.attributes["MultiProcessorCount"]))
    return info


@functools.lru_cache(maxsize=1024)
def _cached_plan(problem: Problem, device: tuple[int, int], backend: str,
                 misalignment: tuple[int, int, int, int], precision: str) -> Plan:
    """Dispatch is pure: the same problem, GPU and alignment always give the same plan."""
    pointers = dict(zip(("q", "k", "v", "out"), misalignment))
    arch, sm_count = device
    return _dispatch.plan(problem, arch, backend, pointers, sm_count, precision)


def _resolve_stream(cupy, stream, adapter, q, device_id: int):
    if stream is None:
        return adapter.caller_stream(q, device_id)
    if isinstance(stream, cupy.cuda.Stream | cupy.cuda.ExternalStream):
        return stream
    if hasattr(stream, "cuda_stream"):  # torch.cuda.Stream
        return cupy.cuda.ExternalStream(int(stream.cuda_stream), device_id)
    if isinstance(stream, int) and not isinstance(stream, bool):
        return cupy.cuda.ExternalStream(stream, device_id)
    raise ArgumentError(f"stream must be a cupy.cuda.Stream, a torch.cuda.Stream or an int cudaStream_t; "
                        f"got {type(stream).__name__}")


def _padded_copy(cupy, buf: DeviceBuffer, layout: str, dim: int) -> DeviceBuffer:
    """A contiguous (batch, seq, heads, dim) copy, zero-padded to a multiple of 8 columns."""
    src = buf.as_cupy()
    if layout == "bhsd":
        src = src.transpose(0, 2, 1, 3)
    pad = dim + (-dim) % _dispatch.MMA_ALIGN_ELEMS
    dst = cupy.zeros(src.shape[:3] + (pad,), dtype=src.dtype)
    dst[..., :dim] = src
    return DeviceBuffer(dst.data.ptr, tuple(dst.shape), tuple(x // dst.itemsize for x in dst.strides), buf.dtype, dst)


def _tma_params(plan: Plan, problem: Problem, ptrs, strides, head_dim: int, head_dim_v: int,
                lo_ptrs: dict[str, int] | None = None, vt=None, q_cols: int = 0):
    """The TMA tensor maps of the wgmma kernel (Q, K, V; with ``lo_ptrs`` also the
    split kernel's lo parts, which share the hi parts' shapes and strides), bshd order;
    for tf32 the V map reads ``vt`` (cupyflash._vt). Each map embeds its operand's
    address, so they are made (or found in _tma.encode's cache, keyed by that address)
    on every call."""
    spec = plan.spec
    # fp32 kernels: the tf32 one reads q, k rounded by TMA; the converting ones read
    # every bit of q, k, v; the others read the pre-pass's fp16 copies.
    dtype = ("tfloat32" if spec.tf32 else "float32" if spec.convert_stages else
             "float16" if spec.fp32_terms else spec.dtype)
    # 16-bit outputs leave through TMA stores of one consumer warpgroup's rows; fp32 ones from registers.
    o_map = None if spec.dtype == "float32" else _tma.encode(dtype, ptrs["o"], head_dim_v, problem.seqlen_q,
                                                             problem.heads_q, problem.batch, strides["o"],
                                                             WGMMA_ROWS_PER_WARPGROUP)
    # tf32 reads V^T in V's place, and V itself is never mapped (its rows need not
    # meet TMA's 16-byte stride rule, e.g. head_dim_v 50 in fp32).
    v_map = _vt_map(spec, vt) if vt is not None and problem.seqlen_k else None
    # Q converted by the consumers (q_in_kernel): no TMA reads q. Its map is the
    # caller's fp32 q (q_cols columns: staging_needs made it mappable), a valid
    # stand-in for the producer's descriptor prefetches when there is no key.
    q_map = (_tma.encode("float32", ptrs["q"], q_cols, problem.seqlen_q, problem.heads_q, problem.batch,
                         strides["q"], WGMMA_ROWS_PER_WARPGROUP) if spec.q_in_kernel else None)
    hi = _qkv_maps(dtype, spec, problem, ptrs, strides, head_dim, head_dim_v, v_map, q_map)
    lo = (None, None, None) if lo_ptrs is None else _qkv_maps(dtype, spec, problem, lo_ptrs, strides, head_dim,
                                                               head_dim_v, q_map=q_map)
    if spec.q_in_kernel and lo_ptrs is not None:
        lo = (None, *lo[1:])  # no lo copy of q exists
    return make_tma_params(*hi, *lo, o_map)


def _qkv_maps(dtype: str, spec, p: Problem, ptrs, strides, head_dim: int, head_dim_v: int,
              v_map: bytes | None = None, q_map: bytes | None = None) -> tuple:
    # A converting kernel stages Q by consumer warpgroup (64 rows), each with its own shift.
    q_rows = WGMMA_ROWS_PER_WARPGROUP if spec.convert_stages else spec.block_m
    if q_map is None:
        q_map = _tma.encode(dtype, ptrs["q"], head_dim, p.seqlen_q, p.heads_q, p.batch, strides["q"], q_rows)
    if p.seqlen_k == 0:
        # No key: the kernel loads no K/V tile and writes zeros and LSE -inf, but
        # a tensor map cannot describe an empty tensor. Q's map stands in, unread.
        return q_map, q_map, q_map
    return (q_map,
            _tma.encode(dtype, ptrs["k"], head_dim, p.seqlen_k, p.heads_kv, p.batch, strides["k"], spec.block_n),
            v_map if v_map is not None else
            _tma.encode(dtype, ptrs["v"], head_dim_v, p.seqlen_k, p.heads_kv, p.batch, strides["v"], spec.block_n))


def _vt_map(spec, vt) -> bytes:
    """V^T (batch, heads_kv, dim, keys_pad) as a TMA map: keys innermost, the head dim
    as rows, boxes of (32 keys, the kernel's head-dim width): rows past dim arrive as zeros."""
    batch, heads, dim, keys_pad = vt.shape
    return _tma.encode("tfloat32", vt.data.ptr, keys_pad, dim, heads, batch,
                       (heads * dim * keys_pad, keys_pad, dim * keys_pad), spec.head_dim)


@functools.lru_cache(maxsize=CALL_CACHE_SIZE)
def _params_template(problem: Problem, head_dim: int, head_dim_v: int, spec, sk: tuple[int, int],
                     walk_table: int) -> bytes:
    """FlashParams of ``problem`` run by kernel ``spec`` at these (possibly padded) head
    dims, less the per-call fields (addresses, strides); bounded like the call cache,
    for the same reason. The spec sets the walk's working set (``_params.walk_working_set``);
    ``sk`` is the plan's split tail, ``walk_table`` the device address of its walk table
    (0 for none: cupyflash._walk.device_table, one per device and shape)."""
    return params_template(
        softmax_scale=problem.softmax_scale, scale_log2=problem.softmax_scale * LOG2E,
        batch=problem.batch, seqlen_q=problem.seqlen_q, seqlen_k=problem.seqlen_k,
        heads_q=problem.heads_q, heads_kv=problem.heads_kv, group=problem.group,
        head_dim=head_dim, head_dim_v=head_dim_v,
        causal=int(problem.causal), causal_offset=problem.causal_offset,
        # The same group size as the walk table's (cupyflash._walk), from the caller's head dims.
        walk_group_pairs=problem_walk_group_pairs(problem, spec),
        q_row_shift=q_row_shift(problem.causal, problem.seqlen_q, spec),
        sk_items=sk[0], sk_tiles=sk[1], walk_table=walk_table,
    )


def _run(plan: Plan, problem: Problem, q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, o: DeviceBuffer,
         lse: DeviceBuffer | None, stream, device_id: int) -> None:
    layout = problem.layout
    head_dim, head_dim_v = problem.head_dim, problem.head_dim_v
    # The buffers' own strides: a host array's device copy need not keep the host strides.
    strides = {n: to_bshd(b.strides, layout)[:3] for n, b in (("q", q), ("k", k), ("v", v), ("o", o))}
    ptrs = {"q": q.ptr, "k": k.ptr, "v": v.ptr, "o": o.ptr}
    staged_out = None
    keep = {}  # staged copies live until the kernel is enqueued (the pool reuses memory in stream order)
    shifts_ptr, lo_ptrs, vt = 0, None, None
    if plan.spec.tf32:
        import cupy

        # tf32: q and k are read in place; v goes through the V^T pre-pass (keys contiguous, permuted, rounded).
        keep["vt"] = vt = _vt.transpose_v(cupy, v, layout)
    kv_once = plan.spec.kv_once  # ... and k, v, each key tile once per call (kv_once.h)
    prepass = plan.spec.fp32_terms and not plan.spec.convert_stages and not kv_once
    q_kernel = plan.spec.q_in_kernel  # the kernel converts the caller's fp32 q itself (q_convert.h)
    if prepass:
        import cupy

        # fp32 on wgmma: fp16 copies (hi, and lo for 3 terms), each tile of the kernel's
        # (block_m query rows, block_n key rows) rescaled by its own power of two on the device.
        keep["split"] = split = _split.split_operands(cupy, {"q": q, "k": k, "v": v}, layout, plan.spec.block_m,
                                                      plan.spec.block_n, plan.spec.split, with_q=not q_kernel)
        for name, arr in split.hi.items():
            ptrs[name], strides[name] = arr.data.ptr, tuple(x // arr.itemsize for x in arr.strides[:3])
        lo_ptrs = {name: arr.data.ptr for name, arr in split.lo.items()} or None
        head_dim, head_dim_v = split.hi["k"].shape[3], split.hi["v"].shape[3]  # q's padded dim is k's
        shifts_ptr = split.shifts.data.ptr
    if plan.staged:
        import cupy

        # (q_in_kernel: head_dim is already the fp16 copies' padded width; q is copied at its own)
        for name, buf, dim in (("q", q, problem.head_dim if q_kernel else head_dim), ("k", k, head_dim),
                               ("v", v, head_dim_v)):
            if name in plan.staged and (not prepass or (name == "q" and q_kernel)):
                keep[name] = copy = _padded_copy(cupy, buf, layout, dim)
                ptrs[name], strides[name] = copy.ptr, copy.strides[:3]
        # Padded columns are zeros, so the kernel may treat them as real ones.
        head_dim = max(keep[n].shape[3] if n in keep else head_dim for n in ("q", "k"))
        head_dim_v = keep["v"].shape[3] if "v" in keep else head_dim_v
    # V's tensor map keeps V's own columns (past them it would read other memory:
    # for a converting kernel, into the tile's abs-max); the kernel's head_dim_v
    # may grow for the output below.
    map_dim_v = head_dim_v
    if (plan.spec.tf32 or plan.spec.convert_stages) and "out" in plan.staged:
        # the staging buffer's padding columns take O's zero columns (pairs stay in the row)
        head_dim_v += (-head_dim_v) % _dispatch.MMA_ALIGN_ELEMS
    # The kernels store the output a vector at a time: a caller's out= whose
    # strides are not multiples of that width is written through a staging buffer
    # too (a misaligned vector store would be a sticky CUDA error).
    out_sizes = (problem.batch, problem.seqlen_q, problem.heads_q)  # a size-1 axis is never stepped
    if "out" in plan.staged or _dispatch.out_needs_staging(plan.spec, strides["o"], out_sizes):
        import cupy

        staged_out = cupy.empty((problem.batch, problem.seqlen_q, problem.heads_q, head_dim_v), dtype=np_dtype(o.dtype))
        ptrs["o"] = staged_out.data.ptr
        strides["o"] = tuple(x // staged_out.itemsize for x in staged_out.strides[:3])

    # TMA reads the converted copies; FlashParams keeps the caller's k and v (kv_once.h).
    map_ptrs, map_strides, kv_ptrs = ptrs, strides, (0,) * 5
    if kv_once:
        import cupy

        if not problem.head_dim == problem.head_dim_v == plan.spec.head_dim:
            raise ValueError(f"{plan.spec.variant_name} converts k and v of exactly {plan.spec.head_dim} columns; "
                             f"got head_dim {problem.head_dim}, head_dim_v {problem.head_dim_v}")
        keep["kv"] = kv = _split.kv_once_buffers(cupy, problem.batch, problem.seqlen_k, problem.heads_kv,
                                                 plan.spec.head_dim, plan.spec.block_n, plan.spec.split)
        map_ptrs, map_strides = dict(ptrs), dict(strides)
        for name, arr in kv.hi.items():
            map_ptrs[name], map_strides[name] = arr.data.ptr, tuple(x // arr.itemsize for x in arr.strides[:3])
        lo_ptrs = {name: arr.data.ptr for name, arr in kv.lo.items()} or None
        shifts_ptr = kv.shifts.data.ptr
        kv_ptrs = (kv.hi["k"].data.ptr, kv.hi["v"].data.ptr, *(lo_ptrs[n] if lo_ptrs else 0 for n in ("k", "v")),
                   kv.flags.data.ptr)
    sk_ptrs = (0, 0)
    if plan.split_tail[0]:
        import cupy

        # The split tail's hand-over slots (uninitialised: each is written before it is
        # read) and their arrival counters and flags (zeroed in stream order, before the kernel).
        keep["sk"] = sk = (cupy.empty(split_tail_floats(plan.grid[0], plan.spec), dtype=cupy.float32),
                           cupy.zeros(split_tail_flag_words(plan.grid[0], plan.spec), dtype=cupy.uint32))
        sk_ptrs = (sk[0].data.ptr, sk[1].data.ptr)
    # q_in_kernel: the kernel reads head_dim columns of the fp32 q (its own, or
    # the staged copy's zero-padded ones); the TMA maps of k, v keep the fp16 width.
    q_cols = (keep["q"].shape[3] if "q" in keep else problem.head_dim) if q_kernel else head_dim
    walk_ptr = 0
    if plan.walk_table:
        # The walk laid out on the host when the plan was made (cupyflash._walk): the table explain() describes.
        import cupy

        walk_ptr = device_table(cupy, device_id, plan.walk_table)
    params = fill_params(_params_template(problem, q_cols, head_dim_v, plan.spec, plan.split_tail, walk_ptr),
                         ptrs["q"], ptrs["k"], ptrs["v"], ptrs["o"], 0 if lse is None else lse.ptr, shifts_ptr,
                         *kv_ptrs, *sk_ptrs, *strides["q"], *strides["k"], *strides["v"], *strides["o"])
    args = (params,)
    if plan.spec.family == "wgmma":
        args += (_tma_params(plan, problem, map_ptrs, map_strides, head_dim, map_dim_v, lo_ptrs, vt, q_cols),)
    fn = get_function(plan.spec, device_id)
    fn(plan.grid, plan.block, args, shared_mem=plan.spec.smem_bytes, stream=stream)
    del keep
    if staged_out is not None:
        view = o.as_cupy()
        if layout == "bhsd":
            view = view.transpose(0, 2, 1, 3)
        view[...] = staged_out[..., :problem.head_dim_v]


__all__ = ["attention", "explain"]
