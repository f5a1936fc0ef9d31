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
    """Event time for a real session: the wall clock read once, at construction, plus the time elapsed since on a
    clock that is never stepped.

    Reading ``time.time_ns()`` directly made event time follow steps of the system clock (NTP, an operator setting
    the date): a step backwards froze event time (the sequencer clamps it), so every time-driven safety check
    (stale feed, book invalid, ack timeouts) stopped until the wall clock caught up; a step forwards tripped a false
    stale-feed kill switch. Found by ``pmm chaos`` (docs/reliability.md). The elapsed-time clock is
    ``CLOCK_BOOTTIME`` on Linux and ``CLOCK_MONOTONIC`` on macOS (both keep counting while the machine sleeps, so a
    suspended laptop still shows its feed as stale on wake-up), else ``time.monotonic_ns``.
    """

    def __init__(self) -> None:
        self._elapsed = _elapsed_clock()
        self._wall0 = time.time_ns()
        self._t0 = self._elapsed()

    def now_ns(self) -> int:
        return self._wall0 + (self._elapsed() - self._t0)


def _elapsed_clock() -> Callable[[], int]:
    """A nanosecond clock that only moves forward and is never stepped (see ``WallClock``)."""
    import sys

    clock_id = getattr(time, "CLOCK_BOOTTIME", None) if sys.platform.startswith("linux") else (
        getattr(time, "CLOCK_MONOTONIC", None) if sys.platform == "darwin" else None)
    if clock_id is not None:
        try:
            time.clock_gettime_ns(clock_id)
        except OSError:
            clock_id = None
    if clock_id is None:
        return time.monotonic_ns
    return lambda: time.clock_gettime_ns(clock_id)


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
