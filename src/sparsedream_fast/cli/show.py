"""``sparsedream show``: pictures and measures of a saved checkpoint."""
from __future__ import annotations

import argparse
import json
import os
import sys

from ._common import UsageError, check_backend, check_input_file, check_out_dir, check_tile_shape, int_at_least

__all__ = ["add_arguments", "run"]

EPILOG = """\
Examples
--------
  sparsedream show sparsedream_demo/model.npz                 # the demo's map, on its frames
  sparsedream show runs/map40/model.npz --out runs/map40/look --neuron 0 820 --region 10 30 10 30
  sparsedream show model.npz --data-file frames.npy --anim-frames 120
  sparsedream show model.npz --no-data                        # pictures of the weights only

Writes into --out (default: a folder 'show' next to the checkpoint): weights.png, with a
lateral lateral_N.png and lateral_tapestry_N.png per --neuron; with data metrics.json,
usage.png and activity.gif; training.png when a metrics.json with a history sits next to
the checkpoint. Without data options, a model with D = 400 is measured on the demo's
tapestry frames (--data tapestry --seed 0).
"""


def add_arguments(parser) -> None:
    """Options of ``sparsedream show``."""
    from .train import add_data_arguments
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("checkpoint", help="a model saved by SparseDream.save / sparsedream train / demo (.npz)")
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


def run(args) -> int:
    """Pictures and measures of a saved checkpoint.

    Loads a model written by SparseDream.save (sparsedream train, sparsedream demo),
    prints its parameters, draws its weight tapestry (and lateral maps), and on data
    measures it (reconstruction error, winner usage, quantization and topographic
    errors) and animates input, activity on the grid and reconstruction.
    """
    import sparsedream_fast as sdf
    from .. import metrics, plot
    from ._common import best_backend
    from .train import defaults_for, load_data
    out = _check_args(args)
    path = args.checkpoint
    try:
        backend = best_backend(args.backend) if args.backend else None
        model = sdf.SparseDream.load(path, backend=backend)
        if backend is None:
            model.set_params(backend=best_backend(model.backend))
    except Exception as exc:  # a damaged or foreign file: say so plainly
        return _fail(f"cannot read {path} as a SparseDream checkpoint: {type(exc).__name__}: {exc}")
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
