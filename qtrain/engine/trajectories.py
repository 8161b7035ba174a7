"""Monte-Carlo trajectories: noise channels as steps on a batch of pure states.

A trajectory replaces each channel by one of its Kraus operators, drawn per
row. For a Pauli channel the draw does not depend on the state (p_I, p_X,
p_Y, p_Z are fixed), so it is made before the run: a "pauli" step holding
each row's choice. Amplitude damping's draw depends on the state (the jump K1
has probability g * P(qubit = 1)), so it is a step kind of its own, "jump",
applied during the run with a uniform number per row; it has no adjoint
(trajectories with amplitude damping give values only).

Pauli frames (`propagate_frames`). Most rows of a step draw the identity,
and a drawn Pauli need not be applied where it was drawn: moved later in
time, it flips the sign of each rotation exp(-i theta G / 2) it anticommutes
with (P R(theta) = R(-theta) P) and is conjugated by each Clifford gate (CZ,
CNOT, H, S). So each row carries a Pauli frame (x and z bits per qubit) to the
end, the rotations get per-row angle signs, and the frame multiplies each
Pauli term of the observable by +-1. The run is then the noiseless circuit at
per-row angles: the same fused layers and passes as without noise, instead of
a per-row step (and a broken layer) after every gate. A frame is applied as
"pauli" steps only where it cannot move on: before a non-Clifford constant
gate, before an amplitude-damping jump on its qubit, and at the end for a cost
that is not a Pauli sum.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from qtrain.engine.gates import PAULI_MATRICES
from qtrain.engine.kernels import Scratch, apply_matrix
from qtrain.engine.observables import PauliSum
from qtrain.engine.program import Program, Step
from qtrain.engine.step_kinds import STEP_RULES, StepRule, register_step_kind

__all__ = ["JUMP", "PAULI", "PauliFrame", "frame_signs", "jump_step", "pauli_choices", "pauli_step", "propagate_frames"]

#: The step kind of an amplitude-damping jump.
JUMP = "jump"
#: The step kind of a per-row Pauli (I, X, Y or Z by row) on one qubit.
PAULI = "pauli"

_PAULIS = torch.tensor([PAULI_MATRICES[p] for p in ("I", "X", "Y", "Z")], dtype=torch.complex128)


def pauli_choices(probabilities: tuple[float, float, float, float], uniforms: torch.Tensor) -> torch.Tensor:
    """Per row, 0..3 for I, X, Y, Z: the Pauli whose cumulative probability interval holds the row's uniform."""
    edges = torch.tensor(probabilities, dtype=torch.float64).cumsum(0)[:-1]
    return torch.bucketize(uniforms, edges, right=True)


def pauli_step(qubit: int, choices: torch.Tensor) -> Step:
    """A per-row step applying Pauli `choices[row]` (0..3 for I, X, Y, Z) to `qubit`."""
    return Step(PAULI, (qubit,), choices.to(torch.long))


def jump_step(qubit: int, uniforms: torch.Tensor, gamma: float) -> Step:
    """An amplitude-damping step on `qubit` with rate `gamma`: row r jumps (K1 = sqrt(g)|0><1|) when
    uniforms[r] < g P_r(qubit = 1), else takes K0 = diag(1, sqrt(1 - g)); then the state is renormalized."""
    tensor = torch.stack([uniforms.to(torch.float64), torch.full_like(uniforms, gamma, dtype=torch.float64)], dim=1)
    return Step(JUMP, (qubit,), tensor)


def _jump_operator(program: Program, step: Step, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return program.cached(("jump", id(step), device), lambda: step.tensor.to(device))


def _apply_jump(state: torch.Tensor, step: Step, operator: torch.Tensor, scratch: Scratch | None = None) -> torch.Tensor:
    q, n = step.qubits[0], state.dim() - 1
    view = state.reshape(state.shape[0], 2**q, 2, 2 ** (n - q - 1))
    real = state.real.dtype
    uniform, gamma = operator[:, 0].to(real), operator[:, 1].to(real)
    zero, one = view[:, :, 0], view[:, :, 1]
    excited = one.abs().square().sum(dim=(1, 2)) / view.abs().square().sum(dim=(1, 2, 3))
    p_jump = gamma * excited
    jump = (uniform < p_jump)[:, None, None]
    new_zero = torch.where(jump, one * gamma.sqrt()[:, None, None], zero)
    new_one = torch.where(jump, torch.zeros_like(one), one * (1 - gamma).sqrt()[:, None, None])
    norm = torch.where(jump[:, 0, 0], p_jump, 1 - p_jump).clamp_min(torch.finfo(real).tiny).sqrt()
    return (torch.stack([new_zero, new_one], dim=2) / norm[:, None, None, None].to(state.dtype)).reshape(state.shape)


def _no_undo(program: Program, step: Step, operator: torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    raise ValueError("an amplitude-damping jump has no adjoint: trajectories with amplitude damping give values only; "
                     "use method='density' for gradients")


def _pauli_operator(program: Program, step: Step, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return program.cached(("pauli", id(step), device), lambda: step.tensor.to(device))


def _apply_pauli(state: torch.Tensor, step: Step, operator: torch.Tensor, scratch: Scratch | None = None) -> torch.Tensor:
    return apply_matrix(state, _PAULIS.to(dtype=state.dtype, device=state.device)[operator], step.qubits)


def _undo_pauli(program: Program, step: Step, operator: torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.cat([operator, operator])  # every Pauli is its own inverse; the same rows for psi and lambda


if JUMP not in STEP_RULES:  # registered once per process (a reload of this module must not register it twice)
    register_step_kind(JUMP, StepRule(_jump_operator, _apply_jump, _no_undo))
    register_step_kind(PAULI, StepRule(_pauli_operator, _apply_pauli, _undo_pauli))


# ---- Pauli frames ----------------------------------------------------------------------------------

_CODES = {(0, 0): "I", (1, 0): "X", (1, 1): "Y", (0, 1): "Z"}


@dataclass
class PauliFrame:
    """Per row, the Pauli still to be applied: x and z bits per qubit, (rows, n) bool (Y is x and z)."""

    x: torch.Tensor
    z: torch.Tensor

    @classmethod
    def identity(cls, rows: int, n_qubits: int) -> PauliFrame:
        return cls(torch.zeros(rows, n_qubits, dtype=torch.bool), torch.zeros(rows, n_qubits, dtype=torch.bool))

    def add(self, qubit: int, choices: torch.Tensor) -> None:
        """Multiply Pauli `choices` (0..3: I, X, Y, Z per row) onto `qubit` (phases do not matter: a row's global phase)."""
        self.x[:, qubit] ^= (choices == 1) | (choices == 2)
        self.z[:, qubit] ^= (choices == 2) | (choices == 3)

    def choices(self, qubit: int) -> torch.Tensor:
        """The frame on `qubit` as choices 0..3 per row."""
        x, z = self.x[:, qubit].long(), self.z[:, qubit].long()
        return x * (1 + z) + (1 - x) * 3 * z  # (0,0)->0, (1,0)->1, (1,1)->2, (0,1)->3

    def take(self, qubits: Sequence[int]) -> list[Step]:
        """The frame on `qubits` as pauli steps (none where every row has the identity), reset to the identity there."""
        steps = []
        for q in qubits:
            choices = self.choices(q)
            if bool(choices.any()):
                steps.append(pauli_step(q, choices))
            self.x[:, q] = False
            self.z[:, q] = False
        return steps


def _pauli_code(matrix: torch.Tensor) -> tuple[int, int] | None:
    """(x, z) of a 2x2 matrix proportional to a Pauli, or None."""
    for (x, z), name in _CODES.items():
        p = _PAULIS[["I", "X", "Y", "Z"].index(name)]
        overlap = (p.conj() * matrix).sum()
        if torch.allclose(matrix, overlap / 2 * p, atol=1e-12) and abs(overlap) > 1e-12:
            return x, z
    return None


@functools.lru_cache(maxsize=256)
def _clifford_table(rows: tuple[tuple[complex, ...], ...]) -> tuple[tuple[int, int], ...] | None:
    """For a constant gate M on k qubits (its matrix rows), the image of each Pauli code under P -> M P M^dagger,
    as (x bits, z bits) per input code (x, z as k-bit numbers, qubit 0 the most significant); None if M is not Clifford."""
    m = torch.tensor(rows, dtype=torch.complex128)
    k = m.shape[0].bit_length() - 1
    paulis = {}
    for code in range(4**k):
        x, z = code >> k, code & (2**k - 1)
        p = torch.ones(1, 1, dtype=torch.complex128)
        for j in range(k):
            bit = k - 1 - j
            p = torch.kron(p, _PAULIS[["I", "X", "Y", "Z"].index(_CODES[((x >> bit) & 1, (z >> bit) & 1)])])
        paulis[(x, z)] = p
    table = []
    for (x, z), p in paulis.items():
        image = m @ p @ m.conj().T
        found = None
        for key, q in paulis.items():
            overlap = (q.conj() * image).sum() / 2**k
            if abs(abs(overlap) - 1) < 1e-9 and torch.allclose(image, overlap * q, atol=1e-9):
                found = key
                break
        if found is None:
            return None
        table.append(found)
    return tuple(table)


def propagate_frames(steps: Sequence[Step], n_qubits: int, rows: int, keep_frame: bool) -> tuple[list[Step], torch.Tensor, PauliFrame]:
    """Move every pauli step of `steps` (unfused, as lowered) to the end of the run as a per-row Pauli frame:
    -> the steps without them (pauli steps left only where a frame cannot pass), per-row signs (rows, n_slots)
    of the rotation angles, and the final frame (applied as pauli steps at the end when not `keep_frame`)."""
    frame = PauliFrame.identity(rows, n_qubits)
    n_slots = 1 + max((st.slot for st in steps if st.kind == "rotation"), default=-1)
    signs = torch.ones(rows, n_slots, dtype=torch.float64)
    out: list[Step] = []
    for step in steps:
        if step.kind == PAULI:
            frame.add(step.qubits[0], step.tensor)
            continue
        if step.kind == "rotation" and step.batch == 1:
            generator = torch.diag_embed(step.tensor[0]) if step.diagonal else step.tensor[0]
            code = _pauli_code(generator.to(torch.complex128))
            if code is not None:
                q = step.qubits[0]
                gx, gz = code
                anticommutes = (frame.x[:, q] & bool(gz)) ^ (frame.z[:, q] & bool(gx))
                signs[:, step.slot] = 1 - 2 * anticommutes.double()
                out.append(step)
                continue
        if step.kind == "fixed" and step.batch == 1 and not step.tensor.requires_grad:
            matrix = torch.diag_embed(step.tensor[0]) if step.diagonal else step.tensor[0]
            table = _clifford_table(tuple(tuple(complex(v) for v in r) for r in matrix.to(torch.complex128).tolist()))
            if table is not None:
                _conjugate(frame, step.qubits, table)
                out.append(step)
                continue
        out.extend(frame.take(step.qubits))  # the frame cannot pass this step: apply it on the step's qubits first
        out.append(step)
    if not keep_frame:
        out.extend(frame.take(range(n_qubits)))
    return out, signs, frame


def _conjugate(frame: PauliFrame, qubits: tuple[int, ...], table: tuple[tuple[int, int], ...]) -> None:
    k = len(qubits)
    x = torch.zeros(frame.x.shape[0], dtype=torch.long)
    z = torch.zeros_like(x)
    for j, q in enumerate(qubits):
        x = x | (frame.x[:, q].long() << (k - 1 - j))
        z = z | (frame.z[:, q].long() << (k - 1 - j))
    lookup = torch.tensor(table, dtype=torch.long)  # (4^k, 2): image (x, z) of each input code x * 2^k + z
    image = lookup[x * 2**k + z]
    for j, q in enumerate(qubits):
        frame.x[:, q] = ((image[:, 0] >> (k - 1 - j)) & 1).bool()
        frame.z[:, q] = ((image[:, 1] >> (k - 1 - j)) & 1).bool()


def frame_signs(frame: PauliFrame, pauli_sum: PauliSum) -> torch.Tensor:
    """(rows, terms): +-1 for F^dagger T F = +-T, each term T of `pauli_sum` under each row's frame F."""
    out = torch.ones(frame.x.shape[0], len(pauli_sum.terms), dtype=torch.float64)
    for t, term in enumerate(pauli_sum.terms):
        parity = torch.zeros(frame.x.shape[0], dtype=torch.bool)
        for q, p in term.paulis:
            tx, tz = p in ("X", "Y"), p in ("Z", "Y")
            parity ^= (frame.x[:, q] & tz) ^ (frame.z[:, q] & tx)
        out[:, t] = 1 - 2 * parity.double()
    return out
