"""The live session's starting inventory against the sandbox exchange (its ``GET /balance-allowance`` over loopback,
a wallet seeded with ``set_balance``), on trio's virtual clock: tokens held before the run count in the risk gate
and the portfolio, a balance that cannot be read refuses the start, a start beyond ``max_position`` halts, a
mismatch with what the previous run ended with refuses (unless accepted), and a slow venue-side start no longer
trips the stale-feed kill switch."""
from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import trio

from actors.edge.clock import TrioClock
from actors.edge.inventory import judge, previous_positions
from actors.live_session import clean_stop, run_live_session
from actors.session import SessionError
from events.base import MICRO
from events.control import KillSwitch, RunEnded, TradingState
from events.live import OrderSigned, StartingInventory, StartupCleanup, TokenBalance
from events.orders import Fill, OrderIntent, Position, RiskApproved, RiskReject
from events.params import QuoterParams
from pmm.config import LiveConfig
from replay.verify import verify
from sandbox.server import open_sandbox
from sandbox.testkeys import TEST_ADDRESS
from tests.live.livekit import ENV, TINY_RISK, endpoints, events, live_cfg, records, run_live
from tests.live.test_live_session import sweep_our_bids

S = MICRO


def runs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "journals").iterdir())


def intents_by_decision(run: Path) -> tuple[list[OrderIntent], list[tuple[OrderIntent, RiskReject]]]:
    """(approved place intents, (intent, reject) pairs) of a journal."""
    by_seq = {seq: env.ev for seq, env in records(run) if isinstance(env.ev, OrderIntent)}
    ok = [by_seq[e.intent_seq] for e in events(run, RiskApproved) if e.intent_seq in by_seq]
    bad = [(by_seq[e.intent_seq], e) for e in events(run, RiskReject) if e.intent_seq in by_seq]
    return ok, bad


async def test_held_tokens_count_in_the_risk_gate_buys_beyond_the_cap_refused_sells_allowed(
    tmp_path: Path, autojump_clock
) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:
        m = sb.markets[0]
        sb.orders.set_balance(TEST_ADDRESS, tokens={m.yes_token: 45})  # left from a previous night
        # the quoter's own soft cap is far away: it asks for a full bid, and only the risk gate knows the 50-share cap
        cfg = live_cfg(tmp_path, sb, quoter=QuoterParams(size=10 * S, max_position=1000 * S))
        res, lines = await run_live(tmp_path, sb, cfg, duration=30)
        sells = [r for r in sb.audit.orders(accepted=True) if r["address"] == TEST_ADDRESS and r["side"] == "SELL"]
        assert sb.open_orders(TEST_ADDRESS) == []
    run = res.run_dir
    [inv] = events(run, StartingInventory)
    assert inv.ok and inv.balances == (TokenBalance(token_id=m.yes_token, balance=45 * S),
                                       TokenBalance(token_id=m.no_token, balance=0))
    assert "not compared: no earlier run of this wallet" in inv.detail
    kinds = [type(e.ev).__name__ for _, e in records(run)]
    assert kinds[kinds.index("StartupCleanup") + 1] == "StartingInventory"  # before anything else starts
    assert any("starting inventory: holds 45.00 shares of" in line for line in lines)
    first = next(p for p in events(run, Position) if p.token_id == m.yes_token)
    assert (first.position, first.cash, first.mtm) == (45 * S, 0, 0)  # held, not priced yet: no windfall
    ok, bad = intents_by_decision(run)
    refused_buys = [(it, r) for it, r in bad if it.token_id == m.yes_token and it.side == "BUY"]
    assert refused_buys and all(r.code == "position_limit" for _, r in refused_buys), bad
    assert all("> 50.00 shares" in r.detail for _, r in refused_buys)
    assert not [it for it in ok if it.token_id == m.yes_token and it.side == "BUY" and it.size > 5 * S]
    held_sells = [it for it in ok if it.token_id == m.yes_token and it.side == "SELL"]
    assert held_sells, "the held YES shares were never offered"  # without the inventory: insufficient_position
    signed = {e.client_id for e in events(run, OrderSigned)}
    assert {it.client_id for it in held_sells} & signed
    assert sells and all(r["asset_id"] == m.yes_token for r in sells)  # the venue took them: the shares are there
    marked = [p for p in events(run, Position) if p.token_id == m.yes_token and p.mark > 0]
    assert marked and -1 <= marked[0].mtm <= 0  # entered at its first mark: PnL starts at 0
    assert not [k for k in events(run, KillSwitch) if k.reason != "operator_stop"]
    assert clean_stop(res) and verify(run).ok


async def test_a_start_beyond_max_position_halts_trading_for_the_run(tmp_path: Path, autojump_clock) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:
        m = sb.markets[0]
        sb.orders.set_balance(TEST_ADDRESS, tokens={m.no_token: 60})
        res, lines = await run_live(tmp_path, sb, duration=15)
        assert not [r for r in sb.audit.orders() if r["address"] == TEST_ADDRESS and r["price"] != "0.01"]
    run = res.run_dir
    [kill] = events(run, KillSwitch)[:1]
    assert kill.reason == "position_limit" and "starting position 60.00 shares" in kill.detail
    assert TradingState(state="HALTED", reason="position_limit") in events(run, TradingState)
    assert not events(run, OrderSigned) and not events(run, RiskApproved)
    assert any("trading is HALTED in this run" in line and m.no_token in line for line in lines)
    assert not clean_stop(res)  # `pmm live` exits 1
    assert verify(run).ok


async def run_with(tmp_path: Path, sb, *, on_line=None, **kw) -> tuple[object, list[str]]:
    """``run_live`` with a hook on each console line (to inject a fault at a precise point of the start)."""
    lines: list[str] = []

    def out(line: str) -> None:
        lines.append(line)
        if on_line is not None:
            on_line(line)

    res = await run_live_session(
        kw.pop("cfg", None) or live_cfg(tmp_path, sb), endpoints=endpoints(sb), duration_s=kw.pop("duration", 10.0),
        journal_root=tmp_path / "journals", clock=TrioClock(),
        out=out, handle_signals=False, env=ENV, **kw)
    return res, lines


async def test_an_unreadable_balance_refuses_the_start_with_one_line(tmp_path: Path, autojump_clock) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:
        def fault(line: str) -> None:  # preflight read the pUSD balance; now every balance read fails
            if line.startswith("pmm live: startup cleanup:"):
                sb.faults.http_error(500, paths=["/balance-allowance"])

        with pytest.raises(SessionError) as exc:
            await run_with(tmp_path, sb, on_line=fault)
        assert not [r for r in sb.audit.orders() if r["address"] == TEST_ADDRESS and r["price"] != "0.01"]
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("starting inventory: cannot read the balance of token ")
    assert "GET /balance-allowance: HTTP 500" in msg, msg
    [run] = runs(tmp_path)
    [inv] = events(run, StartingInventory)
    assert not inv.ok and inv.balances == ()
    assert [k.reason for k in events(run, KillSwitch)] == ["preflight_failed"]
    assert [e.reason for e in events(run, RunEnded)] == ["starting inventory refused"]
    assert verify(run).ok


async def test_a_rate_limited_balance_read_is_waited_out(tmp_path: Path, autojump_clock) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:
        def fault(line: str) -> None:
            if line.startswith("pmm live: startup cleanup:"):
                sb.faults.http_error(429, count=2, retry_after=4, paths=["/balance-allowance"])

        res, lines = await run_with(tmp_path, sb, on_line=fault)
    [inv] = events(res.run_dir, StartingInventory)
    assert inv.ok and "waited 8 s for the venue: 2 x HTTP 429" in inv.detail, inv.detail
    assert any("starting inventory: HTTP 429, rate limited: retrying in 4 s" in line for line in lines)
    assert clean_stop(res) and verify(res.run_dir).ok


async def test_the_previous_end_carries_the_runs_fills_and_matches_the_venue(tmp_path: Path, autojump_clock) -> None:
    """What a run ended with (its inventory, moved by its fills) is what the venue holds afterwards."""
    async with open_sandbox(seed=1, scenario="calm") as sb:
        m = sb.markets[0]
        sb.orders.set_balance(TEST_ADDRESS, tokens={m.yes_token: 10})

        async def taker() -> None:  # sells into our bid until one fills
            with trio.fail_after(30):
                while sb.orders.token_balance(TEST_ADDRESS, m.yes_token) == 10 * S:
                    if [o for o in sb.open_orders(TEST_ADDRESS) if o["side"] == "BUY" and o["price"] != "0.01"]:
                        sweep_our_bids(sb)
                    await trio.sleep(0.5)

        async with trio.open_nursery() as n:  # (size 10: with 10 held, the bid tapers to 9, above the minimum of 5)
            n.start_soon(taker)
            res, _ = await run_live(tmp_path, sb, live_cfg(tmp_path, sb, quoter=QuoterParams(size=10 * S)),
                                    duration=40)
        venue = {t: sb.orders.token_balance(TEST_ADDRESS, t) for t in (m.yes_token, m.no_token)}
    assert events(res.run_dir, Fill), "no fill"
    known = previous_positions(tmp_path / "journals", address=TEST_ADDRESS, funder="", exchange=sb.base_url)
    assert known.run == res.run_dir.name and known.positions == venue and venue[m.yes_token] != 10 * S
    now = tuple(TokenBalance(token_id=t, balance=n) for t, n in venue.items())
    assert judge(now, known, 0).ok
    assert clean_stop(res) and verify(res.run_dir).ok


async def test_positions_that_differ_from_the_previous_end_refuse_until_accepted(tmp_path: Path,
                                                                                 autojump_clock) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:
        m = sb.markets[0]
        sb.orders.set_balance(TEST_ADDRESS, tokens={m.yes_token: 10})

        async def start(**kw) -> object:
            res, _ = await run_live(tmp_path, sb, duration=5, **kw)
            await trio.sleep(1)  # run ids are per second
            # (no fill in these short runs: the next run's user channel would take this one's trades for its own,
            # since our wall clock does not move with the virtual one)
            assert not events(res.run_dir, Fill) and clean_stop(res), res.stats.halted
            return res

        async def refused(**kw) -> str:
            with pytest.raises(SessionError) as exc:
                await run_live(tmp_path, sb, duration=5, **kw)
            await trio.sleep(1)
            return str(exc.value)

        res1 = await start()
        res2 = await start()  # nothing happened in between: it starts, and says it matches run 1's end
        [inv] = events(res2.run_dir, StartingInventory)
        assert inv.ok and f"as run {res1.run_dir.name} ended" in inv.detail and inv.expected_run == res1.run_dir.name

        # fills while pmm was not watching: 3 more YES shares
        sb.orders.set_balance(TEST_ADDRESS, tokens={m.yes_token: 13})
        before = set(runs(tmp_path))
        msg = await refused()
        assert "\n" not in msg and msg.startswith(f"starting inventory: positions differ from the end of run "
                                                  f"{res2.run_dir.name}: token {m.yes_token}: ")
        assert "expected 10.00 shares, found 13.00 shares (tolerance 0.00 shares)" in msg
        assert "--accept-positions" in msg
        [run] = sorted(set(runs(tmp_path)) - before)
        [inv] = events(run, StartingInventory)
        assert not inv.ok and inv.expected == (TokenBalance(token_id=m.yes_token, balance=10 * S),
                                               TokenBalance(token_id=m.no_token, balance=0))
        assert not events(run, OrderSigned) and [e.reason for e in events(run, RunEnded)] == [
            "starting inventory refused"]
        # again: still refused (the refused run traded nothing; the last run that did still tells)
        assert "positions differ" in await refused()
        # within a configured tolerance of 3 shares: starts
        await start(cfg=live_cfg(tmp_path, sb, live=LiveConfig(enabled=True, state_dir=str(tmp_path / "state"),
                                                               position_tolerance=3 * S)))
        # 4 more: refused; the operator looked and accepts: starts, and the difference is journaled
        sb.orders.set_balance(TEST_ADDRESS, tokens={m.yes_token: 17})
        assert "expected 13.00 shares, found 17.00 shares" in await refused()
        res4 = await start(accept_positions=True)
        [inv] = events(res4.run_dir, StartingInventory)
        assert inv.ok and "accepted by the operator (--accept-positions)" in inv.detail
        await start()  # from now on compared with the accepted positions
    for run in runs(tmp_path):
        assert verify(run).ok, run


async def test_a_slow_venue_side_start_does_not_trip_the_stale_feed_kill_switch(tmp_path: Path,
                                                                                autojump_clock) -> None:
    """The market feed starts only after the heartbeat and the reconciled user channel; that wait (here 8 s, the
    trades fetch of the user channel's reconcile) is longer than the stale-feed limit (6 s). Before the starting
    inventory paused the stale clock until the feed started, this run halted with feed_stale at once."""
    async with open_sandbox(seed=1, scenario="calm") as sb:
        risk = msgspec.structs.replace(TINY_RISK, feed_stale_ns=6 * 10**9)
        sb.faults.slow(8, paths=["/data/trades"])
        res, _ = await run_live(tmp_path, sb, live_cfg(tmp_path, sb, risk=risk), duration=30)
    run = res.run_dir
    assert not [k for k in events(run, KillSwitch) if k.reason != "operator_stop"], events(run, KillSwitch)
    assert events(run, OrderSigned), "the session never traded"
    [cleanup] = events(run, StartupCleanup)
    assert cleanup.ok and clean_stop(res) and verify(run).ok
