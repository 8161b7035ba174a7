"""OpenQASM 2 and 3 in and out of qtrain circuits.

Reading goes through the `openqasm3` reference parser, and this module walks
the tree it returns; an `OPENQASM 2` file goes through the fast line-by-line
reader of `qtrain.interop._qasm2` instead (the reference parser takes about
50 s for 200,000 gates), which feeds the same walker and refuses, at its
line, whatever is outside its strict grammar. QASM's `q[i]` is
qtrain's qubit i, several registers numbered on in the order they are
declared (physical qubits `$i`, in a file that declares no register, are
qubit i). Only statevector layouts differ between tools: Qiskit's puts
qubit 0 at the least significant bit, qtrain's at the most significant, so
a Qiskit `Statevector` is qtrain's state with the bits of its index reversed.

Writing, OpenQASM 3: one `input float[64]` per parameter, in the order of
`circuit.parameters` (a shared parameter is one input used by several
gates), `stdgates.inc` names, `U` for qtrain's `u3` (the builtin U is
exactly that matrix, while stdgates' `u3` differs from it by a global phase:
writing `U` keeps the round trip exact to the bit, phase included), and a
`gate` definition for each gate outside stdgates (`rxx ryy rzz rot rzx cu3`).
OpenQASM 2 has no inputs: every angle is bound from `theta`, and
`qelib1.inc`'s gate set is completed by definitions (`sx swap crx cry rxx
ryy rzz rot rzx cu`, exact up to a global phase, which OpenQASM 2 cannot
write); `cp` is written `cu1`, the name Qiskit's OpenQASM 2 reader knows.
Fixed angles are written by `repr` (with a decimal point, as OpenQASM 2's
grammar wants), so a round trip gives the same floats to the bit.

What a format cannot carry is refused with the gate or name, never dropped:
a `unitary` matrix, per-sample `pauli_rot` axes, and a parameter name that
is not a free OpenQASM 3 identifier (a keyword such as `in` or `end`, a
constant such as `pi`, a gate name such as `cx`, or one with characters
like `@` or `[`: the parser's lexer decides). Names are not mangled, so what
you read back is what you wrote; rename the parameter, or pass `theta` to
bind the angles instead.

Reading: a defined gate whose name is a qtrain gate and whose body has the
same matrix (up to a global phase) becomes that gate; any other definition
is inlined. The stdgates/qelib1 gates qtrain lacks (`cy ch cp cphase cu1
cu3 cu csx sxdg ccx cswap id u0`) are inlined from exact decompositions
(`cu` is Qiskit's CUGate, qelib1's definition, which Qiskit writes in both
versions), `u2(f, l)` reads as `u3(pi/2, f, l)`, and stdgates' `u3` as
qtrain's (their global phase dropped). A gate angle must be a constant
expression (`const` declarations included) or an input by itself: qtrain parameters enter gates
as they are, so `rx(2*a)` (or a `cp(a)`, which halves its angle) is
refused. Inputs become parameters in the order of their first use (qtrain's
rule). Barriers, global phases and a `reset` of a fresh qubit are skipped
(they change no state); measurements are skipped with a warning (qtrain reads
expectation values off the state) as long as no gate acts on the measured
qubit afterwards; mid-circuit measurement, other resets, classical control
and gate modifiers are refused.
"""

from __future__ import annotations

import functools
import math
import re
import warnings
from typing import Any

import torch

from qtrain.circuit import Circuit, Op
from qtrain.engine.gates import GATES
from qtrain.interop._tracing import fixed_angle

__all__ = ["combine", "from_qasm", "to_qasm"]

INSTALL = 'pip install "qtrain[interop]" (or "openqasm3[parser]")'

#: qtrain gate -> (OpenQASM 3 name, OpenQASM 2 name)
NAMES = {"cnot": ("cx", "cx"), "u3": ("U", "u3"), "p": ("p", "u1"), "cp": ("cp", "cu1")}
#: gates each version lacks, with their definitions (exact; QASM 2 bodies use qelib1 only)
DEFINED = {
    3: {
        "rzz": "gate rzz(t) a, b { cx a, b; rz(t) b; cx a, b; }",
        "rxx": "gate rxx(t) a, b { h a; h b; cx a, b; rz(t) b; cx a, b; h a; h b; }",
        "ryy": "gate ryy(t) a, b { sdg a; sdg b; h a; h b; cx a, b; rz(t) b; cx a, b; h a; h b; s a; s b; }",
        # (argument names of their own: Qiskit's importer misreads a gate argument named theta)
        "rot": "gate rot(p0, p1, p2) a { rz(p0) a; ry(p1) a; rz(p2) a; }",
        "rzx": "gate rzx(t) a, b { h b; cx a, b; rz(t) b; cx a, b; h b; }",
        "cu3": "gate cu3(p0, p1, p2) a, b { cu(p0, p1, p2, 0) a, b; }",  # stdgates' cu is Qiskit's CUGate, exactly
    },
    2: {
        "sx": "gate sx a { sdg a; h a; sdg a; }",
        "swap": "gate swap a, b { cx a, b; cx b, a; cx a, b; }",
        "crx": "gate crx(t) a, b { rx(t/2) b; cz a, b; rx(-t/2) b; cz a, b; }",
        "cry": "gate cry(t) a, b { ry(t/2) b; cx a, b; ry(-t/2) b; cx a, b; }",
        "cu": "gate cu(p0, p1, p2, p3) a, b { u1(p3) a; cu3(p0, p1, p2) a, b; }",  # qelib1's cu3 is exact: u1 is relative here
    },
}
DEFINED[2].update({name: text for name, text in DEFINED[3].items() if name != "cu3"})  # cu3 is qelib1's
#: names the parsers' include files give, read as qtrain gates: name -> (qtrain gate, leading fixed angles)
BUILTIN: dict[str, tuple[str, tuple[float, ...]]] = {
    name: (name, ()) for name in GATES if GATES[name].kind in ("fixed", "parametric")
}
BUILTIN.update({"cx": ("cnot", ()), "CX": ("cnot", ()), "U": ("u3", ()), "u": ("u3", ()), "u1": ("p", ()), "phase": ("p", ()), "u2": ("u3", (math.pi / 2,))})
BUILTIN.update({"cu1": ("cp", ()), "cphase": ("cp", ())})
#: stdgates.inc and qelib1.inc gates qtrain has no row for, as exact decompositions into qtrain gates
#: (checked against dense matrices in the tests); inlined when a file uses them without defining them.
#: Qiskit's qasm2.dumps writes rccx, c3sqrtx, c3x, c4x under their qelib1 names without a definition.
#: C^k P(l) = CP(l/2) from the last control, C^(k-1) X onto it, CP(-l/2), C^(k-1) X, C^(k-1) P(l/2) from
#: the others: with the last control c and z the others' AND, l/2 (c - (c xor z) + z) = l c z on the target.
#: c3x = H C^3 P(pi) H, c3sqrtx = H C^3 P(pi/2) H (SX = H S H exactly); c4x = H C^4 P(pi) H, its final
#: C^3 P(pi/2) written H c3sqrtx H (the H's meet and cancel). rccx and rc3x (Qiskit's rcccx) are the
#: relative-phase Toffolis, whose phases are part of their definition: H, T, CX sequences, as qelib1's.
LIBRARY = """OPENQASM 3.0;
gate cy a, b { sdg b; cx a, b; s b; }
gate ch a, b { ry(-pi/4) b; cz a, b; ry(pi/4) b; }
gate csx a, b { h b; cp(pi/2) a, b; h b; }
gate sxdg a { sx a; sx a; sx a; }
gate ccx a, b, c { h c; cx b, c; tdg c; cx a, c; t c; cx b, c; tdg c; cx a, c; t b; t c; h c; cx a, b; t a; tdg b; cx a, b; }
gate cswap a, b, c { cx c, b; ccx a, b, c; cx c, b; }
gate c3x a, b, c, d { h d; cp(pi/2) c, d; ccx a, b, c; cp(-pi/2) c, d; ccx a, b, c; cp(pi/4) b, d; cx a, b; cp(-pi/4) b, d; cx a, b; cp(pi/4) a, d; h d; }
gate c3sqrtx a, b, c, d { h d; cp(pi/4) c, d; ccx a, b, c; cp(-pi/4) c, d; ccx a, b, c; cp(pi/8) b, d; cx a, b; cp(-pi/8) b, d; cx a, b; cp(pi/8) a, d; h d; }
gate c3sx a, b, c, d { c3sqrtx a, b, c, d; }
gate c4x a, b, c, d, e { h e; cp(pi/2) d, e; c3x a, b, c, d; cp(-pi/2) d, e; c3x a, b, c, d; h e; c3sqrtx a, b, c, e; }
gate rccx a, b, c { h c; t c; cx b, c; tdg c; cx a, c; t c; cx b, c; tdg c; h c; }
gate rc3x a, b, c, d { h d; t d; cx c, d; tdg d; h d; cx a, d; t d; cx b, d; tdg d; cx a, d; t d; cx b, d; tdg d; h d; t d; cx c, d; tdg d; h d; }
gate rcccx a, b, c, d { rc3x a, b, c, d; }
gate id a { }
gate u0(g) a { }
"""
STDGATES = {"p", "x", "y", "z", "h", "s", "sdg", "t", "tdg", "sx", "rx", "ry", "rz", "cx", "cy", "cz", "cp", "crx", "cry", "crz", "ch", "swap", "ccx", "cswap", "cu", "CX", "phase", "cphase", "id", "u1", "u2", "u3"}
QELIB1 = {"u3", "u2", "u1", "cx", "id", "u0", "u", "p", "x", "y", "z", "h", "s", "sdg", "t", "tdg", "rx", "ry", "rz", "sx", "sxdg", "cz", "cy", "swap", "ch", "ccx", "cswap", "crx", "cry", "crz", "cu1", "cp", "cu3", "csx", "cu", "rxx", "rzz", "rccx", "rc3x", "c3x", "c3sqrtx", "c4x"}
CONSTANTS = {"pi": math.pi, "π": math.pi, "tau": 2 * math.pi, "τ": 2 * math.pi, "euler": math.e, "ℇ": math.e}
#: names a parameter may not take although they parse as identifiers: the register, builtins, constants, gates
RESERVED = {"q", "U", "CX", "gphase"} | set(CONSTANTS) | STDGATES | QELIB1 | set(BUILTIN) | set(GATES)
WORD = re.compile(r"[^\W\d]\w*\Z")  # a first filter (letters, digits, _); the parser has the last word


def to_qasm(circuit: Circuit, version: int = 3, theta: Any = None) -> str:
    """OpenQASM text of `circuit` (see the module docstring). Version 3 keeps
    the parameters as inputs unless `theta` is given; version 2 binds them
    from `theta`, a (n_params,) tensor or sequence. QASM's q[i] is qubit i
    (only statevector layouts differ: Qiskit's is little-endian, qtrain's
    qubit 0 is the most significant bit)."""
    if version not in (2, 3):
        raise ValueError(f"version must be 2 or 3, got {version!r}")
    for index, op in enumerate(circuit.ops):
        if GATES[op.name].kind not in ("fixed", "parametric"):
            raise ValueError(f"gate {index} ({op.name!r}): OpenQASM cannot carry a {'user matrix' if op.name == 'unitary' else 'per-sample Pauli axis'}")
    values = _bound(circuit, theta) if theta is not None or version == 2 else None
    if values is None:
        _check_names(circuit.parameters)
    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";'] if version == 3 else ["OPENQASM 2.0;", 'include "qelib1.inc";']
    used = dict.fromkeys(op.name for op in circuit.ops)
    lines += [DEFINED[version][name] for name in used if name in DEFINED[version]]
    if values is None:
        lines += [f"input float[64] {name};" for name in circuit.parameters]
    lines.append(f"qubit[{circuit.n_qubits}] q;" if version == 3 else f"qreg q[{circuit.n_qubits}];")
    for op in circuit.ops:
        name = NAMES.get(op.name, (op.name, op.name))[version == 2]
        args = [_real(fixed_angle(a)) if p is None else _real(values[p]) if values is not None else circuit.parameters[p] for p, a in zip(op.params, op.angles)]
        lines.append(f"{name}{'(' + ', '.join(args) + ')' if args else ''} {', '.join(f'q[{q}]' for q in op.qubits)};")
    return "\n".join(lines) + "\n"


def _real(value: float) -> str:
    """The shortest text that reads back as this float, with a decimal point
    (OpenQASM 2's `real` needs one: 1e-05 is written 1.0e-05)."""
    text = repr(float(value))
    mantissa, e, exponent = text.partition("e")
    return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text


def _bound(circuit: Circuit, theta: Any) -> list[float]:
    if theta is None:
        if circuit.n_params:
            raise ValueError(f"OpenQASM 2 has no inputs: pass theta, the values of the parameters {circuit.parameters}")
        return []
    values = torch.as_tensor(theta, dtype=torch.float64).detach().cpu()
    if values.shape != (circuit.n_params,):
        raise ValueError(f"theta has shape {tuple(values.shape)}; expected ({circuit.n_params},) for parameters {circuit.parameters}")
    if not torch.isfinite(values).all():
        bad = [name for name, v in zip(circuit.parameters, values.tolist()) if not math.isfinite(v)]
        raise ValueError(f"theta is not finite for parameters {bad}")
    return values.tolist()


def _check_names(names: tuple[str, ...]) -> None:
    """Refuse, naming it, a parameter name that is not a free OpenQASM 3
    identifier. The parser's own lexer decides what is an identifier (not a
    keyword such as `in`, `end` or `im`): one pass over all the names."""
    advice = "rename it (letters, digits, _; not a keyword, constant or gate name) or pass theta to bind the angles"
    for name in names:
        if not WORD.match(name) or name in RESERVED:
            raise ValueError(f"parameter name {name!r} is not a free OpenQASM 3 identifier; {advice}")
    if not names:
        return
    lexed = _lexed(" ".join(names))
    if [text for text, _ in lexed] == list(names) and all(identifier for _, identifier in lexed):
        return
    for name in names:
        if _lexed(name) != [(name, True)]:
            raise ValueError(f"parameter name {name!r} is not a free OpenQASM 3 identifier (a keyword of the language, or a character it does not allow in names); {advice}")


def _lexed(text: str) -> list[tuple[str, bool]]:
    """(text, is an identifier) per token the openqasm3 lexer reads in `text`."""
    _openqasm3()
    from antlr4 import InputStream
    from openqasm3.parser import qasm3Lexer

    lexer = qasm3Lexer(InputStream(text))
    lexer.removeErrorListeners()  # a character it cannot read makes no token: the texts then differ
    return [(token.text, token.type == qasm3Lexer.Identifier) for token in lexer.getAllTokens()]


class _Param:
    """An angle that is a circuit input by itself."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def from_qasm(text: str, reader: str = "auto") -> Circuit:
    """A circuit from OpenQASM 2 or 3 text (see the module docstring). QASM's
    q[i] is qubit i; `input float`s become parameters, named as in the file.
    `reader`: "auto" (the fast reader for an `OPENQASM 2` file, else the
    reference parser), "fast" (OpenQASM 2 only) or "reference"."""
    if reader not in ("auto", "fast", "reference"):
        raise ValueError(f"reader must be 'auto', 'fast' or 'reference', got {reader!r}")
    if not isinstance(text, str):
        raise TypeError(f"OpenQASM text must be a str, got {type(text).__name__}")
    from qtrain.interop import _qasm2 as qasm2

    if reader == "fast" or (reader == "auto" and qasm2.is_qasm2(text)):
        return qasm2.read(text)
    openqasm3 = _openqasm3()
    program = _parse(openqasm3, text)
    visitor = _Reader(openqasm3.ast)
    for statement in program.statements:
        visitor.statement(statement)
    return visitor.circuit()


def _parse(openqasm3: Any, text: str) -> Any:
    try:
        return openqasm3.parse(text)
    except openqasm3.parser.QASM3ParsingError as error:
        raise ValueError(f"not valid OpenQASM: {_where(error) or error}") from error


def _where(error: BaseException) -> str:
    """Where the parser gave up, from the ANTLR exception under its error."""
    cause = error.__cause__
    recognition = cause.args[0] if cause is not None and cause.args else cause
    token = getattr(recognition, "offendingToken", None)
    return f"line {token.line}, column {token.column + 1}, at {token.text!r}" if token is not None else ""


@functools.lru_cache(maxsize=1)
def _library() -> dict[str, Any]:
    openqasm3 = _openqasm3()
    return {node.name.name: node for node in openqasm3.parse(LIBRARY).statements if isinstance(node, openqasm3.ast.QuantumGateDefinition)}


class _Reader:
    def __init__(self, ast: Any) -> None:
        self.ast = ast
        self.registers: dict[str, tuple[int, int]] = {}
        self.n_qubits = 0
        self.physical: set[int] = set()
        self.inputs: list[str] = []
        self.constants: dict[str, float] = {}
        self.definitions: dict[str, Any] = {}
        self.gates: list[tuple[str, tuple[int, ...], tuple, int | str]] = []
        self.touched: set[int] = set()
        self.measured: dict[int, int | str] = {}  # qubit -> line of its measurement
        self.recognized: dict[str, bool] = {}  # defined gates found equal to the qtrain gate of their name
        self.inlining: list[str] = []  # the definitions being inlined, innermost last: a gate may not use itself

    def statement(self, node: Any) -> None:
        ast, line = self.ast, _line(node)
        if isinstance(node, ast.Include):
            if node.filename not in ("stdgates.inc", "qelib1.inc"):
                raise ValueError(f"line {line}: include {node.filename!r}: qtrain reads stdgates.inc and qelib1.inc only")
        elif isinstance(node, ast.QubitDeclaration):
            size = 1 if node.size is None else int(_constant(node.size, self.constants))
            self.registers[node.qubit.name] = (self.n_qubits, size)
            self.n_qubits += size
        elif isinstance(node, ast.IODeclaration):
            if node.io_identifier.name == "output" and isinstance(node.type, ast.BitType):
                return  # a classical output for measurements
            if node.io_identifier.name != "input" or not isinstance(node.type, (ast.FloatType, ast.AngleType)):
                raise ValueError(f"line {line}: only `input float` (or angle) declarations become parameters")
            self.inputs.append(node.identifier.name)
        elif isinstance(node, ast.ConstantDeclaration):
            self.constants[node.identifier.name] = _constant(node.init_expression, self.constants)
        elif isinstance(node, ast.QuantumGateDefinition):
            self.definitions[node.name.name] = node
        elif isinstance(node, ast.QuantumGate):
            if node.modifiers:
                raise ValueError(f"line {line}: gate modifiers (ctrl @, inv @, pow @) are not supported")
            env = {**self.constants, **{p: _Param(p) for p in self.inputs}}
            args = [_angle(a, env) for a in node.arguments]
            for qubits in self._broadcast(node.qubits, line):
                self.apply(node.name.name, args, qubits, line)
        elif isinstance(node, ast.QuantumPhase):
            if node.modifiers:
                raise ValueError(f"line {line}: gate modifiers (ctrl @ gphase ...) are not supported")
            # a global phase changes no expectation value
        elif isinstance(node, ast.QuantumMeasurementStatement):
            self._measure(node.measure, line)
        elif isinstance(node, ast.ClassicalDeclaration) and isinstance(node.init_expression, ast.QuantumMeasurement):
            self._measure(node.init_expression, line)
        elif isinstance(node, ast.QuantumReset):
            reset = {q for group in self._broadcast([node.qubits], line) for q in group}
            if reset & self.touched:
                raise ValueError(f"line {line}: reset of a qubit a gate has acted on; qtrain circuits are unitary")
            # a reset of a qubit still in |0> changes nothing
        elif (isinstance(node, ast.ClassicalDeclaration) and node.init_expression is None) or isinstance(node, ast.QuantumBarrier):
            pass  # classical registers for measurements, barriers
        else:
            raise ValueError(f"line {line}: {type(node).__name__} is not a unitary gate; qtrain circuits hold gates only")

    def _measure(self, measurement: Any, line: int | str) -> None:
        for (qubit,) in self._broadcast([measurement.qubit], line):
            self.measured.setdefault(qubit, line)

    def apply(self, name: str, args: list, qubits: tuple[int, ...], line: int | str, library: bool = False) -> None:
        """One gate of the file (or of a body being inlined: `library` for the
        bodies of LIBRARY, whose names never mean the file's own definitions)."""
        for q in qubits if self.measured else ():
            if q in self.measured:
                raise ValueError(f"line {line}: gate {name!r} on qubit {q} after its measurement on line {self.measured[q]}; qtrain circuits are unitary (no mid-circuit measurement)")
        definition = None if library else self.definitions.get(name)
        if definition is not None and not (name in BUILTIN and self._same_matrix(name, definition)):
            self._inline(definition, args, qubits, line)
        elif name in BUILTIN:
            gate, leading = BUILTIN[name]
            spec = GATES[gate]
            if len(leading) + len(args) != spec.n_params or len(qubits) != spec.n_qubits:
                wanted = f"{spec.n_params - len(leading)} angles and {spec.n_qubits} qubits"
                raise ValueError(f"line {line}: gate {name!r} takes {wanted}, got {len(args)} and {len(qubits)}")
            if len(qubits) > 1 and len(set(qubits)) != len(qubits):  # here, not when the circuit is built: at its line, before the rest is read
                raise ValueError(f"line {line}: gate {len(self.gates)} ({gate!r}): repeated qubit in {qubits}")
            self.touched.update(qubits)
            self.gates.append((gate, qubits, (*leading, *args), line))
        elif name in _library():
            self._inline(_library()[name], args, qubits, line)
        else:
            known = sorted(set(BUILTIN) | set(_library()))
            raise ValueError(f"line {line}: unknown gate {name!r}; qtrain reads {', '.join(known)} and gates defined in the file")

    def _inline(self, definition: Any, args: list, qubits: tuple[int, ...], line: int | str) -> None:
        """A defined gate's body, its arguments and qubits substituted."""
        name = definition.name.name
        if len(args) != len(definition.arguments) or len(qubits) != len(definition.qubits):
            raise ValueError(f"line {line}: gate {name!r} takes {len(definition.arguments)} angles and {len(definition.qubits)} qubits, got {len(args)} and {len(qubits)}")
        if name in self.inlining:
            raise ValueError(f"line {line}: gate {name!r} is defined in terms of itself ({' -> '.join([*self.inlining, name])})")
        env = {p.name: a for p, a in zip(definition.arguments, args)}
        wires = {w.name: q for w, q in zip(definition.qubits, qubits)}
        self.inlining.append(name)
        try:
            self._inline_body(definition, name, env, wires, line)
        finally:
            self.inlining.pop()

    def _inline_body(self, definition: Any, name: str, env: dict[str, Any], wires: dict[str, int], line: int | str) -> None:
        for inner in definition.body:
            if isinstance(inner, self.ast.QuantumPhase) and not inner.modifiers:
                continue  # a global phase
            if not isinstance(inner, self.ast.QuantumGate) or inner.modifiers:
                raise ValueError(f"line {line}: gate {name!r}: a gate body may hold only plain gates, got {type(inner).__name__}")
            try:
                inner_args = [_angle(a, env) for a in inner.arguments]
            except ValueError as error:
                where = "stdgates/qelib1, inlined" if definition is _library().get(name) else f"defined on line {_line(definition)}"
                raise ValueError(f"line {line}: in the body of gate {name!r} ({where}): {re.sub(r'^line [^:]*: ', '', str(error))}") from None
            strangers = [getattr(w.name, "name", w.name) for w in inner.qubits if not isinstance(w, self.ast.Identifier) or w.name not in wires]
            if strangers:
                raise ValueError(f"line {line}: in the body of gate {name!r}: {strangers[0]!r} is not one of its qubit arguments {list(wires)}")
            self.apply(inner.name.name, inner_args, tuple(wires[w.name] for w in inner.qubits), line, library=definition is _library().get(name))

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
        for angles in ([0.3 + 0.7 * i for i in range(n_args)], [-1.1 + 0.37 * i for i in range(n_args)]):
            inner = _Reader(self.ast)
            inner.definitions = {d: v for d, v in self.definitions.items() if d != name}
            try:
                inner._inline(definition, angles, tuple(range(k)), _line(definition))
            except ValueError:
                return False  # then inlining it reports what is wrong
            body = _matrix(inner.gates, k)
            expected = _matrix([(gate, tuple(range(k)), (*leading, *angles), 0)], k)
            overlap = torch.trace(expected.conj().T @ body).abs().item() / 2**k
            if abs(overlap - 1) > 1e-9:
                return False
        return True

    def _broadcast(self, operands: list, line: int | str) -> list[tuple[int, ...]]:
        """The qubits of each gate a statement applies: `h q;` on a register
        applies h to each of its qubits, `cx a, b;` pairs registers up."""
        return combine([self._qubits(operand, line) for operand in operands], line)

    def _qubits(self, operand: Any, line: int | str) -> list[int]:
        indexed = isinstance(operand, self.ast.IndexedIdentifier)
        name = operand.name.name if indexed else operand.name
        if name.startswith("$"):
            if self.registers:
                raise ValueError(f"line {line}: physical qubit {name} in a file that declares qubit registers")
            self.physical.add(int(name[1:]))
            return [int(name[1:])]
        if name not in self.registers:
            raise ValueError(f"line {line}: unknown qubit register {name!r}")
        if self.physical:
            raise ValueError(f"line {line}: qubit register {name!r} in a file that uses physical qubits")
        start, size = self.registers[name]
        if not indexed:
            return list(range(start, start + size))
        if len(operand.indices) != 1:
            raise ValueError(f"line {line}: {name} indexed more than once")
        index = operand.indices[0]
        if isinstance(index, self.ast.DiscreteSet):
            picks = [self._integer(v, name, line) for v in index.values]
        elif len(index) == 1 and isinstance(index[0], self.ast.RangeDefinition):
            r = index[0]
            first = 0 if r.start is None else self._integer(r.start, name, line)
            last = size - 1 if r.end is None else self._integer(r.end, name, line)
            step = 1 if r.step is None else self._integer(r.step, name, line)
            if step == 0:
                raise ValueError(f"line {line}: a range of step 0 on {name}")
            picks = list(range(first, last + (1 if step > 0 else -1), step))  # QASM 3 ranges include their end
        elif len(index) == 1:
            picks = [self._integer(index[0], name, line)]
        else:
            raise ValueError(f"line {line}: {name} indexed by {len(index)} indices")
        for i in picks:
            if not -size <= i < size:
                raise ValueError(f"line {line}: {name}[{i}] is out of range for a register of {size}")
        return [start + i % size for i in picks]

    def _integer(self, node: Any, name: str, line: int | str) -> int:
        value = _constant(node, self.constants)
        if value != int(value):
            raise ValueError(f"line {line}: {name}[{value!r}]: a qubit index must be an integer")
        return int(value)

    def circuit(self) -> Circuit:
        if self.measured:
            warnings.warn("measurements skipped: a qtrain circuit is its gates, and expectation values are read off the state", stacklevel=3)
        unused = [p for p in self.inputs if not any(isinstance(a, _Param) and a.name == p for _, _, args, _ in self.gates for a in args)]
        if unused:
            warnings.warn(f"inputs {unused} drive no gate and are not parameters of the circuit", stacklevel=3)
        n_qubits = max(self.n_qubits, max(self.physical, default=-1) + 1, 1)
        return _build(self.gates, n_qubits)


def combine(lists: list[list[int]], line: int | str) -> list[tuple[int, ...]]:
    """The qubits of each gate of one statement, from the qubits of each
    operand: a register applies the gate to each of its qubits, one qubit
    goes with all of them (`cx q[0], r;`), registers pair up by index."""
    sizes = {len(o) for o in lists if len(o) != 1}
    if len(sizes) > 1:
        raise ValueError(f"line {line}: registers of different sizes {sorted(sizes)} in one statement")
    width = sizes.pop() if sizes else 1
    return [tuple(o[i] if len(o) > 1 else o[0] for o in lists) for i in range(width)]


def _build(gates: list, n_qubits: int) -> Circuit:
    """The circuit of the walker's gates. A gate of fixed angles is appended
    as its `Op` directly: the walker has checked what `Circuit.add` would
    (a gate of the table, its number of angles and qubits, distinct qubits
    of the file's registers) but finite angles, checked here; `add` costs
    about 12 us a gate, a third of reading a 200,000-gate file."""
    circuit = Circuit(n_qubits)
    for name, qubits, args, line in gates:
        if all(type(a) is float and math.isfinite(a) for a in args) and all(0 <= q < n_qubits for q in qubits):
            circuit._append_checked(Op(name, qubits, (None,) * len(args), tuple(args)))
            continue
        values = tuple(a.name if isinstance(a, _Param) else a for a in args)
        try:
            circuit.add(name, qubits, tuple(values) or None)  # add unwraps a one-angle tuple
        except ValueError as error:
            raise ValueError(f"line {line}: {error}") from None
    return circuit


def _matrix(gates: list, k: int) -> torch.Tensor:
    """The (2^k, 2^k) matrix of fixed-angle gates, column j the image of basis state j."""
    states = _build(gates, k).state(initial_state=torch.eye(2**k, dtype=torch.complex128), dtype=torch.complex128)
    return states.T


def _angle(node: Any, env: dict[str, Any]) -> float | _Param:
    """A gate argument: an input or argument by itself, or a constant."""
    if type(node).__name__ == "Identifier" and isinstance(env.get(node.name), _Param):
        return env[node.name]
    return _constant(node, env)


def _constant(node: Any, env: dict[str, Any]) -> float:
    kind = type(node).__name__
    if kind in ("FloatLiteral", "IntegerLiteral"):
        return float(node.value)
    if kind == "Identifier":
        value = env.get(node.name, CONSTANTS.get(node.name))
        if isinstance(value, _Param):
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
    raise ValueError(f"line {_line(node)}: cannot evaluate the expression {kind}")


def _line(node: Any) -> int | str:
    return node.span.start_line if getattr(node, "span", None) else "?"


def _openqasm3() -> Any:
    try:
        import openqasm3
        import openqasm3.ast  # noqa: F401
        import openqasm3.parser  # noqa: F401 (needs the ANTLR runtime)
    except ImportError as error:
        raise ImportError(f"OpenQASM needs the openqasm3 parser: {INSTALL}") from error
    return openqasm3
