"""The small-state path (qtrain.engine.small): amplitude-major value and adjoint gradient, equal to the engine's
batch-first sweep on random circuits of every gate kind, and taken exactly when `applies` says."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qtrain import Circuit
from qtrain.builders import random_target_state
from qtrain.engine import small
from tests import reference
from tests.circuits import random_circuit


def both_paths(circuit, theta, cost, **kwargs):
    """(small path's, engine's) value_and_grad of the same call."""
    mine = circuit.value_and_grad(theta, cost, dtype=torch.complex128, **kwargs)
    held = small.SMALL_QUBITS, small.WIDE_QUBITS
    small.SMALL_QUBITS = small.WIDE_QUBITS = 0  # the engine's sweep
    try:
        engine = circuit.value_and_grad(theta, cost, dtype=torch.complex128, **kwargs)
    finally:
        small.SMALL_QUBITS, small.WIDE_QUBITS = held
    return mine, engine


@pytest.mark.parametrize("seed", range(24))
def test_equal_to_the_engine_on_random_circuits(seed):
    """Every gate kind, shared parameters, fixed angles, per-sample axes and unitaries (odd seeds), initial states; an
    observable, a target state and a function of states as the cost."""
    rng = np.random.default_rng(seed)
    n, batch = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    rc = random_circuit(rng, n, 14, batch, per_sample=bool(seed % 2))
    circuit = rc.circuit
    rows = rc.batch if circuit.gate_batch > 1 else 6
    theta = torch.tensor(rng.uniform(-np.pi, np.pi, (rows, circuit.n_params)))
    costs = ["Z0" if n == 1 else "Z0 Z1 + 0.5*X0 - 0.2*Y1", random_target_state(n, seed), lambda states: states.reshape(states.shape[0], -1)[:, 0].abs() ** 2]
    for cost in costs:
        (v1, g1), (v0, g0) = both_paths(circuit, theta, cost)
        torch.testing.assert_close(v1, v0, atol=1e-12, rtol=0)
        torch.testing.assert_close(g1, g0, atol=1e-12, rtol=0)
    initial = torch.tensor(rng.normal(size=(rows, 2**n)) + 1j * rng.normal(size=(rows, 2**n)))
    initial = initial / initial.norm(dim=1, keepdim=True)
    (v1, g1), (v0, g0) = both_paths(circuit, theta, costs[0], initial_state=initial)
    torch.testing.assert_close(g1, g0, atol=1e-12, rtol=0)


def test_against_the_reference_by_finite_differences():
    """Independent of the engine: a 3-qubit circuit with a shared parameter and a controlled rotation, the gradient
    against the dense reference's central differences."""
    c = Circuit(3).ry(0, "a").crx(0, 1, "b").rz(1, "a").cnot(1, 2).rx(2, "c").h(0)
    theta = torch.tensor([[0.3, -1.1, 0.7], [2.0, 0.4, -0.9]], dtype=torch.float64)
    terms = [(1.0, {0: "Z", 2: "X"}), (0.5, {1: "Y"})]

    def cost(t):
        a, b, cc = t
        gates = [{"name": "ry", "qubits": (0,), "angle": a}, {"name": "crx", "qubits": (0, 1), "angle": b}, {"name": "rz", "qubits": (1,), "angle": a},
                 {"name": "cnot", "qubits": (1, 2)}, {"name": "rx", "qubits": (2,), "angle": cc}, {"name": "h", "qubits": (0,)}]
        return reference.expval(reference.run(gates, 3), terms)

    values, grads = c.value_and_grad(theta, "Z0 X2 + 0.5*Y1", dtype=torch.complex128)
    for row in range(2):
        t = theta[row].numpy()
        assert values[row].item() == pytest.approx(cost(t), abs=1e-12)
        for k in range(3):
            e = np.zeros(3)
            e[k] = 1e-6
            assert grads[row, k].item() == pytest.approx((cost(t + e) - cost(t - e)) / 2e-6, abs=1e-8)


def test_taken_exactly_when_it_applies(monkeypatch):
    calls = []
    real = small.value_and_grad
    monkeypatch.setattr(small, "value_and_grad", lambda run, cost: calls.append((run.program.n_qubits, run.batch)) or real(run, cost))

    def call(n, batch):
        c = Circuit(n)
        for q in range(n):
            c.ry(q, f"t{q}")
        c.value_and_grad(torch.zeros(batch, n), " + ".join(f"Z{q}" for q in range(n)))  # every qubit in the light cone

    for n, batch in ((1, 3), (small.SMALL_QUBITS, 3), (small.SMALL_QUBITS + 1, 3), (small.SMALL_QUBITS + 1, small.WIDE_BATCH),
                     (small.WIDE_QUBITS + 1, small.WIDE_BATCH)):
        call(n, batch)
    assert calls == [(1, 3), (small.SMALL_QUBITS, 3), (small.SMALL_QUBITS + 1, small.WIDE_BATCH)]
    call(2, small.SMALL_ELEMENTS // 4 + 1)  # more amplitudes than it holds: the engine's chunks
    assert len(calls) == 3


@pytest.mark.parametrize("seed", range(3))
def test_equal_to_the_engine_on_wider_registers_at_large_batches(seed):
    """n = 5..7 at B >= WIDE_BATCH: the path's wide rule, against the engine (which fuses multi-qubit blocks there)."""
    rng = np.random.default_rng(100 + seed)
    n = 5 + seed
    circuit = random_circuit(rng, n, 30, 1, per_sample=False).circuit
    theta = torch.tensor(rng.uniform(-np.pi, np.pi, (small.WIDE_BATCH + 3, circuit.n_params)))
    (v1, g1), (v0, g0) = both_paths(circuit, theta, " + ".join(f"Z{q}" for q in range(n)))
    torch.testing.assert_close(v1, v0, atol=1e-12, rtol=0)
    torch.testing.assert_close(g1, g0, atol=1e-12, rtol=0)
