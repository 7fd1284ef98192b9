"""C++ backend of rule D: the whole presentation in one call of ``_core.tnn_run``."""
from __future__ import annotations

import numpy as np

from .. import _core
from .._runtime import loop_control
from .program import Program, kernel_args

__all__ = ["run_network", "THREADS"]

#: Threads of a call: None (automatic: training splits the columns of a dependency level when
#: there are enough synapses, inference the sequences) or an int. Results do not depend on it.
THREADS = None


def run_network(prog: Program, weights: list, data: np.ndarray, learn: bool, wave0: int,
                key: tuple[int, int], control=None) -> tuple[np.ndarray, int]:
    """Same contract as :func:`sparsedream_fast.tnn.reference.run_network` (training polls
    ``control`` about every 20 ms, with Python's signal handlers run)."""
    p, cols, wdtype = kernel_args(prog, weights)
    rec, wave = _core.tnn_run(p, cols, np.ascontiguousarray(data, dtype=np.uint8), bool(learn),
                              int(wave0), int(key[0]), int(key[1]), wdtype,
                              0 if THREADS is None else int(THREADS), control=loop_control(control).array)
    return rec, int(wave)
