"""The live core executor (``exec`` slot for ``fills="live"``): the exchange's answers, parsed into the shared
vocabulary.

In a live session the exchange is reached by sinks and edges (``actors.sink.executor``, ``actors.edge.*``); what
they saw enters the journal as inputs. This actor reads those inputs and says what they mean for our orders, so
the parsing replays bit for bit like everything else in the core:

- ``OrderIntent`` (from ``orders``): remembered (token, side, size). ``OrderSigned`` (from the executor): the order
  hash of a client id, so venue messages that name hashes can be tied to our orders. ``ExchangeReply`` (from the
  executor, or our own): follows each order's state (signed, live, unknown, done).
- ``UserFrame`` (raw user-channel frames, and ``/data/trades`` rows in the same shape):
  - ``trade`` events: one ``Fill`` per row that is OURS, i.e. a maker row whose ``order_id`` is one of our
    hashes (or the taker, if ``taker_order_id`` is ours), with that row's token, side, price and
    ``matched_amount``. Venue statuses map MATCHED/MINED/RETRYING -> ``MATCHED``, CONFIRMED -> ``CONFIRMED``,
    FAILED -> ``FAILED`` (the portfolio and the risk gate count a fill once and reverse it on FAILED). Each
    (trade id, client id, status) gives at most one ``Fill``, so a trade seen on the socket and again in a REST
    reconcile is counted once.
  - ``order`` events of type CANCELLATION (or status CANCELED) for one of our orders that is not done yet (the
    venue's heartbeat expiry, a tick-size change, ...) -> ``ExchangeReply(op="cancel", ok=True,
    status="cancelled")``.
- ``ReconcileStarted(fence)`` then ``OpenOrdersSnapshot(fence, ids)``: every order acknowledged live BEFORE the
  fence whose hash the venue no longer lists is resolved: filled if our fills cover it, else
  ``ExchangeReply(op="cancel", ok=True, status="cancelled")``. Orders still in flight, or in an unknown state,
  are left to the executor (it resolves unknown outcomes by looking the hash up).
- Fail closed, ``KillSwitch(unknown_order)`` (once), when the venue shows an order of ours that we never signed
  (a row owned by our address or API key, an ``order`` PLACEMENT, an open order) or one the executor concluded
  never landed, is resting after all. Orders an earlier run left (``StartupCleanup``) and trades matched before
  this run started are history and ignored.
- Anything unparsable -> ``UserFrameError`` (never raises on bad input).

Identity: ``LiveIdentity`` gives the address (and the maker address) and ``key_id`` = the first 16 hex digits of
sha256(API key); rows are compared on those, never on the key itself. The edges journal venue text with the API key
replaced by its stand-in ``key:<key_id>`` (``key_stand_in``); an ``owner`` is ours when it is that stand-in, or
(journals recorded before the stand-in) a raw key whose ``key_id`` is ours.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import msgspec

from events.base import MICRO, Event
from events.codec import Envelope
from events.control import KillSwitch, RunStarted
from events.live import (
    LiveIdentity,
    OpenOrdersSnapshot,
    OrderSigned,
    ReconcileStarted,
    StartupCleanup,
    UserFrame,
    UserFrameError,
    UserStatus,
)
from events.orders import ExchangeReply, Fill, OrderIntent
from events.params import CoreParams

MEMORY = 100_000
"""Orders, hashes and fill keys remembered (FIFO). A forgotten hash fails closed (unknown order)."""
NEVER_LANDED = "never landed"
"""Message prefix of the executor's place reply when a lookup found no trace of an order with an unknown outcome."""
STATUS_MAP = {
    "MATCHED": "MATCHED",
    "MINED": "MATCHED",
    "RETRYING": "MATCHED",
    "CONFIRMED": "CONFIRMED",
    "FAILED": "FAILED",
}
"""Venue trade status -> ``Fill.status``. Only CONFIRMED is final; FAILED reverses."""
_ACKED = ("live", "delayed", "matched")
EXCERPT = 200


KEY_STAND_IN = "key:"
"""Prefix of the API key's stand-in (``key_stand_in``)."""


def key_id(api_key: str) -> str:
    """What ``LiveIdentity.key_id`` holds for an API key: 16 hex digits of its sha256."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


def key_stand_in(api_key: str) -> str:
    """What the live edges journal in place of the API key wherever the venue's text holds it (``owner`` fields
    and the like): ``key:`` + ``key_id(api_key)``. Stable and not secret."""
    return KEY_STAND_IN + key_id(api_key)


class FrameError(ValueError):
    """A field of a user-channel event is missing or out of range."""


def _micro(value: Any, what: str, *, upper: int) -> int:
    """A decimal string (or number) of dollars or shares -> integer micro-units, exactly, within [0, upper]."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FrameError(f"{what} is not a number: {str(value)[:40]!r}")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise FrameError(f"{what} is not a number: {str(value)[:40]!r}") from None
    if not d.is_finite():
        raise FrameError(f"{what} is not finite")
    scaled = d * MICRO
    if scaled != scaled.to_integral_value():
        raise FrameError(f"{what} {value} has more than 6 decimals")
    n = int(scaled)
    if not 0 <= n <= upper:
        raise FrameError(f"{what} {value} out of range")
    return n


def _str(ev: dict, key: str) -> str:
    v = ev.get(key)
    if not isinstance(v, str) or not v:
        raise FrameError(f"{key} missing")
    return v


def _seconds(value: Any) -> int:
    """match_time as unix seconds (seconds or milliseconds on the wire; 0 when absent or unreadable)."""
    try:
        n = int(str(value))
    except ValueError:
        return 0
    return n // 1000 if n > 10**11 else n


class _Order:
    __slots__ = ("acked_seq", "client_id", "filled", "never_landed", "order_hash", "side", "size", "state", "token_id")

    def __init__(self, client_id: str, token_id: str, side: str, size: int) -> None:
        self.client_id = client_id
        self.token_id = token_id
        self.side = side
        self.size = size
        self.order_hash = ""
        self.state = "intent"
        """intent -> signed -> live | matched | unknown -> done."""
        self.filled = 0
        self.acked_seq = 0
        self.never_landed = False


class LiveExec:
    """Pure core actor ``exec`` for live trading. See the module docstring."""

    name: ClassVar[str] = "exec"
    consumes: ClassVar[tuple[type[Event], ...]] = (
        RunStarted,
        LiveIdentity,
        StartupCleanup,
        OrderIntent,
        OrderSigned,
        ExchangeReply,
        UserFrame,
        UserStatus,
        ReconcileStarted,
        OpenOrdersSnapshot,
    )

    def __init__(self, params: CoreParams) -> None:
        self.params = params
        self.start_s = 0
        self.address = ""
        self.makers: tuple[str, ...] = ()
        self.key_id = ""
        self._orders: OrderedDict[str, _Order] = OrderedDict()
        self._by_hash: OrderedDict[str, str] = OrderedDict()
        self._foreign: OrderedDict[str, None] = OrderedDict()
        self._fills: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._counted: OrderedDict[tuple[str, str], int] = OrderedDict()
        """(trade id, client id) -> size counted into ``filled`` (MATCHED or CONFIRMED, once; FAILED takes it out)."""
        self._fences: OrderedDict[str, int] = OrderedDict()
        self.killed = ""
        self.frames = 0
        self.errors = 0

    # ------------------------------------------------------------------ read-only views (tests, proofs)
    def order_state(self, client_id: str) -> tuple[str, str, int] | None:
        """(state, order hash, filled) of an order this actor follows, or None."""
        o = self._orders.get(client_id)
        return None if o is None else (o.state, o.order_hash, o.filled)

    def client_of(self, order_hash: str) -> str | None:
        return self._by_hash.get(order_hash)

    # ------------------------------------------------------------------ step
    def step(self, seq: int, env: Envelope) -> list[Event]:
        ev = env.ev
        out: list[Event] = []
        if isinstance(ev, UserFrame):
            self._on_frame(ev, out)
        elif isinstance(ev, ExchangeReply):
            self._on_reply(seq, ev)
        elif isinstance(ev, OrderIntent):
            if env.src == "orders":
                self._remember(ev.client_id, _Order(ev.client_id, ev.token_id, ev.side, ev.size))
        elif isinstance(ev, OrderSigned):
            o = self._orders.get(ev.client_id)
            if o is not None:
                o.order_hash = ev.order_hash
                if o.state == "intent":
                    o.state = "signed"
            self._map(ev.order_hash, ev.client_id)
        elif isinstance(ev, ReconcileStarted):
            self._fences[ev.fence] = seq
            while len(self._fences) > 1000:
                self._fences.popitem(last=False)
        elif isinstance(ev, OpenOrdersSnapshot):
            self._on_snapshot(ev, out)
        elif isinstance(ev, RunStarted):
            self.start_s = env.ts_ns // 10**9
        elif isinstance(ev, LiveIdentity):
            self.address = ev.address.lower()
            self.makers = tuple(a.lower() for a in (ev.address, ev.funder) if a)
            self.key_id = ev.key_id
        elif isinstance(ev, StartupCleanup):
            for oid in ev.found:
                self._foreign[oid] = None
            while len(self._foreign) > MEMORY:
                self._foreign.popitem(last=False)
        return out

    # ------------------------------------------------------------------ bookkeeping
    def _remember(self, client_id: str, o: _Order) -> None:
        self._orders[client_id] = o
        while len(self._orders) > MEMORY:
            self._orders.popitem(last=False)

    def _map(self, order_hash: str, client_id: str) -> None:
        if order_hash:
            self._by_hash[order_hash] = client_id
            while len(self._by_hash) > MEMORY:
                self._by_hash.popitem(last=False)

    def _kill(self, detail: str, out: list[Event]) -> None:
        if self.killed:
            return
        self.killed = detail
        out.append(KillSwitch(reason="unknown_order", detail=detail[:500]))

    def _on_reply(self, seq: int, ev: ExchangeReply) -> None:
        o = self._orders.get(ev.client_id)
        if ev.order_id:
            self._map(ev.order_id, ev.client_id)
        if o is None:
            return
        if ev.order_id and not o.order_hash:
            o.order_hash = ev.order_id
        if ev.op == "place":
            if ev.status in ("rejected", "unmatched"):
                o.state = "done"
                o.never_landed = ev.status == "rejected" and ev.message.startswith(NEVER_LANDED)
            elif ev.status == "unknown" or not ev.ok:
                if o.state != "done":
                    o.state = "unknown"
            elif ev.status in _ACKED or ev.ok:
                if o.state != "done":
                    o.state = "live"
                    if not o.acked_seq:
                        o.acked_seq = seq
        elif ev.op == "cancel" and ev.ok and ev.status in ("cancelled", "canceled"):
            o.state = "done"

    # ------------------------------------------------------------------ the user channel
    def _on_frame(self, ev: UserFrame, out: list[Event]) -> None:
        text = ev.text.strip()
        if text in ("PONG", "PING", ""):
            return
        self.frames += 1
        try:
            obj = msgspec.json.decode(text)
        except msgspec.DecodeError as exc:
            self._error(ev.conn, f"not JSON: {str(exc).splitlines()[0][:120]}", text, out)
            return
        items = obj if isinstance(obj, list) else [obj]
        for item in items:
            if not isinstance(item, dict):
                self._error(ev.conn, "event is not an object", text, out)
                continue
            kind = item.get("event_type")
            try:
                if kind == "trade":
                    self._on_trade(item, out)
                elif kind == "order":
                    self._on_order(item, out)
                else:
                    self._error(ev.conn, f"unknown event_type {str(kind)[:40]!r}", text, out)
            except FrameError as exc:
                self._error(ev.conn, f"{kind} event: {exc}", text, out)

    def _error(self, conn: int, reason: str, text: str, out: list[Event]) -> None:
        self.errors += 1
        out.append(UserFrameError(conn=conn, reason=reason[:200], excerpt=text[:EXCERPT]))

    def _ours(self, owner: Any, maker_address: Any) -> bool:
        """A row that belongs to our account: by API key (its stand-in, as the edges journal it, or the raw key,
        as journals before the stand-in hold it) or by maker address."""
        if isinstance(owner, str) and owner and self.key_id and (
            owner == KEY_STAND_IN + self.key_id or key_id(owner) == self.key_id
        ):
            return True
        return isinstance(maker_address, str) and maker_address.lower() in self.makers

    def _on_trade(self, ev: dict, out: list[Event]) -> None:
        trade_id = _str(ev, "id")
        venue_status = _str(ev, "status").upper()
        status = STATUS_MAP.get(venue_status)
        if status is None:
            raise FrameError(f"unknown trade status {venue_status[:20]!r}")
        match_s = _seconds(ev.get("match_time", ev.get("matchtime", 0)))
        rows = ev.get("maker_orders") or []
        if not isinstance(rows, list):
            raise FrameError("maker_orders is not a list")
        fills: list[Fill] = []
        for row in rows:
            if not isinstance(row, dict):
                raise FrameError("a maker_orders row is not an object")
            oid = row.get("order_id")
            client = self._by_hash.get(oid) if isinstance(oid, str) else None
            if client is None:
                if self._ours(row.get("owner"), row.get("maker_address")) and not self._history(oid, match_s):
                    self._kill(f"trade {trade_id[:64]} fills order {str(oid)[:80]} of our account that we never signed", out)
                continue
            fills.append(Fill(
                client_id=client,
                token_id=_str(row, "asset_id"),
                side=self._side(row.get("side")),
                price=_micro(row.get("price"), "price", upper=MICRO),
                size=_micro(row.get("matched_amount"), "matched_amount", upper=10**15),
                trade_id=trade_id,
                status=status,  # type: ignore[arg-type]
            ))
        taker = ev.get("taker_order_id")
        client = self._by_hash.get(taker) if isinstance(taker, str) else None
        if client is not None:
            fills.append(Fill(
                client_id=client,
                token_id=_str(ev, "asset_id"),
                side=self._side(ev.get("side")),
                price=_micro(ev.get("price"), "price", upper=MICRO),
                size=_micro(ev.get("size"), "size", upper=10**15),
                trade_id=trade_id,
                status=status,  # type: ignore[arg-type]
            ))
        elif ev.get("trader_side") == "TAKER" and self._ours(ev.get("owner"), ev.get("maker_address")) and not self._history(
            taker, match_s
        ):
            self._kill(f"trade {trade_id[:64]} was taken by order {str(taker)[:80]} of our account that we never signed", out)
        for f in fills:
            if f.size == 0:
                continue
            key = (f.trade_id, f.client_id, f.status)
            if key in self._fills:
                continue
            self._fills[key] = None
            while len(self._fills) > MEMORY:
                self._fills.popitem(last=False)
            self._count(f)
            out.append(f)

    def _history(self, order_id: Any, match_s: int) -> bool:
        """An order an earlier run left, or a trade matched before this run started: not ours to judge."""
        return (isinstance(order_id, str) and order_id in self._foreign) or (0 < match_s < self.start_s)

    @staticmethod
    def _side(value: Any) -> str:
        if value not in ("BUY", "SELL"):
            raise FrameError(f"side {str(value)[:10]!r}")
        return value

    def _count(self, f: Fill) -> None:
        o = self._orders.get(f.client_id)
        key = (f.trade_id, f.client_id)
        if f.status == "FAILED":
            n = self._counted.pop(key, 0)
            if o is not None:
                o.filled -= n
            return
        if key in self._counted:
            return
        self._counted[key] = f.size
        while len(self._counted) > MEMORY:
            self._counted.popitem(last=False)
        if o is not None:
            o.filled += f.size

    def _on_order(self, ev: dict, out: list[Event]) -> None:
        oid = _str(ev, "id")
        kind = str(ev.get("type", "")).upper()
        status = str(ev.get("status", "")).upper()
        client = self._by_hash.get(oid)
        o = self._orders.get(client) if client is not None else None
        if kind == "CANCELLATION" or status in ("CANCELED", "CANCELLED"):
            if o is not None and o.state != "done":
                o.state = "done"
                out.append(ExchangeReply(client_id=o.client_id, op="cancel", ok=True, order_id=oid, status="cancelled",
                                         message="venue: cancelled"))
            return
        resting = kind == "PLACEMENT" or status == "LIVE"
        if not resting:
            return
        if client is None:
            if oid not in self._foreign:
                self._kill(f"the venue reports order {oid[:80]} of our account that we never signed", out)
        elif o is not None and o.never_landed:
            self._kill(f"order {client} ({oid[:80]}) was concluded never to have landed, but it rests", out)

    # ------------------------------------------------------------------ reconciliation
    def _on_snapshot(self, ev: OpenOrdersSnapshot, out: list[Event]) -> None:
        fence = self._fences.pop(ev.fence, None)
        listed: dict[str, None] = dict.fromkeys(ev.order_ids)
        for oid in ev.order_ids:
            client = self._by_hash.get(oid)
            if client is None:
                if oid not in self._foreign:
                    self._kill(f"the venue lists open order {oid[:80]} of our account that we never signed", out)
                continue
            o = self._orders.get(client)
            if o is not None and o.never_landed:
                self._kill(f"order {client} ({oid[:80]}) was concluded never to have landed, but it is open", out)
        if fence is None or not ev.complete:
            return
        for o in list(self._orders.values()):
            if o.state != "live" or not o.acked_seq or o.acked_seq >= fence or o.order_hash in listed:
                continue
            o.state = "done"
            if o.filled >= o.size:
                continue
            out.append(ExchangeReply(client_id=o.client_id, op="cancel", ok=True, order_id=o.order_hash,
                                     status="cancelled",
                                     message=f"absent from the venue's open orders ({ev.source or 'reconcile'})"))
