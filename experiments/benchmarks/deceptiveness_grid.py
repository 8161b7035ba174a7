"""Time and peak memory of the full deceptiveness analysis on the d = 3,
R = 360 grid (46.7 million points) for each sharing degree: Fourier sampling
of cost and exact gradient, successors, pointer jumping, classification.

    python -m experiments.benchmarks.deceptiveness_grid [--resolution 360] [--sharing 1 2 3 4] [--rule gradient]

Each configuration runs in its own subprocess, so its peak resident memory is
its own. Prints a table and writes it as CSV.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from qtrain.builders import random_target_state, shared_ansatz
from qtrain.landscape import classify, sample_landscape, successors, terminals
from qtrain._tables import write_rows


def measure(sharing: int, resolution: int, rule: str) -> dict:
    circuit, target = shared_ansatz(3, 3, sharing, seed=0), random_target_state(3, 0)
    start = time.perf_counter()
    landscape = sample_landscape(circuit, target, resolution, "fourier")
    sampled = time.perf_counter()
    succ = successors(landscape.values, landscape.grads, rule)
    terminal = terminals(succ)
    result = classify(landscape.values, landscape.grads.pow(2).sum(dim=0).sqrt_(), succ, terminal, 1e-3, rule, False)
    done = time.perf_counter()
    return {
        "sharing": sharing, "resolution": resolution, "points": resolution**3, "rule": rule, "threads": torch.get_num_threads(),
        "sample_s": round(sampled - start, 2), "analysis_s": round(done - sampled, 2), "total_s": round(done - start, 2),
        "peak_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2), "ratio": result.ratio, "n_minima": result.n_minima,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=360)
    parser.add_argument("--sharing", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--rule", default="gradient")
    parser.add_argument("--csv", default="logs/benchmarks/deceptiveness_grid.csv")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(measure(args.worker, args.resolution, args.rule)))
        return
    rows = []
    print(f"{'sharing':>8}{'points':>12}{'sample s':>10}{'analysis s':>12}{'total s':>9}{'peak GiB':>10}{'ratio':>9}{'minima':>8}")
    for k in args.sharing:
        cmd = [sys.executable, "-m", "experiments.benchmarks.deceptiveness_grid", "--worker", str(k), "--resolution", str(args.resolution), "--rule", args.rule]
        row = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{k:>8}{row['points']:>12}{row['sample_s']:>10}{row['analysis_s']:>12}{row['total_s']:>9}{row['peak_gib']:>10}{row['ratio']:>9.4f}{row['n_minima']:>8}", flush=True)
    write_rows(Path(args.csv), rows, list(rows[0]))


if __name__ == "__main__":
    main()
