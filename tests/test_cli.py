"""The ``sparsedream`` command end to end, with tiny settings, in a temporary folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")
PIL = pytest.importorskip("PIL.Image")

import sparsedream_fast  # noqa: E402
from sparsedream_fast import cli  # noqa: E402


def png_ok(path):
    img = np.asarray(PIL.open(path).convert("L"), dtype=float)
    return img.std() > 10


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt
    plt.close("all")


TINY_DEMO = ["--grid", "8", "8", "--frames", "300", "--epochs", "2", "--eval-frames", "100",
             "--anim-frames", "4", "--data", "generated", "--no-progress"]


def test_demo_writes_everything(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out)] + TINY_DEMO) == 0
    text = capsys.readouterr().out
    for name in ("weights.png", "activity.gif", "training.png", "usage.png", "metrics.json", "model.npz"):
        assert (out / name).exists(), name
        assert str(out / name) in text
    assert "done in" in text and "recon MSE" in text
    assert png_ok(out / "weights.png")
    assert PIL.open(out / "activity.gif").n_frames == 4
    rep = json.loads((out / "metrics.json").read_text())
    assert rep["steps"] == 600 and len(rep["history"]) == 2
    assert rep["metrics"]["n_inputs"] == 100 and 0 <= rep["metrics"]["topographic_error"] <= 1
    m = sparsedream_fast.SparseDream.load(out / "model.npz")
    assert m.n_steps_ == 600 and m.config_.grid == (8, 8)


def test_train_then_show(tmp_path, capsys):
    out = tmp_path / "run"
    rc = cli.main(["train", "--data", "tapestry", "--tapestry-source", "generated", "--frames", "200",
                   "--grid", "5", "5", "--k", "3", "--epochs", "2", "--history-every", "100",
                   "--snapshot-every", "200", "--eval-frames", "50", "--backend", "numpy", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    for name in ("model.npz", "metrics.json", "weights.png", "training.png"):
        assert (out / name).exists(), name
    assert png_ok(out / "weights.png")
    assert sorted(os.listdir(out / "snapshots")) == ["weights_000000200.png", "weights_000000400.png"]
    rep = json.loads((out / "metrics.json").read_text())
    assert [r["n_steps"] for r in rep["history"]] == [100, 200, 300, 400]
    assert rep["options"]["grid"] == [5, 5] and rep["options"]["k"] == 3 and rep["backend"] == "numpy"
    assert "wrote checkpoint" in text
    # show: pictures and measures of the checkpoint
    look = tmp_path / "look"
    rc = cli.main(["show", str(out / "model.npz"), "--out", str(look), "--eval-frames", "60", "--anim-frames", "3",
                   "--neuron", "0", "12", "--region", "0", "3", "0", "3", "--tapestry-source", "generated"])
    assert rc == 0
    text = capsys.readouterr().out
    for name in ("weights.png", "weights_zoom.png", "lateral_0.png", "lateral_tapestry_12.png", "usage.png",
                 "activity.gif", "metrics.json", "training.png"):
        assert (look / name).exists(), name
    assert "topographic error" in text
    assert PIL.open(look / "activity.gif").n_frames == 3
    assert json.loads((look / "metrics.json").read_text())["metrics"]["n_inputs"] == 60


def test_train_from_toml_with_flags_overriding(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text("""
[data]
data = "generated"
n_samples = 120
[model]
grid = [4, 4]
k = 2
lr = 0.05
competition = "normalized_lateral"
output = "competition"
lateral = "random"
lateral_radius = 1
learn_lateral = true
w_max = 0.5
error_clip = "none"
backend = "numpy"
[train]
epochs = 1
[output]
plots = false
eval_frames = 30
""")
    out = tmp_path / "toml"
    assert cli.main(["train", "--config", str(cfg), "--k", "3", "--out", str(out)]) == 0
    rep = json.loads((out / "metrics.json").read_text())
    opts = rep["options"]
    assert opts["k"] == 3 and opts["grid"] == [4, 4] and opts["error_clip"] is None and opts["learn_lateral"] is True
    assert not (out / "weights.png").exists()
    m = sparsedream_fast.SparseDream.load(out / "model.npz")
    assert m.k == 3 and m.learn_lateral and m.lateral_ is not None and m.n_steps_ == 120


def test_train_on_a_file_and_resume(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (50, 6, 6), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", images=imgs)
    out = tmp_path / "f"
    args = ["train", "--data-file", str(tmp_path / "d.npz"), "--grid", "3", "3", "--k", "2", "--epochs", "1",
            "--backend", "numpy", "--eval-frames", "20"]
    assert cli.main(args + ["--out", str(out)]) == 0
    assert (out / "weights.png").exists()
    m = sparsedream_fast.SparseDream.load(out / "model.npz")
    assert m.config_.n_inputs == 36 and m.n_steps_ == 50
    # continue: the steps add up, a scalar option may change
    out2 = tmp_path / "f2"
    assert cli.main(["train", "--data-file", str(tmp_path / "d.npz"), "--resume", str(out / "model.npz"),
                     "--epochs", "2", "--lr", "0.01", "--out", str(out2), "--no-plots"]) == 0
    m2 = sparsedream_fast.SparseDream.load(out2 / "model.npz")
    assert m2.n_steps_ == 150 and m2.lr == 0.01
    # equal to an uninterrupted run with the same options
    ref = sparsedream_fast.SparseDream(n_inputs=36, grid=(3, 3), k=2, backend="numpy", seed=0)
    X = imgs.reshape(50, -1) / 255.0
    ref.fit(X, epochs=1)
    ref.set_params(warm_start=True, lr=0.01)
    ref.fit(X, epochs=2)
    assert np.array_equal(ref.weights_, m2.weights_)


@pytest.mark.parametrize("args, message", [
    (["--data-file", "/nonexistent/x.npy"], "not found"),
    (["--config", "/nonexistent/c.toml"], "not found"),
    (["--data", "generated", "--n-samples", "20", "--lateral", "file"], "--lateral-file"),
])
def test_train_errors_are_clear(tmp_path, capsys, args, message):
    assert cli.main(["train", "--out", str(tmp_path / "e")] + args) == 2
    assert message in capsys.readouterr().err


def test_train_rejects_unknown_toml_keys_and_state_changes_on_resume(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[model]\nlearning_rate = 0.1\n")
    assert cli.main(["train", "--config", str(cfg), "--out", str(tmp_path / "e")]) == 2
    assert "unknown option [model] 'learning_rate'" in capsys.readouterr().err
    cfg.write_text("k = [1,\n")
    assert cli.main(["train", "--config", str(cfg), "--out", str(tmp_path / "e")]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    m = sparsedream_fast.SparseDream(n_inputs=784, grid=(2, 2), k=1, backend="numpy").fit(np.zeros((2, 784)) + 0.5,
                                                                                          epochs=1)
    p = m.save(tmp_path / "m.npz")
    assert cli.main(["train", "--data", "generated", "--n-samples", "10", "--resume", p, "--grid", "3", "3",
                     "--out", str(tmp_path / "e")]) == 2
    assert "grid" in capsys.readouterr().err


def test_show_on_a_bad_file(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_text("nope")
    assert cli.main(["show", str(bad), "--no-data", "--out", str(tmp_path / "o")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert cli.main(["show", str(tmp_path / "absent.npz")]) == 2
    assert "not found" in capsys.readouterr().err


def test_show_without_data_and_without_lateral(tmp_path, capsys):
    m = sparsedream_fast.SparseDream(n_inputs=16, grid=(2, 3), k=1, lateral=None, competition="drive",
                                     backend="numpy").fit(np.random.default_rng(0).random((20, 16)), epochs=1)
    p = m.save(tmp_path / "m.npz")
    assert cli.main(["show", p, "--out", str(tmp_path / "o")]) == 0
    assert "pass --data" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "o")) == ["weights.png"]


@pytest.mark.parametrize("command", ["demo", "train", "show"])
def test_help_has_examples(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "Examples" in text and f"sparsedream {command}" in text
    assert "--out" in text


def test_module_help_in_a_subprocess():
    root = os.path.dirname(os.path.dirname(os.path.abspath(sparsedream_fast.__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-m", "sparsedream_fast.cli", "--help"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    for command in ("demo", "train", "show", "backends"):
        assert command in res.stdout


def test_train_dreamcomp_reports_accuracy(tmp_path, capsys):
    out = tmp_path / "dc"
    rc = cli.main(["train", "--model", "dreamcomp", "--data", "generated", "--n-samples", "600", "--n-neurons", "36",
                   "--lr", "0.01", "--label-lr", "0.05", "--batch-size", "50", "--epochs", "3", "--out", str(out)])
    assert rc == 0
    rep = json.load(open(out / "metrics.json"))
    assert rep["model"] == "dreamcomp" and 0.3 < rep["test_accuracy"] <= 1.0  # 10 classes: chance is 0.1
    W = np.load(out / "weights.npz")["W"]
    assert W.shape == (36, 784 + 10)
    assert (out / "class_weights.png").exists() and (out / "weights.png").exists()
    assert "accuracy" in capsys.readouterr().out


def test_train_krotov_reports_readout_accuracy(tmp_path):
    pytest.importorskip("sklearn")
    out = tmp_path / "kh"
    rc = cli.main(["train", "--model", "krotov", "--data", "digits", "--n-hidden", "40", "--k", "3",
                   "--batch-size", "50", "--epochs", "2", "--out", str(out)])
    assert rc == 0
    rep = json.load(open(out / "metrics.json"))
    assert rep["model"] == "krotov" and rep["test_accuracy"] > 0.2  # 10 classes: chance is 0.1
    assert np.load(out / "weights.npz")["W"].shape == (40, 64)
    # its hidden units drawn as Krotov and Hopfield draw them (red-blue around 0)
    assert png_ok(out / "weights.png")


def test_progress_is_plain_lines_in_a_log(tmp_path, capsys):
    """On a terminal a bar; here (captured: not a terminal) one line per tenth, no carriage return."""
    opts = [o for o in TINY_DEMO if o != "--no-progress"]
    assert cli.main(["demo", "--out", str(tmp_path / "d"), "--no-plots"] + opts) == 0
    err = capsys.readouterr().err
    assert "SparseDream[" in err and "600/600 steps (100%)" in err and "\r" not in err
    assert cli.main(["train", "--data", "generated", "--grid", "4", "4", "--n-samples", "200", "--epochs", "1",
                     "--no-plots", "--out", str(tmp_path / "t")]) == 0
    captured = capsys.readouterr()
    assert "200/200 steps (100%)" in captured.err and "\r" not in captured.err
    assert "quantization error" in captured.out and "= mean distance from an input" in captured.out
    assert "machine load" in captured.out


def test_train_batch_model_needs_labels(tmp_path, capsys):
    rc = cli.main(["train", "--model", "dreamcomp", "--data", "tapestry", "--out", str(tmp_path / "x")])
    assert rc == 2
    assert "needs labelled data" in capsys.readouterr().err


@pytest.mark.parametrize("preset", ["v8", "recurrent", "best"])
def test_tnn_command_trains_reads_out_and_saves(tmp_path, capsys, preset):
    pytest.importorskip("sklearn")
    out = tmp_path / "tnn"
    assert cli.main(["tnn", "--preset", preset, "--data", "generated", "--n-train", "120", "--n-test", "60",
                     "--no-progress", "--out", str(out)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert m["preset"] == preset and m["n_train"] == 120 and m["n_test"] == 60
    assert m["test_accuracy"] > 0.3            # generated digits, 10 classes: chance is 0.1
    for name in ("raster.png", "weights.png"):
        assert png_ok(out / name), name
    from sparsedream_fast.tnn import TNNNetwork
    net = TNNNetwork.load(out / "network.npz")
    assert net.n_waves_learned_ == 120 * 28
    assert set(net.readout) <= set(m["layers"]) and net.layers == {k: tuple(v) for k, v in m["layers"].items()}


def test_tnn_command_rejects_bad_sizes(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["tnn", "--n-train", "3", "--data", "generated", "--out", str(tmp_path)])
    assert exc.value.code == 2 and "--n-train: must be >= 10" in capsys.readouterr().err
