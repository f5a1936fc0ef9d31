"""REST endpoints (public market data, geoblock, and the `/_sandbox/*` control endpoints)."""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING, Any

from .markets import REWARDS_ASSET, MarketSpec
from .wire import PIPS, fmt_half_pips, tick_float

if TYPE_CHECKING:
    from .app import Request, SandboxApp
    from .exchange import ExchangeState

START_CURSOR = "MA=="  # base64("0")
END_CURSOR = "LTE="  # base64("-1")
MAX_BOOKS = 500
NO_BOOK = "No orderbook exists for the requested token id"

GEOBLOCK_ANSWERS = {
    # country/region per the docs' lists: IE is close-only on the frontend only (API not restricted); US is blocked
    "allowed": {"blocked": False, "country": "IE", "region": "L"},
    "blocked": {"blocked": True, "country": "US", "region": "NY"},
}


class HTTPError(Exception):
    """An `{"error": message, **extra}` answer with `status` (and extra response headers)."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}


class Reply:
    """A non-error answer with a status other than 200 and/or extra headers (handlers may return one)."""

    def __init__(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.body = body
        self.status = status
        self.headers = headers or {}


class DropConnection(Exception):
    """Raised by a handler: send the status line and half the body, then cut the connection."""

    def __init__(self, body: Any = None) -> None:
        super().__init__("connection dropped (sandbox fault)")
        self.body = body


def _token(st: ExchangeState, req: Request, *, path_token: str | None = None) -> str:
    t = path_token if path_token is not None else req.query.get("token_id")
    if not t:
        raise HTTPError(400, "Invalid token id")
    if not st.source.has(t):
        raise HTTPError(404, NO_BOOK)
    return t


def _mid_str(st: ExchangeState, token: str) -> str:
    bb, ba = st.source.best(token)
    return fmt_half_pips((0 if bb is None else bb) + (PIPS if ba is None else ba))


def _encode_cursor(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode()


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        v = int(base64.b64decode(cursor, validate=True).decode())
    except (ValueError, UnicodeDecodeError):
        raise HTTPError(400, "invalid next_cursor") from None
    if v < 0:
        raise HTTPError(400, "no more pages: next_cursor is LTE=")
    return v


def _paginate(st: ExchangeState, req: Request, items: list[Any]) -> dict[str, Any]:
    off = _decode_cursor(req.query.get("next_cursor"))
    page = items[off : off + st.page_size]
    nxt = off + st.page_size
    return {
        "limit": st.page_size,
        "count": len(page),
        "next_cursor": _encode_cursor(nxt) if nxt < len(items) else END_CURSOR,
        "data": page,
    }


def market_json(st: ExchangeState, m: MarketSpec) -> dict[str, Any]:
    src = st.source
    tick = src.tick(m.yes_token)
    tokens = []
    for t in m.tokens:
        bb, ba = src.best(t)
        mid2 = (0 if bb is None else bb) + (PIPS if ba is None else ba)
        tokens.append(
            {"token_id": t, "outcome": m.outcome(t), "price": round(mid2 / (2 * PIPS), 5), "winner": False}
        )
    return {
        "enable_order_book": True,
        "active": True,
        "closed": False,
        "archived": False,
        "accepting_orders": st.orders.accepting_orders(m.condition_id) if st.orders is not None else True,
        "accepting_order_timestamp": "2026-09-01T00:00:00Z",
        "minimum_order_size": m.min_order_size,
        "minimum_tick_size": tick_float(tick),
        "condition_id": m.condition_id,
        "question_id": m.question_id,
        "question": m.question,
        "description": "A synthetic market of the pmm sandbox exchange. Nothing here is real.",
        "market_slug": m.slug,
        "end_date_iso": m.end_date_iso,
        "game_start_time": None,
        "seconds_delay": 0,
        "fpmm": "",
        "maker_base_fee": 0,
        "taker_base_fee": 0,
        "notifications_enabled": True,
        "neg_risk": m.neg_risk,
        "neg_risk_market_id": m.question_id if m.neg_risk else "",
        "neg_risk_request_id": "",
        "icon": "",
        "image": "",
        "rewards": {
            "rates": (
                [{"asset_address": REWARDS_ASSET, "rewards_daily_rate": m.rewards_daily_rate}]
                if m.has_rewards
                else None
            ),
            "min_size": m.rewards_min_size,
            "max_spread": m.rewards_max_spread,
        },
        "is_50_50_outcome": False,
        "tokens": tokens,
        "tags": ["Sandbox"],
    }


def reward_json(m: MarketSpec) -> dict[str, Any]:
    sponsored = m.rewards_daily_rate / 2 if m.index % 2 else 0.0
    native = m.rewards_daily_rate - sponsored
    return {
        "condition_id": m.condition_id,
        "rewards_max_spread": m.rewards_max_spread,
        "rewards_min_size": m.rewards_min_size,
        "rewards_config": [
            {
                "asset_address": REWARDS_ASSET,
                "start_date": "2026-09-01",
                "end_date": "2500-12-31",
                "rate_per_day": m.rewards_daily_rate,
                "total_rewards": m.rewards_daily_rate * 30,
                "remaining_reward_amount": m.rewards_daily_rate * 20,
            }
        ],
        "sponsored_daily_rate": sponsored,
        "native_daily_rate": native,
        "total_daily_rate": m.rewards_daily_rate,
        "market_competitiveness": round(1.0 + m.index * 0.37, 2),
    }


def register(app: SandboxApp) -> None:
    st = app.state

    async def ok(req: Request) -> Any:
        return "OK"

    async def server_time(req: Request) -> Any:
        return int(time.time())

    async def version(req: Request) -> Any:
        return {"version": 2}

    async def book(req: Request) -> Any:
        return st.source.rest_book(_token(st, req))

    async def books(req: Request) -> Any:
        body = req.json()
        if not isinstance(body, list) or not all(isinstance(x, dict) for x in body):
            raise HTTPError(400, 'Invalid payload: expected [{"token_id": "..."}]')
        if len(body) > MAX_BOOKS:
            raise HTTPError(400, "Payload exceeds the limit")
        out = []
        for x in body:
            t = str(x.get("token_id", ""))
            if st.source.has(t):
                out.append(st.source.rest_book(t))
        return out

    async def midpoint(req: Request) -> Any:
        return {"mid": _mid_str(st, _token(st, req))}

    async def midpoints(req: Request) -> Any:
        body = req.json()
        if not isinstance(body, list):
            raise HTTPError(400, 'Invalid payload: expected [{"token_id": "..."}]')
        if len(body) > MAX_BOOKS:
            raise HTTPError(400, "Payload exceeds the limit")
        return {
            str(x.get("token_id")): _mid_str(st, str(x.get("token_id")))
            for x in body
            if isinstance(x, dict) and st.source.has(str(x.get("token_id")))
        }

    async def tick_size(req: Request, token: str | None = None) -> Any:
        return {"minimum_tick_size": tick_float(st.source.tick(_token(st, req, path_token=token)))}

    async def neg_risk(req: Request) -> Any:
        return {"neg_risk": st.source.market_of(_token(st, req)).neg_risk}

    async def markets(req: Request) -> Any:
        return _paginate(st, req, [market_json(st, m) for m in st.markets])

    async def sampling_markets(req: Request) -> Any:
        return _paginate(st, req, [market_json(st, m) for m in st.markets if m.has_rewards])

    async def market(req: Request, cid: str) -> Any:
        m = st.market_by_cid(cid)
        if m is None:
            raise HTTPError(404, "market not found")
        return market_json(st, m)

    async def market_by_token(req: Request, token: str) -> Any:
        if not st.source.has(token):
            raise HTTPError(404, "market not found")
        m = st.source.market_of(token)
        return {
            "condition_id": m.condition_id,
            "primary_token_id": m.yes_token,
            "secondary_token_id": m.no_token,
        }

    async def clob_market(req: Request, cid: str) -> Any:
        """The compact market info py_clob_client_v2's get_clob_market_info() reads (tick, neg risk, fees)."""
        m = st.market_by_cid(cid)
        if m is None:
            raise HTTPError(404, "market not found")
        return {
            "gst": None,
            "r": {"min_size": m.rewards_min_size, "max_spread": m.rewards_max_spread}
            if m.has_rewards
            else None,
            "t": [{"t": t, "o": m.outcome(t)} for t in m.tokens],
            "mos": m.min_order_size,
            "mts": tick_float(st.source.tick(m.yes_token)),
            "mbf": 0,
            "tbf": 0,
            "nr": m.neg_risk,
            "fd": {"r": 0, "e": 0, "to": True},
        }

    async def rewards_current(req: Request) -> Any:
        ms = [m for m in st.markets if m.has_rewards]
        sp = req.query.get("sponsored")
        if sp is not None and sp.lower() in ("true", "1"):
            ms = [m for m in ms if reward_json(m)["sponsored_daily_rate"] > 0]
        return _paginate(st, req, [reward_json(m) for m in ms])

    async def geoblock(req: Request) -> Any:
        if st.geoblock == "down":
            raise HTTPError(503, "Service Unavailable")
        ans = GEOBLOCK_ANSWERS[st.geoblock]
        return {
            "blocked": ans["blocked"],
            "ip": req.client_ip,
            "country": ans["country"],
            "region": ans["region"],
        }

    # ---- sandbox control ----------------------------------------------------------------------------------
    async def faults_get(req: Request) -> Any:
        return st.faults.to_dict()

    async def faults_post(req: Request) -> Any:
        body = req.json()
        if not isinstance(body, dict):
            raise HTTPError(400, "expected a JSON object")
        try:
            res = st.faults.update(body)
        except (ValueError, TypeError) as e:
            raise HTTPError(400, str(e)) from None
        return {**st.faults.to_dict(), **res}

    async def geoblock_get(req: Request) -> Any:
        return {"mode": st.geoblock}

    async def geoblock_post(req: Request) -> Any:
        body = req.json()
        try:
            st.set_geoblock(str(body.get("mode")) if isinstance(body, dict) else "")
        except ValueError as e:
            raise HTTPError(400, str(e)) from None
        return {"mode": st.geoblock}

    async def state_get(req: Request) -> Any:
        return {
            "seed": st.seed,
            "scenario": st.scenario,
            "geoblock": st.geoblock,
            "markets": [
                {"condition_id": m.condition_id, "tokens": list(m.tokens), "question": m.question}
                for m in st.markets
            ],
            "token_ids": st.source.token_ids,
            "connections": len(st.hub.conns),
            "stats": dict(st.stats),
            "faults": st.faults.to_dict(),
        }

    async def step_post(req: Request) -> Any:
        if app.stepper is None:
            raise HTTPError(400, "no simulator (playback mode)")
        body = req.json() if req.body else {}
        n = int(body.get("n", 1)) if isinstance(body, dict) else 1
        frames = app.stepper(n)
        return {"steps": n, "frames": len(frames)}

    for path, fn in (
        ("/ok", ok),
        ("/time", server_time),
        ("/version", version),
        ("/book", book),
        ("/midpoint", midpoint),
        ("/tick-size", tick_size),
        ("/neg-risk", neg_risk),
        ("/markets", markets),
        ("/sampling-markets", sampling_markets),
        ("/rewards/markets/current", rewards_current),
        ("/api/geoblock", geoblock),
        ("/_sandbox/faults", faults_get),
        ("/_sandbox/geoblock", geoblock_get),
        ("/_sandbox/state", state_get),
    ):
        app.add_route("GET", path, fn)
    for path, fn in (
        ("/books", books),
        ("/midpoints", midpoints),
        ("/_sandbox/faults", faults_post),
        ("/_sandbox/geoblock", geoblock_post),
        ("/_sandbox/step", step_post),
    ):
        app.add_route("POST", path, fn)
    app.add_prefix_route("GET", "/markets/", market)
    app.add_prefix_route("GET", "/markets-by-token/", market_by_token)
    app.add_prefix_route("GET", "/clob-markets/", clob_market)
    app.add_prefix_route("GET", "/tick-size/", tick_size)
