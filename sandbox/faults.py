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
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from .scenarios import Scenario

WS_FAULTS = ("drop", "half_open", "stall", "malformed", "unknown_event", "bad_price")
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
)


class Faults:
    def __init__(self, scenario: Scenario | None = None, seed: int = 1) -> None:
        self._injector: Callable[[str, dict[str, Any]], int] | None = None
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
        d["counts"] = dict(self.counts)
        return d

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
                setattr(self, k, v)
        injected: dict[str, int] = {}
        inject = body.get("inject", [])
        if isinstance(inject, str):
            inject = [inject]
        for kind in inject:
            injected[kind] = self.inject(kind, seconds=body.get("seconds"), code=body.get("code"))
        return {"injected": injected}

    # ---- one-shot injections on the sockets connected now -------------------------------------------------
    def inject(self, kind: str, **kw: Any) -> int:
        if kind not in WS_FAULTS:
            raise ValueError(f"unknown ws fault {kind!r}; known: {', '.join(WS_FAULTS)}")
        if self._injector is None:
            return 0
        return self._injector(kind, {k: v for k, v in kw.items() if v is not None})

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
