"""The error-rate breaker and cancels that lost a race: a cancel the venue refused because the order was already
matched (or, an earlier cancel being first, is not found / already canceled) is a normal event for a market maker,
not an exchange error. Every other failure still counts, unknown outcomes included, and a journal recorded before
the executor marked such replies (``status=""``) replays as it did."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.risk import NOT_CANCELED, lost_cancel_race
from actors.sink.executor import gone_reason
from events.orders import ExchangeReply
from sandbox.engine import ALREADY_MATCHED, NOT_FOUND
from tests.core.test_risk import SEC, GateHarness, params

POLYMARKET = "already canceled or matched"  # Polymarket's not_canceled reason (docs/polymarket-protocol.md 3.3)
RACES = [ALREADY_MATCHED, NOT_FOUND, POLYMARKET, "order not found", "Order already filled"]


def race(cid: str, message: str = ALREADY_MATCHED) -> ExchangeReply:
    return ExchangeReply(client_id=cid, op="cancel", ok=False, order_id="0xab", status=NOT_CANCELED, message=message)


# (reply, counted by the breaker?) -- ``counted`` is this test's own verdict, written out, not computed by the code
CATALOG: list[tuple[ExchangeReply, bool]] = [
    *[(race("c", m), False) for m in RACES],
    # the same venue text in a journal recorded before the executor set status: counted, as it was then
    (ExchangeReply(client_id="c", op="cancel", ok=False, order_id="0xab", message=ALREADY_MATCHED), True),
    # a reason that is not a race, a cancel that got no answer, a place the venue refused, an unknown outcome
    (race("c", "owner mismatch"), True),
    (race("c", "Trading is currently cancel-only"), True),
    (ExchangeReply(client_id="c", op="cancel", ok=False, message="cancel failed: DELETE /order: HTTP 503 busy"), True),
    (ExchangeReply(client_id="c", op="cancel", ok=False, message="not cancelled"), True),
    (ExchangeReply(client_id="c", op="cancel", ok=False, status="unknown", message=ALREADY_MATCHED), True),
    (ExchangeReply(client_id="c", op="place", ok=False, status="rejected", message="HTTP 400 order invalid"), True),
    (ExchangeReply(client_id="c", op="place", ok=False, status="unknown", message="no answer to POST /order"), True),
    (ExchangeReply(client_id="c", op="place", ok=False, status=NOT_CANCELED, message=ALREADY_MATCHED), True),
    (ExchangeReply(client_id="c", op="cancel_all", ok=False, message="cancel-all: could not confirm"), True),
    # successes never count
    (ExchangeReply(client_id="c", op="cancel", ok=True, status="cancelled", message=f"venue: {NOT_FOUND}"), False),
]


@pytest.mark.parametrize(("reply", "counted"), CATALOG, ids=[f"{r.op}-{r.status or 'none'}-{r.message[:24]}"
                                                              for r, _ in CATALOG])
def test_which_failed_replies_are_lost_races(reply: ExchangeReply, counted: bool) -> None:
    assert lost_cancel_race(reply) is (not counted and not reply.ok)


def test_cancels_that_lost_races_never_trip_the_breaker_other_failures_still_do() -> None:
    h = GateHarness(params(error_burst=3, error_window_ns=60 * SEC))
    for i, m in enumerate(RACES * 4):  # 20 lost races within a minute: no halt
        h.send(race(f"r{i}", m), src="exec", dt=SEC)
    assert h.kills() == []
    for i in range(3):
        h.send(ExchangeReply(client_id=f"x{i}", op="cancel", ok=False, message="cancel failed: HTTP 500"), src="exec")
    assert [k.reason for k in h.kills()] == ["error_rate"]
    assert "3 failed exchange replies" in h.kills()[0].detail


def test_an_old_journals_matched_cancel_still_counts() -> None:
    h = GateHarness(params(error_burst=3, error_window_ns=60 * SEC))
    for i in range(3):  # as the executor wrote them before it set status="not_canceled"
        h.send(ExchangeReply(client_id=f"o{i}", op="cancel", ok=False, message=ALREADY_MATCHED), src="exec")
    assert [k.reason for k in h.kills()] == ["error_rate"]


@settings(max_examples=300, deadline=None)
@given(burst=st.integers(1, 6), window_s=st.integers(1, 30),
       replies=st.lists(st.tuples(st.integers(0, len(CATALOG) - 1), st.integers(0, 10 * SEC)), max_size=40))
def test_the_breaker_trips_exactly_when_the_counted_failures_in_a_window_reach_the_burst(
    burst: int, window_s: int, replies: list[tuple[int, int]]
) -> None:
    window = window_s * SEC
    h = GateHarness(params(error_burst=burst, error_window_ns=window, feed_stale_ns=3600 * SEC))  # only this trigger
    times: list[int] = []  # the model: times of counted failures; one is in the window while now - t < window
    expected = None
    for i, (k, dt) in enumerate(replies):
        reply, counted = CATALOG[k]
        h.send(reply, src="exec", dt=dt)
        if counted and expected is None:
            times.append(h.now)
            if sum(1 for t in times if h.now - t < window) >= burst:
                expected = i
        got = [k.reason for k in h.kills()]
        assert got == ([] if expected is None else ["error_rate"]), (i, got, expected)


@pytest.mark.parametrize(("reason", "gone"), [
    (NOT_FOUND, True), ("order not found", True), ("Already Cancelled", True),
    (ALREADY_MATCHED, False), (POLYMARKET, False), ("owner mismatch", False), ("not open", False), ("", False),
])
def test_the_executor_counts_only_not_found_or_already_canceled_as_cancelled(reason: str, gone: bool) -> None:
    """Not found / already canceled: the order is not open, it counts as cancelled. "matched" (fills may follow) and
    any reason not understood are failed cancels (fail closed), reported with status not_canceled and the reason."""
    assert gone_reason(reason) is gone
