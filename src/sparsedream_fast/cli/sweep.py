"""``sparsedream sweep CONFIG.toml``: a parameter sweep on a Dask cluster, from a TOML file.

Reads the estimator, its fixed parameters, the grid, the seeds, the data and the metrics
from the file (format: :data:`EPILOG`, example: ``examples/sweep_maps.toml``), runs
:func:`sparsedream_fast.sweep.run` on a LocalCluster of processes here (``--workers N``) or
on a running scheduler (``--scheduler tcp://HOST:PORT``), and writes into ``--out`` the
table (``sweep.csv``, and ``sweep.parquet`` when pyarrow is installed), a picture of the
chosen metric against the swept parameters (``<metric>.png``) and the per-run store
(``runs/``), from which a rerun resumes. Exit status: 0, 1 when some runs failed (their
rows hold the error), 2 for a bad configuration (nothing has run).
"""
from __future__ import annotations

import argparse
import inspect
import os
import sys

import numpy as np

__all__ = ["add_arguments", "run", "load_config", "SECTIONS"]

#: The tables of a sweep file and the keys each may hold (estimator and fit: any parameter).
SECTIONS = {
    "estimator": None,
    "fit": None,
    "grid": None,
    "data": ("loader", "file", "key", "labels", "use_labels", "n_samples", "flatten"),
    "run": ("seeds", "metrics", "plot", "test_fraction", "split_seed", "threads_per_run", "workers", "scheduler",
            "out", "check"),
}

EPILOG = """\
Examples
--------
  sparsedream sweep examples/sweep_maps.toml --workers 2 --out sweep_maps
  sparsedream sweep examples/sweep_maps.toml --out sweep_maps     # again: resumes, runs nothing done

On a running Dask cluster instead of a LocalCluster here: --scheduler tcp://HOST:8786
(workers started with `dask worker tcp://HOST:8786 --nthreads 1`, sparsedream-fast
installed on every machine).

The TOML file (every table but [estimator] and [data] optional):

  [estimator]
  name = "SparseDream"        # SparseDream, DreamComp, KrotovHopfield, TNNColumn
  grid = [10, 10]             # fixed constructor parameters (n_inputs: from the data)
  lateral = { box = { radius = 1, strength = 0.1 } }   # a function of sdf.lateral
  error_clip = "none"         # the string "none" is None
  [fit]                       # keyword arguments of fit
  epochs = 2
  [grid]                      # swept: every combination of these lists
  lr = [0.02, 0.05]
  k = [1, 3]
  [data]
  loader = "digit_tapestry_frames"   # a function of sdf.data, with its arguments:
  n_frames = 2000
  source = "generated"
  # file = "frames.npy"      # instead: a .npy file (memory-mapped by every worker, shape (n, D))
  # file = "digits.npz"      # or a .npz file, with key = "X" and labels = "y"
  # use_labels = true        # pass labels to fit and hold out a part (default: when fit needs them)
  # n_samples = 1000         # only the first N inputs
  [run]
  seeds = [0, 1]
  metrics = ["reconstruction_error", "dead_units", "quantization_error", "topographic_error"]
  plot = "reconstruction_error"      # the metric of the picture (default: the first)
  # test_fraction = 0.2      # labelled data: held-out part the metrics see
  # threads_per_run = 1      # default: a machine's CPUs / its workers' task slots
  # workers = 2              # default of --workers;  scheduler = "tcp://..." of --scheduler
  # out = "sweep_out"        # default of --out

Lists become tuples (grid = [10, 10]), a one-key table { box = {...} } calls that function of
sparsedream_fast.lateral, { file = "W0.npy" } loads an array. Metrics are functions of
sparsedream_fast.metrics (default: reconstruction_error, dead_units, usage_entropy,
quantization_error, topographic_error for maps; accuracy for classifiers).

Writes into --out: sweep.csv (sweep.parquet with pyarrow), <plot metric>.png, runs/ (one
JSON file per finished run: a rerun with the same --out resumes). Exit status 2 for a bad
configuration (before any run), 1 when some runs failed, else 0.
"""


class ConfigError(ValueError):
    """A bad sweep file (exit status 2)."""


def add_arguments(parser) -> None:
    """Options of ``sparsedream sweep``."""
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("config", metavar="CONFIG.toml", help="the sweep file (format below)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", default=None,
                       help="run on this Dask scheduler's workers (default: a LocalCluster here)")
    where.add_argument("--workers", type=int, metavar="N", default=None,
                       help="worker processes of the LocalCluster (default: [run] workers, else the CPUs here)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="output folder (default: [run] out, else sweep_out)")
    parser.add_argument("--connect-timeout", type=float, metavar="SECONDS", default=10.0,
                        help="how long to try to reach --scheduler (default: 10)")
    parser.add_argument("--retry-errors", action="store_true",
                        help="run again the runs whose stored row holds an error")


# ------------------------------------------------------------------------ the file
def _value(v, where):
    """A TOML value as a parameter value ("none" -> None, lists -> tuples, calls)."""
    import sparsedream_fast as sdf
    if isinstance(v, str) and v.strip().lower() in ("none", "null"):
        return None
    if isinstance(v, list):
        return tuple(_value(x, where) for x in v)
    if isinstance(v, dict):
        if len(v) != 1:
            raise ConfigError(f"{where}: a table value must have one key (a function of sparsedream_fast.lateral, "
                              f"or file), got {sorted(v)}")
        (fn, arg), = v.items()
        if fn == "file":
            from .train import _load_array
            try:
                return _load_array(arg, what=where)
            except (FileNotFoundError, ValueError) as exc:
                raise ConfigError(str(exc)) from None
        if fn not in sdf.lateral.__all__ or not callable(getattr(sdf.lateral, fn)):
            raise ConfigError(f"{where}: {fn!r} is not a function of sparsedream_fast.lateral "
                              f"({', '.join(n for n in sdf.lateral.__all__ if n.islower())})")
        if not isinstance(arg, dict):
            raise ConfigError(f"{where}: {fn} takes a table of arguments, got {arg!r}")
        try:
            return getattr(sdf.lateral, fn)(**{k: _value(x, where) for k, x in arg.items()})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {fn}(...): {exc}") from None
    return v


def _estimator_class(name):
    import sparsedream_fast as sdf
    names = [n for n in sdf.__all__ if isinstance(getattr(sdf, n), type) and hasattr(getattr(sdf, n), "fit")]
    for n in names:
        if n.lower() == str(name).lower():
            return getattr(sdf, n)
    raise ConfigError(f"unknown estimator {name!r}; choose one of {', '.join(names)}")


def load_config(path) -> dict:
    """Read and check a sweep file; returns its tables (values converted, see EPILOG)."""
    from .train import load_toml
    doc = load_toml(path)
    for table, value in doc.items():
        if table not in SECTIONS:
            tables = ", ".join(f"[{s}]" for s in SECTIONS)
            raise ConfigError(f"{path}: unknown table [{table}]; a sweep file has {tables}")
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {table} must be a table [{table}]")
        allowed = SECTIONS[table]
        if allowed is not None:
            unknown = sorted(set(value) - set(allowed)) if table != "data" or "loader" not in value else []
            if unknown:
                raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)} in [{table}]; "
                                  f"it takes {', '.join(allowed)}")
    for table in ("estimator", "data"):
        if table not in doc:
            raise ConfigError(f"{path}: no [{table}] table")
    est = dict(doc["estimator"])
    if "name" not in est:
        raise ConfigError(f"{path}: [estimator] needs name = \"SparseDream\" (or another estimator)")
    cfg = dict(estimator_class=_estimator_class(est.pop("name")),
               params={k: _value(v, f"[estimator] {k}") for k, v in est.items()},
               fit={k: _value(v, f"[fit] {k}") for k, v in doc.get("fit", {}).items()},
               data=dict(doc["data"]), run=dict(doc.get("run", {})))
    grid = {}
    for k, v in doc.get("grid", {}).items():
        if not isinstance(v, list) or not v:
            raise ConfigError(f"{path}: [grid] {k} must be a non-empty list of values, got {v!r}")
        grid[k] = [_value(x, f"[grid] {k}") for x in v]
    cfg["grid"] = grid
    return cfg


# ------------------------------------------------------------------------ the data
def _load_data(spec, base_dir, want_labels):
    """(X or a .npy path, y or None, description) from the [data] table."""
    from .. import data as D
    spec = dict(spec)
    n = spec.pop("n_samples", None)
    flatten = spec.pop("flatten", True)
    use_labels = spec.pop("use_labels", None)
    want = want_labels if use_labels is None else bool(use_labels)
    if "loader" in spec:
        name = spec.pop("loader")
        for k in ("file", "key", "labels"):
            if k in spec:
                raise ConfigError(f"[data] takes loader or file, not both ({k})")
        fn = getattr(D, str(name), None) if str(name) in D.__all__ else None
        if not callable(fn):
            loaders = [x for x in D.__all__ if callable(getattr(D, x)) and (x.startswith("load") or x in (
                "digit_tapestry_frames", "generated_digits"))]
            raise ConfigError(f"unknown data loader {name!r}; sparsedream_fast.data has {', '.join(loaders)}")
        try:
            out = fn(**{k: _value(v, f"[data] {k}") for k, v in spec.items()})
        except TypeError as exc:
            raise ConfigError(f"[data] {name}(...): {exc}") from None
        parts = out if isinstance(out, tuple) else (out,)
        X = np.asarray(parts[0])
        y = None
        if len(parts) > 1 and isinstance(parts[1], np.ndarray) and parts[1].shape[:1] == X.shape[:1]:
            y = parts[1]
        info = f"{name}({', '.join(f'{k}={v!r}' for k, v in spec.items())})"
    elif "file" in spec:
        path = os.path.join(base_dir, os.fspath(spec["file"]))
        if not os.path.exists(path):
            raise ConfigError(f"data file not found: {path}")
        if path.endswith(".npy") and n is None:
            A = np.load(path, mmap_mode="r")
            if A.ndim != 2:
                raise ConfigError(f"{path}: a .npy file is memory-mapped as it is and must have shape (n, D), "
                                  f"got {A.shape}")
            if want:
                raise ConfigError(f"{path}: a .npy file holds no labels; use a .npz file with labels = \"y\"")
            return path, None, f"{path} {A.shape} (memory-mapped by every worker)"
        from .train import _load_array
        try:
            X = _load_array(path, spec.get("key"))
            y = None
            if path.endswith(".npz"):
                with np.load(path, allow_pickle=False) as z:
                    lab = spec.get("labels", "y" if "y" in z.files else None)
                    if lab is not None:
                        if lab not in z.files:
                            raise ConfigError(f"{path} has no labels {lab!r}; it holds {z.files}")
                        y = z[lab]
        except (FileNotFoundError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
        info = f"{path}"
    else:
        raise ConfigError("[data] needs loader = \"...\" (a function of sparsedream_fast.data) or file = \"...\"")
    if X.ndim > 2 and flatten:
        X = X.reshape(X.shape[0], -1)
    if n is not None:
        X = X[:int(n)]
        y = None if y is None else y[:int(n)]
    if want and y is None:
        raise ConfigError(f"the data {info} have no labels, and the estimator's fit needs them")
    if not want:
        y = None
    return X, y, f"{info}: {X.shape[0]:,} inputs of shape {X.shape[1:]}"


def _needs_labels(cls) -> bool:
    p = inspect.signature(cls.fit).parameters.get("y")
    return p is not None and p.default is inspect.Parameter.empty


# ------------------------------------------------------------------------ run
def _write_table(df, out):
    """sweep.csv, and sweep.parquet when pyarrow is there; returns the paths."""
    paths = [os.path.join(out, "sweep.csv")]
    df.to_csv(paths[0], index=False)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return paths
    flat = df.copy()
    for c in flat.columns:
        if flat[c].dtype == object and not all(v is None or isinstance(v, str) for v in flat[c]):
            flat[c] = [None if v is None else str(v) for v in flat[c]]
    paths.append(os.path.join(out, "sweep.parquet"))
    flat.to_parquet(paths[1], index=False)
    return paths


def run(args) -> int:
    """Run a parameter sweep from a TOML file on a Dask cluster (a LocalCluster of processes
    here by default); write its table (CSV, Parquet with pyarrow), a picture of a metric
    against the swept parameters, and a per-run store from which a rerun resumes."""
    import sparsedream_fast as sdf
    from .. import plot
    try:
        sdf.sweep._require_extra()
        cfg = load_config(args.config)
        rc = cfg["run"]
        base_dir = os.path.dirname(os.path.abspath(args.config))
        cls = cfg["estimator_class"]
        X, y, info = _load_data(cfg["data"], base_dir, _needs_labels(cls))
        params = dict(cfg["params"])
        names = inspect.signature(cls.__init__).parameters
        if "n_inputs" in names and "n_inputs" not in params and "n_inputs" not in cfg["grid"]:
            params["n_inputs"] = int(np.prod(np.shape(X)[1:] if not isinstance(X, str)
                                             else np.load(X, mmap_mode="r").shape[1:]))
        if "n_classes" in names and "n_classes" not in params and y is not None:
            params["n_classes"] = int(np.max(y)) + 1
        try:
            estimator = cls(**params)
        except TypeError as exc:
            raise ConfigError(f"[estimator] {cls.__name__}: {exc}") from None
        out = args.out or rc.get("out") or "sweep_out"
        scheduler = args.scheduler or (rc.get("scheduler") if args.workers is None else None)
        workers = args.workers if args.workers is not None else rc.get("workers")
        metrics = rc.get("metrics", "auto")
        mets = sdf.sweep.resolve_metrics(metrics, estimator)
        plot_metric = rc.get("plot", mets[0][0] if mets else "fit_seconds")
        known = [n for n, _ in mets] + ["fit_seconds", "eval_seconds", "steps_per_second"]
        if plot_metric not in known:
            raise ConfigError(f"[run] plot = {plot_metric!r} is not a column of the table; choose one of "
                              f"{', '.join(known)}")
        print(f"data      : {info}")
        print(f"estimator : {estimator!r}")
        print(f"grid      : {cfg['grid']} x seeds {rc.get('seeds', [0])}")
        print(f"cluster   : {scheduler or f'LocalCluster of {workers or sdf.sweep._usable_cpus()} processes here'}")
        tty = sys.stderr.isatty()

        def line(row):
            if not tty:
                shown = ", ".join(f"{k}={row[k]!r}" for k in cfg["grid"]) + f", seed={row['seed']}"
                tail = row["error"] if row.get("error") else f"{plot_metric} = {row.get(plot_metric)}"
                print(f"run done  : {shown}: {tail}", flush=True)

        table = sdf.sweep.run(estimator, cfg["grid"], X, y, seeds=rc.get("seeds", (0,)), metrics=metrics,
                              client=scheduler, store=os.path.join(out, "runs"), fit_params=cfg["fit"],
                              test_fraction=rc.get("test_fraction", 0.2), split_seed=rc.get("split_seed", 0),
                              n_workers=workers, threads_per_run=rc.get("threads_per_run"),
                              check=bool(rc.get("check", True)), retry_errors=args.retry_errors, progress=tty,
                              on_result=line, connect_timeout=args.connect_timeout)
    except (ConfigError, sdf.sweep.SweepConfigError, ValueError, FileNotFoundError, ImportError, TypeError) as exc:
        print(f"sparsedream sweep: error: {exc}", file=sys.stderr)
        return 2
    os.makedirs(out, exist_ok=True)
    paths = _write_table(table, out)
    failed = int(table["error"].notna().sum())
    try:
        fig = plot.sweep_metric(table, plot_metric, title=f"{plot_metric}: {cls.__name__} sweep")
        paths.append(plot.save_figure(fig, os.path.join(out, f"{plot_metric}.png"), dpi=120))
    except ValueError as exc:
        print(f"no picture: {exc}")
    shown = [c for c in table.columns if c in cfg["grid"] or c == "seed" or c in known[:len(mets)]]
    print(table[shown + ["fit_seconds"]].to_string(index=False, max_rows=40))
    a = table.attrs
    print(f"runs      : {len(table)} ({a['runs_executed']} run now, {a['runs_from_store']} from {out}/runs), "
          f"{failed} failed, {a['seconds']:.1f} s")
    for p in paths:
        print(f"wrote     : {p}")
    if failed:
        for err in table.loc[table["error"].notna(), "error"].unique()[:5]:
            print(f"failed    : {err}", file=sys.stderr)
    return 1 if failed else 0
