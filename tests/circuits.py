"""Random test circuits, built once as data and handed both to qtrain and to
the reference simulator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from qtrain import Circuit
from qtrain.engine.gates import GATES
from tests import reference

AXES = "XYZ"
ROTATIONS = ("rx", "ry", "rz", "p", "pauli_rot")
MULTI_ANGLE = ("u3", "rot")  # one-qubit gates of three angles
ROTATIONS_2Q = ("rxx", "ryy", "rzz", "crx", "cry", "crz", "cp", "rzx")
MULTI_ANGLE_2Q = ("cu3", "cu")  # two-qubit gates of three and four angles
FIXED_1Q = ("h", "x", "y", "z", "s", "sdg", "t", "tdg", "sx")
FIXED_2Q = ("cz", "cnot", "swap")


@dataclass
class RandomCircuit:
    circuit: Circuit
    gates: list[dict]  # reference gates; "param" names an entry of theta instead of "angle"; "args" holds names or angles of multi-angle gates
    batch: int

    def reference_states(self, theta: np.ndarray) -> np.ndarray:
        """(B, 2^n) reference states for theta (P,) or (B, P)."""
        theta = np.broadcast_to(np.atleast_2d(theta), (self.batch, self.circuit.n_params))
        index = {name: i for i, name in enumerate(self.circuit.parameters)}
        return np.stack([reference.run(self.sample_gates(b, theta[b], index), self.circuit.n_qubits) for b in range(self.batch)])

    def sample_gates(self, b: int, theta_b: np.ndarray, index: dict[str, int]) -> list[dict]:
        out = []
        for g in self.gates:
            g = dict(g)
            if "param" in g:
                g["angle"] = float(theta_b[index[g.pop("param")]])
            if "args" in g:
                g["angles"] = [float(theta_b[index[a]]) if isinstance(a, str) else a for a in g.pop("args")]
            if "axes" in g:
                g["axis"] = AXES[g.pop("axes")[b]]
            if "matrix" in g and g["matrix"].ndim == 3:
                g["matrix"] = g["matrix"][b]
            out.append(g)
        return out


def random_circuit(
    rng: np.random.Generator, n: int, n_gates: int, batch: int, n_names: int = 3, per_sample: bool = True, kinds: tuple[str, ...] | None = None
) -> RandomCircuit:
    """Every gate kind (or those of `kinds`, drawn with repetition: name a
    kind twice to draw it twice as often), parameters drawn from a small pool
    of names (so they are shared), per-sample axes and unitaries when
    `per_sample` (at least one such gate when batch > 1)."""
    circuit, gates = Circuit(n), []
    if kinds is None:
        kinds = ROTATIONS + MULTI_ANGLE + FIXED_1Q + ("unitary",) + (FIXED_2Q + ROTATIONS_2Q + MULTI_ANGLE_2Q if n > 1 else ())
    for _ in range(n_gates):
        name = str(rng.choice(kinds))
        if name == "pauli_rot" and not per_sample:
            name = "ry"
        width = 2 if name in FIXED_2Q + ROTATIONS_2Q + MULTI_ANGLE_2Q or (name == "unitary" and n > 1 and rng.random() < 0.5) else 1
        qubits = tuple(int(q) for q in rng.choice(n, size=width, replace=False))
        gate = {"name": name, "qubits": qubits}
        if name in MULTI_ANGLE + MULTI_ANGLE_2Q:
            gate["args"] = [f"p{rng.integers(n_names)}" if rng.random() < 0.7 else float(rng.uniform(-np.pi, np.pi)) for _ in range(GATES[name].n_params)]
            circuit.add(name, qubits, tuple(gate["args"]))
        elif name in ROTATIONS + ROTATIONS_2Q:
            shared = rng.random() < 0.7
            gate["param" if shared else "angle"] = f"p{rng.integers(n_names)}" if shared else float(rng.uniform(-np.pi, np.pi))
            angle = gate.get("param", gate.get("angle"))
            if name == "pauli_rot":
                gate["axes"] = rng.integers(3, size=batch)
                circuit.pauli_rot(qubits[0], angle, torch.tensor(gate["axes"]))
            else:
                circuit.add(name, qubits, angle)
        elif name == "unitary":
            count = batch if per_sample and rng.random() < 0.5 else None
            d = 2**width
            m = np.stack([reference.random_unitary(rng, d) for _ in range(count)]) if count else reference.random_unitary(rng, d)
            gate["matrix"] = m
            circuit.unitary(qubits, torch.tensor(m))
        else:
            circuit.add(name, qubits)
        gates.append(gate)
    if per_sample and batch > 1 and not any("axes" in g or ("matrix" in g and g["matrix"].ndim == 3) for g in gates):
        # the batch is of different circuits whatever the draw: tests rely on it (one theta, B states)
        axes = rng.integers(3, size=batch)
        circuit.pauli_rot(0, "p0", torch.tensor(axes))
        gates.append({"name": "pauli_rot", "qubits": (0,), "param": "p0", "axes": axes})
    return RandomCircuit(circuit, gates, batch)


def random_theta(rng: np.random.Generator, circuit: Circuit, batch: int | None) -> np.ndarray:
    shape = (circuit.n_params,) if batch is None else (batch, circuit.n_params)
    return rng.uniform(-np.pi, np.pi, size=shape)
