"""A dense NumPy complex128 reference for dynamical Lie algebras: the
independent oracle for qtrain.diagnostics.lie.

It shares no code with qtrain (it imports only NumPy and tests/reference.py,
the project's dense simulator). Everything is dense and brute force, for
n <= 4 (the variance, which works on two copies, for n <= 3):

- `gate_generators` / `frame_generators`: each trainable argument's generator
  H = i U(0)^dagger dU/da, found by a finite difference of the simulator's own
  gate matrix at a = 0, lifted to n qubits and pulled back to the start of the
  circuit (W^dagger H W, W the product of every gate before it with all
  parameters at 0: the lab frame, leading fixed gates included).
- `dense_lie_closure`: an orthonormal Hermitian basis of the real Lie algebra
  the i*G generate, by repeated brackets -i[A, B] and Gram-Schmidt.
- `commutant_variance`: Var over the group's Haar measure of Tr(U rho U^dagger O),
  from the projections onto the commutants of the algebra on one and on two
  copies (no Ragone-style formula: valid whatever O and rho are).
"""

from __future__ import annotations

import numpy as np

from tests import reference

TOL = 1e-9  # a bracket whose part outside the span so far is below this (absolute: inputs are unit norm) adds nothing
STEP = 1e-3  # the finite-difference step; the 5-point stencil's error is ~STEP**4 / 30 and its rounding ~1e-16 / STEP


def _gate_at(gate: dict, values: dict[str, float], slot: int | None = None, shift: float = 0.0) -> np.ndarray:
    """The simulator's matrix of `gate` with parameters read from `values`;
    `shift` is added to argument `slot` (0 for a one-angle gate)."""
    g = {k: v for k, v in gate.items() if k not in ("param", "args")}
    if "param" in gate:
        g["angle"] = values[gate["param"]] + (shift if slot == 0 else 0.0)
    if "args" in gate:
        angles = [values[a] if isinstance(a, str) else float(a) for a in gate["args"]]
        if slot is not None:
            angles[slot] += shift
        g["angles"] = angles
    return reference.gate_matrix(g)


def _slots(gate: dict) -> list[tuple[int, str]]:
    """(argument index, parameter name) of each trainable argument of `gate`."""
    if "param" in gate:
        return [(0, gate["param"])]
    return [(i, a) for i, a in enumerate(gate.get("args", ())) if isinstance(a, str)]


def parameter_names(gates: list[dict]) -> list[str]:
    """Parameter names in order of first use (qtrain's order for the same gates)."""
    names: dict[str, None] = {}
    for gate in gates:
        for _, name in _slots(gate):
            names.setdefault(name)
    return list(names)


def traceless(h: np.ndarray) -> np.ndarray:
    return h - np.trace(h) / h.shape[0] * np.eye(h.shape[0])


def gate_generators(gates: list[dict], n: int) -> list[tuple[int, str, np.ndarray]]:
    """(gate index, parameter name, H) for every trainable argument, in
    circuit order: H (2^n, 2^n) Hermitian, traceless, in the lab frame
    (pulled back through every gate before it, at all parameters 0), so that
    the circuit is F_all * prod_k exp(-i a_k H_k) to first order in each a_k,
    with F_all the product of all gates at parameters 0."""
    zero = {name: 0.0 for name in parameter_names(gates)}
    out = []
    w = np.eye(2**n, dtype=complex)  # the product of the gates so far, parameters at 0
    for index, gate in enumerate(gates):
        qubits = tuple(gate["qubits"])
        u0 = _gate_at(gate, zero)
        for slot, name in _slots(gate):
            f = {s: _gate_at(gate, zero, slot, s * STEP) for s in (-2, -1, 1, 2)}
            du = (f[-2] - 8 * f[-1] + 8 * f[1] - f[2]) / (12 * STEP)
            local = u0.conj().T @ (1j * du)  # U(a) = U0 exp(-i a H) to first order
            local = (local + local.conj().T) / 2
            lifted = reference.embed(local, qubits, n)
            out.append((index, name, traceless(w.conj().T @ lifted @ w)))
        w = reference.embed(u0, qubits, n) @ w
    return out


def frame_generators(gates: list[dict], n: int, params: list[str] | None = None) -> list[np.ndarray]:
    """One generator per parameter (of `params`, default all in order of
    first use): the sum over its gates' lab-frame generators (the generator
    of a parameter whose gates commute and sit together; see
    `grouped_generators` for the rule when they do not)."""
    gens = gate_generators(gates, n)
    params = parameter_names(gates) if params is None else list(params)
    return [sum((h for _, name, h in gens if name == p), np.zeros((2**n, 2**n), dtype=complex)) for p in params]


def grouped_generators(gates: list[dict], n: int) -> list[np.ndarray]:
    """The generating set when sharing is honoured only where it is exact:
    a parameter whose gates' generators commute with each other and with
    every other gate's generator between them is exp(-i a sum H) (the
    factors can be brought together and merged): it contributes the sum;
    otherwise each of its gates contributes its own generator (the untied
    circuit's algebra). A gate is one unit here: a controlled rotation's
    generator |1><1| (x) P is never split."""
    gens = gate_generators(gates, n)

    def commute(a: np.ndarray, b: np.ndarray) -> bool:
        return bool(np.allclose(a @ b, b @ a, atol=1e-10))

    out = []
    for p in parameter_names(gates):
        where = [k for k, (_, name, _) in enumerate(gens) if name == p]
        mine = [gens[k][2] for k in where]
        between = [gens[m][2] for a, b in zip(where, where[1:]) for m in range(a + 1, b) if gens[m][1] != p]
        if all(commute(a, b) for a in mine for b in mine + between):
            out.append(sum(mine))
        else:
            out.extend(mine)
    return out


def fixed_product(gates: list[dict], n: int, leading_only: bool = False) -> np.ndarray:
    """The product of the circuit's gates with every parameter at 0 (F_all),
    or, with `leading_only`, of the fixed gates before the first trainable one (F0)."""
    zero = {name: 0.0 for name in parameter_names(gates)}
    w = np.eye(2**n, dtype=complex)
    for gate in gates:
        if leading_only and _slots(gate):
            break
        w = reference.embed(_gate_at(gate, zero), tuple(gate["qubits"]), n) @ w
    return w


def _vec(h: np.ndarray) -> np.ndarray:
    """Real coordinates of a Hermitian matrix: the dot product is Tr(A B)."""
    return np.concatenate([h.real.ravel(), h.imag.ravel()])


def _mat(v: np.ndarray, d: int) -> np.ndarray:
    half = v.size // 2
    return (v[:half] + 1j * v[half:]).reshape(d, d)


def dense_lie_closure(hermitian_generators: list[np.ndarray], tol: float = TOL) -> np.ndarray:
    """(dim, 2^n, 2^n) complex128: an orthonormal (Tr(B_j B_k) = delta_jk)
    Hermitian basis of the real Lie algebra generated by i * G over the
    generators (their identity parts dropped)."""
    gens = [traceless(np.asarray(g, dtype=complex)) for g in hermitian_generators]
    if not gens:
        raise ValueError("dense_lie_closure needs at least one generator")
    d = gens[0].shape[0]
    rows: list[np.ndarray] = []

    def add(candidates: list[np.ndarray]) -> None:
        for c in candidates:
            v = _vec(c)
            for _ in range(2):  # twice: classical Gram-Schmidt loses orthogonality once
                if rows:
                    q = np.array(rows)
                    v = v - q.T @ (q @ v)
            norm = np.linalg.norm(v)
            if norm > tol:
                rows.append(v / norm)

    add([g / max(np.linalg.norm(g), 1e-300) if np.linalg.norm(g) > tol else g for g in gens])
    i = 0
    while i < len(rows):
        a = _mat(rows[i], d)
        others = np.array([_mat(r, d) for r in rows[:i]]).reshape(-1, d, d)
        brackets = -1j * (a @ others - others @ a)
        add([(b + b.conj().T) / 2 for b in brackets])
        i += 1
    basis = np.array([_mat(r, d) for r in rows])
    # the rank, independently of the Gram-Schmidt order: an SVD of the coordinates
    s = np.linalg.svd(np.array(rows), compute_uv=False)
    assert np.sum(s > 1e-6) == len(rows), "Gram-Schmidt basis not of full rank"
    return basis


def span_projector(basis: np.ndarray) -> np.ndarray:
    """The orthogonal projector (in real coordinates) onto the span of an orthonormal Hermitian basis."""
    q = np.array([_vec(b) for b in basis])
    return q.T @ q


def in_span(basis: np.ndarray, a: np.ndarray, tol: float = 1e-8) -> bool:
    """Whether the traceless part of Hermitian `a` lies in the real span of `basis`."""
    v = _vec(traceless(a))
    q = np.array([_vec(b) for b in basis])
    residual = v - q.T @ (q @ v)
    return bool(np.linalg.norm(residual) <= tol * max(np.linalg.norm(v), 1.0))


def _null_space_hermitian(m: np.ndarray, rel_tol: float = 1e-9) -> np.ndarray:
    """Orthonormal columns spanning the null space of a Hermitian PSD matrix."""
    w, v = np.linalg.eigh(m)
    scale = max(abs(w).max(), 1.0)
    return v[:, w < rel_tol * scale]


def commutant_one_copy(basis: np.ndarray) -> np.ndarray:
    """(c, d, d): an orthonormal basis (Tr(C_j^dagger C_k) = delta) of the
    matrices commuting with every element of `basis`."""
    d = basis.shape[1]
    eye = np.eye(d)
    m = np.zeros((d * d, d * d), dtype=complex)
    for b in basis:
        a = np.kron(b, eye) - np.kron(eye, b.T)  # row-major vec: vec(B X - X B)
        m += a.conj().T @ a
    null = _null_space_hermitian(m)
    return null.T.reshape(-1, d, d)


def commutant_variance(basis: np.ndarray, rho: np.ndarray, observable: np.ndarray, seed: int = 0) -> float:
    """Var over U Haar-distributed on the group exp(i span(basis)) of
    Tr(U rho U^dagger O): Tr[(rho (x) rho) T2(O (x) O)] - Tr[rho T1(O)]^2,
    T1, T2 the Hilbert-Schmidt projections onto the commutants of {B} and of
    {B (x) I + I (x) B} (the Haar twirls). `basis`: (k, d, d) Hermitian, any
    set generating the algebra (its basis, or just its generators).

    The two-copy commutant (a subspace of (d^2)^2 = 4096 dimensions at n=3)
    is found inside the commutant of one generic element R = r (x) I + I (x) r
    of the algebra: block-diagonal matrices in the eigenbasis W (x) W of R,
    grouped by equal eigenvalue (grouping too much is harmless, the brackets
    with the whole basis then cut the space down; too little cannot happen
    with a generous tolerance). On that space the commutant is the null
    space of X -> sum_k [H_k, [H_k, X]], H_k = B_k (x) I + I (x) B_k."""
    basis = np.asarray(basis, dtype=complex)
    rho = np.asarray(rho, dtype=complex)
    observable = np.asarray(observable, dtype=complex)
    d = basis.shape[1]
    # one copy: Tr[rho T1(O)] = sum_m Tr(rho C_m) Tr(C_m^dagger O)
    comm = commutant_one_copy(basis)
    mean = np.real(sum(np.trace(rho @ c) * np.trace(c.conj().T @ observable) for c in comm))

    rng = np.random.default_rng(seed)
    r = np.einsum("k,kij->ij", rng.normal(size=len(basis)), basis)
    lam, w = np.linalg.eigh((r + r.conj().T) / 2)
    values = (lam[:, None] + lam[None, :]).ravel()  # the eigenvalue of W[:, a] (x) W[:, b] is at a * d + b
    order = np.argsort(values)
    labels = np.empty(d * d, dtype=int)
    labels[order] = np.concatenate([[0], np.cumsum(np.diff(values[order]) > 1e-6 * max(1.0, abs(values).max()))])
    ii, jj = np.nonzero(labels[:, None] == labels[None, :])  # the block-diagonal pairs (i, j): X = sum y_p e_i e_j^dagger

    eye = np.eye(d)
    m = np.zeros((ii.size, ii.size), dtype=complex)
    s_sum = np.zeros((d * d, d * d), dtype=complex)
    for b in basis:
        bt = w.conj().T @ b @ w
        h = np.kron(bt, eye) + np.kron(eye, bt)
        s_sum += h @ h
        m -= 2 * h[np.ix_(ii, ii)] * h[np.ix_(jj, jj)].T
    m += s_sum[np.ix_(ii, ii)] * (jj[:, None] == jj[None, :])
    m += (ii[:, None] == ii[None, :]) * s_sum[np.ix_(jj, jj)].T
    y = _null_space_hermitian((m + m.conj().T) / 2)

    rt = w.conj().T @ rho @ w
    ot = w.conj().T @ observable @ w
    rho2, obs2 = np.kron(rt, rt), np.kron(ot, ot)
    left = y.T @ rho2[jj, ii]  # Tr(rho2 C_m) for each null vector m
    right = y.conj().T @ obs2[ii, jj]  # Tr(C_m^dagger obs2)
    second = np.real(np.sum(left * right))
    return float(second - mean**2)


def haar_variance(basis: np.ndarray, rho: np.ndarray, observable: np.ndarray, samples: int, seed: int = 0) -> float:
    """A Monte-Carlo cross-check of `commutant_variance`: the sample variance
    over exp(i sum_k c_k B_k), c wide Gaussian (the product of a few such
    is close to Haar on a compact group)."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(samples):
        u = np.eye(basis.shape[1], dtype=complex)
        for _ in range(4):
            h = np.einsum("k,kij->ij", rng.normal(scale=10.0, size=len(basis)), basis)
            lam, v = np.linalg.eigh((h + h.conj().T) / 2)
            u = (v * np.exp(1j * lam)) @ v.conj().T @ u
        values.append(np.real(np.trace(u @ rho @ u.conj().T @ observable)))
    return float(np.var(values))


def adjoint_matrices(basis: np.ndarray) -> np.ndarray:
    """(dim, dim, dim) real: ad[k][i, j] = Tr(B_i (-i [B_k, B_j])), the bracket in the basis's coordinates."""
    brackets = -1j * (np.einsum("kab,jbc->kjac", basis, basis) - np.einsum("jab,kbc->kjac", basis, basis))
    return np.real(np.einsum("iba,kjab->kij", basis, brackets))


def centre_dim(basis: np.ndarray) -> int:
    """How many independent elements commute with the whole algebra."""
    ad = adjoint_matrices(basis)
    singular = np.linalg.svd(ad.reshape(-1, ad.shape[2]), compute_uv=False)  # rows (k, i), columns j: x -> [B_k, x]
    return ad.shape[2] - int(np.sum(singular > 1e-8))


def simple_ideal_count(basis: np.ndarray) -> int:
    """The number of simple ideals, without finding them: a compact algebra g = z + g_1 + ... + g_m has
    adjoint representation 0 (on z, c times) plus the pairwise inequivalent, absolutely irreducible
    ad(g_j), so the real maps commuting with every ad_k form a space of dimension m + c^2 (Schur)."""
    ad = adjoint_matrices(basis)
    d = ad.shape[1]
    eye = np.eye(d)
    m = np.zeros((d * d, d * d))
    for a in ad:
        op = np.kron(a, eye) - np.kron(eye, a.T)  # row-major vec of A M - M A
        m += op.T @ op
    w = np.linalg.eigvalsh(m)
    commutant = int(np.sum(w < 1e-9 * max(w.max(), 1.0)))
    return commutant - centre_dim(basis) ** 2
