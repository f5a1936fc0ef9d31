"""``pmm bench [NAME ...] [--quick]``: run the benchmarks, print one table, write ``artifacts/bench/latest.json``.

Every row is a figure measured in this run, beside a baseline measured in the same run on the same machine
where there is one, and their ratio. Targets are marked ``ok`` or ``MISSED`` but never fail the command: speed
goals are benchmarks, not tests. Exit codes: 0 every named bench ran; 1 a bench failed to run (the others still
run, the error is one line on stderr); 2 unusable arguments (e.g. an unknown bench name).

``latest.json`` is ``{"machine": {...}, "benches": [{"name", "value", "unit", "baseline", "ratio", "target",
"note"}, ...]}``. A run of every bench replaces the file; a run of some benches replaces only their rows.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import time
from pathlib import Path

from bench.common import LATEST, Result, print_table, write_latest

BENCHES: dict[str, str] = {
    "journal": "append rate buffered and with group commit, read/scan rate, bytes/record",
    "replay": "`replay verify` records/s on a >= 1M-record paper-sim journal vs a decode-only pass",
    "feed": "price_change level updates/s and book snapshots/s through the book actor vs json + dict",
    "sign": "signed CLOB V2 orders/s vs py-clob-client-v2",
    "latency": "frame received -> order intent flushed to the journal, p50/p99/p999, loopback sandbox (busy)",
    "scale": "RSS and CPU of a shadow session with 1, 10, 100 markets",
    "peer": "book apply rate vs NautilusTrader's OrderBook (skipped when not installed)",
}
"""Name -> what it measures, in the order a full run goes (module ``bench.<name>``, ``run(quick, ...)``)."""


def _err(msg: str) -> None:
    print(f"pmm: {msg}", file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse would print the usage too)
        raise _Usage(message)


class _Usage(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<8} {what}" for name, what in BENCHES.items())
    p = _Parser(
        prog="pmm bench",
        description="Run benchmarks; print a table; write artifacts/bench/latest.json.",
        epilog=f"benches:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="benches to run (default: all)")
    p.add_argument("--quick", action="store_true", help="a few seconds per bench: a smoke test, not a measurement")
    p.add_argument("--out", default=LATEST, help=f"where to write the JSON (default {LATEST})")
    p.add_argument("--workdir", default=None,
                   help="scratch files and the cached replay journal (default: the --out folder)")
    p.add_argument("--list", action="store_true", help="list the benches and exit")
    return p


def _call(name: str, quick: bool, workdir: Path) -> list[Result]:
    mod = importlib.import_module(f"bench.{name}")
    params = inspect.signature(mod.run).parameters
    kw: dict[str, object] = {}
    if "workdir" in params:
        kw["workdir"] = workdir
    if "cache_dir" in params:
        kw["cache_dir"] = workdir
    return list(mod.run(quick, **kw))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except _Usage as exc:
        _err(f"bench: {exc}")
        return 2
    if args.list:
        for name, what in BENCHES.items():
            print(f"{name:<8} {what}")
        return 0
    unknown = [n for n in args.names if n not in BENCHES]
    if unknown:
        _err(f"bench: unknown bench {unknown[0]!r}; known: {', '.join(BENCHES)}")
        return 2
    names = list(dict.fromkeys(args.names)) or list(BENCHES)
    out = Path(args.out)
    workdir = Path(args.workdir) if args.workdir else out.parent
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _err(f"bench: cannot create {exc.filename}: {exc.strerror}")
        return 2

    results: list[Result] = []
    failed: list[str] = []
    for name in names:
        print(f"bench {name}{' (quick)' if args.quick else ''} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            rows = _call(name, args.quick, workdir)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one bench failing must not hide the others' figures
            first = (str(exc).strip().splitlines() or [""])[0]
            _err(f"bench {name} failed: {type(exc).__name__}: {first}")
            failed.append(name)
            continue
        if args.quick:  # smoke figures, not measurements: say so in latest.json
            for r in rows:
                r.note = f"(quick) {r.note}" if r.note else "(quick)"
        results.extend(rows)
        print(f"bench {name}: {len(rows)} row(s) in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    if results:
        print_table(results)
        full = set(names) == set(BENCHES) and not failed
        path = write_latest(results, out, merge=not full)
        print(f"wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
