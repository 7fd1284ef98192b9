"""Parameter sweeps on a Dask cluster: every combination of a grid and a seed, one row each.

:func:`run` trains a clone of an estimator for every combination of a parameter grid
(scikit-learn's ``ParameterGrid``) and seed on the workers of a ``dask.distributed``
cluster (:func:`local_cluster`'s processes on this machine by default, or any scheduler by
address), measures each fitted model with functions of :mod:`sparsedream_fast.metrics`,
and returns a pandas DataFrame with one row per run. Needs the ``distributed`` extra
(``pip install "sparsedream-fast[distributed]"``: dask, distributed, pandas); importing
this module does not.

A run
-----
Run ``(params, seed)`` computes, on some worker::

    model = sklearn.base.clone(estimator).set_params(**params, seed=seed)
    model.fit(X_train, [y_train,] **fit_params)
    row = {name: f(model, X_eval[, y_eval]) for name, f in metrics}

which is exactly what the same lines compute in one process: on the cpp backend (and every
other CPU backend) a row's measures are bit for bit those of a loop in the calling process,
whichever worker ran it and however many threads it had (the kernels' results do not depend
on their thread count). Only the timing columns differ from one execution to the next.

``X_train``/``X_eval``: ``X`` itself when there are no labels (the measures of a map are
taken on the data it learned); with labels ``y`` the data are split once,
``sklearn.model_selection.train_test_split(X, y, test_size=test_fraction,
random_state=split_seed)``, and the measures (held-out accuracy) see the held-out part;
``X_test``/``y_test`` give that part explicitly.

The table
---------
One row per run, in grid order then seed order: a column per swept parameter, ``seed``, a
column per metric named after its function (``reconstruction_error``, ``dead_units``,
``accuracy``, ...; a callable's ``__name__``) holding exactly its value, then
``fit_seconds`` (wall time of ``fit``), ``eval_seconds`` (the measures),
``steps_per_second`` (learning steps per second of ``fit``: the model's ``n_steps_`` where
it counts them, else epochs x training samples), ``threads`` (threads the run was given),
``worker`` (its address) and ``error`` (missing for a run that succeeded, else the
exception it raised; its measures are then NaN).

In a script, call :func:`run` under ``if __name__ == "__main__":``: the local cluster's
worker processes are started by ``multiprocessing``'s spawn, which imports the script again.

Data, threads, store
--------------------
- The data travel to each worker once: arrays by ``client.scatter(..., broadcast=True)``, a
  ``.npy`` path (``X="frames.npy"``) memory-mapped once by every worker process (the path
  must be readable on every worker). Tasks carry only their parameters.
- Threads: a run gets ``threads_per_run`` threads, by default the CPUs of its worker's
  machine divided by the task slots of all workers there (a LocalCluster of one
  single-threaded process per core: one thread per run). They are applied with
  ``threadpoolctl`` to the BLAS libraries and to OpenMP, whose thread count is what the cpp
  backend's kernels take (:func:`limit_threads`).
- ``store`` (a folder) receives one small JSON file per run, written atomically by the
  client as soon as the run finishes; a sweep that is stopped (Ctrl-C, a dying client)
  is resumed by calling :func:`run` again with the same ``store``: runs whose file is there
  are not run again, and the table is the same. A run's file name is a hash of everything
  that determines its result (the estimator's class and parameters, the run's parameters
  and seed, ``fit_params``, the data, the metrics' names, the library version).

Faults
------
- A run that raises records its error in its row (and in ``store``); the sweep goes on.
- A worker process that dies: Dask runs its tasks again on another worker (the scheduler's
  ``allowed-failures``), and each run gives exactly one row. A run that still cannot finish
  (``KilledWorker``) gets its error in the table but not in ``store``, so a rerun tries it
  again.
- Bad configuration raises :class:`SweepConfigError` before any run starts: an estimator
  without ``get_params``/``set_params``/``fit``, an unknown parameter, an unknown metric or
  fit argument, a missing data file, a scheduler that cannot be reached, and a value the
  estimator refuses: every parameter combination is first fitted for one epoch on a small
  subset of the data, on the cluster, and measured (``check=True``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import inspect
import json
import math
import numbers
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:  # annotations only: importing this module needs neither pandas nor distributed
    import pandas as pd
    from distributed import Client, LocalCluster
    from sklearn.base import BaseEstimator

__all__ = ["run", "plan", "Run", "SweepConfigError", "default_metrics", "resolve_metrics", "limit_threads",
           "local_cluster", "execute", "MAP_METRICS", "CLASSIFIER_METRICS", "RESULT_COLUMNS"]

#: Metrics of ``metrics="auto"`` for maps (SparseDream).
MAP_METRICS = ("reconstruction_error", "dead_units", "usage_entropy", "quantization_error", "topographic_error")
#: Metrics of ``metrics="auto"`` for classifiers (anything with ``predict``).
CLASSIFIER_METRICS = ("accuracy",)
#: Columns every table has after the parameters, ``seed`` and the metrics.
RESULT_COLUMNS = ("fit_seconds", "eval_seconds", "steps_per_second", "threads", "worker", "error")

#: Rows of the small subset each parameter combination is first fitted on (``check=True``).
CHECK_ROWS = 64


class SweepConfigError(ValueError):
    """The sweep's configuration is wrong; raised before any run starts."""


# ------------------------------------------------------------------------ dependencies
def _require_extra():
    try:
        import distributed  # noqa: F401
        import pandas  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise ImportError("sparsedream_fast.sweep needs the 'distributed' extra: "
                          f"pip install \"sparsedream-fast[distributed]\" ({exc})") from None


# ------------------------------------------------------------------------------ threads
@contextlib.contextmanager
def limit_threads(n: int | None) -> Iterator[None]:
    """Hold the BLAS libraries and OpenMP to ``n`` threads inside the block (None: no change).

    OpenMP's count (``omp_set_num_threads``, per calling thread) is what the cpp backend's
    kernels take when they choose their threads; BLAS covers numpy, scipy and the batch
    rules' products. Done with ``threadpoolctl``; the settings are restored afterwards.

    Parameters
    ----------
    n : int or None
    """
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=int(n)):
        yield


def _usable_cpus() -> int:
    import dask.system
    return int(dask.system.CPU_COUNT)


def _threads_plan(client, requested):
    """Threads per run: ``{"*": n}`` when requested, else ``{host: cpus // task slots there}``."""
    if requested is not None:
        return {"*": int(requested)}
    from distributed.comm import get_address_host
    workers = client.scheduler_info(n_workers=-1)["workers"]
    cpus = client.run(_usable_cpus)
    slots, host_cpus = {}, {}
    for addr, info in workers.items():
        host = info.get("host") or get_address_host(addr)
        slots[host] = slots.get(host, 0) + int(info.get("nthreads", 1))
        host_cpus[host] = max(host_cpus.get(host, 1), int(cpus.get(addr, 1)))
    return {h: max(1, host_cpus[h] // max(1, slots[h])) for h in slots}


def _threads_here(plan):
    """This task's threads, from the plan (a worker that joined later: its CPUs / its slots)."""
    if plan is None:
        return None
    if "*" in plan:
        return plan["*"]
    try:
        from distributed import get_worker
        from distributed.comm import get_address_host
        w = get_worker()
    except (ImportError, ValueError):
        return None
    host = get_address_host(w.address)
    if host in plan:
        return plan[host]
    return max(1, _usable_cpus() // max(1, int(w.state.nthreads)))


def _worker_address():
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return None


# -------------------------------------------------------------------------------- data
@dataclasses.dataclass(frozen=True)
class _NpyFile:
    """A ``.npy`` file every worker memory-maps (once per process); ``part`` takes the
    training or held-out rows of a split."""

    path: str
    size: int
    mtime_ns: int
    part: str | None = None        # None, "train", "test"
    test_fraction: float = 0.0
    split_seed: int = 0


@functools.lru_cache(maxsize=8)
def _open_npy(ref: _NpyFile):
    A = np.load(ref.path, mmap_mode="r")
    if ref.part is None:
        return A
    tr, te = _split_indices(A.shape[0], ref.test_fraction, ref.split_seed)
    return np.ascontiguousarray(A[tr if ref.part == "train" else te])


def _materialize(value):
    return _open_npy(value) if isinstance(value, _NpyFile) else value


def _split_indices(n, test_fraction, seed):
    from sklearn.model_selection import train_test_split
    return train_test_split(np.arange(n), test_size=test_fraction, random_state=seed)


def _npy_ref(path):
    path = os.fspath(path)
    if not path.endswith(".npy"):
        raise SweepConfigError(f"a data path must be a .npy file (memory-mapped on the workers), got {path!r}; "
                               "load other files into an array first")
    try:
        st = os.stat(path)
        A = np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise SweepConfigError(f"data file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise SweepConfigError(f"{path}: not a readable .npy file ({exc})") from None
    return _NpyFile(os.path.abspath(path), int(st.st_size), int(st.st_mtime_ns)), A


def _array(value, name):
    try:
        A = np.asarray(value)
    except Exception as exc:
        raise SweepConfigError(f"{name} is not an array: {exc}") from None
    if A.ndim < 1 or A.shape[0] == 0:
        raise SweepConfigError(f"{name} must hold at least one sample, got shape {A.shape}")
    if A.dtype == object:
        raise SweepConfigError(f"{name} must be an array of numbers, got dtype object")
    return A


def _fingerprint(value) -> str:
    if isinstance(value, _NpyFile):
        return f"npy:{value.path}:{value.size}:{value.mtime_ns}"
    A = np.ascontiguousarray(value)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{A.dtype.str}{A.shape}".encode())
    h.update(memoryview(A).cast("B"))
    return h.hexdigest()


def _prepare_data(X, y, X_test, y_test, test_fraction, split_seed):
    """The data a run sees: dict role -> array or _NpyFile (roles X, y, X_eval, y_eval), the
    number of training samples, and the data's fingerprint."""
    if isinstance(X, (str, os.PathLike)):
        ref, A = _npy_ref(X)
        n = A.shape[0]
    else:
        ref, A = None, _array(X, "X")
        n = A.shape[0]
    ya = None if y is None else _array(y, "y")
    if ya is not None and ya.shape[0] != n:
        raise SweepConfigError(f"X has {n} samples but y has {ya.shape[0]}")
    if X_test is not None:
        if ref is not None:
            raise SweepConfigError("X_test needs X as an array, not a path")
        Xt = _array(X_test, "X_test")
        yt = None if y_test is None else _array(y_test, "y_test")
        if yt is not None and yt.shape[0] != Xt.shape[0]:
            raise SweepConfigError(f"X_test has {Xt.shape[0]} samples but y_test has {yt.shape[0]}")
        if (yt is None) != (ya is None):
            raise SweepConfigError("give labels for both X and X_test, or for neither")
        data = dict(X=A, y=ya, X_eval=Xt, y_eval=yt)
        split = "given"
    elif ya is not None and test_fraction:
        f = float(test_fraction)
        if not 0 < f < 1:
            raise SweepConfigError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
        tr, te = _split_indices(n, f, split_seed)
        if ref is not None:
            data = dict(X=dataclasses.replace(ref, part="train", test_fraction=f, split_seed=int(split_seed)),
                        X_eval=dataclasses.replace(ref, part="test", test_fraction=f, split_seed=int(split_seed)))
        else:
            data = dict(X=A[tr], X_eval=A[te])
        data.update(y=ya[tr], y_eval=ya[te])
        n = len(tr)
        split = f"split:{f}:{int(split_seed)}"
    else:
        data = dict(X=ref if ref is not None else A, y=ya, X_eval=None, y_eval=None)
        split = "none"
    token = hashlib.blake2b(digest_size=16)
    for role in ("X", "y", "X_eval", "y_eval"):
        v = data[role]
        token.update(f"{role}={'-' if v is None else _fingerprint(v)};".encode())
    token.update(split.encode())
    return data, int(n), token.hexdigest()


# ------------------------------------------------------------------------------ metrics
def default_metrics(estimator: BaseEstimator) -> tuple:
    """The metrics of ``metrics="auto"``: :data:`MAP_METRICS` for a map (an estimator with
    ``winners`` and ``weights_``), :data:`CLASSIFIER_METRICS` for a classifier (``predict``),
    none otherwise (the timing columns are always there)."""
    if hasattr(type(estimator), "weights_") and callable(getattr(estimator, "winners", None)):
        return MAP_METRICS
    if callable(getattr(estimator, "predict", None)):
        return CLASSIFIER_METRICS
    return ()


def _wants_y(fn) -> bool:
    try:
        return "y" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def resolve_metrics(metrics: str | Callable[..., float] | Iterable[str | Callable[..., float]] | None,
                    estimator: BaseEstimator | None = None) -> list:
    """``[(column name, function), ...]`` from names of :mod:`sparsedream_fast.metrics`
    functions, callables ``f(model, X[, y])`` (named by ``__name__``), or ``"auto"``.

    Raises SweepConfigError for an unknown name or a name given twice.
    """
    from . import metrics as M
    if metrics is None or (isinstance(metrics, str) and metrics == "auto"):
        metrics = default_metrics(estimator) if estimator is not None else ()
    elif isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    out, seen = [], set()
    known = [n for n in M.__all__ if inspect.isfunction(getattr(M, n, None))]
    for m in metrics:
        if isinstance(m, str):
            if m not in known:
                raise SweepConfigError(f"unknown metric {m!r}; the functions of sparsedream_fast.metrics are "
                                       f"{', '.join(known)} (or pass a callable f(model, X[, y]))")
            name, fn = m, getattr(M, m)
        elif callable(m):
            name, fn = getattr(m, "__name__", None), m
            if not name or name == "<lambda>":
                raise SweepConfigError(f"a metric callable needs a name (def, not lambda): {m!r}")
        else:
            raise SweepConfigError(f"a metric is a name or a callable, got {m!r}")
        if name in seen:
            raise SweepConfigError(f"metric {name!r} given twice")
        seen.add(name)
        out.append((name, fn))
    return out


def _number(value, name):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray) and value.shape == ():
        return _number(value.item(), name)
    raise TypeError(f"metric {name} returned {type(value).__name__}, not a number")


# ------------------------------------------------------------------------------ planning
@dataclasses.dataclass
class Run:
    """One run of a sweep.

    Attributes
    ----------
    index : int
        Position in the table (grid order, then seed order).
    params : dict
        The swept parameters' values.
    seed : int
    key : str
        Hash of everything that determines the run's result (its file name in ``store``).
    """

    index: int
    params: dict
    seed: int
    key: str


def _canon(v):
    """A JSON-able, deterministic stand-in for a parameter value (arrays by their hash)."""
    import scipy.sparse as sp
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, np.ndarray):
        return {"ndarray": _fingerprint(v)}
    if sp.issparse(v):
        c = sp.csr_array(v)
        return {"sparse": [list(c.shape), _fingerprint(c.data), _fingerprint(c.indices), _fingerprint(c.indptr)]}
    if isinstance(v, (list, tuple)):
        return {type(v).__name__: [_canon(x) for x in v]}
    if isinstance(v, dict):
        return {"dict": sorted([str(k), _canon(x)] for k, x in v.items())}
    if callable(getattr(v, "get_params", None)):
        return {f"{type(v).__module__}.{type(v).__qualname__}": _canon(v.get_params(deep=False))}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f"{type(v).__module__}.{type(v).__qualname__}":
                [[f.name, _canon(getattr(v, f.name))] for f in dataclasses.fields(v)]}
    if callable(v):
        return f"{getattr(v, '__module__', '')}.{getattr(v, '__qualname__', repr(v))}"
    return repr(v)


def _hash(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _seed_param(estimator):
    names = estimator.get_params(deep=False)
    for n in ("seed", "random_state"):
        if n in names:
            return n
    return None


def _check_estimator(estimator):
    for attr in ("get_params", "set_params", "fit"):
        if not callable(getattr(estimator, attr, None)):
            raise SweepConfigError(f"the estimator must have get_params, set_params and fit (scikit-learn's "
                                   f"conventions); {type(estimator).__name__} has no {attr}")


def _combinations(grid) -> list:
    from sklearn.model_selection import ParameterGrid
    if grid is None:
        grid = {}
    try:
        return [dict(c) for c in ParameterGrid(grid)]
    except (TypeError, ValueError) as exc:
        raise SweepConfigError(f"bad grid: {exc}") from None


def _seeds(seeds) -> list:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seeds = [seeds]
    try:
        seeds = list(seeds)
    except TypeError:
        raise SweepConfigError(f"seeds must be a list of integers, got {seeds!r}") from None
    if not seeds:
        raise SweepConfigError("seeds is empty")
    for s in seeds:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral):
            raise SweepConfigError(f"seeds must be integers, got {s!r}")
    if len(set(int(s) for s in seeds)) != len(seeds):
        raise SweepConfigError(f"seeds repeat a value: {seeds}")
    return [int(s) for s in seeds]


def plan(estimator: BaseEstimator, grid: dict | list[dict], seeds: Iterable[int] = (0,), fit_params: dict | None = None,
         data_token: str = "", metric_names: Sequence[str] = ()) -> list[Run]:
    """The runs of a sweep, in table order, each with its key; checks every parameter.

    Parameters
    ----------
    estimator : estimator with get_params / set_params / fit
    grid : dict of str -> list, or list of such dicts (scikit-learn's ``ParameterGrid``)
    seeds : iterable of int
    fit_params : dict or None
    data_token : str
        Fingerprint of the data (part of every key).
    metric_names : sequence of str

    Returns
    -------
    list of Run

    Raises
    ------
    SweepConfigError
        For an unknown parameter, a swept seed, a bad grid or bad seeds.
    """
    from sklearn.base import clone
    from . import __version__
    _check_estimator(estimator)
    combos = _combinations(grid)
    seeds = _seeds(seeds)
    sp = _seed_param(estimator)
    if sp is None and len(seeds) > 1:
        raise SweepConfigError(f"{type(estimator).__name__} has no seed (or random_state) parameter to vary")
    base = estimator.get_params(deep=False)
    for c in combos:
        if sp is not None and sp in c:
            raise SweepConfigError(f"{sp!r} is swept by seeds=, not by the grid")
        try:
            clone(estimator).set_params(**c)
        except (ValueError, TypeError) as exc:
            raise SweepConfigError(f"{type(estimator).__name__}: {exc}") from None
    common = dict(estimator=f"{type(estimator).__module__}.{type(estimator).__qualname__}",
                  base=_canon(base), fit=_canon(dict(fit_params or {})), data=data_token,
                  metrics=list(metric_names), version=__version__)
    runs = []
    for c in combos:
        for s in seeds:
            key = _hash(dict(common, params=_canon(c), seed=s))
            runs.append(Run(len(runs), c, s, key))
    return runs


def _check_fit_params(estimator, fit_params, supervised_data):
    fit_params = dict(fit_params or {})
    sig = inspect.signature(estimator.fit)
    params = sig.parameters
    for bad in ("X", "y"):
        if bad in fit_params:
            raise SweepConfigError(f"fit_params must not hold {bad!r}: the data are run()'s arguments")
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(fit_params) - set(params))
        if unknown:
            raise SweepConfigError(f"{type(estimator).__name__}.fit has no argument {', '.join(map(repr, unknown))}; "
                                   f"it takes {', '.join(n for n in params if n not in ('X', 'y'))}")
    y_param = params.get("y")
    if y_param is not None and y_param.default is inspect.Parameter.empty and not supervised_data:
        raise SweepConfigError(f"{type(estimator).__name__}.fit needs labels: pass y")
    return fit_params


# --------------------------------------------------------------------------- one run
def _fit(model, X, y, fit_params):
    if y is None:
        model.fit(X, **fit_params)
    else:
        model.fit(X, y, **fit_params)


def _steps(model, fit_params, n):
    steps = getattr(model, "n_steps_", None)
    if isinstance(steps, numbers.Integral):
        return int(steps)
    epochs = fit_params.get("epochs")
    if epochs is None:
        p = inspect.signature(model.fit).parameters.get("epochs")
        epochs = p.default if p is not None and isinstance(p.default, numbers.Integral) else 1
    return int(epochs) * int(n)


def _measure(model, metrics, Xe, ye):
    row = {}
    for name, fn in metrics:
        if _wants_y(fn):
            if ye is None:
                raise ValueError(f"metric {name} needs labels: pass y (or y_test)")
            row[name] = _number(fn(model, Xe, ye), name)
        else:
            row[name] = _number(fn(model, Xe), name)
    return row


def execute(estimator: BaseEstimator, params: dict, seed_param: str | None, seed: int, data: dict,
            metrics: list[tuple[str, Callable[..., float]]], fit_params: dict,
            threads_plan: dict | None = None) -> dict:
    """One run, where it executes (a worker, or this process): clone, set the parameters and
    the seed, fit, measure. Returns the measured part of its row; never raises for the run's
    own failure (the row's ``error`` holds it, ``traceback`` the traceback).

    Parameters
    ----------
    estimator : the sweep's estimator (not modified)
    params : dict
    seed_param : str or None
        The estimator's seed parameter (``seed`` or ``random_state``).
    seed : int
    data : dict
        Roles ``X``, ``y``, ``X_eval``, ``y_eval``: arrays or memory-mapped files (None for
        ``X_eval``: the measures see ``X``/``y``).
    metrics : list of (name, function)
    fit_params : dict
    threads_plan : dict or None
        Threads per run by host (``{"*": n}``: n everywhere); None leaves the threads alone.

    Returns
    -------
    dict
        The metrics, ``fit_seconds``, ``eval_seconds``, ``steps_per_second``, ``threads``,
        ``worker``, ``error`` and ``traceback``.
    """
    from sklearn.base import clone
    threads = _threads_here(threads_plan)
    row = dict(threads=threads, worker=_worker_address(), error=None, traceback=None)
    try:
        X, y = _materialize(data["X"]), _materialize(data.get("y"))
        Xe, ye = _materialize(data.get("X_eval")), _materialize(data.get("y_eval"))
        if Xe is None:
            Xe, ye = X, y
        model = clone(estimator).set_params(**params, **({seed_param: seed} if seed_param else {}))
        with limit_threads(threads):
            t0 = time.perf_counter()
            _fit(model, X, y, fit_params)
            t1 = time.perf_counter()
            row.update(_measure(model, metrics, Xe, ye))
            t2 = time.perf_counter()
        row.update(fit_seconds=t1 - t0, eval_seconds=t2 - t1,
                   steps_per_second=_steps(model, fit_params, len(X)) / max(t1 - t0, 1e-12))
    except Exception as exc:
        row.update(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    return row


def _subset(A, m):
    """m rows spread evenly over A (sorted data keep all their classes)."""
    if A is None or A.shape[0] <= m:
        return A
    return A[np.linspace(0, A.shape[0] - 1, m).astype(np.int64)]


def _check_run(estimator, params, seed_param, seed, data, metrics, fit_params, rows=CHECK_ROWS):
    """The configuration check of one parameter combination: fit on a small subset of the
    data for one epoch and measure; raises SweepConfigError naming what the estimator refused."""
    from sklearn.base import clone
    try:
        X, y = _materialize(data["X"]), _materialize(data.get("y"))
        Xe, ye = _materialize(data.get("X_eval")), _materialize(data.get("y_eval"))
        if Xe is None:
            Xe, ye = X, y
        model = clone(estimator).set_params(**params, **({seed_param: seed} if seed_param else {}))
        m = rows
        bs = model.get_params(deep=False).get("batch_size")
        if isinstance(bs, numbers.Integral) and not isinstance(bs, bool):
            m = max(m, int(bs))
        fp = dict(fit_params)
        if "epochs" in inspect.signature(model.fit).parameters:
            fp["epochs"] = 1
        m = min(m, X.shape[0])
        if isinstance(fp.get("steps_per_epoch"), numbers.Integral):
            fp["steps_per_epoch"] = min(int(fp["steps_per_epoch"]), m)
        idx = np.linspace(0, X.shape[0] - 1, m).astype(np.int64)
        with limit_threads(1):
            _fit(model, np.asarray(X[idx]), None if y is None else np.asarray(y[idx]), fp)
            me = min(rows, Xe.shape[0])
            _measure(model, metrics, _subset(Xe, me), _subset(ye, me))
    except Exception as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items()) or "the fixed parameters"
        raise SweepConfigError(f"{type(estimator).__name__} refuses {shown} (checked by a one-epoch fit on "
                               f"{CHECK_ROWS} samples): {type(exc).__name__}: {exc}") from None


# ------------------------------------------------------------------------------- store
def _store_path(store, key):
    return os.path.join(store, f"{key}.json")


def _read_stored(store, key):
    try:
        with open(_store_path(store, key)) as f:
            doc = json.load(f)
        return doc["row"] if doc.get("key") == key else None
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _write_stored(store, run, row, estimator):
    doc = dict(key=run.key, estimator=repr(estimator), params={k: repr(v) for k, v in run.params.items()},
               seed=run.seed, row=row, written=time.strftime("%Y-%m-%dT%H:%M:%S"))
    fd, tmp = tempfile.mkstemp(prefix=f".{run.key}.", suffix=".tmp", dir=store)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, _store_path(store, run.key))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ------------------------------------------------------------------------------ cluster
#: MALLOC_TRIM_THRESHOLD_ as the user's environment had it when this module was imported
#: (before any nanny of this process could set it); local_cluster keeps a value the user chose.
_USER_MALLOC_TRIM = os.environ.get("MALLOC_TRIM_THRESHOLD_")


def local_cluster(n_workers: int | None = None) -> LocalCluster:
    """A ``distributed.LocalCluster`` for sweeps: ``n_workers`` single-threaded worker
    processes on 127.0.0.1 (default: one per usable CPU), without Dask's ``MALLOC_TRIM_THRESHOLD_``.

    Dask's nannies start their workers with ``MALLOC_TRIM_THRESHOLD_=65536`` so that freed
    memory goes back to the operating system at once. Setting it also fixes glibc's mmap
    threshold, so every temporary array above 128 KiB is mapped and faulted in afresh: the
    metrics of a 40 x 40 map measured 18% slower under it (docs/sweeps.md). A sweep's
    workers allocate the same sizes run after run, so this cluster leaves glibc's adaptive
    default in place (a value the user set in the environment before importing this module is
    kept). ``sweep.run(..., client=None)`` uses it; close it (or use it as a context manager)
    when done.

    Raises SweepConfigError for an ``n_workers`` that is not an integer >= 1.
    """
    import logging

    import dask
    import distributed
    n = n_workers if n_workers is not None else _usable_cpus()
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise SweepConfigError(f"n_workers must be an integer >= 1, got {n_workers!r}")
    # None removes the variable from what the nannies set (read once, when each nanny starts).
    # A nanny also writes what it sets into this process's os.environ before it spawns, so a
    # cluster made earlier with Dask's defaults leaves the variable here for every later
    # child to inherit: take it out while the workers start, unless the user had set it.
    key = "MALLOC_TRIM_THRESHOLD_"
    inherited = os.environ.get(key)
    drop = inherited is not None and _USER_MALLOC_TRIM is None
    if drop:
        del os.environ[key]
    try:
        with dask.config.set({f"distributed.nanny.pre-spawn-environ.{key}": None}):
            return distributed.LocalCluster(n_workers=int(n), threads_per_worker=1, processes=True,
                                            host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                            silence_logs=logging.ERROR)
    finally:
        if drop:
            os.environ[key] = inherited


def _open_client(client, n_workers, connect_timeout):
    """(Client, close function) for ``client``: a Client, a scheduler address, or None (a
    LocalCluster of single-threaded worker processes on 127.0.0.1)."""
    import distributed
    if isinstance(client, distributed.Client):
        return client, lambda: None
    if isinstance(client, str):
        try:
            c = distributed.Client(client, timeout=connect_timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SweepConfigError(f"cannot reach the Dask scheduler at {client}: {exc}") from None
        return c, c.close
    if client is not None:
        raise SweepConfigError(f"client must be a distributed.Client, a scheduler address or None, got {client!r}")
    cluster = local_cluster(n_workers)
    c = distributed.Client(cluster)

    def close():
        c.close()
        cluster.close()
    return c, close


def _cancelled_errors() -> tuple:
    """The exception classes of a cancelled future (BaseExceptions, not Exceptions)."""
    import asyncio
    import concurrent.futures
    import distributed.client as dc
    kinds = (asyncio.CancelledError, concurrent.futures.CancelledError)
    extra = getattr(dc, "FutureCancelledError", None)
    return kinds + ((extra,) if isinstance(extra, type) else ())


# --------------------------------------------------------------------------------- run
def run(estimator: BaseEstimator, grid: dict | list[dict], X: ArrayLike | str | os.PathLike,
        y: ArrayLike | None = None, seeds: Iterable[int] = (0,),
        metrics: str | Callable[..., float] | Iterable[str | Callable[..., float]] | None = "auto",
        client: Client | str | None = None, store: str | os.PathLike | None = None, *,
        fit_params: dict | None = None, X_test: ArrayLike | None = None, y_test: ArrayLike | None = None,
        test_fraction: float = 0.2, split_seed: int = 0, n_workers: int | None = None,
        threads_per_run: int | None = None, check: bool = True, retry_errors: bool = False,
        progress: bool | None = None, on_result: Callable[[dict], object] | None = None,
        connect_timeout: float = 10) -> pd.DataFrame:
    """Train a clone of ``estimator`` for every combination of ``grid`` and seed on a Dask
    cluster and measure it; one row per run (see the module docstring for the details).

    Parameters
    ----------
    estimator : estimator with get_params / set_params / fit (SparseDream, DreamComp, ...)
        Its own parameters are the fixed ones; it is not modified.
    grid : dict of str -> list, or list of such dicts
        The swept parameters (scikit-learn's ``ParameterGrid``); ``{}`` sweeps only seeds.
    X : array-like of shape (n_samples, ...), or path of a ``.npy`` file
        Training data; a path is memory-mapped by every worker (it must be readable there).
    y : array-like of shape (n_samples,) or None
        Labels: passed to ``fit``, and split off a held-out part for the measures.
    seeds : iterable of int
        Every combination runs once per seed (the estimator's ``seed``/``random_state``).
    metrics : "auto", or list of str / callables
        Names of functions of :mod:`sparsedream_fast.metrics` (``reconstruction_error``,
        ``dead_units``, ``usage_entropy``, ``quantization_error``, ``topographic_error``,
        ``accuracy``, ...), or callables ``f(model, X[, y])`` returning a number. "auto":
        :func:`default_metrics`.
    client : distributed.Client, str or None
        A client, a scheduler address (``"tcp://host:8786"``), or None: a LocalCluster of
        ``n_workers`` single-threaded processes on 127.0.0.1, closed at the end.
    store : path or None
        Folder of the per-run result files (made when missing); the same store resumes.
    fit_params : dict or None
        Keyword arguments of every ``fit`` (``epochs``, ``shuffle``, ...).
    X_test, y_test : array-like or None
        Held-out data for the measures (instead of a split of X).
    test_fraction : float
        With labels and no X_test: the held-out fraction (0: measure on the training data).
    split_seed : int
        ``random_state`` of the split.
    n_workers : int or None
        Processes of the local cluster (default: the usable CPUs).
    threads_per_run : int or None
        Threads of each run (default: a worker machine's CPUs / its task slots).
    check : bool
        Fit every parameter combination for one epoch on a small subset first (on the
        cluster), so that a refused value stops the sweep before any run.
    retry_errors : bool
        Run again the runs whose stored row holds an error.
    progress : bool or None
        A tqdm bar over the runs (None: when stderr is a terminal).
    on_result : callable(row) or None
        Called in this process with each finished run's row (dict), after it is stored.
    connect_timeout : float
        Seconds to wait for a scheduler given by address.

    Returns
    -------
    pandas.DataFrame
        One row per run (columns: the swept parameters, ``seed``, the metrics, then
        :data:`RESULT_COLUMNS`). ``df.attrs`` holds ``runs_executed``, ``runs_from_store``,
        ``seconds`` and ``threads_plan``.

    Raises
    ------
    SweepConfigError
        Bad configuration, before any run starts.

    Examples
    --------
    >>> import numpy as np, sparsedream_fast as sdf                      # doctest: +SKIP
    >>> X = np.random.default_rng(0).random((500, 64))
    >>> table = sdf.sweep.run(sdf.SparseDream(n_inputs=64, grid=(8, 8)), {"lr": [0.02, 0.05], "k": [1, 3]},
    ...                       X, seeds=[0, 1], fit_params={"epochs": 2}, store="sweep_store")
    >>> table[["lr", "k", "seed", "reconstruction_error"]]
    """
    _require_extra()
    import pandas as pd
    t_start = time.perf_counter()
    _check_estimator(estimator)
    data, n_train, token = _prepare_data(X, y, X_test, y_test, test_fraction, split_seed)
    fit_params = _check_fit_params(estimator, fit_params, data["y"] is not None)
    mets = resolve_metrics(metrics, estimator)
    has_labels = data["y"] is not None
    for name, fn in mets:
        if _wants_y(fn) and not has_labels:
            raise SweepConfigError(f"metric {name} needs labels: pass y")
    runs = plan(estimator, grid, seeds, fit_params, token, [n for n, _ in mets])
    if threads_per_run is not None and (isinstance(threads_per_run, bool) or
                                        not isinstance(threads_per_run, numbers.Integral) or threads_per_run < 1):
        raise SweepConfigError(f"threads_per_run must be an integer >= 1, got {threads_per_run!r}")
    seed_param = _seed_param(estimator)
    if store is not None:
        store = os.fspath(store)
        try:
            os.makedirs(store, exist_ok=True)
        except OSError as exc:
            raise SweepConfigError(f"cannot make the store folder {store}: {exc}") from None
    rows = {}
    if store is not None:
        for r in runs:
            row = _read_stored(store, r.key)
            if row is not None and not (retry_errors and row.get("error")):
                rows[r.index] = row
    todo = [r for r in runs if r.index not in rows]
    from_store = len(rows)
    plan_threads = None
    if todo:
        cl, close = _open_client(client, n_workers, connect_timeout)
        try:
            plan_threads = _threads_plan(cl, threads_per_run)
            futures_data = {k: (cl.scatter(v, broadcast=True, hash=False) if isinstance(v, np.ndarray) else v)
                            for k, v in data.items()}
            est_f = cl.scatter(estimator, broadcast=True, hash=False)
            if check:
                _check_on_cluster(cl, est_f, estimator, todo, seed_param, futures_data, mets, fit_params)
            _run_on_cluster(cl, est_f, estimator, todo, seed_param, futures_data, mets, fit_params, plan_threads,
                            store, rows, progress, on_result, len(runs), from_store)
        finally:
            close()
    columns = _param_columns(runs) + ["seed"] + [n for n, _ in mets] + list(RESULT_COLUMNS)
    records = []
    for r in runs:
        row = rows[r.index]
        rec = dict(r.params)
        rec["seed"] = r.seed
        for name, _ in mets:
            rec[name] = row.get(name, math.nan)
        for c in RESULT_COLUMNS:
            rec[c] = row.get(c, math.nan if c.endswith(("seconds", "second")) else None)
        records.append(rec)
    df = pd.DataFrame.from_records(records, columns=columns)
    df.attrs.update(runs_executed=len(runs) - from_store, runs_from_store=from_store,
                    seconds=time.perf_counter() - t_start, threads_plan=plan_threads)
    return df


def _param_columns(runs):
    cols = []
    for r in runs:
        for k in r.params:
            if k not in cols:
                cols.append(k)
    return cols


def _check_on_cluster(cl, est_f, estimator, todo, seed_param, data, mets, fit_params):
    import distributed
    seen, futs = set(), []
    for r in todo:
        tok = _hash(_canon(r.params))
        if tok in seen:
            continue
        seen.add(tok)
        futs.append(cl.submit(_check_run, est_f, r.params, seed_param, r.seed, data, mets, fit_params,
                              key=f"sweep-check-{r.key}-{os.urandom(4).hex()}", priority=10, retries=2))
    try:
        for f in distributed.as_completed(futs):
            f.result()
    except SweepConfigError:
        raise
    except (Exception, *_cancelled_errors()) as exc:
        raise SweepConfigError(f"the configuration check could not run on the cluster: "
                               f"{type(exc).__name__}: {exc}") from None
    finally:
        cl.cancel(futs)


def _run_on_cluster(cl, est_f, estimator, todo, seed_param, data, mets, fit_params, plan_threads, store, rows,
                    progress, on_result, total, done):
    import distributed
    nonce = os.urandom(4).hex()
    by_key = {}
    futs = []
    for r in todo:
        f = cl.submit(execute, est_f, r.params, seed_param, r.seed, data, mets, fit_params, plan_threads,
                      key=f"sweep-run-{r.index}-{r.key}-{nonce}")
        by_key[f.key] = r
        futs.append(f)
    bar = None
    if progress or (progress is None and sys.stderr.isatty()):
        from tqdm.auto import tqdm
        bar = tqdm(total=total, initial=done, unit="run", desc="sweep")
    try:
        for f in distributed.as_completed(futs):
            r = by_key[f.key]
            keep = True
            try:
                row = f.result()
            except (Exception, *_cancelled_errors()) as exc:
                # execute() returns a run's own failure in its row, so what arrives here failed
                # on the cluster (KilledWorker after the allowed retries, a lost connection):
                # not stored, so that a rerun tries the run again
                keep = False
                row = dict(error=f"{type(exc).__name__}: {exc}", traceback=None, threads=None, worker=None)
            if store is not None and keep:
                _write_stored(store, r, row, estimator)
            rows[r.index] = row
            if bar is not None:
                bar.update(1)
            if on_result is not None:
                on_result(dict(r.params, seed=r.seed, **row))
    finally:
        if bar is not None:
            bar.close()
        cl.cancel([f for f in futs if not f.done()])
