"""Pieces shared by several subcommands: argument types, checks of paths and backends.

A user's mistake is reported as :class:`UsageError` (or by argparse, through the argument
types below); :func:`sparsedream_fast.cli.main` prints it as one line and exits with
status 2. Every check here runs before any data is loaded or any folder is created.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import tempfile

__all__ = ["UsageError", "TrainingDiverged", "saved_on_divergence", "machine_load", "best_backend", "check_backend",
           "check_out_dir", "check_input_file", "int_at_least", "float_in", "check_params", "check_tile_shape"]


class UsageError(Exception):
    """A mistake in the command line or in the files it names (exit status 2, no traceback)."""


class TrainingDiverged(Exception):
    """Training stopped before a step whose update is not finite (exit status 1, one line).

    The message is the model's :class:`~sparsedream_fast.DivergenceError` and where the model
    as it stood (the state after its last finite step) was saved.
    """


@contextlib.contextmanager
def saved_on_divergence(model, path: str):
    """Run a fit inside; when it raises DivergenceError, save ``model`` (whose state is that
    after its last finite step) to ``path`` (its folder made if needed) and raise
    :class:`TrainingDiverged` naming the file, so that the work done is not lost."""
    from .._runtime import DivergenceError
    try:
        yield
    except DivergenceError as exc:
        where = "it was not saved (this model has no checkpoint)"
        if hasattr(model, "save"):
            try:
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                where = f"the model as it stood was saved to {model.save(path)}"
            except (OSError, ValueError, TypeError) as save_exc:
                where = f"saving the model to {path} failed too: {save_exc}"
        raise TrainingDiverged(f"{exc} ({where})") from None


# ------------------------------------------------------------------ argument types
def int_at_least(low: int):
    """An argparse type: an integer >= ``low``."""
    def parse(text):
        try:
            v = int(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {v}")
        return v
    parse.__name__ = f"int >= {low}"
    return parse


def float_in(low=None, high=None, low_open=False, high_open=False):
    """An argparse type: a finite float in the interval given (open ends with ``*_open``)."""
    def parse(text):
        try:
            v = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if low is not None and (v < low or (low_open and v == low)):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low}, got {v}")
        if high is not None and (v > high or (high_open and v == high)):
            raise argparse.ArgumentTypeError(f"must be {'<' if high_open else '<='} {high}, got {v}")
        return v
    parse.__name__ = "number"
    return parse


# --------------------------------------------------------------------- backends
def machine_load() -> str:
    """"machine load 1.23 on 2 cores": a speed figure's context (the 1-minute load average)."""
    import os
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):   # not every platform has it
        return f"{os.cpu_count()} cores, load unknown"
    return f"machine load {load:.2f} on {os.cpu_count()} cores"


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


def check_backend(name: str, option: str = "--backend") -> str:
    """``name`` itself when it is "auto" or usable here; else :class:`UsageError` saying why not."""
    from .._backends import NAMES, backends
    if name == "auto":
        return name
    if name not in NAMES:
        raise UsageError(f"{option}: unknown backend {name!r}; choose one of auto, {', '.join(NAMES)}")
    info = backends()[name]
    if not info.available:
        raise UsageError(f"{option} {name}: not usable here: {info.reason}")
    return name


# ------------------------------------------------------------------------ paths
def _writable(folder) -> bool:
    """True when a file can be made in ``folder`` (tried, then removed: permissions alone do
    not tell for root or on a read-only file system)."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".sparsedream-probe-")
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def check_out_dir(path, option: str = "--out") -> str:
    """``path`` when it is, or can be made as, a writable folder; else :class:`UsageError`.

    Leaves nothing behind: the folder is made once the run has checked everything else.
    """
    path = os.fspath(path)
    if not path:
        raise UsageError(f"{option}: empty path")
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise UsageError(f"{option} {path}: exists and is not a folder")
        if not _writable(path):
            raise UsageError(f"{option} {path}: the folder is not writable")
        return path
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    if not os.path.isdir(parent):
        raise UsageError(f"{option} {path}: cannot be created, {parent} is a file")
    if not _writable(parent):
        raise UsageError(f"{option} {path}: cannot be created, {parent} is not writable")
    return path


def check_input_file(path, option: str, suffixes=None) -> str:
    """``path`` when it names a readable file (with one of ``suffixes`` if given)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UsageError(f"{option} {path}: file not found")
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a folder, not a file")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{option} {path}: not readable")
    if suffixes and not path.lower().endswith(tuple(suffixes)):
        raise UsageError(f"{option} {path}: expected a {' or '.join(suffixes)} file")
    return path


def check_tile_shape(tile, n_inputs: int, option: str = "--tile-shape") -> None:
    """:class:`UsageError` unless the image shape ``tile`` has ``n_inputs`` pixels."""
    if tile is None:
        return
    h, w = (int(v) for v in tile)
    if h < 1 or w < 1:
        raise UsageError(f"{option} {h} {w}: both sides must be >= 1")
    if h * w != n_inputs:
        raise UsageError(f"{option} {h} {w}: {h} x {w} = {h * w} pixels, but one input holds {n_inputs} values")


# ----------------------------------------------------------------------- models
def check_params(model, n_inputs: int = 4, n_classes=None) -> None:
    """Check an unfitted estimator's parameters by fitting a copy of it on a few random inputs.

    The estimators check their parameters in ``fit`` (not in the constructor, as scikit-learn
    asks); this asks them before the real data are loaded or any output is written. The
    copy runs on the numpy reference (the backend itself is checked by
    :func:`check_backend`). Raises :class:`UsageError` with the estimator's own message.
    """
    import numpy as np
    params = model.get_params()
    if "backend" in params:
        params["backend"] = "numpy"
    if params.get("n_inputs") is not None:
        n_inputs = params["n_inputs"]
    try:
        probe = type(model)(**params)
        bs = params.get("batch_size")
        n = bs if isinstance(bs, int) and 2 <= bs <= 1_000_000 else 2  # a bad one: fit says so
        X = np.random.default_rng(0).uniform(0.1, 1.0, (n, int(n_inputs)))
        if n_classes is not None:
            probe.fit(X, np.arange(n) % int(n_classes), epochs=1)
        else:
            probe.fit(X, epochs=1)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
