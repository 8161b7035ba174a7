"""experiments/benchmarks/noise.py at its smallest sizes: qtrain and one installed peer per regime pass the checks."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_noise_density_regime_checks_qtrain_and_an_installed_peer(tmp_path):
    from experiments.benchmarks import noise

    peers = [lib.name for lib in noise.density_libraries() if lib.name in ("pennylane-mixed-bcast", "qulacs-density") and lib.available()]
    if not peers:
        pytest.skip("neither PennyLane default.mixed nor qulacs is installed")
    names = ["qtrain", peers[0]]
    noise.main(["--regimes", "density", "--qubits", "3", "--layers", "1", "--batch", "3", "--repeats", "1",
                "--csv", str(tmp_path / "noise.csv"), "--libraries", *names])
    rows = _rows(tmp_path / "noise_density.csv")
    assert [r["library"] for r in rows] == ["reference", *names]
    for r in rows[1:]:
        assert r["status"] == "ok", r
        assert float(r["max_error"]) <= 1e-4 and float(r["median_ms"]) > 0
    assert float(rows[1]["x_qtrain"]) == 1.0


def test_noise_trajectories_regime_checks_qtrain_and_qulacs_statistically(tmp_path):
    from experiments.benchmarks import noise

    peer = next(lib for lib in noise.trajectory_libraries() if lib.name == "qulacs-noisesim")
    if not peer.available():
        pytest.skip("qulacs is not installed")
    names = ["qtrain", peer.name]
    noise.main(["--regimes", "trajectories", "--trajectory-qubits", "3", "--layers", "1", "--trajectories", "200",
                "--depolarizing", "0.05", "--repeats", "1", "--csv", str(tmp_path / "noise.csv"), "--libraries", *names])
    rows = _rows(tmp_path / "noise_trajectories.csv")
    assert [r["library"] for r in rows] == ["reference", *names]
    for r in rows[1:]:
        assert r["status"] == "ok", r
        assert 0 <= float(r["max_error"]) <= noise.Z_MAX


def test_trajectory_check_refuses_an_estimate_far_outside_its_standard_error():
    from experiments.benchmarks import noise

    reference = {"value": np.array([0.3]), "stderr": np.zeros(1), "trajectory_sd": np.array([0.5])}
    sd = 0.5 / math.sqrt(1000)
    assert noise.trajectory_compare({"value": np.array([0.3 + 2 * sd])}, reference, 1000)[1] is None
    assert "standard errors" in noise.trajectory_compare({"value": np.array([0.3 + 6 * sd])}, reference, 1000)[1]
    assert noise.trajectory_compare({"value": np.array([math.nan])}, reference, 1000)[1] is not None
