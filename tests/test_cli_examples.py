"""Every example that ``sparsedream COMMAND --help`` prints runs, with small sizes.

The examples are read from the installed command's help (so a new example is tested as
soon as it is printed), run in the order printed in one temporary folder (a ``show``
example may read what a ``demo`` or ``train`` example wrote), with flags appended that
shrink the work (fewer frames, epochs, images; argparse takes the last value of a flag).
Each must exit with status 0 and print no NaN or infinite figure.
"""
import contextlib
import io
import os
import re
import shlex
import shutil
import time

import numpy as np
import pytest

from sparsedream_fast.cli import SUBCOMMANDS, main

#: flags appended to every example of a subcommand (the last value of a flag wins)
SMALL = {
    "demo": ["--frames", "300", "--epochs", "1", "--eval-frames", "100", "--anim-frames", "3"],
    "train": ["--frames", "300", "--n-samples", "300", "--epochs", "1", "--eval-frames", "100"],
    "tnn": ["--n-train", "200", "--n-test", "50"],
    "show": ["--frames", "300", "--eval-frames", "100", "--anim-frames", "3"],
    "bench": ["--grids", "10", "--steps", "20", "--repeat", "1", "--check-steps", "5", "--notebook-max-s", "2",
              "--data", "random"],
    "backends": [],
    "sweep": [],   # its example file is small already
}
#: more for the batch models of ``train --model``
SMALL_BATCH = ["--n-samples", "600", "--n-neurons", "25", "--n-hidden", "20", "--batch-size", "50"]
#: ``show`` and ``demo`` run first, so that ``show`` finds the checkpoints they write
ORDER = ["demo", "train", "tnn", "bench", "backends", "sweep", "show"]

NOT_FINITE = re.compile(r"(?<![\w.])[-+]?(nan|inf|infinity)(?![\w])", re.I)


def run_cli(argv):
    """(exit status, printed text) of ``sparsedream ARGV`` run in this process."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, out.getvalue()


def help_examples(cmd):
    """The example command lines of ``sparsedream CMD --help``, comments removed."""
    code, text = run_cli([cmd, "--help"])
    assert code == 0, text
    lines, out, joined = text.splitlines(), [], ""
    for line in lines:
        s = line.strip()
        if joined:
            joined += " " + s.rstrip("\\").strip()
            if not s.endswith("\\"):
                out.append(joined)
                joined = ""
            continue
        if s.startswith("sparsedream "):
            s = s.split("  #")[0].strip()
            if s.endswith("\\"):
                joined = s.rstrip("\\").strip()
            else:
                out.append(s)
    return [shlex.split(c)[1:] for c in out]


def _fixtures(folder):
    """Files the examples name: frames.npy, run.toml (the help's own TOML), model.npz, and the
    repository's examples/ folder (sweep's TOML files)."""
    from sparsedream_fast.data import digit_tapestry_frames
    shutil.copytree(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"),
                    os.path.join(folder, "examples"))
    frames, _ = digit_tapestry_frames(n_frames=300, source="generated", seed=0)
    np.save(os.path.join(folder, "frames.npy"), frames.astype(np.float32))
    _, text = run_cli(["train", "--help"])
    toml = [ln[2:] for ln in text.splitlines() if re.match(r"^  (\[\w+\]|\w+ = )", ln)]
    toml = [re.sub(r"\s+#.*$", "", ln) for ln in toml]
    with open(os.path.join(folder, "run.toml"), "w") as f:
        f.write("\n".join(toml) + "\n")


EXAMPLES = [(cmd, argv) for cmd in ORDER for argv in help_examples(cmd)]


def test_every_subcommand_prints_examples():
    assert set(ORDER) == set(SUBCOMMANDS)
    for cmd in ORDER:
        assert help_examples(cmd), f"sparsedream {cmd} --help prints no example"


@pytest.mark.slow
def test_help_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    _fixtures(str(tmp_path))
    failures, seconds = [], {}
    for _, argv in EXAMPLES:
        cmd = argv[0]   # a help may show another subcommand's example (demo's shows show)
        extra = list(SMALL[cmd])
        if cmd == "train" and "--model" in argv:
            extra += SMALL_BATCH
        if cmd == "show" and argv[1:2] == ["model.npz"] and not os.path.exists("model.npz"):
            # the examples' generic checkpoint: the demo's
            shutil.copy(os.path.join("sparsedream_demo", "model.npz"), "model.npz")
        t0 = time.perf_counter()
        code, text = run_cli(argv + extra)
        seconds[" ".join(argv)] = round(time.perf_counter() - t0, 1)
        shown = "sparsedream " + " ".join(argv)
        if code != 0:
            failures.append(f"{shown}: exit status {code}\n{text[-2000:]}")
        elif NOT_FINITE.search(text):
            failures.append(f"{shown}: printed a figure that is not finite\n{text[-2000:]}")
    print("seconds per example:", seconds)
    assert not failures, "\n\n".join(failures)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHELL_FENCE = re.compile(r"^```(?:bash|sh|console|shell)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def doc_commands():
    """(file, command line) of every ``sparsedream ...`` command in a shell block of the README
    and of the documentation's pages (a line may chain commands with ``&&``)."""
    import glob
    files = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"),
                                                                 recursive=True))
    out = []
    for path in files:
        if os.sep + "_build" + os.sep in path:
            continue
        with open(path) as f:
            text = f.read()
        for block in SHELL_FENCE.findall(text):
            for line in block.splitlines():
                for part in line.split("&&"):
                    part = part.split(" #")[0].strip()
                    if part.startswith("sparsedream "):
                        out.append((os.path.relpath(path, ROOT), part))
    return out


def test_the_docs_commands_are_help_examples():
    """The command lines the README and the pages show are examples of a ``--help``, so
    test_help_examples_run runs them too."""
    commands = doc_commands()
    assert any(c == "sparsedream demo" for _, c in commands)   # the README's main command is seen
    shown = {tuple(argv) for _, argv in EXAMPLES}
    missing = [f"{where}: {c}" for where, c in commands if tuple(shlex.split(c)[1:]) not in shown]
    assert not missing, "commands in the docs that no --help prints (add them to its examples):\n" + \
        "\n".join(missing)


def test_not_finite_pattern():
    assert NOT_FINITE.search("recon MSE nan after")
    assert NOT_FINITE.search("error -inf")
    assert not NOT_FINITE.search("info: 0.5 steps, inference 3.2, infinite loop avoided by finite")
