"""Lateral connections on the neuron grid: specifications and operators.

A model's ``lateral=`` argument takes a *specification* (``box``, ``normalized_box``,
``stencil``, ``random``), an (N, N) ndarray, a scipy.sparse matrix, or None. The model
resolves it into an *operator* that every backend understands:

``Stencil``
    a translation-invariant kernel on the grid, applied as a 2D correlation with zero
    padding (O(N r^2) per step, never an N x N product), with an optional per-row scale;
``CSR``
    any (N, N) matrix in compressed sparse rows. A learned lateral is always a CSR whose
    sparsity pattern stays fixed (the rule is multiplicative: zeros stay zero).

Matrix convention: ``(L q)_n = sum_m L[n, m] q_m``; neuron n sits at row ``n // cols``,
column ``n % cols`` of the grid.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, DTypeLike

__all__ = [
    "box", "normalized_box", "stencil", "random",
    "Box", "NormalizedBox", "StencilSpec", "RandomLateral",
    "Stencil", "CSR", "resolve", "box_matrix", "needs_clip", "check_csr", "check_sparse",
]


# ----------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class Box:
    """Box excitation: ``L[n, m] = strength`` for grid neighbours within ``radius`` (Chebyshev), n != m."""

    radius: int = 2
    strength: float = 0.1


@dataclass(frozen=True)
class NormalizedBox:
    """Row-normalized box: the box divided by its row sums, times ``strength`` (rows sum to strength)."""

    radius: int = 1
    strength: float = 1.0


@dataclass(frozen=True)
class StencilSpec:
    """Any ``(2r+1, 2r+1)`` kernel with a zero centre, correlated with the grid image."""

    kernel: np.ndarray


@dataclass(frozen=True)
class RandomLateral:
    """Random initial lateral for learning: ``U(low, high)`` on a box mask (or all pairs).

    ``radius=None`` connects every pair of distinct neurons (seed 000, In [37]).
    """

    radius: int | None = 2
    low: float = 0.0
    high: float = 1.0


def box(radius: int = 2, strength: float = 0.1) -> Box:
    """Box lateral excitation of seed 001 (the correct box, without the notebook's off-by-one).

    Parameters
    ----------
    radius : int
        Neighbours with ``|dy| <= radius`` and ``|dx| <= radius`` are connected.
    strength : float
        The weight of every connection.
    """
    radius = _check_radius(radius)
    if not np.isfinite(strength):
        raise ValueError(f"lateral strength must be finite, got {strength!r}")
    return Box(radius, float(strength))


def normalized_box(radius: int = 1, strength: float = 1.0) -> NormalizedBox:
    """Row-normalized box of seed 000 In [58]: each row of the box divided by its sum."""
    radius = _check_radius(radius)
    if not np.isfinite(strength):
        raise ValueError(f"lateral strength must be finite, got {strength!r}")
    return NormalizedBox(radius, float(strength))


def stencil(kernel: ArrayLike) -> StencilSpec:
    """A general stencil: ``kernel`` of shape (2r+1, 2r+1) whose centre must be 0."""
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] % 2 != 1:
        raise ValueError(f"stencil kernel must be square with odd side, got shape {k.shape}")
    if not np.all(np.isfinite(k)):
        raise ValueError("stencil kernel contains NaN or inf")
    r = k.shape[0] // 2
    if k[r, r] != 0:
        raise ValueError("stencil kernel centre must be 0 (a neuron does not excite itself)")
    return StencilSpec(k.copy())


def random(radius: int | None = 2, low: float = 0.0, high: float = 1.0) -> RandomLateral:
    """Random initial lateral ``U(low, high)`` on the box mask of ``radius`` (None: all pairs), diagonal 0.

    Meant for ``learn_lateral=True`` (seed 000); drawn from the model's generator after the weights.
    """
    if radius is not None:
        radius = _check_radius(radius)
    if not (np.isfinite(low) and np.isfinite(high)) or high < low:
        raise ValueError(f"random lateral needs finite low <= high, got ({low!r}, {high!r})")
    return RandomLateral(radius, float(low), float(high))


def _check_radius(radius) -> int:
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 1:
        raise ValueError(f"lateral radius must be an integer >= 1, got {radius!r}")
    return int(radius)


# ------------------------------------------------------------------------- operators
class Stencil:
    """Translation-invariant lateral on a ``grid``: 2D correlation with zero padding.

    ``(L q)[y, x] = row_scale[n] * sum_{a,b=-r..r} kernel[a+r, b+r] * q[y+a, x+b]``.

    Attributes
    ----------
    kernel : ndarray of shape (2r+1, 2r+1), model dtype, centre 0
    grid : (rows, cols)
    row_scale : ndarray of shape (N,), model dtype, or None (all ones)
    """

    kind = "stencil"

    def __init__(self, kernel: ArrayLike, grid: tuple[int, int], row_scale: ArrayLike | None = None,
                 dtype: DTypeLike = np.float64, names: tuple[str, str] = ("kernel", "row_scale")):
        kernel = _real_array(kernel, names[0])
        if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 != 1:
            raise ValueError(f"{names[0]} must be a square stencil kernel with an odd side, got shape {kernel.shape}")
        rows, cols = (int(grid[0]), int(grid[1]))
        if rows < 1 or cols < 1:
            raise ValueError(f"stencil grid must have rows, cols >= 1, got {grid!r}")
        self.kernel = np.ascontiguousarray(kernel, dtype=dtype)
        self.grid = (rows, cols)
        if row_scale is not None:
            row_scale = _real_array(row_scale, names[1])
            if row_scale.shape != (rows * cols,):
                raise ValueError(f"{names[1]} must have shape (N,) = ({rows * cols},), got {row_scale.shape}")
            row_scale = np.ascontiguousarray(row_scale, dtype=dtype)
        self.row_scale = row_scale
        self.radius = self.kernel.shape[0] // 2

    @property
    def n(self) -> int:
        """Number of neurons N."""
        return self.grid[0] * self.grid[1]

    @property
    def uniform(self) -> bool:
        """True when every off-centre kernel entry is equal (box fast path)."""
        r = self.radius
        off = np.delete(self.kernel.ravel(), r * (2 * r + 1) + r)
        return bool(np.all(off == off[0]))

    def matvec(self, q: np.ndarray) -> np.ndarray:
        """``L q`` for q of shape (N,): the reference correlation (direct sum over offsets)."""
        rows, cols = self.grid
        r = self.radius
        img = q.reshape(rows, cols)
        padded = np.zeros((rows + 2 * r, cols + 2 * r), dtype=q.dtype)
        padded[r:r + rows, r:r + cols] = img
        out = np.zeros((rows, cols), dtype=q.dtype)
        for a in range(2 * r + 1):
            for b in range(2 * r + 1):
                w = self.kernel[a, b]
                if w != 0:
                    out += w * padded[a:a + rows, b:b + cols]
        out = out.ravel()
        if self.row_scale is not None:
            out = out * self.row_scale
        return out

    def to_scipy(self) -> sp.csr_array:
        """The (N, N) matrix as a scipy.sparse ``csr_array``."""
        return self.to_csr().to_scipy()

    def to_csr(self) -> "CSR":
        """The same operator as an explicit ``CSR`` (for learning it, or for CSR-only code)."""
        rows, cols = self.grid
        r = self.radius
        n = np.arange(rows * cols)
        y, x = n // cols, n % cols
        ri, ci, vals = [], [], []
        for a in range(-r, r + 1):
            for b in range(-r, r + 1):
                w = self.kernel[a + r, b + r]
                if w == 0:
                    continue
                ok = (y + a >= 0) & (y + a < rows) & (x + b >= 0) & (x + b < cols)
                ri.append(n[ok])
                ci.append((y[ok] + a) * cols + (x[ok] + b))
                vals.append(np.full(int(ok.sum()), w, dtype=self.kernel.dtype))
        if ri:
            ri, ci, vals = np.concatenate(ri), np.concatenate(ci), np.concatenate(vals)
        else:
            ri = ci = np.zeros(0, np.int64)
            vals = np.zeros(0, self.kernel.dtype)
        if self.row_scale is not None:
            vals = vals * self.row_scale[ri]
        m = sp.csr_array((vals, (ri, ci)), shape=(rows * cols, rows * cols))
        return CSR.from_scipy(m, self.kernel.dtype)

    def copy(self) -> "Stencil":
        """A deep copy."""
        return Stencil(self.kernel.copy(), self.grid,
                       None if self.row_scale is None else self.row_scale.copy(), self.kernel.dtype)

    def astype(self, dtype: DTypeLike) -> "Stencil":
        """The same stencil in another dtype."""
        return Stencil(self.kernel, self.grid, self.row_scale, dtype)


class CSR:
    """An (N, N) lateral matrix in compressed sparse rows, indices sorted within rows.

    Attributes
    ----------
    indptr : ndarray of shape (N+1,), int64
    indices : ndarray of shape (nnz,), int32
    data : ndarray of shape (nnz,), model dtype (updated in place when learned)
    """

    kind = "csr"

    def __init__(self, indptr: ArrayLike, indices: ArrayLike, data: ArrayLike, n: int,
                 names: tuple[str, str, str] = ("indptr", "indices", "data")):
        # checked before the casts: an int64 index beyond int32 would wrap into range
        indptr, indices, data = check_csr(indptr, indices, data, n, n, names, canonical=True)
        self.indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        self.indices = np.ascontiguousarray(indices, dtype=np.int32)
        self.data = np.ascontiguousarray(data)
        self._n = int(n)

    @property
    def n(self) -> int:
        """Number of neurons N."""
        return self._n

    @classmethod
    def from_scipy(cls, m: sp.spmatrix | sp.sparray, dtype: DTypeLike) -> "CSR":
        """From any scipy.sparse matrix/array (explicit zeros dropped, indices sorted)."""
        m = sp.csr_array(m, dtype=dtype, copy=True)
        m.sum_duplicates()  # also sorts the indices
        m.eliminate_zeros()
        return cls(m.indptr, m.indices, m.data, m.shape[0])

    def to_scipy(self) -> sp.csr_array:
        """The matrix as a scipy.sparse ``csr_array`` (a copy)."""
        return sp.csr_array((self.data.copy(), self.indices.copy(), self.indptr.copy()),
                            shape=(self._n, self._n))

    def _view(self):
        return sp.csr_array((self.data, self.indices, self.indptr), shape=(self._n, self._n))

    def matvec(self, q: np.ndarray) -> np.ndarray:
        """``L q`` for q of shape (N,)."""
        return (self._view() @ q).astype(q.dtype, copy=False)

    def rmatvec(self, o: np.ndarray) -> np.ndarray:
        """``L^T o`` for o of shape (N,)."""
        return (self._view().T @ o).astype(o.dtype, copy=False)

    def copy(self) -> "CSR":
        """A deep copy."""
        return CSR(self.indptr.copy(), self.indices.copy(), self.data.copy(), self._n)

    def astype(self, dtype: DTypeLike) -> "CSR":
        """The same matrix in another dtype."""
        return CSR(self.indptr, self.indices, self.data.astype(dtype), self._n)


def _real_array(a, name) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _index_array(a, name) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype.kind not in "iu" and not (a.size == 0 and a.dtype.kind in "bf"):
        raise TypeError(f"{name} must hold integers, got dtype {a.dtype}")
    return a


def check_csr(indptr: ArrayLike, indices: ArrayLike, data: ArrayLike, n_rows: int, n_cols: int,
              names: tuple[str, str, str] = ("indptr", "indices", "data"),
              canonical: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check the arrays of a compressed-sparse-rows matrix before any kernel indexes with them.

    Parameters
    ----------
    indptr : array of shape (n_rows + 1,), integers, nondecreasing from 0 to nnz
    indices : array of shape (nnz,), integers in [0, n_cols)
    data : array of shape (nnz,), finite real numbers
    n_rows, n_cols : int
    names : (str, str, str)
        What the three arrays are called in the messages (a checkpoint's keys, say).
    canonical : bool
        Also require the column indices to increase strictly within each row (sorted, no
        duplicates), as ``CSR`` keeps them.

    Returns
    -------
    (indptr, indices, data) as numpy arrays (not converted).

    Raises
    ------
    ValueError or TypeError naming the array at fault.
    """
    p_name, i_name, d_name = names
    indptr, indices = _index_array(indptr, p_name), _index_array(indices, i_name)
    data = _real_array(data, d_name)
    if data.ndim != 1:
        raise ValueError(f"{d_name} must be 1-D, got shape {data.shape}")
    if indptr.shape[0] != n_rows + 1:
        raise ValueError(f"{p_name} must have n_rows + 1 = {n_rows + 1} entries, got {indptr.shape[0]}")
    nnz = indices.shape[0]
    if data.shape[0] != nnz:
        raise ValueError(f"{d_name} has {data.shape[0]} entries but {i_name} has {nnz}")
    if indptr[0] != 0 or indptr[-1] != nnz:
        raise ValueError(f"{p_name} must run from 0 to nnz = {nnz}, got {indptr[0]} to {indptr[-1]}")
    steps = np.diff(indptr.astype(np.int64) if indptr.dtype.kind == "u" else indptr)
    if steps.size and steps.min() < 0:
        raise ValueError(f"{p_name} must be nondecreasing (row starts in order)")
    if nnz and (indices.min() < 0 or indices.max() >= n_cols):
        raise ValueError(f"{i_name} must lie in [0, {n_cols}), got values from {indices.min()} to {indices.max()}")
    if canonical and nnz > 1:
        rising = np.diff(indices.astype(np.int64))
        row_start = np.zeros(nnz, bool)
        row_start[indptr[:-1][steps > 0].astype(np.int64)] = True  # the first entry of every row
        if np.any((rising <= 0) & ~row_start[1:]):
            raise ValueError(f"{i_name} must increase strictly within each row (sorted, no duplicates)")
    return indptr, indices, data


def check_sparse(m: sp.spmatrix | sp.sparray) -> None:
    """Range checks of a scipy.sparse matrix on its own arrays, before scipy converts it.

    scipy trusts the index arrays of a matrix built from them (or edited later): an index out
    of range makes a conversion, or a kernel, read and write outside the arrays. Raises
    ValueError or TypeError naming the array at fault.
    """
    fmt = m.format
    n_rows, n_cols = (int(s) for s in m.shape)
    if fmt in ("csr", "csc"):
        names = (f"lateral matrix's indptr ({fmt})", f"lateral matrix's indices ({fmt})", "lateral matrix")
        major, minor = (n_rows, n_cols) if fmt == "csr" else (n_cols, n_rows)
        indptr = _index_array(m.indptr, names[0])
        indices, data = m.indices, m.data
        # scipy lets the index and data arrays run past nnz = indptr[-1]; only [:nnz] counts
        if indptr.shape[0] == major + 1 and 0 <= indptr[-1] <= min(indices.shape[0], data.shape[0]):
            indices, data = indices[:indptr[-1]], data[:indptr[-1]]
        check_csr(indptr, indices, data, major, minor, names)
    elif fmt == "coo":
        for name, idx, size in (("row", m.coords[0], n_rows), ("col", m.coords[1], n_cols)):
            idx = _index_array(idx, f"lateral matrix's {name} indices")
            if idx.size and (idx.min() < 0 or idx.max() >= size):
                raise ValueError(f"lateral matrix's {name} indices must lie in [0, {size}), got values from "
                                 f"{idx.min()} to {idx.max()}")
            if idx.shape[0] != m.data.shape[0]:
                raise ValueError(f"lateral matrix's {name} indices and data differ in length")
    elif fmt == "bsr":
        R, C = m.blocksize
        check_csr(m.indptr, m.indices, np.zeros(np.shape(m.indices)[0]), n_rows // R, n_cols // C,
                  ("lateral matrix's indptr (bsr)", "lateral matrix's indices (bsr)", "lateral matrix's data (bsr)"))
        if m.data.shape[0] != m.indices.shape[0]:
            raise ValueError("lateral matrix's data (bsr) must hold one block per index")


def needs_clip(op: Stencil | CSR | None, w_max: float) -> bool:
    """True when clipping the operator's matrix to [0, w_max] would change it."""
    if op is None:
        return False
    if isinstance(op, Stencil):
        scale = np.ones(1) if op.row_scale is None else op.row_scale
        vals = np.concatenate([(op.kernel.ravel()[:, None] * scale[None, :]).ravel(), [0.0]])
    else:
        vals = op.data
    return bool(vals.size and (vals.min() < 0 or vals.max() > w_max))


def box_matrix(grid: tuple[int, int], radius: int, strength: float = 1.0) -> sp.csr_array:
    """The (N, N) box matrix (correct box, diagonal 0) as a scipy ``csr_array``."""
    k = np.full((2 * radius + 1, 2 * radius + 1), float(strength))
    k[radius, radius] = 0.0
    return Stencil(k, grid).to_scipy()


def _neighbour_count(grid, radius: int) -> np.ndarray:
    rows, cols = grid
    y, x = np.arange(rows)[:, None], np.arange(cols)[None, :]
    ny = np.minimum(y + radius, rows - 1) - np.maximum(y - radius, 0) + 1
    nx = np.minimum(x + radius, cols - 1) - np.maximum(x - radius, 0) + 1
    return (ny * nx - 1).ravel().astype(np.float64)


def resolve(spec: Box | NormalizedBox | StencilSpec | RandomLateral | ArrayLike | sp.spmatrix | sp.sparray | None,
            grid: tuple[int, int], dtype: DTypeLike, rng: np.random.Generator | None = None,
            learn: bool = False) -> Stencil | CSR | None:
    """Turn a user's ``lateral=`` argument into an operator (``Stencil``, ``CSR`` or None).

    Parameters
    ----------
    spec : Box, NormalizedBox, StencilSpec, RandomLateral, ndarray (N, N), scipy.sparse, or None
    grid : (rows, cols)
    dtype : numpy dtype of the model
    rng : numpy.random.Generator, needed for ``RandomLateral``
    learn : bool
        When True the result is always a ``CSR`` (the pattern learned in place).
    """
    rows, cols = grid
    n = rows * cols
    if spec is None:
        return None
    if isinstance(spec, Box):
        k = np.full((2 * spec.radius + 1,) * 2, spec.strength)
        k[spec.radius, spec.radius] = 0.0
        op = Stencil(k, grid, dtype=dtype)
    elif isinstance(spec, NormalizedBox):
        k = np.ones((2 * spec.radius + 1,) * 2)
        k[spec.radius, spec.radius] = 0.0
        cnt = _neighbour_count(grid, spec.radius)
        scale = np.where(cnt > 0, spec.strength / np.maximum(cnt, 1), 0.0)
        op = Stencil(k, grid, row_scale=scale, dtype=dtype)
    elif isinstance(spec, StencilSpec):
        op = Stencil(spec.kernel, grid, dtype=dtype)
    elif isinstance(spec, RandomLateral):
        if rng is None:
            raise ValueError("a random lateral needs the model's random generator")
        if spec.radius is None:
            mask = sp.csr_array(np.ones((n, n)) - np.eye(n))
        else:
            mask = box_matrix(grid, spec.radius, 1.0)
        mask.sort_indices()
        vals = rng.uniform(spec.low, spec.high, mask.nnz)
        m = sp.csr_array((vals, mask.indices, mask.indptr), shape=(n, n))
        return CSR.from_scipy(m, dtype)
    elif sp.issparse(spec):
        if spec.shape != (n, n):
            raise ValueError(f"lateral matrix must have shape (N, N) = ({n}, {n}), got {spec.shape}")
        if not np.issubdtype(spec.dtype, np.number) or np.issubdtype(spec.dtype, np.complexfloating):
            raise TypeError(f"lateral matrix must be real numeric, got dtype {spec.dtype}")
        check_sparse(spec)
        m = sp.csr_array(spec)
        if not np.all(np.isfinite(m.data)):
            raise ValueError("lateral matrix contains NaN or inf")
        return CSR.from_scipy(m, dtype)
    else:
        try:
            a = np.asarray(spec)
        except Exception as exc:  # pragma: no cover - exotic objects
            raise TypeError("lateral must be a spec, an (N, N) array, scipy.sparse or None, "
                            f"got {type(spec).__name__}") from exc
        if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) \
                or np.issubdtype(a.dtype, np.complexfloating):
            raise TypeError("lateral must be a spec, an (N, N) real array, scipy.sparse or None, "
                            f"got {type(spec).__name__} of dtype {a.dtype}")
        if a.shape != (n, n):
            raise ValueError(f"lateral matrix must have shape (N, N) = ({n}, {n}), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError("lateral matrix contains NaN or inf")
        return CSR.from_scipy(sp.csr_array(a.astype(np.float64)), dtype)
    return op.to_csr() if learn else op
