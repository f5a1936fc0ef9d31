"""config.json: validation messages (one line per problem), `pmm config init` and `pmm config check`."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from pmm.config import AppConfig, ConfigError, load_config, parse_config
from pmm.configcmd import config_main, semantic_problems

ROOT = Path(__file__).resolve().parent.parent


def problems(text: str | bytes) -> list[str]:
    raw = text.encode() if isinstance(text, str) else text
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "config.json")
    return info.value.problems


@pytest.mark.parametrize(("text", "line"), [
    ('{"risk": {"max_order_size": -1}}',
     "config.json: risk.max_order_size: must be a whole number >= 0, in micro-shares: 50000000 = 50 shares (got -1)"),
    ('{"risk": {"max_order_size": 50.0}}',
     "config.json: risk.max_order_size: must be a whole number >= 0, in micro-shares: 50000000 = 50 shares "
     "(got 50.0: write it without a decimal point)"),
    ('{"risk": {"max_order_size": "50"}}', 'config.json: risk.max_order_size: must be a whole number >= 0, '
     'in micro-shares: 50000000 = 50 shares (got "50")'),
    ('{"risk": {"daily_loss": true}}',
     "config.json: risk.daily_loss: must be a whole number >= 0, in micro-dollars: 20000000 = $20 (got true)"),
    ('{"quoter": {"spread": 2000000}}', "config.json: quoter.spread: must be a whole number from 0 to 1000000, "
     "in micro-dollars per share: 20000 = $0.02 (got 2000000)"),
    ('{"risk": {"feed_stale_ns": -5}}',
     "config.json: risk.feed_stale_ns: must be a whole number >= 0, in nanoseconds: 30000000000 = 30 s (got -5)"),
    ('{"risk": {"feed_stale_ns": 1000000000000000}}',
     "config.json: risk.feed_stale_ns: must be a whole number from 0 to 604800000000000, in nanoseconds: "
     "30000000000 = 30 s (got 1000000000000000)"),
    ('{"feed": {"ping_interval_s": 0}}',
     "config.json: feed.ping_interval_s: must be a number > 0 and <= 604800, in seconds (got 0)"),
    ('{"mode": "real"}', 'config.json: mode: must be one of "live", "paper", "shadow" (got "real")'),
    ('{"fills": null}', 'config.json: fills: must be one of "none", "sim" (got null)'),
    ('{"risk": {"max_ordr_size": 1}}', 'config.json: risk.max_ordr_size: unknown field (did you mean "max_order_size"?)'),
    ('{"colour": 1}', "config.json: colour: unknown field (allowed here: mode, fills, exchange, markets,"),
    ('{"risk": 5}', 'config.json: risk: must be an object {...} with fields like "max_order_size" (got a number)'),
    ('{"markets": {"condition_id": "0x1"}}', "config.json: markets: must be a list [...] (got an object {...})"),
    ('{"markets": [{"condition_id": 7}]}', "config.json: markets[0].condition_id: must be text in double quotes (got 7)"),
    ('{"quoter": {"use_microprice": "yes"}}',
     'config.json: quoter.use_microprice: must be true or false, without quotes (got "yes")'),
    ('{"auto_markets": 4}', "config.json: auto_markets: must be a whole number from 1 to 3 (got 4)"),
    ('[]', "config.json: must be one JSON object {...} (got a list [...])"),
    ('{"mode": "paper",}', "config.json: not valid JSON at line 1, column 18: Expecting property name enclosed in "
     "double quotes"),
    ('{\n  "mode": "paper"\n  "fills": "sim"\n}', "config.json: not valid JSON at line 3, column 3: Expecting ',' "
     "delimiter"),
    ('', "config.json: the file is empty (write {} for all the defaults, or run `pmm config init`)"),
    ('{"mode": "paper", "mode": "live"}', 'config.json: the field "mode" is given twice'),
    ('{\u201cmode\u201d: \u201cpaper\u201d}', "config.json: not valid JSON: it contains curly quotes"),
    (b'\xff{}', "config.json: not UTF-8 text (byte 0)"),
    ('{"supervisor": {"max_crashes": 0}}',
     "config.json: supervisor.max_crashes: must be a whole number from 1 to 1000 (got 0)"),
])
def test_one_clear_line_per_problem(text: str | bytes, line: str) -> None:
    (first,) = problems(text)
    assert "\n" not in first
    assert first.startswith(line), first


def test_every_problem_is_listed_and_the_message_names_the_first() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(b'{"risk": {"max_order_size": -1, "daily_loss": -5}, "tick_ms": 1, "nope": 0}', "c.json")
    assert [p.split(":")[1].strip() for p in info.value.problems] == [
        "risk.max_order_size", "risk.daily_loss", "tick_ms", "nope"]
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("c.json: risk.max_order_size:") and "(and 3 more problems" in msg


def test_a_private_key_pasted_into_a_field_is_not_echoed() -> None:
    key = "0x" + "ab" * 32
    (line,) = problems(json.dumps({"seed": key}))
    assert key[2:] not in line and "<64 hex digits hidden>" in line


def test_shapes_msgspec_accepts_are_accepted_and_what_it_refuses_is_described() -> None:
    """msgspec decides; the messages only describe. Walk every field with a few values of the wrong kind."""
    def walk(t, prefix=""):
        for f in t.fields:
            yield prefix + f.name, f.type
            if isinstance(f.type, msgspec.inspect.StructType):
                yield from walk(f.type, prefix + f.name + ".")

    def nest(path: str, value):
        obj = value
        for part in reversed(path.split(".")):
            obj = {part: obj}
        return obj

    for path, _t in walk(msgspec.inspect.type_info(AppConfig)):
        for value in (-1, 0, 1, 1.5, "x", True, None, [], {}, 10**20):
            raw = json.dumps(nest(path, value)).encode()
            try:
                msgspec.json.decode(raw, type=AppConfig)
                ok = True
            except msgspec.ValidationError:
                ok = False
            if ok:
                parse_config(raw)
            else:
                got = problems(raw)
                assert got and all(p.startswith(f"config.json: {path}") for p in got), (path, value, got)


def test_load_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such config file \(create one with `pmm config init`\)"):
        load_config(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="is a folder, not a config file"):
        load_config(tmp_path)
    bom = tmp_path / "bom.json"
    bom.write_bytes(b'\xef\xbb\xbf{"mode": "paper"}')
    assert load_config(bom).mode == "paper"


def test_the_defaults_are_safe() -> None:
    cfg = AppConfig()
    assert cfg.mode == "paper" and cfg.exchange.rest_url == ""  # paper, built-in sandbox
    assert cfg.risk.max_order_size <= 50_000_000 and cfg.risk.max_loss <= 20_000_000
    assert semantic_problems(cfg) == ([], [])


def test_semantic_problems() -> None:
    errors, _ = semantic_problems(AppConfig(mode="live"))
    assert errors == ['exchange.rest_url: live trading needs a real exchange (e.g. "https://clob.polymarket.com"); '
                      "empty means the built-in sandbox"]
    errors, _ = semantic_problems(parse_config(b'{"mode": "live", "exchange": {"rest_url": "https://x.example"}}'))
    assert errors == ["markets: live trading needs the markets named by condition id (auto is for a sandbox)"]
    local = b'{"mode": "live", "exchange": {"rest_url": "http://127.0.0.1:8080"}}'  # a sandbox run by hand
    assert semantic_problems(parse_config(local)) == ([], [])
    cfg = parse_config(b'{"markets": [{"condition_id": "0x12"}, {"condition_id": "' + b"0x" + b"a" * 64
                       + b'", "yes_token": "1"}], "exchange": {"sandbox_scenario": "nope"}}')
    errors, warnings = semantic_problems(cfg)
    assert errors[0] == 'markets[0].condition_id: must be 0x followed by 64 hex digits (got "0x12")'
    assert errors[1].startswith("markets[1]: give both yes_token and no_token")
    assert errors[2].startswith("exchange.sandbox_scenario: must be one of ") and "busy" in errors[2]
    assert warnings[0].startswith("markets: named by condition id, but no exchange.rest_url")
    _, warnings = semantic_problems(parse_config(b'{"risk": {"max_order_size": 50}}'))
    assert warnings[0] == ("risk.max_order_size: 50 is only 5e-05 shares: the unit is micro-shares "
                           "(did you mean 50000000 = 50 shares?)")


# ---------------------------------------------------------------- pmm config init / check
def run_config(*args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pmm.configcmd", *args], input=stdin, capture_output=True,
                          text=True, timeout=60, cwd=cwd)


def test_init_defaults_writes_a_valid_safe_file_and_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    res = run_config("init", "--defaults", "--path", str(path))
    assert res.returncode == 0, res.stderr
    cfg = load_config(path)
    assert cfg.mode == "paper" and cfg.exchange.rest_url == "" and cfg.markets == ()
    assert cfg.risk.max_order_size == 50_000_000 and cfg.risk.max_position == 200_000_000
    assert cfg.risk.daily_loss == 20_000_000
    assert cfg.risk == AppConfig().risk and cfg.quoter == AppConfig().quoter  # the defaults, exactly
    before = path.read_bytes()
    res = run_config("init", "--defaults", "--path", str(path))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "already exists" in res.stderr
    assert path.read_bytes() == before
    res = run_config("init", "--path", str(path), "--force", stdin="\n\n5\n\n\n")
    assert res.returncode == 0, res.stderr
    (backup,) = tmp_path.glob("config.json.bak-*")
    assert backup.read_bytes() == before
    assert load_config(path).risk.max_order_size == 5_000_000


def test_init_from_answers_on_stdin(tmp_path: Path) -> None:
    cid = "0x" + "1f" * 32
    res = run_config("init", "--path", str(tmp_path / "c.json"), stdin=f"live\n{cid}\n12.5\n100\n$50\n")
    assert res.returncode == 0, res.stderr
    cfg = load_config(tmp_path / "c.json")
    assert cfg.mode == "live" and [m.condition_id for m in cfg.markets] == [cid]
    assert cfg.exchange.rest_url == "https://clob.polymarket.com"
    assert (cfg.risk.max_order_size, cfg.risk.max_position, cfg.risk.daily_loss) == (12_500_000, 100_000_000,
                                                                                      50_000_000)
    assert cfg.quoter.size == 10_000_000 and cfg.risk.reduce_loss == 25_000_000
    assert semantic_problems(cfg)[0] == []
    assert "LIVE: real orders" in res.stdout

    # stdin ends early: the remaining questions take their defaults
    res = run_config("init", "--path", str(tmp_path / "d.json"), stdin="paper\n")
    assert res.returncode == 0 and load_config(tmp_path / "d.json").risk.max_order_size == 50_000_000


@pytest.mark.parametrize(("answers", "message"), [
    ("maybe\n", "answer paper or live"),
    ("live\nauto\n", "live mode needs markets named by condition id"),
    ("paper\n0x12\n", "is not a condition id"),
    ("paper\nauto\n-5\n", "must be between 0 and 1000000 shares"),
    ("paper\nauto\nfifty\n", "is not a number of shares"),
    ("paper\nauto\n1.0000001\n", "at most 6 decimals"),
])
def test_init_refuses_a_bad_answer_in_one_line(tmp_path: Path, answers: str, message: str) -> None:
    res = run_config("init", "--path", str(tmp_path / "c.json"), stdin=answers)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and message in res.stderr, res.stderr
    assert res.stderr.startswith("pmm: config init: ")
    assert not (tmp_path / "c.json").exists()


def test_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "config.json"
    good.write_text('{"risk": {"max_order_size": 20000000}}')
    assert config_main(["check", "--path", str(good)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK: {good}\n") and "order <= 20 shares" in out and "built-in sandbox" in out
    bad = tmp_path / "bad.json"
    bad.write_text('{"risk": {"max_order_size": -1, "max_loss": "x"}, "mode": "live"}')
    assert config_main(["check", "--path", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith(f"pmm: {bad}: risk.") for line in err)
    assert config_main(["check", "--path", str(tmp_path / "none.json")]) == 2
    assert "no such config file" in capsys.readouterr().err
    assert config_main(["frobnicate"]) == 2
    assert capsys.readouterr().err.startswith("pmm: config: argument init|check: invalid choice: 'frobnicate'")


def test_docs_describe_every_field() -> None:
    doc = (ROOT / "docs" / "config.md").read_text()

    def walk(t, prefix=""):
        for f in t.fields:
            if isinstance(f.type, msgspec.inspect.StructType):
                yield from walk(f.type, prefix + f.name + ".")
            else:
                yield prefix + f.name
            if isinstance(f.type, msgspec.inspect.VarTupleType) and isinstance(
                    f.type.item_type, msgspec.inspect.StructType):
                yield from walk(f.type.item_type, prefix + f.name + "[].")

    missing = [p for p in walk(msgspec.inspect.type_info(AppConfig)) if f"`{p}`" not in doc]
    assert not missing, f"docs/config.md does not describe: {missing}"
    assert re.search(r"micro-dollars", doc) and re.search(r"micro-shares", doc) and "nanoseconds" in doc


# ---------------------------------------------------------------- storage (disk space)
def test_storage_fields_are_checked_like_the_others(tmp_path: Path) -> None:
    cases = {
        '{"storage": {"keep_runs": 0}}': "storage.keep_runs: must be a whole number from 1 to 100000 (got 0)",
        '{"storage": {"max_journal_gb": 0}}': "storage.max_journal_gb: must be a number > 0 and <= 1000000 (got 0)",
        '{"storage": {"min_free_gb": -1}}': "storage.min_free_gb: must be a number from 0 to 1000000 (got -1)",
        '{"storage": {"check_interval_s": 0.5}}': "storage.check_interval_s: must be a number from 1 to 600, in "
                                                  "seconds (got 0.5)",
        '{"storage": {"keep_run": 3}}': 'storage.keep_run: unknown field (did you mean "keep_runs"?)',
        '{"storage": 20}': 'storage: must be an object {...} with fields like "keep_runs" (got a number)',
    }
    for raw, message in cases.items():
        with pytest.raises(ConfigError) as exc:
            parse_config(raw.encode())
        assert exc.value.problems == [f"config.json: {message}"], raw
    cfg = parse_config(b'{"storage": {"keep_runs": 5, "max_journal_gb": 2.5, "min_free_gb": 0}}')
    assert (cfg.storage.keep_runs, cfg.storage.max_journal_gb, cfg.storage.min_free_gb) == (5, 2.5, 0)
    errors, warnings = semantic_problems(cfg)
    assert errors == [] and any(w.startswith("storage.min_free_gb: 0 turns the free-space check off") for w in warnings)


def test_init_asks_for_the_journal_space_and_check_shows_the_storage(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    res = run_config("init", "--path", str(path), stdin="paper\nauto\n\n\n\n5.5\n")
    assert res.returncode == 0, res.stderr
    cfg = load_config(path)
    assert cfg.storage.max_journal_gb == 5.5 and cfg.storage.keep_runs == 30 and cfg.storage.min_free_gb == 2
    assert json.loads(path.read_text())["storage"] == {"keep_runs": 30, "max_journal_gb": 5.5, "min_free_gb": 2}
    res = run_config("check", "--path", str(path))
    assert res.returncode == 0
    assert ("  disk      journals in journals/: keep the last 30 runs, at most 5.5 GB; stop cleanly below 2 GB free"
            in res.stdout)
    res = run_config("init", "--path", str(tmp_path / "bad.json"), stdin="paper\nauto\n\n\n\n0.5\n")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "must be between 1 and 100000 GB" in res.stderr
    res = run_config("init", "--defaults", "--path", str(tmp_path / "d.json"))
    assert res.returncode == 0 and load_config(tmp_path / "d.json").storage == AppConfig().storage
