"""The order manager: diffing desired quotes against live orders, churn control, and order-state tracking.

It runs inside a real ``Sequencer`` with a stub gate that approves (or rejects, when told) every intent, so it sees
its own intents' seqs and the decisions exactly as in the core. ``test_guardrails_stateful`` runs it with the real
risk gate.
"""
from __future__ import annotations

import pytest

from actors.core.base import InvariantError
from actors.core.orders import OrderManager
from actors.sequencer import Sequencer
from events.base import MICRO, Event
from events.codec import Envelope
from events.control import KillSwitch, Tick, TradingState
from events.orders import (
    CancelAll,
    CancelIntent,
    Churn,
    DesiredQuotes,
    ExchangeReply,
    Fill,
    OrderIntent,
    OrderState,
    Quote,
    RiskApproved,
    RiskReject,
)
from events.params import CoreParams, MarketParams, OrderParams
from replay.harness import MemorySink

SEC = 10**9
T0 = 1_700_000_000 * SEC
S = MICRO
M = MarketParams(condition_id="m1", yes_token="Y", no_token="N", min_order_size=S)


class StubGate:
    """Approves every intent, except places whose client id is in ``reject`` (code ``test``)."""

    name = "risk"
    consumes = (OrderIntent, CancelIntent)

    def __init__(self) -> None:
        self.reject: set[str] = set()
        self.reject_all = False

    def step(self, seq, env):
        ev = env.ev
        if isinstance(ev, OrderIntent) and (self.reject_all or ev.client_id in self.reject):
            return [RiskReject(intent_seq=seq, client_id=ev.client_id, code="test")]
        return [RiskApproved(intent_seq=seq, client_id=ev.client_id)]


class OM:
    def __init__(self, quoting: bool = True, **orders: int) -> None:
        self.p = CoreParams(markets=(M,), orders=OrderParams(**orders), quoting=quoting, fills="live")
        self.om = OrderManager(self.p)
        self.gate = StubGate()
        self.seq = Sequencer(MemorySink(), [self.om, self.gate])
        self.now = T0
        self.records: list = []

    def send(self, ev: Event, src: str = "x", dt: int = 0) -> list[Event]:
        self.now += dt
        recs = self.seq.submit(src, self.now, ev)
        self.records += recs
        return [env.ev for _, env in recs[1:] if env.src == "orders"]

    def quotes(self, *qs: tuple[str, str, int, int], dt: int = 0) -> list[Event]:
        return self.send(DesiredQuotes(condition_id="m1", quotes=tuple(Quote(token_id=t, side=s, price=p, size=z)
                                                                       for t, s, p, z in qs), fair=490_000),
                         src="quoter", dt=dt)

    def reply(self, cid: str, op: str = "place", ok: bool = True, status: str = "live", dt: int = 0) -> list[Event]:
        return self.send(ExchangeReply(client_id=cid, op=op, ok=ok, status=status), src="exchange", dt=dt)

    def fill(self, cid: str, size: int, trade: str, status: str = "CONFIRMED", price: int = 480_000) -> list[Event]:
        return self.send(Fill(client_id=cid, token_id="Y", side="BUY", price=price, size=size, trade_id=trade,
                              status=status), src="exchange")

    def tick(self, dt: int) -> list[Event]:
        return self.send(Tick(), src="clock", dt=dt)

    def state(self, cid: str) -> str:
        got = self.om.order(cid)
        assert got is not None
        return got[0]


def intents(out: list[Event]) -> list[Event]:
    return [e for e in out if isinstance(e, (OrderIntent, CancelIntent))]


def places(out: list[Event]) -> list[OrderIntent]:
    return [e for e in out if isinstance(e, OrderIntent)]


def cancels(out: list[Event]) -> list[CancelIntent]:
    return [e for e in out if isinstance(e, CancelIntent)]


BID = ("Y", "BUY", 480_000, 10 * S)
ASK = ("N", "BUY", 500_000, 10 * S)


# ---------------------------------------------------------------------------------------------- placing
def test_desired_when_no_orders_then_places_with_seq_client_ids_and_pending_new() -> None:
    t = OM()
    out = t.quotes(BID, ASK)
    dq_seq = t.records[0][0]
    assert [e.client_id for e in places(out)] == [f"o{dq_seq}.0", f"o{dq_seq}.1"]
    assert [(e.client_id, e.state) for e in out if isinstance(e, OrderState)] == [
        (f"o{dq_seq}.0", "pending_new"), (f"o{dq_seq}.1", "pending_new")]
    p0 = places(out)[0]
    assert (p0.condition_id, p0.token_id, p0.side, p0.price, p0.size, p0.post_only) == ("m1", "Y", "BUY", 480_000,
                                                                                        10 * S, True)


def test_desired_when_unchanged_then_no_intents_at_all() -> None:
    t = OM()
    t.quotes(BID, ASK)
    assert t.quotes(BID, ASK) == []
    assert t.quotes(BID, ASK, dt=SEC) == []


def test_desired_when_unchanged_after_fill_then_no_intents() -> None:
    t = OM()
    cid = places(t.quotes(BID))[0].client_id
    t.reply(cid)
    t.fill(cid, 10 * S, "t1")
    assert t.state(cid) == "filled"
    assert t.quotes(BID) == []  # re-placing waits for the quoter to change its mind


def test_desired_when_zero_size_quote_then_nothing_placed() -> None:
    t = OM()
    assert t.quotes(("Y", "BUY", 480_000, 0)) == []


def test_desired_when_quoting_disabled_then_no_intents() -> None:
    t = OM(quoting=False)
    assert t.quotes(BID, ASK) == []


# ---------------------------------------------------------------------------------------------- tolerance
def test_desired_when_price_moves_exactly_refresh_tolerance_then_order_kept() -> None:
    t = OM(refresh_tolerance=10_000)
    cid = places(t.quotes(BID))[0].client_id
    t.reply(cid)
    assert intents(t.quotes(("Y", "BUY", 490_000, 10 * S))) == []
    assert t.state(cid) == "live"


def test_desired_when_price_moves_beyond_refresh_tolerance_then_cancel_then_place() -> None:
    t = OM(refresh_tolerance=9_999)
    cid = places(t.quotes(BID))[0].client_id
    t.reply(cid)
    out = intents(t.quotes(("Y", "BUY", 490_000, 10 * S)))
    assert [type(e).__name__ for e in out] == ["CancelIntent", "OrderIntent"]
    assert out[0].client_id == cid and out[0].reason == "replace"
    assert out[1].price == 490_000


def test_desired_when_size_within_size_tolerance_then_kept_beyond_then_replaced() -> None:
    t = OM(size_tolerance=200_000)
    cid = places(t.quotes(BID))[0].client_id
    t.reply(cid)
    assert intents(t.quotes(("Y", "BUY", 480_000, 8 * S + 333_334))) == []  # |10 - 8.33| <= 0.2 * 8.33
    out = intents(t.quotes(("Y", "BUY", 480_000, 8 * S + 333_332)))
    assert [type(e).__name__ for e in out] == ["CancelIntent", "OrderIntent"]


def test_desired_when_partially_filled_remaining_outside_tolerance_then_replaced() -> None:
    t = OM(size_tolerance=200_000)
    cid = places(t.quotes(BID))[0].client_id
    t.reply(cid)
    t.fill(cid, 5 * S, "t1")
    assert t.state(cid) == "partially_filled"
    out = intents(t.quotes(("Y", "BUY", 480_000, 10 * S), ASK))
    assert [e.client_id for e in cancels(out)] == [cid]
    assert len(places(out)) == 2


def test_desired_when_quote_removed_then_cancel_only() -> None:
    t = OM()
    out = t.quotes(BID, ASK)
    ids = [e.client_id for e in places(out)]
    out = intents(t.quotes(BID))
    assert [(type(e).__name__, e.client_id, e.reason) for e in out] == [("CancelIntent", ids[1], "not desired")]


def test_desired_when_cancel_pending_then_order_counts_live_and_is_not_cancelled_again() -> None:
    t = OM()
    ids = [e.client_id for e in places(t.quotes(BID, ASK))]
    t.quotes(BID)
    assert (ids[1], "N", "BUY", 500_000, 10 * S, "pending_new", True) in t.om.live_orders()
    # the pending cancel is never repeated, whatever the desired quotes do, and never matched again
    for quotes in ([("Y", "BUY", 460_000, 10 * S)], [BID, ASK], []):
        out = t.quotes(*quotes)
        assert ids[1] not in [e.client_id for e in cancels(out)]
    assert (ids[1], "N", "BUY", 500_000, 10 * S, "pending_new", True) in t.om.live_orders()


def test_desired_when_two_levels_then_each_matched_to_its_closest_order() -> None:
    t = OM(refresh_tolerance=10_000)
    ids = [e.client_id for e in places(t.quotes(("Y", "BUY", 480_000, 10 * S), ("Y", "BUY", 470_000, 10 * S)))]
    for cid in ids:
        t.reply(cid)
    assert intents(t.quotes(("Y", "BUY", 475_000, 10 * S), ("Y", "BUY", 465_000, 10 * S))) == []


# ---------------------------------------------------------------------------------------------- max age
def test_tick_when_order_reaches_max_age_then_replaced_on_tick() -> None:
    t = OM(max_order_age_ns=60 * SEC)
    cid = places(t.quotes(BID))[0].client_id
    t.reply(cid)
    assert intents(t.tick(60 * SEC - 1)) == []
    out = intents(t.tick(1))
    assert [type(e).__name__ for e in out] == ["CancelIntent", "OrderIntent"]
    assert out[0].client_id == cid and out[1].price == 480_000


def test_tick_when_max_age_zero_then_orders_never_expire() -> None:
    t = OM(max_order_age_ns=0)
    cid = places(t.quotes(BID))[0].client_id
    t.reply(cid)
    assert intents(t.tick(7 * 24 * 3600 * SEC)) == []


# ---------------------------------------------------------------------------------------------- states
def test_reply_when_live_then_live_and_when_cancel_confirmed_then_cancelled() -> None:
    t = OM()
    cid = places(t.quotes(BID))[0].client_id
    assert t.reply(cid) == [OrderState(client_id=cid, state="live")]
    t.quotes()
    assert t.reply(cid, op="cancel", status="cancelled") == [OrderState(client_id=cid, state="cancelled")]


def test_fill_when_partial_then_partially_filled_and_when_complete_then_filled() -> None:
    t = OM()
    cid = places(t.quotes(BID))[0].client_id
    t.reply(cid)
    assert t.fill(cid, 4 * S, "t1") == [OrderState(client_id=cid, state="partially_filled", filled=4 * S)]
    assert t.fill(cid, 6 * S, "t2") == [OrderState(client_id=cid, state="filled", filled=10 * S)]
    assert t.om.live_orders() == []


def test_fill_when_same_trade_repeated_then_counted_once() -> None:
    t = OM()
    cid = places(t.quotes(BID))[0].client_id
    t.fill(cid, 4 * S, "t1", "MATCHED")
    assert t.fill(cid, 4 * S, "t1", "CONFIRMED") == []
    assert t.om.order(cid) == ("partially_filled", 4 * S)


def test_fill_when_failed_after_matched_then_size_given_back() -> None:
    t = OM()
    cid = places(t.quotes(BID))[0].client_id
    t.reply(cid)
    t.fill(cid, 4 * S, "t1", "MATCHED")
    assert t.fill(cid, 4 * S, "t1", "FAILED")[0].filled == 0
    assert t.state(cid) == "live"


def test_fill_when_it_overfills_the_order_then_invariant_error() -> None:
    t = OM()
    cid = places(t.quotes(BID))[0].client_id
    t.fill(cid, 10 * S, "t1")
    with pytest.raises(InvariantError):
        t.om.step(10_000, Envelope(ts_ns=t.now, src="exchange", cause=0, ev=Fill(
            client_id=cid, token_id="Y", side="BUY", price=480_000, size=1, trade_id="t2")))
    assert t.om.order(cid) == ("filled", 10 * S)  # refused before any state changed


def test_fill_when_overfill_inside_the_sequencer_then_internal_error_kill_switch() -> None:
    t = OM()
    cid = places(t.quotes(BID))[0].client_id
    t.fill(cid, 10 * S, "t1")
    t.now += 1
    recs = t.seq.submit("exchange", t.now, Fill(client_id=cid, token_id="Y", side="BUY", price=480_000, size=1,
                                                trade_id="t2"))
    kills = [env.ev for _, env in recs if isinstance(env.ev, KillSwitch)]
    assert len(kills) == 1 and kills[0].reason == "internal_error" and "overfills" in kills[0].detail


def test_fill_when_order_already_cancelled_then_filled_size_updated_state_kept() -> None:
    t = OM()
    cid = places(t.quotes(BID))[0].client_id
    t.reply(cid)
    t.quotes()
    t.reply(cid, op="cancel", status="cancelled")
    assert t.fill(cid, 2 * S, "t9") == [OrderState(client_id=cid, state="cancelled", filled=2 * S,
                                                   detail="late fill t9")]


def test_risk_reject_when_place_refused_then_rejected_with_code() -> None:
    t = OM()
    t.gate.reject_all = True
    out = t.quotes(BID)
    cid = places(out)[0].client_id
    assert OrderState(client_id=cid, state="rejected", detail="test") in out
    assert t.om.live_orders() == []


def test_reply_when_exchange_rejects_place_then_rejected() -> None:
    t = OM()
    cid = places(t.quotes(BID))[0].client_id
    assert t.reply(cid, ok=False, status="rejected")[0].state == "rejected"


def test_reply_when_unmatched_then_cancelled() -> None:
    t = OM()
    cid = places(t.quotes(BID))[0].client_id
    assert t.reply(cid, status="unmatched")[0].state == "cancelled"


# ---------------------------------------------------------------------------------------------- unknown
def test_tick_when_no_place_reply_within_ack_timeout_then_unknown() -> None:
    t = OM(ack_timeout_ns=5 * SEC)
    cid = places(t.quotes(BID))[0].client_id
    assert t.tick(5 * SEC) == []
    assert t.tick(1) == [OrderState(client_id=cid, state="unknown", detail="no reply to the place")]
    assert t.tick(SEC) == []  # reported once


def test_tick_when_no_cancel_reply_within_ack_timeout_then_unknown() -> None:
    t = OM(ack_timeout_ns=5 * SEC)
    cid = places(t.quotes(BID))[0].client_id
    t.reply(cid)
    t.quotes()
    assert [e.state for e in t.tick(5 * SEC + 1) if isinstance(e, OrderState)] == ["unknown"]
    assert t.state(cid) == "unknown"


def test_desired_when_order_on_token_unknown_then_no_place_on_that_token_until_resolved() -> None:
    t = OM(ack_timeout_ns=5 * SEC)
    cid = places(t.quotes(BID))[0].client_id
    t.tick(5 * SEC + 1)
    assert t.om.blocked_tokens() == ["Y"]
    out = t.quotes(("Y", "BUY", 440_000, 10 * S), ("Y", "BUY", 430_000, 10 * S), ASK)
    assert [e.token_id for e in places(out)] == ["N"]  # Y is blocked; the unknown order itself is cancelled
    assert [e.client_id for e in cancels(out)] == [cid]
    assert places(t.tick(SEC)) == []
    t.reply(cid, op="cancel", status="cancelled")  # resolved
    assert t.om.blocked_tokens() == []
    out = t.tick(SEC)
    assert sorted(e.price for e in places(out)) == [430_000, 440_000]


def test_reply_when_late_live_after_unknown_then_resolved_to_live() -> None:
    t = OM(ack_timeout_ns=5 * SEC)
    cid = places(t.quotes(BID))[0].client_id
    t.tick(5 * SEC + 1)
    assert t.reply(cid) == [OrderState(client_id=cid, state="live")]
    assert t.om.blocked_tokens() == []


def test_reply_when_place_status_unknown_then_unknown() -> None:
    t = OM()
    cid = places(t.quotes(BID))[0].client_id
    assert t.reply(cid, ok=False, status="unknown")[0].state == "unknown"


def test_reply_when_cancel_fails_then_unknown_and_never_cancelled_again() -> None:
    t = OM()
    cid = places(t.quotes(BID))[0].client_id
    t.reply(cid)
    t.quotes()
    assert t.reply(cid, op="cancel", ok=False, status="")[0].state == "unknown"
    for price in (470_000, 460_000):
        assert cid not in [e.client_id for e in cancels(t.quotes(("Y", "BUY", price, 10 * S)))]
    assert t.tick(SEC) == []
    t.fill(cid, 10 * S, "t1")  # resolved: it had filled
    assert t.state(cid) == "filled"


# ---------------------------------------------------------------------------------------------- halt and reduce
@pytest.mark.parametrize("halt", [KillSwitch(reason="operator_stop"), TradingState(state="HALTED")],
                         ids=["kill_switch", "trading_state"])
def test_desired_when_halted_then_no_intents_ever(halt: Event) -> None:
    t = OM(max_order_age_ns=SEC, ack_timeout_ns=SEC)
    t.quotes(BID)
    t.send(halt, src="risk")
    assert intents(t.quotes(("Y", "BUY", 470_000, 10 * S), ASK)) == []
    assert intents(t.tick(10 * SEC)) == []


def test_cancel_all_when_received_then_every_order_cancel_pending() -> None:
    t = OM()
    t.quotes(BID, ASK)
    t.send(CancelAll(reason="operator_stop"), src="risk")
    assert all(row[6] for row in t.om.live_orders())


def test_trading_state_when_reducing_then_buys_cancelled_and_only_sells_placed() -> None:
    t = OM()
    ids = [e.client_id for e in places(t.quotes(BID, ASK))]
    out = intents(t.send(TradingState(state="REDUCING"), src="risk"))
    assert sorted(e.client_id for e in cancels(out)) == sorted(ids)
    out = t.quotes(("Y", "SELL", 520_000, 10 * S), ("N", "BUY", 490_000, 10 * S))
    assert [(e.token_id, e.side) for e in places(out)] == [("Y", "SELL")]


# ---------------------------------------------------------------------------------------------- churn
def test_tick_when_minute_passes_then_churn_emitted_at_most_once_per_minute() -> None:
    t = OM(refresh_tolerance=0)
    t.tick(0)  # churn clock starts at T0; the window is (now - 60 s, now]
    cid = places(t.quotes(BID, dt=1))[0].client_id
    t.reply(cid)
    out = t.quotes(("Y", "BUY", 470_000, 10 * S), dt=10 * SEC)
    t.reply(cid, op="cancel", status="cancelled", dt=0)
    assert [e for e in t.tick(50 * SEC - 2) if isinstance(e, Churn)] == []  # T0 + 60 s - 1
    churn = [e for e in t.tick(1) if isinstance(e, Churn)]
    assert churn == [Churn(places=2, cancels=1, replaces=1, mean_life_ns=10 * SEC)]
    assert places(out)
    assert [e for e in t.tick(SEC) if isinstance(e, Churn)] == []  # within the minute


def test_tick_when_churn_unchanged_then_not_repeated() -> None:
    t = OM()
    t.tick(0)
    assert [e for e in t.tick(60 * SEC) if isinstance(e, Churn)] == [Churn(places=0, cancels=0, replaces=0,
                                                                             mean_life_ns=0)]
    assert [e for e in t.tick(60 * SEC) if isinstance(e, Churn)] == []


def test_desired_when_fair_value_jitters_within_tolerance_then_zero_churn() -> None:
    t = OM(refresh_tolerance=5_000)
    ids = [e.client_id for e in places(t.quotes(BID, ASK))]
    for cid in ids:
        t.reply(cid)
    for i in range(50):
        d = (i % 5) * 1_000
        assert intents(t.quotes(("Y", "BUY", 480_000 + d, 10 * S), ("N", "BUY", 500_000 - d, 10 * S), dt=SEC)) == []


def test_desired_when_sell_replaced_then_new_sell_waits_for_cancel_confirmation() -> None:
    t = OM()
    cid = places(t.quotes(("Y", "SELL", 520_000, 10 * S)))[0].client_id
    t.reply(cid)
    out = intents(t.quotes(("Y", "SELL", 540_000, 10 * S), ASK))
    assert [(type(e).__name__, getattr(e, "token_id", e.client_id)) for e in out] == [
        ("CancelIntent", cid), ("OrderIntent", "N")]
    assert places(t.tick(SEC)) == []  # still waiting
    t.reply(cid, op="cancel", status="cancelled")
    out = places(t.tick(SEC))
    assert [(e.token_id, e.side, e.price) for e in out] == [("Y", "SELL", 540_000)]
    assert places(t.tick(SEC)) == []


def test_tick_when_two_markets_reconciled_in_one_step_then_client_ids_stay_unique() -> None:
    p = CoreParams(markets=(M, MarketParams(condition_id="m2", yes_token="Y2", no_token="N2")),
                   orders=OrderParams(max_order_age_ns=10 * SEC), fills="live")
    om = OrderManager(p)
    seq = Sequencer(MemorySink(), [om, StubGate()])
    for cid, token in (("m1", "Y"), ("m2", "Y2")):
        recs = seq.submit("quoter", T0, DesiredQuotes(condition_id=cid, quotes=(
            Quote(token_id=token, side="BUY", price=480_000, size=10 * S),), fair=490_000))
        for _, env in recs:
            if isinstance(env.ev, OrderIntent):
                seq.submit("exchange", T0, ExchangeReply(client_id=env.ev.client_id, op="place", ok=True,
                                                         status="live"))
    recs = seq.submit("clock", T0 + 10 * SEC, Tick())  # both orders expire on the same tick
    ids = [env.ev.client_id for _, env in recs if isinstance(env.ev, OrderIntent)]
    assert len(ids) == 2 and len(set(ids)) == 2
    assert not [env for _, env in recs if isinstance(env.ev, KillSwitch)]


def test_risk_reject_when_cancel_pending_in_market_then_retried_once_cancels_are_answered() -> None:
    t = OM(refresh_tolerance=0)
    old = places(t.quotes(BID))[0].client_id
    t.reply(old)
    t.gate.reject_all = True  # the gate refuses the replacement: the old order still counts until confirmed
    out = t.quotes(("Y", "BUY", 470_000, 10 * S))
    assert [e.client_id for e in cancels(out)] == [old] and places(out)
    t.gate.reject_all = False
    assert places(t.tick(SEC)) == []  # the cancel is still pending: no retry (a lasting refusal cannot loop)
    t.reply(old, op="cancel", status="cancelled")
    out = places(t.tick(SEC))
    assert [(e.price, e.size) for e in out] == [(470_000, 10 * S)]
    assert places(t.tick(SEC)) == []


def test_risk_reject_when_no_cancel_pending_then_not_retried_until_quotes_change() -> None:
    t = OM()
    t.gate.reject_all = True
    t.quotes(BID)
    t.gate.reject_all = False
    assert places(t.tick(SEC)) == [] and places(t.tick(SEC)) == []
    assert places(t.quotes(("Y", "BUY", 470_000, 10 * S)))
