"""tensorcircuit-ng adapter: PyTorch backend, complex64, vmap over the S circuits.

The S circuits differ in their rotation axes, so the circuit is written with
the axis as data: each rotation is the 2x2 unitary
cos(theta/2) I - i sin(theta/2) (a_X X + a_Y Y + a_Z Z) with a one-hot axis a,
applied with ``Circuit.any``. The per-circuit cost function is vectorized over
(angles, axes) and differentiated with the backend's vectorized_value_and_grad
(torch.func.vmap of torch.func.grad_and_value). tensorcircuit's ``jit`` is a
no-op on the PyTorch backend; its ``jit_compile=True`` (torch.compile) gave no
speed-up here, so it is not used.
tensorcircuit's qubit 0 is the most significant bit; the workload's qubit j is
its qubit j.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import PAULIS, check_inputs, mcclean_gates


def _tc():
    import tensorcircuit as tc

    return tc


def _use_torch_backend(tc):
    tc.set_backend("pytorch")
    tc.set_dtype("complex64")


class TensorCircuitPeer:
    name = "tensorcircuit"
    mode = (
        "tensorcircuit-ng, pytorch backend, complex64, greedy tensor-network contraction; "
        "K.vvag (torch.func vmap over the S circuits of grad_and_value), no jit (no-op on torch); "
        "(a) gradient w.r.t. theta_00 only, (b) w.r.t. all n*L angles"
    )

    @staticmethod
    def available() -> bool:
        try:
            _tc()
            import torch  # noqa: F401

            return True
        except Exception:
            return False

    def __init__(self, axes, angles):
        import torch

        tc = _tc()
        _use_torch_backend(tc)
        self._tc = tc
        axes, angles, n_layers, n, n_samples = check_inputs(axes, angles)
        self.n_qubits, self.n_layers, self.n_samples = n, n_layers, n_samples
        n_params = n * n_layers
        # one-hot axis per circuit and angle: (S, L*n, 3), same layer-major order as angles
        onehot = np.eye(3)[axes.transpose(2, 0, 1).reshape(n_samples, n_params)]
        self.onehot = torch.tensor(onehot, dtype=torch.complex64)
        self.angles = torch.tensor(angles, dtype=torch.float32)
        paulis = torch.tensor(PAULIS, dtype=torch.complex64)  # (3, 2, 2)
        eye = torch.eye(2, dtype=torch.complex64)
        K = tc.backend

        def energy(theta, onehot):
            # theta: (L*n,) float32, onehot: (L*n, 3) for one circuit
            half = theta / 2
            gen = torch.einsum("ka,aij->kij", onehot, paulis)
            mats = torch.cos(half).to(torch.complex64)[:, None, None] * eye - 1j * torch.sin(half).to(torch.complex64)[:, None, None] * gen
            c = tc.Circuit(n)
            for kind, j, k in mcclean_gates(n, n_layers):
                if kind == "ry":
                    c.ry(j, theta=math.pi / 4)
                elif kind == "rot":
                    c.any(j, unitary=mats[k])
                else:
                    c.cz(j, j + 1)
            return K.real(c.expectation_ps(z=[0, 1]))

        def energy_first(theta0, rest, onehot):
            return energy(torch.cat([theta0.reshape(1), rest]), onehot)

        self._vag_all = K.vvag(energy, argnums=0, vectorized_argnums=(0, 1))
        self._vag_first = K.vvag(energy_first, argnums=0, vectorized_argnums=(0, 1, 2))
        self._theta0 = self.angles[:, 0].contiguous()
        self._rest = self.angles[:, 1:].contiguous()

    def grad_first(self) -> np.ndarray:
        _use_torch_backend(self._tc)  # cheap; guards against another caller switching tc's global backend
        _, g = self._vag_first(self._theta0, self._rest, self.onehot)
        return g.detach().numpy().astype(np.float64).reshape(self.n_samples)

    def grad_all(self) -> np.ndarray:
        _use_torch_backend(self._tc)
        _, g = self._vag_all(self.angles, self.onehot)
        return g.detach().numpy().astype(np.float64)
