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
    "cost_locality": ["qubits=[2,3]", "layers=[1]", "samples=6"],
    "deceptiveness": ["sharing=[1,2]", "resolution=[6,8]", "params=2", "qubits=2"],
    "hybrid_digits": ["epochs=1", "qubits=2", "layers=1", "monitor_samples=4"],
    "lr_grid": ["sharing=[1,2]", "lrs=[0.0,0.1]", "starts=6", "steps=3", "params=2", "qubits=2", "resolution=8"],
    "noisy_plateau": ["qubits=[2,3]", "layers=1:4", "samples=4", "depolarizing=[0,0.1]"],
    "predict": ["qubits=[2,3]", "layers=4", "samples=20", "expressibility_samples=20", "entangling_samples=10", "families=[hea_line,qaoa]",
                "sharing=[1,2]", "sharing_seeds=[0]", "sharing_resolution=6"],
    "remedies": ["starts=3", "steps=2", "samples=4", "lrs=[0.1]", "optimizers=[adam]", "mcclean_qubits=2", "mcclean_layers=2",
                 "variance_qubits=[2]", "variance_layers=2", "layerwise.steps_per_stage=1", "params=2", "qubits=2"],
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
    with pytest.raises(ValueError, match="steps: must be an integer >= 1, got 0"):
        cli.run(compose_experiment("demo", ["steps=0"]), tmp_path)


def test_console_script_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "qtrain.cli", "experiment=demo", "steps=2", "samples=8", "progress=false", f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "results.csv").is_file() and (tmp_path / "loss.png").is_file()


def test_bad_input_is_one_line_and_logged(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "qtrain.cli", "experiment=demo", "steps=0", f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "qtrain: error: steps: must be an integer >= 1, got 0"
    assert "Traceback" not in result.stdout + result.stderr
    assert "steps: must be an integer >= 1, got 0" in (tmp_path / "cli.log").read_text()


def test_ctrl_c_keeps_what_finished_without_a_traceback(tmp_path):
    import signal
    import time

    process = subprocess.Popen(
        [sys.executable, "-m", "qtrain.cli", "qubits=[2,4,6,8,10,12]", "layers=1:300", "samples=400", "progress=false", f"hydra.run.dir={tmp_path}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a shell's background job inherits SIGINT ignored, and Python then installs no
        # KeyboardInterrupt handler: give the run the disposition a terminal gives it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while not (tmp_path / "results.csv").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in out + err and "interrupted" in out + err
    assert len(rows_of(tmp_path / "results.csv")) > 0
    assert "interrupted by the user" in (tmp_path / "cli.log").read_text()


def test_demo_writes_tensorboard_events_and_a_labelled_figure(tmp_path):
    result = cli.run(compose_experiment("demo", ["steps=3", "samples=8"]), tmp_path)
    assert list(tmp_path.glob("events.out.tfevents.*")) and (tmp_path / "loss.png").stat().st_size > 0
    assert list(rows_of(tmp_path / "results.csv")[0]) == ["step", "loss", "train_accuracy"]
    assert 0 <= result["final_train_accuracy"] <= 1


def test_what_plan_refuses_is_a_usage_error_before_any_output(tmp_path):
    from qtrain.errors import UsageError

    with pytest.raises(UsageError, match="qubits: every entry must be >= 2, got 1"):
        cli.run(compose_experiment("barren_plateau", ["qubits=[1]"]), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert issubclass(UsageError, ValueError)  # library callers catching ValueError still do


@pytest.mark.parametrize("launcher, plugin, marker", [
    ("local_parallel", "hydra_plugins.hydra_joblib_launcher", "Joblib"),
    ("local_submitit", "hydra_plugins.hydra_submitit_launcher", "Submitit 'local' sweep"),  # the SLURM launcher's local twin
])
def test_a_local_sweep_runs_through_its_launcher(launcher, plugin, marker, tmp_path):
    """Two seeds as two jobs, each in its own process, results in the one sweep folder."""
    import importlib

    importlib.import_module(plugin)  # both launchers are qtrain dependencies: a missing one fails, it does not skip
    result = subprocess.run(
        [sys.executable, "-m", "qtrain.cli", "-m", f"hydra/launcher={launcher}", "experiment=demo", "steps=2", "samples=8", "seed=0,1",
         "progress=false", f"hydra.sweep.dir={tmp_path}"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert marker in result.stdout + result.stderr
    first, second = rows_of(tmp_path / "0" / "results.csv"), rows_of(tmp_path / "1" / "results.csv")
    assert len(first) == len(second) == 2 and first != second  # two seeds, two runs
    if launcher == "local_submitit":
        assert list((tmp_path / ".submitit").iterdir())  # submitit's own job folders


LAUNCHERS = sorted(p.stem for p in (Path(cli.config_dir()) / "hydra" / "launcher").glob("*.yaml"))


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_every_launcher_config_composes_into_a_launcher_hydra_can_build(launcher):
    """Composed with the hydra config, every key is one the launcher's own
    config schema knows (a misspelled key fails here), and its target class imports."""
    import importlib

    with initialize_config_dir(config_dir=cli.config_dir(), version_base=None):
        cfg = compose(config_name="config", overrides=["experiment=demo", f"hydra/launcher={launcher}", "hydra.sweep.dir=/tmp/sweep"], return_hydra_config=True)
    settings = cfg.hydra.launcher
    module, _, name = settings._target_.rpartition(".")
    assert isinstance(getattr(importlib.import_module(module), name), type)
    if launcher == "slurm":
        assert settings.gpus_per_node == 1 and settings.array_parallelism == 16 and settings.timeout_min == 240
        assert settings.submitit_folder == "/tmp/sweep/.submitit/%j"
        from hydra.errors import ConfigCompositionException

        with initialize_config_dir(config_dir=cli.config_dir(), version_base=None), pytest.raises(ConfigCompositionException, match="gpus_per_nod"):
            compose(config_name="config", overrides=["experiment=demo", "hydra/launcher=slurm", "hydra.launcher.gpus_per_nod=2"], return_hydra_config=True)


def test_progress_bars_show_by_default_only_on_a_terminal(tmp_path, capsys, monkeypatch):
    """`progress: null` (the default) means bars when stderr is a terminal; true/false win either way."""
    import io

    with initialize_config_dir(config_dir=cli.config_dir(), version_base=None):
        cfg = compose(config_name="config", overrides=["experiment=demo", "steps=3", "samples=8"])  # progress as configured
    assert cfg.progress is None
    cli.run(cfg, tmp_path / "redirected")  # under pytest stderr is captured, not a terminal
    assert "demo training" not in capsys.readouterr().err
    cli.run(compose_experiment("demo", ["steps=3", "samples=8", "progress=true"]), tmp_path / "asked")
    assert "demo training" in capsys.readouterr().err

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    assert cli.resolve_progress(None) is True and cli.resolve_progress(False) is False
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert cli.resolve_progress(None) is False and cli.resolve_progress(True) is True


def test_each_task_plans_once_per_command(tmp_path, monkeypatch):
    """cli.run plans once and hands the plan to the task (it had planned 2-3 times per command)."""
    import importlib

    calls = {}
    for name, module_name in cli.TASKS.items():
        module = importlib.import_module(module_name)
        original = module.plan

        def counted(cfg, _original=original, _name=name):
            calls[_name] = calls.get(_name, 0) + 1
            return _original(cfg)

        monkeypatch.setattr(module, "plan", counted)
    for name in ("demo", "barren_plateau", "deceptiveness", "lr_grid"):
        cli.run(compose_experiment(name, TINY[name]), tmp_path / name)
    assert calls == {"demo": 1, "barren_plateau": 1, "deceptiveness": 1, "lr_grid": 1}
