"""The regime benchmarks (experiments/benchmarks/hea.py, hybrid.py,
many_starts.py, levers.py) and their harness, at the tiniest sizes: each script's main
checks, times and writes its CSV with the libraries that need no peer
installed; every installed peer passes the check (none is needed); and the
check stops a library whose gradient is off from being timed."""

from __future__ import annotations

import pytest
import torch

from experiments.benchmarks import harness, hea, hybrid, levers, many_starts
from qtrain._tables import read_rows

# (module, arguments for the tiniest size, size columns, libraries that need no peer)
SCRIPTS = [
    pytest.param(hea, ["--points", "2x1"], {"n": "2", "L": "1"}, ["qtrain", "qtrain-c128"], id="hea"),
    pytest.param(hybrid, ["--qubits", "2", "--batches", "3"], {"n": "2", "B": "3"}, ["qtrain", "qtrain-adjoint", "torch-einsum"], id="hybrid"),
    pytest.param(many_starts, ["--starts", "5"], {"S": "5"}, ["qtrain", "qtrain-backprop", "plain-loop"], id="many_starts"),
]
TINY = {hea: {"n": 2, "L": 1}, hybrid: {"n": 2, "B": 3}, many_starts: {"S": 5}}


@pytest.mark.parametrize("module, argv, size, names", SCRIPTS)
def test_main_checks_times_and_writes_one_row_per_library(tmp_path, capsys, module, argv, size, names):
    csv = tmp_path / "table.csv"
    module.main([*argv, "--repeats", "2", "--csv", str(csv), "--libraries", *names])
    rows = read_rows(csv)
    assert [r["library"] for r in rows] == ["reference", *names]
    assert all({k: r[k] for k in size} == size for r in rows)
    for r in rows[1:]:
        assert r["status"] == "ok", r
        assert float(r["max_error"]) < harness.TOLERANCE
        assert float(r["median_ms"]) > 0 and r["repeats"] == "2" and r["mode"]
    # "x qtrain": each library's median time over qtrain's at this size (the reference's too, when timed)
    base = float(next(r for r in rows if r["library"] == "qtrain")["median_ms"])
    timed = [r for r in rows if r.get("median_ms")]
    assert len(timed) >= len(names)
    assert all(float(r["x_qtrain"]) == pytest.approx(float(r["median_ms"]) / base, rel=1e-9) for r in timed), timed
    out = capsys.readouterr().out
    assert "| library | median ms | x qtrain |" in out and f"table written to {csv}" in out


@pytest.mark.parametrize("module, argv", [pytest.param(hea, ["--points", "2x1"], id="hea"), pytest.param(hybrid, ["--qubits", "2", "--batches", "3"], id="hybrid")])
def test_every_installed_peer_agrees_with_the_reference(tmp_path, module, argv):
    """Peers not installed (as in CI) are skipped with a note; those installed must pass the check."""
    csv = tmp_path / "table.csv"
    module.main([*argv, "--repeats", "1", "--csv", str(csv)])
    rows = read_rows(csv)
    assert {"reference", "qtrain"} <= {r["library"] for r in rows}
    assert all(r["status"] == "ok" for r in rows[1:]), [(r["library"], r["status"]) for r in rows]


@pytest.mark.parametrize("module", [hea, hybrid, many_starts], ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_a_perturbed_gradient_is_reported_and_not_timed(module):
    workload = module.make_workload(TINY[module])
    reference = module.REFERENCE.setup(workload)()
    qtrain = next(lib for lib in module.libraries() if lib.name == "qtrain")
    result = dict(qtrain.setup(workload)())
    assert harness.compare(result, reference)[1] is None
    key = next(k for k in result if k.startswith("grad"))
    result[key] = harness.as_array(result[key]).copy()
    result[key].flat[0] += 1e-3
    error, problem = harness.compare(result, reference)
    assert problem is not None and key in problem and error > harness.TOLERANCE

    def wrong(w):
        call = qtrain.setup(w)
        return lambda: {**call(), key: result[key]}

    rows = harness.run_size(TINY[module], workload, module.REFERENCE, [harness.Library("wrong", "perturbed", wrong)], repeats=2, budget=60.0, work=module.work)
    assert rows[1]["status"].startswith("wrong results") and "median_ms" not in rows[1]


def test_compare_reports_missing_quantities_shapes_and_nan():
    ref = {"value": 1.0, "grad": [0.5, 2.0]}
    assert harness.compare({"value": torch.tensor(1.0), "grad": torch.tensor([0.5, 2.0 + 1e-4])}, ref)[1] is None  # scaled by max |grad| = 2
    assert "grad: missing" in harness.compare({"value": 1.0}, ref)[1]
    assert "shape" in harness.compare({"value": 1.0, "grad": [0.5]}, ref)[1]
    assert harness.compare({"value": float("nan"), "grad": [0.5, 2.0]}, ref)[1] is not None


def test_too_big_scales_the_largest_smaller_size_and_skips_everything_without_a_reference():
    earlier = [{"n": 4, "B": 8, "check_seconds": 5.0, "median_ms": 100.0, "peak_mib": 1.0}]
    work = hybrid.work
    assert harness.too_big(earlier, {"n": 4, "B": 8}, 30.0, work) is None
    assert harness.too_big(earlier, {"n": 2, "B": 8}, 30.0, work) is None  # nothing measured at or below n = 2
    reason = harness.too_big(earlier, {"n": 8, "B": 64}, 30.0, work)  # 0.1 s x 16 x 2 x 8 = 25.6 s: runs
    assert reason is None
    reason = harness.too_big(earlier, {"n": 8, "B": 128}, 30.0, work)  # 51 s
    assert reason is not None and "--budget 30" in reason
    skipped = harness.Library("reference", "r", lambda w: pytest.fail("the reference must not run"))
    rows = harness.run_size({"n": 8, "B": 128}, None, skipped, [harness.Library("x", "x", lambda w: pytest.fail("must not run"))],
                            repeats=1, budget=30.0, work=work, history={"reference": earlier})
    assert [r["library"] for r in rows] == ["reference", "x"] and all(r["status"].startswith("not run") for r in rows)


def test_time_interleaved_rotates_the_start_and_warms_up_short_calls():
    order: list[str] = []
    times = harness.time_interleaved([(lambda: order.append("a"), True), (lambda: order.append("b"), False)], repeats=2)
    assert [len(t) for t in times] == [2, 2]
    assert order == ["a", "a", "b", "b", "a", "a"]  # round 1 starts at b; a gets a warm-up before each timed call


def test_each_lever_switched_off_changes_the_plan_and_keeps_the_results(tmp_path):
    """levers.py patches engine internals by name: a refactor that renames one
    must fail here, not leave a variant silently timing the shipped plan."""
    run_module = levers.run_module
    plans = {}
    for name, variant in levers.VARIANTS.items():
        with variant():
            program = hea.hea_circuit(4, 2).program()
            plans[name] = (len(program.plan), run_module.run_widths(program, 7000, torch.complex64, True), run_module.run_widths(program, 1, torch.complex64, False))
    assert len(set(plans.values())) == len(plans), plans  # every variant plans differently
    csv = tmp_path / "levers.csv"
    rows = levers.main(["--workloads", "hea-3x1", "hybrid-2x3", "starts-5", "--repeats", "1", "--csv", str(csv)])
    assert [(r["workload"], r["variant"]) for r in read_rows(csv)] == [(w, v) for w in ("hea-3x1", "hybrid-2x3", "starts-5") for v in levers.VARIANTS]
    assert all(r["median_ms"] > 0 for r in rows)


def test_shots_main_checks_statistically_times_and_writes_its_ratios(tmp_path, capsys):
    """experiments/benchmarks/shots.py at its tiniest: every library named passes the statistical
    check, and "x qtrain" is each row's own median over qtrain's."""
    from experiments.benchmarks import shots

    names = ["qtrain"] + [lib.name for lib in shots.libraries() if lib.name == "pennylane-default-bcast" and lib.available()]
    csv = tmp_path / "shots.csv"
    shots.main(["--qubits", "2", "--layers", "1", "--batch", "3", "--shots", "50", "--repeats", "2", "--csv", str(csv), "--libraries", *names])
    rows = read_rows(csv)
    assert [r["library"] for r in rows] == ["reference", *names]
    assert all({k: r[k] for k in ("n", "L", "B", "shots")} == {"n": "2", "L": "1", "B": "3", "shots": "50"} for r in rows)
    base = float(rows[1]["median_ms"])
    for r in rows[1:]:
        assert r["status"] == "ok", r
        assert 0 <= float(r["max_error"]) <= shots.Z_MAX and r["repeats"] == "2"
        assert float(r["x_qtrain"]) == pytest.approx(float(r["median_ms"]) / base, rel=1e-9)
    assert f"table written to {csv}" in capsys.readouterr().out


def test_shots_check_accepts_shot_noise_and_refuses_outliers_and_bias():
    from experiments.benchmarks import shots

    size = {"n": 3, "L": 1, "B": 64, "shots": 400}
    workload = shots.make_workload(size)
    exact = shots.REFERENCE.setup(workload)()
    qtrain = next(lib for lib in shots.libraries() if lib.name == "qtrain")
    result = {k: harness.as_array(v) for k, v in qtrain.setup(workload)().items()}
    error, problem = shots.shot_compare(result, exact, size["shots"])
    assert problem is None and 0 < error <= shots.Z_MAX  # noisy (z > 0), within the bound
    assert harness.compare(result, exact)[1] is not None  # what the fixed tolerance would have said
    sd = shots.shot_sd(exact, size["shots"])
    outlier = {**result, "grad": result["grad"].copy()}
    outlier["grad"][0, 0] = harness.as_array(exact["grad"])[0, 0] + 7 * sd["grad"][0, 0]
    assert "grad: max |error|" in shots.shot_compare(outlier, exact, size["shots"])[1]
    # a bias of 2 sd on every value stays under 6 sd per entry, but not in the mean square (4 > 1 + 6 sqrt(2 / 64))
    biased = {**result, "value": harness.as_array(exact["value"]) + 2 * sd["value"] + harness.TOLERANCE}
    assert "value: mean squared z" in shots.shot_compare(biased, exact, size["shots"])[1]
    assert shots.shot_compare({**result, "value": result["value"] * float("nan")}, exact, size["shots"])[1] is not None
