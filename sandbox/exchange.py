"""The shared exchange state: one object that the REST API, the market channel and the order side read and
change. It holds the market source (the simulator or a playback), the fault switches, the geoblock mode and
counters.

The order side (`sandbox/orders.py` registers its routes, `sandbox/engine.py` is the `OrderEngine`) lives in
`ExchangeState.orders` and changes books through the source (`MarketSim.books[cid]`, a `BinaryBook`:
`set_level` returns the `price_changes` entries to broadcast with `hub.broadcast`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol

from .book import BookSnapshot
from .faults import Faults
from .markets import MarketSpec
from .ws import MarketHub

GEOBLOCK_MODES = ("allowed", "blocked", "down")


class MarketSource(Protocol):
    """What the server needs from a source of market data (`MarketSim` or `PlaybackSource`)."""

    markets: list[MarketSpec]
    now_ms: int

    @property
    def token_ids(self) -> list[str]: ...
    def has(self, token_id: str) -> bool: ...
    def market_of(self, token_id: str) -> MarketSpec: ...
    def book_event(self, token_id: str) -> dict[str, Any]: ...
    def rest_book(self, token_id: str) -> dict[str, Any]: ...
    def book(self, token_id: str) -> BookSnapshot: ...
    def best(self, token_id: str) -> tuple[int | None, int | None]: ...
    def tick(self, token_id: str) -> int: ...
    def last_trade(self, token_id: str) -> int | None: ...


class ExchangeState:
    def __init__(
        self,
        source: MarketSource,
        faults: Faults,
        *,
        seed: int,
        scenario: str,
        geoblock: str = "allowed",
        page_size: int = 2,
    ) -> None:
        self.source = source
        self.faults = faults
        self.seed = seed
        self.scenario = scenario
        self.page_size = page_size
        self.stats: Counter[str] = Counter()
        self.geoblock = "allowed"
        self.set_geoblock(geoblock)
        self.hub = MarketHub(self)
        faults._injector = self.hub.inject
        self.orders: Any = None  # the OrderEngine (sandbox/engine.py), set by sandbox/orders.register

    def set_geoblock(self, mode: str) -> None:
        if mode not in GEOBLOCK_MODES:
            raise ValueError(f"geoblock mode must be one of {GEOBLOCK_MODES}, not {mode!r}")
        self.geoblock = mode

    @property
    def markets(self) -> list[MarketSpec]:
        return self.source.markets

    def market_by_cid(self, cid: str) -> MarketSpec | None:
        for m in self.source.markets:
            if m.condition_id == cid:
                return m
        return None
