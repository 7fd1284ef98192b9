"""A TNN network's structure is a constructor parameter (issue 14): builder methods replace an
immutable ``Structure``, ``clone`` / ``set_params`` / a grid search see it, inputs may take
their size from the data, and nothing runs before ``fit``."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from sparsedream_fast.tnn import Structure, TNNColumn, TNNNetwork, WaveEncoder, presets


def spikes(n, waves, lines, T=16, seed=0):
    rng = np.random.default_rng(seed)
    return np.where(rng.random((n, waves, lines)) < 0.4, rng.integers(0, T, (n, waves, lines)), T).astype(np.uint8)


def small(**kw):
    return TNNNetwork(seed=0, backend="numpy", **kw).add_input("x", 6).add_column("c", 5, threshold=4, k=2) \
        .connect("x", "c", init=(0, 4))


def test_builder_methods_replace_an_immutable_structure_parameter():
    net = TNNNetwork(seed=0)
    assert net.structure is None and net.get_params()["structure"] is None
    assert net.add_input("x", 6) is net
    first = net.structure
    assert isinstance(first, Structure) and first.layers[0].name == "x"
    net.add_column("c", 5, threshold=4, k=2).connect("x", "c", init=(0, 4))
    assert len(first.layers) == 1 and first.connections == ()   # untouched by the later calls
    assert net.get_params()["structure"] is net.structure
    assert [l.name for l in net.structure.layers] == ["x", "c"] and len(net.structure.connections) == 1
    # the same structure built standalone is equal, and works as the parameter
    s = Structure().add_input("x", 6).add_column("c", 5, threshold=4, k=2).connect("x", "c", init=(0, 4))
    assert s == net.structure
    S = spikes(4, 3, 6)
    a = TNNNetwork(seed=0, backend="numpy", structure=s).fit(S)
    b = small().fit(S)
    np.testing.assert_array_equal(a.weights_["c"], b.weights_["c"])
    with pytest.raises(TypeError, match="structure must be"):
        TNNNetwork(structure="x>c").fit(S)


def test_clone_and_set_params_see_the_structure():
    net = small().fit(spikes(4, 3, 6))
    twin = clone(net)
    assert twin.structure == net.structure and not hasattr(twin, "weights_")
    bigger = Structure().add_input("x", 6).add_column("c", 9, threshold=4, k=2).connect("x", "c")
    twin.set_params(structure=bigger).fit(spikes(4, 3, 6))
    assert twin.weights_["c"].shape == (9, 6) and net.weights_["c"].shape == (5, 6)
    assert "structure=Structure(layers=[x:input(6), c:column(5)]" in repr(net)


def test_grid_search_over_structures():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 20)
    X = rng.random((40, 4, 4)) * 0.3
    X[y == 1, :, :2] += 0.7
    X[y == 0, :, 2:] += 0.7
    X = X.reshape(40, 16)
    shapes = [Structure().add_input("px", 4).add_column("c", n, threshold=6, k=3).connect("px", "c", init=(1, 4))
              for n in (4, 12)]
    pipe = Pipeline([("enc", WaveEncoder((4, 4))), ("tnn", TNNNetwork(seed=0, backend="numpy")),
                     ("clf", LogisticRegression())])
    search = GridSearchCV(pipe, {"tnn__structure": shapes}, cv=2).fit(X, y)
    assert search.best_params_["tnn__structure"] in shapes
    assert search.best_estimator_.named_steps["tnn"].structure_.layers[1].n in (4, 12)


def test_nothing_runs_before_fit():
    """transform / run / forward built random weights quietly before."""
    S = spikes(2, 3, 6)
    for call in (lambda n: n.transform(S), lambda n: n.run(S), lambda n: n.connection_weights("x", "c")):
        with pytest.raises(NotFittedError):
            call(small())
    with pytest.raises(NotFittedError):
        TNNColumn(6).forward(S[:, 0])
    with pytest.raises(NotFittedError):
        presets.v8_network().transform(spikes(1, 2, 28))


def test_fit_starts_afresh_and_warm_start_continues():
    S = spikes(6, 3, 6)
    once = small().fit(S)
    W = once.weights_["c"].copy()
    once.fit(S)
    np.testing.assert_array_equal(once.weights_["c"], W)
    assert once.n_waves_learned_ == 18
    warm = small(warm_start=True).fit(S).fit(S, shuffle=False)
    assert warm.n_waves_learned_ == 36
    cont = small().fit(S)
    cont.partial_fit(S)
    np.testing.assert_array_equal(warm.weights_["c"], cont.weights_["c"])


def test_input_size_from_the_data():
    net = TNNNetwork(seed=0, backend="numpy").add_input("x").add_delay("d", "x")
    net.add_column("c", 5, threshold=4, k=2).connect("x", "c", lines=slice(0, 3)).connect("d", "c")
    assert net.layers == {"x": ("input", None), "d": ("delay", None), "c": ("column", 5)}
    S = spikes(4, 3, 7)
    net.fit(S)
    assert net.n_features_in_ == 7 and net.layers["x"] == ("input", 7) and net.layers["d"] == ("delay", 7)
    assert net.weights_["c"].shape == (5, 3 + 7)
    assert net.structure.layers[0].n is None          # the parameter is not changed by fit
    fixed = TNNNetwork(seed=0, backend="numpy").add_input("x", 7).add_delay("d", "x")
    fixed.add_column("c", 5, threshold=4, k=2).connect("x", "c", lines=slice(0, 3)).connect("d", "c")
    np.testing.assert_array_equal(fixed.fit(S).weights_["c"], net.weights_["c"])
    with pytest.raises(ValueError, match="X has 6 features, but TNNNetwork is expecting 7"):
        net.transform(spikes(2, 3, 6))
    with pytest.raises(ValueError, match="only one input"):
        TNNNetwork().add_input("a").add_input("b")
    narrow = TNNNetwork().add_input("x").add_column("c", 2, 1, 1).connect("x", "c", lines=[5])
    with pytest.raises(ValueError, match="do not select"):
        narrow.fit(spikes(1, 2, 4))
    col = TNNColumn(n_neurons=4, threshold=3, k=2, backend="numpy").fit(S[:, 0])
    assert col.n_features_in_ == 7 and col.weights_.shape == (4, 7)


def test_two_dimensional_data_are_single_wave_sequences():
    S = spikes(5, 1, 6)
    a = small().fit(S)
    b = small().fit(S[:, 0])
    np.testing.assert_array_equal(a.weights_["c"], b.weights_["c"])
    np.testing.assert_array_equal(a.transform(S), b.transform(S[:, 0]))
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(S[:, 0], columns=[f"line{i}" for i in range(6)])
    c = small().fit(df)
    assert list(c.feature_names_in_) == list(df.columns)
    np.testing.assert_array_equal(c.transform(df), a.transform(S))
