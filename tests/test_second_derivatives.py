"""Second derivatives and torch.func transforms through every diff_method,
against the dense reference (Hessians by central differences of its exact
energies) and against each other."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch.func import grad, hessian, jacrev, vmap

import qtrain.engine as engine
from qtrain import Circuit
from qtrain.engine import DIFF_METHODS, conventions
from tests import reference
from tests.circuits import random_circuit, random_theta

HAMILTONIAN = "0.7*Z0 Z1 - 0.4*X0 Y2 + 0.3*Y1 + Z2"
TERMS = [(0.7, {0: "Z", 1: "Z"}), (-0.4, {0: "X", 2: "Y"}), (0.3, {1: "Y"}), (1.0, {2: "Z"})]


def _reference_hessian(rc, theta: np.ndarray, h: float = 2e-4) -> np.ndarray:
    """Central second differences of the reference's summed energy (truncation ~h^2)."""
    def energy(t):
        return sum(reference.expval(s, TERMS) for s in rc.reference_states(t))

    p = theta.size
    out = np.empty((p, p))
    eye = np.eye(p) * h
    for i in range(p):
        for j in range(p):
            out[i, j] = (energy(theta + eye[i] + eye[j]) - energy(theta + eye[i] - eye[j]) - energy(theta - eye[i] + eye[j]) + energy(theta - eye[i] - eye[j])) / (4 * h * h)
    return out


@pytest.fixture
def case(rng):
    rc = random_circuit(rng, 3, n_gates=30, batch=3, n_names=3)
    return rc, random_theta(rng, rc.circuit, batch=None)


#: id -> (the diff_method asked for, the one that must run). "auto" twice: on these 3-qubit
#: circuits it picks backprop; with its threshold lowered to 3 qubits, the adjoint.
METHODS = {
    "backprop": ("backprop", "backprop"),
    "adjoint": ("adjoint", "adjoint"),
    "auto-backprop": ("auto", "backprop"),
    "auto-adjoint": ("auto", "adjoint"),
}
assert {asked for asked, _ in METHODS.values()} == set(DIFF_METHODS)


@dataclass
class Method:
    name: str  #: the diff_method to pass
    expected: str  #: the method that must run
    adjoint_runs: list[int]  #: the light-cone width of every run that went through the adjoint

    @property
    def ran(self) -> str:
        return "adjoint" if self.adjoint_runs else "backprop"


@pytest.fixture(params=list(METHODS))
def method(request, monkeypatch) -> Method:
    asked, expected = METHODS[request.param]
    if request.param == "auto-adjoint":
        monkeypatch.setattr(conventions, "AUTO_ADJOINT_QUBITS", 3)
    runs: list[int] = []
    adjoint_state = engine.adjoint_state
    monkeypatch.setattr(engine, "adjoint_state", lambda run: runs.append(run.program.n_qubits) or adjoint_state(run))
    return Method(asked, expected, runs)


def test_hessian_matches_the_reference(case, method):
    rc, theta = case
    energy = lambda t: rc.circuit.expval(t, HAMILTONIAN, diff_method=method.name).sum()  # noqa: E731
    got = torch.autograd.functional.hessian(energy, torch.tensor(theta))
    assert method.ran == method.expected
    assert np.allclose(got.numpy(), _reference_hessian(rc, theta), atol=1e-5, rtol=0)
    assert got.abs().max() > 1e-2  # a real Hessian, not zeros


def test_auto_runs_the_adjoint_on_a_light_cone_of_eight_qubits_and_its_hessian_equals_backprop(monkeypatch):
    """auto's own threshold, not a lowered one: the smallest cone it runs the adjoint on."""
    n = conventions.AUTO_ADJOINT_QUBITS
    circuit = Circuit(n)
    for q in range(n):
        circuit.ry(q, "ab"[q % 2])
    for q in range(n - 1):
        circuit.cnot(q, q + 1)
    circuit.rx(n - 1, "c").ry(0, "a")
    cost = f"0.8*Z0 Z{n - 1} - 0.5*X{n - 1}"
    runs: list[int] = []
    adjoint_state = engine.adjoint_state
    monkeypatch.setattr(engine, "adjoint_state", lambda run: runs.append(run.program.n_qubits) or adjoint_state(run))
    theta = torch.tensor([0.3, -1.1, 0.7], dtype=torch.float64)
    hessians = {}
    for diff_method in ("auto", "backprop"):
        runs.clear()
        energy = lambda t: circuit.expval(t, cost, dtype=torch.complex128, diff_method=diff_method).sum()  # noqa: E731
        hessians[diff_method] = torch.autograd.functional.hessian(energy, theta)
        assert (runs and set(runs) == {n}) if diff_method == "auto" else not runs, (diff_method, runs)
    assert torch.allclose(hessians["auto"], hessians["backprop"], atol=1e-10, rtol=0) and hessians["backprop"].abs().max() > 1e-2


def test_issue_example_hessian_is_not_zero_through_the_adjoint():
    c = Circuit(2).ry(0, "a").ry(1, "b").cnot(0, 1).rx(1, "a")
    t = torch.tensor([0.3, -0.7], dtype=torch.float64)
    got = torch.autograd.functional.hessian(lambda t: c.expval(t, "Z1", diff_method="adjoint").sum(), t)
    expected = torch.tensor([[-1.2625, -0.3638], [-0.3638, -0.6980]], dtype=torch.float64)
    assert torch.allclose(got, expected, atol=1e-4)


def test_third_derivative_through_the_adjoint_equals_backprop(case):
    rc, theta = case

    def third(diff_method):
        t = torch.tensor(theta, requires_grad=True)
        (g,) = torch.autograd.grad(rc.circuit.expval(t, HAMILTONIAN, diff_method=diff_method).sum(), t, create_graph=True)
        (h,) = torch.autograd.grad(g[0], t, create_graph=True)
        return torch.autograd.grad(h[-1], t)[0]

    a, b = third("adjoint"), third("backprop")
    assert torch.allclose(a, b, atol=1e-10, rtol=0) and b.abs().max() > 1e-3


def test_hessian_with_respect_to_the_initial_state_matches_backprop():
    c = Circuit(2).ry(0, "a").cnot(0, 1).rx(1, "b").cz(0, 1).ry(1, "a")
    theta = torch.tensor([0.4, -1.1], dtype=torch.float64)
    psi = torch.tensor([0.6, 0.0, 0.8j, 0.0], dtype=torch.complex128)

    def energy(diff_method):
        return lambda t, re: c.expval(t, "X0 Z1 + Y1", diff_method=diff_method, initial_state=re.to(torch.complex128) + 1j * psi.imag).sum()

    args = (theta, psi.real.clone())
    got = torch.autograd.functional.hessian(energy("adjoint"), args)
    want = torch.autograd.functional.hessian(energy("backprop"), args)
    for row_got, row_want in zip(got, want):
        for a, b in zip(row_got, row_want):
            assert torch.allclose(a, b, atol=1e-10, rtol=0)


def test_torch_func_transforms(case, method, rng):
    rc, _ = case
    diff_method = method.name
    thetas = torch.tensor(random_theta(rng, rc.circuit, batch=4))  # (4, P): vmapped, one setting each
    energy = lambda t: rc.circuit.expval(t, HAMILTONIAN, diff_method=diff_method).sum()  # noqa: E731
    per_setting = vmap(grad(energy))(thetas)
    for t, g in zip(thetas, per_setting):
        t = t.clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(rc.circuit.expval(t, HAMILTONIAN, diff_method="backprop").sum(), t)
        assert torch.allclose(g, expected, atol=1e-10, rtol=0)
    jac = jacrev(lambda t: rc.circuit.expval(t, HAMILTONIAN, diff_method=diff_method))(thetas[0])  # (batch of circuits, P)
    assert jac.shape == (rc.batch, rc.circuit.n_params)
    assert torch.allclose(jac.sum(0), per_setting[0], atol=1e-10, rtol=0)
    h = hessian(energy)(thetas[0])
    assert torch.allclose(h, torch.autograd.functional.hessian(energy, thetas[0]), atol=1e-10, rtol=0)
    assert torch.allclose(jacrev(jacrev(energy))(thetas[0]), h, atol=1e-10, rtol=0)
    assert method.ran == method.expected  # (the reference gradients above are backprop's)


def test_vmap_of_per_sample_circuits_through_the_adjoint():
    """Gates that differ per sample fix the batch: vmap runs each slice on its own."""
    c = Circuit(2).pauli_rot(0, "a", torch.tensor([0, 1, 2])).cz(0, 1).pauli_rot(1, "b", torch.tensor([1, 2, 0]))
    thetas = torch.rand(5, 3, 2, dtype=torch.float64)
    energy = lambda diff_method: (lambda t: c.expval(t, "Z0 X1", diff_method=diff_method).sum())  # noqa: E731
    assert torch.allclose(vmap(grad(energy("adjoint")))(thetas), vmap(grad(energy("backprop")))(thetas), atol=1e-12, rtol=0)


def test_hessian_with_a_broadcast_initial_state():
    """Three samples with their own angles start from one shared state (batch 1)."""
    c = Circuit(2).ry(0, "a").cnot(0, 1).rx(1, "b")
    psi = torch.tensor([0.6, 0.0, 0.0, 0.8], dtype=torch.float64)

    def energy(diff_method):
        return lambda t, re: c.expval(t.reshape(3, 2), "Z0 X1", diff_method=diff_method, initial_state=re.to(torch.complex128)).pow(2).sum()

    args = (torch.tensor([0.3, 0.9, -1.2, 0.4, 2.0, -0.7], dtype=torch.float64), psi)
    got = torch.autograd.functional.hessian(energy("adjoint"), args)
    want = torch.autograd.functional.hessian(energy("backprop"), args)
    for row_got, row_want in zip(got, want):
        for a, b in zip(row_got, row_want):
            assert torch.allclose(a, b, atol=1e-10, rtol=0)
    assert want[1][1].abs().max() > 1e-2
