"""`pmm report`: one self-contained HTML file from a journal written by the project's own code.

Journals come from scripted sessions over the real core (``ScriptedSession``, fills "sim") or from hand-made
envelopes written with ``open_sink``; nothing about the journal is mocked.
"""
from __future__ import annotations

import builtins
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from events import Envelope, encode
from events.base import MICRO
from events.control import OperatorStop, RunEnded, RunStarted, Tick
from events.market import BookChanged, FeedFrame, FeedStatus
from events.orders import OrderIntent
from events.paper import SimRested
from events.params import CoreParams, RiskParams
from journal import JournalReader
from pmm.report import MAX_POINTS, downsample, load, render, report_main
from replay.harness import ScriptedSession
from replay.journal_io import open_sink
from replay.scripts import MARKET, STANDARD_ASKS, STANDARD_BIDS, pair_snapshot, price_change, trade

SEC = 10**9
RUN_ID = "rpt-1"


# ------------------------------------------------------------------ journals
def _dec(micro: int) -> str:
    return f"{micro // MICRO}.{micro % MICRO:06d}"


def _resting(s: ScriptedSession) -> list[SimRested]:
    """Orders the simulated exchange holds now, from the session's own records."""
    from events.orders import ExchangeReply, Fill

    live: dict[str, SimRested] = {}
    for _, env in s.records:
        ev = env.ev
        if isinstance(ev, SimRested):
            live[ev.client_id] = ev
        elif isinstance(ev, Fill) or (isinstance(ev, ExchangeReply) and ev.op == "cancel" and ev.ok):
            live.pop(ev.client_id, None)
    return [live[k] for k in sorted(live)]


def _hit(s: ScriptedSession, o: SimRested) -> None:
    """A taker trade one tick through a resting order of ours, for its whole size."""
    price = o.price - MARKET.tick if o.side == "BUY" else o.price + MARKET.tick
    taker = "SELL" if o.side == "BUY" else "BUY"
    s.at(SEC // 5, "feed", FeedFrame(conn=1, text=trade(MARKET, o.token_id, _dec(price), _dec(o.size), taker)))


def session_journal(path: Path, *, end: bool = True, close: bool = True, run_id: str = RUN_ID) -> ScriptedSession:
    """A paper (sim fills) session through the real core: quotes, fills, a risk reject, a parse error, a
    reconnect, an operator stop (kill switch) and, with ``end``, a clean ``RunEnded``."""
    params = CoreParams(markets=(MARKET,), fills="sim", risk=RiskParams(max_order_size=20 * MICRO))
    s = ScriptedSession(params, journal_dir=path, run_id=run_id, mode="paper", seed=42)
    s.at(SEC, "feed", FeedStatus(conn=1, state="connected"))
    s.at(1000, "feed", FeedFrame(conn=1, text=pair_snapshot(MARKET, STANDARD_BIDS, STANDARD_ASKS)))
    s.at(SEC // 10, "clock", Tick())
    drift = [[("BUY", "0.48", "30")], [("SELL", "0.51", "0"), ("SELL", "0.50", "40")], [("BUY", "0.47", "90")]]
    for rnd, changes in enumerate(drift):
        for i, o in enumerate(_resting(s)):
            if (rnd + i) % 2 == 0:
                _hit(s, o)
                s.at(SEC // 2, "clock", Tick())
        s.at(SEC, "feed", FeedFrame(conn=1, text=price_change(MARKET, changes, ts=10 + rnd)))
        for _ in range(3):
            s.at(SEC, "clock", Tick())
    # a risk reject: an order above the 20-share limit
    s.at(SEC // 10, "orders", OrderIntent(client_id="big", condition_id=MARKET.condition_id,
                                          token_id=MARKET.yes_token, side="BUY", price=460_000, size=30 * MICRO))
    s.at(SEC // 10, "feed", FeedFrame(conn=1, text="{not json"))
    # a reconnect
    s.at(SEC, "feed", FeedStatus(conn=1, state="disconnected", detail="socket closed"))
    s.at(SEC, "feed", FeedStatus(conn=2, state="connecting"))
    s.at(SEC, "feed", FeedStatus(conn=2, state="connected"))
    s.at(1000, "feed", FeedFrame(conn=2, text=pair_snapshot(MARKET, STANDARD_BIDS, STANDARD_ASKS, ts=50)))
    for _ in range(3):
        s.at(SEC, "clock", Tick())
    s.at(SEC, "operator", OperatorStop(reason="test stop"))
    s.at(SEC // 10, "clock", Tick())
    if end:
        s.at(SEC // 10, "session", RunEnded(reason="test over"))
    if close:
        s.close()
    return s


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rpt") / "run"
    session_journal(path)
    return path


def snapshot_dir(path: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``path``: (mode, mtime_ns, content) — to show nothing changed."""
    out = {}
    for p in sorted(path.rglob("*")):
        st = p.stat()
        out[str(p.relative_to(path))] = (st.st_mode, st.st_mtime_ns, p.read_bytes() if p.is_file() else b"")
    return out


class OpenSpy:
    """Records every open of a file under ``root`` (os.open, builtins.open, io.open) with its flags/mode."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
        self.root = str(root.resolve())
        self.opens: list[tuple[str, str]] = []
        real_os_open, real_open = os.open, builtins.open

        def os_open(path, flags, *a, **kw):  # type: ignore[no-untyped-def]
            self._note(path, "w" if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
                       else "r")
            return real_os_open(path, flags, *a, **kw)

        def py_open(file, mode="r", *a, **kw):  # type: ignore[no-untyped-def]
            if not isinstance(file, int):
                self._note(file, "w" if set(mode) & set("wax+") else "r")
            return real_open(file, mode, *a, **kw)

        monkeypatch.setattr(os, "open", os_open)
        monkeypatch.setattr(builtins, "open", py_open)
        monkeypatch.setattr(io, "open", py_open)

    def _note(self, path: object, how: str) -> None:
        p = os.path.abspath(os.fsdecode(path))  # type: ignore[arg-type]
        if p == self.root or p.startswith(self.root + os.sep):
            self.opens.append((p, how))

    @property
    def writes(self) -> list[str]:
        return [p for p, how in self.opens if how != "r"]


@pytest.fixture
def readonly_copy(journal: Path) -> Iterator[Path]:
    """A copy of the journal with files 0444 and folders 0555 (restored afterwards so it can be deleted)."""
    base = Path(tempfile.mkdtemp(prefix="pmm-ro-"))
    dst = base / "run"
    shutil.copytree(journal, dst)
    for p in dst.iterdir():
        p.chmod(0o444)
    dst.chmod(0o555)
    base.chmod(0o755)
    try:
        yield dst
    finally:
        dst.chmod(0o755)
        shutil.rmtree(base)


def svg_blocks(page: str) -> list[str]:
    """Each chart's figure (its SVG and caption)."""
    figures = re.findall(r"<figure>(.*?)</figure>", page, re.S)
    assert all(f.startswith('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') for f in figures)
    return figures


# ------------------------------------------------------------------ the report
def test_report_when_session_journal_then_one_self_contained_html_with_charts_and_tables(
        journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    assert report_main([str(journal), "--out", str(out)]) == 0
    assert f"report: {out}" in capsys.readouterr().out
    page = out.read_text()
    # self-contained: nothing is loaded from anywhere
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(", page, re.I)
    # header
    for text in (RUN_ID, "paper", "fills sim", "42", "scripted", "0.1.0", "ended cleanly: test over"):
        assert text in page, text
    # one SVG per chart, each with a title, axis labels with units and a time axis
    data = load(journal)
    render(data)
    titles = data.charts_drawn
    assert len(titles) == 2 + 5  # YES and NO books, inventory, PnL, churn, rewards, market data
    blocks = svg_blocks(page)
    assert len(blocks) == len(titles)
    for title, block in zip(titles, blocks, strict=True):
        assert f"<title>{title}</title>" in block.replace("&#x27;", "'")
        assert "time (UTC," in block
    assert "price (USD per share)" in page and "position (shares)" in page and "PnL (USD)" in page
    assert "orders per minute" in page and "frames per minute" in page and "score (shares)" in page
    # fills as markers with a tooltip; resting orders and desired quotes drawn
    assert page.count("shares @ 0.") >= 2
    assert "our resting bid (best)" in page and "our desired bid" in page
    # reject-code table, parse errors, kill switch reason, reconnect marker
    rejects = page[page.index("Risk rejects by code"):page.index("<h3>Kill switch")]
    assert "<code>size_limit</code>" in rejects
    assert "Parse errors: 1" in page
    kill = page[page.index("<h3>Kill switch"):page.index("<h3>Exchange errors")]
    assert "operator_stop" in kill and "test stop" in kill
    assert "disconnected (connection #1): socket closed" in page
    assert "feed disconnect / reconnect" in page


def test_report_when_no_out_then_report_run_id_in_cwd_and_journal_untouched(
        journal: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot_dir(journal)
    spy = OpenSpy(monkeypatch, journal)
    monkeypatch.chdir(tmp_path)
    assert report_main([str(journal)]) == 0
    assert (tmp_path / f"report-{RUN_ID}.html").is_file()
    assert spy.opens and not spy.writes
    monkeypatch.undo()
    assert snapshot_dir(journal) == before


def test_report_when_out_inside_journal_folder_then_refused(
        journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot_dir(journal)
    assert report_main([str(journal), "--out", str(journal / "report.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pmm: ") and err.count("\n") == 1 and "journal folder" in err
    assert snapshot_dir(journal) == before


def test_report_when_journal_read_only_then_works_and_opens_nothing_for_writing(
        readonly_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot_dir(readonly_copy)
    spy = OpenSpy(monkeypatch, readonly_copy)
    assert report_main([str(readonly_copy), "--out", str(tmp_path / "r.html")]) == 0
    assert spy.opens and not spy.writes
    monkeypatch.undo()
    assert snapshot_dir(readonly_copy) == before


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to drop to nobody")
def test_report_when_run_as_another_user_on_read_only_journal_then_works(readonly_copy: Path) -> None:
    """The OS enforces it: a user who cannot write the journal folder still gets a report."""
    import trio  # noqa: F401  (imported before dropping privileges: the interpreter lives under /root)

    import journal as _journal  # noqa: F401
    import replay.journal_io  # noqa: F401

    outdir = Path(tempfile.mkdtemp(prefix="pmm-out-"))
    outdir.chmod(0o777)
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 99
            try:
                os.setgid(65534)
                os.setuid(65534)
                try:
                    (readonly_copy / "probe").write_bytes(b"")
                    code = 98  # the folder was writable after all: the test would prove nothing
                except PermissionError:
                    code = report_main([str(readonly_copy), "--out", str(outdir / "r.html")])
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert "<svg" in (outdir / "r.html").read_text()
    finally:
        shutil.rmtree(outdir)


def test_report_when_torn_tail_then_report_of_the_rest_says_so(journal: Path, tmp_path: Path) -> None:
    torn = tmp_path / "torn"
    shutil.copytree(journal, torn)
    seg = sorted(torn.glob("seg-*"))[-1]
    seg.write_bytes(seg.read_bytes()[:-7])  # a crash in the middle of the last record
    reader = JournalReader(torn)
    n = sum(1 for _ in reader.records())
    assert reader.torn is not None
    out = tmp_path / "r.html"
    assert report_main([str(torn), "--out", str(out)]) == 0
    page = out.read_text()
    assert "Torn tail" in page and f"seq {n}" in page
    assert "No <code>RunEnded</code> record" in page  # the RunEnded was the torn record
    assert len(svg_blocks(page)) == 7


def test_report_when_crashed_session_without_run_ended_then_noted(tmp_path: Path) -> None:
    path = tmp_path / "crashed"
    session_journal(path, end=False)
    out = tmp_path / "r.html"
    assert report_main([str(path), "--out", str(out)]) == 0
    page = out.read_text()
    assert "No <code>RunEnded</code> record" in page and "Torn tail" not in page


def test_report_when_journal_missing_then_one_line_exit_2(tmp_path: Path, capsys) -> None:
    assert report_main([str(tmp_path / "nope"), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pmm: ") and err.count("\n") == 1
    assert not (tmp_path / "r.html").exists()


def test_report_when_journal_damaged_mid_log_then_one_line_exit_1(journal: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(journal, bad)
    seg = sorted(bad.glob("seg-*"))[0]
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0xFF
    seg.write_bytes(bytes(data))
    assert report_main([str(bad), "--out", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pmm: ") and err.count("\n") == 1 and "seg-" in err
    assert not (tmp_path / "r.html").exists()


def test_report_when_bad_arguments_then_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        report_main([])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("pmm: report: ") and err.count("\n") == 1


# ------------------------------------------------------------------ long journals
def test_report_when_long_journal_then_every_chart_is_downsampled(tmp_path: Path) -> None:
    """30,000 book changes (hand-made envelopes) still give charts of at most MAX_POINTS points."""
    path = tmp_path / "long"
    t0 = 1_700_000_000 * SEC
    sink = open_sink(path, run_id="long", seed=1, created_ns=t0)
    seq_env = [Envelope(ts_ns=t0, src="session", cause=0,
                        ev=RunStarted(run_id="long", mode="shadow", version="0.1.0", seed=1, config_hash="x",
                                      params=CoreParams(markets=(MARKET,), quoting=False)))]
    for i in range(30_000):
        bid = 400_000 + (i * 7919 % 100) * 1000
        seq_env.append(Envelope(ts_ns=t0 + i * SEC, src="book", cause=0,
                                ev=BookChanged(token_id=MARKET.yes_token, epoch=0, valid=i % 997 != 0, best_bid=bid,
                                               bid_size=MICRO, best_ask=bid + 20_000, ask_size=MICRO,
                                               tick=10_000)))
    for env in seq_env:
        sink.append(encode(env), env)
    sink.close()
    out = tmp_path / "r.html"
    assert report_main([str(path), "--out", str(out)]) == 0
    page = out.read_text()
    book = svg_blocks(page)[0]
    points = sum(len(re.findall(r"[MLHV]", d)) for d in re.findall(r'<path d="([^"]*)" fill="none"', book))
    assert 100 < points <= 2 * MAX_POINTS  # a step is one H and one V: 2 commands per point at most
    assert out.stat().st_size < 600_000
    assert "No <code>RunEnded</code>" in page and "quoting off" in page


def test_downsample_keeps_extremes_and_gaps_within_budget() -> None:
    n = 100_000
    t = list(range(n))
    v = [(i * 37) % 1000 for i in range(n)]
    v[50_000] = -(2**63)  # a gap
    v[70_000] = 5_000  # a spike
    pts = downsample(t, v, 2000, 0, n - 1)
    assert len(pts) <= 2000
    vals = [x for _, x in pts]
    assert 5_000 in vals and 0 in vals and -(2**63) in vals
    assert [p[0] for p in pts] == sorted(p[0] for p in pts)
    assert downsample(t[:10], v[:10], 2000, 0, 9) == list(zip(t[:10], v[:10], strict=True))
