"""Stenzel et al. (2026): success rate of each optimizer against the learning
rate and the sharing degree, with the landscape's prediction beside it.

For every (optimizer, sharing) cell the default shared ansatz trains
`starts` random starts (the same for every cell) at every learning rate of
`lrs` as one batched Lightning run (`qtrain.training.train_lr_grid`). A
finished cell is stored under cells/ and never retrained; at the end each
sharing degree's C* is taken over all its cells (and its landscape) and every
cell is scored against it. Writes results.csv, success_vs_lr.png,
trajectories_sharingK.png, TensorBoard events (live metrics per cell under
tb/, the hparams table with one row per (optimizer, sharing, learning rate))
and run.json; checkpoints under checkpoints/ let a killed run resume.

`shots` (null, an integer or a list) trains every cell again with gradients
estimated from that many shots per shifted evaluation (null: exact); success
is judged on the exact final cost either way. With several values it also
writes success_vs_shots.png and success_vs_shots.csv: each optimizer at its
best learning rate against the shots per step.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from tqdm import tqdm

from qtrain import _figures as figures, parallel, _tables as tables
from qtrain.engine.observables import PauliSum
from qtrain.errors import UsageError
from qtrain.landscape import RULES
from qtrain.initializations import INITS, SMALL_WIDTH, initial_angles
from qtrain._tasks import checks
from qtrain._tasks.shared_circuit import circuit_settings, plan_circuit
from qtrain.training import check_lrs, check_optimizer, global_min_of, rescore, train_lr_grid
from qtrain.training.grid import LrGridResult
from qtrain.training.layerwise import Layerwise, check_layerwise
from qtrain.training.optimizers import check_optimizer_settings
from qtrain.training.steppers import Qng, Stepper

__all__ = ["plan", "run"]

log = logging.getLogger(__name__)

#: results.csv, one row per (optimizer, sharing, learning rate). optimizer_settings: what differs from the optimizer's own
#: defaults ("defaults" if nothing), so that variants of one optimizer differ. success_rate: share of starts whose final cost
#: is <= global_min + tol; predicted_success: share whose polished grid terminal is (`qtrain.training.predict`);
#: steps_to_success_median: over the successful starts, the first step from which the cost stays <= global_min + tol.
#: shots: per shifted evaluation of every step's gradient, empty for exact gradients.
COLUMNS = ["optimizer", "optimizer_settings", "lr", "sharing", "shots", "starts", "steps", "success_rate", "predicted_success", "agreement",
           "final_cost_median", "final_cost_min", "global_min", "global_min_source", "steps_to_success_median", "deceptiveness_ratio"]
#: success_vs_shots.csv, one row per (optimizer, sharing, shots): the learning rate of the highest success rate at that many
#: shots (ties: the lower median final cost, then the first in `lrs`), and that success rate.
SHOTS_COLUMNS = ["optimizer", "optimizer_settings", "sharing", "shots", "lr", "success_rate", "final_cost_median", "starts", "steps"]


def plan(cfg: Any) -> dict[str, Any]:
    """Check every key before any work; every chosen optimizer is built once, on a dummy tensor."""
    lrs = check_lrs(checks.plain(cfg.lrs))  # the value as typed: "abc" is refused, naming `lrs`, not read letter by letter
    optimizers = _optimizers(cfg, lrs)
    sharing = checks.int_list(cfg.sharing, "sharing", minimum=1)
    for key in ("starts", "steps"):
        checks.positive_int(cfg[key], key)
    for key in ("log_every", "checkpoint_every"):
        checks.positive_int(cfg.trainer[key], f"trainer.{key}")
    checks.positive_int(cfg.resolution, "resolution", minimum=3)
    if not 0 <= cfg.tol < math.inf:
        raise ValueError(f"tol: must be a finite number >= 0, got {cfg.tol!r}")
    if cfg.global_min is not None and not math.isfinite(cfg.global_min):
        raise ValueError(f"global_min: must be a finite number or null, got {cfg.global_min!r}")
    if cfg.init_width is not None:
        checks.positive_float(cfg.init_width, "init_width")
    if cfg.rule not in RULES:
        raise ValueError(f"rule: must be one of {RULES}, got {cfg.rule!r}")
    if cfg.init not in INITS:
        raise ValueError(f"init: must be one of {INITS}, got {cfg.init!r}")
    layerwise = _layerwise(cfg.trainer.get("layerwise"))
    seed = checks.positive_int(cfg.seed, "seed", minimum=0)
    device = checks.device(cfg.device)
    world = parallel.check_trainer(cfg.trainer, device)
    if cfg.starts < world:
        raise ValueError(f"starts: {cfg.starts} starts cannot be shared among {world} ranks (trainer.devices x trainer.num_nodes); give at least {world}")
    circuit = plan_circuit(cfg)
    for k in sharing:  # what reads the circuit (gaussian's depth, identity blocks, the layers) is checked for every degree now
        built = circuit.build(k)
        try:
            initial_angles(built, cfg.init, 0, width=cfg.init_width, cost=circuit.cost)
            if layerwise is not None:
                layerwise.layer_of(built.n_params)
        except ValueError as e:
            raise ValueError(f"{'init' if layerwise is None or 'layerwise' not in str(e) else 'trainer.layerwise'} (sharing {k}): {e}") from None
    shots = _shots(checks.plain(cfg.shots))
    if shots != [None] and not isinstance(circuit.cost, PauliSum):
        raise ValueError(f"shots: cost={cfg.cost} is a target state's infidelity, not a Pauli sum, so it cannot be estimated from "
                         "measurements; give an observable cost (cost=global, cost=local or a Pauli string) or shots=null")
    noise, trajectories = checks.noise(cfg)
    if noise is not None:
        if shots != [None] and trajectories is not None:
            raise ValueError("noise.trajectories: shots with noise are measured on the exact density matrix; set noise.trajectories=null or shots=null")
        if noise.has_readout and not isinstance(circuit.cost, PauliSum):
            raise ValueError(f"noise.readout: readout error flips the measured bits of Pauli terms, and cost={cfg.cost} (a target "
                             "state's infidelity) is not measured that way; set noise.readout=0 or give an observable cost")
    refuse_stepper_runs(optimizers, circuit.cost, cfg.params, shots, noise, trajectories)  # before any cell runs
    return {"optimizers": optimizers, "lrs": lrs, "sharing": sharing, "seed": seed, "circuit": circuit, "layerwise": layerwise,
            "device": device, "dtype": checks.dtype(cfg.dtype), "shots": shots, "noise": noise, "trajectories": trajectories}


def _layerwise(value: Any) -> Layerwise | None:
    """`trainer.layerwise` checked (null, or a mapping of `Layerwise`'s keys), its refusal naming the key."""
    try:
        return check_layerwise(checks.plain(value))
    except ValueError as e:
        raise ValueError(f"trainer.{e}" if str(e).startswith("layerwise") else f"trainer.layerwise: {e}") from None


def _shots(value: Any) -> list[int | None]:
    """null, a positive integer or a list of them (null: exact gradients) -> the list, exact first, then ascending."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ValueError("shots: is empty; give null (exact), an integer >= 1 or a list of them")
    for v in values:
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"shots: every entry must be null (exact) or an integer >= 1, got {v!r}")
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"shots: {', '.join(repeated)} is given twice")
    return ([None] if None in values else []) + sorted(v for v in values if v is not None)


def _optimizers(cfg: Any, lrs: list[float]) -> dict[str, Any]:
    """The optimizers `cfg.optimizers` names, each a partial made from its `optimizer.<name>`
    config and built once on a dummy tensor, so a bad setting is refused here, naming its key."""
    names = checks.plain(cfg.optimizers)
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"optimizers: give a list of names from {sorted(cfg.optimizer)} (conf/optimizer/), got {names!r}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"optimizers: {', '.join(repeated)} is given twice (each optimizer is one cell of the grid)")
    optimizers = {}
    for name in names:
        if name not in cfg.optimizer:
            raise ValueError(f"optimizers: unknown optimizer {name!r}; known: {sorted(cfg.optimizer)} (conf/optimizer/)")
        try:
            optimizers[name] = instantiate(cfg.optimizer[name], _convert_="all")  # plain lists, not ListConfig
        except Exception as e:  # a _target_ that does not import, say (Hydra's InstantiationException)
            reason = str(e).splitlines()[0].split(", set env var HYDRA_FULL_ERROR")[0]  # (a hint about a traceback not shown)
            raise ValueError(f"optimizer.{name}: cannot build it: {reason}") from None
        try:
            check_optimizer(optimizers[name])
        except ValueError as e:
            raise ValueError(f"optimizer.{name}: {e}") from None
        check_optimizer_settings(optimizers[name], lrs=lrs, key=f"optimizer.{name}")
    return optimizers


def run(cfg: Any, out_dir: Path, planned: dict[str, Any] | None = None) -> dict[str, Any]:
    """The experiment, from `plan(cfg)` (`planned`: the plan the caller already made)."""
    p = planned if planned is not None else plan(cfg)
    settings, notes = circuit_settings(cfg, p["circuit"])
    keys = ("starts", "steps", "seed", "tol", "global_min", "init", "init_width", "resolution", "rule", "dtype")
    # exact alone is recorded as null, as in the folders written before shots existed, so that those still resume
    numbers = {"lrs": p["lrs"], **{key: cfg[key] for key in keys}, "shots": None if p["shots"] == [None] else p["shots"]}
    if cfg.init_width is None and cfg.init != "gaussian":  # the width those draw with (unused but for small), as folders before null recorded it
        numbers["init_width"] = SMALL_WIDTH
    # always recorded: None when noiseless, which a folder written before noise existed reads as (it has no such key)
    numbers.update(noise=None if p["noise"] is None else repr(p["noise"]), trajectories=p["trajectories"])
    if p["layerwise"] is not None:  # recorded only when used, so that folders written before it existed still resume
        numbers["layerwise"] = p["layerwise"].describe()
    optimizer_settings = {name: dict(part.keywords) for name, part in p["optimizers"].items()}
    tables.check_run_settings(out_dir / "run.json", {"task": "lr_grid", **settings, **numbers, "optimizer_settings": optimizer_settings}, notes)
    # ranks of several plan again, each its own share (Fabric's spawn cannot carry a plan's frozen dataclasses)
    alone = p if parallel.world_size(cfg.trainer) == 1 else None
    return parallel.run_on_ranks(_train, cfg, out_dir, alone,
                                devices=cfg.trainer.devices, num_nodes=cfg.trainer.num_nodes, device=p["device"])


def _train(ranks: parallel.Ranks, cfg: Any, out_dir: Path, planned: dict[str, Any] | None) -> dict[str, Any] | None:
    """Every rank trains its share of each cell's starts; rank 0 scores the gathered runs and writes the outputs."""
    p = planned if planned is not None else plan(cfg)
    cells = [(name, k, shots) for shots in p["shots"] for k in p["sharing"] for name in p["optimizers"]]
    results: dict[tuple[str, int, int | None], LrGridResult] = {}
    for name, k, shots in tqdm(cells, desc="cells (optimizer, sharing, shots)", disable=not (cfg.progress and ranks.is_main)):
        result = _cell(cfg, p, name, k, shots, out_dir, ranks)
        if result is not None:  # None off rank 0, which alone scores
            results[(name, k, shots)] = result
    if not ranks.is_main:
        return None
    rows, scored = _final_scores(cfg, p, results)
    tables.write_rows(out_dir / "results.csv", rows, COLUMNS)
    _outputs(cfg, p, rows, scored, out_dir)
    log.info("lr_grid: %s; results in %s", "; ".join(f"{r['optimizer']} k={r['sharing']} lr={r['lr']:g}{_shots_label(r['shots'], ' ')}: "
                                                     f"{r['success_rate']:.3f}" for r in rows[:6]), out_dir / "results.csv")
    return {"rows": rows}


def _shots_label(shots: int | None, before: str = "_") -> str:
    """"" for exact gradients (the names cells had before shots existed), else e.g. "_shots100"."""
    return "" if shots is None else f"{before}shots{shots}"


def _cell(cfg: Any, p: dict[str, Any], name: str, k: int, shots: int | None, out_dir: Path, ranks: parallel.Ranks) -> LrGridResult | None:
    """One (optimizer, sharing, shots) cell: loaded when finished, else trained (resuming from its checkpoints); None off rank 0."""
    cell = f"{name}_k{k}{_shots_label(shots)}"
    stored = out_dir / "cells" / f"{cell}.pt"
    if ranks.broadcast(stored.is_file() if ranks.is_main else None):  # rank 0's view decides, so that every rank skips alike
        if not ranks.is_main:
            return None
        result = torch.load(stored, weights_only=False)
        if not hasattr(result, "predicted_cost"):  # scored on the grid's own threshold, before predictions were polished
            raise UsageError(f"{stored} was written by an older qtrain whose scores cannot be redone; use a new hydra.run.dir")
        return result
    if ranks.is_main:
        log.info("training %s at sharing %d: %d learning rates x %d starts x %d steps, %s%s", name, k, len(p["lrs"]), cfg.starts, cfg.steps,
                 ("exact gradients" if shots is None else f"{shots} shots per shifted evaluation")
                 + ("" if p["noise"] is None else f" under noise ({p['noise'].describe()}" + (f", {p['trajectories']} trajectories)" if p["trajectories"] else ", density matrix)")),
                 f", the starts shared among {ranks.world_size} ranks" if ranks.world_size > 1 else "")
    result = train_lr_grid(
        p["circuit"].build(k), p["circuit"].cost, p["optimizers"][name], p["lrs"], cfg.starts, cfg.steps, seed=p["seed"], tol=float(cfg.tol),
        global_min=cfg.global_min, device=p["device"], dtype=p["dtype"], init=cfg.init, init_width=None if cfg.init_width is None else float(cfg.init_width), resolution=cfg.resolution,
        rule=cfg.rule, log_dir=out_dir / "tb" / cell, log_every=cfg.trainer.log_every, checkpoint_dir=out_dir / "checkpoints" / cell,
        checkpoint_every=cfg.trainer.checkpoint_every, progress=cfg.progress, ranks=ranks, shots=shots, noise=p["noise"], trajectories=p["trajectories"],
        layerwise=p["layerwise"],
    )
    if not ranks.is_main:
        return None
    stored.parent.mkdir(parents=True, exist_ok=True)
    tmp = stored.with_suffix(".tmp")
    torch.save(result, tmp)
    tmp.replace(stored)  # atomic: a cell is either whole on disk or absent
    return result


def _final_scores(cfg: Any, p: dict[str, Any], results: dict[tuple[str, int, int | None], LrGridResult]) -> tuple[list[dict], dict]:
    """Each sharing degree's C* over all its cells (every optimizer and shots: the final costs are exact, so any of them
    bounds the landscape's minimum), and every cell scored against it."""
    rows, scored = [], {}
    for k in p["sharing"]:
        cells = {(name, shots): results[(name, k, shots)] for shots in p["shots"] for name in p["optimizers"]}
        best = min(r.final_cost.min().item() for r in cells.values())
        landscape_min = next(iter(cells.values())).landscape_min
        c_star, source = global_min_of(cfg.global_min, landscape_min, best)
        for (name, shots), result in cells.items():
            scored[(name, k, shots)] = rescore(result, c_star, source)
            rows += [{**row, "sharing": k, "deceptiveness_ratio": result.deceptiveness_ratio} for row in scored[(name, k, shots)].rows]
    return rows, scored


def best_lr_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """success_vs_shots.csv's rows (`SHOTS_COLUMNS`): for each (optimizer, settings, sharing, shots) the results row of the
    highest success rate (ties: the lower median final cost, then the first learning rate), in the order they first appear."""
    best: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = (row["optimizer"], row["optimizer_settings"], row["sharing"], row["shots"])
        held = best.get(key)
        if held is None or (row["success_rate"], -row["final_cost_median"]) > (held["success_rate"], -held["final_cost_median"]):
            best[key] = row
    return [{column: row[column] for column in SHOTS_COLUMNS} for row in best.values()]


def _outputs(cfg: Any, p: dict[str, Any], rows: list[dict], scored: dict, out_dir: Path) -> None:
    from qtrain._tb import log_hparams, open_writer

    writer = open_writer(out_dir)
    # one success-against-learning-rate figure per shots value: the first (exact when swept) keeps the name it always had
    made = {f"success_vs_lr{_shots_label(shots) if i else ''}": figures.success_vs_lr([r for r in rows if r["shots"] == shots])
            for i, shots in enumerate(p["shots"])}
    if len(p["shots"]) > 1:
        best = best_lr_rows(rows)
        tables.write_rows(out_dir / "success_vs_shots.csv", best, SHOTS_COLUMNS)
        made["success_vs_shots"] = figures.success_vs_shots(best)
    first_shots = p["shots"][0]
    for k in p["sharing"]:
        first = scored[(next(iter(p["optimizers"])), k, first_shots)]
        if first.deceptiveness_ratio is not None:
            writer.add_scalar("landscape/deceptiveness", first.deceptiveness_ratio, k)
            writer.add_scalar("landscape/global_basin", 1 - first.deceptiveness_ratio, k)
        view = figures.trajectories(p["circuit"].build(k), p["circuit"].cost, {name: scored[(name, k, first_shots)] for name in p["optimizers"]},
                                    cfg.resolution, f"sharing {k}{_shots_label(first_shots, ', ')}")
        if view is not None:
            made[f"trajectories_sharing{k}"] = view
    for name, fig in made.items():
        fig.savefig(out_dir / f"{name}.png", dpi=110)
        writer.add_figure(name, fig)
    for row in rows:
        hparams = {"optimizer": row["optimizer"], "optimizer_settings": row["optimizer_settings"], "sharing": row["sharing"], "lr": row["lr"],
                   "shots": "exact" if row["shots"] is None else str(row["shots"]),  # text: one type for the whole column
                   "starts": row["starts"], "steps": row["steps"]}
        metrics = {"success_rate": row["success_rate"], "final_cost_median": row["final_cost_median"], "predicted_success": row["predicted_success"]}
        log_hparams(writer, hparams, metrics, run_name=f"hparams/{row['optimizer']}_k{row['sharing']}_lr{row['lr']:g}{_shots_label(row['shots'])}")
    writer.close()


def refuse_stepper_runs(optimizers: dict[str, Any], cost: Any, params: int, shots: list[int | None] | tuple[None, ...] = (None,),
                        noise: Any = None, trajectories: int | None = None, where: str = "") -> None:
    """What a closure-based optimizer (qng, spsa, rotosolve) of `optimizers` cannot train (a cost, shots, noise, qng's
    blocks against `params` parameters), refused in one line naming its key (`where` is added to the message)."""
    for name, optimizer in optimizers.items():
        stepper = check_optimizer(optimizer)[1]
        if not issubclass(stepper, Stepper):
            continue
        for shots_value in shots:
            refusal = stepper.refuse_run(cost, shots_value, noise, trajectories)
            if refusal is not None:
                raise ValueError(f"optimizers: {name}: {refusal}{where}")
        if stepper is Qng:
            try:
                Qng(**optimizer.keywords).check_d(params)
            except ValueError as e:
                raise ValueError(f"optimizer.{name}.{e}{where}") from None


def plan_optimizers(cfg: Any, lrs: list[float]) -> dict[str, Any]:
    """The optimizers `cfg.optimizers` names (each from its `optimizer.<name>` config, built and checked once): for the
    experiments that train as this one does (remedies)."""
    return _optimizers(cfg, lrs)
