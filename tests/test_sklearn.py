"""The estimators are scikit-learn estimators: base classes, tags, clone, get/set_params."""
from __future__ import annotations

import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone, is_classifier
from sklearn.utils import get_tags

import sparsedream_fast as sdf
from sparsedream_fast.tnn import WaveEncoder, presets

ESTIMATORS = {
    "SparseDream": (lambda: sdf.SparseDream(n_inputs=4, grid=(2, 3), k=2), TransformerMixin),
    "DreamComp": (lambda: sdf.DreamComp(n_inputs=4, n_neurons=6, n_classes=2), ClassifierMixin),
    "KrotovHopfield": (lambda: sdf.KrotovHopfield(n_inputs=4, n_hidden=6, k=2), TransformerMixin),
    "KrotovHopfieldClassifier": (lambda: sdf.KrotovHopfieldClassifier(sdf.KrotovHopfield(n_hidden=6, k=2)),
                                 ClassifierMixin),
    "TNNNetwork": (lambda: presets.v8_network(n_neurons=6, k=2, n_lines=5), TransformerMixin),
    "TNNColumn": (lambda: sdf.TNNColumn(5, n_neurons=6), BaseEstimator),
    "WaveEncoder": (lambda: WaveEncoder((2, 2)), TransformerMixin),
}


@pytest.mark.parametrize("name", ESTIMATORS)
def test_every_estimator_derives_from_scikit_learn(name):
    make, mixin = ESTIMATORS[name]
    est = make()
    assert isinstance(est, BaseEstimator) and isinstance(est, mixin)
    tags = get_tags(est)                     # scikit-learn >= 1.6 needs __sklearn_tags__
    assert tags.requires_fit or name == "WaveEncoder"
    assert is_classifier(est) == (name in ("DreamComp", "KrotovHopfieldClassifier"))
    assert "<style>" in est._repr_html_()    # scikit-learn's HTML repr


@pytest.mark.parametrize("name", ESTIMATORS)
def test_clone_keeps_a_subclass_type(name):
    make, _ = ESTIMATORS[name]
    base = type(make())
    Sub = type("Sub" + base.__name__, (base,), {})
    est = make()
    sub = Sub(**est.get_params(deep=False))
    twin = clone(sub)
    assert type(twin) is Sub and twin is not sub
    assert twin.get_params(deep=False).keys() == est.get_params(deep=False).keys()
