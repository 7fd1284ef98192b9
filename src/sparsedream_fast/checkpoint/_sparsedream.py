"""Checkpoint schema of ``SparseDream`` (format ``sparsedream_fast.SparseDream/2``).

Fitted arrays: ``W`` (N, D) and ``trace`` (N,) in the model's dtype; ``lateral_kind``
("none", "stencil" or "csr") and the operator in use: ``lat_kernel`` (2r+1, 2r+1) and
``lat_row_scale`` ((N,) or (0,) for none) of a stencil, or ``lat_indptr`` (N+1,) int64,
``lat_indices`` (nnz,) int32 and ``lat_data`` (nnz,) of a CSR. State: ``n_inputs`` (D),
``n_steps``, ``rng`` (the generator's state), ``backend_``.

Version 1 (written before this module) kept the parameters in its own JSON encoding, the
generator state under ``rng`` and the step count under ``n_steps``; it is read by
:func:`_upgrade_v1` and checked the same way.
"""
from __future__ import annotations

import numpy as np

from .. import lateral as _lateral
from .._backends import resolve_backend
from ..sparsedream.config import TrainState, with_lateral
from . import Schema, generator, generator_state, integer, register

_KINDS = ("none", "stencil", "csr")
_I64_MAX = 2**63 - 1


def dump(model):
    """``(state, arrays)`` of a SparseDream (``fitted`` False before the first fit)."""
    if not hasattr(model, "_state"):
        return {"fitted": False}, {}
    st, cfg = model._state, model.config_
    arrays = {"W": np.ascontiguousarray(st.W), "trace": np.ascontiguousarray(st.trace)}
    lat = st.lateral
    if lat is None:
        arrays["lateral_kind"] = np.array("none")
    elif lat.kind == "stencil":
        arrays.update(lateral_kind=np.array("stencil"), lat_kernel=lat.kernel,
                      lat_row_scale=lat.row_scale if lat.row_scale is not None else np.zeros(0, lat.kernel.dtype))
    else:
        arrays.update(lateral_kind=np.array("csr"), lat_indptr=lat.indptr, lat_indices=lat.indices,
                      lat_data=lat.data)
    state = {"fitted": True, "n_inputs": int(cfg.n_inputs), "n_steps": int(model.n_steps_),
             "rng": generator_state(model._rng), "backend_": str(model.backend_)}
    return state, arrays


def _operator(contents, cfg):
    kind = contents.text("lateral_kind")
    if kind not in _KINDS:
        raise contents.error("lateral_kind", f"must be one of {_KINDS}, got {kind[:40]!r}")
    N, dt = cfg.n_neurons, cfg.dtype
    if kind == "none":
        return None
    if kind == "stencil":
        k = contents.array("lat_kernel", dtype=dt, shape=(None, None))
        rs = contents.array("lat_row_scale", dtype=dt, shape=(None,))
        if rs.shape[0] not in (0, N):
            raise contents.error("lat_row_scale", f"must have shape ({N},) or (0,), got {rs.shape}")
        if k.shape[0] != k.shape[1] or k.shape[0] % 2 != 1:
            raise contents.error("lat_kernel", f"must be square with an odd side, got shape {k.shape}")
        if k[k.shape[0] // 2, k.shape[0] // 2] != 0:
            raise contents.error("lat_kernel", "centre must be 0 (a neuron does not excite itself)")
        return _lateral.Stencil(k, cfg.grid, rs if rs.size else None, dt)
    indptr = contents.array("lat_indptr", kind="iu", shape=(N + 1,))
    indices = contents.array("lat_indices", kind="iu", shape=(None,))
    data = contents.array("lat_data", dtype=dt, shape=(None,))
    try:
        return _lateral.CSR(indptr, indices, data, N, names=("lat_indptr", "lat_indices", "lat_data"))
    except (ValueError, TypeError) as exc:
        raise contents.error("lat_*", str(exc)) from None


def restore(model, state, contents) -> None:
    """Check and install the fitted state of ``contents`` on a freshly built ``model``."""
    D = integer(state, "n_inputs", "state", contents, 1, 2**31 - 1)
    try:
        cfg = model._config(D)
        if cfg.n_inputs != D:
            raise ValueError(f"n_inputs={cfg.n_inputs} disagrees with the saved D={D}")
        model._check_init(cfg)
        np.random.default_rng(model.seed)   # what a fresh fit draws from
        if not isinstance(model.lateral, _lateral.RandomLateral):   # (drawn at fit)
            _lateral.resolve(model.lateral, cfg.grid, cfg.dtype, learn=cfg.learn_lateral)
    except (ValueError, TypeError) as exc:
        raise contents.error("params", str(exc)) from None
    N = cfg.n_neurons
    W = contents.array("W", dtype=cfg.dtype, shape=(N, D))
    trace = contents.array("trace", dtype=cfg.dtype, shape=(N,))
    lat = _operator(contents, cfg)
    if cfg.learn_lateral and (lat is None or lat.kind != "csr"):
        raise contents.error("lateral_kind", "a learned lateral must be saved as a CSR")
    rng = generator(state.get("rng"), "state.rng", contents)
    n_steps = integer(state, "n_steps", "state", contents, 0, _I64_MAX)
    cfg, lat = with_lateral(cfg, lat)
    backend = resolve_backend(model.backend)
    model.config_, model._state, model._rng = cfg, TrainState(W=W, lateral=lat, trace=trace), rng
    model.n_steps_, model.backend_ = n_steps, backend


# ------------------------------------------------------------------ version 1
def _spec_v1(d, contents, lat_in_use):
    """A lateral parameter as version 1 wrote it."""
    if d is None:
        return None
    if not isinstance(d, dict) or not isinstance(d.get("spec"), str):
        raise contents.error("params", f"lateral: not a saved specification ({d!r:.60})")
    make = {"box": lambda: _lateral.box(d["radius"], d["strength"]),
            "normalized_box": lambda: _lateral.normalized_box(d["radius"], d["strength"]),
            "stencil": lambda: _lateral.stencil(np.array(d["kernel"], dtype=np.float64)),
            "random": lambda: _lateral.random(d["radius"], d["low"], d["high"])}
    if d["spec"] == "matrix":
        return lat_in_use
    if d["spec"] not in make:
        raise contents.error("params", f"lateral: unknown specification {d['spec']!r:.40}")
    try:
        return make[d["spec"]]()
    except (KeyError, ValueError, TypeError) as exc:
        raise contents.error("params", f"lateral: {type(exc).__name__}: {exc}") from None


def _upgrade_v1(contents):
    """``(params, state)`` of a SparseDream/1 file."""
    params = contents.json("params")
    if not isinstance(params, dict):
        raise contents.error("params", "must be a JSON object of parameter names")
    config = contents.json("config")
    D = integer(config, "n_inputs", "config", contents, 1, 2**31 - 1)
    n_steps = contents.array("n_steps", kind="iu", shape=())
    state = {"fitted": True, "n_inputs": D, "n_steps": int(n_steps), "rng": contents.json("rng")}
    lat_in_use = None
    if isinstance(params.get("lateral"), dict) and params["lateral"].get("spec") == "matrix":
        N = integer(config, "n_neurons", "config", contents, 1, 2**31 - 1)
        dt = contents.reader.header("W")[1]
        op = _operator(contents, _V1Config(N, dt, _grid_v1(params.get("grid"), contents)))
        lat_in_use = None if op is None else op.to_scipy()
    params["lateral"] = _spec_v1(params.get("lateral"), contents, lat_in_use)
    init = params.get("init")
    if isinstance(init, dict):
        params["init"] = contents.array("init", kind="biuf")
    elif isinstance(init, list):
        params["init"] = tuple(init)
    if isinstance(params.get("grid"), list):
        params["grid"] = tuple(params["grid"])
    return params, state


def _grid_v1(grid, contents):
    if isinstance(grid, int) and not isinstance(grid, bool):
        return (1, grid)
    if isinstance(grid, list) and len(grid) == 2 and all(isinstance(g, int) and g >= 1 for g in grid):
        return tuple(grid)
    raise contents.error("params", f"grid: not a grid ({grid!r:.40})")


class _V1Config:
    """The two settings a version 1 file's lateral is read with before the model exists."""

    def __init__(self, n, dtype, grid):
        if grid[0] * grid[1] != n:
            raise ValueError("grid and n_neurons disagree")
        self.n_neurons, self.dtype, self.grid = n, np.dtype(dtype), grid


SCHEMA = register(Schema("SparseDream", 2, "sparsedream_fast.sparsedream.model:SparseDream", dump, restore,
                         upgrades={1: _upgrade_v1}))
