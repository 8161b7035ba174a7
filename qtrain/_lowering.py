"""Lowering: a circuit's validated gates -> the engine's steps.

Constants (fixed gates, fixed-angle rotations, user unitaries) become fixed
operators; a parametric gate becomes the steps of its recipe (the gate
table), and every trainable rotation in it a slot of the angle matrix (its
angle scaled by the circuit, `Circuit.slot_scales`). Runs
of basis-permuting constants are then fused into one gather
(`fuse_permutations`), runs of constant diagonals into one diagonal
(`fuse_diagonals`), and one-qubit gates into layers (`plan_schedule`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from qtrain.engine import Program, Step, fuse_diagonals, plan_schedule
from qtrain.engine.gates import (
    DIAGONAL_GENERATORS,
    GATES,
    GENERATORS,
    Fixed,
    GateKind,
    pauli_stack,
    rotation_matrix_fixed,
)
from qtrain.engine.permutations import fuse_permutations
from qtrain.engine.program import StepKind

__all__ = ["lower"]

if TYPE_CHECKING:
    from qtrain.circuit import Op


def lower(ops: Sequence[Op], n_qubits: int, fuse: bool = True, after_gate: Callable[[int, Op], Sequence[Step]] | None = None) -> Program:
    """Turn gates into engine steps: constants become fixed operators, trainable
    rotations become slots of the angle matrix. With `fuse` (the default),
    runs of basis-permuting gates become one gather, runs of constant
    diagonals one diagonal, and one-qubit gates fused layers; without it every
    gate is its own pass (the reference the fused plan is tested against).
    `after_gate(i, op)`: steps to insert after gate i as the user added it
    (a noise trajectory's Paulis and jumps), before any fusion."""
    steps: list[Step] = []
    paulis = pauli_stack(torch.complex128, "cpu")
    slot = 0
    for i, op in enumerate(ops):
        if i and after_gate is not None:
            steps.extend(after_gate(i - 1, ops[i - 1]))
        spec = GATES[op.name]
        if spec.kind == GateKind.UNITARY:
            matrix = op.matrix
            assert matrix is not None  # Circuit.add checks and sets a unitary's matrix (and only a unitary's)
            tensor = matrix if matrix.dim() == 3 else matrix.unsqueeze(0)
            steps.append(Step(StepKind.FIXED, op.qubits, tensor))
        elif spec.kind == GateKind.FIXED:
            steps.append(_constant_step(op.qubits, spec.matrix, spec.diagonal))
        elif spec.kind == GateKind.PAULI_ROTATION:
            assert op.axes is not None  # Circuit.add checks and sets a pauli_rot's axes
            generator = paulis[op.axes.cpu()]  # (B, 2, 2)
            if op.params[0] is not None:
                steps.append(Step(StepKind.ROTATION, op.qubits, generator, False, slot))
                slot += 1
            else:
                angle = op.angles[0]
                assert angle is not None  # each angle argument is a parameter or a fixed value, never neither
                half = angle / 2
                steps.append(Step(StepKind.FIXED, op.qubits, math.cos(half) * torch.eye(2, dtype=torch.complex128) - 1j * math.sin(half) * generator))
        elif spec.kind == GateKind.PARAMETRIC:  # its recipe, one step per part; every trainable rotation is a slot
            for part in spec.recipe:
                if isinstance(part, Fixed):
                    fixed = GATES[part.name]
                    steps.append(_constant_step(tuple(op.qubits[q] for q in part.qubits), fixed.matrix, fixed.diagonal))
                    continue
                qubits, diagonal = (op.qubits[part.qubit],), part.generator in DIAGONAL_GENERATORS
                if op.params[part.arg] is not None:
                    steps.append(Step(StepKind.ROTATION, qubits, _generator(part.generator), diagonal, slot))
                    slot += 1
                else:
                    angle = op.angles[part.arg]
                    assert angle is not None  # each angle argument is a parameter or a fixed value, never neither
                    steps.append(_constant_step(qubits, rotation_matrix_fixed(part.generator, part.scale * angle), diagonal))
        else:
            raise NotImplementedError(f"gate {op.name!r}: no lowering for gate kind {str(spec.kind)!r}")
    if ops and after_gate is not None:
        steps.extend(after_gate(len(ops) - 1, ops[-1]))
    if not fuse:
        return Program(n_qubits, tuple(steps), slot, n_gates=len(ops))
    fused = tuple(fuse_diagonals(fuse_permutations(steps, n_qubits)))
    return Program(n_qubits, fused, slot, plan_schedule(fused, n_qubits), n_gates=len(ops))


def _generator(name: str) -> torch.Tensor:
    """A rotation step's generator: (1, 2) for a diagonal one, else (1, 2, 2)."""
    g = torch.tensor(GENERATORS[name], dtype=torch.complex128)
    return torch.diagonal(g).unsqueeze(0) if name in DIAGONAL_GENERATORS else g.unsqueeze(0)


def _constant_step(qubits: tuple[int, ...], rows: Any, diagonal: bool) -> Step:
    matrix = torch.tensor(rows, dtype=torch.complex128)
    tensor = torch.diagonal(matrix).unsqueeze(0) if diagonal else matrix.unsqueeze(0)
    return Step(StepKind.FIXED, qubits, tensor, diagonal)
