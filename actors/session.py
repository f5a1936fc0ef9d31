"""Running a session: shadow or paper, against the configured exchange (the built-in sandbox by default).

Boot order (each step finishes before the next starts, so no actor emits early): resolve endpoints ->
geoblock gate (real exchanges) -> discover markets -> open the journal -> sequencer + group commit ->
``RunStarted`` -> sinks (console, resync fetcher) -> edges (clock, feed). Stop (duration, Ctrl-C, SIGTERM):
edges stop, ``OperatorStop`` (the risk gate trips the kill switch and every open order is cancelled),
``RunEnded``, the sequencer drains, the journal is flushed, fsynced and closed.
"""
from __future__ import annotations

import math
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import trio

from actors.edge.clock import Clock, WallClock, run_ticks
from actors.edge.feed import FeedSettings, MarketFeed
from actors.edge.rest import BookFetcher, DiscoveryError, discover_markets
from actors.sequencer import Sequencer, Subscriber, run_sequencer
from actors.sink.stats import SessionStats
from actors.wiring import build_core
from events.control import OperatorStop, RunEnded, RunStarted
from events.market import ResyncRequest
from events.params import CoreParams, MarketParams
from journal import Journal
from pmm.config import AppConfig, config_hash
from replay.journal_io import JournalSink, header_info

from actors.version import run_version


class SessionError(RuntimeError):
    """The session cannot start. One line, meant for the operator."""


@dataclass
class Endpoints:
    rest_url: str
    market_ws_url: str
    geoblock_url: str
    sandbox: bool


def endpoints_for(base_url: str, *, sandbox: bool) -> Endpoints:
    base = base_url.rstrip("/")
    ws = re.sub(r"^http", "ws", base)
    return Endpoints(rest_url=base, market_ws_url=f"{ws}/ws/market", geoblock_url=f"{base}/api/geoblock", sandbox=sandbox)


def endpoints_from_config(cfg: AppConfig, exchange_url: str | None) -> Endpoints | None:
    """Endpoints from ``--exchange`` or config; None means "start the built-in sandbox"."""
    if exchange_url:
        return endpoints_for(exchange_url, sandbox=False)
    ex = cfg.exchange
    if not ex.rest_url:
        return None
    ep = endpoints_for(ex.rest_url, sandbox=False)
    return Endpoints(
        rest_url=ex.rest_url.rstrip("/"),
        market_ws_url=ex.market_ws_url or ep.market_ws_url,
        geoblock_url=ex.geoblock_url or ep.geoblock_url,
        sandbox=False,
    )


async def check_geoblock(client: httpx.AsyncClient, url: str) -> str:
    """Fail closed: returns a description when allowed, raises SessionError when blocked or unreachable."""
    try:
        r = await client.get(url, timeout=10)
        body = r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        raise SessionError(f"geoblock check failed ({url}: {type(exc).__name__}); refusing to start") from None
    if not isinstance(body, dict) or not isinstance(body.get("blocked"), bool):
        raise SessionError(f"geoblock check failed ({url}: HTTP {r.status_code}); refusing to start")
    where = f"{body.get('country', '?')}/{body.get('region', '?')}"
    if body["blocked"]:
        raise SessionError(f"geoblock: this location ({where}) is blocked by the exchange; refusing to start")
    return f"geoblock: allowed ({where})"


def prior_halt(journal_root: Path) -> str:
    """The halt reason of the previous run if it crashed while halted (a clean stop clears it)."""
    from events.control import KillSwitch
    from journal import JournalError, JournalReader
    from replay.journal_io import read_envelopes

    runs = sorted(p for p in journal_root.glob("*/") if p.is_dir()) if journal_root.exists() else []
    if not runs:
        return ""
    try:
        reader = JournalReader(runs[-1])
        halt, ended = "", False
        for _seq, _payload, env in read_envelopes(reader):
            if isinstance(env.ev, KillSwitch) and not halt:
                halt = env.ev.reason
            elif isinstance(env.ev, RunEnded):
                ended = True
        return "" if ended else halt
    except (JournalError, ValueError, OSError):
        return "previous_journal_unreadable"


async def resolve_markets(client: httpx.AsyncClient, rest_url: str, cfg: AppConfig) -> tuple[MarketParams, ...]:
    """Markets named completely in the config are used as given; a bare condition id is looked up; none: auto."""
    full = [m for m in cfg.markets if m.condition_id and m.yes_token and m.no_token]
    lookup = [m.condition_id for m in cfg.markets if m.condition_id and not (m.yes_token and m.no_token)]
    bad = [m for m in cfg.markets if not m.condition_id]
    if bad:
        raise DiscoveryError("config markets: each market needs a condition_id (and optionally yes_token, no_token)")
    out = [MarketParams(condition_id=m.condition_id, yes_token=m.yes_token, no_token=m.no_token) for m in full]
    if lookup or not cfg.markets:
        out += await discover_markets(client, rest_url, lookup, cfg.auto_markets)
    return tuple(out)


@dataclass
class SessionResult:
    run_dir: Path
    stats: SessionStats
    notes: list[str] = field(default_factory=list)


def new_run_id(mode: str, clock: Clock) -> str:
    t = datetime.fromtimestamp(clock.now_ns() / 1e9, tz=UTC)
    return f"{t:%Y%m%d-%H%M%S}-{mode}-{os.getpid()}"


def feed_settings(cfg: AppConfig) -> FeedSettings:
    """The market feed's connection settings (``cfg.feed``); the live user channel uses the same."""
    return FeedSettings(**{f: getattr(cfg.feed, f) for f in cfg.feed.__struct_fields__})


@dataclass
class Run:
    """One run's journal, sequencer and figures, opened the same way in every mode (``open_run``)."""

    mode: str
    run_id: str
    seed: int
    halt: str
    """The halt carried over from the previous run (``prior_halt``); "" when there is none."""
    run_dir: Path
    config_hash: str
    params: CoreParams
    journal: Journal
    sink: JournalSink
    sequencer: Sequencer
    stats: SessionStats

    def started(self) -> RunStarted:
        """The run's first input."""
        return RunStarted(run_id=self.run_id, mode=self.mode, version=run_version(), seed=self.seed,  # type: ignore[arg-type]
                          config_hash=self.config_hash, params=self.params, prior_halt=self.halt)

    def announce(self, clock: Clock, out: Callable[[str], None], what: str) -> None:
        """The run has started: its figures count from now; one line says so (``what``: the markets, the exchange),
        and one more when a carried-over halt keeps trading halted."""
        self.stats.mode, self.stats.run_id, self.stats.started_ns = self.mode, self.run_id, clock.now_ns()
        out(f"pmm {self.mode}: run {self.run_id}, {what}")
        if self.halt:
            out(f"pmm {self.mode}: the previous run crashed while halted ({self.halt}): trading stays HALTED in this run")


def open_run(cfg: AppConfig, params: CoreParams, *, mode: str, journal_root: Path, clock: Clock) -> Run:
    """A new run: its seed and id, the previous run's halt (read before this run's folder exists), its journal
    (created), a sequencer over the core of ``params``, and its figures. Nothing is journaled yet: the caller
    submits ``run.started()`` first."""
    seed = cfg.seed or (clock.now_ns() & 0x7FFF_FFFF_FFFF_FFFF)
    run_id = new_run_id(mode, clock)
    journal_root = Path(journal_root)
    halt = prior_halt(journal_root)
    run_dir = journal_root / run_id
    chash = config_hash(cfg)
    journal = Journal.create(run_dir, header_info(run_id=run_id, seed=seed, created_ns=clock.now_ns(), config_hash=chash))
    sink = JournalSink(journal)
    return Run(mode=mode, run_id=run_id, seed=seed, halt=halt, run_dir=run_dir, config_hash=chash, params=params,
               journal=journal, sink=sink, sequencer=Sequencer(sink, build_core(params)), stats=SessionStats())


async def run_shell(
    run: Run,
    cfg: AppConfig,
    inputs: tuple[trio.MemorySendChannel, trio.MemoryReceiveChannel],
    subscribers: list[Subscriber],
    edges: Callable[[trio.Nursery], Awaitable[str]],
    *,
    clock: Clock,
    out: Callable[[str], None],
    print_every_s: float,
    notes: list[str],
    after_edges: Callable[[str], Awaitable[None]] | None = None,
) -> SessionResult:
    """Run a started run to its end; every mode does this part the same way. The group commit and the sequencer
    (``inputs`` in, ``subscribers`` out) start first, then the console line and the status writer, then
    ``edges(nursery)``: it starts the mode's sinks and edges in that nursery (each via ``await nursery.start``),
    waits for the stop and returns its reason. Then the edges stop, ``after_edges(reason)`` runs (when given),
    ``RunEnded`` goes in, the sequencer drains every input and the journal is flushed, fsynced and closed. The final
    status is written however the run ends."""
    in_tx, in_rx = inputs
    journal, sink, stats = run.journal, run.sink, run.stats
    status_file = Path(cfg.status_file)
    publish = Path(cfg.publish_dir) if cfg.publish_dir else None
    try:
        async with trio.open_nursery() as core:
            core.start_soon(journal.run_group_commit)
            seq_done = trio.Event()

            async def sequencer_task(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                try:
                    await run_sequencer(run.sequencer, in_rx, flush=sink.flush, subscribers=subscribers,
                                        on_records=stats.feed_all, task_status=task_status)
                finally:
                    seq_done.set()

            await core.start(sequencer_task)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_printer, stats, clock, out, print_every_s)
                nursery.start_soon(_status_writer, stats, clock, run.run_dir, status_file, publish, notes)
                reason = await edges(nursery)
                nursery.cancel_scope.cancel()
            if after_edges is not None:
                await after_edges(reason)
            await in_tx.send(("session", clock.now_ns(), RunEnded(reason=reason)))
            await in_tx.aclose()
            await seq_done.wait()  # the sequencer drained every input, RunEnded included
            core.cancel_scope.cancel()
    finally:
        journal.close()
        _write_final_status(stats, clock, run.run_dir, status_file, notes, publish)
    return SessionResult(run_dir=run.run_dir, stats=stats, notes=notes)


async def run_session(
    cfg: AppConfig,
    *,
    mode: str,
    endpoints: Endpoints,
    duration_s: float | None,
    journal_root: Path,
    clock: Clock | None = None,
    out: Callable[[str], None] = print,
    stop: trio.Event | None = None,
    handle_signals: bool = True,
    print_every_s: float = 1.0,
) -> SessionResult:
    """Run one session to its end and return where its journal is, with the final figures."""
    clock = clock or WallClock()
    notes: list[str] = []
    async with httpx.AsyncClient() as client:
        if not endpoints.sandbox:
            notes.append(await check_geoblock(client, endpoints.geoblock_url))
        try:
            markets = await resolve_markets(client, endpoints.rest_url, cfg)
        except DiscoveryError as exc:
            raise SessionError(str(exc)) from None
        fills = {"shadow": "none", "paper": cfg.fills, "live": "live"}[mode]
        params = CoreParams(
            markets=markets, quoter=cfg.quoter, orders=cfg.orders, risk=cfg.risk, sim=cfg.sim,
            fills=fills, quoting=mode != "shadow",  # type: ignore[arg-type]
        )
        run = open_run(cfg, params, mode=mode, journal_root=journal_root, clock=clock)
        run.sequencer.submit("session", clock.now_ns(), run.started())
        run.sink.flush()
        run.announce(clock, out, f"{len(markets)} market(s) on {endpoints.rest_url}"
                     + (" (built-in sandbox)" if endpoints.sandbox else ""))
        for n in notes:
            out(f"pmm {mode}: {n}")

        in_tx, in_rx = trio.open_memory_channel(1024)

        async def emit(src: str, ev: object) -> None:
            await in_tx.send((src, clock.now_ns(), ev))

        resync_tx, resync_rx = trio.open_memory_channel(64)
        subs = [Subscriber("resync", lambda env: isinstance(env.ev, ResyncRequest), resync_tx)]

        async def edges(nursery: trio.Nursery) -> str:
            await nursery.start(BookFetcher(endpoints.rest_url, emit, client).run, resync_rx)
            await nursery.start(run_ticks, emit, cfg.tick_ms / 1000)
            tokens = [t for m in markets for t in (m.yes_token, m.no_token)]
            feed = MarketFeed(endpoints.market_ws_url, tokens, emit, seed=run.seed, settings=feed_settings(cfg))
            await nursery.start(feed.run)
            return await _wait_for_stop(duration_s, stop, handle_signals)

        async def operator_stop(reason: str) -> None:  # once the edges have stopped
            await in_tx.send(("operator", clock.now_ns(), OperatorStop(reason=reason)))

        return await run_shell(run, cfg, (in_tx, in_rx), subs, edges, clock=clock, out=out,
                               print_every_s=print_every_s, notes=notes, after_edges=operator_stop)


async def _wait_for_stop(duration_s: float | None, stop: trio.Event | None, handle_signals: bool) -> str:
    result = "duration elapsed"
    async with trio.open_nursery() as n:
        def done(why: str) -> None:
            nonlocal result
            result = why
            n.cancel_scope.cancel()

        async def timer() -> None:
            await trio.sleep(duration_s if duration_s is not None else math.inf)
            done("duration elapsed")

        async def event() -> None:
            assert stop is not None
            await stop.wait()
            done("stop requested")

        async def signals() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as rx:
                async for sig in rx:
                    done(f"operator stop ({signal.Signals(sig).name})")

        n.start_soon(timer)
        if stop is not None:
            n.start_soon(event)
        if handle_signals:
            n.start_soon(signals)
    return result


async def _printer(stats: SessionStats, clock: Clock, out: Callable[[str], None], every_s: float) -> None:
    while True:
        await trio.sleep(every_s)
        out(stats.line(clock.now_ns()))


async def _status_writer(
    stats: SessionStats, clock: Clock, run_dir: Path, path: Path, publish: Path | None, notes: list[str]
) -> None:
    """status.json every second; when publishing, a copy plus one summary line a minute (append-only).

    The status is built on the trio thread (it reads the live stats); the writes and fsyncs go to a worker
    thread so the sequencer never waits on the disk for it.
    """
    from actors.sink.status import build_status, publish_status, write_status

    n = 0
    while True:
        status = build_status(stats, now_ns=clock.now_ns(), version=run_version(), journal=run_dir, state="running",
                              preflight=notes)
        await trio.to_thread.run_sync(write_status, path, status)
        if publish is not None:
            await trio.to_thread.run_sync(publish_status, publish, status, n % 60 == 0)
        n += 1
        await trio.sleep(1)


def _write_final_status(
    stats: SessionStats, clock: Clock, run_dir: Path, path: Path, notes: list[str], publish: Path | None
) -> None:
    from actors.sink.status import build_status, publish_status, write_status

    status = build_status(stats, now_ns=clock.now_ns(), version=run_version(), journal=run_dir, state="stopped",
                          preflight=notes)
    write_status(path, status)
    if publish is not None:
        publish_status(publish, status, True)


def default_print(line: str) -> None:
    print(line, flush=True)
    sys.stdout.flush()
