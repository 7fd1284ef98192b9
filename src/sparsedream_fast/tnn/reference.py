"""Numpy reference of rule D (TNN columns with STDP): the specification of every backend.

Written for clarity, not speed: the potential is evaluated literally at every step of the
wave, and the STDP draws are made for every synapse (a counter-based draw does not depend on
which other draws were made, so the fast kernels draw only where a case needs one).
Spike times are integers in [0, T], ``T`` meaning no spike.
"""
from __future__ import annotations

import numpy as np

from .._runtime import RUN_DONE, RUN_STOPPED, loop_control

from .philox import philox4x32, to_unit
from .program import Program

__all__ = ["fire_times", "kwta", "stdp_draws", "stdp_update", "column_wave", "run_network"]


def fire_times(W: np.ndarray, x: np.ndarray, theta: int, T: int) -> np.ndarray:
    """First step at which each neuron's ramp-no-leak potential reaches ``theta``.

    Input ``i`` (weight ``w``) that spiked at ``x_i`` adds ``min(max(t - x_i + 1, 0), w)`` at
    step ``t``; ``x_i = T`` (no spike) adds nothing during the wave.

    Parameters
    ----------
    W : ndarray of shape (N, D), integer
    x : ndarray of shape (D,), integer in [0, T]

    Returns
    -------
    ndarray of shape (N,), int64: the firing step in [0, T), or T when it never fires
    """
    t = np.arange(T, dtype=np.int64)[:, None]
    ramp = np.maximum(t - x.astype(np.int64)[None, :] + 1, 0)                     # (T, D)
    potential = np.minimum(ramp[:, None, :], W.astype(np.int64)[None, :, :]).sum(-1)  # (T, N)
    reached = potential >= theta
    return np.where(reached.any(0), reached.argmax(0), T).astype(np.int64)


def kwta(f: np.ndarray, k: int, T: int) -> np.ndarray:
    """k-WTA by earliest spike: the k earliest firing times survive (ties to the lower index).

    Returns
    -------
    ndarray of shape (N,), int64: ``f`` for the winners, ``T`` for everyone else
    """
    order = np.argsort(f, kind="stable")[:k]
    winners = order[f[order] < T]
    y = np.full(f.shape, T, dtype=np.int64)
    y[winners] = f[winners]
    return y


def stdp_draws(n: int, d: int, wave: int, column: int, key: tuple[int, int]):
    """The three uniform draws (u0, u1, u2) in [0, 1) of every synapse for one wave.

    Synapse (j, i) uses Philox4x32-10 with counter (j * d + i, wave low, wave high, column)
    and the seed's key; outputs 0, 1, 2 become u0 (the case's probability), u1 (F+ or F-),
    u2 (the u_min floor). Output 3 is unused.

    Returns
    -------
    three ndarrays of shape (n, d), float64
    """
    s = np.arange(n * d, dtype=np.uint64).astype(np.uint32)
    r = philox4x32(s, wave & 0xFFFFFFFF, (wave >> 32) & 0xFFFFFFFF, column, key[0], key[1])
    return tuple(to_unit(r[m]).reshape(n, d) for m in range(3))


def stdp_update(W: np.ndarray, x: np.ndarray, y: np.ndarray, T: int, w_max: int, p: np.ndarray,
                draws, plastic: np.ndarray | None = None) -> None:
    """Apply one wave of stochastic STDP to W in place (docs/rules/tnn.md).

    Parameters
    ----------
    W : ndarray of shape (N, D), integer; updated in place, kept in [0, w_max]
    x : ndarray of shape (D,)   input spike times (T = none)
    y : ndarray of shape (N,)   output spike times after k-WTA (T = none)
    p : ndarray of shape (5,)   (capture, minus, search, backoff, u_min)
    draws : (u0, u1, u2), each of shape (N, D), in [0, 1)
    plastic : ndarray of shape (D,), optional; synapses of lines with 0 never change
    """
    capture, minus, search, backoff, u_min = (float(v) for v in p)
    u0, u1, u2 = draws
    xs = (x < T)[None, :]
    ys = (y < T)[:, None]
    both = xs & ys
    early = x[None, :] <= y[:, None]
    case1 = both & early        # input before (or with) the output: capture
    case2 = both & ~early       # input after the output: depress
    case3 = xs & ~ys            # input alone: search
    case4 = ~xs & ys            # output alone: back off
    f = W.astype(np.float64) / float(w_max)
    f_plus = (u1 < f * (2.0 - f)) | (u2 < u_min)
    f_minus = (u1 < (1.0 - f) * (1.0 + f)) | (u2 < u_min)
    inc = ((case1 & (u0 < capture)) | (case3 & (u0 < search))) & f_plus
    dec = ((case2 & (u0 < minus)) | (case4 & (u0 < backoff))) & f_minus
    if plastic is not None:
        keep = (plastic != 0)[None, :]
        inc &= keep
        dec &= keep
    new = W.astype(np.int64) + inc - dec
    W[...] = np.clip(new, 0, w_max).astype(W.dtype)


def column_wave(W, x, spec, T, learn=False, wave=0, column=0, key=(0, 0), plastic=None) -> np.ndarray:
    """One column, one wave: fire, k-WTA, and STDP on W when ``learn``.

    Returns
    -------
    ndarray of shape (N,), int64: output spike times after k-WTA
    """
    y = kwta(fire_times(W, x, spec.threshold, T), spec.k, T)
    if learn:
        draws = stdp_draws(W.shape[0], W.shape[1], wave, column, key)
        stdp_update(W, x, y, T, spec.w_max, spec.stdp.as_array(), draws, plastic)
    return y


def run_network(prog: Program, weights: list, data: np.ndarray, learn: bool, wave0: int,
                key: tuple[int, int], control=None) -> tuple[np.ndarray, int]:
    """Present every sequence of ``data`` to the network, wave by wave (see ``program.py``).

    Parameters
    ----------
    prog : Program
    weights : list of ndarray of shape (N_c, D_c), integer
        One per column; updated in place when ``learn``.
    data : ndarray of shape (S, n_waves, n_in), uint8 spike times in [0, T]
    learn : bool
    wave0 : int
        Learning waves already made by this network (the Philox counter of the first one).
    key : (int, int)
    control : sparsedream_fast._runtime.Control or None
        Stop request in (training stops after the sequence in progress: its waves share
        the delay lines), sequences presented and status out.

    Returns
    -------
    recorded : ndarray of shape (S, n_waves, len(prog.record)), uint8
        (rows after a stop are undefined)
    wave : int
        ``wave0`` plus the number of learning waves made.
    """
    ctl = loop_control(control)
    T = prog.T
    S, n_waves, _ = data.shape
    rec = np.empty((S, n_waves, len(prog.record)), dtype=np.uint8)
    lines = np.full(prog.n_lines, T, dtype=np.int64)
    wave = int(wave0)
    for s in range(S):
        prev = np.full(prog.n_lines, T, dtype=np.int64)
        for w in range(n_waves):
            lines[:prog.n_in] = data[s, w]
            lines[prog.delay_dst] = prev[prog.delay_src]
            for c, col in enumerate(prog.columns):
                x = lines[col.in_lines]
                y = column_wave(weights[c], x, col.spec, T, learn, wave, c, key, col.plastic)
                lines[col.out0:col.out0 + col.spec.n_neurons] = y
            rec[s, w] = lines[prog.record]
            prev = lines.copy()
            if learn:
                wave += 1
        done = s + 1
        if learn and ctl.stop_requested and done < S:
            ctl.report(done, RUN_STOPPED)
            return rec, wave
    ctl.report(S, RUN_DONE)
    return rec, wave
