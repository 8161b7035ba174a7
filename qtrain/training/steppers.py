"""Optimizers beyond torch's: quantum natural gradient, SPSA and Rotosolve.

They are not elementwise torch optimizers (QNG solves a linear system per
start, SPSA perturbs every parameter of a start at once, Rotosolve evaluates
the cost along one parameter at several points), so they are not
`torch.optim.Optimizer`s: each is a frozen settings dataclass whose `step`
moves every one of the G learning rates x B starts at once,

    theta (G, B, d) -> theta (G, B, d),

from exact cost evaluations (`StepContext`). No start sees another's numbers,
so a batched step is exactly G * B separate single-start steps (the tests
check this), and a start's randomness (SPSA's perturbations) is keyed by its
index in the whole run, so that a rank's share, a single-start run or a resumed
run draws what one uninterrupted process would.

    from qtrain.training import train_lr_grid
    r = train_lr_grid(circuit, target, "rotosolve", lrs=[1.0], starts=100, steps=5)
    r = train_lr_grid(circuit, target, functools.partial(Qng, lam=1e-3), lrs=[0.05, 0.1])

`STEPPERS` names them for `train_lr_grid(optimizer=...)` and for
`optimizers=[...]` of `experiment=lr_grid` (conf/optimizer/qng.yaml, ...).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from qtrain.circuit import Circuit
from qtrain.engine.observables import PauliSum
from qtrain.engine.shots import derived_seed
from qtrain.noise import NoiseModel

__all__ = ["STEPPERS", "Qng", "Rotosolve", "Spsa", "StepContext", "Stepper", "spsa_signs"]


@dataclass(frozen=True)
class StepContext:
    """What a stepper may ask of the run: the circuit, its cost (a `PauliSum`,
    a target state or a function of states), the state dtype, the noise model
    (None: pure states; the density matrix otherwise) and the frozen mask
    ((d,) bool, None: nothing frozen). `cost(theta)` and `value_and_grad(theta)`
    take (N, d) and evaluate every row on its own."""

    circuit: Circuit
    objective: Any
    dtype: torch.dtype
    noise: NoiseModel | None = None
    frozen: torch.Tensor | None = None

    def cost(self, theta: torch.Tensor) -> torch.Tensor:
        """The exact cost of every row of theta (N, d) -> (N,), no gradient."""
        with torch.no_grad():
            if isinstance(self.objective, PauliSum):
                return self.circuit.expval(theta, self.objective, dtype=self.dtype, noise=self.noise)
            if isinstance(self.objective, torch.Tensor):
                return self.circuit.infidelity(theta, self.objective, dtype=self.dtype, noise=self.noise)
            return self.objective(self.circuit.state(theta, dtype=self.dtype))

    def value_and_grad(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact cost (N,) and gradient (N, d) of every row (the engine's adjoint pass)."""
        return self.circuit.value_and_grad(theta, self.objective, dtype=self.dtype, noise=self.noise)

    def free(self, d: int, device: torch.device) -> torch.Tensor:
        """(d,) bool: the parameters a step may move."""
        if self.frozen is None:
            return torch.ones(d, dtype=torch.bool, device=device)
        return ~self.frozen.to(device=device, dtype=torch.bool)


class Stepper:
    """The interface every closure-based optimizer shares (see the module docstring)."""

    #: its name in `STEPPERS` and in tables
    name: ClassVar[str] = ""

    def step(self, theta: torch.Tensor, lrs: torch.Tensor, ctx: StepContext, step_index: int, first_start: int, seed: int = 0) -> torch.Tensor:
        """One step of every start: theta (G, B, d), lrs (G,) -> the new theta
        (G, B, d). step_index counts from 0 (a resumed run passes the steps
        already done); first_start is theta[:, 0]'s index among the run's
        starts; seed is the run's seed."""
        raise NotImplementedError

    def check_lrs(self, lrs: Sequence[float]) -> None:
        """Refuse learning rates this stepper cannot take (one line, naming the value)."""

    @classmethod
    def refuse_run(cls, objective: Any, shots: int | None, noise: NoiseModel | None, trajectories: int | None) -> str | None:
        """Why this stepper cannot train such a run (one line), or None."""
        if shots is not None:
            return f"shots={shots}: {cls.name} steps from exact cost evaluations; shot estimates are supported by the torch optimizers only"
        if trajectories is not None:
            return f"trajectories={trajectories}: {cls.name} needs exact (deterministic) cost evaluations; give trajectories=None (the density matrix)"
        return None

    def _problems(self) -> dict[str, str]:
        """Setting -> why its value is refused, in field order (empty: all fine)."""
        return {}

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            name, why = next(iter(problems.items()))
            raise ValueError(f"{name}: {why}")


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _fisher_metric(ctx: StepContext, theta: torch.Tensor) -> torch.Tensor:
    """g = F / 4 per row of theta (N, d) -> (N, d, d) float64: the real part of
    the quantum geometric tensor <d_i psi|d_j psi> - <d_i psi|psi><psi|d_j psi>.
    A shared parameter's column is the sum over its gates (the Jacobian is
    taken with respect to theta, through the circuit's index map). The
    Jacobian is forward-mode (d passes of the batched state), in the run's
    dtype: complex64 runs keep their speed, and its rounding (1e-7) is far
    below any sensible regularizer; the metric is then formed in float64."""
    def real_state(row: torch.Tensor) -> torch.Tensor:
        return torch.view_as_real(ctx.circuit.state(row.unsqueeze(0), dtype=ctx.dtype)[0])  # (2^n, 2)

    with torch.no_grad():
        psi = ctx.circuit.state(theta, dtype=ctx.dtype).to(torch.complex128)  # (N, 2^n)
    jac = torch.func.vmap(torch.func.jacfwd(real_state))(theta)  # (N, 2^n, 2, d)
    jac = torch.complex(jac[:, :, 0].double(), jac[:, :, 1].double())  # (N, 2^n, d)
    overlap = psi.conj().unsqueeze(1) @ jac  # (N, 1, d): <psi|d_j psi>
    tensor = jac.conj().transpose(1, 2) @ jac - overlap.conj().transpose(1, 2) @ overlap
    return tensor.real


@dataclass(frozen=True)
class Qng(Stepper):
    """Quantum natural gradient (Stokes et al. 2020): theta <- theta - lr (g + lam I)^-1 grad,
    g = F / 4 the Fubini-Study metric (F the quantum Fisher information) of each start's state.

    lam: the regularizer, > 0 (a metric is singular wherever parameters are redundant, as at an identity start). Along a metric eigendirection of eigenvalue mu
    the cost's slope is at most 2 dH sqrt(mu) (dH the cost's spread in the
    state), so a step moves at most lr dH / sqrt(lam) along any direction:
    the default 1e-2 bounds that by 10 lr dH where the metric is singular,
    and changes a typical single-rotation entry (1/4) by 4%.
    blocks: None for the full metric; K splits the d parameters, in circuit
    order, into K equal contiguous groups and keeps only the diagonal blocks
    (K = d: the diagonal approximation); K must divide d.
    One step costs one adjoint value-and-gradient pass and d forward passes.
    Pure states only (no noise, no shots)."""

    name: ClassVar[str] = "qng"
    lam: float = 1e-2
    blocks: int | None = None

    def _problems(self) -> dict[str, str]:
        problems = {}
        if not _number(self.lam) or self.lam <= 0:  # 0 would leave a singular metric (a redundant parameter, an identity start) unsolvable
            problems["lam"] = f"must be a finite number > 0, got {self.lam!r}"
        if self.blocks is not None and (isinstance(self.blocks, bool) or not isinstance(self.blocks, int) or self.blocks < 1):
            problems["blocks"] = f"must be null (the full metric) or an integer >= 1, got {self.blocks!r}"
        return problems

    @classmethod
    def refuse_run(cls, objective: Any, shots: int | None, noise: NoiseModel | None, trajectories: int | None) -> str | None:
        if shots is not None:
            return f"shots={shots}: qng needs the exact gradient and the states' metric; shot estimates are supported by the torch optimizers only"
        if noise is not None:
            return "noise: qng's metric is that of pure states (the Fubini-Study metric); a noisy (mixed) state has none here, so train noiseless"
        return None

    def check_d(self, d: int) -> None:
        """Refuse a block count that does not divide the parameter count."""
        if self.blocks is not None and d % self.blocks:
            raise ValueError(f"blocks: {self.blocks} blocks do not divide the circuit's {d} parameters; give a divisor of {d} (or null)")

    def step(self, theta: torch.Tensor, lrs: torch.Tensor, ctx: StepContext, step_index: int, first_start: int, seed: int = 0) -> torch.Tensor:
        groups, starts, d = theta.shape
        self.check_d(d)
        flat = theta.reshape(-1, d)
        _, grad = ctx.value_and_grad(flat)
        metric = _fisher_metric(ctx, flat)  # (N, d, d) float64
        if self.blocks is not None:
            size = d // self.blocks
            block = torch.arange(d, device=metric.device) // size
            metric = metric * (block[:, None] == block[None, :])
        free = ctx.free(d, flat.device)
        # a frozen parameter: its row and column become the identity and its gradient 0, which solves the free block alone
        keep = free[:, None] & free[None, :]
        eye = torch.eye(d, dtype=metric.dtype, device=metric.device)
        system = torch.where(keep, metric, torch.zeros_like(metric)) + torch.where(free, self.lam, 1.0) * eye
        rhs = torch.where(free, grad.double(), torch.zeros_like(grad, dtype=torch.float64))
        direction = torch.linalg.solve(system, rhs.unsqueeze(-1)).squeeze(-1).reshape(groups, starts, d)
        return (theta.double() - lrs.double().view(-1, 1, 1) * direction).to(theta.dtype)


#: splitmix64's constants as signed int64 (torch has no uint64 arithmetic; int64 products wrap the same way)
_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)
_MIX1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_MIX2 = 0x94D049BB133111EB - (1 << 64)


def _shr(x: torch.Tensor, bits: int) -> torch.Tensor:
    """A logical right shift of int64 (torch's >> is arithmetic)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def _splitmix64(x: torch.Tensor) -> torch.Tensor:
    """splitmix64's finalizer (Steele et al. 2014), elementwise on int64 (wrapping arithmetic)."""
    x = x + _GOLDEN
    x = (x ^ _shr(x, 30)) * _MIX1
    x = (x ^ _shr(x, 27)) * _MIX2
    return x ^ _shr(x, 31)


def spsa_signs(seed: int, step: int, starts: torch.Tensor, d: int) -> torch.Tensor:
    """SPSA's perturbations Delta in {+1, -1}^d for the starts of indices `starts`
    (the index in the whole run) at step `step`: (len(starts), d) float64.

    A counter-based hash, vectorized: a step key from `derived_seed` (the
    project's seed hash), then splitmix64 of (key, start) and of (that, j).
    Each sign depends only on (seed, step, start, j), so any share of the
    starts, in any batch, draws the same signs; no torch.Generator per start."""
    key = derived_seed("qtrain-spsa", seed, step) - (1 << 61)  # below 2**62: fits int64 however it is shifted
    per_start = _splitmix64(_splitmix64(torch.full_like(starts, key, dtype=torch.int64) ^ starts.to(torch.int64)))
    columns = torch.arange(d, dtype=torch.int64, device=starts.device)
    bits = _splitmix64(per_start.unsqueeze(1) + columns.unsqueeze(0) * _GOLDEN)
    return torch.where(bits < 0, -1.0, 1.0).to(torch.float64)  # the top bit


@dataclass(frozen=True)
class Spsa(Stepper):
    """Simultaneous perturbation stochastic approximation (Spall 1992, 1998).

    Step k (from 0) of a start: Delta in {+1, -1}^d (`spsa_signs`, keyed by
    the run's seed, k and the start's index in the run), c_k = c / (k + 1)^gamma,
    a_k = lr / (k + 1 + A)^alpha, and
        theta <- theta - a_k (C(theta + c_k Delta) - C(theta - c_k Delta)) / (2 c_k) Delta.
    Defaults are Spall's (alpha 0.602, gamma 0.101); A = 0 because a stepper
    does not know the run's length (Spall suggests A ~ 10% of the steps: give
    A=50 for 500 steps); c = 0.1 rad: the costs are exact, so c needs no
    room for measurement noise, and the central difference's bias is
    O(c_k^2) times the third derivative (about 1%). Two cost evaluations a
    step. Noise is allowed (the density matrix's cost); shots are not."""

    name: ClassVar[str] = "spsa"
    c: float = 0.1
    alpha: float = 0.602
    gamma: float = 0.101
    A: float = 0.0

    def _problems(self) -> dict[str, str]:
        problems = {}
        if not _number(self.c) or self.c <= 0:
            problems["c"] = f"must be a finite number > 0 (the perturbation's size), got {self.c!r}"
        for key in ("alpha", "gamma", "A"):
            value = getattr(self, key)
            if not _number(value) or value < 0:
                problems[key] = f"must be a finite number >= 0, got {value!r}"
        return problems

    def step(self, theta: torch.Tensor, lrs: torch.Tensor, ctx: StepContext, step_index: int, first_start: int, seed: int = 0) -> torch.Tensor:
        groups, starts, d = theta.shape
        index = torch.arange(first_start, first_start + starts, dtype=torch.int64, device=theta.device)
        delta = spsa_signs(seed, step_index, index, d).to(theta.device) * ctx.free(d, theta.device)  # frozen: no perturbation
        c_k = self.c / (step_index + 1) ** self.gamma
        a_k = lrs.double() / (step_index + 1 + self.A) ** self.alpha  # (G,)
        base = theta.double()
        shifted = torch.cat([base + c_k * delta, base - c_k * delta]).reshape(-1, d).to(theta.dtype)  # (2 G B, d): one call
        plus, minus = ctx.cost(shifted).double().reshape(2, groups, starts)
        estimate = ((plus - minus) / (2 * c_k)).unsqueeze(-1) * delta  # (G, B, d)
        return (base - a_k.view(-1, 1, 1) * estimate).to(theta.dtype)


def _parameter_spectra(circuit: Circuit) -> list[tuple[float, int]]:
    """Per parameter, (u, K): its cost is a trigonometric polynomial in
    multiples of u up to K u (u = 1/2 when a slot has a half-integer
    frequency, a controlled rotation's; else 1; K u = the sum of its slots'
    frequencies). K = 0: no cost depends on it."""
    sums = [0.0] * circuit.n_params
    half = [False] * circuit.n_params
    for p, frequency in zip(circuit.slot_params, circuit.slot_frequencies):
        if abs(2 * frequency - round(2 * frequency)) > 1e-12:  # no gate of the engine has one; a fit on the grid below would alias it
            raise ValueError(f"rotosolve: parameter {circuit.parameters[p]!r} has a gate of frequency {frequency:g}, not a multiple of 1/2")
        sums[p] += frequency
        half[p] = half[p] or abs(frequency - round(frequency)) > 1e-12
    spectra = []
    for total, is_half in zip(sums, half):
        u = 0.5 if is_half else 1.0
        spectra.append((u, int(round(total / u))))
    return spectra


def _trig_minimum(values: torch.Tensor) -> torch.Tensor:
    """values (N, M) of a real trigonometric polynomial p(s) = sum_{|k|<=K} c_k e^{iks}
    at s_t = 2 pi t / M (M = 2K + 1) -> (N,) the s in [-pi, pi) of its global
    minimum. The coefficients are the samples' DFT (exact for M = 2K + 1); the
    critical points are roots of p'(s) z^K, a degree-2K polynomial in
    z = e^{is}, found as companion-matrix eigenvalues (batched). Every root's
    angle is a candidate (a real critical point has |z| = 1; the others are
    merely evaluated, so no modulus threshold can drop the minimum), polished
    by Newton steps on p' and evaluated; the lowest wins."""
    n, m = values.shape
    k_max = (m - 1) // 2
    coef = torch.fft.fft(values.to(torch.complex128), dim=1) / m  # c_k for k = 0..M-1, c_{-k} = c_{M-k}
    ks = torch.arange(-k_max, k_max + 1, dtype=torch.float64, device=values.device)
    c = torch.cat([coef[:, m - k_max:], coef[:, : k_max + 1]], dim=1)  # (N, 2K + 1): c_{-K} .. c_K
    grid = 2 * math.pi * torch.arange(m, dtype=torch.float64, device=values.device) / m
    candidates = [grid.expand(n, m)]
    if k_max >= 1:
        derivative = ks * c  # i k c_k, dropping the common factor i: the roots are the same; z^(k + K) -> index k + K
        lead = derivative[:, -1]
        scale = derivative.abs().amax(dim=1).clamp_min(1e-300)
        # a vanishing top frequency: nudge the leading coefficient so the companion matrix stays finite; Newton restores the roots
        lead = torch.where(lead.abs() < 1e-13 * scale, 1e-13 * scale + 0j, lead)
        monic = derivative[:, :-1] / lead.unsqueeze(1)  # (N, 2K): coefficients of z^0 .. z^(2K-1)
        size = 2 * k_max
        # p constant along the parameter (p' only rounding noise, as at an identity start) or a companion that is not finite:
        # any candidates do, so such a row gets z^(2K) - 1's (the roots of unity), which the eigen solver takes without trouble
        flat = (scale <= 1e-12 * values.abs().amax(dim=1).clamp_min(1e-300)) | ~torch.isfinite(monic).all(dim=1)
        unity = torch.zeros(size, dtype=torch.complex128, device=values.device)
        unity[0] = -1
        monic = torch.where(flat.unsqueeze(1), unity, monic)
        companion = torch.zeros(n, size, size, dtype=torch.complex128, device=values.device)
        if size > 1:
            companion[:, 1:, :-1] = torch.eye(size - 1, dtype=torch.complex128, device=values.device)
        companion[:, :, -1] = -monic
        try:
            roots = torch.linalg.eigvals(companion)  # (N, 2K)
            candidates.append(torch.angle(roots))
        except torch.linalg.LinAlgError:  # a companion too ill-conditioned for LAPACK (a nearly vanishing top frequency)
            # a grid 16 times finer instead: the Newton steps below then polish the lowest point into the minimum
            fine = 2 * math.pi * torch.arange(16 * m, dtype=torch.float64, device=values.device) / (16 * m)
            candidates.append(fine.expand(n, -1))
    s = torch.cat(candidates, dim=1)  # (N, C)
    # in real form, p = a_0 + sum_k A_k cos(ks) + B_k sin(ks): one cos and one sin per evaluation serve p, p' and p''
    freqs = ks[k_max + 1:]  # 1..K
    a0 = c[:, k_max].real.unsqueeze(1)
    cos_part = (2 * c[:, k_max + 1:].real).unsqueeze(1)  # (N, 1, K)
    sin_part = (-2 * c[:, k_max + 1:].imag).unsqueeze(1)

    def series(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        angle = points.unsqueeze(-1) * freqs  # (N, C, K)
        cos, sin = torch.cos(angle), torch.sin(angle)
        even, odd = cos_part * cos + sin_part * sin, sin_part * cos - cos_part * sin
        return a0 + even.sum(-1), (freqs * odd).sum(-1), -(freqs**2 * even).sum(-1)

    polished = s
    for _ in range(3):  # Newton on p' = 0 where p'' > 0 (a minimum's basin); elsewhere the candidate stays
        _, slope, curvature = series(polished)
        polished = torch.where(curvature > 0, polished - slope / torch.where(curvature > 0, curvature, torch.ones_like(curvature)), polished)
    s = torch.cat([s, polished], dim=1)  # the unpolished ones too: a Newton step off a flat minimum cannot lose it
    best = series(s)[0].argmin(dim=1)
    chosen = s.gather(1, best.unsqueeze(1)).squeeze(1)
    return torch.remainder(chosen + math.pi, 2 * math.pi) - math.pi


@dataclass(frozen=True)
class Rotosolve(Stepper):
    """Rotosolve (Ostaszewski et al. 2021; Nakanishi et al. 2020), generalized
    to shared parameters: one step is one sweep over the parameters in circuit
    order (Gauss-Seidel: each sees the ones already moved). Along parameter j
    the cost is a trigonometric polynomial in multiples of u (1/2 where a slot
    is a controlled rotation's half angle, else 1) up to K u, K u the sum of
    its gates' frequencies (m plain rotations: K = m). It is evaluated at
    2K + 1 equally spaced points of its period 2 pi / u (all starts in one
    call), fitted exactly and minimized exactly (`_trig_minimum`), and
        theta_j <- theta_j + lr (theta*_j - theta_j),
    theta*_j the minimum's representative nearest theta_j: lr = 1 is the full
    jump, lr in (0, 1) a damped one; lr > 1 is refused (it overshoots the
    minimum it has just found). A sweep costs sum_j (2 K_j + 1) evaluations.
    Costs: an observable or a target state's infidelity, noiseless or with
    the density matrix (still a trigonometric polynomial of the same degree);
    a function of states is not one, so it is refused, as are shots."""

    name: ClassVar[str] = "rotosolve"

    def check_lrs(self, lrs: Sequence[float]) -> None:
        for lr in lrs:
            if lr > 1:
                raise ValueError(f"lrs: rotosolve's learning rate is the fraction of the jump to each parameter's minimum, in [0, 1]; got {lr:g}")

    @classmethod
    def refuse_run(cls, objective: Any, shots: int | None, noise: NoiseModel | None, trajectories: int | None) -> str | None:
        if callable(objective) and not isinstance(objective, (PauliSum, torch.Tensor)):
            return "cost: rotosolve needs a cost that is a trigonometric polynomial in each parameter (an observable or a target state); a function of states is not"
        return super().refuse_run(objective, shots, noise, trajectories)

    def step(self, theta: torch.Tensor, lrs: torch.Tensor, ctx: StepContext, step_index: int, first_start: int, seed: int = 0) -> torch.Tensor:
        groups, starts, d = theta.shape
        free = ctx.free(d, theta.device).tolist()
        current = theta.reshape(-1, d).clone()
        weights = lrs.to(torch.float64).repeat_interleave(starts)  # (G B,)
        for j, (u, k) in enumerate(_parameter_spectra(ctx.circuit)):
            if not free[j] or k == 0:
                continue  # frozen, or no cost depends on it
            m = 2 * k + 1
            offsets = (2 * math.pi / u) * torch.arange(m, dtype=torch.float64, device=theta.device) / m
            points = current.unsqueeze(1).repeat(1, m, 1)  # (N, M, d)
            points[:, :, j] = (current[:, j].double().unsqueeze(1) + offsets).to(theta.dtype)
            values = ctx.cost(points.reshape(-1, d)).double().reshape(-1, m)
            jump = _trig_minimum(values) / u  # from theta_j to its nearest minimum
            current[:, j] = (current[:, j].double() + weights * jump).to(theta.dtype)
        return current.reshape(groups, starts, d)


#: name -> settings class, each with a batched `step`
STEPPERS: dict[str, type[Stepper]] = {"qng": Qng, "spsa": Spsa, "rotosolve": Rotosolve}


def settings_problem(cls: type[Stepper], settings: dict[str, Any]) -> tuple[str, str] | None:
    """The first setting `cls` refuses, as (name, why), or None: an unknown
    keyword, or a value its checks refuse."""
    fields = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    for name in settings:
        if name not in fields:
            return name, f"{cls.__name__} has no setting {name!r}; known: {fields}"
    try:
        cls(**settings)
    except ValueError as e:
        name, _, why = str(e).partition(": ")
        return name, why
    return None


def stepper_label(cls: type[Stepper], settings: dict[str, Any]) -> str:
    """The settings that differ from the class's defaults, as "key=value;..." sorted, or "defaults"."""
    defaults = cls()

    def text(value: Any) -> str:
        return f"{value:g}" if isinstance(value, float) else str(value)

    built = cls(**settings)
    changed = {f.name: getattr(built, f.name) for f in dataclasses.fields(cls)  # type: ignore[arg-type]
               if getattr(built, f.name) != getattr(defaults, f.name)}
    return ";".join(f"{k}={text(v)}" for k, v in sorted(changed.items())) or "defaults"


def run_stepper(stepper: Stepper, thetas: Sequence[torch.Tensor], lrs: Sequence[float], ctx: StepContext, step_index: int, first_start: int,
                seed: int) -> None:
    """One step of `stepper` on G parameter tensors (B, d) in place (the module's `thetas`)."""
    with torch.no_grad():
        stacked = torch.stack([p.detach() for p in thetas])
        rates = torch.tensor(list(lrs), dtype=torch.float64, device=stacked.device)
        new = stepper.step(stacked, rates, ctx, step_index, first_start, seed)
        for p, value in zip(thetas, new):
            p.copy_(value)

