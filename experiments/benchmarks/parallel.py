"""Data parallel runs against one process: the same command with `trainer=ddp`
(never a timed unit test).

    python -m experiments.benchmarks.parallel                 # 2 ranks, the default workloads
    python -m experiments.benchmarks.parallel --ranks 4 --device cuda
    python -m experiments.benchmarks.parallel --only barren_plateau

Each workload runs as a `qtrain` command, once in one process and once on
N ranks (spawned processes: gloo on the CPU, NCCL on GPUs), one after the
other, wall clock from the command's start to its end (so the N-rank time
includes starting N processes). It prints both times, their ratio, and
whether the tables agree (to 1e-12: a rank may sum in another order).
On a CPU host the one-process run already uses every core through torch's
threads; N processes get cores / N threads each, so speed-ups there come
only from the work that threads do not spread. The table also lands in
logs/benchmarks/parallel.csv.
"""

from __future__ import annotations

import argparse
import csv
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qtrain import _tables as tables

#: name -> the overrides of its workload, and the tables compared
WORKLOADS = {
    "barren_plateau": (["experiment=barren_plateau"], ["results.csv"]),  # the default: n = 2..10, L = 1..100, 200 samples
    "barren_plateau_16": (["experiment=barren_plateau", "qubits=[12,14,16]", "layers=1:40", "samples=100"], ["results.csv"]),  # states of 2^16
    "deceptiveness": (["experiment=deceptiveness", "sharing=[1,2,3,4]", "resolution=[90,180]"], ["results.csv", "gradient_norms.csv"]),
    "lr_grid": (["experiment=lr_grid", "sharing=[2]", "steps=200"], ["results.csv"]),  # Adam and SGD, 7 lrs x 1000 starts
}


def timed(overrides: list[str], run_dir: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "qtrain.cli", *overrides, "progress=false", f"hydra.run.dir={run_dir}"], check=True, capture_output=True)
    return time.perf_counter() - start


def agree(a: Path, b: Path) -> bool:
    rows_a, rows_b = (list(csv.DictReader(open(p, newline=""))) for p in (a, b))
    if len(rows_a) != len(rows_b):
        return False
    for x, y in zip(rows_a, rows_b):
        for key, value in x.items():
            if value != y.get(key) and not math.isclose(float(value), float(y[key]), rel_tol=1e-12, abs_tol=1e-12):
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", choices=sorted(WORKLOADS), action="append")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or sorted(WORKLOADS):
            overrides, compared = WORKLOADS[name]
            device = [] if name == "deceptiveness" else [f"device={args.device}"]  # landscapes run on the CPU
            one = timed([*overrides, *device], Path(tmp) / f"{name}_1")
            many = timed([*overrides, *device, "trainer=ddp", f"trainer.devices={args.ranks}"], Path(tmp) / f"{name}_{args.ranks}")
            same = all(agree(Path(tmp) / f"{name}_1" / t, Path(tmp) / f"{name}_{args.ranks}" / t) for t in compared)
            rows.append({"workload": name, "device": args.device, "ranks": args.ranks, "one_process_s": round(one, 2), "ranks_s": round(many, 2),
                         "speedup": round(one / many, 2), "same_numbers": same})
            print(f"{name:16s} 1 process {one:7.1f} s   {args.ranks} ranks {many:7.1f} s   speed-up {one / many:5.2f}x   same numbers: {same}", flush=True)
    tables.write_rows(Path("logs/benchmarks/parallel.csv"), rows, list(rows[0]))


if __name__ == "__main__":
    main()
