"""Pauli strings, weighted Pauli sums and the state-overlap cost.

Expectation values never build a 2^n x 2^n matrix: a Z-only term is a signed
sum of marginal probabilities, and a term with X or Y flips the state along
those qubits' axes (a view plus one copy) and multiplies by a small phase
tensor that broadcasts over the state. On registers of at most
`COMBINED_DIAGONAL_QUBITS`, an observable's Z-only terms are summed once into
one vector of 2^n eigenvalues (cached), and all of them cost one product with
the probabilities: a sum of n Z_q terms at n = 8 took 16 calls and their
backward as many, where one state's arithmetic is a few hundred numbers.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from qtrain.engine.program import plain_tensors

__all__ = [
    "as_pauli_sum",
    "checked_pauli_sum",
    "checked_target_state",
    "COMBINED_DIAGONAL_QUBITS",
    "ExpvalCost",
    "expval",
    "expvals",
    "infidelity",
    "InfidelityCost",
    "Observable",
    "PauliString",
    "PauliSum",
    "TARGET_NORM_TOL",
]

_NUMBER = r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
# One term: optional sign, optional coefficient (with optional '*'), Pauli factors.
_TERM = re.compile(rf"\s*(?P<sign>[+-])?\s*(?P<coeff>{_NUMBER})?\s*(?P<star>\*)?\s*(?P<paulis>(?:[XYZI]\s*\d+\s*)*)")
_FACTOR = re.compile(r"([XYZI])\s*(\d+)")


@dataclass(frozen=True)
class PauliString:
    """coeff * P_{q1} P_{q2} ..., with `paulis` as ((qubit, 'X'|'Y'|'Z'), ...)
    sorted by qubit. An empty `paulis` is the identity."""

    paulis: tuple[tuple[int, str], ...]
    coeff: float = 1.0

    def __post_init__(self) -> None:
        qubits = [q for q, _ in self.paulis]
        if len(set(qubits)) != len(qubits):
            raise ValueError(f"Pauli string {self.paulis} acts twice on one qubit")
        for q, p in self.paulis:
            if p not in ("X", "Y", "Z") or not isinstance(q, int) or q < 0:
                raise ValueError(f"bad Pauli factor {p}{q} in {self.paulis}")
        object.__setattr__(self, "paulis", tuple(sorted(self.paulis)))

    @property
    def is_diagonal(self) -> bool:
        return all(p == "Z" for _, p in self.paulis)

    @property
    def max_qubit(self) -> int:
        return max((q for q, _ in self.paulis), default=-1)

    def __str__(self) -> str:
        body = " ".join(f"{p}{q}" for q, p in self.paulis) or "I"
        return f"{self.coeff:g}*{body}"


@dataclass(frozen=True)
class PauliSum:
    """A real-weighted sum of Pauli strings (a Hermitian observable)."""

    terms: tuple[PauliString, ...]

    @classmethod
    def parse(cls, text: str) -> PauliSum:
        """Parse e.g. "Z0 Z1", "0.5*Z0 Z1 - 0.3*Y0 Y2 + X2", "-Z0 + 2"."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"observable must be a non-empty string, got {text!r}")
        parsed = _parsed(text)
        return parsed if cls is PauliSum else cls(parsed.terms)

    @classmethod
    def _parse(cls, text: str) -> PauliSum:
        terms: list[PauliString] = []
        pos = 0
        while pos < len(text):
            m = _TERM.match(text, pos)
            body = m.group("paulis") if m else ""
            dangling_star = m is not None and m.group("star") and not body.strip()
            if m is None or m.end() == pos or not (m.group("coeff") or body.strip()) or dangling_star:
                raise ValueError(f"cannot parse observable {text!r} at position {pos}: {text[pos:]!r}")
            if terms and not m.group("sign"):
                raise ValueError(f"observable {text!r}: expected '+' or '-' before {text[pos:].strip()!r}")
            coeff = float(m.group("coeff") or 1.0) * (-1.0 if m.group("sign") == "-" else 1.0)
            factors = [(int(q), p) for p, q in _FACTOR.findall(body) if p != "I"]
            terms.append(PauliString(tuple(factors), coeff))
            pos = m.end()
        return cls(tuple(terms))

    @property
    def max_qubit(self) -> int:
        return max((t.max_qubit for t in self.terms), default=-1)

    def __str__(self) -> str:
        return " + ".join(str(t) for t in self.terms)


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> PauliSum:
    """`PauliSum.parse`, once per text: a training loop passes the same string at every step, and parsing it took
    a tenth of a small circuit's value and gradient. (The result is frozen, so sharing it is safe.)"""
    return PauliSum._parse(text)


#: What an observable may be given as: a Pauli-sum string ("0.5*Z0 Z1 + X2"), a PauliString or a PauliSum.
Observable = str | PauliString | PauliSum


def as_pauli_sum(observable: Observable) -> PauliSum:
    """Accept a string, a PauliString or a PauliSum."""
    if isinstance(observable, PauliSum):
        return observable
    if isinstance(observable, PauliString):
        return PauliSum((observable,))
    if isinstance(observable, str):
        return PauliSum.parse(observable)
    raise TypeError(f"observable must be a str, PauliString or PauliSum, got {type(observable).__name__}")


def checked_pauli_sum(observable: Observable, n_qubits: int, what: str = "observable") -> PauliSum:
    """`as_pauli_sum`, refusing an observable that acts beyond `n_qubits`."""
    pauli_sum = as_pauli_sum(observable)
    if pauli_sum.max_qubit >= n_qubits:
        raise ValueError(f"{what} {str(observable)!r} acts on qubit {pauli_sum.max_qubit}, but the circuit has {n_qubits} qubits")
    return pauli_sum


#: |norm - 1| allowed for a target state: complex64 normalization leaves about 1e-7.
TARGET_NORM_TOL = 1e-6


def checked_target_state(target: torch.Tensor, n_qubits: int) -> torch.Tensor:
    """A target state (2^n,) or (B, 2^n), refused unless every row has unit
    norm: an unnormalized target makes 1 - |<target|psi>|^2 negative (2 x a
    state) or stuck at 1 (a zero vector) without any other sign of trouble."""
    dim = 2**n_qubits
    if not isinstance(target, torch.Tensor) or target.dim() not in (1, 2) or target.shape[-1] != dim:
        got = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__
        raise ValueError(f"target state must be a tensor of shape ({dim},) or (B, {dim}) for {n_qubits} qubits, got {got}")
    norms = torch.linalg.vector_norm(target.detach().reshape(-1, dim).to(torch.complex128), dim=1)
    worst = int((norms - 1).abs().argmax())
    if abs(norms[worst].item() - 1) > TARGET_NORM_TOL:
        where = f" (row {worst})" if target.dim() == 2 else ""
        raise ValueError(f"target state must be normalized, but its norm is {norms[worst].item():.6g}{where}; divide it by its norm")
    return target


def _diagonal_term(probs: torch.Tensor, term: PauliString) -> torch.Tensor:
    """<Z_a Z_b ...> from probabilities (B, 2, ..., 2): marginalize onto the
    term's qubits, then a signed sum over 2^k entries."""
    qubits = [q for q, _ in term.paulis]
    if not qubits:
        return probs.reshape(probs.shape[0], -1).sum(dim=1)
    others = [1 + q for q in range(probs.dim() - 1) if q not in qubits]
    marginal = probs.sum(dim=others) if others else probs  # (B, 2, ..., 2) over the term's qubits
    sign = torch.ones((), dtype=probs.dtype, device=probs.device)
    for _ in qubits:
        sign = torch.stack((sign, -sign))  # Kronecker product of (1, -1) factors
    return (marginal * sign).reshape(probs.shape[0], -1).sum(dim=1)


def _offdiagonal_term(state: torch.Tensor, term: PauliString) -> torch.Tensor:
    """Re <psi| P |psi> for a string with at least one X or Y."""
    n = state.dim() - 1
    flips = [1 + q for q, p in term.paulis if p in ("X", "Y")]
    moved = torch.flip(state, dims=flips)  # X and Y swap |0> and |1> on their qubits
    # After the flip, entry b of P|psi> picks up, per qubit, a phase that depends
    # on the output bit b: X -> (1, 1), Y -> (-i, i), Z -> (1, -1).
    phase = torch.ones([1] * (n + 1), dtype=state.dtype, device=state.device)
    for q, p in term.paulis:
        if p == "X":
            continue
        factor = torch.tensor((-1j, 1j) if p == "Y" else (1, -1), dtype=state.dtype, device=state.device)
        shape = [1] * (n + 1)
        shape[1 + q] = 2
        phase = phase * factor.reshape(shape)
    return (state.conj() * moved * phase).reshape(state.shape[0], -1).sum(dim=1).real


#: The widest register on which an observable's Z-only terms become one cached eigenvalue vector (2^n numbers:
#: 512 KiB in float64 at 16 qubits); wider, each term is a marginal sum of its own.
COMBINED_DIAGONAL_QUBITS = 16


@functools.lru_cache(maxsize=64)
def _combined_diagonal(terms: tuple[PauliString, ...], n_qubits: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The eigenvalues of a sum of Z-only terms on n qubits, (2^n,) real, qubit 0 the most significant bit."""
    with plain_tensors():
        index = torch.arange(2**n_qubits)
        values = torch.zeros(2**n_qubits, dtype=torch.float64)
        for term in terms:
            sign = torch.ones(2**n_qubits, dtype=torch.float64)
            for q, _ in term.paulis:
                sign = sign * (1 - 2 * ((index >> (n_qubits - 1 - q)) & 1))
            values += term.coeff * sign
        return values.to(dtype=dtype, device=device)


def expval(state: torch.Tensor, observable: Observable) -> torch.Tensor:
    """<psi|H|psi> per sample: state (B, 2, ..., 2) -> (B,) real."""
    pauli_sum = as_pauli_sum(observable)
    n = state.dim() - 1
    if pauli_sum.max_qubit >= n:
        raise ValueError(f"observable {pauli_sum} acts on qubit {pauli_sum.max_qubit}, but the state has {n} qubits")
    total = torch.zeros(state.shape[0], dtype=state.real.dtype, device=state.device)
    probs = None
    diagonal = tuple(term for term in pauli_sum.terms if term.is_diagonal)
    combined = len(diagonal) > 1 and n <= COMBINED_DIAGONAL_QUBITS
    if combined:
        probs = state.real**2 + state.imag**2
        total = probs.reshape(state.shape[0], -1) @ _combined_diagonal(diagonal, n, probs.dtype, state.device)
    for term in pauli_sum.terms:
        if term.is_diagonal and combined:
            continue
        if term.is_diagonal:
            probs = probs if probs is not None else state.real**2 + state.imag**2
            total = total + term.coeff * _diagonal_term(probs, term)
        else:
            total = total + term.coeff * _offdiagonal_term(state, term)
    return total


class ExpvalCost:
    """The cost <psi|H|psi> of states (B, 2, ..., 2) -> (B,), as the adjoint paths take it: callable like
    `expval`, and for an H of Z-only terms on a register of at most `COMBINED_DIAGONAL_QUBITS` it also gives the
    cotangent itself (`value_and_cotangent`: 2 H psi, one product with the cached eigenvalues), so no autograd
    graph is built for the cost."""

    def __init__(self, pauli_sum: PauliSum) -> None:
        self.pauli_sum = pauli_sum
        self.diagonal = all(term.is_diagonal for term in pauli_sum.terms)

    def __call__(self, states: torch.Tensor) -> torch.Tensor:
        return expval(states, self.pauli_sum)

    def value_and_cotangent(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(values (B,), cotangent 2 H psi in the states' shape), or None where H is not diagonal or the register
        too wide for the cached eigenvalues (the caller then uses autograd)."""
        n = states.dim() - 1
        if not self.diagonal or n > COMBINED_DIAGONAL_QUBITS or self.pauli_sum.max_qubit >= n:
            return None
        flat = states.reshape(states.shape[0], -1)
        eigenvalues = _combined_diagonal(self.pauli_sum.terms, n, flat.real.dtype, flat.device)
        values = (flat.real**2 + flat.imag**2) @ eigenvalues
        return values, (flat * (2 * eigenvalues)).reshape(states.shape)


def expvals(state: torch.Tensor, observables: Iterable[Observable]) -> torch.Tensor:
    """Several observables at once: -> (B, K)."""
    return torch.stack([expval(state, o) for o in observables], dim=-1)


class InfidelityCost:
    """The cost 1 - |<target|psi>|^2 of states (B, 2, ..., 2) -> (B,), as the adjoint paths take it: callable like
    `infidelity`, and giving its cotangent itself (`value_and_cotangent`): with o = <target|psi>, PyTorch's gradient
    of the values' sum with respect to psi is -2 o target, so no autograd graph is built for the cost."""

    def __init__(self, target: torch.Tensor) -> None:
        self.target = target  # (2^n,) or (B, 2^n)
        self._converted: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}

    def __call__(self, states: torch.Tensor) -> torch.Tensor:
        return infidelity(states, self.target)

    def value_and_cotangent(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(values (B,), cotangent -2 <target|psi> target in the states' shape), or None where the target does not
        fit the states (the caller's autograd then raises `infidelity`'s error)."""
        flat = states.reshape(states.shape[0], -1)
        if self.target.shape[-1] != flat.shape[1] or self.target.dim() > 2 or self.target.requires_grad:
            return None
        key = (flat.dtype, flat.device)
        if key not in self._converted:
            self._converted[key] = self.target.detach().to(dtype=flat.dtype, device=flat.device)
        target = self._converted[key]
        overlap = (target.conj() * flat).sum(dim=1) if target.dim() == 2 else flat @ target.conj()
        values = 1 - (overlap.real**2 + overlap.imag**2)
        return values, (-2 * overlap[:, None] * target).reshape(states.shape)


def infidelity(state: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - |<target|psi>|^2 per sample; target is (2^n,) or (B, 2^n)."""
    batch = state.shape[0]
    flat = state.reshape(batch, -1)
    if target.shape[-1] != flat.shape[1] or target.dim() > 2:
        raise ValueError(f"target state has shape {tuple(target.shape)}, expected ({flat.shape[1]},) or (B, {flat.shape[1]})")
    target = target.to(dtype=flat.dtype, device=flat.device)
    overlap = (target.conj() * flat).sum(dim=1)
    return 1 - (overlap.real**2 + overlap.imag**2)
