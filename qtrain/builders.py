"""Circuit builders for the experiments qtrain reproduces."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from qtrain.circuit import Circuit, Op

__all__ = [
    "ALTERNATING_BLOCKS", "McCleanDraw", "alternating_layered", "check_alternating_block", "encoder_circuit", "free_fermion_circuit", "hardware_efficient", "identity_blocks", "mcclean_angles", "mcclean_circuit",
    "mcclean_draw", "mcclean_layer", "qaoa_circuit", "random_target_state", "shared_ansatz"
]


@dataclass(frozen=True)
class McCleanDraw:
    """The random choices of S McClean circuits: axes (L, n, S) in {0, 1, 2}
    (X, Y, Z) and angles (L, S, n) uniform on [0, 2 pi), float64."""

    axes: torch.Tensor
    angles: torch.Tensor


def mcclean_draw(n_qubits: int, n_layers: int, n_samples: int, seed: int = 0) -> McCleanDraw:
    """Draw axes and angles layer by layer from one generator, so the first L
    layers are the same whatever `n_layers` is: a depth-L circuit is a prefix
    of every deeper one, and the same seed gives the same numbers."""
    if n_qubits < 1 or n_layers < 1 or n_samples < 1:
        raise ValueError(f"need n_qubits, n_layers, n_samples >= 1, got {n_qubits}, {n_layers}, {n_samples}")
    gen = torch.Generator().manual_seed(seed)
    axes, angles = [], []
    for _ in range(n_layers):
        axes.append(torch.randint(0, 3, (n_qubits, n_samples), generator=gen, dtype=torch.int8))
        angles.append(2 * math.pi * torch.rand(n_samples, n_qubits, generator=gen, dtype=torch.float64))
    return McCleanDraw(torch.stack(axes), torch.stack(angles))


def mcclean_layer(circuit: Circuit, layer: int, axes: torch.Tensor) -> Circuit:
    """Append one McClean layer: per-sample Pauli rotations "theta_<layer>_<q>"
    with axes (n, B), then CZ on (0,1), (1,2), ...; returns the circuit."""
    n = circuit.n_qubits
    for q in range(n):
        circuit.pauli_rot(q, f"theta_{layer}_{q}", axes[q])
    for q in range(n - 1):
        circuit.cz(q, q + 1)
    return circuit


def mcclean_circuit(n_qubits: int, n_layers: int, n_samples: int, seed: int = 0, device: torch.device | str = "cpu") -> Circuit:
    """McClean et al. (2018) random parameterized circuit, S circuits in one batch.

    R_Y(pi/4) on every qubit (fixed), then `n_layers` layers of a rotation about
    a random Pauli axis on every qubit followed by CZ on (0,1), (1,2), ....
    The axes are drawn per sample (`mcclean_draw`), so the batch holds
    `n_samples` different random circuits; the parameters are
    "theta_<layer>_<qubit>" in layer-major order (theta_0_0 is the paper's
    theta_{1,1}). `mcclean_angles` with the same seed draws their angles.

    Args:
        n_qubits: qubits per circuit.
        n_layers: rotation layers (L).
        n_samples: random circuits in the batch (S); each rotation's axis is a (S,) tensor.
        seed: seed of the axis draw (structure only; the run seed draws starting angles).
        device: where the per-sample axis tensors live.

    Returns:
        A Circuit with n_layers * n_qubits parameters and batch size n_samples.
    """
    draw = mcclean_draw(n_qubits, n_layers, n_samples, seed)
    c = Circuit(n_qubits)
    for q in range(n_qubits):
        c.ry(q, math.pi / 4)
    for layer in range(n_layers):
        mcclean_layer(c, layer, draw.axes[layer].to(device))
    return c


def mcclean_angles(
    n_qubits: int, n_layers: int, n_samples: int, seed: int = 0, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """The angles that go with `mcclean_circuit(n_qubits, n_layers, n_samples, seed)`.

    Args:
        n_qubits: qubits per circuit.
        n_layers: rotation layers per circuit.
        n_samples: circuits in the batch (S).
        seed: the seed given to `mcclean_circuit`.
        dtype: real dtype of the result.
        device: where the result lives.

    Returns:
        Angles in radians, uniform on [0, 2 pi), shape (n_samples, n_layers * n_qubits) in the circuit's
        parameter order (layer-major).
    """
    angles = mcclean_draw(n_qubits, n_layers, n_samples, seed).angles  # (L, S, n)
    return angles.permute(1, 0, 2).reshape(n_samples, -1).to(dtype=dtype, device=device)


def encoder_circuit(n_qubits: int = 2, n_layers: int = 2) -> Circuit:
    """Angle encoding (ry by x_q) then trainable ry/rz layers and a CNOT chain."""
    c = Circuit(n_qubits)
    for q in range(n_qubits):
        c.ry(q, f"x{q}")
    for layer in range(n_layers):
        for q in range(n_qubits):
            c.ry(q, f"w{layer}_{q}").rz(q, f"v{layer}_{q}")
        for q in range(n_qubits - 1):
            c.cnot(q, q + 1)
    return c


def _neighbour_pairs(n_qubits: int, ring: bool) -> list[tuple[int, int]]:
    """(0,1), (1,2), ..., (n-2, n-1), and (n-1, 0) too with `ring` (from 3 qubits on: at 2 it would repeat (0,1))."""
    return [(q, q + 1) for q in range(n_qubits - 1)] + ([(n_qubits - 1, 0)] if ring and n_qubits > 2 else [])


def hardware_efficient(n_qubits: int, n_layers: int, rotations: tuple[str, ...] = ("ry", "rz"), entangler: str = "cz", ring: bool = False) -> Circuit:
    """The hardware-efficient ansatz: per layer each of `rotations` on every qubit (parameters
    "<gate><layer>_<qubit>"), then `entangler` on (0,1), (1,2), ..., and (n-1, 0) too with `ring`."""
    if n_qubits < 1 or n_layers < 1:
        raise ValueError(f"need n_qubits, n_layers >= 1, got {n_qubits}, {n_layers}")
    c = Circuit(n_qubits)
    pairs = _neighbour_pairs(n_qubits, ring)
    for layer in range(n_layers):
        for q in range(n_qubits):
            for gate in rotations:
                c.add(gate, q, f"{gate}{layer}_{q}")
        for a, b in pairs:
            c.add(entangler, (a, b))
    return c


#: The blocks `alternating_layered` knows: a block's gates on its pair of qubits (a, a + 1).
ALTERNATING_BLOCKS = ("ry_cz",)


def check_alternating_block(block: str) -> None:
    """Refuse a block `alternating_layered` does not know, naming the known ones."""
    if block not in ALTERNATING_BLOCKS:
        raise ValueError(f"block: unknown block {block!r} (known: {', '.join(ALTERNATING_BLOCKS)})")


def alternating_layered(n_qubits: int, n_layers: int, block: str = "ry_cz") -> Circuit:
    """Cerezo et al. (2021)'s alternating layered ansatz: blocks on pairs of neighbouring qubits, a layer being one
    sublayer of blocks on the even pairs (0,1), (2,3), ... and one on the odd pairs (1,2), (3,4), ...

    block "ry_cz": R_Y on each of the pair's qubits, then CZ on the pair. Parameters are
    "theta_<layer>_<sublayer>_<qubit>" in the order the gates are added, so theta_0_0_0 (R_Y on qubit 0 in the
    first block) is the first parameter."""
    check_alternating_block(block)
    if n_qubits < 2 or n_layers < 1:
        raise ValueError(f"need n_qubits >= 2 and n_layers >= 1, got {n_qubits}, {n_layers}")
    c = Circuit(n_qubits)
    for layer in range(n_layers):
        for sublayer in (0, 1):
            for a in range(sublayer, n_qubits - 1, 2):
                c.ry(a, f"theta_{layer}_{sublayer}_{a}").ry(a + 1, f"theta_{layer}_{sublayer}_{a + 1}").cz(a, a + 1)
    return c


def identity_blocks(block: Circuit, repeats: int = 1, before: Circuit | None = None) -> Circuit:
    """Grant et al.'s (Quantum 3, 214, 2019) circuit: `repeats` copies of
    `block`, each followed by its mirror, the block's gates in reverse order,
    each inverted (`qtrain.initializations.inverse_gate`: a rotation's angle
    negated, u3's and rot's arguments reordered, s by sdg, a fixed gate
    without an inverse in the table by its inverse matrix).

    Every parameter is free: the mirror's rotations get parameters of their
    own, named `<name>~`, which `init="identity_blocks"` sets to minus their
    sources so that the circuit starts as the identity. With repeats > 1,
    copy r's parameters are named `<name>_<r>` (r from 1). A parameter shared
    by several gates of the block stays shared in its copy and in the mirror
    (one mirror parameter for all its gates), so the tying survives and the
    start is still the identity; a parameter tied between a block and its
    mirror is never made (the block would then be the identity at every
    angle, and untrainable). `before` (a state preparation, data encoding)
    runs first and is not mirrored, so the circuit starts as `before` alone;
    its parameters keep their names and must not meet the blocks'."""
    from qtrain.initializations import MIRROR_MARK, inverse_gate

    if not isinstance(block, Circuit):
        raise TypeError(f"block must be a qtrain Circuit, got {type(block).__name__}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    marked = [name for name in block.parameters if name.endswith(MIRROR_MARK)]
    if marked:
        raise ValueError(f"block parameter {marked[0]!r} ends with {MIRROR_MARK!r}, which marks mirror parameters; rename it")
    if before is not None and (not isinstance(before, Circuit) or before.n_qubits != block.n_qubits):
        raise ValueError(f"before must be a Circuit on the block's {block.n_qubits} qubits, got {before!r}")
    circuit = Circuit(block.n_qubits)
    for op in before.ops if before is not None else ():
        _copy_gate(circuit, op, before.parameters)  # type: ignore[union-attr]
    for r in range(1, repeats + 1):
        names = [name if repeats == 1 else f"{name}_{r}" for name in block.parameters]

        for op in block.ops:
            _copy_gate(circuit, op, names)
        for op in reversed(block.ops):
            name, qubits, angle, keywords = inverse_gate(op, lambda p: names[p] + MIRROR_MARK)
            circuit.add(name, qubits, angle, **keywords)
    if circuit.n_params != 2 * repeats * block.n_params + (before.n_params if before is not None else 0):
        raise ValueError(f"parameter names collide (the block's numbered per copy: {block.parameters}"
                         f"{'' if before is None else f', before: {before.parameters}'}); rename them")
    return circuit


def _copy_gate(circuit: Circuit, op: Op, names: Sequence[str]) -> None:
    """Append `op` to `circuit`, its parameter k named names[k]."""
    values: list[float | str] = [names[p] if p is not None else float(a) for p, a in zip(op.params, op.angles)]  # type: ignore[arg-type]  # a or p is set
    angle = None if not values else (values[0] if len(values) == 1 else tuple(values))
    circuit.add(op.name, op.qubits, angle, **({"axes": op.axes} if op.axes is not None else {}), **({"matrix": op.matrix} if op.matrix is not None else {}))


def free_fermion_circuit(n_qubits: int, n_layers: int) -> Circuit:
    """Matchgates on a line: per layer R_Z on every qubit, then R_XX on (0,1), (1,2), ...; every angle its own.
    Its Lie algebra is so(2n), of dimension n(2n - 1) (free fermions after the Jordan-Wigner map)."""
    if n_qubits < 2 or n_layers < 1:
        raise ValueError(f"need n_qubits >= 2 and n_layers >= 1, got {n_qubits}, {n_layers}")
    c = Circuit(n_qubits)
    for layer in range(n_layers):
        for q in range(n_qubits):
            c.rz(q, f"z{layer}_{q}")
        for q in range(n_qubits - 1):
            c.rxx(q, q + 1, f"xx{layer}_{q}")
    return c


def qaoa_circuit(n_qubits: int, n_layers: int, ring: bool = True) -> tuple[Circuit, str]:
    """QAOA-like layers with shared angles for MaxCut on a ring (or a line): H on every qubit, then per
    layer R_ZZ(gamma_l) on every edge and R_X(beta_l) on every qubit, one gamma and one beta per layer.
    Returns the circuit and its cost observable, the sum of Z_a Z_b over the edges."""
    if n_qubits < 2 or n_layers < 1:
        raise ValueError(f"need n_qubits >= 2 and n_layers >= 1, got {n_qubits}, {n_layers}")
    edges = _neighbour_pairs(n_qubits, ring)
    c = Circuit(n_qubits)
    for q in range(n_qubits):
        c.h(q)
    for layer in range(n_layers):
        for a, b in edges:
            c.rzz(a, b, f"gamma{layer}")
        for q in range(n_qubits):
            c.rx(q, f"beta{layer}")
    return c, " + ".join(f"Z{a} Z{b}" for a, b in edges)


#: Sharing degrees at which a seeded draw of `shared_ansatz`'s axes must leave
#: every parameter effective (the degrees qtrain's sharing study compares).
CHECKED_SHARING = (1, 2, 3, 4)
#: Seeded axis draws tried before `shared_ansatz` gives up.
AXIS_DRAWS = 64


def shared_ansatz(
    n_qubits: int = 3,
    n_params: int = 3,
    sharing: int = 1,
    axes: str | None = None,
    seed: int = 0,
    entangler: str = "cnot",
) -> Circuit:
    """qtrain's default circuit for the parameter-sharing study (Stenzel et al.
    2026; their appendix circuit is not public, so this one is ours).

    R_Y(pi/4) on every qubit (fixed), then `sharing` repetitions of one block.
    A block rotates qubit i % n about axis axes[i] by theta_i for i = 0..d-1
    (d = n_params), with an entangling ring, CNOT (or CZ) on (0,1), (1,2),
    ..., (n-1, 0), after every n rotations and at the block's end. Every
    repetition reuses the same d parameters in the same positions, so each
    theta_i drives `sharing` rotations (1 = no sharing).

    Why this shape: every parameter must matter at every sharing degree.
    R_Y(pi/4)|0> is an eigenstate of no Pauli, so no first rotation only turns
    the global phase (H had made every R_X on |+> dead), and a ring between
    two rotations of one qubit keeps them from merging into one angle.
    axes: d letters from XYZ, or None for a seeded draw; a draw that still
    leaves a parameter redundant (quantum Fisher information rank below d at
    any sharing degree in CHECKED_SHARING) is redrawn from the same generator,
    so a seed always gives the same circuit.
    """
    if n_qubits < 1 or n_params < 1 or sharing < 1:
        raise ValueError(f"need n_qubits, n_params, sharing >= 1, got {n_qubits}, {n_params}, {sharing}")
    if entangler not in ("cnot", "cz"):
        raise ValueError(f"entangler must be 'cnot' or 'cz', got {entangler!r}")
    if axes is not None:
        if len(axes) != n_params or any(a not in "XYZ" for a in axes):
            raise ValueError(f"axes must be {n_params} letters from XYZ, got {axes!r}")
        return _shared_ansatz(n_qubits, axes, sharing, entangler)
    return _shared_ansatz(n_qubits, _effective_axes(n_qubits, n_params, seed, entangler), sharing, entangler)


@functools.lru_cache(maxsize=128)
def _effective_axes(n_qubits: int, n_params: int, seed: int, entangler: str) -> str:
    """The first seeded draw of axes under which every parameter matters."""
    from qtrain.diagnostics.redundancy import redundant_parameters  # diagnostics builds on circuits, not on builders

    gen = torch.Generator().manual_seed(seed)
    for _ in range(AXIS_DRAWS):
        axes = "".join("XYZ"[int(i)] for i in torch.randint(0, 3, (n_params,), generator=gen))
        if all(redundant_parameters(_shared_ansatz(n_qubits, axes, k, entangler)).n_effective == n_params for k in CHECKED_SHARING):
            return axes
    raise ValueError(
        f"no draw of {n_params} rotation axes on {n_qubits} qubits made every parameter effective in {AXIS_DRAWS} tries "
        f"(seed {seed}); use fewer parameters or more qubits, or give axes= explicitly"
    )


def _shared_ansatz(n_qubits: int, axes: str, sharing: int, entangler: str) -> Circuit:
    c = Circuit(n_qubits)
    for q in range(n_qubits):
        c.ry(q, math.pi / 4)
    ring = [(q, (q + 1) % n_qubits) for q in range(n_qubits)] if n_qubits > 2 else [(0, 1)] if n_qubits == 2 else []
    for _ in range(sharing):
        for i, axis in enumerate(axes):
            c.add(f"r{axis.lower()}", i % n_qubits, f"theta_{i}")
            if (i + 1) % n_qubits == 0 or i == len(axes) - 1:  # after every n rotations, and at the block's end
                for a, b in ring:
                    c.add(entangler, (a, b))
    return c


def random_target_state(n_qubits: int, seed: int = 0) -> torch.Tensor:
    """A Haar-random pure state, the target of the infidelity cost.

    Args:
        n_qubits: number of qubits n.
        seed: seed of the state's own generator (the run seed is not used).

    Returns:
        Unit-norm amplitudes, shape (2**n,), complex128, on the CPU; index 0 is |0...0>, qubit 0 the most
        significant bit.
    """
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(2, 2**n_qubits, generator=gen, dtype=torch.float64)
    psi = torch.complex(z[0], z[1])
    return psi / torch.linalg.vector_norm(psi)
