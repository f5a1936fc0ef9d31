"""`pmm observe`: read-only rolling summaries of a journal or a published status, on files written by the
project's own code (scripted sessions over the real core, ``build_status`` / ``write_status`` /
``publish_status``)."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import trio

from actors.sink.stats import SessionStats
from actors.sink.status import Status, build_status, publish_status, write_status
from events.control import RunEnded, Tick
from events.market import FeedFrame
from pmm.observe import (
    Snapshot,
    follow_journal,
    follow_status,
    observe_main,
    render,
    status_paths,
    status_snapshot,
)
from replay.scripts import MARKET, price_change
from tests.test_report import RUN_ID, SEC, OpenSpy, session_journal, snapshot_dir

MICRO = 1_000_000


def stats_of(records) -> SessionStats:  # type: ignore[no-untyped-def]
    st = SessionStats()
    st.feed_all(records)
    return st


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    s = session_journal(tmp_path_factory.mktemp("obs") / "run")
    return s


def expected_figures(st: SessionStats) -> list[str]:
    return [
        RUN_ID, "mode paper",
        f"{st.fills} fills",
        f"position {st.position_shares:+.2f} shares",
        f"PnL {st.pnl:+.4f} USD",
        "kill switch: TRIPPED: operator_stop: test stop",
        "reconnects",
        f"{st.parse_errors} parse errors",
        "size_limit 1",
    ]


def make_status(st: SessionStats, folder: Path, *, written_ns: int, state: str = "running",
                publish: bool = False) -> Path:
    status = build_status(st, now_ns=written_ns, version="0.1.0", journal=Path("journals/x"), state=state)
    if publish:
        publish_status(folder, status, True)
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    write_status(folder / "status.json", status)
    return folder / "status.json"


# ------------------------------------------------------------------ --once
def test_once_when_journal_then_prints_the_session_figures(session, capsys: pytest.CaptureFixture[str]) -> None:
    assert observe_main(["--journal", str(session.journal_dir), "--once"]) == 0
    out = capsys.readouterr().out
    st = stats_of(session.records)
    assert st.fills > 0 and st.reconnects == 1
    for text in expected_figures(st):
        assert text in out, (text, out)
    assert "ENDED: the session stopped cleanly (test over)" in out
    assert "STALE" not in out  # a cleanly ended run is not "maybe down"
    assert "feed     connected (connection #2)" in out
    for token in (MARKET.yes_token, MARKET.no_token):
        assert token[:6] in out


def test_once_when_status_file_then_prints_the_same_figures(session, tmp_path: Path, capsys) -> None:
    st = stats_of(session.records)
    path = make_status(st, tmp_path / "pub", written_ns=time.time_ns())
    assert observe_main(["--status", str(path), "--once"]) == 0
    out = capsys.readouterr().out
    for text in expected_figures(st):
        assert text in out, (text, out)
    assert "STALE" not in out and "ENDED" not in out
    yes = st.tokens[MARKET.yes_token]
    line = next(ln for ln in out.splitlines() if ln.strip().startswith(MARKET.yes_token[:4]))
    assert f"{yes.best_bid / MICRO:.2f}" in line and f"{yes.best_ask / MICRO:.2f}" in line
    assert f"{yes.position / MICRO:+.2f}" in line


def test_once_when_publish_folder_then_reads_status_and_summary_history(session, tmp_path: Path, capsys) -> None:
    records = session.records
    folder = tmp_path / "pub"
    now = time.time_ns()
    half = len(records) // 2
    make_status(stats_of(records[:half]), folder, written_ns=now - 600 * SEC, publish=True)
    make_status(stats_of(records), folder, written_ns=now, publish=True)
    assert (folder / "summary.jsonl").read_bytes().count(b"\n") == 2
    assert observe_main(["--status", str(folder), "--once"]) == 0
    out = capsys.readouterr().out
    st0, st1 = stats_of(records[:half]), stats_of(records)
    assert "last 10 min 00 s (summary.jsonl)" in out
    assert f"fills +{st1.fills - st0.fills}" in out


def test_once_when_status_old_then_stale_warning(session, tmp_path: Path, capsys) -> None:
    path = make_status(stats_of(session.records), tmp_path, written_ns=time.time_ns() - 95 * SEC)
    assert observe_main(["--status", str(path), "--once"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("STALE"))
    assert re.fullmatch(r"STALE: status not updated for 9[56]\.\d s — the bot may be down", line), line
    # a short threshold calls a fresh-ish status stale too; a long one does not
    assert observe_main(["--status", str(path), "--once", "--stale-after", "600"]) == 0
    assert "STALE" not in capsys.readouterr().out


def test_once_when_status_says_stopped_then_ended_not_stale(session, tmp_path: Path, capsys) -> None:
    path = make_status(stats_of(session.records), tmp_path, written_ns=time.time_ns() - 3600 * SEC,
                       state="stopped")
    assert observe_main(["--status", str(path), "--once"]) == 0
    out = capsys.readouterr().out
    assert "ENDED: session state STOPPED" in out and "STALE" not in out


def test_once_when_journal_not_ended_and_old_then_stale(tmp_path: Path, capsys) -> None:
    path = tmp_path / "crashed"
    session_journal(path, end=False)  # scripted in 2023: long silent
    assert observe_main(["--journal", str(path), "--once"]) == 0
    out = capsys.readouterr().out
    assert "STALE: journal not appended for" in out and "the bot may be down" in out


def test_render_stale_threshold_is_exact(session) -> None:
    st = build_status(stats_of(session.records), now_ns=1000 * SEC, version="v", journal=Path("j"), state="running")
    s = Snapshot("status", Path("status.json"), st)
    assert "STALE" not in render(s, now_ns=1010 * SEC, stale_after_s=10)
    assert "STALE: status not updated for 10.5 s" in render(s, now_ns=1010 * SEC + SEC // 2, stale_after_s=10)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("argv", [["--status", "{d}/missing.json", "--once"], ["--journal", "{d}/nope", "--once"],
                                  ["--once"], ["--journal", "a", "--status", "b"], ["--status", "x", "--interval", "0"]])
def test_errors_are_one_line_exit_2(argv: list[str], tmp_path: Path, capsys) -> None:
    argv = [a.format(d=tmp_path) for a in argv]
    try:
        code = observe_main(argv)
    except SystemExit as exc:
        code = exc.code  # type: ignore[assignment]
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("pmm: ") and err.count("\n") == 1


def test_once_when_status_is_not_a_status_then_one_line_exit_2(tmp_path: Path, capsys) -> None:
    (tmp_path / "status.json").write_text('{"hello": 1}')
    assert observe_main(["--status", str(tmp_path), "--once"]) == 2
    err = capsys.readouterr().err
    assert "not a pmm status file" in err and err.count("\n") == 1


# ------------------------------------------------------------------ follow modes
async def test_follow_journal_when_records_appended_then_picked_up_and_ends_with_run(tmp_path: Path) -> None:
    s = session_journal(tmp_path / "live", end=False, close=False)
    send, recv = trio.open_memory_channel[str](100)
    frames0 = stats_of(s.records).frames

    async def wait_for(text: str) -> str:
        with trio.fail_after(10):
            async for summary in recv:
                if text in summary:
                    return summary
        raise AssertionError("channel closed")

    async with trio.open_nursery() as nursery:
        result: list[int] = []

        async def run() -> None:
            result.append(await follow_journal(s.journal_dir, interval=0.02, out=send.send_nowait,
                                               now_ns=lambda: s.now + SEC))
        nursery.start_soon(run)
        first = await wait_for(f"{frames0} frames")
        assert "state halted" in first and "STALE" not in first
        # the session goes on: three more frames, journaled (written to the OS) by the real writer
        for i in range(3):
            s.at(SEC // 10, "feed", FeedFrame(conn=2, text=price_change(MARKET, [("BUY", "0.44", str(5 + i))])))
        s.at(SEC // 10, "clock", Tick())
        await wait_for(f"{frames0 + 3} frames")
        s.at(SEC // 10, "session", RunEnded(reason="done"))
        last = await wait_for("ENDED")
        assert "the session stopped cleanly (done)" in last
    s.close()
    assert result == [0]  # it stopped by itself once the run had ended


async def test_follow_journal_when_journal_created_later_then_waits_and_follows(tmp_path: Path) -> None:
    path = tmp_path / "later"
    path.mkdir()
    send, recv = trio.open_memory_channel[str](100)
    result: list[int] = []

    async def run() -> None:
        result.append(await follow_journal(path, interval=0.02, out=send.send_nowait))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        with trio.fail_after(10):
            assert "WAITING: no records yet" in await recv.receive()
            session_journal(path)  # the session starts writing into the folder being watched
            async for summary in recv:
                if "ENDED" in summary:
                    break
    assert result == [0] and RUN_ID in summary


async def test_follow_status_when_rewritten_then_new_figures(session, tmp_path: Path, autojump_clock) -> None:
    records = session.records
    half = len(records) // 2
    st0, st1 = stats_of(records[:half]), stats_of(records)
    assert st0.frames != st1.frames
    path = make_status(st0, tmp_path, written_ns=5 * SEC)
    send, recv = trio.open_memory_channel[str](100)
    now = [5 * SEC]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: follow_status(path, None, interval=1.0, out=send.send_nowait,
                                                 now_ns=lambda: now[0], count=4))
        assert f"{st0.frames} frames" in await recv.receive()
        make_status(st1, tmp_path, written_ns=6 * SEC)
        now[0] = 6 * SEC
        assert f"{st1.frames} frames" in await recv.receive()
        now[0] = 60 * SEC  # the bot stops writing
        assert "STALE: status not updated for 54.0 s" in await recv.receive()
        path.unlink()  # a synced folder lags, a session restarts: keep trying
        assert "WAITING:" in await recv.receive()


# ------------------------------------------------------------------ read-only
@pytest.fixture
def readonly_world(session, tmp_path_factory) -> Iterator[tuple[Path, Path]]:  # type: ignore[no-untyped-def]
    """(journal copy, publish folder), files 0444, folders 0555, in a folder others can traverse."""
    base = Path(tempfile.mkdtemp(prefix="pmm-obs-ro-"))
    base.chmod(0o755)
    jdir = base / "run"
    shutil.copytree(session.journal_dir, jdir)
    pub = base / "pub"
    make_status(stats_of(session.records), pub, written_ns=time.time_ns(), publish=True)
    for d in (jdir, pub):
        for p in d.iterdir():
            p.chmod(0o444)
        d.chmod(0o555)
    try:
        yield jdir, pub
    finally:
        for d in (jdir, pub):
            d.chmod(0o755)
        shutil.rmtree(base)


def test_read_only_files_when_observed_then_nothing_opened_for_writing_nothing_created(
        readonly_world, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    jdir, pub = readonly_world
    base = jdir.parent
    before = snapshot_dir(base)
    spy = OpenSpy(monkeypatch, base)
    assert observe_main(["--journal", str(jdir), "--once"]) == 0
    assert observe_main(["--status", str(pub), "--once"]) == 0
    assert observe_main(["--status", str(pub / "status.json"), "--once"]) == 0
    assert spy.opens and not spy.writes
    monkeypatch.undo()
    assert snapshot_dir(base) == before
    assert capsys.readouterr().out.count("pmm observe (read-only)") == 3


async def test_read_only_journal_when_followed_then_nothing_opened_for_writing(
        readonly_world, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    jdir, _ = readonly_world
    before = snapshot_dir(jdir)
    spy = OpenSpy(monkeypatch, jdir)
    outs: list[str] = []
    with trio.fail_after(10):
        assert await follow_journal(jdir, interval=0.02, out=outs.append) == 0  # the run ended: returns
    assert outs and "ENDED" in outs[-1]
    assert spy.opens and not spy.writes
    monkeypatch.undo()
    assert snapshot_dir(jdir) == before


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to drop to nobody")
def test_read_only_when_run_as_another_user_then_works(readonly_world) -> None:  # type: ignore[no-untyped-def]
    """The OS enforces it: a user who may not write anything there still observes."""
    import journal as _journal  # noqa: F401  (imports done before dropping privileges)
    import replay.journal_io  # noqa: F401

    jdir, pub = readonly_world
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 99
        try:
            os.close(r)
            os.setgid(65534)
            os.setuid(65534)
            import sys

            sys.stdout = os.fdopen(w, "w")
            try:
                (pub / "probe").write_bytes(b"")
                code = 98
            except PermissionError:
                code = observe_main(["--journal", str(jdir), "--once"]) * 10 + observe_main(
                    ["--status", str(pub), "--once"])
            sys.stdout.flush()
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out.count("pmm observe (read-only)") == 2 and RUN_ID in out


def test_status_paths() -> None:
    d = Path(tempfile.mkdtemp())
    try:
        assert status_paths(d) == (d / "status.json", d / "summary.jsonl")
        assert status_paths(d / "s.json") == (d / "s.json", d / "summary.jsonl")
    finally:
        d.rmdir()


def test_status_file_is_decoded_as_the_writer_wrote_it(session, tmp_path: Path) -> None:
    path = make_status(stats_of(session.records), tmp_path, written_ns=7 * SEC)
    snap = status_snapshot(path, None)
    assert isinstance(snap.status, Status) and snap.status.written_at_ns == 7 * SEC
    assert msgspec.json.decode(path.read_bytes())["run_id"] == RUN_ID
