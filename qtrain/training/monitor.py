"""A Lightning callback for any model that holds QuantumLayers: is it on a
barren plateau before it trains, and how do its quantum gradients evolve?

    trainer = Trainer(callbacks=[QuantumGradientMonitor()])

At the start, for every QuantumLayer, `qtrain.diagnostics.gradient_variance`
of the layer at its init distribution for its own outputs (the sum of its
observables), with the confidence interval: `plateau/<layer>/init_grad_var_*`.
Then every `every_n_steps` steps, per layer: the norm of its weights'
gradient and the variance of the gradient's entries across the weights:
`quantum/<layer>/grad_norm`, `quantum/<layer>/grad_var`. (McClean's 2-design
value belongs to his Z0 Z1 cost after a product-state prefix; it is not the
reference for other layers, so none is shown.)
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from torch import nn

from qtrain.diagnostics import GradientStats, gradient_variance
from qtrain.layers import QuantumLayer

__all__ = ["QuantumGradientMonitor"]


class QuantumGradientMonitor(pl.Callback):
    """Log, for every QuantumLayer of the model, its gradient variance at init and its gradient norm and variance every
    `every_n_steps` steps (see the module docstring for the tags). `samples` draws (>= 2) estimate the init variance,
    from the generator seeded with `seed`."""

    def __init__(self, samples: int = 200, every_n_steps: int = 1, seed: int = 0) -> None:
        if samples < 2 or every_n_steps < 1:
            raise ValueError(f"need samples >= 2 and every_n_steps >= 1, got {samples} and {every_n_steps}")
        self.samples, self.every_n_steps, self.seed = samples, every_n_steps, seed
        self.initial: dict[str, GradientStats] = {}  # per layer, at its init distribution

    @staticmethod
    def layers(module: nn.Module) -> dict[str, QuantumLayer]:
        return {name or "layer": m for name, m in module.named_modules() if isinstance(m, QuantumLayer)}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = {}
        for name, layer in self.layers(pl_module).items():
            stats = gradient_variance(layer, samples=self.samples, parameter=None, seed=self.seed, device=layer.weight.device,
                                      noise=layer.noise, trajectories=layer.trajectories)  # the layer's own noise: the plateau it trains on
            self.initial[name] = stats
            metrics.update({
                f"plateau/{name}/init_grad_var_mean": stats.var.mean().item(),
                f"plateau/{name}/init_grad_var_ci_low": stats.var_ci_low.mean().item(),
                f"plateau/{name}/init_grad_var_ci_high": stats.var_ci_high.mean().item(),
            })
        if metrics and trainer.logger is not None:
            trainer.logger.log_metrics(metrics, step=0)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        if trainer.global_step % self.every_n_steps:
            return
        metrics = {}
        for name, layer in self.layers(pl_module).items():
            grad = layer.weight.grad
            if grad is None or grad.numel() == 0:
                continue
            metrics[f"quantum/{name}/grad_norm"] = grad.norm().item()
            metrics[f"quantum/{name}/grad_var"] = grad.var().item() if grad.numel() > 1 else 0.0
        if metrics and trainer.logger is not None:
            trainer.logger.log_metrics(metrics, step=trainer.global_step)
