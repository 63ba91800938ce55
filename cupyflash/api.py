"""The public entry points: ``attention`` and ``explain``."""

from __future__ import annotations

from . import _dispatch
from ._arrays import adapter_for
from ._compile import get_function
from ._dispatch import Plan
from ._params import LOG2E, make_params
from ._problem import Problem, build_problem, check_out, to_bshd
from .errors import ArgumentError, NoGPUError


def attention(q, k, v, *, causal: bool = False, causal_alignment: str = "bottom_right",
              softmax_scale: float | None = None, layout: str = "bshd", return_lse: bool = False,
              out=None, stream=None, backend: str = "auto"):
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
        result would have): no allocation, safe inside CUDA-graph capture.
    stream : optional
        A CuPy stream, a torch.cuda.Stream or a raw ``cudaStream_t`` int. By
        default the caller's current stream: torch's for torch tensors, CuPy's
        for CuPy and NumPy arrays; JAX arrays are ordered by the DLPack stream
        handshake. No call synchronises the device.
    backend : {"auto", "mma", "simt"}
        "mma": tensor cores via mma.sync (fp16/bf16, sm_80+); "simt": exact
        fp32/fp64 on CUDA cores. "auto" picks by dtype; see :func:`explain`.

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
    adapter, problem = _validate(q, k, v, causal, causal_alignment, softmax_scale, layout)
    if not isinstance(return_lse, bool):
        raise ArgumentError(f"return_lse must be True or False; got {return_lse!r}")
    if out is not None:
        check_out(adapter_for(out, "out").describe(out), problem, adapter.kind)
    cupy = _require_gpu()
    device_id = int(problem.device.split(":")[1]) if problem.device != "cpu" else cupy.cuda.Device().id
    with cupy.cuda.Device(device_id):
        launch_stream = _resolve_stream(stream, adapter, q, device_id)
        with launch_stream:
            cq, ck, cv = adapter.to_cupy(q), adapter.to_cupy(k), adapter.to_cupy(v)
            if out is None:
                native_out, cp_out = adapter.empty(q, problem.out_shape(), problem.dtype, device_id)
            elif adapter.kind == "numpy":  # host out=: the kernel writes a device buffer, copied into out
                native_out, cp_out = None, cupy.empty(problem.out_shape(), dtype=cq.dtype)
            else:
                native_out, cp_out = out, adapter.to_cupy(out)
            pointers = {"q": cq.data.ptr, "k": ck.data.ptr, "v": cv.data.ptr, "out": cp_out.data.ptr}
            native_lse = cp_lse = None
            if return_lse:
                native_lse, cp_lse = adapter.empty(q, problem.lse_shape(), "float32", device_id)
            if not problem.empty:
                the_plan = _dispatch.plan(problem, _arch(cupy, device_id), backend, pointers)
                _run(the_plan, problem, cq, ck, cv, cp_out, cp_lse, launch_stream, device_id)
            result = adapter.finish(native_out, cp_out, out)
            if return_lse:
                return result, adapter.finish(native_lse, cp_lse)
            return result


def explain(q, k, v, *, causal: bool = False, causal_alignment: str = "bottom_right",
            softmax_scale: float | None = None, layout: str = "bshd", backend: str = "auto",
            arch: int | None = None) -> Plan:
    """Say which kernel, tiles, grid and compiled variant ``attention`` would
    use for these arguments, and why. Nothing is launched or compiled.

    ``arch`` (e.g. 80, 90) defaults to the current GPU's compute capability;
    pass it to ask about another GPU, or on a machine without one.
    ``print(cupyflash.explain(q, k, v))`` gives a readable report.
    """
    adapter, problem = _validate(q, k, v, causal, causal_alignment, softmax_scale, layout)
    if arch is None:
        cupy = _require_gpu()
        arch = _arch(cupy, cupy.cuda.Device().id)
    pointers = None
    if adapter.kind != "numpy":
        pointers = {"q": adapter.pointer(q), "k": adapter.pointer(k), "v": adapter.pointer(v)}
    return _dispatch.plan(problem, arch, backend, pointers)


# ----------------------------------------------------------------------------- helpers
def _validate(q, k, v, causal, causal_alignment, softmax_scale, layout):
    adapter = adapter_for(q, "q")
    infos = [adapter_for(x, name).describe(x) for x, name in ((q, "q"), (k, "k"), (v, "v"))]
    problem = build_problem(*infos, causal=causal, causal_alignment=causal_alignment,
                            softmax_scale=softmax_scale, layout=layout)
    return adapter, problem


def _require_gpu():
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
    return cupy


def _arch(cupy, device_id: int) -> int:
    return int(cupy.cuda.Device(device_id).compute_capability)


def _resolve_stream(stream, adapter, q, device_id: int):
    import cupy

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


def _bshd(arr, layout: str):
    """A (batch, seq, heads, dim) view of an array given in ``layout``."""
    return arr if layout == "bshd" else arr.transpose(0, 2, 1, 3)


def _elem_strides(arr) -> tuple[int, int, int]:
    return tuple(s // arr.itemsize for s in arr.strides[:3])


def _padded_copy(cupy, arr, dim: int):
    """A contiguous, zero-padded (to a multiple of 8 columns) copy of a bshd view."""
    pad = dim + (-dim) % _dispatch.MMA_ALIGN_ELEMS
    buf = cupy.zeros(arr.shape[:3] + (pad,), dtype=arr.dtype)
    buf[..., :dim] = arr
    return buf


def _run(plan: Plan, problem: Problem, cq, ck, cv, cp_out, cp_lse, stream, device_id: int) -> None:
    import cupy

    layout = problem.layout
    q, k, v, o = (_bshd(a, layout) for a in (cq, ck, cv, cp_out))
    head_dim, head_dim_v = problem.head_dim, problem.head_dim_v
    staged = plan.staged
    if "q" in staged:
        q = _padded_copy(cupy, q, problem.head_dim)
    if "k" in staged:
        k = _padded_copy(cupy, k, problem.head_dim)
    if "v" in staged:
        v = _padded_copy(cupy, v, problem.head_dim_v)
    if staged:  # padded columns are zeros: the kernel may treat them as real
        head_dim, head_dim_v = q.shape[3], v.shape[3]
    o_kernel = cupy.empty(o.shape[:3] + (head_dim_v,), dtype=o.dtype) if "out" in staged else o

    params = make_params(
        q=q.data.ptr, k=k.data.ptr, v=v.data.ptr, o=o_kernel.data.ptr,
        lse=0 if cp_lse is None else cp_lse.data.ptr,
        **_strides("q", q), **_strides("k", k), **_strides("v", v), **_strides("o", o_kernel),
        softmax_scale=problem.softmax_scale, scale_log2=problem.softmax_scale * LOG2E,
        batch=problem.batch, seqlen_q=problem.seqlen_q, seqlen_k=problem.seqlen_k,
        heads_q=problem.heads_q, heads_kv=problem.heads_kv, group=problem.group,
        head_dim=head_dim, head_dim_v=head_dim_v,
        causal=int(problem.causal), causal_offset=problem.causal_offset,
    )
    fn = get_function(plan.spec, device_id)
    fn(plan.grid, plan.block, (params,), shared_mem=plan.spec.smem_bytes, stream=stream)
    if "out" in staged:
        o[...] = o_kernel[..., :problem.head_dim_v]


def _strides(name: str, arr) -> dict[str, int]:
    b, s, h = _elem_strides(arr)
    return {f"{name}_batch_stride": b, f"{name}_row_stride": s, f"{name}_head_stride": h}


__all__ = ["attention", "explain"]
