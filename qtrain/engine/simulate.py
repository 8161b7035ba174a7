"""Run a `Program` on a batch of states: build every step's operator for this
batch of angles, then apply the schedule (single steps and fused layers)."""

from __future__ import annotations

import torch

from qtrain.engine.fusion import apply_layer, layer_blocks, layer_widths
from qtrain.engine.kernels import Scratch, apply_diagonal, apply_matrix, zero_state
from qtrain.engine.program import Program, Step


def apply_step(state: torch.Tensor, step: Step, operator: torch.Tensor, scratch: Scratch | None = None) -> torch.Tensor:
    if step.diagonal:
        return apply_diagonal(state, operator, step.qubits, scratch)
    return apply_matrix(state, operator, step.qubits)


def step_operators(
    program: Program, cos: torch.Tensor, sin: torch.Tensor, dtype: torch.dtype, device: torch.device, inverse: bool = False
) -> list[torch.Tensor]:
    """Every step's operator (or its inverse) for this batch of angles, one per step.

    cos, sin: (B or 1, n_slots) of theta / 2, real. All rotations are built in
    one vectorized expression per kind (matrix or diagonal) before the state
    is touched: hundreds of tiny allocations interleaved with state-sized ones
    would fragment the heap and grow resident memory with depth.
    """
    operators: list[torch.Tensor | None] = [None] * len(program.steps)
    for diagonal, (indices, generators) in program.generators(dtype, device).items():  # (R, Bg, 2[, 2])
        slots = [program.steps[i].slot for i in indices]
        c = cos[:, slots].T.to(dtype)  # (R, B)
        s = sin[:, slots].T.to(dtype) * (1j if inverse else -1j)
        # exp(-i theta G/2) = cos I - i sin G; the inverse flips the sign of sin.
        if diagonal:
            stacked = c[..., None] + s[..., None] * generators  # (R, B, 2)
        else:
            eye = torch.eye(2, dtype=dtype, device=device)
            stacked = c[..., None, None] * eye + s[..., None, None] * generators  # (R, B, 2, 2)
        for j, i in enumerate(indices):
            operators[i] = stacked[j]
    for i, step in enumerate(program.steps):
        if step.kind == "fixed":
            tensor = program.operand(step, dtype, device)
            if inverse:
                tensor = tensor.conj() if step.diagonal else tensor.conj().transpose(-1, -2)
            operators[i] = tensor
    return operators  # type: ignore[return-value]


def half_angle_trig(angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    half = angles / 2
    return torch.cos(half), torch.sin(half)


def run_program(
    program: Program,
    angles: torch.Tensor,
    batch: int,
    dtype: torch.dtype,
    device: torch.device,
    initial_state: torch.Tensor | None = None,
) -> torch.Tensor:
    """Evolve `initial_state` ((batch or 1, 2, ..., 2); default |0...0>) through
    every step: -> (batch, 2, ..., 2). Differentiable by plain autograd (memory
    grows with depth: one state per step)."""
    cos, sin = half_angle_trig(angles)
    operators = step_operators(program, cos, sin, dtype, device)
    if initial_state is None:
        state = zero_state(batch, program.n_qubits, dtype, device)
    else:
        state = initial_state.expand(batch, *initial_state.shape[1:])
    scratch = None if torch.is_grad_enabled() else Scratch()  # autograd needs every intermediate
    widths = layer_widths(program.n_qubits, state[:1].numel() * batch * state.element_size())
    for item in program.plan:
        if isinstance(item, int):
            state = apply_step(state, program.steps[item], operators[item], scratch)
        else:
            state = apply_layer(state, layer_blocks(item, program.steps, operators, widths), scratch)
    return state
