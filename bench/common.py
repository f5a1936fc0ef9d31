"""The shared bench harness: a result row, a table printer, and ``artifacts/bench/latest.json``.

A bench module exposes ``run(quick: bool) -> list[Result]``; each number sits beside a baseline measured in the
same run on the same machine, so the ratio means something even on a noisy laptop.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

LATEST = "artifacts/bench/latest.json"
LOWER_IS_BETTER = ("bytes", "us", "ms", "MB", "% core")
"""Units (prefixes) for which a smaller value is better and a target is a ceiling."""


@dataclass
class Result:
    """One measured number.

    ``ratio`` is ``value / baseline`` (for rates higher is better; for sizes such as bytes/record lower is better,
    see the unit). ``target`` is the number ``value`` should reach, or None.
    """

    name: str
    value: float | None
    """None: not measured (a skipped bench; ``note`` says why)."""
    unit: str
    baseline: float | None = None
    ratio: float | None = None
    target: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.ratio is None and self.baseline and self.value is not None:
            self.ratio = round(self.value / self.baseline, 2)

    @property
    def lower_is_better(self) -> bool:
        """Sizes, durations, memory and CPU load: the target is a ceiling. Rates: the target is a floor."""
        return self.unit.startswith(LOWER_IS_BETTER)

    @property
    def met(self) -> bool | None:
        """Whether the target is reached (None without a target or without a value)."""
        if self.target is None or self.value is None:
            return None
        if self.lower_is_better:
            return self.value <= self.target
        return self.value >= self.target


def best_of_pair(
    a: Callable[[], Any], b: Callable[[], Any], repeat: int = 3, *, clock: Callable[[], float] = time.perf_counter
) -> tuple[float, float]:
    """Best time in seconds of each of two functions, runs interleaved so that both see the same machine load."""
    best_a = best_b = float("inf")
    for _ in range(repeat):
        t0 = clock()
        a()
        t1 = clock()
        b()
        t2 = clock()
        best_a = min(best_a, t1 - t0)
        best_b = min(best_b, t2 - t1)
    return best_a, best_b


def best_of(fn: Callable[[], Any], repeat: int = 3, *, clock: Callable[[], float] = time.perf_counter) -> float:
    """Best time in seconds of ``repeat`` calls of ``fn`` (the least disturbed run).

    ``clock``: ``time.perf_counter`` (wall) or ``time.process_time`` (this process's CPU time, for CPU-bound code
    on a machine shared with other work).
    """
    best = float("inf")
    for _ in range(repeat):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and not x.is_integer() and abs(x) < 1000:
        return f"{x:,.2f}"
    return f"{x:,.0f}"


def print_table(results: Iterable[Result], file: TextIO | None = None) -> None:
    """Print results as an aligned text table, marking each target ok or MISSED, then the notes."""
    out = file or sys.stdout
    results = list(results)
    rows = [("bench", "value", "unit", "baseline", "ratio", "target", "")]
    for r in results:
        mark = {None: "", True: "ok", False: "MISSED"}[r.met]
        rows.append((r.name, _fmt(r.value), r.unit, _fmt(r.baseline), _fmt(r.ratio), _fmt(r.target), mark))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        cells = [c.ljust(w) if i in (0, 2) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        print("  ".join(cells).rstrip(), file=out)
        if k == 0:
            print("  ".join("-" * w for w in widths), file=out)
    for r in results:
        if r.note:
            print(f"  {r.name}: {r.note}", file=out)


def standalone(run: Callable[[bool], list[Result]], argv: list[str] | None = None, doc: str = "") -> int:
    """``python -m bench.X [--quick] [--no-write]``: run one bench module, print its table, update latest.json."""
    import argparse

    ap = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    ap.add_argument("--quick", action="store_true", help="a short smoke run")
    ap.add_argument("--no-write", action="store_true", help=f"do not update {LATEST}")
    args = ap.parse_args(argv)
    results = run(args.quick)
    print_table(results)
    if not args.no_write:
        print(f"wrote {write_latest(results)}")
    return 0


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def write_latest(results: Iterable[Result], path: str | Path = LATEST, *, merge: bool = True) -> Path:
    """Write ``results`` to the JSON file at ``path``, atomically.

    ``merge``: keep the entries of benches not run this time (entries replaced by name); otherwise the file
    holds exactly ``results``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    benches: dict[str, dict[str, Any]] = {}
    try:
        old = json.loads(path.read_text()) if merge else {}
        for entry in old.get("benches", []):
            benches[entry["name"]] = entry
    except (FileNotFoundError, ValueError, KeyError, TypeError, AttributeError):
        pass
    for r in results:
        benches[r.name] = asdict(r)
    doc = {"machine": machine(), "benches": sorted(benches.values(), key=lambda e: e["name"])}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)
    return path
