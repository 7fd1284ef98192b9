"""Parameters of the TNN columns (rule D): the STDP probabilities and a column's settings."""
from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, fields

import numpy as np

from .._validation import check_float, check_int

__all__ = ["STDP", "ColumnSpec", "WEIGHT_DTYPES", "check_T", "check_weight_dtype"]

#: integer dtypes the weights may be stored in (uint8 needs w_max <= 255)
WEIGHT_DTYPES = ("int32", "uint8")


@dataclass(frozen=True)
class STDP:
    """The probabilities of the stochastic STDP rule (docs/rules/tnn.md).

    Per synapse and wave, with input time x and output time y (after k-WTA):
    both spiked and ``x <= y``: +1 with probability ``capture * F+``; both spiked and
    ``x > y``: -1 with ``minus * F-``; input only: +1 with ``search * F+``; neuron only: -1
    with ``backoff * F-``. ``F+`` is Bernoulli(f (2 - f)), ``F-`` Bernoulli((1 - f)(1 + f)),
    f = w / w_max, each OR-ed with Bernoulli(``u_min``).

    The defaults are seed 004's column values (u_capture = u_minus = 20/128, u_search = 2/128,
    u_backoff = 96/128, u_min = 4/128).
    """

    capture: float = 20 / 128
    minus: float = 20 / 128
    search: float = 2 / 128
    backoff: float = 96 / 128
    u_min: float = 4 / 128

    def __post_init__(self):
        for f in fields(self):
            v = check_float(getattr(self, f.name), f"STDP {f.name} (a probability)", nonnegative=True, upper=1.0)
            object.__setattr__(self, f.name, v)

    def as_array(self) -> np.ndarray:
        """(capture, minus, search, backoff, u_min) as float64, the order the kernels take."""
        return np.array([self.capture, self.minus, self.search, self.backoff, self.u_min])

    @classmethod
    def coerce(cls, value: STDP | dict | None) -> "STDP":
        """An STDP from an STDP, a dict of its fields (notebook names like ``ucapture`` too), or None."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            alias = {"ucapture": "capture", "u_capture": "capture", "uminus": "minus", "u_minus": "minus",
                     "usearch": "search", "u_search": "search", "ubackoff": "backoff",
                     "u_backoff": "backoff", "umin": "u_min"}
            kw = {}
            for key, v in value.items():
                if key == "maxweight":  # the notebook kept w_max in the same dict; it is a column setting
                    continue
                name = alias.get(key, key)
                if name not in {f.name for f in fields(cls)}:
                    raise ValueError(f"unknown STDP parameter {key!r}; known: capture, minus, search, "
                                     "backoff, u_min (or the notebook's ucapture, uminus, ...)")
                kw[name] = v
            return cls(**kw)
        raise TypeError(f"stdp must be an STDP, a dict or None, got {type(value).__name__}")

    def to_dict(self) -> dict:
        """The five probabilities by field name (JSON-able)."""
        return asdict(self)


def check_T(T) -> int:
    """Steps per wave: an int in [1, 255] (spike times are stored as uint8, T meaning none)."""
    return check_int(T, "T", 1, 255)


def check_weight_dtype(dtype) -> np.dtype:
    """The weights' integer dtype (one of WEIGHT_DTYPES), else ValueError."""
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in WEIGHT_DTYPES:
        raise ValueError(f"TNN weights are integers: dtype must be one of {WEIGHT_DTYPES}, got {dtype!r}")
    return np.dtype(name)


@dataclass(frozen=True)
class ColumnSpec:
    """One column's settings, checked.

    Attributes
    ----------
    n_neurons : int
    threshold : int
        theta >= 1: the neuron fires at the first step its potential reaches it.
    k : int
        Winners of the k-WTA, 1 <= k <= n_neurons.
    w_max : int
        Weights are integers in [0, w_max].
    stdp : STDP
    """

    n_neurons: int
    threshold: int
    k: int
    w_max: int
    stdp: STDP

    @classmethod
    def make(cls, n_neurons, threshold, k, w_max, stdp, dtype=np.dtype("int32")) -> "ColumnSpec":
        """Check the settings (clear errors for threshold < 1, k > n_neurons, w_max beyond the
        dtype) and build the spec."""
        n = check_int(n_neurons, "n_neurons", 1)
        if isinstance(threshold, numbers.Real) and not isinstance(threshold, bool) and threshold < 1:
            raise ValueError(f"threshold must be >= 1 (a neuron with theta <= 0 fires with no input), "
                             f"got {threshold}")
        theta = check_int(threshold, "threshold", 1, 2**63 - 1)   # the kernels hold it in an int64
        if isinstance(k, numbers.Integral) and not isinstance(k, bool) and k > n:
            raise ValueError(f"k={k} winners is more than the column's n_neurons={n}")
        kk = check_int(k, "k", 1, n)
        hi = 255 if np.dtype(dtype) == np.uint8 else 2**20
        wm = check_int(w_max, "w_max", 1, hi)
        return cls(n, theta, kk, wm, STDP.coerce(stdp))
