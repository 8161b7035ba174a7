"""Noise: a depolarized hardware-efficient ansatz, exact (density matrix) and by Monte-Carlo trajectories.

    python -m experiments.benchmarks.noise                          # density n = 6 8 10 (B = 64), trajectories n = 12 16
    python -m experiments.benchmarks.noise --regimes density --qubits 6 8 --batch 16
    python -m experiments.benchmarks.noise --regimes trajectories --trajectory-qubits 12 --libraries qtrain qulacs-noisesim

Workload: the hardware-efficient ansatz of hea.py (RY, RZ on every qubit, a
CNOT chain; L layers, 2 by default, P = 2 n L parameters, uniform in
[-pi, pi) with a fixed seed) with a depolarizing channel of rate p (0.01 by
default), rho -> (1-p) rho + p/3 (X rho X + Y rho Y + Z rho Z), after every
gate on each of its qubits (a CNOT is followed by one channel on its control
and one on its target). Observable Z0 Z{n-1}: the CNOT chain puts every gate in
its backward light cone, so light-cone pruning cannot shrink qtrain's work.

Regime "density": exact values <Z0 Z{n-1}> and gradients (B, P) of a batch of
B parameter rows (64 by default), n = 6, 8, 10, complex128 everywhere:
  * qtrain `Circuit.value_and_grad(theta, obs, noise=NoiseModel(depolarizing=p))`,
    float64 theta (complex128): the density matrix, autograd through it, checkpointed;
  * "pennylane-mixed-bcast": PennyLane default.mixed, one broadcast tape (the B
    rows as a broadcast batch, torch tensors as parameters), qml.execute with
    diff_method="backprop" (torch interface), one torch.autograd.grad of the
    values' sum (a row's value depends only on its own parameters);
  * "pennylane-mixed-loop": the same, one tape per row, the B tapes in one
    qml.execute call and one backward pass (smaller autograd graphs: the
    broadcast tape keeps B density matrices per operation);
  * "qulacs-density": qulacs DensityMatrix with DepolarizingNoise gates after
    every gate, the gradient by the two-term parameter-shift rule: 1 + 2 P
    qulacs density-matrix runs per row (qulacs has no density-matrix gradient).
Checked against the reference (qtrain complex128 `expval(noise=...)`
differentiated by torch.autograd.grad, REFERENCE_CHUNK rows at a time; another
entry point than value_and_grad) with harness.compare (harness.TOLERANCE, 1e-4): all methods
are exact.

Regime "trajectories": the value only, from T Monte-Carlo trajectories
(1000 by default) for one parameter row (B = 1), n = 12, 16, complex128:
  * qtrain `Circuit.expval(theta, obs, noise=..., trajectories=T, seed=0)`: the
    T trajectories as one batch of pure states, each channel drawing a Pauli;
  * "qulacs-loop": T runs of a qulacs QuantumState through the circuit with
    DepolarizingNoise gates (on a state vector each draws one Pauli, qulacs'
    own generator), the mean of the T values <Z0 Z{n-1}>;
  * "qulacs-noisesim": qulacs NoiseSimulator.execute_and_get_result(T), which
    draws the T trajectories' noise first and simulates each distinct one once.
Checked statistically: every library's estimate m_T must lie within Z_MAX
standard errors of the reference, sqrt(s_ref^2 + sd^2 / T), where sd is the
standard deviation of one trajectory's value, estimated from an independent
run of T trajectories (qulacs NoiseSimulator where qulacs is installed, else
qtrain with another seed), and the reference is the exact density value
(s_ref = 0) up to n = DENSITY_REFERENCE_MAX_QUBITS, above it that independent
run's mean (s_ref = sd / sqrt(T)). The "max error" column is |z|.

Timing, skipping (--budget, from smaller sizes) and the CSVs
(logs/benchmarks/noise_density.csv, noise_trajectories.csv: --csv's stem plus
the regime) are the harness's (experiments/benchmarks/harness.py).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from experiments.benchmarks import harness
from experiments.benchmarks.harness import Library, Results
from experiments.benchmarks.hea import hea_circuit, hea_gates
from qtrain.noise import NoiseModel

SEED = 0
#: The independent trajectory run of the trajectories reference uses this seed (qtrain's timed run uses SEED).
REFERENCE_SEED = 1
#: A trajectory estimate passes within this many standard errors of the reference (normal
#: approximation: a false alarm with probability 6e-7 per check).
Z_MAX = 5.0
#: Up to this many qubits the trajectories reference is the exact density value (4**n complex128
#: entries: 1 GiB per density matrix at n = 13); above it, an independent trajectory estimate.
DENSITY_REFERENCE_MAX_QUBITS = 13
REGIMES = ("density", "trajectories")
#: Rows per expval + autograd call of the density reference.
REFERENCE_CHUNK = 8


def observable(n: int) -> str:
    """Z0 Z{n-1}: its light cone is the whole circuit."""
    return f"Z0 Z{n - 1}"


def make_workload(size: Mapping[str, int], p: float) -> dict[str, Any]:
    n, layers, batch = size["n"], size["L"], size["B"]
    gen = torch.Generator().manual_seed(SEED)
    theta = (2 * torch.rand(batch, 2 * n * layers, generator=gen, dtype=torch.float64) - 1) * math.pi
    return {"n": n, "L": layers, "B": batch, "T": size.get("T"), "p": p, "theta": theta.numpy()}


def density_work(size: Mapping[str, int]) -> float:
    """Time and memory model for the budget rule: B rows x (2 P + 1) evaluations (qulacs' parameter
    shift; an overestimate of the growth for autograd), each ~5 n L gates and channels on 4^n entries."""
    n, layers = size["n"], size["L"]
    return size["B"] * (4 * n * layers + 1) * 5 * n * layers * 4.0**n


def trajectory_work(size: Mapping[str, int]) -> float:
    """T trajectories x ~5 n L gates and channels on 2^n amplitudes."""
    return size["T"] * 5 * size["n"] * size["L"] * 2.0 ** size["n"]


def _noise(w: dict[str, Any]) -> NoiseModel:
    return NoiseModel(depolarizing=w["p"])


# ---- regime "density" -----------------------------------------------------------------------------


def _qtrain_density_setup(w: dict[str, Any]) -> Any:
    circuit, obs, noise = hea_circuit(w["n"], w["L"]), observable(w["n"]), _noise(w)
    theta = torch.as_tensor(w["theta"], dtype=torch.float64, device=w.get("device", "cpu"))

    def call() -> Results:
        values, grads = circuit.value_and_grad(theta, obs, noise=noise)
        return {"value": values, "grad": grads}

    return call


def _density_reference_setup(w: dict[str, Any]) -> Any:
    circuit, obs, noise = hea_circuit(w["n"], w["L"]), observable(w["n"]), _noise(w)

    def call() -> Results:
        values, grads = [], []
        # REFERENCE_CHUNK rows at a time: expval keeps every row's density records for autograd
        # (12 GiB at n = 10, B = 64), where value_and_grad chunks to its memory budget itself
        for rows in torch.as_tensor(w["theta"], dtype=torch.float64).split(REFERENCE_CHUNK):
            rows = rows.clone().requires_grad_(True)
            chunk = circuit.expval(rows, obs, noise=noise, dtype=torch.complex128)
            (grad,) = torch.autograd.grad(chunk.sum(), rows)
            values.append(chunk.detach())
            grads.append(grad)
        return {"value": torch.cat(values), "grad": torch.cat(grads)}

    return call


def _pennylane_mixed_available() -> bool:
    try:
        import pennylane as qml

        qml.device("default.mixed", wires=1)
    except Exception:
        return False
    return True


def _pennylane_mixed_setup(broadcast: bool) -> Any:
    def setup(w: dict[str, Any]) -> Any:
        import pennylane as qml

        from experiments.benchmarks.peers.pennylane_peer import noisy_mixed_tape

        n, gates = w["n"], list(hea_gates(w["n"], w["L"]))
        device = qml.device("default.mixed", wires=n)
        theta = torch.as_tensor(w["theta"], dtype=torch.float64)  # (B, P)
        if broadcast:
            leaf = theta.T.clone().requires_grad_(True)  # (P, B): parameter k is the (B,) tensor leaf[k]
            tapes = [noisy_mixed_tape(n, gates, leaf, w["p"], (0, n - 1))]
        else:
            leaf = theta.clone().requires_grad_(True)  # (B, P): row i's tape takes leaf[i, k]
            tapes = [noisy_mixed_tape(n, gates, leaf[i], w["p"], (0, n - 1)) for i in range(theta.shape[0])]

        def call() -> Results:
            results = qml.execute(tapes, device, diff_method="backprop")
            values = results[0] if broadcast else torch.stack([torch.as_tensor(r) for r in results])
            (grads,) = torch.autograd.grad(values.sum(), leaf)
            return {"value": values.detach(), "grad": grads.T if broadcast else grads}

        return call

    return setup


def _qulacs_available() -> bool:
    try:
        import qulacs  # noqa: F401
    except Exception:
        return False
    return True


def _qulacs_density_setup(w: dict[str, Any]) -> Any:
    from experiments.benchmarks.peers.qulacs_peer import density_value_and_shift_grad, noisy_parametric_circuit, zz_observable

    n = w["n"]
    circuit = noisy_parametric_circuit(n, list(hea_gates(n, w["L"])), w["p"])
    obs = zz_observable(n, 0, n - 1)

    def call() -> Results:
        values, grads = density_value_and_shift_grad(circuit, obs, w["theta"], n)
        return {"value": values, "grad": grads}

    return call


def density_libraries() -> list[Library]:
    pl = (
        "PennyLane default.mixed, DepolarizingChannel after every gate on each of its qubits, torch tensors, "
        "qml.execute(diff_method='backprop') + one torch.autograd.grad of the values' sum; {how}; complex128"
    )
    return [
        Library("qtrain", "Circuit.value_and_grad(noise=NoiseModel(depolarizing=p)): density matrix, checkpointed autograd; complex128, float64 theta",
                _qtrain_density_setup),
        Library("pennylane-mixed-bcast", pl.format(how="one broadcast tape (batch B)"), _pennylane_mixed_setup(True), _pennylane_mixed_available),
        Library("pennylane-mixed-loop", pl.format(how="one tape per row, all B in one qml.execute"), _pennylane_mixed_setup(False), _pennylane_mixed_available),
        Library(
            "qulacs-density",
            "qulacs DensityMatrix + DepolarizingNoise gates, gradient by two-term parameter shift (1 + 2P density runs per row, "
            "Python loop over rows and shifts); complex128, C++ with OpenMP",
            _qulacs_density_setup,
            _qulacs_available,
        ),
    ]


DENSITY_REFERENCE = Library("reference", "qtrain complex128, expval(noise=...) (density matrix) + torch.autograd.grad", _density_reference_setup)


# ---- regime "trajectories" ------------------------------------------------------------------------


def _qtrain_trajectory_setup(w: dict[str, Any]) -> Any:
    circuit, obs, noise = hea_circuit(w["n"], w["L"]), observable(w["n"]), _noise(w)
    theta = torch.as_tensor(w["theta"], dtype=torch.float64, device=w.get("device", "cpu"))

    def call() -> Results:
        return {"value": circuit.expval(theta, obs, noise=noise, trajectories=w["T"], seed=SEED)}

    return call


def _qulacs_trajectory_setup(simulator: bool) -> Any:
    def setup(w: dict[str, Any]) -> Any:
        from experiments.benchmarks.peers.qulacs_peer import noise_simulator_values, noisy_parametric_circuit, set_angles, trajectory_values_loop, zz_observable

        n = w["n"]
        circuit = noisy_parametric_circuit(n, list(hea_gates(n, w["L"])), w["p"])
        set_angles(circuit, w["theta"][0])
        obs = zz_observable(n, 0, n - 1)
        per_trajectory = noise_simulator_values if simulator else trajectory_values_loop

        def call() -> Results:
            return {"value": np.asarray([per_trajectory(circuit, obs, n, w["T"]).mean()])}

        return call

    return setup


def _independent_trajectories(w: dict[str, Any]) -> tuple[np.ndarray, str]:
    """(T,) per-trajectory values from a run independent of the timed ones, and what ran them."""
    if _qulacs_available():
        from experiments.benchmarks.peers.qulacs_peer import noise_simulator_values, noisy_parametric_circuit, set_angles, zz_observable

        circuit = noisy_parametric_circuit(w["n"], list(hea_gates(w["n"], w["L"])), w["p"])
        set_angles(circuit, w["theta"][0])
        return noise_simulator_values(circuit, zz_observable(w["n"], 0, w["n"] - 1), w["n"], w["T"]), "qulacs NoiseSimulator"
    # qtrain: T rows of the same parameters, one trajectory each (row i keyed by (seed, i))
    circuit = hea_circuit(w["n"], w["L"])
    theta = torch.as_tensor(w["theta"], dtype=torch.float64).expand(w["T"], -1)
    values = circuit.expval(theta, observable(w["n"]), noise=_noise(w), trajectories=1, seed=REFERENCE_SEED)
    return values.numpy(), "qtrain, seed 1"


def _trajectory_reference_setup(w: dict[str, Any]) -> Any:
    def call() -> Results:
        samples, _ = _independent_trajectories(w)
        sd = float(samples.std(ddof=1))
        if w["n"] <= DENSITY_REFERENCE_MAX_QUBITS:
            exact = hea_circuit(w["n"], w["L"]).expval(torch.as_tensor(w["theta"], dtype=torch.float64), observable(w["n"]), noise=_noise(w))
            return {"value": exact.numpy(), "stderr": np.zeros(1), "trajectory_sd": np.full(1, sd)}
        return {"value": np.asarray([samples.mean()]), "stderr": np.full(1, sd / math.sqrt(len(samples))), "trajectory_sd": np.full(1, sd)}

    return call


def trajectory_compare(result: Results, reference: Results, trajectories: int) -> tuple[float, str | None]:
    """The check of the trajectories regime (module docstring): -> (|z|, None) when within Z_MAX
    standard errors, else (z, what failed)."""
    if "value" not in result:
        return math.inf, "value: missing"
    got, ref = harness.as_array(result["value"]), harness.as_array(reference["value"])
    if got.shape != ref.shape:
        return math.inf, f"value: shape {got.shape}, expected {ref.shape}"
    sd = np.sqrt(harness.as_array(reference["stderr"]) ** 2 + harness.as_array(reference["trajectory_sd"]) ** 2 / trajectories)
    z = np.maximum(np.abs(got - ref) - 1e-12, 0.0) / np.maximum(sd, 1e-300)
    worst = float(z.max()) if np.all(np.isfinite(got)) else math.inf
    if worst > Z_MAX:
        return worst, f"value: {worst:.1f} standard errors from the reference > {Z_MAX:g}"
    return worst, None


def trajectory_libraries() -> list[Library]:
    return [
        Library("qtrain", "Circuit.expval(noise=..., trajectories=T, seed=0): T pure states as one batch; complex128, float64 theta",
                _qtrain_trajectory_setup),
        Library("qulacs-loop", "qulacs QuantumState, T runs of the circuit with DepolarizingNoise gates (each draws a Pauli), Python loop; complex128",
                _qulacs_trajectory_setup(False), _qulacs_available),
        Library("qulacs-noisesim", "qulacs NoiseSimulator.execute_and_get_result(T): noise drawn first, each distinct trajectory simulated once; complex128",
                _qulacs_trajectory_setup(True), _qulacs_available),
    ]


TRAJECTORY_REFERENCE = Library(
    "reference",
    f"exact density value (qtrain complex128) up to n = {DENSITY_REFERENCE_MAX_QUBITS}, else an independent trajectory run's mean; "
    "per-trajectory sd from an independent run (qulacs NoiseSimulator where installed, else qtrain with seed 1)",
    _trajectory_reference_setup,
)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regimes", nargs="+", choices=REGIMES, default=list(REGIMES), help="which regimes to run")
    parser.add_argument("--qubits", type=int, nargs="+", default=[6, 8, 10], help="density regime: n, one size each")
    parser.add_argument("--batch", type=int, default=64, help="density regime: B, parameter rows per call")
    parser.add_argument("--trajectory-qubits", type=int, nargs="+", default=[12, 16], help="trajectories regime: n, one size each (B = 1)")
    parser.add_argument("--trajectories", type=int, default=1000, help="trajectories regime: T, trajectories per estimate")
    parser.add_argument("--layers", type=int, default=2, help="L, ansatz layers (P = 2 n L parameters)")
    parser.add_argument("--depolarizing", type=float, default=0.01, help="p, the depolarizing rate after every gate on each of its qubits")
    harness.add_arguments(parser, "logs/benchmarks/noise.csv", budget=300.0, device=True)
    args = parser.parse_args(argv)
    if any(n < 2 for n in args.qubits + args.trajectory_qubits) or args.layers < 1 or args.batch < 1 or args.trajectories < 2:
        raise SystemExit("need n >= 2 (Z0 Z(n-1)), L >= 1, B >= 1, T >= 2")
    if not 0 <= args.depolarizing <= 1:
        raise SystemExit(f"--depolarizing must be in [0, 1], got {args.depolarizing}")
    known = {lib.name for lib in density_libraries() + trajectory_libraries()}
    unknown = sorted(set(args.libraries or []) - known)
    if unknown:
        raise SystemExit(f"unknown libraries {unknown}; known: {sorted(known)}")
    csv = Path(args.csv)
    rows: list[dict] = []
    p = args.depolarizing
    # a regime none of whose libraries --libraries names is left out (its reference would run for nothing)
    if "density" in args.regimes:
        libs = density_libraries()
        names = None if args.libraries is None else [x for x in args.libraries if x in {lib.name for lib in libs}]
        sizes = [{"n": n, "L": args.layers, "B": args.batch} for n in sorted(args.qubits)]
        rows += [] if names == [] else harness.sweep(
            sizes, lambda size: make_workload(size, p), DENSITY_REFERENCE, harness.select(libs, names),
            device=args.device, repeats=args.repeats, budget=args.budget, work=density_work, csv=csv.with_name(f"{csv.stem}_density{csv.suffix}"),
            title=f"Noise, density: value and gradient of <Z0 Z(n-1)>, depolarizing p = {p:g} after every gate, exact",
        )
    if "trajectories" in args.regimes:
        libs = trajectory_libraries()
        names = None if args.libraries is None else [x for x in args.libraries if x in {lib.name for lib in libs}]
        sizes = [{"n": n, "L": args.layers, "B": 1, "T": args.trajectories} for n in sorted(args.trajectory_qubits)]
        # The reference costs a density run up to DENSITY_REFERENCE_MAX_QUBITS and a cheap trajectory run above:
        # two sweeps, so the budget rule does not scale the cheap reference from the expensive one.
        groups = [[s for s in sizes if s["n"] <= DENSITY_REFERENCE_MAX_QUBITS], [s for s in sizes if s["n"] > DENSITY_REFERENCE_MAX_QUBITS]]
        path = csv.with_name(f"{csv.stem}_trajectories{csv.suffix}")
        trajectory_rows: list[dict] = []
        for group in groups if names != [] else []:
            if group:
                trajectory_rows += harness.sweep(
                    group, lambda size: make_workload(size, p), TRAJECTORY_REFERENCE, harness.select(libs, names),
                    device=args.device, repeats=args.repeats, budget=args.budget, work=trajectory_work, csv=path,
                    title=f"Noise, trajectories: <Z0 Z(n-1)> from {args.trajectories} trajectories, depolarizing p = {p:g} after every gate, B = 1",
                    check=lambda result, reference: trajectory_compare(result, reference, args.trajectories),
                )
                harness.write_csv(path, trajectory_rows)  # both groups' rows
        rows += trajectory_rows
    return rows


if __name__ == "__main__":
    main()
