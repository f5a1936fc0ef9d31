"""The risk gate, check by check at its boundaries (= limit passes, limit + 1 fails), and every kill trigger.

The gate is driven directly (``step``), with hand-made ``BookChanged`` and exchange events, so each test shows one
rule. The stateful property test (``test_guardrails_stateful.py``) drives it with the order manager.
"""
from __future__ import annotations

import msgspec
import pytest

from actors.core.base import InvariantError
from actors.core.buckets import TokenBucket
from actors.core.risk import DAY_NS, RiskGate
from events.base import MICRO, Event
from events.codec import Envelope
from events.control import KillSwitch, OperatorStop, RunStarted, Tick, TradingState
from events.market import BookChanged, FeedFrame, FeedStatus
from events.orders import (
    CancelAll,
    CancelIntent,
    ExchangeReply,
    Fill,
    OrderIntent,
    OrderState,
    Position,
    RiskApproved,
    RiskReject,
)
from events.params import CoreParams, MarketParams, OrderParams, RiskParams
from events.risk import REJECT_CODES, ReduceOnly

SEC = 10**9
T0 = 1_700_000_000 * SEC
M = MarketParams(condition_id="m1", yes_token="Y", no_token="N", tick=10_000, min_order_size=1 * MICRO)
M2 = MarketParams(condition_id="m2", yes_token="Y2", no_token="N2", tick=10_000, min_order_size=1 * MICRO)
S = MICRO  # one share


def params(markets=(M, M2), orders: OrderParams | None = None, **risk: int) -> CoreParams:
    return CoreParams(markets=markets, risk=RiskParams(**risk), orders=orders or OrderParams(), fills="live")


class GateHarness:
    """A RiskGate driven step by step; time only moves when a test says so."""

    def __init__(self, p: CoreParams | None = None, *, prior_halt: str = "", books: bool = True) -> None:
        self.p = p or params()
        self.gate = RiskGate(self.p)
        self.seq = 0
        self.now = T0
        self.n = 0
        self.out: list[Event] = []
        self.send(RunStarted(run_id="t", mode="prove", version="0", seed=0, config_hash="", params=self.p,
                             prior_halt=prior_halt), src="session")
        if books:
            self.send(FeedStatus(conn=1, state="connected"), src="feed")
            for token in ("Y", "Y2"):
                self.book(token, 470_000, 510_000)
            for token in ("N", "N2"):
                self.book(token, 490_000, 530_000)

    def send(self, ev: Event, *, src: str = "x", dt: int = 0) -> list[Event]:
        self.seq += 1
        self.now += dt
        out = list(self.gate.step(self.seq, Envelope(ts_ns=self.now, src=src, cause=0, ev=ev)))
        self.out += out
        return out

    def book(self, token: str, bid: int, ask: int, *, valid: bool = True, tick: int = 10_000) -> list[Event]:
        return self.send(BookChanged(token_id=token, epoch=1, valid=valid, best_bid=bid, bid_size=S, best_ask=ask,
                                     ask_size=S, tick=tick), src="book")

    def place(self, token: str = "Y", side: str = "BUY", price: int = 480_000, size: int = 10 * S, *,
              cid: str | None = None, market: str | None = None) -> Event:
        """Send one OrderIntent; return the gate's decision about it (exactly one, for that seq)."""
        if cid is None:
            self.n += 1
            cid = f"c{self.n}"
        if market is None:
            market = "m1" if token in ("Y", "N") else "m2"
        out = self.send(OrderIntent(client_id=cid, condition_id=market, token_id=token, side=side, price=price,
                                    size=size), src="orders")
        decisions = [e for e in out if isinstance(e, (RiskApproved, RiskReject)) and e.intent_seq == self.seq]
        assert len(decisions) == 1, out
        return decisions[0]

    def cancel(self, cid: str) -> Event:
        out = self.send(CancelIntent(client_id=cid), src="orders")
        decisions = [e for e in out if isinstance(e, (RiskApproved, RiskReject)) and e.intent_seq == self.seq]
        assert len(decisions) == 1, out
        return decisions[0]

    def reply(self, cid: str, op: str = "place", ok: bool = True, status: str = "live", dt: int = 0) -> list[Event]:
        return self.send(ExchangeReply(client_id=cid, op=op, ok=ok, status=status), src="exchange", dt=dt)

    def fill(self, cid: str, token: str, side: str, price: int, size: int, trade: str, status: str = "CONFIRMED"):
        return self.send(Fill(client_id=cid, token_id=token, side=side, price=price, size=size, trade_id=trade,
                              status=status), src="exchange")

    def tick(self, dt: int) -> list[Event]:
        return self.send(Tick(), src="clock", dt=dt)

    def hold(self, token: str, size: int, price: int = 10_000) -> None:
        """Buy ``size`` of ``token`` (approved, acknowledged, CONFIRMED fill), so that it can be sold."""
        self.n += 1
        cid = f"h{self.n}"
        assert approved(self.place(token=token, price=price, size=size, cid=cid))
        self.reply(cid)
        self.fill(cid, token, "BUY", price, size, f"th{self.n}")

    def kills(self) -> list[KillSwitch]:
        return [e for e in self.out if isinstance(e, KillSwitch)]


def approved(ev: Event) -> bool:
    return isinstance(ev, RiskApproved)


def code(ev: Event) -> str:
    return ev.code if isinstance(ev, RiskReject) else "approved"


def kill_sequence(out: list[Event]) -> list[str]:
    return [type(e).__name__ for e in out if isinstance(e, (KillSwitch, TradingState, CancelAll))]


# ---------------------------------------------------------------------------------------------- basics
def test_run_started_when_no_prior_halt_then_active_announced() -> None:
    h = GateHarness(books=False)
    assert h.out == [TradingState(state="ACTIVE", reason="run started")]
    assert h.gate.state == "ACTIVE"


def test_place_when_within_every_limit_then_approved_with_intent_seq() -> None:
    h = GateHarness()
    d = h.place()
    assert d == RiskApproved(intent_seq=h.seq, client_id="c1")


def test_place_when_run_not_started_then_not_started() -> None:
    g = RiskGate(params())
    out = g.step(1, Envelope(ts_ns=T0, src="orders", cause=0, ev=OrderIntent(
        client_id="c", condition_id="m1", token_id="Y", side="BUY", price=480_000, size=10 * S)))
    assert [code(e) for e in out] == ["not_started"]


def test_reject_codes_when_listed_then_every_code_used_by_the_gate_is_declared() -> None:
    import inspect

    import actors.core.risk as mod

    src = inspect.getsource(mod)
    for c in ("halted", "duplicate", "not_allowlisted", "reducing_only", "size_limit", "notional_limit", "feed_down",
              "no_reference_price", "off_tick", "price_range", "price_band", "would_cross", "unknown_order_pending",
              "fill_burst", "open_orders_limit", "position_limit", "total_notional_limit", "throttled",
              "unknown_order", "not_started", "insufficient_position", "not_post_only"):
        assert c in REJECT_CODES
        assert f'"{c}"' in src


def test_run_started_when_params_differ_then_invariant_error() -> None:
    g = RiskGate(params())
    other = params(max_order_size=1 * S)
    with pytest.raises(InvariantError):
        g.step(1, Envelope(ts_ns=T0, src="session", cause=0, ev=RunStarted(
            run_id="t", mode="prove", version="0", seed=0, config_hash="", params=other)))


def test_step_when_time_goes_backwards_then_invariant_error() -> None:
    h = GateHarness()
    with pytest.raises(InvariantError):
        h.gate.step(99, Envelope(ts_ns=h.now - 1, src="clock", cause=0, ev=Tick()))


# ---------------------------------------------------------------------------------------------- allowlist
def test_place_when_token_not_configured_then_not_allowlisted() -> None:
    h = GateHarness()
    assert code(h.place(token="Z", market="m1")) == "not_allowlisted"


def test_place_when_token_under_other_condition_then_not_allowlisted() -> None:
    h = GateHarness()
    assert code(h.place(token="Y", market="m2")) == "not_allowlisted"


def test_place_when_not_post_only_then_not_post_only_even_if_it_would_not_cross() -> None:
    h = GateHarness()
    out = h.send(OrderIntent(client_id="t", condition_id="m1", token_id="Y", side="BUY", price=480_000, size=10 * S,
                             post_only=False), src="orders")
    assert [code(e) for e in out] == ["not_post_only"]


# ---------------------------------------------------------------------------------------------- size and notional
def test_place_when_size_equals_max_then_approved() -> None:
    h = GateHarness(params(max_order_size=20 * S, max_order_notional=100 * S))
    assert approved(h.place(size=20 * S))


def test_place_when_size_is_max_plus_one_then_size_limit() -> None:
    h = GateHarness(params(max_order_size=20 * S, max_order_notional=100 * S))
    assert code(h.place(size=20 * S + 1)) == "size_limit"


@pytest.mark.parametrize("size", [0, 1, S - 1])
def test_place_when_size_below_market_minimum_then_size_limit(size: int) -> None:
    h = GateHarness()
    assert code(h.place(size=size)) == "size_limit"


def test_place_when_size_equals_market_minimum_then_approved() -> None:
    h = GateHarness()
    assert approved(h.place(size=S))


def test_place_when_notional_equals_max_then_approved() -> None:
    h = GateHarness(params(max_order_notional=5 * S))  # $5 = 10 shares at 0.50
    assert approved(h.place(price=500_000, size=10 * S, token="N"))


def test_place_when_notional_exceeds_max_by_one_micro_share_then_notional_limit() -> None:
    h = GateHarness(params(max_order_notional=5 * S))
    assert code(h.place(price=500_000, size=10 * S + 2, token="N")) == "notional_limit"


def test_place_when_sell_notional_exceeds_max_then_notional_limit() -> None:
    h = GateHarness(params(max_order_notional=4 * S))
    assert code(h.place(side="SELL", price=520_000, size=10 * S)) == "notional_limit"


# ---------------------------------------------------------------------------------------------- price checks
def test_place_when_no_book_then_no_reference_price() -> None:
    h = GateHarness(books=False)
    h.send(FeedFrame(conn=1, text="PONG"), src="feed")
    assert code(h.place()) == "no_reference_price"


@pytest.mark.parametrize(
    ("bid", "ask", "valid"),
    [(470_000, 510_000, False), (0, 510_000, True), (470_000, 0, True), (510_000, 510_000, True),
     (520_000, 510_000, True)],
    ids=["invalid", "no-bid", "no-ask", "locked", "crossed"],
)
def test_place_when_book_not_a_valid_reference_then_no_reference_price(bid: int, ask: int, valid: bool) -> None:
    h = GateHarness()
    h.book("Y", bid, ask, valid=valid)
    assert code(h.place(price=400_000)) == "no_reference_price"


def test_place_when_book_recovers_then_approved_again() -> None:
    h = GateHarness()
    h.book("Y", 470_000, 510_000, valid=False)
    assert code(h.place()) == "no_reference_price"
    h.book("Y", 470_000, 510_000)
    assert approved(h.place())


def test_place_when_price_off_tick_then_off_tick() -> None:
    h = GateHarness()
    assert code(h.place(price=481_000)) == "off_tick"


def test_place_when_book_tick_is_finer_then_price_on_finer_grid_approved() -> None:
    h = GateHarness()
    h.book("Y", 470_000, 510_000, tick=1_000)
    assert approved(h.place(price=481_000))


def test_place_when_price_equals_tick_then_approved() -> None:
    h = GateHarness(params(max_order_notional=100 * S))
    assert approved(h.place(price=10_000))


@pytest.mark.parametrize(("side", "price"), [("BUY", 0), ("SELL", MICRO)])
def test_place_when_price_outside_tick_to_one_minus_tick_then_price_range(side: str, price: int) -> None:
    h = GateHarness()
    h.book("Y", 10_000, 990_000)
    assert code(h.place(side=side, price=price)) == "price_range"


def test_place_when_sell_at_one_minus_tick_then_approved() -> None:
    h = GateHarness(params(max_order_notional=100 * S, price_band=MICRO))
    h.hold("Y", S)
    h.book("Y", 10_000, 999_000, tick=1_000)  # a wide book, so 0.999 is neither crossing nor outside the band
    assert approved(h.place(side="SELL", price=999_000, size=S))


def test_place_when_buy_at_mid_plus_band_then_approved() -> None:
    h = GateHarness(params(price_band=50_000))
    h.book("Y", 300_000, 700_000)  # mid 0.50
    assert approved(h.place(price=550_000))


def test_place_when_buy_one_tick_above_mid_plus_band_then_price_band() -> None:
    h = GateHarness(params(price_band=50_000))
    h.book("Y", 300_000, 700_000)
    assert code(h.place(price=560_000)) == "price_band"


def test_place_when_sell_at_mid_minus_band_then_approved() -> None:
    h = GateHarness(params(price_band=50_000))
    h.book("Y", 300_000, 700_000)
    h.hold("Y", 10 * S, 400_000)
    assert approved(h.place(side="SELL", price=450_000))


def test_place_when_sell_one_tick_below_mid_minus_band_then_price_band() -> None:
    h = GateHarness(params(price_band=50_000))
    h.book("Y", 300_000, 700_000)
    assert code(h.place(side="SELL", price=440_000)) == "price_band"


def test_place_when_band_boundary_on_half_tick_mid_then_exact_integer_comparison() -> None:
    h = GateHarness(params(price_band=45_000))
    h.book("Y", 470_000, 520_000, tick=1_000)  # mid 0.495: buy limit 0.540 exactly, sell limit 0.450
    assert code(h.place(price=519_000)) == "approved"
    h.book("Y", 300_000, 781_000, tick=1_000)  # mid 0.5405: buy at 0.5855 ok, 0.586 not
    assert approved(h.place(price=585_000, size=S))
    assert code(h.place(price=586_000, size=S)) == "price_band"


def test_place_when_buy_at_best_ask_then_would_cross() -> None:
    h = GateHarness()
    assert code(h.place(price=510_000)) == "would_cross"


def test_place_when_buy_one_tick_below_best_ask_then_approved() -> None:
    h = GateHarness()
    assert approved(h.place(price=500_000))


def test_place_when_sell_at_best_bid_then_would_cross() -> None:
    h = GateHarness()
    assert code(h.place(side="SELL", price=470_000)) == "would_cross"


def test_place_when_sell_one_tick_above_best_bid_then_approved() -> None:
    h = GateHarness()
    h.hold("Y", 10 * S)
    assert approved(h.place(side="SELL", price=480_000))


# ---------------------------------------------------------------------------------------------- exposure
def test_place_when_worst_case_long_equals_max_position_then_approved() -> None:
    h = GateHarness(params(max_position=20 * S))
    assert approved(h.place(size=10 * S, price=480_000))
    assert approved(h.place(size=10 * S, price=470_000))


def test_place_when_worst_case_long_exceeds_max_position_by_one_then_position_limit() -> None:
    h = GateHarness(params(max_position=20 * S))
    assert approved(h.place(size=10 * S, price=480_000))
    assert code(h.place(size=10 * S + 1, price=470_000)) == "position_limit"


def test_place_when_filled_position_plus_open_orders_exceed_max_then_position_limit() -> None:
    h = GateHarness(params(max_position=20 * S))
    assert approved(h.place(cid="a", size=10 * S, price=480_000))
    h.reply("a")
    h.fill("a", "Y", "BUY", 480_000, 10 * S, "t1")
    assert h.gate.position("Y") == 10 * S
    assert approved(h.place(size=5 * S, price=470_000))
    assert code(h.place(size=5 * S + 1, price=460_000)) == "position_limit"


def test_place_when_sell_equals_held_then_approved_one_more_then_insufficient_position() -> None:
    h = GateHarness()
    h.hold("Y", 10 * S)
    assert approved(h.place(side="SELL", size=6 * S, price=520_000))
    assert approved(h.place(side="SELL", size=4 * S, price=530_000))
    assert code(h.place(side="SELL", size=S, price=540_000)) == "insufficient_position"


def test_place_when_nothing_held_then_sell_insufficient_position() -> None:
    h = GateHarness()
    assert code(h.place(side="SELL", size=S, price=520_000)) == "insufficient_position"


def test_place_when_buy_fill_only_matched_then_not_yet_sellable() -> None:
    h = GateHarness()
    assert approved(h.place(cid="a", size=10 * S))
    h.fill("a", "Y", "BUY", 480_000, 10 * S, "t1", "MATCHED")
    assert h.gate.position("Y") == 10 * S
    assert code(h.place(side="SELL", size=10 * S, price=520_000)) == "insufficient_position"
    h.fill("a", "Y", "BUY", 480_000, 10 * S, "t1", "CONFIRMED")
    assert approved(h.place(side="SELL", size=10 * S, price=520_000))


def test_place_when_sell_fill_only_matched_then_freed_capacity_not_reusable_until_confirmed() -> None:
    h = GateHarness(params(max_position=10 * S))
    h.hold("Y", 10 * S)
    assert approved(h.place(cid="s", side="SELL", size=10 * S, price=520_000))
    h.fill("s", "Y", "SELL", 520_000, 10 * S, "t1", "MATCHED")
    assert h.gate.position("Y") == 0
    assert code(h.place(size=S, price=470_000)) == "position_limit"  # the sale may still fail (ghost fill)
    h.fill("s", "Y", "SELL", 520_000, 10 * S, "t1", "CONFIRMED")
    assert approved(h.place(size=S, price=470_000))


def test_fill_when_matched_sell_fails_then_exposure_back_where_it_was() -> None:
    h = GateHarness(params(max_total_notional=10 * S, max_order_notional=10 * S))
    h.hold("N", 10 * S, 500_000)  # $5 of cost
    before = h.gate.total_exposure()
    assert approved(h.place(cid="s", token="N", side="SELL", size=10 * S, price=520_000))
    h.fill("s", "N", "SELL", 520_000, 10 * S, "t1", "MATCHED")
    assert h.gate.total_exposure() == before
    h.fill("s", "N", "SELL", 520_000, 10 * S, "t1", "FAILED")
    assert h.gate.total_exposure() == before and h.gate.position("N") == 10 * S


def test_place_when_cancel_pending_then_order_still_counts_toward_exposure() -> None:
    h = GateHarness(params(max_position=10 * S))
    assert approved(h.place(cid="a", size=10 * S))
    h.reply("a")
    assert approved(h.cancel("a"))
    assert code(h.place(size=10 * S, price=470_000)) == "position_limit"
    h.reply("a", op="cancel", status="cancelled")
    assert approved(h.place(size=10 * S, price=470_000))


def test_place_when_in_flight_without_reply_then_counts_toward_exposure() -> None:
    h = GateHarness(params(max_position=10 * S))
    assert approved(h.place(size=10 * S))
    assert code(h.place(size=S, price=470_000)) == "position_limit"


def test_place_when_exchange_rejected_earlier_order_then_exposure_released() -> None:
    h = GateHarness(params(max_position=10 * S))
    assert approved(h.place(cid="a", size=10 * S))
    h.reply("a", ok=False, status="rejected")
    assert approved(h.place(size=10 * S, price=470_000))


def test_place_when_place_reply_failed_without_status_then_exposure_kept_and_token_blocked() -> None:
    h = GateHarness(params(max_position=10 * S))
    assert approved(h.place(cid="a", size=5 * S))
    h.reply("a", ok=False, status="")
    assert code(h.place(size=5 * S, price=470_000)) == "unknown_order_pending"


def test_place_when_total_notional_equals_max_then_approved() -> None:
    h = GateHarness(params(max_total_notional=10 * S, max_order_notional=10 * S))
    assert approved(h.place(price=500_000, size=10 * S, token="N"))  # $5
    assert approved(h.place(price=500_000, size=10 * S, token="N2"))  # $5 more: $10


def test_place_when_total_notional_exceeds_max_by_one_then_total_notional_limit() -> None:
    h = GateHarness(params(max_total_notional=10 * S, max_order_notional=10 * S))
    assert approved(h.place(price=500_000, size=10 * S, token="N"))
    assert code(h.place(price=500_000, size=10 * S + 2, token="N2")) == "total_notional_limit"


def test_place_when_long_position_held_then_its_cost_counts_toward_total() -> None:
    h = GateHarness(params(max_total_notional=10 * S, max_order_notional=10 * S))
    assert approved(h.place(cid="a", price=500_000, size=10 * S, token="N"))
    h.reply("a")
    h.fill("a", "N", "BUY", 500_000, 10 * S, "t1")
    assert h.gate.total_exposure() == 5 * S * MICRO
    assert approved(h.place(price=500_000, size=10 * S, token="N2"))
    assert code(h.place(price=480_000, size=S, token="Y")) == "total_notional_limit"


def test_fill_when_side_is_not_the_orders_then_unknown_order_kill_and_short_counts_one_dollar_per_share() -> None:
    h = GateHarness()
    assert approved(h.place(cid="s", side="BUY", price=10_000, size=S))
    h.fill("s", "Y", "SELL", 520_000, 5 * S, "t1")  # a sell we never asked for: short 5 shares
    assert [k.reason for k in h.kills()] == ["unknown_order"]
    assert h.gate.position("Y") == -5 * S
    assert h.gate.open_orders()[0][4] == S  # the buy order is untouched
    assert h.gate.total_exposure() == 10_000 * S + 5 * S * MICRO


def test_place_when_open_orders_equal_max_then_next_open_orders_limit() -> None:
    h = GateHarness(params(max_open_orders=3))
    for price in (480_000, 470_000, 460_000):
        assert approved(h.place(price=price, size=S))
    assert code(h.place(price=450_000, size=S)) == "open_orders_limit"


def test_place_when_order_terminal_then_open_order_slot_freed() -> None:
    h = GateHarness(params(max_open_orders=1))
    assert approved(h.place(cid="a", size=S))
    h.reply("a")
    h.fill("a", "Y", "BUY", 480_000, S, "t1")
    assert approved(h.place(price=470_000, size=S))


# ---------------------------------------------------------------------------------------------- duplicates
def test_place_when_identical_order_open_then_duplicate() -> None:
    h = GateHarness()
    assert approved(h.place())
    assert code(h.place()) == "duplicate"


def test_place_when_identical_order_is_being_cancelled_then_approved_as_replace() -> None:
    h = GateHarness()
    assert approved(h.place(cid="a"))
    assert approved(h.cancel("a"))
    assert approved(h.place())


def test_place_when_client_id_reused_then_duplicate() -> None:
    h = GateHarness()
    assert approved(h.place(cid="a"))
    assert code(h.place(cid="a", price=470_000)) == "duplicate"


def test_place_when_client_id_of_rejected_intent_reused_then_duplicate() -> None:
    h = GateHarness()
    assert code(h.place(cid="a", price=481_000)) == "off_tick"
    assert code(h.place(cid="a")) == "duplicate"


# ---------------------------------------------------------------------------------------------- throttles
def test_place_when_order_burst_used_then_next_throttled() -> None:
    h = GateHarness(params(orders_per_sec=2, order_burst=3, max_position=1000 * S, max_total_notional=1000 * S))
    for price in (480_000, 470_000, 460_000):
        assert approved(h.place(price=price, size=S))
    assert code(h.place(price=450_000, size=S)) == "throttled"


def test_place_when_throttled_and_refill_time_passes_then_approved() -> None:
    h = GateHarness(params(orders_per_sec=2, order_burst=1))
    assert approved(h.place(price=480_000, size=S))
    h.tick(SEC // 2 - 1)
    assert code(h.place(price=470_000, size=S)) == "throttled"
    h.tick(1)  # exactly 1/rate after the first: one whole token
    assert approved(h.place(price=470_000, size=S, cid="x"))


def test_cancel_when_cancel_budget_exhausted_then_still_approved_but_places_throttled() -> None:
    h = GateHarness(params(cancels_per_sec=1, cancel_burst=2, max_open_orders=50))
    for i in range(4):
        assert approved(h.place(cid=f"a{i}", price=480_000 - 10_000 * i, size=S))
    for i in range(4):
        assert approved(h.cancel(f"a{i}"))  # over the cancel budget: cancels are never refused
    d = h.place(price=400_000, size=S)
    assert code(d) == "throttled" and "cancel budget" in d.detail
    h.tick(SEC)
    assert approved(h.place(price=400_000, size=S, cid="late"))


def test_token_bucket_when_time_goes_backwards_then_invariant_error() -> None:
    b = TokenBucket(1, 1)
    assert b.take(10)
    with pytest.raises(InvariantError):
        b.take(9)


def test_token_bucket_when_idle_then_capped_at_burst() -> None:
    b = TokenBucket(5, 3)
    assert b.tokens(0) == 3
    assert b.take(0) and b.take(0) and b.take(0) and not b.take(0)
    assert b.tokens(10 * SEC) == 3


# ---------------------------------------------------------------------------------------------- cancels
def test_cancel_when_order_never_approved_then_unknown_order() -> None:
    h = GateHarness()
    assert code(h.cancel("nope")) == "unknown_order"
    assert code(h.place(cid="r", price=481_000)) == "off_tick"
    assert code(h.cancel("r")) == "unknown_order"


def test_cancel_when_halted_then_approved() -> None:
    h = GateHarness()
    assert approved(h.place(cid="a"))
    h.send(OperatorStop(), src="operator")
    assert approved(h.cancel("a"))


def test_cancel_when_reducing_then_approved() -> None:
    h = GateHarness()
    assert approved(h.place(cid="a"))
    h.send(ReduceOnly(), src="operator")
    assert approved(h.cancel("a"))


# ---------------------------------------------------------------------------------------------- trading states
def test_reduce_only_when_active_then_reducing_announced_once() -> None:
    h = GateHarness()
    assert h.send(ReduceOnly(reason="wind down"), src="operator") == [TradingState(state="REDUCING", reason="wind down")]
    assert h.send(ReduceOnly(), src="operator") == []


def test_place_when_reducing_and_buy_then_reducing_only() -> None:
    h = GateHarness()
    h.send(ReduceOnly(), src="operator")
    assert code(h.place()) == "reducing_only"


def test_place_when_reducing_and_sell_within_position_then_approved_beyond_then_rejected() -> None:
    h = GateHarness()
    assert approved(h.place(cid="a", size=10 * S))
    h.reply("a")
    h.fill("a", "Y", "BUY", 480_000, 10 * S, "t1")
    h.send(ReduceOnly(), src="operator")
    assert code(h.place(token="N", side="BUY", price=500_000, size=S)) == "reducing_only"
    assert approved(h.place(side="SELL", price=520_000, size=6 * S))
    assert approved(h.place(side="SELL", price=530_000, size=4 * S))  # open sells + this == position
    assert code(h.place(side="SELL", price=540_000, size=S)) == "reducing_only"


def test_place_when_halted_then_halted_even_if_otherwise_fine() -> None:
    h = GateHarness()
    h.send(OperatorStop(), src="operator")
    assert code(h.place()) == "halted"


def test_position_when_loss_below_reduce_level_then_reducing() -> None:
    h = GateHarness(params(reduce_loss=5 * S, max_loss=20 * S, daily_loss=20 * S))
    out = h.send(Position(token_id="Y", position=0, cash=0, mark=0, realized=0, mtm=-5 * S), src="portfolio")
    assert out == []
    out = h.send(Position(token_id="Y", position=0, cash=0, mark=0, realized=0, mtm=-5 * S - 1), src="portfolio")
    assert out == [TradingState(state="REDUCING", reason="PnL -$5.000001 below -$5.00")]


# ---------------------------------------------------------------------------------------------- kill switch
def test_operator_stop_when_active_then_kill_halt_cancel_all_in_order_exactly_once() -> None:
    h = GateHarness()
    out = h.send(OperatorStop(reason="ctrl-c"), src="operator")
    assert out == [
        KillSwitch(reason="operator_stop", detail="ctrl-c"),
        TradingState(state="HALTED", reason="operator_stop"),
        CancelAll(reason="operator_stop"),
    ]
    assert h.send(OperatorStop(), src="operator") == []
    assert h.send(out[0], src="risk") == []  # our own KillSwitch coming back
    assert h.send(KillSwitch(reason="geoblocked"), src="preflight") == []


def test_kill_switch_input_when_active_then_halted_and_cancel_all_without_second_kill() -> None:
    h = GateHarness()
    out = h.send(KillSwitch(reason="heartbeat_failed", detail="3 misses"), src="heartbeat")
    assert out == [TradingState(state="HALTED", reason="heartbeat_failed"), CancelAll(reason="heartbeat_failed")]
    assert code(h.place()) == "halted"


def test_kill_switch_when_internal_error_of_the_gate_itself_then_still_latched() -> None:
    h = GateHarness()  # the sequencer stamps its internal_error KillSwitch with the failing actor's name
    out = h.send(KillSwitch(reason="internal_error", detail="risk: ZeroDivisionError"), src="risk")
    assert kill_sequence(out) == ["TradingState", "CancelAll"]
    assert h.gate.halted


def test_run_started_when_prior_halt_then_halted_at_once() -> None:
    h = GateHarness(prior_halt="feed_stale in run 7")
    assert h.out[:3] == [
        KillSwitch(reason="prior_halt", detail="feed_stale in run 7"),
        TradingState(state="HALTED", reason="prior_halt"),
        CancelAll(reason="prior_halt"),
    ]
    assert code(h.place()) == "halted"


def test_halted_when_anything_happens_then_never_unlatched() -> None:
    h = GateHarness()
    h.send(OperatorStop(), src="operator")
    h.send(ReduceOnly(), src="operator")
    h.send(FeedStatus(conn=2, state="connected"), src="feed")
    h.book("Y", 470_000, 510_000)
    h.send(Position(token_id="Y", position=0, cash=0, mark=0, realized=0, mtm=10 * S), src="portfolio")
    assert h.gate.state == "HALTED"
    assert [e for e in h.out if isinstance(e, TradingState)][-1].state == "HALTED"


def test_tick_when_feed_silent_exactly_stale_limit_then_no_kill() -> None:
    h = GateHarness(params(feed_stale_ns=30 * SEC))
    assert h.tick(30 * SEC) == []  # FeedStatus(connected) was at the harness start time


def test_tick_when_feed_silent_stale_limit_plus_one_then_feed_stale_kill() -> None:
    h = GateHarness(params(feed_stale_ns=30 * SEC))
    out = h.tick(30 * SEC + 1)
    assert kill_sequence(out) == ["KillSwitch", "TradingState", "CancelAll"]
    assert out[0].reason == "feed_stale"


def test_tick_when_no_frame_ever_then_stale_counted_from_run_started() -> None:
    h = GateHarness(params(feed_stale_ns=5 * SEC), books=False)
    assert h.tick(5 * SEC) == []
    assert h.kills() == []
    h.tick(1)
    assert [k.reason for k in h.kills()] == ["feed_stale"]


def test_frame_when_it_arrives_after_a_stale_gap_then_kill_still_trips() -> None:
    h = GateHarness(params(feed_stale_ns=5 * SEC))
    out = h.send(FeedFrame(conn=1, text="PONG"), src="feed", dt=5 * SEC + 1)
    assert [e.reason for e in out if isinstance(e, KillSwitch)] == ["feed_stale"]


def test_tick_when_frames_keep_coming_then_no_feed_stale() -> None:
    h = GateHarness(params(feed_stale_ns=5 * SEC))
    for _ in range(10):
        h.send(FeedFrame(conn=1, text="PONG"), src="feed", dt=4 * SEC)
        h.tick(SEC)
    assert h.kills() == []


def test_frame_when_from_an_old_connection_then_not_counted_as_live() -> None:
    h = GateHarness(params(feed_stale_ns=5 * SEC))
    h.send(FeedStatus(conn=2, state="connected"), src="feed", dt=SEC)
    h.send(FeedFrame(conn=1, text="PONG"), src="feed", dt=4 * SEC)
    h.tick(SEC + 1)
    assert [k.reason for k in h.kills()] == ["feed_stale"]


def test_place_when_feed_disconnected_then_feed_down_until_reconnected() -> None:
    h = GateHarness()
    h.send(FeedStatus(conn=1, state="disconnected"), src="feed")
    assert code(h.place()) == "feed_down"
    h.send(FeedStatus(conn=2, state="connected"), src="feed")
    assert approved(h.place())


def test_tick_when_book_invalid_exactly_limit_then_no_kill() -> None:
    h = GateHarness(params(book_invalid_ns=10 * SEC))
    h.book("Y", 470_000, 510_000, valid=False)
    h.send(FeedFrame(conn=1, text="PONG"), src="feed", dt=10 * SEC)
    assert h.kills() == []


def test_tick_when_book_invalid_limit_plus_one_then_book_invalid_kill() -> None:
    h = GateHarness(params(book_invalid_ns=10 * SEC))
    h.book("Y", 470_000, 510_000, valid=False)
    h.send(FeedFrame(conn=1, text="PONG"), src="feed", dt=10 * SEC)
    h.tick(1)
    assert [k.reason for k in h.kills()] == ["book_invalid"]


def test_tick_when_book_crossed_too_long_then_book_invalid_kill() -> None:
    h = GateHarness(params(book_invalid_ns=2 * SEC))
    h.book("N", 540_000, 530_000)
    h.tick(2 * SEC + 1)
    assert [k.reason for k in h.kills()] == ["book_invalid"]


def test_tick_when_book_valid_again_in_time_then_no_kill() -> None:
    h = GateHarness(params(book_invalid_ns=10 * SEC))
    h.book("Y", 470_000, 510_000, valid=False)
    h.tick(9 * SEC)
    h.book("Y", 470_000, 510_000)
    h.tick(9 * SEC)
    h.book("Y", 470_000, 510_000, valid=False)  # a new invalid spell starts from zero
    h.tick(9 * SEC)
    assert h.kills() == []


def test_tick_when_unconfigured_token_book_invalid_then_no_kill() -> None:
    h = GateHarness(params(book_invalid_ns=SEC))
    h.book("Z", 1, 2, valid=False)
    h.tick(2 * SEC)
    assert h.kills() == []


def test_reply_when_failures_reach_error_burst_in_window_then_error_rate_kill() -> None:
    h = GateHarness(params(error_burst=3, error_window_ns=10 * SEC))
    h.reply("x1", ok=False, status="rejected", op="place")
    h.reply("x2", ok=False, status="rejected", op="place", dt=5 * SEC)
    assert h.kills() == []
    h.reply("x3", ok=False, status="rejected", op="place", dt=5 * SEC - 1)
    assert [k.reason for k in h.kills()] == ["error_rate"]


def test_reply_when_failures_spread_beyond_window_then_no_kill() -> None:
    h = GateHarness(params(error_burst=3, error_window_ns=10 * SEC))
    h.reply("x1", ok=False, status="rejected")
    h.reply("x2", ok=False, status="rejected", dt=5 * SEC)
    h.reply("x3", ok=False, status="rejected", dt=5 * SEC)  # the first is exactly one window old: out
    assert h.kills() == []


def test_fill_when_position_equals_max_then_no_kill_beyond_then_position_limit() -> None:
    h = GateHarness(params(max_position=10 * S))
    assert approved(h.place(cid="a", size=10 * S))
    h.reply("a")
    h.fill("a", "Y", "BUY", 480_000, 10 * S, "t1")
    assert h.kills() == []
    h.fill("a", "Y", "BUY", 480_000, 1, "t2")  # an overfill: reality beats the plan
    assert [k.reason for k in h.kills()] == ["position_limit"]


def test_position_event_when_beyond_max_position_then_position_limit_kill() -> None:
    h = GateHarness(params(max_position=10 * S))
    h.send(Position(token_id="Y", position=10 * S, cash=0, mark=0, realized=0, mtm=0), src="portfolio")
    assert h.kills() == []
    h.send(Position(token_id="Y", position=-10 * S - 1, cash=0, mark=0, realized=0, mtm=0), src="portfolio")
    assert [k.reason for k in h.kills()] == ["position_limit"]


def test_position_event_when_pnl_equals_minus_max_loss_then_no_kill_below_then_loss_limit() -> None:
    h = GateHarness(params(max_loss=10 * S, daily_loss=100 * S, reduce_loss=100 * S))
    h.send(Position(token_id="Y", position=0, cash=0, mark=0, realized=0, mtm=-6 * S), src="portfolio")
    h.send(Position(token_id="N", position=0, cash=0, mark=0, realized=0, mtm=-3 * S - S), src="portfolio")
    assert h.kills() == []
    h.send(Position(token_id="N", position=0, cash=0, mark=0, realized=0, mtm=-3 * S - S - 1), src="portfolio")
    assert [k.reason for k in h.kills()] == ["loss_limit"]


def test_fill_when_own_marked_pnl_below_max_loss_then_loss_limit_without_portfolio() -> None:
    h = GateHarness(params(max_loss=2 * S, daily_loss=100 * S, reduce_loss=100 * S, max_order_notional=50 * S))
    assert approved(h.place(cid="a", price=500_000, size=20 * S))
    h.reply("a")
    h.fill("a", "Y", "BUY", 500_000, 20 * S, "t1")  # mark 0.49: -0.20
    assert h.kills() == []
    h.book("Y", 390_000, 410_000)  # mark 0.40: -2.00 exactly
    assert h.kills() == []
    h.book("Y", 389_000, 410_000, tick=1_000)  # mark 0.3995: -2.10
    assert [k.reason for k in h.kills()] == ["loss_limit"]


def test_book_when_invalid_after_fill_then_last_valid_mark_kept() -> None:
    h = GateHarness(params(max_loss=2 * S, reduce_loss=100 * S))
    assert approved(h.place(cid="a", price=500_000, size=20 * S))
    h.reply("a")
    h.fill("a", "Y", "BUY", 500_000, 20 * S, "t1")
    h.book("Y", 0, 0, valid=False)  # a resync: no mark, but no phantom loss either
    assert h.kills() == []
    assert h.gate.pnl() == -200_000


def test_position_event_when_daily_loss_crossed_then_daily_loss_kill() -> None:
    h = GateHarness(params(max_loss=100 * S, daily_loss=5 * S, reduce_loss=100 * S))
    h.send(Position(token_id="Y", position=0, cash=0, mark=0, realized=0, mtm=-5 * S), src="portfolio")
    assert h.kills() == []
    h.send(Position(token_id="Y", position=0, cash=0, mark=0, realized=0, mtm=-5 * S - 1), src="portfolio")
    assert [k.reason for k in h.kills()] == ["daily_loss"]


def test_position_event_when_new_utc_day_then_daily_loss_rebased() -> None:
    h = GateHarness(params(max_loss=100 * S, daily_loss=5 * S, reduce_loss=100 * S, feed_stale_ns=7 * 24 * 3600 * SEC))
    h.send(Position(token_id="Y", position=0, cash=0, mark=0, realized=0, mtm=-4 * S), src="portfolio")
    to_midnight = DAY_NS - h.now % DAY_NS
    h.send(FeedFrame(conn=1, text="PONG"), src="feed", dt=to_midnight)
    h.send(Position(token_id="Y", position=0, cash=0, mark=0, realized=0, mtm=-8 * S), src="portfolio")
    assert h.kills() == []  # -4 today
    h.send(Position(token_id="Y", position=0, cash=0, mark=0, realized=0, mtm=-9 * S - 1), src="portfolio")
    assert [k.reason for k in h.kills()] == ["daily_loss"]


def test_fill_when_client_id_never_approved_then_unknown_order_kill() -> None:
    h = GateHarness()
    h.fill("ghost", "Y", "BUY", 480_000, S, "t1")
    assert [k.reason for k in h.kills()] == ["unknown_order"]
    assert h.gate.position("Y") == S


def test_reply_when_live_for_client_id_never_approved_then_unknown_order_kill() -> None:
    h = GateHarness()
    assert code(h.place(cid="r", price=481_000)) == "off_tick"
    h.reply("r", status="live")
    assert [k.reason for k in h.kills()] == ["unknown_order"]


# ---------------------------------------------------------------------------------------------- unknown orders
def test_place_when_order_on_token_unknown_then_unknown_order_pending_until_resolved() -> None:
    h = GateHarness()
    assert approved(h.place(cid="a"))
    h.reply("a", ok=False, status="unknown")
    assert code(h.place(price=470_000)) == "unknown_order_pending"
    assert approved(h.place(token="N", price=500_000))  # other tokens are not blocked
    h.reply("a", status="live")
    assert approved(h.place(price=470_000, cid="after"))


def test_tick_when_no_reply_within_ack_timeout_then_gate_blocks_token_on_its_own() -> None:
    h = GateHarness(params(orders=OrderParams(ack_timeout_ns=2 * SEC)))
    assert approved(h.place(cid="a"))
    h.tick(2 * SEC)
    assert approved(h.place(price=470_000))
    h.tick(1)
    assert code(h.place(price=460_000)) == "unknown_order_pending"
    h.fill("a", "Y", "BUY", 480_000, S, "t1")  # a fill proves the order exists: resolved
    assert approved(h.place(price=460_000, cid="late"))


def test_order_state_when_manager_reports_unknown_then_gate_blocks_token() -> None:
    h = GateHarness()
    assert approved(h.place(cid="a"))
    h.send(OrderState(client_id="a", state="unknown"), src="orders")
    assert code(h.place(price=470_000)) == "unknown_order_pending"


# ---------------------------------------------------------------------------------------------- fills
def test_fill_when_same_trade_matched_then_confirmed_then_counted_once() -> None:
    h = GateHarness()
    assert approved(h.place(cid="a"))
    h.fill("a", "Y", "BUY", 480_000, 4 * S, "t1", "MATCHED")
    h.fill("a", "Y", "BUY", 480_000, 4 * S, "t1", "CONFIRMED")
    assert h.gate.position("Y") == 4 * S


def test_fill_when_failed_after_matched_then_position_and_order_size_restored() -> None:
    h = GateHarness(params(max_position=10 * S))
    assert approved(h.place(cid="a", size=10 * S))
    h.fill("a", "Y", "BUY", 480_000, 4 * S, "t1", "MATCHED")
    h.fill("a", "Y", "BUY", 480_000, 4 * S, "t1", "FAILED")
    assert h.gate.position("Y") == 0
    assert h.gate.worst_case("Y") == (10 * S, 0)
    h.fill("a", "Y", "BUY", 480_000, 4 * S, "t1", "CONFIRMED")  # a failed trade never counts again
    assert h.gate.position("Y") == 0


def test_place_when_fill_burst_reached_on_side_then_fill_burst_until_window_passes() -> None:
    h = GateHarness(params(fill_burst=3, fill_window_ns=10 * SEC, max_position=100 * S))
    assert approved(h.place(cid="a", size=30 * S, price=480_000, token="N"))  # $14.40 within the $25 order cap
    for i in range(2):
        h.fill("a", "N", "BUY", 480_000, S, f"t{i}")
    assert approved(h.place(price=470_000, size=S, token="N"))
    h.fill("a", "N", "BUY", 480_000, S, "t2")
    assert code(h.place(price=460_000, size=S, token="N")) == "fill_burst"
    assert approved(h.place(side="SELL", price=520_000, size=S, token="N"))  # the other side is not paused
    h.tick(10 * SEC)
    assert approved(h.place(price=460_000, size=S, token="N", cid="later"))


def test_cancel_all_replies_when_confirmed_then_exposure_released() -> None:
    h = GateHarness()
    for i in range(3):
        assert approved(h.place(cid=f"a{i}", price=480_000 - 10_000 * i))
    h.send(OperatorStop(), src="operator")
    assert all(c for *_, c, _ in h.gate.open_orders())  # every open order is now cancel-pending
    for i in range(3):
        h.reply(f"a{i}", op="cancel", status="cancelled")
    h.reply("", op="cancel_all", status="")
    assert h.gate.open_orders() == []


def test_params_when_defaults_then_new_risk_params_are_safe() -> None:
    r = RiskParams()
    assert r.book_invalid_ns == 10 * SEC
    assert 0 < r.reduce_loss <= r.max_loss
    assert r.fill_burst >= 1
    assert msgspec.json.decode(msgspec.json.encode(r), type=RiskParams) == r


def test_position_event_when_realized_is_part_of_mtm_then_not_counted_twice() -> None:
    h = GateHarness(params(max_loss=10 * S, daily_loss=100 * S, reduce_loss=100 * S))
    h.send(Position(token_id="Y", position=0, cash=-8 * S, mark=0, realized=-8 * S, mtm=-8 * S), src="portfolio")
    assert h.kills() == []  # -8 in all, not -16
    h.send(Position(token_id="N", position=10 * S, cash=-5 * S, mark=0, realized=10 * S, mtm=-3 * S), src="portfolio")
    assert [k.reason for k in h.kills()] == ["loss_limit"]  # a realized gain does not hide the open loss
