"""
Speed of rule A's backends
==========================

Training steps per second of seed 001's map against the number of neurons, from the
stored results of ``sparsedream bench --grids 20,40,80 --dtype both --out
docs/benchmarks/cpu`` (the project's 2-core AMD EPYC VM, 2026-11-23, the other jobs paused);
this script times nothing, it draws the JSON that the command wrote.
"""
import json
import os

import matplotlib.pyplot as plt

here = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else os.getcwd()
with open(os.path.join(here, "..", "benchmarks", "cpu", "bench.json")) as f:
    result = json.load(f)

rows = [r for r in result["results"] if "skipped" not in r]
series = {}
for r in rows:
    series.setdefault((r["backend"], r["dtype"]), []).append((r["N"], r["steps_per_s"]))

fig, ax = plt.subplots(figsize=(7.5, 5))
colors = {"cpp": "C0", "numba": "C1", "numpy": "C2", "notebook": "k"}
for (backend, dtype), pts in sorted(series.items()):
    pts.sort()
    n, rate = zip(*pts)
    name = "numpy reference" if backend == "numpy" else "notebook's loop" if backend == "notebook" else backend
    ax.plot(n, rate, "-" if dtype == "float32" else "--", marker="o", color=colors.get(backend),
            label=f"{name}, {dtype}")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("neurons N (grids 20 x 20, 40 x 40, 80 x 80; D = 400)")
ax.set_ylabel("training steps per second")
m = result["machine"]
ax.set_title(f"rule A, seed 001's settings: {m['cores']} cores, {m['date'][:10]}, 1-minute load "
             f"{m['loadavg_1min_before']:.2f} before the run (other jobs paused)", fontsize=10)
ax.grid(True, which="both", alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# The ratio to the notebook's own loop, measured in the same run, at 80 x 80:
for r in rows:
    if r["grid"] == "80x80" and r.get("x_notebook"):
        print(f"{r['backend']:9s} {r['dtype']}: {r['steps_per_s']:10,.0f} steps/s "
              f"= {r['x_notebook']:6.1f} x the notebook")
