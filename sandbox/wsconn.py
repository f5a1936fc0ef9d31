"""One server-side WebSocket connection of the sandbox (market and user channels alike), over ASGI.

Every connection has an unbounded outbox (a trio memory channel) drained by one writer task, so a hub puts frames
in synchronously and in order; a PONG queued after them answers a PING only once they are sent (tests use PING as
a barrier). Faults act on the connection: ``drop`` (close with a code after the frames already sent), a silent
half-open socket (frames are discarded, nothing is closed), ``stall`` (the writer pauses). A consumer more than
``MAX_OUTBOX`` frames behind is cut off with close code 1008.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import trio

MAX_OUTBOX = 200_000
"""Frames queued for one socket before it is cut off as a slow consumer (close 1008)."""
_DROP = object()


class WsConnection:
    """The outbox and fault state of one socket; the channel's subclass adds its subscription."""

    _ids = itertools.count(1)

    def __init__(self) -> None:
        self.id = next(self._ids)
        self.half_open = False
        self.stalled_until: float | None = None
        self.stall_scope: trio.CancelScope | None = None
        self.drop_code: int | None = None
        self.drop_reason = ""
        self.frames_sent = 0
        self.frames_discarded = 0
        self.send_ch, self.recv_ch = trio.open_memory_channel[Any](math.inf)

    @property
    def silent(self) -> bool:
        """A half-open socket: frames are discarded, PINGs unanswered, nothing is closed."""
        return self.half_open

    def on_slow_consumer(self) -> None:
        """Called before a slow consumer is dropped (for the channel's stats)."""

    def push(self, item: Any) -> None:
        if self.drop_code is not None:
            return
        if self.send_ch.statistics().current_buffer_used >= MAX_OUTBOX:
            self.on_slow_consumer()
            self.drop(1008, "sandbox: slow consumer")
            return
        self.send_ch.send_nowait(item)

    def drop(self, code: int, reason: str = "sandbox: connection dropped (fault)") -> None:
        if self.drop_code is None:
            self.drop_code, self.drop_reason = code, reason
            self.send_ch.send_nowait(_DROP)  # wakes an idle writer
            if self.stall_scope is not None:
                self.stall_scope.cancel()

    def stall(self, seconds: float) -> None:
        until = trio.current_time() + seconds
        self.stalled_until = until if self.stalled_until is None else max(until, self.stalled_until)


async def accept(receive: Any, send: Any) -> bool:
    """Complete the ASGI WebSocket handshake; False when the client went away first."""
    msg = await receive()
    if msg["type"] != "websocket.connect":
        return False
    await send({"type": "websocket.accept"})
    return True


async def serve(
    conn: WsConnection,
    receive: Any,
    send: Any,
    *,
    conns: set[Any],
    on_text: Callable[[str], None],
    on_sent: Callable[[], None],
) -> None:
    """On an accepted socket: hand every text frame to ``on_text`` and write ``conn``'s outbox until either side
    ends. ``conn`` is in ``conns`` (its hub's live connections) meanwhile; ``on_sent`` is called after each frame
    written (stats)."""
    conns.add(conn)
    try:
        await _serve(conn, receive, send, on_text, on_sent)
    finally:
        conns.discard(conn)


async def _serve(
    conn: WsConnection, receive: Any, send: Any, on_text: Callable[[str], None], on_sent: Callable[[], None]
) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_writer, conn, send, on_sent, nursery.cancel_scope)
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                break
            text = msg.get("text")
            if text is None and msg.get("bytes") is not None:
                text = msg["bytes"].decode("utf-8", "replace")
            if text is not None:
                on_text(text)
        nursery.cancel_scope.cancel()


async def _writer(conn: WsConnection, send: Any, on_sent: Callable[[], None], scope: trio.CancelScope) -> None:
    async for item in conn.recv_ch:
        while conn.drop_code is None and conn.stalled_until is not None:
            if trio.current_time() >= conn.stalled_until:
                conn.stalled_until = None
                break
            with trio.CancelScope() as conn.stall_scope:
                await trio.sleep_until(conn.stalled_until)
            conn.stall_scope = None
        if conn.drop_code is not None or item is _DROP:
            break
        if conn.silent:
            conn.frames_discarded += 1
            continue
        await send({"type": "websocket.send", "text": item})
        conn.frames_sent += 1
        on_sent()
    if conn.drop_code is not None:
        await send({"type": "websocket.close", "code": conn.drop_code, "reason": conn.drop_reason})
    scope.cancel()
