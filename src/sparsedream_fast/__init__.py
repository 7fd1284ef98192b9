"""sparsedream_fast: compiled kernels for competitive Hebbian learning.

Rules, each stated exactly in the documentation (``docs/rules/``): SparseDream online k-WTA
(``SparseDream``, rule A), DreamComp batch 1-WTA with label synapses (``DreamComp``, rule B),
Krotov-Hopfield competing hidden units (``KrotovHopfield``, rule C; with the paper's supervised
top layer: ``KrotovHopfieldClassifier``), temporal neural network
columns with STDP (``TNNColumn``, ``TNNNetwork``, rule D; module ``tnn``).
Backends: ``numpy`` (reference), ``cpp`` (C++ extension), ``numba``, ``cuda``
(see ``backends()``).
"""
from importlib.metadata import PackageNotFoundError as _NotInstalled
from importlib.metadata import version as _version

from . import _build
from . import checkpoint, lateral, metrics, ops, plot, sweep, tnn
from ._backends import BackendInfo, backends
from ._runtime import DivergenceError
from .dreamcomp.model import DreamComp
from .krotov.classifier import KrotovHopfieldClassifier
from .krotov.model import KrotovHopfield
from .sparsedream.model import SparseDream
from .tnn import TNNColumn, TNNNetwork

load = checkpoint.load

try:  # defined once, in pyproject.toml; the installed metadata carries it
    __version__ = _version("sparsedream-fast")
except _NotInstalled:  # a source tree imported without installing it
    __version__ = "0+unknown"
_build.check_compiled_modules()
__all__ = ["SparseDream", "DreamComp", "KrotovHopfield", "KrotovHopfieldClassifier", "TNNColumn", "TNNNetwork",
           "tnn", "backends", "BackendInfo", "DivergenceError", "checkpoint", "load", "lateral", "metrics", "ops",
           "plot", "sweep", "__version__"]
