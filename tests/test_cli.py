"""Compose every experiment config and smoke-run it with tiny sizes."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from qtrain import cli

EXPERIMENTS = sorted(p.stem for p in (Path(cli.config_dir()) / "experiment").glob("*.yaml"))
TINY = {
    "demo": ["steps=3", "samples=8"],
    "barren_plateau": ["qubits=[2,3]", "layers=[1,2]", "samples=6"],
    "deceptiveness": ["sharing=[1,2]", "resolution=[6,8]", "params=2", "qubits=2"],
}


def rows_of(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def compose_experiment(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=cli.config_dir(), version_base=None):
        return compose(config_name="config", overrides=[f"experiment={name}", "progress=false", *overrides])


def test_every_experiment_has_a_task_and_tiny_overrides():
    assert set(EXPERIMENTS) == set(cli.TASKS) == set(TINY)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_smoke(name, tmp_path):
    cfg = compose_experiment(name, TINY[name])
    cli.run(cfg, tmp_path)
    with open(tmp_path / "results.csv") as f:
        assert len(list(csv.DictReader(f))) > 0


def test_demo_is_reproducible(tmp_path):
    cfg = compose_experiment("demo", ["steps=5", "samples=16"])
    assert cli.run(cfg, tmp_path / "a") == cli.run(cfg, tmp_path / "b")


def test_demo_rejects_bad_key(tmp_path):
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        cli.run(compose_experiment("demo", ["steps=0"]), tmp_path)


def test_console_script_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "qtrain.cli", "experiment=demo", "steps=2", "samples=8", "progress=false", f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "results.csv").is_file() and (tmp_path / "loss.png").is_file()
