"""Regime 1, one circuit (VQE-style): value and full gradient of a hardware-efficient ansatz.

    python -m experiments.benchmarks.hea                            # (n, L) = (8, 10) (12, 10) (16, 10) (20, 5) (20, 10)
    python -m experiments.benchmarks.hea --qubits 8 12 --layers 10 20 --repeats 3
    python -m experiments.benchmarks.hea --points 14x10 --libraries qtrain qulacs

Workload: n qubits, L layers; a layer is RY(theta) then RZ(theta) on each
qubit in turn (ry(0), rz(0), ry(1), rz(1), ...), then CNOT(0,1), CNOT(1,2),
..., CNOT(n-2, n-1). Every angle is its own parameter (2 n L of them, in that
gate order), drawn uniformly in [-pi, pi) with a fixed seed. Cost E = sum_q
<Z_q>. Task: E and dE/dtheta for ONE circuit (batch 1).

Libraries: qtrain `Circuit.value_and_grad` (adjoint) in complex64 and, for
reference, in complex128 ("qtrain-c128"); qtrain's other entry point,
`expval(theta, obs, diff_method="adjoint").sum().backward()` ("qtrain-expval"); qulacs (ParametricQuantumCircuit,
complex128 only); PennyLane lightning.qubit with adjoint differentiation
(complex64). Every mode is printed with the table.

Checked: before timing, every library's E and gradient against a complex128
reference, qtrain's expval(..., diff_method="adjoint") differentiated by
autograd (another entry point than value_and_grad), to 1e-4, relative to the
gradient's scale where that exceeds 1 (see harness.TOLERANCE); a library that
disagrees is reported and not timed. Timing, skipping and the CSV
(logs/benchmarks/hea.csv) are the harness's (experiments/benchmarks/harness.py).
"""

from __future__ import annotations

import argparse
import functools
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from experiments.benchmarks import harness
from experiments.benchmarks.harness import Library, Results
from qtrain.circuit import Circuit

DEFAULT_POINTS = ("8x10", "12x10", "16x10", "20x5", "20x10")
SEED = 0


def hea_gates(n: int, layers: int) -> Iterator[tuple[str, int, int]]:
    """The ansatz as ("ry" | "rz", qubit, parameter index) and ("cnot", control,
    target); the one gate order every library below translates."""
    for layer in range(layers):
        for q in range(n):
            yield "ry", q, 2 * (layer * n + q)
            yield "rz", q, 2 * (layer * n + q) + 1
        for q in range(n - 1):
            yield "cnot", q, q + 1


def hea_circuit(n: int, layers: int) -> Circuit:
    """The ansatz in qtrain; parameter "t<k>" is theta[k] (names are taken in
    order of first use, and k only grows along the gates)."""
    circuit = Circuit(n)
    for kind, a, b in hea_gates(n, layers):
        if kind == "cnot":
            circuit.cnot(a, b)
        else:
            circuit.add(kind, a, f"t{b}")
    return circuit


def observable(n: int) -> str:
    return " + ".join(f"Z{q}" for q in range(n))


def make_workload(size: Mapping[str, int]) -> dict[str, Any]:
    n, layers = size["n"], size["L"]
    gen = torch.Generator().manual_seed(SEED)
    theta = (2 * torch.rand(2 * n * layers, generator=gen, dtype=torch.float64) - 1) * math.pi
    return {"n": n, "L": layers, "theta": theta.numpy()}


def work(size: Mapping[str, int]) -> float:
    """Time and memory model for the budget rule: gates (~ n L) x amplitudes (2^n)."""
    return size["n"] * size["L"] * 2.0 ** size["n"]


# ---- qtrain -------------------------------------------------------------------------


def _qtrain_setup(dtype: torch.dtype) -> Any:
    real = torch.float32 if dtype == torch.complex64 else torch.float64

    def setup(w: dict[str, Any]) -> Any:
        circuit, obs = hea_circuit(w["n"], w["L"]), observable(w["n"])
        theta = torch.as_tensor(w["theta"], dtype=real, device=w.get("device", "cpu"))

        def call() -> Results:
            values, grads = circuit.value_and_grad(theta, obs, dtype=dtype)
            return {"value": values[0], "grad": grads[0]}

        return call

    return setup


def _qtrain_expval_setup(w: dict[str, Any]) -> Any:
    """The other entry point users call: expval(..., diff_method="adjoint"), then autograd's backward."""
    circuit, obs = hea_circuit(w["n"], w["L"]), observable(w["n"])
    theta = torch.as_tensor(w["theta"], dtype=torch.float32, device=w.get("device", "cpu")).clone().requires_grad_(True)

    def call() -> Results:
        theta.grad = None
        value = circuit.expval(theta, obs, dtype=torch.complex64, diff_method="adjoint")
        value.sum().backward()
        assert theta.grad is not None
        return {"value": value.detach()[0], "grad": theta.grad}

    return call


def _reference_setup(w: dict[str, Any]) -> Any:
    circuit, obs = hea_circuit(w["n"], w["L"]), observable(w["n"])

    def call() -> Results:
        theta = torch.as_tensor(w["theta"], dtype=torch.float64).clone().requires_grad_(True)
        value = circuit.expval(theta, obs, dtype=torch.complex128, diff_method="adjoint")
        (grad,) = torch.autograd.grad(value.sum(), theta)
        return {"value": value.detach()[0], "grad": grad}

    return call


# ---- qulacs -------------------------------------------------------------------------


def _qulacs_available() -> bool:
    try:
        import qulacs  # noqa: F401
    except Exception:
        return False
    return True


def _qulacs_setup(w: dict[str, Any]) -> Any:
    import qulacs
    from qulacs.state import inner_product

    n = w["n"]
    circuit = qulacs.ParametricQuantumCircuit(n)
    for kind, a, b in hea_gates(n, w["L"]):
        # qulacs' parametric rotations are exp(+i phi P / 2), the opposite sign
        # to R_P(theta) = exp(-i theta P / 2): store phi = -theta, negate d/dphi.
        if kind == "ry":
            circuit.add_parametric_RY_gate(a, -float(w["theta"][b]))
        elif kind == "rz":
            circuit.add_parametric_RZ_gate(a, -float(w["theta"][b]))
        else:
            circuit.add_CNOT_gate(a, b)
    obs = qulacs.Observable(n)
    for q in range(n):  # qulacs' qubit q is bit q (little-endian); labels map 1:1, and sum_q Z_q ignores the order anyway
        obs.add_operator(1.0, f"Z {q}")
    state, h_state, work_state = (qulacs.QuantumState(n) for _ in range(3))

    def call() -> Results:
        state.set_zero_state()
        circuit.update_quantum_state(state)
        obs.apply_to_state(work_state, state, h_state)  # H|psi>
        value = inner_product(state, h_state).real
        # backprop(obs) would run the circuit once more to get H|psi>; backprop_inner_product takes ours and
        # returns Re <H psi| d psi / d phi>, half of dE/dphi (it runs one forward pass of its own).
        # Parameters come in the order they were added: theta's.
        grad = -2 * np.asarray(circuit.backprop_inner_product(h_state))
        return {"value": value, "grad": grad}

    return call


# ---- PennyLane lightning.qubit --------------------------------------------------------


def _lightning_available() -> bool:
    try:
        import pennylane as qml

        qml.device("lightning.qubit", wires=1)
    except Exception:
        return False
    return True


def _lightning_mode() -> str:
    return (
        f"PennyLane lightning.qubit, c_dtype={np.dtype(_lightning_dtype()).name}, diff_method adjoint via "
        "device.execute_and_compute_derivatives on a pre-built tape (the device call a QNode ends in, without its per-call overhead); "
        "observable qml.sum of the Z_q"
    )


@functools.cache
def _lightning_dtype() -> type:
    """complex64 where lightning.qubit takes c_dtype=complex64 (0.45 does), else complex128."""
    try:
        import pennylane as qml

        qml.device("lightning.qubit", wires=1, c_dtype=np.complex64)
    except Exception:
        return np.complex128
    return np.complex64


def _lightning_setup(w: dict[str, Any]) -> Any:
    import pennylane as qml
    from pennylane.devices import ExecutionConfig

    n = w["n"]
    device = qml.device("lightning.qubit", wires=n, c_dtype=_lightning_dtype())
    config = device.setup_execution_config(ExecutionConfig(gradient_method="adjoint"))
    ops = []
    for kind, a, b in hea_gates(n, w["L"]):
        if kind == "cnot":
            ops.append(qml.CNOT(wires=[a, b]))
        else:  # PennyLane's RY, RZ are exp(-i theta P / 2), as qtrain's; wire q is qubit q
            ops.append((qml.RY if kind == "ry" else qml.RZ)(float(w["theta"][b]), wires=a))
    tape = qml.tape.QuantumScript(ops, [qml.expval(qml.sum(*(qml.Z(q) for q in range(n))))])
    tapes, _ = device.preprocess_transforms(config)([tape])
    if len(tapes) != 1 or tapes[0].trainable_params != list(range(2 * n * w["L"])):
        raise RuntimeError(f"lightning.qubit preprocessing changed the tape: {len(tapes)} tapes, trainable {tapes[0].trainable_params[:5]}...")

    def call() -> Results:
        # the device API a QNode ends in: one forward run and one adjoint pass, no per-call QNode construction
        values, jacobians = device.execute_and_compute_derivatives(tapes, config)
        return {"value": values[0], "grad": np.asarray(jacobians[0], dtype=np.float64)}

    return call


def libraries() -> list[Library]:
    return [
        Library("qtrain", "Circuit.value_and_grad (adjoint), complex64, float32 theta", _qtrain_setup(torch.complex64)),
        Library("qtrain-c128", "Circuit.value_and_grad (adjoint), complex128, float64 theta", _qtrain_setup(torch.complex128)),
        Library("qtrain-expval", "Circuit.expval(theta, obs, diff_method='adjoint').sum().backward(), complex64, float32 theta", _qtrain_expval_setup),
        Library(
            "qulacs",
            "qulacs ParametricQuantumCircuit, complex128 (qulacs has no single precision); one forward run gives E = <psi|H psi> "
            "and H|psi>, then ParametricQuantumCircuit.backprop_inner_product(H|psi>) (a forward run of its own and the reverse pass); "
            "C++ with OpenMP",
            _qulacs_setup,
            _qulacs_available,
        ),
        Library("pennylane", "PennyLane lightning.qubit", _lightning_setup, _lightning_available, _lightning_mode),
    ]


REFERENCE = Library("reference", "qtrain complex128, expval(diff_method='adjoint') + torch.autograd.grad", _reference_setup)


def parse_points(points: list[str]) -> list[dict[str, int]]:
    sizes = []
    for p in points:
        n, _, layers = p.lower().partition("x")
        if not (n.isdigit() and layers.isdigit()):
            raise SystemExit(f"--points takes NxL, e.g. 16x10; got {p!r}")
        sizes.append({"n": int(n), "L": int(layers)})
    return sizes


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", nargs="+", default=list(DEFAULT_POINTS), help="sizes as NxL (n qubits, L layers)")
    parser.add_argument("--qubits", type=int, nargs="+", help="with --layers: every (n, L) pair instead of --points")
    parser.add_argument("--layers", type=int, nargs="+", help="with --qubits (default 10)")
    harness.add_arguments(parser, "logs/benchmarks/hea.csv", device=True)
    args = parser.parse_args(argv)
    if args.qubits or args.layers:
        sizes = [{"n": n, "L": layers} for n in args.qubits or [8, 12, 16, 20] for layers in args.layers or [10]]
    else:
        sizes = parse_points(args.points)
    if any(s["n"] < 2 or s["L"] < 1 for s in sizes):
        raise SystemExit("need n >= 2 (the CNOT chain) and L >= 1")
    sizes.sort(key=lambda s: (s["n"], s["L"]))  # smallest first: the budget rule scales from smaller sizes
    return harness.sweep(
        sizes, make_workload, REFERENCE, harness.select(libraries(), args.libraries),
        repeats=args.repeats, budget=args.budget, work=work, csv=Path(args.csv), device=args.device,
        title="HEA, one circuit: value and gradient of sum_q <Z_q>, batch 1",
    )


if __name__ == "__main__":
    main()
