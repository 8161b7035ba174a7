"""Regime 2, a layer in a hybrid model: forward and backward of a batch through a quantum layer.

    python -m experiments.benchmarks.hybrid                         # n in 4 8 12 16, B in 32 256 1024
    python -m experiments.benchmarks.hybrid --qubits 8 --batches 256 --libraries qtrain torch-einsum

Workload: a batch of B inputs x (B, n), uniform in [0, pi) (fixed seed). The
circuit encodes x_q by RY(x_q) on qubit q, then runs LAYERS = 4 layers of the
hardware-efficient ansatz of hea.py (RY, RZ per qubit, CNOT chain), whose 8 n
angles are trainable weights (uniform in [-pi, pi), fixed seed, the same
values, in the same order, in every library), and outputs <Z_q> for every
qubit: (B, n). Task: the outputs, then the backward pass of out.sum() with
gradients for both the weights and the inputs x (x.requires_grad).

Libraries: qtrain's `QuantumLayer` (complex64) with its default
diff_method="auto" ("qtrain": the adjoint from 8 qubits, backprop below), and
forced to "backprop" ("qtrain-backprop") and "adjoint" ("qtrain-adjoint");
torchquantum-ng (batched QuantumDevice, autograd); PennyLane default.qubit
(torch interface, parameter broadcasting over the batch, backprop); and
"torch-einsum", a hand-written batched statevector simulation in plain torch
autograd (what a user would write by hand). Every mode is printed with the table.

Checked: before timing, every library's outputs and both gradients against
qtrain's complex128 QuantumLayer (adjoint) to 1e-4, relative to each
quantity's scale where that exceeds 1 (the weight gradient sums over the
batch; see harness.TOLERANCE); a library that disagrees is reported and not
timed. Timing, skipping and the CSV (logs/benchmarks/hybrid.csv) are the
harness's (experiments/benchmarks/harness.py); the budget rule scales a
library's time and peak memory at a smaller size by 2^n n B.
"""

from __future__ import annotations

import argparse
import math
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from experiments.benchmarks import harness
from experiments.benchmarks.harness import Library, Results
from experiments.benchmarks.hea import hea_gates
from qtrain.circuit import Circuit
from qtrain.layers import QuantumLayer

LAYERS = 4
SEED = 0


def hybrid_circuit(n: int) -> Circuit:
    """RY(x_q) encoding, then the ansatz: parameters x0..x{n-1}, then w0, w1, ...
    in hea_gates' order (weight k is the angle hea_gates indexes by k)."""
    circuit = Circuit(n)
    for q in range(n):
        circuit.ry(q, f"x{q}")
    for kind, a, b in hea_gates(n, LAYERS):
        if kind == "cnot":
            circuit.cnot(a, b)
        else:
            circuit.add(kind, a, f"w{b}")
    return circuit


def make_workload(size: Mapping[str, int]) -> dict[str, Any]:
    n, batch = size["n"], size["B"]
    gen = torch.Generator().manual_seed(SEED)
    weights = (2 * torch.rand(2 * n * LAYERS, generator=gen, dtype=torch.float64) - 1) * math.pi
    x = torch.rand(batch, n, generator=gen, dtype=torch.float64) * math.pi
    return {"n": n, "B": batch, "x": x, "weights": weights}


def work(size: Mapping[str, int]) -> float:
    """Time and memory model for the budget rule: gates (~ n) x amplitudes (2^n) x
    batch; memory too, since the backprop libraries keep a state per gate."""
    return size["n"] * size["B"] * 2.0 ** size["n"]


def _leaves(w: dict[str, Any], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh leaf tensors x and weights that require grad, in `dtype`."""
    return w["x"].to(dtype).clone().requires_grad_(True), w["weights"].to(dtype).clone().requires_grad_(True)


def _backward(out: torch.Tensor, x: torch.Tensor, weights: torch.Tensor) -> Results:
    # autograd.grad rather than .backward(): nothing accumulates across the repeated calls
    grad_x, grad_w = torch.autograd.grad(out.sum(), [x, weights])
    return {"out": out.detach(), "grad_x": grad_x, "grad_w": grad_w}


# ---- qtrain -------------------------------------------------------------------------


def _qtrain_setup(diff_method: str, dtype: torch.dtype) -> Any:
    def setup(w: dict[str, Any]) -> Any:
        n = w["n"]
        layer = QuantumLayer(hybrid_circuit(n), [f"Z{q}" for q in range(n)], inputs=[f"x{q}" for q in range(n)], diff_method=diff_method, dtype=dtype)
        if layer.weight_names != tuple(f"w{k}" for k in range(2 * n * LAYERS)):  # the weights must be the other libraries' weights
            raise RuntimeError(f"unexpected weight order {layer.weight_names[:4]}...")
        with torch.no_grad():
            layer.weight.copy_(w["weights"])
        layer = layer.to(w.get("device", "cpu"))
        x = w["x"].to(layer.weight.dtype).to(layer.weight.device).clone().requires_grad_(True)

        def call() -> Results:
            return _backward(layer(x), x, layer.weight)

        return call

    return setup


# ---- torchquantum-ng ----------------------------------------------------------------


def _torchquantum_available() -> bool:
    from experiments.benchmarks.peers.torchquantum_peer import TorchQuantumPeer

    return TorchQuantumPeer.available()


def _torchquantum_setup(w: dict[str, Any]) -> Any:
    # imported past the torchvision that cannot load beside a CPU torch
    from qtrain.interop.torchquantum import import_torchquantum

    tq, tqf = import_torchquantum()
    n, batch = w["n"], w["B"]
    x, weights = _leaves(w, torch.float32)
    observables = [tq.PauliZ() for _ in range(n)]
    gates = list(hea_gates(n, LAYERS))

    def call() -> Results:
        # torchquantum's wire q is tensor axis q + 1 (wire 0 the most significant bit), RY/RZ as qtrain's
        qdev = tq.QuantumDevice(n_wires=n, bsz=batch, device="cpu")
        for q in range(n):
            tqf.ry(qdev, wires=q, params=x[:, q])
        for kind, a, b in gates:
            if kind == "ry":
                tqf.ry(qdev, wires=a, params=weights[b])  # one angle for the whole batch
            elif kind == "rz":
                tqf.rz(qdev, wires=a, params=weights[b])
            else:
                tqf.cnot(qdev, wires=[a, b])
        out = tq.measurement.expval(qdev, list(range(n)), observables)  # (B, n)
        return _backward(out, x, weights)

    return call


# ---- PennyLane default.qubit ----------------------------------------------------------


def _pennylane_available() -> bool:
    try:
        import pennylane as qml

        qml.device("default.qubit", wires=1)
    except Exception:
        return False
    return True


def _pennylane_setup(w: dict[str, Any]) -> Any:
    import pennylane as qml

    n = w["n"]
    gates = list(hea_gates(n, LAYERS))
    # default.qubit keeps a complex128 state whatever the angles' dtype (float32 angles measured the same); float64 leaves say so
    x, weights = _leaves(w, torch.float64)

    @qml.qnode(qml.device("default.qubit", wires=n), interface="torch", diff_method="backprop")
    def circuit(x: torch.Tensor, weights: torch.Tensor) -> list:
        for q in range(n):
            qml.RY(x[:, q], wires=q)  # a (B,) angle: parameter broadcasting runs the batch in one tape
        for kind, a, b in gates:
            if kind == "cnot":
                qml.CNOT(wires=[a, b])
            else:
                (qml.RY if kind == "ry" else qml.RZ)(weights[b], wires=a)
        return [qml.expval(qml.Z(q)) for q in range(n)]

    def call() -> Results:
        return _backward(torch.stack(list(circuit(x, weights)), dim=1), x, weights)

    return call


# ---- plain torch ----------------------------------------------------------------------


def _ry(angle: torch.Tensor) -> torch.Tensor:
    """RY matrices (..., 2, 2) complex64 for angles (...)."""
    cos, sin = torch.cos(angle / 2), torch.sin(angle / 2)
    return torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2).to(torch.complex64)


def _rz(angle: torch.Tensor) -> torch.Tensor:
    phase = torch.polar(torch.ones_like(angle), angle / 2)  # exp(i angle / 2)
    zero = torch.zeros_like(phase)
    return torch.stack([torch.stack([phase.conj(), zero], -1), torch.stack([zero, phase], -1)], -2)


def einsum_expvals(x: torch.Tensor, weights: torch.Tensor, n: int) -> torch.Tensor:
    """The hybrid circuit by hand: a (B, 2, ..., 2) complex64 state, each
    one-qubit gate one einsum ((B, 2, 2) matrices for the inputs, (2, 2) for a
    weight shared by the batch), CNOT by flipping the target axis of the
    control = 1 half; -> <Z_q> (B, n), differentiable by autograd."""
    batch = x.shape[0]
    state = torch.zeros(batch, 2**n, dtype=torch.complex64, device=x.device)
    state[:, 0] = 1
    state = state.reshape(batch, *([2] * n))
    axes = string.ascii_lowercase[1 : n + 1]  # "a" is the batch, qubit q is axes[q] (tensor axis q + 1)

    def gate(state: torch.Tensor, q: int, matrix: torch.Tensor) -> torch.Tensor:
        out = axes[:q] + "Z" + axes[q + 1 :]
        lhs = ("aZ" if matrix.dim() == 3 else "Z") + axes[q]
        return torch.einsum(f"{lhs},a{axes}->a{out}", matrix, state)

    for q in range(n):
        state = gate(state, q, _ry(x[:, q]))
    for kind, a, b in hea_gates(n, LAYERS):
        if kind == "cnot":
            low, high = state.unbind(a + 1)  # control 0 and 1; the target axis b + 1 is now axis b + 1 - (b > a)
            state = torch.stack([low, high.flip(b + 1 - (b > a))], dim=a + 1)
        else:
            state = gate(state, a, (_ry if kind == "ry" else _rz)(weights[b]))
    probs = state.abs().square()
    marginals = [probs.sum(dim=[d for d in range(1, n + 1) if d != q + 1]) for q in range(n)]  # (B, 2) each
    return torch.stack([m[:, 0] - m[:, 1] for m in marginals], dim=1)


def _einsum_setup(w: dict[str, Any]) -> Any:
    device = w.get("device", "cpu")
    x, weights = (t.detach().to(device).requires_grad_(True) for t in _leaves(w, torch.float32))

    def call() -> Results:
        return _backward(einsum_expvals(x, weights, w["n"]), x, weights)

    return call


def libraries() -> list[Library]:
    return [
        Library("qtrain", "QuantumLayer, complex64, diff_method auto (the default: adjoint from 8 qubits, backprop below)", _qtrain_setup("auto", torch.complex64)),
        Library("qtrain-backprop", "QuantumLayer, complex64, diff_method backprop; torch autograd", _qtrain_setup("backprop", torch.complex64)),
        Library("qtrain-adjoint", "QuantumLayer, complex64, diff_method adjoint (inputs and weights are both circuit parameters)", _qtrain_setup("adjoint", torch.complex64)),
        Library(
            "torchquantum",
            "torchquantum-ng QuantumDevice(bsz=B), complex64; tqf.ry/rz/cnot (inputs as (B,) angles, weights as one angle), "
            "tq.measurement.expval of PauliZ per wire; torch autograd",
            _torchquantum_setup,
            _torchquantum_available,
        ),
        Library(
            "pennylane",
            "PennyLane default.qubit, complex128 state (its default), interface torch, diff_method backprop, "
            "parameter broadcasting over the batch (one QNode call per forward)",
            _pennylane_setup,
            _pennylane_available,
        ),
        Library("torch-einsum", "hand-written batched statevector in plain torch, complex64: einsum per one-qubit gate, CNOT by slice flip; autograd", _einsum_setup),
    ]


def _reference_setup(w: dict[str, Any]) -> Any:
    return _qtrain_setup("adjoint", torch.complex128)({**w, "device": "cpu"})  # the reference stays on the CPU


REFERENCE = Library("reference", "qtrain QuantumLayer, complex128, diff_method adjoint; torch.autograd.grad", _reference_setup)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qubits", type=int, nargs="+", default=[4, 8, 12, 16])
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 256, 1024])
    harness.add_arguments(parser, "logs/benchmarks/hybrid.csv", device=True)
    args = parser.parse_args(argv)
    if min(args.qubits) < 2 or min(args.batches) < 1:
        raise SystemExit("need n >= 2 (the CNOT chain) and B >= 1")
    sizes = [{"n": n, "B": b} for n in sorted(args.qubits) for b in sorted(args.batches)]  # smallest first, for the budget rule
    return harness.sweep(
        sizes, make_workload, REFERENCE, harness.select(libraries(), args.libraries),
        repeats=args.repeats, budget=args.budget, work=work, csv=Path(args.csv), device=args.device,
        title=f"hybrid layer: RY(x) encoding + {LAYERS} HEA layers, <Z_q> outputs; forward + backward of out.sum() for inputs and weights",
    )


if __name__ == "__main__":
    main()
