"""qtrain.diagnostics' Lie algebra against the dense reference of
tests/lie_reference.py (independent code: finite-difference generators,
Gram-Schmidt closure over dense matrices, the variance as a Haar twirl onto
the commutant, no Ragone formula).

Frames: the reference works in the lab frame (generators pulled back through
every gate before them, state |0..0>, observable conjugated by all fixed
gates); qtrain absorbs the leading fixed gates F0 into its initial state, so
its algebra is F0 (reference algebra) F0^dagger."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from qtrain import Circuit
from qtrain.diagnostics import lie_algebra, predict_variance
from tests import lie_reference as ref
from tests import reference

# ---- circuits as gate dicts (tests/circuits.py's format), built for both sides ------------------------------


def build(n: int, gates: list[dict]) -> Circuit:
    circuit = Circuit(n)
    for g in gates:
        if "param" in g:
            circuit.add(g["name"], g["qubits"], g["param"])
        elif "args" in g:
            circuit.add(g["name"], g["qubits"], tuple(g["args"]))
        elif "angle" in g:
            circuit.add(g["name"], g["qubits"], g["angle"])
        else:
            circuit.add(g["name"], g["qubits"])
    return circuit


def hea(n: int, layers: int = 2, rotations: tuple[str, ...] = ("rx", "ry"), ring: bool = False) -> list[dict]:
    """Rotations on every qubit, then a CZ line (or ring): every gate its own parameter."""
    gates: list[dict] = []
    pairs = [(q, q + 1) for q in range(n - 1)] + ([(n - 1, 0)] if ring and n > 2 else [])
    for layer in range(layers):
        for r in rotations:
            gates += [{"name": r, "qubits": (q,), "param": f"{r}{layer}_{q}"} for q in range(n)]
        gates += [{"name": "cz", "qubits": p} for p in pairs]
    return gates


def free_fermions(n: int, layers: int = 2) -> list[dict]:
    """rz on every qubit, rxx on neighbours: matchgates, so(2n)."""
    gates: list[dict] = []
    for layer in range(layers):
        gates += [{"name": "rz", "qubits": (q,), "param": f"z{layer}_{q}"} for q in range(n)]
        gates += [{"name": "rxx", "qubits": (q, q + 1), "param": f"x{layer}_{q}"} for q in range(n - 1)]
    return gates


def qaoa(n: int, layers: int = 2) -> list[dict]:
    """h on every qubit, then layers of a shared rzz cost layer and a shared rx mixer."""
    gates = [{"name": "h", "qubits": (q,)} for q in range(n)]
    for layer in range(layers):
        gates += [{"name": "rzz", "qubits": (q, q + 1), "param": f"g{layer}"} for q in range(n - 1)]
        gates += [{"name": "rx", "qubits": (q,), "param": f"b{layer}"} for q in range(n)]
    return gates


def hopping(n: int, layers: int = 2) -> list[dict]:
    """x on qubit 0, then rz, XX+YY hopping (rxx and ryy sharing a parameter) and rzz: particle-number
    preserving, so the state |10..0> is a projector onto a weight sector."""
    gates = [{"name": "x", "qubits": (0,)}]
    for layer in range(layers):
        gates += [{"name": "rz", "qubits": (q,), "param": f"z{layer}_{q}"} for q in range(n)]
        for q in range(n - 1):
            gates += [{"name": "rxx", "qubits": (q, q + 1), "param": f"h{layer}_{q}"}, {"name": "ryy", "qubits": (q, q + 1), "param": f"h{layer}_{q}"}]
            gates += [{"name": "rzz", "qubits": (q, q + 1), "param": f"j{layer}_{q}"}]
    return gates


PARAMETRIZED_1Q = ("rx", "ry", "rz")
PARAMETRIZED_2Q = ("rzz", "rxx", "ryy", "crx", "cry", "crz", "cp")
MULTI = ("u3", "rot")
CLIFFORD_1Q = ("h", "s", "sx", "x")
CLIFFORD_2Q = ("cz", "cnot", "swap")


def random_gates(rng: np.random.Generator, n: int, n_gates: int) -> list[dict]:
    """A random circuit: a leading block of fixed gates (non-Clifford allowed: t, ry(0.3)), then
    parametrized and Clifford gates. Parameters are fresh names except in blocks of consecutive
    Pauli rotations of one kind sharing a name (commuting or not: rx on two qubits, rzz on
    overlapping pairs, ...), and now and then a name reused after other gates."""
    gates: list[dict] = []
    for _ in range(int(rng.integers(1, 3))):
        kind = str(rng.choice(["t", "h", "ry_fixed", "cnot" if n > 1 else "s"]))
        if kind == "ry_fixed":
            gates.append({"name": "ry", "qubits": (int(rng.integers(n)),), "angle": 0.3})
        else:
            width = 2 if kind == "cnot" else 1
            gates.append({"name": kind, "qubits": tuple(int(q) for q in rng.choice(n, width, replace=False))})
    names = 0

    def fresh() -> str:
        nonlocal names
        names += 1
        return f"p{names}"

    used: list[tuple[str, str, int]] = []  # (name, gate kind, width) of single-gate Pauli rotations, for reuse
    while len(gates) < n_gates:
        u = rng.random()
        if u < 0.25:
            kind = str(rng.choice(CLIFFORD_1Q + CLIFFORD_2Q))
            width = 2 if kind in CLIFFORD_2Q else 1
            gates.append({"name": kind, "qubits": tuple(int(q) for q in rng.choice(n, width, replace=False))})
        elif u < 0.35:
            kind = str(rng.choice(MULTI))
            gates.append({"name": kind, "qubits": (int(rng.integers(n)),), "args": [fresh(), fresh(), fresh()]})
        elif u < 0.5:  # a block of one Pauli rotation kind sharing one name
            kind = str(rng.choice(("rx", "ry", "rz", "rzz", "rxx", "ryy")))
            width = 1 if kind in PARAMETRIZED_1Q else 2
            name = fresh()
            for _ in range(int(rng.integers(2, 4))):
                gates.append({"name": kind, "qubits": tuple(int(q) for q in rng.choice(n, width, replace=False)), "param": name})
        elif u < 0.58 and used:  # reuse an earlier single gate's name after other gates
            name, kind, width = used[int(rng.integers(len(used)))]
            gates.append({"name": kind, "qubits": tuple(int(q) for q in rng.choice(n, width, replace=False)), "param": name})
        else:
            kind = str(rng.choice(PARAMETRIZED_1Q + PARAMETRIZED_2Q))
            width = 1 if kind in PARAMETRIZED_1Q else 2
            name = fresh()
            gates.append({"name": kind, "qubits": tuple(int(q) for q in rng.choice(n, width, replace=False)), "param": name})
            if kind in PARAMETRIZED_1Q + ("rzz", "rxx", "ryy"):  # not controlled ones: see test_shared_controlled_rotation
                used.append((name, kind, width))
    return gates


# ---- helpers --------------------------------------------------------------------------------------------


def pauli_matrix(string: str) -> np.ndarray:
    """Character q of `string` is qubit q's factor."""
    return reference.pauli_string({q: p for q, p in enumerate(string) if p != "I"}, len(string))


def observable_matrix(text: str, n: int) -> np.ndarray:
    """'Z0 Z1 + X2' as a dense matrix (coefficients 1)."""
    out = np.zeros((2**n, 2**n), dtype=complex)
    for term in text.split("+"):
        out += reference.pauli_string({int(t[1:]): t[0] for t in term.split()}, n)
    return out


def coordinate_matrices(alg, rows) -> np.ndarray:
    """Rows on alg.strings -> Hermitian matrices sum_s r[s] P_s / sqrt(2^n)."""
    n = alg.n_qubits
    paulis = np.array([pauli_matrix(s) for s in alg.strings]).reshape(len(alg.strings), 2**n, 2**n)
    return np.einsum("ks,sab->kab", np.asarray(rows, dtype=float), paulis) / np.sqrt(2**n)


def reference_algebra(gates: list[dict], n: int) -> np.ndarray:
    """The reference algebra in qtrain's frame: F0 B F0^dagger."""
    lab = ref.dense_lie_closure(ref.grouped_generators(gates, n))
    f0 = ref.fixed_product(gates, n, leading_only=True)
    return np.einsum("ab,kbc,dc->kad", f0, lab, f0.conj())


def assert_same_span(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert len(ours) == len(theirs)
    np.testing.assert_allclose(ref.span_projector(ours), ref.span_projector(theirs), atol=1e-8)


def check_against_reference(gates: list[dict], n: int) -> None:
    """dim, span, basis/matrices consistency and the initial state."""
    alg = lie_algebra(build(n, gates))
    theirs = reference_algebra(gates, n)
    assert alg.dim == len(theirs), f"qtrain dim {alg.dim}, reference {len(theirs)}"
    ours = alg.matrices().numpy()
    assert ours.shape == (alg.dim, 2**n, 2**n)
    np.testing.assert_allclose(ours, coordinate_matrices(alg, alg.basis.numpy()), atol=1e-12)
    np.testing.assert_allclose(np.einsum("jab,kba->jk", ours, ours), np.eye(alg.dim), atol=1e-10)
    assert_same_span(ours, theirs)
    psi0 = ref.fixed_product(gates, n, leading_only=True)[:, 0]
    np.testing.assert_allclose(alg.initial_state.numpy(), psi0, atol=1e-12)


# ---- the reference on its own ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 4])
def test_reference_free_fermions_is_so_2n(n):
    assert len(ref.dense_lie_closure(ref.grouped_generators(free_fermions(n), n))) == n * (2 * n - 1)


def test_reference_generators_of_controlled_rotation_and_u3():
    """crx(a) = exp(-i a |1><1| (x) X / 2); u3's three arguments drive Y, Z, Z at zero angles."""
    (_, _, h), = ref.gate_generators([{"name": "crx", "qubits": (0, 1), "param": "a"}], 2)
    expected = reference.embed(np.diag([0, 1]).astype(complex), (0,), 2) @ reference.pauli_string({1: "X"}, 2) / 2
    np.testing.assert_allclose(h, ref.traceless(expected), atol=1e-10)
    gens = ref.gate_generators([{"name": "u3", "qubits": (0,), "args": ["t", "p", "l"]}], 1)
    for (_, _, h), pauli in zip(gens, "YZZ"):
        np.testing.assert_allclose(h, reference.PAULI[pauli] / 2, atol=1e-10)


def test_reference_variance_against_brute_force_and_haar():
    """The block-restricted two-copy commutant against the full one (n = 2), and su(2^n)'s
    Haar value 1 / (2^n + 1) for a Pauli observable on a pure state."""
    n = 2
    rho = np.zeros((4, 4), dtype=complex)
    rho[0, 0] = 1
    basis = ref.dense_lie_closure(ref.grouped_generators(free_fermions(n), n))
    two_copy = np.array([np.kron(b, np.eye(4)) + np.kron(np.eye(4), b) for b in basis])
    c1, c2 = ref.commutant_one_copy(basis), ref.commutant_one_copy(two_copy)
    for text in ("Z0", "X0", "X0 Y1", "Z0 Z1"):
        o = observable_matrix(text, n)
        mean = np.real(sum(np.trace(rho @ c) * np.trace(c.conj().T @ o) for c in c1))
        second = np.real(sum(np.trace(np.kron(rho, rho) @ c) * np.trace(c.conj().T @ np.kron(o, o)) for c in c2))
        assert ref.commutant_variance(basis, rho, o) == pytest.approx(second - mean**2, abs=1e-12)
    for n in (2, 3):
        basis = ref.dense_lie_closure(ref.grouped_generators(hea(n), n))
        rho = np.zeros((2**n, 2**n), dtype=complex)
        rho[0, 0] = 1
        assert ref.commutant_variance(basis, rho, observable_matrix("Z0 Z1", n)) == pytest.approx(1 / (2**n + 1), rel=1e-10)


# ---- dimensions and spans ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "layers", "dim"), [(2, 2, 15), (2, 3, 15), (3, 2, 63), (3, 3, 63)])
def test_universal_hea_dims(n, layers, dim):
    gates = hea(n, layers)
    assert lie_algebra(build(n, gates)).dim == dim
    check_against_reference(gates, n)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_free_fermion_dims(n):
    gates = free_fermions(n, layers=3)
    assert lie_algebra(build(n, gates)).dim == n * (2 * n - 1)
    if n <= 4:
        check_against_reference(gates, n)


def test_single_rx():
    gates = [{"name": "rx", "qubits": (0,), "param": "a"}]
    alg = lie_algebra(build(1, gates))
    assert alg.dim == 1
    check_against_reference(gates, 1)


@pytest.mark.parametrize("make", [qaoa, hopping])
@pytest.mark.parametrize("n", [2, 3])
def test_shared_parameter_circuits(make, n):
    check_against_reference(make(n), n)


def test_non_adjacent_shared_parameter_is_untied():
    """rx(0, a), rzz(0, 1, b), rx(1, a): rzz does not commute with the rx's between them, so each rx
    contributes its own generator (dim 6, not the tied 4 of X0 + X1 and Z0 Z1)."""
    gates = [{"name": "rx", "qubits": (0,), "param": "a"}, {"name": "rzz", "qubits": (0, 1), "param": "b"}, {"name": "rx", "qubits": (1,), "param": "a"}]
    assert lie_algebra(build(2, gates)).dim == 6
    check_against_reference(gates, 2)


def test_shared_controlled_rotation():
    """crx(0, 1, a) then crx(1, 2, a): their generators |1><1|_0 X_1 and |1><1|_1 X_2 do not commute, so
    each gate contributes its own generator: the algebra of crx(0, 1, a1), crx(1, 2, a2), dim 4.
    Untying below the gate (X_1 and Z_0 X_1 of one crx separately) gives a group no circuit of
    these gates reaches."""
    gates = [{"name": "crx", "qubits": (0, 1), "param": "a"}, {"name": "crx", "qubits": (1, 2), "param": "a"}]
    untied = [{"name": "crx", "qubits": (0, 1), "param": "a1"}, {"name": "crx", "qubits": (1, 2), "param": "a2"}]
    assert len(reference_algebra(gates, 3)) == len(reference_algebra(untied, 3)) == 4
    assert lie_algebra(build(3, untied)).dim == 4
    check_against_reference(gates, 3)


@pytest.mark.parametrize("seed", range(10))
def test_random_circuits_match_reference(seed):
    rng = np.random.default_rng(seed)
    n = 2 + seed % 2
    gates = random_gates(rng, n, int(rng.integers(5, 12)))
    check_against_reference(gates, n)


@pytest.mark.parametrize(("gate", "string"), [("rzz", "ZZ"), ("rxx", "XX"), ("crz", None)])
def test_frame_starts_at_the_first_parametrized_gate(gate, string):
    """A circuit that starts with a two-qubit rotation has no leading fixed gates: its initial state is
    |00> and its algebra is spanned by the rotation's own generator (ZZ for rzz, not a string
    conjugated by the CNOTs or CZs qtrain's lowering builds the gate from)."""
    gates = [{"name": gate, "qubits": (0, 1), "param": "a"}]
    alg = lie_algebra(build(2, gates))
    np.testing.assert_allclose(alg.initial_state.numpy(), np.eye(4)[0], atol=1e-12)
    if string is not None:
        assert alg.strings == (string,)
    check_against_reference(gates, 2)


# ---- ideals -------------------------------------------------------------------------------------------------


def check_ideals(alg) -> None:
    n = alg.n_qubits
    ideals = [m.numpy() for m in alg.ideals]
    centre = alg.centre.numpy()
    rows = np.concatenate(ideals + [centre.reshape(-1, len(alg.strings))])
    # orthonormal rows, together spanning the algebra
    np.testing.assert_allclose(rows @ rows.T, np.eye(len(rows)), atol=1e-10)
    assert len(rows) == alg.dim
    basis = alg.basis.numpy()
    np.testing.assert_allclose(basis.T @ basis @ rows.T, rows.T, atol=1e-10)  # each row lies in span(basis)
    everything = alg.matrices().numpy()
    # the centre commutes with everything
    for c in coordinate_matrices(alg, centre.reshape(-1, len(alg.strings))):
        assert np.abs(c @ everything - everything @ c).max() < 1e-10
    # each ideal is closed under the bracket with the whole algebra, and is not abelian
    for ideal in ideals:
        mats = coordinate_matrices(alg, ideal)
        brackets = -1j * (np.einsum("iab,kbc->ikac", mats, everything) - np.einsum("kab,ibc->ikac", everything, mats))
        brackets = brackets.reshape(-1, 2**n, 2**n)
        inside = np.einsum("jab,mba->mj", mats, brackets)  # coordinates on the ideal's orthonormal basis
        np.testing.assert_allclose(np.einsum("mj,jab->mab", inside, mats), brackets, atol=1e-9)
        assert len(ideal) >= 3  # the smallest simple compact algebra is su(2)
    # the centre's size, independently: elements of the reference span commuting with the whole algebra
    vec = lambda m: np.concatenate([m.real.ravel(), m.imag.ravel()])  # noqa: E731
    ad = np.array([[vec(-1j * (b @ a - a @ b)) for a in everything] for b in everything])  # (k, j, 2 d^2)
    singular = np.linalg.svd(ad.transpose(0, 2, 1).reshape(-1, alg.dim), compute_uv=False)
    assert len(centre.reshape(-1, len(alg.strings))) == alg.dim - int(np.sum(singular > 1e-8))


@pytest.mark.parametrize(
    ("n", "gates", "dims"),
    [
        (2, free_fermions(2), [3, 3]),  # so(4) = su(2) + su(2)
        (3, free_fermions(3), [15]),  # so(6) = su(4)
        (2, hea(2), [15]),
        (3, hea(3, 2, ("ry",), ring=True), None),
        (2, qaoa(2), None),
        (3, qaoa(3), None),
        (2, hopping(2), None),
        (3, hopping(3), None),
    ],
)
def test_ideals(n, gates, dims):
    alg = lie_algebra(build(n, gates))
    check_ideals(alg)
    theirs = reference_algebra(gates, n)
    assert alg.centre.reshape(-1, len(alg.strings)).shape[0] == ref.centre_dim(theirs)
    if alg.dim <= 36:  # the count needs a dim^2 x dim^2 eigenproblem
        assert len(alg.ideals) == ref.simple_ideal_count(theirs)
    if dims is not None:
        assert sorted(int(m.shape[0]) for m in alg.ideals) == sorted(dims)
        assert alg.centre.reshape(-1, len(alg.strings)).shape[0] == 0


# ---- predicted variance ------------------------------------------------------------------------------------


def lab_frame(gates: list[dict], n: int, observable: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(reference algebra, rho = |0..0><0..0|, F_all^dagger O F_all): the lab frame."""
    basis = ref.dense_lie_closure(ref.grouped_generators(gates, n))
    rho = np.zeros((2**n, 2**n), dtype=complex)
    rho[0, 0] = 1
    f = ref.fixed_product(gates, n)
    return basis, rho, f.conj().T @ observable_matrix(observable, n) @ f


VARIANCE_CASES = [
    ("free fermions n=2, Z0", 2, free_fermions(2), "Z0", "O"),
    ("free fermions n=3, Z0", 3, free_fermions(3), "Z0", "O"),
    ("free fermions n=3, X0 X1", 3, free_fermions(3), "X0 X1", "O"),
    ("HEA n=2, Z0 Z1", 2, hea(2), "Z0 Z1", "both"),
    ("HEA n=3, Z0 Z1", 3, hea(3), "Z0 Z1", "both"),
    ("QAOA n=2, Z0 Z1", 2, qaoa(2), "Z0 Z1", "O"),
    ("QAOA n=3, Z0 Z1 + Z1 Z2", 3, qaoa(3), "Z0 Z1 + Z1 Z2", "O"),
    ("QAOA n=3, X0 + X1 + X2", 3, qaoa(3), "X0 + X1 + X2", "O"),
    ("hopping n=2, X0 X1 (rho in the algebra)", 2, hopping(2), "X0 X1", "rho"),
]


@pytest.mark.parametrize(("label", "n", "gates", "observable", "inside"), VARIANCE_CASES, ids=[c[0] for c in VARIANCE_CASES])
def test_predict_variance_matches_commutant(label, n, gates, observable, inside):
    basis, rho, o = lab_frame(gates, n, observable)
    # the premise: which of O and rho the reference finds in the algebra's span
    assert ref.in_span(basis, o) == (inside in ("O", "both"))
    assert ref.in_span(basis, rho) == (inside in ("rho", "both"))
    expected = ref.commutant_variance(basis, rho, o)
    assert expected > 1e-3
    for method in ("ideals", "commutant"):
        got = predict_variance(build(n, gates), observable, method=method)
        assert got == pytest.approx(expected, rel=1e-7), f"{label}: predict_variance ({method}) {got}, commutant twirl {expected}"


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("observable", ["Z0 Z1", "X0"])
def test_predict_variance_random_circuits(seed, observable):
    """The random circuits of test_random_circuits_match_reference: the twirl's value where O or rho
    lies in the algebra (the observable pushed through the middle Clifford gates), a refusal of the
    ideals' formula elsewhere, and the general commutant form everywhere."""
    rng = np.random.default_rng(seed)
    n = 2 + seed % 2
    gates = random_gates(rng, n, int(rng.integers(5, 12)))
    basis, rho, o = lab_frame(gates, n, observable)
    circuit = build(n, gates)
    expected = ref.commutant_variance(basis, rho, o)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # untied shared parameters: stated, and the same premise for both sides
        if ref.in_span(basis, o) or ref.in_span(basis, rho):
            assert predict_variance(circuit, observable, method="ideals") == pytest.approx(expected, rel=1e-7, abs=1e-12)
        else:
            with pytest.raises(ValueError, match="algebra"):
                predict_variance(circuit, observable, method="ideals")
        assert predict_variance(circuit, observable) == pytest.approx(expected, rel=1e-7, abs=1e-10)  # auto


@pytest.mark.parametrize(
    ("n", "gates", "observable"),
    [(3, hea(3, 2, ("ry",), ring=True), "Z0 Z1"), (3, qaoa(3), "X0"), (2, qaoa(2), "X0")],
)
def test_predict_variance_outside_the_algebra(n, gates, observable):
    """Neither O nor rho in the span: the ideals' formula does not apply although the variance exists; the
    commutant form (the default falls back to it) gives the twirl's value."""
    basis, rho, o = lab_frame(gates, n, observable)
    assert not ref.in_span(basis, o) and not ref.in_span(basis, rho)
    true_value = ref.commutant_variance(basis, rho, o)
    print(f"n={n} {observable}: commutant variance {true_value}")
    assert true_value > 0.01
    with pytest.raises(ValueError, match="algebra"):
        predict_variance(build(n, gates), observable, method="ideals")
    assert predict_variance(build(n, gates), observable) == pytest.approx(true_value, rel=1e-7)
