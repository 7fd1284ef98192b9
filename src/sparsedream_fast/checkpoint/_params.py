"""Constructor parameters (``get_params()``) as JSON plus arrays, and back.

Plain values (None, bool, int, float, str, list) are JSON as they are; the rest is tagged:

``{"__tuple__": [...]}``                  a tuple
``{"__dict__": {...}}``                   a dict with string keys
``{"__dtype__": "float32"}``              a numpy dtype or scalar type
``{"__array__": KEY}``                    an ndarray, stored under KEY
``{"__sparse__": KEY, "shape": [r, c]}``  a scipy.sparse matrix, as CSR arrays KEY.indptr,
                                          KEY.indices, KEY.data
``{"__object__": NAME, "fields": {...}}`` an object of a registered type (the lateral specs,
                                          the TNN structure, scikit-learn's FrozenEstimator,
                                          ...), rebuilt by its checking factory from its fields
``{"__strings__": KEY}``                  an object array of str (feature names), stored as a
                                          text array under KEY
``{"__model__": KEY}``                    a model with a checkpoint format of its own (a
                                          classifier's features), its whole checkpoint stored
                                          under the keys ``KEY/format``, ``KEY/params``, ...

numpy scalars are stored as the Python numbers they equal. Any other value raises TypeError
naming the parameter, before anything is written.
"""
from __future__ import annotations

import dataclasses
import importlib
import numbers
from typing import Callable

import numpy as np
import scipy.sparse as sp

from .. import lateral as _lateral

__all__ = ["encode_params", "decode_params", "encode_values", "decode_values", "register_type", "resolve"]

#: NAME -> ("module:Class", fields of an instance, "module:factory" from the fields); the
#: classes are named, not imported, so that this module imports no model module
_TYPES: dict = {}


def register_type(name: str, cls: str, fields: Callable[[object], dict] | None = None,
                  factory: str | None = None) -> None:
    """Let parameters of the class ``cls`` be saved as ``{"__object__": name, "fields": ...}``.

    Parameters
    ----------
    name : str
        Stored in the file; never change it for a type once files exist.
    cls : str
        ``"module:QualName"`` of the class.
    fields : callable(obj) -> dict or None
        The values that rebuild ``obj`` (default: a dataclass's fields).
    factory : str or None
        ``"module:function"`` that rebuilds (and checks) an instance from the fields
        (default: the class itself).
    """
    if fields is None:
        def fields(obj):
            return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    _TYPES[name] = (cls, fields, factory or cls)


def resolve(path: str):
    """The object named ``"module:QualName"``."""
    module, _, qual = path.partition(":")
    obj = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def _type_path(value) -> str:
    t = type(value)
    return f"{t.__module__}:{t.__qualname__}"


register_type("lateral.Box", "sparsedream_fast.lateral:Box", factory="sparsedream_fast.lateral:box")
register_type("lateral.NormalizedBox", "sparsedream_fast.lateral:NormalizedBox",
              factory="sparsedream_fast.lateral:normalized_box")
register_type("lateral.StencilSpec", "sparsedream_fast.lateral:StencilSpec", factory="sparsedream_fast.lateral:stencil")
register_type("lateral.RandomLateral", "sparsedream_fast.lateral:RandomLateral",
              factory="sparsedream_fast.lateral:random")
register_type("tnn.STDP", "sparsedream_fast.tnn.config:STDP")
register_type("sklearn.FrozenEstimator", "sklearn.frozen._frozen:FrozenEstimator",
              fields=lambda f: {"estimator": f.estimator}, factory="sklearn.frozen:FrozenEstimator")


def _encode(value, key: str, arrays: dict):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, list):
        return [_encode(v, f"{key}.{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{key}.{i}", arrays) for i, v in enumerate(value)]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"cannot save parameter {key}: a dict with non-string keys")
        return {"__dict__": {k: _encode(v, f"{key}.{k}", arrays) for k, v in value.items()}}
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return {"__dtype__": np.dtype(value).name}
    if sp.issparse(value):
        _lateral.check_sparse(value)
        m = sp.csr_array(value, copy=True)
        m.sum_duplicates()
        arrays[f"{key}.indptr"] = np.ascontiguousarray(m.indptr, np.int64)
        arrays[f"{key}.indices"] = np.ascontiguousarray(m.indices, np.int64)
        arrays[f"{key}.data"] = np.ascontiguousarray(m.data)
        return {"__sparse__": key, "shape": [int(s) for s in m.shape]}
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O" and all(isinstance(v, str) for v in value.flat):
            arrays[key] = np.asarray(value, dtype=str)
            return {"__strings__": key}
        if value.dtype.kind not in "biufU":
            raise TypeError(f"cannot save parameter {key}: an array of dtype {value.dtype} (numbers or text only)")
        arrays[key] = np.ascontiguousarray(value)
        return {"__array__": key}
    from . import has_schema, model_arrays   # (the package imports this module first)
    if has_schema(value):
        arrays.update({f"{key}/{k}": a for k, a in model_arrays(value).items()})
        return {"__model__": key}
    for name, (cls, fields, _) in _TYPES.items():
        if _type_path(value) == cls:
            return {"__object__": name, "fields": _encode(fields(value), key, arrays)["__dict__"]}
    raise TypeError(f"cannot save parameter {key}={value!r:.60}: a {type(value).__name__} has no checkpoint "
                    "form (numbers, strings, tuples, lists, dicts, arrays, scipy.sparse matrices and the "
                    "library's own specifications do)")


def encode_values(values: dict, prefix: str = "params") -> tuple:
    """``(JSON-able dict, arrays)`` of named values (``get_params()``, fitted attributes);
    array keys start with ``prefix.``."""
    arrays: dict = {}
    doc = {name: _encode(v, f"{prefix}.{name}", arrays) for name, v in values.items()}
    return doc, arrays


def encode_params(params: dict) -> tuple:
    """``(JSON-able dict, arrays)`` of ``get_params()``; array keys start with ``params.``."""
    return encode_values(params, "params")


def _decode(doc, key: str, contents, field: str = "params"):
    if doc is None or isinstance(doc, (bool, str, int, float)):
        return doc
    if isinstance(doc, list):
        return [_decode(v, key, contents, field) for v in doc]
    if not isinstance(doc, dict) or len(doc) not in (1, 2):
        raise contents.error(field, f"{key}: not a saved value ({doc!r:.60})")
    tag = next(iter(doc))
    body = doc[tag]
    if tag == "__tuple__" and isinstance(body, list) and len(doc) == 1:
        return tuple(_decode(v, key, contents, field) for v in body)
    if tag == "__dict__" and isinstance(body, dict) and len(doc) == 1:
        return {k: _decode(v, f"{key}.{k}", contents, field) for k, v in body.items()}
    if tag == "__dtype__" and isinstance(body, str) and len(doc) == 1:
        try:
            return np.dtype(body)
        except TypeError:
            raise contents.error(field, f"{key}: unknown dtype {body!r:.40}") from None
    if tag == "__array__" and isinstance(body, str) and body.startswith(field + ".") and len(doc) == 1:
        return contents.array(body, kind="biufU")
    if tag == "__strings__" and isinstance(body, str) and body.startswith(field + ".") and len(doc) == 1:
        return contents.array(body, kind="U").astype(object)
    if tag == "__model__" and isinstance(body, str) and body.startswith(field + ".") and len(doc) == 1:
        from . import read_model
        return read_model(contents.sub(body))
    if tag == "__sparse__" and isinstance(body, str) and body.startswith(field + ".") and len(doc) == 2:
        shape = doc.get("shape")
        if not (isinstance(shape, list) and len(shape) == 2 and all(
                isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**31 for s in shape)):
            raise contents.error(field, f"{key}: a sparse matrix needs a shape of two sizes, got {shape!r:.40}")
        indptr = contents.array(f"{body}.indptr", kind="iu", shape=(shape[0] + 1,))
        indices = contents.array(f"{body}.indices", kind="iu", shape=(None,))
        data = contents.array(f"{body}.data", kind="biuf", shape=(None,))
        try:
            _lateral.check_csr(indptr, indices, data, shape[0], shape[1],
                               (f"{body}.indptr", f"{body}.indices", f"{body}.data"))
        except (ValueError, TypeError) as exc:
            raise contents.error(f"{body}", str(exc)) from None
        return sp.csr_array((data, indices, indptr), shape=tuple(shape))
    if tag == "__object__" and isinstance(body, str) and len(doc) == 2 and isinstance(doc.get("fields"), dict):
        if body not in _TYPES:
            raise contents.error(field, f"{key}: unknown saved type {body!r:.40}")
        fields = {k: _decode(v, f"{key}.{k}", contents, field) for k, v in doc["fields"].items()}
        try:
            return resolve(_TYPES[body][2])(**fields)
        except (ValueError, TypeError) as exc:
            raise contents.error(field, f"{key}: {exc}") from None
    raise contents.error(field, f"{key}: not a saved value ({doc!r:.60})")


def decode_values(doc, contents, field: str = "params") -> dict:
    """The values saved by :func:`encode_values` with prefix ``field`` (arrays read from
    ``contents``); errors name ``field``."""
    if not isinstance(doc, dict):
        raise contents.error(field, "must be a JSON object of names")
    return {name: _decode(v, f"{field}.{name}", contents, field) for name, v in doc.items()}


def decode_params(doc, contents) -> dict:
    """The parameters saved by :func:`encode_params` (arrays read from ``contents``)."""
    return decode_values(doc, contents, "params")
