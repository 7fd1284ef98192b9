"""The one array converter (``_arrays.as_array``): every estimator and ``sdf.ops`` read numpy
arrays, lists, memoryviews, ``__array__``, DLPack (a PyTorch CPU tensor in place), GPU
arrays (copied to the host without CuPy) and pandas DataFrames (nullable columns too) the
same way."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import sparsedream_fast as sdf
from sparsedream_fast import ops
from sparsedream_fast._arrays import as_array, is_cuda_array
from sparsedream_fast._validation import check_data, check_device_data

X = np.random.default_rng(0).random((30, 6))


class ArrayOnly:
    """Only ``__array__``."""

    def __init__(self, a):
        self.a = a

    def __array__(self, dtype=None, copy=None):
        return self.a if dtype is None else self.a.astype(dtype)


class DLPackOnly:
    """Only DLPack, on the CPU (what ops refused before)."""

    def __init__(self, a):
        self.a = a

    def __dlpack__(self, **kw):
        return self.a.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


class FakeCudaDLPack:
    """GPU memory behind DLPack: readable only through an export to the CPU (``dl_device``)."""

    def __init__(self, a):
        self.a = a

    def __dlpack_device__(self):
        return (2, 0)                                  # kDLCUDA

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        if dl_device is None or tuple(dl_device) != (1, 0):
            raise BufferError("the data are on the GPU")
        return self.a.copy().__dlpack__()


class FakeCudaInterface:
    """``__cuda_array_interface__`` with a producer's own copy method (CuPy's ``get``)."""

    def __init__(self, a):
        self.a = a
        self.__cuda_array_interface__ = {"shape": a.shape, "typestr": a.dtype.str, "data": (0, False),
                                         "version": 3}

    def get(self):
        return self.a.copy()


def test_sources_read_the_same():
    for src in (X.tolist(), memoryview(X), ArrayOnly(X), DLPackOnly(X), FakeCudaDLPack(X), FakeCudaInterface(X)):
        np.testing.assert_array_equal(as_array(src), X)
    assert as_array(X) is X
    assert np.shares_memory(as_array(memoryview(X)), X) and np.shares_memory(as_array(DLPackOnly(X)), X)
    assert is_cuda_array(FakeCudaDLPack(X)) and is_cuda_array(FakeCudaInterface(X)) and not is_cuda_array(X)
    with pytest.raises(TypeError, match="cannot be converted"):
        as_array([[1.0, 2.0], [3.0]])


def test_a_gpu_array_without_a_way_to_the_host_is_named():
    class Stuck(FakeCudaInterface):
        get = None

    with pytest.raises(TypeError, match="GPU array .* no way to copy it to the host"):
        as_array(Stuck(X))


def test_torch_cpu_tensor_is_read_in_place():
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(X.astype(np.float32))
    a = as_array(t)
    assert a.dtype == np.float32 and np.shares_memory(a, t.numpy())          # zero copy
    g = torch.ones(3, 6, requires_grad=True)
    np.testing.assert_array_equal(as_array(g), np.ones((3, 6), np.float32))  # detached, not refused
    m = sdf.SparseDream(grid=(2, 2), k=1, backend="numpy", dtype="float32")
    np.testing.assert_array_equal(m.fit(t).weights_, sdf.SparseDream(**m.get_params()).fit(X.astype(np.float32)).weights_)
    np.testing.assert_array_equal(m.transform(t[:3]), m.transform(X[:3].astype(np.float32)))
    W = torch.from_numpy(np.ascontiguousarray(m.weights_))
    p, c = ops.compete(W.T.contiguous().T, t[0], competition="drive", backend="numpy")   # (a Fortran-order W)
    np.testing.assert_array_equal(p, m.weights_ @ X[0].astype(np.float32))


def test_estimators_and_ops_take_the_same_inputs():
    m = sdf.KrotovHopfield(n_hidden=4, k=2, batch_size=5, backend="numpy", dtype="float64").fit(X)
    want = m.transform(X)
    W = m.weights_
    v = X[0]
    p0, c0 = ops.compete(W, v, competition="drive", backend="numpy")
    for src in (memoryview(X), ArrayOnly(X), DLPackOnly(X), FakeCudaDLPack(X), FakeCudaInterface(X), X.tolist()):
        np.testing.assert_array_equal(m.transform(src), want)
        np.testing.assert_array_equal(sdf.KrotovHopfield(**m.get_params()).fit(src).weights_, W)
    for src in (DLPackOnly(v), FakeCudaDLPack(v), memoryview(v), ArrayOnly(v)):
        for Ws in (W, np.asfortranarray(W), DLPackOnly(W), ArrayOnly(W)):
            p, c = ops.compete(Ws, src, competition="drive", backend="numpy")
            np.testing.assert_array_equal(p, p0)
    np.testing.assert_array_equal(ops.topk(DLPackOnly(v), 2, backend="numpy"), ops.topk(v, 2, backend="numpy"))


def test_pandas_frames_with_nullable_columns():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=list("abcdef")).astype({"a": "Float64"})     # a nullable float column
    np.testing.assert_array_equal(as_array(df), X)
    assert as_array(df).dtype == np.float64
    ints = pd.DataFrame({"a": pd.array([1, 2], dtype="Int64"), "b": [3, 4]})
    assert as_array(ints).dtype == np.int64
    holes = df.copy()
    holes.loc[3, "a"] = pd.NA
    assert np.isnan(as_array(holes)[3, 0])
    with pytest.raises(ValueError, match="X contains 1 NaN or inf"):
        sdf.SparseDream(grid=(2, 2), k=1, backend="numpy").fit(holes)
    m = sdf.SparseDream(grid=(2, 2), k=1, backend="numpy").fit(df)
    np.testing.assert_array_equal(m.weights_, sdf.SparseDream(grid=(2, 2), k=1, backend="numpy").fit(X).weights_)
    s = pd.Series(pd.array([0.5, None], dtype="Float64"))
    assert np.isnan(as_array(s)[1]) and as_array(s).shape == (2,)


def test_scipy_sparse_is_refused_by_name():
    sp = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="scipy.sparse"):
        check_data(sp.csr_array(X), 6, np.float64)


@pytest.fixture
def fake_cupy(monkeypatch):
    """CuPy stood in for by numpy, for the device path's own logic (no GPU here)."""
    fake = types.ModuleType("cupy")
    fake.asarray = lambda a: np.array(a.a) if hasattr(a, "__cuda_array_interface__") else np.asarray(a)
    fake.from_dlpack = lambda a: np.array(a.a)
    fake.ascontiguousarray = np.ascontiguousarray
    fake.isfinite = np.isfinite
    fake.count_nonzero = np.count_nonzero
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr("sparsedream_fast._validation._array_module", lambda A: fake)
    return fake


def test_device_path_checks_finite_after_the_cast(fake_cupy):
    big = X.copy()
    big[2, 3] = 1e300
    for src in (FakeCudaInterface(big), FakeCudaDLPack(big)):
        with pytest.raises(ValueError, match=r"X contains 1 NaN or inf value\(s\) as float32"):
            check_device_data(src, 6, np.float32)
        assert check_device_data(src, 6, np.float64).dtype == np.float64
    neg = X.copy()
    neg[0, 0] = -1
    with pytest.raises(ValueError, match="Negative values"):
        check_device_data(FakeCudaInterface(neg), 6, np.float32, nonnegative=True)
    with pytest.raises(ValueError, match="X has 5 features"):
        check_device_data(FakeCudaInterface(X[:, :5]), 6, np.float32)
    assert check_device_data(X, 6, np.float32) is None          # host arrays take the host path
