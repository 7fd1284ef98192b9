"""Rule A's CUDA kernel (csrc/cuda/rule_a.cu) beyond what test_backends.py checks for every
backend: the split of neurons over blocks, device arrays in, long runs by their statistics,
memory, and the errors the GPU path adds. On a machine without a GPU these run on the CPU
emulator of the kernels (csrc/cuda/emu), which executes the same source thread by thread.
"""
import numpy as np
import pytest

import sparsedream_fast as sdf
from sparsedream_fast import _backends
from sparsedream_fast.sparsedream import _cuda as cu
from sparsedream_fast.sparsedream import reference as ref
from testing import CUDA_EMULATED, random_inputs, tol

HAVE_GPU = _backends.available("cuda")
pytestmark = [pytest.mark.skipif(not (HAVE_GPU or CUDA_EMULATED),
                                 reason="no CUDA GPU and no emulator: " + _backends.backends()["cuda"].reason),
              pytest.mark.on_cuda_emulator]  # conftest.py: no GPU, so the emulator runs the kernel
#: the emulated device has 4 multiprocessors x 2 resident blocks
MAX_BLOCKS = 8 if CUDA_EMULATED else 64


def _model(backend, dtype="float64", **kw):
    base = dict(n_inputs=30, grid=(5, 7), k=4, lr=0.05, lateral=sdf.lateral.box(1, 0.1), error_clip=1.0,
                dtype=dtype, seed=5)
    base.update(kw)
    return sdf.SparseDream(backend=backend, **base)


CASES = {
    "box_trace": dict(trace=0.5, lr=0.03),
    "learned_bounds": dict(competition="normalized_lateral", output="competition",
                           lateral=sdf.lateral.random(2, 0.0, 1.0), learn_lateral=True, w_max=0.5, clip_every=6,
                           init=(0.0, 0.5), lr=0.01, error_clip=None),
    "k_large": dict(k=20, competition="drive", lateral=None, lr=0.005),
}


def _initial_state(case, dtype="float64"):
    """(state, cfg) of a fresh model of the case (the same for every call)."""
    m = _model("numpy", dtype=dtype, **CASES[case])
    cfg = m._config(30)
    return m._new_state(cfg, np.random.default_rng(7))


def _assert_states_close(got, want, dtype):
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(got.W, want.W, rtol=rtol, atol=atol)
    np.testing.assert_allclose(got.trace, want.trace, rtol=rtol, atol=atol)
    if hasattr(want.lateral, "data"):
        np.testing.assert_allclose(got.lateral.data, want.lateral.data, rtol=rtol, atol=atol)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("blocks", [1, 2, 3, 5, MAX_BLOCKS])
def test_any_split_of_neurons_over_blocks_gives_the_reference(case, blocks):
    """35 neurons over 1..8 blocks: uneven chunks, blocks owning no winner, winners
    spread over blocks; the merged top-k and the owners' updates must not depend on it."""
    X = random_inputs(40, 30, seed=blocks)
    order = np.random.default_rng(blocks).integers(0, 40, (2, 30))
    want, cfg = _initial_state(case)
    got, _ = _initial_state(case)
    ref.fit(want, X, order, cfg)
    last = cu.fit(got, X, order, cfg, blocks=blocks)
    _assert_states_close(got, want, "float64")
    # the kernel returns the last step's winners: k distinct neurons
    assert last.shape == (cfg.k,) and len(set(last.tolist())) == cfg.k and last.min() >= 0 and last.max() < 35


def test_step_returns_the_reference_winners_and_leaves_bounds_alone():
    state, cfg = _initial_state("learned_bounds")
    twin, _ = _initial_state("learned_bounds")
    v = random_inputs(1, 30, seed=3)[0]
    np.testing.assert_array_equal(cu.step(state, v, cfg), ref.step(twin, v, cfg))
    _assert_states_close(state, twin, "float64")


def test_device_array_input_is_read_in_place():
    """X given as a device array (``__cuda_array_interface__``): the kernel reads it where it
    lies. On the emulator, device memory is host memory, so a numpy buffer stands in."""
    X = random_inputs(25, 30, seed=2)
    order = np.arange(25)[None, :]
    host, cfg = _initial_state("box_trace")
    dev, _ = _initial_state("box_trace")
    cu.fit(host, X, order, cfg)
    if CUDA_EMULATED:
        class DeviceArray:
            def __init__(self, a):
                self.a = a
                self.__cuda_array_interface__ = dict(shape=a.shape, typestr=a.dtype.str, strides=None,
                                                     data=(a.ctypes.data, True), version=3)
        Xd = DeviceArray(np.ascontiguousarray(X))
    else:
        cupy = pytest.importorskip("cupy")
        Xd = cupy.asarray(X)
    cu.fit(dev, Xd, order, cfg)
    np.testing.assert_array_equal(dev.W, host.W)
    win_h = cu.infer(host.W, host.lateral, X, cfg)
    win_d = cu.infer(host.W, host.lateral, Xd, cfg)
    np.testing.assert_array_equal(win_d[0], win_h[0])
    np.testing.assert_array_equal(win_d[1], win_h[1])
    # a device array of the wrong dtype or width is refused, never converted in secret
    with pytest.raises(TypeError, match="model's dtype float64"):
        bad = DeviceArray(X.astype(np.float32)) if CUDA_EMULATED else Xd.astype("float32")
        cu.fit(dev, bad, order, cfg)
    with pytest.raises(ValueError, match=r"shape \(n_samples, 30\)"):
        bad = DeviceArray(np.ascontiguousarray(X[:, :20])) if CUDA_EMULATED else Xd[:, :20].copy()
        cu.fit(dev, bad, order, cfg)


def test_long_run_statistics_match_the_reference_float32():
    """Over a longer float32 run the trajectories may part after a rounding flip between
    near-tied winners; what must agree is what the map learned: the reconstruction error
    and how evenly the neurons win (within 10% relative / 0.1 absolute)."""
    X = random_inputs(200, 30, seed=8).astype(np.float32)
    kw = dict(dtype="float32", grid=(6, 6), lateral=sdf.lateral.box(2, 0.1), lr=0.05, seed=2)
    r = _model("numpy", **kw).fit(X, epochs=3)
    g = _model("cuda", **kw).fit(X, epochs=3)
    er, eg = r.reconstruction_error(X), g.reconstruction_error(X)
    assert abs(eg - er) <= 0.1 * abs(er), (eg, er)
    ur = np.bincount(r.winners(X).ravel(), minlength=36) / (200 * 4)
    ug = np.bincount(g.winners(X).ravel(), minlength=36) / (200 * 4)
    assert np.abs(np.sort(ug) - np.sort(ur)).max() <= 0.1
    assert (ug > 0).sum() >= 0.8 * (ur > 0).sum()


def test_no_device_memory_growth_across_fits():
    cuda = _backends.cuda_module()
    X = random_inputs(30, 30, seed=4)
    m = _model("cuda", trace=0.5)
    m.fit(X, epochs=1)
    free0, _ = cuda.mem_info()
    for _ in range(3):
        m.partial_fit(X)
        m.winners(X)
    free1, _ = cuda.mem_info()
    assert free1 == free0 if CUDA_EMULATED else free1 >= free0 - (1 << 20)


def test_gpu_limits_are_python_errors():
    state, cfg = _initial_state("box_trace")
    X = random_inputs(5, 30, seed=1)
    before = state.W.copy()
    with pytest.raises(ValueError, match="cannot all be resident"):
        cu.fit(state, X, np.zeros((1, 3), np.int64), cfg, blocks=35 if CUDA_EMULATED else 100_000)
    with pytest.raises(IndexError, match="order has an index outside"):
        cu.fit(state, X, np.full((1, 3), 5, np.int64), cfg)
    np.testing.assert_array_equal(state.W, before)  # nothing ran, nothing changed


def test_single_step_ops_name_the_missing_gpu_kernel():
    with pytest.raises(NotImplementedError, match="no CUDA kernel"):
        sdf.ops.topk(np.ones(5, np.float32), 2, backend="cuda")


def _sparse_frames(n, d, seed):
    """Frames in [0, 1] with 80% zeros, every fourth all zero, every fourth from the second
    with a single nonzero input."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    X[rng.random((n, d)) < 0.8] = 0.0
    X[::4] = 0.0
    one = np.arange(1, n, 4)
    X[one] = 0.0
    X[one, rng.integers(0, d, one.size)] = rng.random(one.size) + 0.5
    return X


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", ["drive", "lateral_trace", "weighted_average", "normalized_bounds"])
def test_drive_over_nonzero_inputs_gives_the_reference(case, dtype):
    """The kernel sums each drive over the frame's nonzero inputs only (the normalized modes
    over every input): sparse, all-zero and one-nonzero frames give the reference's run."""
    kw = {"drive": dict(competition="drive", lateral=None),
          "lateral_trace": dict(trace=0.5, lr=0.03),
          "weighted_average": dict(competition="weighted_average", output="competition", lateral=None,
                                   init=(0.0, 1.0), lr=0.005, error_clip=None),
          "normalized_bounds": dict(competition="normalized_lateral", init=(0.0, 0.5), w_max=0.5,
                                    clip_every=5, lr=0.01)}[case]
    X = _sparse_frames(40, 30, seed=3)
    if case == "weighted_average":  # one nonzero input makes every neuron tie (test_drive_block.py)
        X = X[np.count_nonzero(X, axis=1) != 1]
    want = _model("numpy", dtype=dtype, **kw).fit(X, epochs=2, shuffle=False)
    got = _model("cuda", dtype=dtype, **kw).fit(X, epochs=2, shuffle=False)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(got.weights_, want.weights_, rtol=rtol, atol=atol)
    np.testing.assert_allclose(got.trace_, want.trace_, rtol=rtol, atol=atol)


def test_nonfinite_rows_are_summed_over_every_input():
    """A weight that is inf where every frame is zero, in a row whose other weights are large:
    the drive of that row is NaN (inf * 0), as in the reference, so the row never wins and the
    fit runs to its end with finite weights. A kernel that skipped the zero input would give
    the row the largest finite drive; it would win, and its update (inf) would stop the fit
    at step 0 with a DivergenceError."""
    X = _sparse_frames(12, 30, seed=4)
    X[:, 6] = 0.0
    W0 = np.random.default_rng(0).uniform(0.1, 0.2, (35, 30))
    W0[9] = 5.0
    W0[9, 6] = np.inf
    runs = []
    for backend in ("numpy", "cuda"):
        m = _model(backend, competition="drive", lateral=None, k=3)
        m._check_init = lambda cfg: W0  # the model refuses a non-finite init; the kernel must cope
        runs.append(m.fit(X, epochs=1, shuffle=False))
    assert runs[0].n_steps_ == runs[1].n_steps_ == X.shape[0]
    for m in runs:
        W = m.weights_
        assert np.isinf(W[9, 6]) and np.isfinite(np.delete(W, 9, axis=0)).all()
    # (the weights are not compared: how a NaN competition value is ranked against the k-th
    # finite one is not specified, and the reference and the kernel differ there)
