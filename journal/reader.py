"""Read-only access: ``JournalReader`` (a finished or live journal, one pass) and ``follow`` (tail a live one).

Readers open files with ``O_RDONLY`` only, take no lock and never create, change or delete anything, so they
work on read-only copies and next to a running writer.
"""
from __future__ import annotations

import os
from bisect import bisect_right
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import trio

from journal.errors import JournalCorruption, JournalNotFound
from journal.format import (
    FIXED_HEADER_SIZE,
    MAX_HEADER,
    NO_STOP,
    ZERO_DIGEST,
    IncompleteHeader,
    SegmentHeader,
    diagnose_tail,
    parse_frames,
    read_header,
    segment_name,
)
from journal.recovery import RecoveryReport, analyze, check_link, list_dir, read_file

_BATCH = 4096
_READ_CHUNK = 8 << 20


class Record(msgspec.Struct, frozen=True, gc=False):
    """One valid record. ``segment`` is the path of its segment file, ``offset`` its frame's byte offset there."""

    seq: int
    payload: bytes
    segment: str
    offset: int


def _read_head(path: Path) -> bytes:
    """Enough of a segment to parse its header (one byte more than the largest header, or the whole file)."""
    with open(path, "rb") as f:  # O_RDONLY
        return f.read(FIXED_HEADER_SIZE + MAX_HEADER + 1)


class JournalReader:
    """Read-only view of the journal directory ``path``.

    ``records()`` validates every frame it passes (length, CRC, seq continuity, the segment chain: names,
    indexes, seqs and digests) and raises :class:`JournalCorruption` on mid-log damage. A torn tail at the end of
    the last segment (what recovery would cut) ends the iteration instead and is described in ``torn``.

    Raises (constructor):
        JournalNotFound: no directory, or no segments in it.
        JournalCorruption, JournalVersionError: the first segment's header is bad.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        segs, _ = list_dir(self._path)
        if not segs:
            raise JournalNotFound(f"{self._path}: no journal segments here")
        first = self._path / segs[0]
        try:
            self._header, _ = read_header(_read_head(first), str(first))
        except IncompleteHeader as exc:
            if len(segs) == 1:
                raise JournalNotFound(f"{self._path}: no complete journal segment ({exc})") from None
            raise JournalCorruption(exc.path, exc.offset, f"{exc.what} (not the last segment)") from None
        self.torn: RecoveryReport | None = None
        """After ``records()`` reached the end: the torn tail it stopped at, or None."""

    @property
    def path(self) -> Path:
        return self._path

    @property
    def header(self) -> SegmentHeader:
        """The first segment's header (run id, schema version and fingerprint, config hash, seed...)."""
        return self._header

    @property
    def digest(self) -> str:
        """Hex running digest through the last valid record, from a full validating pass (O(journal size)).

        Equal digests mean equal record sequences (payloads and seqs), whatever the segment sizes.
        """
        return analyze(self._path).digest.hex()

    def records(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[Record]:
        """Yield the valid records with ``from_seq <= seq <= to_seq`` in seq order.

        Segments wholly before ``from_seq`` are skipped by name; the one holding it is validated from its
        start. The directory is listed once, when iteration starts.

        Raises:
            JournalCorruption: damage anywhere except a torn tail at the end of the last segment.
        """
        self.torn = None
        from_seq = max(from_seq, 1)
        stop = NO_STOP if to_seq is None else to_seq + 1
        if to_seq is not None and to_seq < from_seq:
            return
        segs, _ = list_dir(self._path)
        firsts = [int(n[4:24]) for n in segs]
        start = max(bisect_right(firsts, from_seq) - 1, 0)
        seq, digest = 0, ZERO_DIGEST
        for i in range(start, len(segs)):
            name = segs[i]
            last = i == len(segs) - 1
            where = self._path / name
            spath = str(where)
            data = read_file(where)
            try:
                hdr, off = read_header(data, spath)
            except IncompleteHeader as exc:
                if not last:
                    raise JournalCorruption(where, exc.offset, f"{exc.what} (not the last segment)") from None
                # a segment being created right now, or one a crash left unfinished: what recovery deletes
                known = i > start
                self.torn = RecoveryReport(
                    (seq if known else firsts[i]) - 1, len(data), True, name, 0, digest.hex() if known else "",
                    exc.what, True,
                )
                return
            if i == 0:
                seq, digest = 1, ZERO_DIGEST
                check_link(self._path, name, 0, hdr, seq, digest)
            elif i == start:  # starting mid-journal: trust this segment's header for the chain so far
                seq, digest = hdr.first_seq, hdr.prev_digest
                check_link(self._path, name, hdr.segment_index, hdr, seq, None)
            else:
                check_link(self._path, name, i, hdr, seq, digest)
            if seq < from_seq:
                off, seq, digest = parse_frames(data, off, seq, from_seq, digest, None)  # type: ignore[assignment]
                if seq < from_seq and off != len(data):
                    self._tail(data, off, seq, digest, where, last)
                    return
            while off < len(data) and seq != stop:
                batch: list[Record] = []
                limit = seq + _BATCH if stop == NO_STOP else min(seq + _BATCH, stop)
                end_off, seq, digest = parse_frames(data, off, seq, limit, digest, batch, Record, spath)  # type: ignore[assignment]
                yield from batch
                if seq != limit and end_off != len(data):  # stopped at a frame that is not a valid next record
                    self._tail(data, end_off, seq, digest, where, last)
                    return
                off = end_off
            if seq == stop:
                return

    def _tail(self, data: bytes, off: int, seq: int, digest: bytes, where: Path, last: bool) -> None:
        torn, what = diagnose_tail(data, off, seq)
        if not torn:
            raise JournalCorruption(where, off, what)
        if not last:
            raise JournalCorruption(where, off, f"{what} (not the last segment)")
        self.torn = RecoveryReport(seq - 1, len(data) - off, True, where.name, off, digest.hex(), what)

    def __repr__(self) -> str:
        return f"<JournalReader {self._path}>"


async def follow(path: str | Path, *, from_seq: int = 1, poll_interval: float = 0.05) -> AsyncIterator[Record]:
    """Yield the records of a live journal as they are appended, from ``from_seq`` on; runs until cancelled.

    Polls every ``poll_interval`` seconds (trio time) for new bytes and new segments. An incomplete or torn
    tail is "not written yet": it is re-read on the next poll, never yielded. Moves to the next segment once
    it exists (the writer finishes a segment before it creates the next one). Read-only, like JournalReader.

    Raises:
        JournalNotFound: ``path`` is not a directory.
        JournalCorruption: damage that is not a torn tail (or bytes left over at the end of a finished segment).
    """
    path = Path(path)
    from_seq = max(from_seq, 1)
    while True:  # wait for the first usable segment
        segs, _ = list_dir(path)
        if segs:
            firsts = [int(n[4:24]) for n in segs]
            first = firsts[max(bisect_right(firsts, from_seq) - 1, 0)]
            break
        await trio.sleep(poll_interval)
    seq = first
    while True:  # one segment per iteration
        where = path / segment_name(seq)
        off = await _wait_header(where, seq, poll_interval)
        spath = str(where)
        fd = os.open(where, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            finished = False
            while True:
                size = os.fstat(fd).st_size
                if size > off:
                    data = _pread_all(fd, min(size - off, _READ_CHUNK), off)
                    at_eof = off + len(data) >= size
                    pos = 0
                    while True:
                        batch: list[Record] = []
                        pos, seq, _ = parse_frames(data, pos, seq, seq + _BATCH, None, batch, Record, spath, off)
                        for rec in batch:
                            if rec.seq >= from_seq:
                                yield rec
                        if len(batch) < _BATCH:
                            break
                    if pos != len(data) and at_eof:
                        torn, what = diagnose_tail(data, pos, seq, off)
                        if not torn:
                            raise JournalCorruption(where, off + pos, what)
                        if finished:
                            raise JournalCorruption(where, off + pos, f"{what} (not the last segment)")
                    off += pos
                    if not at_eof:
                        await trio.lowlevel.checkpoint()
                        continue
                if finished:
                    break
                nxt = segment_name(seq)
                if nxt != where.name and _exists(path / nxt):
                    finished = True  # the writer completed this segment before creating the next: drain it
                    continue
                await trio.sleep(poll_interval)
        finally:
            os.close(fd)


async def _wait_header(where: Path, seq: int, poll_interval: float) -> int:
    """Wait until segment ``where`` exists with a complete, valid header for ``seq``; return its length."""
    while True:
        try:
            data = _read_head(where)
        except FileNotFoundError:
            data = b""
        if data:
            try:
                hdr, end = read_header(data, str(where))
            except IncompleteHeader:
                pass
            else:
                check_link(where.parent, where.name, hdr.segment_index, hdr, seq, None)
                return end
        await trio.sleep(poll_interval)


def _exists(p: Path) -> bool:
    return os.path.exists(p)


def _pread_all(fd: int, n: int, off: int) -> bytes:
    parts = []
    while n > 0:
        chunk = os.pread(fd, n, off)
        if not chunk:
            break
        parts.append(chunk)
        n -= len(chunk)
        off += len(chunk)
    return b"".join(parts)
