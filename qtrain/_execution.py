"""Running a frozen circuit: compiled programs in one bounded cache, and the
checks and calls between a user's arguments and the engine.

`Circuit`'s methods (`state`, `expval`, `infidelity`, `value_and_grad`,
`plan_summary`, `program`) come here with a `CircuitData` snapshot. What a run
needs that depends only on the gates and the observables (the light cone, the
lowered program, the slot gather) is compiled once per (snapshot,
observables) and kept in `compiled`'s LRU cache; everything that depends on
theta is checked per call.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from qtrain._circuit_data import CircuitData
from qtrain.engine import (
    PauliSum,
    Program,
    check_complex_dtype,
    check_diff_method,
    complex_dtype,
    expval,
    infidelity,
    plain_tensors,
    simulate_run,
    value_and_grad,
)
from qtrain.engine.observables import ExpvalCost, InfidelityCost, Observable, checked_pauli_sum, checked_target_state
from qtrain.engine.run import Run, autograd_records, chunked_values
from qtrain.engine.shots import check_first_row, check_seed, sample_expval
from qtrain.engine.summary import PlanSummary, summarize
from qtrain._lightcone import reduced_ops, remap
from qtrain._lowering import lower

__all__ = ["CACHE_SIZE", "Compiled", "compiled", "expectation", "fidelity_cost", "plan_summary", "states", "value_and_gradient"]

#: Compiled entries kept (least recently used dropped first). A training loop
#: reuses one or two (the circuit, the light cone of its cost); 64 also covers
#: a sweep that alternates between many circuits or observables, while a
#: program of a deep 20-qubit circuit is a few MiB of operators at most.
CACHE_SIZE = 64


@dataclass(frozen=True, eq=False)
class Compiled:
    """What runs for a snapshot and a set of observables: `data` (the circuit,
    or its light cone re-addressed onto the qubits it touches), its lowered
    `program`, the observables on that register (`sums`), and the slot gather."""

    data: CircuitData
    program: Program
    sums: tuple[PauliSum, ...]
    slot_index: torch.Tensor  # (n_slots,) long, CPU: theta column per slot
    slot_scales: torch.Tensor | None  # (n_slots,) float64, CPU; None when every scale is 1
    _on_device: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor | None]] = field(default_factory=dict, repr=False)

    def gather(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The slot index and scales on `device` (scales in `dtype`), converted once per device and dtype."""
        key = (device, dtype)
        if key not in self._on_device:
            with plain_tensors():  # cached, like the program: no torch.func wrapper may outlive its transform
                scales = None if self.slot_scales is None else self.slot_scales.to(dtype=dtype, device=device)
                self._on_device[key] = (self.slot_index.to(device), scales)
        return self._on_device[key]


@functools.lru_cache(maxsize=CACHE_SIZE)
def compiled(data: CircuitData, sums: tuple[PauliSum, ...] | None = None) -> Compiled:
    """The compiled form of `data`, or of its light cone for the observables
    `sums` (already checked against its register). Cached: snapshots hash by
    identity, so a circuit that gains a gate compiles again and nothing stale is served."""
    if sums is not None:
        ops, position = reduced_ops(data.ops, sums)
        if len(ops) == len(data.ops) and len(position) == data.n_qubits:  # the cone is the whole circuit
            whole = compiled(data)
            return Compiled(data, whole.program, sums, whole.slot_index, whole.slot_scales)
        cone = CircuitData(len(position), tuple(ops), data.parameters, data.gate_batch)
        return _compile(cone, tuple(remap(s, position) for s in sums))
    return _compile(data, ())


def _compile(data: CircuitData, sums: tuple[PauliSum, ...]) -> Compiled:
    with plain_tensors():  # a cached program must outlive any torch.func transform it was first run in
        program = lower(data.ops, data.n_qubits)
        index = torch.tensor(data.slot_params, dtype=torch.long)
        scaled = any(scale != 1 for scale in data.slot_scales)  # the half angles of controlled rotations
        scales = torch.tensor(data.slot_scales, dtype=torch.float64) if scaled else None
    return Compiled(data, program, sums, index, scales)


def checked_sums(data: CircuitData, observables: Sequence[Observable]) -> tuple[PauliSum, ...]:
    """Each observable as a PauliSum, refused by name if it acts beyond the register."""
    return tuple(checked_pauli_sum(o, data.n_qubits) for o in observables)


def _listed(observable: Observable | Sequence[Observable]) -> tuple[bool, Sequence[Observable]]:
    """Whether several observables were given (the result then has a K axis), and them as a sequence."""
    if isinstance(observable, (list, tuple)):
        return True, observable
    return False, [observable]  # type: ignore[list-item]  # a str is a Sequence too, but one observable


def compiled_for(data: CircuitData, sums: tuple[PauliSum, ...], light_cone: bool, initial_state: Any) -> Compiled:
    """The light cone of `sums` when asked for and exact (from |0...0> only), else the whole circuit."""
    if light_cone and initial_state is None:
        return compiled(data, sums)
    whole = compiled(data)
    return Compiled(data, whole.program, sums, whole.slot_index, whole.slot_scales, whole._on_device)


# ---- a run's inputs -----------------------------------------------------------------------


def prepare(plan: Compiled, theta: Any, dtype: torch.dtype | None, initial_state: Any) -> tuple[torch.Tensor, Run]:
    """Check the inputs of a run: -> theta (B or 1, P) and the engine's run."""
    data = plan.data
    theta = _check_theta(data, theta)
    dtype = complex_dtype(theta.dtype) if dtype is None else check_complex_dtype(dtype)
    index, scales = plan.gather(theta.device, theta.dtype)
    angles = theta[:, index]  # (B or 1, n_slots): parameter sharing is this one gather
    if scales is not None:
        angles = angles * scales
    batch = theta.shape[0]
    if data.gate_batch > 1:
        if batch not in (1, data.gate_batch):
            raise ValueError(f"theta has batch {batch}, but the circuit's per-sample gates have batch {data.gate_batch}")
        batch = data.gate_batch
    initial = None
    if initial_state is not None:
        initial = _check_initial_state(data.n_qubits, initial_state, dtype, theta.device)
        if batch not in (1, initial.shape[0]) and initial.shape[0] != 1:
            raise ValueError(f"initial_state has batch {initial.shape[0]}, but theta and the gates have batch {batch}")
        batch = max(batch, initial.shape[0])
    return theta, Run(plan.program, angles, batch, dtype, theta.device, initial)


def _check_theta(data: CircuitData, theta: Any) -> torch.Tensor:
    if theta is None:
        if data.n_params:
            raise ValueError(f"theta is required: the circuit has {data.n_params} parameters {data.parameters}")
        return torch.zeros(1, 0)
    if not isinstance(theta, torch.Tensor):
        raise TypeError(f"theta must be a torch.Tensor, got {type(theta).__name__}")
    if not theta.dtype.is_floating_point:
        raise TypeError(f"theta must be a real floating tensor (float32 or float64), got dtype {theta.dtype}")
    if theta.dim() not in (1, 2) or theta.shape[-1] != data.n_params:
        raise ValueError(f"theta has shape {tuple(theta.shape)}; expected ({data.n_params},) or (B, {data.n_params}) for parameters {data.parameters}")
    return theta.unsqueeze(0) if theta.dim() == 1 else theta


def _check_initial_state(n_qubits: int, initial_state: Any, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    dim = 2**n_qubits
    if not isinstance(initial_state, torch.Tensor):
        raise TypeError(f"initial_state must be a torch.Tensor, got {type(initial_state).__name__}")
    if initial_state.dim() not in (1, 2) or initial_state.shape[-1] != dim:
        raise ValueError(f"initial_state has shape {tuple(initial_state.shape)}; expected ({dim},) or (B, {dim})")
    flat = initial_state.reshape(-1, dim).to(dtype=dtype, device=device)
    return flat.reshape(flat.shape[0], *([2] * n_qubits))


# ---- what Circuit's methods run -------------------------------------------------------------


def states(data: CircuitData, theta: Any, dtype: torch.dtype | None, diff_method: str, initial_state: Any) -> torch.Tensor:
    """Final states (B, 2**n) of the whole circuit."""
    check_diff_method(diff_method)
    _, run = prepare(compiled(data), theta, dtype, initial_state)
    return simulate_run(run, diff_method).reshape(-1, 2**data.n_qubits)


def expectation(data: CircuitData, theta: Any, observable: Observable | Sequence[Observable], dtype: torch.dtype | None,
                diff_method: str, initial_state: Any, light_cone: bool) -> torch.Tensor:
    """<H> per sample: (B,) for one observable, (B, K) for a sequence of K."""
    many, observables = _listed(observable)
    plan = compiled_for(data, checked_sums(data, observables), light_cone, initial_state)

    def per_state(states: torch.Tensor) -> torch.Tensor:
        values = [expval(states, s) for s in plan.sums]
        return torch.stack(values, dim=-1) if many else values[0]

    return _evaluate(plan, theta, per_state, dtype, diff_method, initial_state)


def fidelity_cost(data: CircuitData, theta: Any, target: torch.Tensor, dtype: torch.dtype | None, diff_method: str, initial_state: Any) -> torch.Tensor:
    """1 - |<target|psi(theta)>|^2 per sample, (B,)."""
    target = checked_target_state(target, data.n_qubits)
    return _evaluate(compiled(data), theta, functools.partial(infidelity, target=target), dtype, diff_method, initial_state)


def _evaluate(plan: Compiled, theta: Any, per_state: Callable[[torch.Tensor], torch.Tensor], dtype: torch.dtype | None,
              diff_method: str, initial_state: Any) -> torch.Tensor:
    """per_state(final states) per sample. When autograd records nothing,
    chunk by chunk, so the batch of final states is never held."""
    check_diff_method(diff_method)
    theta, run = prepare(plan, theta, dtype, initial_state)
    if autograd_records(run):
        values = per_state(simulate_run(run, diff_method))
        # A light cone with no trainable gate leaves the values constant: a zero term keeps them in theta's graph.
        return values if values.requires_grad else values + theta[:, :0].sum()
    return chunked_values(run, per_state)


def value_and_gradient(data: CircuitData, theta: Any, cost: Observable | torch.Tensor | Callable[[torch.Tensor], torch.Tensor],
                       dtype: torch.dtype | None, initial_state: Any, light_cone: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A per-sample cost and its gradient by the adjoint method: -> values (B,), d value / d theta (B, n_params)."""
    per_state: Callable[[torch.Tensor], torch.Tensor]
    if isinstance(cost, torch.Tensor):  # a target state: the cost is the infidelity to it
        plan = compiled(data)
        per_state = InfidelityCost(checked_target_state(cost, data.n_qubits))  # gives its cotangent without autograd
    elif callable(cost):
        plan, per_state = compiled(data), _flat_cost(cost, data.n_qubits)
    else:
        plan = compiled_for(data, checked_sums(data, [cost]), light_cone, initial_state)
        pauli_sum = plan.sums[0]
        per_state = ExpvalCost(pauli_sum)  # diagonal observables give their cotangent without autograd
    theta, run = prepare(plan, theta, dtype, initial_state)
    if run.program.needs_tensor_grad:
        raise ValueError("value_and_grad differentiates only the rotation angles, but a gate's matrix requires grad; use expval and autograd")
    values, slot_grads = value_and_grad(run, per_state)
    index, scales = plan.gather(theta.device, theta.dtype)
    slot_grads = slot_grads.to(theta.dtype)
    if scales is not None:
        slot_grads = slot_grads * scales  # d angle / d parameter
    grads = torch.zeros(run.batch, data.n_params, dtype=theta.dtype, device=theta.device)
    return values.to(theta.dtype), grads.index_add_(1, index, slot_grads)  # a shared parameter: the sum over its gates


def _flat_cost(cost: Callable[[torch.Tensor], torch.Tensor], n_qubits: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """A cost of flat states (c, 2**n) as the engine calls it, on states (c, 2, ..., 2)."""
    return lambda states: cost(states.reshape(states.shape[0], 2**n_qubits))


def plan_summary(data: CircuitData, batch: int, dtype: torch.dtype, observable: Observable | None, per_sample: bool | None,
                 device: torch.device | str) -> PlanSummary:
    """What the engine's plan makes of the circuit (or of an observable's light cone) for `batch` samples."""
    check_complex_dtype(dtype)
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"plan_summary: batch must be a positive int, got {batch!r}")
    plan = compiled(data) if observable is None else compiled(data, checked_sums(data, [observable]))
    return summarize(plan.program, batch, dtype, batch > 1 if per_sample is None else per_sample, device)


# ---- estimates from shots -------------------------------------------------------------------

#: d f / d phi = (f(phi + pi/2) - f(phi - pi/2)) / 2 for every slot: each is exp(-i phi G / 2) with G^2 = I.
SHIFT = math.pi / 2


@dataclass(frozen=True)
class ShotSetting:
    """What a shot estimate needs besides the run: `shots` per measurement group and evaluation, and the seed."""

    shots: int
    seed: int
    first_row: int = 0  # the batch index of the run's first row: rows are keyed first_row, first_row + 1, ...


def sampled(plan: Compiled, run: Run, angles: torch.Tensor, evaluation: int, setting: ShotSetting) -> tuple[torch.Tensor, torch.Tensor]:
    """Shot estimates of every observable of `plan` for `run` at slot `angles`:
    -> values (B, K) and their estimated variances (B, K), float64. Evaluation
    `evaluation` draws its own samples (0: the values; 1 + 2s and 2 + 2s: slot s shifted up and down)."""
    count = len(plan.sums)
    offset = setting.first_row

    def per_state(states: torch.Tensor) -> torch.Tensor:
        nonlocal offset  # chunks arrive in order: a chunk's rows are its samples' rows in the whole batch
        rows = torch.arange(offset, offset + states.shape[0])
        offset += states.shape[0]
        estimates = [sample_expval(states, s, setting.shots, setting.seed, rows, evaluation * count + k) for k, s in enumerate(plan.sums)]
        return torch.stack([torch.stack([e.value, e.variance], dim=-1) for e in estimates], dim=1)  # (c, K, 2)

    out = chunked_values(dataclasses.replace(run, angles=angles.detach()), per_state)
    return out[..., 0], out[..., 1]


def shifted_slots(data: CircuitData) -> list[int]:
    """The slots whose shift can change a cost: all but the global phases (their derivative is 0 exactly)."""
    return [s for s, moves in enumerate(data.slot_moves_state) if moves]


@dataclass(frozen=True, eq=False)
class ShotSampler:
    """Where shot estimates come from, for the parameter-shift rule: `sample(angles, evaluation)` ->
    values (B, K) and their estimated variances (B, K), float64, evaluation `evaluation` drawing its own
    samples (0: the values; 1 + 2s and 2 + 2s: slot s shifted up and down); `slots` the slots to shift."""

    sample: Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]
    slots: list[int]
    batch: int
    observables: int


def state_sampler(plan: Compiled, run: Run, setting: ShotSetting) -> ShotSampler:
    """Shots measured on the run's final states."""
    return ShotSampler(functools.partial(sampled, plan, run, setting=setting), shifted_slots(plan.data), run.batch, len(plan.sums))


def shift_derivatives(sampler: ShotSampler, angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Parameter-shift estimates of d <H_k> / d angle_s for every slot:
    -> (B, n_slots, K) derivatives and their estimated variances, float64."""
    base = angles.detach()
    derivatives = torch.zeros(sampler.batch, base.shape[1], sampler.observables, dtype=torch.float64, device=base.device)
    variances = torch.zeros_like(derivatives)
    for s in sampler.slots:
        step = torch.zeros_like(base)
        step[:, s] = SHIFT
        up, up_var = sampler.sample(base + step, 1 + 2 * s)
        down, down_var = sampler.sample(base - step, 2 + 2 * s)
        derivatives[:, s] = (up - down) / 2
        variances[:, s] = (up_var + down_var) / 4
    return derivatives, variances


class _ShotExpval(torch.autograd.Function):
    """Shot estimates whose gradient is the parameter-shift estimate with as many shots per shifted evaluation."""

    @staticmethod
    def forward(angles: torch.Tensor, sampler: ShotSampler) -> torch.Tensor:  # type: ignore[override]
        values, _ = sampler.sample(angles, 0)
        return values.to(angles.dtype)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        ctx.angles, ctx.sampler = inputs

    @staticmethod
    def backward(ctx: Any, grad_values: torch.Tensor) -> tuple[torch.Tensor | None, None]:  # type: ignore[override]
        derivatives, _ = shift_derivatives(ctx.sampler, ctx.angles)
        grads = torch.einsum("bk,bsk->bs", grad_values.to(torch.float64), derivatives).to(ctx.angles.dtype)
        if ctx.angles.shape[0] != grads.shape[0]:  # angles shared by the batch: their gradient sums over it
            grads = grads.sum(dim=0, keepdim=True)
        return grads, None


def shot_estimates(sampler: ShotSampler, angles: torch.Tensor) -> torch.Tensor:
    """Shot estimates (B, K) at slot `angles`, differentiable by parameter shift."""
    return _ShotExpval.apply(angles, sampler)


def shot_gradients(sampler: ShotSampler, angles: torch.Tensor, index: torch.Tensor, scales: torch.Tensor | None, n_params: int,
                   dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """The first observable's shot estimate and its parameter-shift gradient with respect to the parameters
    (slot `index` per slot, d angle / d parameter `scales`): values (B,), grads (B, P), standard errors."""
    values, value_var = sampler.sample(angles, 0)
    derivatives, derivative_var = shift_derivatives(sampler, angles)
    slot_grads, slot_var = derivatives[..., 0], derivative_var[..., 0]
    if scales is not None:
        slot_grads, slot_var = slot_grads * scales, slot_var * scales.square()  # d angle / d parameter
    device = slot_grads.device
    grads = torch.zeros(sampler.batch, n_params, dtype=torch.float64, device=device).index_add_(1, index.to(device), slot_grads)
    grad_var = torch.zeros_like(grads).index_add_(1, index.to(device), slot_var)  # a parameter's slots are shifted with independent samples
    return values[:, 0].to(dtype), grads.to(dtype), (value_var[:, 0].sqrt().to(dtype), grad_var.sqrt().to(dtype))


def shot_expectation(data: CircuitData, theta: Any, observable: Observable | Sequence[Observable], shots: int, seed: int | None,
                     dtype: torch.dtype | None, initial_state: Any, light_cone: bool, first_row: int = 0) -> torch.Tensor:
    """<H> per sample estimated from `shots` shots per measurement group: (B,) or (B, K); differentiable by parameter shift."""
    many, observables = _listed(observable)
    plan = compiled_for(data, checked_sums(data, observables), light_cone, initial_state)
    setting = ShotSetting(shots, check_seed(seed), check_first_row(first_row))
    theta, run = prepare(plan, theta, dtype, initial_state)
    values = shot_estimates(state_sampler(plan, run, setting), run.angles)
    return values if many else values[:, 0]


def shot_value_and_gradient(data: CircuitData, theta: Any, cost: Any, shots: int, seed: int | None, dtype: torch.dtype | None,
                            initial_state: Any, light_cone: bool, first_row: int = 0) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Shot estimates of a Pauli-sum cost and of its gradient by parameter shift (every slot of a parameter
    shifted on its own, `shots` shots per shifted evaluation): -> values (B,), grads (B, P), and their
    standard errors ((B,), (B, P)) estimated from the same samples."""
    if isinstance(cost, torch.Tensor) or callable(cost):
        what = "a target state's infidelity" if isinstance(cost, torch.Tensor) else "a callable cost"
        raise ValueError(f"shots: {what} is not a Pauli sum, so it cannot be estimated from measurements; pass an observable, or shots=None")
    plan = compiled_for(data, checked_sums(data, [cost]), light_cone, initial_state)
    setting = ShotSetting(shots, check_seed(seed), check_first_row(first_row))
    theta, run = prepare(plan, theta, dtype, initial_state)
    index, scales = plan.gather(theta.device, torch.float64)
    return shot_gradients(state_sampler(plan, run, setting), run.angles, index, scales, data.n_params, theta.dtype)
