"""Scripted sessions: drive the real core with hand-written inputs, as proofs and tests do.

A ``ScriptedSession`` is a sequencer over ``build_core(params)`` whose inputs come from the caller, each with an
explicit timestamp: no clock, no sockets, no randomness, so the same script always gives the same journal.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from actors.sequencer import Sequencer
from actors.version import run_version
from actors.wiring import build_core
from events.base import Event
from events.codec import Envelope
from events.control import RunStarted
from events.params import CoreParams

E = TypeVar("E", bound=Event)


class MemorySink:
    """Keeps records in memory (tests that need no files)."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    def append(self, payload: bytes, env: Envelope) -> int:
        self.payloads.append(payload)
        return len(self.payloads)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class ScriptedSession:
    """A core driven by scripted inputs. Records every (seq, envelope) it appended, in order."""

    def __init__(
        self,
        params: CoreParams,
        *,
        run_id: str = "scripted",
        seed: int = 0,
        mode: str = "prove",
        journal_dir: Path | None = None,
        start_ns: int = 1_700_000_000 * 10**9,
        prior_halt: str = "",
    ) -> None:
        from replay.journal_io import open_sink  # late: keeps this module importable without a journal

        self.params = params
        self.sink = open_sink(journal_dir, run_id=run_id, seed=seed, created_ns=start_ns) if journal_dir else MemorySink()
        self.journal_dir = journal_dir
        self.sequencer = Sequencer(self.sink, build_core(params))
        self.records: list[tuple[int, Envelope]] = []
        self.now = start_ns
        self.send(
            "session",
            start_ns,
            RunStarted(
                run_id=run_id,
                mode=mode,  # type: ignore[arg-type]
                version=run_version(),
                seed=seed,
                config_hash="scripted",
                params=params,
                prior_halt=prior_halt,
            ),
        )

    def send(self, src: str, ts_ns: int, ev: Event) -> list[tuple[int, Envelope]]:
        """Submit one input at ``ts_ns``; returns what was appended (the input first)."""
        self.now = max(self.now, ts_ns)
        out = self.sequencer.submit(src, ts_ns, ev)
        self.sink.flush()
        self.records.extend(out)
        return out

    def at(self, dt_ns: int, src: str, ev: Event) -> list[tuple[int, Envelope]]:
        """Submit one input ``dt_ns`` after the previous one."""
        return self.send(src, self.now + dt_ns, ev)

    def events(self, kind: type[E], *, after: int = 0) -> list[E]:
        return [env.ev for seq, env in self.records if seq > after and isinstance(env.ev, kind)]

    def find(self, kind: type[E], *, after: int = 0) -> Iterator[tuple[int, Envelope]]:
        return ((s, e) for s, e in self.records if s > after and isinstance(e.ev, kind))

    def close(self) -> None:
        self.sink.close()
