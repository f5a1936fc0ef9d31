"""The structural gate (actors.core.gate), and that every executor acts on exactly what it lets through."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.gate import ApprovalGate, IntentMemory
from actors.core.paper import PaperRecorder
from actors.sink.gate import ApprovedActions
from events.base import MICRO, Event
from events.codec import Envelope
from events.control import GuardViolation
from events.orders import CancelAll, CancelIntent, OrderIntent, RiskApproved, RiskReject
from events.paper import WouldCancel, WouldPlace
from events.params import CoreParams

SOURCES = ("risk", "orders", "operator", "exec")


def intent(cid: str) -> OrderIntent:
    return OrderIntent(client_id=cid, condition_id="0xm", token_id="Y", side="BUY", price=470_000, size=10 * MICRO)


# A script step: (kind, source, client id index, which earlier intent an approval/reject names)
steps = st.lists(
    st.tuples(
        st.sampled_from(["place", "cancel", "approve", "reject", "cancel_all"]),
        st.sampled_from(SOURCES),
        st.integers(0, 3),
        st.integers(-1, 8),
    ),
    max_size=40,
)


def records(script: list[tuple[str, str, int, int]]) -> list[tuple[int, Envelope]]:
    """Journal-like records: intents from the order manager, decisions from a random source."""
    out: list[tuple[int, Envelope]] = []
    intents: list[tuple[int, str]] = []
    for kind, src, c, back in script:
        seq = len(out) + 1
        cid = f"c{c}"
        if kind == "place":
            ev: Event = intent(cid)
            intents.append((seq, cid))
            src = "orders"
        elif kind == "cancel":
            ev = CancelIntent(client_id=cid, reason="refresh")
            intents.append((seq, cid))
            src = "orders"
        elif kind in ("approve", "reject"):
            # name a recent intent (or a seq that never was one), sometimes with another client id
            iseq, icid = intents[-1 - back] if 0 <= back < len(intents) else (seq + 1000, cid)
            named = icid if c != 3 else "other"
            ev = RiskApproved(intent_seq=iseq, client_id=named) if kind == "approve" else RiskReject(
                intent_seq=iseq, client_id=named, code="max_order", detail="x")
        else:
            ev = CancelAll(reason="kill")
        out.append((seq, Envelope(ts_ns=1, src=src, cause=0, ev=ev)))
    return out


@settings(max_examples=300, deadline=None)
@given(steps)
def test_property_actions_only_for_risk_approved_undecided_intents(script) -> None:
    recs = records(script)
    gate = ApprovalGate()
    decided: set[int] = set()
    for seq, env in recs:
        ev = env.ev
        was_pending = isinstance(ev, RiskApproved) and ev.intent_seq not in decided
        res = gate.feed(seq, env)
        if isinstance(ev, (OrderIntent, CancelIntent)):
            assert res is None
        elif isinstance(ev, RiskReject):
            assert res is None
            decided.add(ev.intent_seq)
        elif isinstance(ev, CancelAll):
            assert (res == ("cancel_all", seq, ev)) == (env.src == "risk")
            assert isinstance(res, GuardViolation) == (env.src != "risk")
        else:
            assert isinstance(ev, RiskApproved)
            if isinstance(res, tuple):  # an action: from risk, for a remembered, undecided intent, same client id
                kind, iseq, it = res
                target = dict(recs)[iseq].ev
                assert env.src == "risk" and was_pending and iseq == ev.intent_seq
                assert it is target and it.client_id == ev.client_id
                assert kind == ("place" if isinstance(it, OrderIntent) else "cancel")
            else:
                assert isinstance(res, GuardViolation) and res.seq == seq
            if env.src == "risk":
                decided.add(ev.intent_seq)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_property_every_executor_agrees_with_the_gate(script) -> None:
    """The live executor's gate and the paper recorder act on exactly the gate's actions and refuse the rest."""
    recs = records(script)
    gate, sink, paper = ApprovalGate(), ApprovedActions(), PaperRecorder(CoreParams(fills="none"))
    expected, violations, acted, paper_refusals, paper_places = [], 0, [], 0, set()
    for seq, env in recs:
        res = gate.feed(seq, env)
        if isinstance(res, GuardViolation):
            violations += 1
        elif res is not None:
            expected.append(res)
        action = sink.feed(seq, env)
        if action is not None:
            acted.append(action)
        for ev in paper.step(seq, env):
            if isinstance(ev, GuardViolation):
                paper_refusals += 1
            elif isinstance(ev, WouldPlace):
                paper_places.add(ev.intent_seq)
            elif isinstance(ev, WouldCancel):
                assert any(a[0] in ("cancel", "cancel_all") for a in expected)
    assert acted == expected
    assert len(sink.violations) == violations == paper_refusals
    assert all(v.startswith("seq ") for v in sink.violations)
    assert paper_places <= {iseq for kind, iseq, _ in expected if kind == "place"}


def test_second_approval_of_the_same_intent_is_refused() -> None:
    gate = ApprovalGate()
    gate.feed(1, Envelope(ts_ns=1, src="orders", cause=0, ev=intent("a")))
    assert gate.feed(2, Envelope(ts_ns=1, src="risk", cause=1, ev=RiskApproved(intent_seq=1, client_id="a")))[0] == "place"
    again = gate.feed(3, Envelope(ts_ns=1, src="risk", cause=1, ev=RiskApproved(intent_seq=1, client_id="a")))
    assert isinstance(again, GuardViolation) and "already decided intent seq 1" in again.detail


def test_intent_memory_is_bounded_oldest_first() -> None:
    mem = IntentMemory(cap=2)
    for seq in (1, 2, 3):
        mem.remember(seq, intent(f"c{seq}"))
    assert len(mem) == 2 and mem.take(1) is None and mem.take(3) is not None
