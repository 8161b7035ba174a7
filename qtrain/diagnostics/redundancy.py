"""Does every parameter matter? The effective parameter count of a circuit.

A parameter can be dead without looking dead: a rotation about X of |+>, or
about Z of |0>, only changes the global phase, so its gradient is zero at
every point and a landscape over it is a set of flat valleys whose "minima"
mean nothing. Two parameters can also be one in disguise (two rotations about
the same axis with nothing in between act only through their sum).

    from qtrain.diagnostics import redundant_parameters
    r = redundant_parameters(circuit)            # the state's view (quantum Fisher information)
    r = redundant_parameters(circuit, "Z0 Z1")   # a cost's view
    r.n_effective, r.redundant

Without a cost the rank is that of the state Jacobian with the global-phase
direction projected out, d|psi> - |psi><psi|d psi> (the quantum Fisher
information's rank; the plain Jacobian's rank would count a global phase as a
direction). It is taken at a few random points, each point's singular values
counted above `rtol` times that point's largest (and above 1e-12); the rank is the largest over
the points (the generic rank: a random point meets a lower one with
probability zero). With a cost, the cost's gradients at the points are
stacked into one matrix, whose rank is the number of directions the cost
depends on anywhere. `redundant` is built greedily from the last parameter
backwards: a parameter is redundant when dropping it, with those already
dropped, leaves the rank unchanged.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from qtrain.circuit import Circuit
from qtrain.diagnostics.gradients import gradient_samples, resolve_cost
from qtrain.engine.observables import Observable
from qtrain.layers import QuantumLayer

__all__ = ["Redundancy", "redundant_parameters", "warn_if_redundant"]

#: Singular values above rtol x the largest count towards the rank. The
#: analysis runs in complex128, where a dead direction measures about 1e-16
#: of the largest and a live one of a 3-qubit default circuit 1e-2 or more.
DEFAULT_RTOL = 1e-8
#: A singular value at or below this never counts, whatever the largest is
#: (an all-dead matrix holds only rounding noise).
ABSOLUTE_FLOOR = 1e-12


@dataclass(frozen=True)
class Redundancy:
    """The effective parameter count of a circuit (or a QuantumLayer's weights)."""

    parameters: tuple[str, ...]  # the parameters analysed, in circuit order
    n_effective: int  # independent directions the state (or cost) depends on
    redundant: tuple[str, ...]  # dropped greedily from the last backwards; in circuit order
    method: str  # "qfi" (the state) or "cost"
    points: int  # random points the rank was taken at
    rtol: float
    singular_values: torch.Tensor  # (points, P) for "qfi", (P,) for "cost", descending

    @property
    def n_params(self) -> int:
        return len(self.parameters)

    def __str__(self) -> str:
        verdict = "every parameter matters" if not self.redundant else f"redundant: {', '.join(self.redundant)}"
        return f"{self.n_effective} effective of {self.n_params} parameters ({self.method}, {self.points} points, rtol {self.rtol:g}); {verdict}"


def redundant_parameters(
    model: Circuit | QuantumLayer,
    cost: Observable | torch.Tensor | None = None,
    *,
    points: int | None = None,
    rtol: float = DEFAULT_RTOL,
    seed: int = 0,
) -> Redundancy:
    """The effective parameter count of `model` and its redundant parameters.

    cost: None (the state's view: quantum Fisher information), or a cost as in
    `resolve_cost` (an observable, "global", "local", or a target state for
    the infidelity). points: random points on [-pi, pi)^P (default 3 for the
    state, 2 P + 2 for a cost, whose gradients are one row per point). For a
    QuantumLayer, its weights are analysed with the data inputs drawn at
    random too.
    """
    circuit, analysed = _circuit_and_columns(model)
    if circuit.gate_batch > 1:
        raise ValueError("redundant_parameters needs a circuit without per-sample gates (one circuit, not a batch of circuits)")
    if not rtol > 0:
        raise ValueError(f"rtol must be positive, got {rtol!r}")
    names = tuple(circuit.parameters[i] for i in analysed)
    if points is None:
        points = 3 if cost is None else 2 * len(analysed) + 2
    if isinstance(points, bool) or not isinstance(points, int) or points < 1:
        raise ValueError(f"points must be a positive int, got {points!r}")
    gen = torch.Generator().manual_seed(seed)
    thetas = (2 * torch.rand(points, circuit.n_params, generator=gen, dtype=torch.float64) - 1) * math.pi
    if cost is None:
        matrices, method = _projected_state_jacobians(circuit, thetas)[..., analysed], "qfi"
    else:
        grads = gradient_samples(circuit, thetas, resolve_cost(cost, circuit.n_qubits), None, dtype=torch.complex128)
        matrices, method = grads[:, analysed].unsqueeze(0), "cost"  # one matrix: a row per point
    # per matrix, from all its columns; the floor keeps rounding noise out of an all-dead matrix
    thresholds = torch.clamp(rtol * torch.linalg.matrix_norm(matrices, ord=2), min=ABSOLUTE_FLOOR)

    def rank(columns: Sequence[int]) -> int:
        if not columns:
            return 0
        values = torch.linalg.svdvals(matrices[..., list(columns)])
        return int((values > thresholds[:, None]).sum(dim=1).max())

    kept = list(range(len(analysed)))
    n_effective = rank(kept)
    for p in reversed(range(len(analysed))):
        trial = [q for q in kept if q != p]
        if rank(trial) == n_effective:
            kept = trial
    singular = torch.linalg.svdvals(matrices)
    redundant = tuple(names[p] for p in range(len(analysed)) if p not in kept)
    return Redundancy(names, n_effective, redundant, method, points, rtol, singular if method == "qfi" else singular[0])


def warn_if_redundant(circuit: Circuit, cost: Observable | torch.Tensor | None, where: str) -> Redundancy:
    """Warn (once per message) when `circuit` has a parameter the cost does not
    depend on: every count of minima over such a landscape is meaningless."""
    r = redundant_parameters(circuit, cost)
    if r.redundant:
        warnings.warn(
            f"{where}: the circuit has {r.n_effective} effective of {r.n_params} parameters; redundant: {', '.join(r.redundant)} "
            "(a flat direction: minima along it are not isolated, and counts of minima or deceptive points mean little)",
            RuntimeWarning,
            stacklevel=3,
        )
    return r


def _circuit_and_columns(model: Circuit | QuantumLayer) -> tuple[Circuit, list[int]]:
    if isinstance(model, Circuit):
        return model, list(range(model.n_params))
    if isinstance(model, QuantumLayer):
        circuit = model.circuit
        return circuit, [circuit.parameters.index(n) for n in model.weight_names]
    raise TypeError(f"model must be a Circuit or a QuantumLayer, got {type(model).__name__}")


def _projected_state_jacobians(circuit: Circuit, thetas: torch.Tensor) -> torch.Tensor:
    """d psi / d theta with the global-phase direction removed, as real
    matrices: (points, 2 * 2^n, P), real parts stacked over imaginary ones."""
    def real_state(theta: torch.Tensor) -> torch.Tensor:
        return torch.view_as_real(circuit.state(theta, dtype=torch.complex128)[0])  # (2^n, 2)

    with torch.no_grad():
        psi = circuit.state(thetas, dtype=torch.complex128)  # (points, 2^n)
    jac = torch.func.vmap(torch.func.jacfwd(real_state))(thetas)  # (points, 2^n, 2, P): P forward passes a point
    jac = torch.complex(jac[:, :, 0], jac[:, :, 1])
    phase_part = psi.unsqueeze(-1) * (psi.conj().unsqueeze(1) @ jac)  # |psi><psi| dpsi
    projected = jac - phase_part
    return torch.cat([projected.real, projected.imag], dim=1)
