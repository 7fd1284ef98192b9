"""Pictures of maps and their training (matplotlib).

Every picture function returns a ``matplotlib.figure.Figure`` (save it with
``fig.savefig(path)`` or :func:`save_figure`, which also closes it); :func:`animate_activity`
returns a ``matplotlib.animation.Animation``, or writes a GIF/MP4 file and returns its path.

- :func:`weight_tapestry`: one tile per neuron at its grid position (the notebooks'
  ``draw_weights``);
- :func:`lateral_map`: one neuron's lateral row drawn on the grid (seed 000, In [13]);
- :func:`lateral_tapestry`: the weight tapestry with every tile scaled by the neuron's
  lateral weight to it, the neuron itself negated (seed 000, In [22]/[42]: ``w * nf``);
- :func:`usage_map`: how often each neuron wins, on the grid;
- :func:`training_curves`: measures against training steps, from a history (a list of
  dicts such as :class:`sparsedream_fast.metrics.History`);
- :func:`activity_figure` / :func:`animate_activity`: input, activity on the grid and
  reconstruction side by side (seed 001, In [22]/[26]/[30]/[34]; seed 000, In [7]);
- :func:`spike_raster`: spike times of one TNN wave or of a sequence of waves (rule D);
- :func:`column_weights`: a TNN column's integer weights, one small image per neuron;
- :func:`sweep_metric`: one measure of a sweep (:mod:`sparsedream_fast.sweep`) against
  the swept parameters: a heat map for two, lines for one.

Functions taking ``model_or_W`` accept a fitted ``SparseDream`` (weights, grid and lateral
are read from it) or arrays with the ``grid=`` (and ``lateral=``) keywords.

matplotlib is imported inside the functions, with the non-interactive Agg backend when no
display is configured, so importing the package stays cheap and works headless.
"""
from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:  # annotations only: importing this module imports neither matplotlib nor pandas
    import pandas as pd
    import scipy.sparse as sp
    from matplotlib.animation import FuncAnimation
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .dreamcomp.model import DreamComp
    from .metrics import Usage
    from .sparsedream.model import SparseDream
    from .tnn.column import TNNColumn
    from .tnn.network import TNNNetwork

__all__ = [
    "class_weights",
    "tile_image", "weight_tapestry", "lateral_map", "lateral_tapestry", "usage_map",
    "training_curves", "activity_frames", "activity_figure", "animate_activity",
    "spike_raster", "column_weights", "sweep_metric",
    "save_figure", "can_write_mp4",
]

#: colour of the gaps between tiles
_PAD_COLOUR = "#dfe6ee"
#: colour of neurons that never win
_DEAD_COLOUR = "#d9d9d9"


def _plt():
    import matplotlib
    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


# ----------------------------------------------------------------------------- inputs
def _is_model(obj) -> bool:
    if hasattr(type(obj), "weights_") and hasattr(obj, "winners"):
        _ = obj.weights_  # an unfitted model raises AttributeError("... is not fitted yet ...")
        return True
    return False


def _weights_grid(model_or_W, grid):
    if _is_model(model_or_W):
        W = model_or_W.weights_
        g = model_or_W.config_.grid if grid is None else grid
    else:
        W = model_or_W
        if grid is None:
            raise ValueError("grid=(rows, cols) is needed when W is an array")
        g = grid
    W = np.asarray(W, dtype=np.float64)
    rows, cols = (int(g[0]), int(g[1]))
    if W.ndim != 2 or W.shape[0] != rows * cols:
        raise ValueError(f"W must have shape (N, D) with N = {rows}*{cols}, got {W.shape}")
    return W, (rows, cols)


def _tile_shape(D, tile_shape):
    if tile_shape is None:
        side = int(round(math.sqrt(D)))
        if side * side != D:
            raise ValueError(f"D={D} is not a square; pass tile_shape=(h, w)")
        return (side, side)
    h, w = (int(tile_shape[0]), int(tile_shape[1]))
    if h * w != D:
        raise ValueError(f"tile_shape {tuple(tile_shape)} does not hold D={D} values")
    return (h, w)


def _lateral_row(model_or_L, neuron, n_neurons=None) -> np.ndarray:
    """Row ``neuron`` of the lateral matrix as a dense float64 vector."""
    import scipy.sparse as sp
    L = model_or_L.lateral_ if _is_model(model_or_L) else model_or_L
    if L is None:
        raise ValueError("this model has no lateral connections (lateral=None)")
    if sp.issparse(L):
        L = sp.csr_array(L)
        N = L.shape[0]
        n = _check_neuron(neuron, N)
        row = np.zeros(N)
        s, e = L.indptr[n], L.indptr[n + 1]
        row[L.indices[s:e]] = L.data[s:e]
    else:
        L = np.asarray(L, dtype=np.float64)
        if L.ndim != 2 or L.shape[0] != L.shape[1]:
            raise ValueError(f"lateral must be an (N, N) matrix, got shape {L.shape}")
        n = _check_neuron(neuron, L.shape[0])
        row = L[n].copy()
    if n_neurons is not None and row.size != n_neurons:
        raise ValueError(f"lateral has {row.size} neurons, W has {n_neurons}")
    return row


def _check_neuron(neuron, N) -> int:
    if isinstance(neuron, bool) or not isinstance(neuron, (int, np.integer)) or not 0 <= neuron < N:
        raise ValueError(f"neuron must be an integer in [0, {N}), got {neuron!r}")
    return int(neuron)


def _check_region(region, grid):
    if region is None:
        return (0, grid[0], 0, grid[1])
    r0, r1, c0, c1 = (int(v) for v in region)
    if not (0 <= r0 < r1 <= grid[0] and 0 <= c0 < c1 <= grid[1]):
        raise ValueError(f"region (row_start, row_stop, col_start, col_stop) must lie in the grid {grid}, "
                         f"got {tuple(region)}")
    return (r0, r1, c0, c1)


def _subgrid(W, grid, region):
    r0, r1, c0, c1 = region
    if region == (0, grid[0], 0, grid[1]):
        return W, grid
    sub = W.reshape(grid[0], grid[1], -1)[r0:r1, c0:c1].reshape(-1, W.shape[1])
    return sub, (r1 - r0, c1 - c0)


def _colorbar(fig, im, ax, cax, label, ticks=None, extend="neither"):
    """A colour bar that says what its colours are (``label``)."""
    if cax is None:
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, ticks=ticks, extend=extend, format="%.3g")
    else:
        cb = fig.colorbar(im, cax=cax, ticks=ticks, extend=extend, extendfrac=0.03, format="%.3g")
    cb.set_label(label)
    return cb


def _square_grid(n):
    """(rows, cols) of the most nearly square grid with at least n cells."""
    cols = max(1, int(math.ceil(math.sqrt(n))))
    return int(math.ceil(n / cols)), cols


# ----------------------------------------------------------------------------- tapestry
def tile_image(W: ArrayLike, grid: tuple[int, int], tile_shape: tuple[int, int] | None = None,
               pad: int = 1) -> np.ndarray:
    """Lay the rows of W out as tiles on the neuron grid (the notebooks' ``draw_weights``).

    Parameters
    ----------
    W : array-like of shape (N, D)
    grid : (rows, cols) with rows * cols == N
    tile_shape : (h, w) with h * w == D; default square
    pad : int
        Pixels of separation between tiles (filled with NaN, drawn as background).

    Returns
    -------
    ndarray of shape (rows * (h + pad) - pad, cols * (w + pad) - pad), float64
    """
    W = np.asarray(W, dtype=np.float64)
    rows, cols = grid
    if W.ndim != 2 or W.shape[0] != rows * cols:
        raise ValueError(f"W must have shape (N, D) with N = {rows}*{cols}, got {W.shape}")
    h, w = _tile_shape(W.shape[1], tile_shape)
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    tiles = W.reshape(rows, cols, h, w)
    out = np.full((rows, h + pad, cols, w + pad), np.nan)
    out[:, :h, :, :w] = tiles.transpose(0, 2, 1, 3)
    out = out.reshape(rows * (h + pad), cols * (w + pad))
    return np.ascontiguousarray(out[: out.shape[0] - pad, : out.shape[1] - pad]) if pad else out


def _image_figure(plt, img_shape, ax, target_px=1600, budget_in=10.0, labelled=False):
    """A new figure for an image drawn at an integer number of screen pixels per image pixel
    (1 for a large tapestry, up to 8 for a small one; about ``target_px`` across), with
    room on the right for a colour bar and on top for a title.

    ``labelled``: room for axis labels and tick labels on the left and below, and for a
    line of text above the image (the figure is complete when saved without a tight box).

    Returns (fig, ax, cax): cax is the colour bar's axes (None when ``ax`` was given).
    """
    if ax is not None:
        return ax.figure, ax, None
    h, w = img_shape
    scale = max(1, min(8, target_px // max(h, w)))
    px_w, px_h = scale * w, scale * h
    dpi = max(72.0, max(px_w, px_h) / budget_in)
    iw, ih = px_w / dpi, px_h / dpi                   # image size in inches
    left, right, bottom, top = (0.8, 1.25, 0.65, 0.8) if labelled else (0.1, 1.25, 0.1, 0.55)   # inches
    fw, fh = iw + left + right, ih + bottom + top
    fig = plt.figure(figsize=(fw, fh), dpi=dpi)
    ax = fig.add_axes([left / fw, bottom / fh, iw / fw, ih / fh])
    cax = fig.add_axes([(left + iw + 0.12) / fw, bottom / fh + 0.1 * ih / fh, 0.16 / fw, 0.8 * ih / fh])
    return fig, ax, cax


def weight_tapestry(W: SparseDream | ArrayLike, grid: tuple[int, int] | None = None,
                    tile_shape: tuple[int, int] | None = None, pad: int = 1, title: str | None = None,
                    ax: Axes | None = None, cmap: str | None = None,
                    region: tuple[int, int, int, int] | None = None, vmax: float | None = None,
                    normalize: str | None = None, signed: bool = False) -> Figure:
    """The weight tapestry: one tile per neuron, placed at its grid position.

    Parameters
    ----------
    W : fitted SparseDream, or array-like of shape (N, D) (``model.weights_``)
    grid : (rows, cols), or None with a model
    tile_shape : (h, w) or None (square)
    pad : int
        Pixels between tiles (drawn in a pale blue-grey).
    title : str or None
    ax : matplotlib Axes or None (a new figure)
    cmap : str or None
        None: "Greys" (black: large), or "bwr" with ``signed``.
    region : (row_start, row_stop, col_start, col_stop) or None
        Draw only these grid rows and columns (a close-up of a large map).
    vmax : float or None
        Top of the colour scale; None: the 99.5th percentile of the weights drawn (a few
        overgrown synapses would otherwise wash out every other tile). Black is vmax,
        white 0.
    normalize : {None, "tile"}
        "tile": divide every tile by its own maximum (shows the shape of weak prototypes;
        the colour bar then runs from 0 to 1).
    signed : bool
        A red-blue scale centred on 0, from ``-max|W|`` to ``+max|W|`` (or ``+-vmax``), as
        Krotov and Hopfield draw their hidden units (red positive, blue negative). With
        fewer neurons than grid cells (an array and a larger grid) the rest stay blank.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    if not _is_model(W) and grid is not None:
        A = np.asarray(W, dtype=np.float64)
        cells = int(grid[0]) * int(grid[1])
        if A.ndim == 2 and A.shape[0] < cells:   # blank cells after the last neuron
            W = np.vstack([A, np.full((cells - A.shape[0], A.shape[1]), np.nan)])
    W, grid = _weights_grid(W, grid)
    region = _check_region(region, grid)
    Wr, g = _subgrid(W, grid, region)
    if normalize not in (None, "tile"):
        raise ValueError(f"normalize must be None or 'tile', got {normalize!r}")
    if normalize == "tile":
        mx = np.max(np.abs(Wr), axis=1, keepdims=True)
        Wr = Wr / np.where(mx > 0, mx, 1.0)
    img = tile_image(Wr, g, tile_shape, pad)
    fig, ax, cax = _image_figure(plt, img.shape, ax)
    finite = np.isfinite(img).any()
    label = "weight / the tile's largest" if normalize == "tile" else "weight"
    if signed:
        lim = float(vmax) if vmax is not None else (float(np.nanmax(np.abs(img))) if finite else 1.0)
        lim = lim if lim > 0 else 1.0
        cm = plt.get_cmap(cmap or "bwr").with_extremes(bad=_PAD_COLOUR)
        im = ax.imshow(img, cmap=cm, vmin=-lim, vmax=lim, interpolation="nearest")
        extend = "both" if finite and np.nanmax(np.abs(img)) > lim else "neither"
        _colorbar(fig, im, ax, cax, label, ticks=[-lim, 0.0, lim], extend=extend)
    else:
        if vmax is None:
            vmax = float(np.nanpercentile(img, 99.5)) if finite else 1.0
            vmax = 1.0 if normalize == "tile" else vmax
        vmax = vmax if vmax > 0 else 1.0
        vmin = min(0.0, float(np.nanmin(img))) if finite else 0.0
        cm = plt.get_cmap(cmap or "Greys").with_extremes(bad=_PAD_COLOUR)
        im = ax.imshow(img, cmap=cm, vmin=vmin, vmax=vmax, interpolation="nearest")
        extend = "max" if finite and np.nanmax(img) > vmax else "neither"
        _colorbar(fig, im, ax, cax, label, ticks=[vmin, vmax] if vmin < 0 else [0, vmax], extend=extend)
    ax.set_axis_off()
    if title is None and region != (0, grid[0], 0, grid[1]):
        title = f"grid rows {region[0]}-{region[1] - 1}, columns {region[2]}-{region[3] - 1}"
    if title:
        ax.set_title(title)
    return fig


# ----------------------------------------------------------------------------- lateral
def lateral_map(model_or_L: SparseDream | ArrayLike | sp.spmatrix | sp.sparray, neuron: int,
                grid: tuple[int, int] | None = None, ax: Axes | None = None, title: str | None = None,
                cmap: str = "Greys", crop: str | bool = "auto", margin: int = 2) -> Figure:
    """One neuron's lateral row drawn on the grid (seed 000, In [13]).

    Pixel ``(y, x)`` is ``L[neuron, y * cols + x]``: how strongly the neuron at ``(y, x)``
    feeds ``neuron``'s competition. The neuron itself is outlined in red. The axes are the
    grid's rows and columns.

    Parameters
    ----------
    model_or_L : fitted SparseDream (its ``lateral_``), or an (N, N) ndarray / scipy.sparse matrix
    neuron : int
    grid : (rows, cols), or None with a model
    crop : "auto" or bool
        Draw only the neighbourhood: the grid rows and columns of the neuron and of every
        neuron connected to it, plus ``margin`` on each side ("auto": when that is smaller
        than the grid; a 5 x 5 box is otherwise lost on an 80 x 80 grid).
    margin : int
    ax, title, cmap : as usual

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    from matplotlib.patches import Rectangle
    if _is_model(model_or_L):
        grid = model_or_L.config_.grid if grid is None else grid
    elif grid is None:
        raise ValueError("grid=(rows, cols) is needed when the lateral is a matrix")
    rows, cols = (int(grid[0]), int(grid[1]))
    row = _lateral_row(model_or_L, neuron, rows * cols)
    n = int(neuron)
    full = row.reshape(rows, cols)
    y, x = divmod(n, cols)
    r0, r1, c0, c1 = 0, rows, 0, cols
    if crop:
        ys, xs = np.nonzero(full)
        ys, xs = np.append(ys, y), np.append(xs, x)
        cand = (max(0, int(ys.min()) - margin), min(rows, int(ys.max()) + margin + 1),
                max(0, int(xs.min()) - margin), min(cols, int(xs.max()) + margin + 1))
        if crop != "auto" or cand != (0, rows, 0, cols):
            r0, r1, c0, c1 = cand
    img = full[r0:r1, c0:c1]
    h, w = img.shape
    if ax is None:
        size = min(7.0, max(4.0, w / 3))
        fig, ax = plt.subplots(figsize=(size + 1.6, size * h / w + 0.9))
    else:
        fig = ax.figure
    vmax = float(np.max(np.abs(full))) or 1.0
    vmin = min(0.0, float(full.min()))
    extent = (c0 - 0.5, c1 - 0.5, r1 - 0.5, r0 - 0.5)     # axes in grid coordinates
    im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest", extent=extent)
    ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, format="%.3g", label=f"lateral weight into neuron {n}")
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    ax.set_xlabel("grid column")
    ax.set_ylabel("grid row")
    shown = "" if (r0, r1, c0, c1) == (0, rows, 0, cols) else f" (part of the {rows} x {cols} grid)"
    ax.set_title(title or f"lateral weights into neuron {n} (row {y}, col {x}, red){shown}", fontsize=10)
    return fig


def lateral_tapestry(model_or_W: SparseDream | ArrayLike, neuron: int, grid: tuple[int, int] | None = None,
                     lateral: ArrayLike | sp.spmatrix | sp.sparray | None = None,
                     tile_shape: tuple[int, int] | None = None, crop: str | bool = "auto", margin: int = 1,
                     pad: int = 1, title: str | None = None, ax: Axes | None = None) -> Figure:
    """The weight tapestry weighted by one neuron's lateral row (seed 000, In [22]/[42]).

    The seed's picture: ``nf = L[neuron]``, ``nf[neuron] = -max(nf)``, then the tapestry of
    ``W * nf[:, None]``. Tiles of the neurons that excite ``neuron`` show their prototypes
    (red) in proportion to the connection; the neuron's own prototype is drawn negated
    (blue) for reference; unconnected neurons are blank.

    Parameters
    ----------
    model_or_W : fitted SparseDream, or ndarray (N, D) with ``grid`` and ``lateral``
    neuron : int
    grid : (rows, cols) or None with a model
    lateral : (N, N) ndarray / scipy.sparse, or None with a model
    tile_shape : (h, w) or None (square)
    crop : "auto", bool
        Draw only the grid rows and columns around the connected neurons (plus ``margin``);
        "auto" crops when they cover less than the whole grid.
    margin : int
    pad, title, ax : as in :func:`weight_tapestry`

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    W, grid = _weights_grid(model_or_W, grid)
    row = _lateral_row(model_or_W if lateral is None else lateral, neuron, W.shape[0])
    n = int(neuron)
    nf = row.copy()
    top = float(nf.max()) if nf.size else 0.0
    nf[n] = -top if top > 0 else -1.0
    rows, cols = grid
    region = (0, rows, 0, cols)
    if crop:
        sup = np.flatnonzero(nf)
        ys, xs = np.divmod(sup, cols)
        cand = (max(0, ys.min() - margin), min(rows, ys.max() + margin + 1),
                max(0, xs.min() - margin), min(cols, xs.max() + margin + 1))
        if crop != "auto" or cand != region:
            region = tuple(int(v) for v in cand)
    Wn = W * nf[:, None]
    Wr, g = _subgrid(Wn, grid, region)
    img = tile_image(Wr, g, tile_shape, pad)
    fig, ax, cax = _image_figure(plt, img.shape, ax, budget_in=8.0)
    lim = float(np.nanpercentile(np.abs(img), 99.5)) if np.isfinite(img).any() else 1.0
    lim = lim if lim > 0 else 1.0
    cm = plt.get_cmap("RdBu_r").with_extremes(bad=_PAD_COLOUR)
    im = ax.imshow(img, cmap=cm, vmin=-lim, vmax=lim, interpolation="nearest")
    _colorbar(fig, im, ax, cax, f"weight x lateral weight into neuron {n}")
    ax.set_axis_off()
    y, x = divmod(n, cols)
    where = "" if region == (0, rows, 0, cols) else \
        f"; grid rows {region[0]}-{region[1] - 1}, cols {region[2]}-{region[3] - 1} shown"
    ax.set_title(title or f"prototypes x lateral weight into neuron {n}\n"
                          f"(row {y}, col {x}: itself, negated, blue{where})", fontsize=10)
    return fig


# ----------------------------------------------------------------------------- usage
def usage_map(usage: Usage | ArrayLike, grid: tuple[int, int] | None = None, ax: Axes | None = None,
              title: str | None = None, cmap: str = "viridis", log: str | bool = "auto") -> Figure:
    """How often each neuron wins, drawn on the grid; neurons that never win in light grey.

    Parameters
    ----------
    usage : sparsedream_fast.metrics.Usage, or array of shape (N,) of win counts
    grid : (rows, cols), or None with a Usage
    log : "auto" or bool
        Logarithmic colour scale ("auto": when the counts span more than a factor 20).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    from matplotlib.colors import LogNorm, Normalize
    if hasattr(usage, "counts"):
        counts = np.asarray(usage.counts)
        grid = usage.grid if grid is None else grid
    else:
        counts = np.asarray(usage)
        if grid is None:
            raise ValueError("grid=(rows, cols) is needed with an array of counts")
    rows, cols = (int(grid[0]), int(grid[1]))
    if counts.shape != (rows * cols,):
        raise ValueError(f"counts must have shape ({rows * cols},), got {counts.shape}")
    img = np.ma.masked_equal(counts.reshape(rows, cols).astype(float), 0)
    pos = counts[counts > 0]
    if log == "auto":
        log = pos.size > 0 and pos.max() > 20 * pos.min()
    norm = LogNorm(max(1, pos.min()), max(1, pos.max())) if (log and pos.size) else \
        Normalize(0, max(1, pos.max() if pos.size else 1))
    if ax is None:
        size = min(8.0, max(4.0, cols / 10))
        fig, ax = plt.subplots(figsize=(size + 1.2, size * rows / cols + 0.6))
    else:
        fig = ax.figure
    cm = plt.get_cmap(cmap).with_extremes(bad=_DEAD_COLOUR)
    im = ax.imshow(img, cmap=cm, norm=norm, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label="wins")
    ax.set_xticks([])
    ax.set_yticks([])
    n_dead = int(np.count_nonzero(counts == 0))
    f = pos / pos.sum() if pos.size else pos
    ent = float(-(f * np.log(f)).sum()) if pos.size else 0.0
    ax.set_title(title or f"winner usage: {counts.size - n_dead} of {counts.size} neurons win, "
                          f"{n_dead} never (grey)\nusage entropy {ent / math.log(max(counts.size, 2)):.2f} of max",
                 fontsize=10)
    return fig


# ----------------------------------------------------------------------------- curves
_CURVE_ORDER = ("reconstruction_mse", "quantization_error", "topographic_error", "neurons_used",
                "dead_neurons", "usage_entropy", "usage_perplexity", "steps_per_second")
_NOT_CURVES = ("n_steps", "epoch", "step", "seconds")
#: what each measure's vertical axis counts
_CURVE_UNITS = {"reconstruction_mse": "squared error per pixel", "quantization_error": "distance to nearest prototype",
                "topographic_error": "fraction of inputs", "neurons_used": "neurons", "dead_neurons": "neurons",
                "usage_entropy": "nats", "usage_perplexity": "neurons", "steps_per_second": "steps / s",
                "topographic_error_winners": "fraction of inputs", "dead_fraction": "fraction of neurons"}


def training_curves(history: Iterable[dict], keys: list[str] | None = None, x: str = "n_steps",
                    title: str | None = None, log: str | bool = "auto") -> Figure:
    """Measures recorded during training, one panel per measure, against training steps.

    Parameters
    ----------
    history : list of dict (e.g. ``metrics.History``), each with the ``x`` key and numbers
    keys : list of str or None
        Measures to draw; None: every numeric key but the step counters (known ones first).
    x : str
        Key of the horizontal axis (``n_steps``, ``seconds`` or ``epoch``).
    log : "auto" or bool
        Logarithmic vertical axis ("auto": for positive measures spanning more than a
        factor 30).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    recs = list(history)
    if not recs:
        raise ValueError("the history is empty: nothing to draw")
    if any(x not in r for r in recs):
        raise ValueError(f"every record needs the key {x!r}")
    if keys is None:
        present = [k for k in recs[0] if k not in _NOT_CURVES and k != x]
        for r in recs[1:]:
            present += [k for k in r if k not in present and k not in _NOT_CURVES and k != x]
        numeric = [k for k in present if all(isinstance(r.get(k, 0.0), (int, float, np.number))
                                             and not isinstance(r.get(k, 0.0), bool) for r in recs)]
        keys = [k for k in _CURVE_ORDER if k in numeric] + [k for k in numeric if k not in _CURVE_ORDER]
    else:
        keys = list(keys)
        missing = [k for k in keys if all(k not in r for r in recs)]
        if missing:
            raise ValueError(f"no record has {missing}; keys present: {sorted(set().union(*recs))}")
    if not keys:
        raise ValueError("the history holds no numeric measure to draw")
    ncols = min(3, len(keys))
    nrows = int(math.ceil(len(keys) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False,
                             constrained_layout=True)
    xs = np.array([r[x] for r in recs], dtype=float)
    for ax, k in zip(axes.ravel(), keys):
        ys = np.array([r.get(k, np.nan) for r in recs], dtype=float)
        ax.plot(xs, ys, marker="o", markersize=3)
        ax.set_title(k.replace("_", " "), fontsize=10)
        ax.set_xlabel({"n_steps": "training steps", "seconds": "training seconds"}.get(x, x))
        if k in _CURVE_UNITS:
            ax.set_ylabel(_CURVE_UNITS[k])
        ok = ys[np.isfinite(ys)]
        if (log is True or log == "auto") and ok.size and ok.min() > 0 and (log is True or ok.max() > 30 * ok.min()):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(keys):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------- activity
def activity_frames(model: SparseDream, X: ArrayLike, trace: str | float | None = "auto",
                    tile_shape: tuple[int, int] | None = None) -> dict:
    """What the side-by-side pictures show, for every row of X (no learning).

    Parameters
    ----------
    model : fitted SparseDream
    X : array-like of shape (n_frames, n_inputs)
    trace : "auto", float or None
        Run the trace ``o += alpha * (a - o)`` over the frames, as seed 001 In [34] does:
        "auto" uses the model's ``trace`` (none when the model has none).
    tile_shape : (h, w) or None (square)

    Returns
    -------
    dict with
        ``inputs`` (F, h, w), ``activity`` (F, rows, cols) (``o``, or ``a`` without trace),
        ``reconstruction`` (F, h, w) (``r = W^T o``), ``winners`` (F, k) int64,
        ``mse`` (F,) per-frame mean squared error; float64.
    """
    if not _is_model(model):
        raise TypeError("activity_frames needs a fitted SparseDream model")
    cfg = model.config_
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != cfg.n_inputs or X.shape[0] == 0:
        raise ValueError(f"X must have shape (n_frames, {cfg.n_inputs}), got {X.shape}")
    h, w = _tile_shape(cfg.n_inputs, tile_shape)
    alpha = cfg.trace if trace == "auto" else trace
    if alpha is not None and not (0 < float(alpha) <= 1):
        raise ValueError(f"trace must be in (0, 1], 'auto' or None, got {trace!r}")
    A = np.asarray(model.transform(X), dtype=np.float64)
    win = model.winners(X)
    if alpha is not None:
        O = np.empty_like(A)
        o = np.zeros(A.shape[1])
        for i in range(A.shape[0]):
            o += float(alpha) * (A[i] - o)
            O[i] = o
        A = O
    R = A @ np.asarray(model.weights_, dtype=np.float64)
    mse = np.mean((X - R) ** 2, axis=1)
    rows, cols = cfg.grid
    return dict(inputs=X.reshape(-1, h, w), activity=A.reshape(-1, rows, cols),
                reconstruction=R.reshape(-1, h, w), winners=np.asarray(win), mse=mse)


class _ActivityPanel:
    """Three panels (input, activity on the grid, reconstruction) whose images can be
    updated frame by frame."""

    def __init__(self, frames, normalize, title, figsize=None, dpi=None):
        plt = _plt()
        self.f = frames
        self.normalize = normalize
        self.title = title
        rows, cols = frames["activity"].shape[1:]
        self.cols = cols
        # input and reconstruction share one grey scale: the inputs' 99.5th percentile
        self.vmax = float(np.percentile(frames["inputs"], 99.5))
        self.vmax = self.vmax if self.vmax > 0 else 1.0
        ratio = [1.0, 1.35 * min(3.0, max(1.0, cols / rows)), 1.0]  # the grid panel a little larger
        fig, axes = plt.subplots(1, 3, figsize=figsize or (9.5, 3.6), dpi=dpi,
                                 gridspec_kw=dict(width_ratios=ratio, wspace=0.12))
        fig.subplots_adjust(left=0.02, right=0.98, bottom=0.03, top=0.82)
        self.fig, self.axes = fig, axes
        kw = dict(cmap="gray_r", interpolation="nearest")
        self.im_in = axes[0].imshow(frames["inputs"][0], vmin=0, vmax=self.vmax, **kw)
        self.im_act = axes[1].imshow(self._act(0), vmin=0, vmax=1, **kw)
        self.im_rec = axes[2].imshow(self._rec(0), vmin=0, vmax=1 if normalize else self.vmax, **kw)
        self.dots = axes[1].scatter(*self._dots(0), s=60, facecolors="none", edgecolors="red",
                                    linewidths=1.0)
        axes[0].set_title("input")
        k = frames["winners"].shape[1]
        axes[1].set_title(f"activity on the {rows} x {cols} grid")
        axes[1].set_xlabel(f"red circles: the {k} winners; grey: activity / its largest", fontsize=8)
        self.rec_title = axes[2].set_title("reconstruction")
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        self.sup = fig.suptitle(self._sup(0), fontsize=10, y=0.97)

    def _act(self, i):
        a = self.f["activity"][i]
        m = float(np.max(np.abs(a)))
        return a / m if m > 1e-10 else a

    def _rec(self, i):
        r = self.f["reconstruction"][i]
        if self.normalize:
            m = float(np.max(r))
            return r / m if m > 1e-10 else r
        return r

    def _dots(self, i):
        win = self.f["winners"][i]
        return win % self.cols, win // self.cols

    def _sup(self, i):
        head = f"{self.title}   " if self.title else ""
        return f"{head}frame {i}   reconstruction error {self.f['mse'][i]:.4f} (mean squared, per pixel)"

    def update(self, i):
        self.im_in.set_data(self.f["inputs"][i])
        self.im_act.set_data(self._act(i))
        self.im_rec.set_data(self._rec(i))
        self.dots.set_offsets(np.column_stack(self._dots(i)))
        self.sup.set_text(self._sup(i))
        return self.im_in, self.im_act, self.im_rec, self.dots, self.sup


def activity_figure(model: SparseDream, X: ArrayLike, index: int = 0, trace: str | float | None = "auto",
                    normalize: bool = False, tile_shape: tuple[int, int] | None = None,
                    title: str | None = None) -> Figure:
    """Input, activity on the grid and reconstruction of one input, side by side.

    The activity panel shows ``a`` (or the trace ``o``) divided by its maximum, with the
    current winners circled in red (the panel says so); input and reconstruction share one grey scale
    (``normalize=True`` divides the reconstruction by its maximum, as the seeds do).

    Parameters
    ----------
    model : fitted SparseDream
    X : array-like of shape (n_frames, n_inputs) or (n_inputs,)
    index : int
        Which frame to draw (with a trace, the frames before it build the trace up).
    trace, tile_shape : as in :func:`activity_frames`
    normalize : bool
    title : str or None

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = np.asarray(X)
    X = X[None, :] if X.ndim == 1 else X
    if not 0 <= int(index) < X.shape[0]:
        raise ValueError(f"index must be in [0, {X.shape[0]}), got {index!r}")
    frames = activity_frames(model, X[: int(index) + 1], trace, tile_shape)
    panel = _ActivityPanel(frames, normalize, title)
    panel.update(int(index))
    return panel.fig


def class_weights(model_or_W: DreamComp | ArrayLike, n_classes: int | None = None,
                  grid: tuple[int, int] | None = None, max_neurons: int = 100, title: str | None = None,
                  class_names: Sequence[str] | None = None) -> Figure:
    """The label-synapse bars of a DreamComp model (seed 002's ``plot_class_weights``).

    One small bar chart per neuron (its C label synapses, the neuron's class in red), laid
    out on the neuron grid, each titled with the neuron's class (its largest label
    synapse); the bottom row names the classes on its x axis.

    Parameters
    ----------
    model_or_W : DreamComp (fitted) or ndarray of shape (N, D + C)
    n_classes : int or None
        C; taken from the model when one is given.
    grid : (rows, cols) or None
        Layout of the neurons; default the model's grid, else as square as possible.
    max_neurons : int
        Draw at most this many neurons (the first ones), like the notebook's ``x * y``.
    class_names : sequence of C str or None
        Names on the x axes (default 0 .. C-1).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    if hasattr(model_or_W, "weights_") and hasattr(model_or_W, "n_classes_"):
        W = np.asarray(model_or_W.weights_, dtype=np.float64)
        n_classes = model_or_W.n_classes_ if n_classes is None else n_classes
        grid = grid if grid is not None else getattr(model_or_W, "grid", None)
    else:
        W = np.asarray(model_or_W, dtype=np.float64)
    if W.ndim != 2:
        raise ValueError(f"weights must be 2-D (N, D + C), got shape {W.shape}")
    if n_classes is None or not 1 <= int(n_classes) < W.shape[1]:
        raise ValueError(f"n_classes must be between 1 and D + C - 1 = {W.shape[1] - 1}, got {n_classes!r}")
    C = int(n_classes)
    n = min(W.shape[0], int(max_neurons))
    if grid is None:
        cols = int(np.ceil(np.sqrt(n)))
        rows = int(np.ceil(n / cols))
    else:
        rows, cols = int(grid[0]), int(grid[1])
        rows = min(rows, int(np.ceil(n / cols)))
    n = min(n, rows * cols)
    names = [str(c) for c in range(C)] if class_names is None else [str(c) for c in class_names]
    if len(names) != C:
        raise ValueError(f"class_names must name the {C} classes, got {len(names)}")
    labels = W[:n, -C:]
    top = labels.max() if labels.size and labels.max() > 0 else 1.0
    used_rows = int(np.ceil(n / cols))
    width, height = 1.05 * cols + 0.9, 0.78 * used_rows + 1.1
    fig, axes = plt.subplots(used_rows, cols, figsize=(width, height), squeeze=False, sharey=True)
    # no empty band between the heading and the panels: margins in inches
    fig.subplots_adjust(left=0.55 / width, right=1 - 0.1 / width, bottom=0.6 / height, top=1 - 0.45 / height,
                        wspace=0.12, hspace=0.45)
    for i, ax in enumerate(axes.ravel()):
        if i >= n:
            ax.set_axis_off()
            continue
        cls = int(np.argmax(labels[i]))
        colours = ["C0"] * C
        colours[cls] = "C3"
        ax.bar(np.arange(C), labels[i], color=colours, width=0.8)
        ax.set_ylim(min(0.0, labels.min()), top * 1.05)
        ax.set_xlim(-0.6, C - 0.4)
        ax.set_yticks([])
        ax.set_title(names[cls], fontsize=7, pad=1)
        last_row = i + cols >= n
        ax.set_xticks(np.arange(C))
        if last_row:
            ax.set_xticklabels(names, fontsize=5 if max(len(t) for t in names) < 3 else 4,
                               rotation=0 if max(len(t) for t in names) < 3 else 90)
            ax.tick_params(axis="x", length=1.5, pad=1)
        else:
            ax.set_xticklabels([])
            ax.tick_params(axis="x", length=0)
    fig.supxlabel("class (label synapse)", fontsize=8, y=0.05 / height * 4)
    fig.supylabel("label synapse weight", fontsize=8, x=0.15 / width)
    fig.suptitle(title or f"label synapses of the first {n} neurons (title and red bar: the neuron's class)",
                 fontsize=9, y=1 - 0.12 / height)
    return fig


# ----------------------------------------------------------------------------- TNN (rule D)
def _spike_times(times, T):
    from .tnn.config import check_T
    from .tnn.encoding import check_spike_times
    T = check_T(T)
    arr = np.asarray(times)
    if arr.ndim not in (1, 2) or arr.shape[-1] == 0 or arr.size == 0:
        raise ValueError(f"times must have shape (n_lines,) or (n_waves, n_lines) with at least one "
                         f"line and wave, got shape {arr.shape}")
    S = check_spike_times(arr, T, arr.shape[-1], "times", ndim=(1, 2))
    return (S[None, :] if S.ndim == 1 else S), T


def spike_raster(times: ArrayLike, T: int, layout: str = "side", ax: Axes | None = None, title: str | None = None,
                 ylabel: str = "line", color: str | tuple[float, ...] = "black", markersize: float | None = None,
                 separator_colour: str | tuple[float, ...] = "#8fa3bf") -> Figure:
    """Spike raster of one TNN wave or of a sequence of waves: a dot per spike.

    Parameters
    ----------
    times : array-like of shape (n_lines,) or (n_waves, n_lines), integers in [0, T]
        Spike times, ``T`` meaning no spike (``tnn.image_rows(X)[i]`` or
        ``TNNNetwork.run(X)[layer][i]``, uint8).
    T : int
        Steps per wave, 1..255.
    layout : {"side", "stacked", "waves"}
        ``"waves"``: one row per wave, top to bottom, one column per line, a dot per spike
        coloured by its time within the wave (darker: earlier; a colour bar says so): the
        picture of an image presented row by row keeps the image upright (y limits
        ``(n_waves - 0.5, -0.5)``). ``"side"``: waves side by side along one time axis (wave w occupies steps
        ``w * T .. w * T + T - 1``; x limits ``(-0.5, n_waves * T - 0.5)``), a vertical
        separator between waves. ``"stacked"``: all waves share the axis ``0 .. T - 1``, wave
        w drawn on rows ``w * n_lines .. (w + 1) * n_lines - 1`` (y limits ``(-0.5, n_waves *
        n_lines - 0.5)``), a horizontal separator between waves. One wave: no separator.
    ax : matplotlib Axes or None (a new figure)
    title : str or None (default: spike and wave counts)
    ylabel : str
        What the lines are ("line", "neuron", "pixel"): the y label, or with ``"waves"``
        the x label.
    color : colour of the dots
    markersize : float or None
        Dot area in points^2 (scatter's ``s``); None: smaller for larger rasters.
    separator_colour : colour of the wave separators

    Returns
    -------
    matplotlib.figure.Figure
        Its axes hold one ``PathCollection`` with one offset per spike, in wave order, and
        ``n_waves - 1`` separator lines.
    """
    plt = _plt()
    if layout not in ("side", "stacked", "waves"):
        raise ValueError(f"layout must be 'side', 'stacked' or 'waves', got {layout!r}")
    S, T = _spike_times(times, T)
    n_waves, n = S.shape
    w, line = np.nonzero(S < T)
    t = S[w, line].astype(np.float64)
    if layout == "waves":
        return _wave_raster(plt, S, T, w, line, t, ax, title, ylabel, markersize)
    if layout == "side":
        xs, ys = w * T + t, line.astype(np.float64)
        xlim, ylim = (-0.5, n_waves * T - 0.5), (-0.5, n - 0.5)
    else:
        xs, ys = t, (w * n + line).astype(np.float64)
        xlim, ylim = (-0.5, T - 0.5), (-0.5, n_waves * n - 0.5)
    if ax is None:
        width = 10.0 if layout == "side" and n_waves > 1 else 5.0
        height = min(8.0, max(2.5, 0.06 * (ylim[1] + 0.5) + 1.2))
        fig, ax = plt.subplots(figsize=(width, height), constrained_layout=True)
    else:
        fig = ax.figure
    if markersize is None:
        cells = (xlim[1] + 0.5) * (ylim[1] + 0.5)
        markersize = float(np.clip(6000.0 / max(cells, 1.0), 4.0, 30.0))
    ax.scatter(xs, ys, s=markersize, c=color, marker="o", linewidths=0, zorder=3)
    for b in range(1, n_waves):
        if layout == "side":
            ax.axvline(b * T - 0.5, color=separator_colour, linewidth=0.7, zorder=1)
        else:
            ax.axhline(b * n - 0.5, color=separator_colour, linewidth=0.7, zorder=1)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    if layout == "side" and n_waves > 1:
        step = max(1, int(math.ceil(n_waves / 14)))
        ax.set_xticks([b * T + (T - 1) / 2 for b in range(0, n_waves, step)])
        ax.set_xticklabels([str(b) for b in range(0, n_waves, step)])
        ax.set_xlabel(f"wave ({T} steps each)")
        ax.set_ylabel(ylabel)
    elif layout == "stacked" and n_waves > 1:
        step = max(1, int(math.ceil(n_waves / 14)))
        ax.set_yticks([b * n + (n - 1) / 2 for b in range(0, n_waves, step)])
        ax.set_yticklabels([str(b) for b in range(0, n_waves, step)])
        ax.set_xlabel("step within the wave")
        ax.set_ylabel(f"wave ({n} {ylabel}s each)")
    else:
        ax.set_xlabel("step within the wave")
        ax.set_ylabel(ylabel)
    ax.set_title(title or f"{xs.size} spikes of {n} {ylabel}s over {n_waves} wave{'s' if n_waves > 1 else ''} "
                          f"(T = {T})", fontsize=10)
    return fig


def _wave_raster(plt, S, T, w, line, t, ax, title, what, markersize):
    """spike_raster's "waves" layout: waves down, lines across, colour = spike time."""
    n_waves, n = S.shape
    if ax is None:
        width = min(10.0, max(4.5, 0.2 * n + 2.2))
        height = min(8.0, max(3.0, 0.2 * n_waves + 1.2))
        fig, ax = plt.subplots(figsize=(width, height), constrained_layout=True)
    else:
        fig = ax.figure
    if markersize is None:
        markersize = float(np.clip(2400.0 / max(n, n_waves, 1), 4.0, 40.0))
    from matplotlib.colors import LinearSegmentedColormap
    greys = LinearSegmentedColormap.from_list("early_dark", ["black", "#c8c8c8"])   # no white: late stays visible
    sc = ax.scatter(line.astype(np.float64), w.astype(np.float64), s=markersize, c=t, cmap=greys,
                    vmin=0, vmax=max(T - 1, 1), marker="s", linewidths=0, zorder=3)
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(n_waves - 0.5, -0.5)
    ax.set_aspect("equal" if max(n, n_waves) <= 1.5 * min(n, n_waves) else "auto")
    ax.set_xlabel(what)
    ax.set_ylabel("wave (top first)")
    ax.set_facecolor("#f4f6f9")
    cb = fig.colorbar(sc, ax=ax, fraction=0.046, pad=0.02)
    cb.set_label(f"spike time in the wave (step 0 .. {T - 1})")
    ax.set_title(title or f"{w.size} spikes of {n} {what}s over {n_waves} waves (T = {T})", fontsize=10)
    return fig


def _column_blocks(net, column):
    """(label, width) of each connection into ``column`` of a TNNNetwork, in weight order."""
    return [(f"from {c.source} ({len(c.lines)})", len(c.lines)) for c in net._connections if c.target == column]


def column_weights(weights: TNNColumn | TNNNetwork | ArrayLike, shape: tuple[int, int] | None = None,
                   w_max: int | None = None, grid: tuple[int, int] | None = None, pad: int | None = None,
                   ax: Axes | None = None, title: str | None = None, cmap: str = "Greys",
                   column: str | None = None, blocks: list[tuple[str, int]] | None = None) -> Figure:
    """A TNN column's weights: one small image per neuron, on an integer colour scale 0..w_max.

    Parameters
    ----------
    weights : TNNColumn or TNNNetwork (fitted), or array-like of shape (N, D)
        A TNNColumn gives its ``weights_`` and ``w_max``; a TNNNetwork the column named by
        ``column`` (its weights, its w_max, and its connections as ``blocks``). An array:
        Integer weights in [0, w_max] (``TNNNetwork.weights_[name]``, or one connection's
        block, ``TNNNetwork.connection_weights(source, name)``), any integer dtype or
        integral floats.
    shape : (h, w) with h * w == D, or None
        None: each neuron's D synapses as one strip (1 x D): the picture is the N x D matrix,
        neuron n on row n, with axis ticks. ``(h, w)``: each neuron's weights reshaped to
        h x w (row-major), the tiles laid out on ``grid``, axes off. For a column reading
        several delayed copies of a row, the copies are the tile's rows in the order they
        were connected.
    w_max : int or None
        Top of the colour scale; None: the model's ``w_max``, else the largest weight (at
        least 1). Every weight must lie in [0, w_max].
    grid : (rows, cols) or None
        Layout of the tiles with ``shape``; default as square as possible (rows * cols >= N,
        empty cells blank). Ignored without ``shape``.
    pad : int or None
        Pixels between tiles; None: 0 without ``shape``, 1 with it.
    ax : matplotlib Axes or None (a new figure)
    title : str or None
    cmap : str
        Resampled to ``w_max + 1`` colours: one colour per integer weight.
    column : str or None
        With a TNNNetwork: the column to draw (default: its first readout column); named in
        the title.
    blocks : list of (str, int) or None
        Without ``shape``: consecutive groups of synapses (label, width), e.g. the pixel
        synapses then the feedback synapses; a red line marks where each block ends and
        its label stands above it.

    Returns
    -------
    matplotlib.figure.Figure
        Its axes hold one image (``AxesImage``) of shape ``(N, D)`` without ``shape``, or
        ``(rows * (h + pad) - pad, cols * (w + pad) - pad)`` with it (gaps are NaN, drawn in
        a pale blue-grey), and a colour bar with integer ticks.
    """
    plt = _plt()
    from matplotlib.colors import BoundaryNorm
    from matplotlib.ticker import MaxNLocator
    model_wmax = None
    if hasattr(weights, "connection_weights") and hasattr(weights, "weights_"):   # a TNNNetwork
        net = weights
        if column is None:
            cols = net.readout if isinstance(net.readout, list) and net.readout else \
                [n for n, (kind, _) in net.layers.items() if kind == "column"][:1]
            column = cols[0] if isinstance(cols, list) else cols
        if column not in net.weights_:
            raise ValueError(f"no column named {column!r}; columns: {list(net.weights_)}")
        model_wmax = int(net._layers[column].spec.w_max)
        blocks = _column_blocks(net, column) if blocks is None and shape is None else blocks
        weights = net.weights_[column]
    elif hasattr(weights, "weights_") and hasattr(weights, "w_max"):
        model_wmax = int(weights.w_max)
        weights = weights.weights_
    W = np.asarray(weights)
    if W.ndim != 2 or W.shape[0] == 0 or W.shape[1] == 0:
        raise ValueError(f"weights must have shape (N, D) with N, D >= 1, got {W.shape}")
    if W.dtype == bool or not (np.issubdtype(W.dtype, np.integer) or np.issubdtype(W.dtype, np.floating)):
        raise TypeError(f"weights must hold integers, got dtype {W.dtype}")
    if np.issubdtype(W.dtype, np.floating) and not (np.all(np.isfinite(W)) and np.all(W == np.round(W))):
        raise ValueError("weights must be integers in [0, w_max] (TNN weights); got non-integral values")
    W = W.astype(np.int64)
    if w_max is None:
        w_max = model_wmax if model_wmax is not None else max(1, int(W.max()))
    if isinstance(w_max, bool) or not isinstance(w_max, (int, np.integer)) or w_max < 1:
        raise ValueError(f"w_max must be an integer >= 1, got {w_max!r}")
    w_max = int(w_max)
    if W.min() < 0 or W.max() > w_max:
        raise ValueError(f"weights must lie in [0, w_max={w_max}], got [{W.min()}, {W.max()}]")
    N, D = W.shape
    if shape is None:
        pad = 0 if pad is None else int(pad)
        g, tile = (N, 1), (1, D)
    else:
        tile = _tile_shape(D, shape)
        pad = 1 if pad is None else int(pad)
        if grid is None:
            cols = int(math.ceil(math.sqrt(N * tile[0] / tile[1])))
            cols = max(1, min(N, cols))
            g = (int(math.ceil(N / cols)), cols)
        else:
            g = (int(grid[0]), int(grid[1]))
            if g[0] < 1 or g[1] < 1 or g[0] * g[1] < N:
                raise ValueError(f"grid {tuple(grid)} has fewer than N={N} cells")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    Wf = np.full((g[0] * g[1], D), np.nan)
    Wf[:N] = W
    img = tile_image(Wf, g, tile, pad)
    fig, ax, cax = _image_figure(plt, img.shape, ax, target_px=900, budget_in=8.0, labelled=shape is None)
    cm = plt.get_cmap(cmap).resampled(w_max + 1).with_extremes(bad=_PAD_COLOUR)
    norm = BoundaryNorm(np.arange(w_max + 2) - 0.5, w_max + 1)
    im = ax.imshow(img, cmap=cm, norm=norm, interpolation="nearest", aspect="equal")
    cb = _colorbar(fig, im, ax, cax, "weight")
    step = int(math.ceil((w_max + 1) / 9))
    cb.set_ticks(np.arange(0, w_max + 1, step), labels=[str(v) for v in range(0, w_max + 1, step)])
    if shape is None:
        ax.set_xlabel("synapse")
        ax.set_ylabel("neuron")
        ax.yaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
        if blocks:
            widths = [int(b[1]) for b in blocks]
            if sum(widths) != D or min(widths) < 1:
                raise ValueError(f"blocks must split the {D} synapses, got widths {widths}")
            edge = 0
            for label, width in blocks:
                ax.text(edge + width / 2 - 0.5, -0.5 - 0.01 * N, label, ha="center", va="bottom", fontsize=8,
                        color="C3")
                edge += width
                if edge < D:
                    ax.axvline(edge - 0.5, color="C3", linewidth=1.2)
    else:
        ax.set_axis_off()
    mean = float(W.mean())
    head = f"column {column!r}: " if column is not None else ""
    ax.set_title(title or f"{head}{N} neurons x {D} synapses, weights 0..{w_max} (mean {mean:.2f})",
                 fontsize=10, pad=16 if blocks and shape is None else 6)
    return fig


def can_write_mp4() -> bool:
    """True when matplotlib can write MP4 here (an ``ffmpeg`` executable is found)."""
    import matplotlib
    exe = matplotlib.rcParams.get("animation.ffmpeg_path", "ffmpeg")
    return shutil.which(exe) is not None


def animate_activity(model: SparseDream, X: ArrayLike, path: str | os.PathLike | None = None, fps: int = 10,
                     dpi: int = 80, trace: str | float | None = "auto", normalize: bool = False,
                     tile_shape: tuple[int, int] | None = None, title: str | None = None) -> FuncAnimation | str:
    """The side-by-side animation of seeds 000/001: input, activity on the grid, reconstruction.

    Parameters
    ----------
    model : fitted SparseDream
    X : array-like of shape (n_frames, n_inputs)
        One animation frame per row (keep it short: a few dozen to a few hundred).
    path : str or None
        ``*.gif`` (pillow) or ``*.mp4`` (needs ffmpeg: :func:`can_write_mp4`). None: return
        the Animation without writing (display it in a notebook with ``.to_jshtml()``).
    fps : int
        Frames per second of the file.
    dpi : int
        Resolution of the file (the figure is 9.5 x 3.6 inches).
    trace, normalize, tile_shape, title : as in :func:`activity_figure`

    Returns
    -------
    matplotlib.animation.FuncAnimation, or str (the path written)
    """
    plt = _plt()
    from matplotlib import animation
    if path is not None:
        path = os.fspath(path)
        ext = os.path.splitext(path)[1].lower()
        if ext not in (".gif", ".mp4"):
            raise ValueError(f"the animation file must end in .gif or .mp4, got {path!r}")
        if ext == ".mp4" and not can_write_mp4():
            raise RuntimeError("writing MP4 needs ffmpeg, which is not installed here "
                               "(apt-get install ffmpeg / conda install ffmpeg); write a .gif instead")
    frames = activity_frames(model, X, trace, tile_shape)
    panel = _ActivityPanel(frames, normalize, title, dpi=dpi)
    n = frames["inputs"].shape[0]
    ani = animation.FuncAnimation(panel.fig, panel.update, frames=n, interval=1000.0 / fps, blit=False)
    if path is None:
        return ani
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    writer = animation.PillowWriter(fps=fps) if path.lower().endswith(".gif") else \
        animation.FFMpegWriter(fps=fps, bitrate=1200)
    ani.save(path, writer=writer, dpi=dpi)
    plt.close(panel.fig)
    return path


# ----------------------------------------------------------------------------- saving
def save_figure(fig: Figure, path: str | os.PathLike, dpi: float | None = None, close: bool = True) -> str:
    """Save a figure (folders made as needed) and, by default, close it; returns the path.

    ``dpi=None`` keeps the figure's own dpi (:func:`weight_tapestry` picks one that shows
    every weight pixel).
    """
    plt = _plt()
    path = os.fspath(path)
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    fig.savefig(path, dpi=dpi if dpi is not None else "figure", bbox_inches="tight")
    if close:
        plt.close(fig)
    return path


# ------------------------------------------------------------------------------ sweeps
def _sweep_params(table, metric):
    """The swept parameters of a sweep table: columns before ``seed`` with several values."""
    cols = list(table.columns)
    if "seed" not in cols or metric not in cols:
        raise ValueError(f"not a sweep table with the metric {metric!r} (columns: {cols})")
    out = []
    for c in cols[:cols.index("seed")]:
        if len({_key(v) for v in table[c]}) > 1:
            out.append(c)
    return out


def _key(v) -> str:
    """A value's identity in a sweep table (numpy scalars as the Python ones)."""
    return repr(v.item() if isinstance(v, np.generic) else v)


def _levels(values):
    """Distinct values in order of appearance (values of any type, compared by _key)."""
    seen, out = set(), []
    for v in values:
        if _key(v) not in seen:
            seen.add(_key(v))
            out.append(v)
    return out


def _numeric(levels) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
               for v in levels)


def sweep_metric(table: pd.DataFrame, metric: str, params: list[str] | None = None, ax: Axes | None = None,
                 title: str | None = None, cmap: str = "viridis") -> Figure:
    """One measure of a sweep against its swept parameters (mean over the seeds).

    Two parameters: a heat map (first parameter down, second across, each cell the mean
    over seeds, written in the cell; failed runs leave a blank cell). One parameter: a
    line of the mean with the seeds' spread (min to max) and each seed's value as a
    point. More than two: lines against the first, one per combination of the others.
    No swept parameter: the value of each seed.

    Parameters
    ----------
    table : pandas.DataFrame
        A table of :func:`sparsedream_fast.sweep.run` (columns: parameters, ``seed``, metrics, ...).
    metric : str
        The column to draw.
    params : list of str or None
        The parameters to draw against (default: the columns before ``seed`` that vary).
    ax : matplotlib Axes or None
    title : str or None
    cmap : str
        Colour map of the heat map.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    params = _sweep_params(table, metric) if params is None else list(params)
    vals = np.asarray(table[metric], dtype=float)
    fig = ax.figure if ax is not None else None
    n_seeds = len(_levels(table["seed"]))
    label = f"{metric} (mean of {n_seeds} seed{'s' if n_seeds != 1 else ''})"
    if len(params) == 2:
        rows, cols = _levels(table[params[0]]), _levels(table[params[1]])
        ri = {_key(v): i for i, v in enumerate(rows)}
        ci = {_key(v): i for i, v in enumerate(cols)}
        acc = np.zeros((len(rows), len(cols)))
        cnt = np.zeros_like(acc)
        for a, b, v in zip(table[params[0]], table[params[1]], vals):
            if np.isfinite(v):
                acc[ri[_key(a)], ci[_key(b)]] += v
                cnt[ri[_key(a)], ci[_key(b)]] += 1
        mean = np.where(cnt > 0, acc / np.maximum(cnt, 1), np.nan)
        if fig is None:
            fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(cols), 1.2 + 0.7 * len(rows)), layout="constrained")
        im = ax.imshow(np.ma.masked_invalid(mean), cmap=cmap, aspect="auto")
        cb = fig.colorbar(im, ax=ax)
        cb.set_label(label)
        ax.set_xticks(range(len(cols)), [str(v) for v in cols])
        ax.set_yticks(range(len(rows)), [str(v) for v in rows])
        ax.set_xlabel(params[1])
        ax.set_ylabel(params[0])
        finite = mean[np.isfinite(mean)]
        mid = 0.5 * (finite.min() + finite.max()) if finite.size else 0.0
        for i in range(len(rows)):
            for j in range(len(cols)):
                if np.isfinite(mean[i, j]):
                    ax.text(j, i, f"{mean[i, j]:.4g}", ha="center", va="center", fontsize=8,
                            color="white" if mean[i, j] < mid else "black")
    else:
        if fig is None:
            fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
        if not params:
            ax.plot(np.asarray(table["seed"]), vals, "o")
            ax.set_xlabel("seed")
            ax.set_ylabel(metric)
        else:
            x_name, rest = params[0], params[1:]
            xs = _levels(table[x_name])
            numeric = _numeric(xs)
            pos = {_key(v): (float(v) if numeric else i) for i, v in enumerate(xs)}
            groups = {}
            for idx in range(len(table)):
                g = tuple(_key(table[c].iloc[idx]) for c in rest)
                groups.setdefault(g, []).append(idx)
            for members in list(groups.values())[:12]:
                by_x = {}
                for idx in members:
                    by_x.setdefault(_key(table[x_name].iloc[idx]), []).append(vals[idx])
                px = [pos[_key(v)] for v in xs if _key(v) in by_x]
                ys = [np.asarray(by_x[_key(v)]) for v in xs if _key(v) in by_x]
                m = [np.nanmean(y) if np.isfinite(y).any() else np.nan for y in ys]
                name = ", ".join(f"{c}={table[c].iloc[members[0]]}" for c in rest) or None
                line, = ax.plot(px, m, "-o", label=name)
                lo = [np.nanmin(y) if np.isfinite(y).any() else np.nan for y in ys]
                hi = [np.nanmax(y) if np.isfinite(y).any() else np.nan for y in ys]
                if n_seeds > 1:
                    ax.fill_between(px, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
                    for x, y in zip(px, ys):
                        ax.plot(np.full(y.shape, x), y, ".", color=line.get_color(), alpha=0.6)
            if not numeric:
                ax.set_xticks([pos[_key(v)] for v in xs], [str(v) for v in xs])
            elif len(xs) > 2 and min(xs) > 0 and max(xs) / min(xs) >= 20:
                ax.set_xscale("log")
            ax.set_xlabel(x_name)
            ax.set_ylabel(label + (", band: min to max" if n_seeds > 1 else ""))
            if rest:
                ax.legend(fontsize=8, title=None if len(groups) <= 12 else f"first 12 of {len(groups)}")
        ax.grid(alpha=0.3)
    ax.set_title(title if title is not None else f"{metric} over the sweep")
    return fig
