"""Running a live session (`pmm live`): real orders, with every guard of docs/live.md. Modelled on
``actors.session`` and built from its helpers.

Boot order (each step finishes before the next starts):
1. the private key is loaded (env or an owner-only key file) and the wallet's lock taken: one running instance per
   wallet (``flock`` on ``<live.state_dir>/live-<address>.lock``; a second instance is refused, naming the file);
2. preflight (``pmm.preflight.run_preflight``: geoblock first, opt-in, allowlist, caps, credentials, clock,
   version, balance, the one-time smoke order); the markets and their neg-risk flags are looked up;
3. if preflight passed: orders this wallet left open (an earlier run that crashed) are cancelled and the venue
   confirms none is open; a 425 (engine restart) or 429 is waited out up to ``CLEANUP_WAIT_S`` (``VenuePatience``).
   Then, once no order is open (so nothing can fill any more), the starting inventory: the CONDITIONAL balance of
   every allow-listed token, judged against what the previous run of this wallet ended with
   (``actors.edge.inventory``; same patience, its own deadline). This comes before the journal, because
   ``RunStarted`` starts the risk gate's clocks (a stale feed halts);
4. the journal is opened: ``RunStarted(mode="live")``, ``LiveIdentity``, one ``PreflightCheck`` per check, the
   cleanup's ``StartupCleanup``, then ``StartingInventory`` (before anything else starts, so the risk gate and the
   portfolio hold it before any intent; from it the gate's stale-feed clock waits for the market feed to start);
   a failed check, cleanup or inventory -> ``RunEnded`` and the session refuses to start (one line);
5. sequencer + group commit; sinks: executor, resync fetcher, status writer, console; edges: heartbeat (its first
   beat must succeed), user channel (connected and reconciled), geoblock re-check, clock, and only then the market
   feed, so nothing is quoted before the venue side is ready.

Stop (duration, Ctrl-C, SIGTERM, ``stop`` event): ``OperatorStop`` -> the risk gate's kill switch -> ``CancelAll`` ->
the executor cancels everything and confirms none is open; then a final confirmation sweep; edges stop; ``RunEnded``;
the journal is flushed, fsynced and closed. The result says whether "nothing open" was confirmed.
"""
from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from pathlib import Path
from typing import TypeVar

import httpx
import trio

from actors.core.live import key_id
from actors.edge.clock import Clock, WallClock, run_ticks
from actors.edge.exchange import (
    ExchangeError,
    ExchangeRest,
    LiveEndpoints,
    LiveHealth,
    cancel_result,
    live_endpoints,
    public_json,
)
from actors.edge.feed import MarketFeed
from actors.edge.heartbeat import GeoblockWatch, Heartbeat
from actors.edge.inventory import KnownPositions, previous_positions, starting_inventory
from actors.edge.keymask import KeyMask
from actors.edge.rest import BookFetcher, DiscoveryError
from actors.edge.signing import OrderSigner, SignatureError
from actors.edge.user_channel import UserChannel
from actors.sequencer import Subscriber
from actors.session import (
    SessionError,
    SessionResult,
    _wait_for_stop,
    feed_settings,
    open_run,
    resolve_markets,
    run_shell,
)
from actors.sink.executor import ExecutorSettings, LiveExecutor
from events.base import Event
from events.control import OperatorStop, RunEnded
from events.live import LiveIdentity, StartingInventory, StartupCleanup
from events.market import ResyncRequest
from events.params import CoreParams, MarketParams
from events.units import shares
from pmm.config import AppConfig
from pmm.preflight import Check, PreflightResult, run_preflight
from pmm.secrets import Redactor, SecretError, load_private_key

T = TypeVar("T")
STOP_CANCEL_WAIT_S = 60.0
CLEANUP_ROUNDS = 5
CLEANUP_WAIT_S = 120.0
"""How long the startup cleanup waits out a venue that answers 425 (matching engine restarting; Polymarket's take
about 90 s) or 429 (rate limited) before the session refuses to start. The executor's 425 budget is ~2 min too."""
ENGINE_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
"""Waits after successive 425s during the startup cleanup (then 30 s each), cut short by the deadline."""
RATE_LIMIT_MAX_WAIT_S = 30.0
"""A 429's Retry-After is honoured up to this (and never past the deadline); without one the wait is 1 s."""


class WalletLock:
    """An exclusive ``flock`` on ``<state_dir>/live-<address>.lock``: one live session per wallet on this machine.
    The kernel releases it when the process dies, however it dies."""

    def __init__(self, state_dir: Path, address: str) -> None:
        self.path = Path(state_dir) / f"live-{address.lower()}.lock"
        self.address = address
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SessionError(f"another `pmm live` is already running for wallet {self.address} "
                               f"(lock file {self.path} is held)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class VenuePatience:
    """Runs the startup cleanup's venue calls through 425 (engine restart) and 429 (rate limit) answers: each is
    retried after a bounded backoff (425: ``ENGINE_BACKOFF_S``; 429: its Retry-After, at most
    ``RATE_LIMIT_MAX_WAIT_S``) until ``wait_s`` after the first call, shared by every call. Then the last error is
    raised, saying so. Any other error is raised at once, except that a call that got no answer right after a wait is
    tried once more (the venue may have closed our idle pooled connection). The calls are idempotent (listing open
    orders, cancel-all). Waits are on trio's clock; each is reported through ``say`` and counted for the journal
    (``summary``)."""

    def __init__(self, wait_s: float = CLEANUP_WAIT_S, say: Callable[[str], None] = lambda _: None,
                 what: str = "startup cleanup") -> None:
        self.wait_s = wait_s
        self.say = say
        self.what = what
        self.deadline: float | None = None
        self.waited_s = 0.0
        self.waits: dict[int, int] = {}
        """HTTP status -> how many times it was waited out."""
        self._engine = 0

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        if self.deadline is None:
            self.deadline = trio.current_time() + self.wait_s
        slept = False
        while True:
            try:
                return await fn()
            except ExchangeError as exc:
                if exc.status == 0 and slept:  # no answer right after a wait: a pooled connection the venue
                    slept = False  # closed meanwhile (keep-alive timeout). Once more, at once.
                    continue
                if exc.status == 425:
                    delay = ENGINE_BACKOFF_S[min(self._engine, len(ENGINE_BACKOFF_S) - 1)]
                    self._engine += 1
                    why = "the matching engine is restarting"
                elif exc.status == 429:
                    delay = min(exc.retry_after if exc.retry_after is not None else 1.0, RATE_LIMIT_MAX_WAIT_S)
                    why = "rate limited"
                else:
                    raise
                left = self.deadline - trio.current_time()
                if left <= 0:
                    raise ExchangeError(f"{exc}; giving up: the limit is {self.wait_s:g} s", exc.status,
                                        exc.retry_after) from None
                delay = max(0.0, min(delay, left))
                self.waits[exc.status] = self.waits.get(exc.status, 0) + 1
                self.say(f"{self.what}: HTTP {exc.status}, {why}: retrying in {delay:g} s "
                         f"({left:.0f} s left of {self.wait_s:g} s)")
                await trio.sleep(delay)
                self.waited_s += delay
                slept = True

    def summary(self) -> str:
        """"" when nothing was waited out, else e.g. "waited 15 s for the venue: 4 x HTTP 425"."""
        if not self.waits:
            return ""
        counts = ", ".join(f"{n} x HTTP {status}" for status, n in sorted(self.waits.items()))
        return f"waited {self.waited_s:g} s for the venue: {counts}"


async def startup_cleanup(rest: ExchangeRest, *, rounds: int = CLEANUP_ROUNDS,
                          patience: VenuePatience | None = None) -> StartupCleanup:
    """Cancel every order this wallet has open (left by an earlier run) and confirm none is left. A venue that
    answers 425 or 429 is waited out (``VenuePatience``, up to ``CLEANUP_WAIT_S``); the waits are in the detail."""
    patience = patience or VenuePatience()

    def result(found: list[str], cancelled: list[str], remaining: list[str], ok: bool, detail: str) -> StartupCleanup:
        waited = patience.summary()
        detail = f"{detail} ({waited})" if waited else detail
        return StartupCleanup(found=tuple(found), cancelled=tuple(cancelled), remaining=tuple(remaining), ok=ok,
                              detail=detail[:300])

    def ids(rows: list[dict]) -> list[str]:
        return [str(o["id"]) for o in rows if o.get("id")]

    try:
        found = ids(await patience.call(rest.open_orders))
    except ExchangeError as exc:
        return result([], [], [], False, f"cannot list open orders: {exc}")
    cancelled: list[str] = []
    remaining = list(found)
    problem = ""
    for _ in range(rounds):
        if not remaining:
            break
        try:
            canceled, _ = cancel_result(await patience.call(rest.cancel_all))
            cancelled += [c for c in canceled if c not in cancelled]
        except ExchangeError as exc:
            problem = str(exc)
            await trio.sleep(1.0)
        try:
            remaining = ids(await patience.call(rest.open_orders))
        except ExchangeError as exc:
            return result(found, cancelled, remaining, False, f"cannot confirm: {exc}")
    ok = not remaining
    detail = (f"{len(found)} order(s) of an earlier run cancelled" if found else "no open order") if ok else \
        f"{len(remaining)} order(s) still open: {problem}"
    return result(found, cancelled, remaining, ok, detail)


def _cleanup_stopped(why: str) -> StartupCleanup:
    return StartupCleanup(found=(), cancelled=(), remaining=(), ok=False,
                          detail=f"{why} during the startup cleanup: not confirmed that no order is open")


def _inventory_stopped(why: str) -> StartingInventory:
    return StartingInventory(balances=(), ok=False, detail=f"{why} while reading the starting inventory")


async def _unless_stopped(work: Callable[[], Awaitable[T]], stop: trio.Event | None, handle_signals: bool,
                          stopped: Callable[[str], T] = _cleanup_stopped) -> T:  # type: ignore[assignment]
    """A startup step (the cleanup, the inventory), unless the operator stops the session first (it may wait minutes
    for the venue): then ``stopped(why)``, a failed result saying so (nothing was placed)."""
    done: list[T] = []
    async with trio.open_nursery() as n:

        async def run() -> None:
            done.append(await work())
            n.cancel_scope.cancel()

        async def watch() -> None:
            why = await _wait_for_stop(None, stop, handle_signals)
            done.append(stopped(why))
            n.cancel_scope.cancel()

        n.start_soon(run)
        if stop is not None or handle_signals:
            n.start_soon(watch)
    return done[0]


async def market_flags(client: httpx.AsyncClient, rest_url: str, markets: tuple[MarketParams, ...]) -> dict[str, bool]:
    """neg-risk flag of each market (by condition id), from ``/neg-risk``. Raises ``DiscoveryError``."""
    out: dict[str, bool] = {}
    for m in markets:
        status, body = await public_json(client, f"{rest_url}/neg-risk?token_id={m.yes_token}")
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("neg_risk"), bool):
            raise DiscoveryError(f"market {m.condition_id}: /neg-risk answered HTTP {status}")
        out[m.condition_id] = body["neg_risk"]
    return out


async def run_live_session(
    cfg: AppConfig,
    *,
    endpoints: LiveEndpoints,
    duration_s: float | None,
    journal_root: Path,
    clock: Clock | None = None,
    out: Callable[[str], None] = print,
    stop: trio.Event | None = None,
    handle_signals: bool = True,
    print_every_s: float = 1.0,
    env: Mapping[str, str] | None = None,
    explicit_caps: Collection[str] | None = None,
    executor_settings: ExecutorSettings | None = None,
    wall_s: Callable[[], float] = time.time,
    cleanup_wait_s: float = CLEANUP_WAIT_S,
    accept_positions: bool = False,
) -> SessionResult:
    """Run one live session to its end. Raises ``SessionError`` (one line, no secret) when it may not start.
    ``accept_positions``: start even when the wallet's positions differ from the end of its previous run (the
    operator looked: ``pmm live --accept-positions``); the difference is journaled."""
    clock = clock or WallClock()
    live = cfg.live
    lock: WalletLock | None = None
    try:  # the wallet's address, for its lock, before anything talks to the exchange
        key = load_private_key(live.key_file, env)
        address = OrderSigner(key.hex, chain_id=live.chain_id, signature_type=live.signature_type,
                              funder=live.funder or None).address
        lock = WalletLock(Path(live.state_dir), address)
        lock.acquire()
    except (SecretError, SignatureError):
        lock = None  # preflight reports it
    try:
        async with httpx.AsyncClient() as client:
            return await _run(cfg, endpoints, client, duration_s=duration_s, journal_root=Path(journal_root),
                              clock=clock, out=out, stop=stop, handle_signals=handle_signals,
                              print_every_s=print_every_s, env=env, explicit_caps=explicit_caps,
                              executor_settings=executor_settings, wall_s=wall_s, cleanup_wait_s=cleanup_wait_s,
                              accept_positions=accept_positions)
    finally:
        if lock is not None:
            lock.release()


async def _run(
    cfg: AppConfig,
    endpoints: LiveEndpoints,
    client: httpx.AsyncClient,
    *,
    duration_s: float | None,
    journal_root: Path,
    clock: Clock,
    out: Callable[[str], None],
    stop: trio.Event | None,
    handle_signals: bool,
    print_every_s: float,
    env: Mapping[str, str] | None,
    explicit_caps: Collection[str] | None,
    executor_settings: ExecutorSettings | None,
    wall_s: Callable[[], float],
    cleanup_wait_s: float,
    accept_positions: bool,
) -> SessionResult:
    live = cfg.live
    pre: PreflightResult = await run_preflight(cfg, endpoints, client, explicit_caps=explicit_caps, env=env,
                                               wall_s=wall_s)
    red: Redactor = pre.redactor()  # secrets -> <redacted>; the API key -> its stand-in
    mask = KeyMask(pre.creds.api_key if pre.creds is not None else "")
    checks = [Check(c.name, c.ok, red.redact(c.detail)) for c in pre.checks]
    markets: tuple[MarketParams, ...] = ()
    neg: dict[str, bool] = {}
    if pre.ok:
        try:
            markets = await resolve_markets(client, endpoints.rest_url, cfg)
            neg = await market_flags(client, endpoints.rest_url, markets)
            checks.append(Check("markets", True, f"{len(markets)} market(s) resolved"))
        except DiscoveryError as exc:
            checks.append(Check("markets", False, str(exc)))
    passed = all(c.ok for c in checks)
    signer, creds = pre.signer, pre.creds
    for c in checks:
        out(f"pmm live: {c.line()}")
    rest: ExchangeRest | None = None
    cleanup: StartupCleanup | None = None
    inventory: StartingInventory | None = None
    if passed and signer is not None and creds is not None:
        # Before the journal is opened: it may wait minutes for the venue (425/429), and RunStarted starts the risk
        # gate's clocks (no market frame for feed_stale_ns after it trips the kill switch). Journaled just below.
        rest = ExchangeRest(client, endpoints.rest_url, signer, creds, wall_s=wall_s)
        patience = VenuePatience(cleanup_wait_s, say=lambda line: out(f"pmm live: {line}"))
        cleanup = mask.event(await _unless_stopped(lambda: startup_cleanup(rest, patience=patience), stop,
                                                   handle_signals))
        out(f"pmm live: startup cleanup: {cleanup.detail}")
        if cleanup.ok:  # no order open: the balances cannot move under us any more (docs/live.md)
            known: KnownPositions = previous_positions(
                journal_root, address=signer.address, funder=signer.maker if signer.maker != signer.address else "",
                exchange=endpoints.rest_url)
            tokens_in_order = [t for m in markets for t in (m.yes_token, m.no_token)]
            inv_patience = VenuePatience(cleanup_wait_s, say=lambda line: out(f"pmm live: {line}"),
                                         what="starting inventory")
            inventory = mask.event(await _unless_stopped(
                lambda: starting_inventory(rest, tokens_in_order, call=inv_patience.call, known=known,
                                           tolerance=live.position_tolerance, accept=accept_positions,
                                           waited=inv_patience.summary),
                stop, handle_signals, _inventory_stopped))
            out(f"pmm live: starting inventory: {inventory.detail}")
    params = CoreParams(markets=markets, quoter=cfg.quoter, orders=cfg.orders, risk=cfg.risk, sim=cfg.sim,
                        fills="live", quoting=True)
    run = open_run(cfg, params, mode="live", journal_root=journal_root, clock=clock)
    run_dir = run.run_dir
    notes = [c.line() for c in checks]
    boot: list = []
    """What the boot inputs journaled (a halt, the starting positions): fed to the status like the rest."""

    def submit(src: str, ev: Event) -> None:
        boot.extend(run.sequencer.submit(src, clock.now_ns(), mask.event(ev)))

    try:
        submit("session", run.started())
        if signer is not None:
            submit("session", LiveIdentity(
                address=signer.address, funder=signer.maker if signer.maker != signer.address else "",
                key_id=key_id(creds.api_key) if creds is not None else "", chain_id=signer.chain_id,
                signature_type=signer.signature_type, exchange=endpoints.rest_url))
        for c in checks:
            submit("preflight", c.event())
        run.sink.flush()
        if cleanup is None or rest is None or signer is None:
            bad = next(c for c in checks if not c.ok)
            submit("session", RunEnded(reason=f"preflight failed: {bad.name}"))
            raise SessionError(f"preflight failed: {bad.name}: {bad.detail}; nothing was traded (journal {run_dir})")
        submit("session", cleanup)
        run.sink.flush()
        if not cleanup.ok or inventory is None:
            submit("session", RunEnded(reason="startup cleanup failed"))
            raise SessionError(f"startup cleanup failed: {cleanup.detail} (journal {run_dir})")
        submit("session", inventory)  # before anything else starts: the core holds it before any intent
        run.sink.flush()
        if not inventory.ok:
            submit("session", RunEnded(reason="starting inventory refused"))
            raise SessionError(f"starting inventory: {inventory.detail} (journal {run_dir})")
    except BaseException:
        run.journal.close()
        raise
    run.stats.feed_all(boot)
    run.announce(clock, out, f"wallet {signer.address}, {len(markets)} market(s) on {endpoints.rest_url}")
    over = [b for b in inventory.balances if b.balance > params.risk.max_position]
    if over:
        out(f"pmm live: the wallet already holds more than risk.max_position ({shares(params.risk.max_position)}) of "
            + ", ".join(f"token {b.token_id} ({shares(b.balance)})" for b in over)
            + ": trading is HALTED in this run (position_limit); sell it by hand or raise the cap")

    in_tx, in_rx = trio.open_memory_channel(1024)

    async def emit(src: str, ev: object) -> None:  # every edge and sink emits through here: the API key is masked
        await in_tx.send((src, clock.now_ns(), mask.event(ev)))

    health = LiveHealth()
    tokens = {t: (m.tick, neg[m.condition_id]) for m in markets for t in (m.yes_token, m.no_token)}
    settings = executor_settings or ExecutorSettings(order_timeout_s=live.order_timeout_s,
                                                     cancel_timeout_s=live.order_timeout_s)
    executor = LiveExecutor(rest, emit, journal=run.journal, markets=tokens, health=health, settings=settings)
    resync_tx, resync_rx = trio.open_memory_channel(64)
    exec_tx, exec_rx = trio.open_memory_channel(4096)
    subs = [Subscriber("resync", lambda env: isinstance(env.ev, ResyncRequest), resync_tx),
            Subscriber("exec", executor.wants, exec_tx)]
    feed_conf = feed_settings(cfg)

    async def edges(nursery: trio.Nursery) -> str:
        await nursery.start(executor.run, exec_rx)
        await nursery.start(BookFetcher(endpoints.rest_url, emit, client).run, resync_rx)
        heartbeat = Heartbeat(rest, emit, health, interval_s=live.heartbeat_interval_s)
        await nursery.start(heartbeat.run)
        user = UserChannel(endpoints.user_ws_url, [m.condition_id for m in markets], rest, emit, health,
                           seed=run.seed, settings=feed_conf, trades_after_s=int(wall_s()) - 1)
        await nursery.start(user.run)
        geo = GeoblockWatch(client, endpoints.geoblock_url, emit, health, every_s=live.geoblock_recheck_s)
        await nursery.start(geo.run)
        await nursery.start(run_ticks, emit, cfg.tick_ms / 1000)
        startup = ""
        with trio.move_on_after(live.startup_timeout_s):
            await heartbeat.first.wait()
            await user.ready.wait()
        if not health.heartbeat_ok:
            startup = "startup failed: the heartbeat did not start"
        elif not user.ready.is_set():
            startup = f"startup failed: the user channel was not ready within {live.startup_timeout_s:g} s"
        if startup:
            reason = startup
            notes.append(f"failure: {startup}")
            out(f"pmm live: {startup}")
        else:
            feed = MarketFeed(endpoints.market_ws_url, list(tokens), emit, seed=run.seed, settings=feed_conf)
            await nursery.start(feed.run)
            reason = await _wait_for_stop(duration_s, stop, handle_signals)
        # the stop, with the edges still running: the executor cancels every order and confirms it
        out(f"pmm live: stopping ({reason}): cancelling every order")
        await in_tx.send(("operator", clock.now_ns(), OperatorStop(reason=reason)))
        with trio.move_on_after(STOP_CANCEL_WAIT_S):
            await executor.cancel_all_done.wait()
        with trio.move_on_after(STOP_CANCEL_WAIT_S):
            await executor.confirm_flat("stop: final sweep")
        flat = bool(executor.cancel_all_ok)
        stats_note = "confirmed: no order open" if flat else "NOT confirmed that no order is open"
        notes.append(f"stop: {stats_note}")
        out(f"pmm live: {stats_note}")
        return reason

    return await run_shell(run, cfg, (in_tx, in_rx), subs, edges, clock=clock, out=out, print_every_s=print_every_s,
                           notes=notes)


# ---------------------------------------------------------------- pmm live
def live_main(argv: list[str] | None = None) -> int:
    """``pmm live [--config FILE] [--exchange URL] [--duration S] [--journal DIR] [--accept-positions]``.

    Exit 0: stopped by the operator and confirmed that no order is open; 1: refused (preflight, cleanup, starting
    inventory, lock), halted by a kill switch other than the operator's, or not confirmed flat; 2: unusable input."""
    from journal import JournalError
    from pmm.args import Parser, err, positive_float
    from pmm.cli import _final_summary
    from pmm.config import ConfigError, load_config
    from pmm.preflight import explicit_risk_keys

    p = Parser(prog="pmm live", description="trade for real on the configured exchange (see docs/live.md)")
    p.add_argument("--config", metavar="FILE", help="config.json (live.enabled must be true)")
    p.add_argument("--exchange", metavar="URL", help="base URL of the exchange (or a sandbox laid out like it)")
    p.add_argument("--duration", type=positive_float, metavar="SECONDS", help="stop after this long (default: "
                   "until Ctrl-C or SIGTERM)")
    p.add_argument("--journal", metavar="DIR", help="folder for run journals (default: config journal_dir)")
    p.add_argument("--accept-positions", action="store_true",
                   help="start even though the wallet's positions differ from the end of its previous run (after "
                        "you looked at its trades); the difference is journaled")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    raw: bytes | None = None
    try:
        cfg = load_config(Path(args.config) if args.config else None)
        if args.config:
            raw = Path(args.config).read_bytes()
    except (ConfigError, OSError) as exc:
        err(str(exc))
        return 2
    ex = cfg.exchange
    endpoints = live_endpoints(args.exchange, rest_url=ex.rest_url, market_ws_url=ex.market_ws_url,
                               user_ws_url=ex.user_ws_url, geoblock_url=ex.geoblock_url)
    if endpoints is None:
        err("live: no exchange: pass --exchange URL or set exchange.rest_url in the config")
        return 2
    journal_root = Path(args.journal or cfg.journal_dir)

    def say(line: str) -> None:
        print(line, flush=True)

    async def main() -> SessionResult:
        return await run_live_session(cfg, endpoints=endpoints, duration_s=args.duration, journal_root=journal_root,
                                      out=say, explicit_caps=explicit_risk_keys(raw),
                                      accept_positions=args.accept_positions)

    try:
        res = trio.run(main)
    except (SessionError, JournalError, OSError) as exc:
        err(str(exc))
        return 1
    _final_summary("live", res)
    return 0 if clean_stop(res) else 1


def clean_stop(res: SessionResult) -> bool:
    """Stopped by the operator (no other kill switch, no startup failure) and confirmed that no order is open."""
    flat = "stop: confirmed: no order open" in res.notes
    failed = any(n.startswith("failure:") for n in res.notes)
    halted = res.stats.halted
    return flat and not failed and (not halted or halted.startswith("operator_stop"))
