"""The documentation builds from the sources with the README's command, warnings as errors.

The build runs every gallery script (sphinx-gallery), imports every documented name and
writes the command line's --help texts, so a broken docstring, example or page fails here.
"""
import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytest.importorskip("sphinx", reason="the docs extra is not installed: pip install '.[docs]'")


def readme_docs_command():
    """The sphinx-build part of the README's documentation command, as a list of arguments."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    lines = [ln for ln in text.splitlines() if "sphinx-build" in ln]
    assert len(lines) == 1, f"the README should give one documentation command, found {lines}"
    cmd = lines[0][lines[0].index("sphinx-build"):]
    return shlex.split(cmd)


def test_the_readme_command_treats_warnings_as_errors():
    args = readme_docs_command()
    assert args[0] == "sphinx-build" and "-W" in args and args[-2] == "docs"


@pytest.mark.slow
def test_docs_build_with_the_readme_command(tmp_path):
    args = readme_docs_command()
    out = tmp_path / "html"
    args = [sys.executable, "-m", "sphinx"] + args[1:-1] + [str(out)]
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("SPARSEDREAM_DOCS_GALLERY", None)   # the gallery runs
    res = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env)
    log = res.stdout[-6000:] + res.stderr[-6000:]
    assert res.returncode == 0, log
    assert "build succeeded" in res.stdout, log
    for page in ("index.html", "getting_started.html", "rules/sparsedream.html", "rules/dreamcomp.html",
                 "rules/krotov_hopfield.html", "rules/tnn.html", "backends.html", "gpu.html",
                 "checkpoints.html", "cli.html", "benchmarks.html", "api/index.html", "auto_examples/index.html"):
        assert (out / page).is_file(), page
    # every gallery script ran and drew at least one picture
    scripts = sorted(f for f in os.listdir(os.path.join(ROOT, "docs", "gallery")) if re.match(r"plot_.*\.py$", f))
    for script in scripts:
        html = (out / "auto_examples" / script.replace(".py", ".html")).read_text()
        assert "sphx-glr-single-img" in html or "sphx-glr-multi-img" in html or "animation" in html, script
    # the API reference documents the models
    api = (out / "api" / "models.html").read_text()
    assert "sparsedream_fast.SparseDream" in api and "sparsedream_fast.DreamComp" in api
