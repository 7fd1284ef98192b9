"""Measures of a trained map, and training callbacks that record them.

Every measure runs over the inputs in chunks (``chunk`` rows at a time, 256 by default), so
memory stays at ``chunk x N`` numbers whatever the number of inputs; no all-pairs
``(n, N)`` product of the whole data set is ever formed.

Best-matching unit (BMU)
------------------------
Two definitions are offered wherever a measure needs "the unit that answers an input":

``bmu="euclidean"``
    The usual SOM definition, the default of :func:`quantization_error` and
    :func:`topographic_error`. The BMU of ``x`` is the neuron whose weight row is nearest
    in Euclidean distance, ``argmin_n ||x - W_n||``; the second BMU is the nearest among the others. Ties go to
    the lower neuron index. This is what Kohonen's quantization and topographic errors
    mean, so the numbers compare with SOM literature.
``bmu="winner"``
    The map's own competition: the BMU is the first winner of ``model.winners(x)`` (the
    largest competition value ``c``, which for a lateral competition includes the
    neighbours' drive), the second BMU the second winner (needs ``k >= 2``). With a
    lateral competition the first two winners tend to be neighbours by construction, so
    the topographic error measured this way is optimistic; the Euclidean one is the
    honest test of the map's order.

Grid neighbours are the 8-neighbourhood (Chebyshev distance 1, no wrap-around) on the
``(rows, cols)`` grid, neuron ``n`` at row ``n // cols``, column ``n % cols``.

Callbacks
---------
``model.fit(X, callback=cb, callback_every=cb.every)`` calls ``cb(model, epoch, step)``
every ``cb.every`` steps; between calls training runs natively, uninterrupted. The
callbacks here (:class:`History`, :class:`Snapshots`, :class:`Checkpoints`) each act when
the model's step count has passed their own period, so several can share one call
through :class:`CallbackList`, whose ``every`` is the gcd of theirs.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:  # annotations only: importing the metrics imports neither the model nor matplotlib
    from matplotlib.figure import Figure
    from sklearn.base import BaseEstimator

    from .sparsedream.model import SparseDream

__all__ = [
    "DEFAULT_CHUNK", "Usage", "reconstruction_error", "winner_usage", "dead_units", "usage_entropy",
    "best_matching_units", "quantization_error", "topographic_error", "accuracy", "evaluate",
    "History", "Snapshots", "Checkpoints", "CallbackList",
]

#: Inputs processed at a time by every measure.
DEFAULT_CHUNK = 256

_BMUS = ("euclidean", "winner")


# ----------------------------------------------------------------------------- helpers
def _check_chunk(chunk) -> int:
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be an integer >= 1, got {chunk!r}")
    return int(chunk)


def _is_model(obj) -> bool:
    return hasattr(type(obj), "weights_") and hasattr(obj, "winners")


def _check_fitted_model(model):
    if not _is_model(model):
        raise TypeError(f"expected a fitted SparseDream model, got {type(model).__name__}")
    _ = model.weights_  # an unfitted model raises AttributeError("... is not fitted yet ...")


def _data(X, n_inputs: int) -> np.ndarray:
    """X as a 2-D float array of width n_inputs (not copied when already fine)."""
    A = np.asarray(X)
    if A.ndim == 1:
        A = A[None, :]
    if A.ndim != 2 or A.shape[1] != n_inputs:
        raise ValueError(f"X must have shape (n_samples, {n_inputs}), got {np.shape(X)}")
    if A.shape[0] == 0:
        raise ValueError("X has no samples")
    if A.dtype.kind not in "biuf":
        raise TypeError(f"X must hold real numbers, got dtype {A.dtype}")
    return A


def _weights_grid(model_or_W, grid):
    """(W as float64, grid) from a fitted model or from an (N, D) array and a grid."""
    if _is_model(model_or_W):
        _check_fitted_model(model_or_W)
        W = model_or_W.weights_
        g = tuple(model_or_W.config_.grid) if grid is None else tuple(grid)
    else:
        W = np.asarray(model_or_W)
        if W.ndim != 2:
            raise ValueError(f"W must have shape (N, D), got {W.shape}")
        g = (1, W.shape[0]) if grid is None else tuple(grid)
    if len(g) != 2 or g[0] * g[1] != W.shape[0]:
        raise ValueError(f"grid {g} does not hold the N={W.shape[0]} rows of W")
    return np.asarray(W, dtype=np.float64), (int(g[0]), int(g[1]))


def _winners_values(model, Xc):
    """(winners (b, k) int64, activity (b, k)) of one chunk: the inference behind
    ``model.winners``/``model.transform``/``model.reconstruct``, run once for all three."""
    return model.infer(Xc)


def _chunks(n, chunk):
    for s in range(0, n, chunk):
        yield s, min(n, s + chunk)


# ----------------------------------------------------------------------- reconstruction
def reconstruction_error(model: SparseDream, X: ArrayLike, chunk: int = DEFAULT_CHUNK) -> float:
    """Mean squared reconstruction error per input value, without learning.

    ``mean_i mean_d (x_id - r_id)^2`` with ``r = W^T a`` the reconstruction from the
    winners' activity (``model.reconstruct``; no trace: every input on its own).

    Parameters
    ----------
    model : fitted SparseDream
    X : array-like of shape (n_samples, n_inputs)
    chunk : int
        Inputs per inference call.

    Returns
    -------
    float
    """
    _check_fitted_model(model)
    chunk = _check_chunk(chunk)
    X = _data(X, model.config_.n_inputs)
    total = 0.0
    for s, e in _chunks(X.shape[0], chunk):
        R = model.reconstruct(X[s:e])
        total += float(np.sum((X[s:e].astype(np.float64) - R) ** 2))
    return total / X.size


# -------------------------------------------------------------------------- usage
@dataclass(frozen=True)
class Usage:
    """How often each neuron wins.

    Attributes
    ----------
    counts : ndarray of shape (N,), int64
        Wins of each neuron over the inputs counted.
    grid : (rows, cols)
    n_inputs : int
        Number of inputs.
    winners_counted : int
        Winners counted per input (``k``, or 1 when only the first winner counts).
    """

    counts: np.ndarray
    grid: tuple
    n_inputs: int
    winners_counted: int

    @property
    def frequency(self) -> np.ndarray:
        """``counts / counts.sum()``: the distribution of wins over neurons, shape (N,)."""
        total = self.counts.sum()
        return self.counts / total if total else np.zeros(self.counts.shape)

    @property
    def entropy(self) -> float:
        """Shannon entropy of :attr:`frequency` in nats (0 .. log N)."""
        f = self.frequency
        f = f[f > 0]
        return float(-(f * np.log(f)).sum())

    @property
    def normalized_entropy(self) -> float:
        """:attr:`entropy` / log N, in [0, 1]; 1 when every neuron wins equally often."""
        n = self.counts.size
        return self.entropy / math.log(n) if n > 1 else 1.0

    @property
    def perplexity(self) -> float:
        """``exp(entropy)``: the effective number of neurons in use."""
        return math.exp(self.entropy)

    @property
    def dead(self) -> np.ndarray:
        """Indices of the neurons that never win, int64, ascending."""
        return np.flatnonzero(self.counts == 0)

    @property
    def n_dead(self) -> int:
        """Number of neurons that never win."""
        return int(np.count_nonzero(self.counts == 0))

    @property
    def n_used(self) -> int:
        """Number of neurons that win at least once."""
        return int(self.counts.size - self.n_dead)

    def on_grid(self) -> np.ndarray:
        """:attr:`counts` laid out on the grid, shape (rows, cols)."""
        return self.counts.reshape(self.grid)

    def as_dict(self) -> dict:
        """Summary numbers (JSON-friendly; the counts themselves are left out)."""
        return dict(neurons=int(self.counts.size), neurons_used=self.n_used, dead_neurons=self.n_dead,
                    dead_fraction=self.n_dead / self.counts.size, usage_entropy=self.entropy,
                    usage_normalized_entropy=self.normalized_entropy, usage_perplexity=self.perplexity,
                    max_wins=int(self.counts.max()), winners_counted=self.winners_counted)


def _usage_counts(win, N, first_only):
    w = win[:, 0] if first_only else win.ravel()
    return np.bincount(w, minlength=N).astype(np.int64)


def winner_usage(model: SparseDream, X: ArrayLike, first_only: bool = False, chunk: int = DEFAULT_CHUNK) -> Usage:
    """Histogram of the winners (``model.winners``) over the inputs, with entropy and dead neurons.

    Parameters
    ----------
    model : fitted SparseDream
    X : array-like of shape (n_samples, n_inputs)
    first_only : bool
        Count only the first (strongest) winner of each input instead of all ``k``.
    chunk : int

    Returns
    -------
    Usage
    """
    _check_fitted_model(model)
    chunk = _check_chunk(chunk)
    X = _data(X, model.config_.n_inputs)
    N = model.config_.n_neurons
    counts = np.zeros(N, np.int64)
    for s, e in _chunks(X.shape[0], chunk):
        counts += _usage_counts(model.winners(X[s:e]), N, first_only)
    return Usage(counts, tuple(model.config_.grid), int(X.shape[0]), 1 if first_only else model.config_.k)


def dead_units(model: SparseDream, X: ArrayLike, chunk: int = DEFAULT_CHUNK) -> int:
    """Number of neurons that are never among the ``k`` winners of any input of X.

    ``winner_usage(model, X).n_dead`` as a plain number (a column of a sweep's table).

    Parameters
    ----------
    model : fitted SparseDream
    X : array-like of shape (n_samples, n_inputs)
    chunk : int

    Returns
    -------
    int
    """
    return winner_usage(model, X, chunk=chunk).n_dead


def usage_entropy(model: SparseDream, X: ArrayLike, chunk: int = DEFAULT_CHUNK) -> float:
    """Shannon entropy, in nats, of how the wins over X are spread over the neurons.

    ``winner_usage(model, X).entropy``: 0 when one neuron wins everything, ``log N`` when
    every neuron wins equally often.

    Parameters
    ----------
    model : fitted SparseDream
    X : array-like of shape (n_samples, n_inputs)
    chunk : int

    Returns
    -------
    float
    """
    return winner_usage(model, X, chunk=chunk).entropy


# ------------------------------------------------------------------- SOM-style measures
def _euclid_bmus_chunk(W, w2, Xc):
    """First and second Euclidean BMUs of one chunk, ties to the lower index, and the
    exact distance from each input to its first BMU."""
    X64 = Xc.astype(np.float64, copy=False)
    d2 = w2[None, :] - 2.0 * (X64 @ W.T)  # ||x - w||^2 - ||x||^2: same order over n
    rows = np.arange(d2.shape[0])
    first = np.argmin(d2, axis=1)           # argmin takes the first minimum: lower index
    second = None
    if d2.shape[1] > 1:
        d2[rows, first] = np.inf
        second = np.argmin(d2, axis=1)
    dist = np.sqrt(np.sum((X64 - W[first]) ** 2, axis=1))
    return first, second, dist


def best_matching_units(model_or_W: SparseDream | ArrayLike, X: ArrayLike, n_units: int = 1,
                        grid: tuple[int, int] | None = None, bmu: str = "euclidean",
                        chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """The first (and second) best-matching unit of every input.

    Parameters
    ----------
    model_or_W : fitted SparseDream, or ndarray of shape (N, D)
        An array works only with ``bmu="euclidean"``.
    X : array-like of shape (n_samples, D)
    n_units : {1, 2}
        How many BMUs per input.
    grid : (rows, cols) or None
        Only checked here (the model's grid by default).
    bmu : {"euclidean", "winner"}
        ``"euclidean"``: nearest weight rows (SOM definition); ``"winner"``: the model's
        first winners (see the module docstring).
    chunk : int

    Returns
    -------
    ndarray of shape (n_samples, n_units), int64
    """
    if n_units not in (1, 2):
        raise ValueError(f"n_units must be 1 or 2, got {n_units!r}")
    if bmu not in _BMUS:
        raise ValueError(f"bmu must be one of {_BMUS}, got {bmu!r}")
    chunk = _check_chunk(chunk)
    W, _ = _weights_grid(model_or_W, grid)
    X = _data(X, W.shape[1])
    if bmu == "winner":
        if not _is_model(model_or_W):
            raise TypeError('bmu="winner" needs a fitted model (the winners come from its competition)')
        if n_units > model_or_W.config_.k:
            raise ValueError('bmu="winner" with n_units=2 needs k >= 2 winners, '
                             f'the model has k={model_or_W.config_.k}')
        return np.concatenate([model_or_W.winners(X[s:e])[:, :n_units] for s, e in _chunks(X.shape[0], chunk)])
    if n_units == 2 and W.shape[0] < 2:
        raise ValueError("a second best-matching unit needs at least 2 neurons")
    w2 = np.einsum("nd,nd->n", W, W)
    out = np.empty((X.shape[0], n_units), np.int64)
    for s, e in _chunks(X.shape[0], chunk):
        first, second, _ = _euclid_bmus_chunk(W, w2, X[s:e])
        out[s:e, 0] = first
        if n_units == 2:
            out[s:e, 1] = second
    return out


def quantization_error(model_or_W: SparseDream | ArrayLike, X: ArrayLike, grid: tuple[int, int] | None = None,
                       bmu: str = "euclidean", chunk: int = DEFAULT_CHUNK) -> float:
    """Mean Euclidean distance from each input to its best-matching unit's weight row.

    ``QE = mean_i ||x_i - W_{b(i)}||`` with ``b(i)`` the BMU (see the module docstring:
    ``"euclidean"`` nearest row, the SOM definition and the default; ``"winner"`` the
    model's first winner).

    Returns
    -------
    float
    """
    if bmu not in _BMUS:
        raise ValueError(f"bmu must be one of {_BMUS}, got {bmu!r}")
    chunk = _check_chunk(chunk)
    W, _ = _weights_grid(model_or_W, grid)
    X = _data(X, W.shape[1])
    total = 0.0
    if bmu == "euclidean":
        w2 = np.einsum("nd,nd->n", W, W)
    for s, e in _chunks(X.shape[0], chunk):
        if bmu == "euclidean":
            dist = _euclid_bmus_chunk(W, w2, X[s:e])[2]
        else:
            b = best_matching_units(model_or_W, X[s:e], 1, grid, "winner", chunk)[:, 0]
            dist = np.sqrt(np.sum((X[s:e].astype(np.float64) - W[b]) ** 2, axis=1))
        total += float(dist.sum())
    return total / X.shape[0]


def _not_neighbours(a, b, cols):
    """True where neurons a and b are not 8-neighbours (Chebyshev distance > 1) on the grid."""
    return np.maximum(np.abs(a // cols - b // cols), np.abs(a % cols - b % cols)) > 1


def topographic_error(model_or_W: SparseDream | ArrayLike, X: ArrayLike, grid: tuple[int, int] | None = None,
                      bmu: str = "euclidean", chunk: int = DEFAULT_CHUNK) -> float:
    """Fraction of inputs whose first and second best-matching units are not grid neighbours.

    Neighbours: the 8-neighbourhood (``max(|dy|, |dx|) == 1``, no wrap-around). BMUs as in
    the module docstring (``"euclidean"`` by default, the SOM definition).

    Parameters
    ----------
    model_or_W : fitted SparseDream, or ndarray (N, D) with ``grid``
    X : array-like of shape (n_samples, D)
    grid : (rows, cols) or None (the model's grid)
    bmu : {"euclidean", "winner"}
    chunk : int

    Returns
    -------
    float in [0, 1]
    """
    if bmu not in _BMUS:
        raise ValueError(f"bmu must be one of {_BMUS}, got {bmu!r}")
    W, g = _weights_grid(model_or_W, grid)
    b = best_matching_units(model_or_W, X, 2, g, bmu, chunk)
    return float(np.mean(_not_neighbours(b[:, 0], b[:, 1], g[1])))


# ----------------------------------------------------------------------- classifiers
def accuracy(model: BaseEstimator, X: ArrayLike, y: ArrayLike) -> float:
    """Fraction of the inputs whose predicted class is their label: ``mean(predict(X) == y)``.

    Meant for held-out inputs (a sweep measures it on the part of the data it held out).

    Parameters
    ----------
    model : fitted classifier (``predict``), e.g. DreamComp
    X : array-like of shape (n_samples, n_inputs)
    y : array-like of shape (n_samples,)
        The true labels.

    Returns
    -------
    float in [0, 1]
    """
    if not callable(getattr(model, "predict", None)):
        raise TypeError(f"accuracy needs a classifier with predict(X), got {type(model).__name__}")
    y = np.asarray(y)
    pred = np.asarray(model.predict(X))
    if y.ndim != 1 or y.shape[0] != pred.shape[0]:
        raise ValueError(f"y must have shape ({pred.shape[0]},), got {y.shape}")
    if y.shape[0] == 0:
        raise ValueError("X has no samples")
    return float(np.mean(pred == y))


# ------------------------------------------------------------------------- all at once
def evaluate(model: SparseDream, X: ArrayLike, chunk: int = DEFAULT_CHUNK, som: bool = True) -> dict:
    """Every measure in one pass over X (one inference and one distance product per chunk).

    Parameters
    ----------
    model : fitted SparseDream
    X : array-like of shape (n_samples, n_inputs)
    chunk : int
    som : bool
        Also the Euclidean quantization and topographic errors (one ``chunk x N`` distance
        product per chunk, about the cost of the inference itself).

    Returns
    -------
    dict (JSON-friendly)
        ``n_inputs``, ``reconstruction_mse``; the :meth:`Usage.as_dict` numbers of all ``k``
        winners; ``first_winner_neurons_used``; with ``som``: ``quantization_error``,
        ``topographic_error`` (Euclidean BMUs), and ``topographic_error_winners`` (first two
        winners of the competition) when ``k >= 2``.
    """
    _check_fitted_model(model)
    chunk = _check_chunk(chunk)
    cfg = model.config_
    X = _data(X, cfg.n_inputs)
    Wm = model.weights_
    W = np.asarray(Wm, dtype=np.float64)
    w2 = np.einsum("nd,nd->n", W, W) if som else None
    N, cols = cfg.n_neurons, cfg.grid[1]
    counts = np.zeros(N, np.int64)
    counts_first = np.zeros(N, np.int64)
    sq = qe = 0.0
    te = te_win = 0
    for s, e in _chunks(X.shape[0], chunk):
        X64 = X[s:e].astype(np.float64)
        win, val = _winners_values(model, np.ascontiguousarray(X[s:e], dtype=Wm.dtype))
        R = np.einsum("nk,nkd->nd", val, Wm[win])      # model.reconstruct's formula
        sq += float(np.sum((X64 - R) ** 2))
        counts += _usage_counts(win, N, False)
        counts_first += _usage_counts(win, N, True)
        if som:
            first, second, dist = _euclid_bmus_chunk(W, w2, X64)
            qe += float(dist.sum())
            if second is not None:
                te += int(np.count_nonzero(_not_neighbours(first, second, cols)))
            if cfg.k >= 2:
                te_win += int(np.count_nonzero(_not_neighbours(win[:, 0], win[:, 1], cols)))
    n = X.shape[0]
    out = dict(n_inputs=int(n), reconstruction_mse=sq / X.size)
    out.update(Usage(counts, tuple(cfg.grid), int(n), cfg.k).as_dict())
    out["first_winner_neurons_used"] = int(np.count_nonzero(counts_first))
    if som:
        out["quantization_error"] = qe / n
        if N > 1:
            out["topographic_error"] = te / n
        if cfg.k >= 2:
            out["topographic_error_winners"] = te_win / n
    return out


# --------------------------------------------------------------------------- callbacks
#: a callback's own class (``start`` returns self)
_Callback = TypeVar("_Callback", bound="_Periodic")


class _Periodic:
    """Base of the callbacks: acts when the model's step count reaches the next multiple
    of ``every`` (or has passed it since the last action); at every call when ``every``
    is None. Counting starts at 0, or at the step count of the model given to ``start``.
    """

    def __init__(self, every: int | None = None):
        if every is not None and (isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1):
            raise ValueError(f"every must be an integer >= 1 or None, got {every!r}")
        self.every = None if every is None else int(every)
        self._next = None

    def start(self: _Callback, model: SparseDream | None = None) -> _Callback:
        """Count the periods from ``model``'s current step count (from 0 without a model,
        or when the model is not fitted yet); returns self."""
        n0 = int(getattr(model, "n_steps_", 0) or 0) if model is not None else 0
        self._next = None if self.every is None else (n0 // self.every + 1) * self.every
        return self

    def _due(self, model) -> bool:
        n = int(getattr(model, "n_steps_", 0))
        if self.every is None:
            return True
        nxt = self.every if self._next is None else self._next
        if n >= nxt:
            self._next = (n // self.every + 1) * self.every
            return True
        return False

    def __call__(self, model, epoch, step):
        if self._due(model):
            self.on_call(model, epoch, step)

    def on_call(self, model: SparseDream, epoch: int, step: int) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class History(_Periodic):
    """Record measures of the model on held-out inputs while it trains.

    Use ``model.fit(X, callback=h, callback_every=h.every)``; afterwards ``h.records``
    (also ``list(h)``) is a list of dicts, one per call, ready for
    :func:`sparsedream_fast.plot.training_curves` and JSON.

    Each record holds ``n_steps`` (steps since the weights were initialised), ``epoch``,
    ``step`` (within the epoch), ``seconds`` (training time since the history started,
    without the time spent evaluating), ``steps_per_second`` (of the last interval),
    ``reconstruction_mse``, ``neurons_used``, ``dead_neurons``, ``usage_entropy``,
    ``usage_perplexity``, and with ``som=True`` ``quantization_error`` and
    ``topographic_error``.

    Parameters
    ----------
    X : array-like of shape (n_eval, n_inputs)
        Inputs to evaluate on (keep it small: a few thousand at most; every call costs one
        inference pass over them).
    every : int or None
        Record every ``every`` training steps (None: at every call of the callback).
    som : bool
        Also the Euclidean quantization and topographic errors.
    chunk : int
    verbose : bool
        Print one line per record.

    Notes
    -----
    The training clock starts when the History is made, or at :meth:`start`; call
    ``start()`` right before ``fit`` when the History was made earlier, and
    ``start(model)`` when the model continues from a checkpoint (``warm_start``) so that
    periods and speeds count from its current step.
    """

    def __init__(self, X: ArrayLike, every: int | None = None, som: bool = False, chunk: int = DEFAULT_CHUNK,
                 verbose: bool = False):
        super().__init__(every)
        self.X = np.asarray(X)
        self.som = bool(som)
        self.chunk = _check_chunk(chunk)
        self.verbose = bool(verbose)
        self.records = []
        self.start()

    def start(self: _Callback, model: SparseDream | None = None) -> _Callback:
        """(Re)start the training clock and the period count (from ``model``'s step count
        when given, for a model that continues training); returns self."""
        super().start(model)
        self._t_last = time.perf_counter()
        self._seconds = 0.0
        self._steps_last = int(getattr(model, "n_steps_", 0) or 0) if model is not None else 0
        return self

    def on_call(self, model: SparseDream, epoch: int, step: int) -> None:
        t0 = time.perf_counter()
        dt = t0 - self._t_last
        self._seconds += dt
        n = int(model.n_steps_)
        rec = dict(n_steps=n, epoch=int(epoch), step=int(step), seconds=round(self._seconds, 4))
        done = n - self._steps_last if n >= self._steps_last else n  # a fresh fit restarts the count
        if dt > 0:
            rec["steps_per_second"] = round(done / dt, 1)
        m = evaluate(model, self.X, self.chunk, som=self.som)
        rec.update(reconstruction_mse=m["reconstruction_mse"], neurons_used=m["neurons_used"],
                   dead_neurons=m["dead_neurons"], usage_entropy=m["usage_entropy"],
                   usage_perplexity=m["usage_perplexity"])
        if self.som:
            rec["quantization_error"] = m["quantization_error"]
            if "topographic_error" in m:
                rec["topographic_error"] = m["topographic_error"]
        self.records.append(rec)
        if self.verbose:
            print(f"step {n:>10,}  epoch {epoch}  recon MSE {rec['reconstruction_mse']:.5f}  "
                  f"used {rec['neurons_used']}/{model.config_.n_neurons}", flush=True)
        self._steps_last = n
        self._t_last = time.perf_counter()

    def __len__(self):
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __getitem__(self, i):
        return self.records[i]

    def column(self, key: str) -> np.ndarray:
        """One measure over the records as an array (NaN where a record lacks it)."""
        return np.array([r.get(key, np.nan) for r in self.records], dtype=float)

    def to_json(self, path: str | os.PathLike) -> str:
        """Write the records to ``path`` as JSON; returns the path."""
        with open(path, "w") as f:
            json.dump(self.records, f, indent=1)
        return os.fspath(path)


class Snapshots(_Periodic):
    """Save a picture of the weights every ``every`` steps: ``{prefix}_{n_steps:09d}.png``.

    Parameters
    ----------
    out_dir : path
        Folder (made when missing).
    every : int or None
    prefix : str
    picture : callable(model) -> matplotlib Figure, or None
        What to draw; default the weight tapestry (:func:`sparsedream_fast.plot.weight_tapestry`).
    dpi : int or None
        None: the figure's own.

    Attributes
    ----------
    paths : list of str
        The files written, in order.
    """

    def __init__(self, out_dir: str | os.PathLike, every: int | None = None, prefix: str = "weights",
                 picture: Callable[[SparseDream], Figure] | None = None, dpi: int | None = None):
        super().__init__(every)
        self.out_dir = os.fspath(out_dir)
        self.prefix = prefix
        self.picture = picture
        self.dpi = dpi
        self.paths = []

    def on_call(self, model: SparseDream, epoch: int, step: int) -> None:
        from . import plot
        os.makedirs(self.out_dir, exist_ok=True)
        if self.picture is None:
            fig = plot.weight_tapestry(model, title=f"weights after {model.n_steps_:,} steps")
        else:
            fig = self.picture(model)
        path = os.path.join(self.out_dir, f"{self.prefix}_{int(model.n_steps_):09d}.png")
        self.paths.append(plot.save_figure(fig, path, dpi=self.dpi))


class Checkpoints(_Periodic):
    """Save the model every ``every`` steps: ``{prefix}_{n_steps:09d}.npz`` (``model.save``).

    Attributes
    ----------
    paths : list of str
    """

    def __init__(self, out_dir: str | os.PathLike, every: int | None = None, prefix: str = "model"):
        super().__init__(every)
        self.out_dir = os.fspath(out_dir)
        self.prefix = prefix
        self.paths = []

    def on_call(self, model: SparseDream, epoch: int, step: int) -> None:
        os.makedirs(self.out_dir, exist_ok=True)
        self.paths.append(model.save(os.path.join(self.out_dir, f"{self.prefix}_{int(model.n_steps_):09d}.npz")))


class CallbackList:
    """Several callbacks behind one: ``model.fit(X, callback=cbs, callback_every=cbs.every)``.

    ``every`` is the gcd of the members' periods (None when none has one); each member
    still acts only on its own period.
    """

    def __init__(self, *callbacks):
        if len(callbacks) == 1 and isinstance(callbacks[0], (list, tuple)):
            callbacks = tuple(callbacks[0])
        for cb in callbacks:
            if not callable(cb):
                raise TypeError(f"callbacks must be callable(model, epoch, step), got {cb!r}")
        self.callbacks = list(callbacks)
        periods = [cb.every for cb in callbacks if getattr(cb, "every", None)]
        self.every = math.gcd(*periods) if periods else None
        if periods and self.every * 4 < min(periods):
            import warnings
            warnings.warn(f"the callbacks' periods {periods} have gcd {self.every}: training stops every "
                          f"{self.every} steps to ask them; choose periods that divide each other",
                          RuntimeWarning, stacklevel=2)

    def __call__(self, model, epoch, step):
        for cb in self.callbacks:
            cb(model, epoch, step)
