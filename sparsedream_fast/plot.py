"""Pictures of maps and their training (matplotlib); every function returns a Figure.

matplotlib is imported inside the functions, with the non-interactive Agg backend when no
display is configured, so importing the package stays cheap and works headless.
"""
from __future__ import annotations

import numpy as np

__all__ = ["weight_tapestry", "tile_image"]


def _plt():
    import matplotlib
    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        import os
        if not os.environ.get("DISPLAY"):
            matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def tile_image(W, grid, tile_shape=None, pad=1) -> np.ndarray:
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
    if tile_shape is None:
        side = int(round(np.sqrt(W.shape[1])))
        if side * side != W.shape[1]:
            raise ValueError(f"D={W.shape[1]} is not a square; pass tile_shape=(h, w)")
        tile_shape = (side, side)
    h, w = tile_shape
    if h * w != W.shape[1]:
        raise ValueError(f"tile_shape {tile_shape} does not hold D={W.shape[1]} values")
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), np.nan)
    tiles = W.reshape(rows, cols, h, w)
    for y in range(rows):
        for x in range(cols):
            out[y * (h + pad): y * (h + pad) + h, x * (w + pad): x * (w + pad) + w] = tiles[y, x]
    return out


def weight_tapestry(W, grid, tile_shape=None, pad=1, title=None, ax=None, cmap="Greys"):
    """The weight tapestry: one tile per neuron, placed at its grid position.

    Parameters
    ----------
    W : array-like of shape (N, D), e.g. ``model.weights_``
    grid : (rows, cols)
    tile_shape : (h, w) or None (square)
    title : str or None
    ax : matplotlib Axes or None (a new figure)

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    img = tile_image(W, grid, tile_shape, pad)
    if ax is None:
        size = min(12.0, max(4.0, img.shape[1] / 100))
        fig, ax = plt.subplots(figsize=(size, size * img.shape[0] / img.shape[1]))
    else:
        fig = ax.figure
    # a few overgrown synapses would wash out every other tile: scale to the 99.5th percentile
    vmax = float(np.nanpercentile(img, 99.5)) if np.isfinite(img).any() else 1.0
    vmax = vmax if vmax > 0 else 1.0
    cm = plt.get_cmap(cmap).copy()
    cm.set_bad("white")
    im = ax.imshow(img, cmap=cm, vmin=0, vmax=vmax, interpolation="nearest")
    fig.colorbar(im, ax=ax, ticks=[0, vmax], fraction=0.046, pad=0.02, extend="max")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig
