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


two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")


def test_a_request_that_cannot_fit_one_sample_on_the_gpu_is_refused_with_the_memory_it_needs():
    from qtrain._memory import free_memory
    from qtrain._tasks import barren_plateau
    from tests.test_cli import compose_experiment

    cfg = compose_experiment("barren_plateau", ["device=cuda", "qubits=[40]", "layers=[2]"])
    with pytest.raises(MemoryError, match=r"qubits=40 needs [0-9.]+ TiB for a single sample .* but the memory budget is"):
        barren_plateau.plan(cfg)
    assert barren_plateau.plan(compose_experiment("barren_plateau", ["device=cuda"]))["budget"] <= free_memory("cuda") // 2


@two_gpus
def test_device_cuda_1_keeps_everything_on_that_gpu():
    from qtrain.diagnostics import gradient_variance
    from qtrain.training import train_lr_grid

    circuit = encoder_circuit()
    before = torch.cuda.memory_allocated(0)
    stats = gradient_variance(circuit, samples=16, device="cuda:1")
    result = train_lr_grid(circuit, "Z0", "adam", lrs=[0.1], starts=4, steps=3, device="cuda:1")
    assert torch.cuda.memory_allocated(0) == before and stats.n_samples == 16 and result.cost_history.shape == (4, 1, 4)


@two_gpus
def test_two_gpu_ranks_give_the_one_process_sampler():
    from qtrain.parallel import run_on_ranks
    from tests.test_parallel import sampler

    two = run_on_ranks(sampler, devices=2, device="cuda")
    from qtrain.parallel import Ranks

    alone = sampler(Ranks())
    for L, grads in alone.items():
        torch.testing.assert_close(two[L], grads, atol=1e-12, rtol=0)
