"""torchquantum adapter (torchquantum-ng): batched statevector in PyTorch, complex64, autograd.

All S circuits run as one batch on a tq.QuantumDevice(bsz=S). The rotation
axis differs per circuit, so each rotation is applied as a batch of 2x2
unitaries cos(theta/2) I - i sin(theta/2) P_s with torchquantum's
``qubitunitaryfast`` (one bmm per gate); the gradient is torch autograd.
The expectation <Z0 Z1> is read off the batched state (qubit 0 is tensor
axis 1, torchquantum's most significant bit).

torchquantum is imported through `qtrain.interop.import_torchquantum`, which
steps past its torchvision-dependent dataset subpackage.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import PAULIS, check_inputs, mcclean_gates


def _tq():
    """(torchquantum, torchquantum.functional), through qtrain's interop import
    (it steps past the torchvision that cannot load beside a CPU torch)."""
    from qtrain.interop.torchquantum import import_torchquantum

    return import_torchquantum()


class TorchQuantumPeer:
    name = "torchquantum"
    mode = (
        "torchquantum-ng, batched statevector (bsz=S) in torch, complex64, per-circuit-axis rotations as "
        "batched qubitunitaryfast; torch autograd (backprop); (a) only theta_00 requires grad, (b) all angles"
    )

    @staticmethod
    def available() -> bool:
        try:
            _tq()
            return True
        except Exception:
            return False

    def __init__(self, axes, angles):
        import torch

        tq, tqf = _tq()
        self._tq, self._tqf = tq, tqf
        axes, angles, n_layers, n, n_samples = check_inputs(axes, angles)
        self.n_qubits, self.n_layers, self.n_samples = n, n_layers, n_samples
        n_params = n * n_layers
        # generator P for each circuit and angle: (S, L*n, 2, 2), layer-major like angles
        gens = PAULIS[axes.transpose(2, 0, 1).reshape(n_samples, n_params)]
        self.gens = torch.tensor(gens, dtype=torch.complex64)
        self.angles = torch.tensor(angles, dtype=torch.float32)
        self.eye = torch.eye(2, dtype=torch.complex64)
        c, s = math.cos(math.pi / 8), math.sin(math.pi / 8)
        self.ry_pi4 = torch.tensor([[c, -s], [s, c]], dtype=torch.complex64)
        # sign of Z0 Z1 on the (S, 2, 2, 2**(n-2)) view of the state
        self.zz = torch.tensor([[1.0, -1.0], [-1.0, 1.0]], dtype=torch.float32)[:, :, None]

    def _energy(self, theta):
        """theta: (S, L*n) float32 (may require grad) -> (S,) <Z0 Z1>."""
        import torch

        tq, tqf = self._tq, self._tqf
        n, n_samples = self.n_qubits, self.n_samples
        half = (theta / 2)[:, :, None, None]
        mats = torch.cos(half) * self.eye - 1j * torch.sin(half) * self.gens  # (S, L*n, 2, 2) complex64
        qdev = tq.QuantumDevice(n_wires=n, bsz=n_samples, device="cpu")
        for kind, j, k in mcclean_gates(n, self.n_layers):
            if kind == "ry":
                tqf.qubitunitaryfast(qdev, wires=j, params=self.ry_pi4)
            elif kind == "rot":
                tqf.qubitunitaryfast(qdev, wires=j, params=mats[:, k])
            else:
                tqf.cz(qdev, wires=[j, j + 1])
        probs = qdev.get_states_1d().abs().square().reshape(n_samples, 2, 2, -1)
        return (probs * self.zz).sum(dim=(1, 2, 3))

    def grad_first(self) -> np.ndarray:
        import torch

        theta0 = self.angles[:, :1].clone().requires_grad_(True)
        theta = torch.cat([theta0, self.angles[:, 1:]], dim=1)
        (grad,) = torch.autograd.grad(self._energy(theta).sum(), theta0)
        return grad.reshape(-1).numpy().astype(np.float64)

    def grad_all(self) -> np.ndarray:
        import torch

        theta = self.angles.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(self._energy(theta).sum(), theta)
        return grad.numpy().astype(np.float64)
