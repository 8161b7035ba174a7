"""The optimizers a multi-start run may use, and their parameter groups.

B starts stacked in one (B, d) tensor are B independent runs only when the
optimizer updates every entry from that entry's own gradient history: Adam,
AdamW, SGD (with momentum or Nesterov), RMSprop and Adagrad do. An optimizer
that couples entries (LBFGS's line search and shared curvature history) or a
clipping of the gradient's total norm would mix the starts, so it is refused.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

#: name -> optimizer class, each updating elementwise
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}
#: names refused, with the reason
COUPLING = {
    "lbfgs": "LBFGS couples all entries of a parameter (one line search and one curvature history for the whole vector), "
    "so B starts in one tensor would not be B independent runs",
}


def check_optimizer(optimizer: Any) -> tuple[str, type[torch.optim.Optimizer], dict[str, Any]]:
    """A name ("adam", ...) or a partial of an optimizer class (a Hydra
    `_partial_` config instantiated) -> (name, class, its settings)."""
    if isinstance(optimizer, functools.partial):
        cls = optimizer.func
        names = [n for n, c in OPTIMIZERS.items() if c is cls]
        if not names:
            raise ValueError(f"optimizer {getattr(cls, '__name__', cls)!r} is not one of the elementwise optimizers {sorted(OPTIMIZERS)}")
        return names[0], cls, dict(optimizer.keywords)
    key = str(optimizer).lower()
    if key in COUPLING:
        raise ValueError(f"optimizer {optimizer!r} is refused: {COUPLING[key]}; use one of {sorted(OPTIMIZERS)}")
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; known: {sorted(OPTIMIZERS)}")
    return key, OPTIMIZERS[key], {}


def check_lrs(lrs: Sequence[float]) -> list[float]:
    """Learning rates: finite and >= 0 (0 is a no-training baseline), at least one."""
    values = [lrs] if isinstance(lrs, (int, float)) else list(lrs)
    if not values:
        raise ValueError("lrs: give at least one learning rate")
    for lr in values:
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
            raise ValueError(f"lrs: every learning rate must be a finite number >= 0, got {lr!r}")
    return [float(lr) for lr in values]


def make_optimizer(optimizer: Any, groups: Sequence[torch.Tensor], lrs: Sequence[float], settings: Mapping[str, Any] | None = None) -> torch.optim.Optimizer:
    """One parameter group per learning rate, each group one (B, d) tensor of starts."""
    name, cls, own = check_optimizer(optimizer)
    settings = {**own, **(settings or {})}
    if "lr" in settings:
        raise ValueError("optimizer settings: give learning rates through lrs, not lr")
    try:
        return cls([{"params": [p], "lr": lr} for p, lr in zip(groups, lrs)], **settings)
    except (TypeError, ValueError) as e:
        raise ValueError(f"optimizer {name!r}: {e}") from None
