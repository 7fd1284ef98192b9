"""The checks a checkpoint's contents pass before any model or kernel sees them.

Every function raises :class:`CheckpointError` (a ValueError) naming the file and the key.
"""
from __future__ import annotations

import json
import numbers
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from ._io import CheckpointError, NpzReader

__all__ = ["Contents", "json_value", "integer", "generator", "generator_state"]


class Contents:
    """A checkpoint being read: the archive and the checks of its keys.

    Parameters
    ----------
    reader : NpzReader
    """

    def __init__(self, reader: NpzReader, prefix: str = "", backend: str | None = None, depth: int = 0):
        self.reader = reader
        self.path = reader.path
        self.prefix = prefix
        self.backend = backend
        self.depth = depth

    def sub(self, prefix: str) -> "Contents":
        """The contents of a model saved inside this one, under the keys ``prefix/...``."""
        return Contents(self.reader, f"{self.prefix}{prefix}/", self.backend, self.depth + 1)

    def keys(self) -> list:
        """The keys held under this prefix."""
        n = len(self.prefix)
        return [k[n:] for k in self.reader.keys() if k.startswith(self.prefix)]

    def error(self, key: str, msg: str) -> CheckpointError:
        """The error for a bad ``key``."""
        return CheckpointError(f"{self.path}: checkpoint key {self.prefix + key!r}: {msg}")

    def __contains__(self, key) -> bool:
        return self.prefix + key in self.reader

    def array(self, key: str, dtype: DTypeLike | None = None, shape: tuple[int | None, ...] | None = None,
              kind: str | None = None, finite: bool = True, low: float | None = None,
              high: float | None = None) -> np.ndarray:
        """The array ``key``, checked.

        Parameters
        ----------
        dtype : numpy dtype or None
            The exact dtype wanted (byte order aside).
        shape : tuple of (int or None) or None
            The shape wanted; None entries take any length.
        kind : str or None
            numpy kind letters allowed (``"iu"`` integers, ``"f"`` floats, ...).
        finite : bool
            Refuse NaN and inf (floating arrays).
        low, high : number or None
            Every entry must lie in [low, high].
        """
        got_shape, got_dtype = self.reader.header(self.prefix + key)
        if got_dtype.hasobject:
            raise self.error(key, f"dtype {got_dtype} would need pickle; checkpoints never unpickle")
        if dtype is not None and got_dtype.newbyteorder("=") != np.dtype(dtype):
            raise self.error(key, f"must have dtype {np.dtype(dtype).name}, got {got_dtype}")
        if kind is not None and got_dtype.kind not in kind:
            raise self.error(key, f"must have a dtype of kind {kind!r}, got {got_dtype}")
        if shape is not None:
            want = tuple(shape)
            if len(got_shape) != len(want) or any(w is not None and w != g for w, g in zip(want, got_shape)):
                shown = "(" + ", ".join("any" if w is None else str(w) for w in want) + (",)" if len(want) == 1
                                                                                          else ")")
                raise self.error(key, f"must have shape {shown}, got {got_shape}")
        a = self.reader.array(self.prefix + key)
        if a.dtype.kind not in "biufU":
            raise self.error(key, f"dtype {a.dtype} is not a numeric or text array")
        if finite and a.dtype.kind == "f" and not np.isfinite(a).all():
            raise self.error(key, "contains NaN or inf")
        if a.size and a.dtype.kind in "biuf":
            if low is not None and a.min() < low:
                raise self.error(key, f"entries must be >= {low}, got {a.min()}")
            if high is not None and a.max() > high:
                raise self.error(key, f"entries must be <= {high}, got {a.max()}")
        return a

    def text(self, key: str) -> str:
        """A string stored as a 0-d unicode array."""
        return str(self.array(key, shape=(), kind="U", finite=False)[()])

    def json(self, key: str) -> Any:
        """A JSON document stored as text."""
        return json_value(self.text(key), key, self)


def json_value(s: str, key, contents: Contents):
    """``json.loads(s)``, any failure (deep nesting too) as an error naming ``key``."""
    try:
        return json.loads(s)
    except (ValueError, RecursionError) as exc:
        raise contents.error(key, f"is not valid JSON ({type(exc).__name__}: {str(exc)[:80]})") from None


def integer(doc: dict, name: str, key: str, contents: Contents, low: int | None = None, high: int | None = None) -> int:
    """``doc[name]``: a JSON integer (not a bool) in [low, high]."""
    if not isinstance(doc, dict) or name not in doc:
        raise contents.error(key, f"has no {name!r}")
    v = doc[name]
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise contents.error(key, f"{name} must be an integer, got {v!r:.40}")
    if (low is not None and v < low) or (high is not None and v > high):
        raise contents.error(key, f"{name} must lie in [{low}, {high}], got {v}")
    return int(v)


def generator(doc: object, key: str, contents: Contents) -> np.random.Generator:
    """A ``numpy.random.Generator`` (PCG64) from the state saved by ``bit_generator.state``."""
    if not isinstance(doc, dict) or doc.get("bit_generator") != "PCG64":
        raise contents.error(key, "must be the state of a PCG64 generator")
    inner = doc.get("state")
    if not isinstance(inner, dict):
        raise contents.error(key, "has no PCG64 state")
    for name in ("state", "inc"):
        integer(inner, name, key, contents, 0, 2**128 - 1)
    integer(doc, "has_uint32", key, contents, 0, 1)
    integer(doc, "uinteger", key, contents, 0, 2**32 - 1)
    bits = np.random.PCG64()
    try:
        bits.state = {"bit_generator": "PCG64", "state": {"state": inner["state"], "inc": inner["inc"]},
                      "has_uint32": doc["has_uint32"], "uinteger": doc["uinteger"]}
    except (ValueError, TypeError, OverflowError) as exc:
        raise contents.error(key, f"is not a valid generator state ({exc})") from None
    return np.random.Generator(bits)


def generator_state(rng: np.random.Generator) -> dict:
    """The JSON-able state of ``rng`` (its bit generator must be PCG64, as default_rng's)."""
    state = rng.bit_generator.state
    if state.get("bit_generator") != "PCG64":
        raise TypeError(f"checkpoints store PCG64 generators, got {state.get('bit_generator')!r}")
    return state
