"""The order manager: turns desired quotes into order and cancel intents, and follows every order's state.

Reconciling (only when ``params.quoting``, never after a halt)
- A market is reconciled when its ``DesiredQuotes`` differ from the last ones seen for it. Identical desired quotes
  cause nothing at all, so a quoter repeating itself costs no order traffic. Two more reasons, both on ``Tick``:
  an order reached ``max_order_age_ns`` (it is replaced), or the market is owed a reconcile: places were held back
  (below), or the risk gate refused a place while an order of that market was being cancelled (worst-case exposure
  counts it until confirmed). Such a market is reconciled on the first ``Tick`` on which none of its orders waits
  for a cancel, so a lasting refusal cannot turn into a loop.
- Each desired quote keeps the best-matching resting order of the same token and side whose price is within
  ``refresh_tolerance`` and whose remaining size is within ``size_tolerance`` (a fraction of the desired size),
  and that is younger than ``max_order_age_ns`` (0: no limit). Keeping it keeps its queue position. Resting orders
  that match no desired quote are cancelled, desired quotes with no match are placed: cancels first, then places,
  in one step. A cancel and a place on the same token and side in one step count as a replace.
- An order whose cancel is pending counts as live (it may still fill) but is never matched or cancelled again.
- While any order on a token is in an unknown state, no order is placed on that token.
- A sell is not placed while a sell on the same token waits for its cancel: the venue reserves the tokens of an open
  sell, and the risk gate counts them, until the cancel is confirmed. Such places go out on a later ``Tick``.
- REDUCING (from the risk gate): buy quotes are dropped, so resting buys are cancelled and only sells are placed
  (the gate decides whether each sell really reduces). HALTED or a ``KillSwitch``: no intent ever again; a
  ``CancelAll`` marks every order as cancel-pending.

Order states (an ``OrderState`` on every change of state or filled size)
pending_new -> live -> partially_filled -> filled | cancelled | rejected, and unknown, from:
- ``RiskReject`` of the place -> rejected (detail: the reject code).
- place reply: ``live``/``matched``/``delayed`` (any ok status) -> live (partially_filled if fills came first);
  ``rejected`` -> rejected; ``unmatched`` -> cancelled; ``unknown`` or any other failure -> unknown.
- cancel reply: ok and ``cancelled`` -> cancelled; a failed cancel -> unknown (the venue would not cancel what we
  believe is live: it may have filled, or our view is wrong). Such an order is never cancelled again (repeating a
  failing cancel would only feed the error-rate breaker); a fill or a later reply resolves it.
- ``Fill``: counted once per (trade id, client id) on MATCHED or CONFIRMED, whichever comes first -> partially_filled
  or filled; a FAILED fill gives the size back (an order already terminal stays terminal). A fill beyond the
  order's size is an invariant violation: the step raises, and the sequencer halts the run (internal_error).
- ``Tick``: a place with no reply after ``ack_timeout_ns``, or a cancel with no reply after it, -> unknown.

Client ids are ``f"o{seq}.{i}"``: seq of the event being handled, i the place's index in that step (across every
market the step reconciles).
``Churn`` (places, cancels and replaces over the last minute, mean life of orders whose cancel was confirmed in it)
is emitted on a ``Tick`` at most once per minute of event time, and only when it differs from the last one.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from actors.core.base import InvariantError
from events.base import MICRO, Event
from events.codec import Envelope
from events.control import KillSwitch, Tick, TradingState
from events.orders import (
    CancelAll,
    CancelIntent,
    Churn,
    DesiredQuotes,
    ExchangeReply,
    Fill,
    OrderIntent,
    OrderState,
    Quote,
    RiskApproved,
    RiskReject,
)
from events.params import CoreParams

MINUTE_NS = 60 * 10**9
TERMINAL = ("filled", "cancelled", "rejected")
DONE_MEMORY = 10_000
"""Terminal orders kept for late fills and replies (FIFO)."""
TRADE_MEMORY = 100_000


class _Order:
    __slots__ = (
        "cancel_failed",
        "cancel_ns",
        "cancel_requested",
        "client_id",
        "condition_id",
        "created_ns",
        "filled",
        "price",
        "side",
        "size",
        "state",
        "token_id",
    )

    def __init__(self, client_id: str, condition_id: str, q: Quote, now: int) -> None:
        self.client_id = client_id
        self.condition_id = condition_id
        self.token_id = q.token_id
        self.side = q.side
        self.price = q.price
        self.size = q.size
        self.filled = 0
        self.state = "pending_new"
        self.created_ns = now
        self.cancel_requested = False
        self.cancel_ns = 0
        self.cancel_failed = False

    @property
    def remaining(self) -> int:
        return self.size - self.filled


class OrderManager:
    """Pure core actor ``orders``. See the module docstring."""

    name = "orders"
    consumes = (
        DesiredQuotes,
        OrderIntent,
        CancelIntent,
        RiskApproved,
        RiskReject,
        ExchangeReply,
        Fill,
        Tick,
        KillSwitch,
        TradingState,
        CancelAll,
    )

    def __init__(self, params: CoreParams) -> None:
        self.params = params
        self._p = params.orders
        self.halted = False
        self.reducing = False
        self._orders: dict[str, _Order] = {}
        """Every non-terminal order, in creation order."""
        self._done: OrderedDict[str, _Order] = OrderedDict()
        self._desired: dict[str, tuple[Quote, ...]] = {}
        self._held: dict[str, None] = {}
        """Markets owed a reconcile (an ordered set): places were held back, or refused while a cancel was pending."""
        self._intents: OrderedDict[int, tuple[str, str]] = OrderedDict()
        """seq of each of our intents -> (kind, client id), until the risk gate decides."""
        self._trades: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._places: deque[int] = deque()
        self._cancels: deque[int] = deque()
        self._replaces: deque[int] = deque()
        self._lives: deque[tuple[int, int]] = deque()
        self._churn_ns: int | None = None
        self._step_places = 0
        self._last_churn: tuple[int, int, int, int] | None = None

    # ------------------------------------------------------------------ read-only views
    def order(self, client_id: str) -> tuple[str, int] | None:
        """(state, filled) of an order this manager knows, or None."""
        o = self._orders.get(client_id) or self._done.get(client_id)
        return None if o is None else (o.state, o.filled)

    def live_orders(self) -> list[tuple[str, str, str, int, int, str, bool]]:
        """(client_id, token, side, price, remaining, state, cancel pending) of every non-terminal order."""
        return [
            (o.client_id, o.token_id, o.side, o.price, o.remaining, o.state, o.cancel_requested)
            for o in self._orders.values()
        ]

    def blocked_tokens(self) -> list[str]:
        """Tokens with an order in an unknown state (no place goes out on them)."""
        return list(dict.fromkeys(o.token_id for o in self._orders.values() if o.state == "unknown"))

    # ------------------------------------------------------------------ step
    def step(self, seq: int, env: Envelope) -> list[Event]:
        ev = env.ev
        out: list[Event] = []
        self._step_places = 0  # client ids are f"o{seq}.{i}" with i counting places across the whole step
        t = type(ev)
        handler = _DISPATCH.get(t)
        if handler is None:
            handler = _DISPATCH[t] = _dispatch_entry(t)
        if handler is not None:
            handler(self, seq, env, ev, out)
        return out

    # Handlers, one per consumed event type (``_dispatch_entry`` below maps types to them).
    def _h_desired(self, seq: int, env: Envelope, ev: DesiredQuotes, out: list[Event]) -> None:
        self._on_desired(seq, ev, env.ts_ns, out)

    def _h_tick(self, seq: int, env: Envelope, ev: Tick, out: list[Event]) -> None:
        self._on_tick(seq, env.ts_ns, out)

    def _h_reply(self, seq: int, env: Envelope, ev: ExchangeReply, out: list[Event]) -> None:
        self._on_reply(ev, env.ts_ns, out)

    def _h_fill(self, seq: int, env: Envelope, ev: Fill, out: list[Event]) -> None:
        self._on_fill(ev, out)

    def _h_place(self, seq: int, env: Envelope, ev: OrderIntent, out: list[Event]) -> None:
        if env.src == self.name:
            self._remember_intent(seq, "place", ev.client_id)

    def _h_cancel(self, seq: int, env: Envelope, ev: CancelIntent, out: list[Event]) -> None:
        if env.src == self.name:
            self._remember_intent(seq, "cancel", ev.client_id)

    def _h_approved(self, seq: int, env: Envelope, ev: RiskApproved, out: list[Event]) -> None:
        self._intents.pop(ev.intent_seq, None)

    def _h_reject(self, seq: int, env: Envelope, ev: RiskReject, out: list[Event]) -> None:
        self._on_reject(ev, out)

    def _h_kill(self, seq: int, env: Envelope, ev: KillSwitch, out: list[Event]) -> None:
        self.halted = True

    def _h_trading_state(self, seq: int, env: Envelope, ev: TradingState, out: list[Event]) -> None:
        if ev.state == "HALTED":
            self.halted = True
        elif ev.state == "REDUCING" and not self.reducing:
            self.reducing = True
            if self.params.quoting and not self.halted:
                for cid in list(self._desired):
                    self._reconcile(cid, seq, env.ts_ns, out)

    def _h_cancel_all(self, seq: int, env: Envelope, ev: CancelAll, out: list[Event]) -> None:
        now = env.ts_ns
        for o in self._orders.values():
            if not o.cancel_requested:
                o.cancel_requested = True
                o.cancel_ns = now

    def _remember_intent(self, seq: int, kind: str, client_id: str) -> None:
        self._intents[seq] = (kind, client_id)
        if len(self._intents) > TRADE_MEMORY:
            self._intents.popitem(last=False)

    # ------------------------------------------------------------------ state changes
    def _set(self, o: _Order, state: str, out: list[Event], detail: str = "") -> None:
        out.append(OrderState(client_id=o.client_id, state=state, filled=o.filled, detail=detail))  # type: ignore[arg-type]
        o.state = state
        if state in TERMINAL and o.client_id in self._orders:
            del self._orders[o.client_id]
            self._done[o.client_id] = o
            if len(self._done) > DONE_MEMORY:
                self._done.popitem(last=False)

    def _working_state(self, o: _Order) -> str:
        return "partially_filled" if o.filled > 0 else "live"

    # ------------------------------------------------------------------ reconciling
    def _on_desired(self, seq: int, ev: DesiredQuotes, now: int, out: list[Event]) -> None:
        if not self.params.quoting or self.halted:
            return
        cid = ev.condition_id
        if self._desired.get(cid) == ev.quotes and not (cid in self._held and not self._cancelling(cid)):
            return  # unchanged, and not owed a reconcile that could go out now
        self._desired[cid] = ev.quotes
        self._reconcile(cid, seq, now, out)

    def _cancelling(self, cid: str) -> bool:
        """True iff an order of market ``cid`` waits for the answer to its cancel."""
        return any(o.cancel_requested and o.condition_id == cid for o in self._orders.values())

    def _fits(self, o: _Order, q: Quote, now: int) -> bool:
        p = self._p
        return (
            abs(o.price - q.price) <= p.refresh_tolerance
            and abs(o.remaining - q.size) * MICRO <= p.size_tolerance * q.size
            and (p.max_order_age_ns == 0 or now - o.created_ns < p.max_order_age_ns)
        )

    def _reconcile(self, cid: str, seq: int, now: int, out: list[Event]) -> None:
        self._held.pop(cid, None)
        desired = [q for q in self._desired.get(cid, ()) if q.size > 0 and not (self.reducing and q.side == "BUY")]
        resting = [
            o for o in self._orders.values() if o.condition_id == cid and not o.cancel_requested and not o.cancel_failed
        ]
        kept: dict[str, None] = {}
        to_place: list[Quote] = []
        for q in desired:
            best: _Order | None = None
            for o in resting:
                if o.client_id in kept or o.token_id != q.token_id or o.side != q.side or not self._fits(o, q, now):
                    continue
                if best is None or abs(o.price - q.price) < abs(best.price - q.price):
                    best = o
            if best is None:
                to_place.append(q)
            else:
                kept[best.client_id] = None
        cancels = [o for o in resting if o.client_id not in kept]
        for o in cancels:
            o.cancel_requested = True
            o.cancel_ns = now
        blocked = {o.token_id for o in self._orders.values() if o.state == "unknown"}
        selling = {o.token_id for o in self._orders.values() if o.side == "SELL" and o.cancel_requested}
        ready = [q for q in to_place if q.token_id not in blocked and not (q.side == "SELL" and q.token_id in selling)]
        if len(ready) < len(to_place):
            self._held[cid] = None
        to_place = ready
        placing_sides = {(q.token_id, q.side) for q in to_place}
        replaced_per_side: dict[tuple[str, str], int] = {}
        for o in cancels:
            key = (o.token_id, o.side)
            replace = key in placing_sides
            if replace:
                replaced_per_side[key] = replaced_per_side.get(key, 0) + 1
            out.append(CancelIntent(client_id=o.client_id, reason="replace" if replace else "not desired"))
            self._cancels.append(now)
        places_per_side: dict[tuple[str, str], int] = {}
        for q in to_place:
            client_id = f"o{seq}.{self._step_places}"
            self._step_places += 1
            if client_id in self._orders or client_id in self._done:
                raise InvariantError(f"orders: client id {client_id} already used")
            o = _Order(client_id, cid, q, now)
            self._orders[client_id] = o
            out.append(
                OrderIntent(
                    client_id=client_id, condition_id=cid, token_id=q.token_id, side=q.side, price=q.price, size=q.size
                )
            )
            out.append(OrderState(client_id=client_id, state="pending_new"))
            self._places.append(now)
            key = (q.token_id, q.side)
            places_per_side[key] = places_per_side.get(key, 0) + 1
        for key, n in replaced_per_side.items():
            for _ in range(min(n, places_per_side.get(key, 0))):
                self._replaces.append(now)

    # ------------------------------------------------------------------ clock
    def _on_tick(self, seq: int, now: int, out: list[Event]) -> None:
        timeout = self._p.ack_timeout_ns
        for o in list(self._orders.values()):
            if o.state == "unknown":
                continue
            if o.state == "pending_new" and now - o.created_ns > timeout:
                self._set(o, "unknown", out, "no reply to the place")
            elif o.cancel_requested and not o.cancel_failed and now - o.cancel_ns > timeout:
                self._set(o, "unknown", out, "no reply to the cancel")
        if self.params.quoting and not self.halted:
            due: dict[str, None] = {cid: None for cid in self._held if not self._cancelling(cid)}
            max_age = self._p.max_order_age_ns
            if max_age > 0:
                for o in self._orders.values():
                    if not o.cancel_requested and not o.cancel_failed and now - o.created_ns >= max_age:
                        due[o.condition_id] = None
            for cid in due:
                self._reconcile(cid, seq, now, out)
        self._churn(now, out)

    def _churn(self, now: int, out: list[Event]) -> None:
        if self._churn_ns is None:
            self._churn_ns = now
            return
        if now - self._churn_ns < MINUTE_NS:
            return
        self._churn_ns = now
        horizon = now - MINUTE_NS
        for dq in (self._places, self._cancels, self._replaces):
            while dq and dq[0] <= horizon:
                dq.popleft()
        while self._lives and self._lives[0][0] <= horizon:
            self._lives.popleft()
        mean_life = sum(life for _, life in self._lives) // len(self._lives) if self._lives else 0
        stats = (len(self._places), len(self._cancels), len(self._replaces), mean_life)
        if stats != self._last_churn:
            self._last_churn = stats
            out.append(Churn(places=stats[0], cancels=stats[1], replaces=stats[2], mean_life_ns=stats[3]))

    # ------------------------------------------------------------------ answers
    def _on_reject(self, ev: RiskReject, out: list[Event]) -> None:
        kind, client_id = self._intents.pop(ev.intent_seq, ("", ""))
        o = self._orders.get(ev.client_id)
        if o is None or client_id != ev.client_id:
            return
        if kind == "place":
            self._set(o, "rejected", out, ev.code)
            if any(x.cancel_requested for x in self._orders.values() if x.condition_id == o.condition_id):
                # Refused while an order being cancelled still counted toward the limits: try again once the
                # cancels are answered (never while they are pending, so a lasting refusal cannot loop).
                self._held[o.condition_id] = None
        elif kind == "cancel":
            o.cancel_requested = False  # the gate does not know the order: retried at the next reconcile

    def _on_reply(self, ev: ExchangeReply, now: int, out: list[Event]) -> None:
        o = self._orders.get(ev.client_id)
        if o is None:
            return  # terminal already (late reply), or not ours: the risk gate judges the latter
        if ev.op == "place":
            if ev.status == "rejected":
                self._set(o, "rejected", out, ev.message or "exchange rejected")
            elif ev.status == "unmatched":
                self._set(o, "cancelled", out, "unmatched")
            elif ev.status == "unknown" or not ev.ok:
                if o.state != "unknown":
                    self._set(o, "unknown", out, ev.message or f"place reply {ev.status or 'failed'}")
            elif o.state in ("pending_new", "unknown"):
                self._set(o, self._working_state(o), out)
        elif ev.op == "cancel":
            if ev.ok and ev.status in ("cancelled", "canceled"):
                self._lives.append((now, now - o.created_ns))
                self._set(o, "cancelled", out)
            else:
                o.cancel_failed = True
                o.cancel_requested = False
                if o.state != "unknown":
                    self._set(o, "unknown", out, ev.message or "cancel failed")

    def _on_fill(self, ev: Fill, out: list[Event]) -> None:
        o = self._orders.get(ev.client_id) or self._done.get(ev.client_id)
        if o is None or o.token_id != ev.token_id or o.side != ev.side:
            return  # not ours, or not this order's: the risk gate trips unknown_order
        key = (ev.trade_id, ev.client_id)
        prev = self._trades.get(key)
        if ev.status == "FAILED":
            self._trades[key] = "failed"
            if prev != "in":
                return
            o.filled = max(0, o.filled - ev.size)
            if o.state in TERMINAL or o.state == "unknown":
                self._set(o, o.state, out, f"trade {ev.trade_id} failed")
            else:
                self._set(o, self._working_state(o), out, f"trade {ev.trade_id} failed")
        else:
            if prev is not None:
                return
            filled = o.filled + ev.size
            if filled > o.size:
                raise InvariantError(f"orders: fill {ev.trade_id} overfills {o.client_id}: {filled} > {o.size}")
            self._trades[key] = "in"
            o.filled = filled
            o.cancel_failed = False  # the order exists after all: it may be cancelled again
            if o.state in TERMINAL:
                self._set(o, o.state, out, f"late fill {ev.trade_id}")
            elif filled == o.size:
                self._set(o, "filled", out)
            else:
                self._set(o, "partially_filled", out)
        if len(self._trades) > TRADE_MEMORY:
            self._trades.popitem(last=False)


_Handler = Callable[[OrderManager, int, Envelope, Any, list[Event]], None]
_DISPATCH: dict[type, _Handler | None] = {}
"""Event type -> ``OrderManager`` handler (None: nothing to do); filled once per type."""


def _dispatch_entry(t: type) -> _Handler | None:
    """The handler of the first of these classes that ``t`` is a subclass of (the order of the original chain)."""
    for cls, handler in (
        (DesiredQuotes, OrderManager._h_desired),
        (Tick, OrderManager._h_tick),
        (ExchangeReply, OrderManager._h_reply),
        (Fill, OrderManager._h_fill),
        (OrderIntent, OrderManager._h_place),
        (CancelIntent, OrderManager._h_cancel),
        (RiskApproved, OrderManager._h_approved),
        (RiskReject, OrderManager._h_reject),
        (KillSwitch, OrderManager._h_kill),
        (TradingState, OrderManager._h_trading_state),
        (CancelAll, OrderManager._h_cancel_all),
    ):
        if issubclass(t, cls):
            return handler  # type: ignore[return-value]
    return None
