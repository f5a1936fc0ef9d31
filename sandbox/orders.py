"""The order side's HTTP routes and the user channel, on the same app and port as the market side.

`register(app, **options)` (called by `open_sandbox`) builds the `OrderEngine` (sandbox/engine.py), stores it in
`ExchangeState.orders` and adds:

* L1 (wallet signature): ``POST /auth/api-key``, ``GET /auth/derive-api-key``;
* L2 (HMAC): ``POST /order``, ``POST /orders``, ``DELETE /order``, ``DELETE /orders``, ``DELETE /cancel-all``,
  ``DELETE /cancel-market-orders``, ``GET /data/orders``, ``GET /data/order/{id}``, ``GET /data/trades``,
  ``POST /v1/heartbeats``, ``GET /balance-allowance``, ``GET /balance-allowance/update``,
  ``GET /order-scoring``, ``POST /orders-scoring``, ``GET /auth/api-keys``;
* the user channel ``/ws/user``;
* sandbox control: ``GET /_sandbox/audit``, ``GET /_sandbox/open-orders``, ``GET|POST /_sandbox/balance``,
  ``POST /_sandbox/trade``, ``POST /_sandbox/market``.

Response shapes and the exact checks are documented in docs/sandbox.md ("Order side").
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import trio

from .auth import verify_l1, verify_l2
from .engine import MAX_BATCH, MAX_CANCEL, OrderEngine, Reject
from .faults import HTTP_ERROR_MESSAGES
from .rest import DropConnection, HTTPError, _paginate
from .wire import MICRO

if TYPE_CHECKING:
    from .app import Request, SandboxApp
    from .auth import ApiCreds

ORDER_ID = re.compile(r"^0x[0-9a-fA-F]{64}$")
UNAUTHORIZED = "Unauthorized/Invalid api key"
BAD_L1 = "Invalid L1 Request headers"
INVALID_ORDER_ID = "Invalid orderID"
HEARTBEAT_MISMATCH = "Invalid Heartbeat ID"


def register(app: SandboxApp, **options: Any) -> OrderEngine:
    st = app.state
    eng = OrderEngine(st, **options)
    st.orders = eng
    faults = st.faults
    app.add_ws("/ws/user", eng.user_hub.serve)

    def where(req: Request) -> str:
        return f"{req.method} {req.path}"

    # ---- auth ----------------------------------------------------------------------------------------------
    def l1(req: Request) -> tuple[str, int]:
        res, why = verify_l1(req.headers, chain_id=eng.chain_id, now_s=time.time(), max_skew_s=eng.max_skew_s)
        if res is None:
            eng.audit.add("auth_reject", endpoint=where(req), reason=why, api_key=None)
            raise HTTPError(401, BAD_L1)
        return res

    def l2(req: Request) -> ApiCreds:
        creds, why = verify_l2(
            req.headers,
            req.method,
            req.path,
            req.body,
            eng.keys.get,
            now_s=time.time(),
            max_skew_s=eng.max_skew_s,
        )
        if creds is None:
            is_post = req.method == "POST" and req.path in ("/order", "/orders")
            eng.audit.add(
                "auth_reject",
                endpoint=where(req),
                reason=why,
                api_key=req.headers.get("poly_api_key"),
                orders=_best_effort_orders(req) if is_post else [],
            )
            raise HTTPError(401, UNAUTHORIZED)
        return creds

    def refuse(
        req: Request, creds: ApiCreds, status: int, msg: str, headers: dict[str, str] | None = None
    ) -> HTTPError:
        """A whole request refused before any order in it was looked at: audited; the caller raises it."""
        eng.audit.add(
            "request_rejected",
            endpoint=where(req),
            api_key=creds.api_key,
            address=creds.address,
            status=status,
            reason=msg,
            orders=_best_effort_orders(req) if req.path in ("/order", "/orders") else [],
            body=req.body.decode("utf-8", "replace")[:4000] if req.method == "DELETE" else None,
        )
        return HTTPError(status, msg, headers)

    def gate(req: Request, creds: ApiCreds, *, write: bool) -> None:
        """Engine restart (425) and the order rate-limit fault (429)."""
        mode, _ = faults.engine_mode()
        status, msg, headers = None, "", {}
        if mode == "restart":
            faults.counts["engine_425"] += 1
            status, msg = 425, HTTP_ERROR_MESSAGES[425]
        elif write:
            ra = faults.take_order_rate_limit()
            if ra is not None:
                status, msg, headers = 429, HTTP_ERROR_MESSAGES[429], {"retry-after": str(ra)}
        if status is not None:
            raise refuse(req, creds, status, msg, headers)

    def body_json(req: Request, creds: ApiCreds, message: str = "Invalid order payload") -> Any:
        try:
            return req.json()
        except HTTPError:
            raise refuse(req, creds, 400, message) from None

    # ---- API keys (L1) -------------------------------------------------------------------------------------
    async def create_api_key(req: Request) -> Any:
        address, nonce = l1(req)
        c = eng.create_key(address, nonce)
        if c is None:
            raise HTTPError(400, "Could not create api key")
        return c.to_json()

    async def derive_api_key(req: Request) -> Any:
        address, nonce = l1(req)
        return eng.derive_key(address, nonce).to_json()

    async def api_keys(req: Request) -> Any:
        creds = l2(req)
        a = creds.address.lower()
        return {"apiKeys": [k for k, c in eng.keys.items() if c.address.lower() == a]}

    # ---- orders --------------------------------------------------------------------------------------------
    async def post_order(req: Request) -> Any:
        creds = l2(req)
        gate(req, creds, write=True)
        body = body_json(req, creds)
        try:
            result: Any = eng.place(creds, body, "POST /order")
            error = None
        except Reject as r:
            result, error = (
                {"error": r.message, **r.extra},
                HTTPError(r.status, r.message, r.headers, r.extra),
            )
        await _maybe_lose_reply(req, accepted=error is None, body=result)
        if error is not None:
            raise error
        return result

    async def post_orders(req: Request) -> Any:
        creds = l2(req)
        gate(req, creds, write=True)
        body = body_json(req, creds)
        if not isinstance(body, list) or not body:
            raise refuse(req, creds, 400, "Invalid order payload")
        if len(body) > MAX_BATCH:
            raise refuse(
                req, creds, 400, f"Too many orders in payload: {len(body)}, max allowed: {MAX_BATCH}"
            )
        out = []
        for item in body:
            try:
                out.append(eng.place(creds, item, "POST /orders"))
            except Reject as r:
                # as in Polymarket's documented examples: a refused order in a batch still says success: true;
                # the refusal is the non-empty errorMsg (and the empty orderID)
                out.append(
                    {
                        "errorMsg": r.message,
                        "orderID": "",
                        "takingAmount": "",
                        "makingAmount": "",
                        "status": "",
                        "success": True,
                    }
                )
        await _maybe_lose_reply(req, accepted=any(r["orderID"] for r in out), body=out)
        return out

    async def _maybe_lose_reply(req: Request, *, accepted: bool, body: Any) -> None:
        if not accepted or faults.submit_timeout is None:
            return
        f = faults.take_submit_timeout()
        if f is None:
            return
        eng.audit.add("submit_timeout", endpoint=where(req), mode=f["mode"], seconds=f["seconds"])
        if f["mode"] == "drop":
            raise DropConnection(body)
        await trio.sleep(f["seconds"])

    def check_ids(req: Request, creds: ApiCreds, ids: Any) -> list[str]:
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise refuse(req, creds, 400, "Invalid order payload")
        for i in ids:
            if not ORDER_ID.match(i):
                raise refuse(req, creds, 400, INVALID_ORDER_ID)
        return ids

    async def cancel_one(req: Request) -> Any:
        creds = l2(req)
        gate(req, creds, write=True)
        body = body_json(req, creds)
        if not isinstance(body, dict) or not isinstance(body.get("orderID"), str):
            raise refuse(req, creds, 400, "Invalid order payload")
        ids = check_ids(req, creds, [body["orderID"]])
        return eng.cancel(creds.address, ids, "DELETE /order", creds.api_key, ids)

    async def cancel_many(req: Request) -> Any:
        creds = l2(req)
        gate(req, creds, write=True)
        body = body_json(req, creds)
        if isinstance(body, list) and len(body) > MAX_CANCEL:
            raise refuse(req, creds, 400, f"Too many orders in payload, max allowed: {MAX_CANCEL}")
        ids = check_ids(req, creds, body)
        return eng.cancel(creds.address, ids, "DELETE /orders", creds.api_key, ids)

    async def cancel_all(req: Request) -> Any:
        creds = l2(req)
        gate(req, creds, write=True)
        ids = [o.id for o in eng.open_orders(creds.address)]
        return eng.cancel(creds.address, ids, "DELETE /cancel-all", creds.api_key, "all")

    async def cancel_market(req: Request) -> Any:
        creds = l2(req)
        gate(req, creds, write=True)
        body = body_json(req, creds) if req.body else {}
        if not isinstance(body, dict):
            raise refuse(req, creds, 400, "Invalid order payload")
        market, asset = body.get("market") or None, body.get("asset_id") or None
        if not all(x is None or isinstance(x, str) for x in (market, asset)):
            raise refuse(req, creds, 400, "Invalid order payload")
        ids = [
            o.id
            for o in eng.open_orders(creds.address)
            if (market is None or o.market == market) and (asset is None or o.asset_id == asset)
        ]
        return eng.cancel(
            creds.address,
            ids,
            "DELETE /cancel-market-orders",
            creds.api_key,
            {"market": market, "asset_id": asset},
        )

    # ---- queries -------------------------------------------------------------------------------------------
    async def data_orders(req: Request) -> Any:
        creds = l2(req)
        gate(req, creds, write=False)
        q = req.query
        rows = [
            eng.order_json(o)
            for o in eng.open_orders(creds.address)
            if (not q.get("id") or o.id == q["id"])
            and (not q.get("market") or o.market == q["market"])
            and (not q.get("asset_id") or o.asset_id == q["asset_id"])
        ]
        return _paginate(st, req, rows)

    async def data_order(req: Request, oid: str) -> Any:
        creds = l2(req)
        gate(req, creds, write=False)
        if not ORDER_ID.match(oid):
            raise HTTPError(400, INVALID_ORDER_ID)
        o = eng.orders.get(oid)
        if o is None or o.address != creds.address.lower():
            return None
        return eng.order_json(o)

    async def data_trades(req: Request) -> Any:
        creds = l2(req)
        gate(req, creds, write=False)
        q = req.query
        try:
            before = int(q["before"]) if q.get("before") else None
            after = int(q["after"]) if q.get("after") else None
        except ValueError:
            raise HTTPError(400, "Invalid trade params payload") from None
        a = creds.address.lower()
        rows = []
        for t in eng.trades_for(a):
            if q.get("id") and t.id != q["id"]:
                continue
            if q.get("market") and t.market != q["market"]:
                continue
            if q.get("asset_id") and q["asset_id"] not in {t.asset_id, *(r.asset_id for r in t.rows)}:
                continue
            if q.get("maker_address") and q["maker_address"].lower() not in {
                t.taker_address.lower(),
                *(r.maker_address.lower() for r in t.rows),
            }:
                continue
            if (before is not None and t.match_time >= before) or (
                after is not None and t.match_time <= after
            ):
                continue
            rows.append(eng.trade_json(t, a, event=False))
        return _paginate(st, req, rows)

    async def heartbeat(req: Request) -> Any:
        creds = l2(req)
        status = faults.take_heartbeat_fail()
        if status is not None:
            eng.audit.add(
                "heartbeat",
                api_key=creds.api_key,
                address=creds.address.lower(),
                received=None,
                ok=False,
                next=None,
                expected=None,
                fault=status,
            )
            raise HTTPError(status, HTTP_ERROR_MESSAGES.get(status, "sandbox fault"))
        body = body_json(req, creds, HEARTBEAT_MISMATCH) if req.body else {}
        hid = body.get("heartbeat_id") if isinstance(body, dict) else None
        ok, value = eng.heartbeat(creds, hid)
        if ok:
            return {"heartbeat_id": value}
        raise HTTPError(
            400, HEARTBEAT_MISMATCH, extra={"error_msg": HEARTBEAT_MISMATCH, "heartbeat_id": value}
        )

    async def balance_allowance(req: Request) -> Any:
        creds = l2(req)
        q = req.query
        asset_type = q.get("asset_type", "COLLATERAL")
        if asset_type not in ("COLLATERAL", "CONDITIONAL"):
            raise HTTPError(400, "Invalid asset type")
        try:
            sig = int(q.get("signature_type", "0"))
        except ValueError:
            raise HTTPError(400, "Invalid signature_type") from None
        if sig not in (-1, 0, 1, 2, 3):
            raise HTTPError(400, "Invalid signature_type")
        holder = eng.funders.get((creds.address.lower(), sig), creds.address)
        if asset_type == "CONDITIONAL":
            token = q.get("token_id", "")
            if not token or not st.source.has(token):
                raise HTTPError(400, "Invalid token id")
            bal = eng.token_balance(holder, token)
        else:
            bal = eng.account(holder).collateral
        return {"balance": str(bal), "allowances": eng.allowances()}

    async def order_scoring(req: Request) -> Any:
        creds = l2(req)
        oid = req.query.get("order_id", "")
        if not ORDER_ID.match(oid):
            raise HTTPError(400, INVALID_ORDER_ID)
        o = eng.orders.get(oid)
        return {"scoring": o is not None and o.address == creds.address.lower() and eng.is_scoring(o)}

    async def orders_scoring(req: Request) -> Any:
        creds = l2(req)
        ids = check_ids(req, creds, body_json(req, creds))
        a = creds.address.lower()
        return {i: (o := eng.orders.get(i)) is not None and o.address == a and eng.is_scoring(o) for i in ids}

    # ---- sandbox control -----------------------------------------------------------------------------------
    async def audit_get(req: Request) -> Any:
        try:
            since = int(req.query.get("since", "0"))
        except ValueError:
            raise HTTPError(400, "since must be an integer") from None
        recs = eng.audit.since(since, req.query.get("kind") or None)
        return {"records": recs, "last_seq": eng.audit[-1]["seq"] if eng.audit else 0}

    async def open_orders_get(req: Request) -> Any:
        addr = req.query.get("address") or None
        return {"orders": [{**eng.order_json(o), "address": o.address} for o in eng.open_orders(addr)]}

    async def balance_get(req: Request) -> Any:
        addr = req.query.get("address", "")
        if not addr:
            raise HTTPError(400, "address is required")
        return eng.balances(addr)

    async def balance_post(req: Request) -> Any:
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("address"), str):
            raise HTTPError(400, 'expected {"address", "collateral"?, "tokens"?: {token_id: shares}}')
        eng.set_balance(body["address"], body.get("collateral"), body.get("tokens"))
        return eng.balances(body["address"])

    async def trade_post(req: Request) -> Any:
        body = req.json()
        if not isinstance(body, dict):
            raise HTTPError(400, 'expected {"token_id", "side", "size"}')
        token, side = str(body.get("token_id", "")), body.get("side")
        if eng.sim is None or not st.source.has(token) or side not in ("BUY", "SELL"):
            raise HTTPError(400, "need the simulator, a known token_id and side BUY|SELL")
        try:
            qty = round(float(body.get("size", 0)) * MICRO)
        except (TypeError, ValueError):
            raise HTTPError(400, "size must be a number") from None
        frames = eng.synthetic_trade(token, side, qty)
        return {"frames": len(frames)}

    async def market_post(req: Request) -> Any:
        body = req.json()
        if not isinstance(body, dict) or st.market_by_cid(str(body.get("condition_id"))) is None:
            raise HTTPError(400, 'expected {"condition_id": <known>, "accepting_orders": bool}')
        eng.set_accepting(body["condition_id"], bool(body.get("accepting_orders", True)))
        return {
            "condition_id": body["condition_id"],
            "accepting_orders": eng.accepting_orders(body["condition_id"]),
        }

    def _best_effort_orders(req: Request) -> list[Any]:
        from .ordersig import OrderPayloadError, decode_order

        try:
            body = req.json()
        except HTTPError:
            return []
        items = body if isinstance(body, list) else [body]
        out = []
        for it in items:
            try:
                out.append(decode_order(it.get("order")).to_json() if isinstance(it, dict) else it)
            except OrderPayloadError:
                out.append(it.get("order") if isinstance(it, dict) else it)
        return out

    for method, path, fn in (
        ("POST", "/auth/api-key", create_api_key),
        ("GET", "/auth/derive-api-key", derive_api_key),
        ("GET", "/auth/api-keys", api_keys),
        ("POST", "/order", post_order),
        ("POST", "/orders", post_orders),
        ("DELETE", "/order", cancel_one),
        ("DELETE", "/orders", cancel_many),
        ("DELETE", "/cancel-all", cancel_all),
        ("DELETE", "/cancel-market-orders", cancel_market),
        ("GET", "/data/orders", data_orders),
        ("GET", "/data/trades", data_trades),
        ("POST", "/v1/heartbeats", heartbeat),
        ("GET", "/balance-allowance", balance_allowance),
        ("GET", "/balance-allowance/update", balance_allowance),
        ("GET", "/order-scoring", order_scoring),
        ("POST", "/orders-scoring", orders_scoring),
        ("GET", "/_sandbox/audit", audit_get),
        ("GET", "/_sandbox/open-orders", open_orders_get),
        ("GET", "/_sandbox/balance", balance_get),
        ("POST", "/_sandbox/balance", balance_post),
        ("POST", "/_sandbox/trade", trade_post),
        ("POST", "/_sandbox/market", market_post),
    ):
        app.add_route(method, path, fn)
    app.add_prefix_route("GET", "/data/order/", data_order)
    return eng
