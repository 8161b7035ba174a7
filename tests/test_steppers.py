"""qng, spsa and rotosolve: batched steps are the single-start runs, against the reference simulator."""

import functools
import math

import numpy as np
import pytest
import torch

from qtrain import Circuit
from qtrain.builders import random_target_state, shared_ansatz
from qtrain.engine.observables import PauliSum
from qtrain.noise import NoiseModel
from qtrain.training import train_lr_grid
from qtrain.training._module import MultiStartModule
from qtrain.training._run import fit
from qtrain.training.optimizers import check_optimizer_settings, settings_label
from qtrain.training.steppers import STEPPERS, Qng, Rotosolve, Spsa, StepContext, spsa_signs
from tests import reference

CIRCUIT = shared_ansatz(3, 3, 2, seed=0)
TARGET = random_target_state(3, seed=0)
F64 = torch.float64
LRS = {"qng": [0.1, 0.5], "spsa": [0.2, 1.0], "rotosolve": [0.5, 1.0]}


def single_start_run(stepper, lr, start, index, steps, seed):
    """One start alone through the stepper itself (G = B = 1, its own index in the run): its angles before every step and after the last."""
    ctx = StepContext(CIRCUIT, TARGET, torch.complex128)
    theta, path = start.reshape(1, 1, -1).clone(), [start.clone()]
    for k in range(steps):
        theta = stepper.step(theta, torch.tensor([lr], dtype=F64), ctx, k, index, seed)
        path.append(theta[0, 0].clone())
    return torch.stack(path)


@pytest.mark.parametrize("name", sorted(STEPPERS))
def test_batched_steps_are_exactly_the_single_start_runs(name):
    lrs, starts, steps, seed = LRS[name], 4, 4, 3
    r = train_lr_grid(CIRCUIT, TARGET, name, lrs=lrs, starts=starts, steps=steps, seed=seed, dtype=torch.complex128)
    assert r.cost_history.shape == (steps + 1, 2, starts) and r.optimizer == name and r.optimizer_settings == "defaults"
    first = r.trajectories[0, 0]
    for g, lr in enumerate(lrs):
        for b in range(starts):
            path = single_start_run(STEPPERS[name](), lr, first[b], b, steps, seed)
            assert torch.allclose(r.trajectories[:, g, b], path, atol=1e-10, rtol=0)
            costs = CIRCUIT.infidelity(path, TARGET, dtype=torch.complex128)
            assert torch.allclose(r.cost_history[:, g, b], costs, atol=1e-10, rtol=0)
    assert not torch.equal(r.trajectories[-1], r.trajectories[0])  # they moved


def test_a_rank_share_draws_the_perturbations_of_the_whole_run():
    """SPSA keyed by the start's index in the run: starts 2..3 stepped alone (first_start=2) move as in the batch of 0..3."""
    ctx = StepContext(CIRCUIT, TARGET, torch.complex128)
    theta = torch.rand(1, 4, 3, dtype=F64, generator=torch.Generator().manual_seed(0)) * 6
    lrs = torch.tensor([0.3], dtype=F64)
    whole = Spsa().step(theta, lrs, ctx, 5, 0, seed=7)
    share = Spsa().step(theta[:, 2:], lrs, ctx, 5, 2, seed=7)
    assert torch.equal(whole[:, 2:], share)
    assert not torch.allclose(Spsa().step(theta[:, 2:], lrs, ctx, 5, 0, seed=7), share)  # another index: other perturbations


# ---- rotosolve: the exact minimum in one step


def golden_minimum(f, lo, hi, iterations=120):
    """The minimum of a unimodal f on [lo, hi] by golden-section search (to machine precision in the argument)."""
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(iterations):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if f(a) < f(b):
            hi = b
        else:
            lo = a
    return (lo + hi) / 2


def reference_minimum(cost, period):
    """The global minimum of the reference simulator's one-parameter cost: a dense grid over the period, polished by golden section."""
    grid = np.linspace(0, period, 4001)
    values = [cost(x) for x in grid]
    i = int(np.argmin(values))
    x = golden_minimum(cost, grid[i] - period / 4000, grid[i] + period / 4000)
    return x, cost(x)


def test_rotosolve_reaches_a_one_parameter_minimum_in_one_step():
    # after RX(0.3), RY(a) turns the Bloch vector (0, -sin 0.3, cos 0.3) in the x-z plane: <Z + X/2> = cos 0.3 (cos a + sin a / 2)
    c = Circuit(1)
    c.rx(0, 0.3)
    c.ry(0, "a")
    ctx = StepContext(c, _pauli("Z0 + 0.5*X0"), torch.complex128)
    theta = torch.linspace(-3, 3, 7, dtype=F64).reshape(1, 7, 1)
    out = Rotosolve().step(theta, torch.ones(1, dtype=F64), ctx, 0, 0)
    best = math.atan2(-0.5, -1.0)  # where (cos a, sin a) points against (1, 1/2)
    # the angle to 1e-8: at a minimum the cost is flat, so the cost (below) is exact before the angle is
    assert torch.allclose(torch.remainder(out - best + math.pi, 2 * math.pi) - math.pi, torch.zeros_like(out), atol=1e-8)
    assert torch.allclose(ctx.cost(out.reshape(-1, 1)), torch.full((7,), -math.cos(0.3) * math.sqrt(1.25), dtype=F64), atol=1e-12)
    assert (out - theta).abs().max() <= math.pi + 1e-12  # the representative nearest the start


def _pauli(text):
    from qtrain.engine.observables import as_pauli_sum

    return as_pauli_sum(text)


def shared_three_gates():
    """'a' on three rotations (two of one qubit, split by a CNOT) and 'b' on one; the reference's gates as a function of (a, b)."""
    c = Circuit(2)
    c.ry(0, math.pi / 4)
    c.ry(1, math.pi / 3)
    c.ry(0, "a")
    c.cnot(0, 1)
    c.rx(1, "a")
    c.rz(1, "b")
    c.cnot(1, 0)
    c.rx(0, "a")

    def gates(a, b):
        return [{"name": "ry", "qubits": (0,), "angle": math.pi / 4}, {"name": "ry", "qubits": (1,), "angle": math.pi / 3},
                {"name": "ry", "qubits": (0,), "angle": a}, {"name": "cnot", "qubits": (0, 1)}, {"name": "rx", "qubits": (1,), "angle": a},
                {"name": "rz", "qubits": (1,), "angle": b}, {"name": "cnot", "qubits": (1, 0)}, {"name": "rx", "qubits": (0,), "angle": a}]
    return c, gates


def test_rotosolve_reaches_the_minimum_of_a_parameter_shared_by_three_gates():
    c, gates = shared_three_gates()
    target = random_target_state(2, seed=5).to(torch.complex128)
    t = target.numpy()
    b = 0.7
    x, best = reference_minimum(lambda a: 1 - abs(np.vdot(t, reference.run(gates(a, b), 2))) ** 2, 2 * math.pi)
    ctx = StepContext(c, target, torch.complex128, frozen=torch.tensor([False, True]))  # b frozen: a one-parameter cost
    theta = torch.tensor([[[0.1, b], [2.5, b], [-2.0, b], [x + 0.3, b]]], dtype=F64)
    out = Rotosolve().step(theta, torch.ones(1, dtype=F64), ctx, 0, 0)
    assert torch.equal(out[..., 1], theta[..., 1])
    assert torch.allclose(ctx.cost(out[0]), torch.full((4,), best, dtype=F64), atol=1e-10)
    assert best < min(1 - abs(np.vdot(t, reference.run(gates(a, b), 2))) ** 2 for a in np.linspace(0, 2 * math.pi, 4001)) + 1e-12
    assert torch.allclose(torch.remainder(out[0, :, 0] - x + math.pi, 2 * math.pi) - math.pi, torch.zeros(4, dtype=F64), atol=1e-6)


def test_rotosolve_reaches_the_minimum_of_a_controlled_rotation_in_one_step():
    """CRX's half angles make the cost 4 pi periodic (frequencies 1/2, 1, ...): sampled over 4 pi, not 2 pi."""
    c = Circuit(2)
    c.h(0)
    c.ry(1, 0.4)
    c.crx(0, 1, "a")
    c.ry(1, "a")
    assert c.slot_frequencies == (0.5, 0.5, 1.0)

    def gates(a):
        return [{"name": "h", "qubits": (0,)}, {"name": "ry", "qubits": (1,), "angle": 0.4},
                {"name": "crx", "qubits": (0, 1), "angle": a}, {"name": "ry", "qubits": (1,), "angle": a}]
    terms = [(1.0, {1: "Z"}), (0.7, {0: "X", 1: "Y"}), (-0.4, {0: "Y"})]
    x, best = reference_minimum(lambda a: reference.expval(reference.run(gates(a), 2), terms), 4 * math.pi)
    ctx = StepContext(c, _pauli("Z1 + 0.7*X0 Y1 - 0.4*Y0"), torch.complex128)
    theta = torch.tensor([[[0.0], [2.0], [5.0], [-7.0]]], dtype=F64)
    out = Rotosolve().step(theta, torch.ones(1, dtype=F64), ctx, 0, 0)
    assert torch.allclose(ctx.cost(out[0]), torch.full((4,), best, dtype=F64), atol=1e-10)
    assert torch.allclose(torch.remainder(out[0, :, 0] - x + 2 * math.pi, 4 * math.pi) - 2 * math.pi, torch.zeros(4, dtype=F64), atol=1e-6)


def test_rotosolve_at_an_identity_start_and_with_an_ill_conditioned_companion(monkeypatch):
    """At an identity start many parameters leave the cost flat (their derivative is rounding noise), which once made the
    companion matrix non-finite and LAPACK fail; a flat row now takes harmless candidates. And when LAPACK fails anyway,
    a finer grid polished by Newton steps still finds the minimum."""
    from qtrain import builders
    from qtrain.initializations import initial_angles
    from qtrain.training.steppers import _trig_minimum

    circuit = builders.identity_blocks(builders.hardware_efficient(3, 2))
    theta = initial_angles(circuit, "identity_blocks", 6, torch.Generator().manual_seed(0)).reshape(1, 6, -1)
    ctx = StepContext(circuit, PauliSum.parse("Z0 Z1"), torch.complex128)
    new = Rotosolve().step(theta, torch.tensor([1.0]), ctx, 0, 0)
    assert torch.isfinite(new).all()
    assert (circuit.expval(new[0], "Z0 Z1", dtype=torch.complex128) <= circuit.expval(theta[0], "Z0 Z1", dtype=torch.complex128) + 1e-12).all()
    flat = torch.full((2, 5), 0.25, dtype=torch.float64) + torch.randn(2, 5, dtype=torch.float64) * 1e-17
    assert torch.isfinite(_trig_minimum(flat)).all()

    s = 2 * math.pi * torch.arange(5, dtype=torch.float64) / 5
    values = (0.3 * torch.cos(s - 1.1) + 0.2 * torch.cos(2 * (s + 0.4))).unsqueeze(0)  # K = 2
    exact = _trig_minimum(values)

    def failing(*args, **kwargs):
        raise torch.linalg.LinAlgError("failed to converge")

    monkeypatch.setattr(torch.linalg, "eigvals", failing)
    fallback = _trig_minimum(values)
    p = lambda x: 0.3 * torch.cos(x - 1.1) + 0.2 * torch.cos(2 * (x + 0.4))  # noqa: E731
    assert p(fallback).item() == pytest.approx(p(exact).item(), abs=1e-12)
    dense = torch.linspace(-math.pi, math.pi, 200001, dtype=torch.float64)
    assert p(exact).item() <= p(dense).min().item() + 1e-12


def test_rotosolve_with_a_learning_rate_takes_that_fraction_of_the_jump():
    c, _ = shared_three_gates()
    target = random_target_state(2, seed=5).to(torch.complex128)
    ctx = StepContext(c, target, torch.complex128, frozen=torch.tensor([False, True]))
    theta = torch.tensor([[[0.1, 0.7]], [[0.1, 0.7]]], dtype=F64)
    out = Rotosolve().step(theta, torch.tensor([1.0, 0.25], dtype=F64), ctx, 0, 0)
    assert torch.allclose(out[1, 0, 0] - 0.1, 0.25 * (out[0, 0, 0] - 0.1), atol=1e-12)


# ---- qng against the reference's Fisher information


def qng_circuit():
    """Four parameters, 'a' shared by three gates, 'c' by two; the reference's gates as a function of theta."""
    c = Circuit(2)
    spec = [("ry", (0,), math.pi / 4), ("ry", (1,), math.pi / 4), ("ry", (0,), "a"), ("rx", (1,), "b"), ("cnot", (0, 1), None),
            ("rz", (0,), "a"), ("ry", (1,), "c"), ("cz", (0, 1), None), ("rx", (0,), "d"), ("ry", (1,), "a"), ("cnot", (1, 0), None),
            ("rx", (1,), "c")]
    for name, qubits, angle in spec:
        getattr(c, name)(*qubits, *([] if angle is None else [angle]))
    index = {"a": 0, "b": 1, "c": 2, "d": 3}

    def state(theta):
        gates = [{"name": n, "qubits": q, **({} if a is None else {"angle": theta[index[a]] if isinstance(a, str) else a})} for n, q, a in spec]
        return reference.run(gates, 2)
    return c, state


def reference_natural_step(state, cost, theta, lr, lam, blocks=None, h=1e-5):
    """theta - lr (F/4 + lam I)^-1 grad, F = 4 Re[<d_i psi|d_j psi> - <d_i psi|psi><psi|d_j psi>] from the reference's states by central
    differences, the gradient likewise: nothing from qtrain."""
    d = len(theta)
    psi = state(theta)
    dpsi, grad = [], np.zeros(d)
    for j in range(d):
        e = np.zeros(d)
        e[j] = h
        dpsi.append((state(theta + e) - state(theta - e)) / (2 * h))
        grad[j] = (cost(state(theta + e)) - cost(state(theta - e))) / (2 * h)
    fisher = np.array([[4 * (np.vdot(dpsi[i], dpsi[j]) - np.vdot(dpsi[i], psi) * np.vdot(psi, dpsi[j])).real for j in range(d)] for i in range(d)])
    metric = fisher / 4
    if blocks is not None:
        block = np.arange(d) // (d // blocks)
        metric = metric * (block[:, None] == block[None, :])
    return theta - lr * np.linalg.solve(metric + lam * np.eye(d), grad)


@pytest.mark.parametrize("blocks", [None, 2, 4])
def test_qng_is_the_natural_gradient_step_of_the_reference_fisher_information(blocks):
    c, state = qng_circuit()
    terms = [(1.0, {0: "Z", 1: "Z"}), (0.5, {1: "X"}), (-0.3, {0: "Y"})]
    ctx = StepContext(c, _pauli("Z0 Z1 + 0.5*X1 - 0.3*Y0"), torch.complex128)
    theta = torch.rand(2, 3, 4, dtype=F64, generator=torch.Generator().manual_seed(1)) * 6 - 3
    lrs = torch.tensor([0.05, 0.3], dtype=F64)
    out = Qng(lam=1e-2, blocks=blocks).step(theta, lrs, ctx, 0, 0)
    for g in range(2):
        for b in range(3):
            expected = reference_natural_step(state, lambda s: reference.expval(s, terms), theta[g, b].numpy(), lrs[g].item(), 1e-2, blocks)
            assert np.allclose(out[g, b].numpy(), expected, atol=1e-7, rtol=0)


def test_qng_of_an_infidelity_and_a_small_regularizer():
    c, state = qng_circuit()
    target = random_target_state(2, seed=2).to(torch.complex128)
    t = target.numpy()
    theta = torch.tensor([[[0.3, -1.2, 2.0, 0.8]]], dtype=F64)
    out = Qng(lam=1e-4).step(theta, torch.tensor([0.2], dtype=F64), StepContext(c, target, torch.complex128), 0, 0)
    expected = reference_natural_step(state, lambda s: 1 - abs(np.vdot(t, s)) ** 2, theta[0, 0].numpy(), 0.2, 1e-4)
    assert np.allclose(out[0, 0].numpy(), expected, atol=1e-6, rtol=0)


# ---- spsa


def test_spsa_signs_are_balanced_and_keyed_by_seed_step_and_start():
    starts = torch.arange(200_000)
    signs = spsa_signs(0, 0, starts, 4)
    assert set(signs.unique().tolist()) == {-1.0, 1.0}
    assert signs.mean(dim=0).abs().max() < 5 / math.sqrt(200_000)  # each column balanced (5 sigma)
    pairs = (signs[:, :, None] * signs[:, None, :]).mean(dim=0) - torch.eye(4, dtype=F64)
    assert pairs.abs().max() < 5 / math.sqrt(200_000)  # columns uncorrelated
    assert (signs * spsa_signs(0, 1, starts, 4)).mean().abs() < 5 / math.sqrt(800_000)  # the next step draws afresh
    assert (signs * spsa_signs(1, 0, starts, 4)).mean().abs() < 5 / math.sqrt(800_000)  # another seed too
    assert torch.equal(spsa_signs(0, 0, starts[1000:1010], 4), signs[1000:1010])  # a start's signs do not depend on the batch


def test_spsa_step_follows_its_formula_and_its_estimate_is_the_gradient_on_average():
    ctx = StepContext(CIRCUIT, TARGET, torch.complex128)
    theta = torch.tensor([0.4, -1.1, 2.2], dtype=F64)
    k, lr, s = 3, 0.5, Spsa(c=0.05, A=2.0)
    batch = theta.expand(1, 20_000, 3).clone()
    out = s.step(batch, torch.tensor([lr], dtype=F64), ctx, k, 0, seed=9)
    delta = spsa_signs(9, k, torch.arange(20_000), 3)
    c_k, a_k = 0.05 / (k + 1) ** 0.101, lr / (k + 1 + 2.0) ** 0.602
    plus, minus = ctx.cost(theta + c_k * delta), ctx.cost(theta - c_k * delta)
    assert torch.allclose(out[0], theta - a_k * ((plus - minus) / (2 * c_k))[:, None] * delta, atol=1e-13, rtol=0)
    estimate = (theta - out[0]) / a_k  # (B, 3): one estimate per start, each with its own perturbation
    _, grad = ctx.value_and_grad(theta.unsqueeze(0))
    spread = estimate.std(dim=0) / math.sqrt(20_000)
    assert ((estimate.mean(dim=0) - grad[0]).abs() < 5 * spread + 1e-3).all()  # unbiased up to O(c^2) and the sampling error


def test_spsa_trains_under_density_matrix_noise():
    noise = NoiseModel(depolarizing=0.01)
    r = train_lr_grid(CIRCUIT, "Z0 Z1", "spsa", lrs=[0.5], starts=3, steps=3, seed=1, dtype=torch.complex128, noise=noise)
    ctx = StepContext(CIRCUIT, _pauli("Z0 Z1"), torch.complex128, noise)
    for b in range(3):
        theta = r.trajectories[0, 0, b].reshape(1, 1, 3)
        for k in range(3):
            theta = Spsa().step(theta, torch.tensor([0.5], dtype=F64), ctx, k, b, 1)
        assert torch.allclose(theta[0, 0], r.trajectories[-1, 0, b], atol=1e-10)


# ---- checks and refusals


@pytest.mark.parametrize("optimizer,settings,named", [
    ("qng", {"lam": -1}, "optimizer_settings.lam: must be a finite number > 0, got -1"),
    (functools.partial(Qng, lam=-1.0), None, "optimizer.lam: must be a finite number > 0, got -1.0"),
    ("qng", {"lam": 0.0}, "optimizer_settings.lam: must be a finite number > 0, got 0.0"),  # a singular metric would be unsolvable
    ("qng", {"blocks": 0}, "optimizer_settings.blocks: must be null (the full metric) or an integer >= 1, got 0"),
    ("spsa", {"c": 0}, "optimizer_settings.c: must be a finite number > 0 (the perturbation's size), got 0"),
    ("spsa", {"alpha": float("nan")}, "optimizer_settings.alpha: must be a finite number >= 0, got nan"),
    ("spsa", {"momentum": 0.9}, "optimizer_settings.momentum: Spsa has no setting 'momentum'"),
    ("rotosolve", {"lr": 1.0}, "optimizer_settings.lr: the learning rates come from `lrs`"),
])
def test_bad_settings_are_refused_naming_them(optimizer, settings, named):
    with pytest.raises(ValueError) as e:
        check_optimizer_settings(optimizer, settings)
    assert named in str(e.value) and "\n" not in str(e.value)


def test_settings_labels_name_what_differs_from_the_defaults():
    assert settings_label("qng") == "defaults" and settings_label(functools.partial(Qng, lam=0.01)) == "defaults"
    assert settings_label(functools.partial(Qng, lam=1e-3), {"blocks": 2}) == "blocks=2;lam=0.001"
    assert settings_label("spsa", {"A": 50}) == "A=50" and settings_label("rotosolve") == "defaults"


@pytest.mark.parametrize("optimizer,cost,changes,named", [
    ("rotosolve", TARGET, {"lrs": [0.5, 2.0]}, "lrs: rotosolve's learning rate is the fraction of the jump to each parameter's minimum, in [0, 1]; got 2"),
    ("qng", TARGET, {"optimizer_settings": {"blocks": 2}}, "optimizer_settings.blocks: 2 blocks do not divide the circuit's 3 parameters"),
    ("spsa", "Z0", {"shots": 100}, "optimizer 'spsa': shots=100: spsa steps from exact cost evaluations"),
    ("qng", "Z0", {"noise": NoiseModel(depolarizing=0.01)}, "optimizer 'qng': noise: qng's metric is that of pure states"),
    ("rotosolve", "Z0", {"noise": NoiseModel(depolarizing=0.01), "trajectories": 4}, "optimizer 'rotosolve': trajectories=4"),
    ("rotosolve", lambda states: states.abs()[:, 0] ** 2, {}, "optimizer 'rotosolve': cost: rotosolve needs a cost that is a trigonometric polynomial"),
])
def test_runs_a_stepper_cannot_do_are_refused_before_any_work(optimizer, cost, changes, named):
    args = {"lrs": [0.5], "starts": 2, "steps": 1, **changes}
    with pytest.raises(ValueError) as e:
        train_lr_grid(CIRCUIT, cost, optimizer, **args)
    assert named in str(e.value) and "\n" not in str(e.value)


def test_qng_and_spsa_train_a_function_of_states():
    def population(states):
        return states.abs()[:, 0] ** 2
    for name in ("qng", "spsa"):
        r = train_lr_grid(CIRCUIT, population, name, lrs=[0.2], starts=3, steps=2, seed=0, dtype=torch.complex128)
        assert r.cost_history.shape == (3, 1, 3) and torch.isfinite(r.cost_history).all()


# ---- the frozen mask


class FreezeFirst(MultiStartModule):
    """A stand-in for a layerwise callback: from step 2 on, parameter 0 is frozen (set again every step, so also after a resume)."""

    def on_train_epoch_start(self) -> None:
        self.set_frozen([len(self.history) >= 2, False, False])


def frozen_run(optimizer, settings, lrs, steps, checkpoint_dir=None):
    starts = torch.rand(3, 3, dtype=F64, generator=torch.Generator().manual_seed(2)) * 6 - 3
    module = FreezeFirst(CIRCUIT, TARGET, starts, lrs, optimizer, settings, torch.complex128)
    fit(module, steps, torch.device("cpu"), None, checkpoint_dir, 2, False)
    return torch.stack([*module.trajectories, module.tracked()])  # (T + 1, G, B, d)


@pytest.mark.parametrize("optimizer,settings,lrs", [("adam", {}, [0.1]), ("sgd", {"momentum": 0.9}, [0.1]), ("adamw", {"weight_decay": 0.1}, [0.1]),
                                                    ("qng", {}, [0.2]), ("spsa", {}, [1.0]), ("rotosolve", {}, [1.0])])
def test_frozen_parameters_do_not_move_under_any_optimizer(optimizer, settings, lrs):
    path = frozen_run(optimizer, settings, lrs, 6)
    assert (path[2:, ..., 0] == path[2, ..., 0]).all()  # frozen from step 2: not a rounding's worth of movement
    assert not torch.equal(path[2, ..., 0], path[0, ..., 0])  # it did move before
    assert not torch.equal(path[-1, ..., 1:], path[2, ..., 1:])  # the others still train


@pytest.mark.parametrize("optimizer", ["adam", "spsa"])
def test_a_resumed_run_with_a_frozen_mask_gives_the_uninterrupted_numbers(tmp_path, optimizer):
    lrs = [0.1] if optimizer == "adam" else [1.0]
    whole = frozen_run(optimizer, {}, lrs, 7)
    frozen_run(optimizer, {}, lrs, 3, tmp_path)
    resumed = frozen_run(optimizer, {}, lrs, 7, tmp_path)
    assert torch.allclose(resumed[-1], whole[-1], atol=1e-12, rtol=0)


def test_a_mask_of_the_wrong_length_is_refused():
    module = MultiStartModule(CIRCUIT, TARGET, torch.zeros(2, 3), [0.1], "adam", None, torch.complex64)
    with pytest.raises(ValueError, match=r"one entry per parameter \(3\), got shape \(2,\)"):
        module.set_frozen([True, False])


# ---- end to end


@pytest.mark.parametrize("name", sorted(STEPPERS))
def test_a_checkpointed_stepper_run_resumes_to_the_same_numbers(tmp_path, name):
    args = {"lrs": LRS[name], "starts": 3, "seed": 4, "dtype": torch.complex128}
    whole = train_lr_grid(CIRCUIT, TARGET, name, steps=10, **args)
    train_lr_grid(CIRCUIT, TARGET, name, steps=5, checkpoint_dir=tmp_path, checkpoint_every=5, **args)
    resumed = train_lr_grid(CIRCUIT, TARGET, name, steps=10, checkpoint_dir=tmp_path, checkpoint_every=5, **args)
    assert torch.equal(resumed.cost_history, whole.cost_history)
    assert torch.equal(resumed.trajectories, whole.trajectories)


def test_a_partial_and_settings_train_with_those_settings(tmp_path):
    r = train_lr_grid(CIRCUIT, TARGET, functools.partial(Qng, lam=1e-3), lrs=[0.1], starts=2, steps=2, dtype=torch.complex128,
                      optimizer_settings={"blocks": 3}, log_dir=tmp_path, log_every=1)
    assert r.optimizer == "qng" and r.optimizer_settings == "blocks=3;lam=0.001"
    start = r.trajectories[0, 0, 0].reshape(1, 1, 3)
    one = Qng(lam=1e-3, blocks=3).step(start, torch.tensor([0.1], dtype=F64), StepContext(CIRCUIT, TARGET, torch.complex128), 0, 0)
    assert torch.allclose(r.trajectories[1, 0, 0], one[0, 0], atol=1e-12)
    assert any(tmp_path.rglob("events.out.tfevents.*"))  # live metrics were written (with the exact gradient on logging steps)
    quiet = train_lr_grid(CIRCUIT, TARGET, functools.partial(Qng, lam=1e-3), lrs=[0.1], starts=2, steps=2, dtype=torch.complex128,
                          optimizer_settings={"blocks": 3})
    assert torch.equal(quiet.cost_history, r.cost_history)  # logging changes no number


# ---- experiment=lr_grid


def test_the_lr_grid_experiment_trains_the_steppers(tmp_path):
    from qtrain import cli
    from tests.test_cli import compose_experiment, rows_of

    cli.run(compose_experiment("lr_grid", ["optimizers=[qng,spsa,rotosolve]", "optimizer.spsa.A=2", "sharing=[1]", "lrs=[0.3,1.0]", "starts=4",
                                           "steps=3", "resolution=12", "dtype=complex128"]), tmp_path)
    rows = rows_of(tmp_path / "results.csv")
    assert [(r["optimizer"], r["optimizer_settings"], float(r["lr"])) for r in rows] == [
        ("qng", "defaults", 0.3), ("qng", "defaults", 1.0), ("spsa", "A=2", 0.3), ("spsa", "A=2", 1.0),
        ("rotosolve", "defaults", 0.3), ("rotosolve", "defaults", 1.0)]


@pytest.mark.parametrize("overrides,named", [
    (["optimizers=[qng]", "optimizer.qng.lam=-1"], "optimizer.qng.lam: must be a finite number > 0, got -1"),
    (["optimizers=[qng]", "optimizer.qng.blocks=2"], "optimizer.qng.blocks: 2 blocks do not divide the circuit's 3 parameters"),
    (["optimizers=[rotosolve]", "lrs=[0.5,3]"], "lrs: rotosolve's learning rate is the fraction of the jump"),
    (["optimizers=[adam,spsa]", "cost=global", "shots=[null,100]"], "optimizers: spsa: shots=100"),
    (["optimizers=[qng]", "noise.depolarizing=0.01"], "optimizers: qng: noise: qng's metric is that of pure states"),
])
def test_the_lr_grid_experiment_refuses_what_a_stepper_cannot_do_before_any_work(overrides, named):
    from qtrain._tasks import lr_grid
    from tests.test_cli import compose_experiment

    with pytest.raises(ValueError) as e:
        lr_grid.plan(compose_experiment("lr_grid", overrides))
    assert named in str(e.value) and "\n" not in str(e.value)
