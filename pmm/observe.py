"""``pmm observe (--journal DIR | --status FILE_OR_DIR) [--once] [--interval S]``: a read-only rolling summary.

For the observer, who may only read. It follows a live journal (``journal.follow`` + ``SessionStats``) or a
published ``status.json`` (re-read every interval; a publish folder also has an append-only ``summary.jsonl``,
used for the "last hour" line) and prints a compact summary to stdout.

Read-only by construction: files are opened ``O_RDONLY`` (``JournalReader``/``follow``/``read_status``, and
``open(..., "rb")`` here), no lock is taken, nothing is created, renamed or deleted, nothing is sent anywhere.
It writes to stdout only. There is no channel from here to the trading process: it cannot stop, start or
steer a session (that is by design; see ``docs/observer.md``).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from actors.sink.stats import SessionStats
from actors.sink.status import Status, build_status
from events.codec import EventDecodeError, decode
from events.control import RunEnded, RunStarted
from pmm.args import positive_float
from pmm.report import EXIT_FAIL, EXIT_USAGE, SEC, _err, _Parser, fmt_duration, short

DEFAULT_INTERVAL = 2.0
DEFAULT_STALE_S = 10.0
SUMMARY_TAIL_BYTES = 512 * 1024
"""How much of the end of ``summary.jsonl`` is read (one line a minute: an hour is well within this)."""

Out = Callable[[str], None]
Now = Callable[[], int]


# =============================================================== command line
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pmm observe",
                description="Read-only rolling summary of a running (or finished) session. Writes nothing.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--journal", metavar="DIR", help="a session's journal folder (followed as it grows)")
    src.add_argument("--status", metavar="FILE_OR_DIR",
                     help="a status.json, or a publish folder holding status.json and summary.jsonl")
    p.add_argument("--once", action="store_true", help="print one summary and exit")
    p.add_argument("--interval", type=positive_float, default=DEFAULT_INTERVAL, metavar="S",
                   help=f"seconds between summaries (default {DEFAULT_INTERVAL:g})")
    p.add_argument("--stale-after", type=positive_float, default=DEFAULT_STALE_S, metavar="S",
                   help=f"call the session STALE when nothing new was written for this long "
                        f"(default {DEFAULT_STALE_S:g})")
    return p


def observe_main(argv: list[str]) -> int:
    """Entry point of ``pmm observe``. 0: done (or Ctrl-C); 1: damaged journal; 2: unusable input."""
    from journal import JournalCorruption, JournalError

    args = build_parser().parse_args(argv)
    out = _stdout
    try:
        if args.journal:
            path = Path(args.journal)
            if args.once:
                out(render(journal_snapshot(path), now_ns=time.time_ns(), stale_after_s=args.stale_after))
                return 0
            import trio

            return trio.run(lambda: follow_journal(path, interval=args.interval, out=out,
                                                   stale_after_s=args.stale_after))
        status_path, summary_path = status_paths(Path(args.status))
        if args.once:
            snap = status_snapshot(status_path, summary_path)
            out(render(snap, now_ns=time.time_ns(), stale_after_s=args.stale_after))
            return 0
        import trio

        return trio.run(lambda: follow_status(status_path, summary_path, interval=args.interval, out=out,
                                              stale_after_s=args.stale_after))
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return 0
    except JournalCorruption as exc:
        _err(str(exc))
        return EXIT_FAIL
    except StatusError as exc:
        _err(str(exc))
        return EXIT_USAGE
    except (JournalError, ValueError, OSError) as exc:
        _err(str(exc))
        return EXIT_USAGE


def _stdout(text: str) -> None:
    if sys.stdout.isatty():
        sys.stdout.write("\x1b[H\x1b[2J")  # redraw in place on a terminal
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# =============================================================== snapshots
@dataclass
class Snapshot:
    """What one summary shows: a ``Status`` (read, or built from the journal) and where it came from."""

    source: str
    """"journal" or "status"."""
    path: Path
    status: Status | None
    ended: str | None = None
    """Journal source: the ``RunEnded`` reason when the run ended cleanly."""
    torn: str = ""
    problem: str = ""
    """Why there is no status right now (follow mode keeps trying)."""
    history: list[Status] = field(default_factory=list)
    """Status source: the recent lines of ``summary.jsonl`` (oldest first)."""
    history_lines: int = 0


class StatusError(Exception):
    """The status file is missing or unreadable (one line)."""


def status_paths(path: Path) -> tuple[Path, Path | None]:
    """(status.json, summary.jsonl or None) for a status file or a publish folder."""
    if path.is_dir():
        return path / "status.json", path / "summary.jsonl"
    return path, path.with_name("summary.jsonl")


def read_status_ro(path: Path) -> Status:
    """``read_status``, with one-line errors: read-only (``open(..., "rb")``)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise StatusError(f"{path}: no status file here (is a session running, or the folder synced?)") from None
    except IsADirectoryError:
        raise StatusError(f"{path}: is a folder, not a status file") from None
    except OSError as exc:
        raise StatusError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return msgspec.json.decode(raw, type=Status)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise StatusError(f"{path}: not a pmm status file: {str(exc).splitlines()[0]}") from None


def read_summary_tail(path: Path | None, max_bytes: int = SUMMARY_TAIL_BYTES) -> tuple[list[Status], int]:
    """The complete lines at the end of ``summary.jsonl`` (at most ``max_bytes``), decoded; bad lines skipped.

    Returns (statuses oldest first, number of lines read). A missing file gives ([], 0).
    """
    if path is None:
        return [], 0
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            start = max(0, size - max_bytes)
            f.seek(start)
            data = f.read(size - start)
    except OSError:
        return [], 0
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]  # the first one is probably cut
    lines = lines[:-1]  # after the last newline: empty, or a line still being appended
    out = []
    for line in lines:
        try:
            out.append(msgspec.json.decode(line, type=Status))
        except (msgspec.ValidationError, msgspec.DecodeError):
            continue
    return out, len(lines)


def status_snapshot(status_path: Path, summary_path: Path | None) -> Snapshot:
    """Read the status (raises ``StatusError``) and the recent summary lines."""
    st = read_status_ro(status_path)
    hist, n = read_summary_tail(summary_path)
    return Snapshot("status", status_path, st, history=hist, history_lines=n)


class JournalView:
    """``SessionStats`` over a journal's records, plus what a status needs that the stats do not keep."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stats = SessionStats()
        self.version = ""
        self.ended: str | None = None
        self.records = 0

    def feed(self, seq: int, payload: bytes | memoryview, where: str = "") -> None:
        try:
            env = decode(payload)
        except EventDecodeError as exc:
            from replay.journal_io import JournalDecodeError

            raise JournalDecodeError(f"{where or self.path}: record seq {seq}: {exc}") from None
        self.stats.feed(seq, env)
        self.records = seq
        ev = env.ev
        if isinstance(ev, RunStarted):
            self.version = ev.version
        elif isinstance(ev, RunEnded):
            self.ended = ev.reason

    def snapshot(self, torn: str = "") -> Snapshot:
        st = self.stats
        if not self.records:
            return Snapshot("journal", self.path, None, problem="no records yet")
        state = "ended" if self.ended is not None else ("halted" if st.halted else "running")
        status = build_status(st, now_ns=st.now_ns, version=self.version, journal=self.path, state=state)
        return Snapshot("journal", self.path, status, ended=self.ended, torn=torn)


def journal_snapshot(path: Path) -> Snapshot:
    """Read a whole journal once (read-only) and summarize it."""
    from journal import JournalReader

    reader = JournalReader(path)
    view = JournalView(path)
    for rec in reader.records():
        view.feed(rec.seq, rec.payload, f"{rec.segment}: offset {rec.offset}")
    torn = ""
    if reader.torn is not None:
        torn = f"torn tail after seq {reader.torn.last_seq} ({reader.torn.dropped_bytes} bytes: {reader.torn.reason})"
    return view.snapshot(torn)


# =============================================================== follow modes
async def follow_journal(path: Path, *, interval: float, out: Out, stale_after_s: float = DEFAULT_STALE_S,
                         now_ns: Now = time.time_ns) -> int:
    """Follow a live journal, printing a summary every ``interval`` seconds; returns 0 once the run has ended
    (``RunEnded``), after a final summary. Raises the journal's errors (damage, no such folder)."""
    import trio

    from journal import follow

    view = JournalView(path)
    done = trio.Event()
    failed: list[BaseException] = []

    async def reader() -> None:
        try:
            async for rec in follow(path):
                view.feed(rec.seq, rec.payload, f"{rec.segment}: offset {rec.offset}")
                if view.ended is not None:
                    break
        except Exception as exc:  # re-raised below, unwrapped (not as an exception group)
            failed.append(exc)
        finally:
            done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        while not done.is_set():
            with trio.move_on_after(interval):
                await done.wait()
            if failed:
                break
            out(render(view.snapshot(), now_ns=now_ns(), stale_after_s=stale_after_s))
        nursery.cancel_scope.cancel()
    if failed:
        raise failed[0]
    return 0


async def follow_status(status_path: Path, summary_path: Path | None, *, interval: float, out: Out,
                        stale_after_s: float = DEFAULT_STALE_S, now_ns: Now = time.time_ns,
                        count: int | None = None) -> int:
    """Re-read the status every ``interval`` seconds and print a summary, until cancelled (or ``count`` times).

    A missing or unreadable status is shown and retried (a synced folder may lag, a session may restart).
    """
    import trio

    n = 0
    while count is None or n < count:
        try:
            snap = status_snapshot(status_path, summary_path)
        except StatusError as exc:
            snap = Snapshot("status", status_path, None, problem=str(exc))
        out(render(snap, now_ns=now_ns(), stale_after_s=stale_after_s))
        n += 1
        if count is None or n < count:
            await trio.sleep(interval)
    return 0


# =============================================================== rendering
def _age(seconds: float) -> str:
    if seconds < 0:
        return f"{seconds:.1f} s (in the future: clocks differ)"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return fmt_duration(int(seconds * SEC))


def _px(v: float | None) -> str:
    """A price in dollars: at least 2 decimals, at most 4 (ticks go down to 0.001)."""
    if v is None:
        return "-"
    text = f"{v:.4f}".rstrip("0")
    return text + "0" * max(0, 2 - len(text.split(".")[1]))


def _utc(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ns / SEC)) if ns else "-"


def render(snap: Snapshot, *, now_ns: int, stale_after_s: float = DEFAULT_STALE_S) -> str:
    """The compact summary (plain text, one screen)."""
    what = "journal" if snap.source == "journal" else "status"
    lines = [f"pmm observe (read-only): {what} {snap.path}   now {_utc(now_ns)}"]
    st = snap.status
    if st is None:
        lines.append(f"WAITING: {snap.problem}")
        return "\n".join(lines)
    age_s = (now_ns - st.written_at_ns) / SEC
    written = "last record" if snap.source == "journal" else "status written"
    if snap.source == "journal" and snap.ended is not None:
        lines.append(f"ENDED: the session stopped cleanly ({snap.ended}); last record {_age(age_s)} ago")
    elif snap.source == "status" and st.state in ("stopped", "crashed"):
        lines.append(f"ENDED: session state {st.state.upper()}; final status written {_age(age_s)} ago")
    elif age_s > stale_after_s:
        thing = "journal not appended" if snap.source == "journal" else "status not updated"
        lines.append(f"STALE: {thing} for {_age(age_s)} — the bot may be down")
    if snap.torn:
        lines.append(f"note: {snap.torn}")
    lines.append(f"run {st.run_id or '-'}  mode {st.mode or '-'}  version {st.version or '-'}  state {st.state}  "
                 f"uptime {fmt_duration(int(st.uptime_s * SEC))}  ({written} {_age(age_s)} ago, "
                 f"{_utc(st.written_at_ns)})")
    frame = "-" if st.last_frame_age_s is None else _age(st.last_frame_age_s)
    frame_note = " (at the last record)" if snap.source == "journal" else ""
    lines.append(f"feed     {st.feed_state} (connection #{st.feed_conn}), last frame {frame} old{frame_note}, "
                 f"{st.frames} frames, {st.reconnects} reconnects, {st.parse_errors} parse errors")
    kill = f"TRIPPED: {st.kill_switch}" if st.kill_switch else "not tripped"
    lines.append(f"trading  {st.trading_state}   kill switch: {kill}")
    if st.markets:
        lines.append(f"  {'token':<14} {'bid':>7} {'ask':>7} {'mid':>7}  {'book':<7} {'position':>10} {'PnL USD':>10}")
        for m in st.markets:
            lines.append(f"  {short(m.token_id):<14} {_px(m.best_bid):>7} {_px(m.best_ask):>7} {_px(m.mid):>7}  "
                         f"{'ok' if m.book_valid else 'INVALID':<7} {m.position:>+10.2f} {m.pnl:>+10.4f}")
    lines.append(f"orders   {st.open_orders} open, {st.fills} fills   position {st.position:+.2f} shares   "
                 f"PnL {st.pnl:+.4f} USD   reward score {st.reward_score:.1f}")
    if st.quotes:
        qs = " | ".join(f"{q.side} {short(q.token_id)} {q.price:g} x {q.size:g}" for q in st.quotes[:6])
        more = f" (+{len(st.quotes) - 6} more)" if len(st.quotes) > 6 else ""
        lines.append(f"quotes   {qs}{more}")
    rejects = ", ".join(f"{k} {v}" for k, v in sorted(st.risk_rejects.items(), key=lambda kv: (-kv[1], kv[0])))
    lines.append(f"activity {st.churn_places_per_min} places, {st.churn_cancels_per_min} cancels in the last minute"
                 f"   risk rejects: {rejects or 'none'}   exchange errors {st.exchange_errors}")
    if st.preflight:
        lines.append("preflight " + "; ".join(st.preflight))
    hist = _history_line(snap)
    if hist:
        lines.append(hist)
    return "\n".join(lines)


def _history_line(snap: Snapshot) -> str:
    """The change over the last hour, from summary.jsonl (one line a minute)."""
    st = snap.status
    hist = [h for h in snap.history if st is None or h.run_id == st.run_id]
    if st is None or not hist:
        return ""
    target = st.written_at_ns - 3600 * SEC
    base = next((h for h in hist if h.written_at_ns >= target), hist[0])
    span_s = (st.written_at_ns - base.written_at_ns) / SEC
    if span_s <= 0 or math.isnan(span_s):
        return f"history  summary.jsonl: {snap.history_lines} recent lines"
    return (f"last {fmt_duration(int(span_s * SEC))} (summary.jsonl): PnL {st.pnl - base.pnl:+.4f} USD, "
            f"fills +{st.fills - base.fills}, position {st.position - base.position:+.2f} shares, "
            f"reconnects +{st.reconnects - base.reconnects}")
