"""The structural gate in front of the live executor: only risk-approved actions ever reach the exchange.

``ApprovedActions`` follows the journal and turns it into the list of actions an executor may perform:
``("place", intent_seq, OrderIntent)``, ``("cancel", intent_seq, CancelIntent)`` or
``("cancel_all", seq, CancelAll)``. The rules are ``actors.core.gate.ApprovalGate``'s, the same code the paper
recorder and the simulated exchange run: an ``OrderIntent`` is placed only when a ``RiskApproved`` from the risk
gate names its seq; anything else that looks like an approval (wrong source, unknown or already decided seq, a
client id that differs) is a guard violation, recorded in ``violations``, never an action.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

from actors.core.gate import GATE_EVENTS, Action, ApprovalGate
from events.codec import Envelope
from events.control import GuardViolation

__all__ = ["Action", "ApprovedActions", "approved_actions"]


class ApprovedActions:
    """Stateful filter: feed it records in seq order, get the actions an executor may take."""

    def __init__(self) -> None:
        self._gate = ApprovalGate()
        self.violations: list[str] = []
        """One line per refused approval or cancel-all: ``"seq N: what was wrong"``."""

    def wants(self, env: Envelope) -> bool:
        return isinstance(env.ev, GATE_EVENTS)

    def feed(self, seq: int, env: Envelope) -> Action | None:
        action = self._gate.feed(seq, env)
        if isinstance(action, GuardViolation):
            self.violations.append(f"seq {action.seq}: {action.detail}")
            return None
        return action


def approved_actions(records: Iterable[tuple[int, Envelope]]) -> Iterator[Action]:
    gate = ApprovedActions()
    for seq, env in records:
        action = gate.feed(seq, env)
        if action is not None:
            yield action
