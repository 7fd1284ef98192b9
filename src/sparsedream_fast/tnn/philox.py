"""Philox4x32-10, the counter-based generator of the TNN's stochastic STDP (numpy version).

Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as 1, 2, 3" (SC 2011); the
same function as Random123's ``philox4x32_10`` and cuRAND's Philox, checked against
Random123's known-answer vectors in the tests. Being a pure function of (counter, key), a draw
does not depend on the order in which synapses are visited, so the numpy reference, the C++
kernels (``csrc/sparsedream/philox.hpp``) and a GPU kernel give the same bits.

How the TNN uses it (``docs/design.md``, "TNN"): key = the seed's two 32-bit halves; counter =
(synapse index ``j * D + i``, wave number low 32 bits, high 32 bits, column index). The four
outputs of one call are one synapse's draws for one wave.
"""
from __future__ import annotations

import numpy as np

__all__ = ["philox4x32", "split_seed", "to_unit", "ROUNDS"]

ROUNDS = 10
_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint32(0x9E3779B9)
_W1 = np.uint32(0xBB67AE85)
_LO = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


def _mulhilo(a: np.ndarray, m: np.uint64):
    prod = a.astype(np.uint64) * m
    return (prod >> _S32).astype(np.uint32), (prod & _LO).astype(np.uint32)


def philox4x32(c0, c1, c2, c3, k0, k1, rounds: int = ROUNDS):
    """Philox4x32 with ``rounds`` rounds (10 is the standard one), element-wise.

    Parameters
    ----------
    c0, c1, c2, c3 : array_like of uint32
        The four counter words (broadcast together).
    k0, k1 : int or array_like of uint32
        The two key words.

    Returns
    -------
    tuple of four ndarrays of uint32, the broadcast shape of the counters
    """
    c = [np.asarray(x, dtype=np.uint32) for x in (c0, c1, c2, c3)]
    c = list(np.broadcast_arrays(*c))
    k0 = np.asarray(k0, dtype=np.uint32)
    k1 = np.asarray(k1, dtype=np.uint32)
    with np.errstate(over="ignore"):
        for r in range(rounds):
            if r:
                k0 = (k0 + _W0).astype(np.uint32)
                k1 = (k1 + _W1).astype(np.uint32)
            hi0, lo0 = _mulhilo(c[0], _M0)
            hi1, lo1 = _mulhilo(c[2], _M1)
            c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
    return tuple(np.asarray(x, dtype=np.uint32) for x in c)


def split_seed(seed: int) -> tuple[int, int]:
    """The Philox key of a non-negative 64-bit seed: (low 32 bits, high 32 bits)."""
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed & 0xFFFFFFFF, seed >> 32


def to_unit(r: np.ndarray) -> np.ndarray:
    """uint32 draws to float64 in [0, 1): ``r * 2**-32`` (exact, so every backend agrees)."""
    return np.asarray(r, dtype=np.float64) * (1.0 / 4294967296.0)
