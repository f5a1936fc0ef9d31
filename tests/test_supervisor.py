"""The supervisor for real: `pmm start` / `pmm stop` / `pmm status` as subprocesses, against the built-in sandbox.

Every wait polls a condition with a deadline; nothing sleeps to synchronise.
"""
from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from events.control import RunEnded
from events.orders import OrderState
from journal import JournalReader
from pmm.supervisor import TEST_CHILD_ENV, TEST_MODE_ENV, redact
from replay.journal_io import read_envelopes
from replay.verify import verify

T = TypeVar("T")
SECRET = "0x" + "5f" * 32
BOOT_S = 60  # a session against the sandbox boots in about a second; generous for a loaded CI machine


def wait_for(pred: Callable[[], T], timeout: float, what: str) -> T:
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def pmm(module: str, *args: str, env: dict | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def start(data: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    out = open(data / "supervisor.out", "ab")
    return subprocess.Popen([sys.executable, "-m", "pmm.supervisor", "start", "paper", "--data", str(data), *args],
                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)


def status(data: Path) -> dict:
    try:
        obj = json.loads((data / "status.json").read_bytes())
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def write_config(data: Path, **fields) -> None:
    cfg = {"exchange": {"sandbox_scenario": "busy", "sandbox_seed": 3}, "seed": 7, **fields}
    (data / "config.json").write_text(json.dumps(cfg))


def journals(data: Path) -> list[Path]:
    root = data / "journals"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


def records(run_dir: Path) -> list:
    return [env for _, _, env in read_envelopes(JournalReader(run_dir))]


def finish(proc: subprocess.Popen, timeout: float = 60) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise AssertionError(f"the supervisor did not exit within {timeout} s") from None


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
    if isinstance(pid, int) and pid != os.getpid():
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def test_start_status_second_start_stop_clean_journal(data: Path) -> None:
    write_config(data)
    sup = start(data)
    try:
        st = wait_for(lambda: (s := status(data)).get("state") == "running" and s.get("frames", 0) > 0 and s,
                      BOOT_S, "status.json with state running")
        assert st["mode"] == "paper" and st["pid"] != sup.pid
        assert int((data / "pmm.pid").read_text()) == sup.pid

        shown = pmm("pmm.statuscmd", "--data", str(data))
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "RUNNING" in shown.stdout and f"supervisor pid {sup.pid}" in shown.stdout
        raw = json.loads(pmm("pmm.statuscmd", "--json", "--data", str(data)).stdout)
        assert raw["pmm_status"]["running"] is True and raw["state"] == "running"

        second = pmm("pmm.supervisor", "start", "paper", "--data", str(data))
        assert second.returncode == 1
        assert second.stderr.count("\n") == 1 and f"pid {sup.pid}" in second.stderr, second.stderr

        # let it trade a little, then stop
        wait_for(lambda: status(data).get("fills", 0) > 0 or status(data).get("open_orders", 0) > 0, 30,
                 "orders or fills")
        stopped = pmm("pmm.supervisor", "stop", "--data", str(data))
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert "stopped: state stopped" in stopped.stdout
        assert finish(sup, 10) == 0
    finally:
        if sup.poll() is None:
            sup.kill()
    assert not (data / "pmm.pid").exists()
    (run,) = journals(data)
    envs = records(run)
    assert isinstance(envs[-1].ev, RunEnded)
    last: dict[str, str] = {}
    for e in envs:
        if isinstance(e.ev, OrderState):
            last[e.ev.client_id] = e.ev.state
    assert last and all(s in ("cancelled", "filled", "rejected") for s in last.values()), last
    assert verify(run).ok
    replay = pmm("pmm.cli", "replay", "verify", str(run))
    assert replay.returncode == 0 and replay.stdout.startswith("OK")
    st = status(data)
    assert st["state"] == "stopped" and st["kill_switch"].startswith("operator_stop") and st["open_orders"] == 0
    after = pmm("pmm.statuscmd", "--data", str(data))
    assert after.returncode == 3 and "NOT RUNNING" in after.stdout
    log = (data / "logs" / "session.log").read_text()
    assert "paper session ended" in log and "msg/s" in log


def test_a_stop_while_the_session_boots_is_neither_lost_nor_fatal(data: Path) -> None:
    """SIGTERM before the session installed its handler: it is ignored, repeated, and the session stops cleanly."""
    write_config(data)
    sup = start(data)
    try:
        wait_for(lambda: status(data).get("state") == "starting", BOOT_S, "the session to be started")
        sup.send_signal(signal.SIGINT)  # Ctrl-C on the supervisor behaves like `pmm stop`
        assert finish(sup, 60) == 0
    finally:
        if sup.poll() is None:
            sup.kill()
    for run in journals(data):  # there may be none if it stopped before opening one
        assert isinstance(records(run)[-1].ev, RunEnded)
        assert verify(run).ok
    assert status(data)["state"] == "stopped"


def crash_child(stamp_file: Path, code: int = 3, ignore_term: bool = False, sleep: float = 0) -> str:
    script = (
        "import os, signal, sys, time\n"
        f"open({str(stamp_file)!r}, 'a').write(f'{{time.monotonic()}}\\n')\n"
        + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignore_term else "")
        + f"time.sleep({sleep})\n"
        "print('session output line', flush=True)\n"
        f"sys.stderr.write('Traceback (most recent call last):\\n  private_key={SECRET}\\n"
        f"RuntimeError: boom {SECRET[2:]}\\n')\n"
        f"sys.exit({code})\n"
    )
    return json.dumps([sys.executable, "-c", script])


def test_crashes_are_restarted_with_backoff_then_it_gives_up(data: Path) -> None:
    write_config(data, supervisor={"backoff_initial_s": 0.2, "backoff_max_s": 0.8, "max_crashes": 4,
                                   "crash_window_s": 120})
    stamps = data / "starts.txt"
    env = dict(os.environ, **{TEST_MODE_ENV: "1", TEST_CHILD_ENV: crash_child(stamps)})
    sup = start(data, env=env)
    assert finish(sup, 60) == 1
    starts = [float(x) for x in stamps.read_text().split()]
    assert len(starts) == 4
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    for gap, backoff in zip(gaps, (0.2, 0.4, 0.8), strict=True):
        assert gap >= backoff * 0.95, gaps
    st = status(data)
    assert st["state"] == "crashed" and st["reason"].startswith("gave up: the session crashed 4 times")
    assert "RuntimeError: boom <redacted>" in st["stderr_tail"][-1]
    assert "private_key=<redacted>" in st["stderr_tail"][-2]
    assert st["restarts"] == 3 and st["exit_code"] == 3
    everything = "".join(p.read_text() for p in (data / "logs").iterdir()) + (data / "status.json").read_text()
    everything += (data / "supervisor.out").read_text()
    assert SECRET[2:] not in everything and "5f5f5f5f5f5f5f5f" not in everything
    out = (data / "supervisor.out").read_text()
    assert "restarting in 0.20 s" in out and "restarting in 0.40 s" in out and "restarting in 0.80 s" in out
    shown = pmm("pmm.statuscmd", "--data", str(data))
    assert shown.returncode == 3 and "state     crashed" in shown.stdout and "gave up" in shown.stdout
    assert not (data / "pmm.pid").exists()


def test_a_clean_exit_is_not_restarted_and_exit_2_is_not_retried(data: Path) -> None:
    write_config(data, supervisor={"backoff_initial_s": 0.1})
    for code, expect in ((0, 0), (2, 2)):
        stamps = data / f"starts-{code}.txt"
        env = dict(os.environ, **{TEST_MODE_ENV: "1", TEST_CHILD_ENV: crash_child(stamps, code=code)})
        assert finish(start(data, env=env), 30) == expect
        assert len(stamps.read_text().split()) == 1
    assert status(data)["state"] == "crashed"  # the last one refused its input


def test_stop_escalates_after_the_timeout_and_on_a_second_request(data: Path) -> None:
    write_config(data, supervisor={"stop_timeout_s": 1.5})
    stamps = data / "starts.txt"
    env = dict(os.environ, **{TEST_MODE_ENV: "1", TEST_CHILD_ENV: crash_child(stamps, ignore_term=True, sleep=120)})
    sup = start(data, env=env)
    wait_for(lambda: stamps.exists() and status(data).get("state") == "starting", 30, "the child")
    t0 = time.monotonic()
    res = pmm("pmm.supervisor", "stop", "--data", str(data))
    assert res.returncode == 1 and "stopped: state killed" in res.stdout, res.stdout + res.stderr
    assert 1.4 < time.monotonic() - t0 < 20
    assert finish(sup, 10) == 1
    assert status(data)["state"] == "killed" and "did not stop within 1.5 s" in status(data)["reason"]

    # a second request forces it at once, whatever the timeout
    write_config(data, supervisor={"stop_timeout_s": 300})
    stamps.unlink()
    sup = start(data, env=env)
    wait_for(lambda: stamps.exists() and status(data).get("state") == "starting", 30, "the child")
    log = data / "logs" / "supervisor.log"
    seen = log.read_text().count("stopping (SIGTERM)")
    sup.send_signal(signal.SIGTERM)
    # two signals sent at once may arrive as one: wait until the first is acted on
    wait_for(lambda: log.read_text().count("stopping (SIGTERM)") > seen, 10, "the first stop to be seen")
    sup.send_signal(signal.SIGTERM)
    assert finish(sup, 20) == 1
    assert "second stop request" in status(data)["reason"]


def test_bad_input_is_one_line_and_starts_nothing(data: Path, tmp_path: Path) -> None:
    (data / "config.json").write_text('{"risk": {"max_order_size": -1}}')
    res = pmm("pmm.supervisor", "start", "paper", "--data", str(data))
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "risk.max_order_size: must be a whole number >= 0" in res.stderr and "(got -1)" in res.stderr
    assert not (data / "pmm.pid").exists() and not (data / "logs").exists()

    res = pmm("pmm.supervisor", "start", "paper", "--data", str(tmp_path / "missing"))
    assert res.returncode == 2 and "no such folder" in res.stderr and res.stderr.count("\n") == 1
    res = pmm("pmm.supervisor", "start", "paper", "--data", str(data), "--duration", "-3")
    assert res.returncode == 2 and res.stderr.startswith("pmm: start: ") and res.stderr.count("\n") == 1
    res = pmm("pmm.supervisor", "start", "papr", "--data", str(data))
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    res = pmm("pmm.supervisor", "stop", "--data", str(data))
    assert res.returncode == 0 and "not running" in res.stdout


def test_start_live_refuses_without_pmm_live_a_live_config_or_with_the_sandbox(
        data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from pmm import supervisor

    monkeypatch.setattr(supervisor, "available_commands", lambda: {"paper", "shadow"})
    assert supervisor.start_main(["live", "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no `pmm live` yet" in err and "nothing was started" in err

    monkeypatch.setattr(supervisor, "available_commands", lambda: {"paper", "live"})
    assert supervisor.start_main(["live", "--data", str(data)]) == 2
    assert "live trading needs one" in capsys.readouterr().err
    write_config(data)
    assert supervisor.start_main(["live", "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'says "mode": "paper"; set "mode": "live" there' in err
    write_config(data, mode="live")
    assert supervisor.start_main(["live", "--data", str(data)]) == 2
    assert "exchange.rest_url: live trading needs a real exchange" in capsys.readouterr().err
    assert not (data / "pmm.pid").exists() and not (data / "logs").exists()


def test_a_session_that_ends_halted_is_not_restarted(data: Path) -> None:
    """Restarting a session that ended cleanly but halted would start an un-halted run: never."""
    write_config(data, supervisor={"backoff_initial_s": 0.1})
    stamps = data / "starts.txt"
    script = (
        "import json, os, sys, time\n"
        f"open({str(stamps)!r}, 'a').write('x\\n')\n"
        "json.dump({'pid': os.getpid(), 'state': 'stopped', 'kill_switch': 'loss_limit: PnL -21 below -20'},"
        " open('status.json', 'w'))\n"
        "sys.exit(1)\n"
    )
    env = dict(os.environ, **{TEST_MODE_ENV: "1", TEST_CHILD_ENV: json.dumps([sys.executable, "-c", script])})
    assert finish(start(data, env=env), 30) == 1
    assert stamps.read_text().count("x") == 1
    st = status(data)
    assert st["state"] == "stopped" and "ended halted by the kill switch (loss_limit" in st["reason"]
    assert "must never clear a kill switch" in st["reason"]


def test_redact() -> None:
    assert redact(f"key {SECRET} end") == "key 0x<redacted> end"
    assert redact(f"bare {SECRET[2:]}") == "bare <redacted>"
    assert redact('{"secret": "abc+/=", "api_key":"k1"}') == '{"secret": "<redacted>", "api_key":"<redacted>"}'
    token = "1" * 77  # a token id (decimal, longer than 64 digits) is not a key
    assert redact(f"token {token}") == f"token {token}"


def test_a_killed_supervisor_leaves_a_session_that_stop_still_stops_cleanly(data: Path) -> None:
    """The session does not depend on its supervisor's pipes: kill -9 the supervisor, the session trades on,
    holds the folder (a second start is refused, naming it), and `pmm stop` stops it cleanly."""
    write_config(data)
    sup = start(data)
    try:
        st = wait_for(lambda: (s := status(data)).get("state") == "running" and s.get("frames", 0) > 0 and s,
                      BOOT_S, "a running session")
        child = st["pid"]
        sup.kill()
        sup.wait(timeout=10)
        frames = status(data)["frames"]
        wait_for(lambda: status(data).get("frames", 0) > frames + 10, 20, "the session to carry on without it")

        second = pmm("pmm.supervisor", "start", "paper", "--data", str(data))
        assert second.returncode == 1 and f"a session, pid {child}, whose supervisor is gone" in second.stderr
        shown = pmm("pmm.statuscmd", "--data", str(data))
        assert shown.returncode == 0 and "no supervisor (orphaned session)" in shown.stdout
        stopped = pmm("pmm.supervisor", "stop", "--data", str(data))
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert "stopping a session without its supervisor" in stopped.stdout
    finally:
        if sup.poll() is None:
            sup.kill()
    (run,) = journals(data)
    assert isinstance(records(run)[-1].ev, RunEnded) and verify(run).ok
    assert status(data)["state"] == "stopped"
