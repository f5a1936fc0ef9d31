"""Polymarket liquidity-reward score of a set of quotes (docs/polymarket-protocol.md §6), in integer math.

Per order: ``S = ((v - s) / v)^2 * size`` where ``v`` is the market's max incentive spread and ``s`` the order's
distance from the midpoint; 0 when ``s >= v`` or ``size`` is below the reward min size. Computed as
``(v - s)^2 * size // v^2`` (floor, per order), in micro-shares.

Sides: ``Q_one`` sums bids on the YES token and asks on the NO token, ``Q_two`` asks on YES and bids on NO. With
the midpoint in [0.10, 0.90] a single-sided book scores a third: ``Q = max(min(Q_one, Q_two), max(Q_one, Q_two) // 3)``;
outside that range only two-sided liquidity counts: ``Q = min(Q_one, Q_two)``.

Approximation: the exchange measures ``s`` from a size-cutoff-adjusted midpoint and applies an in-game
multiplier; we use the book's plain midpoint and no multiplier. Distances are taken in YES terms: a NO bid at
``q`` is an ask at ``1 - q``.
"""
from __future__ import annotations

from collections.abc import Iterable

from events.base import MICRO

SINGLE_SIDED_LO = 100_000
SINGLE_SIDED_HI = 900_000
SINGLE_SIDED_DIVISOR = 3


def order_score(distance: int, size: int, max_spread: int, min_size: int) -> int:
    """``((v - s) / v)^2 * size`` floored; 0 when ``s >= v``, ``v <= 0`` or ``size < min_size``."""
    if max_spread <= 0 or distance < 0 or distance >= max_spread or size < min_size or size <= 0:
        return 0
    gap = max_spread - distance
    return gap * gap * size // (max_spread * max_spread)


def market_score(
    mid: int, q_one: Iterable[tuple[int, int]], q_two: Iterable[tuple[int, int]], max_spread: int, min_size: int
) -> tuple[int, bool]:
    """Score of a market's quotes. ``q_one``/``q_two``: (YES-terms price, size) of the orders on each side
    (``q_one``: YES bids; ``q_two``: YES asks and NO bids, the latter given as ``1 - price``).

    Returns ``(Q, two_sided)`` where ``two_sided`` means both sides score.
    """
    # the sums of ``order_score`` over both sides, inlined (same integers)
    one = two = 0
    if max_spread > 0:
        v2 = max_spread * max_spread
        for p, s in q_one:
            d = mid - p if mid >= p else p - mid
            if d < max_spread and s >= min_size and s > 0:
                gap = max_spread - d
                one += gap * gap * s // v2
        for p, s in q_two:
            d = p - mid if p >= mid else mid - p
            if d < max_spread and s >= min_size and s > 0:
                gap = max_spread - d
                two += gap * gap * s // v2
    two_sided = one > 0 and two > 0
    if SINGLE_SIDED_LO <= mid <= SINGLE_SIDED_HI:
        q = max(min(one, two), max(one, two) // SINGLE_SIDED_DIVISOR)
    else:
        q = min(one, two)
    return q, two_sided


def no_price_as_yes(price: int) -> int:
    """A NO price seen in YES terms (the complement)."""
    return MICRO - price
