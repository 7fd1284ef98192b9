"""Small fits of every CUDA kernel, each checked against the numpy reference.

    python3 tools/cuda_fits.py [--kernel rule_a|dreamcomp|krotov|tnn|all] [--emulator]

Made to run under ``compute-sanitizer`` (``tools/device_check.sh`` runs it there with
``--tool memcheck`` and ``--tool racecheck``, one kernel per process), so the sizes are small:
a sanitizer makes every kernel tens to thousands of times slower. Each fit goes through the
public API with ``backend="cuda"`` and covers the kernel's code paths:

``rule_a``
    seed 001's settings (box lateral, drive output), the learned normalized lateral with
    weight bounds, and k larger than a block's share without a lateral; float32 and float64;
    then inference (``transform``, ``winners``).
``dreamcomp``, ``krotov``
    cuBLAS and the module's own GEMM, with and without CUDA graphs (two epochs, so the
    second is a replay), float32 (screened TF32 winners and plain) and float64.
``tnn``
    the ``best`` preset (slices and delays of the input) and the ``recurrent`` preset (a
    column's own spikes one wave later): training and inference; integer weights, compared
    for equality.

Every result is compared with the numpy reference on the same inputs (float64: rtol 1e-9;
float32: rtol 1e-4, atol 1e-6, the tests' tolerances; TNN: equal). Prints one line per fit
and exits 1 when any differs. ``--emulator`` runs the CUDA kernels on the CPU emulator (a
rehearsal; the figures mean nothing there).
"""
from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext

import numpy as np

import sparsedream_fast as sdf
from sparsedream_fast import _backends

KERNELS = ("rule_a", "dreamcomp", "krotov", "tnn")


def _tol(dtype):
    return dict(rtol=1e-9, atol=1e-12) if np.dtype(dtype) == np.float64 else dict(rtol=1e-4, atol=1e-6)


def _close(got, want, dtype) -> str | None:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return f"shape {got.shape} != {want.shape}"
    if not np.all(np.isfinite(got)):
        return "non-finite values"
    t = _tol(dtype)
    err = np.max(np.abs(got - want) / (t["atol"] + t["rtol"] * np.abs(want)), initial=0.0)
    return None if err <= 1 else f"off by {err:.1f}x the tolerance (rtol {t['rtol']:g})"


def rule_a_fits():
    rng = np.random.default_rng(0)
    X = rng.random((40, 64))
    cases = {
        "seed001": dict(grid=(8, 9), k=5, lr=0.1, competition="lateral", output="drive",
                        lateral=sdf.lateral.box(2, 0.1), error_clip=1.0, init=(0.15, 0.16)),
        "learned_bounds": dict(grid=(5, 7), k=4, lr=0.01, competition="normalized_lateral", output="competition",
                               lateral=sdf.lateral.random(2, 0.0, 1.0), learn_lateral=True, w_max=0.5,
                               clip_every=6, init=(0.0, 0.5), error_clip=None),
        "k_large_no_lateral": dict(grid=(10, 10), k=20, lr=0.005, competition="drive", lateral=None),
    }
    for name, kw in cases.items():
        for dtype in ("float32", "float64"):
            def make(backend, dtype=dtype, kw=kw):
                return sdf.SparseDream(n_inputs=64, dtype=dtype, seed=3, backend=backend, **kw)
            fast = make("cuda").fit(X[:30], epochs=1, shuffle=False)
            ref = make("numpy").fit(X[:30], epochs=1, shuffle=False)
            bad = _close(fast.weights_, ref.weights_, dtype)
            if bad is None:
                w, r = fast.winners(X[30:]), ref.winners(X[30:])
                if dtype == "float32":  # near-equal drives may swap places in float32
                    w, r = np.sort(w, axis=1), np.sort(r, axis=1)
                if not np.array_equal(w, r):
                    bad = "winners differ"
            if bad is None:
                bad = _close(fast.transform(X[30:]), ref.transform(X[30:]), dtype)
            yield f"rule_a {name} {dtype}", bad


def _batch_modules():
    from sparsedream_fast.dreamcomp import _cuda as dcc
    from sparsedream_fast.krotov import _cuda as khc
    return dcc, khc


def _variants(rule):
    # (gemm, graphs, screen); screen matters for DreamComp's float32 only
    out = [("auto", True, True), ("kernel", True, True), ("auto", False, True)]
    if rule == "dreamcomp":
        out.append(("auto", True, False))
    return out


def batch_fits(rule):
    dcc, khc = _batch_modules()
    mod = dcc if rule == "dreamcomp" else khc
    rng = np.random.default_rng(1)
    X, y = rng.random((240, 50)), rng.integers(0, 4, 240)
    saved = (mod.GEMM, mod.GRAPHS, getattr(mod, "SCREEN", None))
    try:
        for gemm, graphs, screen in _variants(rule):
            for dtype in ("float32", "float64"):
                if not screen and dtype == "float64":
                    continue
                mod.GEMM, mod.GRAPHS = gemm, graphs
                if hasattr(mod, "SCREEN"):
                    mod.SCREEN = screen
                if rule == "dreamcomp":
                    kw = dict(n_inputs=50, n_neurons=70, n_classes=4, lr=0.01, label_lr=0.05, batch_size=40,
                              dtype=dtype, seed=4)
                    fast = sdf.DreamComp(backend="cuda", **kw).fit(X, y, epochs=2)
                    ref = sdf.DreamComp(backend="numpy", **kw).fit(X, y, epochs=2)
                    bad = _close(fast.weights_, ref.weights_, dtype)
                    if bad is None and not np.array_equal(fast.predict(X), ref.predict(X)):
                        bad = "predictions differ"
                else:
                    kw = dict(n_inputs=50, n_hidden=48, k=3, batch_size=40, dtype=dtype, seed=4)
                    fast = sdf.KrotovHopfield(backend="cuda", **kw).fit(X, epochs=2)
                    ref = sdf.KrotovHopfield(backend="numpy", **kw).fit(X, epochs=2)
                    bad = _close(fast.weights_, ref.weights_, dtype)
                tag = f"gemm={gemm} graphs={graphs}" + ("" if screen else " screen=False")
                yield f"{rule} {tag} {dtype}", bad
    finally:
        mod.GEMM, mod.GRAPHS = saved[0], saved[1]
        if saved[2] is not None:
            mod.SCREEN = saved[2]


def tnn_fits():
    from sparsedream_fast.data import generated_digits
    from sparsedream_fast.tnn import image_rows, presets
    X = generated_digits(12, seed=0)[0]
    S = image_rows(X.reshape(len(X), -1))
    for name in ("best", "recurrent"):
        fast = presets.PRESETS[name](seed=0, backend="cuda").fit(S[:4], shuffle=False)
        ref = presets.PRESETS[name](seed=0, backend="numpy").fit(S[:4], shuffle=False)
        bad = None
        for col, w in ref.weights_.items():
            if not np.array_equal(fast.weights_[col], w):
                bad = f"weights of column {col!r} differ"
                break
        if bad is None and not np.array_equal(fast.transform(S[4:]), ref.transform(S[4:])):
            bad = "inference features differ"
        yield f"tnn {name} train+infer", bad


def fits(kernel):
    if kernel == "rule_a":
        return rule_a_fits()
    if kernel in ("dreamcomp", "krotov"):
        return batch_fits(kernel)
    return tnn_fits()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", default="all", choices=KERNELS + ("all",))
    ap.add_argument("--emulator", action="store_true", help="the CPU emulator of the kernels (a rehearsal)")
    a = ap.parse_args(argv)
    failed = 0
    with _backends.cuda_emulator() if a.emulator else nullcontext():
        if not _backends.available("cuda"):
            print("backend cuda is not available:", _backends.backends()["cuda"].reason)
            return 2
        mod = _backends.cuda_module()
        print(f"cuda module {mod.__name__} on {mod.device_name(0)}" + (" (EMULATED)" if mod.emulated else ""))
        for kernel in (KERNELS if a.kernel == "all" else (a.kernel,)):
            t0 = time.perf_counter()
            try:
                for label, bad in fits(kernel):
                    failed += bad is not None
                    print(f"{'FAIL' if bad else 'ok  '} {label}" + (f": {bad}" if bad else ""), flush=True)
            except Exception as exc:  # one kernel's crash must not hide the others
                failed += 1
                print(f"FAIL {kernel}: {type(exc).__name__}: {exc}", flush=True)
            print(f"     {kernel}: {time.perf_counter() - t0:.1f} s", flush=True)
    print(f"cuda_fits: {'FAILED ' + str(failed) if failed else 'all ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
