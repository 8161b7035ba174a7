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

from qtrain import figures, tables
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
from qtrain.tasks import checks
from qtrain.tasks.deceptiveness_report import write_report
from qtrain.tasks.shared_circuit import circuit_settings, plan_circuit

log = logging.getLogger(__name__)

COLUMNS = ["sharing", "resolution", "tol", "rule", "n_params", "global_min", "ratio", "n_minima", "grad_norm_q25", "grad_norm_q50", "grad_norm_q75"]
NORM_COLUMNS = ["sharing", "resolution", "method", "q05", "q25", "q50", "q75", "q95", "mean"]
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def plan(cfg: Any) -> dict[str, Any]:
    """Check every key, and that the finest grid fits, before any work."""
    sharing = checks.int_list(cfg.sharing, "sharing", minimum=1)
    resolutions = checks.int_list(cfg.resolution, "resolution", minimum=3)
    tols = [float(t) for t in ([cfg.tol] if isinstance(cfg.tol, (int, float)) else cfg.tol)]
    for t in tols:
        try:
            check_tol(t)
        except ValueError as e:
            raise ValueError(f"tol: {e}") from None
    rules = [cfg.rule] if isinstance(cfg.rule, str) else list(cfg.rule)
    for rule in rules:
        if rule not in RULES:
            raise ValueError(f"rule: must be one of {RULES}, got {rule!r}")
    if cfg.method not in METHODS:
        raise ValueError(f"method: must be one of {METHODS}, got {cfg.method!r}")
    circuit = plan_circuit(cfg)
    try:
        check_grid(circuit.build(1), max(resolutions), cfg.memory_budget)
    except MemoryError as e:
        raise MemoryError(f"resolution/params: {e}") from None
    return {"sharing": sharing, "resolutions": resolutions, "tols": sorted(set(tols)), "rules": rules, "circuit": circuit}


def run(cfg: Any, out_dir: Path) -> dict[str, Any]:
    p = plan(cfg)
    # The block every sharing degree repeats, by its gates: a folder made with another
    # circuit (an older default, say) is refused instead of mixing its rows with these.
    settings, notes = circuit_settings(cfg, p["circuit"])
    tables.check_run_settings(out_dir / "run.json", {"task": "deceptiveness", **settings, "relative_tol": cfg.relative_tol, "method": cfg.method}, notes)
    rows = [_typed(r) for r in tables.read_rows(out_dir / "results.csv")]
    norm_rows = [_typed(r) for r in tables.read_rows(out_dir / "gradient_norms.csv")]
    wanted = [(k, R) for k in p["sharing"] for R in p["resolutions"]]
    have = {(r["sharing"], r["resolution"], r["tol"], r["rule"]) for r in rows}
    done = {(k, R) for k, R in wanted if all((k, R, t, u) in have for t in p["tols"] for u in p["rules"])}
    from qtrain.tb import log_hparams, open_writer

    writer = open_writer(out_dir)
    views = {}
    log.info("deceptiveness: sharing %s, resolutions %s, tol %s, rules %s; %d of %d groups already done", p["sharing"], p["resolutions"], p["tols"], p["rules"], len(done), len(wanted))
    try:
        for k, R in tqdm([w for w in wanted if w not in done], desc="landscapes", disable=not cfg.progress):
            start = time.perf_counter()
            landscape = sample_landscape(p["circuit"].build(k), p["circuit"].cost, R, cfg.method, memory_budget=cfg.memory_budget)
            grad_norm = landscape.grads.pow(2).sum(dim=0).sqrt_()
            exact_q = _quantiles(grad_norm)
            norm_rows = [r for r in norm_rows if (r["sharing"], r["resolution"]) != (k, R)]
            norm_rows += [_norm_row(k, R, "exact", exact_q, grad_norm), _norm_row(k, R, "finite_difference", None, finite_difference_grad_norm(landscape.values))]
            for rule in p["rules"]:
                succ = successors(landscape.values, landscape.grads, rule)
                terminal = terminals(succ)
                for tol in p["tols"]:
                    result = classify(landscape.values, grad_norm, succ, terminal, tol, rule, bool(cfg.relative_tol))
                    rows = [r for r in rows if (r["sharing"], r["resolution"], r["tol"], r["rule"]) != (k, R, tol, rule)]
                    rows.append(_row(k, R, tol, rule, p["circuit"].params, result, exact_q))
                    writer.add_scalar(f"deceptiveness/R={R}/tol={tol:g}/{rule}", result.ratio, k)
                    if R == max(p["resolutions"]) and tol == p["tols"][0] and rule == p["rules"][0]:
                        views[k] = result
            writer.add_scalar(f"global_min/R={R}", landscape.values.min().item(), k)
            writer.add_scalar(f"grad_norm_median/R={R}", exact_q[2], k)
            writer.add_histogram(f"grad_norm/R={R}", grad_norm.reshape(-1)[:: max(1, grad_norm.numel() // 100_000)], k)
            tables.write_rows(out_dir / "results.csv", _sorted(rows, COLUMNS[:4]), COLUMNS)
            tables.write_rows(out_dir / "gradient_norms.csv", _sorted(norm_rows, NORM_COLUMNS[:3]), NORM_COLUMNS)
            log.info("sharing %d, R = %d: %s in %.1f s", k, R, ", ".join(f"ratio {r['ratio']:.4f} (tol {r['tol']:g}, {r['rule']})" for r in rows if (r["sharing"], r["resolution"]) == (k, R)), time.perf_counter() - start)
            del landscape
    except KeyboardInterrupt:
        log.warning("interrupted: finished groups are in %s; rerun the same command to resume", out_dir / "results.csv")
        writer.close()
        raise
    _figures(writer, rows, norm_rows, views, out_dir)
    report = write_report(out_dir / "report.md", rows, norm_rows, cfg)
    log_hparams(writer, {"sharing": str(p["sharing"]), "resolution": str(p["resolutions"]), "tol": str(p["tols"]), "rule": str(p["rules"]), "params": cfg.params, "qubits": cfg.qubits, "circuit_seed": cfg.circuit_seed, "cost": str(cfg.cost)}, report["metrics"])
    writer.close()
    log.info("claims on this circuit: %s; report in %s", "; ".join(f"{name}: {verdict}" for name, verdict in report["verdicts"].items()), out_dir / "report.md")
    return {"rows": _sorted(rows, COLUMNS[:4]), "gradient_norms": norm_rows, "report": report}


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
    for k, result in sorted(views.items()):
        view = figures.landscape_view(result, f"sharing {k}, R = {result.values.shape[0]}")
        if view is None:
            log.warning("landscape figures are drawn for 2 or 3 parameters only; skipped for %d", result.values.dim())
            break
        made[f"landscape_sharing{k}"] = view
    for name, fig in made.items():
        fig.savefig(out_dir / f"{name}.png", dpi=110)
        writer.add_figure(name, fig)
