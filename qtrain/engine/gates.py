"""The gate table: every gate qtrain knows, as data, plus the few formulas
that turn an angle into a matrix.

Adding a gate means adding one `GateSpec` row here and one parity row in
`tests/test_gates.py`; nothing else in the engine names individual gates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_R = 1 / math.sqrt(2)

#: Pauli matrices by axis letter; the integer axis codes 0, 1, 2 of per-sample
#: rotations index this order.
PAULI_AXES = ("X", "Y", "Z")
PAULI_MATRICES: dict[str, tuple[tuple[complex, ...], ...]] = {
    "I": ((1, 0), (0, 1)),
    "X": ((0, 1), (1, 0)),
    "Y": ((0, -1j), (1j, 0)),
    "Z": ((1, 0), (0, -1)),
}


@dataclass(frozen=True)
class GateSpec:
    """One row of the gate table.

    kind:
      "fixed"           no angle; `matrix` is the gate.
      "rotation"        exp(-i theta G / 2) with the Pauli `generator` G; needs an angle.
      "pauli_rotation"  like "rotation", but the axis is given per sample.
      "unitary"         the user supplies the matrix (shared or per sample).
    """

    name: str
    n_qubits: int
    kind: str
    matrix: tuple[tuple[complex, ...], ...] | None = None
    generator: str | None = None
    diagonal: bool = False

    @property
    def takes_angle(self) -> bool:
        return self.kind in ("rotation", "pauli_rotation")


def _cz() -> tuple[tuple[complex, ...], ...]:
    return tuple(tuple(complex(-1 if i == j == 3 else int(i == j)) for j in range(4)) for i in range(4))


GATES: dict[str, GateSpec] = {
    spec.name: spec
    for spec in (
        GateSpec("rx", 1, "rotation", generator="X"),
        GateSpec("ry", 1, "rotation", generator="Y"),
        GateSpec("rz", 1, "rotation", generator="Z", diagonal=True),
        GateSpec("pauli_rot", 1, "pauli_rotation"),
        GateSpec("h", 1, "fixed", ((_R, _R), (_R, -_R))),
        GateSpec("x", 1, "fixed", PAULI_MATRICES["X"]),
        GateSpec("y", 1, "fixed", PAULI_MATRICES["Y"]),
        GateSpec("z", 1, "fixed", PAULI_MATRICES["Z"], diagonal=True),
        GateSpec("s", 1, "fixed", ((1, 0), (0, 1j)), diagonal=True),
        GateSpec("t", 1, "fixed", ((1, 0), (0, complex(_R, _R))), diagonal=True),
        GateSpec("sx", 1, "fixed", ((0.5 + 0.5j, 0.5 - 0.5j), (0.5 - 0.5j, 0.5 + 0.5j))),
        GateSpec("cz", 2, "fixed", _cz(), diagonal=True),
        GateSpec("cnot", 2, "fixed", ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 0, 1), (0, 0, 1, 0))),
        GateSpec("swap", 2, "fixed", ((1, 0, 0, 0), (0, 0, 1, 0), (0, 1, 0, 0), (0, 0, 0, 1))),
        GateSpec("unitary", 0, "unitary"),  # 1 or 2 qubits, fixed by the matrix
    )
}



def rotation_matrix_fixed(generator: str, angle: float) -> tuple[tuple[complex, ...], ...]:
    """exp(-i angle G / 2) for a Python float angle, in double precision."""
    c, s = math.cos(angle / 2), math.sin(angle / 2)
    g = PAULI_MATRICES[generator]
    return tuple(tuple(c * (i == j) - 1j * s * g[i][j] for j in range(2)) for i in range(2))


def pauli_stack(dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """(3, 2, 2): X, Y, Z in the order of `PAULI_AXES`."""
    return torch.tensor([PAULI_MATRICES[a] for a in PAULI_AXES], dtype=dtype, device=device)
