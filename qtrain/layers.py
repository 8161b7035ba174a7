"""`QuantumLayer`: a circuit as a torch module for hybrid models."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from qtrain.circuit import Circuit
from qtrain.engine.conventions import check_complex_dtype, check_diff_method, complex_dtype, real_dtype
from qtrain.engine.observables import Observable
from qtrain.engine.shots import check_seed, check_shots
from qtrain.initializations import CIRCUIT_INITS, INITS, check_init, identity_block_mirrors, initial_angles, resolved_width
from qtrain.noise import NoiseModel

__all__ = ["INITS", "QuantumLayer", "draw_angles"]


def draw_angles(init: str, shape: Sequence[int], generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64, width: float = 0.1) -> torch.Tensor:
    """Random starting angles for the inits that do not read the circuit (`initial_angles` draws every init).

    Args:
        init: "uniform" on [-pi, pi), "small" uniform on [-width, width], or "zeros". "gaussian" and
            "identity_blocks" read the circuit: draw them with `qtrain.initializations.initial_angles`.
        shape: shape of the result, e.g. (B, n_params).
        generator: the source of randomness (torch's default generator when None).
        dtype: real dtype of the result.
        width: half-width in radians of the "small" init.

    Returns:
        Angles in radians, of `shape` and `dtype`, on the CPU.

    Raises:
        ValueError: for an init not in `INITS`, or one that reads the circuit.
    """
    check_init(init)
    if init in CIRCUIT_INITS:
        raise ValueError(f"init={init!r} reads the circuit (its depth, its mirrored blocks): draw it with qtrain.initializations.initial_angles")
    if init == "zeros":
        return torch.zeros(shape, dtype=dtype)
    scale = math.pi if init == "uniform" else width
    return (2 * torch.rand(shape, generator=generator, dtype=dtype) - 1) * scale


class QuantumLayer(nn.Module):
    """Maps (batch, n_inputs) data to (batch, n_observables) expectation values
    ((n_inputs,) to (n_observables,) for one unbatched sample, so that
    `torch.func.vmap` over samples works).

    The circuit's parameters named in `inputs` are fed from the data, column by
    column, in the order given; every other parameter is a trainable weight,
    owned here as one `nn.Parameter` of shape (n_weights,) in the circuit's
    parameter order (`weight_names`).

    Precision follows torch's convention: `dtype` sets the initial one (the
    weights are float32 for complex64, float64 for complex128), and `.double()`,
    `.float()` or `.to(torch.float64)` change it as they change the weights.
    The state is simulated in the complex dtype that matches the weights, and
    the output has the weights' dtype.

    Args:
        circuit: the circuit; its parameters are the data inputs and the weights.
        observables: one output column each (Pauli strings or sums, or their text such as "Z0 Z1").
        inputs: names of the circuit parameters fed from the data, in column order; angles in radians.
        init: the weights' start (`qtrain.initializations`): "uniform" on [-pi, pi) (default), "zeros",
            "small" (uniform on [-init_width, init_width]), "gaussian" (N(0, init_width^2), by default Zhang et
            al.'s width from the circuit's depth and the observables' locality; the depth counts every parameter's
            rotations, the data inputs' too, since they deepen the circuit the weights pass through) or "identity_blocks" (a circuit
            built by `qtrain.builders.identity_blocks`, which starts as the identity; no input may be a
            parameter of a mirrored pair).
        init_width: "small": the half-width in radians (default 0.1); "gaussian": the standard deviation
            (default Zhang et al.'s); unused by the other inits.
        diff_method: "auto" (default) differentiates by the adjoint from 8 qubits on (of the light cone
            that runs), where it is faster and holds one state per chunk instead of every step's, and by
            backprop below, where it is faster (`qtrain.engine.conventions.AUTO_ADJOINT_QUBITS` holds the
            measurement); "backprop" or "adjoint" forces one.
        dtype: complex64 (default) or complex128, the initial simulation precision.
        generator: the source of the weights' random start (torch's default generator when None).
        shots: None (default) for exact expectation values; a positive int to estimate every output from
            that many measurements per group of qubit-wise commuting terms (`Circuit.expval(shots=...)`).
            The gradient is then the parameter-shift estimate with `shots` shots per shifted evaluation
            (`diff_method` is not used), so `loss.backward()` sees the noise hardware would. Shot estimates
            run eagerly: not under `torch.func.vmap` or `torch.compile`. Settable later, e.g.
            `layer.shots = None` for an exact evaluation.
        seed: the shot seed. None (default) draws a fresh one from torch's global generator on every
            forward call, so each training step sees new samples and `torch.manual_seed` makes a run
            repeatable. An int makes every call reuse it: the same inputs and weights give the same
            numbers on each call (common random numbers, e.g. for comparing models), but a training loop
            would then see the same samples at every step. A seed without shots or trajectories is refused.
        noise: a `qtrain.noise.NoiseModel`: every output is the noisy expectation, by the exact density
            matrix (default) or, with `trajectories=T`, the mean of T Monte-Carlo trajectories per row,
            drawn from `seed` as shots are (`Circuit.expval(noise=...)`). Gradients: autograd through
            the density matrix; per trajectory for Pauli channels.
        trajectories: trajectories per row with `noise`; None for the exact density matrix.
    """

    order: torch.Tensor  # buffer (n_params,) long: column of cat([inputs, weights]) for each circuit parameter

    def __init__(
        self,
        circuit: Circuit,
        observables: Sequence[Observable],
        inputs: Sequence[str] = (),
        *,
        init: str = "uniform",
        init_width: float | None = None,
        diff_method: str = "auto",
        dtype: torch.dtype = torch.complex64,
        generator: torch.Generator | None = None,
        shots: int | None = None,
        seed: int | None = None,
        noise: NoiseModel | None = None,
        trajectories: int | None = None,
    ) -> None:
        super().__init__()
        self.shots, self.seed = shots, seed  # checked by the setters, before any work
        self.noise, self.trajectories = noise, trajectories
        if self.shots is None and trajectories is None and seed is not None:  # as Circuit.expval: a seed alone would silently do nothing
            raise ValueError(f"seed={seed!r} seeds shot sampling, but shots is None (exact values); pass shots too (or noise with trajectories)")
        if isinstance(observables, (str, bytes)) or not len(observables):
            raise ValueError(f"observables must be a non-empty list, got {observables!r}")
        missing = [name for name in inputs if name not in circuit.parameters]
        if missing:
            raise ValueError(f"inputs {missing} are not parameters of the circuit; its parameters are {circuit.parameters}")
        if len(set(inputs)) != len(inputs):
            raise ValueError(f"inputs repeat a name: {list(inputs)}")
        check_init(init)
        width = resolved_width(circuit, init, init_width, list(observables))  # gaussian reads the observables' locality now
        if init == "identity_blocks":
            paired = {circuit.parameters[i] for pair in identity_block_mirrors(circuit).items() for i in pair}
            fed = sorted(paired.intersection(inputs))
            if fed:
                raise ValueError(f"init='identity_blocks': input {fed[0]!r} is a parameter of a mirrored pair, so data would break the "
                                 "identity the init starts from; feed data through parameters outside the blocks")
        check_complex_dtype(dtype)
        check_diff_method(diff_method)
        self.circuit = circuit
        self.observables = list(observables)
        if noise is not None and trajectories is not None and not noise.pauli_only:
            raise ValueError("trajectories with amplitude damping give values only (its jumps depend on the state), and a layer trains on "
                             "gradients; pass trajectories=None for the exact density matrix")
        if noise is not None and diff_method == "adjoint":
            raise ValueError("diff_method='adjoint' does not apply under noise: the density method differentiates by autograd, "
                             "trajectories by each trajectory's adjoint; leave diff_method='auto'")
        # validate once, early: the observables, and the noise settings with them
        noisy = {} if noise is None and trajectories is None else {"noise": noise, "trajectories": trajectories, "shots": shots,
                                                                   "seed": 0 if trajectories or shots else None}
        with torch.no_grad():
            circuit.expval(None if not circuit.n_params else torch.zeros(circuit.n_params), self.observables, **noisy)
        self.input_names = tuple(inputs)
        self.weight_names = tuple(p for p in circuit.parameters if p not in inputs)
        self.init, self.init_width = init, width  # the width the init draws with (its default resolved)
        self.diff_method = diff_method
        self.weight = nn.Parameter(torch.empty(len(self.weight_names), dtype=real_dtype(dtype)))
        # theta = cat([inputs, weights])[:, order]: `order` places each column at its parameter index.
        position = {name: i for i, name in enumerate(self.input_names + self.weight_names)}
        self.register_buffer("order", torch.tensor([position[p] for p in circuit.parameters], dtype=torch.long), persistent=False)
        self.reset_parameters(generator)

    @property
    def shots(self) -> int | None:
        """Measurements per group of commuting terms and evaluation, or None for exact values."""
        return self._shots

    @shots.setter
    def shots(self, shots: int | None) -> None:
        self._shots = check_shots(shots)

    @property
    def seed(self) -> int | None:
        """The shot seed reused by every call, or None for a fresh one per call."""
        return self._seed

    @seed.setter
    def seed(self, seed: int | None) -> None:
        self._seed = None if seed is None else check_seed(seed)

    @property
    def dtype(self) -> torch.dtype:
        """The complex dtype the layer simulates in: the one matching its weights."""
        return complex_dtype(self.weight.dtype)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        with torch.no_grad():
            self.weight.copy_(self.draw_weights(self.weight.shape, generator, self.weight.dtype))

    def draw_weights(self, shape: Sequence[int], generator: torch.Generator | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Weights drawn from this layer's init, any shape (e.g. (S, n_weights)
        for S random restarts), in `dtype` (default: the weights')."""
        dtype = dtype or self.weight.dtype
        if self.init not in CIRCUIT_INITS:
            return draw_angles(self.init, shape, generator, dtype, self.init_width)
        shape = tuple(shape)
        if not shape or shape[-1] != len(self.weight_names):
            raise ValueError(f"shape must end in the number of weights, {len(self.weight_names)}, got {shape}")
        full = initial_angles(self.circuit, self.init, shape[:-1], generator, dtype, self.init_width, self.observables)
        return full[..., [self.circuit.parameters.index(name) for name in self.weight_names]]

    def forward(self, x: torch.Tensor | None = None, theta: torch.Tensor | None = None) -> torch.Tensor:
        """x: (batch, n_inputs) data, or (n_inputs,) for one sample; theta:
        optional weights, (n_weights,) or (B, n_weights), used instead of the
        layer's own (for landscapes)."""
        weights = self.weight if theta is None else theta
        if weights.shape[-1] != len(self.weight_names) or weights.dim() not in (1, 2):
            raise ValueError(f"theta has shape {tuple(weights.shape)}; expected ({len(self.weight_names)},) or (B, {len(self.weight_names)})")
        weights = weights.to(self.weight.dtype).reshape(-1, len(self.weight_names))
        single = x is not None and x.dim() == 1
        if self.input_names:
            if x is None or x.dim() not in (1, 2) or x.shape[-1] != len(self.input_names):
                got = None if x is None else tuple(x.shape)
                raise ValueError(f"x must have shape (batch, {len(self.input_names)}) or ({len(self.input_names)},) for inputs {self.input_names}, got {got}")
            x = x.to(self.weight.dtype).reshape(-1, len(self.input_names))
            batch = max(x.shape[0], weights.shape[0])
            columns = torch.cat([x.expand(batch, -1), weights.expand(batch, -1)], dim=1)
        else:
            if x is not None:
                raise ValueError("this layer has no inputs, but x was given")
            columns = weights
        full = columns[:, self.order]
        if self.noise is not None:  # shots are then measured on the noisy density matrix
            seed = check_seed(self.seed) if self.trajectories is not None or self.shots is not None else None
            out = self.circuit.expval(full, self.observables, dtype=self.dtype, noise=self.noise, trajectories=self.trajectories, seed=seed, shots=self.shots)
        elif self.shots is None:
            out = self.circuit.expval(full, self.observables, dtype=self.dtype, diff_method=self.diff_method)
        else:
            # check_seed(None) draws from torch's global generator: a new seed per call, repeatable under torch.manual_seed
            seed = check_seed(self.seed)
            out = self.circuit.expval(full, self.observables, dtype=self.dtype, shots=self.shots, seed=seed)
        return out[0] if single and theta is None else out

    def extra_repr(self) -> str:
        shots = f", shots={self.shots}, seed={self.seed}" if self.shots is not None else ""
        noise = "" if self.noise is None else f", noise=({self.noise.describe()})" + (f", trajectories={self.trajectories}" if self.trajectories else "")
        return f"n_qubits={self.circuit.n_qubits}, inputs={self.input_names}, weights={len(self.weight_names)}, observables={self.observables}{shots}{noise}"
