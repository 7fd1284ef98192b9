"""pytest configuration of the benchmarks (not part of the test suite: run them explicitly).

    pytest benches/ --benchmark-only                 # default selection (grids up to 80x80)
    pytest benches/ --benchmark-only --bench-slow    # also 100x100, 200x200 and the k sweep
    pytest benches/ --benchmark-only -m slow         # only the slow ones

Files named ``bench_*.py`` are collected here (the suite's ``tests/`` never sees them).
"""
from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # benchutil, notebook_loop

try:  # the installed package (editable installs carry the compiled extension) ...
    import sparsedream_fast  # noqa: F401
except ImportError:  # ... or, failing that, the source tree (numpy and numba backends only)
    sys.path.insert(0, os.path.dirname(HERE))


def pytest_addoption(parser):
    group = parser.getgroup("sparsedream benches")
    group.addoption("--bench-slow", action="store_true", default=False,
                    help="also run the benchmarks marked slow (grids 100x100 and 200x200, k sweep)")


#: pytest-benchmark's time per benchmark unless --benchmark-max-time is given (its own
#: default, 1 s, makes the default selection take twice as long on 2 cores)
MAX_TIME = 0.5


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a large benchmark (run with --bench-slow or -m slow)")
    given = any(str(a).startswith("--benchmark-max-time") for a in config.invocation_params.args)
    if hasattr(config.option, "benchmark_max_time") and not given:
        config.option.benchmark_max_time = MAX_TIME


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_collection_modifyitems(config, items):
    if config.getoption("--bench-slow") or "slow" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="slow benchmark: run with --bench-slow or -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
