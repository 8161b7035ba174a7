"""Expressibility and entangling capability against values computed by hand."""

import math

import pytest
import torch

from qtrain import Circuit
from qtrain.diagnostics import entangling_capability, expressibility, haar_bin_probabilities


def test_haar_bins_are_the_integrated_density():
    n, bins = 3, 10
    probabilities = haar_bin_probabilities(n, bins)
    assert probabilities.sum().item() == pytest.approx(1.0, abs=1e-12)
    # (N - 1)(1 - F)^(N - 2) integrated numerically over the first bin
    grid = torch.linspace(0, 0.1, 100001, dtype=torch.float64)
    density = (2**n - 1) * (1 - grid) ** (2**n - 2)
    assert probabilities[0].item() == pytest.approx(torch.trapezoid(density, grid).item(), rel=1e-8)


def test_an_idle_circuit_is_as_far_from_haar_as_one_bin_allows():
    """Every pair has F = 1: the histogram is all in the last bin, of Haar probability (1/bins)^(N-1)."""
    c = Circuit(1).h(0)
    assert expressibility(c, samples=50, bins=75) == pytest.approx(math.log(75), rel=1e-12)
    c2 = Circuit(2).h(0).cnot(0, 1)
    assert expressibility(c2, samples=50, bins=75) == pytest.approx(3 * math.log(75), rel=1e-12)


def test_one_rotation_against_the_arcsine_law():
    """R_Y(a)|0> at uniform a: F = cos^2((a - b)/2) follows the arcsine law, density 1 / (pi sqrt(F (1 - F))),
    so bin i has probability (2/pi)(asin sqrt(F_hi) - asin sqrt(F_lo)); Haar (N = 2) is uniform."""
    bins, samples = 20, 40000
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    arcsine = (2 / math.pi) * (torch.asin(edges[1:].sqrt()) - torch.asin(edges[:-1].sqrt()))
    exact = float((arcsine * (arcsine * bins).log()).sum())
    estimate = expressibility(Circuit(1).ry(0, "a"), samples=samples, bins=bins, seed=3)
    # the plug-in estimator's spread at this sample size is about sqrt(Var[ln(p/q)] / S) ~ 0.005
    assert estimate == pytest.approx(exact, abs=0.02)
    # binning can only lose information: below the continuum divergence ln(4/pi) = -h(arcsine) (0.154 < 0.242 here)
    assert exact < math.log(4 / math.pi)


def test_more_layers_are_more_expressive_and_the_same_seed_gives_the_same_number():
    def layers(depth):
        c = Circuit(2)
        for layer in range(depth):
            for q in range(2):
                c.ry(q, f"y{layer}{q}").rz(q, f"z{layer}{q}")
            c.cnot(0, 1)
        return c

    shallow, deep = expressibility(layers(1), samples=2000), expressibility(layers(4), samples=2000)
    assert deep < shallow
    assert expressibility(layers(1), samples=2000, seed=5) == expressibility(layers(1), samples=2000, seed=5)


def test_meyer_wallach_by_hand():
    # R_Y(a) then CNOT: cos(a/2)|00> + sin(a/2)|11>, Q = sin^2(a), whose mean over a is 1/2
    samples = 20000
    value = entangling_capability(Circuit(2).ry(0, "a").cnot(0, 1), samples=samples, seed=1)
    assert value == pytest.approx(0.5, abs=5 * math.sqrt(1 / 8) / math.sqrt(samples))
    assert entangling_capability(Circuit(2).h(0).cnot(0, 1), samples=4) == pytest.approx(1.0, abs=1e-12)  # Bell
    product = Circuit(3).ry(0, "a").rz(1, "b").rx(2, "c").ry(1, "d")
    assert entangling_capability(product, samples=100) == pytest.approx(0.0, abs=1e-12)


def test_bad_input_is_refused_by_name():
    with pytest.raises(ValueError, match="samples must be an integer >= 2"):
        expressibility(Circuit(1).ry(0, "a"), samples=1)
    with pytest.raises(ValueError, match="bins must be an integer >= 2"):
        expressibility(Circuit(1).ry(0, "a"), bins=0)
    with pytest.raises(ValueError, match="needs at least 2 qubits"):
        entangling_capability(Circuit(1).ry(0, "a"))
    with pytest.raises(TypeError, match="must be a qtrain Circuit"):
        expressibility("ry(0)")
