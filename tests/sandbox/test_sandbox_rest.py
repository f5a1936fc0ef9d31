"""REST endpoints over real HTTP on loopback."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from sandbox.server import open_sandbox

BOOK_KEYS = {
    "market",
    "asset_id",
    "timestamp",
    "hash",
    "bids",
    "asks",
    "min_order_size",
    "tick_size",
    "neg_risk",
    "last_trade_price",
}
MARKET_KEYS = {
    "enable_order_book",
    "active",
    "closed",
    "archived",
    "accepting_orders",
    "minimum_order_size",
    "minimum_tick_size",
    "condition_id",
    "question_id",
    "question",
    "market_slug",
    "neg_risk",
    "neg_risk_market_id",
    "rewards",
    "tokens",
    "maker_base_fee",
    "taker_base_fee",
    "seconds_delay",
    "game_start_time",
    "end_date_iso",
}


def check_rest_book(b: dict, snap) -> None:
    assert set(b) == BOOK_KEYS
    for k in ("timestamp", "hash", "min_order_size", "tick_size", "last_trade_price"):
        assert isinstance(b[k], str), k
    assert isinstance(b["neg_risk"], bool)
    assert all(isinstance(lv["price"], str) and isinstance(lv["size"], str) for lv in b["bids"] + b["asks"])
    bids = [(Decimal(lv["price"]), Decimal(lv["size"])) for lv in b["bids"]]
    asks = [(Decimal(lv["price"]), Decimal(lv["size"])) for lv in b["asks"]]
    assert bids == sorted(bids) and asks == sorted(asks, reverse=True)  # best last, like the WS
    assert tuple(reversed(bids)) == snap.bids and tuple(reversed(asks)) == snap.asks
    assert Decimal(b["tick_size"]) == snap.tick_size


@pytest.fixture
async def sb():
    async with open_sandbox(seed=1, scenario="calm", steps_per_second=0) as sb:
        sb.step(20)
        yield sb


@pytest.fixture
async def http(sb):
    async with httpx.AsyncClient(base_url=sb.base_url) as c:
        yield c


async def test_health_time_version(sb, http) -> None:
    r = await http.get("/ok")
    assert r.status_code == 200 and r.json() == "OK"
    t = (await http.get("/time")).json()
    assert isinstance(t, int) and t > 1_700_000_000
    assert (await http.get("/version")).json() == {"version": 2}


async def test_book_and_books(sb, http) -> None:
    for t in sb.token_ids:
        r = await http.get("/book", params={"token_id": t})
        assert r.status_code == 200
        check_rest_book(r.json(), sb.book(t))
    r = await http.get("/book", params={"token_id": "999"})
    assert r.status_code == 404
    assert r.json() == {"error": "No orderbook exists for the requested token id"}
    assert (await http.get("/book")).status_code == 400
    r = await http.post("/books", json=[{"token_id": t} for t in sb.token_ids[:3]])
    assert r.status_code == 200
    got = r.json()
    assert [b["asset_id"] for b in got] == sb.token_ids[:3]
    for b in got:
        check_rest_book(b, sb.book(b["asset_id"]))
    r = await http.post("/books", json=[{"token_id": sb.token_ids[0]}] * 501)
    assert r.status_code == 400 and r.json() == {"error": "Payload exceeds the limit"}
    r = await http.post("/books", content=b"{not json")
    assert r.status_code == 400 and "error" in r.json()


async def test_midpoint_tick_size_neg_risk(sb, http) -> None:
    for m in sb.markets:
        for t in m.tokens:
            snap = sb.book(t)
            mid = (await http.get("/midpoint", params={"token_id": t})).json()
            assert set(mid) == {"mid"} and isinstance(mid["mid"], str)
            bb = snap.best_bid if snap.best_bid is not None else Decimal(0)
            ba = snap.best_ask if snap.best_ask is not None else Decimal(1)
            assert Decimal(mid["mid"]) == (bb + ba) / 2
            ts = (await http.get("/tick-size", params={"token_id": t})).json()
            assert ts == {"minimum_tick_size": 0.01} and isinstance(ts["minimum_tick_size"], float)
            assert (await http.get(f"/tick-size/{t}")).json() == ts
            assert (await http.get("/neg-risk", params={"token_id": t})).json() == {"neg_risk": m.neg_risk}
    assert (await http.get("/midpoint", params={"token_id": "1"})).status_code == 404


async def walk(http: httpx.AsyncClient, path: str, **params) -> list[dict]:
    cursor, out, pages = "MA==", [], 0
    while cursor != "LTE=":
        r = await http.get(path, params={**params, "next_cursor": cursor})
        assert r.status_code == 200
        page = r.json()
        assert set(page) == {"limit", "count", "next_cursor", "data"}
        assert page["count"] == len(page["data"]) <= page["limit"]
        out += page["data"]
        cursor = page["next_cursor"]
        pages += 1
        assert pages < 50
    return out


async def test_markets_pagination_and_shape(sb, http) -> None:
    markets = await walk(http, "/markets")
    assert [m["condition_id"] for m in markets] == [m.condition_id for m in sb.markets]
    assert (await http.get("/markets")).json()["next_cursor"] == "Mg=="  # no cursor = first page
    for m, spec in zip(markets, sb.markets, strict=True):
        assert MARKET_KEYS <= set(m)
        assert m["minimum_order_size"] == 5 and m["minimum_tick_size"] == 0.01
        assert m["accepting_orders"] is True and m["active"] is True and m["closed"] is False
        assert [t["token_id"] for t in m["tokens"]] == [spec.yes_token, spec.no_token]
        assert [t["outcome"] for t in m["tokens"]] == ["Yes", "No"]
        for t in m["tokens"]:
            assert set(t) == {"token_id", "outcome", "price", "winner"} and t["winner"] is False
        assert abs(sum(t["price"] for t in m["tokens"]) - 1) < 1e-9
        rw = m["rewards"]
        assert set(rw) == {"rates", "min_size", "max_spread"}
        assert rw["min_size"] == spec.rewards_min_size and rw["max_spread"] == spec.rewards_max_spread
        if spec.has_rewards:
            assert rw["rates"][0]["rewards_daily_rate"] == spec.rewards_daily_rate
        else:
            assert rw["rates"] is None
        one = await http.get(f"/markets/{spec.condition_id}")
        assert one.status_code == 200 and one.json() == m
    sampling = await walk(http, "/sampling-markets")
    assert [m["condition_id"] for m in sampling] == [m.condition_id for m in sb.markets if m.has_rewards]
    assert len(sampling) < len(markets)
    r = await http.get("/markets/0x" + "0" * 64)
    assert r.status_code == 404 and "error" in r.json()
    assert (await http.get("/markets", params={"next_cursor": "LTE="})).status_code == 400


async def test_rewards_current(sb, http) -> None:
    rewards = await walk(http, "/rewards/markets/current")
    rewarded = [m for m in sb.markets if m.has_rewards]
    assert [r["condition_id"] for r in rewards] == [m.condition_id for m in rewarded]
    for r, m in zip(rewards, rewarded, strict=True):
        assert r["rewards_min_size"] == m.rewards_min_size > 0
        assert r["rewards_max_spread"] == m.rewards_max_spread > 0
        assert {
            "rewards_config",
            "native_daily_rate",
            "sponsored_daily_rate",
            "total_daily_rate",
            "market_competitiveness",
        } <= set(r)
        (cfg,) = r["rewards_config"]
        assert {
            "asset_address",
            "start_date",
            "end_date",
            "rate_per_day",
            "total_rewards",
            "remaining_reward_amount",
        } <= set(cfg)
        assert r["total_daily_rate"] == cfg["rate_per_day"] == m.rewards_daily_rate
    sponsored = await walk(http, "/rewards/markets/current", sponsored="true")
    assert sponsored and all(r["sponsored_daily_rate"] > 0 for r in sponsored)


async def test_errors_are_json(sb, http) -> None:
    r = await http.get("/no/such/path")
    assert r.status_code == 404 and set(r.json()) == {"error"}
    r = await http.post("/book")
    assert r.status_code == 405 and set(r.json()) == {"error"}


async def test_geoblock_modes(sb, http) -> None:
    r = await http.get(sb.geoblock_url)
    assert r.status_code == 200
    assert r.json() == {"blocked": False, "ip": "127.0.0.1", "country": "IE", "region": "L"}
    sb.set_geoblock("blocked")
    assert (await http.get(sb.geoblock_url)).json() == {
        "blocked": True,
        "ip": "127.0.0.1",
        "country": "US",
        "region": "NY",
    }
    sb.set_geoblock("down")
    r = await http.get(sb.geoblock_url)
    assert r.status_code == 503 and set(r.json()) == {"error"}
    # and from another process's point of view: the control endpoint
    r = await http.post("/_sandbox/geoblock", json={"mode": "allowed"})
    assert r.json() == {"mode": "allowed"}
    assert (await http.get(sb.geoblock_url)).json()["blocked"] is False
    assert (await http.post("/_sandbox/geoblock", json={"mode": "maybe"})).status_code == 400
    with pytest.raises(ValueError):
        sb.set_geoblock("maybe")


async def test_geoblock_mode_at_start() -> None:
    async with open_sandbox(seed=1, steps_per_second=0, geoblock="blocked") as sb:
        async with httpx.AsyncClient() as http:
            assert (await http.get(sb.geoblock_url)).json()["blocked"] is True


async def test_sandbox_state_and_step_endpoints(sb, http) -> None:
    st = (await http.get("/_sandbox/state")).json()
    assert st["seed"] == 1 and st["scenario"] == "calm" and st["token_ids"] == sb.token_ids
    assert [m["condition_id"] for m in st["markets"]] == [m.condition_id for m in sb.markets]
    before = sb.sim.step_no
    r = await http.post("/_sandbox/step", json={"n": 7})
    assert r.status_code == 200 and r.json()["steps"] == 7
    assert sb.sim.step_no == before + 7
