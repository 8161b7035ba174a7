"""Figures, drawn with matplotlib's object API (no pyplot, no global backend),
so they render headless and can go both to PNG and to TensorBoard."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

__all__ = [
    "deceptiveness_vs_sharing", "gradient_norm_boxes", "landscape_view", "remedies", "shots_to_resolve_vs_qubits", "success_vs_lr", "success_vs_shots",
    "trajectories",
    "variance_vs_layers", "variance_vs_layers_noisy", "variance_vs_qubits"
]

#: a gradient variance at or below this is zero up to rounding (a parameter whose gradient vanishes by symmetry at
#: the start, as at an identity start): drawn as 0, not as a bar on a log axis
ZERO_VARIANCE = 1e-20
#: mathtext, so the label reads as the paper's symbol rather than as TeX source
VARIANCE_LABEL = r"Var$[\partial E / \partial \theta_{1,1}]$"


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
    ax.plot(n, [r["var_2design"] for r in pts], "k:", label=r"2-design: $2^n / (3\,(4^n - 1))$")
    ax.set_yscale("log")
    ax.set_xlabel("qubits n")
    ax.set_ylabel(VARIANCE_LABEL)
    ax.set_title("Gradient variance vs qubits")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def shots_to_resolve_vs_qubits(rows: Sequence[Mapping[str, float]], n_layers: int, design: Mapping[int, float] | None = None) -> Figure:
    """Shots per shifted evaluation needed to resolve a typical gradient
    (`shots_to_resolve`) against n at depth `n_layers`, log scale, with the
    2-design's count per n (`design`, dotted) when given. Infinite counts (a
    variance of exactly 0) cannot be drawn on a log axis and are left out."""
    pts = sorted((r for r in rows if r["n_layers"] == n_layers and np.isfinite(r["shots_to_resolve"])), key=lambda r: r["n_qubits"])
    fig = Figure(figsize=(5.5, 4))
    ax = fig.add_subplot()
    ax.plot([r["n_qubits"] for r in pts], [r["shots_to_resolve"] for r in pts], "o-", label=f"measured variance, L = {n_layers}")
    if design:
        qubits = sorted(n for n in design if np.isfinite(design[n]))
        ax.plot(qubits, [design[n] for n in qubits], "k:", label="2-design variance")
    ax.set_yscale("log")
    ax.set_xticks(sorted({r["n_qubits"] for r in rows}))
    ax.set_xlabel("qubits n")
    ax.set_ylabel(r"shots per shifted evaluation $N$")
    ax.set_title("Shots to resolve a typical gradient at one standard error", fontsize=10)
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
    ax.set_ylabel(VARIANCE_LABEL)
    ax.set_title("Gradient variance vs depth (dotted: 2-design)")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def variance_vs_layers_noisy(rows: Sequence[Mapping[str, Any]], slopes: Sequence[Mapping[str, Any]]) -> Figure:
    """Wang et al.: gradient variance against depth, one panel per n, one line per depolarizing rate,
    with the fitted slope and the bound in the legend."""
    qubits = sorted({r["qubits"] for r in rows})
    fig = Figure(figsize=(4.2 * len(qubits), 4))
    fitted = {(s["qubits"], s["depolarizing"]): s for s in slopes}
    for j, n in enumerate(qubits):
        ax = fig.add_subplot(1, len(qubits), j + 1)
        for i, rate in enumerate(sorted({r["depolarizing"] for r in rows if r["qubits"] == n})):
            pts = sorted((r["layers"], r["variance"]) for r in rows if r["qubits"] == n and r["depolarizing"] == rate)
            s = fitted.get((n, rate))
            label = f"p = {rate:g}" + (f": slope {s['fitted_slope']:.3f} (bound {s['bound_slope']:.3f})" if s and rate > 0 else "")
            ax.plot([L for L, _ in pts], [v for _, v in pts], "-", color=f"C{i % 10}", label=label)
        ax.set_yscale("log")
        ax.set_xlabel("layers L")
        ax.set_ylabel(r"Var$[\partial C / \partial \theta_1]$, C = <Z0 Z1>")
        ax.set_title(f"n = {n}")
        ax.legend(fontsize=7)
    fig.suptitle("Noise-induced plateau: ln Var against depth (slopes per layer)")
    fig.tight_layout()
    return fig


def variance_vs_qubits_locality(rows: Sequence[Mapping[str, Any]], fits: Sequence[Mapping[str, Any]]) -> Figure:
    """Cerezo et al.: Var[dC/dtheta_1] against n, solid for the global cost, dashed for the local one, a colour
    per depth; the fitted rate per qubit in the legend."""
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    fitted = {(f["cost"], f["layers"]): f for f in fits}
    for i, L in enumerate(sorted({r["layers"] for r in rows})):
        for cost, style in (("global", "-"), ("local", "--")):
            pts = sorted((r["qubits"], r["variance"]) for r in rows if r["layers"] == L and r["cost"] == cost)
            f = fitted.get((cost, L))
            label = f"{cost}, L = {L}" + (f": {f['slope_per_qubit']:.2f}/qubit" if f and math.isfinite(f["slope_per_qubit"]) else "")
            ax.plot([n for n, _ in pts], [v for _, v in pts], style, marker="o", color=f"C{i % 10}", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("qubits n")
    ax.set_ylabel(r"Var$[\partial C / \partial \theta_1]$")
    ax.set_title("Global cost 1 - p(0...0) against local 1 - mean p_i(0)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def predicted_vs_sampled(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """Three panels over the circuit families: the predicted against the sampled variance of the cost (dots: the
    ideals' formula, squares: the commutant form), the variance against n (line: sampled, filled: predicted,
    open: no prediction), and the algebra's dimension against n."""
    fig = Figure(figsize=(14, 4.3))
    ax_pv, ax_vn, ax_dim = (fig.add_subplot(1, 3, i + 1) for i in range(3))
    families = list(dict.fromkeys(r["family"] for r in rows))
    for i, family in enumerate(families):
        part = sorted((r for r in rows if r["family"] == family), key=lambda r: r["qubits"])
        color = f"C{i % 10}"
        applied = [r for r in part if r["applies"]]
        ax_vn.plot([r["qubits"] for r in part], [r["sampled_variance"] for r in part], "-", color=color, alpha=0.5)
        for method, marker in (("ideals", "o"), ("commutant", "s")):
            mine = [r for r in applied if r.get("method", "ideals") == method]
            label = family if method == "ideals" or not any(r.get("method", "ideals") == "ideals" for r in applied) else None
            ax_pv.errorbar([r["predicted_variance"] for r in mine], [r["sampled_variance"] for r in mine],
                           yerr=[2 * r["sampled_error"] for r in mine], fmt=marker, color=color, label=label if mine else None, ms=4)
            ax_vn.plot([r["qubits"] for r in mine], [r["predicted_variance"] for r in mine], marker, color=color, label=label if mine else None)
        outside = [r for r in part if not r["applies"]]
        ax_vn.plot([r["qubits"] for r in outside], [r["sampled_variance"] for r in outside], "o", mfc="none", color=color)
        ax_dim.plot([r["qubits"] for r in part], [r["dla_dim"] for r in part], "o-", color=color, label=family)
    values = [v for r in rows if r["applies"] for v in (r["predicted_variance"], r["sampled_variance"]) if v > 0]
    if values:
        lo, hi = min(values) / 1.5, max(values) * 1.5
        ax_pv.plot([lo, hi], [lo, hi], "k:", lw=1, label="sampled = predicted")
        ax_pv.set_xscale("log")
        ax_pv.set_yscale("log")
    ax_pv.set_xlabel("predicted Var<O> (Lie algebra)")
    ax_pv.set_ylabel("sampled Var<O> (+- 2 s.e.)")
    ax_pv.set_title("Prediction against sampling")
    ax_pv.legend(fontsize=7)
    ax_vn.set_yscale("log")
    ax_vn.set_xlabel("qubits n")
    ax_vn.set_ylabel("Var<O>")
    ax_vn.set_title("Line: sampled; dot/square: predicted; ring: none")
    ax_vn.legend(fontsize=7)
    ax_dim.set_yscale("log")
    ax_dim.set_xlabel("qubits n")
    ax_dim.set_ylabel("dim of the dynamical Lie algebra")
    ax_dim.set_title("Algebra dimension")
    ax_dim.legend(fontsize=7)
    fig.tight_layout()
    return fig


def dla_vs_deceptiveness(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """The sharing study's circuits: deceptiveness ratio against the (untied) algebra's dimension, one colour per
    sharing degree, one point per circuit seed (jittered sideways so equal dimensions stay visible)."""
    fig = Figure(figsize=(6.2, 4.3))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    for i, k in enumerate(sorted({r["sharing"] for r in rows})):
        part = [r for r in rows if r["sharing"] == k]
        dims = np.array([r["dla_dim"] for r in part], dtype=float)
        ax.plot(dims * np.exp(rng.uniform(-0.04, 0.04, len(dims))), [r["deceptiveness_ratio"] for r in part], "o",
                color=f"C{i % 10}", alpha=0.7, label=f"k = {k}")
    ax.set_xscale("log")
    ax.set_xlabel("dim of the (untied) dynamical Lie algebra")
    ax.set_ylabel("deceptiveness ratio")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Sharing study: algebra dimension against deceptiveness")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def deceptiveness_vs_sharing(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """Deceptiveness ratio against sharing degree: one line per (resolution,
    tol, rule)."""
    fig = Figure(figsize=(6, 4.2))
    ax = fig.add_subplot()
    keys = sorted({(r["resolution"], r["tol"], r["rule"]) for r in rows})
    for i, (resolution, tol, rule) in enumerate(keys):
        pts = sorted((r for r in rows if (r["resolution"], r["tol"], r["rule"]) == (resolution, tol, rule)), key=lambda r: r["sharing"])
        style = ["-", "--", ":", "-."][sorted({k[1] for k in keys}).index(tol) % 4]
        ax.plot([r["sharing"] for r in pts], [r["ratio"] for r in pts], style, marker="o", color=f"C{i % 10}", label=f"R={resolution}, tol={tol:g}, {rule}")
    ax.set_xlabel("sharing degree k (rotations per parameter)")
    ax.set_ylabel("deceptiveness ratio")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks(sorted({r["sharing"] for r in rows}))
    ax.set_title("Deceptiveness against parameter sharing")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def gradient_norm_boxes(norm_rows: Sequence[Mapping[str, Any]]) -> Figure:
    """Box plots of |g| over the grid (whiskers at the 5% and 95% quantiles),
    exact and finite-difference, against sharing (left, finest grid) and, when
    there are several resolutions, against resolution (right, one group per
    sharing)."""
    finest = max(r["resolution"] for r in norm_rows)
    sharings = sorted({r["sharing"] for r in norm_rows})
    resolutions = sorted({r["resolution"] for r in norm_rows})
    fig = Figure(figsize=(10 if len(resolutions) > 1 else 5.5, 4.2))
    left = fig.add_subplot(1, 2 if len(resolutions) > 1 else 1, 1)
    right = fig.add_subplot(1, 2, 2) if len(resolutions) > 1 else None
    methods = {"exact": "exact gradient", "finite_difference": "finite difference of grid values"}

    def box(r: Mapping[str, Any]) -> dict:
        return {"whislo": r["q05"], "q1": r["q25"], "med": r["q50"], "q3": r["q75"], "whishi": r["q95"], "fliers": [], "label": ""}

    for j, method in enumerate(methods):
        style: dict[str, Any] = {
            "widths": 0.25, "patch_artist": True, "manage_ticks": False, "boxprops": {"facecolor": f"C{j}", "alpha": 0.5},
        }
        pick = sorted((r for r in norm_rows if r["method"] == method and r["resolution"] == finest), key=lambda r: r["sharing"])
        left.bxp([box(r) for r in pick], positions=[r["sharing"] + (j - 0.5) * 0.3 for r in pick], **style)
        for i, k in enumerate(sharings if right is not None else []):
            assert right is not None  # the loop runs only with the second panel
            group = sorted((r for r in norm_rows if r["method"] == method and r["sharing"] == k), key=lambda r: r["resolution"])
            positions = [i * (len(resolutions) + 1) + resolutions.index(r["resolution"]) + (j - 0.5) * 0.35 for r in group]
            right.bxp([box(r) for r in group], positions=positions, **style)
    left.set_xticks(sharings)
    left.set_xlabel(f"sharing degree k (R = {finest})")
    left.set_ylabel(r"$|\nabla C|$ over the grid")
    left.legend([Patch(facecolor=f"C{j}", alpha=0.5) for j in range(2)], list(methods.values()), fontsize=8)
    if right is not None:
        right.set_xticks([i * (len(resolutions) + 1) + p for i in range(len(sharings)) for p in range(len(resolutions))])
        right.set_xticklabels([f"k{k}\nR{r}" for k in sharings for r in resolutions], fontsize=7)
        right.set_title("against resolution, per sharing degree", fontsize=9)
    fig.tight_layout()
    return fig


def landscape_view(result: Any, title: str) -> Figure | None:
    """d = 2: the cost heatmap with basin boundaries, terminal minima (star:
    global, x: local) and the deceptive region shaded; d = 3: the same on the
    three axis-aligned slices through the global minimum. None for other d."""
    values, mask, terminal = result.values.numpy(), result.mask.numpy(), result.terminal.numpy()
    d = values.ndim
    if d not in (2, 3):
        return None
    resolution = values.shape[0]
    flat_values = values.reshape(-1)
    minima = np.unique(terminal)
    minima_coords = np.array(np.unravel_index(minima, values.shape)).T  # (M, d)
    if d == 2:
        panels: list[tuple[Any, ...]] = [(values, mask, terminal, minima_coords, minima, (0, 1), "")]
    else:
        centre = np.unravel_index(int(np.argmin(flat_values)), values.shape)
        panels = []
        for fixed in range(3):
            index = tuple(centre[a] if a == fixed else slice(None) for a in range(3))
            keep = minima_coords[:, fixed] == centre[fixed]
            rest = tuple(a for a in range(3) if a != fixed)
            panels.append((values[index], mask[index], terminal[index], minima_coords[keep][:, rest], minima[keep], rest, rf"$\theta_{{{fixed}}}$ at the global minimum"))
    axis_values = -np.pi + 2 * np.pi * np.arange(resolution) / resolution
    extent = (axis_values[0], axis_values[-1], axis_values[0], axis_values[-1])
    fig = Figure(figsize=(5.2 * len(panels), 4.6))
    for i, (vals, msk, term, coords, flat_minima, (row_axis, col_axis), note) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        image = ax.imshow(vals, origin="lower", extent=extent, cmap="viridis", aspect="auto")
        if msk.any():
            ax.contourf(msk.astype(float), levels=[0.5, 1.5], colors="none", hatches=["///"], extent=extent, origin="lower")
        basin_ids = np.unique(term, return_inverse=True)[1].reshape(term.shape)
        if basin_ids.max() > 0:
            ax.contour(basin_ids.astype(float), levels=np.arange(0.5, basin_ids.max() + 0.5), colors="black", linewidths=0.4, extent=extent, origin="lower")
        for (row, col), flat_index in zip(coords, flat_minima):
            is_global = flat_values[flat_index] <= result.threshold
            ax.plot(axis_values[col], axis_values[row], "*" if is_global else "x", color="red" if is_global else "white", markersize=10 if is_global else 6)
        ax.set_xlabel(rf"$\theta_{{{col_axis}}}$")
        ax.set_ylabel(rf"$\theta_{{{row_axis}}}$")
        ax.set_title(note, fontsize=8)
        fig.colorbar(image, ax=ax, shrink=0.8, label="cost")
    key = [
        Line2D([], [], marker="*", color="red", linestyle="none", markersize=10, label="global minimum"),
        Line2D([], [], marker="x", color="white", markeredgecolor="black", linestyle="none", markersize=6, label="local (non-global) minimum"),
        Patch(facecolor="none", edgecolor="black", hatch="///", label="deceptive: descends to a local minimum"),
        Line2D([], [], color="black", linewidth=0.6, label="basin boundary"),
    ]
    fig.legend(handles=key, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(f"{title}: deceptiveness ratio {result.ratio:.3f}, {result.n_minima} local minima", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))  # room for the key below the panels
    return fig


def success_vs_lr(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """Success rate against the learning rate: one panel per sharing degree,
    one line per optimizer, the landscape's predicted success dashed."""
    sharings = sorted({r["sharing"] for r in rows})
    optimizers = list(dict.fromkeys(r["optimizer"] for r in rows))
    fig = Figure(figsize=(3.4 * len(sharings) + 0.6, 3.6))
    for i, k in enumerate(sharings):
        ax = fig.add_subplot(1, len(sharings), i + 1)
        for j, name in enumerate(optimizers):
            pts = sorted((r for r in rows if r["sharing"] == k and r["optimizer"] == name), key=lambda r: r["lr"])
            positive = [r for r in pts if r["lr"] > 0]  # a log axis cannot show lr = 0
            ax.plot([r["lr"] for r in positive], [r["success_rate"] for r in positive], "-o", color=f"C{j}", markersize=4, label=name)
            if positive and positive[0]["predicted_success"] is not None:
                ax.plot([r["lr"] for r in positive], [r["predicted_success"] for r in positive], "--", color=f"C{j}", linewidth=1, label=f"{name}: predicted")
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("learning rate")
        ax.set_title(f"sharing k = {k}", fontsize=9)
        if i == 0:
            ax.set_ylabel("success rate")
            ax.legend(fontsize=7)
    fig.suptitle("Success rate against learning rate (dashed: the landscape's basins predict)", fontsize=10)
    fig.tight_layout()
    return fig


def success_vs_shots(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """Success rate against the shots per shifted evaluation of every training
    step: one panel per sharing degree, one line per optimizer (and settings)
    at its best learning rate for each shots value, written beside its point.
    The shots values are evenly spaced in increasing order, exact gradients
    (shots None) last, as the limit of infinitely many shots."""
    sharings = sorted({r["sharing"] for r in rows})
    counts = sorted({r["shots"] for r in rows if r["shots"] is not None})
    ticks = counts + ([None] if any(r["shots"] is None for r in rows) else [])
    variants = list(dict.fromkeys((r["optimizer"], r["optimizer_settings"]) for r in rows))
    fig = Figure(figsize=(3.6 * len(sharings) + 0.6, 3.8))
    for i, k in enumerate(sharings):
        ax = fig.add_subplot(1, len(sharings), i + 1)
        for j, (name, settings) in enumerate(variants):
            pts = sorted((r for r in rows if r["sharing"] == k and (r["optimizer"], r["optimizer_settings"]) == (name, settings)),
                         key=lambda r: ticks.index(r["shots"]))
            xs = [ticks.index(r["shots"]) for r in pts]
            label = name if settings == "defaults" else f"{name} ({settings})"
            ax.plot(xs, [r["success_rate"] for r in pts], "-o", color=f"C{j % 10}", markersize=4, label=label)
            for x, r in zip(xs, pts):
                ax.annotate(f"{r['lr']:g}", (x, r["success_rate"]), textcoords="offset points", xytext=(3, 4), fontsize=6, color=f"C{j % 10}")
        ax.set_xticks(range(len(ticks)))
        ax.set_xticklabels(["exact" if t is None else f"{t:g}" for t in ticks])
        ax.set_xlim(-0.4, len(ticks) - 0.6)  # room for the last point's label
        ax.set_ylim(-0.02, 1.08)
        ax.set_xlabel("shots per shifted evaluation")
        ax.set_title(f"sharing k = {k}", fontsize=9)
        if i == 0:
            ax.set_ylabel("success rate (exact final cost)")
            ax.legend(fontsize=7)
    fig.suptitle("Success rate against shots per step\n(each at its best learning rate, written beside its point)", fontsize=9)
    fig.tight_layout()
    return fig


def trajectories(circuit: Any, cost: Any, results: Mapping[str, Any], resolution: int, title: str, starts: int = 3) -> Figure | None:
    """A few starts' paths over the landscape, one row per optimizer, one
    colour per learning rate: the heatmap for d = 2, for d = 3 the three
    slices through the global minimum with the paths projected on them, all
    on one colour scale (the whole grid's cost range) with its colour bar.
    None for other d or a cost the landscape cannot take."""
    from qtrain.landscape import sample_landscape

    d = circuit.n_params
    if d not in (2, 3) or callable(cost) and not hasattr(cost, "shape"):
        return None
    values = sample_landscape(circuit, cost, resolution).values.numpy()
    centre = np.unravel_index(int(np.argmin(values)), values.shape)
    pairs = [(0, 1)] if d == 2 else [(1, 2), (0, 2), (0, 1)]
    axis = -np.pi + 2 * np.pi * np.arange(resolution) / resolution
    extent = (axis[0], axis[-1], axis[0], axis[-1])
    fig = Figure(figsize=(4.2 * len(pairs) + 0.8, 3.8 * len(results)), layout="constrained")  # constrained: room for the colour bar
    # one scale for every panel, so one colour bar reads them all
    scale: dict[str, Any] = {"vmin": float(values.min()), "vmax": float(values.max())}
    image = None
    for row, (name, result) in enumerate(results.items()):
        paths = result.trajectories.double().numpy()  # (T + 1, G, K, d)
        for col, (a, b) in enumerate(pairs):
            ax = fig.add_subplot(len(results), len(pairs), row * len(pairs) + col + 1)
            index = tuple(slice(None) if axis_ in (a, b) else centre[axis_] for axis_ in range(d))
            image = ax.imshow(values[index], origin="lower", extent=extent, cmap="viridis", aspect="auto", **scale)
            for g, lr in enumerate(result.lrs):
                for s in range(min(starts, paths.shape[2])):
                    xs, ys = _wrapped(paths[:, g, s, b], paths[:, g, s, a])
                    ax.plot(xs, ys, "-", color=f"C{g % 10}", linewidth=0.9, label=f"lr {lr:g}" if s == 0 else None)
                    ax.plot(xs[-1], ys[-1], "o", color=f"C{g % 10}", markersize=3)
            ax.set_xlabel(rf"$\theta_{{{b}}}$")
            ax.set_ylabel(rf"$\theta_{{{a}}}$")
            ax.set_title(f"{name}" + ("" if d == 2 else r", other angle at the global minimum"), fontsize=8)
            if row == 0 and col == 0:
                ax.legend(fontsize=6, loc="upper right")
    if image is not None:
        fig.colorbar(image, ax=fig.axes, shrink=0.9, label="cost")
    fig.suptitle(f"{title}: paths of {starts} starts (dot: where they end)", fontsize=10)
    return fig


def _wrapped(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D path with its angles wrapped to [-pi, pi), broken (NaN) where it crosses an edge."""
    x, y = ((v + np.pi) % (2 * np.pi) - np.pi for v in (xs, ys))
    breaks = np.nonzero((np.abs(np.diff(x)) > np.pi) | (np.abs(np.diff(y)) > np.pi))[0] + 1
    return np.insert(x, breaks, np.nan), np.insert(y, breaks, np.nan)


def remedies(rows: Sequence[Mapping[str, Any]], variance_rows: Sequence[Mapping[str, Any]] = ()) -> Figure:
    """Per circuit, two panels: the gradient variance at the start of every init
    (the first parameter's with its interval, and the mean over parameters), and
    the success rate of every (init, optimizer) at its best learning rate, as a
    table of colours; a row without numbers (its note says why) is marked n/a.
    With `variance_rows`, a last panel: the mean variance at the start against n."""
    circuits = list(dict.fromkeys(r["circuit"] for r in rows))
    panels = len(circuits) + (1 if variance_rows else 0)
    fig = Figure(figsize=(11, 3.6 * panels))
    for i, circuit in enumerate(circuits):
        mine = [r for r in rows if r["circuit"] == circuit]
        starts = list(dict.fromkeys((r["init"], r["schedule"]) for r in mine))
        labels = [init if schedule == "plain" else f"{init}+layerwise" for init, schedule in starts]
        optimizers = list(dict.fromkeys(r["optimizer"] for r in mine))
        first = {(r["init"], r["schedule"]): r for r in mine}
        ax = fig.add_subplot(panels, 2, 2 * i + 1)
        xs = np.arange(len(starts))
        for offset, key, name in ((-0.18, "grad_var_first", "first parameter"), (0.18, "grad_var_mean", "mean over parameters")):
            values = [first[s][key] if first[s][key] is not None and first[s][key] > ZERO_VARIANCE else np.nan for s in starts]
            ax.bar(xs + offset, values, width=0.34, label=name)
            for x, s in zip(xs, starts):
                if first[s][key] is not None and first[s][key] <= ZERO_VARIANCE:  # zero by symmetry (rounding at most): no bar on a log axis
                    ax.text(float(x + offset), 0.02, "0", transform=ax.get_xaxis_transform(), ha="center", fontsize=8)
        low = [first[s]["grad_var_first_ci_low"] for s in starts]
        high = [first[s]["grad_var_first_ci_high"] for s in starts]
        centre = [first[s]["grad_var_first"] for s in starts]
        for x, c, lo, hi in zip(xs, centre, low, high):
            if c is not None and c > ZERO_VARIANCE and lo is not None and hi is not None:
                ax.plot([x - 0.18, x - 0.18], [max(lo, c * 1e-3), hi], color="black", linewidth=1)
        for x, s in zip(xs, starts):
            if first[s]["note"]:
                ax.text(float(x), 0.5, "n/a", transform=ax.get_xaxis_transform(), ha="center", fontsize=8, color="gray")
        ax.set_yscale("log")
        ax.set_xticks(xs, labels, rotation=20, fontsize=8)
        ax.set_ylabel("Var[dC/dθ] at the start")
        ax.set_title(f"{circuit}: gradient variance at the start", fontsize=9)
        ax.legend(fontsize=7)
        ax = fig.add_subplot(panels, 2, 2 * i + 2)
        by = {(r["init"], r["schedule"], r["optimizer"]): r for r in mine}
        grid = np.array([[by[(*s, o)]["success_rate"] if by[(*s, o)]["success_rate"] is not None else np.nan for o in optimizers] for s in starts], dtype=float)
        ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for a, s in enumerate(starts):
            for b, o in enumerate(optimizers):
                row = by[(*s, o)]
                text = "n/a" if row["success_rate"] is None else f"{row['success_rate']:.2f}\nlr {row['lr']:g}"
                ax.text(b, a, text, ha="center", va="center", fontsize=7, color="gray" if np.isnan(grid[a, b]) else "white" if grid[a, b] < 0.6 else "black")
        ax.set_xticks(range(len(optimizers)), optimizers, fontsize=8)
        ax.set_yticks(range(len(starts)), labels, fontsize=8)
        ax.set_title(f"{circuit}: success rate at the best learning rate", fontsize=9)
    if variance_rows:
        for k, key in enumerate(("grad_var_first", "grad_var_mean")):
            ax = fig.add_subplot(panels, 2, 2 * len(circuits) + 1 + k)
            starts = list(dict.fromkeys((r["init"], r["schedule"]) for r in variance_rows))
            for j, (init, schedule) in enumerate(starts):
                pts = sorted((r["qubits"], r[key]) for r in variance_rows if (r["init"], r["schedule"]) == (init, schedule) and r[key] > ZERO_VARIANCE)
                if pts:
                    ax.plot(*zip(*pts), "-o", color=f"C{j}", markersize=4, label=init if schedule == "plain" else f"{init}+layerwise")
            ax.set_yscale("log")
            ax.set_xlabel("qubits n")
            ax.set_ylabel("Var at the start")
            layers = variance_rows[0]["layers"]
            ax.set_title(f"McClean, {layers} layers: {'first parameter' if k == 0 else 'mean over parameters'}", fontsize=9)
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
