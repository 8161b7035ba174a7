"""A dense NumPy complex128 simulator: the independent oracle for the engine.

It shares no code with qtrain. Gates are built from their definitions
(rotations by diagonalizing the generator), lifted to the full 2^n x 2^n
space by explicit index arithmetic, and applied as dense matrices. Slow and
obviously right, for n <= 6.

A gate is a dict: {"name", "qubits", "angle" (float), "angles" (floats, for
u3, rot, cu3 and cu), "axis" ('X'|'Y'|'Z'), "matrix" (ndarray)}; only the keys a gate
needs are read.
"""

from __future__ import annotations

import numpy as np

PAULI = {
    "I": np.eye(2, dtype=complex),
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "Z": np.array([[1, 0], [0, -1]], dtype=complex),
}

FIXED = {
    "h": np.array([[1, 1], [1, -1]], dtype=complex) / np.sqrt(2),
    "x": PAULI["X"],
    "y": PAULI["Y"],
    "z": PAULI["Z"],
    "s": np.diag([1, 1j]),
    "t": np.diag([1, np.exp(1j * np.pi / 4)]),
    "sdg": np.diag([1, -1j]),
    "tdg": np.diag([1, np.exp(-1j * np.pi / 4)]),
    "cz": np.diag([1, 1, 1, -1]).astype(complex),
    "cnot": np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=complex),
    "swap": np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=complex),
}


def sqrt_x() -> np.ndarray:
    """The principal square root of X, from its eigendecomposition."""
    w, v = np.linalg.eigh(PAULI["X"])
    return v @ np.diag(np.sqrt(w.astype(complex))) @ v.conj().T


FIXED["sx"] = sqrt_x()


def rotation(axis: str, angle: float) -> np.ndarray:
    """exp(-i angle P / 2), computed by diagonalizing P."""
    w, v = np.linalg.eigh(PAULI[axis])
    return v @ np.diag(np.exp(-0.5j * angle * w)) @ v.conj().T


def two_qubit_rotation(axis: str, angle: float, second: str | None = None) -> np.ndarray:
    """exp(-i angle P (x) Q / 2), Q = P unless `second` names it, by diagonalizing P (x) Q."""
    w, v = np.linalg.eigh(np.kron(PAULI[axis], PAULI[second or axis]))
    return v @ np.diag(np.exp(-0.5j * angle * w)) @ v.conj().T


def controlled(u: np.ndarray) -> np.ndarray:
    """|0><0| (x) I + |1><1| (x) u: the control is the first qubit."""
    out = np.eye(4, dtype=complex)
    out[2:, 2:] = u
    return out


def u3(theta: float, phi: float, lam: float) -> np.ndarray:
    """Qiskit's U3Gate / OpenQASM 2's u3, from its defining matrix."""
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    return np.array([[c, -np.exp(1j * lam) * s], [np.exp(1j * phi) * s, np.exp(1j * (phi + lam)) * c]])


def gate_matrix(gate: dict) -> np.ndarray:
    name = gate["name"]
    if name in FIXED:
        return FIXED[name]
    if name in ("rx", "ry", "rz"):
        return rotation(name[1].upper(), gate["angle"])
    if name in ("rxx", "ryy", "rzz"):
        return two_qubit_rotation(name[1].upper(), gate["angle"])
    if name in ("crx", "cry", "crz"):
        return controlled(rotation(name[2].upper(), gate["angle"]))
    if name == "p":
        return np.diag([1, np.exp(1j * gate["angle"])])
    if name == "u3":
        return u3(*gate["angles"])
    if name == "cp":  # OpenQASM 2's cu1
        return controlled(np.diag([1, np.exp(1j * gate["angle"])]))
    if name == "cu3":
        return controlled(u3(*gate["angles"]))
    if name == "cu":  # Qiskit's CUGate: the extra phase e^{i gamma} on the control's |1> branch
        theta, phi, lam, gamma = gate["angles"]
        return controlled(np.exp(1j * gamma) * u3(theta, phi, lam))
    if name == "rzx":  # Qiskit's RZXGate: Z on the first qubit
        return two_qubit_rotation("Z", gate["angle"], "X")
    if name == "rot":  # PennyLane's Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi)
        phi, theta, omega = gate["angles"]
        return rotation("Z", omega) @ rotation("Y", theta) @ rotation("Z", phi)
    if name == "pauli_rot":
        return rotation(gate["axis"], gate["angle"])
    if name == "unitary":
        return np.asarray(gate["matrix"], dtype=complex)
    raise KeyError(name)


def embed(u: np.ndarray, qubits: tuple[int, ...], n: int) -> np.ndarray:
    """The 2^n x 2^n operator acting as `u` on `qubits` (qubit 0 = most significant bit)."""
    k = len(qubits)
    full = np.zeros((2**n, 2**n), dtype=complex)
    for col in range(2**n):
        bits = [(col >> (n - 1 - q)) & 1 for q in range(n)]
        sub_in = sum(bits[q] << (k - 1 - j) for j, q in enumerate(qubits))
        for sub_out in range(2**k):
            out_bits = list(bits)
            for j, q in enumerate(qubits):
                out_bits[q] = (sub_out >> (k - 1 - j)) & 1
            row = sum(b << (n - 1 - q) for q, b in enumerate(out_bits))
            full[row, col] += u[sub_out, sub_in]
    return full


def run(gates: list[dict], n: int) -> np.ndarray:
    """The final state vector (2^n,) from |0...0>."""
    state = np.zeros(2**n, dtype=complex)
    state[0] = 1
    for gate in gates:
        state = embed(gate_matrix(gate), tuple(gate["qubits"]), n) @ state
    return state


def pauli_string(factors: dict[int, str], n: int) -> np.ndarray:
    """Dense matrix of a Pauli string {qubit: 'X'|'Y'|'Z'} by Kronecker products."""
    out = np.ones((1, 1), dtype=complex)
    for q in range(n):
        out = np.kron(out, PAULI[factors.get(q, "I")])
    return out


def expval(state: np.ndarray, terms: list[tuple[float, dict[int, str]]]) -> float:
    """<psi| sum_i c_i P_i |psi> with a dense Hamiltonian."""
    n = int(np.log2(state.size))
    h = sum(c * pauli_string(f, n) for c, f in terms)
    return float(np.real(state.conj() @ h @ state))


def random_unitary(rng: np.random.Generator, d: int) -> np.ndarray:
    """Haar-random d x d unitary (QR of a complex Gaussian, phases fixed)."""
    z = (rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))) / np.sqrt(2)
    q, r = np.linalg.qr(z)
    return q * (np.diag(r) / np.abs(np.diag(r)))
