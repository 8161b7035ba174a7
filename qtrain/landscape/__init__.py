"""Landscapes on parameter grids and their deceptiveness.

    from qtrain.landscape import deceptiveness
    r = deceptiveness(circuit, cost, resolution=360, tol=1e-3, rule="gradient", method="fourier")
    r.ratio, r.n_minima, r.global_min, r.mask, r.terminal, r.values, r.grad_norm
"""

from __future__ import annotations

import torch

from qtrain.circuit import Circuit
from qtrain.engine.observables import Observable
from qtrain.landscape.deceptive import (
    RULES,
    Deceptiveness,
    analyse_grid,
    check_tol,
    classify,
    finite_difference_grad_norm,
    successors,
    terminals,
)
from qtrain.landscape.grid import (
    METHODS,
    Landscape,
    check_grid,
    fourier_coefficients,
    grid_axis,
    sample_landscape,
)


def deceptiveness(
    circuit: Circuit,
    cost: Observable | torch.Tensor = "global",
    resolution: int = 360,
    tol: float = 1e-3,
    rule: str = "gradient",
    method: str = "auto",
    *,
    relative: bool = False,
    memory_budget: int | str | None = None,
) -> Deceptiveness:
    """Sample `circuit`'s cost on the R^d grid (exact gradients) and measure
    how much of it descends to a non-global local minimum. `cost` is an
    observable string, a PauliSum, or a target state (infidelity)."""
    check_tol(tol)
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    landscape = sample_landscape(circuit, cost, resolution, method, memory_budget=memory_budget)
    return analyse_grid(landscape.values, landscape.grads, tol=tol, rule=rule, relative=relative)


__all__ = [
    "METHODS",
    "RULES",
    "Deceptiveness",
    "Landscape",
    "analyse_grid",
    "check_grid",
    "check_tol",
    "classify",
    "deceptiveness",
    "finite_difference_grad_norm",
    "fourier_coefficients",
    "grid_axis",
    "sample_landscape",
    "successors",
    "terminals",
]
