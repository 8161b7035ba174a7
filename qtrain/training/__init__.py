"""Training many starts at once: G learning rates x B starts of one circuit as
one batched Lightning run, scored by success rate against the global minimum.

    from qtrain.training import train_lr_grid
    r = train_lr_grid(circuit, target, optimizer="adam", lrs=[0.01, 0.1], starts=1000, steps=500)

Lightning is imported only when a run starts (`import qtrain.training` stays light).
"""

from qtrain.training.grid import LrGridResult, global_min_of, rescore, train_lr_grid
from qtrain.training.layerwise import Layerwise
from qtrain.training.optimizers import COUPLING, OPTIMIZERS, check_lrs, check_optimizer, make_optimizer, settings_label
from qtrain.training.steppers import STEPPERS, Qng, Rotosolve, Spsa, StepContext, Stepper

__all__ = ["COUPLING", "OPTIMIZERS", "STEPPERS", "Layerwise", "LrGridResult", "Qng", "Rotosolve", "Spsa", "StepContext", "Stepper", "global_min_of",
           "rescore", "check_lrs", "check_optimizer", "make_optimizer", "settings_label", "train_lr_grid"]
