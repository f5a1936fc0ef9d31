"""Run the sandbox exchange in-process: `async with open_sandbox(seed=1, scenario="calm", port=0) as sb: ...`.

One hypercorn trio worker serves the ASGI app (REST + WebSocket on one port, bound to 127.0.0.1 only). A timer
task advances the simulator `steps_per_second` times a second on trio's clock (so a MockClock drives it) and
broadcasts each step's frames; with ``steps_per_second=0`` the sim only moves when `sb.step()` is called.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from . import orders
from .app import SandboxApp
from .book import BookSnapshot
from .exchange import ExchangeState
from .faults import FaultPlan, Faults
from .markets import MarketSpec
from .auth import DEFAULT_SERVER_SECRET, ApiCreds
from .audit import Audit
from .engine import OrderEngine
from .playback import PlaybackSource, load_jsonl
from .scenarios import Scenario, get_scenario
from .sim import T0_MS, MarketSim

log = logging.getLogger("sandbox")


class Sandbox:
    """Handle to a running sandbox exchange (see `open_sandbox`)."""

    def __init__(
        self,
        state: ExchangeState,
        *,
        sim: MarketSim | None,
        playback: PlaybackSource | None,
        steps_per_second: float,
        wall_timestamps: bool,
        server_secret: bytes = DEFAULT_SERVER_SECRET,
        collateral: float = 10_000.0,
        tokens: float = 0.0,
    ) -> None:
        self.state = state
        self.sim = sim
        self.playback = playback
        self.steps_per_second = steps_per_second
        self.wall_timestamps = wall_timestamps
        self._plan = FaultPlan(state.seed)
        self.port = 0
        self.app = SandboxApp(state, stepper=self.step if sim is not None else None)
        self.orders: OrderEngine = orders.register(
            self.app,
            server_secret=server_secret,
            collateral=collateral,
            tokens=tokens,
            market_ts=self._market_ts,
        )

    # ---- URLs ---------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def market_ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/market"

    @property
    def geoblock_url(self) -> str:
        return self.base_url + "/api/geoblock"

    @property
    def faults_url(self) -> str:
        return self.base_url + "/_sandbox/faults"

    @property
    def user_ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/user"

    def urls(self) -> dict[str, str]:
        return {
            "base_url": self.base_url,
            "market_ws_url": self.market_ws_url,
            "user_ws_url": self.user_ws_url,
            "geoblock_url": self.geoblock_url,
            "faults_url": self.faults_url,
        }

    # ---- order side ---------------------------------------------------------------------------------------
    @property
    def audit(self) -> Audit:
        """Every order / cancel / heartbeat received, with its verdict (see sandbox/audit.py)."""
        return self.orders.audit

    def open_orders(self, address: str | None = None) -> list[dict[str, Any]]:
        """Open (LIVE) orders, as `/data/orders` rows plus `address` (the API key's address)."""
        return [{**self.orders.order_json(o), "address": o.address} for o in self.orders.open_orders(address)]

    def creds_for(self, address: str, nonce: int = 0) -> ApiCreds:
        """The API creds of (address, nonce), registered without an L1 request."""
        return self.orders.creds_for(address, nonce)

    def trade(self, token_id: str, side: str, size: float) -> list[Any]:
        """A synthetic taker now: `side` BUY lifts `token_id`'s asks, SELL hits its bids, `size` shares."""
        return self.orders.synthetic_trade(token_id, side, round(size * 1_000_000))

    def _market_ts(self) -> str:
        if self.wall_timestamps or self.sim is None:
            return str(time.time_ns() // 1_000_000)
        return str(self.sim.now_ms)

    # ---- state --------------------------------------------------------------------------------------------
    @property
    def seed(self) -> int:
        return self.state.seed

    @property
    def scenario(self) -> str:
        return self.state.scenario

    @property
    def faults(self) -> Faults:
        return self.state.faults

    @property
    def stats(self) -> Any:
        return self.state.stats

    @property
    def markets(self) -> list[MarketSpec]:
        """Markets: `.condition_id`, `.yes_token`, `.no_token`, `.tokens`, reward params ..."""
        return self.state.markets

    @property
    def token_ids(self) -> list[str]:
        return self.state.source.token_ids

    def book(self, token_id: str) -> BookSnapshot:
        """The sandbox's own current book for a token (best level first, Decimal prices/sizes)."""
        return self.state.source.book(token_id)

    def set_geoblock(self, mode: str) -> None:
        """'allowed' | 'blocked' | 'down' (HTTP 503)."""
        self.state.set_geoblock(mode)

    @property
    def connections(self) -> int:
        return len(self.state.hub.conns)

    # ---- stepping -----------------------------------------------------------------------------------------
    def step(self, n: int = 1) -> list[Any]:
        """Advance the simulator `n` steps now, broadcast the frames, fire scheduled random faults.
        Returns the frames (as built by the sim, before per-subscriber filtering)."""
        if self.sim is None:
            raise RuntimeError("no simulator in playback mode")
        out: list[Any] = []
        for _ in range(n):
            now_ms = time.time_ns() // 1_000_000 if self.wall_timestamps else None
            frames = self.sim.step(now_ms)
            self.state.hub.broadcast(frames)
            for kind in self._plan.step(self.faults.ws_rates):
                self.state.hub.inject(kind, {})
            out += frames
        return out

    async def _ticker(self) -> None:
        if self.steps_per_second <= 0:
            return
        interval = 1.0 / self.steps_per_second
        t = trio.current_time()
        while True:
            t += interval
            await trio.sleep_until(t)
            now = trio.current_time()
            if now - t > 1.0:  # fell far behind (e.g. a debugger pause): don't replay the backlog
                t = now
            self.step()


@asynccontextmanager
async def open_sandbox(
    seed: int = 1,
    scenario: str | Scenario = "calm",
    port: int = 0,
    *,
    steps_per_second: float | None = None,
    geoblock: str = "allowed",
    playback: PlaybackSource | str | Path | None = None,
    speed: float = 1.0,
    page_size: int = 2,
    t0_ms: int = T0_MS,
    wall_timestamps: bool = False,
    graceful_timeout: float = 1.0,
    server_secret: bytes = DEFAULT_SERVER_SECRET,
    collateral: float = 10_000.0,
    tokens: float = 0.0,
) -> AsyncIterator[Sandbox]:
    """Start a sandbox exchange on 127.0.0.1:`port` (0 = a free port) for the duration of the block.

    - `scenario`: a name from `sandbox.scenarios.SCENARIOS` (or a `Scenario`); sets dynamics and default faults.
    - `steps_per_second`: override the scenario's sim rate; 0 = only explicit `sb.step()`.
    - `playback`: a `PlaybackSource` or a JSON-lines file of {"ts_ns", "frame"}; replaces the simulator.
    - `page_size`: page size of the cursor-paginated endpoints (small by default so clients paginate).
    - `t0_ms` / `wall_timestamps`: event timestamps are sim time (t0 + step * step_ms, deterministic) unless
      `wall_timestamps` is set.
    - order side: `server_secret` (API creds are derived from it), `collateral` (pUSD every account starts
      with) and `tokens` (shares of every outcome token every account starts with).
    """
    sc = get_scenario(scenario)
    sim: MarketSim | None = None
    pb: PlaybackSource | None = None
    if playback is not None:
        pb = (
            playback
            if isinstance(playback, PlaybackSource)
            else PlaybackSource(load_jsonl(playback), speed=speed)
        )
        source: Any = pb
        scenario_name = "playback"
    else:
        sim = MarketSim(seed, sc, t0_ms=t0_ms)
        source = sim
        scenario_name = sc.name
    faults = Faults(sc if pb is None else None, seed)
    state = ExchangeState(
        source, faults, seed=seed, scenario=scenario_name, geoblock=geoblock, page_size=page_size
    )
    sps = sc.steps_per_second if steps_per_second is None else steps_per_second
    sb = Sandbox(
        state,
        sim=sim,
        playback=pb,
        steps_per_second=sps,
        wall_timestamps=wall_timestamps,
        server_secret=server_secret,
        collateral=collateral,
        tokens=tokens,
    )

    if port:
        # fail early with a plain OSError (e.g. "Address already in use") rather than from inside the server
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", int(port)))

    config = Config()
    config.bind = [f"127.0.0.1:{int(port)}"]
    config.graceful_timeout = graceful_timeout
    config.accesslog = None
    config.errorlog = logging.getLogger("sandbox.http")
    config.keep_alive_timeout = 30
    shutdown = trio.Event()

    served = trio.Event()

    async def run_server(task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await serve(sb.app, config, shutdown_trigger=shutdown.wait, task_status=task_status)
        finally:
            served.set()

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(run_server)
        sb.port = int(binds[0].rsplit(":", 1)[1])
        nursery.start_soon(sb.orders.run)
        if sim is not None:
            nursery.start_soon(sb._ticker)
        if pb is not None:
            nursery.start_soon(pb.run, state.hub, state.hub.first_subscribe)
        try:
            yield sb
        finally:
            # close our sockets (1001 going away), then let hypercorn shut down gracefully, then stop the rest
            state.hub.close_all(1001)
            sb.orders.close()
            shutdown.set()
            with trio.move_on_after(graceful_timeout + 1.0) as cs:
                cs.shield = True
                await served.wait()
            nursery.cancel_scope.cancel()
