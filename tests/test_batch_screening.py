"""Adversarial checks of the float32 screening of DreamComp (rule B) and Krotov-Hopfield (rule C).

The fast backends rank by a float32 product, then re-check in float64 (dot products in a
fixed order) every unit within a rigorous error margin of the best (of the k-th). This file
feeds them the inputs most likely to fool that: near ties between units at 1e-6 .. 1e-15
relative (one element apart, a scale factor apart, in several groups), long rows, values
over twelve decades, signed data whose sums cancel, bitwise-equal rows, duplicate samples,
products that underflow float32 and products too large for it, values exactly
representable (every sum exact) and not.

What is checked is what can be guaranteed. Let r_n be the reference's product of unit n
with sample x (its BLAS gemm in the model's dtype), d_n the fast backend's float64 dot
product, s_n the exact value and T_n = sum_j |a_nj x_j|. Then |r_n - s_n| <= E_ref,n =
gamma_D(u) T_n (u: the dtype's unit roundoff; plus float32 underflow), |d_n - s_n| <=
E_fast,n = gamma_D(2^-53) T_n, whatever the summation order. So:

* the fast winner (first, k-th unit) is the reference's whenever the reference's values
  are decided: r_w - r_n > E_ref,w + E_ref,n + E_fast,w + E_fast,n for every other n;
* it is always admissible: its exact value is within E_fast,f + E_fast,n* of the exact best
  n* (the exact values come from error-free products and math.fsum);
* with exactly representable data (every sum exact in any order), it is the reference's
  and the exact one, ties (equal exact values) to the lower index;
* bitwise-equal rows tie to the lower index (the reference's BLAS may round them apart:
  there the reference can pick another of them).

numba's batches with too many candidates take the winners from the product in W's dtype
as the reference does (no float64 re-check), so there only the reference's own error bound
applies. Weights after a batch are compared with the reference's update for the winners
(ranking) the backend picked, and with the reference's own batch when the winners agree.
Tolerances as in test_batch_backends.py.
"""
from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

import sparsedream_fast as sdf
from sparsedream_fast.dreamcomp import reference as dc_ref
from sparsedream_fast.krotov import reference as kh_ref

_AVAILABLE = {n: i for n, i in sdf.backends().items()}


def _ok(name):
    info = _AVAILABLE.get(name)
    return info is not None and info.available


#: cpp with its own AVX-512 float32 kernel, cpp with scipy's sgemm, numba (numpy's sgemm)
FAST = [pytest.param("cpp-avx512", marks=() if _ok("cpp") else pytest.mark.skip(reason="cpp: not available")),
        pytest.param("cpp-blas", marks=() if _ok("cpp") else pytest.mark.skip(reason="cpp: not available")),
        pytest.param("numba", marks=() if _ok("numba") else pytest.mark.skip(reason="numba: not available"))]
DTYPES = ["float64", "float32"]


class Fast:
    """One fast backend: its DreamComp and Krotov-Hopfield modules."""

    def __init__(self, name):
        self.name = name
        self.backend = name.split("-")[0]
        self.dc = importlib.import_module(f"sparsedream_fast.dreamcomp._{self.backend}")
        self.kh = importlib.import_module(f"sparsedream_fast.krotov._{self.backend}")

    def dc_run(self, W, V, zeta, eta):
        """One batch on W in place: (winners, number of batches ranked without screening)."""
        return self.dc._run(W, V, np.arange(V.shape[0], dtype=np.int64).reshape(1, 1, -1), zeta, eta)

    def kh_run(self, W, X, p, k, delta, eps, prec):
        return self.kh._run(W, X, np.arange(X.shape[0], dtype=np.int64).reshape(1, 1, -1), p, k, delta, eps, prec)

    def refined_fallback(self):
        """True when batches ranked by the product in W's dtype re-check near ties in float64."""
        return self.backend == "cpp"


@pytest.fixture
def fast(request, monkeypatch):
    """The backend, screening on, default threads; for cpp the float32 product chosen."""
    f = Fast(request.param)
    for mod in (f.dc, f.kh):
        monkeypatch.setattr(mod, "SCREEN", True)
    if f.backend != "cpp":
        yield f
        return
    core = importlib.import_module("sparsedream_fast._core")
    before = core.simd_level()
    if f.name == "cpp-avx512":
        if core.set_simd_level("avx512") != "avx512":
            core.set_simd_level(before)
            pytest.skip("no AVX-512 on this CPU: the float32 product is always scipy's sgemm")
    else:
        core.set_simd_level("avx2")
    try:
        yield f
    finally:
        core.set_simd_level(before)


def tol(dtype):
    return dict(rtol=1e-9, atol=1e-12) if np.dtype(dtype) == np.float64 else dict(rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------- error-free oracle
def _split(a):
    t = 134217729.0 * a  # 2^27 + 1 (Veltkamp): a = hi + lo, both 26 bits
    hi = t - (t - a)
    return hi, a - hi


def exact_dots(A, x, rows):
    """The exact products A[n] . x for n in rows, rounded once to float64 (error-free
    products, math.fsum; A, x float64-representable, no overflow or underflow)."""
    A = np.asarray(A, np.float64)
    x = np.asarray(x, np.float64)
    xh, xl = _split(x)
    out = np.empty(len(rows))
    for i, n in enumerate(rows):
        a = A[n]
        p = a * x
        ah, al = _split(a)
        e = ((ah * xh - p) + ah * xl + al * xh) + al * xl
        out[i] = math.fsum(np.concatenate([p, e]).tolist())
    return out


def gamma(n, u):
    return n * u / (1 - n * u)


def error_bounds(A, X, dtype):
    """(E_ref, E_fast), each (rows, B): bounds on |reference's product - exact| and on
    |float64 dot product - exact| (any summation order)."""
    K = A.shape[1]
    T = (np.abs(A.astype(np.float64)) @ np.abs(X.astype(np.float64)).T) * (1 + 4 * gamma(K, 2.0 ** -53))
    e_fast = gamma(K, 2.0 ** -53) * T + K * 2.0 ** -1070
    if np.dtype(dtype) == np.float64:
        e_ref = e_fast
    else:  # float32 gemm, with float32 underflow (products below 2^-126)
        e_ref = gamma(K, 2.0 ** -24) * T + K * 2.0 ** -148
    return e_ref, e_fast


def _order(v):
    """Indices by value descending, ties to the lower index (the rules' order)."""
    return np.lexsort((np.arange(v.size), -v))


def check_winners(A, X, picked, dtype, exact, reference_like):
    """Check a backend's winners ``picked`` (B,) against the reference's product of A
    (rows, K) with the batch X (B, K) and against the exact products.

    exact: every sum is exact (both sides then give the exact winner, ties to the lower
    index); reference_like: the backend took the argmax of a product in W's dtype without
    re-checking (numba's batches with too many candidates): only the reference's bound
    applies to it. Returns the number of samples the bounds decided (there the winner must
    be the reference's).
    """
    R = (A @ X.T).astype(np.float64)  # the reference's products (its gemm, its dtype)
    e_ref, e_fast = error_bounds(A, X, dtype)
    if exact:
        e_ref = e_fast = np.zeros_like(R)
    e_side = e_ref if reference_like else e_fast  # the backend's own error
    decided = 0
    for b in range(X.shape[0]):
        r, er, es = R[:, b], e_ref[:, b], e_side[:, b]
        w = int(np.argmax(r))
        others = np.arange(r.size) != w
        if exact or np.all(r[w] - r[others] > er[w] + es[w] + er[others] + es[others]):
            decided += 1
            assert picked[b] == w, (b, picked[b], w, r[picked[b]] - r[w])
            continue
        # undecided: the pick's exact value is within the backend's error of the exact best
        # (which is among the units the reference cannot tell from its own best)
        near = np.nonzero(r >= r[w] - 2 * (er.max() + es.max()))[0]
        assert picked[b] in near, (b, picked[b], w)
        s = exact_dots(A, X[b], near)
        assert s[np.searchsorted(near, picked[b])] >= s.max() - 2 * es.max(), (b, picked[b])
    return decided


def pinned_ranking(A, X, k, dtype, exact, reference_like):
    """The first and k-th unit of every sample of X as the error bounds pin them down for
    a backend: the reference's where its products decide them (then ``all_ref``), else the
    exact ranking, which must then stand apart by more than the backend's float64 error
    (the cases are built so). Returns (first, kth, all_ref)."""
    R = (A @ X.T).astype(np.float64)
    e_ref, e_fast = error_bounds(A, X, dtype)
    if exact:
        e_ref = e_fast = np.zeros_like(R)
    e_side = e_ref if reference_like else e_fast
    B = X.shape[0]
    first, kth = np.empty(B, np.int64), np.empty(B, np.int64)
    all_ref = True

    def apart(v, e, order, i):  # the unit of rank i stands apart from the others
        w, hi, lo = order[i], order[:i], order[i + 1:]
        return np.all(v[hi] - v[w] > e[hi] + e[w]) and np.all(v[w] - v[lo] > e[w] + e[lo])

    for b in range(B):
        r = R[:, b]
        order = _order(r)
        e = e_ref[:, b] + e_side[:, b]
        if exact or (apart(r, e, order, 0) and apart(r, e, order, k - 1)):
            first[b], kth[b] = order[0], order[k - 1]
            continue
        all_ref = False
        assert not reference_like, "the bounds decide nothing here: change the case"
        s = exact_dots(A, X[b], range(A.shape[0]))
        order = _order(s)
        e = 2 * e_side[:, b]
        assert apart(s, e, order, 0) and apart(s, e, order, k - 1), "the exact ranking is not decided"
        first[b], kth[b] = order[0], order[k - 1]
    return first, kth, all_ref


# ------------------------------------------------------------------------ reference updates
def dc_update_given(W, V, wins, zeta, eta):
    """The reference's DreamComp batch with the winners given."""
    N, B = W.shape[0], V.shape[0]
    S = W @ V.T
    M = np.zeros((N, B), dtype=W.dtype)
    M[wins, np.arange(B)] = 1
    M /= np.maximum(1, np.sum(M, axis=1)).reshape(-1, 1)
    s = np.sum(S * M, axis=1).reshape(-1, 1)
    W += ((M @ V) - (s * (W / zeta))) * eta


def kh_update_given(W, X, first, kth, p, delta, eps, prec):
    """The reference's Krotov-Hopfield batch with the first and k-th units given."""
    B = X.shape[0]
    I = kh_ref.currents(W, X, p)
    g = np.zeros(I.shape, dtype=W.dtype)
    g[first, np.arange(B)] = 1.0
    g[kth, np.arange(B)] = -delta
    xx = np.sum(g * I, axis=1)
    ds = g @ X - xx[:, None] * W
    W += eps * (ds / max(float(np.max(np.abs(ds))), prec))


# ------------------------------------------------------------------------ adversarial data
def _near_group(rng, base, n, rel, lead=None, N=None, scale_others=0.5, others=None):
    """Rows: ``n`` copies of ``base`` (each times 1 + m rel, m small integers, distinct if
    possible) at the rows ``lead`` of N rows whose others are ``others`` (default: random
    uniform rows times scale_others, far below the group on non-negative data)."""
    N = n if N is None else N
    W = rng.random((N, base.size)) * scale_others if others is None else others
    lead = np.arange(n) if lead is None else lead
    m = rng.permutation(np.arange(-(n // 2), n - n // 2))
    W[lead] = base * (1 + rel * m)[:, None]
    return W


def dc_case(name, dtype, rng):
    """(W, V, exact, full): W (N, D), the batch V (B, D); exact: every sum exact; full:
    whether the batch takes the product in W's dtype (1) or the screening (0)."""
    f64 = np.dtype(dtype) == np.float64
    if name == "one_element":  # 12 leaders one entry apart (relative 1e-11 / 1e-6), spikes in V
        D, N, B = 2048, 48, 32
        lead = rng.choice(N, 12, replace=False)
        W = rng.random((N, D)) * 0.5
        W[lead] = rng.random(D)
        j = rng.integers(0, D, 12)
        W[lead, j] *= 1 + (1e-11 if f64 else 1e-6) * rng.integers(-4, 5, 12)
        V = rng.random((B, D))
        V[:, j[:6]] *= 300.0  # those entries count
        return W, V, False, 0
    if name == "scale":  # 3 groups of 5 rows a factor 1 + m rel apart, rel 1e-7, 1e-10, 1e-12
        D, N, B = 1024, 60, 24
        W = rng.random((N, D)) * 0.8
        rels = (1e-7, 1e-10, 1e-12) if f64 else (1e-5, 1e-6, 1e-7)
        for g, rel in enumerate(rels):
            W = _near_group(rng, rng.random(D), 5, rel, lead=np.arange(g, N, 12)[:5], others=W)
        return W, rng.random((B, D)), False, 0
    if name in ("dyadic", "dyadic_leaders"):  # exactly representable, differences float32 cannot see
        if f64:  # multiples of 2^-8, moved by m 2^-34: every sum exact in float64
            D, N, B, q, qx, step = 1024, 48, 32, 256, 256, 2.0 ** -34
        else:  # multiples of 2^-3 and 2^-2, moved by m 2^-10: exact in float32
            D, N, B, q, qx, step = 512, 48, 32, 8, 4, 2.0 ** -10
        n = N if name == "dyadic" else 12
        W = np.floor(rng.random((N, D)) * q / 2) / q
        W[:n] = rng.integers(0, q, D) / q
        for _ in range(3):  # three entries per row, some where the samples are 0
            W[np.arange(n), rng.integers(0, D, n)] += step * rng.integers(-2, 3, n)
        V = rng.integers(0, qx, (B, D)) / qx
        V[:, : D // 4] = 0.0
        return np.abs(W)[rng.permutation(N)], V, True, int(name == "dyadic")
    if name == "ranges":  # values over twelve decades, near ties at 1e-9 / 1e-5 on a big entry
        D, N, B = 1000, 40, 24
        base = 10.0 ** rng.uniform(-6, 6, D)
        W = base * rng.random((N, D)) * 0.5
        lead = rng.choice(N, 10, replace=False)
        W[lead] = base
        j = np.argmax(base)
        W[lead, j] *= 1 + (1e-9 if f64 else 1e-5) * rng.permutation(np.arange(-5, 5))
        V = 10.0 ** rng.uniform(-6, 6, (B, D))
        V[::2, j] = 1e6  # there the entry decides
        return W, V, False, 0
    if name == "signed":  # normal values (the products cancel far below the norms)
        D, N, B = 512, 40, 24
        W = _near_group(rng, rng.normal(size=D), 10, 1e-10 if f64 else 1e-5, lead=np.arange(3, 40, 4),
                        others=rng.normal(size=(N, D)))
        return W, rng.normal(size=(B, D)), False, 0
    if name == "duplicates":  # every sample three times; 10 leaders 1e-12 / 1e-6 apart
        D, N, B = 700, 30, 30
        W = _near_group(rng, rng.random(D), 10, 1e-12 if f64 else 1e-6, lead=np.arange(29, 0, -3), N=N)
        return W, np.repeat(rng.random((B // 3, D)), 3, axis=0), False, 0
    if name == "tiny":  # dyadic times 2^-62: float32's products go subnormal (all candidates)
        D, N, B = 512, 32, 16
        W = np.tile(rng.integers(0, 64, D) / 64, (N, 1))
        W[np.arange(N), rng.integers(0, D, N)] += 2.0 ** -20 * rng.integers(-2, 3, N)
        return np.abs(W) * 2.0 ** -62, rng.integers(0, 64, (B, D)) / 64 * 2.0 ** -62, f64, 1
    if name == "subnormal":
        # multiples of 2^-75: every float32 product is a subnormal multiple of 2^-150 that
        # rounds to an even multiple of 2^-149: row 5's products (1 x 1) all round to 0,
        # row 2's (3 x 1) all round up by a third; float32 sees row 2 far ahead of row 5,
        # which wins in exact arithmetic (the margin's underflow term must catch it)
        D, N, B = 512, 12, 8
        W = (rng.random((N, D)) < 0.3).astype(np.float64)
        W[5] = 1.0
        W[2] = 0.0
        on = rng.choice(D, D // 3 - 1, replace=False)
        W[2, on] = 3.0
        V = np.ones((B, D))
        off = np.setdiff1d(np.arange(D), on)
        for b in range(B):  # row 5 stays ahead of row 2 by 5 - (the zeros) units of 2^-150
            V[b, rng.choice(off, b % 5, replace=False)] = 0.0
        return W * 2.0 ** -75, V * 2.0 ** -75, f64, 0
    if name == "all_equal":  # every row equal (exact values): more candidates than screened
        D, N, B = 300, 64, 20
        return np.tile(rng.integers(0, 16, D) / 16, (N, 1)), rng.integers(0, 4, (B, D)) / 4, True, 1
    raise ValueError(name)


DC_CASES = ["one_element", "scale", "dyadic", "dyadic_leaders", "ranges", "signed", "duplicates", "tiny",
            "subnormal", "all_equal"]


@pytest.mark.parametrize("case", DC_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fast", FAST, indirect=True)
def test_dreamcomp_winners_near_ties(fast, dtype, case):
    rng = np.random.default_rng(DC_CASES.index(case) + 10 * DTYPES.index(dtype))
    W0, V, exact, full_expected = dc_case(case, dtype, rng)
    W0, V = W0.astype(dtype), V.astype(dtype)
    D = W0.shape[1]
    zeta, eta = dc_ref.synapse_vectors(D - 2, 2, 10.0, 0.01, 0.05, dtype)
    W = W0.copy()
    wins, full = fast.dc_run(W, V, zeta, eta)
    assert full == full_expected
    np.testing.assert_array_equal(fast.dc.winners(W0, V), wins)
    decided = check_winners(W0, V, wins, dtype, exact, full > 0 and not fast.refined_fallback())
    if np.dtype(dtype) == np.float64:
        assert decided >= V.shape[0] // 4, "the case should be decided in float64 for most samples"
    # the weights: the reference's update for these winners (its own batch when they agree)
    Wg = W0.copy()
    dc_update_given(Wg, V, wins, zeta, eta)
    np.testing.assert_allclose(W, Wg, **tol(dtype))
    Wr = W0.copy()
    if np.array_equal(wins, dc_ref.batch_update(Wr, V, zeta, eta)):
        np.testing.assert_allclose(W, Wr, **tol(dtype))
    if case == "all_equal":
        np.testing.assert_array_equal(wins, 0)
    if case == "subnormal":
        np.testing.assert_array_equal(wins, 5)


@pytest.mark.parametrize("case", ["one_element", "scale", "dyadic_leaders", "ranges", "duplicates"])
def test_dreamcomp_cases_defeat_float32(case):
    """The cases are hard: the best drive has several others within the screening's float32
    margin, and within 1e-5 relative (most samples)."""
    W, V, _, _ = dc_case(case, "float64", np.random.default_rng(DC_CASES.index(case)))
    S = W @ V.T
    margin = 2 * 2 * (W.shape[1] + 4) * 2.0 ** -24 * np.linalg.norm(W, axis=1).max() * np.linalg.norm(V, axis=1)
    assert np.median((S >= S.max(axis=0) - margin).sum(axis=0)) >= 3
    best, second = np.sort(S, axis=0)[-1], np.sort(S, axis=0)[-2]
    assert np.median((best - second) / best) < 1e-5


# -------------------------------------------------------------------------- Krotov-Hopfield
def kh_case(name, dtype, rng):
    """(W, X, p, k, exact, full)."""
    f64 = np.dtype(dtype) == np.float64
    if name == "scale":  # 20 of 40 units a factor 1 + m rel apart (float32: decided exactly only)
        D, H, B = 384, 40, 16
        W = _near_group(rng, rng.random(D), 20, 1e-11 if f64 else 1e-6, lead=np.arange(1, 40, 2), N=H)
        return W, rng.random((B, D)), 2.0, 3, False, 0
    if name in ("dyadic", "dyadic_leaders"):  # one entry per unit moved by m 2^-30 (float32 2^-10)
        D, H, B = 512, 40, 16
        q, step = (256, 2.0 ** -30) if f64 else (8, 2.0 ** -10)
        n = H if name == "dyadic" else 12
        W = np.floor(rng.random((H, D)) * q / 2) / q
        W[:n] = rng.integers(0, q, D) / q
        W[np.arange(n), rng.integers(0, D, n)] += step * rng.integers(-3, 4, n)
        X = rng.integers(0, 4, (B, D)) / 4
        X[:, : D // 3] = 0.0
        return np.abs(W)[rng.permutation(H)], X, 2.0, 2, True, int(name == "dyadic")
    if name == "dyadic_p3":  # p = 3 (Wp = W |W|), signed values, exact sums
        D, H, B = 256, 36, 12
        W = np.tile(rng.integers(-8, 9, D) / 16, (H, 1))
        W[np.arange(H), rng.integers(0, D, H)] += (2.0 ** -20 if f64 else 2.0 ** -6) * rng.integers(-2, 3, H)
        return W, rng.integers(-2, 3, (B, D)) / 2, 3.0, 4, True, None
    if name == "signed":  # normal weights and data (cancelling sums), 10 units near-tied
        D, H, B = 256, 30, 16
        W = _near_group(rng, rng.normal(size=D), 10, 1e-9 if f64 else 1e-4, lead=np.arange(2, 30, 3),
                        others=rng.normal(size=(H, D)))
        return W, rng.normal(size=(B, D)), 2.0, 2, False, 0
    if name == "duplicates":  # every sample twice
        D, H, B = 300, 30, 16
        W = _near_group(rng, rng.random(D), 14, 1e-11 if f64 else 1e-6, lead=np.arange(29, 1, -2), N=H)
        return W, np.repeat(rng.random((B // 2, D)), 2, axis=0), 2.0, 2, False, 0
    if name in ("k_leaders", "kth_pair", "first_pair"):
        # exactly k = 3 candidates, some in an order float32 cannot see (the float64 order
        # puts the higher index first). k_leaders: all three within float32's rounding, the
        # rest far below; kth_pair: one unit far ahead, then two within float32's rounding
        # (the k-1-th and the k-th); first_pair: the first two within float32's rounding,
        # the k-th far below them (and far above the rest)
        D, H, B = 300, 30, 12
        W = rng.random((H, D)) * 0.3
        base = rng.random(D)
        rel = 1e-12 if f64 else 1e-7
        if name == "k_leaders":
            W[[4, 11, 25]] = base * (1 + rel * np.array([0.0, 1.0, 2.0]))[:, None]
        elif name == "kth_pair":
            W[7] = base * 1.5
            W[[12, 20]] = base * (1 + rel * np.array([0.0, 1.0]))[:, None]
        else:
            W[[3, 17]] = base * 1.5 * (1 + rel * np.array([0.0, 1.0]))[:, None]
            W[9] = base
        X = rng.random((B, D))
        return W, X, 2.0, 3, False, 0
    if name == "all_equal":  # every unit equal (exact values): more candidates than screened
        D, H, B = 200, 40, 12
        return np.tile(rng.integers(-4, 5, D) / 8, (H, 1)), rng.integers(0, 3, (B, D)) / 2, 2.0, 2, True, 1
    raise ValueError(name)


KH_CASES = ["scale", "dyadic", "dyadic_leaders", "dyadic_p3", "signed", "duplicates", "k_leaders", "kth_pair",
            "first_pair", "all_equal"]
KH_HYPER = dict(delta=0.4, eps=0.02, prec=1e-30)


def powers(W, p):
    return np.sign(W) * np.abs(W) ** (p - 1)


@pytest.mark.parametrize("case", KH_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fast", FAST, indirect=True)
def test_krotov_rankings_near_ties(fast, dtype, case):
    """The first and k-th units, seen through the weights after one batch: the reference's
    ranking where its products decide it, else the exact one (float32 cases whose near ties
    lie within the reference's float32 rounding but far above float64's)."""
    rng = np.random.default_rng(100 + KH_CASES.index(case) + 10 * DTYPES.index(dtype))
    W0, X, p, k, exact, full_expected = kh_case(case, dtype, rng)
    W0, X = W0.astype(dtype), X.astype(dtype)
    W = W0.copy()
    full = fast.kh_run(W, X, p, k, **KH_HYPER)
    if full_expected is not None:
        assert full == full_expected
    first, kth, all_ref = pinned_ranking(powers(W0, p), X, k, dtype, exact,
                                         full > 0 and not fast.refined_fallback())
    if np.dtype(dtype) == np.float64:
        assert all_ref, "float64 cases are meant to be decided against the reference"
    Wg = W0.copy()
    kh_update_given(Wg, X, first, kth, p, **KH_HYPER)
    np.testing.assert_allclose(W, Wg, **tol(dtype))
    if all_ref:
        Wr = W0.copy()
        kh_ref.batch_update(Wr, X, p, k, **KH_HYPER)
        np.testing.assert_allclose(W, Wr, **tol(dtype))
    if case == "all_equal":
        np.testing.assert_array_equal(first, 0)
        np.testing.assert_array_equal(kth, k - 1)


# ---------------------------------------------------------------------------- more shapes
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fast", FAST, indirect=True)
def test_equal_random_rows_tie_to_the_lowest(fast, dtype):
    """Bitwise-equal rows with random (inexact) values among distinct ones: the screened
    winner and first unit are the lowest of them (a BLAS may round them apart; the
    screening's float64 re-check does not)."""
    rng = np.random.default_rng(7)
    D, N, B = 777, 45, 40
    W0 = rng.random((N, D))
    lead = [6, 13, 29, 31, 44]  # at different places of the gemm's tiles
    W0[lead] = W0[0] * 1.5
    W0, V = W0.astype(dtype), rng.random((B, D)).astype(dtype)
    zeta, eta = dc_ref.synapse_vectors(D - 2, 2, 10.0, 0.01, 0.05, dtype)
    W = W0.copy()
    wins, full = fast.dc_run(W, V, zeta, eta)
    assert full == 0
    np.testing.assert_array_equal(wins, 6)
    Wg = W0.copy()
    dc_update_given(Wg, V, wins, zeta, eta)
    np.testing.assert_allclose(W, Wg, **tol(dtype))
    H0 = rng.normal(size=(N, D))
    H0[lead] = np.abs(H0[0]) * 2.0  # first 6, k-th (k = 4) 31
    H0, X = H0.astype(dtype), rng.random((B, D)).astype(dtype)
    H = H0.copy()
    assert fast.kh_run(H, X, 3.0, 4, **KH_HYPER) == 0
    Hg = H0.copy()
    kh_update_given(Hg, X, np.full(B, 6), np.full(B, 31), 3.0, **KH_HYPER)
    np.testing.assert_allclose(H, Hg, **tol(dtype))


@pytest.mark.parametrize("fast", FAST, indirect=True)
def test_huge_products_fall_back_exactly(fast):
    """float64 products beyond float32's range (dyadic data times 2^70 and 2^40: exact
    sums): the product in float64, and the reference's winners and ranking."""
    rng = np.random.default_rng(8)
    D, N, B = 400, 40, 20
    W0 = np.tile(rng.integers(0, 64, D) / 64, (N, 1))
    W0[np.arange(N), rng.integers(0, D, N)] += 2.0 ** -30 * rng.integers(-2, 3, N)
    W0 = np.abs(W0) * 2.0 ** 70
    V = rng.integers(0, 4, (B, D)) / 4 * 2.0 ** 40
    zeta, eta = dc_ref.synapse_vectors(D - 2, 2, 10.0, 0.01, 0.05, "float64")
    W, Wr = W0.copy(), W0.copy()
    wins, full = fast.dc_run(W, V, zeta, eta)
    assert full == 1
    np.testing.assert_array_equal(wins, dc_ref.batch_update(Wr, V, zeta, eta))
    np.testing.assert_allclose(W, Wr, **tol("float64"))
    H, Hr = W0.copy(), W0.copy()
    assert fast.kh_run(H, V, 2.0, 3, **KH_HYPER) == 1
    kh_ref.batch_update(Hr, V, 2.0, 3, **KH_HYPER)
    np.testing.assert_allclose(H, Hr, **tol("float64"))


def _groups(rng, D, N, n_groups, size, rel):
    """N rows: n_groups groups of `size` rows a factor 1 + m rel apart (the groups' bases
    random, comparable), the other rows random and far below."""
    W = rng.random((N, D)) * 0.3
    rows = rng.permutation(N)[: n_groups * size].reshape(n_groups, size)
    for g in range(n_groups):
        W = _near_group(rng, rng.random(D), size, rel, lead=rows[g], others=W)
    return W


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fast", FAST, indirect=True)
def test_fit_keeps_its_float32_copies_current(fast, dtype):
    """A fit over many screened batches of near-tied rows: the screening's float32 copy
    and row norms of every row an update changed must follow it (a winner moves off its
    group and may win again later). The reference's fit; every batch of the reference is
    decided by the bounds (checked while replaying it)."""
    rng = np.random.default_rng(9)
    D, N, B, nb = 200, 40, 8, 16
    rel = 1e-9 if np.dtype(dtype) == np.float64 else 1e-3
    V = rng.random((nb * B, D)).astype(dtype)
    batches = np.arange(nb * B, dtype=np.int64).reshape(1, nb, B)
    W0 = _groups(rng, D, N, 4, 4, rel).astype(dtype)
    zeta, eta = dc_ref.synapse_vectors(D - 2, 2, 10.0, 0.2, 0.2, dtype)
    Wr = W0.copy()
    for i in range(nb):
        Vb = V[batches[0, i]]
        assert check_winners(Wr, Vb, np.argmax(Wr @ Vb.T, axis=0), dtype, False, False) == B
        dc_ref.batch_update(Wr, Vb, zeta, eta)
    W = W0.copy()
    assert fast.dc._run(W, V, batches, zeta, eta)[1] == 0
    np.testing.assert_allclose(W, Wr, **tol(dtype))
    H0 = _groups(rng, D, N, 3, 4, rel).astype(dtype)
    Hr = H0.copy()
    for i in range(nb):
        Xb = V[batches[0, i]]
        assert pinned_ranking(Hr, Xb, 3, dtype, False, False)[2]
        kh_ref.batch_update(Hr, Xb, 2.0, 3, 0.4, 0.05, 1e-30)
    H = H0.copy()
    assert fast.kh._run(H, V, batches, 2.0, 3, 0.4, 0.05, 1e-30, 0, 1) == 0
    np.testing.assert_allclose(H, Hr, **tol(dtype))


@pytest.mark.parametrize("fast", FAST, indirect=True)
def test_sample_beyond_float32_range(fast):
    """A float64 sample entry beyond float32's range (1e39) with small weights: the products
    stay far below 1e30, but the entry is inf in float32 and its products with zero weights
    NaN (no candidates: the screening once took a stale candidate (cpp) or unit -1 (numba)).
    Such a batch takes the float64 product: the reference's winners and ranking."""
    D, N, B = 20, 8, 2
    W0 = np.zeros((N, D))
    W0[3, :8] = 1e-12  # row 3 on entries 0..7, row 5 on 8..15; entry 19 in no row
    W0[5, 8:16] = 1e-12
    V = np.zeros((2 * B, D))
    V[:B, :8] = 0.5  # batch 1: row 3 wins
    V[B:, 8:16] = 0.5  # batch 2: row 5 wins, and entry 19 is 1e39
    V[B:, 19] = 1e39
    batches = np.arange(2 * B, dtype=np.int64).reshape(1, 2, B)
    zeta, eta = np.ones(D), np.full(D, 1e-20)  # the weights stay small
    Wr = W0.copy()
    for i in range(2):
        wins_r = dc_ref.batch_update(Wr, V[batches[0, i]], zeta, eta)
    W = W0.copy()
    with np.errstate(invalid="ignore", over="ignore"):
        wins, full = fast.dc._run(W, V, batches, zeta, eta)
        np.testing.assert_array_equal(fast.dc.winners(np.zeros((N, D)), V[B:]), 0)
    assert full == 1
    np.testing.assert_array_equal(wins, wins_r)
    np.testing.assert_array_equal(wins, 5)
    np.testing.assert_allclose(W, Wr, **tol("float64"))
    H0 = W0.copy()
    H0[6, 8:16] = 0.5e-12  # second to row 5 in batch 2
    Hr = H0.copy()
    kh_ref.fit(Hr, V, batches, 2.0, 2, 0.4, 1e-15, 1e-30, 0, 1)
    H = H0.copy()
    with np.errstate(invalid="ignore", over="ignore"):
        assert fast.kh._run(H, V, batches, 2.0, 2, 0.4, 1e-15, 1e-30, 0, 1) == 1
    np.testing.assert_allclose(H, Hr, **tol("float64"))
