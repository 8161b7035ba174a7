"""Run tables as pandas DataFrames, for notebooks that compare runs.

Every experiment writes its tables as CSV files into its run directory
(`results.csv` always; barren_plateau also `fit.csv` and `timings.csv`,
deceptiveness also `gradient_norms.csv`, lr_grid with several `shots` also
`success_vs_shots.csv`); a Hydra multirun puts one such
directory per job under numbered folders. `load` reads one table of either
into one frame, with each job's overrides and seed as columns, so nobody has
to parse folder names.

pandas (and Hydra's override parser) are imported inside the functions that
use them: `import qtrain` loads only torch and numpy.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

__all__ = ["job_columns", "load"]

if TYPE_CHECKING:
    import pandas as pd

#: Columns added to every row of a multirun: the job's folder number and its seed.
JOB, SEED = "job", "seed"


def load(path: str | os.PathLike[str], table: str = "results") -> pd.DataFrame:
    """The table `<table>.csv` of one run directory, or of every job of a
    Hydra multirun directory merged, as a pandas DataFrame.

    `table` is the CSV's stem (`results`, `fit`, `timings`, `gradient_norms`;
    a trailing `.csv` is accepted). One run directory gives its table as
    written. A multirun directory (job folders 0/, 1/, ... beside
    `multirun.yaml`) gives every job's rows, each with `job` (the folder's
    number), one column per override of that job (`sharing=2` gives a column
    `sharing`, typed as Hydra typed it: int, float, bool, str or None; a list
    or mapping stays its text, e.g. "[1,2]") and `seed` (from the job's
    .hydra/config.yaml, overridden or not). A table column of the same name
    is never overwritten: the table's values are kept even where they differ
    (lr_grid's `sharing` and `shots` columns hold each row's value, the
    override the whole list; an exact row's `shots` is empty, so NaN here:
    group with `dropna=False` to keep it). A job without the table yet (an interrupted or running
    sweep) is skipped with a RuntimeWarning naming it.

        from qtrain.results import load
        frame = load("logs/lr_grid/multirun/2026-12-04_10-00-00")
        frame.groupby(["optimizer", "lr"]).success_rate.mean()
        fit = load("logs/barren_plateau/2026-12-04_10-00-00", table="fit")

    Raises FileNotFoundError for a missing path; ValueError for a path that
    is no run or multirun directory, or lacks the table (listing those there).
    """
    pd = _pandas()
    root = Path(path)
    table = table.removesuffix(".csv")
    if not root.exists():
        raise FileNotFoundError(f"no run directory at {str(root)!r}: it does not exist")
    if not root.is_dir():
        raise ValueError(f"{str(root)!r} is a file; give its run directory (or a multirun directory), and the table by name")
    jobs = _jobs(root)
    # a run made through qtrain.cli.run from Python has the CSVs but no .hydra/
    if (root / ".hydra").is_dir() or (not jobs and any(root.glob("*.csv"))):
        file = root / f"{table}.csv"
        if not file.is_file():
            raise ValueError(_no_table(root, table, [root]))
        return pd.read_csv(file)
    if not jobs:
        sweep = " (a multirun that has started no job yet)" if (root / "multirun.yaml").is_file() else ""
        raise ValueError(f"{str(root)!r} is neither a run directory (CSV tables, .hydra/) nor a Hydra multirun directory "
                         f"(job folders 0/, 1/, ...){sweep}")
    return _merge(pd, root, jobs, table)


def _merge(pandas: Any, root: Path, jobs: list[Path], table: str) -> pd.DataFrame:
    """Every job's table, its columns added, as one frame; jobs without the table skipped aloud."""
    present = [job for job in jobs if (job / f"{table}.csv").is_file()]
    if not present:
        raise ValueError(_no_table(root, table, jobs))
    missing = [job.name for job in jobs if job not in present]
    if missing:
        # an interrupted sweep is worth reading, but its gaps must not pass unnoticed
        warnings.warn(f"{root}: job(s) {', '.join(missing)} have no {table}.csv yet (an interrupted or running sweep); "
                      f"skipped", RuntimeWarning, stacklevel=3)
    frames = []
    for job in present:
        frame = pandas.read_csv(job / f"{table}.csv")
        for key, value in job_columns(job).items():
            if key not in frame.columns:  # the table is what the run wrote: it wins
                frame[key] = value
        frames.append(frame)
    return pandas.concat(frames, ignore_index=True)


def job_columns(job: Path) -> dict[str, Any]:
    """A multirun job's added columns: `job`, its overrides ({key: typed
    value}, Hydra's own keys and deletions left out) and `seed`."""
    columns: dict[str, Any] = {JOB: int(job.name) if job.name.isdigit() else job.name}
    file = job / ".hydra" / "overrides.yaml"
    for line in (yaml.safe_load(file.read_text()) or []) if file.is_file() else []:
        parsed = _override(str(line))
        if parsed is not None:
            columns[parsed[0]] = parsed[1]
    config = job / ".hydra" / "config.yaml"
    seed = (yaml.safe_load(config.read_text()) or {}).get(SEED) if config.is_file() else None
    if seed is not None:  # the config holds the seed the job ran with, overridden or default
        columns[SEED] = seed
    return columns


def _override(line: str) -> tuple[str, Any] | None:
    """(key, value) of one override line as Hydra reads it, or None for a
    deletion or a hydra.* key. Hydra's own parser, not YAML: PyYAML reads
    `layers=1:10` as the base-60 int 70, `tol=1e-3` as a string and `yes`
    as True, where the job saw "1:10", 0.001 and "yes"."""
    from hydra.errors import HydraException

    try:
        override = _parser().parse_override(line)
    except HydraException:  # a hand-edited line Hydra would refuse: keep its text
        key, _, text = line.partition("=")
        return key.lstrip("+~"), text
    key = override.key_or_group + (f"@{override.package}" if override.package else "")
    if override.is_delete() or key == "hydra" or key.startswith(("hydra.", "hydra/")):
        return None
    value = override.value()
    if value is None or isinstance(value, (bool, int, float, str)):
        return key, value
    return key, override.get_value_element_as_str()  # a list or mapping: one cell holds its text


@functools.lru_cache(maxsize=1)
def _parser() -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def _jobs(root: Path) -> list[Path]:
    """A multirun's job folders: numbered (Hydra's default subdir) or, beside
    a multirun.yaml, any holding a .hydra/ (a custom hydra.sweep.subdir; a
    folder of unrelated runs, such as logs/<task>/, is no multirun)."""
    custom = (root / "multirun.yaml").is_file()
    jobs = [p for p in root.iterdir() if p.is_dir() and (p.name.isdigit() or (custom and (p / ".hydra").is_dir()))]
    return sorted(jobs, key=lambda p: (0, int(p.name), "") if p.name.isdigit() else (1, 0, p.name))


def _no_table(root: Path, table: str, runs: list[Path]) -> str:
    there = sorted({p.stem for run in runs for p in run.glob("*.csv")})
    return f"no table {table!r} in {str(root)!r} (no {table}.csv); tables there: {', '.join(there) or 'none'}"


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as error:  # a dependency of qtrain, but a notebook's environment may lack it
        raise ImportError("qtrain.results needs pandas: pip install pandas") from error
    return pandas
