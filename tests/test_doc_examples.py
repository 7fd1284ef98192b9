"""Every Python block of the README and of the documentation's pages runs, and shows true values.

How a page's blocks are run:

- the ```` ```python ```` blocks of one file run one after the other in one namespace (a
  page's later blocks may use its earlier ones), in a fresh temporary folder;
- a line ``EXPR  # -> VALUE`` is checked: ``EXPR`` must equal the Python literal ``VALUE``
  (a float to the digits shown), and ``# -> ~VALUE`` means within 0.02 of it (accuracies,
  whose last digits depend on the BLAS and the scikit-learn version); two spaces after the
  value start a remark (``# -> (5, 5)   winners``);
- an HTML comment right before a block changes how the test runs it, never what a reader
  sees: ``<!-- test: A => B; C => D -->`` replaces the text A by B (smaller sizes; every
  replacement must apply), ``<!-- test: needs cuda -->`` runs the block only where a GPU
  is usable (else the test skips, saying so).

Gallery scripts run in ``tests/test_docs.py`` (the documentation's build).
"""
import ast
import glob
import io
import math
import os
import re
import tokenize

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FENCE = re.compile(r"(?:<!--\s*test:(?P<directive>.*?)-->\s*\n)?^```python[ \t]*\n(?P<code>.*?)^```[ \t]*$",
                   re.S | re.M)


def doc_files():
    files = [os.path.join(ROOT, "README.md")]
    files += sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
    skip = os.sep + os.path.join("docs", "_build") + os.sep
    return [f for f in files if skip not in f and os.sep + "auto_examples" + os.sep not in f]


def blocks(path):
    """(directive text, code, first line number) of every python block of a Markdown file."""
    with open(path) as f:
        text = f.read()
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start("code")) + 1
        out.append(((m.group("directive") or "").strip(), m.group("code"), line))
    return out


def _directives(text):
    needs, repl = set(), []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        if part.startswith("needs "):
            needs.add(part[len("needs "):].strip())
        elif "=>" in part:
            a, b = part.split("=>", 1)
            repl.append((a.strip(), b.strip()))
        else:
            raise ValueError(f"unknown test directive {part!r}")
    return needs, repl


def _expected_comments(code):
    """line number -> the text after '# ->' on that line."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT and tok.string.lstrip("#").strip().startswith("->"):
            # the value ends where two spaces begin a remark: "# -> (5, 5)   winners"
            out[tok.start[0]] = re.split(r"\s{2,}", tok.string.lstrip("#").strip()[2:].strip(), maxsplit=1)[0]
    return out


def _digits(text):
    """Decimal places shown in a number literal ('0.91' -> 2, '12' -> 0)."""
    m = re.search(r"\.(\d+)", text)
    return len(m.group(1)) if m and "e" not in text.lower() else None


def check_value(got, expected, where):
    """Compare a value with the literal a page shows after '# ->'."""
    approx = expected.startswith("~")
    text = expected[1:].strip() if approx else expected
    want = ast.literal_eval(text)
    if approx:
        assert abs(float(got) - float(want)) <= 0.02, f"{where}: got {got!r}, the page shows ~{want!r}"
        return
    if isinstance(want, float) and not isinstance(want, bool):
        digits = _digits(text)
        tol = 0.5 * 10.0 ** (-digits) + 1e-12 if digits is not None else 1e-9 * max(1.0, abs(want))
        assert math.isfinite(float(got)) and abs(float(got) - want) <= tol, \
            f"{where}: got {got!r}, the page shows {want!r}"
        return
    if isinstance(got, np.ndarray):
        got = got.tolist()
    if isinstance(got, (np.generic,)):
        got = got.item()
    assert got == want, f"{where}: got {got!r}, the page shows {want!r}"


def _instrument(code, where):
    """The block's AST with every '# -> VALUE' expression statement wrapped in a check."""
    tree = ast.parse(code)
    expected = _expected_comments(code)
    n_checks = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and node.end_lineno in expected:
            line = node.end_lineno
            node.value = ast.Call(func=ast.Name("__check__", ast.Load()),
                                  args=[node.value, ast.Constant(expected.pop(line)),
                                        ast.Constant(f"{where}, line {line}")], keywords=[])
            n_checks += 1
    assert not expected, f"{where}: '# ->' on lines that are not expressions: {sorted(expected)}"
    return ast.fix_missing_locations(tree), n_checks


def _usable(need):
    if need == "cuda":
        import sparsedream_fast as sdf
        return sdf.backends()["cuda"].available
    raise ValueError(f"unknown requirement {need!r}")


FILES = [f for f in doc_files() if blocks(f)]


def test_the_pages_have_examples():
    names = {os.path.relpath(f, ROOT) for f in FILES}
    assert "README.md" in names
    assert {"docs/rules/sparsedream.md", "docs/rules/dreamcomp.md", "docs/rules/krotov_hopfield.md",
            "docs/rules/tnn.md"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=[os.path.relpath(f, ROOT) for f in FILES])
def test_python_blocks_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    rel = os.path.relpath(path, ROOT)
    namespace = {"__name__": "__doc_example__", "__check__": check_value}
    skipped = []
    for directive, code, line in blocks(path):
        needs, repl = _directives(directive)
        where = f"{rel}, block at line {line}"
        missing = [n for n in sorted(needs) if not _usable(n)]
        if missing:
            skipped.append(f"{where} needs {', '.join(missing)}")
            continue
        for a, b in repl:
            assert a in code, f"{where}: the test replacement {a!r} no longer applies"
            code = code.replace(a, b)
        tree, _ = _instrument(code, where)
        exec(compile(tree, f"<{where}>", "exec"), namespace)
    if skipped:
        pytest.skip("; ".join(skipped) + " (not usable here)")


def test_check_value():
    check_value(0.9134, "~0.91", "t")
    check_value(0.914, "0.91", "t")
    check_value((3, 5), "(3, 5)", "t")
    check_value(np.int64(400), "400", "t")
    check_value(True, "True", "t")
    with pytest.raises(AssertionError):
        check_value(0.88, "~0.91", "t")
    with pytest.raises(AssertionError):
        check_value(0.916, "0.91", "t")
    with pytest.raises(AssertionError):
        check_value((3, 4), "(3, 5)", "t")
    with pytest.raises(AssertionError):
        check_value(float("nan"), "0.5", "t")


def test_instrument_checks_the_values_shown():
    ns = {"__check__": check_value}
    tree, n = _instrument("x = 2\nx + 1   # -> 3   three\n", "t")
    assert n == 1
    exec(compile(tree, "t", "exec"), ns)
    tree, _ = _instrument("x = 2\nx + 1   # -> 4\n", "t")
    with pytest.raises(AssertionError, match="the page shows 4"):
        exec(compile(tree, "t", "exec"), ns)
    with pytest.raises(AssertionError, match="not expressions"):
        _instrument("x = 2   # -> 2\n", "t")


def test_directives():
    assert _directives("needs cuda") == ({"cuda"}, [])
    assert _directives("epochs=10 => epochs=1; n=5 => n=2") == (set(), [("epochs=10", "epochs=1"), ("n=5", "n=2")])
    with pytest.raises(ValueError):
        _directives("something else")
