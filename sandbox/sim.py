"""The market simulator: a pure, synchronous generator of market-channel events.

`MarketSim(seed, scenario).step()` returns the frames of one step. All randomness comes from the sim's own
`random.Random(seed)`; time is a step counter (timestamps are `t0_ms + step * step_ms` unless the caller passes
`now_ms`), so two sims with the same seed and scenario produce identical frames. Nothing here does I/O or reads
a clock.

A *frame* is what goes on the wire as one text message: a dict (one event) or a list of dicts (an array of events).
"""

from __future__ import annotations

import random
from typing import Any, Protocol

from .book import BinaryBook, BookSnapshot
from .markets import MarketSpec, make_markets
from .scenarios import Scenario, get_scenario
from .wire import MICRO, PIPS, TICK_COARSE, TICK_FINE, fmt_pips, fmt_size, tick_str

Event = dict[str, Any]
Frame = Event | list[Event]

T0_MS = 1_790_000_000_000  # 2026-09-21T14:13:20Z: default start of sim time

# tick_size_change rule (protocol doc §1.4/§7): finer tick once the book trades beyond 0.96 / 0.04,
# back to 0.01 once it trades inside [0.05, 0.95] again (a small hysteresis band avoids flapping).
FINE_ABOVE = 9600
FINE_BELOW = 400
COARSE_LO = 500
COARSE_HI = 9500


class UserHooks(Protocol):
    """What the order side (sandbox/engine.py) wants to hear from the simulator. With no hooks installed, or no
    user liquidity in a book, the simulator draws exactly the same random numbers as without an order side."""

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
    ) -> None: ...

    def on_sim_reduced(self, book: BinaryBook, yes_side: str, price: int) -> None: ...

    def on_tick_coarser(self, book: BinaryBook, new_tick: int, ts: str) -> None: ...


class MarketSim:
    def __init__(
        self,
        seed: int = 1,
        scenario: str | Scenario = "calm",
        *,
        t0_ms: int = T0_MS,
        step_ms: int | None = None,
    ) -> None:
        self.seed = seed
        self.scenario = sc = get_scenario(scenario)
        self.rng = random.Random(seed)
        self.markets: list[MarketSpec] = make_markets(seed, sc.n_markets)
        self.step_ms = step_ms if step_ms is not None else max(1, round(1000 / (sc.steps_per_second or 5.0)))
        self.now_ms = t0_ms
        self.step_no = 0
        self.books: dict[str, BinaryBook] = {}
        self.by_token: dict[str, BinaryBook] = {}
        self.fair: dict[str, int] = {}
        self.band: dict[str, tuple[int, int]] = {}
        self._bba: dict[
            str, tuple[int | None, int | None]
        ] = {}  # last announced (best_bid, best_ask) per token
        self._tx = 0
        self.hooks: UserHooks | None = None  # installed by the order side
        for m in self.markets:
            band = sc.fair_bands[m.index % len(sc.fair_bands)]
            fair = self.rng.randint(*band)
            tick = TICK_FINE if (fair > FINE_ABOVE or fair < FINE_BELOW) else TICK_COARSE
            book = BinaryBook(m, tick, self.now_ms)
            self.books[m.condition_id] = book
            self.by_token[m.yes_token] = book
            self.by_token[m.no_token] = book
            self.fair[m.condition_id] = fair
            self.band[m.condition_id] = band
            self._seed_book(book, fair)
            for t in m.tokens:
                self._bba[t] = self._bba_now(book, t)

    # ---- public -------------------------------------------------------------------------------------------
    @property
    def token_ids(self) -> list[str]:
        return [t for m in self.markets for t in m.tokens]

    def book(self, token_id: str) -> BookSnapshot:
        return self.by_token[token_id].snapshot(token_id)

    def book_event(self, token_id: str) -> Event:
        return self.by_token[token_id].book_event(token_id)

    # the "market source" interface shared with playback (used by the REST API and the WS hub)
    def has(self, token_id: str) -> bool:
        return token_id in self.by_token

    def market_of(self, token_id: str) -> MarketSpec:
        return self.by_token[token_id].spec

    def rest_book(self, token_id: str) -> Event:
        return self.by_token[token_id].rest_book(token_id)

    def best(self, token_id: str) -> tuple[int | None, int | None]:
        return self.by_token[token_id].token_best(token_id)

    def tick(self, token_id: str) -> int:
        return self.by_token[token_id].tick

    def last_trade(self, token_id: str) -> int | None:
        return self.by_token[token_id].last_trade[token_id]

    def step(self, now_ms: int | None = None) -> list[Frame]:
        """Advance one step; return the frames it produced (possibly none)."""
        sc, rng = self.scenario, self.rng
        self.step_no += 1
        self.now_ms = now_ms if now_ms is not None else self.now_ms + self.step_ms
        ts = str(self.now_ms)
        frames: list[Frame] = []

        # 1. fair values move; takers sweep whatever is left on the wrong side of fair
        for m in self.markets:
            cid = m.condition_id
            lo, hi = self.band[cid]
            f = self.fair[cid] + rng.randint(-sc.drift_pips, sc.drift_pips)
            if sc.jump_prob and rng.random() < sc.jump_prob:
                f += rng.choice((-1, 1)) * rng.randint(*sc.jump_pips)
            self.fair[cid] = f = min(hi, max(lo, f))
            book = self.books[cid]
            if rng.random() < sc.arb_prob:
                ba, bb = book.best_ask(), book.best_bid()
                if ba is not None and ba < f:
                    self._emit(frames, book, self._sweep(book, "BUY", None, limit=f - 1, ts=ts), ts)
                elif bb is not None and bb > f:
                    self._emit(frames, book, self._sweep(book, "SELL", None, limit=f + 1, ts=ts), ts)

        # 2. random order flow
        n = rng.randint(*sc.actions_per_step)
        weights = (sc.w_place, sc.w_cancel, sc.w_trade)
        for _ in range(n):
            m = rng.choice(self.markets)
            book = self.books[m.condition_id]
            kind = rng.choices(("place", "cancel", "trade"), weights=weights)[0]
            if kind == "place":
                events = self._place(book, ts)
            elif kind == "cancel":
                events = self._cancel(book, ts)
            else:
                side = "BUY" if rng.random() < self._buy_bias(book) else "SELL"
                qty = self._qty(sc.trade_shares, frac=True)
                events = self._sweep(book, side, qty, limit=None, ts=ts)
            self._emit(frames, book, events, ts)

        # 3. thin books: a whole side disappears
        if sc.p_wipe_side and rng.random() < sc.p_wipe_side:
            m = rng.choice(self.markets)
            book = self.books[m.condition_id]
            yes_side = rng.choice(("BUY", "SELL"))
            levels = book.bids if yes_side == "BUY" else book.asks
            entries: list[dict[str, str]] = []
            for p in sorted(levels):
                if levels[p] > book.user_size(yes_side, p):
                    entries += self._set_sim_part(book, yes_side, p, 0, ts)
            if entries:
                self._emit(frames, book, [self._price_change(book, entries, ts)], ts)
        return frames

    # ---- the order side's entry points (no random draws unless a synthetic taker is asked for) -------------
    def ts_now(self) -> str:
        return str(self.now_ms)

    def external_frames(self, book: BinaryBook, events: list[Any], ts: str) -> list[Frame]:
        """Frames for book changes made by the order side: the events themselves (one frame each, nested lists
        stay array frames) plus `best_bid_ask` where the top of book moved. Draws no random numbers."""
        events = [e for e in events if e]
        if not events:
            return []
        book.timestamp_ms = int(ts)
        out: list[Frame] = list(events)
        for t in book.spec.tokens:
            bba = self._bba_now(book, t)
            if bba != self._bba[t]:
                self._bba[t] = bba
                bb, ba = bba
                out.append(
                    {
                        "event_type": "best_bid_ask",
                        "market": book.spec.condition_id,
                        "asset_id": t,
                        "best_bid": "" if bb is None else fmt_pips(bb),
                        "best_ask": "" if ba is None else fmt_pips(ba),
                        "spread": "" if bb is None or ba is None else fmt_pips(ba - bb),
                        "timestamp": ts,
                    }
                )
        return out

    def price_change(self, book: BinaryBook, entries: list[dict[str, str]], ts: str) -> Event:
        return self._price_change(book, entries, ts)

    def tick_after_trade(self, book: BinaryBook, last_yes: int, ts: str) -> list[Any]:
        """The tick-size rule applied after a trade at YES price `last_yes` (events, possibly none)."""
        new_tick = book.tick
        if book.tick == TICK_COARSE and (last_yes > FINE_ABOVE or last_yes < FINE_BELOW):
            new_tick = TICK_FINE
        elif book.tick == TICK_FINE and COARSE_LO <= last_yes <= COARSE_HI:
            new_tick = TICK_COARSE
        return self._change_tick(book, new_tick, ts) if new_tick != book.tick else []

    def synthetic_take(self, token: str, side: str, qty: int, ts: str | None = None) -> list[Frame]:
        """A synthetic taker order now: `side` BUY lifts `token`'s asks, SELL hits its bids, for `qty`
        micro-shares (levels from the best, at most 4). Returns the frames (not broadcast)."""
        book = self.by_token[token]
        yes_side = side if book.is_yes(token) else ("SELL" if side == "BUY" else "BUY")
        ts = self.ts_now() if ts is None else ts
        frames: list[Frame] = []
        self._emit(frames, book, self._sweep(book, yes_side, qty, limit=None, ts=ts), ts)
        return frames

    # ---- actions ------------------------------------------------------------------------------------------
    def _seed_book(self, book: BinaryBook, fair: int) -> None:
        sc, rng = self.scenario, self.rng
        sides = ["BUY", "SELL"]
        if sc.p_one_sided_start and rng.random() < sc.p_one_sided_start:
            sides.remove(rng.choice(sides))
        for side in sides:
            for _ in range(rng.randint(*sc.initial_levels)):
                p = self._quote_price(book, side, fair, rng.randint(1, sc.depth_ticks))
                if p is None:
                    continue
                levels = book.bids if side == "BUY" else book.asks
                levels[p] = levels.get(p, 0) + self._qty(sc.size_shares, frac=False)

    def _quote_price(self, book: BinaryBook, side: str, fair: int, k: int) -> int | None:
        """A passive price k ticks away from fair, on the grid, inside [tick, 1 - tick], not crossing."""
        t = book.tick
        if side == "BUY":
            p = ((fair - 1) // t) * t - (k - 1) * t
            ba = book.best_ask()
            if ba is not None and p >= ba:
                p = ba - t
        else:
            p = (fair // t + 1) * t + (k - 1) * t
            bb = book.best_bid()
            if bb is not None and p <= bb:
                p = bb + t
        if p < t or p > PIPS - t:
            return None
        return p

    def _qty(self, rng_shares: tuple[int, int], frac: bool) -> int:
        q = self.rng.randint(*rng_shares) * MICRO
        if frac and self.rng.random() < self.scenario.p_fractional_size:
            q += self.rng.randint(1, 99) * (MICRO // 100)
        return q

    def _buy_bias(self, book: BinaryBook) -> float:
        bb, ba = book.best_bid(), book.best_ask()
        if bb is None or ba is None:
            return 0.5
        f = self.fair[book.spec.condition_id]
        mid2 = bb + ba
        return 0.7 if 2 * f > mid2 else 0.3 if 2 * f < mid2 else 0.5

    def _place(self, book: BinaryBook, ts: str) -> list[Event]:
        sc, rng = self.scenario, self.rng
        side = rng.choice(("BUY", "SELL"))
        fair = self.fair[book.spec.condition_id]
        k = 1  # geometric: mostly at the touch, sometimes deeper
        while k < sc.depth_ticks and rng.random() < 0.7:
            k += 1
        p = self._quote_price(book, side, fair, k)
        if p is None:
            return []
        levels = book.bids if side == "BUY" else book.asks
        entries = book.set_level(side, p, levels.get(p, 0) + self._qty(sc.size_shares, frac=True), ts)
        # keep the book bounded: the worst level of synthetic liquidity goes (user orders stay)
        own = [q for q in levels if levels[q] > book.user_size(side, q)]
        while len(own) > sc.max_levels:
            worst = min(own) if side == "BUY" else max(own)
            own.remove(worst)
            entries += self._set_sim_part(book, side, worst, 0, ts)
        return [self._price_change(book, entries, ts)]

    def _set_sim_part(
        self, book: BinaryBook, side: str, p: int, sim_size: int, ts: str
    ) -> list[dict[str, str]]:
        """Set the synthetic part of a level (user orders at that price stay); tell the order side."""
        user = book.user_size(side, p)
        entries = book.set_level(side, p, sim_size + user, ts)
        if user and self.hooks is not None:
            self.hooks.on_sim_reduced(book, side, p)
        return entries

    def _cancel(self, book: BinaryBook, ts: str) -> list[Event]:
        rng = self.rng
        choices = [("BUY", p) for p in sorted(book.bids) if book.bids[p] > book.user_bids.get(p, 0)] + [
            ("SELL", p) for p in sorted(book.asks) if book.asks[p] > book.user_asks.get(p, 0)
        ]
        if not choices:
            return []
        fair = self.fair[book.spec.condition_id]
        # of two random levels, cancel from the one farther from fair (stale quotes go first)
        a, b = rng.choice(choices), rng.choice(choices)
        side, p = max(a, b, key=lambda sp: (abs(sp[1] - fair), sp[0] == "BUY"))
        levels = book.bids if side == "BUY" else book.asks
        size = levels[p] - book.user_size(side, p)  # only the synthetic part is ever cancelled
        if rng.random() < 0.5 or size <= 5 * MICRO:
            new = 0
        else:
            new = size - rng.randint(1, size // MICRO - 1) * MICRO if size // MICRO > 1 else 0
        return [self._price_change(book, self._set_sim_part(book, side, p, new, ts), ts)]

    def _sweep(
        self, book: BinaryBook, taker_side: str, qty: int | None, limit: int | None, ts: str
    ) -> list[Event]:
        """A taker order: BUY lifts YES asks from the best up, SELL hits YES bids from the best down.
        `qty` None = take every level up to `limit` (inclusive). Returns price_change + last_trade_price events."""
        rng = self.rng
        levels = book.asks if taker_side == "BUY" else book.bids
        maker_side = "SELL" if taker_side == "BUY" else "BUY"
        entries: list[dict[str, str]] = []
        trades: list[tuple[int, int]] = []
        user_fills: list[
            tuple[int, int, int]
        ] = []  # (index in trades, price, level size before) with user orders
        remaining = qty
        for p in sorted(levels, reverse=(taker_side == "SELL")):
            if limit is not None and (p > limit if taker_side == "BUY" else p < limit):
                break
            if remaining is not None and remaining <= 0:
                break
            size = levels[p]
            fill = size if remaining is None else min(size, remaining)
            if remaining is not None:
                remaining -= fill
            if book.user_size(maker_side, p):
                user_fills.append((len(trades), p, size))
            trades.append((p, fill))
            entries += book.set_level(maker_side, p, size - fill, ts)
            if len(trades) >= 4 and qty is not None:
                break
        if not trades:
            return []
        events: list[Event] = [self._price_change(book, entries, ts)]
        spec = book.spec
        first_trade = len(events)
        for p, fill in trades:
            self._tx += 1
            on_yes = rng.random() < 0.5
            token = spec.yes_token if on_yes else spec.no_token
            price = p if on_yes else PIPS - p
            side = taker_side if on_yes else ("SELL" if taker_side == "BUY" else "BUY")
            book.last_trade[token] = price
            events.append(
                {
                    "event_type": "last_trade_price",
                    "asset_id": token,
                    "market": spec.condition_id,
                    "price": fmt_pips(price),
                    "size": fmt_size(fill),
                    "fee_rate_bps": "0",
                    "side": side,
                    "timestamp": ts,
                    "transaction_hash": "0x" + f"{rng.getrandbits(256):064x}",
                }
            )
        if user_fills and self.hooks is not None:
            for i, p, size_before in user_fills:
                tx = events[first_trade + i]["transaction_hash"]
                self.hooks.on_fill(book, maker_side, p, size_before, trades[i][1], taker_side, tx, ts)
        # tick_size_change: decided on the YES trade price
        last_yes = trades[-1][0]
        new_tick = book.tick
        if book.tick == TICK_COARSE and (last_yes > FINE_ABOVE or last_yes < FINE_BELOW):
            new_tick = TICK_FINE
        elif book.tick == TICK_FINE and COARSE_LO <= last_yes <= COARSE_HI:
            new_tick = TICK_COARSE
        if new_tick != book.tick:
            events += self._change_tick(book, new_tick, ts)
        elif rng.random() < self.scenario.p_book_after_trade:
            events.append([book.book_event(t, int(ts)) for t in spec.tokens])  # type: ignore[arg-type]
        return events

    def _change_tick(self, book: BinaryBook, new_tick: int, ts: str) -> list[Any]:
        old = book.tick
        if new_tick > old and self.hooks is not None and (book.user_bids or book.user_asks):
            self.hooks.on_tick_coarser(book, new_tick, ts)  # user orders off the new grid are cancelled
        book.tick = new_tick
        if new_tick > old:
            # coarser grid: bids round down, asks round up (never crosses), off-limit levels go
            bids: dict[int, int] = {}
            for p, s in book.bids.items():
                q = (p // new_tick) * new_tick
                if q >= new_tick:
                    bids[q] = bids.get(q, 0) + s
            asks: dict[int, int] = {}
            for p, s in book.asks.items():
                q = -((-p) // new_tick) * new_tick
                if q <= PIPS - new_tick:
                    asks[q] = asks.get(q, 0) + s
            book.bids, book.asks = bids, asks
        out: list[Any] = [
            {
                "event_type": "tick_size_change",
                "asset_id": t,
                "market": book.spec.condition_id,
                "old_tick_size": tick_str(old),
                "new_tick_size": tick_str(new_tick),
                "timestamp": ts,
            }
            for t in book.spec.tokens
        ]
        # a tick change starts a new book epoch: clients drop the book and wait for a snapshot, so send one
        out.append([book.book_event(t, int(ts)) for t in book.spec.tokens])
        return out

    # ---- framing --------------------------------------------------------------------------------------------
    def _price_change(self, book: BinaryBook, entries: list[dict[str, str]], ts: str) -> Event:
        return {
            "event_type": "price_change",
            "market": book.spec.condition_id,
            "timestamp": ts,
            "price_changes": entries,
        }

    def _bba_now(self, book: BinaryBook, token: str) -> tuple[int | None, int | None]:
        return book.token_best(token)

    def _emit(self, frames: list[Frame], book: BinaryBook, events: list[Any], ts: str) -> None:
        """Append one action's events as frames: one array frame, or one frame per event. Nested lists in
        `events` are frames of their own (book snapshots go out as an array). `best_bid_ask` events
        (custom feature; the server filters them per subscriber) follow any change of the top of book."""
        events = [e for e in events if e]
        if not events:
            return
        book.timestamp_ms = int(ts)
        for t in book.spec.tokens:
            bba = self._bba_now(book, t)
            if bba != self._bba[t]:
                self._bba[t] = bba
                bb, ba = bba
                events.append(
                    {
                        "event_type": "best_bid_ask",
                        "market": book.spec.condition_id,
                        "asset_id": t,
                        "best_bid": "" if bb is None else fmt_pips(bb),
                        "best_ask": "" if ba is None else fmt_pips(ba),
                        "spread": "" if bb is None or ba is None else fmt_pips(ba - bb),
                        "timestamp": ts,
                    }
                )
        if all(isinstance(e, dict) for e in events) and self.rng.random() < self.scenario.p_array:
            frames.append(events)
            return
        frames.extend(events)
