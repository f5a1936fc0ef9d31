"""The live session end to end against the sandbox exchange, over real loopback sockets, on trio's virtual clock:
orders signed and within limits, fills, positions, stop, replay, unknown outcomes, heartbeat loss, engine restart."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import trio

from actors.live_session import clean_stop
from actors.sink.gate import ApprovedActions
from events.base import MICRO
from events.control import KillSwitch, RunEnded, TradingState
from events.live import HeartbeatStatus, OpenOrdersSnapshot, OrderSigned, PreflightCheck, StartupCleanup, UserFrame
from events.orders import ExchangeReply, Fill, OrderIntent, OrderState, Position, RiskApproved
from replay.verify import verify
from sandbox.server import open_sandbox
from sandbox.testkeys import TEST_ADDRESS
from tests.live.livekit import TINY_RISK, events, records, run_live


async def wait_resting(sb, n: int = 1, within: float = 60) -> list[dict]:
    with trio.fail_after(within):
        while len(sb.open_orders(TEST_ADDRESS)) < n:  # noqa: ASYNC110 (polls the sandbox)
            await trio.sleep(0.2)
    return sb.open_orders(TEST_ADDRESS)


def sweep_our_bids(sb) -> None:
    """A synthetic taker sells through every bid level down to (and including) each of our resting bids."""
    for o in sb.open_orders(TEST_ADDRESS):
        if o["side"] == "BUY":
            ours = Decimal(o["price"])
            ahead = sum(size for price, size in sb.book(o["asset_id"]).bids if price >= ours)
            sb.trade(o["asset_id"], "SELL", float(ahead) + 1)


def assert_orders_signed_and_within_limits(sb, cid: str) -> list[dict]:
    orders = [r for r in sb.audit.orders() if r["address"] == TEST_ADDRESS]
    assert orders, "no order reached the sandbox"
    for r in orders:
        assert r["signer"] == TEST_ADDRESS, r  # the signature recovers to our address
        # the book can move between our check and the venue: a post-only order may be refused for crossing
        assert r["accepted"] or "crosses book" in (r["reason"] or ""), {k: r[k] for k in ("reason", "detail", "t")}
        assert r["post_only"] is True and r["order_type"] == "GTC"
        assert r["market"] == cid  # the allowlist
        size, price = Decimal(r["size"]), Decimal(r["price"])
        assert size * MICRO <= TINY_RISK.max_order_size
        assert price * size * MICRO <= TINY_RISK.max_order_notional
    return orders


async def test_live_session_trades_fills_stops_flat_and_replays(tmp_path: Path, autojump_clock) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:
        m = sb.markets[0]

        async def taker() -> None:
            await wait_resting(sb, 2)
            await trio.sleep(3)
            sweep_our_bids(sb)

        async with trio.open_nursery() as n:
            n.start_soon(taker)
            res, lines = await run_live(tmp_path, sb, duration=40)
        assert sb.open_orders(TEST_ADDRESS) == []  # stop cancelled everything
        orders = assert_orders_signed_and_within_limits(sb, m.condition_id)
        assert any(r["endpoint"] == "POST /orders" for r in orders)  # ready places go out as one batch
        assert all(r["ok"] for r in sb.audit.of("heartbeat"))
    envs = [e for _, e in records(res.run_dir)]
    assert all(c.ok for c in events(res.run_dir, PreflightCheck))
    signed = {e.ev.order_hash: e.ev.client_id for e in envs if isinstance(e.ev, OrderSigned)}
    assert {r["order_id"] for r in orders if r["price"] != "0.01"} <= set(signed)  # (0.01: the preflight smoke)
    fills = [e.ev for e in envs if isinstance(e.ev, Fill)]
    assert {f.status for f in fills} == {"MATCHED", "CONFIRMED"}, fills
    assert all(f.client_id in signed.values() for f in fills)
    positions = [e.ev for e in envs if isinstance(e.ev, Position)]
    assert positions and any(p.position > 0 for p in positions)
    # every fill the venue reported for our orders is in the journal, once per status
    venue = {(t["trade_id"], t["status"]) for t in sb.audit.of("trade") if set(t["maker_order_ids"]) & set(signed)}
    mine = {(f.trade_id, {"MINED": "MATCHED"}.get(s, s)) for f in fills for s in [f.status]}
    assert {(t, {"MINED": "MATCHED"}.get(s, s)) for t, s in venue} == mine
    # the stop: kill switch, cancel-all confirmed, run ended
    assert any(isinstance(e.ev, KillSwitch) and e.ev.reason == "operator_stop" for e in envs)
    cancel_all = [e.ev for e in envs if isinstance(e.ev, ExchangeReply) and e.ev.op == "cancel_all"]
    assert cancel_all and all(r.ok for r in cancel_all)
    last_state: dict[str, str] = {}
    for e in envs:
        if isinstance(e.ev, OrderState):
            last_state[e.ev.client_id] = e.ev.state
    assert last_state and all(s in ("cancelled", "filled", "rejected") for s in last_state.values()), last_state
    assert isinstance(envs[-1].ev, RunEnded)
    assert "stop: confirmed: no order open" in res.notes and clean_stop(res)
    assert verify(res.run_dir).ok
    assert any("confirmed: no order open" in line for line in lines)


async def test_unknown_submit_outcome_is_resolved_before_the_next_order_on_that_token(
    tmp_path: Path, autojump_clock
) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:
        async def fault() -> None:
            await wait_resting(sb, 2)
            sb.faults.lose_submit_reply("delay", seconds=30, count=1)  # the next POST lands, its reply is lost
            sb.faults.http_error(503, count=2, paths=["/data/order/"])  # ... and the first two lookups fail

        async with trio.open_nursery() as n:
            n.start_soon(fault)
            res, _ = await run_live(tmp_path, sb, duration=60)
        assert sb.faults.counts["submit_delay"] == 1
        assert sb.open_orders(TEST_ADDRESS) == []
    recs = records(res.run_dir)
    unknown = [(seq, e.ev) for seq, e in recs if isinstance(e.ev, ExchangeReply) and e.ev.status == "unknown"]
    assert unknown, "the lost reply did not become an unknown outcome"
    token_of = {e.ev.client_id: e.ev.token_id for _, e in recs if isinstance(e.ev, OrderIntent)}
    for useq, u in unknown:
        rseq, resolved = next((s, e.ev) for s, e in recs if s > useq and isinstance(e.ev, ExchangeReply)
                              and e.ev.client_id == u.client_id and e.ev.op == "place")
        assert resolved.ok and resolved.status == "live" and resolved.message.startswith("resolved")
        token = token_of[u.client_id]
        between = [e.ev for s, e in recs if useq < s < rseq and isinstance(e.ev, OrderSigned) and e.ev.token_id == token]
        assert between == [], f"an order was sent on {token} while {u.client_id} was unknown"
    assert not any(isinstance(e.ev, KillSwitch) and e.ev.reason != "operator_stop" for _, e in recs)
    assert verify(res.run_dir).ok


async def test_heartbeat_loss_trips_the_kill_switch_and_no_place_is_approved_after(
    tmp_path: Path, autojump_clock
) -> None:
    async with open_sandbox(seed=2, scenario="calm") as sb:
        async def fault() -> None:
            await wait_resting(sb, 1)
            sb.faults.fail_heartbeats(503)

        async with trio.open_nursery() as n:
            n.start_soon(fault)
            res, _ = await run_live(tmp_path, sb, duration=40)
        assert sb.open_orders(TEST_ADDRESS) == []
        t_fail = next(r["t"] for r in sb.audit.of("heartbeat") if r["fault"])
        assert not [r for r in sb.audit.orders(accepted=True) if r["t"] > t_fail]
    recs = records(res.run_dir)
    kill = next(seq for seq, e in recs if isinstance(e.ev, KillSwitch))
    assert recs[kill - 1][1].ev.reason == "heartbeat_failed"
    assert any(isinstance(e.ev, HeartbeatStatus) and not e.ev.ok for _, e in recs)
    assert any(isinstance(e.ev, TradingState) and e.ev.state == "HALTED" for s, e in recs if s > kill)
    assert not clean_stop(res)  # `pmm live` exits 1 after a kill switch that was not the operator's
    gate = ApprovedActions()
    after = [a for s, e in recs if (a := gate.feed(s, e)) is not None and s > kill and a[0] == "place"]
    assert after == []
    intents = {x.ev.client_id for _, x in recs if isinstance(x.ev, OrderIntent)}
    assert not [e.ev for s, e in recs if s > kill and isinstance(e.ev, RiskApproved) and e.ev.client_id in intents
                and not any(isinstance(x.ev, OrderIntent) and x.ev.client_id == e.ev.client_id for t, x in recs
                            if t < kill)]
    assert verify(res.run_dir).ok


async def test_engine_restart_425_places_wait_and_go_out_after(tmp_path: Path, autojump_clock) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:
        async def fault() -> None:
            await wait_resting(sb, 2)
            sb.faults.engine_restart(seconds=20, post_only_seconds=10)

        async with trio.open_nursery() as n:
            n.start_soon(fault)
            res, _ = await run_live(tmp_path, sb, duration=70)
        refused = [r for r in sb.audit.of("request_rejected") if r["status"] == 425]
        assert refused
        t_end = max(r["t"] for r in refused)
        assert [r for r in sb.audit.orders(accepted=True) if r["t"] > t_end]  # quoting resumed
        assert sb.open_orders(TEST_ADDRESS) == []
    recs = records(res.run_dir)
    assert not any(isinstance(e.ev, KillSwitch) and e.ev.reason != "operator_stop" for _, e in recs)
    assert verify(res.run_dir).ok


async def test_fills_missed_while_the_user_channel_was_down_are_recovered_by_the_reconcile(
    tmp_path: Path, autojump_clock
) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:

        async def fault() -> None:
            await wait_resting(sb, 2)
            sb.faults.user_half_open_now()  # our user socket goes silent: events are lost
            await trio.sleep(1)
            sweep_our_bids(sb)

        async with trio.open_nursery() as n:
            n.start_soon(fault)
            res, _ = await run_live(tmp_path, sb, duration=70)
        assert sb.open_orders(TEST_ADDRESS) == []
    recs = records(res.run_dir)
    fills = [e.ev for _, e in recs if isinstance(e.ev, Fill)]
    assert fills, "the fills were not recovered"
    # they came from the REST reconcile of the second connection (the first socket was silent)
    conns = {e.ev.conn for _, e in recs if isinstance(e.ev, UserFrame) and '"trade"' in e.ev.text}
    assert conns and min(conns) >= 2
    snaps = [e.ev for _, e in recs if isinstance(e.ev, OpenOrdersSnapshot) and e.ev.source.startswith("reconnect")]
    assert len(snaps) >= 2
    assert any(isinstance(e.ev, Position) for _, e in recs)
    assert verify(res.run_dir).ok


async def test_startup_cleanup_cancels_orders_an_earlier_run_left(tmp_path: Path, autojump_clock) -> None:
    from tests.sandbox.orders_kit import AsyncClob, passive_buy_price

    async with open_sandbox(seed=1, scenario="calm") as sb, AsyncClob(sb) as ac:
        await ac.derive()
        tok = sb.markets[1].yes_token
        r = await ac.post_order(ac.build(tok, passive_buy_price(sb, tok, 3), 5), post_only=True)
        stray = r.json()["orderID"]
        assert [o["id"] for o in sb.open_orders(TEST_ADDRESS)] == [stray]
        res, _ = await run_live(tmp_path, sb, duration=10)
        assert sb.open_orders(TEST_ADDRESS) == []
    [cleanup] = events(res.run_dir, StartupCleanup)
    assert cleanup.ok and cleanup.found == (stray,) and cleanup.remaining == ()
    assert not any(k.reason == "unknown_order" for k in events(res.run_dir, KillSwitch))
    assert verify(res.run_dir).ok


async def test_rate_limited_429_orders_and_cancels_are_retried_after_retry_after(tmp_path: Path, autojump_clock) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:
        async def fault() -> None:
            await wait_resting(sb, 2)
            sb.faults.rate_limit_orders(count=3, retry_after=2)

        async with trio.open_nursery() as n:
            n.start_soon(fault)
            res, _ = await run_live(tmp_path, sb, duration=40)
        limited = [r for r in sb.audit.of("request_rejected") if r["status"] == 429]
        assert len(limited) == 3
        t_end = max(r["t"] for r in limited)
        assert [r for r in sb.audit.orders(accepted=True) if r["t"] > t_end]
        assert sb.open_orders(TEST_ADDRESS) == []
    recs = records(res.run_dir)
    failed = [e.ev for _, e in recs if isinstance(e.ev, ExchangeReply) and not e.ev.ok]
    assert not [r for r in failed if "429" in r.message or "Too Many" in r.message]  # retried, not failed
    assert clean_stop(res) and verify(res.run_dir).ok
