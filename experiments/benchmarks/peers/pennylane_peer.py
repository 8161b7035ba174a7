"""PennyLane adapter: lightning.qubit (C++ kernels), adjoint differentiation, complex64.

One QuantumScript (tape) per random circuit is built at setup and run through
the device's own preprocessing; the timed calls hand the whole batch of tapes
to ``device.compute_derivatives`` with gradient_method="adjoint" (the device
API a QNode ends in, without the QNode/interface overhead per call). The
fixed R_Y(pi/4) parameters are excluded from trainable_params.
PennyLane's wire 0 is the most significant bit of the amplitude index; wires
are labels here, so the workload's qubit j is wire j.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import check_inputs, mcclean_gates


def _qml():
    import pennylane as qml

    return qml


class PennyLanePeer:
    name = "pennylane"
    mode = (
        "PennyLane lightning.qubit, c_dtype=complex64, diff_method adjoint via device.compute_derivatives "
        "on a batch of pre-built tapes; (a) adjoint with only theta_00 trainable; (b) adjoint over all n*L angles"
    )

    @staticmethod
    def available() -> bool:
        try:
            qml = _qml()
            qml.device("lightning.qubit", wires=1)
            return True
        except Exception:
            return False

    def __init__(self, axes, angles):
        qml = _qml()
        from pennylane.devices import ExecutionConfig

        axes, angles, n_layers, n, n_samples = check_inputs(axes, angles)
        self.n_qubits, self.n_layers, self.n_samples = n, n_layers, n_samples
        self.device = qml.device("lightning.qubit", wires=n, c_dtype=np.complex64)
        self.config = self.device.setup_execution_config(ExecutionConfig(gradient_method="adjoint"))
        program = self.device.preprocess_transforms(self.config)
        rot = (qml.RX, qml.RY, qml.RZ)
        tapes = []
        for s in range(n_samples):
            ops = []
            for kind, j, k in mcclean_gates(n, n_layers):
                if kind == "ry":
                    ops.append(qml.RY(math.pi / 4, wires=j))
                elif kind == "rot":
                    ops.append(rot[axes[k // n, j, s]](float(angles[s, k]), wires=j))
                else:
                    ops.append(qml.CZ(wires=[j, j + 1]))
            tapes.append(qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0) @ qml.Z(1))]))
        tapes, _ = program(tapes)
        if len(tapes) != n_samples:
            raise RuntimeError(f"lightning.qubit preprocessing split the {n_samples} tapes into {len(tapes)}")
        # parameters 0..n-1 are the fixed R_Y(pi/4); n + l*n + j is angles[s, l*n + j]
        self.tapes_all = [t.copy() for t in tapes]
        self.tapes_first = [t.copy() for t in tapes]
        for t in self.tapes_all:
            t.trainable_params = list(range(n, n + n * n_layers))
        for t in self.tapes_first:
            t.trainable_params = [n]

    def grad_first(self) -> np.ndarray:
        jac = self.device.compute_derivatives(self.tapes_first, self.config)
        return np.array([float(np.asarray(j).reshape(-1)[0]) for j in jac], dtype=np.float64)

    def grad_all(self) -> np.ndarray:
        jac = self.device.compute_derivatives(self.tapes_all, self.config)
        return np.stack([np.asarray(j, dtype=np.float64).reshape(-1) for j in jac])


# ---- noisy circuits (experiments/benchmarks/noise.py) ------------------------------------------


def noisy_mixed_tape(n_qubits: int, gates, angles, depolarizing: float, observable_wires: tuple[int, int]):
    """A tape of `gates` ("ry" | "rz", qubit, parameter index) and ("cnot", control, target) with
    qml.DepolarizingChannel(p) after every gate on each of its qubits (the same channel as qtrain's
    and qulacs': rho -> (1-p) rho + p/3 sum_P P rho P), measuring <Z_a Z_b>. angles[k] is
    parameter k: a number, or a (B,) tensor for a broadcast tape (torch tensors keep autograd).
    PennyLane's RY, RZ are exp(-i theta P / 2), as qtrain's; wire q is qubit q."""
    qml = _qml()
    ops = []
    for kind, a, b in gates:
        if kind == "cnot":
            ops.append(qml.CNOT(wires=[a, b]))
            qubits = (a, b)
        elif kind in ("ry", "rz"):
            ops.append((qml.RY if kind == "ry" else qml.RZ)(angles[b], wires=a))
            qubits = (a,)
        else:
            raise ValueError(f"unknown gate kind {kind!r}")
        if depolarizing > 0:
            ops += [qml.DepolarizingChannel(depolarizing, wires=q) for q in qubits]
    a, b = observable_wires
    return qml.tape.QuantumScript(ops, [qml.expval(qml.Z(a) @ qml.Z(b))])
