"""``pmm chaos``: deterministic chaos runs of pmm against the sandbox exchange, checked against six invariants.

One run = one seed. The seed gives a fault schedule (``make_schedule``: same seed, same schedule, printed before
the run). The harness starts ONE sandbox exchange in-process for the run, then runs the trading process as a real
child process (``python -m pmm.cli paper --exchange URL ...``; ``pmm.chaos_child`` when the schedule jumps the
clock), restarting it whenever it ends before the run's deadline (kill -9, a full disk, a kill switch). Faults are
driven over the sandbox's HTTP control endpoint at their scheduled times; kill -9 is a real SIGKILL; ENOSPC is a
real full filesystem (the journal lives on a small tmpfs that the harness fills); the clock jump is a jumping wall
clock installed in the child by ``pmm.chaos_child``. While a session runs, the harness follows its journal
(``journal.follow``) to learn which records were flushed and when each kill switch appeared.

After the run it checks, from the journal, the sandbox's own records and the files the child wrote:

1. ``limits``: every approved place was inside the risk limits, the allowlist and the price band;
2. ``no-open``: after a stop (and after crash + restart) no order of ours is left open;
3. ``positions``: positions equal the confirmed fills, FAILED fills reversed;
4. ``journal``: every journal reopens (torn tail cut and reported), no flushed record is lost, replay is
   bit-identical;
5. ``kill-switch``: the kill switch fired within the configured time of every stale-connection (and, live,
   heartbeat / geoblock) fault, the process fail-stopped on ENOSPC, and no place was approved after a halt;
6. ``secrets``: no secret appears in any artifact.

``chaos_main(argv) -> int``: 0 when every invariant holds in every run, 1 when one fails (each failing run prints
its seed and the command that reproduces it), 2 for bad arguments. See docs/reliability.md.
"""
from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXIT_FAIL = 1
EXIT_USAGE = 2

# ----------------------------------------------------------------------------------------------- fault kinds


@dataclass(frozen=True)
class FaultKind:
    name: str
    modes: tuple[str, ...]
    weight: float
    doc: str


FAULT_KINDS: dict[str, FaultKind] = {k.name: k for k in (
    FaultKind("disconnect", ("paper", "live"), 2.0, "market socket closed by the server (close frame + TCP close)"),
    FaultKind("half_open", ("paper", "live"), 1.5,
              "market socket goes silent and ignores PING (half-open); kill switch expected within feed_stale"),
    FaultKind("stall_burst", ("paper", "live"), 1.5, "every market frame held for 1-4 s, then sent back to back"),
    FaultKind("malformed", ("paper", "live"), 1.0, "truncated JSON frames on the market channel"),
    FaultKind("unknown_frame", ("paper", "live"), 1.0, "frames with an unknown event_type"),
    FaultKind("bad_price", ("paper", "live"), 1.0, "price_change with price 1.5 / -0.1 (out of range)"),
    FaultKind("taker_sweep", ("paper", "live"), 2.0,
              "a synthetic taker sweeps one of our markets (fills resting orders; moves the book)"),
    FaultKind("kill9", ("paper", "live"), 1.2, "SIGKILL of the trading process at a random moment, then a restart"),
    FaultKind("enospc", ("paper", "live"), 1.0,
              "the journal's filesystem fills up (real ENOSPC on a small tmpfs): fail-stop, then a restart"),
    FaultKind("clock_jump", ("paper", "live"), 1.0, "the wall clock steps forward (20-120 s) or back (10-60 s)"),
    # live only: they act on the order side, which paper mode never talks to
    FaultKind("engine_restart", ("live",), 1.0, "order endpoints answer 425 for a while, then a post-only window"),
    FaultKind("rate_limit", ("live",), 1.0, "order writes answer 429 with Retry-After"),
    FaultKind("submit_timeout", ("live",), 1.0, "an order lands but its reply is late (delay) or cut (drop)"),
    FaultKind("ghost_fill", ("live",), 1.0, "the next trade of ours goes MATCHED -> RETRYING -> FAILED"),
    FaultKind("user_silence", ("live",), 1.0, "the user channel goes half-open (events dropped, PING unanswered)"),
    FaultKind("heartbeat_fail", ("live",), 0.8,
              "heartbeats answer 503 (the venue's dead-man switch fires); kill switch expected"),
    FaultKind("geoblock", ("live",), 0.6, "the geoblock check flips to blocked; kill switch expected at the recheck"),
)}
SCENARIOS = ("calm", "edge", "jumpy", "edge")
"""Sandbox scenario per run, drawn from the seed. ``edge`` flips the tick size 0.01 <-> 0.001 near the limits."""
ONE_PER_RUN = {"kill9": 1, "enospc": 1, "clock_jump": 1, "geoblock": 1, "heartbeat_fail": 1, "engine_restart": 1}
DISRUPTIVE = {"disconnect", "half_open", "kill9", "enospc", "heartbeat_fail", "geoblock"}
STALE_KINDS = {"half_open", "heartbeat_fail", "geoblock"}
"""Faults after which a kill switch is expected within the configured time."""

# The chaos config's timings (child config below) and the harness's tolerances.
FEED_STALE_S = 6.0
"""risk.feed_stale_ns of the chaos config: the kill switch's configured time for a stale connection."""
SILENCE_S = 12.0
"""feed.silence_timeout_s: longer than FEED_STALE_S, so a silent socket trips the kill switch before the feed edge
gives up on it and reconnects (otherwise whether a half-open socket halts trading would be a race)."""
KILL_SLACK_S = 2.5
"""Allowed on top of the configured time: one clock tick (0.25 s), the journal follower's poll, scheduling."""
ENOSPC_DEADLINE_S = 10.0
"""After the disk fills, the trading process must have stopped (non-zero exit, journal named) within this."""
HALT_STOP_DELAY_S = 1.0
"""After a kill switch, the harness lets the halt's cancels run this long, then stops the process (SIGTERM) and
starts a fresh one, as an operator would."""
MIN_SESSION_S = 3.0
LIVE_STARTUP_S = 8.0
"""A live session needs this long to quote (preflight, smoke order, heartbeat, user channel): no fault before."""
HEARTBEAT_S = 5.0
"""live.heartbeat_interval_s of the chaos config (the venue cancels everything 10 s after the last beat)."""
HEARTBEAT_TIMEOUT_S = 3.0
"""The heartbeat edge's request timeout (actors/edge/heartbeat.py)."""
GEOBLOCK_RECHECK_S = 10.0
"""live.geoblock_recheck_s of the chaos config (the smallest the config allows)."""
EXPECT_S = {"half_open": FEED_STALE_S, "heartbeat_fail": HEARTBEAT_S + HEARTBEAT_TIMEOUT_S,
            "geoblock": GEOBLOCK_RECHECK_S}
"""The configured time within which a kill switch must follow each kind of fault (plus KILL_SLACK_S)."""
MAX_SESSIONS = 25
STOP_GRACE_S = 30.0


@dataclass(frozen=True)
class Fault:
    at_s: float
    kind: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def p(self) -> dict[str, Any]:
        return dict(self.params)

    def describe(self) -> str:
        args = " ".join(f"{k}={v}" for k, v in self.params)
        return f"t+{self.at_s:6.1f}s  {self.kind}{(' ' + args) if args else ''}"


@dataclass(frozen=True)
class Schedule:
    seed: int
    mode: str
    duration_s: float
    scenario: str
    sandbox_seed: int
    session_seed: int
    faults: tuple[Fault, ...]

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "mode": self.mode, "duration_s": self.duration_s, "scenario": self.scenario,
                "sandbox_seed": self.sandbox_seed, "session_seed": self.session_seed,
                "faults": [{"at_s": f.at_s, "kind": f.kind, **f.p} for f in self.faults]}

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:16]

    def lines(self) -> list[str]:
        head = (f"schedule {self.digest}: seed {self.seed}, mode {self.mode}, {self.duration_s:g} s, sandbox scenario "
                f"{self.scenario}{' (tick-size changes)' if self.scenario == 'edge' else ''}, sandbox seed "
                f"{self.sandbox_seed}, session seed {self.session_seed}, {len(self.faults)} faults")
        return [head, *("  " + f.describe() for f in self.faults)]


def kinds_for(mode: str) -> list[str]:
    return [k.name for k in FAULT_KINDS.values() if mode in k.modes]


def _window(kind: str, duration: float, mode: str = "paper") -> tuple[float, float]:
    """Earliest and latest start of a fault of ``kind``: late enough that the session is up (live: after its
    preflight, smoke order and reconciled user channel, so that orders rest), early enough that its effect (and, for
    kill-type faults, the restart) is seen before the run ends."""
    lo = 2.0 if mode == "paper" else LIVE_STARTUP_S
    if kind in STALE_KINDS:
        return lo, duration - EXPECT_S[kind] - KILL_SLACK_S - 1.5
    if kind in ("kill9", "enospc"):
        return lo, duration - 7.0
    return lo, duration - 2.0


def _params(kind: str, rng: random.Random) -> tuple[tuple[str, Any], ...]:
    r1 = lambda a, b: round(rng.uniform(a, b), 1)  # noqa: E731
    if kind == "disconnect":
        return (("code", rng.choice((1011, 1001, 4000))),)
    if kind == "stall_burst":
        return (("seconds", r1(1.0, 4.0)),)
    if kind in ("malformed", "unknown_frame"):
        return (("count", rng.randint(1, 3)),)
    if kind == "bad_price":
        return (("count", rng.randint(1, 2)),)
    if kind == "taker_sweep":
        return (("market", rng.randint(0, 1)), ("token", rng.choice(("yes", "no"))),
                ("side", rng.choice(("BUY", "SELL"))), ("shares", rng.choice((50, 100, 200, 400))))
    if kind == "clock_jump":
        by = r1(20, 120) if rng.random() < 0.5 else -r1(10, 60)
        return (("by_s", by),)
    if kind == "engine_restart":
        return (("seconds", r1(3, 10)), ("post_only_seconds", r1(5, 15)))
    if kind == "rate_limit":
        return (("count", rng.randint(1, 3)), ("retry_after", rng.randint(1, 2)))
    if kind == "submit_timeout":
        return (("mode", rng.choice(("delay", "drop"))), ("seconds", 15.0))
    if kind == "ghost_fill":
        return (("n", rng.randint(1, 2)),)
    if kind == "heartbeat_fail":
        return (("status", 503), ("seconds", r1(12, 20)))
    if kind == "geoblock":
        return (("seconds", r1(10, 20)),)
    return ()


def _conflicts(kind: str, at: float, placed: list[Fault]) -> bool:
    """Keep every expectation well defined: nothing else disruptive while a stale connection should trip the kill
    switch (a reconnect or a restart would legitimately end the staleness), and kill-type faults apart."""
    for f in placed:
        if kind == f.kind and abs(f.at_s - at) < 1.0:
            return True
        if kind in DISRUPTIVE and f.kind in DISRUPTIVE:
            (k1, t1), (_k2, t2) = sorted([(f.kind, f.at_s), (kind, at)], key=lambda x: x[1])
            if k1 in STALE_KINDS and t2 - t1 < EXPECT_S[k1] + KILL_SLACK_S + 1.0:
                return True
            if t2 - t1 < 4.0:
                return True
    return False


def make_schedule(seed: int, duration_s: float, mode: str = "paper") -> Schedule:
    """The fault schedule of one run: a pure function of (seed, duration, mode)."""
    rng = random.Random(f"pmm-chaos/v1/{seed}/{mode}/{duration_s!r}")
    scenario = rng.choice(SCENARIOS)
    sandbox_seed = rng.randrange(1, 2**31)
    session_seed = rng.randrange(1, 2**31)
    kinds = kinds_for(mode)
    weights = [FAULT_KINDS[k].weight for k in kinds]
    target = max(3, int(duration_s / 5))
    limits = dict(ONE_PER_RUN, half_open=max(1, int(duration_s // 30)))
    used: Counter[str] = Counter()
    placed: list[Fault] = []
    for _ in range(40 * target):
        if len(placed) >= target:
            break
        kind = rng.choices(kinds, weights)[0]
        lo, hi = _window(kind, duration_s, mode)
        at = round(rng.uniform(lo, hi), 1) if hi > lo else -1.0
        params = _params(kind, rng)
        if at < lo or used[kind] >= limits.get(kind, 10**6) or _conflicts(kind, at, placed):
            continue
        used[kind] += 1
        placed.append(Fault(at, kind, params))
    placed.sort(key=lambda f: (f.at_s, f.kind))
    return Schedule(seed, mode, float(duration_s), scenario, sandbox_seed, session_seed, tuple(placed))


# ----------------------------------------------------------------------------------------------- run records


@dataclass
class SessionRec:
    index: int
    started: float  # seconds since the run's start
    argv: list[str]
    pid: int = 0
    run_dir: Path | None = None
    ended: float | None = None
    rc: int | None = None
    cause: str = ""  # duration | halt_restart | kill9 | enospc | crash | overran
    clock_env: dict[str, str] = field(default_factory=dict)
    seen_seq: int = 0
    seen_digest: Any = None  # hashlib blake2b over (seq, payload) of every record the follower saw
    kills: list[tuple[float, str, int]] = field(default_factory=list)  # (t, reason, seq) as the follower saw them
    stdout: Path | None = None
    stderr: Path | None = None
    status: Path | None = None
    halted_stop_sent: bool = False
    enospc_at: float | None = None
    open_after: list[dict[str, Any]] | None = None  # live: our open orders at the venue just after a clean end
    impaired: bool = False  # started while a fault may legitimately make the start refuse (geoblock, full disk...)


@dataclass
class Applied:
    fault: Fault
    t: float
    session: int | None  # index of the session alive when it was applied
    hits: int | None = None
    detail: str = ""
    effective: bool = True


@dataclass
class Check:
    name: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    applicable: bool = True

    @property
    def status(self) -> str:
        if self.problems:
            return "FAIL"
        return "PASS" if self.applicable else "n/a"


CLEAN_ENDS = ("duration", "halt_restart", "halted", "refused")
"""How a session may end with its journal closed cleanly (RunEnded last)."""
INVARIANTS = ("limits", "no-open", "positions", "journal", "kill-switch", "secrets")


@dataclass
class RunResult:
    schedule: Schedule
    sessions: list[SessionRec] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)
    checks: dict[str, Check] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    stats: Counter = field(default_factory=Counter)
    out_dir: Path | None = None
    final_open: list[dict[str, Any]] | None = None  # live: our open orders at the venue after the last session
    audit: list[dict[str, Any]] = field(default_factory=list)  # live: the sandbox's audit trail
    latencies: dict[str, list[float]] = field(default_factory=dict)  # fault kind -> seconds to kill switch / exit

    @property
    def ok(self) -> bool:
        return all(not c.problems for c in self.checks.values())

    def repro(self) -> str:
        s = self.schedule
        return f"pmm chaos --seed {s.seed} --runs 1 --duration {s.duration_s:g} --mode {s.mode}"


# ----------------------------------------------------------------------------------------------- invariant checks
# Pure functions over decoded journal records [(seq, Envelope)], written independently of the core's own logic.


def _mkt_index(params: Any) -> tuple[dict[str, str], dict[str, int]]:
    allow: dict[str, str] = {}
    min_size: dict[str, int] = {}
    for m in params.markets:
        for tok in (m.yes_token, m.no_token):
            allow[tok] = m.condition_id
            min_size[tok] = max(1, m.min_order_size)
    return allow, min_size


class _OpenOrders:
    """Approved places without a terminal answer (as the risk gate counts them: in flight and resting)."""

    def __init__(self) -> None:
        self.orders: dict[str, list[Any]] = {}  # client id -> [token, side, price, remaining]

    def add(self, cid: str, token: str, side: str, price: int, size: int) -> None:
        self.orders[cid] = [token, side, price, size]

    def on_reply(self, ev: Any) -> None:
        if ev.op == "place" and ev.status in ("rejected", "unmatched"):
            self.orders.pop(ev.client_id, None)
        elif ev.op == "cancel" and ev.ok and ev.status in ("cancelled", "canceled"):
            self.orders.pop(ev.client_id, None)

    def on_fill(self, ev: Any, first_count: bool, failed_size: int) -> None:
        o = self.orders.get(ev.client_id)
        if o is None:
            return
        if first_count:
            o[3] -= ev.size
            if o[3] <= 0:
                del self.orders[ev.client_id]
        elif failed_size:
            o[3] += failed_size

    def resting(self, token: str, side: str) -> int:
        return sum(o[3] for o in self.orders.values() if o[0] == token and o[1] == side)

    def buy_notional(self) -> int:
        return sum(o[2] * o[3] for o in self.orders.values() if o[1] == "BUY")


def check_limits(records: list[tuple[int, Any]]) -> list[str]:
    """Invariant 1 (paper): every place the risk gate approved, checked again at the moment the gate decided it,
    against RunStarted.params and the book: allowlist, post-only, size, notional, tick, price range, price band,
    would-cross, open-orders, position (a live run's ``StartingInventory`` is held from the start); plus the
    structural gate (only approved places reach the executor)."""
    from actors.sink.gate import ApprovedActions
    from events.control import RunStarted
    from events.live import StartingInventory
    from events.market import BookChanged
    from events.orders import ExchangeReply, Fill, OrderIntent, RiskApproved
    from events.paper import SimRested, WouldPlace

    problems: list[str] = []
    approved_intents = {env.ev.intent_seq for _, env in records if isinstance(env.ev, RiskApproved) and env.src == "risk"}
    gate = ApprovedActions()
    params = None
    allow: dict[str, str] = {}
    min_size: dict[str, int] = {}
    books: dict[str, Any] = {}
    opens = _OpenOrders()
    pos: dict[str, int] = defaultdict(int)
    counted: dict[tuple[str, str], tuple[str, int]] = {}
    approved_ids: set[str] = set()
    for seq, env in records:
        ev = env.ev
        if gate.wants(env):
            gate.feed(seq, env)
        if isinstance(ev, RunStarted):
            params = ev.params
            allow, min_size = _mkt_index(params)
        elif isinstance(ev, BookChanged):
            books[ev.token_id] = ev
        elif isinstance(ev, StartingInventory):
            if ev.ok:
                for b in ev.balances:
                    pos[b.token_id] += b.balance
        elif isinstance(ev, ExchangeReply):
            opens.on_reply(ev)
            if ev.op == "place" and ev.ok and ev.status not in ("rejected", "unmatched") and ev.client_id not in approved_ids:
                problems.append(f"seq {seq}: exchange accepted order {ev.client_id} that was never approved")
        elif isinstance(ev, (SimRested, WouldPlace)):
            if ev.client_id not in approved_ids:
                problems.append(f"seq {seq}: executor acted on order {ev.client_id} that was never approved")
        elif isinstance(ev, Fill):
            key = (ev.trade_id, ev.client_id)
            if ev.status == "FAILED":
                prev = counted.pop(key, None)
                if prev is not None:
                    pos[prev[0]] -= prev[1]
                opens.on_fill(ev, False, ev.size if prev is not None else 0)
            elif key not in counted:
                d = ev.size if ev.side == "BUY" else -ev.size
                counted[key] = (ev.token_id, d)
                pos[ev.token_id] += d
                opens.on_fill(ev, True, 0)
        elif isinstance(ev, OrderIntent) and seq in approved_intents:
            approved_ids.add(ev.client_id)
            if params is None:
                problems.append(f"seq {seq}: order {ev.client_id} approved before RunStarted")
                continue
            problems += [f"seq {seq}: approved {ev.side} {ev.size / 1e6:g} @ {ev.price / 1e6:g} of {ev.token_id[:10]}…: {p}"
                         for p in _place_problems(ev, params, allow, min_size, books.get(ev.token_id), opens, pos)]
            opens.add(ev.client_id, ev.token_id, ev.side, ev.price, ev.size)
    problems += [f"structural gate: {v}" for v in gate.violations]
    return problems


def _place_problems(ev: Any, params: Any, allow: dict[str, str], min_size: dict[str, int], book: Any,
                    opens: _OpenOrders, pos: dict[str, int]) -> list[str]:
    r = params.risk
    out: list[str] = []
    if allow.get(ev.token_id) != ev.condition_id:
        out.append("token not in the allowlist (RunStarted markets)")
        return out
    if not ev.post_only:
        out.append("not post-only")
    if not (min_size[ev.token_id] <= ev.size <= r.max_order_size):
        out.append(f"size outside [{min_size[ev.token_id]}, {r.max_order_size}]")
    if ev.price * ev.size > r.max_order_notional * 10**6:
        out.append(f"notional {ev.price * ev.size // 10**6} > {r.max_order_notional}")
    if book is None or not (book.valid and 0 < book.best_bid < book.best_ask and book.tick > 0):
        out.append("no valid two-sided book at approval")
        return out
    if ev.price % book.tick:
        out.append(f"off the tick grid {book.tick}")
    if not (book.tick <= ev.price <= 10**6 - book.tick):
        out.append(f"outside [{book.tick}, {10**6 - book.tick}]")
    mid2 = book.best_bid + book.best_ask
    if ev.side == "BUY":
        if 2 * ev.price > mid2 + 2 * r.price_band:
            out.append(f"above mid {mid2 / 2e6:g} + band {r.price_band / 1e6:g}")
        if ev.price >= book.best_ask:
            out.append(f"crosses the best ask {book.best_ask / 1e6:g}")
        if pos[ev.token_id] + opens.resting(ev.token_id, "BUY") + ev.size > r.max_position:
            out.append(f"worst-case position beyond {r.max_position}")
    else:
        if 2 * ev.price < mid2 - 2 * r.price_band:
            out.append(f"below mid {mid2 / 2e6:g} - band {r.price_band / 1e6:g}")
        if ev.price <= book.best_bid:
            out.append(f"crosses the best bid {book.best_bid / 1e6:g}")
        if opens.resting(ev.token_id, "SELL") + ev.size > pos[ev.token_id]:
            out.append(f"sells more than held ({pos[ev.token_id]})")
    if len(opens.orders) + 1 > r.max_open_orders:
        out.append(f"{len(opens.orders) + 1} open orders > {r.max_open_orders}")
    if opens.buy_notional() + (ev.price * ev.size if ev.side == "BUY" else 0) > r.max_total_notional * 10**6:
        out.append(f"open buy notional beyond {r.max_total_notional}")
    return out


def check_no_open(records: list[tuple[int, Any]]) -> list[str]:
    """Invariant 2 (paper, a journal that ended with RunEnded): every approved place is terminal at the end, in
    the harness's own tracking and in the order manager's last OrderState."""
    from events.orders import ExchangeReply, Fill, OrderIntent, OrderState, RiskApproved

    approved_intents = {env.ev.intent_seq for _, env in records if isinstance(env.ev, RiskApproved) and env.src == "risk"}
    opens = _OpenOrders()
    counted: set[tuple[str, str]] = set()
    last_state: dict[str, str] = {}
    for seq, env in records:
        ev = env.ev
        if isinstance(ev, OrderIntent) and seq in approved_intents:
            opens.add(ev.client_id, ev.token_id, ev.side, ev.price, ev.size)
        elif isinstance(ev, ExchangeReply):
            opens.on_reply(ev)
        elif isinstance(ev, Fill):
            key = (ev.trade_id, ev.client_id)
            if ev.status == "FAILED":
                if key in counted:
                    counted.discard(key)
                    opens.on_fill(ev, False, ev.size)
            elif key not in counted:
                counted.add(key)
                opens.on_fill(ev, True, 0)
        elif isinstance(ev, OrderState):
            last_state[ev.client_id] = ev.state
    problems = [f"order {cid} ({o[1]} {o[3] / 1e6:g} @ {o[2] / 1e6:g}) still open at the end of the journal"
                for cid, o in opens.orders.items()]
    problems += [f"order {cid}: last state {st}" for cid, st in last_state.items()
                 if st not in ("cancelled", "filled", "rejected")]
    return problems


def check_positions(records: list[tuple[int, Any]]) -> tuple[list[str], int, int]:
    """Invariant 3: per token, position and cash recomputed from the Fill events (counted once per (trade, order)
    from the first MATCHED or CONFIRMED; FAILED reverses) equal the last Position event. A live run's starting
    inventory (``StartingInventory``) is part of the position, and of the cash once entered: as a buy at the token's
    first valid two-sided mid, rounded up (docs/live.md, "Starting inventory"). Returns (problems, fills, failed
    fills)."""
    from events.live import StartingInventory
    from events.market import BookChanged
    from events.orders import Fill, Position

    ledger: dict[str, dict[tuple[str, str], tuple[int, int]]] = defaultdict(dict)
    last: dict[str, Any] = {}
    start: dict[str, int] = {}
    entry: dict[str, int] = {}
    n_fills = n_failed = 0
    for _seq, env in records:
        ev = env.ev
        if isinstance(ev, StartingInventory):
            if ev.ok:
                start = {b.token_id: b.balance for b in ev.balances if b.balance > 0}
        elif (isinstance(ev, BookChanged) and ev.token_id in start and ev.token_id not in entry and ev.valid
              and ev.best_bid > 0 and ev.best_ask > 0):
            mid = (ev.best_bid + ev.best_ask) // 2
            entry[ev.token_id] = (-mid * start[ev.token_id]) // 10**6  # paid, rounded up
        elif isinstance(ev, Fill):
            key = (ev.trade_id, ev.client_id)
            if ev.status == "FAILED":
                n_failed += 1
                ledger[ev.token_id].pop(key, None)
            elif key not in ledger[ev.token_id] and ev.size:
                n_fills += 1
                gross = ev.price * ev.size
                cash = -(-gross // 10**6) if ev.side == "BUY" else gross // 10**6
                ledger[ev.token_id][key] = (ev.size if ev.side == "BUY" else -ev.size, -cash if ev.side == "BUY" else cash)
        elif isinstance(ev, Position):
            last[ev.token_id] = ev
    problems = []
    for token in sorted(set(ledger) | set(last) | set(start)):
        want_pos = start.get(token, 0) + sum(d for d, _ in ledger[token].values())
        want_cash = entry.get(token, 0) + sum(c for _, c in ledger[token].values())
        p = last.get(token)
        if p is None:
            if want_pos or ledger[token]:
                problems.append(f"{token[:10]}…: fills but no Position event")
            continue
        if p.position != want_pos or p.cash != want_cash:
            problems.append(f"{token[:10]}…: Position says {p.position} shares-µ / cash {p.cash}, fills say "
                            f"{want_pos} / {want_cash}")
    return problems, n_fills, n_failed


def check_no_place_after_halt(records: list[tuple[int, Any]]) -> tuple[list[str], list[str]]:
    """Invariant 5, journal part: after the first KillSwitch (or a prior_halt start) no OrderIntent is approved.
    Returns (problems, kill-switch reasons in order)."""
    from events.control import KillSwitch, RunStarted
    from events.orders import OrderIntent, RiskApproved

    intents = {seq for seq, env in records if isinstance(env.ev, OrderIntent)}
    halt_seq: int | None = None
    reasons: list[str] = []
    problems = []
    for seq, env in records:
        ev = env.ev
        if isinstance(ev, RunStarted) and ev.prior_halt and halt_seq is None:
            halt_seq = seq
        elif isinstance(ev, KillSwitch):
            reasons.append(ev.reason)
            if halt_seq is None:
                halt_seq = seq
        elif isinstance(ev, RiskApproved) and halt_seq is not None and ev.intent_seq in intents and ev.intent_seq > halt_seq:
            problems.append(f"seq {seq}: place {ev.client_id} approved after the halt at seq {halt_seq}")
    return problems, reasons


def secret_strings() -> dict[str, str]:
    """The secrets the harness hands every trading process (the sandbox's public test key and its API creds)."""
    from sandbox.testkeys import TEST_PRIVATE_KEY, creds_for

    c = creds_for(TEST_PRIVATE_KEY)
    return {"private key": TEST_PRIVATE_KEY[2:], "api key": c.api_key, "api secret": c.secret,
            "api passphrase": c.passphrase}


def scan_for_secrets(paths: Iterable[Path], secrets: dict[str, str]) -> list[str]:
    """Invariant 6: every file under ``paths``, as bytes, against every secret (key: any case, with or without 0x)."""
    needles: list[tuple[str, bytes]] = []
    for name, s in secrets.items():
        needles.append((name, s.encode()))
        if name == "private key":
            needles.append((name, s.upper().encode()))
    problems = []
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            try:
                data = f.read_bytes()
            except OSError:
                continue
            low = data.lower()
            for name, n in needles:
                if n in data or (name == "private key" and n.lower() in low):
                    problems.append(f"{name} found in {f}")
    return sorted(set(problems))


# ----------------------------------------------------------------------------------------------- the harness


def _chaos_config(status_file: Path, session_seed: int, mode: str = "paper", markets: list[dict[str, str]] | None = None,
                  state_dir: Path | None = None) -> dict[str, Any]:
    """The trading process's config. Paper: the built-in defaults with chaos timings, markets chosen by the session.
    Live: the same, plus an explicit allowlist (the sandbox's first two reward markets), tiny caps written out, the
    opt-in and fast heartbeat / geoblock / order timeouts."""
    cfg: dict[str, Any] = {
        "status_file": str(status_file),
        "seed": session_seed,
        "tick_ms": 250,
        "feed": {"ping_interval_s": 2.0, "silence_timeout_s": SILENCE_S, "connect_timeout_s": 5.0,
                 "backoff_initial_s": 0.3, "backoff_max_s": 2.0},
        "risk": {"feed_stale_ns": int(FEED_STALE_S * 1e9)},
    }
    if mode == "live":
        cfg["mode"] = "live"
        cfg["markets"] = markets or []
        cfg["risk"].update({"max_order_size": 20_000_000, "max_order_notional": 10_000_000,
                            "max_position": 50_000_000, "max_total_notional": 50_000_000, "daily_loss": 20_000_000,
                            "max_loss": 40_000_000})
        cfg["quoter"] = {"size": 5_000_000}
        cfg["live"] = {"enabled": True, "state_dir": str(state_dir or status_file.parent / "state"),
                       "heartbeat_interval_s": HEARTBEAT_S, "geoblock_recheck_s": GEOBLOCK_RECHECK_S,
                       "order_timeout_s": 3.0, "startup_timeout_s": 20.0}
    return cfg


class _Disk:
    """The journal's filesystem: a small tmpfs the harness can fill (ENOSPC), or a plain folder if mounting fails."""

    def __init__(self, path: Path, size_kb: int) -> None:
        self.path = path
        self.size_kb = size_kb
        self.mounted = False
        self.note = ""
        self.filler = path / "FILLER"
        self.full = False

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        if not sys.platform.startswith("linux") or os.geteuid() != 0:
            self.note = "skipped: cannot mount (needs root on Linux); enospc faults not injected"
            return
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_kb}k,mode=0755", "tmpfs", str(self.path)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.note = f"skipped: cannot mount ({(r.stderr or r.stdout).strip()[:120]}); enospc faults not injected"
            return
        self.mounted = True

    def fill(self) -> int:
        """Write a filler file until the filesystem refuses (ENOSPC). Returns the bytes written."""
        written = 0
        with open(self.filler, "ab", buffering=0) as f:
            for chunk in (1 << 20, 1 << 16, 4096, 512, 1):
                block = b"\0" * chunk
                while True:
                    try:
                        n = f.write(block)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
                    written += n or 0
                    if not n:
                        break
        self.full = True
        return written

    def free(self) -> None:
        if self.filler.exists():
            self.filler.unlink()
        self.full = False

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
            self.mounted = False


class _Harness:
    def __init__(self, sched: Schedule, run_dir: Path, sb: Any, http: Any, say: Callable[[str], None]) -> None:
        self.s = sched
        self.dir = run_dir
        self.sb = sb
        self.http = http
        self.say = say
        self.result = RunResult(sched, out_dir=run_dir)
        self.disk = _Disk(run_dir / "disk", max(16 * 1024, int(sched.duration_s * 200)))
        self.jroot = self.disk.path / "journals"
        self.logs = run_dir / "logs"
        self.current: SessionRec | None = None
        self.proc: Any = None
        self.t0 = 0.0
        self.deadline = 0.0
        self.secrets = secret_strings()
        self._jump = next((f for f in sched.faults if f.kind == "clock_jump"), None)
        self.quoted_tokens: list[tuple[str, str]] = []  # (yes, no) of the markets the session quotes
        self.impaired_until = 0.0
        self.accept_positions = False
        """The last live start was refused because the wallet's positions moved while no session watched (after a
        kill -9 or crash: orphan orders filled before the restart cancelled them). Like an operator who looked, the
        next start passes ``--accept-positions`` (docs/live.md, "Starting inventory")."""

    def now(self) -> float:
        import trio

        return trio.current_time() - self.t0

    # -------------------------------------------------------------------- sessions
    def _child_env(self, start_rel: float) -> tuple[dict[str, str], dict[str, str]]:
        from pmm.chaos_child import ENV_AT, ENV_BY

        env = {k: v for k, v in os.environ.items() if not k.startswith("PMM_CHAOS_")}
        env.update({"PMM_PRIVATE_KEY": "0x" + self.secrets["private key"], "PYTHONUNBUFFERED": "1"})
        if self.s.mode != "live":  # live derives its API creds from the key at the venue (L1); paper just holds them
            env.update({"PMM_API_KEY": self.secrets["api key"], "PMM_API_SECRET": self.secrets["api secret"],
                        "PMM_API_PASSPHRASE": self.secrets["api passphrase"]})
        clock: dict[str, str] = {}
        if self._jump is not None:
            clock = {ENV_AT: f"{max(0.0, self._jump.at_s - start_rel):.3f}", ENV_BY: str(self._jump.p["by_s"])}
            env.update(clock)
        return env, clock

    async def _start(self, index: int, duration: float) -> SessionRec:
        import trio

        start = self.now()
        cfg_path = self.dir / f"config-{index}.json"
        status = self.dir / f"status-{index}.json"
        markets = [{"condition_id": m.condition_id, "yes_token": m.yes_token, "no_token": m.no_token}
                   for m in self.sb.markets if m.has_rewards][:2]
        cfg_path.write_text(json.dumps(_chaos_config(status, self.s.session_seed, self.s.mode, markets,
                                                     self.dir / "state"), indent=1))
        module = "pmm.chaos_child" if self._jump is not None else "pmm.cli"
        argv = [sys.executable, "-m", module, self.s.mode, "--exchange", self.sb.base_url, "--duration",
                f"{duration:.1f}", "--journal", str(self.jroot), "--config", str(cfg_path)]
        accepted = self.s.mode == "live" and self.accept_positions
        if accepted:
            argv.append("--accept-positions")
            self.accept_positions = False
        env, clock = self._child_env(start)
        rec = SessionRec(index, start, argv, clock_env=clock, seen_digest=hashlib.blake2b(digest_size=16),
                         stdout=self.logs / f"session-{index}.out", stderr=self.logs / f"session-{index}.err",
                         status=status)
        so, se = _open_logs(rec)
        try:
            self.proc = await trio.lowlevel.open_process(argv, stdin=subprocess.DEVNULL, stdout=so, stderr=se,
                                                         env=env, cwd=str(self.dir))
        finally:
            so.close()
            se.close()
        rec.pid = self.proc.pid
        rec.impaired = start < self.impaired_until
        self.current = rec
        self.result.sessions.append(rec)
        jump = f", clock jump {clock}" if clock else ""
        jump += ", --accept-positions" if accepted else ""
        self.say(f"  t+{start:6.1f}s  session {index} started (pid {rec.pid}, --duration {duration:.1f}{jump})")
        return rec

    async def supervise(self) -> None:
        import trio

        index = 0
        while index < MAX_SESSIONS:
            remaining = self.deadline - trio.current_time()
            if remaining < MIN_SESSION_S:
                break
            if self.disk.full:
                self.disk.free()
            known = set(os.listdir(self.jroot)) if self.jroot.exists() else set()
            rec = await self._start(index, remaining)
            proc = self.proc
            async with trio.open_nursery() as n:
                n.start_soon(self._follow, rec, known)
                n.start_soon(self._halt_watch, rec, proc)
                with trio.move_on_at(self.deadline + STOP_GRACE_S + 15):
                    await proc.wait()
                if proc.returncode is None:  # did not stop by itself: count it as a failure, then kill it
                    rec.cause = "overran"
                    proc.kill()
                    await proc.wait()
                await trio.sleep(0.3)  # let the follower read the last records
                n.cancel_scope.cancel()
            rec.ended, rec.rc = self.now(), proc.returncode
            if not rec.cause:
                rec.cause = self._cause(rec)
            if rec.cause == "refused":
                accept, explained = positions_moved(_tail(rec.stderr), [r.cause for r in self.result.sessions[:-1]])
                self.accept_positions = accept
                rec.impaired = rec.impaired or explained
            self.current, self.proc = None, None
            left = ""
            if self.s.mode == "live":
                if rec.cause in CLEAN_ENDS:
                    await trio.sleep(0.5)
                rec.open_after = await self._open_orders()
                left = f", {len(rec.open_after)} order(s) of ours open at the venue"
            self.say(f"  t+{rec.ended:6.1f}s  session {index} ended: {rec.cause}, exit {rec.rc}{left}")
            index += 1
            if rec.cause == "duration":
                break
            await trio.sleep(1.5 if rec.cause == "refused" else 0.2)
        if self.disk.full:
            self.disk.free()
        if self.s.mode == "live":
            await trio.sleep(1.0)
            self.result.final_open = await self._open_orders()

    def _cause(self, rec: SessionRec) -> str:
        if rec.halted_stop_sent:
            return "halt_restart"
        if rec.rc == 0:
            return "duration"
        err = _tail(rec.stderr)
        if rec.rc == 1 and self.s.mode == "live":
            if any(w in err for w in ("preflight failed", "startup cleanup failed", "starting inventory",
                                      "already running", "refus")):
                return "refused"  # the session refused to start (fail closed); judged by whether a fault explains it
            if any(k[1] != "operator_stop" for k in rec.kills):
                return "halted"  # `pmm live` exits 1 after a kill switch other than the operator's
        return "crash"

    async def _open_orders(self) -> list[dict[str, Any]]:
        from sandbox.testkeys import TEST_ADDRESS

        r = await self.http.get(self.sb.base_url + "/_sandbox/open-orders", params={"address": TEST_ADDRESS})
        r.raise_for_status()
        return list(r.json().get("orders", []))

    async def _follow(self, rec: SessionRec, known: set[str]) -> None:
        import trio

        from events.codec import decode
        from events.control import KillSwitch, RunStarted
        from journal import follow

        while rec.run_dir is None:
            if self.jroot.exists():
                new = sorted(set(os.listdir(self.jroot)) - known)
                if new:
                    rec.run_dir = self.jroot / new[0]
                    break
            await trio.sleep(0.05)
        async for r in follow(rec.run_dir, poll_interval=0.05):
            rec.seen_seq = r.seq
            rec.seen_digest.update(r.seq.to_bytes(8, "little") + bytes(r.payload))
            try:
                env = decode(r.payload)
            except Exception:
                continue
            if isinstance(env.ev, KillSwitch):
                rec.kills.append((self.now(), env.ev.reason, r.seq))
            elif isinstance(env.ev, RunStarted) and env.ev.prior_halt:
                rec.kills.append((self.now(), "prior_halt", r.seq))
            elif isinstance(env.ev, RunStarted) and not self.quoted_tokens:
                self.quoted_tokens = [(m.yes_token, m.no_token) for m in env.ev.params.markets]

    async def _halt_watch(self, rec: SessionRec, proc: Any) -> None:
        import trio

        while True:
            halts = [k for k in rec.kills if k[1] != "operator_stop"]
            if halts:
                break
            await trio.sleep(0.05)
        await trio.sleep(HALT_STOP_DELAY_S)
        if proc.returncode is None and self.deadline - trio.current_time() > MIN_SESSION_S + 1:
            rec.halted_stop_sent = True
            proc.send_signal(signal.SIGTERM)

    # -------------------------------------------------------------------- faults
    async def inject_all(self) -> None:
        import trio

        async with trio.open_nursery() as undo:
            for f in self.s.faults:
                await trio.sleep_until(self.t0 + f.at_s)
                try:
                    a = await self._apply(f, undo)
                except Exception as exc:  # the harness keeps going; the failure to inject is reported
                    a = Applied(f, self.now(), self.current.index if self.current else None, None,
                                f"injection failed: {type(exc).__name__}: {exc}", effective=False)
                self.result.applied.append(a)
                hits = "" if a.hits is None else f" ({a.hits} hit)"
                self.say(f"  t+{a.t:6.1f}s  {f.kind}{hits}{': ' + a.detail if a.detail else ''}"
                         f"{'' if a.effective else ' [no effect]'}")

    async def _later(self, delay: float, path: str, body: dict[str, Any], what: str) -> None:
        import trio

        await trio.sleep(delay)
        r = await self.http.post(self.sb.base_url + path, json=body)
        r.raise_for_status()
        self.say(f"  t+{self.now():6.1f}s  {what}")

    def _impair(self, seconds: float) -> None:
        """Starting a session may legitimately be refused (preflight) until then."""
        self.impaired_until = max(self.impaired_until, self.now() + seconds + 5.0)

    async def _post_faults(self, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.http.post(self.sb.faults_url, json=body)
        r.raise_for_status()
        return r.json()

    async def _apply(self, f: Fault, undo: Any) -> Applied:
        p = f.p
        sess = self.current.index if self.current else None
        a = Applied(f, self.now(), sess)
        alive = self.proc is not None and self.proc.returncode is None
        if f.kind in ("disconnect", "half_open", "stall_burst", "malformed", "unknown_frame", "bad_price"):
            sandbox_kind = {"disconnect": "drop", "stall_burst": "stall", "unknown_frame": "unknown_event"}.get(f.kind, f.kind)
            body: dict[str, Any] = {"inject": [sandbox_kind]}
            if f.kind == "disconnect":
                body["code"] = p["code"]
            if f.kind == "stall_burst":
                body["seconds"] = p["seconds"]
            hits = 0
            for _ in range(p.get("count", 1)):
                res = await self._post_faults(body)
                hits += int(res.get("injected", {}).get(sandbox_kind, 0))
            a.hits = hits
            a.effective = hits > 0
            if f.kind == "half_open" and self.current is not None and any(k[1] != "operator_stop" for k in self.current.kills):
                a.detail = "session already halted"
        elif f.kind == "taker_sweep":
            tokens = self.quoted_tokens or [(m.yes_token, m.no_token) for m in self.sb.markets if m.has_rewards][:2]
            if not tokens:
                a.detail, a.effective = "no market known", False
                return a
            yes, no = tokens[p["market"] % len(tokens)]
            token = yes if p["token"] == "yes" else no
            r = await self.http.post(self.sb.base_url + "/_sandbox/trade",
                                     json={"token_id": token, "side": p["side"], "size": p["shares"]})
            r.raise_for_status()
            a.hits = int(r.json().get("frames", 0))
            a.detail = f"{p['side']} {p['shares']} of {token[:8]}…"
        elif f.kind == "kill9":
            if alive and self.current is not None:
                self.current.cause = "kill9"
                self.proc.kill()
                a.detail = f"SIGKILL pid {self.proc.pid}"
            else:
                a.detail, a.effective = "no trading process alive", False
        elif f.kind == "enospc":
            if not self.disk.mounted:
                a.detail, a.effective = self.disk.note, False
                return a
            n = await _to_thread(self.disk.fill)
            a.detail = f"filesystem full ({n} filler bytes)"
            self._impair(ENOSPC_DEADLINE_S)
            if alive and self.current is not None:
                self.current.cause = "enospc"
                self.current.enospc_at = a.t
            else:
                a.detail += "; no trading process alive (the next start meets the full disk)"
        elif f.kind == "clock_jump":
            a.detail = f"wall clock {p['by_s']:+g} s in the trading process" + ("" if alive else " (applied at its next start)")
        elif self.s.mode != "live":  # live-only kinds never reach here in paper mode (make_schedule excludes them)
            a.detail, a.effective = "live-only fault (not applied in this mode)", False
        elif f.kind == "engine_restart":
            res = await self._post_faults({"inject": ["engine_restart"], "seconds": p["seconds"],
                                           "post_only_seconds": p["post_only_seconds"]})
            a.hits = int(res.get("injected", {}).get("engine_restart", 1))
            a.detail = f"425 for {p['seconds']} s, then post-only for {p['post_only_seconds']} s"
            self._impair(p["seconds"] + p["post_only_seconds"])
        elif f.kind == "rate_limit":
            await self._post_faults({"order_rate_limit": {"count": p["count"], "retry_after": p["retry_after"]}})
            a.detail = f"next {p['count']} order write(s) answer 429, Retry-After {p['retry_after']}"
            self._impair(p["retry_after"] * p["count"])
        elif f.kind == "submit_timeout":
            await self._post_faults({"submit_timeout": {"mode": p["mode"], "seconds": p["seconds"], "count": 1}})
            a.detail = f"next accepted order's reply {'late' if p['mode'] == 'delay' else 'cut'}"
            self._impair(p["seconds"])
        elif f.kind == "ghost_fill":
            res = await self._post_faults({"inject": ["ghost_fill"], "n": p["n"]})
            a.detail = f"next {p['n']} trade(s) of ours will fail"
        elif f.kind == "user_silence":
            res = await self._post_faults({"inject": ["user_half_open"]})
            a.hits = int(res.get("injected", {}).get("user_half_open", 0))
            a.effective = a.hits > 0
        elif f.kind == "heartbeat_fail":
            await self._post_faults({"heartbeat_fail": {"status": p["status"], "count": None}})
            undo.start_soon(self._later, p["seconds"], "/_sandbox/faults", {"heartbeat_fail": None},
                            "heartbeats answer again")
            a.detail = f"heartbeats answer {p['status']} for {p['seconds']} s"
            a.effective = alive
            self._impair(p["seconds"])
        elif f.kind == "geoblock":
            r = await self.http.post(self.sb.base_url + "/_sandbox/geoblock", json={"mode": "blocked"})
            r.raise_for_status()
            undo.start_soon(self._later, p["seconds"], "/_sandbox/geoblock", {"mode": "allowed"}, "geoblock allowed again")
            a.detail = f"geoblock says blocked for {p['seconds']} s"
            a.effective = alive
            self._impair(p["seconds"])
        return a


def _open_logs(rec: SessionRec) -> tuple[Any, Any]:
    assert rec.stdout is not None and rec.stderr is not None
    return open(rec.stdout, "wb"), open(rec.stderr, "wb")


async def _to_thread(fn: Callable[[], Any]) -> Any:
    import trio

    return await trio.to_thread.run_sync(fn)


# ----------------------------------------------------------------------------------------------- one run


async def run_one(sched: Schedule, out_root: Path, say: Callable[[str], None] = print) -> RunResult:
    """Run one schedule against a fresh sandbox; check every invariant; return the result."""
    import httpx
    import trio

    from sandbox.server import open_sandbox

    run_dir = _prepare_run_dir(sched, out_root)
    for line in sched.lines():
        say(line)
    h: _Harness | None = None
    async with open_sandbox(seed=sched.sandbox_seed, scenario=sched.scenario, port=0) as sb, \
            httpx.AsyncClient(timeout=10) as http:
        h = _Harness(sched, run_dir, sb, http, say)
        h.logs.mkdir()
        if any(f.kind == "enospc" for f in sched.faults):
            h.disk.mount()
            if h.disk.note:
                h.result.notes.append(f"enospc {h.disk.note}")
                say(f"  note: enospc {h.disk.note}")
        if not h.disk.mounted:  # no full-disk fault (or no tmpfs): the journals go straight to the run folder
            h.jroot = run_dir / "journals"
        h.jroot.mkdir(parents=True, exist_ok=True)
        try:
            h.t0 = trio.current_time()
            h.deadline = h.t0 + sched.duration_s
            async with trio.open_nursery() as n:
                n.start_soon(h.inject_all)
                await h.supervise()
                n.cancel_scope.cancel()  # pending un-faults (geoblock allowed again ...): the run is over
            h.result.stats["sandbox_ws_faults"] = sum(int(v) for v in sb.faults.counts.values())
            if sched.mode == "live":
                r = await http.get(sb.base_url + "/_sandbox/audit", params={"since": 0})
                r.raise_for_status()
                h.result.audit = list(r.json().get("records", []))
                (run_dir / "audit.json").write_text(json.dumps(h.result.audit, indent=0))
            h.result.stats["tick_size_changes_seen"] = _count_tick_changes(h)
        finally:
            if h.disk.full:
                h.disk.free()
    assert h is not None
    try:
        _post_run(h)
    finally:
        if h.disk.mounted:  # keep the journals: copy them off the tmpfs
            dest = run_dir / "journals"
            if h.jroot.exists():
                shutil.copytree(h.jroot, dest, dirs_exist_ok=True)
            h.disk.unmount()
            shutil.rmtree(h.disk.path, ignore_errors=True)
            for s in h.result.sessions:
                if s.run_dir is not None:
                    s.run_dir = dest / s.run_dir.name
    _check_secrets(h)
    (run_dir / "result.json").write_text(json.dumps(result_json(h.result), indent=1))
    return h.result


def _prepare_run_dir(sched: Schedule, out_root: Path) -> Path:
    run_dir = Path(os.path.abspath(out_root)) / f"seed-{sched.seed}"
    if run_dir.exists():
        _unmount_stale(run_dir / "disk")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / "schedule.json").write_text(json.dumps(sched.to_json(), indent=1))
    return run_dir


def _unmount_stale(path: Path) -> None:
    if path.exists() and os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _count_tick_changes(h: _Harness) -> int:
    n = 0
    for s in h.result.sessions:
        if s.run_dir is None or not s.run_dir.exists():
            continue
        for seg in s.run_dir.glob("seg-*.pmj"):
            try:
                n += seg.read_bytes().count(b"tick_size_change")
            except OSError:
                pass
    return n


def _post_run(h: _Harness) -> None:
    """Recovery of every journal, then invariants 1-5 (6 runs after the journals are copied off the tmpfs)."""
    from events.control import RunEnded
    from journal import Journal, JournalError, JournalReader, scan
    from replay.journal_io import read_envelopes
    from replay.verify import verify

    res = h.result
    checks = {name: Check(name) for name in INVARIANTS}
    res.checks = checks
    live = res.schedule.mode == "live"
    live_records: list[tuple[str, list[tuple[int, Any]]]] = []
    for s in res.sessions:
        tag = f"session {s.index}"
        if s.cause in ("crash", "overran"):
            tail = _tail(s.stderr)
            checks["journal"].problems.append(f"{tag}: unexpected end ({s.cause}, exit {s.rc}): {tail}")
        if s.cause == "refused":
            msg = f"{tag}: start refused: {_tail(s.stderr)}"
            (checks["no-open"].notes if s.impaired else checks["no-open"].problems).append(msg)
        if live and s.open_after and s.cause not in CLEAN_ENDS:
            checks["no-open"].notes.append(f"{tag} crashed ({s.cause}) leaving {len(s.open_after)} order(s) of ours "
                                           "open at the venue (orphans for the restart to cancel)")
        elif live and s.open_after:
            ids = ", ".join(o.get("id", "?")[:12] for o in s.open_after[:5])
            checks["no-open"].problems.append(f"{tag} ended ({s.cause}) with {len(s.open_after)} order(s) of ours "
                                              f"still open at the venue: {ids}")
        if s.run_dir is None or not s.run_dir.exists():
            if s.cause == "enospc" or h.disk.full or s.rc not in (0, None):
                checks["journal"].notes.append(f"{tag}: no journal (it could not be created: {_tail(s.stderr)})")
            else:
                checks["journal"].problems.append(f"{tag}: no journal directory found")
            continue
        clean_stop = s.cause in CLEAN_ENDS
        # 4: recovery (scan = what open will do, read-only; then really reopen), flushed records, replay
        try:
            before = scan(s.run_dir)
            header = JournalReader(s.run_dir).header
            j, report = Journal.open(s.run_dir, header.info)
            j.close()
        except (JournalError, OSError) as exc:
            checks["journal"].problems.append(f"{tag}: journal does not reopen: {exc}")
            continue
        if before.torn:
            res.stats["torn_tails_cut"] += 1
            msg = f"{tag} ({s.cause}): recovery cut a torn tail: {report}"
            (checks["journal"].problems if clean_stop else checks["journal"].notes).append(msg)
        try:
            records = [(seq, env) for seq, _payload, env in read_envelopes(JournalReader(s.run_dir))]
            digest = hashlib.blake2b(digest_size=16)
            for rec in JournalReader(s.run_dir).records(to_seq=s.seen_seq):
                digest.update(rec.seq.to_bytes(8, "little") + bytes(rec.payload))
        except (JournalError, ValueError) as exc:
            checks["journal"].problems.append(f"{tag}: journal unreadable after recovery: {exc}")
            continue
        if report.last_seq < s.seen_seq or digest.digest() != s.seen_digest.digest():
            checks["journal"].problems.append(
                f"{tag}: flushed records lost: the follower saw seq 1..{s.seen_seq}, recovery kept 1..{report.last_seq}"
                + ("" if report.last_seq < s.seen_seq else " with different contents"))
        try:
            v = verify(s.run_dir)
        except (JournalError, ValueError) as exc:
            checks["journal"].problems.append(f"{tag}: replay verify failed to run: {exc}")
            v = None
        if v is not None and not v.ok:
            m = v.mismatch
            checks["journal"].problems.append(f"{tag}: replay verify MISMATCH at seq {m.seq} ({m.actor}): {m.reason}")
        ended = bool(records) and isinstance(records[-1][1].ev, RunEnded)
        if clean_stop and not ended:
            checks["journal"].problems.append(f"{tag}: stopped cleanly (exit 0) but the journal has no RunEnded last")
        res.stats["records"] += len(records)
        live_records.append((tag, records))
        # 1: limits
        checks["limits"].problems += [f"{tag}: {p}" for p in check_limits(records)]
        # 2: nothing open after a stop; a crashed session's (simulated) orders died with it, its restart must be clean
        if ended:
            checks["no-open"].problems += [f"{tag}: {p}" for p in check_no_open(records)]
        else:
            checks["no-open"].notes.append(f"{tag}: crashed ({s.cause}); " + (
                "the restart's startup cleanup must cancel what it left" if live
                else "paper orders died with the process"))
        # 3: positions
        pp, nf, nfail = check_positions(records)
        checks["positions"].problems += [f"{tag}: {p}" for p in pp]
        res.stats["fills"] += nf
        res.stats["failed_fills"] += nfail
        # 5: journal part
        hp, reasons = check_no_place_after_halt(records)
        checks["kill-switch"].problems += [f"{tag}: {p}" for p in hp]
        for r in reasons:
            res.stats[f"kill:{r}"] += 1
    # 2: the run must end with a clean stop (after any crash, the restart stopped with nothing open)
    last = res.sessions[-1] if res.sessions else None
    if last is None:
        checks["no-open"].problems.append("no session ran")
    elif last.cause not in CLEAN_ENDS:
        checks["no-open"].problems.append(f"the last session ended by {last.cause}: no clean stop after the crash")
    if live:
        if res.final_open:
            ids = ", ".join(o.get("id", "?")[:12] for o in res.final_open[:5])
            checks["no-open"].problems.append(f"after the run, {len(res.final_open)} order(s) of ours still open at the "
                                              f"venue: {ids}")
        params = next((env.ev.params for _, recs in live_records for _, env in recs[:1]
                       if type(env.ev).__name__ == "RunStarted"), None)
        if params is not None:
            lp, ln = check_live_audit(res.audit, live_records, params)
            checks["limits"].problems += lp
            checks["limits"].notes += ln
        res.stats["venue_orders_accepted"] = sum(1 for r in res.audit if r.get("kind") == "order" and r.get("accepted"))
    _check_kill_timing(h, checks["kill-switch"])
    res.stats["sessions"] = len(res.sessions)


def check_live_audit(audit: list[dict[str, Any]], sessions: list[tuple[str, list[tuple[int, Any]]]],
                     params: Any) -> tuple[list[str], list[str]]:
    """Invariant 1 (live), from the sandbox's own audit: every order of ours the venue accepted is on the allowlist,
    post-only and within the per-order caps, and was signed by a session for an intent its risk gate approved, before
    any halt (the preflight smoke order, a post-only BUY at one tick and the minimum size, is the one exception)."""
    from decimal import Decimal

    from events.control import KillSwitch, RunStarted
    from events.live import OrderSigned
    from events.orders import RiskApproved
    from sandbox.testkeys import TEST_ADDRESS

    allow, _ = _mkt_index(params)
    r = params.risk
    signed: dict[str, tuple[str, str, bool, bool]] = {}
    for tag, records in sessions:
        approved = {env.ev.intent_seq for _, env in records if isinstance(env.ev, RiskApproved) and env.src == "risk"}
        halt: int | None = None
        for seq, env in records:
            ev = env.ev
            if halt is None and (isinstance(ev, KillSwitch) or (isinstance(ev, RunStarted) and ev.prior_halt)):
                halt = seq
            if isinstance(ev, OrderSigned):
                signed[ev.order_hash.lower()] = (tag, ev.client_id, ev.intent_seq in approved, halt is not None)
    problems: list[str] = []
    notes: list[str] = []
    for rec in audit:
        if rec.get("kind") != "order" or not rec.get("accepted") or rec.get("address") != TEST_ADDRESS:
            continue
        oid = str(rec.get("order_id") or "").lower()
        what = f"venue order {oid[:12]}… ({rec.get('side')} {rec.get('size')} @ {rec.get('price')})"
        try:
            price, size = Decimal(str(rec.get("price"))), Decimal(str(rec.get("size")))
        except ArithmeticError:
            problems.append(f"{what}: unreadable price/size in the audit")
            continue
        if rec.get("asset_id") not in allow:
            problems.append(f"{what}: token not in the allowlist")
        if rec.get("post_only") is not True:
            problems.append(f"{what}: not post-only")
        if size * 10**6 > r.max_order_size:
            problems.append(f"{what}: size above {r.max_order_size / 1e6:g}")
        if price * size * 10**6 > r.max_order_notional:
            problems.append(f"{what}: notional above {r.max_order_notional / 1e6:g}")
        hit = signed.get(oid)
        if hit is None:
            if rec.get("side") == "BUY" and rec.get("post_only") is True and price <= Decimal("0.01"):
                notes.append(f"{what}: the preflight smoke order")
            else:
                problems.append(f"{what}: no session journal signed it")
            continue
        tag, cid, ok, after_halt = hit
        if not ok:
            problems.append(f"{what}: {tag} signed {cid} without a risk approval")
        if after_halt:
            problems.append(f"{what}: {tag} signed {cid} after its halt")
    return problems, notes


def _check_kill_timing(h: _Harness, check: Check) -> None:
    """Invariant 5, timing part: a kill switch within FEED_STALE_S (+ slack) of every stale-connection fault that
    hit a live, not yet halted session; a fail-stop within ENOSPC_DEADLINE_S of a full disk."""
    sessions = {s.index: s for s in h.result.sessions}
    expected = 0
    for a in h.result.applied:
        f = a.fault
        s = sessions.get(a.session) if a.session is not None else None
        if f.kind in STALE_KINDS:
            if s is None or not a.effective:
                check.notes.append(f"{f.kind} at t+{a.t:.1f}s: no connected trading process (nothing to detect)")
                continue
            if any(k[0] <= a.t and k[1] != "operator_stop" for k in s.kills):
                check.notes.append(f"{f.kind} at t+{a.t:.1f}s: session {s.index} already halted")
                continue
            limit = a.t + EXPECT_S[f.kind] + KILL_SLACK_S
            if s.ended is not None and s.ended < limit and s.cause in ("kill9", "enospc"):
                check.notes.append(f"{f.kind} at t+{a.t:.1f}s: session {s.index} crashed first ({s.cause})")
                continue
            expected += 1
            kills = [k for k in s.kills if k[0] >= a.t - 0.5 and k[1] != "operator_stop"]
            if not kills or kills[0][0] > limit:
                seen = f"first kill switch at t+{kills[0][0]:.1f}s ({kills[0][1]})" if kills else "no kill switch"
                check.problems.append(f"{f.kind} at t+{a.t:.1f}s (session {s.index}): {seen}; expected by "
                                      f"t+{limit:.1f}s ({EXPECT_S[f.kind]:g} s configured + {KILL_SLACK_S:g} s slack)")
            else:
                check.notes.append(f"{f.kind} at t+{a.t:.1f}s: kill switch {kills[0][1]} after "
                                   f"{kills[0][0] - a.t:.1f} s")
                h.result.latencies.setdefault(f.kind, []).append(round(kills[0][0] - a.t, 2))
        elif f.kind == "enospc" and a.effective:
            if s is None or s.enospc_at is None:
                continue
            expected += 1
            took = (s.ended - s.enospc_at) if s.ended is not None else None
            err = _tail(s.stderr)
            if s.rc in (0, None) or took is None or took > ENOSPC_DEADLINE_S:
                check.problems.append(f"enospc at t+{a.t:.1f}s (session {s.index}): no fail-stop within "
                                      f"{ENOSPC_DEADLINE_S:g} s (exit {s.rc}, after {took} s): {err}")
            elif "journal" not in err.lower() and "space" not in err.lower():
                check.problems.append(f"enospc at t+{a.t:.1f}s (session {s.index}): exit {s.rc} without naming the "
                                      f"journal: {err}")
            else:
                check.notes.append(f"enospc at t+{a.t:.1f}s: fail-stop after {took:.1f} s, exit {s.rc}: {err[:100]}")
                h.result.latencies.setdefault("enospc", []).append(round(took, 2))
        elif f.kind == "clock_jump" and s is not None:
            stale = [b.t for b in h.result.applied if b.fault.kind in STALE_KINDS and b.t <= a.t]
            kills = [k for k in s.kills if a.t - 0.5 <= k[0] <= a.t + 3.0 and k[1] != "operator_stop"
                     and not any(k[0] - max(EXPECT_S.values()) - KILL_SLACK_S <= t for t in stale)]
            check.notes.append(f"clock_jump {f.p['by_s']:+g} s at t+{a.t:.1f}s: "
                               + (f"kill switch {kills[0][1]} after {kills[0][0] - a.t:.1f} s" if kills else "no halt"))
    check.applicable = expected > 0 or bool(check.problems)


def _check_secrets(h: _Harness) -> None:
    check = h.result.checks.setdefault("secrets", Check("secrets"))
    assert h.result.out_dir is not None
    found = scan_for_secrets([h.result.out_dir], h.secrets)
    # the sandbox's own audit trail records the API key of every request: it is the venue's record, not ours. Every
    # file the trading process wrote (journals, status, logs) must be free of it: the live edges mask it (docs/live.md)
    venue = [f for f in found if f.startswith("api key ") and f.endswith(os.sep + "audit.json")]
    check.notes += venue
    check.problems += [f for f in found if f not in venue]


def positions_moved(err: str, earlier: list[str]) -> tuple[bool, bool]:
    """A live start refused because the wallet's positions differ from the previous run's end (``err``: its last
    stderr line; ``earlier``: the causes of the sessions before it): (start the next one with
    ``--accept-positions``, the refusal is explained by an earlier session that died without a clean stop, whose
    orphan orders could fill before the restart cancelled them)."""
    if "starting inventory: positions differ" not in err:
        return False, False
    return True, any(c in ("kill9", "crash", "overran", "enospc") for c in earlier)


def _tail(path: Path | None, n: int = 300) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return (lines[-1] if lines else "")[:n]


def result_json(r: RunResult) -> dict[str, Any]:
    return {
        "seed": r.schedule.seed, "ok": r.ok, "schedule": r.schedule.to_json(), "schedule_digest": r.schedule.digest,
        "repro": r.repro(),
        "checks": {k: {"status": c.status, "problems": c.problems, "notes": c.notes} for k, c in r.checks.items()},
        "applied": [{"t": round(a.t, 2), "kind": a.fault.kind, "session": a.session, "hits": a.hits,
                     "effective": a.effective, "detail": a.detail} for a in r.applied],
        "sessions": [{"index": s.index, "pid": s.pid, "cause": s.cause, "rc": s.rc, "started": round(s.started, 2),
                      "ended": None if s.ended is None else round(s.ended, 2), "run_dir": str(s.run_dir or ""),
                      "seen_seq": s.seen_seq, "kills": [(round(t, 2), why, seq) for t, why, seq in s.kills],
                      "clock_env": s.clock_env} for s in r.sessions],
        "stats": dict(r.stats), "notes": r.notes, "latencies": r.latencies,
    }


# ----------------------------------------------------------------------------------------------- sweep + CLI


def print_table(results: list[RunResult], say: Callable[[str], None]) -> None:
    cols = ("seed", "scenario", "faults", "sess", *INVARIANTS, "result")
    rows = []
    for r in results:
        rows.append((str(r.schedule.seed), r.schedule.scenario, str(len(r.schedule.faults)), str(len(r.sessions)),
                     *(r.checks[i].status if i in r.checks else "-" for i in INVARIANTS), "ok" if r.ok else "FAIL"))
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    say("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for row in rows:
        say("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def sweep_summary(results: list[RunResult]) -> dict[str, Any]:
    scheduled: Counter[str] = Counter()
    effective: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    for r in results:
        for f in r.schedule.faults:
            scheduled[f.kind] += 1
        for a in r.applied:
            if a.effective:
                effective[a.fault.kind] += 1
        if r.schedule.scenario == "edge":
            scheduled["tick_size (edge scenario)"] += 1
            if r.stats.get("tick_size_changes_seen", 0):
                effective["tick_size (edge scenario)"] += 1
        stats.update(r.stats)
    fails = {i: sum(1 for r in results if r.checks.get(i) and r.checks[i].problems) for i in INVARIANTS}
    lat: dict[str, list[float]] = defaultdict(list)
    for r in results:
        for k, v in r.latencies.items():
            lat[k] += v
    return {"runs": len(results), "failed_runs": sum(not r.ok for r in results), "scheduled": dict(scheduled),
            "effective": dict(effective), "stats": dict(stats), "invariant_failures": fails,
            "latency_max_s": {k: max(v) for k, v in sorted(lat.items())}, "latency_n": {k: len(v) for k, v in sorted(lat.items())}}


async def run_sweep(seed: int, runs: int, duration_s: float, mode: str, out_root: Path,
                    say: Callable[[str], None] = print) -> list[RunResult]:
    results = []
    for i in range(runs):
        sched = make_schedule(seed + i, duration_s, mode)
        say(f"=== run {i + 1}/{runs}: seed {sched.seed} ===")
        r = await run_one(sched, out_root, say)
        results.append(r)
        for name in INVARIANTS:
            c = r.checks.get(name)
            if c is None:
                continue
            say(f"  [{c.status:4}] {name}" + (f": {c.problems[0]}" if c.problems else ""))
            for p in c.problems[1:6]:
                say(f"         {p}")
        if not r.ok:
            say(f"  FAILED: seed {sched.seed}; reproduce with: {r.repro()}")
    return results


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        print(f"pmm: chaos: {message} (see --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pmm chaos", description="Deterministic chaos runs against the sandbox exchange, with "
                "invariant checks (docs/reliability.md).")
    p.add_argument("--seed", type=int, default=1, help="seed of the first run (run i uses seed + i; default 1)")
    p.add_argument("--runs", type=int, default=1, help="number of runs (default 1)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds per run (default 60, at least 10)")
    p.add_argument("--mode", choices=("paper", "live"), default="paper")
    p.add_argument("--out", default="artifacts/chaos/latest", help="artifact folder (default artifacts/chaos/latest)")
    p.add_argument("--schedule-only", action="store_true", help="print the schedules and exit")
    return p


def live_available() -> bool:
    """Whether this build has a `pmm live` command at all (``actors/live_session.py`` wired into the CLI)."""
    import importlib.util

    try:
        if importlib.util.find_spec("actors.live_session") is None:
            return False
        from pmm import cli

        subs = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
        return any("live" in a.choices for a in subs) or "live" in getattr(cli, "PASSTHROUGH", {})
    except Exception:
        return False


def chaos_main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.runs < 1:
        print("pmm: chaos: --runs must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if not (10 <= args.duration <= 24 * 3600):
        print("pmm: chaos: --duration must be between 10 and 86400 seconds", file=sys.stderr)
        return EXIT_USAGE
    if args.seed < 0:
        print("pmm: chaos: --seed must be >= 0", file=sys.stderr)
        return EXIT_USAGE
    if args.schedule_only:
        for i in range(args.runs):
            for line in make_schedule(args.seed + i, args.duration, args.mode).lines():
                print(line)
        return 0
    if args.mode == "live" and not live_available():
        why = "this build has no `pmm live` command"
        live_only = ", ".join(k for k in kinds_for("live") if k not in kinds_for("paper"))
        print(f"pmm: chaos: live mode not available yet ({why}); the live fault kinds ({live_only}) are already in "
              "the schedule generator: see them with --mode live --schedule-only", file=sys.stderr)
        return EXIT_USAGE
    import trio

    out_root = Path(args.out)
    out_root.mkdir(parents=True, exist_ok=True)

    def say(line: str) -> None:
        print(line, flush=True)

    started = time.monotonic()
    try:
        results = trio.run(run_sweep, args.seed, args.runs, args.duration, args.mode, out_root, say)
    except KeyboardInterrupt:
        print("pmm: chaos: interrupted", file=sys.stderr)
        return EXIT_FAIL
    say("")
    say(f"=== chaos sweep: {len(results)} run(s) x {args.duration:g} s, mode {args.mode}, "
        f"{time.monotonic() - started:.0f} s ===")
    print_table(results, say)
    summary = sweep_summary(results)
    say("faults injected (effective/scheduled): " + ", ".join(
        f"{k} {summary['effective'].get(k, 0)}/{v}" for k, v in sorted(summary["scheduled"].items())))
    st = summary["stats"]
    kills = ", ".join(f"{k[5:]} {v}" for k, v in sorted(st.items()) if k.startswith("kill:")) or "none"
    say(f"sessions {st.get('sessions', 0)}, records {st.get('records', 0)}, fills {st.get('fills', 0)}, "
        f"torn tails cut {st.get('torn_tails_cut', 0)}, kill switches: {kills}")
    if summary["latency_max_s"]:
        say("time to kill switch / fail-stop (max over the sweep): " + ", ".join(
            f"{k} {v:.1f} s (n={summary['latency_n'][k]})" for k, v in summary["latency_max_s"].items()))
    (out_root / "summary.json").write_text(json.dumps(
        {"args": vars(args), "summary": summary, "runs": [result_json(r) for r in results]}, indent=1))
    failed = [r for r in results if not r.ok]
    if failed:
        for r in failed:
            bad = [f"{n}: {r.checks[n].problems[0]}" for n in INVARIANTS if n in r.checks and r.checks[n].problems]
            say(f"FAIL seed {r.schedule.seed}: {bad[0]}")
            say(f"  reproduce: {r.repro()}")
        say(f"{len(failed)} of {len(results)} run(s) failed; artifacts in {out_root}/")
        return EXIT_FAIL
    say(f"all invariants hold in {len(results)} run(s); artifacts in {out_root}/")
    return 0


if __name__ == "__main__":
    sys.exit(chaos_main())
