"""The optimizers a multi-start run may use, and their parameter groups.

B starts stacked in one (B, d) tensor are B independent runs only when the
optimizer updates every entry from that entry's own gradient history: Adam,
AdamW, SGD (with momentum or Nesterov), RMSprop and Adagrad do. An optimizer
that couples entries (LBFGS's line search and shared curvature history) or a
clipping of the gradient's total norm would mix the starts, so it is refused.

The closure-based optimizers of `qtrain.training.steppers` (`STEPPERS`: qng,
spsa, rotosolve) couple the entries of one start but never two starts; they
are accepted here by name or as a partial of their settings class, checked
and labelled alike, and `make_optimizer` returns their settings object.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch

from qtrain.training.steppers import STEPPERS, Stepper, settings_problem, stepper_label

__all__ = ["COUPLING", "OPTIMIZERS", "STEPPERS", "CheckedOptimizer", "check_lrs", "check_optimizer", "check_optimizer_settings", "is_stepper",
           "make_optimizer", "settings_label"]

#: name -> optimizer class, each updating elementwise
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}
#: names refused, with the reason
COUPLING = {
    "lbfgs": "LBFGS couples all entries of a parameter (one line search and one curvature history for the whole vector), "
    "so B starts in one tensor would not be B independent runs",
}


def check_optimizer(optimizer: Any) -> tuple[str, type[Any], dict[str, Any]]:
    """A name ("adam", "qng", ...) or a partial of an optimizer class or of a
    stepper's settings class (a Hydra `_partial_` config instantiated) ->
    (name, class, its settings)."""
    if isinstance(optimizer, functools.partial):
        cls = optimizer.func
        steppers = [n for n, c in STEPPERS.items() if c is cls]
        if steppers:
            return steppers[0], STEPPERS[steppers[0]], dict(optimizer.keywords)
        names = [n for n, c in OPTIMIZERS.items() if c is cls]
        if not names:
            raise ValueError(f"optimizer {getattr(cls, '__name__', cls)!r} is not one of the elementwise optimizers {sorted(OPTIMIZERS)} "
                             f"nor a stepper {sorted(STEPPERS)}")
        # the table's entry, not `cls`: it is that very class (`c is cls`), typed as an optimizer class
        return names[0], OPTIMIZERS[names[0]], dict(optimizer.keywords)
    key = str(optimizer).lower()
    if key in COUPLING:
        raise ValueError(f"optimizer {optimizer!r} is refused: {COUPLING[key]}; use one of {sorted(OPTIMIZERS)}")
    if key in STEPPERS:
        return key, STEPPERS[key], {}
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; known: {sorted(OPTIMIZERS)} and the steppers {sorted(STEPPERS)}")
    return key, OPTIMIZERS[key], {}


def is_stepper(optimizer: Any) -> bool:
    """Whether `optimizer` (a name or a partial) is one of the closure-based `STEPPERS`."""
    return issubclass(check_optimizer(optimizer)[1], Stepper)


def check_lrs(lrs: Sequence[float]) -> list[float]:
    """Learning rates: a number or a sequence of numbers, each finite and >= 0,
    no two alike, at least one. 0 is a no-training baseline (the starts' own
    costs, scored like the rest) beside at least one learning rate > 0; a grid
    of only zeros would train nothing, so it is refused. Two learning rates
    that print alike (`f"{lr:g}"`) are refused too: their TensorBoard tags
    `lr=<lr>/...` and table rows would collide."""
    if isinstance(lrs, (str, bytes)):  # a string is a sequence too: its characters would be the "learning rates"
        raise ValueError(f"lrs: give numbers (a list such as [0.01, 0.1]), not the string {lrs!r}")
    values = [lrs] if isinstance(lrs, numbers.Real) else list(lrs)
    if not values:
        raise ValueError("lrs: give at least one learning rate")
    for lr in values:
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) or lr < 0:
            raise ValueError(f"lrs: every learning rate must be a finite number >= 0, got {lr!r}")
    tags = [f"{float(lr):g}" for lr in values]
    repeated = sorted({tag for tag in tags if tags.count(tag) > 1})
    if repeated:
        raise ValueError(f"lrs: learning rate {', '.join(repeated)} is given twice (each names its own TensorBoard tags and table row); "
                         f"got {values}")
    if all(lr == 0 for lr in values):
        raise ValueError(f"lrs: every learning rate is 0, so nothing would train; 0 is a no-training baseline beside a learning rate > 0, "
                         f"got {values}")
    return [float(lr) for lr in values]


def make_optimizer(optimizer: Any, groups: Sequence[torch.Tensor], lrs: Sequence[float],
                   settings: Mapping[str, Any] | None = None) -> torch.optim.Optimizer | Stepper:
    """One parameter group per learning rate, each group one (B, d) tensor of
    starts. `settings` are the optimizer's own keywords (momentum, betas, ...),
    over those a partial already holds. For a stepper (`STEPPERS`), its
    settings object (its `step` takes the tensors and learning rates itself)."""
    name, cls, own, given = _settings(optimizer, settings)
    settings = {**own, **given}
    if "lr" in settings:
        raise ValueError("optimizer settings: give learning rates through lrs, not lr")
    if issubclass(cls, Stepper):
        problem = settings_problem(cls, settings)
        if problem is not None:
            raise ValueError(f"optimizer {name!r}: {problem[0]}: {problem[1]}")
        stepper: Stepper = cls(**settings)
        stepper.check_lrs(list(lrs))
        return stepper
    try:
        return cls([{"params": [p], "lr": lr} for p, lr in zip(groups, lrs)], **settings)
    except (TypeError, ValueError) as e:
        raise ValueError(f"optimizer {name!r}: {e}") from None


class CheckedOptimizer(NamedTuple):
    """What `check_optimizer_settings` found: the optimizer's name ("adam", ...),
    the learning rates as `check_lrs` returns them, and its `settings_label`."""

    name: str
    lrs: list[float]
    label: str


def check_optimizer_settings(optimizer: Any, settings: Mapping[str, Any] | None = None, lrs: Sequence[float] = (1.0,), *,
                             key: str = "optimizer", settings_key: str = "optimizer_settings") -> CheckedOptimizer:
    """Check an optimizer, its settings and the learning rates before any work.

    The optimizer is built once, on dummy tensors (one parameter group per
    learning rate), so that its own checks (betas in [0, 1), Nesterov's
    momentum, an unknown keyword) refuse a bad setting now instead of inside
    the training loop. A refusal is a one-line ValueError naming the setting:
    `<key>.<name>` for a keyword the partial `optimizer` holds (a task passes
    its config key, "optimizer.adam"), `<settings_key>.<name>` for one of
    `settings`. Only when the build fails are the settings tried again one at a
    time, in their order, to find the first that fails (for a combination,
    such as nesterov without momentum, the later of the two). The label is
    read off the optimizer so built (against its class's defaults)."""
    name, cls, own, given = _settings(optimizer, settings)
    checked_lrs = check_lrs(lrs)
    merged = {**own, **given}
    where = {k: settings_key if k in given else key for k in merged}
    if "lr" in merged:
        raise ValueError(f"{where['lr']}.lr: the learning rates come from `lrs`, not from the optimizer's settings")
    if issubclass(cls, Stepper):
        for setting in merged:  # one at a time in order, so that the first bad one is named (as for torch's optimizers)
            problem = settings_problem(cls, {k: merged[k] for k in list(merged)[: list(merged).index(setting) + 1]})
            if problem is not None:
                raise ValueError(f"{where.get(problem[0], key)}.{problem[0]}: {problem[1]}")
        cls(**merged).check_lrs(checked_lrs)
        return CheckedOptimizer(name, checked_lrs, stepper_label(cls, merged))
    try:
        built = cls(_dummy_groups(checked_lrs), **merged)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(_blame(cls, merged, where, checked_lrs, e)) from None
    return CheckedOptimizer(name, checked_lrs, _label(name, built.defaults))


def _blame(cls: type[torch.optim.Optimizer], settings: dict[str, Any], where: dict[str, str], lrs: list[float], error: Exception) -> str:
    """The message for a build with `settings` that failed with `error`: the
    first setting whose addition fails, named by its key (`where`)."""
    kept: dict[str, Any] = {}
    for name, value in settings.items():
        try:
            cls(_dummy_groups(lrs), **kept, **{name: value})
        except (TypeError, ValueError, RuntimeError) as e:
            return f"{where[name]}.{name}: {cls.__name__} refuses {value!r}: {_first_line(e)}"
        kept[name] = value
    # every setting passed one at a time, yet not all together: nothing to single out
    return f"{cls.__name__} refuses the settings {settings!r}: {_first_line(error)}"


def _dummy_groups(lrs: list[float]) -> list[dict[str, Any]]:
    """One parameter group per learning rate, each a one-entry tensor: enough for an optimizer's own checks."""
    return [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs]


def _first_line(error: Exception) -> str:
    """An exception's first line (the refusal must stay one line), or its type when it says nothing."""
    return next(iter(str(error).splitlines()), "") or type(error).__name__


def _settings(optimizer: Any, settings: Mapping[str, Any] | None) -> tuple[str, type[Any], dict[str, Any], dict[str, Any]]:
    """(name, class, the keywords a partial holds, `settings` as a dict), `settings` refused unless a mapping."""
    name, cls, own = check_optimizer(optimizer)
    if settings is not None and not isinstance(settings, Mapping):
        raise ValueError(f"optimizer_settings must be a mapping of the optimizer's keywords (such as {{'momentum': 0.9}}), got {settings!r}")
    return name, cls, own, dict(settings or {})


#: keys of an optimizer's defaults that choose an implementation, not the update rule
IMPLEMENTATION_KEYS = ("lr", "foreach", "fused", "capturable", "differentiable")


def settings_label(optimizer: Any, settings: Mapping[str, Any] | None = None) -> str:
    """The settings that make this optimizer differ from its class's defaults,
    as one compact, canonical string ("momentum=0.9;nesterov=True", or
    "defaults"): equal for equal update rules however they were spelled (a
    list or a tuple of betas, an explicit default), so two variants of one
    optimizer differ in a table and two spellings of one do not."""
    name, cls, own, given = _settings(optimizer, settings)
    if issubclass(cls, Stepper):
        make_optimizer(optimizer, [], [], settings)  # its checks
        return stepper_label(cls, {**own, **given})
    dummy = torch.zeros(1, requires_grad=True)
    built = make_optimizer(optimizer, [dummy], [1.0], settings)
    assert isinstance(built, torch.optim.Optimizer)
    return _label(name, built.defaults)


def _label(name: str, chosen: Mapping[str, Any]) -> str:
    """`settings_label` from the defaults of the optimizer as built (`chosen`)."""
    built = make_optimizer(name, [torch.zeros(1, requires_grad=True)], [1.0])  # by name: the class with none of a partial's keywords
    assert isinstance(built, torch.optim.Optimizer)  # a torch optimizer's name builds one
    plain = built.defaults

    def canonical(value: Any) -> Any:
        return tuple(canonical(v) for v in value) if isinstance(value, (list, tuple)) else value

    def text(value: Any) -> str:
        if isinstance(value, tuple):
            return "(" + ",".join(text(v) for v in value) + ")"
        return f"{value:g}" if isinstance(value, float) else str(value)

    changed = {k: canonical(v) for k, v in chosen.items() if k not in IMPLEMENTATION_KEYS and canonical(v) != canonical(plain.get(k))}
    return ";".join(f"{k}={text(v)}" for k, v in sorted(changed.items())) or "defaults"
