"""Parser of the Polymarket market channel: one raw text frame in, typed and normalized items out.

Pure functions, no state beyond a bounded memo of decimal conversions (a cache of a pure function: it can change
speed, never results).

Frame rules (docs/polymarket-protocol.md §1.3/§1.4):
- A frame is one JSON object or a JSON array of them. ``[]`` is nothing; the text ``PONG`` (or ``PING``) is nothing
  and is never JSON-decoded.
- Known ``event_type``: ``book``, ``price_change`` (current ``price_changes[]`` with per-entry ``asset_id`` and the
  legacy ``changes[]`` with a top-level ``asset_id``), ``tick_size_change``, ``last_trade_price``, ``best_bid_ask``,
  ``market_resolved``; ``new_market`` is recognised and ignored. Anything else is an ``Unknown`` item.
- Malformed JSON is one ``FrameError``. A bad entry (price outside [0, 1] or not a plain decimal, negative size,
  wrong JSON type, unknown side) is a ``FrameError`` for that entry only, carrying the ``asset_id`` when it is known,
  so the book actor can invalidate exactly that token; the other entries still come out.

Numbers: decimal strings become integer micro units exactly (``to_micro``), by string arithmetic, never float.
Accepted: ASCII digits with at most one ``.`` (``"0.48"``, ``".48"``, ``"5"``, ``"5."``). Refused: signs, exponents,
whitespace, ``NaN``/``inf``, non-ASCII digits, and more than 6 significant decimals. **Rounding policy: none.**
A value with a non-zero 7th+ decimal is not representable in the token's on-chain unit (1e-6), so it is a parse
error rather than silently rounded; trailing zeros beyond the 6th decimal are accepted (``"0.4500000"`` is exact).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Union

import msgspec

from events.base import MICRO

MAX_SIZE = 10**15
"""Largest size accepted, in micro-shares (``events.base.Size``'s bound)."""
EXCERPT = 200
"""Excerpts of bad input are cut to this many characters."""

# ---------------------------------------------------------------------------------------------------------------
# Output items. Prices and sizes are ints in micro units.
# ---------------------------------------------------------------------------------------------------------------


class Item(msgspec.Struct, gc=False):
    """Base of parser output items."""


class BookSnapshot(Item, gc=False):
    """A full ``book`` snapshot of one token. Levels are as received (not sorted), zero-size entries dropped; if a
    price appears twice the book keeps the last entry."""

    asset_id: str
    market: str
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]
    tick: int | None = None
    """``tick_size`` when present (only some snapshots carry it)."""
    last_trade: int | None = None
    """``last_trade_price`` when present and non-empty."""
    timestamp: str = ""


class LevelUpdate(Item, gc=False):
    """One ``price_change`` entry: the new absolute ``size`` at ``price`` on ``side`` (0 deletes the level)."""

    asset_id: str
    side: str
    """``BUY`` (a bid level) or ``SELL`` (an ask level)."""
    price: int
    size: int
    best_bid: int = -1
    """The server's best bid after the change; -1 when absent, 0 for an empty side (``""`` or ``"0"``)."""
    best_ask: int = -1
    """The server's best ask after the change; -1 when absent, 0 for ``""``. ``"1"`` (1_000_000) also means empty."""


class PriceChange(Item, gc=False):
    """A ``price_change`` message (either schema), its entries in order."""

    market: str
    updates: list[LevelUpdate]
    timestamp: str = ""


class TickSizeChange(Item, gc=False):
    asset_id: str
    market: str
    new_tick: int
    old_tick: int | None = None


class LastTrade(Item, gc=False):
    asset_id: str
    market: str
    price: int
    size: int
    side: str


class BestBidAsk(Item, gc=False):
    """``best_bid_ask`` (custom feature). ``None`` for an empty side (``""``)."""

    asset_id: str
    market: str
    best_bid: int | None
    best_ask: int | None


class MarketResolved(Item, gc=False):
    market: str
    winning_asset_id: str
    assets_ids: list[str]


class Ignored(Item, gc=False):
    """A known event that the book has no use for (``new_market``)."""

    event_type: str


class Unknown(Item, gc=False):
    """An ``event_type`` this parser does not know (schema drift): recorded and counted, never fatal."""

    event_type: str
    excerpt: str


class FrameError(Item, gc=False):
    """A frame or one of its entries could not be understood. ``asset_id`` is set when the entry named one."""

    reason: str
    excerpt: str
    asset_id: str = ""


# ---------------------------------------------------------------------------------------------------------------
# Decimal strings -> micro units
# ---------------------------------------------------------------------------------------------------------------

_SCALE = (1_000_000, 100_000, 10_000, 1_000, 100, 10, 1)
_MAX_LEN = 32
_CACHE: dict[str, int] = {}
_CACHE_MAX = 1 << 16


def _to_micro_uncached(s: str) -> int:
    dot = s.find(".")
    if dot < 0:
        if 0 < len(s) <= _MAX_LEN and s.isascii() and s.isdigit():
            return int(s) * MICRO
        raise ValueError(f"not a decimal: {s[:40]!r}")
    digits = s[:dot] + s[dot + 1 :]  # a second "." stays in and fails isdigit
    if not (len(s) <= _MAX_LEN and digits.isascii() and digits.isdigit()):
        raise ValueError(f"not a decimal: {s[:40]!r}")
    n = len(s) - dot - 1
    if n > 6:
        if s[dot + 7 :].strip("0"):
            raise ValueError(f"more than 6 decimals: {s!r}")
        digits = digits[: len(digits) - (n - 6)]
        n = 6
    return int(digits) * _SCALE[n]


def to_micro(s: str) -> int:
    """Exact value of a non-negative decimal string in millionths (``"0.456"`` -> 456_000). Raises ValueError."""
    v = _CACHE.get(s)
    if v is None:
        v = _to_micro_uncached(s)
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[s] = v
    return v


_LEVEL_PRICE: dict[str, int] = {}
"""Memo of validated level prices (0 < p < 1)."""
_SIZE: dict[str, int] = {}
"""Memo of validated sizes (0 <= s <= MAX_SIZE)."""
_BEST: dict[str, int] = {"": 0}
"""Memo of validated reported best prices ("" -> 0, else within [0, 1])."""


def _memo(cache: dict[str, int], s: str, fn: Callable[[str], int]) -> int:
    v = fn(s)
    if len(cache) >= _CACHE_MAX:
        cache.clear()
        if cache is _BEST:
            cache[""] = 0
    cache[s] = v
    return v


def _level_price(s: str) -> int:
    v = to_micro(s)
    if 0 < v < MICRO:
        return v
    raise ValueError(f"level price out of range: {s!r}")


def _level_size(s: str) -> int:
    v = to_micro(s)
    if v <= MAX_SIZE:
        return v
    raise ValueError(f"size out of range: {s!r}")


def _price(s: str) -> int:
    """A price within [0, 1]."""
    v = to_micro(s)
    if v > MICRO:
        raise ValueError(f"price out of range: {s!r}")
    return v


def _tick(s: str) -> int:
    v = to_micro(s)
    if 0 < v <= 100_000 and MICRO % v == 0:
        return v
    raise ValueError(f"bad tick size: {s!r}")


def excerpt(text: str, n: int = EXCERPT) -> str:
    """At most ``n`` characters of ``text``, for error reports."""
    return text if len(text) <= n else text[: n - 3] + "..."


# ---------------------------------------------------------------------------------------------------------------
# Wire shapes (decoded by msgspec; unknown fields are skipped)
# ---------------------------------------------------------------------------------------------------------------


class _Level(msgspec.Struct, gc=False):
    price: str
    size: str


class _Change(msgspec.Struct, gc=False, omit_defaults=True):
    price: str
    size: str
    side: str
    asset_id: str = ""
    best_bid: str | None = None
    best_ask: str | None = None


class _Msg(msgspec.Struct, gc=False, omit_defaults=True):
    event_type: str = ""
    asset_id: str = ""
    market: str = ""
    timestamp: str = ""
    bids: list[_Level] | None = None
    asks: list[_Level] | None = None
    tick_size: str | None = None
    last_trade_price: str | None = None
    price_changes: list[_Change] | None = None
    changes: list[_Change] | None = None
    price: str | None = None
    size: str | None = None
    side: str | None = None
    best_bid: str | None = None
    best_ask: str | None = None
    old_tick_size: str | None = None
    new_tick_size: str | None = None
    winning_asset_id: str | None = None
    assets_ids: list[str] | None = None


_typed = msgspec.json.Decoder(Union[list[_Msg], _Msg])  # noqa: UP007
_loose = msgspec.json.Decoder()
_enc = msgspec.json.Encoder()

KNOWN = frozenset(
    {"book", "price_change", "tick_size_change", "last_trade_price", "best_bid_ask", "market_resolved", "new_market"}
)
_NOTHING = frozenset({"PONG", "PING", "pong", "ping"})
_EMPTY: list[Item] = []


def parse_frame(text: str) -> list[Item]:
    """Parse one raw text frame. Never raises: anything wrong becomes a ``FrameError`` item."""
    if text in _NOTHING:
        return []
    try:
        raw = _typed.decode(text)
    except msgspec.ValidationError:
        return _parse_loose(text)
    except msgspec.DecodeError as exc:
        return [FrameError(reason=f"malformed JSON: {str(exc)[:80]}", excerpt=excerpt(text))]
    out: list[Item] = []
    if type(raw) is list:
        for m in raw:
            _convert(m, out, text)
    else:
        _convert(raw, out, text)
    return out


def parse_book_body(body: str, token_id: str) -> list[Item]:
    """Parse a REST ``/book`` reply (same shape as a ``book`` event, without ``event_type``) for ``token_id``."""
    try:
        raw = _loose.decode(body)
    except msgspec.DecodeError as exc:
        return [FrameError(reason=f"malformed JSON: {str(exc)[:80]}", excerpt=excerpt(body), asset_id=token_id)]
    if not isinstance(raw, dict):
        return [FrameError(reason="REST book is not an object", excerpt=excerpt(body), asset_id=token_id)]
    raw = dict(raw)
    raw["event_type"] = "book"
    asset = raw.get("asset_id")
    if asset in (None, ""):
        raw["asset_id"] = token_id
    elif asset != token_id:
        return [FrameError(reason=f"REST book for another token {str(asset)[:80]}", excerpt=excerpt(body),
                           asset_id=token_id)]
    tick = raw.get("tick_size")
    if isinstance(tick, (int, float)) and not isinstance(tick, bool):
        raw["tick_size"] = repr(tick)  # /book sends strings; tolerate a JSON number here (shortest repr is exact)
    out: list[Item] = []
    _loose_event(raw, out, body)
    return out


def _convert(m: _Msg, out: list[Item], text: str) -> None:
    et = m.event_type
    if et == "price_change":
        _price_change(m, out)
    elif et == "book":
        _book(m, out)
    elif et == "last_trade_price":
        try:
            if m.price is None or m.size is None:
                raise ValueError("last_trade_price without price or size")
            price = _price(m.price)
            size = to_micro(m.size)
            if size > MAX_SIZE:
                raise ValueError(f"size out of range: {m.size!r}")
            if m.side != "BUY" and m.side != "SELL":
                raise ValueError(f"bad side {m.side!r}")
        except ValueError as exc:
            out.append(FrameError(reason=f"last_trade_price: {exc}", excerpt=_struct_excerpt(m), asset_id=m.asset_id))
            return
        out.append(LastTrade(asset_id=m.asset_id, market=m.market, price=price, size=size, side=m.side))
    elif et == "tick_size_change":
        try:
            if m.new_tick_size is None:
                raise ValueError("tick_size_change without new_tick_size")
            new = _tick(m.new_tick_size)
            old = _tick(m.old_tick_size) if m.old_tick_size else None
        except ValueError as exc:
            out.append(FrameError(reason=f"tick_size_change: {exc}", excerpt=_struct_excerpt(m), asset_id=m.asset_id))
            return
        out.append(TickSizeChange(asset_id=m.asset_id, market=m.market, new_tick=new, old_tick=old))
    elif et == "best_bid_ask":
        try:
            bb = _price(m.best_bid) if m.best_bid else None
            ba = _price(m.best_ask) if m.best_ask else None
        except ValueError as exc:
            out.append(FrameError(reason=f"best_bid_ask: {exc}", excerpt=_struct_excerpt(m), asset_id=m.asset_id))
            return
        out.append(BestBidAsk(asset_id=m.asset_id, market=m.market, best_bid=bb, best_ask=ba))
    elif et == "market_resolved":
        out.append(
            MarketResolved(market=m.market, winning_asset_id=m.winning_asset_id or "", assets_ids=list(m.assets_ids or ()))
        )
    elif et == "new_market":
        out.append(Ignored(event_type=et))
    elif et == "":
        out.append(FrameError(reason="object without event_type", excerpt=_struct_excerpt(m)))
    else:
        out.append(Unknown(event_type=et[:60], excerpt=excerpt(text)))


def _struct_excerpt(obj: object) -> str:
    return excerpt(_enc.encode(obj).decode())


def _price_change(m: _Msg, out: list[Item]) -> None:
    changes = m.price_changes
    legacy = changes is None
    if legacy:
        changes = m.changes
        if changes is None:
            out.append(FrameError(reason="price_change without price_changes/changes", excerpt=_struct_excerpt(m),
                                  asset_id=m.asset_id))
            return
    top_asset = m.asset_id
    lp_memo = _LEVEL_PRICE
    size_memo = _SIZE
    best_memo = _BEST
    ups: list[LevelUpdate] = []
    append = ups.append
    for c in changes:
        asset = c.asset_id or top_asset
        p = lp_memo.get(c.price)
        z = size_memo.get(c.size)
        side = c.side
        bbs = c.best_bid
        bas = c.best_ask
        bb = -1 if bbs is None else best_memo.get(bbs)
        ba = -1 if bas is None else best_memo.get(bas)
        if p is not None and z is not None and bb is not None and ba is not None and (side == "BUY" or side == "SELL"):
            append(LevelUpdate(asset, side, p, z, bb, ba))  # fast path: every number seen and validated before
            continue
        try:
            if p is None:
                p = _memo(lp_memo, c.price, _level_price)
            if z is None:
                z = _memo(size_memo, c.size, _level_size)
            if side != "BUY" and side != "SELL":
                raise ValueError(f"bad side {side[:20]!r}")
            if bb is None:
                bb = _memo(best_memo, bbs, _price)  # type: ignore[arg-type]
            if ba is None:
                ba = _memo(best_memo, bas, _price)  # type: ignore[arg-type]
        except ValueError as exc:
            out.append(FrameError(reason=f"price_change entry: {exc}", excerpt=_struct_excerpt(c), asset_id=asset))
            continue
        append(LevelUpdate(asset, side, p, z, bb, ba))
    out.append(PriceChange(market=m.market, updates=ups, timestamp=m.timestamp))


def _levels(levels: list[_Level] | None, what: str) -> list[tuple[int, int]]:
    if not levels:
        return []
    lp_memo = _LEVEL_PRICE
    size_memo = _SIZE
    res = []
    append = res.append
    try:
        for lv in levels:
            p = lp_memo.get(lv.price)
            if p is None:
                p = _memo(lp_memo, lv.price, _level_price)
            z = size_memo.get(lv.size)
            if z is None:
                z = _memo(size_memo, lv.size, _level_size)
            if z:
                append((p, z))
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    return res


def _book(m: _Msg, out: list[Item]) -> None:
    try:
        if not m.asset_id:
            raise ValueError("book without asset_id")
        bids = _levels(m.bids, "bid")
        asks = _levels(m.asks, "ask")
        tick = _tick(m.tick_size) if m.tick_size else None
        ltp = _price(m.last_trade_price) if m.last_trade_price else None
    except ValueError as exc:
        out.append(FrameError(reason=f"book: {exc}", excerpt=_struct_excerpt(m), asset_id=m.asset_id))
        return
    out.append(
        BookSnapshot(asset_id=m.asset_id, market=m.market, bids=bids, asks=asks, tick=tick, last_trade=ltp,
                     timestamp=m.timestamp)
    )


# ---------------------------------------------------------------------------------------------------------------
# Slow path: some field had an unexpected JSON type. Decode to builtins and salvage what can be salvaged.
# ---------------------------------------------------------------------------------------------------------------


def _parse_loose(text: str) -> list[Item]:
    try:
        raw = _loose.decode(text)
    except msgspec.DecodeError as exc:
        return [FrameError(reason=f"malformed JSON: {str(exc)[:80]}", excerpt=excerpt(text))]
    out: list[Item] = []
    if isinstance(raw, dict):
        _loose_event(raw, out, text)
    elif isinstance(raw, list):
        for d in raw:
            if isinstance(d, dict):
                _loose_event(d, out, text)
            else:
                out.append(FrameError(reason="array element is not an object", excerpt=excerpt(_enc.encode(d).decode())))
    else:
        out.append(FrameError(reason="frame is neither an object nor an array", excerpt=excerpt(text)))
    return out


def _asset_of(d: object) -> str:
    if isinstance(d, dict):
        a = d.get("asset_id")
        if isinstance(a, str):
            return a
    return ""


def _loose_event(d: dict, out: list[Item], text: str) -> None:
    et = d.get("event_type")
    if not isinstance(et, str) or not et:
        out.append(FrameError(reason="object without a string event_type", excerpt=excerpt(_enc.encode(d).decode()),
                              asset_id=_asset_of(d)))
        return
    if et not in KNOWN:
        out.append(Unknown(event_type=et[:60], excerpt=excerpt(text)))
        return
    if et == "new_market":  # broadcast, shapes vary: never validated
        out.append(Ignored(event_type=et))
        return
    entries: dict[str, list] = {}
    if et == "price_change":
        d = dict(d)
        for key in ("price_changes", "changes"):
            if key in d:
                v = d.pop(key)
                if not isinstance(v, list):
                    out.append(FrameError(reason=f"price_change: {key} is not an array",
                                          excerpt=excerpt(_enc.encode(d).decode()), asset_id=_asset_of(d)))
                    return
                entries[key] = v
    try:
        m = msgspec.convert(d, _Msg)
    except msgspec.ValidationError as exc:
        out.append(FrameError(reason=f"{et}: {str(exc)[:100]}", excerpt=excerpt(_enc.encode(d).decode()),
                              asset_id=_asset_of(d)))
        return
    if entries:
        top = m.asset_id
        for key, raw_entries in entries.items():
            good = []
            for e in raw_entries:
                try:
                    good.append(msgspec.convert(e, _Change))
                except msgspec.ValidationError as exc:
                    out.append(FrameError(reason=f"price_change entry: {str(exc)[:100]}",
                                          excerpt=excerpt(_enc.encode(e).decode()), asset_id=_asset_of(e) or top))
            m = msgspec.structs.replace(m, **{key: good})
    _convert(m, out, text)
