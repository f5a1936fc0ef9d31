"""Test helpers for the sandbox exchange: a wire validator derived from the Polymarket fixtures, a reference book,
and a small market-channel client. Pure test code; imports nothing from the trading system."""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import trio
from trio_websocket import WebSocketConnection

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "polymarket"

# fixture frames that are not "normal" current-schema frames (faults, legacy, text)
NON_SCHEMA_FIXTURES = {"price_change_legacy_schema", "malformed_truncated", "unknown_event_type", "pong_text"}
NUMERIC = {
    "price",
    "size",
    "best_bid",
    "best_ask",
    "spread",
    "tick_size",
    "old_tick_size",
    "new_tick_size",
    "last_trade_price",
    "fee_rate_bps",
}
MAY_BE_EMPTY = {"best_bid", "best_ask", "spread", "last_trade_price"}
HEX_MARKET = re.compile(r"^0x[0-9a-f]{64}$")
DECIMAL_ID = re.compile(r"^[0-9]{10,80}$")


def fixture_lines() -> list[dict[str, Any]]:
    with open(FIXTURES / "market-frames.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def book_sequence() -> dict[str, Any]:
    return json.loads((FIXTURES / "book-sequence.json").read_text(encoding="utf-8"))


class WireError(AssertionError):
    pass


def _events(obj: Any) -> list[dict[str, Any]]:
    return obj if isinstance(obj, list) else [obj]


class WireValidator:
    """Checks frames against the shapes seen in the fixtures.

    Per event type it learns, from every current-schema fixture event: the keys that are always present
    (required), every key seen (allowed) and each key's JSON type; the same for `price_changes` entries and
    book levels. On top: numbers are decimal strings, timestamps are ms digit strings, bids ascending / asks
    descending (best last), sides BUY/SELL, prices in range. With ``sandbox_ids`` it also checks id formats
    (0x+64 hex markets, long decimal token ids) and that book prices sit on the tick grid.
    """

    def __init__(self, sandbox_ids: bool = True) -> None:
        self.sandbox_ids = sandbox_ids
        self.required: dict[str, set[str]] = {}
        self.allowed: dict[str, set[str]] = {}
        self.types: dict[str, dict[str, type]] = {}
        self.entry_required: set[str] | None = None
        self.entry_allowed: set[str] = set()
        frames = [ln["frame"] for ln in fixture_lines() if ln["name"] not in NON_SCHEMA_FIXTURES]
        frames += [f for f in book_sequence()["frames"] if f not in ("PONG",)]
        for text in frames:
            for e in _events(json.loads(text)):
                et = e["event_type"]
                keys = set(e)
                self.required[et] = self.required.get(et, keys) & keys
                self.allowed[et] = self.allowed.get(et, set()) | keys
                for k, v in e.items():
                    self.types.setdefault(et, {})[k] = type(v)
                for pc in e.get("price_changes", []):
                    ks = set(pc)
                    self.entry_required = ks if self.entry_required is None else self.entry_required & ks
                    self.entry_allowed |= ks
        self.counts: dict[str, int] = {}

    # ---- frames -------------------------------------------------------------------------------------------
    def check(self, text: str) -> list[dict[str, Any]]:
        """Validate one frame's text; returns its events ([] for PONG / [])."""
        if text == "PONG":
            return []
        try:
            obj = json.loads(text)
        except ValueError as e:
            raise WireError(f"not JSON: {text[:80]!r}") from e
        if isinstance(obj, list):
            if not all(isinstance(e, dict) for e in obj):
                raise WireError("array frame with a non-object element")
        elif not isinstance(obj, dict):
            raise WireError(f"frame is neither an object nor an array: {text[:80]!r}")
        evs = _events(obj)
        for e in evs:
            self.check_event(e)
        return evs

    def check_event(self, e: dict[str, Any]) -> None:
        et = e.get("event_type")
        if et not in self.required:
            raise WireError(f"unknown event_type {et!r}")
        keys = set(e)
        if not self.required[et] <= keys:
            raise WireError(f"{et}: missing {sorted(self.required[et] - keys)}")
        if not keys <= self.allowed[et]:
            raise WireError(f"{et}: unexpected {sorted(keys - self.allowed[et])}")
        for k, v in e.items():
            if type(v) is not self.types[et][k]:
                raise WireError(f"{et}.{k}: {type(v).__name__}, fixtures have {self.types[et][k].__name__}")
            if k in NUMERIC:
                self._num(f"{et}.{k}", v, k in MAY_BE_EMPTY)
        self._ts(et, e["timestamp"])
        if self.sandbox_ids:
            if not HEX_MARKET.match(e["market"]):
                raise WireError(f"{et}: market id {e['market']!r}")
            if "asset_id" in e and not DECIMAL_ID.match(e["asset_id"]):
                raise WireError(f"{et}: asset id {e['asset_id']!r}")
        getattr(self, f"_check_{et}", lambda e: None)(e)
        self.counts[et] = self.counts.get(et, 0) + 1

    # ---- helpers ------------------------------------------------------------------------------------------
    @staticmethod
    def _num(what: str, v: Any, may_be_empty: bool = False) -> Decimal | None:
        if not isinstance(v, str):
            raise WireError(f"{what}: number must be a string, got {v!r}")
        if v == "":
            if may_be_empty:
                return None
            raise WireError(f"{what}: empty")
        try:
            d = Decimal(v)
        except InvalidOperation as e:
            raise WireError(f"{what}: not a decimal string {v!r}") from e
        if not d.is_finite():
            raise WireError(f"{what}: {v!r}")
        return d

    @staticmethod
    def _ts(et: str, ts: Any) -> None:
        if not (isinstance(ts, str) and ts.isdigit()):
            raise WireError(f"{et}: timestamp must be a ms digit string, got {ts!r}")

    @staticmethod
    def _price(what: str, p: Decimal, lo_incl: bool = False, hi_incl: bool = False) -> None:
        ok_lo = p >= 0 if lo_incl else p > 0
        ok_hi = p <= 1 if hi_incl else p < 1
        if not (ok_lo and ok_hi):
            raise WireError(f"{what}: price {p} out of range")

    def _levels(self, et: str, levels: list[Any], tick: Decimal, ascending: bool) -> None:
        prev: Decimal | None = None
        for lv in levels:
            if not isinstance(lv, dict) or set(lv) != {"price", "size"}:
                raise WireError(f"{et}: level {lv!r}")
            p = self._num(f"{et}.level.price", lv["price"])
            s = self._num(f"{et}.level.size", lv["size"])
            assert p is not None and s is not None
            self._price(f"{et}.level", p)
            if s <= 0:
                raise WireError(f"{et}: level size {s}")
            if self.sandbox_ids and p % tick != 0:
                raise WireError(f"{et}: price {p} off the tick grid {tick}")
            if prev is not None and (p <= prev if ascending else p >= prev):
                raise WireError(f"{et}: levels not {'ascending' if ascending else 'descending'} at {p}")
            prev = p

    def _check_book(self, e: dict[str, Any]) -> None:
        tick = self._num("book.tick_size", e["tick_size"])
        assert tick is not None
        self._levels("book.bids", e["bids"], tick, ascending=True)  # best bid LAST
        self._levels("book.asks", e["asks"], tick, ascending=False)  # best ask LAST
        if e["bids"] and e["asks"] and Decimal(e["bids"][-1]["price"]) >= Decimal(e["asks"][-1]["price"]):
            raise WireError("book: crossed")
        if e["last_trade_price"]:
            self._price("book.last_trade_price", Decimal(e["last_trade_price"]))

    def _check_price_change(self, e: dict[str, Any]) -> None:
        pcs = e["price_changes"]
        if not pcs:
            raise WireError("price_change: empty price_changes")
        for pc in pcs:
            keys = set(pc)
            assert self.entry_required is not None
            if not self.entry_required <= keys or not keys <= self.entry_allowed:
                raise WireError(f"price_change entry keys {sorted(keys)}")
            for k, v in pc.items():
                if not isinstance(v, str):
                    raise WireError(f"price_change entry {k} is not a string: {v!r}")
            p = self._num("price_change.price", pc["price"])
            s = self._num("price_change.size", pc["size"])
            assert p is not None and s is not None
            self._price("price_change.price", p)
            if s < 0:
                raise WireError(f"price_change: negative size {s}")
            if pc["side"] not in ("BUY", "SELL"):
                raise WireError(f"price_change: side {pc['side']!r}")
            for k in ("best_bid", "best_ask"):
                if k in pc:
                    v = self._num(f"price_change.{k}", pc[k])
                    assert v is not None
                    self._price(f"price_change.{k}", v, lo_incl=True, hi_incl=True)
            if self.sandbox_ids and not DECIMAL_ID.match(pc["asset_id"]):
                raise WireError(f"price_change: asset id {pc['asset_id']!r}")

    def _check_last_trade_price(self, e: dict[str, Any]) -> None:
        self._price("last_trade_price", Decimal(e["price"]))
        if Decimal(e["size"]) <= 0 or e["side"] not in ("BUY", "SELL"):
            raise WireError(f"last_trade_price: {e}")

    def _check_best_bid_ask(self, e: dict[str, Any]) -> None:
        bb, ba = e["best_bid"], e["best_ask"]
        for v in (bb, ba):
            if v:
                self._price("best_bid_ask", Decimal(v))
        if bb and ba:
            if Decimal(e["spread"]) != Decimal(ba) - Decimal(bb) or Decimal(bb) >= Decimal(ba):
                raise WireError(f"best_bid_ask: {e}")
        elif e["spread"] != "":
            raise WireError("best_bid_ask: spread must be '' when a side is empty")

    def _check_tick_size_change(self, e: dict[str, Any]) -> None:
        if e["old_tick_size"] == e["new_tick_size"]:
            raise WireError("tick_size_change without a change")


class RefBook:
    """A deliberately simple book builder (independent of the sandbox code) to apply wire frames to."""

    def __init__(self) -> None:
        self.books: dict[str, dict[str, dict[Decimal, Decimal]]] = {}
        self.ticks: dict[str, Decimal] = {}
        self.last_trade: dict[str, Decimal] = {}

    def apply_text(self, text: str) -> None:
        if text == "PONG":
            return
        obj = json.loads(text)
        for e in _events(obj):
            self.apply(e)

    def apply(self, e: dict[str, Any]) -> None:
        et = e.get("event_type")
        if et == "book":
            self.books[e["asset_id"]] = {
                "bids": {Decimal(lv["price"]): Decimal(lv["size"]) for lv in e["bids"]},
                "asks": {Decimal(lv["price"]): Decimal(lv["size"]) for lv in e["asks"]},
            }
            self.ticks[e["asset_id"]] = Decimal(e["tick_size"])
        elif et == "price_change":
            for pc in e["price_changes"]:
                b = self.books.get(pc["asset_id"])
                if b is None:
                    continue  # a token we have no book for (filter by asset_id)
                side = b["bids"] if pc["side"] == "BUY" else b["asks"]
                p, s = Decimal(pc["price"]), Decimal(pc["size"])
                if s == 0:
                    side.pop(p, None)
                else:
                    side[p] = s
        elif et == "tick_size_change":
            self.ticks[e["asset_id"]] = Decimal(e["new_tick_size"])
            self.books.pop(e["asset_id"], None)  # new book epoch: wait for the next snapshot
        elif et == "last_trade_price":
            self.last_trade[e["asset_id"]] = Decimal(e["price"])

    def levels(self, token: str) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """(bids, asks), best first."""
        b = self.books[token]
        return sorted(b["bids"].items(), reverse=True), sorted(b["asks"].items())

    def matches(self, token: str, snap: Any) -> bool:
        bids, asks = self.levels(token)
        return tuple(bids) == snap.bids and tuple(asks) == snap.asks and self.ticks[token] == snap.tick_size


def subscribe_msg(assets: list[str], custom: bool = False, initial_dump: bool = True) -> str:
    return json.dumps(
        {
            "assets_ids": assets,
            "type": "market",
            "initial_dump": initial_dump,
            "custom_feature_enabled": custom,
            "level": 2,
        }
    )


class MarketClient:
    """Records every frame; validates each one unless `validate` is False."""

    def __init__(self, ws: WebSocketConnection, validator: WireValidator | None) -> None:
        self.ws = ws
        self.validator = validator
        self.frames: list[str] = []

    async def send(self, msg: str) -> None:
        await self.ws.send_message(msg)

    async def subscribe(self, assets: list[str], custom: bool = False, initial_dump: bool = True) -> None:
        await self.send(subscribe_msg(assets, custom, initial_dump))

    async def recv(self) -> str:
        text = await self.ws.get_message()
        assert isinstance(text, str)
        self.frames.append(text)
        if self.validator is not None:
            self.validator.check(text)
        return text

    async def barrier(self) -> list[str]:
        """Send PING and return every frame received before the PONG (frames are FIFO per socket)."""
        await self.send("PING")
        out = []
        with trio.fail_after(10):
            while (text := await self.recv()) != "PONG":
                out.append(text)
        return out
