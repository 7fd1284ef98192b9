"""What the benchmarks run over, and the checks they make before timing.

Sizes follow seed 001: D = 400 (20x20 tapestry frames), k = 5, box lateral radius 2,
strength 0.1, error clip 1, lr 0.1. Each benchmark first checks its backend against the
numpy reference on the same inputs (tolerances of ``tests/testing.py``), warms up (Numba
compiles on the first call), then times; ``record`` puts backend, dtype, threads, grid,
k and lateral into ``benchmark.extra_info``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

import sparsedream_fast as sdf
from sparsedream_fast.bench import backend_threads, usable_backends

D = 400
K = 5
LR = 0.1
CLIP = 1.0

_USABLE = usable_backends()

#: every backend, skipped with its reason when it is not usable here
BACKENDS = [pytest.param(n, marks=() if why is None else pytest.mark.skip(reason=f"{n}: {why}"), id=n)
            for n, why in _USABLE.items()]
#: the backends other than the reference
FAST_BACKENDS = [p for p in BACKENDS if p.values[0] != "numpy"]
DTYPES = ["float32", "float64"]


def _grid(side, slow=False):
    g = (side, side)
    return pytest.param(g, id=f"{side}x{side}", marks=(pytest.mark.slow,) if slow else ())


#: 20x20 to 80x80 by default; 100x100 and 200x200 under the slow marker
GRIDS = [_grid(20), _grid(40), _grid(80), _grid(100, True), _grid(200, True)]
#: k = 5 (seed 001) by default; the k sweep under the slow marker
KS = [pytest.param(5, id="k5"), pytest.param(1, id="k1", marks=pytest.mark.slow),
      pytest.param(20, id="k20", marks=pytest.mark.slow)]
LATERALS = [pytest.param(True, id="box"), pytest.param(False, id="nolat")]


def steps_per_call(N):
    """Steps per timed call of a fit benchmark: the same for every backend of a grid, so the
    times in one pytest-benchmark group compare directly (the notebook loop included)."""
    return {400: 512, 1600: 128, 6400: 64, 10000: 32}.get(N, 16)


def tol(dtype):
    """(rtol, atol) of a backend against the reference, as in tests/testing.py."""
    return (1e-9, 1e-12) if np.dtype(dtype) == np.float64 else (1e-4, 1e-6)


def assert_close(got, want, dtype, what):
    rtol, atol = tol(dtype)
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert np.all(np.isfinite(got)), f"{what}: NaN or inf"
    err = np.max(np.abs(got - want) / (atol + rtol * np.abs(want))) if got.size else 0.0
    assert err <= 1, f"{what}: off by {err:.2f}x the tolerance (rtol {rtol:g}, atol {atol:g})"


def assert_winners(got, want, dtype, what="winners"):
    """Winners equal to the reference: in order in float64; as sets in float32, where two
    winners' values can be within rounding of each other (their order then follows the
    summation order of the backend, and the update does not depend on it)."""
    got, want = np.asarray(got), np.asarray(want)
    if np.dtype(dtype) != np.float64:
        got, want = np.sort(got, axis=-1), np.sort(want, axis=-1)
    assert np.array_equal(got, want), f"{what} differ from the reference: {got} != {want}"


@lru_cache(maxsize=None)
def frames64(n=4096, seed=0):
    """Tapestry frames of the notebooks' walk (float64, (n, 400)); uniform random if unavailable."""
    try:
        from sparsedream_fast.data import digit_tapestry_frames
        F, _ = digit_tapestry_frames(n, seed=seed)
        return np.ascontiguousarray(F)
    except Exception:
        return np.random.default_rng(seed).random((n, D))


@lru_cache(maxsize=None)
def _frames(dtype, n):
    X = np.ascontiguousarray(frames64(), dtype=dtype)
    return X[:n]


def frames(dtype, n=4096):
    """The frames in ``dtype`` (read only: shared between benchmarks)."""
    X = _frames(np.dtype(dtype).name, n)
    X.flags.writeable = False
    return X


def weights(grid, dtype, seed=0):
    """Fresh weights U(0.15, 0.16) of shape (N, D), as the notebook and the model draw them."""
    N = grid[0] * grid[1]
    return np.random.default_rng(seed).uniform(0.15, 0.16, (N, D)).astype(dtype)


def lateral_op(grid, dtype, on=True):
    """The box lateral of seed 001 as an operator (resolved once, outside the timing), or None."""
    return sdf.lateral.resolve(sdf.lateral.box(2, 0.1), grid, np.dtype(dtype)) if on else None


def record(benchmark, *, kernel, backend, dtype, grid, k=None, lateral=None, steps=None, group=None, **more):
    """Fill ``benchmark.extra_info`` and the comparison group."""
    info = dict(kernel=kernel, backend=backend, dtype=np.dtype(dtype).name,
                threads=backend_threads(backend if backend in ("numpy", "cpp", "numba", "cuda") else "numpy"),
                grid=f"{grid[0]}x{grid[1]}", N=grid[0] * grid[1], D=D, k=k, lateral=lateral)
    if steps is not None:
        info["steps_per_call"] = steps
    info.update(more)
    benchmark.extra_info.update(info)
    if group is not None:
        benchmark.group = group


def finish(benchmark, steps):
    """After timing: steps/s from the median call time (when timing ran)."""
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None and stats.stats.median > 0:
        benchmark.extra_info["steps_per_s"] = steps / stats.stats.median


def model(backend, grid, dtype, k=K, box=True, **extra):
    """A SparseDream with seed 001's settings (box lateral, clip 1, lr 0.1); ``extra`` overrides."""
    kw = dict(n_inputs=D, grid=grid, k=k, lr=LR, competition="lateral", output="drive",
              lateral=sdf.lateral.box(2, 0.1) if box else None, error_clip=CLIP,
              dtype=dtype, backend=backend, seed=0)
    kw.update(extra)
    return sdf.SparseDream(**kw)


CHECK_STEPS = 20


def _notebook_matrix(grid):
    from notebook_loop import notebook_lateral
    import scipy.sparse as sp
    return sp.csr_array(notebook_lateral(*grid))


#: The fit paths of rule A (docs/rules/sparsedream.md, steps 2-10), each as overrides of seed 001's settings.
#: Values are callables of the grid where they depend on it.
PATHS = {
    "lateral": {},                                                    # seed 001 (the default)
    "drive": dict(competition="drive", lateral=None),
    "normalized_lateral": dict(competition="normalized_lateral", lateral=sdf.lateral.normalized_box(1)),
    "mean_lateral": dict(competition="mean_lateral", lateral=sdf.lateral.normalized_box(1), lr=0.005),
    "weighted_average": dict(competition="weighted_average", lateral=None, lr=0.005),
    "output_competition": dict(output="competition", error_clip=None, lr=0.01),   # seed 001 In [12]
    "trace": dict(trace=0.5, lr=0.03),                                # seed 001 In [31]
    "learn_lateral": dict(competition="normalized_lateral", lateral=sdf.lateral.random(2, 0.0, 0.5),
                          learn_lateral=True, lr=0.01, w_max=1.0),   # seed 000 In [37]
    "bounds": dict(w_max=np.inf, clip_every=10),                      # seed 001's max(W, 0)
    "csr_lateral": dict(lateral=_notebook_matrix),                    # the notebook's own matrix
}


def path_kwargs(path, grid):
    """The model overrides of fit path ``path`` at ``grid``."""
    return {k: (v(grid) if callable(v) else v) for k, v in PATHS[path].items()}


@lru_cache(maxsize=64)
def _reference(grid, dtype, k, lateral, path):
    m = model("numpy", grid, dtype, k, lateral, **path_kwargs(path, grid))
    X = frames(dtype)
    m.fit(X[:CHECK_STEPS], epochs=1, shuffle=False)
    return m.weights_.copy(), m.winners(X[CHECK_STEPS:CHECK_STEPS + 8])


def check_fit(m, grid, dtype, k=K, lateral=True, path="lateral"):
    """Fit ``m`` on the first frames and compare with the numpy reference run on them
    (same seed, same frames, same settings); returns ``m``, trained and warmed up."""
    X = frames(dtype)
    m.fit(X[:CHECK_STEPS], epochs=1, shuffle=False)
    W, win = _reference(grid, np.dtype(dtype).name, k, lateral, path)
    assert_close(m.weights_, W, dtype, f"{m.backend_} weights after {CHECK_STEPS} steps")
    assert_winners(m.winners(X[CHECK_STEPS:CHECK_STEPS + 8]), win, dtype, f"{m.backend_} winners")
    return m
