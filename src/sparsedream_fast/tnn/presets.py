"""Ready-made TNN networks for sequential MNIST (28 row waves of 28 lines, T = 16).

- :func:`v8_network`: the notebook's V8 (seed 004, rc_buff_seq_V8.py without the clustering
  column): a 100-neuron recurrent column (k 10) fed by the row and, through a one-wave delay,
  by its own spikes; STDP on both connections with the notebook's rTNN values.
- :func:`slice_network`: columns on receptive slices of the row, each also reading the rows
  before it through delays of the input; :func:`best_network` is the best setting found by
  ``benches/tnn_accuracy.py`` on the MNIST sample (about 95% with a logistic readout).

Every network's ``readout`` names all its columns, so ``transform`` gives the features of
the whole network.
"""
from __future__ import annotations

from .config import STDP
from .network import TNNNetwork

__all__ = ["V5_STDP", "COLUMN_STDP", "v8_network", "slice_network", "best_network", "PRESETS"]

#: seed 004's STDP values of the recurrent column (V5 onwards)
V5_STDP = STDP(capture=20 / 128, minus=20 / 128, search=30 / 128, backoff=96 / 128, u_min=16 / 128)
#: seed 004's column values (docs/rules/tnn.md)
COLUMN_STDP = STDP()


def v8_network(seed=0, backend="auto", T=16, n_neurons=100, k=10, threshold=32, w_max=16,
               stdp=V5_STDP, n_lines=28) -> TNNNetwork:
    """The notebook's V8 network: row -> recurrent column "rec" <- one-wave delay "buf" of it.

    Parameters
    ----------
    seed, backend, T : as :class:`TNNNetwork`
    n_neurons, k, threshold, w_max : the column (seed 004: 100, 10, 32, 16)
    stdp : STDP or dict
        Both connections' STDP (default: the notebook's rTNN values).
    n_lines : int
        Input lines per wave (28: one MNIST row).

    Returns
    -------
    TNNNetwork (unfitted)
    """
    net = TNNNetwork(T=T, seed=seed, backend=backend, readout=["rec"])
    net.add_input("pixels", n_lines)
    net.add_column("rec", n_neurons, threshold=threshold, k=k, w_max=w_max, stdp=stdp)
    net.add_delay("buf", "rec")
    net.connect("pixels", "rec", init=(0, 2)).connect("buf", "rec", init=(0, 8))
    return net


def _starts(n_lines, width, stride):
    starts = list(range(0, n_lines - width + 1, stride))
    if starts[-1] != n_lines - width:
        starts.append(n_lines - width)   # the last slice ends at the last line
    return starts


def slice_network(width=7, stride=3, context=4, n_neurons=64, k=4, threshold=32, w_max=16,
                  stdp=COLUMN_STDP, init=(0, 2), seed=0, backend="auto", T=16, n_lines=28) -> TNNNetwork:
    """Columns on receptive slices of the row, each reading its slice of the current row and of
    the ``context`` rows before it (delays of the input); no recurrence.

    Parameters
    ----------
    width, stride : int
        Each column reads ``width`` adjacent lines; a column every ``stride`` lines (the last
        slice ends at the last line).
    context : int
        Rows before the current one that each column also sees (0: the current row only).
    n_neurons, k, threshold, w_max, stdp, init : every column's settings
    seed, backend, T, n_lines : as :func:`v8_network`

    Returns
    -------
    TNNNetwork (unfitted), columns ``col0``, ``col1``, ...
    """
    if not 1 <= width <= n_lines:
        raise ValueError(f"width must be in [1, n_lines={n_lines}], got {width}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if context < 0:
        raise ValueError(f"context must be >= 0, got {context}")
    starts = _starts(n_lines, width, stride)
    names = [f"col{i}" for i in range(len(starts))]
    net = TNNNetwork(T=T, seed=seed, backend=backend, readout=names)
    net.add_input("pixels", n_lines)
    for d in range(1, context + 1):
        net.add_delay(f"pixels_d{d}", "pixels", waves=d)
    for name, a in zip(names, starts):
        net.add_column(name, n_neurons, threshold=threshold, k=k, w_max=w_max, stdp=stdp)
        net.connect("pixels", name, init=init, lines=slice(a, a + width))
        for d in range(1, context + 1):
            net.connect(f"pixels_d{d}", name, init=init, lines=slice(a, a + width))
    return net


def best_network(seed=0, backend="auto", T=16) -> TNNNetwork:
    """The best network of ``benches/tnn_accuracy.py``'s search on the MNIST sample: 8 columns
    of 64 neurons (k 4) on 7-line slices every 3 lines of the current row and the 4 before it,
    seed 004's column STDP (94.5-95.0% test accuracy over 3 seeds with a logistic readout on
    the spikes of all waves; BENCHMARKS.md, rule D)."""
    return slice_network(width=7, stride=3, context=4, n_neurons=64, k=4, seed=seed, backend=backend, T=T)


#: preset name -> builder(seed=, backend=)
PRESETS = {"v8": v8_network, "best": best_network}
