"""Test configuration: make tests/testing.py importable under --import-mode=importlib, and
run tests parametrized with backend="cuda" on the CPU emulator of the CUDA kernels where
there is no GPU (testing.CUDA_EMULATED)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from testing import CUDA_EMULATED  # noqa: E402


@pytest.fixture(autouse=True)
def _cuda_backend_on_the_emulator(request):
    callspec = getattr(request.node, "callspec", None)
    if CUDA_EMULATED and callspec is not None and callspec.params.get("backend") == "cuda":
        from sparsedream_fast import _backends
        with _backends.cuda_emulator():
            yield
    else:
        yield
