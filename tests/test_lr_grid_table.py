"""experiment=lr_grid's results.csv, recomputed by plain loops from the per-start values its cells/*.pt keep."""

import math
import statistics
import types

import pytest
import torch

from qtrain import cli
from tests.test_cli import compose_experiment, rows_of

SMALL = ["optimizers=[adam,sgd]", "optimizer.sgd.momentum=0.9", "sharing=[2]", "lrs=[0.0,0.1,0.3]", "starts=12", "steps=40", "params=3",
         "qubits=3", "resolution=12", "dtype=complex128"]  # the default circuit: at sharing 2 a deceptive basin holds some starts


def number(text):
    return None if text == "" else float(text)


def test_results_csv_is_the_per_start_values_scored_against_one_threshold(tmp_path):
    cli.run(compose_experiment("lr_grid", SMALL), tmp_path)
    cfg = compose_experiment("lr_grid", SMALL)
    rows = rows_of(tmp_path / "results.csv")
    assert len(rows) == 2 * 3
    cells = {(name, k): torch.load(tmp_path / "cells" / f"{name}_k{k}.pt", weights_only=False) for name in ("adam", "sgd") for k in (2,)}
    for row in rows:
        k, name, g = int(row["sharing"]), row["optimizer"], [0.0, 0.1, 0.3].index(float(row["lr"]))
        cell = cells[(name, k)]
        # C*: the lowest of the sharing degree's final costs, over both optimizers, and its polished landscape minimum
        finals = [c for o in ("adam", "sgd") for c in cells[(o, k)].cost_history[-1].flatten().tolist()]
        c_star = min(min(finals), cell.landscape_min)
        assert float(row["global_min"]) == c_star
        assert row["global_min_source"] == ("landscape" if cell.landscape_min <= min(finals) else "best found")
        threshold = c_star + cfg.tol
        history = cell.cost_history[:, g].tolist()  # history[t][b]
        final = history[-1]
        success = [c <= threshold for c in final]
        predicted = [c <= threshold for c in cell.predicted_cost.tolist()]
        stays = []
        for b in range(len(final)):
            t = len(history)
            while t > 0 and history[t - 1][b] <= threshold:
                t -= 1
            if t < len(history):
                stays.append(t)
        assert float(row["success_rate"]) == pytest.approx(sum(success) / len(final), abs=1e-15)
        assert float(row["predicted_success"]) == pytest.approx(sum(predicted) / len(final), abs=1e-15)
        assert float(row["agreement"]) == pytest.approx(sum(s == p for s, p in zip(success, predicted)) / len(final), abs=1e-15)
        assert float(row["final_cost_median"]) == pytest.approx(statistics.median(final), abs=1e-15)
        assert float(row["final_cost_min"]) == min(final)
        assert number(row["steps_to_success_median"]) == (statistics.median(stays) if stays else None)
        assert row["optimizer_settings"] == ("momentum=0.9" if name == "sgd" else "defaults")
        assert (int(row["starts"]), int(row["steps"])) == (12, 40)
        assert math.isfinite(float(row["deceptiveness_ratio"]))
    assert any(float(r["success_rate"]) > 0 for r in rows) and any(float(r["predicted_success"]) < 1 for r in rows)  # both outcomes occur
    # a cell stored by a qtrain that kept no per-start predictions cannot be rescored: refused, not half-scored
    old = {key: value for key, value in vars(cells[("sgd", 2)]).items() if key not in ("predicted_cost", "predicted_minimum")}
    torch.save(types.SimpleNamespace(**old), tmp_path / "cells" / "sgd_k2.pt")
    with pytest.raises(ValueError, match="sgd_k2.pt was written by an older qtrain"):
        cli.run(compose_experiment("lr_grid", SMALL), tmp_path)
