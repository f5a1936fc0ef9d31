"""``pmm replay show``: print journal records as JSON lines, readable, filterable."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec

from events.codec import to_plain
from journal import JournalReader
from replay.journal_io import check_schema, read_envelopes


def show_lines(
    path: Path, *, from_seq: int = 1, to_seq: int | None = None, source: str | None = None
) -> Iterator[bytes]:
    """One JSON document per record (``seq, ts_ns, src, cause, ev``), in seq order."""
    reader = JournalReader(Path(path))
    check_schema(reader)
    for seq, _, env in read_envelopes(reader, from_seq=from_seq, to_seq=to_seq):
        if source is not None and env.src != source:
            continue
        yield msgspec.json.encode(to_plain(seq, env))
