"""The call cache (cupyflash._callcache) returns what validation from scratch
returns, raises what it raises, and never lets one call's entry serve another
whose metadata differs. Metadata-only fake arrays: no GPU needed."""

from __future__ import annotations

import gc
import random
import weakref

import numpy as np
import pytest

from cupyflash import _callcache
from cupyflash._callcache import CALL_CACHE_SIZE, prepare
from cupyflash.errors import ArgumentError, DeviceError, DTypeError, LayoutError, ShapeError

from array_fakes import FakeCupyArray, FakeTorchTensor

SHAPE = (2, 64, 4, 64)
DEFAULTS = dict(out=None, causal=False, causal_alignment="bottom_right", softmax_scale=None, layout="bshd",
                return_lse=False, backend="auto", precision="highest")


@pytest.fixture(autouse=True)
def empty_cache():
    _callcache._validate_signatures.cache_clear()
    yield
    _callcache._validate_signatures.cache_clear()


def call(q, k, v, **kw):
    a = {**DEFAULTS, **kw}
    return prepare(q, k, v, a["out"], a["causal"], a["causal_alignment"], a["softmax_scale"], a["layout"],
                   a["return_lse"], a["backend"], a["precision"])


def from_scratch(q, k, v, **kw):
    a = {**DEFAULTS, **kw}
    return _callcache._validate(_callcache._describe_array, q, k, v, a["out"], a["causal"], a["causal_alignment"],
                                a["softmax_scale"], a["layout"], a["return_lse"], a["backend"], a["precision"])


def outcome(fn, *args, **kw):
    """What a call gives: its result, or its exception's type and message."""
    try:
        return fn(*args, **kw)
    except (ShapeError, DTypeError, LayoutError, DeviceError, ArgumentError, ValueError) as exc:
        return type(exc), str(exc)


def torch_qkv(**kw):
    return tuple(FakeTorchTensor(SHAPE, **kw) for _ in range(3))


def test_hit_returns_the_same_entry_for_equal_metadata():
    first = call(*torch_qkv())
    again = call(*torch_qkv(ptr=0x7F0000001000))  # other arrays, other addresses, same metadata
    assert again is first and again == from_scratch(*torch_qkv())
    info = _callcache._validate_signatures.cache_info()
    assert (info.hits, info.misses) == (1, 1)


# Each changes one thing that validation reads; none may be served the base call's entry.
VARIANTS = {
    "k strides": lambda: (FakeTorchTensor(SHAPE), FakeTorchTensor(SHAPE, strides=(64 * 4 * 64 * 2, 64, 4 * 64, 1)),
                          FakeTorchTensor(SHAPE)),
    "dtype": lambda: torch_qkv(dtype="bfloat16"),
    "seqlen": lambda: tuple(FakeTorchTensor((2, 65, 4, 64)) for _ in range(3)),
    "device": lambda: torch_qkv(device=1),
    "library": lambda: tuple(FakeCupyArray(SHAPE) for _ in range(3)),
}
FLAG_VARIANTS = [{"causal": True}, {"causal": True, "causal_alignment": "top_left"}, {"softmax_scale": 0.5},
                 {"softmax_scale": np.float64(0.5)}, {"softmax_scale": 2}, {"layout": "bhsd"}, {"return_lse": True}, {"backend": "mma"},
                 {"out": FakeTorchTensor(SHAPE)}, {"out": FakeTorchTensor(SHAPE, strides=(64 * 8 * 64, 8 * 64, 64, 1))}]


@pytest.mark.parametrize("name", VARIANTS)
def test_arrays_that_differ_get_their_own_entry(name):
    base = call(*torch_qkv())
    arrays = VARIANTS[name]()
    got = call(*arrays)
    assert got is not base and got == from_scratch(*arrays)
    assert call(*VARIANTS[name]()) is got  # and are served it again


@pytest.mark.parametrize("flags", FLAG_VARIANTS, ids=lambda f: ",".join(f"{k}={v!r}"[:24] for k, v in f.items()))
def test_arguments_that_differ_get_their_own_entry(flags):
    base = call(*torch_qkv())
    got = call(*torch_qkv(), **flags)
    assert got is not base and got == from_scratch(*torch_qkv(), **flags)


BAD_AFTER_GOOD = [
    # (kwargs of a valid call, the same call made invalid, exception, message)
    ({}, {"q": FakeTorchTensor(SHAPE, strides=(64 * 4 * 128, 4 * 128, 128, 2))}, LayoutError, r"q: the last axis"),
    ({}, {"q": FakeTorchTensor(SHAPE, dtype="int32")}, DTypeError, r"same dtype; got q int32"),
    ({}, {"v": FakeTorchTensor((2, 64, 4, 300))}, ShapeError, r"head_dim of v"),
    ({}, {"k": FakeCupyArray(SHAPE)}, DeviceError, r"same device|same array library"),
    ({}, {"k": [[1.0]]}, DTypeError, r"k: expected a NumPy"),
    ({"causal": True}, {"causal": 1}, ArgumentError, r"causal must be True"),  # 1 == True, hash(1) == hash(True)
    ({"return_lse": False}, {"return_lse": 0}, ArgumentError, r"return_lse must be"),
    ({"softmax_scale": 1}, {"softmax_scale": True}, ArgumentError, r"softmax_scale"),
    ({"softmax_scale": 0.5}, {"softmax_scale": np.float32(0.5)}, ArgumentError, r"softmax_scale"),
    ({"softmax_scale": 0.5}, {"softmax_scale": float("nan")}, ArgumentError, r"softmax_scale"),
    ({"layout": "bshd"}, {"layout": ["bshd"]}, ArgumentError, r"layout must be one of"),  # unhashable
    ({"backend": "auto"}, {"backend": "cudnn"}, ArgumentError, r"backend must be one of"),
    ({"out": FakeTorchTensor(SHAPE)}, {"out": FakeTorchTensor((2, 64, 4, 32))}, ShapeError, r"out must have shape"),
    ({"out": FakeTorchTensor(SHAPE)}, {"out": FakeTorchTensor(SHAPE, dtype="float32")}, DTypeError, r"out must have"),
    ({"out": FakeTorchTensor(SHAPE)}, {"out": FakeTorchTensor(SHAPE, device=1)}, DeviceError, r"out must be on"),
    ({"out": FakeTorchTensor(SHAPE)}, {"out": np.zeros(SHAPE, np.float16)}, DeviceError, r"out is a numpy array"),
]


@pytest.mark.parametrize("good,bad,exc,msg", BAD_AFTER_GOOD, ids=[str(list(c[1])[0]) + str(i)
                                                                  for i, c in enumerate(BAD_AFTER_GOOD)])
def test_invalid_call_after_a_valid_similar_one_still_raises(good, bad, exc, msg):
    def args(kw):
        q, k, v = torch_qkv()
        kw = {"q": q, "k": k, "v": v, **kw}
        return (kw.pop("q"), kw.pop("k"), kw.pop("v")), kw

    a, kw = args(good)
    call(*a, **kw)
    call(*a, **kw)
    for _ in range(2):  # an exception is never cached
        a, kw = args({**good, **bad})
        with pytest.raises(exc, match=msg):
            call(*a, **kw)


def test_errors_keep_their_order_when_no_key_can_be_made():
    """q's own error comes first, even though out (no array) has no signature."""
    with pytest.raises(ShapeError, match="q must be 4-D"):
        call(FakeTorchTensor((2, 64, 4)), *torch_qkv()[1:], out=[0.0])
    with pytest.raises(DTypeError, match="out: expected a NumPy"):
        call(*torch_qkv(), out=[0.0])


def test_random_calls_match_validation_from_scratch():
    """Differential: 600 calls from a small space of near-identical arguments (so
    most keys repeat) give what validation from scratch gives, result or error."""
    rng = random.Random(0)
    strides = [None, (64 * 4 * 64 * 2, 64, 4 * 64, 1), (64 * 4 * 64, 4 * 64, 64, 2)]
    make = [lambda **kw: FakeTorchTensor(**kw), lambda **kw: FakeCupyArray(**kw)]
    choices = dict(
        causal=[False, True, 1], causal_alignment=["bottom_right", "top_left", "center"],
        softmax_scale=[None, 0.5, np.float64(0.5), np.float32(0.5), 1, True, -1.0], layout=["bshd", "bhsd"], return_lse=[False, True, 0],
        backend=["auto", "simt", "cudnn"], precision=["highest", "fast"])

    def array():
        return rng.choice(make)(shape=rng.choice([SHAPE, (2, 64, 2, 64), (2, 64, 4, 32)]),
                                dtype=rng.choice(["float16", "float32", "int32"]), strides=rng.choice(strides),
                                device=rng.choice([0, 0, 1]))

    calls = []
    for _ in range(200):
        q = array()
        k = q if rng.random() < 0.5 else array()
        kw = {name: rng.choice(values) for name, values in choices.items()}
        kw["out"] = rng.choice([None, None, q, array()])
        calls.append(((q, k, k), kw))
    for (q, k, v), kw in calls * 3:
        assert outcome(call, q, k, v, **kw) == outcome(from_scratch, q, k, v, **kw)
    assert _callcache._validate_signatures.cache_info().hits > 0


def test_cache_is_bounded():
    for sk in range(1, CALL_CACHE_SIZE + 20):
        kv = FakeTorchTensor((1, sk, 4, 64))
        call(FakeTorchTensor((1, 8, 4, 64)), kv, kv)
    info = _callcache._validate_signatures.cache_info()
    assert info.maxsize == CALL_CACHE_SIZE and info.currsize == CALL_CACHE_SIZE


def test_entries_keep_no_array_alive():
    q, k, v = torch_qkv()
    refs = [weakref.ref(x) for x in (q, k, v)]
    call(q, k, v)
    del q, k, v
    gc.collect()
    assert all(r() is None for r in refs)


@pytest.mark.parametrize("make", [FakeTorchTensor, FakeCupyArray, lambda shape: np.zeros(shape, np.float16)],
                         ids=["torch", "cupy", "numpy"])
def test_describe_is_info_of_signature(make):
    from cupyflash._arrays import adapter_for

    for shape in (SHAPE, (1, 2, 3, 8)):
        x = make(shape)
        adapter = adapter_for(x, "x")
        assert adapter.describe(x) == adapter.info(adapter.signature(x))
        assert adapter.describe(x).shape == shape
