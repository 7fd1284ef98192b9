"""Checkpoints of every model: one ``.npz`` file, written atomically, read without pickles.

``save(model, path)`` writes any of the library's models, ``load(path)`` opens any of them
by the format tag the file carries (``sdf.load`` is this function; ``Model.load`` and
``model.save`` call these two).

A file holds plain arrays only (strings as 0-d unicode arrays):

``format``   ``"sparsedream_fast.<Model>/<version>"``
``params``   JSON of the constructor parameters, ``get_params()`` (see ``_params.py`` for
             how arrays, sparse matrices, tuples and specifications are written)
``state``    JSON of the fitted scalars: whether the model is fitted, counters (steps,
             learning waves, ...), the random generator's state, the backend that ran
``params.*`` arrays among the parameters (an init array, a lateral matrix)
(others)     the fitted arrays of the model (weights, trace, lateral operator, ...), per
             model: see its schema module (``_sparsedream.py``, ``_batch.py``, ``_classifier.py``,
             ``_tnn.py``); a model inside a model (a classifier's features) is a whole
             checkpoint under its key and ``/``

Loading checks every key before any model or kernel sees it: presence, dtype, shape against
the saved configuration, index ranges (CSR ``indptr`` nondecreasing from 0 to nnz,
``indices`` in [0, N)), finiteness and counters (no negative step or wave counts); the
parameters pass the model's own validation. Anything wrong raises :class:`CheckpointError`
(a ValueError) naming the file and the key. Files written by older versions of the format
load through an upgrade reader (SparseDream/1 and TNNNetwork/1, written before this module).

A new model joins by :func:`register` with a :class:`Schema` (say how to dump its fitted
state to arrays and JSON, and how to restore and check it).
"""
from __future__ import annotations

import inspect
import json
import os
import re
from dataclasses import dataclass, field
from typing import Callable, TypeVar

import numpy as np
from sklearn.base import BaseEstimator

from ._fields import Contents, generator, generator_state, integer
from ._io import CheckpointError, NpzReader, write_npz
from ._params import decode_params, encode_params, register_type, resolve

__all__ = ["save", "load", "info", "register", "read_model", "model_arrays", "has_schema", "CheckpointMixin",
           "register_type", "Schema", "CheckpointError",
           "Contents", "generator", "generator_state", "integer", "PREFIX"]

#: every format tag starts with this
PREFIX = "sparsedream_fast."
_TAG = re.compile(r"^sparsedream_fast\.([A-Za-z_][A-Za-z0-9_]*)/([0-9]{1,4})$")


@dataclass(frozen=True)
class Schema:
    """How one model class is written to and read from a checkpoint.

    Attributes
    ----------
    name : str
        The model's name in the format tag (``"SparseDream"``).
    version : int
        The format version written now.
    cls : str
        ``"module:QualName"`` of the model class (named, not imported: this package imports
        no model module, the models import it).
    dump : callable(model) -> (dict, dict)
        The fitted state: ``(state, arrays)``, JSON-able scalars and numpy arrays;
        ``state["fitted"]`` says whether there is any.
    restore : callable(model, state, contents) -> None
        Check the fitted arrays of ``contents`` against the freshly constructed ``model``'s
        configuration and install them (only called when ``state["fitted"]``).
    upgrades : dict of int -> callable(contents) -> (params, state)
        Readers of older versions: the decoded parameters and the state, as the current
        version would hold them (the arrays are then read by ``restore``).
    """

    name: str
    version: int
    cls: str
    dump: Callable
    restore: Callable
    upgrades: dict = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """The format tag written now."""
        return f"{PREFIX}{self.name}/{self.version}"


_SCHEMAS: dict = {}


def register(schema: Schema) -> Schema:
    """Make ``save`` and ``load`` handle ``schema.cls`` (a later registration of the same
    name replaces the earlier one). Returns the schema."""
    _SCHEMAS[schema.name] = schema
    return schema


def _schema_of(model) -> Schema:
    paths = {f"{c.__module__}:{c.__qualname__}" for c in type(model).__mro__}
    for s in _SCHEMAS.values():
        if s.cls in paths:
            return s
    raise TypeError(f"{type(model).__name__} has no checkpoint format; models with one: "
                    f"{sorted(_SCHEMAS)}")


def _npz_path(path) -> str:
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"a checkpoint path must be a str or os.PathLike, got {type(path).__name__}")
    return path if path.endswith(".npz") else path + ".npz"


def save(model: BaseEstimator, path: str | os.PathLike) -> str:
    """Write ``model`` (fitted or not) to ``path``, atomically.

    Parameters
    ----------
    model : SparseDream, DreamComp, KrotovHopfield, KrotovHopfieldClassifier, TNNNetwork, TNNColumn
    path : str or os.PathLike
        ``.npz`` is appended when missing.

    Returns
    -------
    str : the path written

    Raises
    ------
    TypeError
        A parameter has no checkpoint form (a callable, say); nothing is written.
    OSError
        The file cannot be written; an existing file at ``path`` is left as it was.
    """
    path = _npz_path(path)
    write_npz(path, model_arrays(model))
    return path


def model_arrays(model: BaseEstimator) -> dict:
    """Every key of ``model``'s checkpoint (``format``, ``params``, ``state`` and the arrays),
    as :func:`save` writes them; a model among the parameters or fitted attributes (the
    features of a KrotovHopfieldClassifier) is held under ``<its key>/``."""
    schema = _schema_of(model)
    params, arrays = encode_params(model.get_params(deep=False))
    state, fitted = schema.dump(model)
    state = dict(state, library=_library_version())
    clash = set(arrays) & set(fitted)
    if clash or any(k in ("format", "params", "state") for k in fitted):
        raise AssertionError(f"schema {schema.name} reuses keys {sorted(clash)}")  # a schema bug
    out = {"format": np.array(schema.tag), "params": np.array(json.dumps(params)),
           "state": np.array(json.dumps(state))}
    out.update(arrays)
    out.update(fitted)
    return out


def has_schema(value: object) -> bool:
    """Whether ``value`` is a model with a checkpoint format."""
    try:
        _schema_of(value)
    except TypeError:
        return False
    return True


def _library_version() -> str:
    try:
        from importlib.metadata import version
        return version("sparsedream-fast")
    except Exception:  # a source tree without metadata
        return "unknown"


def _existing(path) -> str:
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"a checkpoint path must be a str or os.PathLike, got {type(path).__name__}")
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path += ".npz"
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    return path


def _format(contents: Contents, expect=None) -> tuple:
    what = f"{expect} " if expect else "sparsedream_fast "
    if "format" not in contents:
        raise contents.error("format", f"missing: not a {what}checkpoint") if contents.prefix else \
            CheckpointError(f"{contents.path} is not a {what}checkpoint (no 'format' key)")
    tag = contents.text("format")
    m = _TAG.match(tag)
    if m is None or m.group(1) not in _SCHEMAS:
        raise CheckpointError(f"{contents.path} is not a {what}checkpoint (format {tag[:80]!r})")
    schema, version = _SCHEMAS[m.group(1)], int(m.group(2))
    if version != schema.version and version not in schema.upgrades:
        known = sorted([schema.version, *schema.upgrades])
        raise CheckpointError(f"{contents.path}: {schema.name} checkpoint format version {version} is not "
                              f"one this library reads ({', '.join(map(str, known))})")
    return schema, version


def info(path: str | os.PathLike) -> dict:
    """What a checkpoint holds, without building the model.

    Returns
    -------
    dict with ``format`` (the tag), ``model`` (its name), ``version``, ``params`` (the
    constructor parameters, decoded and checked) and ``state`` (the JSON state).
    """
    path = _existing(path)
    with NpzReader(path) as reader:
        contents = Contents(reader)
        schema, version = _format(contents)
        params, state = _params_and_state(schema, version, contents)
    return {"format": f"{PREFIX}{schema.name}/{version}", "model": schema.name, "version": version,
            "params": params, "state": state}


def _params_and_state(schema, version, contents):
    if version != schema.version:
        return schema.upgrades[version](contents)
    params = decode_params(contents.json("params"), contents)
    state = contents.json("state")
    if not isinstance(state, dict) or not isinstance(state.get("fitted"), bool):
        raise contents.error("state", "must be a JSON object with a boolean 'fitted'")
    return params, state


def load(path: str | os.PathLike, backend: str | None = None, expect: type | None = None) -> BaseEstimator:
    """Read a model saved by :func:`save` (any model, by the file's format tag).

    Parameters
    ----------
    path : str or os.PathLike
        ``.npz`` is tried too when ``path`` does not exist.
    backend : str or None
        Replaces the saved ``backend`` parameter (of the model, and of the models inside it:
        a classifier's features).
    expect : type or None
        Refuse any other model than this class (or a base of it, then built as ``expect``).

    Returns
    -------
    The model, fitted when it was saved fitted; training continues exactly as the saved
    model's would (same weights, counters and generator state).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError (ValueError)
        The file is not a readable checkpoint (of ``expect``), naming the key at fault.
    """
    path = _existing(path)
    with NpzReader(path) as reader:
        return read_model(Contents(reader, backend=backend), expect)


#: models inside models (a classifier's features) a file may nest
_MAX_DEPTH = 4


def read_model(contents: Contents, expect: type | None = None) -> BaseEstimator:
    """The model whose keys ``contents`` holds, checked (see :func:`load`); ``contents.backend``
    replaces the saved backend of this model and of the models inside it."""
    if contents.depth > _MAX_DEPTH:
        raise contents.error("format", f"models nested more than {_MAX_DEPTH} deep")
    name = expect.__name__ if expect is not None else None
    schema, version = _format(contents, name)
    cls = resolve(schema.cls)
    if expect is not None:
        if not (isinstance(expect, type) and issubclass(expect, cls)):
            raise CheckpointError(f"{contents.path} is a {schema.name} checkpoint, not a {name} one")
        cls = expect
    params, state = _params_and_state(schema, version, contents)
    if contents.backend is not None and "backend" in _parameter_names(cls):
        params["backend"] = contents.backend
    model = _construct(cls, params, contents)
    if state.get("fitted"):
        schema.restore(model, state, contents)
    return model


def _parameter_names(cls) -> set:
    sig = inspect.signature(cls.__init__)
    return {p.name for p in sig.parameters.values() if p.name != "self" and p.kind not in (p.VAR_POSITIONAL,
                                                                                           p.VAR_KEYWORD)}


def _construct(cls, params: dict, contents: Contents):
    unknown = sorted(set(params) - _parameter_names(cls))
    if unknown:
        raise contents.error("params", f"parameters {unknown} are not parameters of {cls.__name__}")
    try:
        return cls(**params)
    except (ValueError, TypeError) as exc:
        raise contents.error("params", f"{cls.__name__}(**params) refused them: {exc}") from None


#: the class ``CheckpointMixin.load`` is called on (it returns an instance of that class)
_Model = TypeVar("_Model", bound="CheckpointMixin")


class CheckpointMixin:
    """``save`` and ``load`` for a model class with a registered :class:`Schema`."""

    def save(self, path: str | os.PathLike) -> str:
        """Write the model (fitted or not) to ``path`` (``.npz`` is appended when missing),
        atomically: an existing file is replaced only once the new one is complete.

        The file holds the constructor parameters and the whole fitted state (weights,
        counters, the generator's state), so that the loaded model predicts, and continues
        training, exactly as this one. Format (numpy ``.npz``, no pickles): see
        :mod:`sparsedream_fast.checkpoint`.

        Returns
        -------
        str : the path written
        """
        return save(self, path)

    @classmethod
    def load(cls: type[_Model], path: str | os.PathLike, backend: str | None = None) -> _Model:
        """Read a model written by ``save``; ``backend`` replaces the saved backend choice.

        Raises FileNotFoundError for a missing file and ValueError (``CheckpointError``)
        naming the key for anything that is not a valid checkpoint of this model; every
        array is checked before it is used.
        """
        return load(path, backend=backend, expect=cls)


from . import _batch, _classifier, _sparsedream, _tnn  # noqa: E402,F401  (register the library's models)
