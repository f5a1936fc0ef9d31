"""The quoter: books + inventory + ``params.quoter`` -> the two-sided quotes we want resting, per market.

Recipe (YES terms, integer micro units; docs/core-contracts.md for the complement rule):
- ``fair`` = microprice of the YES book (or its mid when ``use_microprice`` is off).
- ``skew`` = net YES position x ``skew_per_share`` (net = YES shares - NO shares; truncated toward zero).
  ``bid = fair - skew - spread // 2`` and ``ask = bid + spread`` (``spread`` at least one tick), so a long
  position lowers both quotes.
- Prices: bid rounded down and ask rounded up to the YES book's current tick; further levels step out by
  ``level_spacing`` (at least one tick apart). Post-only: a bid is kept below the best ask and an ask above the best
  bid (stepping back to the nearest tick). A bid above ``1 - tick`` (an ask below ``tick``) is moved back into
  range; a level that would fall outside ``[tick, 1 - tick]`` on the aggressive side is dropped, never clamped
  toward the market. Every adjustment moves a bid down or an ask up, so our bid stays below our ask.
- Legs: the bid is BUY YES @ b; the ask is SELL YES @ a while we hold the YES shares for it, else BUY NO @ (1 - a)
  rounded down to the NO book's tick and kept below the NO best ask.
- Sizes: ``size`` per level (raised to the market's ``reward_min_size`` when rewards are on), tapered linearly to
  0 on the side that grows the position as the net position goes from 0 to ``max_position``, never more than the
  room left to ``max_position`` (summed over levels), rounded down to 0.01 share; a level below
  ``min_order_size`` is dropped.
- Rewards (market with ``reward_min_size`` and ``reward_max_spread``): the first level on a side whose size scores
  is pulled inside ``max_spread`` of the mid when the spread would leave it outside (unless that would cross our own
  other side or the book); both sides are always quoted when the taper allows. ``RewardEstimate`` reports the
  score of the desired quotes (``actors.core.rewards``).
- No quote (empty ``DesiredQuotes``) when either token's book is invalid, the YES book lacks a side, the feed is
  connecting/disconnected or silent for more than ``stale_after_ns`` (0 disables that check), or after a
  ``KillSwitch`` (latched).

``DesiredQuotes`` is emitted only when the set of quotes changes, ``RewardEstimate`` only when the score or the
two-sided flag changes. Evaluated on ``BookChanged``, ``Position``, ``Tick``, ``FeedStatus`` and ``KillSwitch``.

Speed only: a market whose inputs are what they were at its last evaluation is not planned again: the plan would
be the same, so nothing would be emitted. The inputs (``_plan_key``) are the gate and both positions, and of the
books exactly what ``plan_quotes`` reads: both validities, the YES best bid and ask prices, the fair price, both
ticks and the NO best ask price. This skips e.g. the second ``BookChanged`` of a frame that moved both tokens, a
change of the NO bid or of a size that leaves the fair price where it was, and most ``Tick`` s.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from actors.core.book import Books, TokenBook
from actors.core.rewards import market_score
from events.base import MICRO, Event
from events.codec import Envelope
from events.control import KillSwitch, Tick
from events.market import BookChanged, FeedFrame, FeedStatus
from events.orders import DesiredQuotes, Position, Quote, RewardEstimate
from events.params import CoreParams, MarketParams, QuoterParams

LOT = 10_000
"""Quote sizes are rounded down to 0.01 share (the exchange's size precision)."""


class BookView(Protocol):
    tick: int
    valid: bool

    def best_bid(self) -> tuple[int, int] | None: ...
    def best_ask(self) -> tuple[int, int] | None: ...
    def microprice(self) -> int | None: ...


class BooksView(Protocol):
    def get(self, token_id: str) -> BookView | None: ...


def floor_tick(x: int, tick: int) -> int:
    return x // tick * tick


def ceil_tick(x: int, tick: int) -> int:
    return -((-x) // tick) * tick


def _good_tick(tick: int) -> bool:
    return 0 < tick <= 100_000 and MICRO % tick == 0


class Plan:
    """The outcome of one quoting computation for one market."""

    __slots__ = ("fair", "mid", "q_one", "q_two", "quotes", "reason")

    def __init__(self, quotes: tuple[Quote, ...], fair: int, reason: str, mid: int = 0,
                 q_one: list[tuple[int, int]] | None = None, q_two: list[tuple[int, int]] | None = None) -> None:
        self.quotes = quotes
        self.fair = fair
        self.reason = reason
        self.mid = mid
        self.q_one = q_one or []
        """(YES-terms price, size) of orders on the YES-bid side."""
        self.q_two = q_two or []
        """(YES-terms price, size) of orders on the YES-ask side (SELL YES, and BUY NO as 1 - price)."""


def taper_sizes(base: int, growth: int, max_position: int, levels: int, min_size: int) -> list[int]:
    """Sizes of up to ``levels`` quotes on a side whose fills move the position from ``growth`` upward.

    Linear taper: full ``base`` while ``growth <= 0``, ``base * (max_position - growth) / max_position`` above,
    0 at ``max_position``; the sum never exceeds the room left (``max_position - growth``). Rounded down to
    ``LOT``; stops at the first size below ``min_size``.
    """
    room = max_position - growth
    if room <= 0 or base <= 0:
        return []
    per = base * room // max_position if growth > 0 else base
    out: list[int] = []
    for _ in range(levels):
        s = per if per < room else room  # min(per, room)
        s -= s % LOT
        if s <= 0 or s < min_size:
            break
        out.append(s)
        room -= s
    return out


def _side_prices(bid_sizes: list[int], ask_sizes: list[int], raw_bid: int, raw_ask: int, spacing: int, tick: int,
                 mid: int, v: int, reward_min: int, bid_cap: int, ask_floor: int, tighten: bool,
                 ) -> tuple[list[int], list[int]]:
    """The bid and ask prices of ``plan_quotes`` (``tighten``: pull the first scoring level inside ``v``)."""
    lo = tick
    hi = MICRO - tick
    bids: list[int] = []
    for i, size in enumerate(bid_sizes):
        b = (raw_bid - i * spacing) // tick * tick  # floor_tick
        if tighten and i == 0 and size >= reward_min and mid - b >= v:
            b = -((v - 1 - mid) // tick) * tick  # ceil_tick(mid - v + 1, tick)
        if b > bid_cap:
            b = bid_cap
        if bids and b > bids[-1] - tick:
            b = bids[-1] - tick
        if b < lo:
            break
        bids.append(b)
    asks: list[int] = []
    for i, size in enumerate(ask_sizes):
        a = -((-(raw_ask + i * spacing)) // tick) * tick  # ceil_tick
        if tighten and i == 0 and size >= reward_min and a - mid >= v:
            a = (mid + v - 1) // tick * tick  # floor_tick
        if a < ask_floor:
            a = ask_floor
        if asks and a < asks[-1] + tick:
            a = asks[-1] + tick
        if a > hi:
            break
        asks.append(a)
    return bids, asks


def plan_quotes(m: MarketParams, qp: QuoterParams, yes: BookView | None, no: BookView | None,
                pos_yes: int, pos_no: int, max_size: int = 10**15) -> Plan:
    """The quotes wanted in market ``m`` given both books and the positions (pure).

    ``max_size`` is the risk gate's per-order size limit: the quoter never asks for more (it would only be
    rejected), and it chases the rewards minimum size only when that fits under the limit.
    """
    if yes is None or no is None or not yes.valid or not no.valid:
        return Plan((), 0, "book_invalid")
    top_b = yes.best_bid()
    top_a = yes.best_ask()
    if top_b is None or top_a is None:
        return Plan((), 0, "one_sided_book")
    best_bid = top_b[0]
    best_ask = top_a[0]
    mid = (best_bid + best_ask) // 2
    fair = (yes.microprice() if qp.use_microprice else None) or mid
    tick = yes.tick
    ntick = no.tick
    if not (0 < tick <= 100_000 and MICRO % tick == 0 and 0 < ntick <= 100_000 and MICRO % ntick == 0):  # _good_tick
        return Plan((), fair, "bad_tick", mid)
    net = pos_yes - pos_no
    skew = abs(net) * qp.skew_per_share // MICRO
    if net < 0:
        skew = -skew
    spread = qp.spread
    if spread < tick:
        spread = tick
    raw_bid = fair - skew - spread // 2
    raw_ask = raw_bid + spread
    v = m.reward_max_spread
    reward_min = m.reward_min_size
    rewards = v > 0 and reward_min > 0
    base = qp.size
    if rewards and reward_min <= max_size and reward_min > base:
        base = reward_min
    if base > max_size:
        base = max_size
    min_order = m.min_order_size
    bid_sizes = taper_sizes(base, net, qp.max_position, qp.levels, min_order)
    ask_sizes = taper_sizes(base, -net, qp.max_position, qp.levels, min_order)
    hi = MICRO - tick
    bid_cap = (best_ask - 1) // tick * tick  # post-only and in range: min(hi, floor_tick(best_ask - 1))
    if bid_cap > hi:
        bid_cap = hi
    ask_floor = -((-(best_bid + 1)) // tick) * tick  # max(lo, ceil_tick(best_bid + 1))
    if ask_floor < tick:
        ask_floor = tick
    spacing = qp.level_spacing
    bids, asks = _side_prices(bid_sizes, ask_sizes, raw_bid, raw_ask, spacing, tick, mid, v, reward_min, bid_cap,
                              ask_floor, rewards)
    if rewards and bids and asks and bids[0] >= asks[0]:
        # untightened prices keep bid < ask by construction
        bids, asks = _side_prices(bid_sizes, ask_sizes, raw_bid, raw_ask, spacing, tick, mid, v, reward_min, bid_cap,
                                  ask_floor, False)

    yes_token = m.yes_token
    quotes: list[Quote] = []
    q_one: list[tuple[int, int]] = []
    q_two: list[tuple[int, int]] = []
    for b, size in zip(bids, bid_sizes, strict=False):
        quotes.append(Quote(token_id=yes_token, side="BUY", price=b, size=size))
        q_one.append((b, size))
    yes_avail = pos_yes if pos_yes > 0 else 0
    no_top = no.best_ask()
    no_cap = MICRO - ntick
    if no_top is not None:
        c = (no_top[0] - 1) // ntick * ntick
        if c < no_cap:
            no_cap = c
    prev_no = MICRO
    for a, size in zip(asks, ask_sizes, strict=False):
        if yes_avail >= size:
            yes_avail -= size
            quotes.append(Quote(token_id=yes_token, side="SELL", price=a, size=size))
            q_two.append((a, size))
            continue
        qn = min((MICRO - a) // ntick * ntick, no_cap, prev_no - ntick)
        if qn < ntick:
            break
        prev_no = qn
        quotes.append(Quote(token_id=m.no_token, side="BUY", price=qn, size=size))
        q_two.append((MICRO - qn, size))
    if not quotes:
        return Plan((), fair, "no_size" if not (bid_sizes or ask_sizes) else "no_price", mid)
    return Plan(tuple(quotes), fair, "quoting", mid, q_one, q_two)


class _Market:
    __slots__ = ("key", "m", "quotes", "reward", "vkey")

    def __init__(self, m: MarketParams) -> None:
        self.m = m
        self.quotes: tuple[Quote, ...] = ()
        self.reward: tuple[int, bool] = (0, False)
        self.key: object = None
        """Everything the last evaluation's plan depended on (None: unknown, plan again)."""
        self.vkey: tuple[int, int, int, int] | None = None
        """(YES book version, NO book version, positions) of the last evaluation, when it was planned from the book
        actor's books (a cheaper first test than ``key``; None: not known)."""


class QuoterActor:
    """Desired quotes per market; see the module docstring. ``books`` is the book actor's read-only view."""

    name = "quoter"
    consumes = (BookChanged, Position, Tick, FeedFrame, FeedStatus, KillSwitch)

    def __init__(self, params: CoreParams, books: BooksView) -> None:
        self.params = params
        self.qp = params.quoter
        self.max_size = params.risk.max_order_size
        self.books = books
        self._markets = [_Market(m) for m in params.markets]
        self._all = tuple(range(len(self._markets)))
        self._index: dict[str, int] = {}
        for i, m in enumerate(params.markets):
            self._index[m.yes_token] = i
            self._index[m.no_token] = i
        self._pairs: list[tuple[TokenBook | None, TokenBook | None]] | None = None
        """Per market, its (YES, NO) books when ``books`` is the book actor's view (its book objects never change)."""
        if type(books) is Books:
            self._pairs = [(books.get(m.yes_token), books.get(m.no_token)) for m in params.markets]
        self._pos: dict[str, int] = {}
        self._last_feed_ns: int | None = None
        self._feed_state = "unknown"
        self._conn = 0
        self.killed = ""
        self.evaluations = 0
        self.emitted = 0

    def step(self, seq: int, env: Envelope) -> Sequence[Event]:
        ev = env.ev
        t = type(ev)
        now = env.ts_ns
        if t is FeedFrame:
            self._last_feed_ns = now
            return ()
        if t is BookChanged:
            i = self._index.get(ev.token_id)  # type: ignore[attr-defined]
            return () if i is None else self._evaluate((i,), now)
        if t is Tick:
            return self._evaluate(self._all, now)
        if t is Position:
            self._pos[ev.token_id] = ev.position  # type: ignore[attr-defined]
            i = self._index.get(ev.token_id)  # type: ignore[attr-defined]
            return () if i is None else self._evaluate((i,), now)
        if t is FeedStatus:
            if ev.conn >= self._conn:  # type: ignore[attr-defined]
                self._conn = ev.conn  # type: ignore[attr-defined]
                self._feed_state = ev.state  # type: ignore[attr-defined]
                self._last_feed_ns = now
            return self._evaluate(self._all, now)
        if t is KillSwitch:
            self.killed = self.killed or ev.reason  # type: ignore[attr-defined]
            return self._evaluate(self._all, now)
        return ()

    def gate(self, now: int) -> str:
        """Why nothing may be quoted right now ("" when quoting is allowed)."""
        if self.killed:
            return "kill_switch"
        if self._feed_state != "connected" and self._feed_state != "unknown":
            return "feed_down"
        last = self._last_feed_ns
        if last is None:
            return "no_feed"
        stale = self.qp.stale_after_ns
        if stale and now - last > stale:
            return "feed_stale"
        return ""

    def plan(self, i: int, now: int) -> Plan:
        mk = self._markets[i]
        blocked = self.gate(now)
        if blocked:
            return Plan((), 0, blocked)
        m = mk.m
        pos = self._pos
        return plan_quotes(m, self.qp, self.books.get(m.yes_token), self.books.get(m.no_token),
                           pos.get(m.yes_token, 0), pos.get(m.no_token, 0), max_size=self.max_size)

    def _plan_key(self, yes: TokenBook, no: TokenBook, py: int, pn: int) -> object:
        """Everything ``plan_quotes`` reads of two books of the book actor, with the positions: equal keys, equal
        plans (any change to ``plan_quotes`` must keep this true)."""
        if not (yes.valid and no.valid):
            return 0  # book_invalid
        bb = yes.bb
        ba = yes.ba
        if not (bb and ba):
            return 1  # one_sided_book
        fair = (yes.microprice() if self.qp.use_microprice else None) or (bb + ba) // 2
        return (bb, ba, fair, yes.tick, no.tick, no.ba, py, pn)

    def _evaluate(self, which: Sequence[int], now: int) -> list[Event]:
        out: list[Event] = []
        blocked = self.gate(now)
        books = self.books
        pairs = self._pairs
        pos = self._pos
        for i in which:
            self.evaluations += 1
            mk = self._markets[i]
            m = mk.m
            if blocked:
                mk.vkey = None
                key: object = blocked
                if key == mk.key:
                    continue
                mk.key = key
                p = Plan((), 0, blocked)
            else:
                if pairs is not None:
                    yes, no = pairs[i]
                else:
                    yes = books.get(m.yes_token)
                    no = books.get(m.no_token)
                py = pos.get(m.yes_token, 0)
                pn = pos.get(m.no_token, 0)
                if type(yes) is TokenBook and type(no) is TokenBook:
                    vkey = (yes.version, no.version, py, pn)
                    if vkey == mk.vkey:
                        continue  # neither book changed at all: same inputs, same plan, nothing to emit
                    mk.vkey = vkey
                    key = self._plan_key(yes, no, py, pn)
                    if key == mk.key:
                        continue  # same inputs, same plan: nothing to emit
                    mk.key = key
                else:
                    mk.key = mk.vkey = None
                p = plan_quotes(m, self.qp, yes, no, py, pn, max_size=self.max_size)
            if p.quotes != mk.quotes:
                mk.quotes = p.quotes
                out.append(DesiredQuotes(condition_id=m.condition_id, quotes=p.quotes, fair=p.fair, reason=p.reason))
            if p.quotes and m.reward_max_spread > 0 and m.reward_min_size > 0:
                reward = market_score(p.mid, p.q_one, p.q_two, m.reward_max_spread, m.reward_min_size)
            else:
                reward = (0, False)
            if reward != mk.reward:
                mk.reward = reward
                out.append(RewardEstimate(condition_id=m.condition_id, score=reward[0], two_sided=reward[1]))
        self.emitted += len(out)
        return out
