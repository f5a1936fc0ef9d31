"""The starting inventory's edge side (``actors.edge.inventory``): reading a balance answer, what the previous run
of this wallet ended with (from real journals written by the real core), and the tolerance judgement."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.edge.exchange import ExchangeError
from actors.edge.inventory import KnownPositions, judge, parse_balance, previous_positions
from events.base import MICRO
from events.live import LiveIdentity, OrderSigned, StartingInventory, StartupCleanup, TokenBalance
from events.orders import Fill
from events.params import CoreParams, MarketParams
from replay.harness import ScriptedSession

S = MICRO
M = MarketParams(condition_id="m1", yes_token="Y", no_token="N", tick=10_000, min_order_size=1 * S)
ADDRESS = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"
EXCHANGE = "http://127.0.0.1:1"


# ---------------------------------------------------------------------------------------------- balances
@pytest.mark.parametrize(("raw", "want"), [("0", 0), ("12500000", 12_500_000), ("7.0", 7), (30_000_000, 30_000_000)])
def test_parse_balance_reads_base_units(raw: object, want: int) -> None:
    assert parse_balance({"balance": raw, "allowances": {}}, "Y") == want


@pytest.mark.parametrize("raw", [None, "", "12.5", "-1", "1e6", "\uff11\uff12", True, 1.5, "0x10", "12 ", str(10**16),
                                 10**15 + 1, -3])
def test_parse_balance_refuses_anything_else_with_one_line(raw: object) -> None:
    with pytest.raises(ExchangeError) as exc:
        parse_balance({"balance": raw}, "Y")
    assert "token Y" in str(exc.value) and "\n" not in str(exc.value)


def test_parse_balance_refuses_a_missing_field() -> None:
    with pytest.raises(ExchangeError, match="unreadable balance"):
        parse_balance({"allowances": {}}, "Y")


# ---------------------------------------------------------------------------------------------- judgement
def bal(**held: int) -> tuple[TokenBalance, ...]:
    return tuple(TokenBalance(token_id=t, balance=n) for t, n in held.items())


def test_judge_without_a_known_previous_run_is_ok_and_says_so() -> None:
    inv = judge(bal(Y=5 * S, N=0), KnownPositions(), 0)
    assert inv.ok and inv.expected == () and inv.expected_run == ""
    assert inv.detail == "holds 5.00 shares of Y; not compared: no earlier run of this wallet"


def test_judge_when_balances_match_the_previous_end_then_ok() -> None:
    inv = judge(bal(Y=5 * S, N=0), KnownPositions("r1", {"Y": 5 * S, "N": 0}, "as run r1 ended"), 0)
    assert inv.ok and inv.expected == bal(Y=5 * S, N=0) and inv.expected_run == "r1"


def test_judge_when_a_balance_differs_beyond_tolerance_then_refused_naming_token_expected_found() -> None:
    inv = judge(bal(Y=13 * S, N=0), KnownPositions("r1", {"Y": 10 * S, "N": 0}, ""), 2 * S)
    assert not inv.ok
    assert "token Y: expected 10.00 shares, found 13.00 shares (tolerance 2.00 shares)" in inv.detail
    assert "--accept-positions" in inv.detail and "\n" not in inv.detail
    assert judge(bal(Y=12 * S, N=0), KnownPositions("r1", {"Y": 10 * S, "N": 0}, ""), 2 * S).ok


def test_judge_when_accepted_then_ok_and_the_difference_is_kept() -> None:
    inv = judge(bal(Y=13 * S), KnownPositions("r1", {"Y": 10 * S}, ""), 0, accept=True)
    assert inv.ok and "expected 10.00 shares, found 13.00 shares" in inv.detail and "accepted" in inv.detail


@given(expected=st.integers(0, 10**9), found=st.integers(0, 10**9), tol=st.integers(0, 10**8))
def test_judge_refuses_iff_the_difference_exceeds_the_tolerance(expected: int, found: int, tol: int) -> None:
    inv = judge(bal(Y=found), KnownPositions("r", {"Y": expected}, ""), tol)
    assert inv.ok is (abs(found - expected) <= tol)


# ---------------------------------------------------------------------------------------------- previous runs
def live_run(root: Path, name: str, *, address: str = ADDRESS, inventory: StartingInventory | None = None,
             fill: int = 0, mode: str = "live") -> None:
    """A journal as ``pmm live`` writes one, through the real core: identity, cleanup, inventory, maybe a fill."""
    s = ScriptedSession(CoreParams(markets=(M,), fills="live"), run_id=name, mode=mode, journal_dir=root / name)
    s.at(0, "session", LiveIdentity(address=address, exchange=EXCHANGE))
    s.at(0, "session", StartupCleanup(found=(), cancelled=(), remaining=(), ok=True))
    if inventory is not None:
        s.at(0, "session", inventory)
    if fill:  # a fill of ours as the user channel reports it: the core's portfolio turns it into a Position
        s.at(1, "exec", OrderSigned(client_id="c1", intent_seq=1, order_hash="0x01", salt=1, timestamp_ms=1))
        s.at(1, "exec", Fill(client_id="c1", token_id="Y", side="BUY", price=500_000, size=fill, trade_id="t1"))
    s.close()


def known(root: Path, address: str = ADDRESS) -> KnownPositions:
    return previous_positions(root, address=address, funder="", exchange=EXCHANGE)


def test_previous_positions_are_the_inventory_updated_by_the_last_positions(tmp_path: Path) -> None:
    live_run(tmp_path, "20240101-000000-live-1", inventory=StartingInventory(balances=bal(Y=10 * S, N=4 * S)),
             fill=3 * S)
    k = known(tmp_path)
    assert k.run == "20240101-000000-live-1" and k.positions == {"Y": 13 * S, "N": 4 * S}


def test_previous_positions_skip_refused_starts_other_wallets_and_other_modes(tmp_path: Path) -> None:
    live_run(tmp_path, "20240101-000000-live-1", inventory=StartingInventory(balances=bal(Y=10 * S, N=0)))
    live_run(tmp_path, "20240101-000100-live-2", inventory=StartingInventory(balances=bal(Y=13 * S, N=0), ok=False))
    live_run(tmp_path, "20240101-000200-live-3")  # refused before its inventory (preflight): traded nothing
    live_run(tmp_path, "20240101-000300-live-4", address="0x" + "ab" * 20,
             inventory=StartingInventory(balances=bal(Y=99 * S, N=0)))
    live_run(tmp_path, "20240101-000400-paper-5", mode="paper")
    k = known(tmp_path)
    assert k.run == "20240101-000000-live-1" and k.positions == {"Y": 10 * S, "N": 0}
    assert k.skipped == ["20240101-000200-live-3", "20240101-000100-live-2"]


def test_previous_positions_unknown_after_a_run_that_traded_without_an_inventory(tmp_path: Path) -> None:
    live_run(tmp_path, "20240101-000000-live-1", inventory=StartingInventory(balances=bal(Y=10 * S, N=0)))
    live_run(tmp_path, "20240101-000100-live-2", fill=2 * S)  # recorded before StartingInventory existed
    k = known(tmp_path)
    assert k.positions is None and "traded without recording its starting positions" in k.note


def test_previous_positions_unknown_when_nothing_or_unreadable(tmp_path: Path) -> None:
    assert known(tmp_path / "missing").positions is None
    live_run(tmp_path, "20240101-000000-live-1", inventory=StartingInventory(balances=bal(Y=10 * S, N=0)))
    bad = tmp_path / "20240101-000100-live-2"
    bad.mkdir()
    (bad / "seg-00000000000000000001.pmj").write_bytes(b"not a journal at all, not at all")
    k = known(tmp_path)
    assert k.positions is None and "cannot be read" in k.note
