"""Parameters of the core actors, journaled in ``RunStarted`` so replay rebuilds the exact same core.

Only what changes core behaviour lives here: markets, quoting, order management, risk limits and the simulated
exchange. Endpoints, paths and credentials live in the application config (``pmm.config``) and never reach the
journal. Every number is an integer in the units of ``events.base`` (micro-dollars, micro-shares, nanoseconds),
with bounds, so an invalid value is refused when the config is loaded and when a journal is decoded.
"""
from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from events.base import MICRO, Price, Size

PosInt = Annotated[int, Meta(ge=1)]
NonNegInt = Annotated[int, Meta(ge=0)]
DurationNs = Annotated[int, Meta(ge=0, le=7 * 24 * 3600 * 10**9)]
Fraction = Annotated[int, Meta(ge=0, le=MICRO)]
"""A fraction in millionths (500_000 = 0.5)."""


class Params(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base for parameter structs: keyword-only, frozen, unknown fields refused."""


class MarketParams(Params):
    """One binary market: a condition id and its YES/NO token pair."""

    condition_id: str
    yes_token: str
    no_token: str
    tick: Price = 10_000
    """Tick size at start (0.01); a ``tick_size_change`` from the feed overrides it."""
    min_order_size: Size = 5 * MICRO
    reward_min_size: Size = 0
    """Liquidity-rewards minimum size (0: the market pays no rewards)."""
    reward_max_spread: Price = 0
    """Liquidity-rewards max distance from the mid, in micro-dollars (0: no rewards)."""


class QuoterParams(Params):
    """Quoting in the words traders use."""

    spread: Price = 20_000
    """Full distance between our bid and ask around the fair price (0.02)."""
    size: Size = 10 * MICRO
    """Size of each quote at the first level."""
    levels: Annotated[int, Meta(ge=1, le=5)] = 1
    level_spacing: Price = 10_000
    skew_per_share: Annotated[int, Meta(ge=0, le=MICRO)] = 100
    """Price shift per share of inventory, in micro-dollars (moves both quotes against the position)."""
    max_position: Size = 100 * MICRO
    """Soft cap: quote size tapers to zero on the side that would grow the position past this."""
    use_microprice: bool = True
    stale_after_ns: DurationNs = 30 * 10**9
    """No quote when the feed connection has been silent this long."""


class OrderParams(Params):
    """Order management: churn control."""

    refresh_tolerance: Price = 5_000
    """Leave a live order alone when its price is within this of the desired price (keeps queue position)."""
    size_tolerance: Fraction = 200_000
    """... and its size within this fraction of the desired size."""
    max_order_age_ns: DurationNs = 0
    """Replace orders older than this (0: no maximum age)."""
    ack_timeout_ns: DurationNs = 10 * 10**9
    """An order with no reply after this is in an unknown state and blocks its token."""


class RiskParams(Params):
    """The risk gate's limits. Every intent passes all of them or becomes a ``RiskReject``."""

    max_order_size: Size = 50 * MICRO
    max_order_notional: Annotated[int, Meta(ge=0)] = 25 * MICRO
    max_position: Size = 200 * MICRO
    """Per token, counting worst-case fills of open and in-flight orders."""
    max_total_notional: Annotated[int, Meta(ge=0)] = 200 * MICRO
    """Across all tokens: cost of positions plus worst-case fills of open and in-flight buy orders."""
    max_open_orders: PosInt = 20
    price_band: Price = 50_000
    """A buy above mid + band, or a sell below mid - band, is refused."""
    orders_per_sec: PosInt = 10
    order_burst: PosInt = 20
    cancels_per_sec: PosInt = 20
    cancel_burst: PosInt = 40
    feed_stale_ns: DurationNs = 30 * 10**9
    """Kill switch when the feed connection has been silent (no frame at all, PONG included) this long."""
    max_loss: Annotated[int, Meta(ge=0)] = 20 * MICRO
    """Kill switch when mark-to-market PnL (cash + position x mark, realized included) falls below minus this."""
    daily_loss: Annotated[int, Meta(ge=0)] = 20 * MICRO
    error_burst: PosInt = 10
    """Kill switch after this many exchange errors within ``error_window_ns``."""
    error_window_ns: DurationNs = 60 * 10**9
    book_invalid_ns: DurationNs = 10 * 10**9
    """Kill switch when the book of a market we quote has been invalid (resyncing, crossed) this long."""
    reduce_loss: Annotated[int, Meta(ge=0)] = 10 * MICRO
    """REDUCING (only position-reducing orders pass) when PnL falls below minus this (the PnL the loss limits use:
    see ``actors.core.risk``)."""
    fill_burst: PosInt = 10
    """Repeated-execution throttle: after this many fills on one token and side within ``fill_window_ns``, new
    orders on that token and side are refused until the window has moved on."""
    fill_window_ns: DurationNs = 10 * 10**9


class SimParams(Params):
    """The deterministic simulated exchange used by paper sim-fills."""

    queue_ahead: bool = True
    """Estimate queue position from the size resting ahead of us at our price."""


class CoreParams(Params):
    """Everything that determines the core's output, journaled whole in ``RunStarted``."""

    markets: tuple[MarketParams, ...] = ()
    quoter: QuoterParams = QuoterParams()
    orders: OrderParams = OrderParams()
    risk: RiskParams = RiskParams()
    sim: SimParams = SimParams()
    fills: Literal["none", "sim", "live"] = "none"
    """How orders are executed: none (paper recorder), sim (paper simulator) or live."""
    quoting: bool = True
    """False in shadow mode: desired quotes are computed but no order intent is made."""
