"""qtrain.results.load on real run directories: one run, and a real Hydra multirun."""

import csv
import subprocess
import sys

import pytest

from qtrain.results import load

pytest.importorskip("pandas")

LR_GRID = ["experiment=lr_grid", "sharing=[1]", "lrs=[0.1]", "starts=4", "steps=2", "params=2", "qubits=2", "resolution=8", "progress=false"]


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def multirun(tmp_path_factory):
    """Two jobs of the learning-rate grid, swept over the optimizer, seeds 3 and 4."""
    root = tmp_path_factory.mktemp("sweep")
    command = [sys.executable, "-m", "qtrain.cli", "-m", *LR_GRID, "optimizers=[adam],[sgd]", "seed=3", f"hydra.sweep.dir={root}"]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    return root


def test_one_run_is_its_table(multirun):
    frame = load(multirun / "0")
    rows = _rows(multirun / "0" / "results.csv")
    assert list(frame.columns) == list(rows[0]) and len(frame) == len(rows)
    assert frame["success_rate"].tolist() == [float(r["success_rate"]) for r in rows]


def test_a_multirun_merges_its_jobs_with_their_overrides_and_seed(multirun):
    frame = load(multirun)
    counts = [len(_rows(multirun / job / "results.csv")) for job in ("0", "1")]
    assert len(frame) == sum(counts) and sorted(frame["job"].unique().tolist()) == [0, 1]
    by_job = frame.groupby("job")
    assert by_job["optimizers"].first().tolist() == ["[adam]", "[sgd]"]  # a list override stays text
    assert by_job["optimizer"].first().tolist() == ["adam", "sgd"]  # the table's own column
    assert frame["seed"].tolist() == [3] * len(frame) and frame["seed"].dtype.kind == "i"
    assert frame["starts"].dtype.kind == "i" and frame["steps"].tolist() == [2] * len(frame)


def test_the_seed_column_comes_from_the_config_when_not_overridden(tmp_path):
    root = tmp_path / "sweep"
    subprocess.run([sys.executable, "-m", "qtrain.cli", "-m", "experiment=demo", "steps=2,3", "samples=8", "progress=false", f"hydra.sweep.dir={root}"],
                   check=True, capture_output=True, timeout=300)
    frame = load(root)
    assert frame.groupby("job")["steps"].first().tolist() == [2, 3] and set(frame["seed"]) == {0}
    assert len(frame) == 2 + 3


def test_a_bad_table_names_the_tables_there(multirun):
    with pytest.raises(ValueError, match=r"no table 'result'.*tables there: results"):
        load(multirun, table="result")
    with pytest.raises(ValueError, match=r"no table 'fit'"):
        load(multirun / "1", table="fit")


def test_a_bad_path_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="neither a run directory"):
        load(tmp_path)


def test_a_job_without_the_table_is_skipped_with_a_warning(multirun, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(multirun, copy)
    (copy / "1" / "results.csv").unlink()
    with pytest.warns(RuntimeWarning, match=r"job\(s\) 1 have no results.csv"):
        frame = load(copy)
    assert frame["job"].unique().tolist() == [0]
