"""Stenzel et al. (2026): parameter sharing against landscape deceptiveness.

For every sharing degree and resolution the default shared ansatz
(`qtrain.builders.shared_ansatz`) is sampled on the full R^d grid with exact
gradients (Fourier path), every point is followed to its terminal minimum, and
the deceptive share is counted per tolerance and successor rule. Writes
results.csv, gradient_norms.csv (exact and finite-difference |g|),
report.md (the paper's claims checked against the numbers), figures, and
TensorBoard events into the run directory; finished (sharing, resolution)
groups are kept and skipped on a rerun.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from qtrain import _figures as figures, parallel, _tables as tables
from qtrain.landscape import (
    METHODS,
    RULES,
    check_grid,
    check_tol,
    classify,
    finite_difference_grad_norm,
    sample_landscape,
    successors,
    terminals,
)
from qtrain._tasks import checks
from qtrain._tasks.deceptiveness_report import write_report
from qtrain._tasks.resumable import rank0_writer, stored_rows
from qtrain._tasks.shared_circuit import circuit_settings, plan_circuit

__all__ = ["plan", "run"]

log = logging.getLogger(__name__)

COLUMNS = ["sharing", "resolution", "tol", "rule", "n_params", "global_min", "ratio", "n_minima", "grad_norm_q25", "grad_norm_q50", "grad_norm_q75"]
NORM_COLUMNS = ["sharing", "resolution", "method", "q05", "q25", "q50", "q75", "q95", "mean"]
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def plan(cfg: Any) -> dict[str, Any]:
    """Check every key, and that the finest grid fits, before any work."""
    sharing = checks.int_list(cfg.sharing, "sharing", minimum=1)
    resolutions = checks.int_list(cfg.resolution, "resolution", minimum=3)
    tols = checks.number_list(checks.plain(cfg.tol), "tol")
    for t in tols:
        try:
            check_tol(t)
        except ValueError as e:
            raise ValueError(f"tol: {e}") from None
    rules = checks.plain(cfg.rule)
    rules = [rules] if not isinstance(rules, list) else rules
    if not rules:
        raise ValueError(f"rule: give at least one of {RULES}")
    for rule in rules:
        if rule not in RULES:
            raise ValueError(f"rule: must be one of {RULES}, got {rule!r}")
    if cfg.method not in METHODS:
        raise ValueError(f"method: must be one of {METHODS}, got {cfg.method!r}")
    circuit = plan_circuit(cfg)
    cpu = torch.device("cpu")  # landscapes are computed on the CPU
    parallel.check_trainer(cfg.trainer, cpu)
    budget, shared = parallel.rank_budget(cfg.trainer, cpu, cfg.memory_budget)  # each rank holds its own grid
    try:
        check_grid(circuit.build(1), max(resolutions), budget)
    except MemoryError as e:
        raise MemoryError(f"resolution/params: {e}{shared}") from None
    return {"sharing": sharing, "resolutions": resolutions, "tols": sorted(set(tols)), "rules": list(dict.fromkeys(rules)),
            "circuit": circuit, "budget": budget}


def run(cfg: Any, out_dir: Path, planned: dict[str, Any] | None = None) -> dict[str, Any]:
    """The experiment, from `plan(cfg)` (`planned`: the plan the caller already made)."""
    p = planned if planned is not None else plan(cfg)
    # The block every sharing degree repeats, by its gates: a folder made with another
    # circuit (an older default, say) is refused instead of mixing its rows with these.
    settings, notes = circuit_settings(cfg, p["circuit"])
    tables.check_run_settings(out_dir / "run.json", {"task": "deceptiveness", **settings, "relative_tol": cfg.relative_tol, "method": cfg.method}, notes)
    # ranks of several plan again, each its own share (Fabric's spawn cannot carry a plan's frozen dataclasses)
    alone = p if parallel.world_size(cfg.trainer) == 1 else None
    return parallel.run_on_ranks(_sample, cfg, out_dir, alone,
                                devices=cfg.trainer.devices, num_nodes=cfg.trainer.num_nodes)


def _sample(ranks: parallel.Ranks, cfg: Any, out_dir: Path, planned: dict[str, Any] | None) -> dict[str, Any] | None:
    """The (sharing, resolution) groups are dealt to the ranks (the Fourier
    path and pointer jumping need a whole grid) and run in rounds; after each
    round rank 0 gathers the finished groups and rewrites the tables, so a
    rerun resumes."""
    p = planned if planned is not None else plan(cfg)
    rows, norm_rows = stored_rows(ranks, out_dir, _typed, "results.csv", "gradient_norms.csv")
    wanted = [(k, R) for k in p["sharing"] for R in p["resolutions"]]
    have = {(r["sharing"], r["resolution"], r["tol"], r["rule"]) for r in rows}
    done = {(k, R) for k, R in wanted if all((k, R, t, u) in have for t in p["tols"] for u in p["rules"])}
    todo = [w for w in wanted if w not in done]
    views: dict[int, Any] = {}  # sharing degree -> its landscape figure
    if ranks.is_main:
        log.info("deceptiveness: sharing %s, resolutions %s, tol %s, rules %s; %d of %d groups already done%s", p["sharing"], p["resolutions"], p["tols"], p["rules"], len(done), len(wanted),
                 f"; groups dealt to {ranks.world_size} ranks" if ranks.world_size > 1 else "")
    dealt = _deal(todo, ranks.world_size, cfg.params)
    with rank0_writer(ranks, out_dir, log, lambda: f"finished groups are in {out_dir / 'results.csv'}") as writer:
        with tqdm(total=len(todo), desc="landscapes", disable=not (cfg.progress and ranks.is_main)) as bar:
            for i in range(max(map(len, dealt))):  # round i: every rank's i-th group, then a gather
                mine = _group(cfg, p, *dealt[ranks.rank][i]) if i < len(dealt[ranks.rank]) else None
                groups = [share[i] for share in dealt if i < len(share)]
                for finished in ranks.gather_objects(mine):
                    if finished is None or writer is None:  # the writer is rank 0's alone
                        continue
                    k, R = finished["sharing"], finished["resolution"]
                    rows = [r for r in rows if (r["sharing"], r["resolution"]) != (k, R)] + finished["rows"]
                    norm_rows = [r for r in norm_rows if (r["sharing"], r["resolution"]) != (k, R)] + finished["norm_rows"]
                    for tag, value in finished["scalars"]:
                        writer.add_scalar(tag, value, k)
                    writer.add_histogram(f"grad_norm/R={R}", finished["histogram"], k)
                    if finished["view"] is not None:
                        views[k] = finished["view"]
                    log.info("sharing %d, R = %d: %s in %.1f s", k, R, ", ".join(f"ratio {r['ratio']:.4f} (tol {r['tol']:g}, {r['rule']})" for r in finished["rows"]), finished["seconds"])
                if ranks.is_main:
                    tables.write_rows(out_dir / "results.csv", _sorted(rows, COLUMNS[:4]), COLUMNS)
                    tables.write_rows(out_dir / "gradient_norms.csv", _sorted(norm_rows, NORM_COLUMNS[:3]), NORM_COLUMNS)
                bar.update(len(groups))
        if writer is None:  # off rank 0: rank 0 alone draws, reports and returns
            return None
        from qtrain._tb import log_hparams

        _figures(writer, rows, norm_rows, views, out_dir)
        report = write_report(out_dir / "report.md", rows, norm_rows, cfg)
        log_hparams(writer, {"sharing": str(p["sharing"]), "resolution": str(p["resolutions"]), "tol": str(p["tols"]), "rule": str(p["rules"]), "params": cfg.params, "qubits": cfg.qubits, "circuit_seed": cfg.circuit_seed, "cost": str(cfg.cost)}, report["metrics"])
    log.info("claims on this circuit: %s; report in %s", "; ".join(f"{name}: {verdict}" for name, verdict in report["verdicts"].items()), out_dir / "report.md")
    return {"rows": _sorted(rows, COLUMNS[:4]), "gradient_norms": norm_rows, "report": report}


def _deal(groups: list[tuple[int, int]], world: int, params: int) -> list[list[tuple[int, int]]]:
    """The groups dealt to `world` ranks, largest first, each to the rank with
    the least work so far (a grid of resolution R costs about R^d): the rounds
    then take about as long on every rank."""
    dealt: list[list[tuple[int, int]]] = [[] for _ in range(world)]
    load = [0] * world
    for k, R in sorted(groups, key=lambda g: (-g[1], g[0])):
        rank = load.index(min(load))
        dealt[rank].append((k, R))
        load[rank] += R**params
    return dealt


def _group(cfg: Any, p: dict[str, Any], k: int, R: int) -> dict[str, Any]:
    """One (sharing, resolution) group: its table rows, TensorBoard scalars and
    histogram, and (finest resolution) its landscape figure; small enough to send to rank 0."""
    start = time.perf_counter()
    landscape = sample_landscape(p["circuit"].build(k), p["circuit"].cost, R, cfg.method, memory_budget=p["budget"])
    grad_norm = landscape.grads.pow(2).sum(dim=0).sqrt_()
    exact_q = _quantiles(grad_norm)
    norm_rows = [_norm_row(k, R, "exact", exact_q, grad_norm), _norm_row(k, R, "finite_difference", None, finite_difference_grad_norm(landscape.values))]
    rows, scalars, view = [], [], None
    for rule in p["rules"]:
        succ = successors(landscape.values, landscape.grads, rule)
        terminal = terminals(succ)
        for tol in p["tols"]:
            result = classify(landscape.values, grad_norm, succ, terminal, tol, rule, bool(cfg.relative_tol))
            rows.append(_row(k, R, tol, rule, p["circuit"].params, result, exact_q))
            scalars.append((f"deceptiveness/R={R}/tol={tol:g}/{rule}", result.ratio))
            if R == max(p["resolutions"]) and tol == p["tols"][0] and rule == p["rules"][0]:
                view = figures.landscape_view(result, f"sharing {k}, R = {R}")
                if view is None:
                    log.warning("landscape figures are drawn for 2 or 3 parameters only; skipped for %d", result.values.dim())
    scalars += [(f"global_min/R={R}", landscape.values.min().item()), (f"grad_norm_median/R={R}", exact_q[2])]
    histogram = grad_norm.reshape(-1)[:: max(1, grad_norm.numel() // 100_000)].clone()
    return {"sharing": k, "resolution": R, "rows": rows, "norm_rows": norm_rows, "scalars": scalars, "histogram": histogram, "view": view,
            "seconds": time.perf_counter() - start}


def _quantiles(values: torch.Tensor) -> list[float]:
    return [float(q) for q in np.quantile(values.reshape(-1).numpy(), QUANTILES)]


def _norm_row(k: int, R: int, method: str, quantiles: list[float] | None, norm: torch.Tensor) -> dict[str, Any]:
    q = quantiles if quantiles is not None else _quantiles(norm)
    return {"sharing": k, "resolution": R, "method": method, **dict(zip(NORM_COLUMNS[3:8], q)), "mean": norm.mean().item()}


def _row(k: int, R: int, tol: float, rule: str, params: int, result: Any, q: list[float]) -> dict[str, Any]:
    return {"sharing": k, "resolution": R, "tol": tol, "rule": rule, "n_params": params, "global_min": result.global_min, "ratio": result.ratio,
            "n_minima": result.n_minima, "grad_norm_q25": q[1], "grad_norm_q50": q[2], "grad_norm_q75": q[3]}


def _typed(row: dict[str, str]) -> dict[str, Any]:
    ints, strs = {"sharing", "resolution", "n_params", "n_minima"}, {"rule", "method"}
    return {k: v if k in strs else int(v) if k in ints else float(v) for k, v in row.items()}


def _sorted(rows: list[dict], keys: list[str]) -> list[dict]:
    return sorted(rows, key=lambda r: tuple(r[k] for k in keys))


def _figures(writer, rows, norm_rows, views, out_dir: Path) -> None:
    made = {"deceptiveness_vs_sharing": figures.deceptiveness_vs_sharing(rows), "gradient_norms": figures.gradient_norm_boxes(norm_rows)}
    for k, view in sorted(views.items()):
        made[f"landscape_sharing{k}"] = view
    for name, fig in made.items():
        fig.savefig(out_dir / f"{name}.png", dpi=110)
        writer.add_figure(name, fig)
