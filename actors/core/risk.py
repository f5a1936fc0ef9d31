"""The risk gate: every order intent passes every pre-trade check or becomes a ``RiskReject``; the kill switch.

What it decides
- Each ``OrderIntent`` (journaled at seq s) becomes exactly one ``RiskApproved(intent_seq=s)`` or one
  ``RiskReject(intent_seq=s, code=...)``. Executors act on nothing else (``actors.sink.gate``).
- Each ``CancelIntent`` for an order the gate approved is approved, in every trading state. Cancels reduce risk and
  are never refused (see "Cancel throttling" below). A cancel naming an order the gate never approved is refused
  with ``unknown_order`` (there is nothing it could cancel).

Trading states (``TradingState`` is emitted on every change, and once at start)
- ACTIVE: every check below applies.
- REDUCING: additionally, only orders that reduce a position pass (a SELL of at most what is held net of open
  sells, or a BUY covering a short). Entered on ``ReduceOnly`` (operator) or when PnL falls below
  ``-reduce_loss``. Monotone within a run: ACTIVE -> REDUCING -> HALTED, never back.
- HALTED: latched. Every place is refused with ``halted``; cancels pass. Entered through the kill switch, which
  emits, in this order and exactly once per run: ``KillSwitch(reason)``, ``TradingState(HALTED)``,
  ``CancelAll(reason)``. When the trigger is a ``KillSwitch`` from elsewhere (an edge, the sequencer's
  ``internal_error``), the gate emits only the ``TradingState`` and the ``CancelAll``. ``RunStarted.prior_halt``
  halts at once (reason ``prior_halt``), so a halt survives a restart. Nothing un-halts within a run.

Kill-switch triggers (checked on every event the gate sees, before applying it, from envelope time only)
- ``feed_stale``: now - (last ``FeedFrame`` of the current connection, or ``FeedStatus(connected)``, or
  ``RunStarted`` before any) > ``feed_stale_ns``. In a run that journals ``StartingInventory`` (live) before any
  feed event, the clock is paused from there until the first ``FeedStatus`` or ``FeedFrame`` (the market feed
  starting), which restarts it: the live session starts the feed only once the venue side is up (heartbeat, user
  channel), and that wait must not count as a silent feed. Nothing can be placed meanwhile (no book, no reference
  price). Without the event (paper, older journals) the clock runs from ``RunStarted`` as before.
- ``book_invalid``: a configured market's token has had an invalid book (``valid=False`` or crossed) for longer
  than ``book_invalid_ns``. Counted from its first invalid ``BookChanged``.
- ``error_rate``: ``error_burst`` failed ``ExchangeReply`` (``ok=False``) within ``error_window_ns``. A cancel that
  lost a race (``lost_cancel_race``: the venue says the order is already matched, or not found / already canceled)
  is not counted; every other failure is, unknown outcomes included.
- ``position_limit``: an actual position (the gate's own sum of fills and starting inventory, or a ``Position`` from
  the portfolio) beyond ``max_position``; also a starting inventory already beyond it (see below).
- ``loss_limit`` / ``daily_loss``: PnL below ``-max_loss``, or PnL since the start of the run's current UTC day
  (event time) below ``-daily_loss``. PnL is the more pessimistic of the portfolio's (sum over tokens of the latest
  ``Position.mtm``, which the portfolio defines as the token's whole PnL, ``cash + position x mark``: realized PnL
  is already in it, adding ``realized`` would count it twice) and the gate's own (cash of its fills + position at
  the last valid mid; an unmarked long is worth 0, an unmarked short costs 1), so neither a portfolio bug nor a
  misunderstanding of its fields can fail open.
- ``unknown_order``: a fill, or a live/matched place reply, for a client id the gate never approved, or a fill
  whose token or side is not its order's: our view of what is at the venue is wrong.
- ``operator_stop``: an ``OperatorStop`` input. ``prior_halt``: see above. Any ``KillSwitch`` input: its reason.

Place checks, in order (the first failure is the reject code; see ``events.risk.RejectCode``)
not_started (no ``RunStarted`` yet: the gate is not armed), halted, duplicate (reused client id), not_allowlisted
(token not one of ``params.markets``, or under another condition id), not_post_only (the book can move between this
check and the venue: only post-only orders are sure never to take), reducing_only, size_limit (below the
market's minimum, or above ``max_order_size``), notional_limit (price x size / 1e6 > ``max_order_notional``),
feed_down (the market channel reported a disconnect and no frame or connect since), no_reference_price (the token's
last ``BookChanged`` is invalid, one-sided or crossed: fail closed), off_tick (price not a multiple of that book's
tick), price_range (outside [tick, 1 - tick]), price_band (a buy above mid + band or a sell below mid - band),
would_cross (post-only: buy >= best ask, sell <= best bid), unknown_order_pending (an order on this token is in an
unknown state), fill_burst (``fill_burst`` fills on this token and side within ``fill_window_ns``), duplicate (same
token, side, price and size as an open order not being cancelled), open_orders_limit, position_limit (buys),
insufficient_position (sells: only what is surely held can be sold, net of open sells; the venue would refuse the
rest for balance, and a short has no worst case short of 1 dollar a share), total_notional_limit (buys only: a
sell that passed ``insufficient_position`` adds no exposure; journals recorded before this rule never had a total
above the cap, so for them it decides the same), throttled (order bucket, or cancel budget exhausted).

Starting inventory (``StartingInventory``, live only, once, before any fill): the outcome tokens the wallet already
holds count as position from then on, exactly like filled ones: for ``max_position`` (buys), reduce-only,
``insufficient_position`` (they can be sold), total exposure and the loss limits. Their cost is unknown: until the
token's first valid two-sided book they count 1 dollar a share toward the total (the most a share can cost) and 0
toward PnL (an unmarked long is worth 0, no cash was paid); at that first mark they are entered as bought at it
(cost and cash = shares x the mid rounded up), so the run's PnL starts at 0, never at a windfall, and moves with
the mark from there. A token held beyond ``max_position`` at start halts at once (``position_limit``, "starting
position ... held before this run"): only the operator can decide what to do with inventory that large (sell it
by hand or raise the cap); the in-run rule halts for the same position, so the start is not more lenient. A
starting inventory over ``max_total_notional`` is not a halt: buys are refused until the exposure is back under
the cap, and sells of held shares pass (a sell within what is surely held adds no exposure, so the total is only
checked for buys). ``ok=False`` (the session refuses to start): the gate halts (``preflight_failed``).

Exposure is worst case: every open order and every in-flight one (approved, with no terminal answer yet; including
orders with a pending cancel, and orders in an unknown state) is assumed to fill completely, and every fill that is
MATCHED but not yet CONFIRMED is assumed to fail if that is worse (a ghost fill must not free capacity).
- Per token: ``position + open buys + unconfirmed sells + new buy <= max_position``; a sell needs
  ``open sells + new sell <= position - unconfirmed buys`` (surely held).
- Total (micro-dollars): for every token, the cost of its long position (average cost; a sale removes cost
  pro rata, rounded so the remaining cost is never understated) + the cost unconfirmed sales removed + price x
  remaining of its open buys + 1 dollar per share that open sells could sell beyond what is surely held (only after
  an unexpected fill). Must stay <= ``max_total_notional``.
- Open orders: ``open + in flight + 1 <= max_open_orders``.
With these rules no fill, reply or reversal can raise worst-case exposure: only an approval can, and it is checked
(``tests/core/test_guardrails_stateful.py`` checks it after every step).

Cancel throttling
Cancels are never refused, in any state. A refused cancel leaves a stale quote resting, which is exactly the risk
a gate exists to remove, and a kill switch that cannot cancel is worse than useless. Churn is still bounded: every
cancel consumes a token from the cancel bucket (``cancels_per_sec``, ``cancel_burst``) when one is there, and while
that bucket is empty new *places* are refused (``throttled``, "cancel budget"). A replace is a cancel plus a place,
so a replace storm degrades into plain cancels (risk-reducing) instead of into refused cancels. Cancels cannot run
away on their own: each cancels an order that was placed through the order bucket, so over any interval they are
bounded by the places plus the open orders at its start.

Order states followed here: a place reply ``live``/``matched``/``delayed`` (or any other ok status) means
acknowledged; ``rejected``/``unmatched`` is terminal (exposure released); ``unknown``, or ``ok=False`` with any other
status, means the order may exist (unknown: exposure kept, token blocked). A cancel reply releases exposure only on
``ok`` with status ``cancelled``; a failed cancel means the order is still there. No reply within the order
manager's ``ack_timeout_ns`` (to a place or to a cancel) makes the order unknown. Any later reply or fill resolves
it. Fills are counted once per (trade id, client id): MATCHED or CONFIRMED, whichever comes first; FAILED
reverses an earlier count and gives the size back to the order if it is still open.

Nothing here reads a clock: time is ``env.ts_ns``. No floats: prices x sizes are compared in micro-dollar x
micro-share units.

Speed only (same output): events are dispatched on their type through a table built once per type, and the
time-driven triggers (day rollover, ack timeouts, ``feed_stale``, ``book_invalid``) run once per ``ts_ns``
instead of once per record. Every record of a cascade carries its input's ``ts_ns``, and within one ``ts_ns`` a
second run could only trip where the first did not if something moved a deadline earlier, which nothing does:
new orders, cancels and invalid books are stamped ``now`` (0 ns elapsed), and the feed time only moves forward.
The one exception is an order whose unknown state is cleared by a reply or a fill while its cancel is overdue (the
next run marks it unknown again): clearing ``unknown`` makes the next record at the same ``ts_ns`` run them again.
Within a run, the open orders are scanned for ack timeouts only once the earliest pending timeout (``_deadline``)
has passed; the place checks make one pass over the open orders instead of one per question; the gate's own PnL
is recomputed only after a fill or a new mark.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Literal

from actors.core.base import InvariantError
from actors.core.buckets import TokenBucket
from events.base import MICRO, Event
from events.codec import Envelope
from events.control import KillSwitch, OperatorStop, RunStarted, Tick, TradingState
from events.live import StartingInventory
from events.market import BookChanged, FeedFrame, FeedStatus
from events.orders import (
    CancelAll,
    CancelIntent,
    ExchangeReply,
    Fill,
    OrderIntent,
    OrderState,
    Position,
    RiskApproved,
    RiskReject,
)
from events.params import CoreParams
from events.risk import ReduceOnly
from events.units import decimal, duration, price, shares, usd

DAY_NS = 86_400 * 10**9
MEMORY = 100_000
"""How many client ids / trade ids the gate remembers (FIFO). Forgetting one fails closed: a fill for a forgotten
order trips ``unknown_order``; a cancel of a forgotten order is refused (it was terminal long ago)."""

State = Literal["ACTIVE", "REDUCING", "HALTED"]
_PLACE_TERMINAL = ("rejected", "unmatched")
"""Place-reply statuses that say the order does not rest (exposure released)."""
NOT_CANCELED = "not_canceled"
"""``ExchangeReply.status`` of a cancel the venue answered by listing the order under ``not_canceled`` (its reason
in ``message``), as the live executor reports it. Journals recorded before it have status "" there."""
CANCEL_RACE_REASONS = ("already matched", "already filled", "canceled or matched", "cancelled or matched",
                       "not found", "already canceled", "already cancelled")
"""The venue's reasons (lower case) for not cancelling an order that is no longer open: it was matched before the
cancel arrived, or an earlier cancel (ours, the heartbeat expiry, a tick-size change) got there first. The sandbox
says "order already matched" and "Order not found or already canceled" (``sandbox/engine.py``); Polymarket says
"already canceled or matched" (docs/polymarket-protocol.md, section 3.3)."""


def lost_cancel_race(ev: ExchangeReply) -> bool:
    """A failed cancel that lost a race (see ``CANCEL_RACE_REASONS``): a normal event for a market maker, not an
    exchange error. Only a reply the venue answered (``status == NOT_CANCELED``) with one of those reasons: a cancel
    that timed out, got an HTTP error or an unknown reason is not one."""
    if ev.op != "cancel" or ev.ok or ev.status != NOT_CANCELED:
        return False
    reason = ev.message.lower()
    return any(r in reason for r in CANCEL_RACE_REASONS)


class _Order:
    """An approved place with no terminal answer yet (open or in flight). Counts fully toward exposure."""

    __slots__ = (
        "acked",
        "approved_ns",
        "cancel_ns",
        "cancelling",
        "client_id",
        "price",
        "remaining",
        "side",
        "size",
        "token_id",
        "unknown",
    )

    def __init__(self, ev: OrderIntent, now: int) -> None:
        self.client_id = ev.client_id
        self.token_id = ev.token_id
        self.side = ev.side
        self.price = ev.price
        self.size = ev.size
        self.remaining = ev.size
        self.approved_ns = now
        self.acked = False
        self.cancelling = False
        self.cancel_ns = 0
        self.unknown = False


class _Trade:
    """A counted fill: what it changed (so a FAILED reverts it exactly) and whether it is CONFIRMED."""

    __slots__ = ("confirmed", "dcash", "dcost", "dpos", "side", "size")

    def __init__(self, side: str, size: int, dpos: int, dcost: int, dcash: int, confirmed: bool) -> None:
        self.side = side
        self.size = size
        self.dpos = dpos
        self.dcost = dcost
        self.dcash = dcash
        self.confirmed = confirmed


_NO_UNCONF = (0, 0, 0)
_NO_RESTING = (0, 0, 0)


class _Book:
    __slots__ = ("ask", "bid", "tick", "valid")

    def __init__(self, ev: BookChanged) -> None:
        self.valid = ev.valid
        self.bid = ev.best_bid
        self.ask = ev.best_ask
        self.tick = ev.tick

    def reference(self) -> bool:
        """A usable reference: valid, both sides present, not crossed, a tick."""
        return self.valid and 0 < self.bid < self.ask and self.tick > 0

    def broken(self) -> bool:
        """Counts toward the book-invalid kill switch: flagged invalid, or crossed."""
        return (not self.valid) or (self.bid > 0 and self.ask > 0 and self.bid >= self.ask)


def _remember(store: OrderedDict, key: object, value: object = None) -> None:
    store[key] = value
    if len(store) > MEMORY:
        store.popitem(last=False)


class RiskGate:
    """Pure core actor ``risk``. See the module docstring for every rule."""

    name = "risk"
    consumes = (
        RunStarted,
        Tick,
        FeedFrame,
        FeedStatus,
        BookChanged,
        OrderIntent,
        CancelIntent,
        OrderState,
        ExchangeReply,
        Fill,
        Position,
        OperatorStop,
        KillSwitch,
        ReduceOnly,
        StartingInventory,
    )

    def __init__(self, params: CoreParams) -> None:
        self.params = params
        self._p = params.risk
        self._ack_timeout = params.orders.ack_timeout_ns
        self._market_of: dict[str, str] = {}
        self._min_size: dict[str, int] = {}
        for m in params.markets:
            for token in (m.yes_token, m.no_token):
                self._market_of[token] = m.condition_id
                self._min_size[token] = max(1, m.min_order_size)
        self.state: State = "ACTIVE"
        self.halt_reason = ""
        self.started = False
        self._last_ns = 0
        # feed
        self._feed_ns = 0
        self._conn = 0
        self._feed_up = True
        self._feed_wait = False
        """``StartingInventory`` came before any feed event: the stale-feed clock waits for the feed to start."""
        self._inventory = False
        self._entry: dict[str, int] = {}
        """Starting inventory not yet entered at a mark: token -> shares (see the module docstring)."""
        # books
        self._books: dict[str, _Book] = {}
        self._broken_since: dict[str, int] = {}
        # orders
        self._open: dict[str, _Order] = {}
        self._seen_ids: OrderedDict[str, None] = OrderedDict()
        self._approved_ids: OrderedDict[str, None] = OrderedDict()
        self._orders_bucket = TokenBucket(self._p.orders_per_sec, self._p.order_burst)
        self._cancels_bucket = TokenBucket(self._p.cancels_per_sec, self._p.cancel_burst)
        self._errors: deque[int] = deque()
        self._fill_times: dict[tuple[str, str], deque[int]] = {}
        # positions (own, from fills) and PnL
        self._pos: dict[str, int] = {}
        self._cost: dict[str, int] = {}
        """Cost of the long position, in micro-dollars x micro-shares."""
        self._cash: dict[str, int] = {}
        """Cash flow of the fills, in micro-dollars x micro-shares (buys negative)."""
        self._trades: OrderedDict[tuple[str, str], _Trade | None] = OrderedDict()
        """(trade id, client id) -> what the counted fill changed, or None once it failed."""
        self._unconf: dict[str, list[int]] = {}
        """Per token, fills counted but not CONFIRMED yet: [buy size, sell size, cost the sells removed]."""
        self._marks: dict[str, int] = {}
        """Twice the last valid mid of each token (kept while its book is invalid)."""
        self._own: int | None = None
        """``_own_pnl()`` as last computed; None once ``_pos``, ``_cash`` or ``_marks`` changed since."""
        self._portfolio_pnl: dict[str, int] = {}
        self._day = 0
        self._day_base = 0
        self._time_ns = -1
        """``ts_ns`` at which the time-driven triggers last ran (see the module docstring)."""
        self._time_dirty = False
        """An order's unknown state was cleared since they ran: run them again even at the same ``ts_ns``."""
        self._deadline: int | None = None
        """No open order can time out (become unknown) at or before this time: a lower bound of every pending
        ``approved_ns + ack timeout`` (unacked) and ``cancel_ns + ack timeout`` (cancelling) of the orders that are
        not unknown; None: there is none. Lowered when an order is approved or a cancel starts, reset to -1 (look at
        every order) when an order's unknown state is cleared."""

    # ------------------------------------------------------------------ read-only views (tests, proofs, status)
    @property
    def halted(self) -> bool:
        return self.state == "HALTED"

    def position(self, token_id: str) -> int:
        """The gate's position in ``token_id``: the sum of counted fills (buys +, sells -), micro-shares."""
        return self._pos.get(token_id, 0)

    def open_orders(self) -> list[tuple[str, str, str, int, int, bool, bool]]:
        """(client_id, token, side, price, remaining, cancelling, unknown) of every open or in-flight order."""
        return [(o.client_id, o.token_id, o.side, o.price, o.remaining, o.cancelling, o.unknown) for o in self._open.values()]

    def worst_case(self, token_id: str) -> tuple[int, int]:
        """(long, short) worst-case position of a token: every open order fills, and every unconfirmed fill that
        helps fails (position + buys + unconfirmed sells, position - sells - unconfirmed buys)."""
        buys, sells, _ = self._resting(token_id)
        ub, us, _ = self._unconf.get(token_id, _NO_UNCONF)
        pos = self.position(token_id)
        return pos + buys + us, pos - sells - ub

    def total_exposure(self) -> int:
        """Worst-case total notional, in micro-dollars x micro-shares (divide by 1e6 for micro-dollars)."""
        return sum(self._token_exposure(t, 0, "BUY", 0) for t in self._exposed_tokens())

    def pnl(self) -> int:
        """The PnL the loss limits use (micro-dollars): the more pessimistic of the portfolio's and the gate's own."""
        return min(sum(self._portfolio_pnl.values()), self._own_pnl())

    # ------------------------------------------------------------------ step
    def step(self, seq: int, env: Envelope) -> list[Event]:
        ev = env.ev
        now = env.ts_ns
        if now < self._last_ns:
            raise InvariantError(f"risk: time went backwards ({now} < {self._last_ns})")
        self._last_ns = now
        out: list[Event] = []
        t = type(ev)
        entry = _DISPATCH.get(t)
        if entry is None:
            entry = _DISPATCH[t] = _dispatch_entry(t)
        handler, timed = entry
        if timed and self.started and (now != self._time_ns or self._time_dirty):
            self._time_ns = now
            self._time_dirty = False
            self._on_time(now, out)
        if handler is not None:
            handler(self, seq, ev, now, out)
        return out

    # Handlers, one per consumed event type (``_dispatch_entry`` below maps types to them).
    def _h_kill(self, seq: int, ev: KillSwitch, now: int, out: list[Event]) -> None:
        # Our own KillSwitch comes back here after we latched: nothing to do. Any other (an edge's, or the
        # sequencer's internal_error, whose src is the failing actor's name, possibly ours) latches now.
        self._halt(ev.reason, ev.detail, now, out, announce=False)

    def _h_run_started(self, seq: int, ev: RunStarted, now: int, out: list[Event]) -> None:
        self._on_run_started(ev, now, out)

    def _h_place(self, seq: int, ev: OrderIntent, now: int, out: list[Event]) -> None:
        self._on_place(seq, ev, now, out)

    def _h_cancel(self, seq: int, ev: CancelIntent, now: int, out: list[Event]) -> None:
        self._on_cancel(seq, ev, now, out)

    def _h_frame(self, seq: int, ev: FeedFrame, now: int, out: list[Event]) -> None:
        if self._feed_wait:  # the market feed started: the stale-feed clock starts now
            self._feed_wait = False
            self._feed_ns = now
        if ev.conn >= self._conn:
            self._conn = ev.conn
            self._feed_ns = now
            self._feed_up = True

    def _h_status(self, seq: int, ev: FeedStatus, now: int, out: list[Event]) -> None:
        if self._feed_wait:  # the market feed started (``connecting``): the stale-feed clock starts now
            self._feed_wait = False
            self._feed_ns = now
        if ev.conn >= self._conn:
            self._conn = ev.conn
            self._feed_up = ev.state == "connected"
            if self._feed_up:
                self._feed_ns = now

    def _h_book(self, seq: int, ev: BookChanged, now: int, out: list[Event]) -> None:
        self._on_book(ev, now, out)

    def _h_reply(self, seq: int, ev: ExchangeReply, now: int, out: list[Event]) -> None:
        self._on_reply(ev, now, out)

    def _h_fill(self, seq: int, ev: Fill, now: int, out: list[Event]) -> None:
        self._on_fill(ev, now, out)

    def _h_position(self, seq: int, ev: Position, now: int, out: list[Event]) -> None:
        self._on_position(ev, now, out)

    def _h_order_state(self, seq: int, ev: OrderState, now: int, out: list[Event]) -> None:
        o = self._open.get(ev.client_id)
        if o is not None and ev.state == "unknown":
            o.unknown = True

    def _h_stop(self, seq: int, ev: OperatorStop, now: int, out: list[Event]) -> None:
        self._halt("operator_stop", ev.reason, now, out)

    def _h_reduce(self, seq: int, ev: ReduceOnly, now: int, out: list[Event]) -> None:
        self._reduce(ev.reason or "operator reduce", out)

    def _h_inventory(self, seq: int, ev: StartingInventory, now: int, out: list[Event]) -> None:
        self._on_inventory(ev, now, out)

    # ------------------------------------------------------------------ state changes
    def _halt(self, reason: str, detail: str, now: int, out: list[Event], *, announce: bool = True) -> None:
        """Latch HALTED. Emits KillSwitch (if ``announce``), TradingState, CancelAll: once per run."""
        if self.state == "HALTED":
            return
        self.state = "HALTED"
        self.halt_reason = reason
        if announce:
            out.append(KillSwitch(reason=reason, detail=detail[:500]))  # type: ignore[arg-type]
        out.append(TradingState(state="HALTED", reason=reason))
        out.append(CancelAll(reason=reason))
        for o in self._open.values():
            if not o.cancelling:
                o.cancelling = True
                o.cancel_ns = now
                self._lower_deadline(now)

    def _lower_deadline(self, now: int) -> None:
        """An order started waiting (approved, or cancel sent) at ``now``: it times out after ``now + timeout``."""
        t = now + self._ack_timeout
        d = self._deadline
        if d is None or t < d:
            self._deadline = t

    def _reduce(self, reason: str, out: list[Event]) -> None:
        if self.state != "ACTIVE":
            return
        self.state = "REDUCING"
        out.append(TradingState(state="REDUCING", reason=reason))

    def _on_run_started(self, ev: RunStarted, now: int, out: list[Event]) -> None:
        if self.started:
            raise InvariantError("risk: a second RunStarted in one run")
        if ev.params != self.params:
            raise InvariantError("risk: RunStarted.params differ from the parameters the gate was built with")
        self.started = True
        self._feed_ns = now
        self._day = now // DAY_NS
        self._day_base = 0
        if ev.prior_halt:
            self._halt("prior_halt", ev.prior_halt, now, out)
        else:
            out.append(TradingState(state="ACTIVE", reason="run started"))

    def _on_inventory(self, ev: StartingInventory, now: int, out: list[Event]) -> None:
        if not self.started:
            raise InvariantError("risk: StartingInventory before RunStarted")
        if self._inventory:
            raise InvariantError("risk: a second StartingInventory in one run")
        if self._trades:
            raise InvariantError("risk: StartingInventory after a fill")
        self._inventory = True
        if self._conn == 0:  # no feed event yet: the stale clock starts with the feed (module docstring)
            self._feed_wait = True
        if not ev.ok:
            self._halt("preflight_failed", f"starting inventory not known: {ev.detail}", now, out)
            return
        limit = self._p.max_position
        beyond: list[str] = []
        for b in ev.balances:
            held = b.balance
            if held <= 0:
                continue
            token = b.token_id
            self._pos[token] = self._pos.get(token, 0) + held
            self._cost[token] = self._cost.get(token, 0) + held * MICRO  # 1 dollar a share until marked
            self._entry[token] = self._entry.get(token, 0) + held
            self._own = None
            mark2 = self._marks.get(token)
            if mark2 is not None:  # a book came first (not in the live boot order): entered at once
                self._enter(token, mark2)
            if not (self._pos[token] <= limit):
                beyond.append(f"{shares(self._pos[token])} in {token}")
        if beyond:
            self._halt("position_limit", f"starting position {', '.join(beyond)} beyond {shares(limit)}: held before "
                       "this run; sell it by hand or raise risk.max_position", now, out)

    def _enter(self, token: str, mark2: int) -> None:
        """Enter the starting inventory of ``token`` as bought at its first valid mid (``mark2`` is twice the mid),
        rounded up: cost and cash of shares x entry, so that its PnL starts at 0 (never above)."""
        held = self._entry.pop(token)
        entry = (mark2 + 1) // 2
        if self._pos.get(token, 0) == held and self._cash.get(token, 0) == 0:
            self._cost[token] = held * entry
            self._cash[token] = -held * entry
        else:  # a fill came first (only an unknown order can: already halted): entered at 1 dollar, pessimistic
            self._cash[token] = self._cash.get(token, 0) - held * MICRO
        self._own = None

    # ------------------------------------------------------------------ time-driven triggers
    def _on_time(self, now: int, out: list[Event]) -> None:
        day = now // DAY_NS
        if day != self._day:
            self._day = day
            self._day_base = self.pnl()
        # Ack timeouts: an approved order with no answer may or may not exist.
        deadline = self._deadline
        if deadline is not None and now > deadline:  # else no order can be overdue yet: nothing to look at
            timeout = self._ack_timeout
            nxt: int | None = None
            for o in self._open.values():
                if o.unknown:
                    continue
                if (not o.acked and now - o.approved_ns > timeout) or (o.cancelling and now - o.cancel_ns > timeout):
                    o.unknown = True
                    continue
                if not o.acked:
                    t = o.approved_ns + timeout
                    if nxt is None or t < nxt:
                        nxt = t
                if o.cancelling:
                    t = o.cancel_ns + timeout
                    if nxt is None or t < nxt:
                        nxt = t
            self._deadline = nxt
        if self.state == "HALTED":
            return
        p = self._p
        silent = now - self._feed_ns
        if silent > p.feed_stale_ns and not self._feed_wait:
            self._halt("feed_stale", f"no feed frame or connect for {duration(silent)} (limit {duration(p.feed_stale_ns)})", now, out)
            return
        for token, since in self._broken_since.items():
            if now - since > p.book_invalid_ns:
                self._halt(
                    "book_invalid", f"book of {token} invalid for {duration(now - since)} (limit {duration(p.book_invalid_ns)})", now, out
                )
                return

    # ------------------------------------------------------------------ market data
    def _on_book(self, ev: BookChanged, now: int, out: list[Event]) -> None:
        token = ev.token_id
        book = _Book(ev)
        self._books[token] = book
        bid = book.bid
        ask = book.ask
        if book.valid and 0 < bid < ask and book.tick > 0:  # book.reference()
            mark2 = bid + ask
            if self._marks.get(token) != mark2:
                self._marks[token] = mark2
                self._own = None
                if self._entry and token in self._entry:
                    self._enter(token, mark2)
        if token in self._market_of:
            if (not book.valid) or (bid > 0 and ask > 0 and bid >= ask):  # book.broken()
                self._broken_since.setdefault(token, now)
            else:
                self._broken_since.pop(token, None)
        if self._pos.get(token, 0) != 0:
            self._check_pnl(now, out)

    # ------------------------------------------------------------------ intents
    def _on_place(self, seq: int, ev: OrderIntent, now: int, out: list[Event]) -> None:
        code, detail = self._check_place(ev, now)
        _remember(self._seen_ids, ev.client_id)
        if code:
            out.append(RiskReject(intent_seq=seq, client_id=ev.client_id, code=code, detail=detail))
            return
        self._open[ev.client_id] = _Order(ev, now)
        self._lower_deadline(now)
        _remember(self._approved_ids, ev.client_id)
        out.append(RiskApproved(intent_seq=seq, client_id=ev.client_id))

    def _check_place(self, ev: OrderIntent, now: int) -> tuple[str, str]:
        """("", "") iff the order passes every check; else (code, detail). Allow-iff style throughout."""
        p = self._p
        if not self.started:
            return "not_started", "no RunStarted yet"
        if self.state == "HALTED":
            return "halted", self.halt_reason
        if ev.client_id in self._seen_ids:
            return "duplicate", f"client id {ev.client_id} reused"
        token = ev.token_id
        if not (token in self._market_of and self._market_of[token] == ev.condition_id):
            return "not_allowlisted", f"token {token} of {ev.condition_id} is not a configured market"
        if not ev.post_only:
            return "not_post_only", "a market maker only rests orders; a taker could cross after this check"
        # One pass over the open orders (speed only): the per-token sums of ``_resting``, and this token's first
        # unknown order and first duplicate, in the open orders' order (the loops below the price checks used to
        # look for them; the checks still come in the same order).
        resting: dict[str, list[int]] = {}
        unknown_o: _Order | None = None
        dup_o: _Order | None = None
        side = ev.side
        for o in self._open.values():
            t = o.token_id
            a = resting.get(t)
            if a is None:
                a = resting[t] = [0, 0, 0]
            if o.side == "BUY":
                a[0] += o.remaining
                a[2] += o.remaining * o.price
            else:
                a[1] += o.remaining
            if t == token:
                if unknown_o is None and o.unknown:
                    unknown_o = o
                if dup_o is None and not o.cancelling and o.side == side and o.price == ev.price and o.size == ev.size:
                    dup_o = o
        buys, sells, _ = resting.get(token, _NO_RESTING)
        ub, us, _ = self._unconf.get(token, _NO_UNCONF)
        pos = self.position(token)
        held = pos - ub  # what is surely held, even if every unconfirmed buy fails
        if self.state == "REDUCING":
            reduces = (ev.side == "SELL" and sells + ev.size <= held) or (
                ev.side == "BUY" and pos + us < 0 and buys + ev.size <= -(pos + us)
            )
            if not reduces:
                return "reducing_only", f"{ev.side} {shares(ev.size)} with position {shares(pos)}, open buys {shares(buys)}, sells {shares(sells)}"
        min_size = self._min_size[token]
        if not (min_size <= ev.size <= p.max_order_size):
            return "size_limit", f"size {shares(ev.size)} outside [{decimal(min_size)}, {decimal(p.max_order_size)}]"
        if not (ev.price * ev.size <= p.max_order_notional * MICRO):
            return "notional_limit", f"notional {usd(ev.price * ev.size // MICRO)} > {usd(p.max_order_notional)}"
        if not self._feed_up:
            return "feed_down", "market channel disconnected"
        book = self._books.get(token)
        if book is None or not book.reference():
            return "no_reference_price", "no valid two-sided book for this token"
        tick = book.tick
        if not (ev.price % tick == 0):
            return "off_tick", f"price {price(ev.price)} not on the {price(tick)} grid"
        if not (tick <= ev.price <= MICRO - tick):
            return "price_range", f"price {price(ev.price)} outside [{price(tick)}, {price(MICRO - tick)}]"
        band2 = 2 * p.price_band
        mid2 = book.bid + book.ask
        if ev.side == "BUY":
            if not (2 * ev.price <= mid2 + band2):
                return "price_band", f"buy {price(ev.price)} above mid {price(mid2 // 2)} + band {price(p.price_band)}"
            if not (ev.price < book.ask):
                return "would_cross", f"buy {price(ev.price)} >= best ask {price(book.ask)}"
        else:
            if not (2 * ev.price >= mid2 - band2):
                return "price_band", f"sell {price(ev.price)} below mid {price(mid2 // 2)} - band {price(p.price_band)}"
            if not (ev.price > book.bid):
                return "would_cross", f"sell {price(ev.price)} <= best bid {price(book.bid)}"
        if unknown_o is not None:
            return "unknown_order_pending", f"order {unknown_o.client_id} on {token} is in an unknown state"
        fills = self._recent_fills(token, ev.side, now)
        if not (fills < p.fill_burst):
            return "fill_burst", f"{fills} {ev.side} fills on {token} within {duration(p.fill_window_ns)}"
        if dup_o is not None:
            return "duplicate", f"same as open order {dup_o.client_id}"
        if not (len(self._open) + 1 <= p.max_open_orders):
            return "open_orders_limit", f"{len(self._open)} open or in flight, limit {p.max_open_orders}"
        if ev.side == "BUY":
            if not (pos + buys + us + ev.size <= p.max_position):
                return "position_limit", f"worst case {shares(pos + buys + us + ev.size)} > {shares(p.max_position)}"
        else:
            if not (sells + ev.size <= held):
                return "insufficient_position", f"sell {shares(ev.size)} + open sells {shares(sells)} > held {shares(held)}"
            if not (held - sells - ev.size >= -p.max_position):  # implied by the line above; kept explicit
                return "position_limit", f"worst case {shares(held - sells - ev.size)} < {shares(-p.max_position)}"
        if ev.side == "BUY":  # a sell that got here is within what is surely held: it adds no exposure (note above)
            exposed = dict.fromkeys(t for t, q in self._pos.items() if q != 0)  # _exposed_tokens(), from the sums above
            exposed.update(dict.fromkeys(t for t, u in self._unconf.items() if any(u)))
            exposed.update(dict.fromkeys(resting))
            total = 0
            cost = self._cost
            positions = self._pos
            unconf = self._unconf
            for t in exposed:  # self._token_exposure(t, 0, "BUY", 0), inlined
                if t != token:
                    _, t_sells, t_buy_notional = resting.get(t, _NO_RESTING)
                    t_ub, _, t_uc = unconf.get(t, _NO_UNCONF)
                    t_pos = positions.get(t, 0)
                    short_worst = t_sells - (t_pos - t_ub)
                    total += ((cost.get(t, 0) if t_pos > 0 else 0) + t_uc + t_buy_notional
                              + (short_worst * MICRO if short_worst > 0 else 0))
            total += self._token_exposure(token, ev.size, ev.side, ev.price, resting)
            if not (total <= p.max_total_notional * MICRO):
                return "total_notional_limit", f"worst case {usd(total // MICRO)} > {usd(p.max_total_notional)}"
        if not self._cancels_bucket.available(now):
            return "throttled", "cancel budget exhausted"
        if not self._orders_bucket.take(now):
            return "throttled", f"more than {p.order_burst} orders at {p.orders_per_sec}/s"
        return "", ""

    def _on_cancel(self, seq: int, ev: CancelIntent, now: int, out: list[Event]) -> None:
        if ev.client_id not in self._open and ev.client_id not in self._approved_ids:
            out.append(RiskReject(intent_seq=seq, client_id=ev.client_id, code="unknown_order", detail="never approved"))
            return
        self._cancels_bucket.take(now)  # counted against the budget, never refused (module docstring)
        o = self._open.get(ev.client_id)
        if o is not None and not o.cancelling:
            o.cancelling = True
            o.cancel_ns = now
            self._lower_deadline(now)
        out.append(RiskApproved(intent_seq=seq, client_id=ev.client_id))

    # ------------------------------------------------------------------ exposure
    def _resting(self, token: str) -> tuple[int, int, int]:
        """(open buy size, open sell size, open buy notional in micro-dollars x micro-shares) of one token."""
        buys = sells = buy_notional = 0
        for o in self._open.values():
            if o.token_id == token:
                if o.side == "BUY":
                    buys += o.remaining
                    buy_notional += o.remaining * o.price
                else:
                    sells += o.remaining
        return buys, sells, buy_notional

    def _exposed_tokens(self) -> list[str]:
        tokens = dict.fromkeys(t for t, q in self._pos.items() if q != 0)
        tokens.update(dict.fromkeys(t for t, u in self._unconf.items() if any(u)))
        tokens.update(dict.fromkeys(o.token_id for o in self._open.values()))
        return list(tokens)

    def _token_exposure(self, token: str, size: int, side: str, price: int,
                        resting: dict[str, list[int]] | None = None) -> int:
        """Worst-case notional of one token, with an extra order of ``size`` on ``side`` at ``price``: cost of the
        long position, plus the cost unconfirmed sells removed (they may fail), plus open buys, plus 1 dollar per
        share that open sells could sell beyond what is surely held."""
        _, sells, buy_notional = self._resting(token) if resting is None else resting.get(token, _NO_RESTING)
        if side == "BUY":
            buy_notional += size * price
        else:
            sells += size
        ub, _, uc = self._unconf.get(token, _NO_UNCONF)
        pos = self._pos.get(token, 0)
        long_cost = self._cost.get(token, 0) if pos > 0 else 0
        short_worst = max(0, sells - (pos - ub))
        return long_cost + uc + buy_notional + short_worst * MICRO

    # ------------------------------------------------------------------ replies and fills
    def _on_reply(self, ev: ExchangeReply, now: int, out: list[Event]) -> None:
        if not ev.ok and not lost_cancel_race(ev):
            self._errors.append(now)
            horizon = now - self._p.error_window_ns
            while self._errors and self._errors[0] <= horizon:
                self._errors.popleft()
            if len(self._errors) >= self._p.error_burst:
                self._halt(
                    "error_rate",
                    f"{len(self._errors)} failed exchange replies within {duration(self._p.error_window_ns)}",
                    now,
                    out,
                )
        o = self._open.get(ev.client_id)
        if ev.op == "place":
            if o is None:
                if ev.ok and ev.status not in _PLACE_TERMINAL and ev.client_id not in self._approved_ids:
                    self._halt("unknown_order", f"exchange reports order {ev.client_id!r} ({ev.status}) we never approved", now, out)
                return
            if ev.status in _PLACE_TERMINAL:
                del self._open[ev.client_id]
            elif ev.status == "unknown" or not ev.ok:
                o.unknown = True
            else:
                o.acked = True
                o.unknown = False
                self._time_dirty = True
                self._deadline = -1
        elif ev.op == "cancel":
            if o is None:
                return
            if ev.ok and ev.status in ("cancelled", "canceled"):
                del self._open[ev.client_id]
            else:  # the cancel failed: the order is still there, as far as anyone knows
                o.cancelling = False
                o.acked = True
                o.unknown = False
                self._time_dirty = True
                self._deadline = -1

    def _on_fill(self, ev: Fill, now: int, out: list[Event]) -> None:
        key = (ev.trade_id, ev.client_id)
        rec = self._trades.get(key)
        o = self._open.get(ev.client_id)
        if o is not None and (o.token_id != ev.token_id or o.side != ev.side):
            self._halt("unknown_order", f"fill {ev.trade_id} is {ev.side} {ev.token_id}, order {o.client_id} is "
                       f"{o.side} {o.token_id}", now, out)
            o = None  # the position still counts (it is what the venue says); the order is left as it was
        if ev.status == "FAILED":
            if rec is not None:
                self._revert_fill(ev.token_id, rec)
                if not rec.confirmed:
                    self._unconfirm(ev.token_id, rec)
                if o is not None:
                    o.remaining = min(o.size, o.remaining + ev.size)
            _remember(self._trades, key, None)
        elif key not in self._trades:
            rec = self._apply_fill(ev.token_id, ev.side, ev.price, ev.size, confirmed=ev.status == "CONFIRMED")
            _remember(self._trades, key, rec)
            if not rec.confirmed:
                u = self._unconf.setdefault(ev.token_id, [0, 0, 0])
                if rec.side == "BUY":
                    u[0] += ev.size
                else:
                    u[1] += ev.size
                    u[2] += -rec.dcost
            times = self._fill_times.setdefault((ev.token_id, ev.side), deque())
            times.append(now)
            if o is not None:
                o.acked = True
                o.unknown = False
                self._time_dirty = True
                self._deadline = -1
                o.remaining -= ev.size
                if o.remaining <= 0:
                    del self._open[ev.client_id]
        elif rec is not None and not rec.confirmed and ev.status == "CONFIRMED":
            self._unconfirm(ev.token_id, rec)
            rec.confirmed = True
        if ev.client_id not in self._open and ev.client_id not in self._approved_ids:
            self._halt("unknown_order", f"fill {ev.trade_id} for order {ev.client_id!r} we never approved", now, out)
        pos = self.position(ev.token_id)
        if not (abs(pos) <= self._p.max_position):
            self._halt("position_limit", f"position {shares(pos)} in {ev.token_id} beyond {shares(self._p.max_position)}", now, out)
        self._check_pnl(now, out)

    def _unconfirm(self, token: str, rec: _Trade) -> None:
        """Take a fill out of the unconfirmed sums (it was confirmed, or it failed)."""
        u = self._unconf[token]
        if rec.side == "BUY":
            u[0] -= rec.size
        else:
            u[1] -= rec.size
            u[2] -= -rec.dcost

    def _apply_fill(self, token: str, side: str, price: int, size: int, *, confirmed: bool) -> _Trade:
        """Count a fill; returns what it changed, so that a FAILED can revert it exactly."""
        pos0 = pos = self._pos.get(token, 0)
        cost0 = cost = self._cost.get(token, 0)
        cash0 = self._cash.get(token, 0)
        if side == "BUY":
            self._cash[token] = cash0 - price * size
            adds = size if pos >= 0 else max(0, size + pos)
            cost += price * adds
            pos += size
        else:
            self._cash[token] = cash0 + price * size
            if pos > 0:
                sold = min(size, pos)
                cost -= cost * sold // pos
            pos -= size
            if pos <= 0:
                cost = 0
        self._pos[token] = pos
        self._cost[token] = cost
        self._own = None
        return _Trade(side, size, pos - pos0, cost - cost0, self._cash[token] - cash0, confirmed)

    def _revert_fill(self, token: str, rec: _Trade) -> None:
        pos = self._pos.get(token, 0) - rec.dpos
        self._pos[token] = pos
        self._cash[token] = self._cash.get(token, 0) - rec.dcash
        self._own = None
        self._cost[token] = max(0, self._cost.get(token, 0) - rec.dcost) if pos > 0 else 0

    def _recent_fills(self, token: str, side: str, now: int) -> int:
        times = self._fill_times.get((token, side))
        if not times:
            return 0
        horizon = now - self._p.fill_window_ns
        while times and times[0] <= horizon:
            times.popleft()
        return len(times)

    # ------------------------------------------------------------------ PnL and positions
    def _on_position(self, ev: Position, now: int, out: list[Event]) -> None:
        self._portfolio_pnl[ev.token_id] = ev.mtm  # the token's whole PnL (cash + position at mark): realized is in it
        if not (abs(ev.position) <= self._p.max_position):
            self._halt(
                "position_limit", f"portfolio position {shares(ev.position)} in {ev.token_id} beyond {shares(self._p.max_position)}", now, out
            )
        self._check_pnl(now, out)

    def _own_pnl(self) -> int:
        """Cash of the fills plus each position at its last valid mid (micro-dollars, rounded down)."""
        own = self._own
        if own is None:
            own = self._own = self._own_pnl_now()
        return own

    def _own_pnl_now(self) -> int:
        total2 = 0  # twice the value, in micro-dollars x micro-shares
        for token, pos in self._pos.items():
            total2 += 2 * self._cash.get(token, 0)
            mark2 = self._marks.get(token)
            if mark2 is not None:
                total2 += pos * mark2
            elif pos < 0:
                total2 += pos * 2 * MICRO
        return total2 // (2 * MICRO)

    def _check_pnl(self, now: int, out: list[Event]) -> None:
        if self.state == "HALTED":
            return
        p = self._p
        pnl = self.pnl()
        if not (pnl >= -p.max_loss):
            self._halt("loss_limit", f"PnL {usd(pnl)} below {usd(-p.max_loss)}", now, out)
        elif not (pnl - self._day_base >= -p.daily_loss):
            self._halt("daily_loss", f"PnL today {usd(pnl - self._day_base)} below {usd(-p.daily_loss)}", now, out)
        elif not (pnl >= -p.reduce_loss):
            self._reduce(f"PnL {usd(pnl)} below {usd(-p.reduce_loss)}", out)


_Handler = Callable[[RiskGate, int, Any, int, list[Event]], None]
_DISPATCH: dict[type, tuple[_Handler | None, bool]] = {}
"""Event type -> (handler, whether the time-driven triggers run first); filled once per type."""


def _dispatch_entry(t: type) -> tuple[_Handler | None, bool]:
    """What ``RiskGate.step`` does with an event of type ``t`` (the first matching class, in this order)."""
    if issubclass(t, KillSwitch):
        return RiskGate._h_kill, False
    if issubclass(t, RunStarted):
        return RiskGate._h_run_started, False
    for cls, handler in (
        (OrderIntent, RiskGate._h_place),
        (CancelIntent, RiskGate._h_cancel),
        (FeedFrame, RiskGate._h_frame),
        (FeedStatus, RiskGate._h_status),
        (BookChanged, RiskGate._h_book),
        (ExchangeReply, RiskGate._h_reply),
        (Fill, RiskGate._h_fill),
        (Position, RiskGate._h_position),
        (OrderState, RiskGate._h_order_state),
        (OperatorStop, RiskGate._h_stop),
        (ReduceOnly, RiskGate._h_reduce),
        (StartingInventory, RiskGate._h_inventory),
    ):
        if issubclass(t, cls):
            return handler, True  # type: ignore[return-value]
    return None, True
