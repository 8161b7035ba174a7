"""qtrain against peer simulators on McClean's barren-plateau workload.

    python -m experiments.benchmarks.engine                       # n in 8 12 16 20, L in 10 50
    python -m experiments.benchmarks.engine --qubits 12 16 --layers 10 50 --repeats 3

Workload (SCIENCE.md part A): n qubits, L layers, S = 64 random circuits,
complex64; (a) dE/dtheta_{1,1} for every circuit, (b) the gradient of all
n L parameters for every circuit. Peers (installed with `pip install
qtrain[bench]`) run in their fastest mode; see experiments/benchmarks/peers/.

For every size: every library's (a) and (b) are first checked against a
complex128 reference (qtrain's adjoint, itself checked against a dense NumPy
simulator in tests/) to 1e-4; a library that disagrees is reported and not
timed. Then all libraries are timed interleaved in one process (`repeats`
rounds, each timing every library once and starting at the next library, so
machine drift hits all alike; a call shorter than WARM_UP_BELOW gets an
untimed warm-up call right before it) and the median is kept. Peak memory is measured separately,
one subprocess per library and task (the resident high-water mark above the
process's baseline, with glibc returning freed memory at once: EXACT_MALLOC).
Finally qtrain's achieved state traffic (bytes its passes read and write per
second) is compared with this machine's measured copy bandwidth.

qtrain runs twice: "qtrain" as a user gets it, running only the gates in the
cost's backward light cone (exact; at L < n - 1 that is fewer qubits), and
"qtrain-full" with light_cone=False, every gate on all n qubits: the engine's
own speed. Ratios ("x qtrain", "x full") are peer time / qtrain time. A
library is not run at a depth where its time or memory at a smaller depth of
the same n scales past --budget or the available memory, and the CSV is
rewritten after every size, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from experiments.benchmarks.peers import PEERS
from experiments.benchmarks.qtrain_peer import QtrainFullRegister, QtrainPeer
from qtrain.builders import mcclean_draw
from qtrain._tables import write_rows

SAMPLES = 64
#: Calls whose check took less than this many seconds get an untimed warm-up
#: call right before each timed one: the first call after another library's
#: ran up to 3 times slower (qtrain at n = 12, L = 10: 75 ms against 25 ms).
WARM_UP_BELOW = 2.0


def workload(n: int, layers: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    draw = mcclean_draw(n, layers, SAMPLES, seed)
    return draw.axes.numpy().astype(int), draw.angles.permute(1, 0, 2).reshape(SAMPLES, -1).numpy()


def reference(axes: np.ndarray, angles: np.ndarray) -> np.ndarray:
    return QtrainFullRegister(axes, angles, dtype=torch.complex128).grad_all()


def libraries() -> list[type]:
    return [QtrainPeer, QtrainFullRegister] + [p for p in PEERS if p.available()]


def copy_bandwidth(n_bytes: int = 1 << 28, repeats: int = 5) -> float:
    """Read + write bytes per second of a plain tensor copy into a preallocated buffer."""
    src = torch.empty(n_bytes // 4, dtype=torch.float32).uniform_()
    dst = torch.empty_like(src)
    dst.copy_(src)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        dst.copy_(src)
        times.append(time.perf_counter() - start)
    return 2 * n_bytes / min(times)


def too_big(earlier: list[dict], n: int, layers: int, budget: float) -> str | None:
    """Why a library should not run at (n, L), judged from its rows at smaller
    sizes (time and memory grow about as 2^n L), or None. Guards the run
    against the kernel's out-of-memory killer."""
    measured = [r for r in earlier if "check_seconds" in r and r["n"] <= n and r["L"] <= layers]
    if not measured:
        return None
    previous = max(measured, key=lambda r: (r["n"], r["L"]))
    growth = 2 ** (n - previous["n"]) * layers / previous["L"]
    seconds = previous["check_seconds"] * growth
    peak = max(previous.get("peak_mib_a", 0), previous.get("peak_mib_b", 0)) * growth * 2**20
    available = _proc_kib("/proc/meminfo", "MemAvailable") * 1024
    at = f"n = {previous['n']}, L = {previous['L']}"
    if seconds > budget:
        return f"not run: (a) + (b) took {previous['check_seconds']:.3g} s at {at}, about {seconds:.3g} s here > --budget {budget:.3g} s"
    if peak > 0.9 * available:
        return f"not run: peak about {peak / 2**30:.1f} GiB expected (from {at}), {available / 2**30:.1f} GiB available"
    return None


def time_size(n: int, layers: int, repeats: int, budget: float, names: list[str] | None, history: dict | None = None) -> list[dict]:
    """Check, then time, every library at one size. `history` maps a library's
    name to its rows at the sizes run before (see `too_big`)."""
    axes, angles = workload(n, layers)
    ref_b = reference(axes, angles)
    ready, rows = [], []
    for lib in libraries():
        if names and lib.name not in names:
            continue
        skip = too_big((history or {}).get(lib.name, []), n, layers, budget)
        if skip:
            rows.append({"n": n, "L": layers, "library": lib.name, "mode": lib.mode, "status": skip})
            continue
        try:
            runner = lib(axes, angles)
            start = time.perf_counter()
            err_a = float(np.abs(runner.grad_first() - ref_b[:, 0]).max())
            err_b = float(np.abs(runner.grad_all() - ref_b).max())
            checked = time.perf_counter() - start
        except Exception as exc:  # a peer that cannot run this size is reported, not fatal
            rows.append({"n": n, "L": layers, "library": lib.name, "mode": lib.mode, "status": f"failed: {type(exc).__name__}: {exc}"[:200]})
            continue
        status = "ok" if max(err_a, err_b) <= 1e-4 else f"wrong gradients (max error {max(err_a, err_b):.1e}); not timed"
        if status == "ok" and checked > budget:
            status = f"correct, but (a) + (b) took {checked:.0f} s > --budget {budget:.0f} s; not timed"
        row = {"n": n, "L": layers, "library": lib.name, "mode": lib.mode, "status": status, "max_error": max(err_a, err_b), "check_seconds": checked}
        rows.append(row)
        if status == "ok":
            ready.append((row, runner, {"a": [], "b": []}))
    for round_ in range(repeats if ready else 0):  # interleaved rounds, each starting at the next library
        for row, runner, times in ready[round_ % len(ready) :] + ready[: round_ % len(ready)]:
            for task, fn in (("a", runner.grad_first), ("b", runner.grad_all)):
                if row["check_seconds"] < WARM_UP_BELOW:
                    fn()  # the first call after another library's is slower (measured: up to 3x at 30 ms)
                start = time.perf_counter()
                fn()
                times[task].append(time.perf_counter() - start)
    for row, runner, times in ready:
        row["seconds_a"], row["seconds_b"] = statistics.median(times["a"]), statistics.median(times["b"])
        if hasattr(runner, "traffic_bytes"):  # qtrain: its state-traffic model
            row["traffic_bytes_a"], row["traffic_bytes_b"] = runner.traffic_bytes()
    return rows


#: glibc settings for the memory subprocesses: every allocation above 64 KiB
#: gets pages of its own, returned to the system when freed, so resident memory
#: is the memory in use. With glibc's defaults the figure depended on what
#: freed memory glibc happened to keep: qtrain-full's (b) at n = 16 measured
#: 36 MiB at L = 50 and 24 MiB at L = 100; with these, 36 and 39 MiB, the same
#: in repeated runs.
EXACT_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def peak_memory(library: str, n: int, layers: int, task: str) -> float:
    """MiB above baseline for one task of one library, in a fresh process."""
    cmd = [sys.executable, "-m", "experiments.benchmarks.engine", "--memory-worker", library, str(n), str(layers), task]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env={**os.environ, **EXACT_MALLOC})
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1])["peak_mib"] if out.returncode == 0 and lines else float("nan")


def _proc_kib(path: str, field: str) -> int:
    """A 'Field: N kB' line of a /proc file."""
    with open(path) as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def memory_worker(library: str, n: int, layers: int, task: str) -> None:
    """Peak resident memory of one call above the resident memory before it:
    the kernel's high-water mark is reset first (clear_refs 5), since imports
    and setup may have peaked higher than the call itself."""
    axes, angles = workload(n, layers)
    lib = next(lib for lib in libraries() if lib.name == library)
    runner = lib(axes, angles)
    fn = runner.grad_first if task == "a" else runner.grad_all
    fn()  # warm-up, as in the timing
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    baseline = _proc_kib("/proc/self/status", "VmRSS")
    fn()
    print(json.dumps({"peak_mib": (_proc_kib("/proc/self/status", "VmHWM") - baseline) / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qubits", type=int, nargs="+", default=[8, 12, 16, 20])
    parser.add_argument("--layers", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true", help="skip the per-library peak-memory subprocesses")
    parser.add_argument("--memory-only", action="store_true", help="only the peak-memory subprocesses (no timing)")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds a library's first (a) + (b) may take before it is left untimed at that size")
    parser.add_argument("--libraries", nargs="+", help="only these libraries (default: qtrain and every installed peer)")
    parser.add_argument("--csv", default="logs/benchmarks/engine.csv")
    parser.add_argument("--memory-worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        library, n, layers, task = args.memory_worker
        memory_worker(library, int(n), int(layers), task)
        return
    if args.memory_only:
        print(f"{'n':>3}{'L':>4}  {'library':<14}{'peak a MiB':>11}{'peak b MiB':>11}{'states MiB':>11}")
        for n in args.qubits:
            for layers in args.layers:
                for lib in libraries():
                    if args.libraries and lib.name not in args.libraries:
                        continue
                    a, b = peak_memory(lib.name, n, layers, "a"), peak_memory(lib.name, n, layers, "b")
                    print(f"{n:>3}{layers:>4}  {lib.name:<14}{a:>11.0f}{b:>11.0f}{SAMPLES * 2**n * 8 / 2**20:>11.0f}", flush=True)
        return
    bandwidth = copy_bandwidth()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; copy bandwidth {bandwidth / 1e9:.1f} GB/s (read + write); S = {SAMPLES}, complex64")
    print("libraries:", ", ".join(f"{lib.name} ({lib.mode})" for lib in libraries()))
    all_rows = []
    header = (
        f"{'n':>3}{'L':>4}  {'library':<14}{'(a) s':>9}{'(b) s':>9}{'a: x qtrain':>12}{'b: x qtrain':>12}"
        f"{'a: x full':>10}{'b: x full':>10}{'peak a MiB':>11}{'peak b MiB':>11}  status"
    )
    print(header)
    history: dict[str, list[dict]] = {}
    for n in sorted(args.qubits):
        for layers in sorted(args.layers):
            rows = time_size(n, layers, args.repeats, args.budget, args.libraries, history)
            mine = next((r for r in rows if r["library"] == "qtrain" and "seconds_a" in r), None)
            full = next((r for r in rows if r["library"] == "qtrain-full" and "seconds_a" in r), None)
            for r in rows:
                if "seconds_a" in r and mine:
                    r["ratio_a"], r["ratio_b"] = r["seconds_a"] / mine["seconds_a"], r["seconds_b"] / mine["seconds_b"]
                if "seconds_a" in r and full:
                    r["ratio_full_a"], r["ratio_full_b"] = r["seconds_a"] / full["seconds_a"], r["seconds_b"] / full["seconds_b"]
                if "seconds_a" in r and not args.no_memory:
                    r["peak_mib_a"], r["peak_mib_b"] = peak_memory(r["library"], n, layers, "a"), peak_memory(r["library"], n, layers, "b")
                if "traffic_bytes_a" in r:
                    traffic_a, traffic_b = r["traffic_bytes_a"], r["traffic_bytes_b"]
                    r["traffic_gbs_a"], r["traffic_gbs_b"] = traffic_a / r["seconds_a"] / 1e9, traffic_b / r["seconds_b"] / 1e9
                    r["traffic_share_a"], r["traffic_share_b"] = traffic_a / r["seconds_a"] / bandwidth, traffic_b / r["seconds_b"] / bandwidth
                    r["states_mib"] = SAMPLES * 2**n * 8 / 2**20
                print(_line(r), flush=True)
                all_rows.append(r)
                history.setdefault(r["library"], []).append(r)
            write_rows(Path(args.csv), all_rows, _fields(all_rows))  # after every size: an interrupted run keeps what it measured
    mine = [r for r in all_rows if "traffic_gbs_a" in r]
    if mine:
        print(f"\nqtrain state traffic against the {bandwidth / 1e9:.1f} GB/s copy bandwidth:")
        for r in mine:
            mem = f"; peak (b) {r['peak_mib_b']:.0f} MiB = {r['peak_mib_b'] / r['states_mib']:.1f} x one batch of states ({r['states_mib']:.0f} MiB)" if "peak_mib_b" in r else ""
            print(f"  {r['library']:<12} n={r['n']:>2} L={r['L']:>2}: (a) {r['traffic_gbs_a']:.1f} GB/s = {100 * r['traffic_share_a']:.0f}%, (b) {r['traffic_gbs_b']:.1f} GB/s = {100 * r['traffic_share_b']:.0f}%{mem}")
    print(f"table written to {args.csv}")


def _fields(rows: list[dict]) -> list[str]:
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    return fields


def _line(r: dict) -> str:
    def num(key: str, fmt: str) -> str:
        return format(r[key], fmt) if key in r else "-"

    return (f"{r['n']:>3}{r['L']:>4}  {r['library']:<14}{num('seconds_a', '9.3f'):>9}{num('seconds_b', '9.3f'):>9}"
            f"{num('ratio_a', '12.2f'):>12}{num('ratio_b', '12.2f'):>12}{num('ratio_full_a', '10.2f'):>10}{num('ratio_full_b', '10.2f'):>10}{num('peak_mib_a', '11.0f'):>11}{num('peak_mib_b', '11.0f'):>11}  {r['status']}")


if __name__ == "__main__":
    main()
