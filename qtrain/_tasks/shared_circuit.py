"""The circuit keys that the sharing experiments (deceptiveness, lr_grid) have
in common: qtrain's default shared ansatz and its cost, checked once.

`circuit_seed` draws the circuit's axes and the target state; the run `seed`
draws only random starts and samples, so `seed=0,1,2` repeats one circuit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from qtrain.builders import random_target_state, shared_ansatz
from qtrain.circuit import Circuit
from qtrain.diagnostics import resolve_cost
from qtrain.engine.observables import PauliSum
from qtrain._tasks import checks

__all__ = ["SharedCircuit", "circuit_settings", "plan_circuit"]


@dataclass(frozen=True)
class SharedCircuit:
    """The checked circuit keys: `params` free angles on `qubits` qubits, axes drawn with `circuit_seed` unless `axes`
    names them, and the cost (a target state of 2**qubits complex amplitudes for infidelity, or a PauliSum)."""

    params: int
    qubits: int
    circuit_seed: int
    axes: str | None
    entangler: str
    cost: torch.Tensor | PauliSum  # a target state (infidelity) or a PauliSum

    def build(self, sharing: int) -> Circuit:
        """The shared ansatz with each of the `params` angles used by `sharing` rotations."""
        return shared_ansatz(self.qubits, self.params, sharing, axes=self.axes, seed=self.circuit_seed, entangler=self.entangler)


def plan_circuit(cfg: Any) -> SharedCircuit:
    """Check the circuit keys (params, qubits, circuit_seed, axes, entangler, cost) before any work."""
    params = checks.positive_int(cfg.params, "params")
    qubits = checks.positive_int(cfg.qubits, "qubits")
    circuit_seed = checks.positive_int(cfg.circuit_seed, "circuit_seed", minimum=0)
    cost: torch.Tensor | PauliSum
    if cfg.cost == "infidelity":
        cost = random_target_state(qubits, circuit_seed)
    else:
        try:
            cost = resolve_cost(cfg.cost, qubits)
        except ValueError as e:
            raise ValueError(f"cost: {e}") from None
    plan = SharedCircuit(params, qubits, circuit_seed, cfg.axes, cfg.entangler, cost)
    try:
        plan.build(1)
    except ValueError as e:
        raise ValueError(f"axes/entangler: {e}") from None
    return plan


def circuit_settings(cfg: Any, plan: SharedCircuit) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings a run folder's rows depend on (the block's fingerprint among
    them), and the notes recorded beside them (the block's gate list)."""
    block = plan.build(1)
    settings = {key: cfg[key] for key in ("params", "qubits", "circuit_seed", "axes", "entangler", "cost")}
    return {**settings, "circuit": block.fingerprint()}, {"circuit_gates": block.gate_list()}
