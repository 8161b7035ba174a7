"""Figures, drawn with matplotlib's object API (no pyplot, no global backend),
so they render headless and can go both to PNG and to TensorBoard."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure


def variance_vs_qubits(rows: Sequence[Mapping[str, float]], n_layers: int, slope: float, intercept: float) -> Figure:
    """McClean Fig. 3: gradient variance against n at depth `n_layers`, log
    scale, with confidence bars, the fitted exponential and the 2-design value."""
    pts = sorted((r for r in rows if r["n_layers"] == n_layers), key=lambda r: r["n_qubits"])
    n = np.array([r["n_qubits"] for r in pts], dtype=float)
    var = np.array([r["grad_var"] for r in pts])
    err = np.array([[r["grad_var"] - r["grad_var_ci_low"] for r in pts], [r["grad_var_ci_high"] - r["grad_var"] for r in pts]])
    fig = Figure(figsize=(5.5, 4))
    ax = fig.add_subplot()
    ax.errorbar(n, var, yerr=err, fmt="o", capsize=3, label=f"measured, L = {n_layers}")
    grid = np.linspace(n.min(), n.max(), 100)
    ax.plot(grid, 2.0 ** (intercept + slope * grid), "-", label=f"fit: slope {slope:.3f} (log2 var per qubit)")
    ax.plot(n, [r["var_2design"] for r in pts], "k:", label="2-design: 2^n / (3 (4^n - 1))")
    ax.set_yscale("log")
    ax.set_xlabel("qubits n")
    ax.set_ylabel("Var[dE/dtheta_{1,1}]")
    ax.set_title("Gradient variance vs qubits")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def variance_vs_layers(rows: Sequence[Mapping[str, float]]) -> Figure:
    """McClean Fig. 4: gradient variance against depth, one line per n, with
    each n's 2-design value as a dotted line of the same colour."""
    fig = Figure(figsize=(6, 4.2))
    ax = fig.add_subplot()
    for i, n in enumerate(sorted({r["n_qubits"] for r in rows})):
        pts = sorted((r for r in rows if r["n_qubits"] == n), key=lambda r: r["n_layers"])
        colour = f"C{i % 10}"
        ax.plot([r["n_layers"] for r in pts], [r["grad_var"] for r in pts], "-", color=colour, label=f"n = {n}", marker="." if len(pts) < 30 else None)
        ax.axhline(pts[0]["var_2design"], color=colour, linestyle=":", linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("layers L")
    ax.set_ylabel("Var[dE/dtheta_{1,1}]")
    ax.set_title("Gradient variance vs depth (dotted: 2-design)")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig
