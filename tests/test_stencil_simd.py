"""The C++ lateral stencil at every SIMD level against the reference's correlation.

The direct sum (radius below the box path's) adds the products in the reference's order, so
``c - p`` of the C++ competition is the reference's ``L p`` to the bit, whatever the level's
vector width (16, 8 or 4 float32 lanes) and however the grid's columns fall into vectors. The
box path (uniform kernel, radius 3 and up) reorders the additions: a few ulp.
"""
import numpy as np
import pytest

import sparsedream_fast as sdf
from sparsedream_fast import lateral as lat

_core = pytest.importorskip("sparsedream_fast._core", reason="the C++ backend is not built")

LEVELS = ["scalar", "avx2", "avx512"]
# columns: a multiple of every width, one vector and a tail, less than one vector, odd
GRIDS = [(80, 80), (9, 37), (5, 3), (6, 21)]


def _kernel(radius, seed):
    k = np.random.default_rng(seed).uniform(-1.0, 1.0, (2 * radius + 1, 2 * radius + 1))
    k[radius, radius] = 0.0
    k[0, radius] = 0.0  # a zero tap the sum skips
    return k


@pytest.fixture
def level(request):
    before = _core.simd_level()
    got = _core.set_simd_level(request.param)
    if got != request.param:
        _core.set_simd_level(before)
        pytest.skip(f"this CPU has no {request.param}")
    yield got
    _core.set_simd_level(before)


def _competition(W, v, op, grid):
    p, c = sdf.ops.compete(W, v, competition="lateral", lateral=op, grid=grid, backend="cpp")
    return p, c


@pytest.mark.parametrize("level", LEVELS, indirect=True)
@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["box_r2", "general_r1", "general_r2", "row_scale_r2"])
def test_direct_stencil_is_the_reference_to_the_bit(level, grid, dtype, kind):
    N = grid[0] * grid[1]
    rng = np.random.default_rng(N + len(kind))
    W = rng.uniform(0.0, 1.0, (N, 23)).astype(dtype)
    v = rng.uniform(-1.0, 1.0, 23).astype(dtype)
    if kind == "box_r2":
        op = lat.resolve(sdf.lateral.box(2, 0.1), grid, dtype)
    elif kind == "row_scale_r2":
        op = lat.Stencil(_kernel(2, 3), grid, row_scale=rng.uniform(0.5, 2.0, N), dtype=dtype)
    else:
        op = lat.Stencil(_kernel(int(kind[-1]), 7), grid, dtype=dtype)
    p, c = _competition(W, v, op, grid)
    assert p.dtype == dtype and c.dtype == dtype
    expected = p + op.matvec(p)
    np.testing.assert_array_equal(c, expected)
    assert np.abs(c - p).max() > 0  # the lateral term is there


@pytest.mark.parametrize("level", LEVELS, indirect=True)
@pytest.mark.parametrize("grid", [(80, 80), (9, 37), (12, 5)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_box_path_is_the_reference_to_rounding(level, grid, dtype):
    """Radius 3, uniform kernel: separable window sums. float64 to 1e-12 relative; float32
    to 4e-6 (24 added terms of one sign, each reordered sum a few ulp of 6e-8)."""
    N = grid[0] * grid[1]
    rng = np.random.default_rng(N)
    W = rng.uniform(0.0, 1.0, (N, 23)).astype(dtype)
    v = rng.uniform(0.0, 1.0, 23).astype(dtype)
    op = lat.resolve(sdf.lateral.box(3, 0.25), grid, dtype)
    p, c = _competition(W, v, op, grid)
    rtol = 1e-12 if dtype == np.float64 else 4e-6
    np.testing.assert_allclose(c - p, op.matvec(p), rtol=rtol, atol=0)
