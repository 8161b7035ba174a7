"""qulacs adapter: C++ statevector simulator, one ParametricQuantumCircuit per random circuit.

qulacs' parametric rotations are exp(+i phi P / 2) (the opposite sign to the
workload's R_P(theta) = exp(-i theta P / 2)), so each circuit stores
phi = -theta and every derivative is negated on the way out.
qulacs indexes qubit j as bit j of the amplitude index (little-endian); the
workload's qubit j is qulacs' qubit j, and <Z0 Z1> does not depend on it.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import check_inputs, mcclean_gates


def _qulacs():
    import qulacs

    return qulacs


class QulacsPeer:
    name = "qulacs"
    mode = (
        "qulacs C++ statevector, complex128 (no single precision in qulacs); "
        "(a) parameter shift on theta_00 (2 forward runs per circuit); "
        "(b) ParametricQuantumCircuit.backprop (adjoint-style reverse pass); Python loop over circuits"
    )

    @staticmethod
    def available() -> bool:
        try:
            _qulacs()
            return True
        except Exception:
            return False

    def __init__(self, axes, angles):
        q = _qulacs()
        axes, angles, n_layers, n, n_samples = check_inputs(axes, angles)
        self.n_qubits, self.n_layers, self.n_samples = n, n_layers, n_samples
        self.circuits = []
        for s in range(n_samples):
            c = q.ParametricQuantumCircuit(n)
            add = (c.add_parametric_RX_gate, c.add_parametric_RY_gate, c.add_parametric_RZ_gate)
            for kind, j, k in mcclean_gates(n, n_layers):
                if kind == "ry":
                    c.add_RotY_gate(j, math.pi / 4)  # RotY is exp(-i angle Y / 2): the fixed R_Y(pi/4)
                elif kind == "rot":
                    add[axes[k // n, j, s]](j, -float(angles[s, k]))
                else:
                    c.add_CZ_gate(j, j + 1)
            self.circuits.append(c)
        self.observable = q.Observable(n)
        self.observable.add_operator(1.0, "Z 0 Z 1")
        self.state = q.QuantumState(n)

    def _energy(self, circuit) -> float:
        self.state.set_zero_state()
        circuit.update_quantum_state(self.state)
        return self.observable.get_expectation_value(self.state).real

    def grad_first(self) -> np.ndarray:
        out = np.empty(self.n_samples)
        half_pi = math.pi / 2
        for s, c in enumerate(self.circuits):
            phi = c.get_parameter(0)
            try:
                c.set_parameter(0, phi + half_pi)
                plus = self._energy(c)
                c.set_parameter(0, phi - half_pi)
                minus = self._energy(c)
            finally:
                c.set_parameter(0, phi)
            out[s] = -(plus - minus) / 2  # d/dtheta = -d/dphi
        return out

    def grad_all(self) -> np.ndarray:
        out = np.empty((self.n_samples, self.n_qubits * self.n_layers))
        for s, c in enumerate(self.circuits):
            out[s] = c.backprop(self.observable)
        return -out


# ---- noisy circuits (experiments/benchmarks/noise.py) ------------------------------------------


def noisy_parametric_circuit(n_qubits: int, gates, depolarizing: float):
    """A qulacs ParametricQuantumCircuit of `gates` ("ry" | "rz", qubit, parameter index) and
    ("cnot", control, target), parameter indices 0, 1, 2, ... in order of appearance, with
    DepolarizingNoise(q, p) after every gate on each of its qubits (qulacs' depolarizing noise
    applies X, Y, Z with probability p/3 each: rho -> (1-p) rho + p/3 sum_P P rho P).
    Parametric rotations are exp(+i phi P / 2): set phi = -theta (`set_angles`).
    On a DensityMatrix the noise acts as the channel; on a QuantumState it samples one Pauli."""
    q = _qulacs()
    circuit = q.ParametricQuantumCircuit(n_qubits)
    for kind, a, b in gates:
        if kind == "cnot":
            circuit.add_CNOT_gate(a, b)
            qubits = (a, b)
        elif kind in ("ry", "rz"):
            (circuit.add_parametric_RY_gate if kind == "ry" else circuit.add_parametric_RZ_gate)(a, 0.0)
            qubits = (a,)
        else:
            raise ValueError(f"unknown gate kind {kind!r}")
        if depolarizing > 0:
            for qubit in qubits:
                circuit.add_gate(q.gate.DepolarizingNoise(qubit, depolarizing))
    return circuit


def set_angles(circuit, theta) -> None:
    """Parameter k of `circuit` (see `noisy_parametric_circuit`) to R(theta[k]) = exp(-i theta[k] P / 2)."""
    for k, angle in enumerate(theta):
        circuit.set_parameter(k, -float(angle))


def zz_observable(n_qubits: int, a: int, b: int):
    """The qulacs Observable Z_a Z_b."""
    obs = _qulacs().Observable(n_qubits)
    obs.add_operator(1.0, f"Z {a} Z {b}")
    return obs


def density_value_and_shift_grad(circuit, observable, theta: np.ndarray, n_qubits: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact noisy values (B,) and gradients (B, P) on a qulacs DensityMatrix: per row one run for the
    value and 2 P runs for the two-term parameter-shift rule (every rotation its own parameter, Pauli
    generator), each a full qulacs density-matrix simulation. theta: (B, P) float64."""
    rho = _qulacs().DensityMatrix(n_qubits)
    batch, n_params = theta.shape
    values, grads = np.empty(batch), np.empty((batch, n_params))

    def energy() -> float:
        rho.set_zero_state()
        circuit.update_quantum_state(rho)
        return observable.get_expectation_value(rho).real

    half_pi = math.pi / 2
    for i, row in enumerate(theta):
        set_angles(circuit, row)
        values[i] = energy()
        for k in range(n_params):
            circuit.set_parameter(k, -(float(row[k]) + half_pi))
            plus = energy()
            circuit.set_parameter(k, -(float(row[k]) - half_pi))
            minus = energy()
            circuit.set_parameter(k, -float(row[k]))
            grads[i, k] = (plus - minus) / 2
    return values, grads


def trajectory_values_loop(circuit, observable, n_qubits: int, trajectories: int) -> np.ndarray:
    """Per-trajectory values (T,): T runs of `circuit` (angles already set) on a QuantumState from
    |0...0>, each DepolarizingNoise gate drawing its Pauli anew (qulacs' own random generator)."""
    state = _qulacs().QuantumState(n_qubits)
    out = np.empty(trajectories)
    for t in range(trajectories):
        state.set_zero_state()
        circuit.update_quantum_state(state)
        out[t] = observable.get_expectation_value(state).real
    return out


def noise_simulator_values(circuit, observable, n_qubits: int, trajectories: int) -> np.ndarray:
    """Per-trajectory values (T,) from qulacs' NoiseSimulator.execute_and_get_result(T): it draws the
    T trajectories' noise first and simulates each distinct one once, returning (state, count)
    pairs; the values are repeated by count. `circuit`: as for `trajectory_values_loop`."""
    q = _qulacs()
    initial = q.QuantumState(n_qubits)
    initial.set_zero_state()
    result = q.NoiseSimulator(circuit, initial).execute_and_get_result(trajectories)
    values, counts = [], []
    for i in range(result.get_count()):
        values.append(observable.get_expectation_value(result.get_state(i)).real)
        counts.append(result.get_frequency(i))  # an int: how many of the T trajectories
    return np.repeat(np.asarray(values), np.asarray(counts, dtype=np.int64))
