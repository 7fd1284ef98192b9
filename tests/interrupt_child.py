"""Child process of tests/test_interrupt.py: a long fit that the parent interrupts.

``python interrupt_child.py RULE BACKEND MODE`` trains a model of rule RULE (A, B, C, D)
on BACKEND. MODE ``plain`` runs one long fit, ``callback`` one whose callback is called
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


RULES = {"A": _rule_a}


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
