"""The journal writer: append, flush, group commit, ``durable``, segment roll, poisoning, open with recovery.

Durability levels (``docs/journal-format.md``):

* ``append`` frames the record into an in-memory buffer (nothing reaches the OS yet).
* ``flush`` hands the buffer to the OS with ``os.write`` (a *process* crash after it loses nothing).
  ``append`` also flushes by itself once the buffer holds ``FLUSH_BYTES``, and at every segment roll.
* ``sync`` / ``durable`` / the group committer ``fdatasync`` (an OS crash or power loss after it loses nothing).
"""
from __future__ import annotations

import errno
import fcntl
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from hashlib import blake2b
from pathlib import Path
from types import TracebackType

import trio
from crc32c import crc32c

from journal.errors import (
    JournalClosed,
    JournalError,
    JournalExists,
    JournalLocked,
    JournalNotFound,
    JournalPoisoned,
)
from journal.format import (
    _FRAME,
    _LEN_SEQ,
    MAX_RECORD,
    TMP_SUFFIX,
    ZERO_DIGEST,
    HeaderInfo,
    SegmentHeader,
    check_header_info,
    encode_header,
    make_header,
    runtime_versions,
    segment_name,
)
from journal.recovery import LOCK_NAME, Analysis, RecoveryReport, analyze, list_dir

DEFAULT_SEGMENT_BYTES = 64 << 20
FLUSH_BYTES = 1 << 20
"""``append`` flushes by itself once this many bytes are buffered (bounds memory, not a durability promise)."""

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class FileOps:
    """Every call the writer makes that changes the disk goes through one of these methods.

    This is the fault-injection seam: tests pass a subclass (``io=``) whose methods raise ``OSError`` (ENOSPC,
    EIO), count calls or skip real fsyncs. Methods may be called from a worker thread (``fdatasync``).
    """

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        return os.open(path, flags, mode)

    def write(self, fd: int, data: memoryview) -> int:
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        if sys.platform == "darwin":  # macOS fsync does not flush the drive cache
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
        else:
            os.fsync(fd)

    def fdatasync(self, fd: int) -> None:
        if hasattr(os, "fdatasync") and sys.platform != "darwin":
            os.fdatasync(fd)
        else:
            self.fsync(fd)

    def ftruncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def close(self, fd: int) -> None:
        os.close(fd)

    def rename(self, src: str, dst: str) -> None:
        os.rename(src, dst)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _take_lock(path: Path) -> int:
    fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT | _O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalLocked(
            f"{path}: journal is locked by another writer (flock on {LOCK_NAME}); one writer per journal"
        ) from None
    return fd


def _release_lock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class Journal:
    """The single writer of one journal directory. Not thread-safe; use it from one task.

    Make one with :meth:`create` (new journal) or :meth:`open` (existing journal, after recovery). Guarantees:

    * seqs are 1, 2, 3, ... with no gaps, across segments and across reopen;
    * the bytes written are a pure function of (HeaderInfo, segment_bytes, the payloads appended): the journal
      never reads a clock or a random source, and rolls segments by size only;
    * after ``flush()`` returns, the records are in the OS (survive a process crash); after ``sync()``,
      ``await durable(seq)`` or a group commit covering them, they survive an OS crash or power loss;
    * any ``OSError`` while writing, syncing or rolling poisons the writer: that call and every later one
      raise :class:`JournalPoisoned`, and fsync is never retried.
    """

    def __init__(self, path: Path, info: HeaderInfo, segment_bytes: int, io: FileOps, lock_fd: int) -> None:
        """Private: use :meth:`create` or :meth:`open`."""
        self._path = path
        self._info = info
        self._segment_bytes = segment_bytes
        self._io = io
        self._lock_fd: int | None = lock_fd
        self._versions = runtime_versions()
        self._fd: int | None = None
        self._fd_lock = threading.Lock()
        self._commit_lock: trio.Lock | None = None
        self._buf = bytearray()
        self._header: SegmentHeader | None = None
        self._seg_first_seq = 1
        self._seg_index = 0
        self._seg_size = 0
        self._last_seq = 0
        self._flushed_seq = 0
        self._synced_seq = 0
        self._digest = ZERO_DIGEST
        self._ok = True
        self._closed = False
        self._poison: str | None = None

    # ---------------------------------------------------------------- construction

    @classmethod
    def create(
        cls,
        path: str | Path,
        header: HeaderInfo,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        io: FileOps | None = None,
    ) -> Journal:
        """Create a new journal directory at ``path`` (parents too) with its first, empty segment.

        Raises:
            JournalExists: ``path`` already holds segments.
            JournalLocked: another writer holds the directory.
        """
        check_header_info(header)
        _check_segment_bytes(segment_bytes)
        path = Path(path)
        io = io or FileOps()
        if not path.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir(exist_ok=True)
            io.fsync_dir(str(path.parent))
        self = cls(path, header, segment_bytes, io, _take_lock(path))
        try:
            segs, tmps = list_dir(path)
            if segs:
                raise JournalExists(f"{path}: a journal already exists here ({len(segs)} segments); open it instead")
            with self._guard("create"):
                for t in tmps:
                    io.unlink(str(path / t))
                self._new_segment(0, 1, ZERO_DIGEST)
            return self
        except BaseException:
            self._abandon()
            raise

    @classmethod
    def open(
        cls,
        path: str | Path,
        header: HeaderInfo,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        io: FileOps | None = None,
    ) -> tuple[Journal, RecoveryReport]:
        """Open an existing journal for appending, after recovery (B8).

        Takes the lock, validates every segment and every record, cuts a torn tail off the last segment
        (truncate + fsync before anything is appended), deletes leftover ``*.tmp`` files and a last segment
        whose header was never completed, then continues after the last valid seq. Segments created from now
        on carry ``header``; the current last segment keeps its own.

        Returns:
            The writer and a report of what recovery found and did.

        Raises:
            JournalNotFound: no journal at ``path``.
            JournalLocked: another writer holds it.
            JournalCorruption, JournalVersionError: damage recovery must not repair; nothing was changed.
        """
        check_header_info(header)
        _check_segment_bytes(segment_bytes)
        path = Path(path)
        io = io or FileOps()
        segs, _ = list_dir(path)
        if not segs and not (path / LOCK_NAME).exists():
            raise JournalNotFound(f"{path}: no journal here (no segments)")
        self = cls(path, header, segment_bytes, io, _take_lock(path))
        try:
            an = analyze(path)
            with self._guard("recovery"):
                self._recover(an)
            return self, an.report
        except BaseException:
            self._abandon()
            raise

    def _recover(self, an: Analysis) -> None:
        io, path = self._io, self._path
        changed = False
        for name in an.tmp_files:
            io.unlink(str(path / name))
            changed = True
        if an.delete is not None:
            io.unlink(str(path / an.delete))
            changed = True
        if changed:
            io.fsync_dir(str(path))
        if not an.segments:
            self._new_segment(0, 1, ZERO_DIGEST)
            return
        seg = an.segments[-1]
        fd = io.open(str(path / seg.name), os.O_WRONLY | os.O_APPEND | _O_CLOEXEC)
        self._fd = fd
        if an.truncate is not None:
            io.ftruncate(fd, an.truncate[1])
        io.fsync(fd)  # whatever the last writer left unsynced is durable before we build on it
        self._header = seg.header
        self._seg_index = seg.header.segment_index
        self._seg_first_seq = seg.header.first_seq
        self._seg_size = seg.end
        self._last_seq = self._flushed_seq = self._synced_seq = an.last_seq
        self._digest = an.digest

    def _new_segment(self, index: int, first_seq: int, prev_digest: bytes) -> None:
        """Write a new segment's header to ``.tmp``, fsync, rename into place, fsync the directory."""
        hdr = make_header(
            self._info, segment_index=index, first_seq=first_seq, prev_digest=prev_digest, versions=self._versions
        )
        data = encode_header(hdr)
        name = segment_name(first_seq)
        final, tmp = str(self._path / name), str(self._path / (name + TMP_SUFFIX))
        io = self._io
        fd = io.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | _O_CLOEXEC, 0o644)
        try:
            self._write_all(fd, data)
            io.fsync(fd)
            io.rename(tmp, final)
            io.fsync_dir(str(self._path))
        except BaseException:
            try:
                io.close(fd)
            except OSError:
                pass
            raise
        self._fd = fd
        self._header = hdr
        self._seg_index = index
        self._seg_first_seq = first_seq
        self._seg_size = len(data)

    # ---------------------------------------------------------------- properties

    @property
    def path(self) -> Path:
        """The journal directory."""
        return self._path

    @property
    def last_seq(self) -> int:
        """Seq of the last appended record (0: none). It may still be only in the buffer."""
        return self._last_seq

    @property
    def flushed_seq(self) -> int:
        """Every record up to this seq has been written to the OS."""
        return self._flushed_seq

    @property
    def synced_seq(self) -> int:
        """Every record up to this seq has been fdatasync'ed (durable against power loss)."""
        return self._synced_seq

    @property
    def digest(self) -> str:
        """Hex blake2b-256 running digest over every record frame through ``last_seq``."""
        return self._digest.hex()

    @property
    def header(self) -> SegmentHeader:
        """The header of the segment currently appended to."""
        assert self._header is not None
        return self._header

    @property
    def poisoned(self) -> bool:
        return self._poison is not None

    # ---------------------------------------------------------------- writing

    def append(self, payload: bytes) -> int:
        """Frame ``payload`` as the next record and return its seq. Buffered: see :meth:`flush`.

        May flush (buffer full) or roll to a new segment (size reached) before returning; both do I/O.

        Raises:
            ValueError: ``payload`` is empty or larger than ``MAX_RECORD`` (the writer stays usable).
            JournalPoisoned: this or an earlier write/fsync/roll failed.
            JournalClosed: after :meth:`close`.
        """
        if not self._ok:
            self._raise_unusable()
        n = len(payload)
        if n == 0 or n > MAX_RECORD:
            raise ValueError(f"record payload must be 1..{MAX_RECORD} bytes, got {n}")
        seq = self._last_seq + 1
        x = crc32c(payload, crc32c(_LEN_SEQ.pack(n, seq)))
        frame = _FRAME.pack(n, (((x >> 15) | (x << 17)) + 0xA282EAD8) & 0xFFFFFFFF, seq) + payload
        size = self._seg_size + n + 16
        if size > self._segment_bytes and seq > self._seg_first_seq:
            self._roll(seq)
            size = self._seg_size + n + 16
        self._buf += frame
        self._seg_size = size
        self._digest = blake2b(self._digest + frame, digest_size=32).digest()
        self._last_seq = seq
        if len(self._buf) >= FLUSH_BYTES:
            self.flush()
        return seq

    def flush(self) -> None:
        """Write every buffered record to the OS (``os.write``). After it returns, a process crash loses nothing.

        Raises:
            JournalPoisoned, JournalClosed.
        """
        if not self._ok:
            self._raise_unusable()
        if not self._buf:
            return
        with self._guard("write"):
            self._write_all(self._fd, self._buf)  # type: ignore[arg-type]
        self._buf = bytearray()
        self._flushed_seq = self._last_seq

    def sync(self) -> None:
        """Flush, then fdatasync: every appended record is durable when this returns. Blocks the caller.

        Raises:
            JournalPoisoned, JournalClosed.
        """
        self.flush()
        with self._fd_lock:
            target = self._flushed_seq
            if target > self._synced_seq:
                with self._guard("fdatasync"):
                    self._io.fdatasync(self._fd)  # type: ignore[arg-type]
                self._synced_seq = target

    def _roll(self, first_seq: int) -> None:
        self.flush()
        with self._fd_lock, self._guard("segment roll"):
            old = self._fd
            assert old is not None
            self._io.fsync(old)
            self._synced_seq = self._flushed_seq
            self._fd = None
            self._io.close(old)
            self._new_segment(self._seg_index + 1, first_seq, self._digest)

    def _write_all(self, fd: int, data: bytes | bytearray) -> None:
        with memoryview(data) as mv:
            off, n = 0, len(mv)
            while off < n:
                w = self._io.write(fd, mv[off:])
                if w <= 0:
                    raise OSError(errno.EIO, "write returned 0")
                off += w

    # ---------------------------------------------------------------- trio: group commit

    async def durable(self, seq: int) -> None:
        """Return once record ``seq`` is fdatasync'ed (flushing first if needed).

        Waiters share syncs: one in flight covers every record written before it started, so a caller waits
        for at most that sync plus one more. Works with or without :meth:`run_group_commit` running.
        Cancellation: safe; a sync already started in a worker thread runs to completion.

        Raises:
            ValueError: ``seq`` was never appended.
            JournalPoisoned: the sync (or an earlier one) failed.
            JournalClosed: closed before ``seq`` became durable.
        """
        if seq > self._last_seq:
            raise ValueError(f"seq {seq} has not been appended (last seq {self._last_seq})")
        if self._synced_seq >= seq:
            await trio.lowlevel.checkpoint()
            return
        while self._synced_seq < seq:
            await self._commit()

    async def run_group_commit(
        self,
        *,
        interval_s: float = 0.005,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Background group commit: every ``interval_s``, flush and fdatasync whatever is not yet durable.

        Start it with ``await nursery.start(journal.run_group_commit)``. The fdatasync runs in a worker thread
        (``trio.to_thread.run_sync``), one at a time, so the event loop never waits on the disk. Runs until
        cancelled or the journal is closed.

        Raises:
            JournalPoisoned: a write or fdatasync failed (the task ends; fail-stop the pipeline).
        """
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        if not self._ok:
            self._raise_unusable()
        task_status.started()
        while True:
            await trio.sleep(interval_s)
            if self._poison is not None:
                raise JournalPoisoned(self._poison)
            if self._closed:
                return
            if self._buf or self._flushed_seq > self._synced_seq:
                try:
                    await self._commit()
                except JournalClosed:
                    return

    async def _commit(self) -> None:
        if self._commit_lock is None:
            self._commit_lock = trio.Lock()
        async with self._commit_lock:
            if not self._ok:
                self._raise_unusable()
            self.flush()
            if self._flushed_seq > self._synced_seq:
                await trio.to_thread.run_sync(self._sync_worker)
                if self._poison is not None:  # (closed meanwhile is fine: close() synced everything)
                    raise JournalPoisoned(self._poison)

    def _sync_worker(self) -> None:
        """Runs in a worker thread. The fd lock keeps a roll or close from swapping the fd under it."""
        with self._fd_lock:
            if not self._ok or self._fd is None:
                return
            target = self._flushed_seq
            if target <= self._synced_seq:
                return
            try:
                self._io.fdatasync(self._fd)
            except OSError as exc:
                self._set_poison("fdatasync", exc)
                return
            self._synced_seq = target

    # ---------------------------------------------------------------- poisoning and closing

    @contextmanager
    def _guard(self, op: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            self._set_poison(op, exc)
            raise JournalPoisoned(self._poison) from exc

    def _set_poison(self, op: str, exc: OSError) -> None:
        if self._poison is None:
            self._poison = (
                f"{self._path}: journal poisoned: {op} failed ({exc}); the process must stop (fsync is never "
                "retried); reopening runs recovery"
            )
        self._ok = False

    def _raise_unusable(self) -> None:
        if self._poison is not None:
            raise JournalPoisoned(self._poison)
        raise JournalClosed(f"{self._path}: journal is closed")

    def close(self) -> None:
        """Flush, fdatasync, close the segment and release the lock. Idempotent.

        On a poisoned writer it only releases the file descriptors and the lock, then raises.

        Raises:
            JournalPoisoned: the final flush/sync failed, or the writer was already poisoned.
        """
        if self._closed:
            return
        err: JournalError | None = None
        if self._ok:
            try:
                self.sync()
            except JournalPoisoned as exc:
                err = exc
        self._closed = True
        self._ok = False
        with self._fd_lock:
            if self._fd is not None:
                try:
                    self._io.close(self._fd)
                except OSError:
                    pass
                self._fd = None
        if self._lock_fd is not None:
            _release_lock(self._lock_fd)
            self._lock_fd = None
        if err is not None:
            raise err
        if self._poison is not None:
            raise JournalPoisoned(self._poison)

    def _abandon(self) -> None:
        """Release the file descriptors and the lock without flushing (construction failed)."""
        self._closed, self._ok = True, False
        if self._fd is not None:
            try:
                self._io.close(self._fd)
            except OSError:
                pass
            self._fd = None
        if self._lock_fd is not None:
            _release_lock(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.close()
        except JournalPoisoned:
            if exc_type is None:
                raise

    def __repr__(self) -> str:
        state = "poisoned" if self._poison else "closed" if self._closed else "open"
        return f"<Journal {self._path} {state} last_seq={self._last_seq} synced_seq={self._synced_seq}>"

    def __del__(self) -> None:
        # A writer dropped without close() behaves like a crashed process (its buffer is lost), but its file
        # descriptors and lock are released so that this process can reopen the journal.
        for name in ("_fd", "_lock_fd"):
            fd = getattr(self, name, None)
            if fd is not None:
                try:
                    os.close(fd)
                except Exception:
                    pass


def _check_segment_bytes(segment_bytes: int) -> None:
    if not isinstance(segment_bytes, int) or segment_bytes <= 0:
        raise ValueError(f"segment_bytes must be a positive int, got {segment_bytes!r}")
