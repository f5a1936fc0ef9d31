"""Playback of recorded raw frames with their relative timing."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import trio
from sandbox_testkit import MarketClient, RefBook
from trio_websocket import open_websocket_url

from sandbox.playback import PlaybackSource, load_jsonl
from sandbox.server import open_sandbox
from sandbox.sim import MarketSim
from sandbox.wire import encode

STEP_NS = 200_000_000


def record(seed: int = 4, steps: int = 120) -> tuple[list[tuple[int, str]], MarketSim]:
    """What a client subscribed to everything would have recorded from a sim: dump, frames, a PONG, a []."""
    sim = MarketSim(seed, "calm")
    ts = 1_000_000_000_000
    pairs = [(ts, encode([sim.book_event(t) for t in sim.token_ids]))]
    for i in range(steps):
        ts += STEP_NS * (1 + i % 3)  # uneven gaps
        pairs += [(ts, encode(f)) for f in sim.step()]
        if i == 10:
            pairs += [(ts, "PONG"), (ts, "[]")]
    return pairs, sim


def write_jsonl(path: Path, pairs: list[tuple[int, str]]) -> None:
    path.write_text("".join(json.dumps({"ts_ns": t, "frame": f}) + "\n" for t, f in pairs), encoding="utf-8")


async def test_playback_file_is_served_verbatim_with_timing(tmp_path: Path, autojump_clock) -> None:
    pairs, sim = record()
    path = tmp_path / "rec.jsonl"
    write_jsonl(path, pairs)
    assert load_jsonl(path) == pairs
    expected = [(t, f) for t, f in pairs if f != "PONG"]
    async with open_sandbox(playback=path, speed=2.0) as sb:
        assert sb.token_ids == sim.token_ids
        assert [m.condition_id for m in sb.markets] == [m.condition_id for m in sim.markets]
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = MarketClient(ws, None)
            await c.subscribe(sb.token_ids, custom=True)  # the first subscriber starts the playback
            got, times = [], []
            with trio.fail_after(600):
                while len(got) < len(expected):
                    got.append(await c.recv())
                    times.append(trio.current_time())
            assert got == [f for _, f in expected]  # byte-identical, PONG skipped
            t_first = expected[0][0]
            for (ts, _), at in zip(expected, times, strict=True):
                assert at - times[0] >= (ts - t_first) / 1e9 / 2.0 - 1e-9
            span = (expected[-1][0] - t_first) / 1e9 / 2.0
            assert times[-1] - times[0] <= span + 1.0
            await sb.playback.finished.wait()
            assert await c.barrier() == []
        for t in sim.token_ids:
            a, b = sb.book(t), sim.book(t)
            assert (a.bids, a.asks, a.tick_size, a.last_trade_price) == (
                b.bids,
                b.asks,
                b.tick_size,
                b.last_trade_price,
            )
        # REST reflects the playback position
        async with httpx.AsyncClient(base_url=sb.base_url) as http:
            b = (await http.get("/book", params={"token_id": sim.token_ids[0]})).json()
            assert b["bids"] == sim.rest_book(sim.token_ids[0])["bids"]
            assert (await http.get("/markets")).status_code == 200
        # a late subscriber gets a dump rebuilt from the played books
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = MarketClient(ws, None)
            await c.subscribe(sim.token_ids)
            ref = RefBook()
            ref.apply_text(await c.recv())
            for t in sim.token_ids:
                assert ref.matches(t, sim.book(t))


async def test_playback_filters_by_asset_and_starts_immediately(autojump_clock) -> None:
    pairs, sim = record(steps=60)
    src = PlaybackSource(iter(pairs), speed=10.0, start="immediate")
    m = sim.markets[1]
    async with open_sandbox(playback=src) as sb:
        await src.finished.wait()  # nobody listening: played to the end anyway
        assert src.position == len(pairs) - 1
    src = PlaybackSource(pairs, speed=10.0)
    async with open_sandbox(playback=src) as sb:
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = MarketClient(ws, None)
            await c.subscribe(list(m.tokens))
            await src.finished.wait()
            got = await c.barrier()
        for text in got:
            obj = json.loads(text)
            evs = obj if isinstance(obj, list) else [obj]
            assert evs == [] or any(e["market"] == m.condition_id for e in evs)
        assert got[0].startswith('[{"market"')  # the recorded dump (it names this market's tokens too)
        assert len(got) < len(pairs) - 1


def test_load_jsonl_rejects_bad_lines(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"ts_ns": 1, "frame": "PONG"}\n\n{"frame": "x"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:3"):
        load_jsonl(p)
    with pytest.raises(ValueError):
        PlaybackSource([], speed=0)
