"""pmm's append-only journal: opaque payload records in CRC-framed, digest-chained segment files.

One writer (:class:`Journal`) per directory, any number of read-only readers (:class:`JournalReader`,
:func:`follow`, :func:`scan`). The format is in ``docs/journal-format.md``.
"""
from journal.errors import (
    JournalClosed,
    JournalCorruption,
    JournalError,
    JournalExists,
    JournalLocked,
    JournalNotFound,
    JournalPoisoned,
    JournalVersionError,
)
from journal.format import FORMAT_VERSION, MAX_RECORD, HeaderInfo, SegmentHeader
from journal.reader import JournalReader, Record, follow
from journal.recovery import RecoveryReport, scan
from journal.writer import DEFAULT_SEGMENT_BYTES, FileOps, Journal

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "FORMAT_VERSION",
    "MAX_RECORD",
    "FileOps",
    "HeaderInfo",
    "Journal",
    "JournalClosed",
    "JournalCorruption",
    "JournalError",
    "JournalExists",
    "JournalLocked",
    "JournalNotFound",
    "JournalPoisoned",
    "JournalReader",
    "JournalVersionError",
    "Record",
    "RecoveryReport",
    "SegmentHeader",
    "follow",
    "scan",
]
