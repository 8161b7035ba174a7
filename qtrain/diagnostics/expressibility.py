"""Expressibility and entangling capability (Sim, Johnson and Aspuru-Guzik 2019, Adv. Quantum Technol. 2, 1900070).

Both are averages over uniformly random parameters (every parameter uniform on
[0, 2 pi)), with states in complex128:

- `expressibility`: the Kullback-Leibler divergence, in nats, of the histogram of
  fidelities F = |<psi(a)|psi(b)>|^2 between random pairs of states from the
  distribution of F between Haar-random states, (N - 1)(1 - F)^(N - 2) with
  N = 2^n. 0 means as expressive as Haar; larger is less expressive.
- `entangling_capability`: the mean Meyer-Wallach measure
  Q = 2 (1 - (1/n) sum_k Tr(rho_k^2)), rho_k the reduced state of qubit k:
  0 for product states, 1 for (e.g.) GHZ states of two qubits.

Convention: the Haar probability of a histogram bin is its exact integral,
(1 - F_lo)^(N-1) - (1 - F_hi)^(N-1), rather than the density at the bin's
centre, so that no bin of a finite histogram is mis-weighted near F = 1. Bins
the samples never reach add nothing to the divergence.
"""

from __future__ import annotations

import math

import torch

from qtrain.circuit import Circuit

__all__ = ["entangling_capability", "expressibility", "haar_bin_probabilities"]


def _check(circuit: Circuit, samples: int, what: str) -> None:
    if not isinstance(circuit, Circuit):
        raise TypeError(f"{what}: circuit must be a qtrain Circuit, got {type(circuit).__name__}")
    if circuit.gate_batch > 1:
        raise ValueError(f"{what}: the circuit holds per-sample gates (a batch of circuits); give one circuit")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
        raise ValueError(f"{what}: samples must be an integer >= 2, got {samples!r}")


def _random_states(circuit: Circuit, count: int, generator: torch.Generator) -> torch.Tensor:
    """States (count, 2^n) complex128 at parameters uniform on [0, 2 pi)."""
    theta = torch.rand(count, circuit.n_params, generator=generator, dtype=torch.float64) * (2 * math.pi)
    with torch.no_grad():
        return circuit.state(theta if circuit.n_params else None, dtype=torch.complex128).expand(count, -1)


def haar_bin_probabilities(n_qubits: int, bins: int) -> torch.Tensor:
    """(bins,) float64: the probability that the fidelity of two Haar-random n-qubit states falls in each of
    `bins` equal bins of [0, 1], (1 - F_lo)^(N-1) - (1 - F_hi)^(N-1) with N = 2^n."""
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    tail = (1 - edges) ** (2**n_qubits - 1)  # P(F > edge)
    return tail[:-1] - tail[1:]


def expressibility(circuit: Circuit, samples: int = 5000, bins: int = 75, seed: int = 0) -> float:
    """KL(P_circuit || P_Haar) in nats of the fidelity histogram of `samples` random pairs of states (see
    the module docstring). The same seed gives the same number."""
    _check(circuit, samples, "expressibility")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ValueError(f"expressibility: bins must be an integer >= 2, got {bins!r}")
    generator = torch.Generator().manual_seed(seed)
    first = _random_states(circuit, samples, generator)
    second = _random_states(circuit, samples, generator)
    fidelity = (first.conj() * second).sum(dim=1).abs().square().clamp(0, 1)
    counts = torch.histc(fidelity, bins=bins, min=0.0, max=1.0)
    empirical = counts / counts.sum()
    haar = haar_bin_probabilities(circuit.n_qubits, bins)
    seen = empirical > 0
    if bool((haar[seen] <= 0).any()):  # a fidelity bin Haar states cannot reach (only at F = 1 in float64): infinite divergence
        return math.inf
    return float((empirical[seen] * (empirical[seen] / haar[seen]).log()).sum())


def entangling_capability(circuit: Circuit, samples: int = 2000, seed: int = 0) -> float:
    """The mean Meyer-Wallach Q over `samples` random parameter draws (see the module docstring)."""
    _check(circuit, samples, "entangling_capability")
    n = circuit.n_qubits
    if n < 2:
        raise ValueError(f"entangling_capability: needs at least 2 qubits, the circuit has {n}")
    states = _random_states(circuit, samples, torch.Generator().manual_seed(seed)).reshape(samples, *([2] * n))
    purity = torch.zeros(samples, dtype=torch.float64)
    for k in range(n):
        moved = states.movedim(k + 1, 1).reshape(samples, 2, -1)  # qubit k against the rest
        reduced = moved @ moved.conj().transpose(1, 2)  # (S, 2, 2): rho_k
        purity += (reduced.abs().square()).sum(dim=(1, 2))  # Tr(rho_k^2) for Hermitian rho_k
    q = 2 * (1 - purity / n)
    return float(q.mean().clamp_min(0.0))
