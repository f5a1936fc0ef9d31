"""Paper-trading and simulated-exchange events (family owned by the paper executors).

The paper recorder (fills "none") journals what it *would* have sent; the simulated exchange (fills "sim")
journals where each accepted order joined the queue and the liquidity-rewards score of what rests. Replies and
fills themselves use the shared vocabulary of ``events.orders`` (``ExchangeReply``, ``Fill``).
"""
from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from events.base import Event, Price, Seq, Side, Size

Score = Annotated[int, Meta(ge=0, le=10**18)]
"""A liquidity-rewards score, in micro-shares (S = ((v - s) / v)^2 * size, summed)."""


class WouldPlace(Event, tag="pwp"):
    """The paper recorder would have placed this risk-approved order (no-fills paper trading)."""

    intent_seq: Seq
    """Seq of the ``OrderIntent`` that the risk gate approved."""
    client_id: str
    condition_id: str
    token_id: str
    side: Side
    price: Price
    size: Size
    post_only: bool = True


class WouldCancel(Event, tag="pwc"):
    """The paper recorder would have cancelled this order (an approved cancel, or a cancel-all)."""

    intent_seq: Seq
    """Seq of the approved ``CancelIntent``; for a cancel-all, the seq of the ``CancelAll``."""
    client_id: str
    reason: str = ""


class SimRested(Event, tag="psr"):
    """The simulated exchange accepted a post-only order: it rests behind ``queue_ahead`` micro-shares.

    ``queue_ahead`` is the size already resting at that price on that side when the order arrived (0 when
    ``SimParams.queue_ahead`` is off). It makes every later simulated fill auditable from the journal.
    """

    client_id: str
    order_id: str
    token_id: str
    side: Side
    price: Price
    size: Size
    queue_ahead: Size


class RestingScore(Event, tag="prs"):
    """Estimated liquidity-rewards score of the simulated exchange's RESTING orders in one market (§6).

    ``q_bid`` sums S over orders that are bids in YES terms (YES bids and NO asks), ``q_ask`` over YES-terms asks
    (YES asks and NO bids). ``score`` is Q_min: ``max(min(q_bid, q_ask), max(q_bid // 3, q_ask // 3))`` when the
    YES midpoint is within [0.10, 0.90], else ``min(q_bid, q_ask)``. Emitted only when one of them changes.
    """

    condition_id: str
    score: Score
    two_sided: bool
    q_bid: Score = 0
    q_ask: Score = 0


class QuoteQuality(Event, tag="qq"):
    """How our resting quotes sat in the book over the last window (event time), per token and side.

    ``at_top_ppm``: share of the window (parts per million) during which our best order on that side was at or
    better than the book's best price on that side. ``mean_distance_ticks_x100``: time-weighted mean distance of
    our best order from the mid, in hundredths of a tick. Both count only time with an order resting.
    """

    token_id: str
    side: Literal["BUY", "SELL"]
    window_ns: int
    resting_ns: int
    at_top_ppm: int
    mean_distance_ticks_x100: int


class SessionMetrics(Event, tag="sm"):
    """Session health over the run so far: uptime, feed reconnects (count and per hour) and kill switches by cause."""

    uptime_ns: int
    reconnects: int
    reconnects_per_hour_x100: int
    stale_feed_kills: int
    connected_ns: int
