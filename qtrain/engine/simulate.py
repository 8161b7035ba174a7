"""Run a lowered circuit (a `Program` of `Step`s) on a batch of states.

The circuit front end (`qtrain.circuit`) lowers its gates to three kinds of
step, validated once, so the hot loop here never looks at gate names:

  fixed     a constant operator: a matrix (1|B, d, d) or a diagonal (1|B, d)
  rotation  exp(-i theta G / 2) for a generator G (1|B, 2, 2), or its diagonal
            (1|B, 2) for R_Z; theta is column `slot` of the angle matrix

Trainable angles arrive as one (B or 1, n_slots) tensor, already gathered from
theta by the circuit (`theta[..., slot_params]`): that gather is all there is
to parameter sharing, and autograd sums a shared parameter's gradient over its
slots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from qtrain.engine.kernels import apply_diagonal, apply_matrix, zero_state

COMPLEX_DTYPES = (torch.complex64, torch.complex128)


@dataclass(frozen=True, eq=False)
class Step:
    """One instruction. `tensor` is kept as given (usually complex128 on the
    CPU) and converted per run by `Program.operand`."""

    kind: str  # "fixed" or "rotation"
    qubits: tuple[int, ...]
    tensor: torch.Tensor  # fixed: the operator; rotation: the generator
    diagonal: bool = False
    slot: int = -1  # rotation: column of the angle matrix

    @property
    def batch(self) -> int:
        return self.tensor.shape[0]


@dataclass(frozen=True, eq=False)
class Program:
    n_qubits: int
    steps: tuple[Step, ...]
    n_slots: int
    _operands: dict = field(default_factory=dict, repr=False)

    @property
    def batch(self) -> int:
        """The batch the gates themselves fix (per-sample axes or unitaries), or 1."""
        return max((s.batch for s in self.steps), default=1)

    @property
    def needs_tensor_grad(self) -> bool:
        return any(s.tensor.requires_grad for s in self.steps)

    def operand(self, step: Step, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """`step.tensor` in the run's dtype and device, converted once and cached
        (but never cached when it carries autograd history)."""
        if step.tensor.requires_grad:
            return step.tensor.to(dtype=dtype, device=device)
        key = (id(step), dtype, device)
        if key not in self._operands:
            self._operands[key] = step.tensor.to(dtype=dtype, device=device)
        return self._operands[key]

    def generators(self, dtype: torch.dtype, device: torch.device) -> dict[bool, tuple[list[int], torch.Tensor]]:
        """The rotation steps' generators stacked per kind, converted once and cached:
        {diagonal: (step indices, (R, Bg, 2) or (R, Bg, 2, 2))}. One allocation per
        kind; views into it serve every step."""
        key = ("generators", dtype, device)
        if key not in self._operands:
            stacks = {}
            for diagonal in (False, True):
                indices = [i for i, st in enumerate(self.steps) if st.kind == "rotation" and st.diagonal == diagonal]
                if indices:
                    tensors = [self.steps[i].tensor for i in indices]
                    batch = max(t.shape[0] for t in tensors)
                    stacked = torch.stack([t.expand(batch, *t.shape[1:]) for t in tensors]).to(dtype=dtype, device=device)
                    stacks[diagonal] = (indices, stacked)
            self._operands[key] = stacks
        return self._operands[key]


def fuse_diagonals(steps: Sequence[Step]) -> list[Step]:
    """Merge each run of consecutive shared, constant diagonal steps (a CZ
    ladder, say) into one diagonal over the union of their qubits, so the run
    costs one pass over the state instead of one per gate."""
    fused: list[Step] = []
    run: list[Step] = []

    def flush() -> None:
        if len(run) == 1:
            fused.append(run[0])
        elif run:
            qubits = tuple(sorted({q for s in run for q in s.qubits}))
            position = {q: i for i, q in enumerate(qubits)}
            # Treat the running product as a 'state' over the union's qubits
            # and multiply each gate's diagonal into it.
            product = torch.ones(1, *([2] * len(qubits)), dtype=torch.complex128)
            for s in run:
                product = apply_diagonal(product, s.tensor.to(torch.complex128), [position[q] for q in s.qubits])
            fused.append(Step("fixed", qubits, product.reshape(1, -1), diagonal=True))
        run.clear()

    for step in steps:
        if step.kind == "fixed" and step.diagonal and step.batch == 1 and not step.tensor.requires_grad:
            run.append(step)
        else:
            flush()
            fused.append(step)
    flush()
    return fused


def apply_step(state: torch.Tensor, step: Step, operator: torch.Tensor) -> torch.Tensor:
    if step.diagonal:
        return apply_diagonal(state, operator, step.qubits)
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
    for step, operator in zip(program.steps, operators):
        state = apply_step(state, step, operator)
    return state
