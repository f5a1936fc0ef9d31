"""Fault injection: each fault switched in-process (sb.faults) or over HTTP, and observed by a real client."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
from sandbox_testkit import MarketClient, WireError, WireValidator
from trio_websocket import ConnectionClosed, open_websocket_url

from sandbox.faults import FaultPlan
from sandbox.server import open_sandbox
from sandbox.wire import encode


async def subscribed(sb, ws, validator, custom=True) -> MarketClient:
    c = MarketClient(ws, validator)
    await c.subscribe(sb.token_ids, custom=custom)
    with trio.fail_after(10):
        await c.recv()  # the initial dump
    return c


# ---- market socket faults ----------------------------------------------------------------------------------
async def test_drop_closes_the_socket_and_reconnect_resyncs(validator: WireValidator) -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb:
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = await subscribed(sb, ws, validator)
            assert sb.faults.drop() == 1
            with trio.fail_after(10), pytest.raises(ConnectionClosed) as exc:
                while True:
                    await c.recv()
            assert exc.value.reason.code == 1011
        assert sb.faults.counts["drop"] == 1
        async with open_websocket_url(sb.market_ws_url) as ws:  # a new connection gets a fresh snapshot
            c = await subscribed(sb, ws, validator)
            assert json.loads(c.frames[0])[0]["event_type"] == "book"
            assert await c.barrier() == []


async def test_half_open_socket_goes_silent_and_ignores_ping(
    autojump_clock, validator: WireValidator
) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:  # the timer keeps producing frames
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = await subscribed(sb, ws, validator)
            await c.barrier()
            assert sb.faults.half_open_now() == 1
            await c.send("PING")
            with trio.move_on_after(30) as cs:  # virtual seconds (autojump)
                await c.recv()
            assert cs.cancelled_caught, "a half-open socket must send nothing, not even PONG"
            assert sb.stats["pings_ignored"] == 1
            assert sb.sim.step_no >= 150  # the market went on meanwhile
            async with open_websocket_url(sb.market_ws_url) as ws2:  # reconnecting cures it
                c2 = await subscribed(sb, ws2, validator)
                await c2.barrier()


async def test_global_half_open_switch(autojump_clock, validator: WireValidator) -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb:
        sb.faults.half_open = True
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = MarketClient(ws, validator)
            await c.subscribe(sb.token_ids)
            await c.send("PING")
            with trio.move_on_after(30) as cs:
                await c.recv()
            assert cs.cancelled_caught
            sb.faults.half_open = False
            sb.step(5)
            assert await c.barrier() != []  # frames flow again (the dump was discarded while silent)


async def test_stall_then_burst(autojump_clock, validator: WireValidator) -> None:
    async with open_sandbox(seed=1, scenario="busy", steps_per_second=0) as sb:
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = await subscribed(sb, ws, validator)
            t0 = trio.current_time()
            assert sb.faults.stall(5) == 1
            frames = sb.step(20)  # produced during the stall: buffered
            await c.send("PING")  # PONG is held too
            got = []
            with trio.fail_after(60):
                first = await c.recv()
                t_first = trio.current_time()
                got.append(first)
                while got[-1] != "PONG":
                    got.append(await c.recv())
            assert t_first - t0 >= 5
            assert trio.current_time() - t_first < 0.5  # then all at once
            assert got == [encode(f) for f in frames] + ["PONG"]
            assert sb.faults.counts["stall"] == 1


async def test_malformed_frame(validator: WireValidator) -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb:
        async with open_websocket_url(sb.market_ws_url) as ws:
            await subscribed(sb, ws, validator)
            sb.faults.malformed()
            await ws.send_message("PING")
            text = await ws.get_message()
            with pytest.raises(ValueError):
                json.loads(text)
            assert text.startswith('{"event_type":"price_change"')
            assert await ws.get_message() == "PONG"
            assert sb.faults.counts["malformed"] == 1


async def test_unknown_event_type(validator: WireValidator) -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb:
        async with open_websocket_url(sb.market_ws_url) as ws:
            await subscribed(sb, ws, validator)
            sb.faults.unknown_event()
            text = await ws.get_message()
            e = json.loads(text)
            assert e["event_type"] not in validator.required
            with pytest.raises(WireError, match="unknown event_type"):
                validator.check(text)


async def test_out_of_range_prices_do_not_touch_the_book(validator: WireValidator) -> None:
    async with open_sandbox(seed=1, steps_per_second=0) as sb:
        before = {t: sb.book(t) for t in sb.token_ids}
        async with open_websocket_url(sb.market_ws_url) as ws:
            await subscribed(sb, ws, validator)
            sb.faults.bad_price()
            sb.faults.bad_price()
            prices = []
            for _ in range(2):
                text = await ws.get_message()
                prices.append(json.loads(text)["price_changes"][0]["price"])
                with pytest.raises(WireError, match="out of range"):
                    validator.check(text)
            assert prices == ["1.5", "-0.1"]
        assert {t: sb.book(t) for t in sb.token_ids} == before


async def test_scenario_faults_are_seeded_and_counted(validator: WireValidator) -> None:
    async with open_sandbox(seed=3, scenario="flaky", steps_per_second=0) as sb:
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = MarketClient(ws, None)
            await c.subscribe(sb.token_ids, custom=True)
            await c.recv()
            sb.step(400)
            seen = {"malformed": 0, "unknown_event": 0, "bad_price": 0}
            for text in await c.barrier():
                try:
                    validator.check(text)
                except WireError as e:
                    kind = (
                        "malformed"
                        if "not JSON" in str(e)
                        else "unknown_event"
                        if "unknown event_type" in str(e)
                        else "bad_price"
                    )
                    seen[kind] += 1
            assert all(n > 0 for n in seen.values())
            assert seen == {k: sb.faults.counts[k] for k in seen}
    # which steps carry faults is a function of the seed only
    rates = {"malformed": 0.1, "drop": 0.05}
    a, b = FaultPlan(3), FaultPlan(3)
    assert [a.step(rates) for _ in range(200)] == [b.step(rates) for _ in range(200)]


async def test_drops_scenario_closes_sockets(validator: WireValidator) -> None:
    async with open_sandbox(seed=1, scenario="drops", steps_per_second=0) as sb:
        async with open_websocket_url(sb.market_ws_url) as ws:
            c = await subscribed(sb, ws, validator)
            with pytest.raises(ConnectionClosed):
                for _ in range(100):
                    sb.step(10)
                    await c.barrier()
        assert sb.faults.counts["drop"] == 1


# ---- REST faults -------------------------------------------------------------------------------------------
async def test_http_429_with_retry_after_then_recovers() -> None:
    async with (
        open_sandbox(seed=1, steps_per_second=0) as sb,
        httpx.AsyncClient(base_url=sb.base_url) as http,
    ):
        t = sb.token_ids[0]
        sb.faults.http_error(429, count=2, retry_after=3)
        for _ in range(2):
            r = await http.get("/book", params={"token_id": t})
            assert r.status_code == 429
            assert r.headers["retry-after"] == "3"
            assert r.json() == {"error": "Too Many Requests"}
        assert (await http.get("/book", params={"token_id": t})).status_code == 200
        assert sb.faults.counts["http_429"] == 2


@pytest.mark.parametrize("status", [425, 500, 502, 503])
async def test_http_error_statuses(status: int) -> None:
    async with (
        open_sandbox(seed=1, steps_per_second=0) as sb,
        httpx.AsyncClient(base_url=sb.base_url) as http,
    ):
        sb.faults.http_error(status)
        for path in ("/markets", "/ok", f"/midpoint?token_id={sb.token_ids[0]}"):
            r = await http.get(path)
            assert r.status_code == status and set(r.json()) == {"error"}
        # the geoblock endpoint and the control endpoints are exempt
        assert (await http.get(sb.geoblock_url)).status_code == 200
        assert (await http.get("/_sandbox/faults")).json()["http_status"] == status
        sb.faults.clear()
        assert (await http.get("/ok")).status_code == 200


async def test_http_fault_path_filter() -> None:
    async with (
        open_sandbox(seed=1, steps_per_second=0) as sb,
        httpx.AsyncClient(base_url=sb.base_url) as http,
    ):
        sb.faults.http_error(503, paths=["/book"])
        assert (await http.get("/book", params={"token_id": sb.token_ids[0]})).status_code == 503
        assert (await http.get("/markets")).status_code == 200


async def test_slow_responses(autojump_clock) -> None:
    async with (
        open_sandbox(seed=1, steps_per_second=0) as sb,
        httpx.AsyncClient(base_url=sb.base_url) as http,
    ):
        sb.faults.slow(2.5)
        t0 = trio.current_time()
        assert (await http.get("/ok")).status_code == 200
        assert trio.current_time() - t0 >= 2.5
        sb.faults.slow(0)
        t0 = trio.current_time()
        await http.get("/ok")
        assert trio.current_time() - t0 < 2.5


async def test_http_errors_scenario_mixes_failures() -> None:
    async with (
        open_sandbox(seed=1, scenario="http_errors", steps_per_second=0) as sb,
        httpx.AsyncClient(base_url=sb.base_url) as http,
    ):
        statuses = [(await http.get("/ok")).status_code for _ in range(100)]
        assert 60 < statuses.count(200) < 100
        assert set(statuses) - {200} <= {425, 429, 500, 502, 503}
        assert sum(v for k, v in sb.faults.counts.items() if k.startswith("http_")) == 100 - statuses.count(
            200
        )


async def test_fault_control_over_http(validator: WireValidator) -> None:
    async with (
        open_sandbox(seed=1, steps_per_second=0) as sb,
        httpx.AsyncClient(base_url=sb.base_url) as http,
    ):
        state = (await http.get("/_sandbox/faults")).json()
        assert state["half_open"] is False and state["http_status"] is None and state["ws_rates"] == {}
        r = await http.post("/_sandbox/faults", json={"http_status": 503, "http_count": 1, "retry_after": 7})
        assert r.status_code == 200 and r.json()["http_status"] == 503
        r = await http.get("/ok")
        assert r.status_code == 503 and r.headers["retry-after"] == "7"
        assert (await http.get("/ok")).status_code == 200
        r = await http.post("/_sandbox/faults", json={"ws_rates": {"bogus": 1}})
        assert r.status_code == 400
        async with open_websocket_url(sb.market_ws_url) as ws:
            await subscribed(sb, ws, validator)
            r = await http.post("/_sandbox/faults", json={"inject": ["unknown_event", "malformed"]})
            assert r.json()["injected"] == {"unknown_event": 1, "malformed": 1}
            assert json.loads(await ws.get_message())["event_type"] == "sandbox_unknown_event"
            with pytest.raises(ValueError):
                json.loads(await ws.get_message())
            r = await http.post("/_sandbox/faults", json={"inject": "drop", "code": 4001})
            with pytest.raises(ConnectionClosed) as exc:
                await ws.get_message()
            assert exc.value.reason.code == 4001
        r = await http.post("/_sandbox/faults", json={"half_open": True, "ws_rates": {"stall": 0.5}})
        assert sb.faults.half_open is True and sb.faults.ws_rates == {"stall": 0.5}
        r = await http.post("/_sandbox/faults", json={"clear": True})
        assert r.json()["half_open"] is False and r.json()["ws_rates"] == {}
        assert r.json()["counts"]["drop"] == 1
