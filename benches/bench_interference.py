"""Does a C++ fit slow down once numpy's BLAS or Numba's threads have run in the same process?

    python benches/bench_interference.py [--grid 80] [--steps 3000] [--rounds 3]

In one process: the C++ fit (partial_fit of ``--steps`` tapestry frames from the same state,
two OpenMP threads) alone, right after a second of numpy ``W @ v`` on two BLAS threads,
right after Numba ``prange`` loops (which start Numba's OpenMP threads), after both, and
after half a second idle; then, as a control, a second process that runs the C++ fit only,
the same number of times. Each line gives steps/s, the process's CPU time against the wall
time of the fit, and the CPU time every thread of the process used during it, named by
where it came from (the thread that called, the OpenMP pool, OpenBLAS, Numba). A thread of
another library that uses CPU while the C++ fit runs is spinning against it.

The steps/s mean something only on an idle machine: with other processes on the cores, the
wall time follows their load (measured 3,500-15,600 steps/s at 80 x 80 on the loaded 2-core
VM, in any order of the lines, control included). The per-thread CPU times (schedstat,
nanoseconds) do not: on that VM (load 12) numpy's OpenBLAS worker used 12-16 ms of CPU
during a C++ fit of 3,000 steps started right after a second of ``W @ v``, and none during
the other lines (docs/design.md, "Threads").
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np


def _tids():
    return {int(t) for t in os.listdir("/proc/self/task")}


def _cpu(tid):
    """CPU seconds thread `tid` of this process has used (schedstat: nanoseconds; stat's
    clock ticks, 10 ms, are too coarse for a fit of a fraction of a second)."""
    try:
        with open(f"/proc/self/task/{tid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/self/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=int, default=80)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--control", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    import threading
    main_tid = threading.get_native_id()
    origin = {t: "caller" if t == main_tid else "OpenBLAS (numpy import)" for t in _tids()}
    import numba

    import sparsedream_fast as sdf
    from sparsedream_fast.data import digit_tapestry_frames
    for t in _tids():
        origin.setdefault(t, "OpenBLAS (scipy import)")
    F, _ = digit_tapestry_frames(a.steps + 40, seed=0)
    F = np.ascontiguousarray(F, dtype=np.float32)
    m = sdf.SparseDream(n_inputs=400, grid=(a.grid, a.grid), k=5, lr=0.1, backend="cpp", seed=0)
    m.fit(F[:20], epochs=1, shuffle=False)
    for t in _tids():
        origin.setdefault(t, "OpenMP pool (C++ fit)")
    W0, o0 = m._state.W.copy(), m._state.trace.copy()
    X = np.ascontiguousarray(F[20:20 + a.steps])
    A = np.random.default_rng(0).random((2000, 400)).astype(np.float32)

    @numba.njit(parallel=True)
    def par(x):
        s = 0.0
        for i in numba.prange(x.shape[0]):
            s += x[i] * 2.0
        return s

    def numpy_burst():
        t0 = time.time()
        while time.time() - t0 < 1.0:
            A @ X[0]

    def numba_burst():
        for _ in range(300):
            par(np.ones(100_000))
        for t in _tids():
            origin.setdefault(t, "Numba threading layer")

    def timed(label):
        m._state.W[...] = W0
        m._state.trace[...] = o0
        before = {t: _cpu(t) for t in _tids()}
        c0, t0 = time.process_time(), time.perf_counter()
        m.partial_fit(X)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        use = sorted(((_cpu(t) - before.get(t, 0.0), origin.get(t, "new thread")) for t in _tids()), reverse=True)
        threads = ", ".join(f"{name} {u:.4f} s" for u, name in use if u > 0.0005)
        print(f"{label:30s} {a.steps / wall:9,.0f} steps/s  CPU {cpu:.3f} s in {wall:.3f} s  | {threads}", flush=True)

    if a.control:
        for _ in range(a.rounds * 5 + 1):
            timed("control: C++ only")
        return 0
    print(f"{a.grid}x{a.grid}, {a.steps} steps per fit, load average {os.getloadavg()[0]:.2f}")
    timed("C++ alone (first)")
    for _ in range(a.rounds):
        timed("C++ alone")
        numpy_burst()
        timed("C++ right after numpy BLAS")
        numba_burst()
        timed("C++ right after Numba prange")
        numpy_burst()
        numba_burst()
        timed("C++ after both")
        time.sleep(0.5)
        timed("C++ after 0.5 s idle")
    sys.stdout.flush()
    subprocess.run([sys.executable, os.path.abspath(__file__), "--control", "--grid", str(a.grid),
                    "--steps", str(a.steps), "--rounds", str(a.rounds)])
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
