"""The structural gate in front of every executor: only risk-approved actions ever reach the exchange.

``ApprovedActions`` follows the journal and turns it into the list of actions an executor may perform:
``("place", OrderIntent)``, ``("cancel", CancelIntent)`` or ``("cancel_all", CancelAll)``. An ``OrderIntent`` is
placed only when a ``RiskApproved`` from the risk gate names its seq; anything else that looks like an
approval (wrong source, unknown seq, an approval of a rejected intent) is a guard violation, never an action.
Every executor (paper recorder aside, which is itself a core actor) takes its work from here.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

from events.codec import Envelope
from events.orders import CancelAll, CancelIntent, OrderIntent, RiskApproved, RiskReject

Action = tuple[Literal["place", "cancel", "cancel_all"], int, OrderIntent | CancelIntent | CancelAll]


class ApprovedActions:
    """Stateful filter: feed it records in seq order, get the actions an executor may take."""

    def __init__(self) -> None:
        self._pending: dict[int, OrderIntent | CancelIntent] = {}
        self._rejected: set[int] = set()
        self.violations: list[str] = []

    def wants(self, env: Envelope) -> bool:
        return isinstance(env.ev, (OrderIntent, CancelIntent, RiskApproved, RiskReject, CancelAll))

    def feed(self, seq: int, env: Envelope) -> Action | None:
        ev = env.ev
        if isinstance(ev, (OrderIntent, CancelIntent)):
            self._pending[seq] = ev
            return None
        if isinstance(ev, RiskReject):
            self._pending.pop(ev.intent_seq, None)
            self._rejected.add(ev.intent_seq)
            return None
        if isinstance(ev, CancelAll):
            return ("cancel_all", seq, ev) if env.src == "risk" else self._violation(seq, "CancelAll not from risk")
        if isinstance(ev, RiskApproved):
            if env.src != "risk":
                return self._violation(seq, f"approval from {env.src!r}, not the risk gate")
            intent = self._pending.pop(ev.intent_seq, None)
            if intent is None:
                why = "a rejected intent" if ev.intent_seq in self._rejected else "an unknown intent"
                return self._violation(seq, f"approval of {why} (seq {ev.intent_seq})")
            if intent.client_id != ev.client_id:
                return self._violation(seq, f"approval client id {ev.client_id} != intent's {intent.client_id}")
            return ("place", ev.intent_seq, intent) if isinstance(intent, OrderIntent) else ("cancel", ev.intent_seq, intent)
        return None

    def _violation(self, seq: int, detail: str) -> None:
        self.violations.append(f"seq {seq}: {detail}")
        return None


def approved_actions(records: Iterable[tuple[int, Envelope]]) -> Iterator[Action]:
    gate = ApprovedActions()
    for seq, env in records:
        action = gate.feed(seq, env)
        if action is not None:
            yield action
