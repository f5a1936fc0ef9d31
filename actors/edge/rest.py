"""REST edges: book snapshots for resync, and market discovery at start.

A ``BookFetcher`` follows ``ResyncRequest`` events and answers each with a ``RestBook`` input holding the raw
reply; the book actor (core) parses it, so the snapshot is replayed from the journal like any other input.
"""
from __future__ import annotations

import httpx
import trio

from actors.edge.clock import Emit
from events.market import ResyncRequest, RestBook


class BookFetcher:
    def __init__(self, rest_url: str, emit: Emit, client: httpx.AsyncClient) -> None:
        self.rest_url = rest_url.rstrip("/")
        self.emit = emit
        self.client = client
        self.in_flight: set[str] = set()

    async def run(self, requests: trio.MemoryReceiveChannel, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async with trio.open_nursery() as nursery, requests:
            async for _seq, env in requests:
                ev = env.ev
                if isinstance(ev, ResyncRequest) and ev.token_id not in self.in_flight:
                    self.in_flight.add(ev.token_id)
                    nursery.start_soon(self._fetch, ev.token_id)

    async def _fetch(self, token_id: str) -> None:
        try:
            try:
                r = await self.client.get(f"{self.rest_url}/book", params={"token_id": token_id}, timeout=10)
                await self.emit("rest", RestBook(token_id=token_id, status=r.status_code, body=r.text))
            except httpx.HTTPError as exc:
                await self.emit("rest", RestBook(token_id=token_id, status=0, body=f"error: {type(exc).__name__}"))
        finally:
            self.in_flight.discard(token_id)


# ---------------------------------------------------------------- market discovery (at start, before the journal)
from decimal import Decimal, InvalidOperation  # noqa: E402

from events.params import MarketParams  # noqa: E402


class DiscoveryError(RuntimeError):
    """The exchange's market list could not be used. One line."""


def _micro(value: object, what: str) -> int:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise DiscoveryError(f"market field {what} is not a number: {value!r}") from None
    if not d.is_finite() or d < 0:
        raise DiscoveryError(f"market field {what} out of range: {value!r}")
    return int(d * 1_000_000)


def market_from_json(m: dict) -> MarketParams:
    """MarketParams from a ``/markets/{condition_id}``-shaped object (Polymarket's field names)."""
    try:
        tokens = m["tokens"]
        yes = next(t for t in tokens if str(t.get("outcome", "")).lower() in ("yes", "up")) if len(tokens) == 2 else None
        if yes is None:
            yes = tokens[0]
        no = tokens[1] if tokens[0] is yes else tokens[0]
        rewards = m.get("rewards") or {}
        max_spread_cents = rewards.get("max_spread") or 0
        return MarketParams(
            condition_id=str(m["condition_id"]),
            yes_token=str(yes["token_id"]),
            no_token=str(no["token_id"]),
            tick=_micro(m.get("minimum_tick_size", "0.01"), "minimum_tick_size"),
            min_order_size=_micro(m.get("minimum_order_size", 5), "minimum_order_size"),
            reward_min_size=_micro(rewards.get("min_size") or 0, "rewards.min_size"),
            reward_max_spread=_micro(Decimal(str(max_spread_cents)) / 100, "rewards.max_spread"),
        )
    except (KeyError, IndexError, TypeError, StopIteration) as exc:
        raise DiscoveryError(f"market object lacks {exc}: {str(m)[:120]}") from None


async def discover_markets(
    client: httpx.AsyncClient, rest_url: str, condition_ids: list[str], auto: int
) -> tuple[MarketParams, ...]:
    """The markets to trade: the named condition ids, or the first ``auto`` reward-sampled markets."""
    base = rest_url.rstrip("/")
    try:
        if condition_ids:
            out = []
            for cid in condition_ids:
                r = await client.get(f"{base}/markets/{cid}", timeout=10)
                if r.status_code != 200:
                    raise DiscoveryError(f"market {cid}: HTTP {r.status_code} from {base}/markets/{cid}")
                out.append(market_from_json(r.json()))
            return tuple(out)
        r = await client.get(f"{base}/sampling-markets", timeout=10)
        if r.status_code != 200:
            raise DiscoveryError(f"HTTP {r.status_code} from {base}/sampling-markets")
        rows = [m for m in r.json().get("data", []) if m.get("accepting_orders", True) and len(m.get("tokens", [])) == 2]
        if not rows:
            raise DiscoveryError(f"{base}/sampling-markets lists no tradable market")
        return tuple(market_from_json(m) for m in rows[:auto])
    except httpx.HTTPError as exc:
        raise DiscoveryError(f"cannot reach {base}: {type(exc).__name__}: {exc}") from None
    except ValueError as exc:
        raise DiscoveryError(f"bad JSON from {base}: {exc}") from None
