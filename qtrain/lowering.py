"""Lowering: a circuit's validated gates -> the engine's steps.

Constants (fixed gates, fixed-angle rotations, user unitaries) become fixed
operators; every trainable rotation becomes a slot of the angle matrix. Runs
of basis-permuting constants are then fused into one gather
(`fuse_permutations`), runs of constant diagonals into one diagonal
(`fuse_diagonals`), and one-qubit gates into layers (`plan_schedule`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from qtrain.engine import Program, Step, fuse_diagonals, plan_schedule
from qtrain.engine.gates import (
    GATES,
    PAULI_MATRICES,
    pauli_stack,
    rotation_matrix_fixed,
)
from qtrain.engine.permutations import fuse_permutations

if TYPE_CHECKING:
    from qtrain.circuit import Op


def lower(ops: Sequence[Op], n_qubits: int, fuse: bool = True) -> Program:
    """Turn gates into engine steps: constants become fixed operators, trainable
    rotations become slots of the angle matrix. With `fuse` (the default),
    runs of basis-permuting gates become one gather, runs of constant
    diagonals one diagonal, and one-qubit gates fused layers; without it every
    gate is its own pass (the reference the fused plan is tested against)."""
    steps: list[Step] = []
    paulis = pauli_stack(torch.complex128, "cpu")
    slot = 0
    for op in ops:
        spec = GATES[op.name]
        if spec.kind == "unitary":
            tensor = op.matrix if op.matrix.dim() == 3 else op.matrix.unsqueeze(0)
            steps.append(Step("fixed", op.qubits, tensor))
            continue
        if spec.kind == "fixed":
            steps.append(_constant_step(op.qubits, spec.matrix, spec.diagonal))
            continue
        if spec.kind == "pauli_rotation":
            generator = paulis[op.axes.cpu()]  # (B, 2, 2)
        else:
            g = PAULI_MATRICES[spec.generator]
            generator = torch.tensor([[g[0][0], g[1][1]]] if spec.diagonal else [g], dtype=torch.complex128)
        if op.param is not None:
            steps.append(Step("rotation", op.qubits, generator, spec.diagonal, slot))
            slot += 1
        else:
            half = op.angle / 2
            eye = torch.eye(2, dtype=torch.complex128)
            if spec.diagonal:
                steps.append(Step("fixed", op.qubits, math.cos(half) - 1j * math.sin(half) * generator, True))
            elif spec.kind == "pauli_rotation":
                steps.append(Step("fixed", op.qubits, math.cos(half) * eye - 1j * math.sin(half) * generator))
            else:
                steps.append(_constant_step(op.qubits, rotation_matrix_fixed(spec.generator, op.angle), False))
    if not fuse:
        return Program(n_qubits, tuple(steps), slot, n_gates=len(ops))
    fused = tuple(fuse_diagonals(fuse_permutations(steps, n_qubits)))
    return Program(n_qubits, fused, slot, plan_schedule(fused, n_qubits), n_gates=len(ops))


def _constant_step(qubits: tuple[int, ...], rows: Any, diagonal: bool) -> Step:
    matrix = torch.tensor(rows, dtype=torch.complex128)
    tensor = torch.diagonal(matrix).unsqueeze(0) if diagonal else matrix.unsqueeze(0)
    return Step("fixed", qubits, tensor, diagonal)
