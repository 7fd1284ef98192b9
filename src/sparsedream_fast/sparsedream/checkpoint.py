"""Checkpoints of ``SparseDream`` models: one ``.npz`` file, no pickles.

Keys (all numpy arrays; strings as 0-d unicode arrays):

``format``        "sparsedream_fast.SparseDream/1"
``params``        JSON of the constructor parameters. A lateral spec is stored as
                  ``{"spec": "box", "radius": 2, "strength": 0.1}`` (likewise
                  normalized_box, stencil with its kernel, random); an explicit matrix as
                  ``{"spec": "matrix"}`` (the matrix itself is the saved lateral below);
                  an init array as ``{"init": "array"}`` with the array under ``init``.
``config``        JSON of the validated configuration (for inspection).
``W``             (N, D) weights, model dtype
``trace``         (N,) trace
``lateral_kind``  "none" | "stencil" | "csr"
``lat_kernel``, ``lat_row_scale``            (stencil)
``lat_indptr``, ``lat_indices``, ``lat_data`` (csr)
``rng``           JSON of ``numpy.random.Generator.bit_generator.state``
``n_steps``       int64 scalar
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from .. import lateral as _lateral
from .config import TrainState

FORMAT = "sparsedream_fast.SparseDream/1"


def _encode_lateral_param(spec):
    if spec is None:
        return None
    if isinstance(spec, _lateral.Box):
        return {"spec": "box", "radius": spec.radius, "strength": spec.strength}
    if isinstance(spec, _lateral.NormalizedBox):
        return {"spec": "normalized_box", "radius": spec.radius, "strength": spec.strength}
    if isinstance(spec, _lateral.StencilSpec):
        return {"spec": "stencil", "kernel": np.asarray(spec.kernel).tolist()}
    if isinstance(spec, _lateral.RandomLateral):
        return {"spec": "random", "radius": spec.radius, "low": spec.low, "high": spec.high}
    return {"spec": "matrix"}


def _decode_lateral_param(d, state_lateral):
    if d is None:
        return None
    kind = d["spec"]
    if kind == "box":
        return _lateral.box(d["radius"], d["strength"])
    if kind == "normalized_box":
        return _lateral.normalized_box(d["radius"], d["strength"])
    if kind == "stencil":
        return _lateral.stencil(np.array(d["kernel"]))
    if kind == "random":
        return _lateral.random(d["radius"], d["low"], d["high"])
    return state_lateral.to_scipy() if state_lateral is not None else None


def save_model(model, path) -> str:
    """Write ``model`` (fitted) to ``path``; see the module docstring for the format."""
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    params = model.get_params()
    arrays = {}
    params["lateral"] = _encode_lateral_param(params["lateral"])
    init = params["init"]
    if isinstance(init, (tuple, list)) and len(init) == 2 and np.isscalar(init[0]):
        params["init"] = [float(init[0]), float(init[1])]
    else:
        arrays["init"] = np.asarray(init)
        params["init"] = {"init": "array"}
    if isinstance(params["grid"], tuple):
        params["grid"] = list(params["grid"])
    for key in ("error_clip", "trace", "w_max", "lateral_lr", "lr", "prec"):
        if params[key] is not None:
            params[key] = float(params[key])
    params["dtype"] = str(np.dtype(params["dtype"]))
    st = model._state
    cfg = model.config_
    lat = st.lateral
    if lat is None:
        arrays["lateral_kind"] = np.array("none")
    elif lat.kind == "stencil":
        arrays.update(lateral_kind=np.array("stencil"), lat_kernel=lat.kernel,
                      lat_row_scale=lat.row_scale if lat.row_scale is not None else np.zeros(0, lat.kernel.dtype))
    else:
        arrays.update(lateral_kind=np.array("csr"), lat_indptr=lat.indptr, lat_indices=lat.indices,
                      lat_data=lat.data)
    config = {k: (v if not isinstance(v, (np.dtype,)) else str(v)) for k, v in cfg.native_dict().items()}
    with open(path, "wb") as f:
        np.savez(f, format=np.array(FORMAT), params=np.array(json.dumps(params)),
                 config=np.array(json.dumps(config)), W=st.W, trace=st.trace,
                 rng=np.array(json.dumps(model._rng.bit_generator.state)),
                 n_steps=np.array(model.n_steps_, dtype=np.int64), **arrays)
    return path


def load_model(cls, path, backend=None):
    """Read a model written by ``save_model``; returns a fitted ``cls`` instance.

    Raises FileNotFoundError for a missing file and ValueError for anything that is not a
    readable checkpoint (truncated, another format, a missing array).
    """
    path = os.fspath(path)
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path += ".npz"
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return _load(cls, path, backend)
    except (ValueError, TypeError) as exc:
        if "checkpoint" in str(exc) or "backend" in str(exc):
            raise
        raise ValueError(f"{path} is not a readable SparseDream checkpoint: {exc}") from exc
    except (OSError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a readable SparseDream checkpoint: {exc!r}") from exc


def _load(cls, path, backend):
    with np.load(path, allow_pickle=False) as z:
        if "format" not in z.files or str(z["format"]) != FORMAT:
            raise ValueError(f"{path} is not a SparseDream checkpoint (format {FORMAT})")
        params = json.loads(str(z["params"]))
        kind = str(z["lateral_kind"])
        dtype = z["W"].dtype
        if kind == "none":
            lat = None
        elif kind == "stencil":
            rs = z["lat_row_scale"]
            lat = _lateral.Stencil(z["lat_kernel"], params["grid"] if not isinstance(params["grid"], int)
                                   else (1, params["grid"]), rs if rs.size else None, dtype)
        else:
            lat = _lateral.CSR(z["lat_indptr"], z["lat_indices"], z["lat_data"].copy(), z["W"].shape[0])
        params["lateral"] = _decode_lateral_param(params["lateral"], lat)
        if isinstance(params["init"], dict):
            params["init"] = z["init"].copy()
        else:
            params["init"] = tuple(params["init"])
        if isinstance(params["grid"], list):
            params["grid"] = tuple(params["grid"])
        if backend is not None:
            params["backend"] = backend
        model = cls(**params)
        W = np.ascontiguousarray(z["W"]).copy()
        cfg = model._config(W.shape[1])
        from .model import _lateral_for
        cfg, lat = _lateral_for(cfg, lat)
        state = TrainState(W=W, lateral=lat, trace=z["trace"].copy())
        rng = np.random.default_rng()
        rng.bit_generator.state = json.loads(str(z["rng"]))
        n_steps = int(z["n_steps"])
    from .._backends import resolve_backend
    model.config_, model._state, model._rng, model.n_steps_ = cfg, state, rng, n_steps
    model.backend_ = resolve_backend(model.backend)
    return model
