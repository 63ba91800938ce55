"""The float64 reference against a brute-force per-element loop, on odd shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cupyflash import reference

from helpers import qkv


def brute_force(q, k, v, causal, offset, scale):
    b, sq, hq, _ = q.shape
    sk, hkv, dv = k.shape[1], k.shape[2], v.shape[3]
    out = np.zeros((b, sq, hq, dv))
    lse = np.full((b, hq, sq), -np.inf)
    for bi in range(b):
        for h in range(hq):
            kh = h // (hq // hkv)
            for i in range(sq):
                js = [j for j in range(sk) if not causal or j <= i + offset]
                if not js:
                    continue
                s = np.array([float(np.dot(q[bi, i, h].astype(np.float64), k[bi, j, kh].astype(np.float64))) * scale
                              for j in js])
                m = s.max()
                w = np.exp(s - m)
                out[bi, i, h] = (w[:, None] * v[bi, js, kh].astype(np.float64)).sum(0) / w.sum()
                lse[bi, h, i] = m + math.log(w.sum())
    return out, lse


@pytest.mark.parametrize("sq,sk", [(1, 1), (1, 7), (5, 3), (3, 5), (9, 9)])
@pytest.mark.parametrize("causal,alignment", [(False, "bottom_right"), (True, "bottom_right"), (True, "top_left")])
def test_reference_matches_brute_force(sq, sk, causal, alignment):
    q, k, v = qkv(np.random.default_rng(sq * 31 + sk), 2, sq, sk, 6, 2, 5, 3, "float32")
    out, lse = reference.attention(q, k, v, causal=causal, causal_alignment=alignment, return_lse=True)
    offset = sk - sq if alignment == "bottom_right" else 0
    want_out, want_lse = brute_force(q, k, v, causal, offset, 1 / math.sqrt(5))
    np.testing.assert_allclose(out, want_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.isinf(lse), np.isinf(want_lse))
    finite = np.isfinite(want_lse)
    np.testing.assert_allclose(lse[finite], want_lse[finite], rtol=1e-12)


def test_causal_mask_picture():
    """The docstring's picture for seqlen_q = 2, seqlen_k = 5: probe which keys get weight."""
    q = np.zeros((1, 2, 1, 1))
    k = np.zeros((1, 5, 1, 1))
    v = np.eye(5).reshape(1, 5, 1, 5)  # output column j = weight of key j
    br = reference.attention(q, k, v, causal=True)[0, :, 0] > 0
    tl = reference.attention(q, k, v, causal=True, causal_alignment="top_left")[0, :, 0] > 0
    assert br.astype(int).tolist() == [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    assert tl.astype(int).tolist() == [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0]]


def test_fully_masked_rows_are_zero_not_nan():
    q, k, v = qkv(np.random.default_rng(0), 1, 6, 2, 2, 1, 4, 4, "float64")
    out, lse = reference.attention(q, k, v, causal=True, return_lse=True)
    assert not np.isnan(out).any()
    assert (out[0, :4] == 0).all() and np.isneginf(lse[0, :, :4]).all()
    assert np.isfinite(lse[0, :, 4:]).all()


def test_bhsd_layout_equals_transposed_bshd():
    q, k, v = qkv(np.random.default_rng(3), 2, 7, 11, 4, 2, 8, 6, "float32")
    want = reference.attention(q, k, v, causal=True)
    t = lambda x: np.ascontiguousarray(x.transpose(0, 2, 1, 3))  # noqa: E731
    got = reference.attention(t(q), t(k), t(v), causal=True, layout="bhsd")
    np.testing.assert_allclose(t(got), want, rtol=1e-13)


def test_bfloat16_input_accepted():
    q, k, v = qkv(np.random.default_rng(4), 1, 3, 4, 2, 2, 8, 8, "bfloat16")
    out = reference.attention(q, k, v)
    assert out.dtype == np.float64 and out.shape == (1, 3, 2, 8)
