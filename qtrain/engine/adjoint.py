"""Adjoint differentiation: gradients of any real function of the final state
with memory that does not grow with circuit depth.

Forward keeps only the final state |psi_N>. Backward walks the steps in
reverse, undoing each gate on two states at once: |psi_k> and the cotangent
<lambda_k| = <g| U_N ... U_{k+1}. For a rotation U_k = exp(-i theta G / 2),
dU_k/dtheta = -i/2 G U_k, so

    dL/dtheta_k = Re <lambda_k| dU_k |psi_{k-1}> = 1/2 Im <lambda_k| G |psi_k>.

(`g` is PyTorch's gradient of a real loss with respect to the complex state,
for which dL = Re <g|d psi>.) Extra memory: a few states, whatever the depth.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from qtrain.engine.fusion import (
    Layer,
    apply_block,
    block_overlap,
    layer_blocks,
    layer_widths,
    qubit_overlap,
)
from qtrain.engine.kernels import Scratch, reduced_overlap
from qtrain.engine.program import Program
from qtrain.engine.simulate import (
    apply_step,
    half_angle_trig,
    run_program,
    step_operators,
)


class AdjointState(torch.autograd.Function):
    """angles (B or 1, n_slots), initial state (B or 1, 2, ..., 2) or None ->
    final state (B, 2, ..., 2). The cotangent left after the backward sweep is
    the gradient with respect to the initial state."""

    @staticmethod
    def forward(ctx, angles, initial_state, program: Program, batch: int, dtype: torch.dtype, device: torch.device):  # type: ignore[override]
        with torch.no_grad():
            state = run_program(program, angles, batch, dtype, device, initial_state)
        ctx.program, ctx.dtype, ctx.device = program, dtype, device
        ctx.initial_batch = None if initial_state is None else initial_state.shape[0]
        ctx.save_for_backward(angles, state)
        return state

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_state):  # type: ignore[override]
        angles, psi = ctx.saved_tensors
        program, dtype, device = ctx.program, ctx.dtype, ctx.device
        cos, sin = half_angle_trig(angles)
        # The sweep carries mu = conj(lambda): undoing U on lambda is applying
        # conj(U^dagger) to mu, and every overlap <lambda|G|psi> becomes a plain
        # product with mu, so no conjugated copy of a state is ever made.
        mu = grad_state.conj().resolve_conj()
        # <lambda_k| G |psi_k> for every slot, written in place: small results
        # allocated between state-sized temporaries fragment the heap.
        overlaps = torch.zeros(program.n_slots, psi.shape[0], dtype=dtype, device=device)
        inverses = step_operators(program, cos, sin, dtype, device, inverse=True)
        conj_inverses = [op.conj() for op in inverses]
        generators: dict[int, torch.Tensor] = {}
        for indices, stacked in program.generators(dtype, device).values():
            generators.update(zip(indices, stacked))
        psi_scratch, mu_scratch = Scratch(), Scratch()  # never the saved state: that one is the caller's output
        for item in reversed(program.plan):
            if isinstance(item, Layer):
                psi, mu = _undo_layer(program, item, (inverses, conj_inverses), generators, psi, mu, overlaps, (psi_scratch, mu_scratch))
                continue
            step = program.steps[item]
            if step.kind == "rotation":
                # <lambda_k| G |psi_k> = sum_ij G_ij M_ij: one read of both states
                m = reduced_overlap(mu, psi, step.qubits[0])  # (B, 2, 2)
                g = generators[item]
                weighted = m.diagonal(dim1=-2, dim2=-1) * g if step.diagonal else m * g
                torch.sum(weighted.reshape(weighted.shape[0], -1), dim=1, out=overlaps[step.slot])
            psi = apply_step(psi, step, inverses[item], psi_scratch)
            mu = apply_step(mu, step, conj_inverses[item], mu_scratch)
        grads = (0.5 * overlaps.imag.T).to(angles.dtype)  # (B, n_slots)
        if angles.shape[0] == 1 and grads.shape[0] > 1:
            grads = grads.sum(dim=0, keepdim=True)  # angles were broadcast over the batch
        grad_initial = None
        if ctx.needs_input_grad[1]:
            lam = mu.conj().resolve_conj()
            grad_initial = lam.sum(dim=0, keepdim=True) if ctx.initial_batch == 1 else lam
        return grads, grad_initial, None, None, None, None


def adjoint_state(
    program: Program,
    angles: torch.Tensor,
    batch: int,
    dtype: torch.dtype,
    device: torch.device,
    initial_state: torch.Tensor | None = None,
) -> torch.Tensor:
    if program.needs_tensor_grad:
        raise ValueError(
            "diff_method='adjoint' differentiates only the rotation angles, but a gate's matrix requires grad; "
            "use diff_method='backprop'"
        )
    return AdjointState.apply(angles, initial_state, program, batch, dtype, device)


def _undo_layer(program: Program, layer: Layer, inverses, generators, psi: torch.Tensor, mu: torch.Tensor, overlaps: torch.Tensor, scratches):
    """Undo a fused layer block by block; before each block is undone, read
    <lambda| G |psi> for its rotations from the block's reduced overlap."""
    shape = psi.shape
    member_at = {program.steps[i].qubits[0]: i for i in layer.members}
    psi, mu = psi.reshape(shape[0], -1), mu.reshape(mu.shape[0], -1)
    first = 0
    widths = layer_widths(program.n_qubits, psi.numel() * psi.element_size())
    undo_psi, undo_mu = (layer_blocks(layer, program.steps, ops, widths) for ops in inverses)
    for width, a, b in zip(widths, undo_psi, undo_mu):
        rotations = [(q - first, member_at[q]) for q in range(first, first + width) if q in member_at and program.steps[member_at[q]].kind == "rotation"]
        if rotations:
            overlap = block_overlap(psi, mu, width)  # O[x, y] = sum psi_x conj(lambda_y)
            for position, index in rotations:
                o = qubit_overlap(overlap, position, width)  # (B, 2, 2)
                g, step = generators[index], program.steps[index]
                # <lambda| G |psi> = sum_uv G_vu O_uv
                value = (o.diagonal(dim1=-2, dim2=-1) * g).sum(-1) if step.diagonal else (o.transpose(-1, -2) * g).sum((-1, -2))
                overlaps[step.slot] = value
        psi, mu = apply_block(psi, a, scratches[0]), apply_block(mu, b, scratches[1])
        first += width
    return psi.reshape(shape), mu.reshape(shape)
