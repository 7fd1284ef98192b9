"""CUDA backend of rule D: ``_cuda.tnn_run`` (training in one block, inference a block per
sequence; host arrays in and out)."""
from __future__ import annotations

import numpy as np

from .._backends import cuda_module
from .._runtime import loop_control
from .program import Program, kernel_args

__all__ = ["run_network"]


def run_network(prog: Program, weights: list, data: np.ndarray, learn: bool, wave0: int,
                key: tuple[int, int], control=None) -> tuple[np.ndarray, int]:
    """Same contract as :func:`sparsedream_fast.tnn.reference.run_network` (training polls
    ``control`` about every 20 ms, with Python's signal handlers run)."""
    p, cols, wdtype = kernel_args(prog, weights)
    rec, wave = cuda_module().tnn_run(p, cols, np.ascontiguousarray(data, dtype=np.uint8), bool(learn),
                              int(wave0), int(key[0]), int(key[1]), wdtype,
                                      control=loop_control(control).array)
    return rec, int(wave)
