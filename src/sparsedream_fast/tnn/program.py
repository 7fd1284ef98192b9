"""A TNN network flattened for the kernels: every backend runs the same ``Program``.

All layers write the spike times of the current wave into one vector of *lines*: the inputs
first, then each delay layer and each column its own range. A column reads its inputs by
gathering lines (``in_lines``); a delay layer copies lines of the previous wave. Per wave:
1. input lines <- the data of this wave;
2. delay lines <- their source lines at the end of the previous wave (no spike on wave 0 of a
   sequence: every sequence starts from silence);
3. columns in the order they were added: gather, fire, k-WTA, write their lines, then STDP on
   their plastic synapses when learning.
A column may read inputs, delays and columns added before it (checked when building).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import ColumnSpec

__all__ = ["Program", "ColumnProgram", "kernel_args"]


@dataclass
class ColumnProgram:
    """One column of a Program.

    Attributes
    ----------
    spec : ColumnSpec
    in_lines : ndarray of shape (D,), int32
        The lines its D synapses read, in the order of the weight matrix's columns.
    plastic : ndarray of shape (D,), uint8
        1 where STDP may change the synapse.
    out0 : int
        Its neurons write lines ``out0 .. out0 + n_neurons - 1``.
    """

    spec: ColumnSpec
    in_lines: np.ndarray
    plastic: np.ndarray
    out0: int

    @property
    def n_inputs(self) -> int:
        """D, the column's synapses per neuron."""
        return int(self.in_lines.shape[0])


@dataclass
class Program:
    """A network as the kernels see it.

    Attributes
    ----------
    T : int
    n_in : int
        Input lines (the data's last dimension), lines ``0 .. n_in - 1``.
    n_lines : int
    delay_src, delay_dst : ndarray of shape (L,), int32
        Delay line ``delay_dst[m]`` carries line ``delay_src[m]`` of the previous wave.
    columns : list of ColumnProgram
    record : ndarray of shape (R,), int32
        Lines whose spike times are returned for every wave.
    """

    T: int
    n_in: int
    n_lines: int
    delay_src: np.ndarray
    delay_dst: np.ndarray
    columns: list = field(default_factory=list)
    record: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    def with_record(self, lines) -> "Program":
        """A copy recording ``lines``."""
        return Program(self.T, self.n_in, self.n_lines, self.delay_src, self.delay_dst, self.columns,
                       np.ascontiguousarray(lines, dtype=np.int32))


def kernel_args(prog: Program, weights: list) -> tuple[dict, list, str]:
    """The program as the compiled ``tnn_run`` entry points take it (C++ and CUDA alike).

    Returns
    -------
    (program dict, list of column dicts, weight dtype name)
    """
    dtypes = {w.dtype.name for w in weights}
    if len(dtypes) != 1:
        raise TypeError(f"all columns' weights must share one dtype, got {sorted(dtypes)}")
    cols = [{"n": c.spec.n_neurons, "theta": c.spec.threshold, "k": c.spec.k, "w_max": c.spec.w_max,
             "out0": c.out0, "params": c.spec.stdp.as_array(), "in_lines": c.in_lines,
             "plastic": c.plastic, "W": W} for c, W in zip(prog.columns, weights)]
    p = {"T": prog.T, "n_in": prog.n_in, "n_lines": prog.n_lines, "delay_src": prog.delay_src,
         "delay_dst": prog.delay_dst, "record": prog.record}
    return p, cols, dtypes.pop()
