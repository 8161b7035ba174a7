"""PennyLane in and out: values and gradients against PennyLane's own
(default.qubit, torch interface) on random circuits of every gate with shared
parameters, both directions; templates, tapes, interfaces, refusals."""

import importlib.util
import re

import numpy as np
import pytest
import torch

from qtrain import Circuit
from qtrain.errors import UsageError
from qtrain.interop.pennylane import NAMES  # qtrain's own module (it imports PennyLane only when called): must import
from tests import reference
from tests.circuits import FIXED_1Q, FIXED_2Q, MULTI_ANGLE, MULTI_ANGLE_2Q, ROTATIONS, ROTATIONS_2Q
from tests.test_interop_tracing import REFUSED, STRUCTURAL

if importlib.util.find_spec("pennylane") is None:  # only the optional peer's absence skips; a broken install fails
    pytest.skip("PennyLane is not installed (the interop extra)", allow_module_level=True)
import pennylane as qml  # noqa: E402
from pennylane import numpy as pnp  # noqa: E402

from qtrain.interop import from_pennylane, to_pennylane  # noqa: E402

pytestmark = [  # raised inside PennyLane and autograd, not by the converters
    pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Casting complex values to real discards the imaginary part"),
]

#: every qtrain gate PennyLane has (pauli_rot's per-sample axes it has not)
PENNYLANE_GATES = tuple(k for k in ROTATIONS + MULTI_ANGLE + ROTATIONS_2Q + MULTI_ANGLE_2Q + FIXED_1Q + FIXED_2Q + ("unitary",) if k != "pauli_rot")
#: gates PennyLane writes as two operations, read back as two gates: cu(t, p, l, g) is cu3(t, p, l) and p(g) on the control
SPLIT = {"cu": ("cu3", "p")}


def _names_read_back(circuit: Circuit) -> list[str]:
    """The gate names a circuit comes back with through PennyLane."""
    return [name for op in circuit.ops for name in SPLIT.get(op.name, (op.name,))]
HAMILTONIAN = "0.7*Z0 Z1 - 0.4*X0 Y2 + 0.3*Y1 + 0.2*X2"


def _pennylane_hamiltonian(wires=(0, 1, 2)):
    a, b, c = wires
    return 0.7 * qml.PauliZ(a) @ qml.PauliZ(b) - 0.4 * qml.PauliX(a) @ qml.PauliY(c) + 0.3 * qml.PauliY(b) + 0.2 * qml.PauliX(c)


def _value_and_grad_pennylane(qfunc, *args, wires=(0, 1, 2), dtype=torch.float64):
    """PennyLane's own value and gradients (default.qubit, torch interface, float64 unless told)."""
    leaves = [torch.tensor(np.asarray(a), dtype=dtype, requires_grad=True) for a in args]

    @qml.qnode(qml.device("default.qubit", wires=list(wires)), interface="torch")
    def energy(*xs):
        qfunc(*xs)
        return qml.expval(_pennylane_hamiltonian(wires))

    value = energy(*leaves)
    value.backward()
    return value.detach(), [x.grad for x in leaves]


def _value_and_grad_qtrain(circuit, theta, dtype=torch.float64):
    """qtrain's (complex128 states for float64 theta, complex64 for float32)."""
    theta = torch.tensor(np.asarray(theta), dtype=dtype, requires_grad=True)
    value = circuit.expval(theta, HAMILTONIAN)
    value.sum().backward()
    return value.detach().reshape(()), theta.grad


def _every_gate_circuit(seed: int) -> Circuit:
    """Each gate PennyLane has at least once, more drawn at random, on 3
    qubits; angles from a pool of 4 shared names, some fixed."""
    rng = np.random.default_rng(seed)
    kinds = list(PENNYLANE_GATES) + [str(k) for k in rng.choice(PENNYLANE_GATES, size=20)]
    rng.shuffle(kinds)
    circuit = Circuit(3)
    angle = lambda: f"w{rng.integers(4)}" if rng.random() < 0.7 else float(rng.uniform(-np.pi, np.pi))
    for name in kinds:
        two = name in FIXED_2Q + ROTATIONS_2Q + MULTI_ANGLE_2Q or (name == "unitary" and rng.random() < 0.5)
        qubits = tuple(int(q) for q in rng.choice(3, size=2 if two else 1, replace=False))
        if name == "unitary":
            circuit.unitary(qubits, torch.tensor(reference.random_unitary(rng, 2 ** len(qubits))))
        elif name in MULTI_ANGLE + MULTI_ANGLE_2Q:
            circuit.add(name, qubits, tuple(angle() for _ in range(4 if name == "cu" else 3)))
        elif name in ROTATIONS + ROTATIONS_2Q:
            circuit.add(name, qubits, angle())
        else:
            circuit.add(name, qubits)
    return circuit


@pytest.fixture(params=[0, 1, 2])
def case(request):
    circuit = _every_gate_circuit(request.param)
    assert {op.name for op in circuit.ops} == set(PENNYLANE_GATES) and circuit.n_params == 4
    theta = np.random.default_rng(10 + request.param).uniform(-np.pi, np.pi, size=circuit.n_params)
    return circuit, theta


def test_an_exported_circuit_gives_pennylanes_values_and_gradients(case):
    circuit, theta = case
    value, (grad,) = _value_and_grad_pennylane(to_pennylane(circuit), theta)
    ours, our_grad = _value_and_grad_qtrain(circuit, theta)
    assert abs(ours.item() - value.item()) < 1e-10 and torch.allclose(our_grad, grad, atol=1e-10)
    assert grad.abs().max() > 1e-2
    # single precision: qtrain's complex64 states, and PennyLane given float32 angles (fixed Rot/U3 angles cast to them)
    for ours, our_grad in (_value_and_grad_qtrain(circuit, theta, torch.float32), _value_and_grad_pennylane(to_pennylane(circuit), theta, dtype=torch.float32)):
        our_grad = our_grad[0] if isinstance(our_grad, list) else our_grad
        assert our_grad.dtype == torch.float32
        assert abs(ours.item() - value.item()) < 1e-5 and torch.allclose(our_grad.double(), grad, atol=1e-5)


def test_an_imported_quantum_function_keeps_its_gates_and_sharing(case):
    circuit, theta = case
    back = from_pennylane(to_pennylane(circuit), theta)
    expected = []
    for name, qubits in (line.split()[:2] for line in circuit.gate_list()):  # cu comes back as cu3 and p on its control
        expected += [["cu3", qubits], ["p", qubits.split(",")[0]]] if name == "cu" else [[name, qubits]]
    assert [line.split()[:2] for line in back.gate_list()] == expected
    assert back.parameters == tuple(f"theta[{i}]" for i in range(circuit.n_params))  # each element once: sharing kept
    assert back.slot_params == circuit.slot_params
    assert torch.allclose(back.expval(torch.tensor(theta), HAMILTONIAN), circuit.expval(torch.tensor(theta), HAMILTONIAN), atol=1e-12)


def _random_pennylane_ops(seed: int):
    """A PennyLane quantum function using every operation of `NAMES` (U1,
    adjoint S and T included) with angles that are elements of w (4,) and
    v (2, 2), several used more than once, and fixed floats."""
    rng = np.random.default_rng(seed)
    kinds = list(NAMES) + ["PauliRot"] + [str(k) for k in rng.choice(list(NAMES), size=15)]
    rng.shuffle(kinds)
    plan = []
    for name in kinds:
        width = 2 if name in ("IsingXX", "IsingYY", "IsingZZ", "CRX", "CRY", "CRZ", "CZ", "CNOT", "SWAP", "ControlledPhaseShift", "C(U3)", "PauliRot") else 1
        if name == "QubitUnitary" and rng.random() < 0.5:
            width = 2
        on = [int(q) for q in rng.choice(3, size=width, replace=False)]
        n_angles = 3 if name in ("U3", "Rot", "C(U3)") else 0 if name in ("Hadamard", "PauliX", "PauliY", "PauliZ", "S", "T", "SX", "CZ", "CNOT", "SWAP", "Adjoint(S)", "Adjoint(T)", "QubitUnitary") else 1
        angles = [("w", int(rng.integers(4))) if rng.random() < 0.4 else ("v", tuple(int(i) for i in rng.integers(2, size=2))) if rng.random() < 0.6 else float(rng.uniform(-3, 3)) for _ in range(n_angles)]
        matrix = reference.random_unitary(rng, 2**width) if name == "QubitUnitary" else None
        plan.append((name, on, angles, matrix))

    def qfunc(w, v):
        for name, on, angles, matrix in plan:
            values = [a if not isinstance(a, tuple) else w[a[1]] if a[0] == "w" else v[a[1]] for a in angles]
            if name in ("U3", "Rot", "C(U3)"):  # their matrices fail on a Python float beside a tensor (see to_pennylane)
                values = [torch.tensor(a, dtype=torch.float64) if isinstance(a, float) else a for a in values]
            if name == "QubitUnitary":
                qml.QubitUnitary(matrix, wires=on)
            elif name.startswith("Adjoint("):
                qml.adjoint(getattr(qml, name[8:-1])(wires=on))
            elif name == "C(U3)":
                qml.ctrl(qml.U3(*values, wires=on[1]), control=on[0])
            elif name == "PauliRot":  # exp(-i a Z X / 2): qtrain's rzx
                qml.PauliRot(*values, "ZX", wires=on)
            else:
                getattr(qml, name)(*values, wires=on)

    return qfunc


@pytest.mark.parametrize("seed", [0, 1])
def test_an_imported_pennylane_circuit_gives_pennylanes_values_and_gradients(seed):
    qfunc = _random_pennylane_ops(seed)
    rng = np.random.default_rng(20 + seed)
    w, v = rng.uniform(-np.pi, np.pi, size=4), rng.uniform(-np.pi, np.pi, size=(2, 2))
    circuit = from_pennylane(qfunc, w, v)
    assert {op.name for op in circuit.ops} == set(PENNYLANE_GATES) - set(SPLIT)  # every gate PennyLane has one operation for
    assert set(circuit.parameters) <= {f"w[{i}]" for i in range(4)} | {f"v[{i},{j}]" for i in range(2) for j in range(2)}
    assert len(circuit.arg_params) > circuit.n_params  # some element on several gates: one shared parameter
    value, (grad_w, grad_v) = _value_and_grad_pennylane(qfunc, w, v)
    lookup = {f"w[{i}]": w[i] for i in range(4)} | {f"v[{i},{j}]": v[i, j] for i in range(2) for j in range(2)}
    ours, our_grad = _value_and_grad_qtrain(circuit, [lookup[n] for n in circuit.parameters])
    assert abs(ours.item() - value.item()) < 1e-5
    theirs = {f"w[{i}]": grad_w[i] for i in range(4)} | {f"v[{i},{j}]": grad_v[i, j] for i in range(2) for j in range(2)}
    assert torch.allclose(our_grad, torch.stack([theirs[n] for n in circuit.parameters]), atol=1e-5)
    unused = set(theirs) - set(circuit.parameters)
    assert all(abs(theirs[n]) < 1e-12 for n in unused)


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


def test_a_tape_of_a_template_traces_its_weights():
    weights = torch.tensor(np.random.default_rng(5).uniform(-np.pi, np.pi, size=(1, 3, 3)), requires_grad=True)
    tape = qml.tape.QuantumScript([qml.StronglyEntanglingLayers(weights, wires=range(3))], [qml.expval(qml.PauliZ(0))])
    circuit = from_pennylane(tape)
    assert circuit.parameters == tuple(f"p0[0,{j},{k}]" for j in range(3) for k in range(3))
    assert from_pennylane(tape, names=["weights"]).parameters[0] == "weights[0,0,0]"
    theta = weights.detach().reshape(-1)
    expected = qml.execute([tape], qml.device("default.qubit", wires=3))[0]
    assert abs(circuit.expval(theta, "Z0").item() - torch.as_tensor(expected).detach().item()) < 1e-10


def test_a_tape_shares_a_tensor_used_twice_and_keeps_the_rest_fixed():
    a, b = torch.tensor(0.4, requires_grad=True), torch.tensor(-1.1, requires_grad=True)
    frozen = torch.tensor(0.7)  # requires_grad=False: not trainable
    ops = [qml.RY(a, wires="w"), qml.CRX(b, wires=["w", "v"]), qml.RZ(a, wires="v"), qml.RX(0.25, wires="w"), qml.RY(frozen, wires="v")]
    circuit = from_pennylane(qml.tape.QuantumScript(ops), wires=["w", "v"])
    assert circuit.gate_list() == ["ry 0 p0", "crx 0,1 p1", "rz 1 p0", "rx 0 0.25", f"ry 1 {float(frozen)!r}"]
    assert from_pennylane(qml.tape.QuantumScript(ops), wires=["v", "w"], names=["a", "b"]).gate_list()[:3] == ["ry 1 a", "crx 1,0 b", "rz 0 a"]
    # tape.trainable_params narrows what is trainable; PennyLane numpy tensors are trainable unless marked
    tape = qml.tape.QuantumScript(ops)
    tape.trainable_params = [1]
    assert from_pennylane(tape).gate_list()[:3] == [f"ry 0 {a.item()!r}", "crx 0,1 p0", f"rz 1 {a.item()!r}"]
    c, d = pnp.array(0.3, requires_grad=True), pnp.array(0.5, requires_grad=False)
    assert from_pennylane(qml.tape.QuantumScript([qml.RX(c, 0), qml.RY(d, 0), qml.RZ(c, 0)])).gate_list() == ["rx 0 p0", "ry 0 0.5", "rz 0 p0"]


def test_a_torch_tape_is_traced_through_indexing_to_shared_parameters():
    """Indexing a torch tensor makes a new tensor per operation: autograd's
    graph leads each back to its element of theta, so the tape's sharing is
    the circuit's; values and gradients are PennyLane's for the tape."""
    theta = torch.tensor(np.random.default_rng(6).uniform(-np.pi, np.pi, size=3), requires_grad=True)
    ops = [
        qml.RY(theta[0], 0), qml.IsingXX(theta[1], [0, 1]), qml.CRZ(theta[0], [1, 2]), qml.Rot(theta[2], 0.4, theta[1], 2),
        qml.RX(theta.reshape(3, 1)[2, 0], 1), qml.CNOT([2, 0]), qml.RZ(0.3, 0),
    ]
    tape = qml.tape.QuantumScript(ops, [qml.expval(_pennylane_hamiltonian())])
    circuit = from_pennylane(tape, names=["theta"])
    assert circuit.parameters == ("theta[0]", "theta[1]", "theta[2]")
    assert [p for op in circuit.ops for p in op.params if p is not None] == [0, 1, 0, 2, 1, 2]
    (value,) = qml.execute([tape], qml.device("default.qubit", wires=3), diff_method="backprop")
    value.backward()
    ours, our_grad = _value_and_grad_qtrain(circuit, theta.detach())
    assert abs(ours.item() - value.item()) < 1e-10 and torch.allclose(our_grad, theta.grad, atol=1e-10)
    # an index of a tensor left out of tape.trainable_params stays fixed, and a computed angle is refused
    narrowed = qml.tape.QuantumScript(ops[:3])
    narrowed.trainable_params = [1]
    assert from_pennylane(narrowed).gate_list() == [f"ry 0 {theta[0].item()!r}", "rxx 0,1 p0[1]", f"crz 1,2 {theta[0].item()!r}"]
    with pytest.raises(ValueError, match=r"gate 1 RX: its angle is p0\[1\] \* 2; qtrain maps an angle to a parameter only as"):
        from_pennylane(qml.tape.QuantumScript([qml.RX(theta[0], 0), qml.RX(2 * theta[1], 0)]))
    layer = torch.nn.Linear(2, 1, dtype=torch.float64)  # an angle a network computes: refused, or its own parameter once detached
    angle = layer(torch.ones(2, dtype=torch.float64))[0]
    with pytest.raises(ValueError, match=r"gate 0 RX: its angle is addmm\(p0, const, p1\); .*\(addmm is not a structural step"):
        from_pennylane(qml.tape.QuantumScript([qml.RX(angle, 0)]))
    assert from_pennylane(qml.tape.QuantumScript([qml.RX(angle.detach().requires_grad_(), 0)])).gate_list() == ["rx 0 p0"]


def test_wires_names_keywords_and_qnodes():
    dev = qml.device("default.qubit", wires=["a", "b"])

    @qml.qnode(dev)
    def node(x, y, frozen, scale=None):
        qml.RX(x, wires="b")
        qml.RY(y[1], wires="a")
        qml.RZ(frozen, wires="a")
        qml.CRY(scale, wires=["a", "b"])
        qml.RX(y[1], wires="b")
        return qml.expval(qml.PauliZ("a"))

    circuit = from_pennylane(node, 0.1, [0.2, 0.3], torch.tensor(0.4), scale=0.5)  # a QNode: its function; torch without grad: fixed
    assert circuit.gate_list() == ["rx 0 x", "ry 1 y[1]", f"rz 1 {float(torch.tensor(0.4))!r}", "cry 1,0 scale", "rx 0 y[1]"]  # wires in tape order
    assert from_pennylane(node, 0.1, [0.2, 0.3], 0.4, names=["u", "v", "f"], scale=0.5).parameters == ("u", "v[1]", "f", "scale")
    assert from_pennylane(node, 0.1, [0.2, 0.3], 0.4, wires=["a", "b"], scale=0.5).gate_list()[0] == "rx 1 x"
    # integer wires keep their numbers: wire k is qubit k
    assert from_pennylane(lambda: qml.CNOT(wires=[2, 0])).gate_list() == ["cnot 2,0"]
    # wires= maps the other way too, and the measurement stays the user's
    circuit = Circuit(2).ry(0, "t").cnot(0, 1).rx(1, 0.3)

    @qml.qnode(qml.device("default.qubit", wires=["q", "r"]))
    def energy(theta):
        to_pennylane(circuit, wires=["r", "q"])(theta)
        return qml.expval(qml.PauliZ("r") @ qml.PauliZ("q"))

    assert abs(float(energy(pnp.array([0.8]))) - circuit.expval(torch.tensor([0.8], dtype=torch.float64), "Z0 Z1").item()) < 1e-10


def test_exported_gates_run_in_other_interfaces_and_broadcast():
    circuit = _every_gate_circuit(3)
    theta = np.random.default_rng(7).uniform(-np.pi, np.pi, size=(3, circuit.n_params))
    expected = circuit.expval(torch.tensor(theta), HAMILTONIAN).detach().numpy()

    @qml.qnode(qml.device("default.qubit", wires=3), interface="autograd")
    def energy(theta):
        to_pennylane(circuit)(theta)
        return qml.expval(_pennylane_hamiltonian())

    assert np.allclose(energy(pnp.array(theta)), expected, atol=1e-10)  # broadcast: theta (B, P)
    assert abs(float(energy(list(theta[1]))) - expected[1]) < 1e-10  # a plain list
    grad = qml.grad(energy)(pnp.array(theta[0], requires_grad=True))  # autograd numpy
    _, our_grad = _value_and_grad_qtrain(circuit, theta[0])
    assert np.allclose(grad, our_grad.numpy(), atol=1e-8)
    # a per-sample unitary is PennyLane's broadcast QubitUnitary
    rng = np.random.default_rng(8)
    batched = Circuit(2).ry(0, "a").unitary((1, 0), torch.tensor(np.stack([reference.random_unitary(rng, 4) for _ in range(3)]))).rx(1, "a")
    values = qml.QNode(lambda t: (to_pennylane(batched)(t), qml.expval(qml.PauliZ(0) @ qml.PauliX(1)))[1], qml.device("default.qubit", wires=2))(np.array([0.6]))
    assert np.allclose(values, batched.expval(torch.tensor([0.6], dtype=torch.float64), "Z0 X1").numpy(), atol=1e-10)


def test_a_wide_unitary_and_other_gates_are_decomposed():
    rng = np.random.default_rng(9)
    u3q = reference.random_unitary(rng, 8)

    def qfunc(t):
        qml.QubitUnitary(u3q, wires=[0, 1, 2])  # 3 wires: qtrain's unitary takes 1 or 2
        qml.MultiRZ(t, wires=[0, 2])  # CNOT, RZ(t), CNOT
        qml.Toffoli(wires=[2, 1, 0])
        qml.Barrier(wires=[0, 1])
        qml.Identity(wires=1)

    circuit = from_pennylane(qfunc, 0.9)
    assert circuit.parameters == ("t",) and "toffoli" not in str(circuit.gate_list())
    value, (grad,) = _value_and_grad_pennylane(qfunc, 0.9)
    ours, our_grad = _value_and_grad_qtrain(circuit, [0.9])
    assert abs(ours.item() - value.item()) < 1e-8 and abs(our_grad.item() - grad.item()) < 1e-8


def test_what_qtrain_cannot_read_or_write_is_refused():
    class Mystery(qml.operation.Operation):
        num_wires = 1

    with pytest.raises(ValueError, match="Mystery on wires"):
        from_pennylane(lambda: Mystery(wires=0))
    with pytest.raises(ValueError, match=r"gate 0 RX: its angle is w \* 2; "):
        from_pennylane(lambda w: qml.RX(2 * w, wires=0), 0.3)
    with pytest.raises(ValueError, match=r"gate 0 RX: its angle is w \+ x; "):
        from_pennylane(lambda w, x: qml.RX(w + x, wires=0), 0.3, 0.1)
    phi = torch.tensor(0.4, requires_grad=True)  # CRot's decomposition takes (phi - omega) / 2: from a tape too
    with pytest.raises(ValueError, match=r"gate 0 RZ \(from the decomposition of CRot\): its angle is \(p0 - const\) / 2; "):
        from_pennylane(qml.tape.QuantumScript([qml.CRot(phi, 0.1, 0.2, wires=[0, 1])]))
    with pytest.raises(ValueError, match="broadcast parameters"):
        from_pennylane(lambda x: qml.RX(x, wires=0), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"gate 0 \('pauli_rot'\)"):
        to_pennylane(Circuit(1).pauli_rot(0, "a", "XY"))
    with pytest.raises(ValueError, match="wires has 1 labels"):
        to_pennylane(Circuit(2).cz(0, 1), wires=["a"])
    with pytest.raises(ValueError, match=r"theta has shape \(3,\)"):
        qml.tape.make_qscript(to_pennylane(Circuit(1).rx(0, "a").ry(0, "b")))([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="one name per positional argument"):
        from_pennylane(lambda w: qml.RX(w, wires=0), 0.3, names=["a", "b"])


@pytest.mark.parametrize("gate", PENNYLANE_GATES)
def test_every_gate_is_pennylanes_matrix_phase_included(gate):
    """Each row of the name table, as a full matrix on two qubits (two-qubit
    gates on qubits (1, 0), so the order of wires counts), global phase
    included; and the PennyLane operation reads back as the same gate."""
    spec_angles = {1: "a", 3: ("a", 0.37, "b"), 4: ("a", 0.37, "b", -0.52)}
    circuit = Circuit(2)
    qubits = (1, 0) if gate in FIXED_2Q + ROTATIONS_2Q + MULTI_ANGLE_2Q + ("unitary",) else (1,)
    if gate == "unitary":
        circuit.unitary(qubits, torch.tensor(reference.random_unitary(np.random.default_rng(1), 4)))
    else:
        n_angles = {"cu": 4}.get(gate, 3 if gate in MULTI_ANGLE + MULTI_ANGLE_2Q else 1 if gate in ROTATIONS + ROTATIONS_2Q else 0)
        circuit.add(gate, qubits, spec_angles.get(n_angles))
    theta = np.array([0.81, -1.93])[: circuit.n_params]
    ours = circuit.state(torch.tensor(theta), initial_state=torch.eye(4, dtype=torch.complex128), dtype=torch.complex128).T.numpy()
    theirs = qml.matrix(to_pennylane(circuit), wire_order=[0, 1])(theta)
    assert np.abs(ours - theirs).max() < 1e-12
    assert [line.split()[0] for line in from_pennylane(to_pennylane(circuit), theta).gate_list()] == _names_read_back(circuit)


@pytest.mark.parametrize("case, angle, point, expression, op", REFUSED, ids=[c[0] for c in REFUSED])
def test_a_computed_angle_is_refused_naming_what_computes_it(case, angle, point, expression, op):
    """Whatever its value and derivative at the traced point: from a quantum
    function (w an argument) and from a tape (w a torch tensor: p0)."""
    refusal = "qtrain maps an angle to a parameter only as the parameter itself"
    message = rf"gate 0 RX: its angle is {re.escape(expression)}; {refusal} \({op} is"
    with pytest.raises(UsageError, match=message):
        from_pennylane(lambda w: qml.RX(angle(w), wires=0), np.full(3, point))
    w = torch.full((3,), point, dtype=torch.float64, requires_grad=True)
    with pytest.raises(UsageError, match=message.replace("w\\[", "p0\\[")):
        from_pennylane(qml.tape.QuantumScript([qml.RX(angle(w), wires=0)]))


@pytest.mark.parametrize("case, angle, index", STRUCTURAL, ids=[c[0] for c in STRUCTURAL])
def test_an_angle_moved_by_structural_steps_is_its_element(case, angle, index):
    w = np.arange(1, 7).reshape(2, 3) / 7
    i, j = index
    assert from_pennylane(lambda w: qml.RX(angle(w), wires=0), w).gate_list() == [f"rx 0 w[{i},{j}]"]
    tensor = torch.tensor(w, requires_grad=True)
    assert from_pennylane(qml.tape.QuantumScript([qml.RY(angle(tensor), wires=0)])).gate_list() == [f"ry 0 p0[{i},{j}]"]


def test_the_issues_example_is_refused_and_constants_stay_fixed():
    def f(w):
        qml.RX(torch.sin(w[0]), wires=0)
        qml.RY(w[1] + w[1] ** 2, wires=1)
        qml.CNOT(wires=[0, 1])

    refusal = "qtrain maps an angle to a parameter only as the parameter itself"
    with pytest.raises(UsageError, match=rf"^gate 0 RX: its angle is sin\(w\[0\]\); {refusal}"):
        from_pennylane(f, torch.zeros(2, dtype=torch.float64, requires_grad=True))
    g = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)  # no argument: what depends on it alone is a constant

    def constants(w):
        qml.RX(torch.sin(g), wires=0)
        qml.RY(torch.cos(torch.tensor(0.3)), wires=0)
        qml.RZ(w[1], wires=0)

    fixed = [torch.sin(g).item(), torch.cos(torch.tensor(0.3)).item()]
    assert from_pennylane(constants, [0.1, 0.4]).gate_list() == [f"rx 0 {fixed[0]!r}", f"ry 0 {fixed[1]!r}", "rz 0 w[1]"]
