"""Run tables as pandas DataFrames, for notebooks that compare runs.

Every experiment writes its tables as CSV files into its run directory
(`results.csv`, and e.g. `fit.csv`, `timings.csv`, `gradient_norms.csv`);
a Hydra multirun puts one such directory per job under numbered folders.
`load` reads one table of either into one frame, with each job's overrides
and seed as columns, so nobody has to parse folder names.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import yaml

#: Columns added to every row of a multirun: the job's folder number and its seed.
JOB, SEED = "job", "seed"


def load(path: str | Path, table: str = "results") -> Any:
    """The table `<table>.csv` of a run directory, or of every job of a Hydra
    multirun directory merged, as a pandas DataFrame.

    For a multirun, each row also carries `job` (the job's folder number),
    one column per override of that job (`sharing=2` gives a column
    `sharing`; values typed as YAML reads them, lists kept as their text)
    and the job's `seed` (from its config, overridden or not). A table
    column of the same name as an override wins (the table is what the run
    wrote). A job that has not written the table yet (an interrupted
    sweep) is skipped with a warning naming it.

        from qtrain.results import load
        frame = load("logs/lr_grid/multirun/2026-12-04_10-00-00")
        frame.groupby(["optimizer", "lr"]).success_rate.mean()
    """
    pd = _pandas()
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"no run directory at {str(root)!r}")
    jobs = sorted((p for p in root.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    if not jobs:
        if not any(root.glob("*.csv")) and not (root / ".hydra").is_dir():
            raise ValueError(f"{str(root)!r} is neither a run directory (CSV tables, .hydra/) nor a Hydra multirun directory (numbered job folders)")
        return pd.read_csv(_table_file(root, table, [root]))
    frames = []
    for job in jobs:
        file = job / f"{table}.csv"
        if not file.is_file():
            continue
        frame = pd.read_csv(file)
        for key, value in {JOB: int(job.name), **job_columns(job)}.items():
            if key not in frame.columns:
                frame[key] = value
        frames.append(frame)
    if not frames:
        _table_file(root, table, jobs)  # raises, naming the tables there are
    missing = [job.name for job in jobs if not (job / f"{table}.csv").is_file()]
    if missing:
        warnings.warn(f"{root}: job(s) {', '.join(missing)} have no {table}.csv yet (an interrupted or running sweep); skipped", RuntimeWarning, stacklevel=2)
    return pd.concat(frames, ignore_index=True)


def job_columns(job: Path) -> dict[str, Any]:
    """A job's overrides ({key: typed value}, hydra's own keys left out) and its seed."""
    columns: dict[str, Any] = {}
    overrides = job / ".hydra" / "overrides.yaml"
    items = (yaml.safe_load(overrides.read_text()) or []) if overrides.is_file() else []
    for item in items:
        key, _, text = str(item).partition("=")
        key = key.lstrip("+~")
        if not key.startswith("hydra."):
            columns[key] = _typed(text)
    config = job / ".hydra" / "config.yaml"
    if SEED not in columns and config.is_file():
        seed = (yaml.safe_load(config.read_text()) or {}).get(SEED)
        if seed is not None:
            columns[SEED] = seed
    return columns


def _typed(text: str) -> Any:
    """An override's value as YAML types it (1 -> int, 0.1 -> float, false ->
    bool); a list or mapping stays text, since a cell holds one value."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (int, float, bool, str)) else text


def _table_file(root: Path, table: str, runs: list[Path]) -> Path:
    file = root / f"{table}.csv"
    if file.is_file():
        return file
    there = sorted({p.stem for run in runs for p in run.glob("*.csv")})
    raise ValueError(f"no table {table!r} in {str(root)!r}; tables there: {', '.join(there) or 'none'}")


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as error:  # a dependency of qtrain, but an environment may lack it
        raise ImportError("qtrain.results needs pandas: pip install pandas") from error
    return pandas
