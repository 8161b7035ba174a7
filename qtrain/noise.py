"""Noise models: which channels act after which gates, at what rates.

A `NoiseModel` attaches single-qubit channels after every gate as the user
added it (a u3, rot or crx is one gate; fixed gates such as h and cz too),
never after the engine's internal rotations or fused layers: on each of the
gate's qubits in turn, the channels in the order amplitude damping, phase
damping, bit flip, phase flip, depolarizing. A rate is one number for every
gate, or a mapping by gate name ({"cz": 0.02}) or by qubit ({0: 0.01}); gates
and qubits the mapping does not name get rate 0.

Kraus operators (PennyLane's conventions):

- amplitude damping g: K0 = diag(1, sqrt(1-g)), K1 = sqrt(g) |0><1|
- phase damping l: K0 = diag(1, sqrt(1-l)), K1 = sqrt(l) |1><1| (off-diagonals scale by sqrt(1-l))
- bit flip p: sqrt(1-p) I, sqrt(p) X
- phase flip p: sqrt(1-p) I, sqrt(p) Z
- depolarizing p: rho -> (1-p) rho + p/3 (X rho X + Y rho Y + Z rho Z)

Readout error r flips each measured bit with probability r: a Pauli term of
weight k (X, Y or Z alike, each measured in its rotated basis) scales by
prod (1 - 2 r_q) over its qubits, (1 - 2r)^k for a uniform rate.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Union

import torch

from qtrain.engine.gates import GATES
from qtrain.engine.observables import PauliString, PauliSum

__all__ = ["CHANNELS", "Channel", "NoiseModel", "Rate", "kraus_operators", "pauli_probabilities", "superoperator"]

#: A rate: one number for every gate, or a mapping by gate name or by qubit.
Rate = Union[float, Mapping[str, float], Mapping[int, float]]

#: The channels in the order they act after a gate, on each of its qubits.
CHANNELS = ("amplitude_damping", "phase_damping", "bit_flip", "phase_flip", "depolarizing")

#: Channels whose Kraus operators are (scaled) Paulis, so a trajectory inserts a
#: Pauli drawn with fixed probabilities, whatever the state (phase damping is
#: the phase flip with p = (1 - sqrt(1 - l)) / 2 as a channel).
PAULI_CHANNELS = frozenset({"phase_damping", "bit_flip", "phase_flip", "depolarizing"})


@dataclass(frozen=True)
class Channel:
    """One channel application: `name` (of `CHANNELS`) on `qubit` at `rate`."""

    name: str
    qubit: int
    rate: float


def kraus_operators(name: str, rate: float) -> list[torch.Tensor]:
    """The channel's Kraus operators, (2, 2) complex128 each, in the module's conventions."""
    g = float(rate)
    if name == "amplitude_damping":
        return [_m([[1, 0], [0, math.sqrt(1 - g)]]), _m([[0, math.sqrt(g)], [0, 0]])]
    if name == "phase_damping":
        return [_m([[1, 0], [0, math.sqrt(1 - g)]]), _m([[0, 0], [0, math.sqrt(g)]])]
    if name == "bit_flip":
        return [math.sqrt(1 - g) * _m([[1, 0], [0, 1]]), math.sqrt(g) * _m([[0, 1], [1, 0]])]
    if name == "phase_flip":
        return [math.sqrt(1 - g) * _m([[1, 0], [0, 1]]), math.sqrt(g) * _m([[1, 0], [0, -1]])]
    if name == "depolarizing":
        paulis = [_m([[0, 1], [1, 0]]), _m([[0, -1j], [1j, 0]]), _m([[1, 0], [0, -1]])]
        return [math.sqrt(1 - g) * _m([[1, 0], [0, 1]])] + [math.sqrt(g / 3) * p for p in paulis]
    raise ValueError(f"unknown channel {name!r} (known: {', '.join(CHANNELS)})")


def superoperator(name: str, rate: float) -> torch.Tensor:
    """(4, 4) complex128: the channel on a vectorized density matrix, index
    (row bit, column bit): vec(sum_k K rho K^dagger) = (sum_k K (x) conj(K)) vec(rho)."""
    return sum((torch.kron(k, k.conj()) for k in kraus_operators(name, rate)), torch.zeros(4, 4, dtype=torch.complex128))


def pauli_probabilities(name: str, rate: float) -> tuple[float, float, float, float]:
    """(p_I, p_X, p_Y, p_Z) of a Pauli channel: the channel is sum_P p_P P rho P.
    Phase damping l is exactly the phase flip with p = (1 - sqrt(1 - l)) / 2."""
    p = float(rate)
    if name == "bit_flip":
        return (1 - p, p, 0.0, 0.0)
    if name == "phase_flip":
        return (1 - p, 0.0, 0.0, p)
    if name == "phase_damping":
        flip = (1 - math.sqrt(1 - p)) / 2
        return (1 - flip, 0.0, 0.0, flip)
    if name == "depolarizing":
        return (1 - p, p / 3, p / 3, p / 3)
    raise ValueError(f"channel {name!r} is not a Pauli channel (Pauli channels: {', '.join(sorted(PAULI_CHANNELS))})")


def _m(rows: list[list[complex]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.complex128)


@dataclass(frozen=True, eq=False)  # equality and hash by value below: per-qubit rates are dicts
class NoiseModel:
    """Channels after every gate, and readout error (see the module docstring
    for where and in which order they act, and their Kraus operators).

    Each rate is a number in [0, 1] for every gate, or a mapping by gate name
    (`{"cz": 0.02, "ry": 0.001}`) or by qubit (`{0: 0.01, 3: 0.05}`); what a
    mapping does not name gets 0. `readout` is a number or a mapping by qubit.
    """

    depolarizing: Rate = 0.0
    amplitude_damping: Rate = 0.0
    phase_damping: Rate = 0.0
    bit_flip: Rate = 0.0
    phase_flip: Rate = 0.0
    readout: float | Mapping[int, float] = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Mapping):
                object.__setattr__(self, f.name, _checked_mapping(f.name, value, by_gate=f.name != "readout"))
            else:
                object.__setattr__(self, f.name, _checked_rate(f.name, value))

    def _key(self) -> tuple:
        return tuple((f.name, tuple(sorted(v.items(), key=repr)) if isinstance(v := getattr(self, f.name), Mapping) else v) for f in fields(self))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoiseModel) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    # ---- what acts where ----------------------------------------------------------------

    def channels_after(self, gate: str, qubits: tuple[int, ...]) -> tuple[Channel, ...]:
        """The channels after gate `gate` on `qubits`, in the order they act (rate-0 ones left out)."""
        out = []
        for qubit in qubits:
            for name in CHANNELS:
                rate = _rate_of(getattr(self, name), gate, qubit)
                if rate > 0:
                    out.append(Channel(name, qubit, rate))
        return tuple(out)

    def readout_rate(self, qubit: int) -> float:
        """Probability that qubit `qubit`'s measured bit is flipped."""
        return _rate_of(self.readout, None, qubit)

    def readout_factor(self, term: PauliString) -> float:
        """How readout error scales the expectation of `term`: prod over its qubits of (1 - 2 r_q)."""
        return math.prod(1 - 2 * self.readout_rate(q) for q, _ in term.paulis)

    def with_readout(self, pauli_sum: PauliSum) -> PauliSum:
        """`pauli_sum` with every term's coefficient scaled by its readout factor: its noisy expectation."""
        if not self.has_readout:
            return pauli_sum
        return PauliSum(tuple(PauliString(t.paulis, t.coeff * self.readout_factor(t)) for t in pauli_sum.terms))

    @property
    def has_readout(self) -> bool:
        return _any_positive(self.readout)

    @property
    def has_gate_noise(self) -> bool:
        """Whether any channel acts after some gate (readout aside)."""
        return any(_any_positive(getattr(self, name)) for name in CHANNELS)

    @property
    def is_noiseless(self) -> bool:
        return not self.has_gate_noise and not self.has_readout

    @property
    def pauli_only(self) -> bool:
        """Whether every channel with a positive rate is a Pauli channel (trajectories then have gradients)."""
        return not _any_positive(self.amplitude_damping)

    def check_qubits(self, n_qubits: int) -> None:
        """Refuse, by name, a per-qubit rate for a qubit the circuit does not have."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Mapping):
                bad = [k for k in value if isinstance(k, int) and not 0 <= k < n_qubits]
                if bad:
                    raise ValueError(f"noise: {f.name} names qubit {bad[0]}, but the circuit has {n_qubits} qubits (0..{n_qubits - 1})")

    def describe(self) -> str:
        """A short label of the nonzero settings, e.g. 'depolarizing=0.01, readout=0.02' ('noiseless' if none)."""
        parts = [f"{f.name}={_label(getattr(self, f.name))}" for f in fields(self) if _any_positive(getattr(self, f.name))]
        return ", ".join(parts) or "noiseless"


def _label(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {v:g}" for k, v in value.items()) + "}"
    return f"{value:g}"


def _rate_of(value: Any, gate: str | None, qubit: int) -> float:
    if not isinstance(value, Mapping):
        return float(value)
    if not value:
        return 0.0
    key: Any = gate if isinstance(next(iter(value)), str) else qubit
    return float(value.get(key, 0.0))


def _any_positive(value: Any) -> bool:
    return any(v > 0 for v in value.values()) if isinstance(value, Mapping) else value > 0


def _checked_rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy scalars are Real too
        raise TypeError(f"noise: {name} must be a number in [0, 1] or a mapping, got {value!r}")
    rate = float(value)
    if not 0.0 <= rate <= 1.0:  # also refuses nan
        raise ValueError(f"noise: {name} must be in [0, 1], got {value!r}")
    return rate


def _checked_mapping(name: str, value: Mapping[Any, Any], by_gate: bool) -> dict[Any, float]:
    keys = list(value)
    if all(isinstance(k, str) for k in keys) and keys:
        if not by_gate:
            raise ValueError(f"noise: {name} is per qubit only (a mapping of qubit index to rate), got gate names {keys}")
        unknown = [k for k in keys if k not in GATES]
        if unknown:
            raise ValueError(f"noise: {name} names unknown gate {unknown[0]!r} (known: {', '.join(sorted(GATES))})")
    elif not all(isinstance(k, numbers.Integral) and not isinstance(k, bool) and int(k) >= 0 for k in keys):
        raise ValueError(f"noise: {name} mapping keys must be all gate names or all qubit indices (ints >= 0), got {keys}")
    else:
        value = {int(k): v for k, v in value.items()}  # numpy integers as plain ints: the same key as the qubit's int
    return {k: _checked_rate(f"{name}[{k!r}]", v) for k, v in value.items()}
