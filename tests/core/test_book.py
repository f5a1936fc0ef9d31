"""The L2 book actor: fixture sequence, epochs and resyncs, top-of-book events only, bad input survived."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.book import BookActor
from actors.core.frames import to_micro
from events.base import MICRO
from events.codec import Envelope, encode
from events.market import BookChanged, FeedFrame, FeedStatus, ParseError, ResyncRequest, RestBook, TradePrint
from events.params import CoreParams, MarketParams

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "polymarket"

YES, NO, CID = "101", "202", "0x" + "cd" * 32
MKT = MarketParams(condition_id=CID, yes_token=YES, no_token=NO)
PARAMS = CoreParams(markets=(MKT,))


class Driver:
    """A BookActor driven directly, one input at a time."""

    def __init__(self, params: CoreParams = PARAMS) -> None:
        self.actor = BookActor(params)
        self.books = self.actor.books
        self.seq = 0
        self.ts = 1_000

    def send(self, ev) -> list:
        self.seq += 1
        self.ts += 1_000
        return list(self.actor.step(self.seq, Envelope(ts_ns=self.ts, src="feed", cause=0, ev=ev)))

    def frame(self, text: str, conn: int = 1) -> list:
        return self.send(FeedFrame(conn=conn, text=text))


def book(token: str, bids, asks, *, tick: str | None = "0.01", ts: str = "1", market: str = CID) -> dict:
    d = {"event_type": "book", "market": market, "asset_id": token, "timestamp": ts, "hash": "h",
         "bids": [{"price": p, "size": s} for p, s in sorted(bids, key=lambda x: float(x[0]))],
         "asks": [{"price": p, "size": s} for p, s in sorted(asks, key=lambda x: -float(x[0]))]}
    if tick is not None:
        d["tick_size"] = tick
    return d


def pc(*entries, ts: str = "2") -> str:
    """entries: (token, side, price, size) or (token, side, price, size, best_bid, best_ask)."""
    out = []
    for e in entries:
        d = {"asset_id": e[0], "side": e[1], "price": e[2], "size": e[3], "hash": "x"}
        if len(e) > 4:
            d["best_bid"], d["best_ask"] = e[4], e[5]
        out.append(d)
    return json.dumps({"event_type": "price_change", "market": CID, "timestamp": ts, "price_changes": out})


YES_BIDS = [("0.44", "50"), ("0.45", "20"), ("0.46", "10")]
YES_ASKS = [("0.48", "15"), ("0.49", "25"), ("0.50", "30")]
NO_BIDS = [("0.52", "15"), ("0.51", "25"), ("0.50", "30")]
NO_ASKS = [("0.54", "10"), ("0.55", "20"), ("0.56", "50")]


def snapshot_pair(**kw) -> str:
    return json.dumps([book(YES, YES_BIDS, YES_ASKS, **kw), book(NO, NO_BIDS, NO_ASKS, **kw)])


def started(**kw) -> Driver:
    d = Driver(**kw)
    d.send(FeedStatus(conn=1, state="connected"))
    d.frame(snapshot_pair())
    return d


def of(out: list, kind: type) -> list:
    return [e for e in out if isinstance(e, kind)]


def as_micro(levels) -> list[tuple[int, int]]:
    return [(to_micro(p), to_micro(s)) for p, s in levels]


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.mark.skipif(not (FIXTURES / "book-sequence.json").is_file(), reason=f"shared fixtures not found at {FIXTURES}")
def test_fixture_book_sequence_ends_in_expected_books() -> None:
    fx = json.loads((FIXTURES / "book-sequence.json").read_text())
    tokens = sorted(fx["expect_books"])
    d = Driver(CoreParams(markets=(MarketParams(condition_id="0xm", yes_token=tokens[0], no_token=tokens[1]),)))
    emitted = []
    for f in fx["frames"]:
        emitted += d.frame(f)
    assert not of(emitted, ParseError) and not of(emitted, ResyncRequest)
    for token, want in fx["expect_books"].items():
        tb = d.books.get(token)
        assert tb is not None and tb.valid
        assert tb.levels("BUY") == as_micro(want["bids"])
        assert tb.levels("SELL") == as_micro(want["asks"])
        assert tb.best_bid() == as_micro(want["bids"])[0] and tb.best_ask() == as_micro(want["asks"])[0]
    yes_bid = d.books.get(tokens[0]).best_bid()[0]
    no_ask = d.books.get(tokens[1]).best_ask()[0]
    assert yes_bid + no_ask == MICRO
    assert d.books.get(tokens[0]).last_trade() == (470_000, 5 * MICRO, "SELL")
    assert of(emitted, TradePrint) == [TradePrint(token_id=tokens[0], price=470_000, size=5 * MICRO, side="SELL")]


@pytest.mark.skipif(not (FIXTURES / "market-frames.jsonl").is_file(), reason=f"shared fixtures not found at {FIXTURES}")
def test_fixture_live_initial_dump_best_levels_are_the_last_elements() -> None:
    case = next(json.loads(line) for line in (FIXTURES / "market-frames.jsonl").read_text().splitlines()
                if json.loads(line)["name"] == "live_initial_book_array")
    tokens = list(case["expect"]["books"])
    d = Driver(CoreParams(markets=(MarketParams(condition_id="c", yes_token=tokens[0], no_token=tokens[1]),)))
    d.frame(case["frame"])
    for token, want in case["expect"]["books"].items():
        tb = d.books.get(token)
        assert tb.valid
        assert tb.best_bid() == (None if want["best_bid"] is None else tuple(map(to_micro, want["best_bid"])))
        assert tb.best_ask() == (None if want["best_ask"] is None else tuple(map(to_micro, want["best_ask"])))
        assert len(tb.levels("BUY")) == want["bid_levels"] and tb.tick == to_micro(want["tick_size"])
    assert d.books.get(tokens[1]).mid() is None


# ---------------------------------------------------------------------------------------------- view API


def test_books_view_api() -> None:
    d = started()
    yes = d.books.get(YES)
    assert d.books.tokens() == sorted([YES, NO]) and d.books.get("other") is None
    assert yes.best_bid() == (460_000, 10 * MICRO) and yes.best_ask() == (480_000, 15 * MICRO)
    assert yes.mid() == 470_000
    assert yes.microprice() == (460_000 * 15 + 480_000 * 10) // 25
    assert yes.size_at("BUY", 450_000) == 20 * MICRO and yes.size_at("SELL", 450_000) == 0
    assert yes.depth_within("BUY", 10_000) == 30 * MICRO and yes.depth_within("SELL", 20_000) == 70 * MICRO
    assert yes.levels("BUY", 2) == [(460_000, 10 * MICRO), (450_000, 20 * MICRO)]
    assert yes.levels("SELL", 1) == [(480_000, 15 * MICRO)]
    assert yes.last_trade() is None and yes.tick == 10_000 and yes.epoch == 0


def test_microprice_rounds_down_and_stays_inside_the_spread() -> None:
    d = Driver()
    d.frame(json.dumps(book(YES, [("0.45", "1")], [("0.46", "2")])))
    mp = d.books.get(YES).microprice()
    assert mp == (450_000 * 2 + 460_000 * 1) // 3 and 450_000 <= mp <= 460_000


def test_before_any_snapshot_books_exist_but_are_invalid() -> None:
    d = Driver()
    yes = d.books.get(YES)
    assert yes is not None and not yes.valid and yes.mid() is None and yes.best_bid() is None


# ---------------------------------------------------------------------------------------------- events


def test_book_changed_only_when_the_top_changes() -> None:
    d = started()
    assert d.frame(pc((YES, "BUY", "0.44", "99"))) == []                   # deep level
    assert d.frame("PONG") == [] and d.frame("[]") == []
    assert d.frame(snapshot_pair()) == []                                  # identical snapshot
    (bc,) = d.frame(pc((YES, "BUY", "0.46", "11")))                        # top size
    assert isinstance(bc, BookChanged) and (bc.best_bid, bc.bid_size) == (460_000, 11 * MICRO)
    out = d.frame(pc((YES, "SELL", "0.47", "5"), (NO, "BUY", "0.53", "5")))  # both tops, one frame
    assert [(e.token_id, e.best_ask if e.token_id == YES else e.best_bid) for e in out] == [(YES, 470_000), (NO, 530_000)]


def test_entries_for_other_tokens_are_filtered() -> None:
    d = started()
    assert d.frame(pc(("999", "BUY", "0.47", "5"))) == []
    assert d.frame(json.dumps(book("999", [("0.9", "1")], [("0.1", "1")]))) == []
    assert d.actor.filtered == 2 and d.books.get("999") is None


def test_delete_of_best_level_finds_next_best() -> None:
    d = started()
    (bc,) = d.frame(pc((YES, "SELL", "0.48", "0")))
    assert bc.best_ask == 490_000 and d.books.get(YES).levels("SELL") == [(490_000, 25 * MICRO), (500_000, 30 * MICRO)]
    assert d.frame(pc((YES, "SELL", "0.33", "0"))) == []  # deleting a level that is not there


def test_tick_size_change_drops_the_book_until_a_snapshot_with_new_epoch() -> None:
    d = started()
    out = d.frame(json.dumps({"event_type": "tick_size_change", "asset_id": YES, "market": CID,
                              "old_tick_size": "0.01", "new_tick_size": "0.001", "timestamp": "5"}))
    (rq,) = of(out, ResyncRequest)
    (bc,) = of(out, BookChanged)
    assert rq.token_id == YES and rq.reason == "tick_size_change"
    assert (bc.valid, bc.epoch, bc.tick, bc.best_bid) == (False, 1, 1_000, 0)
    assert d.frame(pc((YES, "BUY", "0.461", "5"))) == []  # ignored while waiting
    assert d.books.get(YES).best_bid() is None and d.actor.skipped_invalid == 1
    (bc,) = d.frame(json.dumps([book(YES, [("0.461", "7")], [("0.475", "3")], tick=None)]))
    assert (bc.valid, bc.epoch, bc.tick, bc.best_bid, bc.best_ask) == (True, 1, 1_000, 461_000, 475_000)


def test_contradicting_reported_best_invalidates_and_requests_resync() -> None:
    d = started()
    assert d.frame(pc((YES, "BUY", "0.47", "5", "0.47", "0.48"))) != []  # consistent: applied
    assert d.books.get(YES).valid
    out = d.frame(pc((YES, "BUY", "0.40", "5", "0.46", "0.48")))  # book says 0.47
    (rq,) = of(out, ResyncRequest)
    assert rq.token_id == YES and not d.books.get(YES).valid and d.books.get(YES).epoch == 1
    assert d.actor.resyncs == 1


def test_reported_empty_sides_match_empty_book_sides() -> None:
    d = Driver()
    d.frame(json.dumps(book(YES, [], [("0.6", "1")])))
    d.frame(pc((YES, "BUY", "0.5", "200", "0.5", "0.6"), (YES, "SELL", "0.6", "0", "0.5", "1")))
    tb = d.books.get(YES)
    assert tb.valid and tb.best_ask() is None and tb.best_bid() == (500_000, 200 * MICRO)
    d.frame(pc((YES, "BUY", "0.5", "0", "0", "")))
    assert tb.valid and tb.best_bid() is None


def test_crossed_book_is_invalid() -> None:
    d = started()
    out = d.frame(pc((YES, "BUY", "0.49", "5")))  # bid 0.49 >= ask 0.48
    assert of(out, ResyncRequest) and not d.books.get(YES).valid and d.books.get(YES).mid() is None
    out = d.frame(json.dumps(book(YES, [("0.5", "1")], [("0.5", "1")])))  # crossed snapshot: stays invalid
    assert of(out, ResyncRequest) and not d.books.get(YES).valid


def test_disconnect_invalidates_until_the_new_connections_snapshot() -> None:
    d = started()
    out = d.send(FeedStatus(conn=1, state="disconnected"))
    assert sorted((e.token_id, e.valid) for e in out) == [(YES, False), (NO, False)]
    assert not of(out, ResyncRequest)
    assert d.frame(snapshot_pair(), conn=1) == []  # late frame of the dead socket
    assert not d.books.get(YES).valid and d.actor.stale_frames == 1
    d.send(FeedStatus(conn=2, state="connecting"))
    assert d.send(FeedStatus(conn=2, state="connected")) == []
    out = d.frame(json.dumps([book(YES, [("0.30", "1")], [("0.35", "2")]), book(NO, [("0.65", "2")], [("0.70", "1")])]),
                  conn=2)
    assert all(e.valid and e.epoch == 1 for e in out) and len(out) == 2
    assert d.books.get(YES).levels("BUY") == [(300_000, MICRO)]
    assert d.frame(pc((YES, "BUY", "0.31", "1")), conn=1) == []  # old connection still ignored


def test_new_connection_number_without_status_restarts_books() -> None:
    d = started()
    out = d.frame(pc((YES, "BUY", "0.47", "5")), conn=2)
    assert all(not e.valid for e in out) and not d.books.get(YES).valid


def test_rest_book_is_a_snapshot_unless_older_than_the_book() -> None:
    d = started()
    d.frame(json.dumps({"event_type": "tick_size_change", "asset_id": YES, "market": CID, "new_tick_size": "0.001"}))
    body = {"market": CID, "asset_id": YES, "timestamp": "100", "hash": "h", "bids": [{"price": "0.401", "size": "1"},
            {"price": "0.402", "size": "2"}], "asks": [{"price": "0.41", "size": "3"}], "tick_size": "0.001"}
    (bc,) = d.send(RestBook(token_id=YES, status=200, body=json.dumps(body)))
    assert bc.valid and bc.reason == "rest_snapshot" and bc.best_bid == 402_000 and bc.tick == 1_000
    d.frame(pc((YES, "BUY", "0.403", "1"), ts="200"))
    body["timestamp"] = "150"
    assert d.send(RestBook(token_id=YES, status=200, body=json.dumps(body))) == []
    assert d.actor.stale_rest == 1 and d.books.get(YES).best_bid() == (403_000, MICRO)
    (pe,) = d.send(RestBook(token_id=YES, status=404, body='{"error":"No orderbook exists"}'))
    assert isinstance(pe, ParseError) and "404" in pe.reason
    out = d.send(RestBook(token_id=YES, status=200, body="{not json"))
    assert of(out, ParseError) and of(out, ResyncRequest) and not d.books.get(YES).valid


def test_trade_print() -> None:
    d = started()
    (tp,) = d.frame(json.dumps({"event_type": "last_trade_price", "asset_id": NO, "market": CID, "price": "0.456",
                                "size": "219.217767", "side": "BUY", "fee_rate_bps": "0", "timestamp": "1"}))
    assert tp == TradePrint(token_id=NO, price=456_000, size=219_217_767, side="BUY")
    assert d.books.get(NO).last_trade() == (456_000, 219_217_767, "BUY")


def test_market_resolved_latches_invalid() -> None:
    d = started()
    out = d.frame(json.dumps({"event_type": "market_resolved", "market": CID, "assets_ids": [YES, NO],
                              "winning_asset_id": YES, "winning_outcome": "Yes"}))
    assert len(of(out, BookChanged)) == 2 and not of(out, ResyncRequest)
    d.frame(snapshot_pair())
    assert not d.books.get(YES).valid and not d.books.get(NO).valid


# ---------------------------------------------------------------------------------------------- bad input


def test_bad_input_becomes_parse_errors_and_is_survived() -> None:
    d = started()
    (pe,) = d.frame('{"event_type":"price_change","market":"0x1","price_ch')
    assert isinstance(pe, ParseError) and pe.conn == 1 and len(pe.excerpt) <= 200
    (pe,) = d.frame('{"event_type":"brand_new","x":1}')
    assert "brand_new" in pe.reason
    (pe,) = d.frame("{" * 5000)
    assert len(pe.excerpt) <= 200
    assert d.books.get(YES).valid  # nothing named our tokens
    (pe,) = d.frame(pc(("999", "BUY", "7", "1")))  # bad entry for someone else's token
    assert d.books.get(YES).valid
    out = d.frame(pc((NO, "BUY", "0.53", "5"), (YES, "BUY", "1.5", "1")))
    assert of(out, ParseError) and [e.token_id for e in of(out, ResyncRequest)] == [YES]
    assert not d.books.get(YES).valid and d.books.get(NO).best_bid() == (530_000, 5 * MICRO)
    assert d.actor.parse_errors == 5 and d.actor.unknown == 1


def test_truncated_frame_naming_our_token_invalidates_it() -> None:
    d = started()
    out = d.frame(pc((YES, "BUY", "0.47", "5"))[:-20])  # names the market: both of its tokens are suspect
    assert of(out, ParseError) and [e.token_id for e in of(out, ResyncRequest)] == [YES, NO]
    d.frame(snapshot_pair())
    out = d.frame('[{"event_type":"price_change","price_changes":[{"asset_id":"202","price":"0.5')
    assert [e.token_id for e in of(out, ResyncRequest)] == [NO] and d.books.get(YES).valid


# ---------------------------------------------------------------------------------------------- properties

PRICES_2 = [f"0.{i:02d}" for i in range(1, 100)]
PRICES_3 = [f"0.{i:03d}" for i in range(400, 600)]


def _levels(prices):
    return st.lists(st.tuples(st.sampled_from(prices), st.sampled_from(["0", "1", "2.5", "10", "100.123456"])),
                    max_size=6)


op = st.one_of(
    st.tuples(st.just("snap"), st.sampled_from([YES, NO]), _levels(PRICES_2), _levels(PRICES_2),
              st.sampled_from(["0.01", "0.001", None])),
    st.tuples(st.just("pc"), st.lists(st.tuples(st.sampled_from([YES, NO, "999"]), st.sampled_from(["BUY", "SELL"]),
                                                st.sampled_from(PRICES_2 + PRICES_3), st.sampled_from(["0", "3", "7"])),
                                      min_size=1, max_size=5)),
    st.tuples(st.just("tick"), st.sampled_from([YES, NO]), st.sampled_from(["0.01", "0.001"])),
    st.tuples(st.just("garbage"), st.sampled_from(['{"event_type":"price_change","price_changes":[{"asset_id":"101"',
                                                   "{]", '{"event_type":"zz"}', "PONG", "[]",
                                                   pc((YES, "BUY", "NaN", "1"))])),
    st.tuples(st.just("status"), st.sampled_from(["disconnected", "connected"])),
)


class Model:
    """Reference semantics: a plain dict of levels per side, applied only between a snapshot and the next drop."""

    def __init__(self) -> None:
        self.books: dict[str, tuple[dict, dict] | None] = {YES: None, NO: None}
        self.down = False


def _apply(d: Driver, model: Model, o, conn: list[int]) -> list:
    kind = o[0]
    if model.down and kind != "status":  # frames of a socket reported disconnected are ignored
        return d.frame(json.dumps([book(YES, [("0.1", "1")], [])]), conn[0])
    if kind == "snap":
        _, tok, bids, asks, tick = o
        text = json.dumps([book(tok, bids, asks, tick=tick)])
        out = d.frame(text, conn[0])
        # snapshot rule: zero-size entries are dropped, then the last entry for a price wins
        b = {to_micro(p): to_micro(s) for p, s in bids if to_micro(s)}
        a = {to_micro(p): to_micro(s) for p, s in asks if to_micro(s)}
        model.books[tok] = None if (b and a and max(b) >= min(a)) else (b, a)
        return out
    if kind == "pc":
        out = d.frame(pc(*o[1]), conn[0])
        for tok, side, p, s in o[1]:
            if tok in model.books and model.books[tok] is not None:
                lv = model.books[tok][0 if side == "BUY" else 1]
                if to_micro(s):
                    lv[to_micro(p)] = to_micro(s)
                else:
                    lv.pop(to_micro(p), None)
        for tok in (YES, NO):
            m = model.books[tok]
            if m is not None and m[0] and m[1] and max(m[0]) >= min(m[1]):
                model.books[tok] = None
        return out
    if kind == "tick":
        model.books[o[1]] = None
        return d.frame(json.dumps({"event_type": "tick_size_change", "asset_id": o[1], "market": CID,
                                   "new_tick_size": o[2]}), conn[0])
    if kind == "garbage":
        out = d.frame(o[1], conn[0])
        for tok in (YES, NO):
            if not d.books.get(tok).valid:
                model.books[tok] = None
        return out
    if o[1] == "disconnected":
        model.books = {YES: None, NO: None}
        model.down = True
        return d.send(FeedStatus(conn=conn[0], state="disconnected"))
    conn[0] += 1
    model.books = {YES: None, NO: None}
    model.down = False
    return d.send(FeedStatus(conn=conn[0], state="connected"))


@settings(max_examples=150, deadline=None)
@given(st.lists(op, max_size=25))
def test_random_sequences_match_the_reference_and_never_leave_a_crossed_valid_book(ops) -> None:
    d = Driver()
    model = Model()
    conn = [1]
    d.send(FeedStatus(conn=1, state="connected"))
    last_top = {YES: d.actor._published[YES], NO: d.actor._published[NO]}
    for o in ops:
        out = _apply(d, model, o, conn)
        for tok in (YES, NO):
            tb = d.books.get(tok)
            m = model.books[tok]
            assert tb.valid == (m is not None), (o, tb)
            if tb.valid:
                assert dict(tb.levels("BUY")) == m[0] and dict(tb.levels("SELL")) == m[1]
                bb, ba = tb.best_bid(), tb.best_ask()
                assert not (bb and ba and bb[0] >= ba[0])
                assert bb == (max(m[0].items()) if m[0] else None)
            else:
                assert tb.best_bid() is None and tb.best_ask() is None
            changed = [e for e in out if isinstance(e, BookChanged) and e.token_id == tok]
            top = tb.top()
            assert len(changed) == (1 if top != last_top[tok] else 0)
            last_top[tok] = top


@settings(max_examples=30, deadline=None)
@given(st.lists(op, max_size=20))
def test_same_inputs_give_identical_outputs(ops) -> None:
    runs = []
    for _ in range(2):
        d, model, conn = Driver(), Model(), [1]
        got = []
        for o in ops:
            got += [encode(Envelope(ts_ns=0, src="book", cause=0, ev=e)) for e in _apply(d, model, o, conn)]
        runs.append(got)
    assert runs[0] == runs[1]
