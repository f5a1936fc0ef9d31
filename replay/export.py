"""Export the raw market frames of a journal, so the sandbox exchange can serve a recorded session again.

The output is JSON lines ``{"ts_ns": int, "frame": str}`` (the sandbox's playback format): every
``FeedFrame`` in seq order, with its receipt time. Frames from every connection are included; the sandbox skips
recorded ``PONG``s itself.
"""
from __future__ import annotations

from pathlib import Path

import msgspec

from events.market import FeedFrame
from journal import JournalReader
from replay.journal_io import check_schema, read_envelopes


def export_frames(journal: Path, out: Path) -> int:
    """Write the journal's frames to ``out``; returns how many."""
    reader = JournalReader(Path(journal))
    check_schema(reader)
    n = 0
    enc = msgspec.json.Encoder()
    with open(out, "wb") as f:
        for _seq, _payload, env in read_envelopes(reader):
            if isinstance(env.ev, FeedFrame):
                f.write(enc.encode({"ts_ns": env.ts_ns, "frame": env.ev.text}) + b"\n")
                n += 1
    return n
