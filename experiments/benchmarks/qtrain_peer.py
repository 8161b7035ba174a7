"""qtrain as one library of the engine benchmark, with the same interface as
the peers in experiments/benchmarks/peers/, and its state-traffic model."""

from __future__ import annotations

import math

import numpy as np
import torch

from qtrain.builders import mcclean_layer
from qtrain.circuit import Circuit
from qtrain.diagnostics import gradient_samples, resolve_cost
from qtrain.engine.adjoint import first_rotation
from qtrain.engine.conventions import real_dtype
from qtrain.engine.fusion import Layer
from qtrain.engine.program import Program
from qtrain.engine.simulate import product_prefix, run_widths, sample_chunks


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
        self.run_circuit().program()  # lower once, outside the timed work

    def run_circuit(self) -> Circuit:
        """The circuit the engine actually runs: the cost's light cone, or all of it."""
        return self.circuit._cone([self.cost])[0] if self.light_cone else self.circuit

    def grad_first(self) -> np.ndarray:
        return gradient_samples(self.circuit, self.theta, self.cost, 0, self.dtype, self.light_cone).double().numpy()

    def grad_all(self) -> np.ndarray:
        return gradient_samples(self.circuit, self.theta, self.cost, None, self.dtype, self.light_cone).double().numpy()

    def traffic_bytes(self) -> tuple[float, float]:
        return state_traffic_bytes(self.run_circuit().program(), self.theta.shape[0])


class QtrainFullRegister(QtrainPeer):
    """qtrain running every gate on all n qubits: the engine's own speed."""

    name = "qtrain-full"
    light_cone = False
    mode = "every gate on all n qubits (light_cone=False); otherwise as qtrain"


def state_traffic_bytes(program: Program, samples: int) -> tuple[float, float]:
    """Bytes of state that qtrain's passes read and write for (a) and (b).

    A pass (a fused block's GEMM, a diagonal) reads and writes one state: 2 x
    state bytes. The leading one-qubit layers cost no pass (a product state).
    (a): two runs of the circuit. (b): one run, then, back down to the first
    rotation layer, two undo passes (psi and conj(lambda)) per pass plus one
    overlap read of both states per block holding rotations. Block widths are
    those of the cache-sized chunks the engine runs in.
    """
    n = program.n_qubits
    state = samples * 2**n * 8
    chunk = sample_chunks(samples, 2**n * 8, torch.device("cpu"))[0]
    blocks = len(run_widths(program, chunk.stop - chunk.start, torch.complex64))

    def passes(items) -> int:
        return sum(blocks if isinstance(item, Layer) else 1 for item in items)

    forward = passes(program.plan[product_prefix(program) :])
    start = first_rotation(program)
    backward = passes(program.plan[start:])
    overlap_reads = blocks * sum(isinstance(item, Layer) for item in program.plan[start:])
    return 2 * forward * 2 * state, (forward + 2 * backward) * 2 * state + overlap_reads * 2 * state
