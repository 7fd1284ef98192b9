"""The numpy reference (backend="numpy") reproduces the research notebooks' training loops.

The expected values come from ``tests/notebook_oracles.py``: the notebooks' loops
(seeds 000 and 001) transcribed cell by cell, sharing no code with the library. Each case
runs the oracle and the library model from the same initial weights (and initial learned
lateral), on the same data, in the same per-epoch order, and compares the final weights
(and the learned lateral) in float64 with ``rtol=1e-9``.

Why ``rtol=1e-9`` is a fair bound: the library and the notebook do the same arithmetic in a
different order (sparse vs dense products, only active rows updated, stencil vs matrix),
so they differ by rounding (~1e-15). ``test_oracle_is_well_conditioned`` shows, for every
case, that a 1e-9 relative perturbation of the initial weights moves the oracle's result
by less than 1e-7 relative (no chaotic amplification, and no winner set within ~1e-9 of
flipping), so rounding-level differences stay far below 1e-9.

The order of the data: the model draws ``rng = np.random.default_rng(seed)``; with an
explicit ``init`` array and a non-random lateral no draw precedes training; then it takes
``rng.permutation(n)[:steps]`` per epoch (``shuffle=True``) or ``arange(n)[:steps]``
(``shuffle=False``). The oracles take the full permutation and use its first ``steps``
entries, exactly as the notebooks do (``inputs = data[permutation]``, ``inputs[i]`` for
``i < T_s``).
"""
from __future__ import annotations

import importlib
import importlib.util
import pathlib
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal


def _load_oracles():
    # pytest runs with --import-mode=importlib, so tests/ is not on sys.path: load by path.
    name = "notebook_oracles"
    if name in sys.modules:
        return sys.modules[name]
    path = pathlib.Path(__file__).with_name("notebook_oracles.py")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


nb = _load_oracles()

RTOL = 1e-9
SEED = 7           # the model's seed: it fixes the per-epoch permutations
GRID = (6, 8)      # Ky rows, Kx columns: not square, so rows and columns cannot be confused
KY, KX = GRID
N = KY * KX
D = 144
N_SAMPLES = 300
STEPS = 250
EPOCHS = 2


@pytest.fixture(scope="module")
def sdf():
    """The library; the oracle-only tests below run without it."""
    return importlib.import_module("sparsedream_fast")


# ------------------------------------------------------------------------ inputs
def _random_data(seed=1, n=N_SAMPLES, d=D, density=0.3):
    """Sparse-ish random 'images' in [0, 1): float64, so there are no ties among winners."""
    rng = np.random.default_rng(seed)
    return rng.random((n, d)) * (rng.random((n, d)) < density)


def _perms(n, epochs=EPOCHS, seed=SEED):
    """The model's per-epoch orders (full permutations; the first ``steps`` are used)."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(epochs)]


X_RANDOM = _random_data()
_init = np.random.default_rng(2)
W0_SEED001 = _init.uniform(0.15, 0.16, (N, D))        # seed 001: U(.15, .16)
W0_UNIT = _init.uniform(0.0, 1.0, (N, D))             # seed 000: U(0, 1)
W0_HALF = _init.uniform(0.0, 0.5, (N, D))             # seed 000 In [37] / [58]: U(0, max_syn)
LEX0_MASKED = _init.uniform(0.0, 1.0, (N, N)) * nb.notebook_lateral(KY, KX, ex=2, value=1)
LEX0_FULL = _init.uniform(0.0, 0.5, (N, N))           # seed 000 In [37]: all pairs
np.fill_diagonal(LEX0_FULL, 0)

NOTEBOOK_BOX = nb.notebook_lateral(KY, KX, ex=2, value=0.1)      # with the off-by-one


def _correct_box(ky, kx, radius, value):
    """The box without the off-by-one: ``value`` where |dy| <= r, |dx| <= r, n != m."""
    y, x = np.divmod(np.arange(ky * kx), kx)
    near = (np.abs(y[:, None] - y[None, :]) <= radius) & (np.abs(x[:, None] - x[None, :]) <= radius)
    np.fill_diagonal(near, False)
    return np.where(near, float(value), 0.0)


def _correct_row_normalized_box(ky, kx, radius):
    box = _correct_box(ky, kx, radius, 1.0)
    return box / box.sum(axis=1, keepdims=True)


def _tapestry_frames(n_frames=400):
    """Seed 001 In [2]/[4] on a 6 x 6 tapestry of sklearn digits (8x8 -> 24x24, padded to 28)."""
    try:
        from sklearn.datasets import load_digits
        digits = load_digits().images[:36] / 16.0
        tiles = np.zeros((36, 28, 28))
        tiles[:, 2:26, 2:26] = np.kron(digits, np.ones((3, 3)))
    except ImportError:  # random blob 'digits' instead
        rng = np.random.default_rng(3)
        tiles = rng.random((36, 28, 28)) * (rng.random((36, 28, 28)) < 0.25)
    tapestry = nb.notebook_tapestry(tiles, t_sl=6, m_sl=28)
    return nb.notebook_tapestry_walk(tapestry, np.random.RandomState(0), t_sl=6, m_sl=28,
                                     sl=20, img_count=n_frames)


# ------------------------------------------------------------------------- cases
# Each case: data, initial weights (and lateral), the oracle call, and the library options.
# ``oracle(w0)`` returns W or (W, lateral).

def _case_001_in12():
    """Seed 001 In [12]: p += L p, o = mask * c, error not clipped (dense notebook matrix)."""
    return dict(
        X=X_RANDOM, W0=W0_SEED001, shuffle=True,
        oracle=lambda w0: nb.seed001_in12(w0, NOTEBOOK_BOX, X_RANDOM, _perms(N_SAMPLES), STEPS,
                                          n_w=5, xi=0.01),
        opts=dict(k=5, lr=0.01, competition="lateral", output="competition",
                  lateral=NOTEBOOK_BOX, error_clip=None))


def _case_001_in15():
    """Seed 001 In [15]/[16]: as In [12], error clipped to [-1, 1] (notebook matrix as csr_array)."""
    return dict(
        X=X_RANDOM, W0=W0_SEED001, shuffle=True,
        oracle=lambda w0: nb.seed001_in15(w0, NOTEBOOK_BOX, X_RANDOM, _perms(N_SAMPLES), STEPS,
                                          n_w=5, xi=0.03),
        opts=dict(k=5, lr=0.03, competition="lateral", output="competition",
                  lateral=sp.csr_array(NOTEBOOK_BOX), error_clip=1.0))


def _case_001_in23():
    """Seed 001 In [23]/[29]: compete on p + L p, output mask * p, clipped error."""
    return dict(
        X=X_RANDOM, W0=W0_SEED001, shuffle=True,
        oracle=lambda w0: nb.seed001_in23(w0, NOTEBOOK_BOX, X_RANDOM, _perms(N_SAMPLES), STEPS,
                                          n_w=5, xi=0.03),
        opts=dict(k=5, lr=0.03, competition="lateral", output="drive",
                  lateral=sp.csr_array(NOTEBOOK_BOX), error_clip=1.0))


def _case_001_in31_trace():
    """Seed 001 In [31]: trace o += (mask * p - o) * 0.5, data in order, o zeroed per epoch.

    The library drops trace entries below 1e-12 of the largest (design.md, rule A.5); the
    notebook keeps them. A dropped entry would have moved its row by ~1e-12 relative,
    and it changes r by as little, so rtol=1e-9 still holds.
    """
    return dict(
        X=X_RANDOM, W0=W0_SEED001, shuffle=False,
        oracle=lambda w0: nb.seed001_in31(w0, NOTEBOOK_BOX, X_RANDOM, None, STEPS,
                                          n_w=5, xi=0.03, epochs=EPOCHS, alpha=0.5),
        opts=dict(k=5, lr=0.03, competition="lateral", output="drive",
                  lateral=NOTEBOOK_BOX, error_clip=1.0, trace=0.5))


def _case_000_in6_weighted_average():
    """Seed 000 In [6]: p = W v^2 / max(W v, prec) is the competition and the output."""
    return dict(
        X=X_RANDOM, W0=W0_UNIT, shuffle=True,
        oracle=lambda w0: nb.seed000_in6_weighted_average(w0, X_RANDOM, _perms(N_SAMPLES), STEPS,
                                                          n_w=10, xi=0.01),
        opts=dict(k=10, lr=0.01, competition="weighted_average", output="competition",
                  lateral=None, error_clip=None))


def _case_000_in19_learned_lateral():
    """Seed 000 In [19]: learned lateral on the (off-by-one) box mask, no bounds."""
    return dict(
        X=X_RANDOM, W0=W0_UNIT, L0=LEX0_MASKED, shuffle=True,
        oracle=lambda w0: nb.seed000_in19_learned_lateral(w0, LEX0_MASKED, X_RANDOM,
                                                          _perms(N_SAMPLES), STEPS, n_w=3, xi=0.01),
        opts=dict(k=3, lr=0.01, competition="normalized_lateral", output="competition",
                  lateral=LEX0_MASKED, learn_lateral=True, lateral_lr=None, error_clip=None))


IN37_MAX_SYN = 0.1


def _case_000_in37_learned_lateral_clip():
    """Seed 000 In [37]: learned lateral over all pairs, clip(., 0, max_syn) at i % 100 == 0.

    On this data the weights settle well below the notebook's max_syn = 0.5, so the case
    uses max_syn = 0.1 (W0 and L0 stay U(0, 0.5)): the clip then bites at step 0 and
    again at later multiples of 100 (test_bounds_bite).
    """
    return dict(
        X=X_RANDOM, W0=W0_HALF, L0=LEX0_FULL, shuffle=True,
        oracle=lambda w0: nb.seed000_in37_learned_lateral_clip(
            w0, LEX0_FULL, X_RANDOM, _perms(N_SAMPLES), STEPS, n_w=5, xi=0.02,
            max_syn=IN37_MAX_SYN),
        opts=dict(k=5, lr=0.02, competition="normalized_lateral", output="competition",
                  lateral=LEX0_FULL, learn_lateral=True, lateral_lr=0.02, error_clip=None,
                  w_max=IN37_MAX_SYN, clip_every=100))


def _case_000_in6b_learned_lateral_max0():
    """Seed 000, second In [6]: learned lateral on the box mask, max(0, .) every 1000 steps."""
    return dict(
        X=X_RANDOM, W0=W0_UNIT, L0=LEX0_MASKED, shuffle=True,
        oracle=lambda w0: nb.seed000_in6b_learned_lateral_max0(
            w0, LEX0_MASKED, X_RANDOM, _perms(N_SAMPLES), STEPS, n_w=5, xi=0.01),
        opts=dict(k=5, lr=0.01, competition="normalized_lateral", output="competition",
                  lateral=sp.csr_array(LEX0_MASKED), learn_lateral=True, error_clip=None,
                  w_max=np.inf, clip_every=1000))


# In [58] clips its fixed lateral with the weights. The notebook's off-by-one row-normalized
# matrix has one entry above max_syn = 0.5: the last neuron (bottom-right corner) has a
# single neighbour, weight 1.0, which the notebook clips to 0.5 after step 0. The library
# does the same (docs/rules/sparsedream.md, step 10: a fixed lateral the bounds would change is clipped with
# W), so both get the notebook's own matrix; test_in58_library_clips_fixed_lateral checks
# that the library's lateral_ ends clipped.
NOTEBOOK_ROWNORM = nb.notebook_lateral_row_normalized(KY, KX, ex=1)
NOTEBOOK_ROWNORM_CLIPPED = np.clip(nb.notebook_lateral_row_normalized(KY, KX, ex=1), 0, 0.5)


def _case_000_in58_mean_lateral():
    """Seed 000 In [58]: row-normalized box, c = (3 q + L q) / 4, output mask * W v, clip every 100."""
    return dict(
        X=X_RANDOM, W0=W0_HALF, shuffle=True,
        oracle=lambda w0: nb.seed000_in58_mean_lateral(
            w0, NOTEBOOK_ROWNORM, X_RANDOM, _perms(N_SAMPLES), STEPS, n_w=8, xi=0.005,
            max_syn=0.5),
        opts=dict(k=8, lr=0.005, competition="mean_lateral", output="drive",
                  lateral=NOTEBOOK_ROWNORM, error_clip=None, w_max=0.5, clip_every=100))


def _case_001_in23_library_box():
    """Seed 001 In [23] with the library's own (correct) box vs the oracle on a correct box."""
    box = _correct_box(KY, KX, 2, 0.1)
    return dict(
        X=X_RANDOM, W0=W0_SEED001, shuffle=True,
        oracle=lambda w0: nb.seed001_in23(w0, box, X_RANDOM, _perms(N_SAMPLES), STEPS,
                                          n_w=5, xi=0.03),
        lib_lateral=("box", dict(radius=2, strength=0.1)),
        opts=dict(k=5, lr=0.03, competition="lateral", output="drive", error_clip=1.0))


def _case_000_in58_library_normalized_box():
    """Seed 000 In [58] with the library's normalized_box(radius=1) vs a correct row-normalized box."""
    rownorm = _correct_row_normalized_box(KY, KX, 1)   # every entry <= 1/3 < max_syn
    return dict(
        X=X_RANDOM, W0=W0_HALF, shuffle=True,
        oracle=lambda w0: nb.seed000_in58_mean_lateral(
            w0, rownorm, X_RANDOM, _perms(N_SAMPLES), STEPS, n_w=8, xi=0.005, max_syn=0.5),
        lib_lateral=("normalized_box", dict(radius=1)),
        opts=dict(k=8, lr=0.005, competition="mean_lateral", output="drive", error_clip=None,
                  w_max=0.5, clip_every=100))


TAPESTRY = _tapestry_frames(400)
TAPESTRY_STEPS = 300
W0_TAPESTRY = np.random.default_rng(4).uniform(0.15, 0.16, (N, 400))


def _case_001_in29_tapestry():
    """Seed 001 In [29] (xi = 0.1) on 20x20 frames of a random walk over a digit tapestry."""
    n = TAPESTRY.shape[0]
    return dict(
        X=TAPESTRY, W0=W0_TAPESTRY, shuffle=True, steps=TAPESTRY_STEPS,
        oracle=lambda w0: nb.seed001_in23(w0, NOTEBOOK_BOX, TAPESTRY, _perms(n), TAPESTRY_STEPS,
                                          n_w=5, xi=0.1),
        opts=dict(k=5, lr=0.1, competition="lateral", output="drive",
                  lateral=NOTEBOOK_BOX, error_clip=1.0))


CASES = {
    "001_in12_lateral_competition_out": _case_001_in12,
    "001_in15_clipped_error": _case_001_in15,
    "001_in23_drive_out": _case_001_in23,
    "001_in31_trace": _case_001_in31_trace,
    "000_in6_weighted_average": _case_000_in6_weighted_average,
    "000_in19_learned_lateral": _case_000_in19_learned_lateral,
    "000_in37_learned_lateral_clip100": _case_000_in37_learned_lateral_clip,
    "000_in6b_learned_lateral_max0_1000": _case_000_in6b_learned_lateral_max0,
    "000_in58_mean_lateral": _case_000_in58_mean_lateral,
    "001_in23_library_box": _case_001_in23_library_box,
    "000_in58_library_normalized_box": _case_000_in58_library_normalized_box,
    "001_in29_tapestry": _case_001_in29_tapestry,
}


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def _fit_library(sdf, case):
    opts = dict(case["opts"])
    if "lib_lateral" in case:
        kind, kw = case["lib_lateral"]
        opts["lateral"] = getattr(sdf.lateral, kind)(**kw)
    X = case["X"]
    m = sdf.SparseDream(n_inputs=X.shape[1], grid=GRID, prec=1e-10, init=case["W0"].copy(),
                        dtype="float64", backend="numpy", seed=SEED, **opts)
    m.fit(X, epochs=EPOCHS, shuffle=case["shuffle"], steps_per_epoch=case.get("steps", STEPS))
    return m


# -------------------------------------------------------- oracle-only checks
def test_oracles_share_nothing_with_the_library():
    src = pathlib.Path(nb.__file__).read_text()
    imports = [ln.strip() for ln in src.splitlines() if ln.strip().startswith(("import ", "from "))]
    assert imports and all("sparsedream" not in ln for ln in imports), imports
    assert not any(getattr(v, "__name__", "").startswith("sparsedream_fast")
                   for v in vars(nb).values())


def test_notebook_lateral_is_the_box_without_last_row_and_column():
    """The off-by-one: the notebook's box is the correct box with the last grid row and
    column removed from every neighbourhood (columns m with y_m = Ky-1 or x_m = Kx-1)."""
    y, x = np.divmod(np.arange(N), KX)
    last = (y == KY - 1) | (x == KX - 1)
    expected = _correct_box(KY, KX, 2, 0.1) * ~last[None, :]
    assert_array_equal(NOTEBOOK_BOX, expected)
    rn = nb.notebook_lateral_row_normalized(KY, KX, ex=1)
    mask = _correct_box(KY, KX, 1, 1.0) * ~last[None, :]
    assert_array_equal(rn, mask / mask.sum(axis=1, keepdims=True))
    assert np.argwhere(rn > 0.5).tolist() == [[N - 1, N - 1 - KX - 1]]   # the In [58] corner


@pytest.mark.parametrize("name", list(CASES))
def test_oracle_is_well_conditioned(name):
    """The weights move a lot, yet a 1e-9 relative nudge of W0 moves the result < 1e-7
    relative (measured: 3x to 12x the nudge, linear from 1e-13 to 1e-7)."""
    case = CASES[name]()
    out = _as_tuple(case["oracle"](case["W0"]))
    nudge = 1 + 1e-9 * np.random.default_rng(11).standard_normal(case["W0"].shape)
    out2 = _as_tuple(case["oracle"](case["W0"] * nudge))
    W = out[0]
    assert np.all(np.isfinite(W))
    assert np.max(np.abs(W - case["W0"])) > 0.1 * np.max(np.abs(case["W0"]))
    for a, b in zip(out, out2):
        assert_allclose(b, a, rtol=1e-7, atol=0)
    if "L0" in case:
        assert np.max(np.abs(out[1] - case["L0"])) > 0.1 * np.max(case["L0"])


def test_bounds_bite():
    """In [37]'s clip really acts in its case (else the w_max path would go untested): the
    result differs from the same run without bounds. (Checked when the case was chosen:
    clipping only at step 0 instead of every 100 steps also changes W and L by > 0.03.)
    In [58]'s clip at 0.5 never acts on this data: its weights only shrink from U(0, 0.5)."""
    perms = _perms(N_SAMPLES)
    kw = dict(n_w=5, xi=0.02)
    a = nb.seed000_in37_learned_lateral_clip(W0_HALF, LEX0_FULL, X_RANDOM, perms, STEPS,
                                             max_syn=IN37_MAX_SYN, **kw)
    b = nb.seed000_in37_learned_lateral_clip(W0_HALF, LEX0_FULL, X_RANDOM, perms, STEPS,
                                             max_syn=np.inf, **kw)
    assert np.max(np.abs(a[0] - b[0])) > 1e-2 and np.max(np.abs(a[1] - b[1])) > 1e-2


def test_in58_notebook_matrix():
    """On this data, In [58] from the notebook's own matrix (corner entry 1.0, clipped to 0.5
    after step 0) equals the run from the pre-clipped matrix the library is given."""
    perms = _perms(N_SAMPLES)
    kw = dict(n_w=8, xi=0.005, max_syn=0.5)
    a = nb.seed000_in58_mean_lateral(W0_HALF, nb.notebook_lateral_row_normalized(KY, KX, ex=1),
                                     X_RANDOM, perms, STEPS, **kw)
    b = nb.seed000_in58_mean_lateral(W0_HALF, NOTEBOOK_ROWNORM_CLIPPED, X_RANDOM, perms, STEPS, **kw)
    assert_array_equal(a, b)


# ------------------------------------------------------ library vs notebooks
@pytest.mark.parametrize("name", list(CASES))
def test_reference_matches_notebook(sdf, name):
    case = CASES[name]()
    expected = _as_tuple(case["oracle"](case["W0"]))
    m = _fit_library(sdf, case)
    assert m.weights_.shape == case["W0"].shape
    assert m.weights_.dtype == np.float64
    assert_allclose(m.weights_, expected[0], rtol=RTOL, atol=0)
    if case["opts"].get("learn_lateral"):
        lat = m.lateral_
        assert sp.issparse(lat)
        dense = lat.toarray()
        # the pattern never grows: stored entries lie inside the initial non-zeros
        assert np.all(case["L0"][dense != 0] != 0)
        assert_allclose(dense, expected[1], rtol=RTOL, atol=0)


def test_in58_library_clips_fixed_lateral(sdf):
    """The fixed notebook matrix (corner entry 1.0) is clipped to [0, 0.5] by the bounds."""
    m = _fit_library(sdf, _case_000_in58_mean_lateral())
    assert_array_equal(m.lateral_.toarray(), NOTEBOOK_ROWNORM_CLIPPED)
    assert NOTEBOOK_ROWNORM.max() == 1.0  # so the clip did act


def test_library_box_is_the_correct_box(sdf):
    """sdf.lateral.box(radius=2, strength=0.1) is the correct box; it differs from the
    notebook's matrix exactly on the neighbourhood entries of the last grid row/column."""
    m = _fit_library(sdf, _case_001_in23_library_box())
    lib = m.lateral_.toarray()
    correct = _correct_box(KY, KX, 2, 0.1)
    assert_allclose(lib, correct, rtol=1e-15, atol=0)
    y, x = np.divmod(np.arange(N), KX)
    last = (y == KY - 1) | (x == KX - 1)
    differs = lib != NOTEBOOK_BOX
    assert_array_equal(differs, (correct != 0) & last[None, :])
    assert_allclose(lib[differs], 0.1, rtol=1e-15)
    assert np.all(NOTEBOOK_BOX[differs] == 0)


def test_library_normalized_box_is_the_correct_row_normalized_box(sdf):
    m = _fit_library(sdf, _case_000_in58_library_normalized_box())
    assert_allclose(m.lateral_.toarray(), _correct_row_normalized_box(KY, KX, 1), rtol=1e-14, atol=0)
