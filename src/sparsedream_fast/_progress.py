"""Progress of a long fit: a bar on a terminal, plain lines in a log.

Every training loop of the package and every subcommand reports progress through
:func:`progress_bar`, so they behave alike: on an interactive terminal (or in a Jupyter
kernel) a tqdm bar; when stderr goes to a file or a pipe, a plain line at every tenth of the
work and at the end (a bar's carriage returns would fill a log with one long line).
"""
from __future__ import annotations

import sys
import time

__all__ = ["progress_bar", "LineProgress"]


class LineProgress:
    """tqdm's ``update``/``close`` interface, writing a line at every tenth of ``total``.

    Parameters
    ----------
    total : int
        Units of work (steps, sequences).
    desc : str
        What is running, at the start of every line.
    unit : str
    stream : file-like or None
        Where the lines go (default ``sys.stderr``).
    """

    def __init__(self, total, desc="", unit="it", stream=None):
        self.total, self.desc, self.unit = max(0, int(total)), desc, unit
        self.stream = sys.stderr if stream is None else stream
        self.n = 0
        self._next = 1
        self._t0 = time.perf_counter()
        self._closed = False

    def update(self, n=1):
        """Count ``n`` more units; write a line when a new tenth is reached."""
        self.n += int(n)
        if self.total and self.n * 10 >= self._next * self.total:
            while self._next <= 10 and self.n * 10 >= self._next * self.total:
                self._next += 1
            self._line()

    def _line(self):
        dt = time.perf_counter() - self._t0
        rate = self.n / dt if dt > 0 else 0.0
        pct = 100.0 * self.n / self.total if self.total else 100.0
        print(f"{self.desc}: {self.n:,}/{self.total:,} {self.unit}s ({pct:.0f}%) in {dt:.1f} s, "
              f"{rate:,.0f} {self.unit}s/s", file=self.stream, flush=True)

    def close(self):
        """Write the last line if the last tenth was not reached (an interrupted fit)."""
        if not self._closed and self.n and self._next <= 10:
            self._line()
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _interactive(stream) -> bool:
    if "ipykernel" in sys.modules:
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def progress_bar(total, desc="", unit="it", stream=None):
    """A progress reporter for ``total`` units: a tqdm bar on a terminal, else a LineProgress.

    Returns an object with ``update(n)``, ``close()`` and the context-manager protocol.
    """
    stream = sys.stderr if stream is None else stream
    if _interactive(stream):
        from tqdm.auto import tqdm
        return tqdm(total=total, desc=desc, unit=unit, file=stream)
    return LineProgress(total, desc, unit, stream)
