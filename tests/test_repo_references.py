"""No tracked file may send a reader outside the repository.

The project's documentation is written in its own words: no file points to the sessions'
shared folder (``../shared``), to the files kept there (the rule sheet, the baselines, the
style notes, the research notebooks by path) or to a machine's own folders (``/work/...``).
Every repository path a file cites (``docs/...``, ``benches/...``, ``src/...`` ...) must exist.
"""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: what no tracked file may contain (case-sensitive), with why
FORBIDDEN = {
    r"\.\./shared": "the sessions' shared folder is not part of a clone",
    r"(?<![\w/])shared/(seeds|ALGORITHMS|BASELINES|STYLE)": "the sessions' shared folder",
    r"ALGORITHMS\.md": "the rule sheet outside the repository (cite docs/rules/*.md)",
    r"BASELINES\.md": "the baselines outside the repository (cite BENCHMARKS.md)",
    r"STYLE\.md": "the style notes outside the repository",
    r"(?<![\w.])seeds/0\d\d": "the research notebooks are not in the repository",
    r"/work/": "a folder of one machine",
}

#: a path inside the repository, as files cite them
CITED = re.compile(r"(?<![\w./-])((?:docs|benches|tests|tools|csrc|src|\.ci|sparsedream_fast)/[\w./-]*\w)")
#: cited paths that are made by a command, not tracked
GENERATED = re.compile(r"^docs/(_build|auto_examples|gen_modules)(/|$)")


def tracked_text_files():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for rel in out.decode().split("\0"):
        if not rel or not os.path.isfile(os.path.join(ROOT, rel)):
            continue
        with open(os.path.join(ROOT, rel), "rb") as f:
            data = f.read()
        if b"\0" in data[:8192]:
            continue  # binary (pictures)
        yield rel, data.decode("utf-8", errors="replace")


def _is_git_checkout():
    try:
        return subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=ROOT,
                              capture_output=True).returncode == 0
    except OSError:  # no git program (the GPU machine's image, say): nothing to list
        return False


pytestmark = pytest.mark.skipif(not _is_git_checkout(), reason="needs the git checkout (lists tracked files)")


def test_the_file_list_is_not_empty():
    names = [rel for rel, _ in tracked_text_files()]
    assert "README.md" in names and "pyproject.toml" in names


def test_no_file_points_outside_the_repository():
    hits = []
    this = os.path.relpath(__file__, ROOT)
    for rel, text in tracked_text_files():
        if rel == this:
            continue
        for pattern, why in FORBIDDEN.items():
            for m in re.finditer(pattern, text):
                line = text.count("\n", 0, m.start()) + 1
                hits.append(f"{rel}:{line}: {m.group(0)!r} ({why})")
    assert not hits, "references outside the repository:\n" + "\n".join(hits)


def _exists(path):
    path = path.rstrip(".")
    if GENERATED.match(path):
        return True
    if any(ch in path for ch in "*{}<>"):
        return True  # a pattern, not a path
    if path.startswith("sparsedream_fast/"):
        path = "src/" + path   # the package, cited by its import path
    return os.path.exists(os.path.join(ROOT, path))


def test_every_cited_repository_path_exists():
    missing = []
    for rel, text in tracked_text_files():
        if (rel.startswith("docs/benchmarks/") and rel.endswith(".json")) or rel == ".gitignore":
            continue  # measurement records (their runs' outputs) and the ignored, generated paths
        for m in CITED.finditer(text):
            path = m.group(1)
            if not _exists(path):
                line = text.count("\n", 0, m.start()) + 1
                missing.append(f"{rel}:{line}: {path}")
    assert not missing, "cited paths that are not in the repository:\n" + "\n".join(missing)
