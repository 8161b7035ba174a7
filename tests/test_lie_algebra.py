"""lie_algebra and predict_variance against sampling and known dimensions; the refusals.

The dense reference comparisons (spans, ideals, the general commutant form) are in test_lie_reference.py;
here the prediction meets the engine's own sampled variance of deep circuits at uniform angles."""

from __future__ import annotations

import math
import time

import pytest
import torch

from qtrain import Circuit
from qtrain import builders
from qtrain.builders import free_fermion_circuit as free_fermions, qaoa_circuit, shared_ansatz
from qtrain.diagnostics import lie_algebra, predict_variance
from qtrain.diagnostics.lie import DEFAULT_MAX_DIM


def hardware_efficient(n: int, layers: int, gates: tuple[str, ...] = ("rx", "ry"), ring: bool = False) -> Circuit:
    return builders.hardware_efficient(n, layers, gates, "cz", ring)


def qaoa(n: int, layers: int, ring: bool) -> tuple[Circuit, str]:
    return qaoa_circuit(n, layers, ring)


def sampled_variance(circuit: Circuit, observable: str, samples: int = 4000, seed: int = 0) -> tuple[float, float]:
    """The variance of <O> at uniform angles and its standard error (from the fourth central moment)."""
    theta = torch.rand(samples, circuit.n_params, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 * math.pi
    values = circuit.expval(theta, observable)
    centred = values - values.mean()
    var = float(centred.square().mean())
    fourth = float(centred.pow(4).mean())
    return var, math.sqrt(max(fourth - var**2, 0.0) / samples)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_universal_hardware_efficient_dimension(n: int) -> None:
    assert lie_algebra(hardware_efficient(n, 3)).dim == 4**n - 1


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 8])
def test_free_fermion_dimension(n: int) -> None:
    alg = lie_algebra(free_fermions(n, 3))
    assert alg.dim == n * (2 * n - 1)  # so(2n)
    assert alg.ideal_dims == ((3, 3) if n == 2 else (n * (2 * n - 1),))  # so(4) = su(2) + su(2)


def test_single_rotation_is_abelian() -> None:
    alg = lie_algebra(Circuit(2).rx(1, "a"))
    assert alg.dim == 1 and alg.ideals == () and alg.centre.shape[0] == 1
    assert alg.strings == ("IX",)


def test_an_abelian_algebra_of_sums_has_no_ideal() -> None:
    """Commuting generators that are Pauli sums (a crz, a p) span a centre and no simple ideal; the variance is then
    that of a torus, which the commutant form gives and sampling confirms (the ideals' formula would say 0)."""
    c = Circuit(2).h(0).h(1)
    for layer in range(8):
        c.crz(1, 0, f"a{layer}").p(0, f"b{layer}")
    alg = lie_algebra(c)
    assert alg.dim == 2 and alg.ideals == () and alg.centre.shape[0] == 2  # span{Z0 - Z0 Z1, Z0}
    predicted = predict_variance(c, "X0 + X1", algebra=alg)
    sampled, error = sampled_variance(c, "X0 + X1", samples=3000)
    assert abs(sampled - predicted) < 4 * error


def test_a_parameter_on_three_gates_is_untied_when_a_gate_between_does_not_commute() -> None:
    """The review's case: a0 drives rx on 0, rz on 1 and rzx(1, 0); rz(0, b) sits between and anticommutes with the rzx.
    Checking each gate only against the gates just before it merged all three (dim 5, a wrong variance); the algebra is
    the untied circuit's, dim 7, and sampling agrees with its prediction."""
    circuit = Circuit(2).h(0).h(1).ry(0, 0.3)
    for layer in range(40):
        circuit.rx(0, f"a{layer}").rz(0, f"b{layer}").rz(1, f"a{layer}").rz(1, f"c{layer}").rzx(1, 0, f"a{layer}")
    alg = lie_algebra(circuit)
    assert alg.dim == 7 == lie_algebra(circuit.untied()).dim and len(alg.restrictions) == 40
    with pytest.warns(UserWarning, match="untied"):
        predicted = predict_variance(circuit, "X0", algebra=alg)
    sampled, error = sampled_variance(circuit, "X0", samples=3000)
    assert abs(sampled - predicted) < 4 * error


def test_one_parameter_twice_in_a_gate_is_untied() -> None:
    alg = lie_algebra(Circuit(1).u3(0, "a", "a", "b"))
    assert alg.dim == 3 and len(alg.restrictions) == 1 and "'a'" in alg.restrictions[0]


def test_ring_symmetric_qaoa_has_a_centre() -> None:
    circuit, _ = qaoa(4, 6, ring=True)
    alg = lie_algebra(circuit)
    assert alg.dim == 11 and alg.ideal_dims == (3, 3, 3) and alg.centre.shape[0] == 2
    assert alg.restrictions == ()  # every shared angle drives commuting gates side by side: one generator each
    assert len(alg.generators) == 2  # the cost sum and the mixer sum, the same in every layer


FAMILIES = {
    # name: (circuit, observable, samples)
    "free fermions n=4": (free_fermions(4, 24), "Z0"),
    "free fermions n=5": (free_fermions(5, 60), "Z0"),
    "hardware-efficient n=3": (hardware_efficient(3, 12), "Z0 Z1"),
    "hardware-efficient n=4": (hardware_efficient(4, 15), "Z0"),
    "qaoa ring n=4": qaoa(4, 30, ring=True),
    "qaoa line n=5": qaoa(5, 40, ring=False),
}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_predicted_equals_sampled(name: str) -> None:
    circuit, observable = FAMILIES[name]
    predicted = predict_variance(circuit, observable)
    sampled, error = sampled_variance(circuit, observable)
    assert predicted > 0
    assert abs(sampled - predicted) < 4 * error, f"{name}: predicted {predicted:.5f}, sampled {sampled:.5f} +- {error:.5f}"


def test_analytic_values() -> None:
    """so(2n) with O = Z0: P(rho) = n / 2^n, P(O) = 2^n, Var = 1 / (2n - 1); su(2^n): 1 / (2^n + 1)."""
    assert predict_variance(free_fermions(5, 3), "Z0") == pytest.approx(1 / 9, rel=1e-12)
    assert predict_variance(hardware_efficient(3, 3), "Z0 Z1") == pytest.approx(1 / 9, rel=1e-12)
    assert predict_variance(hardware_efficient(4, 3), "X2") == pytest.approx(1 / 17, rel=1e-12)


def test_outside_the_algebra_the_commutant_form_predicts() -> None:
    """The issue's example: a CZ-ring hardware-efficient circuit at n = 4 has so(16); neither Z0 Z1 nor |0000> lies in
    it, the ideals' formula would give 0 and is refused; the general commutant form gives 7/135 = 0.0519, and sampling
    about 0.052."""
    circuit = hardware_efficient(4, 30, ring=True)
    alg = lie_algebra(circuit)
    assert alg.dim == 120 and alg.ideal_dims == (120,)
    with pytest.raises(ValueError, match="neither the observable 'Z0 Z1' nor the initial state lies in the span"):
        predict_variance(circuit, "Z0 Z1", algebra=alg, method="ideals")
    predicted = predict_variance(circuit, "Z0 Z1", algebra=alg)  # auto: the commutant form
    assert predicted == pytest.approx(7 / 135, rel=1e-9)
    sampled, error = sampled_variance(circuit, "Z0 Z1", samples=3000)
    assert abs(sampled - predicted) < 4 * error


def test_commutant_form_is_refused_past_its_width() -> None:
    circuit, _ = qaoa(6, 2, ring=True)  # a small algebra; Z0 Z1 alone (not the cost sum) and |+...+> lie outside it
    with pytest.raises(ValueError, match="up to 5 qubits, not 6"):
        predict_variance(circuit, "Z0 Z1")
    with pytest.raises(ValueError, match="method must be one of"):
        predict_variance(circuit, "Z0 Z1", method="exact")


def test_leading_fixed_gates_are_the_initial_state() -> None:
    """R_Y(pi/4) before the first parametrized gate is not Clifford: it goes into the initial state, not refused."""
    c = Circuit(2).ry(0, math.pi / 4).ry(1, math.pi / 4).rz(0, "a").rz(1, "b").cz(0, 1).rx(0, "c").rx(1, "d")
    alg = lie_algebra(c)
    expected = torch.tensor([math.cos(math.pi / 8), math.sin(math.pi / 8)], dtype=torch.complex128)
    assert torch.allclose(alg.initial_state, torch.kron(expected, expected))


def test_shared_ansatz_states_its_restriction() -> None:
    """The sharing study's circuit at k = 2 (seed 0): each angle's second rotation can meet its first (it commutes with
    the gates it passes), so every parameter is one generator; at k = 3 theta_1's and theta_2's rotations cannot, and the algebra
    is the untied one's, said in `restrictions` and warned about."""
    merged = lie_algebra(shared_ansatz(3, 3, sharing=2))
    assert merged.restrictions == () and merged.dim == 10 and len(merged.generators) == 3
    circuit = shared_ansatz(3, 3, sharing=3)
    alg = lie_algebra(circuit)
    assert alg.dim == 63 and len(alg.restrictions) == 2 and all("untied" in r for r in alg.restrictions)
    assert "theta_0" not in " ".join(alg.restrictions)  # its three rotations can still meet
    assert repr(alg).startswith("LieAlgebra(n_qubits=3, dim=63")
    with pytest.warns(UserWarning, match="untied"):
        predict_variance(circuit, "Z0", algebra=alg)


def test_refusals() -> None:
    with pytest.raises(TypeError, match="qtrain Circuit"):
        lie_algebra("rx 0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-Clifford fixed gate \\('t'"):
        lie_algebra(Circuit(1).rx(0, "a").t(0).rx(0, "b"))
    with pytest.raises(ValueError, match="non-Clifford fixed gate \\('ry'"):
        lie_algebra(Circuit(1).rz(0, "a").ry(0, 0.3).rz(0, "b"))
    with pytest.raises(ValueError, match="per-sample gates"):
        lie_algebra(Circuit(1).pauli_rot(0, "a", torch.tensor([0, 1])))
    with pytest.raises(ValueError, match="max_dim=20"):
        lie_algebra(hardware_efficient(3, 2), max_dim=20)
    with pytest.raises(ValueError, match="max_dim must be a positive integer"):
        lie_algebra(Circuit(1).rx(0, "a"), max_dim=0)
    with pytest.raises(ValueError, match="not lie_algebra\\(circuit\\)"):
        predict_variance(Circuit(1).rx(0, "a"), "Z0", algebra=lie_algebra(Circuit(1).ry(0, "a")))
    with pytest.raises(ValueError, match="not lie_algebra\\(circuit\\)"):  # the same gates on another register
        predict_variance(Circuit(2).rx(0, "a"), "Z0 Z1", algebra=lie_algebra(Circuit(1).rx(0, "a")))
    with pytest.raises(ValueError, match="more than 6000"):  # a degenerate spectrum: the general form would be slow
        predict_variance(free_fermions(5, 3), "Z0 Z1")
    with pytest.raises(ValueError, match="acts on qubit 3"):
        predict_variance(Circuit(2).rx(0, "a"), "Z3")


def test_clifford_fixed_gates_between_rotations_are_moved() -> None:
    """rx(a) then h then rx(b) is rx(a) then rz(b) in the frame: X and Z generate su(2)."""
    alg = lie_algebra(Circuit(1).rx(0, "a").h(0).rx(0, "b").s(0).ry(0, 1.5707963267948966))
    assert alg.dim == 3 and set(alg.strings) == {"X", "Y", "Z"}
    assert predict_variance(Circuit(1).rx(0, "a").h(0).rx(0, "b"), "Z0") == pytest.approx(1 / 3)


def test_circuit_without_parameters_has_no_variance() -> None:
    c = Circuit(2).h(0).cnot(0, 1)
    assert lie_algebra(c).dim == 0 and predict_variance(c, "Z0 Z1") == 0.0


def test_six_qubit_universal_closes_fast() -> None:
    start = time.perf_counter()
    alg = lie_algebra(hardware_efficient(6, 3))
    assert alg.dim == 4095 == DEFAULT_MAX_DIM - 1
    assert time.perf_counter() - start < 60  # about 1 s on a laptop core; generous for a loaded CI machine
