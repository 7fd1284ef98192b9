"""Array conversions: the one converter of user data (:func:`as_array`), used by every
estimator and by ``sdf.ops``, and the layouts the backend wrappers hand to kernels."""
from __future__ import annotations

import numpy as np

__all__ = ["as_array", "as_device_array", "is_cuda_array", "as_c", "float_dtype"]

#: DLPack device types of memory a CPU cannot read directly (CUDA, CUDA managed, ROCm)
_DL_CPU, _DL_CUDA_HOST = 1, 3
_DL_GPU = (2, 10, 13)


def _dlpack_device(X):
    try:
        return tuple(X.__dlpack_device__())
    except Exception:
        return None


def is_cuda_array(X) -> bool:
    """True for an array in GPU memory: ``__cuda_array_interface__`` (CuPy, Numba, PyTorch
    CUDA tensors) or a DLPack device that is a GPU."""
    if isinstance(X, np.ndarray):
        return False
    if hasattr(X, "__cuda_array_interface__"):
        return True
    dev = _dlpack_device(X) if hasattr(X, "__dlpack__") else None
    return dev is not None and dev[0] in _DL_GPU


def _from_pandas(X, name):
    """A DataFrame or Series as numpy: nullable (masked) columns become their numpy dtype, or
    float64 with NaN where values are missing (which the finite checks then refuse)."""
    import pandas as pd
    frame = X.to_frame() if isinstance(X, pd.Series) else X
    dtypes = list(frame.dtypes)
    if any(isinstance(d, pd.api.extensions.ExtensionDtype) for d in dtypes):
        numeric = [getattr(d, "numpy_dtype", None) if isinstance(d, pd.api.extensions.ExtensionDtype) else d
                   for d in dtypes]
        if all(d is not None and d.kind in "biuf" for d in numeric):
            if bool(frame.isna().to_numpy().any()):
                out = frame.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                out = frame.to_numpy(dtype=np.result_type(*numeric))
            return out[:, 0] if isinstance(X, pd.Series) else out
    return X.to_numpy()


def _cuda_to_host(X, name):
    """A GPU array copied to the host without CuPy: DLPack's CPU export first, then the
    producers' own copy methods."""
    if hasattr(X, "__dlpack__"):
        try:
            return np.from_dlpack(X, device="cpu", copy=True)
        except Exception:   # an old numpy or producer without dl_device / copy
            pass
    for method in ("get", "copy_to_host", "cpu"):   # CuPy, Numba, PyTorch
        fn = getattr(X, method, None)
        if callable(fn):
            try:
                host = fn()
            except Exception as exc:
                raise TypeError(f"{name} is a GPU array that could not be copied to the host "
                                f"({type(X).__name__}.{method}(): {exc})") from exc
            return as_array(host, name)
    raise TypeError(f"{name} is a GPU array ({type(X).__name__}) that offers no way to copy it to the "
                    "host (DLPack export to the CPU, .get(), .copy_to_host() or .cpu()); copy it first")


def as_array(X, name: str = "X") -> np.ndarray:
    """User data as a numpy array, without a copy wherever the source allows.

    Accepts numpy arrays (returned as they are), pandas DataFrames and Series (nullable
    columns included), objects exporting DLPack (``__dlpack__``: a PyTorch CPU tensor is
    read in place, one that requires grad is detached first), the buffer protocol
    (memoryview), ``__array__``, nested lists and scalars. GPU arrays (CuPy, PyTorch CUDA,
    Numba; ``__cuda_array_interface__`` or DLPack) are copied to the host, without needing
    CuPy. The result may be a view of the caller's memory: callers only read it.

    Parameters
    ----------
    X : array-like
    name : str
        The argument's name in error messages.

    Returns
    -------
    ndarray

    Raises
    ------
    TypeError
        When X cannot be read as an array (ragged lists, unsupported objects).
    """
    if isinstance(X, np.ndarray):
        return X
    module = type(X).__module__ or ""
    if module.startswith("pandas") and hasattr(X, "to_numpy"):
        return _from_pandas(X, name)
    if is_cuda_array(X):
        return _cuda_to_host(X, name)
    if hasattr(X, "__dlpack__") and not isinstance(X, (memoryview, bytes)):
        dev = _dlpack_device(X)
        if dev is None or dev[0] in (_DL_CPU, _DL_CUDA_HOST):
            src = X.detach() if getattr(X, "requires_grad", False) and hasattr(X, "detach") else X
            try:
                return np.from_dlpack(src)
            except Exception:   # a dtype numpy lacks (bfloat16), a read-only or exotic export
                pass
    try:
        return np.asarray(X)
    except Exception as exc:
        raise TypeError(f"{name} cannot be converted to an array: {exc}") from exc


def as_device_array(X, name: str = "X"):
    """A GPU array as a CuPy array in place (no copy, no host round trip), or None when X is
    not a GPU array or CuPy is not installed (the caller then takes the host path)."""
    if not is_cuda_array(X):
        return None
    try:
        import cupy
    except ImportError:
        return None
    if hasattr(X, "__cuda_array_interface__"):
        return cupy.asarray(X)
    return cupy.from_dlpack(X)


def as_c(a, dtype) -> np.ndarray:
    """``a`` as a C-contiguous, aligned, writeable array of ``dtype`` (a copy only when needed)."""
    a = np.asarray(a)
    if a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable and a.flags.aligned:
        return a
    return np.array(a, dtype=dtype, order="C", copy=True)


def float_dtype(W) -> np.dtype:
    """The dtype kernels run in for weights W: W's own when float32 or float64, else float64."""
    dt = np.asarray(W).dtype
    return dt if dt in (np.float32, np.float64) else np.dtype(np.float64)
