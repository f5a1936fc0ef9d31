"""Readable text for the integer units of events (see ``events.base``), for details people read.

Exact and deterministic (integer arithmetic only, no floats), so core actors may use them in journaled text:
``usd(-21_687_500) == "-$21.6875"``, ``shares(12_500_000) == "12.50 shares"``, ``price(470_000) == "0.47"``,
``duration(250_000_000) == "250 ms"``.
"""
from __future__ import annotations

from events.base import MICRO

_NS_PER_S = 1_000_000_000


def decimal(micro: int, min_places: int = 2) -> str:
    """``micro`` / 1e6 written exactly, trailing zeros trimmed down to ``min_places`` decimals."""
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), MICRO)
    digits = f"{frac:06d}".rstrip("0")
    if len(digits) < min_places:
        digits += "0" * (min_places - len(digits))
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"  # min_places=0: no "." for a whole number


def usd(micro: int) -> str:
    """Micro-dollars as dollars: ``-$21.6875``, ``$20.00``."""
    return f"-${decimal(-micro)}" if micro < 0 else f"${decimal(micro)}"


def shares(micro: int) -> str:
    """Micro-shares as shares: ``12.50 shares``, ``-3.25 shares``."""
    return f"{decimal(micro)} shares"


def price(micro: int) -> str:
    """A price in micro-dollars per share as the venue writes it: ``0.47``, ``0.005``."""
    return decimal(micro)


def duration(ns: int) -> str:
    """Nanoseconds as ``250 ms``, ``30 s``, ``1.5 s``, ``2 min``, ``1 h 30 min``."""
    if ns < 0:
        return f"-{duration(-ns)}"
    if ns < _NS_PER_S:
        return f"{decimal(ns, 0)} ms"
    if ns < 60 * _NS_PER_S or ns % (60 * _NS_PER_S):
        return f"{decimal(ns // 1000, 0)} s"  # to the microsecond
    minutes = ns // (60 * _NS_PER_S)
    h, m = divmod(minutes, 60)
    return f"{m} min" if not h else (f"{h} h" if not m else f"{h} h {m} min")
