"""The paper recorder: the no-fills executor (``params.fills == "none"``).

It stands where an exchange would be and answers like one that accepts everything and never trades:

- ``RiskApproved`` for an ``OrderIntent`` -> ``WouldPlace`` (what would have been sent) and
  ``ExchangeReply(op="place", ok=True, order_id="paper-<client_id>", status="live")``. The order is then open.
- ``RiskApproved`` for a ``CancelIntent`` of an open order -> ``WouldCancel`` and
  ``ExchangeReply(op="cancel", ok=True, status="cancelled")``; of an order that is not open -> ``ok=False``.
- ``CancelAll`` from the risk gate -> for each open order, sorted by client id, ``WouldCancel`` and a cancel
  reply; then one ``ExchangeReply(op="cancel_all", client_id="", ok=True)``.
- It never fills: no ``Fill`` ever comes out of it, so positions stay flat in no-fills paper trading.

It acts only on approvals. An ``OrderIntent`` or ``CancelIntent`` on its own is only remembered (by seq) so the
approval can be matched to it; a ``RiskReject`` forgets it. An approval that is not from the risk gate, names an
intent it never saw, or whose client id differs from the intent's, is refused with a ``GuardViolation`` and
nothing is done. A second approval for a client id that was already placed is answered ``ok=False``, as an
exchange answers a duplicate order.

``IntentMemory`` and ``check_approval`` are shared with the simulated exchange (``actors.core.sim_exchange``).
"""
from __future__ import annotations

from typing import ClassVar

from events.base import Event
from events.codec import Envelope
from events.control import GuardViolation
from events.orders import CancelAll, CancelIntent, ExchangeReply, OrderIntent, RiskApproved, RiskReject
from events.paper import WouldCancel, WouldPlace
from events.params import CoreParams

RISK_SRC = "risk"
"""The only source whose approvals and cancel-alls an executor acts on."""
MAX_PENDING_INTENTS = 10_000
"""Intents awaiting a risk decision that are remembered; beyond this the oldest is forgotten (a safety bound:
the risk gate decides every intent in the same cascade, so in practice this holds one or two)."""

Intent = OrderIntent | CancelIntent


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
    """The intent an approval refers to, or the ``GuardViolation`` refusing it."""
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


class PaperRecorder:
    """No-fills executor: records what would be placed and cancelled, acks it, never fills."""

    name: ClassVar[str] = "exec"
    consumes: ClassVar[tuple[type[Event], ...]] = (OrderIntent, CancelIntent, RiskApproved, RiskReject, CancelAll)

    def __init__(self, params: CoreParams) -> None:
        self.params = params
        self._intents = IntentMemory()
        self.open: dict[str, WouldPlace] = {}
        """Open (would-be resting) orders by client id, in placement order."""
        self._closed: set[str] = set()
        """Client ids that were placed and later cancelled (membership only, never iterated)."""

    def step(self, seq: int, env: Envelope) -> list[Event]:
        ev = env.ev
        if isinstance(ev, (OrderIntent, CancelIntent)):
            self._intents.remember(seq, ev)
            return []
        if isinstance(ev, RiskReject):
            self._intents.forget(ev.intent_seq)
            return []
        if isinstance(ev, RiskApproved):
            intent = check_approval(seq, env, ev, self._intents)
            if isinstance(intent, GuardViolation):
                return [intent]
            if isinstance(intent, OrderIntent):
                return self._place(ev.intent_seq, intent)
            return self._cancel(ev.intent_seq, intent.client_id, intent.reason)
        if isinstance(ev, CancelAll):
            if env.src != RISK_SRC:
                return [GuardViolation(seq=seq, detail=f"cancel-all from {env.src!r}, not from the risk gate")]
            out: list[Event] = []
            for client_id in sorted(self.open):
                out += self._cancel(seq, client_id, ev.reason)
            out.append(ExchangeReply(client_id="", op="cancel_all", ok=True))
            return out
        return []

    def _place(self, intent_seq: int, it: OrderIntent) -> list[Event]:
        if it.client_id in self.open or it.client_id in self._closed:
            return [ExchangeReply(client_id=it.client_id, op="place", ok=False, status="rejected",
                                  message="paper: duplicate client_id")]
        would = WouldPlace(
            intent_seq=intent_seq,
            client_id=it.client_id,
            condition_id=it.condition_id,
            token_id=it.token_id,
            side=it.side,
            price=it.price,
            size=it.size,
            post_only=it.post_only,
        )
        self.open[it.client_id] = would
        reply = ExchangeReply(client_id=it.client_id, op="place", ok=True, order_id=f"paper-{it.client_id}", status="live")
        return [would, reply]

    def _cancel(self, intent_seq: int, client_id: str, reason: str) -> list[Event]:
        if self.open.pop(client_id, None) is None:
            msg = "paper: order already cancelled" if client_id in self._closed else "paper: unknown order"
            return [ExchangeReply(client_id=client_id, op="cancel", ok=False, message=msg)]
        self._closed.add(client_id)
        return [
            WouldCancel(intent_seq=intent_seq, client_id=client_id, reason=reason),
            ExchangeReply(client_id=client_id, op="cancel", ok=True, order_id=f"paper-{client_id}", status="cancelled"),
        ]
