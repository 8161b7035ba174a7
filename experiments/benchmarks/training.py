"""The training workload, timed whole and in parts (never a timed unit test).

    python -m experiments.benchmarks.training                  # 7 lrs x 1000 starts x 500 steps
    python -m experiments.benchmarks.training --starts 200 --steps 100
    python -m experiments.benchmarks.training --device cuda --starts 100000

Workload: Adam at 7 learning rates x B starts x T steps on the default
3-qubit, 3-parameter circuit at sharing 4, infidelity cost, complex64. Timed
in one process, one after another:

  qtrain        `train_lr_grid` as users run it: Lightning, TensorBoard scalars every step (--log-every)
  no-lightning  the same module's steps in a plain loop (engine + optimizer only)
  plain-loop    a plain batched torch autograd loop: einsum gates, torch.optim.Adam with 7 groups
  one-start     the engine on one start alone, T steps, times the number of runs (extrapolated)

and the ratios printed: qtrain / no-lightning is what Lightning and the
logging add; plain-loop / qtrain is qtrain's speed-up over the plain loop.
The table also lands in logs/benchmarks/training.csv.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from experiments.benchmarks.harness import synchronize
from experiments.benchmarks.plain_torch import plain_state
from qtrain import _tables as tables
from qtrain.builders import random_target_state, shared_ansatz
from qtrain.training import train_lr_grid
from qtrain.training._module import MultiStartModule

LRS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def starts_of(count: int, d: int, seed: int = 0) -> torch.Tensor:
    return (2 * torch.rand(count, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) - 1) * torch.pi


def time_qtrain(circuit, target, starts, steps, log_dir, log_every: int = 1, device: str = "cpu") -> float:
    synchronize()
    start = time.perf_counter()
    train_lr_grid(circuit, target, "adam", LRS, starts, steps, log_dir=log_dir, log_every=log_every, resolution=3, device=device)  # R = 3: the landscape's cost is not what is timed
    synchronize()
    return time.perf_counter() - start


def time_without_lightning(circuit, target, starts, steps, device: str = "cpu") -> float:
    module = MultiStartModule(circuit, target, starts_of(starts, circuit.n_params).float().to(device), LRS, "adam", {}, torch.complex64)
    optimizer = module.configure_optimizers()
    synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        values, grads = module.costs_and_grads()
        optimizer.zero_grad()
        for theta, grad in zip(module.thetas, grads):
            theta.grad = grad
        optimizer.step()
        module.history.append(values.cpu())
    synchronize()
    return time.perf_counter() - start


def time_plain_loop(circuit, target, starts, steps, device: str = "cpu") -> float:
    thetas = [starts_of(starts, circuit.n_params).float().to(device).requires_grad_(True) for _ in LRS]
    optimizer = torch.optim.Adam([{"params": [t], "lr": lr} for t, lr in zip(thetas, LRS)])
    target = target.to(torch.complex64).to(device)
    synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        states = plain_state(circuit, torch.cat(thetas))
        cost = 1 - (states @ target.conj()).abs() ** 2
        cost.sum().backward()
        optimizer.step()
    synchronize()
    return time.perf_counter() - start


def time_one_start(circuit, target, steps, runs, device: str = "cpu") -> float:
    theta = starts_of(1, circuit.n_params).float().to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([theta], lr=0.01)
    synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        _, grad = circuit.value_and_grad(theta.detach(), target)
        theta.grad = grad
        optimizer.step()
    synchronize()
    return (time.perf_counter() - start) * runs


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--log-every", type=int, default=1, help="TensorBoard scalars every this many steps")
    parser.add_argument("--csv", default="logs/benchmarks/training.csv")
    parser.add_argument("--device", default="cpu", help="where every method runs, e.g. cuda (the check of the plain loop runs on the CPU)")
    args = parser.parse_args(argv)
    circuit, target = shared_ansatz(3, 3, 4, seed=0), random_target_state(3, 0)
    check = starts_of(16, circuit.n_params).float()
    error = (plain_state(circuit, check) - circuit.state(check)).abs().max().item()
    if error > 1e-5:  # the plain loop must simulate the same circuit before its time means anything
        raise SystemExit(f"the plain loop's states differ from qtrain's by {error:.2e}")
    with tempfile.TemporaryDirectory() as tmp:
        times = {
            "qtrain": time_qtrain(circuit, target, args.starts, args.steps, Path(tmp), args.log_every, args.device),
            "no-lightning": time_without_lightning(circuit, target, args.starts, args.steps, args.device),
            "plain-loop": time_plain_loop(circuit, target, args.starts, args.steps, args.device),
            "one-start": time_one_start(circuit, target, args.steps, len(LRS) * args.starts, args.device),
        }
    rows = [{"method": name, "seconds": round(s, 3), "ms_per_step": round(1e3 * s / args.steps, 3), "x_qtrain": round(s / times["qtrain"], 3)} for name, s in times.items()]
    tables.write_rows(Path(args.csv), rows, list(rows[0]))
    print(f"Adam, {len(LRS)} lrs x {args.starts} starts x {args.steps} steps, default circuit at sharing 4, complex64, "
          f"{torch.get_num_threads()} threads, device {args.device}, scalars every {args.log_every} steps")
    print(f"{'method':<14}{'seconds':>10}{'ms/step':>10}{'x qtrain':>10}")
    for r in rows:
        print(f"{r['method']:<14}{r['seconds']:>10.2f}{r['ms_per_step']:>10.2f}{r['x_qtrain']:>10.2f}")
    print(f"Lightning and logging add {100 * (times['qtrain'] / times['no-lightning'] - 1):.0f}% to the engine's steps; "
          f"qtrain is {times['plain-loop'] / times['qtrain']:.2f}x the plain loop's speed")
    return rows


if __name__ == "__main__":
    main()
