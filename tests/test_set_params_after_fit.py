"""Parameters set after fit that change what the fitted state means (issue 13.3: ``k``,
``power``, ``p``) apply to inference or raise, never silently keep their old value.

SparseDream's ``k`` (and competition, output, prec) apply to ``winners``/``transform``
(tests/test_divergence.py::test_rule_a_k_set_after_fit_applies_to_inference);
KrotovHopfieldClassifier's ``n`` and ``beta`` raise (tests/test_krotov_classifier.py);
DreamComp has none of these parameters. KrotovHopfield's ``p`` and ``power`` apply to
``transform``, checked like ``fit`` checks them; its ``k`` applies at the next ``fit`` (which
starts afresh)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

import sparsedream_fast as sdf


def _data():
    return np.random.default_rng(2).random((60, 12))


def _krotov(**kw):
    return sdf.KrotovHopfield(12, 8, k=3, batch_size=20, dtype="float64", backend="numpy", seed=1, **kw)


@pytest.mark.parametrize("change", [dict(power=2.0), dict(power=None), dict(p=2.0), dict(p=4.0, power=3.0)])
def test_krotov_p_and_power_set_after_fit_apply_to_transform(change):
    X = _data()
    m = _krotov(power=4.5).fit(X)
    other = clone(m).set_params(**change)
    other.weights_ = m.weights_   # the same fitted weights, constructed with the new values
    other.backend_ = m.backend_
    m.set_params(**change)
    np.testing.assert_array_equal(m.transform(X), other.transform(X))


@pytest.mark.parametrize("bad,message", [(dict(power=-1.0), "power"), (dict(power="x"), "power"),
                                         (dict(p=0.5), "p must be >= 1"), (dict(p=np.nan), "p")])
def test_krotov_invalid_p_or_power_set_after_fit_raises(bad, message):
    X = _data()
    m = _krotov().fit(X)
    W = m.weights_.copy()
    m.set_params(**bad)
    with pytest.raises((ValueError, TypeError), match=message):
        m.transform(X)
    np.testing.assert_array_equal(m.weights_, W)


def test_krotov_k_set_after_fit_applies_at_the_next_fit():
    X = _data()
    m = _krotov().fit(X)
    m.set_params(k=5).fit(X)
    np.testing.assert_array_equal(m.weights_, _krotov().set_params(k=5).fit(X).weights_)
    assert not np.array_equal(m.weights_, _krotov().fit(X).weights_)
