"""A short hybrid-model training run: classical layer -> QuantumLayer ->
classical head on a seeded two-blob data set. It shows the pieces working
together in a minute on a laptop CPU and writes a loss table and curve."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from qtrain.builders import encoder_circuit
from qtrain.layers import QuantumLayer

log = logging.getLogger(__name__)


def two_blobs(n: int, dim: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.randint(0, 2, (n,), generator=generator)
    centers = torch.stack([-torch.ones(dim), torch.ones(dim)]) * 0.9
    return centers[labels] + 0.5 * torch.randn(n, dim, generator=generator), labels


def plan(cfg: Any) -> None:
    """Check every key before any work."""
    for key, low in (("qubits", 1), ("layers", 1), ("samples", 2), ("steps", 1)):
        if int(cfg[key]) < low:
            raise ValueError(f"{key} must be >= {low}, got {cfg[key]}")
    if not float(cfg.lr) > 0:
        raise ValueError(f"lr must be positive, got {cfg.lr}")


def run(cfg: Any, out_dir: Path) -> dict[str, float]:
    plan(cfg)
    gen = torch.Generator().manual_seed(int(cfg.seed))
    torch.manual_seed(int(cfg.seed))
    x, y = two_blobs(int(cfg.samples), int(cfg.qubits), gen)
    model = nn.Sequential(
        nn.Linear(cfg.qubits, cfg.qubits),
        QuantumLayer(encoder_circuit(cfg.qubits, cfg.layers), [f"Z{q}" for q in range(cfg.qubits)], inputs=[f"x{q}" for q in range(cfg.qubits)], init="small", generator=gen),
        nn.Linear(cfg.qubits, 2),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg.lr))
    rows = []
    for step in tqdm(range(int(cfg.steps)), desc="demo training", disable=not cfg.progress):
        optimizer.zero_grad()
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        accuracy = (logits.argmax(dim=1) == y).float().mean().item()
        rows.append({"step": step, "loss": loss.item(), "accuracy": accuracy})
    with open(out_dir / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["step", "loss", "accuracy"])
        writer.writeheader()
        writer.writerows(rows)
    _plot(rows, out_dir / "loss.png")
    result = {"initial_loss": rows[0]["loss"], "final_loss": rows[-1]["loss"], "final_accuracy": rows[-1]["accuracy"]}
    log.info("demo: loss %.3f -> %.3f, accuracy %.2f; outputs in %s", result["initial_loss"], result["final_loss"], result["final_accuracy"], out_dir)
    return result


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], label="loss")
    ax.plot([r["step"] for r in rows], [r["accuracy"] for r in rows], label="accuracy")
    ax.set_xlabel("step")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
