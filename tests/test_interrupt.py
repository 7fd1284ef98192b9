"""Ctrl-C and exceptions stop a fit at a step boundary (every rule, every backend).

A child process (interrupt_child.py) starts a long fit and is sent SIGINT once it says it
has started; it must raise KeyboardInterrupt, and hold exactly the state of a fresh fit of
as many steps (batches, waves) as its counter says, bit for bit. No timing is asserted
beyond "it stopped" (the machine may be loaded): the fits are long enough that only an
interrupt ends them within the timeout.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from testing import rule_backends

CHILD = os.path.join(os.path.dirname(__file__), "interrupt_child.py")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _interrupt(rule, backend, mode, signals=1, timeout=300):
    """Run the child, send it SIGINT (``signals`` times, 0.5 s apart) once the fit runs,
    and return its JSON report."""
    proc = subprocess.Popen([sys.executable, CHILD, rule, backend, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        line = proc.stdout.readline()
        assert line.strip() == "READY", (line, proc.stderr.read() if proc.poll() is not None else "")
        time.sleep(0.5)  # let the fit get going
        for _ in range(signals):
            proc.send_signal(signal.SIGINT)
            time.sleep(0.5)
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", rule_backends("A"))
@pytest.mark.parametrize("mode", ["plain", "callback"])
def test_rule_a_sigint_stops_at_a_step(backend, mode):
    r = _interrupt("A", backend, mode)
    assert r["interrupted"], r
    assert 0 < r["count"] < r["total"], r
    assert r["equal"], r


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_rule_a_handler_that_returns_lets_training_go_on(backend):
    r = _interrupt("A", backend, "handler", signals=2)
    assert r["handler_calls"] == 2 and r["interrupted"], r
    assert 0 < r["count"] < r["total"] and r["equal"], r


# ------------------------------------------------------------------ rules B, C, D
def _rule_params():
    out = []
    for rule, letter in (("B", "B"), ("C", "C"), ("D", "D"), ("Dcol", "D")):
        for b in rule_backends(letter):
            out.append(pytest.param(rule, b.values[0], id=f"{rule}-{b.id}", marks=b.marks))
    return out


@pytest.mark.parametrize("rule, backend", _rule_params())
def test_sigint_stops_batch_and_wave_rules_at_a_boundary(rule, backend):
    """DreamComp and KrotovHopfield stop after a batch (n_batches_), the TNN estimators after
    a sequence (n_waves_learned_), equal bit for bit to a fresh fit of that many."""
    r = _interrupt(rule, backend, "plain")
    assert r["interrupted"], r
    assert 0 < r["count"] < r["total"], r
    assert r["equal"], r


@pytest.mark.parametrize("rule", ["B", "C", "D"])
def test_batch_and_wave_rules_go_on_when_the_handler_returns(rule):
    r = _interrupt(rule, "cpp", "handler", signals=2)
    assert r["handler_calls"] == 2 and r["interrupted"], r
    assert 0 < r["count"] < r["total"] and r["equal"], r


@pytest.mark.parametrize("backend", rule_backends("C"))
def test_sigint_in_the_classifiers_feature_fit(backend):
    """KrotovHopfieldClassifier's unsupervised fit stops at a batch boundary too: the
    KeyboardInterrupt comes promptly and the classifier stays unfitted."""
    r = _interrupt("Cclf", backend, "plain")
    assert r["interrupted"] and r["equal"], r
