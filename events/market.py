"""Market-data events: raw frames from the feed edge, and what the book actor derives from them."""
from __future__ import annotations

from typing import Literal

from events.base import Event, Price, Side, Size

ConnState = Literal["connecting", "connected", "disconnected"]


class FeedFrame(Event, tag="ff"):
    """One raw text frame received on the market channel, exactly as received. Parsing happens in the core."""

    conn: int
    """Connection number (increments on every reconnect), so frames of an old socket can be told apart."""
    text: str


class FeedStatus(Event, tag="fs"):
    """The market-channel connection changed state (the feed edge's only other output)."""

    conn: int
    state: ConnState
    detail: str = ""


class RestBook(Event, tag="rb"):
    """A raw REST ``/book`` reply, fetched to resync one token."""

    token_id: str
    status: int
    body: str


class BookChanged(Event, tag="bk"):
    """The book of one token changed at the top, changed validity, or started a new epoch.

    ``best_bid``/``best_ask`` are 0 when that side is empty. An invalid book must not be quoted against.
    """

    token_id: str
    epoch: int
    valid: bool
    best_bid: Price
    bid_size: Size
    best_ask: Price
    ask_size: Size
    tick: Price
    reason: str = ""


class TradePrint(Event, tag="tr"):
    """A trade on the market (``last_trade_price``). ``side`` is the taker's side."""

    token_id: str
    price: Price
    size: Size
    side: Side


class ParseError(Event, tag="pe"):
    """A frame (or part of one) could not be understood. Counted, never fatal."""

    conn: int
    reason: str
    excerpt: str


class ResyncRequest(Event, tag="rq"):
    """The book of ``token_id`` cannot be trusted until a fresh snapshot arrives; the feed should resubscribe."""

    token_id: str
    reason: str
