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
        self._best: list[tuple[tuple[str, str], int]] | None = []
        """Our best resting price per (token, side), from ``_resting`` (None: recompute, it changed)."""
        self._kinds: dict[type, int] = {}

    def _best_prices(self) -> list[tuple[tuple[str, str], int]]:
        best: dict[tuple[str, str], int] = {}
        for token, side, price in self._resting.values():
            key = (token, side)
            cur = best.get(key)
            if cur is None or (price > cur if side == "BUY" else price < cur):
                best[key] = price
        out = self._best = list(best.items())
        return out

    def _advance(self, now: int) -> None:
        last = self._last_ns
        if last is None or now <= last:
            self._last_ns = now if last is None else last
            return
        dt = now - last
        if self._connected:
            self._connected_ns += dt
        best = self._best
        if best is None:
            best = self._best_prices()
        for key, price in best:
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

    @staticmethod
    def _kind(t: type) -> int:
        for i, cls in enumerate((RunStarted, BookChanged, FeedStatus, OrderIntent, OrderState, KillSwitch, Tick)):
            if issubclass(t, cls):
                return i
        return -1

    def step(self, seq: int, env: Envelope) -> Sequence[Event]:
        ev = env.ev
        now = env.ts_ns
        self._advance(now)
        t = type(ev)
        kind = self._kinds.get(t)
        if kind is None:
            kind = self._kinds[t] = self._kind(t)
        if kind == 1:  # BookChanged
            if ev.valid and ev.best_bid and ev.best_ask and ev.tick:  # type: ignore[attr-defined]
                self._tops[ev.token_id] = (ev.best_bid, ev.best_ask, ev.tick)  # type: ignore[attr-defined]
            else:
                self._tops.pop(ev.token_id, None)  # type: ignore[attr-defined]
        elif kind == 4:  # OrderState
            o = self._orders.get(ev.client_id)  # type: ignore[attr-defined]
            self._best = None
            if o is not None and ev.state in RESTING:  # type: ignore[attr-defined]
                self._resting[ev.client_id] = o  # type: ignore[attr-defined]
            else:
                self._resting.pop(ev.client_id, None)  # type: ignore[attr-defined]
                if ev.state in ("filled", "cancelled", "rejected"):  # type: ignore[attr-defined]
                    self._orders.pop(ev.client_id, None)  # type: ignore[attr-defined]
        elif kind == 3:  # OrderIntent
            self._orders[ev.client_id] = (ev.token_id, ev.side, ev.price)  # type: ignore[attr-defined]
        elif kind == 6:  # Tick
            if now - self._window_start >= self.window_ns:
                return self._emit(now)
        elif kind == 0:  # RunStarted
            self._started = self._window_start = self._last_ns = now
        elif kind == 2:  # FeedStatus
            if ev.state == "connecting" and ev.conn > 1:  # type: ignore[attr-defined]
                self.reconnects += 1
            self._connected = ev.state == "connected"  # type: ignore[attr-defined]
        elif kind == 5:  # KillSwitch
            if ev.reason == "feed_stale":  # type: ignore[attr-defined]
                self.stale_kills += 1
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
