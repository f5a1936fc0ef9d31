"""Risk-gate events beyond the shared order vocabulary in ``events.orders`` (family owned by the risk gate).

The decisions themselves (``RiskApproved``, ``RiskReject``, ``CancelAll``) live in ``events.orders`` and the kill
switch and trading state in ``events.control``; this module holds the machine-readable reject codes and the
operator's "reduce only" input.
"""
from __future__ import annotations

from typing import Literal

from events.base import Event

RejectCode = Literal[
    "not_started",
    "halted",
    "reducing_only",
    "not_allowlisted",
    "not_post_only",
    "size_limit",
    "notional_limit",
    "feed_down",
    "no_reference_price",
    "off_tick",
    "price_range",
    "price_band",
    "would_cross",
    "unknown_order_pending",
    "fill_burst",
    "duplicate",
    "open_orders_limit",
    "position_limit",
    "insufficient_position",
    "total_notional_limit",
    "throttled",
    "unknown_order",
]
"""Every value ``RiskReject.code`` can take (the field itself stays a plain ``str`` for schema stability).

Place checks run in this order and the first failure is the code: not_started, halted, duplicate (reused client
id), not_allowlisted, not_post_only, reducing_only, size_limit, notional_limit, feed_down, no_reference_price,
off_tick, price_range, price_band, would_cross, unknown_order_pending, fill_burst, duplicate (same order resting),
open_orders_limit, position_limit (buys), insufficient_position (sells beyond what is surely held),
total_notional_limit, throttled. ``unknown_order`` is the only code a cancel can get: it names an order the gate
never approved.
"""

REJECT_CODES: tuple[str, ...] = RejectCode.__args__  # type: ignore[attr-defined]


class ReduceOnly(Event, tag="rdo"):
    """The operator asks the risk gate to stop adding risk: trading state REDUCING (only orders that reduce a
    position pass) for the rest of the run. A kill switch still goes further (HALTED)."""

    reason: str = "operator reduce"
