"""Configuration of rule A (SparseDream online k-WTA), shared by every backend.

The dataclass is the Python mirror of the C++ ``RuleAConfig`` struct in
``csrc/sparsedream/rule_a.hpp``; the integer enums below are the values both use.
"""
from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field

import numpy as np

from .. import lateral as _lateral

__all__ = ["Competition", "Output", "SparseDreamConfig", "TrainState", "TRACE_DROP", "with_lateral"]

#: Trace entries whose magnitude falls below this fraction of the largest are set to 0
#: (docs/rules/sparsedream.md, step 5 allows it; every backend, the reference included, does it).
TRACE_DROP = 1e-12


class Competition(enum.IntEnum):
    """How the competition value ``c`` is formed from the drive ``p = W v``."""

    DRIVE = 0               #: c = p
    LATERAL = 1             #: c = p + L p
    NORMALIZED_LATERAL = 2  #: c = p + L q, q = p / rowsum(W)
    MEAN_LATERAL = 3        #: c = (3 q + L q) / 4
    WEIGHTED_AVERAGE = 4    #: c = W (v*v) / max(W v, prec)


class Output(enum.IntEnum):
    """Which value the winners carry as activity."""

    DRIVE = 0        #: a = mask * p
    COMPETITION = 1  #: a = mask * c


@dataclass(frozen=True)
class SparseDreamConfig:
    """Validated numeric configuration of one SparseDream model.

    Attributes
    ----------
    n_neurons, n_inputs : int
        N and D: the weights have shape (N, D).
    grid : tuple of int
        (rows, cols) with rows * cols == N; neuron n sits at (n // cols, n % cols).
    k : int
        Number of winners, 1 <= k <= N.
    lr : float
        Learning rate of the weights (> 0).
    competition, output : Competition, Output
    error_clip : float or None
        Clip the reconstruction error to [-error_clip, error_clip]; None: no clip.
    trace : float or None
        Trace rate alpha in (0, 1]; None: no trace.
    learn_lateral : bool
    clip_lateral : bool
        The bounds clip the lateral too (a learned lateral, or a fixed CSR lateral with
        entries outside [0, w_max], docs/rules/sparsedream.md, step 10). The lateral is then a CSR.
    lateral_lr : float
        Learning rate of a learned lateral (``lr`` when the user gave None).
    w_max : float or None
        Upper bound of the periodic clip (``inf`` for max(W, 0)); None: no bounds.
    clip_every : int
        Bounds are applied after steps 0, clip_every, 2 clip_every, ... of an epoch.
    prec : float
        Guard of every division.
    dtype : numpy.dtype
        float32 or float64.
    """

    n_neurons: int
    n_inputs: int
    grid: tuple
    k: int
    lr: float
    competition: Competition = Competition.LATERAL
    output: Output = Output.DRIVE
    error_clip: float | None = None
    trace: float | None = None
    learn_lateral: bool = False
    clip_lateral: bool = False
    lateral_lr: float = 0.0
    w_max: float | None = None
    clip_every: int = 100
    prec: float = 1e-10
    dtype: np.dtype = field(default=np.dtype(np.float32))

    @property
    def uses_rowsum(self) -> bool:
        """True when the competition divides by the row sums of W."""
        return self.competition in (Competition.NORMALIZED_LATERAL, Competition.MEAN_LATERAL)

    @property
    def has_bounds(self) -> bool:
        """True when W (and a learned L) are clipped every ``clip_every`` steps."""
        return self.w_max is not None

    def native_dict(self) -> dict:
        """Plain scalars for the native backends (None encoded as flags)."""
        return dict(
            n_neurons=int(self.n_neurons),
            n_inputs=int(self.n_inputs),
            grid_rows=int(self.grid[0]),
            grid_cols=int(self.grid[1]),
            k=int(self.k),
            lr=float(self.lr),
            competition=int(self.competition),
            output=int(self.output),
            use_error_clip=self.error_clip is not None,
            error_clip=float(self.error_clip) if self.error_clip is not None else math.inf,
            use_trace=self.trace is not None,
            trace_alpha=float(self.trace) if self.trace is not None else 1.0,
            learn_lateral=bool(self.learn_lateral),
            clip_lateral=bool(self.clip_lateral),
            lateral_lr=float(self.lateral_lr),
            use_bounds=self.w_max is not None,
            w_max=float(self.w_max) if self.w_max is not None else math.inf,
            clip_every=int(self.clip_every),
            prec=float(self.prec),
            trace_drop=TRACE_DROP,
        )


@dataclass
class TrainState:
    """The mutable state a backend's ``fit`` advances in place.

    Attributes
    ----------
    W : ndarray of shape (N, D), C-contiguous, config dtype
    lateral : Stencil, CSR or None
        A learned lateral is always a ``CSR`` whose ``data`` is updated in place.
    trace : ndarray of shape (N,), config dtype
        The trace ``o`` (zeros when the model has no trace).
    """

    W: np.ndarray
    lateral: object
    trace: np.ndarray


def with_lateral(cfg: SparseDreamConfig, lat):
    """``(cfg, lat)`` with ``cfg.clip_lateral`` set from the operator in use, and the operator
    stored as a CSR where the config needs one.

    The bounds clip the lateral when it is learned, or when it is fixed but has entries
    outside [0, w_max] (docs/rules/sparsedream.md, step 10); a learned or clipped lateral must be a CSR.
    """
    clip = cfg.has_bounds and lat is not None and (cfg.learn_lateral or _lateral.needs_clip(lat, cfg.w_max))
    if lat is not None and lat.kind == "stencil" and (clip or cfg.learn_lateral):
        lat = lat.to_csr()
    return dataclasses.replace(cfg, clip_lateral=bool(clip)), lat
