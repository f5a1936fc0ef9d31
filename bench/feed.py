"""Feed benchmark: market-channel frames parsed and applied through ``BookActor.step``, one core.

Two numbers, each beside a baseline measured in the same run on the same frames:
- ``price_change`` level updates per second (target >= 200k): a realistic mix for a YES/NO pair, mostly the
  current schema with the mirrored entry of the other token and ``best_bid``/``best_ask`` (checked against the
  book), some multi-entry batches, some legacy ``changes[]`` frames, ``PONG``s and trades in between.
- ``book`` snapshots per second (pair frames, 30 levels a side).
Baseline: ``json.loads`` plus a dict-of-levels book keyed by float price (what a naive bot does; no validation,
no best tracking, no events). Envelopes are built before timing: the sequencer builds them anyway.

Times are process CPU time, best of several interleaved runs. Run: ``pmm bench feed`` or
``.venv/bin/python -m bench.feed`` (``--quick`` for a short run).
"""
from __future__ import annotations

import json
import random
import sys
import time

from actors.core.book import BookActor
from bench.common import Result, best_of_pair, standalone
from events.codec import Envelope
from events.market import FeedFrame
from events.params import CoreParams, MarketParams


YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
CID = "0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1"
MARKET = MarketParams(condition_id=CID, yes_token=YES, no_token=NO)
LEVELS = 30
_cpu = time.process_time
"""CPU-bound: timed in process CPU time, robust to load from other processes (as bench/journal.py)."""


def _p(micro: int) -> str:
    s = f"{micro / 1e6:.4f}".rstrip("0")
    return s + "0" if s.endswith(".") else s


def _size(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.5:
        return f"{rng.randint(1, 5000)}"
    if r < 0.9:
        return f"{rng.randint(1, 500000) / 100:.2f}"
    return f"{rng.randint(1, 10**9) / 1e6:.6f}"


class _Model:
    """Reference book used to generate consistent frames (bests that match what the actor rebuilds)."""

    def __init__(self) -> None:
        self.bids: dict[int, str] = {}
        self.asks: dict[int, str] = {}

    def best(self) -> tuple[int, int]:
        return (max(self.bids) if self.bids else 0, min(self.asks) if self.asks else 0)


def _snapshot_frame(rng: random.Random, ts: int, model: _Model | None = None) -> str:
    model = model or _Model()
    model.bids = {480_000 - i * 10_000: _size(rng) for i in range(LEVELS) if 480_000 - i * 10_000 > 0}
    model.asks = {500_000 + i * 10_000: _size(rng) for i in range(LEVELS) if 500_000 + i * 10_000 < 1_000_000}
    events = []
    for tok, bids, asks in ((YES, model.bids, model.asks),
                            (NO, {1_000_000 - p: s for p, s in model.asks.items()},
                             {1_000_000 - p: s for p, s in model.bids.items()})):
        events.append({
            "market": CID, "asset_id": tok, "timestamp": str(ts), "hash": "0" * 40,
            "bids": [{"price": _p(p), "size": s} for p, s in sorted(bids.items())],
            "asks": [{"price": _p(p), "size": s} for p, s in sorted(asks.items(), reverse=True)],
            "tick_size": "0.01", "event_type": "book", "last_trade_price": "0.49",
        })
    return json.dumps(events, separators=(",", ":"))


def make_stream(n_frames: int, seed: int = 7) -> tuple[list[str], int]:
    """A realistic price_change stream after an initial snapshot. Returns (frames, level updates in them)."""
    rng = random.Random(seed)
    m = _Model()
    frames = [_snapshot_frame(rng, 1, m)]
    updates = 0
    ts = 1_700_000_000_000
    while len(frames) < n_frames:
        ts += rng.randint(1, 50)
        r = rng.random()
        if r < 0.03:
            frames.append("PONG")
            continue
        if r < 0.06:
            frames.append(json.dumps({"event_type": "last_trade_price", "asset_id": YES, "market": CID,
                                      "price": _p(max(m.bids) if m.bids else 490_000), "size": _size(rng),
                                      "side": "SELL", "fee_rate_bps": "0", "timestamp": str(ts)},
                                     separators=(",", ":")))
            continue
        n_changes = 1 if rng.random() < 0.85 else rng.randint(2, 5)
        changes = []
        for _ in range(n_changes):
            bb, ba = m.best()
            side = "BUY" if rng.random() < 0.5 else "SELL"
            if side == "BUY":
                lo = max(10_000, bb - 10 * 10_000)
                hi = (ba - 10_000) if ba else 990_000
                price = rng.randrange(lo, max(lo, hi) + 1, 10_000) if hi >= lo else lo
                book = m.bids
            else:
                lo = (bb + 10_000) if bb else 10_000
                hi = min(990_000, (ba or lo) + 10 * 10_000)
                price = rng.randrange(lo, max(lo, hi) + 1, 10_000) if hi >= lo else hi
                book = m.asks
            size = "0" if (price in book and rng.random() < 0.3 and len(book) > 3) else _size(rng)
            if size == "0":
                book.pop(price, None)
            else:
                book[price] = size
            changes.append((side, price, size))
        bb, ba = m.best()
        if rng.random() < 0.1:  # legacy schema, YES only, no bests
            frames.append(json.dumps({"event_type": "price_change", "asset_id": YES, "market": CID, "hash": "h",
                                      "timestamp": str(ts), "changes": [
                                          {"price": _p(p), "side": s, "size": z} for s, p, z in changes]},
                                     separators=(",", ":")))
            # keep the NO book in step with a current-schema NO-only frame
            frames.append(json.dumps({"event_type": "price_change", "market": CID, "timestamp": str(ts),
                                      "price_changes": [
                                          {"asset_id": NO, "price": _p(1_000_000 - p),
                                           "size": z, "side": "SELL" if s == "BUY" else "BUY", "hash": "x"}
                                          for s, p, z in changes]}, separators=(",", ":")))
            updates += 2 * len(changes)
            continue
        entries = []
        for s, p, z in changes:
            entries.append({"asset_id": YES, "price": _p(p), "size": z, "side": s, "hash": "56621a121a47ed9333273e21c8",
                            "best_bid": _p(bb) if bb else "0", "best_ask": _p(ba) if ba else "1"})
            entries.append({"asset_id": NO, "price": _p(1_000_000 - p), "size": z, "side": "SELL" if s == "BUY" else "BUY",
                            "hash": "1895759e4df7a796bf4f1c5a59", "best_bid": _p(1_000_000 - ba) if ba else "0",
                            "best_ask": _p(1_000_000 - bb) if bb else "1"})
        frames.append(json.dumps({"event_type": "price_change", "market": CID, "timestamp": str(ts),
                                  "price_changes": entries}, separators=(",", ":")))
        updates += len(entries)
    return frames, updates


def baseline_apply(frames: list[str]) -> None:
    """json.loads + dict-of-levels (float keys), the naive approach."""
    books: dict[str, dict[str, dict[float, float]]] = {}
    for text in frames:
        if text == "PONG":
            continue
        msg = json.loads(text)
        for ev in msg if isinstance(msg, list) else (msg,):
            et = ev.get("event_type")
            if et == "book":
                books[ev["asset_id"]] = {
                    "BUY": {float(lv["price"]): float(lv["size"]) for lv in ev["bids"]},
                    "SELL": {float(lv["price"]): float(lv["size"]) for lv in ev["asks"]},
                }
            elif et == "price_change":
                for ch in ev.get("price_changes") or ev.get("changes") or ():
                    b = books.setdefault(ch.get("asset_id") or ev["asset_id"], {"BUY": {}, "SELL": {}})[ch["side"]]
                    size = float(ch["size"])
                    if size:
                        b[float(ch["price"])] = size
                    else:
                        b.pop(float(ch["price"]), None)


def actor_apply(envs: list[Envelope]) -> BookActor:
    actor = BookActor(CoreParams(markets=(MARKET,)))
    step = actor.step
    for i, env in enumerate(envs):
        step(i, env)
    return actor


def run(quick: bool = False) -> list[Result]:
    n = 20_000 if quick else 200_000
    repeats = 3 if quick else 5
    frames, updates = make_stream(n)
    envs = [Envelope(ts_ns=i, src="feed", cause=0, ev=FeedFrame(conn=1, text=t)) for i, t in enumerate(frames)]
    check = actor_apply(envs)
    if check.resyncs or check.skipped_invalid or check.parse_errors or check.level_updates != updates:
        raise RuntimeError(f"bench stream not applied cleanly: {check.counters()} (expected {updates} updates)")
    t_actor, t_base = best_of_pair(lambda: actor_apply(envs), lambda: baseline_apply(frames), repeats, clock=_cpu)
    ups, ups_base = updates / t_actor, updates / t_base

    snap_rng = random.Random(11)
    n_snap = 1_000 if quick else 5_000
    snaps = [_snapshot_frame(snap_rng, i) for i in range(50)]
    snap_frames = [snaps[i % len(snaps)] for i in range(n_snap)]
    snap_envs = [Envelope(ts_ns=i, src="feed", cause=0, ev=FeedFrame(conn=1, text=t)) for i, t in enumerate(snap_frames)]
    t_snap, t_snap_base = best_of_pair(
        lambda: actor_apply(snap_envs), lambda: baseline_apply(snap_frames), repeats, clock=_cpu
    )
    books = 2 * n_snap  # two book events per frame
    sps, sps_base = books / t_snap, books / t_snap_base

    return [
        Result("feed.price_change_updates", round(ups), "updates/s", round(ups_base), None, 200_000,
               f"{len(frames):,} frames, {updates:,} level updates through BookActor.step vs json.loads + "
               f"dict-of-levels; CPU time, best of {repeats}"),
        Result("feed.book_snapshots", round(sps), "books/s", round(sps_base), None, None,
               f"{n_snap:,} pair frames x 2 books x {LEVELS} levels a side, same baseline"),
    ]


def main(argv: list[str] | None = None) -> int:
    return standalone(run, argv, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
