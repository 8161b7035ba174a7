"""Every bad command line ends the same way: one line `qtrain: error: <what, naming the
key>` on stderr, exit status 2, no traceback, and no work started first.

Most of the corpus runs in this process through `cli.main` (a subprocess costs about
3 s); a handful runs as `python -m qtrain.cli` to prove the real line and exit code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qtrain import cli

# Sizes that keep a command cheap should a refusal ever fail to happen.
TINY = {
    "barren_plateau": ["qubits=[2]", "layers=[1]", "samples=4"],
    "deceptiveness": ["sharing=[1]", "resolution=[6]", "params=2", "qubits=2"],
    "demo": ["steps=2", "samples=8"],
    "hybrid_digits": ["epochs=1", "qubits=2", "layers=1", "monitor_samples=4"],
    "lr_grid": ["optimizers=[adam]", "sharing=[1]", "lrs=[0.1]", "starts=4", "steps=2", "params=2", "qubits=2", "resolution=6"],
}

#: (experiment, overrides, what the line must contain: the key as typed)
BAD = [
    ("barren_plateau", ["memory_budget=inf"], "memory_budget: memory budget must be a positive, finite size, got inf"),
    ("barren_plateau", ["memory_budget=-3GB"], "memory_budget: cannot read memory size '-3GB'"),
    ("barren_plateau", ["qubitz=[2]"], "qubitz: unknown key; did you mean qubits?"),
    ("barren_plateau", ["layers=ten"], "layers: cannot read 'ten'"),
    ("barren_plateau", ["samples=abc"], "samples: Value 'abc' of type 'str' could not be converted to Integer"),
    ("barren_plateau", ["chunk_size=0"], "chunk_size: must be an integer >= 1, got 0"),
    ("barren_plateau", ["trainer.devicez=2"], "trainer.devicez: unknown key; did you mean trainer.devices"),
    ("lr_grid", ["optimizers=[sgd]", "optimizer.sgd.nesterov=true"],
     "optimizer.sgd.nesterov: SGD refuses True: Nesterov momentum requires"),
    ("lr_grid", ["optimizer.adam.betas=[1.5,0.9]"], "optimizer.adam.betas: Adam refuses [1.5, 0.9]: Invalid beta parameter"),
    ("lr_grid", ["optimizer.adam.eps=-1"], "optimizer.adam.eps: Adam refuses -1"),
    ("lr_grid", ["+optimizer.adam.lr=0.1"], "optimizer.adam.lr: the learning rates come from `lrs`"),
    ("lr_grid", ["optimizer.sgd.nesterovv=true"], "optimizer.sgd.nesterovv: unknown key; did you mean optimizer.sgd.nesterov?"),
    ("lr_grid", ["optimizer.adam._target_=no.such.Optimizer"],
     "optimizer.adam: cannot build it: Error locating target 'no.such.Optimizer'"),
    ("lr_grid", ["lrs=[0.1,0.1]"], "lrs: learning rate 0.1 is given twice"),
    ("lr_grid", ["lrs=abc"], "lrs: give numbers (a list such as [0.01, 0.1]), not the string 'abc'"),
    ("lr_grid", ["lrs=[0]"], "lrs: every learning rate is 0, so nothing would train"),
    ("lr_grid", ["optimizers=[lbfgs]"], "optimizers: unknown optimizer 'lbfgs'"),
    ("lr_grid", ["optimizers=[adam,adam]"], "optimizers: adam is given twice"),
    ("lr_grid", ["starts=0"], "starts: must be an integer >= 1, got 0"),
    ("lr_grid", ["global_min=nan"], "global_min: must be a finite number or null, got nan"),
    ("lr_grid", ["cost=global", "shots=0"], "shots: every entry must be null (exact) or an integer >= 1, got 0"),
    ("lr_grid", ["cost=global", "shots=-5"], "shots: every entry must be null (exact) or an integer >= 1, got -5"),
    ("lr_grid", ["cost=global", "shots=2.5"], "shots: every entry must be null (exact) or an integer >= 1, got 2.5"),
    ("lr_grid", ["cost=global", "shots=many"], "shots: every entry must be null (exact) or an integer >= 1, got 'many'"),
    ("lr_grid", ["cost=global", "shots=true"], "shots: every entry must be null (exact) or an integer >= 1, got True"),
    ("lr_grid", ["cost=global", "shots=[null,100,0]"], "shots: every entry must be null (exact) or an integer >= 1, got 0"),
    ("lr_grid", ["cost=global", "shots=[100,100]"], "shots: 100 is given twice"),
    ("lr_grid", ["cost=global", "shots=[]"], "shots: is empty"),
    ("lr_grid", ["shots=[null,100]"], "shots: cost=infidelity is a target state's infidelity, not a Pauli sum"),
    ("demo", ["steps=abc"], "steps: Value 'abc' of type 'str' could not be converted to Integer"),
    ("demo", ["lr=inf"], "lr: must be a finite number > 0, got inf"),
    ("demo", ["trainer=ddp"], "trainer.devices x trainer.num_nodes: the demo experiment runs in one process"),
    ("demo", ["progress=maybe"], "progress: Value 'maybe' is not a valid bool"),
    ("deceptiveness", ["tol=abc"], "tol: every entry must be a finite number, got 'abc'"),
    ("deceptiveness", ["rule=[]"], "rule: give at least one of"),
    ("deceptiveness", ["relative_tol=maybe"], "relative_tol: Value 'maybe' is not a valid bool"),
    ("hybrid_digits", ["epochs=1.5"], "epochs: Value '1.5' of type 'float' could not be converted to Integer"),
    ("hybrid_digits", ["lr=0"], "lr: must be a finite number > 0, got 0.0"),
    ("noisy_plateau", ["depolarizing=[0,1.5]"], "depolarizing: every rate must be in [0, 1], got 1.5"),
    ("noisy_plateau", ["circuit=ring"], "circuit: unknown circuit 'ring' (known: hea_ry_rz_cz_chain)"),
    ("cost_locality", ["block=rx_cnot"], "block: unknown block 'rx_cnot' (known: ry_cz)"),
    ("cost_locality", ["qubits=[4,24]"], "qubits: at most 20"),
    ("remedies", ["inits=[uniform,normal]"], "inits: unknown"),
    ("remedies", ["lrs=[0.1,2.0]", "optimizers=[rotosolve]"], "rotosolve's learning rate is the fraction of the jump"),
    ("lr_grid", ["init=gaussian", "init_width=-1"], "init_width"),
    ("lr_grid", ["+trainer.layerwise.layers=5", "+trainer.layerwise.steps_per_stage=5"], "trainer.layerwise (sharing 1): layerwise.layers=5 does not divide"),
    ("barren_plateau", ["+trainer.layerwise.layers=2", "+trainer.layerwise.steps_per_stage=5"], "trainer.layerwise: the barren_plateau experiment does not take it"),
    ("predict", ["families=[hea_line,nosuch]"], "families: unknown name 'nosuch' (known: hea_line, hea_ring, mcclean, free_fermions, qaoa)"),
    ("predict", ["qubits=[4,13]"], "qubits: at most 12"),
    ("predict", ["qubits=[6,7]"], "qubits: hea_line, hea_ring, mcclean at n = 7 can have an algebra of up to 4^7 - 1 = 16383 dimensions"),
    ("predict", ["sharing_tol=-1"], "tol"),
    ("predict", ["noise.depolarizing=0.01"], "noise: the predict experiment does not take noise"),
    ("lr_grid", ["noise.depolarizing=-0.1"], "noise.depolarizing must be in [0, 1], got -0.1"),
    ("lr_grid", ["noise.trajectories=0", "noise.bit_flip=0.1"], "noise.trajectories: must be an integer >= 1, got 0"),
    ("demo", ["noise.bit_flip={czz: 0.1}"], "noise.bit_flip names unknown gate 'czz'"),
    ("deceptiveness", ["noise.depolarizing=0.01"], "noise: the deceptiveness experiment does not take noise (its landscapes are noiseless)"),
    ("nosuch", [], "experiment=nosuch: no such config; known: barren_plateau, cost_locality, deceptiveness, demo, hybrid_digits, lr_grid, noisy_plateau, predict, remedies"),
    ("demo", ["trainer=nosuch"], "trainer=nosuch: no such config; known: ddp, default"),
    ("lr_grid", ["lrs=[0.1,"], "cannot read the override 'lrs=[0.1,'"),
    ("demo", ["~steps"], "steps: the demo experiment needs this key"),
    ("demo", ["steps=???"], "steps: needs a value"),
    ("demo", ["steps=${oops}"], "steps: Interpolation key 'oops' not found"),
    ("demo", ["hydra/launcher=nosuch"], "hydra/launcher=nosuch: no such config; known: basic, joblib, local_parallel"),
]


def command(experiment: str, overrides: list[str], run_dir) -> list[str]:
    return [f"experiment={experiment}", *TINY.get(experiment, []), *overrides, f"hydra.run.dir={run_dir}"]


def assert_no_work(run_dir) -> None:
    """Hydra may have made the run directory (.hydra/, cli.log) before the task refused;
    nothing of the task's own (results.csv, run.json, tb/, event files, checkpoints)."""
    made = {p.name for p in run_dir.iterdir()} if run_dir.exists() else set()
    assert made <= {".hydra", "cli.log"}, made


@pytest.mark.parametrize("experiment, overrides, message", BAD, ids=[" ".join([e, *o]) for e, o, _ in BAD])
def test_a_bad_command_line_is_one_line_and_exit_2_before_any_work(experiment, overrides, message, tmp_path, in_process,
                                                                   capsys):
    run_dir = tmp_path / "run"
    assert in_process(command(experiment, overrides, run_dir)) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("qtrain: error: "), err
    assert message in err, err
    assert "Traceback" not in out + err
    assert_no_work(run_dir)


def test_the_corpus_spans_every_experiment_and_twenty_bad_inputs():
    assert set(cli.TASKS) <= {e for e, _, _ in BAD} and len(BAD) >= 20


def test_a_refusal_by_plan_keeps_its_traceback_in_cli_log(tmp_path, in_process, capsys):
    assert in_process(command("barren_plateau", ["memory_budget=inf"], tmp_path)) == 2
    assert capsys.readouterr().err.count("\n") == 1
    log = (tmp_path / "cli.log").read_text()
    assert "memory_budget: memory budget must be a positive, finite size, got inf" in log and "Traceback" in log


def test_a_bad_value_in_a_sweep_is_refused_before_any_job(tmp_path, in_process, capsys):
    """Hydra composes every job of the sweep before the first runs: steps=2 does not run before steps=abc is refused."""
    code = in_process(["-m", "experiment=demo", "samples=8", "steps=2,abc", f"hydra.sweep.dir={tmp_path}"])
    assert code == 2 and capsys.readouterr().err == "qtrain: error: steps: Value 'abc' of type 'str' could not be converted to Integer\n"
    assert {p.name for p in tmp_path.iterdir()} <= {"multirun.yaml"}  # no job folder


def test_a_bad_key_under_cfg_job_is_one_line(tmp_path, in_process, capsys):
    assert in_process(["--cfg", "job", "qubitz=[2]"]) == 2
    assert capsys.readouterr().err == "qtrain: error: qubitz: unknown key; did you mean qubits?\n"


@pytest.mark.parametrize("experiment, overrides, message", [
    ("barren_plateau", ["memory_budget=inf"],
     "qtrain: error: memory_budget: memory budget must be a positive, finite size, got inf"),
    ("nosuch", [],
     "qtrain: error: experiment=nosuch: no such config; known: barren_plateau, cost_locality, deceptiveness, demo, hybrid_digits, lr_grid, noisy_plateau, predict, remedies"),
    ("lr_grid", ["optimizers=[sgd]", "optimizer.sgd.nesterov=true"],
     "qtrain: error: optimizer.sgd.nesterov: SGD refuses True: Nesterov momentum requires a momentum and zero dampening"),
    ("demo", ["steps=abc"], "qtrain: error: steps: Value 'abc' of type 'str' could not be converted to Integer"),
    ("barren_plateau", ["qubitz=[2]"], "qtrain: error: qubitz: unknown key; did you mean qubits?"),
])
def test_the_real_command_prints_one_line_and_exits_2(experiment, overrides, message, tmp_path):
    run_dir = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "qtrain.cli", *command(experiment, overrides, run_dir)],
                            capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stderr) == (2, message + "\n"), result.stdout
    assert "Traceback" not in result.stdout
    assert_no_work(run_dir)


def test_a_bug_is_not_called_bad_input(tmp_path, in_process, monkeypatch, capsys):
    """An error inside the task that is not a refusal keeps its traceback (exit status not 2)."""
    from qtrain._tasks import demo

    def broken(cfg, out_dir, planned=None):
        raise RuntimeError("a bug")

    monkeypatch.setattr(demo, "run", broken)
    monkeypatch.setattr(sys, "argv", ["qtrain", *command("demo", [], tmp_path)])
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main()
