"""Command-line conventions shared by every `pmm` subcommand.

Every error the user can cause ends in one line on stderr (``pmm: ...``) and a non-zero exit:
``EXIT_FAIL`` (1) for a failed check (a proof, a replay mismatch, corruption), ``EXIT_USAGE`` (2) for unusable
input (bad arguments, a missing journal, a bad config).
"""
from __future__ import annotations

import argparse
import sys

EXIT_FAIL = 1
EXIT_USAGE = 2


def err(msg: str) -> None:
    """Print one error line, prefixed ``pmm: ``."""
    print(f"pmm: {msg}", file=sys.stderr, flush=True)


class Parser(argparse.ArgumentParser):
    """argparse with pmm's error style: one line on stderr, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        err(f"{self.prog.removeprefix('pmm').strip() or 'usage'}: {message} (see --help)")
        raise SystemExit(EXIT_USAGE)


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {v}")
    return v


def positive_float(text: str) -> float:
    """A positive, finite number of seconds."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text}")
    return v
