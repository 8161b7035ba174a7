"""Shared input handling for the peer adapters (no peer library imported here)."""

from __future__ import annotations

import numpy as np


def check_inputs(axes, angles) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """Validate the McClean workload inputs.

    axes: int array (L, n, S) with entries in {0: X, 1: Y, 2: Z};
    angles: float array (S, L*n), layer-major (angles[s, l*n + j]).
    Returns (axes as int64, angles as float64, L, n, S).
    """
    axes = np.asarray(axes).astype(np.int64)
    angles = np.asarray(angles, dtype=np.float64)
    if axes.ndim != 3:
        raise ValueError(f"axes must have shape (L, n, S), got {axes.shape}")
    n_layers, n_qubits, n_samples = axes.shape
    if angles.shape != (n_samples, n_layers * n_qubits):
        raise ValueError(f"angles must have shape (S, L*n) = {(n_samples, n_layers * n_qubits)}, got {angles.shape}")
    if n_qubits < 2:
        raise ValueError("the cost <Z0 Z1> needs at least 2 qubits")
    if axes.min() < 0 or axes.max() > 2:
        raise ValueError("axes entries must be 0 (X), 1 (Y) or 2 (Z)")
    return axes, angles, n_layers, n_qubits, n_samples


def mcclean_gates(n_qubits: int, n_layers: int):
    """The workload's gate sequence, the one every adapter translates into its
    own API: ("ry", j, None) for the fixed R_Y(pi/4) on qubit j, ("rot", j, k)
    for the rotation on qubit j whose angle is angles[:, k] and whose axis is
    axes[layer, j] (k = layer * n + j), ("cz", j, None) for CZ(j, j + 1)."""
    for j in range(n_qubits):
        yield "ry", j, None
    for layer in range(n_layers):
        for j in range(n_qubits):
            yield "rot", j, layer * n_qubits + j
        for j in range(n_qubits - 1):
            yield "cz", j, None


# Pauli matrices in the order of the axis code 0: X, 1: Y, 2: Z.
PAULIS = np.array(
    [
        [[0, 1], [1, 0]],
        [[0, -1j], [1j, 0]],
        [[1, 0], [0, -1]],
    ],
    dtype=np.complex128,
)
