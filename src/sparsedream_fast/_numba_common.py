"""Scalar numba helpers shared by the rules' numba backends (one definition each)."""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["JIT", "typed", "before"]

#: compile options of every numba kernel: cached, IEEE arithmetic in the model dtype (no
#: reassociation, no fused multiply-add), callable without the GIL
JIT = dict(cache=True, fastmath=False, nogil=True)


@numba.njit(**JIT)
def typed(like, x):
    """``x`` as a scalar of ``like``'s dtype (literals would promote float32 to float64)."""
    t = np.empty(1, like.dtype)
    t[0] = x
    return t[0]


@numba.njit(**JIT)
def before(x, i, y, j):
    """True when (value x, index i) precedes (y, j) in the order (-value, index); NaN last."""
    if x > y:
        return True
    if x < y:
        return False
    if x == y:
        return i < j
    if y != y:  # y is NaN: any number precedes it; two NaNs go by index
        return x == x or i < j
    return False
