"""sdf.plot.spike_raster and sdf.plot.column_weights (TNN pictures, rule D)."""
from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
PIL = pytest.importorskip("PIL.Image")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402

from sparsedream_fast import plot  # noqa: E402
from sparsedream_fast.tnn import TNNColumn, TNNNetwork, image_rows  # noqa: E402

T = 16


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def waves():
    """Spike times of 3 images of 6 x 5 pixels (rows = waves), some silent lines."""
    rng = np.random.default_rng(0)
    X = rng.random((3, 30))
    X[X < 0.4] = 0.0
    return image_rows(X, shape=(6, 5), T=T)


def _dots(ax):
    cols = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(cols) == 1
    return cols[0].get_offsets()


def _separators(ax):
    return [ln for ln in ax.lines]


def assert_png_not_blank(path, min_std=5.0):
    img = np.asarray(PIL.open(path).convert("L"), dtype=float)
    assert img.shape[0] > 50 and img.shape[1] > 50
    assert img.std() > min_std, f"{path} looks blank (pixel std {img.std():.2f})"


# ----------------------------------------------------------------------------- spike_raster
def test_raster_one_wave():
    times = np.array([0, 3, T, 15, T, 7], dtype=np.uint8)
    fig = plot.spike_raster(times, T)
    ax = fig.axes[0]
    off = _dots(ax)
    assert off.shape == (4, 2)                       # one dot per spike, none for t == T
    assert sorted(map(tuple, off.tolist())) == sorted([(0, 0), (3, 1), (15, 3), (7, 5)])
    assert ax.get_xlim() == (-0.5, T - 0.5)
    assert ax.get_ylim() == (-0.5, 6 - 0.5)
    assert _separators(ax) == []                     # one wave: no separator
    assert "4 spikes" in ax.get_title()


def test_raster_sequence_side_by_side(waves):
    S = waves[1]                                     # (6 waves, 5 lines)
    fig = plot.spike_raster(S, T, ylabel="pixel")
    ax = fig.axes[0]
    off = _dots(ax)
    w, line = np.nonzero(S < T)
    assert off.shape == (w.size, 2)
    np.testing.assert_array_equal(off[:, 0], w * T + S[w, line])
    np.testing.assert_array_equal(off[:, 1], line)
    assert ax.get_xlim() == (-0.5, 6 * T - 0.5)
    assert ax.get_ylim() == (-0.5, 5 - 0.5)
    seps = _separators(ax)
    assert len(seps) == 6 - 1
    assert [ln.get_xdata()[0] for ln in seps] == [b * T - 0.5 for b in range(1, 6)]
    assert ax.get_ylabel() == "pixel"
    assert ax.get_xlabel().startswith("wave")


def test_raster_sequence_stacked(waves):
    S = waves[2]
    fig = plot.spike_raster(S, T, layout="stacked")
    ax = fig.axes[0]
    off = _dots(ax)
    w, line = np.nonzero(S < T)
    np.testing.assert_array_equal(off[:, 0], S[w, line])
    np.testing.assert_array_equal(off[:, 1], w * 5 + line)
    assert ax.get_xlim() == (-0.5, T - 0.5)
    assert ax.get_ylim() == (-0.5, 6 * 5 - 0.5)
    seps = _separators(ax)
    assert [ln.get_ydata()[0] for ln in seps] == [b * 5 - 0.5 for b in range(1, 6)]


def test_raster_silent_and_given_axes():
    fig, ax = plt.subplots()
    out = plot.spike_raster(np.full((3, 4), T, np.uint8), T, ax=ax, title="silent")
    assert out is fig and ax.get_title() == "silent"
    assert _dots(ax).shape[0] == 0
    assert ax.get_xlim() == (-0.5, 3 * T - 0.5)


def test_raster_of_a_network_run(tmp_path, waves):
    net = TNNNetwork(T=T, seed=1).add_input("px", 5).add_column("c", 8, threshold=4, k=2)
    net.connect("px", "c", init=(4, 8)).fit(waves)
    rec = net.run(waves)["c"][0]                     # (6 waves, 8 neurons)
    fig = plot.spike_raster(rec, T, ylabel="neuron")
    off = _dots(fig.axes[0])
    assert off.shape[0] == np.count_nonzero(rec < T) <= 6 * 2    # k-WTA: at most k per wave
    path = plot.save_figure(fig, tmp_path / "raster.png")
    assert_png_not_blank(path)


@pytest.mark.parametrize("bad, exc, match", [
    (np.zeros((2, 3, 4), np.uint8), ValueError, "shape"),
    (np.zeros((), np.uint8), ValueError, "shape"),
    (np.zeros((2, 0), np.uint8), ValueError, "shape"),
    (np.array([0, 17], np.uint8), ValueError, r"\[0, T=16\]"),
    (np.array([-1, 3]), ValueError, r"\[0, T=16\]"),
    (np.array([0.5, 3.0]), TypeError, "integer"),
])
def test_raster_rejects_bad_times(bad, exc, match):
    with pytest.raises(exc, match=match):
        plot.spike_raster(bad, T)


def test_raster_rejects_bad_T_and_layout():
    with pytest.raises(ValueError):
        plot.spike_raster(np.zeros(3, np.uint8), 0)
    with pytest.raises(ValueError, match="layout"):
        plot.spike_raster(np.zeros(3, np.uint8), T, layout="diagonal")


# ----------------------------------------------------------------------------- column_weights
def _image(fig):
    ims = fig.axes[0].get_images()
    assert len(ims) == 1
    return ims[0]


def test_weights_matrix_without_shape():
    W = np.arange(6 * 4).reshape(6, 4) % 17
    fig = plot.column_weights(W, w_max=16)
    im = _image(fig)
    arr = np.ma.getdata(im.get_array())
    assert arr.shape == (6, 4)                       # neuron n on row n, no gaps
    np.testing.assert_array_equal(arr, W)
    norm = im.norm
    assert norm.vmin == -0.5 and norm.vmax == 16.5   # integer scale 0..w_max, one colour per value
    assert im.get_cmap().N == 17
    np.testing.assert_array_equal(norm(np.arange(17)), np.arange(17))   # value v -> colour v
    cbar_ticks = fig.axes[1].get_yticks()
    assert cbar_ticks[0] == 0 and cbar_ticks[-1] <= 16 and np.all(cbar_ticks == np.round(cbar_ticks))
    assert fig.axes[0].get_xlabel() == "synapse" and fig.axes[0].get_ylabel() == "neuron"


def test_weights_tiles_with_shape():
    W = np.random.default_rng(0).integers(0, 9, size=(5, 6))
    fig = plot.column_weights(W, shape=(2, 3), w_max=8, grid=(2, 3))
    arr = np.ma.getdata(_image(fig).get_array())
    assert arr.shape == (2 * 3 - 1, 3 * 4 - 1)       # 2 x 3 tiles of 2 x 3, 1 pixel apart
    for n in range(5):
        y, x = divmod(n, 3)
        np.testing.assert_array_equal(arr[3 * y:3 * y + 2, 4 * x:4 * x + 3], W[n].reshape(2, 3))
    assert np.isnan(arr[3:5, 8:11]).all()            # the sixth cell is empty
    assert np.isnan(arr[2]).all()                    # gap between tile rows
    assert _image(fig).norm.vmax == 8.5


def test_weights_default_grid_and_w_max():
    W = np.full((10, 4), 3)
    fig = plot.column_weights(W, shape=(2, 2))
    im = _image(fig)
    assert im.norm.vmax == 3.5                       # w_max: the largest weight
    arr = np.ma.getdata(im.get_array())
    assert np.count_nonzero(arr == 3) == 10 * 4      # every neuron drawn once
    assert np.count_nonzero(np.isnan(arr)) > 0


def test_weights_of_a_fitted_column(tmp_path, waves):
    col = TNNColumn(5, n_neurons=6, threshold=8, k=2, w_max=12, init=(0, 6), seed=0)
    col.fit(waves.reshape(-1, 5))
    fig = plot.column_weights(col)
    im = _image(fig)
    assert im.norm.vmax == 12.5                      # the column's own w_max
    np.testing.assert_array_equal(np.ma.getdata(im.get_array()), col.weights_)
    assert_png_not_blank(plot.save_figure(fig, tmp_path / "w.png"))


def test_weights_into_given_axes():
    fig, (a, b) = plt.subplots(1, 2)
    out = plot.column_weights(np.ones((3, 4), np.uint8), ax=b, title="x")
    assert out is fig and b.get_title() == "x" and len(b.get_images()) == 1 and not a.get_images()


@pytest.mark.parametrize("W, kw, exc, match", [
    (np.zeros(5), {}, ValueError, "shape"),
    (np.zeros((0, 3)), {}, ValueError, "shape"),
    (np.zeros((2, 3, 4)), {}, ValueError, "shape"),
    (np.zeros((3, 6)), {"shape": (4, 2)}, ValueError, "does not hold D=6"),
    (np.zeros((3, 7)), {"shape": None, "w_max": 0}, ValueError, "w_max"),
    (np.full((2, 2), 17), {"w_max": 16}, ValueError, r"\[0, w_max=16\]"),
    (np.full((2, 2), -1), {"w_max": 16}, ValueError, r"\[0, w_max=16\]"),
    (np.full((2, 2), 0.5), {}, ValueError, "integer"),
    (np.array([["a", "b"]]), {}, TypeError, "integers"),
    (np.zeros((5, 4)), {"shape": (2, 2), "grid": (2, 2)}, ValueError, "fewer than N=5"),
])
def test_weights_reject_bad_input(W, kw, exc, match):
    with pytest.raises(exc, match=match):
        plot.column_weights(W, **kw)


# ----------------------------------------------------------------------------- issue 15.3
def test_wave_raster_keeps_the_image_upright(waves):
    S = waves[0]                                   # 6 waves (image rows) of 5 lines
    fig = plot.spike_raster(S, T, layout="waves", ylabel="pixel")
    ax = fig.axes[0]
    off = _dots(ax)
    w, line = np.nonzero(S < T)
    assert sorted(map(tuple, off.tolist())) == sorted(zip(line.tolist(), w.tolist()))   # x = pixel, y = row
    assert ax.get_ylim() == (6 - 0.5, -0.5)        # row 0 at the top
    assert ax.get_xlabel() == "pixel" and ax.get_ylabel().startswith("wave")
    assert [a.get_ylabel() for a in fig.axes if a.get_label() == "<colorbar>"][0].startswith("spike time")


def test_column_weights_mark_the_connections_and_name_the_column():
    net = TNNNetwork(T=T, seed=0, backend="numpy")
    net.add_input("px", 5).add_column("rec", 4, threshold=3, k=2).add_delay("buf", "rec")
    net.connect("px", "rec", init=(0, 2)).connect("buf", "rec", init=(0, 2))
    net.fit(np.full((1, 2, 5), T, np.uint8))
    fig = plot.column_weights(net, column="rec")
    ax = fig.axes[0]
    assert [ln.get_xdata()[0] for ln in ax.lines] == [4.5]       # pixel synapses end, feedback begins
    assert {t.get_text() for t in ax.texts} == {"from px (5)", "from buf (4)"}
    assert ax.get_title().startswith("column 'rec'")
    assert plot.column_weights(net).axes[0].get_title().startswith("column 'rec'")
    with pytest.raises(ValueError, match="no column"):
        plot.column_weights(net, column="buf")
    with pytest.raises(ValueError, match="blocks"):
        plot.column_weights(np.ones((3, 4), np.uint8), blocks=[("a", 3)])
