"""Ready-made TNN networks for sequential MNIST (28 row waves of 28 lines, T = 16).

- :func:`v8_network`: the network of the V8 script that notebook 004's log names
  (``mark_test_records/rc_buff_seq_V8.py`` in the public repository MaiaBlanco/18847-rTNN),
  as far as the library's rule allows; its docstring says what cannot be matched.
- :func:`recurrent_network`: a recurrent column in the manner of V8 (the row and the
  column's own spikes one wave later, STDP on both), with the V5 rTNN STDP values of
  notebook 004's log and denser, weaker feedback; the setting the project measured first.
- :func:`slice_network`: columns on receptive slices of the row, each also reading the rows
  before it through delays of the input; :func:`best_network` is the best setting found by
  ``benches/tnn_accuracy.py`` on the MNIST sample (about 95% with a logistic readout).

Every network's ``readout`` names all its columns, so ``transform`` gives the features of
the whole network.
"""
from __future__ import annotations

import numpy as np

from .config import STDP
from .network import TNNNetwork

__all__ = ["V5_STDP", "COLUMN_STDP", "V8_FEEDFORWARD_STDP", "V8_RECURRENT_STDP", "v8_network",
           "recurrent_network", "slice_network", "best_network", "PRESETS"]

#: notebook 004's STDP values of the recurrent column in its V5 entry
V5_STDP = STDP(capture=20 / 128, minus=20 / 128, search=30 / 128, backoff=96 / 128, u_min=16 / 128)
#: notebook 004's column values (docs/rules/tnn.md)
COLUMN_STDP = STDP()
#: the V8 script's feed-forward synapses (input -> column): 20/20/2/96/4 over 128, w_max 16
V8_FEEDFORWARD_STDP = STDP(capture=20 / 128, minus=20 / 128, search=2 / 128, backoff=96 / 128, u_min=4 / 128)
#: the V8 script's recurrent synapses (delay -> column): 30/30/10/96/16 over 128, w_max 32
V8_RECURRENT_STDP = STDP(capture=30 / 128, minus=30 / 128, search=10 / 128, backoff=96 / 128, u_min=16 / 128)

_V8_STDP = {"feedforward": (V8_FEEDFORWARD_STDP, 16), "recurrent": (V8_RECURRENT_STDP, 32)}


def v8_network(seed=0, backend="auto", T=16, n_neurons=100, k=10, threshold=32, stdp="feedforward",
               n_lines=28) -> TNNNetwork:
    """The V8 script's network (notebook 004), as far as the library's rule allows.

    The script (``rc_buff_seq_V8.py``): 28 input lines -> a column "rTNN_1" of 100 neurons
    (threshold 32, 10 winners, T = 16) whose spikes a buffer layer replays one wave later
    into the same column. Feed-forward synapses start at U(0, 1.6) and learn with STDP
    20/20/2/96/4 over 128 (w_max 16); the recurrent synapses start at U(0, 16) with 90% of
    them zero and learn with STDP 30/30/10/96/16 over 128 (w_max 32).

    Here: the same layers (input ``"pixels"``, column ``"rec"``, delay ``"buf"``), sizes,
    threshold, k and T; feed-forward weights drawn as integers with the script's mean and
    range (U(0, 1.6) rounded stochastically: 0, 1 or 2, mean 0.8); recurrent weights
    U{0..16} kept with probability 0.1.

    What cannot be matched (docs/rules/tnn.md, "The V8 script"):

    - one STDP setting and one w_max per column: ``stdp="feedforward"`` (default) gives every
      synapse the feed-forward values and w_max 16, ``stdp="recurrent"`` the recurrent values
      and w_max 32;
    - the neuron: the library's ramp response (an input adds one unit per step up to its
      weight) where the script's neurons add an input's whole weight from its spike on;
    - integer initial weights (the script's are real numbers that STDP moves in steps of 1);
    - ties between neurons firing at the same step go to the lower index (the script picks
      at random); the random draws are the library's counter-based ones;
    - the script's simulator delivers every spike one time step late.

    Parameters
    ----------
    seed : int or None
        Seeds the network (:class:`TNNNetwork`) and the feed-forward initial weights.
    backend, T : as :class:`TNNNetwork`
    n_neurons, k, threshold : the column (the script: 100, 10, 32)
    stdp : {"feedforward", "recurrent"}
        Which of the script's two STDP settings (and w_max) the column learns with.
    n_lines : int
        Input lines per wave (28: one MNIST row).

    Returns
    -------
    TNNNetwork (unfitted), readout ``["rec"]``
    """
    if stdp not in _V8_STDP:
        raise ValueError(f"stdp must be 'feedforward' or 'recurrent', got {stdp!r}")
    rule, w_max = _V8_STDP[stdp]
    rng = np.random.default_rng(None if seed is None else [int(seed), 8])
    u = rng.uniform(0.0, 1.6, (n_neurons, n_lines))
    ff = np.floor(u + rng.random(u.shape)).astype(np.int64)   # stochastic rounding: mean 0.8
    net = TNNNetwork(T=T, seed=seed, backend=backend, readout=["rec"])
    net.add_input("pixels", n_lines)
    net.add_column("rec", n_neurons, threshold=threshold, k=k, w_max=w_max, stdp=rule)
    net.add_delay("buf", "rec")
    net.connect("pixels", "rec", init=ff).connect("buf", "rec", init=(0, 16), density=0.1)
    return net


def recurrent_network(seed=0, backend="auto", T=16, n_neurons=100, k=10, threshold=32, w_max=16,
                      stdp=V5_STDP, n_lines=28) -> TNNNetwork:
    """A recurrent column after notebook 004's V8: row -> column "rec" <- one-wave delay "buf" of it.

    Unlike :func:`v8_network` (the script's own setting), every synapse learns with the V5
    rTNN STDP values of notebook 004's log (20/20/30/96/16 over 128), w_max 16, and starts
    at U{0..2} (input) or U{0..8} (every recurrent synapse).

    Parameters
    ----------
    seed, backend, T : as :class:`TNNNetwork`
    n_neurons, k, threshold, w_max : the column (100, 10, 32, 16)
    stdp : STDP or dict
        Both connections' STDP (default: the V5 rTNN values).
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
    seed, backend, T, n_lines : as :func:`recurrent_network`

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
PRESETS = {"v8": v8_network, "recurrent": recurrent_network, "best": best_network}
