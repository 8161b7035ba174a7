"""The engine's step kinds are one typed table: a new kind is one entry plus its kernels, and a kind
with no entry fails loudly, by name.

The toy kind here, "roll", cycles the basis states of the whole register, psi'[x] = psi[x - s mod 2^n]:
a kind the engine has never seen, registered in one place (the fixture) and run forward, backward by
autograd and backward by the adjoint sweep. Its reference is the same program with the roll written as
a fixed 2^n x 2^n permutation matrix, which the built-in kinds already run."""

from __future__ import annotations

import pytest
import torch

from qtrain.engine import Program, Step, simulate
from qtrain.engine.fusion import plan_schedule
from qtrain.engine.gates import GateKind, GateSpec
from qtrain.engine.program import StepKind
from qtrain.engine.run import product_prefix
from qtrain.engine.step_kinds import STEP_RULES, StepRule, register_step_kind, step_rule

N = 3


def _roll(state: torch.Tensor, step: Step, operator: tuple[int], scratch: object = None) -> torch.Tensor:
    (shift,) = operator
    flat = state.reshape(state.shape[0], -1)
    return torch.roll(flat, shift, dims=1).reshape(state.shape)


ROLL = StepRule(
    operator=lambda program, step, dtype, device: (int(step.tensor[0, 0].real),),
    apply=_roll,
    undo=lambda program, step, operator, dtype, device: (-operator[0],),
)


@pytest.fixture
def roll_kind():
    register_step_kind("roll", ROLL)
    yield "roll"
    del STEP_RULES["roll"]


def _roll_matrix(shift: int) -> torch.Tensor:
    """The roll as a (1, 2^n, 2^n) matrix: column x has its 1 in row x + shift."""
    d = 2**N
    return torch.eye(d, dtype=torch.complex128).roll(shift, dims=0).unsqueeze(0)


def _program(middle: Step, one_qubit_roll: Step | None = None) -> Program:
    """R_Y(q0), R_X(q1), `middle` on every qubit, R_Y(q2), R_Z(q0): rotations on both sides of it."""
    y = torch.tensor([[0, -1j], [1j, 0]], dtype=torch.complex128)[None]
    x = torch.tensor([[0, 1], [1, 0]], dtype=torch.complex128)[None]
    z = torch.tensor([[1, -1]], dtype=torch.complex128)
    steps = [
        Step(StepKind.ROTATION, (0,), y, slot=0),
        Step(StepKind.ROTATION, (1,), x, slot=1),
        middle,
        Step(StepKind.ROTATION, (2,), y, slot=2),
        Step(StepKind.ROTATION, (0,), z, diagonal=True, slot=3),
    ]
    if one_qubit_roll is not None:
        steps.insert(0, one_qubit_roll)
    return Program(N, tuple(steps), 4, plan_schedule(steps, N))


def _cost(program: Program, angles: torch.Tensor, diff_method: str) -> torch.Tensor:
    """<Z on qubit 2> per sample, so every rotation's angle matters."""
    state = simulate(program, angles, angles.shape[0], torch.complex128, diff_method=diff_method)
    probs = state.abs().reshape(angles.shape[0], 2, 2, 2) ** 2
    return probs[..., 0].sum((1, 2)) - probs[..., 1].sum((1, 2))


@pytest.mark.parametrize("diff_method", ["backprop", "adjoint"])
def test_a_registered_toy_kind_runs_forward_and_backward_like_its_matrix(roll_kind, diff_method):
    shift = 3
    toy = _program(Step(roll_kind, tuple(range(N)), torch.tensor([[shift]], dtype=torch.complex128)))
    dense = _program(Step(StepKind.FIXED, tuple(range(N)), _roll_matrix(shift)))
    angles = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    a = angles.clone().requires_grad_(True)
    value = _cost(toy, a, diff_method)
    (grad,) = torch.autograd.grad(value.sum(), a)
    b = angles.clone().requires_grad_(True)
    expected = _cost(dense, b, "backprop")
    (expected_grad,) = torch.autograd.grad(expected.sum(), b)

    torch.testing.assert_close(value, expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(grad, expected_grad, atol=1e-12, rtol=0)
    assert grad.abs().sum() > 0.1  # the check above compares gradients that are not all zero


def test_a_toy_kind_that_does_not_fuse_stays_out_of_layers_and_the_product_prefix(roll_kind):
    # a one-qubit step of a kind that does not fuse runs as its own step: only fixed gates and rotations
    # have the 2x2 operator that a layer or the product-state prefix multiplies in
    lone = Step(roll_kind, (0,), torch.tensor([[1]], dtype=torch.complex128))
    program = _program(Step(StepKind.FIXED, tuple(range(N)), _roll_matrix(1)), one_qubit_roll=lone)
    assert program.plan[0] == 0
    assert product_prefix(program) == 0
    assert not step_rule(roll_kind).fuses and step_rule(StepKind.ROTATION).fuses


def test_an_unregistered_step_kind_fails_when_made_naming_it():
    with pytest.raises(KeyError, match="'noise_channel'"):
        Step("noise_channel", (0,), torch.eye(2, dtype=torch.complex128)[None])


def test_a_kind_is_registered_once(roll_kind):
    with pytest.raises(ValueError, match="'roll' is already registered"):
        register_step_kind(roll_kind, ROLL)


def test_every_built_in_kind_has_an_entry_and_reads_as_its_name():
    assert set(STEP_RULES) >= set(StepKind)
    assert [str(k) for k in StepKind] == ["fixed", "rotation", "permutation"]
    assert StepKind.ROTATION == "rotation"  # a str enum: logs and old comparisons read the same
    assert step_rule("rotation") is step_rule(StepKind.ROTATION)


def test_an_unknown_gate_kind_fails_when_the_table_row_is_made_naming_it():
    assert GateSpec("h2", 1, "fixed", matrix=((1, 0), (0, 1))).kind is GateKind.FIXED
    with pytest.raises(ValueError, match="'measure'"):
        GateSpec("m", 1, "measure")


def test_a_program_with_every_built_in_kind_pickles_for_spawned_ranks():
    """Steps keep their rule, and a QuantumLayer's program goes to ddp_spawn ranks by pickle: no lambdas in the table."""
    import pickle

    from qtrain.engine.step_kinds import STEP_RULES, StepKind

    for kind in StepKind:
        assert pickle.loads(pickle.dumps(STEP_RULES[kind])) == STEP_RULES[kind]
