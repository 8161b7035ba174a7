"""The fused plan computes what the gates do one at a time, and each regime
gets the plan it was measured to want.

`lower(..., fuse=False)` runs every gate as its own pass: no permutation runs,
no diagonal runs, no layers. The fused plan must agree with it (and with the
dense NumPy reference in tests/reference.py) on states and on gradients, for
random circuits of every gate kind, shared parameters, per-sample axes and
unitaries included."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qtrain import Circuit
from qtrain.builders import mcclean_circuit, shared_ansatz
from qtrain.engine import simulate
from qtrain.engine.fusion import Layer
from qtrain.engine.permutations import apply_permutation, compose
from qtrain._lowering import lower
from tests import reference
from tests.circuits import FIXED_1Q, FIXED_2Q, MULTI_ANGLE, MULTI_ANGLE_2Q, ROTATIONS, ROTATIONS_2Q, random_circuit, random_theta

#: Permutation-heavy: runs of CNOT / SWAP / CZ / X / phases between rotations,
#: so that runs of several monomial gates (with phases riding along) get fused.
PERMUTATION_HEAVY = ROTATIONS + ("x", "y", "z", "s", "t", "h") + FIXED_2Q * 4
TOLERANCE = {torch.complex64: 1e-6, torch.complex128: 1e-12}


def kinds_in(program) -> set[str]:
    return {"layer" if isinstance(item, Layer) else program.steps[item].kind for item in program.plan}


def run(program, angles, batch, dtype, diff_method):
    """(states, d cost / d angles) for a cost that weighs every amplitude."""
    a = angles.clone().requires_grad_(True)
    state = simulate(program, a, batch, dtype, "cpu", diff_method)
    n = program.n_qubits
    weights = torch.linspace(-1, 1, 2**n, dtype=a.dtype).reshape(1, *[2] * n)
    (state.abs() ** 2 * weights).sum().backward()
    return state.detach().reshape(batch, -1), a.grad


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("kinds", [None, PERMUTATION_HEAVY], ids=["every-gate", "permutation-heavy"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fused_equals_unfused_and_reference(seed, kinds, dtype):
    rng = np.random.default_rng(seed)
    batch, n = 3, 5
    rc = random_circuit(rng, n, n_gates=70, batch=batch, kinds=kinds)
    fused, unfused = lower(rc.circuit.ops, n), lower(rc.circuit.ops, n, fuse=False)
    assert kinds_in(unfused) <= {"fixed", "rotation"}  # every gate alone
    assert "layer" in kinds_in(fused) and len(fused.plan) < len(unfused.plan)
    if kinds is not None:
        assert "permutation" in kinds_in(fused)
    theta = random_theta(rng, rc.circuit, batch)
    scales = torch.tensor(rc.circuit.slot_scales, dtype=torch.float64)  # the engine takes angles, not parameters
    angles = (torch.tensor(theta)[:, list(rc.circuit.slot_params)] * scales).to(torch.float32 if dtype == torch.complex64 else torch.float64)
    tol = TOLERANCE[dtype]
    expected = torch.tensor(rc.reference_states(theta))
    for diff_method in ("backprop", "adjoint"):
        state, grad = run(fused, angles, batch, dtype, diff_method)
        state_ref, grad_ref = run(unfused, angles, batch, dtype, diff_method)
        assert (state - state_ref).abs().max() < tol
        assert (grad - grad_ref).abs().max() < 10 * tol  # a sum over 2^n weighted amplitudes
        assert (state.to(torch.complex128) - expected).abs().max() < 10 * tol


def test_shared_parameter_gradient_is_the_sum_over_its_gates_in_a_fused_plan():
    # one name on rotations in three fused layers and one chain of length 3
    c = Circuit(3)
    for q in range(3):
        c.ry(q, "a").rz(q, "b").rx(q, "a")
    c.cnot(0, 1).cnot(1, 2).swap(0, 2)
    for q in range(3):
        c.ry(q, "a")
    untied = c.untied()
    theta = torch.tensor([0.3, -1.1], dtype=torch.float64)
    values, grad = c.value_and_grad(theta, "Z0 + X1 Y2", dtype=torch.complex128)
    flat = theta[list(c.slot_params)]
    _, grad_untied = untied.value_and_grad(flat, "Z0 + X1 Y2", dtype=torch.complex128)
    summed = torch.zeros(2, dtype=torch.float64).index_add_(0, torch.tensor(c.slot_params), grad_untied[0])
    assert untied.n_params == 12 and torch.allclose(grad[0], summed, atol=1e-12)


def test_a_cnot_chain_is_one_gather():
    n = 6
    c = Circuit(n)
    for q in range(n - 1):
        c.cnot(q, q + 1)
    c.swap(0, 5).cz(1, 4).x(2)
    program = c.program()
    assert len(program.plan) == 1 and program.steps[0].kind == "permutation"
    rng = np.random.default_rng(0)
    psi = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    dense = psi
    for op in c.ops:  # the dense reference's matrices, one gate at a time
        dense = reference.embed(reference.gate_matrix({"name": op.name, "qubits": op.qubits}), op.qubits, n) @ dense
    step = program.steps[0]
    phase = None if step.tensor.shape[1] == 0 else step.tensor
    got = apply_permutation(torch.tensor(psi)[None], step.index, phase)
    assert np.allclose(got[0].numpy(), dense, atol=1e-12)
    # the inverse undoes it
    source, _ = compose(lower(c.ops, n, fuse=False).steps, n)
    assert torch.equal(source[step.inverse.long()], torch.arange(2**n))


def test_each_regime_gets_its_plan():
    # one circuit (VQE): four-qubit blocks shared by the batch, each CNOT chain one gather
    hea = Circuit(12)
    for layer in range(3):
        for q in range(12):
            hea.ry(q, f"y{layer}{q}").rz(q, f"z{layer}{q}")
        for q in range(11):
            hea.cnot(q, q + 1)
    one = hea.plan_summary()
    assert one.block_widths == (4, 4, 4) and one.layers == 3 and one.permutations == 3
    assert one.forward_passes == 2 * 3 + 3  # the first layer builds a product state: no pass
    assert one.gates == 3 * (24 + 11)
    # a hybrid layer: per-sample angles, cache-sized chunks of three-qubit blocks
    assert hea.plan_summary(256).block_widths == (3, 3, 3, 3)
    # many starts of a tiny circuit: one-qubit blocks
    tiny = shared_ansatz(3, 3, 4, seed=0).plan_summary(7000)
    assert tiny.block_widths == (1, 1, 1) and tiny.chunk_samples == 7000
    # McClean: rotation layers and CZ ladders (one diagonal each), chunked
    mc = mcclean_circuit(16, 4, 64, seed=0).plan_summary(64)
    assert mc.layers == 4 and mc.single_steps == 4 and mc.permutations == 0 and mc.chunk_samples < 64
    # bytes: passes times the batch of states, read and written
    assert one.forward_bytes == 2 * one.forward_passes * 2**12 * 8
    assert mc.value_and_grad_bytes > 2 * mc.forward_bytes
    # a light cone shrinks the plan
    assert hea.plan_summary(observable="Z0").gates < one.gates


@pytest.mark.parametrize("batch", [0, -1, 1.5, True])
def test_plan_summary_refuses_a_bad_batch(batch):
    with pytest.raises(ValueError, match="batch"):
        Circuit(2).plan_summary(batch)


def test_fixed_one_qubit_gates_cover_every_kind():
    # the random circuits above draw these; keep the lists in step with the gate table
    from qtrain.engine.gates import GATES

    drawn = set(ROTATIONS) | set(MULTI_ANGLE) | set(MULTI_ANGLE_2Q) | set(ROTATIONS_2Q) | set(FIXED_1Q) | set(FIXED_2Q) | {"unitary"}
    assert drawn == set(GATES)
