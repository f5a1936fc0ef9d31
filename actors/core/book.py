"""The L2 book actor: raw market-channel frames in, per-token books and top-of-book events out.

Rules (docs/core-contracts.md, docs/polymarket-protocol.md §1):
- Only the tokens of ``params.markets`` have books; entries for other asset ids are filtered out (counted).
- ``book`` snapshots (and ``RestBook`` replies) replace a token's book and make it valid. ``price_change`` entries
  set the absolute size of one level (``"0"`` deletes it) and apply only to a valid book.
- A book becomes invalid, is emptied and starts a new ``epoch`` when continuity is lost: ``tick_size_change``
  (always, with ``ResyncRequest``; the new tick comes from the event), a ``price_change`` whose reported
  ``best_bid``/``best_ask`` contradicts the reconstructed book or a crossed book (``ResyncRequest``), a bad entry
  or snapshot for that token (``ResyncRequest``), ``FeedStatus(disconnected)`` or a new connection number (no
  request: the re-subscription's initial dump brings snapshots), or ``market_resolved`` (latched, no request).
  It is valid again after the next snapshot. Hash fields are ignored: never gate on hash equality (§1.5).
- Frames of an older connection, or of the current one after it was reported disconnected, are ignored.
- ``BookChanged`` is emitted only when a token's (validity, epoch, tick, best bid, its size, best ask, its size)
  changed during the handled event; ``TradePrint`` per ``last_trade_price``; ``ParseError`` (excerpt <= 200
  characters) per malformed frame, bad entry or unknown ``event_type``. Bad input never raises.

Representation: per side a dict price -> size plus the cached best price (0 = empty side). An update is O(1)
except deleting the best level (O(levels) to find the next best); ``levels()`` sorts on demand.
"""
from __future__ import annotations

from collections.abc import Sequence

from actors.core.frames import (
    BestBidAsk,
    BookSnapshot,
    FrameError,
    Ignored,
    LastTrade,
    MarketResolved,
    PriceChange,
    TickSizeChange,
    Unknown,
    excerpt,
    parse_book_body,
    parse_frame,
)
from events.base import MICRO, Event
from events.codec import Envelope
from events.market import BookChanged, FeedFrame, FeedStatus, ParseError, ResyncRequest, RestBook, TradePrint
from events.params import CoreParams

REST_CONN = 0
"""``ParseError.conn`` for problems with a ``RestBook`` (it did not come over a socket)."""


class TokenBook:
    """The L2 book of one token (read-only for every actor but the book actor)."""

    __slots__ = (
        "_last_trade",
        "asks",
        "ba",
        "bb",
        "bids",
        "condition_id",
        "epoch",
        "resolved",
        "snapshot_last_trade",
        "tick",
        "token_id",
        "ts",
        "valid",
        "version",
    )

    def __init__(self, token_id: str, tick: int, condition_id: str = "") -> None:
        self.token_id = token_id
        self.condition_id = condition_id
        self.tick = tick
        self.epoch = 0
        self.valid = False
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.bb = 0
        """Best bid price, 0 when there is no bid."""
        self.ba = 0
        """Best ask price, 0 when there is no ask."""
        self._last_trade: tuple[int, int, str] | None = None
        self.snapshot_last_trade: int | None = None
        """``last_trade_price`` of the latest snapshot that carried one (price only)."""
        self.resolved = False
        self.ts = ""
        """Exchange timestamp (ms string) of the last message applied."""
        self.version = 0
        """Incremented (by the book actor) on every change of levels, best prices, validity, tick or epoch; so an
        unchanged ``version`` means every view method above, but ``last_trade``, still answers the same. Readers
        use it to skip work whose result depends only on the book (a cache key, never journaled)."""

    def best_bid(self) -> tuple[int, int] | None:
        bb = self.bb
        return (bb, self.bids[bb]) if bb else None

    def best_ask(self) -> tuple[int, int] | None:
        ba = self.ba
        return (ba, self.asks[ba]) if ba else None

    def mid(self) -> int | None:
        """``(bid + ask) // 2`` of a valid book with both sides, else None."""
        if self.valid and self.bb and self.ba:
            return (self.bb + self.ba) // 2
        return None

    def microprice(self) -> int | None:
        """Size-weighted mid ``(bid*ask_size + ask*bid_size) // (bid_size + ask_size)`` (floor), or None."""
        bb = self.bb
        ba = self.ba
        if not (self.valid and bb and ba):
            return None
        bs = self.bids[bb]
        az = self.asks[ba]
        return (bb * az + ba * bs) // (bs + az)

    def size_at(self, side: str, price: int) -> int:
        """Size resting at ``price`` on ``side`` (``BUY``: bids, ``SELL``: asks); 0 if none."""
        return (self.bids if side == "BUY" else self.asks).get(price, 0)

    def depth_within(self, side: str, distance: int) -> int:
        """Total size on ``side`` at prices within ``distance`` of that side's best price (inclusive)."""
        if side == "BUY":
            if not self.bb:
                return 0
            lo = self.bb - distance
            return sum(s for p, s in self.bids.items() if p >= lo)
        if not self.ba:
            return 0
        hi = self.ba + distance
        return sum(s for p, s in self.asks.items() if p <= hi)

    def levels(self, side: str, n: int | None = None) -> list[tuple[int, int]]:
        """The best ``n`` levels of ``side`` (all when None), best first."""
        if side == "BUY":
            out = sorted(self.bids.items(), reverse=True)
        else:
            out = sorted(self.asks.items())
        return out if n is None else out[:n]

    def last_trade(self) -> tuple[int, int, str] | None:
        """``(price, size, taker side)`` of the last ``last_trade_price`` seen for this token."""
        return self._last_trade

    def top(self) -> tuple[bool, int, int, int, int, int, int]:
        bb = self.bb
        ba = self.ba
        return (self.valid, self.epoch, self.tick, bb, self.bids[bb] if bb else 0, ba, self.asks[ba] if ba else 0)

    def _clear(self) -> None:
        self.bids = {}
        self.asks = {}
        self.bb = 0
        self.ba = 0

    def __repr__(self) -> str:
        return (f"TokenBook({self.token_id!r}, valid={self.valid}, epoch={self.epoch}, tick={self.tick}, "
                f"bid={self.best_bid()}, ask={self.best_ask()})")


class Books:
    """Read-only view over the book actor's books (the ``Books`` API of docs/core-contracts.md)."""

    __slots__ = ("_books",)

    def __init__(self, books: dict[str, TokenBook]) -> None:
        self._books = books

    def get(self, token_id: str) -> TokenBook | None:
        """The book of a configured token (invalid until its first snapshot); None for any other token."""
        return self._books.get(token_id)

    def tokens(self) -> list[str]:
        return sorted(self._books)


class BookActor:
    """Keeps the L2 book of every configured token from the market channel. See the module docstring."""

    name = "book"
    consumes = (FeedFrame, FeedStatus, RestBook)

    def __init__(self, params: CoreParams) -> None:
        self.params = params
        self._books: dict[str, TokenBook] = {}
        self._market_tokens: dict[str, tuple[str, ...]] = {}
        for m in params.markets:
            for tok in (m.yes_token, m.no_token):
                self._books[tok] = TokenBook(tok, m.tick, m.condition_id)
            self._market_tokens[m.condition_id] = (m.yes_token, m.no_token)
        self.books = Books(self._books)
        self._published = {tok: tb.top() for tok, tb in self._books.items()}
        self._conn = 0
        self._conn_down = False
        # Counters (for status lines; never part of the journal).
        self.frames = 0
        self.items = 0
        self.level_updates = 0
        self.snapshots = 0
        self.parse_errors = 0
        self.unknown = 0
        self.resyncs = 0
        self.invalidations = 0
        self.filtered = 0
        """Entries/events for tokens we do not track."""
        self.skipped_invalid = 0
        """``price_change`` entries for a book that is waiting for a snapshot."""
        self.stale_frames = 0
        """Frames of an older (or reported disconnected) connection."""
        self.stale_rest = 0
        self.trades = 0
        self.best_bid_ask = 0
        self.ignored = 0

    # ------------------------------------------------------------------ dispatch

    def step(self, seq: int, env: Envelope) -> Sequence[Event]:
        ev = env.ev
        t = type(ev)
        if t is FeedFrame:
            return self._on_frame(ev)  # type: ignore[arg-type]
        if t is FeedStatus:
            return self._on_status(ev)  # type: ignore[arg-type]
        if t is RestBook:
            return self._on_rest(ev)  # type: ignore[arg-type]
        return ()

    def _on_frame(self, ev: FeedFrame) -> Sequence[Event]:
        self.frames += 1
        conn = ev.conn
        out: list[Event] = []
        touched: dict[str, str] = {}
        if conn != self._conn:
            if conn < self._conn:
                self.stale_frames += 1
                return ()
            self._new_conn(conn, touched)
        elif self._conn_down:
            self.stale_frames += 1
            return ()
        items = parse_frame(ev.text)
        if not items:
            return self._publish(out, touched) if touched else ()
        self.items += len(items)
        for it in items:
            t = type(it)
            if t is PriceChange:
                self._apply_changes(it, out, touched)  # type: ignore[arg-type]
            elif t is BookSnapshot:
                self._apply_snapshot(it, out, touched, "snapshot")  # type: ignore[arg-type]
            elif t is LastTrade:
                self._on_trade(it, out)  # type: ignore[arg-type]
            elif t is TickSizeChange:
                self._on_tick_change(it, out, touched)  # type: ignore[arg-type]
            elif t is FrameError:
                self._on_error(it, conn, ev.text, out, touched)  # type: ignore[arg-type]
            elif t is Unknown:
                self.unknown += 1
                self.parse_errors += 1
                out.append(ParseError(conn=conn, reason=f"unknown event_type {it.event_type!r}", excerpt=it.excerpt))  # type: ignore[attr-defined]
            elif t is MarketResolved:
                self._on_resolved(it, touched)  # type: ignore[arg-type]
            elif t is BestBidAsk:
                self.best_bid_ask += 1  # informative only: its timing relative to price_change is not documented
            elif t is Ignored:
                self.ignored += 1
        return self._publish(out, touched)

    def _on_status(self, ev: FeedStatus) -> Sequence[Event]:
        conn = ev.conn
        if conn < self._conn:
            return ()
        touched: dict[str, str] = {}
        if conn > self._conn:
            self._new_conn(conn, touched)
        if ev.state == "disconnected":
            self._conn_down = True
            for tb in self._books.values():
                self._invalidate(tb, "disconnected", False, [], touched)
        else:
            self._conn_down = False
        return self._publish([], touched) if touched else ()

    def _on_rest(self, ev: RestBook) -> Sequence[Event]:
        out: list[Event] = []
        if ev.status != 200:
            self.parse_errors += 1
            return [ParseError(conn=REST_CONN, reason=f"REST /book for {ev.token_id[:80]}: HTTP {ev.status}",
                               excerpt=excerpt(ev.body))]
        tb = self._books.get(ev.token_id)
        if tb is None:
            self.filtered += 1
            return ()
        touched: dict[str, str] = {}
        for it in parse_book_body(ev.body, ev.token_id):
            if type(it) is BookSnapshot:
                if tb.valid and _older(it.timestamp, tb.ts):  # type: ignore[attr-defined]
                    self.stale_rest += 1  # fetched before updates we already applied
                    continue
                self._apply_snapshot(it, out, touched, "rest_snapshot")  # type: ignore[arg-type]
            elif type(it) is FrameError:
                self._on_error(it, REST_CONN, "", out, touched)  # type: ignore[arg-type]
        return self._publish(out, touched)

    # ------------------------------------------------------------------ state changes

    def _new_conn(self, conn: int, touched: dict[str, str]) -> None:
        """A new socket: the old stream cannot be continued; the new one starts with snapshots."""
        self._conn = conn
        self._conn_down = False
        for tb in self._books.values():
            self._invalidate(tb, "reconnect", False, [], touched)

    def _invalidate(self, tb: TokenBook, reason: str, resync: bool, out: list[Event], touched: dict[str, str]) -> None:
        if not tb.valid:
            return
        tb.valid = False
        tb.epoch += 1
        tb._clear()
        tb.version += 1
        self.invalidations += 1
        touched[tb.token_id] = reason
        if resync:
            self.resyncs += 1
            out.append(ResyncRequest(token_id=tb.token_id, reason=reason))

    def _apply_changes(self, it: PriceChange, out: list[Event], touched: dict[str, str]) -> None:
        books = self._books
        last: dict[str, object] = {}
        n = 0
        for u in it.updates:
            tok = u.asset_id
            tb = books.get(tok)
            if tb is None:
                self.filtered += 1
                continue
            if not tb.valid:
                self.skipped_invalid += 1
                continue
            p = u.price
            s = u.size
            if u.side == "BUY":
                lv = tb.bids
                if s:
                    lv[p] = s
                    if p > tb.bb:
                        tb.bb = p
                elif lv.pop(p, None) is not None and p == tb.bb:
                    tb.bb = max(lv) if lv else 0
            else:
                lv = tb.asks
                if s:
                    lv[p] = s
                    if p < tb.ba or not tb.ba:
                        tb.ba = p
                elif lv.pop(p, None) is not None and p == tb.ba:
                    tb.ba = min(lv) if lv else 0
            last[tok] = u
            n += 1
        if not n:
            return
        self.level_updates += n
        ts = it.timestamp
        for tok, u in last.items():
            tb = books[tok]
            tb.version += 1
            tb.ts = ts
            if tok not in touched:
                touched[tok] = "update"
            bb = tb.bb
            ba = tb.ba
            if bb and ba and bb >= ba:
                self._invalidate(tb, "crossed", True, out, touched)
                continue
            rb = u.best_bid  # type: ignore[attr-defined]
            ra = u.best_ask  # type: ignore[attr-defined]
            if rb >= 0 and rb != bb:
                self._invalidate(tb, f"best_bid {rb} != book {bb}", True, out, touched)
            elif ra >= 0 and (0 if ra >= MICRO else ra) != ba:
                self._invalidate(tb, f"best_ask {ra} != book {ba}", True, out, touched)

    def _apply_snapshot(self, it: BookSnapshot, out: list[Event], touched: dict[str, str], reason: str) -> None:
        tb = self._books.get(it.asset_id)
        if tb is None:
            self.filtered += 1
            return
        self.snapshots += 1
        if tb.resolved:
            return
        tb.version += 1
        if it.tick is not None:
            tb.tick = it.tick
        if it.last_trade is not None:
            tb.snapshot_last_trade = it.last_trade
        bids = dict(it.bids)
        asks = dict(it.asks)
        bb = max(bids) if bids else 0
        ba = min(asks) if asks else 0
        tb.ts = it.timestamp
        if bb and ba and bb >= ba:
            was_valid = tb.valid
            self._invalidate(tb, "crossed_snapshot", True, out, touched)
            if not was_valid:
                tb._clear()
                self.resyncs += 1
                out.append(ResyncRequest(token_id=tb.token_id, reason="crossed_snapshot"))
            touched[tb.token_id] = "crossed_snapshot"
            return
        tb.bids = bids
        tb.asks = asks
        tb.bb = bb
        tb.ba = ba
        tb.valid = True
        touched[tb.token_id] = reason

    def _on_trade(self, it: LastTrade, out: list[Event]) -> None:
        tb = self._books.get(it.asset_id)
        if tb is None:
            self.filtered += 1
            return
        self.trades += 1
        tb._last_trade = (it.price, it.size, it.side)
        out.append(TradePrint(token_id=it.asset_id, price=it.price, size=it.size, side=it.side))  # type: ignore[arg-type]

    def _on_tick_change(self, it: TickSizeChange, out: list[Event], touched: dict[str, str]) -> None:
        tb = self._books.get(it.asset_id)
        if tb is None:
            self.filtered += 1
            return
        if tb.resolved:
            return
        tb.tick = it.new_tick
        tb.valid = False
        tb.epoch += 1
        tb._clear()
        tb.version += 1
        self.invalidations += 1
        self.resyncs += 1
        touched[tb.token_id] = "tick_size_change"
        out.append(ResyncRequest(token_id=tb.token_id, reason="tick_size_change"))

    def _on_error(self, it: FrameError, conn: int, text: str, out: list[Event], touched: dict[str, str]) -> None:
        self.parse_errors += 1
        out.append(ParseError(conn=conn, reason=it.reason[:200], excerpt=it.excerpt))
        if it.asset_id:
            suspects: list[str] = [it.asset_id] if it.asset_id in self._books else []
        else:  # no asset named: suspect every token whose id or market appears in what was received
            suspects = [tok for tok, tb in self._books.items() if tok in text or (tb.condition_id and tb.condition_id in text)]
        for tok in suspects:
            self._invalidate(self._books[tok], "parse_error", True, out, touched)

    def _on_resolved(self, it: MarketResolved, touched: dict[str, str]) -> None:
        toks = list(it.assets_ids) + list(self._market_tokens.get(it.market, ()))
        for tok in toks:
            tb = self._books.get(tok)
            if tb is not None and not tb.resolved:
                tb.resolved = True
                tb.version += 1
                self._invalidate(tb, "market_resolved", False, [], touched)

    def _publish(self, out: list[Event], touched: dict[str, str]) -> list[Event]:
        published = self._published
        books = self._books
        for tok, reason in touched.items():
            tb = books[tok]
            top = tb.top()
            if top != published[tok]:
                published[tok] = top
                valid, epoch, tick, bb, bs, ba, az = top
                out.append(
                    BookChanged(token_id=tok, epoch=epoch, valid=valid, best_bid=bb, bid_size=bs, best_ask=ba,
                                ask_size=az, tick=tick, reason=reason)
                )
        return out

    def counters(self) -> dict[str, int]:
        """Counters for a status line."""
        return {
            k: getattr(self, k)
            for k in ("frames", "level_updates", "snapshots", "parse_errors", "unknown", "resyncs", "invalidations",
                      "filtered", "skipped_invalid", "stale_frames", "stale_rest", "trades")
        }


def _older(a: str, b: str) -> bool:
    """True when exchange timestamp ``a`` is known to be earlier than ``b`` (both ms digit strings)."""
    if a.isascii() and a.isdigit() and b.isascii() and b.isdigit():
        return int(a) < int(b)
    return False
