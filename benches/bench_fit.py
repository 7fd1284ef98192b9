"""Benchmarks of training through the public API (``SparseDream.fit`` / ``partial_fit``).

``test_fit``: seed 001's run (box lateral or none) per backend, grid, dtype and k. The
notebook's loop runs in the same groups (``bench_notebook.py``), with the same number of
steps per timed call, so the times compare directly; ``extra_info['steps_per_s']`` has the
rate. ``test_fit_paths``: every fit path of rule A (competition modes, output, trace,
learned lateral, bounds, an explicit CSR lateral) at 40x40.

Each model is first fitted for 20 steps and checked against the numpy reference (weights
to the tests' tolerances, winners equal); that run also warms the backend up. The timed
call is ``partial_fit`` on the next frames, continuing the trained state, so the weights'
initialisation is not counted.
"""
from __future__ import annotations

import numpy as np
import pytest

from benchutil import (BACKENDS, CHECK_STEPS, DTYPES, GRIDS, KS, LATERALS, PATHS, check_fit,
                       finish, frames, model, path_kwargs, record, steps_per_call)


def fit_group(grid, k, box):
    """The group shared with the notebook loop's benchmark."""
    return f"fit {grid[0]}x{grid[1]} k={k} {'box' if box else 'no lateral'}"


@pytest.mark.parametrize("box", LATERALS)
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_fit(benchmark, backend, dtype, grid, k, box):
    m = check_fit(model(backend, grid, dtype, k, box), grid, dtype, k, box)
    S = steps_per_call(grid[0] * grid[1])
    X = np.ascontiguousarray(frames(dtype)[CHECK_STEPS:CHECK_STEPS + S])
    record(benchmark, kernel="fit", backend=backend, dtype=dtype, grid=grid, k=k, lateral=box,
           steps=S, group=fit_group(grid, k, box))
    benchmark(m.partial_fit, X)
    finish(benchmark, S)
    assert np.all(np.isfinite(m.weights_))


_PATH_PARAMS = [pytest.param(p, id=p) for p in PATHS]


@pytest.mark.parametrize("path", _PATH_PARAMS)
@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.slow)])
@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_paths(benchmark, backend, dtype, path):
    grid = (40, 40)
    m = check_fit(model(backend, grid, dtype, **path_kwargs(path, grid)), grid, dtype, path=path)
    S = 256
    X = np.ascontiguousarray(frames(dtype)[CHECK_STEPS:CHECK_STEPS + S])
    record(benchmark, kernel=f"fit[{path}]", backend=backend, dtype=dtype, grid=grid, k=5,
           steps=S, group=f"fit paths 40x40 {dtype}: {path}", path=path)
    benchmark(m.partial_fit, X)
    finish(benchmark, S)
    assert np.all(np.isfinite(m.weights_))
