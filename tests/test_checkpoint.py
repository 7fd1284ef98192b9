"""Checkpoints: a resumed run equals the uninterrupted one bit for bit on every usable
backend; the file holds no pickles; every lateral kind and init array round trips; bad
files raise clear errors."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp

import sparsedream_fast as sdf
from sparsedream_fast.sparsedream.model import backend_module


def _usable(name):
    info = sdf.backends()[name]
    if not info.available:
        return f"{name}: {info.reason}"
    try:
        backend_module(name)
    except (ImportError, ValueError) as exc:
        return f"{name}: no rule A module here ({exc})"
    return None


BACKENDS = [pytest.param(n, marks=pytest.mark.skip(reason=_usable(n)) if _usable(n) else ())
            for n in sdf.backends()]

#: runs that exercise every piece of state a checkpoint must carry
RUNS = {
    # seed 001: box lateral in the competition, error clip, shuffled epochs (rng state)
    "box": dict(grid=(5, 6), k=3, lr=0.1, lateral=sdf.lateral.box(2, 0.1), error_clip=1.0),
    # seed 001 In [31]: trace, data in order (trace reset per epoch, continued by partial_fit)
    "trace": dict(grid=(4, 4), k=2, lr=0.05, trace=0.5, error_clip=1.0),
    # seed 000: learned random lateral, normalized competition, bounds every 7 steps
    "learned": dict(grid=(4, 5), k=3, lr=0.02, competition="normalized_lateral", output="competition",
                    lateral=sdf.lateral.random(radius=1, low=0.0, high=0.5), learn_lateral=True,
                    w_max=0.5, clip_every=7, init=(0.0, 0.5)),
}
FIT_KW = {"box": {}, "trace": {"shuffle": False}, "learned": {}}


def _data(n=60, d=16, seed=0):
    return np.random.default_rng(seed).random((n, d))


def _same_state(a, b):
    assert np.array_equal(a.weights_, b.weights_)
    assert a.weights_.dtype == b.weights_.dtype
    assert np.array_equal(a.trace_, b.trace_)
    la, lb = a.lateral_, b.lateral_
    assert (la is None) == (lb is None)
    if la is not None:
        assert np.array_equal(la.toarray(), lb.toarray())
    assert a.n_steps_ == b.n_steps_
    assert a._rng.bit_generator.state == b._rng.bit_generator.state


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("run", list(RUNS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_resumed_fit_equals_uninterrupted(backend, run, dtype, tmp_path):
    X = _data()
    kw = dict(n_inputs=16, dtype=dtype, backend=backend, seed=3, **RUNS[run])
    whole = sdf.SparseDream(**kw).fit(X, epochs=3, **FIT_KW[run])
    first = sdf.SparseDream(**kw).fit(X, epochs=2, **FIT_KW[run])
    path = first.save(tmp_path / "half")
    assert path.endswith("half.npz")
    resumed = sdf.SparseDream.load(path)
    assert resumed.backend == backend and resumed.backend_ == backend
    resumed.set_params(warm_start=True)
    resumed.fit(X, epochs=1, **FIT_KW[run])
    _same_state(resumed, whole)
    assert np.array_equal(resumed.winners(X), whole.winners(X))


@pytest.mark.parametrize("backend", BACKENDS)
def test_partial_fit_continues_the_trace(backend, tmp_path):
    X = _data(40)
    kw = dict(n_inputs=16, grid=(4, 4), k=2, lr=0.05, trace=0.5, backend=backend, dtype="float64", seed=1)
    whole = sdf.SparseDream(**kw)
    whole.partial_fit(X[:20]).partial_fit(X[20:])
    half = sdf.SparseDream(**kw).partial_fit(X[:20])
    assert np.count_nonzero(half.trace_) > 0  # there is a trace to carry over
    resumed = sdf.SparseDream.load(half.save(tmp_path / "p.npz"))
    resumed.partial_fit(X[20:])
    _same_state(resumed, whole)


@pytest.mark.parametrize("backend", BACKENDS)
def test_load_on_another_backend(backend, tmp_path):
    X = _data()
    m = sdf.SparseDream(n_inputs=16, grid=(3, 3), k=2, dtype="float64", backend="numpy", seed=0).fit(X, epochs=1)
    other = sdf.SparseDream.load(m.save(tmp_path / "m"), backend=backend)
    assert other.backend_ == backend
    assert np.array_equal(other.winners(X), m.winners(X))


def test_file_holds_no_pickles(tmp_path):
    X = _data()
    m = sdf.SparseDream(n_inputs=16, grid=(4, 5), k=2, lateral=sp.random(20, 20, density=0.2, random_state=0),
                        init=np.full((20, 16), 0.2), backend="numpy", seed=0).fit(X, epochs=1)
    path = m.save(tmp_path / "m.npz")
    with zipfile.ZipFile(path) as z:
        assert all(name.endswith(".npy") for name in z.namelist())
    with np.load(path, allow_pickle=False) as z:
        for key in z.files:
            arr = z[key]  # raises if any array needed pickle
            assert arr.dtype != object, key
        assert str(z["format"]).startswith("sparsedream_fast.SparseDream/")
        json.loads(str(z["params"]))
        json.loads(str(z["config"]))
        json.loads(str(z["rng"]))


LATERALS = {
    "none": (None, "drive"),
    "box": (sdf.lateral.box(1, 0.2), "lateral"),
    "normalized_box": (sdf.lateral.normalized_box(1, 0.5), "mean_lateral"),
    "stencil": (sdf.lateral.stencil(np.array([[0.0, 0.1, 0.0], [0.2, 0.0, 0.3], [0.0, 0.05, 0.0]])), "lateral"),
    "random": (sdf.lateral.random(radius=1, low=0.0, high=0.3), "normalized_lateral"),
    "random_all": (sdf.lateral.random(radius=None, low=0.0, high=0.3), "normalized_lateral"),
    "dense": (np.random.default_rng(0).random((12, 12)) * 0.05, "lateral"),
    "sparse": (sp.random(12, 12, density=0.3, random_state=1, format="coo") * 0.1, "lateral"),
}


@pytest.mark.parametrize("learn", [False, True])
@pytest.mark.parametrize("kind", list(LATERALS))
def test_every_lateral_kind_round_trips(kind, learn, tmp_path):
    lateral, comp = LATERALS[kind]
    if learn and lateral is None:
        pytest.skip("nothing to learn")
    if not learn and kind.startswith("random"):
        pytest.skip("a random lateral is drawn for learning")
    X = _data(40, 9)
    kw = dict(n_inputs=9, grid=(3, 4), k=2, lr=0.02, competition=comp, lateral=lateral, learn_lateral=learn,
              w_max=1.0 if learn else None, clip_every=5, dtype="float64", backend="numpy", seed=4)
    m = sdf.SparseDream(**kw).fit(X, epochs=1)
    back = sdf.SparseDream.load(m.save(tmp_path / "m.npz"))
    _same_state(back, m)
    p, q = m.get_params(), back.get_params()
    assert p.keys() == q.keys()
    for key in p:
        if key == "lateral" and kind in ("dense", "sparse"):
            assert np.allclose(sp.csr_array(q[key]).toarray(), m.lateral_.toarray())
        elif key == "lateral" and kind == "stencil":
            assert np.array_equal(q[key].kernel, p[key].kernel)
        else:
            assert q[key] == p[key], key
    # both continue identically
    m.set_params(warm_start=True)
    back.set_params(warm_start=True)
    m.fit(X, epochs=1)
    back.fit(X, epochs=1)
    _same_state(back, m)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_init_array_round_trips(dtype, tmp_path):
    X = _data(30, 9)
    W0 = np.random.default_rng(7).uniform(0.1, 0.2, (6, 9))
    m = sdf.SparseDream(n_inputs=9, grid=(2, 3), k=2, init=W0, dtype=dtype, backend="numpy").fit(X, epochs=1)
    back = sdf.SparseDream.load(m.save(tmp_path / "m.npz"))
    assert np.array_equal(back.get_params()["init"], W0)
    _same_state(back, m)
    fresh_a = sdf.SparseDream(**m.get_params()).fit(X, epochs=1)
    fresh_b = sdf.SparseDream(**back.get_params()).fit(X, epochs=1)  # re-initialises from the saved init
    _same_state(fresh_a, fresh_b)


# ----------------------------------------------------------------------------- bad files
@pytest.fixture
def saved(tmp_path):
    m = sdf.SparseDream(n_inputs=9, grid=(2, 3), k=2, backend="numpy").fit(_data(20, 9), epochs=1)
    return m.save(tmp_path / "good.npz")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        sdf.SparseDream.load(tmp_path / "absent.npz")


def test_foreign_npz(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a SparseDream checkpoint"):
        sdf.SparseDream.load(tmp_path / "other.npz")


def test_other_format_version(saved, tmp_path):
    d = dict(np.load(saved))
    d["format"] = np.array("sparsedream_fast.SparseDream/99")
    np.savez(tmp_path / "future.npz", **d)
    with pytest.raises(ValueError, match="checkpoint"):
        sdf.SparseDream.load(tmp_path / "future.npz")


def test_truncated_file(saved, tmp_path):
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(open(saved, "rb").read()[:300])
    with pytest.raises(ValueError, match="checkpoint"):
        sdf.SparseDream.load(bad)


def test_text_file(tmp_path):
    bad = tmp_path / "notes.npz"
    bad.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="checkpoint"):
        sdf.SparseDream.load(bad)


def test_missing_array(saved, tmp_path):
    d = dict(np.load(saved))
    del d["W"]
    np.savez(tmp_path / "noW.npz", **d)
    with pytest.raises(ValueError, match="checkpoint"):
        sdf.SparseDream.load(tmp_path / "noW.npz")


def test_bad_files_never_pass_silently(saved, tmp_path):
    """Whatever the message, a damaged file raises (today or after the change above)."""
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(open(saved, "rb").read()[:300])
    with pytest.raises(Exception):
        sdf.SparseDream.load(bad)
    d = dict(np.load(saved))
    d["params"] = np.array("{not json")
    np.savez(tmp_path / "badjson.npz", **d)
    with pytest.raises(ValueError):
        sdf.SparseDream.load(tmp_path / "badjson.npz")
