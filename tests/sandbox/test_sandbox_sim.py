"""The pure market simulator: determinism, wire shapes, complement consistency, book integrity."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sandbox_testkit import RefBook, WireValidator

from sandbox.scenarios import SCENARIOS
from sandbox.sim import T0_MS, MarketSim
from sandbox.wire import PIPS, encode


def frames_text(sim: MarketSim, steps: int) -> list[list[str]]:
    return [[encode(f) for f in sim.step()] for _ in range(steps)]


def events_of(frame) -> list[dict]:
    return frame if isinstance(frame, list) else [frame]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_same_seed_same_stream(scenario: str) -> None:
    a = frames_text(MarketSim(42, scenario), 300)
    b = frames_text(MarketSim(42, scenario), 300)
    assert a == b
    assert sum(map(len, a)) > 0
    assert frames_text(MarketSim(43, scenario), 300) != a


def test_ids_depend_on_seed_only_and_look_real() -> None:
    calm, busy = MarketSim(7, "calm"), MarketSim(7, "busy")
    assert [m.condition_id for m in busy.markets[:4]] == [m.condition_id for m in calm.markets]
    assert calm.markets[0].condition_id != MarketSim(8, "calm").markets[0].condition_id
    for m in busy.markets:
        assert m.condition_id.startswith("0x") and len(m.condition_id) == 66
        int(m.condition_id, 16)
        for t in m.tokens:
            assert t.isdigit() and 70 <= len(t) <= 78
    assert len(set(busy.token_ids)) == 2 * len(busy.markets)


def test_timestamps_are_sim_time() -> None:
    sim = MarketSim(1, "calm")  # 5 steps/s -> 200 ms per step
    for i in range(1, 50):
        for f in sim.step():
            for e in events_of(f):
                assert e["timestamp"] == str(T0_MS + 200 * i)
    frames = MarketSim(1, "calm").step(now_ms=1_800_000_000_123)
    assert all(e["timestamp"] == "1800000000123" for f in frames for e in events_of(f))


def check_price_change_pairs(sim: MarketSim, e: dict) -> None:
    """Every level change comes as a YES entry and its NO mirror: price 1-p, opposite side, same size;
    and YES best bid + NO best ask = 1 (and YES best ask + NO best bid = 1)."""
    pcs = e["price_changes"]
    assert len(pcs) % 2 == 0
    m = next(m for m in sim.markets if m.condition_id == e["market"])
    for yes, no in zip(pcs[::2], pcs[1::2], strict=True):
        assert (yes["asset_id"], no["asset_id"]) == (m.yes_token, m.no_token)
        assert Decimal(yes["price"]) + Decimal(no["price"]) == 1
        assert {yes["side"], no["side"]} == {"BUY", "SELL"}
        assert yes["size"] == no["size"]
        assert Decimal(yes["best_bid"]) + Decimal(no["best_ask"]) == 1
        assert Decimal(yes["best_ask"]) + Decimal(no["best_bid"]) == 1


def check_books(sim: MarketSim) -> None:
    for b in sim.books.values():
        bb, ba = b.best_bid(), b.best_ask()
        assert bb is None or ba is None or bb < ba
        for p in [*b.bids, *b.asks]:
            assert p % b.tick == 0 and b.tick <= p <= PIPS - b.tick
        assert all(s > 0 for s in [*b.bids.values(), *b.asks.values()])


def run_and_check(seed: int, scenario: str, steps: int) -> tuple[MarketSim, WireValidator, RefBook]:
    sim = MarketSim(seed, scenario)
    v = WireValidator(sandbox_ids=True)
    ref = RefBook()
    for t in sim.token_ids:  # start from the sim's own snapshots, as a subscriber's initial dump would
        ref.apply_text(json.dumps([sim.book_event(t)]))
    for _ in range(steps):
        for f in sim.step():
            text = encode(f)
            v.check(text)
            for e in events_of(f):
                if e["event_type"] == "price_change":
                    check_price_change_pairs(sim, e)
            ref.apply_text(text)
        check_books(sim)
    for t in sim.token_ids:
        assert ref.matches(t, sim.book(t)), t
    return sim, v, ref


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31), scenario=st.sampled_from(["calm", "busy", "thin", "jumpy", "edge", "chaos"])
)
def test_stream_invariants_and_reference_book(seed: int, scenario: str) -> None:
    run_and_check(seed, scenario, 150)


def test_edge_scenario_flips_tick_size_both_ways_and_resnapshots() -> None:
    sim = MarketSim(5, "edge")
    seen: list[tuple[str, str]] = []
    for _ in range(600):
        frames = sim.step()
        for i, f in enumerate(frames):
            for e in events_of(f):
                if e["event_type"] == "tick_size_change":
                    seen.append((e["old_tick_size"], e["new_tick_size"]))
                    # a fresh snapshot with the new tick follows in this step
                    later = [
                        x
                        for g in frames[i:]
                        for x in events_of(g)
                        if x["event_type"] == "book" and x["asset_id"] == e["asset_id"]
                    ]
                    assert later and later[0]["tick_size"] == e["new_tick_size"]
    assert ("0.01", "0.001") in seen and ("0.001", "0.01") in seen
    run_and_check(5, "edge", 600)


def test_thin_scenario_has_one_sided_books() -> None:
    sim = MarketSim(2, "thin")
    one_sided = 0
    for _ in range(400):
        sim.step()
        one_sided += sum(1 for b in sim.books.values() if bool(b.bids) != bool(b.asks))
        assert all(len(b.bids) <= 3 and len(b.asks) <= 3 for b in sim.books.values())
    assert one_sided > 0


def test_busy_has_a_high_message_rate_and_mixed_framing() -> None:
    sim = MarketSim(1, "busy")
    frames = [f for _ in range(100) for f in sim.step()]
    assert len(frames) > 500  # > 5 frames per step at 50 steps/s -> > 250 frames/s
    assert any(isinstance(f, list) for f in frames) and any(isinstance(f, dict) for f in frames)
    kinds = {e["event_type"] for f in frames for e in events_of(f)}
    assert {"price_change", "last_trade_price", "best_bid_ask", "book"} <= kinds


def test_trades_move_the_book() -> None:
    sim = MarketSim(3, "jumpy")
    tops = []
    for _ in range(300):
        sim.step()
        tops.append(sim.books[sim.markets[0].condition_id].best_bid())
    assert len(set(tops)) > 5
