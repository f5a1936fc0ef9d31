"""The quoter: prices, skew and taper directions, complement legs, rewards, gating, and book-safety properties."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.book import BookActor
from actors.core.quoter import QuoterActor, taper_sizes
from actors.core.rewards import market_score, order_score
from actors.sequencer import Sequencer
from events.base import MICRO
from events.control import KillSwitch, Tick
from events.market import FeedFrame, FeedStatus
from events.orders import DesiredQuotes, Position, Quote, RewardEstimate
from events.params import CoreParams, MarketParams, QuoterParams, RiskParams
from replay.harness import MemorySink

YES, NO, CID = "11", "22", "0x" + "ef" * 32
PLAIN = MarketParams(condition_id=CID, yes_token=YES, no_token=NO, min_order_size=1 * MICRO)
REWARDED = MarketParams(condition_id=CID, yes_token=YES, no_token=NO, min_order_size=5 * MICRO,
                        reward_min_size=20 * MICRO, reward_max_spread=30_000)
SEC = 10**9


def _book(token: str, bids, asks, tick: str = "0.01") -> dict:
    return {"event_type": "book", "market": CID, "asset_id": token, "timestamp": "1", "hash": "h", "tick_size": tick,
            "bids": [{"price": p, "size": s} for p, s in bids], "asks": [{"price": p, "size": s} for p, s in asks]}


def _mirror(levels, decimals: int = 2):
    return [(f"{1 - float(p):.{decimals}f}", s) for p, s in levels]


def pair(bids, asks, tick: str = "0.01") -> str:
    dec = len(tick.split(".")[1])
    return json.dumps([_book(YES, bids, asks, tick), _book(NO, _mirror(asks, dec), _mirror(bids, dec), tick)])


def pc(*entries) -> str:
    return json.dumps({"event_type": "price_change", "market": CID, "timestamp": "2", "price_changes": [
        {"asset_id": t, "side": side, "price": p, "size": s} for t, side, p, s in entries]})


class Core:
    """Book + quoter through the real sequencer."""

    def __init__(self, market: MarketParams = PLAIN, **quoter: object) -> None:
        self.params = CoreParams(markets=(market,), quoter=QuoterParams(**quoter))  # type: ignore[arg-type]
        self.book = BookActor(self.params)
        self.quoter = QuoterActor(self.params, self.book.books)
        self.sink = MemorySink()
        self.seq = Sequencer(self.sink, [self.book, self.quoter])
        self.now = 1_000 * SEC
        self.emitted: list = []

    def send(self, ev, dt: int = 1_000_000, src: str = "feed") -> list:
        self.now += dt
        out = [env.ev for _, env in self.seq.submit(src, self.now, ev)[1:]]
        self.emitted += out
        return out

    def frame(self, text: str, conn: int = 1, dt: int = 1_000_000) -> list:
        return self.send(FeedFrame(conn=conn, text=text), dt)

    def position(self, yes: int, no: int = 0) -> list:
        out = self.send(Position(token_id=YES, position=yes * MICRO, cash=0, realized=0, mark=0, mtm=0), src="portfolio")
        return out + self.send(Position(token_id=NO, position=no * MICRO, cash=0, realized=0, mark=0, mtm=0),
                               src="portfolio")

    @property
    def quotes(self) -> tuple[Quote, ...]:
        dq = [e for e in self.emitted if isinstance(e, DesiredQuotes)]
        return dq[-1].quotes if dq else ()

    def last(self, kind):
        found = [e for e in self.emitted if isinstance(e, kind)]
        return found[-1] if found else None


def q(token: str, side: str, price: float, size: float) -> Quote:
    return Quote(token_id=token, side=side, price=round(price * MICRO), size=round(size * MICRO))  # type: ignore[arg-type]


BIDS = [("0.45", "100"), ("0.46", "80"), ("0.47", "60")]
ASKS = [("0.53", "100"), ("0.52", "80"), ("0.51", "60")]


def ready(market: MarketParams = PLAIN, bids=BIDS, asks=ASKS, **quoter: object) -> Core:
    c = Core(market, **quoter)
    c.send(FeedStatus(conn=1, state="connected"))
    c.frame(pair(bids, asks))
    return c


# ---------------------------------------------------------------------------------------------- prices


def test_two_sided_quote_around_microprice_as_buy_yes_and_buy_no() -> None:
    c = ready()
    dq = c.last(DesiredQuotes)
    assert dq.fair == 490_000 and dq.reason == "quoting"
    assert c.quotes == (q(YES, "BUY", 0.48, 10), q(NO, "BUY", 0.50, 10))


def test_fair_uses_microprice_or_mid() -> None:
    bids = [("0.47", "90")]
    asks = [("0.51", "10")]
    assert ready(bids=bids, asks=asks).last(DesiredQuotes).fair == (470_000 * 10 + 510_000 * 90) // 100
    assert ready(bids=bids, asks=asks, use_microprice=False).last(DesiredQuotes).fair == 490_000


def test_skew_moves_both_quotes_against_the_position() -> None:
    flat = ready(levels=1, skew_per_share=1_000)
    long_ = ready(levels=1, skew_per_share=1_000)
    long_.position(yes=10)                  # +10 YES: skew 0.01 down
    short = ready(levels=1, skew_per_share=1_000)
    short.position(yes=0, no=10)            # net -10: skew 0.01 up
    px = lambda c: (c.quotes[0].price, MICRO - c.quotes[1].price if c.quotes[1].token_id == NO else c.quotes[1].price)  # noqa: E731
    assert px(flat) == (480_000, 500_000)
    assert px(long_) == (470_000, 490_000)
    assert px(short) == (490_000, 510_000)
    assert [x.side for x in long_.quotes] == ["BUY", "SELL"]  # holding 10 YES: the ask sells them


def test_taper_shrinks_only_the_side_that_grows_the_position() -> None:
    assert taper_sizes(10 * MICRO, 0, 100 * MICRO, 1, 0) == [10 * MICRO]
    assert taper_sizes(10 * MICRO, 50 * MICRO, 100 * MICRO, 1, 0) == [5 * MICRO]
    assert taper_sizes(10 * MICRO, 95 * MICRO, 100 * MICRO, 1, 0) == [500_000]
    assert taper_sizes(10 * MICRO, 100 * MICRO, 100 * MICRO, 1, 0) == []
    assert taper_sizes(10 * MICRO, -50 * MICRO, 100 * MICRO, 1, 0) == [10 * MICRO]
    assert taper_sizes(10 * MICRO, 90 * MICRO, 100 * MICRO, 3, 0) == [1 * MICRO, 1 * MICRO, 1 * MICRO]
    assert taper_sizes(40 * MICRO, 0, 100 * MICRO, 3, 0) == [40 * MICRO, 40 * MICRO, 20 * MICRO]  # room caps the sum
    c = ready(skew_per_share=0)
    c.position(yes=50)
    bid, ask = c.quotes
    assert (bid.side, bid.size) == ("BUY", 5 * MICRO) and (ask.side, ask.token_id, ask.size) == ("SELL", YES, 10 * MICRO)
    c.position(yes=100)
    assert [x.side for x in c.quotes] == ["SELL"]
    c.position(yes=0, no=100)
    assert [(x.token_id, x.side) for x in c.quotes] == [(YES, "BUY")]


def test_ask_leg_sells_yes_only_while_holding_enough() -> None:
    c = ready(levels=2, skew_per_share=0)
    c.position(yes=15)
    assert [(x.token_id, x.side, x.price) for x in c.quotes[2:]] == [(YES, "SELL", 500_000), (NO, "BUY", 490_000)]


def test_no_leg_is_aligned_to_the_no_tick_and_below_the_no_best_ask() -> None:
    c = Core(PLAIN, spread=20_000)
    c.send(FeedStatus(conn=1, state="connected"))
    c.frame(json.dumps([_book(YES, [("0.470", "60")], [("0.510", "60")], "0.001"),
                        _book(NO, [("0.49", "60")], [("0.50", "60")], "0.01")]))
    bid, no_leg = c.quotes
    assert bid.price % 1_000 == 0 and no_leg.price % 10_000 == 0
    assert no_leg.price < 500_000


def test_post_only_steps_back_from_a_tight_book() -> None:
    c = ready(bids=[("0.49", "10")], asks=[("0.50", "10")], spread=0, skew_per_share=10_000)
    c.position(yes=0, no=5)  # skew +0.05 would push the bid through the ask
    bid = next(x for x in c.quotes if x.token_id == YES and x.side == "BUY")
    assert bid.price == 490_000
    c.position(yes=5)        # skew -0.05: the ask would go through the bid
    ask = next(x for x in c.quotes if x.side == "SELL" or x.token_id == NO)
    assert (MICRO - ask.price if ask.token_id == NO else ask.price) == 500_000


def test_prices_stay_inside_tick_and_one_minus_tick() -> None:
    c = ready(bids=[("0.01", "10")], asks=[("0.03", "10")], spread=40_000)
    assert all(10_000 <= x.price <= 990_000 for x in c.quotes)
    assert [(x.token_id, x.side) for x in c.quotes] == [(NO, "BUY")]  # the bid would be at 0.00: dropped
    c = ready(bids=[("0.97", "10")], asks=[("0.99", "10")], spread=40_000)
    assert [(x.token_id, x.side) for x in c.quotes] == [(YES, "BUY")]  # the ask would be at 1.00: dropped


def test_levels_step_out_by_spacing() -> None:
    c = ready(levels=3, level_spacing=10_000, size=2 * MICRO)
    assert [x.price for x in c.quotes] == [480_000, 470_000, 460_000, 500_000, 490_000, 480_000]
    c = ready(levels=3, level_spacing=1_000, size=2 * MICRO)  # spacing below a tick: still one tick apart
    assert [x.price for x in c.quotes[:3]] == [480_000, 470_000, 460_000]


# ---------------------------------------------------------------------------------------------- rewards


def test_order_score_hand_computed() -> None:
    v = 30_000
    assert order_score(10_000, 20 * MICRO, v, 20 * MICRO) == 8_888_888      # (2/3)^2 * 20 = 8.888...
    assert order_score(0, 20 * MICRO, v, 20 * MICRO) == 20 * MICRO
    assert order_score(15_000, 20 * MICRO, v, 20 * MICRO) == 5 * MICRO       # (1/2)^2 * 20
    assert order_score(30_000, 20 * MICRO, v, 20 * MICRO) == 0               # s >= v
    assert order_score(10_000, 19 * MICRO, v, 20 * MICRO) == 0               # below min size
    assert order_score(10_000, 20 * MICRO, 0, 0) == 0


def test_market_score_single_sided_rule() -> None:
    v, mn = 30_000, 20 * MICRO
    bid = [(480_000, 20 * MICRO)]   # s = 0.01 from 0.49
    ask = [(505_000, 20 * MICRO)]   # s = 0.015
    assert market_score(490_000, bid, ask, v, mn) == (5 * MICRO, True)               # min(8.88, 5)
    assert market_score(490_000, bid, [], v, mn) == (8_888_888 // 3, False)          # single-sided: a third
    assert market_score(950_000, [(940_000, 20 * MICRO)], [], v, mn) == (0, False)   # outside [0.1, 0.9]: needs both
    assert market_score(950_000, [(940_000, 20 * MICRO)], [(960_000, 20 * MICRO)], v, mn) == (8_888_888, True)
    assert market_score(100_000, [(90_000, 20 * MICRO)], [], v, mn)[0] == 8_888_888 // 3  # 0.10 counts as inside


def test_rewards_raise_size_pull_quotes_inside_max_spread_and_report_the_score() -> None:
    c = ready(REWARDED, spread=100_000)
    assert c.quotes == (q(YES, "BUY", 0.47, 20), q(NO, "BUY", 0.49, 20))  # mid 0.49: within 0.03 of it
    rw = c.last(RewardEstimate)
    assert rw.two_sided and rw.score == 2_222_222                           # (1/3)^2 * 20 per side
    c.position(yes=95)                                                     # bid tapered below reward min size
    assert c.last(RewardEstimate).two_sided is False


def test_no_reward_estimate_for_markets_without_rewards() -> None:
    assert ready().last(RewardEstimate) is None


# ---------------------------------------------------------------------------------------------- gating


def test_no_quote_when_a_book_is_invalid_or_one_sided() -> None:
    c = ready()
    c.frame(json.dumps({"event_type": "tick_size_change", "asset_id": NO, "market": CID, "new_tick_size": "0.001"}))
    assert c.quotes == () and c.last(DesiredQuotes).reason == "book_invalid"
    c.frame(pair(BIDS, ASKS))
    assert c.quotes
    c.frame(pc((YES, "SELL", "0.51", "0"), (YES, "SELL", "0.52", "0"), (YES, "SELL", "0.53", "0")))
    assert c.quotes == () and c.last(DesiredQuotes).reason == "one_sided_book"


def test_no_quote_while_disconnected_and_back_after_reconnect_snapshot() -> None:
    c = ready()
    c.send(FeedStatus(conn=1, state="disconnected"))
    assert c.quotes == ()
    c.send(FeedStatus(conn=2, state="connected"))
    assert c.quotes == ()
    c.frame(pair(BIDS, ASKS), conn=2)
    assert c.quotes


def test_no_quote_when_the_feed_is_silent_too_long() -> None:
    c = ready(stale_after_ns=5 * SEC)
    c.send(Tick(), dt=4 * SEC, src="clock")
    assert c.quotes
    c.send(Tick(), dt=2 * SEC, src="clock")
    assert c.quotes == () and c.last(DesiredQuotes).reason == "feed_stale"
    c.frame("PONG")
    c.send(Tick(), dt=1, src="clock")
    assert c.quotes


def test_kill_switch_latches_empty_quotes() -> None:
    c = ready()
    c.send(KillSwitch(reason="operator_stop"), src="risk")
    assert c.quotes == () and c.last(DesiredQuotes).reason == "kill_switch"
    c.frame(pc((YES, "BUY", "0.48", "5")))
    c.send(Tick(), src="clock")
    assert c.quotes == ()


def test_emits_only_when_the_desired_set_changes() -> None:
    c = ready(REWARDED, bids=[("0.45", "100"), ("0.47", "60")], asks=[("0.52", "60")])  # fair 0.495: mid-tick
    n = len(c.emitted)
    for _ in range(5):
        c.send(Tick(), src="clock")
    c.frame(pc((YES, "BUY", "0.45", "1")))    # deep level: no BookChanged
    c.frame(pc((YES, "BUY", "0.47", "61")))   # top size changes, fair 0.4952: same quotes
    assert [type(e).__name__ for e in c.emitted[n:]] == ["BookChanged"]
    out = c.frame(pc((YES, "SELL", "0.49", "10")))  # new best ask: fair 0.4872, new quotes
    assert [type(e).__name__ for e in out] == ["BookChanged", "DesiredQuotes", "RewardEstimate"]
    assert c.quotes[0].price == 470_000


def test_shadow_mode_still_computes_quotes() -> None:
    c = Core(PLAIN)
    c.params = CoreParams(markets=(PLAIN,), quoting=False)
    c.quoter = QuoterActor(c.params, c.book.books)
    c.seq = Sequencer(c.sink, [c.book, c.quoter])
    c.send(FeedStatus(conn=1, state="connected"))
    c.frame(pair(BIDS, ASKS))
    assert c.quotes


def test_quotes_follow_a_tick_size_change() -> None:
    c = ready()
    c.frame(json.dumps([{"event_type": "tick_size_change", "asset_id": t, "market": CID, "new_tick_size": "0.001"}
                        for t in (YES, NO)]))
    assert c.quotes == ()
    c.frame(pair([("0.473", "60")], [("0.509", "40")], tick="0.001"))
    assert c.quotes and all(x.price % 1_000 == 0 for x in c.quotes)
    assert any(x.price % 10_000 for x in c.quotes)


# ---------------------------------------------------------------------------------------------- properties

P2 = [f"0.{i:02d}" for i in range(1, 100)]
P3 = [f"0.{i:03d}" for i in range(1, 1000, 7)]
sizes = st.sampled_from(["0", "1", "5", "20", "300"])
levels2 = st.lists(st.tuples(st.sampled_from(P2), sizes), max_size=5)

ops = st.one_of(
    st.tuples(st.just("pair"), levels2, levels2, st.sampled_from(["0.01", "0.001"])),
    st.tuples(st.just("snap"), st.sampled_from([YES, NO]), st.lists(st.tuples(st.sampled_from(P3), sizes), max_size=4),
              st.lists(st.tuples(st.sampled_from(P3), sizes), max_size=4), st.sampled_from(["0.01", "0.001"])),
    st.tuples(st.just("pc"), st.lists(st.tuples(st.sampled_from([YES, NO]), st.sampled_from(["BUY", "SELL"]),
                                                st.sampled_from(P2 + P3), sizes), min_size=1, max_size=4)),
    st.tuples(st.just("tick"), st.sampled_from([YES, NO]), st.sampled_from(["0.01", "0.001", "0.1"])),
    st.tuples(st.just("pos"), st.integers(-150, 150), st.integers(0, 150)),
    st.tuples(st.just("time"), st.sampled_from([1, SEC, 40 * SEC])),
    st.tuples(st.just("status"), st.sampled_from(["disconnected", "connected", "connecting"])),
    st.tuples(st.just("garbage"), st.sampled_from(["{", '{"event_type":"x"}', "PONG", pc((YES, "BUY", "2", "1"))])),
)
quoter_params = st.fixed_dictionaries({
    "spread": st.sampled_from([0, 5_000, 20_000, 100_000]),
    "size": st.sampled_from([1 * MICRO, 10 * MICRO, 50 * MICRO]),
    "levels": st.integers(1, 3),
    "level_spacing": st.sampled_from([0, 1_000, 10_000]),
    "skew_per_share": st.sampled_from([0, 100, 5_000]),
    "max_position": st.sampled_from([0, 20 * MICRO, 100 * MICRO]),
    "use_microprice": st.booleans(),
})


def _run_op(c: Core, o, state: dict) -> None:
    kind = o[0]
    conn = state["conn"]
    if kind == "pair":
        dec = len(o[3].split(".")[1])
        c.frame(json.dumps([_book(YES, o[1], o[2], o[3]), _book(NO, _mirror(o[2], dec), _mirror(o[1], dec), o[3])]), conn)
    elif kind == "snap":
        c.frame(json.dumps([_book(o[1], o[2], o[3], o[4])]), conn)
    elif kind == "pc":
        c.frame(pc(*o[1]), conn)
    elif kind == "tick":
        c.frame(json.dumps({"event_type": "tick_size_change", "asset_id": o[1], "market": CID, "new_tick_size": o[2]}),
                conn)
    elif kind == "pos":
        c.position(o[1], o[2])
    elif kind == "time":
        c.send(Tick(), dt=o[1], src="clock")
    elif kind == "status":
        if o[1] != "disconnected":
            state["conn"] += 1
        c.send(FeedStatus(conn=state["conn"], state=o[1]))
    else:
        c.frame(o[1], conn)


def check_quotes(c: Core, market: MarketParams) -> None:
    quotes = c.quotes
    yes, no = c.book.books.get(YES), c.book.books.get(NO)
    if not (yes.valid and no.valid) or c.quoter.gate(c.now):
        assert quotes == ()
        return
    bids, asks = [], []
    for x in quotes:
        tb = c.book.books.get(x.token_id)
        assert tb.valid and x.price % tb.tick == 0, (x, tb)
        assert tb.tick <= x.price <= MICRO - tb.tick, (x, tb)
        assert x.size >= market.min_order_size and x.size % 10_000 == 0
        if x.side == "BUY":
            ba = tb.best_ask()
            assert ba is None or x.price < ba[0], (x, tb)
        else:
            bb = tb.best_bid()
            assert bb is not None and x.price > bb[0], (x, tb)
        if x.token_id == YES and x.side == "BUY":
            bids.append(x.price)
        else:
            asks.append(x.price if x.token_id == YES else MICRO - x.price)
    if bids and asks:
        assert max(bids) < min(asks)
    assert len(set(bids)) == len(bids) and len(set(asks)) == len(asks)


@settings(max_examples=200, deadline=None)
@given(st.lists(ops, max_size=30), quoter_params, st.booleans())
def test_random_feeds_never_give_an_unsafe_quote(script, qp, rewarded) -> None:
    market = REWARDED if rewarded else PLAIN
    c = Core(market, **qp)
    state = {"conn": 1}
    c.send(FeedStatus(conn=1, state="connected"))
    for o in script:
        _run_op(c, o, state)
        check_quotes(c, market)
        for tok in (YES, NO):
            tb = c.book.books.get(tok)
            if tb.valid and tb.best_bid() and tb.best_ask():
                assert tb.best_bid()[0] < tb.best_ask()[0]


@pytest.mark.parametrize("seed_script", range(3))
def test_same_inputs_twice_give_identical_journals(seed_script: int) -> None:
    script = [("pair", BIDS, ASKS, "0.01"), ("pos", 30, 5), ("pc", [(YES, "BUY", "0.48", "20"), (NO, "SELL", "0.52", "20")]),
              ("time", SEC), ("tick", YES, "0.001"), ("snap", YES, [("0.481", "5")], [("0.499", "9")], "0.001"),
              ("status", "disconnected"), ("status", "connected"), ("pair", BIDS, ASKS, "0.01")][: 4 + 2 * seed_script]
    runs = []
    for _ in range(2):
        c = Core(REWARDED, levels=2)
        state = {"conn": 1}
        c.send(FeedStatus(conn=1, state="connected"))
        for o in script:
            _run_op(c, o, state)
        runs.append(list(c.sink.payloads))
    assert runs[0] == runs[1] and len(runs[0]) > len(script)


def test_quote_size_when_rewards_minimum_exceeds_risk_order_limit_then_capped_at_the_limit() -> None:
    big = MarketParams(condition_id=CID, yes_token=YES, no_token=NO, min_order_size=5 * MICRO,
                       reward_min_size=100 * MICRO, reward_max_spread=30_000)
    c = Core(big, size=60 * MICRO)
    c.params = CoreParams(markets=(big,), quoter=QuoterParams(size=60 * MICRO), risk=RiskParams(max_order_size=50 * MICRO))
    c.quoter = QuoterActor(c.params, c.book.books)
    c.seq = Sequencer(c.sink, [c.book, c.quoter])
    c.send(FeedStatus(conn=1, state="connected"))
    c.frame(pair(BIDS, ASKS))
    assert c.quotes and all(quote.size == 50 * MICRO for quote in c.quotes)
