"""Shot estimates against their analytic distributions.

Every statistical check draws its independent repetitions as rows of one
batch (row i samples from its own key (seed, i)), and compares with values
from the dense reference simulator (tests/reference.py) or exact qtrain
values whose correctness the other test files establish. Tolerances are a
fixed number of standard errors of the quantity compared, computed from the
same analytic model, so a biased or mis-scaled estimator fails.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import qtrain.engine.run as run_module
from qtrain import Circuit
from qtrain.engine.observables import PauliSum
from qtrain.engine.shots import measurement_groups, shot_uniforms
from tests import reference

#: z-score bound: with the ~40 statistical comparisons below, a correct estimator fails one by chance with probability < 1e-6
Z = 5.5


def _variance_tolerance(sigma2: float, kurtosis: float, rows: int) -> float:
    """Z standard errors of a sample variance of `rows` draws with variance sigma2 and excess kurtosis `kurtosis`."""
    return Z * sigma2 * math.sqrt(2 / (rows - 1) + kurtosis / rows)


@pytest.mark.parametrize("pauli, angle", [("Z0", 0.9), ("X0", 0.4), ("Y0", 2.0)])
def test_one_pauli_string_has_variance_one_minus_mean_squared_over_n(pauli, angle):
    """One qubit after rx(0.3) then ry(angle): the estimate of <P> from N shots is a mean of N +-1 outcomes."""
    c = Circuit(1).rx(0, 0.3).ry(0, "a")
    rows, shots = 6000, 40
    theta = torch.full((rows, 1), angle, dtype=torch.float64)
    exact = c.expval(theta[:1], pauli).item()
    state = reference.run([{"name": "rx", "qubits": (0,), "angle": 0.3}, {"name": "ry", "qubits": (0,), "angle": angle}], 1)
    assert exact == pytest.approx(reference.expval(state, [(1.0, {0: pauli[0]})]), abs=1e-12)
    estimates = c.expval(theta, pauli, shots=shots, seed=11).numpy()
    sigma2 = (1 - exact**2) / shots
    p = (1 + exact) / 2
    kurtosis = (1 - 6 * p * (1 - p)) / (p * (1 - p)) / shots  # of a mean of `shots` +-1 outcomes
    assert abs(estimates.mean() - exact) < Z * math.sqrt(sigma2 / rows)
    assert abs(estimates.var(ddof=1) - sigma2) < _variance_tolerance(sigma2, kurtosis, rows)
    assert set(np.unique(np.round(estimates * shots))) <= set(range(-shots, shots + 1, 2))  # sums of +-1


def _pauli_matrix(term, n):
    return reference.pauli_string(dict(term.paulis), n)


def test_a_grouped_sum_has_the_variance_of_its_groups_estimators():
    """Var = sum over groups g of (<V_g^2> - <V_g>^2) / N, V_g the group's terms summed (they commute)."""
    n = 2
    H = "0.5*X0 + 0.7*X0 X1 - 0.3*Z1 + 0.4*Z0 Z1 - 0.6*Y1 + 0.25"
    constant, groups = measurement_groups(PauliSum.parse(H))
    assert constant == 0.25
    assert [g.basis for g in groups] == [((0, "X"), (1, "X")), ((0, "Z"), (1, "Z")), ((1, "Y"),)]
    c = Circuit(2).ry(0, "a").cnot(0, 1).rx(1, "b").ry(1, 0.3)
    angles = (0.8, -1.1)
    gates = [{"name": "ry", "qubits": (0,), "angle": angles[0]}, {"name": "cnot", "qubits": (0, 1)},
             {"name": "rx", "qubits": (1,), "angle": angles[1]}, {"name": "ry", "qubits": (1,), "angle": 0.3}]
    psi = reference.run(gates, n)
    shots, rows = 30, 6000
    sigma2 = 0.0
    for group in groups:
        V = sum(t.coeff * _pauli_matrix(t, n) for t in group.terms)
        mean = np.vdot(psi, V @ psi).real
        sigma2 += (np.vdot(psi, V @ V @ psi).real - mean**2) / shots
    theta = torch.tensor([angles] * rows, dtype=torch.float64)
    exact = c.expval(theta[:1], H).item()
    want = sum(t.coeff * np.vdot(psi, _pauli_matrix(t, n) @ psi).real for t in PauliSum.parse(H).terms)
    assert exact == pytest.approx(want, abs=1e-12)
    values, grads, (value_err, _) = c.value_and_grad(theta, H, shots=shots, seed=5, return_stderr=True)
    assert abs(values.mean().item() - exact) < Z * math.sqrt(sigma2 / rows)
    assert abs(values.var().item() - sigma2) < _variance_tolerance(sigma2, 1.0, rows)  # kurtosis of a mean of 30 bounded shots: well below 1
    # the per-row variance estimate (sample variance of a group's shots / N, summed) is unbiased for sigma2
    assert abs(value_err.square().mean().item() - sigma2) < Z * value_err.square().std().item() / math.sqrt(rows)


def _tied_circuit() -> Circuit:
    """A parameter on three gates (one a controlled rotation's half angles), a cry of its own, a fixed u3 between."""
    return (Circuit(3).ry(0, "a").crx(0, 1, "a").u3(2, 0.3, 0.2, 0.1).cry(2, 1, "b").rz(1, "a").cnot(1, 2).rx(2, "c"))


@pytest.mark.parametrize("observable", ["Z1", "0.6*X1 Z2 - 0.8*Y2 + 0.3*Z0"])
def test_shot_gradients_are_unbiased_for_shared_parameters_and_controlled_rotations(observable):
    c = _tied_circuit()
    theta0 = torch.tensor([0.7, -1.3, 0.4], dtype=torch.float64)
    exact_values, exact_grads = c.value_and_grad(theta0, observable)
    rows, shots = 4000, 50
    theta = theta0.expand(rows, 3)
    values, grads, (value_err, grad_err) = c.value_and_grad(theta, observable, shots=shots, seed=3, return_stderr=True)
    for got, want in [(values, exact_values[0]), *[(grads[:, p], exact_grads[0, p]) for p in range(3)]]:
        assert abs(got.mean().item() - want.item()) <= Z * got.std().item() / math.sqrt(rows)
    # the reported standard errors match the spread of the estimates over independent rows
    for spread, err in [(values.var(), value_err), *[(grads[:, p].var(), grad_err[:, p]) for p in range(3)]]:
        if spread == 0:  # a parameter outside the observable's light cone (c for Z1): exactly 0, and said so
            assert (err == 0).all()
            continue
        assert abs(err.square().mean().item() / spread.item() - 1) < Z * math.sqrt(2 / rows) * 2  # kurtosis of shot means: factor 2 margin


def test_autograd_through_shot_estimates_is_the_same_parameter_shift():
    """expval(shots) + backward and value_and_grad(shots) draw the same samples for the same seed."""
    c = _tied_circuit()
    theta = torch.tensor([[0.7, -1.3, 0.4], [0.1, 0.2, 0.3]], dtype=torch.float64, requires_grad=True)
    c.expval(theta, "Z1", shots=200, seed=9).sum().backward()
    values, grads = c.value_and_grad(theta.detach(), "Z1", shots=200, seed=9)
    assert torch.equal(theta.grad, grads)
    assert torch.equal(c.expval(theta.detach(), "Z1", shots=200, seed=9), values)


def test_same_seed_same_samples_at_any_chunk_size(monkeypatch):
    c = Circuit(4).ry(0, "a").cnot(0, 1).ry(2, "b").cz(1, 2).rx(3, "a")
    theta = torch.rand(50, 2, generator=torch.Generator().manual_seed(0))
    H = ["Z0 Z1", "X2 X3 + 0.5*Y0"]
    whole = c.expval(theta, H, shots=64, seed=4)
    _, whole_grads = c.value_and_grad(theta, H[1], shots=64, seed=4)
    monkeypatch.setattr(run_module, "CHUNK_BYTES", 2**4 * 8 * 3)  # 3 samples a chunk
    assert torch.equal(c.expval(theta, H, shots=64, seed=4), whole)
    assert torch.equal(c.value_and_grad(theta, H[1], shots=64, seed=4)[1], whole_grads)
    assert torch.equal(c.expval(theta[:7], H, shots=64, seed=4), whole[:7])  # a row's samples do not depend on the batch
    assert not torch.equal(c.expval(theta, H, shots=64, seed=5), whole)
    # a batch split across ranks or calls: each part says where it starts
    parts = [c.value_and_grad(theta[a:b], H[1], shots=64, seed=4, first_row=a)[1] for a, b in [(0, 20), (20, 21), (21, 50)]]
    assert torch.equal(torch.cat(parts), whole_grads)
    assert torch.equal(c.expval(theta[30:], H, shots=64, seed=4, first_row=30), whole[30:])


def test_seed_none_follows_torchs_global_generator():
    c = Circuit(1).ry(0, "a")
    theta = torch.full((20, 1), 1.0)
    torch.manual_seed(0)
    first = c.expval(theta, "Z0", shots=10)
    torch.manual_seed(0)
    assert torch.equal(c.expval(theta, "Z0", shots=10), first)


def test_a_deterministic_outcome_is_estimated_exactly():
    c = Circuit(2).x(1).ry(0, "a")
    values, grads, (value_err, grad_err) = c.value_and_grad(torch.tensor([0.0]), "Z0 - 2*Z1 + 1", shots=7, seed=0, return_stderr=True)
    assert values.item() == 4.0 and value_err.item() == 0.0


def test_per_sample_gates_and_several_observables_keep_their_shapes():
    c = Circuit(2).ry(0, "a").pauli_rot(1, "b", torch.tensor([0, 1, 2]))
    out = c.expval(torch.tensor([0.3, 0.5]), ["Z0", "Z1", "X0 Z1"], shots=16, seed=1)
    assert out.shape == (3, 3)
    values, grads = c.value_and_grad(torch.tensor([0.3, 0.5]), "Z1", shots=16, seed=1)
    assert values.shape == (3,) and grads.shape == (3, 2)


def test_uniforms_are_keyed_by_row_stream_and_group():
    rows = np.arange(5)
    base = shot_uniforms(1, rows, 0, 0, 100)
    assert base.shape == (5, 100) and (base >= 0).all() and (base < 1).all()
    assert np.array_equal(shot_uniforms(1, rows[2:], 0, 0, 100), base[2:])
    for other in (shot_uniforms(2, rows, 0, 0, 100), shot_uniforms(1, rows, 1, 0, 100), shot_uniforms(1, rows, 0, 1, 100)):
        assert not np.isclose(other, base).any()
    many = shot_uniforms(123, np.arange(200), 3, 2, 500).ravel()
    assert abs(many.mean() - 0.5) < Z * math.sqrt(1 / 12 / many.size)
    counts = np.histogram(many, bins=10, range=(0, 1))[0]
    assert abs(counts - many.size / 10).max() < Z * math.sqrt(many.size / 10)


@pytest.mark.parametrize("shots", [0, -3, 2.5, True, "100", 1e3])
def test_bad_shots_are_refused_by_name(shots):
    c = Circuit(1).ry(0, "a")
    with pytest.raises(ValueError, match=r"shots must be a positive int \(or None for exact values\), got"):
        c.expval(torch.zeros(1), "Z0", shots=shots)
    with pytest.raises(ValueError, match="shots must be a positive int"):
        c.value_and_grad(torch.zeros(1), "Z0", shots=shots)


def test_shots_with_a_cost_that_is_not_a_pauli_sum_are_refused():
    c = Circuit(1).ry(0, "a")
    target = torch.tensor([1, 0], dtype=torch.complex64)
    with pytest.raises(ValueError, match="a target state's infidelity is not a Pauli sum"):
        c.value_and_grad(torch.zeros(1), target, shots=10)
    with pytest.raises(ValueError, match="a callable cost is not a Pauli sum"):
        c.value_and_grad(torch.zeros(1), lambda states: states.abs().sum(-1), shots=10)
    with pytest.raises(ValueError, match="first_row must be a non-negative int"):
        c.expval(torch.zeros(1), "Z0", shots=10, first_row=-2)
    with pytest.raises(ValueError, match="first_row=4 keys shot sampling, but shots is None"):
        c.value_and_grad(torch.zeros(1), "Z0", first_row=4)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        c.expval(torch.zeros(1), "Z0", shots=10, seed=-1)
    with pytest.raises(ValueError, match="seed=3 keys shot sampling, but shots is None"):
        c.expval(torch.zeros(1), "Z0", seed=3)


def test_shot_gradients_of_controlled_phase_parameters_are_unbiased():
    """cp's second and third half-angle rotations carry cost frequency 0 (the first carries the gate's degree),
    but shifting them alone still changes a cost: every slot but a global phase is shifted (a regression: the
    phase arguments of cp, cu3 and cu were hundreds of standard errors off, with and without noise)."""
    from qtrain.noise import NoiseModel

    c = Circuit(2).h(0).h(1).cp(0, 1, "a").cu3(1, 0, "t", "b", "l").cu(0, 1, "t2", "b2", "l2", "g").ry(0, "y")
    theta = torch.rand(3, c.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 6
    obs = "X0 + 0.5 Y1 + Z0 X1"
    for noise in (None, NoiseModel(depolarizing=0.02)):
        _, exact = c.value_and_grad(theta, obs, noise=noise)
        _, estimate, (_, err) = c.value_and_grad(theta, obs, noise=noise, shots=20000, seed=1, return_stderr=True)
        z = (estimate - exact) / err
        assert z.abs().max() < 6, (noise, z)
        assert (exact[:, [0, 2, 3, 5, 6]].abs() > 1e-3).any()  # the phase parameters do move this cost
