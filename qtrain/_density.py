"""Noisy circuits by exact density-matrix evolution.

Every gate as the user added it becomes one superoperator on its qubits' row
and column axes: U (x) conj(U) followed by the noise model's channels after
that gate (`qtrain.noise`), multiplied into one (B or 1, 4^k, 4^k) matrix.
Consecutive gates on at most two qubits are multiplied into one block
(`BLOCK_QUBITS`), so a layer of R_Y, R_Z and a CZ chain with channels after
each gate costs one pass over rho per qubit, not one per gate and channel.

Values run chunk by chunk without autograd. With autograd, rho is evolved
in segments under `torch.utils.checkpoint`: only the rho at each segment
boundary is kept, and a segment is recomputed when the backward pass reaches
it (about 2 sqrt(blocks) states of memory instead of one per block, for one
more forward pass).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch.utils.checkpoint import checkpoint

from qtrain._circuit_data import CircuitData
from qtrain._lightcone import light_cone, observable_support, remap
from qtrain._lowering import lower
from qtrain._memory import budget_bytes, format_bytes
from qtrain.engine import PauliSum, plain_tensors
from qtrain.engine.density import apply_superoperator, density_expval, interleaved, superoperator_of_unitary
from qtrain.engine.program import Step, StepKind
from qtrain.engine.run import half_angle_trig, sample_chunks
from qtrain.noise import NoiseModel, superoperator

__all__ = ["BLOCK_QUBITS", "DensityPlan", "apply_superoperator", "block_superoperator", "check_memory", "checkpointed_states", "density_plan", "density_values", "evolve", "initial_density", "noisy_cone", "slot_angles", "required_bytes"]

#: Gates are multiplied into blocks on at most this many qubits: a block is a
#: (4^w, 4^w) matrix on 2w axes of rho. Two qubits keep blocks at 16 x 16, a
#: CZ with the one-qubit gates before it one pass.
BLOCK_QUBITS = 2


@dataclass(frozen=True, eq=False)
class Gate:
    """One gate of the circuit with its channels: `steps` (its lowered recipe on local qubits 0..k-1, slots
    counted from `first_slot`), `noise` the (4^k, 4^k) superoperator of its channels or None."""

    qubits: tuple[int, ...]
    steps: tuple[Step, ...]
    first_slot: int
    noise: torch.Tensor | None

    @property
    def trainable(self) -> bool:
        return any(s.kind == StepKind.ROTATION for s in self.steps)

    @property
    def per_sample(self) -> bool:
        return any(s.batch > 1 for s in self.steps)


@dataclass(frozen=True, eq=False)
class Block:
    """Consecutive gates on at most `BLOCK_QUBITS` qubits, applied as one superoperator on `qubits`."""

    qubits: tuple[int, ...]
    gates: tuple[Gate, ...]

    @property
    def constant(self) -> bool:
        return not any(g.trainable or g.per_sample for g in self.gates)

    @property
    def ascending(self) -> tuple[int, ...]:
        return tuple(sorted(self.qubits))


@dataclass(frozen=True, eq=False)
class DensityPlan:
    """A noisy circuit (or the light cone of its observables) ready to run on density matrices."""

    n_qubits: int
    blocks: tuple[Block, ...]
    sums: tuple[PauliSum, ...]  # on the plan's register, readout error folded into the coefficients
    slot_index: torch.Tensor  # (n_slots,) long: theta column per slot
    slot_scales: torch.Tensor | None
    measured: tuple[PauliSum, ...] = ()  # the same observables without readout folded in (shots flip the bits instead)
    readout: tuple[float, ...] = ()  # per qubit of the plan's register: its readout flip probability
    slot_moves: tuple[bool, ...] = ()  # per slot: whether shifting it can change a cost (not a global phase)
    _constants: dict = field(default_factory=dict, repr=False)

    def angles(self, theta: torch.Tensor) -> torch.Tensor:
        """The plan's slot angles (B or 1, n_slots) of parameters theta (B or 1, P)."""
        return slot_angles(theta, self.slot_index, self.slot_scales)

    def constant_block(self, k: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        key = (k, dtype, device)
        if key not in self._constants:
            with plain_tensors():
                self._constants[key] = block_superoperator(self.blocks[k], None, None, dtype, device)
        return self._constants[key]


def slot_angles(theta: torch.Tensor, index: torch.Tensor, scales: torch.Tensor | None) -> torch.Tensor:
    """Slot angles (B or 1, n_slots) of parameters theta (B or 1, P): the gather that is parameter sharing
    (`index`: theta column per slot), times each slot's d angle / d parameter (`scales`, None when all 1)."""
    angles = theta[:, index.to(theta.device)]
    return angles if scales is None else angles * scales.to(dtype=theta.dtype, device=theta.device)


def noisy_cone(data: CircuitData, sums: tuple[PauliSum, ...], light_cone_on: bool) -> tuple[list[int], CircuitData, dict[int, int]]:
    """The gates a noisy run keeps for the observables `sums`: their indices in `data`, the kept gates as a
    snapshot on their own register (its slot tables are the run's), and the qubit map. With `light_cone_on`,
    only the gates in the observables' backward light cone: a gate on qubits the evolved observable does not
    touch, with its channels, cancels (channels are trace preserving, so their duals fix the identity);
    diagonal gates are kept, since the channels after them do not commute with a Z string."""
    ops = data.ops
    if light_cone_on:
        kept, register = light_cone(ops, observable_support(sums)[0], diagonal=False)
        register = register or {0}
    else:
        kept, register = list(range(len(ops))), set(range(data.n_qubits))
    position = {q: i for i, q in enumerate(sorted(register))}
    cone = CircuitData(len(position), tuple(dataclasses.replace(ops[i], qubits=tuple(position[q] for q in ops[i].qubits)) for i in kept),
                       data.parameters, data.gate_batch)
    return kept, cone, position


@functools.lru_cache(maxsize=64)
def density_plan(data: CircuitData, sums: tuple[PauliSum, ...], noise: NoiseModel, light_cone_on: bool) -> DensityPlan:
    """The density plan of `data` with `noise` for the observables `sums` (checked against the register), in
    the light cone of `sums` when `light_cone_on` (`noisy_cone`)."""
    noise.check_qubits(data.n_qubits)
    readout_folded = tuple(noise.with_readout(s) for s in sums)
    kept, cone, position = noisy_cone(data, readout_folded, light_cone_on)
    gates: list[Gate] = []
    slot = 0
    with plain_tensors():
        for i, op in zip(kept, cone.ops):
            original = data.ops[i]  # the channels' rates by the gate's own qubits
            program = lower([dataclasses.replace(op, qubits=tuple(range(len(op.qubits))))], len(op.qubits), fuse=False)
            noise_superop = _noise_superoperator(noise.channels_after(original.name, original.qubits), original.qubits)
            gates.append(Gate(op.qubits, program.steps, slot, noise_superop))
            slot += program.n_slots  # lowering numbers slots gate by gate, as the cone's slot tables do
    index = torch.tensor(cone.slot_params, dtype=torch.long)
    scales = torch.tensor(cone.slot_scales, dtype=torch.float64) if any(s != 1 for s in cone.slot_scales) else None
    readout = tuple(noise.readout_rate(q) for q in sorted(position, key=position.__getitem__))
    return DensityPlan(cone.n_qubits, tuple(_blocks(gates)), tuple(remap(s, position) for s in readout_folded), index, scales,
                       tuple(remap(s, position) for s in sums), readout, cone.slot_moves_state)


def _noise_superoperator(channels, qubits: tuple[int, ...]) -> torch.Tensor | None:
    """The channels after one gate as one (4^k, 4^k) superoperator on its qubits' (rows, columns), or None."""
    if not channels:
        return None
    k = len(qubits)
    local = {q: j for j, q in enumerate(qubits)}
    matrix = torch.eye(4**k, dtype=torch.complex128).reshape(1, *([2] * (2 * k)), 4**k)
    for channel in channels:
        j = local[channel.qubit]
        matrix = _act(matrix, superoperator(channel.name, channel.rate).unsqueeze(0), (j, k + j))
    return matrix.reshape(4**k, 4**k)


def _blocks(gates: list[Gate]) -> list[Block]:
    """Group gates into blocks on at most BLOCK_QUBITS qubits. A gate joins the latest block that touches
    any of its qubits when the union stays narrow enough: no later block touches its qubits, so moving
    it there changes nothing."""
    blocks: list[tuple[list[int], list[Gate]]] = []
    latest: dict[int, int] = {}
    for gate in gates:
        touched = [latest[q] for q in gate.qubits if q in latest]
        if touched:
            b = max(touched)
            qubits = blocks[b][0]
            union = qubits + [q for q in gate.qubits if q not in qubits]
            if len(union) <= BLOCK_QUBITS:
                blocks[b][0][:] = union
                blocks[b][1].append(gate)
                for q in gate.qubits:
                    latest[q] = b
                continue
        blocks.append((list(gate.qubits), [gate]))
        for q in gate.qubits:
            latest[q] = len(blocks) - 1
    return [Block(tuple(q), tuple(g)) for q, g in blocks]


# ---- building superoperators -------------------------------------------------------------------


def _act(tensor: torch.Tensor, matrix: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    """Contract (B or 1, 2^k, 2^k) with the qubit axes `axes` (0-based after the batch) of `tensor`
    (B or 1, 2, ..., 2, extra): the operator's input axes against them; other axes of any size pass through."""
    k, dims = len(axes), tensor.dim()
    batch = max(tensor.shape[0], matrix.shape[0])
    op = matrix.expand(batch, -1, -1).reshape(batch, *([2] * (2 * k)))
    out_axes = [dims + j for j in range(k)]
    in_axes = [dims + k + j for j in range(k)]
    source, result = list(range(dims)), list(range(dims))
    for j, a in enumerate(axes):
        source[1 + a], result[1 + a] = in_axes[j], out_axes[j]
    return torch.einsum(op, [0, *out_axes, *in_axes], tensor.expand(batch, *tensor.shape[1:]), source, result)


def _embed(matrix: torch.Tensor, targets: tuple[int, ...], width: int) -> torch.Tensor:
    """(B or 1, 2^t, 2^t) on local qubits `targets` of a `width`-qubit register -> (B or 1, 2^w, 2^w)."""
    if len(targets) == width and targets == tuple(range(width)):
        return matrix
    eye = torch.eye(2**width, dtype=matrix.dtype, device=matrix.device).reshape(1, *([2] * width), 2**width)
    return _act(eye, matrix, targets).reshape(matrix.shape[0], 2**width, 2**width)


def gate_unitary(gate: Gate, cos: torch.Tensor | None, sin: torch.Tensor | None, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The gate's unitary (B or 1, 2^k, 2^k) at the run's angles (cos, sin of half angles, (B or 1, n_slots))."""
    k = len(gate.qubits)
    unitary: torch.Tensor | None = None
    for step in gate.steps:
        tensor = step.tensor.to(dtype=dtype, device=device)
        if step.kind == StepKind.ROTATION:
            assert cos is not None and sin is not None
            c = cos[:, gate.first_slot + step.slot].to(dtype)[:, None]
            s = sin[:, gate.first_slot + step.slot].to(dtype)[:, None] * -1j
            if step.diagonal:
                matrix = torch.diag_embed(c + s * tensor)
            else:
                matrix = c[..., None] * torch.eye(2, dtype=dtype, device=device) + s[..., None] * tensor
        else:
            matrix = torch.diag_embed(tensor) if step.diagonal else tensor
        matrix = _embed(matrix, step.qubits, k)
        unitary = matrix if unitary is None else matrix @ unitary
    assert unitary is not None  # every gate lowers to at least one step
    return unitary


def block_superoperator(block: Block, cos: torch.Tensor | None, sin: torch.Tensor | None, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The block's superoperator (B or 1, 4^w, 4^w) in the interleaved index of its qubits ascending
    (`Block.ascending`), as `apply_superoperator` takes it."""
    w = len(block.qubits)
    where = {q: j for j, q in enumerate(block.qubits)}
    total: torch.Tensor | None = None
    for gate in block.gates:
        superop = superoperator_of_unitary(gate_unitary(gate, cos, sin, dtype, device))
        if gate.noise is not None:
            superop = gate.noise.to(dtype=dtype, device=device) @ superop
        positions = tuple(where[q] for q in gate.qubits)
        axes = (*positions, *(w + p for p in positions))
        if total is None and axes == tuple(range(2 * w)):
            total = superop
            continue
        if total is None:
            total = torch.eye(4**w, dtype=dtype, device=device).unsqueeze(0)
        batch = max(total.shape[0], superop.shape[0])
        acted = _act(total.reshape(total.shape[0], *([2] * (2 * w)), 4**w), superop, axes)
        total = acted.reshape(batch, 4**w, 4**w)
    assert total is not None
    return interleaved(total, block.qubits)[1]


# ---- running ---------------------------------------------------------------------------------------


def required_bytes(n_qubits: int, batch: int, dtype: torch.dtype, states: float) -> int:
    """Bytes of `states` density matrices of n qubits for `batch` samples."""
    return int(states * batch * 4**n_qubits * torch.empty((), dtype=dtype).element_size())


def check_memory(plan: DensityPlan, batch: int, dtype: torch.dtype, device: torch.device, records: bool) -> None:
    """Refuse, before any work, a run whose density matrices do not fit half the device's free memory."""
    blocks = max(1, len(plan.blocks))
    if records:
        states = checkpointed_states(blocks)
        need = required_bytes(plan.n_qubits, batch, dtype, states)
    else:  # chunks: at least one sample, a few density matrices alive at once
        need = required_bytes(plan.n_qubits, 1, dtype, 4)
        states = 4
    budget = budget_bytes(device)
    if need > budget:
        rows = "for a batch of " + str(batch) if records else "for one sample"
        raise MemoryError(
            f"noise: the density matrix of {plan.n_qubits} qubits needs {format_bytes(need)} {rows} "
            f"({states} matrices of {format_bytes(required_bytes(plan.n_qubits, 1, dtype, 1))} in {dtype}), "
            f"but the budget is {format_bytes(budget)} (half the free memory); use trajectories=..., fewer qubits or a smaller batch"
        )


def checkpointed_states(blocks: int) -> int:
    """Density matrices alive per sample when autograd records `blocks` blocks: the checkpoints at segment
    boundaries, one segment recomputed in the backward pass, and a few temporaries."""
    return math.ceil(blocks / _segment_length(blocks)) + _segment_length(blocks) + 3


def _segment_length(blocks: int) -> int:
    return max(1, math.isqrt(blocks))


def initial_density(n_qubits: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    rho = torch.zeros(1, 4**n_qubits, dtype=dtype, device=device)
    rho[0, 0] = 1
    return rho.reshape(1, *([2] * (2 * n_qubits)))


def _apply_blocks(blocks: Sequence[Block], rho: torch.Tensor, superops: Sequence[torch.Tensor], n_qubits: int) -> torch.Tensor:
    for block, superop in zip(blocks, superops):
        rho = apply_superoperator(rho, superop, block.ascending, n_qubits)
    return rho


def _block_operators(plan: DensityPlan, angles: torch.Tensor, dtype: torch.dtype, device: torch.device) -> list[torch.Tensor]:
    """Every block's superoperator for the whole batch (small: 4^w x 4^w per sample), the constant ones cached."""
    cos, sin = half_angle_trig(angles) if angles.shape[1] else (None, None)
    return [plan.constant_block(k, dtype, device) if block.constant else block_superoperator(block, cos, sin, dtype, device)
            for k, block in enumerate(plan.blocks)]


def density_values(plan: DensityPlan, angles: torch.Tensor, batch: int, dtype: torch.dtype, device: torch.device, records: bool,
                   measure: Callable[[torch.Tensor, slice], torch.Tensor] | None = None) -> torch.Tensor:
    """Tr(H_k rho) for every observable of the plan, (batch, K) in the real dtype of `dtype`; or
    `measure(rho, rows)` -> (c, K) of the final density matrices of the batch's `rows`."""
    check_memory(plan, batch, dtype, device, records)
    n = plan.n_qubits
    ops = _block_operators(plan, angles, dtype, device)
    if measure is None:
        def measure(rho: torch.Tensor, rows: slice) -> torch.Tensor:
            return torch.stack([density_expval(rho, s, n) for s in plan.sums], dim=-1)

    if records:
        rho = initial_density(n, dtype, device).expand(batch, *([2] * (2 * n)))
        length = _segment_length(len(ops))
        for start in range(0, len(ops), length):
            segment = functools.partial(_evolve_segment, plan, start, length)
            rho = checkpoint(segment, rho, *ops[start : start + length], use_reentrant=False)
        return measure(rho, slice(0, batch))
    with torch.no_grad():
        chunks = sample_chunks(batch, 4**n * torch.empty((), dtype=dtype).element_size(), device)
        values = []
        for chunk in chunks:
            rho = initial_density(n, dtype, device).expand(chunk.stop - chunk.start, *([2] * (2 * n)))
            rho = _apply_blocks(plan.blocks, rho, [op if op.shape[0] == 1 else op[chunk] for op in ops], n)
            values.append(measure(rho, chunk))
        return torch.cat(values)


def evolve(plan: DensityPlan, rho: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """rho (B or 1, 2, ..., 2) with 2n axes through every block of `plan` at slot `angles` (B or 1, n_slots),
    all at once (differentiable by plain autograd: one rho per block is kept): a circuit's final density matrices,
    or a deep circuit run a part at a time (the noisy-plateau sweeps read every depth)."""
    return _apply_blocks(plan.blocks, rho, _block_operators(plan, angles, rho.dtype, rho.device), plan.n_qubits)


def _evolve_segment(plan: DensityPlan, start: int, length: int, rho: torch.Tensor, *superops: torch.Tensor) -> torch.Tensor:
    return _apply_blocks(plan.blocks[start : start + length], rho, superops, plan.n_qubits)
