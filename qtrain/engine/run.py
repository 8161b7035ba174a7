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
from typing import Any

import torch
from torch.autograd import forward_ad

from qtrain.engine.fusion import Layer, apply_layer, as_matrix, kron_blocks, layer_table, layer_widths
from qtrain.engine.kernels import Scratch
from qtrain.engine.program import Program, Step, plain_tensors

__all__ = [
    "apply_plan",
    "apply_step",
    "autograd_records",
    "CHUNK_BYTES",
    "chunked_values",
    "Forward",
    "half_angle_trig",
    "Operators",
    "product_prefix",
    "product_state",
    "rows",
    "Run",
    "run_program",
    "run_widths",
    "sample_chunks",
    "step_operators",
    "StepOperators",
]

#: Bytes of state per chunk on the CPU. Measured at n = 16 on 2 cores (Zen 4,
#: 1 MiB L2 per core, 32 MiB L3): a 3-qubit block pass over 64 samples takes
#: 4.3 ms as one batch and 2.7 to 3.0 ms in chunks of 2 to 8 MiB; the adjoint
#: keeps four chunk-sized states alive, so 4 MiB chunks keep it inside L3.
CHUNK_BYTES = 4 * 2**20


def apply_step(state: torch.Tensor, step: Step, operator: Any, scratch: Scratch | None = None) -> torch.Tensor:
    """Apply one step with its operator (a matrix, a diagonal, or for a
    permutation step its (index, phase or None)): its kind's forward kernel."""
    return step.rule.apply(state, step, operator, scratch)


def half_angle_trig(angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos(angles / 2) and sin(angles / 2), same shape as `angles`: the entries of exp(-i angle G / 2)."""
    half = angles / 2
    return torch.cos(half), torch.sin(half)


class StepOperators:
    """Every step's operator for one batch of angles, by step index (`operators[i]`). A rotation's is a row of its
    kind's stack, made when it is asked for: most rotations run inside fused layers, which read the stacks, and a
    view per rotation at every run cost more than the rotations' arithmetic on one small state (160 views, 0.2 ms,
    at n = 8, 10 layers)."""

    def __init__(self, built: list[Any], stacks: dict[bool, torch.Tensor], rows: dict[int, tuple[bool, int]]) -> None:
        self._built, self._stacks, self._rows = built, stacks, rows

    def __getitem__(self, i: int) -> Any:
        where = self._rows.get(i)
        if where is None:
            return self._built[i]
        diagonal, row = where
        return self._stacks[diagonal][row]

    def __len__(self) -> int:
        return len(self._built)


def step_operators(program: Program, cos: torch.Tensor, sin: torch.Tensor, dtype: torch.dtype, device: torch.device) -> tuple[StepOperators, dict[bool, torch.Tensor]]:
    """Every step's operator for this batch of angles, one per step, and the
    rotations' operators stacked per kind ({diagonal: (R, B, 2[, 2])}, rows in
    `Program.generators` order).

    cos, sin: (B or 1, n_slots) of theta / 2, real. All rotations are built in
    one vectorized expression per kind (matrix or diagonal) before the state
    is touched: hundreds of tiny allocations interleaved with state-sized ones
    would fragment the heap and grow resident memory with depth.
    """
    stacks: dict[bool, torch.Tensor] = {}
    for diagonal, (indices, generators) in program.generators(dtype, device).items():  # (R, Bg, 2[, 2])
        # the slots as a cached index: a list would be made into a tensor at every run
        slots = program.cached(("rotation slots", diagonal, device), lambda: torch.tensor([program.steps[i].slot for i in indices], device=device))
        c = cos.index_select(1, slots).T.to(dtype)  # (R, B)
        s = sin.index_select(1, slots).T.to(dtype) * -1j
        # exp(-i theta G/2) = cos I - i sin G
        if diagonal:
            stacked = c[..., None] + s[..., None] * generators  # (R, B, 2)
        else:
            eye = program.cached(("identity", dtype, device), lambda: torch.eye(2, dtype=dtype, device=device))
            stacked = c[..., None, None] * eye + s[..., None, None] * generators  # (R, B, 2, 2)
        stacks[diagonal] = stacked
    rows = program.cached(("rotation rows", dtype, device), lambda: {i: (diagonal, j) for diagonal, (indices, _) in program.generators(dtype, device).items() for j, i in enumerate(indices)})
    if program.needs_tensor_grad:  # a gate's matrix carries autograd history: its operator is made anew at every run
        return StepOperators(_constant_operators(program, dtype, device), stacks, rows), stacks
    # every other operator depends on the program, dtype and device alone: made once
    return StepOperators(program.cached(("constant operators", dtype, device), lambda: _constant_operators(program, dtype, device)), stacks, rows), stacks


def _constant_operators(program: Program, dtype: torch.dtype, device: torch.device) -> list[Any]:
    """Every step's operator that does not depend on the angles, by step index (None for rotations)."""
    return [None if step.rule.operator is None else step.rule.operator(program, step, dtype, device) for step in program.steps]


def rows(tensor: torch.Tensor, chunk: slice) -> torch.Tensor:
    """The chunk's rows of a per-sample tensor; a tensor shared by all samples
    (leading axis 1) as it is."""
    return tensor if tensor.shape[0] == 1 else tensor[chunk]


class Operators:
    """What a batch of angles makes of a program's plan, kept at the size of
    the parameters: every step's operator for the whole batch, and for each
    fused layer one 2x2 operator per qubit (the product of that qubit's
    chain). A layer's blocks (2^w x 2^w per sample, five times the size of its
    gates at w = 3) are built from these when the layer runs, for one chunk at
    a time, so the memory of a run does not grow with depth by more than its
    angles do."""

    def __init__(self, program: Program, angles: torch.Tensor, dtype: torch.dtype, device: torch.device, widths: Sequence[int]) -> None:
        cos, sin = half_angle_trig(angles)
        self.program, self.widths, self.dtype, self.device = program, tuple(widths), dtype, device
        self.steps, self.rotations = step_operators(program, cos, sin, dtype, device)
        self.table = program.cached(("layer table", device), lambda: layer_table(program, {d: ix for d, (ix, _) in program.generators(dtype, device).items()}, device))
        self.qubit_ops: dict[int, torch.Tensor] = {}
        self.layer_ops: torch.Tensor | None = None  # every layer's qubit operators at once: (n_layers, n, B or 1, 2, 2)
        self._shared_blocks: dict[int, list[torch.Tensor]] = {}
        if self.table.layer_of:
            self.sources = self._sources()
            rows_, products = self.table.chain_rows, self.sources[self.table.chain_rows[:, 0]]
            for p in range(1, rows_.shape[1]):
                # only the chains that have a gate at p (most have one gate)
                longer = self.table.longer_than[p - 1]
                products = products.index_copy(0, longer, self.sources[rows_[longer, p]] @ products[longer])
            self.layer_ops = products[self.table.qubit_rows]  # (n_layers, n, B or 1, 2, 2)
            per_layer = self.layer_ops.unbind(0)
            self.qubit_ops = {k: per_layer[j] for k, j in self.table.layer_of.items()}

    def _sources(self) -> torch.Tensor:
        """(rotations + fixed layer gates + 1, B or 1, 2, 2): the one-qubit
        operators the layers are made of, as rows [rotation matrices, rotation
        diagonals, fixed gates, identity] (the rows `LayerTable` refers to)."""
        dtype, device = self.dtype, self.device
        parts = [self.rotations[False]] if False in self.rotations else []
        if True in self.rotations:
            parts.append(torch.diag_embed(self.rotations[True]))
        fixed = self.program.cached(("layer fixed", dtype, device), lambda: self._fixed_matrices())
        if fixed is not None:
            parts.append(fixed)
        parts.append(self.program.cached(("identity", dtype, device), lambda: torch.eye(2, dtype=dtype, device=device))[None, None])
        batch = max(p.shape[1] for p in parts)
        return torch.cat([p.expand(p.shape[0], batch, 2, 2) for p in parts])

    def _fixed_matrices(self) -> torch.Tensor | None:
        """The fixed one-qubit gates of layers as (F, 1 or B, 2, 2), or None."""
        with plain_tensors():
            mats = [as_matrix(self.program.operand(self.program.steps[i], self.dtype, self.device), self.program.steps[i].diagonal) for i in self.table.fixed]
            batch = max((m.shape[0] for m in mats), default=1)
            return torch.stack([m.expand(batch, 2, 2) for m in mats]) if mats else None

    def dressed_generators(self) -> torch.Tensor:
        """(rotations in layers, B or 1, 2, 2): each rotation's generator as seen
        from the end of its layer, in `table.dressed_row` order: A G A^dagger
        for the gates A that follow it on its qubit (G itself for the last).

        The sweep reads every gradient off the layer's final states, and
        <lambda_j|G|psi_j> = <lambda|A G A^dagger|psi> for the states
        psi_j = A^dagger psi, lambda_j = A^dagger lambda right after gate j."""
        generators = self.generator_matrices()
        rows = self.table.chain_rows
        after: torch.Tensor | None = None  # the product of the gates after position p, per chain
        groups: list[torch.Tensor] = []
        for p in range(rows.shape[1] - 1, -1, -1):
            chains, gens, followed = self.table.rotations_by_position[p]
            g = generators[gens]
            if followed.numel():  # only rotations with gates after them on their qubit are dressed
                # no gate follows the last position, so `after` is set once a rotation is followed
                assert after is not None
                a = after[chains[followed]]
                g = g.expand(g.shape[0], max(g.shape[1], a.shape[1]), 2, 2).index_copy(0, followed, a @ g[followed] @ a.mH)
            groups.append(g)
            if p == 0:
                break
            # after = the product of the gates after position p - 1
            if after is None:
                after = self.sources[rows[:, p]]  # the identity row where a chain is shorter
            else:
                longer = self.table.longer_than[p - 1]  # the chains with a gate at p
                after = after.index_copy(0, longer, after[longer] @ self.sources[rows[longer, p]])
        groups.reverse()
        if not groups:  # layers of fixed gates only (a light cone can prune every rotation)
            return generators
        batch = max(g.shape[1] for g in groups)
        return torch.cat([g.expand(g.shape[0], batch, 2, 2) for g in groups])

    def generator_matrices(self) -> torch.Tensor:
        """Every rotation's generator as (R, Bg, 2, 2), rows [matrices, diagonals] (`Program.generators` order),
        built once per program."""
        return self.program.cached(("generator matrices", self.dtype, self.device), self._generator_matrices)

    def _generator_matrices(self) -> torch.Tensor:
        """Every rotation's generator as (R, Bg, 2, 2), rows [matrices, diagonals]."""
        with plain_tensors():
            stacks = self.program.generators(self.dtype, self.device)
            parts = ([stacks[False][1]] if False in stacks else []) + ([torch.diag_embed(stacks[True][1])] if True in stacks else [])
            if not parts:
                return torch.zeros(0, 1, 2, 2, dtype=self.dtype, device=self.device)
            batch = max(p.shape[1] for p in parts)
            return torch.cat([p.expand(p.shape[0], batch, 2, 2) for p in parts])

    def step(self, item: int, chunk: slice) -> Any:
        """Step `item`'s operator for the chunk's samples (a permutation's is
        shared by every sample)."""
        operator = self.steps[item]
        return operator if isinstance(operator, tuple) else rows(operator, chunk)

    def blocks(self, k: int, chunk: slice) -> list[torch.Tensor]:
        """The blocks of the layer at plan position `k`, for the chunk's samples.
        Blocks shared by the whole batch (a few 2^w x 2^w matrices) are built
        once and kept for every chunk and the reverse sweep: at n = 8, L = 10,
        batch 1, building them again took a fifth of a value-and-gradient."""
        ops = self.qubit_ops[k]
        if ops.shape[1] > 1:
            return kron_blocks(ops[:, chunk], self.widths)
        if k not in self._shared_blocks:
            self._shared_blocks[k] = kron_blocks(ops, self.widths)
        return self._shared_blocks[k]


def sample_chunks(batch: int, sample_bytes: int, device: torch.device) -> list[slice]:
    """Slices of the batch to run one after another: chunks of about
    `CHUNK_BYTES` of state on the CPU, the whole batch elsewhere (a GPU wants
    the widest work it can get)."""
    per_chunk = batch if device.type != "cpu" else max(1, min(batch, CHUNK_BYTES // sample_bytes))
    return [slice(start, min(start + per_chunk, batch)) for start in range(0, batch, per_chunk)]


def run_widths(program: Program, chunk_samples: int, dtype: torch.dtype, per_sample: bool) -> tuple[int, ...]:
    """Block widths for chunks of `chunk_samples` states (with per-sample
    angles when `per_sample`)."""
    return layer_widths(program.n_qubits, chunk_samples * 2**program.n_qubits * dtype.itemsize, per_sample)


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
        # a one-qubit step joins the product only if its kind has a 2x2 operator (as a layer's gates do)
        if not (isinstance(item, Layer) or (len(program.steps[item].qubits) == 1 and program.steps[item].rule.fuses)):
            break
        count += 1
    return count


def product_state(operators: Operators, prefix: int, chunk: slice) -> torch.Tensor:
    """|0...0> through the first `prefix` plan items, qubit by qubit, then
    expanded to the full state: (chunk size or 1, 2^n)."""
    program, dtype, device = operators.program, operators.dtype, operators.device
    n = program.n_qubits
    vectors = torch.tensor([[1], [0]], dtype=dtype, device=device).expand(n, 1, 2, 1)  # (qubit, B, 2, 1)
    for k, item in enumerate(program.plan[:prefix]):
        if isinstance(item, Layer):
            ops = operators.qubit_ops[k]
            vectors = (ops if ops.shape[1] == 1 else ops[:, chunk]) @ vectors
            continue
        step, op = program.steps[item], rows(operators.steps[item], chunk)
        q = step.qubits[0]
        one = op.unsqueeze(-1) * vectors[q] if step.diagonal else op @ vectors[q]  # (B or 1, 2, 1)
        batch = max(vectors.shape[1], one.shape[0])
        vectors = vectors.expand(n, batch, 2, 1)
        vectors = torch.cat([vectors[:q], one.expand(batch, 2, 1)[None], vectors[q + 1 :]])
    state = vectors[0, :, :, 0]
    for v in vectors[1:, :, :, 0]:  # qubit 0 is the most significant bit
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
        self.operators = Operators(program, run.angles, dtype, device, run_widths(program, self.chunks[0].stop, dtype, run.angles.shape[0] > 1))

    def run(self, chunk: slice, scratch: Scratch | None = None) -> torch.Tensor:
        """The final states of the chunk's samples, (size, 2, ..., 2); with a
        `scratch`, they may live in one of its buffers."""
        size, n = chunk.stop - chunk.start, self.program.n_qubits
        if self.initial_state is None:
            product = product_state(self.operators, self.prefix, chunk)
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
    """A tensor seen through torch.func (vmap, grad, jvp) or carrying a forward-mode tangent.

    torch.func.debug_unwrap (public, in torch.func's API reference at least
    since torch 2.7) hands a plain tensor back as it is
    and a transform's wrapper as the tensor under it, so a new object means a
    wrapper; its result is only compared, never computed with (which its
    documentation warns against inside a transform)."""
    return torch.func.debug_unwrap(tensor, recurse=False) is not tensor or forward_ad.unpack_dual(tensor).tangent is not None


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
