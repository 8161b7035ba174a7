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
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader

from qtrain.errors import UsageError
from qtrain.training._module import MultiStartModule
from qtrain.training.layerwise import Layerwise

__all__ = ["LayerwiseCallback", "check_resume", "checkpoint_step", "fit", "newest_checkpoint", "quiet"]

log = logging.getLogger(__name__)

#: Lightning's start-up chatter (devices, TPU lines, tips) says nothing about a multi-start run.
CHATTY = ("lightning.pytorch", "lightning.fabric", "lightning_utilities")
#: Message starts of the warnings `quiet` drops, for spawned processes (PYTHONWARNINGS takes no patterns)
SPAWNED_QUIET = ("`isinstance(treespec, LeafSpec)` is deprecated",)


def fit(module: MultiStartModule, steps: int, device: torch.device, log_dir: str | Path | None, checkpoint_dir: str | Path | None, checkpoint_every: int,
        progress: bool, layerwise: Layerwise | None = None) -> None:
    """Run `steps` optimizer steps; resume from the newest checkpoint in
    `checkpoint_dir` when there is one, after checking that it holds this very
    run (`module.fingerprint`) at no more than `steps` steps. With `layerwise`,
    its callback sets the frozen parameters before every step."""
    logger = TensorBoardLogger(str(log_dir), name="", version="", default_hp_metric=False) if log_dir is not None else False
    callbacks: list[pl.Callback] = [] if layerwise is None else [LayerwiseCallback(layerwise)]
    resume: str | None = None
    if checkpoint_dir is not None:
        callbacks.append(ModelCheckpoint(dirpath=str(checkpoint_dir), filename="step-{epoch}", every_n_epochs=checkpoint_every, save_last=True))
        resume = newest_checkpoint(Path(checkpoint_dir))
        if resume:
            check_resume(resume, module.fingerprint, steps)
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
        # one dummy batch per epoch; a list is a map-style dataset (len and indexing), which torch's annotation
        # (the Dataset class) does not express
        trainer.fit(module, DataLoader([0], batch_size=1), ckpt_path=resume)  # type: ignore[arg-type]


def newest_checkpoint(checkpoint_dir: Path) -> str | None:
    """The checkpoint of the most steps, or None. Lightning writes
    `step-epoch=N.ckpt` and then `last.ckpt`; a run killed between the two
    leaves the step file ahead of `last.ckpt`, and a copied folder loses its
    files' times, so the step each one holds (its cost history's length),
    not its name or mtime, says where to resume. An unreadable file (not a
    checkpoint) is passed over."""
    best: tuple[int, str] | None = None
    for path in sorted(checkpoint_dir.glob("*.ckpt")) if checkpoint_dir.is_dir() else []:
        step = checkpoint_step(path)
        if step is not None and (best is None or step > best[0]):
            best = (step, str(path))
    return best[1] if best else None


def checkpoint_step(path: Path) -> int | None:
    """How many optimizer steps the checkpoint at `path` holds, or None if it cannot be read."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)  # mmap: the tensors stay on disk
    except Exception as e:  # a truncated or foreign file: not a place to resume from
        log.warning("passing over %s: not a readable checkpoint (%s)", path, e)
        return None
    history = checkpoint.get("cost_history") if isinstance(checkpoint, dict) else None
    return int(history.shape[0]) if isinstance(history, torch.Tensor) else None


def check_resume(path: str | Path, fingerprint: dict[str, Any], steps: int) -> None:
    """Refuse to resume from a checkpoint of another run (its fingerprint
    differs: name what) or one already past `steps`."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    recorded = checkpoint.get("qtrain_run")
    folder = Path(path).parent
    if recorded is None:
        raise UsageError(f"{path} was written without a record of its run (an older qtrain), so it cannot be checked; "
                         f"remove {folder} or give another checkpoint_dir")
    changed = {k: (recorded.get(k), v) for k, v in fingerprint.items() if recorded.get(k) != v}
    if changed:
        detail = "; ".join(f"{k}: {old!r} there, {new!r} now" for k, (old, new) in changed.items())
        raise UsageError(f"checkpoint_dir {folder} holds another run ({detail}); "
                         "give another checkpoint_dir, or the same settings to resume it")
    done = int(checkpoint["cost_history"].shape[0])
    if done > steps:
        raise UsageError(f"checkpoint_dir {folder} holds {done} steps of this run, more than steps={steps}; "
                         "steps may grow on resume, not shrink")


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
            # a stepper (qng, spsa, rotosolve) moves the parameters itself: a run without a torch optimizer is meant
            warnings.filterwarnings("ignore", message=".*returned `None`, this fit will run with no optimizer.*")
            # a copied or moved checkpoint folder: qtrain picks the checkpoint to resume from itself (`newest_checkpoint`)
            warnings.filterwarnings("ignore", message=".*The dirpath has changed from.*")
            warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if environment is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = environment


class LayerwiseCallback(pl.Callback):
    """Sets the module's frozen mask before every step from the step number (so a resumed run freezes as an uninterrupted one)."""

    def __init__(self, schedule: Layerwise) -> None:
        self.schedule = schedule

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = len(pl_module.history)  # type: ignore[arg-type]  # a MultiStartModule: one epoch is one step
        n_params = pl_module.thetas[0].shape[-1]  # type: ignore[index]
        frozen = self.schedule.frozen_at(step, n_params)
        pl_module.set_frozen(frozen)  # type: ignore[operator]
