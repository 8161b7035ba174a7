"""experiment=remedies: the table, the variance sweep, C* shared per circuit, resume, same seed same numbers, refusals."""

from __future__ import annotations

import math

import pytest
import torch

from qtrain import cli
from qtrain._tasks import remedies
from qtrain.errors import UsageError
from qtrain.initializations import initial_angles
from tests.test_cli import compose_experiment, rows_of

TINY = ["starts=6", "steps=6", "samples=20", "lrs=[0.1,0.3]", "optimizers=[adam,sgd]", "mcclean_qubits=3", "mcclean_layers=4",
        "variance_qubits=[2,4]", "variance_layers=4", "layerwise.steps_per_stage=1", "params=2", "qubits=2", "seed=2"]


def test_outputs_and_resume(tmp_path, monkeypatch):
    result = cli.run(compose_experiment("remedies", TINY), tmp_path)
    rows = rows_of(tmp_path / "results.csv")
    assert list(rows[0]) == remedies.COLUMNS
    # (McClean: 4 inits + layerwise; shared: 4 inits) x 2 optimizers
    assert len(rows) == (5 + 4) * 2
    by = {(r["circuit"], r["init"], r["schedule"], r["optimizer"]): r for r in result["rows"]}
    shared_mirror = by[("shared", "identity_blocks", "plain", "adam")]
    assert shared_mirror["success_rate"] is None and "another circuit" in shared_mirror["note"]
    for circuit in ("mcclean", "shared"):  # one C* per circuit, and every success rate is scored against it
        stars = {r["global_min"] for r in result["rows"] if r["circuit"] == circuit}
        assert len(stars) == 1
        best = min(r["final_cost_median"] for r in result["rows"] if r["circuit"] == circuit and r["note"] == "")
        assert next(iter(stars)) <= best
    # the variance at the start is the start's: at an identity start the first parameter's gradient is the same at every
    # draw (i<psi_0|[G, O]|psi_0>/2), so its variance is 0 while the other parameters' is not
    mirror = by[("mcclean", "identity_blocks", "plain", "adam")]
    assert mirror["grad_var_first"] < 1e-20 < mirror["grad_var_mean"]
    assert by[("mcclean", "uniform", "plain", "adam")]["grad_var_first"] > 1e-3
    variance = rows_of(tmp_path / "variance.csv")
    assert sorted((r["init"], r["schedule"], int(r["qubits"])) for r in variance) == sorted(
        [(i, "plain", n) for i in ("uniform", "small", "gaussian", "identity_blocks") for n in (2, 4)] + [("uniform", "layerwise", n) for n in (2, 4)])
    by_lr = rows_of(tmp_path / "results_by_lr.csv")
    assert len(by_lr) == (5 + 3) * 2 * 2
    for name in ("remedies.png", "run.json"):
        assert (tmp_path / name).stat().st_size > 0

    calls = []
    monkeypatch.setattr(remedies, "train_lr_grid", lambda *a, **k: calls.append(a) or None)
    again = cli.run(compose_experiment("remedies", TINY), tmp_path)
    assert calls == []
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in again["rows"]] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in result["rows"]]
    with pytest.raises(UsageError, match=r"other settings \(steps: 6 -> 7\)"):
        cli.run(compose_experiment("remedies", [*TINY, "steps=7"]), tmp_path)


def test_same_seed_same_numbers(tmp_path):
    small = ["starts=4", "steps=3", "samples=8", "lrs=[0.1]", "optimizers=[adam]", "mcclean_qubits=2", "mcclean_layers=2", "variance_qubits=[2]",
             "variance_layers=2", "layerwise=null", "circuits=[mcclean]", "inits=[uniform,gaussian]", "seed=4"]
    a = cli.run(compose_experiment("remedies", small), tmp_path / "a")
    b = cli.run(compose_experiment("remedies", small), tmp_path / "b")
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(a["rows"]) == strip(b["rows"]) and a["variance"] == b["variance"]


def test_mcclean_identity_blocks_start_at_the_preparation():
    """The mirrored McClean circuit has the plain one's depth and starts as its R_Y(pi/4) layer alone: <Z0 Z1> = cos^2(pi/4)."""
    plain = remedies.mcclean_training_circuit(3, 4, 0, mirrored=False)
    mirrored = remedies.mcclean_training_circuit(3, 4, 0, mirrored=True)
    assert plain.n_params == mirrored.n_params == 12 and len(plain.ops) == len(mirrored.ops)
    theta = initial_angles(mirrored, "identity_blocks", 5, torch.Generator().manual_seed(0))
    torch.testing.assert_close(mirrored.expval(theta, "Z0 Z1", dtype=torch.complex128), torch.full((5,), 0.5, dtype=torch.float64))


@pytest.mark.parametrize("override,message", [
    ("inits=[uniform,normal]", "inits"),
    ("circuits=[mcclean,hea]", "circuits"),
    ("+layerwise.layers=3", "layerwise.layers: is McClean's circuit's own"),
    ("layerwise.steps_per_stage=0", "layerwise.steps_per_stage must be an integer >= 1, got 0"),
    ("variance_layers=5", "variance_layers: identity blocks mirror half of the layers"),
    ("lrs=[0.1,-1]", "lrs"),
    ("optimizers=[adam,lbfgs]", "lbfgs"),
    ("init_width=-0.1", "init_width"),
    ("mcclean_qubits=20", "mcclean_qubits: at most 14"),
    ("layerwise.layers_per_stage=5", r"layerwise.layers_per_stage \(5\) exceeds mcclean_layers \(4\)"),
    ("inits=[identity_blocks]", "layerwise: its row trains an init that is not identity_blocks"),
])
def test_refusals_before_any_work(override, message, tmp_path):
    with pytest.raises(UsageError, match=message):
        cli.run(compose_experiment("remedies", [*TINY, override]), tmp_path)
    assert not (tmp_path / "results.csv").exists()


def test_qng_blocks_are_checked_against_every_circuit_before_any_work(tmp_path):
    """McClean's 3 x 4 = 12 parameters are not divided by 5 blocks: refused naming the key, before the variance sweep writes."""
    with pytest.raises(UsageError, match=r"optimizer.qng.blocks: 5 blocks do not divide the circuit's 12 parameters.*\(mcclean circuit\)"):
        cli.run(compose_experiment("remedies", [*TINY, "optimizers=[qng]", "optimizer.qng.blocks=5", "circuits=[mcclean]"]), tmp_path)
    assert not (tmp_path / "variance.csv").exists()


def test_another_circuit_seed_is_another_run(tmp_path):
    small = ["starts=3", "steps=2", "samples=4", "lrs=[0.1]", "optimizers=[adam]", "mcclean_qubits=2", "mcclean_layers=2", "variance_qubits=[2]",
             "variance_layers=2", "layerwise=null", "circuits=[mcclean]", "inits=[uniform]"]
    cli.run(compose_experiment("remedies", small), tmp_path)
    with pytest.raises(UsageError, match=r"other settings \(circuit_seed: 0 -> 1\)"):
        cli.run(compose_experiment("remedies", [*small, "circuit_seed=1"]), tmp_path)
    with pytest.raises(UsageError, match=r"other settings \(variance_qubits: \[2\] -> \[2, 3\]\)"):
        cli.run(compose_experiment("remedies", [*small, "variance_qubits=[2,3]"]), tmp_path)


def test_trainer_layerwise_is_refused_here(tmp_path):
    with pytest.raises(UsageError, match="trainer.layerwise: the remedies experiment does not take it"):
        cli.run(compose_experiment("remedies", [*TINY, "+trainer.layerwise={layers: 2, steps_per_stage: 1}"]), tmp_path)


def test_an_odd_depth_has_no_identity_blocks_row(tmp_path):
    result = cli.run(compose_experiment("remedies", [*TINY, "mcclean_layers=3", "circuits=[mcclean]", "variance_qubits=null"]), tmp_path)
    row = next(r for r in result["rows"] if r["init"] == "identity_blocks")
    assert row["success_rate"] is None and "mcclean_layers=3 is odd" in row["note"]
    assert all(math.isfinite(r["success_rate"]) for r in result["rows"] if r["init"] != "identity_blocks")
