"""Noisy runs: what `Circuit.expval/value_and_grad/density_matrix` do when given a `NoiseModel`.

Two methods, one entry point:

- "density" (the default): the exact density matrix, `qtrain._density`;
  differentiable by autograd, and `value_and_grad` is autograd per chunk.
- "trajectories": T Monte-Carlo trajectories per sample run as one batch of
  pure states on the statevector engine (`qtrain.engine.trajectories`), row
  (sample b, trajectory t) drawing its channels from counter-based uniforms
  keyed by (seed, first_row + b, channel, t): the same seed gives the same
  trajectories at any chunk size. Gradients (adjoint, per trajectory) for
  Pauli channels only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from qtrain._circuit_data import CircuitData
from qtrain._density import check_memory, checkpointed_states, density_plan, density_values, evolve, initial_density, noisy_cone, required_bytes, slot_angles
from qtrain._memory import budget_bytes
from qtrain._execution import ShotSampler, ShotSetting, _check_theta, _listed, checked_sums, shot_estimates, shot_gradients
from qtrain._lightcone import remap
from qtrain._lowering import lower
from qtrain.engine import PauliSum, Program, fuse_diagonals, infidelity, plan_schedule, check_complex_dtype, complex_dtype, expval, simulate_run, value_and_grad
from qtrain.engine.density import as_matrices, basis_probabilities
from qtrain.engine.run import Run, autograd_records, chunked_values
from qtrain.engine.observables import checked_target_state
from qtrain.engine.shots import TO_Z, check_first_row, check_seed, sample_groups, shot_uniforms
from qtrain.engine.permutations import fuse_permutations
from qtrain.engine.trajectories import frame_signs, jump_step, pauli_choices, pauli_step, propagate_frames
from qtrain.noise import NoiseModel, pauli_probabilities

__all__ = ["METHODS", "check_noise", "density_matrices", "noisy_expectation", "noisy_value_and_gradient"]

METHODS = ("density", "trajectories")

#: The group key of trajectory uniforms in `shot_uniforms` (shot groups count from 0 up): keeps a
#: trajectory's draws apart from any shot sample with the same seed.
TRAJECTORY_GROUP = 2**40


def check_noise(noise: Any, method: Any, trajectories: Any) -> tuple[NoiseModel, str, int | None]:
    """The noise model, the method ("density" or "trajectories") and the trajectory count, checked."""
    if not isinstance(noise, NoiseModel):
        raise TypeError(f"noise must be a qtrain.noise.NoiseModel, got {type(noise).__name__}")
    if trajectories is not None:
        if isinstance(trajectories, bool) or not isinstance(trajectories, int) or trajectories < 1:
            raise ValueError(f"trajectories must be a positive int, got {trajectories!r}")
        if method == "density":
            raise ValueError("trajectories and method='density' exclude each other: the density method is exact; drop one")
    if method is None:
        method = "trajectories" if trajectories is not None else "density"
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "trajectories" and trajectories is None:
        raise ValueError("method='trajectories' needs trajectories=T (the number of trajectories per sample)")
    return noise, method, trajectories


def check_no_initial_state(data: CircuitData, initial_state: Any) -> None:
    if initial_state is not None:
        raise ValueError("noise: initial_state is not supported with a noise model (runs start from |0...0>)")


def _batch(data: CircuitData, theta: torch.Tensor) -> int:
    batch = theta.shape[0]
    if data.gate_batch > 1:
        if batch not in (1, data.gate_batch):
            raise ValueError(f"theta has batch {batch}, but the circuit's per-sample gates have batch {data.gate_batch}")
        batch = data.gate_batch
    return batch


# ---- density ------------------------------------------------------------------------------------


def _density(data: CircuitData, theta: torch.Tensor, sums: tuple[PauliSum, ...], noise: NoiseModel, dtype: torch.dtype, light_cone: bool,
             target: torch.Tensor | None = None) -> torch.Tensor:
    """(B, K) expectations of `sums`, or with `target` (B or 1, 2^n) the infidelities 1 - <t|rho|t>, (B, 1)."""
    plan = density_plan(data, () if target is not None else sums, noise, light_cone and target is None)
    angles = plan.angles(theta)
    records = torch.is_grad_enabled() and theta.requires_grad
    measure = None
    if target is not None:
        bra = target.reshape(-1, 2**data.n_qubits).to(dtype=dtype, device=theta.device)

        def measure(rho: torch.Tensor, rows: slice) -> torch.Tensor:
            t = bra if bra.shape[0] == 1 else bra[rows]
            fidelity = torch.einsum("bi,bij,bj->b", t.conj(), as_matrices(rho, plan.n_qubits), t).real
            return (1 - fidelity)[:, None]

    values = density_values(plan, angles, _batch(data, theta), dtype, theta.device, records, measure)
    return values.to(theta.dtype)


def density_matrices(data: CircuitData, theta: Any, noise: NoiseModel, dtype: torch.dtype | None) -> torch.Tensor:
    """The final density matrices (B, 2**n, 2**n), differentiable by autograd."""
    noise.check_qubits(data.n_qubits)
    theta = _check_theta(data, theta)
    dtype = complex_dtype(theta.dtype) if dtype is None else check_complex_dtype(dtype)
    plan = density_plan(data, (), noise, False)
    batch = _batch(data, theta)
    check_memory(plan, batch, dtype, theta.device, records=True)
    n = data.n_qubits
    rho = evolve(plan, initial_density(n, dtype, theta.device).expand(batch, *([2] * (2 * n))), plan.angles(theta))
    return as_matrices(rho, n)


# ---- trajectories -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TrajectoryRun:
    """B * T trajectories (sample-major) as one engine run: the circuit that runs (the light cone when asked
    for), its observables, the rows' angle signs (B T, n_slots) from their Pauli frames (already in
    `run.angles`) and, per observable, each row's term signs (B T, terms) from its final frame."""

    run: Run
    cone: CircuitData
    sums: tuple[PauliSum, ...]
    angle_signs: torch.Tensor
    term_signs: tuple[torch.Tensor, ...]
    rows: torch.Tensor | None = None  # (B T,): each trajectory's row of the run, when equal trajectories run once

    def expand(self, per_run_row: torch.Tensor) -> torch.Tensor:
        """Results per run row -> per trajectory (B T, ...)."""
        return per_run_row if self.rows is None else per_run_row[self.rows.to(per_run_row.device)]


def _trajectory_run(data: CircuitData, theta: torch.Tensor, sums: tuple[PauliSum, ...], noise: NoiseModel, trajectories: int, seed: int,
                    first_row: int, dtype: torch.dtype, light_cone: bool, keep_frame: bool = True) -> TrajectoryRun:
    """The trajectories of every row of theta. Pauli draws travel to the end as per-row Pauli frames
    (`engine.trajectories.propagate_frames`), so the run is the noiseless circuit's plan at per-row angles;
    with `keep_frame=False` (a cost that is not a Pauli sum) the final frames are applied as steps."""
    if data.gate_batch > 1:
        raise ValueError("trajectories: per-sample gates (pauli_rot axes or batched unitaries) are not supported; use method='density'")
    noise.check_qubits(data.n_qubits)
    sums = tuple(noise.with_readout(s) for s in sums)
    ops = data.ops
    kept, cone, position = noisy_cone(data, sums, light_cone)  # as for the density: the same gates, the same register
    # Channel k of the whole circuit draws stream k, with or without the light cone.
    first_channel = np.cumsum([0] + [len(noise.channels_after(op.name, op.qubits)) for op in ops]).tolist()
    rows = np.arange(first_row, first_row + theta.shape[0], dtype=np.int64)

    def after_gate(j: int, _op: Any) -> list:
        i = kept[j]
        steps = []
        for m, channel in enumerate(noise.channels_after(ops[i].name, ops[i].qubits)):
            uniforms = torch.from_numpy(shot_uniforms(seed, rows, first_channel[i] + m, TRAJECTORY_GROUP, trajectories)).reshape(-1)
            qubit = position[channel.qubit]
            if channel.name == "amplitude_damping":
                steps.append(jump_step(qubit, uniforms, channel.rate))
                continue
            choices = pauli_choices(pauli_probabilities(channel.name, channel.rate), uniforms)
            if bool(choices.any()):  # every row drew the identity: no step at all
                steps.append(pauli_step(qubit, choices))
        return steps

    batch = theta.shape[0] * trajectories
    unfused = lower(cone.ops, cone.n_qubits, fuse=False, after_gate=after_gate)
    steps, signs, frame = propagate_frames(unfused.steps, cone.n_qubits, batch, keep_frame)
    fused = tuple(fuse_diagonals(fuse_permutations(steps, cone.n_qubits)))
    program = Program(cone.n_qubits, fused, unfused.n_slots, plan_schedule(fused, cone.n_qubits), n_gates=len(cone.ops))
    angles = slot_angles(theta, torch.tensor(cone.slot_params, dtype=torch.long), torch.tensor(cone.slot_scales, dtype=torch.float64))
    signs = signs.to(dtype=theta.dtype, device=theta.device)
    angles = angles.repeat_interleave(trajectories, dim=0) * signs
    cone_sums = tuple(remap(s, position) for s in sums)
    term_signs = tuple(frame_signs(frame, s).to(theta.device) for s in cone_sums)
    if keep_frame and all(step.batch == 1 for step in program.steps):  # (a target state's rows stay aligned with its rows)
        # Every row is the noiseless plan at its own angle signs, measured with its own term signs: rows of one
        # sample that agree on both are the same trajectory (most rows draw few Paulis, many none), so each
        # distinct one runs once, and the results are handed back to every row that drew it.
        sample = torch.arange(theta.shape[0], device=theta.device).repeat_interleave(trajectories)
        key = torch.cat([sample[:, None].to(signs.dtype), signs, *(t.to(signs.dtype) for t in term_signs)], dim=1)
        _, inverse = torch.unique(key, dim=0, return_inverse=True)
        first = torch.full((int(inverse.max()) + 1,), batch, dtype=torch.long, device=inverse.device)
        first.scatter_reduce_(0, inverse, torch.arange(batch, device=inverse.device), reduce="amin")  # each distinct row's first trajectory
        if first.numel() < batch:
            run = Run(program, angles[first], first.numel(), dtype, theta.device)
            return TrajectoryRun(run, cone, cone_sums, signs[first], tuple(t[first] for t in term_signs), inverse)
    return TrajectoryRun(Run(program, angles, batch, dtype, theta.device), cone, cone_sums, signs, term_signs)


def _refuse_readout(noise: NoiseModel) -> None:
    if noise.has_readout:
        raise ValueError("noise: readout error flips the measured bits of Pauli terms, and a target state's infidelity is not "
                         "measured that way; set readout=0 for an infidelity cost")


def _refuse_jump_gradient(noise: NoiseModel) -> None:
    if not noise.pauli_only:
        raise ValueError("trajectories with amplitude damping give values only (its jumps depend on the state); "
                         "use method='density' for gradients, or evaluate under torch.no_grad()")


def _signed_expvals(sums: tuple[PauliSum, ...], term_signs: tuple[torch.Tensor, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
    """sum_t c_t s_t(row) <T_t> per row and observable, (c, K): each term's sign from the row's final Pauli
    frame. A cost of the engine's chunks, which arrive in row order."""
    offset = 0

    def per_state(states: torch.Tensor) -> torch.Tensor:
        nonlocal offset
        rows = slice(offset, offset + states.shape[0])
        offset += states.shape[0]
        out = []
        for pauli_sum, signs in zip(sums, term_signs):
            terms = torch.stack([expval(states, PauliSum((term,))) for term in pauli_sum.terms], dim=-1)  # coefficients included
            out.append((terms * signs[rows].to(terms.dtype)).sum(dim=-1))
        return torch.stack(out, dim=-1)

    return per_state


def _trajectory_costs(trajectory: TrajectoryRun, per_state: Callable[[torch.Tensor], torch.Tensor], noise: NoiseModel) -> torch.Tensor:
    """per_state of every trajectory's final state, (B T, ...): by the adjoint where autograd records (Pauli
    channels only), else chunk by chunk."""
    run = trajectory.run
    if autograd_records(run):
        _refuse_jump_gradient(noise)
        values = per_state(simulate_run(run, "adjoint"))
    else:
        values = chunked_values(run, per_state)
    return trajectory.expand(values)


def _trajectory_values(trajectory: TrajectoryRun, trajectories: int, noise: NoiseModel) -> torch.Tensor:
    """(B, T, K) values per trajectory."""
    values = _trajectory_costs(trajectory, _signed_expvals(trajectory.sums, trajectory.term_signs), noise)
    return values.reshape(-1, trajectories, len(trajectory.sums))


def _rows_infidelity(target: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """1 - |<t_row|psi>|^2 as a cost of the engine's chunks, which arrive in row order: each chunk is
    matched with its rows of a per-row target (a shared target (1, 2^n) serves every row)."""
    offset = 0

    def per_state(states: torch.Tensor) -> torch.Tensor:
        nonlocal offset
        rows = target if target.shape[0] == 1 else target[offset : offset + states.shape[0]]
        offset += states.shape[0]
        return infidelity(states, rows[0] if rows.shape[0] == 1 else rows)

    return per_state


# ---- shots from the density matrix ------------------------------------------------------------


def density_sampler(data: CircuitData, theta: torch.Tensor, sums: tuple[PauliSum, ...], noise: NoiseModel, setting: ShotSetting,
                    dtype: torch.dtype, light_cone: bool) -> tuple[ShotSampler, Any]:
    """Shots measured on the exact noisy density matrix (each measured bit flipped with its readout rate),
    rows keyed as the noiseless shots are: -> the sampler and the plan (for its slot gather)."""
    plan = density_plan(data, sums, noise, light_cone)
    batch, n = _batch(data, theta), plan.n_qubits

    def sample(angles: torch.Tensor, evaluation: int) -> tuple[torch.Tensor, torch.Tensor]:
        def measure(rho: torch.Tensor, rows: slice) -> torch.Tensor:
            keys = torch.arange(setting.first_row + rows.start, setting.first_row + rows.stop)
            out = []
            for k, pauli_sum in enumerate(plan.measured):
                def probabilities(basis: tuple[tuple[int, str], ...]) -> torch.Tensor:
                    return basis_probabilities(rho, [(q, TO_Z[p]) for q, p in basis], n)

                estimate = sample_groups(probabilities, rho.shape[0], n, pauli_sum, setting.shots, setting.seed, keys,
                                         evaluation * len(plan.measured) + k, plan.readout)
                out.append(torch.stack([estimate.value, estimate.variance], dim=-1))
            return torch.stack(out, dim=1).reshape(rho.shape[0], -1)  # (c, K * 2)

        both = density_values(plan, angles.detach(), batch, dtype, theta.device, False, measure).reshape(batch, -1, 2)
        return both[..., 0].double(), both[..., 1].double()

    slots = [s for s, moves in enumerate(plan.slot_moves) if moves]
    return ShotSampler(sample, slots, batch, len(plan.measured)), plan


def noisy_shot_expectation(data: CircuitData, theta: Any, observable: Any, noise: NoiseModel, shots: int, seed: int | None,
                           dtype: torch.dtype | None, light_cone: bool, first_row: int = 0) -> torch.Tensor:
    """<H> per sample estimated from `shots` measurements of the noisy density matrix: (B,) or (B, K),
    differentiable by parameter shift (every rotation shifted on its own)."""
    many, observables = _listed(observable)
    sums = checked_sums(data, observables)
    theta = _check_theta(data, theta)
    dtype = complex_dtype(theta.dtype) if dtype is None else check_complex_dtype(dtype)
    setting = ShotSetting(shots, check_seed(seed), check_first_row(first_row))
    sampler, plan = density_sampler(data, theta, sums, noise, setting, dtype, light_cone)
    values = shot_estimates(sampler, plan.angles(theta))
    return values if many else values[:, 0]


def noisy_shot_value_and_gradient(data: CircuitData, theta: Any, cost: Any, noise: NoiseModel, shots: int, seed: int | None,
                                  dtype: torch.dtype | None, light_cone: bool, first_row: int = 0) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Shot estimates of a Pauli-sum cost on the noisy density matrix and of its gradient by parameter shift."""
    if isinstance(cost, torch.Tensor) or callable(cost):
        raise ValueError("shots: only an observable (a Pauli sum) can be estimated from measurements; pass an observable, or shots=None")
    sums = checked_sums(data, [cost])
    theta = _check_theta(data, theta).detach()
    dtype = complex_dtype(theta.dtype) if dtype is None else check_complex_dtype(dtype)
    setting = ShotSetting(shots, check_seed(seed), check_first_row(first_row))
    sampler, plan = density_sampler(data, theta, sums, noise, setting, dtype, light_cone)
    angles = plan.angles(theta)
    scales = None if plan.slot_scales is None else plan.slot_scales.to(theta.device)
    return shot_gradients(sampler, angles, plan.slot_index, scales, data.n_params, theta.dtype)


# ---- entry points -----------------------------------------------------------------------------


def noisy_expectation(data: CircuitData, theta: Any, observable: Any, noise: NoiseModel, method: str, trajectories: int | None,
                      seed: int | None, dtype: torch.dtype | None, initial_state: Any, light_cone: bool, first_row: int = 0) -> torch.Tensor:
    """<H> per sample under `noise`: (B,) or (B, K)."""
    check_no_initial_state(data, initial_state)
    many, observables = _listed(observable)
    sums = checked_sums(data, observables)
    theta = _check_theta(data, theta)
    dtype = complex_dtype(theta.dtype) if dtype is None else check_complex_dtype(dtype)
    if method == "density":
        values = _density(data, theta, sums, noise, dtype, light_cone)
    else:
        assert trajectories is not None
        trajectory = _trajectory_run(data, theta, sums, noise, trajectories, check_seed(seed), check_first_row(first_row), dtype, light_cone)
        values = _trajectory_values(trajectory, trajectories, noise).mean(dim=1).to(theta.dtype)
    return values if many else values[:, 0]


def noisy_infidelity(data: CircuitData, theta: Any, target: Any, noise: NoiseModel, method: str, trajectories: int | None,
                     seed: int | None, dtype: torch.dtype | None, first_row: int = 0) -> torch.Tensor:
    """1 - <t|rho|t> per sample under `noise`: (B,); by trajectories, the mean of 1 - |<t|psi>|^2."""
    _refuse_readout(noise)
    target = checked_target_state(target, data.n_qubits).reshape(-1, 2**data.n_qubits)
    theta = _check_theta(data, theta)
    dtype = complex_dtype(theta.dtype) if dtype is None else check_complex_dtype(dtype)
    if method == "density":
        return _density(data, theta, (), noise, dtype, False, target)[:, 0]
    assert trajectories is not None
    trajectory = _trajectory_run(data, theta, (), noise, trajectories, check_seed(seed), check_first_row(first_row), dtype, False, keep_frame=False)
    per_state = _rows_infidelity(target if target.shape[0] == 1 else target.repeat_interleave(trajectories, dim=0))
    return _trajectory_costs(trajectory, per_state, noise).reshape(-1, trajectories).mean(dim=1).to(theta.dtype)


def noisy_value_and_gradient(data: CircuitData, theta: Any, cost: Any, noise: NoiseModel, method: str, trajectories: int | None,
                             seed: int | None, dtype: torch.dtype | None, initial_state: Any, light_cone: bool,
                             first_row: int = 0) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """A Pauli-sum cost under `noise` and its gradient: values (B,), grads (B, P), and their standard errors
    (zeros for the exact density; over the trajectories otherwise)."""
    check_no_initial_state(data, initial_state)
    target = None
    if isinstance(cost, torch.Tensor):  # the infidelity to a target state
        _refuse_readout(noise)
        target = checked_target_state(cost, data.n_qubits).reshape(-1, 2**data.n_qubits)
        sums: tuple[PauliSum, ...] = ()
    elif callable(cost):
        raise ValueError("noise: a function of states has no noisy form (a density matrix is not a state); pass an observable or a target state")
    else:
        sums = checked_sums(data, [cost])
    theta = _check_theta(data, theta).detach()
    dtype = complex_dtype(theta.dtype) if dtype is None else check_complex_dtype(dtype)
    batch = _batch(data, theta)
    if method == "density":  # autograd chunk by chunk: a chunk's checkpoints fit the memory budget
        plan = density_plan(data, sums, noise, light_cone and target is None)
        per_sample = required_bytes(plan.n_qubits, 1, dtype, checkpointed_states(len(plan.blocks)))
        size = max(1, min(batch, budget_bytes(theta.device) // max(1, per_sample)))
        values_out, grads_out = [], []
        for start in range(0, batch, size):
            rows = theta.expand(batch, -1)[start : start + size].clone().requires_grad_(True)
            with torch.enable_grad():
                part = None if target is None else (target if target.shape[0] == 1 else target[start : start + size])
                values = _density(data, rows, sums, noise, dtype, light_cone, part)[:, 0]
                (grads,) = torch.autograd.grad(values.sum(), rows)
            values_out.append(values.detach())
            grads_out.append(grads)
        values, grads = torch.cat(values_out), torch.cat(grads_out)
        return values, grads, (torch.zeros_like(values), torch.zeros_like(grads))
    assert trajectories is not None
    _refuse_jump_gradient(noise)
    trajectory = _trajectory_run(data, theta, sums, noise, trajectories, check_seed(seed), check_first_row(first_row), dtype,
                                 light_cone and target is None, keep_frame=target is None)
    run, cone = trajectory.run, trajectory.cone
    if target is None:
        signed = _signed_expvals(trajectory.sums, trajectory.term_signs)
        per_state = lambda states: signed(states)[:, 0]  # noqa: E731
    else:  # each trajectory row measures its sample's target (the frames were applied at the end)
        rows_target = target if target.shape[0] == 1 else target.repeat_interleave(trajectories, dim=0)
        per_state = _rows_infidelity(rows_target)
    values, slot_grads = value_and_grad(run, per_state)
    slot_grads = slot_grads.to(theta.dtype) * trajectory.angle_signs  # d row angle / d angle = the row's sign
    values, slot_grads = trajectory.expand(values), trajectory.expand(slot_grads)
    index = torch.tensor(cone.slot_params, dtype=torch.long, device=theta.device)
    scales = torch.tensor(cone.slot_scales, dtype=theta.dtype, device=theta.device)
    per_trajectory = torch.zeros(slot_grads.shape[0], data.n_params, dtype=theta.dtype, device=theta.device)
    per_trajectory.index_add_(1, index, slot_grads * scales)
    values = values.to(theta.dtype).reshape(-1, trajectories)
    per_trajectory = per_trajectory.reshape(-1, trajectories, data.n_params)
    spread = math.sqrt(trajectories) if trajectories > 1 else math.nan
    stderr = (values.std(dim=1) / spread, per_trajectory.std(dim=1) / spread) if trajectories > 1 else (
        torch.full_like(values[:, 0], math.nan), torch.full_like(per_trajectory[:, 0], math.nan))
    return values.mean(dim=1), per_trajectory.mean(dim=1), stderr
