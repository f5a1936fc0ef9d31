"""Glue between the journal (opaque bytes) and the events layer (envelopes)."""
from __future__ import annotations

import platform
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from events.codec import SCHEMA_FINGERPRINT, SCHEMA_VERSION, Envelope, EventDecodeError, decode
from journal import HeaderInfo, Journal, JournalError, JournalReader, Record

T = TypeVar("T")


class JournalSink:
    """The sequencer's record sink backed by an on-disk journal."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.append_payload = journal.append

    def append(self, payload: bytes, env: Envelope) -> int:
        return self.append_payload(payload)

    def flush(self) -> None:
        self.journal.flush()

    def close(self) -> None:
        self.journal.close()


def header_info(*, run_id: str, seed: int, created_ns: int, config_hash: str = "") -> HeaderInfo:
    return HeaderInfo(
        run_id=run_id,
        schema_version=SCHEMA_VERSION,
        schema_fingerprint=SCHEMA_FINGERPRINT,
        config_hash=config_hash,
        seed=seed,
        created_ns=created_ns,
    )


def open_sink(
    path: Path,
    *,
    run_id: str,
    seed: int,
    created_ns: int,
    config_hash: str = "",
    segment_bytes: int | None = None,
) -> JournalSink:
    """Create a new journal at ``path`` (which must not hold one) and return a sink writing to it."""
    kw = {} if segment_bytes is None else {"segment_bytes": segment_bytes}
    info = header_info(run_id=run_id, seed=seed, created_ns=created_ns, config_hash=config_hash)
    return JournalSink(Journal.create(Path(path), info, **kw))


class JournalDecodeError(JournalError):
    """A record's payload is not a valid event of this pmm's schema."""


def check_schema(reader: JournalReader) -> str:
    """Refuse journals of another schema version; return a note when the fingerprint differs but decodes."""
    hdr = reader.header
    where = str(reader.path)
    if hdr.schema_version != SCHEMA_VERSION:
        raise JournalDecodeError(
            f"{where}: event schema v{hdr.schema_version}, this pmm reads v{SCHEMA_VERSION}: "
            f"use the pmm version that wrote it"
        )
    if hdr.schema_fingerprint != SCHEMA_FINGERPRINT:
        return f"note: {where} was written by a different event schema build ({hdr.schema_fingerprint[:12]})"
    return ""


def read_envelopes(
    reader: JournalReader, *, from_seq: int = 1, to_seq: int | None = None
) -> Iterator[tuple[int, bytes, Envelope]]:
    """Every record in ``[from_seq, to_seq]`` as (seq, payload, envelope). Bad payloads raise one line."""
    for rec in reader.records(from_seq=from_seq, to_seq=to_seq):
        yield rec.seq, bytes(rec.payload), decode_record(rec)


def decode_record(rec: Record, decoder: Callable[[bytes], T] = decode) -> T:  # type: ignore[assignment]
    """``decoder(rec.payload)`` (the whole envelope by default); a payload that does not decode raises
    ``JournalDecodeError`` with one line naming its segment file, offset and seq."""
    try:
        return decoder(rec.payload)
    except EventDecodeError as exc:
        raise JournalDecodeError(f"{rec.segment}: offset {rec.offset}: record seq {rec.seq}: {exc}") from None


def machine() -> str:
    return f"{platform.python_implementation()} {platform.python_version()} {platform.machine()}"
