"""sparsedream_fast: compiled kernels for competitive Hebbian learning.

Rules (``../shared/ALGORITHMS.md``): SparseDream online k-WTA (``SparseDream``).
Backends: ``numpy`` (reference), ``cpp`` (C++ extension), ``numba``, ``cuda``
(see ``backends()``).
"""
from . import lateral, ops
from ._backends import BackendInfo, backends
from .sparsedream.model import SparseDream

__version__ = "0.1.0"
__all__ = ["SparseDream", "backends", "BackendInfo", "lateral", "ops", "__version__"]
