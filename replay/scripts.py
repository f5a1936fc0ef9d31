"""Building blocks for scripted sessions: Polymarket wire frames and standard test markets.

Frames are produced exactly as the market channel sends them (string numbers, bids ascending, asks
descending), so scripted sessions exercise the real parser.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

from events.base import MICRO
from events.params import MarketParams

Levels = Sequence[tuple[str, str]]  # (price, size) as wire strings

MARKET = MarketParams(
    condition_id="0x" + "ab" * 32,
    yes_token="1001",
    no_token="1002",
    tick=10_000,
    min_order_size=5 * MICRO,
    reward_min_size=20 * MICRO,
    reward_max_spread=30_000,
)


def _levels(levels: Levels, *, ascending: bool) -> list[dict[str, str]]:
    ordered = sorted(levels, key=lambda lv: float(lv[0]), reverse=not ascending)
    return [{"price": p, "size": s} for p, s in ordered]


def book_event(market: str, token: str, bids: Levels, asks: Levels, *, ts: int = 1, tick: str = "0.01") -> dict:
    return {
        "event_type": "book",
        "market": market,
        "asset_id": token,
        "timestamp": str(ts),
        "hash": f"h{ts}",
        "bids": _levels(bids, ascending=True),
        "asks": _levels(asks, ascending=False),
        "tick_size": tick,
        "last_trade_price": "",
    }


def complement(levels: Levels) -> list[tuple[str, str]]:
    """The mirror levels on the other token: price p becomes 1 - p (to the same number of decimals)."""
    out = []
    for p, s in levels:
        decimals = len(p.split(".")[1]) if "." in p else 0
        out.append((f"{1 - float(p):.{decimals}f}", s))
    return out


def pair_snapshot(m: MarketParams, bids: Levels, asks: Levels, *, ts: int = 1, tick: str = "0.01") -> str:
    """The initial-dump frame for a YES/NO pair: YES with ``bids``/``asks``, NO mirrored."""
    return json.dumps(
        [
            book_event(m.condition_id, m.yes_token, bids, asks, ts=ts, tick=tick),
            book_event(m.condition_id, m.no_token, complement(asks), complement(bids), ts=ts, tick=tick),
        ]
    )


def price_change(m: MarketParams, changes: Sequence[tuple[str, str, str]], *, ts: int = 2) -> str:
    """A ``price_change`` frame for YES levels ``(side, price, size)``, with the NO mirror entries."""
    entries = []
    for side, price, size in changes:
        entries.append({"asset_id": m.yes_token, "price": price, "size": size, "side": side, "hash": "x"})
        (mp, _), = complement([(price, size)])
        entries.append(
            {"asset_id": m.no_token, "price": mp, "size": size, "side": "SELL" if side == "BUY" else "BUY", "hash": "y"}
        )
    return json.dumps({"event_type": "price_change", "market": m.condition_id, "timestamp": str(ts), "price_changes": entries})


def trade(m: MarketParams, token: str, price: str, size: str, side: str, *, ts: int = 3) -> str:
    return json.dumps(
        {
            "event_type": "last_trade_price",
            "asset_id": token,
            "market": m.condition_id,
            "price": price,
            "size": size,
            "side": side,
            "fee_rate_bps": "0",
            "timestamp": str(ts),
            "transaction_hash": "0x0",
        }
    )


STANDARD_BIDS: Levels = (("0.45", "100"), ("0.46", "80"), ("0.47", "60"))
STANDARD_ASKS: Levels = (("0.53", "100"), ("0.52", "80"), ("0.51", "60"))
