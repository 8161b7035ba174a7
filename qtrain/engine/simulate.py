"""Run a `Program` on a batch of states: build every step's operator for this
batch of angles, then apply the schedule (single steps and fused layers).

Runs that autograd does not record go through the batch in chunks of samples
small enough to stay in the CPU's cache (`sample_chunks`): each chunk passes
through the whole circuit before the next one starts, so the many passes of a
deep circuit read the cache instead of main memory, and the working memory is a
few chunks rather than a few batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.autograd import forward_ad

from qtrain.engine.fusion import Layer, apply_layer, as_matrix, kron_blocks, layer_widths
from qtrain.engine.kernels import Scratch, apply_diagonal, apply_matrix
from qtrain.engine.program import Program, Step

#: Bytes of state per chunk on the CPU. Measured at n = 16 on 2 cores (Zen 4,
#: 1 MiB L2 per core, 32 MiB L3): a 3-qubit block pass over 64 samples takes
#: 4.3 ms as one batch and 2.7 to 3.0 ms in chunks of 2 to 8 MiB; the adjoint
#: keeps four chunk-sized states alive, so 4 MiB chunks keep it inside L3.
CHUNK_BYTES = 4 * 2**20


def apply_step(state: torch.Tensor, step: Step, operator: torch.Tensor, scratch: Scratch | None = None) -> torch.Tensor:
    if step.diagonal:
        return apply_diagonal(state, operator, step.qubits, scratch)
    return apply_matrix(state, operator, step.qubits)


def half_angle_trig(angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    half = angles / 2
    return torch.cos(half), torch.sin(half)


def step_operators(program: Program, cos: torch.Tensor, sin: torch.Tensor, dtype: torch.dtype, device: torch.device) -> list[torch.Tensor]:
    """Every step's operator for this batch of angles, one per step.

    cos, sin: (B or 1, n_slots) of theta / 2, real. All rotations are built in
    one vectorized expression per kind (matrix or diagonal) before the state
    is touched: hundreds of tiny allocations interleaved with state-sized ones
    would fragment the heap and grow resident memory with depth.
    """
    operators: list[torch.Tensor | None] = [None] * len(program.steps)
    for diagonal, (indices, generators) in program.generators(dtype, device).items():  # (R, Bg, 2[, 2])
        slots = [program.steps[i].slot for i in indices]
        c = cos[:, slots].T.to(dtype)  # (R, B)
        s = sin[:, slots].T.to(dtype) * -1j
        # exp(-i theta G/2) = cos I - i sin G
        if diagonal:
            stacked = c[..., None] + s[..., None] * generators  # (R, B, 2)
        else:
            eye = torch.eye(2, dtype=dtype, device=device)
            stacked = c[..., None, None] * eye + s[..., None, None] * generators  # (R, B, 2, 2)
        for j, i in enumerate(indices):
            operators[i] = stacked[j]
    for i, step in enumerate(program.steps):
        if step.kind == "fixed":
            operators[i] = program.operand(step, dtype, device)
    return operators  # type: ignore[return-value]


def rows(tensor: torch.Tensor, chunk: slice) -> torch.Tensor:
    """The chunk's rows of a per-sample tensor; a tensor shared by all samples
    (leading axis 1) as it is."""
    return tensor if tensor.shape[0] == 1 else tensor[chunk]


class Operators:
    """What a batch of angles makes of a program's plan, kept at the size of
    the parameters: every step's operator for the whole batch, and the
    one-qubit ones also stacked as 2x2 matrices. A fused layer's blocks
    (2^w x 2^w per sample, five times the size of its gates at w = 3) are built
    from these when the layer runs, for one chunk at a time, so the memory of a
    run does not grow with depth by more than its angles do."""

    def __init__(self, program: Program, angles: torch.Tensor, dtype: torch.dtype, device: torch.device, widths: Sequence[int]) -> None:
        cos, sin = half_angle_trig(angles)
        self.program, self.widths, self.dtype, self.device = program, tuple(widths), dtype, device
        self.steps = step_operators(program, cos, sin, dtype, device)
        layers = {k: item for k, item in enumerate(program.plan) if isinstance(item, Layer)}
        members = sorted({i for layer in layers.values() for i in layer.members})
        self.layer_rows: dict[int, torch.Tensor] = {}
        if not members:
            return
        matrices = [as_matrix(self.steps[i], program.steps[i].diagonal) for i in members]
        batch = max(m.shape[0] for m in matrices)
        identity = torch.eye(2, dtype=dtype, device=device)
        # (members + 1, B or 1, 2, 2): the last row is the identity, for a qubit without a gate
        self.matrices = torch.stack([m.expand(batch, 2, 2) for m in matrices] + [identity.expand(batch, 2, 2)])
        row_of = {i: r for r, i in enumerate(members)}
        for k, layer in layers.items():
            by_qubit = {program.steps[i].qubits[0]: row_of[i] for i in layer.members}
            self.layer_rows[k] = torch.tensor([by_qubit.get(q, len(members)) for q in range(program.n_qubits)], device=device)

    def step(self, item: int, chunk: slice) -> torch.Tensor:
        """Step `item`'s operator for the chunk's samples."""
        return rows(self.steps[item], chunk)

    def blocks(self, k: int, chunk: slice) -> list[torch.Tensor]:
        """The blocks of the layer at plan position `k`, for the chunk's samples."""
        matrices = self.matrices if self.matrices.shape[1] == 1 else self.matrices[:, chunk]
        return kron_blocks(matrices[self.layer_rows[k]], self.widths)


def sample_chunks(batch: int, sample_bytes: int, device: torch.device) -> list[slice]:
    """Slices of the batch to run one after another: chunks of about
    `CHUNK_BYTES` of state on the CPU, the whole batch elsewhere (a GPU wants
    the widest work it can get)."""
    per_chunk = batch if device.type != "cpu" else max(1, min(batch, CHUNK_BYTES // sample_bytes))
    return [slice(start, min(start + per_chunk, batch)) for start in range(0, batch, per_chunk)]


def run_widths(program: Program, chunk_samples: int, dtype: torch.dtype) -> tuple[int, ...]:
    """Block widths for chunks of `chunk_samples` states."""
    return layer_widths(program.n_qubits, chunk_samples * 2**program.n_qubits * dtype.itemsize)


def apply_plan(operators: Operators, chunk: slice, state: torch.Tensor, scratch: Scratch | None = None, start: int = 0) -> torch.Tensor:
    """Apply the plan's items from `start` on to the chunk's states."""
    program = operators.program
    for k in range(start, len(program.plan)):
        item = program.plan[k]
        if isinstance(item, Layer):
            state = apply_layer(state, operators.blocks(k, chunk), scratch)
        else:
            state = apply_step(state, program.steps[item], operators.step(item, chunk), scratch)
    return state


def product_prefix(program: Program) -> int:
    """How many leading plan items act on one qubit per gate (layers and
    one-qubit steps). From |0...0> they leave a product state, which costs a
    few vectors instead of a pass over the state per block."""
    count = 0
    for item in program.plan:
        if not (isinstance(item, Layer) or len(program.steps[item].qubits) == 1):
            break
        count += 1
    return count


def product_state(program: Program, step_ops: Sequence[torch.Tensor], prefix: int, chunk: slice, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """|0...0> through the first `prefix` plan items, qubit by qubit, then
    expanded to the full state: (chunk size or 1, 2^n)."""
    n = program.n_qubits
    vectors = [torch.tensor([[1, 0]], dtype=dtype, device=device)] * n  # (1, 2) per qubit
    for item in program.plan[:prefix]:
        for i in item.members if isinstance(item, Layer) else (item,):
            step, op = program.steps[i], rows(step_ops[i], chunk)
            q = step.qubits[0]
            vectors[q] = op * vectors[q] if step.diagonal else (op @ vectors[q].unsqueeze(-1)).squeeze(-1)
    state = vectors[0]
    for v in vectors[1:]:  # qubit 0 is the most significant bit
        state = (state[:, :, None] * v[:, None, :]).reshape(max(state.shape[0], v.shape[0]), -1)
    return state


@dataclass(frozen=True, eq=False)
class Run:
    """One batch to simulate: `program` with `angles` (batch or 1, n_slots)
    for `batch` samples in `dtype` on `device`, from `initial_state` ((batch
    or 1, 2, ..., 2); None = |0...0>)."""

    program: Program
    angles: torch.Tensor
    batch: int
    dtype: torch.dtype
    device: torch.device
    initial_state: torch.Tensor | None = None


class Forward:
    """A run's forward pass: its gates' operators, block widths and chunks prepared once,
    then run chunk by chunk (`chunked`) or, for work autograd records, as one
    chunk."""

    def __init__(self, run: Run, chunked: bool = True) -> None:
        program, dtype, device = run.program, run.dtype, run.device
        self.program, self.dtype, self.device, self.initial_state = program, dtype, device, run.initial_state
        self.prefix = product_prefix(program) if run.initial_state is None else 0
        self.chunks = sample_chunks(run.batch, 2**program.n_qubits * dtype.itemsize, device) if chunked else [slice(0, run.batch)]
        self.operators = Operators(program, run.angles, dtype, device, run_widths(program, self.chunks[0].stop, dtype))

    def run(self, chunk: slice, scratch: Scratch | None = None) -> torch.Tensor:
        """The final states of the chunk's samples, (size, 2, ..., 2); with a
        `scratch`, they may live in one of its buffers."""
        size, n = chunk.stop - chunk.start, self.program.n_qubits
        if self.initial_state is None:
            product = product_state(self.program, self.operators.steps, self.prefix, chunk, self.dtype, self.device)
            state = product.expand(size, -1).reshape(size, *([2] * n))
        else:
            state = rows(self.initial_state, chunk).expand(size, *self.initial_state.shape[1:])
        return apply_plan(self.operators, chunk, state, scratch, self.prefix)


def autograd_records(run: Run) -> bool:
    """Whether autograd (or a torch.func transform, or forward-mode AD) would
    record a run: only then does it need every intermediate state, one chunk
    and no buffer reuse (the chunked path writes with out= and in place,
    which transforms cannot trace)."""
    inputs = [run.angles] if run.initial_state is None else [run.angles, run.initial_state]
    if any(_transformed(t) for t in inputs):
        return True
    return torch.is_grad_enabled() and (any(t.requires_grad for t in inputs) or run.program.needs_tensor_grad)


def _transformed(tensor: torch.Tensor) -> bool:
    """A tensor seen through torch.func (vmap, grad, jvp) or carrying a forward-mode tangent."""
    return torch._C._functorch.is_functorch_wrapped_tensor(tensor) or forward_ad.unpack_dual(tensor).tangent is not None


def run_program(run: Run) -> torch.Tensor:
    """Evolve the run's initial state through every step: -> (batch, 2, ...,
    2). Differentiable by plain autograd (memory grows with depth: one state
    per step)."""
    if autograd_records(run):
        forward = Forward(run, chunked=False)
        return forward.run(forward.chunks[0]).contiguous()
    with torch.no_grad():
        forward = Forward(run)
        final = torch.empty(run.batch, *([2] * run.program.n_qubits), dtype=run.dtype, device=run.device)
        scratch = Scratch()
        for chunk in forward.chunks:
            final[chunk] = forward.run(chunk, scratch)
    return final


def chunked_values(run: Run, cost: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """cost(final states) for a batch, without autograd: (batch, ...). Each
    chunk's final states go straight into `cost` (states (c, 2, ..., 2) ->
    (c, ...)), so the batch of final states is never held."""
    with torch.no_grad():
        forward = Forward(run)
        scratch = Scratch()
        return torch.cat([cost(forward.run(chunk, scratch)) for chunk in forward.chunks])
