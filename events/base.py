"""Base types shared by every event family.

Units (the canonical payload rules): prices are integer micro-dollars per share (1e-6, so 0.47 -> 470_000),
sizes are integer micro-shares (1e-6 shares, the token's on-chain unit), time is integer nanoseconds since the
Unix epoch. Every bound is a msgspec ``Meta`` constraint, checked when a journal is decoded; there are no floats in
events, so NaN cannot appear.
"""
from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

MICRO = 1_000_000
"""Scale of prices (micro-dollars per share) and sizes (micro-shares)."""

Price = Annotated[int, Meta(ge=0, le=MICRO)]
"""A price in micro-dollars per share, within [0, 1 dollar]. 0 is used for "no price" where documented."""
Size = Annotated[int, Meta(ge=0, le=10**15)]
"""A size in micro-shares (at most a billion shares)."""
Notional = Annotated[int, Meta(ge=-(10**18), le=10**18)]
"""A signed amount of micro-dollars (cash, PnL)."""
SignedSize = Annotated[int, Meta(ge=-(10**15), le=10**15)]
"""A signed size in micro-shares (a position)."""
Seq = Annotated[int, Meta(ge=0)]
TsNs = Annotated[int, Meta(ge=0)]
Side = Literal["BUY", "SELL"]


class Event(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    array_like=True,
    forbid_unknown_fields=True,
    tag_field="t",
):
    """Base of every journaled event. Subclasses set a short, stable ``tag``: it is part of the on-disk format.

    Fields are encoded in declaration order (``array_like``): new fields may only be appended, with defaults,
    and a field's type never changes (msgspec's schema-evolution rules). The golden-bytes test guards this.
    """


class Record(msgspec.Struct, frozen=True, kw_only=True, array_like=True, forbid_unknown_fields=True):
    """Base of structs nested inside events (not members of the union themselves)."""
