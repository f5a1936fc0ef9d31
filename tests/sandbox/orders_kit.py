"""Helpers for the order-side tests: py_clob_client_v2 (the official SDK) pointed at the sandbox, an async
twin built from the SDK's own header / order functions, and a user-channel client. Imports nothing from the
trading system."""

from __future__ import annotations

import functools
import json
from decimal import Decimal
from typing import Any

import httpx
import trio
from py_clob_client_v2 import ClobClient
from py_clob_client_v2.clob_types import ApiCreds, CreateOrderOptions, OrderArgsV2, RequestArgs
from py_clob_client_v2.headers.headers import create_level_1_headers, create_level_2_headers
from py_clob_client_v2.order_builder.builder import OrderBuilder
from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2
from py_clob_client_v2.signer import Signer
from trio_websocket import WebSocketConnection

from sandbox.testkeys import TEST_PRIVATE_KEY

CHAIN_ID = 137
# field names and order of the user channel's events, as in the protocol doc §2
ORDER_EVENT_FIELDS = [
    "event_type", "id", "owner", "market", "asset_id", "side", "order_owner", "original_size", "size_matched",
    "price", "associate_trades", "outcome", "type", "created_at", "expiration", "order_type", "status",
    "maker_address", "timestamp",
]  # fmt: skip
TRADE_EVENT_FIELDS = [
    "event_type", "type", "id", "taker_order_id", "market", "asset_id", "side", "size", "price", "fee_rate_bps",
    "status", "match_time", "last_update", "outcome", "owner", "trade_owner", "maker_address", "transaction_hash",
    "bucket_index", "maker_orders", "trader_side", "timestamp",
]  # fmt: skip
MAKER_ROW_FIELDS = [
    "order_id", "owner", "maker_address", "matched_amount", "price", "fee_rate_bps", "asset_id", "outcome", "side",
]  # fmt: skip


def check_user_event(ev: dict[str, Any]) -> None:
    """Exact field names and order; every value a string except the documented non-strings."""
    if ev["event_type"] == "order":
        assert list(ev) == ORDER_EVENT_FIELDS, list(ev)
        assert ev["type"] in ("PLACEMENT", "UPDATE", "CANCELLATION") and ev["status"] in (
            "LIVE",
            "MATCHED",
            "CANCELED",
        )
        assert ev["associate_trades"] is None or all(isinstance(t, str) for t in ev["associate_trades"])
        rest = {k: v for k, v in ev.items() if k != "associate_trades"}
    else:
        assert ev["event_type"] == "trade" and list(ev) == TRADE_EVENT_FIELDS, list(ev)
        assert ev["status"] in ("MATCHED", "MINED", "CONFIRMED", "RETRYING", "FAILED")
        assert ev["trader_side"] in ("TAKER", "MAKER") and ev["bucket_index"] == 0
        for row in ev["maker_orders"]:
            assert list(row) == MAKER_ROW_FIELDS and all(isinstance(v, str) for v in row.values())
        rest = {k: v for k, v in ev.items() if k not in ("maker_orders", "bucket_index")}
    assert all(isinstance(v, str) for v in rest.values()), rest
    assert ev["timestamp"].isdigit() and len(ev["timestamp"]) == 13


async def run(fn: Any, *args: Any, **kw: Any) -> Any:
    """Call the (synchronous) official client from trio."""
    return await trio.to_thread.run_sync(functools.partial(fn, *args, **kw))


def official_client(
    sb: Any, key: str = TEST_PRIVATE_KEY, creds: ApiCreds | None = None, **kw: Any
) -> ClobClient:
    return ClobClient(sb.base_url, chain_id=CHAIN_ID, key=key, creds=creds, **kw)


def to_official(c: Any) -> ApiCreds:
    """sandbox.auth.ApiCreds -> the SDK's ApiCreds."""
    return ApiCreds(api_key=c.api_key, api_secret=c.secret, api_passphrase=c.passphrase)


def passive_buy_price(sb: Any, token: str, ticks_below_best: int = 0) -> float:
    """A BUY price that rests (does not cross): the best bid, or lower."""
    b = sb.book(token)
    tick = b.tick_size
    top = b.best_bid if b.best_bid is not None else (b.best_ask - 3 * tick if b.best_ask else Decimal("0.5"))
    return float(top - ticks_below_best * tick)


class AsyncClob:
    """The requests py_clob_client_v2 sends, made with its own functions (L1/L2 headers, OrderBuilder,
    order_to_json_v2, the same compact JSON) but sent with httpx.AsyncClient: tests that run on trio's
    MockClock cannot use the SDK's blocking calls in a thread (the virtual clock would jump meanwhile)."""

    def __init__(
        self,
        sb: Any,
        key: str = TEST_PRIVATE_KEY,
        creds: ApiCreds | None = None,
        *,
        timeout: float = 10.0,
        signature_type: int | None = None,
        funder: str | None = None,
    ) -> None:
        self.sb = sb
        self.signer = Signer(key, CHAIN_ID)
        self.creds = creds
        self.builder = OrderBuilder(self.signer, signature_type=signature_type, funder=funder)
        self.http = httpx.AsyncClient(base_url=sb.base_url, timeout=timeout)

    async def __aenter__(self) -> AsyncClob:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.http.aclose()

    @property
    def address(self) -> str:
        return self.signer.address()

    async def derive(self, nonce: int = 0) -> ApiCreds:
        r = await self.http.get(
            "/auth/derive-api-key", headers=create_level_1_headers(self.signer, nonce=nonce)
        )
        r.raise_for_status()
        j = r.json()
        self.creds = ApiCreds(j["apiKey"], j["secret"], j["passphrase"])
        return self.creds

    def build(
        self,
        token: str,
        price: float,
        size: float,
        side: str = "BUY",
        *,
        tick: str | None = None,
        neg_risk: bool | None = None,
        expiration: int = 0,
    ) -> Any:
        spec = next(m for m in self.sb.markets if token in m.tokens)
        tick = tick or format(self.sb.book(token).tick_size, "f")
        nr = spec.neg_risk if neg_risk is None else neg_risk
        args = OrderArgsV2(token_id=token, price=price, size=size, side=side, expiration=expiration)
        return self.builder.build_order(args, CreateOrderOptions(tick_size=tick, neg_risk=nr))

    def body(self, order: Any, order_type: str = "GTC", post_only: bool = False) -> dict[str, Any]:
        assert self.creds is not None
        return order_to_json_v2(order, self.creds.api_key, order_type, post_only, False)

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        creds: ApiCreds | None = None,
    ) -> httpx.Response:
        creds = creds or self.creds
        assert creds is not None
        data = None if body is None else json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        headers = create_level_2_headers(self.signer, creds, RequestArgs(method, path, body, data))
        headers["Content-Type"] = "application/json"
        return await self.http.request(
            method, path, content=None if data is None else data.encode(), params=params, headers=headers
        )

    async def post_order(
        self, order: Any, order_type: str = "GTC", post_only: bool = False
    ) -> httpx.Response:
        return await self.request("POST", "/order", self.body(order, order_type, post_only))

    async def post_orders(
        self, orders: list[Any], order_type: str = "GTC", post_only: bool = False
    ) -> httpx.Response:
        return await self.request("POST", "/orders", [self.body(o, order_type, post_only) for o in orders])

    async def cancel(self, order_id: str) -> httpx.Response:
        return await self.request("DELETE", "/order", {"orderID": order_id})

    async def cancel_all(self) -> httpx.Response:
        return await self.request("DELETE", "/cancel-all")

    async def heartbeat(self, heartbeat_id: str = "") -> httpx.Response:
        return await self.request("POST", "/v1/heartbeats", {"heartbeat_id": heartbeat_id})

    async def open_orders(self, **params: str) -> list[dict[str, Any]]:
        out, cursor = [], "MA=="
        while cursor != "LTE=":
            r = await self.request("GET", "/data/orders", params={**params, "next_cursor": cursor})
            r.raise_for_status()
            out += r.json()["data"]
            cursor = r.json()["next_cursor"]
        return out

    async def trades(self, **params: str) -> list[dict[str, Any]]:
        out, cursor = [], "MA=="
        while cursor != "LTE=":
            r = await self.request("GET", "/data/trades", params={**params, "next_cursor": cursor})
            r.raise_for_status()
            out += r.json()["data"]
            cursor = r.json()["next_cursor"]
        return out


class UserClient:
    """A `/ws/user` client that keeps every event it receives."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    async def subscribe(self, creds: ApiCreds, markets: list[str] | None = None) -> None:
        msg: dict[str, Any] = {
            "auth": {"apiKey": creds.api_key, "secret": creds.api_secret, "passphrase": creds.api_passphrase},
            "type": "user",
        }
        if markets is not None:
            msg["markets"] = markets
        await self.ws.send_message(json.dumps(msg))

    async def recv(self) -> Any:
        text = await self.ws.get_message()
        if text == "PONG":
            return text
        ev = json.loads(text)
        check_user_event(ev)
        self.events.append(ev)
        return ev

    async def barrier(self, within: float = 10) -> list[dict[str, Any]]:
        """PING, then every event received before the PONG."""
        await self.ws.send_message("PING")
        out = []
        with trio.fail_after(within):
            while (ev := await self.recv()) != "PONG":
                out.append(ev)
        return out

    async def wait_for(self, pred: Any, within: float = 10) -> dict[str, Any]:
        for ev in self.events:
            if pred(ev):
                return ev
        with trio.fail_after(within):
            while True:
                ev = await self.recv()
                if ev != "PONG" and pred(ev):
                    return ev

    def of(self, event_type: str, **match: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e.get("event_type") == event_type and all(e.get(k) == v for k, v in match.items())
        ]
