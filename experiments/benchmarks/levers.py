"""What each of the engine's planning levers pays: every regime's workload with one lever switched off.

    python -m experiments.benchmarks.levers                   # the sizes below, 7 rounds
    python -m experiments.benchmarks.levers --repeats 3 --workloads hea-12x10

Unlike the regime benchmarks, this one reaches into the engine on purpose: a
lever is switched off by replacing the planning function that applies it for
the duration of a call (a refactor that renames one breaks this script, and
tests/test_regime_benchmarks.py runs it on a tiny size to say so). Variants:

  all               the plan as shipped
  no-permutations   CNOT chains (and other basis-permuting runs) gate by gate
                    instead of one gather (`fuse_permutations` off)
  no-chains         a layer ends where a qubit's second gate starts (R_Y then
                    R_Z on a qubit: two layers), as before the per-qubit chains
  cache-widths      block widths by the cache rule alone (3-qubit blocks in
                    cache, 4 out of it), without the per-regime widths
                    (one-qubit blocks for tiny per-sample states, 4-qubit
                    blocks for operators the batch shares)
  unfused           every gate its own pass (`lower(..., fuse=False)`)

Workloads (complex64, 2 cores): hea-NxL, the single-circuit ansatz of hea.py
(value and full gradient, batch 1); hybrid-NxB, hybrid.py's layer (forward and
backward with input gradients, diff_method auto); starts-S, many_starts.py's S
starts (value_and_grad). Each variant's results are checked against the
shipped plan's to 1e-4 first; then all variants are timed interleaved, median.
The table lands in logs/benchmarks/levers.csv.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

import qtrain._execution as execution_module
import qtrain._lowering as lowering
from experiments.benchmarks import harness, hea, hybrid, many_starts
from qtrain.engine import fusion
from qtrain.engine import run as run_module
from qtrain.engine.fusion import Layer


DEFAULT_WORKLOADS = ("hea-12x10", "hea-16x10", "hybrid-4x256", "hybrid-8x256", "starts-7000")


def _chains_split_schedule(steps, n_qubits):
    """plan_schedule as it was before per-qubit chains: a group of one-qubit
    gates ends where a qubit already in it comes again."""
    schedule: list[int | Layer] = []
    group: list[int] = []

    def flush() -> None:
        if len(group) >= 2 and fusion.LAYER_SHARE * len(group) >= n_qubits:
            schedule.append(Layer(tuple((i,) for i in group)))
        else:
            schedule.extend(group)
        group.clear()

    for i, step in enumerate(steps):
        if len(step.qubits) == 1 and all(steps[j].qubits != step.qubits for j in group):
            group.append(i)
            continue
        flush()
        if len(step.qubits) == 1:
            group.append(i)
        else:
            schedule.append(i)
    flush()
    return tuple(schedule)


def _cache_widths(program, chunk_samples, dtype, per_sample):
    """The width rule before the per-regime widths: by the chunk's bytes alone."""
    n, state_bytes = program.n_qubits, chunk_samples * 2**program.n_qubits * dtype.itemsize
    if state_bytes > fusion.CACHE_RESIDENT_BYTES:
        return fusion.block_widths(n, fusion.BLOCK_QUBITS)
    return (n,) if n <= 4 else fusion.layer_widths(n, state_bytes, per_sample=True)


@contextlib.contextmanager
def _patched(module: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    execution_module.compiled.cache_clear()  # no program compiled under another variant may be served
    try:
        yield
    finally:
        setattr(module, name, old)
        execution_module.compiled.cache_clear()


VARIANTS: dict[str, Callable[[], contextlib.AbstractContextManager]] = {
    "all": contextlib.nullcontext,
    "no-permutations": lambda: _patched(lowering, "fuse_permutations", lambda steps, n_qubits: list(steps)),
    "no-chains": lambda: _patched(lowering, "plan_schedule", _chains_split_schedule),
    "cache-widths": lambda: _patched(run_module, "run_widths", _cache_widths),
    # Circuit.program() calls `lower` by the name circuit.py imported
    "unfused": lambda: _patched(execution_module, "lower", functools.partial(lowering.lower, fuse=False)),
}


def _setup(workload: str, device: str = "cpu") -> Callable[[], Any]:
    """A fresh call for the workload: the regime benchmark's own qtrain call,
    its circuit built now, under whatever patch is active."""
    kind, size = workload.split("-")
    if kind == "hea":
        n, layers = (int(v) for v in size.split("x"))
        return hea._qtrain_setup(torch.complex64)({**hea.make_workload({"n": n, "L": layers}), "device": device})
    if kind == "hybrid":
        n, batch = (int(v) for v in size.split("x"))
        return hybrid._qtrain_setup("auto", torch.complex64)({**hybrid.make_workload({"n": n, "B": batch}), "device": device})
    if kind == "starts":
        return many_starts._qtrain_setup({**many_starts.make_workload({"S": int(size)}), "device": device})
    raise ValueError(f"unknown workload {workload!r}: expected hea-NxL, hybrid-NxB or starts-S")


def measure(workload: str, repeats: int, device: str = "cpu") -> list[dict[str, Any]]:
    calls, rows = {}, []
    for name, variant in VARIANTS.items():
        with variant():
            call = _setup(workload, device)
            result = call()
        calls[name] = (variant, call, result)
    reference = calls["all"][2]
    timed, errors = [], {}
    for name, (variant, call, result) in calls.items():
        errors[name], problem = harness.compare(result, reference)
        if problem:
            raise RuntimeError(f"{workload}, {name}: {problem}")

        def wrapped(variant=variant, call=call) -> None:
            with variant():
                call()

        timed.append((wrapped, True))
    times = harness.time_interleaved(timed, repeats)
    base = statistics.median(times[0])
    for name, seconds in zip(calls, times):
        median = statistics.median(seconds)
        rows.append({"workload": workload, "variant": name, "median_ms": round(1e3 * median, 3), "x_all": round(median / base, 2), "max_error": errors[name]})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| variant | median ms | x all | max error |", "|---|---:|---:|---:|"]
    lines += [f"| {r['variant']} | {r['median_ms']:.3f} | {r['x_all']:.2f} | {r['max_error']:.1e} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", nargs="+", default=list(DEFAULT_WORKLOADS))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--csv", default="logs/benchmarks/levers.csv")
    parser.add_argument("--device", default="cpu", help="where the workloads run, e.g. cuda")
    args = parser.parse_args(argv)
    print(f"levers: one switched off at a time; torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}; {args.repeats} rounds, median")
    rows: list[dict] = []
    for workload in args.workloads:
        rows += measure(workload, args.repeats, args.device)
        print(f"\n### {workload}\n" + format_table([r for r in rows if r["workload"] == workload]))
        harness.write_csv(Path(args.csv), rows)
    print(f"\ntable written to {args.csv}")
    return rows


if __name__ == "__main__":
    main()
