"""Circuit builders for the experiments qtrain reproduces."""

from __future__ import annotations

import math

import torch

from qtrain.circuit import Circuit


def mcclean_circuit(n_qubits: int, n_layers: int, n_samples: int, seed: int = 0, device: torch.device | str = "cpu") -> Circuit:
    """McClean et al. (2018) random parameterized circuit, S circuits in one batch.

    R_Y(pi/4) on every qubit (fixed), then `n_layers` layers of a rotation about
    a random Pauli axis on every qubit followed by CZ on (0,1), (1,2), ....
    The axes are drawn per sample from `seed`, so the batch holds `n_samples`
    different random circuits; the angles are the parameters
    "theta_<layer>_<qubit>", in layer-major order (theta_0_0 is the paper's
    theta_{1,1}). Draw them with `mcclean_angles`.
    """
    if n_qubits < 1 or n_layers < 1 or n_samples < 1:
        raise ValueError(f"need n_qubits, n_layers, n_samples >= 1, got {n_qubits}, {n_layers}, {n_samples}")
    gen = torch.Generator().manual_seed(seed)
    axes = torch.randint(0, 3, (n_layers, n_qubits, n_samples), generator=gen).to(device)
    c = Circuit(n_qubits)
    for q in range(n_qubits):
        c.ry(q, math.pi / 4)
    for layer in range(n_layers):
        for q in range(n_qubits):
            c.pauli_rot(q, f"theta_{layer}_{q}", axes[layer, q])
        for q in range(n_qubits - 1):
            c.cz(q, q + 1)
    return c


def mcclean_angles(circuit: Circuit, n_samples: int, seed: int = 0, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """Angles uniform on [0, 2 pi), (n_samples, n_params), from `seed`."""
    gen = torch.Generator().manual_seed(seed)
    return (2 * math.pi * torch.rand(n_samples, circuit.n_params, generator=gen, dtype=torch.float64)).to(dtype=dtype, device=device)


def encoder_circuit(n_qubits: int = 2, n_layers: int = 2) -> Circuit:
    """Angle encoding (ry by x_q) then trainable ry/rz layers and a CNOT chain."""
    c = Circuit(n_qubits)
    for q in range(n_qubits):
        c.ry(q, f"x{q}")
    for layer in range(n_layers):
        for q in range(n_qubits):
            c.ry(q, f"w{layer}_{q}").rz(q, f"v{layer}_{q}")
        for q in range(n_qubits - 1):
            c.cnot(q, q + 1)
    return c
