"""OpenQASM 2 and 3 in and out: exact round trips for every gate, hand-written
files against the dense reference, Qiskit's reading of what we write, errors."""

import math
import re
import sys
import warnings

import numpy as np
import pytest
import torch

from qtrain import Circuit
from qtrain.interop.qasm import from_qasm
from tests import reference
from tests.circuits import FIXED_1Q, FIXED_2Q, MULTI_ANGLE, MULTI_ANGLE_2Q, ROTATIONS, ROTATIONS_2Q, random_circuit, random_theta

pytest.importorskip("openqasm3")
pytest.importorskip("antlr4")

QASM_GATES = tuple(k for k in ROTATIONS + MULTI_ANGLE + MULTI_ANGLE_2Q + ROTATIONS_2Q + FIXED_1Q + FIXED_2Q if k != "pauli_rot")


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


def test_qiskit_reads_our_inputs(case):
    """Unbound OpenQASM 3: Qiskit makes each input a Parameter of the same name."""
    qasm3 = pytest.importorskip("qiskit.qasm3")
    pytest.importorskip("qiskit_qasm3_import")
    from qiskit.quantum_info import Statevector

    circuit, theta = case
    loaded = qasm3.loads(circuit.to_qasm())
    assert sorted(p.name for p in loaded.parameters) == sorted(circuit.parameters)
    bound = loaded.assign_parameters({p: float(theta[circuit.parameters.index(p.name)]) for p in loaded.parameters})
    little = Statevector(bound).data
    n = circuit.n_qubits
    theirs = little[[int(format(i, f"0{n}b")[::-1], 2) for i in range(2**n)]]
    assert abs(abs(np.vdot(theirs, circuit.state(theta, dtype=torch.complex128)[0].numpy())) - 1) < 1e-12


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
    ('OPENQASM 3.0;\nqubit[1] q;\nx q[0];\nreset q[0];\n', "reset of a qubit a gate has acted on"),
    ('OPENQASM 3.0;\nqubit[1] q;\nbit c;\nc = measure q[0];\nif (c) x q[0];\n', "BranchingStatement is not a unitary gate"),
    ('OPENQASM 3.0;\nqubit[2] q;\nh q[0];\nmeasure q[0];\nx q[1];\nh q[0];\n', r"gate 'h' on qubit 0 after its measurement on line 4"),
    ('OPENQASM 3.0;\nqubit[1] q;\nctrl @ gphase(0.3) q[0];\n', "modifiers"),
    ('OPENQASM 3.0;\nqubit[2] a;\nqubit[3] b;\ncx a, b;\n', r"registers of different sizes \[2, 3\]"),
    ('OPENQASM 3.0;\nqubit[2] q;\ncx q[1], q[1];\n', r"line 3: gate 0 \('cnot'\): repeated qubit"),
    ('OPENQASM 3.0;\ninput float a;\ngate g(t) x { rx(t/2) x; }\nqubit[1] q;\ng(a) q[0];\n', r"line 5: in the body of gate 'g' \(defined on line 3\)"),
    ('OPENQASM 3.0;\nqubit[1] q;\nrx(in) q[0];\n', r"not valid OpenQASM: line 3, column 4, at 'in'"),
    ('OPENQASM 3.0;\nqubit[1] q;\nx $0;\n', "physical qubit"),
    ('OPENQASM 3.0;\nqubit[1] q;\ncu3(1, 2) q[0];\n', "gate 'cu3' takes 3 angles and 2 qubits, got 2 and 1"),
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


def test_the_text_written():
    """Inputs in parameter order, shared ones declared once, definitions for
    gates outside stdgates, U for u3, fixed angles to the bit."""
    circuit = Circuit.from_gates([("rzz", (0, 1), "b"), ("u3", (1,), ("a", 0.1, "b")), ("rx", (0,), 1e-5), ("cnot", (1, 0), None)], n_qubits=2)
    assert circuit.to_qasm() == (
        'OPENQASM 3.0;\ninclude "stdgates.inc";\n'
        "gate rzz(t) a, b { cx a, b; rz(t) b; cx a, b; }\n"
        "input float[64] b;\ninput float[64] a;\n"
        "qubit[2] q;\n"
        "rzz(b) q[0], q[1];\nU(a, 0.1, b) q[1];\nrx(1.0e-05) q[0];\ncx q[1], q[0];\n"
    )
    text = circuit.to_qasm(version=2, theta=[0.25, -2.5e-7])
    assert "U(-2.5e-07, 0.1, 0.25) q[1];" not in text and "u3(-2.5e-07, 0.1, 0.25) q[1];" in text and "rzz(0.25) q[0], q[1];" in text
    assert Circuit.from_qasm(text).gate_list()[2] == "rx 0 1e-05"  # 1.0e-05 (QASM 2's real needs a point) reads back to the bit


def test_unicode_names_round_trip_and_keywords_are_refused():
    circuit = Circuit(1).rx(0, "θ").ry(0, "φ_1").rz(0, "θ")
    back = Circuit.from_qasm(circuit.to_qasm())
    assert back.parameters == ("θ", "φ_1") and back.gate_list() == circuit.gate_list()
    for name in ("in", "end", "box", "im", "bit", "measure", "pi", "π", "cx", "x", "theta[0]", "a b", "a;", "1a"):
        with pytest.raises(ValueError, match=re.escape(f"parameter name {name!r} is not a free OpenQASM 3 identifier")):
            Circuit(1).rx(0, "ok").rz(0, name).to_qasm()
    assert "rz(0.5) q[0];" in Circuit(1).rz(0, "in").to_qasm(theta=[0.5])  # bound angles need no names


# the gates stdgates.inc / qelib1.inc have and qtrain lacks, against their dense matrices
_X = reference.FIXED["x"]


def _ctrl(u, n_controls=1):
    out = np.eye(2 ** (n_controls + int(np.log2(len(u)))), dtype=complex)
    out[-len(u):, -len(u):] = u
    return out


LIBRARY_CASES = [
    ("cy", "", 2, lambda: _ctrl(reference.FIXED["y"])),
    ("ch", "", 2, lambda: _ctrl(reference.FIXED["h"])),
    ("cp", "(0.7)", 2, lambda: _ctrl(np.diag([1, np.exp(0.7j)]))),
    ("cphase", "(-1.3)", 2, lambda: _ctrl(np.diag([1, np.exp(-1.3j)]))),
    ("cu1", "(2.1)", 2, lambda: _ctrl(np.diag([1, np.exp(2.1j)]))),
    ("cu3", "(0.3, -0.8, 1.9)", 2, lambda: _ctrl(reference.u3(0.3, -0.8, 1.9))),
    ("cu", "(0.3, -0.8, 1.9, 0.6)", 2, lambda: _ctrl(np.exp(0.6j) * reference.u3(0.3, -0.8, 1.9))),
    ("csx", "", 2, lambda: _ctrl(reference.FIXED["sx"])),
    ("sxdg", "", 1, lambda: reference.FIXED["sx"].conj().T),
    ("ccx", "", 3, lambda: _ctrl(_X, 2)),
    ("c3x", "", 4, lambda: _ctrl(_X, 3)),
    ("c3sqrtx", "", 4, lambda: _ctrl(reference.FIXED["sx"], 3)),
    ("c3sx", "", 4, lambda: _ctrl(reference.FIXED["sx"], 3)),  # Qiskit's OpenQASM 3 name
    ("c4x", "", 5, lambda: _ctrl(_X, 4)),
    ("cswap", "", 3, lambda: _ctrl(reference.FIXED["swap"])),
    ("id", "", 1, lambda: np.eye(2)),
    ("u0", "(0.4)", 1, lambda: np.eye(2)),
]


@pytest.mark.parametrize("name, args, k, matrix", LIBRARY_CASES, ids=[c[0] for c in LIBRARY_CASES])
@pytest.mark.parametrize("version", [2, 3])
def test_standard_gates_qtrain_lacks_are_inlined_exactly(name, args, k, matrix, version):
    qubits, n = (2, 0, 3, 5, 1)[:k], 6  # out of order, with a spectator qubit
    header = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[6] q;\n' if version == 3 else 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[6];\n'
    circuit = Circuit.from_qasm(f'{header}{name}{args} {", ".join(f"q[{i}]" for i in qubits)};\n')
    got = circuit.state(initial_state=torch.eye(2**n, dtype=torch.complex128), dtype=torch.complex128).T.numpy()
    assert np.abs(got - reference.embed(matrix(), qubits, n)).max() < 1e-12  # exact, phase included


def test_qiskit_written_files_read_back():
    """An independent writer: Qiskit's exports of a circuit with gates from
    both include files, its own definitions, and final measurements."""
    qiskit = pytest.importorskip("qiskit")
    pytest.importorskip("qiskit_qasm3_import")
    from qiskit.circuit import Parameter
    from qiskit.quantum_info import Statevector

    a, b = Parameter("a"), Parameter("b")
    qc = qiskit.QuantumCircuit(3)
    for gate, *args in [("h", 0), ("cx", 0, 1), ("cp", 0.3, 1, 2), ("ccx", 0, 1, 2), ("cy", 2, 0), ("ch", 1, 0), ("rzz", a, 0, 2),
                        ("rxx", b, 1, 2), ("ryy", a, 0, 1), ("crx", b, 0, 2), ("u", 0.1, a, 0.3, 1), ("p", b, 2), ("sx", 0), ("sxdg", 1),
                        ("swap", 0, 2), ("cswap", 2, 0, 1), ("cu", 0.1, 0.2, 0.3, 0.4, 0, 1), ("csx", 1, 2), ("cry", 0.4, 2, 1),
                        ("crz", b, 1, 0), ("tdg", 2), ("sdg", 1)]:
        getattr(qc, gate)(*args)
    values = {"a": 0.5, "b": -0.7}
    little = Statevector(qc.assign_parameters({a: values["a"], b: values["b"]})).data
    theirs = little[[int(format(i, "03b")[::-1], 2) for i in range(8)]]  # little-endian -> qubit 0 most significant
    qc.measure_all()

    with pytest.warns(UserWarning, match="measurements skipped"):
        parametric = Circuit.from_qasm(qiskit.qasm3.dumps(qc))
    assert parametric.parameters == ("a", "b")
    ours = parametric.state(torch.tensor([values[n] for n in parametric.parameters], dtype=torch.float64))[0].numpy()
    assert abs(abs(np.vdot(theirs, ours)) - 1) < 1e-12
    names = [line.split()[0] for line in parametric.gate_list()]
    assert all(names.count(gate) == 1 for gate in ("rzz", "rxx", "ryy", "crx", "cry", "crz"))  # Qiskit's definitions recognized

    with pytest.warns(UserWarning, match="measurements skipped"):
        bound = Circuit.from_qasm(qiskit.qasm2.dumps(qc.assign_parameters({a: values["a"], b: values["b"]})))
    assert abs(abs(np.vdot(theirs, bound.state(dtype=torch.complex128)[0].numpy())) - 1) < 1e-12


def test_registers_ranges_constants_physical_qubits_and_resets():
    text = """OPENQASM 3.0;
    include "stdgates.inc";
    const float k = pi / 8;
    qubit[3] a;
    qubit[2] b;
    reset a;                  // fresh qubits: nothing to do
    x a[0:1];                 // a[0], a[1] (ranges include their end)
    h a[{0, 2}];
    rz(2 * k) a[-1];          // the last qubit of a
    cz a[1:2], b;             // a[1]-b[0], a[2]-b[1]
    bit[2] c;
    c[0] = measure b[0];
    bit d = measure b[1];
    x a[0];                   // a qubit not measured: fine
    """
    with pytest.warns(UserWarning, match="measurements skipped"):
        circuit = Circuit.from_qasm(text)
    assert circuit.gate_list() == ["x 0", "x 1", "h 0", "h 2", f"rz 2 {math.pi / 4!r}", "cz 1,3", "cz 2,4", "x 0"]
    physical = Circuit.from_qasm("OPENQASM 3.0;\ninclude \"stdgates.inc\";\ncx $0, $2;\n")
    assert physical.n_qubits == 3 and physical.gate_list() == ["cnot 0,2"]


def test_theta_must_be_finite():
    with pytest.raises(ValueError, match=r"not finite for parameters \['b'\]"):
        Circuit(1).rx(0, "a").rx(0, "b").to_qasm(version=2, theta=[0.1, float("nan")])


@pytest.mark.parametrize("text, message", [
    ('OPENQASM 3.0;\ngate g a { h a; g a; }\nqubit[1] q;\ng q[0];\n', r"line 4: .*gate 'g' is defined in terms of itself \(g -> g\)"),
    ('OPENQASM 3.0;\ngate f a { g a; }\ngate g a { f a; }\nqubit[1] q;\nf q[0];\n', r"defined in terms of itself \(f -> g -> f\)"),
    ('OPENQASM 3.0;\ngate g a { x b; }\nqubit[1] q;\ng q[0];\n', r"in the body of gate 'g': 'b' is not one of its qubit arguments \['a'\]"),
    ('OPENQASM 3.0;\nqubit[2] q;\nx q[1.5];\n', r"q\[1.5\]: a qubit index must be an integer"),
    ('OPENQASM 3.0;\nqubit[2] q;\nx q[0:0:1];\n', "a range of step 0"),  # start:step:end
])
def test_malformed_definitions_and_indices_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        Circuit.from_qasm(text)


def test_a_missing_parser_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "openqasm3", None)  # as if not installed
    with pytest.raises(ImportError, match=r"qtrain\[interop\]"):
        Circuit.from_qasm("OPENQASM 3.0;\nqubit q;\n")
    with pytest.raises(ImportError, match=r"qtrain\[interop\]"):
        Circuit(1).rx(0, "a").to_qasm()  # the parser's lexer checks the names
    assert "rx(0.5) q[0];" in Circuit(1).rx(0, "a").to_qasm(version=2, theta=[0.5])  # bound angles need no parser


# ---- cp, cu3, cu, rzx: gates of the table, read and written by name ----------------------------


def test_the_controlled_and_zx_gates_read_as_parameters():
    text = """OPENQASM 3.0;
    include "stdgates.inc";
    input float a;
    input float b;
    qubit[3] q;
    h q;
    cp(a) q[0], q[2];
    cu1(b) q[1], q[0];            // OpenQASM 2's name of cp
    cphase(0.4) q[2], q[1];
    cu3(a, b, 0.3) q[2], q[0];
    cu(b, -0.2, a, 0.9) q[1], q[2];
    rzx(a) q[0], q[1];
    """
    circuit = Circuit.from_qasm(text)
    assert circuit.parameters == ("a", "b")
    assert [line.split()[0] for line in circuit.gate_list()] == ["h"] * 3 + ["cp", "cp", "cp", "cu3", "cu", "rzx"]
    a, b = 0.8, -1.9
    gates = [{"name": "h", "qubits": (q,)} for q in range(3)] + [
        {"name": "cp", "qubits": (0, 2), "angle": a}, {"name": "cp", "qubits": (1, 0), "angle": b}, {"name": "cp", "qubits": (2, 1), "angle": 0.4},
        {"name": "cu3", "qubits": (2, 0), "angles": [a, b, 0.3]}, {"name": "cu", "qubits": (1, 2), "angles": [b, -0.2, a, 0.9]},
        {"name": "rzx", "qubits": (0, 1), "angle": a}]
    got = circuit.state(torch.tensor([a, b], dtype=torch.float64), dtype=torch.complex128)[0].numpy()
    assert np.abs(got - reference.run(gates, 3)).max() < 1e-12  # exact, phases included


def test_the_new_gates_are_written_by_their_standard_names():
    circuit = Circuit.from_gates([("cp", (0, 1), "a"), ("cu3", (1, 0), ("a", 0.2, "b")), ("cu", (0, 1), ("b", 0.1, 0.2, "a")), ("rzx", (1, 0), "b")], n_qubits=2)
    three = circuit.to_qasm()
    assert "cp(a) q[0], q[1];" in three and "cu(b, 0.1, 0.2, a) q[0], q[1];" in three  # stdgates
    assert "gate cu3(" in three and "gate rzx(" in three and "cu3(a, 0.2, b) q[1], q[0];" in three  # defined
    back = Circuit.from_qasm(three)
    assert back.gate_list() == circuit.gate_list() and back.parameters == circuit.parameters
    two = circuit.to_qasm(version=2, theta=[0.5, -0.25])
    assert "cu1(0.5) q[0], q[1];" in two and "cu3(0.5, 0.2, -0.25) q[1], q[0];" in two and "gate cu(" in two and "gate rzx(" in two
    assert [line.split()[0] for line in Circuit.from_qasm(two).gate_list()] == ["cp", "cu3", "cu", "rzx"]


# ---- what Qiskit's qasm2.dumps writes ---------------------------------------------------------


def _qiskit_state(qc) -> np.ndarray:
    """Qiskit's statevector, little-endian, as qtrain's (qubit 0 the most significant bit)."""
    from qiskit.quantum_info import Statevector

    little, n = Statevector(qc).data, qc.num_qubits
    return little[[int(format(i, f"0{n}b")[::-1], 2) for i in range(2**n)]]


def _qiskit_controlled_gates():
    from qiskit import QuantumCircuit
    from qiskit.circuit.library import C3SXGate, C3XGate, C4XGate, RC3XGate, RCCXGate

    qc = QuantumCircuit(5)
    qc.h(range(5))
    qc.rx(0.3, 4)
    for gate, qubits in [(RCCXGate(), [3, 0, 1]), (C3SXGate(), [1, 4, 2, 0]), (RC3XGate(), [0, 1, 2, 3]), (C3XGate(), [4, 2, 3, 1]),
                         (C4XGate(), [0, 3, 1, 4, 2]), (RCCXGate(), [2, 4, 0])]:
        qc.append(gate, qubits)
        qc.ry(0.7, qubits[-1])
        qc.rz(-0.4, qubits[0])
    return qc


QISKIT_SEEDS = (0, 3, 8, 18, 32)  # random circuits that draw every gate named below


@pytest.mark.parametrize("seed", [None, *QISKIT_SEEDS])
def test_qiskit_qasm2_dumps_reads_back(seed):
    """Qiskit writes rccx, c3sqrtx, cu3, cp, cu ... under their qelib1 names
    without definitions: read them with theirs, phases included (these
    circuits' states are compared exactly up to one global phase)."""
    pytest.importorskip("qiskit")
    from qiskit import qasm2
    from qiskit.circuit.random import random_circuit

    qc = _qiskit_controlled_gates() if seed is None else random_circuit(5, 6, max_operands=4, measure=False, seed=seed)
    text = qasm2.dumps(qc)
    if seed is None:
        assert re.search(r"^rccx ", text, re.M) and re.search(r"^c3sqrtx ", text, re.M) and "gate rccx" not in text  # no definitions
    fast = Circuit.from_qasm(text)
    assert abs(abs(np.vdot(_qiskit_state(qc), fast.state(dtype=torch.complex128)[0].numpy())) - 1) < 1e-12
    assert from_qasm(text, reader="reference").gate_list() == fast.gate_list()


def test_the_random_qiskit_circuits_hold_the_gates_they_stand_for():
    """The seeds above draw rccx and c3sqrtx without definitions, cu3, cp,
    cu1 and cu by name, rzx and rcccx with Qiskit's definitions."""
    pytest.importorskip("qiskit")
    from qiskit import qasm2
    from qiskit.circuit.random import random_circuit

    texts = "".join(qasm2.dumps(random_circuit(5, 6, max_operands=4, measure=False, seed=s)) for s in QISKIT_SEEDS)
    assert "gate rccx" not in texts and "gate c3sqrtx" not in texts and "gate rzx" in texts and "gate rcccx" in texts
    for name in ("rccx", "c3sqrtx", "cu3", "cp", "cu1", "cu", "rzx", "rcccx"):
        assert re.search(rf"^{name}[ (]", texts, re.M), name


# ---- the fast OpenQASM 2 reader -----------------------------------------------------------------

HAND_WRITTEN_QASM2 = """OPENQASM 2.0;
include "qelib1.inc";
// a comment line, and statements sharing a line
qreg a[2]; qreg b[3];
creg c[5];
gate entangle(t, s) x, y
{
  cx x, y; rz(t / 2 - s) y;
  cx x, y;
}
gate rzz(t) p, q { cx p, q; u1(t) q; cx p, q; }
U(pi/2, 0, pi) a[0];
u2(0, pi) b;                    // broadcast over a register
entangle(-pi/3, 2*0.25e-1) a[1], b[2];
cx a, b[0];                     // a[0], a[1] each onto b[0]
rzz(sin(0.3) * (1 + 2) / -4) b[0], a[1];
cu3(1.5, -.5, 3.) b[1], a[0];
barrier a, b;
c3sqrtx a[0], b[0], b[1], a[1];
rccx b[2], a[0], a[1];
measure a -> c[0];
measure b[1] -> c[3];
"""


def _qasm2_corpus():
    """OpenQASM 2 texts from every source at hand: written by hand, by
    qtrain (every gate), by Qiskit (random circuits, the controlled gates)."""
    texts = {"hand-written": HAND_WRITTEN_QASM2}
    for seed in range(3):
        rng = np.random.default_rng(seed)
        rc = random_circuit(rng, 3, n_gates=40, batch=1, n_names=3, per_sample=False, kinds=QASM_GATES)
        texts[f"qtrain-{seed}"] = rc.circuit.to_qasm(version=2, theta=random_theta(rng, rc.circuit, None))
    texts["library"] = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[6];\n' + "".join(
        f'{name}{args} {", ".join(f"q[{i}]" for i in (2, 0, 3, 5, 1)[:k])};\n' for name, args, k, _ in LIBRARY_CASES)
    try:
        from qiskit import qasm2
        from qiskit.circuit.random import random_circuit as qiskit_random
    except ImportError:
        return texts
    texts["qiskit-controlled"] = qasm2.dumps(_qiskit_controlled_gates())
    for seed in range(8):
        texts[f"qiskit-{seed}"] = qasm2.dumps(qiskit_random(5, 6, max_operands=4, measure=True, seed=seed))
    return texts


def test_fast_and_reference_readers_agree_on_the_corpus():
    for name, text in _qasm2_corpus().items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # final measurements
            fast, slow = from_qasm(text, reader="fast"), from_qasm(text, reader="reference")
        assert fast.n_qubits == slow.n_qubits and fast.gate_list() == slow.gate_list(), name  # the same floats, to the bit
        assert len(fast.ops) > 3, name


def test_the_hand_written_qasm2_file_against_the_dense_reference():
    with pytest.warns(UserWarning, match="measurements skipped"):
        circuit = Circuit.from_qasm(HAND_WRITTEN_QASM2)
    h = {"name": "u3", "angles": [math.pi / 2, 0.0, math.pi]}
    t = -math.pi / 3 / 2 - 2 * 0.25e-1
    gates = [{**h, "qubits": (0,)}] + [{**h, "qubits": (q,)} for q in (2, 3, 4)] + [
        {"name": "cnot", "qubits": (1, 4)}, {"name": "rz", "qubits": (4,), "angle": t}, {"name": "cnot", "qubits": (1, 4)},
        {"name": "cnot", "qubits": (0, 2)}, {"name": "cnot", "qubits": (1, 2)}, {"name": "rzz", "qubits": (2, 1), "angle": math.sin(0.3) * 3 / -4},
        {"name": "cu3", "qubits": (3, 0), "angles": [1.5, -0.5, 3.0]},
        {"name": "unitary", "qubits": (0, 2, 3, 1), "matrix": _ctrl(reference.FIXED["sx"], 3)},
        {"name": "unitary", "qubits": (4, 0, 1), "matrix": _qiskit_rccx()}]
    expected = reference.run(gates, 5)
    assert abs(abs(np.vdot(expected, circuit.state(dtype=torch.complex128)[0].numpy())) - 1) < 1e-12


def _qiskit_rccx() -> np.ndarray:
    """Qiskit's RCCXGate written out (controls first, target last): the
    Toffoli up to relative phases, -1 on |101>, |110> -> i|111>, |111> -> -i|110>."""
    m = np.eye(8, dtype=complex)
    m[5, 5] = -1
    m[6:, 6:] = [[0, -1j], [1j, 0]]
    return m


def test_a_large_file_reads_right():
    """The benchmark's generated file (its gates shaped like QASMBench's
    hhl_n10) at a tenth of its size; its first 2,000 lines against the
    reference reader's gates and Qiskit's state (qtrain's engine takes
    about 0.5 ms a gate to plan and run a circuit this long)."""
    from experiments.benchmarks.qasm_read import qasm2_text

    text = qasm2_text(20_000, n_qubits=6, seed=1)
    with pytest.warns(UserWarning, match="measurements skipped"):
        circuit = Circuit.from_qasm(text)
    head = "\n".join(text.split("\n")[:2000]) + "\n"
    start = from_qasm(head, reader="fast")
    assert len(circuit.ops) >= 20_000 and circuit.gate_list()[: len(start.ops)] == start.gate_list()
    assert start.gate_list() == from_qasm(head, reader="reference").gate_list()
    qiskit = pytest.importorskip("qiskit")
    theirs = _qiskit_state(qiskit.qasm2.loads(head))
    assert abs(abs(np.vdot(theirs, start.state(dtype=torch.complex128)[0].numpy())) - 1) < 1e-10


BIG = 30_000  # lines of gates after the 4 header lines


@pytest.fixture(scope="module")
def big_lines():
    from experiments.benchmarks.qasm_read import qasm2_text

    return qasm2_text(BIG, n_qubits=10, seed=2).split("\n")


@pytest.mark.parametrize("bad, message", [
    ("rx(0.1 $ 2) q[0];", r"cannot read the angle '0.1 \$ 2'"),
    ("rx(0.1 q[0];", "unbalanced parentheses"),
    ("frobnicate q[0];", "unknown gate 'frobnicate'"),
    ("x q[10];", r"q\[10\] is out of range"),
    ("cx q[2], q[2];", "repeated qubit"),
    ("x q[1]", "cannot read the qubit"),  # a missing semicolon runs into the next line
    ("if(c==1) x q[0];", "classical control"),
    ("rz((-8)^0.5) q[0];", r"is not a real number"),
    ("reset q[0];", "reset of a qubit a gate has acted on"),
    ("measure q[4] -> c[4]; h q[4];", r"gate 'h' on qubit 4 after its measurement on line 12345"),
])
def test_a_broken_big_file_is_refused_at_its_first_bad_line(big_lines, monkeypatch, bad, message):
    """A bad line k in a 30,000-gate file: refused naming line k (not a later
    bad line), and nothing after line k is read."""
    from qtrain.interop import _qasm2 as qasm2

    k = 12_345
    lines = list(big_lines)
    lines[k - 1], lines[k + 9_000] = bad, "bogus !!;"  # a second bad line further on
    seen = []
    original = qasm2._FastReader.statement
    monkeypatch.setattr(qasm2._FastReader, "statement", lambda self, text, line: (seen.append(line), original(self, text, line)))
    with pytest.raises(ValueError, match=rf"^line {k}: .*{message}"):
        Circuit.from_qasm("\n".join(lines))
    assert max(seen) == k  # stopped at its line, before reading the rest


Q2 = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'


@pytest.mark.parametrize("text, message", [
    (Q2 + "x q[0];\nmeasure q[0] -> c[0];\nh q[0];\n", r"line 7: gate 'h' on qubit 0 after its measurement on line 6"),
    (Q2 + "x q[0];\nreset q[0];\n", "line 6: reset of a qubit a gate has acted on"),
    (Q2 + "measure q -> c;\nif (c == 1) x q[0];\n", "line 6: classical control"),
    (Q2 + "opaque magic a, b;\n", "line 5: an opaque gate"),
    ('OPENQASM 2.0;\ninclude "mine.inc";\nqreg q[1];\n', "line 2: include 'mine.inc'"),
    (Q2 + "/* a block */\nx q[0];\n", r"line 5: block comments"),
    (Q2 + "rx(tau) q[0];\n", "line 5: unknown name 'tau'"),
    (Q2 + "rx(1/0) q[0];\n", "line 5: division by zero"),
    (Q2 + "rx(1e999) q[0];\n", "line 5: the angle '1e999' is not finite"),
    (Q2 + "rx(sqrt(-1)) q[0];\n", r"line 5: sqrt\(-1.0\) is undefined"),
    (Q2 + "rx(0.1, 0.2) q[0];\n", "line 5: gate 'rx' takes 1 angles and 1 qubits, got 2 and 1"),
    (Q2 + "cx q[0];\n", "line 5: gate 'cx' takes 0 angles and 2 qubits, got 0 and 1"),
    (Q2 + "qreg r[3];\ncx q, r;\n", r"line 6: registers of different sizes \[2, 3\]"),
    (Q2 + "x r[0];\n", "line 5: unknown qubit register 'r'"),
    (Q2 + "qreg q[3];\n", "line 5: qubit register 'q' declared twice"),
    (Q2 + "input float a;\n", "line 5: cannot read the qubit 'float a'"),
    (Q2 + "gate g a { h a; g a; }\ng q[0];\n", r"line 6: .*gate 'g' is defined in terms of itself"),
    (Q2 + "gate g(t) a { rx(t) a; \n", "line 5: the file ends inside a statement"),
    (Q2 + "x q[0]\n", "line 5: the file ends inside a statement"),
])
def test_what_the_fast_reader_cannot_read_is_refused_at_its_line(text, message):
    with pytest.raises(ValueError, match=message):
        from_qasm(text, reader="fast")


def test_openqasm2_takes_the_fast_path_and_openqasm3_the_reference(monkeypatch):
    from qtrain.interop import qasm

    def refuse(*_):
        raise AssertionError("the reference parser was called")

    monkeypatch.setattr(qasm, "_parse", refuse)
    assert Circuit.from_qasm("// a comment first\nOPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[2];\ncx q[0], q[1];\n").gate_list() == ["cnot 0,1"]
    with pytest.raises(AssertionError, match="reference parser"):
        Circuit.from_qasm('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\ncx q[0], q[1];\n')
    with pytest.raises(ValueError, match="reader must be"):
        from_qasm("OPENQASM 2.0;", reader="quick")
    with pytest.raises(ValueError, match="starts with OPENQASM 2.0"):
        from_qasm('OPENQASM 3.0;\nqubit q;\n', reader="fast")


@pytest.mark.parametrize("version", [2, 3])
def test_the_library_means_its_own_gates_whatever_the_file_defines(version):
    """A file's own `ccx` (here an X) is its business; the library's cswap,
    inlined when the file uses it undefined, still means the standard one."""
    header = 'OPENQASM 3.0;\nqubit[3] q;\n' if version == 3 else 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\n'
    circuit = Circuit.from_qasm(header + "gate ccx a, b, c { x c; }\nx q[1];\ncswap q[0], q[1], q[2];\nccx q[0], q[1], q[2];\n")
    probs = circuit.state(dtype=torch.complex128)[0].abs() ** 2
    assert probs[0b011].item() == pytest.approx(1.0)  # |010>: control 0, no swap; then the file's ccx, an X on q2


@pytest.mark.parametrize("angle", ["2^3", "-2^2", "2^3^2 / 100", "2^-1", "(1+1)^2*pi", "sqrt(2)^2"])
def test_openqasm2_power_reads_as_qiskit_reads_it(angle):
    """OpenQASM 2's `^` is a power (right-associative, tighter than a unary minus); the angle matches Qiskit's reader."""
    qasm2 = pytest.importorskip("qiskit.qasm2")
    text = Q2 + f"rz({angle}) q[0];\n"
    theirs = float(qasm2.loads(text).data[0].operation.params[0])
    ours = Circuit.from_qasm(text).ops[0].angle
    assert ours == pytest.approx(theirs, rel=1e-15, abs=0)
