"""Stopping a fit at a step boundary, and reporting training that diverges.

Every training loop of the library (rules A-D, every backend) runs between two steps
(batches, waves) only: a Ctrl-C, an exception from a callback or a divergence leaves the
model exactly as after its last completed step, with its step counter saying how many.

* :class:`StepBoundary` defers SIGINT while a model trains: its handler only records the
  signal and sets the stop flag of a :class:`Control`, which the training loop reads after
  every step (native loops through ``csrc/bind_run.hpp``, about every 20 ms; Python loops
  every step). Once the loop has returned and the model's counters are updated, the
  original handler runs (by default it raises ``KeyboardInterrupt``). User code called
  during training (callbacks) runs with the original handler in place.
* A step whose update would write a value that is not finite stops the loop before it
  writes anything; the model then raises :class:`DivergenceError`.
"""
from __future__ import annotations

import contextlib
import signal
import threading

import numpy as np

__all__ = ["DivergenceError", "Control", "StepBoundary", "all_finite", "refuse_non_finite", "loop_control",
           "next_chunk", "RUN_DONE", "RUN_STOPPED", "RUN_DIVERGED"]

#: How a training loop ended (``csrc/sparsedream/run_control.hpp``'s RunStatus).
RUN_DONE, RUN_STOPPED, RUN_DIVERGED = 0, 1, 2


class DivergenceError(FloatingPointError):
    """Training stopped before a step whose update is not finite (NaN or inf).

    Raised by ``fit`` (and ``partial_fit``) of every model on every backend when training
    diverges. The model keeps the state after the last finite step (its step counter, such
    as ``SparseDream.n_steps_``, says how many steps that is), so it can be inspected, saved
    or trained on with other parameters. A subclass of :class:`FloatingPointError` (and so of
    :class:`ArithmeticError`).

    Attributes
    ----------
    step : int or None
        Index (from 0) of the step, batch or wave whose update was not finite, counted like
        the model's step counter.
    """

    def __init__(self, message: str, step: int | None = None):
        super().__init__(message)
        self.step = step


class Control:
    """What a training loop shares with its caller: a stop request, and where it stopped.

    ``array`` is int64 of shape (3,): [0] stop request (nonzero: stop after the current
    step), [1] steps (batches, waves) completed, [2] the status (RUN_DONE, RUN_STOPPED,
    RUN_DIVERGED). Native loops take the array itself (``control=ctl.array``).
    """

    def __init__(self):
        self.array = np.zeros(3, np.int64)

    def begin(self) -> "Control":
        """Reset the count and the status before a loop (a stop request stays)."""
        self.array[1:] = 0
        return self

    @property
    def stop_requested(self) -> bool:
        """True when the loop must stop after its current step (Python loops read this)."""
        return bool(self.array[0])

    def report(self, done: int, status: int) -> None:
        """Record where a (Python) loop stopped."""
        self.array[1] = done
        self.array[2] = status

    @property
    def done(self) -> int:
        """Steps (batches, waves) the last loop completed."""
        return int(self.array[1])

    @property
    def stopped(self) -> bool:
        """True when the last loop stopped on a stop request."""
        return int(self.array[2]) == RUN_STOPPED

    @property
    def diverged(self) -> bool:
        """True when the last loop stopped before a step whose update is not finite."""
        return int(self.array[2]) == RUN_DIVERGED

    def raise_if_diverged(self, what: str) -> None:
        """For a backend called without a caller's Control: raise when the loop diverged."""
        if self.diverged:
            raise DivergenceError(f"{what}: the update of step {self.done} (counted from 0 in this call) is "
                                  f"not finite (NaN or inf); the state is that after step {self.done - 1}",
                                  step=self.done)


def all_finite(a) -> bool:
    """True when every value of the float array ``a`` is finite.

    One sum instead of an elementwise test: a NaN or an inf makes the sum NaN or inf, so a
    finite sum proves every value finite; only a sum that overflows (or a non-finite value)
    takes the elementwise test.
    """
    a = np.asarray(a)
    if a.size == 0:
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(a)):
            return True
    return bool(np.isfinite(a).all())


def refuse_non_finite(name: str, a) -> None:
    """ValueError when the fitted array ``a`` (the model's attribute ``name``) holds NaN or inf.

    Training never writes a value that is not finite, so only a change made from outside the
    model can put one there; refusing it gives the same error on every backend instead of
    each backend's own NaN rules.
    """
    if not all_finite(a):
        raise ValueError(f"the model's {name} holds NaN or inf (changed from outside the model: training never "
                         "writes a value that is not finite); fit again or load a checkpoint")


def next_chunk(size: int, seconds: float, target: float, limit: int = 1 << 24) -> int:
    """The work (steps) of the next call of a Python-driven loop, so that a call takes about
    ``target`` seconds: doubled while calls are short, halved when one took too long."""
    if seconds < target / 2:
        return min(size * 2, limit)
    if seconds > target * 2:
        return max(size // 2, 1)
    return size


def loop_control(control: Control | None) -> Control:
    """The Control a backend's loop reports to: the caller's, or a fresh one."""
    return Control() if control is None else control.begin()


class StepBoundary:
    """Context deferring SIGINT to the step boundaries of a model's training.

    Inside, SIGINT sets ``control``'s stop flag instead of raising; :meth:`check` (called
    once the model's state and counters are consistent) then runs the original handler.
    Only the main thread can install handlers; elsewhere (and when SIGINT is ignored or has
    its default action) nothing is deferred and the context only provides the Control.
    """

    def __init__(self):
        self.control = Control()
        self._pending = None
        self._old = None

    def __enter__(self) -> "StepBoundary":
        if threading.current_thread() is not threading.main_thread():
            return self
        old = signal.getsignal(signal.SIGINT)
        owner = getattr(old, "__self__", None)
        if isinstance(owner, StepBoundary):  # nested: defer to the outer one's original handler
            old = owner._old
        if callable(old):  # default_int_handler or a user's handler (not SIG_IGN / SIG_DFL / None)
            self._old = old
            signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        if exc_type is None:
            self.check()
        return False

    def _handler(self, signum, frame):
        self._pending = frame
        self.control.array[0] = 1

    def begin(self) -> Control:
        """The Control for the next loop (count and status reset)."""
        return self.control.begin()

    def check(self) -> None:
        """At a consistent point: act on a deferred SIGINT now (run the original handler;
        by default it raises KeyboardInterrupt). Returns when there was none, or when the
        handler returns (training may then go on)."""
        if self._pending is None:
            return
        frame, self._pending = self._pending, None
        self.control.array[0] = 0
        self._old(signal.SIGINT, frame)

    @contextlib.contextmanager
    def released(self):
        """Run user code (a callback) with the original SIGINT handler, after acting on a
        deferred SIGINT."""
        self.check()
        if self._old is None:
            yield
            return
        signal.signal(signal.SIGINT, self._old)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, self._handler)
