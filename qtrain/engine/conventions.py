"""qtrain's conventions in one place: which dtypes a state may have, how the
state's complex dtype and the angles' real dtype map onto each other, and the
names of the differentiation methods. Everything else asks here."""

from __future__ import annotations

import torch

__all__ = [
    "AUTO_ADJOINT_QUBITS",
    "check_complex_dtype",
    "check_diff_method",
    "complex_dtype",
    "COMPLEX_DTYPES",
    "COMPLEX_OF",
    "DIFF_METHODS",
    "real_dtype",
    "REAL_OF",
    "resolve_diff_method",
]

#: The dtypes a state may have: single or double precision complex.
COMPLEX_DTYPES = (torch.complex64, torch.complex128)
#: The differentiation methods a run takes: autograd through the run, the adjoint sweep, or "auto" (see below).
DIFF_METHODS = ("backprop", "adjoint", "auto")
#: "auto" picks the adjoint from this many qubits on (of the light cone that
#: runs), backprop below. Measured on 2 CPU cores, complex64, hybrid layer
#: forward + backward (experiments/benchmarks/hybrid.py), adjoint time /
#: backprop time: n=4: 1.37-1.65 (B 32..1024); n=8: 0.91-0.96; n=12:
#: 0.85-0.95; n=16: 0.54-0.80, with 731 against 2317 MiB peak at B=256.
AUTO_ADJOINT_QUBITS = 8
#: complex state dtype -> the real dtype of its angles, weights and outputs
REAL_OF = {torch.complex64: torch.float32, torch.complex128: torch.float64}
#: real dtype -> the complex dtype a state takes from it (float16/bfloat16 angles run in complex64)
COMPLEX_OF = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def check_complex_dtype(dtype: torch.dtype, what: str = "dtype") -> torch.dtype:
    """`dtype` itself when it is one of `COMPLEX_DTYPES`; else a TypeError naming `what`."""
    if dtype not in COMPLEX_DTYPES:
        raise TypeError(f"{what} must be torch.complex64 or torch.complex128, got {dtype}")
    return dtype


def check_diff_method(diff_method: str) -> str:
    """`diff_method` itself when it is one of `DIFF_METHODS`; else a ValueError listing them."""
    if diff_method not in DIFF_METHODS:
        raise ValueError(f"diff_method must be one of {DIFF_METHODS}, got {diff_method!r}")
    return diff_method


def resolve_diff_method(diff_method: str, n_qubits: int, needs_tensor_grad: bool) -> str:
    """The method "auto" stands for on a run of `n_qubits` (backprop when a gate's
    matrix itself requires grad, which only autograd differentiates)."""
    if check_diff_method(diff_method) != "auto":
        return diff_method
    return "adjoint" if n_qubits >= AUTO_ADJOINT_QUBITS and not needs_tensor_grad else "backprop"


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """The real dtype that goes with a complex state dtype (complex64 -> float32)."""
    return REAL_OF[check_complex_dtype(dtype)]


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """The state dtype for angles of a real dtype (float64 -> complex128, any other -> complex64)."""
    return COMPLEX_OF.get(dtype, torch.complex64)
