"""The engine benchmark's harness on a tiny workload: it checks qtrain's
gradients before timing, and a size where every library is skipped is
reported instead of crashing the run (n = 20, L = 50 did, at the default
budget)."""

from __future__ import annotations

import pytest

from experiments.benchmarks.engine import time_size, too_big


def test_time_size_checks_then_times_the_libraries_it_names():
    rows = time_size(4, 2, repeats=1, budget=60.0, names=["qtrain", "qtrain-full"])
    assert [r["library"] for r in rows] == ["qtrain", "qtrain-full"]
    for row in rows:
        assert row["status"] == "ok"
        assert row["max_error"] < 1e-4  # complex64 against the complex128 reference
        assert row["seconds_a"] > 0 and row["seconds_b"] > 0
        assert row["traffic_bytes_b"] > row["traffic_bytes_a"] > 0


def test_a_size_where_every_library_is_skipped_is_reported_not_timed():
    earlier = [{"n": 4, "L": 2, "library": "qtrain", "check_seconds": 10.0}]
    reason = too_big(earlier, 6, 2, budget=30.0)
    assert reason is not None and "--budget 30" in reason  # 10 s x 2^2 = 40 s expected
    rows = time_size(6, 2, repeats=2, budget=30.0, names=["qtrain"], history={"qtrain": earlier})
    assert rows == [{"n": 6, "L": 2, "library": "qtrain", "mode": rows[0]["mode"], "status": reason}]


@pytest.mark.parametrize("n, layers", [(4, 2), (5, 2)])
def test_too_big_lets_sizes_no_larger_than_the_measured_one_run(n, layers):
    earlier = [{"n": 5, "L": 2, "library": "qtrain", "check_seconds": 1.0}]
    assert too_big(earlier, n, layers, budget=30.0) is None
