"""Config checks shared by the tasks: each names the offending key, and all
run before any work starts."""

from __future__ import annotations

import functools
import math
from typing import Any

import torch

from qtrain.engine.conventions import COMPLEX_DTYPES

__all__ = [
    "built_optimizer", "device", "dtype", "int_list", "number_list", "one_process", "plain", "positive_float",
    "positive_int"
]

#: config name -> state dtype ("complex64", "complex128")
DTYPES = {str(d).removeprefix("torch."): d for d in COMPLEX_DTYPES}


def int_list(value: Any, key: str, minimum: int) -> list[int]:
    """A list of ints from a list, a single int, or an inclusive range string
    "start:stop[:step]" (e.g. "1:100", "2:10:2"); sorted, without repeats."""
    if isinstance(value, str):
        parts = value.split(":")
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"{key}: cannot read {value!r}; use a list like [2,4,6] or a range like '2:10:2'") from None
        if len(numbers) not in (2, 3) or (len(numbers) == 3 and numbers[2] < 1):
            raise ValueError(f"{key}: a range is 'start:stop' or 'start:stop:step' with step >= 1, got {value!r}")
        values = list(range(numbers[0], numbers[1] + 1, numbers[2] if len(numbers) == 3 else 1))
    elif isinstance(value, int) and not isinstance(value, bool):
        values = [value]
    else:
        try:
            values = list(value)
        except TypeError:
            raise ValueError(f"{key}: expected a list of integers, got {value!r}") from None
    if not values:
        raise ValueError(f"{key}: is empty")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{key}: every entry must be an integer, got {v!r}")
        if v < minimum:
            raise ValueError(f"{key}: every entry must be >= {minimum}, got {v}")
    return sorted(set(values))


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
    values = [value] if isinstance(value, (int, float, str)) else value
    try:
        values = list(values)
    except TypeError:
        raise ValueError(f"{key}: expected a number or a list of numbers, got {value!r}") from None
    if not values:
        raise ValueError(f"{key}: is empty")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{key}: every entry must be a finite number, got {v!r}")
    return [float(v) for v in values]


def positive_float(value: Any, key: str) -> float:
    """A finite number > 0 (a learning rate, say): nan and inf would train nothing but nan."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"{key}: must be a finite number > 0, got {value!r}")
    return float(value)


def built_optimizer(partial: functools.partial, key: str, lr: float) -> None:
    """Build the optimizer once, on a dummy tensor, so that its own checks (betas in
    [0, 1), Nesterov's momentum, an unknown keyword) refuse a bad setting before any
    work instead of inside the training loop. Settings are added one at a time in
    the config's order and the first that fails is named as `key.<setting>` (for a
    combination, such as nesterov without momentum, the later of the two keys)."""
    dummy = [torch.zeros(1, requires_grad=True)]
    kept: dict[str, Any] = {}
    for name, value in partial.keywords.items():
        if name == "lr":
            raise ValueError(f"{key}.lr: the learning rates come from `lrs`, not from the optimizer's config")
        try:
            partial.func(dummy, lr=lr, **kept, **{name: value})
        except (TypeError, ValueError, RuntimeError) as e:
            raise ValueError(f"{key}.{name}: {partial.func.__name__} refuses {value!r}: {e}") from None
        kept[name] = value


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
