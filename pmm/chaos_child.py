"""Chaos-only launcher of a trading session: installs a jumping wall clock, then runs the normal ``pmm`` CLI.

``pmm chaos`` starts a session with ``python -m pmm.chaos_child paper --exchange URL ...`` (the same arguments
as ``pmm paper``) when its fault schedule holds a clock jump. Production code is untouched: this module only
replaces the ``time`` module seen by ``actors.edge.clock`` (the one place the trading process reads the wall
clock for event time) with a shim whose ``time_ns()``/``time()`` jump, exactly as the OS wall clock does when NTP
steps it or an operator sets the date. Monotonic clocks (``monotonic``, ``perf_counter``, trio's clock) do not
jump, as on a real machine.

Environment (read only here, never by production modules):

- ``PMM_CHAOS_CLOCK_JUMP_AT_S``: seconds after this process starts at which the wall clock jumps (0: already
  jumped at start, e.g. a restart after the jump);
- ``PMM_CHAOS_CLOCK_JUMP_BY_S``: the jump, in seconds (negative: backwards).

Without both variables this is exactly ``python -m pmm.cli``.
"""
from __future__ import annotations

import os
import sys
import time as _time
from types import ModuleType

ENV_AT = "PMM_CHAOS_CLOCK_JUMP_AT_S"
ENV_BY = "PMM_CHAOS_CLOCK_JUMP_BY_S"


class JumpingTime(ModuleType):
    """A stand-in for the ``time`` module whose wall clock jumps by ``by_s`` once ``at_s`` (monotonic) elapsed."""

    def __init__(self, at_s: float, by_s: float) -> None:
        super().__init__("time")
        self._mono0 = _time.monotonic()
        self._at = float(at_s)
        self._by_ns = int(float(by_s) * 1e9)

    def _offset_ns(self) -> int:
        return self._by_ns if _time.monotonic() - self._mono0 >= self._at else 0

    def time_ns(self) -> int:
        return _time.time_ns() + self._offset_ns()

    def time(self) -> float:
        return (_time.time_ns() + self._offset_ns()) / 1e9

    def __getattr__(self, name: str) -> object:  # everything else (monotonic, sleep, ...) is the real one
        return getattr(_time, name)


def install_from_env(environ: dict[str, str] | None = None) -> JumpingTime | None:
    """Install the jumping clock if both variables are set; returns it (None when not installed)."""
    env = os.environ if environ is None else environ
    at, by = env.get(ENV_AT), env.get(ENV_BY)
    if not at or not by:
        return None
    import actors.edge.clock as clock_module

    shim = JumpingTime(float(at), float(by))
    clock_module.time = shim  # type: ignore[assignment]
    return shim


def main(argv: list[str] | None = None) -> int:
    install_from_env()
    from pmm.cli import main as cli_main

    return cli_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
