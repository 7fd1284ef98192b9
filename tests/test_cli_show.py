"""``sparsedream show`` on the checkpoint of every model: it prints the model and its state,
draws its weights, and a damaged file exits with status 2 and one line."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import sparsedream_fast as sdf
from sparsedream_fast import cli


def _data(n, d, seed=0):
    return np.random.default_rng(seed).random((n, d))


def _spikes(n, waves, lines, T=8):
    return np.random.default_rng(0).integers(0, T + 1, (n, waves, lines))


def _models():
    X, y = _data(40, 16), np.arange(40) % 3
    net = sdf.TNNNetwork(T=8, backend="numpy", seed=1).add_input("px", 6).add_column("rec", 5, 4, 2, w_max=7)
    net = net.add_delay("buf", "rec").connect("px", "rec", init=(0, 7)).connect("buf", "rec")
    return {
        "DreamComp": (sdf.DreamComp(n_neurons=6, batch_size=8, backend="numpy").fit(X, y),
                      ["weights.png", "class_weights.png"], "6 neurons, D = 16, 3 classes"),
        "KrotovHopfield": (sdf.KrotovHopfield(n_hidden=6, k=2, batch_size=8, backend="numpy").fit(X),
                           ["weights.png"], "6 hidden units, D = 16"),
        "KrotovHopfieldClassifier": (
            sdf.KrotovHopfieldClassifier(features=sdf.KrotovHopfield(n_hidden=6, k=2, batch_size=8), feature_epochs=2,
                                         n=2.0, epochs=3, batch_size=8).fit(X, y, validation_data=(X, y)),
            ["weights.png", "top_layer.png", "training.png"], "3 epochs of the top layer"),
        "TNNNetwork": (net.fit(_spikes(5, 3, 6)), ["weights_rec.png"], "column 'rec'"),
        "TNNColumn": (sdf.TNNColumn(n_neurons=4, threshold=3, k=1, T=8, backend="numpy").fit(_spikes(8, 1, 5)[:, 0]),
                      ["weights_column.png"], "4 neurons x 5 synapses"),
    }


MODELS = ["DreamComp", "KrotovHopfield", "KrotovHopfieldClassifier", "TNNNetwork", "TNNColumn"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    return {name: (m.save(folder / f"{name}.npz"), files, text) for name, (m, files, text) in _models().items()}


def _drawn(path) -> bool:
    img = np.asarray(Image.open(path).convert("L"), dtype=float)
    return img.std() > 5


@pytest.mark.parametrize("name", MODELS)
def test_show_draws_every_model(name, saved, tmp_path, capsys):
    path, files, text = saved[name]
    out = tmp_path / "look"
    assert cli.main(["show", path, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"model     : {name}(" in printed and text in printed, printed
    for f in files:
        assert _drawn(out / f), f
    assert sorted(p.name for p in out.iterdir()) == sorted(files)


@pytest.mark.parametrize("name", MODELS)
def test_show_refuses_a_damaged_file_in_one_line(name, saved, tmp_path, capsys):
    path, _, _ = saved[name]
    arrays = dict(np.load(path))
    key = next(k for k in arrays if k.startswith(("weights.", "fitted.weights_")))
    arrays[key] = arrays[key][:-1]
    np.savez(tmp_path / "bad.npz", **arrays)
    assert cli.main(["show", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sparsedream show: error: cannot read") and f"'{key}'" in err and "\n" not in err, err
    assert not (tmp_path / "o").exists()


def test_show_of_an_unfitted_model(tmp_path, capsys):
    path = sdf.TNNColumn(n_inputs=4).save(tmp_path / "c")
    assert cli.main(["show", path, "--out", str(tmp_path / "o")]) == 0
    assert "not fitted" in capsys.readouterr().out


def test_map_options_on_another_model_exit_2(saved, tmp_path, capsys):
    path, _, _ = saved["DreamComp"]
    assert cli.main(["show", path, "--neuron", "1", "--out", str(tmp_path / "o")]) == 2
    assert "--neuron applies to SparseDream maps only" in capsys.readouterr().err


def test_non_square_inputs_are_drawn_as_strips_or_with_a_tile_shape(tmp_path, capsys):
    path = sdf.KrotovHopfield(n_hidden=4, k=2, batch_size=5).fit(_data(20, 6)).save(tmp_path / "kh")
    assert cli.main(["show", path, "--out", str(tmp_path / "a")]) == 0
    assert cli.main(["show", path, "--tile-shape", "2", "3", "--out", str(tmp_path / "b")]) == 0
    a, b = (np.asarray(Image.open(tmp_path / d / "weights.png")) for d in "ab")
    assert a.shape != b.shape
    assert cli.main(["show", path, "--tile-shape", "2", "2", "--out", str(tmp_path / "c")]) == 2
    assert "--tile-shape" in capsys.readouterr().err
