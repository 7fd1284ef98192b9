"""User mistakes on the command line: one line naming the problem, exit status 2, no traceback,
and nothing written (the checks run before any data is loaded or folder made)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import sparsedream_fast
from sparsedream_fast import cli


def run_cli(argv):
    """cli.main's exit status, whether it returns it or argparse raises SystemExit."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.fixture
def files(tmp_path):
    """A plain file, an .npy of inputs, an .npz without and with labels, a model checkpoint."""
    rng = np.random.default_rng(0)
    (tmp_path / "afile").write_text("not a folder")
    np.save(tmp_path / "x.npy", rng.random((30, 16)))
    np.savez(tmp_path / "x.npz", X=rng.random((30, 16)))
    np.savez(tmp_path / "one_class.npz", X=rng.random((30, 16)), y=np.zeros(30, int))
    np.savez(tmp_path / "short_y.npz", X=rng.random((30, 16)), y=np.arange(10) % 2)
    m = sparsedream_fast.SparseDream(n_inputs=16, grid=(3, 3), k=2, backend="numpy").fit(rng.random((20, 16)),
                                                                                        epochs=1)
    m.save(tmp_path / "model.npz")
    (tmp_path / "bad.toml").write_text('epochs = "5"\n')
    (tmp_path / "bad_bool.toml").write_text('shuffle = "yes"\n')
    (tmp_path / "bad_backend.toml").write_text('backend = "gpu"\n')
    return tmp_path


#: (argv, what the one line must say); {d} is the folder of the files above
MISTAKES = [
    # demo
    (["demo", "--backend", "foo"], "invalid choice: 'foo'"),
    (["demo", "--epochs", "0"], "--epochs: must be >= 1, got 0"),
    (["demo", "--grid", "0", "0"], "--grid: must be >= 1, got 0"),
    (["demo", "--frames", "-5"], "--frames: must be >= 1, got -5"),
    (["demo", "--frames", "ten"], "--frames: expected an integer, got 'ten'"),
    (["demo", "--grid", "2", "2"], "at least 5 neurons"),
    (["demo", "--anim-frames", "-1"], "--anim-frames: must be >= 0"),
    (["demo", "--out", "{d}/afile"], "--out {d}/afile: exists and is not a folder"),
    (["demo", "--out", "{d}/afile/sub"], "is a file"),
    (["demo", "--out", "/proc/sparsedream/x"], "not writable"),
    # train
    (["train", "--epochs", "0"], "--epochs: must be >= 1, got 0"),
    (["train", "--grid", "0", "0"], "--grid: must be >= 1, got 0"),
    (["train", "--frames", "-5"], "--frames: must be >= 1, got -5"),
    (["train", "--backend", "foo"], "invalid choice: 'foo'"),
    (["train", "--data", "generated", "--k", "0"], "k must be between 1 and the number of neurons"),
    (["train", "--data", "generated", "--lr", "-1"], "lr must be > 0"),
    (["train", "--data", "generated", "--lr", "inf"], "lr must be finite"),
    (["train", "--data", "generated", "--trace", "2"], "trace must be <= 1"),
    (["train", "--data", "generated", "--init", "0.5", "0.1"], "low <= high"),
    (["train", "--test-fraction", "1.5", "--model", "dreamcomp"], "--test-fraction: must be < 1"),
    (["train", "--out", "{d}/afile"], "exists and is not a folder"),
    (["train", "--data-file", "{d}/missing.npy"], "file not found"),
    (["train", "--data-file", "{d}/afile"], "expected a .npy or .npz file"),
    (["train", "--data-file", "{d}/x.npz", "--data-key", "Z", "--grid", "3", "3"], "has no array 'Z'"),
    (["train", "--data-file", "{d}/x.npz", "--grid", "3", "3", "--init-file", "{d}/x.npy"],
     "init array must have shape (N, D) = (9, 16), got (30, 16)"),
    (["train", "--data-file", "{d}/x.npz", "--grid", "3", "3", "--lateral", "file"], "--lateral-file PATH"),
    (["train", "--data-file", "{d}/x.npz", "--tile-shape", "3", "3"], "3 x 3 = 9 pixels, but one input holds 16"),
    (["train", "--data-file", "{d}/x.npz", "--tile-shape", "0", "16"], "--tile-shape: must be >= 1"),
    (["train", "--config", "{d}/bad.toml"], "--epochs must be an integer, got '5'"),
    (["train", "--config", "{d}/bad_bool.toml"], "--shuffle must be true or false"),
    (["train", "--config", "{d}/bad_backend.toml"], "unknown backend 'gpu'"),
    (["train", "--resume", "{d}/afile"], "expected a .npz file"),
    (["train", "--model", "dreamcomp", "--data", "tapestry"], "needs labelled data"),
    (["train", "--model", "dreamcomp", "--data-file", "{d}/x.npy"], "a .npy file holds only the inputs"),
    (["train", "--model", "dreamcomp", "--data-file", "{d}/x.npz"], "has no labels 'y'"),
    (["train", "--model", "dreamcomp", "--data-file", "{d}/one_class.npz", "--n-neurons", "4"], "a single class"),
    (["train", "--model", "dreamcomp", "--data-file", "{d}/short_y.npz", "--n-neurons", "4"],
     "must have shape (30,), one per input"),
    (["train", "--model", "dreamcomp", "--data", "generated", "--n-neurons", "0"], "n_neurons must be >= 1"),
    (["train", "--model", "krotov", "--data", "digits", "--k", "500"], "k must be <= 100"),
    (["train", "--model", "krotov", "--data", "digits", "--resume", "{d}/model.npz"], "--resume continues"),
    # tnn
    (["tnn", "--backend", "numba"], "invalid choice: 'numba'"),
    (["tnn", "--n-train", "3"], "--n-train: must be >= 10"),
    (["tnn", "--epochs", "0"], "--epochs: must be >= 1"),
    (["tnn", "--out", "{d}/afile"], "exists and is not a folder"),
    # show
    (["show", "{d}/missing.npz"], "checkpoint not found"),
    (["show", "{d}/afile", "--no-data"], "cannot read"),
    (["show", "{d}", "--no-data"], "is a folder, not a file"),
    (["show", "{d}/x.npz", "--no-data"], "cannot read"),
    (["show", "{d}/model.npz", "--backend", "foo"], "invalid choice: 'foo'"),
    (["show", "{d}/model.npz", "--out", "{d}/afile"], "exists and is not a folder"),
    (["show", "{d}/model.npz", "--neuron", "99", "--no-data"], "--neuron 99: the model has 9 neurons"),
    (["show", "{d}/model.npz", "--region", "0", "5", "0", "2", "--no-data"], "outside the 3 x 3 grid"),
    (["show", "{d}/model.npz", "--region", "2", "1", "0", "2", "--no-data"], "R0 < R1"),
    (["show", "{d}/model.npz", "--tile-shape", "3", "3", "--no-data"], "9 pixels, but one input holds 16"),
    (["show", "{d}/model.npz", "--eval-frames", "0"], "--eval-frames: must be >= 1"),
    # bench, backends, the command itself
    (["bench", "--k", "0"], "--k: must be >= 1"),
    (["bench", "--seconds", "0"], "--seconds: must be > 0"),
    (["bench", "--grids", "0"], "grid sizes must be positive"),
    (["bench", "--backends", "gpu"], "unknown backend 'gpu'"),
    (["bench", "--out", "{d}/afile"], "exists and is not a folder"),
    (["backends", "--foo"], "unrecognized arguments: --foo"),
    (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
]


@pytest.mark.parametrize("argv, message", MISTAKES, ids=[" ".join(a)[:60] for a, _ in MISTAKES])
def test_a_mistake_is_one_line_and_exit_status_2(files, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(files)  # the default output folders would land here
    d = str(files)
    argv = [a.replace("{d}", d) for a in argv]
    before = sorted(os.listdir(files))
    assert run_cli(argv + (["--out", d + "/out"] if "--out" not in argv and argv[0] not in ("show", "backends",
                                                                                         "nosuchcommand")
                           else [])) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and message.replace("{d}", d) in lines[0], lines[0]
    assert sorted(os.listdir(files)) == before  # no output folder, nothing written


def test_unusable_backend_is_refused_before_anything(tmp_path, capsys, monkeypatch):
    from sparsedream_fast import _backends
    monkeypatch.setattr(_backends, "_probe", lambda name: _backends.BackendInfo(name, name == "numpy", "not here"))
    for argv in (["demo", "--backend", "cpp"], ["train", "--backend", "numba"], ["tnn", "--backend", "cuda"]):
        assert run_cli(argv + ["--out", str(tmp_path / "o")]) == 2
        assert f"--backend {argv[2]}: not usable here: not here" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_mistakes_print_no_traceback_in_a_subprocess(tmp_path):
    for argv, message in ((["demo", "--backend", "foo"], "invalid choice"), (["tnn", "--backend", "numba"],
                                                                            "invalid choice"),
                          (["train", "--data-file", str(tmp_path / "none.npy")], "file not found")):
        res = subprocess.run([sys.executable, "-m", "sparsedream_fast.cli"] + argv, capture_output=True, text=True,
                             cwd=tmp_path, timeout=120)
        assert res.returncode == 2, res.stderr
        assert message in res.stderr and "Traceback" not in res.stderr and len(res.stderr.splitlines()) == 1
    assert os.listdir(tmp_path) == []
