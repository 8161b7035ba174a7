"""Plain CSV tables of results, written atomically so that an interrupted run
always leaves a complete, readable file of what it finished."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qtrain.errors import UsageError

__all__ = ["check_run_settings", "read_rows", "write_rows"]


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of the CSV file at `path` as dicts of strings (no types restored); none if it does not exist yet."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, rows: Sequence[Mapping[str, Any]], fieldnames: Sequence[str]) -> None:
    """Write to a temporary file, then rename over `path` (atomic on POSIX).
    Missing parent folders are made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fieldnames))
        writer.writeheader()
        writer.writerows(rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def check_run_settings(path: Path, settings: Mapping[str, Any], notes: Mapping[str, Any] | None = None) -> None:
    """Record the settings that a run's results depend on; refuse to resume a
    directory whose recorded settings differ (its rows would mix two runs).
    `notes` are recorded for the reader but not compared (a gate list whose
    fingerprint is a setting, say)."""
    if path.is_file():
        recorded = json.loads(path.read_text())
        changed = {k: (recorded.get(k), v) for k, v in settings.items() if recorded.get(k) != v}
        if changed:
            detail = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise UsageError(f"{path.parent} holds results of a run with other settings ({detail}); use a new hydra.run.dir or the same settings to resume")
    else:  # atomic, under a name of this process's own: ranks a cluster started may all get here at once
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**settings, **(notes or {})}, indent=2, sort_keys=True))
        os.replace(tmp, path)
