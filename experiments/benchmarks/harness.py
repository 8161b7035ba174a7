"""The shared harness of the regime benchmarks (hea.py, hybrid.py, many_starts.py).

A regime script describes its workload and its libraries; this module does the
rest, the same way for every regime:

  1. per size, a complex128 reference is computed first (untimed);
  2. every library is set up (untimed), then run once: that run is checked
     against the reference (`compare`: every quantity to TOLERANCE, relative
     to the quantity's scale when that is above 1), and its time and peak
     resident memory are kept; a library that disagrees is reported, not timed;
  3. the checked libraries are timed interleaved in one process
     (`time_interleaved`), and the median is kept;
  4. a library (or the reference) is not run at a size where its time or
     memory at a smaller size, scaled by the regime's work model, exceeds
     --budget or the available memory (`too_big`);
  5. a table per size is printed, and the CSV is rewritten after every size
     (`qtrain._tables.write_rows`), so an interrupted run keeps what it measured.

"x qtrain" is a library's median time / the median time of the library named
"qtrain" at the same size: above 1, qtrain is faster.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qtrain._tables import write_rows

#: Largest allowed error of a checked quantity: max |library - reference| /
#: max(1, max |reference|), i.e. absolute for quantities of order one (an
#: expectation value, its gradient) and relative for larger ones (a gradient
#: summed over a batch of 1024 samples, where complex64 rounding grows with the sum).
TOLERANCE = 1e-4
#: A call whose checked run took less than this many seconds gets an untimed
#: warm-up call right before each timed one: the first call after another
#: library's ran up to 3 times slower in the engine benchmark (cold caches,
#: allocator state), which is not the library's own speed.
WARM_UP_BELOW = 2.0
#: Share of the available memory a run's extrapolated peak may take.
MEMORY_SHARE = 0.8
#: The library that "x qtrain" ratios divide by.
BASELINE = "qtrain"

Results = Mapping[str, Any]


@dataclass(frozen=True)
class Library:
    """One contender. `setup(workload)` does the untimed preparation (building
    circuits, tapes, layers) and returns the timed call; the call returns the
    quantities to check (a mapping of array-likes with the reference's keys).
    `available()` says whether the library can be imported here; `describe()`,
    if given, completes `mode` once the library is chosen and available (a
    detail such as a precision that needs the library imported to know)."""

    name: str
    mode: str
    setup: Callable[[Any], Callable[[], Results]]
    available: Callable[[], bool] = field(default=lambda: True)
    describe: Callable[[], str] | None = None


def as_array(value: Any) -> np.ndarray:
    """A float64 NumPy array of a tensor, array or number (torch tensors are
    detached first)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().to(torch.float64).numpy()
    return np.asarray(value, dtype=np.float64)


def compare(result: Results, reference: Results, tolerance: float = TOLERANCE) -> tuple[float, str | None]:
    """Check every quantity of the reference against the result: -> (largest
    scaled error, None) when all agree to `tolerance`, else (error, what
    disagrees). A missing quantity or a wrong shape is a disagreement too."""
    worst, problems = 0.0, []
    for key, ref in reference.items():
        ref = as_array(ref)
        if key not in result:
            problems.append(f"{key}: missing")
            continue
        got = as_array(result[key])
        if got.shape != ref.shape:
            problems.append(f"{key}: shape {got.shape}, expected {ref.shape}")
            continue
        scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
        error = float(np.abs(got - ref).max(initial=0.0)) / scale
        if not math.isfinite(error):  # NaN compares false against any tolerance: name it
            error = math.inf
        worst = max(worst, error)
        if error > tolerance:
            problems.append(f"{key}: max error {error:.1e} > {tolerance:.0e}")
    return worst, ("; ".join(problems) if problems else None)


def synchronize() -> None:
    """Wait for queued GPU work, so that a timer read after a call counts it
    (CUDA kernels run asynchronously); a no-op where CUDA was never used."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def time_interleaved(calls: Sequence[tuple[Callable[[], Any], bool]], repeats: int) -> list[list[float]]:
    """Seconds of `repeats` timed runs of each (call, warm_up) pair.

    Round r times every call once, starting at call r (mod the count), so
    drift of the machine (another process, thermal state) hits all calls
    alike; a call with warm_up set gets an untimed run right before each
    timed one."""
    times: list[list[float]] = [[] for _ in calls]
    for round_ in range(repeats if calls else 0):
        first = round_ % len(calls)
        for i in list(range(first, len(calls))) + list(range(first)):
            call, warm_up = calls[i]
            if warm_up:
                call()
            synchronize()
            start = time.perf_counter()
            call()
            synchronize()
            times[i].append(time.perf_counter() - start)
    return times


def _proc_kib(path: str, key: str) -> int:
    """A 'Key: N kB' line of a /proc file."""
    with open(path) as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def _return_free_memory() -> None:
    """Hand memory that glibc keeps after frees back to the system
    (malloc_trim), so a call's allocations show in the resident set again.
    Without it the previous library's freed states were reused unseen: the
    torch-einsum layer at n = 16, B = 32 measured 16 MiB right after
    torchquantum's 3.5 GiB run, for about 3 GiB of saved states. A no-op
    where the C library is not glibc."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measured_run(call: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run `call` once: -> (its result, seconds, peak resident MiB above the
    resident memory before it; NaN where /proc does not tell). Freed memory is
    returned to the system first and the kernel's high-water mark reset
    (clear_refs 5), so the peak is this call's, not the imports' or an earlier
    library's. A guard for the budget rule, not a precise figure: memory that
    the call frees and allocates again within itself counts once."""
    _return_free_memory()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _proc_kib("/proc/self/status", "VmRSS")
    except OSError:
        before = None
    synchronize()
    start = time.perf_counter()
    result = call()
    synchronize()
    seconds = time.perf_counter() - start
    peak = math.nan
    if before is not None:
        peak = max(0.0, (_proc_kib("/proc/self/status", "VmHWM") - before) / 1024)
    return result, seconds, peak


def available_mib() -> float:
    try:
        return _proc_kib("/proc/meminfo", "MemAvailable") / 1024
    except (OSError, StopIteration):
        return math.inf


def too_big(earlier: Sequence[Mapping[str, Any]], size: Mapping[str, int], budget: float, work: Callable[[Mapping[str, int]], float]) -> str | None:
    """Why a library should not run at `size`, judged from its rows at sizes
    no larger in any dimension, or None.

    Its row of most work is scaled by work(size) / work(that size): the median
    time if it was timed (the checked run at a small size is mostly one-off
    setup and would overstate the growth), else the checked run's time, and
    the checked run's peak memory. Guards the run against hours-long calls
    and against the kernel's out-of-memory killer."""
    measured = [r for r in earlier if "check_seconds" in r and all(r[k] <= v for k, v in size.items())]
    if not measured:
        return None
    previous = max(measured, key=lambda r: work({k: r[k] for k in size}))
    growth = work(size) / work({k: previous[k] for k in size})
    at = ", ".join(f"{k} = {previous[k]}" for k in size)
    per_call = previous["median_ms"] / 1e3 if "median_ms" in previous else previous["check_seconds"]
    if per_call * growth > budget:
        return f"not run: {per_call:.3g} s per call at {at}, about {per_call * growth:.3g} s here > --budget {budget:.3g} s"
    peak = previous.get("peak_mib", math.nan) * growth
    if peak > MEMORY_SHARE * available_mib():  # NaN (peak unknown) compares false: no memory guard then
        return f"not run: about {peak / 1024:.1f} GiB peak expected (from {at}), {available_mib() / 1024:.1f} GiB available"
    return None


def run_size(
    size: Mapping[str, int],
    workload: Any,
    reference: Library,
    libraries: Sequence[Library],
    *,
    repeats: int,
    budget: float,
    work: Callable[[Mapping[str, int]], float],
    history: dict[str, list[dict]] | None = None,
    check: Callable[[Results, Results], tuple[float, str | None]] | None = None,
) -> list[dict]:
    """Check, then time, every library at one size: -> one row per library,
    the reference's row first. `history` maps a library's name to its rows at
    earlier sizes (see `too_big`); this size's rows are appended to it.
    `check(result, reference)` -> (error, problem or None) judges a library's
    run (default `compare`; random results, such as shot estimates, need a
    statistical rule)."""
    check = compare if check is None else check
    history = {} if history is None else history
    rows: list[dict] = []

    def row(lib: Library, status: str, **measured: Any) -> dict:
        out = {**size, "library": lib.name, "mode": lib.mode, "status": status, **measured}
        rows.append(out)
        history.setdefault(lib.name, []).append(out)
        return out

    skip = too_big(history.get(reference.name, []), size, budget, work)
    if skip:
        row(reference, skip)
        for lib in libraries:
            row(lib, f"not run: no reference at this size ({skip.removeprefix('not run: ')})")
        return rows
    expected, seconds, peak = measured_run(reference.setup(workload))
    row(reference, "reference (run once, not timed)", check_seconds=seconds, peak_mib=peak)

    ready: list[tuple[dict, Callable[[], Results]]] = []
    for lib in libraries:
        skip = too_big(history.get(lib.name, []), size, budget, work)
        if skip:
            row(lib, skip)
            continue
        try:
            call = lib.setup(workload)
            result, seconds, peak = measured_run(call)
            error, problem = check(result, expected)
            del result
        except Exception as exc:  # a library that cannot run this size is reported, not fatal to the run
            row(lib, f"failed: {type(exc).__name__}: {exc}"[:300])
            continue
        if problem:
            row(lib, f"wrong results ({problem}); not timed", max_error=error, check_seconds=seconds, peak_mib=peak)
        elif seconds > budget:
            row(lib, f"correct, but its run took {seconds:.3g} s > --budget {budget:.3g} s; not timed", max_error=error, check_seconds=seconds, peak_mib=peak)
        else:
            ready.append((row(lib, "ok", max_error=error, check_seconds=seconds, peak_mib=peak), call))

    times = time_interleaved([(call, r["check_seconds"] < WARM_UP_BELOW) for r, call in ready], repeats)
    for (r, _), seconds_list in zip(ready, times):
        r["median_ms"] = 1e3 * statistics.median(seconds_list)
        r["min_ms"] = 1e3 * min(seconds_list)
        r["repeats"] = len(seconds_list)
    base = next((r for r, _ in ready if r["library"] == BASELINE), None)
    if base is not None:
        for r, _ in ready:
            r["x_qtrain"] = r["median_ms"] / base["median_ms"]
    del ready, expected
    gc.collect()  # the next size starts without this size's states still held
    return rows


def fields_of(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """CSV columns: every key of every row, in order of first appearance."""
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    return fields


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    write_rows(path, rows, fields_of(rows))


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A markdown table of one size's rows (the size itself goes in the heading)."""

    def num(r: Mapping[str, Any], key: str, fmt: str) -> str:
        return format(r[key], fmt) if key in r and not (isinstance(r[key], float) and math.isnan(r[key])) else "-"

    lines = ["| library | median ms | x qtrain | check s | peak MiB | max error | status |", "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(
            f"| {r['library']} | {num(r, 'median_ms', '.3f')} | {num(r, 'x_qtrain', '.2f')} | {num(r, 'check_seconds', '.3f')} "
            f"| {num(r, 'peak_mib', '.0f')} | {num(r, 'max_error', '.1e')} | {r['status']} |"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser, csv: str, budget: float = 60.0, device: bool = False) -> None:
    """The options every regime script shares; `device`: also --device, for a script whose
    qtrain setups read the workload's "device" (see `sweep`)."""
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds; the median is reported")
    parser.add_argument("--budget", type=float, default=budget, help="seconds one call may take (extrapolated from smaller sizes) before a library is left out")
    parser.add_argument("--libraries", nargs="+", help="only these libraries (default: all, peers where installed)")
    parser.add_argument("--csv", default=csv, help="the table, rewritten after every size")
    if device:
        parser.add_argument("--device", default="cpu", help="where qtrain (and the plain-torch baselines) run, e.g. cuda; the reference and the peers stay on the CPU")


def select(libraries: Sequence[Library], names: Sequence[str] | None) -> list[Library]:
    """The libraries to run: those named (all by default) that are installed;
    prints a note for each one left out, and refuses unknown names."""
    known = [lib.name for lib in libraries]
    unknown = sorted(set(names or []) - set(known))
    if unknown:
        raise SystemExit(f"unknown libraries {unknown}; known: {known}")
    chosen = []
    for lib in libraries:
        if names and lib.name not in names:
            continue
        if not lib.available():
            print(f"note: {lib.name} is not installed (or fails to import): skipped")
            continue
        chosen.append(replace(lib, mode=lib.describe()) if lib.describe else lib)
    return chosen


def sweep(
    sizes: Sequence[Mapping[str, int]],
    make_workload: Callable[[Mapping[str, int]], Any],
    reference: Library,
    libraries: Sequence[Library],
    *,
    repeats: int,
    budget: float,
    work: Callable[[Mapping[str, int]], float],
    csv: Path,
    title: str,
    check: Callable[[Results, Results], tuple[float, str | None]] | None = None,
    device: str = "cpu",
) -> list[dict]:
    """Run every size in order (smallest first, so `too_big` has something to
    scale from), print its table, and rewrite the CSV after each: -> all rows.
    `check`: as in `run_size`. `device` is put in every (dict) workload as
    "device"; the libraries that can run there read it (default cpu)."""
    print(f"{title}\ntorch {torch.__version__}, {torch.get_num_threads()} threads, device {device}; {repeats} timed rounds, median; --budget {budget:g} s")
    print(f"reference: {reference.mode}")
    for lib in libraries:
        print(f"{lib.name}: {lib.mode}")
    all_rows: list[dict] = []
    history: dict[str, list[dict]] = {}
    for size in sizes:
        workload = make_workload(size)
        if isinstance(workload, dict):
            workload = {**workload, "device": device}
        rows = run_size(size, workload, reference, libraries, repeats=repeats, budget=budget, work=work, history=history, check=check)
        all_rows += rows
        write_csv(csv, all_rows)  # after every size: an interrupted run keeps what it measured
        print(f"\n### {', '.join(f'{k} = {v}' for k, v in size.items())}\n{format_table(rows)}", flush=True)
    print(f"\ntable written to {csv}")
    return all_rows
