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
