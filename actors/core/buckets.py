"""Token buckets in integer arithmetic, refilled only from event time (``env.ts_ns``)."""
from __future__ import annotations

from actors.core.base import InvariantError

UNIT = 10**9
"""One token, in nano-tokens: a rate of r tokens per second adds exactly r nano-tokens per nanosecond."""


class TokenBucket:
    """``burst`` tokens of capacity, refilled at ``rate_per_sec`` tokens per second. Starts full.

    The level is kept in nano-tokens, so refilling is exact: ``level += elapsed_ns * rate_per_sec``. Time comes
    from the caller (the envelope's ``ts_ns``); a timestamp earlier than the last one seen is an invariant error
    (the sequencer never lets time go backwards).
    """

    __slots__ = ("_cap", "_last_ns", "_level", "_rate")

    def __init__(self, rate_per_sec: int, burst: int) -> None:
        if rate_per_sec < 1 or burst < 1:
            raise ValueError("a token bucket needs a rate and a burst of at least 1")
        self._rate = rate_per_sec
        self._cap = burst * UNIT
        self._level = self._cap
        self._last_ns: int | None = None

    def _refill(self, now_ns: int) -> None:
        last = self._last_ns
        if last is not None:
            if now_ns < last:
                raise InvariantError(f"token bucket time went backwards: {now_ns} < {last}")
            self._level = min(self._cap, self._level + (now_ns - last) * self._rate)
        self._last_ns = now_ns

    def available(self, now_ns: int) -> bool:
        """True iff a whole token is there now (nothing is taken)."""
        self._refill(now_ns)
        return self._level >= UNIT

    def take(self, now_ns: int) -> bool:
        """Take one token iff a whole one is there; False (and nothing taken) otherwise."""
        self._refill(now_ns)
        if self._level >= UNIT:
            self._level -= UNIT
            return True
        return False

    def tokens(self, now_ns: int) -> int:
        """Whole tokens available now."""
        self._refill(now_ns)
        return self._level // UNIT
