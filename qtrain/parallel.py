"""Data parallelism over processes, GPUs and nodes, on Lightning Fabric.

qtrain's batched workloads are made of independent items: random circuits
(the barren-plateau sampler), random starts (the multi-start trainer),
landscape cells. `run_on_ranks` runs one function on every rank; each rank
takes a contiguous, seed-determined share of the items (`Ranks.share`),
computes it, and the parts are gathered in rank order (`Ranks.gather`), so the
union is exactly the one-process workload and the gathered numbers are the
one-process numbers. Only rank 0 writes files.

Independent starts are not replicated parameters, so nothing here averages
gradients (Lightning's DDP training strategy would broadcast rank 0's
parameters and average the gradients of different starts): Fabric supplies the
launcher, the process group and the collectives, nothing more.

    result = run_on_ranks(work, cfg, devices=2)            # work(ranks, cfg) on 2 CPU processes
    result = run_on_ranks(work, cfg, devices=4, device="cuda")  # one GPU per rank

Processes are spawned here (Fabric's `ddp_spawn`) unless a cluster has
already started one per rank (SLURM's srun, torchrun): then each of those
processes joins the group (`ddp`).
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "Ranks", "check_trainer", "launched_externally", "rank_budget", "ranks_per_device", "run_on_ranks",
    "share_of", "world_size"
]

#: The log line format of Hydra's default job logging, with the rank added.
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s][rank {rank}] - %(message)s"


@dataclass(frozen=True)
class Ranks:
    """This process's place among `world_size` ranks, and the collectives.

    `Ranks()` is the one-process world: shares are everything, gathers return
    their input; code written against `Ranks` runs unchanged in one process."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    fabric: Any = None  # lightning.fabric.Fabric when world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files, logs and shows progress."""
        return self.rank == 0

    def share(self, n_items: int) -> slice:
        """This rank's contiguous block of n_items: the first n % world ranks
        get one item more. The blocks of all ranks, in rank order, are 0..n."""
        return share_of(n_items, self.rank, self.world_size)

    def gather(self, part: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Every rank's `part` concatenated along `dim` in rank order, on every
        rank (parts may differ in size along `dim` only), on `part`'s device."""
        if self.world_size == 1:
            return part
        part = part.movedim(dim, 0)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*all_gather is deprecated.*")  # Lightning's own call into torch
            sizes = self.fabric.all_gather(torch.tensor(part.shape[0], device=self.device)).tolist()
            padded = part.new_zeros((max(sizes), *part.shape[1:]))  # all_gather needs equal shapes
            padded[: part.shape[0]] = part
            stacked = self.fabric.all_gather(padded.to(self.device)).to(part.device)  # (world, max size, ...)
        return torch.cat([stacked[r, :size] for r, size in enumerate(sizes)]).movedim(0, dim)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's picklable `obj` on every rank (what rank 0 read from disk, say)."""
        return obj if self.world_size == 1 else self.fabric.broadcast(obj, src=0)

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's picklable `obj`, in rank order, on every rank."""
        if self.world_size == 1:
            return [obj]
        return [self.fabric.broadcast(obj, src=r) for r in range(self.world_size)]

    def barrier(self) -> None:
        if self.world_size > 1:
            self.fabric.barrier()


def share_of(n_items: int, rank: int, world_size: int) -> slice:
    """The contiguous slice of `n_items` that `rank` of `world_size` works on; shares differ by at most one item,
    the first `n_items % world_size` ranks taking the extra ones."""
    base, extra = divmod(n_items, world_size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def world_size(trainer: Any) -> int:
    """Ranks a trainer config asks for: devices x num_nodes."""
    return _count(trainer, "devices") * _count(trainer, "num_nodes")


def ranks_per_device(trainer: Any, device: torch.device) -> int:
    """How many ranks share one device's memory: every local process shares
    the host's RAM; each GPU rank has a GPU of its own."""
    return 1 if device.type == "cuda" else _count(trainer, "devices")


def rank_budget(trainer: Any, device: torch.device, memory_budget: int | float | str | None) -> tuple[int, str]:
    """The memory budget of one rank: its share of the device's (`memory_budget`,
    or the default fraction of the free memory). Also the words a refusal adds to
    say so ("" for a rank alone on its device)."""
    from qtrain._memory import budget_bytes

    sharers = ranks_per_device(trainer, device)
    try:
        budget = budget_bytes(device, memory_budget) // sharers
    except ValueError as e:
        raise ValueError(f"memory_budget: {e}") from None
    return budget, f" (the share of one of {sharers} ranks on this device)" if sharers > 1 else ""


def check_trainer(trainer: Any, device: torch.device) -> int:
    """Refuse, naming the key, a trainer config the device cannot take; returns the world size."""
    size = world_size(trainer)
    started = int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun for each process it starts
    if started > 1 and started != size:
        raise ValueError(f"trainer.devices x trainer.num_nodes: {size} rank{'s' if size > 1 else ''}, but the launcher (torchrun) started {started} processes; make them equal")
    if size > 1 and device.index is not None:
        raise ValueError(f"device: {device} names one GPU, but trainer.devices x trainer.num_nodes = {size} ranks ask for several; give device=cuda (rank r uses GPU r)")
    if device.type == "cuda" and _count(trainer, "devices") > torch.cuda.device_count():
        raise ValueError(f"trainer.devices: {_count(trainer, 'devices')} GPUs asked for, this machine has {torch.cuda.device_count()}")
    return size


def _count(trainer: Any, key: str) -> int:
    value = trainer.get(key, 1) if trainer is not None else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"trainer.{key}: must be an integer >= 1, got {value!r}")
    return value


def run_on_ranks(function: Callable[..., Any], *args: Any, devices: int = 1, num_nodes: int = 1, device: torch.device | str = "cpu") -> Any:
    """function(ranks, *args) on devices x num_nodes ranks; returns rank 0's result.

    One rank runs here, in this process, without Lightning. Several: Fabric
    spawns `devices` processes on this node (gloo on the CPU, NCCL on GPUs),
    or joins the processes a cluster launcher started. Spawned processes
    log to the console, and rank 0 also to this process's log files (the
    Hydra run's), which they do not inherit."""
    device = torch.device(device)
    if devices * num_nodes == 1:
        return function(Ranks(device=device), *args)
    from lightning.fabric import Fabric
    from lightning.fabric.plugins.environments import LightningEnvironment

    accelerator = "cuda" if device.type == "cuda" else "cpu"
    if launched_externally():
        fabric = Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy="ddp")
        fabric.launch()
        if fabric.global_rank > 0:  # every rank ran Hydra and opened the run's log file: rank 0 alone writes it
            _quiet_logs()
        return _ranked(fabric, function, args, None)
    fabric = Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy="ddp_spawn", plugins=[LightningEnvironment()])
    log_files = [Path(h.baseFilename) for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    with tempfile.TemporaryDirectory(prefix="qtrain-ranks-") as handover:
        result_file = Path(handover) / "rank0.pkl"
        # Fabric calls function(fabric, *args); its annotation, Callable[[Fabric], Any], leaves out the args it passes on
        fabric.launch(_spawned, function, args, log_files, result_file)  # type: ignore[arg-type]
        return pickle.loads(result_file.read_bytes())


def _spawned(fabric: Any, function: Callable[..., Any], args: tuple, log_files: list[Path], result_file: Path) -> None:
    """One spawned rank; rank 0 hands its result back in a file, pickled by value.
    Not through Fabric's return path: its queue is a pipe that the parent drains only
    after every rank has exited, so a result over the pipe's 64 KiB blocks rank 0
    forever; and on the way Fabric would walk the result (failing on frozen
    dataclasses such as a Landscape) and torch would share its tensors by file
    descriptors that close when the rank exits."""
    result = _ranked(fabric, function, args, log_files)
    if fabric.global_rank == 0:
        result_file.write_bytes(pickle.dumps(result))


def launched_externally() -> bool:
    """Whether a cluster launcher (srun, torchrun, LSF, MPI) started this
    process as one rank of several; else the ranks are spawned here. A SLURM
    allocation of one task (qtrain run inside sbatch without srun) launches no ranks."""
    from lightning.fabric.plugins.environments import LSFEnvironment, MPIEnvironment, SLURMEnvironment, TorchElasticEnvironment

    slurm_ranks = SLURMEnvironment.detect() and int(os.environ.get("SLURM_NTASKS", "1")) > 1
    return slurm_ranks or any(env.detect() for env in (TorchElasticEnvironment, LSFEnvironment, MPIEnvironment))


def _ranked(fabric: Any, function: Callable[..., Any], args: tuple, log_files: list[Path] | None) -> Any:
    ranks = Ranks(fabric.global_rank, fabric.world_size, fabric.device, fabric)
    if log_files is not None:  # a spawned process starts without the parent's (Hydra's) logging
        _log_to(log_files if ranks.is_main else [], ranks.rank)
    if ranks.device.type == "cuda":
        torch.cuda.set_device(ranks.device)  # so that "cuda" without an index means this rank's GPU
    result = function(ranks, *args)
    _leave_group(ranks)
    return result


def _leave_group(ranks: Ranks) -> None:
    """Destroy the process group while this interpreter is fully alive, once every
    rank is past its last collective (the barrier): neither Fabric nor torch does it
    for gloo. Left to interpreter shutdown, a gloo worker thread that still holds the
    last collective's work (and so its tensors' Python objects) takes the GIL after
    finalization has begun, and the rank dies with SIGABRT ("terminate called without
    an active exception"); on a busy machine the worker is often that late.
    Only once `function` has returned: a rank that raised just exits (a barrier there
    would wait for ranks that may never come), and the launcher stops the others."""
    ranks.barrier()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()  # joins gloo's worker threads


def _quiet_logs() -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.WARNING)


def _log_to(log_files: list[Path], rank: int) -> None:
    """Rank 0: INFO to the console and the run's log files; other ranks: warnings to the console."""
    formatter = logging.Formatter(LOG_FORMAT.format(rank=rank))
    root = logging.getLogger()
    handlers: list[logging.Handler] = [logging.StreamHandler(), *(logging.FileHandler(f) for f in log_files)]
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    logging.captureWarnings(True)
