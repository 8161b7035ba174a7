"""The engine's step kinds: one typed vocabulary and one dispatch table.

Every `Step` names its kind; `STEP_RULES` maps the kind to what the engine
does with it: how a run builds the step's operator, the forward kernel that
applies it, the operator that undoes it in the adjoint sweep, and whether a
one-qubit step of that kind may join a fused layer. A new kind (a noise
channel, a measurement) is one `register_step_kind` call plus its kernels; a
kind with no entry fails when its `Step` is made, with a KeyError naming it,
so no loop falls through to a wrong default.

The table is read when a step is made (`Step.rule` caches the entry), so the
hot loop pays one attribute read per step instead of string compares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import torch

from qtrain.engine.kernels import Scratch, apply_diagonal, apply_matrix, apply_permutation

if TYPE_CHECKING:
    from qtrain.engine.program import Program, Step

__all__ = ["CORE_KINDS", "register_step_kind", "step_rule", "STEP_RULES", "StepKind", "StepRule"]


class StepKind(str, Enum):
    """The built-in kinds. A str enum: `StepKind.FIXED == "fixed"`, so a kind
    reads the same in a repr, a log or a test."""

    FIXED = "fixed"  # a constant operator: a matrix (1|B, d, d) or a diagonal (1|B, d)
    ROTATION = "rotation"  # exp(-i theta G / 2); theta is column `slot` of the angle matrix
    PERMUTATION = "permutation"  # psi'[x] = phase[x] psi[index[x]] over the whole register

    def __str__(self) -> str:
        return self.value


#: The kinds every path of the engine runs; a kind registered later runs on the general path only.
CORE_KINDS = (StepKind.ROTATION, StepKind.FIXED, StepKind.PERMUTATION)

#: A run's operator for one step: a tensor with a leading sample axis (1 or B), sliced per chunk,
#: or a tuple that every sample shares (a permutation's (index, phase)).
Operator = Any


@dataclass(frozen=True)
class StepRule:
    """What the engine does with one kind of step.

    operator: (program, step, dtype, device) -> the step's operator for a run, or None for
        rotations, whose operators are built all at once from the stacked angles (`run.step_operators`).
    apply: (state (B, 2, ..., 2), step, operator, scratch or None) -> the new state: the forward kernel.
    undo: (program, step, operator, dtype, device) -> the operator that `apply` uses to undo the step
        (U^dagger) on the adjoint sweep's stacked pair (psi, lambda), which has twice the chunk's samples.
    fuses: a one-qubit step of this kind may join a fused layer and a product-state prefix, which
        multiply its 2x2 operator into its qubit's chain (only fixed gates and rotations know how).
    trainable: the step reads an angle slot, so the adjoint sweep reads its gradient before undoing it.
    """

    operator: Callable[[Program, Step, torch.dtype, torch.device], Operator] | None
    apply: Callable[[torch.Tensor, Step, Operator, Scratch | None], torch.Tensor]
    undo: Callable[[Program, Step, Operator, torch.dtype, torch.device], Operator]
    fuses: bool = False
    trainable: bool = False


def _apply_local(state: torch.Tensor, step: Step, operator: torch.Tensor, scratch: Scratch | None = None) -> torch.Tensor:
    if step.diagonal:
        return apply_diagonal(state, operator, step.qubits, scratch)
    return apply_matrix(state, operator, step.qubits)


def _undo_local(program: Program, step: Step, operator: torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    undo = operator.conj() if step.diagonal else operator.mH
    # per-sample operators: the same ones for psi and lambda, stacked along the samples
    return torch.cat([undo, undo]) if undo.shape[0] > 1 else undo


def _apply_permutation(state: torch.Tensor, step: Step, operator: tuple, scratch: Scratch | None = None) -> torch.Tensor:
    index, phase = operator
    out = None if scratch is None else scratch.target(state, state.shape)
    return apply_permutation(state, index, phase, out)


def _fixed_operator(program: Program, step: Step, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return program.operand(step, dtype, device)


def _permutation_operator(program: Program, step: Step, dtype: torch.dtype, device: torch.device) -> tuple:
    return program.permutation(step, dtype, device)["forward"]


def _undo_permutation(program: Program, step: Step, operator: tuple, dtype: torch.dtype, device: torch.device) -> tuple:
    return program.permutation(step, dtype, device)["undo_psi"]


#: The dispatch table: every step kind the engine can run, by name (a `StepKind` or a registered string).
#: Kernels are module-level functions, not lambdas: a step keeps its rule, and a program is pickled to spawned ranks.
STEP_RULES: dict[str, StepRule] = {
    StepKind.FIXED: StepRule(_fixed_operator, _apply_local, _undo_local, fuses=True),
    StepKind.ROTATION: StepRule(None, _apply_local, _undo_local, fuses=True, trainable=True),
    StepKind.PERMUTATION: StepRule(_permutation_operator, _apply_permutation, _undo_permutation),
}


def step_rule(kind: str) -> StepRule:
    """The table's entry for `kind`; a KeyError naming the kind (and the known ones) when it has none."""
    try:
        return STEP_RULES[kind]
    except KeyError:
        known = ", ".join(str(k) for k in STEP_RULES)
        raise KeyError(f"unknown step kind {str(kind)!r}: register it with register_step_kind (known: {known})") from None


def register_step_kind(kind: str, rule: StepRule) -> None:
    """Add a kind to the table. A name is registered once: replacing a kind's kernels under the steps
    already made (which cache their rule) would run two versions of it."""
    if kind in STEP_RULES:
        raise ValueError(f"step kind {str(kind)!r} is already registered")
    STEP_RULES[kind] = rule
