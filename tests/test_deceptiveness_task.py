"""The deceptiveness experiment: outputs, report, resume, bad input."""

import csv

import pytest

from qtrain import cli
from qtrain.errors import UsageError  # cli.run turns what plan refuses (a MemoryError too) into this
from qtrain._tasks import deceptiveness, deceptiveness_report
from tests.test_cli import compose_experiment, rows_of

TINY = ["sharing=[1,2,3]", "resolution=[12,16]", "tol=[1e-3,1e-2]", "rule=[gradient,steepest]"]


def test_outputs_and_report(tmp_path):
    result = cli.run(compose_experiment("deceptiveness", TINY), tmp_path)
    rows = rows_of(tmp_path / "results.csv")
    assert list(rows[0]) == deceptiveness.COLUMNS
    assert len(rows) == 3 * 2 * 2 * 2
    assert {r["rule"] for r in rows} == {"gradient", "steepest"}
    assert all(0 <= float(r["ratio"]) <= 1 and int(r["n_minima"]) >= 1 for r in rows)
    norms = rows_of(tmp_path / "gradient_norms.csv")
    assert {r["method"] for r in norms} == {"exact", "finite_difference"} and len(norms) == 12
    for name in ("deceptiveness_vs_sharing.png", "gradient_norms.png", "landscape_sharing1.png", "landscape_sharing3.png", "report.md"):
        assert (tmp_path / name).stat().st_size > 0
    report = (tmp_path / "report.md").read_text()
    for claim in ("better global minimum", "larger gradient magnitudes", "higher deceptiveness", "nearly independent of resolution"):
        assert claim in report
    assert set(result["report"]["verdicts"].values()) <= set(deceptiveness_report.VERDICTS)
    # each verdict is the one its numbers in results.csv call for, and report.md says it in the claim's row
    verdicts = result["report"]["verdicts"]
    assert verdicts == verdicts_from_the_table(rows_of(tmp_path / "results.csv"))
    table = [line.lstrip("| ").split(" | ") for line in report.splitlines() if line.startswith("| ") and " | " in line]
    rows_of_report = {cells[0]: cells[1] for cells in table}
    for claim, label in REPORT_LABELS.items():
        assert rows_of_report[label] == verdicts[claim], (claim, rows_of_report)


#: the report's row label of each claim
REPORT_LABELS = {
    "better global minimum with more sharing": "better global minimum with more sharing",
    "larger gradients with more sharing": "larger gradient magnitudes",
    "higher deceptiveness with more sharing": "higher deceptiveness",
    "ratio nearly independent of resolution": "ratio nearly independent of resolution",
}


def trend_verdict(values: list[float], sign: int, threshold: float) -> str:
    """The report's rule, from its definition: "holds" when every step between neighbouring
    sharing degrees moves the claimed way (sign) by more than the threshold; "holds only partly"
    when only first-to-last does; "within tolerance" when all values lie within the threshold."""
    moves = [sign * (later - earlier) for earlier, later in zip(values[:-1], values[1:])]
    if min(moves) > threshold:
        return "holds"
    if sign * (values[-1] - values[0]) > threshold:
        return "holds only partly (not monotone)"
    return "within tolerance" if max(values) - min(values) <= threshold else "fails"


def verdicts_from_the_table(table: list[dict[str, str]]) -> dict[str, str]:
    """The verdicts recomputed from results.csv: the main comparison is the gradient rule at the
    smallest tol and the finest resolution; a grid statistic's threshold is its largest spread
    across resolutions (at that tol and rule), C*'s is tol; "nearly independent": spread <= 0.02."""
    rows = [{k: (v if k == "rule" else float(v)) for k, v in r.items()} for r in table]
    tol = min(r["tol"] for r in rows)
    same = [r for r in rows if r["tol"] == tol and r["rule"] == "gradient"]
    finest = max(r["resolution"] for r in same)
    main = sorted((r for r in same if r["resolution"] == finest), key=lambda r: r["sharing"])
    assert len(main) == 3 and len({r["resolution"] for r in same}) == 2

    def spread(key: str) -> float:
        across = {k: [r[key] for r in same if r["sharing"] == k] for k in (r["sharing"] for r in main)}
        return max(max(values) - min(values) for values in across.values())

    return {
        "better global minimum with more sharing": trend_verdict([r["global_min"] for r in main], -1, tol),
        "larger gradients with more sharing": trend_verdict([r["grad_norm_q50"] for r in main], +1, spread("grad_norm_q50")),
        "higher deceptiveness with more sharing": trend_verdict([r["ratio"] for r in main], +1, spread("ratio")),
        "ratio nearly independent of resolution": "holds" if spread("ratio") <= 0.02 else "fails",
    }


def test_report_numbers_come_from_the_rows(tmp_path):
    result = cli.run(compose_experiment("deceptiveness", TINY), tmp_path)
    main = sorted((r for r in result["rows"] if r["resolution"] == 16 and r["tol"] == 1e-3 and r["rule"] == "gradient"), key=lambda r: r["sharing"])
    report = (tmp_path / "report.md").read_text()
    assert "ratio = " + ", ".join(f"{r['ratio']:.4g}" for r in main) in report
    assert "C* = " + ", ".join(f"{r['global_min']:.4g}" for r in main) in report


def test_same_seed_same_numbers_and_resume(tmp_path, monkeypatch):
    cfg = compose_experiment("deceptiveness", TINY)
    first = cli.run(cfg, tmp_path / "a")["rows"]
    assert first == cli.run(cfg, tmp_path / "b")["rows"]
    calls = []
    original = deceptiveness.sample_landscape
    monkeypatch.setattr(deceptiveness, "sample_landscape", lambda *a, **k: calls.append(a[2]) or original(*a, **k))
    cli.run(cfg, tmp_path / "a")
    assert calls == []  # everything was done
    with open(tmp_path / "a" / "results.csv") as f:
        kept = [r for r in csv.DictReader(f) if not (r["sharing"] == "2" and r["resolution"] == "16")]
    with open(tmp_path / "a" / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=deceptiveness.COLUMNS)
        writer.writeheader()
        writer.writerows(kept)
    assert cli.run(cfg, tmp_path / "a")["rows"] == first
    assert calls == [16]


@pytest.mark.parametrize(
    "override,error,message",
    [
        ("resolution=[2]", ValueError, "resolution: every entry must be >= 3, got 2"),
        ("tol=[-0.1]", ValueError, "tol: tol must be >= 0, got -0.1"),
        ("rule=downhill", ValueError, "rule: must be one of .* got 'downhill'"),
        ("sharing=[0]", ValueError, "sharing: every entry must be >= 1, got 0"),
        ("axes=XQ", ValueError, "axes/entangler: axes must be 3 letters from XYZ, got 'XQ'"),
        ("cost=Z9", ValueError, "cost: cost 'Z9' acts on qubit 9"),
        ("method=guess", ValueError, "method: must be one of .* got 'guess'"),
        ("params=9", UsageError, "resolution/params: a grid of resolution 16 over 9 parameters has 6.87e\\+10 points"),
    ],
)
def test_bad_input_is_refused_before_work(tmp_path, override, error, message):
    with pytest.raises(error, match=message):
        cli.run(compose_experiment("deceptiveness", [*TINY, override]), tmp_path)
    assert not (tmp_path / "results.csv").exists()


@pytest.mark.parametrize(
    "values,increasing,threshold,verdict",
    [
        ([0.3485, 0.3483], False, 1e-3, "within tolerance"),  # the C* pair: not "holds"
        ([0.40, 0.35, 0.30], False, 1e-3, "holds"),
        ([0.40, 0.3995, 0.30], False, 1e-3, "holds only partly (not monotone)"),
        ([0.30, 0.35], False, 1e-3, "fails"),
        ([0.1, 0.2, 0.3], True, 0.05, "holds"),
        ([0.1, 0.12, 0.3], True, 0.05, "holds only partly (not monotone)"),
    ],
)
def test_trend_verdicts_respect_the_threshold(values, increasing, threshold, verdict):
    from qtrain._tasks.deceptiveness_report import trend

    assert trend(values, increasing, threshold) == verdict


def test_report_states_each_threshold(tmp_path):
    cli.run(compose_experiment("deceptiveness", TINY), tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "(tol = 0.001)" in report and report.count("its spread across resolutions") == 2 and "spread <= 0.02" in report


def test_run_json_is_typed_and_a_folder_of_another_circuit_is_refused(tmp_path):
    import json

    cfg = compose_experiment("deceptiveness", ["sharing=[1]", "resolution=[8]", "tol=1e-3"])
    cli.run(cfg, tmp_path / "a")
    recorded = json.loads((tmp_path / "a" / "run.json").read_text())
    assert recorded["params"] == 3 and recorded["circuit_seed"] == 0 and recorded["relative_tol"] is False and recorded["axes"] is None
    assert len(recorded["circuit"]) == 16 and recorded["circuit_gates"][:3] == ["ry 0 0.7853981633974483", "ry 1 0.7853981633974483", "ry 2 0.7853981633974483"]
    # a folder written before the circuit was recorded (an older default circuit): refused, nothing mixed
    old = {k: str(v) for k, v in recorded.items() if k not in ("circuit", "circuit_gates")}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "run.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match=r"other settings \(.*circuit: None -> '[0-9a-f]{16}'"):
        cli.run(cfg, tmp_path / "old")
    assert not (tmp_path / "old" / "results.csv").exists()
    with pytest.raises(ValueError, match="circuit: '[0-9a-f]{16}' -> '[0-9a-f]{16}'"):  # another circuit in the same folder
        cli.run(compose_experiment("deceptiveness", ["sharing=[1]", "resolution=[8]", "tol=1e-3", "entangler=cz"]), tmp_path / "a")


def test_figures_explain_their_marks(tmp_path):
    from qtrain import _figures as figures

    rows = [{"sharing": k, "resolution": 8, "method": m, "q05": 0.1, "q25": 0.2, "q50": 0.3, "q75": 0.4, "q95": 0.5, "mean": 0.3}
            for k in (1, 2) for m in ("exact", "finite_difference")]
    boxes = figures.gradient_norm_boxes(rows)
    assert len(boxes.axes) == 1  # one resolution: no second, duplicate panel
    assert [t.get_text() for t in boxes.axes[0].get_legend().get_texts()] == ["exact gradient", "finite difference of grid values"]
    assert figures.VARIANCE_LABEL.startswith("Var$") and "\\partial" in figures.VARIANCE_LABEL  # mathtext, not TeX source
    from qtrain.builders import random_target_state, shared_ansatz
    from qtrain.landscape import deceptiveness as analyse

    view = figures.landscape_view(analyse(shared_ansatz(3, 2, 2, seed=0), random_target_state(3, 0), resolution=12), "test")
    labels = [t.get_text() for legend in view.legends for t in legend.get_texts()]
    assert "global minimum" in labels and "local (non-global) minimum" in labels
