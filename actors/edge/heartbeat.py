"""The heartbeat edge (the venue's dead-man switch) and the geoblock re-check. Both fail closed.

Heartbeat: ``POST /v1/heartbeats {"heartbeat_id": <previous id, "" to start>}`` every ``interval_s`` (5 s; the
venue cancels every open order of ours 10 s after the last one). Any failure (a non-200, a timeout, a stale id,
an unreadable reply) -> ``HeartbeatStatus(ok=False)`` and, the first time, ``KillSwitch(reason="heartbeat_failed")``
(no new orders without the dead-man switch; the risk gate latches HALTED and cancels everything). The chain then
restarts with "" (the venue has cancelled or will cancel our orders). ``LiveHealth.heartbeat_ok`` follows it.

Geoblock: the geoblock endpoint every ``every_s``; blocked, an error or a timeout -> ``GeoblockStatus(ok=False)``
and ``KillSwitch(reason="geoblocked")`` (once). There is no way to skip it.
"""
from __future__ import annotations

import httpx
import trio

from actors.edge.clock import Emit
from actors.edge.exchange import ExchangeRest, LiveHealth, describe, error_text, fetch_geoblock
from events.control import KillSwitch
from events.live import GeoblockStatus, HeartbeatStatus


class Heartbeat:
    """``run`` loops until cancelled. ``first`` is set once the first beat has an outcome (either way)."""

    def __init__(self, rest: ExchangeRest, emit: Emit, health: LiveHealth, *, interval_s: float = 5.0,
                 timeout_s: float = 3.0) -> None:
        self.rest = rest
        self.emit = emit
        self.health = health
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.heartbeat_id = ""
        self.beats = 0
        self.failures = 0
        self.tripped = False
        self.last_ok_time: float | None = None
        self.first = trio.Event()

    async def beat(self) -> str:
        """One heartbeat. Returns "" on success, else what went wrong."""
        from actors.edge.signing import serialize_body

        body = serialize_body({"heartbeat_id": self.heartbeat_id})
        try:
            r = await self.rest.request("POST", "/v1/heartbeats", body, wait_s=self.timeout_s)
        except httpx.HTTPError as exc:
            return f"no answer: {describe(exc)}"
        if r.status_code != 200:
            return f"HTTP {r.status_code} {error_text(r)}"
        try:
            nxt = r.json().get("heartbeat_id")
        except (ValueError, AttributeError):
            return "unreadable reply"
        if not isinstance(nxt, str) or not nxt:
            return "reply has no heartbeat_id"
        self.heartbeat_id = nxt
        return ""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            problem = await self.beat()
            if not problem:
                self.beats += 1
                self.last_ok_time = trio.current_time()
                if not self.health.heartbeat_ok:
                    self.health.heartbeat_ok = True
                    await self.emit("heartbeat", HeartbeatStatus(ok=True, detail="chain alive", beats=self.beats))
            else:
                self.failures += 1
                was_ok = self.health.heartbeat_ok
                self.health.heartbeat_ok = False
                self.heartbeat_id = ""  # restart the chain; assume the venue cancels our orders
                if was_ok or not self.tripped:
                    await self.emit("heartbeat", HeartbeatStatus(ok=False, detail=problem[:300], beats=self.beats))
                if not self.tripped:
                    self.tripped = True
                    await self.emit("heartbeat", KillSwitch(reason="heartbeat_failed", detail=problem[:300]))
            self.first.set()
            await trio.sleep(self.interval_s)


class GeoblockWatch:
    """Re-checks the geoblock every ``every_s`` (the start checks it in preflight)."""

    def __init__(self, client: httpx.AsyncClient, url: str, emit: Emit, health: LiveHealth, *, every_s: float = 300.0,
                 timeout_s: float = 10.0) -> None:
        self.client = client
        self.url = url
        self.emit = emit
        self.health = health
        self.every_s = every_s
        self.timeout_s = timeout_s
        self.tripped = False
        self.checks = 0

    async def check(self) -> None:
        ans = await fetch_geoblock(self.client, self.url, self.timeout_s)
        self.checks += 1
        if ans.ok:
            if not self.health.geoblock_ok:
                await self.emit("geoblock", GeoblockStatus(ok=True, blocked=False, detail=ans.detail))
            return
        self.health.geoblock_ok = False
        await self.emit("geoblock", GeoblockStatus(ok=False, blocked=ans.blocked, detail=ans.detail[:300]))
        if not self.tripped:
            self.tripped = True
            await self.emit("geoblock", KillSwitch(reason="geoblocked", detail=ans.detail[:300]))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(self.every_s)
            await self.check()
