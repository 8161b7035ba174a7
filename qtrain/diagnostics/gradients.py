"""Gradient statistics over random parameter draws: is a model on a plateau?

    from qtrain.diagnostics import gradient_variance
    stats = gradient_variance(model, cost="global", samples=500)
    stats.var, stats.var_ci_low, stats.var_ci_high

`model` is any `Circuit` (angles redrawn uniformly on [0, 2 pi) per sample) or
`QuantumLayer` (weights redrawn from the layer's own init, data inputs held
fixed). The gradient is exact: the parameter-shift rule for one parameter when
that is cheaper, adjoint differentiation otherwise; with `shots=N` it is the
parameter-shift estimate from N measurements per shifted evaluation, and the
measured variance is split into its exact and its shot part:

    stats = gradient_variance(circuit, cost="global", samples=500, shots=1000)
    stats.var ~= stats.exact_var + stats.shot_var   # in expectation
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from qtrain.circuit import Circuit
from qtrain.engine.conventions import real_dtype
from qtrain.engine.gates import GATES
from qtrain.engine.shots import check_shots, derived_seed
from qtrain.engine.observables import (
    Observable,
    PauliString,
    PauliSum,
    as_pauli_sum,
    checked_pauli_sum,
    checked_target_state,
)
from qtrain.layers import QuantumLayer
from qtrain.initializations import check_init, initial_angles, resolved_width
from qtrain.noise import NoiseModel
from qtrain._memory import budget_bytes, samples_per_chunk
from qtrain.parallel import Ranks

__all__ = [
    "QUANTILES", "STATES_PER_SAMPLE", "GradientStats", "evaluate", "gradient_samples", "gradient_variance",
    "resolve_cost", "summarize"
]

#: Quantiles of |gradient| that `summarize` reports (fractions in [0, 1]).
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
#: States alive per sample while a gradient is computed (state, cotangent and
#: kernel temporaries), for chunk planning.
STATES_PER_SAMPLE = 12
#: A gradient within this many machine epsilons (of the simulation's real
#: dtype) of zero is printed as rounding noise: a complex64 run leaves about
#: 1e-8 where the exact gradient is 0.
ROUNDING_EPS = 100
#: Shot estimates are drawn in blocks of this many consecutive samples, block k
#: with its own seed derived from (seed, cost, k) and its rows numbered from the
#: block's start, so a sample's shots depend on its index alone, not on the
#: chunking or the ranks. (The engine numbers rows from 0 in every call.)
SHOT_BLOCK = 256


@dataclass(frozen=True)
class GradientStats:
    """Statistics of S gradient samples. Tensors are () for one parameter,
    (P,) for all; a list of K observables puts a leading (K,) in front.

    `zero` marks parameters whose every sampled gradient is exactly 0 (a
    parameter outside the cost's light cone, say): their variance is exactly
    0, not a small number. `print(stats)` gives a summary table;
    `stats.gradients` holds the raw samples, (S, ...).

    With shots (`gradient_variance(..., shots=N)`) the statistics are the
    shot estimates' and three more fields are set: `exact_var`, the variance
    of the exact gradients at the same angles (the landscape's own spread),
    and `shot_var`, the mean of the estimates' squared standard errors (the
    sampling noise added to each gradient), both of `var`'s shape, whose sum is
    the measured `var` in expectation; `exact_gradients` holds the exact
    samples, (S, ...)."""

    n_samples: int
    mean: torch.Tensor
    var: torch.Tensor  # unbiased sample variance
    var_ci_low: torch.Tensor
    var_ci_high: torch.Tensor
    quantiles: torch.Tensor  # (len(QUANTILES), ...) at QUANTILES
    confidence: float
    gradients: torch.Tensor = field(repr=False)  # (S, ...) float64
    zero: torch.Tensor | None = field(default=None, repr=False)  # bool, var's shape (None: not computed)
    names: tuple[str, ...] = ()  # row labels for printing: parameters, or observable / parameter pairs
    rounding: float = 0.0  # |gradient| at or below this is the simulation's rounding noise (printing only)
    # With shots (else None): `var` and the other statistics are those of the shot estimates; their
    # measured variance splits, in expectation, as var = exact_var + shot_var:
    shots: int | None = None  # shots per shifted evaluation
    exact_var: torch.Tensor | None = None  # unbiased variance over the draws of the exact gradients at the same angles
    shot_var: torch.Tensor | None = None  # mean over the draws of each shot estimate's squared standard error
    exact_gradients: torch.Tensor | None = field(default=None, repr=False)  # (S, ...) float64, the exact gradients

    def __str__(self) -> str:
        var, low, high, mean = (t.reshape(-1).tolist() for t in (self.var, self.var_ci_low, self.var_ci_high, self.mean))
        zero = self.zero.reshape(-1).tolist() if self.zero is not None else [False] * len(var)
        largest = self.gradients.abs().amax(dim=0).reshape(-1).tolist()
        names = self.names or tuple(str(i) for i in range(len(var)))
        width = max(len("parameter"), *(len(n) for n in names))
        pct = f"{self.confidence:.0%} CI"
        if self.shots is None or self.exact_var is None or self.shot_var is None:
            title = f"gradient statistics over {self.n_samples} samples"
            split = [""] * len(var)
        else:
            title = f"gradient statistics over {self.n_samples} samples, {self.shots} shots per shifted evaluation"
            exact, shot = self.exact_var.reshape(-1).tolist(), self.shot_var.reshape(-1).tolist()
            split = [f"  {e:>11.4g}  {s:>11.4g}" for e, s in zip(exact, shot)]
            pct = f"{'exact part':>11}  {'shot part':>11}  {pct}"
        lines = [title, f"{'parameter':<{width}}  {'mean':>11}  {'variance':>11}  {pct}"]
        for name, m, v, lo, hi, z, top, parts in zip(names, mean, var, low, high, zero, largest, split):
            interval = f"[{lo:.4g}, {hi:.4g}]"
            if z:
                interval = "exactly 0 (every sampled gradient is 0)"
            elif top <= self.rounding:
                interval += f"; 0 within rounding (every |gradient| <= {self.rounding:.2g})"
            lines.append(f"{name:<{width}}  {m:>11.4g}  {v:>11.4g}{parts}  {interval}")
        return "\n".join(lines)


def summarize(gradients: torch.Tensor, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> GradientStats:
    """Mean, unbiased variance, quantiles and a percentile-bootstrap confidence
    interval for the variance, of gradients (S,) or (S, P).

    The bootstrap draws `n_boot` resamples as multinomial counts, so every
    resampled variance is two matrix products, whatever P is.
    """
    g = gradients.detach().to(torch.float64).cpu()
    single = g.dim() == 1
    g = g.reshape(g.shape[0], -1)  # (S, P)
    s = g.shape[0]
    if s < 2:
        raise ValueError(f"need at least 2 gradient samples for a variance, got {s}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    gen = torch.Generator().manual_seed(seed)
    counts = torch.zeros(n_boot, s, dtype=torch.float64)
    counts.scatter_add_(1, torch.randint(0, s, (n_boot, s), generator=gen), torch.ones(n_boot, s, dtype=torch.float64))
    centred = g - g.mean(dim=0)  # centring first keeps the moment formula accurate
    first, second = counts @ centred / s, counts @ centred**2 / s  # (n_boot, P)
    boot_var = (second - first**2) * s / (s - 1)
    alpha = (1 - confidence) / 2
    low, high = torch.quantile(boot_var, torch.tensor([alpha, 1 - alpha], dtype=torch.float64), dim=0)
    quantiles = torch.quantile(g, torch.tensor(QUANTILES, dtype=torch.float64), dim=0)
    pick = (lambda t: t[..., 0]) if single else (lambda t: t)
    zero = (g == 0).all(dim=0)
    return GradientStats(
        n_samples=s,
        mean=pick(g.mean(dim=0)),
        var=pick(g.var(dim=0, unbiased=True)),
        var_ci_low=pick(low),
        var_ci_high=pick(high),
        quantiles=pick(quantiles),
        confidence=confidence,
        gradients=g[:, 0] if single else g,
        zero=pick(zero),
    )


def resolve_cost(cost: Observable | torch.Tensor, n_qubits: int) -> PauliSum | torch.Tensor:
    """ "global" = Z0 Z1 (McClean's cost), "local" = (1/n) sum_i Z_i, any
    observable, or a target state tensor (the cost is then the infidelity)."""
    if isinstance(cost, torch.Tensor):
        return checked_target_state(cost, n_qubits)
    if cost == "global":
        if n_qubits < 2:
            raise ValueError("the global cost Z0 Z1 needs at least 2 qubits")
        return PauliSum.parse("Z0 Z1")
    if cost == "local":
        return PauliSum(tuple(PauliString(((q, "Z"),), 1 / n_qubits) for q in range(n_qubits)))
    return checked_pauli_sum(cost, n_qubits, what="cost")


def locality_costs(n_qubits: int) -> dict[str, PauliSum | torch.Tensor]:
    """Cerezo et al. (2021)'s two costs on n qubits, as `gradient_variance` and the trainers take them:
    "global", C_G = 1 - p(0...0), as the target |0...0> (the cost is its infidelity); "local",
    C_L = 1 - (1/n) sum_i p_i(0) = 1/2 - (1/2n) sum_i Z_i, as -(1/2n) sum_i Z_i (the constant has no gradient).
    Not `resolve_cost`'s "global" and "local", which are McClean's Z0 Z1 and the mean of Z_i."""
    if isinstance(n_qubits, bool) or not isinstance(n_qubits, int) or n_qubits < 1:
        raise ValueError(f"n_qubits must be a positive integer, got {n_qubits!r}")
    zero = torch.zeros(2**n_qubits, dtype=torch.complex128)
    zero[0] = 1
    local = PauliSum(tuple(PauliString(((q, "Z"),), -1 / (2 * n_qubits)) for q in range(n_qubits)))
    return {"global": zero, "local": local}


def evaluate(circuit: Circuit, theta: torch.Tensor, cost: PauliSum | torch.Tensor, **kwargs) -> torch.Tensor:
    """The cost per sample, (B,)."""
    if isinstance(cost, torch.Tensor):
        return circuit.infidelity(theta, cost, **kwargs)
    return circuit.expval(theta, cost, **kwargs)


def gradient_samples(
    circuit: Circuit, theta: torch.Tensor, cost: PauliSum | torch.Tensor, parameter: int | None, dtype: torch.dtype | None = None, light_cone: bool = True,
    noise: NoiseModel | None = None, trajectories: int | None = None, seed: int = 0, first_row: int = 0,
) -> torch.Tensor:
    """Exact d cost / d theta per sample: (B,) for `parameter`, (B, P) for all
    (parameter=None). A single parameter driving k gates costs 2k circuit runs
    by the shift rule, the full adjoint gradient about 4 (chunk by chunk, in the
    memory of a few chunks of states); the cheaper is used. An observable cost
    runs in its light cone unless `light_cone=False`. With `noise`, the noisy gradient
    (`Circuit.value_and_grad(noise=...)`; trajectories keyed by (`seed`, `first_row` + row))."""
    if noise is not None:
        if isinstance(cost, torch.Tensor):
            raise ValueError("noise: a target state's infidelity has no noisy form here; pass an observable cost")
        _, grads = circuit.value_and_grad(theta.detach(), cost, dtype=dtype, light_cone=light_cone, noise=noise, trajectories=trajectories,
                                          seed=seed if trajectories is not None else None, first_row=first_row)
        return grads if parameter is None else grads[:, parameter]
    options = {} if isinstance(cost, torch.Tensor) else {"light_cone": light_cone}
    slots = [j for j, p in enumerate(circuit.arg_params) if p == parameter]
    if parameter is not None and 2 * len(slots) <= 4 and not _has_half_angles(circuit, parameter):
        # A parameter on one gate shifts in place; a shared one is untied so
        # that each of its gates is shifted alone, and the shifts are summed.
        target, shifted, columns = (circuit, theta, [parameter]) if len(slots) == 1 else (circuit.untied(), theta[:, list(circuit.arg_params)], slots)
        total = torch.zeros(theta.shape[0], dtype=theta.dtype, device=theta.device)
        with torch.no_grad():
            for j in columns:
                step = torch.zeros(shifted.shape[1], dtype=theta.dtype, device=theta.device)
                step[j] = math.pi / 2  # exact for exp(-i theta P / 2): (E(+pi/2) - E(-pi/2)) / 2
                total += (evaluate(target, shifted + step, cost, dtype=dtype, **options) - evaluate(target, shifted - step, cost, dtype=dtype, **options)) / 2
        return total
    # spelled out, not **options, so that value_and_grad's typed overloads match; a target state keeps the default, True
    _, grads = circuit.value_and_grad(theta.detach(), cost, dtype=dtype, light_cone=light_cone or isinstance(cost, torch.Tensor))
    return grads if parameter is None else grads[:, parameter]


def _has_half_angles(circuit: Circuit, parameter: int) -> bool:
    """Whether the parameter drives a controlled rotation, for which the two-term shift is not exact."""
    return any(GATES[op.name].half_angles and parameter in op.params for op in circuit.ops)


def gradient_variance(
    model: Circuit | QuantumLayer,
    cost: Observable | torch.Tensor | list[Observable] | tuple[Observable, ...] | None = None,
    samples: int = 200,
    parameter: int | str | None = "first",
    *,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    inputs: torch.Tensor | None = None,
    memory_budget: int | str | None = None,
    chunk_size: int | None = None,
    confidence: float = 0.95,
    ranks: Ranks | None = None,
    shots: int | None = None,
    noise: NoiseModel | None = None,
    trajectories: int | None = None,
    init: str = "uniform",
    init_width: float | None = None,
) -> GradientStats:
    """Variance (and mean, quantiles, confidence interval) of the gradient over
    `samples` random parameter draws.

    A Circuit's angles are drawn from `init`: uniform on [0, 2 pi) rad by default, or any init of
    `qtrain.initializations` (gaussian, identity_blocks, small, zeros: the plateau at a remedy's start);
    a QuantumLayer's weights from its own init, with its data `inputs` held fixed.

    Args:
        model: a Circuit (all its parameters) or a QuantumLayer (its weights, `weight_names`).
        cost: None = the model's own: a QuantumLayer's is the sum of its outputs
            (its observables), a Circuit's McClean's Z0 Z1; or an observable,
            "global", "local", a target state (2**n,) complex (infidelity), or a list of K observables
            (statistics per observable, with a leading axis of length K).
        samples: random draws S (>= 2); a circuit with per-sample gates needs S equal to its batch.
        parameter: "first" (the parameter of the first trainable rotation, McClean's
            theta_{1,1}; default), an index or name, or None for all P parameters.
        seed: seed of the draws and of the bootstrap confidence interval.
        dtype: complex simulation dtype; defaults to the layer's own (complex64 for a Circuit).
        device: where the circuit runs.
        inputs: a QuantumLayer's data, (n_inputs,) (default zeros).
        memory_budget: bytes, or text such as "4GB", the chunks may use (default: a share of free memory).
        chunk_size: samples per chunk (default: as many as fit the budget).
        confidence: level of the variance's confidence interval, in (0, 1).
        ranks: (`qtrain.parallel`) in a data parallel run every rank calls this
            alike, computes a contiguous share of the samples (all drawn from `seed`,
            so the union is the one-process draw) and gets the statistics of all of them.
        shots: None (default) for exact gradients; a positive int N for parameter-shift estimates from N
            measurements per shifted evaluation (`Circuit.value_and_grad(shots=N)`, every rotation of a
            shared parameter shifted on its own), for an observable cost only (an infidelity is not
            measurable as a Pauli sum). The statistics are then the estimates', and `exact_var` (the
            variance of the exact gradients at the same angles) and `shot_var` (the mean squared standard
            error of the estimates) split the measured variance: var = exact_var + shot_var in expectation.
            The shots are seeded from `seed` and each sample's index, so chunking and ranks do not change
            them. Each estimate shifts every parameter (2 evaluations per rotation), even for one
            `parameter`, and the exact gradients run as well. A QuantumLayer's own `shots` is not
            used: pass shots here.
        noise: a `qtrain.noise.NoiseModel`: the gradients are the noisy ones, by the exact density matrix
            or, with `trajectories=T`, the mean over T trajectories per sample (keyed by `seed` and the
            sample's index, so chunking and ranks do not change them). With shots, the estimates are
            measured on the noisy density matrix, and `exact_var` is the noisy gradients' (not with
            trajectories). A QuantumLayer's own `noise` is not used: pass it here.
        trajectories: trajectories per sample with `noise`; None for the exact density matrix.
        init: a Circuit's draw (`qtrain.initializations.INITS`); "gaussian" scales its width with the
            circuit's depth and the cost's locality (over a list of costs, the largest). A QuantumLayer draws
            from its own init, so it takes only the default here.
        init_width: the init's width (see `initial_angles`); None for its default.

    Returns:
        GradientStats: tensors of shape () for one parameter or (P,) for all, with a leading (K,) for a list
        of costs; the raw samples in `gradients`, (S, ...) float64 (with shots: the estimates, and the
        exact ones in `exact_gradients`).
    """
    if samples < 2:
        raise ValueError(f"samples must be >= 2, got {samples}")
    shots = check_shots(shots)
    if trajectories is not None and shots is not None:
        raise ValueError("gradient_variance: shots with noise are measured on the exact density matrix; drop trajectories (or shots)")
    if trajectories is not None and noise is None:
        raise ValueError("trajectories applies to noisy runs, but noise is None; pass noise=NoiseModel(...) too")
    dtype = dtype or (model.dtype if isinstance(model, QuantumLayer) else torch.complex64)
    circuit, draw, names = _sampler(model, inputs, dtype, device)
    index = _parameter_index(circuit, names, parameter)
    many = isinstance(cost, (list, tuple))
    listed: list[Observable | torch.Tensor] = (
        list(cost) if isinstance(cost, (list, tuple)) else [_default_cost(model) if cost is None else cost]
    )
    labels = [str(c) for c in listed] if many else []
    costs = [resolve_cost(c, circuit.n_qubits) for c in listed]
    if init != "uniform":  # uniform is the historic draw on [0, 2 pi) (a width does not change it; it is checked all the same)
        draw = _init_sampler(model, circuit, costs, init, init_width, dtype, device)
    elif init_width is not None:
        if isinstance(model, QuantumLayer):
            raise ValueError("init_width: a QuantumLayer's weights are drawn from its own init (QuantumLayer(init_width=...)); leave it unset here")
        resolved_width(circuit, init, init_width, costs)
    if shots is not None and any(isinstance(c, torch.Tensor) for c in costs):
        raise ValueError(f"shots={shots}: a target state's infidelity is not a Pauli sum, so it cannot be estimated from measurements; "
                         "pass an observable, or shots=None")
    per_sample = circuit.gate_batch
    if per_sample > 1 and per_sample != samples:
        raise ValueError(f"the circuit holds {per_sample} per-sample circuits, so samples must be {per_sample}, got {samples}")
    ranks = ranks or Ranks(device=torch.device(device))
    share = ranks.share(samples) if per_sample == 1 else slice(0, samples)  # per-sample gates fix the batch: every rank runs it whole
    fits = samples_per_chunk(circuit.n_qubits, samples, dtype, budget_bytes(device, memory_budget), STATES_PER_SAMPLE)  # refuses what cannot fit
    chunk = samples if per_sample > 1 else chunk_size or fits
    gen = torch.Generator().manual_seed(seed)
    theta = draw(samples, gen)  # (S, P) on device, drawn at once so chunking and ranks cannot change it
    weights = [circuit.parameters.index(n) for n in names]
    per_cost, per_cost_shots, per_cost_stderr = [], [], []
    for k, c in enumerate(costs):
        noise_seed = derived_seed(seed, "trajectories", k)
        part = [gradient_samples(circuit, theta[i : min(i + chunk, share.stop)], c, index, dtype, noise=noise, trajectories=trajectories, seed=noise_seed, first_row=i)
                for i in range(share.start, share.stop, chunk)]
        grads = torch.cat(part) if part else theta.new_zeros((0,) if index is not None else (0, circuit.n_params))
        grads = ranks.gather(grads) if per_sample == 1 else grads
        if index is None and isinstance(model, QuantumLayer):
            grads = grads[:, weights]  # weights only, not the data inputs
        per_cost.append(grads)
        if shots is not None:
            assert isinstance(c, PauliSum)  # target states were refused above
            estimates, stderr = _shot_gradient_samples(circuit, theta, c, dtype, shots, seed, k, share, whole=per_sample > 1, noise=noise)
            if per_sample == 1:
                estimates, stderr = ranks.gather(estimates), ranks.gather(stderr)
            pick = weights if index is None else index  # the same columns as the exact gradients
            per_cost_shots.append(estimates[:, pick])
            per_cost_stderr.append(stderr[:, pick])
    rows = list(names) if index is None else [circuit.parameters[index]]
    rounding = ROUNDING_EPS * torch.finfo(real_dtype(dtype)).eps
    measured = per_cost if shots is None else per_cost_shots
    if not many:
        stats = replace(summarize(measured[0], confidence=confidence, seed=seed), names=tuple(rows), rounding=rounding)
        return stats if shots is None else _with_shot_split(stats, shots, per_cost[0], per_cost_stderr[0])
    stacked = torch.stack(measured, dim=1)  # (S, K[, P])
    flat = summarize(stacked.reshape(samples, -1), confidence=confidence, seed=seed)
    shape = stacked.shape[1:]
    stats = replace(
        flat,
        mean=flat.mean.reshape(shape), var=flat.var.reshape(shape), var_ci_low=flat.var_ci_low.reshape(shape),
        var_ci_high=flat.var_ci_high.reshape(shape), quantiles=flat.quantiles.reshape(-1, *shape), gradients=stacked.double().cpu(),
        zero=None if flat.zero is None else flat.zero.reshape(shape),
        names=tuple(f"{label} / {row}" for label in labels for row in rows), rounding=rounding,
    )
    return stats if shots is None else _with_shot_split(stats, shots, torch.stack(per_cost, dim=1), torch.stack(per_cost_stderr, dim=1))


def _with_shot_split(stats: GradientStats, shots: int, exact: torch.Tensor, stderr: torch.Tensor) -> GradientStats:
    """`stats` of shot estimates, with the exact gradients (S, ...) and the estimates' standard errors (S, ...)
    at the same angles: Var[estimate] = Var[exact] + E[shot variance] (the law of total variance; the
    estimate is unbiased given the angles), each part estimated without bias."""
    exact = exact.detach().double().cpu()
    return replace(stats, shots=shots, exact_var=exact.var(dim=0, unbiased=True),
                   shot_var=stderr.detach().double().cpu().square().mean(dim=0), exact_gradients=exact)


def _shot_gradient_samples(circuit: Circuit, theta: torch.Tensor, cost: PauliSum, dtype: torch.dtype, shots: int, seed: int, stream: int,
                           share: slice, whole: bool, noise: NoiseModel | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Parameter-shift estimates and their standard errors, (n, P) float64 each, for the samples
    `share` of theta (S, P), in blocks of SHOT_BLOCK (`whole`: one block of all, for per-sample gates);
    with `noise`, measured on the noisy density matrix."""
    if whole:
        blocks = [0]
        stop = theta.shape[0]
    else:
        blocks = list(range(share.start - share.start % SHOT_BLOCK, share.stop, SHOT_BLOCK))
        stop = share.stop
    grads, errors = [], []
    for start in blocks:
        # a block begun before this share still runs from its start, so that its rows keep their numbers
        end = stop if whole else min(start + SHOT_BLOCK, stop)
        _, g, (_, e) = circuit.value_and_grad(theta[start:end], cost, dtype=dtype, shots=shots, seed=_block_seed(seed, stream, start), return_stderr=True,
                                              noise=noise)
        skip = 0 if whole else max(share.start - start, 0)
        grads.append(g[skip:].double())
        errors.append(e[skip:].double())
    if not grads:  # a rank with no samples
        empty = theta.new_zeros((0, circuit.n_params), dtype=torch.float64)
        return empty, empty
    return torch.cat(grads), torch.cat(errors)


def _block_seed(seed: int, stream: int, start: int) -> int:
    """The shot seed of the block of samples from `start` for cost `stream`: a hash, so that no two
    (seed, stream, start) share samples (a sum or product of them could collide)."""
    return derived_seed(seed, stream, start)


def _default_cost(model: Circuit | QuantumLayer) -> Observable:
    """A layer's own cost, the sum of its outputs; McClean's Z0 Z1 for a circuit."""
    if isinstance(model, QuantumLayer):
        return PauliSum(tuple(term for o in model.observables for term in as_pauli_sum(o).terms))
    return "global"


def _sampler(model: Circuit | QuantumLayer, inputs: torch.Tensor | None, dtype: torch.dtype, device: torch.device | str):
    """(circuit, draw(S, generator) -> theta (S, P), trainable names)."""
    real = real_dtype(dtype)
    if isinstance(model, Circuit):
        def draw_circuit(s: int, gen: torch.Generator) -> torch.Tensor:
            return (2 * math.pi * torch.rand(s, model.n_params, generator=gen, dtype=torch.float64)).to(real).to(device)

        return model, draw_circuit, model.parameters
    if isinstance(model, QuantumLayer):
        circuit = model.circuit
        x = torch.zeros(len(model.input_names), dtype=torch.float64) if inputs is None else inputs.detach().double().cpu().reshape(-1)
        if x.numel() != len(model.input_names):
            raise ValueError(f"inputs must have {len(model.input_names)} values for {model.input_names}, got {x.numel()}")

        def draw_layer(s: int, gen: torch.Generator) -> torch.Tensor:
            weights = model.draw_weights((s, len(model.weight_names)), gen, torch.float64)
            columns = torch.cat([x.expand(s, -1), weights], dim=1)
            return columns[:, model.order.cpu()].to(real).to(device)

        return circuit, draw_layer, model.weight_names
    raise TypeError(f"model must be a Circuit or a QuantumLayer, got {type(model).__name__}")


def _init_sampler(model: Circuit | QuantumLayer, circuit: Circuit, costs: list[PauliSum | torch.Tensor], init: str, width: float | None,
                  dtype: torch.dtype, device: torch.device | str):
    """draw(S, generator) -> theta (S, P) from a Circuit's `init`, checked now (before any sampling)."""
    if isinstance(model, QuantumLayer):
        raise ValueError(f"init={init!r}: a QuantumLayer's weights are drawn from its own init (QuantumLayer(init=...)); leave init and init_width unset here")
    check_init(init)
    sigma = resolved_width(circuit, init, width, costs)
    initial_angles(circuit, init, 0, None, torch.float64, sigma, costs)  # an identity_blocks circuit is proved here, once

    def draw_init(s: int, gen: torch.Generator) -> torch.Tensor:
        return initial_angles(circuit, init, s, gen, torch.float64, sigma, costs).to(real_dtype(dtype)).to(device)

    return draw_init


def _parameter_index(circuit: Circuit, names: tuple[str, ...], parameter: int | str | None) -> int | None:
    if parameter is None:
        return None
    if not names:
        raise ValueError("the model has no trainable parameters")
    if parameter == "first":
        return next(p for p in circuit.arg_params if circuit.parameters[p] in names)
    if isinstance(parameter, str):
        if parameter not in names:
            raise ValueError(f"parameter {parameter!r} is not one of the trainable parameters {names}")
        return circuit.parameters.index(parameter)
    if isinstance(parameter, int) and 0 <= parameter < len(names):
        return circuit.parameters.index(names[parameter])
    raise ValueError(f"parameter must be 'first', a name, an index below {len(names)} or None, got {parameter!r}")
