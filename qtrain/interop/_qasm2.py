"""A fast reader for OpenQASM 2: what takes the reference parser about 50 s
(QASMBench's hhl_n10, 186,795 gates) takes this one a few seconds.

It reads statement by statement, most of them one line, with a strict
grammar: `OPENQASM 2.0;`, `include "qelib1.inc";`, `qreg`, `creg`, gate
definitions, gate applications whose angles are constant expressions
(numbers, `pi`, + - * / and OpenQASM 2's power `^`, parentheses, sin cos tan
exp ln sqrt), `barrier`,
`measure`, `reset`. Anything else is refused at its line, naming it, before
the rest of the file is read. What it reads it hands to the same walker as
the reference path (`qasm._Reader`: registers, measurements, definitions,
the gate library), so both paths give the same circuit; gate definitions,
few and short, go through the reference parser itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any, NoReturn

from qtrain.circuit import Circuit
from qtrain.interop import qasm

__all__ = ["is_qasm2", "read"]

#: the header that sends a file here: OPENQASM 2 first, after blank lines and // comments
HEADER = re.compile(r"(?:\s|//[^\n]*)*OPENQASM\s+2(?:\.0)?\s*;")
NAME = r"[A-Za-z_][A-Za-z0-9_]*"
OPERAND = re.compile(rf"\s*({NAME})\s*(?:\[\s*([0-9]+)\s*\])?\s*\Z")
WORD = re.compile(NAME)
#: the words that start a statement other than a gate
KEYWORDS = frozenset({"OPENQASM", "include", "qreg", "creg", "gate", "measure", "reset", "barrier"})
REGISTER = re.compile(rf"([qc])reg\s+({NAME})\s*\[\s*([0-9]+)\s*\]\Z")
MEASURE = re.compile(r"measure\s+(.+?)\s*->\s*(.+)\Z", re.S)
#: a number, signed: float() reads it as the reference path's negation of the number (negation is exact)
NUMBER = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]+)?\Z")
#: one token of an angle: (number, name, symbol), one of them set
TOKEN = re.compile(r"\s*(?:((?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]+)?)|([A-Za-z_][A-Za-z0-9_]*)|([-+*/^(),]))")
FUNCTIONS = {"sin": math.sin, "cos": math.cos, "tan": math.tan, "exp": math.exp, "ln": math.log, "sqrt": math.sqrt}
#: words that start statements outside the grammar, with why they are refused
REFUSED = {
    "if": "classical control (if) is not a unitary gate; qtrain circuits hold gates only",
    "opaque": "an opaque gate has no definition qtrain could run",
}


def is_qasm2(text: str) -> bool:
    """Whether `text` (a whole file) declares OpenQASM 2 in its header, so `read` rather than the OpenQASM 3 reader
    takes it."""
    return HEADER.match(text) is not None


def read(text: str) -> Circuit:
    """The circuit of an OpenQASM 2 file (see the module docstring)."""
    openqasm3 = qasm._openqasm3()  # gate definitions and the gate library go through the reference parser
    reader = _FastReader(qasm._Reader(openqasm3.ast), openqasm3)
    for statement, line in _statements(text):
        reader.statement(statement, line)
    if not reader.seen_header:
        raise ValueError("line 1: an OpenQASM 2 file starts with OPENQASM 2.0;")
    return reader.reader.circuit()


def _statements(text: str) -> Iterator[tuple[str, int]]:
    """(statement without its `;`, line where it starts) in order. A gate
    definition is one statement, up to its closing brace."""
    pending, start = "", 0
    for number, raw in enumerate(text.split("\n"), 1):
        code = raw.split("//", 1)[0]
        if not pending and code.count(";") == 1 and "{" not in code and "}" not in code and code.rstrip().endswith(";"):
            yield code.strip()[:-1], number  # the common case: one statement on its line
            continue
        if "/*" in code:
            raise ValueError(f"line {number}: block comments (/* */) are not OpenQASM 2")
        if not pending.strip():
            pending, start = "", number
        pending += code + "\n"
        while True:
            body = pending.lstrip()
            if not body:
                pending = ""
                break
            start += pending[: len(pending) - len(body)].count("\n")
            pending = body
            end = _statement_end(pending)
            if end is None:
                break
            statement = pending[:end].strip()
            yield (statement[:-1] if statement.endswith(";") else statement), start
            start += pending[:end].count("\n")
            pending = pending[end:]
    if pending.strip():
        raise ValueError(f"line {start}: the file ends inside a statement: {pending.strip()[:60]!r}")


def _statement_end(text: str) -> int | None:
    """Where the statement at the start of `text` ends (just past its `;`, or
    its `}` for a gate definition), or None when it goes on past `text`."""
    if re.match(r"gate\b", text):
        close = text.find("}")
        return None if close < 0 else close + 1
    semicolon = text.find(";")
    return None if semicolon < 0 else semicolon + 1


class _FastReader:
    def __init__(self, reader: qasm._Reader, openqasm3: Any) -> None:
        self.reader, self.openqasm3 = reader, openqasm3
        self.seen_header = False
        self.operands: dict[str, list[int]] = {}  # operand text -> its qubits
        self.angles: dict[str, list[float]] = {}  # the text of a gate's arguments -> their values
        self.values: dict[str, float] = {}  # the text of one argument -> its value

    def statement(self, text: str, line: int) -> None:
        if not self.seen_header:
            if not re.fullmatch(r"OPENQASM\s+2(?:\.0)?", text):
                raise ValueError(f"line {line}: an OpenQASM 2 file starts with OPENQASM 2.0;, got {text[:60]!r}")
            self.seen_header = True
            return
        word = WORD.match(text)
        name = word.group(0) if word else ""
        if name in REFUSED:
            raise ValueError(f"line {line}: {REFUSED[name]}")
        if name in KEYWORDS or not name:
            self._declaration(name, text, line)
            return
        # a gate: name, (angles) or not, operands; what is not a qubit is refused by _operand
        assert word is not None  # no word gives an empty name, a declaration handled above
        rest = text[word.end():].lstrip()
        args, operands = [], rest
        if rest.startswith("("):
            inside, close, operands = rest[1:].rpartition(")")
            if not close:
                raise ValueError(f"line {line}: cannot read {text[:80]!r} as an OpenQASM 2 gate (unbalanced parentheses)")
            args = self._angles(inside, line)
        lists = [self._operand(o, line) for o in operands.split(",")]
        for qubits in ((tuple(o[0] for o in lists),) if all(len(o) == 1 for o in lists) else qasm.combine(lists, line)):
            self.reader.apply(name, args, qubits, line)  # read, never changed: the cached list serves every use

    def _declaration(self, word: str, text: str, line: int) -> None:
        reader = self.reader
        if word == "gate":
            self._definition(text, line)
        elif word in ("qreg", "creg") and (register := REGISTER.match(text)):
            kind, name, size = register.groups()
            if kind == "q":
                if name in reader.registers:
                    raise ValueError(f"line {line}: qubit register {name!r} declared twice")
                reader.registers[name] = (reader.n_qubits, int(size))
                reader.n_qubits += int(size)
        elif word == "include" and re.fullmatch(r'include\s*"[^"]*"', text):
            filename = text.split('"')[1]
            if filename != "qelib1.inc":
                raise ValueError(f"line {line}: include {filename!r}: qtrain reads qelib1.inc only (in OpenQASM 2)")
        elif word == "measure" and (measure := MEASURE.match(text)):
            for qubit in self._operand(measure.group(1), line):
                reader.measured.setdefault(qubit, line)
        elif word == "reset" and OPERAND.match(text[len("reset"):]):
            if set(self._operand(text[len("reset"):], line)) & reader.touched:
                raise ValueError(f"line {line}: reset of a qubit a gate has acted on; qtrain circuits are unitary")
            # a reset of a qubit still in |0> changes nothing
        elif word == "barrier" and all(OPERAND.match(o) for o in text[len("barrier"):].split(",")):
            pass  # a barrier changes no state
        else:
            raise ValueError(
                f"line {line}: cannot read {text[:80]!r} as an OpenQASM 2 statement "
                "(qtrain's reader takes qreg, creg, include, gate definitions, gates, barrier, measure, reset)"
            )

    def _definition(self, text: str, line: int) -> None:
        """A gate definition, through the reference parser (placed on its line, for its messages)."""
        program = qasm._parse(self.openqasm3, "OPENQASM 2.0;" + "\n" * max(line - 1, 0) + text)
        nodes = [node for node in program.statements if not isinstance(node, self.openqasm3.ast.Include)]
        if len(nodes) != 1 or not isinstance(nodes[0], self.openqasm3.ast.QuantumGateDefinition):
            raise ValueError(f"line {line}: cannot read {text[:80]!r} as one gate definition")
        self.reader.definitions[nodes[0].name.name] = nodes[0]

    def _operand(self, text: str, line: int) -> list[int]:
        qubits = self.operands.get(text)
        if qubits is None:
            match = OPERAND.match(text)
            if match is None:
                raise ValueError(f"line {line}: cannot read the qubit {text.strip()!r} (OpenQASM 2 takes q or q[i])")
            name, index = match.groups()
            if name not in self.reader.registers:
                raise ValueError(f"line {line}: unknown qubit register {name!r}")
            start, size = self.reader.registers[name]
            if index is not None and int(index) >= size:
                raise ValueError(f"line {line}: {name}[{index}] is out of range for a register of {size}")
            qubits = list(range(start, start + size)) if index is None else [start + int(index)]
            self.operands[text] = qubits
        return qubits

    def _angles(self, text: str, line: int) -> list[float]:
        values = self.angles.get(text)
        if values is None:
            values = [self._angle(part, line) for part in (text.split(",") if "(" not in text else _split(text, line))]
            self.angles[text] = values
        return values

    def _angle(self, text: str, line: int) -> float:
        value = self.values.get(text)
        if value is None:
            text = text.strip()
            if not text:
                raise ValueError(f"line {line}: an empty angle")
            value = float(text) if NUMBER.match(text) else _Expression(text, line).value()
            if not math.isfinite(value):
                raise ValueError(f"line {line}: the angle {text!r} is not finite ({value!r})")
            self.values[text] = value
        return value


def _split(text: str, line: int) -> list[str]:
    """Arguments at the top level of parentheses."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            raise ValueError(f"line {line}: unbalanced parentheses in ({text})")
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


class _Expression:
    """A constant angle, evaluated as the reference path does (OpenQASM 3's
    precedence: unary minus binds tighter than * and /, which bind tighter
    than + and -; left to right), so both give the same float. OpenQASM 2's
    `^` is a power (OpenQASM 3 reads it as xor, so the reference path refuses
    it): right-associative and tighter than a unary minus, as in Qiskit's
    reader (-2^2 = -4, 2^3^2 = 2^9)."""

    def __init__(self, text: str, line: int) -> None:
        self.text, self.line, self.tokens, position = text, line, [], 0
        while position < len(text) and text[position:].strip():
            match = TOKEN.match(text, position)
            if match is None:
                where = text[position:].strip()[:10]
                raise ValueError(f"line {line}: cannot read the angle {text.strip()!r} at {where!r} (numbers, pi, + - * / ^, (), {', '.join(FUNCTIONS)})")
            self.tokens.append(match.groups())
            position = match.end()
        self.position = 0

    def value(self) -> float:
        result = self._sum()
        if self.position != len(self.tokens):
            self._fail()
        return result

    def _fail(self) -> NoReturn:
        raise ValueError(f"line {self.line}: cannot read the angle {self.text.strip()!r}")

    def _peek(self) -> str | None:
        return self.tokens[self.position][2] if self.position < len(self.tokens) else None

    def _sum(self) -> float:
        value = self._product()
        while self._peek() in ("+", "-"):
            self.position += 1
            value = value + self._product() if self.tokens[self.position - 1][2] == "+" else value - self._product()
        return value

    def _product(self) -> float:
        value = self._unary()
        while self._peek() in ("*", "/"):
            self.position += 1
            if self.tokens[self.position - 1][2] == "*":
                value = value * self._unary()
            else:
                divisor = self._unary()
                if divisor == 0:
                    raise ValueError(f"line {self.line}: division by zero in the angle {self.text.strip()!r}")
                value = value / divisor
        return value

    def _unary(self) -> float:
        if self._peek() in ("-", "+"):
            self.position += 1
            sign = self.tokens[self.position - 1][2]
            value = self._unary()
            return -value if sign == "-" else value
        return self._power()

    def _power(self) -> float:
        base = self._atom()
        if self._peek() != "^":
            return base
        self.position += 1
        exponent = self._unary()  # right-associative: 2^3^2 = 2^(3^2); the exponent may carry a sign
        try:
            value = base**exponent
        except (OverflowError, ZeroDivisionError):
            raise ValueError(f"line {self.line}: {base!r}^{exponent!r} is undefined, in the angle {self.text.strip()!r}") from None
        if isinstance(value, complex):
            raise ValueError(f"line {self.line}: {base!r}^{exponent!r} is not a real number, in the angle {self.text.strip()!r}")
        return value

    def _atom(self) -> float:
        if self.position >= len(self.tokens):
            self._fail()
        number, name, symbol = self.tokens[self.position]
        self.position += 1
        if number is not None:
            return float(number)
        if symbol == "(":
            value = self._sum()
            self._expect(")")
            return value
        if name == "pi":
            return math.pi
        if name in FUNCTIONS:
            self._expect("(")
            argument = self._sum()
            self._expect(")")
            try:
                return FUNCTIONS[name](argument)
            except ValueError:
                raise ValueError(f"line {self.line}: {name}({argument!r}) is undefined, in the angle {self.text.strip()!r}") from None
        if name is not None:
            raise ValueError(f"line {self.line}: unknown name {name!r} in an angle (OpenQASM 2 angles are constants: numbers and pi)")
        self._fail()

    def _expect(self, symbol: str) -> None:
        if self._peek() != symbol:
            self._fail()
        self.position += 1
