"""The single-state path: value and adjoint gradient of one state of a moderate register, in a few wide calls.

One circuit at a time (a VQE step, `value_and_grad` at batch 1) on 5 to 12 qubits holds a few hundred to a few
thousand amplitudes: a gate's arithmetic costs far less than dispatching it, and the engine's sweep (a few calls per
block and per read-out, for psi and lambda together) is bound by its calls. Measured on a hardware-efficient circuit
(n = 8, 10 layers, 2 cores): about 4,500 aten calls, 5 ms, where the arithmetic is tens of microseconds. Here:

- every fused layer's two half-register operators (the Kronecker products of its per-qubit 2x2s over qubits
  0 .. h-1 and h .. n-1) are built for all layers at once, a few calls for the whole circuit; with the state seen as
  a 2^h x 2^(n-h) matrix S, a layer is two matrix products, U_hi S U_lo^T;
- the state after every item that holds a rotation is kept (one state per layer: at most a few MiB where this path
  applies), and so is the cotangent there on the way back, so the reverse pass undoes the cotangent alone;
- every rotation's gradient, 1/2 Im <lambda|G|psi>, is read at the end for all items at once: the reduced overlaps of
  the kept states and cotangents (two batched products, traced down to each qubit by one constant matrix per half),
  contracted with each rotation's generator as seen from the end of its item (`Operators.dressed_generators`, as the
  engine's sweep reads them).

The conventions are the engine's (`engine.adjoint`): the same program, operators, cotangent and overlaps; the tests
hold the two paths equal to rounding. `applies(run)` says when this path serves a run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from qtrain.engine.cotangents import values_and_cotangent
from qtrain.engine.fusion import Layer, qubit_traces
from qtrain.engine.program import Program, Step, StepKind
from qtrain.engine.run import Operators, Run

__all__ = ["applies", "Path", "SINGLE_QUBITS", "state_and_vjp", "value_and_grad"]

#: The registers this path takes (one state, every gate shared). Measured against the engine's sweep and the
#: amplitude-major small path on hardware-efficient circuits of 10 layers (value and gradient, batch 1, 2 cores,
#: best of 5): n = 2-4: 2.0-3.3x the engine, 5-7x the small path; n = 5-11: 2.6-6.8x the engine; n = 12-14:
#: 1.6-2.7x; n = 15: 1.16x. From n = 15 on a layer's two products (2^(3n/2) operations each) approach the engine's
#: block passes, and the engine keeps those registers.
SINGLE_QUBITS = range(2, 15)
#: The most memory the kept states and cotangents may take (two states per item that holds a rotation): the
#: engine's sweep holds a few states whatever the depth, and this path must not grow past that by more than this.
SINGLE_KEPT_BYTES = 64 * 2**20


def applies(run: Run) -> bool:
    """Whether this path serves the run: one state, gates shared (no per-sample axes or matrices), a register in
    `SINGLE_QUBITS`, the engine's three core step kinds only, no gate matrix that wants a gradient, and kept states
    within `SINGLE_KEPT_BYTES`."""
    program = run.program
    if not (run.batch == 1 and program.batch == 1 and program.n_qubits in SINGLE_QUBITS and program.core_only):
        return False
    kept = 2 * _read_count(program) * 2**program.n_qubits * run.dtype.itemsize
    return kept <= SINGLE_KEPT_BYTES and not program.needs_tensor_grad


def _read_count(program: Program) -> int:
    """How many plan items hold a rotation (each keeps a state and a cotangent here)."""
    return program.cached(("single read count",), lambda: sum(
        any(program.steps[i].rule.trainable for i in (item.members if isinstance(item, Layer) else (item,))) for item in program.plan))


def value_and_grad(run: Run, cost: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """As `engine.adjoint.value_and_grad` for a run `applies` accepts: values (1,) and d value / d angle (1, n_slots)."""
    program, n = run.program, run.program.n_qubits
    angles = run.angles.detach()
    with torch.no_grad():
        path = Path(run)
        final = path.forward()
    value, cotangent = values_and_cotangent(cost, final.reshape(1, *([2] * n)))
    if cotangent is None:  # the cost ignores the state
        return value.detach().to(angles.dtype), torch.zeros(1, program.n_slots, dtype=angles.dtype, device=run.device)
    with torch.no_grad():
        grads, _ = path.backward(cotangent, to_start=False)
    return value.detach().to(angles.dtype), grads.to(angles.dtype)


def state_and_vjp(run: Run, cotangent: torch.Tensor, want_initial: bool, path: Path | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The adjoint sweep as a vector-Jacobian product, for `engine.adjoint.AdjointVJP`: the run's angle gradients
    (1, n_slots) for the final state's cotangent (1, 2, ..., 2), and with `want_initial` the initial state's
    gradient (1, 2, ..., 2), else None. `path`: the forward's own (`Path.final_state`), whose kept states serve;
    without it the forward is run again."""
    with torch.no_grad():
        if path is None:
            path = Path(run)
            path.forward()
        grads, initial = path.backward(cotangent, to_start=want_initial)
    return grads, None if initial is None else initial.reshape(cotangent.shape)


@dataclass(frozen=True)
class _Layout:
    """What a program's read-out needs, built once per program and device (`Program.cached`)."""

    reads: tuple[int, ...]  # the plan positions that hold a rotation, in order
    overlap_rows: torch.Tensor  # (R,): each rotation's row of the reduced overlaps, read x n_qubits + qubit
    generator_rows: torch.Tensor  # (R,): its generator's row in [dressed generators of layers, plain generators]
    slots: torch.Tensor  # (R,): its angle column


class Path:
    """One run on this path: its operators (the engine's), every layer's half-register operators, and the kept
    states and cotangents of the items that hold rotations."""

    def __init__(self, run: Run) -> None:
        program = run.program
        n = program.n_qubits
        self.run, self.program, self.n = run, program, n
        self.high = n // 2
        self.shape = (2**self.high, 2 ** (n - self.high))  # the state as a matrix: qubits 0 .. h-1 index its rows
        self.operators = Operators(program, run.angles, run.dtype, run.device, (n,))
        self.layout = program.cached(("single read-out", run.device), lambda: _layout(program, self.operators))
        self.halves: tuple[torch.Tensor, torch.Tensor] | None = None  # every layer's (U_hi, U_lo): (layers, 2^w, 2^w)
        if self.operators.layer_ops is not None:
            ops = self.operators.layer_ops[:, :, 0]  # (layers, n, 2, 2): the gates are shared, one sample
            self.halves = (_kron(ops[:, : self.high]), _kron(ops[:, self.high :]))
        self.kept: list[torch.Tensor] = []

    def _layer_factors(self, undo: bool) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """Per layer, the left and right factors of its two products, S -> left S right: (U_hi, U_lo^T), or for
        the undo (U_hi^dagger, conj(U_lo)); each made for all layers in one call, then split into views."""
        if self.halves is None:
            return (), ()
        high, low = self.halves
        if undo:
            return high.mH.resolve_conj().unbind(0), low.conj().resolve_conj().unbind(0)
        return high.unbind(0), low.mT.unbind(0)

    def final_state(self) -> torch.Tensor:
        """The final state (1, 2, ..., 2), keeping the states a later `backward` reads."""
        with torch.no_grad():
            return self.forward().reshape(1, *([2] * self.n))

    def forward(self, keep: bool = True) -> torch.Tensor:
        """The final state as a (2^h, 2^(n-h)) matrix, keeping the state after every read-out item."""
        run, program = self.run, self.program
        if run.initial_state is None:
            state = torch.zeros(self.shape, dtype=run.dtype, device=run.device)
            state[0, 0] = 1
        else:
            state = run.initial_state.reshape(self.shape).to(run.dtype)
        reads, layer_of = set(self.layout.reads), self.operators.table.layer_of
        lefts, rights = self._layer_factors(undo=False)
        for k, item in enumerate(program.plan):
            if isinstance(item, Layer):
                state = lefts[layer_of[k]] @ state @ rights[layer_of[k]]
            else:
                state = self._step(state, program.steps[item], self.operators.steps[item])
            if keep and k in reads:
                self.kept.append(state)
        return state

    def backward(self, cotangent: torch.Tensor, to_start: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """From the final state's cotangent: the angle gradients (1, n_slots), and with `to_start` the initial
        state's gradient as a matrix (else None). Needs `forward` (keeping) first."""
        program, operators, layout = self.program, self.operators, self.layout
        lam = cotangent.reshape(self.shape)
        reads, layer_of = set(layout.reads), operators.table.layer_of
        stop = 0 if to_start or not layout.reads else layout.reads[0]
        kept_lambdas: list[torch.Tensor] = []
        lefts, rights = self._layer_factors(undo=True)
        for k in range(len(program.plan) - 1, stop - 1, -1):
            if k in reads:
                kept_lambdas.append(lam)
            item = program.plan[k]
            if isinstance(item, Layer):
                lam = lefts[layer_of[k]] @ lam @ rights[layer_of[k]]  # (U_hi (x) U_lo)^dagger
            else:
                step = program.steps[item]
                lam = self._step(lam, step, step.rule.undo(program, step, operators.steps[item], operators.dtype, operators.device))
        grads = torch.zeros(1, program.n_slots, dtype=self.run.angles.dtype, device=self.run.device)
        if layout.reads:
            kept_lambdas.reverse()
            overlaps = self._overlaps(torch.stack(self.kept), torch.stack(kept_lambdas))
            grads[0].index_add_(0, layout.slots, (0.5 * overlaps.imag).to(grads.dtype))
        return grads, lam if to_start else None

    def _overlaps(self, psi: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """<lambda| G |psi> for every rotation (R,), from the kept states and cotangents (T, 2^h, 2^(n-h))."""
        operators, dtype, device, count = self.operators, self.run.dtype, self.run.device, psi.shape[0]
        high, low = self.high, self.n - self.high
        # O[x, y] = sum_r psi[x, r] conj(lambda[y, r]) over the other half, then traced down to each qubit
        o_high = torch.matmul(psi, lam.mH).reshape(count, -1)
        o_low = torch.matmul(psi.mT, lam.conj()).reshape(count, -1)
        reduced = torch.cat((o_high @ qubit_traces(high, tuple(range(high)), dtype, device),
                             o_low @ qubit_traces(low, tuple(range(low)), dtype, device)), dim=1).reshape(-1, 4)
        generators = operators.generator_matrices()[:, 0]
        if operators.table.dressed_row:
            generators = torch.cat((operators.dressed_generators()[:, 0], generators))
        # <lambda| G |psi> = sum_ij G_ij o_ji: each reduced overlap against its generator transposed
        return (reduced[self.layout.overlap_rows] * generators[self.layout.generator_rows].mT.reshape(-1, 4)).sum(-1)

    def _step(self, state: torch.Tensor, step: Step, operator: Any) -> torch.Tensor:
        """One step that is not a layer, on the state as a matrix: a permutation gathers the flat state directly (a
        third of the calls of its kind's kernel, which reshapes for a batch); any other kind runs its kernel."""
        if step.kind == StepKind.PERMUTATION:
            index, phase = operator
            flat = state.reshape(-1).index_select(0, index)
            return (flat if phase is None else flat * phase).view(self.shape)
        return step.rule.apply(state.reshape(1, *([2] * self.n)), step, operator, None).reshape(self.shape)


def _kron(ops: torch.Tensor) -> torch.Tensor:
    """(layers, w, 2, 2) -> (layers, 2^w, 2^w): each layer's Kronecker product, its first qubit the most significant."""
    block = ops[:, 0]
    for i in range(1, ops.shape[1]):
        d = block.shape[-1]
        block = (block[:, :, None, :, None] * ops[:, i, None, :, None, :]).reshape(-1, 2 * d, 2 * d)
    return block


def _layout(program: Program, operators: Operators) -> _Layout:
    """Where each rotation's gradient is read: its item's row of the read-out, its qubit, its generator's row."""
    table, n = operators.table, program.n_qubits
    generator_order = [i for _, (indices, _) in sorted(program.generators(operators.dtype, operators.device).items()) for i in indices]
    plain_row = {i: len(table.dressed_row) + r for r, i in enumerate(generator_order)}  # after the dressed ones
    reads: list[int] = []
    overlap_rows: list[int] = []
    generator_rows: list[int] = []
    slots: list[int] = []
    for k, item in enumerate(program.plan):
        members = item.members if isinstance(item, Layer) else (item,)
        rotations = [i for i in members if program.steps[i].rule.trainable]
        if not rotations:
            continue
        for i in rotations:
            step = program.steps[i]
            overlap_rows.append(len(reads) * n + step.qubits[0])
            generator_rows.append(table.dressed_row[i] if isinstance(item, Layer) else plain_row[i])
            slots.append(step.slot)
        reads.append(k)
    device = operators.device
    as_index = lambda values: torch.tensor(values, dtype=torch.long, device=device)  # noqa: E731
    return _Layout(tuple(reads), as_index(overlap_rows), as_index(generator_rows), as_index(slots))
