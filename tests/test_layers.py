"""QuantumLayer as a torch module: shapes, init, state_dict, hybrid training."""

import math

import pytest
import torch
from torch import nn

from qtrain import Circuit, QuantumLayer
from qtrain.builders import encoder_circuit
from qtrain.engine.conventions import AUTO_ADJOINT_QUBITS, resolve_diff_method


def test_forward_shape_and_weights():
    layer = QuantumLayer(encoder_circuit(3), ["Z0", "Z1", "X2"], inputs=["x0", "x1", "x2"])
    assert layer.weight.shape == (12,)
    assert layer.weight_names[0] == "w0_0"
    out = layer(torch.randn(5, 3))
    assert out.shape == (5, 3)
    assert out.abs().max() <= 1 + 1e-6


def test_matches_circuit_with_assembled_theta():
    circuit = encoder_circuit(2)
    layer = QuantumLayer(circuit, ["Z0 Z1"], inputs=["x0", "x1"], dtype=torch.complex128)
    x = torch.randn(4, 2, dtype=torch.float64)
    theta = torch.empty(4, circuit.n_params, dtype=torch.float64)
    for i, name in enumerate(circuit.parameters):
        theta[:, i] = x[:, int(name[1])] if name.startswith("x") else layer.weight[layer.weight_names.index(name)].detach()
    assert torch.allclose(layer(x)[:, 0], circuit.expval(theta, "Z0 Z1"), atol=1e-12)


@pytest.mark.parametrize("init,bound", [("uniform", math.pi), ("small", 0.05), ("zeros", 0.0)])
def test_init(init, bound):
    layer = QuantumLayer(encoder_circuit(3, n_layers=8), ["Z0"], inputs=["x0", "x1", "x2"], init=init, init_width=0.05)
    w = layer.weight.detach()
    assert w.abs().max() <= bound
    if init != "zeros":
        assert w.abs().max() > 0.6 * bound  # uses the range it claims (48 draws)


def test_init_is_seeded():
    make = lambda: QuantumLayer(encoder_circuit(), ["Z0"], inputs=["x0", "x1"], generator=torch.Generator().manual_seed(7))
    assert torch.equal(make().weight, make().weight)


def test_state_dict_round_trip():
    a = QuantumLayer(encoder_circuit(), ["Z0"], inputs=["x0", "x1"])
    b = QuantumLayer(encoder_circuit(), ["Z0"], inputs=["x0", "x1"], init="zeros")
    b.load_state_dict(a.state_dict())
    x = torch.randn(3, 2)
    assert torch.equal(a(x), b(x))
    assert set(a.state_dict()) == {"weight"}


def test_theta_override_gives_a_batch_of_weights():
    circuit = Circuit(2).rx(0, "a").ry(1, "b").cz(0, 1)
    layer = QuantumLayer(circuit, ["Z0", "Z1"])
    grid = torch.rand(6, 2)
    assert torch.allclose(layer(theta=grid), circuit.expval(grid, ["Z0", "Z1"]))
    assert layer().shape == (1, 2)


def test_adjoint_layer_gradients_equal_backprop():
    x = torch.randn(4, 2, dtype=torch.float64)
    grads = []
    for method in ("backprop", "adjoint"):
        layer = QuantumLayer(encoder_circuit(), ["Z0", "X1"], inputs=["x0", "x1"], diff_method=method, dtype=torch.complex128, generator=torch.Generator().manual_seed(3))
        xi = x.clone().requires_grad_(True)
        layer(xi).sum().backward()
        grads.append((layer.weight.grad, xi.grad))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-12)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-12)


def two_blobs(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.randint(0, 2, (n,), generator=generator)
    centers = torch.tensor([[-1.0, -0.5], [1.0, 0.8]])
    return centers[labels] + 0.4 * torch.randn(n, 2, generator=generator), labels


def test_hybrid_model_trains():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    x, y = two_blobs(64, gen)
    model = nn.Sequential(
        nn.Linear(2, 2),
        QuantumLayer(encoder_circuit(), ["Z0", "Z1"], inputs=["x0", "x1"], init="small", generator=gen),
        nn.Linear(2, 2),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    accuracy = (model(x).argmax(dim=1) == y).float().mean().item()
    assert accuracy > 0.9


def test_precision_follows_the_weights():
    circuit = encoder_circuit(2)
    x = torch.randn(5, 2, dtype=torch.float64)
    single = QuantumLayer(circuit, ["Z0", "X1"], inputs=["x0", "x1"], generator=torch.Generator().manual_seed(4))
    double = QuantumLayer(circuit, ["Z0", "X1"], inputs=["x0", "x1"], dtype=torch.complex128, generator=torch.Generator().manual_seed(4))
    model = nn.Sequential(nn.Linear(2, 2), single, nn.Linear(2, 1)).double()  # as for any torch model
    assert single.weight.dtype == torch.float64 and single.dtype == torch.complex128
    assert model(x).dtype == torch.float64
    with torch.no_grad():
        double.weight.copy_(single.weight)
    assert torch.allclose(single(x), double(x), atol=1e-12, rtol=0)
    model.float()
    assert single.dtype == torch.complex64 and model(x.float()).dtype == torch.float32
    single.to(torch.float64)
    assert single(x).dtype == torch.float64


def test_unbatched_input_and_vmap():
    layer = QuantumLayer(encoder_circuit(2), ["Z0", "Z1"], inputs=["x0", "x1"], dtype=torch.complex128)
    x = torch.randn(4, 2, dtype=torch.float64)
    assert layer(x[0]).shape == (2,)
    assert torch.allclose(layer(x[0]), layer(x)[0], atol=1e-12)
    assert torch.allclose(torch.func.vmap(layer)(x), layer(x), atol=1e-12)


@pytest.mark.parametrize("diff_method", ["backprop", "adjoint"])
def test_compiled_hybrid_model_gives_the_eager_outputs(diff_method):
    torch.manual_seed(0)
    layer = QuantumLayer(encoder_circuit(2), ["Z0", "Z1"], inputs=["x0", "x1"], diff_method=diff_method)
    model = nn.Sequential(nn.Linear(2, 2), nn.Tanh(), layer, nn.Linear(2, 2))
    x = torch.randn(8, 2)
    eager = model(x)
    eager.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    compiled = torch.compile(model)(x)
    compiled.sum().backward()
    assert torch.allclose(compiled, eager, atol=1e-6)
    assert all(torch.allclose(p.grad, g, atol=1e-6) for p, g in zip(model.parameters(), grads))


def test_auto_picks_the_adjoint_from_eight_qubits_of_light_cone_and_backprop_below():
    assert resolve_diff_method("auto", AUTO_ADJOINT_QUBITS, needs_tensor_grad=False) == "adjoint"
    assert resolve_diff_method("auto", AUTO_ADJOINT_QUBITS - 1, needs_tensor_grad=False) == "backprop"
    assert resolve_diff_method("auto", 20, needs_tensor_grad=True) == "backprop"  # only autograd differentiates a gate's matrix
    assert resolve_diff_method("backprop", 20, needs_tensor_grad=False) == "backprop"
    with pytest.raises(ValueError, match="'adjiont'"):
        resolve_diff_method("adjiont", 8, needs_tensor_grad=False)


def test_auto_layer_runs_the_adjoint_where_the_cone_is_wide_and_its_gradients_equal_backprop(monkeypatch):
    import qtrain.engine as engine

    calls = []
    real = engine.adjoint_state
    monkeypatch.setattr(engine, "adjoint_state", lambda run: calls.append(run.program.n_qubits) or real(run))
    n = 8
    circuit = encoder_circuit(n)
    x = torch.randn(3, n, dtype=torch.float64)
    grads = {}
    for method in ("auto", "backprop"):
        layer = QuantumLayer(circuit, ["Z0", f"Z{n - 1}"], inputs=[f"x{q}" for q in range(n)], diff_method=method, dtype=torch.complex128, generator=torch.Generator().manual_seed(1))
        xi = x.clone().requires_grad_(True)
        layer(xi).sum().backward()
        grads[method] = (layer.weight.grad, xi.grad)
    assert calls and all(width >= AUTO_ADJOINT_QUBITS for width in calls)
    assert torch.allclose(grads["auto"][0], grads["backprop"][0], atol=1e-12) and torch.allclose(grads["auto"][1], grads["backprop"][1], atol=1e-12)
    calls.clear()
    QuantumLayer(Circuit(n).ry(0, "a").ry(1, "b").cnot(0, 1), ["Z1"])().sum().backward()  # a two-qubit cone: backprop
    assert calls == []
