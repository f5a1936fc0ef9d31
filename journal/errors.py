"""Journal errors. Every message is one line that names the journal file (and byte offset, where there is one).

All of them subclass :class:`JournalError`, so a CLI can catch that one class and print ``str(exc)``.
"""
from __future__ import annotations

from pathlib import Path


class JournalError(Exception):
    """Base class of every error the journal raises on purpose."""


class JournalNotFound(JournalError):
    """There is no journal at the given path (no directory, or no segments in it)."""


class JournalExists(JournalError):
    """``Journal.create`` was pointed at a directory that already holds journal segments."""


class JournalLocked(JournalError):
    """Another writer holds the journal's ``LOCK`` (one writer per journal directory)."""


class JournalClosed(JournalError):
    """The writer was used after ``close()``."""


class JournalPoisoned(JournalError):
    """A write, fsync or roll failed earlier; the writer refuses all further work.

    A failed fsync is never retried (after a failed fsync Linux may drop the dirty pages and report success on
    the next call: "fsyncgate"). The process must stop; recovery happens on the next ``Journal.open``.
    """


class JournalCorruption(JournalError):
    """Damage that recovery must not repair silently: mid-log corruption, a broken segment chain, bad magic.

    Attributes ``path``, ``offset`` (byte offset in that file) and ``what`` carry the parts of the message.
    """

    def __init__(self, path: str | Path, offset: int, what: str) -> None:
        self.path = str(path)
        self.offset = offset
        self.what = what
        super().__init__(f"{self.path}: offset {offset}: {what}")


class JournalVersionError(JournalError):
    """The segment was written in a journal format this pmm does not read."""

    def __init__(self, path: str | Path, version: int, supported: int) -> None:
        self.path = str(path)
        self.version = version
        super().__init__(
            f"{self.path}: journal format v{version} not supported by this pmm (supports {supported}): "
            "upgrade pmm or regenerate"
        )
