"""Checkpoints under attack, each in child processes so that a crash fails the test instead
of ending the run:

- every key of a saved file of every model damaged in many ways (tests/checkpoint_fuzz.py),
  each damaged file loaded and the model used on every backend: no crash, no hang, only
  ValueError / TypeError;
- a child SIGKILLed at random moments while it overwrites a large checkpoint: the file is
  always whole and loadable (the old version or the new one);
- a user's own sparse lateral matrix with indices out of range, fitted on every backend.

Before these fixes: an out-of-range CSR index in a file segfaulted the numpy and numba
backends, a truncated ``trace`` aborted numba, and the overwritten file was unloadable after
6 of 6 kills.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import sparsedream_fast as sdf
from testing import RULE_BACKENDS, backend_usable

HERE = os.path.dirname(os.path.abspath(__file__))
pytestmark = pytest.mark.slow


def _usable(rule):
    return [b for b in RULE_BACKENDS[rule] if backend_usable(b) is None]


#: model -> its rule (the backends that implement it)
FUZZED = {"SparseDream": "A", "DreamComp": "B", "KrotovHopfield": "C", "KrotovHopfieldClassifier": "C",
          "TNNNetwork": "D", "TNNColumn": "D"}


def _run_children(commands, timeout):
    procs = {name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name, cmd in commands.items()}
    out = {}
    deadline = time.monotonic() + timeout
    for name, p in procs.items():
        try:
            text, _ = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            text, _ = p.communicate()
            pytest.fail(f"{name}: the fuzz child hung (killed after {timeout} s); last lines:\n{text[-2000:]}")
        out[name] = (p.returncode, text)
    return out


def test_damaged_checkpoints_never_crash_any_backend(tmp_path):
    commands = {}
    for model, rule in FUZZED.items():
        folder = tmp_path / model
        folder.mkdir()
        commands[model] = [sys.executable, os.path.join(HERE, "checkpoint_fuzz.py"), model, str(folder),
                           *_usable(rule)]
    for model, (rc, text) in _run_children(commands, timeout=600).items():
        cases = [line[5:] for line in text.splitlines() if line.startswith("CASE ")]
        assert rc == 0, (f"{model}: the child died with status {rc} (a negative status is a signal) at case "
                         f"{cases[-1] if cases else None!r}; output:\n{text[-3000:]}")
        result = json.loads(text[text.rindex("RESULT ") + 7:])
        assert not result["wrong"], f"{model}: exceptions other than ValueError/TypeError:\n" + \
            "\n".join(result["wrong"][:30])
        # the cases ran on every backend, and most damage is refused at load
        for backend in _usable(FUZZED[model]):
            mine = [c for c in result["refused"] if c.startswith(backend + "/")]
            assert len(mine) > 100, (model, backend, len(mine))
        assert len(result["refused"]) > 2 * len(result["ok"])


_OVERWRITER = """
import sys
import sparsedream_fast as sdf
path = sys.argv[1]
m = sdf.SparseDream.load(path)
print("ready", flush=True)
i = 0
while True:
    i += 1
    m.weights_[...] = i          # version i: every weight equals i
    m.save(path)
"""


def test_sigkill_while_overwriting_never_loses_the_file(tmp_path):
    """8 children, each overwriting its own 8 MB checkpoint in a loop, are SIGKILLed at random
    moments; every file then loads whole (one version's weights)."""
    base = sdf.SparseDream(n_inputs=1000, grid=(40, 50), k=1, competition="drive", lateral=None,
                           backend="numpy", seed=0).fit(np.ones((1, 1000)), epochs=1)
    base.weights_[...] = 0
    rng = random.Random(1)
    paths = [base.save(tmp_path / "m0.npz")]
    for c in range(1, 8):
        paths.append(str(tmp_path / f"m{c}.npz"))
        shutil.copyfile(paths[0], paths[c])
    procs = [subprocess.Popen([sys.executable, "-c", _OVERWRITER, path], stdout=subprocess.PIPE, text=True)
             for path in paths]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    for p in procs:
        time.sleep(rng.uniform(0.0, 0.2))
        p.send_signal(signal.SIGKILL)
    interrupted = 0
    for p, path in zip(procs, paths):
        p.wait(timeout=60)
        p.stdout.close()
        assert p.returncode == -signal.SIGKILL
        W = sdf.SparseDream.load(path, backend="numpy").weights_
        assert W.shape == (2000, 1000)
        assert np.all(W == W[0, 0]) and W[0, 0] == int(W[0, 0]), "a mix of two versions"
        interrupted += any(f.startswith(f".{os.path.basename(path)}.") for f in os.listdir(tmp_path))
    # the kills did land in the middle of writes (a temporary file was left behind)
    assert interrupted >= 1


_USER_LATERAL = """
import sys, numpy as np, scipy.sparse as sp, sparsedream_fast as sdf
from sparsedream_fast import _backends
import contextlib
backend = sys.argv[1]
ctx = _backends.cuda_emulator() if backend == "cuda" and not _backends.available("cuda") else contextlib.nullcontext()
X = np.random.default_rng(0).random((20, 16))
refused = 0
with ctx:
    for col in (16, 10**9, -5, 2**32 + 1):
        ip = np.zeros(17, np.int64); ip[1:] = 1
        L = sp.csr_array((np.array([0.1]), np.array([col], np.int64), ip), shape=(16, 16))
        try:
            sdf.SparseDream(n_inputs=16, grid=(4, 4), k=2, lateral=L, backend=backend).fit(X, epochs=1)
        except ValueError as exc:
            assert "must lie in [0, 16)" in str(exc), exc
            refused += 1
print("refused", refused)
"""


def test_user_sparse_lateral_out_of_range_is_refused_on_every_backend():
    commands = {b: [sys.executable, "-c", _USER_LATERAL, b] for b in _usable("A")}
    for backend, (rc, text) in _run_children(commands, timeout=300).items():
        assert rc == 0, f"{backend}: status {rc}\n{text[-2000:]}"
        assert text.strip().endswith("refused 4"), text[-500:]
