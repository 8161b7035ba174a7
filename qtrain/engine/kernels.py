"""Apply a matrix or a diagonal to some qubits of a batched state.

A state is a complex tensor of shape (B, 2, ..., 2) with one axis per qubit
(qubit 0 first, so `state.reshape(B, 2**n)` puts qubit 0 at the most
significant bit). Operators carry a leading batch axis of size B (one matrix
per sample) or 1 (shared by all samples). Nothing here mutates its input:
every kernel returns a new tensor, so autograd can differentiate through it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["apply_diagonal", "apply_matrix", "apply_permutation", "n_qubits_of", "reduced_overlap", "Scratch"]


def n_qubits_of(state: torch.Tensor) -> int:
    """The qubits of a state (B, 2, ..., 2): one axis each after the batch."""
    return state.dim() - 1


def apply_matrix(state: torch.Tensor, matrix: torch.Tensor, qubits: Sequence[int]) -> torch.Tensor:
    """Apply (B or 1, 2^k, 2^k) matrices to `qubits` (in that order; the first
    qubit is the most significant bit of the matrix index)."""
    n = n_qubits_of(state)
    k = len(qubits)
    if k == 1:
        # View the state as (B, left, 2, right) around the target axis: one
        # einsum with no permutation copies, the fastest path on CPU and GPU.
        q = qubits[0]
        view = state.reshape(state.shape[0], 2**q, 2, 2 ** (n - q - 1))
        return torch.einsum("bij,bljr->blir", matrix, view).reshape(state.shape)
    # k >= 2: contract the matrix's input axes with the target axes in place,
    # using integer sublists so no axis has to be moved by hand.
    tensor = matrix.reshape(matrix.shape[0], *([2] * (2 * k)))
    out_axes = [n + 1 + j for j in range(k)]
    in_axes = [n + 1 + k + j for j in range(k)]
    state_axes = list(range(n + 1))
    result_axes = list(range(n + 1))
    for j, q in enumerate(qubits):
        state_axes[1 + q] = in_axes[j]
        result_axes[1 + q] = out_axes[j]
    out = torch.einsum(tensor, [0, *out_axes, *in_axes], state, state_axes, result_axes)
    return out.contiguous()


def apply_diagonal(state: torch.Tensor, diagonal: torch.Tensor, qubits: Sequence[int], scratch: Scratch | None = None) -> torch.Tensor:
    """Multiply by a diagonal operator given as (B or 1, 2^k) on `qubits`.

    The diagonal is reshaped so that it broadcasts against the state: a single
    elementwise product, one read and one write of the state (into `scratch`
    when given, for work autograd does not record).
    """
    n = n_qubits_of(state)
    k = len(qubits)
    diag = diagonal.reshape(diagonal.shape[0], *([2] * k))
    order = sorted(range(k), key=lambda j: qubits[j])
    diag = diag.permute(0, *(1 + j for j in order))  # axes now in increasing qubit order
    targets = set(qubits)
    shape = [diag.shape[0]] + [2 if q in targets else 1 for q in range(n)]
    if scratch is None:
        return state * diag.reshape(shape)
    out = scratch.target(state, (max(state.shape[0], diag.shape[0]), *state.shape[1:]))
    return torch.mul(state, diag.reshape(shape), out=out)


class Scratch:
    """Two reusable state-sized buffers for work autograd does not record.

    Every large temporary costs page faults when the allocator hands fresh
    memory back and forth with the operating system (states of 32 MiB and up
    are above glibc's largest mmap threshold), so no-grad runs write each new
    state into whichever of two buffers does not hold the current one.
    """

    def __init__(self) -> None:
        self.buffers: list[torch.Tensor] = []

    def target(self, current: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        numel = math.prod(shape)
        for i, buf in enumerate(self.buffers):
            if buf.data_ptr() != current.data_ptr() and buf.numel() == numel and buf.dtype == current.dtype and buf.device == current.device:
                return buf.view(*shape)
        if len(self.buffers) == 2:
            self.buffers.pop(0 if self.buffers[0].data_ptr() != current.data_ptr() else 1)
        self.buffers.append(torch.empty(numel, dtype=current.dtype, device=current.device))
        return self.buffers[-1].view(*shape)


def reduced_overlap(bra_conj: torch.Tensor, ket: torch.Tensor, qubit: int) -> torch.Tensor:
    """M[b, i, j] = sum over all other qubits of bra_conj[b, ..i..] ket[b, ..j..],
    for a bra given already conjugated.

    Then <bra| G_qubit |ket> = sum_ij G[b, i, j] M[b, i, j] for any 2x2 G, so the
    overlap with several operators costs one read of the two states and no
    state-sized write. -> (B, 2, 2)
    """
    n = n_qubits_of(ket)
    shape = (ket.shape[0], 2**qubit, 2, 2 ** (n - qubit - 1))
    return torch.einsum("blir,bljr->bij", bra_conj.reshape(shape), ket.reshape(shape))


def apply_permutation(state: torch.Tensor, index: torch.Tensor, phase: torch.Tensor | None, out: torch.Tensor | None = None) -> torch.Tensor:
    """psi'[x] = phase[x] psi[index[x]] over the flattened register: one
    gather, then (when there is a phase) one multiply in place. (B, 2, ..., 2)
    in and out; `out` (the same shape) receives the result when given."""
    shape = state.shape
    flat = state.reshape(shape[0], -1)
    if out is None:
        gathered = flat.index_select(1, index)
        return (gathered if phase is None else gathered * phase).reshape(shape)
    target = out.reshape(shape[0], -1)
    torch.index_select(flat, 1, index, out=target)
    if phase is not None:
        target.mul_(phase)
    return out
