"""torchquantum (torchquantum-ng) in and out of qtrain circuits.

`from_torchquantum` runs a `tq.QuantumModule` once and records the gates it
applies. torchquantum's own op history keeps only detached angle values, so
parameter identity comes from elsewhere: every functional gate of
torchquantum goes through one function, `gate_wrapper`, and while the
module runs that function is wrapped (in each module that imported it) to
record the gate's name, wires and the angle tensor itself. Each angle is
then traced by autograd to where it came from: an element of one of the
module's Parameters (named by its dotted name, `name[i]` for an element of
a larger tensor), a column of an input (named `input[j]`, or
`input<k>[j]` for the k-th of several inputs), or nothing (a fixed float).
The same Parameter element on several gates is one shared qtrain
parameter. An angle computed from them (2 * w, w + x) and a gate qtrain has
no row for are refused with their names.

`to_torchquantum` goes the other way: a QuantumModule with one Parameter
per circuit parameter (shared ones shared), applying the same gates.

Both import torchquantum through `import_torchquantum`: torchquantum
imports torchvision for its datasets, and beside a CPU torch no loadable
torchvision exists on PyPI, so on failure the import is retried with that
subpackage replaced by an empty module (the simulator never uses it).
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import types
from collections.abc import Iterator
from typing import Any

import torch

from qtrain.circuit import Circuit

_IMPORTED: tuple[Any, Any] | None = None

#: torchquantum's gate names -> qtrain's (its conventions checked against qtrain's in tests)
NAMES = {
    "hadamard": "h", "paulix": "x", "pauliy": "y", "pauliz": "z", "s": "s", "sdg": "sdg", "t": "t", "tdg": "tdg", "sx": "sx",
    "cnot": "cnot", "cz": "cz", "swap": "swap", "rx": "rx", "ry": "ry", "rz": "rz", "rxx": "rxx", "ryy": "ryy", "rzz": "rzz",
    "crx": "crx", "cry": "cry", "crz": "crz", "u3": "u3", "rot": "rot", "phaseshift": "p", "u1": "p",
}
#: the inverse of a fixed gate, where it is in the table
INVERSES = {"s": "sdg", "sdg": "s", "t": "tdg", "tdg": "t", **{g: g for g in ("h", "x", "y", "z", "cnot", "cz", "swap")}}


def import_torchquantum() -> tuple[Any, Any]:
    """(torchquantum, torchquantum.functional), imported once (see the module docstring)."""
    global _IMPORTED
    if _IMPORTED is None:
        try:
            import torchquantum  # noqa: F401
        except ModuleNotFoundError as error:
            if error.name == "torchquantum":
                raise ImportError('torchquantum is not installed: pip install -c constraints/torch-cpu.txt "qtrain[interop]" && pip install --no-deps torchquantum-ng torchpack') from error
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


def from_torchquantum(module: Any, n_wires: int, *inputs: torch.Tensor) -> Circuit:
    """The circuit a `tq.QuantumModule` applies, recorded by running
    `module(qdev, *inputs)` once on an `n_wires` device (see the module
    docstring for how angles become parameters, inputs and floats).
    Parameters named `input[j]` are columns of the input: pass them in
    theta beside the trained ones (`theta_from_torchquantum`)."""
    tq, _ = import_torchquantum()
    tracked = [x.detach().clone().requires_grad_(True) for x in inputs]
    batch = tracked[0].shape[0] if tracked else 1
    records: list[tuple[str, list[int], torch.Tensor | None, bool]] = []
    with _recording(records):
        module(tq.QuantumDevice(n_wires=n_wires, bsz=batch), *tracked)
    sources = _sources(module, tracked)
    circuit = Circuit(n_wires)
    for index, (tq_name, wires, params, inverse) in enumerate(records):
        where = f"operation {index} ({tq_name!r})"
        if tq_name == "i":
            continue
        if tq_name not in NAMES:
            raise ValueError(f"{where}: qtrain has no gate for torchquantum's {tq_name!r}; it reads {', '.join(sorted(NAMES))}")
        name = NAMES[tq_name]
        angles = [] if params is None else [_source(params[:, j], sources, where) for j in range(params.shape[1])]
        if inverse:
            name, angles = _inverted(name, angles, where)
        circuit.add(name, tuple(wires), tuple(angles) if len(angles) > 1 else (angles[0] if angles else None))
    return circuit


def theta_from_torchquantum(module: Any, circuit: Circuit, *inputs: torch.Tensor) -> torch.Tensor:
    """theta for an imported circuit, from the module's Parameters now and the
    inputs: (B, P) with inputs, (P,) without; differentiable in the Parameters."""
    named = dict(module.named_parameters())
    batch = inputs[0].shape[0] if inputs else None
    columns = []
    for name in circuit.parameters:
        base, _, rest = name.partition("[")
        if base.startswith("input") and (base == "input" or base[5:].isdigit()):
            x = inputs[int(base[5:] or 0)]
            columns.append(x[:, int(rest[:-1])])
            continue
        value = named[base].reshape(-1)[int(rest[:-1])] if rest else named[base].reshape(())
        columns.append(value.expand(batch) if batch else value)
    return torch.stack(columns, dim=-1)


def _inverted(name: str, angles: list, where: str) -> tuple[str, list]:
    if not angles and name in INVERSES:
        return INVERSES[name], []
    if len(angles) == 1 and isinstance(angles[0], float):
        return name, [-angles[0]]
    raise ValueError(f"{where}: an inverted {name} with {'trainable ' if angles else ''}angles has no qtrain gate")


@contextlib.contextmanager
def _recording(records: list) -> Iterator[None]:
    """Wrap torchquantum's gate_wrapper wherever it was imported, recording each call."""
    import_torchquantum()
    original = sys.modules["torchquantum.functional.gate_wrapper"].gate_wrapper
    signature = inspect.signature(original)

    def record(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        call = bound.arguments
        wires = [call["wires"]] if isinstance(call["wires"], int) else list(call["wires"])
        records.append((call["name"], wires, _as_columns(call["params"], call["name"]), bool(call["inverse"])))
        return original(*args, **kwargs)

    patched = [m for m in list(sys.modules.values()) if isinstance(m, types.ModuleType) and m.__name__.startswith("torchquantum") and getattr(m, "gate_wrapper", None) is original]
    for m in patched:
        m.gate_wrapper = record
    try:
        yield
    finally:
        for m in patched:
            m.gate_wrapper = original


def _as_columns(params: Any, name: str) -> torch.Tensor | None:
    """A gate's angles as (rows, k), as torchquantum shapes them (a matrix stays as given)."""
    if params is None or name.startswith("qubitunitary"):
        return params
    params = params if isinstance(params, torch.Tensor) else torch.tensor(params, dtype=torch.float64)
    return params.reshape(1, 1) if params.dim() == 0 else params.unsqueeze(-1) if params.dim() == 1 else params


def _sources(module: Any, inputs: list[torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
    labels = ["input"] if len(inputs) == 1 else [f"input{k}" for k in range(len(inputs))]
    return named + list(zip(labels, inputs))


def _source(angle: torch.Tensor, sources: list[tuple[str, torch.Tensor]], where: str) -> float | str:
    """An angle column (rows,) as a fixed float or the name of the one element it is."""
    if not angle.requires_grad:
        if not torch.all(angle == angle[0]):
            raise ValueError(f"{where}: a fixed angle that differs between samples")
        return float(angle[0])
    grads = torch.autograd.grad(angle.sum(), [t for _, t in sources], allow_unused=True, retain_graph=True)
    found = [(label, tensor, g) for (label, tensor), g in zip(sources, grads) if g is not None and g.count_nonzero() > 0]
    if len(found) == 1:
        label, tensor, g = found[0]
        if label.startswith("input"):  # one column, weight 1 in every row
            columns = g.ne(0).any(0).nonzero().flatten()
            if len(columns) == 1 and torch.equal(angle.detach(), tensor.detach()[:, columns[0]].to(angle.dtype)):
                return f"{label}[{columns[0].item()}]"
        else:
            flat = g.reshape(-1).nonzero().flatten()
            if len(flat) == 1 and torch.all(angle.detach() == tensor.detach().reshape(-1)[flat[0]]):
                return label if tensor.numel() == 1 else f"{label}[{flat[0].item()}]"
    raise ValueError(f"{where}: an angle computed from trainable values or inputs ({', '.join(f[0] for f in found)}); qtrain parameters enter gates as they are")


def to_torchquantum(circuit: Circuit, theta: torch.Tensor | None = None) -> Any:
    """A `tq.QuantumModule` applying the circuit's gates, with `theta` (its
    Parameter, one entry per circuit parameter, zeros unless given).
    `module(qdev)` applies them to a `tq.QuantumDevice`."""
    tq, tqf = import_torchquantum()
    back = {qtrain: tq_name for tq_name, qtrain in NAMES.items() if tq_name != "u1"}
    for index, op in enumerate(circuit.ops):
        if op.name not in back:
            raise ValueError(f"gate {index} ({op.name!r}): torchquantum has no gate for it")
    initial = torch.zeros(circuit.n_params) if theta is None else torch.as_tensor(theta, dtype=torch.float32).detach().clone()

    class Converted(tq.QuantumModule):
        def __init__(self) -> None:
            super().__init__()
            self.n_wires = circuit.n_qubits
            self.theta = torch.nn.Parameter(initial)

        def forward(self, qdev: Any) -> None:
            for op in circuit.ops:
                params = None
                if op.params:
                    values = [self.theta[p] if p is not None else torch.tensor(a, dtype=self.theta.dtype) for p, a in zip(op.params, op.angles)]
                    params = torch.stack(values).reshape(1, -1)
                getattr(tqf, back[op.name])(qdev, wires=list(op.qubits), params=params)

    return Converted()
