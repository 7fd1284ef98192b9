"""sdf.metrics against brute-force numpy on small cases, and the training callbacks."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

import sparsedream_fast as sdf
from sparsedream_fast import metrics


# ----------------------------------------------------------------------------- oracles
def naive_bmus(W, X):
    """First and second Euclidean BMU of every input by an all-pairs loop (ties: lower index)."""
    out = []
    for x in X:
        d = np.array([math.sqrt(sum((float(a) - float(b)) ** 2 for a, b in zip(x, w))) for w in W])
        order = sorted(range(len(W)), key=lambda n: (d[n], n))
        out.append((order[0], order[1], d[order[0]]))
    return out


def naive_neighbours(a, b, cols):
    ya, xa = divmod(a, cols)
    yb, xb = divmod(b, cols)
    return max(abs(ya - yb), abs(xa - xb)) == 1


@pytest.fixture(scope="module")
def model():
    X = np.random.default_rng(1).random((300, 16))
    m = sdf.SparseDream(n_inputs=16, grid=(4, 5), k=3, lr=0.05, init=(0.1, 0.3), dtype="float64",
                        backend="numpy", seed=2).fit(X, epochs=1)
    return m


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(3).random((83, 16))


# ----------------------------------------------------------------------------- SOM measures
def test_bmus_quantization_topographic_match_brute_force():
    rng = np.random.default_rng(0)
    grid = (5, 6)
    W = rng.random((30, 12))
    X = rng.random((97, 12))
    ref = naive_bmus(W, X)
    b = metrics.best_matching_units(W, X, n_units=2, grid=grid, chunk=7)
    assert b.dtype == np.int64 and b.shape == (97, 2)
    assert [tuple(r) for r in b] == [(f, s) for f, s, _ in ref]
    qe = metrics.quantization_error(W, X, grid=grid, chunk=7)
    assert qe == pytest.approx(np.mean([d for _, _, d in ref]), rel=1e-12)
    te = metrics.topographic_error(W, X, grid=grid, chunk=7)
    assert te == np.mean([not naive_neighbours(f, s, grid[1]) for f, s, _ in ref])
    assert 0 < te < 1


def test_topographic_error_neighbourhood_is_eight_cells_without_wrap():
    # 3 x 3 grid; unit-vector prototypes; input i sits between prototypes a and b
    W = np.eye(9)
    pairs = [(0, 4, False), (0, 1, False), (0, 2, True), (2, 3, True), (8, 6, True), (4, 8, False), (3, 6, False)]
    X = np.array([0.6 * W[a] + 0.4 * W[b] for a, b, _ in pairs])
    b = metrics.best_matching_units(W, X, 2, grid=(3, 3))
    assert [tuple(r) for r in b] == [(a, bb) for a, bb, _ in pairs]
    for (_, _, err), x in zip(pairs, X):
        assert metrics.topographic_error(W, x[None], grid=(3, 3)) == float(err)


def test_ties_go_to_the_lower_index():
    W = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    b = metrics.best_matching_units(W, X, 2, grid=(2, 2))
    assert b.tolist() == [[0, 2], [1, 3]]


def test_chunks_bound_memory(monkeypatch):
    seen = []
    real = metrics._euclid_bmus_chunk

    def spy(W, w2, Xc):
        seen.append(Xc.shape[0])
        return real(W, w2, Xc)

    monkeypatch.setattr(metrics, "_euclid_bmus_chunk", spy)
    rng = np.random.default_rng(0)
    metrics.quantization_error(rng.random((6, 4)), rng.random((1000, 4)), grid=(2, 3), chunk=64)
    assert max(seen) == 64 and sum(seen) == 1000


def test_winner_bmus_come_from_the_model(model, data):
    win = model.winners(data)
    W = model.weights_
    b = metrics.best_matching_units(model, data, 2, bmu="winner", chunk=10)
    assert np.array_equal(b, win[:, :2])
    qe = metrics.quantization_error(model, data, bmu="winner", chunk=10)
    assert qe == pytest.approx(np.mean(np.linalg.norm(data - W[win[:, 0]], axis=1)), rel=1e-12)
    te = metrics.topographic_error(model, data, bmu="winner", chunk=10)
    assert te == np.mean([not naive_neighbours(a, c, 5) for a, c in win[:, :2]])
    # the model's grid is used, and the Euclidean default matches the array form
    assert metrics.topographic_error(model, data) == metrics.topographic_error(W, data, grid=(4, 5))


# ----------------------------------------------------------------------------- reconstruction, usage
def test_reconstruction_error_matches_brute_force(model, data):
    A = model.transform(data)
    R = A @ model.weights_
    ref = np.mean((data - R) ** 2)
    assert metrics.reconstruction_error(model, data, chunk=9) == pytest.approx(ref, rel=1e-12)
    assert metrics.reconstruction_error(model, data) == pytest.approx(model.reconstruction_error(data), rel=1e-12)


def test_winner_usage(model, data):
    win = model.winners(data)
    u = metrics.winner_usage(model, data, chunk=11)
    counts = np.bincount(win.ravel(), minlength=20)
    assert np.array_equal(u.counts, counts) and u.counts.dtype == np.int64
    f = counts / counts.sum()
    ent = -sum(p * math.log(p) for p in f if p > 0)
    assert u.entropy == pytest.approx(ent, rel=1e-12)
    assert u.normalized_entropy == pytest.approx(ent / math.log(20), rel=1e-12)
    assert u.perplexity == pytest.approx(math.exp(ent), rel=1e-12)
    assert np.array_equal(u.dead, np.flatnonzero(counts == 0))
    assert u.n_dead + u.n_used == 20
    assert u.on_grid().shape == (4, 5)
    first = metrics.winner_usage(model, data, first_only=True)
    assert np.array_equal(first.counts, np.bincount(win[:, 0], minlength=20)) and first.winners_counted == 1
    d = u.as_dict()
    assert d["neurons"] == 20 and d["dead_neurons"] == u.n_dead


def test_usage_of_a_map_with_dead_neurons():
    u = metrics.Usage(np.array([5, 0, 5, 0]), (2, 2), 5, 2)
    assert u.dead.tolist() == [1, 3] and u.n_dead == 2
    assert u.entropy == pytest.approx(math.log(2)) and u.perplexity == pytest.approx(2.0)


def test_evaluate_agrees_with_the_single_measures(model, data):
    e = metrics.evaluate(model, data, chunk=13)
    assert e["n_inputs"] == 83
    assert e["reconstruction_mse"] == pytest.approx(metrics.reconstruction_error(model, data), rel=1e-12)
    u = metrics.winner_usage(model, data)
    assert e["neurons_used"] == u.n_used and e["usage_entropy"] == pytest.approx(u.entropy)
    assert e["quantization_error"] == pytest.approx(metrics.quantization_error(model, data), rel=1e-12)
    assert e["topographic_error"] == metrics.topographic_error(model, data)
    assert e["topographic_error_winners"] == metrics.topographic_error(model, data, bmu="winner")
    assert e["first_winner_neurons_used"] == metrics.winner_usage(model, data, first_only=True).n_used
    import json
    json.dumps(e)  # JSON-friendly


def test_bad_arguments(model, data):
    with pytest.raises(ValueError, match="chunk"):
        metrics.reconstruction_error(model, data, chunk=0)
    with pytest.raises(ValueError, match="bmu"):
        metrics.quantization_error(model, data, bmu="manhattan")
    with pytest.raises(ValueError, match="shape"):
        metrics.quantization_error(model, data[:, :5])
    with pytest.raises(ValueError, match="grid"):
        metrics.topographic_error(np.ones((6, 3)), np.ones((2, 3)), grid=(4, 4))
    with pytest.raises(TypeError, match="fitted model"):
        metrics.best_matching_units(np.ones((6, 3)), np.ones((2, 3)), bmu="winner")
    one = sdf.SparseDream(n_inputs=16, grid=(2, 2), k=1, backend="numpy").fit(data, epochs=1)
    with pytest.raises(ValueError, match="k >= 2"):
        metrics.topographic_error(one, data, bmu="winner")
    assert "topographic_error_winners" not in metrics.evaluate(one, data)
    with pytest.raises(AttributeError, match="not fitted"):
        metrics.winner_usage(sdf.SparseDream(n_inputs=16, grid=(2, 2), backend="numpy"), data)


# ----------------------------------------------------------------------------- callbacks
def _fit_model(**kw):
    return sdf.SparseDream(n_inputs=16, grid=(3, 3), k=2, lr=0.05, dtype="float64", backend="numpy", seed=0, **kw)


def test_history_records_every_n_steps(data):
    X = np.random.default_rng(5).random((120, 16))
    h = metrics.History(data[:40], every=50, som=True)
    each = metrics.History(data[:40])  # every=None: at every call
    m = _fit_model()
    m.fit(X, epochs=2, callback=metrics.CallbackList(h, each), callback_every=h.every)
    # calls at 50, 100, 120 | 170, 220, 240: acts at 50, 100, 170 (passed 150), 220
    assert [r["n_steps"] for r in h] == [50, 100, 170, 220]
    assert [r["epoch"] for r in h] == [0, 0, 1, 1]
    r = h[-1]
    for key in ("seconds", "steps_per_second", "reconstruction_mse", "neurons_used", "dead_neurons",
                "usage_entropy", "quantization_error", "topographic_error"):
        assert key in r
    assert [r["n_steps"] for r in each] == [50, 100, 120, 170, 220, 240]
    assert each[-1]["reconstruction_mse"] == pytest.approx(metrics.reconstruction_error(m, data[:40]), rel=1e-12)
    assert h.column("n_steps").tolist() == [50, 100, 170, 220]
    assert np.all(np.diff(h.column("seconds")) >= 0)


def test_history_continues_from_a_checkpoint(tmp_path, data):
    X = np.random.default_rng(5).random((100, 16))
    m = _fit_model().fit(X, epochs=1)
    m2 = sdf.SparseDream.load(m.save(tmp_path / "m.npz"))
    m2.set_params(warm_start=True)
    h = metrics.History(data[:20], every=30).start(m2)
    m2.fit(X, epochs=1, callback=h, callback_every=h.every)
    assert [r["n_steps"] for r in h] == [130, 160, 190]  # calls at 130, 160, 190, 200; due at 120, 150, 180
    assert all(r["steps_per_second"] > 0 for r in h)


def test_snapshots_checkpoints_and_callback_list(tmp_path, data):
    X = np.random.default_rng(5).random((60, 16))
    snaps = metrics.Snapshots(tmp_path / "snaps", every=40)
    ckpts = metrics.Checkpoints(tmp_path / "ckpt", every=60)
    h = metrics.History(data[:10], every=20)
    cbs = metrics.CallbackList(snaps, ckpts, h)
    assert cbs.every == 20
    m = _fit_model()
    m.fit(X, epochs=2, callback=cbs, callback_every=cbs.every)
    assert [os.path.basename(p) for p in snaps.paths] == ["weights_000000040.png", "weights_000000080.png",
                                                          "weights_000000120.png"]
    assert all(os.path.getsize(p) > 0 for p in snaps.paths)
    assert [os.path.basename(p) for p in ckpts.paths] == ["model_000000060.npz", "model_000000120.npz"]
    last = sdf.SparseDream.load(ckpts.paths[-1])
    assert np.array_equal(last.weights_, m.weights_) and last.n_steps_ == 120
    assert len(h) == 6
    with pytest.raises(ValueError, match="every"):
        metrics.History(data, every=0)
    with pytest.raises(TypeError, match="callable"):
        metrics.CallbackList(3)


def test_callback_list_warns_on_periods_that_do_not_divide():
    with pytest.warns(RuntimeWarning, match="gcd 1"):
        metrics.CallbackList(metrics.History(np.zeros((2, 16)), every=100), metrics.Snapshots("x", every=99))
