"""The user-channel edge: one authenticated WebSocket to ``/ws/user``, every frame journaled raw.

- Subscribes with ``{"auth": {"apiKey", "secret", "passphrase"}, "type": "user", "markets": [condition ids]}``.
  That message holds the API secret: it is sent and never journaled, logged or kept in an error.
- ``PING`` every ``ping_interval_s`` (10 s); ``silence_timeout_s`` (30 s) without any frame (PONG included) means
  the connection is dead. Reconnects with capped exponential backoff and seeded jitter (as the market feed).
- Every frame -> ``UserFrame(conn, text)``; every connection change -> ``UserStatus``. The venue does not replay
  what a socket missed, so after every (re)connect it reconciles over REST: ``ReconcileStarted(fence)``,
  ``GET /data/orders`` (all pages), ``GET /data/trades`` (all pages, matched since the run started), each trade
  as a ``UserFrame`` in the channel's own ``trade`` shape (the core dedupes on trade id and status), then
  ``OpenOrdersSnapshot(fence, ids)``. Only then is ``LiveHealth.user_ready`` set: until the channel is connected
  AND reconciled no order is sent. A reconcile that keeps failing drops the connection and starts over.
"""
from __future__ import annotations

import random
from collections.abc import Sequence

import msgspec
import trio
from trio_websocket import ConnectionClosed, ConnectionTimeout, HandshakeError, open_websocket_url

from actors.edge.clock import Emit
from actors.edge.exchange import ExchangeError, ExchangeRest, LiveHealth
from actors.edge.feed import MAX_MESSAGE, FeedSettings, backoff_s, read_with_watchdog
from events.live import OpenOrdersSnapshot, ReconcileStarted, UserFrame, UserStatus

RECONCILE_TRIES = 3


def trade_frame(row: dict) -> str:
    """A ``/data/trades`` row as the user channel's ``trade`` event (same fields, plus event_type and type)."""
    ev = {"event_type": "trade", "type": "TRADE", **{k: v for k, v in row.items() if k not in ("event_type", "type")}}
    return msgspec.json.encode(ev).decode()


class UserChannel:
    """The user-channel edge actor. ``run`` loops until cancelled."""

    def __init__(
        self,
        url: str,
        markets: Sequence[str],
        rest: ExchangeRest,
        emit: Emit,
        health: LiveHealth,
        *,
        seed: int,
        settings: FeedSettings,
        trades_after_s: int | None = None,
    ) -> None:
        self.url = url
        self.markets = list(markets)
        self.rest = rest
        self.emit = emit
        self.health = health
        self.settings = settings
        self.trades_after_s = trades_after_s
        self.rng = random.Random(seed ^ 0x5553_4552)  # its own stream: the feed's schedule is not disturbed
        self.conn = 0
        self.reconnects = 0
        self.reconciles = 0
        self.ready = trio.Event()
        """Set the first time the channel is connected and reconciled."""

    def _subscribe_message(self) -> str:
        c = self.rest.creds
        return msgspec.json.encode(
            {"auth": {"apiKey": c.api_key, "secret": c.secret, "passphrase": c.passphrase}, "type": "user",
             "markets": self.markets}
        ).decode()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        attempt = 0
        started = False
        while True:
            self.conn += 1
            conn = self.conn
            if conn > 1:
                self.reconnects += 1
            await self.emit("user", UserStatus(conn=conn, state="connecting", detail=self.url))
            if not started:
                task_status.started()
                started = True
            detail = await self._session(conn)
            self.health.user_ready = False
            if detail is None:
                attempt = 0
                detail = "closed"
            await self.emit("user", UserStatus(conn=conn, state="disconnected", detail=detail[:300]))
            delay = backoff_s(attempt, self.rng, self.settings)
            attempt += 1
            await trio.sleep(delay)

    async def _session(self, conn: int) -> str | None:
        """One connection. Returns None if it ended after a clean, reconciled run, else what went wrong.

        PING and the silence watchdog run inline (only ``get_message`` is ever timed out, so a received frame is
        always journaled); the REST reconcile runs beside it, so frames keep flowing meanwhile.
        """
        s = self.settings
        got_frames = False

        def closed(exc: ConnectionClosed) -> str | None:
            if got_frames and self.health.user_ready:
                return None
            reason = exc.reason
            return f"closed: {getattr(reason, 'code', '')} {getattr(reason, 'reason', '') or ''}".strip()

        async def on_text(text: str) -> None:
            nonlocal got_frames
            got_frames = True
            await self.emit("user", UserFrame(conn=conn, text=text))

        async def read(ws) -> str:
            return await read_with_watchdog(ws, s, on_text)

        try:
            async with open_websocket_url(
                self.url, message_queue_size=256, max_message_size=MAX_MESSAGE, connect_timeout=s.connect_timeout_s,
                disconnect_timeout=1,
            ) as ws:
                await ws.send_message(self._subscribe_message())
                await self.emit("user", UserStatus(conn=conn, state="connected", detail=self.url))
                result: list[str | None] = []
                async with trio.open_nursery() as nursery:

                    async def reconcile() -> None:
                        why = await self._reconcile(conn)
                        if why:
                            result.append(why)
                            nursery.cancel_scope.cancel()

                    nursery.start_soon(reconcile)
                    try:
                        result.append(await read(ws))
                    except ConnectionClosed as exc:
                        result.append(closed(exc))
                    nursery.cancel_scope.cancel()
                return result[0] if result else "cancelled"
        except ConnectionTimeout:
            return f"connect timeout after {s.connect_timeout_s:g} s"
        except ConnectionClosed as exc:
            return closed(exc)
        except HandshakeError as exc:
            return f"handshake failed: {type(exc).__name__}"
        except OSError as exc:
            return f"connect failed: {exc.strerror or type(exc).__name__}"

    async def _reconcile(self, conn: int) -> str:
        """Open orders and trades over REST after a (re)connect. Returns "" when done, else why it failed."""
        last = ""
        for attempt in range(RECONCILE_TRIES):
            self.reconciles += 1
            fence = f"user:{conn}:{self.reconciles}"
            await self.emit("user", ReconcileStarted(fence=fence, source=f"user channel connect {conn}"))
            try:
                orders = await self.rest.open_orders()
                trades = await self.rest.trades(after_s=self.trades_after_s)
            except ExchangeError as exc:
                last = str(exc)
                await self.emit("user", OpenOrdersSnapshot(fence=fence, order_ids=(), source="reconcile failed",
                                                           complete=False))
                await trio.sleep(min(2.0**attempt, 8.0))
                continue
            for row in trades:
                await self.emit("user", UserFrame(conn=conn, text=trade_frame(row)))
            ids = tuple(str(o.get("id")) for o in orders if o.get("id"))
            await self.emit("user", OpenOrdersSnapshot(fence=fence, order_ids=ids, source=f"reconnect {conn}"))
            self.health.user_ready = True
            self.ready.set()
            return ""
        return f"reconcile failed: {last}"[:300]
