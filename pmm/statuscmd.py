"""`pmm status [--json] [--data DIR]`: what the session in a data folder is doing, from its status.json.

Read-only: it reads status.json (written every second by the session, and by the supervisor when it starts,
restarts, gives up or stops a session) and checks whether a supervisor holds the data folder's lock; it measures
the free space on the journal's disk and the size of the run journals (pmm/retention.py). Nothing is created or
changed.

Exit codes: 0 running, 1 running but STALE (status.json not rewritten for more than 10 s), 3 not running,
2 unusable input.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pmm import retention
from pmm.args import Parser as _Parser
from pmm.supervisor import DataDir, data_dir, lock_held, pid_alive, read_json, read_pid

EXIT_OK, EXIT_STALE, EXIT_USAGE, EXIT_NOT_RUNNING = 0, 1, 2, 3
STALE_AFTER_S = 10.0
SEC = 1_000_000_000

KILL_REASONS = {
    "feed_stale": "no market data arrived for too long (internet or exchange down?)",
    "book_invalid": "a market's order book stayed broken (crossed or resyncing) for too long",
    "error_rate": "the exchange refused or failed too many requests in a short time",
    "position_limit": "a position grew past the configured maximum (or the wallet held more than that at the start)",
    "loss_limit": "the loss in this run reached the configured maximum",
    "daily_loss": "today's loss reached the configured daily maximum",
    "operator_stop": "the operator stopped it (Stop, Ctrl-C or the end of the duration): normal",
    "preflight_failed": "a check before trading failed (or the wallet's starting positions were not as expected)",
    "geoblocked": "the exchange says trading is not allowed from this location",
    "heartbeat_failed": "the exchange's order-safety heartbeat failed",
    "journal_failed": "the journal (the session's record on disk) could not be written",
    "internal_error": "a bug: the program hit an error it did not expect",
    "unknown_order": "the exchange reported an order or fill this program did not make",
    "prior_halt": "the previous run ended halted without a clean stop, so this run stays halted",
}
"""One plain line per kill-switch reason (docs/operator.md says what to do about each)."""


def _age(seconds: float) -> str:
    if seconds < 0:
        return f"{seconds:.1f} s (in the future: clocks differ)"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return _dur(seconds)


def _dur(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def _px(v: object) -> str:
    if not isinstance(v, int | float):
        return "-"
    text = f"{v:.4f}".rstrip("0")
    return text + "0" * max(0, 2 - len(text.split(".")[1]))


def _num(v: object, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, int | float) and not isinstance(v, bool) else "-"


def _short(token: object) -> str:
    t = str(token)
    return t if len(t) <= 14 else f"{t[:6]}…{t[-6:]}"


def kill_line(kill: str) -> str:
    if not kill:
        return "not tripped"
    reason = kill.split(":", 1)[0].strip()
    plain = KILL_REASONS.get(reason)
    return f"TRIPPED: {kill}" + (f"  -> {plain}" if plain else "")


def gather(dd: DataDir) -> dict:
    """Everything `pmm status` knows, as one dict: the status file plus whether a supervisor is running."""
    sup = read_json(dd.state) or {}
    status_path = Path(sup["status_file"]) if isinstance(sup.get("status_file"), str) else _status_path(dd)
    running = lock_held(dd)
    sup_pid = read_pid(dd.pid) if running else None
    raw_bytes = None
    problem = ""
    try:
        raw_bytes = status_path.read_bytes()
    except FileNotFoundError:
        problem = "no status.json yet"
    except OSError as exc:
        problem = f"cannot read {status_path}: {exc.strerror}"
    status: dict | None = None
    if raw_bytes is not None:
        try:
            obj = json.loads(raw_bytes)
            status = obj if isinstance(obj, dict) else None
            problem = "" if status is not None else f"{status_path} is not a JSON object"
        except ValueError:
            problem = f"{status_path} is damaged (not JSON)"
    now = time.time_ns()
    written = status.get("written_at_ns") if status else None
    age = (now - written) / SEC if isinstance(written, int) and written else None
    stale = bool(running and status and status.get("state") == "running" and age is not None
                 and age > STALE_AFTER_S)
    return {"running": running, "supervisor_pid": sup_pid if pid_alive(sup_pid) else None,
            "supervisor_state": sup.get("state") if running else None, "restarts": sup.get("restarts", 0),
            "last_exit": sup.get("last_exit", ""), "stale": stale, "age_s": age, "status_file": str(status_path),
            "status": status, "problem": problem, "checked_at_ns": now, "data": str(dd.root),
            **disk_info(dd, sup, status or {})}


def disk_info(dd: DataDir, sup: dict, status: dict) -> dict:
    """The journal folder, its run journals' total size and count, the free space on its disk and the floor: the
    folder and settings the supervisor used, else the folder of the last run's journal, else config.json's."""
    journal_dir = sup.get("journal_dir") if isinstance(sup.get("journal_dir"), str) else None
    if journal_dir is None and isinstance(status.get("journal"), str) and status["journal"]:
        journal_dir = str((dd.root / status["journal"]).parent)  # an absolute journal path stays itself
    storage = sup.get("storage") if isinstance(sup.get("storage"), dict) else None
    if journal_dir is None or storage is None:
        import msgspec

        from pmm.config import AppConfig, ConfigError, load_config

        try:
            cfg = load_config(dd.config if dd.config.exists() else None)
        except ConfigError:
            cfg = AppConfig()  # `pmm status` still shows something; `pmm start` would say what is wrong
        journal_dir = journal_dir or str(retention.journal_root(dd.root, cfg.journal_dir))
        storage = storage or msgspec.to_builtins(cfg.storage)
    root = Path(journal_dir)
    try:
        free: int | None = retention.free_probe()(root)
    except OSError:
        free = None
    try:
        used, runs = retention.usage(root)
    except OSError:
        used, runs = None, None
    return {"journal_dir": str(root), "journal_bytes": used, "journal_runs": runs, "disk_free_bytes": free,
            "storage": storage}


def disk_lines(info: dict) -> list[str]:
    """Free space on the journal's disk, and what the run journals use."""
    st = info.get("storage") or {}
    floor = st.get("min_free_gb") if isinstance(st.get("min_free_gb"), int | float) else None
    free = info.get("disk_free_bytes")
    if free is None:
        disk = "free space unknown"
    elif floor and retention.low_space(free, floor):
        disk = (f"LOW: {retention.fmt_bytes(free)} free, below storage.min_free_gb = {retention.fmt_gb(floor)}: pmm "
                "stops and does not start until there is more (docs/operator.md, disk space)")
    else:
        disk = f"{retention.fmt_bytes(free)} free" + (f" (pmm stops below {retention.fmt_gb(floor)})" if floor else "")
    lines = [f"disk      {disk}"]
    used, runs = info.get("journal_bytes"), info.get("journal_runs")
    if used is not None:
        keep = (f" (keeps the last {st['keep_runs']} runs, at most {retention.fmt_gb(st['max_journal_gb'])})"
                if isinstance(st.get("keep_runs"), int) and isinstance(st.get("max_journal_gb"), int | float) else "")
        lines.append(f"journals  {retention.fmt_bytes(used)} in {retention.n_runs(runs or 0)} in "
                     f"{info.get('journal_dir')}{keep}")
    return lines


def _status_path(dd: DataDir) -> Path:
    cfg = read_json(dd.config) or {}
    name = cfg.get("status_file") if isinstance(cfg.get("status_file"), str) and cfg.get("status_file") else None
    return dd.status_path(name or "status.json")


def render(info: dict) -> str:
    st = info["status"] or {}
    state = st.get("state", "-")
    lines: list[str] = []
    if info["running"]:
        who = f"supervisor pid {info['supervisor_pid']}" if info["supervisor_pid"] else "no supervisor (orphaned session)"
        if isinstance(st.get("pid"), int) and pid_alive(st["pid"]) and state in ("running", "starting", "stopping"):
            who += f", session pid {st['pid']}"
        sstate = info.get("supervisor_state")
        shown = "STOPPING" if sstate == "stopping" else "RUNNING"
        lines.append(f"pmm: {shown} ({who})   data {info['data']}")
        if info["stale"]:
            lines.append(f"STALE: status.json says running but was last written {_age(info['age_s'])} ago: the "
                         "session may be stuck; see logs/session.log")
    else:
        lines.append(f"pmm: NOT RUNNING (no supervisor in {info['data']})")
        if state in ("running", "starting", "stopping") and info["age_s"] is not None:
            if info["age_s"] <= STALE_AFTER_S and isinstance(st.get("pid"), int) and pid_alive(st["pid"]):
                lines.append(f"note: a session started without `pmm start` (pid {st['pid']}) is writing this status")
            else:
                lines.append(f"note: the last status says {state!r} but nothing is running: the session ended "
                             "without a final status (killed, or the computer stopped)")
    if not info["status"]:
        lines.append(info["problem"] or "no status")
        lines += disk_lines(info)
        return "\n".join(lines)
    age = f"written {_age(info['age_s'])} ago" if info["age_s"] is not None else "never written"
    uptime = _dur(st["uptime_s"]) if isinstance(st.get("uptime_s"), int | float) else "-"
    lines.append(f"state     {state}   mode {st.get('mode') or '-'}   run {st.get('run_id') or '-'}   "
                 f"uptime {uptime}   ({age})")
    if st.get("reason"):
        lines.append(f"reason    {st['reason']}")
    frame = st.get("last_frame_age_s")
    lines.append(f"feed      {st.get('feed_state', '-')} (connection #{st.get('feed_conn', 0)}), last frame "
                 f"{_age(frame) + ' old' if isinstance(frame, int | float) else '-'}, {st.get('frames', 0)} frames, "
                 f"{st.get('reconnects', 0)} reconnects, {st.get('parse_errors', 0)} parse errors")
    lines.append(f"trading   {st.get('trading_state', '-')}   kill switch: {kill_line(st.get('kill_switch') or '')}")
    markets = st.get("markets") or []
    if markets:
        lines.append(f"  {'token':<14} {'bid':>7} {'ask':>7} {'mid':>7}  {'book':<7} {'position':>10} {'PnL USD':>10}")
        for m in markets:
            if not isinstance(m, dict):
                continue
            lines.append(f"  {_short(m.get('token_id', '')):<14} {_px(m.get('best_bid')):>7} {_px(m.get('best_ask')):>7} "
                         f"{_px(m.get('mid')):>7}  {'ok' if m.get('book_valid') else 'INVALID':<7} "
                         f"{_num(m.get('position'), '>+10.2f'):>10} {_num(m.get('pnl'), '>+10.4f'):>10}")
    lines.append(f"orders    {st.get('open_orders', 0)} open, {st.get('fills', 0)} fills   position "
                 f"{_num(st.get('position'), '+.2f')} shares   PnL {_num(st.get('pnl'), '+.4f')} USD")
    rejects = st.get("risk_rejects") or {}
    if rejects or st.get("exchange_errors"):
        rj = ", ".join(f"{k} {v}" for k, v in sorted(rejects.items(), key=lambda kv: (-kv[1], kv[0])))
        lines.append(f"refused   risk rejects: {rj or 'none'}   exchange errors {st.get('exchange_errors', 0)}")
    if info["restarts"]:
        lines.append(f"restarts  {info['restarts']} (last: {info['last_exit'] or '-'})")
    tail = st.get("stderr_tail") or []
    if tail and state in ("crashed", "restarting", "killed", "stopped"):
        lines.append("stderr    (the session's last lines; secrets redacted)")
        lines += [f"  | {ln}" for ln in tail[-10:]]
    journal = st.get("journal") or ""
    if journal:
        p = Path(journal)
        lines.append(f"journal   {p if p.is_absolute() else Path(info['data']) / p}")
    lines += disk_lines(info)
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pmm status", description="Show what the session in a data folder is doing (read-only).")
    p.add_argument("--json", action="store_true", help="print status.json as is, plus a pmm_status object")
    p.add_argument("--data", default=".", metavar="DIR", help="data folder (default .)")
    return p


def status_main(argv: list[str]) -> int:
    """`pmm status [--json] [--data DIR]` (argv: what follows `pmm status`)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        dd = data_dir(args.data)
    except ValueError as exc:
        print(f"pmm: status: {exc}", file=sys.stderr)
        return EXIT_USAGE
    info = gather(dd)
    code = EXIT_NOT_RUNNING if not info["running"] else EXIT_STALE if info["stale"] else EXIT_OK
    if args.json:
        out = dict(info["status"] or {"state": "not started" if info["problem"] == "no status.json yet" else "unknown"})
        out["pmm_status"] = {k: info[k] for k in ("running", "stale", "supervisor_pid", "supervisor_state", "restarts",
                                                  "age_s", "status_file", "problem", "checked_at_ns", "data",
                                                  "disk_free_bytes", "journal_dir", "journal_bytes", "journal_runs")}
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    else:
        print(render(info))
    return code


if __name__ == "__main__":
    sys.exit(status_main(sys.argv[1:]))
