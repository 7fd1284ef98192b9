"""C++ backend of rule A (backend ``"cpp"``): a thin wrapper over ``sparsedream_fast._core``.

The functions have the names and signatures of the numpy reference
(:mod:`sparsedream_fast.sparsedream.reference`) and compute the same values: float64 to
about 1e-12 relative, float32 to rounding (the drive ``W v`` is summed in another order
than BLAS: in ``fit`` one fused multiply-add per nonzero input, in input order, see
docs/design.md "The drive in fit"; everything else follows numpy operation by operation). A whole ``fit`` (all
epochs) is one native call that releases the GIL.

Inputs are assumed valid (the model and :mod:`sparsedream_fast.ops` check them); this
module only makes sure the arrays the kernels read have the model's dtype and are
C-contiguous, and that the arrays updated in place already are (no silent copies).
"""
from __future__ import annotations

import numpy as np

from .. import _core
from .._runtime import DivergenceError, loop_control
from ..lateral import CSR, Stencil
from .config import SparseDreamConfig, TrainState

__all__ = ["competition", "topk", "reconstruct", "update_rows", "step", "apply_bounds", "fit", "infer",
           "build_info"]

#: Frames per block of the blocked drive in ``fit`` (docs/design.md, "The drive in fit"):
#: None chooses from the sizes, 0 runs a dense pass over W every step, n > 0 forces n. For
#: tests and measurements; every choice gives the reference's results.
BLOCK = None

_LAT_NONE, _LAT_STENCIL, _LAT_CSR = 0, 1, 2
_EMPTY_I64 = np.zeros(0, np.int64)
_EMPTY_I32 = np.zeros(0, np.int32)


def build_info() -> str:
    """Compiler, OpenMP threads and SIMD level of the compiled module."""
    return _core.build_info()


def _inplace(a: np.ndarray, name: str, dtype) -> np.ndarray:
    """An array the kernel updates in place: must already have the dtype and be C-contiguous."""
    assert isinstance(a, np.ndarray) and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable, \
        f"{name} must be a writable C-contiguous {np.dtype(dtype).name} array"
    return a


def _read(a, dtype) -> np.ndarray:
    """An array the kernel only reads (converted only when needed)."""
    return np.ascontiguousarray(a, dtype=dtype)


def _writes_lateral(cfg: SparseDreamConfig) -> bool:
    """True when the native code updates the lateral's data in place (learned or clipped)."""
    return bool(cfg.learn_lateral or (cfg.w_max is not None and cfg.clip_lateral))


def _lateral_args(lateral, dtype, learn: bool) -> dict:
    """Keyword arguments of _core describing the lateral operator."""
    empty = np.zeros(0, dtype)
    if lateral is None:
        return dict(lat_kind=_LAT_NONE, kernel=empty, row_scale=empty, uniform=False,
                    indptr=_EMPTY_I64, indices=_EMPTY_I32, data=empty)
    if isinstance(lateral, Stencil):
        scale = empty if lateral.row_scale is None else _read(lateral.row_scale, dtype)
        return dict(lat_kind=_LAT_STENCIL, kernel=_read(lateral.kernel, dtype), row_scale=scale,
                    uniform=lateral.uniform, indptr=_EMPTY_I64, indices=_EMPTY_I32, data=empty)
    if isinstance(lateral, CSR):
        data = _inplace(lateral.data, "lateral.data", dtype) if learn else _read(lateral.data, dtype)
        return dict(lat_kind=_LAT_CSR, kernel=empty, row_scale=empty, uniform=False,
                    indptr=_read(lateral.indptr, np.int64), indices=_read(lateral.indices, np.int32),
                    data=data)
    raise TypeError(f"lateral must be a Stencil, a CSR or None, got {type(lateral).__name__}")


def competition(W: np.ndarray, v: np.ndarray, lateral, cfg: SparseDreamConfig):
    """Drive and competition value of one input (reference.competition).

    Parameters
    ----------
    W : ndarray of shape (N, D)
    v : ndarray of shape (D,)
    lateral : Stencil, CSR or None
    cfg : SparseDreamConfig

    Returns
    -------
    p, c : ndarrays of shape (N,), dtype of W
    """
    dt = W.dtype
    return _core.competition(_read(W, dt), _read(v, dt), cfg.native_dict(),
                             **_lateral_args(lateral, dt, learn=False))


def topk(c: np.ndarray, k: int) -> np.ndarray:
    """Indices (k,) int64 of the k largest entries of c, value descending, ties to the lower index."""
    c = np.asarray(c)
    if c.dtype not in (np.float32, np.float64):
        c = c.astype(np.float64)
    return _core.topk(np.ascontiguousarray(c), int(k))


def reconstruct(W: np.ndarray, idx: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """Masked reconstruction ``r = sum_j vals[j] * W[idx[j]]`` (D,) over the given rows only."""
    dt = W.dtype
    return _core.reconstruct(_read(W, dt), _read(idx, np.int64), _read(vals, dt))


def update_rows(W: np.ndarray, idx: np.ndarray, vals: np.ndarray, v: np.ndarray,
                r: np.ndarray, lr: float, error_clip, prec: float) -> np.ndarray:
    """Multiplicative update of the rows ``idx`` of W in place (reference.update_rows); returns e (D,)."""
    dt = W.dtype
    _inplace(W, "W", dt)
    use_clip = error_clip is not None
    return _core.update_rows(W, _read(idx, np.int64), _read(vals, dt), _read(v, dt), _read(r, dt),
                             float(lr), use_clip, float(error_clip) if use_clip else float("inf"),
                             float(prec))


def step(state: TrainState, v: np.ndarray, cfg: SparseDreamConfig) -> np.ndarray:
    """One learning step on input ``v`` in place on ``state`` (reference.step); returns the winners (k,).

    Raises DivergenceError, writing nothing, when the step's update is not finite.
    """
    dt = np.dtype(cfg.dtype)
    W = _inplace(state.W, "state.W", dt)
    o = _inplace(state.trace, "state.trace", dt)
    win = _core.step(W, o, _read(v, dt), cfg.native_dict(),
                     **_lateral_args(state.lateral, dt, learn=_writes_lateral(cfg)))
    if win is None:
        raise DivergenceError("the update of this step is not finite (NaN or inf); nothing was written")
    return win


def apply_bounds(state: TrainState, cfg: SparseDreamConfig) -> None:
    """Clip W (and the lateral when ``cfg.clip_lateral``) to [0, w_max] in place (reference.apply_bounds)."""
    dt = np.dtype(cfg.dtype)
    data = None
    if cfg.clip_lateral:
        data = _inplace(state.lateral.data, "state.lateral.data", dt)
    _core.apply_bounds(_inplace(state.W, "state.W", dt), float(cfg.w_max), data)


def fit(state: TrainState, X: np.ndarray, order: np.ndarray, cfg: SparseDreamConfig,
        reset_trace: bool = True, step0: int = 0, control=None) -> int:
    """Train on ``X[order[e, i]]`` for every epoch row e, in place on ``state`` (reference.fit).

    One native call for all epochs, without the GIL. It stops after a step on a stop
    request of ``control`` (polled about every 20 ms, with Python's signal handlers run),
    and before a step whose update is not finite (reference.fit).

    Parameters
    ----------
    state : TrainState
    X : ndarray of shape (n, D), dtype of the model
    order : ndarray of shape (E, S), int64
    cfg : SparseDreamConfig
    reset_trace : bool
        Zero the trace at the start of every row of ``order``.
    step0 : int
        Index within its epoch of ``order[:, 0]`` (bounds fall on epoch indices 0, clip_every, ...).
    control : sparsedream_fast._runtime.Control or None
        Stop request in, steps done and status out. None: run to the end, and raise
        DivergenceError when a step's update is not finite.

    Returns
    -------
    int : the steps completed
    """
    dt = np.dtype(cfg.dtype)
    W = _inplace(state.W, "state.W", dt)
    o = _inplace(state.trace, "state.trace", dt)
    order = np.ascontiguousarray(order, dtype=np.int64)
    if order.ndim == 1:
        order = order[None, :]
    ctl = loop_control(control)
    _core.sparsedream_fit(W, o, _read(X, dt), order, cfg.native_dict(),
                          reset_trace=bool(reset_trace), step0=int(step0), control=ctl.array,
                          block=-1 if BLOCK is None else int(BLOCK),
                          **_lateral_args(state.lateral, dt, learn=_writes_lateral(cfg)))
    if control is None:
        ctl.raise_if_diverged("SparseDream fit (cpp)")
    return ctl.done


def infer(W: np.ndarray, lateral, X: np.ndarray, cfg: SparseDreamConfig):
    """Winners and their activity for every row of X, without learning and without trace.

    Returns
    -------
    winners : ndarray of shape (n, k), int64, competition order
    values : ndarray of shape (n, k), dtype of W: the activity ``s`` of each winner
    """
    dt = W.dtype
    X = _read(X, dt)
    if X.ndim == 1:
        X = X[None, :]
    return _core.sparsedream_infer(_read(W, dt), X, cfg.native_dict(),
                                   **_lateral_args(lateral, dt, learn=False))
