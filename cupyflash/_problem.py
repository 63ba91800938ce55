"""Validation: turn user arguments into a ``Problem``, or raise an error that
names the argument and the accepted values. Works on metadata only, so every
check runs (and is tested) without a GPU."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._arrays import ArrayInfo
from ._spec import MAX_HEAD_DIM, SUPPORTED_DTYPES
from .errors import ArgumentError, DeviceError, DTypeError, LayoutError, ShapeError

LAYOUTS = ("bshd", "bhsd")
CAUSAL_ALIGNMENTS = ("bottom_right", "top_left")
# Axis order of each layout, as positions of (batch, seq, heads, dim).
_AXES = {"bshd": (0, 1, 2, 3), "bhsd": (0, 2, 1, 3)}
_LAYOUT_DOC = {"bshd": "(batch, seqlen, heads, head_dim)", "bhsd": "(batch, heads, seqlen, head_dim)"}


@dataclass(frozen=True)
class Problem:
    batch: int
    seqlen_q: int
    seqlen_k: int
    heads_q: int
    heads_kv: int
    head_dim: int
    head_dim_v: int
    dtype: str
    causal: bool
    causal_offset: int  # key j visible to query i iff j <= i + causal_offset
    softmax_scale: float
    layout: str
    device: str
    # (batch, seq, head) strides in elements, canonical bshd order
    q_strides: tuple[int, int, int]
    k_strides: tuple[int, int, int]
    v_strides: tuple[int, int, int]

    @property
    def group(self) -> int:
        return self.heads_q // self.heads_kv

    @property
    def empty(self) -> bool:
        return self.batch == 0 or self.seqlen_q == 0 or self.heads_q == 0

    def out_shape(self) -> tuple[int, int, int, int]:
        """Output shape in the caller's layout."""
        bshd = (self.batch, self.seqlen_q, self.heads_q, self.head_dim_v)
        return to_layout(bshd, self.layout)

    def lse_shape(self) -> tuple[int, int, int]:
        return (self.batch, self.heads_q, self.seqlen_q)


def to_bshd(values: tuple, layout: str) -> tuple:
    """Reorder a 4-tuple given in ``layout`` to (batch, seq, heads, dim)."""
    axes = _AXES[layout]
    return (values[axes[0]], values[axes[1]], values[axes[2]], values[axes[3]])


def to_layout(bshd: tuple, layout: str) -> tuple:
    axes = _AXES[layout]
    out = [0] * 4
    for i in range(4):
        out[axes[i]] = bshd[i]
    return tuple(out)


def _check_choice(name: str, value: object, choices: tuple) -> None:
    if value not in choices:
        raise ArgumentError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")


def _canonical(info: ArrayInfo, name: str, layout: str) -> tuple[tuple, tuple]:
    if len(info.shape) != 4:
        raise ShapeError(f"{name} must be 4-D {_LAYOUT_DOC[layout]} for layout={layout!r}; "
                         f"got {len(info.shape)}-D shape {info.shape}")
    if info.dtype not in SUPPORTED_DTYPES:
        raise DTypeError(f"{name} has dtype {info.dtype}; supported dtypes: {', '.join(SUPPORTED_DTYPES)}")
    shape, strides = to_bshd(info.shape, layout), to_bshd(info.strides, layout)
    if any(not float(s).is_integer() for s in strides):
        raise LayoutError(f"{name} has strides that are not whole elements: {info.strides}")
    if shape[3] > 1 and strides[3] != 1 and 0 not in shape:  # an empty array has no layout to check
        raise LayoutError(f"{name}: the last axis (head_dim) must be contiguous (stride 1 element); got "
                          f"stride {strides[3]}. cupyflash never copies a strided last axis silently: "
                          "pass a contiguous array (e.g. xp.ascontiguousarray).")
    return shape, tuple(int(s) for s in strides)


def build_problem(q: ArrayInfo, k: ArrayInfo, v: ArrayInfo, *, causal: object, causal_alignment: object,
                  softmax_scale: object, layout: object) -> Problem:
    _check_choice("layout", layout, LAYOUTS)
    _check_choice("causal_alignment", causal_alignment, CAUSAL_ALIGNMENTS)
    if not isinstance(causal, bool):
        raise ArgumentError(f"causal must be True or False; got {causal!r}")

    if q.device != k.device or q.device != v.device:
        raise DeviceError(f"q, k and v must be on the same device; got q on {q.device}, k on {k.device}, "
                          f"v on {v.device}")
    if q.kind != k.kind or q.kind != v.kind:
        raise DeviceError(f"q, k and v must come from the same array library; got {q.kind}, {k.kind}, {v.kind}")
    if q.device != "cpu" and not q.device.startswith("cuda:"):
        raise DeviceError(f"q, k and v live on {q.device!r}; cupyflash accepts host NumPy arrays and "
                          "CUDA device arrays")
    if q.device == "cpu" and q.kind != "numpy":
        raise DeviceError(f"q, k and v are {q.kind} arrays on the CPU; pass CUDA {q.kind} arrays, "
                          "or NumPy arrays for host data")
    if not (q.dtype == k.dtype == v.dtype):
        raise DTypeError(f"q, k and v must have the same dtype; got q {q.dtype}, k {k.dtype}, v {v.dtype}")

    (b, sq, hq, d), qs = _canonical(q, "q", layout)
    (bk, sk, hk, dk), ks = _canonical(k, "k", layout)
    (bv, sv, hv, dv), vs = _canonical(v, "v", layout)

    if not (b == bk == bv):
        raise ShapeError(f"batch sizes differ: q {b}, k {bk}, v {bv}")
    if sk != sv:
        raise ShapeError(f"k and v must have the same seqlen; got k {sk}, v {sv}")
    if hk != hv:
        raise ShapeError(f"k and v must have the same number of heads; got k {hk}, v {hv}")
    if dk != d:
        raise ShapeError(f"q and k must have the same head_dim; got q {d}, k {dk}")
    if hk == 0 or hq % hk != 0:
        raise ShapeError(f"heads of q ({hq}) must be a multiple of heads of k/v ({hk}) (GQA/MQA)")
    for name, dim in (("head_dim of q/k", d), ("head_dim of v", dv)):
        if not 1 <= dim <= MAX_HEAD_DIM:
            raise ShapeError(f"{name} must be between 1 and {MAX_HEAD_DIM}; got {dim}")

    if softmax_scale is None:
        scale = 1.0 / math.sqrt(d)
    else:
        if isinstance(softmax_scale, bool) or not isinstance(softmax_scale, (int, float)):
            raise ArgumentError(f"softmax_scale must be a positive finite float or None; got {softmax_scale!r}")
        scale = float(softmax_scale)
        if not math.isfinite(scale) or scale <= 0.0:
            raise ArgumentError(f"softmax_scale must be a positive finite float or None; got {softmax_scale!r}")

    offset = sk - sq if causal_alignment == "bottom_right" else 0
    return Problem(b, sq, sk, hq, hk, d, dv, q.dtype, causal, offset, scale, layout, q.device,
                   qs[:3], ks[:3], vs[:3])


def check_out(out: ArrayInfo, problem: Problem, kind: str, name: str = "out") -> None:
    """Validate a caller-provided output array against the problem."""
    if out.kind != kind:
        raise DeviceError(f"{name} is a {out.kind} array but q is a {kind} array; use the same library")
    if kind == "jax":
        raise ArgumentError(f"{name}= is not supported for JAX arrays: they are immutable")
    want = problem.out_shape()
    if out.shape != want:
        raise ShapeError(f"{name} must have shape {want} for layout={problem.layout!r}; got {out.shape}")
    if out.dtype != problem.dtype:
        raise DTypeError(f"{name} must have dtype {problem.dtype} (the input dtype); got {out.dtype}")
    if out.device != problem.device:
        raise DeviceError(f"{name} must be on {problem.device} like q, k and v; got {out.device}")
    _canonical(out, name, problem.layout)
