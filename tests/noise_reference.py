"""A dense NumPy density-matrix simulator with Kraus noise: the independent
oracle for qtrain's noisy circuits. It imports nothing from qtrain.

State: rho, a (2^n, 2^n) complex128 matrix, qubit 0 = the most significant
bit, starting at |0...0><0...0|. Every operator (gate or Kraus operator) is
lifted to the full space by Kronecker products and applied densely:
rho -> U rho U^dagger for a gate, rho -> sum_k K rho K^dagger for a channel.

Noise conventions (what qtrain's `NoiseModel` promises):

- A channel acts after EVERY gate as the user added it (one u3, rot or crx is
  one gate; fixed gates such as h, cz, cnot too), on each of the gate's qubits
  in turn, in the gate's qubit order, and on each qubit the single-qubit
  channels in the order amplitude damping, phase damping, bit flip, phase
  flip, depolarizing.
- Kraus operators:
    amplitude damping g: K0 = diag(1, sqrt(1-g)), K1 = sqrt(g) |0><1|
    phase damping l:     K0 = diag(1, sqrt(1-l)), K1 = sqrt(l) |1><1|
    bit flip p:          sqrt(1-p) I, sqrt(p) X
    phase flip p:        sqrt(1-p) I, sqrt(p) Z
    depolarizing p:      rho -> (1-p) rho + p/3 (X rho X + Y rho Y + Z rho Z)
- A rate is a float (after every gate, on every qubit of it), a mapping by
  gate name {"cz": 0.02} (after gates of that name only) or by qubit
  {0: 0.01} (after any gate, on that qubit only); what a mapping does not
  name gets 0.
- Readout error r (a float or a mapping by qubit): a Pauli term scales by
  prod over its qubits of (1 - 2 r_q), X, Y and Z alike.

A gate is (name, qubits, angles): angles a tuple of floats (empty for fixed
gates). An observable is a string such as "Z0 Z1 + 0.5 X2 - 0.3*Y0 Z2" or a
list of (coeff, {qubit: 'X'|'Y'|'Z'}).
"""

from __future__ import annotations

import re

import numpy as np

CHANNEL_ORDER = ("amplitude_damping", "phase_damping", "bit_flip", "phase_flip", "depolarizing")

I2 = np.eye(2, dtype=complex)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
Z = np.array([[1, 0], [0, -1]], dtype=complex)
PAULI = {"I": I2, "X": X, "Y": Y, "Z": Z}


# ---- gates ------------------------------------------------------------------------------


def r(pauli: np.ndarray, a: float) -> np.ndarray:
    """exp(-i a P / 2) = cos(a/2) I - i sin(a/2) P for a Pauli P."""
    return np.cos(a / 2) * I2 - 1j * np.sin(a / 2) * pauli


def phase(a: float) -> np.ndarray:
    return np.diag([1, np.exp(1j * a)])


def controlled(u: np.ndarray) -> np.ndarray:
    """|0><0| (x) I + |1><1| (x) u, control first."""
    p0, p1 = np.diag([1, 0]).astype(complex), np.diag([0, 1]).astype(complex)
    return np.kron(p0, I2) + np.kron(p1, u)


FIXED = {
    "h": np.array([[1, 1], [1, -1]], dtype=complex) / np.sqrt(2),
    "x": X,
    "y": Y,
    "z": Z,
    "s": np.diag([1, 1j]),
    "cz": np.diag([1, 1, 1, -1]).astype(complex),
    "cnot": controlled(X),
    "swap": np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=complex),
}


def gate_matrix(name: str, angles: tuple[float, ...] = ()) -> np.ndarray:
    if name in FIXED:
        return FIXED[name]
    if name in ("rx", "ry", "rz"):
        return r(PAULI[name[1].upper()], angles[0])
    if name in ("crx", "cry", "crz"):
        return controlled(r(PAULI[name[2].upper()], angles[0]))
    if name == "p":
        return phase(angles[0])
    if name == "rzz":
        a = angles[0]
        return np.cos(a / 2) * np.eye(4) - 1j * np.sin(a / 2) * np.kron(Z, Z)
    if name == "u3":  # P(phi) R_Y(theta) P(lam)
        theta, phi, lam = angles
        return phase(phi) @ r(Y, theta) @ phase(lam)
    if name == "rot":  # Rot(phi, theta, omega) = R_Z(omega) R_Y(theta) R_Z(phi)
        phi, theta, omega = angles
        return r(Z, omega) @ r(Y, theta) @ r(Z, phi)
    raise KeyError(name)


def embed(u: np.ndarray, qubits: tuple[int, ...], n: int) -> np.ndarray:
    """The 2^n x 2^n operator acting as `u` on `qubits` (in that order; qubit 0 =
    most significant bit): u = sum u[a, b] |a><b|, and |a><b| on k qubits is the
    Kronecker product of the one-qubit |a_j><b_j| placed at qubits[j]."""
    k = len(qubits)
    full = np.zeros((2**n, 2**n), dtype=complex)
    for a in range(2**k):
        for b in range(2**k):
            if u[a, b] == 0:
                continue
            factors = [I2] * n
            for j, q in enumerate(qubits):
                e = np.zeros((2, 2), dtype=complex)
                e[(a >> (k - 1 - j)) & 1, (b >> (k - 1 - j)) & 1] = 1
                factors[q] = e
            term = np.ones((1, 1), dtype=complex)
            for f in factors:
                term = np.kron(term, f)
            full += u[a, b] * term
    return full


# ---- channels -----------------------------------------------------------------------------


def kraus(name: str, p: float) -> list[np.ndarray]:
    if name == "amplitude_damping":
        return [np.diag([1, np.sqrt(1 - p)]).astype(complex), np.sqrt(p) * np.array([[0, 1], [0, 0]], dtype=complex)]
    if name == "phase_damping":
        return [np.diag([1, np.sqrt(1 - p)]).astype(complex), np.sqrt(p) * np.array([[0, 0], [0, 1]], dtype=complex)]
    if name == "bit_flip":
        return [np.sqrt(1 - p) * I2, np.sqrt(p) * X]
    if name == "phase_flip":
        return [np.sqrt(1 - p) * I2, np.sqrt(p) * Z]
    if name == "depolarizing":
        return [np.sqrt(1 - p) * I2] + [np.sqrt(p / 3) * P for P in (X, Y, Z)]
    raise KeyError(name)


def rate(spec, gate: str | None, qubit: int) -> float:
    """A rate given as a float, a {gate name: rate} or a {qubit: rate} mapping."""
    if not isinstance(spec, dict):
        return float(spec)
    if any(isinstance(key, str) for key in spec):
        return float(spec.get(gate, 0.0))
    return float(spec.get(qubit, 0.0))


def apply_channel(rho: np.ndarray, ops: list[np.ndarray], qubit: int, n: int) -> np.ndarray:
    full = [embed(k, (qubit,), n) for k in ops]
    return sum(k @ rho @ k.conj().T for k in full)


# ---- running --------------------------------------------------------------------------------


def density_matrix(gates: list[tuple[str, tuple[int, ...], tuple[float, ...]]], n: int, noise: dict | None = None) -> np.ndarray:
    """Final rho of `gates` from |0...0>, with the channels of `noise` (a dict of
    channel name -> rate spec; missing channels 0) after every gate."""
    noise = noise or {}
    rho = np.zeros((2**n, 2**n), dtype=complex)
    rho[0, 0] = 1
    for name, qubits, angles in gates:
        u = embed(gate_matrix(name, tuple(angles)), tuple(qubits), n)
        rho = u @ rho @ u.conj().T
        for q in qubits:
            for channel in CHANNEL_ORDER:
                p = rate(noise.get(channel, 0.0), name, q)
                if p > 0:
                    rho = apply_channel(rho, kraus(channel, p), q, n)
    return rho


_TERM = re.compile(r"\s*([+-])?\s*(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)?\s*\*?\s*((?:[XYZ]\d+\s*)*)")


def parse(text: str) -> list[tuple[float, dict[int, str]]]:
    """ "Z0 Z1 + 0.5 X2 - 0.3*Y0 Z2" -> [(1.0, {0: 'Z', 1: 'Z'}), (0.5, {2: 'X'}), (-0.3, {0: 'Y', 2: 'Z'})]."""
    terms, pos = [], 0
    while pos < len(text):
        m = _TERM.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"cannot parse {text[pos:]!r}")
        sign, coeff, body = m.groups()
        factors = {int(q): p for p, q in re.findall(r"([XYZ])(\d+)", body)}
        terms.append(((-1.0 if sign == "-" else 1.0) * float(coeff or 1.0), factors))
        pos = m.end()
    return terms


def pauli_string(factors: dict[int, str], n: int) -> np.ndarray:
    out = np.ones((1, 1), dtype=complex)
    for q in range(n):
        out = np.kron(out, PAULI[factors.get(q, "I")])
    return out


def expval(rho: np.ndarray, observable, readout=0.0) -> float:
    """Tr(H rho), each term scaled by prod over its qubits of (1 - 2 r_q)."""
    n = int(np.log2(rho.shape[0]))
    terms = parse(observable) if isinstance(observable, str) else observable
    total = 0.0
    for coeff, factors in terms:
        scale = np.prod([1 - 2 * rate(readout, None, q) for q in factors])
        total += coeff * scale * np.real(np.trace(pauli_string(factors, n) @ rho))
    return float(total)


def bind(circuit: list[tuple[str, tuple[int, ...], tuple]], theta: np.ndarray) -> list[tuple[str, tuple[int, ...], tuple[float, ...]]]:
    """Resolve a circuit whose angles are floats or parameter names (numbered in
    order of first use) against one row of theta."""
    names = parameter_names(circuit)
    return [(name, q, tuple(theta[names.index(a)] if isinstance(a, str) else float(a) for a in args)) for name, q, args in circuit]


def parameter_names(circuit) -> list[str]:
    names: list[str] = []
    for _, _, args in circuit:
        for a in args:
            if isinstance(a, str) and a not in names:
                names.append(a)
    return names


def noisy_expval(circuit, theta: np.ndarray, n: int, observable, noise: dict | None = None) -> float:
    """The whole pipeline for one theta row: noise may hold a "readout" entry."""
    noise = dict(noise or {})
    readout = noise.pop("readout", 0.0)
    return expval(density_matrix(bind(circuit, theta), n, noise), observable, readout)


def finite_difference_grad(circuit, theta: np.ndarray, n: int, observable, noise: dict | None = None, step: float = 1e-6) -> np.ndarray:
    grad = np.zeros(len(theta))
    for i in range(len(theta)):
        plus, minus = theta.copy(), theta.copy()
        plus[i] += step
        minus[i] -= step
        grad[i] = (noisy_expval(circuit, plus, n, observable, noise) - noisy_expval(circuit, minus, n, observable, noise)) / (2 * step)
    return grad
