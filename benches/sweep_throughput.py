"""Throughput of ``sdf.sweep.run`` on a LocalCluster against the same runs in one process.

    python3 benches/sweep_throughput.py --out sweep_bench        # the sweep of issue 17
    python3 benches/sweep_throughput.py --small                               # a smoke run (~1 min)

The sweep (default): 32 runs of 40 x 40 SparseDream maps (seed 001's rule: D = 400 tapestry
frames, box lateral radius 2 strength 0.1, error clip 1, float32, cpp backend): lr in
{0.02, 0.05, 0.1, 0.2} x k in {1, 3, 5, 8} x seeds {0, 1}, each ``--epochs`` epochs over
``--frames`` frames, measured by reconstruction error, dead units, quantization and
topographic error on the same frames. In one run of this script, one after another:

``sequential``
    The 32 runs in this process one after another (``sweep.execute`` in a loop, exactly the
    sweep's own run function), the library choosing its threads as usual (the cpp backend
    takes both cores for a 40 x 40 map).
``sequential_1_thread``
    The same loop with BLAS and OpenMP held to one thread: one core's throughput.
``sweep``
    ``sdf.sweep.run`` on a LocalCluster of ``--workers`` processes x 1 thread (one thread
    per run), started and warmed up (modules imported in the workers) beforehand; its wall
    time includes scattering the data, the configuration check and every run.

Reports the throughput ratios (sequential wall / sweep wall), the scheduling overhead per
run ``(sweep wall x workers - sum of the runs' own seconds) / runs`` (what the cluster adds
to each run: data, check, task round trips, idle tails), the cluster's start-up time, and
checks that every row of the sweep equals the sequential row bit for bit. The load average
before and after each part is recorded: figures taken while other processes use the cores
are not valid for the docs.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time

import numpy as np


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed(label, fn, log):
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    out = fn()
    sec = time.perf_counter() - t0
    log[label] = dict(seconds=round(sec, 3), load_before=[round(x, 2) for x in load0],
                      load_after=[round(x, 2) for x in os.getloadavg()])
    print(f"{label:22s} {sec:8.2f} s   load {load0[0]:.2f} -> {os.getloadavg()[0]:.2f}", flush=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--side", type=int, default=40, help="map side (default 40: 40 x 40 neurons)")
    p.add_argument("--frames", type=int, default=5000, help="tapestry frames each run trains on (default 5000)")
    p.add_argument("--epochs", type=int, default=4, help="epochs per run (default 4)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--backend", default="cpp")
    p.add_argument("--small", action="store_true",
                   help="smoke run: 10 x 10 maps, 1,000 frames, 1 epoch, 8 runs (not a measurement)")
    p.add_argument("--dask-defaults", action="store_true",
                   help="a plain distributed.LocalCluster instead of sweep.local_cluster (for comparison)")
    p.add_argument("--out", metavar="DIR", default=None, help="write sweep_throughput.json there")
    args = p.parse_args(argv)

    import distributed
    from sklearn.model_selection import ParameterGrid

    import sparsedream_fast as sdf
    from sparsedream_fast import data, sweep

    if args.small:
        args.side, args.frames, args.epochs = 10, 1000, 1
        grid, seeds = {"lr": [0.02, 0.1], "k": [1, 5]}, [0, 1]
    else:
        grid, seeds = {"lr": [0.02, 0.05, 0.1, 0.2], "k": [1, 3, 5, 8]}, [0, 1]
    X, source = data.digit_tapestry_frames(n_frames=args.frames, source="generated")
    X = X.astype(np.float32)
    est = sdf.SparseDream(n_inputs=X.shape[1], grid=(args.side, args.side), k=5, lr=0.1, dtype="float32",
                          backend=args.backend)
    metrics = ["reconstruction_error", "dead_units", "quantization_error", "topographic_error"]
    fit = {"epochs": args.epochs}
    combos = [dict(c) for c in ParameterGrid(grid)]
    runs = [(c, s) for c in combos for s in seeds]
    mets = sweep.resolve_metrics(metrics)
    inputs = dict(X=X, y=None, X_eval=None, y_eval=None)
    log = dict(machine=dict(cpu=cpu_name(), cpus=os.cpu_count(), usable_cpus=len(os.sched_getaffinity(0)),
                            python=sys.version.split()[0], platform=platform.platform()),
               config=dict(runs=len(runs), grid=grid, seeds=seeds, map=f"{args.side}x{args.side}", frames=args.frames,
                          epochs=args.epochs, backend=args.backend, workers=args.workers, threads_per_worker=1,
                          cluster="distributed.LocalCluster" if args.dask_defaults else "sweep.local_cluster",
                          data=source, small=args.small),
               date=time.strftime("%Y-%m-%d %H:%M"))
    print(f"{len(runs)} runs of {args.side}x{args.side} maps, {args.frames} frames x {args.epochs} epochs, "
          f"{args.backend}; {log['machine']['cpu']}, {log['machine']['usable_cpus']} usable CPUs")

    # warm-up in this process (the kernels' first call), then the two sequential loops
    sweep.execute(est, runs[0][0], "seed", runs[0][1], inputs, mets, dict(epochs=1))
    seq = timed("sequential", lambda: [sweep.execute(est, c, "seed", s, inputs, mets, fit) for c, s in runs], log)
    seq1 = timed("sequential_1_thread",
                 lambda: [sweep.execute(est, c, "seed", s, inputs, mets, fit, {"*": 1}) for c, s in runs], log)

    # the cluster sweep.run starts itself (client=None); --dask-defaults: Dask's own
    # LocalCluster, whose nannies set MALLOC_TRIM_THRESHOLD_ (sweep.local_cluster says why it matters)
    if args.dask_defaults:
        cluster = timed("cluster_start", lambda: distributed.LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR), log)
    else:
        cluster = timed("cluster_start", lambda: sweep.local_cluster(args.workers), log)
    try:
        with distributed.Client(cluster) as client:
            # the workers import the library and scikit-learn once, as any long-lived cluster has
            timed("worker_warm_up", lambda: sweep.run(est, {}, X[:200], seeds=[0], metrics=metrics, client=client,
                                                      fit_params=dict(epochs=1)), log)
            table = timed("sweep", lambda: sweep.run(est, grid, X, seeds=seeds, metrics=metrics, client=client,
                                                     fit_params=fit), log)
    finally:
        cluster.close()

    failed = table["error"].notna()
    assert not failed.any(), f"runs failed: {table.loc[failed, 'error'].tolist()}"
    for i, (c, s) in enumerate(runs):
        row = table.iloc[i]
        assert all(row[k] == v for k, v in c.items()) and row["seed"] == s
        for name in metrics:
            assert row[name] == seq[i][name] == seq1[i][name], (c, s, name, row[name], seq[i][name], seq1[i][name])
    print("rows: every metric of every run equal, bit for bit, in the sweep and both sequential loops")

    wall = log["sweep"]["seconds"]
    own = float((table["fit_seconds"] + table["eval_seconds"]).sum())
    res = dict(
        ratio_vs_sequential=round(log["sequential"]["seconds"] / wall, 3),
        ratio_vs_sequential_1_thread=round(log["sequential_1_thread"]["seconds"] / wall, 3),
        runs_per_second=dict(sweep=round(len(runs) / wall, 3),
                             sequential=round(len(runs) / log["sequential"]["seconds"], 3),
                             sequential_1_thread=round(len(runs) / log["sequential_1_thread"]["seconds"], 3)),
        mean_run_seconds=dict(sweep=round(own / len(runs), 4),
                              sequential=round(sum(r["fit_seconds"] + r["eval_seconds"] for r in seq) / len(runs), 4),
                              sequential_1_thread=round(sum(r["fit_seconds"] + r["eval_seconds"] for r in seq1)
                                                        / len(runs), 4)),
        overhead_per_run_seconds=round((wall * args.workers - own) / len(runs), 4),
        steps_per_second_median=dict(sweep=float(table["steps_per_second"].median()),
                                     sequential=float(np.median([r["steps_per_second"] for r in seq])),
                                     sequential_1_thread=float(np.median([r["steps_per_second"] for r in seq1]))),
        threads_plan=table.attrs.get("threads_plan"))
    log["results"] = res
    print(json.dumps(res, indent=1))
    if args.small:
        print("(--small: a smoke run, not a measurement)")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, "sweep_throughput.json")
        with open(path, "w") as f:
            json.dump(log, f, indent=1)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
