"""``sparsedream show``: pictures and measures of a saved checkpoint, of any model."""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from ._common import UsageError, check_backend, check_input_file, check_out_dir, check_tile_shape, int_at_least

__all__ = ["add_arguments", "run"]

EPILOG = """\
Examples
--------
  sparsedream show sparsedream_demo/model.npz                 # the demo's map, on its frames
  sparsedream show runs/map40/model.npz --out runs/map40/look --neuron 0 820 --region 10 30 10 30
  sparsedream show model.npz --data-file frames.npy --anim-frames 120
  sparsedream show model.npz --no-data                        # pictures of the weights only

Reads a checkpoint of any model (sdf.load): SparseDream, DreamComp, KrotovHopfield,
KrotovHopfieldClassifier, TNNNetwork, TNNColumn. It prints the model and its state and writes
into --out (default: a folder 'show' next to the checkpoint):

  SparseDream               weights.png, with a lateral lateral_N.png and lateral_tapestry_N.png
                            per --neuron; with data metrics.json, usage.png and activity.gif;
                            training.png when a metrics.json with a history sits next to the
                            checkpoint. Without data options, a model with D = 400 is measured
                            on the demo's tapestry frames (--data tapestry --seed 0).
  DreamComp                 weights.png (the input synapses), class_weights.png (label synapses)
  KrotovHopfield            weights.png (the hidden units)
  KrotovHopfieldClassifier  weights.png (the hidden units as read out), top_layer.png,
                            training.png (loss and validation accuracy per epoch)
  TNNNetwork, TNNColumn     weights_<column>.png for every column

The tiles of weights.png are square images when D is a square (--tile-shape H W otherwise;
without one each unit is drawn as a strip). Data options, --neuron and --region apply to
SparseDream maps only.
"""


def add_arguments(parser) -> None:
    """Options of ``sparsedream show``."""
    from .train import add_data_arguments
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("checkpoint", help="a model saved by save() / sparsedream train / demo / tnn (.npz)")
    parser.add_argument("--out", metavar="DIR", default=None, help="output folder (default: CHECKPOINT's folder/show)")
    add_data_arguments(parser)
    parser.add_argument("--seed", type=int, default=argparse.SUPPRESS, help="seed of the data (default: 0)")
    parser.add_argument("--no-data", action="store_true",
                        help="no measures, no animation: pictures of the weights only")
    parser.add_argument("--eval-frames", type=int_at_least(1), default=2000,
                        help="inputs measured (default: %(default)s)")
    parser.add_argument("--neuron", type=int_at_least(0), nargs="+", default=None, metavar="N",
                        help="neurons whose lateral row to draw (default: the centre one)")
    parser.add_argument("--region", type=int_at_least(0), nargs=4, default=None, metavar=("R0", "R1", "C0", "C1"),
                        help="also draw a close-up of grid rows R0..R1-1, columns C0..C1-1")
    parser.add_argument("--anim-frames", type=int_at_least(0), default=60,
                        help="frames of the animation, 0 for none (default: %(default)s)")
    parser.add_argument("--backend", default=None, choices=("auto", "numpy", "cpp", "numba", "cuda"),
                        help="backend to run the model on (default: the saved choice)")


def _fail(msg) -> int:
    print(f"sparsedream show: error: {msg}", file=sys.stderr)
    return 2


def _check_args(args) -> str:
    """Check what can be checked before the checkpoint is read; returns the output folder."""
    path = args.checkpoint
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path = args.checkpoint = path + ".npz"
    if not os.path.exists(path):
        raise UsageError(f"checkpoint not found: {path}")
    check_input_file(path, "checkpoint")
    if args.backend:
        check_backend(args.backend)
    if args.region is not None and (args.region[0] >= args.region[1] or args.region[2] >= args.region[3]):
        raise UsageError(f"--region {' '.join(map(str, args.region))}: needs R0 < R1 and C0 < C1")
    if "data_file" in vars(args):
        check_input_file(args.data_file, "--data-file", (".npy", ".npz"))
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(path)), "show")
    return check_out_dir(out)


def _check_against_model(args, cfg) -> None:
    """The options that depend on the model read: neurons, region, tile shape."""
    rows, cols = cfg.grid
    bad = [n for n in (args.neuron or []) if n >= cfg.n_neurons]
    if bad:
        raise UsageError(f"--neuron {bad[0]}: the model has {cfg.n_neurons} neurons (0 to {cfg.n_neurons - 1})")
    if args.region is not None and (args.region[1] > rows or args.region[3] > cols):
        raise UsageError(f"--region {' '.join(map(str, args.region))}: outside the {rows} x {cols} grid")
    check_tile_shape(getattr(args, "tile_shape", None), cfg.n_inputs)


def _one_line(exc) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def run(args) -> int:
    """Pictures and measures of a saved checkpoint of any model.

    Reads the file's format tag, loads the model (every key checked), prints its
    parameters and state and draws its weights (see the epilog for each model). A
    SparseDream map is also measured on data (reconstruction error, winner usage,
    quantization and topographic errors) and animated. A file that is not a readable
    checkpoint exits with status 2 and one line naming the problem.
    """
    import sparsedream_fast as sdf
    from ._common import best_backend
    out = _check_args(args)
    path = args.checkpoint
    try:
        meta = sdf.checkpoint.info(path)
        name = meta["model"]
        if name != "SparseDream":
            _check_map_options(args, name)
        # a map runs on the best backend here unless one is asked for; the other models keep
        # their saved choice ("auto" picks among the backends of their rule). Given at load:
        # set_params after it would start a TNN column afresh.
        backend = args.backend
        if name == "SparseDream":
            backend = best_backend(backend or meta["params"].get("backend") or "auto")
        model = sdf.load(path, backend=backend)
    except UsageError:
        raise
    except Exception as exc:  # a damaged or foreign file: say so plainly
        return _fail(f"cannot read {path} as a checkpoint: {_one_line(exc)}")
    if not _fitted(model):
        print(f"model     : {' '.join(repr(model).split())}")
        print("state     : not fitted (saved before its first fit): no weights to draw")
        return 0
    if name == "SparseDream":
        return _show_map(args, path, out, model)
    print(f"model     : {' '.join(repr(model).split())}")
    try:
        paths = _SHOW[name](model, out, getattr(args, "tile_shape", None))
    except ValueError as exc:
        return _fail(_one_line(exc))
    for key, p in paths.items():
        print(f"wrote {key:22s}: {p}")
    return 0


def _fitted(model) -> bool:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted
    try:
        check_is_fitted(model)
    except NotFittedError:
        return False
    return True


def _check_map_options(args, name) -> None:
    given = [o for o, k in (("--data", "data"), ("--data-file", "data_file"), ("--neuron", "neuron"),
                            ("--region", "region")) if vars(args).get(k) is not None]
    if given:
        raise UsageError(f"{given[0]} applies to SparseDream maps only; {args.checkpoint} holds a {name}")


def _square_grid(n: int) -> tuple:
    cols = max(1, int(np.ceil(np.sqrt(n))))
    return (int(np.ceil(n / cols)), cols)


def _tapestry(W, tile, title):
    """Tiles of the rows of W: images of ``tile`` (or square) shape, else one strip each."""
    from .. import plot
    W = np.asarray(W, dtype=np.float64)
    N, D = W.shape
    if tile is None and int(round(np.sqrt(D))) ** 2 == D:
        tile = (int(round(np.sqrt(D))),) * 2
    if tile is None:
        return plot.weight_tapestry(W, grid=(N, 1), tile_shape=(1, D), pad=0, title=title)
    check_tile_shape(tile, D)
    rows, cols = _square_grid(N)
    Wf = np.zeros((rows * cols, D))
    Wf[:N] = W
    return plot.weight_tapestry(Wf, grid=(rows, cols), tile_shape=tuple(tile), title=title)


def _save(fig, out, name) -> str:
    from .. import plot
    os.makedirs(out, exist_ok=True)
    return plot.save_figure(fig, os.path.join(out, name), dpi=100)


def _show_dreamcomp(m, out, tile) -> dict:
    from .. import plot
    D, C = m.n_inputs_, m.n_classes_
    print(f"state     : {m.weights_.shape[0]} neurons, D = {D}, {C} classes {list(m.classes_)[:10]}, "
          f"backend {m.backend_}")
    classes = np.argmax(m.weights_[:, D:], axis=1)
    print(f"  neurons per class         {np.bincount(classes, minlength=C).tolist()}")
    return {"weights": _save(_tapestry(m.weights_[:, :D], tile, "input synapses"), out, "weights.png"),
            "class_weights": _save(plot.class_weights(m), out, "class_weights.png")}


def _show_krotov(m, out, tile) -> dict:
    W = m.weights_
    norms = np.sum(np.abs(W.astype(np.float64)) ** float(m.p), axis=1)
    print(f"state     : {W.shape[0]} hidden units, D = {W.shape[1]}, backend {m.backend_}")
    print(f"  sum |W_mu|^p per unit     median {np.median(norms):.4g}, range [{norms.min():.4g}, "
          f"{norms.max():.4g}] (p = {m.p}; the rule drives it to 1)")
    return {"weights": _save(_tapestry(W, tile, f"{W.shape[0]} hidden units"), out, "weights.png")}


def _show_classifier(m, out, tile) -> dict:
    import matplotlib.pyplot as plt
    H, D = m.hidden_weights_.shape
    print(f"state     : {H} hidden units, D = {D}, {len(m.classes_)} classes {list(m.classes_)[:10]}, "
          f"{m.n_iter_} epochs of the top layer")
    if m.loss_curve_:
        print(f"  loss per sample           first epoch {m.loss_curve_[0]:.4g}, last {m.loss_curve_[-1]:.4g}")
    if m.validation_scores_:
        print(f"  validation accuracy       last epoch {m.validation_scores_[-1]:.4f}, "
              f"best {max(m.validation_scores_):.4f}")
    paths = {"weights": _save(_tapestry(m.hidden_weights_, tile, f"{H} hidden units (as read out)"), out,
                              "weights.png")}
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(m.classes_) + 1.5))
    S = m.weights_
    v = float(np.max(np.abs(S))) or 1.0
    im = ax.imshow(S, aspect="auto", cmap="RdBu_r", vmin=-v, vmax=v, interpolation="nearest")
    ax.set_yticks(range(len(m.classes_)), [str(c) for c in m.classes_])
    ax.set_xlabel("hidden unit")
    ax.set_title("top layer S (class x hidden unit)")
    fig.colorbar(im, ax=ax)
    paths["top_layer"] = _save(fig, out, "top_layer.png")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(m.loss_curve_) + 1), m.loss_curve_, color="C0")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per sample", color="C0")
    if m.validation_scores_:
        ax2 = ax.twinx()
        ax2.plot(np.arange(1, len(m.validation_scores_) + 1), m.validation_scores_, color="C1")
        ax2.set_ylabel("validation accuracy", color="C1")
    ax.set_title("top layer training")
    paths["training"] = _save(fig, out, "training.png")
    return paths


def _show_network(net, out, tile) -> dict:
    from .. import plot
    print(f"state     : {net.n_waves_learned_:,} learning waves, {net.n_features_in_} input lines per wave, "
          f"T = {net.T}, seed {net.seed_}")
    paths = {}
    for l in net.structure_.columns():
        W = net.weights_[l.name]
        print(f"  column {l.name!r:12s} {l.n} neurons x {W.shape[1]} synapses, threshold {l.spec.threshold}, "
              f"k {l.spec.k}, weights 0..{l.spec.w_max} (mean {W.mean():.2f})")
        fig = plot.column_weights(W, w_max=l.spec.w_max, title=f"column {l.name!r}")
        paths[f"weights_{l.name}"] = _save(fig, out, f"weights_{_file_name(l.name)}.png")
    return paths


def _file_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:60] or "column"


def _show_column(col, out, tile) -> dict:
    return _show_network(col._net, out, tile)


_SHOW = {"DreamComp": _show_dreamcomp, "KrotovHopfield": _show_krotov,
         "KrotovHopfieldClassifier": _show_classifier, "TNNNetwork": _show_network, "TNNColumn": _show_column}


def _show_map(args, path, out, model) -> int:
    """The pictures and measures of a SparseDream map."""
    from .. import metrics, plot
    from .train import defaults_for, load_data
    cfg = model.config_
    _check_against_model(args, cfg)
    rows, cols = cfg.grid
    print(f"model     : {model!r}")
    print(f"state     : {rows} x {cols} neurons, D = {cfg.n_inputs}, {model.n_steps_:,} steps trained, "
          f"backend {model.backend_}")
    paths = {}
    defaults = defaults_for("sparsedream")
    given = {k: v for k, v in vars(args).items() if k in defaults}
    opts = dict(defaults, **given)
    tile = tuple(opts["tile_shape"]) if opts.get("tile_shape") else None
    X = None
    if not args.no_data:
        explicit = any(k in vars(args) for k in ("data", "data_file"))
        if explicit or cfg.n_inputs == 400:
            if not explicit:
                opts["frames"] = max(args.eval_frames, args.anim_frames)
            try:
                X, info, tile_d = load_data(opts)
            except (ValueError, FileNotFoundError, ImportError) as exc:
                return _fail(str(exc))
            tile = tile or tile_d
            if X.shape[1] != cfg.n_inputs:
                return _fail(f"the data have D = {X.shape[1]} values per input, the model expects {cfg.n_inputs}")
            print(f"data      : {info}")
        else:
            print(f"data      : none given (D = {cfg.n_inputs}); pass --data or --data-file for measures")
    os.makedirs(out, exist_ok=True)
    try:
        fig = plot.weight_tapestry(model, tile_shape=tile, title=f"weights after {model.n_steps_:,} steps")
        paths["weights"] = plot.save_figure(fig, os.path.join(out, "weights.png"))
        if args.region:
            fig = plot.weight_tapestry(model, tile_shape=tile, region=args.region)
            paths["weights_zoom"] = plot.save_figure(fig, os.path.join(out, "weights_zoom.png"))
        if model.lateral_ is not None:
            neurons = args.neuron if args.neuron else [(rows // 2) * cols + cols // 2]
            for n in neurons:
                paths[f"lateral_{n}"] = plot.save_figure(plot.lateral_map(model, n),
                                                         os.path.join(out, f"lateral_{n}.png"), dpi=100)
                paths[f"lateral_tapestry_{n}"] = plot.save_figure(
                    plot.lateral_tapestry(model, n, tile_shape=tile), os.path.join(out, f"lateral_tapestry_{n}.png"))
    except ValueError as exc:
        return _fail(str(exc))
    hist_file = os.path.join(os.path.dirname(os.path.abspath(path)), "metrics.json")
    if os.path.exists(hist_file):
        try:
            with open(hist_file) as f:
                hist = json.load(f).get("history") or []
            if hist:
                paths["training"] = plot.save_figure(plot.training_curves(hist), os.path.join(out, "training.png"),
                                                     dpi=100)
        except (ValueError, OSError, AttributeError):
            pass
    if X is not None:
        X_eval = X[:max(1, min(args.eval_frames, X.shape[0]))]
        m = metrics.evaluate(model, X_eval)
        print(f"measures  : on {m['n_inputs']:,} inputs")
        print(f"  reconstruction MSE        {m['reconstruction_mse']:.6f}")
        print(f"  neurons that win          {m['neurons_used']} of {m['neurons']} "
              f"({m['dead_neurons']} never; perplexity {m['usage_perplexity']:.0f})")
        print(f"  quantization error        {m['quantization_error']:.4f}  (Euclidean best-matching unit)")
        if "topographic_error" in m:
            print(f"  topographic error         {m['topographic_error']:.4f}  (Euclidean BMUs, 8-neighbourhood)")
        if "topographic_error_winners" in m:
            print(f"  topographic error, winners {m['topographic_error_winners']:.4f}  (first two winners)")
        paths["metrics"] = os.path.join(out, "metrics.json")
        with open(paths["metrics"], "w") as f:
            json.dump(dict(checkpoint=os.path.abspath(path), n_steps=int(model.n_steps_), metrics=m), f, indent=2)
        usage = metrics.winner_usage(model, X_eval)
        paths["usage"] = plot.save_figure(plot.usage_map(usage), os.path.join(out, "usage.png"), dpi=100)
        if args.anim_frames > 0:
            try:
                paths["animation"] = plot.animate_activity(model, X[:args.anim_frames],
                                                           os.path.join(out, "activity.gif"), tile_shape=tile)
            except ValueError as exc:
                print(f"no animation: {exc}")
    for name, p in paths.items():
        print(f"wrote {name:22s}: {p}")
    return 0
