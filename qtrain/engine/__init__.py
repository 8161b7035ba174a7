"""qtrain's statevector engine: pure torch, no Lightning or Hydra.

`simulate` is the single entry point the circuit front end calls; the modules
below it each do one thing (gate table, kernels, observables, forward run,
adjoint differentiation).
"""

from __future__ import annotations

import torch

from qtrain.engine.adjoint import adjoint_state, value_and_grad
from qtrain.engine.conventions import (
    COMPLEX_DTYPES,
    DIFF_METHODS,
    check_complex_dtype,
    check_diff_method,
    complex_dtype,
    real_dtype,
    resolve_diff_method,
)
from qtrain.engine.fusion import plan_schedule
from qtrain.engine.observables import PauliString, PauliSum, expval, expvals, infidelity
from qtrain.engine.program import Program, Step, fuse_diagonals, plain_tensors
from qtrain.engine.run import Run, run_program


def simulate_run(run: Run, diff_method: str = "backprop") -> torch.Tensor:
    """Final states (batch, 2, ..., 2) of a `Run`, differentiable by `diff_method`
    ("auto": the adjoint from `AUTO_ADJOINT_QUBITS` qubits on, else backprop)."""
    method = resolve_diff_method(diff_method, run.program.n_qubits, run.program.needs_tensor_grad)
    check_complex_dtype(run.dtype)
    return adjoint_state(run) if method == "adjoint" else run_program(run)


def simulate(
    program: Program,
    angles: torch.Tensor,
    batch: int,
    dtype: torch.dtype = torch.complex64,
    device: torch.device | str = "cpu",
    diff_method: str = "backprop",
    initial_state: torch.Tensor | None = None,
) -> torch.Tensor:
    """Final states (batch, 2, ..., 2) for angles (batch or 1, n_slots), from
    `initial_state` ((batch or 1, 2, ..., 2) in `dtype`; default |0...0>)."""
    return simulate_run(Run(program, angles, batch, dtype, torch.device(device), initial_state), diff_method)


__all__ = [
    "COMPLEX_DTYPES",
    "DIFF_METHODS",
    "PauliString",
    "PauliSum",
    "Program",
    "Run",
    "Step",
    "expval",
    "expvals",
    "fuse_diagonals",
    "infidelity",
    "plain_tensors",
    "plan_schedule",
    "check_complex_dtype",
    "check_diff_method",
    "resolve_diff_method",
    "complex_dtype",
    "real_dtype",
    "simulate",
    "simulate_run",
    "value_and_grad",
]
