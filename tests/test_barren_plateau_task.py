"""The barren-plateau experiment: outputs, resume, interruption, bad input."""

import csv
import logging

import pytest
import torch

from qtrain import cli
from qtrain.errors import UsageError  # cli.run turns what plan refuses (a MemoryError too) into this
from qtrain._tasks import barren_plateau
from tests.test_cli import compose_experiment, rows_of

TINY = ["qubits=[2,4]", "layers=[1,3,8]", "samples=20", "seed=3"]


def test_outputs(tmp_path):
    result = cli.run(compose_experiment("barren_plateau", TINY), tmp_path)
    rows = rows_of(tmp_path / "results.csv")
    assert list(rows[0]) == barren_plateau.COLUMNS
    assert [(int(r["n_qubits"]), int(r["n_layers"])) for r in rows] == [(n, L) for n in (2, 4) for L in (1, 3, 8)]
    assert all(float(r["grad_var_ci_low"]) <= float(r["grad_var"]) <= float(r["grad_var_ci_high"]) for r in rows)
    assert float(rows[0]["var_2design"]) == pytest.approx(4 / 45)
    for name in ("variance_vs_qubits.png", "variance_vs_layers.png", "fit.csv", "timings.csv"):
        assert (tmp_path / name).stat().st_size > 0
    assert any(p.name.startswith("events.out.tfevents") for p in tmp_path.iterdir())
    assert result["fit"]["n_layers"] == 8 and result["fit"]["slope"] < 0


def test_tensorboard_holds_scalars_histograms_images_and_hparams(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cli.run(compose_experiment("barren_plateau", TINY), tmp_path)
    tags = {"scalars": set(), "histograms": set(), "images": set(), "hparams": set()}
    for events in tmp_path.glob("events.out.tfevents*"):
        acc = EventAccumulator(str(events), size_guidance={"images": 0, "scalars": 0, "histograms": 0})
        acc.Reload()
        for kind in ("scalars", "histograms", "images"):
            tags[kind] |= set(acc.Tags().get(kind, []))
        try:
            tags["hparams"] |= set(acc.PluginTagToContent("hparams"))
        except KeyError:  # this event file holds no hparams summary
            pass
    assert {"grad_var/n=02", "grad_var/n=04", "hp/slope"} <= tags["scalars"]
    assert "gradients/n=04" in tags["histograms"]
    assert {"variance_vs_qubits", "variance_vs_layers"} <= tags["images"]
    assert "_hparams_/session_start_info" in tags["hparams"]


def test_same_seed_same_numbers(tmp_path):
    a = cli.run(compose_experiment("barren_plateau", TINY), tmp_path / "a")["rows"]
    b = cli.run(compose_experiment("barren_plateau", TINY), tmp_path / "b")["rows"]
    assert a == b


def test_resume_skips_finished_points(tmp_path, monkeypatch):
    cfg = compose_experiment("barren_plateau", TINY)
    cli.run(cfg, tmp_path)
    full = rows_of(tmp_path / "results.csv")
    kept = [r for r in full if not (r["n_qubits"] == "4" and r["n_layers"] == "8")]
    with open(tmp_path / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=barren_plateau.COLUMNS)
        writer.writeheader()
        writer.writerows(kept)
    calls = []
    original = barren_plateau.mcclean_gradients
    monkeypatch.setattr(barren_plateau, "mcclean_gradients", lambda n, layers, *a, **k: calls.append((n, list(layers))) or original(n, layers, *a, **k))
    cli.run(cfg, tmp_path)
    assert calls == [(4, [8])]  # only the missing point is computed
    assert rows_of(tmp_path / "results.csv") == full


def test_resume_refuses_other_settings(tmp_path):
    cli.run(compose_experiment("barren_plateau", TINY), tmp_path)
    with pytest.raises(ValueError, match=r"other settings \(samples: 20 -> 30\)"):
        cli.run(compose_experiment("barren_plateau", [*TINY, "samples=30"]), tmp_path)


def test_interrupt_keeps_finished_points_and_resumes(tmp_path, monkeypatch, caplog):
    cfg = compose_experiment("barren_plateau", TINY)
    original = barren_plateau.mcclean_gradients

    def interrupted(n, layers, *args, **kwargs):
        for i, point in enumerate(original(n, layers, *args, **kwargs)):
            if n == 4 and i == 1:
                raise KeyboardInterrupt
            yield point

    monkeypatch.setattr(barren_plateau, "mcclean_gradients", interrupted)
    with pytest.raises(KeyboardInterrupt), caplog.at_level(logging.WARNING, logger="qtrain"):
        cli.run(cfg, tmp_path)
    partial = rows_of(tmp_path / "results.csv")
    assert [(r["n_qubits"], r["n_layers"]) for r in partial] == [("2", "1"), ("2", "3"), ("2", "8"), ("4", "1")]
    said = [(r.name, r.getMessage()) for r in caplog.records if r.getMessage().startswith("interrupted")]
    assert said == [("qtrain._tasks.barren_plateau", f"interrupted: 4 points are in {tmp_path / 'results.csv'}; rerun the same command to resume")]
    monkeypatch.setattr(barren_plateau, "mcclean_gradients", original)
    cli.run(cfg, tmp_path)
    reference = tmp_path / "fresh"
    cli.run(cfg, reference)
    assert rows_of(tmp_path / "results.csv") == rows_of(reference / "results.csv")


@pytest.mark.parametrize(
    "override,error,message",
    [
        ("qubits=[1,2]", ValueError, "qubits: every entry must be >= 2, got 1"),
        ("layers=[0]", ValueError, "layers: every entry must be >= 1, got 0"),
        ("layers=ten", ValueError, "layers: cannot read 'ten'"),
        ("samples=1", ValueError, "samples: must be an integer >= 2, got 1"),
        ("device=tpu", ValueError, "device: unknown device 'tpu'"),
        ("dtype=float32", ValueError, "dtype: must be one of .* got 'float32'"),
        ("cost=Z7", ValueError, "cost: cost 'Z7' acts on qubit 7"),
        ("memory_budget=lots", ValueError, "memory_budget: cannot read memory size 'lots'"),
        ("chunk_size=0", ValueError, "chunk_size: must be an integer >= 1, got 0"),
        ("qubits=[40]", UsageError, r"qubits: qubits=40 needs 96.0 TiB for a single sample"),
    ],
)
def test_bad_input_is_refused_before_work(tmp_path, override, error, message):
    with pytest.raises(error, match=message):
        cli.run(compose_experiment("barren_plateau", [*TINY, override]), tmp_path)
    assert not (tmp_path / "results.csv").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_cuda_without_cuda_is_refused(tmp_path):
    with pytest.raises(ValueError, match="device: 'cuda' requested, but CUDA is not available"):
        cli.run(compose_experiment("barren_plateau", [*TINY, "device=cuda"]), tmp_path)


def test_memory_budget_splits_samples_into_chunks(tmp_path):
    # 4 qubits, complex64: one state is 128 B, a sample 12 states = 1.5 KiB; 7.5 KiB -> chunks of 5
    plan = barren_plateau.plan(compose_experiment("barren_plateau", ["qubits=[4]", "layers=[2]", "samples=20", "memory_budget=7.5KiB"]))
    assert plan["chunks"] == {4: 5}


def test_shots_to_resolve_column_and_figure(tmp_path):
    import math

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cli.run(compose_experiment("barren_plateau", TINY), tmp_path)
    rows = rows_of(tmp_path / "results.csv")
    for r in rows:  # global cost Z0 Z1: eigenvalues +-1, so N = ceil(1 / (2 Var))
        assert int(r["shots_to_resolve"]) == math.ceil(1 / (2 * float(r["grad_var"])))
    deep = [int(r["shots_to_resolve"]) for r in rows if r["n_layers"] == "8"]
    assert deep[1] > deep[0]  # more qubits, smaller variance, more shots
    assert (tmp_path / "shots_to_resolve.png").stat().st_size > 0
    images = set()
    for events in tmp_path.glob("events.out.tfevents*"):
        acc = EventAccumulator(str(events), size_guidance={"images": 0})
        acc.Reload()
        images |= set(acc.Tags().get("images", []))
    assert "shots_to_resolve" in images


def test_resume_fills_the_shots_column_of_an_older_run(tmp_path, monkeypatch):
    cfg = compose_experiment("barren_plateau", TINY)
    cli.run(cfg, tmp_path)
    full = rows_of(tmp_path / "results.csv")
    older = [c for c in barren_plateau.COLUMNS if c != "shots_to_resolve"]
    with open(tmp_path / "results.csv", "w", newline="") as f:  # as a run from before the column left it
        writer = csv.DictWriter(f, fieldnames=older)
        writer.writeheader()
        writer.writerows({c: r[c] for c in older} for r in full)
    calls = []
    monkeypatch.setattr(barren_plateau, "mcclean_gradients", lambda *a, **k: calls.append(a) or iter(()))
    cli.run(cfg, tmp_path)
    assert calls == []  # nothing recomputed
    assert rows_of(tmp_path / "results.csv") == full


def test_shot_bound_and_shots_to_resolve():
    from qtrain.engine.observables import PauliSum

    assert barren_plateau.shot_bound(PauliSum.parse("Z0 Z1")) == 1
    assert barren_plateau.shot_bound(barren_plateau.resolve_cost("local", 4)) == pytest.approx(1)  # one group, |c| sum 1
    assert barren_plateau.shot_bound(PauliSum.parse("Z0 + Z1 + 0.5*X0")) == pytest.approx(4.25)  # groups {Z0, Z1}, {X0}
    assert barren_plateau.shots_to_resolve(0.01) == 50
    assert barren_plateau.shots_to_resolve(0.0) == float("inf")


def test_shots_to_resolve_bounds_the_shot_noise_of_a_gradient():
    """At N = shots_to_resolve(Var) shots per evaluation, no gradient's estimated
    shot variance exceeds Var (up to N / (N - 1), the unbiased variance's factor)."""
    from qtrain import Circuit
    from qtrain.engine.observables import PauliSum

    cost = "Z0 + Z1 + 0.5*X0"
    circuit = Circuit(2).ry(0, "a").ry(1, "b").cnot(0, 1).rx(0, "c").ry(1, "d")
    theta = torch.rand(400, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 6.3
    var = 0.05
    shots = int(barren_plateau.shots_to_resolve(var, barren_plateau.shot_bound(PauliSum.parse(cost))))
    _, _, (_, stderr) = circuit.value_and_grad(theta, cost, shots=shots, seed=1, return_stderr=True)
    worst = stderr.square().max().item()
    assert worst <= var * shots / (shots - 1)
    assert worst > 0.5 * var  # and the bound is not loose by much for some angles


def test_local_cost_is_the_mean_over_each_ns_own_qubits(tmp_path):
    """cost=local at n = 4 is (Z0 + Z1 + Z2 + Z3) / 4 even when a smaller n runs in the same command (it was once
    resolved at the smallest n only, so n = 4 measured (Z0 + Z1) / 2)."""
    mixed = cli.run(compose_experiment("barren_plateau", ["qubits=[2,4]", "layers=[2,5]", "samples=12", "seed=1", "cost=local"]), tmp_path / "a")["rows"]
    explicit = cli.run(compose_experiment("barren_plateau", ["qubits=[4]", "layers=[2,5]", "samples=12", "seed=1",
                                                             "cost='0.25*Z0 + 0.25*Z1 + 0.25*Z2 + 0.25*Z3'"]), tmp_path / "b")["rows"]
    two_only = cli.run(compose_experiment("barren_plateau", ["qubits=[4]", "layers=[2,5]", "samples=12", "seed=1", "cost='0.5*Z0 + 0.5*Z1'"]), tmp_path / "c")["rows"]
    at_four = [r for r in mixed if r["n_qubits"] == 4]
    assert [r["grad_var"] for r in at_four] == pytest.approx([r["grad_var"] for r in explicit], rel=1e-6)
    assert [r["grad_var"] for r in at_four] != pytest.approx([r["grad_var"] for r in two_only], rel=1e-3)
