"""The event vocabulary: round trips, canonical bytes, bounds, the pinned schema fingerprint, golden bytes."""
from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import ALL_EVENTS, SCHEMA_FINGERPRINT, Envelope, EventDecodeError, decode, encode
from events.control import RunStarted, Tick
from events.live import StartingInventory, TokenBalance
from events.market import BookChanged, FeedFrame
from events.orders import OrderIntent, Quote, DesiredQuotes
from events.params import CoreParams
from tests.strategies import envelopes, struct_strategy

GOLDEN = Path(__file__).with_name("golden_events.hex")



@settings(max_examples=300)
@given(envelopes)
def test_every_event_round_trips_and_encodes_canonically(env: Envelope) -> None:
    blob = encode(env)
    back = decode(blob)
    assert back == env
    assert encode(back) == blob


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=lambda c: c.__name__)
@settings(max_examples=25)
@given(data=st.data())
def test_each_event_type_round_trips(cls: type, data: st.DataObject) -> None:
    ev = data.draw(struct_strategy(cls))
    env = Envelope(ts_ns=1, src="x", cause=0, ev=ev)
    assert decode(encode(env)).ev == ev


def test_tags_are_unique_short_and_explicit() -> None:
    tags = [c.__struct_config__.tag for c in ALL_EVENTS]
    assert len(tags) == len(set(tags))
    assert all(isinstance(t, str) and 1 <= len(t) <= 4 for t in tags)


def test_decode_when_price_out_of_bounds_then_refused() -> None:
    env = Envelope(ts_ns=1, src="book", cause=1, ev=BookChanged(
        token_id="t", epoch=0, valid=True, best_bid=1, bid_size=1, best_ask=2, ask_size=1, tick=1))
    raw = msgspec.msgpack.decode(encode(env))
    raw[3][4] = 1_000_001  # best_bid above one dollar
    with pytest.raises(EventDecodeError, match=r"Expected `int` <= 1000000"):
        decode(msgspec.msgpack.encode(raw))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1, 0.5])
def test_decode_when_price_is_nan_inf_negative_or_float_then_refused(bad: object) -> None:
    env = Envelope(ts_ns=1, src="orders", cause=1, ev=OrderIntent(
        client_id="c", condition_id="m", token_id="t", side="BUY", price=1, size=1))
    raw = msgspec.msgpack.decode(encode(env))
    raw[3][5] = bad  # price
    with pytest.raises(EventDecodeError):
        decode(msgspec.msgpack.encode(raw))


def test_decode_when_unknown_tag_then_one_line_error() -> None:
    raw = msgspec.msgpack.encode([1, "feed", 0, ["zz", 1]])
    with pytest.raises(EventDecodeError, match=r"^Invalid value 'zz'") as info:
        decode(raw)
    assert "\n" not in str(info.value)


def test_decode_when_truncated_then_error() -> None:
    blob = encode(Envelope(ts_ns=1, src="feed", cause=0, ev=FeedFrame(conn=1, text="x" * 50)))
    for cut in range(len(blob)):
        with pytest.raises(EventDecodeError):
            decode(blob[:cut])


def test_schema_fingerprint_is_pinned() -> None:
    pinned = Path(__file__).with_name("schema_fingerprint.txt").read_text().strip()
    assert SCHEMA_FINGERPRINT == pinned, (
        "the event schema changed: if deliberate, write the new fingerprint to tests/schema_fingerprint.txt "
        "and bump events.codec.SCHEMA_VERSION if old journals no longer decode"
    )


def golden_envelopes() -> list[Envelope]:
    return [
        Envelope(ts_ns=1_700_000_000_000_000_000, src="session", cause=0, ev=RunStarted(
            run_id="golden", mode="prove", version="0", seed=7, config_hash="c0ffee", params=CoreParams())),
        Envelope(ts_ns=1_700_000_000_000_000_001, src="feed", cause=0, ev=FeedFrame(conn=3, text='[{"a":"0.5"}]')),
        Envelope(ts_ns=1_700_000_000_000_000_002, src="clock", cause=0, ev=Tick()),
        Envelope(ts_ns=1_700_000_000_000_000_002, src="quoter", cause=3, ev=DesiredQuotes(
            condition_id="0xm", quotes=(Quote(token_id="1", side="BUY", price=470_000, size=10_000_000),),
            fair=480_000)),
        Envelope(ts_ns=1_700_000_000_000_000_002, src="orders", cause=4, ev=OrderIntent(
            client_id="o4.0", condition_id="0xm", token_id="1", side="BUY", price=470_000, size=10_000_000)),
        Envelope(ts_ns=1_700_000_000_000_000_003, src="session", cause=0, ev=StartingInventory(
            balances=(TokenBalance(token_id="1", balance=30_000_000), TokenBalance(token_id="2", balance=0)),
            detail="held: 30 shares of 1", expected=(TokenBalance(token_id="1", balance=30_000_000),),
            expected_run="golden-0", tolerance=10_000)),
    ]


def test_golden_bytes_are_stable() -> None:
    got = "\n".join(encode(e).hex() for e in golden_envelopes()) + "\n"
    assert got == GOLDEN.read_text(), "event encoding changed: a journal format change (see the docstring above)"
