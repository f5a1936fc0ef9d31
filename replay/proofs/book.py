"""Book proofs: the L2 book is rebuilt exactly from the wire, lost continuity is never quoted against, and bad
input is survived. Each drives the real core (``build_core``) with scripted market-channel frames."""
from __future__ import annotations

import json

from actors.core.book import Books
from events.base import MICRO
from events.control import KillSwitch, Tick
from events.market import BookChanged, FeedFrame, FeedStatus, ParseError, ResyncRequest, TradePrint
from events.orders import DesiredQuotes
from events.params import CoreParams, MarketParams
from replay.harness import ScriptedSession
from replay.proofs import ProofContext, expect, proof
from replay.scripts import MARKET, pair_snapshot, price_change

MS = 10**6


def _books(s: ScriptedSession) -> Books:
    return next(a for a in s.sequencer.actors if a.name == "book").books  # type: ignore[attr-defined]


def _desired(s: ScriptedSession, *, after: int = 0) -> DesiredQuotes | None:
    found = s.events(DesiredQuotes, after=after)
    return found[-1] if found else None


def _last_quotes(s: ScriptedSession) -> tuple:
    dq = _desired(s)
    return dq.quotes if dq is not None else ()


def _no_internal_error(s: ScriptedSession) -> None:
    expect(not s.sequencer.failed, f"a core actor raised: {s.sequencer.failed}")
    errs = [k for k in s.events(KillSwitch) if k.reason == "internal_error"]
    expect(not errs, f"internal error kill switch: {errs}")


def _micro_levels(levels: list[tuple[str, str]]) -> list[tuple[int, int]]:
    from actors.core.frames import to_micro

    return [(to_micro(p), to_micro(q)) for p, q in levels]


# The shared fixture book-sequence.json, embedded so the proof needs nothing outside the repo.
SEQ_MARKET = MarketParams(condition_id="0xm", yes_token="101", no_token="202")
SEQ_FRAMES = [
    '[{"event_type":"book","market":"0xm","asset_id":"101","timestamp":"1","hash":"a","bids":[{"price":"0.44","size":"50"},'
    '{"price":"0.45","size":"20"},{"price":"0.46","size":"10"}],"asks":[{"price":"0.50","size":"30"},{"price":"0.49",'
    '"size":"25"},{"price":"0.48","size":"15"}],"tick_size":"0.01","last_trade_price":"0.47"},{"event_type":"book",'
    '"market":"0xm","asset_id":"202","timestamp":"1","hash":"b","bids":[{"price":"0.50","size":"30"},{"price":"0.51",'
    '"size":"25"},{"price":"0.52","size":"15"}],"asks":[{"price":"0.56","size":"50"},{"price":"0.55","size":"20"},'
    '{"price":"0.54","size":"10"}],"tick_size":"0.01","last_trade_price":"0.53"}]',
    '{"event_type":"price_change","market":"0xm","timestamp":"2","price_changes":[{"asset_id":"101","price":"0.47",'
    '"size":"5","side":"BUY","hash":"c","best_bid":"0.47","best_ask":"0.48"},{"asset_id":"202","price":"0.53","size":"5",'
    '"side":"SELL","hash":"d","best_bid":"0.52","best_ask":"0.53"}]}',
    "PONG",
    '{"event_type":"price_change","market":"0xm","timestamp":"3","price_changes":[{"asset_id":"101","price":"0.48",'
    '"size":"0","side":"SELL","hash":"e","best_bid":"0.47","best_ask":"0.49"},{"asset_id":"202","price":"0.52","size":"0",'
    '"side":"BUY","hash":"f","best_bid":"0.51","best_ask":"0.53"}]}',
    "[]",
    '{"event_type":"price_change","market":"0xm","timestamp":"4","price_changes":[{"asset_id":"101","price":"0.45",'
    '"size":"70","side":"BUY","hash":"g"}]}',
    '{"event_type":"last_trade_price","asset_id":"101","market":"0xm","price":"0.47","size":"5","fee_rate_bps":"0",'
    '"side":"SELL","timestamp":"5","transaction_hash":"0x1"}',
]
SEQ_EXPECT = {
    "101": {"bids": [("0.47", "5"), ("0.46", "10"), ("0.45", "70"), ("0.44", "50")], "asks": [("0.49", "25"), ("0.50", "30")]},
    "202": {"bids": [("0.51", "25"), ("0.50", "30")], "asks": [("0.53", "5"), ("0.54", "10"), ("0.55", "20"), ("0.56", "50")]},
}


@proof("book_reconstruction")
def book_reconstruction(ctx: ProofContext) -> str:
    s = ctx.session(CoreParams(markets=(SEQ_MARKET,)))
    s.at(MS, "feed", FeedStatus(conn=1, state="connected"))
    for text in SEQ_FRAMES:
        s.at(MS, "feed", FeedFrame(conn=1, text=text))
    books = _books(s)
    for token, want in SEQ_EXPECT.items():
        tb = books.get(token)
        expect(tb is not None and tb.valid, f"book {token} is not valid at the end")
        got_b, got_a = tb.levels("BUY"), tb.levels("SELL")  # type: ignore[union-attr]
        expect(got_b == _micro_levels(want["bids"]), f"{token} bids {got_b} != expected {want['bids']}")
        expect(got_a == _micro_levels(want["asks"]), f"{token} asks {got_a} != expected {want['asks']}")
    yes_bid = books.get("101").best_bid()  # type: ignore[union-attr]
    no_ask = books.get("202").best_ask()  # type: ignore[union-attr]
    expect(yes_bid is not None and no_ask is not None and yes_bid[0] + no_ask[0] == MICRO,
           f"YES best bid {yes_bid} and NO best ask {no_ask} do not mirror")
    expect(not s.events(ParseError) and not s.events(ResyncRequest), "a clean sequence produced errors or resyncs")
    changed = s.events(BookChanged)
    # Tops change on the snapshot and the two mirrored price_changes (2 tokens each); the deep update and the trade
    # leave every top alone, so they must not produce a BookChanged.
    expect(len(changed) == 6, f"expected 6 BookChanged (top changes only), got {len(changed)}")
    trades = s.events(TradePrint)
    expect(trades == [TradePrint(token_id="101", price=470_000, size=5 * MICRO, side="SELL")], f"trades {trades}")
    _no_internal_error(s)
    return (f"{len(SEQ_FRAMES)} frames (2 snapshots, 3 price_changes incl. deletes and mirror entries, PONG, [], trade) "
            f"rebuilt both books level for level; {len(changed)} BookChanged, all on top changes")


@proof("reconnect_resync")
def reconnect_resync(ctx: ProofContext) -> str:
    s = ctx.session(CoreParams(markets=(MARKET,)))
    bids = (("0.45", "100"), ("0.46", "80"), ("0.47", "60"))
    asks = (("0.53", "100"), ("0.52", "80"), ("0.51", "60"))
    s.at(MS, "feed", FeedStatus(conn=1, state="connected"))
    s.at(MS, "feed", FeedFrame(conn=1, text=pair_snapshot(MARKET, bids, asks)))
    s.at(MS, "clock", Tick())
    expect(_last_quotes(s), "no quotes before the disconnect: nothing to prove")
    cut = s.at(MS, "feed", FeedStatus(conn=1, state="disconnected"))[0][0]
    books = _books(s)
    for tok in (MARKET.yes_token, MARKET.no_token):
        tb = books.get(tok)
        expect(tb is not None and not tb.valid and tb.mid() is None, f"book {tok} still valid after the disconnect")
    invalid = [e.token_id for e in s.events(BookChanged, after=cut) if not e.valid]
    expect(sorted(invalid) == sorted([MARKET.yes_token, MARKET.no_token]), f"BookChanged(invalid) for {invalid}")
    expect(_last_quotes(s) == (), f"quotes still desired after the disconnect: {_last_quotes(s)}")
    # A late frame of the dead socket must not revive the book.
    s.at(MS, "feed", FeedFrame(conn=1, text=pair_snapshot(MARKET, bids, asks)))
    s.at(MS, "clock", Tick())
    expect(not books.get(MARKET.yes_token).valid, "a frame of the dead connection revived the book")  # type: ignore[union-attr]
    expect(_last_quotes(s) == (), "quotes desired while disconnected")
    s.at(MS, "feed", FeedStatus(conn=2, state="connecting"))
    s.at(MS, "feed", FeedStatus(conn=2, state="connected"))
    expect(_last_quotes(s) == () and not books.get(MARKET.yes_token).valid,  # type: ignore[union-attr]
           "connected again but no snapshot yet: must not quote")
    new_bids = (("0.55", "40"), ("0.56", "30"))
    new_asks = (("0.60", "30"), ("0.59", "40"))
    back = s.at(MS, "feed", FeedFrame(conn=2, text=pair_snapshot(MARKET, new_bids, new_asks)))[0][0]
    yes = books.get(MARKET.yes_token)
    expect(yes is not None and yes.valid and yes.epoch == 1, f"YES book after the new snapshot: {yes}")
    expect(yes.levels("BUY") == sorted(_micro_levels(list(new_bids)), reverse=True), f"YES bids {yes.levels('BUY')}")  # type: ignore[union-attr]
    expect(yes.levels("SELL") == sorted(_micro_levels(list(new_asks))), f"YES asks {yes.levels('SELL')}")  # type: ignore[union-attr]
    dq = _desired(s, after=back)
    expect(dq is not None and dq.quotes, "no quotes after the reconnect snapshot")
    expect(560_000 <= dq.fair <= 590_000, f"fair {dq.fair} not inside the new book")  # type: ignore[union-attr]
    expect(not s.events(ResyncRequest), "a disconnect must not ask for a resync: the reconnect re-subscribes")
    _no_internal_error(s)
    return (f"disconnect: both books invalid (epoch 1), quotes withdrawn, dead-socket frame ignored; new connection's "
            f"snapshot restored the book and {len(dq.quotes)} quotes around fair {dq.fair}")  # type: ignore[union-attr]


def _tick_change(m: MarketParams, new: str, old: str = "0.01") -> str:
    return json.dumps([
        {"event_type": "tick_size_change", "asset_id": tok, "market": m.condition_id, "old_tick_size": old,
         "new_tick_size": new, "timestamp": "10"}
        for tok in (m.yes_token, m.no_token)
    ])


@proof("tick_size_reepoch")
def tick_size_reepoch(ctx: ProofContext) -> str:
    s = ctx.session(CoreParams(markets=(MARKET,)))
    s.at(MS, "feed", FeedStatus(conn=1, state="connected"))
    s.at(MS, "feed", FeedFrame(conn=1, text=pair_snapshot(MARKET, (("0.94", "50"), ("0.95", "60")),
                                                             (("0.97", "60"), ("0.98", "50")))))
    before = _last_quotes(s)
    expect(before and all(q.price % 10_000 == 0 for q in before), f"quotes before the change: {before}")
    change = s.at(MS, "feed", FeedFrame(conn=1, text=_tick_change(MARKET, "0.001")))[0][0]
    books = _books(s)
    rq = sorted(e.token_id for e in s.events(ResyncRequest, after=change))
    expect(rq == sorted([MARKET.yes_token, MARKET.no_token]), f"ResyncRequest for {rq}")
    for e in s.events(BookChanged, after=change):
        expect(not e.valid and e.epoch == 1 and e.tick == 1_000 and e.best_bid == 0, f"after the change: {e}")
    yes = books.get(MARKET.yes_token)
    expect(yes is not None and not yes.valid and yes.best_bid() is None, "the book was not dropped")
    expect(_last_quotes(s) == (), "quotes still desired on a dropped book")
    # An update of the old epoch arriving before the snapshot is not applied.
    s.at(MS, "feed", FeedFrame(conn=1, text=price_change(MARKET, [("BUY", "0.955", "10")])))
    expect(not yes.valid and yes.best_bid() is None, "an update was applied to a dropped book")  # type: ignore[union-attr]
    snap = s.at(MS, "feed", FeedFrame(conn=1, text=pair_snapshot(
        MARKET, (("0.961", "50"), ("0.962", "60")), (("0.968", "40"), ("0.969", "50")), tick="0.001")))[0][0]
    expect(yes.valid and yes.epoch == 1 and yes.tick == 1_000, f"not restored: {yes}")  # type: ignore[union-attr]
    after = _last_quotes(s)
    expect(after, "no quotes after the new snapshot")
    ticks = {MARKET.yes_token: books.get(MARKET.yes_token).tick, MARKET.no_token: books.get(MARKET.no_token).tick}  # type: ignore[union-attr]
    for q in after:
        t = ticks[q.token_id]
        expect(q.price % t == 0 and t <= q.price <= MICRO - t, f"quote {q} off the new tick {t} or out of range")
    expect(any(q.price % 10_000 for q in after), f"quotes {after} do not use the finer tick")
    expect(_desired(s, after=snap) is not None, "no DesiredQuotes after the snapshot")
    _no_internal_error(s)
    prices = ", ".join(f"{q.side} {'YES' if q.token_id == MARKET.yes_token else 'NO'} {q.price / MICRO:.3f}" for q in after)
    return f"tick 0.01 -> 0.001: both books dropped (epoch 1, 2 ResyncRequests), snapshot restored; quotes {prices}"


@proof("malformed_survived")
def malformed_survived(ctx: ProofContext) -> str:
    s = ctx.session(CoreParams(markets=(MARKET,)))
    bids = (("0.45", "100"), ("0.46", "80"), ("0.47", "60"))
    asks = (("0.53", "100"), ("0.52", "80"), ("0.51", "60"))
    yes_t = MARKET.yes_token
    s.at(MS, "feed", FeedStatus(conn=1, state="connected"))
    s.at(MS, "feed", FeedFrame(conn=1, text=pair_snapshot(MARKET, bids, asks)))
    books = _books(s)
    yes = books.get(yes_t)
    start = s.records[-1][0]
    s.at(MS, "feed", FeedFrame(conn=1, text='{"event_type":"price_change","market":"0x1","price_ch'))
    s.at(MS, "feed", FeedFrame(conn=1, text='{"event_type":"brand_new_event","x":1}'))
    expect(yes is not None and yes.valid, "an unrelated malformed frame invalidated the book")
    s.at(MS, "feed", FeedFrame(conn=1, text=price_change(MARKET, [("BUY", "0.48", "7")])))
    expect(yes.best_bid() == (480_000, 7 * MICRO), f"valid update after garbage not applied: {yes.best_bid()}")  # type: ignore[union-attr]
    bad = json.dumps({"event_type": "price_change", "market": MARKET.condition_id, "timestamp": "5", "price_changes": [
        {"asset_id": yes_t, "price": "1.5", "size": "10", "side": "SELL", "hash": "z"}]})
    bad_seq = s.at(MS, "feed", FeedFrame(conn=1, text=bad))[0][0]
    errors = s.events(ParseError, after=start)
    expect(len(errors) == 3, f"expected 3 ParseErrors (truncated, unknown, out of range), got {len(errors)}: {errors}")
    expect(all(len(e.excerpt) <= 200 for e in errors), "an excerpt longer than 200 characters")
    rq = [e.token_id for e in s.events(ResyncRequest, after=bad_seq)]
    expect(rq == [yes_t], f"the lost update on {yes_t} should ask for a resync, got {rq}")
    expect(not yes.valid and _last_quotes(s) == (), "quoting on a book that missed an update")  # type: ignore[union-attr]
    s.at(MS, "feed", FeedFrame(conn=1, text=pair_snapshot(MARKET, bids, asks)))
    s.at(MS, "feed", FeedFrame(conn=1, text=price_change(MARKET, [("SELL", "0.50", "9")])))
    expect(yes.valid and yes.best_ask() == (500_000, 9 * MICRO), f"pipeline did not go on: {yes}")  # type: ignore[union-attr]
    expect(_last_quotes(s), "no quotes after recovery")
    _no_internal_error(s)
    reasons = "; ".join(e.reason[:40] for e in errors)
    return f"3 ParseErrors ({reasons}); out-of-range entry dropped the token until a snapshot; later frames applied"
