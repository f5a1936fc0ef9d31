"""The order side of the sandbox exchange: API keys, order checks, resting and matching, balances, trades and
their settlement statuses, heartbeats, the user channel and the audit trail.

Everything here runs synchronously on the trio thread (HTTP handlers and the simulator call in), so there are no
races; time-based work (trade status changes, the heartbeat dead-man switch, GTD expiry) runs from one scheduler
task on trio's clock, so a MockClock drives it.

Units as in the rest of the sandbox: prices in pips (1e-4), sizes and amounts in micro-units (1e-6).

Books. User orders rest in the simulator's `BinaryBook` (YES terms): a BUY on the NO token at q is a YES ask at
1 - q. Each level's total (what every frame shows) = synthetic liquidity + user orders; the book also keeps the
user part (`user_bids` / `user_asks`) and the engine keeps each level's user orders in time order with the
synthetic size ahead of each (`ahead`). A taker (synthetic or ours) at a level consumes, in queue order, the
synthetic size ahead of the first user order, that order, the synthetic size between it and the next, ... and
finally the synthetic size behind everyone. Synthetic cancels take the synthetic part only (from the back first,
so `ahead` is clipped to what is left); synthetic places join behind.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import trio

from .audit import Audit
from .auth import DEFAULT_SERVER_SECRET, ApiCreds, checksum, derive_creds
from .book import BinaryBook
from .faults import POST_ONLY_MODE_MESSAGE
from .ordersig import (
    DecodedOrder,
    OrderPayloadError,
    decode_order,
    diagnose,
    digest,
    exchange_for,
    recover,
    typed_data,
)
from .userws import UserHub
from .wire import MICRO, PIPS, fmt_pips, fmt_size, tick_str

if TYPE_CHECKING:
    from .exchange import ExchangeState
    from .markets import MarketSpec
    from .sim import MarketSim

log = logging.getLogger("sandbox.orders")

LIVE, MATCHED, CANCELED = "LIVE", "MATCHED", "CANCELED"
ORDER_TYPES = ("GTC", "GTD", "FOK", "FAK")
MAX_BATCH = 15
MAX_CANCEL = 3000
GTD_MIN_LEAD_S = 60  # Polymarket's security threshold: a GTD expiration must be at least 60 s away

E_PAYLOAD = "Invalid order payload"
E_OWNER = "the order owner has to be the owner of the API KEY"
E_SIGNER = "the order signer address has to be the address of the API KEY"
E_SIGNATURE = "invalid signature"
E_NOT_READY = "the market is not yet ready to process new orders"
E_POST_ONLY_TYPE = "invalid post-only order: only GTC and GTD order types are allowed"
E_CROSSES = "invalid post-only order: order crosses book"
E_EXPIRATION = "invalid expiration"
E_BALANCE = "not enough balance / allowance"
E_FOK = "order couldn't be fully filled. FOK orders are fully filled or killed."
E_FAK = (
    "no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found."
)
E_DISABLED = "Trading is currently disabled. Check polymarket.com for updates"
NOT_FOUND = "Order not found or already canceled"
ALREADY_MATCHED = "order already matched"
MAX_ALLOWANCE = str(2**256 - 1)
NEG_RISK_ADAPTER = "0xd91E80cF2E7be2e162c6513ceD06f1dD0dA35296"


def _flip(side: str) -> str:
    return "SELL" if side == "BUY" else "BUY"


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def _dec(num: int, den: int) -> str:
    """num/den as a short decimal string (for messages)."""
    d = (Decimal(num) / Decimal(den)).quantize(Decimal("0.000001")).normalize()
    return format(d, "f")


class Reject(Exception):
    def __init__(
        self,
        message: str,
        detail: str = "",
        *,
        status: int = 400,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or message
        self.status = status
        self.extra = extra or {}
        self.headers = headers or {}


@dataclass(eq=False)
class Order:
    id: str
    api_key: str
    address: str  # the API key's address, lower-case: "the user"
    maker: str  # funder (checksummed); balances are kept per maker address
    market: str
    asset_id: str
    outcome: str
    side: str  # in the order's own token
    price: int  # pips, own token (the limit: for FOK/FAK the rounded ratio)
    num: int  # exact limit price = num / den (den = PIPS for GTC/GTD)
    den: int
    original: int  # micro-shares
    order_type: str
    post_only: bool
    expiration: int
    created_at: int  # unix s
    yes_side: str
    yes_price: int
    decoded: DecodedOrder
    matched: int = 0
    status: str = LIVE
    resting: bool = False
    ahead: int = 0  # synthetic micro-shares ahead of this order at its level
    associate_trades: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.original - self.matched

    def crosses(self, tp: int) -> bool:
        """Would this order trade against a level at token price `tp`?"""
        if self.side == "BUY":
            return tp * self.den <= self.num * PIPS
        return tp * self.den >= self.num * PIPS


@dataclass
class MakerRow:
    order: Order | None  # None = synthetic liquidity
    owner: str
    maker_address: str
    amount: int
    price: int
    asset_id: str
    outcome: str
    side: str
    deltas: tuple[int, int] = (0, 0)  # (collateral, tokens) applied to the maker's account


@dataclass
class Trade:
    id: str
    market: str
    asset_id: str  # the taker's token
    outcome: str
    side: str  # the taker's side
    size: int
    price: int
    taker_order: Order | None
    taker_order_id: str
    taker_owner: str
    taker_address: str
    rows: list[MakerRow]
    match_time: int
    tx_hash: str
    ghost: bool
    status: str = "MATCHED"
    last_update: int = 0
    taker_deltas: tuple[int, int] = (0, 0)

    def users(self) -> list[str]:
        out = []
        if self.taker_order is not None:
            out.append(self.taker_order.address)
        for r in self.rows:
            if r.order is not None and r.order.address not in out:
                out.append(r.order.address)
        return out


@dataclass
class Account:
    collateral: int
    tokens: dict[str, int] = field(default_factory=dict)


@dataclass
class HeartbeatChain:
    expected: str | None = None
    deadline: float | None = None  # trio time


class Scheduler:
    """Callbacks at trio times, run by one task (`run`)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._n = itertools.count()
        self._wake: trio.Event | None = None

    def call_at(self, t: float, fn: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._heap, (t, next(self._n), fn, args))
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake = trio.Event()
            if self._heap:
                with trio.move_on_at(self._heap[0][0]):
                    await self._wake.wait()
            else:
                await self._wake.wait()
            now = trio.current_time()
            while self._heap and self._heap[0][0] <= now:
                _, _, fn, args = heapq.heappop(self._heap)
                try:
                    fn(*args)
                except Exception:  # a bug here must not take the whole sandbox down
                    log.exception("sandbox scheduler callback failed")


class OrderEngine:
    """`ExchangeState.orders`. See the module docstring and docs/sandbox.md (order side)."""

    def __init__(
        self,
        state: ExchangeState,
        *,
        server_secret: bytes = DEFAULT_SERVER_SECRET,
        collateral: float = 10_000.0,
        tokens: float = 0.0,
        market_ts: Callable[[], str] | None = None,
    ) -> None:
        from .sim import MarketSim

        self.state = state
        self.sim: MarketSim | None = state.source if isinstance(state.source, MarketSim) else None
        self.faults = state.faults
        self.server_secret = server_secret
        self.market_ts = market_ts or (lambda: str(state.source.now_ms))
        self.rng = random.Random(f"pmm-sandbox/orders/{state.seed}")
        syn = random.Random(f"pmm-sandbox/synthetic/{state.seed}")
        self.synthetic_key = self._uuid(syn)
        self.synthetic_address = checksum("0x" + f"{syn.getrandbits(160):040x}")
        # settings (attributes; change them in-process)
        self.default_collateral = round(collateral * MICRO)
        self.default_tokens = round(tokens * MICRO)
        self.mine_delay = 1.0  # s after MATCHED: MINED (or RETRYING for a ghost fill)
        self.confirm_delay = 3.0  # s after MATCHED: CONFIRMED (or FAILED)
        self.heartbeat_timeout = 10.0
        self.max_skew_s = 30.0  # allowed |POLY_TIMESTAMP - wall clock|
        self.chain_id = 137
        # state
        self.keys: dict[str, ApiCreds] = {}
        self.created: set[tuple[str, int]] = set()
        self.orders: dict[str, Order] = {}
        self.live: dict[str, Order] = {}  # resting orders (pruned lazily when they stop being LIVE)
        self.queues: dict[tuple[str, str, int], list[Order]] = {}
        self.trades: dict[str, Trade] = {}
        self.accounts: dict[str, Account] = {}
        self.funders: dict[tuple[str, int], str] = {}
        self.heartbeats: dict[str, HeartbeatChain] = {}
        self.accepting: dict[str, bool] = {}
        self.scheduler = Scheduler()
        self.trio0 = trio.current_time()
        self.wall0 = time.time()
        self.audit = Audit(lambda: (trio.current_time(), self.now_ms()))
        self.user_hub = UserHub(
            self.faults, self.keys.get, state.stats, lambda: {m.condition_id for m in state.markets}
        )
        if self.sim is not None:
            self.sim.hooks = self

    # ---- clocks and ids ------------------------------------------------------------------------------------
    def now_s(self) -> float:
        """The server clock: wall time at start + trio time elapsed (so a MockClock moves it)."""
        return self.wall0 + (trio.current_time() - self.trio0)

    def now_ms(self) -> int:
        return int(self.now_s() * 1000)

    def trio_at(self, unix_s: float) -> float:
        return self.trio0 + (unix_s - self.wall0)

    @staticmethod
    def _uuid(rng: random.Random) -> str:
        b = bytearray(rng.getrandbits(128).to_bytes(16, "big"))
        b[6] = (b[6] & 0x0F) | 0x40
        b[8] = (b[8] & 0x3F) | 0x80
        h = b.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _tx_hash(self) -> str:
        return "0x" + f"{self.rng.getrandbits(256):064x}"

    # ---- API keys ------------------------------------------------------------------------------------------
    def creds_for(self, address: str, nonce: int = 0) -> ApiCreds:
        """Register (if needed) and return the API creds of (address, nonce): what derive-api-key returns."""
        c = derive_creds(address, nonce, self.server_secret)
        self.keys[c.api_key] = c
        return c

    def create_key(self, address: str, nonce: int) -> ApiCreds | None:
        """POST /auth/api-key: None if that (address, nonce) already has a key (use derive)."""
        k = (address.lower(), nonce)
        if k in self.created:
            return None
        self.created.add(k)
        c = self.creds_for(address, nonce)
        self.audit.add(
            "auth", endpoint="POST /auth/api-key", address=c.address, nonce=nonce, api_key=c.api_key
        )
        return c

    def derive_key(self, address: str, nonce: int) -> ApiCreds:
        self.created.add((address.lower(), nonce))
        c = self.creds_for(address, nonce)
        self.audit.add(
            "auth", endpoint="GET /auth/derive-api-key", address=c.address, nonce=nonce, api_key=c.api_key
        )
        return c

    # ---- balances ------------------------------------------------------------------------------------------
    def account(self, address: str) -> Account:
        a = address.lower()
        acc = self.accounts.get(a)
        if acc is None:
            acc = self.accounts[a] = Account(self.default_collateral)
        return acc

    def token_balance(self, address: str, token: str) -> int:
        acc = self.account(address)
        return acc.tokens.get(token, self.default_tokens)

    def set_balance(
        self, address: str, collateral: float | None = None, tokens: dict[str, float] | None = None
    ) -> None:
        """Set an account's pUSD (`collateral`) and outcome-token balances (in units, not micro)."""
        acc = self.account(address)
        if collateral is not None:
            acc.collateral = round(collateral * MICRO)
        for t, v in (tokens or {}).items():
            acc.tokens[t] = round(v * MICRO)

    def balances(self, address: str) -> dict[str, Any]:
        acc = self.account(address)
        rc, rt = self._reserved(address)
        return {
            "collateral": fmt_size(acc.collateral),
            "collateral_reserved": fmt_size(rc),
            "tokens": {t: fmt_size(v) for t, v in sorted(acc.tokens.items()) if v != self.default_tokens},
            "tokens_reserved": {t: fmt_size(v) for t, v in sorted(rt.items())},
        }

    def _reserved(self, maker: str) -> tuple[int, dict[str, int]]:
        m = maker.lower()
        c, t = 0, {}
        for o in self.open_orders():
            if o.maker.lower() == m:
                if o.side == "BUY":
                    c += _ceil_div(o.remaining * o.num, o.den)
                else:
                    t[o.asset_id] = t.get(o.asset_id, 0) + o.remaining
        return c, t

    def _settle(self, o: Order, amount: int, tp: int) -> tuple[int, int]:
        """Move balances for `o` trading `amount` at token price `tp`; returns (collateral, token) deltas."""
        acc = self.account(o.maker)
        if o.side == "BUY":
            dc, dt = -_ceil_div(amount * tp, PIPS), amount
        else:
            dc, dt = (amount * tp) // PIPS, -amount
        acc.collateral += dc
        acc.tokens[o.asset_id] = acc.tokens.get(o.asset_id, self.default_tokens) + dt
        return dc, dt

    def _unsettle(self, o: Order, deltas: tuple[int, int]) -> None:
        acc = self.account(o.maker)
        acc.collateral -= deltas[0]
        acc.tokens[o.asset_id] = acc.tokens.get(o.asset_id, self.default_tokens) - deltas[1]

    # ---- markets -------------------------------------------------------------------------------------------
    def accepting_orders(self, condition_id: str) -> bool:
        return self.accepting.get(condition_id, True)

    def set_accepting(self, condition_id: str, accepting: bool) -> None:
        self.accepting[condition_id] = accepting

    def _book(self, token: str) -> BinaryBook:
        assert self.sim is not None
        return self.sim.by_token[token]

    def _broadcast(self, book: BinaryBook, events: list[Any], ts: str) -> None:
        if self.sim is None:
            return
        frames = self.sim.external_frames(book, events, ts)
        if frames:
            self.state.hub.broadcast(frames)

    # ---- placing -------------------------------------------------------------------------------------------
    def place(self, creds: ApiCreds, item: Any, endpoint: str) -> dict[str, Any]:
        """One order (a `POST /order` body or one element of `POST /orders`). Returns the success body or raises
        `Reject`. Every call leaves one `order` audit record."""
        rec: dict[str, Any] = {
            "endpoint": endpoint,
            "api_key": creds.api_key,
            "address": creds.address,
            "order_id": None,
            "order": item.get("order") if isinstance(item, dict) else item,
            "order_type": item.get("orderType") if isinstance(item, dict) else None,
            "post_only": item.get("postOnly") if isinstance(item, dict) else None,
            "owner": item.get("owner") if isinstance(item, dict) else None,
            "market": None,
            "asset_id": None,
            "side": None,
            "price": None,
            "size": None,
            "signer": None,
            "accepted": False,
            "reason": None,
            "detail": None,
            "status": None,
            "making": None,
            "taking": None,
            "trade_ids": [],
        }
        try:
            result = self._place(creds, item, rec)
        except Reject as r:
            rec["reason"], rec["detail"] = r.message, r.detail
            self.audit.add("order", **rec)
            raise
        rec["accepted"] = True
        rec["status"] = result["status"]
        rec["making"], rec["taking"] = result["makingAmount"], result["takingAmount"]
        rec["trade_ids"] = result["tradeIDs"]
        self.audit.add("order", **rec)
        return result

    def _place(self, creds: ApiCreds, item: Any, rec: dict[str, Any]) -> dict[str, Any]:
        if self.sim is None:
            raise Reject(E_DISABLED, "playback mode: the sandbox has no matching engine", status=503)
        if not isinstance(item, dict) or not isinstance(item.get("order"), dict):
            raise Reject(E_PAYLOAD, "body must be {order, owner, orderType, postOnly}")
        order_type = item.get("orderType", "GTC")
        post_only = item.get("postOnly", False)
        owner = item.get("owner")
        if order_type not in ORDER_TYPES:
            raise Reject(E_PAYLOAD, f"orderType must be one of {', '.join(ORDER_TYPES)}")
        if not isinstance(post_only, bool) or not isinstance(item.get("deferExec", False), bool):
            raise Reject(E_PAYLOAD, "postOnly / deferExec must be booleans")
        if not isinstance(owner, str):
            raise Reject(E_PAYLOAD, "owner must be the API key")
        try:
            o = decode_order(item["order"])
        except OrderPayloadError as e:
            raise Reject(E_PAYLOAD, str(e)) from None
        rec["order"] = o.to_json()
        rec["side"] = o.side
        src = self.state.source
        if not src.has(o.token_id):
            raise Reject(E_PAYLOAD, f"unknown token {o.token_id}")
        spec: MarketSpec = src.market_of(o.token_id)
        rec["market"], rec["asset_id"] = spec.condition_id, o.token_id
        td = typed_data(o, exchange_for(spec.neg_risk), chain_id=self.chain_id)
        dg = digest(td)
        oid = "0x" + dg.hex()
        rec["order_id"] = oid
        shares = o.taker_amount if o.side == "BUY" else o.maker_amount
        num, den = (o.maker_amount, o.taker_amount) if o.side == "BUY" else (o.taker_amount, o.maker_amount)
        rec["size"] = fmt_size(shares)
        rec["price"] = _dec(num, den)
        # who is it from
        signer = recover(o, dg) if o.signature_type != 3 else None
        rec["signer"] = signer
        if owner != creds.api_key:
            raise Reject(E_OWNER, f"body owner {owner!r} is not the API key {creds.api_key}")
        if o.signer.lower() != creds.address.lower():
            raise Reject(E_SIGNER, f"signer {o.signer} is not the API key's address {creds.address}")
        if o.signature_type == 0 and o.maker.lower() != o.signer.lower():
            raise Reject(E_OWNER, f"EOA order (signatureType 0) with maker {o.maker} != signer {o.signer}")
        if signer is None or signer.lower() != o.signer.lower():
            raise Reject(E_SIGNATURE, diagnose(o, spec.neg_risk))
        # market state and engine mode
        if not self.accepting_orders(spec.condition_id):
            raise Reject(E_NOT_READY, f"market {spec.condition_id} is not accepting orders")
        mode, left = self.faults.engine_mode()
        if mode == "post_only" and not post_only:
            self.faults.counts["post_only_reject"] += 1
            secs = max(1, int(left + 0.999))
            raise Reject(
                POST_ONLY_MODE_MESSAGE,
                f"post-only window after an engine restart, {left:.1f} s left",
                status=503,
                extra={"code": "post_only_mode", "retry_after_seconds": secs},
                headers={"retry-after": str(secs)},
            )
        if post_only and order_type in ("FOK", "FAK"):
            raise Reject(E_POST_ONLY_TYPE)
        now = self.now_s()
        if order_type == "GTD" and o.expiration < now + GTD_MIN_LEAD_S:
            raise Reject(E_EXPIRATION, f"GTD expiration {o.expiration} is not at least 60 s after {int(now)}")
        # price and size
        tick = src.tick(o.token_id)
        price_err = f"order {oid} is invalid. Price ({_dec(num, den)}) breaks minimum tick size rule: {tick_str(tick)}"
        if order_type in ("GTC", "GTD"):
            q = (2 * num * PIPS + den) // (2 * den)  # nearest pip
            if abs(num * PIPS - q * den) > PIPS:  # more than 1 micro-unit of amount away from a whole pip
                raise Reject(price_err, "price (makerAmount/takerAmount) is not a whole number of pips")
            if q % tick:
                raise Reject(price_err, f"price {fmt_pips(q)} is not on the {tick_str(tick)} grid")
            if not tick <= q <= PIPS - tick:
                raise Reject(
                    price_err, f"price {fmt_pips(q)} outside [{tick_str(tick)}, {fmt_pips(PIPS - tick)}]"
                )
            num, den = q, PIPS
            rec["price"] = fmt_pips(q)
        else:
            q = num * PIPS // den
            if not (tick * den <= num * PIPS <= (PIPS - tick) * den):
                raise Reject(price_err, f"price outside [{tick_str(tick)}, {fmt_pips(PIPS - tick)}]")
        if shares < spec.min_order_size * MICRO:
            raise Reject(
                f"order {oid} is invalid. Size ({fmt_size(shares)}) lower than the minimum: {spec.min_order_size}"
            )
        if oid in self.orders:
            raise Reject(f"order {oid} is invalid. Duplicated.")
        # balance (net of what the maker's open orders already reserve)
        acc = self.account(o.maker)
        rc, rt = self._reserved(o.maker)
        if o.side == "BUY":
            need, have = o.maker_amount, acc.collateral - rc
        else:
            need, have = o.maker_amount, self.token_balance(o.maker, o.token_id) - rt.get(o.token_id, 0)
        if need > have:
            raise Reject(
                E_BALANCE,
                f"{'pUSD' if o.side == 'BUY' else 'token'} needed {fmt_size(need)}, available {fmt_size(max(have, 0))}",
            )
        book = self._book(o.token_id)
        is_yes = book.is_yes(o.token_id)
        order = Order(
            id=oid,
            api_key=creds.api_key,
            address=creds.address.lower(),
            maker=o.maker,
            market=spec.condition_id,
            asset_id=o.token_id,
            outcome=spec.outcome(o.token_id),
            side=o.side,
            price=q,
            num=num,
            den=den,
            original=shares,
            order_type=order_type,
            post_only=post_only,
            expiration=o.expiration,
            created_at=int(now),
            yes_side=o.side if is_yes else _flip(o.side),
            yes_price=q if is_yes else PIPS - q,
            decoded=o,
        )
        crossing = self._crossing(book, order)
        if post_only and crossing:
            raise Reject(E_CROSSES, f"best opposite level at {fmt_pips(crossing[0][1])}")
        if order_type == "FOK" and sum(s for _, _, s in crossing) < shares:
            raise Reject(E_FOK, f"{fmt_size(sum(s for _, _, s in crossing))} available within the limit")
        if order_type == "FAK" and not crossing:
            raise Reject(E_FAK)
        # accepted
        self.orders[oid] = order
        if o.signature_type in (1, 2):
            self.funders[(order.address, o.signature_type)] = o.maker
        ts = self.market_ts()
        self._push_order(order, "PLACEMENT")
        events: list[Any] = []
        trades: list[Trade] = []
        if crossing:
            events, trades = self._take(order, book, ts)
        if order.remaining > 0:
            if order_type in ("GTC", "GTD") and order.yes_price % book.tick == 0:
                events.append(self.sim.price_change(book, self._rest(order, book, ts), ts))  # type: ignore[union-attr]
                if order_type == "GTD":
                    self.scheduler.call_at(self.trio_at(order.expiration), self._expire, oid)
            else:
                order.status = CANCELED  # FAK remainder (or a remainder the tick change left off-grid)
                self._push_order(order, "CANCELLATION")
        self._broadcast(book, events, ts)
        making = sum(-t.taker_deltas[0] if order.side == "BUY" else -t.taker_deltas[1] for t in trades)
        taking = sum(t.taker_deltas[1] if order.side == "BUY" else t.taker_deltas[0] for t in trades)
        return {
            "success": True,
            "errorMsg": "",
            "orderID": oid,
            "status": "matched" if trades else "live",
            "makingAmount": fmt_size(making) if trades else "",
            "takingAmount": fmt_size(taking) if trades else "",
            "transactionsHashes": [t.tx_hash for t in trades],
            "tradeIDs": [t.id for t in trades],
        }

    def _crossing(self, book: BinaryBook, o: Order) -> list[tuple[str, int, int]]:
        """The opposite levels `o` would trade with, best first: (yes side, yes price, size)."""
        opp = _flip(o.yes_side)
        levels = book.asks if opp == "SELL" else book.bids
        is_yes = book.is_yes(o.asset_id)
        out = []
        for p in sorted(levels, reverse=(opp == "BUY")):
            if not o.crosses(p if is_yes else PIPS - p):
                break
            out.append((opp, p, levels[p]))
        return out

    # ---- book mechanics --------------------------------------------------------------------------------------
    def _rest(self, o: Order, book: BinaryBook, ts: str) -> list[dict[str, str]]:
        levels = book.bids if o.yes_side == "BUY" else book.asks
        umap = book.user_bids if o.yes_side == "BUY" else book.user_asks
        p = o.yes_price
        total = levels.get(p, 0)
        o.ahead = total - umap.get(p, 0)
        o.resting = True
        o.status = LIVE
        self.live[o.id] = o
        self.queues.setdefault((o.market, o.yes_side, p), []).append(o)
        umap[p] = umap.get(p, 0) + o.remaining
        return book.set_level(o.yes_side, p, total + o.remaining, ts)

    def _unrest(self, o: Order, book: BinaryBook, ts: str | None) -> list[dict[str, str]]:
        """Take `o`'s remaining size out of the book. With ts None the level is changed silently (a snapshot
        follows); otherwise the `price_changes` entries are returned."""
        if not o.resting:
            return []
        levels = book.bids if o.yes_side == "BUY" else book.asks
        umap = book.user_bids if o.yes_side == "BUY" else book.user_asks
        p = o.yes_price
        key = (o.market, o.yes_side, p)
        q = self.queues.get(key, [])
        if o in q:
            q.remove(o)
        if not q:
            self.queues.pop(key, None)
        o.resting = False
        left = umap.get(p, 0) - o.remaining
        if left > 0:
            umap[p] = left
        else:
            umap.pop(p, None)
        new_total = levels.get(p, 0) - o.remaining
        if ts is None:
            if new_total > 0:
                levels[p] = new_total
            else:
                levels.pop(p, None)
            return []
        return book.set_level(o.yes_side, p, max(new_total, 0), ts)

    def _allocate(self, key: tuple[str, str, int], size_before: int, fill: int) -> list[tuple[Order, int]]:
        """Split a taker's `fill` at one level between synthetic liquidity and the user orders there, in queue
        order. Updates every order's `ahead`; does not change sizes."""
        q = self.queues.get(key) or []
        left, front, allocs = fill, 0, []
        for o in q:
            gap = o.ahead - front
            if gap > 0:
                t = min(gap, left)
                front += t
                left -= t
            if left == 0:
                break
            f = min(o.remaining, left)
            allocs.append((o, f))
            left -= f
            if left == 0:
                break
        for o in q:
            o.ahead = max(0, o.ahead - front)
        return allocs

    def _fill_makers(
        self, book: BinaryBook, yes_side: str, p: int, allocs: list[tuple[Order, int]], trade: Trade
    ) -> None:
        umap = book.user_bids if yes_side == "BUY" else book.user_asks
        key = (book.spec.condition_id, yes_side, p)
        for (o, f), row in zip(allocs, [r for r in trade.rows if r.order is not None], strict=True):
            o.matched += f
            o.associate_trades.append(trade.id)
            row.deltas = self._settle(o, f, o.price)
            left = umap.get(p, 0) - f
            if left > 0:
                umap[p] = left
            else:
                umap.pop(p, None)
            if o.remaining == 0:
                o.status = MATCHED
                o.resting = False
                q = self.queues.get(key, [])
                if o in q:
                    q.remove(o)
                if not q:
                    self.queues.pop(key, None)

    def _take(self, o: Order, book: BinaryBook, ts: str) -> tuple[list[Any], list[Trade]]:
        """`o` trades now against the opposite side (synthetic and user liquidity), maker prices."""
        assert self.sim is not None
        entries: list[dict[str, str]] = []
        prints: list[Any] = []
        trades: list[Trade] = []
        is_yes = book.is_yes(o.asset_id)
        last_yes = None
        for opp, p, _ in self._crossing(book, o):
            if o.remaining == 0:
                break
            levels = book.asks if opp == "SELL" else book.bids
            size = levels[p]
            fill = min(size, o.remaining)
            tp = p if is_yes else PIPS - p
            allocs = self._allocate((o.market, opp, p), size, fill)
            entries += book.set_level(opp, p, size - fill, ts)
            trade = self._new_trade(book, o, None, o.asset_id, o.side, tp, fill, allocs)
            self._fill_makers(book, opp, p, allocs, trade)
            o.matched += fill
            o.associate_trades.append(trade.id)
            trade.taker_deltas = self._settle(o, fill, tp)
            if o.remaining == 0:
                o.status = MATCHED
            trades.append(trade)
            book.last_trade[o.asset_id] = tp
            last_yes = p
            prints.append(
                {
                    "event_type": "last_trade_price",
                    "asset_id": o.asset_id,
                    "market": o.market,
                    "price": fmt_pips(tp),
                    "size": fmt_size(fill),
                    "fee_rate_bps": "0",
                    "side": o.side,
                    "timestamp": ts,
                    "transaction_hash": trade.tx_hash,
                }
            )
        events: list[Any] = [self.sim.price_change(book, entries, ts), *prints] if entries else []
        for t in trades:
            self._announce(t)
            for r in t.rows:
                if r.order is not None:
                    self._push_order(r.order, "UPDATE")
        if trades:
            self._push_order(o, "UPDATE")
        if last_yes is not None:
            events += self.sim.tick_after_trade(book, last_yes, ts)
        return events, trades

    def _new_trade(
        self,
        book: BinaryBook,
        taker: Order | None,
        taker_id: str | None,
        asset: str,
        side: str,
        tp: int,
        fill: int,
        allocs: list[tuple[Order, int]],
    ) -> Trade:
        """A trade of `fill` at token price `tp` (taker's token `asset`, taker side `side`)."""
        spec = book.spec
        rows = [
            MakerRow(mo, mo.api_key, mo.maker, f, mo.price, mo.asset_id, mo.outcome, mo.side)
            for mo, f in allocs
        ]
        synthetic = fill - sum(f for _, f in allocs)
        if synthetic > 0:
            rows.append(
                MakerRow(
                    None,
                    self.synthetic_key,
                    self.synthetic_address,
                    synthetic,
                    tp,
                    asset,
                    spec.outcome(asset),
                    _flip(side),
                )
            )
        now = int(self.now_s())
        trade = Trade(
            id=self._uuid(self.rng),
            market=spec.condition_id,
            asset_id=asset,
            outcome=spec.outcome(asset),
            side=side,
            size=fill,
            price=tp,
            taker_order=taker,
            taker_order_id=taker.id if taker else (taker_id or "0x" + f"{self.rng.getrandbits(256):064x}"),
            taker_owner=taker.api_key if taker else self.synthetic_key,
            taker_address=taker.maker if taker else self.synthetic_address,
            rows=rows,
            match_time=now,
            tx_hash=self._tx_hash(),
            ghost=self.faults.take_ghost(),
            last_update=now,
        )
        self.trades[trade.id] = trade
        t0 = trio.current_time()
        self.scheduler.call_at(t0 + self.mine_delay, self._trade_step, trade.id, 1)
        self.scheduler.call_at(t0 + self.confirm_delay, self._trade_step, trade.id, 2)
        return trade

    # ---- simulator hooks (called inside MarketSim.step; they must not broadcast market frames) ---------------
    def on_fill(
        self,
        book: BinaryBook,
        maker_side: str,
        price: int,
        size_before: int,
        fill: int,
        taker_side: str,
        tx_hash: str,
        ts: str,
    ) -> None:
        allocs = self._allocate((book.spec.condition_id, maker_side, price), size_before, fill)
        if not allocs:
            return
        first = allocs[0][0]
        tp = first.price
        trade = self._new_trade(book, None, None, first.asset_id, _flip(first.side), tp, fill, allocs)
        self._fill_makers(book, maker_side, price, allocs, trade)
        self._announce(trade)
        for o, _ in allocs:
            self._push_order(o, "UPDATE")

    def on_sim_reduced(self, book: BinaryBook, yes_side: str, price: int) -> None:
        levels = book.bids if yes_side == "BUY" else book.asks
        sim_left = levels.get(price, 0) - book.user_size(yes_side, price)
        for o in self.queues.get((book.spec.condition_id, yes_side, price), []):
            o.ahead = min(o.ahead, sim_left)

    def on_tick_coarser(self, book: BinaryBook, new_tick: int, ts: str) -> None:
        off = [
            o
            for q in list(self.queues.values())
            for o in list(q)
            if o.market == book.spec.condition_id and o.yes_price % new_tick
        ]
        for o in off:
            self._unrest(o, book, None)
            o.status = CANCELED
            self._push_order(o, "CANCELLATION")
        if off:
            self.audit.add(
                "cancel",
                endpoint="tick_size_change",
                api_key=None,
                address=None,
                requested=None,
                canceled=[o.id for o in off],
                not_canceled={},
                detail=f"tick size became {tick_str(new_tick)}: orders off the new grid are cancelled",
            )

    # ---- cancelling ----------------------------------------------------------------------------------------
    def cancel(
        self, address: str, ids: list[str], endpoint: str, api_key: str | None, requested: Any
    ) -> dict[str, Any]:
        address = address.lower()
        canceled: list[str] = []
        not_canceled: dict[str, str] = {}
        by_book: dict[str, tuple[BinaryBook, list[dict[str, str]]]] = {}
        ts = self.market_ts()
        for oid in dict.fromkeys(ids):
            o = self.orders.get(oid)
            if o is None or o.address != address or o.status == CANCELED:
                not_canceled[oid] = NOT_FOUND
                continue
            if o.status == MATCHED:
                not_canceled[oid] = ALREADY_MATCHED
                continue
            book = self._book(o.asset_id)
            entries = self._unrest(o, book, ts)
            o.status = CANCELED
            by_book.setdefault(o.market, (book, []))[1].extend(entries)
            canceled.append(oid)
            self._push_order(o, "CANCELLATION")
        for book, entries in by_book.values():
            if entries:
                self._broadcast(book, [self.sim.price_change(book, entries, ts)], ts)  # type: ignore[union-attr]
        self.audit.add(
            "cancel",
            endpoint=endpoint,
            api_key=api_key,
            address=address,
            requested=requested,
            canceled=canceled,
            not_canceled=not_canceled,
        )
        return {"canceled": canceled, "not_canceled": not_canceled}

    def open_orders(self, address: str | None = None) -> list[Order]:
        """LIVE orders (of `address`, or everyone's), oldest first."""
        for k in [k for k, o in self.live.items() if o.status != LIVE]:
            del self.live[k]
        a = address.lower() if address else None
        return [o for o in self.live.values() if a is None or o.address == a]

    def _expire(self, oid: str) -> None:
        o = self.orders.get(oid)
        if o is not None and o.status == LIVE:
            self.cancel(o.address, [oid], "expired", None, [oid])

    # ---- heartbeats ----------------------------------------------------------------------------------------
    def heartbeat(self, creds: ApiCreds, received: Any) -> tuple[bool, str]:
        """(True, next id) or (False, expected id)."""
        a = creds.address.lower()
        hb = self.heartbeats.setdefault(a, HeartbeatChain())
        if received == "" or (isinstance(received, str) and received == hb.expected):
            nxt = self._uuid(self.rng)
            hb.expected = nxt
            hb.deadline = trio.current_time() + self.heartbeat_timeout
            self.scheduler.call_at(hb.deadline, self._heartbeat_check, a)
            self.audit.add(
                "heartbeat",
                api_key=creds.api_key,
                address=a,
                received=received,
                ok=True,
                next=nxt,
                expected=None,
                fault=None,
            )
            return True, nxt
        self.audit.add(
            "heartbeat",
            api_key=creds.api_key,
            address=a,
            received=received,
            ok=False,
            next=None,
            expected=hb.expected or "",
            fault=None,
        )
        return False, hb.expected or ""

    def _heartbeat_check(self, address: str) -> None:
        hb = self.heartbeats.get(address)
        if hb is None or hb.deadline is None or trio.current_time() < hb.deadline:
            return
        hb.expected = hb.deadline = None
        ids = [o.id for o in self.open_orders(address)]
        res = self.cancel(address, ids, "heartbeat_timeout", None, ids)
        self.audit.add("heartbeat_timeout", address=address, canceled=res["canceled"])

    # ---- trade statuses ------------------------------------------------------------------------------------
    def _trade_step(self, trade_id: str, stage: int) -> None:
        t = self.trades[trade_id]
        if t.ghost:
            t.status = "RETRYING" if stage == 1 else "FAILED"
        else:
            t.status = "MINED" if stage == 1 else "CONFIRMED"
        t.last_update = int(self.now_s())
        self._announce(t)
        if t.status == "FAILED":
            self._restore(t)

    def _restore(self, t: Trade) -> None:
        """A failed trade: balances back, and the user orders get the failed size back (re-resting if they had
        left the book and still fit in it; cancelled if they would now cross)."""
        ts = self.market_ts()
        legs: list[tuple[Order, int, tuple[int, int]]] = [
            (r.order, r.amount, r.deltas) for r in t.rows if r.order is not None
        ]
        if t.taker_order is not None:
            legs.append((t.taker_order, t.size, t.taker_deltas))
        for o, amount, deltas in legs:
            self._unsettle(o, deltas)
            o.matched -= amount
            book = self._book(o.asset_id)
            events: list[Any] = []
            if o.status == LIVE and o.resting:
                levels = book.bids if o.yes_side == "BUY" else book.asks
                umap = book.user_bids if o.yes_side == "BUY" else book.user_asks
                umap[o.yes_price] = umap.get(o.yes_price, 0) + amount
                events.append(
                    self.sim.price_change(  # type: ignore[union-attr]
                        book,
                        book.set_level(o.yes_side, o.yes_price, levels.get(o.yes_price, 0) + amount, ts),
                        ts,
                    )
                )
                self._push_order(o, "UPDATE")
            elif o.status == MATCHED and o.order_type in ("GTC", "GTD"):
                if self._crossing(book, o) or o.yes_price % book.tick:
                    o.status = CANCELED
                    self._push_order(o, "CANCELLATION")
                    self.audit.add(
                        "cancel",
                        endpoint="ghost_restore",
                        api_key=o.api_key,
                        address=o.address,
                        requested=[o.id],
                        canceled=[o.id],
                        not_canceled={},
                        detail="restored size would cross the book now",
                    )
                else:
                    events.append(self.sim.price_change(book, self._rest(o, book, ts), ts))  # type: ignore[union-attr]
                    self._push_order(o, "UPDATE")
            else:
                if o.status == MATCHED:
                    o.status = CANCELED  # a FOK/FAK taker whose fill failed: the rest is gone
                self._push_order(o, "UPDATE")
            self._broadcast(book, events, ts)

    # ---- rendering -----------------------------------------------------------------------------------------
    def order_json(self, o: Order) -> dict[str, Any]:
        """A `GET /data/orders` row."""
        return {
            "id": o.id,
            "status": o.status,
            "owner": o.api_key,
            "maker_address": o.maker,
            "market": o.market,
            "asset_id": o.asset_id,
            "side": o.side,
            "original_size": fmt_size(o.original),
            "size_matched": fmt_size(o.matched),
            "price": fmt_pips(o.price),
            "outcome": o.outcome,
            "expiration": str(o.expiration),
            "order_type": o.order_type,
            "associate_trades": list(o.associate_trades),
            "created_at": o.created_at,
        }

    def order_event(self, o: Order, kind: str) -> dict[str, Any]:
        return {
            "event_type": "order",
            "id": o.id,
            "owner": o.api_key,
            "market": o.market,
            "asset_id": o.asset_id,
            "side": o.side,
            "order_owner": o.api_key,
            "original_size": fmt_size(o.original),
            "size_matched": fmt_size(o.matched),
            "price": fmt_pips(o.price),
            "associate_trades": list(o.associate_trades) if o.associate_trades else None,
            "outcome": o.outcome,
            "type": kind,
            "created_at": str(o.created_at),
            "expiration": str(o.expiration),
            "order_type": o.order_type,
            "status": o.status,
            "maker_address": o.maker,
            "timestamp": str(self.now_ms()),
        }

    def trade_json(self, t: Trade, address: str, *, event: bool) -> dict[str, Any]:
        """A trade as `address` sees it: a `trade` event (event=True) or a `GET /data/trades` row."""
        taker_side = t.taker_order is not None and t.taker_order.address == address
        if taker_side:
            trade_owner = t.taker_owner
        else:
            trade_owner = next(
                (r.owner for r in t.rows if r.order is not None and r.order.address == address), t.taker_owner
            )
        body: dict[str, Any] = {}
        if event:
            body["event_type"] = "trade"
            body["type"] = "TRADE"
        body.update(
            {
                "id": t.id,
                "taker_order_id": t.taker_order_id,
                "market": t.market,
                "asset_id": t.asset_id,
                "side": t.side,
                "size": fmt_size(t.size),
                "price": fmt_pips(t.price),
                "fee_rate_bps": "0",
                "status": t.status,
                "match_time": str(t.match_time),
                "last_update": str(t.last_update),
                "outcome": t.outcome,
                "owner": t.taker_owner,
                "trade_owner": trade_owner,
                "maker_address": t.taker_address,
                "transaction_hash": "" if t.status == "MATCHED" else t.tx_hash,
                "bucket_index": 0,
                "maker_orders": [
                    {
                        "order_id": r.order.id if r.order is not None else self._synthetic_order_id(t, i),
                        "owner": r.owner,
                        "maker_address": r.maker_address,
                        "matched_amount": fmt_size(r.amount),
                        "price": fmt_pips(r.price),
                        "fee_rate_bps": "0",
                        "asset_id": r.asset_id,
                        "outcome": r.outcome,
                        "side": r.side,
                    }
                    for i, r in enumerate(t.rows)
                ],
                "trader_side": "TAKER" if taker_side else "MAKER",
            }
        )
        if event:
            body["timestamp"] = str(self.now_ms())
        else:
            del body["trade_owner"]
        return body

    @staticmethod
    def _synthetic_order_id(t: Trade, i: int) -> str:
        import hashlib

        return "0x" + hashlib.sha256(f"{t.id}/{i}".encode()).hexdigest()

    def _push_order(self, o: Order, kind: str) -> None:
        self.user_hub.push(o.address, o.market, self.order_event(o, kind))

    def _announce(self, t: Trade) -> None:
        users = t.users()
        for a in users:
            self.user_hub.push(a, t.market, self.trade_json(t, a, event=True))
        self.audit.add(
            "trade",
            trade_id=t.id,
            status=t.status,
            market=t.market,
            asset_id=t.asset_id,
            side=t.side,
            size=fmt_size(t.size),
            price=fmt_pips(t.price),
            taker_order_id=t.taker_order_id,
            maker_order_ids=[r.order.id for r in t.rows if r.order is not None],
            users=users,
            ghost=t.ghost,
        )

    def trades_for(self, address: str) -> list[Trade]:
        a = address.lower()
        return [t for t in self.trades.values() if a in t.users()]

    # ---- rewards -------------------------------------------------------------------------------------------
    def is_scoring(self, o: Order) -> bool:
        """Scoring iff LIVE, the market has rewards, remaining >= rewards_min_size and the price is within
        rewards_max_spread (cents) of the token's midpoint."""
        if o.status != LIVE or self.sim is None:
            return False
        spec = self.state.source.market_of(o.asset_id)
        if not spec.has_rewards or o.remaining < spec.rewards_min_size * MICRO:
            return False
        bb, ba = self.state.source.best(o.asset_id)
        if bb is None or ba is None:
            return False
        mid2 = bb + ba  # 2 * mid, pips
        spread2 = abs(2 * o.price - mid2)  # 2 * |price - mid|
        return spread2 <= 2 * spec.rewards_max_spread * 100  # cents -> pips

    # ---- in-process helpers ----------------------------------------------------------------------------------
    def synthetic_trade(self, token: str, side: str, qty: int) -> list[Any]:
        """A synthetic taker now (`side` in `token`'s terms, `qty` micro-shares); frames are broadcast."""
        assert self.sim is not None
        frames = self.sim.synthetic_take(token, side, qty, self.market_ts())
        self.state.hub.broadcast(frames)
        return frames

    def allowances(self) -> dict[str, str]:
        return {
            exchange_for(False): MAX_ALLOWANCE,
            exchange_for(True): MAX_ALLOWANCE,
            NEG_RISK_ADAPTER: MAX_ALLOWANCE,
        }

    async def run(self) -> None:
        await self.scheduler.run()

    def close(self) -> None:
        self.user_hub.close_all(1001)
