"""The engine's instruction set: a `Program` of `Step`s.

The circuit front end (`qtrain.circuit`) lowers its gates to three kinds of
step (`StepKind`; what the engine does with each is `step_kinds.STEP_RULES`),
validated once, so the hot loop never looks at gate names:

  fixed        a constant operator: a matrix (1|B, d, d) or a diagonal (1|B, d)
  rotation     exp(-i theta G / 2) for a generator G (1|B, 2, 2), or its diagonal
               (1|B, 2) for R_Z; theta is column `slot` of the angle matrix
  permutation  psi'[x] = phase[x] psi[index[x]] over the whole register: a
               fused run of CNOTs, SWAPs, Xs and phases (`engine.permutations`);
               `tensor` is the phase (1, 2^n), or (1, 0) when every phase is 1

Trainable angles arrive as one (B or 1, n_slots) tensor, already gathered from
theta by the circuit (`theta[..., slot_params]`): that gather is all there is
to parameter sharing, and autograd sums a shared parameter's gradient over its
slots. `schedule` says in which order, and in which fused groups, steps run.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import torch

from qtrain.engine.kernels import apply_diagonal
from qtrain.engine.step_kinds import CORE_KINDS, StepKind, StepRule, step_rule

_REQUIRES_GRAD = operator.attrgetter("requires_grad")

__all__ = ["fuse_diagonals", "fuse_runs", "plain_tensors", "Program", "Step", "StepKind"]


#: torch's guard that turns torch.func's transforms off for the ops run under it. Private, and
#: the one private torch API qtrain calls: torch has no public way to make a tensor inside a
#: transform that is not one of its wrappers (torch.func.debug_unwrap only unwraps afterwards,
#: and its result is undefined inside the transform). Torch itself uses the guard (printing a
#: tensor in torch/_tensor_str.py, seeding in torch/cuda/random.py), and 2.13 (CI's torch) has
#: it; tests/test_torch_api.py fails by name if a torch drops it or changes what it does.
_DISABLE_FUNCTORCH: type[AbstractContextManager[Any]] | None = getattr(torch._C, "_DisableFuncTorch", None)


def plain_tensors() -> AbstractContextManager[Any]:
    """A context in which new tensors are plain even inside torch.func
    transforms (vmap, grad, jacrev): constants made there and cached (a
    program, its converted operators) must not be wrappers that die with the
    transform that made them.

    Measured on torch 2.13: inside grad (and jacrev, jvp) every new
    tensor, a constant too, is such a wrapper. Lowering a circuit there then
    fails (a wrapper has no storage for `.numpy()`), and converted operands
    cached there stay wrappers after the transform: later plain runs still
    work, through torch's unwrapping of dead wrappers, but 15 to 35 % slower
    (a 4-qubit, 10-layer circuit). vmap alone leaves constants plain."""
    if _DISABLE_FUNCTORCH is None:
        raise RuntimeError(f"torch {torch.__version__} has no torch._C._DisableFuncTorch, which qtrain needs to cache constants "
                           "made inside torch.func transforms; install a torch that pyproject.toml's range allows")
    return _DISABLE_FUNCTORCH()


@dataclass(frozen=True, eq=False)
class Step:
    """One instruction. `tensor` is kept as given (usually complex128 on the
    CPU) and converted per run by `Program.operand`. `rule` is the kind's entry
    in `STEP_RULES`, looked up once here: an unregistered kind fails now, by name."""

    kind: StepKind | str  # a StepKind, or the name of a kind added with `register_step_kind`
    qubits: tuple[int, ...]
    tensor: torch.Tensor  # fixed: the operator; rotation: the generator; permutation: the phase
    diagonal: bool = False
    slot: int = -1  # rotation: column of the angle matrix
    index: torch.Tensor | None = None  # permutation: the source of each basis state
    inverse: torch.Tensor | None = None  # permutation: the inverse permutation
    rule: StepRule = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rule", step_rule(self.kind))

    @property
    def batch(self) -> int:
        """1 for a step shared by the batch, B for per-sample axes or matrices."""
        return self.tensor.shape[0]


@dataclass(frozen=True, eq=False)
class Program:
    """A lowered circuit: its `steps` on `n_qubits` qubits, reading angle columns 0 .. `n_slots` - 1, run in
    the order (and fused groups) of `schedule`. Frozen data plus a cache of the operands each run converts
    (per dtype and device), so a program lowered once serves every later run."""

    n_qubits: int
    steps: tuple[Step, ...]
    n_slots: int
    schedule: tuple[Any, ...] = ()  # step indices and fusion.Layer groups; empty = every step alone
    n_gates: int | None = None  # the circuit gates lowered into the steps (None: as many as steps)
    _operands: dict = field(default_factory=dict, repr=False)

    @property
    def plan(self) -> tuple[Any, ...]:
        return self.schedule or tuple(range(len(self.steps)))

    @functools.cached_property
    def batch(self) -> int:
        """The batch the gates themselves fix (per-sample axes or unitaries), or 1. (Read at every run: kept,
        as a program's steps never change.)"""
        return max((s.batch for s in self.steps), default=1)

    @functools.cached_property
    def core_only(self) -> bool:
        """Whether every step is of the engine's core kinds (`step_kinds.CORE_KINDS`), which every path runs."""
        return all(s.kind in CORE_KINDS for s in self.steps)

    @functools.cached_property
    def _tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(s.tensor for s in self.steps)

    @property
    def needs_tensor_grad(self) -> bool:
        """Whether a step's tensor requires grad (asked at every run, of a tensor a user may have made require grad
        since: one C-level pass over the steps' tensors)."""
        return any(map(_REQUIRES_GRAD, self._tensors))

    def operand(self, step: Step, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """`step.tensor` in the run's dtype and device, converted once and cached
        (but never cached when it carries autograd history)."""
        if step.tensor.requires_grad:
            return step.tensor.to(dtype=dtype, device=device)
        key = (id(step), dtype, device)
        if key not in self._operands:
            with plain_tensors():
                self._operands[key] = step.tensor.to(dtype=dtype, device=device)
        return self._operands[key]

    def cached(self, key: tuple, build: Callable[[], Any]) -> Any:
        """A constant derived from the program, built once (as a plain tensor,
        whatever transform the first run is in) and kept with it."""
        if key not in self._operands:
            with plain_tensors():
                self._operands[key] = build()
        return self._operands[key]

    def permutation(self, step: Step, dtype: torch.dtype, device: torch.device) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        """A permutation step's gathers as (index, phase or None), converted
        once and cached: "forward" applies it, "undo_psi" its inverse U^dagger
        (the adjoint sweep's undo)."""
        key = ("permutation", id(step), dtype, device)
        if key not in self._operands:
            with plain_tensors():
                # permutations.permutation_step, the one maker of permutation steps, sets both
                assert step.index is not None and step.inverse is not None, step
                index, inverse = step.index.to(device), step.inverse.to(device)
                if step.tensor.shape[-1] == 0:
                    self._operands[key] = {"forward": (index, None), "undo_psi": (inverse, None)}
                else:
                    phase = step.tensor[0].to(dtype=dtype, device=device)
                    undone = phase[inverse.long()]
                    self._operands[key] = {"forward": (index, phase), "undo_psi": (inverse, undone.conj())}
        return self._operands[key]

    def generators(self, dtype: torch.dtype, device: torch.device) -> dict[bool, tuple[list[int], torch.Tensor]]:
        """The rotation steps' generators stacked per kind, converted once and cached:
        {diagonal: (step indices, (R, Bg, 2) or (R, Bg, 2, 2))}. One allocation per
        kind; views into it serve every step."""
        key = ("generators", dtype, device)
        if key not in self._operands:
            self._operands[key] = self._stacked_generators(dtype, device)
        return self._operands[key]

    def _stacked_generators(self, dtype: torch.dtype, device: torch.device) -> dict[bool, tuple[list[int], torch.Tensor]]:
        with plain_tensors():
            stacks = {}
            for diagonal in (False, True):
                indices = [i for i, st in enumerate(self.steps) if st.kind == StepKind.ROTATION and st.diagonal == diagonal]
                if indices:
                    tensors = [self.steps[i].tensor for i in indices]
                    batch = max(t.shape[0] for t in tensors)
                    stacked = torch.stack([t.expand(batch, *t.shape[1:]) for t in tensors]).to(dtype=dtype, device=device)
                    stacks[diagonal] = (indices, stacked)
        return stacks


def fuse_runs(
    steps: Sequence[Step], joins: Callable[[Step], bool], merges: Callable[[list[Step]], bool], merge: Callable[[list[Step]], Step]
) -> list[Step]:
    """Replace each maximal run of consecutive steps that `joins` accepts by the one step `merge(run)`
    when `merges(run)`, else keep the run's steps. Equal runs (the same qubits and tensors) share one
    merged step, so a circuit of repeated layers does not grow the program by a merged step per layer.
    The one walk behind `fuse_diagonals` and `permutations.fuse_permutations`."""
    fused: list[Step] = []
    run: list[Step] = []
    seen: dict[tuple, Step] = {}

    def flush() -> None:
        if run and merges(run):
            key = tuple((s.qubits, s.diagonal, s.tensor.detach().cpu().numpy().tobytes()) for s in run)
            if key not in seen:
                seen[key] = merge(list(run))
            fused.append(seen[key])
        else:
            fused.extend(run)
        run.clear()

    for step in steps:
        if joins(step):
            run.append(step)
        else:
            flush()
            fused.append(step)
    flush()
    return fused


def fuse_diagonals(steps: Sequence[Step]) -> list[Step]:
    """Merge each run of consecutive shared, constant diagonal steps (a CZ
    ladder, say) into one diagonal over the union of their qubits, so the run
    costs one pass over the state instead of one per gate.

    A fused diagonal has 2^k entries for k qubits, as many as a state: runs of
    the same gates (every layer's ladder) share one step, so the program does
    not grow by a state per layer.
    """

    def joins(step: Step) -> bool:
        return step.kind == StepKind.FIXED and step.diagonal and step.batch == 1 and not step.tensor.requires_grad

    return fuse_runs(steps, joins, lambda run: len(run) > 1, _diagonal_product)


def _diagonal_product(run: list[Step]) -> Step:
    """One fixed diagonal step over the union of the run's qubits: the product of their diagonals."""
    qubits = tuple(sorted({q for s in run for q in s.qubits}))
    position = {q: i for i, q in enumerate(qubits)}
    # Treat the running product as a 'state' over the union's qubits and multiply each gate's diagonal into it.
    product = torch.ones(1, *([2] * len(qubits)), dtype=torch.complex128)
    for s in run:
        product = apply_diagonal(product, s.tensor.to(torch.complex128), [position[q] for q in s.qubits])
    return Step(StepKind.FIXED, qubits, product.reshape(1, -1), diagonal=True)
