"""Replay verify and show, through the CLI, on journals written by scripted sessions."""
from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec
import pytest

from events import Envelope, encode
from events.market import BookChanged
from events.params import CoreParams
from pmm.cli import main
from replay.harness import ScriptedSession
from replay.journal_io import open_sink
from replay.proofs.core import SEC
from replay.scripts import MARKET, STANDARD_ASKS, STANDARD_BIDS, pair_snapshot, price_change
from events.control import Tick
from events.market import FeedFrame, FeedStatus


def scripted(tmp_path: Path, fills: str = "sim") -> ScriptedSession:
    s = ScriptedSession(CoreParams(markets=(MARKET,), fills=fills), journal_dir=tmp_path / "run", run_id="t")
    s.at(SEC, "feed", FeedStatus(conn=1, state="connected"))
    s.at(1, "feed", FeedFrame(conn=1, text=pair_snapshot(MARKET, STANDARD_BIDS, STANDARD_ASKS)))
    for i in range(5):
        s.at(SEC // 4, "clock", Tick())
        s.at(1, "feed", FeedFrame(conn=1, text=price_change(MARKET, [("BUY", "0.48", str(10 + i))])))
    s.close()
    return s


def test_verify_when_journal_is_intact_then_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = scripted(tmp_path)
    assert main(["replay", "verify", str(s.journal_dir)]) == 0
    out = capsys.readouterr().out
    assert f"OK: {len(s.records)} records" in out


def rewrite(src: ScriptedSession, dst: Path, change) -> None:
    sink = open_sink(dst, run_id="t", seed=0, created_ns=src.records[0][1].ts_ns)
    for seq, env in src.records:
        env = change(seq, env) or env
        if env is not None:
            sink.append(encode(env), env)
    sink.close()


def test_verify_when_a_derived_event_differs_then_names_seq_actor_and_both(tmp_path: Path, capsys) -> None:
    s = scripted(tmp_path)
    target = next(seq for seq, env in s.records if isinstance(env.ev, BookChanged))

    def change(seq, env):
        if seq == target:
            return Envelope(ts_ns=env.ts_ns, src=env.src, cause=env.cause,
                            ev=msgspec.structs.replace(env.ev, bid_size=env.ev.bid_size + 1))
        return None

    rewrite(s, tmp_path / "bad", change)
    assert main(["replay", "verify", str(tmp_path / "bad")]) == 1
    out = capsys.readouterr().out
    assert f"MISMATCH at seq {target}, actor book" in out
    assert "recorded:" in out and "replayed:" in out


def test_verify_when_a_derived_event_is_missing_then_mismatch(tmp_path: Path, capsys) -> None:
    s = scripted(tmp_path)
    # drop the last derived record of the first cascade that has one; later seqs shift, so replay differs there
    target = next(seq for seq, env in s.records if env.cause != 0)
    rewrite(s, tmp_path / "bad", lambda seq, env: None)
    sink = open_sink(tmp_path / "bad2", run_id="t", seed=0, created_ns=1)
    for seq, env in s.records:
        if seq != target:
            sink.append(encode(env), env)
    sink.close()
    assert main(["replay", "verify", str(tmp_path / "bad2")]) == 1
    assert f"MISMATCH at seq {target}" in capsys.readouterr().out


def test_show_prints_json_lines_filtered_by_source_and_range(tmp_path: Path, capsys) -> None:
    s = scripted(tmp_path)
    assert main(["replay", "show", str(s.journal_dir), "--from", "2", "--to", "20", "--source", "book"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines and all(x["src"] == "book" and 2 <= x["seq"] <= 20 for x in lines)
    assert lines[0]["ev"]["name"] in ("BookChanged", "TradePrint", "ParseError", "ResyncRequest")


@pytest.mark.parametrize("args", [["replay", "verify"], ["replay", "show", "x", "--from", "0"], ["nope"]])
def test_cli_when_bad_arguments_then_one_line_and_exit_2(args, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pmm: ") and "\n" not in err


def test_verify_when_journal_missing_then_one_line_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["replay", "verify", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "none" in err


def test_verify_when_record_in_middle_is_damaged_then_names_file_and_offset_and_modifies_nothing(
    tmp_path: Path, capsys
) -> None:
    s = scripted(tmp_path)
    seg = sorted(s.journal_dir.glob("seg-*"))[0]
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0x40
    seg.write_bytes(bytes(data))
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in s.journal_dir.iterdir()}
    assert main(["replay", "verify", str(s.journal_dir)]) == 1
    err = capsys.readouterr().err.strip()
    assert seg.name in err and "offset" in err and "\n" not in err
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in s.journal_dir.iterdir()}
    assert before == after


def test_verify_when_tail_is_torn_then_ok_with_note(tmp_path: Path, capsys) -> None:
    s = scripted(tmp_path)
    seg = sorted(s.journal_dir.glob("seg-*"))[-1]
    os.truncate(seg, seg.stat().st_size - 3)
    code = main(["replay", "verify", str(s.journal_dir)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "torn" in out


@pytest.mark.parametrize("cmd", ["verify", "show"])
def test_cli_when_record_has_unknown_event_tag_then_one_line_naming_file_offset_and_seq(
    tmp_path: Path, capsys, cmd: str
) -> None:
    s = scripted(tmp_path)
    sink = open_sink(tmp_path / "odd", run_id="t", seed=0, created_ns=1)
    for _, env in s.records[:3]:
        sink.append(encode(env), env)
    sink.append(msgspec.msgpack.encode([1, "feed", 0, ["zz9", 1]]), None)  # a tag this pmm does not know
    sink.close()
    before = {p.name: p.read_bytes() for p in (tmp_path / "odd").iterdir()}
    assert main(["replay", cmd, str(tmp_path / "odd")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "seg-" in err and "offset" in err and "seq 4" in err and "zz9" in err
    assert before == {p.name: p.read_bytes() for p in (tmp_path / "odd").iterdir()}


def test_verify_when_a_derived_record_does_not_decode_then_one_line_naming_file_offset_and_seq(
    tmp_path: Path, capsys
) -> None:
    s = scripted(tmp_path)
    target = next(seq for seq, env in s.records if env.cause != 0)  # verify compares derived records as bytes
    sink = open_sink(tmp_path / "odd", run_id="t", seed=0, created_ns=1)
    for seq, env in s.records:
        if seq == target:
            sink.append(msgspec.msgpack.encode([env.ts_ns, env.src, env.cause, ["zz9", 1]]), None)
        else:
            sink.append(encode(env), env)
    sink.close()
    assert main(["replay", "verify", str(tmp_path / "odd")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "seg-" in err and "offset" in err and f"seq {target}" in err and "zz9" in err


def test_verify_when_journal_written_by_another_schema_version_then_refused(tmp_path: Path, capsys) -> None:
    from journal import Journal
    from replay.journal_io import header_info

    info = header_info(run_id="t", seed=0, created_ns=1)
    j = Journal.create(tmp_path / "old", msgspec.structs.replace(info, schema_version=99))
    j.append(b"\x90")
    j.close()
    assert main(["replay", "verify", str(tmp_path / "old")]) == 2
    assert "schema v99" in capsys.readouterr().err


def test_verify_names_the_code_that_wrote_the_journal_when_it_is_not_this_core(tmp_path: Path, capsys) -> None:
    from events.control import RunStarted

    s = scripted(tmp_path)
    assert main(["replay", "verify", str(s.journal_dir)]) == 0
    assert "another core" not in capsys.readouterr().out  # written by this very code

    def old_core(seq, env):
        if isinstance(env.ev, RunStarted):
            return Envelope(ts_ns=env.ts_ns, src=env.src, cause=env.cause,
                            ev=msgspec.structs.replace(env.ev, version="0.1.0+core.000000000000"))
        if isinstance(env.ev, BookChanged) and env.cause != 0:
            return Envelope(ts_ns=env.ts_ns, src=env.src, cause=env.cause,
                            ev=msgspec.structs.replace(env.ev, bid_size=env.ev.bid_size + 1))
        return None

    rewrite(s, tmp_path / "old", old_core)
    assert main(["replay", "verify", str(tmp_path / "old")]) == 1
    out = capsys.readouterr().out
    assert "written by pmm 0.1.0+core.000000000000, replayed by pmm 0.1.0+core." in out and "another core" in out
    assert "a difference can come from a code change" in out


def test_python_dash_m_pmm_is_the_pmm_command(tmp_path: Path) -> None:
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "pmm", "replay", "verify", str(tmp_path / "none")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "no journal here" in res.stderr
