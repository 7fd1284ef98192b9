"""benches/bench_rule_a_drive.py on a tiny run: every column the BENCHMARKS.md table needs,
the floors the issue sets, and the section of BENCHMARKS.md it rewrites between its markers."""
from __future__ import annotations

import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def bench():
    path = os.path.join(ROOT, "benches", "bench_rule_a_drive.py")
    spec = importlib.util.spec_from_file_location("bench_rule_a_drive", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_floors(bench):
    row = dict(backend="cpp", block=None, data="tapestry", grid=[80, 80], threads=1, steps_per_s=4000.0)
    assert bench._target(row, dict(steps_per_s=1000.0), None).endswith("met")
    assert bench._target(row, dict(steps_per_s=2000.0), None).endswith("MISSED")
    two = dict(row, threads=2, steps_per_s=60_000.0)
    assert bench._target(two, None, None) == ">= 50,000 steps/s: met"
    dense = dict(row, data="dense", threads=2)
    assert bench._target(dense, None, dict(steps_per_s=5000.0)).endswith("MISSED")
    assert bench._target(dict(row, block=0), None, None) == "-"


@pytest.mark.slow
def test_tiny_run_writes_table_and_benchmarks_section(bench, tmp_path):
    pytest.importorskip("matplotlib")
    md = tmp_path / "BENCHMARKS.md"
    md.write_text(f"# B\n\nbefore\n\n{bench.MARK_BEGIN}\nold text\n{bench.MARK_END}\n\nafter\n")
    out = tmp_path / "out"
    rc = bench.main(["--grids", "8", "--seconds", "0.02", "--repeat", "1", "--no-dense-data", "--out", str(out),
                     "--benchmarks", str(md)])
    assert rc == 0
    res = json.loads((out / "drive.json").read_text())
    assert res["machine"]["bandwidth_bytes_per_s"] > 0
    kinds = {(r["backend"], r.get("block"), r["threads"]) for r in res["rows"]}
    assert {("cpp", None, 1), ("cpp", None, 2), ("cpp", 0, 1), ("numba", None, 1)} <= kinds
    for r in res["rows"]:
        assert r["check"] == "ok" and r["nnz"] > 0 and r["steps_per_s"] > 0 and r["peak_mb"] >= 0
    text = md.read_text()
    assert "old text" not in text and text.startswith("# B\n\nbefore") and text.rstrip().endswith("after")
    assert "Machine: " in text and "x numpy W@v" in text and "floor held to" in text and "drive.png" in text
    assert (out / "drive.png").exists()


def _avx2_rows():
    with open(os.path.join(ROOT, "docs", "benchmarks", "cpu", "avx2", "drive.json")) as f:
        res = json.load(f)
    fits = {(tuple(r["grid"]), r["threads"]): r for r in res["rows"]
            if r.get("kind") == "fit" and r["backend"] == "cpp" and r.get("block") is None and r["data"] == "tapestry"}
    floors = {(tuple(r["grid"]), r["threads"]): r for r in res["floors"]}
    return res, fits, floors


def test_avx2_table_is_the_stored_run():
    """BENCHMARKS.md's AVX2 table and the README's AVX2 sentence quote
    docs/benchmarks/cpu/avx2/drive.json: steps/s and the ratio to numpy's W @ v of that run."""
    res, fits, floors = _avx2_rows()
    assert res["machine"]["Model name"] == "AMD EPYC" and "avx2" in res["machine"]["build"]
    with open(os.path.join(ROOT, "BENCHMARKS.md")) as f:
        text = f.read()
    section = text[text.index("### The same on an AVX2 machine"):]
    section = section[:section.index("\n## ")]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "x" in line.split("|")[1]
            and line.split("|")[2].strip().isdigit()]
    assert len(rows) == len(fits) == 14
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        g = int(cells[0].split("x")[0])
        r = fits[((g, g), int(cells[1]))]
        assert int(cells[2].replace(",", "")) == round(r["steps_per_s"])
        ratio = r["steps_per_s"] / floors[((g, g), int(cells[1]))]["steps_per_s"]
        assert float(cells[3]) == pytest.approx(ratio, abs=0.006)
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    for key in [((80, 80), 1), ((80, 80), 2), ((200, 200), 1), ((200, 200), 2), ((1000, 1000), 1), ((1000, 1000), 2)]:
        assert f"{round(fits[key]['steps_per_s']):,}" in readme
