"""What a program's plan does to the state, in numbers: passes and bytes moved.

The plan (fused layers, permutation passes, diagonal runs, block widths,
chunks) is the engine's business and changes as the engine improves; this
summary is the small public view of it that benchmarks and users can rely on
(`Circuit.plan_summary`), e.g. to turn a measured time into achieved memory
bandwidth, or to see what fusion made of a circuit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from qtrain.engine.adjoint import first_rotation
from qtrain.engine.fusion import Layer
from qtrain.engine.program import Program, StepKind
from qtrain.engine.run import product_prefix, run_widths, sample_chunks

__all__ = ["PlanSummary", "summarize"]


@dataclass(frozen=True)
class PlanSummary:
    """One plan for `batch` samples in `dtype`.

    A pass reads and writes the state once: one block of a fused layer, one
    permutation (a gather), one diagonal run, or one gate left on its own.
    The leading one-qubit gates cost no pass (they build a product state).
    The adjoint's reverse sweep undoes two states (psi and lambda) per pass and
    reads both once more per block or rotation that holds a gradient."""

    n_qubits: int
    batch: int
    dtype: torch.dtype
    gates: int  #: gates in the program (after the light cone, if one was applied)
    layers: int  #: fused one-qubit layers
    permutations: int  #: permutation passes (runs of CNOT / SWAP / X / CZ composed)
    single_steps: int  #: other passes: diagonal runs, multi-qubit gates, lone gates
    block_widths: tuple[int, ...]  #: qubits per block of a fused layer
    chunk_samples: int  #: samples per chunk the engine runs at a time
    forward_passes: int  #: passes of one forward run
    reverse_passes: int  #: passes of the adjoint's reverse sweep (each on psi and lambda)
    overlap_reads: int  #: reads of both states for gradients in the reverse sweep

    @property
    def state_bytes(self) -> int:
        """Bytes of the whole batch of states."""
        return self.batch * 2**self.n_qubits * self.dtype.itemsize

    @property
    def forward_bytes(self) -> int:
        """Bytes of state read and written by one forward run."""
        return 2 * self.forward_passes * self.state_bytes

    @property
    def value_and_grad_bytes(self) -> int:
        """Bytes of state read and written by an adjoint value and gradient:
        the forward run, the reverse sweep on two states, its overlap reads."""
        return self.forward_bytes + (4 * self.reverse_passes + 2 * self.overlap_reads) * self.state_bytes

    def __str__(self) -> str:
        return (
            f"{self.gates} gates on {self.n_qubits} qubits -> {self.forward_passes} passes per run "
            f"({self.layers} fused layers of blocks {self.block_widths}, {self.permutations} permutations, "
            f"{self.single_steps} other); batch {self.batch} in chunks of {self.chunk_samples}; "
            f"{self.forward_bytes / 2**20:.3g} MiB moved per run, {self.value_and_grad_bytes / 2**20:.3g} MiB per value and gradient"
        )


def summarize(program: Program, batch: int, dtype: torch.dtype, per_sample: bool, device: torch.device | str = "cpu") -> PlanSummary:
    """The `PlanSummary` of running `program` on `batch` samples; `per_sample`:
    whether the angles differ between samples (it sets the block widths)."""
    device = torch.device(device)
    sample_bytes = 2**program.n_qubits * dtype.itemsize
    chunk = sample_chunks(batch, sample_bytes, device)[0]
    samples = chunk.stop - chunk.start
    widths = run_widths(program, samples, dtype, per_sample)

    def passes(items: Iterable[int | Layer]) -> int:
        return sum(len(widths) if isinstance(item, Layer) else 1 for item in items)

    start = first_rotation(program)
    reads = 0
    for item in program.plan[start:]:
        if isinstance(item, Layer):
            reads += len(widths)  # at most: blocks without rotations read nothing
        elif program.steps[item].kind == StepKind.ROTATION:
            reads += 1
    steps = [item for item in program.plan if not isinstance(item, Layer)]
    permutations = sum(program.steps[i].kind == StepKind.PERMUTATION for i in steps)
    return PlanSummary(
        n_qubits=program.n_qubits,
        batch=batch,
        dtype=dtype,
        gates=len(program.steps) if program.n_gates is None else program.n_gates,
        layers=len(program.plan) - len(steps),
        permutations=permutations,
        single_steps=len(steps) - permutations,
        block_widths=widths,
        chunk_samples=samples,
        forward_passes=passes(program.plan[product_prefix(program) :]),
        reverse_passes=passes(program.plan[start:]),
        overlap_reads=reads,
    )
