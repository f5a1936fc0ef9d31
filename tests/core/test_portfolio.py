"""The portfolio: cash, average-cost realized PnL, marks and mark-to-market, FAILED reversal."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.portfolio import Portfolio, fill_cash
from events.base import MICRO, Event
from events.codec import Envelope
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
