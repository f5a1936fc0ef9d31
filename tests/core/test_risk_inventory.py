"""The risk gate with a starting inventory (``StartingInventory``: tokens the wallet held before the run).

Held tokens count as position for every check (max_position, insufficient_position, reduce-only, total exposure,
the loss limits); their cost is 1 dollar a share until the token's first valid mid, then that mid (rounded up), so
the run's PnL starts at 0. A start beyond ``max_position`` halts; an unreadable inventory halts. The stale-feed
clock waits for the market feed once the event has come. Absent the event, nothing changes (tests/core/test_risk.py).
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.base import InvariantError
from actors.core.risk import RiskGate
from events.control import KillSwitch, Tick, TradingState
from events.live import StartingInventory, TokenBalance
from events.market import FeedFrame, FeedStatus
from events.orders import CancelAll, Position
from events.risk import ReduceOnly
from tests.core.test_risk import SEC, GateHarness, S, approved, code, kill_sequence, params


def inventory(*held: tuple[str, int], ok: bool = True, detail: str = "") -> StartingInventory:
    return StartingInventory(balances=tuple(TokenBalance(token_id=t, balance=n) for t, n in held), ok=ok,
                             detail=detail)


def started(*held: tuple[str, int], books: bool = True, **risk: int) -> GateHarness:
    """RunStarted, then the inventory (the live boot order: before any feed event), then the feed and books."""
    h = GateHarness(params(**risk), books=False)
    h.send(inventory(*held), src="session")
    if books:
        h.send(FeedStatus(conn=1, state="connected"), src="feed")
        for token in ("Y", "Y2"):
            h.book(token, 470_000, 510_000)
        for token in ("N", "N2"):
            h.book(token, 490_000, 530_000)
    return h


# ---------------------------------------------------------------------------------------------- position checks
def test_buy_when_held_tokens_plus_buy_exceed_max_position_then_position_limit() -> None:
    h = started(("Y", 45 * S), max_position=50 * S)
    assert h.gate.position("Y") == 45 * S
    d = h.place(token="Y", side="BUY", size=10 * S)
    assert code(d) == "position_limit" and "55" in d.detail, d  # type: ignore[attr-defined]
    assert approved(h.place(token="Y", side="BUY", size=5 * S))  # exactly to the cap
    assert approved(h.place(token="N", side="BUY", size=10 * S))  # the other token is not held


def test_without_inventory_the_same_buy_is_approved() -> None:
    h = started(max_position=50 * S)
    assert approved(h.place(token="Y", side="BUY", size=10 * S))


def test_sell_of_held_tokens_is_allowed_up_to_what_is_held() -> None:
    h = started(("Y", 12 * S))
    assert approved(h.place(token="Y", side="SELL", price=520_000, size=10 * S))
    d = h.place(token="Y", side="SELL", price=530_000, size=3 * S)  # 10 open + 3 > 12 held
    assert code(d) == "insufficient_position"
    assert approved(h.place(token="Y", side="SELL", price=530_000, size=2 * S))


def test_sell_without_inventory_is_insufficient_position() -> None:
    h = started()
    assert code(h.place(token="Y", side="SELL", price=520_000, size=1 * S)) == "insufficient_position"


def test_reducing_lets_held_tokens_be_sold_and_refuses_buys() -> None:
    h = started(("Y", 10 * S))
    h.send(ReduceOnly(reason="test"), src="operator")
    assert code(h.place(token="Y", side="BUY", size=1 * S)) == "reducing_only"
    assert approved(h.place(token="Y", side="SELL", price=520_000, size=10 * S))


def test_zero_balances_and_unlisted_tokens_change_nothing_for_listed_tokens() -> None:
    h = started(("Y", 0), ("N", 0))
    assert h.gate.position("Y") == 0 and h.gate.total_exposure() == 0
    assert approved(h.place(token="Y", side="BUY", size=10 * S))


# ---------------------------------------------------------------------------------------------- exposure and PnL
def test_held_tokens_cost_one_dollar_until_marked_then_the_mid_rounded_up() -> None:
    h = started(("Y", 10 * S), books=False)
    assert h.gate.total_exposure() // S == 10 * S  # 10 shares at 1 dollar: the most they can cost
    assert h.gate.pnl() == 0  # unmarked long: worth 0, nothing paid
    h.send(FeedStatus(conn=1, state="connected"), src="feed")
    h.book("Y", 470_000, 510_001)  # mid 490_000.5: entered at 490_001
    assert h.gate.total_exposure() // S == 10 * 490_001
    assert -10 <= h.gate.pnl() <= 0  # starts at 0 (never a windfall)
    h.book("Y", 370_000, 410_000)  # the mark falls 0.1: the held shares lose 1 dollar
    assert h.gate.pnl() == (10 * S * 780_000 // 2 - 10 * S * 490_001) // S


def test_pnl_loss_on_held_tokens_trips_the_loss_limit() -> None:
    h = started(("Y", 40 * S), max_loss=5 * S, daily_loss=5 * S, reduce_loss=5 * S)
    assert h.gate.state == "ACTIVE"
    h.book("Y", 300_000, 340_000)  # mid 0.49 -> 0.32: 40 shares lose 6.8 dollars
    assert [k.reason for k in h.kills()] == ["loss_limit"]


def test_total_over_the_cap_at_start_refuses_buys_and_lets_held_tokens_be_sold() -> None:
    h = started(("Y", 30 * S), ("N", 30 * S), max_total_notional=20 * S)  # ~$29.70 held against $20
    assert h.gate.state == "ACTIVE"
    assert code(h.place(token="Y2", side="BUY", size=1 * S)) == "total_notional_limit"
    assert approved(h.place(token="Y", side="SELL", price=520_000, size=10 * S))
    assert approved(h.place(token="N", side="SELL", price=540_000, size=10 * S))


# ---------------------------------------------------------------------------------------------- halts
def test_start_beyond_max_position_halts_with_a_clear_reason() -> None:
    h = GateHarness(params(max_position=50 * S), books=False)
    out = h.send(inventory(("Y", 50 * S), ("N", 60 * S)), src="session")
    assert kill_sequence(out) == ["KillSwitch", "TradingState", "CancelAll"]
    [k] = h.kills()
    assert k.reason == "position_limit"
    assert "starting position 60.00 shares in N beyond 50.00 shares" in k.detail and "held before this run" in k.detail
    h.send(FeedStatus(conn=1, state="connected"), src="feed")
    h.book("N", 490_000, 530_000)
    assert code(h.place(token="N", side="SELL", price=540_000, size=10 * S)) == "halted"


def test_start_at_max_position_is_not_a_halt() -> None:
    h = started(("Y", 50 * S), max_position=50 * S)
    assert h.gate.state == "ACTIVE" and not h.kills()


def test_inventory_not_known_halts() -> None:
    h = GateHarness(books=False)
    out = h.send(inventory(ok=False, detail="cannot read the balance of Y"), src="session")
    assert [type(e).__name__ for e in out] == ["KillSwitch", "TradingState", "CancelAll"]
    assert out[0] == KillSwitch(reason="preflight_failed",
                                detail="starting inventory not known: cannot read the balance of Y")
    assert h.gate.position("Y") == 0


def test_a_second_inventory_or_one_after_fills_is_an_internal_error() -> None:
    h = started(("Y", 1 * S))
    with pytest.raises(InvariantError, match="second StartingInventory"):
        h.send(inventory(("Y", 1 * S)), src="session")
    h = GateHarness()
    h.hold("Y", 5 * S)
    with pytest.raises(InvariantError, match="after a fill"):
        h.send(inventory(("Y", 1 * S)), src="session")


def test_a_portfolio_position_at_start_agrees_and_changes_nothing() -> None:
    h = started(("Y", 10 * S), books=False)
    out = h.send(Position(token_id="Y", position=10 * S, cash=0, realized=0, mark=0, mtm=0), src="portfolio")
    assert out == [] and h.gate.state == "ACTIVE"


# ---------------------------------------------------------------------------------------------- stale-feed clock
def test_stale_clock_waits_for_the_feed_after_the_inventory_then_runs() -> None:
    h = GateHarness(params(feed_stale_ns=5 * SEC), books=False)
    h.send(inventory(), src="session")
    for _ in range(20):  # a slow start (heartbeat, user channel): 20 s with no feed event
        h.tick(1 * SEC)
    assert not h.kills() and h.gate.state == "ACTIVE"
    h.send(FeedStatus(conn=1, state="connecting"), src="feed", dt=SEC)  # the feed starts: the clock starts
    h.tick(5 * SEC)
    assert not h.kills()
    h.tick(1)
    assert [k.reason for k in h.kills()] == ["feed_stale"]


def test_stale_clock_restarts_on_the_first_frame_too() -> None:
    h = GateHarness(params(feed_stale_ns=5 * SEC), books=False)
    h.send(inventory(), src="session")
    h.tick(30 * SEC)
    h.send(FeedFrame(conn=1, text="PONG"), src="feed")
    h.tick(5 * SEC)
    assert not h.kills()


def test_without_the_inventory_the_stale_clock_runs_from_run_started() -> None:
    h = GateHarness(params(feed_stale_ns=5 * SEC), books=False)
    h.tick(5 * SEC + 1)
    assert [k.reason for k in h.kills()] == ["feed_stale"]


def test_inventory_after_the_feed_started_does_not_pause_the_clock() -> None:
    h = GateHarness(params(feed_stale_ns=5 * SEC), books=False)
    h.send(FeedStatus(conn=1, state="connected"), src="feed")
    h.send(inventory(), src="session")
    h.tick(5 * SEC + 1)
    assert [k.reason for k in h.kills()] == ["feed_stale"]


# ---------------------------------------------------------------------------------------------- properties
@settings(max_examples=150, deadline=None)
@given(held=st.integers(0, 80), buy=st.integers(1, 50), cap=st.integers(10, 80))
def test_a_buy_passes_iff_held_plus_buy_fits_the_cap(held: int, buy: int, cap: int) -> None:
    h = GateHarness(params(max_position=cap * S, max_order_size=50 * S, max_order_notional=1000 * S,
                           max_total_notional=1000 * S), books=False)
    h.send(inventory(("Y", held * S)), src="session")
    h.send(FeedStatus(conn=1, state="connected"), src="feed")
    h.book("Y", 470_000, 510_000)
    d = h.place(token="Y", side="BUY", size=buy * S)
    if held > cap:
        assert code(d) == "halted"
    elif held + buy <= cap:
        assert approved(d), d
    else:
        assert code(d) == "position_limit"


@settings(max_examples=150, deadline=None)
@given(held=st.integers(0, 60), sells=st.lists(st.integers(1, 30), min_size=1, max_size=5))
def test_sells_pass_iff_they_fit_in_what_is_held(held: int, sells: list[int]) -> None:
    h = started(("Y", held * S), max_order_size=50 * S, max_order_notional=1000 * S, max_position=100 * S)
    open_sells = 0
    for i, n in enumerate(sells):
        d = h.place(token="Y", side="SELL", price=520_000 + 10_000 * i, size=n * S)
        if open_sells + n <= held:
            assert approved(d), d
            open_sells += n
        else:
            assert code(d) == "insufficient_position"


def test_gate_with_inventory_is_deterministic() -> None:
    def run() -> list:
        h = started(("Y", 20 * S), ("N2", 7 * S))
        h.place(token="Y", side="SELL", price=520_000, size=5 * S)
        h.book("Y", 400_000, 440_000)
        h.send(Tick(), src="clock", dt=SEC)
        return h.out

    assert run() == run()
    assert all(not isinstance(e, (KillSwitch, CancelAll)) for e in run())
    assert [e for e in run() if isinstance(e, TradingState)] == [TradingState(state="ACTIVE", reason="run started")]


def test_gate_type_consumes_the_event() -> None:
    assert StartingInventory in RiskGate.consumes
