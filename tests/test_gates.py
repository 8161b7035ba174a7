"""Every gate of the table against the dense reference, plus truth tables."""

import math

import numpy as np
import pytest
import torch

from qtrain import Circuit
from qtrain.engine.gates import GATES
from tests import reference
from tests.conftest import REAL, TOLERANCE

# (gate, qubits, angle or None); 2-qubit gates also in reversed and non-adjacent order.
CASES = [
    ("rx", (1,), 0.7), ("ry", (0,), -1.3), ("rz", (2,), 2.9),
    ("h", (1,), None), ("x", (0,), None), ("y", (2,), None), ("z", (1,), None),
    ("s", (0,), None), ("t", (2,), None), ("sx", (1,), None), ("sdg", (2,), None), ("tdg", (0,), None),
    ("p", (1,), 0.9),
    ("rxx", (0, 2), 1.1), ("ryy", (2, 1), -0.8), ("rzz", (1, 0), 2.3),
    ("crx", (0, 2), 1.7), ("cry", (2, 1), -2.6), ("crz", (1, 0), 0.6),
    ("u3", (1,), (0.7, -1.2, 2.1)), ("rot", (2,), (-0.4, 1.9, 0.8)),
    ("cp", (2, 0), 1.3), ("rzx", (0, 2), -2.2), ("rzx", (2, 1), 0.9),
    ("cu3", (0, 2), (0.7, -1.2, 2.1)), ("cu3", (2, 1), (-2.9, 0.4, 1.6)), ("cu", (1, 0), (1.1, 2.3, -0.6, 0.8)),
    ("cz", (0, 1), None), ("cz", (2, 0), None),
    ("cnot", (0, 1), None), ("cnot", (2, 0), None), ("cnot", (1, 2), None),
    ("swap", (0, 2), None), ("swap", (2, 1), None),
]


def test_every_gate_has_a_case():
    covered = {name for name, _, _ in CASES} | {"pauli_rot", "unitary"}
    assert covered == set(GATES)


def _scrambled(rng, n):
    """A generic starting state: a random unitary on every qubit, then CNOTs."""
    gates = [{"name": "unitary", "qubits": (q,), "matrix": reference.random_unitary(rng, 2)} for q in range(n)]
    gates += [{"name": "cnot", "qubits": (q, q + 1)} for q in range(n - 1)]
    return gates


def _to_circuit(gates, n, param_name=None):
    c = Circuit(n)
    for g in gates:
        if g["name"] == "unitary":
            c.unitary(g["qubits"], torch.tensor(g["matrix"]))
        elif "angles" in g:
            c.add(g["name"], g["qubits"], tuple(f"{param_name}{k}" for k in range(len(g["angles"]))) if param_name else tuple(g["angles"]))
        elif "angle" in g:
            c.add(g["name"], g["qubits"], param_name or g["angle"])
        else:
            c.add(g["name"], g["qubits"])
    return c


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
@pytest.mark.parametrize(
    "name,qubits,angle,trainable",
    [(*case, False) for case in CASES] + [(*case, True) for case in CASES if case[2] is not None],
)
def test_gate_matches_reference(rng, dtype, name, qubits, angle, trainable):
    n = 3
    key = "angles" if isinstance(angle, tuple) else "angle"
    gates = _scrambled(rng, n) + [{"name": name, "qubits": qubits, **({key: angle} if angle is not None else {})}]
    expected = reference.run(gates, n)
    circuit = _to_circuit(gates, n, "a" if trainable else None)
    theta = torch.tensor(angle if key == "angles" else [angle], dtype=REAL[dtype]) if trainable else None
    got = circuit.state(theta, dtype=dtype)[0].numpy()
    assert np.abs(got - expected).max() < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
@pytest.mark.parametrize("qubits", [(0,), (2,), (0, 2), (2, 1)])
def test_unitary_per_sample_matches_reference(rng, dtype, qubits):
    n, batch = 3, 3
    mats = np.stack([reference.random_unitary(rng, 2 ** len(qubits)) for _ in range(batch)])
    start = _scrambled(rng, n)
    circuit = _to_circuit(start, n).unitary(qubits, torch.tensor(mats))
    got = circuit.state(dtype=dtype).numpy()
    for b in range(batch):
        expected = reference.run(start + [{"name": "unitary", "qubits": qubits, "matrix": mats[b]}], n)
        assert np.abs(got[b] - expected).max() < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
@pytest.mark.parametrize("fixed_angle", [False, True])
def test_pauli_rotation_per_sample_axis(rng, dtype, fixed_angle):
    n, axes = 2, torch.tensor([0, 1, 2, 2, 0])
    start = _scrambled(rng, n)
    angles = rng.uniform(-np.pi, np.pi, size=5)
    circuit = _to_circuit(start, n).pauli_rot(1, 0.4 if fixed_angle else "a", axes)
    theta = None if fixed_angle else torch.tensor(angles[:, None], dtype=REAL[dtype])
    got = circuit.state(theta, dtype=dtype).numpy()
    for b in range(5):
        gate = {"name": "pauli_rot", "qubits": (1,), "axis": "XYZ"[axes[b]], "angle": 0.4 if fixed_angle else angles[b]}
        assert np.abs(got[b] - reference.run(start + [gate], n)).max() < TOLERANCE[dtype]


def test_x_on_qubit_0_of_3_is_index_4():
    state = Circuit(3).x(0).state()
    expected = torch.zeros(1, 8, dtype=torch.complex64)
    expected[0, 4] = 1
    assert torch.equal(state, expected)


@pytest.mark.parametrize(
    "prep,gate,qubits,index",
    [
        ((0,), "cnot", (0, 1), 0b11),  # |10> -> |11>: control is the first qubit
        ((1,), "cnot", (0, 1), 0b01),  # |01> unchanged
        ((1,), "cnot", (1, 0), 0b11),  # control qubit 1 flips qubit 0
        ((0,), "swap", (0, 1), 0b01),
        ((0,), "h", (0,), None),
    ],
)
def test_truth_table(prep, gate, qubits, index):
    c = Circuit(2)
    for q in prep:
        c.x(q)
    probs = c.add(gate, qubits).state(dtype=torch.complex128).abs()[0] ** 2
    if index is None:  # H|1> = (|0> - |1>)/sqrt2 on qubit 0
        assert torch.allclose(probs, torch.tensor([0.5, 0, 0.5, 0], dtype=torch.float64))
    else:
        assert probs[index].item() == pytest.approx(1.0)


def test_rotation_convention_is_exp_minus_i_theta_p_over_2():
    # R_Y(pi) |0> = |1> with amplitude +1; R_X(pi) |0> = -i |1>.
    ry = Circuit(1).ry(0, math.pi).state(dtype=torch.complex128)[0]
    rx = Circuit(1).rx(0, math.pi).state(dtype=torch.complex128)[0]
    assert torch.allclose(ry, torch.tensor([0, 1], dtype=torch.complex128), atol=1e-15)
    assert torch.allclose(rx, torch.tensor([0, -1j], dtype=torch.complex128), atol=1e-15)


PARAMETRIC = [(name, k) for name, spec in GATES.items() if spec.kind == "parametric" for k in range(spec.n_params)]


@pytest.mark.parametrize("name,arg", PARAMETRIC, ids=[f"{name}-{k}" for name, k in PARAMETRIC])
def test_each_argument_has_the_period_and_degree_the_landscape_assumes(rng, name, arg):
    """The landscape grid covers [-pi, pi) and refuses a parameter whose cost
    repeats only every 4 pi. Measure each argument's spectrum on the dense
    reference (a cost sampled over 4 pi: odd harmonics are half frequencies)
    and check the table's claim: refused exactly when half frequencies are
    there, and a degree that bounds the highest frequency. cp and cu3's
    phases enter through half-angle rotations but repeat every 2 pi."""
    from qtrain.landscape.grid import check_periods, degrees

    spec, n, samples = GATES[name], 3, 16
    qubits = (2, 0) if spec.n_qubits == 2 else (1,)
    others = rng.uniform(-np.pi, np.pi, size=spec.n_params)
    terms = [(0.7, {0: "Z"}), (-0.4, {1: "X", 2: "Y"}), (0.9, {0: "Y", 2: "X"}), (0.3, {0: "X", 1: "Z", 2: "Z"}), (0.5, {2: "Z"})]
    start = _scrambled(rng, n)

    def cost(a):
        angles = [a if k == arg else float(others[k]) for k in range(spec.n_params)]
        gate = {"name": name, "qubits": qubits, **({"angles": angles} if spec.n_params > 1 else {"angle": a})}
        return reference.expval(reference.run(start + [gate], n), terms)

    spectrum = np.abs(np.fft.rfft([cost(4 * np.pi * j / samples) for j in range(samples)])) / samples  # index m: frequency m / 2
    present = [m for m in range(len(spectrum)) if spectrum[m] > 1e-9]
    has_halves = any(m % 2 for m in present)
    angles = tuple("a" if k == arg else float(others[k]) for k in range(spec.n_params))
    circuit = Circuit(n).add(name, qubits, angles if spec.n_params > 1 else angles[0])
    if has_halves:
        with pytest.raises(ValueError, match="4 pi"):
            check_periods(circuit)
        assert spec.half_angles
    else:
        check_periods(circuit)
        assert max(present) / 2 <= degrees(circuit)[0] and degrees(circuit)[0] == 1  # one gate: degree 1, as measured
        assert max(present) == 2
