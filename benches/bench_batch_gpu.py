"""DreamComp and Krotov-Hopfield on the GPU: seconds per 60,000-sample epoch (issue 6).

    python3 benches/bench_batch_gpu.py --out OUT               # the issue's sizes (a GPU)
    python3 benches/bench_batch_gpu.py --out OUT --small --emulator   # smoke run on the CPU emulator

For each case, in one run and on the same data (MNIST-shaped random values in [0, 1]: the
speed of these rules does not depend on the pixels) and the same minibatch order:

``notebook-cupy``
    the notebooks' own loops (``bench_batch_rules.py``, line for line) with ``xp = cupy``:
    what a user gets by swapping the import; float64 as the notebooks; one epoch per timing
    after a warm-up epoch.
``cuda``
    the library's backend (``sparsedream_fast.{dreamcomp,krotov}._cuda.fit``) in float32
    and float64, with cuBLAS or the module's own GEMM kernel, with and without CUDA graphs:
    ``--epochs`` epochs per call (the host-to-device copies of the data included, as a
    user's ``fit`` pays them), reported per epoch, and the marginal epoch
    ``(t(E) - t(1)) / (E - 1)``.
``floor``
    the minibatch products alone, as cuBLAS runs them through CuPy (``cupy.matmul`` of the
    same shapes, ``n // B`` of them), in each dtype: how far each run is from the cost of
    its matrix products at this GPU's measured rate.

Before timing, each cuda variant is checked against the numpy reference on two batches
(the tolerances of tests/test_batch_backends.py). Results: ``OUT/batch_gpu.json`` and a
Markdown table ``OUT/batch_gpu.md`` with the ratios to ``notebook-cupy``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import nullcontext

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
try:
    import sparsedream_fast as sdf  # noqa: F401,E402
except ImportError:
    sys.path.insert(0, os.path.dirname(HERE))
    import sparsedream_fast as sdf  # noqa: F401,E402

from bench_batch_rules import notebook_dreamcomp_epoch, notebook_krotov_epoch  # noqa: E402
from sparsedream_fast import _backends  # noqa: E402
from sparsedream_fast.bench import cupy_or_none, machine_info  # noqa: E402
from sparsedream_fast.dreamcomp import _cuda as dcc  # noqa: E402
from sparsedream_fast.dreamcomp import reference as dcr  # noqa: E402
from sparsedream_fast.krotov import _cuda as khc  # noqa: E402
from sparsedream_fast.krotov import reference as khr  # noqa: E402

D, C = 784, 10
#: (rule, name, size, B): DreamComp at seed 002's sizes, Krotov-Hopfield at the paper's
ISSUE_CASES = [("dreamcomp", "N1600-B500", 1600, 500), ("dreamcomp", "N6400-B500", 6400, 500),
               ("krotov", "hid2000-p3-k7-B100", 2000, 100)]
SMALL_CASES = [("dreamcomp", "N64-B50", 64, 50), ("krotov", "hid48-p3-k7-B20", 48, 20)]
#: cuda variants: (dtype, gemm, graphs)
VARIANTS = [("float32", "auto", True), ("float32", "kernel", True), ("float32", "auto", False),
            ("float64", "auto", True)]


def _tol(dtype):
    return dict(rtol=1e-9, atol=1e-12) if dtype == "float64" else dict(rtol=1e-4, atol=1e-6)


def _timed(fn, sync=lambda: None):
    sync()
    t = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t


def _case_data(n, rule, size, B, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, D))
    perms = [rng.permutation(n) for _ in range(64)]
    if rule == "dreamcomp":
        y = rng.integers(0, C, n)
        W0 = rng.uniform(0, 1, (size, D + C))
        return dict(X=X, y=y, V=dcr.extend(X, y, C, np.float64), W0=W0, perms=perms)
    return dict(X=X, W0=rng.normal(0, 1, (size, D)), perms=perms)


def _batches(perms, n, B, E):
    nb = n // B
    return np.stack([p[: nb * B].reshape(nb, B) for p in perms[:E]]).astype(np.int64)


def _lib_fit(rule, d, dtype):
    """(fit with info, reference fit, library fit) of the case in dtype, each on given batches."""
    if rule == "dreamcomp":
        zeta, eta = dcr.synapse_vectors(D, C, 10.0, 0.008, 0.1, dtype)
        V = d["V"].astype(dtype)
        W0 = d["W0"].astype(dtype)
        return (lambda b: dcc._fit_info(W0.copy(), V, b, zeta, eta)), \
               (lambda b: _ref_dc(W0, V, b, zeta, eta)), (lambda b: _get_dc(W0, V, b, zeta, eta))
    X = d["X"].astype(dtype)
    W0 = d["W0"].astype(dtype)
    args = (3.0, 7, 0.4, 0.02, 1e-30)
    return (lambda b: khc._fit_info(W0.copy(), X, b, *args)), \
           (lambda b: _ref_kh(W0, X, b, args)), (lambda b: _get_kh(W0, X, b, args))


def _ref_dc(W0, V, b, zeta, eta):
    W = W0.copy()
    dcr.fit(W, V, b, zeta, eta)
    return W


def _get_dc(W0, V, b, zeta, eta):
    W = W0.copy()
    dcc.fit(W, V, b, zeta, eta)
    return W


def _ref_kh(W0, X, b, args):
    W = W0.copy()
    khr.fit(W, X, b, *args)
    return W


def _get_kh(W0, X, b, args):
    W = W0.copy()
    khc.fit(W, X, b, *args)
    return W


def _notebook(rule, d, B, cp, n):
    """Seconds of one notebook epoch on cupy (float64), after a warm-up epoch."""
    if rule == "dreamcomp":
        V = cp.asarray(d["V"])
        recon = cp.ones(D + C)
        recon[-C:] = 10.0
        xi = cp.full(D + C, 0.008)
        xi[-C:] = 0.1
        w = cp.asarray(d["W0"])

        def epoch(p):
            notebook_dreamcomp_epoch(w, V, cp.asarray(p), n, B, recon, xi, xp=cp)
    else:
        X = cp.asarray(d["X"])
        w = cp.asarray(d["W0"])

        def epoch(p):
            notebook_krotov_epoch(w, X, cp.asarray(p), B, 0.02, 3.0, 7, 0.4, 1e-30, xp=cp)
    sync = cp.cuda.Device().synchronize
    _timed(lambda: epoch(d["perms"][0]), sync)
    return [_timed(lambda: epoch(p), sync) for p in d["perms"][1:4]]


def _floor(rule, size, B, n, dtype, cp):
    """Seconds of the epoch's n // B minibatch products on cuBLAS through CuPy."""
    K = D + C if rule == "dreamcomp" else D
    a = cp.random.random((B, K)).astype(dtype)
    w = cp.random.random((size, K)).astype(dtype)
    out = cp.empty((B, size), dtype)
    sync = cp.cuda.Device().synchronize

    def run():
        for _ in range(n // B):
            cp.matmul(a, w.T, out=out)
    _timed(run, sync)
    return min(_timed(run, sync) for _ in range(3))


def run_case(rule, name, size, B, n, epochs, repeats, cp):
    d = _case_data(n, rule, size, B)
    row = dict(rule=rule, case=name, size=size, B=B, n=n, epochs_per_call=epochs, results=[])
    if cp is not None:
        t = _notebook(rule, d, B, cp, n)
        row["results"].append(dict(impl="notebook-cupy", dtype="float64", s_per_epoch=float(np.median(t)),
                                   timings=t))
        for dt in ("float32", "float64"):
            row["results"].append(dict(impl="floor (cupy matmul)", dtype=dt, s_per_epoch=_floor(rule, size, B, n, dt, cp)))
    mods = (dcc,) if rule == "dreamcomp" else (khc,)
    for dtype, gemm, graphs in VARIANTS:
        for m in mods:
            m.GEMM, m.GRAPHS = gemm, graphs
        fit_info, ref, get = _lib_fit(rule, d, dtype)
        check = _batches(d["perms"], n, B, 1)[:, :2]
        np.testing.assert_allclose(get(check), ref(check), **_tol(dtype))
        bE = _batches(d["perms"], n, B, epochs)
        b1 = bE[:1]
        fit_info(b1)  # warm-up: cuBLAS handle, module load
        tE, t1, info = [], [], None
        for _ in range(repeats):
            t = time.perf_counter()
            info = fit_info(bE)
            tE.append(time.perf_counter() - t)
            t1.append(_timed(lambda: fit_info(b1)))
        per_epoch = float(np.median(tE)) / epochs
        marginal = (float(np.median(tE)) - float(np.median(t1))) / (epochs - 1) if epochs > 1 else None
        row["results"].append(dict(impl=f"cuda {info['gemm']}{' graph' if info['graph'] else ''}", dtype=dtype,
                                   asked=dict(gemm=gemm, graphs=graphs), s_per_epoch=per_epoch,
                                   s_marginal_epoch=marginal, timings_E=tE, timings_1=t1))
    for m in mods:
        m.GEMM, m.GRAPHS = "auto", True
    base = next((r["s_per_epoch"] for r in row["results"] if r["impl"] == "notebook-cupy"), None)
    floors = {r["dtype"]: r["s_per_epoch"] for r in row["results"] if r["impl"].startswith("floor")}
    for r in row["results"]:
        if base and not r["impl"].startswith("floor"):
            r["speedup_vs_notebook_cupy"] = base / r["s_per_epoch"]
        if r["impl"].startswith("cuda") and r["dtype"] in floors:
            r["times_floor"] = r["s_per_epoch"] / floors[r["dtype"]]
    return row


def table(rows) -> str:
    out = ["| rule | case | impl | dtype | s / epoch | marginal s / epoch | vs notebook-cupy | x floor |",
           "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for r in row["results"]:
            f = lambda k, fmt: (fmt.format(r[k]) if r.get(k) is not None else "")  # noqa: E731
            out.append(f"| {row['rule']} | {row['case']} | {r['impl']} | {r['dtype']} | {f('s_per_epoch', '{:.4f}')} "
                       f"| {f('s_marginal_epoch', '{:.4f}')} | {f('speedup_vs_notebook_cupy', '{:.1f}x')} "
                       f"| {f('times_floor', '{:.2f}')} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--small", action="store_true", help="tiny sizes (a smoke run)")
    ap.add_argument("--emulator", action="store_true", help="run backend cuda on the CPU emulator (tests only)")
    ap.add_argument("--epochs", type=int, default=10, help="epochs per library call (the notebooks' 10)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=None, help="samples per epoch (default 60,000; 200 with --small)")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    n = a.n or (200 if a.small else 60_000)
    ctx = _backends.cuda_emulator() if a.emulator else nullcontext()
    with ctx:
        if not _backends.available("cuda"):
            print("backend cuda is not available:", _backends.backends()["cuda"].reason)
            return 2
        cuda = _backends.cuda_module()
        cp = None if a.emulator else cupy_or_none()
        info = dict(machine=machine_info(), gpu=cuda.device_name(0), emulated=bool(cuda.emulated),
                    cupy=getattr(cp, "__version__", None), when=time.strftime("%Y-%m-%d %H:%M:%S"),
                    data="random MNIST-shaped values in [0, 1] (speed does not depend on the pixels)")
        rows = []
        for rule, name, size, B in (SMALL_CASES if a.small else ISSUE_CASES):
            print(f"== {rule} {name}", flush=True)
            rows.append(run_case(rule, name, size, B, n, a.epochs, a.repeats, cp))
    md = table(rows)
    print(md)
    with open(os.path.join(a.out, "batch_gpu.json"), "w") as f:
        json.dump(dict(info=info, rows=rows), f, indent=1)
    with open(os.path.join(a.out, "batch_gpu.md"), "w") as f:
        f.write(f"{info['gpu']}, {info['when']}\n\n{md}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
