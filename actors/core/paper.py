"""The paper recorder: the no-fills executor (``params.fills == "none"``).

It stands where an exchange would be and answers like one that accepts everything and never trades:

- ``RiskApproved`` for an ``OrderIntent`` -> ``WouldPlace`` (what would have been sent) and
  ``ExchangeReply(op="place", ok=True, order_id="paper-<client_id>", status="live")``. The order is then open.
- ``RiskApproved`` for a ``CancelIntent`` of an open order -> ``WouldCancel`` and
  ``ExchangeReply(op="cancel", ok=True, status="cancelled")``; of an order that is not open -> ``ok=False``.
- ``CancelAll`` from the risk gate -> for each open order, sorted by client id, ``WouldCancel`` and a cancel
  reply; then one ``ExchangeReply(op="cancel_all", client_id="", ok=True)``.
- It never fills: no ``Fill`` ever comes out of it, so positions stay flat in no-fills paper trading.

It acts only on what the structural gate (``actors.core.gate.ApprovalGate``, shared by every executor) lets
through: an approval that is not from the risk gate, names an intent it never saw, or whose client id differs
from the intent's, is refused with a ``GuardViolation`` and nothing is done. A second approval for a client id
that was already placed is answered ``ok=False``, as an exchange answers a duplicate order.
"""
from __future__ import annotations

from typing import ClassVar

from actors.core.gate import GATE_EVENTS, ApprovalGate
from events.base import Event
from events.codec import Envelope
from events.control import GuardViolation
from events.orders import ExchangeReply, OrderIntent
from events.paper import WouldCancel, WouldPlace
from events.params import CoreParams

class PaperRecorder:
    """No-fills executor: records what would be placed and cancelled, acks it, never fills."""

    name: ClassVar[str] = "exec"
    consumes: ClassVar[tuple[type[Event], ...]] = GATE_EVENTS

    def __init__(self, params: CoreParams) -> None:
        self.params = params
        self._gate = ApprovalGate()
        self.open: dict[str, WouldPlace] = {}
        """Open (would-be resting) orders by client id, in placement order."""
        self._closed: set[str] = set()
        """Client ids that were placed and later cancelled (membership only, never iterated)."""

    def step(self, seq: int, env: Envelope) -> list[Event]:
        action = self._gate.feed(seq, env)
        if action is None:
            return []
        if isinstance(action, GuardViolation):
            return [action]
        kind, aseq, ev = action
        if kind == "place":
            return self._place(aseq, ev)  # type: ignore[arg-type]
        if kind == "cancel":
            return self._cancel(aseq, ev.client_id, ev.reason)  # type: ignore[union-attr]
        out: list[Event] = []
        for client_id in sorted(self.open):
            out += self._cancel(aseq, client_id, ev.reason)  # type: ignore[union-attr]
        out.append(ExchangeReply(client_id="", op="cancel_all", ok=True))
        return out

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
