"""The package as installed: one version, its license and metadata, the build record and the
warning for a compiled module that was built but cannot load, the test command."""
from __future__ import annotations

import os
import re
import warnings
from importlib.metadata import metadata, version

import pytest

import sparsedream_fast as sdf
from sparsedream_fast import _build, cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.dirname(os.path.abspath(sdf.__file__))


def pyproject():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def test_one_version_everywhere(capsys):
    want = pyproject()["project"]["version"]
    assert sdf.__version__ == version("sparsedream-fast") == want
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.split() == ["sparsedream", want]
    # nowhere else: no second literal in the package
    for dirpath, _, files in os.walk(os.path.join(ROOT, "src")):
        for name in files:
            if name.endswith(".py"):
                text = open(os.path.join(dirpath, name)).read()
                assert not re.search(r"__version__\s*=\s*['\"]\d+\.\d+", text), os.path.join(dirpath, name)


def test_license_and_metadata():
    proj = pyproject()["project"]
    assert proj["license"] == "MIT" and proj["license-files"] == ["LICENSE"]
    assert open(os.path.join(ROOT, "LICENSE")).read().startswith("MIT License")
    meta = metadata("sparsedream-fast")
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("Classifier") and "Typing :: Typed" in meta.get_all("Classifier")
    assert meta["Keywords"] and proj["authors"]
    assert os.path.exists(os.path.join(PACKAGE, "py.typed"))


def test_the_build_record_lists_what_loads_here():
    built = _build.built_modules()
    assert "_core" in built  # the test install builds the C++ extension
    for name in built:
        assert _build.load_error(name) is None, name
    for name in ("_core", "_cuda", "_cuda_emu"):  # nothing loads that was not recorded
        if name not in built:
            assert _build.load_error(name) is not None, name
    assert not _build.check_compiled_modules()  # a sound install warns of nothing


def test_a_built_module_that_cannot_load_warns_once_naming_it(monkeypatch):
    monkeypatch.setattr(_build, "_warned", set())
    with pytest.warns(_build.BrokenBuildWarning, match=r"built with its compiled module _gone but cannot load it"):
        assert _build.check_compiled_modules(built=("_core", "_gone"), names=("_core", "_gone")) == ["_gone"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _build.check_compiled_modules(built=("_core", "_gone"), names=("_core", "_gone")) == []
    # a module that was never built is no reason to warn
    assert _build.check_compiled_modules(built=("_core",), names=("_gone",)) == []


def test_cpp_backend_says_when_the_built_extension_fails_to_load(monkeypatch):
    import importlib

    from sparsedream_fast import _backends
    real = importlib.import_module

    def fake(name, *a):
        if name == "sparsedream_fast._core":
            raise ImportError("libgomp.so.1: cannot open shared object file")
        return real(name, *a)
    monkeypatch.setattr(_backends.importlib, "import_module", fake)
    info = _backends._probe_cpp()
    assert not info.available and "was built but cannot be loaded" in info.reason and "libgomp" in info.reason


def test_ci_runs_exactly_the_readme_test_command():
    readme = open(os.path.join(ROOT, "README.md")).read()
    commands = [line for line in readme.splitlines() if line.startswith("python3 -m venv") and "pytest" in line]
    assert len(commands) == 1
    assert "SPARSEDREAM_CUDA_EMULATOR=ON" in commands[0]  # the emulator is built for the tests only
    ci = open(os.path.join(ROOT, ".ci", "run")).read().splitlines()
    assert commands[0] in ci


def test_the_emulator_is_off_by_default_and_out_of_wheels():
    cfg = pyproject()
    assert cfg["tool"]["scikit-build"]["cmake"]["define"]["SPARSEDREAM_CUDA_EMULATOR"]["default"] == "OFF"
    assert cfg["tool"]["cibuildwheel"]["linux"]["environment"]["SPARSEDREAM_CUDA_EMULATOR"] == "OFF"
    cmake = open(os.path.join(ROOT, "CMakeLists.txt")).read()
    assert re.search(r"set\(SPARSEDREAM_CUDA_EMULATOR OFF CACHE", cmake)
