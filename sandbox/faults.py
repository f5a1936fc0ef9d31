"""Fault injection switches.

`Faults` holds two kinds of controls:

* persistent settings (attributes; also settable over HTTP with ``POST /_sandbox/faults``):
  ``half_open``, ``ws_rates``, ``stall_seconds``, ``drop_code``, ``http_status`` / ``http_count`` /
  ``retry_after`` / ``http_paths``, ``http_delay``, ``http_error_rate`` / ``http_error_statuses``;
* one-shot injections (methods; over HTTP ``{"inject": [...]}``): ``drop()``, ``half_open_now()``, ``stall()``,
  ``malformed()``, ``unknown_event()``, ``bad_price()``. They act on the market sockets connected right now and
  return how many sockets they hit.

Every injection is counted in ``Faults.counts`` (kind -> number of sockets / requests hit) so tests can see it.

Random WS faults (``ws_rates``, probability per sim step) are drawn by `FaultPlan` from their own seeded
generator, so which steps carry faults depends only on the seed and scenario.

Order-side faults (the engine in `sandbox/engine.py` consumes them): ``submit_timeout`` (the order lands but
the reply is late or the connection drops), ``engine_restart()`` (425 then a post-only window),
``order_rate_limit`` (429 + Retry-After on the order endpoints), ``user_half_open`` / ``user_drop`` (user
channel), ``ghost_fill_rate`` / ``ghost_fill()`` (MATCHED trades that end FAILED) and ``heartbeat_fail``.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from .scenarios import Scenario

WS_FAULTS = ("drop", "half_open", "stall", "malformed", "unknown_event", "bad_price")
# one-shot order-side injections (`{"inject": [...]}`)
ORDER_FAULTS = ("engine_restart", "ghost_fill", "user_half_open", "user_drop")
SUBMIT_TIMEOUT_MODES = ("delay", "drop")
POST_ONLY_MODE_MESSAGE = "post-only mode: only post-only orders and cancels are allowed"
HTTP_ERROR_MESSAGES = {
    425: "Too Early: the matching engine is restarting",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
# paths never hit by the generic HTTP faults (the geoblock endpoint has its own switch)
HTTP_FAULT_EXEMPT = ("/_sandbox", "/api/geoblock")

_SETTABLE = (
    "half_open",
    "ws_rates",
    "stall_seconds",
    "drop_code",
    "http_status",
    "http_count",
    "retry_after",
    "http_paths",
    "http_delay",
    "http_error_rate",
    "http_error_statuses",
    "submit_timeout",
    "order_rate_limit",
    "user_half_open",
    "ghost_fill_rate",
    "heartbeat_fail",
)


class Faults:
    def __init__(self, scenario: Scenario | None = None, seed: int = 1) -> None:
        self._injector: Callable[[str, dict[str, Any]], int] | None = None
        self._user_injector: Callable[[str, dict[str, Any]], int] | None = None  # set by the user channel
        self._ghost_rng = random.Random(f"pmm-sandbox/ghost-fills/{seed}")
        self._clock: Callable[[], float] = _trio_now
        self._http_rng = random.Random(f"pmm-sandbox/http-faults/{seed}")
        self.counts: Counter[str] = Counter()
        self._scenario = scenario
        self.clear()

    # ---- persistent settings ------------------------------------------------------------------------------
    def clear(self) -> None:
        """Back to the scenario's fault settings (no faults for the plain market scenarios)."""
        sc = self._scenario
        self.half_open: bool = False  # every market socket silent: no frames, no PONG (not even new ones)
        self.ws_rates: dict[str, float] = dict(sc.ws_fault_rates) if sc else {}
        self.stall_seconds: float = sc.stall_seconds if sc else 1.0
        self.drop_code: int = 1011  # close code sent by the drop fault
        self.http_status: int | None = None  # every REST call answers this status (425, 429, 5xx)
        self.http_count: int | None = (
            None  # ... for this many calls, then it clears itself (None = until cleared)
        )
        self.retry_after: int = 1  # Retry-After seconds on 429 / 503
        self.http_paths: list[str] | None = None  # path prefixes the HTTP faults apply to (None = all REST)
        self.http_delay: float = sc.http_delay if sc else 0.0  # seconds added before every REST answer
        self.http_error_rate: float = sc.http_error_rate if sc else 0.0  # random errors, per request
        self.http_error_statuses: list[int] = (
            list(sc.http_error_statuses) if sc else [425, 429, 500, 502, 503]
        )
        # ---- order side ----
        # {"mode": "delay" | "drop", "seconds": 30.0, "count": 1}: POST /order(s) is executed (the order lands)
        # but the reply comes `seconds` late ("delay") or the connection is cut mid-reply ("drop")
        self.submit_timeout: dict[str, Any] | None = None
        # {"count": 1 | None, "retry_after": 1}: order endpoints answer 429 + Retry-After
        self.order_rate_limit: dict[str, Any] | None = None
        self.user_half_open: bool = False  # every user socket silent (events dropped, no PONG) while true
        self.ghost_fill_rate: float = (
            0.0  # chance a trade with user orders goes MATCHED -> RETRYING -> FAILED
        )
        self.ghost_fills: int = 0  # one-shot: the next n such trades fail
        # {"status": 503, "count": None}: POST /v1/heartbeats answers `status` and does not count as a heartbeat
        self.heartbeat_fail: dict[str, Any] | None = None
        self.restart_until: float | None = None  # trio time: order endpoints answer 425 until then
        self.post_only_until: float | None = None  # ... then only post-only orders and cancels until this

    def http_error(
        self, status: int, count: int | None = None, retry_after: int = 1, paths: list[str] | None = None
    ) -> None:
        """Answer REST calls with `status` (e.g. 425, 429, 500, 503), `count` times or until cleared."""
        self.http_status, self.http_count, self.retry_after, self.http_paths = (
            status,
            count,
            retry_after,
            paths,
        )

    def slow(self, delay: float, paths: list[str] | None = None) -> None:
        """Delay every REST answer by `delay` seconds."""
        self.http_delay = delay
        if paths is not None:
            self.http_paths = paths

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in _SETTABLE}
        d["ghost_fills"] = self.ghost_fills
        mode, left = self.engine_mode()
        d["engine_mode"] = mode
        d["engine_mode_seconds_left"] = left
        d["counts"] = dict(self.counts)
        return d

    # ---- order side: switches -----------------------------------------------------------------------------
    def lose_submit_reply(self, mode: str = "delay", seconds: float = 30.0, count: int | None = 1) -> None:
        """The next `count` POST /order(s) land (the orders rest / match) but the reply is `seconds` late
        ("delay", on trio's clock) or the connection is cut after half the reply ("drop")."""
        self.submit_timeout = _check_submit_timeout({"mode": mode, "seconds": seconds, "count": count})

    def engine_restart(self, seconds: float = 90.0, post_only_seconds: float = 120.0) -> int:
        """Matching-engine restart now: every order endpoint answers 425 for `seconds`, then for
        `post_only_seconds` only cancels and post-only orders are accepted (others: 503 post-only mode)."""
        now = self._clock()
        self.restart_until = now + float(seconds)
        self.post_only_until = self.restart_until + float(post_only_seconds)
        self.counts["engine_restart"] += 1
        return 1

    def rate_limit_orders(self, count: int | None = 1, retry_after: int = 1) -> None:
        """The next `count` calls to an order endpoint (None = until cleared) answer 429 with Retry-After."""
        self.order_rate_limit = {"count": count, "retry_after": int(retry_after)}

    def ghost_fill(self, n: int = 1) -> int:
        """The next `n` trades that involve a user order go MATCHED -> RETRYING -> FAILED (then restored)."""
        self.ghost_fills += int(n)
        return int(n)

    def fail_heartbeats(self, status: int = 503, count: int | None = None) -> None:
        """POST /v1/heartbeats answers `status` (`count` times, None = until cleared); the failed calls do not
        count as heartbeats, so the dead-man switch still fires."""
        self.heartbeat_fail = {"status": int(status), "count": count}

    def user_half_open_now(self) -> int:
        """User sockets connected now go silent (events dropped, PING unanswered); new ones are fine."""
        return self.inject("user_half_open")

    def user_drop(self, code: int | None = None) -> int:
        """Close every user socket now (close frame `code`, default `drop_code`)."""
        return self.inject("user_drop", code=code)

    # ---- order side: consumed by the engine ---------------------------------------------------------------
    def engine_mode(self) -> tuple[str | None, float]:
        """("restart" | "post_only" | None, seconds left)."""
        if self.restart_until is None and self.post_only_until is None:
            return None, 0.0
        now = self._clock()
        if self.restart_until is not None and now < self.restart_until:
            return "restart", self.restart_until - now
        if self.post_only_until is not None and now < self.post_only_until:
            return "post_only", self.post_only_until - now
        self.restart_until = self.post_only_until = None
        return None, 0.0

    def take_order_rate_limit(self) -> int | None:
        """Retry-After seconds if this order call is rate limited, else None."""
        rl = self.order_rate_limit
        if rl is None:
            return None
        if rl.get("count") is not None:
            rl["count"] -= 1
            if rl["count"] <= 0:
                self.order_rate_limit = None
        self.counts["order_429"] += 1
        return int(rl.get("retry_after", 1))

    def take_submit_timeout(self) -> dict[str, Any] | None:
        st = self.submit_timeout
        if st is None:
            return None
        if st.get("count") is not None:
            st["count"] -= 1
            if st["count"] <= 0:
                self.submit_timeout = None
        self.counts[f"submit_{st['mode']}"] += 1
        return dict(st)

    def take_ghost(self) -> bool:
        r = self._ghost_rng.random()  # always drawn, so the sequence does not shift with the settings
        if self.ghost_fills > 0:
            self.ghost_fills -= 1
        elif not (self.ghost_fill_rate and r < self.ghost_fill_rate):
            return False
        self.counts["ghost_fill"] += 1
        return True

    def take_heartbeat_fail(self) -> int | None:
        hf = self.heartbeat_fail
        if hf is None:
            return None
        if hf.get("count") is not None:
            hf["count"] -= 1
            if hf["count"] <= 0:
                self.heartbeat_fail = None
        self.counts["heartbeat_fail"] += 1
        return int(hf.get("status", 503))

    def update(self, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a JSON control body (see docs/sandbox.md). Returns {"injected": {kind: sockets hit}}."""
        if body.get("clear"):
            self.clear()
        for k in _SETTABLE:
            if k in body:
                v = body[k]
                if k == "ws_rates":
                    unknown = set(v) - set(WS_FAULTS)
                    if unknown:
                        raise ValueError(f"unknown ws fault(s): {sorted(unknown)}")
                    v = {kk: float(vv) for kk, vv in v.items()}
                elif k == "submit_timeout" and v is not None:
                    v = _check_submit_timeout(v)
                elif k == "order_rate_limit" and v is not None:
                    v = {"count": v.get("count", 1), "retry_after": int(v.get("retry_after", 1))}
                elif k == "heartbeat_fail" and v is not None:
                    v = {"status": int(v.get("status", 503)), "count": v.get("count")}
                elif k == "ghost_fill_rate":
                    v = float(v)
                setattr(self, k, v)
        injected: dict[str, int] = {}
        inject = body.get("inject", [])
        if isinstance(inject, str):
            inject = [inject]
        for kind in inject:
            if kind == "engine_restart":
                injected[kind] = self.engine_restart(
                    float(body.get("seconds", 90.0)), float(body.get("post_only_seconds", 120.0))
                )
            elif kind == "ghost_fill":
                injected[kind] = self.ghost_fill(int(body.get("n", 1)))
            else:
                injected[kind] = self.inject(kind, seconds=body.get("seconds"), code=body.get("code"))
        return {"injected": injected}

    # ---- one-shot injections on the sockets connected now -------------------------------------------------
    def inject(self, kind: str, **kw: Any) -> int:
        opts = {k: v for k, v in kw.items() if v is not None}
        if kind in ("user_half_open", "user_drop"):
            return 0 if self._user_injector is None else self._user_injector(kind, opts)
        if kind not in WS_FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(WS_FAULTS + ORDER_FAULTS)}")
        if self._injector is None:
            return 0
        return self._injector(kind, opts)

    def drop(self, code: int | None = None) -> int:
        """Close every market socket now (close frame with `drop_code`, default 1011)."""
        return self.inject("drop", code=code)

    def half_open_now(self) -> int:
        """Make the sockets connected now silent forever (no frames, no PONG); new connections are fine."""
        return self.inject("half_open")

    def stall(self, seconds: float | None = None) -> int:
        """Hold everything (frames and PONGs) for `seconds` (default `stall_seconds`), then send it in a burst."""
        return self.inject("stall", seconds=seconds)

    def malformed(self) -> int:
        """Send one truncated JSON frame."""
        return self.inject("malformed")

    def unknown_event(self) -> int:
        """Send one event with an unknown `event_type`."""
        return self.inject("unknown_event")

    def bad_price(self) -> int:
        """Send one `price_change` with an out-of-range price ("1.5" or "-0.1", alternating)."""
        return self.inject("bad_price")

    # ---- HTTP ---------------------------------------------------------------------------------------------
    def _applies(self, path: str) -> bool:
        if self.http_paths is not None:
            return any(path.startswith(p) for p in self.http_paths)
        return not path.startswith(HTTP_FAULT_EXEMPT)

    def http_plan(self, path: str) -> tuple[float, int | None]:
        """(delay seconds, error status or None) for one REST request; counts what it decides."""
        if not self._applies(path):
            return 0.0, None
        delay = self.http_delay
        if delay:
            self.counts["http_delay"] += 1
        status = None
        if self.http_status is not None:
            status = self.http_status
            if self.http_count is not None:
                self.http_count -= 1
                if self.http_count <= 0:
                    self.http_status = self.http_count = None
        elif self.http_error_rate and self._http_rng.random() < self.http_error_rate:
            status = self._http_rng.choice(self.http_error_statuses)
        if status is not None:
            self.counts[f"http_{status}"] += 1
        return delay, status


class FaultPlan:
    """Which random WS faults fire on each sim step: a pure function of (seed, step number, rates)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(f"pmm-sandbox/ws-faults/{seed}")

    def step(self, rates: dict[str, float]) -> list[str]:
        out = []
        for kind in WS_FAULTS:
            r = self.rng.random()  # always drawn, so the plan does not shift when a rate changes
            if r < rates.get(kind, 0.0):
                out.append(kind)
        return out


# ---- injected frame texts --------------------------------------------------------------------------------
def malformed_frame(market: str, asset_id: str, ts: str) -> str:
    full = (
        f'{{"event_type":"price_change","market":"{market}","timestamp":"{ts}","price_changes":'
        f'[{{"asset_id":"{asset_id}","price":"0.5","size":"10","side":"BUY","hash":"0",'
        '"best_bid":"0.5","best_ask":"0.51"}]}'
    )
    return full[: len(full) // 2]


def unknown_event(market: str, asset_id: str, ts: str) -> dict[str, Any]:
    return {
        "event_type": "sandbox_unknown_event",
        "market": market,
        "asset_id": asset_id,
        "timestamp": ts,
        "detail": "injected by the sandbox: clients must count and skip unknown event types",
    }


def bad_price_event(market: str, asset_id: str, ts: str, price: str) -> dict[str, Any]:
    return {
        "event_type": "price_change",
        "market": market,
        "timestamp": ts,
        "price_changes": [
            {
                "asset_id": asset_id,
                "price": price,
                "size": "10",
                "side": "SELL" if price.startswith("1") else "BUY",
                "hash": "0" * 40,
                "best_bid": price if price.startswith("-") else "0",
                "best_ask": price if price.startswith("1") else "1",
            }
        ],
    }


def _trio_now() -> float:
    import trio

    try:
        return trio.current_time()
    except RuntimeError:  # outside trio (pure unit tests)
        return 0.0


def _check_submit_timeout(v: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ValueError("submit_timeout must be an object or null")
    mode = v.get("mode", "delay")
    if mode not in SUBMIT_TIMEOUT_MODES:
        raise ValueError(f"submit_timeout mode must be one of {SUBMIT_TIMEOUT_MODES}")
    seconds = float(v.get("seconds", 30.0))
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("submit_timeout seconds must be >= 0")
    count = v.get("count", 1)
    return {"mode": mode, "seconds": seconds, "count": None if count is None else int(count)}
