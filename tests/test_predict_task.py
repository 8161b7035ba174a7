"""experiment=predict: outputs, the predictions against the sampled variances, resume, refusals."""

from __future__ import annotations

import math

import pytest

from qtrain import _predict, cli
from qtrain._tasks import predict
from qtrain.errors import UsageError
from tests.test_cli import compose_experiment, rows_of

TINY = ["qubits=[3,4]", "layers=24", "samples=600", "expressibility_samples=50", "entangling_samples=20",
        "families=[hea_line,hea_ring,free_fermions,qaoa]", "sharing=[1,2]", "sharing_seeds=[0,1,2]", "sharing_resolution=8", "seed=1"]


def test_outputs_predictions_and_resume(tmp_path, monkeypatch):
    result = cli.run(compose_experiment("predict", TINY), tmp_path)
    rows = rows_of(tmp_path / "results.csv")
    assert set(predict.COLUMNS) == set(rows[0])
    assert sorted((r["family"], int(r["qubits"])) for r in rows) == sorted((f, n) for f in ("hea_line", "hea_ring", "free_fermions", "qaoa") for n in (3, 4))
    by = {(r["family"], int(r["qubits"])): r for r in result["rows"]}
    assert by[("hea_line", 4)]["dla_dim"] == 255 and by[("free_fermions", 4)]["dla_dim"] == 28 and by[("hea_ring", 4)]["dla_dim"] == 120
    assert by[("hea_ring", 4)]["method"] == "commutant"  # Z0 Z1 and |0000> outside so(16): the general form
    assert by[("hea_ring", 4)]["predicted_variance"] == pytest.approx(7 / 135)
    for key in [("hea_line", 3), ("hea_line", 4), ("hea_ring", 3), ("hea_ring", 4), ("free_fermions", 3), ("free_fermions", 4), ("qaoa", 4)]:
        row = by[key]
        assert row["applies"] and abs(row["z_score"]) < 4, (key, row)
    assert by[("hea_line", 4)]["method"] == "ideals"
    assert by[("free_fermions", 4)]["predicted_variance"] == pytest.approx(1 / 7)
    sharing = rows_of(tmp_path / "sharing.csv")
    assert sorted((int(r["seed"]), int(r["sharing"])) for r in sharing) == [(s, k) for s in (0, 1, 2) for k in (1, 2)]
    assert all(int(r["dla_dim"]) == 3 for r in sharing if r["sharing"] == "1")  # three commuting rotations
    correlations = rows_of(tmp_path / "correlations.csv")
    assert [c["scope"] for c in correlations] == ["all", "k=1", "k=2"]
    assert correlations[1]["spearman_dim_ratio"] == "nan"  # one dimension at k = 1: no correlation to speak of
    assert (tmp_path / "predict.png").stat().st_size > 0 and (tmp_path / "sharing_dla.png").stat().st_size > 0

    # a rerun resumes without computing a row again
    calls = []
    monkeypatch.setattr(_predict, "family_row", lambda *a, **k: calls.append(a) or {})
    monkeypatch.setattr(_predict, "sharing_row", lambda *a, **k: calls.append(a) or {})
    again = cli.run(compose_experiment("predict", TINY), tmp_path)
    assert calls == [] and rows_of(tmp_path / "results.csv") == rows
    assert [r["dla_dim"] for r in again["rows"]] == [r["dla_dim"] for r in result["rows"]]
    with pytest.raises(UsageError, match=r"other settings \(samples: 600 -> 700\)"):
        cli.run(compose_experiment("predict", [*TINY, "samples=700"]), tmp_path)


def test_same_seed_same_numbers(tmp_path):
    small = ["qubits=[3]", "layers=6", "samples=50", "expressibility_samples=20", "entangling_samples=10", "families=[mcclean]", "sharing=null", "seed=4"]
    a = cli.run(compose_experiment("predict", small), tmp_path / "a")["rows"]
    b = cli.run(compose_experiment("predict", small), tmp_path / "b")["rows"]
    keep = lambda rows: [{k: v for k, v in r.items() if "seconds" not in k} for r in rows]  # noqa: E731
    assert keep(a) == keep(b)


def test_spearman():
    assert _predict.spearman([1, 2, 3, 4], [10, 20, 30, 45]) == pytest.approx(1.0)
    assert _predict.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert _predict.spearman([1, 1, 2, 2], [1, 2, 3, 4]) == pytest.approx(0.894427, rel=1e-5)  # ties at mean ranks
    assert math.isnan(_predict.spearman([3, 3, 3], [1, 2, 3]))
    assert math.isnan(_predict.spearman([1, 2], [1, 2]))
