"""Sphinx configuration of the sparsedream_fast documentation.

Build (the README's command): ``sphinx-build -W --keep-going -b html docs docs/_build/html``
after ``pip install ".[docs]"``. Warnings are errors. The package is imported from the
installed distribution (it has compiled modules; the source folder alone does not run).
The gallery scripts in ``docs/gallery`` run during the build (sphinx-gallery).
"""
import os
import warnings

import sparsedream_fast

project = "sparsedream_fast"
author = "the sparsedream_fast authors"
copyright = "the sparsedream_fast authors, MIT licence"
release = sparsedream_fast.__version__
version = release

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "benchmarks/**", "gallery/**", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "**/sg_execution_times.rst"]
templates_path = []

# Markdown pages: $...$ math, ::: fences, anchors for the headings (links to #sections)
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# API reference: numpydoc parses the docstrings, autosummary writes one page per name
autosummary_generate = True
# set_*_request: scikit-learn's metadata-routing setters, generated on each estimator class
# because its fit takes more than (X, y); their docstrings point into scikit-learn's own docs
autodoc_default_options = {"members": True, "inherited-members": False,
                           "exclude-members": "set_fit_request, set_partial_fit_request, set_transform_request, "
                                              "set_score_request, set_predict_request, set_predict_proba_request"}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "pydata_sphinx_theme"
html_title = f"sparsedream_fast {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path = []

sphinx_gallery_conf = {
    "examples_dirs": "gallery",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": (True, "jshtml"),
    "abort_on_example_error": True,
    "show_memory": False,
    "min_reported_time": 1,
    "write_computation_times": False,
    "plot_gallery": os.environ.get("SPARSEDREAM_DOCS_GALLERY", "True"),
}

# the figures are drawn without a display
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("ignore", message="Matplotlib is currently using agg", category=UserWarning)


# ------------------------------------------------------------------ the command line's help
CLI_COMMANDS = ("demo", "train", "sweep", "tnn", "show", "bench", "backends")


def _write_cli_help(app):
    """Each subcommand's --help, as the installed command prints it, for cli.md."""
    import subprocess
    import sys
    out = os.path.join(app.srcdir, "_generated", "cli")
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ, COLUMNS="100")
    for cmd in CLI_COMMANDS:
        res = subprocess.run([sys.executable, "-m", "sparsedream_fast.cli", cmd, "--help"],
                             capture_output=True, text=True, env=env, check=True)
        text = res.stdout.replace("usage: __main__.py", "usage: sparsedream")
        path = os.path.join(out, f"{cmd}.txt")
        old = open(path).read() if os.path.exists(path) else None
        if old != text:  # unchanged files keep their time stamp (no needless rebuilds)
            with open(path, "w") as f:
                f.write(text)


def setup(app):
    app.connect("builder-inited", _write_cli_help)
