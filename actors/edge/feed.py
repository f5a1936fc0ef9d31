"""The market feed edge: one WebSocket to the market channel, every frame journaled raw.

Guarantees:
- Subscribes with ``initial_dump`` so every (re)connect starts with a fresh snapshot of every book.
- Sends text ``PING`` every ``ping_interval_s``; ``silence_timeout_s`` without ANY inbound frame (PONG included)
  means the connection is dead, however open the socket looks (half-open TCP never says so itself).
- Reconnects with capped exponential backoff and jitter; the jitter comes from ``random.Random(seed)`` where the
  seed is the run's journaled seed, so a run's reconnect schedule is reproducible.
- Every frame becomes ``FeedFrame(conn, text)`` stamped with its receipt time; every connection change becomes
  ``FeedStatus``. Parsing happens in the core (the book actor), so parser bugs replay too.
"""
from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence

import msgspec
import trio
from trio_websocket import ConnectionClosed, ConnectionTimeout, HandshakeError, open_websocket_url

from actors.edge.clock import Emit
from events.market import FeedFrame, FeedStatus

MAX_MESSAGE = 16 * 1024 * 1024


class FeedSettings(msgspec.Struct, frozen=True, kw_only=True):
    ping_interval_s: float = 10.0
    silence_timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0


def backoff_s(attempt: int, rng: random.Random, settings: FeedSettings) -> float:
    """Capped exponential backoff with "equal jitter": half fixed, half random."""
    base = min(settings.backoff_max_s, settings.backoff_initial_s * (2 ** min(attempt, 30)))
    return base / 2 + rng.random() * base / 2


async def read_with_watchdog(ws, settings: FeedSettings, on_text: Callable[[str], Awaitable[None]]) -> str:
    """Read frames until the socket falls silent; returns why. Closing raises ``ConnectionClosed`` as usual.

    Text ``PING`` is sent every ``ping_interval_s``; ``silence_timeout_s`` without ANY inbound frame (PONG
    included) ends the read. No extra task: only ``get_message`` is ever timed out, so a frame that has been
    received is always handed to ``on_text`` (which journals it).
    """
    s = settings
    now = trio.current_time()
    last_rx, next_ping = now, now + s.ping_interval_s
    while True:
        wait = min(next_ping, last_rx + s.silence_timeout_s) - trio.current_time()
        with trio.move_on_after(max(wait, 0)) as cs:
            msg = await ws.get_message()
        now = trio.current_time()
        if cs.cancelled_caught:
            if now >= last_rx + s.silence_timeout_s:
                return f"silent: no frame for {s.silence_timeout_s:g} s"
            if now >= next_ping:
                await ws.send_message("PING")
                next_ping = now + s.ping_interval_s
            continue
        last_rx = now
        await on_text(msg if isinstance(msg, str) else msg.decode("utf-8", errors="replace"))


class MarketFeed:
    """The market-channel edge actor. ``run`` loops until cancelled."""

    def __init__(self, url: str, tokens: Sequence[str], emit: Emit, *, seed: int, settings: FeedSettings) -> None:
        self.url = url
        self.tokens = list(tokens)
        self.emit = emit
        self.settings = settings
        self.rng = random.Random(seed)
        self.conn = 0
        self.reconnects = 0

    def subscribe_message(self) -> str:
        return msgspec.json.encode(
            {"assets_ids": self.tokens, "type": "market", "initial_dump": True, "custom_feature_enabled": False}
        ).decode()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        attempt = 0
        started = False
        while True:
            self.conn += 1
            conn = self.conn
            if conn > 1:
                self.reconnects += 1
            await self.emit("feed", FeedStatus(conn=conn, state="connecting", detail=self.url))
            if not started:
                task_status.started()
                started = True
            detail = await self._session(conn)
            if detail is None:  # a session that got frames resets the backoff
                attempt = 0
                detail = "closed"
            await self.emit("feed", FeedStatus(conn=conn, state="disconnected", detail=detail))
            delay = backoff_s(attempt, self.rng, self.settings)
            attempt += 1
            await trio.sleep(delay)

    async def _session(self, conn: int) -> str | None:
        """One connection. Returns None if it ended after receiving frames, else what went wrong.

        PING and the silence watchdog run inline (no extra task): only ``get_message`` is ever timed out, so a
        frame that has been received is always journaled.
        """
        s = self.settings
        got_frames = False
        try:
            async with open_websocket_url(
                self.url,
                message_queue_size=64,
                max_message_size=MAX_MESSAGE,
                connect_timeout=s.connect_timeout_s,
                disconnect_timeout=1,
            ) as ws:
                await ws.send_message(self.subscribe_message())
                await self.emit("feed", FeedStatus(conn=conn, state="connected", detail=self.url))

                async def on_text(text: str) -> None:
                    nonlocal got_frames
                    got_frames = True
                    await self.emit("feed", FeedFrame(conn=conn, text=text))

                return await read_with_watchdog(ws, s, on_text)
        except ConnectionTimeout:
            return f"connect timeout after {s.connect_timeout_s:g} s"
        except ConnectionClosed as exc:
            if got_frames:
                return None
            reason = exc.reason
            return f"closed: {getattr(reason, 'code', '')} {getattr(reason, 'reason', '') or ''}".strip()
        except HandshakeError as exc:
            return f"handshake failed: {type(exc).__name__} {exc}".strip()
        except OSError as exc:
            return f"connect failed: {exc.strerror or exc}"
        return None
