"""The API key mask of the live edges (``actors.edge.keymask``): every form of the key in every string of an event
becomes its stand-in ``key:<key_id>``, nothing else changes, and the core derives the same from masked frames as
from raw ones."""
from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.live import key_id, key_stand_in
from actors.edge.keymask import KeyMask
from events.base import MICRO
from events.control import KillSwitch
from events.live import OpenOrdersSnapshot, StartupCleanup, UserFrame
from events.orders import ExchangeReply, Fill
from replay.proofs.live import ADDRESS, API_KEY, OTHER_KEY, SEC
from tests.live.test_live_core import opened

STAND_IN = key_stand_in(API_KEY)


def test_the_stand_in_is_stable_short_and_not_the_key() -> None:
    assert STAND_IN == "key:" + key_id(API_KEY) == key_stand_in(API_KEY)
    assert API_KEY not in STAND_IN and len(STAND_IN) == 20


def test_every_string_of_an_event_is_masked_and_nothing_else_changes() -> None:
    mask = KeyMask(API_KEY)
    frame = UserFrame(conn=3, text=json.dumps({"owner": API_KEY, "trade_owner": API_KEY.upper(),
                                               "maker_orders": [{"owner": API_KEY}], "other": OTHER_KEY}))
    out = mask.event(frame)
    assert out.conn == 3 and API_KEY not in out.text and API_KEY.upper() not in out.text
    assert out.text.count(STAND_IN) == 3 and OTHER_KEY in out.text
    reply = ExchangeReply(client_id="c1", op="cancel", ok=False, order_id="0xab", message=f"HTTP 400 owner {API_KEY}")
    assert mask.event(reply) == ExchangeReply(client_id="c1", op="cancel", ok=False, order_id="0xab",
                                              message=f"HTTP 400 owner {STAND_IN}")
    cleanup = StartupCleanup(found=("0x1", API_KEY), cancelled=(), remaining=(), ok=False, detail=API_KEY)
    assert mask.event(cleanup) == StartupCleanup(found=("0x1", STAND_IN), cancelled=(), remaining=(), ok=False,
                                                 detail=STAND_IN)
    snap = OpenOrdersSnapshot(fence="f", order_ids=("0x1", "0x2"))
    assert mask.event(snap) is snap  # nothing to mask: the very same object, no copy
    assert KeyMask("").event(frame) is frame and not KeyMask("") and KeyMask(API_KEY)
    assert KeyMask("short").text("short") == "short"  # too short to be a key: never masked


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=12), st.sampled_from([API_KEY, API_KEY.upper(), API_KEY[:-1], "key:"])),
                max_size=8))
def test_masked_text_never_holds_the_key_and_text_without_it_is_unchanged(parts: list[str]) -> None:
    text = "".join(parts)
    out = KeyMask(API_KEY).text(text)
    assert API_KEY not in out and API_KEY.upper() not in out
    if API_KEY not in text and API_KEY.upper() not in text:
        assert out == text


def _derived(owner: str, maker: str, ours_order: bool, status: str, mask: KeyMask | None) -> list:
    """Fills and kill switches the core derives from one trade frame (masked or raw) of one of four shapes."""
    s, v, yes, _ = opened()
    frame = {
        "event_type": "trade", "type": "TRADE", "id": "t-9", "taker_order_id": "0x" + "ee" * 32,
        "asset_id": yes.token_id, "side": "SELL", "size": "1", "price": "0.47", "status": status,
        "match_time": str(v.match_time), "owner": OTHER_KEY, "trade_owner": owner, "maker_address": "0x" + "99" * 20,
        "maker_orders": [{"order_id": v.signed[yes.client_id] if ours_order else "0x" + "05" * 32, "owner": owner,
                          "maker_address": maker, "matched_amount": "1", "price": "0.47", "asset_id": yes.token_id,
                          "side": "BUY"}],
    }
    ev = UserFrame(conn=1, text=json.dumps(frame))
    s.at(SEC // 100, "user", mask.event(ev) if mask is not None else ev)
    return list(s.events(Fill)) + [(k.reason, k.detail) for k in s.events(KillSwitch)]


@settings(max_examples=25, deadline=None)
@given(owner=st.sampled_from([API_KEY, OTHER_KEY, "", "someone"]), maker=st.sampled_from([ADDRESS, "0x" + "cd" * 20]),
       ours_order=st.booleans(), status=st.sampled_from(["MATCHED", "CONFIRMED", "FAILED"]))
def test_the_core_derives_the_same_from_masked_frames_as_from_raw_ones(owner: str, maker: str, ours_order: bool,
                                                                        status: str) -> None:
    raw = _derived(owner, maker, ours_order, status, None)
    masked = _derived(owner, maker, ours_order, status, KeyMask(API_KEY))
    assert masked == raw
    if ours_order:
        assert [f.size for f in raw if isinstance(f, Fill)] == [MICRO]
