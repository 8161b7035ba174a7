"""Gradient identities: autograd = adjoint = parameter shift = finite difference,
and a shared parameter's gradient is the sum over its gates."""

import numpy as np
import pytest
import torch

from qtrain import Circuit
from tests import reference
from tests.circuits import random_circuit, random_theta

HAMILTONIAN = "0.7*Z0 Z1 - 0.4*X0 Y2 + 0.3*Y1 + Z2"
TERMS = [(0.7, {0: "Z", 1: "Z"}), (-0.4, {0: "X", 2: "Y"}), (0.3, {1: "Y"}), (1.0, {2: "Z"})]


def _grad(circuit, theta, diff_method, cost="expval", target=None):
    theta = theta.clone().requires_grad_(True)
    if cost == "expval":
        value = circuit.expval(theta, HAMILTONIAN, diff_method=diff_method)
    else:
        value = circuit.infidelity(theta, target, diff_method=diff_method)
    value.sum().backward()
    return theta.grad


def _reference_energies(rc, theta):
    return np.array([reference.expval(s, TERMS) for s in rc.reference_states(theta)])


@pytest.fixture(params=[3, 4])
def case(request, rng):
    rc = random_circuit(rng, request.param, n_gates=14 * request.param, batch=3, n_names=4)
    return rc, random_theta(rng, rc.circuit, batch=3)


def test_adjoint_equals_backprop(case):
    rc, theta = case
    t = torch.tensor(theta)
    assert torch.allclose(_grad(rc.circuit, t, "adjoint"), _grad(rc.circuit, t, "backprop"), atol=1e-10, rtol=0)


def test_adjoint_equals_backprop_for_infidelity(case, rng):
    rc, theta = case
    dim = 2**rc.circuit.n_qubits
    target = torch.tensor(reference.random_unitary(rng, dim)[:, 0])
    t = torch.tensor(theta)
    a = _grad(rc.circuit, t, "adjoint", cost="infidelity", target=target)
    b = _grad(rc.circuit, t, "backprop", cost="infidelity", target=target)
    assert torch.allclose(a, b, atol=1e-10, rtol=0)


def test_adjoint_equals_backprop_complex64(case):
    rc, theta = case
    t = torch.tensor(theta, dtype=torch.float32)
    assert torch.allclose(_grad(rc.circuit, t, "adjoint"), _grad(rc.circuit, t, "backprop"), atol=1e-4, rtol=0)


def test_adjoint_with_broadcast_theta(case):
    rc, theta = case
    t = torch.tensor(theta[0])  # (P,) shared by the per-sample circuits: gradient is summed over them
    assert torch.allclose(_grad(rc.circuit, t, "adjoint"), _grad(rc.circuit, t, "backprop"), atol=1e-10, rtol=0)


#: the gate arguments of frequencies 1/2 and 1: controlled rotations and the rotation angle of cu3, cu
HALF_ANGLE_ARGS = {"crx": (0,), "cry": (0,), "crz": (0,), "cu3": (0,), "cu": (0,)}


def test_parameter_shift_on_reference_equals_autograd(case):
    """Shift each gate argument of the untied circuit in the reference
    simulator, then sum the per-argument derivatives into their shared
    parameter. Two terms at +-pi/2 for frequencies {0, 1}; a controlled
    rotation (frequencies 1/2 and 1) takes the four-term rule at +-pi/2 and
    +-3pi/2 with weights (sqrt2 +- 1) / (4 sqrt2)."""
    rc, theta = case
    circuit = rc.circuit
    untied = rc.__class__(circuit.untied(), rc.gates, rc.batch)
    args = np.array(circuit.arg_params)
    # reference gates address parameters by name: rename each argument like untied() does
    names = circuit.parameters
    untied.gates, controlled = [dict(g) for g in rc.gates], []
    for i, g in enumerate(untied.gates):
        if "param" in g:
            g["param"] = f"{g['param']}@{i}"
            controlled.append(g["name"] in HALF_ANGLE_ARGS)
        if "args" in g:
            g["args"] = [f"{a}@{i}.{k}" if isinstance(a, str) else a for k, a in enumerate(g["args"])]
            controlled += [k in HALF_ANGLE_ARGS.get(g["name"], ()) for k, a in enumerate(g["args"]) if isinstance(a, str)]
    renamed = [a for g in untied.gates for a in ([g["param"]] if "param" in g else [x for x in g.get("args", []) if isinstance(x, str)])]
    assert renamed == list(untied.circuit.parameters)
    theta_untied = theta[:, args]
    rules = {False: [(np.pi / 2, 0.5)], True: [(np.pi / 2, (np.sqrt(2) + 1) / (4 * np.sqrt(2))), (3 * np.pi / 2, -(np.sqrt(2) - 1) / (4 * np.sqrt(2)))]}
    shift = np.zeros((theta.shape[0], circuit.n_params))
    for j, p in enumerate(args):
        for offset, weight in rules[controlled[j]]:
            e = np.zeros(len(args))
            e[j] = offset
            shift[:, p] += weight * (_reference_energies(untied, theta_untied + e) - _reference_energies(untied, theta_untied - e))
    auto = _grad(circuit, torch.tensor(theta), "backprop").numpy()
    assert len(names) < len(args)
    assert np.abs(shift - auto).max() < 1e-9


def test_finite_difference_on_reference_equals_adjoint(case):
    rc, theta = case
    eps = 1e-6
    fd = np.zeros_like(theta)
    for p in range(theta.shape[1]):
        e = np.zeros(theta.shape[1])
        e[p] = eps
        fd[:, p] = (_reference_energies(rc, theta + e) - _reference_energies(rc, theta - e)) / (2 * eps)
    adjoint = _grad(rc.circuit, torch.tensor(theta), "adjoint").numpy()
    assert np.abs(fd - adjoint).max() < 1e-6


@pytest.mark.parametrize("diff_method", ["backprop", "adjoint"])
def test_shared_gradient_is_sum_of_untied_gradients(case, diff_method):
    rc, theta = case
    circuit = rc.circuit
    slots = torch.tensor(circuit.arg_params)
    tied = _grad(circuit, torch.tensor(theta), diff_method)
    untied = _grad(circuit.untied(), torch.tensor(theta)[:, slots], diff_method)
    summed = torch.zeros_like(tied).index_add_(1, slots, untied)
    assert torch.allclose(tied, summed, atol=1e-10, rtol=0)


def test_adjoint_handles_fixed_and_diagonal_steps():
    c = Circuit(3).h(0).ry(1, 0.3).rz(0, "a").cz(0, 1).cz(1, 2).s(2).rz(2, "a").cnot(2, 0).rx(0, "b").t(1)
    theta = torch.tensor([[0.4, -1.1], [2.0, 0.5]], dtype=torch.float64)
    a, b = _grad(c, theta, "adjoint"), _grad(c, theta, "backprop")
    assert torch.allclose(a, b, atol=1e-12, rtol=0)


def test_adjoint_memory_does_not_keep_intermediate_states():
    """The adjoint graph holds the angles and the final state (and the initial
    state when one is given: None here), whatever the depth."""
    deep = Circuit(3)
    for layer in range(50):
        deep.rx(layer % 3, f"t{layer}").cz(0, 1)
    theta = torch.rand(2, deep.n_params, dtype=torch.float64, requires_grad=True)
    state = deep.state(theta, diff_method="adjoint")
    node = state.grad_fn
    while node is not None and "AdjointState" not in type(node).__name__:
        node = node.next_functions[0][0]
    assert node is not None
    assert len([t for t in node.saved_tensors if t is not None]) == 2


def test_gradient_with_respect_to_the_initial_state(rng):
    rc = random_circuit(rng, 3, n_gates=30, batch=2, per_sample=False)
    theta = torch.tensor(random_theta(rng, rc.circuit, 2))
    psi0 = torch.tensor(reference.random_unitary(rng, 8)[:2], requires_grad=True)
    grads = []
    for method in ("backprop", "adjoint"):
        psi = psi0.detach().clone().requires_grad_(True)
        t = theta.clone().requires_grad_(True)
        rc.circuit.expval(t, HAMILTONIAN, diff_method=method, initial_state=psi).sum().backward()
        grads.append((t.grad, psi.grad))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-10)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-10)


def test_gradient_samples_of_a_controlled_rotation_are_exact():
    """Its half angles make the two-term shift wrong: the adjoint is used, and
    it matches central finite differences."""
    from qtrain.diagnostics.gradients import gradient_samples

    c = Circuit(2).h(0).ry(1, "a").add("crx", (0, 1), "b").rx(0, "c").add("cry", (1, 0), "b")
    theta = torch.tensor(np.random.default_rng(3).uniform(-np.pi, np.pi, size=(4, 3)))
    got = gradient_samples(c, theta, "X0 + Z1", parameter=1)
    h = torch.tensor([0.0, 1e-6, 0.0], dtype=torch.float64)
    fd = (c.expval(theta + h, "X0 + Z1", dtype=torch.complex128) - c.expval(theta - h, "X0 + Z1", dtype=torch.complex128)) / 2e-6
    assert torch.allclose(got, fd, atol=1e-7) and fd.abs().max() > 1e-2


def _shot_circuit():
    return Circuit(3).ry(0, "a").ry(1, "b").cnot(0, 1).rx(2, "c").cnot(2, 1).ry(0, "d").rz(1, "a")


def test_gradient_variance_with_shots_splits_into_exact_and_shot_parts():
    from qtrain.diagnostics import gradient_variance

    samples = 1500
    stats = gradient_variance(_shot_circuit(), "Z0 Z1 + 0.5*X1", samples=samples, parameter=None, shots=16, seed=4, dtype=torch.complex128)
    exact = gradient_variance(_shot_circuit(), "Z0 Z1 + 0.5*X1", samples=samples, parameter=None, seed=4, dtype=torch.complex128)
    assert stats.shots == 16 and exact.shots is None and exact.exact_var is None and exact.shot_var is None
    assert torch.equal(stats.exact_gradients, exact.gradients)  # the same angles, so the same exact part
    assert torch.allclose(stats.exact_var, exact.var)
    # Var[estimate] = Var[exact] + E[shot variance] (law of total variance). var and exact_var come from
    # the same draws, so their difference estimates shot variance + 2 Cov(exact, noise); the covariance
    # has mean 0 and standard deviation about 2 sqrt(exact_var shot_var / S), and the sampled shot
    # variance a relative spread of about sqrt(2 / S) (more with heavy tails): allow 5 of each.
    slack = 5 * (2 * (stats.exact_var * stats.shot_var / samples).sqrt() + stats.shot_var * (2 / samples) ** 0.5)
    assert ((stats.var - stats.exact_var - stats.shot_var).abs() <= slack).all()
    assert (stats.shot_var > 0.1 * stats.var).all()  # with 16 shots the noise is a real part of what is measured
    assert "exact part" in str(stats) and "16 shots" in str(stats)


def test_gradient_variance_shots_do_not_depend_on_chunks_or_ranks_shares():
    from qtrain.diagnostics import gradient_variance
    from qtrain.diagnostics.gradients import SHOT_BLOCK, _shot_gradient_samples

    samples = SHOT_BLOCK + 40  # two blocks
    whole = gradient_variance(_shot_circuit(), "Z0 Z1", samples=samples, parameter="b", shots=8, seed=2)
    chunked = gradient_variance(_shot_circuit(), "Z0 Z1", samples=samples, parameter="b", shots=8, seed=2, chunk_size=7)
    assert torch.equal(whole.gradients, chunked.gradients)
    theta = torch.rand(samples, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    full, _ = _shot_gradient_samples(_shot_circuit(), theta, "Z0 Z1", torch.complex128, 8, 5, 0, slice(0, samples), whole=False)
    part, _ = _shot_gradient_samples(_shot_circuit(), theta, "Z0 Z1", torch.complex128, 8, 5, 0, slice(9, samples), whole=False)
    assert torch.equal(part, full[9:])  # a share starting inside a block gets that block's samples
    other, _ = _shot_gradient_samples(_shot_circuit(), theta, "Z0 Z1", torch.complex128, 8, 5, 1, slice(0, samples), whole=False)
    assert not torch.equal(other, full)  # another cost of a list draws its own samples
    assert not torch.equal(full[:SHOT_BLOCK][:40], full[SHOT_BLOCK:])  # and so does another block


def test_gradient_variance_with_shots_for_a_list_of_costs():
    from qtrain.diagnostics import gradient_variance

    stats = gradient_variance(_shot_circuit(), ["Z0 Z1", "X1"], samples=20, parameter=None, shots=8)
    assert stats.var.shape == stats.exact_var.shape == stats.shot_var.shape == (2, 4)
    assert stats.exact_gradients.shape == stats.gradients.shape == (20, 2, 4)


@pytest.mark.parametrize("shots", [0, 1.5])
def test_gradient_variance_refuses_bad_shots(shots):
    from qtrain.diagnostics import gradient_variance

    with pytest.raises(ValueError, match=f"shots must be a positive int .*got {shots!r}"):
        gradient_variance(_shot_circuit(), "Z0", samples=4, shots=shots)


def test_gradient_variance_refuses_shots_for_an_infidelity():
    from qtrain.diagnostics import gradient_variance

    target = torch.zeros(8, dtype=torch.complex64)
    target[0] = 1
    with pytest.raises(ValueError, match="shots=10: a target state's infidelity is not a Pauli sum"):
        gradient_variance(_shot_circuit(), target, samples=4, shots=10)
