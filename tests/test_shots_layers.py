"""QuantumLayer with shots: estimates, their parameter-shift gradient, seeds, bad input."""

import pytest
import torch

from qtrain import Circuit, QuantumLayer
from qtrain.builders import encoder_circuit


def _layer(**kwargs):
    return QuantumLayer(encoder_circuit(2), ["Z0 Z1"], inputs=["x0", "x1"], dtype=torch.complex128,
                        generator=torch.Generator().manual_seed(1), **kwargs)


def _theta(layer, x):
    """The circuit's theta (B, P) that the layer assembles from data and weights."""
    return torch.cat([x, layer.weight.detach().expand(x.shape[0], -1)], dim=1)[:, layer.order]


@pytest.mark.parametrize("shots", [0, -5, 2.5, True, "100"])
def test_bad_shots_are_refused_at_construction(shots):
    with pytest.raises(ValueError, match=f"shots must be a positive int .*got {shots!r}"):
        _layer(shots=shots)


def test_bad_seed_is_refused_and_so_is_a_bad_shots_set_later():
    with pytest.raises(ValueError, match="seed must be a non-negative int .*got -1"):
        _layer(shots=10, seed=-1)
    with pytest.raises(ValueError, match="seed=3 seeds shot sampling, but shots is None"):
        _layer(seed=3)
    layer = _layer(shots=10)
    with pytest.raises(ValueError, match="shots must be a positive int .*got 0"):
        layer.shots = 0
    assert layer.shots == 10


def test_fixed_seed_gives_the_circuits_estimates_and_its_parameter_shift_gradient():
    layer = _layer(shots=50, seed=7)
    x = torch.rand(6, 2, dtype=torch.float64)
    out = layer(x)
    out.sum().backward()
    theta = _theta(layer, x)
    values, grads = layer.circuit.value_and_grad(theta, "Z0 Z1", shots=50, seed=7)
    assert torch.equal(out[:, 0], layer.circuit.expval(theta, "Z0 Z1", shots=50, seed=7))
    assert torch.allclose(out[:, 0], values)
    weights = [layer.circuit.parameters.index(n) for n in layer.weight_names]
    assert torch.allclose(layer.weight.grad, grads[:, weights].sum(dim=0))
    assert torch.equal(layer(x), out.detach())  # the seed is reused: same numbers every call
    exact = layer.circuit.expval(theta, "Z0 Z1")
    assert (out[:, 0] - exact).abs().max() > 0  # they are estimates, not the exact values


def test_no_seed_draws_a_fresh_one_per_call_from_torchs_generator():
    layer = _layer(shots=50)
    x = torch.rand(6, 2, dtype=torch.float64)
    torch.manual_seed(3)
    first, second = layer(x), layer(x)
    assert not torch.equal(first, second)  # each training step sees new samples
    torch.manual_seed(3)
    assert torch.equal(layer(x), first) and torch.equal(layer(x), second)


def test_shot_gradient_is_unbiased():
    layer = _layer(shots=100)
    x = torch.tensor([[0.3, -1.1]], dtype=torch.float64)
    exact_layer = _layer()
    exact_layer(x).sum().backward()
    torch.manual_seed(0)
    grads = []
    for _ in range(300):
        layer.zero_grad()
        layer(x).sum().backward()
        grads.append(layer.weight.grad.clone())
    grads = torch.stack(grads)
    z = (grads.mean(dim=0) - exact_layer.weight.grad) / (grads.std(dim=0) / len(grads) ** 0.5)
    assert z.abs().max() < 4.5  # 8 weights: a 4.5-sigma miss by chance has probability ~5e-5
    assert grads.std(dim=0).max() > 0.01  # and the estimates are noisy


def test_shots_none_is_exact_again():
    layer = _layer(shots=10, seed=1)
    x = torch.rand(3, 2, dtype=torch.float64)
    layer.shots, layer.seed = None, None
    assert torch.equal(layer(x), _layer()(x))
    assert "shots" not in repr(layer)
    assert "shots=10, seed=1" in repr(_layer(shots=10, seed=1))


def test_unbatched_input_with_shots():
    layer = QuantumLayer(Circuit(1).ry(0, "x").rx(0, "w"), ["Z0", "X0"], inputs=["x"], shots=20, seed=0)
    assert layer(torch.tensor([0.4])).shape == (2,)
