"""Shots (issue 24): value and parameter-shift gradient of a batch, estimated from measurement shots.

    python -m experiments.benchmarks.shots                          # n = 4 8 12, L = 2, B = 256, 1000 shots
    python -m experiments.benchmarks.shots --qubits 8 --layers 4 --batch 64 --shots 100
    python -m experiments.benchmarks.shots --qubits 4 --libraries qtrain pennylane-default-bcast

Workload: the hardware-efficient ansatz of hea.py (RY, RZ on every qubit, a
CNOT chain; L layers, P = 2 n L parameters) for a batch of B parameter sets
(uniform in [-pi, pi), fixed seed), observable Z0 Z{n-1}. Task: for every row the
value <Z0 Z{n-1}> and the gradient dE/dtheta (B, P) by parameter shift, every
evaluation (the unshifted one and the 2 P shifted ones) with the same number
of shots (1000 by default). One Pauli string, so one measurement setting per
evaluation in every library; the CNOT chain puts every gate in the backward
light cone of Z{n-1}, so light-cone pruning cannot shrink qtrain's work (with
Z0 Z1 and L = 2 it simulates four qubits whatever n is).

Libraries: qtrain `Circuit.value_and_grad(theta, "Z0 Z{n-1}", shots=N, seed=s)`
with theta (B, P), complex64 (its default); PennyLane default.qubit and
lightning.qubit with shots, two ways each:
  * "pennylane-*-loop": PennyLane's own parameter-shift transform
    (qml.gradients.param_shift, what diff_method="parameter-shift" runs) per
    row, because it cannot differentiate a broadcast tape with respect to the
    broadcast parameters (NotImplementedError, PennyLane #4462); the tapes of
    all B rows (1 + 2 P each) go to the device in one qml.execute call, so the
    per-QNode overhead of a Python loop over rows is not timed;
  * "pennylane-*-bcast": the same two-term rule written out by hand, one
    broadcast tape (batch B) per shift, 1 + 2 P tapes in one qml.execute call:
    the fastest way we found to get these numbers from PennyLane.
The device and tape shots are N; the device seed is fixed at setup.

Checked, statistically: shot estimates are random, so a fixed tolerance
(harness.TOLERANCE) cannot hold. Every library's value and gradient are
compared with the exact ones (the reference: qtrain complex128
value_and_grad without shots) in standard errors of the shot noise, derived
below (`shot_sd`); a library passes when (a) every entry is within Z_MAX
standard errors (plus harness.TOLERANCE for float32 rounding) and (b) the
mean squared z-score over the B (or B P) entries is at most 1 + Z_MAX
sqrt(2 / M), which catches a bias too small for (a). The "max error" column is
the largest |z|, in standard errors. It is this script's `check` for the harness
(harness.compare, a fixed tolerance, is the other regimes'). Timing, skipping and the CSV
(logs/benchmarks/shots.csv) are the harness's (experiments/benchmarks/harness.py).
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

SEED = 0
#: A library passes when every entry is within this many standard errors of
#: the exact value. Under the normal approximation one entry exceeds 6 sd
#: with probability 2e-9, so even the B P = 256 x 48 gradient entries at
#: n = 12, L = 2 give a false alarm once in about 10^5 checks.
Z_MAX = 6.0


def shot_sd(exact: Results, shots: int) -> dict[str, np.ndarray]:
    """Standard errors of the shot estimates of `exact`'s quantities, per entry.

    One shot of a Pauli string P gives +1 or -1, with variance 1 - <P>^2, so
    the mean of N shots has variance (1 - <P>^2) / N: exact for the value.
    The two-term shift rule g = (E+ - E-) / 2 uses two independent N-shot
    estimates: Var g = (1 - E+^2 + 1 - E-^2) / (4 N) <= 1 / (2 N); the bound
    is used for the gradient (the shifted exact values would cost 2 P more
    exact runs), so its z-scores are at most the true ones' size."""
    value = harness.as_array(exact["value"])
    grad = harness.as_array(exact["grad"])
    return {
        "value": np.sqrt(np.clip(1.0 - value**2, 0.0, None) / shots),
        "grad": np.full(grad.shape, math.sqrt(1.0 / (2 * shots))),
    }


def shot_compare(result: Results, reference: Results, shots: int) -> tuple[float, str | None]:
    """harness.compare for shot estimates: -> (largest |z| over all entries,
    None) when both tests of the module docstring pass, else (that z, what
    failed). Missing quantities and wrong shapes fail as in harness.compare."""
    sds = shot_sd(reference, shots)
    worst, problems = 0.0, []
    for key, sd in sds.items():
        ref = harness.as_array(reference[key])
        if key not in result:
            problems.append(f"{key}: missing")
            continue
        got = harness.as_array(result[key])
        if got.shape != ref.shape:
            problems.append(f"{key}: shape {got.shape}, expected {ref.shape}")
            continue
        error = np.abs(got - ref)
        # rounding (float32 results) is not shot noise: TOLERANCE of it is forgiven, so an
        # exact +-1 value (sd 0) does not fail on its last bit
        z = np.maximum(error - harness.TOLERANCE, 0.0) / np.maximum(sd, 1e-300)
        z_max = float(z.max(initial=0.0)) if np.all(np.isfinite(got)) else math.inf  # NaN never passes
        worst = max(worst, z_max)
        mean_square = float(np.mean(z**2)) if z.size else 0.0
        limit = 1.0 + Z_MAX * math.sqrt(2.0 / max(z.size, 1))  # chi-square mean: 1, sd sqrt(2 / M)
        if z_max > Z_MAX:
            problems.append(f"{key}: max |error| {z_max:.1f} standard errors > {Z_MAX:g}")
        elif mean_square > limit:
            problems.append(f"{key}: mean squared z {mean_square:.2f} > {limit:.2f} (biased?)")
    return worst, ("; ".join(problems) if problems else None)


def make_workload(size: Mapping[str, int]) -> dict[str, Any]:
    n, layers, batch = size["n"], size["L"], size["B"]
    gen = torch.Generator().manual_seed(SEED)
    theta = (2 * torch.rand(batch, 2 * n * layers, generator=gen, dtype=torch.float64) - 1) * math.pi
    return {"n": n, "L": layers, "B": batch, "shots": size["shots"], "theta": theta.numpy()}


def work(size: Mapping[str, int]) -> float:
    """Time and memory model for the budget rule: B rows x (2 P + 1) evaluations,
    each simulating ~3 n L gates on 2^n amplitudes and drawing `shots` samples."""
    n, layers = size["n"], size["L"]
    return size["B"] * (4 * n * layers + 1) * (3 * n * layers * 2.0**n + size["shots"])


# ---- qtrain -------------------------------------------------------------------------


def observable(n: int) -> str:
    """Z0 Z{n-1}: one Pauli string (one measurement setting) whose light cone is the whole circuit."""
    return f"Z0 Z{n - 1}"


def _qtrain_setup(w: dict[str, Any]) -> Any:
    circuit = hea_circuit(w["n"], w["L"])
    theta = torch.as_tensor(w["theta"], dtype=torch.float32)

    def call() -> Results:
        values, grads = circuit.value_and_grad(theta, observable(w["n"]), shots=w["shots"], seed=SEED)
        return {"value": values, "grad": grads}

    return call


def _reference_setup(w: dict[str, Any]) -> Any:
    circuit = hea_circuit(w["n"], w["L"])

    def call() -> Results:
        theta = torch.as_tensor(w["theta"], dtype=torch.float64)
        values, grads = circuit.value_and_grad(theta, observable(w["n"]), dtype=torch.complex128)
        return {"value": values, "grad": grads}

    return call


# ---- PennyLane ----------------------------------------------------------------------


def _available(device: str) -> Any:
    def available() -> bool:
        try:
            import pennylane as qml

            qml.device(device, wires=1)
        except Exception:
            return False
        return True

    return available


def _tape(qml: Any, w: dict[str, Any], angles: Any) -> Any:
    """The ansatz as a tape measuring <Z0 Z{n-1}> with the workload's shots; angles[k]
    is parameter k (a number, or a (B,) array for a broadcast tape). PennyLane's
    RY, RZ are exp(-i theta P / 2), as qtrain's, and wire q is qubit q."""
    ops = []
    for kind, a, b in hea_gates(w["n"], w["L"]):
        if kind == "cnot":
            ops.append(qml.CNOT(wires=[a, b]))
        else:
            ops.append((qml.RY if kind == "ry" else qml.RZ)(angles[b], wires=a))
    return qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0) @ qml.Z(w["n"] - 1))], shots=w["shots"])


def _loop_setup(device_name: str) -> Any:
    def setup(w: dict[str, Any]) -> Any:
        import pennylane as qml

        device = qml.device(device_name, wires=w["n"], seed=SEED)
        tapes, rules = [], []
        for row in w["theta"]:
            tape = _tape(qml, w, [float(t) for t in row])
            shifted, rule = qml.gradients.param_shift(tape)
            tapes += [tape, *shifted]
            rules.append((len(shifted), rule))
        n_params = w["theta"].shape[1]

        def call() -> Results:
            results = qml.execute(tapes, device, diff_method=None)
            values, grads, at = [], [], 0
            for count, rule in rules:
                values.append(results[at])
                grads.append(np.asarray(rule(results[at + 1 : at + 1 + count]), dtype=np.float64).reshape(n_params))
                at += 1 + count
            return {"value": np.asarray(values, dtype=np.float64), "grad": np.stack(grads)}

        return call

    return setup


def _bcast_setup(device_name: str) -> Any:
    def setup(w: dict[str, Any]) -> Any:
        import pennylane as qml

        device = qml.device(device_name, wires=w["n"], seed=SEED)
        theta = w["theta"]  # (B, P)
        tapes = [_tape(qml, w, list(theta.T))]
        for k in range(theta.shape[1]):
            for sign in (1, -1):
                shifted = theta.T.copy()
                shifted[k] += sign * math.pi / 2
                tapes.append(_tape(qml, w, list(shifted)))

        def call() -> Results:
            results = np.asarray(qml.execute(tapes, device, diff_method=None), dtype=np.float64)  # (1 + 2 P, B)
            # every gate carries its own parameter, so the two-term rule is exact:
            # dE/dtheta_k = (E(theta_k + pi/2) - E(theta_k - pi/2)) / 2
            return {"value": results[0], "grad": ((results[1::2] - results[2::2]) / 2).T}

        return call

    return setup


def libraries() -> list[Library]:
    loop = (
        "PennyLane {dev}, shots per tape, qml.gradients.param_shift per row (it cannot differentiate a broadcast "
        "tape's broadcast parameters, #4462), all rows' tapes in one qml.execute; complex128"
    )
    bcast = (
        "PennyLane {dev}, shots per tape, two-term shift written by hand: 1 + 2P broadcast tapes (batch B) in one "
        "qml.execute; complex128"
    )
    out = [Library("qtrain", "Circuit.value_and_grad(shots=N, seed=s), parameter shift, complex64, float32 theta", _qtrain_setup)]
    for short, dev in (("default", "default.qubit"), ("lightning", "lightning.qubit")):
        out.append(Library(f"pennylane-{short}-loop", loop.format(dev=dev), _loop_setup(dev), _available(dev)))
        out.append(Library(f"pennylane-{short}-bcast", bcast.format(dev=dev), _bcast_setup(dev), _available(dev)))
    return out


REFERENCE = Library("reference", "qtrain complex128, value_and_grad without shots (exact)", _reference_setup)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qubits", type=int, nargs="+", default=[4, 8, 12], help="n, one size each")
    parser.add_argument("--layers", type=int, default=2, help="L, ansatz layers (P = 2 n L parameters)")
    parser.add_argument("--batch", type=int, default=256, help="B, parameter sets per call")
    parser.add_argument("--shots", type=int, default=1000, help="N, shots per evaluation (the unshifted and each shifted one)")
    harness.add_arguments(parser, "logs/benchmarks/shots.csv", budget=300.0)
    args = parser.parse_args(argv)
    if any(n < 2 for n in args.qubits) or args.layers < 1 or args.batch < 1 or args.shots < 1:
        raise SystemExit(f"need n >= 2 (Z0 Z(n-1)), L >= 1, B >= 1, shots >= 1; got n {args.qubits}, L {args.layers}, B {args.batch}, shots {args.shots}")
    sizes = [{"n": n, "L": args.layers, "B": args.batch, "shots": args.shots} for n in sorted(args.qubits)]
    return harness.sweep(
        sizes, make_workload, REFERENCE, harness.select(libraries(), args.libraries),
        repeats=args.repeats, budget=args.budget, work=work, csv=Path(args.csv),
        title=f"Shots: value and parameter-shift gradient of <Z0 Z(n-1)>, {args.shots} shots per evaluation",
        check=lambda result, reference: shot_compare(result, reference, args.shots),
    )


if __name__ == "__main__":
    main()
