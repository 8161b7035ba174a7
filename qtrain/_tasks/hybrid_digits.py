"""The hybrid example: classical encoder -> QuantumLayer -> head on the 8x8
digits, trained with Lightning (train / val loss and accuracy in TensorBoard,
QuantumGradientMonitor on the quantum layer), and a classical model with the
same number of trainable parameters trained the same way. Writes
results.csv (model, trainable parameters, test loss and accuracy) and
TensorBoard events per model under tb/."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from qtrain import parallel, _tables as tables
from qtrain._tasks import checks
from qtrain.training._hybrid import Classifier, LeaveProcessGroup, classical_model, digits, loaders, quantum_model, trainable
from qtrain.training.monitor import QuantumGradientMonitor
from qtrain.training._run import quiet

__all__ = ["plan", "run"]

log = logging.getLogger(__name__)
COLUMNS = ["model", "trainable_parameters", "test_loss", "test_accuracy", "val_accuracy", "epochs"]


def plan(cfg: Any) -> dict[str, Any]:
    """Check every key before any work; the plan holds the run seed."""
    parallel.check_trainer(cfg.trainer, torch.device("cpu"))
    for key, low in (("qubits", 1), ("layers", 1), ("epochs", 1), ("batch_size", 1), ("monitor_samples", 2)):
        checks.positive_int(cfg[key], key, minimum=low)
    checks.positive_float(cfg.lr, "lr")
    return {"seed": checks.positive_int(cfg.seed, "seed", minimum=0)}


def run(cfg: Any, out_dir: Path, planned: dict[str, Any] | None = None) -> dict[str, Any]:
    """The experiment, from `plan(cfg)` (`planned`: the plan the caller already made)."""
    p = planned if planned is not None else plan(cfg)
    data = digits(p["seed"])
    features = data["train"].tensors[0].shape[1]
    gen = torch.Generator().manual_seed(p["seed"])
    torch.manual_seed(p["seed"])
    noise, trajectories = checks.noise(cfg)
    hybrid = quantum_model(features, cfg.qubits, cfg.layers, gen, noise, trajectories)
    models = {"hybrid": hybrid, "classical": classical_model(features, trainable(hybrid))}
    rows = []
    for name, model in models.items():
        torch.manual_seed(p["seed"])
        callbacks = [QuantumGradientMonitor(samples=cfg.monitor_samples, seed=p["seed"])] if name == "hybrid" else []
        row, main = _fit(name, model, cfg, data, callbacks, out_dir, p["seed"])
        rows.append(row)
        if main:
            tables.write_rows(out_dir / "results.csv", rows, COLUMNS)
    if main:
        log.info("hybrid_digits: %s; outputs in %s", "; ".join(f"{r['model']} ({r['trainable_parameters']} parameters): test accuracy {r['test_accuracy']:.3f}" for r in rows), out_dir)
    return {"rows": rows}


def _fit(name, model, cfg, data, callbacks, out_dir: Path, seed: int) -> tuple[dict[str, Any], bool]:
    """Train on `trainer.devices` x `trainer.num_nodes` ranks, then test on one
    device (every test digit exactly once); the row, and whether this process writes it."""
    module = Classifier(model, float(cfg.lr))
    # A replicated model, unlike independent starts: Lightning's DDP keeps a copy per rank,
    # each on its share of every epoch, with the gradients averaged (batches of ranks x batch_size).
    world = parallel.world_size(cfg.trainer)
    strategy = "auto" if world == 1 else "ddp" if parallel.launched_externally() else "ddp_spawn"
    callbacks = [*callbacks, LeaveProcessGroup()] if strategy == "ddp_spawn" else callbacks
    batches = loaders(data, cfg.batch_size, seed, distributed=world > 1)
    logger = TensorBoardLogger(str(out_dir / "tb"), name=name, version="", default_hp_metric=False)
    with quiet():
        pl.seed_everything(seed, verbose=False)  # DDP's samplers shuffle by it, in every rank
        trainer = pl.Trainer(max_epochs=cfg.epochs, accelerator="cpu", devices=cfg.trainer.devices, num_nodes=cfg.trainer.num_nodes, strategy=strategy, logger=logger,
                             callbacks=callbacks, enable_checkpointing=False, enable_progress_bar=bool(cfg.progress), enable_model_summary=False, log_every_n_steps=5)
        trainer.fit(module, batches["train"], batches["val"])  # spawned ranks hand the trained weights back to this process
        val = trainer.callback_metrics["val/accuracy"].item()
        main = trainer.is_global_zero
        tester = pl.Trainer(accelerator="cpu", devices=1, logger=logger if main else False, enable_progress_bar=False, enable_model_summary=False)
        test = tester.test(module, batches["test"], verbose=False)[0]
    return {"model": name, "trainable_parameters": trainable(model), "test_loss": test["test/loss"], "test_accuracy": test["test/accuracy"], "val_accuracy": val, "epochs": cfg.epochs}, main
