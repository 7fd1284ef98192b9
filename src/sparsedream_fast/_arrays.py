"""Array conversions shared by the backend wrappers (one definition, used by every rule)."""
from __future__ import annotations

import numpy as np

__all__ = ["as_c", "float_dtype"]


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
