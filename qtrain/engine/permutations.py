"""Permutation passes: runs of constant gates that map basis states to basis
states (CNOT, X, Y, SWAP, and the diagonal phases riding along) applied as one
gather over the state.

Such a gate is a monomial matrix: one nonzero entry per row, so
(U psi)[x] = phase[x] * psi[source[x]]. A run of them composes into one
(source, phase) pair over the whole register, and a CNOT chain of n - 1
gates costs one read and one write of the state instead of n - 1 einsums.
Nothing here names a gate: the monomial structure is read off the matrices.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from qtrain.engine.kernels import apply_permutation  # re-exported: it lives with the other kernels
from qtrain.engine.program import Step, StepKind, fuse_runs

__all__ = [
    "apply_permutation",
    "compose",
    "fuse_permutations",
    "INDEX_DTYPE",
    "is_monomial_step",
    "monomial",
    "permutation_step",
]

#: The gather's index dtype. int32 halves the index's own traffic against
#: int64 (it is read once per pass, like the state); index_select takes both.
INDEX_DTYPE = torch.int32


def monomial(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(column of each row's nonzero, its value) when the (d, d) matrix has
    exactly one nonzero per row and per column; else None."""
    nonzero = matrix.abs() > 1e-12
    if not (nonzero.sum(dim=1) == 1).all() or not (nonzero.sum(dim=0) == 1).all():
        return None
    columns = nonzero.to(torch.int64).argmax(dim=1)
    return columns, matrix.gather(1, columns[:, None])[:, 0]


def is_monomial_step(step: Step) -> bool:
    """A constant operator shared by the whole batch that permutes basis states."""
    if step.kind != StepKind.FIXED or step.batch != 1 or step.tensor.requires_grad:
        return False
    return step.diagonal or monomial(step.tensor[0]) is not None


def _local_index(basis: torch.Tensor, qubits: Sequence[int], n_qubits: int) -> torch.Tensor:
    """The gate-local basis index of each register basis state (the gate's
    first qubit the most significant bit; qubit 0 of the register too)."""
    local = torch.zeros_like(basis)
    for q in qubits:
        local = local * 2 + ((basis >> (n_qubits - 1 - q)) & 1)
    return local


def compose(steps: Sequence[Step], n_qubits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The run as (source (2^n,), phase (2^n,) complex128): after the run,
    psi'[x] = phase[x] * psi[source[x]].

    Appending a gate g with psi''[x] = p_g[x] psi'[s_g(x)] gives
    source <- source[s_g], phase <- p_g * phase[s_g].
    """
    basis = torch.arange(2**n_qubits, dtype=torch.int64)
    source, phase = basis.clone(), torch.ones(2**n_qubits, dtype=torch.complex128)
    for step in steps:
        tensor = step.tensor[0].to(torch.complex128)
        local = _local_index(basis, step.qubits, n_qubits)
        if step.diagonal:
            phase = phase * tensor[local]
            continue
        found = monomial(tensor)
        if found is None:  # compose is public: a caller may pass a step fuse_permutations would not
            raise ValueError(f"compose: step on qubits {step.qubits} is not monomial (one nonzero per row and column): {tensor}")
        columns, values = found
        gate_source = basis.clone()
        for j, q in enumerate(step.qubits):  # replace the gate's bits by those of the row's column
            shift = n_qubits - 1 - q
            bit = (columns[local] >> (len(step.qubits) - 1 - j)) & 1
            gate_source = (gate_source & ~(1 << shift)) | (bit << shift)
        source, phase = source[gate_source], values[local] * phase[gate_source]
    return source, phase


def permutation_step(steps: Sequence[Step], n_qubits: int) -> Step:
    """One step for a run of monomial steps (see `Step`: kind "permutation")."""
    source, phase = compose(steps, n_qubits)
    inverse = torch.empty_like(source)
    inverse[source] = torch.arange(source.numel())
    if bool((phase == 1).all()):  # a pure permutation: no multiply at all
        phase = phase[:0]
    return Step(StepKind.PERMUTATION, tuple(range(n_qubits)), phase.unsqueeze(0), index=source.to(INDEX_DTYPE), inverse=inverse.to(INDEX_DTYPE))


def fuse_permutations(steps: Sequence[Step], n_qubits: int) -> list[Step]:
    """Replace each run of monomial steps that holds a multi-qubit
    non-diagonal gate (a CNOT chain, a SWAP network, with any CZ or phase
    gates among them) by one permutation step. Runs of diagonals alone stay
    (a product is cheaper than a gather), and so does a run of one-qubit
    gates alone (they join the fused layers). Equal runs share one step."""

    def merges(run: list[Step]) -> bool:
        return any(len(s.qubits) > 1 and not s.diagonal for s in run)

    return fuse_runs(steps, is_monomial_step, merges, lambda run: permutation_step(run, n_qubits))
