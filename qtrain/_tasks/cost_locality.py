"""Cerezo et al. (2021), cost-function-dependent barren plateaus: the global cost against the local one.

The alternating layered ansatz (`qtrain.builders.alternating_layered`, its block named in the config) at each
(qubits, layers); the variance over uniform angles of the derivative by its first parameter of
- the global cost C_G = 1 - p(0...0), the infidelity to |0...0>, and
- the local cost C_L = 1 - (1/n) sum_i p_i(0) = 1/2 - (1/2n) sum_i <Z_i>.
Global decays exponentially in n at every depth; local only polynomially at depth O(log n) (its 1/n
normalisation alone gives Var ~ 1/n^2).

Writes into the run directory: results.csv (qubits, layers, cost, samples, variance, its 95% interval, mean),
rewritten after every (qubits, layers) so Ctrl-C keeps what finished and a rerun resumes; fits.csv (per cost
and depth, the slope of ln Var per qubit and the exponent of a power law, d ln Var / d ln n);
variance_vs_qubits_locality.png; TensorBoard events.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from qtrain import _figures as figures, _tables as tables
from qtrain._tasks import checks
from qtrain._tb import log_hparams, open_writer
from qtrain.builders import alternating_layered, check_alternating_block
from qtrain.diagnostics.gradients import gradient_variance, locality_costs

__all__ = ["COLUMNS", "FIT_COLUMNS", "fit", "plan", "run"]

log = logging.getLogger(__name__)

COLUMNS = ["qubits", "layers", "cost", "samples", "variance", "variance_ci_low", "variance_ci_high", "mean"]
FIT_COLUMNS = ["cost", "layers", "slope_per_qubit", "power_exponent"]


def plan(cfg: Any) -> dict[str, Any]:
    """Check every key before any work."""
    checks.one_process(cfg)
    check_alternating_block(cfg.block)
    qubits = checks.int_list(cfg.qubits, "qubits", minimum=2)
    if max(qubits) > 20:
        raise ValueError(f"qubits: at most 20 (a state vector of 2^n amplitudes per sample), got {max(qubits)}")
    layers = checks.int_list(cfg.layers, "layers", minimum=1)
    samples = checks.positive_int(cfg.samples, "samples", minimum=2)
    return {"qubits": qubits, "layers": layers, "samples": samples, "seed": checks.positive_int(cfg.seed, "seed", minimum=0),
            "dtype": checks.dtype(cfg.dtype)}


def run(cfg: Any, out_dir: Path, planned: dict[str, Any] | None = None) -> dict[str, Any]:
    p = planned if planned is not None else plan(cfg)
    tables.check_run_settings(out_dir / "run.json", {"task": "cost_locality", "block": cfg.block, "samples": p["samples"], "seed": p["seed"],
                                                     "dtype": str(cfg.dtype)})
    rows = [_typed(r) for r in tables.read_rows(out_dir / "results.csv")]
    done = {(r["qubits"], r["layers"]) for r in rows}
    todo = [(n, L) for L in p["layers"] for n in p["qubits"] if (n, L) not in done]
    log.info("cost locality: %s blocks, qubits %s, layers %s, %d samples; %d points already done", cfg.block, p["qubits"], p["layers"], p["samples"], len(done))
    writer = open_writer(out_dir)
    try:
        for n, L in tqdm(todo, desc="(qubits, layers)", disable=not cfg.progress):
            circuit = alternating_layered(n, L, cfg.block)
            for name, cost in locality_costs(n).items():
                stats = gradient_variance(circuit, cost, samples=p["samples"], parameter=0, seed=p["seed"] * 1_000_003 + 1000 * L + n, dtype=p["dtype"])
                rows.append({"qubits": n, "layers": L, "cost": name, "samples": p["samples"], "variance": float(stats.var),
                             "variance_ci_low": float(stats.var_ci_low), "variance_ci_high": float(stats.var_ci_high), "mean": float(stats.mean)})
                writer.add_scalar(f"variance/{name}/layers={L}", rows[-1]["variance"], n)
            tables.write_rows(out_dir / "results.csv", _sorted(rows), COLUMNS)
            log.info("n = %d, L = %d: Var global %.3e, local %.3e", n, L, rows[-2]["variance"], rows[-1]["variance"])
    except KeyboardInterrupt:
        log.warning("interrupted: %d rows are in %s; run again with the same settings to resume", len(rows), out_dir / "results.csv")
        writer.close()
        raise
    wanted = _sorted([r for r in rows if r["qubits"] in p["qubits"] and r["layers"] in p["layers"]])
    fits = [fit(wanted, cost, L) for cost in ("global", "local") for L in p["layers"]]
    tables.write_rows(out_dir / "fits.csv", fits, FIT_COLUMNS)
    fig = figures.variance_vs_qubits_locality(wanted, fits)
    fig.savefig(out_dir / "variance_vs_qubits_locality.png", dpi=130)
    writer.add_figure("variance_vs_qubits_locality", fig)
    log_hparams(writer, {"block": cfg.block, "qubits": str(p["qubits"]), "layers": str(p["layers"]), "samples": p["samples"], "seed": p["seed"]},
                {f"slope/{f['cost']}/L={f['layers']}": f["slope_per_qubit"] for f in fits if math.isfinite(f["slope_per_qubit"])})
    writer.close()
    for f in fits:
        log.info("%s cost, L = %d: ln Var falls %.3f per qubit; power law exponent %.2f", f["cost"], f["layers"], -f["slope_per_qubit"], f["power_exponent"])
    return {"rows": wanted, "fits": fits}


def fit(rows: list[dict[str, Any]], cost: str, layers: int) -> dict[str, Any]:
    """Least squares of ln Var against n (the exponential rate) and against ln n (the power law's exponent)."""
    pts = sorted((r["qubits"], r["variance"]) for r in rows if r["cost"] == cost and r["layers"] == layers and r["variance"] > 0)
    slope = power = float("nan")
    if len(pts) >= 2:
        n, var = np.array([q for q, _ in pts], dtype=float), np.log([v for _, v in pts])
        slope, power = float(np.polyfit(n, var, 1)[0]), float(np.polyfit(np.log(n), var, 1)[0])
    return {"cost": cost, "layers": layers, "slope_per_qubit": slope, "power_exponent": power}


def _typed(row: dict[str, str]) -> dict[str, Any]:
    return {k: (v if k == "cost" else int(v) if k in ("qubits", "layers", "samples") else float(v)) for k, v in row.items()}


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["cost"], r["layers"], r["qubits"]))
