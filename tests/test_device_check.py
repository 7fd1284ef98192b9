"""tools/device_check.sh, the one call on a lent GPU machine, must not fail on a typo there.

The script parses; its dry run (no build, two test files, the CUDA kernels on the CPU
emulator at tiny sizes) runs every step and writes at most 8 files with a summary that says
its figures mean nothing; the time budget skips steps instead of overrunning; the summary
reports failures it is given; the sanitizer fits notice a wrong result.
"""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tools", "device_check.sh")


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "tools", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(tmp_path, *args, **env):
    out = tmp_path / "out"
    full = dict(os.environ, OUT=str(out), PY=sys.executable, TMPDIR=str(tmp_path), **env)
    res = subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, env=full, timeout=600)
    return res, out


def test_the_script_parses():
    res = subprocess.run(["bash", "-n", SCRIPT], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_an_unknown_mode_is_refused(tmp_path):
    res, _ = _run(tmp_path, "fast")
    assert res.returncode == 2 and "usage" in res.stderr


def test_no_time_left_skips_every_step_and_still_summarizes(tmp_path):
    res, out = _run(tmp_path, "dry-run", DC_BUDGET_S="25")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    summary = (out / "summary.txt").read_text()
    assert summary.splitlines()[-1] == res.stdout.strip().splitlines()[-2]  # printed last (before the file list)
    r = json.loads((out / "results.json").read_text())
    assert {s["step"]: s["status"] for s in r["steps"]} == dict.fromkeys(
        ["build", "info", "tests", "sanitize", "rule_a", "batch", "tnn"], "skipped")
    assert any("no time left" in s["note"] for s in r["steps"])


@pytest.mark.slow
def test_dry_run_runs_every_step(tmp_path):
    pytest.importorskip("sparsedream_fast._cuda_emu", reason="the dry run runs the CUDA kernels on the emulator, "
                                                              "not built here (SPARSEDREAM_CUDA_EMULATOR=OFF)")
    res, out = _run(tmp_path, "dry-run")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    files = sorted(os.listdir(out))
    assert len(files) <= 8 and {"summary.txt", "machine.txt", "results.json", "logs.tar.gz"} <= set(files)
    summary = (out / "summary.txt").read_text()
    assert "REHEARSAL" in summary and "figures mean nothing" in summary
    last = res.stdout.rstrip().splitlines()[-1]
    assert last.startswith("files in OUT:") and all(f in last.split() for f in files)
    r = json.loads((out / "results.json").read_text())
    assert r["mode"] == "dry-run" and r["rehearsal"] is True
    status = {s["step"]: s["status"] for s in r["steps"]}
    assert status == dict(build="skipped", info="ok", tests="ok", sanitize="ok", rule_a="ok", batch="ok", tnn="ok")
    assert r["info"]["emulated"] is True
    assert r["tests"]["counts"]["passed"] > 0 and r["tests"]["counts"].get("failed", 0) == 0
    assert [row["cuda_check"] for row in r["rule_a"]["table"]] == ["ok"]
    # the cupy baselines ran, on the numpy stand-in, after their checks against the reference
    assert r["info"]["cupy"].startswith("numpy stand-in")
    assert r["rule_a"]["notebook_cupy_check"] == "ok" and r["rule_a"]["table"][0]["notebook_cupy"] > 0
    assert r["batch"]["notebook_cupy_check"] == {"dreamcomp": "ok", "krotov": "ok"}
    assert {row["rule"] for row in r["batch"]["table"]} == {"dreamcomp", "krotov"}
    assert all(row["notebook_cupy_s"] > 0 and row["x_floor"] > 0 for row in r["batch"]["table"])
    assert [row["check"] for row in r["tnn"]["rows"]] == ["ok", "ok"]
    assert "not judged (rehearsal)" in summary and "MISSED" not in summary


def test_the_summary_reports_failures(tmp_path):
    work = tmp_path / "work"
    (work / "sanitize").mkdir(parents=True)
    (work / "steps.tsv").write_text("build\tok\t80\texit 0\ntests\tFAIL\t99\texit 1\nbatch\ttimeout\t150\texit 124\n")
    (work / "junit.xml").write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_x" name="test_a[cuda-float32]"><failure message="W differs"/></testcase>'
        '<testcase classname="tests.test_x" name="test_b[cuda]"><skipped message="no GPU"/></testcase>'
        '<testcase classname="tests.test_x" name="test_c"/></testsuite></testsuites>')
    (work / "sanitize" / "status.txt").write_text("memcheck rule_a 86\nracecheck rule_a 0\n")
    (work / "sanitize" / "memcheck-rule_a.txt").write_text("========= ERROR SUMMARY: 3 errors\n")
    out = tmp_path / "out"
    out.mkdir()
    assert _tool("device_summary").main(["--work", str(work), "--out", str(out), "--mode", "gpu"]) == 0
    text = (out / "summary.txt").read_text()
    assert "1 passed, 1 failed" in text and "FAILED tests.test_x::test_a[cuda-float32]: W differs" in text
    assert "cuda skipped x1: no GPU" in text
    assert "memcheck  rule_a    ERRORS (sanitizer)  [ERROR SUMMARY: 3 errors]" in text
    assert "racecheck rule_a    ok" in text
    assert "1 steps ok, 2 failed or timed out (tests, batch)" in text
    assert "REHEARSAL" not in text and "rule A: not measured" in text


def test_the_fits_notice_a_wrong_result():
    close = _tool("cuda_fits")._close
    want = np.random.default_rng(0).random((4, 5))
    assert close(want * (1 + 1e-11), want, "float64") is None
    assert close(want * (1 + 1e-5), want, "float32") is None
    assert "tolerance" in close(want * (1 + 1e-3), want, "float32")
    assert "tolerance" in close(want * (1 + 1e-7), want, "float64")
    assert close(np.full_like(want, np.nan), want, "float64") == "non-finite values"
    assert "shape" in close(want[:3], want, "float64")


def test_the_cupy_stand_in_keeps_what_a_typo_trips_over():
    """Device arrays of their own type, host arrays copied by asarray, host/device mixes refused."""
    cp = _tool("numpy_cupy")
    host = np.random.default_rng(1).random((3, 4))
    dev = cp.asarray(host)
    dev += 1.0  # on the device: the caller's host array must not change (cupy copies it)
    assert np.array_equal(dev.get(), host + 1.0) and not np.shares_memory(dev.view(np.ndarray), host)
    assert cp.asarray(dev) is dev and type(dev.get()) is np.ndarray
    for got in (dev @ dev.T, cp.sum(dev, axis=0), dev.max(), cp.arange(3), cp.zeros((2, 2)), np.argsort(dev)):
        assert isinstance(got, cp.ndarray), type(got)
    for mixed in (lambda: dev + host, lambda: cp.dot(dev, host.T), lambda: np.concatenate([dev, host])):
        with pytest.raises(TypeError, match="host numpy.ndarray"):
            mixed()
    assert isinstance(dev * 2.0 + np.float64(1), cp.ndarray)  # scalars mix, as in cupy


def test_the_cupy_baselines_run_on_a_numpy_stand_in():
    """The notebooks' loops on cupy and their checks, which only a GPU runs, on numpy_cupy."""
    cp = _tool("numpy_cupy")

    from sparsedream_fast.bench import measure_notebook
    gb = _tool("gpu_benches")
    assert gb._check_notebook_cupy(cp) == "ok"
    assert gb._check_notebooks_cupy(cp) == {"dreamcomp": "ok", "krotov": "ok"}
    frames = np.random.default_rng(0).random((64, 400))
    opts = dict(seed=0, seconds=0.01, steps=3, repeat=1, notebook_max_s=5, check_notebook=True)
    row = measure_notebook((8, 8), frames, 5, True, opts, 1e10, xp=cp, name="notebook-cupy")
    assert row["backend"] == "notebook-cupy" and row["steps_per_s"] > 0


def test_the_batch_bench_takes_its_cupy_rows(monkeypatch, tmp_path):
    """bench_batch_gpu.run_case with "cupy": the notebook and floor rows, and the summary's ratios."""
    pytest.importorskip("sparsedream_fast._cuda_emu", reason="the CUDA variants run on the emulator, not built here")
    cp = _tool("numpy_cupy")

    from sparsedream_fast import _backends
    gb = _tool("gpu_benches")
    gb._benches_on_path()
    import bench_batch_gpu as bbg
    monkeypatch.setattr(bbg, "VARIANTS", bbg.VARIANTS[:1])
    with _backends.cuda_emulator():
        row = bbg.run_case("krotov", "hid8-p3-k7-B10", 8, 10, 40, 2, 1, cp)
    impls = [r["impl"] for r in row["results"]]
    assert impls[:3] == ["notebook-cupy", "floor (cupy matmul)", "floor (cupy matmul)"] and impls[3].startswith("cuda")
    (tmp_path / "batch").mkdir()
    (tmp_path / "batch" / "batch.json").write_text(json.dumps(dict(rows=[row], errors=[])))
    t = _tool("device_summary").batch(str(tmp_path))["table"][0]
    assert t["speedup"] == pytest.approx(row["results"][0]["s_per_epoch"] / row["results"][3]["s_per_epoch"])
    assert t["x_floor"] is not None and t["target"] == 30.0
