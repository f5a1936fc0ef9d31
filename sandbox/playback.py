"""Playback: serve recorded raw market-channel frames again, with their recorded relative timing.

`PlaybackSource(pairs)` takes an iterable of ``(ts_ns, frame_text)`` (e.g. read from a pmm journal, or from a
JSON-lines file of ``{"ts_ns": int, "frame": str}`` with `load_jsonl`). In a sandbox opened with
``playback=...`` there is no simulator: one playback timeline starts when the first client subscribes (or at
once with ``start="immediate"``) and each recorded frame is sent **verbatim** (byte-identical text) to every
subscribed market socket whose assets it mentions (frames that mention no asset, e.g. ``[]`` or a malformed
frame, go to every subscriber). Recorded ``PONG`` frames are skipped by default (the server answers the client's
own PINGs). Time between frames is ``(ts_ns[i] - ts_ns[0]) / speed``.

The source also applies the frames to per-token books as it goes, so REST (``/book``, ``/markets`` ...) and
``sb.book()`` reflect the playback position, and a client that subscribes later gets an initial dump built from
those books.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import trio

from .book import BookSnapshot
from .markets import MarketSpec
from .wire import (
    PIPS,
    TICK_COARSE,
    book_hash,
    fmt_pips,
    fmt_size,
    levels_wire,
    parse_pips,
    parse_size,
    tick_str,
)


def load_jsonl(path: str | Path) -> list[tuple[int, str]]:
    """Read ``{"ts_ns": int, "frame": str}`` lines (blank lines ignored)."""
    out: list[tuple[int, str]] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
                out.append((int(obj["ts_ns"]), str(obj["frame"])))
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{n}: expected {{'ts_ns': int, 'frame': str}}: {e}") from None
    return out


def frame_events(text: str) -> list[dict[str, Any]] | None:
    """The events of a frame, or None if it is not JSON (PONG, truncated ...)."""
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if isinstance(obj, dict):
        return [obj]
    if isinstance(obj, list):
        return [e for e in obj if isinstance(e, dict)]
    return None


def frame_assets(events: list[dict[str, Any]] | None) -> set[str] | None:
    """Asset ids a frame mentions; None if it mentions none (send such frames to every subscriber)."""
    if not events:
        return None
    out: set[str] = set()
    for e in events:
        a = e.get("asset_id")
        if isinstance(a, str):
            out.add(a)
        for pc in e.get("price_changes") or ():
            if isinstance(pc, dict) and isinstance(pc.get("asset_id"), str):
                out.add(pc["asset_id"])
        for a in e.get("assets_ids") or ():
            if isinstance(a, str):
                out.add(a)
    return out or None


class TokenBook:
    """One token's book rebuilt from recorded frames (no complement assumption: live books are per token)."""

    def __init__(self, token: str, market: str) -> None:
        self.token = token
        self.market = market
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.tick = TICK_COARSE
        self.last_trade: int | None = None
        self.timestamp_ms = 0
        self.min_order_size = "5"
        self.neg_risk = False

    def _wire(self) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        return levels_wire(sorted(self.bids.items())), levels_wire(sorted(self.asks.items(), reverse=True))

    def _hash(self, ts: str, bids: list, asks: list) -> str:
        lt = "" if self.last_trade is None else fmt_pips(self.last_trade)
        return book_hash(
            self.market,
            self.token,
            ts,
            bids,
            asks,
            self.min_order_size,
            tick_str(self.tick),
            self.neg_risk,
            lt,
        )

    def book_event(self) -> dict[str, Any]:
        ts = str(self.timestamp_ms)
        bids, asks = self._wire()
        return {
            "market": self.market,
            "asset_id": self.token,
            "timestamp": ts,
            "hash": self._hash(ts, bids, asks),
            "bids": bids,
            "asks": asks,
            "tick_size": tick_str(self.tick),
            "event_type": "book",
            "last_trade_price": "" if self.last_trade is None else fmt_pips(self.last_trade),
        }

    def rest_book(self) -> dict[str, Any]:
        ev = self.book_event()
        return {
            "market": ev["market"],
            "asset_id": ev["asset_id"],
            "timestamp": ev["timestamp"],
            "hash": ev["hash"],
            "bids": ev["bids"],
            "asks": ev["asks"],
            "min_order_size": self.min_order_size,
            "tick_size": ev["tick_size"],
            "neg_risk": self.neg_risk,
            "last_trade_price": ev["last_trade_price"],
        }

    def snapshot(self) -> BookSnapshot:
        return BookSnapshot(
            asset_id=self.token,
            market=self.market,
            bids=tuple(
                (Decimal(fmt_pips(p)), Decimal(fmt_size(s)))
                for p, s in sorted(self.bids.items(), reverse=True)
            ),
            asks=tuple((Decimal(fmt_pips(p)), Decimal(fmt_size(s))) for p, s in sorted(self.asks.items())),
            tick_size=Decimal(tick_str(self.tick)),
            last_trade_price=None if self.last_trade is None else Decimal(fmt_pips(self.last_trade)),
            timestamp_ms=self.timestamp_ms,
        )

    def best(self) -> tuple[int | None, int | None]:
        return (max(self.bids) if self.bids else None, min(self.asks) if self.asks else None)


class PlaybackSource:
    """A market source that replays recorded frames (see the module docstring)."""

    def __init__(
        self,
        pairs: Iterable[tuple[int, str]],
        *,
        speed: float = 1.0,
        skip_pong: bool = True,
        start: str = "subscribe",
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        if start not in ("subscribe", "immediate"):
            raise ValueError("start must be 'subscribe' or 'immediate'")
        self.frames: list[tuple[int, str]] = [(int(t), str(f)) for t, f in pairs]
        if skip_pong:
            self.frames = [(t, f) for t, f in self.frames if f.strip() != "PONG"]
        self.speed = speed
        self.start = start
        self.position = 0  # frames played so far
        self.finished = trio.Event()
        self.books: dict[str, TokenBook] = {}
        self.now_ms = 0
        self._parsed: list[list[dict[str, Any]] | None] = [frame_events(f) for _, f in self.frames]
        # discover markets and tokens up front, so REST and subscriptions know them before playback starts
        order: dict[str, list[str]] = {}
        for events in self._parsed:
            for e in events or ():
                m = e.get("market")
                if not isinstance(m, str):
                    continue
                ids = [e.get("asset_id")] + [
                    pc.get("asset_id") for pc in e.get("price_changes") or () if isinstance(pc, dict)
                ]
                for a in ids:
                    if isinstance(a, str) and a not in self.books:
                        self.books[a] = TokenBook(a, m)
                        order.setdefault(m, []).append(a)
        self.markets: list[MarketSpec] = []
        self._spec_of: dict[str, MarketSpec] = {}
        for i, (m, toks) in enumerate(order.items()):
            spec = MarketSpec(
                index=i,
                condition_id=m,
                question_id="0x" + "0" * 64,
                yes_token=toks[0],
                no_token=toks[1] if len(toks) > 1 else "",
                question=f"Recorded market {m[:10]}",
                slug=f"recorded-{i + 1}",
                min_order_size=5,
                neg_risk=False,
                rewards_min_size=0,
                rewards_max_spread=0.0,
                rewards_daily_rate=0.0,
                end_date_iso="2027-01-01T00:00:00Z",
            )
            self.markets.append(spec)
            for t in toks:
                self._spec_of[t] = spec

    # ---- market source interface --------------------------------------------------------------------------
    @property
    def suppress_dump(self) -> bool:
        """Before the first frame is played the recording's own initial dump is still to come: don't add one."""
        return self.position == 0

    @property
    def token_ids(self) -> list[str]:
        return list(self.books)

    def has(self, token_id: str) -> bool:
        return token_id in self.books

    def market_of(self, token_id: str) -> MarketSpec:
        return self._spec_of[token_id]

    def book_event(self, token_id: str) -> dict[str, Any]:
        return self.books[token_id].book_event()

    def rest_book(self, token_id: str) -> dict[str, Any]:
        return self.books[token_id].rest_book()

    def book(self, token_id: str) -> BookSnapshot:
        return self.books[token_id].snapshot()

    def best(self, token_id: str) -> tuple[int | None, int | None]:
        return self.books[token_id].best()

    def tick(self, token_id: str) -> int:
        return self.books[token_id].tick

    def last_trade(self, token_id: str) -> int | None:
        return self.books[token_id].last_trade

    # ---- applying recorded frames -------------------------------------------------------------------------
    def apply(self, events: list[dict[str, Any]] | None) -> None:
        for e in events or ():
            try:
                self._apply_event(e)
            except (ValueError, TypeError, KeyError, ArithmeticError):
                continue  # recorded garbage is replayed verbatim but not applied

    def _apply_event(self, e: dict[str, Any]) -> None:
        et = e.get("event_type")
        ts = e.get("timestamp")
        if isinstance(ts, str) and ts.isdigit():
            self.now_ms = int(ts)
        if et == "book":
            b = self.books.get(e["asset_id"])
            if b is None:
                return
            b.bids = {parse_pips(lv["price"]): parse_size(lv["size"]) for lv in e.get("bids", [])}
            b.asks = {parse_pips(lv["price"]): parse_size(lv["size"]) for lv in e.get("asks", [])}
            if e.get("tick_size"):
                b.tick = parse_pips(e["tick_size"])
            if e.get("last_trade_price"):
                b.last_trade = parse_pips(e["last_trade_price"])
            b.timestamp_ms = self.now_ms
        elif et == "price_change":
            changes = e.get("price_changes")
            if changes is None:  # legacy schema: top-level asset_id + changes[]
                changes = [dict(c, asset_id=e.get("asset_id")) for c in e.get("changes", [])]
            for c in changes:
                b = self.books.get(c.get("asset_id"))
                if b is None:
                    continue
                p, s = parse_pips(c["price"]), parse_size(c["size"])
                if not 0 < p < PIPS:
                    continue
                levels = b.bids if c["side"] == "BUY" else b.asks
                if s > 0:
                    levels[p] = s
                else:
                    levels.pop(p, None)
                b.timestamp_ms = self.now_ms
        elif et == "tick_size_change":
            b = self.books.get(e.get("asset_id"))
            if b is not None:
                b.tick = parse_pips(e["new_tick_size"])
        elif et == "last_trade_price":
            b = self.books.get(e.get("asset_id"))
            if b is not None:
                b.last_trade = parse_pips(e["price"])

    async def run(self, hub: Any, started: trio.Event) -> None:
        """Play the frames to `hub` (the server's market hub). Waits for `started` unless start='immediate'."""
        if self.start == "subscribe":
            await started.wait()
        if not self.frames:
            self.finished.set()
            return
        t_first = self.frames[0][0]
        t_start = trio.current_time()
        for i, (ts_ns, text) in enumerate(self.frames):
            await trio.sleep_until(t_start + (ts_ns - t_first) / 1e9 / self.speed)
            events = self._parsed[i]
            self.apply(events)
            self.position = i + 1
            hub.broadcast_raw(text, frame_assets(events))
        self.finished.set()
