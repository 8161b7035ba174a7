"""Reading a large OpenQASM 2 file: qtrain's fast reader against Qiskit's `qasm2.loads`.

    python -m experiments.benchmarks.qasm_read                    # 200,000 gates on 10 qubits
    python -m experiments.benchmarks.qasm_read --gates 20000 --reference
    python -m experiments.benchmarks.qasm_read --file hhl_n10.qasm

The file is generated from a seeded random gate list shaped like QASMBench's
hhl_n10 (186,795 gates: mostly u3/u1/cx/cu1 with angles as decimals and pi
expressions), so every run reads the same text. Both readers run in this one
process, interleaved, and the median of `--repeats` is kept; the ratio
printed is qtrain's time over Qiskit's. `--reference` also times qtrain's
reference path (the openqasm3 parser; about 50 s at 200,000 gates), and
`--check` compares the two circuits' states (qtrain's big-endian state
against Qiskit's little-endian one, reversed).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from qtrain.interop.qasm import from_qasm

#: (name, qubits, angles, weight) of the generated gates: the original qelib1.inc, which Qiskit reads by default
GATES = (("u3", 1, 3, 4), ("u1", 1, 1, 2), ("cx", 2, 0, 5), ("cu1", 2, 1, 2), ("h", 1, 0, 2), ("t", 1, 0, 1), ("tdg", 1, 0, 1),
         ("rz", 1, 1, 1), ("ry", 1, 1, 1), ("x", 1, 0, 1), ("ccx", 3, 0, 0.2), ("cu3", 2, 3, 0.5), ("crz", 2, 1, 0.5))
PI_ANGLES = ("pi/2", "-pi/2", "pi/4", "-pi/4", "pi/8", "3*pi/4", "pi", "-pi/16", "2*pi/3")


def qasm2_text(n_gates: int, n_qubits: int = 10, seed: int = 0) -> str:
    """A seeded random OpenQASM 2 file of `n_gates` gates, with a final measurement."""
    rng = np.random.default_rng(seed)
    weights = np.array([g[3] for g in GATES], dtype=float)
    kinds = rng.choice(len(GATES), size=n_gates, p=weights / weights.sum())
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{n_qubits}];", f"creg c[{n_qubits}];"]
    for kind in kinds:
        name, width, n_angles, _ = GATES[kind]
        qubits = rng.choice(n_qubits, size=width, replace=False)
        angles = [PI_ANGLES[rng.integers(len(PI_ANGLES))] if rng.random() < 0.3 else repr(float(rng.uniform(-np.pi, np.pi))) for _ in range(n_angles)]
        lines.append(f"{name}{'(' + ','.join(angles) + ')' if angles else ''} {','.join(f'q[{q}]' for q in qubits)};")
    lines.append("measure q -> c;")
    return "\n".join(lines) + "\n"


def _timed(read, text: str) -> tuple[float, object]:
    start = time.perf_counter()
    out = read(text)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gates", type=int, default=200_000)
    parser.add_argument("--qubits", type=int, default=10)
    parser.add_argument("--file", type=Path, help="time this file instead of a generated one")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference", action="store_true", help="also time the reference (openqasm3) path, once")
    parser.add_argument("--check", action="store_true", help="compare the states of both readers' circuits")
    args = parser.parse_args()
    import warnings

    import qiskit.qasm2

    text = args.file.read_text() if args.file else qasm2_text(args.gates, args.qubits)
    readers = {"qtrain": lambda t: from_qasm(t, reader="fast"), "qiskit": qiskit.qasm2.loads}
    times: dict[str, list[float]] = {name: [] for name in readers}
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the final measurement is skipped with a warning
        for _ in range(args.repeats):
            for name, read in readers.items():
                seconds, out[name] = _timed(read, text)
                times[name].append(seconds)
        if args.reference:
            times["qtrain reference"] = [_timed(lambda t: from_qasm(t, reader="reference"), text)[0]]
    circuit = out["qtrain"]
    print(f"{len(text.splitlines())} lines, {len(circuit.ops)} qtrain gates on {circuit.n_qubits} qubits")
    median = {name: statistics.median(t) for name, t in times.items()}
    for name, seconds in median.items():
        print(f"{name:18s} {seconds:8.3f} s   ({seconds / median['qiskit']:.1f} x qiskit)")
    if args.check:
        import torch
        from qiskit.quantum_info import Statevector

        loaded = out["qiskit"].remove_final_measurements(inplace=False)
        little = Statevector(loaded).data
        n = circuit.n_qubits
        theirs = little[[int(format(i, f"0{n}b")[::-1], 2) for i in range(2**n)]]
        ours = circuit.state(dtype=torch.complex128)[0].numpy()
        print(f"1 - |<qiskit|qtrain>| = {1 - abs(np.vdot(theirs, ours)):.1e}")


if __name__ == "__main__":
    main()
