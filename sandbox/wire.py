"""Wire formatting for the sandbox: integer units inside, Polymarket strings at the edge.

Units used everywhere inside the sandbox:
- prices are integer *pips*: 1 pip = 0.0001, so 1.00 = ``PIPS`` = 10_000. A tick of 0.01 is 100 pips, 0.001 is 10.
- sizes are integer *micro-shares*: 1 share = ``MICRO`` = 1_000_000 (outcome tokens have 6 decimals).

Formatting is canonical: trailing zeros are stripped ("0.5", "0.48", "0.001", "0", "1", "12.5").
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import msgspec

PIPS = 10_000
MICRO = 1_000_000

TICK_COARSE = 100  # 0.01
TICK_FINE = 10  # 0.001

_encoder = msgspec.json.Encoder()


def fmt_pips(p: int) -> str:
    """Price in pips -> canonical decimal string (4 dp max, trailing zeros stripped)."""
    sign = "-" if p < 0 else ""
    p = abs(p)
    s = f"{p // PIPS}.{p % PIPS:04d}".rstrip("0").rstrip(".")
    return sign + s


def fmt_half_pips(h: int) -> str:
    """A value in half-pips (e.g. a midpoint bid+ask) -> canonical string."""
    s = f"{h // (2 * PIPS)}.{(h % (2 * PIPS)) * 5:05d}".rstrip("0").rstrip(".")
    return s


def fmt_size(u: int) -> str:
    """Size in micro-shares -> canonical decimal string (6 dp max)."""
    s = f"{u // MICRO}.{u % MICRO:06d}".rstrip("0").rstrip(".")
    return s


def tick_str(tick: int) -> str:
    return fmt_pips(tick)


def tick_float(tick: int) -> float:
    return tick / PIPS


def parse_pips(s: str) -> int:
    """Decimal string -> pips (exact; raises ValueError if finer than a pip)."""
    d = Decimal(s) * PIPS
    if d != d.to_integral_value():
        raise ValueError(f"price {s!r} is finer than 0.0001")
    return int(d)


def parse_size(s: str) -> int:
    d = Decimal(s) * MICRO
    if d != d.to_integral_value():
        raise ValueError(f"size {s!r} is finer than 1e-6")
    return int(d)


def encode(obj: Any) -> str:
    """Compact JSON text (key order preserved)."""
    return _encoder.encode(obj).decode()


def levels_wire(levels: list[tuple[int, int]]) -> list[dict[str, str]]:
    return [{"price": fmt_pips(p), "size": fmt_size(s)} for p, s in levels]


def book_hash(
    market: str,
    asset_id: str,
    timestamp: str,
    bids: list[dict[str, str]],
    asks: list[dict[str, str]],
    min_order_size: str,
    tick_size: str,
    neg_risk: bool,
    last_trade_price: str,
) -> str:
    """SHA-1 hex of the compact summary JSON, key order as in the protocol doc (§1.5).

    Clients must not gate on it (the live scheme is not reproducible); we only make it deterministic.
    """
    summary = {
        "market": market,
        "asset_id": asset_id,
        "timestamp": timestamp,
        "hash": "",
        "bids": bids,
        "asks": asks,
        "min_order_size": min_order_size,
        "tick_size": tick_size,
        "neg_risk": neg_risk,
        "last_trade_price": last_trade_price,
    }
    return hashlib.sha1(_encoder.encode(summary)).hexdigest()
