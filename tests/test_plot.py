"""sdf.plot: every picture is written, holds what it should, and is not blank."""
from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
PIL = pytest.importorskip("PIL.Image")

import matplotlib.pyplot as plt  # noqa: E402

import sparsedream_fast as sdf  # noqa: E402
from sparsedream_fast import metrics, plot  # noqa: E402


def assert_png_not_blank(path, min_std=10.0):
    img = np.asarray(PIL.open(path).convert("L"), dtype=float)
    assert img.shape[0] > 50 and img.shape[1] > 50
    assert img.std() > min_std, f"{path} looks blank (pixel std {img.std():.2f})"
    return img


@pytest.fixture(scope="module")
def frames():
    from sparsedream_fast.data import digit_tapestry_frames
    X, _ = digit_tapestry_frames(n_frames=400, source="generated", seed=1)
    return X


@pytest.fixture(scope="module")
def model(frames):
    return sdf.SparseDream(n_inputs=400, grid=(6, 6), k=3, lr=0.1, backend="numpy", seed=0).fit(frames, epochs=1)


@pytest.fixture(scope="module")
def learned(frames):
    return sdf.SparseDream(n_inputs=400, grid=(5, 5), k=3, lr=0.02, competition="normalized_lateral",
                           output="competition", lateral=sdf.lateral.random(radius=1), learn_lateral=True,
                           w_max=0.5, init=(0.0, 0.5), backend="numpy", seed=0).fit(frames[:200], epochs=1)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_tile_image_layout():
    W = np.arange(2 * 3 * 4, dtype=float).reshape(6, 4)  # 2 x 3 grid of 2 x 2 tiles
    img = plot.tile_image(W, (2, 3), pad=1)
    assert img.shape == (2 * 3 - 1, 3 * 3 - 1)
    for n in range(6):
        y, x = divmod(n, 3)
        assert np.array_equal(img[3 * y:3 * y + 2, 3 * x:3 * x + 2], W[n].reshape(2, 2))
    assert np.isnan(img[2]).all() and np.isnan(img[:, 2]).all()
    assert np.array_equal(plot.tile_image(W, (2, 3), pad=0),
                          W.reshape(2, 3, 2, 2).transpose(0, 2, 1, 3).reshape(4, 6))
    assert plot.tile_image(W, (2, 3), tile_shape=(1, 4), pad=0).shape == (2, 12)
    with pytest.raises(ValueError, match="square"):
        plot.tile_image(np.ones((6, 6)), (2, 3))
    with pytest.raises(ValueError, match="N ="):
        plot.tile_image(W, (3, 3))


def test_weight_tapestry_png(model, tmp_path):
    fig = plot.weight_tapestry(model, title="test map")
    assert fig.axes[0].get_title() == "test map"
    img = fig.axes[0].images[0].get_array()
    assert img.shape == (6 * 21 - 1, 6 * 21 - 1)
    p = plot.save_figure(fig, tmp_path / "sub" / "w.png")
    assert not plt.fignum_exists(fig.number)  # closed
    assert_png_not_blank(p)
    # the array form, a close-up and per-tile normalisation
    fig = plot.weight_tapestry(model.weights_, (6, 6), region=(1, 3, 2, 5), normalize="tile")
    assert fig.axes[0].images[0].get_array().shape == (2 * 21 - 1, 3 * 21 - 1)
    assert "rows 1-2" in fig.axes[0].get_title()
    assert_png_not_blank(plot.save_figure(fig, tmp_path / "zoom.png"))
    with pytest.raises(ValueError, match="region"):
        plot.weight_tapestry(model, region=(0, 7, 0, 2))
    with pytest.raises(ValueError, match="grid"):
        plot.weight_tapestry(model.weights_)


def test_lateral_map(learned, tmp_path):
    fig = plot.lateral_map(learned, 12)
    shown = fig.axes[0].images[0].get_array()
    row = learned.lateral_.toarray()[12]
    assert np.allclose(shown, row.reshape(5, 5))
    assert shown[2, 2] == 0 and np.count_nonzero(shown) == 8  # radius-1 mask, no self connection
    assert_png_not_blank(plot.save_figure(fig, tmp_path / "lat.png"))
    # a plain matrix with a grid
    fig = plot.lateral_map(learned.lateral_.toarray(), 0, grid=(5, 5), crop=False)
    assert np.allclose(fig.axes[0].images[0].get_array(), learned.lateral_.toarray()[0].reshape(5, 5))
    # the corner neuron's neighbourhood (radius 1) and a margin of 2: grid rows and columns 0-3
    fig = plot.lateral_map(learned.lateral_.toarray(), 0, grid=(5, 5))
    assert np.allclose(fig.axes[0].images[0].get_array(), learned.lateral_.toarray()[0].reshape(5, 5)[:4, :4])
    with pytest.raises(ValueError, match="neuron"):
        plot.lateral_map(learned, 25)


def test_lateral_tapestry_is_the_seeds_w_times_nf(learned, tmp_path):
    W, L, n = learned.weights_.astype(float), learned.lateral_.toarray(), 12
    nf = L[n].copy()
    nf[n] = -nf.max()
    fig = plot.lateral_tapestry(learned, n, crop=False)
    assert np.allclose(fig.axes[0].images[0].get_array(), plot.tile_image(W * nf[:, None], (5, 5)), equal_nan=True)
    assert_png_not_blank(plot.save_figure(fig, tmp_path / "lt.png"))
    # cropped to the neighbourhood of a corner neuron: rows 0-2, cols 0-2 (radius 1 + margin 1)
    fig = plot.lateral_tapestry(learned, 0)
    assert fig.axes[0].images[0].get_array().shape == (3 * 21 - 1, 3 * 21 - 1)


def test_no_lateral_is_a_clear_error(frames):
    m = sdf.SparseDream(n_inputs=400, grid=(2, 2), k=1, lateral=None, competition="drive",
                        backend="numpy").fit(frames[:20], epochs=1)
    with pytest.raises(ValueError, match="no lateral"):
        plot.lateral_map(m, 0)


def test_usage_map(model, frames, tmp_path):
    u = metrics.winner_usage(model, frames[:200])
    fig = plot.usage_map(u)
    shown = fig.axes[0].images[0].get_array()
    assert np.array_equal(shown.filled(0), u.counts.reshape(6, 6))
    assert np.array_equal(np.ma.getmaskarray(shown), u.counts.reshape(6, 6) == 0)
    assert_png_not_blank(plot.save_figure(fig, tmp_path / "u.png"))
    assert plot.usage_map(np.array([0, 3, 1, 0]), grid=(2, 2)) is not None


def test_training_curves(model, frames, tmp_path):
    h = metrics.History(frames[:50], every=100)
    m = sdf.SparseDream(n_inputs=400, grid=(4, 4), k=2, backend="numpy").fit(
        frames, epochs=1, callback=h, callback_every=h.every)
    fig = plot.training_curves(h)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles[0] == "reconstruction mse" and "neurons used" in titles
    line = fig.axes[0].lines[0]
    assert np.array_equal(line.get_xdata(), [100, 200, 300, 400])
    assert np.allclose(line.get_ydata(), h.column("reconstruction_mse"))
    assert_png_not_blank(plot.save_figure(fig, tmp_path / "curves.png"))
    fig = plot.training_curves([{"n_steps": 1, "a": 1.0}, {"n_steps": 2, "a": 0.5}], keys=["a"])
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 1
    with pytest.raises(ValueError, match="empty"):
        plot.training_curves([])
    with pytest.raises(ValueError, match="no record"):
        plot.training_curves(h, keys=["nope"])
    assert m.n_steps_ == 400


def test_activity_frames(model, frames):
    X = frames[:7]
    f = plot.activity_frames(model, X)
    assert f["inputs"].shape == (7, 20, 20) and f["activity"].shape == (7, 6, 6)
    A = model.transform(X)
    assert np.allclose(f["activity"].reshape(7, -1), A)
    assert np.allclose(f["reconstruction"].reshape(7, -1), A @ model.weights_.astype(float))
    assert np.array_equal(f["winners"], model.winners(X))
    # with a trace (seed 001 In [34]): o += alpha (a - o) over the frames
    g = plot.activity_frames(model, X, trace=0.5)
    o = np.zeros(36)
    for i in range(7):
        o += 0.5 * (A[i] - o)
        assert np.allclose(g["activity"][i].ravel(), o)
    assert np.allclose(g["reconstruction"][-1].ravel(), o @ model.weights_.astype(float))
    with pytest.raises(ValueError, match="trace"):
        plot.activity_frames(model, X, trace=2.0)


def test_activity_figure(model, frames, tmp_path):
    fig = plot.activity_figure(model, frames[:5], index=3, title="t")
    assert [ax.get_title() for ax in fig.axes] == ["input", "activity on the 6 x 6 grid", "reconstruction"]
    assert np.allclose(fig.axes[0].images[0].get_array(), frames[3].reshape(20, 20))
    assert_png_not_blank(plot.save_figure(fig, tmp_path / "act.png"))


def test_animation_gif_has_the_frames(model, frames, tmp_path):
    p = plot.animate_activity(model, frames[:6], tmp_path / "a" / "act.gif", fps=5, dpi=40)
    assert p.endswith("act.gif")
    im = PIL.open(p)
    assert im.n_frames == 6
    seen = []
    for i in range(im.n_frames):
        im.seek(i)
        seen.append(np.asarray(im.convert("L"), dtype=float))
    assert seen[0].std() > 10
    assert any(np.abs(seen[i] - seen[0]).max() > 0 for i in range(1, 6))  # it moves
    ani = plot.animate_activity(model, frames[:3])
    assert isinstance(ani, matplotlib.animation.Animation)
    ani.save(tmp_path / "again.gif", writer=matplotlib.animation.PillowWriter(fps=5), dpi=30)
    assert PIL.open(tmp_path / "again.gif").n_frames == 3
    with pytest.raises(ValueError, match=".gif or .mp4"):
        plot.animate_activity(model, frames[:3], tmp_path / "a.avi")


@pytest.mark.skipif(plot.can_write_mp4(), reason="ffmpeg is installed here")
def test_mp4_without_ffmpeg_is_a_clear_error(model, frames, tmp_path):
    with pytest.raises(RuntimeError, match="ffmpeg"):
        plot.animate_activity(model, frames[:3], tmp_path / "a.mp4")


@pytest.mark.skipif(not plot.can_write_mp4(), reason="ffmpeg is not installed here")
def test_mp4_with_ffmpeg(model, frames, tmp_path):  # pragma: no cover - depends on the machine
    p = plot.animate_activity(model, frames[:4], tmp_path / "a.mp4", dpi=40)
    assert (tmp_path / "a.mp4").stat().st_size > 0 and p.endswith(".mp4")


def test_class_weights_bars(tmp_path):
    """The DreamComp class-weight bars: one panel per neuron, titled with its class, not blank."""
    import matplotlib.image as mpimg
    from sparsedream_fast.plot import class_weights
    rng = np.random.default_rng(0)
    X, y = rng.random((60, 16)), rng.integers(0, 3, 60)
    m = sdf.DreamComp(n_inputs=16, n_neurons=6, n_classes=3, batch_size=10, backend="numpy").fit(X, y)
    fig = class_weights(m)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [str(c) for c in m.neuron_classes_]
    path = tmp_path / "bars.png"
    fig.savefig(path)
    img = mpimg.imread(path)
    assert img.std() > 0.05
    with pytest.raises(ValueError, match="n_classes"):
        class_weights(m.weights_)


# ----------------------------------------------------------------------------- labels (issue 15.3)
def _colorbar_labels(fig):
    out = []
    for ax in fig.axes:
        for mappable in list(ax.images) + list(ax.collections):
            if getattr(mappable, "colorbar", None) is not None:
                out.append(mappable.colorbar.ax.get_ylabel())
    return out


def test_every_colour_bar_says_what_it_shows(model, learned, frames):
    assert _colorbar_labels(plot.weight_tapestry(model)) == ["weight"]
    assert _colorbar_labels(plot.weight_tapestry(model, normalize="tile")) == ["weight / the tile's largest"]
    assert _colorbar_labels(plot.usage_map(metrics.winner_usage(model, frames[:50]))) == ["wins"]
    assert _colorbar_labels(plot.lateral_map(learned, 12)) == ["lateral weight into neuron 12"]
    assert _colorbar_labels(plot.lateral_tapestry(learned, 12)) == ["weight x lateral weight into neuron 12"]


def test_signed_tapestry_is_centred_on_zero():
    W = np.random.default_rng(0).normal(size=(6, 16))
    W[0, 0] = -5.0
    fig = plot.weight_tapestry(W, (2, 3), signed=True)
    im = fig.axes[0].get_images()[0]
    assert im.get_clim() == (-5.0, 5.0) and im.get_cmap().name.startswith("bwr")
    fig = plot.weight_tapestry(W[:5], (2, 3), signed=True)        # a blank sixth cell
    blank = lambda a: np.count_nonzero(~np.isfinite(np.ma.filled(a.astype(float), np.nan)))
    assert blank(im.get_array()) + 16 == blank(fig.axes[0].get_images()[0].get_array())


def test_lateral_map_zooms_to_the_neighbourhood():
    m = sdf.SparseDream(n_inputs=4, grid=(80, 80), k=2, backend="numpy", seed=0)
    m.fit(np.random.default_rng(0).random((3, 4)), epochs=1)
    n = 40 * 80 + 40
    fig = plot.lateral_map(m, n)
    ax = fig.axes[0]
    img = ax.get_images()[0].get_array()
    assert img.shape == (9, 9)                         # radius 2, margin 2: 5 + 2 + 2
    assert ax.get_xlim() == (35.5, 44.5) and ax.get_ylim() == (44.5, 35.5)   # grid coordinates
    assert ax.get_xlabel() == "grid column" and ax.get_ylabel() == "grid row"
    assert plot.lateral_map(m, n, crop=False).axes[0].get_images()[0].get_array().shape == (80, 80)


def test_training_curves_name_their_units(model, frames):
    h = metrics.History(frames[:50], every=100)
    model.set_params(warm_start=True)
    model.fit(frames, epochs=1, callback=h, callback_every=100)
    model.set_params(warm_start=False)
    fig = plot.training_curves(h, keys=["reconstruction_mse", "neurons_used"])
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_visible()] == ["squared error per pixel", "neurons"]


def test_activity_says_what_the_circles_are(model, frames):
    fig = plot.activity_figure(model, frames[:4], index=2)
    assert fig.axes[1].get_xlabel().startswith("red circles: the 3 winners")
    assert "per pixel" in fig.texts[0].get_text()


def test_class_bars_name_the_classes_and_leave_no_gap():
    rng = np.random.default_rng(0)
    X, y = rng.random((300, 16)), rng.integers(0, 4, 300)
    m = sdf.DreamComp(n_inputs=16, n_neurons=12, n_classes=4, batch_size=30, backend="numpy", seed=0).fit(X, y)
    fig = plot.class_weights(m, class_names=["a", "b", "c", "d"])
    panels = [ax for ax in fig.axes if ax.get_title()]
    bottom = [ax for ax in panels if [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c", "d"]]
    assert len(panels) == 12 and len(bottom) == 4      # a 4 x 3 grid: the last row names the classes
    top = max(ax.get_position().y1 for ax in panels)
    height = fig.get_size_inches()[1]
    assert (1 - top) * height < 0.6                    # under half an inch above the panels
    with pytest.raises(ValueError, match="class_names"):
        plot.class_weights(m, class_names=["a"])
