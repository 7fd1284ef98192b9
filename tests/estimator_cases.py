"""Estimators, each fitted, continued and observed the same way, for the tests that take
one through a round trip (pickle, joblib, deepcopy, a checkpoint) and check that it goes on
exactly as the uninterrupted one.

``CASES[name] = (class name, make(backend), first(model), then(model), seen(model))``:
``first`` trains, ``then`` continues training (the classifier's top layer cannot continue:
it fits afresh, from the parameters), ``seen`` returns the arrays that must match bit for
bit. The first letter of a case is its rule (its backends). ``PARAMS`` holds every (case, backend) pair as pytest params.
"""
from __future__ import annotations

import numpy as np
import pytest

import sparsedream_fast as sdf
from testing import rule_backends


def _data(n, d, seed=0):
    return np.random.default_rng(seed).random((n, d))


# Each case: make(backend) -> model; first(model) trains it; then(model) continues training;
# seen(model) -> dict of arrays that must match bit for bit.
def _sd_make(backend):
    return sdf.SparseDream(n_inputs=12, grid=(3, 4), k=2, lr=0.05, trace=0.5, error_clip=1.0,
                           lateral=sdf.lateral.box(1, 0.2), dtype="float32", backend=backend, seed=2)


def _sd_first(m):
    return m.fit(_data(40, 12), epochs=2)


def _sd_then(m):
    X = _data(40, 12, 1)
    m.set_params(warm_start=True)
    m.fit(X, epochs=1)
    return m.partial_fit(X[:10])


def _sd_seen(m):
    X = _data(8, 12, 2)
    return dict(W=m.weights_, trace=m.trace_, lateral=m.lateral_.toarray(), steps=np.array(m.n_steps_),
                win=m.winners(X), act=m.transform(X), rng=np.array(m._rng.random(3)))


def _dc_make(backend):
    return sdf.DreamComp(n_inputs=12, n_neurons=10, n_classes=3, batch_size=8, dtype="float32",
                         backend=backend, seed=1)


def _dc_first(m):
    X = _data(48, 12)
    return m.fit(X, (np.arange(48) % 3), epochs=2)


def _dc_then(m):
    X = _data(32, 12, 5)
    return m.fit(X, np.arange(32) % 3)


def _dc_seen(m):
    X = _data(16, 12, 3)
    return dict(W=m.weights_, pred=m.predict(X), best=m.best_neurons(X))


def _kh_make(backend):
    return sdf.KrotovHopfield(n_inputs=12, n_hidden=8, k=3, batch_size=8, dtype="float32", backend=backend,
                              seed=1)


def _kh_first(m):
    return m.fit(_data(48, 12), epochs=2)


def _kh_then(m):
    return m.fit(_data(32, 12, 5))


def _kh_seen(m):
    return dict(W=m.weights_, I=m.transform(_data(6, 12, 4)))


def _clf_make(backend):
    features = sdf.KrotovHopfield(n_hidden=8, k=3, batch_size=8, dtype="float32", backend=backend, seed=1)
    return sdf.KrotovHopfieldClassifier(features=features, feature_epochs=2, n=2.0, epochs=3, batch_size=8,
                                        init=0.1, seed=2)


def _clf_first(m):
    return m.fit(_data(48, 12), np.arange(48) % 3)


def _clf_then(m):
    # the top layer does not continue: fit starts afresh, from the parameters alone
    return m.fit(_data(32, 12, 5), np.arange(32) % 3)


def _clf_seen(m):
    X = _data(10, 12, 3)
    return dict(W=m.features_.weights_, H=m.hidden_weights_, S=m.weights_, loss=np.array(m.loss_curve_),
                c=m.decision_function(X), pred=m.predict(X))


def _spikes(n, seed):
    return np.random.default_rng(seed).integers(0, 9, (n, 3, 8))


def _net_make(backend):
    net = sdf.TNNNetwork(T=8, backend=backend, seed=4)
    net.add_input("px", 8).add_column("c", 5, threshold=6, k=2, w_max=8).add_delay("d", "c")
    return net.connect("px", "c", init=(0, 3)).connect("d", "c", init=(0, 2))


def _net_first(net):
    return net.fit(_spikes(6, 0))


def _net_then(net):
    net.fit(_spikes(6, 1))
    return net.partial_fit(_spikes(3, 2))


def _net_seen(net):
    return dict(W=net.weights_["c"], waves=np.array(net.n_waves_learned_), out=net.transform(_spikes(4, 3)))


def _col_make(backend):
    return sdf.TNNColumn(n_inputs=8, n_neurons=6, threshold=5, k=2, T=8, backend=backend, seed=3)


def _col_first(col):
    return col.fit(_spikes(10, 0)[:, 0])


def _col_then(col):
    return col.partial_fit(_spikes(10, 1)[:, 0])


def _col_seen(col):
    return dict(W=col.weights_, waves=np.array(col.n_waves_learned_), out=col.forward(_spikes(5, 2)[:, 0]))


CASES = {"A": ("SparseDream", _sd_make, _sd_first, _sd_then, _sd_seen),
         "B": ("DreamComp", _dc_make, _dc_first, _dc_then, _dc_seen),
         "C": ("KrotovHopfield", _kh_make, _kh_first, _kh_then, _kh_seen),
         "C-clf": ("KrotovHopfieldClassifier", _clf_make, _clf_first, _clf_then, _clf_seen),
         "D-net": ("TNNNetwork", _net_make, _net_first, _net_then, _net_seen),
         "D-col": ("TNNColumn", _col_make, _col_first, _col_then, _col_seen)}
PARAMS = [pytest.param(case, backend.values[0], id=f"{CASES[case][0]}-{backend.id}", marks=backend.marks)
          for case in CASES for backend in rule_backends(case[0])]


def same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        x, y = np.asarray(a[key]), np.asarray(b[key])
        assert x.dtype == y.dtype and x.shape == y.shape, key
        assert np.array_equal(x, y), key
