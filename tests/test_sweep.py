"""sdf.sweep and ``sparsedream sweep`` on LocalClusters of worker processes on 127.0.0.1.

Every test bounds its own time (``time_limit``: SIGALRM raises in the test) and shuts down
the clusters it starts; the shared cluster of the module is shut down after its last test.
The rows a cluster computes are compared, bit for bit, with the same runs in this process.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket

import numpy as np
import pytest

import dask
import distributed
import pandas as pd
from sklearn.base import clone

import sparsedream_fast as sdf
from sparsedream_fast import cli, sweep
from sparsedream_fast import data as sdf_data
from sparsedream_fast.cli import sweep as cli_sweep

from sweep_helpers import distinct_data_objects  # noqa: E402  (conftest puts tests/ on sys.path)

GRID = {"lr": [0.02, 0.05], "k": [1, 3]}
SEEDS = [0, 1]
FIT = {"epochs": 2}
METRICS = ["reconstruction_error", "dead_units", "usage_entropy", "quantization_error", "topographic_error"]
EXAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "sweep_maps.toml")


@contextlib.contextmanager
def time_limit(seconds):
    """Raise TimeoutError in the test when it runs longer than ``seconds``."""
    def expire(signum, frame):
        raise TimeoutError(f"the test ran longer than {seconds} s")
    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def local_cluster(n=2):
    import logging
    here = os.path.dirname(os.path.abspath(__file__))   # the workers import sweep_helpers from here
    path = os.pathsep.join([here] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
    return distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                    dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL, env={"PYTHONPATH": path})


@pytest.fixture(scope="module")
def client():
    with time_limit(120):
        cluster = local_cluster(2)
        c = distributed.Client(cluster)
    yield c
    with time_limit(60):
        c.close()
        cluster.close()


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).random((300, 36))


def estimator(**kw):
    return sdf.SparseDream(**dict(dict(n_inputs=36, grid=(6, 6), k=2, lr=0.05, init=(0.1, 0.3),
                                       backend="cpp", seed=0), **kw))


def sequential(est, X, grid=GRID, seeds=SEEDS, fit=FIT, metrics=METRICS, X_eval=None, y=None, y_eval=None):
    """The same runs in this process, one after another: {(params..., seed): {metric: value}}."""
    from sklearn.model_selection import ParameterGrid
    out = {}
    for params in ParameterGrid(grid):
        for s in seeds:
            m = clone(est).set_params(**params, seed=s)
            m.fit(X, **fit) if y is None else m.fit(X, y, **fit)
            Xe, ye = (X, y) if X_eval is None else (X_eval, y_eval)
            out[tuple(params.values()) + (s,)] = {
                name: (getattr(sdf.metrics, name)(m, Xe) if ye is None else getattr(sdf.metrics, name)(m, Xe, ye))
                for name in metrics}
    return out


def assert_rows_equal(table, expected, params, metrics=METRICS):
    assert len(table) == len(expected)
    assert table["error"].isna().all(), list(table["error"])
    keys = [tuple(r[p] for p in params) + (r["seed"],) for _, r in table.iterrows()]
    assert sorted(keys) == sorted(expected)                       # every run once, none twice
    for key, (_, r) in zip(keys, table.iterrows()):
        for name in metrics:
            assert r[name] == expected[key][name], (key, name, r[name], expected[key][name])  # bit for bit


# ---------------------------------------------------------------------------- results
def test_rows_equal_sequential_runs_and_data_sent_once(client, X, tmp_path):
    est = estimator()
    expected = sequential(est, X)
    with time_limit(120):
        table = sweep.run(est, GRID, X, seeds=SEEDS, metrics=METRICS + [distinct_data_objects], client=client,
                          fit_params=FIT)
    assert list(table.columns) == ["k", "lr", "seed"] + METRICS + ["distinct_data_objects"] + list(
        sweep.RESULT_COLUMNS)
    assert_rows_equal(table, expected, ["k", "lr"])
    assert (table["distinct_data_objects"] == 1).all()        # the data came once per worker, not per task
    assert set(table["worker"]) <= set(client.scheduler_info()["workers"])
    assert (table["threads"] == 1).all()                       # 2 single-threaded processes on 2 CPUs
    assert (table["fit_seconds"] > 0).all() and (table["steps_per_second"] > 0).all()
    assert table.attrs["runs_executed"] == 8 and table.attrs["runs_from_store"] == 0
    assert est.get_params() == estimator().get_params() and not hasattr(est, "weights_")

    # a .npy path: memory-mapped once by each worker process, same rows
    path = tmp_path / "X.npy"
    np.save(path, X)
    with time_limit(60):
        table2 = sweep.run(est, GRID, str(path), seeds=SEEDS, metrics=METRICS + [distinct_data_objects],
                           client=client, fit_params=FIT)
    assert_rows_equal(table2, expected, ["k", "lr"])
    assert (table2["distinct_data_objects"] <= 2).all()        # the array of the first sweep, then the map


def test_local_cluster_keeps_glibc_malloc_defaults():
    # Dask's nannies set MALLOC_TRIM_THRESHOLD_ (every large temporary then mapped afresh:
    # the metrics 18% slower); the sweep's own cluster removes it and keeps Dask's other settings
    before = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    keys = ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")
    with time_limit(120):
        with sweep.local_cluster(1) as cluster, distributed.Client(cluster) as c:
            # os.getenv travels by reference (a function of this test module would not import there)
            envs = [{k: v for k, v in zip(keys, vals)}
                    for vals in zip(*(c.run(os.getenv, k).values() for k in keys))]
            info = c.scheduler_info()["workers"]
    assert envs == [{"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}]
    assert [w["nthreads"] for w in info.values()] == [1]
    assert all(addr.startswith("tcp://127.0.0.1:") for addr in info)
    assert dask.config.get("distributed.nanny.pre-spawn-environ") == before  # the caller's config is left alone
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(sweep.SweepConfigError, match="n_workers"):
            sweep.local_cluster(bad)


def test_classifier_accuracy_on_held_out_part(client):
    from sklearn.model_selection import train_test_split
    X, y = sdf_data.load_digits_sklearn()                       # 1,797 8 x 8 digits
    est = sdf.DreamComp(n_inputs=64, n_neurons=40, n_classes=10, batch_size=50, backend="cpp")
    grid = {"lr": [0.005, 0.02]}
    with time_limit(60):
        table = sweep.run(est, grid, X, y, seeds=[0, 1], client=client, fit_params={"epochs": 3})
    assert list(table.columns[:3]) == ["lr", "seed", "accuracy"]
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=0)
    expected = sequential(est, X_tr, grid, [0, 1], {"epochs": 3}, ["accuracy"], X_te, y_tr, y_te)
    assert_rows_equal(table, expected, ["lr"], ["accuracy"])
    assert table["accuracy"].max() > 0.5                        # it learned (chance: 0.1)


# ------------------------------------------------------------------------------ store
class Stop(Exception):
    pass


def test_stopped_sweep_resumes_to_the_same_table(client, X, tmp_path):
    est = estimator()
    store = tmp_path / "store"
    seen = []

    def stop_half_way(row):
        seen.append(row)
        if len(seen) == 4:
            raise Stop()
    with time_limit(120):
        with pytest.raises(Stop):
            sweep.run(est, GRID, X, seeds=SEEDS, metrics=METRICS, client=client, store=store, fit_params=FIT,
                      on_result=stop_half_way)
        assert len(list(store.glob("*.json"))) == 4
        resumed = sweep.run(est, GRID, X, seeds=SEEDS, metrics=METRICS, client=client, store=store,
                            fit_params=FIT)
    assert resumed.attrs["runs_from_store"] == 4 and resumed.attrs["runs_executed"] == 4
    assert len(list(store.glob("*.json"))) == 8
    assert_rows_equal(resumed, sequential(est, X), ["k", "lr"])
    # complete: nothing runs, no cluster is even asked for, and the table is the same one
    again = sweep.run(est, GRID, X, seeds=SEEDS, metrics=METRICS, client="tcp://127.0.0.1:1", store=store,
                      fit_params=FIT)
    assert again.attrs["runs_executed"] == 0
    pd.testing.assert_frame_equal(again, resumed)
    # anything that changes a run's result changes its key: nothing is taken from the store
    other = sweep.run(est, GRID, X, seeds=[0], metrics=METRICS, client=client, store=store, fit_params={"epochs": 1})
    assert other.attrs["runs_from_store"] == 0


def test_a_failing_run_records_its_error_and_the_sweep_goes_on(client, X, tmp_path):
    est = estimator()
    grid = {"k": [2, 99]}                                       # k = 99 > 36 neurons: refused by fit
    with time_limit(60):
        table = sweep.run(est, grid, X, seeds=[0], metrics=METRICS, client=client, store=tmp_path,
                          fit_params=FIT, check=False)
    ok, bad = table.iloc[0], table.iloc[1]
    assert pd.isna(ok["error"]) and np.isfinite(ok["reconstruction_error"])
    assert bad["error"].startswith("ValueError: k must be between 1 and the number of neurons")
    assert np.isnan(bad["reconstruction_error"])
    # stored with its error: a rerun does not run it again, unless asked to
    again = sweep.run(est, grid, X, seeds=[0], metrics=METRICS, client="tcp://127.0.0.1:1", store=tmp_path,
                      fit_params=FIT, check=False)
    assert again.attrs["runs_executed"] == 0 and again["error"].iloc[1] == bad["error"]
    with time_limit(60):
        retried = sweep.run(est, grid, X, seeds=[0], metrics=METRICS, client=client, store=tmp_path,
                            fit_params=FIT, check=False, retry_errors=True)
    assert retried.attrs["runs_executed"] == 1


# ------------------------------------------------------------------------------ faults
def test_a_killed_worker_loses_no_run_and_duplicates_none(X):
    est = estimator(grid=(12, 12))
    fit = {"epochs": 200}                                          # runs long enough to be cut short
    with time_limit(180):
        cluster = local_cluster(2)
        try:
            with distributed.Client(cluster) as c:
                pids = c.run(os.getpid)
                killed = []

                def kill_the_other_worker(row):
                    if not killed:                                  # mid-sweep: 7 runs still to come
                        victim = next(a for a in pids if a != row["worker"])
                        os.kill(pids[victim], signal.SIGKILL)
                        killed.append(victim)
                table = sweep.run(est, GRID, X, seeds=SEEDS, metrics=METRICS, client=c, fit_params=fit,
                                  on_result=kill_the_other_worker)
                workers_after = set(c.scheduler_info()["workers"])
        finally:
            cluster.close()
    assert killed and killed[0] not in workers_after
    assert_rows_equal(table, sequential(est, X, fit=fit), ["k", "lr"])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bad_configuration_fails_before_any_run(client, X, tmp_path):
    est = estimator()
    nowhere = f"tcp://127.0.0.1:{free_port()}"
    cases = [
        (dict(grid={"kk": [1, 2]}), "(?i)invalid parameter 'kk'"),
        (dict(grid={"seed": [1, 2]}), "swept by seeds="),
        (dict(metrics=["no_such_metric"]), "unknown metric 'no_such_metric'"),
        (dict(metrics=["accuracy"]), "metric accuracy needs labels"),
        (dict(fit_params={"epochz": 2}), "has no argument 'epochz'"),
        (dict(X=str(tmp_path / "missing.npy")), "data file not found"),
        (dict(seeds=[0, 0]), "seeds repeat"),
        (dict(estimator=object()), "get_params, set_params and fit"),
    ]
    for kw, message in cases:
        args = dict(estimator=est, grid=GRID, X=X, seeds=SEEDS, metrics=METRICS, client=nowhere,
                    store=tmp_path / "store", fit_params=FIT)
        args.update(kw)
        with pytest.raises(sweep.SweepConfigError, match=message):
            sweep.run(**args)
    with time_limit(30):
        with pytest.raises(sweep.SweepConfigError, match="cannot reach the Dask scheduler"):
            sweep.run(est, GRID, X, client=nowhere, connect_timeout=1)
    # a value the estimator refuses: found by the check on the cluster, before any run
    ran = []
    with time_limit(60):
        with pytest.raises(sweep.SweepConfigError, match=r"refuses k=0.*k must be between 1"):
            sweep.run(est, {"k": [1, 0]}, X, client=client, store=tmp_path / "store", fit_params=FIT,
                      on_result=ran.append)
    assert ran == [] and list((tmp_path / "store").glob("*.json")) == []


# ------------------------------------------------------------------- scikit-learn
def test_gridsearchcv_on_the_dask_backend(client):
    import joblib
    from sklearn.model_selection import GridSearchCV
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 200)
    X = np.clip(rng.random((200, 8)) * 0.4 + y[:, None] * 0.5, 0, 1)
    search = lambda: GridSearchCV(sdf.DreamComp(n_inputs=8, n_neurons=6, n_classes=2, batch_size=20, backend="cpp"),
                                  {"lr": [0.01, 0.05], "n_neurons": [4, 6]}, cv=2)
    transitions = lambda: client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)
    before = transitions()
    with time_limit(90):
        with joblib.parallel_config(backend="dask"):
            on_dask = search().fit(X, y)
    assert transitions() > before                               # the fits ran as tasks on the cluster
    here = search().fit(X, y)
    assert on_dask.best_params_ == here.best_params_
    np.testing.assert_array_equal(on_dask.cv_results_["mean_test_score"], here.cv_results_["mean_test_score"])


# ---------------------------------------------------------------------------- the CLI
def test_cli_runs_the_example_and_writes_table_and_picture(tmp_path, capsys):
    out = tmp_path / "out"
    with time_limit(180):
        assert cli.main(["sweep", EXAMPLE, "--workers", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    table = pd.read_csv(out / "sweep.csv")
    assert len(table) == 8 and table["error"].isna().all()
    assert list(table.columns[:7]) == ["k", "lr", "seed", "reconstruction_error", "dead_units",
                                       "quantization_error", "topographic_error"]
    from PIL import Image
    img = np.asarray(Image.open(out / "reconstruction_error.png").convert("L"), dtype=float)
    assert img.std() > 10                                          # a picture, not a blank
    assert len(list((out / "runs").glob("*.json"))) == 8
    assert str(out / "sweep.csv") in text and "8 run now" in text
    # the same rows as the runs in this process
    cfg = cli_sweep.load_config(EXAMPLE)
    Xd, _ = sdf_data.digit_tapestry_frames(n_frames=2000, source="generated")
    est = sdf.SparseDream(n_inputs=400, **cfg["params"])
    expected = sequential(est, Xd, cfg["grid"], [0, 1], cfg["fit"], list(table.columns[3:7]))
    for _, r in table.iterrows():
        exp = expected[(r["k"], r["lr"], r["seed"])]
        for name, v in exp.items():
            assert np.isclose(r[name], v, rtol=1e-15, atol=0), name   # CSV keeps 16+ digits
    # again: everything comes from the store, nothing runs, no cluster is started
    assert cli.main(["sweep", EXAMPLE, "--scheduler", "tcp://127.0.0.1:1", "--out", str(out)]) == 0
    assert "0 run now, 8 from" in capsys.readouterr().out


def test_cli_bad_configuration_exit_status_2(client, tmp_path, capsys):
    base = open(EXAMPLE).read()
    scheduler = client.scheduler.address
    cases = [
        (base.replace('name = "SparseDream"', 'name = "SparseDreem"'), "unknown estimator 'SparseDreem'"),
        (base.replace("k = [1, 3]", "kk = [1, 3]"), "invalid parameter 'kk'"),
        (base.replace("[run]", "[runs]"), "unknown table [runs]"),
        (base.replace('loader = "digit_tapestry_frames"', 'file = "missing.npy"').replace(
            "n_frames = 2000\n", "").replace('source = "generated"\n', ""), "data file not found"),
        (base.replace("k = [1, 3]", "k = [1, 0]"), "refuses k=0"),
    ]
    for i, (text, message) in enumerate(cases):
        cfg = tmp_path / f"bad{i}.toml"
        cfg.write_text(text)
        with time_limit(60):
            rc = cli.main(["sweep", str(cfg), "--scheduler", scheduler, "--out", str(tmp_path / f"out{i}")])
        err = capsys.readouterr().err
        assert rc == 2 and message.lower() in err.lower(), (message, err)
        assert not (tmp_path / f"out{i}" / "sweep.csv").exists()
        assert list((tmp_path / f"out{i}").glob("runs/*.json")) == []
    with time_limit(30):
        rc = cli.main(["sweep", EXAMPLE, "--scheduler", f"tcp://127.0.0.1:{free_port()}", "--connect-timeout", "1",
                       "--out", str(tmp_path / "nowhere")])
    assert rc == 2 and "cannot reach the Dask scheduler" in capsys.readouterr().err


def test_sweep_picture_one_and_two_parameters():
    rows = [dict(lr=lr, k=k, seed=s, m=lr * k + s * 0.01) for lr in (0.1, 0.2, 0.4) for k in (1, 2) for s in (0, 1)]
    table = pd.DataFrame(rows)
    fig = sdf.plot.sweep_metric(table, "m")                       # two swept: heat map
    ax = fig.axes[0]
    assert ax.get_xlabel() == "k" and ax.get_ylabel() == "lr"
    shown = sorted(float(t.get_text()) for t in ax.texts)
    assert shown == pytest.approx(sorted(lr * k + 0.005 for lr in (0.1, 0.2, 0.4) for k in (1, 2)))
    fig1 = sdf.plot.sweep_metric(table[table.k == 1], "m")        # one swept: a line of the means
    ax1 = fig1.axes[0]
    x, ym = ax1.lines[0].get_data()
    assert list(x) == [0.1, 0.2, 0.4] and list(ym) == pytest.approx([0.105, 0.205, 0.405])
    assert ax1.get_xlabel() == "lr"
    import matplotlib.pyplot as plt
    plt.close("all")
    with pytest.raises(ValueError, match="not a sweep table"):
        sdf.plot.sweep_metric(table, "nope")


def test_docs_cluster_config_removes_malloc_trim():
    """docs/sweeps.md's YAML for a user's own cluster names the key local_cluster sets."""
    import re

    import yaml
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "sweeps.md")) as f:
        blocks = re.findall(r"^```yaml\n(.*?)^```", f.read(), re.S | re.M)
    assert len(blocks) == 1
    cfg = dask.config.merge(dask.config.config, yaml.safe_load(blocks[0]))
    env = dask.config.get("distributed.nanny.pre-spawn-environ", config=cfg)
    assert "MALLOC_TRIM_THRESHOLD_" in env and env["MALLOC_TRIM_THRESHOLD_"] is None
    assert dask.config.get("distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_") is not None  # Dask's default
