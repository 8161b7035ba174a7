"""The resume / interrupt helpers the samplers share: rank 0 alone reads the
tables, holds the TensorBoard writer and says what an interrupt kept."""

from __future__ import annotations

import contextlib
import logging

import pytest

from qtrain import _tables as tables
from qtrain.parallel import Ranks
from qtrain._tasks.resumable import rank0_writer, stored_rows

LOG = logging.getLogger("qtrain._tasks.some_experiment")


class FakeFabric:
    """Stands in for Lightning's Fabric on a rank other than 0: a broadcast yields rank 0's object."""

    def __init__(self, from_rank0):
        self.from_rank0 = from_rank0

    def broadcast(self, obj, src=0):
        assert obj is None, "a rank other than 0 sends nothing: it must not read the tables itself"
        return self.from_rank0


def typed(row: dict[str, str]) -> dict[str, int]:
    return {k: int(v) for k, v in row.items()}


def test_rank0_reads_every_table_typed_and_none_for_a_table_not_written_yet(tmp_path):
    tables.write_rows(tmp_path / "results.csv", [{"n": 2, "L": 1}, {"n": 4, "L": 3}], ["n", "L"])
    rows, other = stored_rows(Ranks(), tmp_path, typed, "results.csv", "gradient_norms.csv")
    assert rows == [{"n": 2, "L": 1}, {"n": 4, "L": 3}] and other == []


def test_another_rank_gets_rank0s_rows_without_reading(tmp_path):
    tables.write_rows(tmp_path / "results.csv", [{"n": 9, "L": 9}], ["n", "L"])  # what this rank must not read
    sent = [[{"n": 2, "L": 1}]]
    assert stored_rows(Ranks(rank=1, world_size=2, fabric=FakeFabric(sent)), tmp_path, typed, "results.csv") == sent


class FakeWriter:
    def __init__(self, out_dir):
        self.out_dir, self.closed = out_dir, False

    def close(self):
        self.closed = True


@pytest.fixture
def writers(monkeypatch):
    """Every writer the helper opens, fakes that remember whether they were closed."""
    opened = []
    monkeypatch.setattr("qtrain._tb.open_writer", lambda out_dir: opened.append(FakeWriter(out_dir)) or opened[-1])
    return opened


def test_the_writer_opens_on_entry_into_the_run_directory(tmp_path):
    with rank0_writer(Ranks(), tmp_path, LOG, lambda: "unused") as writer:
        writer.add_scalar("x", 1.0, 0)
    assert list(tmp_path.glob("events.out.tfevents.*"))


@pytest.mark.parametrize("error", [None, KeyboardInterrupt, ValueError])
def test_rank0s_writer_is_closed_however_the_block_ends_and_the_error_goes_on(tmp_path, writers, error):
    with pytest.raises(error) if error else contextlib.nullcontext():
        with rank0_writer(Ranks(), tmp_path, LOG, lambda: "kept") as writer:
            assert writers == [writer] and writer.out_dir == tmp_path and not writer.closed
            if error:
                raise error
    assert writers[0].closed


def test_no_writer_off_rank0(tmp_path, writers):
    with rank0_writer(Ranks(rank=1, world_size=2), tmp_path, LOG, lambda: "kept") as writer:
        assert writer is None
    assert writers == []


def test_an_interrupt_says_what_was_kept_once_and_goes_on(tmp_path, caplog):
    kept = []
    with caplog.at_level(logging.WARNING), pytest.raises(KeyboardInterrupt):
        with rank0_writer(Ranks(), tmp_path, LOG, lambda: f"{len(kept)} points are in {tmp_path / 'results.csv'}"):
            kept += [1, 2, 3]  # counted when the interrupt comes, not on entry
            raise KeyboardInterrupt
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        (LOG.name, f"interrupted: 3 points are in {tmp_path / 'results.csv'}; rerun the same command to resume")]
    caplog.clear()
    with caplog.at_level(logging.WARNING), pytest.raises(KeyboardInterrupt):
        with rank0_writer(Ranks(rank=1, world_size=2), tmp_path / "rank1", LOG, lambda: "never asked"):
            raise KeyboardInterrupt
    assert caplog.records == []  # rank 0 alone says it
