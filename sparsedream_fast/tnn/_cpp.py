"""C++ backend of rule D: the whole presentation in one call of ``_core.tnn_run``."""
from __future__ import annotations

import numpy as np

from .. import _core
from .program import Program

__all__ = ["run_network"]


def run_network(prog: Program, weights: list, data: np.ndarray, learn: bool, wave0: int,
                key: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Same contract as :func:`sparsedream_fast.tnn.reference.run_network`."""
    dtypes = {w.dtype.name for w in weights}
    if len(dtypes) != 1:
        raise TypeError(f"all columns' weights must share one dtype, got {sorted(dtypes)}")
    cols = [{"n": c.spec.n_neurons, "theta": c.spec.threshold, "k": c.spec.k, "w_max": c.spec.w_max,
             "out0": c.out0, "params": c.spec.stdp.as_array(), "in_lines": c.in_lines,
             "plastic": c.plastic, "W": W} for c, W in zip(prog.columns, weights)]
    p = {"T": prog.T, "n_in": prog.n_in, "n_lines": prog.n_lines, "delay_src": prog.delay_src,
         "delay_dst": prog.delay_dst, "record": prog.record}
    rec, wave = _core.tnn_run(p, cols, np.ascontiguousarray(data, dtype=np.uint8), bool(learn),
                              int(wave0), int(key[0]), int(key[1]), dtypes.pop())
    return rec, int(wave)
