"""Heartbeats (chain, stale id, the 10 s dead-man switch on trio's clock) and every order-side fault, each
observed by a client; plus the audit / open-orders control endpoints."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
from orders_kit import AsyncClob, UserClient, official_client, passive_buy_price, run
from py_clob_client_v2.clob_types import OrderArgsV2, OrderType
from py_clob_client_v2.exceptions import PolyApiException
from trio_websocket import ConnectionClosed, open_websocket_url

from sandbox.server import open_sandbox
from sandbox.testkeys import OTHER_PRIVATE_KEY, TEST_ADDRESS


async def place(ac, sb, n=2, market=0, post_only=True):
    tok = sb.markets[market].yes_token
    ids = []
    for i in range(n):
        r = await ac.post_order(ac.build(tok, passive_buy_price(sb, tok, i + 1), 10), post_only=post_only)
        assert r.status_code == 200, r.text
        ids.append(r.json()["orderID"])
    return ids


async def test_heartbeat_chain_stale_id_and_dead_man_switch(autojump_clock) -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb, AsyncClob(sb) as ac:
        creds = await ac.derive()
        ids = await place(ac, sb)
        await trio.sleep(60)  # no heartbeat ever sent: nothing happens
        assert len(await ac.open_orders()) == 2
        r = await ac.heartbeat("")
        h1 = r.json()["heartbeat_id"]
        assert r.status_code == 200 and r.json() == {"heartbeat_id": h1} and h1
        h2 = (await ac.heartbeat(h1)).json()["heartbeat_id"]
        assert h2 != h1
        stale = await ac.heartbeat(h1)
        assert stale.status_code == 400
        assert stale.json() == {
            "error": "Invalid Heartbeat ID",
            "error_msg": "Invalid Heartbeat ID",
            "heartbeat_id": h2,
        }
        h3 = (await ac.heartbeat(h2)).json()["heartbeat_id"]
        await trio.sleep(9.5)
        h4 = (await ac.heartbeat(h3)).json()["heartbeat_id"]
        await trio.sleep(9.9)
        assert len(await ac.open_orders()) == 2
        async with open_websocket_url(sb.user_ws_url) as ws:
            user = UserClient(ws)
            await user.subscribe(creds)
            await user.barrier()
            t0 = trio.current_time()
            ev = await user.wait_for(lambda e: e.get("type") == "CANCELLATION", within=5)
            assert 0.05 <= trio.current_time() - t0 <= 0.2  # 10 s after the last good heartbeat
            assert ev["id"] in ids and ev["status"] == "CANCELED"
        assert await ac.open_orders() == [] and sb.open_orders() == []
        [hto] = sb.audit.of("heartbeat_timeout")
        assert sorted(hto["canceled"]) == sorted(ids)
        # the chain is over: the old id is refused, "" starts a new one
        r = await ac.heartbeat(h4)
        assert r.status_code == 400 and r.json()["heartbeat_id"] == ""
        assert (await ac.heartbeat("")).status_code == 200
        hb = sb.audit.of("heartbeat")
        assert [r["ok"] for r in hb] == [True, True, False, True, True, False, True]


async def test_heartbeat_endpoint_failure_lets_the_switch_fire(autojump_clock) -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb, AsyncClob(sb) as ac:
        await ac.derive()
        await place(ac, sb)
        h = (await ac.heartbeat("")).json()["heartbeat_id"]
        sb.faults.fail_heartbeats(503)
        for _ in range(4):
            await trio.sleep(3)
            r = await ac.heartbeat(h)
            assert r.status_code == 503
        assert await ac.open_orders() == []  # 12 s without a heartbeat that counted
        sb.faults.heartbeat_fail = None
        assert (await ac.heartbeat("")).status_code == 200
        assert sb.faults.counts["heartbeat_fail"] == 4


async def test_submit_timeout_the_order_lands_but_the_reply_is_lost(autojump_clock) -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb, AsyncClob(sb, timeout=5) as ac:
        await ac.derive()
        tok = sb.markets[0].yes_token
        sb.faults.lose_submit_reply("delay", seconds=30)
        order = ac.build(tok, passive_buy_price(sb, tok), 10)
        with pytest.raises(httpx.ReadTimeout):
            await ac.post_order(order, post_only=True)
        [row] = await ac.open_orders()  # it landed
        assert sb.audit.orders()[-1]["accepted"] and sb.audit.orders()[-1]["order_id"] == row["id"]
        # resending the same signed order is a duplicate: the id tells the client it is already there
        r = await ac.post_order(order, post_only=True)
        assert r.status_code == 400 and r.json()["error"] == f"order {row['id']} is invalid. Duplicated."
        # drop: the connection is cut mid-reply
        sb.faults.lose_submit_reply("drop")
        with pytest.raises(httpx.RemoteProtocolError):
            await ac.post_orders([ac.build(tok, passive_buy_price(sb, tok, 1), 10)], post_only=True)
        assert len(await ac.open_orders()) == 2
        assert sb.faults.counts["submit_delay"] == 1 and sb.faults.counts["submit_drop"] == 1
        assert [r["mode"] for r in sb.audit.of("submit_timeout")] == ["delay", "drop"]


async def test_submit_drop_with_the_official_client() -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb:
        c = official_client(sb)
        c.set_api_creds(await run(c.create_or_derive_api_key))
        tok = sb.markets[0].yes_token
        sb.faults.lose_submit_reply("drop")
        order = await run(
            c.create_order, OrderArgsV2(token_id=tok, price=passive_buy_price(sb, tok), size=10, side="BUY")
        )
        with pytest.raises(PolyApiException) as exc:
            await run(c.post_order, order, OrderType.GTC, True)
        assert exc.value.status_code is None  # "Request exception!": no reply
        assert len(await run(c.get_open_orders)) == 1


async def test_engine_restart_425_then_post_only_window(autojump_clock) -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb, AsyncClob(sb) as ac:
        await ac.derive()
        [oid] = await place(ac, sb, 1)
        tok = sb.markets[0].yes_token
        sb.faults.engine_restart(seconds=90, post_only_seconds=120)
        for r in (
            await ac.post_order(ac.build(tok, passive_buy_price(sb, tok, 3), 10), post_only=True),
            await ac.cancel(oid),
            await ac.cancel_all(),
            await ac.request("GET", "/data/orders"),
        ):
            assert r.status_code == 425 and r.json() == {
                "error": "Too Early: the matching engine is restarting"
            }
        async with AsyncClob(
            sb, OTHER_PRIVATE_KEY
        ) as other:  # (another user: its switch cancels nothing here)
            await other.derive()
            assert (await other.heartbeat("")).status_code == 200  # heartbeats are not order endpoints
        await trio.sleep(90)
        r = await ac.post_order(ac.build(tok, passive_buy_price(sb, tok, 3), 10), post_only=False)
        assert r.status_code == 503 and r.headers["retry-after"] == "120"
        assert r.json() == {
            "error": "post-only mode: only post-only orders and cancels are allowed",
            "code": "post_only_mode",
            "retry_after_seconds": 120,
        }
        r = await ac.post_orders([ac.build(tok, passive_buy_price(sb, tok, 4), 10)], post_only=False)
        assert (
            r.status_code == 200
            and r.json()[0]["errorMsg"].startswith("post-only mode")
            and not r.json()[0]["orderID"]
        )
        assert (
            await ac.post_order(ac.build(tok, passive_buy_price(sb, tok, 5), 10), post_only=True)
        ).status_code == 200
        assert (await ac.cancel(oid)).json()["canceled"] == [oid]
        await trio.sleep(120)
        assert (await ac.post_order(ac.build(tok, passive_buy_price(sb, tok, 6), 10))).status_code == 200
        assert sb.faults.counts["engine_425"] == 4 and sb.faults.counts["post_only_reject"] == 2
        assert [r["status"] for r in sb.audit.of("request_rejected")] == [425] * 4


async def test_order_rate_limit_429_with_retry_after() -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb, AsyncClob(sb) as ac:
        await ac.derive()
        tok = sb.markets[0].yes_token
        r = await ac.http.post("/_sandbox/faults", json={"order_rate_limit": {"count": 2, "retry_after": 3}})
        assert r.json()["order_rate_limit"] == {"count": 2, "retry_after": 3}
        for _ in range(2):
            r = await ac.post_order(ac.build(tok, passive_buy_price(sb, tok), 10), post_only=True)
            assert r.status_code == 429 and r.headers["retry-after"] == "3"
            assert r.json() == {"error": "Too Many Requests"}
        assert (await ac.request("GET", "/data/orders")).status_code == 200  # reads are not limited
        assert (
            await ac.post_order(ac.build(tok, passive_buy_price(sb, tok), 10), post_only=True)
        ).status_code == 200
        assert sb.faults.counts["order_429"] == 2 and sb.audit.orders()[0]["accepted"]


async def test_user_channel_half_open_and_drop(autojump_clock) -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb, AsyncClob(sb) as ac:
        creds = await ac.derive()
        async with open_websocket_url(sb.user_ws_url) as ws:
            user = UserClient(ws)
            await user.subscribe(creds)
            await user.barrier()
            assert sb.faults.user_half_open_now() == 1
            await place(ac, sb, 1)
            await ws.send_message("PING")
            with trio.move_on_after(30) as cs:
                await user.recv()
            assert cs.cancelled_caught, "a half-open user socket sends nothing, not even PONG"
            async with open_websocket_url(sb.user_ws_url) as ws2:  # a new connection is fine (no replay)
                fresh = UserClient(ws2)
                await fresh.subscribe(creds)
                assert await fresh.barrier() == []
                await place(ac, sb, 1, market=1)
                [ev] = await fresh.barrier()
                assert ev["type"] == "PLACEMENT" and ev["market"] == sb.markets[1].condition_id
                # the global switch silences every user socket, new ones too
                sb.faults.user_half_open = True
                await place(ac, sb, 1, market=2)
                await ws2.send_message("PING")
                with trio.move_on_after(30) as cs:
                    await fresh.recv()
                assert cs.cancelled_caught
        sb.faults.user_half_open = False
        async with open_websocket_url(sb.user_ws_url) as ws3:
            u3 = UserClient(ws3)
            await u3.subscribe(creds, markets=[sb.markets[3].condition_id])
            await place(ac, sb, 1, market=0)  # another market: filtered out
            assert await u3.barrier() == []
            assert sb.faults.user_drop(code=4002) == 1
            with trio.fail_after(5), pytest.raises(ConnectionClosed) as exc:
                await u3.recv()
            assert exc.value.reason.code == 4002
        assert sb.faults.counts["user_half_open"] == 1 and sb.faults.counts["user_drop"] == 1


async def test_faults_control_and_audit_endpoints_over_http(autojump_clock) -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb, AsyncClob(sb) as ac:
        await ac.derive()
        ids = await place(ac, sb, 2)
        http = ac.http
        body = {
            "submit_timeout": {"mode": "drop", "count": 2},
            "ghost_fill_rate": 0.25,
            "heartbeat_fail": {"status": 500, "count": 1},
            "inject": ["engine_restart", "ghost_fill"],
            "seconds": 5,
            "post_only_seconds": 7,
            "n": 2,
        }
        r = (await http.post("/_sandbox/faults", json=body)).json()
        assert r["submit_timeout"] == {"mode": "drop", "seconds": 30.0, "count": 2}
        assert r["ghost_fill_rate"] == 0.25 and r["ghost_fills"] == 2 and r["heartbeat_fail"]["status"] == 500
        assert r["engine_mode"] == "restart" and r["injected"] == {"engine_restart": 1, "ghost_fill": 2}
        assert (
            await http.post("/_sandbox/faults", json={"submit_timeout": {"mode": "bogus"}})
        ).status_code == 400
        assert (await ac.heartbeat("")).status_code == 500
        await trio.sleep(6)
        assert (await http.get("/_sandbox/faults")).json()["engine_mode"] == "post_only"
        r = (await http.post("/_sandbox/faults", json={"clear": True})).json()
        assert r["submit_timeout"] is None and r["engine_mode"] is None and r["ghost_fills"] == 0
        # audit and open orders for a harness in another process
        audit = (await http.get("/_sandbox/audit", params={"kind": "order"})).json()
        assert [rec["order_id"] for rec in audit["records"]] == ids and audit["last_seq"] == sb.audit[-1][
            "seq"
        ]
        assert all(rec["accepted"] and rec["order"]["signer"] == TEST_ADDRESS for rec in audit["records"])
        since = (await http.get("/_sandbox/audit", params={"since": audit["records"][0]["seq"]})).json()[
            "records"
        ]
        assert since[0]["seq"] == audit["records"][0]["seq"] + 1
        oo = (await http.get("/_sandbox/open-orders")).json()["orders"]
        assert sorted(o["id"] for o in oo) == sorted(ids) and all(
            o["address"] == TEST_ADDRESS.lower() for o in oo
        )
        # balances and the market switch
        r = await http.post("/_sandbox/balance", json={"address": TEST_ADDRESS, "collateral": 5})
        assert r.json()["collateral"] == "5"
        r = await http.post(
            "/_sandbox/market", json={"condition_id": sb.markets[0].condition_id, "accepting_orders": False}
        )
        assert r.json()["accepting_orders"] is False
        m = (await http.get(f"/markets/{sb.markets[0].condition_id}")).json()
        assert m["accepting_orders"] is False
        r = await http.post(
            "/_sandbox/trade", json={"token_id": sb.markets[1].yes_token, "side": "BUY", "size": 5}
        )
        assert r.status_code == 200 and r.json()["frames"] >= 1


async def test_gtd_expiry_and_malformed_requests_are_audited(autojump_clock) -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb, AsyncClob(sb) as ac:
        await ac.derive()
        tok = sb.markets[0].yes_token
        exp = int(sb.orders.now_s()) + 61
        r = await ac.post_order(
            ac.build(tok, passive_buy_price(sb, tok), 10, expiration=exp), "GTD", post_only=True
        )
        oid = r.json()["orderID"]
        [row] = await ac.open_orders()
        assert row["order_type"] == "GTD" and row["expiration"] == str(exp)
        await trio.sleep(exp - sb.orders.now_s() - 0.5)
        assert len(await ac.open_orders()) == 1
        await trio.sleep(1)
        assert await ac.open_orders() == []
        assert sb.audit.of("cancel")[-1]["endpoint"] == "expired" and sb.audit.of("cancel")[-1][
            "canceled"
        ] == [oid]
        # malformed requests are refused whole, and recorded
        assert (await ac.request("DELETE", "/order", {"orderID": "0x12"})).json() == {
            "error": "Invalid orderID"
        }
        assert (await ac.request("DELETE", "/orders", ["0x" + "ab" * 32] * 3001)).status_code == 400
        assert (await ac.request("POST", "/orders", [])).json() == {"error": "Invalid order payload"}
        refused = sb.audit.of("request_rejected")
        assert [x["reason"] for x in refused] == [
            "Invalid orderID",
            "Too many orders in payload, max allowed: 3000",
            "Invalid order payload",
        ]
        assert refused[0]["body"] == '{"orderID":"0x12"}'


async def test_user_channel_market_filter_and_operations() -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb, AsyncClob(sb) as ac:
        creds = await ac.derive()
        m0, m1 = sb.markets[0].condition_id, sb.markets[1].condition_id
        async with open_websocket_url(sb.user_ws_url) as ws:
            user = UserClient(ws)
            await ws.send_message("PING")  # answered before subscribing too
            assert await user.recv() == "PONG"
            await user.subscribe(creds, markets=[m0])
            await place(ac, sb, 1, market=1)
            assert await user.barrier() == []
            await ws.send_message(json.dumps({"operation": "subscribe", "markets": [m1]}))
            await place(ac, sb, 1, market=1)
            assert [e["market"] for e in await user.barrier()] == [m1]
            await ws.send_message(json.dumps({"operation": "unsubscribe", "markets": [m0]}))
            await place(ac, sb, 1, market=0)
            assert await user.barrier() == []
        async with open_websocket_url(sb.user_ws_url) as ws, AsyncClob(sb, OTHER_PRIVATE_KEY) as other:
            user = UserClient(ws)
            await user.subscribe(creds)  # every market, but only this address's orders
            await other.derive()
            await place(other, sb, 1, market=2)
            await place(ac, sb, 1, market=2)
            [ev] = await user.barrier()
            assert ev["owner"] == creds.api_key
