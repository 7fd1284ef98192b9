"""Input checks shared by every public entry point, run once before any kernel.

Each check raises ``ValueError`` or ``TypeError`` with a message that names the argument
and the problem. Nothing here modifies the caller's arrays: converted data are copies, and
arrays that already have the right dtype and layout are passed on to backends that only read
them. Data are read by one converter (:func:`sparsedream_fast._arrays.as_array`) and checked
finite after the cast to the model's dtype.
"""
from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp

from ._arrays import as_array, as_device_array

__all__ = ["as_host_array", "cast_finite", "check_data", "check_device_data", "check_not_empty", "width_error",
           "check_int", "check_float", "check_choice", "check_dtype", "init_array"]


def as_host_array(X, name: str = "X") -> np.ndarray:
    """X as a numpy array on the host: :func:`sparsedream_fast._arrays.as_array` (the one
    converter; no copy where the source allows), with scipy.sparse refused by name."""
    if sp.issparse(X):
        raise TypeError(f"{name} is a scipy.sparse matrix; these models take dense arrays (X.toarray())")
    return as_array(X, name)


def _real(A, name: str):
    """A, checked to hold real numbers; an object array of numbers is converted to float64."""
    if A.dtype == object:
        try:
            return A.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must hold real numbers, got dtype object ({exc})") from None
    if A.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} must hold real numbers, got dtype {A.dtype}")
    if A.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {A.dtype}")
    return A


def _array_module(A):
    if isinstance(A, np.ndarray):
        return np
    import cupy
    return cupy


def cast_finite(A, dtype, name: str = "X", nonnegative: bool = False):
    """``A`` as a C-contiguous array of ``dtype``, checked finite AFTER the cast (float64 1e300
    is finite, its float32 cast is not), and non-negative if asked.

    Works on numpy and CuPy arrays alike (the device path checks on the GPU). No copy when A
    already has the dtype and layout.
    """
    xp = _array_module(A)
    with np.errstate(over="ignore", invalid="ignore"):   # the overflow is reported below
        C = xp.ascontiguousarray(A, dtype=dtype)
    finite = xp.isfinite(C)
    if not bool(finite.all()):
        bad = int(xp.count_nonzero(~finite))
        if A.dtype.kind == "f" and not bool(xp.isfinite(A).all()):
            raise ValueError(f"{name} contains {bad} NaN or inf value(s)")
        raise ValueError(f"{name} contains {bad} NaN or inf value(s) as {np.dtype(dtype).name}: values beyond "
                         f"its range ({float(np.finfo(dtype).max):.3g}) overflow in the cast")
    if nonnegative and C.size and bool((C < 0).any()):
        raise ValueError(f"Negative values in data: {name} must be non-negative; got "
                         f"{int(xp.count_nonzero(C < 0))} negative value(s), the smallest {float(C.min()):g}")
    return C


def check_dtype(dtype) -> np.dtype:
    """Return the model dtype (float32 or float64) or raise ValueError."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from exc
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


def _check_matrix(A, n_features, name, owner):
    if A.ndim != 2:
        width = "n_features" if n_features is None else n_features
        raise ValueError(f"{name} must be 2-D (n_samples, {width}), got shape {A.shape}. Reshape your data: "
                         f"{name}[None, :] for one sample, {name}[:, None] for one feature")
    check_not_empty(A, name)
    if n_features is not None and A.shape[1] != n_features:
        raise width_error(owner, A.shape[1], n_features, f"n_inputs={n_features}")


def check_device_data(X, n_features: int | None, dtype, name: str = "X", nonnegative: bool = False,
                      owner=None):
    """The checks of :func:`check_data` run on the GPU for a GPU array (CuPy, PyTorch CUDA, ...).

    Returns a C-contiguous CuPy array of ``dtype`` (X itself when it already is one: no
    copy, no host round trip), or None when X is not a GPU array or CuPy is absent (the
    caller then takes the host path, which copies X to the host). Raises like
    :func:`check_data`.
    """
    A = as_device_array(X, name)
    if A is None:
        return None
    A = _real(A, name)
    _check_matrix(A, n_features, name, owner)
    return cast_finite(A, dtype, name, nonnegative)


def check_data(X, n_features: int | None, dtype, name: str = "X", allow_1d: bool = False,
               nonnegative: bool = False, owner=None) -> np.ndarray:
    """Validate a data matrix and return it as a C-contiguous array of ``dtype``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Anything :func:`as_host_array` reads (numpy, lists, memoryviews, DLPack, pandas, GPU
        arrays copied to the host).
    n_features : int or None
        The width expected (None: any).
    dtype : numpy dtype of the model
    name : str
        The argument's name in messages.
    allow_1d : bool
        Accept a single sample of shape (n_features,) and return it as (1, n_features).
    nonnegative : bool
        Refuse negative values.
    owner : estimator or None
        Named in a width mismatch (scikit-learn's wording).

    Returns
    -------
    ndarray of shape (n_samples, n_features), ``dtype``, C-contiguous (X itself when it
    already is one: backends only read it)

    Raises
    ------
    TypeError
        non-numeric data (strings, objects that are not numbers, scipy.sparse).
    ValueError
        complex data, wrong rank or width, no samples, NaN or inf (after the cast to
        ``dtype``), negative values when refused.
    """
    A = _real(as_host_array(X, name), name)
    if A.ndim == 1 and allow_1d:
        A = A[None, :]
    _check_matrix(A, n_features, name, owner)
    return cast_finite(A, dtype, name, nonnegative)


def check_not_empty(A, name: str = "X") -> None:
    """ValueError for data without samples or without features, in scikit-learn's words."""
    if A.ndim >= 1 and A.shape[0] == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={A.shape}) while a minimum of 1 is required "
                         f"({name} has no samples).")
    if A.ndim >= 2 and A.shape[-1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={A.shape}) while a minimum of 1 is required.")


def width_error(estimator, got: int, expected: int, what: str = "") -> ValueError:
    """A width mismatch in scikit-learn's own words (``X has 5 features, but Model is expecting
    4 features as input``), so that code and checks written for scikit-learn recognise it."""
    extra = f" ({what})" if what else ""
    owner = "the model" if estimator is None else type(estimator).__name__
    return ValueError(f"X has {got} features, but {owner} is expecting {expected} features as input{extra}")


def check_int(value, name: str, low: int | None = None, high: int | None = None) -> int:
    """An integer within [low, high], else TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def check_float(value, name: str, positive: bool = False, nonnegative: bool = False,
                allow_none: bool = False, allow_inf: bool = False, upper: float | None = None):
    """A real number with the given constraints, else TypeError/ValueError naming ``name``."""
    if value is None:
        if allow_none:
            return None
        raise TypeError(f"{name} must be a number, got None")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if np.isnan(value) or (np.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    if upper is not None and value > upper:
        raise ValueError(f"{name} must be <= {upper}, got {value}")
    return value


def check_choice(value, name: str, choices) -> str:
    """One of ``choices`` (strings), else ValueError listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {tuple(choices)}")
    return value


def init_array(init, shape: tuple, label: str, dtype) -> np.ndarray:
    """Explicit initial weights: ``init`` of ``shape`` (named ``label`` in the error, e.g.
    "(N, D + C)"), real numbers finite in ``dtype`` (checked after the cast), returned as a
    new C-contiguous ``dtype`` array (never the caller's)."""
    W0 = _real(as_host_array(init, "init"), "init array")
    if W0.shape != shape:
        raise ValueError(f"init array must have shape {label} = {shape}, got {W0.shape}")
    W = cast_finite(W0, dtype, "init array")
    return np.array(W, copy=True) if np.may_share_memory(W, W0) else W
