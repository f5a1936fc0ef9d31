"""The portfolio: cash, average-cost realized PnL, marks and mark-to-market, FAILED reversal, starting inventory."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.base import InvariantError
from actors.core.portfolio import Portfolio, fill_cash
from events.base import MICRO, Event
from events.codec import Envelope
from events.live import StartingInventory, TokenBalance
from events.market import BookChanged
from events.orders import Fill, Position
from events.params import CoreParams

SH = MICRO


class Pf:
    def __init__(self) -> None:
        self.p = Portfolio(CoreParams())
        self.seq = 0
        self.n = 0

    def send(self, ev: Event) -> list[Event]:
        self.seq += 1
        return list(self.p.step(self.seq, Envelope(ts_ns=1, src="exec", cause=0, ev=ev)))

    def fill(self, token: str, side: str, price: int, size: int, status: str = "CONFIRMED",
             trade_id: str | None = None) -> Position | None:
        if trade_id is None:
            self.n += 1
            trade_id = f"t{self.n}"
        out = self.send(Fill(client_id="c", token_id=token, side=side, price=price, size=size,  # type: ignore[arg-type]
                             trade_id=trade_id, status=status))  # type: ignore[arg-type]
        return out[0] if out else None  # type: ignore[return-value]

    def inventory(self, *held: tuple[str, int], ok: bool = True) -> list[Event]:
        return self.send(StartingInventory(balances=tuple(TokenBalance(token_id=t, balance=n) for t, n in held),
                                           ok=ok))

    def book(self, token: str, bid: int, ask: int, valid: bool = True) -> list[Event]:
        return self.send(BookChanged(token_id=token, epoch=0, valid=valid, best_bid=bid, bid_size=SH, best_ask=ask,
                                     ask_size=SH, tick=10_000))


def test_fill_cash_rounds_against_us() -> None:
    assert fill_cash("BUY", 333_333, 1) == -1  # 0.333333 micro-dollars costs 1
    assert fill_cash("SELL", 333_333, 1) == 0
    assert fill_cash("BUY", 470_000, 10 * SH) == -4_700_000
    assert fill_cash("SELL", 470_000, 10 * SH) == 4_700_000


def test_round_trip_realizes_the_spread() -> None:
    pf = Pf()
    p = pf.fill("Y", "BUY", 470_000, 10 * SH)
    assert p == Position(token_id="Y", position=10 * SH, cash=-4_700_000, realized=0, mark=470_000, mtm=0)
    pf.book("Y", 480_000, 500_000)  # mid 0.49
    p = pf.fill("Y", "SELL", 510_000, 4 * SH)
    assert (p.position, p.cash, p.realized) == (6 * SH, -4_700_000 + 2_040_000, 4 * 40_000)  # type: ignore[union-attr]
    assert p.mtm == p.cash + 6 * 490_000  # type: ignore[union-attr]
    p = pf.fill("Y", "SELL", 500_000, 6 * SH)
    assert (p.position, p.cash, p.realized, p.mtm) == (0, 340_000, 340_000, 340_000)  # type: ignore[union-attr]


def test_average_cost_over_two_buys() -> None:
    pf = Pf()
    pf.fill("Y", "BUY", 400_000, 10 * SH)
    pf.fill("Y", "BUY", 500_000, 10 * SH)  # average 0.45
    p = pf.fill("Y", "SELL", 600_000, 5 * SH)
    assert p.realized == 5 * 150_000  # type: ignore[union-attr]
    p = pf.fill("Y", "SELL", 300_000, 15 * SH)
    assert p.realized == 5 * 150_000 - 15 * 150_000 and p.position == 0  # type: ignore[union-attr]
    assert p.realized == p.cash  # type: ignore[union-attr]  # flat: everything realized, exactly


def test_flip_long_to_short_then_new_basis() -> None:
    pf = Pf()
    pf.fill("Y", "BUY", 400_000, 5 * SH)
    p = pf.fill("Y", "SELL", 500_000, 8 * SH)
    assert (p.position, p.realized) == (-3 * SH, 5 * 100_000)  # type: ignore[union-attr]
    p = pf.fill("Y", "BUY", 450_000, 3 * SH)  # cover the short sold at 0.50
    assert (p.position, p.realized) == (0, 5 * 100_000 + 3 * 50_000)  # type: ignore[union-attr]


def test_yes_no_pair_is_worth_a_dollar_through_marks() -> None:
    pf = Pf()
    pf.fill("Y", "BUY", 470_000, 10 * SH)
    pf.fill("N", "BUY", 510_000, 10 * SH)  # pair cost 0.98: locked edge 0.02 per pair
    (y,) = pf.book("Y", 480_000, 500_000)  # YES mid 0.49
    (n,) = pf.book("N", 500_000, 520_000)  # NO mid 0.51: the mirror
    assert y.mtm + n.mtm == 10 * 20_000  # type: ignore[union-attr]
    (y,) = pf.book("Y", 600_000, 620_000)  # the market moves: the pair's value does not
    (n,) = pf.book("N", 380_000, 400_000)
    assert y.mtm + n.mtm == 10 * 20_000  # type: ignore[union-attr]


def test_marks_emit_only_when_holding_and_changed() -> None:
    pf = Pf()
    assert pf.book("Y", 480_000, 500_000) == []  # flat: silent
    pf.fill("Y", "BUY", 470_000, 10 * SH)
    assert pf.book("Y", 480_000, 500_000) == []  # same mark
    assert pf.book("Y", 0, 500_000) == []  # one-sided: keeps the last mark
    assert pf.book("Y", 470_000, 490_000, valid=False) == []  # invalid: keeps the last mark
    (p,) = pf.book("Y", 470_000, 490_000)
    assert (p.mark, p.mtm) == (480_000, -4_700_000 + 4_800_000)  # type: ignore[union-attr]


def test_mark_before_any_book_is_last_fill_price() -> None:
    pf = Pf()
    p = pf.fill("N", "BUY", 333_333, 3 * SH)
    assert p.mark == 333_333  # type: ignore[union-attr]


def test_matched_then_confirmed_counts_once_and_failed_reverses() -> None:
    pf = Pf()
    pf.fill("Y", "BUY", 400_000, 10 * SH)
    p = pf.fill("Y", "BUY", 500_000, 10 * SH, status="MATCHED", trade_id="live1")
    assert p.position == 20 * SH  # type: ignore[union-attr]
    assert pf.fill("Y", "BUY", 500_000, 10 * SH, status="CONFIRMED", trade_id="live1") is None
    pf.fill("Y", "SELL", 600_000, 5 * SH)
    p = pf.fill("Y", "BUY", 500_000, 10 * SH, status="FAILED", trade_id="live1")
    assert (p.position, p.cash, p.realized) == (5 * SH, -4_000_000 + 3_000_000, 5 * 200_000)  # type: ignore[union-attr]
    assert pf.fill("Y", "BUY", 500_000, 10 * SH, status="FAILED", trade_id="never") is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Y", "N"]), st.sampled_from(["BUY", "SELL"]),
                          st.integers(1, 999_999), st.integers(1, 50 * SH)), max_size=30))
def test_property_positions_and_cash_are_sums_of_fills(trades: list[tuple[str, str, int, int]]) -> None:
    pf = Pf()
    pos: dict[str, int] = {}
    cash: dict[str, int] = {}
    last: dict[str, Position] = {}
    for token, side, price, size in trades:
        p = pf.fill(token, side, price, size)
        assert p is not None
        last[token] = p
        pos[token] = pos.get(token, 0) + (size if side == "BUY" else -size)
        cash[token] = cash.get(token, 0) + fill_cash(side, price, size)
    for token, p in last.items():
        assert (p.position, p.cash) == (pos[token], cash[token])
        if p.position == 0:
            assert p.realized == p.cash


# ---------------------------------------------------------------------------------------------- starting inventory
def test_inventory_is_a_position_with_no_cash_until_its_first_mark() -> None:
    pf = Pf()
    out = pf.inventory(("Y", 30 * SH), ("N", 0))
    assert out == [Position(token_id="Y", position=30 * SH, cash=0, realized=0, mark=0, mtm=0)]
    out = pf.book("Y", 470_000, 510_000)  # first mark 0.49: entered as bought there
    assert out == [Position(token_id="Y", position=30 * SH, cash=-14_700_000, realized=0, mark=490_000, mtm=0)]
    p = pf.book("Y", 370_000, 410_000)[0]  # the mark falls 0.10: 30 shares lose $3
    assert p.mtm == -3_000_000  # type: ignore[attr-defined]
    p = pf.fill("Y", "SELL", 500_000, 10 * SH)  # sold above the entry: realized against it
    assert (p.position, p.realized) == (20 * SH, 10 * 10_000)  # type: ignore[union-attr]


def test_inventory_pnl_never_starts_above_zero() -> None:
    pf = Pf()
    pf.inventory(("Y", 3 * SH + 1))
    p = pf.book("Y", 333_333, 333_336)[0]  # mid 333_334.5 -> 333_334; 3.000001 shares cost 1_000_002.333...
    assert p.cash == -1_000_003 and p.mtm == -1  # type: ignore[attr-defined]


def test_inventory_after_a_book_is_entered_at_once() -> None:
    pf = Pf()
    pf.book("Y", 470_000, 510_000)
    assert pf.inventory(("Y", 10 * SH)) == [
        Position(token_id="Y", position=10 * SH, cash=-4_900_000, realized=0, mark=490_000, mtm=0)]


def test_failed_fill_rebuild_keeps_the_inventory_and_its_entry() -> None:
    pf = Pf()
    pf.inventory(("Y", 10 * SH))
    pf.book("Y", 470_000, 510_000)
    pf.fill("Y", "BUY", 480_000, 5 * SH, status="MATCHED", trade_id="g")
    p = pf.fill("Y", "BUY", 480_000, 5 * SH, status="FAILED", trade_id="g")
    assert (p.position, p.cash, p.realized) == (10 * SH, -4_900_000, 0)  # type: ignore[union-attr]


def test_inventory_not_ok_changes_nothing_and_a_second_one_is_an_error() -> None:
    pf = Pf()
    assert pf.inventory(("Y", 10 * SH), ok=False) == []
    assert pf.p.accounts == {}
    with pytest.raises(InvariantError):
        pf.inventory(("Y", 10 * SH))


@settings(max_examples=200, deadline=None)
@given(held=st.integers(1, 80 * SH), bid=st.integers(1, 98), trades=st.lists(
    st.tuples(st.sampled_from(["BUY", "SELL"]), st.integers(1, 999_999), st.integers(1, 50 * SH),
              st.integers(0, 3)), max_size=15))
def test_property_inventory_is_a_buy_at_the_first_mark(held: int, bid: int,
                                                       trades: list[tuple[str, int, int, int]]) -> None:
    """Whatever follows, a run that started holding ``held`` shares is, from the token's first mark on, exactly a
    run that bought them at that mark: same position, cash, realized PnL and mark-to-market."""
    a, b = Pf(), Pf()
    a.inventory(("Y", held))
    a.book("Y", bid * 10_000, bid * 10_000 + 10_000)
    b.book("Y", bid * 10_000, bid * 10_000 + 10_000)
    b.fill("Y", "BUY", (2 * bid * 10_000 + 10_000) // 2, held, trade_id="start")
    for i, (side, price, size, fail_back) in enumerate(trades):
        pa = a.fill("Y", side, price, size, trade_id=f"x{i}", status="MATCHED")
        pb = b.fill("Y", side, price, size, trade_id=f"x{i}", status="MATCHED")
        assert pa == pb
        if fail_back == 0:  # a ghost fill: reversed
            assert a.fill("Y", side, price, size, trade_id=f"x{i}", status="FAILED") == \
                b.fill("Y", side, price, size, trade_id=f"x{i}", status="FAILED")
    assert a.p.position("Y") == b.p.position("Y")
