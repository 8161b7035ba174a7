"""The noise-induced barren plateau (Wang et al. 2021, Nat. Commun. 12, 6961), every depth in one sweep.

The circuit: L layers of R_Y then R_Z on every qubit and a CZ chain, every
angle its own parameter, with the noise model's channels after every gate.
The cost is the local Z0 Z1. A depth-L circuit is a prefix of every deeper
one, so the gradient with respect to the first parameter (R_Y on qubit 0 in
layer 1) for every requested depth comes from one sweep: the two
parameter-shifted density matrices (theta_1 +- pi/2) are evolved layer by
layer and measured whenever the depth reaches a requested L;
dC/dtheta_1 = (C+ - C-) / 2 exactly, since the channels do not depend on theta.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch

from qtrain._circuit_data import CircuitData
from qtrain._density import density_plan, evolve, initial_density
from qtrain.circuit import Circuit
from qtrain.engine.conventions import real_dtype
from qtrain.engine.density import density_expval
from qtrain.engine.observables import PauliSum, as_pauli_sum
from qtrain.noise import NoiseModel

__all__ = ["COST", "hea_layer", "min_channels_per_qubit", "noisy_gradients", "wang_slope_bound"]

#: The local cost of the experiment.
COST = "Z0 Z1"


def hea_layer(n_qubits: int) -> Circuit:
    """One layer: R_Y then R_Z on every qubit (parameters y<q>, z<q>), then CZ(q, q+1) for q = 0 .. n-2."""
    layer = Circuit(n_qubits)
    for q in range(n_qubits):
        layer.ry(q, f"y{q}").rz(q, f"z{q}")
    for q in range(n_qubits - 1):
        layer.cz(q, q + 1)
    return layer


def min_channels_per_qubit(n_qubits: int) -> int:
    """k_min: the fewest gates (so channel applications of a uniform model) any qubit gets per layer:
    R_Y, R_Z and its CZs (one at either end of the chain, two inside; none for a lone qubit)."""
    return 2 + (1 if n_qubits >= 2 else 0)


def wang_slope_bound(depolarizing: float, n_qubits: int) -> float:
    """The bound on the slope of ln Var against L: 2 k_min ln q with q = 1 - 4p/3 (-inf at q = 0, 0 at p = 0)."""
    q = 1 - 4 * depolarizing / 3
    return -math.inf if q <= 0 else 2 * min_channels_per_qubit(n_qubits) * math.log(q)


def noisy_gradients(n_qubits: int, layers: Sequence[int], samples: int, seed: int, noise: NoiseModel, *,
                    dtype: torch.dtype = torch.complex128, device: torch.device | str = "cpu", chunk_size: int | None = None,
                    on_layer: Callable[[int], None] | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """dC/dtheta_1 of `samples` random circuits (angles uniform in [0, 2 pi), drawn from `seed`) at every depth
    in `layers`, yielded as (L, (samples,) float64) in increasing L. Chunks of `chunk_size` samples (default
    all) run one after another; the values do not depend on the chunking."""
    depths = sorted(set(int(L) for L in layers))
    device = torch.device(device)
    layer = hea_layer(n_qubits)
    data: CircuitData = layer._snapshot()
    cost = as_pauli_sum(COST)
    plan = density_plan(data, (cost,), noise, False)  # the whole layer: measuring at every depth rules out a light cone
    sums = plan.sums[0]  # readout folded in
    generator = torch.Generator().manual_seed(seed)
    angles = torch.rand(depths[-1], samples, data.n_params, generator=generator, dtype=torch.float64) * (2 * math.pi)
    first = data.parameters.index("y0")
    real = real_dtype(dtype)
    out = {L: torch.empty(samples, dtype=torch.float64) for L in depths}
    chunk = chunk_size or samples
    for start in range(0, samples, chunk):
        stop = min(start + chunk, samples)
        size = stop - start
        rho = initial_density(plan.n_qubits, dtype, device).expand(2 * size, *([2] * (2 * plan.n_qubits)))
        for depth in range(depths[-1]):
            theta = angles[depth, start:stop].repeat(2, 1)  # rows: shifted up, then down
            if depth == 0:
                theta[:size, first] += math.pi / 2
                theta[size:, first] -= math.pi / 2
            rho = evolve(plan, rho, plan.angles(theta.to(real).to(device)))
            if on_layer is not None:
                on_layer(1)
            if depth + 1 in out:
                energy = density_expval(rho, sums, plan.n_qubits).double().cpu()
                out[depth + 1][start:stop] = (energy[:size] - energy[size:]) / 2
    yield from sorted(out.items())
