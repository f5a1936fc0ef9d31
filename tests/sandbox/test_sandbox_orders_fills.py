"""Matching: resting orders filled by the synthetic market (queue priority, partial fills, maker price), our
crossing orders as takers, trade statuses MATCHED -> MINED -> CONFIRMED on trio's clock, ghost fills, balances,
book integrity under random flow, and the simulator's determinism without user orders."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import trio
from orders_kit import AsyncClob, UserClient
from sandbox_testkit import MarketClient
from trio_websocket import open_websocket_url

from sandbox.engine import LIVE, MATCHED
from sandbox.server import open_sandbox
from sandbox.sim import MarketSim
from sandbox.testkeys import TEST_ADDRESS
from sandbox.wire import MICRO, PIPS, encode


def improving_bid(sb, token) -> float:
    """A BUY price that becomes the best bid alone (first in the queue) when the spread allows it."""
    b = sb.book(token)
    p = b.best_bid + b.tick_size
    return float(p if p < b.best_ask else b.best_bid)


def check_books(sb) -> None:
    """User parts of every level = the resting user orders there; totals cover them; books never cross."""
    eng = sb.orders
    for book in sb.sim.books.values():
        for side, levels, umap in (("BUY", book.bids, book.user_bids), ("SELL", book.asks, book.user_asks)):
            want: dict[int, int] = {}
            for (cid, s, p), q in eng.queues.items():
                if cid == book.spec.condition_id and s == side:
                    for o in q:
                        assert o.resting and o.status == LIVE and o.remaining > 0
                        assert 0 <= o.ahead <= levels[p] - umap[p]
                        want[p] = want.get(p, 0) + o.remaining
            assert umap == want
            for p, u in umap.items():
                assert levels[p] >= u
                assert p % book.tick == 0
        if book.bids and book.asks:
            assert max(book.bids) < min(book.asks)
    for o in eng.orders.values():
        assert (o.status == LIVE) == o.resting or o.order_type in ("FOK", "FAK")


async def test_resting_order_filled_by_the_synthetic_market_then_mined_and_confirmed(autojump_clock) -> None:
    async with open_sandbox(seed=3, steps_per_second=0) as sb, AsyncClob(sb) as ac:
        creds = await ac.derive()
        m = sb.markets[0]
        tok = m.yes_token
        async with open_websocket_url(sb.user_ws_url) as ws:
            user = UserClient(ws)
            await user.subscribe(creds)
            await user.barrier()
            price = improving_bid(sb, tok)
            r = await ac.post_order(ac.build(tok, price, 40), post_only=True)
            oid = r.json()["orderID"]
            collateral0 = sb.orders.account(TEST_ADDRESS).collateral
            for _ in range(3000):  # the market trades on its own until it reaches our bid
                sb.step()
                if sb.orders.orders[oid].matched:
                    break
            o = sb.orders.orders[oid]
            assert o.matched > 0, "the synthetic market never traded through our bid"
            trade = await user.wait_for(lambda e: e.get("event_type") == "trade")
            assert trade["status"] == "MATCHED" and trade["transaction_hash"] == ""
            assert trade["trader_side"] == "MAKER" and trade["trade_owner"] == creds.api_key
            assert trade["owner"] != creds.api_key  # the taker is synthetic
            [row] = [r for r in trade["maker_orders"] if r["owner"] == creds.api_key]
            assert row["order_id"] == oid and row["price"] == format(Decimal(str(price)).normalize(), "f")
            assert row["side"] == "BUY" and row["asset_id"] == tok and row["outcome"] == "Yes"
            assert Decimal(row["matched_amount"]) * MICRO == o.matched or o.associate_trades[0] != trade["id"]
            assert all(
                isinstance(v, str) for k, v in trade.items() if k not in ("maker_orders", "bucket_index")
            )
            upd = await user.wait_for(lambda e: e.get("event_type") == "order" and e["type"] == "UPDATE")
            assert (
                upd["id"] == oid
                and Decimal(upd["size_matched"]) > 0
                and trade["id"] in upd["associate_trades"]
            )
            # balances moved at the maker price
            acc = sb.orders.account(TEST_ADDRESS)
            assert acc.tokens[tok] == o.matched
            assert collateral0 - acc.collateral == -(-o.matched * round(price * PIPS) // PIPS)
            # settlement on trio's clock
            t0 = trio.current_time()
            mined = await user.wait_for(lambda e: e.get("event_type") == "trade" and e["status"] == "MINED")
            assert 0.9 <= trio.current_time() - t0 <= 1.1 and mined["transaction_hash"].startswith("0x")
            await user.wait_for(lambda e: e.get("event_type") == "trade" and e["status"] == "CONFIRMED")
            rest = await ac.trades()
            assert rest[0]["id"] == trade["id"] and rest[0]["status"] == "CONFIRMED"
            assert rest[0]["trader_side"] == "MAKER" and "event_type" not in rest[0]
            assert [t["id"] for t in await ac.trades(market=m.condition_id)] == [t["id"] for t in rest]
            assert await ac.trades(market=sb.markets[1].condition_id) == []
        statuses = [r["status"] for r in sb.audit.of("trade") if r["trade_id"] == trade["id"]]
        assert statuses == ["MATCHED", "MINED", "CONFIRMED"]
        check_books(sb)


async def test_queue_priority_partial_fills_and_the_no_token(autojump_clock) -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb, AsyncClob(sb) as ac:
        await ac.derive()
        m = sb.markets[0]
        yes, no = m.yes_token, m.no_token
        bb = sb.book(yes).best_bid
        ahead = dict(sb.book(yes).bids)[bb]
        r = await ac.post_order(ac.build(yes, float(bb), 20), post_only=True)  # joins behind `ahead` shares
        oid = r.json()["orderID"]
        o = sb.orders.orders[oid]
        assert o.ahead == int(ahead * MICRO)
        sb.trade(yes, "SELL", float(ahead) - 1)  # everything ahead but one share
        assert o.matched == 0 and o.ahead == MICRO
        sb.trade(yes, "SELL", 9)  # 1 synthetic, then 8 of ours
        assert o.matched == 8 * MICRO and o.status == LIVE
        assert dict(sb.book(yes).bids)[bb] == 12  # only our 12 left at that level
        [row] = await ac.open_orders()
        assert row["size_matched"] == "8" and row["original_size"] == "20"
        sb.trade(yes, "SELL", 100)
        assert o.status == MATCHED and o.matched == 20 * MICRO and not o.resting
        assert bb not in dict(sb.book(yes).bids)
        assert await ac.open_orders() == []
        # a BUY on the NO token rests as a YES ask at 1 - p and is lifted by YES buyers
        nb = sb.book(no)
        q = nb.best_bid + nb.tick_size if nb.best_bid + nb.tick_size < nb.best_ask else nb.best_bid
        r = await ac.post_order(ac.build(no, float(q), 10), post_only=True)
        noid = r.json()["orderID"]
        assert dict(sb.book(yes).asks)[1 - q] >= 10
        sb.trade(yes, "BUY", 10_000)
        trades = await ac.trades()
        t = next(t for t in trades if any(r["order_id"] == noid for r in t["maker_orders"]))
        row = next(r for r in t["maker_orders"] if r["order_id"] == noid)
        assert row["asset_id"] == no and row["outcome"] == "No" and row["side"] == "BUY"
        assert row["price"] == format(q.normalize(), "f") and row["matched_amount"] == "10"
        check_books(sb)


async def test_crossing_orders_take_at_maker_prices(autojump_clock, validator) -> None:
    async with open_sandbox(seed=4, steps_per_second=0) as sb, AsyncClob(sb) as ac:
        creds = await ac.derive()
        tok = sb.markets[1].yes_token
        asks = sb.book(tok).asks
        (p1, s1), (p2, _) = asks[0], asks[1]
        async with open_websocket_url(sb.user_ws_url) as ws, open_websocket_url(sb.market_ws_url) as mws:
            market = MarketClient(mws, validator)  # every frame our orders cause passes the wire validator
            await market.subscribe(list(sb.markets[1].tokens), custom=True)
            await market.barrier()
            user = UserClient(ws)
            await user.subscribe(creds)
            await user.barrier()
            size = float(s1) + 3  # sweeps the first level, 3 from the second
            r = await ac.post_order(ac.build(tok, float(p2), size), "GTC")
            body = r.json()
            assert body["status"] == "matched" and len(body["tradeIDs"]) == 2 == len(
                body["transactionsHashes"]
            )
            assert Decimal(body["takingAmount"]) == Decimal(str(size))
            assert Decimal(body["makingAmount"]) == s1 * p1 + 3 * p2  # each level at its own (maker) price
            assert sb.orders.orders[body["orderID"]].status == MATCHED
            evs = await user.barrier()
            assert [e.get("type") for e in evs] == ["PLACEMENT", "TRADE", "TRADE", "UPDATE"]
            t1 = evs[1]
            assert t1["trader_side"] == "TAKER" and t1["taker_order_id"] == body["orderID"]
            assert t1["price"] == format(p1.normalize(), "f") and t1["side"] == "BUY"
            assert t1["maker_orders"][0]["owner"] != creds.api_key and t1["maker_orders"][0]["side"] == "SELL"
            assert evs[-1]["status"] == "MATCHED" and len(evs[-1]["associate_trades"]) == 2
            frames = [json.loads(t) for t in await market.barrier()]
            events = [e for f in frames for e in (f if isinstance(f, list) else [f])]
            prints = [e for e in events if e["event_type"] == "last_trade_price"]
            assert [(e["asset_id"], e["price"], e["side"]) for e in prints] == [
                (tok, format(p1.normalize(), "f"), "BUY"),
                (tok, format(p2.normalize(), "f"), "BUY"),
            ]
            assert prints[0]["transaction_hash"] == body["transactionsHashes"][0]
            assert any(e["event_type"] == "best_bid_ask" for e in events)
            # FAK: fills what it can, the rest is killed; FOK that cannot fill is refused whole
            ask = sb.book(tok).best_ask
            avail = dict(sb.book(tok).asks)[ask]
            r = await ac.post_order(ac.build(tok, float(ask), float(avail) + 50), "FAK")
            fak = sb.orders.orders[r.json()["orderID"]]
            assert fak.matched == int(avail * MICRO) and fak.status == "CANCELED"
            r = await ac.post_order(ac.build(tok, 0.02, 10_000, side="SELL"), "FOK")
            assert r.json() == {"error": "not enough balance / allowance"}  # we hold only what we bought
            sb.orders.set_balance(TEST_ADDRESS, tokens={tok: 1_000_000})
            r = await ac.post_order(ac.build(tok, float(sb.book(tok).best_bid), 900_000, side="SELL"), "FOK")
            assert r.json() == {
                "error": "order couldn't be fully filled. FOK orders are fully filled or killed."
            }
            await market.barrier()
        check_books(sb)


async def test_ghost_fill_fails_and_restores_the_order_and_balances(autojump_clock) -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb, AsyncClob(sb) as ac:
        creds = await ac.derive()
        tok = sb.markets[2].yes_token
        async with open_websocket_url(sb.user_ws_url) as ws:
            user = UserClient(ws)
            await user.subscribe(creds)
            price = improving_bid(sb, tok)
            oid = (await ac.post_order(ac.build(tok, price, 10), post_only=True)).json()["orderID"]
            before = sb.orders.balances(TEST_ADDRESS)
            level = dict(sb.book(tok).bids)[Decimal(str(price))]
            sb.faults.ghost_fill()  # the next trade with a user order fails
            sb.trade(tok, "SELL", float(level))  # exactly the whole level: whatever is ahead, then our 10
            assert sb.orders.orders[oid].status == MATCHED and Decimal(str(price)) not in dict(
                sb.book(tok).bids
            )
            statuses = []
            while len(statuses) < 3:
                ev = await user.wait_for(
                    lambda e: e.get("event_type") == "trade" and e["status"] not in statuses
                )
                statuses.append(ev["status"])
            assert statuses == ["MATCHED", "RETRYING", "FAILED"]
            assert ev["transaction_hash"].startswith("0x")
            upd = await user.wait_for(lambda e: e.get("type") == "UPDATE" and e["status"] == "LIVE")
            assert upd["size_matched"] == "0"
            [row] = await ac.open_orders()
            assert row["id"] == oid and row["status"] == "LIVE" and row["size_matched"] == "0"
            assert dict(sb.book(tok).bids)[Decimal(str(price))] == 10  # back in the book (the rest traded)
            assert sb.orders.balances(TEST_ADDRESS) == before
            assert (await ac.trades())[0]["status"] == "FAILED"
            # the probabilistic switch: every trade with a user order fails
            sb.faults.ghost_fill_rate = 1.0
            first = ev["id"]
            sb.trade(tok, "SELL", float(dict(sb.book(tok).bids)[Decimal(str(price))]))
            await user.wait_for(
                lambda e: e.get("event_type") == "trade" and e["status"] == "FAILED" and e["id"] != first
            )
            assert [t["status"] for t in await ac.trades()] == ["FAILED", "FAILED"]
            assert (await ac.open_orders())[0]["size_matched"] == "0"
        assert sb.faults.counts["ghost_fill"] == 2
        check_books(sb)


async def test_invariants_under_random_flow(autojump_clock) -> None:
    """Random placements, cancels, synthetic trades and sim steps (thin books, tick changes): books stay
    consistent, rejected orders never rest, and trade statuses settle."""
    for scenario in ("thin", "edge"):
        async with (
            open_sandbox(seed=5, scenario=scenario, steps_per_second=0, collateral=1e9) as sb,
            AsyncClob(sb) as ac,
        ):
            await ac.derive()
            rnd = random.Random(7)
            for tok in sb.token_ids:
                sb.orders.set_balance(TEST_ADDRESS, tokens={tok: 1e6})
            for i in range(120):
                tok = rnd.choice(sb.token_ids)
                b = sb.book(tok)
                act = rnd.random()
                if act < 0.45:
                    tick = b.tick_size
                    ref = b.best_bid or (b.best_ask - tick if b.best_ask else Decimal("0.5"))
                    p = min(max(ref + rnd.randint(-3, 2) * tick, tick), 1 - tick)
                    side = rnd.choice(["BUY", "SELL"])
                    await ac.post_order(
                        ac.build(tok, float(p), rnd.randint(5, 60), side=side),
                        rnd.choice(["GTC", "GTC", "FAK"]),
                        post_only=False,
                    )
                elif act < 0.6 and sb.open_orders():
                    await ac.cancel(rnd.choice(sb.open_orders())["id"])
                elif act < 0.75:
                    sb.trade(tok, rnd.choice(["BUY", "SELL"]), rnd.randint(5, 200))
                else:
                    sb.step(rnd.randint(1, 20))
                check_books(sb)
                if i % 40 == 0:
                    await trio.sleep(1)
            await trio.sleep(5)
            assert all(t.status in ("CONFIRMED", "FAILED") for t in sb.orders.trades.values())
            assert sb.orders.trades, "the random flow should have traded"
            accepted = {r["order_id"] for r in sb.audit.orders(accepted=True)}
            assert {o["id"] for o in sb.open_orders()} <= accepted


async def test_sim_is_unchanged_by_the_order_side_without_user_orders() -> None:
    async with open_sandbox(seed=11, scenario="busy", steps_per_second=0) as sb:
        assert sb.sim.hooks is sb.orders
        plain = MarketSim(11, "busy")
        for _ in range(200):
            assert [encode(f) for f in sb.step()] == [encode(f) for f in plain.step()]
