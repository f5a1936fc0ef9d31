"""Disk space: which old run journals go (retention), how much the journals use, how much space is free.

A session journals a few hundred records a second (hundreds of MB to over a GB an hour in a busy market) and every
`pmm start` makes a new run folder under the journal folder. Without this, a machine left running for weeks fills
its disk. Three users:

- the supervisor (`pmm start`), which holds the data folder's ``pmm.lock``: it prunes before it starts a session
  and before each restart, and while a session runs, refuses to start or stops the session cleanly when the free
  space is below ``storage.min_free_gb`` (pmm/supervisor.py);
- `pmm prune [--dry-run] [--data DIR] [--config FILE]` (``prune_main``): the same pruning by hand; it takes
  ``pmm.lock`` itself and deletes nothing while pmm runs in the folder;
- `pmm status`, which shows the free space and the journals' total size (``usage``).

What may be deleted (``scan`` / ``plan``), all of it checked again just before each deletion (``apply``):

- only a folder directly inside the journal folder, not a symbolic link, named like a run id
  (``20261125-160238-paper-29960``), holding at least one journal segment (``seg-<20 digits>.pmj`` that begins
  with the journal's magic bytes) and nothing else but ``LOCK``, segment temp files (``seg-….pmj.tmp``, left by a
  crash) and ``.DS_Store``. Anything else (a builder's folder, a run folder someone put a file in, a link) is
  skipped, reported and never counted;
- never a run whose journal ``LOCK`` is held (a session is writing it), never the newest run (the next session
  reads it to carry a kill-switch halt over a crash: ``prior_halt``);
- oldest first (by run id: the UTC time the run started), while there are more than ``storage.keep_runs`` runs
  or they use more than ``storage.max_journal_gb`` together.

Nothing else in pmm deletes a journal (`pmm replay`, `report`, `observe` only read).

Test hook: with ``PMM_SUPERVISOR_TEST=1``, ``PMM_SUPERVISOR_TEST_FREE_FILE`` names a file holding a number of
bytes that ``free_probe()`` reports as the free space (re-read at each probe), so that tests can fill a disk
without filling one.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import shutil
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pmm.fslock import lock_held

GB = 1_000_000_000
"""Sizes are in decimal GB (10^9 bytes), as macOS's Finder shows them."""
RUN_ID = re.compile(r"\d{8}-\d{6}-(paper|live|shadow)-\d+")
"""``actors.session.new_run_id``: UTC start time, mode, pid."""
SEGMENT = re.compile(r"seg-\d{20}\.pmj")
SEGMENT_TMP = re.compile(r"seg-\d{20}\.pmj\.tmp")
MAGIC = b"\x89PMJ\r\n\x1a\n"
"""The first bytes of every journal segment (docs/journal-format.md)."""
LOCK_NAME = "LOCK"
IGNORED = {".DS_Store"}
"""Files macOS's Finder may put in any folder it showed; the journal ignores them too."""
TEST_MODE_ENV = "PMM_SUPERVISOR_TEST"
TEST_FREE_ENV = "PMM_SUPERVISOR_TEST_FREE_FILE"


def fmt_bytes(n: int | float) -> str:
    if n >= GB:
        return f"{n / GB:.1f} GB"
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} MB"
    if n >= 1_000:
        return f"{n / 1_000:.0f} KB"
    return f"{int(n)} bytes"


def fmt_gb(v: float) -> str:
    return f"{v:g} GB"


def n_runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


# ================================================================ free space
def free_bytes(path: Path) -> int:
    """Free space (for an unprivileged user) on the filesystem of ``path``, or of its nearest existing parent."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def free_probe() -> Callable[[Path], int]:
    """``free_bytes``, or the test hook's number (see the module docstring). Raises OSError when it cannot tell."""
    if os.environ.get(TEST_MODE_ENV) == "1" and os.environ.get(TEST_FREE_ENV):
        hook = Path(os.environ[TEST_FREE_ENV])

        def fake(_path: Path) -> int:
            try:
                return int(float(hook.read_text().strip()))
            except ValueError as exc:
                raise OSError(f"{TEST_FREE_ENV}: {hook}: not a number") from exc

        return fake
    return free_bytes


def low_space(free: int, min_free_gb: float) -> bool:
    return min_free_gb > 0 and free < min_free_gb * GB


# ================================================================ what is there
@dataclass(frozen=True)
class Run:
    path: Path
    bytes: int
    in_use: bool
    """Its journal LOCK is held: a session is writing it."""

    @property
    def run_id(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Skipped:
    path: Path
    why: str


@dataclass(frozen=True)
class Deletion:
    run: Run
    reason: str


@dataclass
class Plan:
    root: Path
    keep_runs: int
    max_journal_gb: float
    runs: list[Run] = field(default_factory=list)
    """Every pmm run folder found, oldest first."""
    skipped: list[Skipped] = field(default_factory=list)
    delete: list[Deletion] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(r.bytes for r in self.runs)

    @property
    def kept(self) -> list[Run]:
        gone = {d.run.path for d in self.delete}
        return [r for r in self.runs if r.path not in gone]


def journal_root(data_root: Path, journal_dir: str) -> Path:
    """The journal folder as the session sees it (it runs in the data folder; like it, no ``~`` expansion)."""
    p = Path(journal_dir)
    return p if p.is_absolute() else Path(data_root) / p


def check_run_dir(path: Path) -> tuple[int, str]:
    """(size in bytes, "") if ``path`` is a pmm run folder this module may delete, else (0, why not)."""
    if not RUN_ID.fullmatch(path.name):
        return 0, "not named like a pmm run (YYYYMMDD-HHMMSS-mode-pid)"
    try:
        st = os.lstat(path)
    except OSError as exc:
        return 0, f"cannot look at it: {exc.strerror}"
    if stat.S_ISLNK(st.st_mode):
        return 0, "a symbolic link, not a folder"
    if not stat.S_ISDIR(st.st_mode):
        return 0, "not a folder"
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        return 0, f"cannot list it: {exc.strerror}"
    total, segments = 0, 0
    for name in names:
        p = path / name
        try:
            est = os.lstat(p)
        except FileNotFoundError:
            continue
        except OSError as exc:
            return 0, f"cannot look at {name}: {exc.strerror}"
        if not stat.S_ISREG(est.st_mode):
            return 0, f"holds {name!r}, which is not a plain file"
        if SEGMENT.fullmatch(name):
            if not _starts_with_magic(p):
                return 0, f"{name} does not begin like a journal segment"
            segments += 1
        elif not (name == LOCK_NAME or name in IGNORED or SEGMENT_TMP.fullmatch(name)):
            return 0, f"holds {name!r}, which is not part of a journal"
        total += est.st_size
    if not segments:
        return 0, "holds no journal segment (seg-*.pmj)"
    return total, ""


def _starts_with_magic(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        return os.read(fd, len(MAGIC)) == MAGIC
    except OSError:
        return False
    finally:
        os.close(fd)


def journal_in_use(path: Path) -> bool:
    """Whether a journal writer holds ``path/LOCK`` (the journal takes ``flock(LOCK_EX)`` on it while it writes)."""
    return lock_held(path / LOCK_NAME, follow_links=False)


def scan(root: Path) -> tuple[list[Run], list[Skipped]]:
    """The pmm run folders in ``root`` (oldest first) and what else is there (never touched)."""
    runs: list[Run] = []
    skipped: list[Skipped] = []
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return runs, skipped
    for name in names:
        p = root / name
        if name in IGNORED:
            continue
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(p).st_mode):
                continue  # a file beside the runs (notes, a zip): not ours, not a run, nothing to say
        size, why = check_run_dir(p)
        if why:
            skipped.append(Skipped(p, why))
        else:
            runs.append(Run(p, size, journal_in_use(p)))
    return runs, skipped


def usage(root: Path) -> tuple[int, int]:
    """(bytes, number of runs) of the pmm run folders in ``root``."""
    runs, _ = scan(root)
    return sum(r.bytes for r in runs), len(runs)


def plan(root: Path, *, keep_runs: int, max_journal_gb: float) -> Plan:
    """What pruning ``root`` would delete, oldest first, and why; nothing is changed."""
    runs, skipped = scan(root)
    pl = Plan(root=root, keep_runs=keep_runs, max_journal_gb=max_journal_gb, runs=runs, skipped=skipped)
    count, total = len(runs), pl.total_bytes
    limit = max_journal_gb * GB
    for r in runs[:-1]:  # never the newest
        if count <= keep_runs and total <= limit:
            break
        if r.in_use:
            continue
        if count > keep_runs:
            reason = f"more than storage.keep_runs = {keep_runs} runs ({count})"
        else:
            reason = (f"the journals use {fmt_bytes(total)}, more than storage.max_journal_gb = "
                      f"{fmt_gb(max_journal_gb)}")
        pl.delete.append(Deletion(r, reason))
        count -= 1
        total -= r.bytes
    return pl


# ================================================================ deleting
def delete_run(path: Path) -> str:
    """Delete one run folder after checking it again: "" when done, else why it was left (maybe partly deleted)."""
    _size, why = check_run_dir(path)
    if why:
        return why
    try:
        lock = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        return f"cannot open its LOCK: {exc.strerror}"
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while deleting: no writer can start on it
        except OSError:
            return "its journal is in use (a session holds its LOCK)"
        for name in sorted(os.listdir(path)):
            if name == LOCK_NAME:
                continue
            if not (SEGMENT.fullmatch(name) or SEGMENT_TMP.fullmatch(name) or name in IGNORED):
                return f"{name!r} appeared in it while deleting: left there"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path / name)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path / LOCK_NAME)
    except OSError as exc:
        return f"could not delete it completely: {exc.strerror or exc}"
    finally:
        os.close(lock)
    try:
        os.rmdir(path)
    except OSError as exc:
        return f"could not remove the folder: {exc.strerror or exc}"
    return ""


@dataclass
class Outcome:
    deleted: list[Deletion] = field(default_factory=list)
    failed: list[tuple[Deletion, str]] = field(default_factory=list)

    @property
    def freed(self) -> int:
        return sum(d.run.bytes for d in self.deleted)


def apply(pl: Plan, log: Callable[[str], None]) -> Outcome:
    """Delete what ``pl`` says, logging one line per run (run id, size, reason). The caller holds pmm.lock."""
    out = Outcome()
    for d in pl.delete:
        if journal_in_use(d.run.path):
            why = "its journal is in use (a session holds its LOCK)"
        else:
            why = delete_run(d.run.path)
        if why:
            out.failed.append((d, why))
            log(f"kept old run {d.run.run_id} ({fmt_bytes(d.run.bytes)}) although {d.reason}: {why}")
        else:
            out.deleted.append(d)
            log(f"deleted old run {d.run.run_id} ({fmt_bytes(d.run.bytes)}): {d.reason}")
    return out


# ================================================================ `pmm prune`
def build_parser() -> argparse.ArgumentParser:
    from pmm.args import Parser as _Parser

    p = _Parser(prog="pmm prune", description=(
        "Delete the oldest finished run journals beyond storage.keep_runs / storage.max_journal_gb (what `pmm start` "
        "does by itself before each start). Only pmm run folders are ever deleted, never the newest."))
    p.add_argument("--dry-run", action="store_true", help="only show what would be deleted")
    p.add_argument("--data", default=".", metavar="DIR", help="data folder (default .)")
    p.add_argument("--config", metavar="FILE", help="config file (default: DIR/config.json, else the defaults)")
    return p


def prune_main(argv: list[str]) -> int:
    """`pmm prune [--dry-run] [--data DIR] [--config FILE]` (argv: what follows `pmm prune`).

    Exit 0: done (or nothing to do); 1: pmm is running in the folder (nothing deleted) or a deletion failed;
    2: unusable input.
    """
    from pmm.config import ConfigError
    from pmm.supervisor import EXIT_FAIL, EXIT_OK, EXIT_USAGE, _acquire_lock, _err, config_for, data_dir, who_holds

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        dd = data_dir(args.data)
    except ValueError as exc:
        _err(f"prune: {exc}")
        return EXIT_USAGE
    try:
        cfg, _path = config_for(dd, args.config)
    except ConfigError as exc:
        _err(str(exc))
        return EXIT_USAGE
    st = cfg.storage
    root = journal_root(dd.root, cfg.journal_dir)
    lock_fd = None
    if not args.dry_run:
        try:
            lock_fd = _acquire_lock(dd)
        except OSError as exc:
            _err(f"prune: cannot create {dd.lock}: {exc.strerror}")
            return EXIT_USAGE
        if lock_fd is None:
            _err(f"prune: pmm is running in {dd.root} ({who_holds(dd)}): nothing deleted; it prunes by itself at "
                 "each start and while it runs (`pmm prune --dry-run` shows what is due)")
            return EXIT_FAIL
    try:
        pl = plan(root, keep_runs=st.keep_runs, max_journal_gb=st.max_journal_gb)
        print(f"journals  {root}: {n_runs(len(pl.runs))}, {fmt_bytes(pl.total_bytes)}; kept: the last "
              f"{st.keep_runs} runs and at most {fmt_gb(st.max_journal_gb)} (storage.keep_runs, "
              "storage.max_journal_gb), always the newest and any in use")
        for s in pl.skipped:
            print(f"skipped   {s.path.name}: {s.why} (never deleted)")
        if args.dry_run:
            for d in pl.delete:
                print(f"would delete {d.run.run_id} ({fmt_bytes(d.run.bytes)}): {d.reason}")
            kept = pl.kept
            print(f"dry run: {n_runs(len(pl.delete))} would be deleted ({fmt_bytes(sum(d.run.bytes for d in pl.delete))})"
                  f", {len(kept)} kept ({fmt_bytes(sum(r.bytes for r in kept))}); nothing was changed")
            return EXIT_OK
        logs = _PruneLog(dd.logs / "supervisor.log")
        out = apply(pl, logs)
        kept = [r for r in pl.runs if r.path.exists()]
        try:
            free = f"; {fmt_bytes(free_probe()(root))} free"
        except OSError:
            free = ""
        print(f"deleted {n_runs(len(out.deleted))} ({fmt_bytes(out.freed)}); {len(kept)} kept "
              f"({fmt_bytes(sum(r.bytes for r in kept))}){free}")
        return EXIT_FAIL if out.failed else EXIT_OK
    finally:
        if lock_fd is not None:
            os.close(lock_fd)


class _PruneLog:
    """A deletion by `pmm prune`: printed and appended to logs/supervisor.log, like the supervisor's own."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, text: str) -> None:
        print(text)
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} pmm prune: {text}\n"
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(exist_ok=True)
            with open(self.path, "a") as f:
                f.write(line)


if __name__ == "__main__":
    sys.exit(prune_main(sys.argv[1:]))
