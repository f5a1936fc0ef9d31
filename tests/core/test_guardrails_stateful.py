"""Guardrails as a state machine: the real order manager and risk gate in a sequencer, random everything else.

Hypothesis drives random books (valid, invalid, one-sided, crossed, tick changes), random desired quotes (including
unlisted tokens, off-tick prices, zero and oversized sizes), a fake venue that answers at random (live, rejected,
unknown, cancelled, failed cancels, partial fills MATCHED/CONFIRMED/FAILED, cancel-all), time jumps that make the
feed stale, PnL reports, operator stops, reduce-only and external kill switches, with limits drawn within ranges;
sometimes the run starts holding tokens (``StartingInventory``, within the limits), as a live run can.
After every step:
- every approved place satisfies every static limit (size, notional, allowlist, tick grid and range, price band
  against the book the gate saw, no crossing) and none is approved after a kill switch or in HALTED;
- every intent got exactly one decision, in the same cascade;
- worst-case exposure is within the limits (per-token long/short, total notional), whatever fills and replies did;
- the gate's positions equal the starting inventory plus the sum of the fills (first MATCHED/CONFIRMED counts,
  FAILED reverses);
- the kill switch fired at most once, with CancelAll after it, and HALTED never un-latches; states only move
  ACTIVE -> REDUCING -> HALTED; no actor ever crashed (no internal_error).
"""
from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from actors.core.orders import OrderManager
from actors.core.risk import RiskGate
from actors.sequencer import Sequencer
from events.base import MICRO
from events.control import KillSwitch, OperatorStop, RunStarted, Tick, TradingState
from events.live import StartingInventory, TokenBalance
from events.market import BookChanged, FeedFrame, FeedStatus
from events.orders import (
    CancelAll,
    CancelIntent,
    DesiredQuotes,
    ExchangeReply,
    Fill,
    OrderIntent,
    Position,
    Quote,
    RiskApproved,
    RiskReject,
)
from events.params import CoreParams, MarketParams, OrderParams, RiskParams
from events.risk import ReduceOnly
from replay.harness import MemorySink

SEC = 10**9
S = MICRO
T0 = 1_700_000_000 * SEC
MARKETS = (
    MarketParams(condition_id="m1", yes_token="Y1", no_token="N1", min_order_size=5 * S),
    MarketParams(condition_id="m2", yes_token="Y2", no_token="N2", min_order_size=1 * S),
)
TOKENS = ("Y1", "N1", "Y2", "N2")
MARKET_OF = {"Y1": "m1", "N1": "m1", "Y2": "m2", "N2": "m2"}
MIN_SIZE = {"Y1": 5 * S, "N1": 5 * S, "Y2": S, "N2": S}
STATE_RANK = {"ACTIVE": 0, "REDUCING": 1, "HALTED": 2}

risk_params = st.builds(
    RiskParams,
    max_order_size=st.integers(5, 40).map(lambda x: x * S),
    max_order_notional=st.integers(2, 30).map(lambda x: x * S),
    max_position=st.integers(10, 80).map(lambda x: x * S),
    max_total_notional=st.integers(5, 60).map(lambda x: x * S),
    max_open_orders=st.integers(1, 8),
    price_band=st.integers(1, 10).map(lambda x: x * 10_000),
    orders_per_sec=st.integers(1, 5),
    order_burst=st.integers(1, 6),
    cancels_per_sec=st.integers(1, 5),
    cancel_burst=st.integers(1, 6),
    feed_stale_ns=st.integers(5, 30).map(lambda x: x * SEC),
    max_loss=st.integers(2, 30).map(lambda x: x * S),
    daily_loss=st.integers(2, 30).map(lambda x: x * S),
    error_burst=st.integers(2, 8),
    error_window_ns=st.integers(10, 60).map(lambda x: x * SEC),
    book_invalid_ns=st.integers(2, 10).map(lambda x: x * SEC),
    reduce_loss=st.integers(1, 30).map(lambda x: x * S),
    fill_burst=st.integers(2, 6),
    fill_window_ns=st.integers(1, 10).map(lambda x: x * SEC),
)
order_params = st.builds(
    OrderParams,
    refresh_tolerance=st.sampled_from([0, 5_000, 10_000, 20_000]),
    size_tolerance=st.sampled_from([0, 200_000, 500_000]),
    max_order_age_ns=st.sampled_from([0, 0, 5 * SEC, 30 * SEC]),
    ack_timeout_ns=st.integers(1, 10).map(lambda x: x * SEC),
)


class Guardrails(RuleBasedStateMachine):
    @initialize(risk=risk_params, orders=order_params,
                start=st.one_of(st.none(), st.lists(st.integers(0, 30), min_size=4, max_size=4)))
    def setup(self, risk: RiskParams, orders: OrderParams, start: list[int] | None) -> None:
        self.p = CoreParams(markets=MARKETS, risk=risk, orders=orders, fills="live")
        self.om = OrderManager(self.p)
        self.gate = RiskGate(self.p)
        self.seq = Sequencer(MemorySink(), [self.om, self.gate])
        self.now = T0
        self.books: dict[str, tuple[bool, int, int, int]] = {}
        self.intents: dict[int, OrderIntent | CancelIntent] = {}
        self.decided: set[int] = set()
        self.killed = False
        self.kills = 0
        self.cancel_alls = 0
        self.rank = 0
        self.fill_sum: dict[str, int] = {}
        self.counted: dict[tuple[str, str], tuple[str, int]] = {}
        self.failed: set[tuple[str, str]] = set()
        self.matched: list[tuple[str, str, str, str, int, int]] = []
        self.trade_n = 0
        self.k = 0
        self.submit("session", RunStarted(run_id="h", mode="prove", version="0", seed=0, config_hash="",
                                          params=self.p))
        if start is not None:  # held before the run: within max_position, and within the total at 1 dollar a share
            room = risk.max_total_notional
            held = []
            for token, n in zip(TOKENS, start, strict=True):
                n = min(n * S, risk.max_position, room)
                room -= n
                held.append(TokenBalance(token_id=token, balance=n))
                self.fill_sum[token] = n
            self.submit("session", StartingInventory(balances=tuple(held)))
        self.submit("feed", FeedStatus(conn=1, state="connected"))
        for token in TOKENS:
            self.book(token, 47, 4, True, False, None)

    # ------------------------------------------------------------------ plumbing
    def submit(self, src: str, ev, dt: int = 0) -> None:
        self.k += 1
        self.now += dt
        for seq, env in self.seq.submit(src, self.now, ev):
            self.check_record(seq, env)
        for seq in self.intents:
            assert seq in self.decided, f"intent {seq} got no decision in its cascade"

    def check_record(self, seq: int, env) -> None:
        ev = env.ev
        p = self.p.risk
        if isinstance(ev, KillSwitch):
            if env.src in ("orders", "risk"):  # stamped by the sequencer with the name of the actor that raised
                assert ev.reason != "internal_error", f"an actor crashed: {ev.detail}"
            if env.src == "risk":
                self.kills += 1
                assert self.kills == 1, "kill switch emitted twice"
            self.killed = True
        elif isinstance(ev, TradingState):
            assert env.src == "risk"
            assert STATE_RANK[ev.state] >= self.rank, f"trading state went back to {ev.state}"
            self.rank = STATE_RANK[ev.state]
            if ev.state == "HALTED":
                self.killed = True
        elif isinstance(ev, CancelAll):
            self.cancel_alls += 1
            assert self.cancel_alls == 1 and self.killed, "CancelAll without a kill, or twice"
        elif isinstance(ev, (OrderIntent, CancelIntent)):
            assert env.src == "orders"
            self.intents[seq] = ev
        elif isinstance(ev, (RiskApproved, RiskReject)):
            assert env.src == "risk"
            intent = self.intents.get(ev.intent_seq)
            assert intent is not None and intent.client_id == ev.client_id
            assert ev.intent_seq not in self.decided, "two decisions for one intent"
            self.decided.add(ev.intent_seq)
            if isinstance(ev, RiskApproved) and isinstance(intent, OrderIntent):
                assert not self.killed, "a place approved after the kill switch"
                assert self.rank < 2
                self.check_approved_place(intent, p)

    def check_approved_place(self, o: OrderIntent, p: RiskParams) -> None:
        assert MARKET_OF.get(o.token_id) == o.condition_id, "not allowlisted"
        assert MIN_SIZE[o.token_id] <= o.size <= p.max_order_size, "size"
        assert o.price * o.size <= p.max_order_notional * MICRO, "notional"
        valid, bid, ask, tick = self.books[o.token_id]
        assert valid and 0 < bid < ask and tick > 0, "approved without a valid reference book"
        assert o.price % tick == 0 and tick <= o.price <= MICRO - tick, "off tick or out of range"
        if o.side == "BUY":
            assert 2 * o.price <= bid + ask + 2 * p.price_band and o.price < ask, "band or cross (buy)"
        else:
            assert 2 * o.price >= bid + ask - 2 * p.price_band and o.price > bid, "band or cross (sell)"

    # ------------------------------------------------------------------ market and clock
    @rule(token=st.sampled_from(TOKENS), bid=st.integers(1, 95), spread=st.sampled_from((-1, 0, 1, 2, 3, 4, 6, 8)),
          valid=st.sampled_from((True, True, True, True, False)), fine=st.sampled_from((False, False, False, True)),
          side_missing=st.sampled_from((None,) * 8 + ("bid", "ask")))
    def book(self, token: str, bid: int, spread: int, valid: bool, fine: bool, side_missing: str | None) -> None:
        tick = 1_000 if fine else 10_000
        b = bid * 10_000
        a = min(MICRO - tick, b + spread * tick)
        if side_missing == "bid":
            b = 0
        elif side_missing == "ask":
            a = 0
        self.books[token] = (valid, b, a, tick)
        self.submit("book", BookChanged(token_id=token, epoch=1, valid=valid, best_bid=b, bid_size=S, best_ask=a,
                                        ask_size=S, tick=tick), dt=1)

    @rule(dt=st.integers(0, 3 * SEC))
    def frame(self, dt: int) -> None:
        self.submit("feed", FeedFrame(conn=1, text="PONG"), dt=dt)

    @rule(state=st.sampled_from(("connected",) * 5 + ("disconnected",)))
    def feed_status(self, state: str) -> None:
        self.submit("feed", FeedStatus(conn=1, state=state), dt=1)

    @rule(dt=st.integers(0, 2 * SEC))
    def tick(self, dt: int) -> None:
        self.submit("clock", Tick(), dt=dt)

    @precondition(lambda self: self.k % 9 == 4)
    @rule(dt=st.integers(2 * SEC, 40 * SEC))
    def stall(self, dt: int) -> None:
        """Time jumps with no frame: the feed may go stale, books stay invalid, acks time out."""
        self.submit("clock", Tick(), dt=dt)

    # ------------------------------------------------------------------ the quoter
    @rule(market=st.sampled_from(("m1", "m2")), data=st.data(), n=st.integers(0, 4))
    def desired2(self, market: str, data: st.DataObject, n: int) -> None:
        """The quoter talks far more often than anything else happens."""
        self.desired(market, data, n)

    @rule(market=st.sampled_from(("m1", "m2")), data=st.data(), n=st.integers(0, 4))
    def desired(self, market: str, data: st.DataObject, n: int) -> None:
        """Quotes mostly near the book the gate sees (so that many pass), some anywhere, some on odd tokens."""
        quotes = []
        for _ in range(n):
            own = tuple(t for t in TOKENS if MARKET_OF[t] == market)
            token = data.draw(st.sampled_from((*own * 8, *TOKENS, "Z")))
            side = data.draw(st.sampled_from(("BUY", "BUY", "SELL")))
            _, bid, ask, tick = self.books.get(token, (False, 470_000, 530_000, 10_000))
            ref = (bid or 470_000) if side == "BUY" else (ask or 530_000)
            away = data.draw(st.integers(-2, 12)) * tick
            wild = data.draw(st.integers(0, 9)) == 0  # one quote in ten: any price, any size
            near = ref - away if side == "BUY" else ref + away
            price = data.draw(st.integers(0, MICRO)) if wild else max(0, min(MICRO, near))
            lo, hi = MIN_SIZE.get(token, S), self.p.risk.max_order_size
            size = data.draw(st.integers(0, 60 * S) if wild else st.integers(lo, hi))
            quotes.append(Quote(token_id=token, side=side, price=price, size=size))
        self.submit("quoter", DesiredQuotes(condition_id=market, quotes=tuple(quotes), fair=500_000), dt=1)

    # ------------------------------------------------------------------ the venue
    @precondition(lambda self: bool(self.gate.open_orders()))
    @rule(data=st.data(), outcome=st.sampled_from(("live", "live", "rejected", "unknown", "cancelled", "cancel_failed")))
    def reply(self, data: st.DataObject, outcome: str) -> None:
        cid, *_ = data.draw(st.sampled_from(self.gate.open_orders()))
        if outcome == "live":
            ev = ExchangeReply(client_id=cid, op="place", ok=True, order_id=cid, status="live")
        elif outcome == "rejected":
            ev = ExchangeReply(client_id=cid, op="place", ok=False, status="rejected", message="no")
        elif outcome == "unknown":
            ev = ExchangeReply(client_id=cid, op="place", ok=False, status="unknown")
        elif outcome == "cancelled":
            ev = ExchangeReply(client_id=cid, op="cancel", ok=True, status="cancelled")
        else:
            ev = ExchangeReply(client_id=cid, op="cancel", ok=False, message="not found")
        self.submit("exchange", ev, dt=1)

    @precondition(lambda self: any(row[4] > 0 for row in self.gate.open_orders()))
    @rule(data=st.data(), matched=st.booleans())
    def fill(self, data: st.DataObject, matched: bool) -> None:
        rows = [r for r in self.gate.open_orders() if r[4] > 0]
        cid, token, side, price, remaining, _, _ = data.draw(st.sampled_from(rows))
        size = data.draw(st.integers(1, remaining))
        self.trade_n += 1
        trade = f"t{self.trade_n}"
        key = (trade, cid)
        self.counted[key] = (token, size if side == "BUY" else -size)
        self.fill_sum[token] = self.fill_sum.get(token, 0) + self.counted[key][1]
        status = "MATCHED" if matched else "CONFIRMED"
        if matched:
            self.matched.append((trade, cid, token, side, price, size))
        self.submit("exchange", Fill(client_id=cid, token_id=token, side=side, price=price, size=size,
                                     trade_id=trade, status=status), dt=1)

    @precondition(lambda self: bool(self.matched))
    @rule(data=st.data(), fails=st.booleans())
    def settle(self, data: st.DataObject, fails: bool) -> None:
        """A MATCHED fill is later CONFIRMED, or FAILED (a ghost fill, reversed)."""
        i = data.draw(st.integers(0, len(self.matched) - 1))
        trade, cid, token, side, price, size = self.matched.pop(i)
        if fails:
            self.fill_sum[token] -= self.counted.pop((trade, cid))[1]
        self.submit("exchange", Fill(client_id=cid, token_id=token, side=side, price=price, size=size,
                                     trade_id=trade, status="FAILED" if fails else "CONFIRMED"), dt=1)

    @precondition(lambda self: self.killed)
    @rule()
    def cancel_all_reply(self) -> None:
        self.submit("exchange", ExchangeReply(client_id="", op="cancel_all", ok=True, status=""), dt=1)

    # ------------------------------------------------------------------ faults and operator
    @precondition(lambda self: self.k % 3 == 1)
    @rule(token=st.sampled_from(TOKENS), pnl=st.integers(-40, 10).map(lambda x: x * S // 4))
    def position_report(self, token: str, pnl: int) -> None:
        self.submit("portfolio", Position(token_id=token, position=self.gate.position(token), cash=0, realized=0,
                                          mark=0, mtm=pnl), dt=1)

    @precondition(lambda self: self.k % 61 == 45)
    @rule()
    def operator_stop(self) -> None:
        self.submit("operator", OperatorStop(reason="test"), dt=1)

    @precondition(lambda self: self.k % 67 == 50)
    @rule(reason=st.sampled_from(("heartbeat_failed", "geoblocked", "internal_error")))
    def external_kill(self, reason: str) -> None:
        self.killed = True
        self.submit("edge", KillSwitch(reason=reason, detail="test"), dt=1)

    @precondition(lambda self: self.k % 31 == 7)
    @rule()
    def reduce_only(self) -> None:
        self.submit("operator", ReduceOnly(), dt=1)

    # ------------------------------------------------------------------ invariants
    @invariant()
    def exposure_within_limits(self) -> None:
        p = self.p.risk
        for token in TOKENS:
            long, short = self.gate.worst_case(token)
            assert long <= p.max_position, f"{token}: worst-case long {long} > {p.max_position}"
            assert short >= -p.max_position, f"{token}: worst-case short {short}"
        assert self.gate.total_exposure() <= p.max_total_notional * MICRO
        assert len(self.gate.open_orders()) <= p.max_open_orders

    @invariant()
    def positions_are_the_sum_of_fills(self) -> None:
        for token in TOKENS:
            assert self.gate.position(token) == self.fill_sum.get(token, 0)

    @invariant()
    def halted_is_latched(self) -> None:
        if self.killed:
            assert self.gate.state == "HALTED" and self.om.halted
            assert self.cancel_alls == 1

    @invariant()
    def manager_and_gate_agree_on_open_orders(self) -> None:
        gate = {row[0]: row[4] for row in self.gate.open_orders()}
        for cid, _, _, _, remaining, state, _ in self.om.live_orders():
            if state == "rejected":
                continue
            if cid in gate:
                assert gate[cid] == remaining, f"{cid}: gate remaining {gate[cid]} != manager {remaining}"


Guardrails.TestCase.settings = settings(
    max_examples=80,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_guardrails = Guardrails.TestCase
