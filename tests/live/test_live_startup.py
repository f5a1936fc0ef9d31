"""The live session's startup cleanup against the sandbox's fault injection, on trio's virtual clock: an engine
restart (425) or a rate limit (429) at boot is waited out with bounded backoff; past the deadline, or when the
operator stops it, the session refuses with one line and journals why."""
from __future__ import annotations

from pathlib import Path

import pytest
import trio

from actors.live_session import CLEANUP_WAIT_S, clean_stop
from actors.session import SessionError
from events.control import RunEnded
from events.live import OrderSigned, StartupCleanup
from replay.verify import verify
from sandbox.server import open_sandbox
from sandbox.testkeys import TEST_ADDRESS
from tests.live.livekit import events, run_live
from tests.sandbox.orders_kit import AsyncClob, passive_buy_price


async def stray_order(sb) -> str:
    """An order of our wallet left open by "an earlier run" (placed with the official SDK's headers)."""
    async with AsyncClob(sb) as ac:
        await ac.derive()
        tok = sb.markets[1].yes_token
        r = await ac.post_order(ac.build(tok, passive_buy_price(sb, tok, 3), 5), post_only=True)
        return r.json()["orderID"]


async def smoke_done(tmp_path: Path, sb) -> None:
    """A first short session: its preflight places the once-per-machine smoke order (an order write, which a 425
    would refuse), so the faults below hit the startup cleanup and not the preflight. Then the venue's dead-man
    switch of that session's heartbeats fires (10 s after the last beat) before anything else happens."""
    res, _ = await run_live(tmp_path, sb, duration=3)
    assert clean_stop(res)
    await trio.sleep(12)


def only_run(tmp_path: Path, before: set[Path]) -> Path:
    [run] = sorted(set((tmp_path / "journals").iterdir()) - before)
    return run


async def test_an_engine_restart_at_boot_is_waited_out_and_the_session_starts(tmp_path: Path, autojump_clock) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:
        await smoke_done(tmp_path, sb)
        stray = await stray_order(sb)
        t0 = trio.current_time()
        sb.faults.engine_restart(seconds=40, post_only_seconds=5)  # 425 on every order endpoint for 40 s
        res, lines = await run_live(tmp_path, sb, duration=30)
        assert trio.current_time() - t0 >= 40 + 30
        assert sb.faults.counts["engine_425"] >= 3
        assert sb.open_orders(TEST_ADDRESS) == []
    [cleanup] = events(res.run_dir, StartupCleanup)
    assert cleanup.ok and cleanup.found == (stray,) and cleanup.cancelled == (stray,)
    assert "waited" in cleanup.detail and "x HTTP 425" in cleanup.detail, cleanup.detail
    assert any("HTTP 425, the matching engine is restarting: retrying in" in line for line in lines)
    assert events(res.run_dir, OrderSigned), "the session never traded after the restart"
    assert clean_stop(res) and verify(res.run_dir).ok


async def test_an_engine_restart_longer_than_the_deadline_refuses_with_one_line(tmp_path: Path,
                                                                                autojump_clock) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:
        await smoke_done(tmp_path, sb)
        before = set((tmp_path / "journals").iterdir())
        t0 = trio.current_time()
        sb.faults.engine_restart(seconds=600, post_only_seconds=5)
        with pytest.raises(SessionError) as exc:
            await run_live(tmp_path, sb, duration=15, cleanup_wait_s=45)
        waited = trio.current_time() - t0
        assert 45 - 1e-6 <= waited < 45 + 10  # bounded: the deadline, plus one last try (float time: 44.99999…)
        accepted = [r for r in sb.audit.orders(accepted=True) if r["t"] >= t0]
        assert accepted == []  # nothing was placed
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("startup cleanup failed: cannot list open orders: ")
    assert "HTTP 425" in msg and "giving up: the limit is 45 s" in msg, msg
    run = only_run(tmp_path, before)
    [cleanup] = events(run, StartupCleanup)
    assert not cleanup.ok and "x HTTP 425" in cleanup.detail
    assert [e.reason for e in events(run, RunEnded)] == ["startup cleanup failed"]
    assert verify(run).ok


async def test_rate_limited_cancel_all_at_boot_honours_retry_after(tmp_path: Path, autojump_clock) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:
        await smoke_done(tmp_path, sb)
        stray = await stray_order(sb)
        sb.faults.rate_limit_orders(count=2, retry_after=7)  # the next two order writes: 429, Retry-After 7
        t0 = trio.current_time()
        res, lines = await run_live(tmp_path, sb, duration=5)
        limited = [r for r in sb.audit.of("request_rejected") if r["status"] == 429 and r["t"] >= t0]
        assert len(limited) == 2 and all(r["endpoint"] == "DELETE /cancel-all" for r in limited)
        assert limited[1]["t"] - limited[0]["t"] >= 7  # Retry-After honoured
        assert sb.open_orders(TEST_ADDRESS) == []
    [cleanup] = events(res.run_dir, StartupCleanup)
    assert cleanup.ok and cleanup.cancelled == (stray,) and "2 x HTTP 429" in cleanup.detail, cleanup.detail
    assert any("HTTP 429, rate limited: retrying in 7 s" in line for line in lines)
    assert clean_stop(res) and verify(res.run_dir).ok


async def test_a_stop_during_the_wait_refuses_at_once_and_journals_it(tmp_path: Path, autojump_clock) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:
        await smoke_done(tmp_path, sb)
        before = set((tmp_path / "journals").iterdir())
        sb.faults.engine_restart(seconds=600, post_only_seconds=5)
        stop = trio.Event()
        t0 = trio.current_time()

        async def operator() -> None:
            await trio.sleep(10)
            stop.set()

        async with trio.open_nursery() as n:
            n.start_soon(operator)
            with pytest.raises(SessionError, match="startup cleanup failed: stop requested during the startup cleanup"):
                await run_live(tmp_path, sb, duration=15, stop=stop)
        assert trio.current_time() - t0 < CLEANUP_WAIT_S / 2
    run = only_run(tmp_path, before)
    [cleanup] = events(run, StartupCleanup)
    assert not cleanup.ok and [e.reason for e in events(run, RunEnded)] == ["startup cleanup failed"]
    assert verify(run).ok
