"""Every GPU-relevant benchmark in one command, for a lent GPU machine (about 5 minutes on one H100).

    python -m experiments.benchmarks.gpu                          # all parts, cuda if available else cpu
    python -m experiments.benchmarks.gpu --only plateau trainer   # some parts again
    python -m experiments.benchmarks.gpu --device cpu --quick     # tiny sizes everywhere (the test's case)
    python -m experiments.benchmarks.gpu --prepare-wheels         # here, with network: .whl for the device

Parts, in order, each with its budget in seconds on one H100 (`BUDGETS`; --quick sizes are tiny):

  env       device name, torch and CUDA versions, SMs, memory; the copy bandwidth (GB/s, bytes read +
            written, a large tensor copied on the device; on the CPU, a RAM copy)
  tests     `pytest -q` on the test files marked for the GPU (tests/test_gpu.py), in a subprocess with a
            timeout: passed / failed / skipped counts; without hydra-core its tests are deselected
  plateau   McClean's gradient variance (dE/dtheta_{1,1} of Z0 Z1) for n = 2..24, L = 1..200, 100 circuits, through the library
            (qtrain._plateau.mcclean_gradients, as the barren_plateau task), time per n; an n whose time
            predicted from the last one (x 4 per 2 qubits, x n) would overrun the budget is not run;
            figures variance_vs_qubits.png and variance_vs_layers.png
  regimes   experiments/benchmarks/hea.py, hybrid.py, many_starts.py and levers.py with --device, against
            the peers installed (a missing one gets a "skipped: not installed" row)
  trainer   experiments/benchmarks/training.py with --device at 7 x 1000 x 500 and 7 x 100000 x 500
            (Lightning run, the same steps without Lightning, the plain torch loop, one start alone)
  noise     experiments/benchmarks/noise.py (density matrix and trajectories) with --device

Output (--out, default logs/benchmarks/gpu/): gpu.md, a header (device, copy bandwidth, versions, parts
run) and one markdown table with the columns

  part | workload | library | time | x qtrain | status

("time" the median of the timed rounds where a benchmark times rounds, else the one run; "x qtrain" that
time over qtrain's for the same workload, above 1 qtrain is faster; in levers it is over the shipped plan's,
"all"), plus each part's CSV (env.csv, tests.log, plateau.csv, hea.csv, ...) and the plateau figures. The
table is printed at the end. A part that fails gets a row with its error's first line and the run goes on;
a part that needs a package that is not installed (Lightning for the trainer, hydra-core for the CLI tests)
is skipped with a one-line reason. Nothing here imports hydra: the library API is used throughout.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import io
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from qtrain._tables import write_rows

PARTS = ("env", "tests", "plateau", "regimes", "trainer", "noise")
#: Seconds each part may take on one H100 (5 minutes together). Estimated from the 2-core CPU timings of
#: docs/guides/performance.md and the device's 3 TB/s copy bandwidth; the plateau, regimes, trainer and
#: noise parts leave out what would overrun theirs, the tests part is killed at twice its budget.
BUDGETS = {"env": 10, "tests": 40, "plateau": 100, "regimes": 70, "trainer": 55, "noise": 25}
#: Packages qtrain's CLI and its tests need that the lent GPU image lacks (docs/guides/performance.md,
#: "Running the GPU benchmarks"): carried as wheels in .whl. antlr4-python3-runtime has no wheel on PyPI
#: and is built here (pure Python).
WHEELS = ("hydra-core", "omegaconf", "antlr4-python3-runtime", "hydra-joblib-launcher", "hydra-submitit-launcher", "submitit")
#: The command a lent machine runs (the `run` tool, carry [".whl"]): outputs packed into $OUT, which takes 8 files.
DEVICE_COMMAND = (
    "python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl "
    "&& export PYTHONPATH=/tmp/site || exit; "
    "PYTHONUNBUFFERED=1 timeout 540 python3 -m experiments.benchmarks.gpu --out /tmp/gpu 2>&1 | tee $OUT/log.txt; "
    "cp /tmp/gpu/gpu.md $OUT/; tar czf $OUT/gpu.tgz -C /tmp gpu"
)
COLUMNS = ["part", "workload", "library", "seconds", "x_qtrain", "status"]
#: A status longer than this is cut in gpu.md (gpu.csv keeps it whole).
STATUS_CHARS = 160


@dataclass
class Context:
    """What every part gets: where to run, how big, where to write, its budget and rows."""

    device: str
    quick: bool
    out: Path
    budget: float
    start: float = field(default_factory=time.perf_counter)
    rows: list[dict[str, Any]] = field(default_factory=list)
    header: dict[str, str] = field(default_factory=dict)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.budget - self.elapsed()

    def row(self, workload: str, library: str, seconds: float | None, status: str, x_qtrain: float | None = None) -> None:
        self.rows.append({"workload": workload, "library": library, "seconds": seconds, "x_qtrain": x_qtrain, "status": status})


def synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def missing(*modules: str) -> list[str]:
    """The modules of `modules` that cannot be found (not imported)."""
    out = []
    for name in modules:
        try:
            if importlib.util.find_spec(name) is None:
                out.append(name)
        except (ImportError, ValueError):  # a parent package missing, or a blocked import
            out.append(name)
    return out


# ---- env ------------------------------------------------------------------------------------------


def copy_bandwidth(device: str, nbytes: int, repeats: int = 20) -> float:
    """GB/s of a tensor copy on `device` (bytes read + written), the median of `repeats` copies."""
    x = torch.empty(nbytes // 4, dtype=torch.float32, device=device).fill_(1.0)
    y = torch.empty_like(x)
    y.copy_(x)  # warm-up: first-touch of the pages, the kernel's load
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        y.copy_(x)
        synchronize(device)
        times.append(time.perf_counter() - start)
    del x, y
    return 2 * nbytes / statistics.median(times) / 1e9


def part_env(ctx: Context) -> None:
    dev = torch.device(ctx.device)
    info: dict[str, Any] = {"device": ctx.device, "torch": torch.__version__, "cuda": torch.version.cuda or "none", "python": platform.python_version(),
                            "threads": torch.get_num_threads()}
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info.update(name=props.name, sms=props.multi_processor_count, memory_gib=round(props.total_memory / 2**30, 1))
        nbytes = (64 if ctx.quick else 1024) * 2**20
    else:
        info.update(name=platform.processor() or platform.machine(), sms="-", memory_gib=round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1))
        nbytes = (16 if ctx.quick else 256) * 2**20
    start = time.perf_counter()
    gbs = copy_bandwidth(ctx.device, nbytes)
    seconds = time.perf_counter() - start
    info.update(copy_mib=nbytes // 2**20, copy_gb_s=round(gbs, 1))
    write_rows(ctx.out / "env.csv", [info], list(info))
    what = "device-to-device" if dev.type == "cuda" else "RAM"
    ctx.header["device"] = f"{info['name']} ({ctx.device}), {info['sms']} SMs, {info['memory_gib']} GiB" if dev.type == "cuda" else f"CPU {info['name']}, {info['threads']} threads, {info['memory_gib']} GiB"
    ctx.header["copy bandwidth"] = f"{gbs:.1f} GB/s ({what} copy of {nbytes // 2**20} MiB, bytes read + written, median of 20)"
    ctx.row(f"{what} copy, {nbytes // 2**20} MiB", "torch", seconds, f"ok: {gbs:.1f} GB/s")


# ---- tests ----------------------------------------------------------------------------------------

GPU_TEST = re.compile(r"pytest\.mark\.gpu|skipif\(not torch\.cuda\.is_available\(\)")
NEEDS_HYDRA = re.compile(r"compose_experiment|hydra|omegaconf|\bcli\b|in_process")


def gpu_test_files(root: Path) -> list[Path]:
    """Test files with a GPU marker or a 'needs CUDA' skip."""
    return sorted(p for p in (root / "tests").glob("test_*.py") if GPU_TEST.search(p.read_text()))


def hydra_tests(path: Path) -> list[str]:
    """The test functions of a file whose source names Hydra or the CLI (they need hydra-core)."""
    tree = ast.parse(path.read_text())
    source = path.read_text()
    return [node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name.startswith("test")
            and NEEDS_HYDRA.search(ast.get_source_segment(source, node) or "")]


def pytest_counts(output: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for number, what in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)", output):
        key = "error" if what.startswith("error") else what
        counts[key] = counts.get(key, 0) + int(number)
    return counts


def part_tests(ctx: Context) -> None:
    root = Path(__file__).resolve().parents[2]
    files = gpu_test_files(root)
    if not files:
        ctx.row("pytest", "qtrain", None, "skipped: no test file is marked for the GPU")
        return
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *(str(f.relative_to(root)) for f in files)]
    note = ""
    if missing("hydra", "omegaconf"):
        names = [f"{f.relative_to(root)}::{name}" for f in files for name in hydra_tests(f)]
        args += [a for name in names for a in ("--deselect", name)]
        args += ["-p", "no:hydra_pytest"]  # hydra's pytest plugin, where an entry point outlives an unimportable hydra
        note = f"; {len(names)} deselected: need hydra-core (not installed; carry .whl)" if names else ""
    timeout = 2 * ctx.budget
    start = time.perf_counter()
    try:
        done = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=timeout)
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        code = None
    seconds = time.perf_counter() - start
    (ctx.out / "tests.log").write_text(" ".join(args) + "\n\n" + output)
    counts = pytest_counts(output.strip().splitlines()[-1] if output.strip() else "")
    summary = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("passed", "failed", "skipped")) + "".join(f", {v} {k}" for k, v in counts.items() if k not in ("passed", "failed", "skipped", "deselected"))
    if code is None:
        status = f"failed: timed out after {timeout:.0f} s (tests.log)"
    elif code == 0:
        status = f"ok: {summary}{note}"
    else:
        status = f"failed: {summary}{note} (tests.log)"
    ctx.row(f"pytest -q {' '.join(str(f.relative_to(root)) for f in files)}", "qtrain", seconds, status)


# ---- plateau --------------------------------------------------------------------------------------


def part_plateau(ctx: Context) -> None:
    from qtrain import _figures as figures
    from qtrain._memory import budget_bytes, samples_per_chunk
    from qtrain._plateau import STATES_PER_SAMPLE, mcclean_gradients
    from qtrain._tasks import barren_plateau as task
    from qtrain.diagnostics import resolve_cost

    qubits = [2, 4] if ctx.quick else list(range(2, 25, 2))
    # the plateau needs L of about 15 n to 20 n (docs/guides/findings.md): 200 reaches it to n = 10 and shows the decay beyond
    layers = [1, 2] if ctx.quick else [1, 2, 5, 10, 20, 50, 100, 200]
    samples, seed, dtype = (8 if ctx.quick else 100), 0, torch.complex64
    rows: list[dict[str, Any]] = []
    last: tuple[int, float] | None = None
    for n in qubits:
        workload = f"McClean n = {n}, L = {layers[0]}..{layers[-1]}, S = {samples}"
        if last is not None:
            predicted = last[1] * 2.0 ** (n - last[0]) * n / last[0]
            if predicted > ctx.left():
                ctx.row(workload, "qtrain", None, f"not run: about {predicted:.3g} s predicted (from n = {last[0]}), {max(ctx.left(), 0):.3g} s of the part's budget left")
                continue
        cost = resolve_cost("global", n)
        chunk = samples_per_chunk(n, samples, dtype, budget_bytes(ctx.device), STATES_PER_SAMPLE)
        bound = task.shot_bound(cost)
        synchronize(ctx.device)
        start = time.perf_counter()
        points = [(L, grads.detach().cpu()) for L, grads in mcclean_gradients(n, layers, samples, task._seed(seed, n), cost, dtype=dtype, device=ctx.device, chunk_size=chunk)]
        synchronize(ctx.device)
        seconds = time.perf_counter() - start
        last = (n, seconds)
        rows += [task._row(n, L, grads, seed, bound) for L, grads in points]
        deepest = rows[-1]
        ctx.row(workload, "qtrain", seconds, f"ok: Var = {deepest['grad_var']:.3g} at L = {deepest['n_layers']} (2-design {deepest['var_2design']:.3g}), chunk {chunk}")
    if not rows:
        return
    write_rows(ctx.out / "plateau.csv", rows, task.COLUMNS)
    fit = task._fit(rows, sorted({r["n_qubits"] for r in rows}), layers[-1])
    figures.variance_vs_layers(rows).savefig(ctx.out / "variance_vs_layers.png", dpi=110)
    if fit["n_points"] >= 2:
        figures.variance_vs_qubits(rows, fit["n_layers"], fit["slope"], fit["intercept"]).savefig(ctx.out / "variance_vs_qubits.png", dpi=110)
        ctx.header["plateau fit"] = f"log2 Var against n at L = {fit['n_layers']}: slope {fit['slope']:.3f} over n = {min(r['n_qubits'] for r in rows)}..{max(r['n_qubits'] for r in rows)}"


# ---- the benchmarks' own tables -------------------------------------------------------------------


def harness_rows(ctx: Context, bench: str, rows: Iterable[Mapping[str, Any]], size_keys: Sequence[str]) -> None:
    """The harness's rows as table rows: the median where timed, else the checked (or reference) run."""
    for r in rows:
        size = ", ".join(f"{k} = {r[k]}" for k in size_keys if k in r and r[k] is not None)
        seconds = r["median_ms"] / 1e3 if "median_ms" in r else r.get("check_seconds")
        ctx.row(f"{bench} {size}", str(r["library"]), seconds, str(r["status"]), r.get("x_qtrain"))


def not_installed(ctx: Context, bench: str, libraries: Iterable[Any]) -> None:
    for lib in libraries:
        if not lib.available():
            ctx.row(bench, lib.name, None, "skipped: not installed (or fails to import)")


def run_quietly(main: Callable[[list[str]], Any], argv: list[str], log: Path) -> Any:
    """A benchmark's main(argv), its printed tables appended to `log` (they are in the CSVs too)."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            return main(argv)
    finally:
        with log.open("a") as f:
            f.write(f"$ {' '.join(argv)}\n{buffer.getvalue()}\n")


def within_budget(ctx: Context, workload: str, library: str = "-") -> bool:
    if ctx.left() > 0:
        return True
    ctx.row(workload, library, None, f"not run: the part's budget of {ctx.budget:g} s is spent")
    return False


def part_regimes(ctx: Context) -> None:
    from experiments.benchmarks import hea, hybrid, levers, many_starts

    log = ctx.out / "regimes.log"
    # The complex128 references run on the CPU (16 cores on the lent machine): the sizes keep each under --budget
    # (hybrid n = 16, B = 1024 would take about 108 s on 2 cores, docs/guides/performance.md, so B = 256 here).
    common = ["--device", ctx.device, "--repeats", "1" if ctx.quick else "3", "--budget", "5" if ctx.quick else "8"]
    plans = [
        ("hea", hea, ["--points", "3x1"] if ctx.quick else ["--points", "12x10", "16x10", "20x10"], ("n", "L")),
        ("hybrid", hybrid, ["--qubits", "2", "--batches", "3"] if ctx.quick else ["--qubits", "8", "12", "16", "--batches", "256"], ("n", "B")),
        ("many_starts", many_starts, ["--starts", "5"] if ctx.quick else ["--starts", "7000", "100000"], ("S",)),
    ]
    for bench, module, argv, keys in plans:
        if not within_budget(ctx, bench):
            continue
        not_installed(ctx, bench, module.libraries())
        rows = run_quietly(module.main, [*argv, *common, "--csv", str(ctx.out / f"{bench}.csv")], log)
        harness_rows(ctx, bench, rows, keys)
    if within_budget(ctx, "levers"):
        workloads = ["hea-3x1", "hybrid-2x3", "starts-5"] if ctx.quick else ["hea-16x10", "hea-20x5", "hybrid-12x1024", "starts-100000"]
        rows = run_quietly(levers.main, ["--workloads", *workloads, "--repeats", "1" if ctx.quick else "3", "--device", ctx.device, "--csv", str(ctx.out / "levers.csv")], log)
        for r in rows:
            ctx.row(f"levers {r['workload']}", f"qtrain {r['variant']}", r["median_ms"] / 1e3, "ok (x qtrain: over the shipped plan, 'all')", r["x_all"])


def part_trainer(ctx: Context) -> None:
    gone = missing("lightning")
    if gone:
        ctx.row("train_lr_grid", "qtrain", None, f"skipped: needs {', '.join(gone)} (not installed)")
        return
    from experiments.benchmarks import training

    sizes = [(4, 2)] if ctx.quick else [(1000, 500), (100000, 500)]
    previous: tuple[int, float] | None = None
    for starts, steps in sizes:
        workload = f"Adam {len(training.LRS)} x {starts} x {steps}"
        if previous is not None:
            # a CPU step is linear in the starts; on a GPU, 7 x 100000 3-qubit states (45 MB) are still mostly
            # kernel launches (assumed x 2 over 7 x 1000)
            growth = starts / previous[0] if torch.device(ctx.device).type == "cpu" else 2.0
            if previous[1] * growth > ctx.left():
                ctx.row(workload, "-", None, f"not run: about {previous[1] * growth:.3g} s predicted, {max(ctx.left(), 0):.3g} s of the part's budget left")
                continue
        start = time.perf_counter()
        csv = ctx.out / f"training_{starts}.csv"
        rows = run_quietly(training.main, ["--starts", str(starts), "--steps", str(steps), "--device", ctx.device, "--csv", str(csv)], ctx.out / "trainer.log")
        previous = (starts, time.perf_counter() - start)
        for r in rows:
            ctx.row(workload, {"qtrain": "qtrain (train_lr_grid)"}.get(r["method"], r["method"]), r["seconds"], "ok", r["x_qtrain"])


def part_noise(ctx: Context) -> None:
    from experiments.benchmarks import noise

    log = ctx.out / "noise.log"
    common = ["--device", ctx.device, "--repeats", "1" if ctx.quick else "3", "--budget", "5" if ctx.quick else "8", "--layers", "1" if ctx.quick else "2"]
    regimes = [
        ("density", ["--qubits", "2"] if ctx.quick else ["--qubits", "6", "8"], ("n", "L", "B"), noise.density_libraries()),
        # quick: 200 trajectories at p = 0.05 (tests/test_noise_benchmark.py's), so that some trajectories see an error
        ("trajectories", ["--trajectory-qubits", "3", "--trajectories", "200", "--depolarizing", "0.05"] if ctx.quick else ["--trajectory-qubits", "12", "16"], ("n", "L", "T"),
         noise.trajectory_libraries()),
    ]
    for regime, argv, keys, libraries in regimes:
        bench = f"noise {regime}"
        if not within_budget(ctx, bench):
            continue
        not_installed(ctx, bench, libraries)
        extra = ["--batch", "2"] if ctx.quick else []
        rows = run_quietly(noise.main, ["--regimes", regime, *argv, *extra, *common, "--csv", str(ctx.out / "noise.csv")], log)
        harness_rows(ctx, bench, rows, keys)


PART_FUNCTIONS: dict[str, Callable[[Context], None]] = {
    "env": part_env, "tests": part_tests, "plateau": part_plateau, "regimes": part_regimes, "trainer": part_trainer, "noise": part_noise,
}


# ---- the table ------------------------------------------------------------------------------------


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip().rstrip(":")[:200]


def run_part(name: str, ctx: Context) -> None:
    """Run one part; a failure becomes a row, never a traceback that stops the run."""
    try:
        PART_FUNCTIONS[name](ctx)
    except ModuleNotFoundError as exc:
        ctx.row("-", "-", None, f"skipped: needs {exc.name or exc} (not installed)")
    except (Exception, SystemExit) as exc:  # SystemExit: a benchmark's argument check; the run goes on
        ctx.row("-", "-", None, f"failed: {first_line(exc)}")
    finally:
        if torch.device(ctx.device).type == "cuda":
            torch.cuda.empty_cache()
    over = f" (over its {ctx.budget:g} s budget)" if ctx.elapsed() > ctx.budget else ""
    ctx.header[f"part {name}"] = f"{ctx.elapsed():.1f} s of {ctx.budget:g} s{over}"


def fmt_seconds(seconds: Any) -> str:
    if seconds is None or seconds == "" or (isinstance(seconds, float) and math.isnan(seconds)):
        return "-"
    seconds = float(seconds)
    return f"{1e3 * seconds:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def fmt_ratio(ratio: Any) -> str:
    if ratio is None or ratio == "" or (isinstance(ratio, float) and math.isnan(ratio)):
        return "-"
    return f"{float(ratio):.2f}"


def markdown(header: Mapping[str, str], rows: Sequence[Mapping[str, Any]]) -> str:
    lines = ["# GPU benchmarks (`python -m experiments.benchmarks.gpu`)", ""]
    lines += [f"- {key}: {value}" for key, value in header.items() if value]
    lines += ["", "| part | workload | library | time | x qtrain | status |", "|---|---|---|---:|---:|---|"]
    for r in rows:
        status = str(r["status"]).replace("|", "/").replace("\n", " ")
        status = status if len(status) <= STATUS_CHARS else status[: STATUS_CHARS - 3] + "..."  # the CSV keeps it whole
        lines.append(f"| {r['part']} | {r['workload']} | {r['library']} | {fmt_seconds(r['seconds'])} | {fmt_ratio(r['x_qtrain'])} | {status} |")
    return "\n".join(lines) + "\n"


# ---- wheels for the lent machine ------------------------------------------------------------------


def prepare_wheels(folder: Path) -> None:
    """Download (or build, for a source-only package) the wheels of WHEELS, at the versions installed
    here, for the GPU image's Python 3.12 on x86-64 Linux, into `folder`; then print the device command."""
    from importlib.metadata import PackageNotFoundError, version

    folder.mkdir(parents=True, exist_ok=True)
    platforms = [a for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64") for a in ("--platform", p)]
    for name in WHEELS:
        try:
            pinned = f"{name}=={version(name)}"
        except PackageNotFoundError:
            pinned = name
        download = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
                    *platforms, "-d", str(folder), pinned]
        if subprocess.run(download).returncode != 0:  # no wheel on the index (antlr4-python3-runtime 4.9.3): build the pure-Python one
            subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(folder), pinned], check=True)
    print(f"wheels in {folder}: {sorted(p.name for p in folder.glob('*.whl'))}")
    print("keep them out of git:  echo /.whl/ >> \"$(git rev-parse --git-path info/exclude)\"")
    print(f"then on the device (the run tool, carry [\".whl\"], timeout_s 600):\n  {DEVICE_COMMAND}")


# ---- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cuda (the default where available) or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes everywhere (the test's case)")
    parser.add_argument("--only", nargs="+", metavar="PART", help=f"run only these parts, of {', '.join(PARTS)}")
    parser.add_argument("--out", default="logs/benchmarks/gpu", help="folder of gpu.md, the CSVs and the figures")
    parser.add_argument("--prepare-wheels", nargs="?", const=".whl", metavar="DIR", help="download the wheels the lent machine lacks into DIR (default .whl), print the device command, and stop")
    args = parser.parse_args(argv)
    if args.prepare_wheels:
        prepare_wheels(Path(args.prepare_wheels))
        return []
    unknown = [p for p in args.only or [] if p not in PARTS]
    if unknown:
        raise SystemExit(f"unknown part(s) {', '.join(unknown)}; the parts are {', '.join(PARTS)}")
    parts = [p for p in PARTS if p in (args.only or PARTS)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("regimes.log", "noise.log", "trainer.log"):
        (out / stale).unlink(missing_ok=True)
    header: dict[str, str] = {"device": args.device, "copy bandwidth": "not measured (part env not run)",
                              "versions": f"torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}, Python {platform.python_version()}",
                              "run": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {'--quick' if args.quick else 'full sizes'}, parts {' '.join(parts)}"}
    rows: list[dict[str, Any]] = []
    total = time.perf_counter()
    for name in parts:
        print(f"== {name} (budget {BUDGETS[name]} s)", flush=True)
        ctx = Context(args.device, args.quick, out, BUDGETS[name], header=header)
        run_part(name, ctx)
        if not ctx.rows:
            ctx.row("-", "-", None, "ok: nothing to report")
        rows += [{"part": name, **r} for r in ctx.rows]
        print(f"   {header[f'part {name}']}", flush=True)
        write_rows(out / "gpu.csv", rows, COLUMNS)  # after every part: an interrupted run keeps what it measured
        (out / "gpu.md").write_text(markdown(header, rows))
    header["total"] = f"{time.perf_counter() - total:.1f} s"
    text = markdown(header, rows)
    (out / "gpu.md").write_text(text)
    print("\n" + text + f"\nwritten to {out / 'gpu.md'}")
    return rows


if __name__ == "__main__":
    main()
