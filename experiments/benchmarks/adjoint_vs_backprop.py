"""Time and peak memory of the full gradient of a McClean circuit batch:
adjoint differentiation against plain autograd (backprop).

    python -m experiments.benchmarks.adjoint_vs_backprop --qubits 12 --layers 50 --samples 64

Each method runs in its own subprocess so that its peak resident memory
(ru_maxrss, above the baseline after building the circuit) is its own.
Prints a table and writes it as CSV.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from qtrain.builders import mcclean_angles, mcclean_circuit
from qtrain._tables import write_rows


def measure(method: str, qubits: int, layers: int, samples: int, repeats: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    circuit = mcclean_circuit(qubits, layers, samples, seed=1)
    theta = mcclean_angles(qubits, layers, samples, seed=1)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    times, grad = [], None
    for _ in range(repeats + 1):  # the first run is the warm-up
        t = theta.clone().requires_grad_(True)
        start = time.perf_counter()
        circuit.expval(t, "Z0 Z1", diff_method=method).sum().backward()
        times.append(time.perf_counter() - start)
        grad = t.grad
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"method": method, "seconds": statistics.median(times[1:]), "peak_extra_mib": (peak - baseline) / 1024, "grad_checksum": float(grad.double().abs().sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qubits", type=int, default=12)
    parser.add_argument("--layers", type=int, default=50)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--csv", default="logs/benchmarks/adjoint_vs_backprop.csv")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = (args.qubits, args.layers, args.samples, args.repeats, args.threads)
    if args.worker:
        print(json.dumps(measure(args.worker, *sizes)))
        return
    rows = []
    for method in ("adjoint", "backprop"):
        cmd = [sys.executable, "-m", "experiments.benchmarks.adjoint_vs_backprop", "--worker", method]
        cmd += ["--qubits", str(args.qubits), "--layers", str(args.layers), "--samples", str(args.samples), "--repeats", str(args.repeats), "--threads", str(args.threads)]
        rows.append(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]))
    state_mib = args.samples * 2**args.qubits * 8 / 2**20  # one complex64 batch of states
    agree = abs(rows[0]["grad_checksum"] - rows[1]["grad_checksum"]) <= 1e-3 * abs(rows[1]["grad_checksum"])
    print(f"McClean n={args.qubits} L={args.layers} S={args.samples}, complex64, {args.threads} threads; one batch of states = {state_mib:.1f} MiB; gradients agree: {agree}")
    print(f"{'method':<10}{'seconds':>10}{'peak MiB':>12}{'peak/states':>13}")
    for r in rows:
        r["states_mib"] = state_mib
        print(f"{r['method']:<10}{r['seconds']:>10.3f}{r['peak_extra_mib']:>12.1f}{r['peak_extra_mib'] / state_mib:>13.1f}")
    print(f"backprop/adjoint time ratio: {rows[1]['seconds'] / rows[0]['seconds']:.2f}")
    write_rows(Path(args.csv), rows, list(rows[0]))


if __name__ == "__main__":
    main()
