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

**Work per event (speed only; the output is the same as checking and scoring every market every time).** The
book check and the scores of a market depend only on that market's two books and its live orders. Each market
keeps a counter of changes to its orders (placed, filled, cancelled) and remembers the book ``version`` s
(``actors.core.book.TokenBook.version``) and that counter as of its last check and its last scoring; a market
none of whose inputs changed since is skipped (re-checking an unchanged book changes nothing; the last score is
still the score). Scores are also skipped when the market's two mids and its orders are what they were when last
scored. Views without a ``version`` (and configurations where markets share a condition id or a token) are
checked every time; the latter through the plain all-markets code (``_book_check_all``, ``_score_changes_all``).

Not modelled: latency (replies and fills are instant), fees and rebates, collateral, order expiry, neg-risk
conversion, the 2-minute post-only mode, cancels racing fills.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Protocol

from actors.core.book import Books, TokenBook
from actors.core.gate import IntentMemory, check_approval, check_cancel_all
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
_NO_SCORE = (0, False, 0, 0)

# what ``step`` does with each consumed event type (decided once per type, see ``SimExchange._kind``)
_K_REMEMBER, _K_FORGET, _K_APPROVED, _K_CANCEL_ALL, _K_PRINT, _K_BOOK_CHANGED, _K_BOOK = range(7)


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
                 "price", "prio", "side", "size", "token_id", "yes_price", "yes_side")

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
        self.prio = -self.yes_price if self.yes_side == "BUY" else self.yes_price
        """The price part of ``priority`` (fixed for the order's life)."""

    @property
    def remaining(self) -> int:
        return self.size - self.filled

    def priority(self) -> tuple[int, int, int]:
        """Price-time priority among our orders on one YES-terms side (smaller sorts first)."""
        price_key = -self.yes_price if self.yes_side == "BUY" else self.yes_price
        return (price_key, self.ahead, self.intent_seq)


def _prio(o: SimOrder) -> tuple[int, int, int]:
    return (o.prio, o.ahead, o.intent_seq)  # == o.priority()


class _Mkt:
    """Per-market bookkeeping of the simulated exchange (speed only: see "Work per event" in the module docstring)."""

    __slots__ = ("buy_key", "ck_n", "ck_o", "ck_y", "m", "no", "no_book", "orders", "sell_key", "sk_mids", "sk_n",
                 "sk_o", "sk_y", "ver", "yes", "yes_book")

    def __init__(self, m: MarketParams) -> None:
        self.m = m
        self.yes = m.yes_token
        self.no = m.no_token
        self.buy_key = (m.condition_id, "BUY")
        self.sell_key = (m.condition_id, "SELL")
        self.orders: dict[str, SimOrder] = {}
        """This market's resting orders by client id (a subset of ``SimExchange.live``)."""
        self.ver = 0
        """Incremented on every change of ``orders`` or of an order's filled size."""
        self.yes_book: TokenBook | None = None
        self.no_book: TokenBook | None = None
        """The two books when they are the book actor's own (stable objects with a ``version``), else None."""
        # book versions and ``ver`` as of the last book check (ck_*) and the last scoring (sk_*); -1: never
        self.ck_y = self.ck_n = self.ck_o = -1
        self.sk_y = self.sk_n = self.sk_o = -1
        self.sk_mids: tuple[int | None, int | None, int] | None = None
        """(YES mid, NO mid, ``ver``) as of the last scoring."""


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
        self._kinds: dict[type, int] = {}
        cids = [m.condition_id for m in params.markets]
        self._mkts = tuple(_Mkt(m) for m in params.markets)
        self._mkt_of: dict[str, _Mkt] = {mk.m.condition_id: mk for mk in self._mkts}
        self._fast = len(set(cids)) == len(cids) and len(self._markets) == 2 * len(cids)
        """Markets have distinct condition ids and tokens: per-market work applies (else the all-markets code)."""
        if self._fast and type(books) is Books:  # the book actor's books: stable objects that carry a version
            for mk in self._mkts:
                mk.yes_book = books.get(mk.yes)
                mk.no_book = books.get(mk.no)

    # ---------------------------------------------------------------------------------------------- dispatch
    @staticmethod
    def _kind(t: type) -> int:
        if issubclass(t, (OrderIntent, CancelIntent)):
            return _K_REMEMBER
        if issubclass(t, RiskReject):
            return _K_FORGET
        if issubclass(t, RiskApproved):
            return _K_APPROVED
        if issubclass(t, CancelAll):
            return _K_CANCEL_ALL
        if issubclass(t, TradePrint):
            return _K_PRINT
        if issubclass(t, BookChanged):
            return _K_BOOK_CHANGED
        return _K_BOOK  # FeedFrame, RestBook

    def step(self, seq: int, env: Envelope) -> list[Event]:
        ev = env.ev
        t = type(ev)
        kind = self._kinds.get(t)
        if kind is None:
            kind = self._kinds[t] = self._kind(t)
        if kind == _K_REMEMBER:
            self._intents.remember(seq, ev)  # type: ignore[arg-type]
            return []
        if kind == _K_FORGET:
            self._intents.forget(ev.intent_seq)  # type: ignore[attr-defined]
            return []
        out: list[Event]
        if kind == _K_APPROVED:
            out = self._approved(seq, env, ev)  # type: ignore[arg-type]
        elif kind == _K_CANCEL_ALL:
            out = self._cancel_all(seq, env, ev)  # type: ignore[arg-type]
        elif kind == _K_PRINT:
            out = self._print(seq, env, ev)  # type: ignore[arg-type]
        elif kind == _K_BOOK_CHANGED and env.cause == self._checked:
            return []  # derived from the frame just checked: the book has not changed since
        else:  # FeedFrame, RestBook, BookChanged: the book (already updated by the book actor) may have moved
            self._checked = seq
            out = self._book_check(seq, env.ts_ns)
        if self._fast:
            scores = self._score_changes()
            if scores:
                out += scores
        else:
            out += self._score_changes_all()
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
        mk = self._mkt_of[market.condition_id]
        mk.orders[it.client_id] = order
        mk.ver += 1
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
        mk = self._mkt_of.get(order.condition_id)
        if mk is not None:
            mk.orders.pop(client_id, None)
            mk.ver += 1
        return ExchangeReply(client_id=client_id, op="cancel", ok=True, order_id=order.order_id, status="cancelled")

    def _cancel_all(self, seq: int, env: Envelope, ev: CancelAll) -> list[Event]:
        refused = check_cancel_all(seq, env)
        if refused is not None:
            return [refused]
        out: list[Event] = [self._cancel(cid) for cid in sorted(self.live)]
        out.append(ExchangeReply(client_id="", op="cancel_all", ok=True))
        return out

    # ---------------------------------------------------------------------------------------------- book views
    def _view(self, token: str) -> TokenBookView | None:
        book = self.books.get(token)
        return book if book is not None and book.valid else None

    def _views(self, mk: _Mkt) -> tuple[TokenBookView | None, TokenBookView | None]:
        """``(_view(yes token), _view(no token))`` of a market."""
        yb = mk.yes_book
        nb = mk.no_book
        if yb is None or nb is None:
            return self._view(mk.yes), self._view(mk.no)
        return (yb if yb.valid else None), (nb if nb.valid else None)

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
        if not self._fast:
            return self._book_check_all(seq, now)
        fills: list[tuple[SimOrder, int]] = []
        for mk in self._mkts:
            yb = mk.yes_book
            nb = mk.no_book
            if yb is not None and nb is not None:
                yv = yb.version
                nv = nb.version
                if mk.ck_o == mk.ver and mk.ck_y == yv and mk.ck_n == nv:
                    continue  # nothing this check reads has changed since it last ran: it would change nothing
                mk.ck_y = yv
                mk.ck_n = nv
                mk.ck_o = mk.ver  # as of now: fills found below change ``ver``, so the next check runs again
            self._check_market(mk, now, fills)
        return self._emit_fills(seq, fills) if fills else []

    def _check_market(self, mk: _Mkt, now: int, fills: list[tuple[SimOrder, int]]) -> None:
        """``_book_check_all`` restricted to one market (its orders, its two books, its crossing memory)."""
        orders = mk.orders
        if not orders:
            self._cross_used.pop(mk.buy_key, None)
            self._cross_used.pop(mk.sell_key, None)
            return
        yv, nv = self._views(mk)
        yes = mk.yes
        # 1. the queue can't be longer than the level
        for o in orders.values():
            if o.ahead > 0:
                own, comp = (yv, nv) if o.token_id == yes else (nv, yv)
                if own is None:
                    if comp is None:
                        continue
                    level = comp.size_at(_opp(o.side), MICRO - o.price)
                elif comp is None:
                    level = own.size_at(o.side, o.price)
                else:
                    level = max(own.size_at(o.side, o.price), comp.size_at(_opp(o.side), MICRO - o.price))
                if o.ahead > level:
                    self._expire_credit(o, now)
                    o.credit += o.ahead - level
                    o.credit_ts = now
                    o.ahead = level
        # 2. resting liquidity that crosses our orders would have traded with us
        depth = self._depth
        cross_used = self._cross_used
        for yes_side, key in (("BUY", mk.buy_key), ("SELL", mk.sell_key)):
            group = [o for o in orders.values() if o.yes_side == yes_side]
            if not group:
                cross_used.pop(key, None)
                continue
            if len(group) > 1:
                group.sort(key=_prio)
            depths: list[int] = []
            for o in group:
                own, comp = (yv, nv) if o.token_id == yes else (nv, yv)
                if own is None:
                    if comp is None:
                        break  # a book we can't see: neither fill nor forget what was consumed
                    d = depth(comp, o.side, MICRO - o.price)
                elif comp is None:
                    d = depth(own, _opp(o.side), o.price)
                else:
                    d = max(depth(own, _opp(o.side), o.price), depth(comp, o.side, MICRO - o.price))
                depths.append(d)
            else:
                if max(depths) == 0:
                    cross_used.pop(key, None)
                    continue
                used = cross_used.get(key, 0)
                for o, d in zip(group, depths, strict=True):
                    avail = d - used
                    if avail > 0:
                        f = min(o.remaining, avail)
                        fills.append((o, f))
                        used += f
                cross_used[key] = used

    def _book_check_all(self, seq: int, now: int) -> list[Event]:
        """The book check over every market and every live order (the reference the per-market path follows)."""
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
                o for o in (self._mkt_of[market.condition_id].orders if self._fast else self.live).values()
                if o.condition_id == market.condition_id and o.yes_side == maker
                and (o.yes_price >= price if maker == "BUY" else o.yes_price <= price)
            ),
            key=_prio,
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
            mk = self._mkt_of.get(o.condition_id)
            if mk is not None:
                mk.ver += 1
            if o.remaining == 0:
                del self.live[o.client_id]
                self._done.add(o.client_id)
                if mk is not None:
                    mk.orders.pop(o.client_id, None)
        return out

    # ---------------------------------------------------------------------------------------------- rewards
    def _score_changes(self) -> list[Event]:
        """``_score_changes_all`` for the markets whose books or orders changed since they were last scored."""
        out: list[Event] | None = None
        for mk in self._mkts:
            ver = mk.ver
            yb = mk.yes_book
            nb = mk.no_book
            if yb is not None and nb is not None:
                yv = yb.version
                nv = nb.version
                if mk.sk_o == ver and mk.sk_y == yv and mk.sk_n == nv:
                    continue
                mk.sk_y = yv
                mk.sk_n = nv
                mk.sk_o = ver
            orders = mk.orders
            m = mk.m
            if not orders:
                last = self._scores.get(m.condition_id, _NO_SCORE)
                if last[0] == 0 and last[2] == 0 and last[3] == 0:
                    mk.sk_mids = None
                    continue
            yv_, nv_ = self._views(mk)
            mids = (None if yv_ is None else yv_.mid(), None if nv_ is None else nv_.mid(), ver)
            if mids == mk.sk_mids:
                continue  # the score is a function of these two mids and of the orders: unchanged
            mk.sk_mids = mids
            ev = self._score_market(m, orders.values(), mids[0], mids[1])
            if ev is not None:
                if out is None:
                    out = []
                out.append(ev)
        return out or []

    def _score_market(self, m: MarketParams, orders: Iterable[SimOrder], yes_mid: int | None,
                      no_mid: int | None) -> RestingScore | None:
        """One market's step of ``_score_changes_all``, given the mids of its YES and NO books (None: no mid)."""
        last = self._scores.get(m.condition_id, _NO_SCORE)
        # _mid() of a token: its own mid, else the complement's mirrored
        mid_yes = yes_mid if yes_mid is not None else (None if no_mid is None else MICRO - no_mid)
        mid_no = no_mid if no_mid is not None else (None if yes_mid is None else MICRO - yes_mid)
        q_bid = q_ask = 0
        v, min_size = m.reward_max_spread, m.reward_min_size
        if v > 0 and min_size > 0:
            yes = m.yes_token
            for o in orders:
                mid = mid_yes if o.token_id == yes else mid_no
                remaining = o.size - o.filled
                if mid is None or remaining < min_size:
                    continue
                s = abs(o.price - mid)
                if s >= v:
                    continue
                score = (v - s) * (v - s) * remaining // (v * v)
                if o.yes_side == "BUY":
                    q_bid += score
                else:
                    q_ask += score
        if mid_yes is not None and REWARD_MID_LO <= mid_yes <= REWARD_MID_HI:
            q_min = max(min(q_bid, q_ask), max(q_bid // 3, q_ask // 3))
        else:
            q_min = min(q_bid, q_ask)
        state = (q_min, q_bid > 0 and q_ask > 0, q_bid, q_ask)
        if state == last:
            return None
        self._scores[m.condition_id] = state
        return RestingScore(condition_id=m.condition_id, score=q_min, two_sided=state[1], q_bid=q_bid, q_ask=q_ask)

    def _score_changes_all(self) -> list[Event]:
        """Scores of every market, recomputed (the reference the per-market path follows)."""
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
