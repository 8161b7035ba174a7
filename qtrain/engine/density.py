"""Density matrices on the engine's kernels: a vectorized rho is a state on 2n axes.

rho on n qubits is stored as a tensor (B, 2, ..., 2) with 2n axes after the
batch, interleaved: axes 2q + 1 and 2q + 2 are qubit q's row and column bits.
A gate U on qubits Q acts as U (x) conj(U) on their (row, column) axes, a
channel with Kraus operators K as sum_k K (x) conj(K) (its superoperator).
Interleaving puts a qubit's two bits next to each other, so an operator on
one qubit or on two neighbouring qubits reads a contiguous group of axes: one
batched matrix product on a view of rho, no permutation copies.
`as_matrices` gives the usual (B, 2^n, 2^n).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

from qtrain.engine.kernels import apply_matrix
from qtrain.engine.observables import PauliString, PauliSum

__all__ = ["apply_superoperator", "as_matrices", "basis_probabilities", "density_expval", "diagonal", "interleaved", "pure_density", "superoperator_of_unitary", "trace_with"]


def superoperator_of_unitary(unitary: torch.Tensor) -> torch.Tensor:
    """(B, d, d) -> (B, d^2, d^2): U (x) conj(U), index (rows, columns) as in a vectorized rho."""
    b, d, _ = unitary.shape
    return torch.einsum("bij,bkl->bikjl", unitary, unitary.conj()).reshape(b, d * d, d * d)


def interleaved(superop: torch.Tensor, qubits: tuple[int, ...]) -> tuple[tuple[int, ...], torch.Tensor]:
    """A superoperator (B or 1, 4^k, 4^k) with index (rows of `qubits`, columns of `qubits`) re-indexed for the
    interleaved layout: -> (the qubits ascending, the matrix with index (row, column) per qubit in that order)."""
    k = len(qubits)
    order = sorted(range(k), key=lambda j: qubits[j])
    axes = [a for j in order for a in (j, k + j)]  # row then column bit of each qubit, ascending qubits
    b = superop.shape[0]
    t = superop.reshape(b, *([2] * (4 * k)))
    t = t.permute(0, *(1 + a for a in axes), *(1 + 2 * k + a for a in axes))
    return tuple(qubits[j] for j in order), t.reshape(b, 4**k, 4**k)


def apply_superoperator(rho: torch.Tensor, superop: torch.Tensor, qubits: tuple[int, ...], n_qubits: int) -> torch.Tensor:
    """Apply (B or 1, 4^k, 4^k) in the interleaved index of ascending `qubits` (see `interleaved`) to rho.
    One qubit, or neighbouring qubits: one batched product on a view; others: a contraction over their axes."""
    k, first = len(qubits), qubits[0]
    if qubits == tuple(range(first, first + k)):
        view = rho.reshape(rho.shape[0], 4**first, 4**k, 4 ** (n_qubits - first - k))
        return torch.einsum("bij,bljr->blir", superop, view).reshape(rho.shape)
    return apply_matrix(rho, superop, tuple(a for q in qubits for a in (2 * q, 2 * q + 1)))


def as_matrices(rho: torch.Tensor, n_qubits: int) -> torch.Tensor:
    """Interleaved rho (B, 2, ..., 2) -> (B, 2^n, 2^n), qubit 0 the most significant bit of rows and columns."""
    order = [1 + 2 * q for q in range(n_qubits)] + [2 + 2 * q for q in range(n_qubits)]
    return rho.permute(0, *order).reshape(rho.shape[0], 2**n_qubits, 2**n_qubits)


def pure_density(states: torch.Tensor) -> torch.Tensor:
    """|psi><psi| vectorized (interleaved): states (B, 2^n) -> (B, 2, ..., 2) with 2n axes."""
    b, dim = states.shape
    n = dim.bit_length() - 1
    outer = (states[:, :, None] * states.conj()[:, None, :]).reshape(b, *([2] * (2 * n)))
    order = [a for q in range(n) for a in (1 + q, 1 + n + q)]
    return outer.permute(0, *order).contiguous()


@functools.lru_cache(maxsize=256)
def _term_gather(term: PauliString, n_qubits: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """For Tr(P rho) = sum_i <i|P|i^x> rho[i^x, i]: the flat indices of rho[i^x, i] in the interleaved
    layout and the phases <i|P|i^x>, (2^n,) each (qubit 0 the most significant bit)."""
    dim = 2**n_qubits
    i = torch.arange(dim, device=device)
    flip = torch.zeros((), dtype=torch.long)
    phase = torch.ones(dim, dtype=torch.complex128, device=device)
    for q, p in term.paulis:
        bit_value = 1 << (n_qubits - 1 - q)
        bit = (i >> (n_qubits - 1 - q)) & 1
        sign = (1 - 2 * bit).to(torch.complex128)
        if p in ("X", "Y"):
            flip = flip | bit_value
        if p == "Z":
            phase = phase * sign
        elif p == "Y":  # <0|Y|1> = -i, <1|Y|0> = i
            phase = phase * (-1j * sign)
    row = i ^ flip
    flat = torch.zeros_like(i)
    for q in range(n_qubits):  # qubit q's row bit at interleaved position 2q, its column bit at 2q + 1
        shift = n_qubits - 1 - q
        flat = flat | (((row >> shift) & 1) << (2 * shift + 1)) | (((i >> shift) & 1) << (2 * shift))
    return flat, phase


def trace_with(rho: torch.Tensor, term: PauliString, n_qubits: int) -> torch.Tensor:
    """Tr(P rho) for one Pauli string (its coefficient not applied), real (B,): one gather of 2^n entries."""
    index, phase = _term_gather(term, n_qubits, rho.device)
    flat = rho.reshape(rho.shape[0], -1)
    return (flat[:, index] * phase.to(rho.dtype)).sum(dim=1).real


def density_expval(rho: torch.Tensor, pauli_sum: PauliSum, n_qubits: int) -> torch.Tensor:
    """Tr(H rho) per sample, real (B,), for rho (B, 2, ..., 2) with 2n axes."""
    value = torch.zeros(rho.shape[0], dtype=rho.real.dtype, device=rho.device)
    for term in pauli_sum.terms:
        value = value + term.coeff * trace_with(rho, term, n_qubits)  # the identity string too: its gather is the diagonal
    return value


def diagonal(rho: torch.Tensor, n_qubits: int) -> torch.Tensor:
    """The diagonal rho[i, i], real (B, 2, ..., 2) with n axes: the outcome probabilities in the computational basis."""
    index, _ = _term_gather(PauliString(()), n_qubits, rho.device)
    return rho.reshape(rho.shape[0], -1)[:, index].real.reshape(rho.shape[0], *([2] * n_qubits))


def basis_probabilities(rho: torch.Tensor, rotations: Sequence[tuple[int, torch.Tensor | None]], n_qubits: int) -> torch.Tensor:
    """Outcome probabilities (B, 2, ..., 2) after rotating qubit q by the one-qubit unitary u (None: keep) for
    each (q, u) of `rotations` (measuring a Pauli in its eigenbasis): U rho U^dagger on the qubit's two axes."""
    for qubit, u in rotations:
        if u is not None:
            u = u.to(dtype=rho.dtype, device=rho.device)
            rho = apply_superoperator(rho, superoperator_of_unitary(u.unsqueeze(0)), (qubit,), n_qubits)
    return diagonal(rho, n_qubits)
