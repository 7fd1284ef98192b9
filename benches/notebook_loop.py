"""The notebook's training loop (seed 001, In [29]: the 80 x 80 run), the speed baseline.

This is the loop every benchmark compares against ("x notebook"). It is the notebook's own
code with ``cp`` replaced by ``xp`` (numpy by default, cupy when asked for and present):
column vectors of shape (N, 1), the dense (N, N) lateral matrix ``lat_ex`` with the
notebook's off-by-one slice, the dense lateral product, a full ``argsort`` per step and the
dense update of all N rows, in float64 as in the notebook. The only changes: the initial
weights and the frames are arguments (so the run is comparable), the epoch permutation is
left out (the frames are taken in the order given) and the plotting and tqdm are gone.

It imports no kernel of ``sparsedream_fast``: it is the baseline, not the library (the loop
is kept once, in ``src/sparsedream_fast/bench.py``, which the ``sparsedream bench`` command uses).
"""
from __future__ import annotations

import time

import numpy as np

# The loop itself lives in the installed package (``sparsedream bench`` needs it too); that
# module imports no kernel of the library either.
from sparsedream_fast.bench import cupy_or_none, meminfo, notebook_lateral, notebook_run  # noqa: F401

__all__ = ["notebook_lateral", "notebook_run", "notebook_lateral_bytes", "notebook_fits",
           "cupy_or_none", "time_notebook"]


def notebook_lateral_bytes(N):
    """Peak bytes the notebook needs to build ``lat_ex``: the list of N rows plus the array."""
    return 2 * N * N * 8


def notebook_fits(N, D=400, bandwidth=None, max_step_s=1.0, mem_fraction=0.6):
    """Whether the numpy notebook loop can run at N neurons here; (ok, reason).

    It cannot when building ``lat_ex`` needs more than ``mem_fraction`` of the available
    memory, or when one step (dominated by the N x N lateral product read from memory at
    ``bandwidth`` bytes/s) would take longer than ``max_step_s``.
    """
    need = notebook_lateral_bytes(N) + 3 * N * D * 8
    avail = meminfo("MemAvailable")
    if avail is not None and need > mem_fraction * avail:
        return False, (f"notebook skipped: its dense {N}x{N} lateral needs {need / 1e9:.1f} GB "
                       f"to build, {avail / 1e9:.1f} GB available")
    if bandwidth:
        est = (N * N * 8 + 4 * N * D * 8) / bandwidth
        if est > max_step_s:
            return False, f"notebook skipped: about {est:.1f} s per step (N x N lateral product)"
    return True, ""


def time_notebook(grid, frames, steps, *, seed=0, xp=np, n_w=5, xi=0.1, ex=2, value=0.1,
                  repeat=3, warmup=3):
    """Steps per second of the notebook loop at ``grid`` = (Ky, Kx) on ``frames`` (n, D).

    The weights are drawn as in the notebook (``uniform(.15, .16)``, float64, seeded here) and
    ``lat_ex`` is built once, outside the timing. Each repeat trains for ``steps`` steps
    (continuing from the previous repeat, as a longer run would); returns
    ``(list of steps/s per repeat, w, lat_ex)``.
    """
    Ky, Kx = grid
    N = Ky * Kx
    rng = np.random.default_rng(seed)
    w = xp.asarray(rng.uniform(.15, .16, (N, frames.shape[1])))
    lat_ex = notebook_lateral(Ky, Kx, ex, value, xp=xp)
    fr = xp.asarray(np.asarray(frames, dtype=np.float64))
    sync = (lambda: None) if xp is np else xp.cuda.Stream.null.synchronize
    notebook_run(w, lat_ex, fr, warmup, n_w=n_w, xi=xi, xp=xp)
    sync()
    rates = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        notebook_run(w, lat_ex, fr, steps, n_w=n_w, xi=xi, xp=xp)
        sync()
        rates.append(steps / (time.perf_counter() - t0))
    return rates, w, lat_ex
