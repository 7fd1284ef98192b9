"""Training that diverges on the command line: one line naming the step and the file the
model was saved to, exit status 1, no traceback; the saved model is the state after the
last finite step and loads (tests/test_cli_errors.py covers the user's mistakes)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

import sparsedream_fast as sdf
from test_cli_errors import run_cli

#: inputs of 1e12 overflow rule A's float32 drive within a few steps (nonnegative weights on
#: inputs in [0, 1] can no longer diverge: tests/test_rule_a_numerics.py)
HUGE = 1e12


def _one_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _check_saved(path, line, folder=""):
    assert "training diverged" in line and f"saved to {path}" in line, line
    m = sdf.load(os.path.join(folder, path))
    assert 0 < m.n_steps_ and np.isfinite(m.weights_).all()
    return m


def _huge_data(tmp_path):
    np.save(tmp_path / "huge.npy", np.random.default_rng(0).random((300, 16)) * HUGE)
    return str(tmp_path / "huge.npy")


def test_train_divergence_exits_1_and_keeps_the_model(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["train", "--data-file", _huge_data(tmp_path), "--grid", "4", "5", "--k", "3", "--lr", "2000",
            "--error-clip", "none", "--epochs", "1", "--backend", "numpy", "--no-plots", "--no-progress", "--out", str(out)]
    assert run_cli(argv) == 1
    m = _check_saved(out / "model.npz", _one_line(capsys.readouterr().err))
    assert m.n_steps_ < 300


def test_train_divergence_in_a_subprocess(tmp_path):
    argv = ["train", "--data-file", _huge_data(tmp_path), "--grid", "4", "5", "--k", "3", "--lr", "2000",
            "--error-clip", "none", "--epochs", "1", "--backend", "cpp", "--no-plots", "--no-progress", "--out", "out"]
    res = subprocess.run([sys.executable, "-m", "sparsedream_fast.cli"] + argv, capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert res.returncode == 1, res.stderr
    _check_saved(os.path.join("out", "model.npz"), _one_line(res.stderr), tmp_path)


def test_demo_divergence_exits_1_and_keeps_the_model(tmp_path, capsys, monkeypatch):
    import sparsedream_fast.data as data
    frames = data.digit_tapestry_frames

    def with_huge_frames(*a, **kw):   # the demo's parameters are fixed: 10 of its frames overflow float32
        X, source = frames(*a, **kw)
        X[-10:] *= 1e38   # finite in float32, but their drive is not
        return X, source

    monkeypatch.setattr(data, "digit_tapestry_frames", with_huge_frames)
    out = tmp_path / "demo"
    argv = ["demo", "--grid", "6", "6", "--epochs", "1", "--frames", "300", "--data", "generated",
            "--backend", "numpy", "--no-plots", "--no-progress", "--eval-frames", "50", "--out", str(out)]
    assert run_cli(argv) == 1
    _check_saved(out / "model.npz", _one_line(capsys.readouterr().err))
