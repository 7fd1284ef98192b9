"""Child process of tests/test_interrupt.py: a long fit that the parent interrupts.

``python interrupt_child.py RULE BACKEND MODE`` trains a model of rule RULE (A; B; C, or
Cclf: KrotovHopfieldClassifier's feature fit; D: a TNNNetwork, Dcol: a TNNColumn) on BACKEND. MODE ``plain`` runs one long fit, ``callback`` one whose callback is called
often (chunked), ``handler`` one under a user's SIGINT handler that returns the first
time (training goes on) and raises KeyboardInterrupt the second time (the parent sends
two signals). The
child prints ``READY`` just before the long fit starts (after a short warm-up fit that
compiles numba's kernels), the parent sends SIGINT, and the child then checks its own
state against a fresh fit of exactly as many steps (batches, waves) as the model says it
completed, and prints one JSON line: ``interrupted``, ``count`` (the model's counter),
``total``, ``equal`` (bit for bit), ``seconds`` from the fit's start to its end.
"""
from __future__ import annotations

import contextlib
import json
import signal
import sys
import time

import numpy as np

import sparsedream_fast as sdf
from sparsedream_fast import _backends
from testing import fresh_batch_weights


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


# ------------------------------------------------------------------------ rule A
def _rule_a(backend):
    big = backend in ("cpp", "numba")
    grid, D = ((40, 40), 256) if big else ((12, 12), 64)
    rng = np.random.default_rng(1)
    X = rng.random((2000, D)).astype(np.float32)
    X[rng.random(X.shape) < 0.8] = 0  # mostly zeros, as the seeds' frames: the blocked drive runs
    params = dict(n_inputs=D, grid=grid, k=5, lr=0.02, trace=0.5, w_max=0.6, clip_every=50, backend=backend,
                  seed=3)
    epochs = 1000 if big else 50

    def warm():
        sdf.SparseDream(**params).fit(X[:50], epochs=1)

    def make():
        return sdf.SparseDream(**params)

    def run(m, callback=None):
        m.fit(X, epochs=epochs, callback=callback, callback_every=None if callback is None else 97)

    def count(m):
        return m.n_steps_

    def fresh(n):
        """SparseDream(**params) trained for exactly n steps of the same run (public API):
        e whole epochs, then i steps of the next epoch with warm_start (the orders are the
        generator's next draws, as in the long fit)."""
        e, i = divmod(n, X.shape[0])
        m = sdf.SparseDream(**params)
        if e:
            m.fit(X, epochs=e)
        if i:
            m.set_params(warm_start=True)
            m.fit(X, epochs=1, steps_per_epoch=i)
        return m

    def state(m):
        return [m.weights_, m.trace_, m.n_steps_]

    return dict(warm=warm, make=make, run=run, count=count, fresh=fresh, state=state,
                total=epochs * X.shape[0])


# ------------------------------------------------------------------ rules B and C
# A fresh fit of exactly n batches: testing.fresh_batch_weights (the fit's own setup run on
# the backend module for the first n batches of the same order).
def _batch_data(backend):
    small = backend == "cuda"  # the CUDA emulator runs kernels on the CPU, slowly
    n, D = (400, 32) if small else (2000, 256)
    rng = np.random.default_rng(1)
    return rng.random((n, D)).astype(np.float32), rng.integers(0, 10, n), small


_EPOCHS = {"cpp": 600, "numba": 300, "numpy": 200, "cuda": 400}  # setup (the batch order) stays under 0.2 s


def _batch_rule(rule, backend):
    X, y, small = _batch_data(backend)
    size = dict(n_neurons=40 if small else 400) if rule == "B" else dict(n_hidden=40 if small else 400, k=3)
    params = dict(size, batch_size=20 if small else 50, backend=backend, seed=3)
    cls = sdf.DreamComp if rule == "B" else sdf.KrotovHopfield
    epochs = _EPOCHS[backend]

    def fit(m, n, e):
        return m.fit(X[:n], y[:n], epochs=e) if rule == "B" else m.fit(X[:n], epochs=e)

    return dict(warm=lambda: fit(cls(**params), 100, 1), make=lambda: cls(**params),
                run=lambda m, callback=None: fit(m, len(X), epochs), count=lambda m: m.n_batches_,
                fresh=lambda n: fresh_batch_weights(rule, params, X, y, epochs, n),
                state=lambda m: [m.weights_] if isinstance(m, cls) else [m],
                total=epochs * (X.shape[0] // params["batch_size"]))


def _rule_c_classifier(backend):
    """The classifier's unsupervised feature fit is interrupted: KeyboardInterrupt, and the
    classifier stays unfitted (count 1 of total 2 says only "stopped inside"). The feature
    fit is far longer than the test's timeout (heavy batches, so that drawing the batch
    order takes a fraction of a second): only a prompt stop ends it in time."""
    small = backend == "cuda"  # the emulator: 0.6 s a batch already at this size
    n, D, H = (400, 32, 40) if small else (2000, 784, 2000)
    rng = np.random.default_rng(1)
    X, y = rng.random((n, D)).astype(np.float32), rng.integers(0, 10, n)
    features = sdf.KrotovHopfield(n_hidden=H, k=3, batch_size=20 if small else 50, backend=backend, seed=3)
    epochs = {"cpp": 1500, "numba": 750, "numpy": 200, "cuda": 400}[backend]

    def make():
        return sdf.KrotovHopfieldClassifier(features=features, feature_epochs=epochs, epochs=1)

    return dict(warm=lambda: sdf.KrotovHopfield(**features.get_params()).fit(X[:100]), make=make,
                run=lambda m, callback=None: m.fit(X, y), count=lambda m: 1, fresh=lambda n: None,
                state=lambda m: [np.array(m is not None and (hasattr(m, "features_") or hasattr(m, "weights_")))],
                total=2)


# ------------------------------------------------------------------------ rule D
def _rule_d(backend, column=False):
    """One pass over many sequences (waves), longer than the test's timeout on every backend
    but numpy: a stop is only in time if it comes within the call."""
    small = backend == "cuda"
    S, n_waves, n_in = {"cpp": (100_000, 4, 64), "numpy": (2000, 4, 64), "cuda": (40_000, 3, 16)}[backend]
    X = np.random.default_rng(2).integers(0, 17, (S, n_waves, n_in), dtype=np.uint8)
    epochs = 1

    def make():
        net = sdf.TNNNetwork(T=16, backend=backend, seed=1)
        net.add_input("px", n_in).add_column("c", 20 if small else 100, threshold=40, k=5, w_max=16)
        return net.add_delay("d", "c").connect("px", "c", init=(0, 4)).connect("d", "c", init=(0, 2))

    def make_column():
        return sdf.TNNColumn(n_inputs=n_in, n_neurons=20 if small else 100, threshold=30, k=5, T=16,
                             backend=backend, seed=1)

    Xc = X.reshape(-1, n_in)  # the column learns single waves

    def run(m, callback=None):
        if column:
            m.fit(Xc, epochs=epochs)
        else:
            m.fit(X, epochs=epochs, shuffle=False)

    def fresh(nw):
        """A fresh model after exactly nw learning waves: whole passes over the data in
        order, then the first sequences (waves) of the next one (partial_fit presents them in
        order; the first call initialises the weights like fit)."""
        m = make_column() if column else make()
        data, per = (Xc, 1) if column else (X, n_waves)
        e, i = divmod(nw // per, len(data))
        for _ in range(e):
            m.partial_fit(data)
        if i:
            m.partial_fit(data[:i])
        return m

    def state(m):
        return [m.weights_, m.n_waves_learned_] if column else [m.weights_["c"], m.n_waves_learned_]

    per_fit = len(Xc) if column else S * n_waves
    return dict(warm=lambda: (make_column() if column else make()).fit(Xc[:4] if column else X[:2]),
                make=make_column if column else make, run=run, count=lambda m: m.n_waves_learned_, fresh=fresh,
                state=state, total=epochs * per_fit)


RULES = {"A": _rule_a, "B": lambda backend: _batch_rule("B", backend), "C": lambda backend: _batch_rule("C", backend),
         "Cclf": _rule_c_classifier, "D": _rule_d,
         "Dcol": lambda backend: _rule_d(backend, column=True)}


def main(rule, backend, mode):
    ctx = _backends.cuda_emulator() if backend == "cuda" and not _backends.available("cuda") else \
        contextlib.nullcontext()
    with ctx:
        case = RULES[rule](backend)
        case["warm"]()
        calls = []
        if mode == "handler":
            def handler(signum, frame):
                calls.append(signum)
                if len(calls) > 1:
                    raise KeyboardInterrupt
            signal.signal(signal.SIGINT, handler)
        callback = (lambda *a: None) if mode == "callback" else None
        m = case["make"]()
        interrupted = False
        print("READY", flush=True)
        t0 = time.perf_counter()
        try:
            case["run"](m, callback)
        except KeyboardInterrupt:
            interrupted = True
        seconds = time.perf_counter() - t0
        n = case["count"](m)
        out = dict(interrupted=interrupted, count=int(n), total=int(case["total"]), seconds=seconds,
                   handler_calls=len(calls))
        ref = case["fresh"](n)
        out["equal"] = all(_same(a, b) for a, b in zip(case["state"](m), case["state"](ref)))
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
