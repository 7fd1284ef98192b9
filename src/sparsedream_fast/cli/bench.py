"""``sparsedream bench``: the command line of :mod:`sparsedream_fast.bench`.

Parses the options, runs the measurements of ``sparsedream_fast.bench`` for every grid,
dtype and backend, prints the table and writes ``bench.json`` and ``bench.png``.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from ..bench import (DEFAULT_GRIDS, _loadavg, blas_probe, cupy_or_none, draw, format_table, gemv_rate,
                     machine_info, measure_backend, measure_backend_isolated, measure_notebook, memory_bandwidth,
                     usable_backends)

from ._common import check_out_dir, float_in, int_at_least

__all__ = ["add_arguments", "run"]


def _parse_grids(text):
    grids = []
    for part in str(text).split(","):
        part = part.strip().lower()
        if not part:
            continue
        if "x" in part:
            a, b = part.split("x", 1)
            g = (int(a), int(b))
        else:
            g = (int(part), int(part))
        if g[0] < 1 or g[1] < 1:
            raise ValueError(f"grid sizes must be positive, got {part!r}")
        grids.append(g)
    if not grids:
        raise ValueError("no grid given")
    return grids


def add_arguments(parser) -> None:
    """Arguments of ``sparsedream bench``."""
    parser.add_argument("--grids", default=DEFAULT_GRIDS,
                        help="comma-separated grid sides, '80' for 80x80 or '40x60' (default %(default)s)")
    parser.add_argument("--backends", default="all",
                        help="comma-separated backends (numpy, cpp, numba, cuda) or 'all' usable "
                             "(default); the numpy reference always runs: it is the ratio's base "
                             "and the correctness oracle")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64", "both"),
                        help="weights' dtype (default %(default)s); the notebook loop is always float64")
    parser.add_argument("--k", type=int_at_least(1), default=5, help="winners per step (default %(default)s)")
    parser.add_argument("--no-lateral", action="store_true",
                        help="no lateral excitation (c = p) instead of the box of radius 2, strength 0.1")
    parser.add_argument("--steps", type=int_at_least(1), default=None,
                        help="steps per timed repeat (default: as many as take --seconds; the "
                             "notebook loop never runs more than that)")
    parser.add_argument("--seconds", type=float_in(0, low_open=True), default=0.4,
                        help="target seconds per timed repeat when --steps is not given (default %(default)s)")
    parser.add_argument("--repeat", type=int_at_least(1), default=5,
                        help="timed repeats; the median is reported (default %(default)s)")
    parser.add_argument("--check-steps", type=int_at_least(1), default=20,
                        help="steps of the correctness run against the numpy reference (default %(default)s)")
    parser.add_argument("--no-notebook", action="store_true", help="skip the notebook loop baseline")
    parser.add_argument("--notebook-max-s", type=float_in(0), default=30.0,
                        help="skip the notebook loop at a grid where its estimated time exceeds this "
                             "(default %(default)s)")
    parser.add_argument("--data", default="tapestry", choices=("tapestry", "random"),
                        help="frames: the notebooks' walk over a digit tapestry (20x20 windows) or "
                             "uniform random (default %(default)s)")
    parser.add_argument("--seed", type=int_at_least(0), default=0,
                        help="seed of the weights and frames (default %(default)s)")
    parser.add_argument("--out", default="bench_out", help="folder for bench.json and bench.png (default %(default)s)")
    parser.add_argument("--no-plot", action="store_true", help="write no PNG")
    parser.add_argument("--same-process", action="store_true",
                        help="measure every backend in this process (faster to start; by default each backend "
                             "runs in a fresh process, so that threads one leaves behind cannot slow the next)")
    parser.add_argument("--blas-threads", type=int_at_least(1), default=None,
                        help="limit numpy's BLAS threads for the whole run (notebook loop, numpy "
                             "reference, W @ v) (default: as numpy has them); 1 keeps the numpy "
                             "figures sane on a machine where other processes use the cores")


def _frames(kind, n, seed):
    if kind == "tapestry":
        try:
            from ..data import digit_tapestry_frames
            F, info = digit_tapestry_frames(n, seed=seed)
            return np.ascontiguousarray(F), info
        except Exception as exc:  # data module missing or broken: fall back, say so
            note = f" (tapestry frames unavailable: {exc})"
    else:
        note = ""
    return np.random.default_rng(seed).random((n, 400)), f"uniform random frames in [0, 1){note}"


def run(args) -> int:
    if getattr(args, "blas_threads", None) is not None:
        if args.blas_threads < 1:
            print("sparsedream bench: error: --blas-threads must be >= 1", file=sys.stderr)
            return 2
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            print("sparsedream bench: error: --blas-threads needs threadpoolctl (pip install threadpoolctl)",
                  file=sys.stderr)
            return 2
        with threadpool_limits(args.blas_threads, user_api="blas"):
            return _run(args)
    return _run(args)


def _run(args) -> int:
    """Benchmark the backends of rule A against the numpy reference and the notebook loop.

    For every grid and dtype: train through the public API (``SparseDream(...).partial_fit``
    after a checked warm-up ``fit``), report steps/s, the ratio to the notebook's own loop
    (seed 001 In [29], float64 numpy, measured in the same run) and to the numpy reference,
    and the peak memory; then write bench.json and bench.png (steps/s against neurons,
    log-log, with the DRAM floor and a numpy ``W @ v`` pass drawn in). The default run
    (grids 20, 40, 80, float32, every usable backend) takes about a minute on 2 cores.
    Settings are seed 001's: D = 400 (20x20 tapestry frames), k = 5, box lateral radius 2,
    strength 0.1, error clip 1, lr 0.1.

    Examples
    --------
      sparsedream bench                              # quick default, writes bench_out/
      sparsedream bench --grids 80 --dtype both      # the 80x80 comparison, float32 and float64
      sparsedream bench --grids 20,40,80,100,200 --no-notebook --out results/
      sparsedream bench --backends cpp,numba --k 20 --no-lateral
      sparsedream bench --steps 2000 --repeat 5      # fixed steps per repeat
      sparsedream bench --blas-threads 1             # numpy single-threaded (a busy machine)

    Other processes on the same cores spoil the figures, numpy's most of all: a
    multi-threaded BLAS call then waits for a scheduler slice. The command measures that
    first and warns; the table flags timings whose repeats disagree ("noisy").
    """
    try:
        grids = _parse_grids(args.grids)
    except ValueError as exc:
        print(f"sparsedream bench: error: --grids: {exc}", file=sys.stderr)
        return 2
    for name in ("k", "repeat", "check_steps"):
        if getattr(args, name) < 1:
            print(f"sparsedream bench: error: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return 2
    if args.steps is not None and args.steps < 1:
        print("sparsedream bench: error: --steps must be >= 1", file=sys.stderr)
        return 2
    if args.seconds <= 0:
        print("sparsedream bench: error: --seconds must be > 0", file=sys.stderr)
        return 2
    check_out_dir(args.out)
    bad_k = [g for g in grids if args.k > g[0] * g[1]]
    if bad_k:
        print(f"sparsedream bench: error: --k {args.k} exceeds the neurons of grid {bad_k[0]}", file=sys.stderr)
        return 2

    usable = usable_backends()
    if args.backends == "all":
        chosen = [b for b, why in usable.items() if why is None]
    else:
        chosen = [b.strip() for b in args.backends.split(",") if b.strip()]
        for b in chosen:
            if b not in usable:
                print(f"sparsedream bench: error: unknown backend {b!r}; choose from {', '.join(usable)}",
                      file=sys.stderr)
                return 2
            if usable[b] is not None:
                print(f"sparsedream bench: error: backend {b!r} is not usable here: {usable[b]}", file=sys.stderr)
                return 2
    order = ["numpy"] + [b for b in ("cpp", "numba", "cuda") if b in chosen and b != "numpy"]
    dtypes = ["float32", "float64"] if args.dtype == "both" else [args.dtype]
    lateral = not args.no_lateral
    opts = dict(check_steps=args.check_steps, steps=args.steps, seconds=args.seconds,
                repeat=args.repeat, seed=args.seed, notebook_max_s=args.notebook_max_s,
                check_notebook=True)

    t_start = time.perf_counter()
    machine = machine_info()
    load0 = _loadavg()
    if load0 is not None and load0 > 0.5:
        print(f"warning: the machine is busy before the run (load average {load0:.2f} over 1 min): "
              "other processes share the cores and the figures will be low and noisy", file=sys.stderr)
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, L3 "
          f"{(machine['l3_bytes'] or 0) / 2**20:.0f} MiB, {machine['date']}")
    for b, why in usable.items():
        print(f"  backend {b:6s} {'used' if b in order else ('not chosen' if why is None else 'unusable: ' + why)}")
    bw = memory_bandwidth()
    print(f"memory bandwidth (numpy copy, read + write): {bw / 1e9:.1f} GB/s")
    probe = blas_probe()
    if probe is not None:
        machine["blas_probe_gemv_per_s"] = {"threads_as_set": probe[0], "one_thread": probe[1]}
        if probe[0] < 0.5 * probe[1]:
            print(f"warning: numpy's multi-threaded BLAS stalls here ({probe[0]:,.0f} W @ v per s, "
                  f"{probe[1]:,.0f} with one thread): other processes hold the cores; the numpy "
                  f"figures (notebook, reference) will be far too low. Rerun on an idle machine or "
                  f"with --blas-threads 1.", file=sys.stderr)
    n_frames = 10_000
    frames64, data_info = _frames(args.data, n_frames, args.seed)
    nnz = np.count_nonzero(frames64, axis=1)
    data_info += (f"; nonzeros per frame {nnz.mean():.1f} of {frames64.shape[1]} "
                  f"(p10 {np.percentile(nnz, 10):.0f}, p90 {np.percentile(nnz, 90):.0f})")
    print(f"frames: {data_info}")
    framesd = {dt: np.ascontiguousarray(frames64, dtype=dt) for dt in dtypes}

    cp = None if args.no_notebook else cupy_or_none()
    rows, floors, notes = [], [], []
    for grid in grids:
        N = grid[0] * grid[1]
        nb = None
        if not args.no_notebook:
            nb = measure_notebook(grid, frames64, args.k, lateral, opts, bw)
            rows.append(nb)
            shown = (f"{nb['steps_per_s']:10.1f} steps/s  check {nb['check']}" if "skipped" not in nb
                     else "skipped: " + nb["skipped"])
            print(f"  {nb['grid']:>8s} notebook  " + shown)
            if "skipped" in nb:
                notes.append(f"notebook loop skipped at {nb['grid']}: {nb['skipped']}")
            if cp is not None:
                rows.append(measure_notebook(grid, frames64, args.k, lateral, opts, bw, xp=cp,
                                             name="notebook-cupy"))
        for dt in dtypes:
            itemsize = np.dtype(dt).itemsize
            wbytes = N * 400 * itemsize
            l3 = machine["l3_bytes"]
            floors.append(dict(dtype=dt, grid=f"{grid[0]}x{grid[1]}", N=N, weights_mb=wbytes / 1e6,
                               in_l3=None if not l3 else wbytes <= l3,
                               dram_steps_per_s=bw / wbytes, gemv_steps_per_s=gemv_rate(N, 400, dt)))
            ref = None
            ref_rate = None
            for b in order:
                try:
                    measure = measure_backend if args.same_process else measure_backend_isolated
                    row, r0 = measure(b, grid, dt, args.k, lateral, framesd[dt], opts, ref)
                except Exception as exc:  # a backend failing must not hide the others' figures
                    row = dict(backend=b, dtype=dt, grid=f"{grid[0]}x{grid[1]}", N=N, k=args.k,
                               lateral=lateral, skipped=f"error: {type(exc).__name__}: {exc}")
                    rows.append(row)
                    print(f"  {row['grid']:>8s} {b:8s} {dt}: {row['skipped']}")
                    continue
                if b == "numpy":
                    ref, ref_rate = r0, row["steps_per_s"]
                row["x_numpy"] = row["steps_per_s"] / ref_rate if ref_rate else None
                row["x_notebook"] = (row["steps_per_s"] / nb["steps_per_s"]
                                     if nb is not None and "skipped" not in nb else None)
                row["in_order"] = b in chosen
                print(f"  {row['grid']:>8s} {b:8s} {dt}  {row['steps_per_s']:10.1f} steps/s  check {row['check']}")
                rows.append(row)
    for r in rows:
        if r["backend"] == "notebook" and "skipped" not in r:
            r["x_notebook"], r["x_numpy"] = 1.0, None
    elapsed = time.perf_counter() - t_start
    machine["loadavg_1min_before"], machine["loadavg_1min_after"] = load0, _loadavg()
    for f in floors:
        if f["in_l3"]:
            notes.append(f"{f['grid']} {f['dtype']}: the weights ({f['weights_mb']:.1f} MB) fit in the "
                         f"L3 cache, so the DRAM floor is not the bound there; numpy's W @ v is the "
                         f"realistic one-pass reference")
    result = dict(machine=machine, bandwidth_bytes_per_s=bw, data=data_info, k=args.k,
                  lateral=lateral, grids=[f"{g[0]}x{g[1]}" for g in grids], dtypes=dtypes,
                  backends=order, usable={b: (w or "usable") for b, w in usable.items()},
                  options=vars(args).copy(), floors=floors, results=rows, notes=notes,
                  elapsed_s=elapsed)
    result["options"].pop("func", None)
    print()
    print(format_table(rows, floors))
    if notes:
        print()
        for n in notes:
            print("note: " + n)
    os.makedirs(args.out, exist_ok=True)
    jpath = os.path.join(args.out, "bench.json")
    with open(jpath, "w") as f:
        json.dump(result, f, indent=1, default=str)
    print(f"\nwrote {jpath}", end="")
    if not args.no_plot:
        ppath = os.path.join(args.out, "bench.png")
        try:
            draw(result, ppath)
            print(f" and {ppath}", end="")
        except ImportError as exc:
            print(f" (no PNG: matplotlib is missing: {exc})", end="")
    print(f"  ({elapsed:.0f} s)")
    bad = [r for r in rows if str(r.get("check", "")).startswith("FAIL")]
    return 1 if bad else 0


run.__doc__ = _run.__doc__ = __import__("inspect").cleandoc(_run.__doc__)
