"""The noise API: NoiseModel checks and channel algebra, the noisy Circuit / QuantumLayer / gradient_variance /
train_lr_grid surfaces, their refusals, seeds and row keys, and the CLI's `noise` block."""

from __future__ import annotations

import math

import pytest
import torch

from qtrain import Circuit, QuantumLayer, cli
from qtrain.diagnostics.gradients import gradient_variance
from qtrain.errors import UsageError
from qtrain.noise import CHANNELS, NoiseModel, kraus_operators, pauli_probabilities, superoperator
from qtrain.training.grid import train_lr_grid
from tests.test_cli import compose_experiment

C128 = torch.complex128


def small_circuit() -> Circuit:
    return Circuit(2).ry(0, "a").ry(1, "b").cz(0, 1).rx(0, "c").ry(1, "d")


def thetas(rows: int = 4, params: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand(rows, params, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * (2 * math.pi)


DEPOL = NoiseModel(depolarizing=0.05)


# ---- NoiseModel ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", [*CHANNELS, "readout"])
@pytest.mark.parametrize("value, error", [(-0.1, ValueError), (1.5, ValueError), (float("nan"), ValueError), (True, TypeError),
                                          ("0.1", TypeError)])
def test_a_bad_rate_is_refused_naming_its_field(field, value, error):
    with pytest.raises(error, match=f"noise: {field}"):
        NoiseModel(**{field: value})


def test_a_bad_rate_inside_a_mapping_is_refused_naming_the_key():
    with pytest.raises(ValueError, match=r"noise: depolarizing\['cz'\] must be in \[0, 1\]"):
        NoiseModel(depolarizing={"cz": 2.0})
    with pytest.raises(ValueError, match=r"noise: bit_flip\[0\]"):
        NoiseModel(bit_flip={0: -1.0})


def test_bad_mapping_keys_are_refused():
    with pytest.raises(ValueError, match="depolarizing mapping keys must be all gate names or all qubit indices"):
        NoiseModel(depolarizing={"cz": 0.1, 0: 0.1})
    with pytest.raises(ValueError, match="depolarizing names unknown gate 'czz'"):
        NoiseModel(depolarizing={"czz": 0.1})
    with pytest.raises(ValueError, match="readout is per qubit only"):
        NoiseModel(readout={"cz": 0.1})
    with pytest.raises(ValueError, match="mapping keys"):
        NoiseModel(phase_flip={-1: 0.1})


def test_a_qubit_beyond_the_circuit_is_refused_when_used():
    model = NoiseModel(depolarizing={5: 0.1})  # fine on its own: the model does not know the circuit
    with pytest.raises(ValueError, match=r"noise: depolarizing names qubit 5, but the circuit has 2 qubits"):
        small_circuit().expval(thetas(), "Z0", noise=model)
    with pytest.raises(ValueError, match=r"names qubit 5"):
        small_circuit().expval(thetas(), "Z0", noise=model, trajectories=2, seed=0)


def test_equality_and_hash_are_by_value():
    a = NoiseModel(depolarizing={0: 0.1, 1: 0.2}, readout=0.01)
    b = NoiseModel(depolarizing={1: 0.2, 0: 0.1}, readout=0.01)
    assert a == b and hash(a) == hash(b)
    assert {a: "x"}[b] == "x"
    assert a != NoiseModel(depolarizing={0: 0.1, 1: 0.3}, readout=0.01)
    assert NoiseModel(depolarizing=1) == NoiseModel(depolarizing=1.0)
    assert NoiseModel() != NoiseModel(bit_flip=0.1)
    assert len({NoiseModel(), NoiseModel(), NoiseModel(phase_flip=0.2)}) == 2


def test_describe():
    assert NoiseModel().describe() == "noiseless"
    assert NoiseModel(depolarizing=0.01, readout=0.02).describe() == "depolarizing=0.01, readout=0.02"
    assert NoiseModel(amplitude_damping={"cz": 0.1}, readout={0: 0.1}).describe() == "amplitude_damping={cz: 0.1}, readout={0: 0.1}"


@pytest.mark.parametrize("name", CHANNELS)
@pytest.mark.parametrize("rate", [0.0, 0.03, 0.5, 1.0])
def test_kraus_operators_are_trace_preserving(name, rate):
    ks = kraus_operators(name, rate)
    total = sum(k.conj().T @ k for k in ks)
    assert torch.allclose(total, torch.eye(2, dtype=C128), atol=1e-14)


def test_depolarizing_three_quarters_is_the_fully_depolarizing_channel():
    s = superoperator("depolarizing", 0.75)
    gen = torch.Generator().manual_seed(3)
    for _ in range(5):
        a = torch.randn(2, 2, dtype=C128, generator=gen)
        rho = a @ a.conj().T
        rho = rho / torch.trace(rho)
        out = (s @ rho.reshape(4)).reshape(2, 2)
        assert torch.allclose(out, torch.eye(2, dtype=C128) / 2, atol=1e-14)


@pytest.mark.parametrize("l", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_phase_damping_is_a_phase_flip(l):
    p_i, p_x, p_y, p_z = pauli_probabilities("phase_damping", l)
    assert (p_x, p_y) == (0.0, 0.0) and p_i + p_z == pytest.approx(1.0)
    assert p_z == pytest.approx((1 - math.sqrt(1 - l)) / 2)
    assert torch.allclose(superoperator("phase_damping", l), superoperator("phase_flip", p_z), atol=1e-14)


def test_pauli_probabilities_refuses_amplitude_damping():
    with pytest.raises(ValueError, match="not a Pauli channel"):
        pauli_probabilities("amplitude_damping", 0.1)


# ---- Circuit API refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"noise": DEPOL, "trajectories": 4, "method": "density"}, "trajectories and method='density' exclude each other"),
        ({"noise": DEPOL, "method": "trajectories"}, "method='trajectories' needs trajectories=T"),
        ({"noise": DEPOL, "method": "sampled"}, "method must be one of"),
        ({"method": "density"}, "method applies to noisy runs, but noise is None"),
        ({"trajectories": 4}, "trajectories applies to noisy runs, but noise is None"),
        ({"noise": DEPOL, "trajectories": 4, "seed": 0, "shots": 100}, "shots with noise"),
        ({"noise": DEPOL, "trajectories": 0}, "trajectories must be a positive int, got 0"),
        ({"noise": DEPOL, "trajectories": -1}, "trajectories must be a positive int, got -1"),
        ({"noise": DEPOL, "trajectories": True}, "trajectories must be a positive int, got True"),
        ({"noise": DEPOL, "initial_state": torch.tensor([1, 0, 0, 0], dtype=C128)}, "initial_state is not supported with a noise model"),
    ],
)
def test_expval_refuses_bad_noise_settings(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        small_circuit().expval(thetas(), "Z0 Z1", **kwargs)


def test_noise_must_be_a_noise_model():
    with pytest.raises(TypeError, match="noise must be a qtrain.noise.NoiseModel, got dict"):
        small_circuit().expval(thetas(), "Z0", noise={"depolarizing": 0.1})


def test_value_and_grad_refusals():
    c, th = small_circuit(), thetas()
    with pytest.raises(ValueError, match="trajectories with amplitude damping give values only"):
        c.value_and_grad(th, "Z0 Z1", noise=NoiseModel(amplitude_damping=0.1), trajectories=3, seed=0)
    with pytest.raises(ValueError, match="a function of states has no noisy form"):
        c.value_and_grad(th, lambda states: states[:, 0].abs() ** 2, noise=DEPOL)
    with pytest.raises(ValueError, match="shots with noise"):
        c.value_and_grad(th, "Z0", noise=DEPOL, trajectories=2, shots=10, seed=0)
    with pytest.raises(ValueError, match="initial_state is not supported"):
        c.value_and_grad(th, "Z0", noise=DEPOL, initial_state=torch.tensor([1, 0, 0, 0], dtype=C128))


def test_amplitude_damping_trajectories_give_values_but_no_autograd():
    c, th = small_circuit(), thetas()
    model = NoiseModel(amplitude_damping=0.2)
    with torch.no_grad():
        values = c.expval(th, "Z0 Z1", noise=model, trajectories=4, seed=1)
    assert values.shape == (4,) and torch.isfinite(values).all()
    with pytest.raises(ValueError, match="amplitude damping give values only"):
        c.expval(th.clone().requires_grad_(True), "Z0 Z1", noise=model, trajectories=4, seed=1)


def test_a_density_matrix_beyond_the_budget_is_a_memory_error_naming_the_size(monkeypatch):
    monkeypatch.setattr("qtrain._memory.free_memory", lambda device: 2048)  # a budget of about 1 KiB
    c = Circuit(6)
    for q in range(6):
        c.ry(q, f"a{q}")
    th = thetas(2, 6)
    with pytest.raises(MemoryError, match=r"noise: the density matrix of 6 qubits needs [0-9.]+ ?[KMG]?i?B"):
        c.expval(th, " + ".join(f"Z{q}" for q in range(6)), noise=DEPOL, light_cone=False)
    with pytest.raises(MemoryError, match="density matrix of 6 qubits needs"):
        c.density_matrix(th, noise=DEPOL)


# ---- seeds and rows --------------------------------------------------------------------------------


def test_same_seed_same_trajectories_other_seed_other_numbers():
    c, th = small_circuit(), thetas(4)
    model = NoiseModel(depolarizing=0.2, bit_flip=0.1)
    a = c.expval(th, "Z0 Z1", noise=model, trajectories=16, seed=7)
    b = c.expval(th, "Z0 Z1", noise=model, trajectories=16, seed=7)
    d = c.expval(th, "Z0 Z1", noise=model, trajectories=16, seed=8)
    assert torch.equal(a, b)
    assert not torch.equal(a, d)
    va, ga = c.value_and_grad(th, "Z0 Z1", noise=model, trajectories=16, seed=7)
    vb, gb = c.value_and_grad(th, "Z0 Z1", noise=model, trajectories=16, seed=7)
    assert torch.equal(va, vb) and torch.equal(ga, gb)
    assert torch.allclose(va, a, atol=1e-12)


def test_rows_do_not_depend_on_how_the_batch_is_split():
    c, th = small_circuit(), thetas(5)
    model = NoiseModel(depolarizing=0.2, phase_damping=0.1)
    whole = c.expval(th, "Z0 Z1", noise=model, trajectories=16, seed=3)
    part = c.expval(th[2:4], "Z0 Z1", noise=model, trajectories=16, seed=3, first_row=2)
    assert torch.equal(part, whole[2:4])
    unkeyed = c.expval(th[2:4], "Z0 Z1", noise=model, trajectories=16, seed=3)  # first_row=0: rows 0..1's draws
    assert not torch.equal(unkeyed, whole[2:4])
    _, g_whole = c.value_and_grad(th, "Z0 Z1", noise=model, trajectories=16, seed=3)
    _, g_part = c.value_and_grad(th[2:4], "Z0 Z1", noise=model, trajectories=16, seed=3, first_row=2)
    assert torch.allclose(g_part, g_whole[2:4], atol=1e-12)


@pytest.mark.parametrize("method", ["density", "trajectories"])
def test_readout_scales_a_weight_two_term_by_one_minus_two_r_squared(method):
    c, th, r = small_circuit(), thetas(4), 0.1
    extra = {"trajectories": 8, "seed": 5} if method == "trajectories" else {}
    plain = c.expval(th, "Z0 Z1", noise=NoiseModel(depolarizing=0.1), **extra)
    read = c.expval(th, "Z0 Z1", noise=NoiseModel(depolarizing=0.1, readout=r), **extra)
    assert torch.allclose(read, (1 - 2 * r) ** 2 * plain, atol=1e-12)
    assert not torch.allclose(read, plain)


def test_density_matches_the_reference_and_trajectories_converge_to_it():
    from tests import noise_reference as ref

    c, th = small_circuit(), thetas(3)
    model = NoiseModel(depolarizing=0.1, phase_damping=0.05, readout=0.02)
    gates = [("ry", (0,), ("a",)), ("ry", (1,), ("b",)), ("cz", (0, 1), ()), ("rx", (0,), ("c",)), ("ry", (1,), ("d",))]
    noise = {"depolarizing": 0.1, "phase_damping": 0.05, "readout": 0.02}
    want = torch.tensor([ref.noisy_expval(gates, row.numpy(), 2, "Z0 Z1 + 0.5 X0", noise) for row in th], dtype=torch.float64)
    got = c.expval(th, "Z0 Z1 + 0.5 X0", noise=model, dtype=C128)
    assert torch.allclose(got, want, atol=1e-12)
    traj = c.expval(th, "Z0 Z1 + 0.5 X0", noise=model, trajectories=4000, seed=0, dtype=C128)
    assert torch.allclose(traj, want, atol=0.06)


# ---- QuantumLayer ----------------------------------------------------------------------------------


def _layer(**kwargs) -> QuantumLayer:
    return QuantumLayer(small_circuit(), ["Z0 Z1", "X0"], inputs=["a"], dtype=C128, generator=torch.Generator().manual_seed(1), **kwargs)


def _full_theta(layer: QuantumLayer, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, layer.weight.detach().expand(x.shape[0], -1)], dim=1)[:, layer.order]


def test_a_noisy_layer_outputs_the_noisy_expval_and_its_gradient_flows():
    model = NoiseModel(depolarizing=0.1, readout=0.05)
    layer = _layer(noise=model)
    x = torch.tensor([[0.3], [1.1], [-0.7]], dtype=torch.float64)
    out = layer(x)
    want = small_circuit().expval(_full_theta(layer, x), ["Z0 Z1", "X0"], noise=model, dtype=C128)
    assert torch.allclose(out, want, atol=1e-12)
    out.sum().backward()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all() and layer.weight.grad.abs().sum() > 0
    noiseless = _layer()(x)
    assert not torch.allclose(out.detach(), noiseless.detach())
    assert "noise=(depolarizing=0.1, readout=0.05)" in repr(layer)


def test_a_trajectory_layer_with_a_seed_repeats_and_differentiates():
    model = NoiseModel(depolarizing=0.1)
    layer = _layer(noise=model, trajectories=8, seed=4)
    x = torch.tensor([[0.3], [1.1]], dtype=torch.float64)
    a, b = layer(x), layer(x)
    assert torch.equal(a, b)
    want = small_circuit().expval(_full_theta(layer, x), ["Z0 Z1", "X0"], noise=model, trajectories=8, seed=4, dtype=C128)
    assert torch.allclose(a, want, atol=1e-12)
    a.sum().backward()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()
    assert "trajectories=8" in layer.extra_repr() and "depolarizing=0.1" in layer.extra_repr()


def test_layer_refusals():
    with pytest.raises(ValueError, match="trajectories applies to noisy runs"):
        _layer(trajectories=4)
    with pytest.raises(ValueError, match="shots with noise"):
        _layer(noise=DEPOL, trajectories=4, shots=100)


def test_a_noisy_layer_with_shots_refuses_or_samples():
    try:
        layer = _layer(noise=DEPOL, shots=100, seed=1)
    except ValueError as e:
        assert "shots" in str(e)
        return
    x = torch.tensor([[0.3], [1.1]], dtype=torch.float64)
    exact = small_circuit().expval(_full_theta(layer, x), ["Z0 Z1", "X0"], noise=DEPOL, dtype=C128)
    assert not torch.allclose(layer(x).detach(), exact)  # 100 shots: an estimate, not the exact value


# ---- gradient_variance --------------------------------------------------------------------------------


def _plateau_circuit() -> Circuit:
    c = Circuit(2)
    for layer in range(3):
        for q in range(2):
            c.ry(q, f"y{layer}{q}").rz(q, f"z{layer}{q}")
        c.cz(0, 1)
    return c


def test_depolarizing_noise_lowers_the_gradient_variance():
    c = _plateau_circuit()
    clean = gradient_variance(c, "Z0 Z1", samples=64, seed=2, dtype=C128, noise=NoiseModel())
    noisy = gradient_variance(c, "Z0 Z1", samples=64, seed=2, dtype=C128, noise=NoiseModel(depolarizing=0.1))
    plain = gradient_variance(c, "Z0 Z1", samples=64, seed=2, dtype=C128)
    assert torch.allclose(clean.gradients, plain.gradients, atol=1e-10)  # a noiseless model is the pure run
    assert noisy.var < 0.7 * clean.var


def test_trajectory_gradient_variance_does_not_depend_on_the_chunks():
    c = _plateau_circuit()
    model = NoiseModel(depolarizing=0.1)
    a = gradient_variance(c, "Z0 Z1", samples=8, seed=2, dtype=C128, noise=model, trajectories=4, chunk_size=3)
    b = gradient_variance(c, "Z0 Z1", samples=8, seed=2, dtype=C128, noise=model, trajectories=4)
    assert torch.allclose(a.gradients, b.gradients, atol=1e-12)
    d = gradient_variance(c, "Z0 Z1", samples=8, seed=3, dtype=C128, noise=model, trajectories=4)
    assert not torch.allclose(a.gradients, d.gradients)


def test_gradient_variance_with_shots_under_noise_splits_into_the_noisy_exact_and_the_shot_parts():
    """Shots measured on the noisy density matrix: exact_var is the variance of the noisy exact gradients (the
    same numbers as without shots), and the estimates' variance is about exact_var + shot_var."""
    c = _plateau_circuit()
    exact = gradient_variance(c, "Z0 Z1", samples=64, seed=2, dtype=C128, noise=DEPOL)
    shot = gradient_variance(c, "Z0 Z1", samples=64, seed=2, dtype=C128, noise=DEPOL, shots=200)
    assert shot.exact_var.item() == pytest.approx(exact.var.item(), rel=1e-12)
    clean = gradient_variance(c, "Z0 Z1", samples=64, seed=2, dtype=C128, shots=200)
    assert shot.exact_var.item() < clean.exact_var.item()  # the noise is in the exact part
    assert shot.var.item() == pytest.approx(shot.exact_var.item() + shot.shot_var.item(), rel=0.5)


def test_gradient_variance_refusals():
    c = _plateau_circuit()
    with pytest.raises(ValueError, match="shots with noise are measured on the exact density matrix"):
        gradient_variance(c, "Z0 Z1", samples=4, noise=DEPOL, shots=10, trajectories=4)
    with pytest.raises(ValueError, match="trajectories applies to noisy runs"):
        gradient_variance(c, "Z0 Z1", samples=4, trajectories=4)


# ---- train_lr_grid --------------------------------------------------------------------------------------


GRID = {"optimizer": "adam", "lrs": [0.1], "starts": 8, "steps": 5, "seed": 1, "dtype": C128, "resolution": 6}


def test_noisy_training_with_an_observable_and_with_a_target_state():
    c = small_circuit()
    r = train_lr_grid(c, "Z0 Z1", noise=DEPOL, **GRID)
    assert r.cost_history.shape[0] == 6 and torch.isfinite(r.cost_history).all()
    target = torch.zeros(4, dtype=C128)
    target[3] = 1
    t = train_lr_grid(c, target, noise=DEPOL, **GRID)
    assert torch.isfinite(t.cost_history).all() and (t.cost_history >= -1e-9).all()
    clean = train_lr_grid(c, "Z0 Z1", **GRID)
    assert not torch.allclose(r.cost_history, clean.cost_history)


def test_noisy_training_with_trajectories():
    r = train_lr_grid(small_circuit(), "Z0 Z1", noise=DEPOL, trajectories=4, shot_seed=3, **GRID)
    again = train_lr_grid(small_circuit(), "Z0 Z1", noise=DEPOL, trajectories=4, shot_seed=3, **GRID)
    assert torch.isfinite(r.cost_history).all() and torch.equal(r.cost_history, again.cost_history)


def test_noisy_training_with_shots_records_the_exact_noisy_cost():
    """Shot gradients measured on the noisy density matrix; the history holds the exact noisy cost, as the
    noiseless shot training holds the exact cost."""
    c = small_circuit()
    r = train_lr_grid(c, "Z0 Z1", noise=DEPOL, shots=100, shot_seed=4, **GRID)
    theta0 = r.trajectories[0, 0, 0]  # the first start's angles before the first step (step, lr, start)
    first = c.expval(theta0.unsqueeze(0).to(torch.float64), "Z0 Z1", noise=DEPOL)
    assert r.cost_history[0, 0, 0].item() == pytest.approx(first.item(), abs=1e-9)
    again = train_lr_grid(c, "Z0 Z1", noise=DEPOL, shots=100, shot_seed=4, **GRID)
    assert torch.equal(r.cost_history, again.cost_history)


def test_noisy_training_refusals():
    with pytest.raises(ValueError, match="shots with noise are measured on the exact density matrix"):
        train_lr_grid(small_circuit(), "Z0 Z1", noise=DEPOL, shots=10, trajectories=4, **GRID)
    with pytest.raises(ValueError, match="trajectories applies to noisy training"):
        train_lr_grid(small_circuit(), "Z0 Z1", trajectories=4, **GRID)
    with pytest.raises(ValueError, match="a function of states has no noisy form"):
        train_lr_grid(small_circuit(), lambda s: s[:, 0].abs() ** 2, noise=DEPOL, **GRID)


def test_a_resume_with_other_noise_is_refused(tmp_path, monkeypatch):
    args = {**GRID, "steps": 3, "checkpoint_every": 3}
    train_lr_grid(small_circuit(), "Z0 Z1", noise=DEPOL, checkpoint_dir=tmp_path, **args)
    monkeypatch.setattr("qtrain.training._run.pl.Trainer", None)  # refused before Lightning starts
    with pytest.raises(ValueError, match="noise"):
        train_lr_grid(small_circuit(), "Z0 Z1", noise=NoiseModel(depolarizing=0.1), checkpoint_dir=tmp_path, **args)
    with pytest.raises(ValueError, match="noise"):
        train_lr_grid(small_circuit(), "Z0 Z1", noise=DEPOL, trajectories=2, checkpoint_dir=tmp_path, **args)


def test_a_noiseless_resume_of_a_noisy_run_is_refused(tmp_path):
    clean = tmp_path / "clean"
    args = {**GRID, "steps": 3, "checkpoint_every": 3}
    train_lr_grid(small_circuit(), "Z0 Z1", checkpoint_dir=clean, **args)
    with pytest.raises(ValueError, match="noise"):  # noiseless there, noisy now: refused
        train_lr_grid(small_circuit(), "Z0 Z1", noise=DEPOL, checkpoint_dir=clean, **args)


def test_a_noisy_checkpoint_is_not_resumed_without_noise(tmp_path, monkeypatch):
    args = {**GRID, "steps": 3, "checkpoint_every": 3}
    train_lr_grid(small_circuit(), "Z0 Z1", noise=DEPOL, checkpoint_dir=tmp_path, **args)
    monkeypatch.setattr("qtrain.training._run.pl.Trainer", None)  # refused before Lightning starts
    with pytest.raises(ValueError, match="noise"):
        train_lr_grid(small_circuit(), "Z0 Z1", checkpoint_dir=tmp_path, **args)


# ---- CLI ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["experiment=deceptiveness", "sharing=[1]", "resolution=[6]", "params=2", "qubits=2", "noise.depolarizing=0.01"],
         "noise: the deceptiveness experiment does not take noise (its landscapes are noiseless)"),
        (["experiment=barren_plateau", "qubits=[2]", "layers=[1]", "samples=4", "noise.depolarizing=0.01", "noise.trajectories=8"],
         "noise.trajectories: the barren_plateau experiment runs the exact density matrix under noise"),
        (["experiment=demo", "steps=2", "samples=8", "noise.depolarizing=2"], "noise.depolarizing must be in [0, 1], got 2"),
        (["experiment=demo", "steps=2", "samples=8", "noise.trajectories=5"], "noise.trajectories is set, but every noise rate is 0"),
    ],
)
def test_a_bad_noise_block_is_one_line(args, message, tmp_path, in_process, capsys):
    run_dir = tmp_path / "run"
    assert in_process([*args, f"hydra.run.dir={run_dir}"]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("qtrain: error: "), err
    assert message in err, err
    assert "Traceback" not in out + err
    made = {p.name for p in run_dir.iterdir()} if run_dir.exists() else set()
    assert made <= {".hydra", "cli.log"}, made


def test_barren_plateau_under_noise_is_the_density_sweep_and_refuses_to_resume_noiseless(tmp_path):
    """The experiment's noisy sweep equals the gradients of the whole noisy circuit at depth 2 (autograd through
    its density matrix), and a noiseless rerun of the folder is refused."""
    from qtrain._tasks.barren_plateau import _seed
    from qtrain.builders import mcclean_circuit, mcclean_draw
    from tests.test_cli import rows_of

    noise = ["noise.depolarizing=0.05", "noise.amplitude_damping=0.02"]
    cfg = compose_experiment("barren_plateau", ["qubits=[3]", "layers=[1,2]", "samples=6", "dtype=complex128", *noise])
    cli.run(cfg, tmp_path)
    row = next(r for r in rows_of(tmp_path / "results.csv") if r["n_layers"] == "2")
    seed = _seed(0, 3)
    draw = mcclean_draw(3, 2, 6, seed)
    theta = draw.angles.permute(1, 0, 2).reshape(6, -1)  # layer-major parameters theta_<layer>_<qubit>
    _, grads = mcclean_circuit(3, 2, 6, seed).value_and_grad(theta, "Z0 Z1", noise=NoiseModel(depolarizing=0.05, amplitude_damping=0.02))
    assert float(row["grad_var"]) == pytest.approx(grads[:, 0].var().item(), rel=1e-9)
    with pytest.raises(UsageError, match="noise"):
        cli.run(compose_experiment("barren_plateau", ["qubits=[3]", "layers=[1,2]", "samples=6", "dtype=complex128"]), tmp_path)


def test_an_lr_grid_folder_of_a_noisy_run_refuses_a_noiseless_rerun(tmp_path):
    tiny = ["sharing=[1]", "lrs=[0.1]", "starts=4", "steps=2", "params=2", "qubits=2", "resolution=6", "optimizers=[adam]"]
    cli.run(compose_experiment("lr_grid", [*tiny, "noise.depolarizing=0.05"]), tmp_path)
    with pytest.raises(UsageError, match="noise"):
        cli.run(compose_experiment("lr_grid", tiny), tmp_path)


def test_the_demo_runs_with_noise(tmp_path):
    from tests.test_cli import rows_of

    cli.run(compose_experiment("demo", ["steps=2", "samples=8", "noise.depolarizing=0.3"]), tmp_path / "noisy")
    cli.run(compose_experiment("demo", ["steps=2", "samples=8"]), tmp_path / "clean")
    noisy, clean = rows_of(tmp_path / "noisy" / "results.csv"), rows_of(tmp_path / "clean" / "results.csv")
    assert len(noisy) == len(clean) > 0
    assert [r["loss"] for r in noisy] != [r["loss"] for r in clean]  # the noise reached the layer


def test_settings_that_would_do_nothing_or_fail_later_are_refused_up_front():
    """Found in review: each of these was accepted and then ignored, or failed only at the first gradient."""
    c = Circuit(2).ry(0, "a").cz(0, 1).ry(1, "b")
    theta = torch.rand(2, 2, dtype=torch.float64)
    depol = NoiseModel(depolarizing=0.1)
    with pytest.raises(ValueError, match="diff_method must be one of"):
        c.expval(theta, "Z1", noise=depol, diff_method="bogus")
    with pytest.raises(ValueError, match="diff_method='adjoint' does not apply under noise"):
        c.expval(theta, "Z1", noise=depol, diff_method="adjoint")
    with pytest.raises(ValueError, match="trajectories with amplitude damping give values only"):
        QuantumLayer(c, ["Z1"], noise=NoiseModel(amplitude_damping=0.1), trajectories=4, seed=1)
    with pytest.raises(ValueError, match="trajectories with amplitude damping give values only"):
        train_lr_grid(c, "Z1", lrs=[0.1], starts=2, steps=1, noise=NoiseModel(amplitude_damping=0.1), trajectories=4)
    target = torch.tensor([1, 0, 0, 0], dtype=torch.complex128)
    with pytest.raises(ValueError, match="readout error flips the measured bits"):
        c.infidelity(theta, target, noise=NoiseModel(readout=0.1))
    with pytest.raises(ValueError, match="readout error flips the measured bits"):
        train_lr_grid(c, target, lrs=[0.1], starts=2, steps=1, noise=NoiseModel(readout=0.1))


def test_numpy_rates_and_qubit_keys_are_plain_numbers():
    import numpy as np

    c = Circuit(2).ry(0, "a").cz(0, 1).ry(1, "b")
    theta = torch.rand(2, 2, dtype=torch.float64)
    numpy_model = NoiseModel(depolarizing=np.float32(0.125), bit_flip={np.int64(0): 0.1})
    plain = NoiseModel(depolarizing=0.125, bit_flip={0: 0.1})
    assert numpy_model == plain
    assert torch.equal(c.expval(theta, "Z1", noise=numpy_model), c.expval(theta, "Z1", noise=plain))


@pytest.mark.parametrize("override, message", [
    ("noise.trajectories=4", "noise.trajectories: trajectories with amplitude damping give values only"),
    ("noise.readout=0.1", "noise.readout: readout error flips the measured bits of Pauli terms"),
])
def test_lr_grid_refuses_noise_it_cannot_train_on_before_any_work(override, message, tmp_path):
    extra = ["noise.amplitude_damping=0.1"] if "trajectories" in override else []
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cli.run(compose_experiment("lr_grid", ["starts=2", "steps=1", override, *extra]), tmp_path)
    assert not (tmp_path / "run.json").exists()
