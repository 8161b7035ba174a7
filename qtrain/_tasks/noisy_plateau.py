"""Wang et al. (2021): noise-induced barren plateaus, gradient variance against depth per depolarizing rate.

Writes into the run directory: results.csv (one row per (qubits, layers,
depolarizing), rewritten after every (qubits, rate) sweep, so a rerun resumes
and Ctrl-C keeps what finished), slopes.csv (per (qubits, rate) the fitted
slope of ln Var against L next to the paper's bound 2 k_min ln q,
q = 1 - 4p/3), variance_vs_layers_noisy.png, and TensorBoard events.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from qtrain import _figures as figures, _tables as tables
from qtrain._density import required_bytes
from qtrain._memory import budget_bytes, format_bytes
from qtrain._noisy_plateau import min_channels_per_qubit, noisy_gradients, wang_slope_bound
from qtrain._tasks import checks
from qtrain._tb import log_hparams, open_writer
from qtrain.noise import NoiseModel

__all__ = ["CIRCUITS", "COLUMNS", "fit_slope", "plan", "run"]

log = logging.getLogger(__name__)

COLUMNS = ["qubits", "layers", "depolarizing", "samples", "variance", "mean"]
SLOPE_COLUMNS = ["qubits", "depolarizing", "fit_from_layer", "fitted_slope", "bound_slope", "k_min"]
#: The circuits this experiment knows, by the name its config gives.
CIRCUITS = ("hea_ry_rz_cz_chain",)
#: Density matrices alive per sample: the two shifted ones, each with its successor and temporaries.
STATES_PER_SAMPLE = 6


def plan(cfg: Any) -> dict[str, Any]:
    """Check every key, and the memory of the widest n, before any work."""
    checks.one_process(cfg)
    if cfg.circuit not in CIRCUITS:
        raise ValueError(f"circuit: unknown circuit {cfg.circuit!r} (known: {', '.join(CIRCUITS)})")
    qubits = checks.int_list(cfg.qubits, "qubits", minimum=2)  # the cost Z0 Z1 needs qubits 0 and 1
    layers = checks.int_list(cfg.layers, "layers", minimum=1)
    rates = checks.number_list(cfg.depolarizing, "depolarizing")
    for p in rates:
        if not 0 <= p <= 1:
            raise ValueError(f"depolarizing: every rate must be in [0, 1], got {p!r}")
    samples = checks.positive_int(cfg.samples, "samples", minimum=2)
    seed = checks.positive_int(cfg.seed, "seed", minimum=0)
    device, dtype = checks.device(cfg.device), checks.dtype(cfg.dtype)
    budget = budget_bytes(device)
    chunks = {}
    for n in qubits:
        per_sample = required_bytes(n, 2, dtype, STATES_PER_SAMPLE / 2)
        if per_sample > budget:
            raise MemoryError(f"qubits: n = {n} needs {format_bytes(per_sample)} of density matrices per sample "
                              f"({STATES_PER_SAMPLE} of {format_bytes(required_bytes(n, 1, dtype, 1))} in {dtype}), but the budget is {format_bytes(budget)}")
        chunks[n] = min(samples, budget // per_sample)
        if cfg.chunk_size is not None:
            chunks[n] = min(chunks[n], checks.positive_int(cfg.chunk_size, "chunk_size"))
    return {"qubits": qubits, "layers": layers, "rates": rates, "samples": samples, "seed": seed, "device": device, "dtype": dtype, "chunks": chunks}


def run(cfg: Any, out_dir: Path, planned: dict[str, Any] | None = None) -> dict[str, Any]:
    p = planned if planned is not None else plan(cfg)
    settings = {"task": "noisy_plateau", "circuit": cfg.circuit, "samples": p["samples"], "seed": p["seed"], "dtype": str(cfg.dtype)}
    tables.check_run_settings(out_dir / "run.json", settings)
    rows = [_typed(r) for r in tables.read_rows(out_dir / "results.csv")]
    done = {(r["qubits"], r["depolarizing"]) for r in rows if r["layers"] in p["layers"]}
    todo = [(n, rate) for n in p["qubits"] for rate in p["rates"] if (n, rate) not in done]
    log.info("noisy plateau: qubits %s, depths %d..%d, depolarizing %s, %d samples, %s on %s; %d sweeps already done",
             p["qubits"], min(p["layers"]), max(p["layers"]), p["rates"], p["samples"], cfg.dtype, p["device"], len(done))
    writer = open_writer(out_dir)
    try:
        total = sum(max(p["layers"]) * -(-p["samples"] // p["chunks"][n]) for n, _ in todo)
        with tqdm(total=total, desc="layers simulated", disable=not cfg.progress) as bar:
            for n, rate in todo:
                start = time.perf_counter()
                model = NoiseModel(depolarizing=rate)
                for L, grads in noisy_gradients(n, p["layers"], p["samples"], _seed(p["seed"], n), model, dtype=p["dtype"], device=p["device"],
                                                chunk_size=p["chunks"][n], on_layer=bar.update):
                    rows.append({"qubits": n, "layers": L, "depolarizing": rate, "samples": p["samples"],
                                 "variance": grads.var().item(), "mean": grads.mean().item()})
                    writer.add_scalar(f"variance/n={n:02d}/p={rate:g}", rows[-1]["variance"], L)
                tables.write_rows(out_dir / "results.csv", _sorted(rows), COLUMNS)
                log.info("n = %d, p = %g: %d depths in %.1f s", n, rate, len(p["layers"]), time.perf_counter() - start)
    except KeyboardInterrupt:
        log.warning("interrupted: %d rows are in %s; run again with the same settings to resume", len(rows), out_dir / "results.csv")
        writer.close()
        raise
    slopes = [fit_slope(rows, n, rate, p["layers"]) for n in p["qubits"] for rate in p["rates"]]
    tables.write_rows(out_dir / "slopes.csv", slopes, SLOPE_COLUMNS)
    wanted = [r for r in rows if r["qubits"] in p["qubits"] and r["depolarizing"] in p["rates"] and r["layers"] in p["layers"]]
    fig = figures.variance_vs_layers_noisy(wanted, slopes)
    fig.savefig(out_dir / "variance_vs_layers_noisy.png", dpi=130)
    writer.add_figure("variance_vs_layers_noisy", fig)
    log_hparams(writer, {"qubits": str(p["qubits"]), "layers": f"{min(p['layers'])}..{max(p['layers'])}", "depolarizing": str(p["rates"]),
                         "samples": p["samples"], "seed": p["seed"], "dtype": cfg.dtype},
                {f"slope/n={s['qubits']}/p={s['depolarizing']:g}": s["fitted_slope"] for s in slopes if math.isfinite(s["fitted_slope"])})
    writer.close()
    for s in slopes:
        log.info("n = %d, p = %g: ln Var falls %.3f per layer from L = %d on (bound: %.3f)", s["qubits"], s["depolarizing"], s["fitted_slope"], s["fit_from_layer"], s["bound_slope"])
    return {"rows": _sorted(wanted), "slopes": slopes}


def fit_slope(rows: list[dict[str, Any]], n: int, rate: float, layers: list[int]) -> dict[str, Any]:
    """Least-squares slope of ln Var against L over the deeper half of the requested depths (the shallow
    ones still carry the transient from the initial state), next to the bound 2 k_min ln(1 - 4p/3)."""
    start = layers[len(layers) // 2] if len(layers) > 1 else layers[0]
    pts = sorted((r["layers"], r["variance"]) for r in rows if r["qubits"] == n and r["depolarizing"] == rate and r["layers"] >= start and r["layers"] in layers)
    slope = float("nan")
    if len(pts) >= 2 and all(v > 0 for _, v in pts):
        slope = float(np.polyfit([L for L, _ in pts], np.log([v for _, v in pts]), 1)[0])
    return {"qubits": n, "depolarizing": rate, "fit_from_layer": start, "fitted_slope": slope, "bound_slope": wang_slope_bound(rate, n), "k_min": min_channels_per_qubit(n)}


def _seed(seed: int, n: int) -> int:
    return seed * 1_000_003 + n


def _typed(row: dict[str, str]) -> dict[str, Any]:
    return {k: int(v) if k in ("qubits", "layers", "samples") else float(v) for k, v in row.items()}


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["qubits"], r["depolarizing"], r["layers"]))
