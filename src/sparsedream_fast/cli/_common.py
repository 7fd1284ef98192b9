"""Pieces shared by several subcommands."""
from __future__ import annotations

__all__ = ["best_backend"]


def best_backend(requested: str = "auto") -> str:
    """The backend to run: ``requested`` itself, or for "auto" the first of cpp, numba, numpy
    that is usable here and whose rule A module imports."""
    from .._backends import AUTO_ORDER, available, resolve_backend
    from ..sparsedream.model import backend_module
    if requested != "auto":
        return resolve_backend(requested)
    for name in AUTO_ORDER:
        if available(name):
            try:
                backend_module(name)
            except (ImportError, ValueError):
                continue
            return name
    return "numpy"
