"""Remedies people try on plateaus, measured in one plateau: initializations,
layerwise training and optimizers beyond torch's, on McClean's circuit and on
qtrain's default shared circuit.

For every circuit, every init of `inits` (and, on McClean's circuit, the first
init other than identity_blocks with layerwise training) and every optimizer of `optimizers`:
- the gradient variance at the start, over `samples` draws of the start (the
  first parameter's, McClean's theta_{1,1}, and the mean over parameters: at an
  identity start the first rotation's gradient is the same at every draw, so its
  variance is 0 whatever the rest of the circuit does, and one parameter alone
  would mislead);
- `starts` runs of `steps` steps at every learning rate of `lrs`
  (`qtrain.training.train_lr_grid`), scored against the circuit's C*: the best
  final cost of any of its runs (and, for the shared circuit, its landscape's
  minimum), plus `tol`.

McClean's circuit: R_Y(pi/4) on every qubit, then `mcclean_layers` layers of a
rotation about a seeded random Pauli axis on every qubit and a CZ line; cost
Z0 Z1. Its identity-blocks form has the same depth: the R_Y(pi/4) layer, then
half the layers, then their mirror (`builders.identity_blocks`). The shared
circuit is lr_grid's (params, qubits, axes, entangler, cost, circuit_seed) at
sharing degree `sharing`; its three parameters are the whole circuit, so it has
no identity-blocks form (its mirror would be another circuit with another
minimum): that row records why, instead of a number.

The plateau itself needs more qubits and layers than a run of every optimizer
can afford, so the variance at the start is also measured against n
(`variance_qubits`) on McClean's circuit at `variance_layers` layers:
variance.csv.

Writes results.csv (one row per circuit, init, schedule and optimizer: the
variances at the start, the best learning rate's success rate and median final
cost), results_by_lr.csv (every learning rate), variance.csv, remedies.png, TensorBoard
scalars and the hparams table, run.json. Finished cells are stored under
cells/ and never retrained; checkpoints under checkpoints/ resume a killed
cell.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from qtrain import _figures as figures, _tables as tables
from qtrain.builders import identity_blocks, mcclean_draw, mcclean_layer
from qtrain.circuit import Circuit
from qtrain.diagnostics.gradients import summarize
from qtrain.initializations import INITS, initial_angles, resolved_width
from qtrain._tasks import checks
from qtrain._tasks.lr_grid import plan_optimizers, refuse_stepper_runs
from qtrain._tasks.shared_circuit import circuit_settings, plan_circuit
from qtrain.training import global_min_of, rescore, train_lr_grid
from qtrain.training.grid import LrGridResult
from qtrain.training.layerwise import Layerwise, check_layerwise

__all__ = ["COLUMNS", "LR_COLUMNS", "VARIANCE_COLUMNS", "mcclean_training_circuit", "plan", "run"]

log = logging.getLogger(__name__)

CIRCUITS = ("mcclean", "shared")
#: results.csv: one row per (circuit, init, schedule, optimizer). grad_var_first / grad_var_mean: the variance over
#: `samples` starts of dC/dtheta_first and its mean over all parameters; success_rate, lr, final_cost_median: at the
#: learning rate of the highest success rate (ties: the lower median final cost); note: why a row has no numbers.
COLUMNS = ["circuit", "init", "schedule", "optimizer", "params", "grad_var_first", "grad_var_first_ci_low", "grad_var_first_ci_high",
           "grad_var_mean", "lr", "success_rate", "final_cost_median", "global_min", "global_min_source", "starts", "steps", "seconds", "note"]
#: variance.csv: the gradient variance at the start against the number of qubits, on McClean's circuit at `variance_layers`
VARIANCE_COLUMNS = ["init", "schedule", "qubits", "layers", "params", "samples", "grad_var_first", "grad_var_first_ci_low", "grad_var_first_ci_high",
                    "grad_var_mean"]
LR_COLUMNS = ["circuit", "init", "schedule", "optimizer", "lr", "success_rate", "final_cost_median", "final_cost_min", "steps_to_success_median"]


def plan(cfg: Any) -> dict[str, Any]:
    """Check every key before any work: the circuits, inits, optimizers (each built once), the layerwise schedule."""
    checks.one_process(cfg)
    circuits = checks.name_list(cfg.circuits, "circuits", CIRCUITS)
    inits = checks.name_list(cfg.inits, "inits", INITS)
    lrs = checks.number_list(cfg.lrs, "lrs")
    optimizers = plan_optimizers(cfg, lrs)
    for key in ("starts", "steps"):
        checks.positive_int(cfg[key], key)
    samples = checks.positive_int(cfg.samples, "samples", minimum=2)
    if not 0 <= cfg.tol < math.inf:
        raise ValueError(f"tol: must be a finite number >= 0, got {cfg.tol!r}")
    if cfg.init_width is not None:
        checks.positive_float(cfg.init_width, "init_width")
    layers = checks.positive_int(cfg.mcclean_layers, "mcclean_layers")
    qubits = checks.positive_int(cfg.mcclean_qubits, "mcclean_qubits", minimum=2)
    if qubits > 14:
        raise ValueError(f"mcclean_qubits: at most 14 (every start is a state of 2^n amplitudes, trained), got {qubits}")
    layerwise = _layerwise(cfg.layerwise, layers, "mcclean_layers") if "mcclean" in circuits else None
    if layerwise is not None and _layerwise_init(inits) is None:
        raise ValueError("layerwise: its row trains an init that is not identity_blocks (holding the layers not yet added at 0 would break "
                         "the identity that init starts from), and inits has no other; add one to inits or set layerwise=null")
    variance_qubits = checks.int_list(cfg.variance_qubits, "variance_qubits", minimum=2) if cfg.variance_qubits is not None else []
    if variance_qubits and max(variance_qubits) > 16:
        raise ValueError(f"variance_qubits: at most 16, got {max(variance_qubits)}")
    variance_layers = checks.positive_int(cfg.variance_layers, "variance_layers")
    if variance_qubits and "identity_blocks" in inits and variance_layers % 2:
        raise ValueError(f"variance_layers: identity blocks mirror half of the layers, so give an even number, got {variance_layers}")
    # the variance sweep's circuits have variance_layers layers: the same schedule over those
    variance_layerwise = _layerwise(cfg.layerwise, variance_layers, "variance_layers") if variance_qubits and layerwise is not None else None
    shared = plan_circuit(cfg) if "shared" in circuits else None
    sharing = checks.positive_int(cfg.sharing, "sharing")
    p = {"variance_qubits": variance_qubits, "variance_layers": variance_layers, "variance_layerwise": variance_layerwise, "circuits": circuits,
         "inits": inits, "lrs": lrs, "optimizers": optimizers, "samples": samples, "layerwise": layerwise, "shared": shared, "sharing": sharing,
         "seed": checks.positive_int(cfg.seed, "seed", minimum=0), "dtype": checks.dtype(cfg.dtype)}
    cells = p["cells"] = _cells(cfg, p)
    for cell in cells:  # every (circuit, init) is built and its start drawn once now: a refusal comes before any training
        if cell["note"] is None:
            initial_angles(cell["circuit"], cell["init"], 0, width=cfg.init_width, cost=cell["cost"])
            refuse_stepper_runs(optimizers, cell["cost"], cell["circuit"].n_params, where=f" ({cell['circuit_name']} circuit)")
    return p


def _layerwise_init(inits: list[str]) -> str | None:
    """The init the layerwise row trains: the first that is not identity_blocks."""
    return next((init for init in inits if init != "identity_blocks"), None)


def _layerwise(value: Any, layers: int, layers_key: str) -> Layerwise | None:
    """`layerwise` (null, or a mapping of steps_per_stage[, layers_per_stage]): McClean's layers (the key `layers_key`)
    are the layers, and a refusal about them names that key."""
    value = checks.plain(value)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"layerwise: give null or a mapping such as {{steps_per_stage: 10}}, got {value!r}")
    if "layers" in value:
        raise ValueError("layerwise.layers: is McClean's circuit's own (mcclean_layers); give steps_per_stage[, layers_per_stage]")
    try:
        return check_layerwise({"layers": layers, **value})
    except ValueError as e:
        message = str(e).replace("layerwise.layers (", f"{layers_key} (").replace("layerwise.layers=", f"{layers_key}=")
        raise ValueError(message if message.startswith(("layerwise", layers_key)) else f"layerwise: {message}") from None


def mcclean_training_circuit(qubits: int, layers: int, seed: int, mirrored: bool) -> Circuit:
    """One seeded McClean circuit (R_Y(pi/4), then `layers` random-axis layers with CZ lines); `mirrored`: the
    same depth as identity blocks, the R_Y(pi/4) layer then `layers // 2` layers and their mirror."""
    axes = mcclean_draw(qubits, layers, 1, seed).axes
    prep = Circuit(qubits)
    for q in range(qubits):
        prep.ry(q, math.pi / 4)
    if not mirrored:
        for layer in range(layers):
            mcclean_layer(prep, layer, axes[layer])
        return prep
    block = Circuit(qubits)
    for layer in range(layers // 2):
        mcclean_layer(block, layer, axes[layer])
    return identity_blocks(block, before=prep)


def _cells(cfg: Any, p: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (circuit, init, schedule): its circuit and cost, or a note saying why it has no numbers."""
    cells = []
    for name in p["circuits"]:
        if name == "mcclean":
            cost: Any = "Z0 Z1"
            schedules = [(init, "plain") for init in p["inits"]] + ([(_layerwise_init(p["inits"]), "layerwise")] if p["layerwise"] is not None else [])
            for init, schedule in schedules:
                mirrored = init == "identity_blocks"
                note = None
                if mirrored and cfg.mcclean_layers % 2:
                    note = f"identity blocks mirror half of the layers: mcclean_layers={cfg.mcclean_layers} is odd"
                circuit = None if note else mcclean_training_circuit(cfg.mcclean_qubits, cfg.mcclean_layers, cfg.circuit_seed, mirrored)
                cells.append({"circuit_name": name, "init": init, "schedule": schedule, "circuit": circuit, "cost": cost, "note": note})
        else:
            shared = p["shared"]
            for init in p["inits"]:
                note = ("the shared circuit's parameters are the whole circuit: mirrored it would be another circuit with another minimum"
                        if init == "identity_blocks" else None)
                cells.append({"circuit_name": name, "init": init, "schedule": "plain", "circuit": None if note else shared.build(p["sharing"]),
                              "cost": shared.cost, "note": note})
    return cells


def run(cfg: Any, out_dir: Path, planned: dict[str, Any] | None = None) -> dict[str, Any]:
    p = planned if planned is not None else plan(cfg)
    settings: dict[str, Any] = {"task": "remedies"}
    notes: dict[str, Any] = {}
    if p["shared"] is not None:
        settings, notes = circuit_settings(cfg, p["shared"])
        settings["task"] = "remedies"
    keys = ("circuits", "inits", "lrs", "starts", "steps", "samples", "tol", "init_width", "mcclean_qubits", "mcclean_layers", "sharing", "seed", "dtype",
            "variance_layers", "variance_qubits", "circuit_seed")
    settings.update({key: checks.plain(cfg[key]) for key in keys}, layerwise=None if p["layerwise"] is None else p["layerwise"].describe(),
                    optimizer_settings={name: dict(part.keywords) for name, part in p["optimizers"].items()})
    tables.check_run_settings(out_dir / "run.json", settings, notes)
    variance_rows = _variance_sweep(cfg, p, out_dir)
    cells = p["cells"]
    work = [(cell, name) for cell in cells for name in p["optimizers"]]
    starts_rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    results: dict[tuple[str, str, str, str], tuple[LrGridResult, float]] = {}
    for cell in cells:
        if cell["note"] is None:
            starts_rows[_key(cell)] = _variance_at_start(cfg, p, cell)
    for cell, name in tqdm(work, desc="remedies (circuit, init, optimizer)", disable=not cfg.progress):
        if cell["note"] is None:
            results[(*_key(cell), name)] = _train(cfg, p, cell, name, out_dir)
    rows, by_lr = _score(cfg, p, cells, starts_rows, results)
    tables.write_rows(out_dir / "results.csv", rows, COLUMNS)
    tables.write_rows(out_dir / "results_by_lr.csv", by_lr, LR_COLUMNS)
    _outputs(rows, variance_rows, out_dir)
    for row in rows:
        if row["note"]:
            log.info("%s / %s / %s: %s", row["circuit"], row["init"], row["optimizer"], row["note"])
        else:
            log.info("%s / %s%s / %s: Var(first) %.3g, Var(mean) %.3g; success %.2f at lr %g", row["circuit"], row["init"],
                     "" if row["schedule"] == "plain" else " + layerwise", row["optimizer"], row["grad_var_first"], row["grad_var_mean"],
                     row["success_rate"], row["lr"])
    return {"rows": rows, "by_lr": by_lr, "variance": variance_rows}


def _variance_sweep(cfg: Any, p: dict[str, Any], out_dir: Path) -> list[dict[str, Any]]:
    """variance.csv: every init's (and layerwise's) gradient variance at the start on McClean's circuit at `variance_layers`
    layers, for every n of `variance_qubits`; rows written one by one, so a rerun resumes."""
    path = out_dir / "variance.csv"
    rows = [{k: (v if k in ("init", "schedule") else float(v) if "var" in k else int(v)) for k, v in r.items()} for r in tables.read_rows(path)]
    done = {(r["init"], r["schedule"], r["qubits"]) for r in rows}
    starts = [(init, "plain") for init in p["inits"]] + ([(_layerwise_init(p["inits"]), "layerwise")] if p["layerwise"] is not None else [])
    todo = [(init, schedule, n) for n in p["variance_qubits"] for init, schedule in starts if (init, schedule, n) not in done]
    layers = p["variance_layers"]
    schedule_of = {"layerwise": p["variance_layerwise"], "plain": None}
    for init, schedule, n in tqdm(todo, desc="variance at the start (init, qubits)", disable=not cfg.progress):
        cell = {"circuit_name": "mcclean", "init": init, "schedule": schedule, "cost": "Z0 Z1",
                "circuit": mcclean_training_circuit(n, layers, cfg.circuit_seed, init == "identity_blocks")}
        stats = _variance_at_start(cfg, {**p, "layerwise": schedule_of[schedule]}, cell)
        rows.append({"init": init, "schedule": schedule, "qubits": n, "layers": layers, "samples": p["samples"], **stats})
        tables.write_rows(path, rows, VARIANCE_COLUMNS)
    return rows


def _key(cell: dict[str, Any]) -> tuple[str, str, str]:
    return cell["circuit_name"], cell["init"], cell["schedule"]


def _starts(cfg: Any, p: dict[str, Any], cell: dict[str, Any], count: int, seed: int) -> torch.Tensor:
    """`count` starts of the cell's init (the layers a layerwise schedule has not added at 0), float64."""
    theta = initial_angles(cell["circuit"], cell["init"], count, torch.Generator().manual_seed(seed), torch.float64, cfg.init_width, cell["cost"])
    return p["layerwise"].start_values(theta) if cell["schedule"] == "layerwise" else theta


def _variance_at_start(cfg: Any, p: dict[str, Any], cell: dict[str, Any]) -> dict[str, Any]:
    """The gradient's variance over `samples` starts: of the first parameter (with its bootstrap interval) and its mean over parameters."""
    circuit = cell["circuit"]
    theta = _starts(cfg, p, cell, p["samples"], p["seed"] + 1_000_003)  # draws of their own: not the trained starts
    _, grads = circuit.value_and_grad(theta, cell["cost"], dtype=p["dtype"])
    grads = grads.double()
    first = summarize(grads[:, 0], seed=p["seed"])
    width = f", width {resolved_width(circuit, cell['init'], cfg.init_width, cell['cost']):.4g}" if cell["init"] in ("small", "gaussian") else ""
    log.info("%s / %s%s: %d parameters%s; Var(dC/dtheta_1) = %.3g", cell["circuit_name"], cell["init"],
             "" if cell["schedule"] == "plain" else " + layerwise", circuit.n_params, width, float(first.var))
    return {"params": circuit.n_params, "grad_var_first": float(first.var), "grad_var_first_ci_low": float(first.var_ci_low),
            "grad_var_first_ci_high": float(first.var_ci_high), "grad_var_mean": grads.var(dim=0).mean().item()}


def _train(cfg: Any, p: dict[str, Any], cell: dict[str, Any], name: str, out_dir: Path) -> tuple[LrGridResult, float]:
    """One (circuit, init, schedule, optimizer) cell at every learning rate: loaded when stored, else trained."""
    label = f"{cell['circuit_name']}_{cell['init']}_{cell['schedule']}_{name}"
    stored = out_dir / "cells" / f"{label}.pt"
    if stored.is_file():
        held = torch.load(stored, weights_only=False)
        return held["result"], held["seconds"]
    began = time.perf_counter()
    result = train_lr_grid(
        cell["circuit"], cell["cost"], p["optimizers"][name], p["lrs"], cfg.starts, cfg.steps, seed=p["seed"], tol=float(cfg.tol),
        dtype=p["dtype"], init=cell["init"], init_width=cfg.init_width, layerwise=p["layerwise"] if cell["schedule"] == "layerwise" else None,
        log_dir=out_dir / "tb" / label, checkpoint_dir=out_dir / "checkpoints" / label, log_every=cfg.trainer.log_every,
        checkpoint_every=cfg.trainer.checkpoint_every,
    )
    seconds = time.perf_counter() - began
    stored.parent.mkdir(parents=True, exist_ok=True)
    tmp = stored.with_suffix(".tmp")
    torch.save({"result": result, "seconds": seconds}, tmp)
    tmp.replace(stored)  # atomic: a cell is whole on disk or absent
    return result, seconds


def _score(cfg: Any, p: dict[str, Any], cells: list[dict[str, Any]], starts_rows: dict, results: dict) -> tuple[list[dict], list[dict]]:
    """Each circuit's C* over all its cells (and the landscape's minimum where there is one); every cell scored against it,
    reported at its best learning rate."""
    rows, by_lr = [], []
    for circuit_name in p["circuits"]:
        mine = {key: value for key, value in results.items() if key[0] == circuit_name}
        c_star, source = math.nan, "none"
        if mine:
            best = min(r.final_cost.min().item() for r, _ in mine.values())
            landscape = [r.landscape_min for r, _ in mine.values() if r.landscape_min is not None]
            c_star, source = global_min_of(None, min(landscape) if landscape else None, best)
        for cell in (c for c in cells if c["circuit_name"] == circuit_name):
            for name in p["optimizers"]:
                base = {"circuit": circuit_name, "init": cell["init"], "schedule": cell["schedule"], "optimizer": name, "starts": cfg.starts,
                        "steps": cfg.steps, "global_min": c_star, "global_min_source": source, "note": cell["note"] or ""}
                if cell["note"] is not None:
                    rows.append({**{c: None for c in COLUMNS}, **base})
                    continue
                result, seconds = mine[(*_key(cell), name)]
                scored = rescore(result, c_star, source)
                for row in scored.rows:
                    by_lr.append({**{c: row.get(c) for c in LR_COLUMNS}, **{k: base[k] for k in ("circuit", "init", "schedule", "optimizer")}})
                top = max(scored.rows, key=lambda r: (r["success_rate"], -r["final_cost_median"]))
                rows.append({**base, **starts_rows[_key(cell)], "lr": top["lr"], "success_rate": top["success_rate"],
                             "final_cost_median": top["final_cost_median"], "seconds": round(seconds, 2)})
    return rows, by_lr


def _outputs(rows: list[dict[str, Any]], variance_rows: list[dict[str, Any]], out_dir: Path) -> None:
    from qtrain._tb import log_hparams, open_writer

    writer = open_writer(out_dir)
    for row in variance_rows:
        writer.add_scalar(f"variance_at_start/{row['init']}{'' if row['schedule'] == 'plain' else '+layerwise'}", row["grad_var_mean"], row["qubits"])
    fig = figures.remedies(rows, variance_rows)
    fig.savefig(out_dir / "remedies.png", dpi=120)
    writer.add_figure("remedies", fig)
    for row in rows:
        if row["note"]:
            continue
        tag = f"{row['circuit']}/{row['init']}{'' if row['schedule'] == 'plain' else '+layerwise'}/{row['optimizer']}"
        writer.add_scalar(f"success_rate/{tag}", row["success_rate"], 0)
        writer.add_scalar(f"grad_var_first/{tag}", row["grad_var_first"], 0)
        log_hparams(writer, {"circuit": row["circuit"], "init": row["init"], "schedule": row["schedule"], "optimizer": row["optimizer"],
                             "lr": row["lr"]},
                    {"success_rate": row["success_rate"], "grad_var_first": row["grad_var_first"], "grad_var_mean": row["grad_var_mean"],
                     "final_cost_median": row["final_cost_median"]}, run_name=f"hparams/{tag.replace('/', '_')}")
    writer.close()
