"""Recovery analysis (B8): validate a whole journal read-only and decide what opening it for writing must cut.

``analyze`` never modifies anything; ``Journal.open`` applies its plan (truncate a torn tail, delete a segment
whose header was never completed, delete ``*.tmp``), and ``scan`` returns its report for tools.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from journal.errors import JournalCorruption, JournalNotFound
from journal.format import (
    NO_STOP,
    SEGMENT_RE,
    TMP_SUFFIX,
    ZERO_DIGEST,
    IncompleteHeader,
    SegmentHeader,
    diagnose_tail,
    parse_frames,
    read_header,
    segment_name,
)

LOCK_NAME = "LOCK"


@dataclass(frozen=True)
class RecoveryReport:
    """What recovery found (``scan``) or did (``Journal.open``).

    Attributes:
        last_seq: the last valid record's seq (0: no records).
        dropped_bytes: bytes cut off the end of the log (0 when clean).
        torn: whether a torn tail (or a segment with an unfinished header) was found.
        segment: file name of the segment holding the torn tail, else None.
        offset: byte offset in ``segment`` where the cut is, else None.
        digest: hex running digest through ``last_seq``.
        reason: why the tail counts as torn ("" when clean).
        deleted: True when the whole ``segment`` goes (its header was never completed).
    """

    last_seq: int
    dropped_bytes: int
    torn: bool
    segment: str | None
    offset: int | None
    digest: str
    reason: str = ""
    deleted: bool = False

    def __str__(self) -> str:
        tail = f"last seq {self.last_seq}, digest {self.digest[:16]}"
        if not self.torn:
            return f"clean: {tail}"
        if self.deleted:
            return f"torn: segment {self.segment} dropped whole ({self.dropped_bytes} bytes: {self.reason}); {tail}"
        return (
            f"torn tail: {self.segment} from offset {self.offset} ({self.dropped_bytes} bytes: {self.reason}); {tail}"
        )


@dataclass
class Segment:
    """A validated segment."""

    name: str
    header: SegmentHeader
    hdr_end: int
    end: int
    """Offset just after its last valid record (the append position for the last segment)."""


@dataclass
class Analysis:
    path: Path
    segments: list[Segment] = field(default_factory=list)
    last_seq: int = 0
    digest: bytes = ZERO_DIGEST
    truncate: tuple[str, int] | None = None
    delete: str | None = None
    dropped: int = 0
    reason: str = ""
    tmp_files: list[str] = field(default_factory=list)

    @property
    def report(self) -> RecoveryReport:
        torn = self.truncate is not None or self.delete is not None
        seg = self.delete if self.delete is not None else (self.truncate[0] if self.truncate else None)
        off = 0 if self.delete is not None else (self.truncate[1] if self.truncate else None)
        return RecoveryReport(
            last_seq=self.last_seq,
            dropped_bytes=self.dropped,
            torn=torn,
            segment=seg,
            offset=off,
            digest=self.digest.hex(),
            reason=self.reason,
            deleted=self.delete is not None,
        )


def list_dir(path: Path) -> tuple[list[str], list[str]]:
    """(segment names sorted by first seq, leftover ``*.tmp`` names). Never trusts listdir order.

    Raises:
        JournalNotFound: ``path`` is not a directory.
        JournalCorruption: a ``seg-*`` file that is neither a segment nor a temp file (a stray copy).
    """
    try:
        names = sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        raise JournalNotFound(f"{path}: no journal here (no such directory)") from None
    segs: list[str] = []
    tmps: list[str] = []
    for name in names:
        if SEGMENT_RE.fullmatch(name):
            segs.append(name)
        elif name.startswith("seg-") and name.endswith(TMP_SUFFIX):
            tmps.append(name)
        elif name.startswith("seg-"):
            raise JournalCorruption(
                path / name, 0, "unexpected file in the journal directory (a copied or duplicate segment?)"
            )
    return segs, tmps


def read_file(path: Path) -> bytes:
    with open(path, "rb") as f:  # O_RDONLY
        return f.read()


def check_link(path: Path, name: str, index: int, hdr: SegmentHeader, seq: int, digest: bytes | None) -> None:
    """Check that segment ``name`` (position ``index``) continues the chain at seq ``seq`` / ``digest``."""
    where = path / name
    first = int(name[4:24])
    if hdr.first_seq != first:
        raise JournalCorruption(where, 16, f"header says first seq {hdr.first_seq} but the file name says {first}")
    if hdr.first_seq > seq:
        raise JournalCorruption(
            where, 16, f"seq gap: seq {seq}..{hdr.first_seq - 1} missing (missing segment {segment_name(seq)}?)"
        )
    if hdr.first_seq < seq:
        raise JournalCorruption(
            where, 16,
            f"starts at seq {hdr.first_seq} but seq {hdr.first_seq}..{seq - 1} are in earlier segments "
            "(duplicate or overlapping segment)",
        )
    if hdr.prev_last_seq != seq - 1:
        raise JournalCorruption(where, 16, f"header prev_last_seq {hdr.prev_last_seq}, expected {seq - 1}")
    if hdr.segment_index != index:
        raise JournalCorruption(
            where, 16, f"segment index {hdr.segment_index}, expected {index} (missing or duplicate segment)"
        )
    if digest is not None and hdr.prev_digest != digest:
        raise JournalCorruption(
            where, 16, "header prev_digest does not match the records before it (segment from another journal?)"
        )


def analyze(path: Path) -> Analysis:
    """Validate every segment of the journal at ``path``, read-only, and plan recovery.

    Checks headers (magic, version, CRC, name == first seq, index, seq and digest chain) and every record of
    every segment. Only the end of the last segment may be cut, and only when :func:`diagnose_tail` calls it
    torn; a last segment whose header is incomplete is planned for deletion.

    Raises:
        JournalNotFound, JournalCorruption, JournalVersionError.
    """
    path = Path(path)
    segs, tmps = list_dir(path)
    an = Analysis(path, tmp_files=tmps)
    seq, digest = 1, ZERO_DIGEST
    for i, name in enumerate(segs):
        last = i == len(segs) - 1
        where = path / name
        data = read_file(where)
        try:
            hdr, hdr_end = read_header(data, str(where))
        except IncompleteHeader as exc:
            if not last:
                raise JournalCorruption(where, exc.offset, f"{exc.what} (not the last segment)") from None
            an.delete, an.dropped, an.reason = name, len(data), exc.what
            break
        check_link(path, name, i, hdr, seq, digest)
        off, seq, digest = parse_frames(data, hdr_end, seq, NO_STOP, digest, None)  # type: ignore[assignment]
        if off != len(data):
            torn, what = diagnose_tail(data, off, seq)
            if not torn:
                raise JournalCorruption(where, off, what)
            if not last:
                raise JournalCorruption(where, off, f"{what} (not the last segment)")
            an.truncate, an.dropped, an.reason = (name, off), len(data) - off, what
        an.segments.append(Segment(name, hdr, hdr_end, off))
    an.last_seq, an.digest = seq - 1, digest
    return an


def scan(path: str | Path) -> RecoveryReport:
    """What ``Journal.open`` would do to the journal at ``path``, without doing it (read-only).

    Raises:
        JournalNotFound: no journal directory, or no segments in it.
        JournalCorruption / JournalVersionError: damage that recovery refuses to repair.
    """
    an = analyze(Path(path))
    if not an.segments and an.delete is None:
        raise JournalNotFound(f"{path}: no journal segments here")
    return an.report
