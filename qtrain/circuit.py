"""Circuits as plain data, with parameter sharing by name.

A `Circuit` is an append-only list of frozen `Op`s. Every trainable rotation
holds an integer index into theta; names are sugar, mapped to indices in the
order of first use, so `rx(0, "a"); rz(1, "a")` ties both rotations to theta[0]
and autograd sums their gradients. Each gate is validated when it is added, so
running a circuit never meets a malformed gate.
"""

from __future__ import annotations

import hashlib
import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING, Any, Literal, overload

import torch

from qtrain import _execution, _noisy
from qtrain._circuit_data import CircuitData
from qtrain._drawing import draw
from qtrain.engine import Program, check_diff_method
from qtrain.engine.gates import GATES, PAULI_AXES, GateKind
from qtrain.engine.observables import Observable
from qtrain.engine.shots import check_shots
from qtrain.engine.summary import PlanSummary
from qtrain.noise import NoiseModel

__all__ = ["Angle", "Circuit", "Op"]

#: A gate argument: a float is a fixed angle (radians), a str names a trainable parameter.
Angle = float | str
#: Under torch.compile a circuit's run is a clean graph break: the engine's plan
#: (chunks, fused layers, light cones) is data-dependent Python that dynamo
#: cannot trace, so the classical parts of a hybrid model compile around it.
eager = torch.compiler.disable


@dataclass(frozen=True, eq=False)
class Op:
    """One gate. Per angle argument of the gate, `params` holds the index of
    its trainable parameter (or None) and `angles` its fixed value (or None);
    `axes` holds per-sample Pauli axes (0=X, 1=Y, 2=Z) for `pauli_rot`;
    `matrix` the user's operator for `unitary`."""

    name: str
    qubits: tuple[int, ...]
    params: tuple[int | None, ...] = ()
    angles: tuple[float | None, ...] = ()
    axes: torch.Tensor | None = None
    matrix: torch.Tensor | None = None

    @property
    def param(self) -> int | None:
        """The parameter of a one-argument gate (None when its angle is fixed)."""
        return self._only(self.params)

    @property
    def angle(self) -> float | None:
        """The fixed angle of a one-argument gate (None when it is trainable)."""
        return self._only(self.angles)

    def _only(self, values: tuple) -> Any:
        if len(values) > 1:
            raise AttributeError(f"{self.name} takes {len(values)} angles: use .params and .angles")
        return values[0] if values else None


class Circuit:
    """A parameterized circuit on `n_qubits` qubits (qubit 0 = most significant bit)."""

    def __init__(self, n_qubits: int) -> None:
        if isinstance(n_qubits, bool) or not isinstance(n_qubits, int) or n_qubits < 1:
            raise ValueError(f"n_qubits must be a positive int, got {n_qubits!r}")
        self.n_qubits = n_qubits
        self._ops: list[Op] = []
        self._names: dict[str, int] = {}
        self._data: CircuitData | None = None  # the frozen snapshot runs compile from; dropped when a gate is added

    # ---- building -----------------------------------------------------------------

    @property
    def ops(self) -> tuple[Op, ...]:
        """The gates so far, in order (a snapshot: adding gates later does not change it)."""
        return self._snapshot().ops

    @property
    def parameters(self) -> tuple[str, ...]:
        """Parameter names in order of first use; theta[..., i] is parameters[i]."""
        return tuple(self._names)

    @property
    def n_params(self) -> int:
        """How many free parameters theta has: the number of distinct parameter names."""
        return len(self._names)

    @property
    def slot_params(self) -> tuple[int, ...]:
        """For each trainable rotation the engine runs (a parametric gate runs
        its recipe: u3 has up to five), in circuit order, its parameter."""
        return self._snapshot().slot_params

    @property
    def slot_scales(self) -> tuple[float, ...]:
        """Per slot, the factor between its parameter and its angle (1, or
        +-1/2 in a controlled rotation)."""
        return self._snapshot().slot_scales

    @property
    def slot_frequencies(self) -> tuple[float, ...]:
        """Per slot, the highest frequency its rotation adds to a cost as a
        function of its parameter: |scale| for a Pauli generator, 0 for a
        global phase (which no cost sees). A parameter's degree is the sum
        over its slots; a half-integer one (a controlled rotation) makes the
        cost periodic only in 4 pi."""
        return tuple(frequency for _, _, frequency in self._snapshot().slots)

    @property
    def arg_params(self) -> tuple[int, ...]:
        """For each trainable gate argument, in circuit order, its parameter
        (what `untied` gives a parameter of its own)."""
        return tuple(p for op in self._ops for p in op.params if p is not None)

    @property
    def gate_batch(self) -> int:
        """The batch the gates themselves fix: B when a `pauli_rot` has (B,)
        axes or a `unitary` a (B, d, d) matrix, else 1 (theta's batch then
        must be 1 or B)."""
        return self._snapshot().gate_batch

    def _snapshot(self) -> CircuitData:
        """The gates so far, frozen (the same object until the next gate is
        added): what runs compile from and the execution cache keys on."""
        if self._data is None:
            self._data = CircuitData.of(self.n_qubits, tuple(self._ops), tuple(self._names))
        return self._data

    def add(self, name: str, qubits: int | Sequence[int], angle: Angle | Sequence[Angle] | None = None, *, axes: Any = None, matrix: Any = None) -> Circuit:
        """Append a gate by name (see `qtrain.engine.gates.GATES`); returns self.

        `angle`: a float (fixed) or a str (a parameter's name) for a
        one-angle gate; a tuple of them for a gate of several, e.g.
        `add("u3", 0, ("t", 0.3, "t"))`."""
        index = len(self._ops)
        where = f"gate {index} ({name!r})"
        spec = GATES.get(name)
        if spec is None:
            raise ValueError(f"{where}: unknown gate {name!r}; known gates: {', '.join(sorted(GATES))}")
        qubits = (qubits,) if isinstance(qubits, int) else tuple(qubits)
        if spec.kind == GateKind.UNITARY:
            matrix = _check_matrix(where, matrix, len(qubits))
        else:
            _forbid(where, "matrix", matrix)
        width = spec.n_qubits or len(qubits)
        if len(qubits) != width:
            raise ValueError(f"{where}: takes {width} qubit(s), got {qubits}")
        for q in qubits:
            if isinstance(q, bool) or not isinstance(q, int) or not 0 <= q < self.n_qubits:
                raise ValueError(f"{where}: qubit {q!r} out of range for a {self.n_qubits}-qubit circuit")
        if len(set(qubits)) != len(qubits):
            raise ValueError(f"{where}: repeated qubit in {qubits}")
        if spec.kind == GateKind.PAULI_ROTATION:
            axes = _check_axes(where, axes)
        else:
            _forbid(where, "axes", axes)
        params, fixed = self._resolve_angles(where, spec.n_params, angle)
        self._ops.append(Op(name, qubits, params, fixed, axes, matrix))
        self._data = None
        return self

    def _append_checked(self, op: Op) -> None:
        """Append a gate its caller has already validated as `add` would (the
        OpenQASM reader's fixed gates: `add` costs about 12 us a gate)."""
        self._ops.append(op)
        self._data = None

    def _resolve_angles(self, where: str, n_params: int, angle: Any) -> tuple[tuple[int | None, ...], tuple[float | None, ...]]:
        if n_params == 0:
            if angle is not None:
                raise ValueError(f"{where}: takes no angle, got {angle!r}")
            return (), ()
        many = isinstance(angle, (tuple, list))
        if n_params > 1 and (not many or len(angle) != n_params):
            raise ValueError(f"{where}: takes {n_params} angles (a tuple of floats or parameter names), got {angle!r}")
        if many and n_params == 1:
            if len(angle) != 1:
                raise ValueError(f"{where}: takes 1 angle, got {angle!r}")
            angle = angle[0]
        resolved = [self._resolve_angle(where, a) for a in (angle if n_params > 1 else [angle])]
        return tuple(p for p, _ in resolved), tuple(a for _, a in resolved)

    def _resolve_angle(self, where: str, angle: Any) -> tuple[int | None, float | None]:
        if type(angle) is float and math.isfinite(angle):  # the common case, before the slow ABC check of Real
            return None, angle
        if isinstance(angle, str):
            if not angle:
                raise ValueError(f"{where}: a parameter name must be a non-empty string")
            return self._names.setdefault(angle, len(self._names)), None
        if isinstance(angle, bool) or not isinstance(angle, Real):
            raise TypeError(f"{where}: angle must be a float (fixed) or a str (parameter name), got {angle!r}")
        if not math.isfinite(float(angle)):
            raise ValueError(f"{where}: angle must be finite, got {angle!r}")
        return None, float(angle)

    # Shortcut methods: the ones below are written out (their signatures predate the generator and stay); every
    # other gate of the table gets one from `_add_gate_methods` below the class, so a new table row is a new method.

    def rx(self, qubit: int, angle: Angle) -> Circuit:
        """Append rx(angle) = exp(-i angle X / 2) on `qubit`; a str angle names a parameter. Returns self."""
        return self.add("rx", qubit, angle)

    def ry(self, qubit: int, angle: Angle) -> Circuit:
        """Append ry(angle) = exp(-i angle Y / 2) on `qubit`; a str angle names a parameter. Returns self."""
        return self.add("ry", qubit, angle)

    def rz(self, qubit: int, angle: Angle) -> Circuit:
        """Append rz(angle) = exp(-i angle Z / 2) on `qubit`; a str angle names a parameter. Returns self."""
        return self.add("rz", qubit, angle)

    def pauli_rot(self, qubit: int, angle: Angle, axes: Any) -> Circuit:
        """Append a rotation about a per-sample Pauli axis: `axes` is (B,) of 0/1/2 or 'X'/'Y'/'Z'. Returns self."""
        return self.add("pauli_rot", qubit, angle, axes=axes)

    def h(self, qubit: int) -> Circuit:
        """Append the Hadamard gate on `qubit`. Returns self."""
        return self.add("h", qubit)

    def x(self, qubit: int) -> Circuit:
        """Append Pauli X on `qubit`. Returns self."""
        return self.add("x", qubit)

    def y(self, qubit: int) -> Circuit:
        """Append Pauli Y on `qubit`. Returns self."""
        return self.add("y", qubit)

    def z(self, qubit: int) -> Circuit:
        """Append Pauli Z on `qubit`. Returns self."""
        return self.add("z", qubit)

    def s(self, qubit: int) -> Circuit:
        """Append S = diag(1, i) on `qubit`. Returns self."""
        return self.add("s", qubit)

    def t(self, qubit: int) -> Circuit:
        """Append T = diag(1, e^{i pi/4}) on `qubit`. Returns self."""
        return self.add("t", qubit)

    def sx(self, qubit: int) -> Circuit:
        """Append SX, the square root of X on `qubit`. Returns self."""
        return self.add("sx", qubit)

    def cz(self, a: int, b: int) -> Circuit:
        """Append CZ on qubits `a`, `b` (symmetric). Returns self."""
        return self.add("cz", (a, b))

    def cnot(self, control: int, target: int) -> Circuit:
        """Append CNOT from `control` to `target`. Returns self."""
        return self.add("cnot", (control, target))

    def swap(self, a: int, b: int) -> Circuit:
        """Append SWAP of qubits `a` and `b`. Returns self."""
        return self.add("swap", (a, b))

    def unitary(self, qubits: int | Sequence[int], matrix: Any) -> Circuit:
        """Append a general 1- or 2-qubit unitary, (d, d) shared or (B, d, d) per sample. Returns self."""
        return self.add("unitary", qubits, matrix=matrix)

    if TYPE_CHECKING:  # what the type checker sees of the methods `_add_gate_methods` generates (tests/test_circuits.py keeps them equal)

        def p(self, qubit: int, angle: Angle) -> Circuit: ...
        def sdg(self, qubit: int) -> Circuit: ...
        def tdg(self, qubit: int) -> Circuit: ...
        def u3(self, qubit: int, theta: Angle, phi: Angle, lam: Angle) -> Circuit: ...
        def rot(self, qubit: int, phi: Angle, theta: Angle, omega: Angle) -> Circuit: ...
        def rxx(self, a: int, b: int, angle: Angle) -> Circuit: ...
        def ryy(self, a: int, b: int, angle: Angle) -> Circuit: ...
        def rzz(self, a: int, b: int, angle: Angle) -> Circuit: ...
        def rzx(self, a: int, b: int, angle: Angle) -> Circuit: ...
        def crx(self, control: int, target: int, angle: Angle) -> Circuit: ...
        def cry(self, control: int, target: int, angle: Angle) -> Circuit: ...
        def crz(self, control: int, target: int, angle: Angle) -> Circuit: ...
        def cp(self, control: int, target: int, angle: Angle) -> Circuit: ...
        def cu3(self, control: int, target: int, theta: Angle, phi: Angle, lam: Angle) -> Circuit: ...
        def cu(self, control: int, target: int, theta: Angle, phi: Angle, lam: Angle, gamma: Angle) -> Circuit: ...

    @classmethod
    def from_gates(cls, gates: Iterable[Sequence[Any]], n_qubits: int) -> Circuit:
        """Build from (name, qubits, angle_or_param_or_None[, axes]) tuples; a
        gate of several angles takes a tuple of them (`("u3", (0,), ("a",
        0.3, "b"))`); for "unitary" the third entry is the matrix."""
        circuit = cls(n_qubits)
        for i, gate in enumerate(gates):
            if not 3 <= len(gate) <= 4:
                raise ValueError(f"gate {i}: expected (name, qubits, angle[, axes]), got {gate!r}")
            name, qubits, arg = gate[:3]
            if name == "unitary":
                circuit.add(name, qubits, matrix=arg)
            else:
                circuit.add(name, qubits, arg, axes=gate[3] if len(gate) == 4 else None)
        return circuit

    def to_qasm(self, version: int = 3, theta: Any = None) -> str:
        """OpenQASM text of this circuit (`qtrain.interop.qasm.to_qasm`): version 3
        keeps the parameters as `input float`s, version 2 binds them from `theta`.
        QASM's q[i] is qubit i (only statevector layouts differ: Qiskit's is
        little-endian, qtrain's qubit 0 is the most significant bit)."""
        from qtrain.interop.qasm import to_qasm

        return to_qasm(self, version=version, theta=theta)

    @classmethod
    def from_qasm(cls, text: str) -> Circuit:
        """A circuit from OpenQASM 2 or 3 text (`qtrain.interop.qasm.from_qasm`;
        needs the `interop` extra's parser); `input float`s become parameters."""
        from qtrain.interop.qasm import from_qasm

        return from_qasm(text)

    def untied(self) -> Circuit:
        """The same circuit with every trainable gate argument given its own
        parameter, in the order of `arg_params`: "<name>@<gate index>", or
        "<name>@<gate index>.<argument>" in a gate of several angles."""
        out = Circuit(self.n_qubits)
        names = self.parameters
        for i, op in enumerate(self._ops):
            tag = (lambda k: f"@{i}") if len(op.params) == 1 else (lambda k: f"@{i}.{k}")
            args: tuple[Angle, ...] = tuple(f"{names[p]}{tag(k)}" if p is not None else _fixed(a) for k, (p, a) in enumerate(zip(op.params, op.angles)))
            out.add(op.name, op.qubits, args or None, axes=op.axes, matrix=op.matrix)
        return out

    def __len__(self) -> int:
        return len(self._ops)

    def __repr__(self) -> str:
        return f"Circuit(n_qubits={self.n_qubits}, gates={len(self)}, parameters={self.parameters})"

    def __str__(self) -> str:
        """The circuit drawn as text (`qtrain._drawing.draw`)."""
        return draw(self)

    def gate_list(self) -> list[str]:
        """One line per gate: name, qubits, and its parameter name or fixed angle
        (per-sample axes and matrices are summarized by their shape)."""
        lines = []
        for op in self._ops:
            line = f"{op.name} {','.join(map(str, op.qubits))}"
            if op.params:
                line += " " + ",".join(self.parameters[p] if p is not None else repr(a) for p, a in zip(op.params, op.angles))
            for extra in (op.axes, op.matrix):
                if extra is not None:
                    line += f" {tuple(extra.shape)}"
            lines.append(line)
        return lines

    def fingerprint(self) -> str:
        """A short hash of every gate (axes and matrices by value): equal for
        equal circuits, so a run folder can refuse rows of another circuit."""
        digest = hashlib.sha256("\n".join(self.gate_list()).encode())
        for op in self._ops:
            for extra in (op.axes, op.matrix):
                if extra is not None:
                    digest.update(extra.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    # ---- running -------------------------------------------------------------------

    def program(self) -> Program:
        """The lowered, fused engine program of every gate (compiled once per
        state of the circuit, kept in the execution cache)."""
        return _execution.compiled(self._snapshot()).program

    @eager
    def state(
        self,
        theta: torch.Tensor | None = None,
        *,
        dtype: torch.dtype | None = None,
        diff_method: str = "backprop",
        initial_state: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Final states, (B, 2**n) complex. dtype defaults to complex128 for a
        float64 theta and complex64 otherwise. `initial_state`, (2**n,) or
        (B, 2**n), replaces |0...0> (e.g. to run a deep circuit layer by layer)."""
        return _execution.states(self._snapshot(), theta, dtype, diff_method, initial_state)

    @eager
    def expval(
        self,
        theta: torch.Tensor | None,
        observable: Observable | Sequence[Observable],
        *,
        dtype: torch.dtype | None = None,
        diff_method: str = "backprop",
        initial_state: torch.Tensor | None = None,
        light_cone: bool = True,
        shots: int | None = None,
        seed: int | None = None,
        first_row: int = 0,
        noise: NoiseModel | None = None,
        method: str | None = None,
        trajectories: int | None = None,
    ) -> torch.Tensor:
        """<H> per sample: (B,) for one observable, (B, K) for a list of K.

        Only the gates in the observables' backward light cone run, on the
        qubits they touch (exact, and the other gates' parameters get
        gradient 0); `light_cone=False` runs every gate, and a given
        `initial_state` always does.

        `shots`: estimate each value from that many measurements per group of
        qubit-wise commuting terms (`qtrain.engine.shots`) instead of exactly;
        the estimates are differentiable by parameter shift, with as many shots
        per shifted evaluation (`diff_method` is then not used). Row i's samples
        depend only on (`seed`, i): the same seed gives the same numbers at any
        chunk size; seed=None draws one from torch's global generator. Where
        one batch is split across ranks or calls, `first_row` is the batch
        index of theta's first row: row i then samples as row first_row + i of
        the whole batch would.

        `noise` (a `qtrain.noise.NoiseModel`): channels after every gate and
        readout error. `method="density"` (the default with noise) evolves the
        density matrix exactly, differentiable by autograd; `trajectories=T`
        (or `method="trajectories"`) averages T Monte-Carlo trajectories per
        sample, row (sample i, trajectory t) keyed by (`seed`, first_row + i, t),
        with gradients for Pauli channels only. See the Noise guide."""
        data = self._snapshot()
        if noise is not None or method is not None or trajectories is not None:
            model, how, count = _checked_noise(noise, method, trajectories, shots, seed)
            check_diff_method(diff_method)
            if diff_method == "adjoint":
                raise ValueError("diff_method='adjoint' does not apply under noise: the density method differentiates by autograd, "
                                 "trajectories by each trajectory's adjoint, shots by parameter shift")
            if shots is not None:
                _noisy.check_no_initial_state(data, initial_state)
                return _noisy.noisy_shot_expectation(data, theta, observable, model, shots, seed, dtype, light_cone, first_row)
            return _noisy.noisy_expectation(data, theta, observable, model, how, count, seed, dtype, initial_state, light_cone, first_row)
        checked = _checked_shots(shots, seed, first_row)
        if checked is None:
            return _execution.expectation(data, theta, observable, dtype, diff_method, initial_state, light_cone)
        return _execution.shot_expectation(data, theta, observable, checked, seed, dtype, initial_state, light_cone, first_row)

    @eager
    def infidelity(
        self,
        theta: torch.Tensor | None,
        target: torch.Tensor,
        *,
        dtype: torch.dtype | None = None,
        diff_method: str = "backprop",
        initial_state: torch.Tensor | None = None,
        noise: NoiseModel | None = None,
        method: str | None = None,
        trajectories: int | None = None,
        seed: int | None = None,
        first_row: int = 0,
    ) -> torch.Tensor:
        """1 - |<target|psi(theta)>|^2 per sample, (B,). With `noise` (as in `expval`): 1 - <target|rho|target>
        (readout error is refused here: it flips measured bits of Pauli terms, and a fidelity is not one)."""
        data = self._snapshot()
        if noise is not None or method is not None or trajectories is not None:
            model, how, count = _checked_noise(noise, method, trajectories, None, seed)
            check_diff_method(diff_method)
            _noisy.check_no_initial_state(data, initial_state)
            return _noisy.noisy_infidelity(data, theta, target, model, how, count, seed, dtype, first_row)
        return _execution.fidelity_cost(data, theta, target, dtype, diff_method, initial_state)

    @eager
    def density_matrix(self, theta: torch.Tensor | None = None, *, noise: NoiseModel | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Final density matrices (B, 2**n, 2**n) with the channels of `noise` (None: noiseless, |psi><psi|),
        differentiable by autograd. Memory grows as 4**n per sample: refused up front when it does not fit.
        The state before measurement: a model's readout error acts on measured bits, so it is not in rho."""
        return _noisy.density_matrices(self._snapshot(), theta, NoiseModel() if noise is None else noise, dtype)

    @overload
    def value_and_grad(
        self, theta: torch.Tensor | None, cost: Observable | torch.Tensor | Callable[[torch.Tensor], torch.Tensor], *,
        dtype: torch.dtype | None = ..., initial_state: torch.Tensor | None = ..., light_cone: bool = ...,
        shots: int | None = ..., seed: int | None = ..., first_row: int = ..., return_stderr: Literal[False] = ...,
        noise: NoiseModel | None = ..., method: str | None = ..., trajectories: int | None = ...,
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    @overload
    def value_and_grad(
        self, theta: torch.Tensor | None, cost: Observable | torch.Tensor | Callable[[torch.Tensor], torch.Tensor], *,
        dtype: torch.dtype | None = ..., initial_state: torch.Tensor | None = ..., light_cone: bool = ...,
        shots: int | None = ..., seed: int | None = ..., first_row: int = ..., return_stderr: Literal[True],
        noise: NoiseModel | None = ..., method: str | None = ..., trajectories: int | None = ...,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]: ...

    @eager
    def value_and_grad(
        self,
        theta: torch.Tensor | None,
        cost: Observable | torch.Tensor | Callable[[torch.Tensor], torch.Tensor],
        *,
        dtype: torch.dtype | None = None,
        initial_state: torch.Tensor | None = None,
        light_cone: bool = True,
        shots: int | None = None,
        seed: int | None = None,
        first_row: int = 0,
        return_stderr: bool = False,
        noise: NoiseModel | None = None,
        method: str | None = None,
        trajectories: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """A per-sample cost and its gradient: -> values (B,), d value / d theta (B, n_params).

        `cost` is an observable (its expectation), a target state (2**n,) or
        (B, 2**n) (the infidelity 1 - |<target|psi>|^2), or a function from final
        states (c, 2**n) to values (c,), each depending on its own sample's
        state only and differentiable by autograd. Adjoint differentiation runs
        chunk by chunk (forward, cost, back), so memory stays at a few chunks
        of states whatever the batch and depth; use `expval(...,
        diff_method="adjoint")` and autograd for anything else. An observable
        runs in its light cone, as in `expval`.

        `shots`: estimates instead, for an observable cost only (a target state
        or a function of states is not a Pauli sum, so not measurable): the
        value from `shots` measurements per group of commuting terms, and the
        gradient by parameter shift, every rotation of a shared parameter
        shifted on its own, `shots` per shifted evaluation. `return_stderr=True`
        adds a third item, the standard errors of both estimates estimated from
        the same samples: ((B,), (B, n_params)); with exact values they are
        zeros. Same `seed`, same samples; `first_row` as in `expval`.

        `noise`, `method`, `trajectories`: as in `expval`, for an observable
        cost. The density method's gradient is autograd through the
        density evolution (checkpointed); trajectories give each
        trajectory's adjoint gradient, averaged, with standard errors over the
        trajectories.
        """
        data = self._snapshot()
        if noise is not None or method is not None or trajectories is not None:
            model, how, count = _checked_noise(noise, method, trajectories, shots, seed)
            if shots is not None:
                _noisy.check_no_initial_state(data, initial_state)
                values, grads, stderr = _noisy.noisy_shot_value_and_gradient(data, theta, cost, model, shots, seed, dtype, light_cone, first_row)
                return (values, grads, stderr) if return_stderr else (values, grads)
            values, grads, stderr = _noisy.noisy_value_and_gradient(data, theta, cost, model, how, count, seed, dtype, initial_state, light_cone, first_row)
            return (values, grads, stderr) if return_stderr else (values, grads)
        checked = _checked_shots(shots, seed, first_row)
        if checked is None:
            values, grads = _execution.value_and_gradient(data, theta, cost, dtype, initial_state, light_cone)
            return (values, grads, (torch.zeros_like(values), torch.zeros_like(grads))) if return_stderr else (values, grads)
        values, grads, stderr = _execution.shot_value_and_gradient(data, theta, cost, checked, seed, dtype, initial_state, light_cone, first_row)
        return (values, grads, stderr) if return_stderr else (values, grads)

    def plan_summary(
        self,
        batch: int = 1,
        *,
        dtype: torch.dtype = torch.complex64,
        observable: Observable | None = None,
        per_sample: bool | None = None,
        device: torch.device | str = "cpu",
    ) -> PlanSummary:
        """What the engine's plan makes of this circuit for `batch` samples:
        passes over the state, block widths, chunks and bytes moved (see
        `qtrain.engine.summary.PlanSummary`; `str()` gives one line).

        With an `observable`, the plan of its light cone (what `expval` and
        `value_and_grad` run). `per_sample`: whether the angles differ between
        samples (default: when batch > 1)."""
        return _execution.plan_summary(self._snapshot(), batch, dtype, observable, per_sample, device)


#: What each generated shortcut appends, for its docstring; a table row missing here gets a generic line.
_GATE_DOCS = {
    "sdg": "S^dagger = diag(1, -i)",
    "tdg": "T^dagger = diag(1, e^{-i pi/4})",
    "p": "the phase gate P(angle) = diag(1, e^{i angle})",
    "u3": "u3(theta, phi, lam) = P(phi) R_Y(theta) P(lam) (Qiskit's U3Gate, exact global phase)",
    "rot": "PennyLane's Rot(phi, theta, omega) = R_Z(omega) R_Y(theta) R_Z(phi)",
    "rxx": "exp(-i angle X X / 2)",
    "ryy": "exp(-i angle Y Y / 2)",
    "rzz": "exp(-i angle Z Z / 2)",
    "rzx": "exp(-i angle Z X / 2), Z on the first qubit (Qiskit's RZXGate)",
    "crx": "R_X(angle) on `target` when `control` is 1",
    "cry": "R_Y(angle) on `target` when `control` is 1",
    "crz": "R_Z(angle) on `target` when `control` is 1",
    "cp": "the controlled phase diag(1, 1, 1, e^{i angle}) (OpenQASM 2's cu1)",
    "cu3": "u3(theta, phi, lam) on `target` when `control` is 1 (Qiskit's CU3Gate)",
    "cu": "u3(theta, phi, lam) and the phase e^{i gamma} on `target` when `control` is 1 (Qiskit's CUGate)",
}
#: Argument names of the generated shortcuts of several angles, in the gate's argument order.
_ANGLE_NAMES = {"u3": ("theta", "phi", "lam"), "rot": ("phi", "theta", "omega"), "cu3": ("theta", "phi", "lam"),
                "cu": ("theta", "phi", "lam", "gamma")}


def _gate_method(name: str) -> Callable[..., Circuit]:
    """A builder method for the table's gate `name`: qubits, then angles, as positional or keyword
    arguments (`c.u3(0, theta="t", phi=0.3, lam="t")`), appended by `Circuit.add`. Built once per gate,
    with its own __name__, __doc__ and signature, so help(Circuit) and API docs list it like a written one."""
    spec = GATES[name]
    controlled = spec.n_qubits == 2 and name.startswith("c")
    qubit_names = ("qubit",) if spec.n_qubits == 1 else ("control", "target") if controlled else ("a", "b")
    angle_names = _ANGLE_NAMES.get(name, ("angle",) * spec.n_params)
    if len(angle_names) != spec.n_params or spec.kind not in (GateKind.FIXED, GateKind.PARAMETRIC):
        raise ValueError(f"no shortcut method for gate {name!r}: write one in Circuit")  # a new kind of row
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    signature = inspect.Signature(
        [inspect.Parameter("self", kind)]
        + [inspect.Parameter(q, kind, annotation="int") for q in qubit_names]
        + [inspect.Parameter(a, kind, annotation="Angle") for a in angle_names],
        return_annotation="Circuit",
    )

    def method(self: Circuit, *args: Any, **kwargs: Any) -> Circuit:
        given = signature.bind(self, *args, **kwargs).arguments
        qubits = tuple(given[q] for q in qubit_names)
        angles = tuple(given[a] for a in angle_names)
        return self.add(name, qubits[0] if len(qubits) == 1 else qubits, angles[0] if len(angles) == 1 else angles or None)

    what = _GATE_DOCS.get(name, f"the gate {name!r} of qtrain.engine.gates.GATES")
    where = " on `qubit`" if spec.n_qubits == 1 else "" if controlled else " on qubits `a`, `b`"
    angles = "; a str angle names a parameter (shared by every gate that names it)" if spec.n_params else ""
    method.__name__, method.__qualname__ = name, f"Circuit.{name}"
    method.__doc__ = f"Append {what}{where}{angles}. Returns self (same as `add({name!r}, ...)`)."
    method.__signature__ = signature  # type: ignore[attr-defined]
    return method


def _add_gate_methods(cls: type[Circuit]) -> None:
    """Give `cls` a shortcut method for every gate of the table it lacks one for (the written ones stay)."""
    for name in GATES:
        if not hasattr(cls, name):
            setattr(cls, name, _gate_method(name))


_add_gate_methods(Circuit)


def _checked_noise(noise: Any, method: Any, trajectories: Any, shots: Any, seed: Any) -> tuple[NoiseModel, str, int | None]:
    """The noise settings checked; `method` or `trajectories` without a noise model refused by name, and a
    seed that nothing would use (the exact density matrix without shots)."""
    if noise is None:
        given = "method" if method is not None else "trajectories"
        raise ValueError(f"{given} applies to noisy runs, but noise is None; pass noise=NoiseModel(...) too")
    checked = _noisy.check_noise(noise, method, trajectories)
    check_shots(shots)
    if shots is not None and checked[1] != "density":
        raise ValueError("shots with noise are measured on the exact density matrix: drop trajectories (or shots)")
    if seed is not None and shots is None and checked[1] == "density":
        raise ValueError(f"seed={seed!r} keys trajectories or shot sampling, but the density method is exact; pass trajectories=T or shots, or no seed")
    return checked


def _checked_shots(shots: Any, seed: Any, first_row: Any) -> int | None:
    """`shots` checked (None: exact values), refusing a seed or first row given without shots: they key shot sampling only."""
    checked = check_shots(shots)
    if checked is None and (seed is not None or first_row != 0):
        given = f"seed={seed!r}" if seed is not None else f"first_row={first_row!r}"
        raise ValueError(f"{given} keys shot sampling, but shots is None (exact values); pass shots too")
    return checked


def _forbid(where: str, what: str, value: Any) -> None:
    if value is not None:
        raise ValueError(f"{where}: takes no {what}")


def _fixed(angle: float | None) -> float:
    """A gate argument with no parameter holds its fixed angle (`Circuit._resolve_angles` sets one of the two)."""
    assert angle is not None, "an argument has a parameter or a fixed angle"
    return angle


def _check_axes(where: str, axes: Any) -> torch.Tensor:
    if axes is None:
        raise ValueError(f"{where}: needs per-sample axes, a (B,) tensor of 0/1/2 or a sequence of 'X'/'Y'/'Z'")
    if isinstance(axes, str):
        axes = list(axes)
    if not isinstance(axes, torch.Tensor):
        axes = torch.tensor([PAULI_AXES.index(a) if a in PAULI_AXES else a for a in axes])
    if axes.dim() != 1 or axes.numel() == 0 or axes.is_floating_point() or axes.is_complex():
        raise ValueError(f"{where}: axes must be a non-empty 1-D integer tensor, got shape {tuple(axes.shape)} dtype {axes.dtype}")
    bad = axes[(axes < 0) | (axes > 2)]
    if bad.numel():
        raise ValueError(f"{where}: axes must be 0 (X), 1 (Y) or 2 (Z), got {bad[0].item()}")
    return axes.long()


def _check_matrix(where: str, matrix: Any, width: int) -> torch.Tensor:
    if matrix is None:
        raise ValueError(f"{where}: needs a matrix")
    if width not in (1, 2):
        raise ValueError(f"{where}: a unitary acts on 1 or 2 qubits, got {width}")
    m = matrix if isinstance(matrix, torch.Tensor) else torch.as_tensor(matrix, dtype=torch.complex128)
    d = 2**width
    if m.dim() not in (2, 3) or tuple(m.shape[-2:]) != (d, d):
        raise ValueError(f"{where}: matrix must be ({d}, {d}) or (B, {d}, {d}) for {width} qubit(s), got {tuple(m.shape)}")
    check = m.detach().resolve_conj().to(torch.complex128).reshape(-1, d, d)  # a conjugated view (U.conj(), U.mH) too
    if not torch.isfinite(torch.view_as_real(check)).all():
        raise ValueError(f"{where}: matrix has non-finite entries")
    error = (check @ check.conj().transpose(-1, -2) - torch.eye(d, dtype=torch.complex128, device=check.device)).abs().max().item()
    if error > 1e-5:
        raise ValueError(f"{where}: matrix is not unitary (max |U U^dagger - I| = {error:.2e})")
    return m

