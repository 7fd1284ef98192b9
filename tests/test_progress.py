"""Progress reports: a bar on a terminal, plain lines in a log, alike in every loop."""
import io

import numpy as np

from sparsedream_fast import _progress


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_lines_in_a_log():
    out = io.StringIO()
    bar = _progress.progress_bar(total=100, desc="fit", unit="step", stream=out)
    assert isinstance(bar, _progress.LineProgress)
    with bar:
        for _ in range(100):
            bar.update(1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in out.getvalue()
    assert lines[0].startswith("fit: 10/100 steps (10%)") and lines[-1].startswith("fit: 100/100 steps (100%)")


def test_big_updates_write_one_line_each():
    out = io.StringIO()
    bar = _progress.LineProgress(1000, "x", "seq", out)
    bar.update(450)
    bar.update(550)
    bar.close()
    assert [ln.split(" (")[0] for ln in out.getvalue().splitlines()] == ["x: 450/1,000 seqs", "x: 1,000/1,000 seqs"]


def test_an_interrupted_run_ends_with_its_count():
    out = io.StringIO()
    bar = _progress.LineProgress(100, "x", "it", out)
    bar.update(5)
    bar.close()
    assert out.getvalue().startswith("x: 5/100 its (5%)")


def test_a_bar_on_a_terminal():
    from tqdm.auto import tqdm
    bar = _progress.progress_bar(total=10, desc="fit", stream=_Tty())
    assert isinstance(bar, tqdm)
    bar.close()


def test_models_report_in_lines_when_stderr_is_a_log(capsys):
    import sparsedream_fast as sdf
    from sparsedream_fast.tnn import TNNNetwork
    X = np.random.default_rng(0).random((200, 16))
    sdf.SparseDream(n_inputs=16, grid=(4, 4), k=2, backend="numpy", seed=0).fit(X, epochs=1, progress=True)
    err = capsys.readouterr().err
    assert "SparseDream[numpy]: 200/200 steps (100%)" in err and "\r" not in err
    net = TNNNetwork(T=8, seed=0, backend="numpy", progress=True)
    net.add_input("in", 4).add_column("c", 3, threshold=2, k=1).connect("in", "c", init=(0, 2))
    net.fit(np.random.default_rng(0).integers(0, 9, (20, 2, 4)).astype(np.uint8))
    err = capsys.readouterr().err
    assert "TNN fit: 20/20 seqs (100%)" in err and "\r" not in err
