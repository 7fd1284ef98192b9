"""The ``SparseDream`` estimator: rule A behind a scikit-learn-style API."""
from __future__ import annotations

import dataclasses
import importlib
import numbers
import sys
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .. import checkpoint as _checkpoint
from .. import lateral as _lateral
from .._blas import SingleThreadedBlas
from .._backends import resolve_backend
from .._estimator import not_fitted, record_names
from .._rng import epoch_order
from .._arrays import as_device_array
from .._runtime import DivergenceError, StepBoundary, all_finite
from .._validation import (as_host_array, cast_finite, check_choice, check_data, check_device_data, check_dtype,
                           check_float, check_int, check_not_empty)
from .config import Competition, Output, SparseDreamConfig, TrainState, with_lateral

__all__ = ["SparseDream", "backend_module"]

_COMPETITIONS = {c.name.lower(): c for c in Competition}
_OUTPUTS = {o.name.lower(): o for o in Output}
_MODULES = {"numpy": "reference", "cpp": "_cpp", "numba": "_numba", "cuda": "_cuda"}


def backend_module(name: str):
    """The module implementing rule A for a concrete backend name (numpy, cpp, numba, cuda)."""
    if name not in _MODULES:
        raise ValueError(f"backend {name!r} has no rule A (SparseDream) implementation; "
                         f"implemented: {tuple(_MODULES)}")
    return importlib.import_module(f"{__package__}.{_MODULES[name]}")


class SparseDream(_checkpoint.CheckpointMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Online k-winner-take-all map with multiplicative reconstruction updates (rule A).

    One input at a time: drive ``p = W v``, a competition value ``c`` (optionally with
    lateral excitation on the neuron grid), the ``k`` winners, the reconstruction
    ``r = W^T o`` from the winners' activity ``o``, and the multiplicative update
    ``W_j += lr * o_j * W_j * e / max(r, prec)`` of the winners' rows only.
    See ``docs/rules/sparsedream.md`` and ``docs/design.md``.

    Parameters
    ----------
    n_inputs : int or None
        D, the length of one input. None: taken from the first data seen.
    grid : (int, int) or int
        (rows, cols) of the neuron grid, N = rows * cols; neuron n sits at row n // cols,
        column n % cols. An int N means a 1 x N grid.
    k : int
        Number of winners per input, 1 <= k <= N.
    lr : float
        Learning rate (> 0).
    competition : {"drive", "lateral", "normalized_lateral", "mean_lateral", "weighted_average"}
    output : {"drive", "competition"}
        The winners' activity: their drive ``p`` or their competition value ``c``.
    lateral : spec, ndarray of shape (N, N), scipy.sparse matrix, or None
        ``sdf.lateral.box(radius, strength)`` (default: radius 2, strength 0.1),
        ``sdf.lateral.normalized_box(...)``, ``sdf.lateral.stencil(kernel)``,
        ``sdf.lateral.random(...)`` (for learning), an explicit matrix, or None.
    error_clip : float or None
        Clip the reconstruction error to [-error_clip, error_clip] (seed 001: 1.0).
    trace : float or None
        Trace rate alpha (seed 001: 0.5): ``o += alpha * (a - o)``; None: no trace.
    learn_lateral : bool
        Learn the lateral matrix (seed 000); its zero pattern is kept.
    lateral_lr : float or None
        Learning rate of the lateral; None: ``lr``.
    w_max : float or None
        Every ``clip_every`` steps clip W (and a learned lateral) to [0, w_max];
        ``np.inf`` gives max(W, 0); None (default): no bounds.
    clip_every : int
        Period of the bounds, counted from step 0 of each epoch.
    prec : float
        Guard of every division.
    init : (float, float) or ndarray of shape (N, D)
        Uniform range of the initial weights, or the initial weights themselves.
    dtype : {"float32", "float64"}
    backend : {"auto", "numpy", "cpp", "numba", "cuda"}
        ``auto`` picks the fastest usable here (see ``sparsedream_fast.backends()``).
    seed : int or None
        Seeds the one generator of the model: initial weights, random lateral, epoch orders.
    warm_start : bool
        When True and the model is already fitted (or loaded), ``fit`` continues from the
        current weights, lateral and generator instead of re-initialising: ``fit(X, 5)``
        then ``fit(X, 5)`` with warm_start equals ``fit(X, 10)``.

    Attributes
    ----------
    weights_ : ndarray of shape (N, D)
        The current weights (the model's own array, updated in place by training).
    lateral_ : scipy.sparse.csr_array of shape (N, N) or None
        The lateral matrix in use (a copy; learned or fixed).
    trace_ : ndarray of shape (N,)
        The current trace (zeros without a trace).
    n_steps_ : int
        Learning steps taken since the weights were initialised.
    backend_ : str
        The concrete backend that ran.

    Examples
    --------
    >>> import numpy as np, sparsedream_fast as sdf
    >>> X = np.random.default_rng(0).random((500, 64))
    >>> m = sdf.SparseDream(n_inputs=64, grid=(8, 8), k=3, lr=0.05).fit(X, epochs=1)
    >>> m.winners(X[:2]).shape
    (2, 3)
    """

    def __init__(self, n_inputs: int | None = None, grid: tuple[int, int] | int = (80, 80), k: int = 5,
                 lr: float = 0.1, competition: str = "lateral", output: str = "drive",
                 lateral: object = _lateral.Box(2, 0.1), error_clip: float | None = 1.0,
                 trace: float | None = None, learn_lateral: bool = False, lateral_lr: float | None = None,
                 w_max: float | None = None, clip_every: int = 100, prec: float = 1e-10,
                 init: tuple[float, float] | ArrayLike = (0.15, 0.16), dtype: str = "float32",
                 backend: str = "auto", seed: int | None = 0, warm_start: bool = False):
        self.n_inputs = n_inputs
        self.grid = grid
        self.k = k
        self.lr = lr
        self.competition = competition
        self.output = output
        self.lateral = lateral
        self.error_clip = error_clip
        self.trace = trace
        self.learn_lateral = learn_lateral
        self.lateral_lr = lateral_lr
        self.w_max = w_max
        self.clip_every = clip_every
        self.prec = prec
        self.init = init
        self.dtype = dtype
        self.backend = backend
        self.seed = seed
        self.warm_start = warm_start

    # ------------------------------------------------------------------ validation
    def _grid(self):
        g = self.grid
        if isinstance(g, numbers.Integral) and not isinstance(g, bool):
            g = (1, int(g))
        try:
            rows, cols = g
        except (TypeError, ValueError):
            raise ValueError(f"grid must be (rows, cols) or an int, got {self.grid!r}") from None
        return (check_int(rows, "grid rows", 1), check_int(cols, "grid cols", 1))

    def _config(self, n_inputs=None) -> SparseDreamConfig:
        """Check every parameter; return the config (raises before anything changes)."""
        d = self.n_inputs if self.n_inputs is not None else n_inputs
        d = check_int(d, "n_inputs", 1)
        grid = self._grid()
        n = grid[0] * grid[1]
        if self.k is None or isinstance(self.k, bool) or not isinstance(self.k, numbers.Integral):
            raise TypeError(f"k must be an integer, got {self.k!r}")
        if not 1 <= self.k <= n:
            raise ValueError(f"k must be between 1 and the number of neurons N={n}, got k={self.k}")
        lr = check_float(self.lr, "lr", positive=True)
        comp = _COMPETITIONS[check_choice(self.competition, "competition", _COMPETITIONS)]
        out = _OUTPUTS[check_choice(self.output, "output", _OUTPUTS)]
        clip = check_float(self.error_clip, "error_clip", positive=True, allow_none=True, allow_inf=True)
        trace = check_float(self.trace, "trace", positive=True, allow_none=True, upper=1.0)
        if not isinstance(self.learn_lateral, (bool, np.bool_)):
            raise TypeError(f"learn_lateral must be True or False, got {self.learn_lateral!r}")
        if self.learn_lateral and self.lateral is None:
            raise ValueError("learn_lateral=True needs a lateral matrix to learn (lateral=None)")
        lat_lr = check_float(self.lateral_lr, "lateral_lr", positive=True, allow_none=True)
        w_max = check_float(self.w_max, "w_max", positive=True, allow_none=True, allow_inf=True)
        clip_every = check_int(self.clip_every, "clip_every", 1, 2**63 - 1)
        prec = check_float(self.prec, "prec", positive=True)
        dtype = check_dtype(self.dtype)
        return SparseDreamConfig(
            n_neurons=n, n_inputs=d, grid=grid, k=int(self.k), lr=lr, competition=comp, output=out,
            error_clip=clip, trace=trace, learn_lateral=bool(self.learn_lateral),
            lateral_lr=lr if lat_lr is None else lat_lr, w_max=w_max, clip_every=clip_every,
            prec=prec, dtype=dtype)

    def _check_init(self, cfg):
        init = self.init
        if isinstance(init, (tuple, list)) and len(init) == 2 and all(
                isinstance(x, numbers.Real) and not isinstance(x, bool) for x in init):
            lo, hi = (check_float(init[0], "init low"), check_float(init[1], "init high"))
            if hi < lo:
                raise ValueError(f"init range must have low <= high, got {init!r}")
            return (lo, hi)
        W0 = as_host_array(init, "init")
        if W0.dtype == object or W0.dtype.kind not in "biuf":
            raise TypeError(f"init must be (low, high) or an (N, D) array of numbers, got {init!r:.80}")
        shape = (cfg.n_neurons, cfg.n_inputs)
        if W0.shape != shape:
            raise ValueError(f"init array must have shape (N, D) = {shape}, got {W0.shape}")
        return cast_finite(W0, cfg.dtype, "init array")   # finite in the model's dtype

    def _new_state(self, cfg, rng):
        """Fresh weights, lateral and trace; returns (state, cfg with clip_lateral set)."""
        init = self._check_init(cfg)
        shape = (cfg.n_neurons, cfg.n_inputs)
        if isinstance(init, tuple):
            W = rng.uniform(init[0], init[1], shape).astype(cfg.dtype)
        else:
            W = np.array(init, dtype=cfg.dtype, order="C", copy=True)
        lat = _lateral.resolve(self.lateral, cfg.grid, cfg.dtype, rng, learn=cfg.learn_lateral)
        cfg, lat = with_lateral(cfg, lat)
        return TrainState(W=W, lateral=lat, trace=np.zeros(cfg.n_neurons, cfg.dtype)), cfg

    def _prepare(self, X, fresh: bool):
        """Validate parameters and data (nothing changes on error).

        Returns (cfg, backend name, X as the model dtype). On a fitted model that continues
        (``partial_fit``, ``warm_start``), changed scalar parameters (lr, k, competition, ...)
        take effect; parameters that shape the state (n_inputs, grid, dtype) need a fresh
        ``fit``, and the lateral and init in use stay those of the state.
        """
        backend = resolve_backend(self.backend)
        # the cuda backend reads a device array where it lies; anything else goes to the host once
        Xa = as_device_array(X) if backend == "cuda" else None
        on_device = Xa is not None
        if not on_device:
            Xa = as_host_array(X)
        if Xa.ndim == 2:
            check_not_empty(Xa)   # (before the width of X becomes n_inputs)
        d = Xa.shape[-1] if Xa.ndim >= 1 else None
        cfg = self._config(d if fresh else self.config_.n_inputs)
        if not fresh:
            old = self.config_
            for name in ("n_inputs", "grid", "dtype"):
                if getattr(cfg, name) != getattr(old, name):
                    raise ValueError(f"{name} changed from {getattr(old, name)} to {getattr(cfg, name)} since "
                                     "the model was fitted; call fit with warm_start=False to start afresh")
        backend_module(backend)  # a backend without rule A kernels fails here, before any change
        check = check_device_data if on_device else check_data
        Xc = check(Xa, cfg.n_inputs, cfg.dtype, nonnegative=True, owner=self)
        if not fresh:
            record_names(self, X, Xc, reset=False)
        return cfg, backend, Xc

    def _continue(self, cfg):
        """Adopt ``cfg`` for the existing state (lateral stored as CSR where the config needs it)."""
        cfg, self._state.lateral = with_lateral(cfg, self._state.lateral)
        self.config_ = cfg

    # --------------------------------------------------------------------- training
    def fit(self, X: ArrayLike, y: object = None, epochs: int = 10, shuffle: bool = True,
            steps_per_epoch: int | None = None, progress: bool | None = None,
            callback: Callable[["SparseDream", int, int], object] | None = None,
            callback_every: int | None = None) -> "SparseDream":
        """Initialise the weights from ``init`` and train for ``epochs`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)
        y : ignored (scikit-learn compatibility)
        epochs : int
        shuffle : bool
            Draw a fresh permutation of the samples every epoch (seeds 000/001); False runs
            X in order every epoch (the trace run of seed 001).
        steps_per_epoch : int or None
            Inputs per epoch (the notebooks' ``T_s``): the first ones of the epoch's order.
        progress : bool or None
            Report progress: a tqdm bar on a terminal, a plain line at every tenth of the fit
            when stderr is a log; None: only for long fits on a terminal.
        callback : callable(model, epoch, step) or None
            Called every ``callback_every`` steps (default: once per epoch) with the model's
            state current; training runs natively between calls.
        callback_every : int or None

        Returns
        -------
        self
        """
        warm = bool(self.warm_start) and hasattr(self, "_state")
        cfg, backend, Xc = self._prepare(X, fresh=not warm)
        epochs = check_int(epochs, "epochs", 1)
        n = Xc.shape[0]
        steps = n if steps_per_epoch is None else check_int(steps_per_epoch, "steps_per_epoch", 1, n)
        cb_every = None if callback_every is None else check_int(callback_every, "callback_every", 1)
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable(model, epoch, step)")
        if warm:
            self._check_finite_state()
        with StepBoundary() as guard:  # Ctrl-C acts between steps, with n_steps_ current
            if warm:
                self._continue(cfg)
                rng = self._rng
            else:
                record_names(self, X, Xc, reset=True)
                rng = np.random.default_rng(self.seed)
                self._state, self.config_ = self._new_state(cfg, rng)
                self.n_steps_ = 0
            order = epoch_order(rng, n, epochs, bool(shuffle), steps)
            self.backend_, self._rng = backend, rng
            self._run(guard, Xc, order, reset_trace=True, progress=progress, callback=callback,
                      callback_every=cb_every)
        return self

    def partial_fit(self, X: ArrayLike, y: object = None) -> "SparseDream":
        """One pass over X in order, continuing the current state (weights, lateral, trace).

        The first call initialises the weights like ``fit``. Bounds fall on steps
        0, clip_every, ... of this pass. Returns self.
        """
        fresh = not hasattr(self, "_state")
        cfg, backend, Xc = self._prepare(X, fresh=fresh)
        if not fresh:
            self._check_finite_state()
        with StepBoundary() as guard:
            if fresh:
                record_names(self, X, Xc, reset=True)
                rng = np.random.default_rng(self.seed)
                self._state, self.config_ = self._new_state(cfg, rng)
                self._rng, self.n_steps_ = rng, 0
            else:
                self._continue(cfg)
            self.backend_ = backend
            order = epoch_order(self._rng, Xc.shape[0], 1, False)
            self._run(guard, Xc, order, reset_trace=False, progress=False)
        return self

    def _run(self, guard, Xc, order, reset_trace, progress, callback=None, callback_every=None):
        """Every step of ``order`` (E, S) on the backend, in chunks when a progress bar or a
        callback needs control back. ``n_steps_`` counts every completed step; a deferred
        Ctrl-C (``guard``) raises between chunks, a step whose update is not finite raises
        DivergenceError, both with the state as after the last completed step."""
        mod = backend_module(self.backend_)
        E, S = order.shape
        if progress is None:
            progress = E * S >= 200_000 and sys.stderr.isatty()
        if not progress and callback is None:
            self._steps(guard, mod, Xc, order, reset_trace, 0)
            return
        chunk = callback_every or (S if callback is not None else max(1, min(S, 20_000)))
        bar = None
        if progress:
            from .._progress import progress_bar  # a bar on a terminal, plain lines in a log
            bar = progress_bar(total=E * S, unit="step", desc=f"SparseDream[{self.backend_}]")
        try:
            for e in range(E):
                for s0 in range(0, S, chunk):
                    part = order[e:e + 1, s0:s0 + chunk]
                    self._steps(guard, mod, Xc, part, reset_trace and s0 == 0, s0, bar)
                    if callback is not None:
                        with guard.released():
                            callback(self, e, s0 + part.shape[1])
        finally:
            if bar is not None:
                bar.close()

    def _steps(self, guard, mod, Xc, order, reset_trace, step0, bar=None):
        """Run ``order`` (E, S; its column 0 is step ``step0`` of its epochs) on ``mod``."""
        E, S = order.shape
        pos = 0
        while pos < E * S:
            e, i = divmod(pos, S)
            part = np.ascontiguousarray(order[e:e + 1, i:] if i else order[e:])
            ctl = guard.begin()
            try:
                # the reference's one W @ v per step on one BLAS thread: a threaded BLAS
                # leaves its workers spinning ~0.1 s after its last call, against whatever
                # runs next in the process (a C++ fit's threads: docs/design.md, "Threads")
                with SingleThreadedBlas(active=mod.__name__.endswith(".reference")):
                    mod.fit(self._state, Xc, part, self.config_, reset_trace and i == 0, step0 + i, control=ctl)
            finally:  # also when a signal handler's exception comes out of the native loop
                pos += ctl.done
                self.n_steps_ += ctl.done
                if bar is not None:
                    bar.update(ctl.done)
            if ctl.diverged:
                raise self._divergence(pos, S, step0)
            guard.check()  # a deferred Ctrl-C raises here; if its handler returns, go on

    def _divergence(self, pos, S, step0) -> DivergenceError:
        cfg = self.config_
        e, i = divmod(pos, S)
        clip = "" if cfg.error_clip is not None else ", or set error_clip (the error is not clipped now)"
        return DivergenceError(
            f"SparseDream training diverged: the update of step {self.n_steps_:,} (input {step0 + i:,} of "
            f"epoch {e} of this call) is not finite (NaN or inf), so training stopped before it; the model "
            f"holds the weights after the {self.n_steps_:,} steps before it (n_steps_). Nonnegative weights on "
            f"nonnegative inputs grow by at most lr * input per step, so the likely cause is inputs too large "
            f"for {cfg.dtype.name} (the drive and reconstruction are sums of weights times inputs), weights of "
            f"both signs (an init array or a lateral with negative entries: max(reconstruction, prec) then "
            f"multiplies a negative weight by about lr * activity / prec), or an lr={cfg.lr:g} far too large: "
            f"scale the inputs to [0, 1], keep the weights nonnegative, lower lr{clip}, or bound them with "
            f"w_max.", step=self.n_steps_)

    # -------------------------------------------------------------------- inference
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_state")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True   # training refuses negative inputs
        try:
            tags.transformer_tags.preserves_dtype = [check_dtype(self.dtype).name]  # results in the model dtype
        except ValueError:
            pass
        return tags

    def _check_fitted(self):
        if not hasattr(self, "_state"):
            raise not_fitted(self, "call fit or partial_fit first")

    @property
    def n_features_in_(self) -> int:
        """D, the input width seen at fit (the model's ``config_.n_inputs``)."""
        self._check_fitted()
        return self.config_.n_inputs

    @n_features_in_.setter
    def n_features_in_(self, value):
        pass  # scikit-learn's validate_data records it; the configuration already holds it

    @property
    def _n_features_out(self) -> int:
        """N, for ``get_feature_names_out`` (``sparsedream0`` ... ``sparsedream{N-1}``)."""
        return self.config_.n_neurons

    def infer(self, X: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Winners and their activity in one pass, without learning (what ``winners``,
        ``transform`` and ``reconstruct`` are built from).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs), or (n_inputs,) for one sample

        Returns
        -------
        winners : ndarray of shape (n_samples, k), int64, strongest first
        values : ndarray of shape (n_samples, k), model dtype: each winner's activity
        """
        return self._infer(X)

    def _infer(self, X):
        check_is_fitted(self)
        cfg = self._inference_config()
        Xc = check_data(X, cfg.n_inputs, cfg.dtype, allow_1d=True, owner=self)
        record_names(self, X, Xc, reset=False)
        mod = backend_module(resolve_backend(self.backend))
        self._check_finite_state()
        return mod.infer(self._state.W, self._state.lateral, Xc, cfg)

    def _inference_config(self) -> SparseDreamConfig:
        """The fitted configuration with the current ``k``, ``competition``, ``output`` and
        ``prec``: parameters set after fit apply to inference (checked like fit checks them),
        and parameters that shape the state (n_inputs, grid, dtype) raise until a fresh fit."""
        old = self.config_
        cfg = self._config(old.n_inputs)
        for name in ("n_inputs", "grid", "dtype"):
            if getattr(cfg, name) != getattr(old, name):
                raise ValueError(f"{name} changed from {getattr(old, name)} to {getattr(cfg, name)} since the model "
                                 "was fitted; fit again (warm_start=False) before using it")
        if (cfg.k, cfg.competition, cfg.output, cfg.prec) == (old.k, old.competition, old.output, old.prec):
            return old
        return dataclasses.replace(old, k=cfg.k, competition=cfg.competition, output=cfg.output, prec=cfg.prec)

    def _check_finite_state(self):
        """Refuse to train or infer from a state holding NaN or inf (training never writes
        one; only a change made from outside, to ``weights_`` for instance, can): every
        backend then raises the same ValueError instead of following its own NaN rules."""
        st = self._state
        parts = [("weights_", st.W), ("trace_", st.trace)]
        if st.lateral is not None and getattr(st.lateral, "kind", None) == "csr":
            parts.append(("lateral_", st.lateral.data))
        for name, a in parts:
            if not all_finite(a):
                raise ValueError(f"the model's {name} holds NaN or inf (changed from outside the model: training "
                                 "never writes a value that is not finite); fit again or load a checkpoint")

    def winners(self, X: ArrayLike) -> np.ndarray:
        """Winners of every input, without learning.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)

        Returns
        -------
        ndarray of shape (n_samples, k), int64, in competition order (strongest first,
        ties to the lower index).
        """
        return self._infer(X)[0]

    def transform(self, X: ArrayLike, sparse: bool = False) -> np.ndarray | sp.csr_array:
        """The activity ``a`` (winners' drive or competition value, 0 elsewhere), without learning.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)
        sparse : bool
            Return a scipy.sparse ``csr_array`` instead of a dense array.

        Returns
        -------
        ndarray or csr_array of shape (n_samples, N), model dtype
        """
        win, val = self._infer(X)
        n, k = win.shape
        N = self.config_.n_neurons
        if sparse:
            order = np.argsort(win, axis=1, kind="stable")
            cols = np.take_along_axis(win, order, 1).ravel()
            data = np.take_along_axis(val, order, 1).ravel()
            return sp.csr_array((data, cols, np.arange(0, n * k + 1, k)), shape=(n, N))
        A = np.zeros((n, N), dtype=val.dtype)
        np.put_along_axis(A, win, val, axis=1)
        return A

    def reconstruct(self, X: ArrayLike) -> np.ndarray:
        """Reconstruction ``r = W^T a`` of every input from its winners, without learning.

        Returns
        -------
        ndarray of shape (n_samples, n_inputs), model dtype
        """
        win, val = self._infer(X)
        W = self._state.W
        out = np.empty((win.shape[0], W.shape[1]), dtype=W.dtype)
        for s in range(0, win.shape[0], 1024):
            out[s:s + 1024] = np.einsum("nk,nkd->nd", val[s:s + 1024], W[win[s:s + 1024]])
        return out

    def reconstruction_error(self, X: ArrayLike) -> float:
        """Mean squared reconstruction error over all inputs and pixels (no learning)."""
        check_is_fitted(self)
        Xc = check_data(X, self.config_.n_inputs, self.config_.dtype, allow_1d=True, owner=self)
        record_names(self, X, Xc, reset=False)
        R = self.reconstruct(Xc)
        return float(np.mean((Xc.astype(np.float64) - R) ** 2))

    def score(self, X: ArrayLike, y: object = None) -> float:
        """Goodness of the map on X: the negative mean squared reconstruction error,
        ``-reconstruction_error(X)`` (higher is better, 0 at best), so that ``GridSearchCV`` and
        ``cross_val_score`` can rank unsupervised maps.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)
        y : ignored

        Returns
        -------
        float
        """
        return -self.reconstruction_error(X)

    # ------------------------------------------------------------------ attributes
    @property
    def weights_(self) -> np.ndarray:
        """The current weights, shape (N, D), model dtype."""
        self._check_fitted()
        return self._state.W

    @property
    def lateral_(self):
        """The lateral matrix in use as a scipy.sparse csr_array (N, N), or None."""
        self._check_fitted()
        lat = self._state.lateral
        return None if lat is None else lat.to_scipy()

    @property
    def trace_(self) -> np.ndarray:
        """The current trace ``o``, shape (N,)."""
        self._check_fitted()
        return self._state.trace
