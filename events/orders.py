"""Quoting and order events: desired quotes, intents, risk decisions, exchange replies, fills, positions."""
from __future__ import annotations

from typing import Literal

from events.base import Event, Notional, Price, Record, Seq, Side, SignedSize, Size

OrderOp = Literal["place", "cancel", "cancel_all"]


class Quote(Record):
    """One desired resting order."""

    token_id: str
    side: Side
    price: Price
    size: Size


class DesiredQuotes(Event, tag="dq"):
    """What the quoter wants resting in one market right now (empty: nothing)."""

    condition_id: str
    quotes: tuple[Quote, ...]
    fair: Price
    reason: str = ""


class RewardEstimate(Event, tag="rw"):
    """Estimated liquidity-reward score of quotes, S = ((v - s) / v)^2 * size, in micro-shares."""

    condition_id: str
    score: int
    two_sided: bool


class OrderIntent(Event, tag="oi"):
    """The order manager wants this order placed. Reaches the exchange only after ``RiskApproved``."""

    client_id: str
    condition_id: str
    token_id: str
    side: Side
    price: Price
    size: Size
    post_only: bool = True


class CancelIntent(Event, tag="ci"):
    """The order manager wants this order cancelled. Cancels always pass the risk gate."""

    client_id: str
    reason: str = ""


class CancelAll(Event, tag="ca"):
    """Cancel every open order (kill switch, stop). Never throttled, never waits for durability."""

    reason: str


class RiskApproved(Event, tag="ok"):
    """The risk gate passed the intent journaled at ``intent_seq``: the only thing an executor acts on."""

    intent_seq: Seq
    client_id: str


class RiskReject(Event, tag="rj"):
    """The risk gate refused the intent at ``intent_seq``, with a machine-readable code."""

    intent_seq: Seq
    client_id: str
    code: str
    detail: str = ""


class ExchangeReply(Event, tag="xr"):
    """What the exchange (or a paper executor) answered to a place or cancel."""

    client_id: str
    op: OrderOp
    ok: bool
    order_id: str = ""
    status: str = ""
    """For places: live, matched, delayed, unmatched; for timeouts: unknown."""
    message: str = ""


class Fill(Event, tag="fl"):
    """Some of our order traded. Positions change only on fills; a FAILED fill reverses an earlier MATCHED one."""

    client_id: str
    token_id: str
    side: Side
    price: Price
    size: Size
    trade_id: str
    status: Literal["MATCHED", "CONFIRMED", "FAILED"] = "CONFIRMED"


class OrderState(Event, tag="os"):
    """The order manager's view of one order changed state."""

    client_id: str
    state: Literal["pending_new", "live", "partially_filled", "filled", "cancelled", "rejected", "unknown"]
    filled: Size = 0
    detail: str = ""


class Position(Event, tag="ps"):
    """Position and PnL of one token after a fill or a mark change."""

    token_id: str
    position: SignedSize
    cash: Notional
    realized: Notional
    mark: Price
    mtm: Notional


class Churn(Event, tag="cn"):
    """Order churn over the last minute: places, cancels, replaces and mean lifetime of cancelled orders."""

    places: int
    cancels: int
    replaces: int
    mean_life_ns: int
