"""The order side driven by py_clob_client_v2 itself (its blocking calls run in a thread): API keys, a post-only
order's whole life (REST, market channel, user channel), batches, cancels, auth failures and every order check."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import httpx
import pytest
import trio
from orders_kit import AsyncClob, UserClient, official_client, passive_buy_price, run, to_official
from py_clob_client_v2.clob_types import (
    ApiCreds,
    AssetType,
    BalanceAllowanceParams,
    CreateOrderOptions,
    OpenOrderParams,
    OrderArgsV2,
    OrderMarketCancelParams,
    OrderPayload,
    OrderScoringParams,
    OrderType,
    PartialCreateOrderOptions,
    PostOrdersV2Args,
)
from py_clob_client_v2.exceptions import PolyApiException
from py_clob_client_v2.order_builder.builder import OrderBuilder
from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2
from py_clob_client_v2.signer import Signer
from sandbox_testkit import MarketClient, WireValidator
from trio_websocket import ConnectionClosed, open_websocket_url

from sandbox.auth import derive_creds
from sandbox.scenarios import SCENARIOS
from sandbox.server import open_sandbox
from sandbox.testkeys import OTHER_PRIVATE_KEY, TEST_ADDRESS, TEST_PRIVATE_KEY, address_of, creds_for


async def client_with_key(sb):
    c = official_client(sb)
    c.set_api_creds(await run(c.create_or_derive_api_key))
    return c


def audit_reason(sb, order_id=None):
    recs = [r for r in sb.audit.orders() if order_id is None or r["order_id"] == order_id]
    return recs[-1]


def test_test_key_is_fixed_and_documented() -> None:
    assert TEST_PRIVATE_KEY == "0x" + "11" * 32
    assert TEST_ADDRESS == "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A" == address_of(TEST_PRIVATE_KEY)
    c = creds_for()
    assert c == derive_creds(TEST_ADDRESS, 0)
    assert len(c.secret) == 44 and len(c.passphrase) == 64 and c.api_key.count("-") == 4
    assert c.secret not in repr(c) and c.passphrase not in repr(c)


async def test_api_keys_create_derive_and_l1_checks() -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb:
        c = official_client(sb)
        created = await run(c.create_api_key)
        assert created.api_key == creds_for().api_key  # deterministic per (address, nonce, server secret)
        with pytest.raises(PolyApiException) as exc:  # that nonce has a key already
            await run(c.create_api_key)
        assert exc.value.status_code == 400
        assert await run(c.derive_api_key) == created
        assert await run(c.create_or_derive_api_key) == created
        other_nonce = await run(c.create_or_derive_api_key, 7)
        assert other_nonce.api_key != created.api_key and other_nonce == to_official(creds_for(nonce=7))
        # L1 headers signed by another key, or stale, or for another chain -> 401
        async with httpx.AsyncClient(base_url=sb.base_url) as http:
            from py_clob_client_v2.headers.headers import create_level_1_headers

            good = create_level_1_headers(Signer(TEST_PRIVATE_KEY, 137), nonce=0)
            for bad in (
                {**good, "POLY_ADDRESS": address_of(OTHER_PRIVATE_KEY)},
                create_level_1_headers(Signer(TEST_PRIVATE_KEY, 137), nonce=0, timestamp=1_000_000_000),
                create_level_1_headers(Signer(TEST_PRIVATE_KEY, 80002), nonce=0),
                {k: v for k, v in good.items() if k != "POLY_SIGNATURE"},
            ):
                r = await http.get("/auth/derive-api-key", headers=bad)
                assert r.status_code == 401 and r.json() == {"error": "Invalid L1 Request headers"}
            r = await http.get("/auth/derive-api-key", headers=good)
            assert r.status_code == 200 and r.json()["apiKey"] == created.api_key
        assert len(sb.audit.of("auth_reject")) == 4


async def test_post_only_order_lifecycle_rest_market_channel_and_user_channel(
    validator: WireValidator,
) -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb:
        c = await client_with_key(sb)
        m = sb.markets[0]
        yes, no = m.yes_token, m.no_token
        price = passive_buy_price(sb, yes)
        level_before = dict(sb.book(yes).bids).get(Decimal(str(price)), Decimal(0))
        async with (
            open_websocket_url(sb.market_ws_url) as mws,
            open_websocket_url(sb.user_ws_url) as uws,
        ):
            market = MarketClient(mws, validator)
            await market.subscribe([yes, no])
            await market.barrier()  # the initial dump
            user = UserClient(uws)
            await user.subscribe(c.creds, markets=[m.condition_id])
            assert await user.barrier() == []

            order = await run(c.create_order, OrderArgsV2(token_id=yes, price=price, size=10, side="BUY"))
            resp = await run(c.post_order, order, OrderType.GTC, True)
            oid = resp["orderID"]
            assert resp == {
                "success": True,
                "errorMsg": "",
                "orderID": oid,
                "status": "live",
                "makingAmount": "",
                "takingAmount": "",
                "transactionsHashes": [],
                "tradeIDs": [],
            }
            assert oid.startswith("0x") and len(oid) == 66
            # REST: /data/orders (the SDK paginates), /data/order/{id}, /book
            [row] = await run(c.get_open_orders)
            assert row == {
                "id": oid,
                "status": "LIVE",
                "owner": c.creds.api_key,
                "maker_address": TEST_ADDRESS,
                "market": m.condition_id,
                "asset_id": yes,
                "side": "BUY",
                "original_size": "10",
                "size_matched": "0",
                "price": format(Decimal(str(price)).normalize(), "f"),
                "outcome": "Yes",
                "expiration": "0",
                "order_type": "GTC",
                "associate_trades": [],
                "created_at": row["created_at"],
            }
            assert await run(c.get_order, oid) == row
            assert await run(c.get_open_orders, OpenOrderParams(asset_id=no)) == []
            assert dict(sb.book(yes).bids)[Decimal(str(price))] == level_before + 10
            rest_book = (await httpx.AsyncClient().get(sb.base_url + "/book", params={"token_id": no})).json()
            no_price = format((1 - Decimal(str(price))).normalize(), "f")
            assert {"price": no_price, "size": format((level_before + 10).normalize(), "f")} in rest_book[
                "asks"
            ]
            # market channel: one price_change with the YES bid level and its NO ask mirror
            frames = [
                e
                for t in await market.barrier()
                for e in (json.loads(t) if t.startswith("[") else [json.loads(t)])
            ]
            pcs = [pc for e in frames if e["event_type"] == "price_change" for pc in e["price_changes"]]
            size = format((level_before + 10).normalize(), "f")
            assert {
                "asset_id": yes,
                "price": format(Decimal(str(price)).normalize(), "f"),
                "size": size,
                "side": "BUY",
            }.items() <= pcs[0].items()
            assert {"asset_id": no, "price": no_price, "size": size, "side": "SELL"}.items() <= pcs[1].items()
            # user channel: PLACEMENT
            [placement] = await user.barrier()
            assert placement["event_type"] == "order" and placement["type"] == "PLACEMENT"
            assert placement["id"] == oid and placement["owner"] == c.creds.api_key
            assert placement["status"] == "LIVE" and placement["original_size"] == "10"
            assert placement["size_matched"] == "0" and placement["associate_trades"] is None
            assert placement["maker_address"] == TEST_ADDRESS and placement["market"] == m.condition_id
            assert all(isinstance(v, str) for k, v in placement.items() if k != "associate_trades")

            assert await run(c.cancel_order, OrderPayload(orderID=oid)) == {
                "canceled": [oid],
                "not_canceled": {},
            }
            [cancellation] = await user.barrier()
            assert cancellation["type"] == "CANCELLATION" and cancellation["status"] == "CANCELED"
            assert await run(c.get_open_orders) == []
            assert (await run(c.get_order, oid))["status"] == "CANCELED"
            assert dict(sb.book(yes).bids).get(Decimal(str(price)), Decimal(0)) == level_before
            again = await run(c.cancel_order, OrderPayload(orderID=oid))
            assert again == {"canceled": [], "not_canceled": {oid: "Order not found or already canceled"}}
            await market.barrier()  # every frame so far passed the wire validator
        [rec] = sb.audit.orders()
        assert rec["accepted"] and rec["order_id"] == oid and rec["signer"] == TEST_ADDRESS
        assert rec["order"]["signer"] == TEST_ADDRESS and rec["post_only"] is True and rec["size"] == "10"
        assert [r["endpoint"] for r in sb.audit.of("cancel")] == ["DELETE /order", "DELETE /order"]


async def test_batches_pagination_and_cancel_variants() -> None:
    async with open_sandbox(seed=2, steps_per_second=0, page_size=2) as sb:
        c = await client_with_key(sb)
        m0, m1 = sb.markets[0], sb.markets[1]
        orders = []
        for i in range(15):
            m = (m0, m1)[i % 2]
            orders.append(
                await run(
                    c.create_order,
                    OrderArgsV2(
                        token_id=m.yes_token,
                        price=passive_buy_price(sb, m.yes_token, 1 + i // 2),
                        size=5 + i,
                        side="BUY",
                    ),
                )
            )
        res = await run(c.post_orders, [PostOrdersV2Args(o, OrderType.GTC) for o in orders], True)
        assert len(res) == 15 and all(
            r["success"] and r["errorMsg"] == "" and r["status"] == "live" for r in res
        )
        ids = [r["orderID"] for r in res]
        assert len(set(ids)) == 15
        open_ = await run(c.get_open_orders)  # 8 pages of 2
        assert sorted(o["id"] for o in open_) == sorted(ids)
        assert len(await run(c.get_open_orders, OpenOrderParams(market=m1.condition_id))) == 7
        assert [o["id"] for o in await run(c.get_open_orders, OpenOrderParams(id=ids[3]))] == [ids[3]]
        # 16 orders: the whole batch is refused
        extra = await run(c.create_order, OrderArgsV2(token_id=m0.yes_token, price=0.02, size=5, side="BUY"))
        with pytest.raises(PolyApiException) as exc:
            await run(c.post_orders, [PostOrdersV2Args(o, OrderType.GTC) for o in [*orders, extra]], True)
        assert exc.value.status_code == 400
        assert exc.value.error_msg == {"error": "Too many orders in payload: 16, max allowed: 15"}
        # a batch mixing good and bad orders: per-order results (as documented, refusals carry errorMsg)
        dup = await run(
            c.post_orders,
            [PostOrdersV2Args(orders[0], OrderType.GTC), PostOrdersV2Args(extra, OrderType.GTC)],
            True,
        )
        assert dup[0]["errorMsg"] == f"order {ids[0]} is invalid. Duplicated." and dup[0]["orderID"] == ""
        assert dup[1]["errorMsg"] == "" and dup[1]["status"] == "live"
        # cancel variants
        r = await run(c.cancel_orders, [ids[0], ids[1], ids[0], "0x" + "00" * 32])
        assert sorted(r["canceled"]) == sorted([ids[0], ids[1]])
        assert r["not_canceled"] == {"0x" + "00" * 32: "Order not found or already canceled"}
        r = await run(c.cancel_market_orders, OrderMarketCancelParams(market=m1.condition_id))
        assert sorted(r["canceled"]) == sorted(ids[1::2][1:])
        r = await run(c.cancel_all)
        assert sorted(r["canceled"]) == sorted([*ids[2::2], dup[1]["orderID"]])
        assert await run(c.get_open_orders) == [] and sb.open_orders() == []
        assert (await run(c.cancel_all)) == {"canceled": [], "not_canceled": {}}


def _sign(sb, key, token, price, size, side="BUY", tick="0.01", neg_risk=False, funder=None, sig_type=None):
    b = OrderBuilder(Signer(key, 137), signature_type=sig_type, funder=funder)
    return b.build_order(
        OrderArgsV2(token_id=token, price=price, size=size, side=side),
        CreateOrderOptions(tick_size=tick, neg_risk=neg_risk),
    )


async def _post_raw(sb, creds, payload):
    async with AsyncClob(sb, creds=creds) as ac:
        return await ac.request("POST", "/order", payload)


async def test_order_checks_reject_with_polymarket_messages() -> None:
    async with open_sandbox(seed=1, scenario=SCENARIOS["calm"].with_(n_markets=5), steps_per_second=0) as sb:
        c = await client_with_key(sb)
        creds = c.creds
        m = sb.markets[0]
        nr = next(mm for mm in sb.markets if mm.neg_risk)
        tok = m.yes_token
        p = passive_buy_price(sb, tok)
        best_ask = float(sb.book(tok).best_ask)

        async def reject(order_json, status=400):
            r = await _post_raw(sb, creds, order_json)
            assert r.status_code == status, r.text
            return r.json()["error"]

        def body(o, post_only=True, order_type="GTC"):
            return order_to_json_v2(o, creds.api_key, order_type, post_only, False)

        # signed by another key
        other = _sign(sb, OTHER_PRIVATE_KEY, tok, p, 10)
        assert await reject(body(other)) == "the order signer address has to be the address of the API KEY"
        # body owner is not the API key
        good = _sign(sb, TEST_PRIVATE_KEY, tok, p, 10)
        assert await reject({**body(good), "owner": "someone-else"}) == (
            "the order owner has to be the owner of the API KEY"
        )
        # tampered after signing: amounts, signature
        tampered = body(good)
        tampered["order"] = {
            **tampered["order"],
            "makerAmount": str(int(tampered["order"]["makerAmount"]) + 10_000),
        }
        assert await reject(tampered) == "invalid signature"
        assert "recovers to" in audit_reason(sb)["detail"]
        flipped = body(good)
        flipped["order"] = {**flipped["order"], "signature": flipped["order"]["signature"][:-4] + "0000"}
        assert await reject(flipped) == "invalid signature"
        # the wrong EIP-712 domain: signed for the neg-risk exchange on a normal market (and vice versa)
        wrong_domain = _sign(sb, TEST_PRIVATE_KEY, tok, p, 10, neg_risk=True)
        assert await reject(body(wrong_domain)) == "invalid signature"
        assert "signed for the neg-risk V2 exchange" in audit_reason(sb)["detail"]
        np_ = passive_buy_price(sb, nr.yes_token)
        assert await reject(body(_sign(sb, TEST_PRIVATE_KEY, nr.yes_token, np_, 10))) == "invalid signature"
        assert "signed for the non-neg-risk V2 exchange" in audit_reason(sb)["detail"]
        ok = await run(
            c.post_order,
            await run(c.create_order, OrderArgsV2(token_id=nr.yes_token, price=np_, size=10, side="BUY")),
            OrderType.GTC,
            True,
        )
        assert ok["status"] == "live"  # the SDK asks /neg-risk and signs for the neg-risk exchange
        # EOA order whose maker is not the signer
        proxied = _sign(sb, TEST_PRIVATE_KEY, tok, p, 10, funder=address_of(OTHER_PRIVATE_KEY))
        assert await reject(body(proxied)) == "the order owner has to be the owner of the API KEY"
        # off the tick grid (signed with a finer tick than the market's)
        off = _sign(sb, TEST_PRIVATE_KEY, tok, round(p - 0.005, 3), 10, tick="0.001")
        oid = audit_reason(sb)["order_id"]
        msg = await reject(body(off))
        rec = audit_reason(sb)
        assert (
            msg
            == f"order {rec['order_id']} is invalid. Price ({round(p - 0.005, 3)}) breaks minimum tick size rule: 0.01"
        )
        assert rec["order_id"] != oid
        # out of [tick, 1 - tick]
        for bad_price in (1.0, 0.0):
            if bad_price == 0.0:
                o = _sign(sb, TEST_PRIVATE_KEY, tok, 0.001, 10, tick="0.001")  # 0.001 < tick 0.01
            else:
                o = _sign(sb, TEST_PRIVATE_KEY, tok, 1.0, 10)
            assert "breaks minimum tick size rule: 0.01" in await reject(body(o))
            assert "outside" in audit_reason(sb)["detail"] or "grid" in audit_reason(sb)["detail"]
        # below the minimum size (5)
        small = _sign(sb, TEST_PRIVATE_KEY, tok, p, 4.99)
        msg = await reject(body(small))
        assert (
            msg == f"order {audit_reason(sb)['order_id']} is invalid. Size (4.99) lower than the minimum: 5"
        )
        # post-only that would cross
        crossing = _sign(sb, TEST_PRIVATE_KEY, tok, best_ask, 10)
        assert await reject(body(crossing)) == "invalid post-only order: order crosses book"
        # post-only FOK
        assert await reject(body(good, order_type="FOK")) == (
            "invalid post-only order: only GTC and GTD order types are allowed"
        )
        # GTD that expires too soon
        soon = OrderBuilder(Signer(TEST_PRIVATE_KEY, 137)).build_order(
            OrderArgsV2(token_id=tok, price=p, size=10, side="BUY", expiration=int(sb.orders.now_s()) + 30),
            CreateOrderOptions(tick_size="0.01", neg_risk=False),
        )
        assert await reject(body(soon, order_type="GTD")) == "invalid expiration"
        # balance: 100 pUSD, and SELLs need tokens
        sb.orders.set_balance(TEST_ADDRESS, collateral=100)
        big = _sign(sb, TEST_PRIVATE_KEY, tok, p, 100 / p + 1)
        assert await reject(body(big)) == "not enough balance / allowance"
        sell = _sign(sb, TEST_PRIVATE_KEY, tok, best_ask + 0.05, 10, side="SELL")
        assert await reject(body(sell)) == "not enough balance / allowance"
        sb.orders.set_balance(TEST_ADDRESS, tokens={tok: 10})
        assert (await _post_raw(sb, creds, body(sell))).json()["status"] == "live"
        sell2 = _sign(sb, TEST_PRIVATE_KEY, tok, best_ask + 0.06, 5, side="SELL")
        assert await reject(body(sell2)) == "not enough balance / allowance"  # the 10 are reserved
        # malformed payloads
        assert (
            await reject({"order": {"salt": 1}, "owner": creds.api_key, "orderType": "GTC"})
            == "Invalid order payload"
        )
        unknown_token = body(good)
        unknown_token["order"] = {**unknown_token["order"], "tokenId": "123"}
        assert await reject(unknown_token) == "Invalid order payload"
        # a closed market
        sb.orders.set_accepting(m.condition_id, False)
        assert await reject(body(_sign(sb, TEST_PRIVATE_KEY, tok, p - 0.01, 10))) == (
            "the market is not yet ready to process new orders"
        )
        # nothing rejected reached the book
        accepted = sb.audit.orders(accepted=True)
        assert {r["order_id"] for r in accepted} == {o["id"] for o in sb.open_orders()}
        assert all(r["reason"] and r["detail"] for r in sb.audit.orders(accepted=False))


async def test_bad_hmac_and_stale_timestamps_are_401() -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb:
        c = await client_with_key(sb)
        good = c.creds
        for bad in (
            dataclasses.replace(good, api_secret=derive_creds(TEST_ADDRESS, 9).secret),
            dataclasses.replace(good, api_passphrase="0" * 64),
            dataclasses.replace(good, api_key="00000000-0000-4000-8000-000000000000"),
        ):
            c2 = official_client(sb, creds=bad)
            for call in (c2.get_open_orders, c2.cancel_all, lambda c2=c2: c2.post_heartbeat("")):
                with pytest.raises(PolyApiException) as exc:
                    await run(call)
                assert exc.value.status_code == 401
                assert exc.value.error_msg == {"error": "Unauthorized/Invalid api key"}
        # creds of another address used with this signer's POLY_ADDRESS
        other = to_official(creds_for(OTHER_PRIVATE_KEY))
        sb.creds_for(address_of(OTHER_PRIVATE_KEY))
        with pytest.raises(PolyApiException) as exc:
            await run(official_client(sb, creds=other).get_open_orders)
        assert exc.value.status_code == 401
        # a timestamp out of the allowed skew (the server checks the wall clock)
        async with AsyncClob(sb, creds=good) as ac:
            from py_clob_client_v2.headers.headers import create_level_2_headers
            from py_clob_client_v2.clob_types import RequestArgs

            h = create_level_2_headers(
                Signer(TEST_PRIVATE_KEY, 137),
                good,
                RequestArgs("GET", "/data/orders"),
                timestamp=int(sb.orders.wall0) - 3600,
            )
            r = await ac.http.get("/data/orders", headers=h)
            assert r.status_code == 401
            assert (await ac.request("GET", "/data/orders")).status_code == 200
            # the body is part of the signature
            h = create_level_2_headers(
                Signer(TEST_PRIVATE_KEY, 137),
                good,
                RequestArgs("DELETE", "/order", serialized_body='{"orderID":"0x1"}'),
            )
            r = await ac.http.request("DELETE", "/order", headers=h, content=b'{"orderID":"0x2"}')
            assert r.status_code == 401
        reasons = [r["reason"] for r in sb.audit.of("auth_reject")]
        assert "HMAC signature mismatch" in reasons and "wrong POLY_PASSPHRASE" in reasons
        assert "unknown POLY_API_KEY" in reasons and any("more than" in x for x in reasons)
        assert any("is not the API key's address" in x for x in reasons)


async def test_balance_allowance_scoring_and_user_channel_auth() -> None:
    async with open_sandbox(seed=1, steps_per_second=0, collateral=250) as sb:
        c = await client_with_key(sb)
        bal = await run(c.get_balance_allowance, BalanceAllowanceParams(asset_type=AssetType.COLLATERAL))
        assert bal["balance"] == "250000000" and len(bal["allowances"]) == 3
        m = next(mm for mm in sb.markets if mm.has_rewards)
        tok = m.yes_token
        bal = await run(
            c.get_balance_allowance, BalanceAllowanceParams(asset_type=AssetType.CONDITIONAL, token_id=tok)
        )
        assert bal["balance"] == "0"
        # scoring: within max_spread of the midpoint and at least min_size
        mid = (sb.book(tok).best_bid + sb.book(tok).best_ask) / 2
        inside = float(sb.book(tok).best_bid)
        assert abs(Decimal(str(inside)) - mid) * 100 <= Decimal(str(m.rewards_max_spread))
        big = await run(
            c.post_order,
            await run(
                c.create_order, OrderArgsV2(token_id=tok, price=inside, size=m.rewards_min_size, side="BUY")
            ),
            OrderType.GTC,
            True,
        )
        small = await run(
            c.post_order,
            await run(c.create_order, OrderArgsV2(token_id=tok, price=inside, size=5, side="BUY")),
            OrderType.GTC,
            True,
        )
        far = await run(
            c.post_order,
            await run(
                c.create_order, OrderArgsV2(token_id=tok, price=0.01, size=m.rewards_min_size, side="BUY")
            ),
            OrderType.GTC,
            True,
        )
        assert (await run(c.is_order_scoring, OrderScoringParams(big["orderID"]))) == {"scoring": True}
        assert (await run(c.is_order_scoring, OrderScoringParams(small["orderID"]))) == {"scoring": False}
        assert (await run(c.is_order_scoring, OrderScoringParams(far["orderID"]))) == {"scoring": False}
        bal = await run(c.get_balance_allowance, BalanceAllowanceParams(asset_type=AssetType.COLLATERAL))
        assert bal["balance"] == "250000000"  # on-chain balance; open orders only reserve it
        assert sb.orders.balances(TEST_ADDRESS)["collateral_reserved"] != "0"
        # the user channel rejects bad credentials with a close frame
        async with open_websocket_url(sb.user_ws_url) as ws:
            u = UserClient(ws)
            await u.subscribe(ApiCreds(c.creds.api_key, c.creds.api_secret, "bad"))
            with trio.fail_after(5), pytest.raises(ConnectionClosed) as exc:
                await u.recv()
            assert exc.value.reason.code == 1008 and exc.value.reason.reason == "Unauthorized/Invalid api key"
        # options the official client reads for market orders: /markets-by-token, /clob-markets
        info = await run(c.get_clob_market_info, m.condition_id)
        assert info["t"][0]["t"] == m.yes_token and info["mos"] == 5
        mo = await run(
            c.create_order,
            OrderArgsV2(token_id=tok, price=inside, size=5, side="BUY"),
            PartialCreateOrderOptions(tick_size="0.01"),
        )
        assert mo.tokenId == tok


async def test_signature_encoding_is_checked_as_the_exchange_contract_does() -> None:
    """v must be 27/28 and s in the lower half (ecrecover + OpenZeppelin ECDSA); a canonical signature with v
    rewritten to 0/1, or its malleable twin (n - s, flipped v), is refused."""
    async with open_sandbox(seed=1, steps_per_second=0) as sb:
        c = await client_with_key(sb)
        tok = sb.markets[0].yes_token
        o = _sign(sb, TEST_PRIVATE_KEY, tok, passive_buy_price(sb, tok), 10)
        body = order_to_json_v2(o, c.creds.api_key, "GTC", True, False)
        sig = bytes.fromhex(body["order"]["signature"][2:])
        n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
        low_v = sig[:64] + bytes([sig[64] - 27])
        high_s = (
            sig[:32] + (n - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big") + bytes([55 - sig[64]])
        )
        for bad, why in ((low_v, "must be 27 or 28"), (high_s, "upper half")):
            r = await _post_raw(
                sb, c.creds, {**body, "order": {**body["order"], "signature": "0x" + bad.hex()}}
            )
            assert r.status_code == 400 and r.json() == {"error": "invalid signature"}
            assert why in audit_reason(sb)["detail"]
        assert (await _post_raw(sb, c.creds, body)).json()["status"] == "live"
