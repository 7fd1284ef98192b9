"""What the tests can run here: backends and dtypes present, shared case builders."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

import sparsedream_fast as sdf
from sparsedream_fast import _backends
from sparsedream_fast.sparsedream.model import backend_module

try:
    import sparsedream_fast._cuda_emu  # noqa: F401
    #: No GPU here, but the CUDA kernels' sources run on the CPU emulator (csrc/cuda/emu):
    #: tests parametrized with backend="cuda" run there (conftest.py switches it on).
    CUDA_EMULATED = not _backends.available("cuda")
except ImportError:
    CUDA_EMULATED = False


def _rule_a_reason(name, info):
    """Why rule A cannot run on backend ``name`` here, or None when it can."""
    if name == "cuda" and CUDA_EMULATED:
        return None
    if not info.available:
        return f"{name}: {info.reason}"
    try:
        backend_module(name)
    except ValueError as exc:  # usable backend, rule A kernels not written yet (cuda)
        return str(exc)
    return None


#: Backends that run rule A on this machine, besides the reference itself.
FAST_BACKENDS = [n for n, i in sdf.backends().items() if n != "numpy" and _rule_a_reason(n, i) is None]
#: Every backend, each with a skip mark naming why when it cannot run rule A here.
ALL_BACKENDS = [
    pytest.param(n, marks=() if _rule_a_reason(n, i) is None else pytest.mark.skip(reason=_rule_a_reason(n, i)))
    for n, i in sdf.backends().items() if n != "numpy"
]
DTYPES = ["float64", "float32"]

#: float32 tolerance. One step's drive is a sum of D products: a different summation order
#: (SIMD lanes, threads, BLAS blocking) changes it by about sqrt(D) ulp ~ 20 * 6e-8 ~ 1e-6
#: relative; the multiplicative update carries such differences into W, and over a few
#: dozen steps they stay below 1e-4 relative while the winners (gaps ~1e-2) do not flip.
F32_RTOL, F32_ATOL = 1e-4, 1e-6
#: float64: the same reasoning with eps = 1.1e-16 gives ~1e-14 per step.
F64_RTOL, F64_ATOL = 1e-9, 1e-12


def tol(dtype):
    """(rtol, atol) for comparing a backend with the reference in ``dtype``."""
    return (F64_RTOL, F64_ATOL) if np.dtype(dtype) == np.float64 else (F32_RTOL, F32_ATOL)


def random_inputs(n, d, seed):
    """Fresh random inputs in [0, 1], float64, shape (n, d)."""
    return np.random.default_rng(seed).random((n, d))


#: the backends implementing each rule (A: SparseDream, B: DreamComp, C: KrotovHopfield,
#: D: the TNN columns and networks)
RULE_BACKENDS = {"A": ("numpy", "cpp", "numba", "cuda"), "B": ("numpy", "cpp", "numba", "cuda"),
                 "C": ("numpy", "cpp", "numba", "cuda"), "D": ("numpy", "cpp", "cuda")}


def backend_usable(name) -> str | None:
    """None when ``name`` runs here (cuda: on a GPU or the CPU emulator), else why not."""
    if name == "cuda" and CUDA_EMULATED:
        return None
    info = sdf.backends()[name]
    return None if info.available else f"{name}: {info.reason}"


def rule_backends(rule: str) -> list:
    """Every backend of ``rule`` as pytest params, each skipped with its reason where it
    cannot run here (cuda runs on the CPU emulator where there is no GPU, conftest.py)."""
    return [pytest.param(n, id=n, marks=() if backend_usable(n) is None
                         else pytest.mark.skip(reason=backend_usable(n)))
            for n in RULE_BACKENDS[rule]]


def write_idx(path, array):
    """Write ``array`` (uint8 values) as a gzipped IDX file, the format of (Fashion-)MNIST."""
    array = np.asarray(array)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with open(path, "wb") as f:
        f.write(gzip.compress(header + array.astype(">u1").tobytes()))


def fake_fashion_mnist(root, n_train=1000, n_test=100, seed=0):
    """Random images and labels in Fashion-MNIST's four files under ``root`` (made if absent)."""
    import os
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"), rng.integers(0, 256, (n, 28, 28)))
        write_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz"), rng.integers(0, 10, n))


def fresh_batch_weights(rule: str, params: dict, X, y, epochs: int, n: int) -> np.ndarray:
    """The weights of a fresh DreamComp (rule "B") or KrotovHopfield ("C") fit of
    ``epochs`` epochs stopped after exactly ``n`` batches: the fit's own setup (initial
    weights and batch order drawn from the seeded generator as ``fit`` draws them) run on
    the backend module for the first n batches of that order (Krotov's rate annealed as in
    the whole fit). float32 models, shuffle on."""
    from sparsedream_fast._backends import rule_module
    from sparsedream_fast._rng import batch_order
    X = np.asarray(X, np.float32)
    B = params["batch_size"]
    rng = np.random.default_rng(params["seed"])
    if rule == "B":
        from sparsedream_fast.dreamcomp import model as dc_model, reference as dc_ref
        m = sdf.DreamComp(**params)
        C, D = int(np.max(y)) + 1, X.shape[1]
        W = m._init_weights(m._n_neurons(), D + C, np.float32, rng)
        zeta, eta = dc_ref.synapse_vectors(D, C, m.recon_weight, m.lr, m.lr if m.label_lr is None else m.label_lr,
                                           np.float32)
        batches = batch_order(rng, X.shape[0], epochs, B, True).reshape(1, -1, B)[:, :n]
        mod = rule_module(m.backend, dc_model._IMPLEMENTED, "sparsedream_fast.dreamcomp", "DreamComp")[1]
        mod.fit(W, dc_ref.extend(X, np.asarray(y), C, np.float32), np.ascontiguousarray(batches), zeta, eta)
        return W
    from sparsedream_fast.krotov import model as kh_model
    m = sdf.KrotovHopfield(**params)
    W = m._init_weights(m.n_hidden, X.shape[1], np.float32, rng)
    batches = batch_order(rng, X.shape[0], epochs, B, True)
    mod = rule_module(m.backend, kh_model._IMPLEMENTED, "sparsedream_fast.krotov", "KrotovHopfield")[1]
    e, i = divmod(n, batches.shape[1])
    args = (m.p, m.k, m.delta, m.lr, m.prec)
    if e:
        mod.fit(W, X, batches[:e], *args, epoch0=0, total_epochs=epochs)
    if i:
        mod.fit(W, X, np.ascontiguousarray(batches[e:e + 1, :i]), *args, epoch0=e, total_epochs=epochs)
    return W
