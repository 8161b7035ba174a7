"""CUDA parity: the same circuits on the GPU as on the CPU. Skipped without CUDA."""

import numpy as np
import pytest
import torch

from qtrain import QuantumLayer
from qtrain.builders import encoder_circuit
from tests.circuits import random_circuit, random_theta

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("dtype,tol", [(torch.complex128, 1e-10), (torch.complex64, 1e-5)])
def test_random_circuit_on_cuda_matches_reference(rng, dtype, tol):
    rc = random_circuit(rng, 5, n_gates=60, batch=4)
    theta = random_theta(rng, rc.circuit, batch=4)
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    got = rc.circuit.state(torch.tensor(theta, dtype=real, device="cuda"), dtype=dtype)
    assert got.device.type == "cuda"
    assert np.abs(got.cpu().numpy() - rc.reference_states(theta)).max() < tol


@pytest.mark.parametrize("diff_method", ["backprop", "adjoint"])
def test_gradients_on_cuda_match_cpu(rng, diff_method):
    rc = random_circuit(rng, 4, n_gates=50, batch=3)
    theta = random_theta(rng, rc.circuit, batch=3)
    grads = []
    for device in ("cpu", "cuda"):
        t = torch.tensor(theta, device=device, requires_grad=True)
        rc.circuit.expval(t, "Z0 Z1 + 0.5*X2", diff_method=diff_method).sum().backward()
        grads.append(t.grad.cpu())
    assert torch.allclose(grads[0], grads[1], atol=1e-10)


def test_quantum_layer_moves_to_cuda():
    layer = QuantumLayer(encoder_circuit(), ["Z0", "Z1"], inputs=["x0", "x1"]).to("cuda")
    x = torch.randn(4, 2, device="cuda")
    out = layer(x)
    assert out.device.type == "cuda" and out.shape == (4, 2)
    assert torch.allclose(out.cpu(), layer.cpu()(x.cpu()), atol=1e-5)
