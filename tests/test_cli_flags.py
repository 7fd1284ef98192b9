"""``sparsedream train``'s estimator flags come from the constructors' signatures and
docstrings, read when the command runs."""
from __future__ import annotations

import argparse
import inspect
import json

import pytest

import sparsedream_fast as sdf
from sparsedream_fast import cli
from sparsedream_fast.cli import _estimator_flags, train


def train_parser():
    p = argparse.ArgumentParser()
    train.add_arguments(p)
    return p


@pytest.mark.parametrize("cls", [sdf.SparseDream, sdf.DreamComp, sdf.KrotovHopfield])
def test_every_constructor_parameter_is_a_flag(cls):
    flags = {a.dest for a in train_parser()._actions}
    params = [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "n_inputs", "warm_start")]
    missing = [n for n in params if n not in flags]
    assert not missing, f"{cls.__name__} parameters without a flag: {missing}"


def test_types_and_choices_come_from_the_docstrings():
    specs = train.estimator_flags()
    assert specs["k"].kind == "int" and specs["lr"].kind == "float" and specs["learn_lateral"].kind == "bool"
    assert specs["trace"].optional and not specs["lr"].optional
    assert specs["competition"].choices == ("drive", "lateral", "normalized_lateral", "mean_lateral",
                                            "weighted_average")
    # shared by several estimators: one flag, each estimator's default
    assert specs["lr"].defaults == {"sparsedream": 0.1, "dreamcomp": 0.006, "krotov": 0.02}
    args = train_parser().parse_args(["--trace", "none", "--learn-lateral", "--k", "3", "--lr", "0.5"])
    assert args.trace is None and args.learn_lateral is True and args.k == 3 and args.lr == 0.5
    with pytest.raises(SystemExit):
        train_parser().parse_args(["--lr", "nan"])


def test_docstring_parser_reads_combined_entries():
    class Est:
        """An estimator.

        Parameters
        ----------
        a, b : int
            Two of them; more text.
        c : {"x", "y"}
        d : float or None
            A float. Second sentence.

        Attributes
        ----------
        e_ : int
        """
    got = _estimator_flags.docstring_parameters(Est)
    assert got == {"a": ("int", "Two of them; more text."), "b": ("int", "Two of them; more text."),
                   "c": ('{"x", "y"}', ""), "d": ("float or None", "A float. Second sentence.")}


def test_defaults_are_read_from_the_constructor_at_run_time(monkeypatch, tmp_path):
    class Changed(sdf.SparseDream):
        def __init__(self, n_inputs=None, grid=(3, 3), k=2, lr=0.05, competition="drive", output="drive",
                     lateral=None, error_clip=1.0, trace=None, learn_lateral=False, lateral_lr=None, w_max=None,
                     clip_every=100, prec=1e-10, init=(0.15, 0.16), dtype="float64", backend="numpy", seed=0,
                     warm_start=False):
            super().__init__(n_inputs=n_inputs, grid=grid, k=k, lr=lr, competition=competition, output=output,
                             lateral=lateral, error_clip=error_clip, trace=trace, learn_lateral=learn_lateral,
                             lateral_lr=lateral_lr, w_max=w_max, clip_every=clip_every, prec=prec, init=init,
                             dtype=dtype, backend=backend, seed=seed, warm_start=warm_start)
    Changed.__doc__ = sdf.SparseDream.__doc__
    real = train._classes
    monkeypatch.setattr(train, "_classes", lambda: dict(real(), sparsedream=Changed))
    d = train.defaults_for("sparsedream")
    assert d["k"] == 2 and d["grid"] == [3, 3] and d["dtype"] == "float64"
    assert "default: 2 (SparseDream), 7 (KrotovHopfield)" in " ".join(train_parser().format_help().split())
    out = tmp_path / "run"
    assert cli.main(["train", "--data", "generated", "--n-samples", "20", "--epochs", "1", "--lateral", "none",
                     "--no-plots", "--eval-frames", "5", "--out", str(out)]) == 0
    m = sdf.SparseDream.load(out / "model.npz")
    assert m.config_.grid == (3, 3) and m.k == 2 and m.dtype == "float64"


def test_a_parameter_of_another_model_is_named_and_not_used(tmp_path, capsys):
    out = tmp_path / "kh"
    assert cli.main(["train", "--model", "krotov", "--competition", "drive", "--data", "digits", "--n-hidden", "10",
                     "--k", "2", "--epochs", "1", "--no-plots", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "--competition is a parameter of SparseDream; KrotovHopfield (--model krotov) has none" in err
    import numpy as np
    params = json.loads(str(np.load(out / "weights.npz")["params"]))
    assert params["n_hidden"] == 10 and params["k"] == 2 and "competition" not in params
