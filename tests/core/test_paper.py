"""The paper recorder (no fills): records would-place/would-cancel, acks like an exchange, never fills."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.paper import PaperRecorder
from events.base import MICRO, Event
from events.codec import Envelope
from events.control import GuardViolation
from events.orders import CancelAll, CancelIntent, ExchangeReply, Fill, OrderIntent, RiskApproved, RiskReject
from events.paper import WouldCancel, WouldPlace
from events.params import CoreParams


class Rec:
    def __init__(self) -> None:
        self.rec = PaperRecorder(CoreParams(fills="none"))
        self.seq = 0
        self.out: list[Event] = []

    def send(self, ev: Event, src: str) -> list[Event]:
        self.seq += 1
        out = list(self.rec.step(self.seq, Envelope(ts_ns=1, src=src, cause=0, ev=ev)))
        self.seq += len(out)
        self.out += out
        return out

    def intent(self, cid: str, price: int = 470_000) -> int:
        self.send(OrderIntent(client_id=cid, condition_id="0xm", token_id="Y", side="BUY", price=price,
                              size=10 * MICRO), "orders")
        return self.seq

    def place(self, cid: str, price: int = 470_000) -> list[Event]:
        return self.send(RiskApproved(intent_seq=self.intent(cid, price), client_id=cid), "risk")

    def cancel(self, cid: str) -> list[Event]:
        self.send(CancelIntent(client_id=cid, reason="refresh"), "orders")
        return self.send(RiskApproved(intent_seq=self.seq, client_id=cid), "risk")


def test_approved_place_then_would_place_and_live_ack() -> None:
    r = Rec()
    seq = r.intent("o5.0")
    out = r.send(RiskApproved(intent_seq=seq, client_id="o5.0"), "risk")
    assert out == [
        WouldPlace(intent_seq=seq, client_id="o5.0", condition_id="0xm", token_id="Y", side="BUY", price=470_000,
                   size=10 * MICRO),
        ExchangeReply(client_id="o5.0", op="place", ok=True, order_id="paper-o5.0", status="live"),
    ]


def test_intent_without_approval_then_nothing() -> None:
    r = Rec()
    assert r.send(OrderIntent(client_id="a", condition_id="0xm", token_id="Y", side="BUY", price=1, size=1),
                  "orders") == []
    seq = r.seq
    r.send(RiskReject(intent_seq=seq, client_id="a", code="price_band"), "risk")
    out = r.send(RiskApproved(intent_seq=seq, client_id="a"), "risk")  # approval after a reject: refused
    assert len(out) == 1 and isinstance(out[0], GuardViolation)
    assert not r.rec.open


def test_approval_not_from_risk_or_for_unknown_intent_then_refused() -> None:
    r = Rec()
    seq = r.intent("a")
    assert isinstance(r.send(RiskApproved(intent_seq=seq, client_id="a"), "orders")[0], GuardViolation)
    assert isinstance(r.send(RiskApproved(intent_seq=12345, client_id="a"), "risk")[0], GuardViolation)
    seq = r.intent("b")
    assert isinstance(r.send(RiskApproved(intent_seq=seq, client_id="c"), "risk")[0], GuardViolation)
    assert not r.rec.open


def test_duplicate_client_id_then_rejected() -> None:
    r = Rec()
    r.place("a")
    (rep,) = r.place("a")
    assert (rep.ok, rep.message) == (False, "paper: duplicate client_id")  # type: ignore[union-attr]


def test_approved_cancel_then_would_cancel_and_cancelled_reply() -> None:
    r = Rec()
    r.place("a")
    out = r.cancel("a")
    assert out == [
        WouldCancel(intent_seq=r.seq - 3, client_id="a", reason="refresh"),
        ExchangeReply(client_id="a", op="cancel", ok=True, order_id="paper-a", status="cancelled"),
    ]
    (again,) = r.cancel("a")
    assert (again.ok, again.message) == (False, "paper: order already cancelled")  # type: ignore[union-attr]
    (unknown,) = r.cancel("zz")
    assert (unknown.ok, unknown.message) == (False, "paper: unknown order")  # type: ignore[union-attr]


def test_cancel_all_then_sorted_per_order_replies_then_cancel_all() -> None:
    r = Rec()
    for cid in ("o9.0", "o10.0", "o2.1"):
        r.place(cid)
    r.cancel("o2.1")
    out = r.send(CancelAll(reason="kill"), "risk")
    assert [(type(e).__name__, e.client_id) for e in out] == [  # type: ignore[attr-defined]
        ("WouldCancel", "o10.0"), ("ExchangeReply", "o10.0"), ("WouldCancel", "o9.0"), ("ExchangeReply", "o9.0"),
        ("ExchangeReply", ""),
    ]
    assert out[-1] == ExchangeReply(client_id="", op="cancel_all", ok=True)
    assert not r.rec.open
    assert r.send(CancelAll(reason="again"), "risk") == [ExchangeReply(client_id="", op="cancel_all", ok=True)]
    assert isinstance(r.send(CancelAll(reason="x"), "operator")[0], GuardViolation)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["place", "cancel", "all", "intent"]), st.integers(0, 5)), max_size=40))
def test_property_never_fills_and_acks_only_approved(script: list[tuple[str, int]]) -> None:
    r = Rec()
    approved: set[str] = set()
    for op, i in script:
        cid = f"c{i}"
        if op == "place":
            r.place(cid)
            approved.add(cid)
        elif op == "cancel":
            r.cancel(cid)
        elif op == "intent":
            r.intent(f"never{i}")
        else:
            r.send(CancelAll(reason="x"), "risk")
    assert not any(isinstance(e, Fill) for e in r.out)
    placed = {e.client_id for e in r.out if isinstance(e, ExchangeReply) and e.op == "place" and e.ok}
    assert placed <= approved
    assert {e.client_id for e in r.out if isinstance(e, WouldPlace)} == placed
