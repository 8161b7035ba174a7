"""The Lightning Trainer around a `MultiStartModule`: one optimizer step per
epoch of a one-item loader, so that a checkpoint always falls between two
whole steps and a resumed run continues exactly where the saved one was."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader

from qtrain.training.module import MultiStartModule

log = logging.getLogger(__name__)

#: Lightning's start-up chatter (devices, TPU lines, tips) says nothing about a multi-start run.
CHATTY = ("lightning.pytorch", "lightning.fabric", "lightning_utilities")
#: Message starts of the warnings `quiet` drops, for spawned processes (PYTHONWARNINGS takes no patterns)
SPAWNED_QUIET = ("`isinstance(treespec, LeafSpec)` is deprecated",)


def fit(module: MultiStartModule, steps: int, device: torch.device, log_dir: str | Path | None, checkpoint_dir: str | Path | None, checkpoint_every: int, progress: bool) -> None:
    """Run `steps` optimizer steps; resume from the newest checkpoint in `checkpoint_dir` when there is one."""
    logger = TensorBoardLogger(str(log_dir), name="", version="", default_hp_metric=False) if log_dir is not None else False
    callbacks, resume = [], None
    if checkpoint_dir is not None:
        callbacks.append(ModelCheckpoint(dirpath=str(checkpoint_dir), filename="step-{epoch}", every_n_epochs=checkpoint_every, save_last=True))
        resume = newest_checkpoint(Path(checkpoint_dir))
        if resume:
            log.info("resuming from %s", resume)
    cuda = device.type == "cuda"
    with quiet():
        trainer = pl.Trainer(
            max_epochs=steps,  # one optimizer step per epoch
            accelerator="gpu" if cuda else "cpu",
            devices=[device.index or 0] if cuda else 1,
            logger=logger,
            callbacks=callbacks,
            enable_checkpointing=checkpoint_dir is not None,
            enable_progress_bar=progress,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        trainer.fit(module, DataLoader([0], batch_size=1), ckpt_path=resume)


def newest_checkpoint(checkpoint_dir: Path) -> str | None:
    """The checkpoint written last, or None. Lightning writes `step-epoch=N.ckpt`
    and then `last.ckpt`, each atomically; a run killed between the two leaves
    the step file newer than `last.ckpt`, so the newest file, not the name, says
    where to resume."""
    candidates = list(checkpoint_dir.glob("*.ckpt")) if checkpoint_dir.is_dir() else []
    return str(max(candidates, key=lambda path: path.stat().st_mtime_ns)) if candidates else None


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Lightning without its start-up chatter and the warnings that do not
    apply to qtrain's runs; its real warnings and errors still show."""
    levels = {name: logging.getLogger(name).level for name in CHATTY}
    environment = os.environ.get("PYTHONWARNINGS")
    try:
        for name in CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)
        # processes Lightning spawns start with Python's default filters: they read these
        os.environ["PYTHONWARNINGS"] = ",".join(f"ignore:{prefix}" for prefix in SPAWNED_QUIET)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")  # tensors in memory need no workers
            warnings.filterwarnings("ignore", message=".*is smaller than the logging interval.*")
            warnings.filterwarnings("ignore", message=".*exists and is not empty.*")  # a resumed run writes into its own folder
            warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if environment is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = environment
