"""Many starts as one batch: exactly the separate runs, scored against C*."""

import functools
import itertools
import math
import statistics

import numpy as np
import pytest
import torch

from qtrain import Circuit
from qtrain.builders import random_target_state, shared_ansatz
from qtrain.layers import draw_angles
from qtrain.training import train_lr_grid

CIRCUIT = shared_ansatz(3, 3, 2, seed=0)
TARGET = random_target_state(3, seed=0)


def separate_run(optimizer, lr, start, steps, settings):
    """One start alone, by plain autograd through the circuit (backprop): the costs before every step and after the last, and its angles."""
    theta = start.clone().requires_grad_(True)
    opt = optimizer([theta], lr=lr, **settings)
    costs, path = [], []
    for _ in range(steps):
        opt.zero_grad()
        cost = CIRCUIT.infidelity(theta, TARGET)[0]
        cost.backward()
        costs.append(cost.item())
        path.append(theta.detach().clone())
        opt.step()
    costs.append(CIRCUIT.infidelity(theta.detach(), TARGET)[0].item())
    path.append(theta.detach().clone())
    return torch.tensor(costs, dtype=torch.float64), torch.stack(path)


@pytest.mark.parametrize("name,optimizer,settings", [("adam", torch.optim.Adam, {}), ("sgd", torch.optim.SGD, {"momentum": 0.9, "nesterov": True})])
def test_batched_starts_are_exactly_the_separate_runs(name, optimizer, settings):
    lrs, starts, steps = [0.05, 0.3], 4, 12
    r = train_lr_grid(CIRCUIT, TARGET, name, lrs=lrs, starts=starts, steps=steps, seed=3, dtype=torch.complex128, optimizer_settings=settings)
    assert r.cost_history.shape == (steps + 1, 2, starts) and r.trajectories.shape == (steps + 1, 2, starts, 3)
    first_starts = r.trajectories[0, 0]
    assert torch.equal(first_starts, r.trajectories[0, 1])  # every learning rate starts from the same B starts
    for g, lr in enumerate(lrs):
        for b in range(starts):
            costs, path = separate_run(optimizer, lr, first_starts[b], steps, settings)
            assert torch.allclose(r.cost_history[:, g, b].double(), costs, atol=1e-10, rtol=0)
            assert torch.allclose(r.trajectories[:, g, b], path, atol=1e-10, rtol=0)


def test_scores_follow_their_definitions():
    """Every score recomputed here by plain loops over the per-start values, against the one threshold C* + tol."""
    r = train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.0, 0.1], starts=64, steps=60, seed=1, tol=1e-3, dtype=torch.complex128)
    history, steps, starts = r.cost_history.tolist(), 60, 64  # history[t][g][b]
    assert all(history[t][0] == history[0][0] for t in range(steps + 1))  # lr 0: a no-training baseline
    best = min(min(row) for row in history[-1])
    assert r.global_min == min(best, r.landscape_min)
    assert r.global_min_source == ("landscape" if r.landscape_min <= best else "best found")
    threshold = r.global_min + r.tol
    predicted = [c <= threshold for c in r.predicted_cost.tolist()]
    assert r.predicted.tolist() == predicted
    for g in range(2):
        success = [history[-1][g][b] <= threshold for b in range(starts)]
        first = []
        for b in range(starts):  # the first step from which the cost stays <= threshold to the end, -1 when the final cost fails
            t = steps + 1
            while t > 0 and history[t - 1][g][b] <= threshold:
                t -= 1
            first.append(t if t <= steps else -1)
        assert r.steps_to_success[g].tolist() == first
        assert [f >= 0 for f in first] == success  # a start has a step count exactly when it succeeds
        assert r.success_rate[g].item() == pytest.approx(sum(success) / starts, abs=1e-15)
        assert r.predicted_success[g].item() == pytest.approx(sum(predicted) / starts, abs=1e-15)
        assert r.agreement[g].item() == pytest.approx(sum(s == p for s, p in zip(success, predicted)) / starts, abs=1e-15)
        reached = [f for f in first if f >= 0]
        assert r.rows[g]["steps_to_success_median"] == (statistics.median(reached) if reached else None)
        assert r.rows[g]["final_cost_median"] == pytest.approx(statistics.median(history[-1][g]), abs=1e-15)
    assert r.success_rate[1] > r.success_rate[0] and r.rows[1]["lr"] == 0.1 and r.rows[1]["steps_to_success_median"] is not None


def test_steps_to_success_counts_from_where_the_cost_stays_below():
    """A start that dips below C* + tol and climbs out again has not succeeded and has no step count."""
    from qtrain.training.grid import score

    costs = torch.tensor([[0.9, 0.5, 0.9, 0.3, 0.3], [0.9, 0.3, 0.3, 0.3, 0.9], [0.3, 0.3, 0.3, 0.3, 0.3]]).T.reshape(5, 1, 3)  # (T + 1, G, B)
    r = score("sgd", "defaults", [0.1], costs, torch.zeros(5, 1, 3, 1), 0.1, 0.3, "given")
    assert r.steps_to_success.tolist() == [[3, -1, 0]] and r.success_rate.tolist() == [2 / 3]
    assert r.rows[0]["steps_to_success_median"] == 1.5


def test_predictions_are_polished_minima_judged_against_the_same_c_star():
    """Each start's predicted cost is a continuous minimum (zero gradient), at or below its grid terminal (at R = 36 the
    grid lies about 2e-3 above); rescoring against another C* moves the prediction with the success."""
    from qtrain.landscape import sample_landscape
    from qtrain.training import rescore

    r = train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=64, steps=40, seed=1, resolution=36, dtype=torch.complex128)
    values, grads = CIRCUIT.value_and_grad(r.predicted_minimum, TARGET, dtype=torch.complex128)
    assert torch.allclose(values, r.predicted_cost, atol=1e-13, rtol=0) and grads.norm(dim=1).max() < 1e-6
    grid_min = sample_landscape(CIRCUIT, TARGET, 36).values.min().item()
    assert grid_min - r.landscape_min > 1e-3  # the polished global minimum lies well below the grid's
    assert r.predicted_cost.min().item() == pytest.approx(r.landscape_min, abs=1e-12)
    levels = sorted({round(c, 9) for c in r.predicted_cost.tolist()})
    assert len(levels) >= 2, levels
    threshold = levels[1] + 1e-6  # now the two lowest minima count as global
    moved = rescore(r, threshold - r.tol, "given")
    expected = [c <= threshold for c in r.predicted_cost.tolist()]
    assert moved.predicted.tolist() == expected and moved.predicted_success[0].item() == pytest.approx(sum(expected) / 64, abs=1e-15)
    assert moved.predicted_success[0] > r.predicted_success[0]


def steepest_walker(values):
    """A function from a grid point to where steepest descent on the periodic grid `values` stops: each step to the
    lowest of the 3^d - 1 neighbours while it is lower."""
    offsets = [o for o in itertools.product((-1, 0, 1), repeat=values.ndim) if any(o)]
    lowest = np.full(values.shape, np.inf)
    which = np.zeros(values.shape, dtype=int)
    for i, offset in enumerate(offsets):
        neighbour = np.roll(values, [-o for o in offset], axis=tuple(range(values.ndim)))  # the value at p + offset
        lower = neighbour < lowest
        lowest[lower], which[lower] = neighbour[lower], i

    def walk(start):
        point = tuple(start)
        while lowest[point] < values[point]:
            point = tuple((p + o) % r for p, o, r in zip(point, offsets[which[point]], values.shape))
        return point

    return walk


def test_small_steps_follow_the_basins():
    """Plain gradient descent, run to convergence, ends in the basin of the
    grid point nearest its start (measured: 96.5% of 200 starts; 300 steps at
    lr 0.2 left a third still on a plateau). The basins are walked here,
    independently: steepest descent on the grid from each start's nearest point."""
    from qtrain.landscape import sample_landscape

    resolution, starts = 90, 200
    r = train_lr_grid(CIRCUIT, TARGET, "sgd", lrs=[1.0], starts=starts, steps=200, seed=2, resolution=resolution, tol=2e-3, rule="steepest")
    assert r.agreement[0] > 0.9, r.rows
    values = sample_landscape(CIRCUIT, TARGET, resolution).values.numpy()
    walk = steepest_walker(values)
    spacing = 2 * math.pi / resolution
    thetas = draw_angles("uniform", (starts, 3), torch.Generator().manual_seed(2)).float().double()  # the run's starts (seed 2)
    assert torch.equal(thetas[:8], r.trajectories[0, 0].double())
    for b, theta in enumerate(thetas.tolist()):
        terminal = walk([round((t + math.pi) / spacing) % resolution for t in theta])
        # the polish starts at that terminal and descends within its basin: it ends near it, and lower
        polished = r.predicted_minimum[b].tolist()
        gap = [abs((p - (-math.pi + spacing * i) + math.pi) % (2 * math.pi) - math.pi) for p, i in zip(polished, terminal)]
        assert max(gap) < 1.5 * spacing, (b, terminal, polished)
        assert r.predicted_cost[b].item() <= values[terminal] + 1e-12


def test_given_global_min_and_observable_cost():
    c = Circuit(1).ry(0, "a")
    r = train_lr_grid(c, "Z0", "sgd", lrs=[0.5], starts=8, steps=200, global_min=-1.0, dtype=torch.complex128)
    assert r.global_min == -1.0 and r.global_min_source == "given"
    assert r.success_rate[0] > 0.8  # starts not exactly on the maximum roll down to <Z> = -1


def test_a_callable_cost_has_no_landscape_prediction():
    r = train_lr_grid(CIRCUIT, lambda states: 1 - states[:, 0].abs() ** 2, "adam", lrs=[0.1], starts=8, steps=5)
    assert r.predicted_success is None and r.global_min_source == "best found" and r.rows[0]["agreement"] is None


def train_for_resume(path, circuit=CIRCUIT, cost=TARGET, **changes):
    args = {"optimizer": "adam", "lrs": [0.1, 0.3], "starts": 6, "steps": 6, "seed": 4, "dtype": torch.complex128, "checkpoint_every": 3,
            "resolution": 8, **changes}
    return train_lr_grid(circuit, cost, checkpoint_dir=path, **args)


@pytest.mark.parametrize(
    "changes,named",
    [
        ({"seed": 5}, "seed: 4 there, 5 now"),
        ({"lrs": [0.1, 0.2]}, r"lrs: \[0.1, 0.3\] there, \[0.1, 0.2\] now"),
        ({"optimizer_settings": {"betas": (0.8, 0.99)}}, r"optimizer_settings: 'defaults' there, 'betas=\(0.8,0.99\)' now"),
        ({"optimizer": "adamw"}, "optimizer: 'adam' there, 'adamw' now"),
        ({"starts": 7}, "starts: 6 there, 7 now"),
        ({"init": "small"}, "init: 'uniform' there, 'small' now"),
        ({"init_width": 0.2}, "init_width: 0.1 there, 0.2 now"),
        ({"dtype": torch.complex64}, "dtype: 'torch.complex128' there, 'torch.complex64' now"),
        ({"cost": random_target_state(3, seed=1)}, "cost: 'target [0-9a-f]+' there, 'target [0-9a-f]+' now"),
        ({"cost": "X0 + Z2"}, "cost: 'target [0-9a-f]+' there, 'observable"),
        ({"circuit": shared_ansatz(3, 3, 2, seed=1)}, "circuit: '[0-9a-f]+' there"),
        ({"steps": 4}, "holds 6 steps of this run, more than steps=4"),
    ],
)
def test_a_resume_of_another_run_is_refused_naming_what_differs(tmp_path, changes, named, monkeypatch):
    train_for_resume(tmp_path)
    monkeypatch.setattr("qtrain.training._run.pl.Trainer", None)  # refused before Lightning starts
    with pytest.raises(ValueError, match=named):
        train_for_resume(tmp_path, **changes)


def test_a_checkpoint_without_a_record_of_its_run_is_refused(tmp_path):
    train_for_resume(tmp_path)
    for path in tmp_path.glob("*.ckpt"):
        checkpoint = torch.load(path, weights_only=False)
        del checkpoint["qtrain_run"]
        torch.save(checkpoint, path)
    with pytest.raises(ValueError, match="written without a record of its run"):
        train_for_resume(tmp_path, steps=9)


def test_a_checkpointed_run_resumes_to_the_same_numbers(tmp_path):
    whole = train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=6, steps=10, seed=4, dtype=torch.complex128)
    train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=6, steps=6, seed=4, dtype=torch.complex128, checkpoint_dir=tmp_path, checkpoint_every=3)
    assert (tmp_path / "last.ckpt").is_file()
    resumed = train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=6, steps=10, seed=4, dtype=torch.complex128, checkpoint_dir=tmp_path, checkpoint_every=3)
    assert torch.equal(resumed.cost_history, whole.cost_history) and torch.equal(resumed.final_cost, whole.final_cost)


def test_a_copied_folder_resumes_from_its_highest_step_whatever_the_file_times(tmp_path, caplog):
    """A copy (or a kill between Lightning's step file and last.ckpt) can leave an older state in the newest file:
    the resume takes the checkpoint of the most steps, read from the checkpoints themselves."""
    import logging
    import os
    import shutil

    from qtrain.training._run import newest_checkpoint

    whole = train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=6, steps=10, seed=4, dtype=torch.complex128)
    run = tmp_path / "run"
    train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=6, steps=3, seed=4, dtype=torch.complex128, checkpoint_dir=run, checkpoint_every=3)
    shutil.copy(run / "last.ckpt", tmp_path / "step3")
    train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=6, steps=6, seed=4, dtype=torch.complex128, checkpoint_dir=run, checkpoint_every=3)
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(run / "step-epoch=5.ckpt", copy / "step-epoch=5.ckpt")  # step 6
    shutil.copy(tmp_path / "step3", copy / "last.ckpt")  # step 3, copied last: the newest file
    os.utime(copy / "step-epoch=5.ckpt", ns=(10**18,) * 2)
    os.utime(copy / "last.ckpt", ns=(2 * 10**18,) * 2)
    assert newest_checkpoint(copy) == str(copy / "step-epoch=5.ckpt")
    (copy / "notes.ckpt").write_text("not a checkpoint")  # passed over, not fatal
    with caplog.at_level(logging.INFO, logger="qtrain.training._run"):
        resumed = train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=6, steps=10, seed=4, dtype=torch.complex128, checkpoint_dir=copy,
                                checkpoint_every=3)
    assert f"resuming from {copy / 'step-epoch=5.ckpt'}" in caplog.text
    assert torch.equal(resumed.cost_history, whole.cost_history) and torch.equal(resumed.final_cost, whole.final_cost)
    assert newest_checkpoint(tmp_path / "missing") is None


def test_live_metrics_reach_tensorboard(tmp_path):
    """The logged values, read back, are the statistics of the run's own costs and of gradients recomputed here by backprop."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    lrs, starts, steps = [0.1, 0.3], 8, 4  # 8 starts: all tracked, so every start's angles are in the result
    r = train_lr_grid(CIRCUIT, TARGET, "adam", lrs=lrs, starts=starts, steps=steps, log_dir=tmp_path, log_every=1, dtype=torch.complex128)
    events = EventAccumulator(str(tmp_path))
    events.Reload()

    def logged(tag):
        return {event.step: event.value for event in events.Scalars(tag)}

    for g, lr in enumerate(("0.1", "0.3")):
        for step in range(steps):
            costs = sorted(r.cost_history[step, g].tolist())
            theta = r.trajectories[step, g].clone().requires_grad_(True)
            CIRCUIT.infidelity(theta, TARGET).sum().backward()
            grads = theta.grad.tolist()  # (B, d)
            columns = list(zip(*grads))
            variance = [sum((x - sum(c) / starts) ** 2 for x in c) / (starts - 1) for c in columns]
            expected = {
                "loss_min": costs[0], "loss_median": (costs[3] + costs[4]) / 2, "loss_max": costs[-1],
                "grad_var_mean": sum(variance) / 3, "grad_var/theta_2": variance[2],
                "grad_norm_mean": sum(math.sqrt(sum(x * x for x in row)) for row in grads) / starts,
                "success_rate": sum(c <= r.landscape_min + r.tol for c in costs) / starts,  # the provisional C*: the landscape's
            }
            for name, value in expected.items():
                assert logged(f"lr={lr}/{name}")[step] == pytest.approx(value, rel=1e-5, abs=1e-9), (lr, step, name)
    assert sorted(logged("lr=0.1/loss_median")) == [0, 1, 2, 3]


def test_a_non_finite_cost_names_the_learning_rate_and_step():
    def exploding(states):
        return torch.where(states[:, 0].abs() < 2, torch.full_like(states[:, 0].real, math.nan), states[:, 0].real)

    with pytest.raises(ValueError, match=r"the cost became nan at learning rate 0.1, step 0"):
        train_lr_grid(CIRCUIT, exploding, "adam", lrs=[0.1], starts=2, steps=3)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"optimizer": "lbfgs"}, "optimizer 'lbfgs' is refused: LBFGS couples"),
        ({"optimizer": "adamax"}, r"unknown optimizer 'adamax'; known: \['adagrad', 'adam', 'adamw', 'rmsprop', 'sgd'\]"),
        ({"lrs": [0.1, -0.01]}, "every learning rate must be a finite number >= 0, got -0.01"),
        ({"lrs": [0.1, math.nan]}, "every learning rate must be a finite number >= 0, got nan"),
        ({"lrs": [math.inf]}, "every learning rate must be a finite number >= 0, got inf"),
        ({"lrs": []}, "give at least one learning rate"),
        ({"lrs": "0.1"}, "lrs: give numbers .*not the string '0.1'"),
        ({"lrs": [0.1, 0.3, 0.1]}, r"learning rate 0.1 is given twice"),
        ({"lrs": [0.0]}, "every learning rate is 0, so nothing would train"),
        ({"starts": 0}, "starts must be an integer >= 1, got 0"),
        ({"steps": 0}, "steps must be an integer >= 1, got 0"),
        ({"cost": torch.zeros(8, dtype=torch.complex128)}, "target state must be normalized, but its norm is 0"),
        ({"init": "normal"}, "init must be one of"),
        ({"init": "identity_blocks"}, "needs a circuit built by qtrain.builders.identity_blocks"),
        ({"init": "gaussian", "cost": lambda states: states[:, 0].abs()}, "a function of states.*pass init_width=sigma"),
        ({"init": "small", "init_width": -0.1}, "init_width must be a finite number > 0"),
        ({"layerwise": {"layers": 2, "steps_per_stage": 5}}, "layerwise.layers=2 does not divide the circuit's 3 parameters"),
        ({"layerwise": {"layers": 3, "steps": 5}}, "layerwise.steps: unknown key"),
        ({"optimizer_settings": {"momentum": 0.9}}, "optimizer_settings.momentum: Adam refuses 0.9: .*momentum"),
        ({"optimizer": "sgd", "optimizer_settings": {"nesterov": True}}, "optimizer_settings.nesterov: SGD refuses True: Nesterov momentum requires a momentum"),
        ({"optimizer_settings": {"betas": (1.5, 0.9)}}, r"optimizer_settings.betas: Adam refuses \(1.5, 0.9\): Invalid beta parameter at index 0: 1.5"),
        ({"optimizer_settings": {"lr": 0.1}}, "optimizer_settings.lr: the learning rates come from `lrs`"),
        # a keyword the partial holds is named under `optimizer`, one of optimizer_settings under its own name
        ({"optimizer": functools.partial(torch.optim.Adam, betas=(1.5, 0.9))}, r"optimizer.betas: Adam refuses \(1.5, 0.9\)"),
        ({"optimizer": functools.partial(torch.optim.SGD, momentum=0.9), "optimizer_settings": {"nesterov": True, "dampening": 0.5}},
         "optimizer_settings.dampening: SGD refuses 0.5: Nesterov momentum requires"),
        ({"optimizer_settings": 0.9}, "optimizer_settings must be a mapping"),
    ],
)
def test_bad_input_is_refused_before_work(kwargs, message, monkeypatch):
    def no_work(*args, **kw):
        raise AssertionError("work started before the input was checked")

    monkeypatch.setattr("qtrain.training.grid._landscape", no_work)
    monkeypatch.setattr("qtrain.training._run.fit", no_work)
    args = {"circuit": CIRCUIT, "cost": TARGET, "optimizer": "adam", "lrs": [0.1], "starts": 2, "steps": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        train_lr_grid(**args)


def test_an_optimizer_is_checked_by_building_it_once(monkeypatch):
    """Good settings: the optimizer as configured is built once, with one group per
    learning rate; only a refusal is worth the builds that find the setting to name."""
    from qtrain.training import optimizers

    builds = []

    class Counted(torch.optim.Adam):
        def __init__(self, params, **settings):
            params = list(params)
            if "betas" in settings:  # the configured optimizer, not the class defaults its label is read against
                builds.append(len(params))
            super().__init__(params, **settings)

    monkeypatch.setitem(optimizers.OPTIMIZERS, "adam", Counted)
    checked = optimizers.check_optimizer_settings("adam", {"betas": (0.8, 0.99)}, [0.1, 0.2, 0.0])
    assert builds == [3]
    assert checked == ("adam", [0.1, 0.2, 0.0], "betas=(0.8,0.99)")
    with pytest.raises(ValueError, match=r"^optimizer_settings.betas: Counted refuses \(0.8, 1.5\): Invalid beta parameter at index 1: 1.5$"):
        optimizers.check_optimizer_settings("adam", {"eps": 1e-6, "betas": (0.8, 1.5)}, [0.1])


def test_unknown_keywords_are_refused_by_name():
    """Optimizer settings go in optimizer_settings; a misspelt keyword is not handed to the optimizer."""
    with pytest.raises(TypeError, match="unexpected keyword argument 'stpes'"):
        train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=2, stpes=5)


def test_optimizer_settings_name_the_variant_in_the_rows():
    """Two SGD variants differ in the table; two spellings of one optimizer do not."""
    from qtrain.training import settings_label

    plain = train_lr_grid(CIRCUIT, TARGET, "sgd", lrs=[0.1], starts=2, steps=1, resolution=8)
    nesterov = train_lr_grid(CIRCUIT, TARGET, "sgd", lrs=[0.1], starts=2, steps=1, resolution=8, optimizer_settings={"momentum": 0.9, "nesterov": True})
    assert plain.rows[0]["optimizer_settings"] == plain.optimizer_settings == "defaults"
    assert nesterov.rows[0]["optimizer_settings"] == "momentum=0.9;nesterov=True"
    assert settings_label("adam", {"betas": [0.9, 0.99]}) == settings_label("adam", {"betas": (0.9, 0.99), "eps": 1e-8}) == "betas=(0.9,0.99)"


def test_a_killed_lr_grid_run_resumes_to_the_numbers_of_an_uninterrupted_one(tmp_path):
    """kill -9 mid-run, then the same command: it resumes from the last checkpoint."""
    import signal
    import subprocess
    import sys
    import time

    args = ["experiment=lr_grid", "optimizers=[adam]", "sharing=[2]", "lrs=[0.05,0.2]", "starts=16", "steps=120", "trainer.checkpoint_every=5",
            "params=2", "qubits=2", "resolution=8", "progress=false", "dtype=complex128"]
    command = [sys.executable, "-m", "qtrain.cli", *args]
    subprocess.run([*command, f"hydra.run.dir={tmp_path / 'whole'}"], check=True, capture_output=True, timeout=300)
    killed = tmp_path / "killed"
    process = subprocess.Popen([*command, f"hydra.run.dir={killed}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list(killed.glob("checkpoints/*/step-epoch=*.ckpt")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # it died mid-run, after a checkpoint (perhaps between the step file and last.ckpt: the resume takes the newest)
    assert list(killed.glob("checkpoints/*/*.ckpt")) and not (killed / "results.csv").exists()
    subprocess.run([*command, f"hydra.run.dir={killed}"], check=True, capture_output=True, timeout=300)
    assert "resuming from" in (killed / "cli.log").read_text()
    assert (killed / "results.csv").read_text() == (tmp_path / "whole" / "results.csv").read_text()


def test_tensorboard_serves_the_tags(tmp_path):
    """A real TensorBoard server on the run directory, read through its HTTP data API."""
    import json
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=8, steps=3, log_dir=tmp_path / "run", log_every=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path), "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, tags = time.time() + 60, {}
        while time.time() < deadline and "lr=0.1/loss_median" not in tags.get("run", {}):
            time.sleep(0.5)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugin/scalars/tags", timeout=5) as response:
                    tags = json.load(response)
            except OSError:
                continue
        assert {"lr=0.1/loss_median", "lr=0.1/grad_var_mean", "lr=0.1/success_rate"} <= set(tags["run"])
        query = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?run=run&tag=lr%3D0.1%2Floss_median"
        with urllib.request.urlopen(query, timeout=5) as response:
            assert [step for _, step, _ in json.load(response)] == [0, 1, 2]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_hybrid_digits_logs_the_quantum_layer_and_beats_chance(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from qtrain import cli
    from tests.test_cli import compose_experiment, rows_of

    result = cli.run(compose_experiment("hybrid_digits", ["epochs=2", "qubits=3", "layers=1", "monitor_samples=8"]), tmp_path)
    rows = {r["model"]: r for r in rows_of(tmp_path / "results.csv")}
    assert set(rows) == {"hybrid", "classical"} and int(rows["classical"]["trainable_parameters"]) <= int(rows["hybrid"]["trainable_parameters"])
    assert all(float(r["test_accuracy"]) > 0.2 for r in result["rows"])  # ten classes: chance is 0.1
    events = EventAccumulator(str(tmp_path / "tb" / "hybrid"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "val/accuracy", "plateau/model.3/init_grad_var_mean", "quantum/model.3/grad_norm", "quantum/model.3/grad_var"} <= tags, tags


def test_the_trajectory_figure_has_a_colour_bar_for_its_cost():
    from qtrain import _figures as figures

    r = train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=3, steps=4, resolution=12)
    fig = figures.trajectories(CIRCUIT, TARGET, {"adam": r}, 12, "sharing 2")
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and bars[0].get_ylabel() == "cost"
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 3 and len({im.get_clim() for im in images}) == 1  # one scale, so the one bar reads every panel
