"""`import qtrain` stays light: no Lightning, Hydra or optional simulators."""

import subprocess
import sys


def test_import_qtrain_pulls_no_heavy_dependencies():
    code = (
        "import sys, qtrain\n"
        "heavy = ('lightning', 'pytorch_lightning', 'hydra', 'pennylane', 'torchquantum', 'tensorboard', 'matplotlib')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_engine_imports_nothing_from_lightning_or_hydra():
    from pathlib import Path

    import qtrain.engine

    for path in Path(qtrain.engine.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert "lightning" not in text and "hydra" not in text, path


def test_ci_runs_the_readme_test_command():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = [block.split("\n", 1)[1].split("```", 1)[0].strip() for block in quickstart.split("```bash")[1:]]
    assert len(commands) == 2
    ci_lines = (root / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci_lines


def test_every_package_ships_in_the_wheel():
    """pyproject lists packages by hand (conf/ is mapped into qtrain.conf), so a
    new sub-package must be added there or a wheel install would lack it."""
    from pathlib import Path

    import tomllib

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "qtrain").rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    groups = {"qtrain." + ".".join(p.relative_to(root).parts) for p in (root / "conf").rglob("*") if p.is_dir()} | {"qtrain.conf"}
    assert groups <= listed and all(config["package-data"].get(g) == ["*.yaml"] for g in groups), sorted(groups)


def test_the_interop_extra_cannot_swap_torch():
    """torchquantum-ng and torchpack require torchvision, which drags in its own
    torch (or, pinned beside a CPU torch, cannot load and breaks Lightning):
    the extra lists their other dependencies, never them or torchvision."""
    from pathlib import Path

    import tomllib

    root = Path(__file__).resolve().parents[1]
    extra = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]["interop"]
    names = {requirement.split("[")[0].split(">")[0].split("=")[0].strip().lower() for requirement in extra}
    assert not names & {"torchvision", "torchquantum-ng", "torchquantum", "torchpack", "torch"}
    assert "torch==" in (root / "constraints" / "torch-cpu.txt").read_text()
