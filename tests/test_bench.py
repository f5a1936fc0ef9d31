"""``pmm bench``: every bench still runs (``--quick``) and ``latest.json`` has the agreed shape. No speed asserts:
speed goals are benchmarks, never timed tests."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.common import Result, print_table
from bench.runner import BENCHES, main

KEYS = ("name", "value", "unit", "baseline", "ratio", "target")


def check_shape(doc: dict, prefixes: tuple[str, ...]) -> list[dict]:
    assert set(doc) >= {"machine", "benches"}
    m = doc["machine"]
    assert m["python"] and m["cpu_count"] and m["cpu_model"] and m["date"]
    rows = doc["benches"]
    assert rows, "no rows"
    for row in rows:
        for k in KEYS:
            assert k in row, (k, row)
        assert isinstance(row["name"], str) and isinstance(row["unit"], str) and row["unit"]
        if row["baseline"]:
            assert row["value"] is not None
            assert row["ratio"] == pytest.approx(row["value"] / row["baseline"], rel=0.01, abs=0.01), row
        else:
            assert row["ratio"] is None, row
        assert row["name"].split(".")[0] in prefixes, row["name"]
    for p in prefixes:
        assert any(r["name"].startswith(p + ".") for r in rows), f"no row from bench {p}"
    return rows


def test_in_process_benches_run_quick_and_write_the_json(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench" / "latest.json"
    names = ["journal", "replay", "feed", "sign", "peer"]
    assert main(["--quick", "--out", str(out), *names]) == 0
    rows = check_shape(json.loads(out.read_text()), tuple(names))
    by_name = {r["name"]: r for r in rows}
    assert by_name["replay.verify"]["baseline"] > 0 and by_name["replay.verify"]["target"] == 200_000
    # the floor (actors that cost nothing) is faster than verify with the real core, which adds a positive cost
    assert by_name["replay.verify_floor"]["value"] > by_name["replay.verify"]["value"]
    assert by_name["replay.core_us_per_record"]["value"] > 0
    assert by_name["journal.append_buffered"]["target"] == 300_000
    assert all(r["note"].startswith("(quick)") for r in rows)
    assert (tmp_path / "bench" / "replay-50000" / "meta.json").exists()  # the journal is cached beside the JSON
    printed = capsys.readouterr().out
    assert "replay.verify" in printed and f"wrote {out}" in printed


def test_session_benches_run_quick_against_the_sandbox(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    assert main(["--quick", "--out", str(out), "latency", "scale"]) == 0
    rows = check_shape(json.loads(out.read_text()), ("latency", "scale"))
    by_name = {r["name"]: r for r in rows}
    p50, p99 = by_name["latency.frame_to_intent_p50"]["value"], by_name["latency.frame_to_intent_p99"]["value"]
    assert 0 < p50 <= p99 and by_name["latency.frame_to_intent_p99"]["unit"] == "us"
    assert by_name["scale.rss_10"]["value"] > 0 and by_name["scale.cpu_10"]["unit"] == "% core"


def test_a_partial_run_merges_and_keeps_other_rows(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    out.write_text(json.dumps({"machine": {}, "benches": [
        {"name": "old.row", "value": 1, "unit": "x", "baseline": None, "ratio": None, "target": None}]}))
    assert main(["--quick", "--out", str(out), "feed"]) == 0
    names = {r["name"] for r in json.loads(out.read_text())["benches"]}
    assert "old.row" in names and "feed.price_change_updates" in names


def test_unknown_bench_is_one_line_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["--out", str(tmp_path / "x.json"), "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pmm: ") and "nope" in err[0] and "journal" in err[0]
    assert main(["--bogus"]) == 2
    assert capsys.readouterr().err.strip().startswith("pmm: ")
    assert not (tmp_path / "x.json").exists()


def test_list_names_every_bench(capsys) -> None:
    assert main(["--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == list(BENCHES)


def test_result_targets_and_table() -> None:
    assert Result("a", 500.0, "us", target=1000.0).met is True  # durations: the target is a ceiling
    assert Result("a", 1500.0, "us", target=1000.0).met is False
    assert Result("a", 250.0, "MB", target=200.0).met is False
    assert Result("a", 300_000, "updates/s", target=200_000).met is True  # rates: the target is a floor
    assert Result("a", 10.0, "x", baseline=4.0).ratio == 2.5
    assert Result("skipped", None, "updates/s").met is None

    class Buf:
        text = ""

        def write(self, s: str) -> None:
            self.text += s

    buf = Buf()
    print_table([Result("a.b", 1500.0, "us", target=1000.0), Result("c", None, "x", note="skipped")], file=buf)
    assert "MISSED" in buf.text and "c: skipped" in buf.text
