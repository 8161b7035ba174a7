"""Data parallel runs (qtrain.parallel on Lightning Fabric): two CPU processes
over gloo give exactly the one-process numbers for the barren-plateau sampler,
the landscape and the multi-start trainer, from the library and from the
command line, each into one run directory."""

import csv
import faulthandler
import logging
import math
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader, TensorDataset

from qtrain.builders import random_target_state, shared_ansatz
from qtrain.diagnostics import gradient_variance
from qtrain.engine.observables import PauliSum
from qtrain.landscape import sample_landscape
from qtrain.parallel import Ranks, check_trainer, run_on_ranks, share_of, world_size
from qtrain._plateau import mcclean_gradients
from qtrain.training import train_lr_grid
from qtrain.training._hybrid import Classifier, LeaveProcessGroup, digits
from qtrain.training._run import quiet

ZZ = PauliSum.parse("Z0 Z1")
CIRCUIT = shared_ansatz(3, 3, 2, seed=0)
TARGET = random_target_state(3, seed=0)
C128 = torch.complex128
BP = {"n_qubits": 4, "layers": [1, 3, 6], "n_samples": 11, "seed": 5}  # 11 samples: shares of 6 and 5
#: Items in a gathered payload that rank 0 hands back: 80 kB pickled, more than a pipe holds (64 KiB)
PAYLOAD = 10_000
TRAIN = {"optimizer": "adam", "lrs": [0.05, 0.3], "starts": 9, "seed": 2, "dtype": C128, "checkpoint_every": 3}


def sampler(ranks: Ranks) -> dict[int, torch.Tensor]:
    parts = mcclean_gradients(BP["n_qubits"], BP["layers"], BP["n_samples"], BP["seed"], ZZ, dtype=C128, device=ranks.device, share=ranks.share(BP["n_samples"]))
    return {L: ranks.gather(part) for L, part in parts}


def two_rank_work(ranks: Ranks, checkpoints: Path) -> dict:
    """Everything the two-process test compares, in one launch (a launch costs seconds)."""
    landscape = sample_landscape(CIRCUIT, TARGET, 7, "direct", chunk_size=40, ranks=ranks)  # 343 points: shares of 172 and 171
    train_lr_grid(CIRCUIT, TARGET, steps=6, checkpoint_dir=checkpoints, ranks=ranks, **TRAIN)  # stopped after 6 steps ...
    said = Said()
    logging.getLogger("qtrain.training._run").addHandler(said)
    logging.getLogger("qtrain.training._run").setLevel(logging.INFO)
    resumed = train_lr_grid(CIRCUIT, TARGET, steps=12, checkpoint_dir=checkpoints, ranks=ranks, **TRAIN)  # ... and resumed to 12
    share = ranks.share(TRAIN["starts"])
    variance = gradient_variance(CIRCUIT, "Z0 Z1", samples=11, parameter=None, seed=4, dtype=C128, ranks=ranks)
    result = {"rank": ranks.rank, "world": ranks.world_size, "sampler": sampler(ranks), "landscape": landscape, "trained": resumed, "variance": variance,
              "shares": ranks.gather_objects((share.start, share.stop)),
              "payload": ranks.gather(torch.arange(PAYLOAD).chunk(2)[ranks.rank])}
    lag_helper_threads()  # as on a busy machine: gloo's workers trail the main thread out of the last collective
    result["resumed_from"] = ranks.gather_objects(said.messages)
    return result


def lag_helper_threads() -> None:
    """Give this process's threads other than the main one (gloo's workers among
    them) only the time the main thread leaves on its core (SCHED_IDLE), so that
    the main thread leaves the next collective and reaches interpreter shutdown
    before a worker lets go of the finished work: what a busy machine does now and
    then, every time. A rank that leaves its process group to shutdown then dies
    with SIGABRT ("terminate called without an active exception"); found with
    3 of 4 two-rank launches dying this way before run_on_ranks left the group.
    Linux only (elsewhere the ranks run as scheduled)."""
    if not hasattr(os, "SCHED_IDLE"):
        return
    main, core = threading.get_native_id(), {min(os.sched_getaffinity(0))}
    for thread in map(int, os.listdir("/proc/self/task")):
        try:
            os.sched_setaffinity(thread, core)
            if thread != main:
                os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))
        except ProcessLookupError:  # a thread that ended meanwhile
            continue


class Said(logging.Handler):
    """What a rank logged."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> tuple[dict, Path]:
    checkpoints = tmp_path_factory.mktemp("shards")
    # a launch that hangs (rank 0 blocked on a full pipe, say) ends the session with every thread's stack, not never
    faulthandler.dump_traceback_later(600, exit=True)
    try:
        return run_on_ranks(two_rank_work, checkpoints, devices=2), checkpoints
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.mark.parametrize("n,world", [(11, 2), (2, 2), (7, 3), (100, 8), (3, 5)])
def test_shares_are_contiguous_disjoint_and_cover_everything(n, world):
    shares = [share_of(n, r, world) for r in range(world)]
    assert [i for s in shares for i in range(n)[s]] == list(range(n))
    sizes = [s.stop - s.start for s in shares]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_one_rank_is_the_plain_call_without_lightning():
    ranks = Ranks()
    x = torch.arange(5.0)
    assert ranks.is_main and ranks.share(5) == slice(0, 5) and ranks.gather(x) is x and ranks.gather_objects("a") == ["a"] and ranks.broadcast(3) == 3
    assert run_on_ranks(lambda r, y: (r.world_size, y), 7) == (1, 7)


def test_trainer_configs_are_checked_before_any_launch():
    assert world_size({"devices": 2, "num_nodes": 3}) == 6 and world_size(None) == 1
    with pytest.raises(ValueError, match="trainer.devices: must be an integer >= 1, got 0"):
        world_size({"devices": 0})
    with pytest.raises(ValueError, match="trainer.num_nodes"):
        world_size({"devices": 1, "num_nodes": "two"})
    with pytest.raises(ValueError, match="device: cuda:1 names one GPU"):
        check_trainer({"devices": 2}, torch.device("cuda:1"))


def test_two_processes_give_the_one_process_sampler(two_ranks):
    result, _ = two_ranks
    assert result["rank"] == 0 and result["world"] == 2  # the parent got rank 0's result of a real two-rank run
    alone = sampler(Ranks())
    assert sorted(result["sampler"]) == BP["layers"]
    for L, grads in alone.items():
        assert grads.shape == (BP["n_samples"],)
        torch.testing.assert_close(result["sampler"][L], grads, atol=1e-12, rtol=0)


def test_rank_zero_hands_back_a_result_larger_than_a_pipe_holds(two_ranks):
    result, _ = two_ranks
    assert len(pickle.dumps(result["payload"])) > 64 * 1024
    assert torch.equal(result["payload"], torch.arange(PAYLOAD))


def test_two_processes_give_the_one_process_gradient_variance(two_ranks):
    result, _ = two_ranks
    alone = gradient_variance(CIRCUIT, "Z0 Z1", samples=11, parameter=None, seed=4, dtype=C128)
    assert result["variance"].gradients.shape == alone.gradients.shape == (11, CIRCUIT.n_params)
    torch.testing.assert_close(result["variance"].gradients, alone.gradients, atol=1e-12, rtol=0)
    torch.testing.assert_close(result["variance"].var, alone.var, atol=1e-12, rtol=0)


def test_two_processes_give_the_one_process_direct_landscape(two_ranks):
    result, _ = two_ranks
    alone = sample_landscape(CIRCUIT, TARGET, 7, "direct", chunk_size=40)
    torch.testing.assert_close(result["landscape"].values, alone.values, atol=1e-12, rtol=0)
    torch.testing.assert_close(result["landscape"].grads, alone.grads, atol=1e-12, rtol=0)


def test_two_processes_train_their_own_shards_and_resume_them_to_the_one_process_numbers(two_ranks):
    result, checkpoints = two_ranks
    assert result["shares"] == [(0, 5), (5, 9)]
    alone = train_lr_grid(CIRCUIT, TARGET, steps=12, **{k: v for k, v in TRAIN.items() if k != "checkpoint_every"})
    trained = result["trained"]
    assert trained.cost_history.shape == alone.cost_history.shape == (13, 2, TRAIN["starts"])
    torch.testing.assert_close(trained.cost_history, alone.cost_history, atol=1e-12, rtol=0)
    torch.testing.assert_close(trained.trajectories, alone.trajectories, atol=1e-12, rtol=0)
    assert torch.equal(trained.success_rate, alone.success_rate) and trained.global_min == pytest.approx(alone.global_min, abs=1e-12)
    # each rank checkpointed its own starts (not replicas of rank 0's), and the resume continued from step 6
    shards = [torch.load(checkpoints / f"rank{r}-of-2" / "last.ckpt", weights_only=False) for r in range(2)]
    thetas = [shard["state_dict"]["thetas.0"] for shard in shards]
    assert [t.shape[0] for t in thetas] == [5, 4]
    assert not torch.equal(thetas[0][:4], thetas[1])
    assert [shard["epoch"] for shard in shards] == [11, 11] and [shard["cost_history"].shape[0] for shard in shards] == [12, 12]
    for r, said in enumerate(result["resumed_from"]):  # the second call resumed each rank from its own shard's step 6
        assert len(said) == 1 and said[0].startswith(f"resuming from {checkpoints / f'rank{r}-of-2'}/") and said[0].endswith(".ckpt")


def _cli(tmp: Path, name: str, *overrides: str) -> Path:
    run_dir = tmp / name
    subprocess.run([sys.executable, "-m", "qtrain.cli", *overrides, "progress=false", f"hydra.run.dir={run_dir}"], check=True, capture_output=True, timeout=300)
    return run_dir


def _table(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def assert_same_table(got: Path, want: Path) -> None:
    """The same rows and columns; numbers equal to 1e-12 (relative, or absolute
    near 0): a rank runs on fewer threads, which may sum in another order."""
    rows, expected = _table(got), _table(want)
    assert expected and len(rows) == len(expected)
    for row, exp in zip(rows, expected):
        assert row.keys() == exp.keys()
        for key, value in exp.items():
            if row[key] != value:
                assert math.isclose(float(row[key]), float(value), rel_tol=1e-12, abs_tol=1e-12), (key, row[key], value)


EXPERIMENTS = {
    "barren_plateau": (["qubits=[2,4]", "layers=[1,4]", "samples=9", "dtype=complex128"], ["results.csv"]),
    "deceptiveness": (["sharing=[1,2,3]", "resolution=[8]", "tol=[1e-3]"], ["results.csv", "gradient_norms.csv"]),
    "lr_grid": (["optimizers=[adam]", "sharing=[2]", "lrs=[0.05,0.3]", "starts=7", "steps=8", "trainer.checkpoint_every=4", "dtype=complex128"], ["results.csv"]),
}


@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
def test_trainer_ddp_at_the_command_line_writes_the_one_process_tables_into_one_directory(tmp_path, experiment):
    overrides, tables = EXPERIMENTS[experiment]
    one = _cli(tmp_path, "one", f"experiment={experiment}", *overrides)
    two = _cli(tmp_path, "two", f"experiment={experiment}", *overrides, "trainer=ddp", "trainer.devices=2")
    for table in tables:
        assert_same_table(two / table, one / table)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # no directory per rank
    assert not any(p.name.startswith("train_ddp_process") for p in two.iterdir())
    log = (two / "cli.log").read_text()
    assert "[rank 0]" in log and "[rank 1]" not in log  # rank 0 alone writes the run's log
    if experiment == "lr_grid":
        assert sorted(p.name for p in (two / "checkpoints" / "adam_k2").iterdir()) == ["rank0-of-2", "rank1-of-2"]


@pytest.mark.slow  # about 45 s on 2 cores: the default run stays under 10 minutes (`pytest -m slow` runs it)
def test_an_interrupted_two_rank_run_keeps_what_it_finished_and_resumes_to_the_one_process_numbers(tmp_path):
    overrides = ["experiment=barren_plateau", "qubits=[2,4,6,8,10,12,14]", "layers=1:40", "samples=40", "dtype=complex128", "progress=false"]
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "qtrain.cli", *overrides, "trainer=ddp", f"hydra.run.dir={killed}"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (killed / "results.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group: the parent and both ranks
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "rerun the same command to resume" in err
    finished = len(_table(killed / "results.csv"))
    assert 0 < finished < 7 * 40
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    one = _cli(tmp_path, "one", *overrides)
    assert_same_table(killed / "results.csv", one / "results.csv")


def test_processes_started_by_torchrun_join_one_run(tmp_path):
    """The multi-node path (the README's torchrun command, on one node): the
    processes exist before qtrain runs, and each joins the group instead of spawning."""
    overrides = ["experiment=barren_plateau", *EXPERIMENTS["barren_plateau"][0]]
    one = _cli(tmp_path, "one", *overrides)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run_dir = tmp_path / "torchrun"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--node-rank", "0", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                "--master-port", str(port), "-m", "qtrain.cli"]
    subprocess.run([*torchrun, *overrides, "trainer=ddp", "trainer.devices=2", "progress=false", f"hydra.run.dir={run_dir}"], check=True, capture_output=True, timeout=300)
    assert_same_table(run_dir / "results.csv", one / "results.csv")
    wrong = subprocess.run([*torchrun, *overrides, "progress=false", f"hydra.run.dir={tmp_path / 'wrong'}"], capture_output=True, text=True, timeout=300)
    assert wrong.returncode != 0 and "1 rank, but the launcher (torchrun) started 2 processes" in wrong.stderr


@pytest.mark.slow  # about 40 s on 2 cores: the default run stays under its 10 minutes
def test_tasks_started_by_slurm_join_one_run_and_a_one_task_allocation_spawns_its_ranks(tmp_path):
    """SLURM's srun (and the submitit launcher with tasks_per_node) start a
    process per rank with these variables; the same variables for one task
    (qtrain run inside sbatch) mean: spawn the ranks here."""
    overrides = ["experiment=barren_plateau", *EXPERIMENTS["barren_plateau"][0], "trainer=ddp", "progress=false"]
    one = _cli(tmp_path, "one", *[w for w in overrides if w != "trainer=ddp"])
    job = {"SLURM_NODELIST": "localhost", "SLURM_NODEID": "0", "SLURM_JOB_NAME": "qtrain", "SLURM_JOB_ID": str(40000 + os.getpid() % 9000)}
    tasks = [{**os.environ, **job, "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2", "SLURM_PROCID": str(r), "SLURM_LOCALID": str(r)} for r in range(2)]
    command = [sys.executable, "-m", "qtrain.cli", *overrides, f"hydra.run.dir={tmp_path / 'srun'}"]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for env in tasks]
    for process in processes:
        assert process.wait(timeout=300) == 0, process.stderr.read()
    assert_same_table(tmp_path / "srun" / "results.csv", one / "results.csv")
    alone = {**os.environ, **job, "SLURM_NTASKS": "1", "SLURM_PROCID": "0", "SLURM_LOCALID": "0"}
    subprocess.run([sys.executable, "-m", "qtrain.cli", *overrides, f"hydra.run.dir={tmp_path / 'sbatch'}"], env=alone, check=True, capture_output=True, timeout=300)
    assert_same_table(tmp_path / "sbatch" / "results.csv", one / "results.csv")
    assert "on 2 ranks" in (tmp_path / "sbatch" / "cli.log").read_text()


@pytest.mark.slow  # about 45 s on 2 cores: the default run stays under 10 minutes (`pytest -m slow` runs it)
def test_the_hybrid_model_trains_replicated_on_two_ranks_into_one_directory_and_same_seed_gives_same_numbers(tmp_path):
    """A truly replicated model: Lightning's DDP (one copy per rank, gradients
    averaged), unlike the independent starts above; tested on one device."""
    overrides = ["experiment=hybrid_digits", "epochs=1", "qubits=2", "layers=1", "monitor_samples=4", "batch_size=64", "seed=0",
                 "trainer=ddp"]
    first, second = _cli(tmp_path, "first", *overrides), _cli(tmp_path, "second", *overrides)
    rows = _table(first / "results.csv")
    assert [r["model"] for r in rows] == ["hybrid", "classical"] and rows == _table(second / "results.csv")
    assert all(0 <= float(r["test_accuracy"]) <= 1 for r in rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first", "second"] and sorted(p.name for p in (first / "tb").iterdir()) == ["classical", "hybrid"]
    # two ranks trained: each took half of the training split (DistributedSampler), so an epoch had half the
    # optimizer steps of one process, and the gradient monitor logged one grad_norm per step
    per_rank = math.ceil(len(digits(0)["train"]) / 2)
    steps = set()
    for events in (first / "tb" / "hybrid").glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        steps |= {e.step for tag in accumulator.Tags()["scalars"] if tag.endswith("/grad_norm") for e in accumulator.Scalars(tag)}
    assert steps == set(range(math.ceil(per_rank / 64))), sorted(steps)


class LagFromValidation(pl.Callback):
    """`lag_helper_threads` in each rank from the (last) validation on: its collectives and exit lag."""

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        lag_helper_threads()


def test_lightning_spawned_ranks_leave_their_group_and_exit_cleanly():
    """hybrid_digits' ranks (Lightning's ddp_spawn, gloo) destroy their process group at the end
    of fit (LeaveProcessGroup). Without it, 6 of 9 such launches lost a rank to SIGABRT at exit."""
    data = TensorDataset(torch.randn(32, 4, generator=torch.Generator().manual_seed(0)), torch.arange(32) % 3)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[LagFromValidation(), LeaveProcessGroup()])
    with quiet():
        trainer.fit(Classifier(torch.nn.Linear(4, 3), 0.1), DataLoader(data, batch_size=8), DataLoader(data, batch_size=8))
    assert trainer.world_size == 2 and trainer.state.finished and math.isfinite(trainer.callback_metrics["val/loss"].item())


def test_an_experiment_that_runs_in_one_process_refuses_ranks_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "qtrain.cli", "experiment=demo", "trainer=ddp", f"hydra.run.dir={tmp_path}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "qtrain: error: trainer.devices x trainer.num_nodes: the demo experiment runs in one process, got 2 ranks; "
        "the experiments on several ranks are barren_plateau, lr_grid, deceptiveness and hybrid_digits"
    ]


def test_landscape_groups_are_dealt_so_that_every_rank_has_about_the_same_work():
    from qtrain._tasks.deceptiveness import _deal

    groups = [(k, R) for k in (1, 2, 3, 4) for R in (90, 180)]
    dealt = _deal(groups, 2, 3)
    assert sorted(g for share in dealt for g in share) == sorted(groups)
    assert [sorted(R for _, R in share) for share in dealt] == [[90, 90, 180, 180]] * 2
    assert _deal(groups, 1, 3)[0][:4] == [(1, 180), (2, 180), (3, 180), (4, 180)] and _deal([], 3, 3) == [[], [], []]
