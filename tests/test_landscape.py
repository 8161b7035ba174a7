"""Landscape grids, the exact Fourier path and the deceptiveness analysis,
on synthetic periodic landscapes with known answers and on circuits."""

import math

import numpy as np
import pytest
import torch

from qtrain import Circuit
from qtrain.builders import random_target_state, shared_ansatz
from qtrain.landscape import analyse_grid, deceptiveness, grid_axis, sample_landscape
from qtrain.landscape.deceptive import has_lower_neighbour
from tests.circuits import FIXED_1Q, FIXED_2Q, MULTI_ANGLE, ROTATIONS, ROTATIONS_2Q, random_circuit


def grid(resolution: int, d: int) -> list[torch.Tensor]:
    axis = grid_axis(resolution)
    return list(torch.meshgrid(*([axis] * d), indexing="ij"))


def test_grid_axis():
    axis = grid_axis(4)
    assert torch.allclose(axis, torch.tensor([-math.pi, -math.pi / 2, 0, math.pi / 2], dtype=torch.float64))


def test_one_well_is_not_deceptive():
    t1, t2 = grid(60, 2)
    values = -torch.cos(t1) - torch.cos(t2)
    grads = torch.stack([torch.sin(t1), torch.sin(t2)])
    for rule in ("gradient", "steepest"):
        r = analyse_grid(values, grads, rule=rule)
        assert r.ratio == 0 and r.n_minima == 1 and r.global_min == pytest.approx(-2)
        assert r.terminal.unique().tolist() == [30 * 60 + 30]  # the point (0, 0)


@pytest.mark.parametrize("rule", ["gradient", "steepest"])
def test_two_wells_ratio_is_the_shallow_basin_share(rule):
    """f = cos 2a + 0.3 sin a - cos b: wells at a = -pi/2 (deep) and +pi/2
    (shallow), separated by maxima at sin a = 0.075. R = 88 puts both wells on
    grid points (a well between two points would make two equal minima)."""
    resolution = 88
    a, b = grid(resolution, 2)
    values = torch.cos(2 * a) + 0.3 * torch.sin(a) - torch.cos(b)
    grads = torch.stack([-2 * torch.sin(2 * a) + 0.3 * torch.cos(a), torch.sin(b)])
    r = analyse_grid(values, grads, rule=rule, tol=1e-3)
    left, right = math.asin(0.075), math.pi - math.asin(0.075)
    axis = grid_axis(resolution)
    shallow_share = ((axis > left) & (axis < right)).double().mean().item()
    assert r.ratio == pytest.approx(shallow_share, abs=1e-12)
    assert r.n_minima == 2
    assert r.mask.any(dim=1).sum().item() == round(shallow_share * resolution)


def test_relative_tolerance_counts_the_shallow_well_as_global_when_wide_enough():
    a, b = grid(90, 2)
    values = torch.cos(2 * a) + 0.3 * torch.sin(a) - torch.cos(b)
    grads = torch.stack([-2 * torch.sin(2 * a) + 0.3 * torch.cos(a), torch.sin(b)])
    # the wells differ by 0.6 on a cost range of about 4.3: tol 0.2 relative covers both
    assert analyse_grid(values, grads, tol=0.2, relative=True).ratio == 0
    assert analyse_grid(values, grads, tol=0.1, relative=True).ratio > 0.4


def test_flat_region_without_nan():
    a, b = grid(40, 2)
    values = torch.clamp(torch.cos(a), min=0) + torch.clamp(torch.cos(b), min=0)  # zero on a whole quarter
    grads = torch.stack([-torch.sin(a) * (torch.cos(a) > 0), -torch.sin(b) * (torch.cos(b) > 0)])
    for rule in ("gradient", "steepest"):
        r = analyse_grid(values, grads, rule=rule, tol=0.0)
        assert math.isfinite(r.ratio) and r.ratio == 0
        assert not torch.isnan(r.grad_norm).any()
        assert r.n_minima > 1  # every flat point is its own (global) minimum


@pytest.mark.parametrize("rule", ["gradient", "steepest"])
def test_invariant_under_rolling_the_grid(rule):
    gen = torch.Generator().manual_seed(0)
    t = grid(24, 3)
    coeffs = torch.randn(6, generator=gen, dtype=torch.float64)
    values = sum(coeffs[i] * torch.cos((i % 3 + 1) * t[i % 3] + coeffs[i]) for i in range(6))
    grads = torch.stack([sum(-coeffs[i] * (i % 3 + 1) * torch.sin((i % 3 + 1) * t[i % 3] + coeffs[i]) for i in range(6) if i % 3 == axis) for axis in range(3)])
    base = analyse_grid(values, grads, rule=rule)
    shifts = (5, -7, 11)
    rolled = analyse_grid(torch.roll(values, shifts, (0, 1, 2)), torch.roll(grads, shifts, (1, 2, 3)), rule=rule)
    assert rolled.ratio == base.ratio and rolled.n_minima == base.n_minima
    assert torch.equal(rolled.mask, torch.roll(base.mask, shifts, (0, 1, 2)))


def test_gradient_rule_falls_back_in_curved_valleys():
    """A narrow diagonal valley: rounded gradient steps overshoot the valley
    floor; without the fallback they would stop on its slopes."""
    a, b = grid(120, 2)
    values = -torch.cos(a + b) - 0.05 * torch.cos(a - b)
    grads = torch.stack([torch.sin(a + b) + 0.05 * torch.sin(a - b), torch.sin(a + b) - 0.05 * torch.sin(a - b)])
    r = analyse_grid(values, grads, rule="gradient")
    assert r.n_minima == 2 and r.ratio == 0  # (0, 0) and (pi, pi), both global


def test_terminals_are_local_minima():
    c = shared_ansatz(3, 3, 3, seed=2)
    r = deceptiveness(c, random_target_state(3, 2), resolution=30)
    flat = r.values.reshape(-1)
    terminal_points = r.terminal.reshape(-1).unique()
    assert not has_lower_neighbour(r.values).reshape(-1)[terminal_points].any()
    assert terminal_points.numel() == r.n_minima
    assert r.global_min == flat.min().item()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fourier_equals_direct_on_random_shared_circuits(seed):
    rng = np.random.default_rng(seed)
    whole_periods = tuple(k for k in ROTATIONS + MULTI_ANGLE + ROTATIONS_2Q + FIXED_1Q + FIXED_2Q + ("unitary",) if not k.startswith("cr"))
    rc = random_circuit(rng, 3, n_gates=30, batch=1, n_names=2 + seed % 2, per_sample=False, kinds=whole_periods)
    assert {"u3", "rot", "rzz", "p"} & {op.name for op in rc.circuit.ops}
    for cost in ("0.5*Z0 Z1 - X2 + 0.3*Y1", random_target_state(3, seed)):
        for resolution in (7, 16):
            f = sample_landscape(rc.circuit, cost, resolution, "fourier")
            d = sample_landscape(rc.circuit, cost, resolution, "direct")
            assert (f.values - d.values).abs().max() < 1e-9
            assert (f.grads - d.grads).abs().max() < 1e-9


def test_deceptiveness_identical_through_either_path():
    c = shared_ansatz(3, 3, 2, seed=4)
    target = random_target_state(3, 4)
    f = deceptiveness(c, target, resolution=32, method="fourier")
    d = deceptiveness(c, target, resolution=32, method="direct")
    assert f.ratio == d.ratio and f.n_minima == d.n_minima
    assert torch.equal(f.mask, d.mask) and torch.equal(f.terminal, d.terminal)


def test_auto_picks_fourier_when_cheaper():
    c = shared_ansatz(2, 2, 2, seed=0)
    assert sample_landscape(c, "X0 + Z1", 20).method == "fourier"  # 5 x 5 samples < 400 grid points
    assert sample_landscape(c, "X0 + Z1", 4).method == "direct"  # 25 samples > 16 grid points


def test_shared_ansatz_structure():
    c = shared_ansatz(3, 4, 3, axes="XYZY")
    assert c.parameters == ("theta_0", "theta_1", "theta_2", "theta_3")
    assert c.slot_params == (0, 1, 2, 3) * 3
    names = [op.name for op in c.ops]
    assert names[:3] == ["ry"] * 3 and {op.angle for op in c.ops[:3]} == {math.pi / 4}
    # a ring after every n = 3 rotations and at the block's end
    assert names[3:14] == ["rx", "ry", "rz", "cnot", "cnot", "cnot", "ry", "cnot", "cnot", "cnot", "rx"]
    assert [op.qubits for op in c.ops[3:6]] == [(0,), (1,), (2,)] and c.ops[9].qubits == (0,)
    assert [op.qubits for op in c.ops[6:9]] == [(0, 1), (1, 2), (2, 0)]
    assert shared_ansatz(3, 3, 1, seed=5).ops[3].name == shared_ansatz(3, 3, 4, seed=5).ops[3].name  # seeded axes


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"resolution": 2}, ValueError, r"resolution must be an integer >= 3 \(.*\), got 2"),
        ({"tol": -1e-3}, ValueError, "tol must be >= 0, got -0.001"),
        ({"rule": "downhill"}, ValueError, "rule must be one of .* got 'downhill'"),
        ({"method": "magic"}, ValueError, "method must be one of .* got 'magic'"),
        ({"resolution": 360, "memory_budget": "1GB"}, MemoryError, r"resolution 360 over 3 parameters has 4.67e\+07 points and needs about"),
    ],
)
def test_bad_input(kwargs, error, message):
    c = shared_ansatz(3, 3, 1)
    with pytest.raises(error, match=message):
        deceptiveness(c, "Z0", **{"resolution": 10, **kwargs})


def test_too_many_parameters_for_a_grid():
    c = Circuit(2)
    for i in range(12):
        c.rx(i % 2, f"p{i}")
    with pytest.raises(MemoryError, match="over 12 parameters"):
        deceptiveness(c, "Z0", resolution=10)


def test_finite_difference_norm_is_the_exact_norm_times_sinc():
    from qtrain.landscape import finite_difference_grad_norm

    resolution = 30
    a, b = grid(resolution, 2)
    values = -torch.cos(a) - torch.cos(b)
    exact = torch.sqrt(torch.sin(a) ** 2 + torch.sin(b) ** 2)
    spacing = 2 * math.pi / resolution
    assert torch.allclose(finite_difference_grad_norm(values), exact * math.sin(spacing) / spacing, atol=1e-12)


@pytest.mark.parametrize("gate", ["crx", "cry", "crz"])
def test_a_controlled_rotation_parameter_is_refused_by_the_landscape(gate):
    """Its cost repeats only every 4 pi; the grid covers [-pi, pi)."""
    c = Circuit(2).ry(0, "a").add(gate, (0, 1), "b").rx(1, 0.3)
    theta = torch.tensor([0.4, 1.3], dtype=torch.float64)
    shifted = theta + torch.tensor([0.0, 2 * math.pi], dtype=torch.float64)
    assert not torch.allclose(c.expval(theta, "X0 + Z1", dtype=torch.complex128), c.expval(shifted, "X0 + Z1", dtype=torch.complex128))
    with pytest.raises(ValueError, match=rf"\['b'\] drive a controlled rotation \({gate}\).*4 pi"):
        sample_landscape(c, "X0 + Z1", 8)
    # a fixed angle is fine: accepted, and the landscape is the circuit's cost at every grid point
    fixed = Circuit(2).ry(0, "a").add(gate, (0, 1), 0.7).rx(1, "b")
    landscape = sample_landscape(fixed, "X0 + Z1", 8, "fourier")
    points = torch.stack([g.reshape(-1) for g in grid(8, 2)], dim=1)  # (64, 2), "ij" order as the landscape's axes
    expected = fixed.expval(points, "X0 + Z1", dtype=torch.complex128).reshape(8, 8)
    assert landscape.values.shape == (8, 8) and (landscape.values - expected).abs().max() < 1e-9
