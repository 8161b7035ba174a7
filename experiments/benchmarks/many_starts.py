"""Regime 3, many starts of a tiny circuit: one value-and-gradient step for S random starts.

    python -m experiments.benchmarks.many_starts                    # S in 1000 7000
    python -m experiments.benchmarks.many_starts --starts 7000 50000 --repeats 9

Workload (the training issue's): qtrain's default circuit for the sharing
study, `shared_ansatz(3, 3, sharing=4)` (3 qubits, 3 parameters each driving
4 rotations), and its Haar-random target `random_target_state(3, 0)`, as in
training.py. S starts theta (S, 3), uniform in [-pi, pi) (fixed seed),
float32; cost: the infidelity 1 - |<target|psi(theta)>|^2 per start. Task: one
step's values (S,) and gradients (S, 3).

Libraries: qtrain `Circuit.value_and_grad(theta, target)` (adjoint, complex64;
"qtrain"); qtrain `Circuit.infidelity` with torch autograd backprop
("qtrain-backprop"); and the plain batched torch autograd loop of training.py
(`plain_torch.plain_state`: einsum gates on (S, 2, 2, 2) complex64 states;
"plain-loop").

Checked: before timing, every library's values and gradients against qtrain's
complex128 infidelity differentiated by autograd through its adjoint
(diff_method="adjoint"), to 1e-4 (absolute: both are of order one); a
library that disagrees is reported and not timed. Timing, skipping and the CSV
(logs/benchmarks/many_starts.csv) are the harness's
(experiments/benchmarks/harness.py).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from experiments.benchmarks import harness
from experiments.benchmarks.harness import Library, Results
from experiments.benchmarks.plain_torch import plain_state
from qtrain.builders import random_target_state, shared_ansatz

SEED = 0
#: shared_ansatz(N_QUBITS, N_PARAMS, SHARING): training.py's default circuit.
N_QUBITS, N_PARAMS, SHARING = 3, 3, 4


def make_workload(size: Mapping[str, int]) -> dict[str, Any]:
    circuit = shared_ansatz(N_QUBITS, N_PARAMS, SHARING, seed=0)
    gen = torch.Generator().manual_seed(SEED)
    theta = (2 * torch.rand(size["S"], circuit.n_params, generator=gen, dtype=torch.float64) - 1) * math.pi
    return {"S": size["S"], "circuit": circuit, "target": random_target_state(N_QUBITS, 0), "theta": theta}


def work(size: Mapping[str, int]) -> float:
    """Time and memory model for the budget rule: linear in the starts."""
    return float(size["S"])


def _qtrain_setup(w: dict[str, Any]) -> Any:
    device = w.get("device", "cpu")
    circuit, target, theta = w["circuit"], w["target"].to(device), w["theta"].float().to(device)

    def call() -> Results:
        values, grads = circuit.value_and_grad(theta, target)  # float32 theta: complex64
        return {"value": values, "grad": grads}

    return call


def _backprop_setup(w: dict[str, Any], dtype: torch.dtype = torch.float32, diff_method: str = "backprop") -> Any:
    device = w.get("device", "cpu")
    circuit, target = w["circuit"], w["target"].to(device)
    theta = w["theta"].to(dtype).to(device).clone().requires_grad_(True)

    def call() -> Results:
        values = circuit.infidelity(theta, target, diff_method=diff_method)
        (grad,) = torch.autograd.grad(values.sum(), theta)
        return {"value": values.detach(), "grad": grad}

    return call


def _plain_setup(w: dict[str, Any]) -> Any:
    device = w.get("device", "cpu")
    circuit, target = w["circuit"], w["target"].to(torch.complex64).to(device)
    theta = w["theta"].float().to(device).clone().requires_grad_(True)

    def call() -> Results:
        # as training.py's plain loop computes its cost
        values = 1 - (plain_state(circuit, theta) @ target.conj()).abs() ** 2
        (grad,) = torch.autograd.grad(values.sum(), theta)
        return {"value": values.detach(), "grad": grad}

    return call


def _reference_setup(w: dict[str, Any]) -> Any:
    return _backprop_setup({**w, "device": "cpu"}, torch.float64, "adjoint")  # the reference stays on the CPU


def libraries() -> list[Library]:
    return [
        Library("qtrain", "Circuit.value_and_grad(theta, target): adjoint, chunked, complex64", _qtrain_setup),
        Library("qtrain-backprop", "Circuit.infidelity (diff_method backprop, complex64) + torch.autograd.grad", _backprop_setup),
        Library("plain-loop", "plain batched torch autograd: einsum per gate on (S, 2, 2, 2) complex64 states (training.py's plain loop)", _plain_setup),
    ]


REFERENCE = Library("reference", "qtrain Circuit.infidelity, complex128, diff_method adjoint + torch.autograd.grad", _reference_setup)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, nargs="+", default=[1000, 7000])
    harness.add_arguments(parser, "logs/benchmarks/many_starts.csv", device=True)
    args = parser.parse_args(argv)
    if min(args.starts) < 1:
        raise SystemExit("need S >= 1")
    return harness.sweep(
        [{"S": s} for s in sorted(args.starts)], make_workload, REFERENCE, harness.select(libraries(), args.libraries),
        repeats=args.repeats, budget=args.budget, work=work, csv=Path(args.csv), device=args.device,
        title=f"many starts: shared_ansatz({N_QUBITS}, {N_PARAMS}, sharing {SHARING}), infidelity to a Haar-random target; one value-and-gradient step",
    )


if __name__ == "__main__":
    main()
