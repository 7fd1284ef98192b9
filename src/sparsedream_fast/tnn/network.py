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

import copy
import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .._backends import rule_module
from .._validation import as_host_array, check_choice, check_int
from .config import ColumnSpec, check_T, check_weight_dtype
from .encoding import check_spike_times
from .philox import split_seed
from .program import ColumnProgram, Program

__all__ = ["TNNNetwork"]

#: backends implementing rule D, by preference of ``backend="auto"`` (cuda only on request:
#: training is sequential, so the GPU pays for large inference batches)
_IMPLEMENTED = {"cpp": "_cpp", "numpy": "reference", "cuda": "_cuda"}


class _Layer:
    def __init__(self, name, kind, n, **kw):
        self.name, self.kind, self.n = name, kind, n
        self.__dict__.update(kw)


class _Connection:
    def __init__(self, source, target, init, lines, learn, density):
        self.source, self.target, self.init, self.lines, self.learn, self.density = (
            source, target, init, lines, learn, density)


class TNNNetwork(TransformerMixin, BaseEstimator):
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
        A progress bar over sequences during ``fit``.
    readout : str, list of str or None
        The layers whose spikes ``transform`` returns by default (None: the last column).
    readout_waves : {"all", "last"}
    readout_features : {"spike", "time"}
        Defaults of ``transform`` (so that a Pipeline can set them).

    Attributes
    ----------
    weights_ : dict of str -> ndarray of shape (N, D), ``dtype``
        Each column's weights; its D synapses are its connections' lines in the order
        they were connected (see :meth:`connection_weights`).
    n_waves_learned_ : int
        Learning waves made so far (the STDP counter of the next one).
    backend_ : str
    """

    def __init__(self, T=16, dtype="int32", backend="auto", seed=0, progress=False, readout=None,
                 readout_waves="all", readout_features="spike"):
        self.T = T
        self.dtype = dtype
        self.backend = backend
        self.seed = seed
        self.progress = progress
        self.readout = readout
        self.readout_waves = readout_waves
        self.readout_features = readout_features
        self._layers: dict = {}
        self._connections: list = []
        self._built = False

    # ------------------------------------------------------------------ building
    def _check_new(self, name):
        if self._built:
            raise RuntimeError("this network is already built (fitted or run); add layers before "
                               "the first fit, or start from clone()")
        if not isinstance(name, str) or not name:
            raise TypeError(f"layer name must be a non-empty string, got {name!r}")
        if name in self._layers:
            raise ValueError(f"a layer named {name!r} already exists")

    def add_input(self, name: str, n: int) -> "TNNNetwork":
        """An input layer of ``n`` lines; the data's last dimension concatenates all inputs
        in the order they were added."""
        self._check_new(name)
        self._layers[name] = _Layer(name, "input", check_int(n, f"input {name!r} size", 1))
        return self

    def add_column(self, name: str, n_neurons: int, threshold: int, k: int, w_max: int = 16,
                   stdp=None) -> "TNNNetwork":
        """A column of ``n_neurons`` temporal neurons with k-WTA and STDP.

        Parameters
        ----------
        threshold : int >= 1
        k : int in [1, n_neurons]
        w_max : int >= 1
        stdp : STDP, dict (notebook names accepted) or None (seed 004's column values)
        """
        self._check_new(name)
        spec = ColumnSpec.make(n_neurons, threshold, k, w_max, stdp, check_weight_dtype(self.dtype))
        self._layers[name] = _Layer(name, "column", spec.n_neurons, spec=spec)
        return self

    def add_delay(self, name: str, source: str, waves: int = 1) -> "TNNNetwork":
        """A delay (buffer) layer: the spikes of ``source`` ``waves`` waves later, same times."""
        self._check_new(name)
        src = self._layer(source)
        self._layers[name] = _Layer(name, "delay", src.n, source=source,
                                    waves=check_int(waves, "delay waves", 1))
        return self

    def connect(self, source: str, target: str, init=(0, 1), lines=None, learn: bool = True,
                density: float = 1.0) -> "TNNNetwork":
        """Feed ``source``'s spikes to the column ``target``.

        Parameters
        ----------
        init : (int, int) or ndarray of shape (N_target, n_lines)
            Initial weights: integers drawn uniformly in [low, high] (inclusive), or the array.
        lines : slice, sequence of int or None
            The receptive slice: which of ``source``'s lines (0-based) feed the column.
        learn : bool
            Whether STDP changes these synapses (False: fixed weights).
        density : float in (0, 1]
            Keep each drawn weight with this probability, zero otherwise (a sparse, strong
            recurrence as in the notebook's V5).
        """
        if self._built:
            raise RuntimeError("this network is already built; connect before the first fit")
        src, dst = self._layer(source), self._layer(target)
        if dst.kind != "column":
            raise ValueError(f"connection target {target!r} is a {dst.kind} layer; only columns "
                             "receive weighted connections")
        if src.kind == "column":
            names = list(self._layers)
            if names.index(source) >= names.index(target):
                raise ValueError(f"column {target!r} cannot read column {source!r} of the same wave: "
                                 "it is added after it (feedback goes through a delay layer: "
                                 "add_delay)")
        idx = np.arange(src.n)
        if lines is not None:
            try:
                if isinstance(lines, slice):
                    idx = idx[lines]
                else:
                    sel = np.asarray(lines)
                    if sel.dtype == bool:   # a mask over the source's lines (not the indices 0 / 1)
                        if sel.shape != (src.n,):
                            raise ValueError(f"a boolean mask must have shape ({src.n},), got {sel.shape}")
                        idx = idx[sel]
                    elif sel.size and sel.dtype.kind not in "iu":
                        raise TypeError(f"line indices must be integers, got dtype {sel.dtype}")
                    else:
                        idx = idx[sel.astype(np.int64)]
            except (IndexError, ValueError, TypeError) as exc:
                raise ValueError(f"lines {lines!r} do not select lines of {source!r} "
                                 f"(0..{src.n - 1}): {exc}") from None
            if idx.ndim != 1 or idx.size == 0:
                raise ValueError(f"lines {lines!r} select no line of {source!r}")
        if not isinstance(density, numbers.Real) or not 0 < density <= 1:
            raise ValueError(f"density must be in (0, 1], got {density!r}")
        self._connections.append(_Connection(source, target, init, idx, bool(learn), float(density)))
        return self

    def _layer(self, name):
        if name not in self._layers:
            raise KeyError(f"no layer named {name!r}; layers: {list(self._layers)}")
        return self._layers[name]

    @property
    def layers(self) -> dict:
        """Layer name -> (kind, size), in the order they were added."""
        return {n: (l.kind, l.n) for n, l in self._layers.items()}

    @property
    def n_inputs(self) -> int:
        """Input lines of the data (all input layers)."""
        return sum(l.n for l in self._layers.values() if l.kind == "input")

    def _compile(self) -> tuple[Program, dict]:
        T = check_T(self.T)
        if not any(l.kind == "input" for l in self._layers.values()):
            raise ValueError("the network has no input layer (add_input)")
        columns = [l for l in self._layers.values() if l.kind == "column"]
        if not columns:
            raise ValueError("the network has no column (add_column)")
        start, pos = {}, 0
        for l in self._layers.values():          # inputs first: they are the data's lines
            if l.kind == "input":
                start[l.name] = pos
                pos += l.n
        n_in = pos
        dsrc, ddst = [], []
        for l in self._layers.values():
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
        for l in self._layers.values():
            if l.kind == "delay":
                prev = None
                for st in start[("stage", l.name)]:
                    src0 = start[l.source] if prev is None else prev
                    dsrc.extend(range(src0, src0 + l.n))
                    ddst.extend(range(st, st + l.n))
                    prev = st
        cols = []
        for l in columns:
            conns = [c for c in self._connections if c.target == l.name]
            if not conns:
                raise ValueError(f"column {l.name!r} has no incoming connection (connect)")
            in_lines = np.concatenate([start[c.source] + c.lines for c in conns]).astype(np.int32)
            plastic = np.concatenate([np.full(len(c.lines), c.learn, np.uint8) for c in conns])
            cols.append(ColumnProgram(l.spec, in_lines, plastic, start[l.name]))
        prog = Program(T, n_in, pos, np.array(dsrc, np.int32), np.array(ddst, np.int32), cols)
        return prog, start

    def _init_weights(self, rng, dtype):
        weights = {}
        for l in self._layers.values():
            if l.kind != "column":
                continue
            blocks = []
            for c in (c for c in self._connections if c.target == l.name):
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

    def _build(self):
        if self._built:
            return
        dtype = check_weight_dtype(self.dtype)
        if dtype == np.uint8:   # dtype may have been set after add_column checked w_max
            for l in self._layers.values():
                if l.kind == "column" and l.spec.w_max > 255:
                    raise ValueError(f"column {l.name!r} has w_max={l.spec.w_max}, more than uint8 "
                                     "weights hold (255): use dtype='int32'")
        prog, starts = self._compile()
        if self.seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**63)
        else:
            seed = check_int(self.seed, "seed", 0, 2**63 - 1)
        rng = np.random.default_rng(seed)
        self.weights_ = self._init_weights(rng, dtype)
        self._prog, self._starts, self._rng = prog, starts, rng
        self.seed_ = seed
        self.n_waves_learned_ = 0
        self._built = True

    # ------------------------------------------------------------------ running
    def _backend(self):
        return rule_module(self.backend, _IMPLEMENTED, __package__, "TNNNetwork")

    def _data(self, X):
        T = check_T(self.T)
        if self._built and T != self._prog.T:
            raise ValueError(f"T was changed to {T} after the network was built with T={self._prog.T} "
                             "(its weights and spike times belong to that T): set T back, or start "
                             "from clone()")
        return check_spike_times(X, T, self.n_inputs, "X (spike times)", ndim=(3,))

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

    def _run(self, data, learn, record_lines):
        backend, mod = self._backend()
        prog = self._prog.with_record(record_lines)
        weights = self._checked_weights()
        key = split_seed(self.seed_)
        if not learn or not self.progress or len(data) < 2:
            rec, wave = mod.run_network(prog, weights, data, learn, self.n_waves_learned_, key)
        else:
            from tqdm.auto import tqdm
            parts = []
            wave = self.n_waves_learned_
            chunk = max(1, len(data) // 100)
            with tqdm(total=len(data), desc="TNN fit", unit="seq") as bar:
                for s in range(0, len(data), chunk):
                    r, wave = mod.run_network(prog, weights, data[s:s + chunk], learn, wave, key)
                    parts.append(r)
                    bar.update(len(r))
            rec = np.concatenate(parts)
        if learn:
            self.n_waves_learned_ = wave
        self.backend_ = backend
        return rec

    def fit(self, X, y=None, epochs: int = 1, shuffle: bool = True) -> "TNNNetwork":
        """Learn with STDP on every column, sequence after sequence.

        Parameters
        ----------
        X : array-like of shape (n_sequences, n_waves, n_inputs), integer spike times in [0, T]
            (``tnn.image_rows`` turns images into row waves).
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
        data = self._data(X)
        self._build()
        for _ in range(epochs):
            order = self._rng.permutation(len(data)) if shuffle else np.arange(len(data))
            self._run(np.ascontiguousarray(data[order]), True, np.zeros(0, np.int32))
        return self

    def partial_fit(self, X, y=None) -> "TNNNetwork":
        """One pass over X in the given order (continues the STDP counter)."""
        return self.fit(X, epochs=1, shuffle=False)

    def _lines_of(self, layer):
        l = self._layer(layer)
        return np.arange(self._starts[l.name], self._starts[l.name] + l.n, dtype=np.int32)

    def run(self, X, layers=None, learn: bool = False) -> dict:
        """Spike times of ``layers`` on every wave.

        Parameters
        ----------
        X : array-like of shape (n_sequences, n_waves, n_inputs), spike times
        layers : str, list of str or None
            Default: every column.
        learn : bool
            Apply STDP while running (as ``partial_fit``).

        Returns
        -------
        dict of layer name -> ndarray of shape (n_sequences, n_waves, layer size), uint8
        """
        self._backend()
        data = self._data(X)
        self._build()
        if layers is None:
            layers = [n for n, l in self._layers.items() if l.kind == "column"]
        elif isinstance(layers, str):
            layers = [layers]
        if len(layers) == 0:
            raise ValueError("layers names no layer to record")
        parts = [self._lines_of(n) for n in layers]
        rec = self._run(data, bool(learn), np.concatenate(parts))
        out, pos = {}, 0
        for n, p in zip(layers, parts):
            out[n] = rec[:, :, pos:pos + len(p)]
            pos += len(p)
        return out

    def transform(self, X, layer=None, waves: str | None = None, features: str | None = None) -> np.ndarray:
        """Readout features of the spikes of one or several layers (no learning).

        Parameters
        ----------
        X : array-like of shape (n_sequences, n_waves, n_inputs), spike times
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
        if not self._built:
            raise AttributeError("the network has no weights yet: call fit or run first")
        pos = 0
        for c in (c for c in self._connections if c.target == target):
            if c.source == source:
                return self.weights_[target][:, pos:pos + len(c.lines)]
            pos += len(c.lines)
        raise KeyError(f"no connection {source!r} -> {target!r}")

    # ------------------------------------------------------------------ checkpoints
    def save(self, path) -> None:
        """Write the network (structure, weights, STDP counter, generator) to ``path`` (.npz,
        no pickles; see :mod:`sparsedream_fast.tnn.checkpoint`)."""
        from .checkpoint import save
        save(self, path)

    @classmethod
    def load(cls, path) -> "TNNNetwork":
        """Read a network written by :meth:`save`; it continues as the saved one would."""
        from .checkpoint import load
        return load(path)

    # ------------------------------------------------------------------ scikit-learn
    def __sklearn_clone__(self):
        return self.clone()

    def clone(self) -> "TNNNetwork":
        """The same layers and connections, unfitted (same class as ``self``)."""
        new = type(self)(**self.get_params(deep=False))
        new._layers = copy.deepcopy(self._layers)
        new._connections = copy.deepcopy(self._connections)
        return new

    def __repr__(self) -> str:
        parts = [f"{n}:{l.kind}({l.n})" for n, l in self._layers.items()]
        conns = [f"{c.source}->{c.target}" for c in self._connections]
        return f"TNNNetwork(T={self.T}, layers=[{', '.join(parts)}], connections=[{', '.join(conns)}])"
