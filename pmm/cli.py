"""The `pmm` command line: parses arguments and calls wiring. Nothing else lives here.

Every error the user can cause (bad arguments, a missing or damaged journal, a bad config) ends in one line on
stderr naming the problem, and a non-zero exit: 1 for a failed check (a proof, a replay mismatch, corruption),
2 for unusable input.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pmm.args import EXIT_FAIL, EXIT_USAGE, Parser, positive_float, positive_int
from pmm.args import err as _err


# ---------------------------------------------------------------- prove
def cmd_prove(args: argparse.Namespace) -> int:
    from replay.prove import run_proofs

    try:
        results = run_proofs(Path(args.out), only=args.only or None)
    except KeyError as exc:
        _err(str(exc.args[0]))
        return EXIT_USAGE
    width = max(len(r.name) for r in results) if results else 0
    for r in results:
        print(f"{'PASS' if r.passed else 'FAIL'}  {r.name:<{width}}  {r.detail}")
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed; artifacts in {args.out}/ (summary.json, journals/)")
    return EXIT_FAIL if failed else 0


# ---------------------------------------------------------------- replay
def cmd_replay_verify(args: argparse.Namespace) -> int:
    from journal import JournalCorruption, JournalError
    from replay.verify import verify

    try:
        res = verify(Path(args.journal))
    except JournalCorruption as exc:
        _err(str(exc))
        return EXIT_FAIL
    except (JournalError, ValueError, OSError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    for note in res.notes:
        print(note)
    if res.same_core is False:
        print(f"note: written by pmm {res.recorded_by}, replayed by pmm {res.replayed_by} (another core)")
    elif res.same_core is None and res.recorded_by:
        print(f"note: written by pmm {res.recorded_by}, which did not record its core; replayed by {res.replayed_by}")
    if res.ok:
        print(f"OK: {res.records} records ({res.inputs} inputs) replayed bit for bit: {args.journal}")
        return 0
    import msgspec

    from events.codec import to_plain

    m = res.mismatch
    assert m is not None
    print(f"MISMATCH at seq {m.seq}, actor {m.actor}: {m.reason}")
    print("  recorded:", msgspec.json.encode(to_plain(m.seq, m.recorded)).decode() if m.recorded else "(nothing)")
    print("  replayed:", msgspec.json.encode(to_plain(m.seq, m.replayed)).decode() if m.replayed else "(nothing)")
    if res.same_core is not True:
        print("  the journal was written by other code: a difference can come from a code change, not a bug; "
              "replay it with the pmm that wrote it to tell them apart")
    return EXIT_FAIL


def cmd_replay_show(args: argparse.Namespace) -> int:
    from journal import JournalCorruption, JournalError
    from replay.show import show_lines

    out = sys.stdout.buffer
    try:
        for line in show_lines(Path(args.journal), from_seq=args.from_seq, to_seq=args.to_seq, source=args.source):
            out.write(line + b"\n")
    except BrokenPipeError:
        return 0
    except JournalCorruption as exc:
        out.flush()
        _err(str(exc))
        return EXIT_FAIL
    except (JournalError, ValueError, OSError) as exc:
        out.flush()
        _err(str(exc))
        return EXIT_USAGE
    return 0


# ---------------------------------------------------------------- sessions
def cmd_session(args: argparse.Namespace) -> int:
    import trio

    from actors.session import SessionError, default_print, endpoints_for, endpoints_from_config, run_session
    from journal import JournalError
    from pmm.config import ConfigError, load_config
    from pmm.launch import SandboxStartError, sandbox_process

    mode = args.cmd
    try:
        cfg = load_config(Path(args.config) if args.config else None)
    except ConfigError as exc:
        _err(str(exc))
        return EXIT_USAGE
    if mode == "paper" and args.fills:
        import msgspec

        cfg = msgspec.structs.replace(cfg, fills=args.fills)
    journal_root = Path(args.journal or cfg.journal_dir)
    duration = args.duration if args.duration is not None else (DEFAULT_PAPER_S if mode == "paper" else None)

    async def main() -> int:
        endpoints = endpoints_from_config(cfg, args.exchange)
        if endpoints is None:
            async with sandbox_process(seed=cfg.exchange.sandbox_seed, scenario=cfg.exchange.sandbox_scenario) as url:
                res = await run_session(cfg, mode=mode, endpoints=endpoints_for(url, sandbox=True),
                                        duration_s=duration, journal_root=journal_root, out=default_print)
        else:
            res = await run_session(cfg, mode=mode, endpoints=endpoints, duration_s=duration,
                                    journal_root=journal_root, out=default_print)
        _final_summary(mode, res)
        return 0

    try:
        return trio.run(main)
    except (SessionError, SandboxStartError, JournalError, OSError) as exc:
        _err(str(exc))
        return EXIT_FAIL


DEFAULT_PAPER_S = 180.0


def _final_summary(mode: str, res) -> None:
    st = res.stats
    secs = (st.now_ns - st.started_ns) / 1e9
    print(f"--- {mode} session ended after {secs:.0f} s ---")
    print(f"frames {st.frames}, reconnects {st.reconnects}, parse errors {st.parse_errors}, "
          f"desired-quote updates {st.desired_quotes}")
    if mode != "shadow":
        codes = ", ".join(f"{k} {v}" for k, v in sorted(st.reject_codes.items())) or "none"
        print(f"order intents {st.intents}, risk rejects {st.rejects} ({codes}), fills {st.fills}, "
              f"position {st.position_shares:+.2f} shares, PnL {st.pnl:+.4f} USD")
        if st.churn is not None:
            c = st.churn
            print(f"churn (last minute): {c.places} places, {c.cancels} cancels, {c.replaces} replaces, "
                  f"mean order life {c.mean_life_ns / 1e9:.1f} s")
        for (token, side), q in sorted(st.quote_quality.items()):
            print(f"quotes {token[:6]}…{token[-4:]} {side}: at top of book {q.at_top_ppm / 1e4:.0f}% of "
                  f"{q.resting_ns / 1e9:.0f} s resting, mean {q.mean_distance_ticks_x100 / 100:.1f} ticks from mid "
                  f"(last minute)")
    hours = secs / 3600 if secs > 0 else 0
    rate = f"{st.reconnects / hours:.1f}/h" if hours else "n/a"
    print(f"uptime {secs:.0f} s, reconnects {st.reconnects} ({rate}), stale-feed kill switches {st.stale_kills}")
    print(f"kill switch: {st.halted or 'not tripped'}")
    print(f"journal: {res.run_dir} ({st.last_seq} records)")
    print(f"replay it: pmm replay verify {res.run_dir}")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="pmm", description="pmm: a Polymarket market maker with deterministic replay.")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=Parser)

    pr = sub.add_parser("prove", help="run the offline proofs; write artifacts/proofs/latest/")
    pr.add_argument("--out", default="artifacts/proofs/latest", help="artifact folder (replaced)")
    pr.add_argument("--only", nargs="*", metavar="NAME", help="run only these proofs")
    pr.set_defaults(fn=cmd_prove)

    rp = sub.add_parser("replay", help="verify or show a journal")
    rsub = rp.add_subparsers(dest="replay_cmd", required=True, parser_class=Parser)
    rv = rsub.add_parser("verify", help="re-derive all core output from the recorded inputs and compare bytes")
    rv.add_argument("journal", help="journal directory")
    rv.set_defaults(fn=cmd_replay_verify)
    rs = rsub.add_parser("show", help="print records as JSON lines")
    rs.add_argument("journal", help="journal directory")
    rs.add_argument("--from", dest="from_seq", type=positive_int, default=1, metavar="SEQ")
    rs.add_argument("--to", dest="to_seq", type=positive_int, default=None, metavar="SEQ")
    rs.add_argument("--source", default=None, metavar="ACTOR", help="only records from this actor")
    rs.set_defaults(fn=cmd_replay_show)

    for name, help_ in (("shadow", "live market data in, desired quotes computed, nothing sent"),
                        ("paper", "quote against live data with no real orders (simulated fills by default)")):
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("--config", metavar="FILE", help="config.json (default: safe built-in defaults)")
        sp.add_argument("--exchange", metavar="URL", help="base URL of a sandbox or an exchange laid out like it")
        sp.add_argument("--duration", type=positive_float, metavar="SECONDS",
                        help="stop after this long" + (" (default 180)" if name == "paper" else " (default: until Ctrl-C)"))
        sp.add_argument("--journal", metavar="DIR", help="folder for run journals (default: config journal_dir)")
        if name == "paper":
            sp.add_argument("--fills", choices=["none", "sim"], help="none: record only; sim: simulated fills")
        sp.set_defaults(fn=cmd_session)

    for name, help_ in (("sandbox", "run the sandbox exchange"),
                        ("report", "write a self-contained HTML report of a journal"),
                        ("observe", "read-only rolling summary of a journal or a published status"),
                        ("bench", "run the benchmarks, each beside a baseline measured in the same run"),
                        ("preflight", "check everything live trading needs (geoblock, allowlist, caps, keys...)"),
                        ("live", "real orders on allow-listed markets with tiny caps, after a preflight"),
                        ("config", "write (init) or validate (check) config.json"),
                        ("start", "run a paper or live session under the supervisor (restarts after a crash)"),
                        ("stop", "stop the supervised session gracefully (cancel all, flush, exit)"),
                        ("status", "print status.json readably (--json: raw)"),
                        ("prune", "delete the oldest finished run journals beyond the storage limits (--dry-run)"),
                        ("bundle", "build the Operator Bundle zip for a platform"),
                        ("chaos", "run pmm against the sandbox under a seeded fault schedule; check invariants")):
        sub.add_parser(name, help=f"{help_} (see `pmm {name} --help`)", add_help=False)
    return p


def _passthrough(name: str):
    """Subcommands with their own argument parsers, in their own modules (imported only when used)."""
    import importlib

    module, fn = PASSTHROUGH[name]
    return getattr(importlib.import_module(module), fn)


PASSTHROUGH = {
    "sandbox": ("sandbox.cli", "main"),
    "report": ("pmm.report", "report_main"),
    "observe": ("pmm.observe", "observe_main"),
    "bench": ("bench.runner", "main"),
    "live": ("actors.live_session", "live_main"),
    "config": ("pmm.configcmd", "config_main"),
    "start": ("pmm.supervisor", "start_main"),
    "stop": ("pmm.supervisor", "stop_main"),
    "status": ("pmm.statuscmd", "status_main"),
    "prune": ("pmm.retention", "prune_main"),
    "bundle": ("bundle.build", "bundle_main"),
    "chaos": ("pmm.chaos", "chaos_main"),
    "preflight": ("pmm.preflight", "preflight_main"),
}


def _sandbox_playback_from_journal(argv: list[str]) -> list[str]:
    """``pmm sandbox --playback JOURNAL_DIR``: export the journal's raw frames for the sandbox to serve."""
    if "--playback" not in argv:
        return argv
    i = argv.index("--playback")
    if i + 1 >= len(argv) or not Path(argv[i + 1]).is_dir():
        return argv
    import tempfile

    from replay.export import export_frames

    out = Path(tempfile.mkdtemp(prefix="pmm-playback-")) / "frames.jsonl"
    n = export_frames(Path(argv[i + 1]), out)
    print(f"pmm sandbox: serving {n} recorded frames from journal {argv[i + 1]}", flush=True)
    return [*argv[:i + 1], str(out), *argv[i + 2:]]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "sandbox":
        try:
            argv = ["sandbox", *_sandbox_playback_from_journal(argv[1:])]
        except Exception as exc:  # a damaged journal: one line, like every other command
            _err(str(exc).splitlines()[0])
            return EXIT_USAGE
    if argv and argv[0] in PASSTHROUGH:
        return int(_passthrough(argv[0])(argv[1:]))
    args = build_parser().parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
