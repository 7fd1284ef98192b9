"""``TNNNetwork``: columns, delay layers and inputs connected by name (seed 004's networks).

A small API in the spirit of the notebook's ``Network`` / ``add_layer`` / ``add_connection``::

    net = TNNNetwork(T=16, seed=0)
    net.add_input("pixels", 28)
    net.add_column("rec", 100, threshold=32, k=10, stdp=STDP(search=30/128, u_min=16/128))
    net.add_delay("buf", "rec")                     # the column's spikes, one wave later
    net.connect("pixels", "rec", init=(0, 2))
    net.connect("buf", "rec", init=(0, 8))          # recurrence through the delay
    net.fit(waves)                                  # (n_sequences, n_waves, 28) spike times
    features = net.transform(waves)                 # spikes of "rec" on every wave

The whole presentation (every sequence, wave and column) runs in one kernel call of the
chosen backend; see ``program.py`` for the order of evaluation within a wave.
"""
from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from .._backends import rule_module
from .._runtime import Control, StepBoundary
from ..checkpoint import CheckpointMixin
from .._validation import as_host_array, check_choice, check_int, check_not_empty, width_error
from .config import STDP, check_T, check_weight_dtype
from .encoding import check_spike_times
from .philox import split_seed
from .program import ColumnProgram, Program
from .structure import Structure

__all__ = ["TNNNetwork"]

#: backends implementing rule D, by preference of ``backend="auto"`` (cuda only on request:
#: training is sequential, so the GPU pays for large inference batches)
_IMPLEMENTED = {"cpp": "_cpp", "numpy": "reference", "cuda": "_cuda"}


class TNNNetwork(CheckpointMixin, TransformerMixin, BaseEstimator):
    """A network of TNN columns with STDP (docs/rules/tnn.md).

    Parameters
    ----------
    T : int
        Steps per wave (seed 004: 16), 1..255. Spike times are integers in [0, T], T = none.
    dtype : {"int32", "uint8"}
        Storage of the integer weights (uint8 needs every w_max <= 255).
    backend : {"auto", "numpy", "cpp", "cuda"}
        ``auto`` prefers cpp; cuda only on request. numpy and cpp give the same weights bit
        for bit (tested); the cuda kernel is built to (same draws) but not yet run on a GPU.
    seed : int or None
        Draws the initial weights, the presentation order, and keys the counter-based STDP
        draws (Philox4x32-10); None picks one at random (kept in ``seed_``).
    progress : bool
        Progress over sequences during ``fit``: a bar on a terminal, a plain line at every
        tenth of the sequences when stderr is a log.
    readout : str, list of str or None
        The layers whose spikes ``transform`` returns by default (None: the last column).
    readout_waves : {"all", "last"}
    readout_features : {"spike", "time"}
        Defaults of ``transform`` (so that a Pipeline can set them).
    structure : Structure or None
        The layers and connections (:class:`~sparsedream_fast.tnn.structure.Structure`).
        ``add_input``, ``add_column``, ``add_delay`` and ``connect`` replace it by a structure
        with one more layer or connection, so ``clone`` and a grid search see it like any
        other parameter. None: no layer yet.
    warm_start : bool
        When True and the network is fitted, ``fit`` continues from the current weights,
        STDP counter and generator instead of starting afresh.

    Attributes
    ----------
    weights_ : dict of str -> ndarray of shape (N, D), ``dtype``
        Each column's weights; its D synapses are its connections' lines in the order
        they were connected (see :meth:`connection_weights`).
    structure_ : Structure
        The structure fitted, with an input of open size sized by the data.
    n_features_in_ : int
        Input lines per wave (the data's last dimension).
    feature_names_in_ : ndarray of str
        The column names of a DataFrame of single-wave sequences fitted on.
    n_waves_learned_ : int
        Learning waves made so far (the STDP counter of the next one). A Ctrl-C during
        ``fit`` or ``partial_fit`` stops training after the sequence in progress (the waves
        of a sequence share its delay lines): ``KeyboardInterrupt`` is raised with the
        weights exactly as after the ``n_waves_learned_`` waves before (as a fresh
        training on those sequences gives them). Integer weights clipped to [0, w_max]
        cannot diverge.
    seed_ : int
        The seed in use (drawn at fit when ``seed`` is None).
    backend_ : str
    """

    #: whether the weights exist (fit, run of a loaded checkpoint); a class default so that
    #: the constructor only stores its parameters
    _built = False

    def __init__(self, T: int = 16, dtype: str = "int32", backend: str = "auto", seed: int | None = 0,
                 progress: bool = False, readout: str | list[str] | None = None, readout_waves: str = "all",
                 readout_features: str = "spike", structure: Structure | None = None, warm_start: bool = False):
        self.T = T
        self.dtype = dtype
        self.backend = backend
        self.seed = seed
        self.progress = progress
        self.readout = readout
        self.readout_waves = readout_waves
        self.readout_features = readout_features
        self.structure = structure
        self.warm_start = warm_start

    def __sklearn_is_fitted__(self) -> bool:
        return self._built

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True    # (n_sequences, n_waves, n_lines)
        tags.input_tags.categorical = True      # integer spike times in [0, T]
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = []   # features are float32 whatever the input
        return tags

    # ------------------------------------------------------------------ building
    def _structure(self) -> Structure:
        """The ``structure`` parameter (an empty structure for None), type-checked."""
        s = self.structure
        if s is None:
            return Structure()
        if not isinstance(s, Structure):
            raise TypeError(f"structure must be a sparsedream_fast.tnn.Structure or None, got {type(s).__name__}")
        return s

    def _edit(self) -> Structure:
        if self._built:
            raise RuntimeError("this network is already built (fitted); change its structure before "
                               "the first fit, or start from clone()")
        return self._structure()

    def add_input(self, name: str, n: int | None = None) -> "TNNNetwork":
        """An input layer of ``n`` lines; the data's last dimension concatenates all inputs
        in the order they were added. ``n=None``: the data's width at fit (one input only).

        Replaces ``structure`` by one with this layer added; returns self."""
        self.structure = self._edit().add_input(name, n)
        return self

    def add_column(self, name: str, n_neurons: int, threshold: int, k: int, w_max: int = 16,
                   stdp: STDP | dict | None = None) -> "TNNNetwork":
        """A column of ``n_neurons`` temporal neurons with k-WTA and STDP; returns self.

        Parameters
        ----------
        name : str
        n_neurons : int >= 1
        threshold : int >= 1
        k : int in [1, n_neurons]
        w_max : int >= 1
        stdp : STDP, dict (notebook names accepted) or None (seed 004's column values)
        """
        self.structure = self._edit().add_column(name, n_neurons, threshold, k, w_max, stdp,
                                                 check_weight_dtype(self.dtype))
        return self

    def add_delay(self, name: str, source: str, waves: int = 1) -> "TNNNetwork":
        """A delay (buffer) layer: the spikes of ``source`` ``waves`` waves later, same times;
        returns self."""
        self.structure = self._edit().add_delay(name, source, waves)
        return self

    def connect(self, source: str, target: str, init: tuple[int, int] | ArrayLike = (0, 1),
                lines: slice | ArrayLike | None = None, learn: bool = True,
                density: float = 1.0) -> "TNNNetwork":
        """Feed ``source``'s spikes to the column ``target``; returns self.

        Parameters
        ----------
        source, target : str
        init : (int, int) or array-like of shape (N_target, n_lines)
            Initial weights: integers drawn uniformly in [low, high] (inclusive), or the array.
        lines : slice, sequence of int, boolean mask or None
            The receptive slice: which of ``source``'s lines (0-based) feed the column.
        learn : bool
            Whether STDP changes these synapses (False: fixed weights).
        density : float in (0, 1]
            Keep each drawn weight with this probability, zero otherwise (a sparse, strong
            recurrence as in the notebook's V5).
        """
        self.structure = self._edit().connect(source, target, init, lines, learn, density)
        return self

    def _current(self) -> Structure:
        """The structure in use: the fitted one once built, else the parameter."""
        fitted = self.__dict__.get("structure_")
        return fitted if fitted is not None else self._structure()

    @property
    def _layers(self) -> dict:
        """Layer name -> Layer of the structure in use (a read-only view)."""
        return {l.name: l for l in self._current().layers}

    @property
    def _connections(self) -> list:
        """The connections of the structure in use, in order."""
        return list(self._current().connections)

    def _layer(self, name):
        return self._current().layer(name)

    @property
    def layers(self) -> dict:
        """Layer name -> (kind, size), in the order they were added (size None: from the data)."""
        return {l.name: (l.kind, l.n) for l in self._current().layers}

    @property
    def n_inputs(self) -> int | None:
        """Input lines of the data (all input layers); None while an input takes its size from the data."""
        return self._current().n_inputs

    def _compile(self, structure: Structure | None = None) -> tuple[Program, dict]:
        struct = self._current() if structure is None else structure
        T = check_T(self.T)
        layers = struct.layers
        if not any(l.kind == "input" for l in layers):
            raise ValueError("the network has no input layer (add_input)")
        columns = struct.columns()
        if not columns:
            raise ValueError("the network has no column (add_column)")
        if struct.n_inputs is None:
            raise ValueError("an input takes its size from the data: fit the network on data first")
        start, pos = {}, 0
        for l in layers:          # inputs first: they are the data's lines
            if l.kind == "input":
                start[l.name] = pos
                pos += l.n
        n_in = pos
        dsrc, ddst = [], []
        for l in layers:
            if l.kind == "column":
                start[l.name] = pos
                pos += l.n
            elif l.kind == "delay":
                # a chain of one-wave stages; the layer's lines are the last stage
                for _ in range(l.waves):
                    start.setdefault(("stage", l.name), [])
                    start[("stage", l.name)].append(pos)
                    pos += l.n
                start[l.name] = start[("stage", l.name)][-1]
        for l in layers:
            if l.kind == "delay":
                prev = None
                for st in start[("stage", l.name)]:
                    src0 = start[l.source] if prev is None else prev
                    dsrc.extend(range(src0, src0 + l.n))
                    ddst.extend(range(st, st + l.n))
                    prev = st
        cols = []
        for l in columns:
            conns = struct.incoming(l.name)
            if not conns:
                raise ValueError(f"column {l.name!r} has no incoming connection (connect)")
            in_lines = np.concatenate([start[c.source] + c.lines for c in conns]).astype(np.int32)
            plastic = np.concatenate([np.full(len(c.lines), c.learn, np.uint8) for c in conns])
            cols.append(ColumnProgram(l.spec, in_lines, plastic, start[l.name]))
        prog = Program(T, n_in, pos, np.array(dsrc, np.int32), np.array(ddst, np.int32), cols)
        return prog, start

    @staticmethod
    def _init_weights(struct: Structure, rng, dtype) -> dict:
        weights = {}
        for l in struct.columns():
            blocks = []
            for c in struct.incoming(l.name):
                shape = (l.n, len(c.lines))
                if isinstance(c.init, (tuple, list)) and len(c.init) == 2 and all(
                        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in c.init):
                    lo, hi = int(c.init[0]), int(c.init[1])
                    if not 0 <= lo <= hi <= l.spec.w_max:
                        raise ValueError(f"init of {c.source!r} -> {l.name!r} must satisfy 0 <= low <= "
                                         f"high <= w_max={l.spec.w_max}, got {tuple(c.init)}")
                    B = rng.integers(lo, hi + 1, size=shape)
                else:
                    B = as_host_array(c.init, "init")
                    if B.shape != shape:
                        raise ValueError(f"init of {c.source!r} -> {l.name!r} must be an (low, high) "
                                         f"integer pair or an array of shape {shape}, got "
                                         f"{getattr(B, 'shape', c.init)}")
                    if B.dtype.kind not in "iu" and not (B.dtype.kind == "f" and np.all(B == np.round(B))):
                        raise ValueError(f"init array of {c.source!r} -> {l.name!r} must hold integers")
                    if B.size and (B.min() < 0 or B.max() > l.spec.w_max):
                        raise ValueError(f"init array of {c.source!r} -> {l.name!r} must lie in "
                                         f"[0, w_max={l.spec.w_max}]")
                    B = B.astype(np.int64)
                if c.density < 1:
                    B = np.where(rng.random(shape) < c.density, B, 0)
                blocks.append(B)
            weights[l.name] = np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype=dtype)
        return weights

    def _build(self, width: int | None = None):
        """Initialise a fresh state (weights, generator, counter) from the ``structure``
        parameter, an input of open size taking ``width`` lines. Everything is checked before
        the model changes."""
        dtype = check_weight_dtype(self.dtype)
        struct = self._structure()
        if width is not None:
            struct = struct.sized(width)
        if dtype == np.uint8:   # dtype may have been set after add_column checked w_max
            for l in struct.columns():
                if l.spec.w_max > 255:
                    raise ValueError(f"column {l.name!r} has w_max={l.spec.w_max}, more than uint8 "
                                     "weights hold (255): use dtype='int32'")
        prog, starts = self._compile(struct)
        if self.seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**63)
        else:
            seed = check_int(self.seed, "seed", 0, 2**63 - 1)
        rng = np.random.default_rng(seed)
        weights = self._init_weights(struct, rng, dtype)
        self.weights_, self.structure_ = weights, struct
        self._prog, self._starts, self._rng = prog, starts, rng
        self.seed_ = seed
        self.n_features_in_ = prog.n_in
        self.n_waves_learned_ = 0
        self._built = True

    # ------------------------------------------------------------------ running
    def _backend(self):
        return rule_module(self.backend, _IMPLEMENTED, __package__, "TNNNetwork")

    def _data(self, X, reset: bool) -> np.ndarray:
        """X as (n_sequences, n_waves, n_lines) uint8 spike times, checked (nothing changes).

        A 2-D X is a batch of single-wave sequences. ``reset``: for a fresh fit (the width
        may size an open input); otherwise for the fitted network.
        """
        T = check_T(self.T)
        if not reset and T != self._prog.T:
            raise ValueError(f"T was changed to {T} after the network was built with T={self._prog.T} "
                             "(its weights and spike times belong to that T): set T back, or start "
                             "from clone()")
        A = as_host_array(X, "X")
        if reset:
            check_not_empty(A)
        S = check_spike_times(A, T, None, "X (spike times)", ndim=(2, 3))
        want = self._structure().n_inputs if reset else self._prog.n_in
        if want is not None and S.shape[-1] != want:
            raise width_error(self, S.shape[-1], want, "input lines per wave")
        if S.ndim == 2:
            if not reset:
                validate_data(self, X, skip_check_array=True, reset=False)   # feature names
            S = S[:, None, :]
        return S

    def _adopt_names(self, X):
        """Record (or forget) the DataFrame column names of a fresh fit's 2-D X."""
        if hasattr(X, "columns") and getattr(X, "ndim", None) == 2:
            validate_data(self, X, skip_check_array=True, reset=True)
        else:
            self.__dict__.pop("feature_names_in_", None)

    def _checked_weights(self) -> list:
        """The columns' weight arrays, checked (a user may have edited ``weights_``)."""
        dtype = check_weight_dtype(self.dtype)
        out = []
        columns = [l for l in self._layers.values() if l.kind == "column"]
        for l, col in zip(columns, self._prog.columns):
            W = self.weights_[l.name]
            shape = (l.n, col.n_inputs)
            if not isinstance(W, np.ndarray) or W.shape != shape or W.dtype != dtype or not W.flags.c_contiguous:
                raise ValueError(f"weights of column {l.name!r} must be a C-contiguous {dtype} array of "
                                 f"shape {shape}")
            if W.size and (W.min() < 0 or W.max() > l.spec.w_max):
                raise ValueError(f"weights of column {l.name!r} must lie in [0, w_max={l.spec.w_max}]")
            out.append(W)
        return out

    def _run(self, data, learn, record_lines, guard=None):
        """Present ``data``; with ``guard`` (training), stop after a sequence on its stop
        request. Returns (the recorded lines of the sequences presented, how many)."""
        backend, mod = self._backend()
        prog = self._prog.with_record(record_lines)
        weights = self._checked_weights()
        key = split_seed(self.seed_)
        self.backend_ = backend
        n_waves = data.shape[1]
        chunk = len(data) if not learn or not self.progress or len(data) < 2 else max(1, len(data) // 100)
        bar = None
        if chunk < len(data):
            from .._progress import progress_bar   # a bar on a terminal, plain lines in a log
            bar = progress_bar(total=len(data), desc="TNN fit", unit="seq")
        parts, pos = [], 0
        try:
            while pos < len(data):
                ctl = guard.begin() if guard is not None else Control()
                try:
                    r, _ = mod.run_network(prog, weights, data[pos:pos + chunk], learn, self.n_waves_learned_, key,
                                           control=ctl)
                finally:  # also when a signal handler's exception comes out of the native loop
                    done = ctl.done
                    if learn:
                        self.n_waves_learned_ += done * n_waves
                    pos += done
                    if bar is not None:
                        bar.update(done)
                parts.append(r[:done])
                if ctl.stopped:
                    break
        finally:
            if bar is not None:
                bar.close()
        rec = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros(
            (0, n_waves, len(prog.record)), np.uint8)
        return rec, pos

    def fit(self, X: ArrayLike, y: object = None, epochs: int = 1, shuffle: bool = True) -> "TNNNetwork":
        """Initialise the weights and learn with STDP on every column, sequence after sequence.

        With ``warm_start=True`` a fitted network continues instead (weights, STDP counter,
        generator).

        Parameters
        ----------
        X : array-like of shape (n_sequences, n_waves, n_inputs) or (n_sequences, n_inputs)
            Integer spike times in [0, T] (``tnn.image_rows`` turns images into row waves); a
            2-D X is a batch of single-wave sequences.
        y : ignored (unsupervised; present for scikit-learn pipelines)
        epochs : int
        shuffle : bool
            Present the sequences in a fresh seeded order each epoch.

        Returns
        -------
        self
        """
        epochs = check_int(epochs, "epochs", 1)
        self._backend()
        warm = bool(self.warm_start) and self._built
        data = self._data(X, reset=not warm)
        if not warm:
            self._adopt_names(X)
            self._build(data.shape[-1])
        self._learn(data, epochs, bool(shuffle))
        return self

    def _learn(self, data, epochs, shuffle):
        """Every epoch of data; a Ctrl-C stops it after a sequence (KeyboardInterrupt, with
        n_waves_learned_ current), unless the user's SIGINT handler returns: then it goes on."""
        with StepBoundary() as guard:
            for _ in range(epochs):
                order = self._rng.permutation(len(data)) if shuffle else np.arange(len(data))
                part = np.ascontiguousarray(data[order])
                pos = 0
                while pos < len(part):
                    pos += self._run(part[pos:], True, np.zeros(0, np.int32), guard)[1]
                    guard.check()

    def partial_fit(self, X: ArrayLike, y: object = None) -> "TNNNetwork":
        """One pass over X in the given order, continuing the STDP counter (the first call
        initialises the weights like ``fit``).

        Parameters
        ----------
        X : array-like of shape (n_sequences, n_waves, n_inputs) or (n_sequences, n_inputs)
        y : ignored

        Returns
        -------
        self
        """
        self._backend()
        fresh = not self._built
        data = self._data(X, reset=fresh)
        if fresh:
            self._adopt_names(X)
            self._build(data.shape[-1])
        self._learn(data, 1, False)
        return self

    def _lines_of(self, layer):
        l = self._layer(layer)
        return np.arange(self._starts[l.name], self._starts[l.name] + l.n, dtype=np.int32)

    def run(self, X: ArrayLike, layers: str | list[str] | None = None, learn: bool = False) -> dict[str, np.ndarray]:
        """Spike times of ``layers`` on every wave.

        Parameters
        ----------
        X : array-like of shape (n_sequences, n_waves, n_inputs) or (n_sequences, n_inputs)
            Spike times (2-D: single-wave sequences).
        layers : str, list of str or None
            Default: every column.
        learn : bool
            Apply STDP while running (as ``partial_fit``).

        Returns
        -------
        dict of layer name -> ndarray of shape (n_sequences, n_waves, layer size), uint8
        """
        check_is_fitted(self)
        self._backend()
        data = self._data(X, reset=False)
        if layers is None:
            layers = [n for n, l in self._layers.items() if l.kind == "column"]
        elif isinstance(layers, str):
            layers = [layers]
        if len(layers) == 0:
            raise ValueError("layers names no layer to record")
        parts = [self._lines_of(n) for n in layers]
        rec = self._run(data, bool(learn), np.concatenate(parts))[0]
        out, pos = {}, 0
        for n, p in zip(layers, parts):
            out[n] = rec[:, :, pos:pos + len(p)]
            pos += len(p)
        return out

    def transform(self, X: ArrayLike, layer: str | list[str] | None = None, waves: str | None = None,
                  features: str | None = None) -> np.ndarray:
        """Readout features of the spikes of one or several layers (no learning).

        Parameters
        ----------
        X : array-like of shape (n_sequences, n_waves, n_inputs) or (n_sequences, n_inputs)
            Spike times (2-D: single-wave sequences).
        layer : str, list of str or None
            Default: the constructor's ``readout`` (None there: the last column added).
            Several layers are concatenated wave by wave.
        waves : {"all", "last"} or None
            Concatenate every wave's spikes (the notebook's V6-V10 "cheat mode") or keep the
            last wave only (V11-V15). Default: the constructor's ``readout_waves``.
        features : {"spike", "time"} or None
            1.0 where the neuron spiked; or its earliness ``(T - t) / T`` (0 for none).
            Default: the constructor's ``readout_features``.

        Returns
        -------
        ndarray of shape (n_sequences, n_waves * size) or (n_sequences, size), float32
            ``size`` is the total size of the layers.
        """
        check_is_fitted(self)
        waves = check_choice(self.readout_waves if waves is None else waves, "waves", ("all", "last"))
        features = check_choice(self.readout_features if features is None else features, "features",
                                ("spike", "time"))
        if layer is None:
            layer = self.readout
        if layer is None:
            columns = [n for n, l in self._layers.items() if l.kind == "column"]
            if not columns:
                raise ValueError("the network has no column (add_column)")
            layer = columns[-1]
        names = [layer] if isinstance(layer, str) else list(layer)
        for n in names:
            self._layer(n)
        rec = self.run(X, names)
        times = np.concatenate([rec[n] for n in names], axis=2)
        if waves == "last":
            times = times[:, -1:]
        T = int(self.T)
        if features == "spike":
            F = (times < T).astype(np.float32)
        else:
            F = ((T - times.astype(np.float32)) / T).astype(np.float32)
        return F.reshape(F.shape[0], F.shape[1] * F.shape[2])   # (also when there are no sequences)

    def connection_weights(self, source: str, target: str) -> np.ndarray:
        """The block of ``weights_[target]`` fed by ``source`` (a view; the first such
        connection), shape (N_target, n_lines)."""
        check_is_fitted(self)
        pos = 0
        for c in (c for c in self._connections if c.target == target):
            if c.source == source:
                return self.weights_[target][:, pos:pos + len(c.lines)]
            pos += len(c.lines)
        raise KeyError(f"no connection {source!r} -> {target!r}")

    # ------------------------------------------------------------------ scikit-learn
    def clone(self) -> "TNNNetwork":
        """The same parameters (structure included), unfitted: ``sklearn.base.clone(self)``."""
        return clone(self)
