"""The LightningModule that trains G learning rates x B starts as one batch.

theta is G parameter tensors of shape (B, d), one optimizer group per
learning rate, all starting from the same B starts (paired comparisons).
Each step computes every start's cost and gradient in one batched adjoint
pass (`Circuit.value_and_grad`: chunked, no per-gate autograd graph), hands
each start its own gradient and steps the optimizer: with an elementwise
optimizer that is exactly G * B independent runs.

With `shots`, the gradient each step hands the optimizer is instead the
parameter-shift estimate from `shots` measurements per shifted evaluation
(`Circuit.value_and_grad(shots=...)`), sampled with a seed drawn from the
run's shot seed and the step number (`step_seed`), so a resumed run draws the
very samples of an uninterrupted one. The cost history stays the exact cost:
success is judged on what the parameters reach, not on a noisy estimate.

With a stepper (`qtrain.training.steppers`: qng, spsa, rotosolve) there is no
torch optimizer: each step hands all G x B starts to the stepper, which
evaluates the cost itself (`StepContext`). Its step number is the history's
length, so a resumed run continues the same sequence (SPSA's gains and
perturbations).

`frozen` ((d,) bool, or None) holds parameters still under every optimizer
(a layerwise-training callback sets it each step through `set_frozen`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from qtrain.circuit import Circuit
from qtrain.errors import UsageError
from qtrain.engine.shots import derived_seed
from qtrain.noise import NoiseModel
from qtrain.training.optimizers import is_stepper, make_optimizer
from qtrain.training.steppers import StepContext, Stepper, run_stepper

__all__ = ["MultiStartModule", "log_scalars", "step_seed"]

#: cost quantiles logged per learning rate
LOSS_QUANTILES = {"min": 0.0, "median": 0.5, "max": 1.0}


def step_seed(seed: int, step: int, group: int = 0) -> int:
    """The shot seed of training step `step` of learning-rate group `group` in a
    run whose shot seed is `seed`, in [0, 2**62): a hash, so that neighbouring
    steps, groups or seeds share no samples. Within a group, starts are keyed
    by their index in the whole run (`first_row`), so a rank's share draws what
    one process would."""
    return derived_seed("qtrain-shots", seed, step, group)


def log_scalars(logger: Any, metrics: Mapping[str, float], step: int) -> None:
    """Every metric of a step as one TensorBoard event (one Summary holding all the scalars) when the logger is
    Lightning's TensorBoardLogger; any other logger gets them through its own `log_metrics`. The tags and values are
    those `log_metrics` writes, one event per scalar; measured, 63 scalars (7 learning rates) take 4.6 ms a step that
    way and 0.26 ms as one event."""
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.compat.proto.summary_pb2 import Summary  # type: ignore[import-untyped]

    if not isinstance(logger, TensorBoardLogger):
        logger.log_metrics(dict(metrics), step=step)
        return
    summary = Summary(value=[Summary.Value(tag=tag, simple_value=float(value)) for tag, value in metrics.items()])
    logger.experiment.file_writer.add_summary(summary, step)


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
        optimizer: Any,
        settings: Mapping[str, Any] | None,
        dtype: torch.dtype,
        log_every: int = 1,
        reference: Callable[[], float | None] = lambda: None,
        tol: float = 1e-3,
        track: int = TRACK,
        fingerprint: Mapping[str, Any] | None = None,
        shots: int | None = None,
        shot_seed: int = 0,
        shot_offset: int = 0,
        noise: NoiseModel | None = None,
        trajectories: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False  # gradients come from the engine's adjoint pass, not from autograd
        self.circuit, self.cost, self.state_dtype = circuit, cost, dtype
        self.lrs, self.optimizer_name, self.settings = tuple(lrs), optimizer, dict(settings or {})
        self.log_every, self.reference, self.tol = log_every, reference, tol
        self.shots, self.shot_seed, self.shot_offset = shots, shot_seed, shot_offset  # shots=None: exact gradients
        # noise: every cost and gradient is the noisy one; trajectories of step t, group g drawn from step_seed(shot_seed, t, g)
        self.noise, self.noise_trajectories = noise, trajectories
        self.fingerprint = dict(fingerprint or {})  # what defines the run; a resume checks it (`run.check_resume`)
        self.thetas = nn.ParameterList([nn.Parameter(starts.clone()) for _ in self.lrs])  # (B, d) per learning rate
        self.history: list[torch.Tensor] = []  # the cost (G, B) before each step
        self.track = min(track, starts.shape[0])
        self.trajectories: list[torch.Tensor] = []  # theta (G, track, d) of the first starts before each step, for plots
        self.seed = seed  # the run's seed: keys a stepper's randomness (SPSA's perturbations)
        # a stepper's settings object, or None for a torch optimizer (Lightning builds that one in configure_optimizers)
        built = make_optimizer(optimizer, [], self.lrs, self.settings) if is_stepper(optimizer) else None
        self.stepper: Stepper | None = built if isinstance(built, Stepper) else None
        #: (d,) bool: parameters no optimizer may move (None: none frozen). Not checkpointed: whoever sets it
        #: (a callback, from the step number) sets it again on resume. Read or set it through `set_frozen`.
        self.frozen: torch.Tensor | None = None

    def set_frozen(self, mask: torch.Tensor | Sequence[bool] | None) -> None:
        """Freeze the parameters where `mask` ((d,) bool) is True, from the next
        step on (None: nothing frozen). A frozen entry does not move at all:
        a torch optimizer's step is undone on it (Adam's momentum would move
        it with a zero gradient), a stepper skips it."""
        if mask is None:
            self.frozen = None
            return
        tensor = torch.as_tensor(mask, dtype=torch.bool).flatten().cpu()
        d = self.thetas[0].shape[1]
        if tensor.shape != (d,):
            raise ValueError(f"frozen: the mask needs one entry per parameter ({d}), got shape {tuple(tensor.shape)}")
        self.frozen = tensor

    def configure_optimizers(self) -> torch.optim.Optimizer | None:
        if self.stepper is not None:
            return None  # a stepper moves theta itself (manual optimization without a torch optimizer)
        built = make_optimizer(self.optimizer_name, list(self.thetas), self.lrs, self.settings)
        assert isinstance(built, torch.optim.Optimizer)
        return built

    def step_context(self) -> StepContext:
        """What a stepper may evaluate: the circuit, the cost, the dtype, the noise and the frozen mask."""
        return StepContext(self.circuit, self.cost, self.state_dtype, self.noise, self.frozen)

    def costs_and_grads(self, step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Every start's exact cost (G, B) and gradient (G, B, d) at the current theta (with `noise`, the
        noisy ones; trajectories drawn for step `step`)."""
        theta = torch.cat([p.detach() for p in self.thetas])  # (G * B, d)
        shape = (len(self.lrs), -1)
        if self.noise is not None:
            pairs = [self.circuit.value_and_grad(p.detach(), self.cost, dtype=self.state_dtype, noise=self.noise, trajectories=self.noise_trajectories,
                                                 seed=step_seed(self.shot_seed, step, g) if self.noise_trajectories else None, first_row=self.shot_offset)
                     for g, p in enumerate(self.thetas)]
            return torch.stack([v for v, _ in pairs]), torch.stack([g for _, g in pairs])
        values, grads = self.circuit.value_and_grad(theta, self.cost, dtype=self.state_dtype)
        return values.reshape(shape), grads.reshape(*shape, theta.shape[1])

    def step_costs_and_grads(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """What step `step` trains on: the exact cost (G, B), the gradient (G, B, d)
        the optimizer gets (exact, or with `shots` the shot estimate) and that
        estimate's standard errors (G, B, d), None when exact."""
        if self.shots is None:
            return (*self.costs_and_grads(step), None)
        theta = torch.cat([p.detach() for p in self.thetas])  # (G * B, d)
        shape = (len(self.lrs), -1, theta.shape[1])
        estimates = [self.circuit.value_and_grad(p.detach(), self.cost, dtype=self.state_dtype, shots=self.shots, seed=step_seed(self.shot_seed, step, g),
                                                 first_row=self.shot_offset, return_stderr=True, noise=self.noise) for g, p in enumerate(self.thetas)]
        grads, stderr = torch.stack([g for _, g, _ in estimates]), torch.stack([e for _, _, (_, e) in estimates])
        with torch.no_grad():  # the exact (noisy, with noise) cost, for the history (one more run, no gradient): success is judged on it
            values = self.circuit.expval(theta, self.cost, dtype=self.state_dtype, noise=self.noise)
        return values.reshape(shape[:2]), grads.reshape(shape), stderr.reshape(shape)

    def tracked(self) -> torch.Tensor:
        """The first `track` starts' angles now, (G, track, d), on the CPU."""
        return torch.stack([p.detach()[: self.track].cpu() for p in self.thetas])

    def training_step(self, batch: Any, batch_idx: int) -> None:
        if self.stepper is not None:
            self.stepper_step()
            return
        values, grads, stderr = self.step_costs_and_grads(len(self.history))  # the step number survives a resume (the history is saved)
        self._refuse_non_finite(values, len(self.history))
        self.trajectories.append(self.tracked())
        optimizer = self.optimizers()
        assert not isinstance(optimizer, list), "configure_optimizers returns one optimizer (a group per learning rate)"
        optimizer.zero_grad()
        frozen = self.frozen.to(self.thetas[0].device) if self.frozen is not None else None
        held = [theta.detach()[:, frozen].clone() for theta in self.thetas] if frozen is not None else []
        for theta, grad in zip(self.thetas, grads):
            theta.grad = grad.to(theta.dtype)
            if frozen is not None:
                theta.grad[:, frozen] = 0
        optimizer.step()
        if frozen is not None:  # momentum, weight decay or Adam's moments still move an entry of zero gradient: put it back
            with torch.no_grad():
                for theta, kept in zip(self.thetas, held):
                    theta[:, frozen] = kept
        self.history.append(values.detach().cpu())
        if self.logger is not None and (len(self.history) - 1) % self.log_every == 0:
            log_scalars(self.logger, self.live_metrics(values, grads, stderr), step=len(self.history) - 1)

    def _refuse_non_finite(self, values: torch.Tensor, step: int) -> None:
        """Stop the run in one line when a cost (G, B) is not finite, naming the first learning rate it happened at."""
        bad = ~torch.isfinite(values)
        if bad.any():
            group = int(bad.any(dim=1).nonzero()[0])
            raise UsageError(f"the cost became {values[bad][0].item()} at learning rate {self.lrs[group]:g}, step {step}; lower the learning rate")

    def stepper_step(self) -> None:
        """One step of the stepper: the cost before it for the history (and,
        on a logging step, the exact gradient for the live metrics), then the
        stepper's own evaluations and move."""
        assert self.stepper is not None
        step = len(self.history)  # survives a resume (the history is saved)
        logging = self.logger is not None and step % self.log_every == 0
        ctx = self.step_context()
        # the history from the same evaluation on every step, so that logging (or not) cannot change a number
        values = ctx.cost(torch.cat([p.detach() for p in self.thetas])).reshape(len(self.lrs), -1)
        grads = self.costs_and_grads(step)[1] if logging else None  # for the live metrics only
        self._refuse_non_finite(values, step)
        self.trajectories.append(self.tracked())
        run_stepper(self.stepper, list(self.thetas), self.lrs, ctx, step, self.shot_offset, self.seed)
        self.history.append(values.detach().cpu())
        if grads is not None and self.logger is not None:
            log_scalars(self.logger, self.live_metrics(values, grads), step=step)

    def live_metrics(self, values: torch.Tensor, grads: torch.Tensor, stderr: torch.Tensor | None = None) -> dict[str, float]:
        """Per learning rate: cost quantiles, the gradient variance across starts
        (mean over components, and per component), the mean gradient norm, and
        the success rate so far against the provisional C*. With shots, `grads`
        are the estimates the optimizer got (their variance includes the shot
        noise), and `stderr` (G, B, d) adds grad_stderr_mean, the mean standard
        error of a gradient component: the noise beside the signal."""
        reference = self.reference()
        levels = torch.tensor(list(LOSS_QUANTILES.values()), dtype=values.dtype, device=values.device)
        # every statistic for all learning rates at once, then one host transfer each
        quantiles = torch.quantile(values, levels, dim=1).T.tolist()  # (G, 3)
        variance = (grads.var(dim=1) if grads.shape[1] > 1 else torch.zeros_like(grads[:, 0])).tolist()  # (G, d)
        norms = grads.norm(dim=2).mean(dim=1).tolist()
        success = (values <= reference + self.tol).double().mean(dim=1).tolist() if reference is not None else None
        noise = stderr.mean(dim=(1, 2)).tolist() if stderr is not None else None
        metrics: dict[str, float] = {}
        for g, lr in enumerate(self.lrs):
            tag = f"lr={lr:g}"
            metrics.update({f"{tag}/loss_{name}": q for name, q in zip(LOSS_QUANTILES, quantiles[g])})
            metrics[f"{tag}/grad_var_mean"] = sum(variance[g]) / len(variance[g])
            metrics.update({f"{tag}/grad_var/theta_{i}": x for i, x in enumerate(variance[g])})
            metrics[f"{tag}/grad_norm_mean"] = norms[g]
            if success is not None:
                metrics[f"{tag}/success_rate"] = success[g]
            if noise is not None:
                metrics[f"{tag}/grad_stderr_mean"] = noise[g]
        return metrics

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["qtrain_run"] = self.fingerprint
        checkpoint["cost_history"] = torch.stack(self.history) if self.history else torch.empty(0)
        checkpoint["trajectories"] = torch.stack(self.trajectories) if self.trajectories else torch.empty(0)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.history = list(checkpoint["cost_history"])
        self.trajectories = list(checkpoint["trajectories"])
