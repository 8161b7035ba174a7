"""A short hybrid-model training run: classical layer -> QuantumLayer ->
classical head on a seeded two-blob data set. It shows the pieces working
together in a minute on a laptop CPU and writes a loss and training-accuracy
table, their curves (loss.png) and TensorBoard events."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import nn
from tqdm import tqdm

from qtrain import _tables as tables
from qtrain.builders import encoder_circuit
from qtrain.layers import QuantumLayer
from qtrain._tasks import checks

__all__ = ["plan", "run", "two_blobs"]

log = logging.getLogger(__name__)


def two_blobs(n: int, dim: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` points in two Gaussian blobs around -0.9 and +0.9 on every axis (std 0.5): features (n, dim) float32 and
    labels (n,) int64 in {0, 1}."""
    labels = torch.randint(0, 2, (n,), generator=generator)
    centers = torch.stack([-torch.ones(dim), torch.ones(dim)]) * 0.9
    return centers[labels] + 0.5 * torch.randn(n, dim, generator=generator), labels


def plan(cfg: Any) -> dict[str, Any]:
    """Check every key before any work."""
    checks.one_process(cfg)
    for key, low in (("qubits", 1), ("layers", 1), ("samples", 2), ("steps", 1)):
        checks.positive_int(cfg[key], key, minimum=low)
    return {"lr": checks.positive_float(cfg.lr, "lr"), "seed": checks.positive_int(cfg.seed, "seed", minimum=0)}


def run(cfg: Any, out_dir: Path, planned: dict[str, Any] | None = None) -> dict[str, float]:
    """The experiment, from `plan(cfg)` (`planned`: the plan the caller already made)."""
    if planned is None:
        plan(cfg)
    gen = torch.Generator().manual_seed(int(cfg.seed))
    torch.manual_seed(int(cfg.seed))
    x, y = two_blobs(int(cfg.samples), int(cfg.qubits), gen)
    noise, trajectories = checks.noise(cfg)
    model = nn.Sequential(
        nn.Linear(cfg.qubits, cfg.qubits),
        QuantumLayer(encoder_circuit(cfg.qubits, cfg.layers), [f"Z{q}" for q in range(cfg.qubits)], inputs=[f"x{q}" for q in range(cfg.qubits)], init="small", generator=gen,
                     noise=noise, trajectories=trajectories),
        nn.Linear(cfg.qubits, 2),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg.lr))
    from qtrain._tb import log_hparams, open_writer  # TensorBoard only when a run really starts

    writer = open_writer(out_dir)
    rows = []
    for step in tqdm(range(int(cfg.steps)), desc="demo training", disable=not cfg.progress):
        optimizer.zero_grad()
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        accuracy = (logits.argmax(dim=1) == y).float().mean().item()  # on the training data: the demo has no test split
        rows.append({"step": step, "loss": loss.item(), "train_accuracy": accuracy})
        writer.add_scalar("loss", loss.item(), step)
        writer.add_scalar("train_accuracy", accuracy, step)
    tables.write_rows(out_dir / "results.csv", rows, ["step", "loss", "train_accuracy"])
    figure = _plot(rows)
    figure.savefig(out_dir / "loss.png", dpi=120)
    writer.add_figure("loss", figure)
    result = {"initial_loss": rows[0]["loss"], "final_loss": rows[-1]["loss"], "final_train_accuracy": rows[-1]["train_accuracy"]}
    log_hparams(writer, {k: cfg[k] for k in ("qubits", "layers", "samples", "steps", "lr", "seed")}, result)
    writer.close()
    log.info("demo: loss %.3f -> %.3f, training accuracy %.2f; outputs in %s", result["initial_loss"], result["final_loss"], result["final_train_accuracy"], out_dir)
    return result


def _plot(rows: list[dict]) -> Figure:
    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.add_subplot()
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["loss"] for r in rows], color="C0")
    ax.set_xlabel("Adam step (full batch)")
    ax.set_ylabel("cross-entropy loss", color="C0")
    right = ax.twinx()
    right.plot(steps, [r["train_accuracy"] for r in rows], color="C1")
    right.set_ylabel("accuracy on the training data", color="C1")
    right.set_ylim(0, 1.02)
    ax.set_title("Hybrid model on two blobs")
    fig.tight_layout()
    return fig
