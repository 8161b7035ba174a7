"""Layer fusion: runs of one-qubit gates on distinct qubits applied as a few
dense blocks, one pass over the state per block instead of one per gate.

A `Layer` groups consecutive one-qubit steps that touch each qubit at most
once. Its qubits are cut into contiguous blocks (`layer_widths`: 3 qubits
where the states stay in cache, 4 where they stream from memory; covering all
n qubits, identity where a qubit has no gate), and each block's
2^w x 2^w operator is the Kronecker product of its gates (per sample when any
gate is). The state is stored with the block's qubits leading, so applying the
block is one batched GEMM, written back transposed: (B, 2^w, R) -> (B, R, 2^w).
That moves the block's qubits to the end, the next block's qubits to the front,
and after the last block the qubit order is the original again. No permutation
copies, and GEMM runs the arithmetic at full speed.

All of a layer's gates act on different qubits and commute, so for the adjoint
gradient of a rotation exp(-i theta G/2) in a block, 1/2 Im <lambda|G|psi> can
be read at the moment that block is about to be undone, from the block's
reduced overlap O = psi lambda^dagger (one GEMM that reads both states once),
traced down to each rotation's qubit by one more small matmul (`qubit_traces`).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from qtrain.engine.kernels import Scratch
from qtrain.engine.program import Step, StepKind

__all__ = [
    "apply_block",
    "apply_layer",
    "as_matrix",
    "BLOCK_QUBITS",
    "block_widths",
    "CACHE_RESIDENT_BYTES",
    "kron_blocks",
    "Layer",
    "LAYER_SHARE",
    "layer_table",
    "layer_widths",
    "LayerTable",
    "plan_schedule",
    "qubit_traces",
    "TINY_PER_SAMPLE_QUBITS",
]

#: Widest block for states that stream from memory. Measured at n = 16, S = 64
#: on 2 cores: a 2^4 x 2^4 block pass takes 6.1 ms, 2^3: 4.4 ms, 2^2: 5.5 ms
#: (GEMM is inefficient that narrow), a plain copy 2.1 ms: four-qubit blocks
#: give the fewest milliseconds per qubit.
BLOCK_QUBITS = 4
#: States that stay in cache are arithmetic-bound instead. The same work in
#: cache-sized chunks: 2^2: 3.3 ms, 2^3: 3.0 ms, 2^4: 5.0 ms per pass, i.e.
#: 1.65, 1.0 and 1.25 ms per qubit, so three-qubit blocks, with the remainder
#: in one four-qubit block (n = 1 mod 3) or one two-qubit block (n = 2 mod 3).
CACHE_RESIDENT_BYTES = 8 * 2**20


#: Per-sample layers on states this small run as one-qubit blocks: a w-qubit
#: block costs 4^w numbers per sample to build, as much as the state or more
#: here, and batched GEMMs that small run far below speed. Measured (4 layers
#: of RY RZ + CNOT chain, value and gradient, 2 cores): n = 3, B = 7000:
#: one 3-qubit block 89 ms, one-qubit blocks 33 ms; n = 4, B = 1024: (4,)
#: 27 ms, (2, 2) 21 ms, one-qubit 17 ms; from n = 6 on, wider blocks win
#: again (n = 8, B = 256: (3, 3, 2) 25 ms, one-qubit 39 ms). Blocks shared
#: by the batch (one circuit, or every sample at the same angles) are one
#: real GEMM each, efficient at four qubits even in cache, and fewer blocks
#: mean fewer calls where calls dominate: batch 1, n = 8, L = 10: (3, 3, 2)
#: 11.0 ms, (4, 4) 8.8 ms; n = 12: (3, 3, 3, 3) 19.9 ms, (4, 4, 4) 16.6 ms.
TINY_PER_SAMPLE_QUBITS = 4


def layer_widths(n_qubits: int, state_bytes: int, per_sample: bool) -> tuple[int, ...]:
    """Block widths for a batch of states of `state_bytes` in all, whose
    layers hold per-sample operators when `per_sample`."""
    if per_sample and n_qubits <= TINY_PER_SAMPLE_QUBITS:
        return (1,) * n_qubits
    if state_bytes > CACHE_RESIDENT_BYTES or not per_sample:
        return block_widths(n_qubits, BLOCK_QUBITS)
    if n_qubits <= 4:
        return (n_qubits,)
    threes, remainder = divmod(n_qubits, 3)
    if remainder == 1:
        return (3,) * (threes - 1) + (4,)
    return (3,) * threes + ((2,) if remainder else ())


#: A group of one-qubit gates on distinct qubits becomes a Layer when it has
#: at least n / LAYER_SHARE gates (and two). A Layer costs about n / 3 block
#: passes; one gate alone costs 1 to 2.5 block passes (measured at n = 16, one
#: einsum against a 3-qubit block GEMM) plus its own gradient read-out in the
#: adjoint, so a Layer pays from about n / 6 gates on. Partial layers are what
#: an observable's light cone leaves: at n = 12, L = 10 this rule against the
#: old "half the qubits" took (a) from 23 to 13 ms and (b) from 53 to 23 ms.
LAYER_SHARE = 6


@dataclass(frozen=True)
class Layer:
    """One-qubit gates fused into one pass per block. `chains` holds, for each
    qubit the layer touches, its gates' step indices in the order they act
    (a qubit's gates multiply into one 2x2 operator; different qubits'
    commute)."""

    chains: tuple[tuple[int, ...], ...]

    @property
    def members(self) -> tuple[int, ...]:
        """Every step index, chain by chain (each qubit's gates in order)."""
        return tuple(i for chain in self.chains for i in chain)


def block_widths(n_qubits: int, widest: int = BLOCK_QUBITS) -> tuple[int, ...]:
    """n split into the fewest near-equal blocks of at most `widest` qubits."""
    count = -(-n_qubits // widest)
    base, extra = divmod(n_qubits, count)
    return tuple(base + (1 if i < extra else 0) for i in range(count))


def plan_schedule(steps: Sequence[Step], n_qubits: int) -> tuple[int | Layer, ...]:
    """The order of execution: a step index, or a Layer of one-qubit steps.

    Consecutive one-qubit steps (up to the next multi-qubit step) form a
    group, every qubit's gates chained in order: R_Y then R_Z on a qubit is
    one 2x2 operator, one block pass. A group becomes a Layer when it has at
    least n / LAYER_SHARE gates (and two), where saving passes outweighs the
    blocks' identity work; otherwise its steps run one by one."""
    schedule: list[int | Layer] = []
    chains: dict[int, list[int]] = {}
    order: list[int] = []

    def flush() -> None:
        if len(order) >= 2 and LAYER_SHARE * len(order) >= n_qubits:
            schedule.append(Layer(tuple(tuple(chain) for chain in chains.values())))
        else:
            schedule.extend(order)
        chains.clear()
        order.clear()

    for i, step in enumerate(steps):
        if len(step.qubits) == 1 and step.rule.fuses:
            chains.setdefault(step.qubits[0], []).append(i)
            order.append(i)
        else:
            flush()
            schedule.append(i)
    flush()
    return tuple(schedule)


def as_matrix(operator: torch.Tensor, diagonal: bool) -> torch.Tensor:
    """A one-qubit operator as (B, 2, 2), from a matrix or a diagonal (B, 2)."""
    return torch.diag_embed(operator) if diagonal else operator


def kron_blocks(operators: torch.Tensor, widths: Sequence[int]) -> list[torch.Tensor]:
    """The Kronecker product of each block's one-qubit operators.

    operators: (n, B or 1, 2, 2), one per qubit in qubit order (the identity
    where a qubit has no gate). -> [(B or 1, 2^w, 2^w)] for blocks of `widths`
    qubits in qubit order. Blocks of equal width are built together, so a
    layer costs a few small products whatever its number of blocks.
    """
    batch = operators.shape[1]
    blocks: list[torch.Tensor] = []
    first = 0
    for width, run in itertools.groupby(widths):
        count = len(list(run))
        group = operators[first : first + width * count].reshape(count, width, batch, 2, 2)
        block = group[:, 0]
        for i in range(1, width):
            d = block.shape[-1]
            # qubit `first` is the most significant bit of the block index
            block = (block[..., :, None, :, None] * group[:, i, :, None, :, None, :]).reshape(count, batch, 2 * d, 2 * d)
        blocks.extend(block.unbind(0))
        first += width * count
    return blocks


def apply_block(state: torch.Tensor, block: torch.Tensor, scratch: Scratch | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """state (..., B, 2^w * R) with the block's qubits leading -> (..., B, R * 2^w)
    with them trailing, as one batched GEMM: out = (U s)^T. Leading axes
    (the adjoint's stacked pair of states) share the block (B or 1, d, d).
    The result goes into `out` when given (a contiguous tensor of the
    result's size), else into a scratch buffer when given."""
    d = block.shape[-1]
    lead, batch = state.shape[:-2], max(state.shape[-2], block.shape[0])
    leading = state.reshape(*state.shape[:-1], d, -1)
    shape = (*lead, batch, leading.shape[-1], d)
    if out is not None:
        out = out.view(shape)
    elif scratch is not None:
        out = scratch.target(state, shape)
    else:
        return torch.matmul(leading.transpose(-1, -2), block.transpose(-1, -2)).reshape(*lead, batch, -1)
    return torch.matmul(leading.transpose(-1, -2), block.transpose(-1, -2), out=out).reshape(*lead, batch, -1)


def apply_layer(state: torch.Tensor, blocks: Sequence[torch.Tensor], scratch: Scratch | None = None) -> torch.Tensor:
    """Apply every block; the qubit order ends where it started. (B, 2, ..., 2) in and out."""
    shape = state.shape
    flat = state.reshape(shape[0], -1)
    for block in blocks:
        flat = apply_block(flat, block, scratch)
    return flat.reshape(flat.shape[0], *shape[1:])


@functools.cache
def _qubit_traces(width: int) -> torch.Tensor:
    """E (d^2, 4 w), real: row x d + y, column 4 p + 2 i + j is 1 when bit p of
    x is i, bit p of y is j (bit 0 the most significant) and x and y agree on
    every other bit, so O.reshape(B, d^2) @ E traces a block's overlap down to
    each of its qubits at once."""
    d = 2**width
    x, y = torch.arange(d)[:, None], torch.arange(d)[None, :]
    traces = torch.zeros(d, d, width, 2, 2, dtype=torch.float64)
    for p in range(width):
        bit = width - 1 - p
        others_agree = ((x ^ y) & ~(1 << bit)) == 0
        traces[:, :, p].view(d, d, 4)[others_agree, ((x >> bit & 1) * 2 + (y >> bit & 1)).expand(d, d)[others_agree]] = 1
    return traces.reshape(d * d, 4 * width)


@functools.lru_cache(maxsize=256)
def qubit_traces(width: int, positions: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The columns of `_qubit_traces` for the block's qubits at `positions`:
    (d^2, 4 k), cached (every layer of a circuit shares a few layouts)."""
    columns = [4 * p + c for p in positions for c in range(4)]
    return _qubit_traces(width)[:, columns].to(dtype=dtype, device=device)


@dataclass(frozen=True, eq=False)
class LayerTable:
    """Index tables that let a run build every fused layer's per-qubit
    operators, and every rotation's generator as seen from the end of its
    layer, in a few batched products for the whole program rather than a
    few per gate (per-gate Python dominates small states).

    Rows refer to a run's `sources`: the stacked one-qubit operators of the
    run, in the order [rotation matrices, rotation diagonals, fixed
    one-qubit gates of layers, identity] (see `Operators`).
    """

    chain_rows: torch.Tensor  # (Q + 1, longest): each chain's gates as source rows, padded with the identity row; last, the identity alone
    qubit_rows: torch.Tensor  # (n_layers, n): each layer's qubits as rows of the chain products (Q = identity)
    layer_of: dict[int, int]  # plan position -> layer number
    fixed: tuple[int, ...]  # the fixed one-qubit steps in layers, in source order
    longer_than: tuple[torch.Tensor, ...]  # per chain position p: the chains with a gate after p
    rotations_by_position: tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], ...]  # per chain position: (chain numbers, generator rows, which of them have a gate after them)
    dressed_row: dict[int, int]  # rotation step -> its row of the dressed generators


def layer_table(program, generator_order: dict[bool, list[int]], device: torch.device) -> LayerTable:
    """The `LayerTable` of a program whose rotation generators are stacked in
    `generator_order` ({diagonal: step indices}, as `Program.generators`)."""
    layers = [(k, item) for k, item in enumerate(program.plan) if isinstance(item, Layer)]
    matrices, diagonals = generator_order.get(False, []), generator_order.get(True, [])
    fixed = tuple(i for _, layer in layers for i in layer.members if program.steps[i].kind == StepKind.FIXED)
    source_row = {i: r for r, i in enumerate([*matrices, *diagonals, *fixed])}
    identity = len(source_row)
    chains = [chain for _, layer in layers for chain in layer.chains]
    longest = max((len(c) for c in chains), default=1)
    # one more chain, of the identity alone: the operator of a layer's idle qubits
    chain_rows = torch.tensor([[source_row[i] for i in c] + [identity] * (longest - len(c)) for c in [*chains, ()]], dtype=torch.long).reshape(-1, longest)
    qubit_rows, number = [], 0
    for _, layer in layers:
        row = [len(chains)] * program.n_qubits
        for chain in layer.chains:
            row[program.steps[chain[0]].qubits[0]] = number
            number += 1
        qubit_rows.append(row)
    # rotations grouped by their position in their chain; generators as rows of [matrices, diagonals]
    by_position: list[list[tuple[int, int]]] = [[] for _ in range(longest)]
    for c, chain in enumerate(chains):
        for p, i in enumerate(chain):
            if program.steps[i].kind == StepKind.ROTATION:
                by_position[p].append((c, i))
    dressed_row: dict[int, int] = {}
    groups: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for p, found in enumerate(by_position):
        for c, i in found:
            dressed_row[i] = len(dressed_row)
        followed = [j for j, (c, _) in enumerate(found) if len(chains[c]) > p + 1]
        chain_numbers, generator_rows, followed_rows = (torch.tensor(x, dtype=torch.long, device=device) for x in ([c for c, _ in found], [source_row[i] for _, i in found], followed))
        groups.append((chain_numbers, generator_rows, followed_rows))
    longer_than = tuple(torch.tensor([c for c, chain in enumerate(chains) if len(chain) > p + 1], dtype=torch.long, device=device) for p in range(longest))
    return LayerTable(
        chain_rows.to(device),
        torch.tensor(qubit_rows, dtype=torch.long, device=device).reshape(-1, program.n_qubits),
        {k: j for j, (k, _) in enumerate(layers)},
        fixed,
        longer_than,
        tuple(groups),
        dressed_row,
    )
