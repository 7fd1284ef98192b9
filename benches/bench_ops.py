"""Benchmarks of every kernel in ``sdf.ops``, per backend, grid, dtype, k and lateral on/off.

Each benchmark first computes its kernel with the backend and with the numpy reference on
the same inputs and checks they agree, calls it once more to warm up, then times it. The
inputs are realistic: weights U(0.15, 0.16), tapestry frames, winners from the competition.
Groups (``--benchmark-group-by=group``, the default) put the backends of one case side by side.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from sparsedream_fast import ops

from benchutil import (BACKENDS, CLIP, DTYPES, GRIDS, KS, LATERALS, LR, assert_close,
                       assert_winners, frames, lateral_op, record, weights)


def _case(grid, dtype, k, box):
    W = weights(grid, dtype)
    v = frames(dtype)[0]
    lat = lateral_op(grid, dtype, box)
    p, c = ops.compete(W, v, competition="lateral", lateral=lat, grid=grid, backend="numpy")
    win = ops.topk(c, k, backend="numpy")
    return W, v, lat, p, c, win


def _label(kernel, grid, dtype, k=None, box=None):
    parts = [kernel, f"{grid[0]}x{grid[1]}", dtype]
    if k is not None:
        parts.append(f"k={k}")
    if box is not None:
        parts.append("box" if box else "no lateral")
    return " ".join(parts)


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_topk(benchmark, backend, dtype, grid, k):
    """Top-k of the competition values (strongest first, ties to the lower index)."""
    _, _, _, _, c, want = _case(grid, dtype, k, True)
    got = ops.topk(c, k, backend=backend)
    assert np.array_equal(got, want), "winners differ from the reference (same c: must be exact)"
    ops.topk(c, k, backend=backend)
    record(benchmark, kernel="topk", backend=backend, dtype=dtype, grid=grid, k=k,
           group=_label("topk", grid, dtype, k))
    benchmark(ops.topk, c, k, backend=backend)


@pytest.mark.parametrize("box", LATERALS)
@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_compete(benchmark, backend, dtype, grid, box):
    """Drive ``p = W v`` and competition ``c = p + L p`` (box stencil, or none)."""
    W = weights(grid, dtype)
    v = frames(dtype)[0]
    lat = lateral_op(grid, dtype, box)
    p0, c0 = ops.compete(W, v, competition="lateral", lateral=lat, grid=grid, backend="numpy")
    p, c = ops.compete(W, v, competition="lateral", lateral=lat, grid=grid, backend=backend)
    assert_close(p, p0, dtype, "drive p")
    assert_close(c, c0, dtype, "competition c")
    record(benchmark, kernel="compete", backend=backend, dtype=dtype, grid=grid, lateral=box,
           group=_label("compete", grid, dtype, box=box))
    benchmark(ops.compete, W, v, competition="lateral", lateral=lat, grid=grid, backend=backend)


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_reconstruct(benchmark, backend, dtype, grid, k):
    """Reconstruction ``r = sum_j p_j W_j`` over the k winners."""
    W, v, lat, p, c, win = _case(grid, dtype, k, True)
    vals = p[win]
    want = ops.reconstruct(W, win, vals, backend="numpy")
    assert_close(ops.reconstruct(W, win, vals, backend=backend), want, dtype, "reconstruction r")
    record(benchmark, kernel="reconstruct", backend=backend, dtype=dtype, grid=grid, k=k,
           group=_label("reconstruct", grid, dtype, k))
    benchmark(ops.reconstruct, W, win, vals, backend=backend)


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_update_rows(benchmark, backend, dtype, grid, k):
    """Multiplicative update of the k winners' rows, in place (error clipped to [-1, 1])."""
    W, v, lat, p, c, win = _case(grid, dtype, k, True)
    vals = p[win]
    r = ops.reconstruct(W, win, vals, backend="numpy")
    W0, W1 = W.copy(), W.copy()
    e0 = ops.update_rows(W0, win, vals, v, r, lr=LR, error_clip=CLIP, backend="numpy")
    e1 = ops.update_rows(W1, win, vals, v, r, lr=LR, error_clip=CLIP, backend=backend)
    assert_close(e1, e0, dtype, "error e")
    assert_close(W1, W0, dtype, "updated weights")
    # timed on W itself with a tiny rate, so a million calls leave it essentially unchanged
    ops.update_rows(W, win, vals, v, r, lr=1e-7, error_clip=CLIP, backend=backend)
    record(benchmark, kernel="update_rows", backend=backend, dtype=dtype, grid=grid, k=k,
           group=_label("update_rows", grid, dtype, k))
    benchmark(ops.update_rows, W, win, vals, v, r, lr=1e-7, error_clip=CLIP, backend=backend)
    assert np.all(np.isfinite(W[win]))


@pytest.mark.parametrize("box", LATERALS)
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_step(benchmark, backend, dtype, grid, k, box):
    """One fused step of rule A through ``ops.step`` (a user's own loop), frames in turn."""
    W = weights(grid, dtype)
    X = frames(dtype)
    lat = lateral_op(grid, dtype, box)
    kw = dict(competition="lateral", lateral=lat, grid=grid, error_clip=CLIP)
    W0, W1 = W.copy(), W.copy()
    for i in range(10):
        w0 = ops.step(W0, X[i], k, LR, backend="numpy", **kw)
        w1 = ops.step(W1, X[i], k, LR, backend=backend, **kw)
        assert_winners(w1, w0, dtype, f"winners at step {i}")
    assert_close(W1, W0, dtype, "weights after 10 steps")
    frames_it = itertools.cycle(X)
    record(benchmark, kernel="step", backend=backend, dtype=dtype, grid=grid, k=k, lateral=box,
           group=_label("ops.step", grid, dtype, k, box))
    benchmark(lambda: ops.step(W1, next(frames_it), k, LR, backend=backend, **kw))
    assert np.all(np.isfinite(W1))
