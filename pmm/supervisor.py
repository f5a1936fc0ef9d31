"""`pmm start paper|live` and `pmm stop`: run a session as a child process, restart it after a crash, stop it.

The supervisor is small, single-threaded and does no trading: it starts ``python -m pmm.cli paper|live`` (the
same command a person would type) in the data folder and watches it. The session's stdout goes straight to
``logs/session.log`` (so the session never waits on the supervisor, and outlives it if the supervisor is killed);
its stderr comes through a pipe, redacted, into the same file; the supervisor shows that file on the terminal.

- A **clean exit** (code 0: the duration ran out, or the session was stopped) ends the supervisor.
- A **crash** (any other exit) is restarted after a backoff (1 s, 2 s, 4 s ... up to ``backoff_max_s``; back to
  the start after a session that ran ``backoff_reset_s``). After ``max_crashes`` crashes within
  ``crash_window_s`` it gives up: ``status.json`` says state ``crashed`` with the reason and the session's last
  stderr lines (anything shaped like a private key is redacted). Exit code 2 from the session (it refused its
  input) is not retried: nothing would change.
- **Stop** (`pmm stop`, SIGTERM, SIGINT/Ctrl-C, SIGHUP from a closed terminal window): SIGTERM is forwarded to
  the session, which stops the way Ctrl-C stops it (kill switch, every order cancelled, journal flushed,
  ``RunEnded``, exit 0). The session is started with SIGTERM ignored until it installs its own handler, and the
  supervisor repeats the SIGTERM every second until the session is gone, so a stop that arrives while the session
  is still booting is neither lost nor fatal. A second stop request, or ``stop_timeout_s`` without an exit,
  escalates: SIGKILL to the session's process group, state ``killed``, and the supervisor exits.
- **One per data folder**: ``fcntl.flock`` on ``<data>/pmm.lock`` (held by the supervisor and inherited by the
  session, so an orphaned session still holds it); ``<data>/pmm.pid`` names the supervisor.
- **Disk space** (``storage``, pmm/retention.py): before the first start and before each restart it deletes the
  oldest finished run journals beyond ``keep_runs`` / ``max_journal_gb`` (each deletion logged), then refuses to
  start when the journal's disk has less than ``min_free_gb`` free. While the session runs it looks every
  ``check_interval_s`` (pruning again when space is short, and every ``PRUNE_EVERY_S``); below the floor it stops
  the session the way `pmm stop` does (state ``stopped``, reason "disk nearly full ...", exit 1) and does not
  restart it. Test hook: ``PMM_SUPERVISOR_TEST_FREE_FILE`` (retention.py) fakes the free space.

Entry points: ``start_main(argv)`` (argv after ``pmm start``), ``stop_main(argv)`` (after ``pmm stop``).
``python -m pmm.supervisor start|stop|has-command ...`` runs the same without the `pmm` wiring.

Data folder (``--data DIR``, default ``.``): config.json, status.json, journals/, pmm.lock, pmm.pid, logs/
(session.log, supervisor.log, supervisor.json). Relative paths in the config are relative to the data folder.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from pmm import fslock
from pmm.args import EXIT_FAIL, EXIT_USAGE
from pmm.args import Parser as _Parser
from pmm.args import err as _err

from pmm import retention

EXIT_OK = 0
FOREVER_S = 10 * 365 * 24 * 3600.0
"""`pmm start paper` without --duration runs until stopped: the session gets a duration it will never reach."""
LOG_MAX_BYTES = 10 * 1024 * 1024
"""logs/session.log is rotated at a (re)start when bigger than this, and while a session runs when bigger than
SESSION_LOG_MAX_BYTES (copy, then truncate: the session keeps appending to the same file)."""
SESSION_LOG_MAX_BYTES = 100 * 1024 * 1024
LOG_KEEP = 3
TEST_MODE_ENV = "PMM_SUPERVISOR_TEST"
TEST_CHILD_ENV = "PMM_SUPERVISOR_TEST_CHILD"
"""Test hook: with ``PMM_SUPERVISOR_TEST=1``, ``PMM_SUPERVISOR_TEST_CHILD`` (a JSON list) replaces the session
command. Ignored otherwise."""
PRUNE_EVERY_S = 600.0
"""While a session runs, old runs beyond the storage limits are also pruned this often (and when space is short)."""
FREE_SPACE_HINT = ("free some space on that disk (empty the Trash; move old journal folders elsewhere, or lower "
                   "storage.keep_runs / storage.max_journal_gb in config.json), then start again")
LAUNCHD_ENV = "PMM_LAUNCHD"
"""Set by the launchd plist: no echo of the session's output (launchd would log it twice), and exit 0 after a
deliberate end (giving up included), so that launchd's KeepAlive only restarts a supervisor that was itself
killed or crashed."""

_SECRET = [
    re.compile(r"(?<![0-9a-fA-F])(0x)?[0-9a-fA-F]{64}(?![0-9a-fA-F])"),
    re.compile(r"(?i)((?:private[_ -]?key|secret|passphrase|api[_-]?key|password)[\"']?\s*[=:]\s*[\"']?)[^\s\"',}]+"),
]


def redact(line: str) -> str:
    """Hide anything that looks like a secret: a 64-hex-digit private key (with or without 0x), key=value pairs
    named like a secret."""
    line = _SECRET[0].sub(lambda m: (m.group(1) or "") + "<redacted>", line)
    return _SECRET[1].sub(lambda m: m.group(1) + "<redacted>", line)


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text}")
    return v


# ================================================================ the data folder
@dataclass
class DataDir:
    root: Path

    @property
    def lock(self) -> Path:
        return self.root / "pmm.lock"

    @property
    def pid(self) -> Path:
        return self.root / "pmm.pid"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state(self) -> Path:
        return self.root / "logs" / "supervisor.json"

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    def status_path(self, status_file: str = "status.json") -> Path:
        p = Path(status_file)
        return p if p.is_absolute() else self.root / p


def data_dir(text: str) -> DataDir:
    """The ``--data`` folder, which must exist (a typo should not quietly create a second one)."""
    p = Path(text).expanduser()
    if not p.is_dir():
        raise ValueError(f"--data {text}: no such folder" if not p.exists() else f"--data {text}: not a folder")
    return DataDir(p.resolve())


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int | None) -> bool:
    """Whether ``pid`` is a running process (a zombie, exited but not yet reaped by its parent, is not)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
        return stat_line.rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        pass
    if sys.platform != "darwin":
        return False
    try:
        out = subprocess.run(["/bin/ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.stdout.strip().startswith("Z")


def lock_held(dd: DataDir) -> bool:
    """Whether some process holds the data folder's lock (a supervisor, or a session it started)."""
    return fslock.lock_held(dd.lock)


def read_json(path: Path) -> dict | None:
    try:
        obj = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def config_for(dd: DataDir, config_arg: str | None):
    """(AppConfig, path or None): ``--config``, else ``<data>/config.json`` if there, else the safe defaults."""
    from pmm.config import load_config

    if config_arg:
        path = Path(config_arg).expanduser().resolve()
        return load_config(path), path
    if dd.config.exists():
        return load_config(dd.config), dd.config
    return load_config(None), None


def available_commands() -> set[str]:
    """The subcommands `pmm` has in this version (e.g. whether `pmm live` / `pmm preflight` exist yet)."""
    from pmm.cli import build_parser

    p = build_parser()
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def _write_atomic(path: Path, data: bytes) -> None:
    from actors.sink.status import write_atomic

    write_atomic(path, data)


def _status_skeleton(mode: str) -> dict:
    """A status.json with every field of ``actors.sink.status.Status`` (so ``read_status`` accepts it)."""
    from actors.sink.status import Status

    st = Status(mode=mode, version="", run_id="", pid=0, state="starting", started_at_ns=0, written_at_ns=0,
                uptime_s=0.0, feed_state="-", feed_conn=0, last_frame_age_s=None, frames=0, reconnects=0,
                parse_errors=0, trading_state="-", kill_switch="", markets=[], quotes=[], open_orders=0, fills=0,
                position=0.0, pnl=0.0, reward_score=0.0, churn_places_per_min=0, churn_cancels_per_min=0,
                risk_rejects={}, exchange_errors=0, preflight=[], journal="", last_seq=0)
    return msgspec.to_builtins(st)


# ================================================================ log files
class _Log:
    """An append-only log file. ``rotate()`` renames it to name.1 (… name.LOG_KEEP) and starts a new one."""

    def __init__(self, path: Path, *, auto_rotate: bool = True) -> None:
        self.path, self.auto_rotate = path, auto_rotate
        self.f = open(path, "ab", buffering=0)

    def write(self, data: bytes) -> None:
        try:
            self.f.write(data)
            if self.auto_rotate and self.f.tell() > LOG_MAX_BYTES:
                self.rotate()
        except OSError:
            pass  # a full disk must not stop the supervisor; the journal has what matters

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def rotate(self) -> None:
        self.f.close()
        for i in range(LOG_KEEP - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self.f = open(self.path, "ab", buffering=0)

    def copy_truncate(self) -> None:
        """Rotate a file another process is appending to (the session's stdout): copy, then truncate."""
        for i in range(LOG_KEEP - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
        shutil.copyfile(self.path, self.path.with_name(f"{self.path.name}.1"))
        os.truncate(self.path, 0)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.f.close()


class _Echo:
    """Best-effort, never-blocking writes to the terminal: if it cannot take a line now, the line is dropped
    (the log file has it). The session must never wait on a slow or closed terminal."""

    def __init__(self, fd: int, enabled: bool) -> None:
        self.fd, self.enabled = fd, enabled
        self.sel: selectors.BaseSelector | None = None
        if not enabled:
            return
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                return  # a file never makes us wait: plain writes
            self.sel = selectors.DefaultSelector()
            self.sel.register(fd, selectors.EVENT_WRITE)
        except (OSError, ValueError):
            self.enabled = False

    def write(self, data: bytes) -> None:
        if not self.enabled:
            return
        try:
            for i in range(0, len(data), 512):  # PIPE_BUF is 512 on macOS: a write this small never blocks
                if self.sel is not None and not self.sel.select(0):
                    return
                os.write(self.fd, data[i:i + 512])
        except OSError:
            self.enabled = False  # the terminal went away (window closed): carry on without it


# ================================================================ the supervisor
@dataclass
class Child:
    proc: subprocess.Popen
    started: float
    stderr_tail: deque
    log_pos: int = 0
    """How far logs/session.log has been echoed to the terminal."""
    err_buf: bytes = b""


class Supervisor:
    def __init__(self, *, mode: str, dd: DataDir, cfg, config_path: Path | None, duration_s: float | None,
                 lock_fd: int, out_fd: int = 1, err_fd: int = 2,
                 free_probe: Callable[[Path], int] | None = None) -> None:
        self.mode, self.dd, self.cfg, self.config_path = mode, dd, cfg, config_path
        self.sv = cfg.supervisor
        self.storage = cfg.storage
        self.journal_root = retention.journal_root(dd.root, cfg.journal_dir)
        self.free_probe = free_probe or retention.free_probe()
        """Free bytes on the journal's disk (a seam: tests fake a filling disk); raises OSError if unknown."""
        self.disk_stop = ""
        """Why the supervisor itself stopped the session (the disk is nearly full), once it did."""
        self._probe_failed = False
        self._skips_logged: set[Path] = set()
        self.duration_s = duration_s
        self.lock_fd = lock_fd
        self.status_path = dd.status_path(cfg.status_file)
        self.launchd = os.environ.get(LAUNCHD_ENV) == "1"
        self.echo_out = _Echo(out_fd, not self.launchd)
        self.echo_err = _Echo(err_fd, not self.launchd)
        self.stop_requests: list[float] = []
        self.stop_signal = ""
        self.crash_times: list[float] = []
        self.restarts = 0
        self.child: Child | None = None
        self.last_exit: str = ""
        self.started_ns = time.time_ns()
        self.t0 = time.monotonic()
        self.test_cmd = self._test_command()

    # ---------------------------------------------------------- plumbing
    def _test_command(self) -> list[str] | None:
        if os.environ.get(TEST_MODE_ENV) != "1" or not os.environ.get(TEST_CHILD_ENV):
            return None
        cmd = json.loads(os.environ[TEST_CHILD_ENV])
        if not (isinstance(cmd, list) and cmd and all(isinstance(c, str) for c in cmd)):
            raise ValueError(f"{TEST_CHILD_ENV} must be a JSON list of strings")
        return cmd

    def say(self, text: str) -> None:
        """A supervisor message: terminal (stderr) and logs/supervisor.log."""
        text = redact(text)
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} pmm supervisor: {text}\n".encode()
        self.sup_log.write(line)
        self.echo_err.write(f"pmm start: {text}\n".encode())

    def log_only(self, text: str) -> None:
        """A supervisor message for logs/supervisor.log only."""
        self.sup_log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} pmm supervisor: {redact(text)}\n".encode())

    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGCHLD:
            return  # only wakes the loop (set_wakeup_fd)
        now = time.monotonic()
        if self.stop_requests and now - self.stop_requests[-1] < 1.0 and signum == signal.SIGINT:
            return  # a key held down, not a second request
        self.stop_requests.append(now)
        self.stop_signal = self.stop_signal or signal.Signals(signum).name

    def _session_cmd(self, remaining: float) -> list[str]:
        if self.test_cmd is not None:
            return list(self.test_cmd)
        cmd = [sys.executable, "-P", "-m", "pmm.cli", self.mode]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        if self.duration_s is None and self.mode != "paper":
            return cmd  # runs until stopped by default
        return [*cmd, "--duration", f"{remaining:.3f}"]  # `pmm paper` alone would stop after 180 s

    def _write_state(self, state: str) -> None:
        c = self.child
        info = {
            "state": state, "pid": os.getpid(), "mode": self.mode, "data": str(self.dd.root),
            "config": str(self.config_path) if self.config_path else None, "status_file": str(self.status_path),
            "stop_timeout_s": self.sv.stop_timeout_s, "started_at_ns": self.started_ns,
            "child_pid": c.proc.pid if c and c.proc.returncode is None else None,
            "restarts": self.restarts, "crashes_in_window": len(self._recent_crashes()), "last_exit": self.last_exit,
            "journal_dir": str(self.journal_root), "storage": msgspec.to_builtins(self.storage),
            "written_at_ns": time.time_ns(),
        }
        with contextlib.suppress(OSError):
            _write_atomic(self.dd.state, json.dumps(info, indent=2).encode() + b"\n")

    def _write_status(self, state: str, reason: str, *, child_pid: int | None, reuse: bool,
                      tail: list[str] | None = None, exit_code: int | None = None) -> None:
        """status.json from the supervisor: the session's last status (``reuse``: it is this session's) or an
        empty one, with ``state``, ``reason``, the supervisor's figures and the redacted stderr tail."""
        base = read_json(self.status_path) if reuse else None
        if base is None or (child_pid is not None and base.get("pid") != child_pid):
            base = _status_skeleton(self.mode)
        now = time.time_ns()
        base.update(state=state, written_at_ns=now, reason=reason, supervisor_pid=os.getpid(),
                    restarts=self.restarts, crashes=len(self._recent_crashes()))
        if child_pid is not None:
            base["pid"] = child_pid
        if not base.get("started_at_ns"):
            base["started_at_ns"] = now
        if tail is not None:
            base["stderr_tail"] = tail
        if exit_code is not None:
            base["exit_code"] = exit_code
        with contextlib.suppress(OSError):
            _write_atomic(self.status_path, json.dumps(base, indent=2).encode() + b"\n")

    def _recent_crashes(self) -> list[float]:
        now = time.monotonic()
        return [t for t in self.crash_times if now - t <= self.sv.crash_window_s]

    # ---------------------------------------------------------- the loop
    def run(self) -> int:
        self.dd.logs.mkdir(exist_ok=True)
        self.sup_log = _Log(self.dd.logs / "supervisor.log")
        self.session_log = _Log(self.dd.logs / "session.log", auto_rotate=False)
        rfd, wfd = os.pipe()
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)
        self.wake_r = rfd
        old_wakeup = signal.set_wakeup_fd(wfd)
        old = {s: signal.signal(s, self._on_signal)
               for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)}
        try:
            _write_atomic(self.dd.pid, f"{os.getpid()}\n".encode())
            return self._loop()
        except BaseException as exc:
            # a bug in the supervisor itself: never leave a session trading without it
            self.say(f"supervisor error ({type(exc).__name__}: {exc}): stopping the session")
            self._emergency_stop()
            raise
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            signal.set_wakeup_fd(old_wakeup)
            os.close(rfd)
            os.close(wfd)
            if read_pid(self.dd.pid) == os.getpid():
                with contextlib.suppress(OSError):
                    self.dd.pid.unlink()
            self._write_state("exited")
            self.sup_log.close()
            self.session_log.close()

    def _loop(self) -> int:
        problem = self._disk_problem(prune=True)
        if problem:
            reason = f"not started: {problem}; {FREE_SPACE_HINT}"
            self.log_only(reason)
            _err(f"start: {reason}")
            self._write_status("stopped", reason, child_pid=None, reuse=False)
            return EXIT_FAIL
        cfg_name = str(self.config_path) if self.config_path else "built-in defaults (no config.json)"
        self.say(f"supervisor pid {os.getpid()}: {self.mode} session, data {self.dd.root}, config {cfg_name}")
        if self.test_cmd is not None:
            self.say(f"TEST MODE: the session command is replaced by {self.test_cmd}")
        backoff = self.sv.backoff_initial_s
        while True:
            if self.stop_requests:
                when = "while waiting to restart the session" if self.crash_times else "before the session started"
                self._write_status("stopped", f"stopped by the operator ({self.stop_signal}) {when}",
                                   child_pid=self.child.proc.pid if self.child else None, reuse=True)
                self.say("stopped")
                return EXIT_OK
            remaining = FOREVER_S if self.duration_s is None else self.duration_s - (time.monotonic() - self.t0)
            if remaining <= 1.0 and self.child is not None:  # only after a crash: a clean end returned already
                reason = f"the requested duration ran out before the restart; last: {self.last_exit}"
                self._write_status("crashed", reason, child_pid=self.child.proc.pid if self.child else None,
                                   reuse=True)
                self.say(reason)
                return EXIT_FAIL
            if self.child is not None and (problem := self._disk_problem(prune=True)):
                reason = f"not restarting the session (it {self.last_exit}): {problem}; {FREE_SPACE_HINT}"
                self._write_status("stopped", reason, child_pid=self.child.proc.pid, reuse=True)
                self.say(reason)
                return EXIT_FAIL
            code, ran = self._run_child(remaining)
            if self.stop_requests or self.disk_stop:
                return self._after_stop(code)
            if code == 0:
                self.say("the session ended cleanly")
                return EXIT_OK
            # a crash
            tail = list(self.child.stderr_tail) if self.child else []
            last = next((ln for ln in reversed(tail) if ln.strip()), "")
            how = f"was killed by signal {_signame(-code)}" if code < 0 else f"exited with code {code}"
            self.last_exit = f"{how}" + (f": {last}" if last else "")
            self.crash_times.append(time.monotonic())
            recent = self._recent_crashes()
            halt = self._halted_by(self.child.proc.pid)
            if halt:
                reason = (f"the session ended halted by the kill switch ({halt}) and {how}; not restarting: a "
                          "restart must never clear a kill switch. Fix the cause, then start again")
                self._write_status("stopped", reason, child_pid=self.child.proc.pid, reuse=True, tail=tail,
                                   exit_code=code)
                self.say(reason)
                return EXIT_FAIL
            if code == EXIT_USAGE:
                reason = f"the session refused its input ({self.last_exit}); not restarting: fix it and start again"
                self._write_status("crashed", reason, child_pid=self.child.proc.pid, reuse=True, tail=tail,
                                   exit_code=code)
                self.say(reason)
                return EXIT_USAGE
            if len(recent) >= self.sv.max_crashes:
                reason = (f"gave up: the session crashed {len(recent)} times within "
                          f"{_dur(self.sv.crash_window_s)}; last: {self.last_exit}")
                self._write_status("crashed", reason, child_pid=self.child.proc.pid, reuse=True, tail=tail,
                                   exit_code=code)
                self.say(reason)
                return EXIT_FAIL
            if ran >= self.sv.backoff_reset_s:
                backoff = self.sv.backoff_initial_s
            delay = backoff
            backoff = min(backoff * 2, self.sv.backoff_max_s)
            reason = (f"the session {self.last_exit}; restarting in {_dur(delay)} (crash {len(recent)} of "
                      f"{self.sv.max_crashes} allowed in {_dur(self.sv.crash_window_s)})")
            self._write_status("restarting", reason, child_pid=self.child.proc.pid, reuse=True, tail=tail,
                               exit_code=code)
            self._write_state("restarting")
            self.say(reason)
            self._sleep(delay)
            if not self.stop_requests:
                self.restarts += 1

    def _halted_by(self, child_pid: int) -> str:
        """The kill-switch reason in the session's final status, if it ended halted (the operator's stop aside).

        A session that ends cleanly writes ``RunEnded``, and the next run then starts un-halted: restarting it
        would clear the halt. (One that dies without ``RunEnded`` is restarted halted, ``prior_halt``.)
        """
        st = read_json(self.status_path) or {}
        if st.get("pid") != child_pid or st.get("state") != "stopped":
            return ""
        kill = str(st.get("kill_switch") or "")
        return "" if not kill or kill.startswith("operator_stop") else kill

    # ---------------------------------------------------------- disk space
    def _prune(self) -> tuple[int, int]:
        """Delete old runs beyond the storage limits (logged); (bytes, runs) of the journals left."""
        st = self.storage
        try:
            pl = retention.plan(self.journal_root, keep_runs=st.keep_runs, max_journal_gb=st.max_journal_gb)
        except OSError as exc:
            self.say(f"cannot look at the journals in {self.journal_root} ({exc}); nothing pruned")
            return 0, 0
        for s in pl.skipped:
            if s.path not in self._skips_logged:  # once per supervisor: this runs every few minutes
                self._skips_logged.add(s.path)
                self.log_only(f"journals: left {s.path.name} alone (never pruned): {s.why}")
        if pl.delete:
            retention.apply(pl, self.say)
        left = [r for r in pl.runs if r.path.exists()]
        return sum(r.bytes for r in left), len(left)

    def _disk_problem(self, *, prune: bool) -> str:
        """"" when the journal's disk has enough free space (or it cannot be measured, or the check is off), else
        why a session must not run. ``prune``: prune first; otherwise pruned only when space is short."""
        st = self.storage
        used = self._prune() if prune else None
        if st.min_free_gb <= 0:
            return ""
        try:
            free = self.free_probe(self.journal_root)
            if retention.low_space(free, st.min_free_gb) and used is None:
                used = self._prune()
                free = self.free_probe(self.journal_root)
        except OSError as exc:
            if not self._probe_failed:
                self._probe_failed = True
                self.say(f"cannot measure the free space on the disk of {self.journal_root} ({exc}); carrying on "
                         "without the free-space check")
            return ""
        self._probe_failed = False
        if not retention.low_space(free, st.min_free_gb):
            return ""
        size, runs = used if used is not None else retention.usage(self.journal_root)
        return (f"disk nearly full: {retention.fmt_bytes(free)} free on the disk of {self.journal_root}, below "
                f"storage.min_free_gb = {retention.fmt_gb(st.min_free_gb)} (the journals there use "
                f"{retention.fmt_bytes(size)} in {retention.n_runs(runs)} after pruning)")

    def _emergency_stop(self) -> None:
        c = self.child
        if c is None or c.proc.poll() is not None:
            return
        end = time.monotonic() + self.sv.stop_timeout_s
        while c.proc.poll() is None and time.monotonic() < end:
            with contextlib.suppress(ProcessLookupError):
                os.kill(c.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                c.proc.wait(timeout=1.0)
        if c.proc.poll() is None:
            self._kill(c)

    def _after_stop(self, code: int | None) -> int:
        child_pid = self.child.proc.pid if self.child else None
        disk = f" ({self.disk_stop})" if self.disk_stop else ""
        if code is None:  # killed after the timeout or a second request
            reason = (f"killed: the session did not stop within {_dur(self.sv.stop_timeout_s)} of the stop "
                      f"request{disk}" if len(self.stop_requests) < 2 else "killed: a second stop request forced it")
            reason += ("; its journal may not end with RunEnded and orders may still be open at the exchange "
                       "(live: check there)")
            self._write_status("killed", reason, child_pid=child_pid, reuse=True,
                               tail=list(self.child.stderr_tail) if self.child else None)
            self.say(reason)
            return EXIT_FAIL
        if code == 0 and self.disk_stop:
            reason = (f"{self.disk_stop}: the session was stopped cleanly and is not restarted; "
                      f"{FREE_SPACE_HINT}")
            self._write_status("stopped", reason, child_pid=child_pid, reuse=True)
            self.say(reason)
            return EXIT_FAIL
        if code == 0:
            self._write_status("stopped", f"stopped by the operator ({self.stop_signal})", child_pid=child_pid,
                               reuse=True)
            self.say("stopped cleanly")
            return EXIT_OK
        tail = list(self.child.stderr_tail) if self.child else []
        reason = f"the session exited with code {code} while stopping{disk}"
        self._write_status("stopped", reason, child_pid=child_pid, reuse=True, tail=tail, exit_code=code)
        self.say(reason)
        return EXIT_FAIL

    def _sleep(self, seconds: float) -> None:
        """Wait, unless a stop request comes first."""
        end = time.monotonic() + seconds
        sel = selectors.DefaultSelector()
        sel.register(self.wake_r, selectors.EVENT_READ)
        try:
            while not self.stop_requests and (left := end - time.monotonic()) > 0:
                if sel.select(left):
                    self._drain_wakeup()
        finally:
            sel.close()

    def _drain_wakeup(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self.wake_r, 512):
                pass

    def _spawn(self, remaining: float) -> Child:
        cmd = self._session_cmd(remaining)
        env = dict(os.environ, PYTHONUNBUFFERED="1")

        def ignore_sigterm() -> None:  # runs in the child between fork and exec
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_DFL)

        if self.session_log.size() > LOG_MAX_BYTES:
            with contextlib.suppress(OSError):
                self.session_log.rotate()
        log_pos = self.session_log.size()
        # stdout goes straight to the log file, not through us: the session never waits on the supervisor, and
        # if the supervisor dies the session carries on (`pmm stop` still stops it). stderr comes through a pipe
        # so that it is redacted before it reaches the log, the terminal or status.json.
        out = os.open(self.session_log.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            proc = subprocess.Popen(
                cmd, cwd=self.dd.root, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE,
                start_new_session=True, pass_fds=(self.lock_fd,), preexec_fn=ignore_sigterm,
            )
        finally:
            os.close(out)
        assert proc.stderr is not None
        os.set_blocking(proc.stderr.fileno(), False)
        self.child = Child(proc=proc, started=time.monotonic(), stderr_tail=deque(maxlen=self.sv.stderr_tail_lines),
                           log_pos=log_pos)
        return self.child

    def _run_child(self, remaining: float) -> tuple[int | None, float]:
        """Run one session to its end. Returns (exit code or None if it had to be killed, seconds it ran)."""
        c = self._spawn(remaining)
        self.say(f"session started (pid {c.proc.pid})" + (f", restart {self.restarts}" if self.restarts else ""))
        self._write_status("starting", "session starting", child_pid=c.proc.pid, reuse=False)
        self._write_state("running")
        sel = selectors.DefaultSelector()
        sel.register(c.proc.stderr, selectors.EVENT_READ, "err")  # type: ignore[arg-type]
        sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        handled = 0  # stop requests acted on
        deadline = resend_at = 0.0
        killed = False
        next_size_check = time.monotonic() + 60
        next_disk_check = time.monotonic() + self.storage.check_interval_s
        next_prune = time.monotonic() + PRUNE_EVERY_S
        try:
            while True:
                now = time.monotonic()
                if now >= next_disk_check and not self.stop_requests and not self.disk_stop:
                    next_disk_check = now + self.storage.check_interval_s
                    prune = now >= next_prune
                    if prune:
                        next_prune = now + PRUNE_EVERY_S
                    problem = self._disk_problem(prune=prune)
                    if problem and c.proc.poll() is None:
                        self.disk_stop = problem
                        deadline = now + self.sv.stop_timeout_s
                        resend_at = now
                        self.say(f"stopping the session: {problem}: it cancels its orders and closes its journal")
                        self._write_status("stopping", problem, child_pid=c.proc.pid, reuse=True)
                        self._write_state("stopping")
                if len(self.stop_requests) > handled:
                    handled = len(self.stop_requests)
                    if handled == 1:
                        deadline = now + self.sv.stop_timeout_s
                        resend_at = now
                        self.say(f"stopping ({self.stop_signal}): the session cancels its orders and closes its "
                                 "journal; a second stop forces it")
                        self._write_status("stopping", f"stop requested ({self.stop_signal})", child_pid=c.proc.pid,
                                           reuse=True)
                        self._write_state("stopping")
                    elif not killed:
                        self._kill(c)
                        killed = True
                if (self.stop_requests or self.disk_stop) and not killed and c.proc.poll() is None:
                    if now >= deadline:
                        self._kill(c)
                        killed = True
                    elif now >= resend_at:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(c.proc.pid, signal.SIGTERM)
                        resend_at = now + 1.0
                if c.proc.poll() is not None:
                    break
                for key, _ in sel.select(0.2):
                    if key.data == "wake":
                        self._drain_wakeup()
                    else:
                        self._read_stderr(c)
                self._echo_log(c)
                if now >= next_size_check:
                    next_size_check = now + 60
                    if self.session_log.size() > SESSION_LOG_MAX_BYTES:
                        self._echo_log(c)
                        with contextlib.suppress(OSError):
                            self.session_log.copy_truncate()
                        c.log_pos = 0
            # the session is gone: take what is left in the pipe (bounded: its own children do not hold it)
            end = time.monotonic() + 2.0
            while time.monotonic() < end:
                ready = [k for k, _ in sel.select(0.1) if k.data == "err"]
                if ready and not self._read_stderr(c):
                    break
                self._drain_wakeup()
            if c.err_buf:
                self._emit_stderr(c, c.err_buf + b"\n")
                c.err_buf = b""
            self._echo_log(c, final=True)
        finally:
            sel.close()
            with contextlib.suppress(OSError):
                c.proc.stderr.close()  # type: ignore[union-attr]
        # anything left in its process group (e.g. a sandbox exchange it started) goes with it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(c.proc.pid, signal.SIGKILL)
        ran = time.monotonic() - c.started
        code = c.proc.returncode
        self.say(f"session pid {c.proc.pid} " + (f"exited with code {code}" if code >= 0 else
                                                   f"was ended by signal {_signame(-code)}") + f" after {_dur(ran)}")
        return (None if killed else code), ran

    def _kill(self, c: Child) -> None:
        self.say(f"killing the session (pid {c.proc.pid}) and its process group")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(c.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            c.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            c.proc.wait(timeout=10)

    def _read_stderr(self, c: Child) -> bool:
        """Take what the session wrote on stderr; False at end of file."""
        try:
            data = os.read(c.proc.stderr.fileno(), 65536)  # type: ignore[union-attr]
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        data = c.err_buf + data
        *lines, rest = data.split(b"\n")
        if len(rest) > 65536:  # a very long line without a newline: pass it on anyway
            lines.append(rest)
            rest = b""
        c.err_buf = rest
        if lines:
            self._emit_stderr(c, b"\n".join(lines) + b"\n")
        return True

    def _emit_stderr(self, c: Child, chunk: bytes) -> None:
        """Redacted, into logs/session.log (so the terminal gets it in order with stdout) and the tail."""
        text = chunk.decode("utf-8", "replace")
        clean = [redact(ln) for ln in text.splitlines()]
        for ln in clean:
            c.stderr_tail.append(ln[:500])
        self.session_log.write("".join(ln + "\n" for ln in clean).encode())

    def _echo_log(self, c: Child, final: bool = False) -> None:
        """Pass what was appended to logs/session.log on to the terminal, whole lines only (all at the end)."""
        if not self.echo_out.enabled:
            return
        try:
            with open(self.session_log.path, "rb") as f:
                f.seek(c.log_pos)
                data = f.read(1 << 20)
        except OSError:
            return
        if not data:
            return
        if not final:
            cut = data.rfind(b"\n") + 1
            data = data[:cut]
        c.log_pos += len(data)
        if data:
            self.echo_out.write(data)


def _signame(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return str(n)


def _dur(s: float) -> str:
    if s < 1:
        return f"{s:.2f} s"
    if s < 120:
        return f"{s:g} s" if float(s).is_integer() else f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:g} min" if (s / 60).is_integer() else f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


# ================================================================ start
def _acquire_lock(dd: DataDir, wait_s: float = 1.0) -> int | None:
    """The data folder's lock, or None if someone holds it (retried briefly: `pmm status` may be peeking)."""
    fd = os.open(dd.lock, os.O_RDWR | os.O_CREAT, 0o644)
    end = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= end:
                os.close(fd)
                return None
            time.sleep(0.05)


def who_holds(dd: DataDir) -> str:
    """A description of whatever holds the data folder (for "already running" messages)."""
    pid = read_pid(dd.pid)
    if pid_alive(pid):
        return f"pid {pid}"
    st = read_json(dd.state) or {}
    child = st.get("child_pid")
    if isinstance(child, int) and pid_alive(child):
        return f"a session, pid {child}, whose supervisor is gone"
    return "a process that holds pmm.lock"


def build_start_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pmm start", description="Run a session under a supervisor that restarts it after a crash.")
    p.add_argument("mode", choices=["paper", "live"], help="paper: simulated, no real orders; live: real orders")
    p.add_argument("--config", metavar="FILE", help="config file (default: DIR/config.json, else safe defaults)")
    p.add_argument("--duration", type=_positive_float, metavar="SECONDS",
                   help="stop after this long in total, restarts included (default: run until stopped)")
    p.add_argument("--data", default=".", metavar="DIR",
                   help="data folder: config.json, status.json, journals/, logs/, pmm.lock, pmm.pid (default .)")
    return p


def start_main(argv: list[str]) -> int:
    """`pmm start paper|live [--config FILE] [--duration S] [--data DIR]` (argv: what follows `pmm start`).

    Exit 0: the session ended cleanly (stopped, or its duration ran out); 1: it gave up after crashes, was
    killed, or another pmm runs in the data folder; 2: unusable input. Under launchd (``PMM_LAUNCHD=1``) every
    such deliberate end exits 0, so that KeepAlive restarts only a supervisor that was itself killed or crashed.
    """
    code = _start(argv)
    if code != EXIT_OK and os.environ.get(LAUNCHD_ENV) == "1":
        print(f"pmm start: exit 0 instead of {code}: under launchd, a deliberate end is not restarted",
              file=sys.stderr, flush=True)
        return EXIT_OK
    return code


def _start(argv: list[str]) -> int:
    from pmm.config import ConfigError
    from pmm.configcmd import semantic_problems

    try:
        args = build_start_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        dd = data_dir(args.data)
    except ValueError as exc:
        _err(f"start: {exc}")
        return EXIT_USAGE
    if args.mode == "live" and "live" not in available_commands():
        _err("start live: live trading is not available in this version of pmm (there is no `pmm live` yet); "
             "nothing was started")
        return EXIT_USAGE
    try:
        cfg, cfg_path = config_for(dd, args.config)
    except ConfigError as exc:
        for p in exc.problems:
            _err(p)
        return EXIT_USAGE
    errors, warnings = semantic_problems(cfg)
    where = str(cfg_path) if cfg_path else "config"
    for e in errors:
        _err(f"{where}: {e}")
    if errors:
        return EXIT_USAGE
    if args.mode == "live":
        if cfg_path is None:
            _err(f"start live: no config.json in {dd.root} (and no --config): live trading needs one "
                 "(`pmm config init`)")
            return EXIT_USAGE
        if cfg.mode != "live":
            _err(f'start live: {cfg_path} says "mode": "{cfg.mode}"; set "mode": "live" there to trade live '
                 "(a deliberate second switch)")
            return EXIT_USAGE
    for w in warnings:
        print(f"pmm start: warning: {w}", file=sys.stderr)
    if cfg_path is None:
        print(f"pmm start: no config.json in {dd.root}: using the safe defaults (paper, built-in sandbox "
              "exchange, small caps); `pmm config init` writes one", file=sys.stderr)
    try:
        lock_fd = _acquire_lock(dd)
    except OSError as exc:
        _err(f"start: cannot create {dd.lock}: {exc.strerror}")
        return EXIT_USAGE
    if lock_fd is None:
        _err(f"start: pmm is already running in {dd.root} ({who_holds(dd)}); stop it first with "
             f"`pmm stop --data {_q(str(dd.root))}`, or see it with `pmm status`")
        return EXIT_FAIL
    try:
        sup = Supervisor(mode=args.mode, dd=dd, cfg=cfg, config_path=cfg_path, duration_s=args.duration,
                         lock_fd=lock_fd)
        return sup.run()
    except ValueError as exc:  # a bad test hook
        _err(f"start: {exc}")
        return EXIT_USAGE
    finally:
        os.close(lock_fd)


def _q(s: str) -> str:
    return f'"{s}"' if re.search(r"\s", s) else s


# ================================================================ stop
def build_stop_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pmm stop", description="Stop the session started by `pmm start` in a data folder, cleanly.")
    p.add_argument("--data", default=".", metavar="DIR", help="data folder (default .)")
    p.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                   help="how long to wait for a clean stop before forcing it (default: config stop_timeout_s, 30)")
    return p


def _wait_gone(dd: DataDir, pids: list[int], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not any(pid_alive(p) for p in pids) and not lock_held(dd):
            return True
        time.sleep(0.1)
    return not any(pid_alive(p) for p in pids) and not lock_held(dd)


def stop_main(argv: list[str]) -> int:
    """`pmm stop [--data DIR] [--timeout S]` (argv: what follows `pmm stop`).

    Exit 0: stopped cleanly (or nothing was running); 1: it had to be killed; 2: unusable input.
    """
    try:
        args = build_stop_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        dd = data_dir(args.data)
    except ValueError as exc:
        _err(f"stop: {exc}")
        return EXIT_USAGE
    if not lock_held(dd):
        print(f"pmm is not running in {dd.root}: nothing to stop")
        return EXIT_OK
    state = read_json(dd.state) or {}
    timeout = args.timeout or float(state.get("stop_timeout_s") or 30.0)
    sup = read_pid(dd.pid)
    child = state.get("child_pid") if isinstance(state.get("child_pid"), int) else None
    if pid_alive(sup):
        assert sup is not None
        print(f"stopping pmm (supervisor pid {sup}): cancelling orders and closing the journal "
              f"(up to {_dur(timeout)})...", flush=True)
        with contextlib.suppress(ProcessLookupError):
            os.kill(sup, signal.SIGTERM)
        if not _wait_gone(dd, [sup], timeout + 5):
            print("not stopped yet: forcing it (the session is killed)", flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.kill(sup, signal.SIGTERM)  # a second request: the supervisor kills the session and exits
            if not _wait_gone(dd, [sup], 15):
                for pid in (child, sup):
                    if pid and pid_alive(pid):
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.killpg(pid, signal.SIGKILL) if pid == child else os.kill(pid, signal.SIGKILL)
                _wait_gone(dd, [p for p in (sup, child) if p], 5)
                _err(f"stop: the supervisor (pid {sup}) did not answer and was killed")
                return EXIT_FAIL
    elif child and pid_alive(child):
        # an orphaned session (its supervisor was killed): it stops on SIGTERM itself
        print(f"stopping a session without its supervisor (pid {child})...", flush=True)
        end = time.monotonic() + timeout
        while pid_alive(child) and time.monotonic() < end:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)
            _wait_gone(dd, [child], 1.0)
        if pid_alive(child):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child, signal.SIGKILL)
            _err(f"stop: the session (pid {child}) did not stop within {_dur(timeout)} and was killed")
            return EXIT_FAIL
    else:
        _err(f"stop: {dd.lock} is held, but by no pmm process this stop knows of; nothing was signalled")
        return EXIT_FAIL
    if not pid_alive(read_pid(dd.pid)):
        with contextlib.suppress(OSError):
            dd.pid.unlink()  # left behind by a supervisor that was killed
    return _report_stopped(dd)


def _report_stopped(dd: DataDir) -> int:
    st = read_json(dd.state) or {}
    status_path = Path(st["status_file"]) if isinstance(st.get("status_file"), str) else dd.status_path()
    status = read_json(status_path) or {}
    state = status.get("state", "?")
    journal = status.get("journal") or ""
    if journal and not Path(journal).is_absolute():
        journal = str(dd.root / journal)
    print(f"stopped: state {state}" + (f" ({status['reason']})" if status.get("reason") else ""))
    if status.get("kill_switch"):
        print(f"kill switch: {status['kill_switch']}")
    if journal:
        print(f"journal: {journal}")
    return EXIT_FAIL if state == "killed" else EXIT_OK


# ================================================================ module entry point
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["start"]:
        return start_main(argv[1:])
    if argv[:1] == ["stop"]:
        return stop_main(argv[1:])
    if argv[:1] == ["has-command"] and len(argv) == 2:
        return 0 if argv[1] in available_commands() else 1
    _err("usage: python -m pmm.supervisor start|stop ... | has-command NAME")
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
