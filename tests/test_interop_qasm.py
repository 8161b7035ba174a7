"""OpenQASM 2 and 3 in and out: exact round trips for every gate, hand-written
files against the dense reference, Qiskit's reading of what we write, errors."""

import math

import numpy as np
import pytest
import torch

from qtrain import Circuit
from tests import reference
from tests.circuits import FIXED_1Q, FIXED_2Q, MULTI_ANGLE, ROTATIONS, ROTATIONS_2Q, random_circuit, random_theta

pytest.importorskip("openqasm3")
pytest.importorskip("antlr4")

QASM_GATES = tuple(k for k in ROTATIONS + MULTI_ANGLE + ROTATIONS_2Q + FIXED_1Q + FIXED_2Q if k != "pauli_rot")


@pytest.fixture(params=[0, 1, 2])
def case(request):
    rng = np.random.default_rng(request.param)
    rc = random_circuit(rng, 3, n_gates=40, batch=1, n_names=3, per_sample=False, kinds=QASM_GATES)
    return rc.circuit, torch.tensor(random_theta(rng, rc.circuit, None))


def test_every_gate_qasm_can_carry_is_drawn():
    from qtrain.engine.gates import GATES

    assert set(QASM_GATES) == {name for name, spec in GATES.items() if spec.kind in ("fixed", "parametric")}


def test_qasm3_round_trip_is_exact(case):
    circuit, theta = case
    back = Circuit.from_qasm(circuit.to_qasm())
    assert back.gate_list() == circuit.gate_list() and back.parameters == circuit.parameters
    assert torch.equal(back.state(theta, dtype=torch.complex128), circuit.state(theta, dtype=torch.complex128))


def test_qasm2_binds_theta_and_reads_back_the_same_states(case):
    circuit, theta = case
    text = circuit.to_qasm(version=2, theta=theta)
    assert "input" not in text and text.startswith("OPENQASM 2.0;")
    back = Circuit.from_qasm(text)
    assert back.n_params == 0 and [line.split()[0] for line in back.gate_list()] == [line.split()[0] for line in circuit.gate_list()]
    assert (back.state(dtype=torch.complex128) - circuit.state(theta, dtype=torch.complex128)).abs().max() < 1e-12


@pytest.mark.parametrize("version", [2, 3])
def test_qiskit_reads_what_we_write(case, version):
    """An independent reader: Qiskit's state (little-endian) reversed is ours, up to a global phase."""
    qasm = pytest.importorskip("qiskit.qasm2" if version == 2 else "qiskit.qasm3")
    if version == 3:
        pytest.importorskip("qiskit_qasm3_import")
    from qiskit.quantum_info import Statevector

    circuit, theta = case
    loaded = qasm.loads(circuit.to_qasm(version=version, theta=theta))
    little = Statevector(loaded).data
    n = circuit.n_qubits
    theirs = np.array([little[int(format(i, f"0{n}b")[::-1], 2)] for i in range(2**n)])
    ours = circuit.state(theta, dtype=torch.complex128)[0].numpy()
    assert abs(abs(np.vdot(theirs, ours)) - 1) < 1e-12


def test_a_hand_written_qasm3_file():
    text = """
    OPENQASM 3.0;
    include "stdgates.inc";
    // two registers: a[0], a[1] are qubits 0, 1; b[0] is qubit 2
    input float[64] w;
    input angle v;
    qubit[2] a;
    qubit b;
    gate entangle(t) x, y { cx x, y; rz(t / 2) y; cx x, y; }
    h a;                       // broadcast over the register
    ry(w) b[0];
    entangle(pi / 3) a[0], b[0];
    crz(v) a[1], b[0];
    U(2 * pi / 3, -0.25, w) a[1];
    rx(w) a[0];
    barrier a;
    """
    circuit = Circuit.from_qasm(text)
    assert circuit.n_qubits == 3 and circuit.parameters == ("w", "v")
    w, v = 0.7, -1.3
    gates = [{"name": "h", "qubits": (0,)}, {"name": "h", "qubits": (1,)}, {"name": "ry", "qubits": (2,), "angle": w},
             {"name": "rzz", "qubits": (0, 2), "angle": math.pi / 6}, {"name": "crz", "qubits": (1, 2), "angle": v},
             {"name": "u3", "qubits": (1,), "angles": [2 * math.pi / 3, -0.25, w]}, {"name": "rx", "qubits": (0,), "angle": w}]
    expected = reference.run(gates, 3)
    got = circuit.state(torch.tensor([w, v], dtype=torch.float64))[0].numpy()
    assert np.abs(got - expected).max() < 1e-12


def test_a_hand_written_qasm2_file():
    text = """OPENQASM 2.0;
    include "qelib1.inc";
    qreg q[2];
    creg c[2];
    u2(0, pi) q[0];            // a Hadamard
    cx q[0], q[1];
    u1(pi/4) q[1];
    rzz(0.5) q[0], q[1];
    measure q -> c;
    """
    with pytest.warns(UserWarning, match="measurements skipped"):
        circuit = Circuit.from_qasm(text)
    gates = [{"name": "h", "qubits": (0,)}, {"name": "cnot", "qubits": (0, 1)}, {"name": "t", "qubits": (1,)}, {"name": "rzz", "qubits": (0, 1), "angle": 0.5}]
    expected = reference.run(gates, 2)
    got = circuit.state(dtype=torch.complex128)[0].numpy()
    assert abs(abs(np.vdot(expected, got)) - 1) < 1e-12  # u2(0, pi) is H up to a global phase
    assert circuit.gate_list()[0] == "u3 0 1.5707963267948966,0.0,3.141592653589793"


def test_a_definition_named_like_a_gate_but_different_is_inlined():
    text = 'OPENQASM 3.0;\ninclude "stdgates.inc";\ngate rzz(t) a, b { rz(t) a; }\nqubit[2] q;\nrzz(0.4) q[0], q[1];\n'
    assert Circuit.from_qasm(text).gate_list() == ["rz 0 0.4"]


@pytest.mark.parametrize("text, message", [
    ('OPENQASM 3.0;\ninput float a;\nqubit[1] q;\nrx(2*a) q[0];\n', "computed from input 'a'"),
    ('OPENQASM 3.0;\nqubit[1] q;\nfoo q[0];\n', "unknown gate 'foo'"),
    ('OPENQASM 3.0;\nqubit[1] q;\nreset q[0];\n', "not a unitary gate"),
    ('OPENQASM 3.0;\nqubit[1] q;\nx q[3];\n', r"q\[3\] is out of range"),
    ('OPENQASM 3.0;\ninclude "mine.inc";\nqubit[1] q;\n', "include 'mine.inc'"),
    ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nctrl @ x q[0], q[1];\n', "modifiers"),
])
def test_what_qtrain_cannot_read_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        Circuit.from_qasm(text)


def test_an_unused_input_is_reported():
    with pytest.warns(UserWarning, match=r"inputs \['b'\] drive no gate"):
        circuit = Circuit.from_qasm('OPENQASM 3.0;\ninput float a;\ninput float b;\nqubit[1] q;\nrx(a) q[0];\n')
    assert circuit.parameters == ("a",)


def test_what_qasm_cannot_carry_is_refused():
    with pytest.raises(ValueError, match=r"gate 1 \('unitary'\)"):
        Circuit(1).rx(0, "a").unitary(0, torch.eye(2)).to_qasm()
    with pytest.raises(ValueError, match=r"gate 0 \('pauli_rot'\)"):
        Circuit(1).pauli_rot(0, "a", "XY").to_qasm()
    with pytest.raises(ValueError, match="parameter name 'w@1'"):
        Circuit(1).rx(0, "w@1").to_qasm()
    with pytest.raises(ValueError, match="pass theta"):
        Circuit(1).rx(0, "a").to_qasm(version=2)
    with pytest.raises(ValueError, match=r"theta has shape \(2,\)"):
        Circuit(1).rx(0, "a").to_qasm(version=2, theta=[0.1, 0.2])
    assert "rx(0.5) q[0];" in Circuit(1).rx(0, "a").to_qasm(theta=[0.5])  # version 3 binds too when given theta
