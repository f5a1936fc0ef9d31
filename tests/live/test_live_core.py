"""The live core executor (``actors.core.live``) through the real core, with a scripted venue: parsing, dedupe,
resolution, fail-closed kills, no raise on garbage, replay."""
from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.live import LiveExec, key_id, key_stand_in
from events.base import MICRO
from events.control import KillSwitch
from events.live import OpenOrdersSnapshot, ReconcileStarted, UserFrame, UserFrameError
from events.orders import ExchangeReply, Fill, OrderIntent, OrderState, Position
from replay.harness import ScriptedSession
from replay.proofs.live import ADDRESS, API_KEY, MARKET, ScriptedVenue, live_params
from replay.verify import verify

SEC = 10**9


def opened(journal: Path | None = None) -> tuple[ScriptedSession, ScriptedVenue, OrderIntent, OrderIntent]:
    s = ScriptedSession(live_params(), journal_dir=journal)
    v = ScriptedVenue(s)
    v.start()
    v.open_market()
    placed = v.serve()
    yes = next(it for it in placed if it.token_id == MARKET.yes_token)
    no = next(it for it in placed if it.token_id == MARKET.no_token)
    return s, v, yes, no


def exec_actor(s: ScriptedSession) -> LiveExec:
    return next(a for a in s.sequencer.actors if isinstance(a, LiveExec))


def test_key_id_is_a_short_hash_not_the_key() -> None:
    k = key_id(API_KEY)
    assert len(k) == 16 and API_KEY not in k and k == key_id(API_KEY)


def test_fill_statuses_dedupe_and_full_fill() -> None:
    s, v, yes, _ = opened()
    v.trade(yes, yes.size, "MATCHED", "t1")
    v.trade(yes, yes.size, "MATCHED", "t1")  # the same event twice (socket and REST reconcile)
    v.trade(yes, yes.size, "MINED", "t1")
    v.trade(yes, yes.size, "CONFIRMED", "t1")
    assert [(f.status, f.size) for f in s.events(Fill)] == [("MATCHED", yes.size), ("CONFIRMED", yes.size)]
    assert [ev.state for ev in s.events(OrderState) if ev.client_id == yes.client_id][-1] == "filled"
    assert s.events(Position)[-1].position == yes.size
    assert exec_actor(s).order_state(yes.client_id)[2] == yes.size
    assert not s.events(KillSwitch)


def test_trade_rows_of_other_makers_are_ignored_and_two_of_ours_give_two_fills() -> None:
    s, v, yes, no = opened()
    h_yes, h_no = v.signed[yes.client_id], v.signed[no.client_id]
    frame = {
        "event_type": "trade", "id": "t9", "status": "MATCHED", "taker_order_id": "0x" + "ee" * 32,
        "asset_id": yes.token_id, "side": "SELL", "size": "7", "price": "0.47", "match_time": "0",
        "maker_orders": [
            {"order_id": "0x" + "77" * 32, "owner": "someone", "maker_address": "0x" + "77" * 20,
             "matched_amount": "1", "price": "0.47", "asset_id": yes.token_id, "side": "BUY"},
            {"order_id": h_yes, "owner": API_KEY, "maker_address": ADDRESS, "matched_amount": "2",
             "price": "0.47", "asset_id": yes.token_id, "side": "BUY"},
            {"order_id": h_no, "owner": API_KEY, "maker_address": ADDRESS, "matched_amount": "4",
             "price": "0.53", "asset_id": no.token_id, "side": "BUY"},  # a mint-style match: the other token
        ],
    }
    v.frame(frame)
    fills = s.events(Fill)
    assert [(f.client_id, f.token_id, f.size, f.price) for f in fills] == [
        (yes.client_id, yes.token_id, 2 * MICRO, 470_000), (no.client_id, no.token_id, 4 * MICRO, 530_000)]
    assert not s.events(KillSwitch)


def test_a_trade_of_our_account_for_an_order_we_never_signed_halts_unless_it_is_history() -> None:
    s, v, yes, _ = opened()
    v.trade(yes, MICRO, "MATCHED", "old", order_id="0x" + "01" * 32, match_time=v.match_time - 3600)
    assert not s.events(KillSwitch)  # matched before this run started
    v.trade(yes, MICRO, "MATCHED", "new", order_id="0x" + "02" * 32, owner="not-our-key")  # ours by maker address
    [kill] = s.events(KillSwitch)
    assert kill.reason == "unknown_order" and "never signed" in kill.detail
    s2, v2, yes2, _ = opened()
    v2.trade(yes2, MICRO, "MATCHED", "new", order_id="0x" + "03" * 32, maker_address="0x" + "cd" * 20)  # by key
    assert [k.reason for k in s2.events(KillSwitch)] == ["unknown_order"]


def test_the_api_key_stand_in_is_ours_and_raw_keys_of_old_journals_still_are() -> None:
    foreign = "0x" + "cd" * 20  # not our maker address: only the owner can say the row is ours
    for owner, ours in ((key_stand_in(API_KEY), True), (API_KEY, True), (key_stand_in("another-api-key"), False),
                        ("key:" + key_id(API_KEY)[:15], False), ("key:", False)):
        s, v, yes, _ = opened()
        v.trade(yes, MICRO, "MATCHED", "new", order_id="0x" + "04" * 32, owner=owner, maker_address=foreign)
        assert [k.reason for k in s.events(KillSwitch)] == (["unknown_order"] if ours else []), owner


def test_an_order_concluded_never_landed_that_shows_up_halts() -> None:
    s = ScriptedSession(live_params())
    v = ScriptedVenue(s)
    v.start()
    v.open_market()
    placed = v.serve(unknown=(MARKET.yes_token,))
    yes = next(it for it in placed if it.token_id == MARKET.yes_token)
    v.reply(yes.client_id, ok=False, status="rejected", message="never landed: the venue does not know it")
    assert [ev.state for ev in s.events(OrderState) if ev.client_id == yes.client_id][-1] == "rejected"
    assert not s.events(KillSwitch)
    v.order_event(v.signed[yes.client_id], "PLACEMENT", "LIVE")
    assert [k.reason for k in s.events(KillSwitch)] == ["unknown_order"]


def test_snapshot_resolves_absent_orders_filled_or_cancelled() -> None:
    s, v, yes, no = opened()
    v.trade(yes, yes.size, "MATCHED", "t1")  # YES filled completely
    v.trade(no, MICRO, "MATCHED", "t2")  # NO partly
    mark = s.records[-1][0]
    v.snapshot(())
    replies = [r for r in s.events(ExchangeReply, after=mark) if r.op == "cancel"]
    assert [(r.client_id, r.status) for r in replies] == [(no.client_id, "cancelled")]
    assert "absent" in replies[0].message


def test_incomplete_snapshot_concludes_nothing_from_absence() -> None:
    s, _, _, _ = opened()
    mark = s.records[-1][0]
    s.at(SEC // 100, "user", ReconcileStarted(fence="f", source="reconnect"))
    s.at(SEC // 100, "user", OpenOrdersSnapshot(fence="f", order_ids=(), complete=False))
    assert not [r for r in s.events(ExchangeReply, after=mark) if r.op == "cancel"]


def test_venue_cancellation_is_reported_once() -> None:
    s, v, yes, _ = opened()
    h = v.signed[yes.client_id]
    v.order_event(h, "CANCELLATION", "CANCELED")
    v.order_event(h, "CANCELLATION", "CANCELED")
    v.order_event("0x" + "99" * 32, "CANCELLATION", "CANCELED")  # not ours: nothing
    replies = [r for r in s.events(ExchangeReply) if r.op == "cancel"]
    assert [(r.client_id, r.ok, r.status) for r in replies] == [(yes.client_id, True, "cancelled")]
    assert not s.events(KillSwitch)


def test_bad_frames_are_counted_never_raised() -> None:
    s, v, yes, _ = opened()
    for text in ("PONG", "{not json", "[1, 2]", '{"event_type": "surprise"}',
                 '{"event_type": "trade", "id": "x", "status": "MATCHED", "maker_orders": "no"}',
                 '{"event_type": "trade", "id": "x", "status": "WEIRD"}',
                 '{"event_type": "order"}'):
        s.at(SEC // 100, "user", UserFrame(conn=1, text=text))
    h = v.signed[yes.client_id]
    bad_price = ('{"event_type":"trade","id":"y","status":"MATCHED","maker_orders":[{"order_id":"' + h +
                 '","matched_amount":"1","price":"1.5","asset_id":"' + yes.token_id + '","side":"BUY"}]}')
    s.at(SEC // 100, "user", UserFrame(conn=1, text=bad_price))
    errors = s.events(UserFrameError)
    assert len(errors) == 8 and any("price" in e.reason for e in errors)
    assert not s.events(Fill) and not s.events(KillSwitch)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=200), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
        st.sampled_from(["event_type", "id", "status", "maker_orders", "order_id", "matched_amount", "price",
                         "side", "asset_id", "type", "owner", "maker_address", "taker_order_id", "size"]),
        kids, max_size=6),
    max_leaves=20).map(lambda o: __import__("json").dumps(o))))
def test_any_frame_never_raises(text: str) -> None:
    s, _, _, _ = opened()
    s.at(SEC // 100, "user", UserFrame(conn=1, text=text))
    assert not [k for k in s.events(KillSwitch) if k.reason == "internal_error"]


def test_a_live_core_journal_replays_bit_for_bit(tmp_path: Path) -> None:
    s, v, yes, no = opened(tmp_path / "j")
    v.trade(yes, 2 * MICRO, "MATCHED", "t1")
    v.trade(yes, 2 * MICRO, "CONFIRMED", "t1")
    v.order_event(v.signed[no.client_id], "CANCELLATION", "CANCELED")
    v.snapshot(())
    v.snapshot(("0x" + "5a" * 32,))
    s.close()
    res = verify(tmp_path / "j")
    assert res.ok, res.mismatch
