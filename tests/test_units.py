"""events.units: exact, readable text for micro-units and nanoseconds (used in journaled risk details)."""
from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from events.units import decimal, duration, price, shares, usd


def test_examples() -> None:
    assert usd(-21_687_500) == "-$21.6875" and usd(20_000_000) == "$20.00" and usd(0) == "$0.00"
    assert usd(-5) == "-$0.000005"
    assert shares(12_500_000) == "12.50 shares" and shares(-3_250_000) == "-3.25 shares"
    assert price(470_000) == "0.47" and price(5_000) == "0.005" and price(1_000_000) == "1.00"
    assert duration(250_000_000) == "250 ms" and duration(30 * 10**9) == "30 s" and duration(1_500_000_000) == "1.5 s"
    assert duration(120 * 10**9) == "2 min" and duration(90 * 60 * 10**9) == "1 h 30 min" and duration(61 * 10**9) == "61 s"
    assert duration(1_500_000) == "1.5 ms"


@given(st.integers(-(10**18), 10**18))
def test_decimal_is_exact(micro: int) -> None:
    text = decimal(micro)
    assert Decimal(text) == Decimal(micro) / 1_000_000
    assert len(text.split(".")[1]) >= 2 and (text.endswith("00") or not text.endswith("0") or len(text.split(".")[1]) == 2)


@given(st.integers(0, 10**15))
def test_duration_never_loses_more_than_a_microsecond(ns: int) -> None:
    text = duration(ns)
    parts = text.split()
    if parts[-1] == "ms":
        assert Decimal(parts[0]) * 1_000_000 == ns
    elif parts[-1] == "s":
        assert 0 <= ns - Decimal(parts[0]) * 10**9 < 1000
    else:  # whole minutes (and hours)
        assert ns % (60 * 10**9) == 0
