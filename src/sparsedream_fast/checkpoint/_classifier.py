"""Checkpoint schema of ``KrotovHopfieldClassifier`` (format version 1).

Parameters as for every model; the ``features`` parameter, a ``KrotovHopfield`` or a
``FrozenEstimator`` of a fitted one, is saved as a model of its own (its whole checkpoint
under ``params.features/``, or ``params.features.estimator/`` inside a FrozenEstimator).

Fitted state: the fitted attributes, stored like the batch rules' (``_batch.py``): the
features ``features_`` (a fitted KrotovHopfield, under ``fitted.features_/``),
``hidden_weights_`` (n_hidden, D) and ``weights_`` (n_classes, n_hidden) in the model dtype
and finite, ``classes_`` (n_classes >= 2), ``n_features_in_`` = D, ``loss_curve_`` and
``validation_scores_`` (lists of finite numbers), ``n_iter_`` >= 1; ``state["read_out"]``
the power ``n`` and gain ``beta`` the top layer was trained with (predictions use them
whatever ``set_params`` did later). ``fit`` starts afresh (the top layer has no
continuation), so no optimiser state is saved: a loaded classifier predicts as the saved one,
and fits as its parameters say.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._validation import check_dtype
from . import Schema, register
from ._batch import _check_features, _size, _weights, dump as _dump_attributes
from ._params import decode_values


def dump(model):
    """``(state, arrays)``: the fitted attributes and the read-out settings."""
    state, arrays = _dump_attributes(model)
    if state["fitted"]:
        state["read_out"] = {k: float(v) for k, v in model._read_out.items()}
    return state, arrays


def _numbers(attrs, name, contents, low=None, high=None) -> list:
    v = attrs.get(name)
    if not isinstance(v, list) or not all(isinstance(x, numbers.Real) and not isinstance(x, bool)
                                          and np.isfinite(x) for x in v):
        raise contents.error(f"fitted.{name}", "must be a list of finite numbers")
    if v and ((low is not None and min(v) < low) or (high is not None and max(v) > high)):
        raise contents.error(f"fitted.{name}", f"entries must lie in [{low}, {high}]")
    return [float(x) for x in v]


def restore(model, state, contents) -> None:
    """Check and install the fitted attributes of a KrotovHopfieldClassifier."""
    from ..krotov.model import KrotovHopfield
    try:
        model._settings()
        dtype = check_dtype(model.dtype)
    except (ValueError, TypeError) as exc:
        raise contents.error("params", str(exc)) from None
    read_out = state.get("read_out")
    if not (isinstance(read_out, dict) and set(read_out) == {"n", "beta"} and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and np.isfinite(v) and v > 0
            for v in read_out.values())):
        raise contents.error("state", "read_out must hold the positive finite n and beta the top layer used")
    attrs = decode_values(state.get("attrs"), contents, "fitted")
    kh = attrs.get("features_")
    if not isinstance(kh, KrotovHopfield) or not hasattr(kh, "weights_"):
        raise contents.error("fitted.features_", "must be a fitted KrotovHopfield")
    H, D = kh.weights_.shape
    if _size(attrs, "n_features_in_", contents) != D:
        raise contents.error("fitted.n_features_in_", f"must equal the features' D={D}")
    _check_features(attrs, D, contents)
    classes = attrs.get("classes_")
    if not (isinstance(classes, np.ndarray) and classes.ndim == 1 and classes.shape[0] >= 2):
        raise contents.error("fitted.classes_", "must be an array of at least 2 classes")
    C = classes.shape[0]
    attrs["weights_"] = _weights(attrs, (C, H), dtype, contents)
    hw = attrs.get("hidden_weights_")
    if not isinstance(hw, np.ndarray) or hw.dtype != dtype or hw.shape != (H, D):
        raise contents.error("fitted.hidden_weights_", f"must be a {dtype.name} array of shape {(H, D)}")
    attrs["loss_curve_"] = _numbers(attrs, "loss_curve_", contents, low=0)
    attrs["validation_scores_"] = _numbers(attrs, "validation_scores_", contents, 0, 1)
    _size(attrs, "n_iter_", contents)
    for name, value in attrs.items():
        setattr(model, name, value)
    model._read_out = {k: float(v) for k, v in read_out.items()}


CLASSIFIER = register(Schema("KrotovHopfieldClassifier", 1,
                             "sparsedream_fast.krotov.classifier:KrotovHopfieldClassifier", dump, restore))
