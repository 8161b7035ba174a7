"""The single-state path (qtrain.engine.single): one state's value and adjoint gradient in a few wide calls, equal to
the engine's sweep on random circuits of every gate kind, through both entry points (value_and_grad, and expval with
diff_method="adjoint" under autograd), and taken exactly when `applies` says."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from qtrain import Circuit
from qtrain.builders import random_target_state
from qtrain.engine import single
from tests import reference
from tests.circuits import random_circuit


@contextlib.contextmanager
def engine_only() -> Iterator[None]:
    """A context in which the single-state path takes nothing (the engine's sweep, or the small path, serves)."""
    kept = single.SINGLE_QUBITS
    single.SINGLE_QUBITS = range(0)
    try:
        yield
    finally:
        single.SINGLE_QUBITS = kept


def observable(n: int) -> str:
    return "Z0" if n == 1 else "Z0 Z1 + 0.5*X0 - 0.2*Y1 + 0.3*Z1"


@pytest.mark.parametrize("seed", range(16))
def test_value_and_grad_equal_to_the_engine_on_random_circuits(seed):
    """Every gate kind with shared gates (no per-sample ones: those are a batch), shared parameters and fixed angles;
    an observable with off-diagonal terms, a diagonal one (the cotangent without autograd), a target state and a
    function of states as the cost; |0...0> and a given initial state."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 9))
    circuit = random_circuit(rng, n, 30, 1, per_sample=False).circuit
    theta = torch.tensor(rng.uniform(-np.pi, np.pi, circuit.n_params))
    costs = [observable(n), " + ".join(f"{q + 1}*Z{q}" for q in range(n)), random_target_state(n, seed),
             lambda states: states.reshape(states.shape[0], -1)[:, 0].abs() ** 2]
    initial = torch.tensor(rng.normal(size=2**n) + 1j * rng.normal(size=2**n))
    initial = (initial / initial.norm()).reshape(1, -1)
    for cost in costs:
        for start in (None, initial):
            v1, g1 = circuit.value_and_grad(theta, cost, dtype=torch.complex128, initial_state=start)
            with engine_only():
                v0, g0 = circuit.value_and_grad(theta, cost, dtype=torch.complex128, initial_state=start)
            torch.testing.assert_close(v1, v0, atol=1e-12, rtol=0)
            torch.testing.assert_close(g1, g0, atol=1e-12, rtol=0)


@pytest.mark.parametrize("seed", range(8))
def test_expval_adjoint_equal_to_the_engine_with_the_initial_states_gradient(seed):
    """The autograd entry point: theta's gradient and the initial state's (the sweep run back to the start)."""
    rng = np.random.default_rng(50 + seed)
    n = int(rng.integers(2, 8))
    circuit = random_circuit(rng, n, 30, 1, per_sample=False).circuit
    base = torch.tensor(rng.uniform(-np.pi, np.pi, circuit.n_params))
    start = torch.tensor(rng.normal(size=2**n) + 1j * rng.normal(size=2**n))
    start = (start / start.norm()).reshape(1, -1)

    def grads():
        theta, initial = base.clone().requires_grad_(True), start.clone().requires_grad_(True)
        value = circuit.expval(theta, observable(n), dtype=torch.complex128, diff_method="adjoint", initial_state=initial)
        value.sum().backward()
        return value.detach(), theta.grad, initial.grad

    mine = grads()
    with engine_only():
        engine = grads()
    for a, b in zip(mine, engine):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_against_the_reference_by_finite_differences():
    """Independent of the engine: 5 qubits, a shared parameter, a controlled rotation, a fixed two-qubit gate and a
    layer of rotations; the gradient against the dense reference's central differences."""
    c = Circuit(5)
    for q in range(5):
        c.ry(q, "a" if q % 2 else f"r{q}")
    c.crx(0, 3, "b").cz(1, 2).cnot(3, 4)
    for q in range(5):
        c.rz(q, "b" if q == 4 else f"z{q}")
    c.rx(2, "a").h(0)
    names = list(c.parameters)
    rng = np.random.default_rng(3)
    theta = torch.tensor(rng.uniform(-np.pi, np.pi, len(names)))
    terms = [(1.0, {0: "Z", 2: "X"}), (0.5, {1: "Y", 4: "Z"}), (-0.7, {3: "Z"})]

    def cost(values):
        value = dict(zip(names, values))
        gates = [{"name": "ry", "qubits": (q,), "angle": value["a" if q % 2 else f"r{q}"]} for q in range(5)]
        gates += [{"name": "crx", "qubits": (0, 3), "angle": value["b"]}, {"name": "cz", "qubits": (1, 2)}, {"name": "cnot", "qubits": (3, 4)}]
        gates += [{"name": "rz", "qubits": (q,), "angle": value["b" if q == 4 else f"z{q}"]} for q in range(5)]
        gates += [{"name": "rx", "qubits": (2,), "angle": value["a"]}, {"name": "h", "qubits": (0,)}]
        return reference.expval(reference.run(gates, 5), terms)

    values, grads = c.value_and_grad(theta, "Z0 X2 + 0.5*Y1 Z4 - 0.7*Z3", dtype=torch.complex128)
    t = theta.numpy()
    assert values[0].item() == pytest.approx(cost(t), abs=1e-12)
    for k in range(len(names)):
        e = np.zeros(len(names))
        e[k] = 1e-6
        assert grads[0, k].item() == pytest.approx((cost(t + e) - cost(t - e)) / 2e-6, abs=1e-8)


def test_taken_exactly_when_it_applies(monkeypatch):
    calls = []
    real = single.value_and_grad
    monkeypatch.setattr(single, "value_and_grad", lambda run, cost: calls.append((run.program.n_qubits, run.batch)) or real(run, cost))

    def call(n, batch):
        c = Circuit(n)
        for q in range(n):
            c.ry(q, f"t{q}")
        c.value_and_grad(torch.zeros(batch, n), " + ".join(f"Z{q}" for q in range(n)))  # every qubit in the light cone

    first, last = single.SINGLE_QUBITS[0], single.SINGLE_QUBITS[-1]
    for n, batch in ((first - 1, 1), (first, 1), (last, 1), (last + 1, 1), (first, 2), (4, 1)):
        call(n, batch)
    assert calls == [(first, 1), (last, 1), (4, 1)]
    monkeypatch.setattr(single, "SINGLE_KEPT_BYTES", 2 * 2**4 * 8 - 1)  # less than one kept state and cotangent (complex64)
    call(4, 1)
    assert len(calls) == 3


def test_the_backward_reads_the_forwards_kept_states(monkeypatch):
    """expval + backward builds one Path: the backward gets the forward's (no second run of the circuit); and a
    retained graph's second backward gives the same gradient again."""
    built = []
    real = single.Path.__init__
    monkeypatch.setattr(single.Path, "__init__", lambda self, run: built.append(run) or real(self, run))
    c = Circuit(6)
    for q in range(6):
        c.ry(q, f"a{q}").rz(q, f"b{q}")
    for q in range(5):
        c.cnot(q, q + 1)
    theta = torch.linspace(-2, 2, c.n_params, dtype=torch.float64).requires_grad_(True)
    value = c.expval(theta, "Z0 + X3", dtype=torch.complex128, diff_method="adjoint")
    (first,) = torch.autograd.grad(value.sum(), theta, retain_graph=True)
    (second,) = torch.autograd.grad(value.sum(), theta)
    assert len(built) == 1
    torch.testing.assert_close(first, second, atol=0, rtol=0)
    with engine_only():
        theta2 = theta.detach().clone().requires_grad_(True)
        (engine,) = torch.autograd.grad(c.expval(theta2, "Z0 + X3", dtype=torch.complex128, diff_method="adjoint").sum(), theta2)
    torch.testing.assert_close(first, engine, atol=1e-12, rtol=0)


def test_second_derivatives_and_transforms_through_the_path():
    """A Hessian (double backward through the sweep's Function) and torch.func.jacrev at batch 1 equal the engine's."""
    c = Circuit(5)
    for q in range(5):
        c.ry(q, f"a{q}")
    for q in range(4):
        c.cnot(q, q + 1)
    for q in range(5):
        c.rx(q, f"b{q}")
    theta = torch.linspace(-1, 1.3, c.n_params, dtype=torch.float64)
    f = lambda t: c.expval(t, "Z0 Z4 + 0.5*Y2", dtype=torch.complex128, diff_method="adjoint").sum()  # noqa: E731
    hessian = torch.autograd.functional.hessian(f, theta)
    jac = torch.func.jacrev(f)(theta)
    with engine_only():
        torch.testing.assert_close(hessian, torch.autograd.functional.hessian(f, theta), atol=1e-10, rtol=0)
        torch.testing.assert_close(jac, torch.func.jacrev(f)(theta), atol=1e-12, rtol=0)
