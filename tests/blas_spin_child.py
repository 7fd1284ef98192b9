"""Child of tests/test_threads.py: a fresh process trains a numpy-backend SparseDream (its
first BLAS use), then reports the CPU time numpy's OpenBLAS worker threads used in the 0.2 s
after the fit (schedstat, nanoseconds), and, as the control, the same after a plain threaded
``W @ v`` loop of the same size. One JSON line: ``after_fit``, ``after_matmul``, ``workers``."""
from __future__ import annotations

import json
import os
import threading
import time

import numpy as np

MAIN = threading.get_native_id()


def workers():
    return [int(t) for t in os.listdir("/proc/self/task") if int(t) != MAIN]


def cpu(tids):
    total = 0.0
    for t in tids:
        try:
            with open(f"/proc/self/task/{t}/schedstat") as f:
                total += int(f.read().split()[0]) / 1e9
        except OSError:
            pass
    return total


def idle_cpu(tids, seconds=0.2):
    c0 = cpu(tids)
    time.sleep(seconds)
    return cpu(tids) - c0


def main():
    blas = workers()  # numpy's OpenBLAS starts its workers at import
    import sparsedream_fast as sdf
    X = np.random.default_rng(0).random((200, 400)).astype(np.float32)
    m = sdf.SparseDream(n_inputs=400, grid=(80, 80), k=5, lr=0.05, backend="numpy", dtype="float32", seed=0)
    m.fit(X, epochs=1)
    after_fit = idle_cpu(blas)
    W = m.weights_.copy()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.3:
        W @ X[0]
    after_matmul = idle_cpu(blas)
    print(json.dumps(dict(after_fit=after_fit, after_matmul=after_matmul, workers=len(blas))))


if __name__ == "__main__":
    main()
