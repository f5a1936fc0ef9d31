"""A recorded session can be served again: journal frames -> sandbox playback -> a new session sees them."""
from __future__ import annotations

from pathlib import Path

from events.control import RunStarted
from events.market import FeedFrame
from pmm.config import MarketSelector
from journal import JournalReader
from replay.export import export_frames
from replay.journal_io import read_envelopes
from sandbox.server import open_sandbox
from tests.test_session import session


async def test_recorded_frames_served_again_reach_a_new_session_unchanged(tmp_path: Path, autojump_clock) -> None:
    async with open_sandbox(seed=8, scenario="busy") as sb:
        first, _ = await session(tmp_path / "a", sb, "shadow", 10)
    n = export_frames(first.run_dir, tmp_path / "frames.jsonl")
    recorded = [e.ev.text for _, _, e in read_envelopes(JournalReader(first.run_dir))
                if isinstance(e.ev, FeedFrame) and e.ev.text != "PONG"]
    assert n >= len(recorded) > 20
    run = next(e.ev for _, _, e in read_envelopes(JournalReader(first.run_dir)) if isinstance(e.ev, RunStarted))
    markets = tuple(MarketSelector(condition_id=m.condition_id, yes_token=m.yes_token, no_token=m.no_token)
                    for m in run.params.markets)
    async with open_sandbox(playback=tmp_path / "frames.jsonl") as sb:
        second, _ = await session(tmp_path / "b", sb, "shadow", 15, markets=markets)
    served = [e.ev.text for _, _, e in read_envelopes(JournalReader(second.run_dir)) if isinstance(e.ev, FeedFrame)]
    later = [t for t in recorded if '"book"' not in t][:10]  # updates after the initial dump
    assert later and all(t in served for t in later)
