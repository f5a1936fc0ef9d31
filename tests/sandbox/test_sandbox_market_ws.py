"""The market channel over real WebSockets on loopback."""

from __future__ import annotations

import json
from decimal import Decimal

import trio
from sandbox_testkit import MarketClient, RefBook, WireValidator
from trio_websocket import open_websocket_url

from sandbox.server import open_sandbox
from sandbox.wire import encode


def events(text: str) -> list[dict]:
    obj = json.loads(text)
    return obj if isinstance(obj, list) else [obj]


async def test_initial_dump_is_one_array_with_a_book_per_asset(validator: WireValidator) -> None:
    async with open_sandbox(seed=1, scenario="calm", steps_per_second=0) as sb:
        toks = sb.token_ids
        want = [toks[3], toks[0], toks[1]]
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = MarketClient(ws, validator)
            await c.subscribe(want)
            with trio.fail_after(5):
                text = await c.recv()
            dump = json.loads(text)
            assert isinstance(dump, list)
            assert [e["event_type"] for e in dump] == ["book"] * 3
            assert [e["asset_id"] for e in dump] == want
            for e in dump:
                snap = sb.book(e["asset_id"])
                assert e["market"] == next(m.condition_id for m in sb.markets if e["asset_id"] in m.tokens)
                # best level is the LAST element on the wire
                assert Decimal(e["bids"][-1]["price"]) == snap.best_bid
                assert Decimal(e["asks"][-1]["price"]) == snap.best_ask
                assert e["tick_size"] == "0.01" and e["timestamp"].isdigit() and len(e["hash"]) == 40
            assert await c.barrier() == []


async def test_unknown_token_gets_empty_array_and_mixed_gets_known_only(validator: WireValidator) -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb:
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = MarketClient(ws, validator)
            await c.subscribe(["123456789"])
            with trio.fail_after(5):
                assert await c.recv() == "[]"
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = MarketClient(ws, validator)
            await c.subscribe(["123456789", sb.token_ids[2]])
            with trio.fail_after(5):
                dump = json.loads(await c.recv())
            assert [e["asset_id"] for e in dump] == [sb.token_ids[2]]


async def test_ping_gets_text_pong(validator: WireValidator) -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb:
        async with open_websocket_url(sb.market_ws_url) as ws:
            await ws.send_message("PING")  # even before subscribing
            with trio.fail_after(5):
                assert await ws.get_message() == "PONG"


async def test_initial_dump_false_sends_no_snapshot(validator: WireValidator) -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb:
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = MarketClient(ws, validator)
            await c.subscribe(sb.token_ids[:2], initial_dump=False)
            assert await c.barrier() == []


async def test_stream_applied_to_reference_book_equals_sandbox_book(validator: WireValidator) -> None:
    async with open_sandbox(seed=9, scenario="busy", steps_per_second=0) as sb:
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = MarketClient(ws, validator)
            await c.subscribe(sb.token_ids)
            ref = RefBook()
            ref.apply_text(await c.recv())
            kinds: set[str] = set()
            shapes: set[type] = set()
            for _round in range(10):
                sb.step(30)
                for text in await c.barrier():
                    ref.apply_text(text)
                    shapes.add(type(json.loads(text)))
                    kinds |= {e["event_type"] for e in events(text)}
                for t in sb.token_ids:
                    assert ref.matches(t, sb.book(t)), t
            assert {"price_change", "last_trade_price", "book"} <= kinds
            assert shapes == {list, dict}  # frames are sometimes arrays, sometimes single objects


async def test_price_change_carries_both_tokens_and_complements(validator: WireValidator) -> None:
    async with open_sandbox(seed=4, scenario="calm", steps_per_second=0) as sb:
        m = sb.markets[0]
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = MarketClient(ws, validator)
            await c.subscribe([m.yes_token])  # only YES: the NO entries still come along (filter by asset_id)
            await c.recv()
            seen = 0
            for _ in range(5):
                sb.step(40)
                for text in await c.barrier():
                    for e in events(text):
                        if e["event_type"] != "price_change":
                            assert e.get("asset_id") == m.yes_token
                            continue
                        assert e["market"] == m.condition_id
                        by_token = {pc["asset_id"] for pc in e["price_changes"]}
                        assert by_token == {m.yes_token, m.no_token}
                        for yes, no in zip(e["price_changes"][::2], e["price_changes"][1::2], strict=True):
                            assert Decimal(yes["price"]) + Decimal(no["price"]) == 1
                            assert Decimal(yes["best_bid"]) + Decimal(no["best_ask"]) == 1
                            seen += 1
            assert seen > 0
            yes, no = sb.book(m.yes_token), sb.book(m.no_token)
            assert yes.best_bid + no.best_ask == 1 and yes.best_ask + no.best_bid == 1


async def test_best_bid_ask_only_with_custom_feature(validator: WireValidator) -> None:
    async with open_sandbox(seed=2, scenario="busy", steps_per_second=0) as sb:
        async with open_websocket_url(sb.market_ws_url) as ws1, open_websocket_url(sb.market_ws_url) as ws2:
            plain, custom = MarketClient(ws1, validator), MarketClient(ws2, validator)
            await plain.subscribe(sb.token_ids, custom=False)
            await custom.subscribe(sb.token_ids, custom=True)
            assert len(await plain.barrier()) == len(await custom.barrier()) == 1  # the dumps
            sb.step(50)
            got_plain = [e for t in await plain.barrier() for e in events(t)]
            got_custom = [e for t in await custom.barrier() for e in events(t)]
            assert not any(e["event_type"] == "best_bid_ask" for e in got_plain)
            bbas = [e for e in got_custom if e["event_type"] == "best_bid_ask"]
            assert bbas
            # apart from best_bid_ask, both saw the same events in the same order
            assert [e for e in got_custom if e["event_type"] != "best_bid_ask"] == got_plain
            last = {e["asset_id"]: e for e in bbas}
            for t, e in last.items():
                snap = sb.book(t)
                assert e["best_bid"] == ("" if snap.best_bid is None else str(snap.best_bid))
                assert e["best_ask"] == ("" if snap.best_ask is None else str(snap.best_ask))
            # custom_feature_enabled can be switched on by an operation message
            await plain.send(
                json.dumps({"operation": "subscribe", "assets_ids": [], "custom_feature_enabled": True})
            )
            assert await plain.barrier() == []
            sb.step(50)
            assert any(e["event_type"] == "best_bid_ask" for t in await plain.barrier() for e in events(t))


async def test_operation_subscribe_and_unsubscribe(validator: WireValidator) -> None:
    async with open_sandbox(seed=3, scenario="busy", steps_per_second=0) as sb:
        a, b = sb.markets[0], sb.markets[1]
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = MarketClient(ws, validator)
            await c.subscribe(list(a.tokens))
            await c.recv()
            await c.send(json.dumps({"operation": "subscribe", "assets_ids": list(b.tokens)}))
            dump = json.loads((await c.barrier())[0])
            assert [e["asset_id"] for e in dump] == list(b.tokens)
            # duplicates are ignored: no snapshot again
            await c.send(json.dumps({"operation": "subscribe", "assets_ids": [a.yes_token]}))
            assert await c.barrier() == []
            sb.step(60)
            markets = {e["market"] for t in await c.barrier() for e in events(t)}
            assert markets == {a.condition_id, b.condition_id}
            await c.send(json.dumps({"operation": "unsubscribe", "assets_ids": list(a.tokens)}))
            await c.barrier()
            sb.step(60)
            markets = {e["market"] for t in await c.barrier() for e in events(t)}
            assert markets == {b.condition_id}
            await c.send(json.dumps({"operation": "subscribe", "assets_ids": ["42"]}))
            assert await c.barrier() == ["[]"]


async def test_tick_size_change_on_the_wire_in_edge_scenario(validator: WireValidator) -> None:
    async with open_sandbox(seed=5, scenario="edge", steps_per_second=0) as sb:
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = MarketClient(ws, validator)
            await c.subscribe(sb.token_ids)
            ref = RefBook()
            ref.apply_text(await c.recv())
            changes = []
            for _ in range(6):
                sb.step(100)
                for text in await c.barrier():
                    ref.apply_text(text)
                    changes += [e for e in events(text) if e["event_type"] == "tick_size_change"]
            assert {(e["old_tick_size"], e["new_tick_size"]) for e in changes} == {
                ("0.01", "0.001"),
                ("0.001", "0.01"),
            }
            for t in sb.token_ids:
                assert ref.matches(t, sb.book(t))


async def test_same_seed_same_stream_over_the_wire(validator: WireValidator) -> None:
    async def record(seed: int) -> list[str]:
        async with open_sandbox(seed=seed, scenario="calm", steps_per_second=0) as sb:
            async with open_websocket_url(sb.market_ws_url) as ws:
                c = MarketClient(ws, validator)
                await c.subscribe(sb.token_ids, custom=True)
                out = [await c.recv()]
                sb.step(200)
                return out + await c.barrier()

    a, b = await record(11), await record(11)
    assert a == b and len(a) > 50
    assert await record(12) != a


async def test_timer_drives_the_sim_on_trio_time(autojump_clock, validator: WireValidator) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:  # 5 steps/s on the (mock) clock
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = MarketClient(ws, validator)
            await c.subscribe(sb.token_ids)
            await c.recv()
            t0 = trio.current_time()
            first_ts = None
            with trio.fail_after(120):
                while sb.sim.step_no < 300:
                    for e in events(await c.recv()):
                        first_ts = first_ts or int(e["timestamp"])
            assert trio.current_time() - t0 >= 59  # 300 steps at 5/s
            assert sb.sim.now_ms - first_ts >= 59_000


async def test_frames_are_byte_identical_to_the_sim_encoding(validator: WireValidator) -> None:
    async with open_sandbox(seed=6, scenario="calm", steps_per_second=0) as sb:
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = MarketClient(ws, validator)
            await c.subscribe(sb.token_ids, custom=True)  # everything: no per-subscriber filtering
            await c.recv()
            frames = sb.step(100)
            assert await c.barrier() == [encode(f) for f in frames]
