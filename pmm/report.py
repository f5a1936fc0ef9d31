"""``pmm report JOURNAL [--out FILE]``: one self-contained HTML file describing a session, from its journal alone.

For the builder who replays journals and for the observer who may only read. The journal is opened read-only
(``JournalReader``: ``O_RDONLY``, no lock, nothing created); the report is written to ``--out`` or to
``report-<run id>.html`` in the current directory, never into the journal folder. A crashed session's journal
(torn tail, no ``RunEnded``) gives a report of everything up to the last valid record, and says so.

The file has no scripts, fonts, stylesheets or images from anywhere: the charts are inline SVG drawn here.
Long series are downsampled per time bucket keeping first, last, min and max (at most ``MAX_POINTS`` points per
chart), so a day-long journal still gives a file of reasonable size. What each chart shows: ``docs/report.md``.
"""
from __future__ import annotations

import argparse
import html
import math
import os
import re
import time
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from actors.sink.stats import SessionStats
from events.codec import Envelope
from events.control import (
    GuardViolation,
    JournalRecovered,
    KillSwitch,
    OperatorStop,
    RunEnded,
    RunStarted,
    TradingState,
)
from events.market import BookChanged, FeedFrame, FeedStatus, ParseError, ResyncRequest, RestBook
from events.orders import (
    CancelIntent,
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
from events.paper import RestingScore
from events.risk import ReduceOnly

from pmm.args import EXIT_FAIL, EXIT_USAGE
MICRO = 1_000_000
SEC = 10**9
MAX_POINTS = 2000
"""Upper bound on the points drawn in one chart (all its series together, markers excluded)."""
MAX_TABLE_ROWS = 300
NONE = -(2**63)
"""Sentinel for "no value" in the integer columns (a gap in a line)."""
RESTING = frozenset({"live", "partially_filled"})


# =============================================================== command line
from pmm.args import Parser as _Parser  # noqa: E402
from pmm.args import err as _err  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pmm report", description="Write one self-contained HTML report of a session's journal.")
    p.add_argument("journal", help="journal directory (opened read-only)")
    p.add_argument("--out", metavar="FILE",
                   help="where to write the report (default: report-<run id>.html in the current directory)")
    return p


def report_main(argv: list[str]) -> int:
    """Entry point of ``pmm report``. 0: written; 1: damaged journal or write failed; 2: unusable input."""
    from journal import JournalCorruption, JournalError

    args = build_parser().parse_args(argv)
    journal = Path(args.journal)
    try:
        data = load(journal)
    except JournalCorruption as exc:
        _err(str(exc))
        return EXIT_FAIL
    except (JournalError, ValueError, OSError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    out = Path(args.out) if args.out else Path(f"report-{safe_name(data.run_id or 'journal')}.html")
    if _inside(out, journal):
        _err(f"report: {out}: refusing to write into the journal folder {journal} (use --out elsewhere)")
        return EXIT_USAGE
    page = render(data)
    try:
        write_file(out, page.encode())
    except OSError as exc:
        _err(f"report: cannot write {out}: {exc.strerror or exc}")
        return EXIT_FAIL
    note = " (torn tail: see the report)" if data.torn else ""
    print(f"report: {out} ({len(page) // 1024} KB, {data.records} records, {len(data.charts_drawn)} charts){note}")
    return 0


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "journal"


def _inside(out: Path, folder: Path) -> bool:
    try:
        o, f = out.resolve().parent, folder.resolve()
    except OSError:
        return False
    return o == f or f in o.parents


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file next to it and a rename (no half-written report)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# =============================================================== series storage
class Steps:
    """A step function of time in two integer columns (value holds until the next point; NONE is a gap)."""

    __slots__ = ("t", "v")

    def __init__(self) -> None:
        self.t = array("q")
        self.v = array("q")

    def add(self, t: int, v: int | None) -> None:
        x = NONE if v is None else v
        if self.t and self.t[-1] == t:  # several changes in one cascade: the last one stands
            self.v[-1] = x
            if len(self.v) >= 2 and self.v[-2] == x:
                self.t.pop()
                self.v.pop()
            return
        if self.v and self.v[-1] == x:
            return
        self.t.append(t)
        self.v.append(x)

    def __len__(self) -> int:
        return len(self.t)

    @property
    def has_values(self) -> bool:
        return any(x != NONE for x in self.v)


class Points:
    """Scattered points (t, value) with no step semantics (fills)."""

    __slots__ = ("size", "t", "v")

    def __init__(self) -> None:
        self.t = array("q")
        self.v = array("q")
        self.size = array("q")

    def add(self, t: int, v: int, size: int) -> None:
        self.t.append(t)
        self.v.append(v)
        self.size.append(size)

    def __len__(self) -> int:
        return len(self.t)


class TokenData:
    def __init__(self) -> None:
        self.bid, self.ask, self.mid = Steps(), Steps(), Steps()
        self.q_bid, self.q_ask = Steps(), Steps()
        self.r_bid, self.r_ask = Steps(), Steps()
        self.position, self.mtm, self.realized = Steps(), Steps(), Steps()
        self.buys, self.sells = Points(), Points()
        self.bought = self.sold = 0
        self.buy_cash = self.sell_cash = 0
        self.failed_fills = 0
        self.resting: dict[str, tuple[str, int]] = {}
        self.last_book: BookChanged | None = None


@dataclass
class Marker:
    t: int
    kind: str
    """feed, kill, state, operator, journal."""
    label: str


@dataclass
class ReportData:
    """Everything the report shows, collected in one pass over the journal."""

    path: Path
    run_id: str = ""
    mode: str = ""
    fills_mode: str = ""
    quoting: bool = True
    version: str = ""
    seed: int = 0
    config_hash: str = ""
    created_ns: int = 0
    git_sha: str = ""
    prior_halt: str = ""
    schema_note: str = ""
    markets: list[tuple[str, str, str]] = field(default_factory=list)
    """(condition id, yes token, no token), in config order."""
    first_ns: int = 0
    last_ns: int = 0
    records: int = 0
    ended: str | None = None
    torn: str = ""
    recovered: list[str] = field(default_factory=list)
    tokens: dict[str, TokenData] = field(default_factory=dict)
    total_mtm: Steps = field(default_factory=Steps)
    total_realized: Steps = field(default_factory=Steps)
    markers: list[Marker] = field(default_factory=list)
    timeline: list[tuple[int, str, str]] = field(default_factory=list)
    churn: list[tuple[int, Churn]] = field(default_factory=list)
    places_at: array = field(default_factory=lambda: array("q"))
    cancels_at: array = field(default_factory=lambda: array("q"))
    frames_at: array = field(default_factory=lambda: array("q"))
    parse_errors_at: array = field(default_factory=lambda: array("q"))
    parse_reasons: Counter = field(default_factory=Counter)
    rejects: Counter = field(default_factory=Counter)
    reject_detail: dict[str, str] = field(default_factory=dict)
    exchange_errors: Counter = field(default_factory=Counter)
    reward: dict[str, Steps] = field(default_factory=dict)
    resting_score: dict[str, Steps] = field(default_factory=dict)
    kills: list[tuple[int, str, str]] = field(default_factory=list)
    guard_violations: list[tuple[int, str]] = field(default_factory=list)
    resyncs: int = 0
    stats: SessionStats = field(default_factory=SessionStats)
    charts_drawn: list[str] = field(default_factory=list)

    # ------------------------------------------------------------ names
    def token_label(self, token: str) -> str:
        for i, (_, yes, no) in enumerate(self.markets, 1):
            if token == yes:
                return f"m{i} YES"
            if token == no:
                return f"m{i} NO"
        return f"token {short(token)}"

    def market_label(self, condition_id: str) -> str:
        for i, (cid, _, _) in enumerate(self.markets, 1):
            if cid == condition_id:
                return f"m{i}"
        return f"market {short(condition_id)}"

    def token_order(self) -> list[str]:
        out = [t for _, yes, no in self.markets for t in (yes, no)]
        return out + sorted(t for t in self.tokens if t not in out)


def short(ident: str, head: int = 6, tail: int = 4) -> str:
    return ident if len(ident) <= head + tail + 1 else f"{ident[:head]}…{ident[-tail:]}"


# =============================================================== reading
def load(path: Path) -> ReportData:
    """Read the journal at ``path`` (read-only) and collect what the report shows.

    Raises:
        JournalNotFound, JournalCorruption, JournalVersionError, JournalDecodeError: as the reader does.
    """
    from journal import JournalReader
    from replay.journal_io import check_schema, read_envelopes

    reader = JournalReader(Path(path))
    hdr = reader.header
    d = ReportData(path=Path(path), run_id=hdr.run_id, seed=hdr.seed, config_hash=hdr.config_hash,
                   created_ns=hdr.created_ns, git_sha=hdr.git_sha)
    d.schema_note = check_schema(reader)
    c = _Collector(d)
    for seq, _, env in read_envelopes(reader):
        c.feed(seq, env)
    if reader.torn is not None:
        t = reader.torn
        d.torn = (f"the journal ends in a torn tail: {t.dropped_bytes} bytes after seq {t.last_seq} in "
                  f"{t.segment} ({t.reason}); the report covers seq 1..{t.last_seq}")
    return d


class _Collector:
    def __init__(self, d: ReportData) -> None:
        self.d = d
        self.intents: dict[str, tuple[str, str, int]] = {}
        """client id -> (token, side, price) of every place intent (to draw resting orders)."""
        self.cond_tokens: dict[str, list[str]] = {}
        self.last_mtm: dict[str, int] = {}
        self.last_realized: dict[str, int] = {}
        self.last_feed_state = ""
        self.trading_state = "ACTIVE"

    def token(self, t: str) -> TokenData:
        v = self.d.tokens.get(t)
        if v is None:
            v = self.d.tokens[t] = TokenData()
        return v

    def event(self, t: int, kind: str, text: str, marker: str | None = None) -> None:
        self.d.timeline.append((t, kind, text))
        if marker is not None:
            self.d.markers.append(Marker(t, marker, text))

    def feed(self, seq: int, env: Envelope) -> None:
        d = self.d
        d.stats.feed(seq, env)
        t = env.ts_ns
        if not d.records:
            d.first_ns = t
        d.records = seq
        d.last_ns = max(d.last_ns, t)
        ev = env.ev
        if isinstance(ev, FeedFrame):
            d.frames_at.append(t)
        elif isinstance(ev, BookChanged):
            v = self.token(ev.token_id)
            bid = ev.best_bid if ev.valid and ev.best_bid else None
            ask = ev.best_ask if ev.valid and ev.best_ask else None
            v.bid.add(t, bid)
            v.ask.add(t, ask)
            v.mid.add(t, (bid + ask) // 2 if bid is not None and ask is not None else None)
            v.last_book = ev
        elif isinstance(ev, DesiredQuotes):
            self._desired(t, ev)
        elif isinstance(ev, OrderIntent):
            self.intents[ev.client_id] = (ev.token_id, ev.side, ev.price)
            self.cond_tokens.setdefault(ev.condition_id, [])
            if ev.token_id not in self.cond_tokens[ev.condition_id]:
                self.cond_tokens[ev.condition_id].append(ev.token_id)
            d.places_at.append(t)
        elif isinstance(ev, CancelIntent):
            d.cancels_at.append(t)
        elif isinstance(ev, OrderState):
            self._order_state(t, ev)
        elif isinstance(ev, Fill):
            self._fill(t, ev)
        elif isinstance(ev, Position):
            v = self.token(ev.token_id)
            v.position.add(t, ev.position)
            v.mtm.add(t, ev.mtm)
            v.realized.add(t, ev.realized)
            self.last_mtm[ev.token_id] = ev.mtm
            self.last_realized[ev.token_id] = ev.realized
            d.total_mtm.add(t, sum(self.last_mtm.values()))
            d.total_realized.add(t, sum(self.last_realized.values()))
        elif isinstance(ev, Churn):
            d.churn.append((t, ev))
        elif isinstance(ev, RiskReject):
            d.rejects[ev.code] += 1
            if ev.detail and ev.code not in d.reject_detail:
                d.reject_detail[ev.code] = ev.detail
        elif isinstance(ev, ExchangeReply):
            if not ev.ok:
                d.exchange_errors[(ev.op, ev.status, ev.message[:120])] += 1
        elif isinstance(ev, ParseError):
            d.parse_errors_at.append(t)
            d.parse_reasons[ev.reason[:120]] += 1
        elif isinstance(ev, ResyncRequest):
            d.resyncs += 1
        elif isinstance(ev, RewardEstimate):
            d.reward.setdefault(ev.condition_id, Steps()).add(t, ev.score)
        elif isinstance(ev, RestingScore):
            d.resting_score.setdefault(ev.condition_id, Steps()).add(t, ev.score)
        elif isinstance(ev, FeedStatus):
            self._feed_status(t, ev)
        elif isinstance(ev, KillSwitch):
            text = f"{ev.reason}: {ev.detail}" if ev.detail else ev.reason
            d.kills.append((t, ev.reason, ev.detail))
            self.event(t, "kill switch", text, "kill")
        elif isinstance(ev, TradingState):
            changed = ev.state != self.trading_state
            self.trading_state = ev.state
            self.event(t, "trading state", f"{ev.state}" + (f" ({ev.reason})" if ev.reason else ""),
                       "state" if changed else None)
        elif isinstance(ev, OperatorStop):
            self.event(t, "operator stop", ev.reason, "operator")
        elif isinstance(ev, ReduceOnly):
            self.event(t, "reduce only", ev.reason, "operator")
        elif isinstance(ev, JournalRecovered):
            text = f"journal recovered: {ev.dropped_bytes} bytes cut after seq {ev.last_seq}"
            text += f" ({ev.detail})" if ev.detail else ""
            d.recovered.append(text)
            self.event(t, "journal", text, "journal")
        elif isinstance(ev, GuardViolation):
            d.guard_violations.append((ev.seq, ev.detail))
            self.event(t, "guard violation", f"seq {ev.seq}: {ev.detail}")
        elif isinstance(ev, RestBook):
            self.event(t, "resync", f"REST book for {d.token_label(ev.token_id)}: HTTP {ev.status}")
        elif isinstance(ev, RunStarted):
            self._run_started(ev)
            self.event(t, "run started", f"{ev.mode} run {ev.run_id}"
                       + (f" (halt carried over: {ev.prior_halt})" if ev.prior_halt else ""))
        elif isinstance(ev, RunEnded):
            d.ended = ev.reason
            self.event(t, "run ended", ev.reason)

    def _run_started(self, ev: RunStarted) -> None:
        d = self.d
        d.run_id, d.mode, d.version, d.seed = ev.run_id, ev.mode, ev.version, ev.seed
        d.config_hash, d.prior_halt = ev.config_hash, ev.prior_halt
        d.fills_mode, d.quoting = ev.params.fills, ev.params.quoting
        d.markets = [(m.condition_id, m.yes_token, m.no_token) for m in ev.params.markets]
        for cid, yes, no in d.markets:
            self.cond_tokens[cid] = [yes, no]

    def _desired(self, t: int, ev: DesiredQuotes) -> None:
        tokens = list(self.cond_tokens.get(ev.condition_id, []))
        for q in ev.quotes:
            if q.token_id not in tokens:
                tokens.append(q.token_id)
        self.cond_tokens[ev.condition_id] = tokens
        for tok in tokens:
            bids = [q.price for q in ev.quotes if q.token_id == tok and q.side == "BUY"]
            asks = [q.price for q in ev.quotes if q.token_id == tok and q.side == "SELL"]
            v = self.token(tok)
            v.q_bid.add(t, max(bids) if bids else None)
            v.q_ask.add(t, min(asks) if asks else None)

    def _order_state(self, t: int, ev: OrderState) -> None:
        intent = self.intents.get(ev.client_id)
        if intent is None:
            return
        tok, side, price = intent
        v = self.token(tok)
        if ev.state in RESTING:
            v.resting[ev.client_id] = (side, price)
        elif v.resting.pop(ev.client_id, None) is None:
            return
        bids = [p for s, p in v.resting.values() if s == "BUY"]
        asks = [p for s, p in v.resting.values() if s == "SELL"]
        v.r_bid.add(t, max(bids) if bids else None)
        v.r_ask.add(t, min(asks) if asks else None)

    def _fill(self, t: int, ev: Fill) -> None:
        v = self.token(ev.token_id)
        if ev.status == "FAILED":
            v.failed_fills += 1
            self.event(t, "fill failed", f"{self.d.token_label(ev.token_id)} {ev.side} {ev.size / MICRO:g} @ "
                       f"{ev.price / MICRO:g} (trade {ev.trade_id})")
            return
        if ev.side == "BUY":
            v.buys.add(t, ev.price, ev.size)
            v.bought += ev.size
            v.buy_cash += ev.price * ev.size // MICRO
        else:
            v.sells.add(t, ev.price, ev.size)
            v.sold += ev.size
            v.sell_cash += ev.price * ev.size // MICRO

    def _feed_status(self, t: int, ev: FeedStatus) -> None:
        text = f"{ev.state} (connection #{ev.conn})" + (f": {ev.detail}" if ev.detail else "")
        marker = None
        if ev.state == "disconnected":
            marker = "feed"
        elif ev.state == "connected" and ev.conn > 1:
            marker = "feed"
        elif ev.state == "connecting" and ev.conn > 1 and self.last_feed_state != "disconnected":
            marker = "feed"
        self.last_feed_state = ev.state
        self.event(t, "feed", text, marker)


# =============================================================== downsampling
def downsample(t: Sequence[int], v: Sequence[int], budget: int, t0: int, t1: int) -> list[tuple[int, int]]:
    """At most about ``budget`` points of (t, v): per time bucket the first, last, min and max value and the
    first gap (NONE), in time order. Below the budget the series is returned whole."""
    n = len(t)
    if n <= budget:
        return list(zip(t, v, strict=True))
    nb = max(1, budget // 5)
    width = max(1, (t1 - t0 + 1) / nb)
    out: list[tuple[int, int]] = []
    i = 0
    while i < n:
        b = int((t[i] - t0) // width)
        j = i
        lo = hi = gap = -1
        while j < n and int((t[j] - t0) // width) == b:
            x = v[j]
            if x == NONE:
                if gap < 0:
                    gap = j
            else:
                if lo < 0 or x < v[lo]:
                    lo = j
                if hi < 0 or x > v[hi]:
                    hi = j
            j += 1
        for k in sorted({i, j - 1, lo, hi, gap} - {-1}):
            out.append((t[k], v[k]))
        i = j
    return out


# =============================================================== SVG charts
W = 1100
ML, MR, MB = 78, 18, 46
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"
MARKER_STYLE = {
    "feed": ("#e6550d", "4 3", "feed disconnect / reconnect"),
    "kill": ("#b10026", "", "kill switch"),
    "state": ("#7a0177", "6 3", "trading state"),
    "operator": ("#2c7fb8", "2 2", "operator"),
    "journal": ("#636363", "1 3", "journal recovered"),
}


@dataclass
class Series:
    name: str
    color: str
    points: list[tuple[int, int]]
    """(t ns, value in the chart's integer unit; NONE is a gap)."""
    kind: str = "step"
    """step, line or scatter."""
    dash: str = ""
    width: float = 1.6
    opacity: float = 1.0
    shape: str = "dot"
    """For scatter: up, down or dot."""
    tips: list[str] | None = None
    """For scatter: one tooltip per point (or None)."""


def nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    if raw <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def y_ticks(lo: float, hi: float, target: int = 5) -> tuple[list[float], int]:
    """Round tick values covering [lo, hi] and the number of decimals that shows them exactly."""
    step = nice_step(hi - lo, target)
    decimals = max(0, -math.floor(math.log10(step)))
    while decimals < 9 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
        decimals += 1
    ticks = []
    k = math.ceil(lo / step - 1e-9)
    while k * step <= hi + step * 1e-9:
        ticks.append(round(k * step, 12))
        k += 1
    return ticks, decimals


TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def time_ticks(t0: int, t1: int, target: int = 10) -> list[tuple[int, str]]:
    span_s = (t1 - t0) / SEC
    step = next((s for s in TIME_STEPS if span_s / s <= target), 86400 * max(1, math.ceil(span_s / 86400 / target)))
    first = math.ceil(t0 / SEC / step) * step
    out = []
    x = first
    while x * SEC <= t1:
        tm = time.gmtime(x)
        if span_s > 86400:
            label = time.strftime("%m-%d %H:%M", tm)
        elif step < 60:
            label = time.strftime("%H:%M:%S", tm)
        else:
            label = time.strftime("%H:%M", tm)
        out.append((x * SEC, label))
        x += step
    return out


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


@dataclass
class Chart:
    title: str
    y_label: str
    series: list[Series]
    scale: float = MICRO
    """Divide values by this to get the axis unit."""
    height: int = 300
    caption: str = ""
    markers: list[Marker] = field(default_factory=list)
    y_min: float | None = None
    y_max: float | None = None
    zero_line: bool = False
    empty_text: str = "no data in this journal"


def render_chart(c: Chart, t0: int, t1: int) -> str:
    """One chart as an inline SVG element (title, legend, axes with units, series, vertical event markers)."""
    if t1 <= t0:
        t1 = t0 + SEC
    legend: list[tuple[str, str, str, str]] = []  # (name, color, dash, shape)
    for s in c.series:
        if any(v != NONE for _, v in s.points):
            legend.append((s.name, s.color, s.dash, s.shape if s.kind == "scatter" else "line"))
    kinds = [k for k in MARKER_STYLE if any(m.kind == k for m in c.markers)]
    for k in kinds:
        color, dash, name = MARKER_STYLE[k]
        legend.append((name, color, dash, "vline"))
    # legend layout (wraps)
    rows: list[list[tuple[float, tuple[str, str, str, str]]]] = [[]]
    x = ML
    for item in legend:
        w = 30 + 6.6 * len(item[0]) + 18
        if x + w > W - MR and rows[-1]:
            rows.append([])
            x = ML
        rows[-1].append((x, item))
        x += w
    mt = 34 + 17 * len(rows) + 8
    h = c.height + mt - 50
    pb = h - MB  # plot bottom
    pw = W - ML - MR
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {W} {h}" width="100%" '
        f'role="img" aria-label="{esc(c.title)}" style="{FONT}">',
        f"<title>{esc(c.title)}</title>",
        f'<rect x="0" y="0" width="{W}" height="{h}" fill="#fff"/>',
        f'<text x="{ML}" y="22" font-size="16" font-weight="600" fill="#222">{esc(c.title)}</text>',
    ]
    for r, row in enumerate(rows):
        ly = 40 + 17 * r
        for lx, (name, color, dash, shape) in row:
            out.append(_legend_swatch(lx, ly, color, dash, shape))
            out.append(f'<text x="{_f(lx + 28)}" y="{ly + 4}" font-size="12" fill="#333">{esc(name)}</text>')
    vals = [v / c.scale for s in c.series for _, v in s.points if v != NONE]
    if not vals:
        out.append(f'<rect x="{ML}" y="{mt}" width="{pw}" height="{pb - mt}" fill="#fafafa" stroke="#ddd"/>')
        out.append(f'<text x="{ML + pw / 2}" y="{(mt + pb) / 2}" font-size="14" fill="#888" '
                   f'text-anchor="middle">{esc(c.empty_text)}</text>')
        out += _x_axis(t0, t1, mt, pb, pw)
        out += _y_label(c.y_label, mt, pb)
        out += _vmarkers(c.markers, t0, t1, mt, pb, pw)
        out.append("</svg>")
        return "\n".join(out)
    lo, hi = min(vals), max(vals)
    if c.zero_line:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if c.y_min is not None:
        lo = max(min(lo, hi), c.y_min) if c.y_min <= lo else c.y_min
    if c.y_max is not None:
        hi = min(max(hi, lo), c.y_max) if c.y_max >= hi else c.y_max
    if hi - lo < 1e-12:
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    else:
        pad = (hi - lo) * 0.06
        lo, hi = lo - pad, hi + pad
    ticks, dec = y_ticks(lo, hi)

    def px(t: int) -> float:
        return ML + (t - t0) / (t1 - t0) * pw

    def py(v: int) -> float:
        return pb - (v / c.scale - lo) / (hi - lo) * (pb - mt)

    out.append(f'<rect x="{ML}" y="{mt}" width="{pw}" height="{pb - mt}" fill="#fcfcfc" stroke="#ccc"/>')
    for tv in ticks:
        y = pb - (tv - lo) / (hi - lo) * (pb - mt)
        out.append(f'<line x1="{ML}" x2="{W - MR}" y1="{_f(y)}" y2="{_f(y)}" stroke="#e8e8e8"/>')
        out.append(f'<text x="{ML - 6}" y="{_f(y + 4)}" font-size="11" fill="#555" text-anchor="end">'
                   f'{tv:,.{dec}f}</text>')
    if c.zero_line and lo < 0 < hi:
        y = pb - (0 - lo) / (hi - lo) * (pb - mt)
        out.append(f'<line x1="{ML}" x2="{W - MR}" y1="{_f(y)}" y2="{_f(y)}" stroke="#999"/>')
    out += _x_axis(t0, t1, mt, pb, pw)
    out += _y_label(c.y_label, mt, pb)
    out.append(f'<svg x="{ML}" y="{mt}" width="{pw}" height="{pb - mt}" viewBox="{ML} {mt} {pw} {pb - mt}" '
               'overflow="hidden">')
    for s in c.series:
        if s.kind == "scatter":
            out.append(_scatter(s, px, py))
        else:
            d = _path(s, px, py, t1)
            if d:
                dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
                op = f' stroke-opacity="{s.opacity}"' if s.opacity < 1 else ""
                out.append(f'<path d="{d}" fill="none" stroke="{s.color}" stroke-width="{s.width}"{dash}{op} '
                           f'stroke-linejoin="round"><title>{esc(s.name)}</title></path>')
    out.append("</svg>")
    out += _vmarkers(c.markers, t0, t1, mt, pb, pw)
    out.append("</svg>")
    return "\n".join(out)


def _legend_swatch(x: float, y: float, color: str, dash: str, shape: str) -> str:
    if shape == "line" or shape == "vline":
        if shape == "vline":
            return (f'<line x1="{_f(x + 11)}" x2="{_f(x + 11)}" y1="{y - 6}" y2="{y + 6}" stroke="{color}" '
                    f'stroke-width="2"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
        return (f'<line x1="{_f(x)}" x2="{_f(x + 22)}" y1="{y}" y2="{y}" stroke="{color}" stroke-width="2.5"'
                + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
    return f'<path d="{_shape(shape, x + 11, y)}" fill="{color}"/>'


def _shape(shape: str, x: float, y: float) -> str:
    if shape == "up":
        return f"M{_f(x)} {_f(y - 6.5)}L{_f(x + 6)} {_f(y + 4)}L{_f(x - 6)} {_f(y + 4)}Z"
    if shape == "down":
        return f"M{_f(x)} {_f(y + 6.5)}L{_f(x + 6)} {_f(y - 4)}L{_f(x - 6)} {_f(y - 4)}Z"
    return f"M{_f(x - 4)} {_f(y)}a4 4 0 1 0 8 0a4 4 0 1 0 -8 0"


def _path(s: Series, px, py, t_end: int) -> str:  # type: ignore[no-untyped-def]
    parts: list[str] = []
    pen = False
    last_y = 0.0
    for t, v in s.points:
        x = px(t)
        if v == NONE:
            if pen and s.kind == "step":
                parts.append(f"H{_f(x)}")
            pen = False
            continue
        y = py(v)
        if not pen:
            parts.append(f"M{_f(x)} {_f(y)}")
            pen = True
        elif s.kind == "step":
            parts.append(f"H{_f(x)}" if y == last_y else f"H{_f(x)}V{_f(y)}")
        else:
            parts.append(f"L{_f(x)} {_f(y)}")
        last_y = y
    if pen and s.kind == "step":
        parts.append(f"H{_f(px(t_end))}")
    return "".join(parts)


def _scatter(s: Series, px, py) -> str:  # type: ignore[no-untyped-def]
    if s.tips is not None:
        items = [f'<path d="{_shape(s.shape, px(t), py(v))}"><title>{esc(tip)}</title></path>'
                 for (t, v), tip in zip(s.points, s.tips, strict=True)]
        return f'<g fill="{s.color}" fill-opacity="0.9" stroke="#222" stroke-width="0.7">{"".join(items)}</g>'
    d = "".join(_shape(s.shape, px(t), py(v)) for t, v in s.points if v != NONE)
    return f'<path d="{d}" fill="{s.color}" fill-opacity="0.9" stroke="#222" stroke-width="0.7"/>'


def _x_axis(t0: int, t1: int, mt: float, pb: float, pw: float) -> list[str]:
    out = []
    for t, label in time_ticks(t0, t1):
        x = ML + (t - t0) / (t1 - t0) * pw
        out.append(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{mt}" y2="{pb}" stroke="#eeeeee"/>')
        out.append(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{pb}" y2="{pb + 4}" stroke="#888"/>')
        out.append(f'<text x="{_f(x)}" y="{pb + 17}" font-size="11" fill="#555" text-anchor="middle">'
                   f"{label}</text>")
    day = time.strftime("%Y-%m-%d", time.gmtime(t0 / SEC))
    last_day = time.strftime("%Y-%m-%d", time.gmtime(t1 / SEC))
    if last_day != day:
        day = f"{day} to {last_day}"
    out.append(f'<text x="{ML + pw / 2}" y="{pb + 36}" font-size="12" fill="#333" text-anchor="middle">'
               f"time (UTC, {day})</text>")
    return out


def _y_label(label: str, mt: float, pb: float) -> list[str]:
    y = (mt + pb) / 2
    return [f'<text x="16" y="{_f(y)}" font-size="12" fill="#333" text-anchor="middle" '
            f'transform="rotate(-90 16 {_f(y)})">{esc(label)}</text>']


def _vmarkers(markers: list[Marker], t0: int, t1: int, mt: float, pb: float, pw: float) -> list[str]:
    out = []
    last_x: dict[str, float] = {}
    labelled = 0
    for m in markers:
        color, dash, _ = MARKER_STYLE.get(m.kind, ("#555", "", m.kind))
        x = ML + (m.t - t0) / (t1 - t0) * pw
        if m.kind in last_x and abs(x - last_x[m.kind]) < 1.0 and m.kind == "feed":
            continue  # one line per pixel is enough
        last_x[m.kind] = x
        da = f' stroke-dasharray="{dash}"' if dash else ""
        width = 2 if m.kind == "kill" else 1.2
        out.append(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{mt}" y2="{pb}" stroke="{color}" stroke-width="{width}"'
                   f'{da}><title>{esc(fmt_time(m.t))}: {esc(m.label)}</title></line>')
        if m.kind in ("kill", "state", "operator") and labelled < 6:
            y = mt + 13 + 13 * (labelled % 3)
            anchor, dx = ("end", -4) if x > ML + pw * 0.7 else ("start", 4)
            out.append(f'<text x="{_f(x + dx)}" y="{_f(y)}" font-size="11" fill="{color}" text-anchor="{anchor}" '
                       f'font-weight="600" paint-order="stroke" stroke="#fff" stroke-width="3">'
                       f"{esc(_clip(m.label, 70))}</text>")
            labelled += 1
    return out


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# =============================================================== formatting
def fmt_time(ns: int) -> str:
    if not ns:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ns // SEC)) + f".{ns % SEC // 10**6:03d} UTC"


def fmt_duration(ns: int) -> str:
    s = max(0, ns) / SEC
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(s), 60)
    h, m = divmod(m, 60)
    d, h = divmod(h, 24)
    if d:
        return f"{d} d {h} h {m:02d} min"
    if h:
        return f"{h} h {m:02d} min {sec:02d} s"
    return f"{m} min {sec:02d} s"


def usd(micro: int) -> str:
    return f"{micro / MICRO:+,.4f} USD"


def shares(micro: int) -> str:
    return f"{micro / MICRO:,.2f}"


# =============================================================== the page
CSS = """
body{margin:0;background:#f4f5f7;color:#222;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}
main{max-width:1140px;margin:0 auto;padding:18px 20px 40px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:2px solid #d8dbe0;padding-bottom:4px}
.sub{color:#666;margin:0 0 12px}
.note{background:#fff4e5;border-left:4px solid #e6550d;padding:8px 12px;margin:8px 0}
.bad{background:#fde8ea;border-left:4px solid #b10026;padding:8px 12px;margin:8px 0;font-weight:600}
.ok{background:#e9f5ec;border-left:4px solid #1a9850;padding:8px 12px;margin:8px 0}
.grid{display:flex;flex-wrap:wrap;gap:16px}.grid>div{flex:1 1 480px}
table{border-collapse:collapse;background:#fff;margin:6px 0 10px;font-size:13px;width:100%}
th,td{border:1px solid #dde0e5;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef0f3;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
table.kv th{width:34%}
figure{margin:10px 0 18px;background:#fff;border:1px solid #dde0e5;padding:6px}
figure svg{display:block}
figcaption{color:#555;font-size:12.5px;padding:4px 6px 2px}
code{font-size:12px;background:#eef0f3;padding:0 3px;border-radius:3px;word-break:break-all}
"""


def render(d: ReportData, *, generated_ns: int | None = None) -> str:
    """The whole report as one HTML document (no external resources)."""
    gen = time.time_ns() if generated_ns is None else generated_ns
    t0, t1 = d.first_ns, max(d.last_ns, d.first_ns + SEC)
    markers = sorted(d.markers, key=lambda m: m.t)
    d.charts_drawn = []
    body: list[str] = []
    title = f"pmm session report: {d.run_id or '(no run id)'}"
    body.append(f"<h1>{esc(title)}</h1>")
    body.append(f'<p class="sub">{esc(d.mode or "?")} session, {fmt_duration(d.last_ns - d.first_ns)}, '
                f"{d.records:,} records. Generated {esc(fmt_time(gen))} from the journal "
                f"<code>{esc(d.path)}</code> (read-only).</p>")
    body += _notes(d)
    body.append('<div class="grid"><div>')
    body.append("<h2>Session</h2>")
    body.append(_kv_table(_session_rows(d)))
    body.append("</div><div>")
    body.append("<h2>Summary</h2>")
    body.append(_kv_table(_summary_rows(d)))
    body.append("</div></div>")

    def chart(c: Chart) -> None:
        c.markers = markers
        d.charts_drawn.append(c.title)
        body.append(f"<figure>{render_chart(c, t0, t1)}")
        if c.caption:
            body.append(f"<figcaption>{c.caption}</figcaption>")
        body.append("</figure>")

    body.append("<h2>Book and our quotes</h2>")
    tokens = [t for t in d.token_order() if t in d.tokens]
    if not tokens:
        body.append('<p class="note">No market data in this journal (no <code>BookChanged</code>).</p>')
    for tok in tokens:
        chart(_book_chart(d, tok, t0, t1))
    body.append("<h2>Inventory and PnL</h2>")
    chart(_inventory_chart(d, tokens, t0, t1))
    chart(_pnl_chart(d, t0, t1))
    body.append(_fills_table(d, tokens))
    body.append("<h2>Orders and risk</h2>")
    chart(_churn_chart(d, t0, t1))
    body.append('<div class="grid"><div>')
    body.append("<h3>Risk rejects by code</h3>")
    body.append(_rejects_table(d))
    body.append("</div><div>")
    body.append("<h3>Kill switch</h3>")
    body.append(_kill_table(d))
    body.append("<h3>Exchange errors</h3>")
    body.append(_exchange_errors_table(d))
    body.append("</div></div>")
    body.append("<h2>Liquidity rewards</h2>")
    chart(_reward_chart(d, t0, t1))
    body.append("<h2>Market data</h2>")
    chart(_feed_chart(d, t0, t1))
    body.append(_parse_table(d))
    body.append("<h2>Events</h2>")
    body.append(_timeline_table(d))
    body.append(f'<p class="sub">pmm report: values from the journal in micro units, shown in dollars and shares; '
                f"charts keep at most {MAX_POINTS:,} points each (first, last, min and max per time bucket). "
                "Times are the session's receipt times (UTC).</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>\n"
            + "\n".join(body) + "\n</main></body></html>\n")


def _notes(d: ReportData) -> list[str]:
    out = []
    if d.torn:
        out.append(f'<p class="bad">Torn tail: {esc(d.torn)}. This is what a crash during a write leaves; '
                   "every record before it is intact.</p>")
    if d.records and d.ended is None:
        out.append('<p class="note">No <code>RunEnded</code> record: the session did not stop cleanly (a crash, '
                   "a kill, a power cut) or it is still running; the report covers what was journaled.</p>")
    elif d.ended is not None:
        out.append(f'<p class="ok">The session ended cleanly: {esc(d.ended)}.</p>')
    if not d.records:
        out.append('<p class="note">The journal holds no records.</p>')
    for r in d.recovered:
        out.append(f'<p class="note">{esc(r)} (an earlier crash).</p>')
    if d.kills:
        t, reason, detail = d.kills[0]
        out.append(f'<p class="bad">Kill switch tripped at {esc(fmt_time(t))}: {esc(reason)}'
                   + (f": {esc(detail)}" if detail else "") + "</p>")
    if d.prior_halt:
        out.append(f'<p class="bad">Started halted: a halt from an earlier run was carried over '
                   f"({esc(d.prior_halt)}).</p>")
    if d.schema_note:
        out.append(f'<p class="note">{esc(d.schema_note)}</p>')
    if d.guard_violations:
        out.append(f'<p class="bad">{len(d.guard_violations)} guard violation(s): a sink was handed something it '
                   "refused (see Events).</p>")
    return out


def _kv_table(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def _session_rows(d: ReportData) -> list[tuple[str, str]]:
    mode = esc(d.mode or "?")
    if d.mode in ("paper", "prove") and d.fills_mode:
        mode += esc(f" (fills {d.fills_mode})")
    if not d.quoting:
        mode += " (quoting off)"
    markets = "<br>".join(
        f"m{i}: <code>{esc(short(c, 10, 6))}</code> YES <code>{esc(short(y))}</code> NO <code>{esc(short(n))}</code>"
        for i, (c, y, n) in enumerate(d.markets, 1)) or "-"
    end = fmt_time(d.last_ns) + ("" if d.ended is not None else " (last record)")
    return [
        ("run id", f"<code>{esc(d.run_id or '-')}</code>"),
        ("mode", mode),
        ("seed", esc(d.seed)),
        ("config hash", f"<code>{esc(d.config_hash or '-')}</code>"),
        ("version", esc(d.version or "-") + (f" (git {esc(d.git_sha[:12])})" if d.git_sha else "")),
        ("start", esc(fmt_time(d.first_ns))),
        ("end", esc(end)),
        ("duration", esc(fmt_duration(d.last_ns - d.first_ns))),
        ("records", f"{d.records:,}" + (" (torn tail cut)" if d.torn else "")),
        ("markets", markets),
        ("journal", f"<code>{esc(d.path)}</code>"),
    ]


def _summary_rows(d: ReportData) -> list[tuple[str, str]]:
    st = d.stats
    mtm = sum(st.tokens[t].mtm for t in st.tokens)
    realized = sum(st.tokens[t].realized for t in st.tokens)
    churn = st.churn
    kill = esc(st.halted) if st.halted else "not tripped"
    return [
        ("trading state at end", esc(st.trading_state) + (f" (kill switch: {kill})" if st.halted else "")),
        ("feed", f"{st.frames:,} frames, {st.reconnects} reconnects, {st.parse_errors} parse errors, "
                 f"{st.rest_books} REST resyncs"),
        ("quoting", f"{st.desired_quotes:,} desired-quote updates, {st.intents:,} order intents"),
        ("risk rejects", f"{st.rejects:,}" + (f" ({esc(_codes(st.reject_codes))})" if st.rejects else "")),
        ("fills", f"{st.fills:,} ({shares(st.filled_size)} shares)"),
        ("open orders at end", f"{len(st.orders)}"),
        ("position at end", f"{st.position_shares:+,.2f} shares (sum over tokens)"),
        ("PnL at end", f"{usd(mtm)} mark-to-market, {usd(realized)} realized"),
        ("churn (last minute reported)", f"{churn.places} places, {churn.cancels} cancels, {churn.replaces} replaces,"
                                         f" mean order life {churn.mean_life_ns / SEC:.1f} s" if churn else "-"),
        ("exchange errors", f"{st.exchange_errors}"),
        ("kill switch", kill),
    ]


def _codes(codes: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(codes.items(), key=lambda kv: (-kv[1], kv[0])))


def _budget(n_series: int) -> int:
    return max(50, MAX_POINTS // max(1, n_series))


def _book_chart(d: ReportData, tok: str, t0: int, t1: int) -> Chart:
    v = d.tokens[tok]
    specs = [
        ("best bid", "#1a9850", v.bid, "", 1.5, 1.0),
        ("best ask", "#d73027", v.ask, "", 1.5, 1.0),
        ("mid", "#888888", v.mid, "3 3", 1.2, 1.0),
        ("our desired bid", "#4393c3", v.q_bid, "7 3", 1.6, 1.0),
        ("our desired ask", "#f4a582", v.q_ask, "7 3", 1.6, 1.0),
        ("our resting bid (best)", "#08519c", v.r_bid, "", 4.0, 0.45),
        ("our resting ask (best)", "#b35806", v.r_ask, "", 4.0, 0.45),
    ]
    specs = [s for s in specs if s[2].has_values]
    n_fill_series = (1 if len(v.buys) else 0) + (1 if len(v.sells) else 0)
    budget = _budget(len(specs) + n_fill_series)
    series = [Series(name, color, downsample(st.t, st.v, budget, t0, t1), dash=dash, width=w, opacity=op)
              for name, color, st, dash, w, op in specs]
    for name, color, pts, shape in (("our fills: buy", "#2166ac", v.buys, "up"),
                                    ("our fills: sell", "#e08214", v.sells, "down")):
        if not len(pts):
            continue
        if len(pts) <= min(budget, 600):
            tips = [f"{fmt_time(t)}: {name[11:].upper()} {s / MICRO:g} shares @ {p / MICRO:g}"
                    for t, p, s in zip(pts.t, pts.v, pts.size, strict=True)]
            series.append(Series(name, color, list(zip(pts.t, pts.v, strict=True)), kind="scatter", shape=shape,
                                 tips=tips))
        else:
            series.append(Series(name + " (downsampled)", color, downsample(pts.t, pts.v, budget, t0, t1),
                                 kind="scatter", shape=shape))
    label = d.token_label(tok)
    return Chart(
        title=f"{label}: book and our quotes (token {short(tok, 8, 6)})",
        y_label="price (USD per share)", series=series, y_min=0.0, y_max=1.0, height=360,
        caption=("Best bid and ask and their mid from the book (<code>BookChanged</code>; gaps: book invalid or a "
                 "side empty); dashed: the quoter's desired best bid/ask (<code>DesiredQuotes</code>); thick: our "
                 "best resting order on each side (<code>OrderIntent</code> + <code>OrderState</code> live); "
                 "triangles: our fills (<code>Fill</code>, hover for size and price). Vertical lines: feed "
                 "reconnects, kill switch, trading state, operator actions."),
    )


PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")


def _inventory_chart(d: ReportData, tokens: list[str], t0: int, t1: int) -> Chart:
    with_pos = [t for t in tokens if d.tokens[t].position.has_values] + \
        [t for t in d.tokens if t not in tokens and d.tokens[t].position.has_values]
    budget = _budget(len(with_pos))
    series = [Series(d.token_label(t), PALETTE[i % len(PALETTE)],
                     _from_zero(downsample(d.tokens[t].position.t, d.tokens[t].position.v, budget, t0, t1), t0))
              for i, t in enumerate(with_pos)]
    return Chart(title="Inventory: position per token", y_label="position (shares)", series=series, zero_line=True,
                 empty_text=_no_fills_text(d),
                 caption="Our position in each token (<code>Position.position</code>), after every fill. A YES "
                         "position and a NO position offset each other (a YES+NO pair is worth one dollar).")


def _from_zero(points: list[tuple[int, int]], t0: int) -> list[tuple[int, int]]:
    """Positions and PnL are 0 until the first ``Position``: draw that from the start."""
    return [(t0, 0), *points] if points and points[0][0] > t0 else points


def _no_fills_text(d: ReportData) -> str:
    if d.mode == "shadow" or not d.quoting:
        return "no positions: shadow quoting sends no orders"
    if d.fills_mode == "none":
        return "no positions: paper trading without fills (nothing ever fills)"
    return "no positions: nothing was filled"


def _pnl_chart(d: ReportData, t0: int, t1: int) -> Chart:
    budget = _budget(2)
    series = []
    if d.total_mtm.has_values:
        series.append(Series("PnL, mark-to-market (all tokens)", "#08519c",
                             _from_zero(downsample(d.total_mtm.t, d.total_mtm.v, budget, t0, t1), t0), width=2.0))
    if d.total_realized.has_values:
        series.append(Series("realized PnL (all tokens)", "#31a354",
                             _from_zero(downsample(d.total_realized.t, d.total_realized.v, budget, t0, t1), t0),
                             dash="6 3"))
    kind = {"sim": "simulated fills", "live": "live fills", "none": "no fills"}.get(d.fills_mode, d.fills_mode)
    return Chart(title=f"PnL ({kind})", y_label="PnL (USD)", series=series, zero_line=True,
                 empty_text=_no_fills_text(d),
                 caption="Sum over tokens of <code>Position.mtm</code> (cash plus position valued at the mid: the "
                         "PnL if everything were closed at the mark) and of <code>Position.realized</code> "
                         "(average-cost realized PnL). Updated on fills and on mark changes while a position is "
                         "open.")


def _churn_chart(d: ReportData, t0: int, t1: int) -> Chart:
    step = _bucket_s(t0, t1, 300)
    series = []
    if len(d.places_at) or len(d.cancels_at):
        series.append(Series("places in the trailing minute (counted)", "#1f77b4",
                             _trailing(d.places_at, t0, t1, step)))
        series.append(Series("cancels in the trailing minute (counted)", "#d62728",
                             _trailing(d.cancels_at, t0, t1, step)))
    for name, color, attr, shape in (("Churn: places", "#1f77b4", "places", "up"),
                                     ("Churn: cancels", "#d62728", "cancels", "down"),
                                     ("Churn: replaces", "#2ca02c", "replaces", "dot")):
        pts = [(t, getattr(ev, attr)) for t, ev in d.churn]
        if pts:
            tips = [f"{fmt_time(t)}: last minute {ev.places} places, {ev.cancels} cancels, {ev.replaces} replaces, "
                    f"mean order life {ev.mean_life_ns / SEC:.1f} s" for t, ev in d.churn]
            if len(pts) > 600:
                pts, tips = downsample([p[0] for p in pts], [p[1] for p in pts], 600, t0, t1), None
            series.append(Series(name, color, pts, kind="scatter", shape=shape, tips=tips))
    return Chart(title="Order churn", y_label="orders per minute", series=series, scale=1, y_min=0.0,
                 empty_text="no orders (shadow mode or nothing to quote)",
                 caption="Lines: order places (<code>OrderIntent</code>) and cancels (<code>CancelIntent</code>) "
                         "in the trailing minute, counted from the journal. Markers: the order manager's own "
                         "<code>Churn</code> reports (places, cancels and replaces over the last minute; at most "
                         "one a minute, only when they change; hover for the mean order life).")


def _bucket_s(t0: int, t1: int, max_buckets: int = 150, min_s: int = 1) -> int:
    span = (t1 - t0) / SEC
    return next((b for b in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
                 if b >= min_s and span / b <= max_buckets), 3600)


def _trailing(ts: Sequence[int], t0: int, t1: int, step_s: int, window_s: int = 60) -> list[tuple[int, int]]:
    """How many of ``ts`` (sorted) fall in the ``window_s`` before each step, as a step series."""
    out = []
    lo = hi = 0
    n = len(ts)
    te = t0
    while True:
        while hi < n and ts[hi] <= te:
            hi += 1
        while lo < hi and ts[lo] <= te - window_s * SEC:
            lo += 1
        out.append((te, hi - lo))
        if te >= t1:
            break
        te = min(t1, te + step_s * SEC)
    return out


def _rate(ts: Sequence[int], t0: int, t1: int, bucket_s: int) -> list[tuple[int, int]]:
    """Counts per bucket as a per-minute rate step series (one point per bucket, zeros included)."""
    n = int((t1 - t0) // (bucket_s * SEC)) + 1
    counts = [0] * n
    for t in ts:
        counts[min(n - 1, max(0, int((t - t0) // (bucket_s * SEC))))] += 1
    scale = 60 / bucket_s
    return [(t0 + i * bucket_s * SEC, round(c * scale)) for i, c in enumerate(counts)]


def _reward_chart(d: ReportData, t0: int, t1: int) -> Chart:
    conds = [c for c, _, _ in d.markets]
    conds += sorted(c for c in set(d.reward) | set(d.resting_score) if c not in conds)
    series = []
    n = sum(1 for c in conds if c in d.reward) + sum(1 for c in conds if c in d.resting_score)
    budget = _budget(n)
    for i, c in enumerate(conds):
        color = PALETTE[i % len(PALETTE)]
        if c in d.reward:
            st = d.reward[c]
            series.append(Series(f"{d.market_label(c)} estimate of desired quotes", color,
                                 downsample(st.t, st.v, budget, t0, t1), dash="6 3"))
        if c in d.resting_score:
            st = d.resting_score[c]
            series.append(Series(f"{d.market_label(c)} resting orders (sim exchange)", color,
                                 downsample(st.t, st.v, budget, t0, t1), width=2.2))
    return Chart(title="Liquidity-reward score estimate", y_label="score (shares)",
                 series=series, y_min=0.0,
                 empty_text="no reward estimates (the markets pay no rewards, or nothing was quoted)",
                 caption="Score S = ((v - s) / v)^2 x size per order (v: the market's max reward spread, s: the "
                         "order's distance from the mid), in shares. "
                         "Dashed: the quoter's estimate for its desired quotes (<code>RewardEstimate</code>). "
                         "Solid: the simulated exchange's score of what actually rests, Q_min of both sides "
                         "(<code>RestingScore</code>, paper with simulated fills only). An estimate, not what "
                         "Polymarket pays.")


def _feed_chart(d: ReportData, t0: int, t1: int) -> Chart:
    bucket = _bucket_s(t0, t1, 150, 5)
    series = []
    if len(d.frames_at):
        series.append(Series("frames / min", "#3182bd", _rate(d.frames_at, t0, t1, bucket)))
    if len(d.parse_errors_at):
        series.append(Series("parse errors / min", "#de2d26", _rate(d.parse_errors_at, t0, t1, bucket), width=2))
    return Chart(title="Market data", y_label="frames per minute", series=series, scale=1, y_min=0.0, height=240,
                 empty_text="no market-data frames",
                 caption=f"Raw market-channel frames received (<code>FeedFrame</code>) and frames that could not be "
                         f"parsed (<code>ParseError</code>), counted per {bucket} s and scaled to per minute. A "
                         "drop to zero is a silent or lost connection; vertical lines mark disconnects and "
                         "reconnects (<code>FeedStatus</code>).")


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: Sequence[int] = ()) -> str:
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    trs = []
    for row in rows:
        tds = "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        trs.append(f"<tr>{tds}</tr>")
    return f"<table><tr>{th}</tr>{''.join(trs)}</table>"


def _rejects_table(d: ReportData) -> str:
    if not d.rejects:
        return "<p>No risk rejects.</p>"
    rows = [(f"<code>{esc(code)}</code>", f"{n:,}", esc(_clip(d.reject_detail.get(code, ""), 140)))
            for code, n in sorted(d.rejects.items(), key=lambda kv: (-kv[1], kv[0]))]
    rows.append(("<b>total</b>", f"<b>{sum(d.rejects.values()):,}</b>", ""))
    return _table(("code", "count", "first detail"), rows, numeric=(1,))


def _kill_table(d: ReportData) -> str:
    if not d.kills:
        return '<p class="ok">Not tripped.</p>'
    rows = [(esc(fmt_time(t)), f"<b>{esc(reason)}</b>", esc(detail)) for t, reason, detail in d.kills]
    return _table(("time", "reason", "detail"), rows)


def _exchange_errors_table(d: ReportData) -> str:
    if not d.exchange_errors:
        return "<p>None.</p>"
    rows = [(esc(op), esc(status or "-"), esc(msg or "-"), f"{n:,}")
            for (op, status, msg), n in d.exchange_errors.most_common(20)]
    return _table(("op", "status", "message", "count"), rows, numeric=(3,))


def _fills_table(d: ReportData, tokens: list[str]) -> str:
    rows = []
    for tok in tokens:
        v = d.tokens[tok]
        if not (len(v.buys) or len(v.sells) or v.failed_fills):
            continue
        avg_b = f"{v.buy_cash / v.bought:.4f}" if v.bought else "-"
        avg_s = f"{v.sell_cash / v.sold:.4f}" if v.sold else "-"
        pos = v.position.v[-1] if len(v.position) else 0
        rows.append((esc(d.token_label(tok)), f"{len(v.buys):,}", shares(v.bought), avg_b, f"{len(v.sells):,}",
                     shares(v.sold), avg_s, shares(pos) if pos != NONE else "-", f"{v.failed_fills}"))
    if not rows:
        return f"<p>No fills ({esc(_no_fills_text(d).removeprefix('no positions: '))}).</p>"
    return "<h3>Fills</h3>" + _table(
        ("token", "buys", "bought (shares)", "avg buy price", "sells", "sold (shares)", "avg sell price",
         "position at end (shares)", "failed"), rows, numeric=(1, 2, 3, 4, 5, 6, 7, 8))


def _parse_table(d: ReportData) -> str:
    n = len(d.parse_errors_at)
    if not n:
        return f"<p>Parse errors: 0. Resync requests: {d.resyncs}.</p>"
    rows = [(esc(reason), f"{c:,}") for reason, c in d.parse_reasons.most_common(15)]
    more = len(d.parse_reasons) - 15
    tail = f"<p>... and {more} other reasons.</p>" if more > 0 else ""
    return (f"<h3>Parse errors: {n:,}</h3>" + _table(("reason", "count"), rows, numeric=(1,)) + tail
            + f"<p>Resync requests: {d.resyncs}.</p>")


def _timeline_table(d: ReportData) -> str:
    rows = d.timeline
    if not rows:
        return "<p>No session events.</p>"
    shown = rows if len(rows) <= MAX_TABLE_ROWS else rows[: MAX_TABLE_ROWS // 2] + rows[-MAX_TABLE_ROWS // 2:]
    cut = len(rows) - len(shown)
    body = []
    for i, (t, kind, text) in enumerate(shown):
        if cut and i == MAX_TABLE_ROWS // 2:
            body.append(("", f"<i>... {cut:,} more events ...</i>", ""))
        cls = "<b>" if kind in ("kill switch", "trading state", "run ended", "guard violation") else ""
        end = "</b>" if cls else ""
        body.append((esc(fmt_time(t)), esc(kind), f"{cls}{esc(_clip(text, 200))}{end}"))
    return ("<p>Session start and end, feed connection changes, kill switch, trading state, operator actions, "
            "REST resyncs and journal recovery, in order.</p>" + _table(("time", "event", "detail"), body))
