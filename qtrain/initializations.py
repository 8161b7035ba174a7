"""Where training starts: the initializations the plateau literature proposes.

    from qtrain.initializations import initial_angles
    theta0 = initial_angles(circuit, "gaussian", 1000, cost="Z0 Z1")          # (1000, d)
    theta0 = initial_angles(builders.identity_blocks(block, 3), "identity_blocks", 1000)

- "uniform": every angle uniform on [-pi, pi) (McClean et al.'s random circuits).
- "zeros": every angle 0.
- "small": uniform on [-width, width] (width default `SMALL_WIDTH`).
- "gaussian" (Zhang, Liu, Hsieh and Tao, NeurIPS 2022, "Escaping from the
  barren plateau via Gaussian initializations in deep variational quantum
  circuits"): every angle drawn from N(0, sigma^2) with

        sigma^2 = 1 / (S * D)

  S the cost's locality (the most qubits one of its Pauli terms acts on; an
  infidelity to a target state is global, S = n) and D the circuit's
  rotation depth (`rotation_depth`: the most trainable rotations acting on
  any one qubit). This is their Theorem 4.1, N(0, 1 / (4 S (L + 2))) for
  gates exp(-i theta G) on a circuit of L entangling layers followed by two
  rotation layers (L + 2 rotations on every qubit), rewritten for qtrain's
  gates exp(-i theta G / 2): their theta is half of ours, so our variance is
  four times theirs, and L + 2 is D. `width` given explicitly is sigma
  itself and replaces the formula. A shared parameter counts once for each
  of its gates in D (every gate deepens the circuit); their Theorem 4.2 for
  correlated parameters asks for a smaller variance that depends on the
  gradient at zero, which qtrain does not guess: pass `width` for it.
- "identity_blocks" (Grant, Wossnig, Ostaszewski and Benedetti, Quantum 3,
  214, 2019): for a circuit built by `qtrain.builders.identity_blocks`, every
  block followed by its mirror (the block's gates reversed and inverted, with
  parameters of their own, named `<name>~`). The block's parameters are drawn
  uniform on [-pi, pi) and each mirror parameter is set to minus its source,
  so that the whole circuit is the identity at the start while every
  parameter stays free to train. `identity_block_mirrors` proves the
  structure before any angle is set (see there) and refuses other circuits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from qtrain.circuit import Circuit, Op
from qtrain.engine.gates import GATES, GateKind
from qtrain.engine.observables import Observable, PauliString, PauliSum, as_pauli_sum

__all__ = ["INITS", "MIRROR_MARK", "SMALL_WIDTH", "check_init", "cost_locality", "gaussian_width", "identity_block_mirrors", "initial_angles",
           "inverse_gate", "resolved_width", "rotation_depth"]

#: the initializations every trainer, layer and diagnostic accepts (`init=`)
INITS = ("uniform", "zeros", "small", "gaussian", "identity_blocks")
#: the inits that read the circuit (and, for gaussian, the cost): `draw_angles` cannot draw them alone
CIRCUIT_INITS = ("gaussian", "identity_blocks")
#: the half-width of "small" when none is given
SMALL_WIDTH = 0.1
#: a mirror parameter's name is its source's name followed by this mark
MIRROR_MARK = "~"

#: gate -> (the gate that inverts it, which argument of the original each of its arguments negates)
_INVERSE_ARGS: dict[str, tuple[str, tuple[int, ...]]] = {
    **{name: (name, (0,)) for name in ("rx", "ry", "rz", "p", "rzz", "rxx", "ryy", "rzx", "crx", "cry", "crz", "cp", "pauli_rot")},
    # u3(t, p, l) = P(p) R_Y(t) P(l), so its inverse P(-l) R_Y(-t) P(-p) is u3(-t, -l, -p); cu3 and cu are its controlled forms
    # (cu's phase on the control commutes with the rest)
    "u3": ("u3", (0, 2, 1)), "cu3": ("cu3", (0, 2, 1)), "cu": ("cu", (0, 2, 1, 3)),
    "rot": ("rot", (2, 1, 0)),  # rot(f, t, o) = R_Z(o) R_Y(t) R_Z(f): its inverse is rot(-o, -t, -f)
    **{name: (name, ()) for name in ("h", "x", "y", "z", "cz", "cnot", "swap")},  # each its own inverse
    "s": ("sdg", ()), "sdg": ("s", ()), "t": ("tdg", ()), "tdg": ("t", ()),
}


def check_init(init: Any) -> str:
    """`init` if it is one of `INITS`, else a one-line ValueError naming it."""
    if not isinstance(init, str) or init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    return init


def initial_angles(
    circuit: Circuit,
    init: str,
    batch: int | Sequence[int],
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    width: float | None = None,
    cost: Observable | torch.Tensor | Sequence[Observable | torch.Tensor] | None = None,
) -> torch.Tensor:
    """Starting angles for every parameter of `circuit`: (*batch, n_params), on the CPU.

    Args:
        circuit: the circuit whose parameters start here.
        init: one of `INITS` (see the module's docstring).
        batch: how many starts (an int) or their shape.
        generator: the source of randomness (torch's default generator when None).
        dtype: real dtype of the result.
        width: "small": the half-width (default `SMALL_WIDTH`); "gaussian": the standard deviation (default
            Zhang et al.'s, `gaussian_width`); unused by the others.
        cost: what the circuit is trained on (an observable, a target state, or a list of observables, as a
            QuantumLayer has): "gaussian" reads its locality S from it.

    Raises:
        ValueError: an unknown init, a width <= 0, "gaussian" without a cost whose locality it can read (and no
            width), "identity_blocks" on a circuit not built of identity blocks.
    """
    from qtrain.layers import draw_angles  # the circuit-free inits live beside QuantumLayer, which predates this module

    check_init(init)
    shape = (batch,) if isinstance(batch, int) else tuple(batch)
    sigma = resolved_width(circuit, init, width, cost)
    full = (*shape, circuit.n_params)
    if init in ("uniform", "zeros", "small"):
        return draw_angles(init, full, generator, dtype, sigma)
    if init == "gaussian":
        return torch.randn(full, generator=generator, dtype=dtype) * sigma
    mirrors = identity_block_mirrors(circuit)
    theta = draw_angles("uniform", full, generator, dtype)
    for mirror, source in mirrors.items():
        theta[..., mirror] = -theta[..., source]
    return theta


def resolved_width(circuit: Circuit, init: str, width: float | None, cost: Any = None) -> float:
    """The width an init draws with: `width` when given (checked > 0), else the
    init's own default (Zhang et al.'s sigma for "gaussian", `SMALL_WIDTH` for
    the others, which do not use it)."""
    if width is not None:
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not math.isfinite(width) or width <= 0:
            raise ValueError(f"init_width must be a finite number > 0 (or None for the init's default), got {width!r}")
        return float(width)
    if init == "gaussian":
        return gaussian_width(circuit, cost)
    return SMALL_WIDTH


def gaussian_width(circuit: Circuit, cost: Observable | torch.Tensor | Sequence[Observable | torch.Tensor] | None) -> float:
    """Zhang et al.'s standard deviation for `circuit` trained on `cost`:
    1 / sqrt(S * D), with S = `cost_locality(cost, n)` and D = `rotation_depth(circuit)`."""
    depth = rotation_depth(circuit)
    if depth == 0:
        raise ValueError("init='gaussian': the circuit has no trainable rotation, so it has no depth to scale the width by")
    return 1.0 / math.sqrt(cost_locality(cost, circuit.n_qubits) * depth)


def cost_locality(cost: Observable | torch.Tensor | Sequence[Observable | torch.Tensor] | None, n_qubits: int) -> int:
    """S in Zhang et al.'s width: the most qubits any Pauli term of the cost acts
    on (over a list of observables, the largest); a target state's infidelity
    is global, S = n. A constant cost has no locality and is refused, as is a
    function of states (its locality cannot be read) or no cost at all."""
    if cost is None:
        raise ValueError("init='gaussian' scales its width with the cost's locality: pass the cost (or init_width=sigma)")
    observables = list(cost) if isinstance(cost, (list, tuple)) else [cost]
    weights = []
    for observable in observables:
        if isinstance(observable, torch.Tensor):
            weights.append(n_qubits)  # a target state's infidelity: 1 - <psi|t><t|psi>, and |t><t| has terms on every qubit
        elif isinstance(observable, (str, PauliString, PauliSum)):
            weights.append(max((len(term.paulis) for term in as_pauli_sum(observable).terms), default=0))
        else:
            raise ValueError(f"init='gaussian' reads the locality of an observable or a target state, not of {type(observable).__name__} "
                             "(a function of states): pass init_width=sigma")
    weight = max(weights, default=0)
    if weight == 0:
        raise ValueError(f"init='gaussian': the cost {cost!r} is a constant (no Pauli term acts on a qubit), so it has no locality")
    return weight


def rotation_depth(circuit: Circuit) -> int:
    """D in Zhang et al.'s width: the most trainable rotations acting on one
    qubit, a gate of k trainable arguments (u3, rot) counting k on each of its
    qubits, and a shared parameter counting once per gate."""
    per_qubit = [0] * circuit.n_qubits
    for op in circuit.ops:
        trainable = sum(p is not None for p in op.params)
        for q in op.qubits:
            per_qubit[q] += trainable
    return max(per_qubit)


def inverse_gate(op: Op, parameter: Callable[[int], str] | None = None) -> tuple[str, tuple[int, ...], Any, dict[str, Any]]:
    """The gate that undoes `op`, as arguments for `Circuit.add`: (name, qubits,
    angles, keywords). A fixed angle is negated; a trainable one becomes the
    parameter `parameter(index)` names (the caller sets it to minus the
    source). A gate without such an inverse in qtrain's table (sx: its
    inverse is written as a `unitary`) is inverted through its matrix."""
    if op.name in _INVERSE_ARGS:
        name, order = _INVERSE_ARGS[op.name]
        angles: list[float | str] = []
        for k in order:
            p, a = op.params[k], op.angles[k]
            if p is None:
                assert a is not None  # every argument is fixed or trainable
                angles.append(-a)
            else:
                if parameter is None:
                    raise ValueError(f"{op.name} on {op.qubits}: a trainable angle needs a name for its mirror parameter")
                angles.append(parameter(p))
        keywords: dict[str, Any] = {"axes": op.axes} if op.axes is not None else {}
        angle: Any = None if not angles else (angles[0] if len(angles) == 1 else tuple(angles))
        return name, op.qubits, angle, keywords
    if op.name == "unitary" or GATES[op.name].kind == GateKind.FIXED:
        return "unitary", op.qubits, None, {"matrix": _fixed_matrix(op).conj().transpose(-2, -1).resolve_conj().contiguous()}
    raise ValueError(f"gate {op.name!r} has no inverse qtrain can write")


def _fixed_matrix(op: Op) -> torch.Tensor:
    """A parameter-free gate's matrix, complex128."""
    if op.matrix is not None:
        return op.matrix.to(torch.complex128)
    return torch.tensor(GATES[op.name].matrix, dtype=torch.complex128)


def identity_block_mirrors(circuit: Circuit) -> dict[int, int]:
    """{mirror parameter index: source parameter index} for a circuit of
    identity blocks, each mirror to be set to minus its source.

    The mirrors are the parameters named `<source>~` whose source is also a
    parameter. Before anything is set, the circuit is proved to be the
    identity under those values: its gates are reduced as a word, each gate
    cancelling the one before it (after earlier cancellations) when it is
    that gate's inverse: the inverse kind (`_INVERSE_ARGS`) on the same
    qubits, each fixed angle negated, each trainable angle the mirror of the
    one it undoes (and the same Pauli axes); a fixed gate or `unitary`
    cancels one whose matrix it inverts (to 1e-12). What is left after the
    reduction is the circuit outside the blocks (a state preparation or
    data encoding before them, gates after them), and the circuit at the
    start is exactly that product, whatever the sources' values. So the
    circuit passes when no gate left carries a mirror or a source. Refused by
    name: no mirror parameter, a source that is itself a mirror, or a paired
    gate that does not cancel."""
    names = circuit.parameters
    index = {name: i for i, name in enumerate(names)}
    mirrors = {i: index[name[: -len(MIRROR_MARK)]] for i, name in enumerate(names)
               if name.endswith(MIRROR_MARK) and name[: -len(MIRROR_MARK)] in index}
    if not mirrors:
        raise ValueError("init='identity_blocks' needs a circuit built by qtrain.builders.identity_blocks (each block followed by its mirror, "
                         f"whose parameters are named <name>{MIRROR_MARK}); this circuit has no such parameter")
    chained = sorted(names[s] for s in mirrors.values() if s in mirrors)
    if chained:
        raise ValueError(f"init='identity_blocks': parameter {chained[0]!r} is both a mirror and a source; rename it")
    stack: list[Op] = []
    for op in circuit.ops:
        if stack and _undoes(op, stack[-1], mirrors):
            stack.pop()
        else:
            stack.append(op)
    paired = set(mirrors) | set(mirrors.values())
    stack = [op for op in stack if paired.intersection(op.params)]  # the gates outside the blocks may stay
    if stack:
        left = stack[0]
        described = f"{left.name} on qubits {left.qubits}" + (f" ({', '.join(names[p] for p in left.params if p is not None)})" if any(
            p is not None for p in left.params) else "")
        raise ValueError(f"init='identity_blocks': the circuit is not a sequence of blocks each followed by its mirror; {len(stack)} gate(s) "
                         f"of mirrored parameters do not cancel, the first {described}. Build it with qtrain.builders.identity_blocks")
    return mirrors


def _undoes(op: Op, before: Op, mirrors: dict[int, int]) -> bool:
    """Whether `op` right after `before` gives the identity once every mirror parameter is minus its source."""
    if op.qubits != before.qubits:
        return False
    if op.name in _INVERSE_ARGS and before.name in _INVERSE_ARGS:
        inverse, order = _INVERSE_ARGS[before.name]
        if op.name != inverse:
            return False
        if (op.axes is None) != (before.axes is None) or (op.axes is not None and before.axes is not None and not torch.equal(op.axes, before.axes)):
            return False
        for position, k in enumerate(order):
            p, a = op.params[position], op.angles[position]
            q, b = before.params[k], before.angles[k]
            if q is None:
                if p is not None or a is None or b is None or a != -b:  # a fixed angle undone by its negative, exactly
                    return False
            elif p is None or mirrors.get(p) != q:  # a trainable angle undone by its own mirror only
                return False
        return True
    fixed = ("unitary",) + tuple(name for name, spec in GATES.items() if spec.kind == GateKind.FIXED)
    if op.name in fixed and before.name in fixed:
        product = _fixed_matrix(op) @ _fixed_matrix(before)
        identity = torch.eye(product.shape[-1], dtype=product.dtype).expand_as(product)
        return bool(torch.allclose(product, identity, atol=1e-12, rtol=0))
    return False
