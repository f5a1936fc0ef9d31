"""What a core actor is: a synchronous, pure step over the events it consumes.

A core actor has no I/O, no clock and no unseeded randomness (the TID251 lint rule and
``tests/test_core_purity.py`` enforce it). "Now" is ``env.ts_ns`` of the event being handled. Its output depends
only on its parameters and the events it was given, in order; that is what makes replay bit-for-bit.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol

from events.base import Event
from events.codec import Envelope


class CoreActor(Protocol):
    """The interface the sequencer drives."""

    name: ClassVar[str]
    """Short, stable actor name; recorded as ``src`` of every event it emits."""
    consumes: ClassVar[tuple[type[Event], ...]]
    """Event types delivered to ``step``; others are never shown to this actor."""

    def step(self, seq: int, env: Envelope) -> Sequence[Event]:
        """Handle the event journaled at ``seq``; return the events it causes, in order."""
        ...


class InvariantError(RuntimeError):
    """A core invariant does not hold. Raised explicitly (``assert`` vanishes under ``python -O``)."""
