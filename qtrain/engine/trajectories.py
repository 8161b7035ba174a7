"""Monte-Carlo trajectories: noise channels as steps on a batch of pure states.

A trajectory replaces each channel by one of its Kraus operators, drawn per
row. For a Pauli channel the draw does not depend on the state (p_I, p_X,
p_Y, p_Z are fixed), so it is made before the run and becomes an ordinary
per-sample fixed step: the run stays unitary, and the adjoint gradient of each
trajectory is exact. Amplitude damping's draw depends on the state (the
jump K1 has probability g * P(qubit = 1)), so it is a step kind of its own,
"jump", applied during the run with a uniform number per row; it has no
adjoint (trajectories with amplitude damping give values only).
"""

from __future__ import annotations

import torch

from qtrain.engine.gates import PAULI_MATRICES
from qtrain.engine.kernels import Scratch
from qtrain.engine.program import Program, Step
from qtrain.engine.step_kinds import STEP_RULES, StepRule, register_step_kind

__all__ = ["JUMP", "jump_step", "pauli_choices", "pauli_step"]

#: The step kind of an amplitude-damping jump.
JUMP = "jump"

_PAULIS = torch.tensor([PAULI_MATRICES[p] for p in ("I", "X", "Y", "Z")], dtype=torch.complex128)


def pauli_choices(probabilities: tuple[float, float, float, float], uniforms: torch.Tensor) -> torch.Tensor:
    """Per row, 0..3 for I, X, Y, Z: the Pauli whose cumulative probability interval holds the row's uniform."""
    edges = torch.tensor(probabilities, dtype=torch.float64).cumsum(0)[:-1]
    return torch.bucketize(uniforms, edges, right=True)


def pauli_step(qubit: int, choices: torch.Tensor) -> Step:
    """A fixed per-sample step applying Pauli `choices[row]` (0..3 for I, X, Y, Z) to `qubit`."""
    return Step("fixed", (qubit,), _PAULIS[choices])


def jump_step(qubit: int, uniforms: torch.Tensor, gamma: float) -> Step:
    """An amplitude-damping step on `qubit` with rate `gamma`: row r jumps (K1 = sqrt(g)|0><1|) when
    uniforms[r] < g P_r(qubit = 1), else takes K0 = diag(1, sqrt(1 - g)); then the state is renormalized."""
    tensor = torch.stack([uniforms.to(torch.float64), torch.full_like(uniforms, gamma, dtype=torch.float64)], dim=1)
    return Step(JUMP, (qubit,), tensor)


def _jump_operator(program: Program, step: Step, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return program.cached(("jump", id(step), device), lambda: step.tensor.to(device))


def _apply_jump(state: torch.Tensor, step: Step, operator: torch.Tensor, scratch: Scratch | None = None) -> torch.Tensor:
    q, n = step.qubits[0], state.dim() - 1
    view = state.reshape(state.shape[0], 2**q, 2, 2 ** (n - q - 1))
    real = state.real.dtype
    uniform, gamma = operator[:, 0].to(real), operator[:, 1].to(real)
    zero, one = view[:, :, 0], view[:, :, 1]
    excited = one.abs().square().sum(dim=(1, 2)) / view.abs().square().sum(dim=(1, 2, 3))
    p_jump = gamma * excited
    jump = (uniform < p_jump)[:, None, None]
    new_zero = torch.where(jump, one * gamma.sqrt()[:, None, None], zero)
    new_one = torch.where(jump, torch.zeros_like(one), one * (1 - gamma).sqrt()[:, None, None])
    norm = torch.where(jump[:, 0, 0], p_jump, 1 - p_jump).clamp_min(torch.finfo(real).tiny).sqrt()
    return (torch.stack([new_zero, new_one], dim=2) / norm[:, None, None, None].to(state.dtype)).reshape(state.shape)


def _no_undo(program: Program, step: Step, operator: torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    raise ValueError("an amplitude-damping jump has no adjoint: trajectories with amplitude damping give values only; "
                     "use method='density' for gradients")


if JUMP not in STEP_RULES:  # registered once per process (a reload of this module must not register it twice)
    register_step_kind(JUMP, StepRule(_jump_operator, _apply_jump, _no_undo))
