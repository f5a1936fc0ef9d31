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


@dataclass
class Result:
    """One measured number.

    ``ratio`` is ``value / baseline`` (for rates higher is better; for sizes such as bytes/record lower is better,
    see the unit). ``target`` is the number ``value`` should reach, or None.
    """

    name: str
    value: float
    unit: str
    baseline: float | None = None
    ratio: float | None = None
    target: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.ratio is None and self.baseline:
            self.ratio = round(self.value / self.baseline, 2)

    @property
    def met(self) -> bool | None:
        """Whether the target is reached (None without a target). Size units ("bytes...") must stay at or below it."""
        if self.target is None:
            return None
        if self.unit.startswith("bytes"):
            return self.value <= self.target
        return self.value >= self.target


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


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def write_latest(results: Iterable[Result], path: str | Path = LATEST) -> Path:
    """Merge ``results`` into the JSON file at ``path`` (entries replaced by name), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    benches: dict[str, dict[str, Any]] = {}
    try:
        old = json.loads(path.read_text())
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
