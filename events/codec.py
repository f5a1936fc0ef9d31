"""The tagged union of every event, the journal envelope, and its canonical encoding.

Guarantees:
- ``encode`` is canonical: the same envelope always gives the same bytes (msgpack, deterministic order, structs
  as arrays in declaration order).
- ``decode`` validates every field against its type and bounds; anything else raises ``EventDecodeError`` with
  one line saying what is wrong.
- ``SCHEMA_FINGERPRINT`` changes whenever any event's shape changes. A test pins it, so a change is deliberate:
  bump ``SCHEMA_VERSION`` when old journals would no longer decode.
"""
from __future__ import annotations

import hashlib
from typing import Any, Union

import msgspec

from events.base import Event, Seq, TsNs
from events import control, live, market, orders, paper, risk  # the families: importing registers them

SCHEMA_VERSION = 1
"""Version of the event vocabulary. Journals of another version are refused with a clear message."""

FAMILIES = (control, market, orders, risk, paper, live)
"""Modules whose Event subclasses make up the union. A new family module must be listed here."""


def _collect() -> tuple[type[Event], ...]:
    found: dict[str, type[Event]] = {}
    for module in FAMILIES:
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Event) and obj.__module__ == module.__name__:
                tag = obj.__struct_config__.tag
                if not isinstance(tag, str):
                    raise TypeError(f"{obj.__qualname__} has no explicit string tag")
                if tag in found:
                    raise TypeError(f"tag {tag!r} used by both {found[tag].__qualname__} and {obj.__qualname__}")
                found[tag] = obj
    return tuple(found[t] for t in sorted(found))


ALL_EVENTS: tuple[type[Event], ...] = _collect()
"""Every event type, sorted by tag (so the union, and the fingerprint, do not depend on import order)."""

AnyEvent = Union[ALL_EVENTS]  # type: ignore[valid-type]  # noqa: UP007 (a Union over a tuple of types)


class Envelope(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """One journal record's payload. The sequence number lives in the record frame, outside the payload."""

    ts_ns: TsNs
    """Receipt time of the input that caused this record (inputs: stamped by the sequencer, never decreasing)."""
    src: str
    """The actor that produced it: an edge for inputs, a core actor for derived events."""
    cause: Seq
    """Seq of the event whose handling produced this one; 0 for inputs from outside."""
    ev: AnyEvent  # type: ignore[valid-type]


class EnvelopeHead(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The first three fields of an :class:`Envelope` (its event is skipped, not validated): a cheap look at a
    record's source and cause for readers that decode the event only when they need it."""

    ts_ns: int
    src: str
    cause: int


class EventDecodeError(ValueError):
    """A payload is not a valid envelope of this schema version."""


_encoder = msgspec.msgpack.Encoder(order="deterministic")
_decoder = msgspec.msgpack.Decoder(Envelope)
encode = _encoder.encode
"""Canonical bytes of an envelope."""


def decode(payload: bytes | memoryview) -> Envelope:
    """Decode and validate one envelope. Raises ``EventDecodeError`` with a one-line reason."""
    try:
        return _decoder.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise EventDecodeError(str(exc).splitlines()[0]) from None


_head_decoder = msgspec.msgpack.Decoder(EnvelopeHead)


def decode_head(payload: bytes | memoryview) -> EnvelopeHead:
    """Decode only ``(ts_ns, src, cause)`` of an envelope. Raises ``EventDecodeError`` with a one-line reason."""
    try:
        return _head_decoder.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise EventDecodeError(str(exc).splitlines()[0]) from None


def tag_of(event: Event) -> str:
    return type(event).__struct_config__.tag  # type: ignore[return-value]


EVENT_BY_TAG: dict[str, type[Event]] = {c.__struct_config__.tag: c for c in ALL_EVENTS}  # type: ignore[misc]


def _schema_fingerprint() -> str:
    schema = msgspec.json.schema(Envelope)
    blob = msgspec.json.encode({"version": SCHEMA_VERSION, "schema": schema}, order="sorted")
    return hashlib.sha256(blob).hexdigest()


SCHEMA_FINGERPRINT = _schema_fingerprint()


def _plain(obj: Any) -> Any:
    if isinstance(obj, msgspec.Struct):
        out: dict[str, Any] = {}
        tag = obj.__struct_config__.tag
        if tag is not None:
            out["type"] = tag
            out["name"] = type(obj).__name__
        for name in obj.__struct_fields__:
            out[name] = _plain(getattr(obj, name))
        return out
    if isinstance(obj, (tuple, list)):
        return [_plain(x) for x in obj]
    return obj


def to_plain(seq: int, env: Envelope) -> dict[str, Any]:
    """A readable, JSON-ready view of one record (field names instead of array positions)."""
    return {"seq": seq, "ts_ns": env.ts_ns, "src": env.src, "cause": env.cause, "ev": _plain(env.ev)}
