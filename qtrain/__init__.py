"""qtrain: train parameterized quantum circuits and study why they fail to train.

`import qtrain` loads only torch and numpy: Lightning, Hydra and the optional
cross-check simulators are imported by the modules that need them.
"""

from qtrain.circuit import Circuit, Op
from qtrain.engine.observables import PauliString, PauliSum
from qtrain.layers import QuantumLayer

__version__ = "0.1.0"

__all__ = ["Circuit", "Op", "PauliString", "PauliSum", "QuantumLayer", "__version__"]
