"""Child process of tests/test_checkpoint_crash.py: damages every key of a saved checkpoint in
many ways, loads each damaged file and uses the model on every backend asked for.

    python checkpoint_fuzz.py MODEL FOLDER BACKEND [BACKEND ...]

Prints ``CASE <name>`` (flushed) before each attempt, so that a crash names its case, and a
last line ``RESULT <json>`` with, per outcome, the cases: ``ok`` (loaded and used),
``refused`` (ValueError or TypeError, as wanted), ``diverged`` (``sdf.DivergenceError``: a
valid but huge parameter such as lr = 1e19 trains to that documented error) and ``wrong`` (any other exception, with its
type and message). Exits 0 unless the interpreter itself dies.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings

import numpy as np

import sparsedream_fast as sdf
from sparsedream_fast import _backends


def _data(n, d, seed=0):
    return np.random.default_rng(seed).random((n, d))


def _spikes(n, waves, lines, T, seed=0):
    return np.random.default_rng(seed).integers(0, T + 1, (n, waves, lines))


# model name -> (fitted models to save, a function that uses a loaded model)
def _sparsedream_models():
    X = _data(30, 9)
    common = dict(n_inputs=9, grid=(3, 4), k=2, lr=0.05, backend="numpy", seed=1)
    return [
        # a stencil lateral with a row scale, a trace, float32
        sdf.SparseDream(**common, trace=0.5, lateral=sdf.lateral.normalized_box(1, 0.5),
                        competition="mean_lateral").fit(X, epochs=1),
        # a learned CSR lateral from a matrix parameter, bounds, an init array, float64
        sdf.SparseDream(**common, lateral=np.full((12, 12), 0.01) - np.eye(12) * 0.01, learn_lateral=True,
                        w_max=1.0, clip_every=4, competition="normalized_lateral", init=np.full((12, 9), 0.15),
                        dtype="float64").fit(X, epochs=1),
    ]


def _sparsedream_use(m):
    X = _data(3, 9, 1)
    m.set_params(warm_start=True)
    m.fit(X, epochs=1)
    m.partial_fit(X[:1])
    m.transform(X[:2])


def _dreamcomp_models():
    X, y = _data(24, 9), np.arange(24) % 3
    return [sdf.DreamComp(n_inputs=9, n_neurons=6, n_classes=3, batch_size=8, backend="numpy", seed=1).fit(X, y),
            sdf.DreamComp(n_inputs=9, grid=(2, 3), n_classes=3, batch_size=8, init=np.full((6, 12), 0.5),
                          label_lr=0.01, dtype="float64", backend="numpy").fit(X, y)]


def _dreamcomp_use(m):
    X, y = _data(8, 9, 1), np.arange(8) % 3
    m.predict(X)
    m.score(X, y)
    m.fit(X, y)
    m.predict(X[:2])


def _krotov_models():
    X = _data(24, 9)
    return [sdf.KrotovHopfield(n_inputs=9, n_hidden=5, k=3, batch_size=8, backend="numpy", seed=1).fit(X),
            sdf.KrotovHopfield(n_inputs=9, n_hidden=5, k=2, batch_size=8, power=2.0, init=np.full((5, 9), 0.3),
                               dtype="float64", backend="numpy").fit(X)]


def _krotov_use(m):
    X = _data(8, 9, 1)
    m.transform(X)
    m.fit(X)
    m.transform(X[:2])


def _classifier_models():
    from sklearn.frozen import FrozenEstimator
    X, y = _data(24, 9), np.arange(24) % 3
    kh = sdf.KrotovHopfield(n_hidden=5, k=2, batch_size=8, backend="numpy", seed=1)
    # one file holds a model twice over (frozen features in the parameters, fitted ones in
    # the state): enough for the classifier's own keys, the features' are fuzzed as KrotovHopfield
    return [sdf.KrotovHopfieldClassifier(features=FrozenEstimator(kh.fit(X)), epochs=2, batch_size=8, n=3.0,
                                         init=np.full((3, 5), 0.1), dtype="float64").fit(X, y)]


def _classifier_use(m):
    X, y = _data(8, 9, 1), np.arange(8) % 3
    m.predict(X)
    m.decision_function(X)
    m.score(X, y)
    m.fit(X, y)
    m.predict(X[:2])


def _tnn_network_models():
    net = sdf.TNNNetwork(T=8, seed=5, backend="numpy")
    net.add_input("px").add_input("ctx", 2).add_column("a", 4, threshold=5, k=2, w_max=6)
    net.add_delay("d", "a", waves=2).add_column("b", 3, threshold=4, k=1, w_max=9)
    net.connect("px", "a", init=(1, 4), lines=slice(0, None, 2))
    net.connect("ctx", "a", init=np.array([[0, 1], [2, 3], [4, 5], [6, 0]]), learn=False)
    net.connect("a", "b", init=(0, 9), density=0.5, lines=[True, False, True, True]).connect("d", "b")
    return [net.fit(_spikes(4, 3, 10, 8)),
            sdf.TNNNetwork(T=6, dtype="uint8", backend="numpy", seed=2).add_input("px", 5).add_column(
                "c", 3, 4, 2, w_max=7).connect("px", "c").fit(_spikes(3, 2, 5, 6))]


def _tnn_network_use(net):
    S = _spikes(3, 2, net.n_features_in_, int(net.T), 1)
    net.set_params(warm_start=True)
    net.fit(S)
    net.partial_fit(S[:1])
    net.transform(S[:2])


def _tnn_column_models():
    return [sdf.TNNColumn(n_neurons=4, threshold=3, k=2, T=6, w_max=5, init=(0, 5), backend="numpy",
                          seed=1).fit(_spikes(5, 1, 6, 6)[:, 0]),
            sdf.TNNColumn(n_inputs=4, n_neurons=3, threshold=2, k=1, T=4, dtype="uint8", init=np.ones((3, 4)),
                          backend="numpy").fit(_spikes(4, 1, 4, 4)[:, 0])]


def _tnn_column_use(col):
    S = _spikes(3, 1, col.n_features_in_, int(col.T), 1)[:, 0]
    col.partial_fit(S)
    col.forward(S[:2])


MODELS = {"SparseDream": (_sparsedream_models, _sparsedream_use),
          "DreamComp": (_dreamcomp_models, _dreamcomp_use),
          "KrotovHopfield": (_krotov_models, _krotov_use),
          "KrotovHopfieldClassifier": (_classifier_models, _classifier_use),
          "TNNNetwork": (_tnn_network_models, _tnn_network_use),
          "TNNColumn": (_tnn_column_models, _tnn_column_use)}


# ------------------------------------------------------------------------ mutations
def _array_mutations(a: np.ndarray):
    """(name, new value) pairs for one stored array."""
    if a.ndim == 0 and a.dtype.kind == "U":
        s = str(a[()])
        return [("truncated", np.array(s[: len(s) // 2])), ("as int", np.array(7)), ("as NaN", np.array(np.nan))]
    out = [("flattened", a.reshape(-1)[:, None] if a.ndim <= 1 else a.reshape(-1)),
           ("as float16", a.astype(np.float16) if a.dtype.kind in "biuf" else np.zeros(3, np.float16)),
           ("as text", np.full(a.shape, "x"))]
    if a.ndim >= 1 and a.shape[0] > 0:
        out += [("truncated", a[:-1]), ("empty", a[:0])]
    if a.dtype.kind == "f":
        out.append(("as other float", a.astype(np.float32 if a.dtype == np.float64 else np.float64)))
        for v in (np.nan, np.inf, 1e30):
            if a.size:
                b = a.copy()
                b.reshape(-1)[b.size // 2] = v
                out.append((f"entry {v}", b))
    if a.dtype.kind in "iu":
        out += [("as other int", a.astype(np.int32 if a.dtype != np.int32 else np.int64)),
                ("as float", a.astype(np.float64))]
        if a.size:
            for v, pos in ((-1, 0), (-1, a.size // 2), (2**31 - 1, a.size // 2), (2**31 - 1, a.size - 1),
                           (2**32 + 1, 0), (-(2**62), a.size - 1)):
                b = a.astype(np.int64)
                b.reshape(-1)[pos] = v
                out.append((f"entry[{pos}] {v}", b))
        if a.size > 1:
            out.append(("reversed", a[::-1].copy()))
    return out


_BAD_JSON = [-1, 2**70, 1.5, float("nan"), "x", None, {}]


def _json_mutations(doc, prefix="", depth=0):
    """(name, mutated copy) pairs: every field (three levels deep) set to each bad value, or removed."""
    out = []
    if not isinstance(doc, dict) or depth > 2:
        return out
    for key, value in doc.items():
        for bad in _BAD_JSON:
            new = dict(doc)
            new[key] = bad
            out.append((f"{prefix}{key}={json.dumps(bad)[:20]}", new))
        new = dict(doc)
        del new[key]
        out.append((f"{prefix}{key} removed", new))
        for name, sub in _json_mutations(value, f"{prefix}{key}.", depth + 1):
            new = dict(doc)
            new[key] = sub
            out.append((name, new))
    return out


def mutations(path):
    """Every damaged version of the checkpoint at ``path``: (name, dict of arrays)."""
    with np.load(path) as z:
        good = {k: z[k] for k in z.files}
    for key, a in good.items():
        d = dict(good)
        del d[key]
        yield f"{key} missing", d
        for name, b in _array_mutations(a):
            yield f"{key} {name}", dict(good, **{key: b})
        if a.ndim == 0 and a.dtype.kind == "U":
            try:
                doc = json.loads(str(a[()]))
            except ValueError:
                continue
            for name, new in _json_mutations(doc):
                yield f"{key}: {name}", dict(good, **{key: np.array(json.dumps(new))})


# ------------------------------------------------------------------------------ run
def main(model_name, folder, backends):
    make, use = MODELS[model_name]
    results = {"ok": [], "refused": [], "diverged": [], "wrong": []}
    cases = []
    for i, model in enumerate(make()):
        good = model.save(os.path.join(folder, f"{model_name}_{i}.npz"))
        cases.append((f"{i}/undamaged", good))
        for j, (name, arrays) in enumerate(mutations(good)):
            path = os.path.join(folder, f"{model_name}_{i}_{j}.npz")
            np.savez(path, **arrays)
            cases.append((f"{i}/{name}", path))
    for backend in backends:
        ctx = _backends.cuda_emulator() if backend == "cuda" and not _backends.available("cuda") \
            else contextlib.nullcontext()
        with ctx:
            for name, path in cases:
                case = f"{backend}/{name}"
                print("CASE", case, flush=True)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        use(sdf.load(path, backend=backend))
                    results["ok"].append(case)
                except (ValueError, TypeError):
                    if name.endswith("/undamaged"):
                        raise
                    results["refused"].append(case)
                except sdf.DivergenceError:
                    # a valid but huge parameter (lr=1e19) trains to the documented error:
                    # the update of a step is not finite, the model stops before it
                    results["diverged"].append(case)
                except Exception as exc:  # noqa: BLE001 - the point is to catch what should not be
                    results["wrong"].append(f"{case}: {type(exc).__name__}: {str(exc)[:200]}")
    print("RESULT", json.dumps(results), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
