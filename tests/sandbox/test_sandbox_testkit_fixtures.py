"""The test helpers themselves, checked against the Polymarket wire fixtures."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sandbox_testkit import (
    NON_SCHEMA_FIXTURES,
    RefBook,
    WireError,
    WireValidator,
    book_sequence,
    fixture_lines,
)


def test_validator_accepts_every_current_schema_fixture_frame() -> None:
    v = WireValidator(sandbox_ids=False)
    for line in fixture_lines():
        if line["name"] in NON_SCHEMA_FIXTURES - {"pong_text"}:
            continue
        evs = v.check(line["frame"])
        assert len(evs) == line["expect"]["events"], line["name"]


@pytest.mark.parametrize("name", ["malformed_truncated", "unknown_event_type", "price_change_legacy_schema"])
def test_validator_rejects_fault_and_legacy_fixture_frames(name: str) -> None:
    v = WireValidator(sandbox_ids=False)
    (frame,) = [ln["frame"] for ln in fixture_lines() if ln["name"] == name]
    with pytest.raises(WireError):
        v.check(frame)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e.update(bids=list(reversed(e["bids"]))),  # bids must be ascending (best last)
        lambda e: e.update(asks=list(reversed(e["asks"]))),  # asks must be descending (best last)
        lambda e: e["bids"][0].update(price=0.01),  # numbers are strings
        lambda e: e.update(timestamp=1790908667676),
        lambda e: e.pop("tick_size"),
        lambda e: e.update(extra="x"),
        lambda e: e["asks"][0].update(price="1.5"),
    ],
)
def test_validator_catches_shape_errors(mutate) -> None:
    v = WireValidator(sandbox_ids=False)
    (frame,) = [ln["frame"] for ln in fixture_lines() if ln["name"] == "live_initial_book_array"]
    events = json.loads(frame)
    mutate(events[0])
    with pytest.raises(WireError):
        v.check(json.dumps(events))


def test_refbook_reproduces_book_sequence_fixture() -> None:
    seq = book_sequence()
    ref = RefBook()
    for f in seq["frames"]:
        ref.apply_text(f)
    for token, exp in seq["expect_books"].items():
        bids, asks = ref.levels(token)
        assert bids == [(Decimal(p), Decimal(s)) for p, s in exp["bids"]]
        assert asks == [(Decimal(p), Decimal(s)) for p, s in exp["asks"]]
