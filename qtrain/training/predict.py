"""The landscape's prediction of each start's outcome (d <= 3): the start's
nearest grid point descends (the deceptiveness analysis' successor rule) to a
grid terminal; that terminal is polished to its basin's continuous minimum;
the start is predicted to succeed when that minimum's cost is <= C* + tol,
the same test and the same C* its training is judged by (`grid.score`).

Why polish: a grid terminal lies above its basin's continuous minimum by up to
the cost's curvature times half a grid spacing squared (measured on the
default circuit, k = 1..4, 1000 starts' terminals: 3e-5 to 1.0e-3 at R = 90,
6e-4 to 7e-3 at R = 36), as much as tol, while training ends at the
continuous minimum. Comparing grid values with C* + tol would call a global
basin deceptive whenever its grid point happens to sit more than tol above
the bottom.

How: batched, monotone, normalized gradient descent in float64 (complex128
states), one step length per terminal: a step of length h along -g/|g| is
taken only when it lowers the cost (then h doubles, up to half a grid
spacing), else h halves; it stops when every h is below `STEP_FLOOR`. Never
raising the cost and never stepping more than half a spacing keeps each
terminal in its own basin (a terminal is lower than all its grid neighbours;
where the grid saw a minimum the continuous cost does not have, the polish
follows the descent on, as training would: on the default circuit at k = 3,
one terminal drops 0.22), and one batched adjoint pass per iteration polishes
every distinct terminal at once. L-BFGS would converge in fewer steps, but
its line search couples the rows of a batch (one step length for all) and
would need one run per terminal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from qtrain.circuit import Circuit

__all__ = ["Prediction", "polish", "predict"]

#: a polished terminal stops moving once its step length falls below this (radians)
STEP_FLOOR = 1e-10
#: at most this many iterations (measured, every grid terminal of the default circuit at R = 90, k = 1..4: within 1e-13 of
#: the converged cost after 200, and 300 from random points)
MAX_ITERATIONS = 500


@dataclass(frozen=True)
class Prediction:
    """cost: (B,) float64, each start's polished terminal cost; minimum: (B, d)
    float64, where its polish ended; landscape_min: the lowest polished cost
    (the grid minimum's basin included), the landscape's estimate of C*."""

    cost: torch.Tensor
    minimum: torch.Tensor
    landscape_min: float


def predict(circuit: Circuit, cost: Any, landscape: Any, theta0: torch.Tensor) -> Prediction:
    """Each start of `theta0` (B, d) -> its nearest grid point's terminal in
    `landscape` (a `Deceptiveness`), polished to the continuous minimum."""
    resolution = landscape.values.shape[0]
    index = torch.round((theta0.double() + math.pi) * resolution / (2 * math.pi)).long() % resolution  # (B, d): nearest grid point
    terminal = landscape.terminal[tuple(index.T)]  # (B,) flat grid index of the terminal it descends to
    lowest = torch.argmin(landscape.values.reshape(-1)).reshape(1)  # polished too, so that C* never rests on a grid value
    distinct, start_row = torch.unique(torch.cat([terminal, lowest]), return_inverse=True)
    coords = torch.stack([(distinct // resolution**a) % resolution for a in reversed(range(theta0.shape[1]))], dim=1)  # (M, d), C order
    points = -math.pi + 2 * math.pi * coords.double() / resolution
    minimum, values = polish(circuit, cost, points, max_step=math.pi / resolution)
    rows = start_row[:-1]
    return Prediction(values[rows], minimum[rows], values.min().item())


def polish(
    circuit: Circuit, cost: Any, points: torch.Tensor, max_step: float, iterations: int = MAX_ITERATIONS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Monotone normalized gradient descent from every row of `points` (M, d)
    at once -> (where each ended (M, d), its cost (M,)), float64."""
    theta = points.double().clone()
    value, grad = circuit.value_and_grad(theta, cost, dtype=torch.complex128)
    step = torch.full_like(value, max_step / 4)  # (M,): each terminal's own step length
    for _ in range(iterations):
        active = (step >= STEP_FLOOR).nonzero().squeeze(1)  # rows still moving: the others are not evaluated again
        if active.numel() == 0:
            break
        g = grad[active]
        direction = g / g.norm(dim=1, keepdim=True).clamp_min(1e-300)  # a zero gradient stays put and only shrinks its step
        trial = theta[active] - step[active].unsqueeze(1) * direction
        trial_value, trial_grad = circuit.value_and_grad(trial, cost, dtype=torch.complex128)
        better = trial_value < value[active]
        keep = active[better]
        theta[keep], value[keep], grad[keep] = trial[better], trial_value[better], trial_grad[better]
        step[active] = torch.where(better, (2 * step[active]).clamp_max(max_step), step[active] / 2)
    return theta, value
