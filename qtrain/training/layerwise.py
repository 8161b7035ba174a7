"""Layerwise training (Skolik, Jarrod McClean, Mohseni, van der Smagt and
Leib, Quantum Mach. Intell. 3, 5, 2021): train the first layers, freeze
them, add the next.

    from qtrain.training import Layerwise, train_lr_grid
    r = train_lr_grid(circuit, cost, "adam", [0.01, 0.1], starts=500, steps=300,
                      layerwise=Layerwise(layers=6, steps_per_stage=40))

The circuit's parameters, in order of first use, are split into `layers`
equal groups (a builder's layers: `hardware_efficient(n, L)` has L groups of
2n). Stage s (steps s * steps_per_stage to (s + 1) * steps_per_stage - 1)
trains only the `layers_per_stage` layers added at that stage; the layers
added before are frozen, and the layers not yet added are held at 0. After
the last layer is added, every parameter trains together for the remaining
steps (Skolik et al.'s second phase with the whole circuit as one part).

A layer not yet added starts at 0 (Skolik et al. add new layers with zero
angles, so adding one does not change the cost). In qtrain the circuit is
fixed, so a layer "not yet added" is present with its rotations at angle 0:
they are the identity, but its fixed gates (the entanglers) still act. For a
circuit whose layers end in entanglers the early stages therefore train a
circuit with extra entangling layers, not a shorter one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Layerwise", "check_layerwise"]


@dataclass(frozen=True)
class Layerwise:
    """The schedule: `layers` equal groups of parameters, `layers_per_stage` added every `steps_per_stage` steps."""

    layers: int
    steps_per_stage: int
    layers_per_stage: int = 1

    def __post_init__(self) -> None:
        for key in ("layers", "steps_per_stage", "layers_per_stage"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"layerwise.{key} must be an integer >= 1, got {value!r}")
        if self.layers_per_stage > self.layers:
            raise ValueError(f"layerwise.layers_per_stage ({self.layers_per_stage}) exceeds layerwise.layers ({self.layers})")

    @property
    def stages(self) -> int:
        """How many stages add layers (the last may add fewer than `layers_per_stage`)."""
        return -(-self.layers // self.layers_per_stage)

    @property
    def growth_steps(self) -> int:
        """Steps until every layer is in; after them every parameter trains."""
        return self.stages * self.steps_per_stage

    def layer_of(self, n_params: int) -> torch.Tensor:
        """(n_params,) long: each parameter's layer, the parameters in order of first use split into equal groups."""
        if n_params % self.layers:
            raise ValueError(f"layerwise.layers={self.layers} does not divide the circuit's {n_params} parameters into equal layers; "
                             f"give a divisor of {n_params}")
        return torch.arange(n_params) // (n_params // self.layers)

    def stage_at(self, step: int) -> int | None:
        """The stage step `step` belongs to, or None once every layer is in and everything trains."""
        stage = step // self.steps_per_stage
        return stage if stage < self.stages else None

    def frozen_at(self, step: int, n_params: int) -> torch.Tensor | None:
        """(n_params,) bool: the parameters that must not move at step `step`; None when all train."""
        stage = self.stage_at(step)
        if stage is None:
            return None
        layer = self.layer_of(n_params)
        first, last = stage * self.layers_per_stage, min((stage + 1) * self.layers_per_stage, self.layers)
        return (layer < first) | (layer >= last)

    def start_values(self, theta: torch.Tensor) -> torch.Tensor:
        """The starts with every layer not in the first stage at 0 (a copy): (..., n_params)."""
        layer = self.layer_of(theta.shape[-1])
        return torch.where(layer < self.layers_per_stage, theta, torch.zeros_like(theta))

    def describe(self) -> str:
        return f"{self.layers} layers, {self.layers_per_stage} per stage, {self.steps_per_stage} steps per stage"


def check_layerwise(value: Any) -> Layerwise | None:
    """None, a `Layerwise`, or a mapping of its keys (a config) -> a `Layerwise` or None; unknown keys refused by name."""
    if value is None or isinstance(value, Layerwise):
        return value
    if not hasattr(value, "keys"):
        raise ValueError(f"layerwise must be null or a mapping with keys layers, steps_per_stage[, layers_per_stage], got {value!r}")
    known = ("layers", "steps_per_stage", "layers_per_stage")
    unknown = sorted(str(k) for k in value.keys() if k not in known)
    if unknown:
        raise ValueError(f"layerwise.{unknown[0]}: unknown key (known: {', '.join(known)})")
    missing = [k for k in known[:2] if k not in value or value[k] is None]
    if missing:
        raise ValueError(f"layerwise.{missing[0]}: is required (layerwise needs layers and steps_per_stage)")
    return Layerwise(**{k: value[k] for k in known if k in value})
