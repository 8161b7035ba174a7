"""The noisy-plateau experiment (Wang et al. 2021): outputs, resume, the gradients against an independent
density-matrix reference, the slope bound, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qtrain import cli
from qtrain._noisy_plateau import hea_layer, noisy_gradients, wang_slope_bound
from qtrain._tasks import noisy_plateau
from qtrain.errors import UsageError
from qtrain.noise import NoiseModel
from tests import noise_reference as ref
from tests.test_cli import compose_experiment, rows_of

TINY = ["qubits=[2,3]", "layers=1:6", "samples=8", "depolarizing=[0,0.1]", "seed=2"]


def test_outputs_and_resume(tmp_path, monkeypatch):
    result = cli.run(compose_experiment("noisy_plateau", TINY), tmp_path)
    rows = rows_of(tmp_path / "results.csv")
    assert {"qubits", "layers", "depolarizing", "variance"} <= set(rows[0])
    got = sorted((int(r["qubits"]), int(r["layers"]), float(r["depolarizing"])) for r in rows)
    assert got == sorted((n, L, p) for n in (2, 3) for L in range(1, 7) for p in (0.0, 0.1))
    assert all(float(r["variance"]) > 0 and math.isfinite(float(r["variance"])) for r in rows)
    assert len(result["rows"]) == 24

    slopes = rows_of(tmp_path / "slopes.csv")
    assert {"fitted_slope", "bound_slope"} <= set(slopes[0])
    assert sorted((int(s["qubits"]), float(s["depolarizing"])) for s in slopes) == [(2, 0.0), (2, 0.1), (3, 0.0), (3, 0.1)]
    for s in slopes:
        assert float(s["bound_slope"]) == pytest.approx(wang_slope_bound(float(s["depolarizing"]), int(s["qubits"])))
        assert math.isfinite(float(s["fitted_slope"]))
    assert (tmp_path / "variance_vs_layers_noisy.png").stat().st_size > 0

    # a rerun in the same directory resumes: nothing is computed again, the rows stay
    calls = []
    original = noisy_plateau.noisy_gradients
    monkeypatch.setattr(noisy_plateau, "noisy_gradients", lambda *a, **k: calls.append(a[:2]) or original(*a, **k))
    again = cli.run(compose_experiment("noisy_plateau", TINY), tmp_path)
    assert calls == []
    assert rows_of(tmp_path / "results.csv") == rows and again["rows"] == result["rows"]

    # another seed in the same directory is refused, naming it
    with pytest.raises(UsageError, match=r"other settings \(seed: 2 -> 3\)"):
        cli.run(compose_experiment("noisy_plateau", [*TINY, "seed=3"]), tmp_path)
    assert rows_of(tmp_path / "results.csv") == rows


def test_a_deleted_sweep_is_recomputed_alone(tmp_path, monkeypatch):
    small = ["qubits=[2,3]", "layers=1:3", "samples=4", "depolarizing=[0,0.1]", "seed=2"]
    cli.run(compose_experiment("noisy_plateau", small), tmp_path)
    full = rows_of(tmp_path / "results.csv")
    kept = [r for r in full if not (r["qubits"] == "3" and float(r["depolarizing"]) == 0.1)]
    import csv

    with open(tmp_path / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=noisy_plateau.COLUMNS)
        writer.writeheader()
        writer.writerows(kept)
    calls = []
    original = noisy_plateau.noisy_gradients
    monkeypatch.setattr(noisy_plateau, "noisy_gradients", lambda n, layers, *a, **k: calls.append((n, a[2].describe())) or original(n, layers, *a, **k))
    cli.run(compose_experiment("noisy_plateau", small), tmp_path)
    assert calls == [(3, "depolarizing=0.1")]
    assert rows_of(tmp_path / "results.csv") == full


# ---- physics against the reference --------------------------------------------------------------


def _reference_gradient(n: int, angles: np.ndarray, noise: dict, readout: float, step: float = 1e-5) -> float:
    """d<Z0 Z1>/d(layer-0 RY on qubit 0) by central differences of the reference; angles (L, 2n): y0, z0, y1, z1, ..."""

    def cost(shift: float) -> float:
        gates = []
        for depth, row in enumerate(angles):
            for q in range(n):
                y = row[2 * q] + (shift if depth == 0 and q == 0 else 0.0)
                gates += [("ry", (q,), (y,)), ("rz", (q,), (row[2 * q + 1],))]
            gates += [("cz", (q, q + 1), ()) for q in range(n - 1)]
        return ref.expval(ref.density_matrix(gates, n, noise), "Z0 Z1", readout)

    return (cost(step) - cost(-step)) / (2 * step)


def test_the_layer_has_the_documented_parameter_order():
    assert hea_layer(3).parameters == ("y0", "z0", "y1", "z1", "y2", "z2")


@pytest.mark.parametrize(
    "model, noise, readout",
    [
        (NoiseModel(), {}, 0.0),
        (NoiseModel(depolarizing=0.1), {"depolarizing": 0.1}, 0.0),
        (NoiseModel(depolarizing=0.05, amplitude_damping={"cz": 0.1}, phase_damping={1: 0.2}, readout=0.03),
         {"depolarizing": 0.05, "amplitude_damping": {"cz": 0.1}, "phase_damping": {1: 0.2}}, 0.03),
    ],
    ids=["noiseless", "depolarizing", "mixed"],
)
def test_noisy_gradients_match_the_reference(model, noise, readout):
    n, samples, seed = 2, 3, 11
    got = dict(noisy_gradients(n, [1, 2, 3], samples, seed, model, chunk_size=2))
    assert sorted(got) == [1, 2, 3]
    generator = torch.Generator().manual_seed(seed)
    angles = (torch.rand(3, samples, 2 * n, generator=generator, dtype=torch.float64) * (2 * math.pi)).numpy()
    for L in (1, 2, 3):
        want = [_reference_gradient(n, angles[:L, s], noise, readout) for s in range(samples)]
        assert got[L].shape == (samples,)
        np.testing.assert_allclose(got[L].numpy(), want, atol=1e-6, rtol=0)
    assert any(abs(v) > 1e-3 for L in got for v in got[L].tolist())  # not trivially zero


def test_noisy_gradients_do_not_depend_on_the_chunks_or_requested_depths():
    model = NoiseModel(depolarizing=0.05)
    whole = dict(noisy_gradients(3, [2, 4], 5, 1, model))
    chunked = dict(noisy_gradients(3, [1, 2, 3, 4], 5, 1, model, chunk_size=2))
    for L in (2, 4):
        assert torch.allclose(whole[L], chunked[L], atol=1e-13)


def test_wang_slope_bound():
    for n in (2, 3, 6):
        assert wang_slope_bound(0, n) == 0
        for p in (0.001, 0.01, 0.1, 0.5):
            assert wang_slope_bound(p, n) == pytest.approx(2 * 3 * math.log(1 - 4 * p / 3), rel=1e-12)
    assert wang_slope_bound(0.75, 4) == -math.inf


# ---- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, message",
    [
        ("depolarizing=[1.5]", r"depolarizing: every rate must be in \[0, 1\], got 1.5"),
        ("circuit=unknown", "circuit: unknown circuit 'unknown'"),
        ("qubits=[1]", "qubits: every entry must be >= 2, got 1"),
        ("samples=1", "samples: must be an integer >= 2, got 1"),
    ],
)
def test_bad_config_is_refused_before_any_work(override, message, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(UsageError, match=message):
        cli.run(compose_experiment("noisy_plateau", [*TINY, override]), out)
    assert not out.exists()


def test_a_bad_rate_names_the_experiments_own_key(tmp_path):
    with pytest.raises(UsageError, match=r"^depolarizing: "):
        cli.run(compose_experiment("noisy_plateau", [*TINY, "depolarizing=[0,1.5]"]), tmp_path / "run")


def test_noise_block_is_refused_for_the_noisy_plateau(tmp_path):
    """The experiment takes its own depolarizing list; a config-wide noise block would be silently ignored."""
    with pytest.raises(UsageError, match="noise"):
        cli.run(compose_experiment("noisy_plateau", [*TINY, "noise.depolarizing=0.01"]), tmp_path / "run")
