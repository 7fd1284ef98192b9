"""The CPU emulator of the CUDA kernels (csrc/cuda/emu): its primitives, and how the cuda
backend switches to it. The kernels themselves are tested against the reference in each
rule's test file, on the GPU when there is one and on the emulator otherwise."""
import pytest

from sparsedream_fast import _backends

emu = pytest.importorskip("sparsedream_fast._cuda_emu",
                          reason="the emulator module was not built (SPARSEDREAM_CUDA_EMULATOR=OFF)")


def test_primitives():
    r = emu.emu_selftest()
    # warp 0: shfl_down sum at lane 0, xor butterfly sum at lane 5, ballot of odd lanes,
    # lane 7's value read by lane 3; warp 3's shfl_down sum
    assert r["warp"] == "496 496 1 70 496"
    assert r["grid_error"] == "" and r["grid"] == str(8 * 16 * sum(range(1, 9)))
    assert r["too_large"].startswith("cudaErrorCooperativeLaunchTooLarge")
    assert "deadlock" in r["divergent"]
    assert "not launched with cudaLaunchCooperativeKernel" in r["not_cooperative"]
    assert "invalid launch configuration" in r["bad_config"] and "block 2048x1x1" in r["bad_config"]


def test_device_queries_and_self_test():
    assert emu.emulated is True
    assert emu.device_count() == 1 and "emulator" in emu.device_name(0)
    assert emu.self_test(0)
    with pytest.raises(RuntimeError, match="device 3 does not exist"):
        emu.self_test(3)


def test_cuda_emulator_context_switches_the_backend_and_restores_it():
    real = _backends.backends()["cuda"]
    with _backends.cuda_emulator():
        info = _backends.backends()["cuda"]
        assert info.available and "emulator" in info.reason
        assert _backends.cuda_module() is emu
    assert _backends.backends()["cuda"] == real
    if not real.available:
        with pytest.raises(ValueError, match="backend 'cuda' is not available here"):
            _backends.resolve_backend("cuda")
