"""Which backends exist on this machine, and why the others do not.

Backends: ``numpy`` (the reference, always there), ``cpp`` (the compiled extension
``sparsedream_fast._core``), ``numba`` (JIT-compiled CPU kernels), ``cuda`` (the optional
compiled module ``sparsedream_fast._cuda`` plus a visible GPU). Rules implemented by only
some backends resolve through :func:`rule_module` (DreamComp and KrotovHopfield: their cpp
kernels take scipy's BLAS at run time, see ``_blas.py``; their cuda kernels cuBLAS, see
``_gpu_gemm.py``).
"""
from __future__ import annotations

import importlib
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["BackendInfo", "backends", "available", "resolve_backend", "rule_module", "cuda_module",
           "NAMES"]

NAMES = ("numpy", "cpp", "numba", "cuda")
#: Preference of ``backend="auto"`` among the usable ones.
AUTO_ORDER = ("cpp", "numba", "numpy")


@dataclass(frozen=True)
class BackendInfo:
    """Availability of one backend.

    Attributes
    ----------
    name : str
    available : bool
    reason : str
        Why it is not available, or a short description of what runs when it is.
    """

    name: str
    available: bool
    reason: str

    def __str__(self) -> str:
        mark = "yes" if self.available else "no "
        return f"{self.name:6s} {mark}  {self.reason}"


def _probe_cpp() -> BackendInfo:
    try:
        core = importlib.import_module("sparsedream_fast._core")
    except ImportError as exc:
        from ._build import built_modules
        if "_core" in built_modules():
            return BackendInfo("cpp", False, "the compiled extension sparsedream_fast._core was built but "
                               f"cannot be loaded (a broken installation; reinstall it): {exc}")
        return BackendInfo("cpp", False, "the compiled extension sparsedream_fast._core is not "
                           f"installed (built with SPARSEDREAM_CPP=OFF, or a source checkout "
                           f"without `pip install .`): {exc}")
    return BackendInfo("cpp", True, core.build_info())


def _probe_numba() -> BackendInfo:
    try:
        numba = importlib.import_module("numba")
        importlib.import_module("sparsedream_fast.sparsedream._numba")
    except ImportError as exc:
        return BackendInfo("numba", False, f"numba is not importable: {exc} (pip install numba)")
    return BackendInfo("numba", True, f"numba {numba.__version__}, {numba.config.NUMBA_NUM_THREADS} threads")


#: The compiled module behind backend="cuda"; only :func:`cuda_emulator` changes it.
_CUDA_MODULE = "sparsedream_fast._cuda"


def cuda_module():
    """The compiled module that runs ``backend="cuda"``: ``sparsedream_fast._cuda``, or its
    CPU emulation ``_cuda_emu`` inside :func:`cuda_emulator`. Raises ImportError when absent."""
    return importlib.import_module(_CUDA_MODULE)


@contextmanager
def cuda_emulator():
    """Test aid: inside this context ``backend="cuda"`` runs the CUDA kernels' own sources on
    the CPU emulator ``sparsedream_fast._cuda_emu`` (csrc/cuda/emu: every GPU thread a fiber,
    slow), so that tests check the kernels on a machine without a GPU. Not for real work.

    Raises ImportError when the emulator module was not built (SPARSEDREAM_CUDA_EMULATOR=OFF).
    """
    global _CUDA_MODULE
    importlib.import_module("sparsedream_fast._cuda_emu")
    saved = _CUDA_MODULE
    _CUDA_MODULE = "sparsedream_fast._cuda_emu"
    _probe.cache_clear()
    try:
        yield
    finally:
        _CUDA_MODULE = saved
        _probe.cache_clear()


def _probe_cuda() -> BackendInfo:
    try:
        cuda = cuda_module()
    except ImportError as exc:
        return BackendInfo("cuda", False, "the CUDA module sparsedream_fast._cuda was not built "
                           f"(no CUDA compiler at build time, or SPARSEDREAM_CUDA=OFF): {exc}")
    try:
        n = cuda.device_count()
    except Exception as exc:  # a broken driver must not break import
        return BackendInfo("cuda", False, f"CUDA module built, but the driver failed: {exc}")
    if n == 0:
        return BackendInfo("cuda", False, "CUDA module built, but no CUDA GPU is visible")
    if cuda.emulated:
        return BackendInfo("cuda", True, "CPU emulator of the CUDA kernels (sparsedream_fast._cuda_emu, "
                           "tests only)")
    return BackendInfo("cuda", True, f"{n} GPU(s) visible ({cuda.device_name(0)}); CUDA kernels: "
                       "SparseDream (rule A), DreamComp (B), KrotovHopfield (C), TNN columns (D)")


@lru_cache(maxsize=None)
def _probe(name: str) -> BackendInfo:
    if name == "numpy":
        import numpy
        return BackendInfo("numpy", True, f"numpy {numpy.__version__} reference (the specification)")
    return {"cpp": _probe_cpp, "numba": _probe_numba, "cuda": _probe_cuda}[name]()


def backends() -> dict:
    """Every backend and whether it is usable here.

    Returns
    -------
    dict of str -> BackendInfo
        Keys ``numpy``, ``cpp``, ``numba``, ``cuda``; ``info.reason`` says why one is not usable.

    Examples
    --------
    >>> import sparsedream_fast as sdf
    >>> for info in sdf.backends().values():
    ...     print(info)                                  # doctest: +SKIP
    """
    return {name: _probe(name) for name in NAMES}


def available(name: str) -> bool:
    """True when the backend ``name`` is usable here."""
    return name in NAMES and _probe(name).available


def resolve_backend(name) -> str:
    """Check a backend request and return the concrete backend name.

    ``"auto"`` picks the first usable of ``cpp``, ``numba``, ``numpy``.
    Raises ``ValueError`` for an unknown name or a backend not usable here (saying why).
    """
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string, got {type(name).__name__}")
    if name == "auto":
        for cand in AUTO_ORDER:
            if _probe(cand).available:
                return cand
    if name not in NAMES:
        raise ValueError(f"unknown backend {name!r}; choose one of {('auto',) + NAMES}")
    info = _probe(name)
    if not info.available:
        raise ValueError(f"backend {name!r} is not available here: {info.reason}")
    return name


def rule_module(name, implemented: dict, package: str, rule: str):
    """Resolve a backend request for a rule implemented by only some backends.

    Parameters
    ----------
    name : str
        The user's ``backend=`` ("auto" picks the first usable of ``implemented``).
    implemented : dict of backend name -> module name inside ``package``, in preference order
    package : str
        The rule's package (``__package__`` of its model module).
    rule : str
        The rule's name for messages.

    Returns
    -------
    (backend name, module)
    """
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string, got {type(name).__name__}")
    if name == "auto":
        name = next(b for b in implemented if available(b))
    if name not in NAMES:
        raise ValueError(f"unknown backend {name!r}; choose one of {('auto',) + NAMES}")
    if name not in implemented:
        raise ValueError(f"{rule} has no {name!r} backend yet; implemented: {tuple(implemented)}")
    resolve_backend(name)
    return name, importlib.import_module(f"{package}.{implemented[name]}")
