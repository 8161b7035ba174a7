"""The public API says what it is (issue 23, section 2).

A public module is one with no underscore in its dotted path; a public name is an entry of its `__all__`, constants
included. Each public module declares `__all__`, each entry exists and has a docstring (functions and classes their
own; a constant a `#:` comment right above its assignment, or a string right below it), and every public module
imports with the optional simulators out of reach. Docstrings are Google style (mkdocstrings' default): a summary,
then `Args:` / `Returns:` / `Raises:` sections where the arguments are not self-evident.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import qtrain

# The peers of the `interop` and `bench` extras: never needed to import qtrain.
OPTIONAL_PEERS = ("pennylane", "torchquantum", "torchpack", "qiskit", "qiskit_aer", "openqasm3", "qulacs", "tensorcircuit")


def _public_modules() -> list[str]:
    names = ["qtrain"]
    for info in pkgutil.walk_packages(qtrain.__path__, prefix="qtrain."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


PUBLIC_MODULES = _public_modules()


@functools.cache
def _tree(module_name: str) -> ast.Module:
    module = importlib.import_module(module_name)
    return ast.parse(Path(inspect.getsourcefile(module)).read_text(), filename=module.__file__)


def _def_docstring(module_name: str, qualname: str) -> str | None:
    """The docstring written in the source of a top-level (or nested) def or class: `__doc__` alone would accept
    the signature that dataclasses and NamedTuples write for a class that has none."""
    body = _tree(module_name).body
    node = None
    for part in qualname.split("."):
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            return None
        body = node.body
    return ast.get_docstring(node)


def _constant_documented(module_name: str, name: str) -> bool:
    """A `#:` comment right above the assignment of `name` or a string literal right below it; an imported constant
    is looked up where it is assigned."""
    tree = _tree(module_name)
    lines = Path(inspect.getsourcefile(importlib.import_module(module_name))).read_text().splitlines()
    for i, node in enumerate(tree.body):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            nxt = tree.body[i + 1] if i + 1 < len(tree.body) else None
            below = isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)
            above = node.lineno >= 2 and lines[node.lineno - 2].lstrip().startswith("#:")
            return below or above
        if isinstance(node, ast.ImportFrom) and node.module and any(a.name == name and a.asname is None for a in node.names):
            return _constant_documented(node.module, name)
    return False


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_module_declares_all_and_documents_it(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert isinstance(getattr(module, "__all__", None), (list, tuple)), f"{module_name} declares no __all__"
    assert inspect.getdoc(module), f"{module_name} has no module docstring"
    assert len(set(module.__all__)) == len(module.__all__), f"{module_name}.__all__ repeats a name"
    undocumented = []
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ lists {name!r}, which it does not define"
        if name.startswith("__"):
            continue  # __version__ and friends: documented by convention, not by a docstring
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isroutine(obj):
            doc = _def_docstring(obj.__module__, obj.__qualname__)
        elif isinstance(obj, ModuleType):
            doc = inspect.getdoc(obj)
        else:
            doc = "constant" if _constant_documented(module_name, name) else None
        if not doc or not doc.strip():
            undocumented.append(name)
    assert not undocumented, f"{module_name}: no docstring for {undocumented}"


def _google_args(doc: str) -> list[str]:
    """The parameter names listed under a Google-style `Args:` section (none when the docstring has no such section)."""
    lines = doc.splitlines()
    stripped = [line.strip() for line in lines]
    if "Args:" not in stripped:
        return []
    names, indent = [], None
    for line in lines[stripped.index("Args:") + 1:]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        if depth < indent:
            break  # the next section (Returns:) or prose, back at the docstring's own indent
        if depth == indent:
            names.append(line.strip().split(":")[0].split(" (")[0].lstrip("*"))
    return names


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_google_args_sections_name_real_parameters(module_name: str) -> None:
    """Docstrings follow Google style: where one has an `Args:` section, every name in it is a parameter of the
    function (or of the class's __init__), so the generated reference never documents an argument that is gone."""
    module = importlib.import_module(module_name)
    for name in module.__all__:
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        doc = inspect.getdoc(obj) or ""
        try:
            params = set(inspect.signature(obj).parameters)
        except (TypeError, ValueError):
            continue  # a builtin without a signature: nothing to compare
        stray = [arg for arg in _google_args(doc) if arg not in params]
        assert not stray, f"{module_name}.{name}: Args lists {stray}, not among its parameters {sorted(params)}"


def test_google_args_reader_reads_a_section() -> None:
    doc = "Summary.\n\nArgs:\n    n_qubits: qubits.\n    seed (int): seed,\n        continued.\n\nReturns:\n    x: not an arg.\n"
    assert _google_args(doc) == ["n_qubits", "seed"]
    assert _google_args("No sections here.") == []


def test_public_modules_are_found() -> None:
    # the walk itself: a packaging or path change that hid the subpackages would pass every test above vacuously
    for expected in ("qtrain.builders", "qtrain.results", "qtrain.landscape", "qtrain.diagnostics", "qtrain.training",
                     "qtrain.interop", "qtrain.layers", "qtrain.interop.pennylane", "qtrain.engine"):
        assert expected in PUBLIC_MODULES


def test_every_public_module_imports_without_the_optional_peers() -> None:
    """One fresh interpreter in which importing any optional peer raises: every public module must still import, and
    none of the peers may end up in sys.modules (interop converters import theirs only when called)."""
    script = textwrap.dedent(f"""
        import importlib, importlib.abc, sys
        PEERS = {OPTIONAL_PEERS!r}
        class Refuse(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in PEERS:
                    raise ImportError(f"{{name}} is out of reach in this test")
                return None
        sys.meta_path.insert(0, Refuse())
        for name in {PUBLIC_MODULES!r}:
            importlib.import_module(name)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in PEERS)
        assert not loaded, loaded
        print("imported", len({PUBLIC_MODULES!r}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == f"imported {len(PUBLIC_MODULES)}"


def test_py_typed_ships_with_the_package() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[1]
    assert (root / "qtrain" / "py.typed").is_file()
    package_data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["qtrain"]
