"""torchquantum (torchquantum-ng) in and out of qtrain circuits.

`from_torchquantum` runs a `tq.QuantumModule` once and records the gates it
applies. torchquantum's own op history keeps only detached angle values, so
parameter identity comes from elsewhere: every functional gate of
torchquantum (and so every op module such as `tq.RX`, every layer and
encoder) goes through one function, `gate_wrapper`, and while the module
runs that function is wrapped (in each torchquantum module that imported
it) to record the gate's name, wires and the angle tensor itself, for the
gates applied to the recording device (the one passed to `forward(qdev,
*inputs)`, or the one a `forward(x)` creates for itself). Each angle is then
traced through autograd's graph (`qtrain.interop._tracing`, shared with the
PennyLane importer) to where it came from: an element of one of the
module's Parameters (named by its qualified name from `named_parameters()`
and the element's own index: `q_layer.u3_0.params[0,1]`, the name alone for
a 0-d Parameter), an element of each sample of an input (`input[j]`,
`input[i,j]` for an input of shape (B, h, w), `input<k>[...]` for the k-th
of several inputs), or nothing (a fixed float; a Parameter with
requires_grad=False counts as fixed). An angle is such an element only when
the path from it is structural (indexing, reshape, expand, a cast, ...),
so the same Parameter element on several gates is one shared qtrain
parameter, and an angle computed from them (2 * w, sin(w), w + x) is
refused, naming its expression. A gate qtrain cannot express (cswap on 3
wires, a trainable qubitunitary or crot, ...), a noise model, a gate
applied after a measurement and gates applied to a second device are
refused with their names. A readout at the end (`tq.MeasureAll`, `expval`,
`expval_joint_analytical`, `measure`, ...) ends the circuit: its basis
rotations are not recorded (give qtrain the observable instead).

torchquantum's names map to qtrain's as in `NAMES`, each checked against
qtrain's matrix on random states in tests/test_interop_torchquantum.py
(wire i is qubit i, both most significant first; u3, rot, crx, rzz and
phaseshift agree with qtrain's OpenQASM 3 / PennyLane conventions). Beyond
that table: `multirz` on one or two wires is rz or rzz, a qubitunitary with
a fixed matrix (1 or 2 wires) is qtrain's `unitary`, and so is any other
gate of 1 or 2 wires whose matrix depends on no Parameter or input (cy,
iswap, ecr, sxdg, a crot of fixed angles: torchquantum's own matrix, as
its gate_wrapper receives it), `i` is dropped, and
`inverse=True` is undone for fixed gates (the angle negated, or the inverse
gate). torchquantum-ng 0.2.0's own `u1`, `u2`, `cu1` and `cp` fail before
applying anything (a NameError inside torchquantum), so they never reach
the recorder.

`to_torchquantum` goes the other way: a QuantumModule with one Parameter
per circuit parameter (shared ones shared), applying the same gates
(`EXPORTS`; cp as cu3(0, 0, a)).

Both import torchquantum through `import_torchquantum`: torchquantum
imports torchvision for its datasets, and beside a CPU torch no loadable
torchvision exists on PyPI, so on failure the import is retried with that
subpackage replaced by an empty module (the simulator never uses it).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from qtrain.circuit import Circuit
from qtrain.engine.gates import GATES
from qtrain.errors import UsageError
from qtrain.interop._tracing import Source, fixed_angle, trace_angle

__all__ = ["from_torchquantum", "import_torchquantum", "theta_from_torchquantum", "to_torchquantum"]

_IMPORTED: tuple[Any, Any] | None = None

#: torchquantum's gate names -> qtrain's (its conventions checked against qtrain's in tests)
NAMES = {
    "hadamard": "h", "paulix": "x", "pauliy": "y", "pauliz": "z", "s": "s", "sdg": "sdg", "t": "t", "tdg": "tdg", "sx": "sx",
    "cnot": "cnot", "cz": "cz", "swap": "swap", "rx": "rx", "ry": "ry", "rz": "rz", "rxx": "rxx", "ryy": "ryy", "rzz": "rzz",
    "crx": "crx", "cry": "cry", "crz": "crz", "u3": "u3", "rot": "rot", "phaseshift": "p", "u1": "p",
    "cu3": "cu3", "cu": "cu", "rzx": "rzx", "cu1": "cp", "cp": "cp",
}
#: qtrain's gates -> the torchquantum function `to_torchquantum` applies. torchquantum-ng 0.2.0's u1, cu1 and cp
#: fail before applying anything (a NameError inside torchquantum), so p goes out as phaseshift and cp(a) as
#: cu3(0, 0, a), the same matrix: it comes back in as that cu3.
EXPORTS = {**{gate: name for name, gate in NAMES.items() if name not in ("u1", "cu1", "cp")}, "cp": "cu3"}
#: gates exported through torchquantum's cu3 and cu, whose matrices fail on per-sample (B > 1) angles
_SHARED_ONLY = ("cp", "cu3", "cu")
#: torchquantum's fixed-matrix gates, recorded as qtrain's `unitary`
UNITARIES = ("qubitunitary", "qubitunitaryfast", "qubitunitarystrict")
#: the inverse of a fixed gate, where it is in the table
INVERSES = {"s": "sdg", "sdg": "s", "t": "tdg", "tdg": "t", **{g: g for g in ("h", "x", "y", "z", "cnot", "cz", "swap")}}
#: torchquantum's readouts (torchquantum.measurement): a module's circuit ends at the first
READOUTS = ("expval", "measure", "expval_joint_analytical", "expval_joint_sampling", "expval_joint_sampling_grouping")


def import_torchquantum() -> tuple[Any, Any]:
    """(torchquantum, torchquantum.functional), imported once (see the module
    docstring); ImportError naming the install when torchquantum-ng is missing."""
    global _IMPORTED
    if _IMPORTED is None:
        try:
            import torchquantum  # noqa: F401
        except ModuleNotFoundError as error:
            if error.name == "torchquantum":
                raise ImportError(
                    'torchquantum is not installed: pip install -c constraints/torch-cpu.txt "qtrain[interop]" '
                    "&& pip install --no-deps torchquantum-ng torchpack (docs/guides/interop.md)"
                ) from error
            _retry_without_datasets()
        except Exception:  # torchvision present but unloadable beside this torch
            _retry_without_datasets()
        import torchquantum as tq
        import torchquantum.functional as tqf

        _IMPORTED = (tq, tqf)
    return _IMPORTED


def _retry_without_datasets() -> None:
    for key in [k for k in sys.modules if k == "torchquantum" or k.startswith("torchquantum.")]:
        del sys.modules[key]  # what the failed import left behind
    sys.modules["torchquantum.dataset"] = types.ModuleType("torchquantum.dataset")
    try:
        import torchquantum  # noqa: F401
    except Exception:
        sys.modules.pop("torchquantum.dataset", None)
        raise


@dataclass
class _Record:
    name: str
    wires: list[int]
    params: torch.Tensor | None  # angles as (rows, k), or a matrix for a qubitunitary
    inverse: bool
    mat: Any = None  # torchquantum's matrix for the gate: a tensor, or a function of params


@dataclass
class _Tape:
    device: Any  # the device whose gates are the circuit; None until a module that creates its own applies one
    records: list[_Record] = field(default_factory=list)
    readout: str | None = None  # the first readout's name
    reading: int = 0  # > 0 while inside a readout (its basis rotations are not gates)
    elsewhere: int = 0  # gates the module applied to some other device


def from_torchquantum(module: Any, n_wires: int, *inputs: torch.Tensor) -> Circuit:
    """The circuit a `tq.QuantumModule` applies, recorded by running it once
    with autograd on: `module(qdev, *inputs)` on a fresh `n_wires` device
    (bsz = the inputs' batch, else 1) when its forward takes a device first,
    else `module(*inputs)` with the device its forward creates (as
    torchquantum's own examples do: `qdev = tq.QuantumDevice(...)` inside
    forward), which must have `n_wires` wires.

    Parameter names, one convention with `from_pennylane`: a Parameter's
    qualified name from `named_parameters()` and the element's own index
    (`q_layer.u3_0.params[0,1]` for element (0, 1) of a (1, 3) Parameter;
    the name alone for a 0-d one), and `input[j]` for element j of each
    sample of the input (`input[i,j]` for an input of shape (B, h, w);
    `input<k>[...]` for the k-th of several inputs). So the inputs are the
    parameters whose name starts with `input`; `theta_from_torchquantum(
    module, circuit, *inputs)` assembles theta from both, in the circuit's order.
    """
    tq, _ = import_torchquantum()
    noisy = [(name or type(module).__name__, m.noise_model_tq) for name, m in module.named_modules() if getattr(m, "noise_model_tq", None) is not None]
    if noisy:
        name, noise = noisy[0]
        raise UsageError(f"{name!r} has a noise model ({type(noise).__name__}): qtrain simulates noiseless pure states")
    tracked = [x.detach().clone().requires_grad_(True) if torch.is_tensor(x) and x.is_floating_point() else x for x in inputs]
    batch = int(tracked[0].shape[0]) if tracked and torch.is_tensor(tracked[0]) and tracked[0].dim() > 0 else 1
    given = _takes_a_device(module, len(tracked))
    tape = _Tape(tq.QuantumDevice(n_wires=n_wires, bsz=batch) if given else None)
    with torch.enable_grad(), _recording(tape):
        if given:
            module(tape.device, *tracked)
        else:
            module(*tracked)
    if tape.elsewhere and given:
        raise UsageError(
            f"the module applied {tape.elsewhere} gate(s) to a device other than the one its forward was given "
            "(e.g. a QuantumDevice of its own): from_torchquantum records forward(qdev, *inputs) applying its gates to qdev"
        )
    if tape.elsewhere:
        raise UsageError(f"the module applied {tape.elsewhere} gate(s) to a second device of its own; "
                         "from_torchquantum records the gates of one device")
    if not given and tape.device is not None and tape.device.n_wires != n_wires:
        raise UsageError(f"n_wires={n_wires}, but the device the module's forward creates has {tape.device.n_wires} wires")
    sources = _sources(module, tracked)
    circuit = Circuit(n_wires)
    for index, record in enumerate(tape.records):
        where = f"gate {index} {record.name}"
        if record.name == "i":
            continue
        name, angles, matrix = _translate(record, sources, where)
        if record.inverse:
            name, angles, matrix = _inverted(name, angles, matrix, where)
        if matrix is not None:
            circuit.add("unitary", tuple(record.wires), matrix=matrix)
        else:
            circuit.add(name, tuple(record.wires), tuple(angles) or None)  # add unwraps a one-angle tuple
    return circuit


def _takes_a_device(module: Any, n_inputs: int) -> bool:
    """Whether forward takes the device first (forward(qdev, *inputs)) rather than creating its own
    (forward(x)): by the first argument's annotation or name, else by counting required arguments."""
    try:
        signature = inspect.signature(module.forward)
        arguments = [p for p in signature.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return True
    if not arguments:
        return True  # forward(*args): the form torchquantum's layers use
    first = arguments[0]
    if "QuantumDevice" in str(first.annotation) or first.name in ("qdev", "q_device", "qd", "dev", "device", "q_dev"):
        return True
    required = sum(p.default is p.empty for p in arguments)
    return required > n_inputs


def _translate(record: _Record, sources: list, where: str) -> tuple[str, list, torch.Tensor | None]:
    """qtrain's name, angles (floats and parameter names) and matrix for one recorded gate."""
    tq_name, params = record.name, record.params
    if tq_name in UNITARIES:
        if params is None:
            raise UsageError(f"{where}: a {tq_name} without its matrix")
        if params.requires_grad:
            raise UsageError(f"{where}: a trainable {tq_name} (its matrix depends on Parameters or inputs) has no qtrain gate")
        if len(record.wires) > 2:
            raise UsageError(f"{where}: a {tq_name} on {len(record.wires)} wires; qtrain's unitary takes 1 or 2")
        matrix = params.detach()
        matrix = matrix[0] if matrix.dim() == 3 and (len(matrix) == 1 or bool(torch.all(matrix == matrix[:1]))) else matrix
        return "unitary", [], matrix
    if tq_name == "multirz" and len(record.wires) in (1, 2):
        name = "rz" if len(record.wires) == 1 else "rzz"
    elif tq_name in NAMES:
        name = NAMES[tq_name]
    elif len(record.wires) in (1, 2) and (fixed := _fixed_matrix(record)) is not None:
        return "unitary", [], fixed
    else:
        known = sorted([*NAMES, *UNITARIES, "multirz", "i"])
        raise UsageError(
            f"{where}: qtrain has no gate for torchquantum's {tq_name!r} on {len(record.wires)} wire(s) with "
            f"{'trainable angles' if record.params is not None and record.params.requires_grad else 'this matrix'}; "
            f"it reads {', '.join(known)}, and other gates of 1 or 2 wires with fixed matrices (as unitary)"
        )
    angles = [] if params is None else [_angle(params[:, j], sources, where) for j in range(params.shape[1])]
    return name, angles, None


def _fixed_matrix(record: _Record) -> torch.Tensor | None:
    """The matrix of a gate outside `NAMES` whose matrix depends on no
    Parameter or input (cy, iswap, ecr, sxdg, a crot of fixed angles, ...),
    as torchquantum computes it; None when it has none such."""
    mat, params, dim = record.mat, record.params, 2 ** len(record.wires)
    if params is not None and params.requires_grad:
        return None
    if callable(mat) and record.name not in ("multirz", "multicnot", "multixcnot", "qft"):
        try:
            mat = mat(params)
        except Exception:
            return None
    if not torch.is_tensor(mat) or mat.shape[-2:] != (dim, dim) or mat.dim() not in (2, 3):
        return None
    mat = mat.detach()
    return mat[0] if mat.dim() == 3 and (len(mat) == 1 or bool(torch.all(mat == mat[:1]))) else mat


def theta_from_torchquantum(module: Any, circuit: Circuit, *inputs: torch.Tensor) -> torch.Tensor:
    """theta for an imported circuit, from the module's Parameters now and the
    inputs: (B, P) with inputs, (P,) without (P may be 0); differentiable in the Parameters."""
    named = dict(module.named_parameters())
    batch = inputs[0].shape[0] if inputs else None
    columns = []
    for name in circuit.parameters:
        base, index = _parse(name)
        if base.startswith("input") and (base == "input" or base[5:].isdigit()):
            x = inputs[int(base[5:] or 0)]
            key: tuple[slice | int, ...] = (slice(None), *index)  # every sample's element `index`
            columns.append(x[key])
            continue
        if base not in named:
            raise UsageError(f"parameter {name!r} of the circuit: the module has no Parameter {base!r}")
        value = named[base][index]
        columns.append(value.expand(batch) if batch else value)
    if not columns:  # a circuit without parameters: an empty theta, of the model's dtype
        like = next(iter(named.values()), inputs[0] if inputs else torch.empty(0))
        return torch.zeros((batch, 0) if batch else (0,), dtype=like.dtype if like.is_floating_point() else torch.get_default_dtype())
    return torch.stack(columns, dim=-1)


def _parse(name: str) -> tuple[str, tuple[int, ...]]:
    """`q.params[0,1]` -> ("q.params", (0, 1)); a name without an index -> (name, ())."""
    base, _, rest = name.partition("[")
    return base, tuple(int(i) for i in rest.rstrip("]").split(",")) if rest else ()


def _inverted(name: str, angles: list, matrix: torch.Tensor | None, where: str) -> tuple[str, list, torch.Tensor | None]:
    """The gate torchquantum applies for inverse=True (its matrix's conjugate transpose)."""
    if matrix is not None:
        return name, [], matrix.conj().transpose(-1, -2).resolve_conj()
    if not angles and name in INVERSES:
        return INVERSES[name], [], None
    fixed = GATES[name].matrix if name in GATES else None
    if not angles and fixed is not None:  # sx: no sxdg in qtrain, so its matrix
        return "unitary", [], torch.tensor(fixed, dtype=torch.complex128).conj().transpose(-1, -2).resolve_conj()
    if angles and all(isinstance(a, float) for a in angles):
        if len(angles) == 1:
            return name, [-angles[0]], None
        if name in ("u3", "cu3"):  # u3(t, p, l)^dagger = u3(-t, -l, -p), and so for its controlled form
            return name, [-angles[0], -angles[2], -angles[1]], None
        if name == "cu":  # cu(t, p, l, g)^dagger = cu(-t, -l, -p, -g)
            return name, [-angles[0], -angles[2], -angles[1], -angles[3]], None
        if name == "rot":  # (RZ(w) RY(t) RZ(p))^dagger = RZ(-p) RY(-t) RZ(-w)
            return name, [-angles[2], -angles[1], -angles[0]], None
    raise UsageError(f"{where}: an inverted {name} with trainable angles has no qtrain gate (qtrain cannot negate a parameter)")


@contextlib.contextmanager
def _recording(tape: _Tape) -> Iterator[None]:
    """Wrap torchquantum's gate_wrapper and its readouts wherever they were
    imported: gates on tape.device are recorded, a readout ends the circuit."""
    import_torchquantum()
    original = sys.modules["torchquantum.functional.gate_wrapper"].gate_wrapper
    measurements = sys.modules["torchquantum.measurement.measurements"]
    signature = inspect.signature(original)

    def record(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        call = bound.arguments
        if tape.device is None and not tape.reading:
            tape.device = call["q_device"]  # a module that creates its own device: the first one it applies a gate to
        if call["q_device"] is tape.device and not tape.reading:
            name = call["name"]
            if tape.readout is not None:
                raise UsageError(f"gate {len(tape.records)} {name} comes after the measurement {tape.readout!r}; qtrain circuits measure at the end")
            if call["static"]:
                raise UsageError(f"gate {len(tape.records)} {name} runs in torchquantum's static mode: call module.static_off() first")
            wires = [call["wires"]] if isinstance(call["wires"], int) else [int(w) for w in call["wires"]]
            tape.records.append(_Record(name, wires, _as_columns(call["params"], name), bool(call["inverse"]), call["mat"]))
        elif not tape.reading:
            tape.elsewhere += 1
        return original(*args, **kwargs)

    def readout(function: Any) -> Any:
        @functools.wraps(function)
        def read(*args: Any, **kwargs: Any) -> Any:
            tape.readout = tape.readout or function.__name__
            tape.reading += 1
            try:
                return function(*args, **kwargs)
            finally:
                tape.reading -= 1

        return read

    replacements = {id(original): record}
    for name in READOUTS:
        function = getattr(measurements, name, None)
        if function is not None:
            replacements[id(function)] = readout(function)
    patched = []
    for module in [m for m in list(sys.modules.values()) if isinstance(m, types.ModuleType) and m.__name__.startswith("torchquantum")]:
        for attribute, value in list(vars(module).items()):
            if id(value) in replacements and value is not replacements[id(value)]:
                patched.append((module, attribute, value))
                setattr(module, attribute, replacements[id(value)])
    try:
        yield
    finally:
        for module, attribute, value in patched:
            setattr(module, attribute, value)


def _as_columns(params: Any, name: str) -> torch.Tensor | None:
    """A gate's angles as (rows, k), as torchquantum shapes them (a matrix stays as given)."""
    if params is None:
        return None
    if name in UNITARIES:
        return params if isinstance(params, torch.Tensor) else torch.tensor(params, dtype=torch.complex64)
    params = params if isinstance(params, torch.Tensor) else torch.tensor(params, dtype=torch.float64)
    return params.reshape(1, 1) if params.dim() == 0 else params.unsqueeze(-1) if params.dim() == 1 else params


def _sources(module: Any, inputs: list[Any]) -> list[Source]:
    named = [Source(name, p) for name, p in module.named_parameters() if p.requires_grad]
    labels = ["input"] if len(inputs) == 1 else [f"input{k}" for k in range(len(inputs))]
    hint = " (transform an input before passing it, e.g. x * pi, not inside the module)"
    batches = [Source(label, x, batched=True, hint=hint) for label, x in zip(labels, inputs) if torch.is_tensor(x) and x.requires_grad]
    return named + batches


def _angle(angle: torch.Tensor, sources: list[Source], where: str) -> float | str:
    """An angle column (rows,) as the name of the one element it is (`qtrain.interop._tracing`), or a fixed float."""
    name = trace_angle(angle, sources, where)
    if name is not None:
        return name
    angle = angle.detach()  # a constant, though it may sit in a graph (a fixed angle stacked beside a Parameter)
    if not torch.all(angle == angle[0]):
        raise UsageError(f"{where}: a fixed angle that differs between samples")
    return float(angle[0])


def to_torchquantum(circuit: Circuit, theta: torch.Tensor | None = None) -> Any:
    """A `tq.QuantumModule` applying the circuit's gates.

    Its Parameter `theta` holds one entry per circuit parameter, in
    `circuit.parameters` order (so gates sharing a name share it): `theta`
    when given, zeros otherwise. `module(qdev)` applies the gates to a
    `tq.QuantumDevice` of `circuit.n_qubits` wires, in place, returning
    None; `module(qdev, theta)` uses theta, (P,) or (bsz, P), instead of the
    Parameter (per-sample angles, e.g. inputs). `unitary` gates go in as
    `qubitunitaryfast`; `pauli_rot` (per-sample axes) is refused."""
    tq, tqf = import_torchquantum()
    back = {**EXPORTS, "unitary": "qubitunitaryfast"}
    for index, op in enumerate(circuit.ops):
        if op.name not in back:
            raise UsageError(f"gate {index} ({op.name!r}): torchquantum has no gate for it")
    initial = torch.zeros(circuit.n_params) if theta is None else torch.as_tensor(theta, dtype=torch.float32).detach().clone()
    if initial.shape != (circuit.n_params,):
        raise UsageError(f"theta must have shape ({circuit.n_params},), got {tuple(initial.shape)}")

    # torchquantum is imported at run time (an optional extra), so its module class is a value here, not a type
    module_class: Any = tq.QuantumModule

    class Converted(module_class):
        def __init__(self) -> None:
            super().__init__()
            self.n_wires = circuit.n_qubits
            self.theta = torch.nn.Parameter(initial)

        def forward(self, qdev: Any, theta: torch.Tensor | None = None) -> None:
            values = self.theta if theta is None else theta
            if values.dim() == 2 and len(values) > 1 and (batched := [op.name for op in circuit.ops if op.name in _SHARED_ONLY]):
                raise UsageError(f"{batched[0]} goes out as torchquantum's {EXPORTS[batched[0]]}, whose matrix fails on "
                                 f"per-sample angles (torchquantum-ng 0.2.0); pass one theta of shape ({circuit.n_params},)")
            for op in circuit.ops:
                wires = list(op.qubits)
                if op.name == "unitary":
                    assert op.matrix is not None, "a unitary gate holds its matrix"
                    tqf.qubitunitaryfast(qdev, wires=wires, params=op.matrix.to(torch.complex64))
                    continue
                params = None
                if op.params:
                    columns = [values[..., p] if p is not None else torch.full(values.shape[:-1], fixed_angle(a), dtype=values.dtype) for p, a in zip(op.params, op.angles)]
                    if op.name == "cp":  # as cu3(0, 0, a) (EXPORTS)
                        columns = [torch.zeros_like(columns[0]), torch.zeros_like(columns[0]), columns[0]]
                    params = torch.stack(columns, dim=-1).reshape(-1, len(columns))
                getattr(tqf, back[op.name])(qdev, wires=wires, params=params)

    return Converted()
