"""Cost and exact gradient on the periodic grid theta_k = -pi + 2 pi i_k / R.

Two methods that agree to rounding:

direct   run the circuit at every grid point (in chunks that fit the memory
         budget) with adjoint gradients.
fourier  a parameter that drives k Pauli rotations enters every amplitude
         through cos(theta/2), sin(theta/2) to degree k, so the cost (a
         quadratic form of the state) is a trigonometric polynomial of degree
         k in it. Sampling the circuit on the (2k_1+1) x ... x (2k_d+1) grid
         gives every Fourier coefficient exactly (an FFT); cost and gradient
         on any R^d grid then follow by one inverse real FFT each, with the
         spectrum folded modulo R so that even R < 2k+1 stays exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from qtrain.circuit import Circuit
from qtrain.diagnostics import evaluate, resolve_cost, warn_if_redundant
from qtrain.engine.gates import GATES
from qtrain.engine.observables import Observable, PauliSum
from qtrain._memory import budget_bytes, format_bytes
from qtrain.parallel import Ranks

__all__ = [
    "METHODS", "Landscape", "check_grid", "check_periods", "degrees", "fourier_coefficients", "grid_axis",
    "grid_bytes", "sample_landscape"
]

#: How a landscape is sampled (see the module docstring); "auto" picks "fourier" when its sampling grid is the smaller.
METHODS = ("auto", "fourier", "direct")
#: Bytes per grid point the deceptiveness analysis holds at its peak: cost and
#: d gradient components (float64), an FFT buffer, neighbour values and indices.
BYTES_PER_POINT_BASE = 64
BYTES_PER_POINT_PER_PARAM = 16


@dataclass(frozen=True)
class Landscape:
    """values: (R,)*d cost; grads: (d, R, ..., R) exact gradient; float64."""

    values: torch.Tensor
    grads: torch.Tensor
    resolution: int
    method: str

    @property
    def n_params(self) -> int:
        return self.values.dim()


def grid_axis(resolution: int) -> torch.Tensor:
    """The R angles of one axis, -pi + 2 pi i / R, float64."""
    return -math.pi + 2 * math.pi * torch.arange(resolution, dtype=torch.float64) / resolution


def degrees(circuit: Circuit) -> list[int]:
    """Each parameter's trigonometric degree: the sum of the frequencies of
    the rotations it drives (one per Pauli rotation; a global phase adds
    none). Refuses a half-integer degree (`check_periods`)."""
    check_periods(circuit)
    total = [0.0] * circuit.n_params
    for param, frequency in zip(circuit.slot_params, circuit.slot_frequencies):
        total[param] += frequency
    return [round(t) for t in total]


def check_periods(circuit: Circuit) -> None:
    """The grid covers one period [-pi, pi) per axis: refuse a parameter with
    half-integer frequencies (a controlled rotation's half angles), whose
    cost repeats only every 4 pi, rather than analyse half a landscape."""
    halves = {circuit.parameters[p] for p, f in zip(circuit.slot_params, circuit.slot_frequencies) if f != int(f)}
    if halves:
        gates = sorted({op.name for op in circuit.ops if any(circuit.parameters[p] in halves for p in op.params if p is not None) and GATES[op.name].half_angles})
        raise ValueError(
            f"parameter(s) {sorted(halves)} drive a controlled rotation ({', '.join(gates)}): a cost in them repeats only every 4 pi, "
            "but the landscape grid covers one 2 pi period [-pi, pi) per parameter; give controlled rotations fixed angles "
            "or parameters of their own outside the landscape"
        )


def grid_bytes(resolution: int, n_params: int) -> int:
    """Peak bytes the deceptiveness analysis holds for a `resolution`**`n_params` grid (the per-point constants above)."""
    return resolution**n_params * (BYTES_PER_POINT_BASE + BYTES_PER_POINT_PER_PARAM * n_params)


def check_grid(circuit: Circuit, resolution: int, budget: int | str | None = None) -> None:
    """Refuse, before any work, a grid that is too coarse or cannot fit."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 3:
        raise ValueError(f"resolution must be an integer >= 3 (a point and its two neighbours per axis), got {resolution!r}")
    d = circuit.n_params
    if d < 1:
        raise ValueError("the circuit has no parameters to put on a grid")
    check_periods(circuit)
    if circuit.gate_batch > 1:
        raise ValueError("landscapes need a circuit without per-sample gates (one landscape, not a batch of circuits)")
    need, have = grid_bytes(resolution, d), budget_bytes("cpu", budget)
    if need > have:
        raise MemoryError(
            f"a grid of resolution {resolution} over {d} parameters has {resolution**d:.3g} points and needs about "
            f"{format_bytes(need)}, more than the memory budget of {format_bytes(have)}; lower the resolution or the parameter count"
        )


def sample_landscape(
    circuit: Circuit,
    cost: Observable | torch.Tensor = "global",
    resolution: int = 360,
    method: str = "auto",
    *,
    memory_budget: int | str | None = None,
    chunk_size: int = 2**16,
    on_progress: Callable[[int], None] | None = None,
    ranks: Ranks | None = None,
) -> Landscape:
    """Cost and exact gradient at every point of the R^d grid. `cost` as in
    `qtrain.diagnostics.resolve_cost` (an observable, "global", "local", or a
    target state for the infidelity). Warns (RuntimeWarning) when the cost
    does not depend on some parameter (`qtrain.diagnostics.redundant_parameters`):
    minima along a flat direction are not isolated.

    ranks (`qtrain.parallel`): in a data parallel run every rank calls this
    alike; the direct method evaluates each rank's contiguous share of the
    points and gathers them (the Fourier path, a few circuit runs and FFTs,
    is computed whole on every rank). Every rank returns the whole grid."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    check_grid(circuit, resolution, memory_budget)
    resolved = resolve_cost(cost, circuit.n_qubits)
    warn_if_redundant(circuit, resolved, "landscape")
    if method == "auto":
        method = "fourier" if math.prod(2 * k + 1 for k in degrees(circuit)) < resolution ** circuit.n_params else "direct"
    if method == "fourier":
        values, grads = _fourier(circuit, resolved, resolution)
    else:
        values, grads = _direct(circuit, resolved, resolution, chunk_size, on_progress, ranks or Ranks())
    return Landscape(values, grads, resolution, method)


def _cost_and_grad(circuit: Circuit, cost: PauliSum | torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    theta = theta.clone().requires_grad_(True)
    value = evaluate(circuit, theta, cost, dtype=torch.complex128, diff_method="adjoint")
    value.sum().backward()
    assert theta.grad is not None  # theta is a leaf that requires grad, and backward just ran
    return value.detach(), theta.grad


def _direct(circuit, cost, resolution, chunk_size, on_progress, ranks: Ranks) -> tuple[torch.Tensor, torch.Tensor]:
    d = circuit.n_params
    axis = grid_axis(resolution)
    share = ranks.share(resolution**d)  # this rank's points, in flat (C) order
    values = torch.empty(share.stop - share.start, dtype=torch.float64)
    grads = torch.empty(d, share.stop - share.start, dtype=torch.float64)
    strides = [resolution ** (d - 1 - a) for a in range(d)]
    for start in range(share.start, share.stop, chunk_size):
        index = torch.arange(start, min(start + chunk_size, share.stop))
        theta = torch.stack([axis[(index // s) % resolution] for s in strides], dim=1)  # (chunk, d)
        local = index - share.start
        values[local], g = _cost_and_grad(circuit, cost, theta)
        grads[:, local] = g.T
        if on_progress is not None:
            on_progress(len(index))
    shape = (resolution,) * d
    return ranks.gather(values).reshape(shape), ranks.gather(grads, dim=1).reshape(d, *shape)


def fourier_coefficients(circuit: Circuit, cost: PauliSum | torch.Tensor) -> torch.Tensor:
    """c[m_1, ..., m_d] (FFT order, m_a in -k_a..k_a) with
    cost(theta) = sum_m c_m exp(i m . theta), exactly."""
    ks = degrees(circuit)
    sizes = [2 * k + 1 for k in ks]
    axes = [2 * math.pi * torch.arange(n, dtype=torch.float64) / n for n in sizes]
    theta = torch.cartesian_prod(*axes).reshape(-1, len(ks))
    with torch.no_grad():
        samples = evaluate(circuit, theta, cost, dtype=torch.complex128)
    return torch.fft.fftn(samples.reshape(sizes), norm="forward")


def _fourier(circuit, cost, resolution) -> tuple[torch.Tensor, torch.Tensor]:
    coeffs = fourier_coefficients(circuit, cost)
    d = coeffs.dim()
    # frequencies of each axis in FFT order, and the phase (-1)^m that moves the
    # grid's origin to -pi
    freqs = [torch.fft.fftfreq(n, 1 / n).round().long() for n in coeffs.shape]
    phase = torch.ones((), dtype=torch.complex128)
    for a, m in enumerate(freqs):
        shape = [1] * d
        shape[a] = -1
        phase = phase * torch.where(m % 2 == 0, 1.0, -1.0).to(torch.complex128).reshape(shape)
    shifted = coeffs * phase
    values = _synthesize(shifted, freqs, resolution)
    grads = torch.empty(d, *([resolution] * d), dtype=torch.float64)
    for a, m in enumerate(freqs):
        shape = [1] * d
        shape[a] = -1
        grads[a] = _synthesize(shifted * (1j * m.to(torch.complex128).reshape(shape)), freqs, resolution)
    return values, grads


def _synthesize(coeffs: torch.Tensor, freqs: list[torch.Tensor], resolution: int) -> torch.Tensor:
    """sum_m coeffs_m exp(2 pi i m r / R) on the R^d grid: fold the spectrum
    modulo R (aliasing is exact on the grid), keep its non-negative half along
    the last axis (the function is real) and inverse-FFT once."""
    d = coeffs.dim()
    spectrum = torch.zeros((resolution,) * d, dtype=torch.complex128)
    target = torch.zeros(coeffs.shape, dtype=torch.long)
    for a, m in enumerate(freqs):
        shape = [1] * d
        shape[a] = -1
        target = target * resolution + (m % resolution).reshape(shape)
    spectrum.view(-1).index_add_(0, target.reshape(-1), coeffs.reshape(-1))
    half = spectrum[..., : resolution // 2 + 1]
    return torch.fft.irfftn(half, s=(resolution,) * d, norm="forward")
