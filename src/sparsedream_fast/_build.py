"""What this installation was built with, and a warning when a built module cannot be loaded.

The build (``CMakeLists.txt``) writes ``_build_config.py`` next to this file, listing the
compiled modules it installed. A module listed there that fails to import is a broken
installation (a missing shared library, a wheel for another CPU or Python, files removed
by hand): the package still works on the backends left, but slower, so it says so once, at
import, with the reason. A source tree that was never built has no record and no warning.
"""
from __future__ import annotations

import importlib
import warnings

__all__ = ["built_modules", "check_compiled_modules", "BrokenBuildWarning"]

#: the modules that are worth a warning at import: the CPU extension. The CUDA module is
#: reported by ``sparsedream_fast.backends()`` when asked for (importing it costs time at
#: every import), the emulator only matters to the tests.
CHECKED_AT_IMPORT = ("_core",)

_warned: set = set()


class BrokenBuildWarning(RuntimeWarning):
    """A compiled module of this installation is there but cannot be loaded."""


def built_modules() -> tuple:
    """The compiled modules the build recorded, e.g. ``("_core", "_cuda")``; ``()`` without a record."""
    try:
        from . import _build_config
    except ImportError:
        return ()
    return tuple(getattr(_build_config, "BUILT_MODULES", ()))


def load_error(name: str):
    """The ImportError of ``sparsedream_fast.<name>``, or None when it loads."""
    try:
        importlib.import_module(f"{__package__}.{name}")
    except ImportError as exc:
        return exc
    return None


def check_compiled_modules(built=None, names=CHECKED_AT_IMPORT) -> list:
    """Warn (once per module and process) for each module of ``names`` that the build made
    but that does not import; returns the names warned about now.

    Parameters
    ----------
    built : tuple of str or None
        The modules built (default: the build record, :func:`built_modules`).
    names : tuple of str
        The modules to check.
    """
    built = built_modules() if built is None else tuple(built)
    warned = []
    for name in names:
        if name not in built or name in _warned:
            continue
        exc = load_error(name)
        if exc is None:
            continue
        _warned.add(name)
        warned.append(name)
        warnings.warn(
            f"sparsedream_fast was built with its compiled module {name} but cannot load it "
            f"({type(exc).__name__}: {exc}); the package runs on the remaining backends (numba, numpy), "
            f"which are slower. Reinstall it (pip install --force-reinstall sparsedream-fast) or see "
            f"'sparsedream backends'.", BrokenBuildWarning, stacklevel=3)
    return warned
