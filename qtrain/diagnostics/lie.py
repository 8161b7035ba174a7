"""The dynamical Lie algebra of a circuit, and the plateau it predicts.

`lie_algebra(circuit)` closes the circuit's parametrized generators under the
commutator, exactly: elements are integer combinations of Pauli strings, so
no rounding decides whether an element is new. `predict_variance(circuit,
observable)` then gives Var over uniform angles of <O> for a deep circuit
from the algebra alone (Ragone et al. 2024, Nat. Commun. 15, 7172; Fontana
et al. 2024): when O or the initial state lies in the algebra's span,

    Var = sum over simple ideals g_j of  P_j(rho) P_j(O) / dim g_j,
    P_j(A) = sum_k Tr(B_k A)^2 over an orthonormal basis B_k of g_j,

and the centre only shifts the mean.

The frame. Fixed gates are moved out of the way: those before the first
parametrized gate are run on |0...0> (`LieAlgebra.initial_state`); every
later one is pushed to the circuit's end, conjugating the generators of the
rotations after it, and ends in the observable. Pushing needs a fixed gate to
map Pauli strings to Pauli strings (a Clifford gate: h, s, cz, cnot, swap, x,
rotations by multiples of pi/2, ...); a non-Clifford fixed gate after the
first parametrized one is refused by name.

Shared parameters. A parameter whose gates' generators commute with each
other, and whose gates can all be brought to one place (each commuting with
every gate it passes on the way), is exp(-i theta sum_k s_k G_k / 2):
it contributes that one sum (QAOA's shared cost layer). Otherwise each of its
gates contributes its own generator: the algebra is then the untied
circuit's, and `LieAlgebra.restrictions` says so (a prediction assumes the
tied circuit still covers that group uniformly).

Every algebra of a unitary circuit is reductive (a compact Lie algebra), so
it always splits into its centre and simple ideals; the split is numerical
(float64) once the closure is done.

Cost: the closure brackets each new element with every generator, about
dim x generators brackets: n = 6 universal circuits (dim 4^6 - 1 = 4095)
close in seconds. The split into simple ideals diagonalizes one dim x dim
matrix per non-trivial block (skipped for su(2^n) itself). `max_dim` refuses
a larger algebra as soon as the closure passes it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from qtrain._circuit_data import CircuitData
from qtrain._lowering import lower
from qtrain.circuit import Circuit
from qtrain.engine.observables import Observable, PauliString, checked_pauli_sum, expvals
from qtrain.engine.gates import GATES, GateKind
from qtrain.engine.program import StepKind

__all__ = ["COMMUTANT_MAX_QUBITS", "DEFAULT_MAX_DIM", "LieAlgebra", "MAX_MATRIX_QUBITS", "PREDICT_METHODS", "lie_algebra", "predict_variance"]

#: The largest algebra `lie_algebra` closes by default: su(64), every n = 6 circuit.
DEFAULT_MAX_DIM = 4096
#: `LieAlgebra.matrices` builds dense 2^n x 2^n matrices up to this many qubits.
MAX_MATRIX_QUBITS = 10
#: |coefficient - nearest of {0, +1, -1}| allowed when reading a fixed gate as a Clifford map of Pauli strings.
CLIFFORD_TOL = 1e-9
#: A vector shorter than this (after orthogonalization) adds nothing to an ideal being generated.
SPAN_TOL = 1e-8
#: Relative tolerance of "the observable (or the state) lies in the algebra's span".
IN_SPAN_TOL = 1e-9

# A Pauli string is the code (x << n) | z: bit q of x (of z) is set when qubit q carries X or Y (Z or Y).
# P(x, z) = prod_q i^{x_q z_q} X_q^{x_q} Z_q^{z_q}, so (1, 1) on a qubit is Y. An algebra element is
# a Hermitian sum of strings {code: coefficient}; the algebra is i times their real span, with the
# bracket [A, B] = -i (AB - BA), which maps real combinations of strings to real combinations.

Element = dict[int, int]

#: A qubit's Pauli letter as its (x, z) bits.
_LETTER_BITS = {"I": (0, 0), "X": (1, 0), "Y": (1, 1), "Z": (0, 1)}


def _code(n: int, factors: Any) -> int:
    """The code of the string with (qubit, letter) `factors`."""
    code = 0
    for q, letter in factors:
        x, z = _LETTER_BITS[letter]
        code |= (x << (n + q)) | (z << q)
    return code


def _popcount(value: int) -> int:
    return bin(value).count("1")


def _bracket_strings(n: int, a: int, b: int) -> tuple[int, int]:
    """-i [P_a, P_b] = sign * 2 P_c as (c, sign), sign 0 where the strings commute."""
    mask = (1 << n) - 1
    xa, za, xb, zb = a >> n, a & mask, b >> n, b & mask
    if (_popcount(xa & zb) + _popcount(za & xb)) % 2 == 0:
        return 0, 0
    xc, zc = xa ^ xb, za ^ zb
    # P_a P_b = i^k P_c with k = x_a.z_a + x_b.z_b + 2 z_a.x_b - x_c.z_c (mod 4); k is odd here, and
    # -i (P_a P_b - P_b P_a) = -2i i^k P_c = +2 P_c for k = 1, -2 P_c for k = 3.
    k = (_popcount(xa & za) + _popcount(xb & zb) + 2 * _popcount(za & xb) - _popcount(xc & zc)) % 4
    return (xc << n) | zc, (1 if k == 1 else -1)


def _bracket(n: int, a: Element, b: Element) -> Element:
    out: dict[int, int] = {}
    for sa, ca in a.items():
        for sb, cb in b.items():
            c, sign = _bracket_strings(n, sa, sb)
            if sign:
                out[c] = out.get(c, 0) + 2 * sign * ca * cb
    return _primitive({k: v for k, v in out.items() if v})


def _primitive(v: Element) -> Element:
    """v divided by the gcd of its coefficients, its largest string's coefficient made positive."""
    if not v:
        return v
    g = 0
    for c in v.values():
        g = math.gcd(g, c)
    if v[max(v)] < 0:
        g = -g
    return {k: c // g for k, c in v.items()}


class _Echelon:
    """Integer row echelon form: each basis element keyed by its largest string (its pivot)."""

    def __init__(self) -> None:
        self.rows: dict[int, Element] = {}

    def reduce(self, v: Element) -> Element:
        """v minus its components along the basis' pivots: empty when v lies in the span (exact)."""
        v = dict(v)
        while v:
            top = max(v)
            row = self.rows.get(top)
            if row is None:
                return _primitive(v)
            a, b = row[top], v[top]
            keys = set(v) | set(row)
            v = {k: a * v.get(k, 0) - b * row.get(k, 0) for k in keys}
            v = {k: c for k, c in v.items() if c}
            v = _primitive(v)
        return v

    def add(self, v: Element) -> None:
        self.rows[max(v)] = v


# ---- the frame: fixed gates pushed out of the generators' way --------------------------------------------

_LOCAL_PAULIS = {
    (0, 0): np.eye(2, dtype=complex), (1, 0): np.array([[0, 1], [1, 0]], dtype=complex),
    (0, 1): np.array([[1, 0], [0, -1]], dtype=complex), (1, 1): np.array([[0, -1j], [1j, 0]], dtype=complex),
}


def _local_pauli(k: int, lx: int, lz: int) -> np.ndarray:
    """The k-qubit string with local x / z bits (bit j = the gate's qubit j, the most significant factor first)."""
    out = np.eye(1, dtype=complex)
    for j in range(k):
        out = np.kron(out, _LOCAL_PAULIS[((lx >> j) & 1, (lz >> j) & 1)])
    return out


def _pauli_coefficients(matrix: np.ndarray, k: int) -> dict[tuple[int, int], complex]:
    """Tr(P M) / 2^k for every k-qubit string P (local bits), the nonzero ones."""
    out = {}
    for lx in range(2**k):
        for lz in range(2**k):
            c = np.trace(_local_pauli(k, lx, lz) @ matrix) / 2**k
            if abs(c) > CLIFFORD_TOL:
                out[(lx, lz)] = complex(c)
    return out


@lru_cache(maxsize=256)
def _clifford_table(matrix_bytes: bytes, k: int) -> tuple[tuple[int, int, int], ...] | None:
    """Per local string (index lx * 2^k + lz): (lx', lz', sign) with F^dagger P F = sign P', or None
    when F maps some string to no single string (F is not Clifford)."""
    f = np.frombuffer(matrix_bytes, dtype=complex).reshape(2**k, 2**k)
    table = []
    for lx in range(2**k):
        for lz in range(2**k):
            image = _pauli_coefficients(f.conj().T @ _local_pauli(k, lx, lz) @ f, k)
            if len(image) != 1:
                return None
            (key, c), = image.items()
            if abs(c.imag) > CLIFFORD_TOL or abs(abs(c.real) - 1) > CLIFFORD_TOL:
                return None
            table.append((key[0], key[1], 1 if c.real > 0 else -1))
    return tuple(table)


@dataclass(frozen=True)
class _FixedGate:
    """A fixed gate after the leading block: where it acts, and its conjugation table."""

    qubits: tuple[int, ...]
    table: tuple[tuple[int, int, int], ...]

    def conjugate(self, n: int, code: int) -> tuple[int, int]:
        """F^dagger P F = sign P' as (P', sign)."""
        x, z = code >> n, code & ((1 << n) - 1)
        lx = sum(((x >> q) & 1) << j for j, q in enumerate(self.qubits))
        lz = sum(((z >> q) & 1) << j for j, q in enumerate(self.qubits))
        nx, nz, sign = self.table[lx * 2 ** len(self.qubits) + lz]
        for j, q in enumerate(self.qubits):
            x = (x & ~(1 << q)) | (((nx >> j) & 1) << q)
            z = (z & ~(1 << q)) | (((nz >> j) & 1) << q)
        return (x << n) | z, sign


def _conjugate(n: int, element: dict[int, Any], gates: list[_FixedGate]) -> dict[int, Any]:
    """C^dagger A C for C = gates[-1] ... gates[0] (gates[0] applied first): each gate in turn from the last."""
    out = dict(element)
    for gate in reversed(gates):
        moved: dict[int, Any] = {}
        for code, c in out.items():
            new, sign = gate.conjugate(n, code)
            moved[new] = sign * c
        out = moved
    return out


def _full_matrix(step: Any) -> np.ndarray:
    tensor = step.tensor[0].detach().cpu().to(torch.complex128).numpy()
    return np.diag(tensor) if step.diagonal else tensor


def _apply_local(psi: np.ndarray, matrix: np.ndarray, qubits: tuple[int, ...], n: int) -> np.ndarray:
    """matrix (on `qubits`, the first most significant) applied to a state of n axes (qubit q is axis q)."""
    k = len(qubits)
    moved = np.moveaxis(psi, qubits, range(k)).reshape(2**k, -1)
    out = (matrix @ moved).reshape([2] * n)
    return np.moveaxis(out, range(k), qubits)


def _string(n: int, code: int) -> str:
    x, z = code >> n, code & ((1 << n) - 1)
    return "".join("IXZY"[((x >> q) & 1) + 2 * ((z >> q) & 1)] for q in range(n))


@dataclass(frozen=True)
class _Frame:
    n: int
    generators: tuple[Element, ...]
    restrictions: tuple[str, ...]
    fixed: tuple[_FixedGate, ...]  # every fixed gate after the leading block, in order
    initial_state: np.ndarray  # (2^n,) after the leading fixed gates


def _frame(circuit: Circuit, what: str) -> _Frame:
    if not isinstance(circuit, Circuit):
        raise TypeError(f"{what}: circuit must be a qtrain Circuit, got {type(circuit).__name__}")
    if circuit.gate_batch > 1:
        raise ValueError(f"{what}: the circuit holds per-sample gates (a batch of {circuit.gate_batch} circuits); give one circuit")
    n = circuit.n_qubits
    data = CircuitData.of(n, circuit.ops, circuit.parameters)
    psi = np.zeros([2] * n, dtype=complex)
    psi[(0,) * n] = 1.0
    fixed: list[_FixedGate] = []
    units: list[tuple[int, Element]] = []  # per gate and parameter: (parameter, 2 x its generator in the frame)
    first_slot = 0
    for op in data.ops:
        program = lower((op,), n, fuse=False)
        leading = not units and all(p is None for p in op.params)
        gate: dict[int, list[Element]] = {}  # this gate's rotations, by parameter
        for step in program.steps:
            if step.kind == StepKind.ROTATION:
                param, element = _rotation_in_frame(n, step, first_slot, data, fixed, what)
                if element:
                    gate.setdefault(param, []).append(element)
            elif leading:  # a fixed gate before the first parametrized gate: run it on the initial state (any unitary)
                psi = _apply_local(psi, _full_matrix(step), step.qubits, n)
            else:
                fixed.append(_fixed_gate(step, op, what))
        first_slot += program.n_slots
        for param, parts in gate.items():
            if any(_bracket(n, a, b) for a in parts for b in parts):
                # one parameter in two arguments of a gate (u3(q, "a", "a", "b")): its rotations are separate gates here,
                # and the rule for shared parameters unties them (stated in `restrictions`)
                units.extend((param, part) for part in parts)
                continue
            total: dict[int, int] = {}
            for part in parts:
                for code, c in part.items():
                    total[code] = total.get(code, 0) + c
            total = {k: v for k, v in total.items() if v}
            if total:
                units.append((param, total))
    generators, restrictions = _parameter_generators(n, units, data.parameters)
    distinct = tuple({tuple(sorted(g.items())): g for g in generators}.values())  # a repeated generator adds nothing
    return _Frame(n, distinct, restrictions, tuple(fixed), psi.reshape(-1))


def _rotation_in_frame(n: int, step: Any, first_slot: int, data: CircuitData, fixed: list[_FixedGate], what: str) -> tuple[int, Element]:
    """(parameter, 2 x scale x generator moved through the fixed gates before it); empty for a global phase."""
    generator = _pauli_coefficients(_full_matrix(step), 1)
    if set(generator) <= {(0, 0)}:
        return -1, {}  # a global phase: the identity commutes with everything and moves no expectation
    (key, c), = generator.items()  # the gate table's rotations are about one Pauli axis
    q = step.qubits[0]
    code = (key[0] << (n + q)) | (key[1] << q)
    slot = first_slot + step.slot
    scale2 = 2 * data.slot_scales[slot] * c.real
    if abs(scale2 - round(scale2)) > 1e-12:
        raise ValueError(f"{what}: a rotation with angle scale {scale2 / 2} is not a half-integer multiple of its parameter")
    moved = _conjugate(n, {code: 1}, fixed)
    return data.slot_params[slot], {k: int(round(scale2)) * v for k, v in moved.items()}


def _fixed_gate(step: Any, op: Any, what: str) -> _FixedGate:
    table = _clifford_table(np.ascontiguousarray(_full_matrix(step)).tobytes(), len(step.qubits))
    if table is None:
        part = "" if op.name in GATES and GATES[op.name].kind in (GateKind.FIXED, GateKind.UNITARY) else " (a fixed part of it)"
        raise ValueError(
            f"{what}: a non-Clifford fixed gate ({op.name!r} on qubits {list(op.qubits)}{part}) comes after the first parametrized "
            f"gate; the exact closure moves fixed gates through Pauli strings and can move only Clifford ones (h, s, cz, "
            f"cnot, rotations by multiples of pi/2, ...): put it before the first parametrized gate or give it a parameter"
        )
    return _FixedGate(step.qubits, table)


def _parameter_generators(n: int, units: list[tuple[int, Element]], names: tuple[str, ...]) -> tuple[tuple[Element, ...], tuple[str, ...]]:
    """One generator per parameter where its gates merge into exp(-i theta sum_k G_k / 2) (their generators
    commute with each other and they can all be brought together, `_can_gather`), else one per gate."""
    generators: list[Element] = []
    restrictions: list[str] = []
    positions: dict[int, list[int]] = {}
    for i, (param, _) in enumerate(units):
        positions.setdefault(param, []).append(i)
    for param, where in positions.items():
        if len(where) == 1:
            generators.append(_primitive(units[where[0]][1]))
            continue
        mergeable = all(not _bracket(n, units[a][1], units[b][1]) for a in where for b in where if a < b) and _can_gather(n, units, where)
        if mergeable:
            total: dict[int, int] = {}
            for i in where:
                for code, c in units[i][1].items():
                    total[code] = total.get(code, 0) + c
            total = _primitive({k: v for k, v in total.items() if v})
            if total:
                generators.append(total)
        else:
            generators.extend(_primitive(units[i][1]) for i in where)
            restrictions.append(
                f"parameter {names[param]!r} drives {len(where)} gates whose generators do not commute (or do not commute "
                f"with the gates between them): the algebra is that of the circuit with those gates untied, and a "
                f"prediction assumes the tied circuit still covers that group uniformly"
            )
    return tuple(generators), tuple(restrictions)


def _can_gather(n: int, units: list[tuple[int, Element]], where: list[int]) -> bool:
    """Whether the gates at `where` (whose generators commute with each other) can all be moved next to one another:
    some meeting point between the first and the last such that each gate commutes with every other gate it passes
    on its way there. (Checking each gate only against its neighbour's way would let a third gate pass gates it does
    not commute with.)"""
    mine = set(where)

    def passes(i: int, lo: int, hi: int) -> bool:  # gate i commutes with the others' gates strictly between lo and hi
        return all(not _bracket(n, units[m][1], units[i][1]) for m in range(lo + 1, hi) if m not in mine)

    for meet in range(where[0], where[-1] + 1):  # the gates gather just after position `meet`
        if all(passes(i, i, meet + 1) if i <= meet else passes(i, meet, i) for i in where):
            return True
    return False


# ---- closure ---------------------------------------------------------------------------------------------


def _closure(n: int, generators: tuple[Element, ...], max_dim: int, what: str) -> list[Element]:
    echelon = _Echelon()
    basis: list[Element] = []
    queue: list[Element] = []

    def offer(v: Element) -> None:
        reduced = echelon.reduce(v)
        if reduced:
            echelon.add(reduced)
            basis.append(reduced)
            queue.append(reduced)
            if len(basis) > max_dim:
                raise ValueError(
                    f"{what}: the algebra has more than max_dim={max_dim} dimensions (su(2^{n}) has {4**n - 1}); "
                    f"its closure costs about dim x generators brackets and its split into simple ideals a dim x dim "
                    f"eigendecomposition: raise max_dim if that is affordable"
                )

    for g in generators:
        offer(g)
    gens = list(basis)  # the independent generators: bracketing with them alone closes the algebra
    while queue:
        v = queue.pop()
        for g in gens:
            w = _bracket(n, g, v)
            if w:
                offer(w)
    return basis


# ---- the algebra -----------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LieAlgebra:
    """The dynamical Lie algebra of a circuit (see the module docstring for the frame).

    Coordinates: `strings` lists the Pauli strings the algebra touches (character q is qubit q's
    factor, "XIZ" is X on 0 and Z on 2); a row r of `basis`, `ideals` or `centre` is the Hermitian
    matrix sum_s r[s] P_s / sqrt(2^n). The algebra is i times the real span of `basis`, whose rows are
    orthonormal: Tr(B_j B_k) = delta_jk."""

    n_qubits: int
    strings: tuple[str, ...]
    basis: torch.Tensor
    ideals: tuple[torch.Tensor, ...]
    centre: torch.Tensor
    generators: tuple[dict[str, float], ...]
    restrictions: tuple[str, ...]
    initial_state: torch.Tensor
    _codes: np.ndarray = field(repr=False)
    _fixed: tuple[_FixedGate, ...] = field(repr=False)
    _fingerprint: str = field(repr=False)

    def __repr__(self) -> str:
        return (f"LieAlgebra(n_qubits={self.n_qubits}, dim={self.dim}, ideal_dims={list(self.ideal_dims)}, "
                f"centre_dim={self.centre.shape[0]}, restrictions={len(self.restrictions)})")

    @property
    def dim(self) -> int:
        """The algebra's real dimension."""
        return int(self.basis.shape[0])

    @property
    def ideal_dims(self) -> tuple[int, ...]:
        """The dimension of each simple ideal, largest first."""
        return tuple(int(ideal.shape[0]) for ideal in self.ideals)

    def matrices(self) -> torch.Tensor:
        """(dim, 2^n, 2^n) complex128: the Hermitian basis matrices B_k (the algebra is i times their span)."""
        n = self.n_qubits
        if n > MAX_MATRIX_QUBITS:
            raise ValueError(f"matrices: {n} qubits give {self.dim} dense {2**n} x {2**n} matrices; at most {MAX_MATRIX_QUBITS} qubits")
        paulis = torch.stack([_dense_pauli(n, int(code)) for code in self._codes]) if self.strings else torch.zeros(0, 2**n, 2**n, dtype=torch.complex128)
        return torch.einsum("ks,sab->kab", self.basis.to(torch.complex128), paulis) / math.sqrt(2**n)

    def _frame_terms(self, observable: Observable) -> dict[int, float]:
        """The observable's traceless part moved through the fixed gates after the leading block: {string code: coefficient}."""
        n = self.n_qubits
        pauli_sum = checked_pauli_sum(observable, n)
        terms: dict[int, float] = {}
        for term in pauli_sum.terms:
            code = _code(n, term.paulis)
            if code:  # the identity adds to the mean only
                terms[code] = terms.get(code, 0.0) + term.coeff
        return _conjugate(n, terms, list(self._fixed))

    def observable_coordinates(self, observable: Observable) -> tuple[torch.Tensor, float]:
        """The observable in the frame, as (coordinates on `strings`, its traceless squared norm Tr(O_0^2)
        with O_0 = O - Tr(O)/2^n): the part outside `strings` is the difference of the two norms."""
        n = self.n_qubits
        moved = self._frame_terms(observable)
        scale = math.sqrt(2**n)  # coordinates on P_s / sqrt(2^n)
        index = {int(c): i for i, c in enumerate(self._codes)}
        coords = torch.zeros(len(self.strings), dtype=torch.float64)
        for code, c in moved.items():
            if code in index:
                coords[index[code]] += c * scale
        return coords, float(sum(c * c for c in moved.values()) * 2**n)

    def state_coordinates(self) -> tuple[torch.Tensor, float]:
        """The initial state rho = |psi0><psi0| on `strings` (Tr(P_s rho) / sqrt(2^n)) and Tr(rho_0^2) = 1 - 1/2^n."""
        n = self.n_qubits
        state = self.initial_state.reshape(1, *[2] * n)
        strings = [PauliString(tuple((q, letter) for q, letter in enumerate(label) if letter != "I")) for label in self.strings]
        values = expvals(state, strings)[0] if strings else torch.zeros(0, dtype=torch.float64)
        return values / math.sqrt(2**n), 1.0 - 1.0 / 2**n


def _dense_pauli(n: int, code: int) -> torch.Tensor:
    x, z = code >> n, code & ((1 << n) - 1)
    out = torch.ones(1, 1, dtype=torch.complex128)
    for q in range(n):
        out = torch.kron(out, torch.from_numpy(_LOCAL_PAULIS[((x >> q) & 1, (z >> q) & 1)]))
    return out


def _popcounts(values: np.ndarray) -> np.ndarray:
    """popcount, elementwise, of non-negative int64 (SWAR: bits summed in pairs, nibbles, bytes)."""
    v = values.astype(np.uint64)
    v = v - ((v >> np.uint64(1)) & np.uint64(0x5555555555555555))
    v = (v & np.uint64(0x3333333333333333)) + ((v >> np.uint64(2)) & np.uint64(0x3333333333333333))
    v = (v + (v >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return ((v * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.int64)


def _bracket_many(n: int, a: int, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_bracket_strings` of one string against an array of strings: (codes, signs), sign 0 where they commute."""
    mask = (1 << n) - 1
    xa, za = a >> n, a & mask
    xb, zb = b >> n, b & mask
    anti = (_popcounts(xb & za) + _popcounts(zb & xa)) & 1
    xc, zc = xb ^ xa, zb ^ za
    k = (_popcount(xa & za) + _popcounts(xb & zb) + 2 * _popcounts(xb & za) - _popcounts(xc & zc)) % 4
    return (xc << n) | zc, anti * np.where(k == 1, 1, -1)


# ---- splitting into centre and simple ideals -------------------------------------------------------------


def _apply_ad(n: int, generator: Element, rows: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """ad_g on each row (coordinates on `codes`); the algebra is closed, so every image lies on `codes`."""
    out = np.zeros_like(rows)
    for g, c in generator.items():
        images, signs = _bracket_many(n, g, codes)
        position = np.minimum(np.searchsorted(codes, images), len(codes) - 1)
        moved = np.flatnonzero((signs != 0) & (codes[position] == images))  # images off `codes` cancel within the algebra
        out[:, position[moved]] += 2 * c * signs[moved] * rows[:, moved]
    return out


def _ad_matrix(n: int, x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The dense ad_x on coordinates `codes`, x given on the same coordinates (real, antisymmetric)."""
    size = len(codes)
    out = np.zeros((size, size))
    columns = np.arange(size)
    for s in np.flatnonzero(x):
        images, signs = _bracket_many(n, int(codes[s]), codes)
        position = np.minimum(np.searchsorted(codes, images), size - 1)
        keep = (signs != 0) & (codes[position] == images)  # images off `codes` cancel within the algebra
        np.add.at(out, (position[keep], columns[keep]), 2 * signs[keep] * x[s])
    return out


def _orthonormal_add(span: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Orthonormal rows spanning what `candidates` add to the span of `span`'s orthonormal rows."""
    for _ in range(2):  # projected twice: once is not enough in floating point
        if len(span):
            candidates = candidates - (candidates @ span.T) @ span
    if not len(candidates):
        return candidates
    _, sing, vt = np.linalg.svd(candidates, full_matrices=False)
    return vt[sing > SPAN_TOL * max(1.0, float(np.abs(candidates).max(initial=0.0)))]


def _invariant_span(seed: np.ndarray, maps: tuple[np.ndarray, ...]) -> np.ndarray:
    """Orthonormal rows of the smallest subspace holding `seed` that every matrix in `maps` maps into itself."""
    span = seed[None, :] / np.linalg.norm(seed)
    frontier = span
    while len(frontier):
        frontier = _orthonormal_add(span, np.concatenate([frontier @ m.T for m in maps]))
        span = np.concatenate([span, frontier])
    return span


def _split(n: int, block: np.ndarray, generators: tuple[Element, ...], codes: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """The simple ideals in a semisimple ideal `block` (orthonormal rows on `codes`).

    For random x in the block, each eigenvector of ad_x with a nonzero eigenvalue (a root vector) lies in
    one simple ideal, and the ideal it generates is that simple ideal. Two random elements generate a
    semisimple algebra (Kuranishi), so the ideal is the span the seed grows to under their ad; each ideal
    found is then checked against the circuit's own generators."""
    dim = block.shape[0]
    if dim <= 3 or dim == 4**n - 1:  # su(2), or su(2^n) itself: simple
        return [block]
    one_hot = bool((np.count_nonzero(block, axis=1) == 1).all())  # a component of a string-spanned algebra
    positions = np.abs(block).argmax(axis=1)
    maps = []
    for _ in range(2):
        ad = _ad_matrix(n, rng.standard_normal(dim) @ block, codes)
        ad = ad[np.ix_(positions, positions)] * np.outer(block[np.arange(dim), positions], block[np.arange(dim), positions]) if one_hot else block @ ad @ block.T
        maps.append(ad / max(float(np.abs(ad).max()), 1e-300))  # ad_x on the block's coordinates: real antisymmetric
    # -ad_x^2 is symmetric; its eigenvectors of a nonzero eigenvalue |alpha(x)|^2 lie in the span of a root pair's
    # real and imaginary parts, inside one simple ideal (a real eigh, cheaper than the Hermitian i ad_x)
    values, vectors = np.linalg.eigh(maps[0].T @ maps[0])
    ideals: list[np.ndarray] = []
    found = np.zeros((0, dim))
    for i in np.argsort(-values):
        if found.shape[0] >= dim or values[i] < SPAN_TOL:
            break
        if np.linalg.norm(found @ vectors[:, i]) > 1e-6:
            continue  # a root vector of an ideal already found
        ideal = _invariant_span(vectors[:, i], tuple(maps))
        ideals.append(ideal @ block)
        found = np.concatenate([found, ideal])
    if found.shape[0] != dim:
        raise RuntimeError(f"lie_algebra: the split into simple ideals covered {found.shape[0]} of {dim} dimensions")
    for ideal in ideals if len(ideals) > 1 else ():  # one ideal is the block itself, an ideal already
        for g in generators:
            image = _apply_ad(n, g, ideal, codes)
            if np.abs(image - (image @ ideal.T) @ ideal).max(initial=0.0) > 1e-6 * max(1.0, float(np.abs(image).max(initial=0.0))):
                raise RuntimeError("lie_algebra: an ideal found numerically is not closed under the circuit's generators")
    return ideals


def _decompose(n: int, elements: list[Element], generators: tuple[Element, ...]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:
    """(codes, orthonormal basis, simple ideals, centre), every matrix's rows on the sorted string codes."""
    codes = np.array(sorted({code for v in elements for code in v}), dtype=np.int64)
    single = all(len(v) == 1 for v in elements)
    if single:  # the algebra is spanned by strings: they are its orthonormal basis
        basis = np.eye(len(codes))
    else:
        index = {int(c): i for i, c in enumerate(codes)}
        raw = np.zeros((len(elements), len(codes)))
        for r, v in enumerate(elements):
            for code, c in v.items():
                raw[r, index[code]] = c
        q, _ = np.linalg.qr(raw.T)
        basis = q.T
    if not len(codes):
        return codes, basis.reshape(0, 0), [], basis.reshape(0, 0)
    gens = tuple(generators)
    # the centre: what every generator's ad annihilates (ad of a generating set vanishing = central)
    if single:  # a string is central when it commutes with every generator's strings
        central = np.ones(len(codes), dtype=bool)
        for g in gens:
            for code in g:
                central &= _bracket_many(n, code, codes)[1] == 0
        centre = basis[central]
    else:
        gram = np.zeros((len(basis), len(basis)))
        for g in gens:
            images = _apply_ad(n, g, basis, codes)
            gram += images @ images.T
        centre = _null_rows(basis, gram)
    rest = _orthonormal_add(centre, basis) if len(centre) else basis
    if not len(rest):  # abelian: all centre, no simple ideal
        blocks = []
    elif len(rest) == 4**n - 1:  # su(2^n): simple
        blocks = [rest]
    else:
        blocks = _components(n, rest, codes) if single else [rest]
    rng = np.random.default_rng(0)
    ideals = [ideal for block in blocks for ideal in _split(n, block, gens, codes, rng)]
    ideals.sort(key=lambda m: -m.shape[0])
    return codes, basis, ideals, centre


def _null_rows(basis: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """The combinations of basis rows in the kernel of `gram` (sum over generators of images @ images.T)."""
    values, vectors = np.linalg.eigh(gram)
    scale = max(float(values[-1]), 1.0) if len(values) else 1.0
    kernel = vectors[:, values < SPAN_TOL * scale].T  # coefficient vectors on the basis rows
    return kernel @ basis


def _components(n: int, rest: np.ndarray, codes: np.ndarray) -> list[np.ndarray]:
    """Strings that do not commute are in one ideal: the connected components of the anticommutation graph
    of a string-spanned, centre-free algebra (`rest`'s rows are one-hot), each an ideal, possibly not yet simple."""
    members = np.array([int(np.flatnonzero(row)[0]) for row in rest])
    unseen = np.ones(len(members), dtype=bool)
    blocks = []
    for first in range(len(members)):
        if not unseen[first]:
            continue
        unseen[first] = False
        group, frontier = [first], [first]
        while frontier:
            i = frontier.pop()
            touching = unseen & (_bracket_many(n, int(codes[members[i]]), codes[members])[1] != 0)
            found = np.flatnonzero(touching)
            unseen[found] = False
            group.extend(found.tolist())
            frontier.extend(found.tolist())
        rows = np.zeros((len(group), len(codes)))
        rows[np.arange(len(group)), np.sort(members[group])] = 1.0
        blocks.append(rows)
    return blocks


def lie_algebra(circuit: Circuit, max_dim: int = DEFAULT_MAX_DIM) -> LieAlgebra:
    """The dynamical Lie algebra of `circuit`'s parametrized generators (module docstring: the frame, shared
    parameters, cost). Refuses per-sample gates, a non-Clifford fixed gate after the first parametrized gate,
    and an algebra larger than `max_dim`."""
    if isinstance(max_dim, bool) or not isinstance(max_dim, int) or max_dim < 1:
        raise ValueError(f"lie_algebra: max_dim must be a positive integer, got {max_dim!r}")
    frame = _frame(circuit, "lie_algebra")
    n = frame.n
    elements = _closure(n, frame.generators, max_dim, "lie_algebra")
    codes, basis, ideals, centre = _decompose(n, elements, frame.generators)
    as_tensor = lambda m: torch.from_numpy(np.ascontiguousarray(m, dtype=np.float64))  # noqa: E731
    return LieAlgebra(
        n_qubits=n,
        strings=tuple(_string(n, int(c)) for c in codes),
        basis=as_tensor(basis),
        ideals=tuple(as_tensor(m) for m in ideals),
        centre=as_tensor(centre.reshape(centre.shape[0], len(codes))),
        generators=tuple({_string(n, code): float(c) for code, c in g.items()} for g in frame.generators),
        restrictions=frame.restrictions,
        initial_state=torch.from_numpy(frame.initial_state.astype(np.complex128)),
        _codes=codes,
        _fixed=frame.fixed,
        _fingerprint=circuit.fingerprint(),
    )


#: The general (commutant) form of `predict_variance` works on the two-copy space of 4^n dimensions: up to this many qubits.
COMMUTANT_MAX_QUBITS = 5
#: ... and searches the commutant among at most this many block-diagonal unknowns (a Gram matrix of their square).
COMMUTANT_MAX_UNKNOWNS = 6000
#: predict_variance's methods: "auto" (the ideals' formula where it applies, else the commutant form), or either one alone.
PREDICT_METHODS = ("auto", "ideals", "commutant")


def predict_variance(
    circuit: Circuit, observable: Observable, *, algebra: LieAlgebra | None = None, max_dim: int = DEFAULT_MAX_DIM, method: str = "auto", seed: int = 0
) -> float:
    """Var over uniform angles of <O> for a deep circuit, from its Lie algebra (module docstring).

    method="ideals": sum_j P_j(rho) P_j(O) / dim g_j over the simple ideals of `lie_algebra(circuit)`;
    it applies when O or the initial state lies in the algebra's span and is refused otherwise (the formula
    would give a wrong value there). method="commutant": the general form Tr[(rho x rho) T2(O x O)] -
    Tr[rho T1(O)]^2, T1 and T2 the twirls over the circuit's group on one and two copies (the projections onto
    the commutants), valid always, at most `COMMUTANT_MAX_QUBITS` qubits. "auto" (the default): the ideals'
    formula where it applies, else the commutant form, else a refusal. `algebra`: one already computed for
    this circuit; `seed` draws the random algebra element the commutant search starts from (the value does not
    depend on it beyond rounding)."""
    if method not in PREDICT_METHODS:
        raise ValueError(f"predict_variance: method must be one of {PREDICT_METHODS}, got {method!r}")
    alg = lie_algebra(circuit, max_dim) if algebra is None else algebra
    if algebra is not None and (not isinstance(algebra, LieAlgebra) or algebra._fingerprint != circuit.fingerprint()
                                or algebra.n_qubits != circuit.n_qubits):
        raise ValueError("predict_variance: `algebra` is not lie_algebra(circuit) of this circuit (its gates differ); omit it to compute it")
    o, o_norm = alg.observable_coordinates(observable)  # checks the observable first
    if alg.dim == 0:
        return 0.0  # no parametrized gate moves the state
    for restriction in alg.restrictions:
        warnings.warn(f"predict_variance: {restriction}", stacklevel=2)
    rho, rho_norm = alg.state_coordinates()
    o_in = float((alg.basis @ o).square().sum()) >= o_norm * (1 - IN_SPAN_TOL) - 1e-12
    rho_in = float((alg.basis @ rho).square().sum()) >= rho_norm * (1 - IN_SPAN_TOL) - 1e-12
    if method == "ideals" or (method == "auto" and (o_in or rho_in)):
        if not (o_in or rho_in):
            raise ValueError(
                f"predict_variance: neither the observable {str(observable)!r} nor the initial state lies in the span of the "
                f"circuit's Lie algebra (dim {alg.dim}, simple ideals {list(alg.ideal_dims)}), so the ideals' formula does "
                f"not apply; use method='commutant' (up to {COMMUTANT_MAX_QUBITS} qubits) or sample the variance"
            )
        total = 0.0
        for ideal in alg.ideals:
            total += float((ideal @ rho).square().sum()) * float((ideal @ o).square().sum()) / ideal.shape[0]
        return total
    if alg.n_qubits > COMMUTANT_MAX_QUBITS:
        raise ValueError(
            f"predict_variance: neither the observable {str(observable)!r} nor the initial state lies in the span of the "
            f"circuit's Lie algebra (dim {alg.dim}, simple ideals {list(alg.ideal_dims)}), so the ideals' formula does not "
            f"apply, and the general commutant form works on 4^n-dimensional two-copy operators up to {COMMUTANT_MAX_QUBITS} "
            f"qubits, not {alg.n_qubits}; sample the variance instead (expval at random angles, or gradient_variance)"
        )
    return _commutant_variance(alg, observable, seed)


def _commutant_variance(alg: LieAlgebra, observable: Observable, seed: int) -> float:
    """Tr[(rho x rho) T2(O x O)] - Tr[rho T1(O)]^2 over the group of the algebra, dense, in the frame."""
    n = alg.n_qubits
    generators = [_dense_sum(n, {_code(n, enumerate(label)): c for label, c in g.items()}) for g in alg.generators]
    observable_matrix = _dense_sum(n, alg._frame_terms(observable))
    psi = alg.initial_state.numpy()
    rho = np.outer(psi, psi.conj())
    rng = np.random.default_rng(seed)
    element = sum(rng.standard_normal() * g for g in generators)  # a random element of the algebra
    values, vectors = np.linalg.eigh(element)
    rotated = [vectors.conj().T @ g @ vectors for g in generators]
    o_eig, rho_eig = vectors.conj().T @ observable_matrix @ vectors, vectors.conj().T @ rho @ vectors
    mean = _twirl_overlap(values, rotated, lambda r, c: rho_eig[r, c], lambda r, c: o_eig[r, c], copies=1)
    second = _twirl_overlap(values, rotated, lambda r, c: rho_eig[r // len(psi), c // len(psi)] * rho_eig[r % len(psi), c % len(psi)],
                            lambda r, c: o_eig[r // len(psi), c // len(psi)] * o_eig[r % len(psi), c % len(psi)], copies=2)
    return max(float(second - mean**2), 0.0)


def _twirl_overlap(values: np.ndarray, generators: list[np.ndarray], a: Callable[..., np.ndarray], b: Callable[..., np.ndarray], copies: int) -> float:
    """Tr(a T(b)) for T the Hilbert-Schmidt projection onto the commutant of {sum over copies of G} (G in
    `generators`, each given in the eigenbasis of one random algebra element with eigenvalues `values`).

    The commutant lies inside that element's commutant: matrices block-diagonal over its equal eigenvalues
    (on two copies, lambda_a + lambda_b). Grouping too many eigenvalues together only enlarges the search; on
    the unknowns (r, s) of the blocks, the commutant is the kernel of X -> sum_k [A_k, [A_k, X]], whose Gram
    matrix entries are (A^2)_{rp} delta_qs - 2 A_rp A_qs + delta_rp (A^2)_qs."""
    d = len(values)
    total = values if copies == 1 else (values[:, None] + values[None, :]).ravel()
    order = np.argsort(total)
    labels = np.empty(len(total), dtype=np.int64)
    scale = max(1.0, float(np.abs(total).max()))
    labels[order] = np.concatenate([[0], np.cumsum(np.diff(total[order]) > 1e-8 * scale)])
    rows, cols = np.nonzero(labels[:, None] == labels[None, :])  # (D^2 booleans: D = d^copies <= 1024)
    if len(rows) > COMMUTANT_MAX_UNKNOWNS:
        raise ValueError(
            f"predict_variance: the commutant search on {copies} cop{'y' if copies == 1 else 'ies'} has {len(rows)} unknowns "
            f"(more than {COMMUTANT_MAX_UNKNOWNS}): a random element of this algebra has too degenerate a spectrum for the "
            f"general form to be cheap; sample the variance instead"
        )
    gram = np.zeros((len(rows), len(rows)), dtype=complex)
    eye = np.eye(d)
    for g in generators:
        g = g / max(float(np.abs(g).max()), 1e-300)
        if copies == 1:
            act, act2 = g, g @ g
        else:
            act, act2 = np.kron(g, eye) + np.kron(eye, g), np.kron(g @ g, eye) + 2 * np.kron(g, g) + np.kron(eye, g @ g)
        gram += act2[rows[:, None], rows[None, :]] * (cols[:, None] == cols[None, :])
        gram -= 2 * act[rows[:, None], rows[None, :]] * act[cols[None, :], cols[:, None]]
        gram += (rows[:, None] == rows[None, :]) * act2[cols[None, :], cols[:, None]]
    xa, xb = a(rows, cols), b(rows, cols)
    if copies == 2:  # a and b are symmetric under swapping the copies, and so is the twirl: search the symmetric half
        gram, xa, xb = _swap_symmetric(gram, xa, xb, rows, cols, d)
    eigenvalues, eigenvectors = (m.numpy() for m in torch.linalg.eigh(torch.from_numpy(gram)))  # torch's is the faster here
    kernel = eigenvectors[:, eigenvalues < 1e-9 * max(1.0, float(eigenvalues[-1]))]
    return float(np.real(np.vdot(kernel.conj().T @ xa, kernel.conj().T @ xb)))


def _swap_symmetric(gram: np.ndarray, xa: np.ndarray, xb: np.ndarray, rows: np.ndarray, cols: np.ndarray, d: int) -> tuple[np.ndarray, ...]:
    """The Gram matrix and two vectors on the swap-symmetric combinations (e_u + e_swap(u)) / sqrt(2) of the unknowns."""
    swap = lambda i: (i % d) * d + i // d  # noqa: E731  # (a, b) -> (b, a) on a two-copy index a * d + b
    keys = rows * d * d + cols
    partner = np.searchsorted(keys, swap(rows) * d * d + swap(cols))  # keys are sorted (np.nonzero's row-major order)
    reps = np.flatnonzero(np.arange(len(rows)) <= partner)
    mates = partner[reps]
    weight = np.where(reps == mates, 1.0, 1 / math.sqrt(2))
    half = (gram[:, reps] + np.where(reps == mates, 0, 1)[None, :] * gram[:, mates]) * weight[None, :]
    sym = (half[reps, :] + np.where(reps == mates, 0, 1)[:, None] * half[mates, :]) * weight[:, None]
    project = lambda x: (x[reps] + np.where(reps == mates, 0, 1) * x[mates]) * weight  # noqa: E731
    return sym, project(xa), project(xb)


def _dense_sum(n: int, terms: dict[int, float]) -> np.ndarray:
    """sum_s c_s P_s as a dense 2^n x 2^n matrix, from {string code: c_s}."""
    out = np.zeros((2**n, 2**n), dtype=complex)
    for code, c in terms.items():
        out += c * _dense_pauli(n, code).numpy()
    return out
