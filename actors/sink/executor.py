"""The live executor (a sink): the only code that sends orders to the exchange.

Work comes only from ``ApprovedActions`` (``actors.sink.gate``): a place exists only for a ``RiskApproved`` from
the risk gate naming an ``OrderIntent``; cancels and cancel-alls likewise. Everything the exchange answers comes
back as journaled inputs (source ``exec``): ``OrderSigned``, ``ExchangeReply``, and for cancel-alls
``ReconcileStarted`` + ``OpenOrdersSnapshot``. The live core executor (``actors.core.live``) reads them.

Places
- Write-ahead: before a place is sent, the record of its approval (and so its intent) is durable
  (``await journal.durable(seq)``). Cancels never wait for the disk.
- Salt (``secrets``) and timestamp (wall clock, ms) are chosen here, the order signed with ``OrderSigner``
  (tick from the book's latest ``BookChanged``, neg-risk from discovery) and ``OrderSigned`` emitted BEFORE the
  request, so every venue message about the hash can be tied to its client id.
- Places that are ready together go in one ``POST /orders`` (at most 15), a single one in ``POST /order``.
  Token buckets keep us below the venue's per-signer limits (orders 30/s burst 45; cancels 60/s burst 90,
  against documented 40/60 and 80/120).
- Each reply becomes an ``ExchangeReply(op="place")`` with ``order_id`` = the order hash and the venue's status
  (live, matched, delayed, unmatched), or ``ok=False, status="rejected"`` with the venue's message.
- 425 (engine restart, ~90 s): nothing is sent for 1, 2, 4, 8, 16, 30, 30, 30 s (all orders wait), each time
  retrying the same signed orders; after that they are rejected (``ok=False``). Cancels wait out a 425 likewise.
  429: wait ``Retry-After``, at most 3 times.
- Unknown outcome (timeout, connection error, 500/502/504, an unreadable 200): ``ExchangeReply(status="unknown",
  ok=False)``, then ``GET /data/order/{hash}`` until resolved: found -> a live/matched reply (a cancelled one ->
  live, then cancelled); not found 3 times -> ``rejected`` with message "never landed". Until then every later
  place on that token is held (the order manager and risk gate block it too).
- A place is not sent (``ok=True, status="rejected"``, "not sent: ...") while ``LiveHealth`` says the user
  channel, the heartbeat or the geoblock is not healthy, or after a cancel-all.

Cancels: wait until the order's place has an outcome (a cancel of a place still queued or in retry withdraws it:
``status="unmatched"``, "withdrawn"), then ``DELETE /order``; transient failures are retried 3 times. "already
cancelled / not found" is reported as cancelled (the venue says it is not open); "matched", and any reason not
understood, as a failed cancel with ``status="not_canceled"`` and the venue's reason (the risk gate does not count
a lost race as an exchange error: ``actors.core.risk.lost_cancel_race``).

Cancel-all (``CancelAll`` from the risk gate): no place leaves any more; ``DELETE /cancel-all``; wait (bounded)
for places in flight; then confirm: ``ReconcileStarted`` + ``GET /data/orders``, cancel whatever is still open,
up to 5 rounds; ``OpenOrdersSnapshot`` of what is left; ``ExchangeReply(op="cancel_all", ok=<nothing left>)``.

Every failed call becomes an ``ExchangeReply(ok=False, ...)``, which the risk gate's error-rate breaker counts.
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import trio

from actors.core.live import NEVER_LANDED
from actors.core.risk import NOT_CANCELED
from actors.edge.clock import Emit
from actors.edge.exchange import (
    ExchangeError,
    ExchangeRest,
    LiveHealth,
    cancel_result,
    describe,
    error_text,
    retry_after_s,
)
from actors.edge.signing import TICKS_MICRO, OrderSigner, SignatureError, SignedOrder, order_body, serialize_body
from actors.sink.gate import ApprovedActions
from events.codec import Envelope
from events.control import GuardViolation
from events.live import OpenOrdersSnapshot, OrderSigned, ReconcileStarted
from events.market import BookChanged
from events.orders import CancelAll, CancelIntent, ExchangeReply, OrderIntent, RiskApproved, RiskReject

MAX_BATCH = 15
MAX_SALT = 2**53 - 1
PLACES_MEMORY = 20_000


def gone_reason(reason: str) -> bool:
    """A ``not_canceled`` reason that says the order is not open any more and was not matched: it counts as
    cancelled. "matched" (even "already canceled or matched") is a failed cancel: fills may follow. Any other
    reason is a failed cancel too (fail closed: the order may still be open)."""
    low = reason.lower()
    return "match" not in low and any(w in low for w in ("not found", "already canceled", "already cancelled"))


class Durable(Protocol):
    async def durable(self, seq: int) -> None: ...


@dataclass
class ExecutorSettings:
    order_timeout_s: float = 5.0
    cancel_timeout_s: float = 5.0
    resolve_not_found: int = 3
    """"Not found" answers (one per ``resolve_interval_s``) before an unknown order is concluded never landed."""
    resolve_interval_s: float = 1.0
    resolve_backoff_max_s: float = 10.0
    engine_backoff_s: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0)
    """Waits after successive 425s (matching-engine restart, ~90 s): about 2 minutes in all, then give up."""
    rate_limit_retries: int = 3
    cancel_retries: int = 3
    orders_per_s: float = 30.0
    order_burst: int = 45
    cancels_per_s: float = 60.0
    cancel_burst: int = 90
    settle_wait_s: float = 30.0
    """A cancel-all waits this long for places in flight (and unknown outcomes) before confirming."""
    confirm_rounds: int = 5


class AsyncBucket:
    """Token bucket on trio's clock: ``await take(n)`` waits until n tokens are there."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.t = trio.current_time()

    def _refill(self) -> None:
        now = trio.current_time()
        self.tokens = min(float(self.burst), self.tokens + (now - self.t) * self.rate)
        self.t = now

    async def take(self, n: int = 1) -> None:
        n = min(n, self.burst)
        while True:
            self._refill()
            if self.tokens >= n:
                self.tokens -= n
                return
            await trio.sleep((n - self.tokens) / self.rate)


@dataclass(eq=False)
class _Place:
    client_id: str
    intent: OrderIntent
    seq: int
    """Seq of the approval record (durable before sending)."""
    intent_seq: int
    state: str = "queued"
    """queued -> sending -> (retrying) -> settled."""
    outcome: str = ""
    """live | matched | done (rejected, unmatched, withdrawn, never landed, cancelled)."""
    order_hash: str = ""
    signed: SignedOrder | None = None
    withdraw: bool = False
    cancelled: bool = False
    settled: trio.Event = field(default_factory=trio.Event)


class LiveExecutor:
    """The live executor sink. ``run(records)`` until cancelled; ``cancel_all_done`` is set after each cancel-all."""

    def __init__(
        self,
        rest: ExchangeRest,
        emit: Emit,
        *,
        journal: Durable,
        markets: dict[str, tuple[int, bool]],
        health: LiveHealth,
        settings: ExecutorSettings | None = None,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        salt: Callable[[], int] = lambda: secrets.randbelow(MAX_SALT + 1),
    ) -> None:
        self.rest = rest
        self.signer: OrderSigner = rest.signer
        self.emit = emit
        self.journal = journal
        self._ticks = {t: tick for t, (tick, _) in markets.items()}
        self._neg = {t: nr for t, (_, nr) in markets.items()}
        self.health = health
        self.s = settings or ExecutorSettings()
        self.wall_ms = wall_ms
        self.salt = salt
        self.gate = ApprovedActions()
        self._violations = 0
        self._queue: list[_Place] = []
        self._places: dict[str, _Place] = {}
        self._held: dict[str, int] = {}
        self._wake = trio.Event()
        self._engine_until = 0.0
        self._orders = AsyncBucket(self.s.orders_per_s, self.s.order_burst)
        self._cancels = AsyncBucket(self.s.cancels_per_s, self.s.cancel_burst)
        self._cancel_all_lock = trio.Lock()
        self._fences = 0
        self.halted = False
        self.cancel_all_done = trio.Event()
        self.cancel_all_ok: bool | None = None
        self.posts = 0
        self._nursery: trio.Nursery | None = None

    # ------------------------------------------------------------------ following the journal
    @staticmethod
    def wants(env: Envelope) -> bool:
        return isinstance(env.ev, (OrderIntent, CancelIntent, RiskApproved, RiskReject, CancelAll, BookChanged,
                                   ExchangeReply))

    async def run(self, records: trio.MemoryReceiveChannel, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as n:
            self._nursery = n
            n.start_soon(self._placer)
            task_status.started()
            async with records:
                async for seq, env in records:
                    self._on_record(seq, env)
            n.cancel_scope.cancel()

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(fn, *args)

    def _on_record(self, seq: int, env: Envelope) -> None:
        ev = env.ev
        if isinstance(ev, BookChanged):
            if ev.tick in TICKS_MICRO:
                self._ticks[ev.token_id] = ev.tick
            return
        if isinstance(ev, ExchangeReply):  # e.g. the core saw the venue cancel it (user channel): no DELETE needed
            if ev.op == "cancel" and ev.ok and ev.status == "cancelled":
                p = self._places.get(ev.client_id)
                if p is not None:
                    p.cancelled = True
            return
        action = self.gate.feed(seq, env)
        while self._violations < len(self.gate.violations):
            detail = self.gate.violations[self._violations]
            self._violations += 1
            self._spawn(self.emit, "exec", GuardViolation(seq=seq, detail=detail[:500]))
        if action is None:
            return
        kind, intent_seq, it = action
        if kind == "place":
            assert isinstance(it, OrderIntent)
            p = _Place(it.client_id, it, seq, intent_seq)
            self._places[it.client_id] = p
            if len(self._places) > PLACES_MEMORY:
                self._prune()
            if self.halted:
                self._spawn(self._finish, p, self._withdrawn("after a cancel-all"))
                return
            self._queue.append(p)
            self._wake.set()
        elif kind == "cancel":
            assert isinstance(it, CancelIntent)
            self._spawn(self._cancel, it.client_id)
        else:
            assert isinstance(it, CancelAll)
            self._spawn(self._cancel_all, f"cancel-all: {it.reason}")

    def _prune(self) -> None:
        """Forget the oldest places that are over (settled, and not live or cancelled since)."""
        drop = len(self._places) - PLACES_MEMORY // 2
        for cid in list(self._places):
            if drop <= 0:
                break
            p = self._places[cid]
            if p.settled.is_set() and (p.outcome != "live" or p.cancelled):
                del self._places[cid]
                drop -= 1

    # ------------------------------------------------------------------ replies
    async def _reply(self, **kw: Any) -> None:
        await self.emit("exec", ExchangeReply(**kw))

    def _withdrawn(self, why: str) -> ExchangeReply:
        return ExchangeReply(client_id="", op="place", ok=True, status="unmatched", message=f"withdrawn before it was sent: {why}")

    async def _finish(self, p: _Place, reply: ExchangeReply | None, outcome: str = "done") -> None:
        """Settle a place: emit its final reply (if any) and wake everyone waiting for it."""
        if p.settled.is_set():
            return
        p.state, p.outcome = "settled", outcome
        if reply is not None:
            if not reply.client_id:
                reply = ExchangeReply(client_id=p.client_id, op=reply.op, ok=reply.ok, order_id=p.order_hash,
                                      status=reply.status, message=reply.message)
            await self.emit("exec", reply)
        p.settled.set()
        self._wake.set()

    # ------------------------------------------------------------------ places
    def _ready(self) -> list[_Place]:
        batch: list[_Place] = []
        for p in self._queue:
            if self._held.get(p.intent.token_id, 0) == 0:
                batch.append(p)
                if len(batch) == MAX_BATCH:
                    break
        return batch

    async def _placer(self) -> None:
        while True:
            batch = self._ready()
            if not batch:
                self._wake = trio.Event()
                await self._wake.wait()
                continue
            if trio.current_time() < self._engine_until:
                await trio.sleep_until(self._engine_until)
                continue
            n, quiet = len(self._queue), 0
            for _ in range(20):  # let the rest of this cascade's approvals arrive: they go in the same batch
                await trio.lowlevel.checkpoint()
                quiet = quiet + 1 if len(self._queue) == n else 0
                n = len(self._queue)
                if quiet >= 3:
                    break
            batch = self._ready()
            if not batch:
                continue
            for p in batch:
                self._queue.remove(p)
                p.state = "sending"
            await self._send(batch)

    async def _send(self, batch: list[_Place]) -> None:
        why = self.health.why_not() or ("a cancel-all was issued" if self.halted else "")
        if why:
            for p in batch:
                await self._finish(p, ExchangeReply(client_id=p.client_id, op="place", ok=True, status="rejected",
                                                    message=f"not sent: {why}"))
            return
        await self.journal.durable(max(p.seq for p in batch))
        await self._orders.take(len(batch))
        ready: list[_Place] = []
        for p in batch:
            if p.withdraw or self.halted:
                await self._finish(p, self._withdrawn("cancelled"))
                continue
            it = p.intent
            try:
                signed = self.signer.build_order(
                    it.token_id, it.side, price_micro=it.price, size_micro=it.size,
                    tick_micro=self._ticks.get(it.token_id, 10_000), neg_risk=self._neg.get(it.token_id, False),
                    salt=self.salt(), timestamp_ms=self.wall_ms(),
                )
            except SignatureError as exc:
                await self._finish(p, ExchangeReply(client_id=p.client_id, op="place", ok=False, status="rejected",
                                                    message=f"not signed: {exc}"))
                continue
            p.signed, p.order_hash = signed, signed.order_hash
            await self.emit("exec", OrderSigned(
                client_id=p.client_id, intent_seq=p.intent_seq, order_hash=signed.order_hash, salt=signed.salt,
                timestamp_ms=signed.timestamp_ms, token_id=it.token_id, side=it.side, price=it.price,
                size=signed.size_micro, neg_risk=signed.neg_risk,
            ))
            ready.append(p)
        if ready:
            await self._post(ready)

    def _body(self, batch: list[_Place]) -> tuple[str, str]:
        bodies = [order_body(p.signed, self.rest.creds.api_key, "GTC", post_only=p.intent.post_only) for p in batch]  # type: ignore[arg-type]
        if len(bodies) == 1:
            return "/order", serialize_body(bodies[0])
        return "/orders", serialize_body(bodies)

    async def _post(self, batch: list[_Place]) -> None:
        engine_tries = 0
        limited = 0
        while batch:
            path, body = self._body(batch)
            self.posts += 1
            try:
                r = await self.rest.request("POST", path, body, wait_s=self.s.order_timeout_s)
            except httpx.HTTPError as exc:
                await self._unknown(batch, f"no answer to POST {path}: {describe(exc)}")
                return
            if r.status_code == 200:
                try:
                    reply = r.json()
                except ValueError:
                    await self._unknown(batch, f"POST {path}: unreadable reply")
                    return
                items = [reply] if path == "/order" else reply
                if not isinstance(items, list) or len(items) != len(batch):
                    await self._unknown(batch, f"POST {path}: reply does not answer every order")
                    return
                for p, item in zip(batch, items, strict=True):
                    await self._answer(p, item)
                return
            status = r.status_code
            if status == 425 and engine_tries < len(self.s.engine_backoff_s):
                delay = self.s.engine_backoff_s[engine_tries]
                engine_tries += 1
                self._engine_until = max(self._engine_until, trio.current_time() + delay)
                await trio.sleep(delay)
            elif status == 429 and limited < self.s.rate_limit_retries:
                limited += 1
                await trio.sleep(min(retry_after_s(r), 60.0))
            elif status in (500, 502, 504):
                await self._unknown(batch, f"POST {path}: HTTP {status} {error_text(r)}")
                return
            else:
                msg = f"HTTP {status} {error_text(r)}"
                for p in batch:
                    await self._finish(p, ExchangeReply(client_id=p.client_id, op="place", ok=False, status="rejected",
                                                        order_id=p.order_hash, message=msg))
                return
            keep = []
            for p in batch:  # withdrawn while waiting: never accepted, so never sent again
                if p.withdraw or self.halted:
                    await self._finish(p, self._withdrawn("cancelled during a retry"))
                else:
                    keep.append(p)
            batch = keep

    async def _answer(self, p: _Place, item: Any) -> None:
        if not isinstance(item, dict):
            await self._unknown([p], "reply item is not an object")
            return
        err = item.get("errorMsg") or item.get("error") or ""
        oid = item.get("orderID") or ""
        if err or item.get("success") is False or not oid:
            await self._finish(p, ExchangeReply(client_id=p.client_id, op="place", ok=False, status="rejected",
                                                order_id=p.order_hash, message=str(err or "no order id")[:300]))
            return
        status = str(item.get("status") or "live").lower()
        note = "" if oid == p.order_hash else f"venue order id differs from our hash {p.order_hash}"
        if oid != p.order_hash:
            p.order_hash = oid
        outcome = "done" if status == "unmatched" else "live"
        await self._finish(p, ExchangeReply(client_id=p.client_id, op="place", ok=True, order_id=oid, status=status,
                                            message=note), outcome)

    # ------------------------------------------------------------------ unknown outcomes
    async def _unknown(self, batch: list[_Place], why: str) -> None:
        for p in batch:
            p.state = "unknown"
            self._held[p.intent.token_id] = self._held.get(p.intent.token_id, 0) + 1
            await self._reply(client_id=p.client_id, op="place", ok=False, order_id=p.order_hash, status="unknown",
                              message=why[:300])
            self._spawn(self._resolve, p)

    async def _resolve(self, p: _Place) -> None:
        token = p.intent.token_id
        try:
            not_found = 0
            backoff = self.s.resolve_interval_s
            while True:
                try:
                    o = await self.rest.order(p.order_hash, wait_s=self.s.order_timeout_s)
                except ExchangeError:
                    await trio.sleep(backoff)
                    backoff = min(backoff * 2, self.s.resolve_backoff_max_s)
                    continue
                if o is None:
                    not_found += 1
                    if not_found >= self.s.resolve_not_found:
                        await self._finish(p, ExchangeReply(
                            client_id=p.client_id, op="place", ok=False, order_id=p.order_hash, status="rejected",
                            message=f"{NEVER_LANDED}: the venue does not know order {p.order_hash}"))
                        return
                    await trio.sleep(self.s.resolve_interval_s)
                    continue
                venue = str(o.get("status", "")).upper()
                if venue == "MATCHED":
                    await self._finish(p, ExchangeReply(client_id=p.client_id, op="place", ok=True,
                                                        order_id=p.order_hash, status="matched",
                                                        message="resolved: found matched at the venue"), "live")
                elif venue in ("CANCELED", "CANCELLED"):
                    await self._reply(client_id=p.client_id, op="place", ok=True, order_id=p.order_hash, status="live",
                                      message="resolved: found at the venue, cancelled since")
                    p.cancelled = True
                    await self._finish(p, ExchangeReply(client_id=p.client_id, op="cancel", ok=True,
                                                        order_id=p.order_hash, status="cancelled",
                                                        message="venue: cancelled"))
                else:
                    await self._finish(p, ExchangeReply(client_id=p.client_id, op="place", ok=True,
                                                        order_id=p.order_hash, status="live",
                                                        message=f"resolved: found {venue or 'open'} at the venue"), "live")
                return
        finally:
            self._held[token] = self._held.get(token, 1) - 1
            if self._held[token] <= 0:
                del self._held[token]
            self._wake.set()

    # ------------------------------------------------------------------ cancels
    async def _cancel(self, client_id: str) -> None:
        p = self._places.get(client_id)
        if p is None:
            await self._reply(client_id=client_id, op="cancel", ok=False, message="executor never placed this order")
            return
        if p.state == "queued":
            self._queue.remove(p)
            await self._finish(p, self._withdrawn("cancelled while queued"))
            return
        p.withdraw = True
        await p.settled.wait()
        if p.outcome != "live" or p.cancelled:
            return
        await self._cancels.take(1)
        await self._delete([p])

    async def _delete(self, batch: list[_Place]) -> None:
        ids = [p.order_hash for p in batch]
        last = ""
        tries = engine = 0
        while True:
            try:
                res = await self.rest.cancel_orders(ids, wait_s=self.s.cancel_timeout_s)
            except ExchangeError as exc:
                last = str(exc)
                if exc.status == 425 and engine < len(self.s.engine_backoff_s):  # engine restart: wait it out
                    await trio.sleep(self.s.engine_backoff_s[engine])
                    engine += 1
                    continue
                if exc.status not in (0, 429, 500, 502, 503, 504) or tries >= self.s.cancel_retries:
                    break
                await trio.sleep(exc.retry_after if exc.retry_after is not None else 2.0**tries)
                tries += 1
                continue
            canceled, not_canceled = cancel_result(res)
            for p in batch:
                await self._cancel_reply(p, p.order_hash in canceled, not_canceled.get(p.order_hash, ""))
            return
        for p in batch:
            await self._reply(client_id=p.client_id, op="cancel", ok=False, order_id=p.order_hash,
                              message=f"cancel failed: {last}"[:300])

    async def _cancel_reply(self, p: _Place, canceled: bool, reason: str) -> None:
        if canceled or gone_reason(reason):
            if p.cancelled:
                return
            p.cancelled = True
            msg = "" if canceled else f"venue: {reason}"[:300]
            await self._reply(client_id=p.client_id, op="cancel", ok=True, order_id=p.order_hash,
                              status="cancelled", message=msg)
        elif reason:  # the venue listed it under not_canceled: its reason, verbatim (the risk gate reads it)
            await self._reply(client_id=p.client_id, op="cancel", ok=False, order_id=p.order_hash,
                              status=NOT_CANCELED, message=reason[:300])
        else:
            await self._reply(client_id=p.client_id, op="cancel", ok=False, order_id=p.order_hash,
                              message="not cancelled")

    # ------------------------------------------------------------------ cancel-all
    async def _cancel_all(self, why: str) -> None:
        async with self._cancel_all_lock:
            self.halted = True
            for p in list(self._queue):
                self._queue.remove(p)
                await self._finish(p, self._withdrawn("cancel-all"))
            for p in self._places.values():
                p.withdraw = True
            ok, detail = await self._cancel_everything(why)
            await self._reply(client_id="", op="cancel_all", ok=ok, message=detail[:300])
            self.cancel_all_ok = ok
            self.cancel_all_done.set()

    async def _cancel_everything(self, why: str) -> tuple[bool, str]:
        by_hash = {p.order_hash: p for p in self._places.values() if p.order_hash}
        first = ""
        for attempt in range(self.s.cancel_retries + 1):
            try:
                res = await self.rest.cancel_all(wait_s=self.s.cancel_timeout_s)
            except ExchangeError as exc:
                first = str(exc)
                await trio.sleep(2.0**attempt)
                continue
            canceled, _ = cancel_result(res)
            for oid in canceled:
                p = by_hash.get(oid)
                if p is not None:
                    await self._cancel_reply(p, True, "")
            first = ""
            break
        with trio.move_on_after(self.s.settle_wait_s):
            for p in list(self._places.values()):
                await p.settled.wait()
        remaining: list[str] = []
        complete = False
        fence = ""
        for _ in range(self.s.confirm_rounds):
            self._fences += 1
            fence = f"exec:{self._fences}"
            await self.emit("exec", ReconcileStarted(fence=fence, source="cancel_all"))
            try:
                rows = await self.rest.open_orders()
            except ExchangeError as exc:
                first = first or str(exc)
                complete = False
                await trio.sleep(1.0)
                continue
            complete = True
            remaining = [str(r.get("id")) for r in rows if r.get("id")]
            if not remaining:
                break
            by_hash = {p.order_hash: p for p in self._places.values() if p.order_hash}
            for i in range(0, len(remaining), 3000):
                chunk = remaining[i:i + 3000]
                try:
                    res = await self.rest.cancel_orders(chunk, wait_s=self.s.cancel_timeout_s)
                except ExchangeError as exc:
                    first = first or str(exc)
                    continue
                canceled, _ = cancel_result(res)
                for oid in canceled:
                    p = by_hash.get(oid)
                    if p is not None:
                        await self._cancel_reply(p, True, "")
        await self.emit("exec", OpenOrdersSnapshot(fence=fence, order_ids=tuple(remaining), source="cancel_all",
                                                   complete=complete))
        if complete and not remaining:
            return True, f"{why}: confirmed, no order open"
        if not complete:
            return False, f"{why}: could not confirm ({first or 'open orders unreadable'})"
        return False, f"{why}: {len(remaining)} order(s) still open after {self.s.confirm_rounds} rounds"

    async def confirm_flat(self, why: str = "stop") -> bool:
        """The final word at stop: cancel-all again and confirm nothing of ours is open. True when confirmed."""
        await self._cancel_all(why)
        return bool(self.cancel_all_ok)
