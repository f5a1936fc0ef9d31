"""Hypothesis strategies derived from the event schema itself (msgspec type info), bounds included.

Deriving them from ``msgspec.inspect`` means a new event or field is covered by the round-trip tests without
anyone writing a strategy for it.
"""
from __future__ import annotations

import functools

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st

from events.codec import ALL_EVENTS, Envelope


def _for(t: mi.Type) -> st.SearchStrategy:
    if isinstance(t, mi.IntType):
        lo = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else -(2**63))
        hi = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else 2**63 - 1)
        return st.integers(lo, hi)
    if isinstance(t, mi.StrType):
        return st.text(max_size=40)
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, (mi.VarTupleType, mi.ListType)):
        return st.lists(_for(t.item_type), max_size=4).map(tuple if isinstance(t, mi.VarTupleType) else list)
    if isinstance(t, mi.StructType):
        return struct_strategy(t.cls)
    if isinstance(t, mi.UnionType):
        return st.one_of([_for(x) for x in t.types])
    raise NotImplementedError(f"no strategy for {t!r}")


@functools.cache
def struct_strategy(cls: type) -> st.SearchStrategy:
    info = mi.type_info(cls)
    fields = {f.name: _for(f.type) for f in info.fields}
    return st.builds(cls, **fields)


events = st.one_of([struct_strategy(c) for c in ALL_EVENTS])
envelopes = st.builds(
    Envelope,
    ts_ns=st.integers(0, 2**63 - 1),
    src=st.sampled_from(["feed", "clock", "book", "quoter", "orders", "risk", "exec", "portfolio", "session"]),
    cause=st.integers(0, 2**40),
    ev=events,
)

__all__ = ["envelopes", "events", "msgspec", "struct_strategy"]
