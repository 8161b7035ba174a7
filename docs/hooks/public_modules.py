"""MkDocs hook: the API reference page `reference/modules.md` lists every public module that no other reference page
documents, found at build time, so that a module added, renamed or made private needs no edit here.

A public module has no underscore in its dotted path (issue 23); mkdocstrings then shows the names of its `__all__`.
"""

from __future__ import annotations

import pkgutil
import re
from pathlib import Path

MARKER = "<!-- public modules -->"
GATE_METHODS = "<!-- gate methods -->"


def public_modules() -> list[str]:
    """Every module of qtrain with no underscore in its dotted path, sorted."""
    import qtrain

    found = ["qtrain"] + [m.name for m in pkgutil.walk_packages(qtrain.__path__, prefix="qtrain.")]
    return sorted(name for name in found if not any(part.startswith("_") for part in name.split(".")))


def documented(reference_dir: Path) -> set[str]:
    """Modules an explicit `::: module` line of a reference page already shows."""
    text = "\n".join(p.read_text() for p in reference_dir.glob("*.md"))
    return set(re.findall(r"^::: ([\w.]+)$", text, flags=re.M))


def gate_methods() -> str:
    """Circuit's methods that are made from the gate table when qtrain.circuit loads: mkdocstrings reads the
    source (statically) and would not see them, so this lists each with its signature and docstring."""
    import inspect

    from qtrain import Circuit
    from qtrain.engine.gates import GATES

    source = inspect.getsource(Circuit)  # the methods written in the class, which mkdocstrings shows itself
    written = {name for name in GATES if f"    def {name}(" in source}
    rows = []
    for name in GATES:
        method = getattr(Circuit, name, None)
        if method is None or name in written:
            continue
        signature = str(inspect.signature(method)).replace("(self, ", "(", 1)
        rows.append(f"`Circuit.{name}{signature}`\n:   {inspect.getdoc(method) or ''}".replace("\n\n", "\n\n    "))
    return "\n\n".join(rows)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 (MkDocs' hook signature)
    if GATE_METHODS in markdown:
        markdown = markdown.replace(GATE_METHODS, gate_methods())
    if MARKER not in markdown:
        return markdown
    shown = documented(Path(config["docs_dir"]) / "reference")
    rest = [name for name in public_modules() if name not in shown]
    return markdown.replace(MARKER, "\n\n".join(f"::: {name}" for name in rest))
