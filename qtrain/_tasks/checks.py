"""Config checks shared by the tasks: each names the offending key, and all
run before any work starts."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from qtrain.engine.conventions import COMPLEX_DTYPES

__all__ = [
    "device", "dtype", "int_list", "number_list", "one_process", "plain", "positive_float", "positive_int"
]

#: config name -> state dtype ("complex64", "complex128")
DTYPES = {str(d).removeprefix("torch."): d for d in COMPLEX_DTYPES}


def int_list(value: Any, key: str, minimum: int) -> list[int]:
    """A list of ints from a list, a single int, or an inclusive range string
    "start:stop[:step]" (e.g. "1:100", "2:10:2"); sorted, without repeats."""
    if isinstance(value, str):
        value = _inclusive_range(value, key)

    def refusal(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int):
            return f"every entry must be an integer, got {v!r}"
        return f"every entry must be >= {minimum}, got {v}" if v < minimum else None

    scalar = isinstance(value, int) and not isinstance(value, bool)  # a bool is refused as not a list, not read as 0 or 1
    return sorted(set(_checked_list(value, key, scalar, "a list of integers", refusal)))


def _inclusive_range(text: str, key: str) -> list[int]:
    """"start:stop[:step]" -> the ints from start to stop, both included."""
    parts = text.split(":")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"{key}: cannot read {text!r}; use a list like [2,4,6] or a range like '2:10:2'") from None
    if len(numbers) not in (2, 3) or (len(numbers) == 3 and numbers[2] < 1):
        raise ValueError(f"{key}: a range is 'start:stop' or 'start:stop:step' with step >= 1, got {text!r}")
    return list(range(numbers[0], numbers[1] + 1, numbers[2] if len(numbers) == 3 else 1))


def _checked_list(value: Any, key: str, scalar: bool, expected: str, refusal: Callable[[Any], str | None]) -> list[Any]:
    """The shape `int_list` and `number_list` share: `value` as a list (`[value]`
    when `scalar`), not empty, and every entry passed by `refusal`, which says
    what is wrong with an entry (None: nothing). `expected` words the error
    for a value that is neither a scalar nor iterable."""
    try:
        values = [value] if scalar else list(value)
    except TypeError:
        raise ValueError(f"{key}: expected {expected}, got {value!r}") from None
    if not values:
        raise ValueError(f"{key}: is empty")
    for v in values:
        reason = refusal(v)
        if reason is not None:
            raise ValueError(f"{key}: {reason}")
    return values


def name_list(value: Any, key: str, known: tuple[str, ...]) -> list[str]:
    """Names from a list or a single name, each one of `known`; in the given order, without repeats."""

    def refusal(v: Any) -> str | None:
        return None if isinstance(v, str) and v in known else f"unknown name {v!r} (known: {', '.join(known)})"

    values = _checked_list(value, key, isinstance(value, str), "a name or a list of names", refusal)
    return list(dict.fromkeys(values))


def positive_int(value: Any, key: str, minimum: int = 1) -> int:
    """`value` if it is an integer (not a bool) >= `minimum`, else a ValueError that names `key`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key}: must be an integer >= {minimum}, got {value!r}")
    return value


def plain(value: Any) -> Any:
    """A config value as typed, with OmegaConf's list and dict nodes as plain lists and dicts."""
    from omegaconf import OmegaConf  # here, not at import: the library's own callers pass plain values

    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def number_list(value: Any, key: str) -> list[float]:
    """Finite numbers from a list or a single number (never a string's characters)."""

    def refusal(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return f"every entry must be a finite number, got {v!r}"
        return None

    # a string is one (refused) entry, not a list of characters
    values = _checked_list(value, key, isinstance(value, (int, float, str)), "a number or a list of numbers", refusal)
    return [float(v) for v in values]


def positive_float(value: Any, key: str) -> float:
    """A finite number > 0 (a learning rate, say): nan and inf would train nothing but nan."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"{key}: must be a finite number > 0, got {value!r}")
    return float(value)


def device(value: Any) -> torch.device:
    """The torch.device a config names: "cpu" or "cuda[:i]", refused when CUDA is asked for and absent."""
    try:
        dev = torch.device(value)
    except (RuntimeError, TypeError):
        raise ValueError(f"device: unknown device {value!r}; use 'cpu' or 'cuda'") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device: must be 'cpu' or 'cuda', got {value!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {value!r} requested, but CUDA is not available on this machine")
    return dev


def dtype(value: Any) -> torch.dtype:
    """The complex torch dtype a config names (a key of `DTYPES`), else a ValueError that lists them."""
    if value not in DTYPES:
        raise ValueError(f"dtype: must be one of {sorted(DTYPES)}, got {value!r}")
    return DTYPES[value]


def one_process(cfg: Any) -> None:
    """Refuse trainer=ddp for an experiment that runs in one process, rather than run it once and ignore the ranks."""
    from qtrain.parallel import world_size

    ranks = world_size(cfg.get("trainer"))
    if ranks > 1:
        raise ValueError(f"trainer.devices x trainer.num_nodes: the {cfg.task} experiment runs in one process, got {ranks} ranks; "
                         "the experiments on several ranks are barren_plateau, lr_grid, deceptiveness and hybrid_digits")


def noise(cfg: Any) -> tuple[Any, int | None]:
    """The config's `noise` block as (a NoiseModel or None when every rate is 0 and trajectories is null,
    trajectories), every rate checked by name (noise.<key>: ...)."""
    from omegaconf import DictConfig, OmegaConf

    from qtrain.noise import CHANNELS, NoiseModel

    block = cfg.get("noise")
    if block is None:
        return None, None
    rates: dict[str, Any] = {}
    for key in (*CHANNELS, "readout"):
        value = block.get(key, 0.0)
        rates[key] = OmegaConf.to_container(value) if isinstance(value, DictConfig) else value
    trajectories = block.get("trajectories")
    try:
        model = NoiseModel(**rates)
    except (TypeError, ValueError) as e:
        raise ValueError(str(e).replace("noise: ", "noise.", 1)) from None
    if trajectories is not None:
        trajectories = positive_int(trajectories, "noise.trajectories")
    if model.is_noiseless and trajectories is None:
        return None, None
    if model.is_noiseless:
        raise ValueError("noise.trajectories is set, but every noise rate is 0: set a rate (noise.depolarizing=0.01, ...) or drop noise.trajectories")
    if trajectories is not None and not model.pauli_only:  # every experiment that takes trajectories trains on their gradients
        raise ValueError("noise.trajectories: trajectories with amplitude damping give values only (its jumps depend on the state), "
                         "and training needs gradients; set noise.trajectories=null for the exact density matrix")
    return model, trajectories
