"""A cost's values and their cotangent: where every adjoint path starts its reverse sweep.

The adjoint paths (`engine.adjoint`, `engine.small`, `engine.single`) run forward without autograd, then need
g = d cost / d psi (PyTorch's gradient of a real value with respect to the complex state: dL = Re <g|d psi>). A cost
may give that itself (`value_and_cotangent`, as `observables.ExpvalCost` does for diagonal observables: g = 2 H psi
in one product); any other cost is differentiated by autograd on the cost alone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["values_and_cotangent"]


def values_and_cotangent(cost: Callable[[torch.Tensor], torch.Tensor], states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """cost(states) -> (values (B,), detached; the cotangent, states' shape, or None where the cost ignores the
    states). A cost's own `value_and_cotangent` is used when it has one and answers (None: it cannot here)."""
    batch = states.shape[0]
    direct = getattr(cost, "value_and_cotangent", None)
    answer = direct(states) if direct is not None else None
    if answer is not None:
        return answer
    with torch.enable_grad():
        leaf = states.detach().requires_grad_(True)
        value = cost(leaf)
        if value.shape != (batch,):
            raise ValueError(f"cost must map {batch} states to {batch} values, got shape {tuple(value.shape)}")
        (cotangent,) = torch.autograd.grad(value.sum(), leaf, allow_unused=True)
    return value.detach(), cotangent
