"""Initializations (issue 27, part 2): identity blocks start as the identity
(checked by the dense reference), Zhang et al.'s Gaussian width, and
layerwise training's freezing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qtrain import Circuit, builders
from qtrain.diagnostics import gradient_variance
from qtrain.initializations import INITS, cost_locality, gaussian_width, identity_block_mirrors, initial_angles, rotation_depth
from qtrain.layers import QuantumLayer, draw_angles
from qtrain.training import Layerwise, train_lr_grid
from tests import reference
from tests.circuits import random_circuit

AXES = "XYZ"


def reference_unitary(circuit: Circuit, theta: np.ndarray, sample: int = 0) -> np.ndarray:
    """The circuit's 2^n x 2^n matrix at theta (P,), from the reference's own gate matrices (read off the circuit's ops)."""
    n = circuit.n_qubits
    total = np.eye(2**n, dtype=complex)
    for op in circuit.ops:
        values = [float(theta[p]) if p is not None else a for p, a in zip(op.params, op.angles)]
        gate: dict = {"name": op.name, "qubits": op.qubits}
        if len(values) == 1:
            gate["angle"] = values[0]
        elif values:
            gate["angles"] = values
        if op.axes is not None:
            gate["axis"] = AXES[int(op.axes[sample if op.axes.numel() > 1 else 0])]
        if op.matrix is not None:
            matrix = op.matrix.numpy()
            gate["matrix"] = matrix[sample] if matrix.ndim == 3 else matrix
        total = reference.embed(reference.gate_matrix(gate), op.qubits, n) @ total
    return total


@pytest.mark.parametrize("seed", range(4))
def test_identity_blocks_start_as_the_identity(seed):
    """Every gate kind, shared parameters, fixed angles, sx and unitaries (inverted by matrix): the whole circuit at the
    init's angles is exactly the identity, while its first halves are random."""
    rng = np.random.default_rng(seed)
    block = random_circuit(rng, 3, 14, batch=1, per_sample=False).circuit
    circuit = builders.identity_blocks(block, repeats=2)
    assert circuit.n_params == 4 * block.n_params
    theta = initial_angles(circuit, "identity_blocks", 3, torch.Generator().manual_seed(seed))
    for row in theta.numpy():
        np.testing.assert_allclose(reference_unitary(circuit, row), np.eye(8), atol=1e-10)
    # the sources are uniform draws, the mirrors their negatives; a random point is not the identity
    mirrors = identity_block_mirrors(circuit)
    assert len(mirrors) == 2 * block.n_params
    for mirror, source in mirrors.items():
        assert circuit.parameters[mirror] == circuit.parameters[source] + "~"
        torch.testing.assert_close(theta[:, mirror], -theta[:, source])
    other = np.random.default_rng(99).uniform(-math.pi, math.pi, circuit.n_params)
    assert np.abs(reference_unitary(circuit, other) - np.eye(8)).max() > 1e-3


def test_identity_blocks_with_per_sample_gates():
    """pauli_rot axes and unitaries per sample are mirrored per sample."""
    rng = np.random.default_rng(5)
    block = random_circuit(rng, 2, 10, batch=3, per_sample=True).circuit
    circuit = builders.identity_blocks(block)
    theta = initial_angles(circuit, "identity_blocks", (), torch.Generator().manual_seed(1))
    for sample in range(3):
        np.testing.assert_allclose(reference_unitary(circuit, theta.numpy(), sample), np.eye(4), atol=1e-10)


def test_identity_blocks_keep_a_shared_parameter_shared():
    block = Circuit(2).ry(0, "a").cnot(0, 1).ry(1, "a").rz(0, "b")
    circuit = builders.identity_blocks(block)
    assert circuit.parameters == ("a", "b", "b~", "a~")
    assert [op.params for op in circuit.ops if op.name == "ry"] == [(0,), (0,), (3,), (3,)]
    theta = initial_angles(circuit, "identity_blocks", 4, torch.Generator().manual_seed(0))
    states = circuit.state(theta, dtype=torch.complex128)
    torch.testing.assert_close(states[:, 0].abs(), torch.ones(4, dtype=torch.float64))


def test_identity_blocks_after_a_preparation_start_as_the_preparation():
    """Gates before the blocks (McClean's R_Y(pi/4) layer, a trainable encoding) are not mirrored: the circuit starts as them alone."""
    prep = Circuit(3)
    for q in range(3):
        prep.ry(q, math.pi / 4)
    prep.rx(0, "x")
    block = random_circuit(np.random.default_rng(7), 3, 10, batch=1, per_sample=False).circuit
    circuit = builders.identity_blocks(block, 2, before=prep)
    theta = initial_angles(circuit, "identity_blocks", 2, torch.Generator().manual_seed(0))
    for row in theta.numpy():
        np.testing.assert_allclose(reference_unitary(circuit, row), reference_unitary(prep, row[:1]), atol=1e-10)
    with pytest.raises(ValueError, match="parameter names collide"):
        builders.identity_blocks(Circuit(3).rx(0, "a"), 2, before=Circuit(3).rx(1, "a_1"))


def test_identity_blocks_refusals():
    with pytest.raises(ValueError, match="needs a circuit built by qtrain.builders.identity_blocks"):
        initial_angles(builders.hardware_efficient(2, 2), "identity_blocks", 2)
    # mirror names on gates that do not undo each other: the word does not reduce
    fake = Circuit(2).ry(0, "a").rx(0, "a~")
    with pytest.raises(ValueError, match=r"2 gate\(s\) of mirrored parameters do not cancel, the first ry on qubits \(0,\) \(a\)"):
        initial_angles(fake, "identity_blocks", 2)
    misplaced = Circuit(2).ry(0, "a").cz(0, 1).ry(0, "a~")  # the mirror is not adjacent to its source once the cz stays
    with pytest.raises(ValueError, match="do not cancel"):
        identity_block_mirrors(misplaced)
    with pytest.raises(ValueError, match="ends with '~'"):
        builders.identity_blocks(Circuit(1).rx(0, "a~"))
    with pytest.raises(ValueError, match="repeats must be an integer >= 1"):
        builders.identity_blocks(Circuit(1).rx(0, "a"), 0)
    with pytest.raises(ValueError, match="reads the circuit"):
        draw_angles("identity_blocks", (2, 3))


def test_gaussian_width_is_zhang_et_al_rewritten_for_half_angles():
    """Zhang et al.'s Heisenberg example: 15 qubits, 10 blocks of R_Y R_X and a CZ ring, a 2-local cost, is their case
    (S, L) = (2, 18) with variance 1/(4 S (L + 2)) = 1/160 for gates exp(-i theta G); qtrain's gates are exp(-i theta G / 2),
    so its variance is 4/160 = 1/40."""
    n = 15
    circuit = Circuit(n)
    for block in range(10):
        for q in range(n):
            circuit.cz(q, (q + 1) % n)
        for q in range(n):
            circuit.rx(q, f"x{block}_{q}").ry(q, f"y{block}_{q}")
    heisenberg = " + ".join(f"{p}{q} {p}{q + 1}" for q in range(n - 1) for p in "XYZ")
    assert rotation_depth(circuit) == 20 and cost_locality(heisenberg, n) == 2
    assert gaussian_width(circuit, heisenberg) ** 2 == pytest.approx(4 / 160)
    # the draw has that width, and an explicit width replaces the formula
    theta = initial_angles(circuit, "gaussian", 4000, torch.Generator().manual_seed(0), cost=heisenberg)
    assert theta.std().item() == pytest.approx(math.sqrt(1 / 40), rel=0.02)
    assert abs(theta.mean().item()) < 0.01
    assert initial_angles(circuit, "gaussian", 4000, torch.Generator().manual_seed(0), width=0.3, cost=heisenberg).std().item() == pytest.approx(0.3, rel=0.02)


def test_gaussian_width_reads_depth_and_locality():
    hea = builders.hardware_efficient(4, 5)  # R_Y R_Z per layer: 10 rotations a qubit
    assert rotation_depth(hea) == 10
    assert gaussian_width(hea, "Z0") == pytest.approx(1 / math.sqrt(10))
    assert gaussian_width(hea, "Z0 Z1 Z2 + X3") == pytest.approx(1 / math.sqrt(30))
    assert gaussian_width(hea, torch.tensor([1, 0] + [0] * 14, dtype=torch.complex128)) == pytest.approx(1 / math.sqrt(40))  # infidelity: S = n
    assert gaussian_width(hea, ["Z0", "Z1 Z2"]) == pytest.approx(1 / math.sqrt(20))  # a list: its widest term
    shared = Circuit(2).ry(0, "a").ry(0, "a").u3(0, "b", "c", 0.1).crx(0, 1, "a")  # each gate of a shared parameter counts; u3 counts 2
    assert rotation_depth(shared) == 5
    with pytest.raises(ValueError, match="a constant"):
        gaussian_width(hea, "2.0")
    with pytest.raises(ValueError, match="pass the cost"):
        gaussian_width(hea, None)
    with pytest.raises(ValueError, match="no trainable rotation"):
        gaussian_width(Circuit(1).h(0), "Z0")


def test_gaussian_init_lifts_the_plateau_as_the_theorem_promises():
    """Zhang et al.'s Theorem 4.1 on their Figure 1 circuit (L layers of R_Y and CZ, then R_X and R_Y layers), observable
    Z0 Z1 (S = 2), |0...0>: E ||grad_theta f||^2 >= L / (S^S (L + 2)^(S + 1)) in their angles, a quarter of that in
    qtrain's (d/d(2 theta) = (1/2) d/d theta). The uniform init's first-parameter variance at n = 8 is far below the
    Gaussian's."""
    n, layers = 8, 10
    circuit = Circuit(n)
    for layer in range(layers):
        for q in range(n):
            circuit.ry(q, f"y{layer}_{q}")
        for q in range(0, n - 1):
            circuit.cz(q, q + 1)
    for q in range(n):
        circuit.rx(q, f"x_{q}")
    for q in range(n):
        circuit.ry(q, f"yy_{q}")
    stats = gradient_variance(circuit, "Z0 Z1", samples=400, parameter=None, init="gaussian", dtype=torch.complex128)
    norm2 = (stats.gradients**2).sum(dim=1).mean().item()
    bound = layers / (2**2 * (layers + 2) ** 3) / 4
    assert norm2 >= bound
    uniform = gradient_variance(circuit, "Z0 Z1", samples=400, dtype=torch.complex128)
    gaussian = gradient_variance(circuit, "Z0 Z1", samples=400, init="gaussian", dtype=torch.complex128)
    assert gaussian.var_ci_low.item() > 2 * uniform.var_ci_high.item()  # 0.20 against 0.049 measured


def test_every_init_reaches_layers_and_gradient_variance():
    block = builders.hardware_efficient(3, 2)
    circuit = builders.identity_blocks(block)
    for init in INITS:
        model = circuit if init == "identity_blocks" else block
        layer = QuantumLayer(model, ["Z0 Z1"], init=init, generator=torch.Generator().manual_seed(0), dtype=torch.complex128)
        if init == "identity_blocks":
            torch.testing.assert_close(layer().detach(), torch.ones(1, 1, dtype=torch.float64))  # <0|Z0 Z1|0> at the identity
        stats = gradient_variance(model, "Z0 Z1", samples=20, parameter=None, init=init)
        assert stats.var.shape == (model.n_params,)
    assert QuantumLayer(block, ["Z0 Z1"], init="gaussian").init_width == pytest.approx(1 / math.sqrt(2 * 4))
    with pytest.raises(ValueError, match="input 'ry0_0' is a parameter of a mirrored pair"):
        QuantumLayer(circuit, ["Z0"], inputs=["ry0_0"], init="identity_blocks")
    with pytest.raises(ValueError, match="a QuantumLayer's weights are drawn from its own init"):
        gradient_variance(QuantumLayer(block, ["Z0"]), samples=4, init="gaussian")
    with pytest.raises(ValueError, match="init must be one of"):
        gradient_variance(block, "Z0", samples=4, init="normal")
    # a width does not change the uniform draw (it is unused there), but a bad one is still refused
    assert torch.equal(gradient_variance(block, "Z0", samples=6, init_width=0.5).gradients, gradient_variance(block, "Z0", samples=6).gradients)
    with pytest.raises(ValueError, match="init_width must be a finite number > 0"):
        gradient_variance(block, "Z0", samples=4, init_width=-1.0)


def test_same_seed_same_starts():
    circuit = builders.hardware_efficient(3, 2)
    for init in ("gaussian", "small", "uniform"):
        a = initial_angles(circuit, init, 5, torch.Generator().manual_seed(3), cost="Z0")
        b = initial_angles(circuit, init, 5, torch.Generator().manual_seed(3), cost="Z0")
        assert torch.equal(a, b)
    # "uniform" is the trainer's historical draw (the same starts as before initial_angles existed)
    assert torch.equal(initial_angles(circuit, "uniform", 5, torch.Generator().manual_seed(3)),
                       draw_angles("uniform", (5, circuit.n_params), torch.Generator().manual_seed(3)))


def test_layerwise_schedule():
    schedule = Layerwise(layers=3, steps_per_stage=4, layers_per_stage=2)
    assert schedule.stages == 2 and schedule.growth_steps == 8
    assert schedule.layer_of(6).tolist() == [0, 0, 1, 1, 2, 2]
    assert schedule.frozen_at(0, 6).tolist() == [False, False, False, False, True, True]
    assert schedule.frozen_at(5, 6).tolist() == [True, True, True, True, False, False]
    assert schedule.frozen_at(8, 6) is None
    assert schedule.start_values(torch.ones(2, 6)).tolist() == [[1, 1, 1, 1, 0, 0]] * 2
    with pytest.raises(ValueError, match="layerwise.layers_per_stage must be an integer >= 1, got 0"):
        Layerwise(3, 4, 0)
    with pytest.raises(ValueError, match="exceeds layerwise.layers"):
        Layerwise(2, 4, 3)


def test_layerwise_training_freezes_and_adds_layers(tmp_path):
    """Stage by stage only the newest layer moves, the earlier stay where they were left, the later at 0; after the
    last stage everything moves. A run resumed mid-stage gives the numbers of an uninterrupted one."""
    circuit = builders.hardware_efficient(2, 3)  # 3 layers of 4 parameters
    COST = "X0 X1 + 0.5*Z0 + 0.3*Y1"  # (with Z0 Z1 alone an R_Z before only CZs and zero layers has no gradient, and rightly stays)
    schedule = Layerwise(layers=3, steps_per_stage=3)
    kwargs = dict(lrs=[0.05, 0.2], starts=4, seed=1, layerwise=schedule, global_min=-1.0)
    result = train_lr_grid(circuit, COST, "adam", steps=12, **kwargs)
    paths = result.trajectories  # (T + 1, G, K, d)
    layer = schedule.layer_of(12)
    assert torch.all(paths[0][..., layer > 0] == 0)  # the later layers start at 0
    for step in range(12):
        moved = (paths[step + 1] - paths[step]).abs().amax(dim=(0, 1)) > 0  # (d,): which parameters this step moved
        frozen = schedule.frozen_at(step, 12)
        if frozen is None:
            assert moved.all(), step
        else:
            assert not moved[frozen].any(), step
            assert moved[~frozen].all(), step
    first = train_lr_grid(circuit, COST, "adam", steps=4, checkpoint_dir=tmp_path, checkpoint_every=2, **kwargs)
    resumed = train_lr_grid(circuit, COST, "adam", steps=12, checkpoint_dir=tmp_path, checkpoint_every=2, **kwargs)
    assert first.cost_history.shape[0] == 5
    torch.testing.assert_close(resumed.cost_history, result.cost_history)
    with pytest.raises(ValueError, match="layerwise with init='identity_blocks'"):
        train_lr_grid(builders.identity_blocks(circuit), COST, "adam", steps=2, lrs=[0.1], starts=2, init="identity_blocks", layerwise=Layerwise(6, 1))
    with pytest.raises(ValueError, match="holds another run.*layerwise"):
        train_lr_grid(circuit, COST, "adam", steps=12, checkpoint_dir=tmp_path, **{**kwargs, "layerwise": Layerwise(3, 4)})
