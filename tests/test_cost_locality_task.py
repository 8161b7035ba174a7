"""experiment=cost_locality (Cerezo et al. 2021): analytic values, the gradients against the dense reference,
the trend, outputs, resume and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qtrain import cli
from qtrain._tasks import cost_locality
from qtrain.builders import alternating_layered
from qtrain.diagnostics import gradient_variance, locality_costs
from qtrain.diagnostics.gradients import gradient_samples
from qtrain.errors import UsageError
from tests import reference as ref
from tests.test_cli import compose_experiment, rows_of


def test_the_ansatz_alternates_even_and_odd_pairs():
    c = alternating_layered(5, 2)
    pairs = [op.qubits for op in c.ops if op.name == "cz"]
    assert pairs == [(0, 1), (2, 3), (1, 2), (3, 4)] * 2
    assert c.parameters[0] == "theta_0_0_0" and c.n_params == 16
    with pytest.raises(ValueError, match="unknown block 'rx_cnot'"):
        alternating_layered(4, 1, "rx_cnot")


def test_two_qubit_variances_are_the_analytic_ones():
    """n = 2, L = 1 is R_Y(a) x R_Y(b) then CZ: C_G = 1 - cos^2(a/2) cos^2(b/2), dC_G/da = sin(a) cos^2(b/2) / 2, Var = 3/64;
    C_L = 1 - (cos^2(a/2) + cos^2(b/2)) / 2, dC_L/da = sin(a) / 4, Var = 1/32."""
    circuit = alternating_layered(2, 1)
    costs = locality_costs(2)
    for name, expected in (("global", 3 / 64), ("local", 1 / 32)):
        stats = gradient_variance(circuit, costs[name], samples=20000, parameter=0, seed=3)
        assert float(stats.var_ci_low) < expected < float(stats.var_ci_high), (name, float(stats.var), expected)


def _reference_costs(n: int, layers: int, theta: np.ndarray) -> tuple[float, float]:
    """C_G and C_L from the dense reference simulator (its own gates), for one parameter vector."""
    gates, k = [], 0
    for _ in range(layers):
        for sublayer in (0, 1):
            for a in range(sublayer, n - 1, 2):
                gates += [{"name": "ry", "qubits": (a,), "angle": theta[k]}, {"name": "ry", "qubits": (a + 1,), "angle": theta[k + 1]},
                          {"name": "cz", "qubits": (a, a + 1)}]
                k += 2
    psi = ref.run(gates, n)
    probs = np.abs(psi) ** 2
    p0 = [probs.reshape([2] * n).take(0, axis=q).sum() for q in range(n)]
    return 1 - probs[0], 1 - float(np.mean(p0))


@pytest.mark.parametrize("n,layers", [(3, 1), (4, 2)])
def test_gradients_match_the_reference_by_finite_differences(n, layers):
    circuit = alternating_layered(n, layers)
    theta = torch.rand(3, circuit.n_params, generator=torch.Generator().manual_seed(n), dtype=torch.float64) * 2 * math.pi
    for index, name in enumerate(("global", "local")):
        got = gradient_samples(circuit, theta, locality_costs(n)[name], parameter=0)
        for row in range(3):
            plus, minus = theta[row].numpy().copy(), theta[row].numpy().copy()
            plus[0] += 1e-6
            minus[0] -= 1e-6
            fd = (_reference_costs(n, layers, plus)[index] - _reference_costs(n, layers, minus)[index]) / 2e-6
            assert float(got[row]) == pytest.approx(fd, abs=1e-7), (name, row)


TINY = ["qubits=[2,4,6]", "layers=[1,2]", "samples=400", "seed=1"]


def test_outputs_trend_and_resume(tmp_path, monkeypatch):
    result = cli.run(compose_experiment("cost_locality", TINY), tmp_path)
    rows = rows_of(tmp_path / "results.csv")
    assert set(cost_locality.COLUMNS) == set(rows[0])
    assert sorted((int(r["qubits"]), int(r["layers"]), r["cost"]) for r in rows) == sorted(
        (n, L, c) for n in (2, 4, 6) for L in (1, 2) for c in ("global", "local"))
    by = {(r["qubits"], r["layers"], r["cost"]): r["variance"] for r in result["rows"]}
    for L in (1, 2):  # global falls by more than 4x per two qubits from n = 4 on; local by less than 3x
        assert by[(6, L, "global")] < by[(4, L, "global")] / 4
        assert by[(6, L, "local")] > by[(4, L, "local")] / 3
        assert by[(6, L, "global")] < by[(6, L, "local")]
    fits = rows_of(tmp_path / "fits.csv")
    assert [(f["cost"], int(f["layers"])) for f in fits] == [("global", 1), ("global", 2), ("local", 1), ("local", 2)]
    assert (tmp_path / "variance_vs_qubits_locality.png").stat().st_size > 0

    calls = []
    monkeypatch.setattr(cost_locality, "gradient_variance", lambda *a, **k: calls.append(a) or None)
    again = cli.run(compose_experiment("cost_locality", TINY), tmp_path)
    assert calls == [] and again["rows"] == result["rows"]
    with pytest.raises(UsageError, match=r"other settings \(samples: 400 -> 500\)"):
        cli.run(compose_experiment("cost_locality", [*TINY, "samples=500"]), tmp_path)
