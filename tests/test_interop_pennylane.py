"""PennyLane in and out: values and gradients against PennyLane's own on
random circuits of every gate, both directions, templates, refusals."""

import numpy as np
import pytest
import torch

from qtrain import Circuit
from tests.circuits import FIXED_1Q, FIXED_2Q, MULTI_ANGLE, ROTATIONS, ROTATIONS_2Q, random_circuit, random_theta

qml = pytest.importorskip("pennylane")
from qtrain.interop import from_pennylane, to_pennylane  # noqa: E402

PENNYLANE_GATES = tuple(k for k in ROTATIONS + MULTI_ANGLE + ROTATIONS_2Q + FIXED_1Q + FIXED_2Q + ("unitary",) if k != "pauli_rot")
HAMILTONIAN = "0.7*Z0 Z1 - 0.4*X0 Y2 + 0.3*Y1"


def _pennylane_hamiltonian():
    return 0.7 * qml.PauliZ(0) @ qml.PauliZ(1) - 0.4 * qml.PauliX(0) @ qml.PauliY(2) + 0.3 * qml.PauliY(1)


def _value_and_grad_pennylane(qfunc, *args):
    """PennyLane's own value and gradients (default.qubit, torch interface, float64)."""
    leaves = [torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=True) for a in args]

    @qml.qnode(qml.device("default.qubit", wires=3), interface="torch")
    def energy(*xs):
        qfunc(*xs)
        return qml.expval(_pennylane_hamiltonian())

    value = energy(*leaves)
    value.backward()
    return value.detach(), [x.grad for x in leaves]


def _value_and_grad_qtrain(circuit, theta):
    theta = torch.tensor(np.asarray(theta), dtype=torch.float32, requires_grad=True)
    value = circuit.expval(theta, HAMILTONIAN)  # complex64
    value.sum().backward()
    return value.detach(), theta.grad


@pytest.fixture(params=[0, 1, 2])
def case(request):
    rng = np.random.default_rng(request.param)
    rc = random_circuit(rng, 3, n_gates=40, batch=1, n_names=3, per_sample=False, kinds=PENNYLANE_GATES)
    return rc.circuit, random_theta(rng, rc.circuit, None)


def test_an_exported_circuit_gives_pennylanes_values_and_gradients(case):
    circuit, theta = case
    value, (grad,) = _value_and_grad_pennylane(to_pennylane(circuit), theta)
    ours, our_grad = _value_and_grad_qtrain(circuit, theta)
    assert abs(ours.item() - value.item()) < 1e-5 and torch.allclose(our_grad.double(), grad, atol=1e-5)
    assert grad.abs().max() > 1e-2


def test_an_imported_quantum_function_keeps_its_gates_and_sharing(case):
    circuit, theta = case
    back = from_pennylane(to_pennylane(circuit), theta)
    assert [line.split()[:2] for line in back.gate_list()] == [line.split()[:2] for line in circuit.gate_list()]
    assert back.parameters == tuple(f"theta[{i}]" for i in range(circuit.n_params))  # each element once: sharing kept
    assert back.slot_params == circuit.slot_params
    assert torch.allclose(back.expval(torch.tensor(theta), HAMILTONIAN), circuit.expval(torch.tensor(theta), HAMILTONIAN), atol=1e-12)


def test_a_template_is_decomposed_and_matches_pennylane():
    weights = np.random.default_rng(4).uniform(-np.pi, np.pi, size=(2, 3, 3))

    def model(weights, x):
        for wire in range(3):
            qml.RX(x, wires=wire)
        qml.StronglyEntanglingLayers(weights, wires=range(3))

    circuit = from_pennylane(model, weights, 0.3)
    assert {line.split()[0] for line in circuit.gate_list()} == {"rx", "rot", "cnot"}
    assert circuit.parameters[0] == "x" and circuit.slot_params.count(0) == 3  # x on three gates: one shared parameter
    value, (grad_w, grad_x) = _value_and_grad_pennylane(model, weights, 0.3)
    theta = torch.tensor([0.3] + weights.reshape(-1).tolist(), dtype=torch.float64, requires_grad=True)
    assert circuit.parameters[1:] == tuple(f"weights[{i},{j},{k}]" for i in range(2) for j in range(3) for k in range(3))
    ours = circuit.expval(theta, HAMILTONIAN)
    ours.sum().backward()
    assert abs(ours.item() - value.item()) < 1e-10
    assert torch.allclose(theta.grad, torch.cat([grad_x.reshape(1), grad_w.reshape(-1)]), atol=1e-10)


def test_a_tape_shares_a_tensor_used_twice():
    a, b = torch.tensor(0.4, requires_grad=True), torch.tensor(-1.1, requires_grad=True)
    tape = qml.tape.QuantumScript([qml.RY(a, wires="w"), qml.CRX(b, wires=["w", "v"]), qml.RZ(a, wires="v"), qml.RX(0.25, wires="w")])
    circuit = from_pennylane(tape, wires=["w", "v"])
    assert circuit.gate_list() == ["ry 0 p0", "crx 0,1 p1", "rz 1 p0", "rx 0 0.25"]


def test_what_qtrain_cannot_read_or_write_is_refused():
    class Mystery(qml.operation.Operation):
        num_wires = 1

    with pytest.raises(ValueError, match="Mystery on wires"):
        from_pennylane(lambda: Mystery(wires=0))
    with pytest.raises(ValueError, match=r"computed from arguments \(w\)"):
        from_pennylane(lambda w: qml.RX(2 * w, wires=0), 0.3)
    with pytest.raises(ValueError, match=r"gate 0 \('pauli_rot'\)"):
        to_pennylane(Circuit(1).pauli_rot(0, "a", "XY"))
    with pytest.raises(ValueError, match="wires has 1 labels"):
        to_pennylane(Circuit(2).cz(0, 1), wires=["a"])
