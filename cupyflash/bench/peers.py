"""The implementations a benchmark row is measured with.

Each peer has a ``name``, ``available() -> (bool, reason)`` and
``prepare(cfg, q, k, v) -> callable``. ``q, k, v`` are torch CUDA tensors in
(batch, seq, heads, dim) layout; each peer views them in its own layout
without copying (torch SDPA: transposed views; JAX: DLPack). ``prepare`` runs
the call once (compiling whatever needs compiling), so the callable it returns
only enqueues work: call it to launch one forward pass; it returns the output.
``bshd(out)`` turns that output into a torch tensor of shape (batch, seqlen_q,
heads_q, head_dim_v), for the float64 check that runs after the timing
(accuracy.py); ``precision`` is the accuracy the peer is held to there
("highest" for all but cupyflash's ``precision="fast"`` column).

A peer that cannot take a config raises :class:`PeerRejected` with the reason;
the report shows that reason in the row rather than dropping the peer.

torch and jax are imported lazily, inside methods, so this module imports on a
machine that has neither.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import warnings

from .results import OURS

# Implementations that materialise the full fp32 score matrix are skipped above
# this size: they would take minutes and tens of GB, and measure nothing useful.
MAX_SCORE_BYTES = 2 * 1024**3

TORCH_BACKENDS = {
    "torch-cudnn": "CUDNN_ATTENTION",
    "torch-flash": "FLASH_ATTENTION",
    "torch-efficient": "EFFICIENT_ATTENTION",
    "torch-math": "MATH",
}
JAX_IMPLS = {"jax-cudnn": "cudnn", "jax-xla": "xla"}


class PeerRejected(Exception):
    """This implementation does not run this config; ``str(e)`` says why."""


class PeerFailed(Exception):
    """This implementation should run this config but failed (e.g. a compile
    error); the cell is reported as an error and the run continues."""


def _first_line(exc: BaseException, limit: int = 160) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    return f"{type(exc).__name__}: {line}"[:limit]


def _import(module: str):
    """The module, or None when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _torch_cuda_status() -> tuple[bool, str]:
    torch = _import("torch")
    if torch is None:
        return False, "torch not installed"
    if not torch.cuda.is_available():
        return False, "torch sees no CUDA device"
    return True, ""


def _check_score_matrix(cfg, who: str) -> None:
    nbytes = cfg.score_elements() * 4
    if nbytes > MAX_SCORE_BYTES:
        raise PeerRejected(
            f"{who} materialises the {nbytes / 1e9:.1f} GB score matrix "
            f"(limit {MAX_SCORE_BYTES / 1e9:.1f} GB)")


def _check_top_left_causal(cfg, who: str) -> None:
    # Both torch SDPA (is_causal=True) and jax.nn.dot_product_attention align
    # the causal mask top-left; cupyflash aligns bottom-right. They agree only
    # when the two lengths are equal, so anything else is not the same problem.
    if cfg.causal and cfg.seqlen_q != cfg.seqlen_k:
        raise PeerRejected(f"{who} causal mask is top-left aligned only")


class CupyflashPeer:
    """Our kernel, called exactly as a user would call it, on torch tensors.
    ``backend`` is cupyflash.attention's (e.g. "mma" to time the portable
    sm_80 path on a Hopper GPU); "auto" is what users get. The float32 modes
    (FP32_MODES) appear as extra columns next to it, never as peers."""

    def __init__(self, backend: str = "auto", name: str = OURS, precision: str = "highest",
                 fp32_only: bool = False):
        self.backend = backend
        self.name = name
        self.precision = precision
        self.fp32_only = fp32_only

    @staticmethod
    def bshd(out):
        return out  # called on torch tensors in bshd, it returns one

    def available(self):
        ok, why = _torch_cuda_status()
        if not ok:
            return False, why
        try:
            cupyflash = importlib.import_module("cupyflash")
        except ImportError as exc:
            return False, f"not installed ({_first_line(exc)})"
        if not hasattr(cupyflash, "attention"):
            return False, "cupyflash has no attention()"
        return True, ""

    def prepare(self, cfg, q, k, v):
        import cupyflash
        import torch

        backend, precision = self.backend, self.precision
        if self.fp32_only and cfg.dtype != "fp32":
            raise PeerRejected(f"a float32 mode; this row is {cfg.dtype}")

        def call():
            return cupyflash.attention(q, k, v, causal=cfg.causal, backend=backend, precision=precision)

        # Argument rejections (cupyflash's ShapeError, DTypeError, ... derive
        # from ValueError/TypeError) become a "rejected" cell; a compile failure
        # becomes an "error" cell and the run goes on (the CUDA context is
        # intact). Anything else, a CUDA error above all, is a bug that stops
        # the run loudly; the runner still writes the partial results.
        try:
            call()
            torch.cuda.synchronize()
        except cupyflash.CompileError as exc:
            raise PeerFailed(_first_line(exc, 300)) from exc
        except (ValueError, TypeError, NotImplementedError,
                cupyflash.NoGPUError) as exc:
            raise PeerRejected(_first_line(exc)) from exc
        return call


class TorchSDPAPeer:
    """torch.nn.functional.scaled_dot_product_attention, one backend forced."""

    precision = "highest"

    def __init__(self, name: str, backend: str):
        self.name = name
        self.backend = backend

    @staticmethod
    def bshd(out):
        return out.transpose(1, 2)  # SDPA's (batch, heads, seq, dim)

    def available(self):
        ok, why = _torch_cuda_status()
        if not ok:
            return False, why
        attention = _import("torch.nn.attention")
        if attention is None or not hasattr(attention, "sdpa_kernel"):
            return False, "torch.nn.attention.sdpa_kernel missing (torch too old)"
        if not hasattr(attention.SDPBackend, self.backend):
            return False, f"SDPBackend.{self.backend} missing in this torch"
        return True, ""

    def prepare(self, cfg, q, k, v):
        import torch
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend, sdpa_kernel

        _check_top_left_causal(cfg, "torch SDPA")
        if self.backend == "MATH":
            _check_score_matrix(cfg, "the math backend")
        backend = getattr(SDPBackend, self.backend)
        # SDPA wants (batch, heads, seq, dim): strided views, no copy.
        qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
        kwargs = {"is_causal": cfg.causal}
        if cfg.heads_q != cfg.heads_kv:
            kwargs["enable_gqa"] = True

        def call():
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(qt, kt, vt, **kwargs)

        # A forced backend that cannot take the inputs raises RuntimeError
        # ("No available kernel") after warning why; keep the why.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                call()
                torch.cuda.synchronize()
            except torch.cuda.OutOfMemoryError as exc:
                raise PeerRejected("out of memory") from exc
            except (RuntimeError, ValueError, TypeError) as exc:
                raise PeerRejected(self._reason(exc, caught)) from exc
        return call

    @staticmethod
    def _reason(exc, caught) -> str:
        notes = []
        for w in caught:
            text = " ".join(str(w.message).split())
            # torch prefixes the real reasons with "... kernel not used because:".
            if text and not text.endswith("because:") and text not in notes:
                notes.append(text)
        if notes:
            return "; ".join(notes)[:300]
        return _first_line(exc, 300)


@functools.cache
def _jax():
    # JAX grabs 75% of GPU memory at first use unless told not to; torch
    # allocates the inputs, so leave it room.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import jax
    import jax.dlpack
    return jax


class JaxPeer:
    """jax.nn.dot_product_attention, jit-compiled, one implementation forced."""

    precision = "highest"
    own_stream = True  # JAX launches on its own stream, not torch's (timing.Sampler)

    def __init__(self, name: str, implementation: str):
        self.name = name
        self.implementation = implementation
        self._jitted = {}

    @staticmethod
    def bshd(out):
        import torch

        # Zero-copy, ordered after JAX's stream by the DLPack handshake; the
        # layout is already (batch, seq, heads, dim).
        return torch.from_dlpack(out)

    def available(self):
        ok, why = _torch_cuda_status()
        if not ok:
            return False, f"inputs are made with torch: {why}"
        if importlib.util.find_spec("jax") is None:
            return False, "jax not installed"
        jax = _jax()
        try:
            jax.devices("gpu")
        except RuntimeError as exc:
            return False, f"jax has no GPU backend ({_first_line(exc)})"
        if not hasattr(jax.nn, "dot_product_attention"):
            return False, "jax.nn.dot_product_attention missing (jax too old)"
        return True, ""

    def _fn(self, causal: bool):
        if causal not in self._jitted:
            jax = _jax()
            self._jitted[causal] = jax.jit(functools.partial(
                jax.nn.dot_product_attention, is_causal=causal,
                implementation=self.implementation))
        return self._jitted[causal]

    def prepare(self, cfg, q, k, v):
        import torch

        jax = _jax()
        _check_top_left_causal(cfg, "jax.nn.dot_product_attention")
        if cfg.dtype == "fp64" and not jax.config.jax_enable_x64:
            raise PeerRejected("float64 needs jax_enable_x64, off in this process (it would change every other row)")
        if self.implementation == "xla":
            _check_score_matrix(cfg, "the xla implementation")
        # Zero-copy views of torch's buffers; JAX's layout is also
        # (batch, seq, heads, dim) and it handles GQA itself.
        torch.cuda.synchronize()
        jq, jk, jv = (jax.dlpack.from_dlpack(x) for x in (q, k, v))
        fn = self._fn(cfg.causal)

        def call():
            return fn(jq, jk, jv)

        # Unsupported configs surface at trace time (ValueError,
        # NotImplementedError) or compile/run time (XlaRuntimeError, a
        # RuntimeError subclass, e.g. cuDNN refusing a head dim).
        try:
            call().block_until_ready()
        except (RuntimeError, ValueError, TypeError, NotImplementedError) as exc:
            if "RESOURCE_EXHAUSTED" in str(exc):
                raise PeerRejected("out of memory") from exc
            raise PeerRejected(_first_line(exc, 300)) from exc
        return call


# cupyflash's float32 modes, timed as extra columns of the fp32 rows:
# name -> (backend, precision)
FP32_MODES = {
    f"{OURS}-fp32split": ("wgmma", "highest"),  # fp16 hi + lo on wgmma: fp32 accuracy
    f"{OURS}-fp32fast": ("auto", "fast"),       # one rescaled fp16 pass: TF32-like error
}


def all_peers(backend: str = "auto", fp32_modes: bool = False):
    """Every implementation the benchmark knows, ours first (and, with
    ``fp32_modes``, our float32 modes next)."""
    peers = [CupyflashPeer(backend)]
    if fp32_modes:
        peers += [CupyflashPeer(be, name, prec, fp32_only=True) for name, (be, prec) in FP32_MODES.items()]
    peers += [TorchSDPAPeer(n, b) for n, b in TORCH_BACKENDS.items()]
    peers += [JaxPeer(n, i) for n, i in JAX_IMPLS.items()]
    return peers


PEER_NAMES = [OURS, *FP32_MODES, *TORCH_BACKENDS, *JAX_IMPLS]


def select_peers(names=None, backend: str = "auto", fp32_modes: bool = False):
    """cupyflash (with ``backend``) plus the named peers (all when ``names`` is
    empty; our float32 modes then only with ``fp32_modes``)."""
    if not names:
        return all_peers(backend, fp32_modes)
    unknown = sorted(set(names) - set(PEER_NAMES))
    if unknown:
        raise ValueError(f"unknown peer(s) {unknown}; choose from {PEER_NAMES}")
    wanted = set(names) | {OURS}
    return [p for p in all_peers(backend, fp32_modes=True) if p.name in wanted]
