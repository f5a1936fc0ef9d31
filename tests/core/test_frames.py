"""The market-channel parser: wire fixtures, exact decimal conversion, bad input never raises."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.frames import (
    BestBidAsk,
    BookSnapshot,
    FrameError,
    Ignored,
    LastTrade,
    MarketResolved,
    PriceChange,
    TickSizeChange,
    Unknown,
    parse_book_body,
    parse_frame,
    to_micro,
)
from events.base import MICRO

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "polymarket"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"shared wire fixtures not found at {FIXTURES} (checkout without /work/shared)"
)


def _frames() -> list[dict]:
    path = FIXTURES / "market-frames.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _m(s: str | None) -> int | None:
    return None if s is None else to_micro(s)


HANDLED_EXPECT_KEYS = {"events", "books", "level_updates", "tick_size", "trade", "best_bid", "best_ask", "kind",
                       "winning_asset_id", "parse_error", "note"}


@needs_fixtures
@pytest.mark.parametrize("case", _frames(), ids=lambda c: c["name"])
def test_fixture_frame_parses_as_expected(case: dict) -> None:
    exp = case["expect"]
    assert set(exp) <= HANDLED_EXPECT_KEYS, f"fixture expects something this test does not check: {set(exp)}"
    items = parse_frame(case["frame"])
    errors = [i for i in items if isinstance(i, FrameError)]
    events = [i for i in items if not isinstance(i, FrameError)]
    assert len(events) == exp["events"]
    assert bool(errors) == bool(exp.get("parse_error", False))
    if "books" in exp:
        snaps = {i.asset_id: i for i in events if isinstance(i, BookSnapshot)}
        assert set(snaps) == set(exp["books"])
        for asset, want in exp["books"].items():
            snap = snaps[asset]
            best_bid = max(snap.bids) if snap.bids else None
            best_ask = min(snap.asks) if snap.asks else None
            assert best_bid == (None if want["best_bid"] is None else tuple(map(to_micro, want["best_bid"])))
            assert best_ask == (None if want["best_ask"] is None else tuple(map(to_micro, want["best_ask"])))
            assert len(snap.bids) == want["bid_levels"] and len(snap.asks) == want["ask_levels"]
            assert snap.tick == _m(want["tick_size"])
            assert snap.last_trade == _m(want["last_trade_price"])
    if "level_updates" in exp:
        (pc,) = events
        assert isinstance(pc, PriceChange)
        got = [[u.asset_id, u.side, u.price, u.size] for u in pc.updates]
        assert got == [[a, side, to_micro(p), to_micro(s)] for a, side, p, s in exp["level_updates"]]
    if "tick_size" in exp:
        (tc,) = events
        assert isinstance(tc, TickSizeChange) and tc.new_tick == to_micro(exp["tick_size"])
    if "trade" in exp:
        (tr,) = events
        p, s, side = exp["trade"]
        assert isinstance(tr, LastTrade) and (tr.price, tr.size, tr.side) == (to_micro(p), to_micro(s), side)
    if "best_bid" in exp or "best_ask" in exp:
        (bba,) = events
        assert isinstance(bba, BestBidAsk)
        assert bba.best_bid == _m(exp.get("best_bid")) and bba.best_ask == _m(exp.get("best_ask"))
    if exp.get("kind") == "unknown":
        assert isinstance(events[0], Unknown)
    if "winning_asset_id" in exp:
        (mr,) = events
        assert isinstance(mr, MarketResolved) and mr.winning_asset_id == exp["winning_asset_id"]
        assert len(mr.assets_ids) == 2


def test_pong_is_never_json_decoded_and_empty_array_is_nothing() -> None:
    assert parse_frame("PONG") == []
    assert parse_frame("[]") == []


# ---------------------------------------------------------------------------------------------- decimals


@pytest.mark.parametrize(
    ("text", "micro"),
    [("0.456", 456_000), ("219.217767", 219_217_767), (".48", 480_000), ("0.48", 480_000), ("5", 5_000_000),
     ("5.", 5_000_000), ("0", 0), ("1", MICRO), ("0.4500000", 450_000), ("0.000001", 1), ("41666.32", 41_666_320_000),
     ("0.140", 140_000)],
)
def test_to_micro_is_exact(text: str, micro: int) -> None:
    assert to_micro(text) == micro


@pytest.mark.parametrize(
    "text",
    ["0.4500001", "0.0000001", "1e-3", "1E3", "-0.5", "+0.5", "NaN", "nan", "inf", "Infinity", "", ".", "1.2.3", " 1",
     "1 ", "1_000", "\u0661", "0x10", "1" * 40],
)
def test_to_micro_refuses_anything_but_a_plain_decimal_with_at_most_6_decimals(text: str) -> None:
    with pytest.raises(ValueError):
        to_micro(text)


@given(st.integers(0, 10**15), st.integers(0, 6), st.integers(0, 3))
def test_to_micro_round_trips_every_micro_value(n: int, strip: int, zeros: int) -> None:
    whole, frac = divmod(n, MICRO)
    digits = f"{frac:06d}"
    if digits.endswith("0" * strip):
        digits = digits[: 6 - strip]
    text = f"{whole}.{digits}{'0' * zeros}" if digits or zeros else str(whole)
    assert to_micro(text) == n
    assert to_micro(text) == int(Decimal(text) * MICRO)


# ---------------------------------------------------------------------------------------------- bad entries


def _pc(*entries: dict) -> str:
    return json.dumps({"event_type": "price_change", "market": "0xm", "timestamp": "9", "price_changes": list(entries)})


def _e(asset: str = "1", price: object = "0.5", size: object = "10", side: object = "BUY", **kw: object) -> dict:
    return {"asset_id": asset, "price": price, "size": size, "side": side, **kw}


@pytest.mark.parametrize(
    "bad",
    [_e(price="1.5"), _e(price="-0.1"), _e(price="NaN"), _e(price="inf"), _e(price="abc"), _e(price="1"),
     _e(price="0"), _e(size="-3"), _e(size="1e3"), _e(side="buy"), _e(side="HOLD"), _e(price=0.5), _e(size=None),
     _e(best_bid="2"), _e(best_ask="x"), _e(price="0.12345678")],
)
def test_bad_entry_is_an_error_for_that_entry_and_the_others_survive(bad: dict) -> None:
    bad["asset_id"] = "BAD"
    items = parse_frame(_pc(_e("A", "0.4"), bad, _e("B", "0.6", side="SELL")))
    errors = [i for i in items if isinstance(i, FrameError)]
    changes = [i for i in items if isinstance(i, PriceChange)]
    assert len(errors) == 1 and errors[0].asset_id == "BAD" and len(errors[0].excerpt) <= 200
    assert [(u.asset_id, u.price) for u in changes[0].updates] == [("A", 400_000), ("B", 600_000)]


def test_legacy_changes_take_the_top_level_asset_id() -> None:
    frame = json.dumps({"event_type": "price_change", "asset_id": "7", "market": "0x1", "timestamp": "1",
                        "changes": [{"price": "0.4", "side": "SELL", "size": "3300"}]})
    (pc,) = parse_frame(frame)
    assert isinstance(pc, PriceChange) and pc.updates[0].asset_id == "7" and pc.updates[0].size == 3_300_000_000


def test_reported_bests_empty_sides() -> None:
    (pc,) = parse_frame(_pc(_e(best_bid="", best_ask="1"), _e(best_bid="0", best_ask="0.6")))
    assert [(u.best_bid, u.best_ask) for u in pc.updates] == [(0, MICRO), (0, 600_000)]
    (pc,) = parse_frame(_pc(_e()))
    assert (pc.updates[0].best_bid, pc.updates[0].best_ask) == (-1, -1)


def test_bad_snapshot_is_one_error_naming_the_asset() -> None:
    frame = json.dumps({"event_type": "book", "asset_id": "9", "market": "m", "bids": [{"price": "1.2", "size": "1"}],
                        "asks": []})
    (err,) = parse_frame(frame)
    assert isinstance(err, FrameError) and err.asset_id == "9"


def test_snapshot_drops_zero_levels_and_keeps_order_free() -> None:
    frame = json.dumps({"event_type": "book", "asset_id": "9", "market": "m",
                        "bids": [{"price": "0.1", "size": "0"}, {"price": "0.2", "size": "3"}], "asks": []})
    (snap,) = parse_frame(frame)
    assert isinstance(snap, BookSnapshot) and snap.bids == [(200_000, 3_000_000)] and snap.tick is None


@pytest.mark.parametrize(
    "frame",
    ['"text"', "5", "null", "[1, 2]", '{"no_type": 1}', '{"event_type": 5}', '{"event_type":"book","bids":"x"}',
     '{"event_type":"tick_size_change","asset_id":"1","new_tick_size":"0.03"}',
     '{"event_type":"tick_size_change","asset_id":"1"}', '{"event_type":"last_trade_price","asset_id":"1"}',
     '{"event_type":"price_change","market":"m"}', '{"event_type":"price_change","price_changes":7}', "{", "[{]"],
)
def test_malformed_frames_are_errors(frame: str) -> None:
    items = parse_frame(frame)
    assert items and all(isinstance(i, FrameError) for i in items)


def test_unknown_and_new_market_and_type_drift_in_unknown_events() -> None:
    (u,) = parse_frame('{"event_type":"brand_new","price":5,"bids":7}')  # fields clash with known types
    assert isinstance(u, Unknown) and u.event_type == "brand_new"
    (ig,) = parse_frame('{"event_type":"new_market","market":"0x1","assets_ids":["1"],"line":1.5,"tags":[1]}')
    assert isinstance(ig, Ignored)
    (ig,) = parse_frame('{"event_type":"new_market","assets_ids":[1,2],"price":0.4}')
    assert isinstance(ig, Ignored)


def test_mixed_array_keeps_order() -> None:
    frame = "[" + ",".join([
        '{"event_type":"last_trade_price","asset_id":"1","market":"m","price":"0.5","size":"1","side":"SELL"}',
        '{"event_type":"zzz"}',
        '{"event_type":"tick_size_change","asset_id":"1","market":"m","new_tick_size":"0.001"}',
    ]) + "]"
    assert [type(i) for i in parse_frame(frame)] == [LastTrade, Unknown, TickSizeChange]


def test_rest_book_body() -> None:
    body = json.dumps({"market": "m", "asset_id": "5", "timestamp": "10", "hash": "h",
                       "bids": [{"price": "0.4", "size": "1"}, {"price": "0.45", "size": "2"}],
                       "asks": [{"price": "0.6", "size": "1"}, {"price": "0.55", "size": "2"}],
                       "min_order_size": "5", "tick_size": 0.01, "neg_risk": False, "last_trade_price": "0.5"})
    (snap,) = parse_book_body(body, "5")
    assert isinstance(snap, BookSnapshot) and snap.tick == 10_000 and max(snap.bids) == (450_000, 2_000_000)
    (err,) = parse_book_body(body, "6")
    assert isinstance(err, FrameError) and err.asset_id == "6"
    (err,) = parse_book_body("{oops", "5")
    assert isinstance(err, FrameError)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["0.5", "1.5", "-1", "", "NaN", "BUY", "SELL", "book", "price_change"]),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
        st.sampled_from(["event_type", "asset_id", "price", "size", "side", "bids", "asks", "price_changes",
                         "changes", "best_bid", "best_ask", "tick_size", "new_tick_size", "market", "x"]),
        kids, max_size=6),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), json_values.map(lambda v: msgspec.json.encode(v).decode())))
def test_parse_never_raises_on_garbage(text: str) -> None:
    for frame in (text, text[: len(text) // 2]):
        items = parse_frame(frame)
        assert isinstance(items, list)
        for i in items:
            if isinstance(i, FrameError):
                assert len(i.excerpt) <= 200
