"""Layer fusion and buffer reuse: the fused schedule computes exactly what the
one-gate-at-a-time schedule does, and never writes into a caller's tensor."""

import dataclasses

import numpy as np
import pytest
import torch

from qtrain.builders import mcclean_angles, mcclean_circuit
from qtrain.engine import simulate
from qtrain.engine.fusion import Layer, block_widths
from tests.circuits import random_circuit, random_theta


def test_block_widths():
    assert block_widths(16) == (4, 4, 4, 4)
    assert block_widths(16, 3) == (3, 3, 3, 3, 2, 2)
    assert block_widths(12, 3) == (3, 3, 3, 3)
    assert block_widths(2, 3) == (2,)
    assert sum(block_widths(23, 4)) == 23


def test_mcclean_layers_are_fused():
    program = mcclean_circuit(6, 3, 4, seed=0).program()
    kinds = ["layer" if isinstance(item, Layer) else program.steps[item].kind for item in program.plan]
    # (rotation layer, fused CZ ladder) per layer; the R_Y(pi/4) layer joins the first
    assert kinds == ["layer", "fixed"] * 3
    layers = [item for item in program.plan if isinstance(item, Layer)]
    assert [len(item.members) for item in layers] == [12, 6, 6]
    assert all(len(chain) == 2 for chain in layers[0].chains)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("diff_method", ["backprop", "adjoint"])
def test_fused_schedule_equals_one_gate_at_a_time(seed, diff_method):
    rng = np.random.default_rng(seed)
    rc = random_circuit(rng, 5, n_gates=60, batch=3)
    program = rc.circuit.program()
    assert any(isinstance(item, Layer) for item in program.plan)
    unfused = dataclasses.replace(program, schedule=(), _operands={})
    theta = torch.tensor(random_theta(rng, rc.circuit, 3))
    angles = theta[:, list(rc.circuit.slot_params)]
    results = []
    for prog in (program, unfused):
        a = angles.clone().requires_grad_(True)
        state = simulate(prog, a, 3, torch.complex128, "cpu", diff_method)
        (state.abs() ** 2 * torch.arange(32).reshape(1, *[2] * 5)).sum().backward()
        results.append((state.detach(), a.grad))
    assert torch.allclose(results[0][0], results[1][0], atol=1e-12)
    assert torch.allclose(results[0][1], results[1][1], atol=1e-12)


def test_no_grad_runs_leave_the_initial_state_alone():
    c = mcclean_circuit(4, 3, 5, seed=1)
    theta = mcclean_angles(4, 3, 5, seed=1)
    psi0 = torch.randn(5, 16, dtype=torch.complex64)
    psi0 = psi0 / psi0.norm(dim=1, keepdim=True)
    before = psi0.clone()
    with torch.no_grad():
        c.state(theta, initial_state=psi0)
    assert torch.equal(psi0, before)


def test_adjoint_backward_leaves_the_returned_state_alone():
    c = mcclean_circuit(5, 4, 3, seed=2)
    theta = mcclean_angles(5, 4, 3, seed=2, dtype=torch.float64).requires_grad_(True)
    state = c.state(theta, diff_method="adjoint")
    kept = state.detach().clone()
    (state.abs() ** 2)[:, 0].sum().backward()
    assert torch.equal(state.detach(), kept)


def test_fuse_runs_merges_accepted_runs_once_and_keeps_the_rest():
    from qtrain.engine.program import Step, fuse_runs

    def step(qubits, value, kind="fixed"):
        return Step(kind, qubits, torch.full((1, 2), value, dtype=torch.complex128), diagonal=True)

    a, b, c, lone = step((0,), 1), step((1,), -1), step((0,), 2, kind="rotation"), step((2,), 1j)
    merged = []

    def merge(run):
        merged.append(len(run))
        return step(tuple(q for s in run for q in s.qubits), len(run))

    fused = fuse_runs([a, b, c, a, b, c, lone], lambda s: s.kind == "fixed", lambda run: len(run) > 1, merge)
    assert merged == [2]  # the second equal run reuses the first's merged step
    assert fused[0] is fused[2] and fused[0].qubits == (0, 1)
    assert fused[1] is c and fused[3] is c and fused[4] is lone  # a run the predicate refuses stays as it was
