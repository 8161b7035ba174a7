"""The gate table: every gate qtrain knows, as data, plus the few formulas
that turn an angle into a matrix.

Adding a gate means adding one `GateSpec` row here and one parity row in
`tests/test_gates.py`; nothing else in the engine names individual gates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import torch

__all__ = [
    "DIAGONAL_GENERATORS",
    "Fixed",
    "GATES",
    "GateKind",
    "GateSpec",
    "GENERATORS",
    "PAULI_AXES",
    "PAULI_MATRICES",
    "pauli_stack",
    "Rotation",
    "rotation_matrix_fixed",
]

_R = 1 / math.sqrt(2)

#: Pauli matrices by axis letter; the integer axis codes 0, 1, 2 of per-sample
#: rotations index this order.
PAULI_AXES = ("X", "Y", "Z")
#: The 2x2 matrices of I, X, Y, Z, by letter, as nested tuples (exact, dtype-free).
PAULI_MATRICES: dict[str, tuple[tuple[complex, ...], ...]] = {
    "I": ((1, 0), (0, 1)),
    "X": ((0, 1), (1, 0)),
    "Y": ((0, -1j), (1j, 0)),
    "Z": ((1, 0), (0, -1)),
}


@dataclass(frozen=True)
class Rotation:
    """One factor exp(-i scale * a * G / 2) of a parametric gate: the gate's
    argument number `arg` (a), a generator G on the gate's own qubit number
    `qubit`. G is a Pauli axis "X", "Y", "Z", or "phase" (-I, so the factor
    is the phase e^{i a / 2}: U3's and the phase gate's exact global phase)."""

    generator: str
    qubit: int = 0
    arg: int = 0
    scale: float = 1.0
    #: the frequency this factor adds to its argument's degree when the
    #: gate's factors of one argument together have a narrower spectrum than
    #: the sum of their |scale|s (cp: three rotations of a/2 whose generators
    #: add up to the projector |11><11|, of eigenvalues 0 and 1, so cp has
    #: degree 1 and period 2 pi); None: |scale|, or 0 for the global phase.
    frequency: float | None = None

    @property
    def cost_frequency(self) -> float:
        """The highest frequency this factor adds to a cost as a function of its argument."""
        if self.frequency is not None:
            return self.frequency
        return 0.0 if self.generator == "phase" else abs(self.scale)


@dataclass(frozen=True)
class Fixed:
    """A constant gate of the table applied to the gate's own qubits `qubits`."""

    name: str
    qubits: tuple[int, ...]


class GateKind(str, Enum):
    """How a gate of the table becomes engine steps (see `GateSpec` and `qtrain._lowering`). A str enum,
    so the table's rows may spell a kind as its string; `GateSpec` turns it into the member."""

    FIXED = "fixed"
    PARAMETRIC = "parametric"
    PAULI_ROTATION = "pauli_rotation"
    UNITARY = "unitary"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class GateSpec:
    """One row of the gate table.

    kind:
      "fixed"           no angle; `matrix` is the gate.
      "parametric"      a matrix that is a function of `n_params` angles,
                        written as its `recipe`: one-qubit rotations of the
                        arguments (`Rotation`) and constant gates (`Fixed`),
                        in the order they apply. The engine runs the recipe,
                        so sharing, the adjoint, the light cone and fusion
                        work for every such gate, and a parameter's
                        frequencies follow from its rotations' scales (or
                        their `frequency`, where those overstate them).
      "pauli_rotation"  exp(-i theta P / 2) with the Pauli axis P given per sample.
      "unitary"         the user supplies the matrix (shared or per sample).

    """

    name: str
    n_qubits: int
    kind: GateKind | str
    matrix: tuple[tuple[complex, ...], ...] | None = None
    recipe: tuple[Rotation | Fixed, ...] = ()
    n_params: int = 0
    diagonal: bool = False

    def __post_init__(self) -> None:
        try:  # a row with a kind the engine cannot lower fails when the table is built, naming it
            object.__setattr__(self, "kind", GateKind(self.kind))
        except ValueError:
            known = [str(k) for k in GateKind]
            raise ValueError(f"gate {self.name!r}: unknown gate kind {self.kind!r} (known: {known})") from None

    @property
    def takes_angle(self) -> bool:
        return self.n_params > 0

    @property
    def half_angles(self) -> bool:
        """Whether an argument enters at half its value (controlled rotations):
        then a cost has frequencies 1/2 and 1 in it, repeats only every 4 pi,
        and the two-term parameter shift is not its derivative. Otherwise
        every argument has frequencies {0, 1}, and (E(a + pi/2) - E(a - pi/2)) / 2 is
        (cp's and cu3's phase arguments enter at half scale but with frequencies {0, 1})."""
        return any(isinstance(part, Rotation) and part.cost_frequency != int(part.cost_frequency) for part in self.recipe)

    @property
    def generator(self) -> str | None:
        """The Pauli axis of a one-rotation gate (rx, ry, rz), else None."""
        if len(self.recipe) == 1 and isinstance(self.recipe[0], Rotation) and self.recipe[0].scale == 1:
            return self.recipe[0].generator
        return None


def _cz() -> tuple[tuple[complex, ...], ...]:
    return tuple(tuple(complex(-1 if i == j == 3 else int(i == j)) for j in range(4)) for i in range(4))


def _rotation(name: str, axis: str) -> GateSpec:
    return GateSpec(name, 1, "parametric", recipe=(Rotation(axis),), n_params=1, diagonal=axis == "Z")


def _controlled(name: str, axis: str) -> GateSpec:
    return GateSpec(name, 2, "parametric", recipe=_controlled_rotation(axis, 0), n_params=1, diagonal=axis == "Z")


def _controlled_rotation(axis: str, arg: int) -> tuple[Rotation | Fixed, ...]:
    """C-R_P(a) = R_P(a/2) on the target, then the target flipped against P
    when the control is 1 (CNOT for Y and Z, CZ for X: it anticommutes with
    P), R_P(-a/2), the flip again: the halves cancel for control 0 and add
    for control 1."""
    flip = Fixed("cz" if axis == "X" else "cnot", (0, 1))
    return (Rotation(axis, 1, arg, 0.5), flip, Rotation(axis, 1, arg, -0.5), flip)


def _controlled_phase(arg: int) -> tuple[Rotation | Fixed, ...]:
    """CP(a) = diag(1, 1, 1, e^{i a}) = exp(i a |11><11|), and |11><11| = (I - Z_0 - Z_1 + Z_0 Z_1) / 4:
    the phase e^{i a/4}, R_Z(a/2) on each qubit, R_ZZ(-a/2) (a CNOT maps Z_1 to Z_0 Z_1). Its
    generator has eigenvalues 0 and 1 only, so the three half-angle rotations add up to degree 1:
    the first carries it (`Rotation.frequency`), and a cost in a repeats every 2 pi."""
    return (
        Rotation("phase", 0, arg, 0.5), Rotation("Z", 0, arg, 0.5, frequency=1.0), Rotation("Z", 1, arg, 0.5, frequency=0.0),
        Fixed("cnot", (0, 1)), Rotation("Z", 1, arg, -0.5, frequency=0.0), Fixed("cnot", (0, 1)),
    )


#: CU3(t, p, l) = |0><0| (x) I + |1><1| (x) u3(t, p, l), u3 = P(p) R_Y(t) P(l): the controlled factors in
#: their order, CP(l), C-R_Y(t), CP(p) (a controlled product is the product of the controlled factors).
_CU3 = (*_controlled_phase(2), *_controlled_rotation("Y", 0), *_controlled_phase(1))


#: P(a) = diag(1, e^{i a}) = e^{i a/2} R_Z(a): the phase gate as two rotations of one argument.
def _phase(arg: int) -> tuple[Rotation, ...]:
    return (Rotation("phase", 0, arg), Rotation("Z", 0, arg))


#: Every gate qtrain knows, by name: what `Circuit.add` accepts and what each shortcut method appends.
GATES: dict[str, GateSpec] = {
    spec.name: spec
    for spec in (
        _rotation("rx", "X"),
        _rotation("ry", "Y"),
        _rotation("rz", "Z"),
        GateSpec("p", 1, "parametric", recipe=_phase(0), n_params=1, diagonal=True),
        # exp(-i a P P / 2): a CNOT maps Z_1 to Z_0 Z_1 and X_0 to X_0 X_1; S S maps X X to Y Y
        GateSpec("rzz", 2, "parametric", recipe=(Fixed("cnot", (0, 1)), Rotation("Z", 1), Fixed("cnot", (0, 1))), n_params=1, diagonal=True),
        GateSpec("rxx", 2, "parametric", recipe=(Fixed("cnot", (0, 1)), Rotation("X", 0), Fixed("cnot", (0, 1))), n_params=1),
        GateSpec(
            "ryy", 2, "parametric", n_params=1,
            recipe=(Fixed("sdg", (0,)), Fixed("sdg", (1,)), Fixed("cnot", (0, 1)), Rotation("X", 0), Fixed("cnot", (0, 1)), Fixed("s", (0,)), Fixed("s", (1,))),
        ),
        _controlled("crx", "X"),
        _controlled("cry", "Y"),
        _controlled("crz", "Z"),
        # u3(t, p, l) = P(p) R_Y(t) P(l) exactly (Qiskit's U3Gate, OpenQASM 2's u3)
        GateSpec("u3", 1, "parametric", recipe=(*_phase(2), Rotation("Y", 0, 0), *_phase(1)), n_params=3),
        GateSpec("cp", 2, "parametric", recipe=_controlled_phase(0), n_params=1, diagonal=True),  # OpenQASM 2's cu1
        GateSpec("cu3", 2, "parametric", recipe=_CU3, n_params=3),  # Qiskit's CU3Gate, control first
        # Qiskit's CUGate: CU3(t, p, l) and the phase e^{i g} on the control's |1> branch, P(g) on the control
        GateSpec("cu", 2, "parametric", recipe=(*_CU3, *_phase(3)), n_params=4),
        # exp(-i a Z (x) X / 2), Qiskit's RZXGate, Z on the first qubit: a CZ maps X_1 to Z_0 X_1
        GateSpec("rzx", 2, "parametric", recipe=(Fixed("cz", (0, 1)), Rotation("X", 1), Fixed("cz", (0, 1))), n_params=1),
        # PennyLane's Rot(phi, theta, omega) = R_Z(omega) R_Y(theta) R_Z(phi)
        GateSpec("rot", 1, "parametric", recipe=(Rotation("Z", 0, 0), Rotation("Y", 0, 1), Rotation("Z", 0, 2)), n_params=3),
        GateSpec("pauli_rot", 1, "pauli_rotation", n_params=1),
        GateSpec("h", 1, "fixed", ((_R, _R), (_R, -_R))),
        GateSpec("x", 1, "fixed", PAULI_MATRICES["X"]),
        GateSpec("y", 1, "fixed", PAULI_MATRICES["Y"]),
        GateSpec("z", 1, "fixed", PAULI_MATRICES["Z"], diagonal=True),
        GateSpec("s", 1, "fixed", ((1, 0), (0, 1j)), diagonal=True),
        GateSpec("sdg", 1, "fixed", ((1, 0), (0, -1j)), diagonal=True),
        GateSpec("t", 1, "fixed", ((1, 0), (0, complex(_R, _R))), diagonal=True),
        GateSpec("tdg", 1, "fixed", ((1, 0), (0, complex(_R, -_R))), diagonal=True),
        GateSpec("sx", 1, "fixed", ((0.5 + 0.5j, 0.5 - 0.5j), (0.5 - 0.5j, 0.5 + 0.5j))),
        GateSpec("cz", 2, "fixed", _cz(), diagonal=True),
        GateSpec("cnot", 2, "fixed", ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 0, 1), (0, 0, 1, 0))),
        GateSpec("swap", 2, "fixed", ((1, 0, 0, 0), (0, 0, 1, 0), (0, 1, 0, 0), (0, 0, 0, 1))),
        GateSpec("unitary", 0, "unitary"),  # 1 or 2 qubits, fixed by the matrix
    )
}

#: The generators a `Rotation` may name, and which of them are diagonal.
GENERATORS: dict[str, tuple[tuple[complex, ...], ...]] = {**{a: PAULI_MATRICES[a] for a in PAULI_AXES}, "phase": ((-1, 0), (0, -1))}
#: The generators whose rotations are diagonal (they run as a diagonal, and fuse with other diagonals).
DIAGONAL_GENERATORS = frozenset({"Z", "phase"})


def rotation_matrix_fixed(generator: str, angle: float) -> tuple[tuple[complex, ...], ...]:
    """exp(-i angle G / 2) for a Python float angle and a generator of
    `GENERATORS` (each squares to the identity), in double precision."""
    c, s = math.cos(angle / 2), math.sin(angle / 2)
    g = GENERATORS[generator]
    return tuple(tuple(c * (i == j) - 1j * s * g[i][j] for j in range(2)) for i in range(2))


def pauli_stack(dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """(3, 2, 2): X, Y, Z in the order of `PAULI_AXES`."""
    return torch.tensor([PAULI_MATRICES[a] for a in PAULI_AXES], dtype=dtype, device=device)
