"""Every code block of the README runs, so the README cannot drift from the code.

The README's python blocks run in order, in one namespace, with the base install: a tour a reader follows top to
bottom. Each `qtrain ...` command of a bash block is composed with its overrides and checked by its task's `plan`
(every key is validated, no work is done); `qtrain --cfg job` runs for real. The helpers here also check the docs
(tests/test_docs.py), where a block whose first line is `# slow` runs only in the slow set and `# needs: <module>` only
where that optional extra is installed.
"""

import importlib
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from qtrain import cli
from tests.test_cli import compose_experiment

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
MARKS = ("# slow", "# needs:")


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block of a markdown text."""
    return re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S)


def python_code(text: str) -> list[str]:
    return [code for lang, code in code_blocks(text) if lang == "python"]


def qtrain_commands(text: str) -> Iterator[str]:
    """Every qtrain command of the bash blocks (continued lines joined; a torchrun line's qtrain.cli arguments as a
    qtrain command)."""
    for lang, code in code_blocks(text):
        if lang != "bash":
            continue
        for line in code.replace("\\\n", " ").splitlines():
            command = line.split("#", 1)[0].strip()
            if command.startswith("torchrun") and "-m qtrain.cli" in command:
                command = "qtrain" + command.split("-m qtrain.cli", 1)[1]
            if command.startswith("qtrain"):
                yield command


def check_qtrain_command(command: str, tmp_path: Path) -> None:
    """Compose a command's config and plan it (no work); `--cfg` commands run for real."""
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


def test_readme_python_blocks_run_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything a block writes lands here
    namespace = {"__name__": "readme"}
    for i, code in enumerate(python_code(README)):
        exec(compile(code, f"README.md, python block {i}", "exec"), namespace)
    assert "energy" in namespace and namespace["energy"].shape == (16,)  # the tour's first block ran


def test_readme_has_no_marked_blocks():
    """A block that needs an extra or minutes belongs in the docs: the README runs with the base install."""
    marked = [code.splitlines()[0] for code in python_code(README) if code.startswith(MARKS)]
    assert not marked, marked


@pytest.mark.parametrize("command", [pytest.param(c, id=c[:60]) for c in qtrain_commands(README)])
def test_qtrain_command_is_valid(command, tmp_path):
    check_qtrain_command(command, tmp_path)


def test_the_readme_is_short_and_links_into_the_docs():
    assert len(README.splitlines()) <= 300
    links = re.findall(r"\]\((docs/[^)#]+)", README)
    assert len(links) >= 10
    missing = [link for link in links if not (ROOT / link).is_file()]
    assert not missing, missing


def test_the_readme_has_blocks_of_both_kinds():
    assert len(python_code(README)) >= 4 and len(list(qtrain_commands(README))) >= 4
