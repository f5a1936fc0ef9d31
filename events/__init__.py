"""The vocabulary of pmm: every event is a msgspec Struct in one tagged union (see ``events.codec``).

Nothing in this package imports from anywhere else in the project.
"""
from events.base import MICRO, Event
from events.codec import (
    ALL_EVENTS,
    SCHEMA_FINGERPRINT,
    SCHEMA_VERSION,
    AnyEvent,
    Envelope,
    EventDecodeError,
    decode,
    encode,
    tag_of,
    to_plain,
)

__all__ = [
    "ALL_EVENTS",
    "MICRO",
    "SCHEMA_FINGERPRINT",
    "SCHEMA_VERSION",
    "AnyEvent",
    "Envelope",
    "Event",
    "EventDecodeError",
    "decode",
    "encode",
    "tag_of",
    "to_plain",
]
