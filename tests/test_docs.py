"""The documentation site: every code block of docs/ runs, every page is in the navigation, every public module has an
API reference page, and `mkdocs build --strict` is clean where the docs extra is installed.

Each python block runs on its own (a guide's blocks stand alone); a block whose first line is `# slow` runs only in the
slow set, and `# needs: <module>` only where that optional extra is installed.
"""

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_readme import MARKS, check_qtrain_command, python_code, qtrain_commands

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
# the modules the API reference must cover (issue 23: public under their names)
PUBLIC_MODULES = ["qtrain", "qtrain.builders", "qtrain.layers", "qtrain.landscape", "qtrain.diagnostics",
                  "qtrain.training", "qtrain.results", "qtrain.interop", "qtrain.engine"]


def page_id(path: Path) -> str:
    return str(path.relative_to(DOCS))


def python_blocks():
    for page in PAGES:
        for i, code in enumerate(python_code(page.read_text())):
            first = code.splitlines()[0]
            marks = [pytest.mark.slow] if first.startswith("# slow") else []
            needs = first.split("# needs:", 1)[1].strip() if first.startswith("# needs:") else None
            yield pytest.param(code, needs, f"{page_id(page)}, python block {i}", id=f"{page_id(page)}-{i}", marks=marks)


def commands():
    for page in PAGES:
        for command in qtrain_commands(page.read_text()):
            yield pytest.param(command, id=f"{page_id(page)}: {command[:50]}")


@pytest.mark.parametrize("code,needs,where", list(python_blocks()))
def test_python_block_runs(code, needs, where, tmp_path, monkeypatch):
    if needs and importlib.util.find_spec(needs) is None:  # installed, not imported: torchquantum imports only through qtrain.interop
        pytest.skip(f"{needs} is not installed")
    monkeypatch.chdir(tmp_path)  # anything a block writes lands here
    exec(compile(code, where, "exec"), {"__name__": "docs"})


@pytest.mark.parametrize("command", list(commands()))
def test_qtrain_command_is_valid(command, tmp_path):
    check_qtrain_command(command, tmp_path)


def test_the_docs_have_blocks_of_both_kinds():
    blocks = list(python_blocks())
    assert len(blocks) >= 12 and len(list(commands())) >= 15
    marked = [p for p in blocks if p.values[0].startswith(MARKS)]
    assert len(marked) >= 3  # the interop blocks moved here from the README


def nav_pages(entries) -> list[str]:
    found = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        found += nav_pages(value) if isinstance(value, list) else [value]
    return found


def test_every_page_is_in_the_navigation():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    listed = nav_pages(config["nav"])
    assert sorted(listed) == sorted(page_id(p) for p in PAGES)


def test_every_public_module_has_a_reference_page():
    reference = "\n".join(p.read_text() for p in (DOCS / "reference").glob("*.md"))
    documented = set(re.findall(r"^::: ([\w.]+)$", reference, flags=re.M))
    assert set(PUBLIC_MODULES) <= documented, sorted(set(PUBLIC_MODULES) - documented)
    for module in documented:  # a reference to a module that moved would only show as an empty page
        assert importlib.util.find_spec(module) is not None, module


def hook_module():
    """docs/hooks/public_modules.py, which fills the reference page of every other public module at build time."""
    spec = importlib.util.spec_from_file_location("public_modules_hook", DOCS / "hooks" / "public_modules.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("mkdocs") is None, reason="the docs extra is not installed")
def test_the_site_builds_strictly_with_every_public_name(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    html = "\n".join(p.read_text() for p in (site / "reference").rglob("*.html"))
    anchors = set(re.findall(r'id="(qtrain[\w.]*)"', html))
    missing = []
    for module in hook_module().public_modules():
        for name in getattr(importlib.import_module(module), "__all__", []):
            # a name re-exported lazily (qtrain.interop) is documented in the submodule that defines it
            if f"{module}.{name}" not in anchors and not any(a.startswith(module + ".") and a.endswith("." + name) for a in anchors):
                missing.append(f"{module}.{name}")
    assert not missing, missing
    from qtrain.engine.gates import GATES  # Circuit's gate methods, made from the table at import, are listed too

    page = (site / "reference" / "qtrain" / "index.html").read_text()  # written methods by anchor, generated ones by the hook's list
    assert not [g for g in GATES if f"qtrain.Circuit.{g}" not in anchors and f"<code>Circuit.{g}(" not in page]
