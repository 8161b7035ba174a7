"""Many starts as one batch: exactly the separate runs, scored against C*."""

import math

import pytest
import torch

from qtrain import Circuit
from qtrain.builders import random_target_state, shared_ansatz
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
    r = train_lr_grid(CIRCUIT, TARGET, name, lrs=lrs, starts=starts, steps=steps, seed=3, dtype=torch.complex128, **settings)
    assert r.cost_history.shape == (steps + 1, 2, starts) and r.trajectories.shape == (steps + 1, 2, starts, 3)
    first_starts = r.trajectories[0, 0]
    assert torch.equal(first_starts, r.trajectories[0, 1])  # every learning rate starts from the same B starts
    for g, lr in enumerate(lrs):
        for b in range(starts):
            costs, path = separate_run(optimizer, lr, first_starts[b], steps, settings)
            assert torch.allclose(r.cost_history[:, g, b].double(), costs, atol=1e-10, rtol=0)
            assert torch.allclose(r.trajectories[:, g, b], path, atol=1e-10, rtol=0)


def test_scores_follow_their_definitions():
    r = train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.0, 0.1], starts=64, steps=60, seed=1, tol=1e-3, dtype=torch.complex128)
    assert torch.equal(r.cost_history[:, 0], r.cost_history[:1, 0].expand(61, -1))  # lr 0: a no-training baseline
    success = r.final_cost <= r.global_min + r.tol
    assert torch.equal(r.success_rate, success.double().mean(dim=1))
    assert r.global_min_source in ("landscape", "best found") and r.global_min <= r.final_cost.min().item() + 1e-12
    for g in range(2):
        for b in range(64):
            hits = (r.cost_history[:, g, b] <= r.global_min + r.tol).nonzero()
            assert r.steps_to_success[g, b].item() == (hits[0].item() if len(hits) else -1)
    assert r.predicted is not None and torch.equal(r.agreement, (success == r.predicted).double().mean(dim=1))
    assert r.success_rate[1] > r.success_rate[0] and r.rows[1]["lr"] == 0.1 and r.rows[1]["steps_to_success_median"] is not None


def test_small_steps_follow_the_basins():
    """Plain gradient descent, run to convergence, ends in the basin of the
    grid point nearest its start (measured: 96.5% of 200 starts; 300 steps at
    lr 0.2 left a third still on a plateau)."""
    r = train_lr_grid(CIRCUIT, TARGET, "sgd", lrs=[1.0], starts=200, steps=200, seed=2, resolution=90, tol=2e-3)
    assert r.agreement[0] > 0.9, r.rows


def test_given_global_min_and_observable_cost():
    c = Circuit(1).ry(0, "a")
    r = train_lr_grid(c, "Z0", "sgd", lrs=[0.5], starts=8, steps=200, global_min=-1.0, dtype=torch.complex128)
    assert r.global_min == -1.0 and r.global_min_source == "given"
    assert r.success_rate[0] > 0.8  # starts not exactly on the maximum roll down to <Z> = -1


def test_a_callable_cost_has_no_landscape_prediction():
    r = train_lr_grid(CIRCUIT, lambda states: 1 - states[:, 0].abs() ** 2, "adam", lrs=[0.1], starts=8, steps=5)
    assert r.predicted_success is None and r.global_min_source == "best found" and r.rows[0]["agreement"] is None


def test_a_checkpointed_run_resumes_to_the_same_numbers(tmp_path):
    whole = train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=6, steps=10, seed=4, dtype=torch.complex128)
    train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=6, steps=6, seed=4, dtype=torch.complex128, checkpoint_dir=tmp_path, checkpoint_every=3)
    assert (tmp_path / "last.ckpt").is_file()
    resumed = train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=6, steps=10, seed=4, dtype=torch.complex128, checkpoint_dir=tmp_path, checkpoint_every=3)
    assert torch.equal(resumed.cost_history, whole.cost_history) and torch.equal(resumed.final_cost, whole.final_cost)


def test_a_run_killed_between_the_step_checkpoint_and_last_resumes_from_the_newer_one(tmp_path):
    """Lightning writes step-epoch=N.ckpt, then last.ckpt: a kill in between leaves last.ckpt older."""
    import os
    import shutil

    from qtrain.training.run import newest_checkpoint

    whole = train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=6, steps=10, seed=4, dtype=torch.complex128)
    train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=6, steps=3, seed=4, dtype=torch.complex128, checkpoint_dir=tmp_path, checkpoint_every=3)
    shutil.copy(tmp_path / "last.ckpt", tmp_path / "stale")
    train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=6, steps=6, seed=4, dtype=torch.complex128, checkpoint_dir=tmp_path, checkpoint_every=3)
    step = tmp_path / "step-epoch=5.ckpt"
    os.replace(tmp_path / "stale", tmp_path / "last.ckpt")
    os.utime(tmp_path / "last.ckpt", ns=(step.stat().st_mtime_ns - 10**9,) * 2)  # the step-3 state, written before the step-6 file
    assert newest_checkpoint(tmp_path) == str(step)
    resumed = train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=6, steps=10, seed=4, dtype=torch.complex128, checkpoint_dir=tmp_path, checkpoint_every=3)
    assert torch.equal(resumed.cost_history, whole.cost_history) and torch.equal(resumed.final_cost, whole.final_cost)
    assert newest_checkpoint(tmp_path / "missing") is None


def test_live_metrics_reach_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1, 0.3], starts=8, steps=4, log_dir=tmp_path, log_every=1)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for lr in ("0.1", "0.3"):
        assert {f"lr={lr}/loss_min", f"lr={lr}/loss_median", f"lr={lr}/loss_max", f"lr={lr}/grad_var_mean", f"lr={lr}/grad_var/theta_2",
                f"lr={lr}/grad_norm_mean", f"lr={lr}/success_rate"} <= tags
    assert len(events.Scalars("lr=0.1/loss_median")) == 4


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
        ({"lrs": []}, "give at least one learning rate"),
        ({"starts": 0}, "starts must be an integer >= 1, got 0"),
        ({"steps": 0}, "steps must be an integer >= 1, got 0"),
        ({"cost": torch.zeros(8, dtype=torch.complex128)}, "target state must be normalized, but its norm is 0"),
        ({"init": "gaussian"}, "init must be one of"),
        ({"momentum": 0.9}, "optimizer 'adam': .*momentum"),
    ],
)
def test_bad_input_is_refused_before_work(kwargs, message):
    args = {"circuit": CIRCUIT, "cost": TARGET, "optimizer": "adam", "lrs": [0.1], "starts": 2, "steps": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        train_lr_grid(**args)


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
    import shutil
    import socket
    import subprocess
    import time
    import urllib.request

    if shutil.which("tensorboard") is None:
        pytest.skip("the tensorboard command is not installed")
    train_lr_grid(CIRCUIT, TARGET, "adam", lrs=[0.1], starts=8, steps=3, log_dir=tmp_path / "run", log_every=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(["tensorboard", "--logdir", str(tmp_path), "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
