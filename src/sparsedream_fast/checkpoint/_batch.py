"""Checkpoint schemas of the batch rules, ``DreamComp`` and ``KrotovHopfield`` (format
version 1 of each).

Their fitted state is their fitted attributes (the public names ending in ``_``, as
scikit-learn has them: ``weights_``, ``n_inputs_``, ``classes_``, ...), stored like the
parameters (arrays under ``fitted.<name>``, the rest as JSON in ``state["attrs"]``), so
that an attribute the estimator gains is saved without a change here; the attributes the
predictions index with are checked against the configuration: ``weights_`` (N, D + C)
(DreamComp) or (n_hidden, D) (KrotovHopfield) in the model dtype and finite, the sizes
``n_inputs_``, ``n_classes_``, ``n_features_in_`` and ``classes_`` consistent with it and with
the parameters. A generator the estimator keeps (``_rng``, for continued training) is
stored as ``state["rng"]``.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._backends import resolve_backend
from .._validation import check_dtype, check_int
from . import Schema, generator, generator_state, register
from ._params import decode_values, encode_values

_SIZE_MAX = 2**31 - 1


def fitted_attributes(model) -> dict:
    """The fitted attributes of ``model``: its public attributes whose names end in ``_``."""
    return {k: v for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_")}


def dump(model):
    """``(state, arrays)``: the fitted attributes (and the generator, where one is kept)."""
    attrs = fitted_attributes(model)
    if "weights_" not in attrs:
        return {"fitted": False}, {}
    doc, arrays = encode_values(attrs, "fitted")
    state = {"fitted": True, "attrs": doc}
    if isinstance(getattr(model, "_rng", None), np.random.Generator):
        state["rng"] = generator_state(model._rng)
    return state, arrays


def _size(attrs, name, contents, low=1):
    v = attrs.get(name)
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not low <= v <= _SIZE_MAX:
        raise contents.error(f"fitted.{name}", f"must be an integer in [{low}, {_SIZE_MAX}], got {v!r:.40}")
    return int(v)


def _weights(attrs, shape, dtype, contents):
    W = attrs.get("weights_")
    if not isinstance(W, np.ndarray):
        raise contents.error("fitted.weights_", "missing")
    if W.dtype != dtype:
        raise contents.error("fitted.weights_", f"must have dtype {dtype.name}, got {W.dtype}")
    if W.shape != shape:
        raise contents.error("fitted.weights_", f"must have shape {shape}, got {W.shape}")
    return np.ascontiguousarray(W)


def _same(param, saved, what, contents):
    if param is not None and param != saved:
        raise contents.error("params", f"{what}={param!r} disagrees with the fitted size {saved}")


def _common(model, state, contents):
    """The attributes decoded, the generic parameter checks, the generator."""
    try:
        if hasattr(type(model), "_parameter_constraints"):
            model._validate_params()
        dtype = check_dtype(model.dtype)
        np.random.default_rng(model.seed)
    except (ValueError, TypeError) as exc:
        raise contents.error("params", str(exc)) from None
    attrs = decode_values(state.get("attrs"), contents, "fitted")
    if "rng" in state:
        model._rng = generator(state["rng"], "state.rng", contents)
    return attrs, dtype


def _install(model, attrs):
    for name, value in attrs.items():
        setattr(model, name, value)
    model.backend_ = resolve_backend(model.backend)


def _check_counter(attrs, contents):
    """n_batches_ (batches of the last fit), when saved: an integer >= 0."""
    if "n_batches_" in attrs:
        attrs["n_batches_"] = _size(attrs, "n_batches_", contents, low=0)


def _check_features(attrs, D, contents):
    if "n_features_in_" in attrs and _size(attrs, "n_features_in_", contents) != D:
        raise contents.error("fitted.n_features_in_", f"must equal D={D}, got {attrs['n_features_in_']}")
    names = attrs.get("feature_names_in_")
    if names is not None and not (isinstance(names, np.ndarray) and names.shape == (D,)):
        raise contents.error("fitted.feature_names_in_", f"must be an array of D={D} names")


def restore_dreamcomp(model, state, contents) -> None:
    """Check and install the fitted attributes of a DreamComp."""
    attrs, dtype = _common(model, state, contents)
    try:
        N = model._n_neurons()
    except (ValueError, TypeError) as exc:
        raise contents.error("params", str(exc)) from None
    D = _size(attrs, "n_inputs_", contents)
    C = _size(attrs, "n_classes_", contents, low=2)
    _same(model.n_inputs, D, "n_inputs", contents)
    _same(model.n_classes, C, "n_classes", contents)
    _check_features(attrs, D, contents)
    classes = attrs.get("classes_")
    # predict maps neuron classes through classes_, so a fitted DreamComp always has it
    if not (isinstance(classes, np.ndarray) and classes.shape == (C,)):
        raise contents.error("fitted.classes_", f"must be an array of the C={C} classes")
    attrs["weights_"] = _weights(attrs, (N, D + C), dtype, contents)
    _check_counter(attrs, contents)
    _install(model, attrs)


def restore_krotov(model, state, contents) -> None:
    """Check and install the fitted attributes of a KrotovHopfield."""
    attrs, dtype = _common(model, state, contents)
    try:
        H = check_int(model.n_hidden, "n_hidden", 2)
        check_int(model.k, "k", 2, H)
    except (ValueError, TypeError) as exc:
        raise contents.error("params", str(exc)) from None
    W = attrs.get("weights_")
    D = model.n_inputs if model.n_inputs is not None else attrs.get("n_features_in_")
    if D is None and isinstance(W, np.ndarray) and W.ndim == 2:
        D = W.shape[1]
    if isinstance(D, bool) or not isinstance(D, numbers.Integral) or not 1 <= D <= _SIZE_MAX:
        raise contents.error("params", f"n_inputs must be an integer >= 1, got {D!r:.40}")
    _check_features(attrs, int(D), contents)
    attrs["weights_"] = _weights(attrs, (H, int(D)), dtype, contents)
    _check_counter(attrs, contents)
    _install(model, attrs)


DREAMCOMP = register(Schema("DreamComp", 1, "sparsedream_fast.dreamcomp.model:DreamComp", dump,
                            restore_dreamcomp))
KROTOV = register(Schema("KrotovHopfield", 1, "sparsedream_fast.krotov.model:KrotovHopfield", dump,
                         restore_krotov))
