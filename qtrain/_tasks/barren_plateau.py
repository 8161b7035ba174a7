"""McClean et al. (2018) Figs. 3 and 4: gradient variance of random circuits
against qubits and depth, with the 2-design plateau.

Writes into the run directory: results.csv (one row per (n, L), rewritten
atomically after every point, so a rerun resumes and Ctrl-C keeps what
finished), fit.csv, timings.csv, variance_vs_qubits.png,
variance_vs_layers.png, shots_to_resolve.png, and TensorBoard events (scalars,
histograms, figures, hparams).

Next to each exact variance, results.csv gives `shots_to_resolve`: the shots
per shifted evaluation a parameter-shift gradient needs for its standard error
to fall to a typical gradient's size, sqrt(Var) (McClean's practical point: on
hardware a vanishing gradient must be resolved from measurements). With N shots
per evaluation the estimate (E+ - E-) / 2 has variance at most B / (2 N), where
B = sum over the cost's qubit-wise commuting groups of (sum of |coefficient|)^2
bounds the per-shot variance of its estimator (`shot_bound`; B = 1 for the
global Z0 Z1 and the local mean of Z_i, eigenvalues +-1), so
N = ceil(B / (2 Var)); inf where Var is 0.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from qtrain import _figures as figures, parallel, _tables as tables
from qtrain.diagnostics import resolve_cost, summarize
from qtrain._memory import format_bytes, samples_per_chunk
from qtrain._plateau import STATES_PER_SAMPLE, mcclean_gradients
from qtrain._tasks import checks
from qtrain._tasks.resumable import rank0_writer, stored_rows
from qtrain.engine.observables import PauliSum
from qtrain.engine.shots import measurement_groups

__all__ = ["plan", "run", "shot_bound", "shots_to_resolve", "var_2design"]

log = logging.getLogger(__name__)

COLUMNS = ["n_qubits", "n_layers", "n_samples", "grad_mean", "grad_var", "grad_var_ci_low", "grad_var_ci_high", "var_2design", "shots_to_resolve"]


def var_2design(n: int) -> float:
    """Var of dE/dtheta_{1,1} once the circuit after it is a 2-design (SCIENCE.md A)."""
    return 2**n / (3 * (4**n - 1))


def shot_bound(cost: PauliSum) -> float:
    """B, the largest variance of one shot's estimate of <cost> (every group measured once):
    a group's per-shot value sum_t c_t (+-1) lies within +-sum_t |c_t|, and groups are sampled
    independently, so the variances add. 1 for a single Pauli string of coefficient +-1."""
    _, groups = measurement_groups(cost)
    return float(sum(sum(abs(t.coeff) for t in g.terms) ** 2 for g in groups))


def shots_to_resolve(var: float, bound: float = 1.0) -> float:
    """N = ceil(bound / (2 var)): the shots per shifted evaluation at which a parameter-shift
    gradient's standard error, at most sqrt(bound / (2 N)), is no larger than sqrt(var), a typical
    gradient of a zero-mean distribution of variance `var`; inf for var = 0 (nothing to resolve)."""
    if not var > 0:
        return math.inf
    return float(math.ceil(bound / (2 * var)))


def plan(cfg: Any) -> dict[str, Any]:
    """Check every key and the memory of every n before any work."""
    qubits = checks.int_list(cfg.qubits, "qubits", minimum=2)  # the cost Z0 Z1 needs qubits 0 and 1
    layers = checks.int_list(cfg.layers, "layers", minimum=1)
    samples = checks.positive_int(cfg.samples, "samples", minimum=2)
    seed = checks.positive_int(cfg.seed, "seed", minimum=0)
    device, dtype = checks.device(cfg.device), checks.dtype(cfg.dtype)
    costs: dict[int, PauliSum] = {}
    for n in qubits:  # per n: "local" is the mean of Z_i over that n's qubits
        try:
            cost = resolve_cost(cfg.cost, n)
        except ValueError as e:
            raise ValueError(f"cost: {e}") from None
        assert isinstance(cost, PauliSum)  # cfg.cost is text, never a target state
        costs[n] = cost
    world = parallel.check_trainer(cfg.trainer, device)
    noise, trajectories = checks.noise(cfg)
    if trajectories is not None:
        raise ValueError("noise.trajectories: the barren_plateau experiment runs the exact density matrix under noise; set noise.trajectories=null")
    budget, shared = parallel.rank_budget(cfg.trainer, device, cfg.memory_budget)
    chunks = {}
    for n in qubits:
        try:
            # a density matrix of n qubits holds as many numbers as a state of 2n
            width = n if noise is None else 2 * n
            chunks[n] = samples_per_chunk(width, -(-samples // world), dtype, budget, STATES_PER_SAMPLE)  # a rank's share of the samples
        except MemoryError as e:
            raise MemoryError(f"qubits: {e}{shared}") from None
        if cfg.chunk_size is not None:
            chunks[n] = min(chunks[n], checks.positive_int(cfg.chunk_size, "chunk_size"))
    return {"qubits": qubits, "layers": layers, "samples": samples, "seed": seed, "device": device, "dtype": dtype, "costs": costs, "chunks": chunks, "budget": budget,
            "noise": noise,
            # one bound for every n: 1 for global and local, and an explicit observable is the same sum at every n
            "shot_bound": shot_bound(costs[min(qubits)])}


def run(cfg: Any, out_dir: Path, planned: dict[str, Any] | None = None) -> dict[str, Any]:
    """The experiment, from `plan(cfg)` (`planned`: the plan the caller already made)."""
    p = planned if planned is not None else plan(cfg)
    settings = {"samples": p["samples"], "seed": p["seed"], "dtype": str(cfg.dtype), "cost": str(cfg.cost), "task": "barren_plateau"}
    # always recorded: None when noiseless, which a folder written before noise existed reads as (it has no such key)
    settings["noise"] = None if p["noise"] is None else repr(p["noise"])
    tables.check_run_settings(out_dir / "run.json", settings)
    # ranks of several plan again, each its own share (Fabric's spawn cannot carry a plan's frozen dataclasses)
    alone = p if parallel.world_size(cfg.trainer) == 1 else None
    return parallel.run_on_ranks(_sample, cfg, out_dir, alone,
                                devices=cfg.trainer.devices, num_nodes=cfg.trainer.num_nodes, device=p["device"])


def _sample(ranks: parallel.Ranks, cfg: Any, out_dir: Path, planned: dict[str, Any] | None) -> dict[str, Any] | None:
    """Every rank simulates its share of each point's samples; rank 0 gathers
    them, writes the tables and figures, and returns the results."""
    p = planned if planned is not None else plan(cfg)  # a rank of several plans again: its budget is its own device's
    [rows] = stored_rows(ranks, out_dir, functools.partial(_typed, bound=p["shot_bound"]), "results.csv")
    if ranks.is_main and rows:  # a table from before a column gets it now, even when no point is left to run
        tables.write_rows(out_dir / "results.csv", _sorted(rows), COLUMNS)
    done = {(r["n_qubits"], r["n_layers"]) for r in rows}
    todo = {n: [L for L in p["layers"] if (n, L) not in done] for n in p["qubits"]}
    share = ranks.share(p["samples"])
    if ranks.is_main:
        ranks_note = f" on {ranks.world_size} ranks" if ranks.world_size > 1 else ""
        log.info("barren plateau: qubits %s, %d depths, %d samples%s, %s on %s, budget %s per rank; %d points already done",
                 p["qubits"], len(p["layers"]), p["samples"], ranks_note, cfg.dtype, ranks.device, format_bytes(p["budget"]), len(done))
    # the stored rows come back as strings; new rows hold numbers (the CSV writes both alike)
    timings: list[dict[str, Any]] = list(tables.read_rows(out_dir / "timings.csv")) if ranks.is_main else []
    total = sum(-(-(share.stop - share.start) // p["chunks"][n]) * max(todo[n], default=0) for n in p["qubits"])
    with rank0_writer(ranks, out_dir, log, lambda: f"{len(rows)} points are in {out_dir / 'results.csv'}") as writer:
        with tqdm(total=total, desc="layers simulated", disable=not (cfg.progress and ranks.is_main)) as bar:
            for n in p["qubits"]:
                if not todo[n]:
                    continue
                start = time.perf_counter()
                points = mcclean_gradients(n, todo[n], p["samples"], _seed(p["seed"], n), p["costs"][n], dtype=p["dtype"], device=ranks.device,
                                           chunk_size=p["chunks"][n], on_layer=bar.update, share=share, noise=p["noise"])
                for L, part in points:
                    grads = ranks.gather(part)  # every rank's samples, in order: the one-process numbers
                    if ranks.is_main:
                        rows.append(_row(n, L, grads, p["seed"], p["shot_bound"]))
                        tables.write_rows(out_dir / "results.csv", _sorted(rows), COLUMNS)
                        _log_point(writer, rows[-1], grads)
                if ranks.is_main:
                    timings.append({"n_qubits": n, "max_layers": max(todo[n]), "n_samples": p["samples"], "chunk_size": p["chunks"][n], "device": str(ranks.device),
                                    "ranks": ranks.world_size, "seconds": round(time.perf_counter() - start, 3)})
                    tables.write_rows(out_dir / "timings.csv", timings, list(timings[-1]))
        if writer is None:  # off rank 0: rank 0 alone fits, draws and returns
            return None
        from qtrain._tb import log_hparams

        fit = _fit(rows, p["qubits"], max(p["layers"]))
        _figures(writer, rows, fit, out_dir, p["shot_bound"])
        log_hparams(writer, {"qubits": str(p["qubits"]), "layers": f"{min(p['layers'])}..{max(p['layers'])} ({len(p['layers'])})", "samples": p["samples"], "seed": p["seed"], "dtype": cfg.dtype, "cost": str(cfg.cost), "device": str(ranks.device), "ranks": ranks.world_size}, {k: v for k, v in fit.items() if isinstance(v, float)})
    log.info("fitted slope of log2 Var against n at L = %d: %.3f (2-design: about -1); outputs in %s", fit["n_layers"], fit["slope"], out_dir)
    return {"rows": _sorted(rows), "fit": fit}


def _seed(seed: int, n: int) -> int:
    """Each n gets its own random circuits, derived from the run seed."""
    return seed * 1_000_003 + n


def _row(n: int, L: int, grads: torch.Tensor, seed: int, bound: float) -> dict[str, float]:
    stats = summarize(grads, seed=seed)
    return {
        "n_qubits": n, "n_layers": L, "n_samples": stats.n_samples,
        "grad_mean": stats.mean.item(), "grad_var": stats.var.item(),
        "grad_var_ci_low": stats.var_ci_low.item(), "grad_var_ci_high": stats.var_ci_high.item(),
        "var_2design": var_2design(n), "shots_to_resolve": _count(shots_to_resolve(stats.var.item(), bound)),
    }


def _count(value: float) -> int | float:
    """A shot count as an int, inf kept as a float (the CSV reads 'inf')."""
    return int(value) if math.isfinite(value) else value


def _typed(row: dict[str, str], bound: float) -> dict[str, float]:
    typed: dict[str, Any] = {k: int(v) if k in ("n_qubits", "n_layers", "n_samples") else float(v) for k, v in row.items()}
    # a run folder from before the column: it follows from the stored variance (the cost is the same, run.json checks it)
    typed["shots_to_resolve"] = _count(typed["shots_to_resolve"] if "shots_to_resolve" in typed else shots_to_resolve(typed["grad_var"], bound))
    return typed


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["n_qubits"], r["n_layers"]))


def _log_point(writer, row: dict, grads: torch.Tensor) -> None:
    tag, step = f"n={row['n_qubits']:02d}", row["n_layers"]
    writer.add_scalar(f"grad_var/{tag}", row["grad_var"], step)
    writer.add_scalar(f"grad_var_over_2design/{tag}", row["grad_var"] / row["var_2design"], step)
    writer.add_scalar(f"grad_mean/{tag}", row["grad_mean"], step)
    if math.isfinite(row["shots_to_resolve"]):
        writer.add_scalar(f"shots_to_resolve/{tag}", row["shots_to_resolve"], step)
    writer.add_histogram(f"gradients/{tag}", grads, step)


def _fit(rows: list[dict], qubits: list[int], depth: int) -> dict[str, Any]:
    """Least-squares line of log2 Var against n at the deepest L."""
    pts = [r for r in rows if r["n_layers"] == depth and r["n_qubits"] in qubits]
    fit: dict[str, Any] = {"n_layers": depth, "n_points": len(pts), "slope": float("nan"), "intercept": float("nan")}
    if len(pts) >= 2:
        slope, intercept = np.polyfit([r["n_qubits"] for r in pts], np.log2([r["grad_var"] for r in pts]), 1)
        fit.update(slope=float(slope), intercept=float(intercept), decay_rate=float(-slope), factor_per_qubit=float(2**slope))
    return fit


def _figures(writer, rows: list[dict], fit: dict[str, Any], out_dir: Path, bound: float) -> None:
    tables.write_rows(out_dir / "fit.csv", [fit], list(fit))
    layers_fig = figures.variance_vs_layers(rows)
    layers_fig.savefig(out_dir / "variance_vs_layers.png", dpi=130)
    writer.add_figure("variance_vs_layers", layers_fig)
    if fit["n_points"] >= 2:
        qubits_fig = figures.variance_vs_qubits(rows, fit["n_layers"], fit["slope"], fit["intercept"])
        qubits_fig.savefig(out_dir / "variance_vs_qubits.png", dpi=130)
        writer.add_figure("variance_vs_qubits", qubits_fig)
    else:
        log.warning("variance_vs_qubits.png needs at least two qubit counts at L = %d; not drawn", fit["n_layers"])
    design = {n: shots_to_resolve(var_2design(n), bound) for n in {r["n_qubits"] for r in rows}}
    shots_fig = figures.shots_to_resolve_vs_qubits(rows, fit["n_layers"], design)
    shots_fig.savefig(out_dir / "shots_to_resolve.png", dpi=130)
    writer.add_figure("shots_to_resolve", shots_fig)
