"""A hybrid classifier trained with Lightning: classical encoder ->
QuantumLayer -> classical head, on scikit-learn's bundled 8x8 digits (no
download), beside a classical model with the same number of trainable
parameters."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from qtrain.builders import encoder_circuit
from qtrain.layers import QuantumLayer
from qtrain.noise import NoiseModel

__all__ = [
    "Classifier", "LeaveProcessGroup", "Scale", "classical_model", "digits", "loaders", "quantum_model",
    "trainable"
]

CLASSES = 10


def digits(seed: int, fractions: tuple[float, float] = (0.6, 0.2)) -> dict[str, TensorDataset]:
    """The 1797 digits, pixels scaled to [0, 1], split train / val / test by a seeded permutation."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16
    y = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    a, b = int(fractions[0] * len(y)), int((fractions[0] + fractions[1]) * len(y))
    parts = {"train": order[:a], "val": order[a:b], "test": order[b:]}
    return {name: TensorDataset(x[index], y[index]) for name, index in parts.items()}


def quantum_model(features: int, qubits: int, layers: int, generator: torch.Generator | None = None, noise: NoiseModel | None = None,
                  trajectories: int | None = None) -> nn.Module:
    """features -> qubits (tanh, scaled to angles in [-pi, pi]) -> QuantumLayer (<Z_q>, under `noise` when given) -> 10 classes."""
    circuit = encoder_circuit(qubits, layers)
    quantum = QuantumLayer(circuit, [f"Z{q}" for q in range(qubits)], inputs=[f"x{q}" for q in range(qubits)], init="small", generator=generator,
                           noise=noise, trajectories=trajectories)
    return nn.Sequential(nn.Linear(features, qubits), nn.Tanh(), Scale(torch.pi), quantum, nn.Linear(qubits, CLASSES))


def classical_model(features: int, budget: int) -> nn.Module:
    """An MLP features -> h -> 10 with the largest h whose parameter count stays within `budget`."""
    hidden = max(1, (budget - CLASSES) // (features + 1 + CLASSES))
    return nn.Sequential(nn.Linear(features, hidden), nn.Tanh(), nn.Linear(hidden, CLASSES))


def trainable(model: nn.Module) -> int:
    """The number of trainable scalars in `model` (parameters with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class Scale(nn.Module):
    """Multiply the input by a fixed `factor` (no parameters): maps tanh's (-1, 1) onto angles in (-pi, pi) rad."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class Classifier(pl.LightningModule):
    """Cross-entropy training of any model; logs {train,val,test}/{loss,accuracy}."""

    def __init__(self, model: nn.Module, lr: float) -> None:
        super().__init__()
        self.model, self.lr = model, lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        x, y = batch
        logits = self.model(x)
        loss = nn.functional.cross_entropy(logits, y)
        accuracy = (logits.argmax(dim=1) == y).float().mean()
        self.log_dict({f"{stage}/loss": loss, f"{stage}/accuracy": accuracy}, on_step=False, on_epoch=True, batch_size=len(y), sync_dist=True)  # the mean over ranks under DDP
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class LeaveProcessGroup(pl.Callback):
    """For Trainer(strategy="ddp_spawn"): each spawned rank destroys its process group at
    the end of fit, while its interpreter is fully alive. Lightning leaves a gloo group to
    interpreter shutdown, where a gloo worker thread still holding the last collective's
    work can take the GIL too late and abort the rank (SIGABRT, "terminate called without an
    active exception"; qtrain.parallel does the same for its own ranks). Not for ranks a
    launcher started (torchrun): they keep their group for the next fit."""

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and torch.distributed.is_initialized():
            trainer.strategy.barrier("leave the process group")  # every rank past its last collective
            torch.distributed.destroy_process_group()  # joins gloo's worker threads


def loaders(data: dict[str, TensorDataset], batch_size: int, seed: int, distributed: bool = False) -> dict[str, DataLoader]:
    """The splits' loaders, the training split shuffled by `seed`. distributed:
    Lightning's DDP puts a DistributedSampler in, shuffled by the seed of
    `pl.seed_everything`; a torch.Generator would have to travel to spawned
    ranks, which torch cannot unpickle there."""
    generator = None if distributed else torch.Generator().manual_seed(seed)
    return {name: DataLoader(ds, batch_size=batch_size, shuffle=name == "train", generator=generator if name == "train" else None) for name, ds in data.items()}
