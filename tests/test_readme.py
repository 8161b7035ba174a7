"""Every code block of the README runs, so the README cannot drift from the code.

Python blocks run as written, each on its own. A block whose first line is
`# slow` runs only in the slow set; `# needs: <module>` runs only where that
optional extra is installed. Each `qtrain ...` command of a bash block is
composed with its overrides and checked by its task's `plan` (every key is
validated, no work is done); `qtrain --cfg job` runs for real.
"""

import importlib
import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qtrain import cli
from tests.test_cli import compose_experiment

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, flags=re.S)


def python_blocks():
    for i, (lang, code) in enumerate(b for b in BLOCKS if b[0] == "python"):
        first = code.splitlines()[0]
        marks = [pytest.mark.slow] if first.startswith("# slow") else []
        needs = first.split("# needs:", 1)[1].strip() if first.startswith("# needs:") else None
        yield pytest.param(code, needs, id=f"python-{i}", marks=marks)


def qtrain_commands():
    """Every qtrain command of the bash blocks (continued lines joined; a
    torchrun line's qtrain.cli arguments as a qtrain command)."""
    for lang, code in BLOCKS:
        if lang != "bash":
            continue
        for line in code.replace("\\\n", " ").splitlines():
            command = line.split("#", 1)[0].strip()
            if command.startswith("torchrun") and "-m qtrain.cli" in command:
                command = "qtrain" + command.split("-m qtrain.cli", 1)[1]
            if command.startswith("qtrain"):
                yield pytest.param(command, id=command[:60])


@pytest.mark.parametrize("code,needs", list(python_blocks()))
def test_python_block_runs(code, needs, tmp_path, monkeypatch):
    if needs and importlib.util.find_spec(needs) is None:  # installed, not imported: torchquantum imports only through qtrain.interop
        pytest.skip(f"{needs} is not installed")
    monkeypatch.chdir(tmp_path)  # anything a block writes lands here
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})


@pytest.mark.parametrize("command", list(qtrain_commands()))
def test_qtrain_command_is_valid(command, tmp_path):
    words = shlex.split(command)[1:]
    if "--cfg" in words:
        result = subprocess.run([sys.executable, "-m", "qtrain.cli", *words], capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert result.returncode == 0 and "task:" in result.stdout, result.stderr
        return
    # a sweep (-m) is checked at the first value of each swept key; hydra.* keys are Hydra's own
    first = [re.sub(r"=(\[[^\]]*\]),.*", r"=\1", w) if "=[" in w else re.sub(r"=([^,]*),.*", r"=\1", w) for w in words]  # sharing=[1],[2] -> [1]
    overrides = [w for w in first if w != "-m" and not w.startswith("hydra.")]
    if not torch.cuda.is_available():  # a GPU command is checked for everything but its device
        overrides = ["device=cpu" if w.startswith("device=cuda") else w for w in overrides]
    experiment = next((w.split("=", 1)[1] for w in overrides if w.startswith("experiment=")), "barren_plateau")
    cfg = compose_experiment(experiment, [w for w in overrides if not w.startswith("experiment=")])
    importlib.import_module(cli.TASKS[cfg.task]).plan(cfg)


def test_the_readme_has_blocks_of_both_kinds():
    assert len(list(python_blocks())) >= 4 and len(list(qtrain_commands())) >= 6
