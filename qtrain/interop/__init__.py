"""Circuits in and out of the tools people write them in: torchquantum,
PennyLane and OpenQASM.

Nothing here is imported by `import qtrain`, and each converter imports its
peer only when called (the peers come with the `interop` extra), so qtrain
itself still loads only torch and numpy. The two importers of differentiable
circuits (torchquantum, PennyLane) read angles with one structural tracer,
`qtrain.interop._tracing`, and name parameters one way: the source's name and
the element's own index (`w[0]`, `weights[0,1,2]`, `q_layer.u3_0.params[0,1]`).
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it
_WHERE = {
    "from_torchquantum": "qtrain.interop.torchquantum",
    "to_torchquantum": "qtrain.interop.torchquantum",
    "import_torchquantum": "qtrain.interop.torchquantum",
    "theta_from_torchquantum": "qtrain.interop.torchquantum",
    "from_pennylane": "qtrain.interop.pennylane",
    "to_pennylane": "qtrain.interop.pennylane",
    "from_qasm": "qtrain.interop.qasm",
    "to_qasm": "qtrain.interop.qasm",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'qtrain.interop' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
