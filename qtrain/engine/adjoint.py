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

import dataclasses
import inspect
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from qtrain.engine.fusion import (
    Layer,
    apply_block,
    qubit_traces,
)
from qtrain.engine import single, small
from qtrain.engine.cotangents import values_and_cotangent
from qtrain.engine.kernels import Scratch, reduced_overlap
from qtrain.engine.program import Program, StepKind
from qtrain.engine.run import (
    Forward,
    Operators,
    Run,
    rows,
    run_program,
)

__all__ = ["adjoint_state", "AdjointState", "AdjointVJP", "first_rotation", "Sweep", "value_and_grad"]


#: AdjointState.forward hands its single-state path to setup_context here (the two run back to back in one thread,
#: inside Function.apply), so the backward reads the forward's kept states instead of running the circuit again.
_HANDOFF = threading.local()


class AdjointState(torch.autograd.Function):
    """angles (B or 1, n_slots), initial state (B or 1, 2, ..., 2) or None ->
    final state (B, 2, ..., 2). Its backward is `AdjointVJP` (the sweep), so
    second derivatives and torch.func transforms go through that Function's
    own rules; the cotangent left after the sweep is the gradient with
    respect to the initial state."""

    @staticmethod
    def forward(angles, initial_state, program: Program, batch: int, dtype: torch.dtype, device: torch.device):  # type: ignore[override]
        run = Run(program, angles, batch, dtype, device, initial_state)
        if single.applies(run):  # one state of a moderate register: the few-call path (engine.single)
            path = single.Path(run)
            final = path.final_state()
            _HANDOFF.path = (final, path)  # for setup_context: the backward reuses the kept states
            return final
        with torch.no_grad():
            return run_program(run)

    @staticmethod
    def setup_context(ctx, inputs, output):  # type: ignore[override]
        angles, initial_state, program, _, dtype, device = inputs
        ctx.program, ctx.batch, ctx.dtype, ctx.device = program, output.shape[0], dtype, device
        handed = getattr(_HANDOFF, "path", None)
        _HANDOFF.path = None
        # the single-state path's forward, when this output is its final state (kept with the graph, freed with it)
        ctx.single_path = handed[1] if handed is not None and handed[0] is output else None
        ctx.save_for_backward(angles, initial_state, output)
        ctx.save_for_forward(angles, initial_state)

    @staticmethod
    def backward(ctx, grad_state):  # type: ignore[override]
        angles, initial_state, final = ctx.saved_tensors
        want_initial = ctx.needs_input_grad[1]
        out = AdjointVJP.apply(angles, initial_state, final.detach(), grad_state, ctx.program, ctx.dtype, ctx.device, want_initial, ctx.single_path)
        grads, grad_initial = out if want_initial else (out, None)
        if angles.shape[0] == 1 and grads.shape[0] > 1:
            grads = grads.sum(dim=0, keepdim=True)  # the angles were broadcast over the batch
        if grad_initial is not None and initial_state.shape[0] == 1 and grad_initial.shape[0] > 1:
            grad_initial = grad_initial.sum(dim=0, keepdim=True)
        return grads, grad_initial, None, None, None, None

    @staticmethod
    def jvp(ctx, angle_tangent, initial_tangent, *_):  # type: ignore[override]
        """Forward mode (torch.func.jacfwd, hessian): by autograd through a recomputed run."""
        angles, initial_state = ctx.saved_tensors
        run = lambda a, i: run_program(Run(ctx.program, a, ctx.batch, ctx.dtype, ctx.device, i))  # noqa: E731
        if initial_state is None:
            return torch.func.jvp(lambda a: run(a, None), (angles,), (angle_tangent,))[1]
        tangents = tuple(torch.zeros_like(p) if t is None else t for p, t in ((angles, angle_tangent), (initial_state, initial_tangent)))
        return torch.func.jvp(run, (angles, initial_state), tangents)[1]

    @staticmethod
    def vmap(info, in_dims, angles, initial_state, program, batch, dtype, device):  # type: ignore[override]
        """torch.func.vmap: the vmapped axis joins the batch (one wider run)."""
        size = info.batch_size
        angles = _leading(angles, in_dims[0], size).expand(size, batch, -1)
        initial = None if initial_state is None else _leading(initial_state, in_dims[1], size).expand(size, batch, *initial_state.shape[-program.n_qubits :])
        if program.batch > 1:  # the gates fix the batch: one run per vmapped slice
            out = [AdjointState.apply(angles[v], None if initial is None else initial[v], program, batch, dtype, device) for v in range(size)]
            return torch.stack(out), 0
        flat_initial = None if initial is None else initial.reshape(size * batch, *initial.shape[2:])
        out = AdjointState.apply(angles.reshape(size * batch, -1), flat_initial, program, size * batch, dtype, device)
        return out.reshape(size, batch, *out.shape[1:]), 0


class AdjointVJP(torch.autograd.Function):
    """The adjoint sweep as a vector-Jacobian product: (angles, initial state,
    final state, its cotangent) -> per-sample angle gradients (B, n_slots),
    and with `want_initial` also the gradient of the initial state.

    First derivatives never hold more than a few chunks of states. Its own
    backward (second derivatives: Hessians, Newton steps) recomputes the
    forward run with autograd and differentiates that twice, which holds one
    state per step like diff_method="backprop": exact, and only paid for when
    a second derivative is asked for."""

    @staticmethod
    def forward(angles, initial_state, final, grad_state, program: Program, dtype: torch.dtype, device: torch.device, want_initial: bool,  # type: ignore[override]
                single_path: single.Path | None = None):
        batch = final.shape[0]
        run = Run(program, angles, batch, dtype, device, initial_state)
        if single_path is not None or single.applies(run):
            grads, grad_initial = single.state_and_vjp(run, grad_state, want_initial, single_path)
            return (grads.to(angles.dtype), grad_initial) if want_initial else grads.to(angles.dtype)
        with torch.no_grad():
            forward = Forward(Run(program, angles, batch, dtype, device))  # its chunks and operators, rebuilt rather than kept
            # Without a gradient for the initial state, the sweep can stop at the
            # first item that holds a rotation: nothing before it has a gradient.
            sweep = Sweep(forward.operators, 0 if want_initial else first_rotation(program))
            # <lambda_k| G |psi_k> for every slot, written in place: small results
            # allocated between state-sized temporaries fragment the heap.
            overlaps = torch.zeros(program.n_slots, batch, dtype=dtype, device=device)
            grad_initial = torch.empty_like(final) if want_initial else None
            scratch = Scratch()  # never `final`: the sweep copies it into its pair first
            for chunk in forward.chunks:
                lam = sweep.run(chunk, final[chunk], grad_state[chunk], overlaps[:, chunk], scratch)
                if grad_initial is not None:
                    grad_initial[chunk] = lam
        grads = (0.5 * overlaps.imag.T).to(angles.dtype)  # (B, n_slots)
        return (grads, grad_initial) if want_initial else grads

    @staticmethod
    def setup_context(ctx, inputs, output):  # type: ignore[override]
        angles, initial_state, final, grad_state, program, dtype, device, want_initial, _ = inputs
        ctx.program, ctx.dtype, ctx.device, ctx.want_initial, ctx.batch = program, dtype, device, want_initial, final.shape[0]
        ctx.angle_rows, ctx.initial_rows = angles.shape[0], None if initial_state is None else initial_state.shape[0]
        ctx.save_for_backward(angles, initial_state, grad_state)
        ctx.save_for_forward(angles, initial_state, grad_state)

    @staticmethod
    def backward(ctx, gg_angles, gg_initial=None):  # type: ignore[override]
        first_order, primals = _recomputed_vjp(ctx, ctx.saved_tensors)
        vjps, pullback = torch.func.vjp(first_order, *primals)
        cotangents = tuple(torch.zeros_like(v) if c is None else c for v, c in zip(vjps, (gg_angles, gg_initial)))
        d_angles, d_grad_state, *d_initial = pullback(cotangents)
        if ctx.angle_rows == 1 and ctx.batch > 1:
            d_angles = d_angles.sum(dim=0, keepdim=True)  # the angles were broadcast over the batch
        d_initial = d_initial[0] if ctx.want_initial else None
        if d_initial is not None and ctx.initial_rows == 1 and ctx.batch > 1:
            d_initial = d_initial.sum(dim=0, keepdim=True)
        return d_angles, d_initial, None, d_grad_state, None, None, None, None, None

    @staticmethod
    def jvp(ctx, angle_tangent, initial_tangent, final_tangent, grad_state_tangent, *_):  # type: ignore[override]
        first_order, primals = _recomputed_vjp(ctx, ctx.saved_tensors)
        tangents = [angle_tangent, grad_state_tangent] + ([initial_tangent] if ctx.want_initial else [])
        tangents = [torch.zeros_like(p) if t is None else t.expand_as(p) for p, t in zip(primals, tangents)]
        out = torch.func.jvp(first_order, primals, tuple(tangents))[1]
        return out if ctx.want_initial else out[0]

    @staticmethod
    def vmap(info, in_dims, angles, initial_state, final, grad_state, program, dtype, device, want_initial, single_path=None):  # type: ignore[override]
        """torch.func.vmap (jacrev, vmap of grad): the vmapped axis joins the batch."""
        size, batch = info.batch_size, final.shape[-program.n_qubits - 1]
        state_shape = final.shape[-program.n_qubits :]
        angles = _leading(angles, in_dims[0], size).expand(size, batch, -1)
        initial = None if initial_state is None else _leading(initial_state, in_dims[1], size).expand(size, batch, *state_shape)
        final = _leading(final, in_dims[2], size).expand(size, batch, *state_shape)
        grad_state = _leading(grad_state, in_dims[3], size).expand(size, batch, *state_shape)
        if program.batch > 1:  # the gates fix the batch: one sweep per vmapped slice
            outs = [AdjointVJP.apply(angles[v], None if initial is None else initial[v], final[v], grad_state[v], program, dtype, device, want_initial) for v in range(size)]
            if want_initial:
                return (torch.stack([o[0] for o in outs]), torch.stack([o[1] for o in outs])), (0, 0)
            return torch.stack(outs), 0
        merge = lambda t: None if t is None else t.reshape(size * batch, *t.shape[2:])  # noqa: E731
        out = AdjointVJP.apply(merge(angles), merge(initial), merge(final), merge(grad_state), program, dtype, device, want_initial)
        split = lambda t: t.reshape(size, batch, *t.shape[1:])  # noqa: E731
        return ((split(out[0]), split(out[1])), (0, 0)) if want_initial else (split(out), 0)


# Function.apply binds its arguments with inspect.signature(forward) at every call (torch 2.13, for Functions with
# setup_context): about 20 us each, two per adjoint gradient. A function's __signature__ is what inspect.signature
# returns when it is set (the language's own hook), so it is computed once here.
for _function in (AdjointState, AdjointVJP):
    _function.forward.__signature__ = inspect.signature(_function.forward)  # type: ignore[attr-defined,union-attr]


def _recomputed_vjp(ctx, saved: tuple) -> tuple[Callable, tuple[torch.Tensor, ...]]:
    """Second derivatives of the sweep: its VJP as a function (per-sample
    angles, cotangent[, initial state]) -> (angle grads[, initial grad]),
    computed by autograd through a recomputed run (one state per step, as
    diff_method="backprop" holds), and the primals to evaluate it at. Built
    with torch.func, so it composes with the caller's transforms and
    differentiates only along its own arguments, never back through the
    caller's graph."""
    angles, initial_state, grad_state = saved
    program, batch, dtype, device = ctx.program, ctx.batch, ctx.dtype, ctx.device

    def first_order(per_sample: torch.Tensor, cotangent: torch.Tensor, *initial: torch.Tensor):
        run = lambda a, *i: run_program(Run(program, a, batch, dtype, device, i[0] if i else initial_state))  # noqa: E731
        return torch.func.vjp(run, per_sample, *initial)[1](cotangent)

    # per sample, as the sweep returns them: not summed over broadcast angles or initial states
    per_sample = angles.expand(batch, -1)
    return first_order, (per_sample, grad_state) + ((initial_state.expand(batch, *initial_state.shape[1:]),) if ctx.want_initial else ())


def _leading(tensor: torch.Tensor, dim: int | None, size: int) -> torch.Tensor:
    """`tensor` with its vmapped axis first (broadcast when it has none)."""
    return tensor.unsqueeze(0).expand(size, *tensor.shape) if dim is None else tensor.movedim(dim, 0)


def value_and_grad(run: Run, cost: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """A per-sample cost of the final states and its gradient with respect to
    the angles: -> values (batch,), gradients (batch, n_slots), both real.

    `cost` maps final states (c, 2, ..., 2) to values (c,), each sample's value
    depending on its own state alone, and must be differentiable by autograd.
    Each chunk of samples runs forward, through the cost and back before the
    next one starts, so neither the batch of final states nor its cotangent is
    ever held: the working memory is a few chunks of states, whatever the batch
    size and the depth.
    """
    if single.applies(run):  # one state of a moderate register: few, wide calls (engine.single)
        return single.value_and_grad(run, cost)
    if small.applies(run):  # many tiny states: amplitude-major, no chunks (engine.small)
        return small.value_and_grad(run, cost)
    program, batch, dtype, device = run.program, run.batch, run.dtype, run.device
    angles = run.angles.detach()
    with torch.no_grad():
        forward = Forward(dataclasses.replace(run, angles=angles))
        sweep = Sweep(forward.operators, first_rotation(program))
    overlaps = torch.zeros(program.n_slots, batch, dtype=dtype, device=device)
    values = torch.empty(batch, dtype=angles.dtype, device=device)
    scratches = (Scratch(), Scratch())
    for chunk in forward.chunks:
        with torch.no_grad():
            psi = forward.run(chunk, scratches[0])
        value, grad_state = values_and_cotangent(cost, psi)
        values[chunk] = value
        if grad_state is None:  # the cost ignores the state
            continue
        with torch.no_grad():
            sweep.run(chunk, psi, grad_state, overlaps[:, chunk], scratches[1])
    return values, (0.5 * overlaps.imag.T).to(angles.dtype)


class Sweep:
    """The reverse sweep for one batch of angles: run chunk by chunk from the
    last plan item down to `start`, undoing each item with the inverse of the
    forward run's operators (built, like theirs, one layer and one chunk at a
    time) and reading the gradients off on the way."""

    def __init__(self, operators: Operators, start: int) -> None:
        program, dtype, device = operators.program, operators.dtype, operators.device
        self.operators, self.program, self.start = operators, program, start
        self.generators: dict[int, torch.Tensor] = {}
        for indices, stacked in program.generators(dtype, device).values():
            self.generators.update(zip(indices, stacked))
        layers = {k: item for k, item in enumerate(program.plan) if isinstance(item, Layer) and k >= start}
        self.readouts: dict[int, list[_Readout | None]] = {}
        if layers:  # the dressed generators only where a layer is undone
            dressed = operators.dressed_generators()
            self.readouts = {k: _layer_readouts(operators, item, dressed, device) for k, item in layers.items()}

    def run(self, chunk: slice, psi: torch.Tensor, lam: torch.Tensor, overlaps: torch.Tensor, scratch: Scratch) -> torch.Tensor:
        """Undo the plan on one chunk of (psi, lambda), writing
        <lambda_k|G|psi_k> for every rotation slot into `overlaps` (n_slots,
        chunk). -> the final lambda (the gradient of the initial state).

        psi and lambda are both undone by U^dagger, so they travel as one
        stacked pair (2, chunk, ...): one GEMM, gather or product per item
        undoes both (the inputs are copied, never written)."""
        program, operators = self.program, self.operators
        size = psi.shape[0]
        pair = torch.stack([psi, lam])  # (2, c, 2, ..., 2)
        for k in range(len(program.plan) - 1, self.start - 1, -1):
            item = program.plan[k]
            if isinstance(item, Layer):
                undo = [b.mH for b in operators.blocks(k, chunk)]
                pair = _undo_layer(undo, self.readouts[k], chunk, pair, overlaps, scratch)
                continue
            step, op = program.steps[item], operators.step(item, chunk)
            flat = pair.reshape(2 * size, *pair.shape[2:])
            rule = step.rule
            if rule.trainable:
                # <lambda_k| G |psi_k> = sum_ij G_ij M_ij: one read of both states
                m = reduced_overlap(pair[1].conj(), pair[0], step.qubits[0])  # (B, 2, 2)
                g = rows(self.generators[item], chunk)
                weighted = m.diagonal(dim1=-2, dim2=-1) * g if step.diagonal else m * g
                torch.sum(weighted.reshape(weighted.shape[0], -1), dim=1, out=overlaps[step.slot])
            undo = rule.undo(program, step, op, operators.dtype, operators.device)
            pair = rule.apply(flat, step, undo, scratch).reshape(pair.shape)
        return pair[1]


def first_rotation(program: Program) -> int:
    """The index of the first plan item that holds a rotation (0 if none)."""
    for k, item in enumerate(program.plan):
        members = item.members if isinstance(item, Layer) else (item,)
        if any(program.steps[i].rule.trainable for i in members):
            return k
    return 0


def adjoint_state(run: Run) -> torch.Tensor:
    """The final states (B, 2, ..., 2) of `run`, with a backward that is the adjoint sweep (it undoes the gates
    one by one) instead of autograd's record of every step. Angles only: a gate matrix that
    requires grad is refused."""
    if run.program.needs_tensor_grad:
        raise ValueError(
            "diff_method='adjoint' differentiates only the rotation angles, but a gate's matrix requires grad; "
            "use diff_method='backprop'"
        )
    return AdjointState.apply(run.angles, run.initial_state, run.program, run.batch, run.dtype, run.device)


@dataclass(frozen=True)
class _Readout:
    """How to read a block's rotation gradients off its reduced overlap."""

    slots: torch.Tensor  # (k,) angle columns of the block's rotations
    traces: torch.Tensor  # (d^2, 4 k): the overlap traced down to each rotation's qubit
    generators_t: torch.Tensor  # (B or 1, k, 2, 2): each rotation's generator, transposed


def _layer_readouts(operators: Operators, layer: Layer, dressed: torch.Tensor, device: torch.device) -> list[_Readout | None]:
    """One `_Readout` per block of the layer (None for a block without
    rotations), reading each rotation's gradient with its generator as seen
    from the end of the layer (`Operators.dressed_generators`)."""
    program, rows = operators.program, operators.table.dressed_row
    static = program.cached(("readouts", id(layer), operators.widths, device), lambda: _readout_layout(program, layer, operators.widths, rows, device))
    readouts: list[_Readout | None] = []
    for layout in static:
        if layout is None:
            readouts.append(None)
            continue
        slots, width, positions, dressed_rows = layout
        traces = qubit_traces(width, positions, dressed.dtype, device)
        readouts.append(_Readout(slots, traces, dressed[dressed_rows].transpose(0, 1).transpose(-1, -2)))
    return readouts


def _readout_layout(program: Program, layer: Layer, widths: Sequence[int], rows: dict[int, int], device: torch.device) -> list[tuple | None]:
    """Per block of the layer: (slots, width, positions in the block, rows of
    the dressed generators) of its rotations, or None."""
    layout: list[tuple | None] = []
    first = 0
    rotations = [i for i in layer.members if program.steps[i].kind == StepKind.ROTATION]
    for width in widths:
        found = [(program.steps[i].qubits[0] - first, i) for i in rotations if first <= program.steps[i].qubits[0] < first + width]
        first += width
        if not found:
            layout.append(None)
            continue
        positions, indices = zip(*found)
        slots = torch.tensor([program.steps[i].slot for i in indices], device=device)
        dressed_rows = torch.tensor([rows[i] for i in indices], device=device)
        layout.append((slots, width, tuple(positions), dressed_rows))
    return layout


def _undo_layer(blocks: Sequence[torch.Tensor], readouts: list[_Readout | None], chunk: slice, pair: torch.Tensor, overlaps: torch.Tensor, scratch: Scratch) -> torch.Tensor:
    """Undo a fused layer block by block on the stacked (psi, lambda); before
    each block is undone, read <lambda| G |psi> for its rotations from the
    block's reduced overlap."""
    shape, size = pair.shape, pair.shape[1]
    # (2 c, 2^n), so each GEMM reads its strided operand as it lies (a 4-d
    # batched matmul would copy it first)
    flat = pair.reshape(2 * size, -1)
    for block, readout in zip(blocks, readouts):
        if readout is not None:
            d = block.shape[-1]
            # O[x, y] = sum_r psi[x, r] conj(lambda[y, r]): one GEMM reading both states
            overlap = torch.matmul(flat[:size].reshape(size, d, -1), flat[size:].reshape(size, d, -1).mH)
            # each rotation's 2x2 reduced overlap o, then <lambda| G |psi> = sum_uv G_vu o_uv
            reduced = torch.matmul(overlap.reshape(overlap.shape[0], -1), readout.traces)
            value = (reduced.reshape(reduced.shape[0], -1, 4) * rows(readout.generators_t, chunk).reshape(-1, readout.slots.shape[0], 4)).sum(-1)
            overlaps.index_copy_(0, readout.slots, value.T)
        if block.shape[0] == 1:
            flat = apply_block(flat, block, scratch)
        else:
            # per-sample blocks: undo psi and lambda by two GEMMs into the two
            # halves of one buffer; stacking the blocks twice instead copies
            # B d^2 numbers, up to d times the state where states are tiny
            out = scratch.target(flat, flat.shape)
            apply_block(flat[:size], block, out=out[:size])
            apply_block(flat[size:], block, out=out[size:])
            flat = out
    return flat.reshape(shape)
