"""Every parameter of the default circuit matters, checked by the dense
reference (the rank of its phase-projected state Jacobian, by central
differences), and `redundant_parameters` finds dead and merged parameters."""

import warnings

import numpy as np
import pytest
import torch

from qtrain import Circuit, QuantumLayer
from qtrain.builders import random_target_state, shared_ansatz
from qtrain.diagnostics import redundant_parameters
from qtrain.landscape import sample_landscape
from tests import reference


def reference_gates(circuit: Circuit, theta: np.ndarray) -> list[dict]:
    """The circuit's gates in the reference's form, at angles theta (P,)."""
    gates = []
    for op in circuit.ops:
        gate = {"name": op.name, "qubits": op.qubits}
        if op.param is not None:
            gate["angle"] = float(theta[op.param])
        elif op.angle is not None:
            gate["angle"] = op.angle
        gates.append(gate)
    return gates


def reference_qfi_rank(circuit: Circuit, theta: np.ndarray, h: float = 1e-5, rtol: float = 1e-6) -> int:
    """Rank of d psi - |psi><psi|d psi, from the reference simulator alone."""
    n = circuit.n_qubits
    psi = reference.run(reference_gates(circuit, theta), n)
    columns = []
    for p in range(theta.size):
        step = np.zeros_like(theta)
        step[p] = h
        d = (reference.run(reference_gates(circuit, theta + step), n) - reference.run(reference_gates(circuit, theta - step), n)) / (2 * h)
        d = d - psi * (psi.conj() @ d)
        columns.append(np.concatenate([d.real, d.imag]))
    s = np.linalg.svd(np.stack(columns, axis=1), compute_uv=False)
    return int((s > rtol * s[0]).sum())


@pytest.mark.parametrize("seed", range(20))
def test_every_parameter_of_the_default_circuit_matters(seed):
    rng = np.random.default_rng(seed)
    for k in (1, 2, 3, 4):
        circuit = shared_ansatz(3, 3, k, seed=seed)
        theta = rng.uniform(-np.pi, np.pi, size=3)
        assert reference_qfi_rank(circuit, theta) == 3, (seed, k)
        assert redundant_parameters(circuit).n_effective == 3


def old_default(seed: int, sharing: int) -> Circuit:
    """The default circuit before issue 11: H on every qubit, then the block."""
    gen = torch.Generator().manual_seed(seed)
    axes = "".join("XYZ"[int(i)] for i in torch.randint(0, 3, (3,), generator=gen))
    c = Circuit(3)
    for q in range(3):
        c.h(q)
    for _ in range(sharing):
        for i, axis in enumerate(axes):
            c.add(f"r{axis.lower()}", i, f"theta_{i}")
        for q in range(3):
            c.cnot(q, (q + 1) % 3)
    return c


@pytest.mark.parametrize("seed,sharing,dead", [(0, 1, ("theta_1",)), (2, 1, ("theta_0", "theta_1")), (2, 2, ("theta_0",)), (3, 1, ())])
def test_finds_the_old_default_circuits_dead_parameters(seed, sharing, dead):
    c = old_default(seed, sharing)
    r = redundant_parameters(c)
    assert r.redundant == dead and r.n_effective == 3 - len(dead)
    assert reference_qfi_rank(c, np.array([0.3, -1.2, 2.1])) == r.n_effective  # the reference agrees
    assert redundant_parameters(c, random_target_state(3, seed)).redundant == dead  # and so does the cost's view


def test_global_phase_is_not_a_direction():
    """R_Z on |0> changes only the global phase: the plain Jacobian has rank 1, the QFI rank 0."""
    c = Circuit(1).rz(0, "a")
    r = redundant_parameters(c)
    assert r.n_effective == 0 and r.redundant == ("a",)
    assert r.singular_values.max() < 1e-12


def test_merged_parameters_are_dropped_from_the_last_backwards():
    c = Circuit(2).ry(0, "a").ry(0, "b").cnot(0, 1).rx(1, "c")  # a and b act only through a + b
    r = redundant_parameters(c)
    assert r.n_effective == 2 and r.redundant == ("b",)
    assert "redundant: b" in str(r)


def test_a_cost_can_ignore_a_live_parameter():
    c = Circuit(2).ry(0, "a").ry(1, "b")
    assert redundant_parameters(c).redundant == ()
    r = redundant_parameters(c, "Z0")
    assert r.method == "cost" and r.n_effective == 1 and r.redundant == ("b",)


def test_quantum_layer_weights_only():
    c = Circuit(2).ry(0, "x").rz(0, "w0").ry(1, "w1").cnot(0, 1)
    layer = QuantumLayer(c, ["Z1"], inputs=["x"])
    r = redundant_parameters(layer)
    assert r.parameters == ("w0", "w1") and r.n_effective == 2


def test_bad_input():
    c = Circuit(1).rx(0, "a")
    with pytest.raises(ValueError, match="points must be a positive int, got 0"):
        redundant_parameters(c, points=0)
    with pytest.raises(ValueError, match="rtol must be positive, got -1"):
        redundant_parameters(c, rtol=-1)
    with pytest.raises(TypeError, match="model must be a Circuit or a QuantumLayer, got str"):
        redundant_parameters("circuit")
    batch = Circuit(1).pauli_rot(0, "a", torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="without per-sample gates"):
        redundant_parameters(batch)


def test_landscape_warns_on_a_redundant_parameter():
    c = Circuit(2).ry(0, "a").ry(1, "b")
    with pytest.warns(RuntimeWarning, match="redundant: b"):
        sample_landscape(c, "Z0", resolution=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sample_landscape(shared_ansatz(3, 2, 2, seed=0), random_target_state(3, 0), resolution=8)
