"""Input checks shared by every public entry point, run once before any kernel.

Each check raises ``ValueError`` or ``TypeError`` with a message that names the argument
and the problem. Nothing here modifies the caller's arrays: converted data are copies, and arrays that
already have the right dtype and layout are passed on to backends that only read them.
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["as_host_array", "check_data", "check_not_empty", "width_error", "check_int", "check_float",
           "check_choice", "check_dtype", "init_array"]


def as_host_array(X, name: str = "X") -> np.ndarray:
    """Convert X to a numpy array through the array protocols, without copying when possible.

    Accepts numpy arrays, lists, and objects with ``__array__`` (e.g. PyTorch CPU tensors) or
    DLPack (``__dlpack__``). GPU arrays (CuPy, CUDA tensors) are copied to the host.
    """
    if isinstance(X, np.ndarray):
        return X
    if hasattr(X, "__cuda_array_interface__"):
        try:
            import cupy  # noqa: F401
            return cupy.asnumpy(X) if type(X).__module__.startswith("cupy") else np.asarray(X.cpu())
        except Exception as exc:
            raise TypeError(f"{name} is a GPU array; copy it to the host first ({exc})") from exc
    if hasattr(X, "detach") and hasattr(X, "cpu"):  # torch.Tensor, possibly requiring grad
        return X.detach().cpu().numpy()
    if not hasattr(X, "__array__") and hasattr(X, "__dlpack__"):
        return np.from_dlpack(X)
    try:
        return np.asarray(X)
    except Exception as exc:
        raise TypeError(f"{name} cannot be converted to an array: {exc}") from exc


def check_dtype(dtype) -> np.dtype:
    """Return the model dtype (float32 or float64) or raise ValueError."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from exc
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


def check_device_data(X, n_features: int, dtype: np.dtype, name: str = "X"):
    """The checks of :func:`check_data` run on the GPU for a CuPy-readable device array.

    Returns a C-contiguous CuPy array of ``dtype`` (X itself when it already is one: no
    copy, no host round trip), or None when X is not a device array or CuPy is absent (the
    caller then takes the host path). Raises like :func:`check_data`.
    """
    if not hasattr(X, "__cuda_array_interface__"):
        return None
    try:
        import cupy
    except ImportError:
        return None
    A = cupy.asarray(X)
    if A.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {A.dtype}")
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, {n_features}), got shape {A.shape}")
    if A.shape[1] != n_features:
        raise ValueError(f"{name} has {A.shape[1]} features per sample, the model expects n_inputs={n_features}")
    if A.shape[0] == 0:
        raise ValueError(f"{name} has no samples")
    A = cupy.ascontiguousarray(A, dtype=dtype)
    if not bool(cupy.isfinite(A).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return A


def check_data(X, n_features: int, dtype: np.dtype, name: str = "X", allow_1d: bool = False) -> np.ndarray:
    """Validate a data matrix and return it as a C-contiguous array of ``dtype``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_features : int
    dtype : numpy dtype of the model
    allow_1d : bool
        Accept a single sample of shape (n_features,) and return it as (1, n_features).

    Raises
    ------
    TypeError
        non-numeric data (strings, objects, complex).
    ValueError
        wrong rank or width, no samples, NaN or inf.
    """
    A = as_host_array(X, name)
    if A.dtype == object or A.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {A.dtype}")
    if A.ndim == 1 and allow_1d:
        A = A[None, :]
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, {n_features}), got shape {A.shape}")
    if A.shape[1] != n_features:
        raise ValueError(f"{name} has {A.shape[1]} features per sample, the model expects n_inputs={n_features}")
    if A.shape[0] == 0:
        raise ValueError(f"{name} has no samples")
    if A.dtype.kind == "f" and not np.isfinite(A).all():
        bad = int(np.count_nonzero(~np.isfinite(A)))
        raise ValueError(f"{name} contains {bad} NaN or inf value(s)")
    # Backends only read X, so an array that already has the right dtype and layout is
    # passed through without a copy.
    return np.ascontiguousarray(A, dtype=dtype)


def check_not_empty(A: np.ndarray, name: str = "X") -> None:
    """ValueError for data without samples or without features, in scikit-learn's words."""
    if A.ndim >= 1 and A.shape[0] == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={A.shape}) while a minimum of 1 is required "
                         f"({name} has no samples)")
    if A.ndim >= 2 and A.shape[-1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={A.shape}) while a minimum of 1 is required")


def width_error(estimator, got: int, expected: int, what: str = "") -> ValueError:
    """A width mismatch in scikit-learn's own words (``X has 5 features, but Model is expecting
    4 features as input``), so that code and checks written for scikit-learn recognise it."""
    extra = f" ({what})" if what else ""
    return ValueError(f"X has {got} features, but {type(estimator).__name__} is expecting {expected} "
                      f"features as input{extra}")


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
    "(N, D + C)"), finite real numbers, returned as a new C-contiguous ``dtype`` array."""
    W0 = as_host_array(init, "init")
    if W0.shape != shape:
        raise ValueError(f"init array must have shape {label} = {shape}, got {W0.shape}")
    if W0.dtype.kind not in "biuf" or not np.isfinite(W0).all():
        raise ValueError("init array must be finite real numbers")
    return np.array(W0, dtype=dtype, order="C", copy=True)
