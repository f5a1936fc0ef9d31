"""`pmm chaos`: deterministic schedules, invariant checkers that catch planted violations, and a short real sweep
(2 runs x 20 s of paper trading against the sandbox, with kill -9, ENOSPC, a half-open socket and a clock jump)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from events.codec import Envelope
from events.control import KillSwitch, RunStarted
from events.live import StartingInventory, TokenBalance
from events.market import BookChanged
from events.orders import Fill, OrderIntent, Position, RiskApproved
from events.params import CoreParams, MarketParams
from pmm.chaos import (
    FAULT_KINDS,
    FEED_STALE_S,
    INVARIANTS,
    KILL_SLACK_S,
    ONE_PER_RUN,
    _window,
    chaos_main,
    check_limits,
    check_no_open,
    check_no_place_after_halt,
    check_positions,
    kinds_for,
    live_available,
    make_schedule,
    positions_moved,
    scan_for_secrets,
    secret_strings,
)

ROOT = Path(__file__).resolve().parent.parent
M = MarketParams(condition_id="0xc0", yes_token="111", no_token="222")
PARAMS = CoreParams(markets=(M,), fills="sim")


# ------------------------------------------------------------------------------------------- schedules


def test_same_seed_gives_the_same_schedule_and_other_seeds_differ() -> None:
    for seed in (0, 1, 7, 12345):
        a, b = make_schedule(seed, 60.0), make_schedule(seed, 60.0)
        assert a == b and a.digest == b.digest and a.lines() == b.lines()
    digests = {make_schedule(s, 60.0).digest for s in range(30)}
    assert len(digests) == 30


def test_schedule_only_prints_the_same_schedule_in_two_processes() -> None:
    cmd = [sys.executable, "-m", "pmm.chaos", "--seed", "5", "--runs", "3", "--duration", "45", "--schedule-only"]
    one = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True).stdout
    two = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert one == two and one.count("schedule ") == 3


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_schedules_respect_the_modes_the_windows_and_the_limits(mode: str) -> None:
    seen: set[str] = set()
    for seed in range(200):
        s = make_schedule(seed, 60.0, mode)
        kinds = [f.kind for f in s.faults]
        seen.update(kinds)
        assert set(kinds) <= set(kinds_for(mode))
        for kind, most in ONE_PER_RUN.items():
            assert kinds.count(kind) <= most
        for f in s.faults:
            lo, hi = _window(f.kind, 60.0, mode)
            assert lo <= f.at_s <= hi
            if f.kind == "half_open":  # nothing else disruptive while the kill switch is expected
                others = [g for g in s.faults if g is not f and g.kind in ("disconnect", "half_open", "kill9", "enospc")
                          and -4.0 < g.at_s - f.at_s < FEED_STALE_S + KILL_SLACK_S + 1.0]
                assert not others, (seed, f, others)
        assert s.faults == tuple(sorted(s.faults, key=lambda f: (f.at_s, f.kind)))
    assert seen == set(kinds_for(mode))  # every kind of the mode is drawn somewhere in 200 seeds
    if mode == "paper":
        assert not seen & {k for k, v in FAULT_KINDS.items() if v.modes == ("live",)}


def test_arguments_errors_are_one_line_and_live_mode_refuses_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--runs", "0"], ["--duration", "3"], ["--seed", "-1"], ["--mode", "shadow"], ["--bogus"]):
        assert chaos_main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("pmm: chaos: ") and "\n" not in err, err
    if not live_available():
        assert chaos_main(["--mode", "live"]) == 2
        err = capsys.readouterr().err.strip()
        assert "live mode not available yet" in err and "\n" not in err
    assert chaos_main(["--mode", "live", "--schedule-only", "--duration", "60", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "schedule " in out


# ------------------------------------------------------------------------------------------- checkers


def _records(*events: tuple[str, object]) -> list[tuple[int, Envelope]]:
    return [(i, Envelope(ts_ns=10 + i, src=src, cause=0 if src in ("session", "feed") else 1, ev=ev))
            for i, (src, ev) in enumerate(events, 1)]


def _start() -> tuple[str, object]:
    return ("session", RunStarted(run_id="r", mode="paper", version="t", seed=1, config_hash="h", params=PARAMS))


def _book() -> tuple[str, object]:
    return ("book", BookChanged(token_id="111", epoch=1, valid=True, best_bid=400_000, bid_size=10**8,
                                best_ask=420_000, ask_size=10**8, tick=10_000))


def _intent(cid: str, price: int, size: int = 10_000_000, side: str = "BUY", token: str = "111") -> tuple[str, object]:
    return ("orders", OrderIntent(client_id=cid, condition_id="0xc0", token_id=token, side=side, price=price, size=size))


def test_limits_checker_passes_a_good_place_and_catches_every_planted_violation() -> None:
    good = _records(_start(), _book(), _intent("a", 400_000), ("risk", RiskApproved(intent_seq=3, client_id="a")))
    assert check_limits(good) == []
    bad = _records(_start(), _book(),
                   _intent("b", 700_000), ("risk", RiskApproved(intent_seq=3, client_id="b")),           # band, cross
                   _intent("c", 405_000), ("risk", RiskApproved(intent_seq=5, client_id="c")),           # off tick
                   _intent("d", 300_000, size=10**9), ("risk", RiskApproved(intent_seq=7, client_id="d")),  # size
                   _intent("e", 300_000, token="999"), ("risk", RiskApproved(intent_seq=9, client_id="e")),  # allowlist
                   _intent("f", 410_000, side="SELL"), ("risk", RiskApproved(intent_seq=11, client_id="f")),  # not held
                   ("orders", RiskApproved(intent_seq=3, client_id="b")))                                # forged source
    problems = "\n".join(check_limits(bad))
    for needle in ("above mid", "crosses the best ask", "off the tick grid", "size outside", "not in the allowlist",
                   "sells more than held", "approval from 'orders'"):
        assert needle in problems, (needle, problems)


def test_no_open_positions_and_halt_checkers_catch_planted_violations() -> None:
    recs = _records(_start(), _book(), _intent("a", 400_000), ("risk", RiskApproved(intent_seq=3, client_id="a")),
                    ("exec", Fill(client_id="a", token_id="111", side="BUY", price=400_000, size=4_000_000, trade_id="t")),
                    ("portfolio", Position(token_id="111", position=5_000_000, cash=-1_600_000, realized=0,
                                           mark=410_000, mtm=0)),
                    ("risk", KillSwitch(reason="feed_stale")), _intent("z", 390_000),
                    ("risk", RiskApproved(intent_seq=8, client_id="z")))
    assert any("still open" in p for p in check_no_open(recs))
    problems, fills, failed = check_positions(recs)
    assert fills == 1 and failed == 0 and problems and "fills say 4000000" in problems[0]
    halt, reasons = check_no_place_after_halt(recs)
    assert reasons == ["feed_stale"] and halt and "approved after the halt" in halt[0]
    # a FAILED fill is reversed: the position must go back to 0
    reversed_ = _records(_start(), ("exec", Fill(client_id="a", token_id="111", side="BUY", price=400_000, size=10,
                                                 trade_id="t", status="MATCHED")),
                         ("exec", Fill(client_id="a", token_id="111", side="BUY", price=400_000, size=10, trade_id="t",
                                       status="FAILED")),
                         ("portfolio", Position(token_id="111", position=0, cash=0, realized=0, mark=0, mtm=0)))
    assert check_positions(reversed_)[0] == []


def test_position_and_limit_checkers_count_a_starting_inventory() -> None:
    """Held at start (live): part of the position at once, entered as a buy at the first valid mid (rounded up);
    its shares may be sold."""
    held = ("session", StartingInventory(balances=(TokenBalance(token_id="111", balance=5_000_000),)))
    recs = _records(_start(), held, _book(),
                    ("portfolio", Position(token_id="111", position=5_000_000, cash=-2_050_000, realized=0,
                                           mark=410_000, mtm=0)),
                    _intent("s", 430_000, size=5_000_000, side="SELL"),
                    ("risk", RiskApproved(intent_seq=5, client_id="s")))
    assert check_positions(recs)[0] == []
    assert check_limits(recs) == []
    windfall = Position(token_id="111", position=5_000_000, cash=0, realized=0, mark=410_000, mtm=2_050_000)
    wrong = [*recs[:3], (4, msgspec.structs.replace(recs[3][1], ev=windfall))]
    assert "fills say 5000000 / -2050000" in check_positions(wrong)[0][0]


def test_a_positions_refusal_after_a_kill_is_explained_and_the_next_start_accepts() -> None:
    err = ("pmm: starting inventory: positions differ from the end of run r0: token 5988…: expected 0.00 shares, "
           "found 5.00 shares (tolerance 0.00 shares): fills happened while pmm was not watching? …")
    assert positions_moved(err, ["kill9"]) == (True, True)
    assert positions_moved(err, ["duration", "halted"]) == (True, False)  # unexplained: a problem, still accepted
    assert positions_moved("pmm: starting inventory: cannot read the balance of token 1: HTTP 500", ["kill9"]) == (
        False, False)


def test_secret_scan_finds_the_key_in_any_case_and_the_creds(tmp_path: Path) -> None:
    secrets = secret_strings()
    (tmp_path / "clean.txt").write_text("nothing here")
    assert scan_for_secrets([tmp_path], secrets) == []
    (tmp_path / "log.err").write_text("oops 0x" + secrets["private key"].upper())
    (tmp_path / "status.json").write_text(json.dumps({"k": secrets["api secret"]}))
    found = scan_for_secrets([tmp_path], secrets)
    assert any("private key" in f for f in found) and any("api secret" in f for f in found)


# ------------------------------------------------------------------------------------------- clock jump


def test_the_chaos_clock_jumps_the_edge_clock_module_and_wallclock_ignores_the_step(monkeypatch) -> None:
    import actors.edge.clock as clock_module
    from pmm.chaos_child import ENV_AT, ENV_BY, install_from_env

    real = clock_module.time
    try:
        assert install_from_env({}) is None and clock_module.time is real
        before = clock_module.WallClock()
        shim = install_from_env({ENV_AT: "0", ENV_BY: "-3600"})
        assert shim is not None and clock_module.time is shim
        assert abs(shim.time_ns() - (real.time_ns() - 3600 * 10**9)) < 10**9  # the wall clock stepped back 1 h
        after = clock_module.WallClock()
        # event time started before the step does not move with it (regression: it froze for an hour)
        assert abs(before.now_ns() - real.time_ns()) < 10**9
        assert abs(after.now_ns() - (real.time_ns() - 3600 * 10**9)) < 10**9  # a process started after it sees it
        t1 = before.now_ns()
        assert before.now_ns() >= t1
    finally:
        monkeypatch.setattr(clock_module, "time", real)


# ------------------------------------------------------------------------------------------- a real sweep


def test_short_fixed_seed_sweep_passes_every_invariant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Seeds 33 and 34, 20 s each: kill -9 + restart and ENOSPC + restart in the first (edge scenario: tick-size
    changes), a half-open socket with a backward clock jump in its stale window in the second."""
    out = tmp_path / "chaos"
    rc = chaos_main(["--seed", "33", "--runs", "2", "--duration", "20", "--out", str(out)])
    text = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    runs = summary["runs"]
    assert rc == 0, text[-4000:]
    assert [r["seed"] for r in runs] == [33, 34] and all(r["ok"] for r in runs)
    for r in runs:
        assert set(r["checks"]) == set(INVARIANTS)
        assert all(c["status"] in ("PASS", "n/a") for c in r["checks"].values())
        assert r["schedule"] == make_schedule(r["seed"], 20.0).to_json()
        assert len(r["sessions"]) >= 2  # every run here restarts the trading process at least once
    first, second = runs
    causes = [s["cause"] for s in first["sessions"]]
    assert "kill9" in causes
    if not any("cannot mount" in n for n in first["notes"]):
        assert "enospc" in causes
        assert any("fail-stop after" in n for n in first["checks"]["kill-switch"]["notes"])
    assert first["checks"]["no-open"]["status"] == "PASS" and second["checks"]["kill-switch"]["status"] == "PASS"
    assert any("half_open" in n and "kill switch feed_stale" in n for n in second["checks"]["kill-switch"]["notes"])
    assert "seed  scenario" in text and "all invariants hold in 2 run(s)" in text
    assert "schedule " + make_schedule(33, 20.0).digest in text  # the schedule is printed


@pytest.mark.skipif(not live_available(), reason="this build has no `pmm live`")
def test_short_live_run_passes_every_invariant_from_the_venue_records(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Seed 424, 30 s of `pmm live` against the sandbox: kill -9 + restart, a ghost fill, heartbeats failing (kill
    switch expected within the heartbeat period), an engine restart (425) and a lost submit reply. Invariants 1
    and 2 come from the sandbox's audit and open orders."""
    out = tmp_path / "chaos"
    rc = chaos_main(["--seed", "424", "--runs", "1", "--duration", "30", "--mode", "live", "--out", str(out)])
    text = capsys.readouterr().out
    [run] = json.loads((out / "summary.json").read_text())["runs"]
    assert rc == 0 and run["ok"], text[-4000:]
    assert run["schedule"] == make_schedule(424, 30.0, "live").to_json()
    assert "kill9" in [s["cause"] for s in run["sessions"]]
    assert run["stats"]["venue_orders_accepted"] > 0 and (out / "seed-424" / "audit.json").exists()
    assert any("heartbeat_fail" in n and "heartbeat_failed" in n for n in run["checks"]["kill-switch"]["notes"])
    assert all(s["cause"] != "crash" for s in run["sessions"])
    # the API key is only in the sandbox's own audit trail, in no file the trading process wrote
    assert all(n.startswith("api key found in ") and n.endswith("audit.json") for n in run["checks"]["secrets"]["notes"])
