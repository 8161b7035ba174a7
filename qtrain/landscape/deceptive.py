"""Deceptiveness of a sampled landscape (SCIENCE.md part B, qtrain's precise
form of Stenzel et al.'s Algorithm 1).

Every grid point p gets a successor: under rule "gradient", p + s with
s = round(-g / |g|_inf) (ties away from zero) when that neighbour is lower,
else the steepest lower neighbour; under rule "steepest", always the steepest
lower neighbour among the 3^d - 1 offsets. A point with no lower neighbour is
its own successor (a terminal: the grid's local minima). Pointer jumping
(t <- t[t]) takes every point to its terminal in O(log path length)
vectorized rounds; strict descent rules out cycles. A point is deceptive when
its terminal's cost exceeds C* + tol, C* the grid minimum.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

__all__ = [
    "RULES", "Deceptiveness", "analyse_grid", "check_tol", "classify", "finite_difference_grad_norm",
    "has_lower_neighbour", "neighbour_offsets", "steepest_neighbour", "successors", "terminals"
]

#: Descent rules (see the module docstring): "gradient" follows the rounded gradient step when it descends, "steepest"
#: always moves to the steepest lower neighbour.
RULES = ("gradient", "steepest")


@dataclass(frozen=True)
class Deceptiveness:
    """ratio: deceptive points / R^d. mask: (R,)*d deceptive points. terminal:
    (R,)*d flat index of each point's terminal. values: the cost grid.
    grad_norm: |g|_2 at every point. global_basin: fraction of points whose
    terminal is global (1 - ratio)."""

    ratio: float
    n_minima: int
    global_min: float
    global_basin: float
    threshold: float
    mask: torch.Tensor
    terminal: torch.Tensor
    values: torch.Tensor
    grad_norm: torch.Tensor
    rule: str
    tol: float
    relative: bool


def neighbour_offsets(d: int) -> list[tuple[int, ...]]:
    """The 3^d - 1 offsets in {-1, 0, 1}^d without the zero offset, in a fixed order."""
    return [o for o in itertools.product((-1, 0, 1), repeat=d) if any(o)]


class _Grid:
    """Per-axis coordinates of every point of a periodic grid (int16), to step
    from points to their neighbours without integer division."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape
        axes = [torch.arange(r, dtype=torch.int16) for r in shape]
        self.coords = torch.stack(torch.meshgrid(*axes, indexing="ij")).reshape(len(shape), -1)  # (d, N)

    def shifted(self, step: torch.Tensor, subset: torch.Tensor | None = None) -> torch.Tensor:
        """Flat index of p + step (periodic) for every point p, or for the
        points `subset`; step is (d,) for one offset or (d, N or M) int8."""
        count = self.coords.shape[1] if subset is None else subset.numel()
        out = torch.zeros(count, dtype=torch.long)
        stride = 1
        for a in reversed(range(len(self.shape))):
            r = self.shape[a]
            coord = (self.coords[a] if subset is None else self.coords[a, subset]).to(torch.int32)
            coord += step[a] if step.dim() == 1 else step[a]
            coord = torch.where(coord < 0, coord + r, torch.where(coord >= r, coord - r, coord))
            out += coord.long() * stride
            stride *= r
        return out


def has_lower_neighbour(values: torch.Tensor) -> torch.Tensor:
    """Whether any of the 3^d - 1 neighbours is strictly lower: the minimum over
    the 3^d cube (a separable min filter, two rolls per axis) is below the point."""
    cube = values
    for axis in range(values.dim()):
        cube = torch.minimum(cube, torch.minimum(torch.roll(cube, 1, axis), torch.roll(cube, -1, axis)))
    return cube < values


def steepest_neighbour(grid: _Grid, values: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Flat index of the lowest of the 3^d - 1 neighbours of each of `points`
    (ties go to the first offset of `neighbour_offsets`). Gathers for a small
    subset of points; whole-grid rolls when most points are asked for."""
    flat_values = values.reshape(-1)
    if 4 * points.numel() > flat_values.numel():
        return _steepest_by_rolls(grid, values)[points]
    best = torch.full((points.numel(),), float("inf"), dtype=flat_values.dtype)
    best_index = points.clone()
    for offset in neighbour_offsets(len(grid.shape)):
        index = grid.shifted(torch.tensor(offset, dtype=torch.int32), points)
        value = flat_values[index]
        lower = value < best
        best = torch.where(lower, value, best)
        best_index = torch.where(lower, index, best_index)
    return best_index


def _steepest_by_rolls(grid: _Grid, values: torch.Tensor) -> torch.Tensor:
    d = values.dim()
    offsets = neighbour_offsets(d)
    best = torch.full_like(values, float("inf"))
    code = torch.zeros(values.shape, dtype=torch.int8)
    for i, offset in enumerate(offsets):
        neighbour = torch.roll(values, shifts=[-o for o in offset], dims=list(range(d)))  # value at p + offset
        lower = neighbour < best
        best = torch.where(lower, neighbour, best)
        code.masked_fill_(lower, i)
    del best
    table = torch.tensor(offsets, dtype=torch.int8).T  # (d, 3^d - 1)
    return grid.shifted(table[:, code.reshape(-1).long()])


def successors(values: torch.Tensor, grads: torch.Tensor, rule: str = "gradient") -> torch.Tensor:
    """Flat successor index of every point (its own index at a terminal)."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    shape, d = tuple(values.shape), values.dim()
    grid = _Grid(shape)
    flat_values = values.reshape(-1)
    need = has_lower_neighbour(values).reshape(-1)  # points that are not terminals
    succ = torch.arange(flat_values.numel())
    if rule == "gradient":
        g = grads.reshape(d, -1)
        scale = g.abs().amax(dim=0)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        step = torch.empty(g.shape, dtype=torch.int8)
        for a in range(d):  # one axis at a time keeps the float temporaries small
            ratio = -g[a] / scale
            step[a] = torch.sign(ratio) * torch.floor(ratio.abs() + 0.5)  # round half away from zero
        candidate = grid.shifted(step)
        take = (step != 0).any(dim=0) & (flat_values[candidate] < flat_values)
        succ = torch.where(take, candidate, succ)
        need &= ~take  # the gradient step overshot (or g = 0): fall back to the steepest lower neighbour
    points = need.nonzero().squeeze(1)
    succ[points] = steepest_neighbour(grid, values, points)
    return succ


def terminals(succ: torch.Tensor) -> torch.Tensor:
    """Follow successors to their fixed points by pointer jumping."""
    t = succ
    while True:
        nxt = t[t]
        if torch.equal(nxt, t):
            return t
        t = nxt


def analyse_grid(values: torch.Tensor, grads: torch.Tensor, tol: float = 1e-3, rule: str = "gradient", relative: bool = False) -> Deceptiveness:
    """Deceptiveness of a periodic grid of costs `values` (R,)*d with exact
    gradients `grads` (d, R, ..., R). tol is absolute, or relative to the
    cost range (max - min) when `relative`."""
    check_tol(tol)
    if grads.shape != (values.dim(), *values.shape):
        raise ValueError(f"grads must have shape {(values.dim(), *values.shape)}, got {tuple(grads.shape)}")
    if min(values.shape) < 3:
        raise ValueError(f"every axis needs at least 3 points, got shape {tuple(values.shape)}")
    values, grads = values.to(torch.float64), grads.to(torch.float64)
    succ = successors(values, grads, rule)
    terminal = terminals(succ)
    return classify(values, grads.pow(2).sum(dim=0).sqrt_(), succ, terminal, tol, rule, relative)


def check_tol(tol: float) -> None:
    """Refuse a negative or NaN tolerance (in the cost's units, or a fraction of its range when relative)."""
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")


def classify(values: torch.Tensor, grad_norm: torch.Tensor, succ: torch.Tensor, terminal: torch.Tensor, tol: float, rule: str, relative: bool) -> Deceptiveness:
    """The tolerance step: which terminals are global, and the ratio. Cheap, so
    one successor analysis serves every tolerance."""
    check_tol(tol)
    flat = values.reshape(-1)
    low, high = flat.min().item(), flat.max().item()
    threshold = low + (tol * (high - low) if relative else tol)
    deceptive = flat[terminal] > threshold
    ratio = deceptive.double().mean().item()
    return Deceptiveness(
        ratio=ratio,
        n_minima=int((succ == torch.arange(flat.numel())).sum()),
        global_min=low,
        global_basin=1.0 - ratio,
        threshold=threshold,
        mask=deceptive.reshape(values.shape),
        terminal=terminal.reshape(values.shape),
        values=values,
        grad_norm=grad_norm,
        rule=rule,
        tol=tol,
        relative=relative,
    )


def finite_difference_grad_norm(values: torch.Tensor) -> torch.Tensor:
    """|g| as a grid-only method sees it: central differences of neighbouring
    grid values, (C(p + e_a) - C(p - e_a)) / (2 * 2 pi / R) per axis."""
    total = torch.zeros_like(values)
    for axis in range(values.dim()):
        spacing = 2 * math.pi / values.shape[axis]
        diff = (torch.roll(values, -1, axis) - torch.roll(values, 1, axis)) / (2 * spacing)
        total += diff * diff
    return total.sqrt_()
