"""The small-state path: value and adjoint gradient of many tiny states, amplitude-major.

The engine keeps states batch-first, (B, 2, ..., 2), and applies a per-sample 2x2 operator as a batched matrix product.
On a tiny register (the trainer's thousands of 3- to 6-qubit starts) that product works on blocks of a few numbers
per sample, and its dispatch and strided access cost far more than the arithmetic. Here the state is held
amplitude-major instead, (2, ..., 2, B): every amplitude is a contiguous row of B numbers, so a one-qubit gate is a
handful of elementwise products over rows (a rotation's two amplitude pairs, `U x0` and `U x1`), a fused permutation
one row gather, and a fixed gate on k qubits one small matrix product over rows. Measured on the trainer's circuit
(experiments/benchmarks/small_layout.py for one gate): one R_Y on 7000 three-qubit states takes about a seventh of
the batched product's time.

The gradient is the adjoint method of `engine.adjoint`, on the same program and with the same conventions: forward
to the final state, the cost's cotangent by autograd on the cost alone, then one reverse sweep that undoes every step
on the state and the cotangent together (one stacked tensor, so each undo is one set of operations for both) and
reads each rotation's derivative, 1/2 Im <lambda| G |psi>, on the way. No autograd graph is built for the circuit.

`applies(run)` says when this path is taken: registers of at most `SMALL_QUBITS` qubits (at most `WIDE_QUBITS` for
batches of at least `WIDE_BATCH`), batches whose states fit
`SMALL_ELEMENTS` amplitudes at once (no chunking is needed below that), and programs of the three core step kinds
only (a step kind registered later goes the engine's way).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from qtrain.engine.fusion import Layer
from qtrain.engine.program import Program, Step, StepKind
from qtrain.engine.cotangents import values_and_cotangent
from qtrain.engine.run import Run, half_angle_trig, step_operators

__all__ = ["SMALL_ELEMENTS", "SMALL_QUBITS", "WIDE_BATCH", "WIDE_QUBITS", "applies", "value_and_grad"]

#: the registers the small-state path takes at any batch, and up to which it takes batches of at least `WIDE_BATCH`.
#: Measured against the engine's batch-first sweep, interleaved in one process on 2 cores, hardware-efficient circuits
#: of 6 layers (speed-up at B = 16 / 256 / 2048-4096): n = 2: 1.1 / 1.3 / 2.4x; n = 3: 1.1 / 1.3 / 1.9x; n = 4: 1.1 /
#: 1.5 / 1.3x; n = 5: 0.9 / 1.8 / 1.3-1.5x; n = 6: 0.9 / 1.5 / 1.0x; n = 7: 0.9 / 1.5 / 1.0x. The trainer's 3-qubit
#: circuit at B = 7000: 2.5x. Tiny batches of wider states are the engine's (its fused blocks win there).
SMALL_QUBITS = 4
#: the widest register it takes when the batch is at least `WIDE_BATCH`
WIDE_QUBITS = 7
#: the smallest batch at which it takes registers of SMALL_QUBITS + 1 to WIDE_QUBITS qubits
WIDE_BATCH = 128
#: the most amplitudes (batch x 2^n) it holds at once: its state, cotangent and a few temporaries stay in cache-sized
#: memory, and larger batches keep the engine's chunking
SMALL_ELEMENTS = 2**21


def applies(run: Run) -> bool:
    """Whether `value_and_grad` here serves this run (else the engine's chunked adjoint does)."""
    program, n = run.program, run.program.n_qubits
    sized = n <= SMALL_QUBITS or (n <= WIDE_QUBITS and run.batch >= WIDE_BATCH)
    return sized and run.batch * 2**n <= SMALL_ELEMENTS and program.core_only


def order(program: Program) -> list[int]:
    """The step indices in the order the program runs them (a fused layer's one-qubit gates chain by chain: gates on
    different qubits commute, and each qubit's chain keeps its order)."""
    return [i for item in program.plan for i in (item.members if isinstance(item, Layer) else (item,))]


def value_and_grad(run: Run, cost: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """As `engine.adjoint.value_and_grad`: values (batch,) and d value / d angle (batch, n_slots), both real."""
    program, batch, dtype, device = run.program, run.batch, run.dtype, run.device
    n = program.n_qubits
    angles = run.angles.detach()
    cos, sin = half_angle_trig(angles)
    forward, undo = _pair_entries(program, cos, sin, dtype, device)
    steps = order(program)
    with torch.no_grad():
        state = _initial(run, n, batch)
        spare = torch.empty_like(state)
        for i in steps:
            state, spare = _apply(state, spare, program.steps[i], forward.get(i), program, dtype, device, n, lead=0, adjoint=False)
    final = state.reshape(2**n, batch)
    value, cotangent = values_and_cotangent(cost, final.T.reshape(batch, *([2] * n)))
    grads = torch.zeros(batch, program.n_slots, dtype=angles.dtype, device=device)
    if cotangent is None:  # the cost ignores the state
        return value.detach().to(angles.dtype), grads
    with torch.no_grad():
        both = torch.stack((final, cotangent.reshape(batch, 2**n).T)).reshape(2, *([2] * n), batch)
        spare = torch.empty_like(both)
        overlaps = torch.zeros(program.n_slots, batch, dtype=dtype, device=device)
        for i in reversed(steps):
            step = program.steps[i]
            if step.kind == StepKind.ROTATION:
                overlaps[step.slot] += _generator_overlap(both, step, program.operand(step, dtype, device), n)
            both, spare = _apply(both, spare, step, undo.get(i), program, dtype, device, n, lead=1, adjoint=True)
    return value.detach().to(angles.dtype), (0.5 * overlaps.imag.T).to(angles.dtype)


def _initial(run: Run, n: int, batch: int) -> torch.Tensor:
    """|0...0> (or the run's initial states) amplitude-major: (2, ..., 2, batch)."""
    if run.initial_state is None:
        state = torch.zeros(2**n, batch, dtype=run.dtype, device=run.device)
        state[0] = 1
    else:
        state = run.initial_state.reshape(-1, 2**n).T.to(run.dtype).expand(2**n, batch).contiguous()
    return state.reshape(*([2] * n), batch)


Entries = tuple[torch.Tensor, ...]


def _pair_entries(program: Program, cos: torch.Tensor, sin: torch.Tensor, dtype: torch.dtype,
                  device: torch.device) -> tuple[dict[int, Entries], dict[int, Entries]]:
    """Per one-qubit step, the entries of its operator and of its inverse, each broadcasting over the batch (shape
    (B,) or (1,)): (u00, u01, u10, u11), or (u0, u1) for a diagonal. The operators are the engine's own
    (`run.step_operators`: the rotations built per kind in one expression, the fixed gates' matrices); the inverses
    are conjugated (and transposed) here once, not at every undo."""
    operators, _ = step_operators(program, cos, sin, dtype, device)
    forward: dict[int, Entries] = {}
    for i, step in enumerate(program.steps):
        if step.kind in (StepKind.ROTATION, StepKind.FIXED) and len(step.qubits) == 1:
            op = operators[i]  # (1|B, 2) or (1|B, 2, 2)
            forward[i] = (op[:, 0], op[:, 1]) if step.diagonal else (op[:, 0, 0], op[:, 0, 1], op[:, 1, 0], op[:, 1, 1])
    undo: dict[int, Entries] = {}
    for i, entries in forward.items():
        conj = tuple(e.conj().resolve_conj() for e in entries)
        undo[i] = conj if len(conj) == 2 else (conj[0], conj[2], conj[1], conj[3])  # U^dagger: conjugated, transposed
    return forward, undo


def _apply(state: torch.Tensor, spare: torch.Tensor, step: Step, entries: Entries | None, program: Program, dtype: torch.dtype,
           device: torch.device, n: int, lead: int, adjoint: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One step (or its inverse: `entries` are then the inverse's) on amplitude-major states with `lead` leading axes,
    (..., 2, ..., 2, B), written into `spare` where it can be: -> (the new state, the buffer free for the next step)."""
    if entries is not None:  # a one-qubit step: two (or four) products over rows, into the spare buffer
        axis = lead + step.qubits[0]
        x0, x1 = state.select(axis, 0), state.select(axis, 1)
        o0, o1 = spare.select(axis, 0), spare.select(axis, 1)
        if len(entries) == 2:
            torch.mul(x0, entries[0], out=o0)
            torch.mul(x1, entries[1], out=o1)
        else:
            u00, u01, u10, u11 = entries
            torch.mul(x0, u00, out=o0).addcmul_(x1, u01)
            torch.mul(x0, u10, out=o1).addcmul_(x1, u11)
        return spare, state
    if step.kind == StepKind.PERMUTATION:
        index, phase = program.permutation(step, dtype, device)["undo_psi" if adjoint else "forward"]
        shape = state.shape
        rows = spare.reshape(*shape[:lead], 2**n, shape[-1])
        torch.index_select(state.reshape(*shape[:lead], 2**n, shape[-1]), lead, index, out=rows)
        if phase is not None:
            rows.mul_(phase[:, None])
        return spare, state
    operator = program.operand(step, dtype, device)  # a fixed gate on k >= 2 qubits: (1|B, d, d), or a diagonal (1|B, d)
    k = len(step.qubits)
    axes = tuple(lead + q for q in step.qubits)
    front = tuple(range(lead, lead + k))
    moved = state.movedim(axes, front)
    shape = moved.shape
    rows = moved.reshape(*shape[:lead], 2**k, -1, shape[-1])  # (..., d, rest, B)
    if step.diagonal:
        diagonal = (operator.conj() if adjoint else operator).T  # (d, 1|B)
        out = rows * diagonal[:, None, :]
    else:
        matrix = operator.conj().transpose(-2, -1) if adjoint else operator
        if matrix.shape[0] == 1:
            out = torch.einsum("ij,...jrb->...irb", matrix[0], rows)
        else:  # per-sample matrices (a batch of unitaries)
            out = torch.einsum("bij,...jrb->...irb", matrix, rows)
    return out.reshape(shape).movedim(front, axes).contiguous(), spare


def _generator_overlap(both: torch.Tensor, step: Step, generator: torch.Tensor, n: int) -> torch.Tensor:
    """<lambda| G |psi> per sample (B,) at a rotation, from the stacked (psi, lambda) amplitude-major states."""
    q = step.qubits[0]
    psi, lam = both[0], both[1]
    p0, p1 = psi.select(q, 0), psi.select(q, 1)
    l0, l1 = lam.select(q, 0).conj(), lam.select(q, 1).conj()
    if step.diagonal:
        return _over_amplitudes(l0 * p0, n) * generator[:, 0] + _over_amplitudes(l1 * p1, n) * generator[:, 1]
    g00, g01, g10, g11 = generator[:, 0, 0], generator[:, 0, 1], generator[:, 1, 0], generator[:, 1, 1]
    return _over_amplitudes(l0 * (g00 * p0 + g01 * p1) + l1 * (g10 * p0 + g11 * p1), n)


def _over_amplitudes(products: torch.Tensor, n: int) -> torch.Tensor:
    """The sum over the n - 1 amplitude axes left once a rotation's qubit is selected: (2, ..., 2, B) -> (B,). (With
    one qubit there is none, and `sum(dim=())` would sum over everything.)"""
    return products.sum(dim=tuple(range(n - 1))) if n > 1 else products
