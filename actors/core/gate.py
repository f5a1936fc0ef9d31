"""The structural gate in front of every executor: only what the risk gate approved is ever acted on.

One implementation, used by every executor: the paper recorder and the simulated exchange (core actors, which
journal a refusal as a ``GuardViolation``) and the live executor (``actors.sink.gate.ApprovedActions``, which
records it and journals it from its edge). Pure: no clock, no I/O.

Rules (``ApprovalGate.feed``, records in seq order):

- An ``OrderIntent`` or ``CancelIntent`` on its own is only remembered, by seq, so an approval can be matched to
  it; a ``RiskReject`` forgets it. Nothing is acted on without an approval.
- A ``RiskApproved`` from the risk gate that names a remembered intent with the same client id gives the action
  ``("place", intent_seq, OrderIntent)`` or ``("cancel", intent_seq, CancelIntent)``, once: the intent is
  forgotten, so a second approval of it is refused.
- A ``CancelAll`` from the risk gate gives ``("cancel_all", seq, CancelAll)``.
- Anything else that looks like an approval (another source, an intent never seen or already decided, a client
  id that differs from the intent's, a cancel-all from another source) gives a ``GuardViolation`` naming it, and
  no action.
"""
from __future__ import annotations

from typing import Literal

from events.codec import Envelope
from events.control import GuardViolation
from events.orders import CancelAll, CancelIntent, OrderIntent, RiskApproved, RiskReject

RISK_SRC = "risk"
"""The only source whose approvals and cancel-alls an executor acts on."""
MAX_PENDING_INTENTS = 10_000
"""Intents awaiting a risk decision that are remembered; beyond this the oldest is forgotten (a safety bound:
the risk gate decides every intent in the same cascade, so in practice this holds one or two)."""

Intent = OrderIntent | CancelIntent
Action = tuple[Literal["place", "cancel", "cancel_all"], int, OrderIntent | CancelIntent | CancelAll]
"""``(kind, seq, event)``: ``seq`` is the intent's seq for place/cancel, the ``CancelAll``'s own for cancel_all."""
GATE_EVENTS: tuple[type, ...] = (OrderIntent, CancelIntent, RiskApproved, RiskReject, CancelAll)
"""The events the gate reads; it ignores every other."""


class IntentMemory:
    """Intents by seq, until the risk gate approves or rejects them. Insertion-ordered, bounded."""

    def __init__(self, cap: int = MAX_PENDING_INTENTS) -> None:
        self._by_seq: dict[int, Intent] = {}
        self._cap = cap

    def remember(self, seq: int, intent: Intent) -> None:
        self._by_seq[seq] = intent
        while len(self._by_seq) > self._cap:
            del self._by_seq[next(iter(self._by_seq))]

    def take(self, seq: int) -> Intent | None:
        return self._by_seq.pop(seq, None)

    def forget(self, seq: int) -> None:
        self._by_seq.pop(seq, None)

    def __len__(self) -> int:
        return len(self._by_seq)


def check_approval(seq: int, env: Envelope, approval: RiskApproved, memory: IntentMemory) -> Intent | GuardViolation:
    """The intent an approval refers to (taken out of ``memory``), or the ``GuardViolation`` refusing it."""
    if env.src != RISK_SRC:
        return GuardViolation(seq=seq, detail=f"approval from {env.src!r}, not from the risk gate: not acted on")
    intent = memory.take(approval.intent_seq)
    if intent is None:
        return GuardViolation(seq=seq, detail=f"approval of unknown or already decided intent seq {approval.intent_seq}")
    if intent.client_id != approval.client_id:
        return GuardViolation(
            seq=seq,
            detail=f"approval names client {approval.client_id!r}, intent {approval.intent_seq} is {intent.client_id!r}",
        )
    return intent


def check_cancel_all(seq: int, env: Envelope) -> GuardViolation | None:
    """None when a ``CancelAll`` may be acted on (it comes from the risk gate), else the violation."""
    if env.src != RISK_SRC:
        return GuardViolation(seq=seq, detail=f"cancel-all from {env.src!r}, not from the risk gate")
    return None


class ApprovalGate:
    """Stateful filter over the journal: ``feed`` records in seq order, get actions and violations."""

    def __init__(self, cap: int = MAX_PENDING_INTENTS) -> None:
        self.intents = IntentMemory(cap)

    def feed(self, seq: int, env: Envelope) -> Action | GuardViolation | None:
        ev = env.ev
        if isinstance(ev, (OrderIntent, CancelIntent)):
            self.intents.remember(seq, ev)
            return None
        if isinstance(ev, RiskReject):
            self.intents.forget(ev.intent_seq)
            return None
        if isinstance(ev, RiskApproved):
            intent = check_approval(seq, env, ev, self.intents)
            if isinstance(intent, GuardViolation):
                return intent
            if isinstance(intent, OrderIntent):
                return ("place", ev.intent_seq, intent)
            return ("cancel", ev.intent_seq, intent)
        if isinstance(ev, CancelAll):
            return check_cancel_all(seq, env) or ("cancel_all", seq, ev)
        return None
