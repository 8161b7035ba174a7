"""TensorBoard output: a SummaryWriter in the run directory. Imported only by
tasks, so `import qtrain` never loads TensorBoard."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

__all__ = ["log_hparams", "open_writer"]


def open_writer(out_dir: Path) -> SummaryWriter:
    """A TensorBoard writer whose event files go straight into the run directory `out_dir`."""
    return SummaryWriter(log_dir=str(out_dir))


def log_hparams(writer: SummaryWriter, hparams: Mapping[str, Any], metrics: Mapping[str, float], run_name: str = ".") -> None:
    """A row of the hparams table, its metrics under `hp/`: written into the
    run directory itself, or into a sub-run `run_name` (one row per cell of a grid)."""
    plain = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in hparams.items()}
    writer.add_hparams(plain, {f"hp/{k}": float(v) for k, v in metrics.items() if v is not None}, run_name=run_name)
