"""Pickling: every estimator survives pickle, joblib and copy.deepcopy on every backend and
keeps training exactly where it left off (bit for bit the uninterrupted run); arrays that
went through pickle work in ``sdf.ops`` and in the native kernels.

Before the bindings compared dtypes by equivalence, a float32 array restored by pickle
(which carries its own dtype instance) was refused by the cpp backend with "W must be
float32 or float64, got float32".
"""
from __future__ import annotations

import copy
import io
import pickle

import joblib
import numpy as np
import pytest

import sparsedream_fast as sdf
from estimator_cases import CASES, PARAMS, same
from testing import rule_backends


def _pickle(obj):
    return pickle.loads(pickle.dumps(obj))


def _joblib(obj):
    buf = io.BytesIO()
    joblib.dump(obj, buf)
    buf.seek(0)
    return joblib.load(buf)


ROUND_TRIPS = {"pickle": _pickle, "joblib": _joblib, "deepcopy": copy.deepcopy}


@pytest.mark.parametrize("trip", list(ROUND_TRIPS))
@pytest.mark.parametrize("case, backend", PARAMS)
def test_round_trip_continues_exactly(case, backend, trip):
    _, make, first, then, seen = CASES[case]
    whole = then(first(make(backend)))
    restored = ROUND_TRIPS[trip](first(make(backend)))
    assert type(restored) is type(whole)
    same(seen(then(restored)), seen(whole))


@pytest.mark.parametrize("case, backend", PARAMS)
def test_round_trip_before_fit(case, backend):
    """An unfitted estimator pickles too and then trains like a fresh one."""
    _, make, first, then, seen = CASES[case]
    whole = then(first(make(backend)))
    restored = then(first(_pickle(make(backend))))
    same(seen(restored), seen(whole))


#: sdf.ops' single-step kernels (compete, topk, reconstruct, update_rows) have no CUDA version
@pytest.mark.parametrize("backend", [p for p in rule_backends("A") if p.id != "cuda"])
def test_ops_take_arrays_restored_by_pickle(backend):
    rng = np.random.default_rng(0)
    for dt in ("float32", "float64"):
        W = rng.uniform(0.1, 0.2, (12, 9)).astype(dt)
        v = rng.random(9).astype(dt)
        Wp, vp = _pickle(W), _pickle(v)
        assert Wp.dtype == W.dtype
        want = sdf.ops.compete(W, v, competition="lateral", lateral=sdf.lateral.box(1, 0.1), grid=(3, 4),
                               backend=backend)
        got = sdf.ops.compete(Wp, vp, competition="lateral", lateral=sdf.lateral.box(1, 0.1), grid=(3, 4),
                              backend=backend)
        for a, b in zip(want, got):
            assert np.array_equal(a, b)
        win = sdf.ops.topk(_pickle(got[1]), 2, backend=backend)
        r = sdf.ops.reconstruct(Wp, _pickle(win), _pickle(got[0][win]), backend=backend)
        assert np.array_equal(r, sdf.ops.reconstruct(W, win, want[0][win], backend=backend))
        sdf.ops.update_rows(Wp, win, got[0][win], vp, r, lr=0.1, error_clip=1.0, backend=backend)
        sdf.ops.update_rows(W, win, want[0][win], v, r, lr=0.1, error_clip=1.0, backend=backend)
        assert np.array_equal(Wp, W)


def test_native_kernels_take_equivalent_dtypes():
    """The bindings accept any dtype instance equal to the kernels' (the pickle case) and
    still refuse a non-native byte order with a clear error."""
    pytest.importorskip("sparsedream_fast._core")
    W = np.ones((4, 6), np.float32)
    v = np.ones(6, np.float32)
    p = sdf.ops.compete(_pickle(W), _pickle(v), backend="cpp")[0]
    assert np.array_equal(p, np.full(4, 6, np.float32))
    with pytest.raises((TypeError, ValueError), match="float32"):
        sdf.ops.compete(W.astype(">f4"), v, backend="cpp")
