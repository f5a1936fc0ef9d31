"""A running summary of a session, projected from its records (for the console line, the final summary and
the status file). It only reads events; what it shows can always be rebuilt from the journal."""
from __future__ import annotations

from dataclasses import dataclass, field

from actors.core.risk import lost_cancel_race
from events.codec import Envelope
from events.control import KillSwitch, RunStarted, TradingState
from events.paper import QuoteQuality, SessionMetrics
from events.market import BookChanged, FeedFrame, FeedStatus, ParseError, RestBook
from events.orders import (
    Churn,
    DesiredQuotes,
    ExchangeReply,
    Fill,
    OrderIntent,
    OrderState,
    Position,
    RewardEstimate,
    RiskReject,
)

MICRO = 1_000_000
LIVE_STATES = {"pending_new", "live", "partially_filled", "unknown"}


@dataclass
class TokenView:
    best_bid: int = 0
    best_ask: int = 0
    valid: bool = False
    position: int = 0
    mtm: int = 0
    realized: int = 0
    cash: int = 0


@dataclass
class SessionStats:
    run_id: str = ""
    mode: str = ""
    started_ns: int = 0
    now_ns: int = 0
    last_seq: int = 0
    conn_state: str = "connecting"
    conn: int = 0
    last_frame_ns: int = 0
    frames: int = 0
    reconnects: int = 0
    parse_errors: int = 0
    rest_books: int = 0
    desired_quotes: int = 0
    intents: int = 0
    rejects: int = 0
    reject_codes: dict[str, int] = field(default_factory=dict)
    fills: int = 0
    filled_size: int = 0
    halted: str = ""
    trading_state: str = "ACTIVE"
    reward_score: dict[str, int] = field(default_factory=dict)
    churn: Churn | None = None
    tokens: dict[str, TokenView] = field(default_factory=dict)
    orders: dict[str, str] = field(default_factory=dict)
    desired: dict[str, DesiredQuotes] = field(default_factory=dict)
    exchange_errors: int = 0
    quote_quality: dict[tuple[str, str], QuoteQuality] = field(default_factory=dict)
    metrics: SessionMetrics | None = None
    stale_kills: int = 0
    _frames_window: list[tuple[int, int]] = field(default_factory=list)

    def token(self, t: str) -> TokenView:
        v = self.tokens.get(t)
        if v is None:
            v = self.tokens[t] = TokenView()
        return v

    def feed(self, seq: int, env: Envelope) -> None:
        self.last_seq = seq
        self.now_ns = env.ts_ns
        ev = env.ev
        if isinstance(ev, FeedFrame):
            self.frames += 1
            self.last_frame_ns = env.ts_ns
        elif isinstance(ev, BookChanged):
            v = self.token(ev.token_id)
            v.best_bid, v.best_ask, v.valid = ev.best_bid, ev.best_ask, ev.valid
        elif isinstance(ev, FeedStatus):
            self.conn_state, self.conn = ev.state, ev.conn
            if ev.state == "connecting" and ev.conn > 1:
                self.reconnects += 1
            if ev.state == "connected":
                self.last_frame_ns = env.ts_ns
        elif isinstance(ev, ParseError):
            self.parse_errors += 1
        elif isinstance(ev, RestBook):
            self.rest_books += 1
        elif isinstance(ev, DesiredQuotes):
            self.desired_quotes += 1
            self.desired[ev.condition_id] = ev
        elif isinstance(ev, OrderIntent):
            self.intents += 1
        elif isinstance(ev, RiskReject):
            self.rejects += 1
            self.reject_codes[ev.code] = self.reject_codes.get(ev.code, 0) + 1
        elif isinstance(ev, OrderState):
            if ev.state in LIVE_STATES:
                self.orders[ev.client_id] = ev.state
            else:
                self.orders.pop(ev.client_id, None)
        elif isinstance(ev, ExchangeReply):
            if not ev.ok and not lost_cancel_race(ev):  # what the error-rate breaker counts
                self.exchange_errors += 1
        elif isinstance(ev, Fill):
            self.fills += 1
            self.filled_size += ev.size
        elif isinstance(ev, Position):
            v = self.token(ev.token_id)
            v.position, v.mtm, v.realized, v.cash = ev.position, ev.mtm, ev.realized, ev.cash
        elif isinstance(ev, KillSwitch):
            self.stale_kills += ev.reason == "feed_stale"
            self.halted = self.halted or f"{ev.reason}: {ev.detail}" if ev.detail else self.halted or ev.reason
        elif isinstance(ev, TradingState):
            self.trading_state = ev.state
        elif isinstance(ev, RewardEstimate):
            self.reward_score[ev.condition_id] = ev.score
        elif isinstance(ev, Churn):
            self.churn = ev
        elif isinstance(ev, QuoteQuality):
            self.quote_quality[(ev.token_id, ev.side)] = ev
        elif isinstance(ev, SessionMetrics):
            self.metrics = ev
        elif isinstance(ev, RunStarted):
            self.run_id, self.mode, self.started_ns = ev.run_id, ev.mode, env.ts_ns

    def feed_all(self, records: list[tuple[int, Envelope]]) -> None:
        for seq, env in records:
            self.feed(seq, env)

    # ------------------------------------------------------------ derived figures
    def msgs_per_s(self, now_ns: int) -> float:
        w = self._frames_window
        w.append((now_ns, self.frames))
        while len(w) > 2 and w[0][0] < now_ns - 5 * 10**9:
            w.pop(0)
        (t0, f0), (t1, f1) = w[0], w[-1]
        return (f1 - f0) / ((t1 - t0) / 1e9) if t1 > t0 else 0.0

    @property
    def position_shares(self) -> float:
        return sum(v.position for v in self.tokens.values()) / MICRO

    @property
    def pnl(self) -> float:
        return sum(v.mtm for v in self.tokens.values()) / MICRO

    @property
    def books_valid(self) -> int:
        return sum(1 for v in self.tokens.values() if v.valid)

    @property
    def quotes_wanted(self) -> int:
        return sum(len(d.quotes) for d in self.desired.values())

    def line(self, now_ns: int) -> str:
        age = (now_ns - self.last_frame_ns) / 1e9 if self.last_frame_ns else float("nan")
        parts = [
            f"{(now_ns - self.started_ns) / 1e9:6.0f}s",
            f"feed {self.conn_state}#{self.conn} age {age:4.1f}s",
            f"{self.msgs_per_s(now_ns):6.1f} msg/s",
            f"books {self.books_valid}/{len(self.tokens)}",
            f"quotes {self.quotes_wanted}",
            f"reconnects {self.reconnects}",
        ]
        if self.mode in ("paper", "live"):
            parts += [
                f"orders {len(self.orders)}",
                f"fills {self.fills}",
                f"pos {self.position_shares:+.1f}",
                f"pnl {self.pnl:+.4f}",
            ]
        parts.append(f"HALTED ({self.halted})" if self.halted else self.trading_state)
        return " | ".join(parts)
