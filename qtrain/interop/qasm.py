"""OpenQASM 2 and 3 in and out of qtrain circuits.

Reading goes through the `openqasm3` reference parser (it reads OpenQASM 2
files too); this module only walks the tree it returns. QASM's `q[i]` is
qtrain's qubit i, several registers numbered on in the order they are
declared. Only statevector layouts differ between tools: Qiskit's puts
qubit 0 at the least significant bit, qtrain's at the most significant.

Writing, OpenQASM 3: one `input float[64]` per parameter (a shared
parameter is one input used by several gates), `stdgates.inc` names, `U` for
qtrain's `u3` (the builtin U is exactly that matrix; stdgates' `u3` differs
from it by a global phase), and a `gate` definition for each gate outside
stdgates (`rxx ryy rzz rot`). OpenQASM 2 has no inputs: every angle is
bound from `theta`, and `qelib1.inc`'s gate set is completed by definitions
(`sx swap crx cry rxx ryy rzz rot`). Fixed angles are written by `repr`, so
a round trip gives the same floats to the bit. What a format cannot carry
(a `unitary` matrix, per-sample `pauli_rot` axes, a parameter name that is
not a QASM identifier) is refused with the gate or name, never dropped.

Reading: a defined gate whose name is a qtrain gate and whose body has the
same matrix (up to a global phase, which OpenQASM 2 cannot write) becomes
that gate; any other definition is inlined. A gate angle must be a
constant expression or an input by itself: qtrain parameters enter gates
as they are, so `rx(2*a)` is refused. Barriers are skipped; measurements
are skipped with a warning (qtrain reads expectation values off the state);
resets, classical control and gate modifiers are refused.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from qtrain.circuit import Circuit
from qtrain.engine.gates import GATES

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
RESERVED = {"pi", "tau", "euler", "q", "input", "output", "float", "angle", "qubit", "gate", "U", "CX", "include", "OPENQASM"}

#: qtrain gate -> (OpenQASM 3 name, OpenQASM 2 name)
NAMES = {"cnot": ("cx", "cx"), "u3": ("U", "u3"), "p": ("p", "u1")}
#: gates each version lacks, with their definitions (exact; QASM 2 bodies use qelib1 only)
DEFINED = {
    3: {
        "rzz": "gate rzz(t) a, b { cx a, b; rz(t) b; cx a, b; }",
        "rxx": "gate rxx(t) a, b { h a; h b; cx a, b; rz(t) b; cx a, b; h a; h b; }",
        "ryy": "gate ryy(t) a, b { sdg a; sdg b; h a; h b; cx a, b; rz(t) b; cx a, b; h a; h b; s a; s b; }",
        # (argument names of their own: Qiskit's importer misreads a gate argument named theta)
        "rot": "gate rot(p0, p1, p2) a { rz(p0) a; ry(p1) a; rz(p2) a; }",
    },
    2: {
        "sx": "gate sx a { sdg a; h a; sdg a; }",
        "swap": "gate swap a, b { cx a, b; cx b, a; cx a, b; }",
        "crx": "gate crx(t) a, b { rx(t/2) b; cz a, b; rx(-t/2) b; cz a, b; }",
        "cry": "gate cry(t) a, b { ry(t/2) b; cx a, b; ry(-t/2) b; cx a, b; }",
    },
}
DEFINED[2].update(DEFINED[3])
#: names the parsers' include files give, read as qtrain gates: name -> (qtrain gate, leading fixed angles)
BUILTIN = {name: (name, ()) for name in GATES if GATES[name].kind in ("fixed", "parametric")}
BUILTIN.update({"cx": ("cnot", ()), "CX": ("cnot", ()), "U": ("u3", ()), "u": ("u3", ()), "u1": ("p", ()), "phase": ("p", ()), "u2": ("u3", (math.pi / 2,))})
CONSTANTS = {"pi": math.pi, "π": math.pi, "tau": 2 * math.pi, "τ": 2 * math.pi, "euler": math.e, "ℇ": math.e}


def to_qasm(circuit: Circuit, version: int = 3, theta: Any = None) -> str:
    """OpenQASM text of `circuit` (see the module docstring). Version 3 keeps
    the parameters as inputs unless `theta` is given; version 2 binds them
    from `theta`, a (n_params,) tensor or sequence."""
    if version not in (2, 3):
        raise ValueError(f"version must be 2 or 3, got {version!r}")
    values = _bound(circuit, theta) if theta is not None or version == 2 else None
    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";'] if version == 3 else ["OPENQASM 2.0;", 'include "qelib1.inc";']
    used = dict.fromkeys(op.name for op in circuit.ops)
    lines += [DEFINED[version][name] for name in used if name in DEFINED[version]]
    if values is None:
        for name in circuit.parameters:
            if not IDENTIFIER.match(name) or name in RESERVED or name in BUILTIN:
                raise ValueError(f"parameter name {name!r} is not a free OpenQASM identifier; rename it (letters, digits, _) or pass theta to bind the angles")
            lines.append(f"input float[64] {name};")
    lines.append(f"qubit[{circuit.n_qubits}] q;" if version == 3 else f"qreg q[{circuit.n_qubits}];")
    for index, op in enumerate(circuit.ops):
        if GATES[op.name].kind not in ("fixed", "parametric"):
            raise ValueError(f"gate {index} ({op.name!r}): OpenQASM cannot carry a {'user matrix' if op.name == 'unitary' else 'per-sample Pauli axis'}")
        name = NAMES.get(op.name, (op.name, op.name))[version == 2]
        args = [repr(a) if p is None else repr(values[p]) if values is not None else circuit.parameters[p] for p, a in zip(op.params, op.angles)]
        lines.append(f"{name}{'(' + ', '.join(args) + ')' if args else ''} {', '.join(f'q[{q}]' for q in op.qubits)};")
    return "\n".join(lines) + "\n"


def _bound(circuit: Circuit, theta: Any) -> list[float]:
    if theta is None:
        if circuit.n_params:
            raise ValueError(f"OpenQASM 2 has no inputs: pass theta, the values of the parameters {circuit.parameters}")
        return []
    values = torch.as_tensor(theta, dtype=torch.float64).detach().cpu()
    if values.shape != (circuit.n_params,):
        raise ValueError(f"theta has shape {tuple(values.shape)}; expected ({circuit.n_params},) for parameters {circuit.parameters}")
    return values.tolist()


@dataclass(frozen=True)
class Param:
    """An angle that is a circuit input by itself."""

    name: str


def from_qasm(text: str) -> Circuit:
    """A circuit from OpenQASM 2 or 3 text (see the module docstring)."""
    ast = _openqasm3().ast
    program = _openqasm3().parse(text)
    reader = _Reader(ast)
    for statement in program.statements:
        reader.statement(statement)
    return reader.circuit()


class _Reader:
    def __init__(self, ast: Any) -> None:
        self.ast, self.registers, self.n_qubits = ast, {}, 0
        self.inputs: list[str] = []
        self.definitions: dict[str, Any] = {}
        self.gates: list[tuple[str, tuple[int, ...], tuple]] = []
        self.measured = False
        self.recognized: dict[str, bool] = {}  # defined gates found equal to the qtrain gate of their name

    def statement(self, node: Any) -> None:
        ast, kind = self.ast, type(node).__name__
        if isinstance(node, ast.Include):
            if node.filename not in ("stdgates.inc", "qelib1.inc"):
                raise ValueError(f"line {_line(node)}: include {node.filename!r}: qtrain reads stdgates.inc and qelib1.inc only")
        elif isinstance(node, ast.QubitDeclaration):
            size = 1 if node.size is None else int(_constant(node.size, {}))
            self.registers[node.qubit.name] = (self.n_qubits, size)
            self.n_qubits += size
        elif isinstance(node, ast.IODeclaration):
            if node.io_identifier.name != "input" or not isinstance(node.type, (ast.FloatType, ast.AngleType)):
                raise ValueError(f"line {_line(node)}: only `input float` (or angle) declarations become parameters")
            self.inputs.append(node.identifier.name)
        elif isinstance(node, ast.QuantumGateDefinition):
            self.definitions[node.name.name] = node
        elif isinstance(node, ast.QuantumGate):
            if node.modifiers:
                raise ValueError(f"line {_line(node)}: gate modifiers (ctrl @, inv @, pow @) are not supported")
            args = [_angle(a, {p: Param(p) for p in self.inputs}) for a in node.arguments]
            for qubits in self._broadcast(node):
                self.apply(node.name.name, args, qubits, _line(node))
        elif isinstance(node, ast.QuantumMeasurementStatement):
            self.measured = True
        elif (isinstance(node, ast.ClassicalDeclaration) and node.init_expression is None) or isinstance(node, (ast.QuantumBarrier, ast.QuantumPhase)):
            pass  # classical registers for measurements, barriers and global phases change no expectation value
        else:
            raise ValueError(f"line {_line(node)}: {kind} is not a unitary gate; qtrain circuits hold gates only")

    def apply(self, name: str, args: list, qubits: tuple[int, ...], line: int) -> None:
        definition = self.definitions.get(name)
        if definition is not None and not (name in BUILTIN and self._same_matrix(name, definition)):
            self._inline(definition, args, qubits, line)
            return
        if name == "id":
            return
        if name not in BUILTIN:
            raise ValueError(f"line {line}: unknown gate {name!r}; qtrain reads {', '.join(sorted(BUILTIN))} and gates defined in the file")
        gate, leading = BUILTIN[name]
        self.gates.append((gate, qubits, (*leading, *args)))

    def _inline(self, definition: Any, args: list, qubits: tuple[int, ...], line: int) -> None:
        """A defined gate's body, its arguments and qubits substituted."""
        if len(args) != len(definition.arguments) or len(qubits) != len(definition.qubits):
            raise ValueError(f"line {line}: gate {definition.name.name!r} takes {len(definition.arguments)} angles and {len(definition.qubits)} qubits")
        env = {p.name: a for p, a in zip(definition.arguments, args)}
        wires = {w.name: q for w, q in zip(definition.qubits, qubits)}
        for inner in definition.body:
            if isinstance(inner, self.ast.QuantumPhase):
                continue  # a global phase
            if not isinstance(inner, self.ast.QuantumGate) or inner.modifiers:
                raise ValueError(f"line {_line(inner)}: a gate body may hold only plain gates")
            self.apply(inner.name.name, [_angle(a, env) for a in inner.arguments], tuple(wires[w.name] for w in inner.qubits), line)

    def _same_matrix(self, name: str, definition: Any) -> bool:
        """Whether a definition's body is the qtrain gate of its name (up to a global phase)."""
        if name not in self.recognized:
            self.recognized[name] = self._compare(name, definition)
        return self.recognized[name]

    def _compare(self, name: str, definition: Any) -> bool:
        gate, leading = BUILTIN[name]
        k, n_args = len(definition.qubits), len(definition.arguments)
        if GATES[gate].n_qubits != k or GATES[gate].n_params != n_args + len(leading):
            return False
        angles = [0.3 + 0.7 * i for i in range(n_args)]
        inner = _Reader(self.ast)
        inner.definitions = {d: v for d, v in self.definitions.items() if d != name}
        inner._inline(definition, angles, tuple(range(k)), _line(definition))
        body = _matrix(inner.gates, k)
        expected = _matrix([(gate, tuple(range(k)), (*leading, *angles))], k)
        overlap = torch.trace(expected.conj().T @ body).abs().item() / 2**k
        return abs(overlap - 1) < 1e-9

    def _broadcast(self, node: Any) -> list[tuple[int, ...]]:
        """The qubits of each gate a statement applies: `h q;` on a register applies h to each of its qubits."""
        operands = []
        for operand in node.qubits:
            name = operand.name.name if isinstance(operand, self.ast.IndexedIdentifier) else operand.name
            if name not in self.registers:
                raise ValueError(f"line {_line(node)}: unknown qubit register {name!r}")
            start, size = self.registers[name]
            if isinstance(operand, self.ast.IndexedIdentifier):
                index = int(_constant(operand.indices[0][0], {}))
                if not 0 <= index < size:
                    raise ValueError(f"line {_line(node)}: {name}[{index}] is out of range for a register of {size}")
                operands.append([start + index])
            else:
                operands.append(list(range(start, start + size)))
        width = max(len(o) for o in operands)
        return [tuple(o[i] if len(o) > 1 else o[0] for o in operands) for i in range(width)]

    def circuit(self) -> Circuit:
        if self.measured:
            warnings.warn("measurements skipped: a qtrain circuit is its gates, and expectation values are read off the state", stacklevel=3)
        unused = [p for p in self.inputs if not any(isinstance(a, Param) and a.name == p for _, _, args in self.gates for a in args)]
        if unused:
            warnings.warn(f"inputs {unused} drive no gate and are not parameters of the circuit", stacklevel=3)
        return _build(self.gates, max(self.n_qubits, 1))


def _build(gates: list, n_qubits: int) -> Circuit:
    circuit = Circuit(n_qubits)
    for name, qubits, args in gates:
        values = tuple(a.name if isinstance(a, Param) else a for a in args)
        circuit.add(name, qubits, values if len(values) > 1 else (values[0] if values else None))
    return circuit


def _matrix(gates: list, k: int) -> torch.Tensor:
    """The (2^k, 2^k) matrix of fixed-angle gates, column j the image of basis state j."""
    states = _build(gates, k).state(initial_state=torch.eye(2**k, dtype=torch.complex128), dtype=torch.complex128)
    return states.T


def _angle(node: Any, env: dict[str, Any]) -> float | Param:
    """A gate argument: an input or argument by itself, or a constant."""
    name = getattr(node, "name", None)
    if type(node).__name__ == "Identifier" and isinstance(env.get(name), Param):
        return env[name]
    return _constant(node, env)


def _constant(node: Any, env: dict[str, Any]) -> float:
    kind = type(node).__name__
    if kind in ("FloatLiteral", "IntegerLiteral"):
        return float(node.value)
    if kind == "Identifier":
        value = env.get(node.name, CONSTANTS.get(node.name))
        if isinstance(value, Param):
            raise ValueError(f"line {_line(node)}: an angle computed from input {value.name!r}; qtrain parameters enter gates as they are (no 2*a, -a, a+b)")
        if value is None:
            raise ValueError(f"line {_line(node)}: unknown name {node.name!r} in an angle")
        return float(value)
    if kind == "UnaryExpression" and node.op.name in ("-", "+"):
        value = _constant(node.expression, env)
        return -value if node.op.name == "-" else value
    if kind == "BinaryExpression" and node.op.name in ("+", "-", "*", "/", "**"):
        lhs, rhs = _constant(node.lhs, env), _constant(node.rhs, env)
        return {"+": lhs + rhs, "-": lhs - rhs, "*": lhs * rhs, "/": lhs / rhs, "**": lhs**rhs}[node.op.name]
    if kind == "FunctionCall" and node.name.name in ("sin", "cos", "tan", "exp", "ln", "sqrt", "arcsin", "arccos", "arctan"):
        function = {"ln": math.log, "arcsin": math.asin, "arccos": math.acos, "arctan": math.atan}.get(node.name.name) or getattr(math, node.name.name)
        return function(*(_constant(a, env) for a in node.arguments))
    raise ValueError(f"line {_line(node)}: cannot evaluate the angle expression {kind}")


def _line(node: Any) -> int | str:
    return node.span.start_line if getattr(node, "span", None) else "?"


def _openqasm3() -> Any:
    try:
        import openqasm3
        import openqasm3.ast  # noqa: F401
    except ImportError as error:
        raise ImportError('reading OpenQASM needs the openqasm3 parser: pip install "qtrain[interop]" (or "openqasm3[parser]")') from error
    return openqasm3
