"""Light-cone pruning: only the gates in the backward light cone of an
observable can change its expectation value.

<psi_0| U^dagger H U |psi_0>: walking the circuit from the end, a gate that
touches none of the qubits the (Heisenberg-evolved) observable acts on so far
commutes with it and cancels against its own adjoint; so does a diagonal gate
while the observable is still diagonal (a Z string commutes with CZ and R_Z).
Every other gate is kept and widens the observable's support by its qubits.
From a product initial state (|0...0>), qubits that no kept gate touches and
the observable does not act on factor out: the kept gates run on a smaller
register. The result is exact; the pruned gates' parameters get gradient 0.

For McClean's cost Z0 Z1 after L layers of rotations and a CZ chain, the cone
covers qubits 0..L, so at n = 16, L = 10 the run needs 11 qubits, not 16; once
L >= n - 1 it covers every qubit and nothing is saved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from qtrain.engine.gates import GATES
from qtrain.engine.observables import PauliString, PauliSum

__all__ = ["light_cone", "observable_support", "reduced_ops", "remap"]


def _is_diagonal(op) -> bool:
    if op.name == "pauli_rot":
        return bool((op.axes == 2).all())  # every sample's axis is Z
    if op.name == "unitary":
        m = op.matrix
        return bool((m - torch.diag_embed(torch.diagonal(m, dim1=-2, dim2=-1)) == 0).all())
    return GATES[op.name].diagonal


def light_cone(ops: Sequence, support: set[int], diagonal: bool) -> tuple[list[int], set[int]]:
    """Indices of the gates (in order) that can change the expectation of an
    observable acting on `support` (diagonal: all of its terms are Z strings),
    and the qubits the kept gates and the observable touch."""
    support = set(support)
    kept: list[int] = []
    for index in range(len(ops) - 1, -1, -1):
        op = ops[index]
        if support.isdisjoint(op.qubits):
            continue
        gate_diagonal = _is_diagonal(op)
        if diagonal and gate_diagonal:
            continue  # commutes with a diagonal observable
        kept.append(index)
        support.update(op.qubits)
        diagonal = diagonal and gate_diagonal
    kept.reverse()
    return kept, support


def observable_support(pauli_sums: Sequence[PauliSum]) -> tuple[set[int], bool]:
    """The qubits any term of the observables acts on, and whether every term is diagonal (Z and I only)."""
    qubits = {q for s in pauli_sums for term in s.terms for q, _ in term.paulis}
    return qubits, all(term.is_diagonal for s in pauli_sums for term in s.terms)


def remap(pauli_sum: PauliSum, position: dict[int, int]) -> PauliSum:
    """The same observable on the reduced register (qubit q -> position[q])."""
    return PauliSum(tuple(PauliString(tuple((position[q], p) for q, p in t.paulis), t.coeff) for t in pauli_sum.terms))


def reduced_ops(ops: Sequence, pauli_sums: Sequence[PauliSum]) -> tuple[list, dict[int, int]]:
    """The kept gates, re-addressed onto the register of the qubits they and the
    observables touch (in the original order), and that qubit map."""
    support, diagonal = observable_support(pauli_sums)
    kept, register = light_cone(ops, support, diagonal)
    register = register or {0}  # an observable with no Pauli factor: keep one qubit to run on
    position = {q: i for i, q in enumerate(sorted(register))}
    return [dataclasses.replace(ops[i], qubits=tuple(position[q] for q in ops[i].qubits)) for i in kept], position
