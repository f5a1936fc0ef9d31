"""The simulated exchange: deterministic paper fills driven by the live book and trade prints (``fills == "sim"``).

Our simulated orders are NOT in the real book. Everything below follows from that: the real book and the real trade
prints tell us what liquidity was there and what traded; the question is how much of it would have been ours. When
in doubt the answer is the smaller one (paper fills nobody trusts are worse than paper fills that are a little
pessimistic).

**YES terms.** A binary market has one unified book: a bid for YES at p is the same liquidity as an ask for NO at
1 - p (docs/polymarket-protocol.md §7). Every order and every print is mapped to YES terms (NO side flipped, price
1 - p) for matching; fills are reported in the order's own terms. Both tokens' books are read when valid (they
mirror each other); a quantity that both can give (level size, crossing depth) is the larger of the two views
(they agree when mirrored; the larger covers a lagging or unsubscribed one), never their sum (no double counting).

**Placement** (only on ``RiskApproved`` from the risk gate, for an ``OrderIntent`` it saw). Refused, with
``ExchangeReply(ok=False, status="rejected", message=...)``, when: the token is not one of ``params.markets``; the
client id was used before; the token's book is missing or invalid; the price is not a multiple of the book's tick
within [tick, 1 - tick]; the size is below the market's ``min_order_size``; the order would cross (below); a SELL
exceeds the tokens the simulation holds (filled buys minus filled sells, minus open sells: the exchange checks
balances; paper starts with no tokens, and collateral is not modelled).
*Would cross*, in the order's own terms: BUY at p crosses when this token's best ask <= p or the complement's best
bid >= 1 - p (a BUY NO there mints against us); SELL at p crosses when this token's best bid >= p or the
complement's best ask <= 1 - p (a SELL NO there merges against us). A post-only order that would cross gets
``message="post-only order would cross"``; a crossing order that is not post-only is refused too (taker fills are
not simulated). (The risk gate already refuses a same-token cross; this check also covers the complement and
is what a live exchange would do.) Otherwise: ``ExchangeReply(ok=True, order_id="sim-<intent_seq>", status="live")`` and
``SimRested(queue_ahead=...)``.

**Queue.** ``queue_ahead`` = the book's size at our price on our side when the order arrives
(``SimParams.queue_ahead``; 0 when off). It only ever shrinks, and only in two ways:
1. a print at our price (below) consumes it first;
2. the level shrinking below it: others can't be ahead of us with more than the whole level, so
   ``ahead = min(ahead, level)``. Decreases of the level are otherwise assumed to come from BEHIND us (cancels by
   later arrivals first): the conservative end. The true answer is somewhere between this and "from ahead first".
A level decrease that clamps ``ahead`` may be the trade whose print is still to come (the book change can arrive
before ``last_trade_price``: the sandbox exchange sends it in that order; the live order is undocumented); so the clamped amount is kept as a credit for ``EXPLAIN_WINDOW_NS``, and a
print at our level is first explained by that credit before it consumes the queue again. The queue is never
counted down twice for one trade.

**Fills** (always at OUR price: we are the maker; ``Fill(..., trade_id="sim-<seq>-<i>", status="CONFIRMED")``):
- *Print at our price* (a ``TradePrint`` whose taker hits our side at our YES-terms price): of its size V, the
  credit above is taken off, then the queue ahead, then we fill (partially if V is short).
- *Print through our price* (a taker sell below our bid, a taker buy above our ask, in YES terms): that sweep
  would have taken us first; we fill up to the print's size V (the taker's observed volume, not "fully": a
  small print through a big order fills it partly).
- *The book crossing our order* (in YES terms, asks at or below our bid, or bids at or above our ask, in either
  token's book): those resting orders would have traded with us; we fill up to the crossing depth. Because the
  real book still shows that liquidity after our simulated fill, what was consumed is remembered per market and
  side (a high-water mark, reset only once nothing crosses any more): the same resting liquidity never fills us
  twice, and re-checking an unchanged book changes nothing.
- Sharing: the orders a print or a cross can reach are served in price-time priority (best price first, then
  smaller queue ahead, then earlier intent); together they never get more than the print's size or the crossing
  depth. One handled event gives an order at most one ``Fill``. A print on one token and its mirror on the other
  token in the same frame (same cause, same YES-terms price, side and size) count as one trade (two genuinely
  separate equal trades on the two tokens in one frame are then under-counted: the conservative side). One frame
  may still give an order two fills from distinct liquidity (a crossing resting order, then a print).
The book is re-read after every ``FeedFrame``/``RestBook`` input (the book actor has applied it by then) and after a
``BookChanged`` that does not come from the frame just read.
A completely filled order is done (no reply: the order manager tracks fills).

**Cancels.** Approved ``CancelIntent`` of a live order -> ``ExchangeReply(op="cancel", ok=True,
status="cancelled")``; of an unknown or done order -> ``ok=False`` with a message. ``CancelAll`` from the risk gate
-> one cancel reply per live order (sorted by client id), then ``ExchangeReply(op="cancel_all", client_id="")``.

**Rewards.** ``RestingScore`` per market, whenever its value changes: for each resting order,
``S = (v - s)^2 * remaining // v^2`` with v = ``reward_max_spread``, s = |price - mid of the order's token|
(plain mid, not the size-cutoff-adjusted one), S = 0 when s >= v, when the remaining size is below
``reward_min_size`` or when the market pays no rewards (either parameter 0). Not modelled: the minimum resting
age, sampling, other makers' share.

**Determinism.** Integer math only; live orders in a dict in placement order; markets in ``params`` order; ties
broken by intent seq; nothing read from a clock (time only from the envelope, for the credit window).

Not modelled: latency (replies and fills are instant), fees and rebates, collateral, order expiry, neg-risk
conversion, the 2-minute post-only mode, cancels racing fills.
"""
from __future__ import annotations

from typing import ClassVar, Protocol

from actors.core.paper import RISK_SRC, IntentMemory, check_approval
from events.base import MICRO, Event
from events.codec import Envelope
from events.control import GuardViolation
from events.market import BookChanged, FeedFrame, RestBook, TradePrint
from events.orders import CancelAll, CancelIntent, ExchangeReply, Fill, OrderIntent, RiskApproved, RiskReject
from events.paper import RestingScore, SimRested
from events.params import CoreParams, MarketParams

POST_ONLY_CROSS = "post-only order would cross"
EXPLAIN_WINDOW_NS = 2 * 10**9
"""How long a clamp of the queue by a shrinking level may still be the book side of a trade whose print follows."""
DEPTH_LEVELS = 1_000
"""Levels read when summing crossing depth (a crossing book this deep is already absurd)."""
REWARD_MID_LO = 100_000
REWARD_MID_HI = 900_000
"""Within [0.10, 0.90] a one-sided book scores at a third; outside, only two-sided quoting scores (§6)."""


class TokenBookView(Protocol):
    """What the simulated exchange reads of one token's book (``docs/core-contracts.md``, the Books view)."""

    token_id: str
    tick: int
    valid: bool

    def best_bid(self) -> tuple[int, int] | None: ...
    def best_ask(self) -> tuple[int, int] | None: ...
    def mid(self) -> int | None: ...
    def size_at(self, side: str, price: int) -> int: ...
    def levels(self, side: str, n: int) -> list[tuple[int, int]]: ...


class BooksView(Protocol):
    def get(self, token_id: str) -> TokenBookView | None: ...


def _opp(side: str) -> str:
    return "SELL" if side == "BUY" else "BUY"


class SimOrder:
    """A resting simulated order (internal mutable state, never journaled)."""

    __slots__ = ("ahead", "client_id", "condition_id", "credit", "credit_ts", "filled", "intent_seq", "order_id",
                 "price", "side", "size", "token_id", "yes_price", "yes_side")

    def __init__(self, it: OrderIntent, intent_seq: int, is_yes: bool, ahead: int) -> None:
        self.client_id = it.client_id
        self.condition_id = it.condition_id
        self.token_id = it.token_id
        self.side = it.side
        self.price = it.price
        self.size = it.size
        self.intent_seq = intent_seq
        self.order_id = f"sim-{intent_seq}"
        self.yes_side = it.side if is_yes else _opp(it.side)
        self.yes_price = it.price if is_yes else MICRO - it.price
        self.filled = 0
        self.ahead = ahead
        self.credit = 0
        self.credit_ts = 0

    @property
    def remaining(self) -> int:
        return self.size - self.filled

    def priority(self) -> tuple[int, int, int]:
        """Price-time priority among our orders on one YES-terms side (smaller sorts first)."""
        price_key = -self.yes_price if self.yes_side == "BUY" else self.yes_price
        return (price_key, self.ahead, self.intent_seq)


class SimExchange:
    """Deterministic simulated exchange over the live book. See the module docstring for the full model."""

    name: ClassVar[str] = "exec"
    consumes: ClassVar[tuple[type[Event], ...]] = (
        OrderIntent, CancelIntent, RiskApproved, RiskReject, CancelAll, FeedFrame, RestBook, BookChanged, TradePrint,
    )

    def __init__(self, params: CoreParams, books: BooksView) -> None:
        self.params = params
        self.books = books
        self._queue_ahead = params.sim.queue_ahead
        self._markets: dict[str, tuple[MarketParams, bool, str]] = {}
        """token -> (market, is the YES token, complement token)."""
        for m in params.markets:
            self._markets[m.yes_token] = (m, True, m.no_token)
            self._markets[m.no_token] = (m, False, m.yes_token)
        self._intents = IntentMemory()
        self.live: dict[str, SimOrder] = {}
        """Resting orders by client id, in placement order."""
        self._done: set[str] = set()
        """Client ids of filled or cancelled orders (membership only, never iterated)."""
        self.held: dict[str, int] = {}
        """Tokens held through simulated fills (micro-shares), per token."""
        self._cross_used: dict[tuple[str, str], int] = {}
        """(condition, YES-terms side of our orders) -> crossing depth already consumed by our fills."""
        self._scores: dict[str, tuple[int, bool, int, int]] = {}
        self._checked = -1
        """Seq of the last input after which the book was checked (its BookChanged children need no re-check)."""
        self._print_cause = -1
        self._print_seen: list[tuple[tuple[str, str, int, int], str]] = []

    # ---------------------------------------------------------------------------------------------- dispatch
    def step(self, seq: int, env: Envelope) -> list[Event]:
        ev = env.ev
        if isinstance(ev, (OrderIntent, CancelIntent)):
            self._intents.remember(seq, ev)
            return []
        if isinstance(ev, RiskReject):
            self._intents.forget(ev.intent_seq)
            return []
        out: list[Event]
        if isinstance(ev, RiskApproved):
            out = self._approved(seq, env, ev)
        elif isinstance(ev, CancelAll):
            out = self._cancel_all(seq, env, ev)
        elif isinstance(ev, TradePrint):
            out = self._print(seq, env, ev)
        elif isinstance(ev, BookChanged) and env.cause == self._checked:
            return []  # derived from the frame just checked: the book has not changed since
        else:  # FeedFrame, RestBook, BookChanged: the book (already updated by the book actor) may have moved
            self._checked = seq
            out = self._book_check(seq, env.ts_ns)
        out += self._score_changes()
        return out

    # ---------------------------------------------------------------------------------------------- orders
    def _approved(self, seq: int, env: Envelope, ev: RiskApproved) -> list[Event]:
        intent = check_approval(seq, env, ev, self._intents)
        if isinstance(intent, GuardViolation):
            return [intent]
        if isinstance(intent, OrderIntent):
            return self._place(ev.intent_seq, intent)
        return [self._cancel(intent.client_id)]

    def _place(self, intent_seq: int, it: OrderIntent) -> list[Event]:
        def reject(message: str) -> list[Event]:
            return [ExchangeReply(client_id=it.client_id, op="place", ok=False, status="rejected", message=message)]

        info = self._markets.get(it.token_id)
        if info is None:
            return reject("sim: unknown token")
        market, is_yes, _ = info
        if it.condition_id != market.condition_id:
            return reject("sim: token is not in that market")
        if it.client_id in self.live or it.client_id in self._done:
            return reject("sim: duplicate client_id")
        book = self.books.get(it.token_id)
        if book is None or not book.valid:
            return reject("sim: no valid book for the token")
        tick = book.tick if book.tick > 0 else market.tick
        if not (tick <= it.price <= MICRO - tick and it.price % tick == 0):
            return reject(f"sim: price {it.price} is not a multiple of tick {tick} within [tick, 1 - tick]")
        if not (it.size > 0 and it.size >= market.min_order_size):
            return reject(f"sim: size {it.size} below the minimum order size {market.min_order_size}")
        if self._would_cross(it.token_id, it.side, it.price):
            return reject(POST_ONLY_CROSS if it.post_only else "sim: taker orders are not simulated")
        if it.side == "SELL":
            reserved = sum(o.remaining for o in self.live.values() if o.token_id == it.token_id and o.side == "SELL")
            if self.held.get(it.token_id, 0) - reserved < it.size:
                return reject("sim: not enough balance")
        ahead = 0
        if self._queue_ahead:
            ahead = self._level(it.token_id, it.side, it.price) or 0
        order = SimOrder(it, intent_seq, is_yes, ahead)
        self.live[it.client_id] = order
        return [
            ExchangeReply(client_id=it.client_id, op="place", ok=True, order_id=order.order_id, status="live"),
            SimRested(client_id=it.client_id, order_id=order.order_id, token_id=it.token_id, side=it.side,
                      price=it.price, size=it.size, queue_ahead=ahead),
        ]

    def _cancel(self, client_id: str) -> ExchangeReply:
        order = self.live.pop(client_id, None)
        if order is None:
            msg = "sim: order already filled or cancelled" if client_id in self._done else "sim: unknown order"
            return ExchangeReply(client_id=client_id, op="cancel", ok=False, message=msg)
        self._done.add(client_id)
        return ExchangeReply(client_id=client_id, op="cancel", ok=True, order_id=order.order_id, status="cancelled")

    def _cancel_all(self, seq: int, env: Envelope, ev: CancelAll) -> list[Event]:
        if env.src != RISK_SRC:
            return [GuardViolation(seq=seq, detail=f"cancel-all from {env.src!r}, not from the risk gate")]
        out: list[Event] = [self._cancel(cid) for cid in sorted(self.live)]
        out.append(ExchangeReply(client_id="", op="cancel_all", ok=True))
        return out

    # ---------------------------------------------------------------------------------------------- book views
    def _view(self, token: str) -> TokenBookView | None:
        book = self.books.get(token)
        return book if book is not None and book.valid else None

    def _would_cross(self, token: str, side: str, price: int) -> bool:
        own = self._view(token)
        comp_token = self._markets[token][2]
        comp = self._view(comp_token)
        if side == "BUY":
            if own is not None and (a := own.best_ask()) is not None and a[0] <= price:
                return True
            return comp is not None and (b := comp.best_bid()) is not None and b[0] >= MICRO - price
        if own is not None and (b := own.best_bid()) is not None and b[0] >= price:
            return True
        return comp is not None and (a := comp.best_ask()) is not None and a[0] <= MICRO - price

    def _level(self, token: str, side: str, price: int) -> int | None:
        """Size resting at ``price`` on ``side`` of ``token`` (either view); None when no book is valid."""
        own = self._view(token)
        comp = self._view(self._markets[token][2])
        sizes = []
        if own is not None:
            sizes.append(own.size_at(side, price))
        if comp is not None:
            sizes.append(comp.size_at(_opp(side), MICRO - price))
        return max(sizes) if sizes else None

    def _cross_depth(self, o: SimOrder) -> int | None:
        """Size resting on the other side that crosses ``o`` (either view); None when no book is valid."""
        own = self._view(o.token_id)
        comp = self._view(self._markets[o.token_id][2])
        depths = []
        if own is not None:
            depths.append(self._depth(own, _opp(o.side), o.price))
        if comp is not None:
            depths.append(self._depth(comp, o.side, MICRO - o.price))
        return max(depths) if depths else None

    @staticmethod
    def _depth(book: TokenBookView, side: str, limit: int) -> int:
        """Size on ``side`` of ``book`` at prices at or better than ``limit`` (bids >= limit, asks <= limit)."""
        best = book.best_bid() if side == "BUY" else book.best_ask()
        if best is None or ((best[0] < limit) if side == "BUY" else (best[0] > limit)):
            return 0  # the common case: nothing crosses, no need to walk the levels
        total = 0
        for p, s in book.levels(side, DEPTH_LEVELS):
            if (p < limit) if side == "BUY" else (p > limit):
                break
            total += s
        return total

    def _mid(self, token: str) -> int | None:
        own = self._view(token)
        if own is not None and (m := own.mid()) is not None:
            return m
        comp = self._view(self._markets[token][2])
        if comp is not None and (m := comp.mid()) is not None:
            return MICRO - m
        return None

    # ---------------------------------------------------------------------------------------------- fills
    @staticmethod
    def _expire_credit(o: SimOrder, now: int) -> None:
        if now - o.credit_ts > EXPLAIN_WINDOW_NS:
            o.credit = 0

    def _book_check(self, seq: int, now: int) -> list[Event]:
        if not self.live:
            return []
        # 1. the queue can't be longer than the level
        for o in self.live.values():
            if o.ahead > 0:
                level = self._level(o.token_id, o.side, o.price)
                if level is not None and o.ahead > level:
                    self._expire_credit(o, now)
                    o.credit += o.ahead - level
                    o.credit_ts = now
                    o.ahead = level
        # 2. resting liquidity that crosses our orders would have traded with us
        fills: list[tuple[SimOrder, int]] = []
        for m in self.params.markets:
            for yes_side in ("BUY", "SELL"):
                key = (m.condition_id, yes_side)
                group = sorted(
                    (o for o in self.live.values() if o.condition_id == m.condition_id and o.yes_side == yes_side),
                    key=SimOrder.priority,
                )
                if not group:
                    self._cross_used.pop(key, None)
                    continue
                depths = [self._cross_depth(o) for o in group]
                if any(d is None for d in depths):
                    continue  # a book we can't see: neither fill nor forget what was consumed
                if max(d for d in depths if d is not None) == 0:
                    self._cross_used.pop(key, None)
                    continue
                used = self._cross_used.get(key, 0)
                for o, d in zip(group, depths, strict=True):
                    avail = (d or 0) - used
                    if avail > 0:
                        f = min(o.remaining, avail)
                        fills.append((o, f))
                        used += f
                self._cross_used[key] = used
        return self._emit_fills(seq, fills)

    def _print(self, seq: int, env: Envelope, ev: TradePrint) -> list[Event]:
        info = self._markets.get(ev.token_id)
        if info is None or ev.size == 0:
            return []
        market, is_yes, _ = info
        taker = ev.side if is_yes else _opp(ev.side)
        price = ev.price if is_yes else MICRO - ev.price
        # the same trade printed on both tokens of the pair within one frame counts once
        if env.cause != self._print_cause:
            self._print_cause = env.cause
            self._print_seen = []
        key = (market.condition_id, taker, price, ev.size)
        for i, (k, token) in enumerate(self._print_seen):
            if k == key and token != ev.token_id:
                del self._print_seen[i]
                return []
        self._print_seen.append((key, ev.token_id))
        if not self.live:
            return []
        maker = _opp(taker)
        group = sorted(
            (
                o for o in self.live.values()
                if o.condition_id == market.condition_id and o.yes_side == maker
                and (o.yes_price >= price if maker == "BUY" else o.yes_price <= price)
            ),
            key=SimOrder.priority,
        )
        volume = ev.size
        used = 0
        fills: list[tuple[SimOrder, int]] = []
        for o in group:
            if o.yes_price != price:  # traded through our price: the sweep would have taken us first
                f = min(o.remaining, volume - used)
            else:  # at our price: the credit, then the queue ahead, then us
                self._expire_credit(o, env.ts_ns)
                explained = min(volume, o.credit)
                o.credit -= explained
                real = volume - explained
                f = min(o.remaining, max(0, real - o.ahead - used))
                o.ahead -= min(real, o.ahead)
            if f > 0:
                fills.append((o, f))
                used += f
        return self._emit_fills(seq, fills)

    def _emit_fills(self, seq: int, fills: list[tuple[SimOrder, int]]) -> list[Event]:
        out: list[Event] = []
        for i, (o, f) in enumerate(fills):
            o.filled += f
            self.held[o.token_id] = self.held.get(o.token_id, 0) + (f if o.side == "BUY" else -f)
            out.append(Fill(client_id=o.client_id, token_id=o.token_id, side=o.side, price=o.price, size=f,
                            trade_id=f"sim-{seq}-{i}", status="CONFIRMED"))
            if o.remaining == 0:
                del self.live[o.client_id]
                self._done.add(o.client_id)
        return out

    # ---------------------------------------------------------------------------------------------- rewards
    def _score_changes(self) -> list[Event]:
        out: list[Event] = []
        for m in self.params.markets:
            last = self._scores.get(m.condition_id, (0, False, 0, 0))
            orders = [o for o in self.live.values() if o.condition_id == m.condition_id]
            if not orders and last[0] == 0 and last[2] == 0 and last[3] == 0:
                continue
            q_bid = q_ask = 0
            v, min_size = m.reward_max_spread, m.reward_min_size
            if v > 0 and min_size > 0:
                for o in orders:
                    mid = self._mid(o.token_id)
                    if mid is None or o.remaining < min_size:
                        continue
                    s = abs(o.price - mid)
                    if s >= v:
                        continue
                    score = (v - s) * (v - s) * o.remaining // (v * v)
                    if o.yes_side == "BUY":
                        q_bid += score
                    else:
                        q_ask += score
            yes_mid = self._mid(m.yes_token)
            if yes_mid is not None and REWARD_MID_LO <= yes_mid <= REWARD_MID_HI:
                q_min = max(min(q_bid, q_ask), max(q_bid // 3, q_ask // 3))
            else:
                q_min = min(q_bid, q_ask)
            state = (q_min, q_bid > 0 and q_ask > 0, q_bid, q_ask)
            if state != last:
                self._scores[m.condition_id] = state
                out.append(RestingScore(condition_id=m.condition_id, score=q_min, two_sided=state[1],
                                        q_bid=q_bid, q_ask=q_ask))
        return out
