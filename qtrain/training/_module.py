"""The LightningModule that trains G learning rates x B starts as one batch.

theta is G parameter tensors of shape (B, d), one optimizer group per
learning rate, all starting from the same B starts (paired comparisons).
Each step computes every start's cost and gradient in one batched adjoint
pass (`Circuit.value_and_grad`: chunked, no per-gate autograd graph), hands
each start its own gradient and steps the optimizer: with an elementwise
optimizer that is exactly G * B independent runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from qtrain.circuit import Circuit
from qtrain.errors import UsageError
from qtrain.training.optimizers import make_optimizer

__all__ = ["MultiStartModule"]

#: cost quantiles logged per learning rate
LOSS_QUANTILES = {"min": 0.0, "median": 0.5, "max": 1.0}


class MultiStartModule(pl.LightningModule):
    """G * B independent optimizations of `circuit`'s cost as one batched run."""

    #: how many of the first starts keep their trajectories, for plots
    TRACK = 8

    def __init__(
        self,
        circuit: Circuit,
        cost: Any,
        starts: torch.Tensor,
        lrs: Sequence[float],
        optimizer: str,
        settings: Mapping[str, Any] | None,
        dtype: torch.dtype,
        log_every: int = 1,
        reference: Callable[[], float | None] = lambda: None,
        tol: float = 1e-3,
        track: int = TRACK,
        fingerprint: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False  # gradients come from the engine's adjoint pass, not from autograd
        self.circuit, self.cost, self.state_dtype = circuit, cost, dtype
        self.lrs, self.optimizer_name, self.settings = tuple(lrs), optimizer, dict(settings or {})
        self.log_every, self.reference, self.tol = log_every, reference, tol
        self.fingerprint = dict(fingerprint or {})  # what defines the run; a resume checks it (`run.check_resume`)
        self.thetas = nn.ParameterList([nn.Parameter(starts.clone()) for _ in self.lrs])  # (B, d) per learning rate
        self.history: list[torch.Tensor] = []  # the cost (G, B) before each step
        self.track = min(track, starts.shape[0])
        self.trajectories: list[torch.Tensor] = []  # theta (G, track, d) of the first starts before each step, for plots

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(self.optimizer_name, list(self.thetas), self.lrs, self.settings)

    def costs_and_grads(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every start's cost (G, B) and gradient (G, B, d) at the current theta."""
        theta = torch.cat([p.detach() for p in self.thetas])  # (G * B, d)
        values, grads = self.circuit.value_and_grad(theta, self.cost, dtype=self.state_dtype)
        shape = (len(self.lrs), -1)
        return values.reshape(shape), grads.reshape(*shape, theta.shape[1])

    def tracked(self) -> torch.Tensor:
        """The first `track` starts' angles now, (G, track, d), on the CPU."""
        return torch.stack([p.detach()[: self.track].cpu() for p in self.thetas])

    def training_step(self, batch: Any, batch_idx: int) -> None:
        values, grads = self.costs_and_grads()
        bad = ~torch.isfinite(values)
        if bad.any():
            group = int(bad.any(dim=1).nonzero()[0])
            raise UsageError(f"the cost became {values[bad][0].item()} at learning rate {self.lrs[group]:g}, step {len(self.history)}; lower the learning rate")
        self.trajectories.append(self.tracked())
        optimizer = self.optimizers()
        assert not isinstance(optimizer, list), "configure_optimizers returns one optimizer (a group per learning rate)"
        optimizer.zero_grad()
        for theta, grad in zip(self.thetas, grads):
            theta.grad = grad.to(theta.dtype)
        optimizer.step()
        self.history.append(values.detach().cpu())
        if self.logger is not None and (len(self.history) - 1) % self.log_every == 0:
            self.logger.log_metrics(self.live_metrics(values, grads), step=len(self.history) - 1)

    def live_metrics(self, values: torch.Tensor, grads: torch.Tensor) -> dict[str, float]:
        """Per learning rate: cost quantiles, the gradient variance across starts
        (mean over components, and per component), the mean gradient norm, and
        the success rate so far against the provisional C*."""
        reference = self.reference()
        levels = torch.tensor(list(LOSS_QUANTILES.values()), dtype=values.dtype, device=values.device)
        # every statistic for all learning rates at once, then one host transfer each
        quantiles = torch.quantile(values, levels, dim=1).T.tolist()  # (G, 3)
        variance = (grads.var(dim=1) if grads.shape[1] > 1 else torch.zeros_like(grads[:, 0])).tolist()  # (G, d)
        norms = grads.norm(dim=2).mean(dim=1).tolist()
        success = (values <= reference + self.tol).double().mean(dim=1).tolist() if reference is not None else None
        metrics: dict[str, float] = {}
        for g, lr in enumerate(self.lrs):
            tag = f"lr={lr:g}"
            metrics.update({f"{tag}/loss_{name}": q for name, q in zip(LOSS_QUANTILES, quantiles[g])})
            metrics[f"{tag}/grad_var_mean"] = sum(variance[g]) / len(variance[g])
            metrics.update({f"{tag}/grad_var/theta_{i}": x for i, x in enumerate(variance[g])})
            metrics[f"{tag}/grad_norm_mean"] = norms[g]
            if success is not None:
                metrics[f"{tag}/success_rate"] = success[g]
        return metrics

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["qtrain_run"] = self.fingerprint
        checkpoint["cost_history"] = torch.stack(self.history) if self.history else torch.empty(0)
        checkpoint["trajectories"] = torch.stack(self.trajectories) if self.trajectories else torch.empty(0)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.history = list(checkpoint["cost_history"])
        self.trajectories = list(checkpoint["trajectories"])
