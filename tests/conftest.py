"""Test configuration: make tests/testing.py importable under --import-mode=importlib, and
run on the CPU emulator of the CUDA kernels, where there is no GPU (testing.CUDA_EMULATED),
the tests parametrized with backend="cuda" and those marked ``on_cuda_emulator`` (except
the ones also marked ``real_cuda``)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from testing import CUDA_EMULATED  # noqa: E402


@pytest.fixture(autouse=True)
def _cuda_backend_on_the_emulator(request):
    callspec = getattr(request.node, "callspec", None)
    wanted = (callspec is not None and callspec.params.get("backend") == "cuda") or (
        request.node.get_closest_marker("on_cuda_emulator") and not request.node.get_closest_marker("real_cuda"))
    if CUDA_EMULATED and wanted:
        from sparsedream_fast import _backends
        with _backends.cuda_emulator():
            yield
    else:
        yield
