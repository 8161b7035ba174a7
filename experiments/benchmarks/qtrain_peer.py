"""qtrain as one library of the engine benchmark, with the same interface as
the peers in experiments/benchmarks/peers/, and its state-traffic model."""

from __future__ import annotations

import math

import numpy as np
import torch

from qtrain.builders import mcclean_layer
from qtrain.circuit import Circuit
from qtrain.diagnostics import gradient_samples, resolve_cost
from qtrain.engine import real_dtype


class QtrainPeer:
    name = "qtrain"
    light_cone = True
    mode = (
        "Z0 Z1's light cone only (exact); fused layers in cache-sized chunks; (a) shift rule, 2 no-grad runs; "
        "(b) adjoint, chunk by chunk (value_and_grad); complex64"
    )

    @staticmethod
    def available() -> bool:
        return True

    def __init__(self, axes: np.ndarray, angles: np.ndarray, dtype: torch.dtype = torch.complex64) -> None:
        layers, n, _ = axes.shape
        self.circuit = Circuit(n)
        for q in range(n):
            self.circuit.ry(q, math.pi / 4)
        for layer in range(layers):
            mcclean_layer(self.circuit, layer, torch.as_tensor(axes[layer]))
        real = real_dtype(dtype)
        self.theta = torch.as_tensor(angles, dtype=real)
        self.dtype = dtype
        self.cost = resolve_cost("global", n)
        self.plan = self.circuit.plan_summary(  # lowers (and cuts the light cone) once, outside the timed work
            self.theta.shape[0], dtype=dtype, observable=self.cost if self.light_cone else None
        )

    def grad_first(self) -> np.ndarray:
        return gradient_samples(self.circuit, self.theta, self.cost, 0, self.dtype, self.light_cone).double().numpy()

    def grad_all(self) -> np.ndarray:
        return gradient_samples(self.circuit, self.theta, self.cost, None, self.dtype, self.light_cone).double().numpy()

    def traffic_bytes(self) -> tuple[float, float]:
        """Bytes of state that qtrain's passes read and write for (a), two
        no-grad runs, and (b), the adjoint value and gradient, from the plan's
        public summary (`Circuit.plan_summary`)."""
        return 2 * self.plan.forward_bytes, self.plan.value_and_grad_bytes


class QtrainFullRegister(QtrainPeer):
    """qtrain running every gate on all n qubits: the engine's own speed."""

    name = "qtrain-full"
    light_cone = False
    mode = "every gate on all n qubits (light_cone=False); otherwise as qtrain"
