"""CUDA backend of rule A (backend ``"cuda"``): ``fit`` as one persistent cooperative
kernel (csrc/cuda/rule_a.cu), ``infer`` with a block per sample.

The state (W, trace, a learned lateral) stays a set of host arrays: each ``fit`` call copies
it to the GPU, runs every step there, and copies it back. The data ``X`` may be a device
array (anything with ``__cuda_array_interface__``, e.g. CuPy or PyTorch CUDA tensors): it is
then read in place, without a host round trip.

Results follow the reference to rounding: the drive and the reconstruction sum in another
order (a warp per row; the active rows in competition order), everything else element by
element as numpy does. The single-step kernels of :mod:`sparsedream_fast.ops` other than
``step`` have no GPU version: they are a few microseconds of work on the CPU.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .._backends import cuda_module
from .._runtime import DivergenceError, loop_control
from ._cpp import _inplace, _lateral_args, _read, _writes_lateral
from .config import SparseDreamConfig, TrainState

__all__ = ["fit", "infer", "step", "device_input", "competition", "topk", "reconstruct", "update_rows",
           "apply_bounds"]


def device_input(X, n_inputs: int, dtype):
    """``(x_ptr, rows)`` of a C-contiguous device array X of shape (rows, n_inputs) and the
    model's dtype, or None when X is not a device array (no ``__cuda_array_interface__``).

    Raises ValueError / TypeError for a device array of the wrong shape, dtype or layout
    (a device array is never copied or converted silently).
    """
    iface = getattr(X, "__cuda_array_interface__", None)
    if iface is None:
        return None
    shape = tuple(iface["shape"])
    if len(shape) != 2 or shape[1] != n_inputs:
        raise ValueError(f"device X must have shape (n_samples, {n_inputs}), got {shape}")
    if np.dtype(iface["typestr"]) != np.dtype(dtype):
        raise TypeError(f"device X must have the model's dtype {np.dtype(dtype).name}, got "
                        f"{np.dtype(iface['typestr']).name} (convert it on the device first)")
    strides = iface.get("strides")
    item = np.dtype(dtype).itemsize
    if strides is not None and shape[0] > 0 and tuple(strides) != (shape[1] * item, item):
        raise ValueError("device X must be C-contiguous")
    return int(iface["data"][0]), int(shape[0])


def _x_args(X, cfg):
    dev = device_input(X, cfg.n_inputs, cfg.dtype)
    if dev is None:
        X = _read(X, cfg.dtype)
        if X.ndim == 1:
            X = X[None, :]
        return dict(X=X, x_ptr=0, x_rows=X.shape[0])
    return dict(X=None, x_ptr=dev[0], x_rows=dev[1])


def fit(state: TrainState, X, order: np.ndarray, cfg: SparseDreamConfig, reset_trace: bool = True,
        step0: int = 0, blocks: int = 0, control=None) -> np.ndarray:
    """Train on ``X[order[e, i]]`` for every epoch row e, in place on ``state`` (reference.fit).

    Parameters
    ----------
    state : TrainState
    X : ndarray of shape (n, D) in the model dtype, or a device array of that shape and dtype
    order : ndarray of shape (E, S), int64
    cfg : SparseDreamConfig
    reset_trace : bool
    step0 : int
    blocks : int
        Thread blocks of the kernel (0: one per multiprocessor); tests vary it.
    control : sparsedream_fast._runtime.Control or None
        Stop request in (acted on between kernel launches of a few tens of milliseconds),
        steps done and status out. None: run to the end, and raise DivergenceError when a
        step's update is not finite.

    Returns
    -------
    ndarray of shape (k,), int64: the winners of the last completed step.
    """
    dt = np.dtype(cfg.dtype)
    W = _inplace(state.W, "state.W", dt)
    o = _inplace(state.trace, "state.trace", dt)
    order = np.ascontiguousarray(order, dtype=np.int64)
    if order.ndim == 1:
        order = order[None, :]
    ctl = loop_control(control)
    win = cuda_module().rule_a_fit(W, o, order=order, cfg=cfg.native_dict(), reset_trace=bool(reset_trace),
                                   step0=int(step0), blocks=int(blocks), control=ctl.array, **_x_args(X, cfg),
                                   **_lateral_args(state.lateral, dt, learn=_writes_lateral(cfg)))
    if control is None:
        ctl.raise_if_diverged("SparseDream fit (cuda)")
    return win


def step(state: TrainState, v, cfg: SparseDreamConfig) -> np.ndarray:
    """One learning step on input ``v`` (D,) in place on ``state`` (reference.step); returns the winners (k,)."""
    v = _read(v, cfg.dtype)
    cfg1 = dataclasses.replace(cfg, w_max=None, clip_lateral=False)  # reference.step applies no bounds
    ctl = loop_control(None)
    win = fit(state, v[None, :], np.zeros((1, 1), np.int64), cfg1, reset_trace=False, control=ctl)
    if ctl.diverged:
        raise DivergenceError("the update of this step is not finite (NaN or inf); nothing was written")
    return win


def infer(W: np.ndarray, lateral, X, cfg: SparseDreamConfig):
    """Winners (n, k) int64 and their activity (n, k) for every row of X, without learning."""
    dt = W.dtype
    return cuda_module().rule_a_infer(_read(W, dt), cfg=cfg.native_dict(), **_x_args(X, cfg),
                                      **_lateral_args(lateral, dt, learn=False))


def _no_gpu_kernel(name):
    def f(*args, **kwargs):
        raise NotImplementedError(f"rule A's {name} has no CUDA kernel (a few microseconds on the CPU): "
                                  "use backend='cpp' or 'numpy' for it; fit, step and infer run on the GPU")
    f.__name__ = name
    f.__doc__ = f"Not on the GPU: raises NotImplementedError (use the cpp backend's {name})."
    return f


competition = _no_gpu_kernel("competition")
topk = _no_gpu_kernel("topk")
reconstruct = _no_gpu_kernel("reconstruct")
update_rows = _no_gpu_kernel("update_rows")
apply_bounds = _no_gpu_kernel("apply_bounds")
