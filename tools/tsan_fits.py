"""The threaded fits of the C++ backend, for ThreadSanitizer (run by ``tools/sanitize.sh tsan``).

Every rule's fit on a Team of threads (``csrc/sparsedream/team.hpp``) and the two OpenMP
inference loops (rule A's ``infer``, TNN inference), each with 1 and 3 or 4 threads; the
results must agree bit for bit across thread counts (the Team's promise), so the script
also fails on a race that changes numbers without TSan seeing it. Sizes are chosen so that
the automatic thread choice uses every thread (rule A: at least 1 MiB of weights and 64
neurons per thread), and small enough for TSan (5-15x slower).

Run alone (without TSan) it is a quick check of the same promise:
``python tools/tsan_fits.py``.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

import sparsedream_fast as sdf
from sparsedream_fast.dreamcomp import _cpp as dc_cpp
from sparsedream_fast.krotov import _cpp as kh_cpp
from sparsedream_fast.tnn import _cpp as tnn_cpp

THREADS = int(os.environ.get("OMP_NUM_THREADS", "4"))


def same(a, b, what):
    if not np.array_equal(np.asarray(a), np.asarray(b)):
        sys.exit(f"tsan_fits: {what} differs between 1 and {THREADS} threads")


def rule_a(dtype, lateral, **kw):
    """Rule A on 1024 neurons x 256 inputs (1 MiB of float32 weights): the Team's phases."""
    rng = np.random.default_rng(0)
    X = rng.random((300, 256))
    out = []
    for nt in (1, THREADS):
        with threadpool_limits(nt, user_api="openmp"):  # rule A takes OpenMP's thread count
            m = sdf.SparseDream(n_inputs=256, grid=(32, 32), k=5, lr=0.05, lateral=lateral, dtype=dtype,
                                backend="cpp", seed=1, **kw)
            m.fit(X, epochs=1)
            out.append((m.weights_.copy(), m.transform(X[:64])))  # transform: infer's parallel loop
    same(out[0][0], out[1][0], f"rule A weights ({dtype}, {kw})")
    same(out[0][1], out[1][1], f"rule A transform ({dtype}, {kw})")


def batch_rules(dtype):
    rng = np.random.default_rng(2)
    X = rng.random((400, 196))
    y = rng.integers(0, 10, 400)
    res = []
    for nt in (1, THREADS):
        dc_cpp.THREADS = kh_cpp.THREADS = nt
        dc = sdf.DreamComp(n_inputs=196, n_neurons=256, n_classes=10, batch_size=100, dtype=dtype, backend="cpp",
                           seed=3).fit(X, y, epochs=2)
        kh = sdf.KrotovHopfield(n_inputs=196, n_hidden=256, k=3, batch_size=100, dtype=dtype, backend="cpp",
                                seed=3).fit(X, epochs=2)
        res.append((dc.weights_.copy(), kh.weights_.copy(), kh.transform(X[:50])))
    dc_cpp.THREADS = kh_cpp.THREADS = None
    same(res[0][0], res[1][0], f"DreamComp weights ({dtype})")
    same(res[0][1], res[1][1], f"Krotov-Hopfield weights ({dtype})")
    same(res[0][2], res[1][2], f"Krotov-Hopfield transform ({dtype})")


def tnn():
    from sparsedream_fast.data import generated_digits
    from sparsedream_fast.tnn import image_rows, presets
    imgs, _ = generated_digits(24, size=28, seed=0)
    S = image_rows(imgs.reshape(len(imgs), -1))
    res = []
    for nt in (1, THREADS):
        tnn_cpp.THREADS = nt
        net = presets.best_network(seed=0, backend="cpp")
        net.set_params(progress=False)
        net.fit(S[:16])
        res.append(({k: v.copy() for k, v in net.weights_.items()}, net.transform(S[16:])))
    tnn_cpp.THREADS = None
    for name in res[0][0]:
        same(res[0][0][name], res[1][0][name], f"TNN weights of {name}")
    same(res[0][1], res[1][1], "TNN transform")


def main():
    t0 = time.perf_counter()
    for dtype in ("float32", "float64"):
        rule_a(dtype, sdf.lateral.box(2, 0.1))
        rule_a(dtype, sdf.lateral.box(2, 0.1), trace=0.5, w_max=0.5, clip_every=7)
        rule_a(dtype, sdf.lateral.random(2), learn_lateral=True, competition="normalized_lateral")
        rule_a(dtype, None, competition="drive")
        batch_rules(dtype)
    tnn()
    print(f"tsan_fits: rule A, DreamComp, Krotov-Hopfield, TNN on 1 and {THREADS} threads agree "
          f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
