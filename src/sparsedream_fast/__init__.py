"""sparsedream_fast: compiled kernels for competitive Hebbian learning.

Rules, each stated exactly in the documentation (``docs/rules/``): SparseDream online k-WTA
(``SparseDream``, rule A), DreamComp batch 1-WTA with label synapses (``DreamComp``, rule B),
Krotov-Hopfield competing hidden units (``KrotovHopfield``, rule C; with the paper's supervised
top layer: ``KrotovHopfieldClassifier``), temporal neural network
columns with STDP (``TNNColumn``, ``TNNNetwork``, rule D; module ``tnn``).
Backends: ``numpy`` (reference), ``cpp`` (C++ extension), ``numba``, ``cuda``
(see ``backends()``).
"""
from . import lateral, metrics, ops, plot, tnn
from ._backends import BackendInfo, backends
from .dreamcomp.model import DreamComp
from .krotov.classifier import KrotovHopfieldClassifier
from .krotov.model import KrotovHopfield
from .sparsedream.model import SparseDream
from .tnn import TNNColumn, TNNNetwork

__version__ = "0.1.0"
__all__ = ["SparseDream", "DreamComp", "KrotovHopfield", "KrotovHopfieldClassifier", "TNNColumn", "TNNNetwork",
           "tnn", "backends", "BackendInfo", "lateral", "metrics", "ops", "plot", "__version__"]
