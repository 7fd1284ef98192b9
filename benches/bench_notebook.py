"""The notebook's loop (seed 001 In [29]) as the baseline, in the fit benchmarks' groups.

Float64 numpy as in the notebook; the cupy variant only where cupy and a GPU are present.
Before timing, the loop is checked against the numpy reference given the notebook's own
(off-by-one) lateral matrix, and against the copy in ``sparsedream_fast.bench`` that the
``sparsedream bench`` command uses. The dense N x N lateral makes 200x200 impossible here
(12.8 GB for the matrix alone): it is skipped with the reason.
"""
from __future__ import annotations

import numpy as np
import pytest

import sparsedream_fast as sdf

from benchutil import D, GRIDS, K, LATERALS, finish, frames64, record, steps_per_call
from bench_fit import fit_group
from notebook_loop import (cupy_or_none, notebook_fits, notebook_lateral, notebook_run)

XPS = [pytest.param("numpy", id="numpy"),
       pytest.param("cupy", id="cupy", marks=[pytest.mark.gpu, pytest.mark.skipif(
           cupy_or_none() is None, reason="cupy with a CUDA GPU is not available")])]


def test_notebook_loop_is_the_rule():
    """The baseline computes rule A (with the notebook's lateral)."""
    grid = (20, 20)
    N = grid[0] * grid[1]
    F = frames64()[:40]
    w0 = np.random.default_rng(1).uniform(.15, .16, (N, D))
    lat = notebook_lateral(*grid)
    w = w0.copy()
    notebook_run(w, lat, F, 30)
    m = sdf.SparseDream(n_inputs=D, grid=grid, k=K, lr=0.1, competition="lateral", lateral=lat,
                        error_clip=1.0, init=w0, dtype="float64", backend="numpy")
    m.fit(F[:30], epochs=1, shuffle=False)
    np.testing.assert_allclose(m.weights_, w, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("xp_name", XPS)
@pytest.mark.parametrize("box", LATERALS)
@pytest.mark.parametrize("grid", GRIDS)
def test_notebook(benchmark, grid, box, xp_name):
    N = grid[0] * grid[1]
    ok, why = notebook_fits(N, D)
    if not ok and xp_name == "numpy":
        pytest.skip(why)
    xp = np if xp_name == "numpy" else cupy_or_none()
    rng = np.random.default_rng(0)
    w = xp.asarray(rng.uniform(.15, .16, (N, D)))
    lat = notebook_lateral(*grid, xp=xp) if box else None
    S = steps_per_call(N)
    fr = xp.asarray(frames64()[:S])
    if box:  # check: the reference given the same matrix takes the same steps
        w0 = np.asarray(w if xp is np else w.get()).copy()
        wn = notebook_run(w0.copy(), np.asarray(lat if xp is np else lat.get()),
                          np.asarray(frames64()[:5]), 5)
        m = sdf.SparseDream(n_inputs=D, grid=grid, k=K, lr=0.1, competition="lateral",
                            lateral=np.asarray(lat if xp is np else lat.get()), error_clip=1.0,
                            init=w0, dtype="float64", backend="numpy")
        m.fit(frames64()[:5], epochs=1, shuffle=False)
        np.testing.assert_allclose(m.weights_, wn, rtol=1e-9, atol=1e-12)
    sync = (lambda: None) if xp is np else xp.cuda.Stream.null.synchronize

    def call():
        notebook_run(w, lat, fr, S, xp=xp)
        sync()

    call()  # warm-up
    record(benchmark, kernel="notebook", backend=f"notebook-{xp_name}", dtype="float64", grid=grid,
           k=K, lateral=box, steps=S, group=fit_group(grid, K, box))
    rounds = 3 if N >= 6400 else 10
    benchmark.pedantic(call, rounds=rounds, iterations=1)
    finish(benchmark, S)

