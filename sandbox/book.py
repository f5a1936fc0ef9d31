"""One binary market's order book, kept once in YES terms; the NO book is its mirror.

A YES bid at p is the same resting liquidity as a NO ask at 1 - p, and a YES ask at p is a NO bid at 1 - p,
so complement consistency (YES best bid + NO best ask = 1) holds by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .markets import MarketSpec
from .wire import PIPS, book_hash, fmt_pips, fmt_size, levels_wire, tick_str


@dataclass(frozen=True)
class BookSnapshot:
    """The sandbox's own view of one token's book, best level FIRST (like the fixtures' expect_books)."""

    asset_id: str
    market: str
    bids: tuple[tuple[Decimal, Decimal], ...]  # (price, size), best (highest) first
    asks: tuple[tuple[Decimal, Decimal], ...]  # (price, size), best (lowest) first
    tick_size: Decimal
    last_trade_price: Decimal | None
    timestamp_ms: int

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0][0] if self.asks else None


class BinaryBook:
    """Aggregated price levels for a YES/NO pair. Prices in pips, sizes in micro-shares."""

    def __init__(self, spec: MarketSpec, tick: int, timestamp_ms: int) -> None:
        self.spec = spec
        self.tick = tick
        self.bids: dict[int, int] = {}  # YES bids
        self.asks: dict[int, int] = {}  # YES asks
        self.last_trade: dict[str, int | None] = {spec.yes_token: None, spec.no_token: None}
        self.timestamp_ms = timestamp_ms
        # The order side's share of each level (YES terms, micro-shares). `bids`/`asks` above are the TOTALS
        # (synthetic liquidity + user orders), which is what every frame and snapshot shows; the simulator
        # only ever cancels / trims its own part (total - user) and its takers trade against the total.
        self.user_bids: dict[int, int] = {}
        self.user_asks: dict[int, int] = {}

    # ---- YES-side queries -------------------------------------------------------------------------------
    def best_bid(self) -> int | None:
        return max(self.bids) if self.bids else None

    def best_ask(self) -> int | None:
        return min(self.asks) if self.asks else None

    def user_size(self, yes_side: str, price: int) -> int:
        """The part of a YES level that belongs to user orders (0 when the order side has none there)."""
        return (self.user_bids if yes_side == "BUY" else self.user_asks).get(price, 0)

    def is_yes(self, token: str) -> bool:
        if token == self.spec.yes_token:
            return True
        if token == self.spec.no_token:
            return False
        raise KeyError(token)

    # ---- per-token views ----------------------------------------------------------------------------------
    def token_levels(self, token: str) -> tuple[dict[int, int], dict[int, int]]:
        """(bids, asks) of one token as {pips: micro}."""
        if self.is_yes(token):
            return self.bids, self.asks
        return ({PIPS - p: s for p, s in self.asks.items()}, {PIPS - p: s for p, s in self.bids.items()})

    def token_best(self, token: str) -> tuple[int | None, int | None]:
        bb, ba = self.best_bid(), self.best_ask()
        if self.is_yes(token):
            return bb, ba
        return (PIPS - ba if ba is not None else None, PIPS - bb if bb is not None else None)

    def _wire_levels(self, token: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        bids, asks = self.token_levels(token)
        # bids ascending, asks descending: the best level is the LAST element (live wire format)
        return levels_wire(sorted(bids.items())), levels_wire(sorted(asks.items(), reverse=True))

    def last_trade_str(self, token: str) -> str:
        lt = self.last_trade[token]
        return "" if lt is None else fmt_pips(lt)

    def token_hash(self, token: str, ts: str, wire: tuple[list, list] | None = None) -> str:
        bids, asks = wire if wire is not None else self._wire_levels(token)
        return book_hash(
            self.spec.condition_id,
            token,
            ts,
            bids,
            asks,
            str(self.spec.min_order_size),
            tick_str(self.tick),
            self.spec.neg_risk,
            self.last_trade_str(token),
        )

    def book_event(self, token: str, ts_ms: int | None = None) -> dict[str, Any]:
        """A WS `book` event (field order as in the live capture)."""
        ts = str(self.timestamp_ms if ts_ms is None else ts_ms)
        bids, asks = self._wire_levels(token)
        return {
            "market": self.spec.condition_id,
            "asset_id": token,
            "timestamp": ts,
            "hash": self.token_hash(token, ts, (bids, asks)),
            "bids": bids,
            "asks": asks,
            "tick_size": tick_str(self.tick),
            "event_type": "book",
            "last_trade_price": self.last_trade_str(token),
        }

    def rest_book(self, token: str) -> dict[str, Any]:
        """REST `/book` summary (§3.2)."""
        ts = str(self.timestamp_ms)
        bids, asks = self._wire_levels(token)
        return {
            "market": self.spec.condition_id,
            "asset_id": token,
            "timestamp": ts,
            "hash": self.token_hash(token, ts, (bids, asks)),
            "bids": bids,
            "asks": asks,
            "min_order_size": str(self.spec.min_order_size),
            "tick_size": tick_str(self.tick),
            "neg_risk": self.spec.neg_risk,
            "last_trade_price": self.last_trade_str(token),
        }

    def snapshot(self, token: str) -> BookSnapshot:
        bids, asks = self.token_levels(token)
        lt = self.last_trade[token]
        return BookSnapshot(
            asset_id=token,
            market=self.spec.condition_id,
            bids=tuple(
                (Decimal(fmt_pips(p)), Decimal(fmt_size(s))) for p, s in sorted(bids.items(), reverse=True)
            ),
            asks=tuple((Decimal(fmt_pips(p)), Decimal(fmt_size(s))) for p, s in sorted(asks.items())),
            tick_size=Decimal(tick_str(self.tick)),
            last_trade_price=None if lt is None else Decimal(fmt_pips(lt)),
            timestamp_ms=self.timestamp_ms,
        )

    # ---- mutation -----------------------------------------------------------------------------------------
    def set_level(self, yes_side: str, price: int, size: int, ts: str) -> list[dict[str, str]]:
        """Set the aggregate size of a YES level (0 deletes) and return the two `price_changes` entries:
        the YES level and its NO mirror at 1 - price on the opposite side."""
        levels = self.bids if yes_side == "BUY" else self.asks
        if size > 0:
            levels[price] = size
        else:
            levels.pop(price, None)
        yes, no = self.spec.yes_token, self.spec.no_token
        return [
            self._entry(yes, price, size, yes_side, ts),
            self._entry(no, PIPS - price, size, "SELL" if yes_side == "BUY" else "BUY", ts),
        ]

    def _entry(self, token: str, price: int, size: int, side: str, ts: str) -> dict[str, str]:
        bb, ba = self.token_best(token)
        return {
            "asset_id": token,
            "price": fmt_pips(price),
            "size": fmt_size(size),
            "side": side,
            "hash": self.token_hash(token, ts),
            "best_bid": "0" if bb is None else fmt_pips(bb),
            "best_ask": "1" if ba is None else fmt_pips(ba),
        }
