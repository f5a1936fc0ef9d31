"""The sequencer: the one writer of the journal and the one place that orders events.

For each input it appends the input, then delivers it to the core actors in their declared order, appends what
they emit (cause = the handled event's seq, ts_ns = the input's ts_ns) and delivers those in turn, breadth-first,
until nothing new is produced. Only then does it take the next input. The journal is therefore a deterministic
function of the sequence of inputs, and replay is "feed the recorded inputs to a new sequencer and compare".

The sequencer itself is synchronous (``submit``); ``run`` is the thin trio task that takes inputs from edge
actors over a bounded channel and fans the appended records out to sinks.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import trio

from actors.core.base import CoreActor
from events.base import Event
from events.codec import Envelope, encode
from events.control import KillSwitch

MAX_CASCADE = 100_000
"""Upper bound on events derived from one input: a loop in the core fails closed instead of hanging."""


class RecordSink(Protocol):
    """Where the sequencer's records go: the journal when recording, a comparer when verifying."""

    def append(self, payload: bytes, env: Envelope) -> int:
        """Persist (or check) one record and return its seq."""
        ...


class Input(Protocol):
    src: str
    ts_ns: int
    ev: Event


class Sequencer:
    """Orders inputs and runs the core over them. Not thread-safe; one per journal."""

    def __init__(self, sink: RecordSink, actors: Sequence[CoreActor]) -> None:
        self._sink = sink
        self.actors = tuple(actors)
        names = [a.name for a in self.actors]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate core actor names: {names}")
        self._routes: dict[type[Event], tuple[CoreActor, ...]] = {}
        self._steps: dict[type[Event], tuple[tuple[str, Callable[[int, Envelope], Sequence[Event]]], ...]] = {}
        """Per event type: (name, bound ``step``) of the actors it is delivered to, in declared order (built once)."""
        self._last_ts = 0
        self.failed: str = ""
        """Set once a core actor raised: the run is halted and only cancels may pass."""

    def _route(self, kind: type[Event]) -> tuple[CoreActor, ...]:
        route = self._routes.get(kind)
        if route is None:
            route = tuple(a for a in self.actors if issubclass(kind, a.consumes))
            self._routes[kind] = route
        return route

    def _route_steps(self, kind: type[Event]) -> tuple[tuple[str, Callable[[int, Envelope], Sequence[Event]]], ...]:
        steps = tuple((a.name, a.step) for a in self._route(kind))
        self._steps[kind] = steps
        return steps

    @property
    def last_ts(self) -> int:
        return self._last_ts

    def submit(self, src: str, ts_ns: int, ev: Event) -> list[tuple[int, Envelope]]:
        """Append one input and everything it causes. Returns the appended records in seq order.

        ``ts_ns`` is clamped so that time never goes backwards in the journal.
        """
        ts = ts_ns if ts_ns > self._last_ts else self._last_ts
        self._last_ts = ts
        env = Envelope(ts, src, 0, ev)
        append = self._sink.append
        seq = append(encode(env), env)
        out = [(seq, env)]
        steps = self._steps
        # ``out`` is also the breadth-first queue: records are handled in the order they were appended.
        i = 0
        while i < len(out):
            seq, env = out[i]
            i += 1
            route = steps.get(type(env.ev))
            if route is None:
                route = self._route_steps(type(env.ev))
            for name, step in route:
                try:
                    emitted = step(seq, env)
                except Exception as exc:  # crash-only: the failure becomes a journaled, replayable halt
                    emitted = self._internal_error(name, exc)
                for ev2 in emitted:
                    env2 = Envelope(ts, name, seq, ev2)
                    out.append((append(encode(env2), env2), env2))
                if len(out) > MAX_CASCADE:
                    raise RuntimeError(f"input at seq {out[0][0]} caused more than {MAX_CASCADE} events")
        return out

    def _internal_error(self, actor: str, exc: Exception) -> list[Event]:
        detail = f"{actor}: {type(exc).__name__}: {exc}"
        if self.failed:
            return []
        self.failed = detail
        return [KillSwitch(reason="internal_error", detail=detail[:500])]


class Subscriber:
    """A sink's subscription: which events it wants and the bounded channel they arrive on."""

    def __init__(self, name: str, wants: Callable[[Envelope], bool], send: trio.MemorySendChannel) -> None:
        self.name = name
        self.wants = wants
        self.send = send


async def run_sequencer(
    sequencer: Sequencer,
    inputs: trio.MemoryReceiveChannel,
    *,
    flush: Callable[[], None],
    subscribers: Sequence[Subscriber] = (),
    on_records: Callable[[list[tuple[int, Envelope]]], None] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Take inputs ``(src, ts_ns, event)`` until the channel closes; journal, run the core, fan out to sinks.

    ``flush`` hands the appended bytes to the OS after each input (a process crash then loses nothing that a
    sink has seen). Sinks get records over their own bounded channels, so a slow sink slows the sequencer
    (backpressure) instead of growing memory.
    """
    task_status.started()
    live = list(subscribers)
    gone: list[Subscriber] = []
    async with inputs:
        async for src, ts_ns, ev in inputs:
            records = sequencer.submit(src, ts_ns, ev)
            flush()
            if on_records is not None:
                on_records(records)
            for sub in live:
                for rec in records:
                    if sub.wants(rec[1]):
                        try:
                            await sub.send.send(rec)
                        except (trio.BrokenResourceError, trio.ClosedResourceError):
                            gone.append(sub)  # the sink stopped (shutdown): it gets nothing more
                            break
            if gone:
                live = [s for s in live if s not in gone]
                gone.clear()
    for sub in subscribers:
        await sub.send.aclose()
