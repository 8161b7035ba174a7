"""qtrain.results.load on real run directories: one barren-plateau run and a
real Hydra multirun of the learning-rate grid, both made by qtrain.cli."""

import csv
import shutil
import subprocess
import sys

import pandas  # a required dependency (pyproject.toml): missing, this module fails instead of skipping
import pytest

from qtrain import results
from qtrain.results import load

CLI = [sys.executable, "-m", "qtrain.cli"]
# the smallest sizes tests/test_cli.py uses
BARREN = ["experiment=barren_plateau", "qubits=[2,3]", "layers=[1,2]", "samples=4", "progress=false"]
LR_GRID = ["experiment=lr_grid", "optimizers=[adam]", "lrs=[0.1]", "starts=4", "steps=2", "params=2", "qubits=2", "resolution=8", "progress=false"]


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One barren-plateau run: results.csv, fit.csv and timings.csv."""
    root = tmp_path_factory.mktemp("run")
    subprocess.run([*CLI, *BARREN, f"hydra.run.dir={root}"], check=True, capture_output=True, timeout=300)
    return root


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Two jobs, sharing [1] and [1,2] (a list: lr_grid's table has a `sharing` column too), seed 3."""
    root = tmp_path_factory.mktemp("sweep")
    subprocess.run([*CLI, "-m", *LR_GRID, "sharing=[1],[1,2]", "seed=3", f"hydra.sweep.dir={root}"],
                   check=True, capture_output=True, timeout=300)
    return root


@pytest.mark.parametrize("table", ["results", "fit", "timings"])
def test_one_run_is_its_table_as_written(run_dir, table):
    frame = load(run_dir, table)
    rows = _rows(run_dir / f"{table}.csv")
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame.columns) == list(rows[0]) and len(frame) == len(rows) > 0
    for column in frame.columns:
        text = [r[column] for r in rows]
        if frame[column].dtype.kind in "if":  # pandas parsed the numbers
            assert frame[column].tolist() == pytest.approx([float(v) for v in text], rel=1e-12)
        else:
            assert frame[column].tolist() == text
    assert load(str(run_dir), f"{table}.csv").equals(frame)  # a str path, and the file name, work too


def test_a_multirun_is_every_job_with_its_overrides_and_seed(sweep):
    frame = load(sweep)
    per_job = {job: _rows(sweep / str(job) / "results.csv") for job in range(2)}
    assert len(frame) == sum(map(len, per_job.values())) == 1 + 2
    assert frame["job"].tolist() == [job for job, rows in per_job.items() for _ in rows]
    by_job = frame.groupby("job").first()
    assert frame["seed"].tolist() == [3] * 3 and frame["seed"].dtype.kind == "i"
    assert by_job["experiment"].tolist() == ["lr_grid"] * 2 and by_job["starts"].tolist() == [4, 4]
    assert by_job["optimizers"].tolist() == ["[adam]"] * 2  # a list override is kept as its text
    assert frame["resolution"].dtype.kind == "i" and set(frame["resolution"]) == {8}
    assert frame["progress"].dtype == bool and not frame["progress"].any()
    assert "lrs" in frame.columns and "hydra.sweep.dir" not in frame.columns


def test_a_table_column_is_never_overwritten_by_an_override(sweep):
    frame = load(sweep)
    # job 1 ran sharing=[1,2]: its rows keep the table's per-row degree, not the list's text
    assert frame["sharing"].dtype.kind == "i"
    assert frame.loc[frame["job"] == 1, "sharing"].tolist() == [int(r["sharing"]) for r in _rows(sweep / "1" / "results.csv")] == [1, 2]
    assert frame["steps"].tolist() == [2] * len(frame)


def test_the_seed_comes_from_the_config_when_not_overridden(sweep, tmp_path):
    copy = shutil.copytree(sweep, tmp_path / "copy")
    for job in range(2):
        overrides = copy / str(job) / ".hydra" / "overrides.yaml"
        overrides.write_text("".join(line for line in overrides.read_text().splitlines(True) if "seed=" not in line))
    config = copy / "1" / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("\nseed: 3\n", "\nseed: 9\n"))  # as if job 1 had run with seed 9
    assert load(copy).groupby("job")["seed"].first().tolist() == [3, 9]


def test_override_values_are_typed_as_hydra_types_them():
    typed = results._override
    assert typed("layers=1\\:10") == ("layers", "1:10")  # PyYAML: the base-60 int 70, or the escaped text
    assert typed("tol=1e-3") == ("tol", 0.001) and typed("name=yes") == ("name", "yes")
    assert typed("optimizer.sgd.momentum=0.9") == ("optimizer.sgd.momentum", 0.9) and typed("global_min=null") == ("global_min", None)
    assert typed("+extra=[1, 2]") == ("extra", "[1,2]") and typed("lr=1") == ("lr", 1) and typed("progress=False") == ("progress", False)
    assert typed("~axes") is None and typed("hydra.job.chdir=true") is None


def test_a_bad_table_is_named_with_the_tables_there(run_dir, sweep):
    with pytest.raises(ValueError, match=r"no table 'fits' in .*run.*; tables there: fit, results, timings$"):
        load(run_dir, table="fits")
    with pytest.raises(ValueError, match=r"no table 'fit' in .*sweep.*; tables there: results$"):
        load(sweep, table="fit")


def test_a_bad_path_is_named(tmp_path, run_dir):
    with pytest.raises(FileNotFoundError, match="nowhere.*does not exist"):
        load(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=f"'{tmp_path}' is neither a run directory"):
        load(tmp_path)
    (tmp_path / "multirun.yaml").write_text("{}\n")
    with pytest.raises(ValueError, match="started no job yet"):
        load(tmp_path)
    with pytest.raises(ValueError, match="results.csv' is a file"):
        load(run_dir / "results.csv")


def test_a_job_without_the_table_is_skipped_with_a_warning(sweep, tmp_path):
    copy = shutil.copytree(sweep, tmp_path / "copy")
    (copy / "1" / "results.csv").unlink()
    with pytest.warns(RuntimeWarning, match=r"copy: job\(s\) 1 have no results.csv yet"):
        frame = load(copy)
    assert frame["job"].unique().tolist() == [0] and len(frame) == len(_rows(copy / "0" / "results.csv")) == 1
    (copy / "0" / "results.csv").unlink()
    with pytest.raises(ValueError, match="no table 'results'.*tables there: none"):
        load(copy)


def test_without_pandas_the_error_says_how_to_install_it(run_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` raise ImportError
    with pytest.raises(ImportError, match="pip install pandas"):
        load(run_dir)


def test_importing_qtrain_and_its_results_module_loads_no_pandas_or_hydra():
    code = "import sys, qtrain, qtrain.results\nprint(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'hydra', 'omegaconf'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
