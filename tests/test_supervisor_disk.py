"""The supervisor and disk space: pruning at start and before each restart, refusing to start on a nearly full
disk, stopping a running session cleanly when the disk fills, and `pmm status` showing it.

As in tests/test_supervisor.py, the supervisor runs as a real subprocess (with the test hooks replacing the session
by a small fake, and ``PMM_SUPERVISOR_TEST_FREE_FILE`` faking the free space), and every wait polls a condition
under a deadline.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from events.control import RunEnded
from pmm import retention
from pmm.config import AppConfig, StorageConfig
from replay.verify import verify
from tests.test_retention import make_run, rid
from tests.test_supervisor import BOOT_S, finish, journals, pmm, records, start, status, wait_for

GB = retention.GB


@pytest.fixture
def data(tmp_path: Path):
    d = tmp_path / "data dir"  # a space in the path, as on an operator's Mac
    d.mkdir()
    yield d
    # leave nothing running even when a test fails half-way
    try:
        os.kill(int((d / "pmm.pid").read_text().split()[0]), signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass
    pid = status(d).get("pid")
    if isinstance(pid, int) and pid not in (0, os.getpid()):
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def env_with(free_file: Path, child: list[str] | None = None) -> dict:
    env = dict(os.environ, **{retention.TEST_MODE_ENV: "1", retention.TEST_FREE_ENV: str(free_file)})
    if child is not None:
        env["PMM_SUPERVISOR_TEST_CHILD"] = json.dumps(child)
    return env


def set_free(free_file: Path, n: float) -> None:
    tmp = free_file.with_suffix(".tmp")
    tmp.write_text(f"{int(n)}\n")
    os.replace(tmp, free_file)  # the supervisor never reads half a number


def write_config(data: Path, **fields) -> None:
    cfg = {"exchange": {"sandbox_scenario": "busy", "sandbox_seed": 3}, "seed": 7, **fields}
    (data / "config.json").write_text(json.dumps(cfg))


def fake_session(stamps: Path, *, exit_code: int | None = None) -> list[str]:
    """A session: counts its starts, makes a run folder like a real one (holding its journal LOCK), then exits
    with ``exit_code``, or (None) runs until SIGTERM, on which it writes a final status (kill switch operator_stop)
    and exits 0."""
    script = f"""
import fcntl, json, os, signal, sys, time
n = sum(1 for _ in open({str(stamps)!r})) + 1 if os.path.exists({str(stamps)!r}) else 1
run = os.path.join('journals', '20261201-0000%02d-paper-%d' % (n, os.getpid()))
os.makedirs(run)
lock = os.open(os.path.join(run, 'LOCK'), os.O_RDWR | os.O_CREAT)
fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
open(os.path.join(run, 'seg-00000000000000000001.pmj'), 'wb').write({retention.MAGIC!r} + bytes(1000))
def stop(*_):
    json.dump({{'pid': os.getpid(), 'state': 'stopped', 'kill_switch': 'operator_stop: signal',
               'journal': run, 'open_orders': 0}}, open('status.json', 'w'))
    open('terminated.txt', 'a').write('x\\n')
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
open({str(stamps)!r}, 'a').write(run + '\\n')
if {exit_code is not None}:
    sys.exit({exit_code or 0})
while True:
    time.sleep(0.05)
"""
    return [sys.executable, "-c", script]


def log_lines(data: Path) -> list[str]:
    return [ln.split(" pmm supervisor: ", 1)[1] for ln in (data / "logs" / "supervisor.log").read_text().splitlines()]


def test_the_storage_defaults() -> None:
    s = AppConfig().storage
    assert (s.keep_runs, s.max_journal_gb, s.min_free_gb) == (30, 20.0, 2.0) and 10 <= s.check_interval_s <= 30
    assert s == StorageConfig()


def test_start_refuses_on_a_nearly_full_disk_in_one_line(data: Path) -> None:
    write_config(data)
    free = data / "free.txt"
    set_free(free, 1.5 * GB)
    stamps = data / "starts.txt"
    res = pmm("pmm.supervisor", "start", "paper", "--data", str(data), env=env_with(free, fake_session(stamps)))
    assert res.returncode == 1, res.stderr
    assert res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith(f"pmm: start: not started: disk nearly full: 1.5 GB free on the disk of "
                                 f"{data / 'journals'}, below storage.min_free_gb = 2 GB")
    assert "free some space on that disk" in res.stderr
    assert not stamps.exists() and not (data / "journals").exists()  # nothing started
    st = status(data)
    assert st["state"] == "stopped" and st["reason"].startswith("not started: disk nearly full: 1.5 GB free")
    assert st["supervisor_pid"] and not (data / "pmm.pid").exists()
    assert any(line.startswith("not started: disk nearly full") for line in log_lines(data))
    shown = pmm("pmm.statuscmd", "--data", str(data), env=env_with(free))
    assert shown.returncode == 3
    assert "reason    not started: disk nearly full" in shown.stdout
    assert ("disk      LOW: 1.5 GB free, below storage.min_free_gb = 2 GB: pmm stops and does not start"
            in shown.stdout)
    # launchd: a deliberate end, exit 0, not restarted by KeepAlive
    res = pmm("pmm.supervisor", "start", "paper", "--data", str(data),
              env=dict(env_with(free, fake_session(stamps)), PMM_LAUNCHD="1"))
    assert res.returncode == 0 and "not started: disk nearly full" in res.stderr and not stamps.exists()

    # with the check off (min_free_gb 0) it starts, with a warning
    write_config(data, storage={"min_free_gb": 0})
    res = pmm("pmm.supervisor", "start", "paper", "--data", str(data),
              env=env_with(free, fake_session(stamps, exit_code=0)))
    assert res.returncode == 0 and stamps.exists() and "disk nearly full" not in res.stderr
    assert "pmm start: warning: storage.min_free_gb: 0 turns the free-space check off" in res.stderr


def test_old_runs_are_pruned_at_start_and_before_each_restart_never_the_running_one(data: Path) -> None:
    write_config(data, storage={"keep_runs": 2},
                 supervisor={"backoff_initial_s": 0.1, "max_crashes": 4, "crash_window_s": 120})
    root = data / "journals"
    for d in (1, 2, 3):
        make_run(root, rid(d), size=1_500_000)
    make_run(root, "kill_position_limit")  # a builder's journal in the same folder
    free = data / "free.txt"
    set_free(free, 50 * GB)
    stamps = data / "starts.txt"
    assert finish(start(data, env=env_with(free, fake_session(stamps, exit_code=3))), 60) == 1
    created = stamps.read_text().split()
    assert len(created) == 4
    c = [Path(p).name for p in created]
    deleted = [ln for ln in log_lines(data) if ln.startswith("deleted old run ")]
    assert deleted == [
        f"deleted old run {rid(1)} (1.5 MB): more than storage.keep_runs = 2 runs (3)",  # at start
        f"deleted old run {rid(2)} (1.5 MB): more than storage.keep_runs = 2 runs (3)",  # before restart 1
        f"deleted old run {rid(3)} (1.5 MB): more than storage.keep_runs = 2 runs (3)",  # before restart 2
        f"deleted old run {c[0]} (1 KB): more than storage.keep_runs = 2 runs (3)",  # before restart 3
    ]
    assert sorted(p.name for p in root.iterdir()) == [*c[1:], "kill_position_limit"]
    log = log_lines(data)
    assert sum("left kill_position_limit alone (never pruned)" in ln for ln in log) == 1  # said once
    # each pruning happened before the session it made room for
    starts = [i for i, ln in enumerate(log) if ln.startswith("session started")]
    dels = [i for i, ln in enumerate(log) if ln.startswith("deleted old run ")]
    assert len(starts) == 4 and all(d < s for d, s in zip(dels, starts, strict=True))
    assert all(s < d for s, d in zip(starts, dels[1:], strict=False))
    assert status(data)["state"] == "crashed"


def test_a_running_session_is_stopped_cleanly_when_the_disk_fills_and_not_restarted(data: Path) -> None:
    write_config(data, storage={"check_interval_s": 1, "min_free_gb": 2},
                 supervisor={"backoff_initial_s": 0.1, "stop_timeout_s": 20})
    free = data / "free.txt"
    set_free(free, 50 * GB)
    stamps = data / "starts.txt"
    sup = start(data, env=env_with(free, fake_session(stamps)))
    try:
        wait_for(lambda: stamps.exists() and status(data).get("state") == "starting", 30, "the fake session")
        shown = pmm("pmm.statuscmd", "--json", "--data", str(data), env=env_with(free))
        ps = json.loads(shown.stdout)["pmm_status"]
        assert ps["running"] and ps["disk_free_bytes"] == 50 * GB and ps["journal_runs"] == 1
        assert ps["journal_bytes"] == 1008 and ps["journal_dir"] == str(data / "journals")
        t0 = time.monotonic()
        set_free(free, 1.9 * GB)
        assert finish(sup, 30) == 1
        assert time.monotonic() - t0 < 15
    finally:
        if sup.poll() is None:
            sup.kill()
    assert (data / "terminated.txt").read_text() == "x\n"  # it was asked to stop (SIGTERM), once, and did
    assert len(stamps.read_text().split()) == 1  # not restarted
    st = status(data)
    assert st["state"] == "stopped" and st["kill_switch"].startswith("operator_stop")
    assert st["reason"].startswith(f"disk nearly full: 1.9 GB free on the disk of {data / 'journals'}, below "
                                   "storage.min_free_gb = 2 GB")
    assert "the session was stopped cleanly and is not restarted" in st["reason"]
    log = log_lines(data)
    assert any(ln.startswith("stopping the session: disk nearly full: 1.9 GB free") for ln in log)
    assert not (data / "pmm.pid").exists()


def test_short_of_space_old_runs_go_first_and_the_session_carries_on(data: Path) -> None:
    """In process, with the probe as a function: a disk whose free space grows as old runs are deleted."""
    from pmm.config import load_config
    from pmm.supervisor import DataDir, Supervisor, _Log

    root = data / "journals"
    for d in range(1, 5):
        make_run(root, rid(d), size=1 * GB)  # sparse
    write_config(data, storage={"keep_runs": 10, "max_journal_gb": 2.5, "min_free_gb": 2})
    disk_size = 5 * GB  # 4 GB of journals: 1 GB free
    probes: list[int] = []

    def probe(path: Path) -> int:
        assert path == root
        probes.append(disk_size - retention.usage(root)[0])
        return probes[-1]

    sup = Supervisor(mode="paper", dd=DataDir(data), cfg=load_config(data / "config.json"), config_path=None,
                     duration_s=None, lock_fd=-1, free_probe=probe)
    (data / "logs").mkdir()
    sup.sup_log = _Log(data / "logs" / "supervisor.log")
    sup.echo_err.enabled = False
    # before a start: pruned to 2.5 GB (2 runs deleted), then 3 GB free: enough
    assert sup._disk_problem(prune=True) == ""
    assert sorted(p.name for p in root.iterdir()) == [rid(3), rid(4)] and probes == [3 * GB]
    # while running, not pruning: enough space, nothing touched
    assert sup._disk_problem(prune=False) == "" and probes[-1] == 3 * GB
    # the disk fills from elsewhere: short of space, prune (nothing left to prune), then the reason
    disk_size = 3.5 * GB
    problem = sup._disk_problem(prune=False)
    assert problem == (f"disk nearly full: 1.5 GB free on the disk of {root}, below storage.min_free_gb = 2 GB "
                       "(the journals there use 2.0 GB in 2 runs after pruning)")
    assert sorted(p.name for p in root.iterdir()) == [rid(3), rid(4)]

    # a probe that fails is said once and does not stop anything (the journal still fails closed on ENOSPC)
    def broken(_path: Path) -> int:
        raise OSError("no such device")

    sup.free_probe = broken
    assert sup._disk_problem(prune=False) == "" and sup._disk_problem(prune=False) == ""
    sup.sup_log.close()
    said = [ln for ln in log_lines(data) if "cannot measure the free space" in ln]
    assert len(said) == 1 and "carrying on without the free-space check" in said[0]


def test_a_real_session_stops_cleanly_with_run_ended_when_the_disk_fills(data: Path) -> None:
    write_config(data, storage={"check_interval_s": 1})
    free = data / "free.txt"
    set_free(free, 50 * GB)
    sup = start(data, env=env_with(free))
    try:
        wait_for(lambda: (s := status(data)).get("state") == "running" and s.get("frames", 0) > 0 and s,
                 BOOT_S, "a running session")
        wait_for(lambda: status(data).get("fills", 0) > 0 or status(data).get("open_orders", 0) > 0, 30,
                 "orders or fills")
        set_free(free, 1 * GB)
        assert finish(sup, 60) == 1
    finally:
        if sup.poll() is None:
            sup.kill()
    (run,) = journals(data)
    assert isinstance(records(run)[-1].ev, RunEnded) and verify(run).ok
    st = status(data)
    assert st["state"] == "stopped" and st["kill_switch"].startswith("operator_stop") and st["open_orders"] == 0
    assert st["reason"].startswith("disk nearly full: 1.0 GB free")
    shown = pmm("pmm.statuscmd", "--data", str(data), env=env_with(free))
    assert shown.returncode == 3 and "reason    disk nearly full" in shown.stdout
    size = retention.fmt_bytes(retention.usage(data / "journals")[0])
    assert f"\njournals  {size} in 1 run in {data / 'journals'} (keeps the last 30 runs, at most 20 GB)" in shown.stdout
