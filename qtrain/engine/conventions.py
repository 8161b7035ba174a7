"""qtrain's conventions in one place: which dtypes a state may have, how the
state's complex dtype and the angles' real dtype map onto each other, and the
names of the differentiation methods. Everything else asks here."""

from __future__ import annotations

import torch

COMPLEX_DTYPES = (torch.complex64, torch.complex128)
DIFF_METHODS = ("backprop", "adjoint")
#: complex state dtype -> the real dtype of its angles, weights and outputs
REAL_OF = {torch.complex64: torch.float32, torch.complex128: torch.float64}
#: real dtype -> the complex dtype a state takes from it (float16/bfloat16 angles run in complex64)
COMPLEX_OF = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def check_complex_dtype(dtype: torch.dtype, what: str = "dtype") -> torch.dtype:
    if dtype not in COMPLEX_DTYPES:
        raise TypeError(f"{what} must be torch.complex64 or torch.complex128, got {dtype}")
    return dtype


def check_diff_method(diff_method: str) -> str:
    if diff_method not in DIFF_METHODS:
        raise ValueError(f"diff_method must be one of {DIFF_METHODS}, got {diff_method!r}")
    return diff_method


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """The real dtype that goes with a complex state dtype (complex64 -> float32)."""
    return REAL_OF[check_complex_dtype(dtype)]


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """The state dtype for angles of a real dtype (float64 -> complex128, any other -> complex64)."""
    return COMPLEX_OF.get(dtype, torch.complex64)
