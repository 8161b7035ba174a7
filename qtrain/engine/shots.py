"""Expectation values estimated from measurement shots.

A Pauli sum is measured group by group: its terms are split greedily into
qubit-wise commuting groups (every two terms of a group act on each shared
qubit with the same Pauli), each group's qubits are rotated into its basis
(H for X, H S^dagger for Y), and `shots` outcomes are drawn from the rotated
state's probabilities. Every term of the group is estimated from the same
outcomes: the mean of its eigenvalue, +1 or -1 by the parity of its qubits'
bits. The identity term is a constant, known without shots.

Outcomes come from a counter-based generator: the uniform number of shot k
of row r is a hash of (seed, r, stream, group, k) (splitmix64), so a row's
samples are the same whatever chunk or rank computes it, and a parameter-shift
evaluation (`stream`) or group never shares numbers with another.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from qtrain.engine.observables import PauliString, PauliSum

__all__ = ["MeasurementGroup", "ShotEstimate", "check_first_row", "check_seed", "derived_seed", "check_shots", "measurement_groups", "sample_expval", "sample_groups", "shot_uniforms", "TO_Z"]


@dataclass(frozen=True)
class MeasurementGroup:
    """Terms measured together: `basis` is the Pauli measured on each qubit
    ((qubit, 'X'|'Y'|'Z'), sorted), every term acts on a subset of it with the same Paulis."""

    basis: tuple[tuple[int, str], ...]
    terms: tuple[PauliString, ...]


@dataclass(frozen=True)
class ShotEstimate:
    """Per row: the estimate of <H> (c,) and the estimated variance of that estimate (c,) (nan with one shot)."""

    value: torch.Tensor
    variance: torch.Tensor


def check_shots(shots: object) -> int | None:
    """`shots` as given when it is None (exact values) or a positive int; a ValueError naming it otherwise."""
    if shots is None:
        return None
    if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1:
        raise ValueError(f"shots must be a positive int (or None for exact values), got {shots!r}")
    return int(shots)


def check_seed(seed: object) -> int:
    """A shot seed: a non-negative int, or None for one drawn from torch's global generator (so
    `torch.manual_seed` fixes it too)."""
    if seed is None:
        return int(torch.randint(0, 2**62, (1,)).item())
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int (or None), got {seed!r}")
    return int(seed)


def derived_seed(*parts: object) -> int:
    """A shot seed for a named piece of work (a training step, a block of samples): a hash of the parts joined by
    "/", below 2**62 (what `check_seed` accepts), so that distinct parts share no samples (a sum of them could)."""
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 2


def check_first_row(first_row: object) -> int:
    """The batch index of a call's first row (a batch split across ranks or calls): a non-negative int."""
    if isinstance(first_row, bool) or not isinstance(first_row, (int, np.integer)) or first_row < 0:
        raise ValueError(f"first_row must be a non-negative int (the batch index of theta's first row), got {first_row!r}")
    return int(first_row)


@functools.lru_cache(maxsize=64)
def measurement_groups(pauli_sum: PauliSum) -> tuple[float, tuple[MeasurementGroup, ...]]:
    """The sum's constant (its identity terms) and its qubit-wise commuting
    groups, filled greedily in term order (a term joins the first group it
    agrees with on every shared qubit)."""
    constant = 0.0
    bases: list[dict[int, str]] = []
    members: list[list[PauliString]] = []
    for term in pauli_sum.terms:
        if not term.paulis:
            constant += term.coeff
            continue
        for basis, group in zip(bases, members):
            if all(basis.get(q, p) == p for q, p in term.paulis):
                basis.update(term.paulis)
                group.append(term)
                break
        else:
            bases.append(dict(term.paulis))
            members.append([term])
    return constant, tuple(MeasurementGroup(tuple(sorted(b.items())), tuple(m)) for b, m in zip(bases, members))


_MASK = np.uint64(2**64 - 1)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a bijection of uint64 that spreads every input bit over the output."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def shot_uniforms(seed: int, rows: np.ndarray, stream: int, group: int, shots: int) -> np.ndarray:
    """Uniform numbers in [0, 1), (len(rows), shots) float64: entry (i, k) is a
    function of (seed, rows[i], stream, group, k) alone."""
    key = _mix(np.full(1, seed, dtype=np.uint64))
    for part in (stream, group):
        key = _mix(key ^ np.uint64(part))
    per_row = _mix(key ^ rows.astype(np.uint64))  # (c,)
    with np.errstate(over="ignore"):
        counters = per_row[:, None] + np.arange(shots, dtype=np.uint64)[None, :] * np.uint64(0xD1B54A32D192ED03)
    return (_mix(counters) >> np.uint64(11)).astype(np.float64) * 2.0**-53


_H = torch.tensor([[1, 1], [1, -1]], dtype=torch.complex128) / math.sqrt(2)
#: The one-qubit rotation taking each Pauli's eigenbasis to Z's (+1 -> |0>, -1 -> |1>).
TO_Z = {"X": _H, "Y": _H @ torch.tensor([[1, 0], [0, -1j]], dtype=torch.complex128), "Z": None}


def _rotated(states: torch.Tensor, basis: tuple[tuple[int, str], ...]) -> torch.Tensor:
    """States (c, 2, ..., 2) with each basis qubit rotated so that Z measures its Pauli."""
    for qubit, pauli in basis:
        u = TO_Z[pauli]
        if u is None:
            continue
        axis = qubit + 1
        moved = states.movedim(axis, -1)
        states = (moved @ u.T.to(dtype=states.dtype, device=states.device)).movedim(-1, axis)
    return states


def sample_expval(states: torch.Tensor, pauli_sum: PauliSum, shots: int, seed: int, rows: torch.Tensor, stream: int) -> ShotEstimate:
    """Estimate <H> for every state (c, 2, ..., 2) from `shots` outcomes per
    measurement group; `rows` (c,) are the states' rows in the whole batch
    (their generators' keys), `stream` numbers the evaluation."""

    def probabilities(basis: tuple[tuple[int, str], ...]) -> torch.Tensor:
        rotated = _rotated(states, basis)
        return torch.view_as_real(rotated).square().sum(dim=-1).to(torch.float64)  # |amplitude|^2, (c, 2, ..., 2)

    return sample_groups(probabilities, states.shape[0], states.dim() - 1, pauli_sum, shots, seed, rows, stream)


def sample_groups(probabilities: Callable[[tuple[tuple[int, str], ...]], torch.Tensor], count: int, n_qubits: int, pauli_sum: PauliSum,
                  shots: int, seed: int, rows: torch.Tensor, stream: int, readout: Sequence[float] | None = None) -> ShotEstimate:
    """Estimate <H> for `count` rows from `shots` outcomes per measurement group, where
    `probabilities(basis)` gives each row's outcome probabilities (c, 2, ..., 2) over all n qubits after
    rotating the group's qubits into its basis (from a state or a density matrix alike). `readout[q]`: the
    probability that qubit q's measured bit is flipped (applied to the group's marginal before sampling)."""
    constant, groups = measurement_groups(pauli_sum)
    device = rows.device
    value = torch.full((count,), constant, dtype=torch.float64, device=device)
    variance = torch.zeros(count, dtype=torch.float64, device=device)
    row_keys = rows.detach().cpu().numpy().astype(np.int64)
    for index, group in enumerate(groups):
        probs = probabilities(group.basis).to(torch.float64)
        device = probs.device
        measured = [q + 1 for q, _ in group.basis]
        others = [axis for axis in range(1, n_qubits + 1) if axis not in measured]
        if others:  # only the group's qubits are read: sample from their marginal, 2^k outcomes instead of 2^n
            probs = probs.sum(dim=others)
        if readout is not None:  # each measured bit flips with its qubit's rate: mix the marginal with its flip along that axis
            for axis, (qubit, _) in enumerate(group.basis, start=1):
                rate = readout[qubit]
                if rate > 0:
                    probs = (1 - rate) * probs + rate * probs.flip(axis)
        probs = probs.reshape(count, -1)  # outcome bits: the group's qubits in increasing order, the first most significant
        cdf = probs.cumsum(dim=1)
        uniforms = torch.from_numpy(shot_uniforms(seed, row_keys, stream, index, shots)).to(device)
        outcomes = torch.searchsorted(cdf, uniforms.mul_(cdf[:, -1:]), right=True).clamp_(max=probs.shape[1] - 1)  # (c, shots)
        per_shot = _group_values(group, device)[outcomes]  # the group's terms summed, per outcome
        value = value.to(device) + per_shot.mean(dim=1)
        variance = variance.to(device) + (per_shot.var(dim=1) / shots if shots > 1 else torch.full_like(variance, math.nan))
    return ShotEstimate(value, variance)


@functools.lru_cache(maxsize=64)  # one table per group and device: every chunk and shifted evaluation reuses it
def _group_values(group: MeasurementGroup, device: torch.device) -> torch.Tensor:
    """(2**k,) float64 for a group measuring k qubits: for each outcome of those
    qubits (the first in `basis` the most significant bit), the group's terms
    summed at their eigenvalues, +1 or -1 by the parity of the term's bits."""
    k = len(group.basis)
    position = {qubit: i for i, (qubit, _) in enumerate(group.basis)}
    outcome = torch.arange(2**k, device=device)
    values = torch.zeros(2**k, dtype=torch.float64, device=device)
    for term in group.terms:
        parity = torch.zeros_like(outcome)
        for qubit, _ in term.paulis:
            parity ^= (outcome >> (k - 1 - position[qubit])) & 1
        values += term.coeff * (1 - 2 * parity).to(torch.float64)
    return values
