"""The summary of a ``tools/device_check.sh`` run: ``results.json`` and ``summary.txt``.

    python3 tools/device_summary.py --work WORKDIR --out OUTDIR --mode gpu|rehearse|dry-run

Reads what the script's steps left in its work folder (``steps.tsv``, the test suite's
``junit.xml``, the sanitizer logs, the benchmarks' JSON) and prints a short summary: the
steps with their status and seconds, the test counts (those with ``cuda`` in their id
apart), the sanitizer verdicts, the key figures (rule A steps/s, the batch rules' seconds
per epoch, TNN images/s, with the ratios the issue asks for and its targets) and what was
skipped and why. Standard library only: it must work when the build failed. Every part
that is missing is reported as such, never guessed.
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

#: rule A float32 steps/s targets of the issue, per grid
RULE_A_TARGETS = {"80x80": 200_000, "100x100": 150_000, "200x200": 40_000}
#: speed-up over the notebooks' code on cupy the issue asks for, per rule
BATCH_TARGETS = {"dreamcomp": 10.0, "krotov": 30.0}


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def build_times(work):
    """Seconds per file compiled by the build (build_times.txt: seconds, tab, ninja target), slowest first."""
    out = []
    try:
        with open(os.path.join(work, "build_times.txt")) as f:
            for line in f:
                sec, _, target = line.strip().partition("\t")
                out.append(dict(seconds=float(sec), target=target))
    except (OSError, ValueError):
        return None
    return out


def steps(work):
    out = []
    try:
        with open(os.path.join(work, "steps.tsv")) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 3:
                    out.append(dict(step=parts[0], status=parts[1], seconds=int(parts[2] or 0),
                                    note=parts[3] if len(parts) > 3 else ""))
    except OSError:
        pass
    return out


def tests(work):
    path = os.path.join(work, "junit.xml")
    if not os.path.exists(path):
        log = os.path.join(work, "tests.log")
        if not os.path.exists(log):
            return None
        with open(log, errors="replace") as f:
            prog = re.findall(r"\[\s*(\d+)%\]", f.read())
        return dict(error="no junit.xml: the run was cut before its end"
                    + (f" (at {prog[-1]}% of the tests)" if prog else "") + "; tests.log in logs.tar.gz")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        return dict(error=f"junit.xml unreadable: {exc}")
    counts = collections.Counter()
    cuda = collections.Counter()
    failed, reasons, cuda_reasons = [], collections.Counter(), collections.Counter()
    for tc in root.iter("testcase"):
        tid = f"{tc.get('classname', '')}::{tc.get('name', '')}"
        kind = "passed"
        for child in tc:
            if child.tag in ("failure", "error"):
                kind = "failed" if child.tag == "failure" else "errors"
                failed.append(f"{tid}: {(child.get('message') or '')[:160]}")
            elif child.tag == "skipped":
                kind = "skipped"
                msg = (child.get("message") or "").strip()
                reasons[msg[:140]] += 1
                if "cuda" in tid.lower():
                    cuda_reasons[msg[:140]] += 1
        counts[kind] += 1
        if "cuda" in tid.lower():
            cuda[kind] += 1
    return dict(counts=dict(counts), cuda=dict(cuda), failed=failed[:40], n_failed=len(failed),
                skip_reasons=reasons.most_common(12), cuda_skip_reasons=cuda_reasons.most_common(8))


def sanitizer(work):
    d = os.path.join(work, "sanitize")
    if not os.path.isdir(d):
        return None
    rows = []
    status = {}
    try:
        with open(os.path.join(d, "status.txt")) as f:
            for line in f:
                p = line.split()
                if len(p) == 3:
                    status[(p[0], p[1])] = int(p[2])
    except OSError:
        pass
    note = None
    try:
        with open(os.path.join(d, "note.txt")) as f:
            note = f.read().strip()
    except OSError:
        pass
    for (tool, kernel), rc in sorted(status.items()):
        summary = ""
        try:
            with open(os.path.join(d, f"{tool}-{kernel}.txt"), errors="replace") as f:
                lines = [l.strip(" =\n") for l in f if "SUMMARY" in l]
            summary = "; ".join(lines[-2:])
        except OSError:
            pass
        verdict = {0: "ok", 86: "ERRORS (sanitizer)", 1: "FAIL (a fit differs from numpy)",
                   124: "timeout", 137: "timeout"}.get(rc, f"FAIL (exit {rc})")
        rows.append(dict(tool=tool, kernel=kernel, exit=rc, verdict=verdict, summary=summary))
    return dict(rows=rows, note=note)


def rule_a(work):
    b = _load(os.path.join(work, "rule_a", "bench.json"))
    extra = _load(os.path.join(work, "rule_a", "rule_a.json")) or {}
    if b is None:
        return None
    grids = collections.OrderedDict()
    for r in b.get("results", []):
        g = grids.setdefault(r["grid"], {})
        key = r["backend"] if r["backend"].startswith("notebook") else f"{r['backend']} {r['dtype']}"
        g[key] = dict(steps_per_s=r.get("steps_per_s"), check=r.get("check"), skipped=r.get("skipped"))
    table = []
    for grid, g in grids.items():
        def rate(k, g=g):
            return (g.get(k) or {}).get("steps_per_s")
        cu, cpp, nbc, nb = rate("cuda float32"), rate("cpp float32"), rate("notebook-cupy"), rate("notebook")
        target = RULE_A_TARGETS.get(grid)
        table.append(dict(grid=grid, cuda=cu, cuda_check=(g.get("cuda float32") or {}).get("check")
                          or (g.get("cuda float32") or {}).get("skipped"),
                          cpp=cpp, cpp_check=(g.get("cpp float32") or {}).get("check"), notebook_cupy=nbc,
                          notebook_numpy=nb, numpy_ref=rate("numpy float32"),
                          cuda_x_notebook_cupy=cu / nbc if cu and nbc else None,
                          cuda_x_cpp=cu / cpp if cu and cpp else None,
                          target=target, target_met=(cu >= target) if cu and target else None))
    return dict(table=table, notebook_cupy_check=extra.get("notebook_cupy_check"),
                notes=b.get("notes", []), machine=b.get("machine", {}).get("cpu"))


def batch(work):
    b = _load(os.path.join(work, "batch", "batch.json"))
    if b is None:
        return None
    table = []
    for row in b.get("rows", []):
        res = row["results"]
        nb = next((r for r in res if r["impl"] == "notebook-cupy"), None)
        cuda = [r for r in res if r["impl"].startswith("cuda")]
        best = min(cuda, key=lambda r: r["s_per_epoch"]) if cuda else None
        floor = next((r for r in res if r["impl"].startswith("floor") and best and r["dtype"] == best["dtype"]), None)
        sp = nb["s_per_epoch"] / best["s_per_epoch"] if nb and best else None
        target = BATCH_TARGETS.get(row["rule"])
        table.append(dict(rule=row["rule"], case=row["case"], notebook_cupy_s=nb and nb["s_per_epoch"],
                          best_cuda=best and f"{best['impl']} {best['dtype']}",
                          best_cuda_s=best and best["s_per_epoch"], speedup=sp, target=target,
                          target_met=(sp >= target) if sp and target else None,
                          floor_s=floor and floor["s_per_epoch"],
                          x_floor=best["s_per_epoch"] / floor["s_per_epoch"] if best and floor else None,
                          cublas_used=any("cublas" in r["impl"] for r in cuda),
                          variants=[(r["impl"], r["dtype"], r["s_per_epoch"]) for r in cuda]))
    return dict(table=table, errors=b.get("errors", []), notebook_cupy_check=b.get("notebook_cupy_check"))


def tnn(work):
    t = _load(os.path.join(work, "tnn", "tnn.json"))
    if t is None:
        return None
    rows = {r["backend"]: r for r in t.get("rows", [])}
    out = dict(rows=t.get("rows", []), data=t.get("data"))
    c, g = rows.get("cpp", {}), rows.get("cuda", {})
    for kind in ("train", "infer"):
        a, b = c.get(f"{kind}_images_per_s"), g.get(f"{kind}_images_per_s")
        out[f"cuda_x_cpp_{kind}"] = b / a if a and b else None
    return out


def _f(x, fmt="{:,.0f}"):
    return "-" if x is None else fmt.format(x)


def _verdict(met, mode):
    if mode != "gpu":
        return "not judged (rehearsal)"
    return {True: "met", False: "MISSED", None: "not measured"}[met]


def render(res) -> str:
    L = []
    info = res.get("info") or {}
    mode = res["mode"]
    gpu = info.get("device_name") or "no GPU seen"
    L.append(f"== device_check summary: mode {mode}, {gpu}, {res['elapsed_s']} s of a {res['budget_s']} s budget")
    if mode != "gpu":
        L.append("!! REHEARSAL on the CPU (CUDA kernels on the emulator, tiny sizes): every figure below means "
                 "nothing; only the plumbing was checked")
    if info:
        L.append(f"cuda module: {info.get('module')} emulated={info.get('emulated')} "
                 f"capability={info.get('capability')} "
                 f"runtime={info.get('runtime_version')} driver={info.get('driver_version')} "
                 f"self_test={info.get('self_test')} cuBLAS={(info.get('cublas') or {}).get('where')} "
                 f"cupy={info.get('cupy')}")
    L.append("steps: " + " | ".join(f"{s['step']} {s['status']} {s['seconds']}s" for s in res["steps"]))
    bt = res.get("build_times")
    if bt:
        L.append(f"build: {len(bt)} targets, slowest " + ", ".join(
            f"{os.path.basename(t['target'])} {t['seconds']:.0f}s" for t in bt[:3]))
    t = res.get("tests")
    if t is None:
        L.append("tests: not run (no junit.xml)")
    elif "error" in t:
        L.append(f"tests: {t['error']}")
    else:
        c, cu = t["counts"], t["cuda"]
        L.append(f"tests: {c.get('passed', 0)} passed, {c.get('failed', 0)} failed, {c.get('errors', 0)} errors, "
                 f"{c.get('skipped', 0)} skipped; ids with 'cuda': {cu.get('passed', 0)} passed, "
                 f"{cu.get('failed', 0) + cu.get('errors', 0)} failed, {cu.get('skipped', 0)} skipped")
        for f in t["failed"][:12]:
            L.append(f"  FAILED {f}")
        if t["n_failed"] > 12:
            L.append(f"  ... and {t['n_failed'] - 12} more (logs.tar.gz: tests.log)")
        for msg, n in t["cuda_skip_reasons"][:5]:
            L.append(f"  cuda skipped x{n}: {msg}")
        for msg, n in t["skip_reasons"][:6]:
            L.append(f"  skipped x{n}: {msg}")
    s = res.get("sanitizer")
    if s is None:
        L.append("compute-sanitizer: not run")
    else:
        if s.get("note"):
            L.append(f"compute-sanitizer: {s['note']}")
        for r in s["rows"]:
            L.append(f"  {r['tool']:9s} {r['kernel']:9s} {r['verdict']}"
                     + (f"  [{r['summary']}]" if r["summary"] else ""))
    ra = res.get("rule_a")
    if ra is None:
        L.append("rule A: not measured")
    else:
        L.append(f"rule A, seed 001 settings, float32, steps/s (cpp on {ra.get('machine')}); notebook-cupy "
                 f"check: {ra.get('notebook_cupy_check')}")
        L.append("  grid      cuda (check)          cpp      nb-cupy   nb-numpy  cuda/cupy  cuda/cpp  target")
        for r in ra["table"]:
            tgt = "-" if r["target"] is None else f"{r['target']:,} " + _verdict(r["target_met"], mode)
            L.append(f"  {r['grid']:8s} {_f(r['cuda']):>9s} ({str(r['cuda_check'])[:10]:10s}) {_f(r['cpp']):>9s} "
                     f"{_f(r['notebook_cupy']):>9s} {_f(r['notebook_numpy']):>9s} "
                     f"{_f(r['cuda_x_notebook_cupy'], '{:,.1f}x'):>9s} {_f(r['cuda_x_cpp'], '{:,.1f}x'):>8s}  {tgt}")
    b = res.get("batch")
    if b is None:
        L.append("batch rules: not measured")
    else:
        L.append(f"batch rules, s per epoch; notebooks' cupy code check: {b.get('notebook_cupy_check')}")
        for r in b["table"]:
            tgt = "-" if r["target"] is None else f"{r['target']:.0f}x " + _verdict(r["target_met"], mode)
            L.append(f"  {r['rule']:9s} {r['case']:20s} nb-cupy {_f(r['notebook_cupy_s'], '{:.4f}')}  best "
                     f"{r['best_cuda']} {_f(r['best_cuda_s'], '{:.4f}')}  speed-up {_f(r['speedup'], '{:.1f}x')} "
                     f"(target {tgt})  x floor {_f(r['x_floor'], '{:.2f}')}  cuBLAS used: {r['cublas_used']}")
        for e in b["errors"]:
            L.append(f"  FAILED {e['case']}: {e['error'][:200]}")
    tn = res.get("tnn")
    if tn is None:
        L.append("TNN: not measured")
    else:
        L.append(f"TNN best preset, images/s ({tn.get('data')}):")
        for r in tn["rows"]:
            if "skipped" in r:
                L.append(f"  {r['backend']:5s} skipped: {r['skipped']}")
            else:
                L.append(f"  {r['backend']:5s} check {r['check']}  train {_f(r.get('train_images_per_s'), '{:,.1f}')}"
                         f"  infer {_f(r.get('infer_images_per_s'), '{:,.1f}')}")
        L.append(f"  cuda / cpp: train {_f(tn.get('cuda_x_cpp_train'), '{:.2f}x')}, "
                 f"infer {_f(tn.get('cuda_x_cpp_infer'), '{:.2f}x')}")
    skipped = [s for s in res["steps"] if s["status"] == "skipped"]
    for s in skipped:
        L.append(f"skipped: {s['step']}: {s['note']}")
    bad = [s for s in res["steps"] if s["status"] not in ("ok", "skipped")]
    L.append(f"verdict: {len([s for s in res['steps'] if s['status'] == 'ok'])} steps ok, {len(bad)} failed or timed "
             f"out ({', '.join(s['step'] for s in bad) or 'none'}), {len(skipped)} skipped"
             + ("  [REHEARSAL: figures mean nothing]" if mode != "gpu" else ""))
    return "\n".join(L)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", required=True)
    ap.add_argument("--elapsed", type=int, default=0)
    ap.add_argument("--budget", type=int, default=0)
    a = ap.parse_args(argv)
    res = dict(mode=a.mode, rehearsal=a.mode != "gpu", elapsed_s=a.elapsed, budget_s=a.budget,
               steps=steps(a.work), info=_load(os.path.join(a.work, "info", "info.json")),
               build_times=build_times(a.work))
    for name, fn in (("tests", tests), ("sanitizer", sanitizer), ("rule_a", rule_a), ("batch", batch), ("tnn", tnn)):
        try:
            res[name] = fn(a.work)
        except Exception as exc:  # one unreadable part must not hide the others
            res[name] = None
            res.setdefault("summary_errors", []).append(f"{name}: {type(exc).__name__}: {exc}")
    res["raw"] = {os.path.relpath(p, a.work): _load(p) for p in sorted(glob.glob(os.path.join(a.work, "*", "*.json")))}
    text = render(res)
    for e in res.get("summary_errors", []):
        text += f"\nsummary could not read {e}"
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1, default=str)
    with open(os.path.join(a.out, "summary.txt"), "w") as f:
        f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
