"""Peer benchmark: our book apply rate beside NautilusTrader's ``OrderBook`` on the same frames (optional).

NautilusTrader is not a dependency: when ``import nautilus_trader`` fails the bench reports one row with no value
and a note saying it was skipped (``pip install nautilus_trader`` into the venv to run it; never in CI).

The stream is ``bench.feed``'s (a snapshot, then ``price_change`` frames for a YES/NO pair with mirrored entries,
legacy ``changes[]`` frames, trades and ``PONG``s). Both sides start from the frame *texts*:

- ours: ``BookActor.step`` on each ``FeedFrame`` envelope (msgspec parse, validation, tick/epoch handling, best
  tracking, ``BookChanged``/``TradePrint`` events), as in ``bench.feed``;
- peer: ``msgspec.json.decode`` of the text (the decoder NautilusTrader's Polymarket adapter uses), then, per
  entry, ``Price``/``Quantity`` + ``BookOrder`` + ``OrderBookDelta`` (UPDATE, or DELETE for size 0) applied with
  ``OrderBook.apply_delta`` to an L2 (``L2_MBP``) book per token; a ``book`` event clears and refills the book.

- ``peer.book_apply``: our level updates/s, baseline NautilusTrader's (parse + apply), ratio = ours / theirs.
- ``peer.nautilus_apply_only``: NautilusTrader applying pre-built ``OrderBookDelta`` objects (no parsing, no
  object construction): the peer's floor cost, for context.

Before timing, the best bid and ask of both tokens are compared between the two books (raises if they differ).
CPU time, best of several interleaved runs. Run: ``pmm bench peer`` or ``.venv/bin/python -m bench.peer``.
"""
from __future__ import annotations

import sys
import time
from typing import Any

from bench.common import Result, best_of_pair, standalone

_cpu = time.process_time


def available() -> str | None:
    """The installed NautilusTrader version, or None."""
    try:
        import nautilus_trader
    except ImportError:
        return None
    return str(getattr(nautilus_trader, "__version__", "?"))


def _peer(frames: list[str]) -> tuple[Any, Any]:
    """(apply(frames) -> books, build(frames) -> list of deltas) for NautilusTrader."""
    import msgspec
    from nautilus_trader.model.book import OrderBook
    from nautilus_trader.model.data import BookOrder, OrderBookDelta
    from nautilus_trader.model.enums import BookAction, BookType, OrderSide
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.model.objects import Price, Quantity

    from bench.feed import NO, YES

    ids = {YES: InstrumentId.from_str("YES-BENCH.POLYMARKET"), NO: InstrumentId.from_str("NO-BENCH.POLYMARKET")}
    sides = {"BUY": OrderSide.BUY, "SELL": OrderSide.SELL}
    update, delete = BookAction.UPDATE, BookAction.DELETE
    decode = msgspec.json.decode

    def deltas_of(ev: dict, out: list) -> None:
        et = ev.get("event_type")
        if et == "book":
            iid = ids[ev["asset_id"]]
            out.append(("clear", iid))
            for side, key in ((OrderSide.BUY, "bids"), (OrderSide.SELL, "asks")):
                for lv in ev[key]:
                    order = BookOrder(side, Price(float(lv["price"]), 4), Quantity(float(lv["size"]), 6), 0)
                    out.append(OrderBookDelta(iid, update, order, 0, 0, 0, 0))
        elif et == "price_change":
            for ch in ev.get("price_changes") or ev.get("changes") or ():
                iid = ids[ch.get("asset_id") or ev["asset_id"]]
                size = float(ch["size"])
                order = BookOrder(sides[ch["side"]], Price(float(ch["price"]), 4), Quantity(size, 6), 0)
                out.append(OrderBookDelta(iid, update if size else delete, order, 0, 0, 0, 0))

    def build(texts: list[str]) -> list:
        out: list = []
        for text in texts:
            if text == "PONG":
                continue
            msg = decode(text)
            for ev in msg if isinstance(msg, list) else (msg,):
                deltas_of(ev, out)
        return out

    def new_books() -> dict:
        return {iid: OrderBook(iid, BookType.L2_MBP) for iid in ids.values()}

    def apply_deltas(deltas: list) -> dict:
        books = new_books()
        for d in deltas:
            if type(d) is tuple:
                books[d[1]].clear(0, 0)
            else:
                books[d.instrument_id].apply_delta(d)
        return books

    def parse_apply(texts: list[str]) -> dict:
        """Parse and apply frame by frame (what a live adapter does)."""
        books = new_books()
        for text in texts:
            if text == "PONG":
                continue
            msg = decode(text)
            for ev in msg if isinstance(msg, list) else (msg,):
                out: list = []
                deltas_of(ev, out)
                for d in out:
                    if type(d) is tuple:
                        books[d[1]].clear(0, 0)
                    else:
                        books[d.instrument_id].apply_delta(d)
        return books

    return parse_apply, (build, apply_deltas, ids)


def run(quick: bool = False) -> list[Result]:
    version = available()
    if version is None:
        return [Result("peer.book_apply", None, "updates/s", None, None, None,
                       "skipped: nautilus_trader is not installed (optional; `pip install nautilus_trader` to compare)")]
    from bench.feed import NO, YES, Envelope, FeedFrame, actor_apply, make_stream

    n = 20_000 if quick else 200_000
    repeats = 3 if quick else 5
    frames, updates = make_stream(n)
    envs = [Envelope(ts_ns=i, src="feed", cause=0, ev=FeedFrame(conn=1, text=t)) for i, t in enumerate(frames)]
    parse_apply, (build, apply_deltas, ids) = _peer(frames)

    ours = actor_apply(envs)
    theirs = parse_apply(frames)
    for token in (YES, NO):
        ob, tb = ours.books.get(token), theirs[ids[token]]
        mine = (ob.best_bid()[0] if ob.best_bid() else None, ob.best_ask()[0] if ob.best_ask() else None)
        peer = tuple(None if p is None else round(float(p) * 1_000_000)
                     for p in (tb.best_bid_price(), tb.best_ask_price()))
        if mine != peer:
            raise RuntimeError(f"bench peer: books differ after the stream for {token[:8]}...: ours {mine}, "
                               f"nautilus {peer}")

    t_ours, t_peer = best_of_pair(lambda: actor_apply(envs), lambda: parse_apply(frames), repeats, clock=_cpu)
    deltas = build(frames)
    n_deltas = sum(type(d) is not tuple for d in deltas)
    t_apply = min(_timed(lambda: apply_deltas(deltas)) for _ in range(repeats))
    ups, ups_peer = updates / t_ours, updates / t_peer
    return [
        Result("peer.book_apply", round(ups), "updates/s", round(ups_peer), None, None,
               f"BookActor.step vs nautilus_trader {version} msgspec decode + OrderBookDelta + OrderBook.apply_delta "
               f"(L2_MBP); {len(frames):,} frames, {updates:,} level updates; CPU time, best of {repeats}"),
        Result("peer.nautilus_apply_only", round(n_deltas / t_apply), "updates/s", None, None, None,
               f"OrderBook.apply_delta on {n_deltas:,} pre-built deltas (snapshot levels included): no parsing"),
    ]


def _timed(fn: Any) -> float:
    t0 = _cpu()
    fn()
    return _cpu() - t0


def main(argv: list[str] | None = None) -> int:
    return standalone(run, argv, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
