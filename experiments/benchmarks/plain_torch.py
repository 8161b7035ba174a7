"""The plain batched torch autograd simulation the benchmarks compare qtrain with.

Its own module (not training.py, which imports Lightning through
qtrain.training) so that many_starts.py can import it where Lightning is
missing or cannot import.
"""

from __future__ import annotations

import torch


def plain_state(circuit, theta: torch.Tensor) -> torch.Tensor:
    """The circuit by einsum, one gate at a time, autograd through all of it:
    (B, 2**n) complex64, for n <= 8 qubits (its einsum letters)."""
    batch, n = theta.shape[0], circuit.n_qubits
    state = torch.zeros(batch, *([2] * n), dtype=torch.complex64, device=theta.device)
    state[(slice(None),) + (0,) * n] = 1
    letters = "abcdefgh"[:n]
    for op in circuit.ops:
        if op.name in ("cnot", "cz"):
            c, t = op.qubits
            matrix = torch.eye(4, dtype=torch.complex64, device=theta.device)
            if op.name == "cnot":
                matrix = matrix[[0, 1, 3, 2]]
            else:
                matrix[3, 3] = -1
            out = letters.replace(letters[c], "X").replace(letters[t], "Y")
            state = torch.einsum(f"XYij,z{letters}->z{out}".replace("ij", letters[c] + letters[t]), matrix.reshape(2, 2, 2, 2), state)
            continue
        angle = theta[:, op.param] if op.param is not None else torch.full((batch,), op.angle, device=theta.device)
        cos, sin = torch.cos(angle / 2).to(torch.complex64), torch.sin(angle / 2).to(torch.complex64)
        axis = op.name[1]
        if axis == "x":
            u = torch.stack([torch.stack([cos, -1j * sin], -1), torch.stack([-1j * sin, cos], -1)], -2)
        elif axis == "y":
            u = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
        else:
            u = torch.stack([torch.stack([cos - 1j * sin, torch.zeros_like(cos)], -1), torch.stack([torch.zeros_like(cos), cos + 1j * sin], -1)], -2)
        q = op.qubits[0]
        out = letters.replace(letters[q], "X")
        state = torch.einsum(f"zX{letters[q]},z{letters}->z{out}", u, state)
    return state.reshape(batch, -1)
