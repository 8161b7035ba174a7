"""Check every available peer adapter against qtrain's float64 adjoint gradient.

    cd /work/main && python -m experiments.benchmarks.peers.check

For (n, L, S) = (4, 3, 5) and (6, 10, 8): max |peer - reference| of (a)
dE/d theta_00 and (b) the full gradient, which must be below 1e-4. Then one
rough timing of (a) and (b) at n=12, L=50, S=64 (a single run each, after the
untimed setup and one untimed warm-up call of (b), since a first call at a new
size pays for faulting in fresh memory; expect noise on a shared machine).
Exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from qtrain.builders import mcclean_angles, mcclean_circuit, mcclean_draw

from . import PEERS

TOL = 1e-4
SEED = 0


def workload(n: int, n_layers: int, n_samples: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    d = mcclean_draw(n, n_layers, n_samples, seed)
    axes = d.axes.numpy().astype(int)
    angles = d.angles.permute(1, 0, 2).reshape(n_samples, -1).numpy()
    return axes, angles


def reference(n: int, n_layers: int, n_samples: int, seed: int = SEED) -> np.ndarray:
    c = mcclean_circuit(n, n_layers, n_samples, seed)
    theta = mcclean_angles(n, n_layers, n_samples, seed, dtype=torch.float64).requires_grad_(True)
    c.expval(theta, "Z0 Z1", dtype=torch.complex128, diff_method="adjoint").sum().backward()
    return theta.grad.numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-timing", action="store_true", help="only the correctness checks")
    parser.add_argument("--no-warmup", action="store_true", help="time the very first calls at n=12")
    args = parser.parse_args(argv)

    peers = []
    for cls in PEERS:
        if cls.available():
            peers.append(cls)
        else:
            print(f"{cls.name}: not available (library missing or fails to import), skipped")
    for cls in peers:
        print(f"{cls.name}: {cls.mode}")

    ok = True
    print("\ncorrectness vs qtrain float64 adjoint (max abs error):")
    for n, n_layers, n_samples in [(4, 3, 5), (6, 10, 8)]:
        axes, angles = workload(n, n_layers, n_samples)
        ref_b = reference(n, n_layers, n_samples)
        ref_a = ref_b[:, 0]
        for cls in peers:
            peer = cls(axes, angles)
            a, b = peer.grad_first(), peer.grad_all()
            if a.shape != ref_a.shape or b.shape != ref_b.shape:
                print(f"  n={n} L={n_layers} S={n_samples} {cls.name:14s} wrong shapes {a.shape}, {b.shape}  FAIL")
                ok = False
                continue
            err_a, err_b = float(np.abs(a - ref_a).max()), float(np.abs(b - ref_b).max())
            good = err_a < TOL and err_b < TOL
            ok &= good
            print(f"  n={n} L={n_layers:2d} S={n_samples} {cls.name:14s} (a) {err_a:.2e}  (b) {err_b:.2e}  {'ok' if good else 'FAIL'}")

    if not args.no_timing:
        n, n_layers, n_samples = 12, 50, 64
        print(f"\nrough time, one run each, n={n} L={n_layers} S={n_samples} (torch threads: {torch.get_num_threads()}):")
        axes, angles = workload(n, n_layers, n_samples)
        c = mcclean_circuit(n, n_layers, n_samples, SEED)
        theta = mcclean_angles(n, n_layers, n_samples, SEED).requires_grad_(True)
        if not args.no_warmup:
            c.expval(theta, "Z0 Z1", diff_method="adjoint").sum().backward()
            theta.grad = None
        start = time.perf_counter()
        c.expval(theta, "Z0 Z1", diff_method="adjoint").sum().backward()
        print(f"  {'qtrain (ctx)':14s} (b) {time.perf_counter() - start:8.3f} s  [qtrain adjoint, complex64, for context]")
        for cls in peers:
            start = time.perf_counter()
            peer = cls(axes, angles)
            setup = time.perf_counter() - start
            if not args.no_warmup:
                peer.grad_all()
            start = time.perf_counter()
            peer.grad_first()
            t_a = time.perf_counter() - start
            start = time.perf_counter()
            peer.grad_all()
            t_b = time.perf_counter() - start
            print(f"  {cls.name:14s} (a) {t_a:8.3f} s  (b) {t_b:8.3f} s  [setup {setup:.2f} s, untimed]")

    print("\nall checks passed" if ok else "\nSOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
