"""Live-trading events (family owned by the live executor, the user channel, the heartbeat and preflight).

Everything the exchange says in a live session enters the journal once, as an input from an edge, in the form it
arrived or as close to it as a sink can record it:

- the user channel's frames, raw (``UserFrame``), its connection changes (``UserStatus``) and its REST
  reconciliation (``ReconcileStarted`` then ``OpenOrdersSnapshot``; the trades come as ``UserFrame`` in the
  channel's own JSON shape);
- what the executor signed (``OrderSigned``: the order hash, salt and timestamp it chose) and what the exchange
  replied (``events.orders.ExchangeReply``);
- the heartbeat and the geoblock re-check (``HeartbeatStatus``, ``GeoblockStatus``; a failure also comes as a
  ``KillSwitch`` input);
- the session's start: who trades (``LiveIdentity``, with a hash of the API key, never the key or a secret), the
  preflight results (``PreflightCheck``), the cleanup of orders an earlier run left (``StartupCleanup``) and the
  outcome tokens the wallet already holds (``StartingInventory``).

The live core executor (``actors.core.live``) turns these into the shared vocabulary (``Fill``,
``ExchangeReply``, ``KillSwitch``); ``UserFrameError`` is its parse-error report. No event here ever holds a
private key, an API secret or a passphrase.
"""
from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from events.base import Event, Price, Record, Seq, Side, Size

ConnState = Literal["connecting", "connected", "disconnected"]
Salt = Annotated[int, Meta(ge=0, le=2**53 - 1)]
TimestampMs = Annotated[int, Meta(ge=0, le=10**15)]


class LiveIdentity(Event, tag="lid"):
    """Who trades in this live session (second input, after ``RunStarted``). Holds no secret."""

    address: str
    """The signing EOA (checksum form)."""
    funder: str = ""
    """The maker address when it is not the EOA (signature types 1-3), else empty."""
    key_id: str = ""
    """First 16 hex digits of sha256(API key): lets the core tell our rows by ``owner`` without the key itself."""
    chain_id: int = 137
    signature_type: int = 0
    exchange: str = ""
    """Base URL of the exchange (no credentials in it)."""


class PreflightCheck(Event, tag="lpf"):
    """One preflight check and its verdict (``pmm preflight``, and the first thing ``pmm live`` does)."""

    name: str
    ok: bool
    detail: str = ""


class StartupCleanup(Event, tag="lsc"):
    """Orders of this wallet found open at start (an earlier run's), what was cancelled and what is left.

    ``ok`` is true only when nothing is left open; otherwise the session refuses to start.
    """

    found: tuple[str, ...]
    cancelled: tuple[str, ...]
    remaining: tuple[str, ...]
    ok: bool
    detail: str = ""


class TokenBalance(Record):
    """How many shares of one outcome token (micro-shares)."""

    token_id: str
    balance: Size


class StartingInventory(Event, tag="lsi"):
    """The outcome tokens the wallet holds at start (the venue's ``GET /balance-allowance?asset_type=CONDITIONAL``
    of every allow-listed token, read after the startup cleanup), journaled right after ``StartupCleanup``.

    ``ok``: every balance was read and agrees with what the previous run of this wallet ended with (``expected``,
    from its journal ``expected_run``) within ``tolerance``, or the operator accepted the difference. The risk gate
    and the portfolio start from ``balances`` (docs/live.md, "Starting inventory"), and the gate's stale-feed clock
    starts only when the market feed starts. Not ok: the session refuses to start (``detail`` says why); the gate
    halts. Absent (paper runs, journals recorded before it existed): every position starts at 0, as before.
    """

    balances: tuple[TokenBalance, ...]
    ok: bool = True
    detail: str = ""
    expected: tuple[TokenBalance, ...] = ()
    """The positions the previous run of this wallet (same address, funder and exchange) ended with, where known."""
    expected_run: str = ""
    """The run id of that run ("" when none is known)."""
    tolerance: Size = 0
    """The allowed difference per token (``live.position_tolerance``)."""


class OrderSigned(Event, tag="lsg"):
    """The executor signed the order of ``client_id`` (journaled before it is sent): hash <-> client id."""

    client_id: str
    intent_seq: Seq
    order_hash: str
    salt: Salt
    timestamp_ms: TimestampMs
    token_id: str = ""
    side: Side = "BUY"
    price: Price = 0
    size: Size = 0
    """Effective size (rounded down to 2 decimals, as signed)."""
    neg_risk: bool = False


class UserFrame(Event, tag="luf"):
    """One raw text frame of the user channel (or a ``/data/trades`` row in the channel's ``trade`` shape)."""

    conn: int
    text: str


class UserStatus(Event, tag="lus"):
    """The user-channel connection changed state."""

    conn: int
    state: ConnState
    detail: str = ""


class ReconcileStarted(Event, tag="lrs"):
    """A fetch of the venue's open orders starts now (the fence of the ``OpenOrdersSnapshot`` that follows).

    Only orders acknowledged before this record can be judged by that snapshot: an order acknowledged later may
    have landed after the fetch.
    """

    fence: str
    source: str = ""


class OpenOrdersSnapshot(Event, tag="loo"):
    """The order ids the venue listed as open for our address, fetched after ``ReconcileStarted(fence)``."""

    fence: str
    order_ids: tuple[str, ...]
    source: str = ""
    complete: bool = True
    """False when the listing could not be read completely: nothing is concluded from absence then."""


class HeartbeatStatus(Event, tag="lhb"):
    """The heartbeat (dead-man switch) chain became healthy or failed."""

    ok: bool
    detail: str = ""
    beats: int = 0


class GeoblockStatus(Event, tag="lgb"):
    """A geoblock re-check during the session. ``ok`` false: blocked, or the check failed (fail closed)."""

    ok: bool
    blocked: bool = False
    detail: str = ""


class UserFrameError(Event, tag="lpe"):
    """A user-channel frame (or part of one) could not be understood. Counted, never fatal by itself."""

    conn: int
    reason: str
    excerpt: str = ""
