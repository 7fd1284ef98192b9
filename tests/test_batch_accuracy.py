"""benches/batch_accuracy.py on tiny slices: the notebook's code and the library see the same
seeds (identical float64 weights), and the script runs end to end (JSON, table, PNG)."""
from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest

import sparsedream_fast as sdf
from testing import fake_fashion_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def ba():
    path = os.path.join(ROOT, "benches", "batch_accuracy.py")
    spec = importlib.util.spec_from_file_location("batch_accuracy", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 784)), rng.integers(0, 10, n)


def test_notebook_dreamcomp_has_the_library_seeds(ba):
    X, y = _data(300)
    w, times = ba.notebook_dreamcomp_fit(X, y, 30, 2, 50, 10.0, 0.008, 0.1, seed=4)
    assert len(times) == 2
    m = sdf.DreamComp(784, 30, 10, 10.0, 0.008, 0.1, 50, dtype="float64", backend="numpy", seed=4).fit(X, y, epochs=2)
    np.testing.assert_allclose(w, m.weights_, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(ba.notebook_dreamcomp_predict(w, X[:70], chunk=32), m.predict(X[:70]))


def test_notebook_krotov_has_the_library_seeds(ba):
    X, _ = _data(300, 1)
    w, _ = ba.notebook_krotov_fit(X, 20, 2, 50, 3.0, 4, 0.4, 0.02, 1e-30, seed=5)
    m = sdf.KrotovHopfield(784, 20, p=3.0, k=4, batch_size=50, dtype="float64", backend="numpy", seed=5,
                           power=2).fit(X, epochs=2)
    np.testing.assert_allclose(w, m.weights_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ba.krotov_features(w, X[:30], 3.0, 2, chunk=7), m.transform(X[:30]), rtol=1e-10)


def test_mnist_sample_split(ba):
    y = np.repeat(np.arange(10), 50)
    tr, te = ba.mnist_sample_split(y, 5, seed=0)
    assert len(te) == 50 and len(tr) == 450 and not set(tr) & set(te)
    assert np.all(np.bincount(y[te]) == 5)


def test_script_end_to_end(ba, tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("mlxtend")
    pytest.importorskip("matplotlib")
    root = tmp_path / "fmnist"
    fake_fashion_mnist(root, 1000, 100)
    out = tmp_path / "out"
    rc = ba.main(["--fmnist-root", str(root), "--out", str(out), "--dc-sizes", "12", "--dc-epochs", "1",
                  "--kh-hidden", "16", "--kh-epochs-fmnist", "1,2", "--kh-epochs-mnist", "1", "--kh-powers", "1,2",
                  "--readout-iter", "20", "--speed-epochs", "1", "--speed-repeats", "1", "--speed-dtypes", "float32",
                  "--max-wait", "0", "--limit-train", "1000", "--limit-test", "100"])
    assert rc == 0
    res = json.loads((out / "batch_accuracy.json").read_text())
    rows = [r for part in ("dreamcomp", "krotov-mnist", "krotov-fmnist") for r in res[part]["rows"]]
    assert {(r["rule"], r["impl"]) for r in rows} >= {("dreamcomp", "notebook"), ("dreamcomp", "library"),
                                                       ("krotov", "notebook"), ("krotov", "library"), ("krotov", "pixels")}
    assert all(0 <= r["test_accuracy"] <= 1 for r in rows)
    assert {r["epochs"] for r in res["krotov-fmnist"]["rows"] if r["impl"] == "library"} == {1, 2}
    assert all(r["distinct_winners"] >= 1 for r in rows if r["rule"] == "krotov" and r["impl"] != "pixels")
    speed = res["speed"]["rows"]
    assert {r["impl"] for r in speed} == {"notebook", "library"}
    assert all(r["s_per_epoch"] > 0 and r["timings"][0]["load_before"] for r in speed)
    assert (out / "batch_accuracy.png").stat().st_size > 1000
    # a second run of one part keeps the other
    assert ba.main(["--fmnist-root", str(root), "--out", str(out), "--parts", "speed", "--dc-sizes", "12",
                    "--kh-hidden", "16", "--speed-epochs", "1", "--speed-repeats", "1", "--no-reference",
                    "--speed-dtypes", "float32", "--max-wait", "0", "--limit-train", "1000", "--limit-test", "100"]) == 0
    res2 = json.loads((out / "batch_accuracy.json").read_text())
    assert all(res2[p] == res[p] for p in ("dreamcomp", "krotov-mnist", "krotov-fmnist"))
    assert all(r["backend"] != "numpy" for r in res2["speed"]["rows"])
