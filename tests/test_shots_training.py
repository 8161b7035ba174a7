"""train_lr_grid and experiment=lr_grid with shots: every step trains on shot estimates of the gradient, while the
history and the success are judged on exact costs; same seed, same numbers; the shots are part of what defines a run."""

import json
import math

import pytest
import torch

from qtrain import cli
from qtrain.builders import shared_ansatz
from qtrain.training import train_lr_grid
from qtrain.training._module import step_seed
from tests.test_cli import compose_experiment, rows_of

CIRCUIT = shared_ansatz(2, 2, 2, seed=0)  # each parameter on two rotations: shifted gate by gate
COST = "Z0 Z1 + 0.5 X0"  # two groups of qubit-wise commuting terms
ARGS = {"optimizer": "sgd", "lrs": [0.1, 0.3], "starts": 4, "steps": 3, "seed": 2, "dtype": torch.complex128, "resolution": 8}


def test_every_step_trains_on_the_shot_estimate_and_records_the_exact_cost():
    """Replayed by hand: plain SGD moves each start by lr times the estimate `value_and_grad` gives with the step's seed
    (per learning rate, its starts keyed by their index, with that group's step seed), and the history holds the exact cost of every step's angles."""
    r = train_lr_grid(CIRCUIT, COST, shots=50, shot_seed=7, **ARGS)
    assert r.shots == 50 and [row["shots"] for row in r.rows] == [50, 50]
    paths = r.trajectories.double()  # (T + 1, G, B, d): all 4 starts are tracked
    for t in range(ARGS["steps"]):
        theta = paths[t].reshape(-1, CIRCUIT.n_params)
        grads = torch.cat([CIRCUIT.value_and_grad(group, COST, dtype=torch.complex128, shots=50, seed=step_seed(7, t, g))[1]
                           for g, group in enumerate(paths[t])])  # each learning rate's starts: rows 0..B-1 of its own seed
        lrs = torch.tensor(ARGS["lrs"], dtype=torch.float64).repeat_interleave(ARGS["starts"]).unsqueeze(1)
        torch.testing.assert_close(paths[t + 1].reshape(-1, CIRCUIT.n_params), theta - lrs * grads.double(), rtol=1e-6, atol=1e-7)
        exact = CIRCUIT.expval(theta, COST, dtype=torch.complex128).reshape(2, -1)
        torch.testing.assert_close(r.cost_history[t].double(), exact.double(), rtol=1e-6, atol=1e-7)
    # success is judged on the exact cost of the final angles
    final = CIRCUIT.expval(paths[-1].reshape(-1, CIRCUIT.n_params), COST, dtype=torch.complex128).reshape(2, -1)
    torch.testing.assert_close(r.final_cost, final.double(), rtol=1e-6, atol=1e-7)
    assert torch.equal(r.success_rate, (r.final_cost <= r.global_min + r.tol).double().mean(dim=1))


def test_same_seed_same_numbers_and_the_shot_seed_changes_only_the_samples():
    a = train_lr_grid(CIRCUIT, COST, shots=20, **ARGS)
    b = train_lr_grid(CIRCUIT, COST, shots=20, **ARGS)
    assert torch.equal(a.cost_history, b.cost_history) and torch.equal(a.trajectories, b.trajectories)
    same_starts = train_lr_grid(CIRCUIT, COST, shots=20, shot_seed=ARGS["seed"], **ARGS)  # shot_seed=None is `seed`
    assert torch.equal(same_starts.trajectories, a.trajectories)
    other = train_lr_grid(CIRCUIT, COST, shots=20, shot_seed=ARGS["seed"] + 1, **ARGS)
    assert torch.equal(other.trajectories[0], a.trajectories[0])  # the same starts
    assert not torch.equal(other.trajectories[1:], a.trajectories[1:])  # other samples


def test_step_seeds_differ_from_step_to_step_and_run_to_run():
    seeds = {step_seed(s, t, group) for s in range(3) for t in range(50) for group in (0, 4)}
    assert len(seeds) == 3 * 50 * 2 and all(0 <= x < 2**62 for x in seeds)


def test_exact_training_records_shots_none():
    r = train_lr_grid(CIRCUIT, COST, **ARGS)
    assert r.shots is None and all(row["shots"] is None for row in r.rows)


def test_a_checkpointed_shot_run_resumes_to_the_same_numbers(tmp_path):
    args = {**ARGS, "steps": 6}
    whole = train_lr_grid(CIRCUIT, COST, shots=30, **args)
    train_lr_grid(CIRCUIT, COST, shots=30, **{**args, "steps": 3}, checkpoint_dir=tmp_path, checkpoint_every=3)
    resumed = train_lr_grid(CIRCUIT, COST, shots=30, **args, checkpoint_dir=tmp_path, checkpoint_every=3)
    assert torch.equal(resumed.cost_history, whole.cost_history) and torch.equal(resumed.trajectories, whole.trajectories)


@pytest.mark.parametrize("first,then,named", [
    ({}, {"shots": 30}, "shots: None there, 30 now"),
    ({"shots": 30}, {"shots": 300}, "shots: 30 there, 300 now"),
    ({"shots": 30}, {}, "shots: 30 there, None now"),
    ({"shots": 30}, {"shots": 30, "shot_seed": 9}, "shot_seed: 2 there, 9 now"),
])
def test_a_checkpoint_of_other_shots_is_refused(tmp_path, first, then, named, monkeypatch):
    train_lr_grid(CIRCUIT, COST, **first, **ARGS, checkpoint_dir=tmp_path, checkpoint_every=3)
    monkeypatch.setattr("qtrain.training._run.pl.Trainer", None)  # refused before Lightning starts
    with pytest.raises(ValueError, match=named):
        train_lr_grid(CIRCUIT, COST, **then, **{**ARGS, "steps": 6}, checkpoint_dir=tmp_path, checkpoint_every=3)


@pytest.mark.parametrize("kwargs,message", [
    ({"shots": 0}, "shots must be a positive int .*got 0"),
    ({"shots": -5}, "shots must be a positive int .*got -5"),
    ({"shots": 2.5}, "shots must be a positive int .*got 2.5"),
    ({"shots": True}, "shots must be a positive int .*got True"),
    ({"shots": "many"}, "shots must be a positive int .*got 'many'"),
    ({"shots": 10, "cost": torch.tensor([1, 0, 0, 0], dtype=torch.complex128)},
     "shots=10: the cost is a target state's infidelity, not a Pauli sum"),
    ({"shots": 10, "cost": lambda states: states[:, 0].abs()}, "shots=10: the cost is a function of states, not a Pauli sum"),
    ({"shot_seed": 3}, r"shot_seed=3 seeds shot sampling, but shots is None"),
    ({"shots": 10, "shot_seed": -1}, "seed must be a non-negative int"),
])
def test_bad_shots_are_refused_before_work(kwargs, message, monkeypatch):
    def no_work(*args, **kw):
        raise AssertionError("work started before the input was checked")

    monkeypatch.setattr("qtrain.training.grid._landscape", no_work)
    monkeypatch.setattr("qtrain.training._run.fit", no_work)
    with pytest.raises(ValueError, match=message):
        train_lr_grid(CIRCUIT, **{"cost": COST, **ARGS, **kwargs})


def test_live_metrics_add_the_gradient_standard_error(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train_lr_grid(CIRCUIT, COST, shots=40, **ARGS, log_dir=tmp_path, log_every=1)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    noise = [event.value for event in events.Scalars("lr=0.1/grad_stderr_mean")]
    # two shifted evaluations of 40 shots for each of a parameter's two rotations; each cost term's estimate has sd <= 1/sqrt(40)
    assert len(noise) == ARGS["steps"] and all(0 < x < 1.5 * 2 / math.sqrt(40) for x in noise)


SWEEP = ["optimizers=[adam,sgd]", "sharing=[1]", "lrs=[0.1,0.3]", "starts=6", "steps=4", "params=2", "qubits=2", "resolution=8",
         "cost=global", "shots=[100,null,10]", "dtype=complex128"]


def test_a_shots_sweep_writes_success_against_shots_at_the_best_learning_rate(tmp_path):
    cli.run(compose_experiment("lr_grid", SWEEP), tmp_path)
    rows = rows_of(tmp_path / "results.csv")
    assert len(rows) == 2 * 2 * 3 and {r["shots"] for r in rows} == {"", "10", "100"}  # "": exact
    assert {p.name for p in (tmp_path / "cells").iterdir()} == {f"{o}_k1{s}.pt" for o in ("adam", "sgd") for s in ("", "_shots10", "_shots100")}
    assert json.loads((tmp_path / "run.json").read_text())["shots"] == [None, 10, 100]  # exact first, then ascending
    assert len({r["global_min"] for r in rows}) == 1  # one C* for the sharing degree, over every shots value
    best = rows_of(tmp_path / "success_vs_shots.csv")
    assert [(r["optimizer"], r["shots"]) for r in best] == [(o, s) for s in ("", "10", "100") for o in ("adam", "sgd")]
    for b in best:
        mine = [r for r in rows if (r["optimizer"], r["shots"]) == (b["optimizer"], b["shots"])]
        top = max(float(r["success_rate"]) for r in mine)
        ties = [r for r in mine if float(r["success_rate"]) == top]
        chosen = min(ties, key=lambda r: float(r["final_cost_median"]))
        assert (b["lr"], b["success_rate"], b["final_cost_median"]) == (chosen["lr"], chosen["success_rate"], chosen["final_cost_median"])
    for name in ("success_vs_shots", "success_vs_lr", "success_vs_lr_shots10", "success_vs_lr_shots100"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0


def test_a_run_folder_of_other_shots_is_refused(tmp_path):
    tiny = ["optimizers=[sgd]", "sharing=[1]", "lrs=[0.1]", "starts=2", "steps=1", "params=2", "qubits=2", "resolution=6", "cost=global"]
    cli.run(compose_experiment("lr_grid", tiny), tmp_path)
    assert json.loads((tmp_path / "run.json").read_text())["shots"] is None  # as in folders written before shots existed
    assert not (tmp_path / "success_vs_shots.csv").exists()  # one shots value: nothing to sweep
    with pytest.raises(ValueError, match=r"shots: None -> \[None, 10\]"):
        cli.run(compose_experiment("lr_grid", [*tiny, "shots=[null,10]"]), tmp_path)
