"""PennyLane in and out of qtrain circuits.

`to_pennylane(circuit)` gives a quantum function `qfunc(theta)` that applies
the circuit's gates with `theta[i]` for parameter i (`circuit.parameters`
order), so it runs inside a QNode with any interface PennyLane accepts.

`from_pennylane` reads a tape (`QuantumScript`), or a quantum function with
the arguments to call it with. Operations qtrain has no row for are
decomposed (PennyLane's own decompositions: a template such as
StronglyEntanglingLayers becomes Rot and CNOT) until every gate is known or
one cannot be decomposed, which is refused by name. Trainable angles:
- from a quantum function, each angle is traced by autograd to the element
  of an argument it is (`weights[0,1,2]`, or the argument's name for a
  scalar): the same element on several gates is one shared parameter; an
  angle computed from arguments (2 * w) is refused. Arguments that are not
  float arrays (wires, flags) are passed as they are.
- from a tape, the tape's trainable parameters are named `p<k>` in order of
  first use, and two operations holding the same tensor object share one.
Other angles become fixed floats. Wires are numbered in the order given
(`wires=`) or the tape's order; PennyLane's wire 0 is qtrain's qubit 0, the
most significant bit in both. Measurements are not converted: a qtrain
circuit is its gates.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from qtrain.circuit import Circuit

#: PennyLane operation name -> qtrain gate (conventions checked against qtrain's in tests)
NAMES = {
    "RX": "rx", "RY": "ry", "RZ": "rz", "PhaseShift": "p", "U1": "p", "IsingXX": "rxx", "IsingYY": "ryy", "IsingZZ": "rzz",
    "CRX": "crx", "CRY": "cry", "CRZ": "crz", "U3": "u3", "Rot": "rot", "Hadamard": "h", "PauliX": "x", "PauliY": "y",
    "PauliZ": "z", "S": "s", "Adjoint(S)": "sdg", "T": "t", "Adjoint(T)": "tdg", "SX": "sx", "CZ": "cz", "CNOT": "cnot",
    "SWAP": "swap", "QubitUnitary": "unitary",
}
SKIPPED = ("Identity", "Barrier", "GlobalPhase")  # no effect on any expectation value


def _qml() -> Any:
    try:
        import pennylane
    except ImportError as error:
        raise ImportError('PennyLane is not installed: pip install "qtrain[interop]"') from error
    return pennylane


def to_pennylane(circuit: Circuit, wires: Sequence[Any] | None = None) -> Callable[[Any], None]:
    """A quantum function `qfunc(theta)` applying the circuit's gates (theta
    in `circuit.parameters` order) on `wires` (default 0..n-1)."""
    qml = _qml()
    wires = list(range(circuit.n_qubits)) if wires is None else list(wires)
    if len(wires) != circuit.n_qubits:
        raise ValueError(f"wires has {len(wires)} labels for a {circuit.n_qubits}-qubit circuit")
    gates = {gate: name for name, gate in NAMES.items() if name != "U1"}
    for index, op in enumerate(circuit.ops):
        if op.name not in gates or (op.matrix is not None and op.matrix.dim() == 3):
            raise ValueError(f"gate {index} ({op.name!r}): PennyLane has no gate for {'a per-sample matrix' if op.matrix is not None else 'per-sample Pauli axes' if op.name == 'pauli_rot' else op.name}")

    def qfunc(theta: Any) -> None:
        for op in circuit.ops:
            on = [wires[q] for q in op.qubits]
            name = gates[op.name]
            if op.name == "unitary":
                qml.QubitUnitary(op.matrix.detach().cpu().numpy(), wires=on)
            elif name.startswith("Adjoint("):
                qml.adjoint(getattr(qml, name[8:-1]))(wires=on)
            else:
                getattr(qml, name)(*[theta[p] if p is not None else a for p, a in zip(op.params, op.angles)], wires=on)

    return qfunc


def from_pennylane(tape_or_qfunc: Any, *args: Any, wires: Sequence[Any] | None = None, **kwargs: Any) -> Circuit:
    """A circuit from a PennyLane tape, or from a quantum function called
    with `*args, **kwargs` (see the module docstring)."""
    qml = _qml()
    if isinstance(tape_or_qfunc, qml.tape.QuantumScript):
        if args or kwargs:
            raise ValueError("a tape takes no call arguments; pass a quantum function to call")
        tape, sources = tape_or_qfunc, None
    elif callable(tape_or_qfunc):
        names = _argument_names(tape_or_qfunc, len(args))
        tracked = [_tracked(a) for a in args]
        sources = [(n, t) for n, t in zip(names, tracked) if isinstance(t, torch.Tensor) and t.requires_grad]
        tape = qml.tape.make_qscript(tape_or_qfunc)(*tracked, **kwargs)
    else:
        raise TypeError(f"expected a PennyLane tape or a quantum function, got {type(tape_or_qfunc).__name__}")
    labels = list(tape.wires)
    if wires is None:  # integer wires keep their numbers (wire k is qubit k); other labels their order of use
        order = list(range(max(labels) + 1)) if labels and all(isinstance(w, int) for w in labels) else labels
    else:
        order = list(wires)
    missing = [w for w in tape.wires if w not in order]
    if missing:
        raise ValueError(f"the tape acts on wires {missing} missing from wires={order}")
    circuit = Circuit(max(len(order), 1))
    shared: dict[int, str] = {}
    for index, op in enumerate(_known_operations(qml, tape.operations)):
        where = f"operation {index} ({op.name})"
        name = NAMES[op.name]
        qubits = tuple(order.index(w) for w in op.wires)
        if name == "unitary":
            circuit.unitary(qubits, torch.as_tensor(np.asarray(qml.math.toarray(op.matrix())), dtype=torch.complex128))
            continue
        angles = tuple(_angle(qml, p, sources, shared, tape, where) for p in op.data)
        circuit.add(name, qubits, angles if len(angles) > 1 else angles[0] if angles else None)
    return circuit


def _known_operations(qml: Any, operations: Sequence[Any], depth: int = 0) -> list[Any]:
    """The operations, each unknown one replaced by its decomposition (recursively)."""
    out = []
    for op in operations:
        if op.name in NAMES:
            out.append(op)
        elif op.name in SKIPPED:
            continue
        elif depth < 10 and op.has_decomposition:
            out += _known_operations(qml, op.decomposition(), depth + 1)
        else:
            raise ValueError(f"{op.name} on wires {list(op.wires)}: qtrain has no gate for it and PennyLane cannot decompose it further; qtrain reads {', '.join(sorted(NAMES))}")
    return out


def _argument_names(qfunc: Callable, count: int) -> list[str]:
    try:
        names = [p.name for p in inspect.signature(qfunc).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    return [names[i] if i < len(names) else f"arg{i}" for i in range(count)]


def _tracked(value: Any) -> Any:
    """A float array argument as a float64 torch leaf that autograd follows; anything else as it is."""
    if isinstance(value, bool) or isinstance(value, (str, int)) or value is None:
        return value
    try:
        array = torch.as_tensor(np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value))
    except (TypeError, ValueError, RuntimeError):
        return value
    if not array.dtype.is_floating_point:
        return value
    return array.to(torch.float64).clone().requires_grad_(True)


def _angle(qml: Any, value: Any, sources: list | None, shared: dict[int, str], tape: Any, where: str) -> float | str:
    if sources is None:  # a tape: its trainable parameters by tensor identity
        if qml.math.requires_grad(value):
            return shared.setdefault(id(value), f"p{len(shared)}")
        return _float(value)
    if not (isinstance(value, torch.Tensor) and value.requires_grad):
        return _float(value)
    grads = torch.autograd.grad(value, [t for _, t in sources], allow_unused=True, retain_graph=True)
    found = [(n, t, g) for (n, t), g in zip(sources, grads) if g is not None and g.count_nonzero() > 0]
    if len(found) == 1:
        name, tensor, g = found[0]
        flat = g.reshape(-1).nonzero().flatten()
        if len(flat) == 1 and g.reshape(-1)[flat[0]] == 1 and value.detach() == tensor.detach().reshape(-1)[flat[0]]:
            if tensor.dim() == 0:
                return name
            index = np.unravel_index(flat[0].item(), tuple(tensor.shape))
            return f"{name}[{','.join(str(int(i)) for i in index)}]"
    raise ValueError(f"{where}: an angle computed from arguments ({', '.join(f[0] for f in found)}); qtrain parameters enter gates as they are (no 2*w)")


def _float(value: Any) -> float:
    return float(value.detach().cpu()) if isinstance(value, torch.Tensor) else float(np.asarray(value))
