"""benches/krotov_classifier_accuracy.py end to end on tiny slices (JSON, tables, picture)."""
from __future__ import annotations

import importlib.util
import json
import os

import pytest

from testing import fake_fashion_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def bench():
    path = os.path.join(ROOT, "benches", "krotov_classifier_accuracy.py")
    spec = importlib.util.spec_from_file_location("krotov_classifier_accuracy", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_script_end_to_end(bench, tmp_path):
    pytest.importorskip("mlxtend")
    pytest.importorskip("matplotlib")
    root, out = tmp_path / "fmnist", tmp_path / "out"
    fake_fashion_mnist(root, 600, 60)
    small = ["--out", str(out), "--seeds", "0", "--epochs", "3", "--limit-hidden", "16", "--pixels-max-iter", "10",
             "--fmnist-feature-epochs", "1", "--mnist-feature-epochs", "1"]
    assert bench.main(["--fmnist-root", str(root), "--parts", "fmnist", "--select-epochs", "1",
                       "--grid", "2:0.01,4.5:0.1", *small]) == 0
    res = json.loads((out / "krotov_classifier.json").read_text())
    run = res["fmnist"]["runs"][0]
    assert (run["paper"]["n"], run["paper"]["m"], run["paper"]["beta"]) == (4.5, 6.0, 0.01)
    assert len(run["paper"]["curve"]) == 3 and len(run["paper"]["loss_curve"]) == 3
    assert run["paper"]["accuracy"] == run["paper"]["curve"][-1]
    assert [(s["n"], s["beta"]) for s in run["selection"]] == [(2.0, 0.01), (4.5, 0.1)]
    best = max(run["selection"], key=lambda s: s["validation_accuracy"])
    assert (run["selected"]["n"], run["selected"]["beta"]) == (best["n"], best["beta"])
    assert res["fmnist"]["selection_split"] == dict(fit=500, validation=100)
    assert 0 <= res["fmnist"]["pixels"]["accuracy"] <= 1 and run["paper"]["load_before"]
    # a second part keeps the first
    assert bench.main(["--parts", "mnist", "--limit-train", "300", *small]) == 0
    res2 = json.loads((out / "krotov_classifier.json").read_text())
    assert res2["fmnist"] == res["fmnist"]
    folds = res2["mnist"]["folds"]
    assert [f["fold"] for f in folds] == [0, 1, 2, 3, 4]
    assert all(f["paper"]["n_train"] == 240 and f["paper"]["n_eval"] == 60 for f in folds)
    assert (out / "krotov_classifier_curves.png").stat().st_size > 1000
    assert "logistic regression, pixels" in bench.format_tables(res2)
    assert res2["fmnist"]["complete"] and res2["mnist"]["complete"] and res2["mnist"]["finished"]
    # the stored results redraw the picture and the tables without training
    (out / "krotov_classifier_curves.png").unlink()
    assert bench.main(["--parts", "", "--out", str(out)]) == 0
    assert (out / "krotov_classifier_curves.png").stat().st_size > 1000
    assert json.loads((out / "krotov_classifier.json").read_text()) == res2


def test_selection_of_the_papers_point_reuses_its_training(bench, tmp_path):
    root, out = tmp_path / "fmnist", tmp_path / "out"
    fake_fashion_mnist(root, 600, 60)
    assert bench.main(["--fmnist-root", str(root), "--parts", "fmnist", "--out", str(out), "--seeds", "0",
                       "--epochs", "2", "--limit-hidden", "16", "--pixels-max-iter", "10",
                       "--fmnist-feature-epochs", "1", "--select-epochs", "1", "--grid", "4.5:0.01"]) == 0
    run = json.loads((out / "krotov_classifier.json").read_text())["fmnist"]["runs"][0]
    assert run["selected"].pop("same_as_paper") is True
    assert run["selected"] == run["paper"]
