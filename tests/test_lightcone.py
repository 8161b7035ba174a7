"""Light-cone pruning: dropping the gates outside an observable's backward
light cone, and the qubits only they touch, changes no value and no gradient."""

import numpy as np
import pytest
import torch

from qtrain import Circuit
from qtrain.builders import mcclean_angles, mcclean_circuit
from qtrain.engine.observables import PauliSum
from qtrain._lightcone import light_cone, reduced_ops
from tests import reference
from tests.circuits import random_circuit, random_theta


def test_mcclean_cone_of_z0_z1_grows_one_qubit_per_layer():
    n, layers = 8, 3
    circuit = mcclean_circuit(n, layers, 2, seed=0)
    ops, position = reduced_ops(circuit.ops, [PauliSum.parse("Z0 Z1")])
    # rotation layer L touches {0, 1}; each CZ chain before it widens the cone by one qubit
    assert sorted(position) == list(range(layers + 1))
    assert all(op.name != "cz" or max(op.qubits) <= layers for op in ops)
    assert len(ops) < len(circuit.ops)


def test_diagonal_gates_commute_with_a_diagonal_observable():
    c = Circuit(3).h(0).rx(1, "a").cz(0, 1).rz(0, "b").cz(1, 2).t(2)
    kept, support = light_cone(c.ops, {0}, diagonal=True)
    # R_Z(0) and CZ(0, 1) commute with Z0, so the cone never reaches qubit 1: only H(0) stays
    assert kept == [0] and support == {0}
    kept, support = light_cone(c.ops, {0}, diagonal=False)  # X0 does not commute with R_Z(0) or CZ(0, 1)
    assert kept == [0, 1, 2, 3] and support == {0, 1}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("observable", ["Z0", "0.5*X1 Y2 - Z3", "Y4"])
def test_pruned_values_and_gradients_equal_full_ones(seed, observable):
    rng = np.random.default_rng(seed)
    rc = random_circuit(rng, 5, n_gates=25, batch=3, n_names=6)
    theta = torch.tensor(random_theta(rng, rc.circuit, 3))
    results = {}
    for cone in (True, False):
        t = theta.clone().requires_grad_(True)
        values = rc.circuit.expval(t, observable, light_cone=cone)
        values.sum().backward()
        results[cone] = (values.detach(), t.grad, *rc.circuit.value_and_grad(theta, observable, light_cone=cone))
    for pruned, full in zip(results[True], results[False]):
        assert torch.allclose(pruned, full, atol=1e-10, rtol=0)
    terms = [(t.coeff, dict((q, p) for q, p in t.paulis)) for t in PauliSum.parse(observable).terms]
    expected = [reference.expval(s, terms) for s in rc.reference_states(theta.numpy())]
    assert np.abs(results[True][0].numpy() - expected).max() < 1e-12


def test_parameters_outside_the_cone_get_zero_gradient():
    c = Circuit(3).rx(2, "far").cz(1, 2).rx(0, "near").ry(1, "mid")
    theta = torch.tensor([[0.3, 0.4, 0.5]], dtype=torch.float64)
    _, grads = c.value_and_grad(theta, "Z0")
    assert grads[0, 0] == 0 and grads[0, 2] == 0 and grads[0, 1] != 0


def test_cone_keeps_the_batch_of_pruned_per_sample_gates():
    c = Circuit(2).pauli_rot(1, "a", axes=[0, 1, 2]).rx(0, "b")  # per-sample gate outside the cone of Z0
    values = c.expval(torch.tensor([0.1, 0.2]), "Z0")
    assert values.shape == (3,)
    assert torch.allclose(values, torch.full((3,), float(np.cos(0.2))), atol=1e-6)


def test_mcclean_cone_in_complex64_matches_the_full_register():
    circuit, theta = mcclean_circuit(9, 4, 5, seed=2), mcclean_angles(9, 4, 5, seed=2)
    _, pruned = circuit.value_and_grad(theta, "Z0 Z1", dtype=torch.complex64)
    _, full = circuit.value_and_grad(theta, "Z0 Z1", dtype=torch.complex64, light_cone=False)
    assert torch.allclose(pruned, full, atol=1e-5, rtol=0)
    assert (pruned[:, -9 + 5 :] == 0).all()  # layer 4, qubits 5..8: beyond the cone


def test_an_initial_state_runs_every_gate(rng):
    c = Circuit(2).rx(1, "a").cz(0, 1).rx(0, "b")
    psi0 = torch.tensor(reference.random_unitary(rng, 4)[0])
    theta = torch.tensor([0.7, -0.2], dtype=torch.float64)
    with_state = c.expval(theta, "Z0", initial_state=psi0)
    gates = [{"name": "rx", "qubits": (1,), "angle": 0.7}, {"name": "cz", "qubits": (0, 1)}, {"name": "rx", "qubits": (0,), "angle": -0.2}]
    u = np.eye(4, dtype=complex)
    for g in gates:
        u = reference.embed(reference.gate_matrix(g), g["qubits"], 2) @ u
    psi = u @ psi0.numpy()
    assert abs(with_state.item() - reference.expval(psi, [(1.0, {0: "Z"})])) < 1e-12
