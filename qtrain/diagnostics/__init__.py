"""Diagnostics for any circuit or model: is it on a plateau, and does every
parameter matter?

    from qtrain.diagnostics import gradient_variance, redundant_parameters
    stats = gradient_variance(model, cost="global", samples=500)
    r = redundant_parameters(circuit)          # r.n_effective, r.redundant
    expressibility(circuit), entangling_capability(circuit)   # Sim et al. 2019
    alg = lie_algebra(circuit); predict_variance(circuit, "Z0")  # the plateau from the Lie algebra
"""

from qtrain.diagnostics.gradients import (
    QUANTILES,
    STATES_PER_SAMPLE,
    GradientStats,
    evaluate,
    gradient_samples,
    gradient_variance,
    locality_costs,
    resolve_cost,
    summarize,
)
from qtrain.diagnostics.expressibility import entangling_capability, expressibility, haar_bin_probabilities
from qtrain.diagnostics.lie import LieAlgebra, lie_algebra, predict_variance
from qtrain.diagnostics.redundancy import Redundancy, redundant_parameters, warn_if_redundant

__all__ = [
    "QUANTILES",
    "STATES_PER_SAMPLE",
    "GradientStats",
    "LieAlgebra",
    "Redundancy",
    "entangling_capability",
    "evaluate",
    "expressibility",
    "gradient_samples",
    "gradient_variance",
    "haar_bin_probabilities",
    "lie_algebra",
    "locality_costs",
    "predict_variance",
    "redundant_parameters",
    "resolve_cost",
    "summarize",
    "warn_if_redundant",
]
