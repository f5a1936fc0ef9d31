"""The simulated exchange: post-only, queue position, fills (at level, through, crossing), complement, rewards."""
from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.portfolio import Portfolio
from actors.core.sim_exchange import EXPLAIN_WINDOW_NS, POST_ONLY_CROSS, SimExchange
from events.base import MICRO, Event
from events.codec import Envelope, encode
from events.control import GuardViolation
from events.market import BookChanged, FeedFrame, TradePrint
from events.orders import CancelAll, CancelIntent, ExchangeReply, Fill, OrderIntent, Position, RiskApproved, RiskReject
from events.paper import RestingScore, SimRested
from events.params import CoreParams, MarketParams, SimParams

M = MarketParams(condition_id="0xm", yes_token="Y", no_token="N", tick=10_000, min_order_size=5 * MICRO,
                 reward_min_size=20 * MICRO, reward_max_spread=30_000)
T0 = 1_700_000_000 * 10**9
SH = MICRO  # one share


def c(x: float) -> int:
    """Price in micro-dollars from a decimal literal."""
    return round(x * MICRO)


# --------------------------------------------------------------------------------------------- a fake Books view
class FakeTokenBook:
    """The Books view of docs/core-contracts.md over two dicts (price -> size)."""

    def __init__(self, token_id: str, tick: int = 10_000) -> None:
        self.token_id = token_id
        self.tick = tick
        self.epoch = 0
        self.valid = True
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}

    def best_bid(self) -> tuple[int, int] | None:
        return (max(self.bids), self.bids[max(self.bids)]) if self.bids else None

    def best_ask(self) -> tuple[int, int] | None:
        return (min(self.asks), self.asks[min(self.asks)]) if self.asks else None

    def mid(self) -> int | None:
        b, a = self.best_bid(), self.best_ask()
        return (b[0] + a[0]) // 2 if self.valid and b and a else None

    def microprice(self) -> int | None:
        return self.mid()

    def size_at(self, side: str, price: int) -> int:
        return (self.bids if side == "BUY" else self.asks).get(price, 0)

    def depth_within(self, side: str, distance: int) -> int:
        raise NotImplementedError

    def levels(self, side: str, n: int) -> list[tuple[int, int]]:
        book = self.bids if side == "BUY" else self.asks
        return sorted(book.items(), reverse=(side == "BUY"))[:n]

    def last_trade(self) -> None:
        return None


class FakeBooks:
    def __init__(self) -> None:
        self.books: dict[str, FakeTokenBook] = {}

    def get(self, token_id: str) -> FakeTokenBook | None:
        return self.books.get(token_id)

    def tokens(self) -> list[str]:
        return sorted(self.books)

    def set(self, token: str, bids: dict[int, int], asks: dict[int, int], *, valid: bool = True) -> None:
        b = self.books.setdefault(token, FakeTokenBook(token))
        b.bids = {p: s for p, s in bids.items() if s > 0}
        b.asks = {p: s for p, s in asks.items() if s > 0}
        b.valid = valid

    def set_pair(self, m: MarketParams, bids: dict[int, int], asks: dict[int, int], *, valid: bool = True) -> None:
        """YES book with these levels, NO book mirrored (as Polymarket's unified book shows it)."""
        self.set(m.yes_token, bids, asks, valid=valid)
        self.set(m.no_token, {MICRO - p: s for p, s in asks.items()}, {MICRO - p: s for p, s in bids.items()},
                 valid=valid)


STD_BIDS = {c(0.45): 100 * SH, c(0.46): 80 * SH, c(0.47): 60 * SH}
STD_ASKS = {c(0.51): 60 * SH, c(0.52): 80 * SH, c(0.53): 100 * SH}


class Sim:
    """Drives a SimExchange with envelopes as the sequencer would (seqs advance past emitted events)."""

    def __init__(self, params: CoreParams | None = None, books: FakeBooks | None = None) -> None:
        self.params = params or CoreParams(markets=(M,), fills="sim")
        self.books = books or FakeBooks()
        if books is None:
            self.books.set_pair(M, STD_BIDS, STD_ASKS)
        self.sim = SimExchange(self.params, self.books)
        self.seq = 0
        self.now = T0
        self.log: list[tuple[int, Envelope]] = []

    def send(self, ev: Event, src: str = "feed", cause: int = 0) -> list[Event]:
        self.seq += 1
        env = Envelope(ts_ns=self.now, src=src, cause=cause, ev=ev)
        self.log.append((self.seq, env))
        handled = self.seq
        out = self.sim.step(handled, env)
        for e in out:
            self.seq += 1
            self.log.append((self.seq, Envelope(ts_ns=self.now, src="exec", cause=handled, ev=e)))
        return list(out)

    def place(self, cid: str, token: str, side: str, price: int, size: int, post_only: bool = True) -> list[Event]:
        self.send(OrderIntent(client_id=cid, condition_id=M.condition_id, token_id=token, side=side,  # type: ignore[arg-type]
                              price=price, size=size, post_only=post_only), src="orders")
        return self.send(RiskApproved(intent_seq=self.seq, client_id=cid), src="risk")

    def cancel(self, cid: str) -> list[Event]:
        self.send(CancelIntent(client_id=cid), src="orders")
        return self.send(RiskApproved(intent_seq=self.seq, client_id=cid), src="risk")

    def book(self) -> list[Event]:
        """The book actor handled a frame: the sim re-reads the book."""
        return self.send(FeedFrame(conn=1, text="{}"))

    def trade(self, token: str, price: int, size: int, side: str, cause: int | None = None) -> list[Event]:
        return self.send(TradePrint(token_id=token, price=price, size=size, side=side),  # type: ignore[arg-type]
                         src="book", cause=self.seq + 1 if cause is None else cause)


def fills(out: list[Event]) -> list[Fill]:
    return [e for e in out if isinstance(e, Fill)]


def reply(out: list[Event]) -> ExchangeReply:
    (r,) = [e for e in out if isinstance(e, ExchangeReply)]
    return r


def give(sim: Sim, token: str, size: int) -> None:
    """Let the sim hold ``size`` of ``token`` (as if bought earlier), so sells pass the balance check."""
    sim.sim.held[token] = sim.sim.held.get(token, 0) + size


# --------------------------------------------------------------------------------------------- placement
def test_place_when_not_crossing_then_live_with_sim_order_id_and_queue() -> None:
    s = Sim()
    out = s.place("a", "Y", "BUY", c(0.47), 10 * SH)  # the intent is seq 1
    r = reply(out)
    assert (r.ok, r.op, r.status, r.order_id) == (True, "place", "live", "sim-1")
    (rested,) = [e for e in out if isinstance(e, SimRested)]
    assert rested.queue_ahead == 60 * SH
    assert "a" in s.sim.live


def test_place_when_buy_at_or_above_best_ask_then_post_only_reject_and_never_rests() -> None:
    s = Sim()
    for price in (c(0.51), c(0.52)):
        r = reply(s.place(f"b{price}", "Y", "BUY", price, 10 * SH))
        assert (r.ok, r.status, r.message) == (False, "rejected", POST_ONLY_CROSS)
    give(s, "Y", 100 * SH)
    r = reply(s.place("s", "Y", "SELL", c(0.47), 10 * SH))
    assert (r.ok, r.message) == (False, POST_ONLY_CROSS)
    assert not s.sim.live
    # and a trade at that price later fills nothing
    assert fills(s.trade("Y", c(0.51), 100 * SH, "SELL")) == []


def test_place_when_complement_book_crosses_then_rejected() -> None:
    books = FakeBooks()
    books.set("Y", {c(0.40): 10 * SH}, {})  # no YES ask at all
    books.set("N", {c(0.50): 10 * SH}, {})  # a NO bid at 0.50 mints against a YES bid at >= 0.50
    s = Sim(books=books)
    r = reply(s.place("y", "Y", "BUY", c(0.50), 10 * SH))
    assert (r.ok, r.message) == (False, POST_ONLY_CROSS)
    assert reply(s.place("y2", "Y", "BUY", c(0.49), 10 * SH)).ok
    # BUY NO at 0.60 crosses the YES bid at 0.40 (1 - 0.60)
    r = reply(s.place("n", "N", "BUY", c(0.60), 10 * SH))
    assert (r.ok, r.message) == (False, POST_ONLY_CROSS)
    # SELL NO at 0.45 would merge against a YES ask at <= 0.55 (none here) but hits the NO bid at 0.50
    give(s, "N", 50 * SH)
    assert reply(s.place("n2", "N", "SELL", c(0.45), 10 * SH)).message == POST_ONLY_CROSS
    books.set("Y", {c(0.40): 10 * SH}, {c(0.55): 10 * SH})
    books.set("N", {c(0.30): 10 * SH}, {})
    assert reply(s.place("n3", "N", "SELL", c(0.45), 10 * SH)).message == POST_ONLY_CROSS  # merge
    assert reply(s.place("n4", "N", "SELL", c(0.46), 10 * SH)).ok


def test_place_when_not_post_only_and_crossing_then_rejected_as_taker() -> None:
    s = Sim()
    r = reply(s.place("t", "Y", "BUY", c(0.51), 10 * SH, post_only=False))
    assert (r.ok, r.message) == (False, "sim: taker orders are not simulated")
    assert reply(s.place("t2", "Y", "BUY", c(0.50), 10 * SH, post_only=False)).ok


def test_place_when_invalid_then_rejected_like_an_exchange() -> None:
    s = Sim()
    assert "tick" in reply(s.place("a", "Y", "BUY", c(0.475), 10 * SH)).message
    assert "tick" in reply(s.place("a0", "Y", "BUY", 0, 10 * SH)).message
    assert "minimum" in reply(s.place("b", "Y", "BUY", c(0.47), 4 * SH)).message
    assert reply(s.place("c", "X", "BUY", c(0.47), 10 * SH)).message == "sim: unknown token"
    assert reply(s.place("d", "Y", "SELL", c(0.55), 10 * SH)).message == "sim: not enough balance"
    assert reply(s.place("e", "Y", "BUY", c(0.47), 10 * SH)).ok
    assert reply(s.place("e", "Y", "BUY", c(0.46), 10 * SH)).message == "sim: duplicate client_id"
    s.books.set_pair(M, STD_BIDS, STD_ASKS, valid=False)
    assert reply(s.place("f", "Y", "BUY", c(0.46), 10 * SH)).message == "sim: no valid book for the token"


def test_sell_when_holding_from_earlier_fills_then_allowed_up_to_holdings() -> None:
    s = Sim()
    s.place("b", "Y", "BUY", c(0.50), 10 * SH)
    assert sum(f.size for f in fills(s.trade("Y", c(0.50), 10 * SH, "SELL"))) == 10 * SH
    assert reply(s.place("s1", "Y", "SELL", c(0.55), 6 * SH)).ok
    assert reply(s.place("s2", "Y", "SELL", c(0.56), 5 * SH)).message == "sim: not enough balance"
    assert reply(s.place("s3", "Y", "SELL", c(0.56), 4 * SH)).ok is False  # 4 left, but below the minimum size


# --------------------------------------------------------------------------------------------- approvals only
def test_intent_without_approval_then_nothing_happens() -> None:
    s = Sim()
    out = s.send(OrderIntent(client_id="a", condition_id="0xm", token_id="Y", side="BUY", price=c(0.47), size=10 * SH),
                 src="orders")
    assert out == [] and not s.sim.live
    intent_seq = s.seq
    s.send(RiskReject(intent_seq=intent_seq, client_id="a", code="x"), src="risk")
    out = s.send(RiskApproved(intent_seq=intent_seq, client_id="a"), src="risk")
    assert isinstance(out[0], GuardViolation) and not s.sim.live


def test_approval_when_not_from_risk_or_mismatched_then_guard_violation() -> None:
    s = Sim()
    s.send(OrderIntent(client_id="a", condition_id="0xm", token_id="Y", side="BUY", price=c(0.47), size=10 * SH),
           src="orders")
    intent_seq = s.seq
    assert isinstance(s.send(RiskApproved(intent_seq=intent_seq, client_id="a"), src="orders")[0], GuardViolation)
    s.send(OrderIntent(client_id="b", condition_id="0xm", token_id="Y", side="BUY", price=c(0.47), size=10 * SH),
           src="orders")
    assert isinstance(s.send(RiskApproved(intent_seq=s.seq, client_id="zz"), src="risk")[0], GuardViolation)
    assert isinstance(s.send(RiskApproved(intent_seq=999, client_id="a"), src="risk")[0], GuardViolation)
    assert not s.sim.live


# --------------------------------------------------------------------------------------------- queue and fills
def test_queue_ahead_when_trade_smaller_than_queue_then_no_fill_then_partial() -> None:
    s = Sim()
    s.place("a", "Y", "BUY", c(0.47), 10 * SH)  # 60 shares ahead
    assert fills(s.trade("Y", c(0.47), 50 * SH, "SELL")) == []
    (f,) = fills(s.trade("Y", c(0.47), 14 * SH, "SELL"))  # 10 more ahead, then 4 for us
    assert (f.client_id, f.token_id, f.side, f.price, f.size, f.status) == ("a", "Y", "BUY", c(0.47), 4 * SH,
                                                                            "CONFIRMED")
    assert f.trade_id == f"sim-{s.seq - 1}-0"
    (f,) = fills(s.trade("Y", c(0.47), 100 * SH, "SELL"))
    assert f.size == 6 * SH and "a" not in s.sim.live  # done
    assert fills(s.trade("Y", c(0.47), 100 * SH, "SELL")) == []


def test_queue_ahead_off_then_first_trade_at_our_price_fills() -> None:
    s = Sim(CoreParams(markets=(M,), fills="sim", sim=SimParams(queue_ahead=False)))
    out = s.place("a", "Y", "BUY", c(0.47), 10 * SH)
    assert [e.queue_ahead for e in out if isinstance(e, SimRested)] == [0]
    assert fills(s.trade("Y", c(0.47), 3 * SH, "SELL"))[0].size == 3 * SH


def test_trade_on_wrong_side_or_away_from_our_price_then_no_fill() -> None:
    s = Sim()
    s.place("a", "Y", "BUY", c(0.47), 10 * SH)
    assert fills(s.trade("Y", c(0.47), 500 * SH, "BUY")) == []  # a taker buy does not hit bids
    assert fills(s.trade("Y", c(0.48), 500 * SH, "SELL")) == []  # sold above our bid: not to us
    assert s.sim.live["a"].ahead == 60 * SH


def test_level_shrinking_then_queue_clamped_and_the_trade_not_counted_twice() -> None:
    s = Sim()
    s.place("a", "Y", "BUY", c(0.47), 10 * SH)  # 60 ahead
    # Polymarket order: the book shows the level eaten (60 -> 20) before the print of that trade (40)
    s.books.set_pair(M, {**STD_BIDS, c(0.47): 20 * SH}, STD_ASKS)
    assert fills(s.book()) == []
    assert s.sim.live["a"].ahead == 20 * SH
    assert fills(s.trade("Y", c(0.47), 40 * SH, "SELL")) == []  # explained by the clamp: still 20 ahead
    assert s.sim.live["a"].ahead == 20 * SH
    (f,) = fills(s.trade("Y", c(0.47), 25 * SH, "SELL"))
    assert f.size == 5 * SH


def test_clamp_by_cancels_then_credit_expires_and_later_trades_count() -> None:
    s = Sim()
    s.place("a", "Y", "BUY", c(0.47), 10 * SH)
    s.books.set_pair(M, {**STD_BIDS, c(0.47): 5 * SH}, STD_ASKS)  # 55 cancelled (ahead or behind: unknown)
    s.book()
    assert s.sim.live["a"].ahead == 5 * SH
    s.now += EXPLAIN_WINDOW_NS + 1
    (f,) = fills(s.trade("Y", c(0.47), 8 * SH, "SELL"))
    assert f.size == 3 * SH


def test_level_growing_then_queue_unchanged() -> None:
    s = Sim()
    s.place("a", "Y", "BUY", c(0.47), 10 * SH)
    s.books.set_pair(M, {**STD_BIDS, c(0.47): 500 * SH}, STD_ASKS)  # joined behind us
    s.book()
    assert s.sim.live["a"].ahead == 60 * SH


def test_trade_through_our_price_then_fill_at_our_price_up_to_print_size() -> None:
    s = Sim()
    s.place("a", "Y", "BUY", c(0.47), 10 * SH)
    (f,) = fills(s.trade("Y", c(0.46), 4 * SH, "SELL"))  # sold below our bid: the sweep took us first
    assert (f.price, f.size) == (c(0.47), 4 * SH)
    (f,) = fills(s.trade("Y", c(0.45), 50 * SH, "SELL"))
    assert (f.price, f.size) == (c(0.47), 6 * SH)
    assert not s.sim.live


def test_trade_through_our_ask_then_fill_at_our_price() -> None:
    s = Sim()
    give(s, "Y", 10 * SH)
    s.place("a", "Y", "SELL", c(0.51), 10 * SH)
    (f,) = fills(s.trade("Y", c(0.52), 30 * SH, "BUY"))
    assert (f.side, f.price, f.size) == ("SELL", c(0.51), 10 * SH)


def test_book_crossing_our_bid_then_filled_at_our_price_by_the_crossing_depth_once() -> None:
    s = Sim()
    s.place("a", "Y", "BUY", c(0.50), 10 * SH)  # inside the spread: nothing ahead
    s.books.set_pair(M, STD_BIDS, {**STD_ASKS, c(0.49): 4 * SH})  # an ask at 0.49 <= our bid
    (f,) = fills(s.book())
    assert (f.price, f.size) == (c(0.50), 4 * SH)
    assert fills(s.book()) == []  # the same resting liquidity never fills us twice
    s.books.set_pair(M, STD_BIDS, {**STD_ASKS, c(0.49): 4 * SH, c(0.50): 3 * SH})
    (f,) = fills(s.book())
    assert f.size == 3 * SH
    s.books.set_pair(M, STD_BIDS, STD_ASKS)  # crossing liquidity gone
    assert fills(s.book()) == []
    s.books.set_pair(M, STD_BIDS, {**STD_ASKS, c(0.48): 50 * SH})  # new crossing liquidity
    (f,) = fills(s.book())
    assert f.size == 3 * SH and not s.sim.live


def test_book_invalid_then_no_fills_and_nothing_forgotten() -> None:
    s = Sim()
    s.place("a", "Y", "BUY", c(0.50), 10 * SH)
    s.books.set_pair(M, STD_BIDS, {**STD_ASKS, c(0.49): 4 * SH})
    assert fills(s.book())[0].size == 4 * SH
    s.books.set_pair(M, STD_BIDS, {**STD_ASKS, c(0.49): 4 * SH}, valid=False)
    assert fills(s.book()) == []
    s.books.set_pair(M, STD_BIDS, {**STD_ASKS, c(0.49): 4 * SH})  # resync shows the same liquidity
    assert fills(s.book()) == []


def test_complement_print_on_no_token_fills_yes_order() -> None:
    s = Sim()
    s.place("a", "Y", "BUY", c(0.47), 10 * SH)  # 60 ahead
    # a taker BUY of NO at 0.53 lifts NO asks at 0.53 = YES bids at 0.47: the YES-terms taker sold at 0.47
    assert fills(s.trade("N", c(0.53), 60 * SH, "BUY")) == []
    (f,) = fills(s.trade("N", c(0.53), 5 * SH, "BUY"))
    assert (f.token_id, f.side, f.price, f.size) == ("Y", "BUY", c(0.47), 5 * SH)
    assert fills(s.trade("N", c(0.53), 5 * SH, "SELL")) == []  # the other side


def test_complement_order_buy_no_filled_by_yes_print_and_by_yes_book_cross() -> None:
    s = Sim()
    s.place("n", "N", "BUY", c(0.50), 10 * SH)  # = a YES ask at 0.50, inside the spread
    (f,) = fills(s.trade("Y", c(0.50), 3 * SH, "BUY"))  # a YES taker buy at 0.50 mints against our NO bid
    assert (f.token_id, f.side, f.price, f.size) == ("N", "BUY", c(0.50), 3 * SH)
    (f,) = fills(s.trade("Y", c(0.52), 2 * SH, "BUY"))  # through
    assert (f.price, f.size) == (c(0.50), 2 * SH)
    s.books.set_pair(M, {**STD_BIDS, c(0.51): 2 * SH}, STD_ASKS)  # YES bid 0.51 >= our YES-terms ask 0.50
    (f,) = fills(s.book())
    assert (f.token_id, f.price, f.size) == ("N", c(0.50), 2 * SH)


def test_one_trade_printed_on_both_tokens_in_one_frame_fills_once() -> None:
    s = Sim()
    s.place("a", "Y", "BUY", c(0.50), 10 * SH)
    frame = s.seq + 1
    s.send(FeedFrame(conn=1, text="{}"))
    a = fills(s.trade("Y", c(0.50), 4 * SH, "SELL", cause=frame))
    b = fills(s.trade("N", c(0.50), 4 * SH, "BUY", cause=frame))  # its mirror
    assert [f.size for f in a + b] == [4 * SH]
    c2 = fills(s.trade("Y", c(0.50), 4 * SH, "SELL", cause=frame))  # a second trade on the same token counts
    assert [f.size for f in c2] == [4 * SH]


def test_one_print_never_fills_more_than_its_size_across_our_orders() -> None:
    s = Sim()
    s.place("hi", "Y", "BUY", c(0.50), 10 * SH)
    s.place("lo", "Y", "BUY", c(0.49), 10 * SH)
    s.place("lv", "Y", "BUY", c(0.47), 10 * SH)  # 60 ahead
    out = fills(s.trade("Y", c(0.47), 15 * SH, "SELL"))
    assert [(f.client_id, f.size) for f in out] == [("hi", 10 * SH), ("lo", 5 * SH)]
    assert s.sim.live["lv"].ahead == 45 * SH


def test_cancel_replies() -> None:
    s = Sim()
    s.place("a", "Y", "BUY", c(0.47), 10 * SH)
    r = reply(s.cancel("a"))
    assert (r.op, r.ok, r.status, r.order_id) == ("cancel", True, "cancelled", "sim-1")
    r = reply(s.cancel("a"))
    assert (r.ok, r.message) == (False, "sim: order already filled or cancelled")
    assert reply(s.cancel("zz")).message == "sim: unknown order"
    s.place("b", "Y", "BUY", c(0.50), 5 * SH)
    s.trade("Y", c(0.50), 5 * SH, "SELL")
    assert reply(s.cancel("b")).ok is False
    assert fills(s.trade("Y", c(0.46), 100 * SH, "SELL")) == []  # cancelled orders never fill


def test_cancel_all_then_one_reply_per_order_sorted_then_cancel_all() -> None:
    s = Sim()
    for cid, p in (("o9", 0.45), ("o10", 0.46), ("o2", 0.47)):
        s.place(cid, "Y", "BUY", c(p), 10 * SH)
    out = s.send(CancelAll(reason="operator_stop"), src="risk")
    replies = [e for e in out if isinstance(e, ExchangeReply)]
    assert [(r.client_id, r.op, r.ok, r.status) for r in replies] == [
        ("o10", "cancel", True, "cancelled"), ("o2", "cancel", True, "cancelled"), ("o9", "cancel", True, "cancelled"),
        ("", "cancel_all", True, ""),
    ]
    assert not s.sim.live
    assert isinstance(s.send(CancelAll(reason="x"), src="orders")[0], GuardViolation)


# --------------------------------------------------------------------------------------------- rewards
def test_resting_score_emitted_on_change_only() -> None:
    s = Sim()  # YES mid 0.49, v = 0.03, min size 20
    out = s.place("a", "Y", "BUY", c(0.47), 40 * SH)  # s = 0.02: S = (0.01/0.03)^2 * 40 = 4.444444 shares
    (sc,) = [e for e in out if isinstance(e, RestingScore)]
    assert (sc.q_bid, sc.q_ask, sc.two_sided) == (40 * SH // 9, 0, False)
    assert sc.score == (40 * SH // 9) // 3  # one-sided within [0.10, 0.90]: a third
    assert [e for e in s.book() if isinstance(e, RestingScore)] == []  # unchanged book: nothing
    out = s.place("n", "N", "BUY", c(0.50), 20 * SH)  # NO mid 0.51, s = 0.01: S = (2/3)^2 * 20
    (sc,) = [e for e in out if isinstance(e, RestingScore)]
    assert sc.q_ask == 4 * 20 * SH // 9 and sc.two_sided
    assert sc.score == min(sc.q_bid, sc.q_ask)
    out = s.place("small", "Y", "BUY", c(0.48), 10 * SH)  # below the rewards minimum size: scores 0
    assert [e for e in out if isinstance(e, RestingScore)] == []
    s.cancel("a")
    s.cancel("n")
    out = s.cancel("small")
    assert out == [ExchangeReply(client_id="small", op="cancel", ok=True, order_id=out[0].order_id,  # type: ignore[union-attr]
                                 status="cancelled")]
    assert s.sim._scores[M.condition_id][0] == 0


def test_resting_score_when_market_pays_no_rewards_then_none() -> None:
    m = msgspec.structs.replace(M, reward_max_spread=0)
    books = FakeBooks()
    books.set_pair(m, STD_BIDS, STD_ASKS)
    s = Sim(CoreParams(markets=(m,), fills="sim"), books)
    assert [e for e in s.place("a", "Y", "BUY", c(0.48), 50 * SH) if isinstance(e, RestingScore)] == []


# --------------------------------------------------------------------------------------------- properties
PRICES = [c(0.44 + 0.01 * i) for i in range(13)]  # 0.44 .. 0.56

op_place = st.tuples(st.just("place"), st.sampled_from(["Y", "N"]), st.sampled_from(["BUY", "SELL"]),
                     st.sampled_from(PRICES), st.integers(5, 40), st.booleans())
op_cancel = st.tuples(st.just("cancel"), st.integers(0, 30))
op_trade = st.tuples(st.just("trade"), st.sampled_from(["Y", "N"]), st.sampled_from(PRICES), st.integers(1, 80),
                     st.sampled_from(["BUY", "SELL"]), st.booleans())
op_book = st.tuples(st.just("book"), st.integers(0, 12), st.integers(1, 4), st.lists(st.integers(0, 90), min_size=6,
                                                                                     max_size=6), st.sampled_from([True, True, True, False]))
op_hit = st.tuples(st.just("hit"), st.integers(0, 6), st.integers(1, 80), st.integers(0, 2), st.booleans(),
                   st.booleans())
op_wait = st.tuples(st.just("wait"), st.integers(0, 3 * EXPLAIN_WINDOW_NS))
ops = st.lists(st.one_of(op_place, op_place, op_cancel, op_trade, op_hit, op_hit, op_hit, op_book, op_wait),
               min_size=8, max_size=60)


def run_path(path: list[tuple], queue_ahead: bool = True) -> tuple[Sim, list[tuple[int, bytes]], dict]:
    """Run a random market path; returns the sim, its encoded log, and the intents by client id."""
    s = Sim(CoreParams(markets=(M,), fills="sim", sim=SimParams(queue_ahead=queue_ahead)))
    intents: dict[str, tuple[str, str, int, int]] = {}
    n = 0
    for op in path:
        kind = op[0]
        if kind == "place":
            _, token, side, price, size, _ = op
            cid = f"o{n}"
            n += 1
            intents[cid] = (token, side, price, size * SH)
            if side == "SELL":
                give(s, token, size * SH)  # as if held from before: lets sells rest too
            s.place(cid, token, side, price, size * SH)
        elif kind == "cancel":
            s.cancel(f"o{op[1]}")
        elif kind == "trade":
            _, token, price, size, side, same_frame = op
            s.trade(token, price, size * SH, side, cause=s.seq if same_frame else None)
        elif kind == "hit":  # a print aimed at one of our orders: at its price or through it, on either token
            _, idx, size, through, via_no, same_frame = op
            if f"o{idx}" not in intents:
                continue
            token, side, price, _ = intents[f"o{idx}"]
            yes_side, yes_price = (side, price) if token == "Y" else (
                "SELL" if side == "BUY" else "BUY", MICRO - price)
            taker = "SELL" if yes_side == "BUY" else "BUY"
            yes_price += -through * 10_000 if yes_side == "BUY" else through * 10_000
            if not 0 < yes_price < MICRO:
                continue
            if via_no:
                s.trade("N", MICRO - yes_price, size * SH, "SELL" if taker == "BUY" else "BUY",
                        cause=s.seq if same_frame else None)
            else:
                s.trade("Y", yes_price, size * SH, taker, cause=s.seq if same_frame else None)
        elif kind == "book":
            _, lo, width, sizes, valid = op
            bid, ask = PRICES[lo], PRICES[lo] + width * 10_000
            bids = {bid - i * 10_000: sizes[i] * SH for i in range(3)}
            asks = {ask + i * 10_000: sizes[3 + i] * SH for i in range(3)}
            s.books.set_pair(M, bids, asks, valid=valid)
            s.book()
        else:
            s.now += op[1]
    log = [(seq, encode(env)) for seq, env in s.log]
    return s, log, intents


@settings(max_examples=300, deadline=None)
@given(ops, st.booleans())
def test_property_fills_bounded_at_limit_price_and_positions_are_sums(path: list[tuple], queue_ahead: bool) -> None:
    s, _, intents = run_path(path, queue_ahead)
    filled: dict[str, int] = {}
    signed: dict[str, int] = {}
    portfolio = Portfolio(s.params)
    positions: dict[str, int] = {}
    fills_by_cause: dict[int, int] = {}
    prints: dict[int, int] = {}
    once: set[tuple[int, str]] = set()
    for seq, env in s.log:
        ev = env.ev
        if isinstance(ev, TradePrint):
            prints[seq] = ev.size
        if not isinstance(ev, Fill):
            continue
        token, side, price, size = intents[ev.client_id]
        assert (ev.token_id, ev.side) == (token, side)
        assert ev.price == price  # maker: always at our limit, never worse
        assert ev.size > 0
        filled[ev.client_id] = filled.get(ev.client_id, 0) + ev.size
        assert filled[ev.client_id] <= size
        signed[token] = signed.get(token, 0) + (ev.size if side == "BUY" else -ev.size)
        fills_by_cause[env.cause] = fills_by_cause.get(env.cause, 0) + ev.size
        key = (env.cause, ev.client_id)
        assert key not in once, "one event filled the same order twice"
        once.add(key)
        for out in portfolio.step(seq, env):
            assert isinstance(out, Position)
            positions[out.token_id] = out.position
    for cause, total in fills_by_cause.items():
        if cause in prints:
            assert total <= prints[cause]  # one print never fills more than its size in total
    assert positions == {t: v for t, v in signed.items() if t in positions}
    assert all(signed[t] == 0 for t in signed if t not in positions)


@settings(max_examples=100, deadline=None)
@given(ops)
def test_property_same_inputs_twice_then_same_outputs(path: list[tuple]) -> None:
    _, log1, _ = run_path(path)
    _, log2, _ = run_path(path)
    assert log1 == log2


def test_one_event_fills_an_order_at_most_once() -> None:
    s = Sim()
    s.place("a", "Y", "BUY", c(0.50), 10 * SH)
    s.books.set_pair(M, {c(0.48): 5 * SH}, {c(0.50): 2 * SH, c(0.49): 2 * SH})  # crossing in both views
    out = fills(s.send(BookChanged(token_id="Y", epoch=0, valid=True, best_bid=c(0.48), bid_size=5 * SH,
                                   best_ask=c(0.49), ask_size=2 * SH, tick=10_000), src="book"))
    assert [f.size for f in out] == [4 * SH]  # max of the two mirrored views, never their sum
