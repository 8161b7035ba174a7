"""A circuit's gates frozen: what the engine compiles and caches.

`Circuit` is a builder that grows in place; every run takes a `CircuitData`
snapshot of it (one per state of the builder, made again only after a gate is
added), so what the execution cache holds can never change under it. The
snapshot also carries the tables every run reads: per rotation slot, its
parameter, its scale and its cost frequency.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from qtrain.engine.gates import GATES, GateKind, Rotation

if TYPE_CHECKING:
    from qtrain.circuit import Op

__all__ = ["CircuitData", "gate_batch"]


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: equal snapshots of one builder are the same object
class CircuitData:
    """Frozen gates on `n_qubits` qubits, with the builder's parameter names
    (theta[..., i] is parameters[i]). `gate_batch`: the batch per-sample gates
    fix (1 when none does); a light cone keeps the batch of the circuit it was
    cut from, so its output rows match the full circuit's."""

    n_qubits: int
    ops: tuple[Op, ...]
    parameters: tuple[str, ...]
    gate_batch: int

    @classmethod
    def of(cls, n_qubits: int, ops: tuple[Op, ...], parameters: tuple[str, ...]) -> CircuitData:
        """The snapshot of a whole circuit (its own gate batch)."""
        return cls(n_qubits, ops, parameters, gate_batch(ops))

    @property
    def n_params(self) -> int:
        """How many parameters theta has."""
        return len(self.parameters)

    @cached_property
    def slots(self) -> tuple[tuple[int, float, float], ...]:
        """(parameter, scale, cost frequency) per rotation slot, in the order
        lowering makes the slots (a parametric gate's recipe may hold several)."""
        slots: list[tuple[int, float, float]] = []
        for op in self.ops:
            spec = GATES[op.name]
            first = op.params[0] if op.params else None
            if spec.kind == GateKind.PAULI_ROTATION and first is not None:
                slots.append((first, 1.0, 1.0))
            for part in spec.recipe:
                if isinstance(part, Rotation):
                    param = op.params[part.arg]
                    if param is not None:
                        slots.append((param, part.scale, part.cost_frequency))
        return tuple(slots)

    @cached_property
    def slot_moves_state(self) -> tuple[bool, ...]:
        """Per slot, whether its rotation can change an expectation value: all but the global phases
        (generator "phase"). Not the same as a nonzero cost frequency: cp's second and third half-angle
        rotations carry frequency 0 (the first carries the gate's degree), yet shifting them alone changes a cost."""
        moves: list[bool] = []
        for op in self.ops:
            spec = GATES[op.name]
            if spec.kind == GateKind.PAULI_ROTATION and op.params and op.params[0] is not None:
                moves.append(True)
            for part in spec.recipe:
                if isinstance(part, Rotation) and op.params[part.arg] is not None:
                    moves.append(part.generator != "phase")
        return tuple(moves)

    @cached_property
    def slot_params(self) -> tuple[int, ...]:
        """Per slot, its parameter: the gather `theta[..., slot_params]` is all of parameter sharing."""
        return tuple(param for param, _, _ in self.slots)

    @cached_property
    def slot_scales(self) -> tuple[float, ...]:
        """Per slot, d angle / d parameter (1, or +-1/2 in a controlled rotation)."""
        return tuple(scale for _, scale, _ in self.slots)


def gate_batch(ops: tuple[Op, ...]) -> int:
    """The batch the gates fix: the largest leading size of a per-sample Pauli
    axis tensor (B,) or unitary (B, d, d); 1 when every gate is shared."""
    sizes = [op.axes.shape[0] for op in ops if op.axes is not None]
    sizes += [op.matrix.shape[0] for op in ops if op.matrix is not None and op.matrix.dim() == 3]
    return max(sizes, default=1)
