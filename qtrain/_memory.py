"""Memory budgets: how many samples of an n-qubit state batch fit at once.

Work over many samples is split into chunks whose states fit a budget
(default: a fraction of the device's free memory), and a request that cannot
fit even one sample is refused before any work, with the memory it would need.
"""

from __future__ import annotations

import os
import re

import torch

__all__ = ["budget_bytes", "format_bytes", "free_memory", "parse_bytes", "samples_per_chunk", "state_bytes"]

#: Fraction of the free memory a run may plan to use by default.
DEFAULT_FRACTION = 0.5

_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(value: int | float | str) -> int:
    """4e9, "4GB", "512MiB", "2 G" -> bytes."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not value > 0 or value == float("inf"):  # nan and inf have no size in bytes
            raise ValueError(f"memory budget must be a positive, finite size, got {value!r}")
        return int(value)
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)(i?B)?\s*", str(value), flags=re.IGNORECASE)
    if not m:
        raise ValueError(f"cannot read memory size {value!r}; use e.g. 4GB, 512MB or a number of bytes")
    number = float(m.group(1))
    if number <= 0:
        raise ValueError(f"memory budget must be positive, got {value!r}")
    return int(number * _UNITS[m.group(2).upper()])


def format_bytes(n: float) -> str:
    """`n` bytes in binary units for messages, one decimal: 1536 -> "1.5 KiB"."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def free_memory(device: torch.device | str) -> int:
    """Free bytes on `device`: the CUDA allocator's view for a GPU,
    MemAvailable for the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def budget_bytes(device: torch.device | str, budget: int | float | str | None = None) -> int:
    """The given budget, or DEFAULT_FRACTION of the device's free memory."""
    return parse_bytes(budget) if budget is not None else int(DEFAULT_FRACTION * free_memory(device))


def state_bytes(n_qubits: int, dtype: torch.dtype) -> int:
    """Bytes of one n-qubit state vector."""
    return 2**n_qubits * torch.empty((), dtype=dtype).element_size()


def samples_per_chunk(n_qubits: int, n_samples: int, dtype: torch.dtype, budget: int, states_per_sample: float, what: str = "qubits") -> int:
    """The largest chunk of samples whose `states_per_sample` states per sample
    fit in `budget` bytes, at most `n_samples`. Raises if one sample does not fit."""
    per_sample = states_per_sample * state_bytes(n_qubits, dtype)
    if per_sample > budget:
        raise MemoryError(
            f"{what}={n_qubits} needs {format_bytes(per_sample)} for a single sample "
            f"({states_per_sample:g} states of {format_bytes(state_bytes(n_qubits, dtype))} in {dtype}), "
            f"but the memory budget is {format_bytes(budget)}"
        )
    return max(1, min(n_samples, int(budget // per_sample)))
