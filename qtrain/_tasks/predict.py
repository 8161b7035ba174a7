"""Predict the plateau before sampling it: the Lie-algebraic variance against the sampled one.

Writes into the run directory:
- results.csv: per (family, qubits) the algebra's dimension, simple ideals and centre, the predicted
  variance of the family's cost and its method (`ideals`: Ragone et al.'s formula, where the cost or the
  initial state lies in the algebra; `commutant`: the general twirl, up to 5 qubits; `none`: neither
  applies, the prediction is nan), the sampled variance with its standard error and z-score,
  expressibility and entangling capability;
- sharing.csv: per (circuit seed, sharing degree) the sharing study's circuit: its algebra's dimension
  next to its landscape's deceptiveness ratio, local minima and global basin;
- correlations.csv: Spearman's rank correlation of the algebra's dimension with the deceptiveness ratio
  (and with the local minima), over all rows and per sharing degree;
- predict.png, sharing_dla.png and TensorBoard events.
Rows are rewritten after each one, so Ctrl-C keeps what finished and a rerun resumes.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from tqdm import tqdm

from qtrain import _figures as figures, _predict, _tables as tables
from qtrain._tasks import checks
from qtrain._tb import log_hparams, open_writer
from qtrain.landscape import check_tol

__all__ = ["COLUMNS", "CORRELATION_COLUMNS", "SHARING_COLUMNS", "plan", "run"]

log = logging.getLogger(__name__)

COLUMNS = ["family", "qubits", "layers", "params", "observable", "dla_dim", "ideal_dims", "centre_dim", "untied", "applies", "method", "note",
           "predicted_variance", "sampled_variance", "sampled_error", "z_score", "sampled_mean", "expressibility",
           "entangling_capability", "closure_seconds", "seconds"]
SHARING_COLUMNS = ["seed", "sharing", "axes", "dla_dim", "ideal_dims", "centre_dim", "untied", "deceptiveness_ratio", "n_minima",
                   "global_basin", "seconds"]
CORRELATION_COLUMNS = ["scope", "rows", "distinct_dims", "spearman_dim_ratio", "spearman_dim_minima"]
_INTS = {"qubits", "layers", "params", "dla_dim", "centre_dim", "untied", "seed", "sharing", "n_minima"}
_TEXT = {"family", "observable", "ideal_dims", "axes", "method", "note"}


def plan(cfg: Any) -> dict[str, Any]:
    """Check every key before any work."""
    checks.one_process(cfg)
    families = checks.name_list(cfg.families, "families", tuple(_predict.FAMILIES))
    qubits = checks.int_list(cfg.qubits, "qubits", minimum=2)  # every family's cost touches qubits 0 and 1
    layers = checks.positive_int(cfg.layers, "layers")
    samples = checks.positive_int(cfg.samples, "samples", minimum=2)
    express = checks.positive_int(cfg.expressibility_samples, "expressibility_samples", minimum=2)
    entangle = checks.positive_int(cfg.entangling_samples, "entangling_samples", minimum=2)
    max_dim = checks.positive_int(cfg.max_dim, "max_dim")
    too_wide = [n for n in qubits if n > 12]
    if too_wide:
        raise ValueError(f"qubits: at most 12 (each row samples 2^n-amplitude states of a deep circuit), got {too_wide}")
    wide = [f for f in families if f in _predict.WIDE_FAMILIES]
    past = [n for n in qubits if 4**n - 1 > max_dim]
    if wide and past:
        raise ValueError(f"qubits: {', '.join(wide)} at n = {past[0]} can have an algebra of up to 4^{past[0]} - 1 = {4**past[0] - 1} "
                         f"dimensions (su(2^n)), more than max_dim={max_dim}; drop those n or families, or raise max_dim")
    sharing = checks.int_list(cfg.sharing, "sharing", minimum=1) if cfg.sharing is not None else []
    seeds = checks.int_list(cfg.sharing_seeds, "sharing_seeds", minimum=0)
    resolution = checks.positive_int(cfg.sharing_resolution, "sharing_resolution", minimum=3)
    tol = float(cfg.sharing_tol)
    check_tol(tol)
    return {"families": families, "qubits": qubits, "layers": layers, "samples": samples, "express": express, "entangle": entangle,
            "max_dim": max_dim, "sharing": sharing, "seeds": seeds, "resolution": resolution, "tol": tol,
            "seed": checks.positive_int(cfg.seed, "seed", minimum=0)}


def run(cfg: Any, out_dir: Path, planned: dict[str, Any] | None = None) -> dict[str, Any]:
    p = planned if planned is not None else plan(cfg)
    settings = {"task": "predict", "layers": p["layers"], "samples": p["samples"], "expressibility_samples": p["express"],
                "entangling_samples": p["entangle"], "seed": p["seed"], "sharing_resolution": p["resolution"], "sharing_tol": p["tol"]}
    tables.check_run_settings(out_dir / "run.json", settings)
    rows = [_typed(r) for r in tables.read_rows(out_dir / "results.csv")]
    sharing_rows = [_typed(r) for r in tables.read_rows(out_dir / "sharing.csv")]
    done = {(r["family"], r["qubits"]) for r in rows}
    todo = [(f, n) for f in p["families"] for n in p["qubits"] if (f, n) not in done]
    done_sharing = {(r["seed"], r["sharing"]) for r in sharing_rows}
    todo_sharing = [(s, k) for s in p["seeds"] for k in p["sharing"] if (s, k) not in done_sharing]
    log.info("predict: families %s at qubits %s, %d layers, %d samples; sharing %s over seeds %s; %d + %d rows already done",
             p["families"], p["qubits"], p["layers"], p["samples"], p["sharing"], _span(p["seeds"]), len(rows), len(sharing_rows))
    writer = open_writer(out_dir)
    try:
        for family, n in tqdm(todo, desc="families", disable=not cfg.progress):
            row = _predict.family_row(family, n, p["layers"], p["samples"], p["express"], p["entangle"], p["seed"] * 1_000_003 + n, p["max_dim"])
            rows.append(row)
            tables.write_rows(out_dir / "results.csv", _sorted(rows), COLUMNS)
            writer.add_scalar(f"sampled_variance/{family}", row["sampled_variance"], n)
            if row["applies"]:
                writer.add_scalar(f"predicted_variance/{family}", row["predicted_variance"], n)
            writer.add_scalar(f"dla_dim/{family}", row["dla_dim"], n)
            log.info("%s, n = %d: dim %d (%s), predicted %s, sampled %.4g +- %.2g%s; expressibility %.3f, entangling %.3f",
                     family, n, row["dla_dim"], row["ideal_dims"],
                     f"{row['predicted_variance']:.4g} ({row['method']})" if row["applies"] else "n/a (outside the algebra, too wide for the commutant form)",
                     row["sampled_variance"], row["sampled_error"], f" (z = {row['z_score']:+.1f})" if row["applies"] else "",
                     row["expressibility"], row["entangling_capability"])
        for seed, k in tqdm(todo_sharing, desc="sharing landscapes", disable=not cfg.progress):
            sharing_rows.append(_predict.sharing_row(seed, k, 3, 3, p["resolution"], p["tol"]))
            tables.write_rows(out_dir / "sharing.csv", _sorted_sharing(sharing_rows), SHARING_COLUMNS)
    except KeyboardInterrupt:
        log.warning("interrupted: %d + %d rows are in %s; run again with the same settings to resume", len(rows), len(sharing_rows), out_dir)
        writer.close()
        raise
    wanted = _sorted([r for r in rows if r["family"] in p["families"] and r["qubits"] in p["qubits"]])
    wanted_sharing = _sorted_sharing([r for r in sharing_rows if r["seed"] in p["seeds"] and r["sharing"] in p["sharing"]])
    correlations = _correlations(wanted_sharing, p["sharing"])
    tables.write_rows(out_dir / "correlations.csv", correlations, CORRELATION_COLUMNS)
    fig = figures.predicted_vs_sampled(wanted)
    fig.savefig(out_dir / "predict.png", dpi=130)
    writer.add_figure("predict", fig)
    if wanted_sharing:
        fig = figures.dla_vs_deceptiveness(wanted_sharing)
        fig.savefig(out_dir / "sharing_dla.png", dpi=130)
        writer.add_figure("sharing_dla", fig)
    applied = [r for r in wanted if r["applies"]]
    metrics = {"max_abs_z": max((abs(r["z_score"]) for r in applied), default=float("nan")),
               "families_outside_algebra": float(sum(not r["applies"] for r in wanted))}
    metrics.update({f"spearman/{c['scope']}": c["spearman_dim_ratio"] for c in correlations if math.isfinite(c["spearman_dim_ratio"])})
    log_hparams(writer, {"families": ",".join(p["families"]), "qubits": str(p["qubits"]), "layers": p["layers"], "samples": p["samples"],
                         "sharing": str(p["sharing"]), "seeds": _span(p["seeds"]), "seed": p["seed"]},
                {k: v for k, v in metrics.items() if math.isfinite(v)})
    writer.close()
    for c in correlations:
        log.info("sharing %s: %d rows, %d distinct dims, Spearman(dim, ratio) = %.3f, Spearman(dim, minima) = %.3f",
                 c["scope"], c["rows"], c["distinct_dims"], c["spearman_dim_ratio"], c["spearman_dim_minima"])
    return {"rows": wanted, "sharing": wanted_sharing, "correlations": correlations}


def _correlations(rows: list[dict[str, Any]], degrees: list[int]) -> list[dict[str, Any]]:
    scopes = [("all", rows)] + [(f"k={k}", [r for r in rows if r["sharing"] == k]) for k in degrees]
    out = []
    for scope, part in scopes:
        dims = [r["dla_dim"] for r in part]
        out.append({"scope": scope, "rows": len(part), "distinct_dims": len(set(dims)),
                    "spearman_dim_ratio": _predict.spearman(dims, [r["deceptiveness_ratio"] for r in part]),
                    "spearman_dim_minima": _predict.spearman(dims, [r["n_minima"] for r in part])})
    return out


def _span(values: list[int]) -> str:
    return f"{values[0]}..{values[-1]}" if len(values) > 1 and values == list(range(values[0], values[-1] + 1)) else str(values)


def _typed(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k in _TEXT:
            out[k] = v
        elif k == "applies":
            out[k] = v == "True"
        elif k in _INTS:
            out[k] = int(v)
        else:
            out[k] = float(v) if v != "" else float("nan")
    return out


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["family"], r["qubits"]))


def _sorted_sharing(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["seed"], r["sharing"]))
