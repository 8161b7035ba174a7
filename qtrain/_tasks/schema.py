"""Typed schemas of the experiment configs (Hydra structured configs).

Each `conf/experiment/<name>.yaml` starts from its schema here (`- /schema/<name>@_here_`
in its defaults list), so Hydra itself refuses an unknown key (`qubitz=[2]`) or a
value of the wrong type (`steps=abc`) while composing, naming the key, before
any task code runs. The values and their comments stay in the yaml files: every
field here is MISSING, so the schema holds types only and a key dropped from a
yaml file fails loudly instead of taking a hidden default.

Keys that take several forms (a list, a single value or a range string such as
`layers: "1:100"`; a memory size as a number or "4GB") are typed `Any` here and
checked by the task's `plan`, which also checks ranges and combinations.

Imported by `qtrain.cli` only (not by `import qtrain`), since it imports Hydra.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

__all__ = [
    "BarrenPlateauSchema", "CommonSchema", "CostLocalitySchema", "DeceptivenessSchema", "DemoSchema", "HybridDigitsSchema",
    "LrGridSchema", "NoiseSchema", "NoisyPlateauSchema", "PredictSchema", "RemediesSchema", "SharedCircuitSchema", "TrainerSchema", "register"
]

# Dict/Optional rather than `dict[...]`/`X | None`: OmegaConf reads these annotations at runtime.


@dataclass
class TrainerSchema:
    """conf/trainer/: how a run uses its hardware (parallel.check_trainer checks the ranges)."""

    devices: int = MISSING
    num_nodes: int = MISSING
    log_every: int = MISSING
    checkpoint_every: int = MISSING
    layerwise: Any = None  # null, or {layers, steps_per_stage[, layers_per_stage]} (qtrain.training.layerwise checks it)


@dataclass
class NoiseSchema:
    """conf/config.yaml's `noise`: a rate or a mapping per channel (checked by qtrain.noise.NoiseModel)."""

    depolarizing: Any = MISSING
    amplitude_damping: Any = MISSING
    phase_damping: Any = MISSING
    bit_flip: Any = MISSING
    phase_flip: Any = MISSING
    readout: Any = MISSING
    trajectories: Optional[int] = MISSING


@dataclass
class CommonSchema:
    """The keys of conf/config.yaml, shared by every experiment."""

    task: str = MISSING
    seed: int = MISSING
    progress: Optional[bool] = MISSING  # null = bars only when stderr is a terminal (qtrain.cli.resolve_progress)
    trainer: TrainerSchema = field(default_factory=TrainerSchema)
    noise: NoiseSchema = field(default_factory=NoiseSchema)


@dataclass
class BarrenPlateauSchema(CommonSchema):
    """The keys of conf/experiment/barren_plateau.yaml: McClean's gradient variance against qubits and layers."""

    qubits: Any = MISSING  # a list, an int or a range "2:10:2"
    layers: Any = MISSING
    samples: int = MISSING
    device: str = MISSING
    dtype: str = MISSING
    cost: str = MISSING
    memory_budget: Any = MISSING  # null, bytes or "4GB"
    chunk_size: Optional[int] = MISSING


@dataclass
class NoisyPlateauSchema(CommonSchema):
    """The keys of conf/experiment/noisy_plateau.yaml: gradient variance against depth under depolarizing noise."""

    circuit: str = MISSING
    qubits: Any = MISSING
    layers: Any = MISSING
    depolarizing: Any = MISSING  # a list of rates in [0, 1]
    samples: int = MISSING
    device: str = MISSING
    dtype: str = MISSING
    chunk_size: Optional[int] = MISSING


@dataclass
class CostLocalitySchema(CommonSchema):
    """The keys of conf/experiment/cost_locality.yaml: the global against the local cost's gradient variance."""

    block: str = MISSING
    qubits: Any = MISSING
    layers: Any = MISSING
    samples: int = MISSING
    dtype: str = MISSING


@dataclass
class PredictSchema(CommonSchema):
    """The keys of conf/experiment/predict.yaml: the Lie-algebraic variance against the sampled one."""

    families: Any = MISSING  # a name or a list of names
    qubits: Any = MISSING
    layers: int = MISSING
    samples: int = MISSING
    expressibility_samples: int = MISSING
    entangling_samples: int = MISSING
    max_dim: int = MISSING
    sharing: Any = MISSING  # null, a list, an int or a range
    sharing_seeds: Any = MISSING
    sharing_resolution: int = MISSING
    sharing_tol: float = MISSING


@dataclass
class SharedCircuitSchema(CommonSchema):
    """The circuit keys of the sharing experiments (qtrain._tasks.shared_circuit)."""

    params: int = MISSING
    qubits: int = MISSING
    axes: Optional[str] = MISSING
    entangler: str = MISSING
    cost: str = MISSING
    circuit_seed: int = MISSING


@dataclass
class DeceptivenessSchema(SharedCircuitSchema):
    """The keys of conf/experiment/deceptiveness.yaml: deceptiveness of the shared ansatz against sharing degree."""

    sharing: Any = MISSING  # list, int or range
    resolution: Any = MISSING
    tol: Any = MISSING  # a number or a list of numbers
    relative_tol: bool = MISSING
    rule: Any = MISSING  # a rule name or a list of them
    method: str = MISSING
    memory_budget: Any = MISSING


@dataclass
class LrGridSchema(SharedCircuitSchema):
    """The keys of conf/experiment/lr_grid.yaml: success rate across optimizers, learning rates and sharing degrees."""

    optimizers: Any = MISSING  # a name or a list of names from `optimizer`
    optimizer: Dict[str, Any] = MISSING  # name -> a `_partial_` optimizer config (conf/optimizer/)
    lrs: Any = MISSING  # a number or a list of numbers: checked by training.check_lrs
    sharing: Any = MISSING
    starts: int = MISSING
    steps: int = MISSING
    init: str = MISSING
    init_width: Optional[float] = MISSING
    tol: float = MISSING
    global_min: Optional[float] = MISSING
    resolution: int = MISSING
    rule: str = MISSING
    device: str = MISSING
    dtype: str = MISSING
    shots: Any = MISSING  # null, an integer or a list of them: checked by the task's plan


@dataclass
class RemediesSchema(SharedCircuitSchema):
    """The keys of conf/experiment/remedies.yaml: initializations, layerwise training and optimizers in one plateau."""

    circuits: Any = MISSING  # a name or a list: mcclean, shared
    inits: Any = MISSING
    init_width: Optional[float] = MISSING
    layerwise: Any = MISSING  # null or {steps_per_stage[, layers_per_stage]}
    optimizers: Any = MISSING
    optimizer: Dict[str, Any] = MISSING
    lrs: Any = MISSING
    starts: int = MISSING
    steps: int = MISSING
    samples: int = MISSING
    tol: float = MISSING
    mcclean_qubits: int = MISSING
    mcclean_layers: int = MISSING
    variance_qubits: Any = MISSING  # null, a list, an int or a range
    variance_layers: int = MISSING
    sharing: int = MISSING
    dtype: str = MISSING


@dataclass
class DemoSchema(CommonSchema):
    """The keys of conf/experiment/demo.yaml: a small quantum classifier of two Gaussian blobs."""

    qubits: int = MISSING
    layers: int = MISSING
    samples: int = MISSING
    steps: int = MISSING
    lr: float = MISSING


@dataclass
class HybridDigitsSchema(CommonSchema):
    """The keys of conf/experiment/hybrid_digits.yaml: a classical-quantum classifier of 8x8 digits."""

    qubits: int = MISSING
    layers: int = MISSING
    epochs: int = MISSING
    batch_size: int = MISSING
    lr: float = MISSING
    monitor_samples: int = MISSING


#: experiment name -> its schema, stored as `schema/<name>` in Hydra's ConfigStore
SCHEMAS: dict[str, type] = {
    "barren_plateau": BarrenPlateauSchema,
    "deceptiveness": DeceptivenessSchema,
    "demo": DemoSchema,
    "hybrid_digits": HybridDigitsSchema,
    "lr_grid": LrGridSchema,
    "noisy_plateau": NoisyPlateauSchema,
    "predict": PredictSchema,
    "cost_locality": CostLocalitySchema,
    "remedies": RemediesSchema,
}


def register() -> None:
    """Store every schema in Hydra's ConfigStore (idempotent: a second store replaces the first)."""
    store = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        store.store(group="schema", name=name, node=schema)


register()
