"""Pauli-sum parsing and expectation values against dense matrices."""

import numpy as np
import pytest
import torch

from qtrain import PauliString, PauliSum
from qtrain.engine.observables import expval, expvals, infidelity
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
