"""PennyLane in and out of qtrain circuits.

`to_pennylane(circuit, wires=None)` gives a quantum function `qfunc(theta)`
that applies the circuit's gates with `theta[i]` for parameter i
(`circuit.parameters` order), so it runs inside a QNode with any interface
PennyLane accepts (torch, autograd numpy, jax, plain lists). Fixed angles
are Python floats (cast to theta's type inside a Rot or U3 that also takes
a parameter: PennyLane's matrix of those fails on a float beside a torch
tensor) and matrices complex128 numpy arrays (fixed). A theta of shape (B, P)
broadcasts (PennyLane's parameter broadcasting), and so does a per-sample
(B, d, d) `unitary`; per-sample Pauli axes (`pauli_rot`) have no PennyLane
gate and are refused.

`from_pennylane(tape_or_qfunc, *args, wires=None, names=None, **kwargs)`
reads a tape (`QuantumScript`), a QNode, or a quantum function called with
`*args, **kwargs` (recorded with `qml.tape.make_qscript`; a QNode's
measurements are not run). Trainable parameters:

- from a quantum function (or QNode), every float argument, positional or
  keyword, is a source of parameters, except a torch or PennyLane-numpy
  tensor with `requires_grad=False` (passed as it is: its angles become
  fixed floats). The function is called with float64 torch leaves in place
  of the sources, so it must use interface-agnostic operations (`qml.math`,
  indexing, PennyLane templates) on them. Each angle is then traced through
  autograd's graph (`qtrain.interop._tracing`, shared with the torchquantum
  importer) to the element it is, named by the argument's name and the
  element's own index: `w[0]` for a 1-D argument, `weights[0,1,2]` for a
  3-D one, `x` for a scalar (the name from the signature, `arg<i>` past it).
  An angle is an element only when the path from it to the argument is
  structural (indexing, slicing, unbind, view, reshape, squeeze, expand,
  clone, a cast): the same element on several gates is one shared
  parameter. An angle computed from arguments (`sin(w[0])`, `2 * w`,
  `w0 - w1`, a decomposition's `phi / 2`) is refused with its expression,
  whatever its value at the traced point, since a qtrain angle is a
  parameter as it is or a constant.
- from a tape, its trainable parameters (in `tape.trainable_params` and
  requiring grad, in any interface) are traced the same way. A torch
  parameter is traced through its autograd graph to the leaf tensors it
  is computed from, so `theta[0]` on two operations is one shared
  parameter, and `2 * theta[0]` is refused (detach it and set
  requires_grad to take it as a parameter of its own); a trainable value
  of another interface (autograd numpy, jax) is its own source, one per
  distinct object (an index of such an array is a new object, so a new
  parameter). Sources are named `p<k>` by first use, with the element's
  own index (`p<k>[i,j]` for an element of a 2-D `theta`).
- `names` renames the sources: one name per positional argument of a
  quantum function, or per distinct source tensor of a tape.

Parameters are numbered in order of first use on a gate. Everything else
is a fixed float. Operations qtrain has no gate for are decomposed with
PennyLane's own decompositions (a template such as StronglyEntanglingLayers
becomes Rot and CNOT; a QubitUnitary on 3+ wires two-qubit unitaries and
rotations) until each is known, or refused by name when PennyLane cannot
decompose it. A QubitUnitary's matrix is read as a fixed value (a torch
matrix that requires grad is refused). Identity, Barrier, Snapshot and
GlobalPhase are dropped (no expectation value sees them). Broadcast
(batched) angles are refused: pass one sample's. Wires: in the order given by `wires=`, else non-negative
integer wires keep their numbers (wire k is qubit k) and other labels
their order on the tape. PennyLane's wire 0 and qtrain's qubit 0 are both
the most significant bit. Measurements are not converted: a qtrain circuit
is its gates, and its observable goes to `circuit.expval`.

The gate names map as in `NAMES` (same argument order: U3(theta, phi,
delta) is u3(t, p, l), Rot(phi, theta, omega) is rot; CRX and the like
take the control first); tests/test_interop_pennylane.py checks every row
against PennyLane's matrix, global phase included, and values and
gradients against default.qubit's on random circuits.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.autograd.graph import Node

from qtrain.circuit import Circuit
from qtrain.errors import UsageError
from qtrain.interop._tracing import Source, trace_angle

__all__ = ["from_pennylane", "to_pennylane"]

#: PennyLane operation name -> qtrain gate (same argument order and conventions)
NAMES = {
    "RX": "rx", "RY": "ry", "RZ": "rz", "PhaseShift": "p", "U1": "p", "IsingXX": "rxx", "IsingYY": "ryy", "IsingZZ": "rzz",
    "CRX": "crx", "CRY": "cry", "CRZ": "crz", "U3": "u3", "Rot": "rot", "Hadamard": "h", "PauliX": "x", "PauliY": "y",
    "PauliZ": "z", "S": "s", "Adjoint(S)": "sdg", "T": "t", "Adjoint(T)": "tdg", "SX": "sx", "CZ": "cz", "CNOT": "cnot",
    "SWAP": "swap", "QubitUnitary": "unitary", "ControlledPhaseShift": "cp", "C(U3)": "cu3",
}
#: PennyLane's PauliRot by its Pauli word (exp(-i a P / 2), as qtrain's rotations); rzx has no operation of its own
PAULI_WORDS = {"X": "rx", "Y": "ry", "Z": "rz", "XX": "rxx", "YY": "ryy", "ZZ": "rzz", "ZX": "rzx"}
#: qtrain gate -> the PennyLane operation `to_pennylane` writes (`_write`: rzx as PauliRot "ZX", cu3 as qml.ctrl
#: of U3 with the control first, cu as that and PhaseShift(g) on the control)
GATES = {**{gate: name for name, gate in NAMES.items() if name != "U1"}, "rzx": "PauliRot", "cu": "C(U3)"}
#: operations no expectation value sees, dropped on import
SKIPPED = ("Identity", "Barrier", "Snapshot", "GlobalPhase")
_MAX_DEPTH = 16  # nested decompositions followed before giving up
_HINT = "; to train a computed angle as a parameter of its own, pass its value (detached) as an argument of its own"


def _qml() -> Any:
    try:
        import pennylane
    except ImportError as error:
        raise ImportError('PennyLane is not installed: pip install "qtrain[interop]"') from error
    return pennylane


# ---- qtrain -> PennyLane -------------------------------------------------------------


def to_pennylane(circuit: Circuit, wires: Sequence[Any] | None = None) -> Callable[..., None]:
    """A quantum function `qfunc(theta)` applying the circuit's gates, theta
    in `circuit.parameters` order ((P,) or broadcast (B, P); any interface),
    on `wires` (default 0..n-1; qubit i is wires[i])."""
    qml = _qml()
    wires = list(range(circuit.n_qubits)) if wires is None else list(wires)
    if len(wires) != circuit.n_qubits:
        raise UsageError(f"wires has {len(wires)} labels for a {circuit.n_qubits}-qubit circuit")
    if len(set(wires)) != len(wires):
        raise UsageError(f"wires has a repeated label: {wires}")
    for index, op in enumerate(circuit.ops):
        if op.name not in GATES:
            why = "per-sample Pauli axes (pauli_rot)" if op.name == "pauli_rot" else op.name
            raise UsageError(f"gate {index} ({op.name!r}): PennyLane has no gate for {why}")
    ops, n_params, names = circuit.ops, circuit.n_params, circuit.parameters  # the gates as they are now
    matrices = {i: op.matrix.detach().cpu().resolve_conj().numpy().astype(np.complex128) for i, op in enumerate(ops) if op.matrix is not None}

    def qfunc(theta: Any = None) -> None:
        if n_params:
            if theta is None:
                raise UsageError(f"qfunc needs theta: the circuit has {n_params} parameters {names}")
            if hasattr(theta, "shape"):
                shape = tuple(theta.shape)
            else:  # a list (of numbers, of tensors, or of rows)
                shape = (len(theta),) if not len(theta) or np.ndim(theta[0]) == 0 else (len(theta), len(theta[0]))
                if len(shape) == 2:
                    theta = np.asarray(theta)
            if not shape or shape[-1] != n_params or len(shape) > 2:
                raise UsageError(f"theta has shape {shape}; expected ({n_params},) or (B, {n_params}) for parameters {names}")
            take = (lambda p: theta[..., p]) if len(shape) == 2 else (lambda p: theta[p])
        for index, op in enumerate(ops):
            on = [wires[q] for q in op.qubits]
            name = GATES[op.name]
            if op.name == "unitary":
                qml.QubitUnitary(matrices[index], wires=on)
            elif name.startswith("Adjoint("):
                qml.adjoint(getattr(qml, name[len("Adjoint("):-1])(wires=on))
            else:
                args = [take(p) if p is not None else a for p, a in zip(op.params, op.angles)]
                if len(args) > 1 and None in op.params and any(p is not None for p in op.params):
                    # PennyLane's Rot and U3 matrices fail on a Python float beside a tensor: give the fixed ones theta's type
                    like = args[next(k for k, p in enumerate(op.params) if p is not None)]
                    args = [qml.math.cast_like(qml.math.convert_like(np.float64(a), like), like) if p is None else a for p, a in zip(op.params, args)]
                _write(qml, op.name, args, on)

    return qfunc


def _write(qml: Any, gate: str, args: list[Any], on: list[Any]) -> None:
    """Apply one qtrain gate as PennyLane operations (the same matrix, global phase included)."""
    if gate == "rzx":
        qml.PauliRot(args[0], "ZX", wires=on)
    elif gate in ("cu3", "cu"):  # CU(t, p, l, g) = (P(g) on the control) CU3(t, p, l)
        qml.ctrl(qml.U3(*args[:3], wires=on[1]), control=on[0])
        if gate == "cu":
            qml.PhaseShift(args[3], wires=on[0])
    else:
        getattr(qml, GATES[gate])(*args, wires=on)


# ---- PennyLane -> qtrain -------------------------------------------------------------


def from_pennylane(
    tape_or_qfunc: Any, *args: Any, wires: Sequence[Any] | None = None, names: Sequence[str] | None = None, **kwargs: Any
) -> Circuit:
    """A circuit from a PennyLane tape, a QNode, or a quantum function called
    with `*args, **kwargs` (see the module docstring). `wires` and `names`
    are this function's own keywords: pass a quantum function's own `wires`
    argument positionally."""
    qml = _qml()
    if isinstance(tape_or_qfunc, qml.tape.QuantumScript):
        if args or kwargs:
            raise UsageError("a tape takes no call arguments; pass a quantum function to call")
        tape, sources = _tracked_tape(qml, tape_or_qfunc, names)
    elif callable(tape_or_qfunc):
        func = tape_or_qfunc.func if isinstance(tape_or_qfunc, qml.QNode) else tape_or_qfunc
        arg_names = _argument_names(func, len(args))
        if names is not None:
            if isinstance(names, str) or len(names) != len(args):
                raise UsageError(f"names must give one name per positional argument ({len(args)}), got {names!r}")
            arg_names = [str(n) for n in names]
        tracked = [_tracked(a) for a in args]
        tracked_kwargs = {k: _tracked(v) for k, v in kwargs.items()}
        sources = [Source(n, t) for n, t, a in zip(arg_names, tracked, args) if t is not a]
        sources += [Source(k, t) for k, t in tracked_kwargs.items() if t is not kwargs[k]]
        tape = qml.tape.make_qscript(func)(*tracked, **tracked_kwargs)
    else:
        raise TypeError(f"expected a PennyLane tape, QNode or quantum function, got {type(tape_or_qfunc).__name__}")
    order = _wire_order(tape, wires)
    circuit = Circuit(max(len(order), 1))
    for index, (op, name, origin) in enumerate(_known_operations(tape.operations)):
        where = f"gate {index} {op.name}{f' (from the decomposition of {origin})' if origin else ''}"
        if op.batch_size is not None:
            raise UsageError(f"{where}: broadcast parameters (batch {op.batch_size}); a qtrain circuit's angles are one sample's, pass one")
        qubits = tuple(order.index(w) for w in op.wires)
        if name == "unitary":
            matrix = op.data[0]
            if isinstance(matrix, torch.Tensor) and matrix.requires_grad:
                raise UsageError(f"{where}: a matrix that requires grad; qtrain's unitary holds a fixed one (its parameters are angles)")
            circuit.unitary(qubits, torch.as_tensor(np.asarray(qml.math.toarray(matrix)), dtype=torch.complex128))
            continue
        angles = tuple(_angle(value, sources, where) for value in op.data)
        circuit.add(name, qubits, tuple(angles) or None)  # add unwraps a one-angle tuple
    return circuit


def _wire_order(tape: Any, wires: Sequence[Any] | None) -> list[Any]:
    labels = list(tape.wires)
    if wires is not None:
        order = list(wires)
        if len(set(order)) != len(order):
            raise UsageError(f"wires has a repeated label: {order}")
        missing = [w for w in labels if w not in order]
        if missing:
            raise UsageError(f"the tape acts on wires {missing} missing from wires={order}")
        return order
    if labels and all(isinstance(w, int) and not isinstance(w, bool) and w >= 0 for w in labels):
        return list(range(max(labels) + 1))  # wire k is qubit k
    return labels


def _known_operations(operations: Sequence[Any], origin: str | None = None, depth: int = 0) -> list[tuple[Any, str, str | None]]:
    """(operation, its qtrain gate, the outermost operation it came from or
    None), each unknown one replaced by its decomposition (recursively)."""
    out = []
    for op in operations:
        if op.name in SKIPPED:
            continue
        name = _qtrain_name(op)
        if name is not None:
            out.append((op, name, origin))
        elif depth < _MAX_DEPTH and op.has_decomposition:
            out += _known_operations(op.decomposition(), origin or op.name, depth + 1)
        else:
            inside = f" (from the decomposition of {origin})" if origin else ""
            raise UsageError(
                f"{op.name} on wires {list(op.wires)}{inside}: qtrain has no gate for it and PennyLane cannot decompose it further; "
                f"qtrain reads {', '.join(sorted(NAMES))} and PauliRot on the words {', '.join(PAULI_WORDS)}"
            )
    return out


def _qtrain_name(op: Any) -> str | None:
    """The qtrain gate a PennyLane operation is as it stands, or None (then it is decomposed)."""
    if op.name == "PauliRot":
        return PAULI_WORDS.get(op.hyperparameters["pauli_word"])
    if op.name == "C(U3)" and (list(op.control_values) != [True] or len(op.work_wires)):
        return None  # controlled on |0>, or with work wires: its decomposition
    if op.name == "QubitUnitary" and len(op.wires) > 2:
        return None  # qtrain's unitary takes 1 or 2 qubits
    return NAMES.get(op.name)


def _argument_names(qfunc: Callable, count: int) -> list[str]:
    try:
        params = list(inspect.signature(qfunc).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [names[i] if i < len(names) else f"arg{i}" for i in range(count)]


def _tracked(value: Any) -> Any:
    """A float argument as a float64 torch leaf that autograd follows; a
    tensor marked requires_grad=False, and anything not a float array, as it is."""
    if value is None or isinstance(value, (bool, str, int, complex)):
        return value
    if getattr(value, "requires_grad", True) is False:  # torch, PennyLane numpy: explicitly not trainable
        return value
    try:
        array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    except (TypeError, ValueError, RuntimeError):
        return value
    if array.dtype == object or not np.issubdtype(array.dtype, np.floating):
        return value
    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


def _tracked_tape(qml: Any, tape: Any, names: Sequence[str] | None) -> tuple[Any, list[Source]]:
    """The tape with its trainable parameters traceable by autograd, and the
    tensors they are traced to (the sources) by name, in order of first use.

    A torch parameter stays as it is: its sources are the leaf tensors of its
    autograd graph (itself when it is a leaf), so `theta[0]` on two gates is
    one element of one source. Any other trainable float parameter (autograd
    numpy, jax...) becomes a float64 torch leaf, one per distinct object."""
    params = tape.get_parameters(trainable_only=False)
    trainable = set(tape.trainable_params)
    sources: dict[int, torch.Tensor] = {}
    new, indices = [], []
    for i, value in enumerate(params):
        if i not in trainable or not _trainable(qml, value):
            if isinstance(value, torch.Tensor) and value.requires_grad:  # left out of tape.trainable_params: fixed
                new.append(value.detach())
                indices.append(i)
            continue
        if isinstance(value, torch.Tensor):
            for part in _leaves(value):
                if part.is_floating_point():  # a complex matrix: refused where its operation is read
                    sources.setdefault(id(part), part)
            continue
        leaf = sources.get(id(value))
        if leaf is None:
            array = np.asarray(qml.math.toarray(value))
            if not np.issubdtype(array.dtype, np.floating):
                continue  # a complex matrix: refused where its operation is read
            leaf = sources[id(value)] = torch.tensor(array, dtype=torch.float64, requires_grad=True)
        new.append(leaf)
        indices.append(i)
    if names is None:
        labels = [f"p{k}" for k in range(len(sources))]
    elif isinstance(names, str) or len(names) != len(sources):
        raise UsageError(
            f"names must give one name per distinct trainable tensor of the tape ({len(sources)}; a torch tensor computed "
            f"from others counts the leaf tensors it comes from), got {names!r}"
        )
    else:
        labels = [str(n) for n in names]
    return (tape.bind_new_parameters(new, indices) if indices else tape), [Source(n, t) for n, t in zip(labels, sources.values())]


def _leaves(value: torch.Tensor) -> list[torch.Tensor]:
    """The leaf tensors requiring grad that a torch tensor is computed from
    (itself for a leaf), in a fixed order (depth first through its graph)."""
    if value.grad_fn is None:
        return [value]
    out: list[torch.Tensor] = []
    seen: dict[int, Node] = {}
    stack: list[Node | None] = [value.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen[id(fn)] = fn  # held, so no other node takes its id
        if hasattr(fn, "variable"):  # AccumulateGrad: a leaf
            out.append(fn.variable)
        stack.extend(f for f, _ in reversed(fn.next_functions))
    return out


def _trainable(qml: Any, value: Any) -> bool:
    if qml.math.get_interface(value) == "jax":
        return True  # jax marks nothing: every jax array on a tape is trainable, as in a jax QNode
    return bool(qml.math.requires_grad(value))


def _angle(value: Any, sources: list[Source], where: str) -> float | str:
    """The parameter name of a traced angle (`qtrain.interop._tracing`), or its fixed value."""
    if isinstance(value, torch.Tensor) and value.requires_grad:
        if value.numel() != 1:
            raise UsageError(f"{where}: an angle of shape {tuple(value.shape)}; qtrain takes one number per angle")
        name = trace_angle(value, sources, where, _HINT)
        if name is not None:
            return name
    return _float(value, where)


def _float(value: Any, where: str) -> float:
    array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    if array.size != 1:
        raise UsageError(f"{where}: an angle of shape {array.shape}; qtrain takes one number per angle")
    return float(array.reshape(()))
