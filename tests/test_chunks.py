"""Chunked runs: no-grad work goes through the batch in chunks of samples,
and `value_and_grad` runs forward, cost and back one chunk at a time. Chunking
must change nothing but speed and memory: the same states, values and
gradients as one whole-batch run and as the dense reference."""

import numpy as np
import pytest
import torch

from qtrain import Circuit
from qtrain.builders import mcclean_angles, mcclean_circuit
from qtrain.engine import run as run_module
from qtrain.engine.fusion import layer_widths
from qtrain.engine.run import product_prefix, sample_chunks
from tests import reference
from tests.circuits import random_circuit, random_theta

HAMILTONIAN = "0.7*Z0 Z1 - 0.4*X0 Y2 + 0.3*Y1 + Z2"
TERMS = [(0.7, {0: "Z", 1: "Z"}), (-0.4, {0: "X", 2: "Y"}), (0.3, {1: "Y"}), (1.0, {2: "Z"})]


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Chunks of two 4-qubit complex128 states (or one 5-qubit one), so a batch of 5 splits 2 + 2 + 1."""
    monkeypatch.setattr(run_module, "CHUNK_BYTES", 2 * 16 * 16)
    assert len(sample_chunks(5, 16 * 16, torch.device("cpu"))) == 3


def _autograd_grad(circuit, theta, cost, diff_method="backprop"):
    t = theta.clone().requires_grad_(True)
    values = circuit.expval(t, cost, diff_method=diff_method) if isinstance(cost, str) else cost(circuit.state(t, diff_method=diff_method))
    values.sum().backward()
    return values.detach(), t.grad


def test_sample_chunks_cover_the_batch():
    cpu = torch.device("cpu")
    chunks = sample_chunks(10, 2**20, cpu)  # 1 MiB per sample: 4 per chunk
    assert [(c.start, c.stop) for c in chunks] == [(0, 4), (4, 8), (8, 10)]
    assert sample_chunks(3, 2**30, cpu) == [slice(0, 1), slice(1, 2), slice(2, 3)]  # never less than one sample
    assert sample_chunks(10, 8, torch.device("meta")) == [slice(0, 10)]  # off the CPU: one chunk


def test_layer_widths_in_cache_and_streaming():
    small, large = 2**20, 2**30
    # per-sample blocks: three qubits in cache, four streaming, one for tiny states
    assert layer_widths(16, small, True) == (3, 3, 3, 3, 4)
    assert layer_widths(17, small, True) == (3, 3, 3, 3, 3, 2)
    assert layer_widths(12, small, True) == (3, 3, 3, 3)
    assert layer_widths(5, small, True) == (3, 2)
    assert layer_widths(4, small, True) == (1, 1, 1, 1)
    assert layer_widths(16, large, True) == (4, 4, 4, 4)
    # blocks shared by the batch: four qubits wherever the state lives
    assert layer_widths(12, small, False) == (4, 4, 4)
    assert layer_widths(8, small, False) == (4, 4)
    assert layer_widths(4, small, False) == (4,)
    for n in range(1, 30):
        for per_sample in (True, False):
            assert sum(layer_widths(n, small, per_sample)) == n and sum(layer_widths(n, large, per_sample)) == n


@pytest.mark.parametrize("seed", [0, 1])
def test_chunked_states_equal_reference(tiny_chunks, seed):
    rng = np.random.default_rng(seed)
    rc = random_circuit(rng, 4, n_gates=50, batch=5)
    theta = random_theta(rng, rc.circuit, 5)
    with torch.no_grad():
        states = rc.circuit.state(torch.tensor(theta)).numpy()
    assert np.abs(states - rc.reference_states(theta)).max() < 1e-12


def test_chunked_run_equals_whole_batch_with_initial_states(tiny_chunks, rng):
    rc = random_circuit(rng, 4, n_gates=40, batch=5)
    theta = torch.tensor(random_theta(rng, rc.circuit, 5))
    psi0 = torch.tensor(reference.random_unitary(rng, 16)[:5])
    for initial in (psi0, psi0[0]):  # per sample, and one state for all
        whole = rc.circuit.state(theta.clone().requires_grad_(True), initial_state=initial).detach()  # autograd records: one chunk
        with torch.no_grad():
            chunked = rc.circuit.state(theta, initial_state=initial)
        assert torch.allclose(chunked, whole, atol=1e-12, rtol=0)


def test_chunked_adjoint_equals_backprop(tiny_chunks, rng):
    rc = random_circuit(rng, 4, n_gates=50, batch=5)
    theta = torch.tensor(random_theta(rng, rc.circuit, 5))
    _, adjoint = _autograd_grad(rc.circuit, theta, HAMILTONIAN, "adjoint")
    _, backprop = _autograd_grad(rc.circuit, theta, HAMILTONIAN, "backprop")
    assert torch.allclose(adjoint, backprop, atol=1e-10, rtol=0)


@pytest.mark.parametrize("chunked", [False, True])
def test_value_and_grad_equals_autograd(request, chunked, rng):
    if chunked:
        request.getfixturevalue("tiny_chunks")
    rc = random_circuit(rng, 4, n_gates=50, batch=5, n_names=4)
    theta = torch.tensor(random_theta(rng, rc.circuit, 5))
    values, grads = rc.circuit.value_and_grad(theta, HAMILTONIAN)
    expected_values, expected_grads = _autograd_grad(rc.circuit, theta, HAMILTONIAN)
    reference_values = [reference.expval(s, TERMS) for s in rc.reference_states(theta.numpy())]
    assert np.abs(values.numpy() - reference_values).max() < 1e-12
    assert torch.allclose(values, expected_values, atol=1e-12, rtol=0)
    assert torch.allclose(grads, expected_grads, atol=1e-10, rtol=0)


def test_value_and_grad_with_a_callable_cost_and_shared_parameters(tiny_chunks, rng):
    rc = random_circuit(rng, 4, n_gates=40, batch=5, n_names=3)
    assert len(rc.circuit.parameters) < len(rc.circuit.slot_params)  # some parameters drive several gates
    theta = torch.tensor(random_theta(rng, rc.circuit, 5))
    target = torch.tensor(reference.random_unitary(rng, 16)[:, 0])

    def infidelity(states):
        return 1 - (states @ target.conj()).abs() ** 2

    values, grads = rc.circuit.value_and_grad(theta, infidelity)
    expected_values, expected_grads = _autograd_grad(rc.circuit, theta, infidelity)
    assert torch.allclose(values, expected_values, atol=1e-12, rtol=0)
    assert torch.allclose(grads, expected_grads, atol=1e-10, rtol=0)


def test_value_and_grad_of_mcclean_circuits_in_complex64(tiny_chunks):
    circuit, theta = mcclean_circuit(5, 6, 7, seed=3), mcclean_angles(5, 6, 7, seed=3)
    _, grads = circuit.value_and_grad(theta, "Z0 Z1", dtype=torch.complex64)
    _, expected = _autograd_grad(circuit, theta.double(), "Z0 Z1")
    assert grads.dtype == torch.float32
    assert torch.allclose(grads.double(), expected, atol=1e-5, rtol=0)


def test_value_and_grad_of_a_cost_that_ignores_the_state():
    c = Circuit(2).rx(0, "a").cz(0, 1)
    values, grads = c.value_and_grad(torch.tensor([[0.3], [0.5]]), lambda states: states.real.sum(1) * 0 + 1)
    assert torch.equal(values, torch.ones(2)) and torch.equal(grads, torch.zeros(2, 1))


def test_value_and_grad_names_a_cost_of_the_wrong_shape():
    c = Circuit(2).rx(0, "a")
    with pytest.raises(ValueError, match=r"cost must map 3 states to 3 values, got shape \(3, 4\)"):
        c.value_and_grad(torch.zeros(3, 1), lambda states: states.abs())


def test_value_and_grad_refuses_a_matrix_that_requires_grad():
    u = torch.eye(2, dtype=torch.complex128, requires_grad=True)
    c = Circuit(1).unitary(0, u).rx(0, "a")
    with pytest.raises(ValueError, match="matrix requires grad"):
        c.value_and_grad(torch.zeros(1, 1), "Z0")


def test_a_circuit_of_one_qubit_gates_runs_as_a_product_state(rng):
    c = Circuit(3).h(0).rx(1, "a").ry(2, "b").rz(0, "a").s(1).sx(2).t(0)
    assert product_prefix(c.program()) == len(c.program().plan)  # nothing but the product state is computed
    theta = rng.uniform(-3, 3, size=(4, 2))
    with torch.no_grad():
        states = c.state(torch.tensor(theta)).numpy()
    for b, (a, bb) in enumerate(theta):
        gates = [
            {"name": "h", "qubits": (0,)},
            {"name": "rx", "qubits": (1,), "angle": a},
            {"name": "ry", "qubits": (2,), "angle": bb},
            {"name": "rz", "qubits": (0,), "angle": a},
            {"name": "s", "qubits": (1,)},
            {"name": "sx", "qubits": (2,)},
            {"name": "t", "qubits": (0,)},
        ]
        assert np.abs(states[b] - reference.run(gates, 3)).max() < 1e-12


def test_operators_held_for_a_run_grow_with_the_parameters_not_the_blocks():
    """A run keeps each gate's 2x2 operators (the size of its angles, times a
    constant) and builds a layer's 2^w x 2^w blocks per chunk when the layer
    runs: prebuilt blocks for every layer would hold 2^(2w)/w entries per gate,
    about five times as much at w = 3, and grow the memory of a deep run."""
    from qtrain.engine.run import Operators

    def held_bytes(layers: int) -> int:
        circuit = mcclean_circuit(9, layers, 8)
        program = circuit.program()
        angles = mcclean_angles(9, layers, 8)
        operators = Operators(program, angles, torch.complex64, torch.device("cpu"), (3, 3, 3))
        tensors = [*operators.steps, *operators.qubit_ops.values()]
        return sum(t.untyped_storage().nbytes() for t in {t.untyped_storage().data_ptr(): t for t in tensors}.values())

    per_layer = (held_bytes(20) - held_bytes(10)) / 10
    gate_samples = 9 * 8  # rotations per layer, times samples
    # a rotation's operator and its qubit's product in its layer, 2x2 complex64 each
    assert per_layer <= 2 * 4 * 8 * gate_samples * 1.1
