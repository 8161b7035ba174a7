"""experiments/benchmarks/small_layout.py at the tiniest size: every form is checked against the engine's kernel before
it is timed, and the table has a row per (n, form)."""

from experiments.benchmarks import small_layout
from qtrain._tables import read_rows


def test_every_form_agrees_and_is_timed(tmp_path, capsys):
    rows = small_layout.main(["--qubits", "2", "3", "--batch", "5", "--repeats", "1", "--calls", "2", "--csv", str(tmp_path / "t.csv")])
    assert [(r["n"], r["form"]) for r in rows] == [(n, f) for n in (2, 3) for f in small_layout.FORMS]
    assert all(r["us_per_gate"] > 0 for r in rows) and all(r["x_bmm"] == 1.0 for r in rows if r["form"] == "bmm")
    assert len(read_rows(tmp_path / "t.csv")) == 6
    assert "x bmm" in capsys.readouterr().out


def test_a_wrong_form_is_not_timed(monkeypatch):
    """The check can fail: a form that rotates the wrong way is stopped before its time is taken."""
    real = small_layout.kernels

    def broken(n, batch, seed=0):
        forms, back = real(n, batch, seed)
        forms["pairs"] = lambda f=forms["pairs"]: f().conj() * 1j
        return forms, back

    monkeypatch.setattr(small_layout, "kernels", broken)
    try:
        small_layout.main(["--qubits", "2", "--batch", "4", "--repeats", "1", "--calls", "1", "--csv", "/dev/null"])
    except SystemExit as e:
        assert "pairs at n = 2 differs from bmm" in str(e)
    else:
        raise AssertionError("a wrong form was timed")
