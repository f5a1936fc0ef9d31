"""The proofs of ``pmm prove``: deterministic scenarios through the real core, each with its own journal.

A proof is a function ``(ctx: ProofContext) -> str`` registered with ``@proof("name")``. It returns a one-line
detail on success and raises ``ProofFailed`` (via ``expect``) on failure. Proof modules register on import;
``ALL_MODULES`` lists them.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from events.params import CoreParams
from replay.harness import ScriptedSession


class ProofFailed(AssertionError):
    """A proof's claim did not hold."""


def expect(condition: object, detail: str) -> None:
    """Fail the running proof with ``detail`` unless ``condition`` holds."""
    if not condition:
        raise ProofFailed(detail)


class ProofContext:
    """What a proof gets: a place for its journal and a way to open scripted sessions."""

    def __init__(self, name: str, out_dir: Path | None) -> None:
        self.name = name
        self.out_dir = out_dir
        self.sessions: list[ScriptedSession] = []

    def session(self, params: CoreParams, *, seed: int = 0, suffix: str = "", **kw: object) -> ScriptedSession:
        jdir = None
        if self.out_dir is not None:
            jdir = self.out_dir / (self.name + (f"-{suffix}" if suffix else ""))
        s = ScriptedSession(params, run_id=f"proof-{self.name}{suffix}", seed=seed, journal_dir=jdir, **kw)  # type: ignore[arg-type]
        self.sessions.append(s)
        return s

    def close(self) -> list[Path]:
        for s in self.sessions:
            s.close()
        return [s.journal_dir for s in self.sessions if s.journal_dir is not None]


ProofFn = Callable[[ProofContext], str]
PROOFS: dict[str, ProofFn] = {}

ALL_MODULES = (
    "replay.proofs.core",
    "replay.proofs.book",
    "replay.proofs.risk",
    "replay.proofs.paper",
    "replay.proofs.live",
)


def proof(name: str) -> Callable[[ProofFn], ProofFn]:
    def register(fn: ProofFn) -> ProofFn:
        if name in PROOFS:
            raise ValueError(f"duplicate proof name {name!r}")
        PROOFS[name] = fn
        return fn

    return register
