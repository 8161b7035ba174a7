"""`train_lr_grid`: one optimizer, G learning rates, B starts, T steps, as one
batched Lightning run; success rates against the global minimum, and (for
d <= 3) the landscape's prediction of which starts succeed.

    from qtrain.training import train_lr_grid
    r = train_lr_grid(circuit, target, optimizer="adam", lrs=[0.01, 0.1], starts=1000, steps=500)
    r.success_rate, r.predicted_success, r.agreement, r.global_min, r.global_min_source

With `shots=N` every step trains on gradients estimated from N shots per
shifted evaluation; success is still judged on the exact final cost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from qtrain.circuit import Circuit
from qtrain.engine.conventions import check_complex_dtype, real_dtype
from qtrain.engine.observables import Observable, PauliSum, checked_pauli_sum, checked_target_state
from qtrain._noisy import check_noise
from qtrain.engine.shots import check_seed, check_shots
from qtrain.noise import NoiseModel
from qtrain.initializations import check_init, initial_angles, resolved_width
from qtrain.parallel import Ranks
from qtrain.training.layerwise import Layerwise, check_layerwise
from qtrain.training.optimizers import check_optimizer, check_optimizer_settings
from qtrain.training.steppers import Qng, Stepper
from qtrain.training.predict import predict

__all__ = ["LrGridResult", "global_min_of", "rescore", "score", "steps_to_success", "train_lr_grid"]

#: d at or below which the landscape is sampled for C* and the predictions
LANDSCAPE_MAX_PARAMS = 3


@dataclass(frozen=True)
class LrGridResult:
    """One optimizer over G learning rates (in `lrs` order) and B starts, scored
    against one threshold, C* + tol (`score`; `rescore` moves every score to another C*)."""

    optimizer: str
    optimizer_settings: str  # the settings that differ from the optimizer's defaults (`settings_label`), or "defaults"
    lrs: tuple[float, ...]
    success_rate: torch.Tensor  # (G,): share of starts whose final cost <= C* + tol
    final_cost: torch.Tensor  # (G, B), float64
    cost_history: torch.Tensor  # (T + 1, G, B): the cost before every step and after the last
    steps_to_success: torch.Tensor  # (G, B): first step from which the cost stays <= C* + tol to the end; -1 where it fails
    global_min: float  # C*
    global_min_source: str  # "given", "landscape" or "best found"
    tol: float
    predicted_cost: torch.Tensor | None  # (B,) float64: the cost of the continuous minimum the start's grid basin polishes to (d <= 3)
    predicted_minimum: torch.Tensor | None  # (B, d) float64: where that polish ended
    predicted: torch.Tensor | None  # (B,) bool: predicted_cost <= C* + tol
    predicted_success: torch.Tensor | None  # (G,): the predicted share (the same B starts for every learning rate)
    agreement: torch.Tensor | None  # (G,): share of starts whose outcome the prediction got right
    deceptiveness_ratio: float | None  # the grid's own (terminal grid value > grid minimum + tol), d <= 3
    landscape_min: float | None  # the lowest polished grid terminal: the landscape's continuous minimum (d <= 3)
    trajectories: torch.Tensor  # (T + 1, G, K, d): the first K starts' angles, for plots
    rows: list[dict[str, Any]]  # one per learning rate: the results table
    # shots per shifted evaluation of every step's gradient; None: exact gradients. The costs above are exact either way.
    # (A default, so that a result pickled before shots existed reads as the exact run it was.)
    shots: int | None = None


def train_lr_grid(
    circuit: Circuit,
    cost: Observable | torch.Tensor | Callable[[torch.Tensor], torch.Tensor],
    optimizer: Any = "adam",
    lrs: Sequence[float] = (0.001, 0.01, 0.1),
    starts: int = 1000,
    steps: int = 500,
    *,
    optimizer_settings: Mapping[str, Any] | None = None,
    seed: int = 0,
    tol: float = 1e-3,
    global_min: float | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.complex64,
    init: str = "uniform",
    init_width: float | None = None,
    resolution: int = 90,
    rule: str = "gradient",
    log_dir: str | Path | None = None,
    log_every: int = 10,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 50,
    progress: bool = False,
    ranks: Ranks | None = None,
    shots: int | None = None,
    shot_seed: int | None = None,
    noise: NoiseModel | None = None,
    trajectories: int | None = None,
    layerwise: Layerwise | Mapping[str, Any] | None = None,
) -> LrGridResult:
    """Train `starts` random starts (drawn from `init` by `seed`, the same for
    every learning rate) for `steps` steps with `optimizer` at each learning
    rate of `lrs`, as one batched run, and score them.

    cost: an observable, a target state (infidelity) or a function of final
    states (c, 2**n) -> (c,). C* is `global_min` when given; for d <= 3 and a
    cost the landscape can take, the lower of the landscape's minimum (the
    grid's lowest basins polished to their continuous minima, `predict`) and
    the best final cost any run reached; otherwise the best final cost
    reached (`global_min_source` says which). A start succeeds when its
    final cost is <= C* + tol; for d <= 3 it is predicted to succeed when its
    polished grid terminal's cost is <= the same C* + tol. With `log_dir`,
    Lightning's TensorBoardLogger writes live metrics there; with
    `checkpoint_dir`, a checkpoint every `checkpoint_every` steps, from which
    the same call (more `steps` allowed) resumes; a call that differs in
    anything else that defines the run is refused, naming what differs.
    optimizer: a name from `OPTIMIZERS` or a partial of one of their classes
    (a Hydra `_partial_` config); optimizer_settings: its own keywords
    (momentum, nesterov, betas, weight_decay, ...), checked before any work.

    init (`qtrain.initializations`): "uniform" (default), "zeros", "small"
    (uniform on [-init_width, init_width], default 0.1), "gaussian" (N(0,
    init_width^2), by default Zhang et al.'s width 1 / sqrt(S D) from the
    cost's locality S and the circuit's rotation depth D) or
    "identity_blocks" (a circuit of `builders.identity_blocks`, starting as
    the identity). The resolved width is part of the run's record.

    layerwise (`qtrain.training.Layerwise`, or a mapping of its keys):
    Skolik et al.'s layerwise training. The parameters, in order of first
    use, form `layers` equal layers; each stage of `steps_per_stage` steps
    trains only the layers it adds, the earlier ones frozen and the later
    ones held at 0 (they start there); once all are in, everything trains.
    Every optimizer respects the freezing.

    ranks (`qtrain.parallel`): in a data parallel run every rank calls this
    with the same arguments and trains its own contiguous share of the starts,
    checkpointed in its own folder under `checkpoint_dir`; the histories are
    gathered, so every rank returns the one-process result. Only rank 0
    writes live metrics (of its share) to `log_dir`.

    shots: None trains on exact gradients; an integer N trains every step on
    parameter-shift estimates from N shots per shifted evaluation (every
    rotation of a shared parameter shifted on its own, `Circuit.value_and_grad`),
    for an observable cost only (a target state's infidelity or a function of
    states is not a Pauli sum, so not measurable). Success is still judged on
    the EXACT cost of the final parameters, and `cost_history` holds exact
    costs: the question is where noisy gradients lead, not how noisy the
    cost estimate is. Step t of learning rate g samples with a seed hashed
    from (`shot_seed`, t, g) (`shot_seed=None`: `seed`), each start keyed by
    its index in the run, so the same call gives the same numbers, a resumed
    run those of an uninterrupted one, and a data-parallel run those of one
    process.

    noise (a `qtrain.noise.NoiseModel`): train on the noisy cost and its
    gradient, by the exact density matrix or, with `trajectories=T`, the mean
    of T trajectories per start (step t of group g drawn from a seed hashed
    from (`shot_seed` or `seed`, t, g), each start keyed by its index). The
    history, success and C* are then the noisy cost's (C* the best final noisy
    cost unless `global_min` is given: the landscape is noiseless, so it is not
    sampled). Not together with shots.
    """
    plan = _plan(circuit, cost, optimizer, optimizer_settings, lrs, starts, steps, tol, dtype, init, log_every, checkpoint_every, shots, shot_seed,
                 noise, trajectories)
    uses_seed = plan["shots"] is not None or trajectories is not None
    shot_seed = None if not uses_seed else (seed if plan["shot_seed"] is None else plan["shot_seed"])
    ranks = ranks or Ranks(device=torch.device(device))
    if starts < ranks.world_size:
        raise ValueError(f"starts must be at least the number of ranks ({ranks.world_size}), got {starts}")
    real = real_dtype(dtype)
    device = ranks.device if ranks.world_size > 1 else torch.device(device)
    init_width = resolved_width(circuit, init, init_width, plan["cost"])  # gaussian: Zhang et al.'s width unless one is given
    theta0 = initial_angles(circuit, init, starts, torch.Generator().manual_seed(seed), torch.float64, init_width, plan["cost"]).to(real)
    schedule = check_layerwise(layerwise)
    if schedule is not None and init == "identity_blocks":
        raise ValueError("layerwise with init='identity_blocks': holding the layers not yet added at 0 would break the identity that init "
                         "starts from (the mirrors are layers too); use one or the other")
    if schedule is not None:
        schedule.layer_of(circuit.n_params)  # refuses layers that do not divide the parameters, before any work
        theta0 = schedule.start_values(theta0)  # the layers not yet added start at 0
    landscape = _landscape(circuit, plan["cost"], resolution, tol, rule) if plan["landscape"] else None
    prediction = predict(circuit, plan["cost"], landscape, theta0) if landscape is not None else None
    provisional = global_min if global_min is not None else (prediction.landscape_min if prediction is not None else None)

    from qtrain.training._module import MultiStartModule  # Lightning only when a run really starts
    from qtrain.training._run import fit

    share = ranks.share(starts)
    fingerprint = {"circuit": circuit.fingerprint(), "cost": _cost_fingerprint(plan["cost"]), "optimizer": plan["name"],
                   "optimizer_settings": plan["settings_label"], "lrs": plan["lrs"], "starts": starts, "share": [share.start, share.stop],
                   "seed": seed, "init": init, "init_width": float(init_width), "dtype": str(dtype),
                   # None for exact gradients: what a checkpoint written before shots existed reads as (a missing key)
                   "shots": plan["shots"], "shot_seed": shot_seed,
                   # always recorded (None when noiseless, which a checkpoint from before noise reads as); exact rates, not a rounded label
                   "noise": None if noise is None else repr(noise), "trajectories": trajectories,
                   **({} if schedule is None else {"layerwise": schedule.describe()})}  # absent without it: older checkpoints still resume
    if ranks.world_size > 1 and checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir) / f"rank{ranks.rank}-of-{ranks.world_size}"  # shards of another world size are other starts
    module = MultiStartModule(circuit, plan["cost"], theta0[share].to(device), plan["lrs"], optimizer, optimizer_settings, dtype, log_every,
                              lambda: provisional, tol, fingerprint=fingerprint, shots=plan["shots"], shot_seed=shot_seed or 0,
                              shot_offset=share.start, noise=noise, trajectories=trajectories, seed=seed)  # independent starts: each rank trains its own
    fit(module, steps, device, log_dir if ranks.is_main else None, checkpoint_dir, checkpoint_every, progress and ranks.is_main,
        layerwise=schedule)
    with torch.no_grad():
        final = module.costs_and_grads(steps)[0].detach().cpu()
    history = ranks.gather(torch.cat([torch.stack(module.history), final.unsqueeze(0)]), dim=2)  # (T + 1, G, B)
    tracked = ranks.gather(torch.stack([*module.trajectories, module.tracked()]), dim=2)  # each rank's first starts, in order
    paths = tracked[:, :, : MultiStartModule.TRACK]  # (T + 1, G, K, d): the first K starts of the whole run
    landscape_min = prediction.landscape_min if prediction is not None else None
    c_star, source = global_min_of(global_min, landscape_min, history[-1].double().min().item())
    return score(plan["name"], plan["settings_label"], plan["lrs"], history, paths, tol, c_star, source,
                 None if prediction is None else prediction.cost, None if prediction is None else prediction.minimum,
                 None if landscape is None else landscape.ratio, landscape_min, shots=plan["shots"])


def _plan(circuit, cost, optimizer, optimizer_settings, lrs, starts, steps, tol, dtype, init, log_every, checkpoint_every, shots=None,
          shot_seed=None, noise=None, trajectories=None) -> dict[str, Any]:
    """Check every argument before any work (the optimizer is built once on dummy tensors, so that its own checks run now)."""
    if not isinstance(circuit, Circuit):
        raise TypeError(f"circuit must be a qtrain Circuit, got {type(circuit).__name__}")
    if circuit.n_params < 1:
        raise ValueError("the circuit has no parameters to train")
    if circuit.gate_batch > 1:
        raise ValueError("train_lr_grid trains one circuit from many starts; this circuit holds per-sample gates (a batch of circuits)")
    for key, value in (("starts", starts), ("steps", steps), ("log_every", log_every), ("checkpoint_every", checkpoint_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    check_complex_dtype(dtype)
    check_init(init)
    checked = check_optimizer_settings(optimizer, optimizer_settings, lrs)  # its own checks too (betas, nesterov without momentum, ...)
    resolved: torch.Tensor | PauliSum | Callable[..., Any]  # a target state, an observable, or a cost function
    if isinstance(cost, torch.Tensor):
        resolved, landscape = checked_target_state(cost, circuit.n_qubits), True
    elif callable(cost):
        resolved, landscape = cost, False  # the landscape's Fourier path needs an observable or a target
    else:
        resolved, landscape = checked_pauli_sum(cost, circuit.n_qubits, what="cost"), True
    shots = check_shots(shots)
    if shots is not None and not isinstance(resolved, PauliSum):
        what = "a target state's infidelity" if isinstance(resolved, torch.Tensor) else "a function of states"
        raise ValueError(f"shots={shots}: the cost is {what}, not a Pauli sum, so it cannot be estimated from measurements; "
                         "give an observable cost, or shots=None")
    if noise is not None or trajectories is not None:
        if noise is None:
            raise ValueError("trajectories applies to noisy training, but noise is None; pass noise=NoiseModel(...) too")
        check_noise(noise, None, trajectories)
        if trajectories is not None and not noise.pauli_only:
            raise ValueError("trajectories with amplitude damping give values only (its jumps depend on the state), and training needs "
                             "gradients; pass trajectories=None for the exact density matrix")
        if shots is not None and trajectories is not None:
            raise ValueError("shots with noise are measured on the exact density matrix: drop trajectories (or shots)")
        if isinstance(resolved, torch.Tensor) and noise.has_readout:
            raise ValueError("noise: readout error flips the measured bits of Pauli terms, and a target state's infidelity is not "
                             "measured that way; set readout=0 for an infidelity cost")
        if callable(resolved) and not isinstance(resolved, (PauliSum, torch.Tensor)):
            raise ValueError("noise: a function of states has no noisy form (a density matrix is not a state); give an observable or a target state")
        landscape = False  # the landscape is the noiseless one: it cannot predict the noisy cost
    if shot_seed is not None:
        if shots is None and trajectories is None:
            raise ValueError(f"shot_seed={shot_seed!r} seeds shot sampling, but shots is None (exact gradients); pass shots too (or noise with trajectories)")
        check_seed(shot_seed)  # a negative or non-integer seed is refused here, not at the first step
    stepper = check_optimizer(optimizer)[1]
    if issubclass(stepper, Stepper):  # what a closure-based optimizer cannot train, in one line naming it
        refusal = stepper.refuse_run(resolved, shots, noise, trajectories)
        if refusal is not None:
            raise ValueError(f"optimizer {checked.name!r}: {refusal}")
        if stepper is Qng:
            _check_qng_blocks(optimizer, optimizer_settings, circuit.n_params)
    return {"lrs": checked.lrs, "cost": resolved, "landscape": landscape and circuit.n_params <= LANDSCAPE_MAX_PARAMS, "name": checked.name,
            "settings_label": checked.label, "shots": shots, "shot_seed": shot_seed}


def _check_qng_blocks(optimizer: Any, settings: Mapping[str, Any] | None, d: int) -> None:
    """qng's `blocks` must divide the circuit's parameter count (known only with the circuit)."""
    own = dict(optimizer.keywords) if hasattr(optimizer, "keywords") else {}
    where = "optimizer_settings" if "blocks" in dict(settings or {}) else "optimizer"
    try:
        Qng(**{**own, **dict(settings or {})}).check_d(d)
    except ValueError as e:
        raise ValueError(f"{where}.{e}") from None


def _cost_fingerprint(cost: Any) -> str:
    """A cost by value: a target state's amplitudes (hashed), an observable's
    terms, a function by its qualified name (its code cannot be compared)."""
    if isinstance(cost, torch.Tensor):
        return "target " + hashlib.sha256(cost.detach().cpu().to(torch.complex128).contiguous().numpy().tobytes()).hexdigest()[:16]
    if callable(cost) and not isinstance(cost, PauliSum):
        return f"function {getattr(cost, '__module__', '?')}.{getattr(cost, '__qualname__', type(cost).__name__)}"
    return f"observable {cost}"


def _landscape(circuit: Circuit, cost: Any, resolution: int, tol: float, rule: str):
    from qtrain.landscape import deceptiveness

    return deceptiveness(circuit, cost, resolution=resolution, tol=tol, rule=rule)


def global_min_of(given: float | None, landscape_min: float | None, best: float) -> tuple[float, str]:
    """C* and where it came from: the given value; else the lower of the
    landscape's (polished) minimum and the best cost reached; else the best
    cost reached."""
    if given is not None:
        return float(given), "given"
    if landscape_min is not None and landscape_min <= best:
        return landscape_min, "landscape"
    return best, "best found"


def rescore(result: LrGridResult, global_min: float, source: str) -> LrGridResult:
    """The same runs judged against another C* (the final one of a sharing
    degree, over all its optimizers): success, steps to success and the
    prediction all move to the new C*; nothing is retrained."""
    return score(result.optimizer, result.optimizer_settings, result.lrs, result.cost_history, result.trajectories, result.tol, global_min,
                 source, result.predicted_cost, result.predicted_minimum, result.deceptiveness_ratio, result.landscape_min, shots=result.shots)


def steps_to_success(history: torch.Tensor, threshold: float) -> torch.Tensor:
    """(T + 1, G, B) costs -> (G, B): the first step from which the cost stays
    <= threshold through the end (0: it started there), -1 where the final
    cost is above it. So a start has a step count exactly when it succeeds."""
    hit = history.double() <= threshold
    stays = hit.flip(0).long().cumprod(dim=0).sum(dim=0)  # how many of the last entries are all hits
    return torch.where(stays > 0, history.shape[0] - stays, torch.full_like(stays, -1))


def score(optimizer: str, settings: str, lrs: Sequence[float], history: torch.Tensor, trajectories: torch.Tensor, tol: float, c_star: float,
          source: str, predicted_cost: torch.Tensor | None = None, predicted_minimum: torch.Tensor | None = None, ratio: float | None = None,
          landscape_min: float | None = None, shots: int | None = None) -> LrGridResult:
    """Success, steps to success, the prediction and its agreement, and the
    table rows, all against the one threshold C* + tol (C* = `c_star`);
    `shots` (None: exact gradients) is recorded in the result and its rows."""
    final = history[-1].double()  # (G, B)
    success = final <= c_star + tol
    first = steps_to_success(history, c_star + tol)
    predicted = predicted_success = agreement = None
    if predicted_cost is not None:
        predicted = predicted_cost <= c_star + tol  # (B,): the same starts for every learning rate
        predicted_success = predicted.double().mean().expand(len(lrs)).clone()
        agreement = (success == predicted.unsqueeze(0)).double().mean(dim=1)
    rate = success.double().mean(dim=1)
    rows = []
    for g, lr in enumerate(lrs):
        reached = first[g][first[g] >= 0]  # the successful starts
        rows.append({
            "optimizer": optimizer, "optimizer_settings": settings, "lr": lr, "shots": shots, "starts": final.shape[1], "steps": history.shape[0] - 1,
            "success_rate": rate[g].item(), "predicted_success": None if predicted_success is None else predicted_success[g].item(),
            "agreement": None if agreement is None else agreement[g].item(),
            "final_cost_median": final[g].quantile(0.5).item(), "final_cost_min": final[g].min().item(),  # the middle two's mean
            "global_min": c_star, "global_min_source": source,
            "steps_to_success_median": reached.double().quantile(0.5).item() if reached.numel() else None,
        })
    return LrGridResult(
        optimizer=optimizer, optimizer_settings=settings, lrs=tuple(lrs), success_rate=rate, final_cost=final, cost_history=history,
        steps_to_success=first, global_min=c_star, global_min_source=source, tol=tol, predicted_cost=predicted_cost,
        predicted_minimum=predicted_minimum, predicted=predicted, predicted_success=predicted_success, agreement=agreement,
        deceptiveness_ratio=ratio, landscape_min=landscape_min, trajectories=trajectories, rows=rows, shots=shots,
    )
