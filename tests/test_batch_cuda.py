"""DreamComp and Krotov-Hopfield on the GPU (csrc/cuda/dreamcomp.cu, krotov.cu) beyond what
test_batch_backends.py checks for every backend: both products (cuBLAS and the module's own
GEMM kernel) on shapes that cut through its 64 x 64 x 16 tiles, many epochs, memory, and the
errors the GPU path adds. Without a GPU they run on the CPU emulator of the kernels, whose
cuBLAS stand-in follows cuBLAS's column-major definition of gemm.

Tolerances as in test_batch_backends.py: float64 rtol 1e-9 (sums over a winner's samples
in another order), float32 rtol 1e-4, atol 1e-6; winners equal (random data: gaps far
above rounding).
"""
import numpy as np
import pytest

import sparsedream_fast as sdf
from sparsedream_fast import _backends, _gpu_gemm
from sparsedream_fast._rng import one_batch
from sparsedream_fast.dreamcomp import _cuda as dcc
from sparsedream_fast.dreamcomp import reference as dcr
from sparsedream_fast.krotov import _cuda as khc
from sparsedream_fast.krotov import reference as khr
import testing
from testing import CUDA_EMULATED

HAVE_GPU = _backends.available("cuda")
pytestmark = [pytest.mark.skipif(not (HAVE_GPU or CUDA_EMULATED),
                                 reason="no CUDA GPU and no emulator: " + _backends.backends()["cuda"].reason),
              pytest.mark.on_cuda_emulator]
GEMMS = ["kernel", "cublas"]
DTYPES = ["float64", "float32"]


def tol(dtype):
    rtol, atol = testing.tol(dtype)
    return dict(rtol=rtol, atol=atol)


@pytest.fixture
def gemm(request, monkeypatch):
    """Both modules set to the product under test; skipped where cuBLAS does not load."""
    kind = request.param
    if kind == "cublas":
        found, where = _backends.cuda_module().cublas_status(_gpu_gemm.cublas_candidates())
        if not found:
            pytest.skip(f"cuBLAS does not load here: {where}")
    monkeypatch.setattr(dcc, "GEMM", kind)
    monkeypatch.setattr(khc, "GEMM", kind)
    return kind


def _dc_case(dtype, n=150, D=37, C=3, N=130, seed=0):
    rng = np.random.default_rng(seed)
    X, y = rng.random((n, D)), rng.integers(0, C, n)
    V = dcr.extend(X, y, C, dtype)
    zeta, eta = dcr.synapse_vectors(D, C, 10.0, 0.01, 0.05, dtype)
    return V, zeta, eta, rng.uniform(0, 1, (N, D + C)).astype(dtype), rng


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gemm", GEMMS, indirect=True)
def test_winners_across_tile_edges(gemm, dtype):
    """130 neurons x 70 samples x 40 values: partial tiles in every direction."""
    V, _, _, W, _ = _dc_case(dtype)
    got = dcc.winners(W, V[:70])
    np.testing.assert_array_equal(got, np.argmax(W @ V[:70].T, axis=0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gemm", GEMMS, indirect=True)
def test_dreamcomp_fit_many_epochs(gemm, dtype):
    """4 epochs of 2 batches of 70 (graph replay on a GPU): the reference's weights; the
    product used is the one asked for."""
    V, zeta, eta, W0, rng = _dc_case(dtype)
    batches = np.stack([rng.permutation(150)[:140].reshape(2, 70) for _ in range(4)])
    W, Wr = W0.copy(), W0.copy()
    info = dcc._fit_info(W, V, batches, zeta, eta)
    dcr.fit(Wr, V, batches, zeta, eta)
    assert info["gemm"] == gemm
    assert info["graph"] == (HAVE_GPU and not CUDA_EMULATED)
    np.testing.assert_allclose(W, Wr, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gemm", GEMMS, indirect=True)
def test_krotov_fit_many_epochs(gemm, dtype):
    """70 hidden units x 37 inputs, batches of 65, 3 epochs annealed from epoch 2 of 7."""
    rng = np.random.default_rng(1)
    X = rng.random((130, 37)).astype(dtype)
    W0 = rng.normal(0, 1, (70, 37)).astype(dtype)
    batches = np.stack([rng.permutation(130).reshape(2, 65) for _ in range(3)])
    W, Wr = W0.copy(), W0.copy()
    info = khc._fit_info(W, X, batches, 3.0, 6, 0.4, 0.02, 1e-30, epoch0=2, total_epochs=7)
    khr.fit(Wr, X, batches, 3.0, 6, 0.4, 0.02, 1e-30, epoch0=2, total_epochs=7)
    assert info["gemm"] == gemm
    np.testing.assert_allclose(W, Wr, **tol(dtype))


@pytest.mark.parametrize("screen", [True, False])
@pytest.mark.parametrize("gemm", GEMMS, indirect=True)
def test_float32_near_tie_below_tf32_resolution(gemm, screen, monkeypatch):
    """Row 9 = row 2 (all ones) but 1 + 2^-12 on pixel 7 and 1 - 2^-13 on pixel 8 (lit at
    0.25 everywhere): exactly, 9 wins wherever pixel 7 is lit (by 2^-12 - 2^-15); in TF32
    (10 mantissa bits, which the screened cuBLAS product uses; the emulator's cuBLAS
    truncates as the tensor cores may) 1 + 2^-12 is 1 and 1 - 2^-13 is 1 - 2^-11, so 2 leads
    everywhere. The screening's bound must keep 9 a candidate and the float64 check pick it;
    without the screening the product is plain float32, which sees the difference."""
    monkeypatch.setattr(dcc, "SCREEN", screen)
    rng = np.random.default_rng(3)
    D, C, N, B = 32, 2, 12, 16
    X = rng.integers(0, 5, (B, D)) / 4.0
    X[:, 7] = np.arange(B) % 3 > 0
    X[:, 8] = 0.25
    V = dcr.extend(X, np.arange(B) % C, C, "float32")
    W = (rng.integers(0, 2, (N, D + C)) / 16.0).astype("float32")
    W[[2, 9]] = 1.0
    W[9, 7] = np.float32(1 + 2.0 ** -12)
    W[9, 8] = np.float32(1 - 2.0 ** -13)
    zeta, eta = dcr.synapse_vectors(D, C, 10.0, 0.01, 0.05, "float32")
    want = np.where(X[:, 7] > 0, 9, 2)
    np.testing.assert_array_equal(dcc.winners(W, V), want)
    np.testing.assert_array_equal(np.argmax(W @ V.T, axis=0), want)  # the reference's float32 product agrees
    Wf, Wr = W.copy(), W.copy()
    info = dcc._fit_info(Wf, V, one_batch(B), zeta, eta)
    assert info["screened"] == screen and info["tf32"] == (screen and gemm == "cublas")
    dcr.fit(Wr, V, one_batch(B), zeta, eta)
    np.testing.assert_allclose(Wf, Wr, **tol("float32"))


@pytest.mark.parametrize("gemm", GEMMS, indirect=True)
def test_screened_winners_fall_back_on_non_finite_products(gemm):
    """A sample whose products hold a NaN or overflow to inf has no error bound: it takes the
    plain argmax, np.argmax's rule (first NaN, ties among infinities to the lower index)."""
    rng = np.random.default_rng(5)
    W = rng.uniform(0, 1, (40, 20)).astype("float32")
    V = rng.uniform(0, 1, (6, 20)).astype("float32")
    V[0, 3] = np.nan
    V[1] = 1e38
    with np.errstate(over="ignore", invalid="ignore"):
        S = W @ V.T
    want = np.argmax(S, axis=0)
    assert want[0] == 0 and np.isinf(S[want[1], 1])
    np.testing.assert_array_equal(dcc.winners(W, V), want)


def test_ranks_with_k_equal_to_the_number_of_units():
    """k = H: the last unit in the order (every round of the selection used)."""
    rng = np.random.default_rng(3)
    I = rng.normal(size=(45, 20))
    for k in (1, 2, 45):
        for got, want in zip(khc.ranks(I, k), khr.ranks(I, k)):
            np.testing.assert_array_equal(got, want)


def test_no_device_memory_growth():
    cuda = _backends.cuda_module()
    V, zeta, eta, W0, rng = _dc_case("float32", N=40)
    X = rng.random((150, 20)).astype("float32")
    H0 = rng.normal(0, 1, (30, 20)).astype("float32")
    b = rng.permutation(150)[:140].reshape(1, 2, 70)

    def run():
        dcc.fit(W0.copy(), V, b, zeta, eta)
        khc.fit(H0.copy(), X, b, 3.0, 3, 0.4, 0.02, 1e-30)
        with pytest.raises(sdf.DivergenceError):  # refused before anything runs, as on the CPU
            dcc.fit(np.full_like(W0, np.nan), V, b, zeta, eta)

    run()
    free0, _ = cuda.mem_info()
    for _ in range(3):
        run()
    assert cuda.mem_info()[0] == free0


def test_bad_inputs_are_python_errors_and_leave_weights():
    V, zeta, eta, W0, rng = _dc_case("float64", N=20)
    b = rng.permutation(150)[:140].reshape(1, 2, 70)
    W = W0.copy()
    W[3, 2] = np.inf
    before = W.copy()
    with pytest.raises(sdf.DivergenceError, match="step 0"):  # its first batch is not finite, as on the CPU
        dcc.fit(W, V, b, zeta, eta)
    np.testing.assert_array_equal(W, before)
    with pytest.raises(IndexError, match="out of range"):
        dcc.fit(W0.copy(), V, b + 150, zeta, eta)
    with pytest.raises(TypeError, match="float32 or float64"):  # the module itself (the wrapper converts)
        _backends.cuda_module().dreamcomp_fit(W0.astype(np.float16), V, b, zeta, eta, np.zeros(70, np.int64), True)
    X = rng.random((150, 40))
    H = rng.normal(0, 1, (8, 40))
    for k in (1, 9):
        with pytest.raises(ValueError, match="k must be in"):
            khc.fit(H.copy(), X, b, 3.0, k, 0.4, 0.02, 1e-30)
    Hn = H.copy()
    Hn[0, 0] = np.nan
    with pytest.raises(sdf.DivergenceError, match="step 0"):
        khc.fit(Hn, X, b, 3.0, 2, 0.4, 0.02, 1e-30)


def test_batch_too_large_for_shared_memory_is_a_value_error():
    """A winner's sample list lives in shared memory: B beyond it is refused before any kernel."""
    cuda = _backends.cuda_module()
    limit = 227 * 1024 // 4 if cuda.emulated else None
    if limit is None:
        pytest.skip("the limit depends on the GPU")
    n = limit + 10
    V = np.zeros((n, 2))
    W = np.ones((2, 2))
    with pytest.raises(ValueError, match="batch_size"):
        dcc.fit(W, V, np.arange(n).reshape(1, 1, n), np.ones(2), np.ones(2))
    np.testing.assert_array_equal(W, 1.0)


def test_gemm_option_is_checked(monkeypatch):
    monkeypatch.setattr(dcc, "GEMM", "blas")
    V, zeta, eta, W0, _ = _dc_case("float64", N=5)
    with pytest.raises(ValueError, match="GEMM must be one of"):
        dcc.fit(W0, V, np.arange(10).reshape(1, 1, 10), zeta, eta)


def test_cublas_candidates_put_the_users_path_first(monkeypatch):
    monkeypatch.setenv("SPARSEDREAM_CUBLAS", "/opt/my/libcublas.so.13")
    got = _gpu_gemm.cublas_candidates()
    assert got[0] == "/opt/my/libcublas.so.13"
    assert "libcublas.so.13" in got and len(got) == len(set(got))
    assert _gpu_gemm.gemm_args("kernel", True)["cublas_libs"] == []


@pytest.mark.parametrize("dtype", DTYPES)
def test_estimators_on_cuda_match_numpy(dtype):
    """The models end to end with backend="cuda": same weights, classes and predictions."""
    rng = np.random.default_rng(8)
    X, y = rng.random((240, 30)), rng.integers(0, 3, 240)
    kw = dict(n_inputs=30, n_neurons=70, n_classes=3, lr=0.01, label_lr=0.05, batch_size=60, dtype=dtype, seed=4)
    fast = sdf.DreamComp(backend="cuda", **kw).fit(X, y, epochs=2)
    ref = sdf.DreamComp(backend="numpy", **kw).fit(X, y, epochs=2)
    assert fast.backend_ == "cuda"
    np.testing.assert_allclose(fast.weights_, ref.weights_, **tol(dtype))
    np.testing.assert_array_equal(fast.predict(X), ref.predict(X))
    kw = dict(n_inputs=30, n_hidden=40, k=3, batch_size=60, dtype=dtype, seed=4)
    fast = sdf.KrotovHopfield(backend="cuda", **kw).fit(X, epochs=2)
    ref = sdf.KrotovHopfield(backend="numpy", **kw).fit(X, epochs=2)
    np.testing.assert_allclose(fast.weights_, ref.weights_, **tol(dtype))


@pytest.mark.real_cuda
def test_cuda_request_without_gpu_says_why():
    """Outside the emulator, backend="cuda" on a machine without a GPU names the reason."""
    if HAVE_GPU:
        pytest.skip("a GPU is present")
    reason = _backends.backends()["cuda"].reason
    X, y = np.random.default_rng(0).random((20, 4)), np.arange(20) % 2
    with pytest.raises(ValueError, match="backend 'cuda' is not available here"):
        sdf.DreamComp(n_inputs=4, n_neurons=3, n_classes=2, batch_size=5, backend="cuda").fit(X, y)
    with pytest.raises(ValueError, match="not available here: " + reason[:20]):
        sdf.KrotovHopfield(n_inputs=4, n_hidden=3, k=2, batch_size=5, backend="cuda").fit(X)
