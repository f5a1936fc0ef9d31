"""Session metrics (core): how our quotes sat relative to the book, uptime and feed health, as events.

Every ``window_ns`` of event time (on the first ``Tick`` after the window closes) it emits one ``QuoteQuality``
per (token, side) that had an order resting, and one ``SessionMetrics``. Time is integrated between events:
the state that held since the previous event is credited with the elapsed time, so the figures depend only on
the journaled events and replay exactly.
"""
from __future__ import annotations

from collections.abc import Sequence

from events.base import Event
from events.codec import Envelope
from events.control import KillSwitch, RunStarted, Tick
from events.market import BookChanged, FeedStatus
from events.orders import OrderIntent, OrderState
from events.paper import QuoteQuality, SessionMetrics
from events.params import CoreParams

WINDOW_NS = 60 * 10**9
RESTING = ("live", "partially_filled")
HOUR_NS = 3600 * 10**9


class _Acc:
    __slots__ = ("at_top_ns", "dist_ns_x100", "resting_ns")

    def __init__(self) -> None:
        self.resting_ns = 0
        self.at_top_ns = 0
        self.dist_ns_x100 = 0


class MetricsActor:
    name = "metrics"
    consumes = (RunStarted, Tick, BookChanged, FeedStatus, OrderIntent, OrderState, KillSwitch)

    def __init__(self, params: CoreParams, window_ns: int = WINDOW_NS) -> None:
        self.window_ns = window_ns
        self._orders: dict[str, tuple[str, str, int]] = {}  # client_id -> (token, side, price), once intended
        self._resting: dict[str, tuple[str, str, int]] = {}
        self._tops: dict[str, tuple[int, int, int]] = {}  # token -> (bid, ask, tick) of a valid book
        self._acc: dict[tuple[str, str], _Acc] = {}
        self._last_ns: int | None = None
        self._window_start = 0
        self._started = 0
        self._connected = False
        self._connected_ns = 0
        self.reconnects = 0
        self.stale_kills = 0

    def _advance(self, now: int) -> None:
        if self._last_ns is None or now <= self._last_ns:
            self._last_ns = now if self._last_ns is None else self._last_ns
            return
        dt = now - self._last_ns
        if self._connected:
            self._connected_ns += dt
        best: dict[tuple[str, str], int] = {}
        for token, side, price in self._resting.values():
            key = (token, side)
            cur = best.get(key)
            if cur is None or (price > cur if side == "BUY" else price < cur):
                best[key] = price
        for key, price in best.items():
            top = self._tops.get(key[0])
            if top is None:
                continue
            bid, ask, tick = top
            acc = self._acc.get(key)
            if acc is None:
                acc = self._acc[key] = _Acc()
            acc.resting_ns += dt
            at_top = price >= bid if key[1] == "BUY" else price <= ask
            if at_top:
                acc.at_top_ns += dt
            mid2 = bid + ask
            acc.dist_ns_x100 += dt * abs(mid2 - 2 * price) * 50 // tick
        self._last_ns = now

    def step(self, seq: int, env: Envelope) -> Sequence[Event]:
        ev = env.ev
        now = env.ts_ns
        self._advance(now)
        if isinstance(ev, RunStarted):
            self._started = self._window_start = self._last_ns = now
        elif isinstance(ev, BookChanged):
            if ev.valid and ev.best_bid and ev.best_ask and ev.tick:
                self._tops[ev.token_id] = (ev.best_bid, ev.best_ask, ev.tick)
            else:
                self._tops.pop(ev.token_id, None)
        elif isinstance(ev, FeedStatus):
            if ev.state == "connecting" and ev.conn > 1:
                self.reconnects += 1
            self._connected = ev.state == "connected"
        elif isinstance(ev, OrderIntent):
            self._orders[ev.client_id] = (ev.token_id, ev.side, ev.price)
        elif isinstance(ev, OrderState):
            o = self._orders.get(ev.client_id)
            if o is not None and ev.state in RESTING:
                self._resting[ev.client_id] = o
            else:
                self._resting.pop(ev.client_id, None)
                if ev.state in ("filled", "cancelled", "rejected"):
                    self._orders.pop(ev.client_id, None)
        elif isinstance(ev, KillSwitch):
            if ev.reason == "feed_stale":
                self.stale_kills += 1
        elif isinstance(ev, Tick) and now - self._window_start >= self.window_ns:
            return self._emit(now)
        return ()

    def _emit(self, now: int) -> list[Event]:
        window = now - self._window_start
        out: list[Event] = []
        for (token, side), acc in sorted(self._acc.items()):
            if acc.resting_ns:
                out.append(QuoteQuality(
                    token_id=token, side=side, window_ns=window, resting_ns=acc.resting_ns,  # type: ignore[arg-type]
                    at_top_ppm=acc.at_top_ns * 1_000_000 // acc.resting_ns,
                    mean_distance_ticks_x100=acc.dist_ns_x100 // acc.resting_ns,
                ))
        uptime = now - self._started
        out.append(SessionMetrics(
            uptime_ns=uptime, reconnects=self.reconnects,
            reconnects_per_hour_x100=self.reconnects * HOUR_NS * 100 // uptime if uptime else 0,
            stale_feed_kills=self.stale_kills, connected_ns=self._connected_ns,
        ))
        self._acc.clear()
        self._window_start = now
        return out
