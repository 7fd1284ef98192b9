"""The library leaves no BLAS threads spinning after a fit (the mechanism behind a C++ fit
running slower in a process that had just used a threaded BLAS, issue 16).

OpenBLAS's worker threads busy-wait for a while (2^28 cycles by default, ~0.1 s) after
every threaded call before they sleep, and a limit set later (threadpoolctl) does not stop a
spin in progress. So the numpy backend of rule A runs its fit on one BLAS thread
(``SingleThreadedBlas`` in ``SparseDream._steps``), and nothing of the library's is left
spinning against the next fit. Measured here by CPU accounting (schedstat) of numpy's BLAS
workers in a fresh child process, not by timing: after the fit they stay asleep; after a
plain threaded ``W @ v`` loop of the same size (the control, which shows that the workers
exist and do spin on this machine) they use CPU.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CHILD = os.path.join(os.path.dirname(__file__), "blas_spin_child.py")


@pytest.mark.skipif(not os.path.exists("/proc/self/schedstat"), reason="needs Linux schedstat")
def test_numpy_backend_fit_leaves_no_blas_worker_spinning():
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT"):
        env.pop(var, None)
    p = subprocess.run([sys.executable, CHILD], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout.strip().splitlines()[-1])
    if r["workers"] == 0 or r["after_matmul"] < 0.004:
        pytest.skip(f"numpy's BLAS has no spinning worker threads here ({r})")
    assert r["after_fit"] < 0.002, r
