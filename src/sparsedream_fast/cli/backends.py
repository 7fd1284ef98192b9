"""``sparsedream backends``: which backends are usable here, and why the others are not."""
from __future__ import annotations

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    """Arguments of ``sparsedream backends`` (none)."""


def run(args) -> int:
    """List the backends (numpy, cpp, numba, cuda), one line each: usable or why not.

    Examples
    --------
      sparsedream backends
    """
    from .._backends import backends
    for info in backends().values():
        print(info)
    return 0
