"""Circuits as text: `print(circuit)` draws qubits as wires, gates as boxes
with their parameter names, packed into columns that never overlap.

    q0: ─RY(0.785)─●───────RZ(theta_0)─
                   │
    q1: ─RY(0.785)─⊕─●─────────────────
                     │
    q2: ─RY(0.785)───⊕─────────────────
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["draw", "gate_label"]

if TYPE_CHECKING:
    from qtrain.circuit import Circuit, Op

WIRE, LINK = "─", "│"
#: Symbols of the two-qubit gates, one per qubit in the gate's order.
TWO_QUBIT = {"cz": ("●", "●"), "cnot": ("●", "⊕"), "swap": ("×", "×")}
CONTROLLED = ("crx", "cry", "crz", "cp", "cu3", "cu")


def gate_label(op: Op, names: tuple[str, ...]) -> str:
    """A gate's text: its name in capitals, its parameter names or fixed angles."""
    args = ", ".join(names[p] if p is not None else f"{a:.3g}" for p, a in zip(op.params, op.angles))
    if op.name in ("rx", "ry", "rz", "pauli_rot"):
        axis = op.name[1].upper() if op.name != "pauli_rot" else "P"  # P: a Pauli axis per sample
        return f"R{axis}({args})"
    label = "U" if op.name == "unitary" else op.name.upper()
    return f"{label}({args})" if args else label


def _columns(circuit: Circuit) -> list[tuple[dict[int, str], set[int]]]:
    """Gates packed left to right: each goes into the first column after every
    column that holds one of the wires it spans (its qubits and those between).
    -> per column, the symbol on each wire and the wires a link runs below."""
    columns: list[dict[int, str]] = []
    links: list[set[int]] = []  # wires a vertical line crosses, per column
    free = [0] * circuit.n_qubits  # first free column per wire
    for op in circuit.ops:
        low, high = min(op.qubits), max(op.qubits)
        column = max(free[low : high + 1])
        if column == len(columns):
            columns.append({})
            links.append(set())
        symbols = TWO_QUBIT.get(op.name, (gate_label(op, circuit.parameters),) * len(op.qubits))
        if op.name in CONTROLLED:  # the control as a dot, the rotation on the target
            symbols = ("●", gate_label(op, circuit.parameters)[1:])
        for q, symbol in zip(op.qubits, symbols):
            columns[column][q] = symbol
        if high > low:
            links[column].update(range(low, high))  # a link below each wire from low to high - 1
        for q in range(low, high + 1):
            free[q] = column + 1
    return list(zip(columns, links))


def draw(circuit: Circuit, max_width: int = 100) -> str:
    """The circuit as text, wrapped into blocks of at most `max_width` characters."""
    n = circuit.n_qubits
    prefix = [f"q{q}: " for q in range(n)]
    pad = max(len(p) for p in prefix)
    cells: list[tuple[int, list[str], list[str]]] = []  # (width, one text per wire, one per gap)
    for column, links in _columns(circuit):
        width = max(len(s) for s in column.values()) + 2
        wires = [column.get(q, "").center(width - 2, WIRE).center(width, WIRE) for q in range(n)]
        gaps = [(LINK if q in links else " ").center(width) for q in range(n - 1)]
        cells.append((width, wires, gaps))
    blocks: list[list[tuple[int, list[str], list[str]]]] = []
    current: list[tuple[int, list[str], list[str]]] = []
    used = pad + 1
    for cell in cells:
        if current and used + cell[0] > max_width:
            blocks.append(current)
            current, used = [], pad + 1
        current.append(cell)
        used += cell[0]
    blocks.append(current)
    out = []
    for block in blocks:
        for q in range(n):
            out.append(prefix[q].rjust(pad) + WIRE + "".join(c[1][q] for c in block) + WIRE)
            if q < n - 1:
                out.append(" " * (pad + 1) + "".join(c[2][q] for c in block))
        out.append("")
    return "\n".join(line.rstrip() for line in out).rstrip("\n")
