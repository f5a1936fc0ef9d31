"""Sessions end to end against the real sandbox exchange over real loopback sockets, on trio's virtual clock."""
from __future__ import annotations

from pathlib import Path

import pytest
import trio

from actors.edge.clock import TrioClock
from actors.session import SessionError, endpoints_for, run_session
from actors.sink.status import read_status
from events.control import KillSwitch, OperatorStop, RunEnded
from events.market import FeedFrame, FeedStatus
from events.orders import DesiredQuotes, ExchangeReply, OrderIntent, OrderState
from journal import JournalReader
from pmm.config import AppConfig
from replay.journal_io import read_envelopes
from replay.verify import verify
from sandbox.server import open_sandbox


def records(run_dir: Path) -> list:
    return [env for _, _, env in read_envelopes(JournalReader(run_dir))]


def cfg(tmp_path: Path, **kw) -> AppConfig:
    return AppConfig(status_file=str(tmp_path / "status.json"), journal_dir=str(tmp_path / "journals"), seed=7, **kw)


async def session(tmp_path: Path, sb, mode: str, duration: float, *, sandbox: bool = True, stop=None, **kw):
    lines: list[str] = []
    res = await run_session(
        cfg(tmp_path, **kw), mode=mode, endpoints=endpoints_for(sb.base_url, sandbox=sandbox), duration_s=duration,
        journal_root=tmp_path / "journals", clock=TrioClock(), out=lines.append, handle_signals=False, stop=stop,
    )
    return res, lines


async def test_paper_sim_session_quotes_rests_orders_stops_cleanly_and_replays(tmp_path: Path, autojump_clock) -> None:
    async with open_sandbox(seed=3, scenario="busy") as sb:
        res, lines = await session(tmp_path, sb, "paper", 60)
    envs = records(res.run_dir)
    kinds = [type(e.ev) for e in envs]
    assert kinds.count(FeedFrame) > 100
    assert DesiredQuotes in kinds and OrderIntent in kinds
    assert any(isinstance(e.ev, ExchangeReply) and e.ev.op == "place" and e.ev.ok for e in envs)
    # the stop: OperatorStop -> KillSwitch -> every order cancelled -> RunEnded last
    stop_i = next(i for i, e in enumerate(envs) if isinstance(e.ev, OperatorStop))
    assert any(isinstance(e.ev, KillSwitch) and e.ev.reason == "operator_stop" for e in envs[stop_i:])
    last_state: dict[str, str] = {}
    for e in envs:
        if isinstance(e.ev, OrderState):
            last_state[e.ev.client_id] = e.ev.state
    assert last_state and all(s in ("cancelled", "filled", "rejected") for s in last_state.values()), last_state
    assert isinstance(envs[-1].ev, RunEnded)
    assert verify(res.run_dir).ok
    status = read_status(tmp_path / "status.json")
    assert status.state == "stopped" and status.kill_switch.startswith("operator_stop")
    assert status.frames == kinds.count(FeedFrame) and status.last_seq == len(envs)
    assert len(lines) >= 50 and "msg/s" in lines[10]


async def test_shadow_session_computes_quotes_and_sends_nothing(tmp_path: Path, autojump_clock) -> None:
    async with open_sandbox(seed=4, scenario="calm") as sb:
        res, _ = await session(tmp_path, sb, "shadow", 20)
    envs = records(res.run_dir)
    assert any(isinstance(e.ev, DesiredQuotes) and e.ev.quotes for e in envs)
    assert not any(isinstance(e.ev, OrderIntent) for e in envs)
    assert not any(isinstance(e.ev, ExchangeReply) and e.ev.op == "place" for e in envs)
    assert verify(res.run_dir).ok


async def test_feed_when_connection_dropped_then_reconnects_and_resyncs(tmp_path: Path, autojump_clock) -> None:
    async with open_sandbox(seed=5, scenario="calm") as sb:
        async def drop_later() -> None:
            await trio.sleep(5)
            sb.faults.drop()

        async with trio.open_nursery() as n:
            n.start_soon(drop_later)
            res, _ = await session(tmp_path, sb, "shadow", 30)
    envs = records(res.run_dir)
    states = [(e.ev.conn, e.ev.state) for e in envs if isinstance(e.ev, FeedStatus)]
    assert (1, "disconnected") in states and (2, "connected") in states
    assert any(isinstance(e.ev, FeedFrame) and e.ev.conn == 2 and '"book"' in e.ev.text for e in envs)
    assert verify(res.run_dir).ok


async def test_feed_when_socket_goes_silent_then_declared_dead_after_30s_and_reconnects(
    tmp_path: Path, autojump_clock
) -> None:
    async with open_sandbox(seed=6, scenario="calm") as sb:
        async def silence_later() -> None:
            await trio.sleep(5)
            sb.faults.half_open_now()

        async with trio.open_nursery() as n:
            n.start_soon(silence_later)
            res, _ = await session(tmp_path, sb, "shadow", 60)
    envs = records(res.run_dir)
    down = next(e for e in envs if isinstance(e.ev, FeedStatus) and e.ev.state == "disconnected")
    assert down.ev.detail.startswith("silent")
    last_frame = max(e.ts_ns for e in envs if isinstance(e.ev, FeedFrame) and e.ev.conn == 1)
    assert 30e9 <= down.ts_ns - last_frame < 31e9  # a PONG would have reset the watchdog: it was silent
    assert any(isinstance(e.ev, FeedStatus) and e.ev.conn == 2 and e.ev.state == "connected" for e in envs)


@pytest.mark.parametrize("answer", ["blocked", "down"])
async def test_session_on_a_real_exchange_when_geoblock_blocked_or_unreachable_then_refuses(
    tmp_path: Path, answer: str
) -> None:
    async with open_sandbox(seed=1, scenario="calm", geoblock=answer) as sb:
        with pytest.raises(SessionError, match="geoblock"):
            await session(tmp_path, sb, "paper", 5, sandbox=False)
    assert not (tmp_path / "journals").exists() or not any((tmp_path / "journals").iterdir())


async def test_session_on_a_real_exchange_when_geoblock_allows_then_runs_and_records_the_answer(
    tmp_path: Path, autojump_clock
) -> None:
    async with open_sandbox(seed=1, scenario="calm", geoblock="allowed") as sb:
        _, lines = await session(tmp_path, sb, "shadow", 3, sandbox=False)
    assert any("geoblock: allowed" in line for line in lines)
    assert read_status(tmp_path / "status.json").preflight[0].startswith("geoblock: allowed")
