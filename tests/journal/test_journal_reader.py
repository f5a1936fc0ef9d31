"""Readers: ranges, read-only behaviour, live reading, and follow() over a live journal."""
from __future__ import annotations

import os
import stat
import sys
from contextlib import aclosing
from pathlib import Path

import pytest
import trio
import trio.testing
from tests.journal.journal_testlib import INFO, NoSyncIO, build, payloads_for, ref_digest, ref_frame, segments, snapshot

from journal import Journal, JournalCorruption, JournalNotFound, JournalReader, Record, follow, scan
from journal.format import segment_name

# ---------------------------------------------------------------- an audit hook that sees every open() flag

_OPENS: list[tuple[str, int]] | None = None


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _OPENS is not None and args[0] is not None and not isinstance(args[0], int):
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        _OPENS.append((os.fsdecode(args[0]), flags))


sys.addaudithook(_audit)


def _append_bytes(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def _expect(payloads: list[bytes], start: int = 1) -> list[tuple[int, bytes]]:
    return list(enumerate(payloads, start))


# ---------------------------------------------------------------- JournalReader

def test_records_when_ranges_requested_then_exact_slices_across_segments(tmp_path: Path) -> None:
    payloads = payloads_for(60)
    jdir = build(tmp_path / "j", payloads, segment_bytes=600)
    assert len(segments(jdir)) > 4
    r = JournalReader(jdir)
    for lo, hi in [(1, None), (0, None), (1, 1), (7, 33), (30, 30), (59, 100), (60, None), (61, None), (10, 5)]:
        got = [(x.seq, x.payload) for x in r.records(from_seq=lo, to_seq=hi)]
        want = [(s, p) for s, p in _expect(payloads) if s >= lo and (hi is None or s <= hi)]
        assert got == want, (lo, hi)
    recs = list(r.records())
    assert all(isinstance(x, Record) for x in recs)
    first = recs[0]
    assert first.segment == str(jdir / segment_name(1)) and first.offset == (jdir / segment_name(1)).read_bytes().index(
        ref_frame(1, payloads[0]))
    assert r.torn is None and r.digest == ref_digest(payloads)
    assert r.path == jdir and r.header.run_id == INFO.run_id and r.header.first_seq == 1


def test_reader_when_journal_read_only_then_works_and_changes_nothing(tmp_path: Path) -> None:
    global _OPENS
    payloads = payloads_for(30)
    jdir = build(tmp_path / "j", payloads, segment_bytes=500)
    (jdir / "LOCK").unlink()  # a copy handed to an observer has no LOCK: the reader must not make one
    seg = segments(jdir)[-1]
    with open(seg, "ab") as f:
        f.write(b"\x00" * 10)  # a torn tail the reader must report, not cut
    for p in jdir.iterdir():
        p.chmod(0o444)
    jdir.chmod(0o555)
    before = snapshot(jdir)
    _OPENS = []
    try:
        r = JournalReader(jdir)
        assert [(x.seq, x.payload) for x in r.records()] == _expect(payloads)
        assert r.torn is not None and r.torn.dropped_bytes == 10
        assert r.digest == ref_digest(payloads)
        assert scan(jdir).dropped_bytes == 10
        opens = list(_OPENS)
    finally:
        _OPENS = None
        jdir.chmod(0o755)
    assert snapshot(jdir) == before
    mine = [(p, f) for p, f in opens if p.startswith(str(jdir))]
    assert mine, "the audit hook saw no opens"
    for p, flags in mine:
        assert flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND) == 0, (p, flags)
    assert stat.S_IMODE(seg.stat().st_mode) == 0o444


def test_reader_when_writer_live_then_sees_flushed_records_only(tmp_path: Path) -> None:
    j = Journal.create(tmp_path / "j", INFO, segment_bytes=400, io=NoSyncIO())
    payloads = payloads_for(20)
    for p in payloads[:15]:
        j.append(p)
    j.flush()
    for p in payloads[15:]:
        j.append(p)
    r = JournalReader(tmp_path / "j")
    assert [x.payload for x in r.records()] == payloads[:15] and r.torn is None
    j.close()
    assert [x.payload for x in r.records()] == payloads


# ---------------------------------------------------------------- follow
# Every follow test runs under trio.fail_after in virtual time (autojump clock): a follow that stops making
# progress fails within milliseconds instead of hanging the suite.

async def test_follow_when_records_appended_later_then_yields_them_across_rolls(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "j"
    j = Journal.create(path, INFO, segment_bytes=350, io=NoSyncIO())
    payloads = payloads_for(25)
    j.append(payloads[0])
    j.flush()
    got: list[tuple[int, bytes]] = []

    async def consume() -> None:
        async with aclosing(follow(path, poll_interval=0.05)) as records:
            async for rec in records:
                got.append((rec.seq, rec.payload))
                if rec.seq == 25:
                    return

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await trio.sleep(0.2)
            assert got == _expect(payloads[:1])
            for p in payloads[1:]:
                j.append(p)
                j.flush()
                await trio.sleep(0.03)
    assert got == _expect(payloads)
    assert len(segments(path)) >= 4
    j.close()


async def test_follow_when_from_seq_in_later_segment_then_starts_there(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    payloads = payloads_for(30)
    path = build(tmp_path / "j", payloads, segment_bytes=400)
    got = []
    with trio.fail_after(60):
        async with aclosing(follow(path, from_seq=17)) as records:
            async for rec in records:
                got.append((rec.seq, rec.payload))
                if rec.seq == 30:
                    break
    assert got == _expect(payloads[16:], 17)


async def test_follow_when_tail_incomplete_then_waits_and_yields_once_complete(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    payloads = payloads_for(3)
    path = build(tmp_path / "j", payloads)
    seg = segments(path)[-1]
    frame = ref_frame(4, b"the fourth record")
    got = []

    async def consume() -> None:
        async with aclosing(follow(path, poll_interval=0.05)) as records:
            async for rec in records:
                got.append(rec.seq)
                if rec.seq == 4:
                    return

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await trio.sleep(0.2)
            assert got == [1, 2, 3]
            _append_bytes(seg, frame[:20])  # a write in progress: not yet
            await trio.sleep(0.5)
            assert got == [1, 2, 3]
            _append_bytes(seg, frame[20:])
    assert got == [1, 2, 3, 4]


async def test_follow_when_mid_log_damage_then_raises_corruption(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    payloads = payloads_for(5, size=30)
    path = build(tmp_path / "j", payloads)
    seg = segments(path)[-1]
    data = bytearray(seg.read_bytes())
    data[-50] ^= 0x10  # inside record 4's payload; record 5 follows intact
    seg.write_bytes(bytes(data))
    got = []
    fourth = len(data) - 2 * 46
    with trio.fail_after(60), pytest.raises(
        JournalCorruption,
        match=rf"offset {fourth}: damaged record where seq 4 was expected, but a valid record follows at offset {fourth + 46}$",
    ):
        async with aclosing(follow(path)) as records:
            async for rec in records:
                got.append(rec.seq)
    assert got == [1, 2, 3]


async def test_follow_when_no_directory_then_not_found(tmp_path: Path) -> None:
    with pytest.raises(JournalNotFound):
        async with aclosing(follow(tmp_path / "nope")) as records:
            async for _ in records:
                pass
