"""report.md for the deceptiveness experiment: each of the paper's claims
checked against this run's numbers, with the numbers, whatever the verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["trend", "write_report"]

#: Largest spread of the ratio across resolutions still called "nearly independent".
NEARLY_INDEPENDENT = 0.02


def trend(values: list[float], increasing: bool, threshold: float) -> str:
    """The verdict on "values grow (or fall) with sharing", where a difference
    of at most `threshold` is not resolved:

    holds: every step moves the claimed way by more than the threshold;
    holds only partly (not monotone): first to last moves the claimed way by
    more than the threshold, but some step does not;
    within tolerance: no difference between any two values exceeds it;
    fails: otherwise."""
    sign = 1 if increasing else -1
    steps = [sign * (b - a) for a, b in zip(values, values[1:])]
    if steps and all(s > threshold for s in steps):
        return "holds"
    if steps and sign * (values[-1] - values[0]) > threshold:
        return "holds only partly (not monotone)"
    if values and max(values) - min(values) <= threshold:
        return "within tolerance"
    return "fails"


VERDICTS = ("holds", "holds only partly (not monotone)", "within tolerance", "fails")


def _spreads(rows: list[dict[str, Any]], key: str, sharing: list[int], tol: float, rule: str) -> dict[int, float]:
    """Per sharing degree, how much `key` changes across resolutions: how much
    a grid statistic moves with the sampling (0 with one resolution)."""
    spreads = {}
    for k in sharing:
        across = [r[key] for r in rows if r["sharing"] == k and r["tol"] == tol and r["rule"] == rule]
        spreads[k] = max(across) - min(across)
    return spreads


def write_report(path: Path, rows: list[dict[str, Any]], norm_rows: list[dict[str, Any]], cfg: Any) -> dict[str, Any]:
    """Write the run's verdicts on Stenzel et al.'s claims as Markdown to `path`, from the result rows and the
    gradient-norm rows of the deceptiveness task; return the verdicts and the per-sharing metrics (ratio, C*)."""
    finest = max(r["resolution"] for r in rows)
    tol, rule = min(r["tol"] for r in rows), sorted({r["rule"] for r in rows}, key=lambda u: u != "gradient")[0]
    main = sorted((r for r in rows if r["resolution"] == finest and r["tol"] == tol and r["rule"] == rule), key=lambda r: r["sharing"])
    sharing = [r["sharing"] for r in main]
    minima = [r["global_min"] for r in main]
    ratios = [r["ratio"] for r in main]
    medians = [r["grad_norm_q50"] for r in main]
    spreads = _spreads(rows, "ratio", sharing, tol, rule)
    resolutions = sorted({r["resolution"] for r in rows})
    worst = max(spreads.values(), default=0.0)
    # What a difference must exceed to count: C* is compared at the tolerance that
    # defines a global minimum; a grid statistic at its spread across resolutions.
    thresholds = {
        "better global minimum with more sharing": (tol, f"tol = {tol:g}"),
        "larger gradients with more sharing": (max(_spreads(rows, "grad_norm_q50", sharing, tol, rule).values(), default=0.0), "its spread across resolutions"),
        "higher deceptiveness with more sharing": (worst, "its spread across resolutions"),
    }
    values = {
        "better global minimum with more sharing": (minima, False),
        "larger gradients with more sharing": (medians, True),
        "higher deceptiveness with more sharing": (ratios, True),
    }
    verdicts = {claim: trend(v, up, thresholds[claim][0]) for claim, (v, up) in values.items()}
    verdicts["ratio nearly independent of resolution"] = ("holds" if worst <= NEARLY_INDEPENDENT else "fails") if len(resolutions) > 1 else "not tested (one resolution)"
    if len(sharing) < 2:
        for claim in list(verdicts)[:3]:
            verdicts[claim] = "not tested (one sharing degree)"
    fmt = lambda xs: ", ".join(f"{x:.4g}" for x in xs)  # noqa: E731
    lines = [
        "# Parameter sharing and deceptive gradients: this run's verdicts",
        "",
        f"Circuit: qtrain's shared ansatz with {cfg.qubits} qubits, {cfg.params} parameters, axes {cfg.axes or 'seeded'}, "
        f"{cfg.entangler} ring, circuit_seed {cfg.circuit_seed}; cost {cfg.cost}. Main comparison at R = {finest}, tol = {tol:g}"
        f"{' (relative)' if cfg.relative_tol else ''}, rule {rule}; sharing degrees {sharing}.",
        "",
        "A difference counts only above the claim's threshold; below it the values are \"within tolerance\" of each other.",
        "",
        "| claim (Stenzel et al.) | verdict | numbers | threshold |",
        "|---|---|---|---|",
        f"| better global minimum with more sharing | {verdicts['better global minimum with more sharing']} | C* = {fmt(minima)} | {_threshold(thresholds, 'better global minimum with more sharing')} |",
        f"| larger gradient magnitudes | {verdicts['larger gradients with more sharing']} | median exact |g| = {fmt(medians)} | {_threshold(thresholds, 'larger gradients with more sharing')} |",
        f"| higher deceptiveness | {verdicts['higher deceptiveness with more sharing']} | ratio = {fmt(ratios)} | {_threshold(thresholds, 'higher deceptiveness with more sharing')} |",
        f"| ratio nearly independent of resolution | {verdicts['ratio nearly independent of resolution']} | "
        f"spread over R = {resolutions}: {fmt(spreads.values())} | spread <= {NEARLY_INDEPENDENT} |",
        "",
        "## Exact against finite-difference gradient magnitudes",
        "",
        "Median |g| over the grid; a grid-only method sees finite differences of neighbouring grid values.",
        "",
        "| sharing | " + " | ".join(f"R={R} exact | R={R} FD" for R in resolutions) + " |",
        "|---|" + "---|---|" * len(resolutions),
    ]
    norms = {(r["sharing"], r["resolution"], r["method"]): r["q50"] for r in norm_rows}
    for k in sorted({r["sharing"] for r in norm_rows}):
        cells = [f"{norms.get((k, R, 'exact'), float('nan')):.4g} | {norms.get((k, R, 'finite_difference'), float('nan')):.4g}" for R in resolutions]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    path.write_text("\n".join(lines) + "\n")
    metrics = {f"ratio_k{k}": r for k, r in zip(sharing, ratios)} | {f"global_min_k{k}": m for k, m in zip(sharing, minima)}
    return {"verdicts": verdicts, "metrics": metrics}


def _threshold(thresholds: dict[str, tuple[float, str]], claim: str) -> str:
    value, what = thresholds[claim]
    return f"{value:.2g} ({what})"
