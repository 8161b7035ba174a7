"""Pauli-sum parsing and expectation values against dense matrices."""

import numpy as np
import pytest
import torch

from qtrain import PauliString, PauliSum
from qtrain.engine import observables
from qtrain.engine.observables import ExpvalCost, InfidelityCost, expval, expvals, infidelity
from tests import reference


def _random_state(rng, n, batch):
    psi = rng.normal(size=(batch, 2**n)) + 1j * rng.normal(size=(batch, 2**n))
    return psi / np.linalg.norm(psi, axis=1, keepdims=True)


@pytest.mark.parametrize(
    "text,terms",
    [
        ("Z0 Z1", [(1.0, ((0, "Z"), (1, "Z")))]),
        ("0.5*Z0 Z1 - 0.3*Y0 Y2 + X2", [(0.5, ((0, "Z"), (1, "Z"))), (-0.3, ((0, "Y"), (2, "Y"))), (1.0, ((2, "X"),))]),
        ("-Z0 + 2", [(-1.0, ((0, "Z"),)), (2.0, ())]),
        ("1e-3*X1Y0", [(1e-3, ((0, "Y"), (1, "X")))]),
        ("2 Z3", [(2.0, ((3, "Z"),))]),
        ("I0 Z1", [(1.0, ((1, "Z"),))]),
    ],
)
def test_parse(text, terms):
    parsed = PauliSum.parse(text)
    assert [(t.coeff, t.paulis) for t in parsed.terms] == terms


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "must be a non-empty string, got ''"),
        ("Z0 Z0", r"\(\(0, 'Z'\), \(0, 'Z'\)\) acts twice on one qubit"),
        ("Q1", "cannot parse observable 'Q1' at position 0: 'Q1'"),
        ("Z0 +", r"cannot parse observable 'Z0 \+' at position 3: '\+'"),
        ("Z0 Z1 X", "cannot parse observable 'Z0 Z1 X' at position 6: 'X'"),
        ("Z0 2*Z1", r"observable 'Z0 2\*Z1': expected '\+' or '-' before '2\*Z1'"),
        ("0.5*", r"cannot parse observable '0.5\*' at position 0: '0.5\*'"),
    ],
)
def test_parse_rejects(text, message):
    """Each refusal says what is wrong and where (the position and the rest of the text)."""
    with pytest.raises(ValueError, match=message):
        PauliSum.parse(text)


def test_bad_observable_type():
    with pytest.raises(TypeError, match="observable"):
        expval(torch.ones(1, 2, dtype=torch.complex64), 3.0)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_expval_matches_dense(rng, n):
    psi = _random_state(rng, n, batch=4)
    state = torch.tensor(psi).reshape(4, *([2] * n))
    for _ in range(6):
        k = int(rng.integers(1, n + 1))
        qubits = rng.choice(n, size=k, replace=False)
        factors = {int(q): str(rng.choice(list("XYZ"))) for q in qubits}
        coeff = float(rng.normal())
        observable = PauliString(tuple(factors.items()), coeff)
        got = expval(state, observable).numpy()
        expected = [reference.expval(p, [(coeff, factors)]) for p in psi]
        assert np.abs(got - expected).max() < 1e-12


def test_expval_of_a_sum_and_several_observables(rng):
    psi = _random_state(rng, 3, batch=2)
    state = torch.tensor(psi).reshape(2, 2, 2, 2)
    text = "0.5*Z0 Z1 - 0.3*Y0 Y2 + X2 + 0.25"
    terms = [(0.5, {0: "Z", 1: "Z"}), (-0.3, {0: "Y", 2: "Y"}), (1.0, {2: "X"}), (0.25, {})]
    expected = [reference.expval(p, terms) for p in psi]
    assert np.abs(expval(state, text).numpy() - expected).max() < 1e-12
    both = expvals(state, [text, "Z2"])
    assert both.shape == (2, 2)
    assert np.abs(both[:, 1].numpy() - [reference.expval(p, [(1.0, {2: "Z"})]) for p in psi]).max() < 1e-12


@pytest.mark.parametrize("n", [1, 3, 6])
def test_diagonal_terms_summed_into_one_eigenvalue_vector_match_the_reference(rng, n, monkeypatch):
    """Z-only terms (with an identity and a mixed term beside them) through the cached eigenvalue vector, against
    the dense reference and against each term's own marginal sum (the path above COMBINED_DIAGONAL_QUBITS)."""
    psi = _random_state(rng, n, batch=3)
    state = torch.tensor(psi).reshape(3, *([2] * n))
    terms = [(0.7, {0: "Z"}), (-1.3, {q: "Z" for q in range(n)}), (0.25, {}), (0.4, {n - 1: "X"})]
    text = PauliSum(tuple(PauliString(tuple(f.items()), c) for c, f in terms))
    expected = [reference.expval(p, terms) for p in psi]
    combined = expval(state, text)
    assert np.abs(combined.numpy() - expected).max() < 1e-12
    monkeypatch.setattr(observables, "COMBINED_DIAGONAL_QUBITS", 0)
    torch.testing.assert_close(expval(state, text), combined, atol=1e-13, rtol=0)


def test_expval_cost_gives_autograds_cotangent_or_none(rng, monkeypatch):
    """ExpvalCost.value_and_cotangent: the values and PyTorch's gradient of the values' sum with respect to the
    complex states, without autograd, for diagonal observables; None (the caller's autograd) for any other, or
    above COMBINED_DIAGONAL_QUBITS."""
    n = 4
    state = torch.tensor(_random_state(rng, n, batch=5)).reshape(5, *([2] * n))
    cost = ExpvalCost(PauliSum.parse("0.5*Z0 Z2 - Z3 + 0.1"))
    values, cotangent = cost.value_and_cotangent(state)
    leaf = state.clone().requires_grad_(True)
    expected = cost(leaf)
    (grad,) = torch.autograd.grad(expected.sum(), leaf)
    torch.testing.assert_close(values, expected.detach(), atol=1e-13, rtol=0)
    torch.testing.assert_close(cotangent, grad, atol=1e-13, rtol=0)
    assert ExpvalCost(PauliSum.parse("Z0 + X1")).value_and_cotangent(state) is None
    monkeypatch.setattr(observables, "COMBINED_DIAGONAL_QUBITS", n - 1)
    assert cost.value_and_cotangent(state) is None


@pytest.mark.parametrize("rows", [None, 5])
def test_infidelity_cost_gives_autograds_cotangent(rng, rows):
    """InfidelityCost.value_and_cotangent against autograd through `infidelity`: one target, or one per state; a
    target of the wrong size answers None (autograd then raises infidelity's error)."""
    n = 3
    state = torch.tensor(_random_state(rng, n, batch=5)).reshape(5, *([2] * n))
    target = torch.tensor(_random_state(rng, n, batch=rows or 1))
    cost = InfidelityCost(target if rows else target[0])
    values, cotangent = cost.value_and_cotangent(state)
    leaf = state.clone().requires_grad_(True)
    expected = cost(leaf)
    (grad,) = torch.autograd.grad(expected.sum(), leaf)
    torch.testing.assert_close(values, expected.detach(), atol=1e-13, rtol=0)
    torch.testing.assert_close(cotangent, grad, atol=1e-13, rtol=0)
    assert InfidelityCost(torch.ones(4, dtype=torch.complex128) / 2).value_and_cotangent(state) is None


def test_parsing_is_cached_and_errors_are_not():
    """A training loop passes the same text each step: parsed once; a bad text raises every time."""
    assert PauliSum.parse("Z0 + 0.5*X1 Y2") is PauliSum.parse("Z0 + 0.5*X1 Y2")
    for _ in range(2):
        with pytest.raises(ValueError, match="cannot parse"):
            PauliSum.parse("Z0 Q")


def test_infidelity(rng):
    psi, target = _random_state(rng, 3, 2), _random_state(rng, 3, 1)[0]
    state = torch.tensor(psi).reshape(2, 2, 2, 2)
    got = infidelity(state, torch.tensor(target)).numpy()
    expected = 1 - np.abs(psi @ target.conj()) ** 2
    assert np.abs(got - expected).max() < 1e-12
    assert infidelity(torch.tensor(target).reshape(1, 2, 2, 2), torch.tensor(target)).item() == pytest.approx(0, abs=1e-12)


def test_infidelity_rejects_wrong_target_size():
    with pytest.raises(ValueError, match=r"target state has shape \(4,\)"):
        infidelity(torch.ones(1, 2, 2, 2, dtype=torch.complex64), torch.ones(4))
