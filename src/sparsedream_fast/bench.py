"""Measurements behind ``sparsedream bench``: speed of every backend against the numpy reference and the notebook loop.

One run measures, per grid size and dtype, the training speed (steps/s) of each backend
through the public API, the notebook's own loop (seed 001 In [29], float64 numpy, and cupy
when a GPU is present) as the baseline, and two machine references: the DRAM floor (one
pass over the weights at this machine's measured memory bandwidth) and a numpy ``W @ v``
pass (the real bound while the weights sit in the L3 cache). It prints a table, writes
``bench.json`` and draws ``bench.png``.

How a figure is made (``docs/design.md``; the benchmarks page of the documentation):

1. correctness first: each backend trains ``--check-steps`` steps from the same seed on the
   same frames as the numpy reference; its weights must match to the tests' tolerances
   and its winners on the next frames must be equal (column ``check``); the notebook loop
   is checked the same way against the reference given the notebook's own lateral matrix;
2. a 2-step fit before it is the warm-up (Numba compiles there); the checked run is the
   peak-memory probe (peak resident memory above the level before it: model, weights,
   scratch; compilers' memory is not counted);
3. timing: ``partial_fit`` over ``S`` fresh frames (continuing the trained state, so the
   weights' initialisation is not counted, as the notebook's setup is not), ``--repeat``
   times; steps/s is the median. ``S`` is chosen to take about ``--seconds`` unless
   ``--steps`` fixes it.

The notebook loop needs a dense N x N float64 lateral (12.8 GB at 200 x 200); it is skipped,
and the table says why, where that does not fit in memory or one step would take too long.
"""
from __future__ import annotations

import ctypes
import datetime as _dt
import gc
import os
import platform
import time
import tracemalloc

import numpy as np

__all__ = ["notebook_lateral", "notebook_run", "memory_bandwidth",
           "gemv_rate", "machine_info", "meminfo", "cupy_or_none", "PeakMemory", "measure_backend",
           "measure_backend_isolated"]

DEFAULT_GRIDS = "20,40,80"
#: repeats further apart than this factor are flagged "noisy" in the table
NOISY = 1.3


# ====================================================================== the notebook loop
# Seed 001 In [29] with cp -> xp (benches/notebook_loop.py re-exports it). Uses no kernel of
# the library: it is the baseline.
def notebook_lateral(Ky, Kx, ex=2, value=0.1, xp=np):
    """The notebook's dense lateral ``lat_ex`` (N, N), float64, off-by-one slice included."""
    lat_ex = []

    for y in range(Ky):
        for x in range(Kx):
            curr_ex = np.zeros((Ky, Kx))
            curr_ex[max(0, y - ex): min(Ky - 1, y + ex + 1), max(0, x - ex): min(Kx - 1, x + ex + 1)] = value
            lat_ex.append(curr_ex.reshape(-1))

    lat_ex = xp.array(lat_ex)
    xp.fill_diagonal(lat_ex, 0)
    return lat_ex


def notebook_run(w, lat_ex, frames, steps=None, *, n_w=5, xi=0.1, prec=1e-10, xp=np):
    """The notebook's training loop on ``frames[:steps]`` (in order, wrapping), ``w`` in place.

    ``lat_ex=None`` drops the lateral product (``c = p``: the ``--no-lateral`` baseline).
    """
    N = w.shape[0]
    n = frames.shape[0]
    steps = n if steps is None else steps
    for i in range(steps):
        v = frames[i % n].reshape(-1, 1)
        p = w @ v
        c = p + (lat_ex @ p) if lat_ex is not None else p
        winners = xp.argsort(c, axis=0)[-n_w:]
        mask = xp.zeros((N, 1))
        mask[winners] = 1
        o = mask * p
        r = w.T @ o
        mod_r = xp.maximum(r, prec)
        e = xp.clip(v - r, -1, 1)

        w += w * o * (e / mod_r).T * xi
    return w


def cupy_or_none():
    """The cupy module when cupy imports and a CUDA GPU is visible, else None."""
    try:
        import cupy as cp
        if cp.cuda.runtime.getDeviceCount() < 1:
            return None
        return cp
    except Exception:  # no cupy, no driver, no GPU
        return None


# ===================================================================== machine references
def _read(path, default=None):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def meminfo(key):
    """A /proc/meminfo entry (e.g. "MemAvailable") in bytes; None where it cannot be read."""
    txt = _read("/proc/meminfo", "")
    for line in txt.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return None


def _l3_bytes():
    for idx in range(6):
        base = f"/sys/devices/system/cpu/cpu0/cache/index{idx}"
        if _read(f"{base}/level") == "3":
            s = _read(f"{base}/size", "")
            mult = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}.get(s[-1:].upper(), 1)
            try:
                return int(s.rstrip("KMGkmg")) * mult
            except ValueError:
                return None
    return None


def _loadavg():
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def machine_info() -> dict:
    """CPU model, core count, L3 size, memory, library versions and the date."""
    cpu = platform.processor() or platform.machine()
    for line in (_read("/proc/cpuinfo", "") or "").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    info = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu, "cores": os.cpu_count(), "l3_bytes": _l3_bytes(),
        "mem_total_bytes": meminfo("MemTotal"), "python": platform.python_version(),
        "numpy": np.__version__, "platform": platform.platform(),
    }
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = [f"{d.get('internal_api')} {d.get('version')} {d.get('num_threads')} threads"
                        for d in threadpool_info() if d.get("user_api") == "blas"]
    except Exception:
        pass
    return info


def memory_bandwidth(nbytes=256 * 2 ** 20, repeat=5) -> float:
    """This machine's memory bandwidth in bytes/s: best ``np.copyto`` of ``nbytes`` (> L3).

    Counts the bytes read plus the bytes written (2 * nbytes per copy). One thread (numpy's
    copy is not threaded); the caches are far smaller than the arrays.
    """
    src = np.ones(nbytes // 8)
    dst = np.zeros_like(src)
    np.copyto(dst, src)
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best


def gemv_rate(N, D, dtype, seconds=0.15) -> float:
    """Passes per second of numpy's ``W @ v`` for W (N, D) of ``dtype`` (the drive pass alone).

    The weights stay in whatever cache holds them, as a training loop's would.
    """
    rng = np.random.default_rng(0)
    W = rng.random((N, D)).astype(dtype)
    v = rng.random(D).astype(dtype)
    out = np.empty(N, dtype)
    np.matmul(W, v, out=out)
    reps = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(reps):
            np.matmul(W, v, out=out)
        dt = time.perf_counter() - t0
        if dt >= seconds / 3 or reps >= 1 << 20:
            break
        reps *= 4
    rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            np.matmul(W, v, out=out)
        rates.append(reps / (time.perf_counter() - t0))
    return float(np.median(rates))


def blas_probe(seconds=0.1):
    """A 1600 x 400 float32 ``W @ v`` per second with numpy's BLAS threads as set, and with one.

    On a machine whose cores another process keeps busy, a multi-threaded BLAS call waits for
    a scheduler slice (about 8 ms here, where one thread needs 30 us): the first figure then
    falls far below the second, and every numpy figure (notebook, reference) with it.
    Returns (threads as set, one thread), or None when threadpoolctl is missing.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    W = np.random.default_rng(0).random((1600, 400)).astype(np.float32)
    v = W[0].copy()

    def rate():
        W @ v
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            W @ v
            n += 1
        return n / (time.perf_counter() - t0)

    multi = rate()
    with threadpool_limits(1, user_api="blas"):
        one = rate()
    return multi, one


# ========================================================================== peak memory
def _malloc_trim():
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except Exception:
        pass


def _status_kb(key):
    for line in (_read("/proc/self/status", "") or "").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return None


class PeakMemory:
    """Peak memory used inside a ``with`` block, in bytes (``.peak``).

    On Linux: the peak resident set size (VmHWM, reset through ``/proc/self/clear_refs``)
    above the resident size at entry, after returning freed heap memory to the system: it
    sees every allocation (numpy, C++, Numba). Elsewhere: tracemalloc's peak (Python and
    numpy allocations only). ``.method`` names which.
    """

    def __enter__(self):
        gc.collect()
        _malloc_trim()
        self.method = "tracemalloc"
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.base = _status_kb("VmRSS")
            if self.base is not None and _status_kb("VmHWM") is not None:
                self.method = "rss"
        except OSError:
            pass
        if self.method == "tracemalloc":
            tracemalloc.start()
        return self

    def __exit__(self, *exc):
        if self.method == "rss":
            self.peak = max(0, _status_kb("VmHWM") - self.base)
        else:
            self.peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        return False


# ============================================================================= backends
def usable_backends() -> dict:
    """Backend name -> None when usable here, else the reason it is not."""
    from . import backends
    from .sparsedream.model import backend_module
    out = {}
    for name, info in backends().items():
        if not info.available:
            out[name] = info.reason
            continue
        try:
            backend_module(name)
        except Exception as exc:  # listed, but its rule A module is not there (yet)
            out[name] = f"no rule A implementation importable: {exc}"
            continue
        out[name] = None
    return out


def backend_threads(name):
    """Threads the backend computes with, as far as can be told (None: unknown)."""
    try:
        if name == "numba":
            import numba
            return int(numba.get_num_threads())
        if name == "numpy":
            from threadpoolctl import threadpool_info
            n = [d["num_threads"] for d in threadpool_info() if d.get("user_api") == "blas"]
            return int(max(n)) if n else 1
        if name in ("cpp", "cuda"):
            import importlib
            mod = importlib.import_module("sparsedream_fast._core" if name == "cpp" else "sparsedream_fast._cuda")
            for attr in ("num_threads", "get_num_threads", "max_threads"):
                if hasattr(mod, attr):
                    return int(getattr(mod, attr)())
    except Exception:
        pass
    return None


def _model(backend, grid, dtype, k, lateral, seed, **extra):
    from . import SparseDream, lateral as L
    kw = dict(n_inputs=400, grid=grid, k=k, lr=0.1, competition="lateral", output="drive",
              lateral=L.box(2, 0.1) if lateral else None, error_clip=1.0, dtype=dtype,
              backend=backend, seed=seed, init=(0.15, 0.16))
    kw.update(extra)
    return SparseDream(**kw)


def _frames_window(frames, start, n):
    idx = (start + np.arange(n)) % frames.shape[0]
    return np.ascontiguousarray(frames[idx])


def _steps_for(rate, seconds, lo=5, hi=50_000):
    return int(min(hi, max(lo, rate * seconds)))


def _time_partial_fit(m, frames, start, steps, repeat):
    """Steps/s of ``repeat`` calls of ``m.partial_fit`` on ``steps`` fresh frames each."""
    rates = []
    for r in range(repeat):
        X = _frames_window(frames, start + r * steps, steps)
        t0 = time.perf_counter()
        m.partial_fit(X)
        rates.append(steps / (time.perf_counter() - t0))
    return rates


def _probe_rate(fn, first=8, min_s=0.05, max_steps=4096):
    """Rough steps/s of ``fn(steps)``: doubles steps until a call takes ``min_s``."""
    s = first
    while True:
        t0 = time.perf_counter()
        fn(s)
        dt = time.perf_counter() - t0
        if dt >= min_s or s >= max_steps:
            return s / max(dt, 1e-9)
        s *= 2


def _tol(dtype):
    return (1e-9, 1e-12) if np.dtype(dtype) == np.float64 else (1e-4, 1e-6)


def _compare(m, ref, Xnext, dtype):
    """'ok' when m matches the reference model ref, else a short description."""
    rtol, atol = _tol(dtype)
    W, R = m.weights_, ref["W"]
    if not np.all(np.isfinite(W)):
        return "FAIL: NaN/inf weights"
    err = np.max(np.abs(W.astype(np.float64) - R) / (atol + rtol * np.abs(R)))
    if err > 1:
        return f"FAIL: weights off by {err:.1f}x the tolerance (rtol {rtol:g})"
    win, want = m.winners(Xnext), ref["winners"]
    if np.dtype(dtype) != np.float64:  # near-equal winners may swap places in float32
        win, want = np.sort(win, axis=1), np.sort(want, axis=1)
    if not np.array_equal(win, want):
        return f"FAIL: winners differ on {int(np.any(win != want, axis=1).sum())} of {len(win)} frames"
    return "ok"


def measure_backend(backend, grid, dtype, k, lateral, frames, opts, ref=None):
    """One row of the table: check, warm-up + peak memory, then timing."""
    chk = opts["check_steps"]
    X = frames
    # warm-up (Numba compiles here), then the peak-memory probe on a second, identical run
    _model(backend, grid, dtype, k, lateral, opts["seed"]).fit(X[:2], epochs=1, shuffle=False)
    with PeakMemory() as pm:
        m = _model(backend, grid, dtype, k, lateral, opts["seed"]).fit(X[:chk], epochs=1, shuffle=False)
    Xnext = X[chk:chk + 8]
    if ref is None:
        check = "ref"
        ref = {"W": m.weights_.astype(np.float64), "winners": m.winners(Xnext)}
    else:
        check = _compare(m, ref, Xnext, dtype)
    pos = chk
    if opts["steps"]:
        steps = opts["steps"]
    else:
        def go(s):
            nonlocal pos
            m.partial_fit(_frames_window(X, pos, s))
            pos += s
        steps = _steps_for(_probe_rate(go), opts["seconds"])
    rates = _time_partial_fit(m, X, pos, steps, opts["repeat"])
    row = dict(backend=backend, dtype=np.dtype(dtype).name, grid=f"{grid[0]}x{grid[1]}",
               N=grid[0] * grid[1], k=k, lateral=bool(lateral), steps=steps, repeat=len(rates),
               steps_per_s=float(np.median(rates)), rates=[float(r) for r in rates],
               peak_mb=pm.peak / 1e6, peak_method=pm.method, check=check,
               threads=backend_threads(backend), backend_used=m.backend_)
    return row, ref


def measure_backend_isolated(backend, grid, dtype, k, lateral, frames, opts, ref=None):
    """``measure_backend`` in a fresh process (multiprocessing's spawn), same arguments and result.

    A backend leaves threads behind in its process (OpenMP's pool, OpenBLAS's workers, Numba's
    threading layer), memory and a warm cache; measured in the process that ran the others,
    a backend can come out slower than alone. Each measurement in its own process removes
    that; the cost is a few seconds of start-up per row.
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as ex:
        return ex.submit(measure_backend, backend, grid, dtype, k, lateral, frames, opts, ref).result()


def check_notebook(grid, frames, k, lateral, steps=10, seed=0):
    """The notebook loop against the numpy reference given the notebook's own lateral."""
    from . import SparseDream
    N = grid[0] * grid[1]
    rng = np.random.default_rng(seed)
    w0 = rng.uniform(.15, .16, (N, frames.shape[1]))
    lat = notebook_lateral(*grid) if lateral else None
    w = notebook_run(w0.copy(), lat, frames, steps, n_w=k)
    m = SparseDream(n_inputs=frames.shape[1], grid=grid, k=k, lr=0.1, competition="lateral",
                    lateral=lat, error_clip=1.0, init=w0, dtype="float64", backend="numpy")
    m.fit(frames[:steps], epochs=1, shuffle=False)
    ok = np.allclose(m.weights_, w, rtol=1e-9, atol=1e-12)
    return "ok" if ok else "FAIL: notebook loop differs from the reference"


def measure_notebook(grid, frames64, k, lateral, opts, bandwidth, xp=np, name="notebook"):
    """The notebook loop's row (float64), or a row saying why it was skipped."""
    N = grid[0] * grid[1]
    D = frames64.shape[1]
    row = dict(backend=name, dtype="float64", grid=f"{grid[0]}x{grid[1]}", N=N, k=k,
               lateral=bool(lateral), threads=backend_threads("numpy") if xp is np else None)
    if xp is np:
        need = 2 * N * N * 8 * bool(lateral) + 4 * N * D * 8
        avail = meminfo("MemAvailable")
        if avail is not None and need > 0.6 * avail:
            row["skipped"] = (f"needs {need / 1e9:.1f} GB for its dense {N}x{N} lateral, "
                              f"{avail / 1e9:.1f} GB available")
            return row
        est = (N * N * 8 * bool(lateral) + 4 * N * D * 8) / bandwidth
        if est * opts["repeat"] * 3 > opts["notebook_max_s"]:
            row["skipped"] = (f"about {est:.2f} s per step (dense {N}x{N} lateral product): "
                              f"over the --notebook-max-s budget")
            return row
    rng = np.random.default_rng(opts["seed"])
    sync = (lambda: None) if xp is np else xp.cuda.Stream.null.synchronize
    with PeakMemory() as pm:
        w = xp.asarray(rng.uniform(.15, .16, (N, D)))
        lat = notebook_lateral(*grid, xp=xp) if lateral else None
        fr = xp.asarray(frames64[:4096])
        notebook_run(w, lat, fr, 3, n_w=k, xp=xp)
        sync()
    pos = 3

    def go(s):
        nonlocal pos
        notebook_run(w, lat, fr, s, n_w=k, xp=xp)
        sync()
        pos += s

    rate = _probe_rate(go, first=2, min_s=0.05)
    steps = _steps_for(rate, opts["seconds"], lo=3)
    if opts["steps"]:
        steps = min(steps, opts["steps"])
    rates = []
    for _ in range(opts["repeat"]):
        t0 = time.perf_counter()
        notebook_run(w, lat, fr, steps, n_w=k, xp=xp)
        sync()
        rates.append(steps / (time.perf_counter() - t0))
    row.update(steps=steps, repeat=len(rates), steps_per_s=float(np.median(rates)),
               rates=[float(r) for r in rates], peak_mb=pm.peak / 1e6, peak_method=pm.method)
    if xp is np and opts["check_notebook"]:
        row["check"] = check_notebook(grid, frames64[:64], k, lateral, steps=10, seed=opts["seed"])
    else:
        row["check"] = "-"
    return row


# ================================================================================ output
def _fmt_rate(x):
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def format_table(rows, floors) -> str:
    """The result rows as a fixed-width text table, then the machine references."""
    head = ("backend", "dtype", "grid", "N", "thr", "steps/s", "x notebook", "x numpy ref", "x W@v", "peak MB",
            "check")
    gemv = {(f["dtype"], f["grid"]): f.get("gemv_steps_per_s") for f in floors or ()}
    lines = []
    for r in rows:
        if "skipped" in r:
            lines.append((r["backend"], r["dtype"], r["grid"], str(r["N"]), "-", "skipped",
                          "-", "-", "-", "-", r["skipped"]))
            continue
        g = gemv.get((r["dtype"], r["grid"]))  # numpy's W @ v on the same W size, this run
        xn, xr = r.get("x_notebook"), r.get("x_numpy")
        check = r.get("check", "-")
        rates = r.get("rates") or []
        if len(rates) > 1 and max(rates) > NOISY * min(rates):
            check += f", noisy (repeats {min(rates):,.0f}-{max(rates):,.0f})"
        lines.append((r["backend"], r["dtype"], r["grid"], str(r["N"]),
                      "-" if r.get("threads") is None else str(r["threads"]),
                      _fmt_rate(r["steps_per_s"]),
                      "-" if xn is None else f"{xn:,.1f}", "-" if xr is None else f"{xr:,.2f}",
                      "-" if not g else f"{r['steps_per_s'] / g:,.2f}",
                      f"{r['peak_mb']:,.1f}", check))
    widths = [max(len(h), *(len(l[i]) for l in lines)) if i < len(head) - 1 else 0
              for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.rjust(w) if 3 <= i <= 9 else c.ljust(w)
                                  for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    out = [fmt(head), fmt(["-" * w if w else "-----" for w in widths])]
    out += [fmt(l) for l in lines]
    if floors:
        out.append("")
        out.append("machine references (steps/s if a step were only one pass over the weights):")
        fh = ("dtype", "grid", "N", "W MB", "in L3", "DRAM floor", "numpy W@v")
        fl = [(f["dtype"], f["grid"], str(f["N"]), f"{f['weights_mb']:.1f}",
               {True: "yes", False: "no", None: "?"}[f["in_l3"]],
               _fmt_rate(f["dram_steps_per_s"]), _fmt_rate(f["gemv_steps_per_s"])) for f in floors]
        fw = [max(len(h), *(len(l[i]) for l in fl)) for i, h in enumerate(fh)]
        ff = lambda cells: "  ".join(c.rjust(w) if i >= 2 else c.ljust(w)
                                     for i, (c, w) in enumerate(zip(cells, fw)))
        out += [ff(fh)] + [ff(l) for l in fl]
    return "\n".join(out)


def draw(result, path):
    """steps/s against neurons, log-log, one line per backend and dtype, with the floors."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["results"] if "skipped" not in r]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    series = {}
    for r in rows:
        series.setdefault((r["backend"], r["dtype"]), []).append((r["N"], r["steps_per_s"]))
    colors = {"cpp": "C0", "numba": "C1", "numpy": "C2", "cuda": "C3", "notebook": "k",
              "notebook-cupy": "0.4"}
    for (b, dt), pts in sorted(series.items()):
        pts.sort()
        x, y = zip(*pts)
        ls = "-" if dt == "float32" else "--"
        mk = "x" if b.startswith("notebook") else "o"
        ax.plot(x, y, ls, marker=mk, color=colors.get(b), label=f"{b} {dt}")
    for dt in sorted({f["dtype"] for f in result["floors"]}):
        fs = sorted((f for f in result["floors"] if f["dtype"] == dt), key=lambda f: f["N"])
        x = [f["N"] for f in fs]
        ls = "-" if dt == "float32" else "--"
        ax.plot(x, [f["dram_steps_per_s"] for f in fs], ls, color="0.6", lw=3, alpha=0.5,
                label=f"DRAM floor {dt} ({result['bandwidth_bytes_per_s'] / 1e9:.0f} GB/s, one pass over W)")
        ax.plot(x, [f["gemv_steps_per_s"] for f in fs], ls, color="m", lw=1, alpha=0.7,
                label=f"numpy W @ v alone {dt}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("neurons N (grid rows x cols), D = 400")
    ax.set_ylabel("training steps per second")
    m = result["machine"]
    ax.set_title(f"SparseDream rule A, k={result['k']}, lateral={'box r=2' if result['lateral'] else 'none'}\n"
                 f"{m['cpu']}, {m['cores']} cores, {m['date'][:10]}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
