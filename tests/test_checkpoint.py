"""Checkpoints: a resumed run equals the uninterrupted one bit for bit on every usable
backend; the file holds no pickles; every lateral kind and init array round trips; bad
files raise clear errors."""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp

import sparsedream_fast as sdf
from estimator_cases import CASES, PARAMS, same
from testing import rule_backends

BACKENDS = rule_backends("A")

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
        assert str(z["format"]) == "sparsedream_fast.SparseDream/2"
        json.loads(str(z["params"]))
        state = json.loads(str(z["state"]))
        assert state["n_steps"] == m.n_steps_ and state["rng"]["bit_generator"] == "PCG64"


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
        if key == "lateral" and kind in ("dense", "sparse"):   # the matrix given, not the one learned
            assert np.array_equal(sp.csr_array(q[key]).toarray(), sp.csr_array(p[key]).toarray())
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


# ----------------------------------------------------------------------------- format 1
DATA = os.path.join(os.path.dirname(__file__), "data")


@pytest.mark.parametrize("name", ["stencil", "learned", "matrix"])
def test_format_1_files_still_load_and_continue(name):
    """SparseDream/1 files written by main at bcc1a9f (tests/data/make_v1.py) load, hold the
    saved state and continue as that code continued them. The continuation is the numpy
    backend's, whose ``W @ v`` is the BLAS's: its last bit depends on the CPU's kernel (an AMD
    Zen 3 OpenBLAS gave 1-2 ulp from the file, written on another CPU), so it is compared to
    1e-12 relative; the loaded state is compared exactly."""
    path = os.path.join(DATA, f"sparsedream_{name}_v1.npz")
    with np.load(path) as z:
        assert str(z["format"]) == "sparsedream_fast.SparseDream/1"
        W, n_steps = z["W"], int(z["n_steps"])
    m = sdf.SparseDream.load(path)
    assert np.array_equal(m.weights_, W) and m.n_steps_ == n_steps
    assert sdf.checkpoint.info(path)["version"] == 1
    m.set_params(warm_start=True)
    m.fit(np.random.default_rng(5).random((30, 9)), epochs=1)
    with np.load(os.path.join(DATA, "v1_expected.npz")) as want:
        np.testing.assert_allclose(m.weights_, want[f"{name}_W"], rtol=1e-12, atol=0)
        np.testing.assert_allclose(m.trace_, want[f"{name}_trace"], rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(m.lateral_.toarray(), want[f"{name}_lateral"], rtol=1e-12, atol=0)
        assert m.n_steps_ == int(want[f"{name}_n_steps"])


# ----------------------------------------------------------------------------- saving
def test_numpy_scalars_as_parameters(tmp_path):
    """A numpy integer seed made the old save raise part way (JSON) and leave a 0-byte file."""
    X = _data(30, 9)
    kw = dict(n_inputs=np.int64(9), grid=(np.int32(2), np.int64(3)), k=np.int64(2), lr=np.float32(0.05),
              seed=np.int64(3), dtype=np.float64, backend="numpy")
    m = sdf.SparseDream(**kw).fit(X, epochs=1)
    back = sdf.SparseDream.load(m.save(tmp_path / "m"))
    assert back.get_params()["seed"] == 3 and back.get_params()["dtype"] == np.float64
    _same_state(back, m)


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_failed_save_leaves_the_old_file(tmp_path, monkeypatch):
    X = _data(30, 9)
    m = sdf.SparseDream(n_inputs=9, grid=(2, 3), k=2, backend="numpy").fit(X, epochs=1)
    path = m.save(tmp_path / "m.npz")
    before = open(path, "rb").read()
    # a parameter with no checkpoint form: refused before anything is written
    m.set_params(seed=lambda: 0)
    with pytest.raises(TypeError, match="cannot save parameter params.seed"):
        m.save(path)
    m.set_params(seed=1)
    # a failure in the middle of writing (a full disk, say)
    from sparsedream_fast.checkpoint import _io
    calls = []

    def failing_write(f, a, **kw):
        calls.append(1)
        if len(calls) == 4:
            f.write(b"\0" * 100)
            raise OSError(28, "No space left on device")
        return np.lib.format.write_array(f, a, **kw)

    monkeypatch.setattr(_io.npy_format, "write_array", failing_write)
    with pytest.raises(OSError, match="No space"):
        m.save(path)
    assert open(path, "rb").read() == before
    assert _files(tmp_path) == ["m.npz"]          # no temporary file left behind
    monkeypatch.undo()
    assert np.array_equal(sdf.SparseDream.load(path).weights_, m.weights_)


def test_save_is_a_rename_in_the_same_folder(tmp_path, monkeypatch):
    """The new file is complete and synced before it replaces the old one."""
    import sparsedream_fast.checkpoint._io as io_mod
    seen = []
    real_replace, real_fsync = os.replace, os.fsync
    monkeypatch.setattr(io_mod.os, "fsync", lambda fd: (seen.append(("fsync", fd)), real_fsync(fd))[1])

    def replace(src, dst):
        seen.append(("replace", os.path.dirname(src) == os.path.dirname(dst), np.load(src)["W"].shape))
        return real_replace(src, dst)

    monkeypatch.setattr(io_mod.os, "replace", replace)
    m = sdf.SparseDream(n_inputs=9, grid=(2, 3), k=2, backend="numpy").fit(_data(20, 9), epochs=1)
    m.save(tmp_path / "m.npz")
    kinds = [s[0] for s in seen]
    assert kinds[0] == "fsync" and "replace" in kinds and kinds.index("replace") > 0
    assert ("replace", True, (6, 9)) in seen
    assert _files(tmp_path) == ["m.npz"]


# ----------------------------------------------------------------------------- checks
def _rewrite(src, dst, change):
    d = dict(np.load(src))
    change(d)
    np.savez(dst, **d)
    return dst


def _state(d, **kw):
    s = json.loads(str(d["state"]))
    s.update(kw)
    d["state"] = np.array(json.dumps(s))


def _params(d, **kw):
    s = json.loads(str(d["params"]))
    s.update(kw)
    d["params"] = np.array(json.dumps(s))


def _set(key, value):
    def f(d):
        d[key] = value
    return f


def _edit(key, fn):
    def f(d):
        d[key] = fn(d[key].copy())
    return f


def _at(a, i, v):
    a[i] = v
    return a


BAD = {
    "W dtype": (_edit("W", lambda a: a.astype(np.float16)), "'W': must have dtype float32"),
    "W shape": (_edit("W", lambda a: a[:, :5]), r"'W': must have shape \(20, 9\)"),
    "W NaN": (_edit("W", lambda a: _at(a, (0, 0), np.nan)), "'W': contains NaN"),
    "W missing": (lambda d: d.pop("W"), "'W': missing"),
    "trace short": (_edit("trace", lambda a: a[:3]), r"'trace': must have shape \(20,\)"),
    "trace dtype": (_edit("trace", lambda a: a.astype(np.float64)), "'trace': must have dtype float32"),
    "indices range": (_edit("lat_indices", lambda a: _at(a, 0, 10**6)), r"lat_indices must lie in \[0, 20\)"),
    "indices negative": (_edit("lat_indices", lambda a: _at(a, 0, -1)), "lat_indices must lie in"),
    "indices int64 wrap": (_edit("lat_indices", lambda a: _at(a.astype(np.int64), 0, 2**32 + 1)),
                           "lat_indices must lie in"),
    "indptr truncated": (_edit("lat_indptr", lambda a: a[:5]), r"'lat_indptr': must have shape \(21,\)"),
    "indptr order": (_edit("lat_indptr", lambda a: _at(a, 3, 10**5)), "lat_indptr must run from 0 to nnz|"
                     "nondecreasing"),
    "indptr float": (_edit("lat_indptr", lambda a: a.astype(np.float64)), "'lat_indptr': must have a dtype of kind"),
    "data NaN": (_edit("lat_data", lambda a: _at(a, 0, np.nan)), "'lat_data': contains NaN"),
    "lateral kind": (_set("lateral_kind", np.array("hexagonal")), "'lateral_kind': must be one of"),
    "steps negative": (lambda d: _state(d, n_steps=-1), r"'state': n_steps must lie in \[0, "),
    "steps float": (lambda d: _state(d, n_steps=1.5), "n_steps must be an integer"),
    "rng": (lambda d: _state(d, rng={"bit_generator": "MT19937"}), "'state.rng': must be the state of a PCG64"),
    "rng state": (lambda d: _state(d, rng=dict(json.loads(str(d["state"]))["rng"], state={"state": -1, "inc": 1})),
                  "state.rng.*must lie in"),
    "D": (lambda d: _state(d, n_inputs=0), "n_inputs must lie in"),
    "k": (lambda d: _params(d, k=0), "'params'.*k must be between 1"),
    "unknown parameter": (lambda d: _params(d, colour="red"), r"\['colour'\] are not parameters of SparseDream"),
    "params JSON": (_set("params", np.array("{not json")), "'params': is not valid JSON"),
    "params deep": (_set("params", np.array("[" * 100_000 + "]" * 100_000)), "'params': is not valid JSON"),
    "params type": (_set("params", np.zeros(3)), "'params': must have a dtype of kind 'U'"),
    "format": (_set("format", np.array("sparsedream_fast.SparseDream/99")), "format version 99 is not one"),
    "pickled member": (_set("W", np.array([{"a": 1}], dtype=object)), "would need pickle"),
}


@pytest.fixture
def learned(tmp_path):
    m = sdf.SparseDream(n_inputs=9, grid=(4, 5), k=2, lateral=sdf.lateral.random(1), learn_lateral=True,
                        w_max=1.0, backend="numpy").fit(_data(20, 9), epochs=1)
    return m.save(tmp_path / "learned.npz")


@pytest.mark.parametrize("case", list(BAD))
def test_load_checks_every_key(learned, tmp_path, case):
    change, msg = BAD[case]
    bad = _rewrite(learned, tmp_path / "bad.npz", change)
    with pytest.raises(ValueError, match=msg):
        sdf.SparseDream.load(bad)
    with pytest.raises(ValueError, match=msg):
        sdf.load(bad)


def test_a_header_larger_than_the_file_is_refused_before_reading(learned, tmp_path):
    """A member whose header announces more data than it holds (here lat_indices, whose
    length the configuration does not fix) is refused without allocating it."""
    import io
    forged = tmp_path / "forged.npz"
    with zipfile.ZipFile(learned) as src, zipfile.ZipFile(forged, "w") as dst:
        for name in src.namelist():
            raw = src.read(name)
            if name == "lat_indices.npy":
                head = io.BytesIO()
                np.lib.format.write_array_header_1_0(head, {"descr": "<i4", "fortran_order": False,
                                                            "shape": (10**12,)})
                raw = head.getvalue() + raw[-40:]
            dst.writestr(name, raw)
    with pytest.raises(ValueError, match=r"'lat_indices': header announces shape \(1000000000000,\)"):
        sdf.SparseDream.load(forged)


# ----------------------------------------------------------------------------- every model
@pytest.mark.parametrize("case, backend", PARAMS)
def test_every_model_round_trips_and_continues_exactly(case, backend, tmp_path):
    name, make, first, then, seen = CASES[case]
    want = seen(then(first(make(backend))))
    saved = first(make(backend))
    path = saved.save(tmp_path / "m")
    assert sdf.checkpoint.info(path)["model"] == name
    for loaded in (sdf.load(path), type(saved).load(path)):
        assert type(loaded) is type(saved) and _backend_of(loaded) == backend
        same(seen(then(loaded)), want)


def _backend_of(m):
    """The backend a model runs on (a classifier's: its features')."""
    return m.features_.backend if isinstance(m, sdf.KrotovHopfieldClassifier) else m.backend


@pytest.mark.parametrize("case", list(CASES))
def test_an_unfitted_model_round_trips(case, tmp_path):
    name, make, first, then, seen = CASES[case]
    m = sdf.load(make("numpy").save(tmp_path / "m"))
    assert not sdf.checkpoint.info(tmp_path / "m.npz")["state"]["fitted"]
    same(seen(then(first(m))), seen(then(first(make("numpy")))))


def test_another_models_file_is_refused_by_name(tmp_path):
    X = _data(20, 9)
    path = sdf.DreamComp(n_inputs=9, n_neurons=4, n_classes=2, batch_size=5).fit(X, np.arange(20) % 2).save(
        tmp_path / "dc")
    with pytest.raises(ValueError, match="is a DreamComp checkpoint, not a SparseDream one"):
        sdf.SparseDream.load(path)
    with pytest.raises(ValueError, match="is a DreamComp checkpoint, not a KrotovHopfield one"):
        sdf.KrotovHopfield.load(path)
    assert isinstance(sdf.load(path), sdf.DreamComp)


BATCH_BAD = {
    "weights shape": ("dc", lambda d: d.update({"fitted.weights_": d["fitted.weights_"][:, :-1]}),
                      r"'fitted.weights_': must have shape \(4, 11\)"),
    "weights dtype": ("dc", lambda d: d.update({"fitted.weights_": d["fitted.weights_"].astype(np.float64)}),
                      "'fitted.weights_': must have dtype float32"),
    "weights NaN": ("kh", lambda d: d["fitted.weights_"].__setitem__((0, 0), np.nan), "'fitted.weights_': contains NaN"),
    "classes": ("dc", lambda d: _state(d, attrs=dict(json.loads(str(d["state"]))["attrs"], n_classes_=-2)),
                "'fitted.n_classes_': must be an integer in"),
    "n_inputs": ("dc", lambda d: _params(d, n_inputs=8), "n_inputs=8 disagrees with the fitted size 9"),
    "hidden": ("kh", lambda d: _params(d, n_hidden=3), r"'fitted.weights_': must have shape \(3, 9\)"),
    "k": ("kh", lambda d: _params(d, k=99), "k must be"),
    "seed": ("kh", lambda d: _params(d, seed=-4), "'params'"),
}


@pytest.mark.parametrize("case", list(BATCH_BAD))
def test_batch_rule_files_are_checked(case, tmp_path):
    which, change, msg = BATCH_BAD[case]
    X = _data(20, 9)
    m = (sdf.DreamComp(n_inputs=9, n_neurons=4, n_classes=2, batch_size=5).fit(X, np.arange(20) % 2)
         if which == "dc" else sdf.KrotovHopfield(n_inputs=9, n_hidden=4, k=2, batch_size=5).fit(X))
    bad = _rewrite(m.save(tmp_path / "m"), tmp_path / "bad.npz", change)
    with pytest.raises(ValueError, match=msg):
        type(m).load(bad)


# ----------------------------------------------------------------------------- TNN
def _spikes(n, waves=3, lines=8, T=8, seed=0):
    return np.random.default_rng(seed).integers(0, T + 1, (n, waves, lines))


def _tnn_net(**kw):
    """Every kind of layer and connection: an input of open size, a slice and a mask of lines,
    an init array, a fixed connection, a sparse one, a delay of two waves, STDP settings."""
    net = sdf.TNNNetwork(T=8, seed=5, backend="numpy", **kw)
    net.add_input("px").add_input("ctx", 2).add_column("a", 4, threshold=5, k=2, w_max=6, stdp={"ucapture": 0.3})
    net.add_delay("d", "a", waves=2).add_column("b", 3, threshold=4, k=1, w_max=9)
    net.connect("px", "a", init=(1, 4), lines=slice(0, None, 2))
    net.connect("ctx", "a", init=np.array([[0, 1], [2, 3], [4, 5], [6, 0]]), learn=False)
    net.connect("a", "b", init=(0, 9), density=0.5, lines=[True, False, True, True]).connect("d", "b", init=(0, 2))
    return net


def test_tnn_structure_round_trips_through_the_builder(tmp_path):
    net = _tnn_net()
    back = sdf.load(net.save(tmp_path / "n"))
    assert back.structure == net.structure and repr(back) == repr(net)
    S = _spikes(6, lines=8)
    net.fit(S)
    back = sdf.TNNNetwork.load(net.save(tmp_path / "n"))
    assert back.structure_ == net.structure_ and back.n_features_in_ == 8
    for m in (net, back):
        m.set_params(warm_start=True)
        m.fit(_spikes(5, lines=8, seed=1), epochs=2)
    for name in net.weights_:
        assert np.array_equal(back.weights_[name], net.weights_[name]), name
    assert back.n_waves_learned_ == net.n_waves_learned_ == 6 * 3 + 2 * 5 * 3
    assert np.array_equal(back.transform(S, layer=["a", "b"]), net.transform(S, layer=["a", "b"]))


def test_tnn_feature_names_round_trip(tmp_path):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(_spikes(12, seed=2)[:, 0], columns=[f"line{i}" for i in range(8)])
    for m in (sdf.TNNColumn(n_neurons=5, threshold=4, k=2, T=8, backend="numpy"),
              sdf.TNNNetwork(T=8, backend="numpy").add_input("px").add_column("c", 4, 5, 2).connect("px", "c")):
        m.fit(X)
        back = sdf.load(m.save(tmp_path / "m"))
        assert list(back.feature_names_in_) == list(X.columns)
        with pytest.raises(ValueError, match="feature names"):
            back.transform(X.rename(columns={"line0": "other"})) if hasattr(back, "transform") else \
                back.forward(X.rename(columns={"line0": "other"}))


def test_tnn_format_1_file_still_loads_and_continues():
    """A TNNNetwork/1 file written by main at bcc1a9f (tests/data/make_v1.py) loads, and
    continues (``fit`` continued then; ``warm_start=True`` does now) as that code did."""
    path = os.path.join(DATA, "tnn_network_v1.npz")
    net = sdf.TNNNetwork.load(path)
    assert sdf.checkpoint.info(path)["version"] == 1
    with np.load(path) as z:
        assert np.array_equal(net.weights_["c"], z["W_c"]) and net.n_waves_learned_ == int(z["n_waves_learned"])
    net.set_params(warm_start=True)
    net.fit(np.random.default_rng(3).integers(0, 9, (6, 3, 8)))
    with np.load(os.path.join(DATA, "v1_expected.npz")) as want:
        assert np.array_equal(net.weights_["c"], want["tnn_W"])
        assert net.n_waves_learned_ == int(want["tnn_n_waves"])


def test_tnn_save_refuses_a_structure_changed_after_fit(tmp_path):
    net = _tnn_net().fit(_spikes(3))
    net.set_params(structure=net.structure.add_input("extra", 3))
    with pytest.raises(ValueError, match="structure parameter was changed"):
        net.save(tmp_path / "n")


def _structure_doc(d, change):
    p = json.loads(str(d["params"]))
    change(p["structure"]["fields"])
    d["params"] = np.array(json.dumps(p))


TNN_BAD = {
    "weights shape": (_edit("weights.0", lambda a: a[:, :-1]), r"'weights.0': must have shape \(4, 6\)"),
    "weights dtype": (_edit("weights.1", lambda a: a.astype(np.int64)), "'weights.1': must have dtype int32"),
    "weights range": (_edit("weights.0", lambda a: _at(a, (0, 0), 7)), "'weights.0': entries must be <= 6"),
    "weights negative": (_edit("weights.1", lambda a: _at(a, (0, 0), -1)), "'weights.1': entries must be >= 0"),
    "weights missing": (lambda d: d.pop("weights.1"), "'weights.1': missing"),
    "waves negative": (lambda d: _state(d, n_waves_learned=-1), "n_waves_learned must lie in"),
    "waves float": (lambda d: _state(d, n_waves_learned=2.5), "n_waves_learned must be an integer"),
    "seed": (lambda d: _state(d, seed=-3), "seed must lie in"),
    "width": (lambda d: _state(d, n_features_in=0), "n_features_in must lie in"),
    "width huge": (lambda d: _state(d, n_features_in=2**24), "more than 16777216 lines"),
    "width wrong": (lambda d: _state(d, n_features_in=12), r"'weights.0': must have shape \(4, 7\)"),
    "rng": (lambda d: _state(d, rng=None), "'state.rng'"),
    "names": (_set("feature_names_in_", np.array(["a", "b"])), r"'feature_names_in_': must have shape \(10,\)"),
    "column k": (lambda d: _structure_doc(d, lambda f: f["layers"][2]["__dict__"].update(k=9)),
                 "k=9 winners is more than"),
    "column threshold": (lambda d: _structure_doc(d, lambda f: f["layers"][2]["__dict__"].update(threshold=0)),
                         "threshold must be >= 1"),
    "stdp": (lambda d: _structure_doc(d, lambda f: f["layers"][2]["__dict__"]["stdp"]["__dict__"].update(
        capture=1.5)), "STDP capture"),
    "unknown layer": (lambda d: _structure_doc(d, lambda f: f["connections"][0]["__dict__"].update(source="zz")),
                      "no layer named 'zz'"),
    "layer kind": (lambda d: _structure_doc(d, lambda f: f["layers"][0]["__dict__"].update(kind="hidden")),
                   "not a saved layer"),
    "huge input": (lambda d: _structure_doc(d, lambda f: f["layers"][1]["__dict__"].update(n=2**30)),
                   "at most 16777216 lines"),
    "lines": (lambda d: _structure_doc(d, lambda f: f["connections"][2]["__dict__"].update(
        selector={"__tuple__": [0, 99]})), "do not select lines of 'a'"),
    "slice": (lambda d: _structure_doc(d, lambda f: f["connections"][0]["__dict__"].update(
        selector={"__dict__": {"slice": [0, None, 0]}})), "step 0"),
    "init array": (_edit("params.structure.connections.1.init", lambda a: a[:, :1]), "init of 'ctx' -> 'a' must"),
    "dtype": (lambda d: _params(d, dtype="float32"), "TNN weights are integers"),
    "T": (lambda d: _params(d, T=300), "T must be"),
}


@pytest.mark.parametrize("case", list(TNN_BAD))
def test_tnn_files_are_checked(case, tmp_path):
    change, msg = TNN_BAD[case]
    pd = pytest.importorskip("pandas")
    good = _tnn_net().fit(pd.DataFrame(_spikes(4, waves=1, lines=10)[:, 0], columns=[f"x{i}" for i in range(10)]))
    bad = _rewrite(good.save(tmp_path / "n"), tmp_path / "bad.npz", change)
    with pytest.raises(ValueError, match=msg):
        sdf.TNNNetwork.load(bad)


def test_tnn_column_files_are_checked(tmp_path):
    col = sdf.TNNColumn(n_inputs=8, n_neurons=5, threshold=4, k=2, T=8, w_max=10, backend="numpy").fit(
        _spikes(6)[:, 0])
    path = col.save(tmp_path / "c")
    for change, msg in [(_edit("weights.0", lambda a: _at(a, (1, 1), 11)), "'weights.0': entries must be <= 10"),
                        (lambda d: _params(d, n_neurons=4), r"'weights.0': must have shape \(4, 8\)"),
                        (lambda d: _params(d, n_inputs=7), "takes 7 input lines, the saved state 8"),
                        (lambda d: _state(d, n_waves_learned=-5), "n_waves_learned must lie in")]:
        with pytest.raises(ValueError, match=msg):
            sdf.TNNColumn.load(_rewrite(path, tmp_path / "bad.npz", change))
    with pytest.raises(ValueError, match="is a TNNColumn checkpoint, not a TNNNetwork one"):
        sdf.TNNNetwork.load(path)


def test_tnn_threshold_beyond_the_kernels_int64_is_refused():
    """Found by the fuzz: a threshold >= 2**63 reached the C++ cast (RuntimeError)."""
    with pytest.raises(ValueError, match="threshold must be <="):
        sdf.TNNColumn(n_inputs=4, threshold=2**63, backend="numpy").fit(np.zeros((3, 4), int))


# ----------------------------------------------------------------------------- classifier
def _classifier(frozen=False, **kw):
    X, y = _data(40, 9), np.array(["cat", "dog", "eel", "dog"] * 10)
    kh = sdf.KrotovHopfield(n_hidden=6, k=2, batch_size=8, backend="numpy", seed=3)
    features = FrozenEstimator(kh.fit(X)) if frozen else kh
    clf = sdf.KrotovHopfieldClassifier(features=features, feature_epochs=2, n=2.0, epochs=4, batch_size=8,
                                       adam_betas=(0.8, 0.99), init=np.full((3, 6), 0.01), seed=1, **kw)
    return clf.fit(X, y, validation_data=(X[:10], y[:10])), X, y


from sklearn.frozen import FrozenEstimator  # noqa: E402


@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize("backend", rule_backends("C"))
def test_classifier_round_trips(frozen, backend, tmp_path):
    """Features (a parameter or a FrozenEstimator of fitted ones), top layer, curves, the
    read-out settings it was trained with, and a fit after loading equal to the original's."""
    clf, X, y = _classifier(frozen)
    trained = clf.beta
    clf.set_params(beta=0.5)          # after fit: inference refuses a beta other than the trained one
    back = sdf.load(clf.save(tmp_path / "clf"), backend=backend)
    for m in (clf, back):             # the trained value is stored: the loaded model refuses it too
        with pytest.raises(ValueError, match="beta changed"):
            m.decision_function(X)
        m.set_params(beta=trained)
    assert back.features_.backend == backend
    assert isinstance(back.features, FrozenEstimator) == frozen
    for name in ("hidden_weights_", "weights_", "classes_"):
        assert np.array_equal(getattr(back, name), getattr(clf, name)), name
    assert back.loss_curve_ == clf.loss_curve_ and back.validation_scores_ == clf.validation_scores_
    assert np.array_equal(back.decision_function(X), clf.decision_function(X))
    assert list(back.predict(X)) == list(clf.predict(X))
    assert back.score(X, y) == clf.score(X, y)
    clf.fit(X, y)
    back.fit(X, y)
    assert np.array_equal(back.weights_, clf.weights_)
    assert np.array_equal(back.hidden_weights_, clf.hidden_weights_)


def test_classifier_feature_names_round_trip(tmp_path):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(_data(30, 4), columns=list("abcd"))
    clf = sdf.KrotovHopfieldClassifier(features=sdf.KrotovHopfield(n_hidden=4, k=2, batch_size=5), feature_epochs=1,
                                       epochs=2, batch_size=5).fit(X, np.arange(30) % 2)
    back = sdf.load(clf.save(tmp_path / "clf"))
    assert list(back.feature_names_in_) == list("abcd")
    assert np.array_equal(back.predict(X), clf.predict(X))


CLF_BAD = {
    "top weights shape": (_edit("fitted.weights_", lambda a: a[:, :-1]), r"'fitted.weights_': must have shape \(3, 6\)"),
    "top weights NaN": (_edit("fitted.weights_", lambda a: _at(a, (0, 0), np.nan)), "'fitted.weights_': contains NaN"),
    "hidden dtype": (_edit("fitted.hidden_weights_", lambda a: a.astype(np.float64)),
                     "'fitted.hidden_weights_': must be a float32 array"),
    "features weights": (_edit("fitted.features_/fitted.weights_", lambda a: a[:3]),
                         r"'fitted.features_/fitted.weights_': must have shape \(6, 9\)"),
    "features missing": (lambda d: [d.pop(k) for k in list(d) if k.startswith("fitted.features_/")],
                         "'fitted.features_/format': missing"),
    "features not a model": (lambda d: d.update({"fitted.features_/format": np.array(
        "sparsedream_fast.SparseDream/2")}), "fitted.features_"),
    "classes": (lambda d: d.update({"fitted.classes_": d["fitted.classes_"][:1]}), "'fitted.classes_': must be an array"),
    "n_features_in_": (lambda d: _state(d, attrs=dict(json.loads(str(d["state"]))["attrs"], n_features_in_=8)),
                       "must equal the features' D=9"),
    "loss": (lambda d: _state(d, attrs=dict(json.loads(str(d["state"]))["attrs"], loss_curve_=[1.0, "x"])),
             "'fitted.loss_curve_': must be a list of finite numbers"),
    "scores": (lambda d: _state(d, attrs=dict(json.loads(str(d["state"]))["attrs"], validation_scores_=[2.0])),
               "'fitted.validation_scores_': entries must lie in"),
    "read_out": (lambda d: _state(d, read_out={"n": -1.0, "beta": 0.01}), "read_out must hold"),
    "m": (lambda d: _params(d, m=0.5), "m must be >= 1"),
    "frozen features": (lambda d: d.update({"params.features.estimator/fitted.weights_": np.zeros((2, 2), "f4")}),
                        "'params.features.estimator/fitted.weights_': must have shape"),
}


@pytest.mark.parametrize("case", list(CLF_BAD))
def test_classifier_files_are_checked(case, tmp_path):
    change, msg = CLF_BAD[case]
    clf, _, _ = _classifier(frozen=True)
    bad = _rewrite(clf.save(tmp_path / "clf"), tmp_path / "bad.npz", change)
    with pytest.raises(ValueError, match=msg):
        sdf.KrotovHopfieldClassifier.load(bad)


def test_a_crafted_epochs_is_refused_before_ordering_memory_away(tmp_path):
    """Found by the fuzz: a classifier file with epochs=2**70 made fit build the sample order
    of 2**70 epochs until the kernel killed the process (out of memory)."""
    clf, X, y = _classifier()
    bad = _rewrite(clf.save(tmp_path / "clf"), tmp_path / "bad.npz", lambda d: _params(d, epochs=2**70))
    back = sdf.load(bad)
    with pytest.raises(ValueError, match="epochs=1180591620717411303424 x 40 samples per epoch is more than"):
        back.fit(X, y)
    with pytest.raises(ValueError, match="samples per epoch is more than"):
        sdf.KrotovHopfield(n_hidden=4, k=2, batch_size=5).fit(X, epochs=2**40)
