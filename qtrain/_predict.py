"""Predicting the plateau before sampling it: one row per (circuit family, qubits) of what
`qtrain experiment=predict` compares, and one row per (seed, sharing degree) of the sharing study's
circuit with its algebra and its landscape.

The families, each with the observable its variance is about:

- `hea_line`, `hea_ring`: the hardware-efficient ansatz, R_Y and R_Z on every qubit then a CZ line
  (ring); cost Z0 Z1.
- `mcclean`: one draw of McClean et al.'s random circuit (the batch of one, seeded); cost Z0 Z1.
- `free_fermions`: R_Z on every qubit, R_XX on a line; cost Z0 (in the algebra so(2n)).
- `qaoa`: QAOA-like layers with one shared angle per layer and gate kind on a ring, from |+...+>;
  cost the sum of Z Z over the ring's edges (in the algebra).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from qtrain.builders import free_fermion_circuit, hardware_efficient, mcclean_circuit, qaoa_circuit, random_target_state, shared_ansatz
from qtrain.circuit import Circuit
from qtrain.diagnostics.expressibility import entangling_capability, expressibility
from qtrain.diagnostics.lie import lie_algebra, predict_variance
from qtrain.landscape import deceptiveness

__all__ = ["FAMILIES", "WIDE_FAMILIES", "build_family", "family_row", "sampled_variance", "sharing_row", "spearman"]


def _mcclean(n: int, layers: int, seed: int) -> tuple[Circuit, str]:
    return mcclean_circuit(n, layers, 1, seed), "Z0 Z1"


#: The families whose algebra is su(2^n) or a large subalgebra of it: their closure needs max_dim >= 4^n - 1.
WIDE_FAMILIES = ("hea_line", "hea_ring", "mcclean")

#: family name -> builder (qubits, layers, seed) -> (circuit, observable)
FAMILIES: dict[str, Callable[[int, int, int], tuple[Circuit, str]]] = {
    "hea_line": lambda n, layers, seed: (hardware_efficient(n, layers, ("ry", "rz"), "cz", ring=False), "Z0 Z1"),
    "hea_ring": lambda n, layers, seed: (hardware_efficient(n, layers, ("ry", "rz"), "cz", ring=True), "Z0 Z1"),
    "mcclean": _mcclean,
    "free_fermions": lambda n, layers, seed: (free_fermion_circuit(n, layers), "Z0"),
    "qaoa": lambda n, layers, seed: qaoa_circuit(n, layers, ring=True),
}


def build_family(name: str, n: int, layers: int, seed: int) -> tuple[Circuit, str]:
    """The family's circuit at n qubits and `layers` layers, and its observable."""
    return FAMILIES[name](n, layers, seed)


def sampled_variance(circuit: Circuit, observable: str, samples: int, seed: int, chunk: int = 500) -> tuple[float, float, float]:
    """(variance, its standard error from the fourth central moment, mean) of <O> over `samples` uniform
    parameter vectors, exact expectations in complex128."""
    generator = torch.Generator().manual_seed(seed)
    values = []
    with torch.no_grad():
        for start in range(0, samples, chunk):
            size = min(chunk, samples - start)
            theta = torch.rand(size, circuit.n_params, generator=generator, dtype=torch.float64) * (2 * math.pi)
            values.append(circuit.expval(theta, observable))
    v = torch.cat(values)
    centred = v - v.mean()
    var = float(centred.square().mean())
    error = math.sqrt(max(float(centred.pow(4).mean()) - var**2, 0.0) / samples)
    return var, error, float(v.mean())


def family_row(name: str, n: int, layers: int, samples: int, express_samples: int, entangle_samples: int, seed: int, max_dim: int) -> dict[str, Any]:
    """The algebra, the prediction (or why there is none), the sampled variance and Sim et al.'s two measures."""
    start = time.perf_counter()
    circuit, observable = build_family(name, n, layers, seed)
    algebra = lie_algebra(circuit, max_dim)
    closed = time.perf_counter() - start
    predicted, method, note = float("nan"), "none", ""
    for how in ("ideals", "commutant"):
        try:
            predicted, method = predict_variance(circuit, observable, algebra=algebra, method=how), how
            break
        except ValueError as e:  # ideals: outside the algebra; commutant: too wide, or too many unknowns
            note = str(e).removeprefix("predict_variance: ")
    applies = method != "none"
    var, error, mean = sampled_variance(circuit, observable, samples, seed)
    return {
        "family": name, "qubits": n, "layers": layers, "params": circuit.n_params, "observable": observable,
        "dla_dim": algebra.dim, "ideal_dims": "+".join(str(d) for d in algebra.ideal_dims) or "-", "centre_dim": algebra.centre.shape[0],
        "untied": len(algebra.restrictions), "applies": applies, "method": method, "note": "" if applies else note, "predicted_variance": predicted,
        "sampled_variance": var, "sampled_error": error, "z_score": (var - predicted) / error if applies and error > 0 else float("nan"),
        "sampled_mean": mean,
        "expressibility": expressibility(circuit, samples=express_samples, seed=seed),
        "entangling_capability": entangling_capability(circuit, samples=entangle_samples, seed=seed),
        "closure_seconds": round(closed, 3), "seconds": round(time.perf_counter() - start, 2),
    }


def sharing_row(seed: int, sharing: int, qubits: int, params: int, resolution: int, tol: float) -> dict[str, Any]:
    """The sharing study's circuit (seeded axes and Haar target, as in experiment=deceptiveness) at one degree:
    its algebra next to its landscape's deceptiveness."""
    start = time.perf_counter()
    circuit = shared_ansatz(qubits, params, sharing, seed=seed)
    algebra = lie_algebra(circuit)
    result = deceptiveness(circuit, random_target_state(qubits, seed), resolution, tol=tol)
    axes = "".join(op.name[1].upper() for op in circuit.ops if op.params and op.params[0] is not None)[:params]
    return {
        "seed": seed, "sharing": sharing, "axes": axes, "dla_dim": algebra.dim,
        "ideal_dims": "+".join(str(d) for d in algebra.ideal_dims) or "-", "centre_dim": algebra.centre.shape[0],
        "untied": len(algebra.restrictions), "deceptiveness_ratio": result.ratio, "n_minima": result.n_minima,
        "global_basin": result.global_basin, "seconds": round(time.perf_counter() - start, 2),
    }


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    i = 0
    while i < len(values):  # ties share their mean rank
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman's rank correlation (ties at their mean rank); nan when either side is constant or n < 3."""
    if len(x) < 3:
        return float("nan")
    rx, ry = _ranks(np.asarray(x, dtype=float)), _ranks(np.asarray(y, dtype=float))
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])
