"""What the resumable samplers (barren_plateau, deceptiveness) share.

Both keep their finished points in CSV tables of the run directory, rewritten
atomically after every point, so that a rerun of the same command skips what
is done and Ctrl-C loses only the point in progress. Rank 0 alone reads the
tables, writes them and holds the TensorBoard writer; the other ranks only
compute.

    rows, = stored_rows(ranks, out_dir, _typed, "results.csv")
    with rank0_writer(ranks, out_dir, log, lambda: f"{len(rows)} points are in ...") as writer:
        ...  # writer is None off rank 0
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from qtrain import parallel, _tables as tables

__all__ = ["rank0_writer", "stored_rows"]


def stored_rows(ranks: parallel.Ranks, out_dir: Path, typed: Callable[[dict[str, str]], dict[str, Any]], *names: str) -> list[list[dict[str, Any]]]:
    """The rows a previous run left in each table `names` of `out_dir` (none
    for a table not written yet), each row passed through `typed` (the CSV
    holds strings); rank 0 reads them and every rank gets the same lists, so
    that all ranks skip the same finished points."""
    read = [[typed(row) for row in tables.read_rows(out_dir / name)] for name in names] if ranks.is_main else None
    return ranks.broadcast(read)


@contextlib.contextmanager
def rank0_writer(ranks: parallel.Ranks, out_dir: Path, log: logging.Logger, kept: Callable[[], str]) -> Iterator[Any]:
    """Rank 0's TensorBoard writer into `out_dir` (None on the other ranks),
    opened on entry, that is when the work really starts, and closed on exit.

    On Ctrl-C rank 0 logs to `log` (the experiment's own logger, so the line
    names it) "interrupted: <kept()>; rerun the same command to resume" before
    the KeyboardInterrupt goes on; `kept` is called only then, so it can count
    the rows finished by that time."""
    writer = None
    if ranks.is_main:
        from qtrain._tb import open_writer  # TensorBoard only when a run really starts

        writer = open_writer(out_dir)
    try:
        yield writer
    except KeyboardInterrupt:
        if writer is not None:  # rank 0's alone: one line, not one per rank
            log.warning("interrupted: %s; rerun the same command to resume", kept())
        raise
    finally:
        if writer is not None:
            writer.close()
