"""Which code wrote a journal: ``run_version()`` goes into every ``RunStarted.version``.

``"0.1.0+core.1a2b3c4d5e6f"``: the package version, and a fingerprint of every source file that decides what
the core journals (events, the core actors, the sequencer and the wiring). Two journals with the same
fingerprint were written by the same core, so ``replay verify`` must reproduce them; when the fingerprint
differs, a difference may come from a code change, and verify says so.
"""
from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

VERSION = "0.1.0"
"""The package version (pyproject.toml)."""
CORE_SOURCES = ("events/*.py", "actors/core/*.py", "actors/sequencer.py", "actors/wiring.py")
_ROOT = Path(__file__).resolve().parents[1]


@cache
def core_id() -> str:
    """12 hex digits of sha256 over the core's source files (paths and bytes, in sorted order)."""
    h = hashlib.sha256()
    for pattern in CORE_SOURCES:
        for p in sorted(_ROOT.glob(pattern)):
            h.update(p.relative_to(_ROOT).as_posix().encode() + b"\0")
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def run_version() -> str:
    return f"{VERSION}+core.{core_id()}"


def core_of(version: str) -> str:
    """The core fingerprint in a ``RunStarted.version`` ("" for journals written before it was recorded)."""
    _, sep, core = version.partition("+core.")
    return core if sep else ""
