"""Writer: durability levels, roll, poisoning, locking, group commit and durable() under trio."""
from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trio.lowlevel
import trio.testing
from tests.journal.journal_testlib import INFO, INFO2, FaultIO, GateIO, NoSyncIO, payloads_for, ref_digest, segments

from journal import (
    MAX_RECORD,
    Journal,
    JournalClosed,
    JournalLocked,
    JournalPoisoned,
    JournalReader,
)
from journal.format import segment_name
from journal.writer import FLUSH_BYTES


def _disk_payloads(path: Path) -> list[bytes]:
    return [r.payload for r in JournalReader(path).records()]


async def _until(cond: object) -> None:
    """Spin on checkpoints (no virtual or real sleeping) until ``cond()``: a worker thread is finishing."""
    for _ in range(1_000_000):
        if cond():  # type: ignore[operator]
            return
        await trio.lowlevel.checkpoint()
    raise AssertionError("condition never became true")


# ---------------------------------------------------------------- durability levels

def test_append_when_not_flushed_then_buffered_and_flush_writes_and_sync_syncs(tmp_path: Path) -> None:
    io = NoSyncIO()
    j = Journal.create(tmp_path / "j", INFO, io=io)
    seg = segments(tmp_path / "j")[0]
    header_size = seg.stat().st_size
    assert [j.append(p) for p in (b"a", b"bb", b"ccc")] == [1, 2, 3]
    assert (j.last_seq, j.flushed_seq, j.synced_seq) == (3, 0, 0)
    assert seg.stat().st_size == header_size  # nothing handed to the OS yet
    j.flush()
    assert (j.last_seq, j.flushed_seq, j.synced_seq) == (3, 3, 0)
    assert _disk_payloads(tmp_path / "j") == [b"a", b"bb", b"ccc"]
    n = io.calls.count("fdatasync")
    j.sync()
    assert j.synced_seq == 3 and io.calls.count("fdatasync") == n + 1
    j.sync()  # nothing new: no second fdatasync
    assert io.calls.count("fdatasync") == n + 1
    assert j.digest == ref_digest([b"a", b"bb", b"ccc"])
    j.close()


def test_append_when_buffer_reaches_flush_bytes_then_flushes_itself(tmp_path: Path) -> None:
    with Journal.create(tmp_path / "j", INFO, io=NoSyncIO()) as j:
        p = b"x" * 1000
        while j.flushed_seq == 0:
            j.append(p)
        assert j.last_seq == j.flushed_seq == -(-FLUSH_BYTES // 1016)


def test_append_when_payload_empty_or_too_big_then_value_error_and_still_usable(tmp_path: Path) -> None:
    with Journal.create(tmp_path / "j", INFO, io=NoSyncIO()) as j:
        for bad in (b"", b"x" * (MAX_RECORD + 1)):
            with pytest.raises(ValueError, match=r"^record payload must be 1\.\.1048576 bytes"):
                j.append(bad)
        assert j.append(b"x" * MAX_RECORD) == 1
        assert j.append(memoryview(b"mv")) == 2
    assert _disk_payloads(tmp_path / "j") == [b"x" * MAX_RECORD, b"mv"]


def test_roll_when_segment_full_then_fsync_old_then_tmp_header_fsync_rename_fsync_dir(tmp_path: Path) -> None:
    io = NoSyncIO()
    with Journal.create(tmp_path / "j", INFO, segment_bytes=300, io=io) as j:
        j.append(b"a" * 40)
        io.calls.clear()
        j.append(b"b" * 40)  # does not fit: roll first
        assert io.calls == [
            "fsync",
            f"open {segment_name(2)}.tmp",
            "fsync",
            f"rename {segment_name(2)}.tmp {segment_name(2)}",
            "fsync_dir",
        ]
        assert j.synced_seq == 1  # the old segment was fsynced whole
        assert j.header.segment_index == 1 and j.header.first_seq == 2
        assert j.header.prev_digest.hex() == ref_digest([b"a" * 40])
    assert [s.name for s in segments(tmp_path / "j")] == [segment_name(1), segment_name(2)]


def test_reopen_when_segments_roll_then_new_segments_carry_new_header_info(tmp_path: Path) -> None:
    with Journal.create(tmp_path / "j", INFO, io=NoSyncIO()) as j:
        j.append(b"one")
    j, _ = Journal.open(tmp_path / "j", INFO2, segment_bytes=1, io=NoSyncIO())
    assert j.header.run_id == INFO.run_id  # still appending to the old last segment
    assert j.append(b"two") == 2
    assert j.header.run_id == INFO2.run_id and j.header.info == INFO2
    j.close()
    r = JournalReader(tmp_path / "j")
    assert r.header.run_id == INFO.run_id
    assert [x.payload for x in r.records()] == [b"one", b"two"]


def test_close_when_called_then_flushed_synced_and_later_calls_raise_closed(tmp_path: Path) -> None:
    io = NoSyncIO()
    j = Journal.create(tmp_path / "j", INFO, io=io)
    j.append(b"z")
    j.close()
    assert j.synced_seq == 1 and io.calls[-1] == "fdatasync"
    j.close()  # idempotent
    for call in (lambda: j.append(b"x"), j.flush, j.sync):
        with pytest.raises(JournalClosed, match=r"journal is closed$"):
            call()
    assert _disk_payloads(tmp_path / "j") == [b"z"]


# ---------------------------------------------------------------- locking

def test_second_writer_when_lock_held_then_journal_locked(tmp_path: Path) -> None:
    j = Journal.create(tmp_path / "j", INFO, io=NoSyncIO())
    with pytest.raises(JournalLocked, match=rf"^{tmp_path / 'j'}: journal is locked by another writer"):
        Journal.open(tmp_path / "j", INFO)
    with pytest.raises(JournalLocked):
        Journal.create(tmp_path / "j", INFO)
    code = (
        "import sys; from journal import Journal, JournalLocked, HeaderInfo\n"
        "h = HeaderInfo(run_id='r', schema_version=1, schema_fingerprint='', config_hash='', seed=0, created_ns=0)\n"
        "try: Journal.open(sys.argv[1], h)\n"
        "except JournalLocked as e: print(e); sys.exit(3)\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "j")], capture_output=True, text=True,
                         cwd=Path(__file__).parents[2], timeout=60)
    assert res.returncode == 3, res.stderr
    assert "locked by another writer" in res.stdout
    j.close()
    Journal.open(tmp_path / "j", INFO)[0].close()


# ---------------------------------------------------------------- poisoning

def test_write_enospc_when_flushing_then_poisoned_and_every_later_call_raises(tmp_path: Path) -> None:
    io = FaultIO("write")
    j = Journal.create(tmp_path / "j", INFO, io=io)
    j.append(b"kept")
    j.flush()
    j.append(b"lost")
    io.armed = True
    with pytest.raises(JournalPoisoned, match=r"journal poisoned: write failed \(\[Errno 28\]") as ei:
        j.flush()
    assert isinstance(ei.value.__cause__, OSError) and ei.value.__cause__.errno == errno.ENOSPC
    assert j.poisoned
    io.armed = False  # even if the disk recovers, the writer stays poisoned
    for call in (lambda: j.append(b"x"), j.flush, j.sync):
        with pytest.raises(JournalPoisoned):
            call()
    with pytest.raises(JournalPoisoned):
        j.close()  # releases the lock anyway
    j2, rep = Journal.open(tmp_path / "j", INFO, io=NoSyncIO())
    assert rep.last_seq == 1
    j2.close()


def test_fdatasync_failure_when_syncing_then_poisoned_and_never_retried(tmp_path: Path) -> None:
    io = FaultIO("fdatasync", errno.EIO)
    j = Journal.create(tmp_path / "j", INFO, io=io)
    j.append(b"a")
    io.armed = True
    with pytest.raises(JournalPoisoned, match=r"fdatasync failed"):
        j.sync()
    n = io.attempts["fdatasync"]
    io.armed = False  # even if the next fsync would "succeed", it must not be attempted (fsyncgate)
    with pytest.raises(JournalPoisoned):
        j.sync()
    with pytest.raises(JournalPoisoned):
        j.close()
    assert io.attempts["fdatasync"] == n


def test_enospc_when_rolling_then_poisoned(tmp_path: Path) -> None:
    io = FaultIO("open")
    j = Journal.create(tmp_path / "j", INFO, segment_bytes=300, io=io)
    j.append(b"a" * 40)
    io.armed = True
    with pytest.raises(JournalPoisoned, match=r"segment roll failed"):
        j.append(b"b" * 40)
    with pytest.raises(JournalPoisoned):
        j.append(b"c")
    with pytest.raises(JournalPoisoned):
        j.close()
    j2, rep = Journal.open(tmp_path / "j", INFO, io=NoSyncIO())
    assert rep.last_seq == 1 and not rep.torn
    j2.close()


# ---------------------------------------------------------------- trio: durable and group commit

async def test_durable_when_sync_in_flight_then_returns_only_after_fdatasync_covers_seq(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    io = GateIO()
    j = Journal.create(tmp_path / "j", INFO, io=io)
    seq = [j.append(p) for p in payloads_for(10)][-1]
    io.gate.clear()
    done = trio.Event()

    async def waiter() -> None:
        await j.durable(seq)
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await _until(lambda: bool(io.synced_at))  # the worker thread reached fdatasync (and is held there)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set() and j.synced_seq < seq
        assert j.flushed_seq == seq  # durable flushed first
        io.gate.set()
    assert done.is_set() and j.synced_seq == seq
    assert io.synced_at == [io.written]  # the one fdatasync started after every byte of seq was written
    j.close()


async def test_durable_when_many_waiters_then_they_share_one_fdatasync(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    io = GateIO()
    j = Journal.create(tmp_path / "j", INFO, io=io)
    seqs = [j.append(p) for p in payloads_for(100)]
    async with trio.open_nursery() as nursery:
        for s in seqs:
            nursery.start_soon(j.durable, s)
    assert len(io.synced_at) == 1 and j.synced_seq == 100
    await j.durable(50)  # already durable: no sync
    assert len(io.synced_at) == 1
    with pytest.raises(ValueError, match=r"seq 101 has not been appended"):
        await j.durable(101)
    j.close()


async def test_group_commit_when_interval_passes_then_one_sync_covers_all_appends(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    io = GateIO()
    j = Journal.create(tmp_path / "j", INFO, io=io)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: j.run_group_commit(interval_s=0.005, task_status=task_status))
        for p in payloads_for(50):
            j.append(p)
        mock_clock.jump(0.004)
        await trio.testing.wait_all_tasks_blocked()
        assert j.synced_seq == 0 and io.synced_at == []
        mock_clock.jump(0.002)
        await _until(lambda: j.synced_seq == 50)
        assert len(io.synced_at) == 1 and j.flushed_seq == 50
        for _ in range(10):  # nothing new: no more syncs
            mock_clock.jump(0.005)
            await trio.testing.wait_all_tasks_blocked()
        assert len(io.synced_at) == 1
        j.append(b"more")
        mock_clock.jump(0.005)
        await _until(lambda: j.synced_seq == 51)
        assert len(io.synced_at) == 2
        nursery.cancel_scope.cancel()
    j.close()


async def test_durable_when_committer_interval_long_then_waits_one_sync_not_an_interval(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    io = GateIO()
    j = Journal.create(tmp_path / "j", INFO, io=io)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: j.run_group_commit(interval_s=10.0, task_status=task_status))
        s = j.append(b"intent")
        await j.durable(s)  # virtual time never moves: durable did not wait for the committer's interval
        assert trio.current_time() == 0.0
        assert j.synced_seq == s and len(io.synced_at) == 1
        nursery.cancel_scope.cancel()
    j.close()


async def test_group_commit_when_fdatasync_fails_then_task_raises_poisoned_and_appends_fail(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    io = FaultIO("fdatasync")
    j = Journal.create(tmp_path / "j", INFO, io=io)
    j.append(b"a")
    io.armed = True
    with pytest.RaisesGroup(JournalPoisoned):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: j.run_group_commit(interval_s=0.005))
    with pytest.raises(JournalPoisoned):
        j.append(b"b")
    with pytest.raises(JournalPoisoned):
        await j.durable(1)
    with pytest.raises(JournalPoisoned):
        j.close()


async def test_durable_when_write_fails_then_poisoned(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    io = FaultIO("write")
    j = Journal.create(tmp_path / "j", INFO, io=io)
    s = j.append(b"a")
    io.armed = True
    with pytest.raises(JournalPoisoned, match=r"write failed"):
        await j.durable(s)
    with pytest.raises(JournalPoisoned):
        j.append(b"b")
    with pytest.raises(JournalPoisoned):
        j.close()


async def test_group_commit_when_journal_closed_then_task_ends(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    j = Journal.create(tmp_path / "j", INFO, io=NoSyncIO())
    async with trio.open_nursery() as nursery:
        await nursery.start(j.run_group_commit)
        j.append(b"a")
        j.close()
    assert j.synced_seq == 1
