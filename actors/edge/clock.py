"""Clocks for edge actors (the only code that reads time) and the tick edge.

``WallClock`` is the real one. ``TrioClock`` maps trio's clock onto a fixed epoch, so a test running on
``MockClock``/``autojump_clock`` gets deterministic, fast-forwardable receipt times.
"""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

from events.control import Tick


class Clock(Protocol):
    def now_ns(self) -> int: ...


class WallClock:
    def now_ns(self) -> int:
        return time.time_ns()


class TrioClock:
    """``epoch_ns`` + trio's current time: deterministic under a MockClock."""

    def __init__(self, epoch_ns: int = 1_700_000_000 * 10**9) -> None:
        self.epoch_ns = epoch_ns

    def now_ns(self) -> int:
        return self.epoch_ns + int(trio.current_time() * 1e9)


Emit = Callable[[str, object], Awaitable[None]]


async def run_ticks(emit: Emit, interval_s: float, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Emit a ``Tick`` every ``interval_s`` until cancelled. Ticks are how time reaches the core."""
    task_status.started()
    while True:
        await trio.sleep(interval_s)
        await emit("clock", Tick())
