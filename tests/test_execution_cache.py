"""Circuit as data, execution in one bounded cache: a builder's snapshot
changes only when a gate is added, a run never sees stale gates, and no
number of circuits or observables grows the cache past its bound."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qtrain import Circuit
from qtrain import _execution
from tests import reference


@pytest.fixture(autouse=True)
def empty_cache():
    _execution.compiled.cache_clear()
    yield
    _execution.compiled.cache_clear()


def _reference_z0(gates: list[dict], n: int) -> float:
    return reference.expval(reference.run(gates, n), [(1.0, {0: "Z"})])


def test_the_snapshot_is_one_object_until_a_gate_is_added():
    c = Circuit(2).ry(0, "a")
    first = c._snapshot()
    assert c._snapshot() is first and c.ops is first.ops
    c.cnot(0, 1)
    second = c._snapshot()
    assert second is not first and len(second.ops) == 2 and len(first.ops) == 1  # the old snapshot is untouched


def test_a_run_after_a_new_gate_compiles_the_new_circuit():
    c = Circuit(2).ry(0, "a")
    theta = torch.tensor([0.7], dtype=torch.float64)
    before = c.expval(theta, "Z0").item()
    assert before == pytest.approx(_reference_z0([{"name": "ry", "qubits": (0,), "angle": 0.7}], 2), abs=1e-12)
    c.rx(0, 0.4)  # a cached program of one gate would still give cos(0.7)
    after = c.expval(theta, "Z0").item()
    want = _reference_z0([{"name": "ry", "qubits": (0,), "angle": 0.7}, {"name": "rx", "qubits": (0,), "angle": 0.4}], 2)
    assert after == pytest.approx(want, abs=1e-12) and abs(after - before) > 1e-3


def test_repeated_runs_reuse_one_compiled_entry():
    c = Circuit(3).ry(0, "a").cnot(0, 1).ry(2, "b")
    theta = torch.tensor([0.3, 0.5])
    for _ in range(5):
        c.expval(theta, "Z0 Z1")
        c.value_and_grad(theta, "Z0 Z1")
    info = _execution.compiled.cache_info()
    assert info.currsize == 1 and info.hits >= 9  # the light cone of Z0 Z1 (qubits 0, 1), compiled once


def test_many_circuits_and_observables_stay_within_the_bound():
    theta = torch.tensor([0.2])
    for k in range(_execution.CACHE_SIZE + 20):
        c = Circuit(3).ry(k % 3, "a").cz(0, 1).cz(1, 2)
        c.expval(theta, f"{1 + k}*Z0")  # a new circuit and a new observable each time
    one = Circuit(6).ry(0, "a")
    for k in range(2 * _execution.CACHE_SIZE):
        one.expval(theta, f"{1 + k}*Z0 Z{1 + k % 5}")
    assert _execution.compiled.cache_info().currsize <= _execution.CACHE_SIZE


def test_an_evicted_entry_compiles_again_to_the_same_numbers():
    c = Circuit(2).ry(0, "a").crx(0, 1, "b")  # half-angle slots: the scale gather is cached too
    theta = torch.tensor([[0.3, 1.1], [0.9, -0.4]], dtype=torch.float64)
    values, grads = c.value_and_grad(theta, "Z1")
    _execution.compiled.cache_clear()
    again_values, again_grads = c.value_and_grad(theta, "Z1")
    assert torch.equal(values, again_values) and torch.equal(grads, again_grads)


def test_a_light_cone_keeps_the_batch_of_the_gates_it_dropped():
    """pauli_rot with per-sample axes on qubit 2 fixes the batch at 3; the cone of Z0 drops it, but still gives 3 rows."""
    c = Circuit(3).ry(0, "a").pauli_rot(2, "b", torch.tensor([0, 1, 2]))
    values = c.expval(torch.tensor([0.4, 0.1], dtype=torch.float64), "Z0")
    assert values.shape == (3,) and c.gate_batch == 3
    np.testing.assert_allclose(values.numpy(), np.cos(0.4), atol=1e-12)
    with pytest.raises(ValueError, match="theta has batch 2, but the circuit's per-sample gates have batch 3"):
        c.expval(torch.zeros(2, 2), "Z0")
