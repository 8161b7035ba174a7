"""Which state layout a small-state path should use: one per-sample rotation on a tiny batched state, three ways.

    python -m experiments.benchmarks.small_layout                 # n = 3, 4, 6, 8; B = 7000
    python -m experiments.benchmarks.small_layout --qubits 3 --batch 7000 --repeats 5

The trainer runs thousands of starts of 3- to 8-qubit circuits, and there every gate has its own angle per start.
The engine keeps states batch-first, (B, 2, ..., 2), and applies a per-sample 2x2 matrix as a batched matrix
product (`kernels.apply_matrix`: an einsum that becomes bmm on (B, 2, 2) blocks). This script times one R_Y(theta_b)
on the middle qubit, with its cos and sin precomputed (as the engine does), in three forms:

  bmm          the engine's kernel: complex (B, 2, 2) matrices, einsum "bij,bljr->blir"
  pairs        batch-first, the amplitude pairs as strided views: (c x0 - s x1, s x0 + c x1), real c and s (B, 1, 1)
  amp-major    amplitude-major, (2, ..., 2, B): the same pair arithmetic, each operand a contiguous run of B numbers

Every form's result is checked against `bmm`'s to 1e-5 before timing. The table prints microseconds per gate and
each form's speed-up over `bmm`; it also lands in logs/benchmarks/small_layout.csv. It measures a kernel, not a
step: amp-major would need the whole run (and its adjoint) in that layout, so it is the bound a small-state path
could reach per gate, not a result.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch

from qtrain import _tables as tables

FORMS = ("bmm", "pairs", "amp-major")


def kernels(n: int, batch: int, seed: int = 0) -> tuple[dict[str, Callable[[], torch.Tensor]], dict[str, Callable[[torch.Tensor], torch.Tensor]]]:
    """The three forms of one R_Y on qubit n // 2 over a random complex64 state; and, per form, how to bring its
    result back to batch-first (B, 2^n) for the check."""
    gen = torch.Generator().manual_seed(seed)
    state = torch.randn(batch, 2**n, generator=gen, dtype=torch.complex64)
    angle = torch.rand(batch, generator=gen) * 6.283
    c, s = torch.cos(angle / 2), torch.sin(angle / 2)
    q = n // 2
    left, right = 2**q, 2 ** (n - q - 1)
    view = state.reshape(batch, left, 2, right)
    matrix = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2).to(torch.complex64)  # (B, 2, 2)
    cb, sb = c.reshape(batch, 1, 1), s.reshape(batch, 1, 1)
    major = state.T.contiguous().reshape(left, 2, right, batch)  # amplitude-major: the batch last and contiguous

    def bmm() -> torch.Tensor:
        return torch.einsum("bij,bljr->blir", matrix, view)

    def pairs() -> torch.Tensor:
        x0, x1 = view[:, :, 0], view[:, :, 1]
        return torch.stack((cb * x0 - sb * x1, sb * x0 + cb * x1), dim=2)

    def amp_major() -> torch.Tensor:
        x0, x1 = major[:, 0], major[:, 1]
        return torch.stack((c * x0 - s * x1, s * x0 + c * x1), dim=1)

    back = {"bmm": lambda out: out.reshape(batch, -1), "pairs": lambda out: out.reshape(batch, -1),
            "amp-major": lambda out: out.reshape(-1, batch).T}
    return {"bmm": bmm, "pairs": pairs, "amp-major": amp_major}, back


def time_us(f: Callable[[], torch.Tensor], repeats: int, calls: int = 200) -> float:
    """The best of `repeats` rounds of `calls` calls, microseconds per call."""
    for _ in range(10):
        f()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            f()
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    return best


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qubits", type=int, nargs="+", default=[3, 4, 6, 8])
    parser.add_argument("--batch", type=int, default=7000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--csv", default="logs/benchmarks/small_layout.csv")
    args = parser.parse_args(argv)
    rows = []
    for n in args.qubits:
        forms, back = kernels(n, args.batch)
        reference = back["bmm"](forms["bmm"]())
        times = {}
        for name, f in forms.items():
            error = (back[name](f()) - reference).abs().max().item()
            if error > 1e-5:
                raise SystemExit(f"{name} at n = {n} differs from bmm by {error:.2e}: not timed")
            times[name] = time_us(f, args.repeats, args.calls)
        for name in FORMS:
            rows.append({"n": n, "batch": args.batch, "form": name, "us_per_gate": round(times[name], 2),
                         "x_bmm": round(times["bmm"] / times[name], 2)})
    tables.write_rows(Path(args.csv), rows, list(rows[0]))
    print(f"one per-sample R_Y on a batch of {args.batch} states, complex64, {torch.get_num_threads()} threads")
    print(f"{'n':>3}{'form':>12}{'us/gate':>10}{'x bmm':>8}")
    for r in rows:
        print(f"{r['n']:>3}{r['form']:>12}{r['us_per_gate']:>10.1f}{r['x_bmm']:>8.2f}")
    return rows


if __name__ == "__main__":
    main()
