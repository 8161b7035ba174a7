"""`train_lr_grid`: one optimizer, G learning rates, B starts, T steps, as one
batched Lightning run; success rates against the global minimum, and (for
d <= 3) the landscape's prediction of which starts succeed.

    from qtrain.training import train_lr_grid
    r = train_lr_grid(circuit, target, optimizer="adam", lrs=[0.01, 0.1], starts=1000, steps=500)
    r.success_rate, r.predicted_success, r.agreement, r.global_min, r.global_min_source
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from qtrain.circuit import Circuit
from qtrain.engine.conventions import check_complex_dtype, real_dtype
from qtrain.engine.observables import Observable, checked_pauli_sum, checked_target_state
from qtrain.layers import draw_angles
from qtrain.parallel import Ranks
from qtrain.training.optimizers import check_lrs, check_optimizer

#: d at or below which the landscape is sampled for C* and the predictions
LANDSCAPE_MAX_PARAMS = 3


@dataclass(frozen=True)
class LrGridResult:
    """One optimizer over G learning rates (in `lrs` order) and B starts."""

    optimizer: str
    lrs: tuple[float, ...]
    success_rate: torch.Tensor  # (G,): share of starts whose final cost <= C* + tol
    final_cost: torch.Tensor  # (G, B)
    cost_history: torch.Tensor  # (T + 1, G, B): the cost before every step and after the last
    steps_to_success: torch.Tensor  # (G, B): first step whose cost <= C* + tol, -1 for never
    global_min: float  # C*
    global_min_source: str  # "given", "landscape" or "best found"
    tol: float
    predicted: torch.Tensor | None  # (B,) bool: the start's nearest grid point descends to a global minimum (d <= 3)
    predicted_success: torch.Tensor | None  # (G,): the predicted share (the same B starts for every learning rate)
    agreement: torch.Tensor | None  # (G,): share of starts whose outcome the prediction got right
    deceptiveness_ratio: float | None
    landscape_min: float | None  # the R^d grid's minimum (d <= 3), which lies slightly above the continuous optimum
    trajectories: torch.Tensor  # (T + 1, G, K, d): the first K starts' angles, for plots
    rows: list[dict[str, Any]]  # one per learning rate: the results table


def train_lr_grid(
    circuit: Circuit,
    cost: Observable | torch.Tensor | Callable[[torch.Tensor], torch.Tensor],
    optimizer: Any = "adam",
    lrs: Sequence[float] = (0.001, 0.01, 0.1),
    starts: int = 1000,
    steps: int = 500,
    *,
    seed: int = 0,
    tol: float = 1e-3,
    global_min: float | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.complex64,
    init: str = "uniform",
    init_width: float = 0.1,
    resolution: int = 90,
    rule: str = "gradient",
    log_dir: str | Path | None = None,
    log_every: int = 10,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 50,
    progress: bool = False,
    ranks: Ranks | None = None,
    **optimizer_settings: Any,
) -> LrGridResult:
    """Train `starts` random starts (drawn from `init` by `seed`, the same for
    every learning rate) for `steps` steps with `optimizer` at each learning
    rate of `lrs`, as one batched run, and score them.

    cost: an observable, a target state (infidelity) or a function of final
    states (c, 2**n) -> (c,). C* is `global_min` when given; for d <= 3 and a
    cost the landscape can take, the lower of the R^d grid's minimum and the
    best final cost any run reached; otherwise the best final cost reached
    (`global_min_source` says which). A start succeeds when its final cost
    is <= C* + tol. With `log_dir`, Lightning's TensorBoardLogger writes live
    metrics there; with `checkpoint_dir`, a checkpoint every
    `checkpoint_every` steps, from which the same call resumes.
    optimizer: a name from `OPTIMIZERS` or a partial of one of their classes
    (a Hydra `_partial_` config); optimizer_settings: its own keywords
    (momentum, nesterov, betas, weight_decay, ...).

    ranks (`qtrain.parallel`): in a data parallel run every rank calls this
    with the same arguments and trains its own contiguous share of the starts,
    checkpointed in its own folder under `checkpoint_dir`; the histories are
    gathered, so every rank returns the one-process result. Only rank 0
    writes live metrics (of its share) to `log_dir`.
    """
    plan = _plan(circuit, cost, optimizer, lrs, starts, steps, tol, dtype, init, log_every, checkpoint_every)
    ranks = ranks or Ranks(device=torch.device(device))
    if starts < ranks.world_size:
        raise ValueError(f"starts must be at least the number of ranks ({ranks.world_size}), got {starts}")
    real = real_dtype(dtype)
    device = ranks.device if ranks.world_size > 1 else torch.device(device)
    theta0 = draw_angles(init, (starts, circuit.n_params), torch.Generator().manual_seed(seed), torch.float64, init_width).to(real)
    landscape = _landscape(circuit, plan["cost"], resolution, tol, rule) if plan["landscape"] else None
    provisional = global_min if global_min is not None else (landscape.global_min if landscape is not None else None)

    from qtrain.training.module import MultiStartModule  # Lightning only when a run really starts
    from qtrain.training.run import fit

    share = theta0[ranks.share(starts)]  # independent starts: each rank trains its own, nothing is averaged
    if ranks.world_size > 1 and checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir) / f"rank{ranks.rank}-of-{ranks.world_size}"  # shards of another world size are other starts
    module = MultiStartModule(circuit, plan["cost"], share.to(device), plan["lrs"], optimizer, optimizer_settings, dtype, log_every, lambda: provisional, tol)
    fit(module, steps, device, log_dir if ranks.is_main else None, checkpoint_dir, checkpoint_every, progress and ranks.is_main)
    with torch.no_grad():
        final = module.costs_and_grads()[0].detach().cpu()
    history = ranks.gather(torch.cat([torch.stack(module.history), final.unsqueeze(0)]), dim=2)  # (T + 1, G, B)
    tracked = ranks.gather(torch.stack([*module.trajectories, module.tracked()]), dim=2)  # each rank's first starts, in order
    trajectories = tracked[:, :, : MultiStartModule.TRACK]  # (T + 1, G, K, d): the first K starts of the whole run
    return _score(plan["name"], plan["lrs"], history, trajectories, tol, global_min, landscape, theta0, resolution)


def _plan(circuit, cost, optimizer, lrs, starts, steps, tol, dtype, init, log_every, checkpoint_every) -> dict[str, Any]:
    """Check every argument before any work."""
    if not isinstance(circuit, Circuit):
        raise TypeError(f"circuit must be a qtrain Circuit, got {type(circuit).__name__}")
    if circuit.n_params < 1:
        raise ValueError("the circuit has no parameters to train")
    if circuit.program().batch > 1:
        raise ValueError("train_lr_grid trains one circuit from many starts; this circuit holds per-sample gates (a batch of circuits)")
    name = check_optimizer(optimizer)[0]
    for key, value in (("starts", starts), ("steps", steps), ("log_every", log_every), ("checkpoint_every", checkpoint_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    check_complex_dtype(dtype)
    draw_angles(init, (0,))  # refuses an unknown init
    if isinstance(cost, torch.Tensor):
        resolved, landscape = checked_target_state(cost, circuit.n_qubits), True
    elif callable(cost):
        resolved, landscape = cost, False  # the landscape's Fourier path needs an observable or a target
    else:
        resolved, landscape = checked_pauli_sum(cost, circuit.n_qubits, what="cost"), True
    return {"lrs": check_lrs(lrs), "cost": resolved, "landscape": landscape and circuit.n_params <= LANDSCAPE_MAX_PARAMS, "name": name}


def _landscape(circuit: Circuit, cost: Any, resolution: int, tol: float, rule: str):
    from qtrain.landscape import deceptiveness

    return deceptiveness(circuit, cost, resolution=resolution, tol=tol, rule=rule)


def global_min_of(given: float | None, landscape_min: float | None, best: float) -> tuple[float, str]:
    """C* and where it came from: the given value; else the lower of the grid's
    minimum and the best cost reached; else the best cost reached."""
    if given is not None:
        return float(given), "given"
    if landscape_min is not None and landscape_min <= best:
        return landscape_min, "landscape"
    return best, "best found"


def _score(optimizer, lrs, history, trajectories, tol, given, landscape, theta0, resolution) -> LrGridResult:
    predicted = ratio = landscape_min = None
    if landscape is not None:
        index = torch.round((theta0.double() + math.pi) * resolution / (2 * math.pi)).long() % resolution  # nearest grid point
        predicted = ~landscape.mask[tuple(index.T)]
        ratio, landscape_min = landscape.ratio, landscape.global_min
    c_star, source = global_min_of(given, landscape_min, history[-1].double().min().item())
    return score(optimizer, lrs, history, trajectories, tol, c_star, source, predicted, ratio, landscape_min)


def rescore(result: LrGridResult, global_min: float, source: str) -> LrGridResult:
    """The same runs judged against another C* (the final one of a sharing
    degree, over all its optimizers): nothing is retrained."""
    return score(result.optimizer, result.lrs, result.cost_history, result.trajectories, result.tol, global_min, source,
                 result.predicted, result.deceptiveness_ratio, result.landscape_min)


def score(optimizer, lrs, history, trajectories, tol, c_star, source, predicted, ratio, landscape_min) -> LrGridResult:
    """Success, steps to success, the prediction's agreement and the table rows, against C* = `c_star`."""
    final = history[-1].double()
    hit = history.double() <= c_star + tol  # (T + 1, G, B)
    success = hit[-1]
    first = torch.where(hit.any(dim=0), hit.double().argmax(dim=0), torch.full_like(success, -1, dtype=torch.long))
    predicted_success = agreement = None
    if predicted is not None:
        predicted_success = predicted.double().mean().expand(len(lrs)).clone()
        agreement = (success == predicted.unsqueeze(0)).double().mean(dim=1)
    rate = success.double().mean(dim=1)
    rows = []
    for g, lr in enumerate(lrs):
        reached = first[g][first[g] >= 0]
        rows.append({
            "optimizer": optimizer, "lr": lr, "starts": final.shape[1], "steps": history.shape[0] - 1,
            "success_rate": rate[g].item(), "predicted_success": None if predicted is None else predicted_success[g].item(),
            "agreement": None if agreement is None else agreement[g].item(),
            "final_cost_median": final[g].median().item(), "final_cost_min": final[g].min().item(),
            "global_min": c_star, "global_min_source": source,
            "steps_to_success_median": reached.double().median().item() if reached.numel() else None,
        })
    return LrGridResult(optimizer, tuple(lrs), rate, final, history, first, c_star, source, tol, predicted, predicted_success, agreement, ratio,
                        landscape_min, trajectories, rows)
