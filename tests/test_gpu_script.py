"""experiments/benchmarks/gpu.py, the one-command GPU benchmark, on the CPU with --quick so it does not rot
while no GPU is lent: every part runs and writes its row, --only picks parts, an unknown part is refused in
one line, a part that raises is recorded while the others run, and nothing needs hydra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.benchmarks import gpu
from qtrain._tables import read_rows

ROOT = Path(__file__).resolve().parents[1]
HEADER = "| part | workload | library | time | x qtrain | status |"


def table_rows(md: str) -> list[list[str]]:
    lines = md.split(HEADER, 1)[1].strip().splitlines()[1:]  # past the header and its rule
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]


def test_quick_run_on_cpu_runs_every_part_and_writes_the_table(tmp_path, capsys):
    rows = gpu.main(["--device", "cpu", "--quick", "--out", str(tmp_path)])
    md = (tmp_path / "gpu.md").read_text()
    assert "- device: CPU" in md and "- copy bandwidth: " in md and "GB/s" in md
    table = table_rows(md)
    assert {r[0] for r in table} == set(gpu.PARTS)  # a row (at least) per part
    assert len(table) == len(rows) and all(len(r) == 6 for r in table)
    for part, _, library, _, _, status in table:
        # every row ran, or says in one line why not: a peer not installed, a size over the budget
        assert status.startswith(("ok", "reference", "skipped: ", "not run: ")), (part, library, status)
    assert any(r[0] == "tests" and "skipped" in r[5] for r in table)  # no CUDA here: test_gpu.py skips
    assert all(r[1] and r[2] for r in table)
    for name in ("env.csv", "tests.log", "plateau.csv", "variance_vs_layers.png", "variance_vs_qubits.png", "hea.csv", "hybrid.csv",
                 "many_starts.csv", "levers.csv", "training_4.csv", "noise_density.csv", "noise_trajectories.csv", "gpu.csv"):
        assert (tmp_path / name).is_file(), name
    assert [r["part"] for r in read_rows(tmp_path / "gpu.csv")] == [r["part"] for r in rows]
    assert md in capsys.readouterr().out  # the table is printed at the end


def test_only_runs_the_parts_named_and_an_unknown_part_is_refused_in_one_line(tmp_path, capsys):
    rows = gpu.main(["--device", "cpu", "--quick", "--out", str(tmp_path), "--only", "plateau", "env"])
    assert [r["part"] for r in rows][0] == "env" and {r["part"] for r in rows} == {"env", "plateau"}
    assert not (tmp_path / "hea.csv").exists()
    with pytest.raises(SystemExit) as stop:
        gpu.main(["--device", "cpu", "--quick", "--out", str(tmp_path), "--only", "env", "bogus"])
    message = str(stop.value.code)
    assert "bogus" in message and "\n" not in message and all(p in message for p in gpu.PARTS)


def test_a_part_that_raises_is_recorded_and_the_others_still_run(tmp_path, monkeypatch):
    def broken(ctx):
        raise RuntimeError("planted failure\nsecond line")

    monkeypatch.setitem(gpu.PART_FUNCTIONS, "plateau", broken)
    rows = gpu.main(["--device", "cpu", "--quick", "--out", str(tmp_path), "--only", "env", "plateau", "trainer"])
    failed = [r for r in rows if r["part"] == "plateau"]
    assert [r["status"] for r in failed] == ["failed: RuntimeError: planted failure"]
    assert any(r["part"] == "trainer" and r["status"] == "ok" for r in rows)
    assert "failed: RuntimeError: planted failure |" in (tmp_path / "gpu.md").read_text()


BLOCK_HYDRA = '''
import importlib.abc, sys

class _Block(importlib.abc.MetaPathFinder):
    """As on the lent GPU machine: hydra-core and omegaconf are not installed."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("hydra", "omegaconf"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Block())
'''


def test_runs_without_hydra_and_deselects_the_tests_that_need_it(tmp_path):
    """A sitecustomize on PYTHONPATH blocks hydra in the script and in the pytest it starts."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_HYDRA)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    code = ("import sys, qtrain, experiments.benchmarks.gpu as g; "
            "assert not any(m.split('.')[0] in ('hydra', 'omegaconf') for m in sys.modules), 'hydra imported'; "
            "g.main(sys.argv[1:])")
    done = subprocess.run([sys.executable, "-c", code, "--device", "cpu", "--quick", "--out", str(tmp_path / "out"), "--only", "env", "tests"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    table = table_rows((tmp_path / "out" / "gpu.md").read_text())
    tests = next(r for r in table if r[0] == "tests")
    assert tests[5].startswith("ok: 0 passed, 0 failed") and "deselected: need hydra-core" in tests[5], tests


def test_the_device_command_fits_the_run_tool_and_installs_the_carried_wheels():
    assert len(gpu.DEVICE_COMMAND) < 2000
    assert "--target /tmp/site .whl/*.whl" in gpu.DEVICE_COMMAND and "python3 -m experiments.benchmarks.gpu" in gpu.DEVICE_COMMAND
    assert sum(BUDGET for BUDGET in gpu.BUDGETS.values()) <= 300 and set(gpu.BUDGETS) == set(gpu.PARTS)
