"""REST helpers for live trading: L2-signed requests, open orders and trades (paginated), one order, cancels,
heartbeats, balances, API-credential derivation, and the public checks preflight makes (geoblock, time, version).

These are plain async functions over an ``httpx.AsyncClient``; callers turn results into journaled events. No
function here logs, and no error message contains a header value: the L2 headers carry the API passphrase and
an HMAC over the secret, so requests are built here and only status codes and bodies leave.

Wall-clock time is used only for the ``POLY_TIMESTAMP`` header (the venue checks it against its own clock) and
is injectable (``wall_s``).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from actors.edge.auth import ApiCreds, l1_headers, l2_headers
from actors.edge.signing import OrderSigner

START_CURSOR = "MA=="
END_CURSOR = "LTE="
MAX_PAGES = 1000


class ExchangeError(RuntimeError):
    """A REST call failed. ``status`` is the HTTP status (0: no answer); the message is one line, no secrets."""

    def __init__(self, message: str, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def error_text(r: httpx.Response) -> str:
    """The venue's error message from an error reply (``{"error": ...}``), or a short excerpt."""
    try:
        body = r.json()
    except ValueError:
        return r.text[:200]
    if isinstance(body, dict):
        for k in ("error", "errorMsg", "error_msg", "message"):
            if isinstance(body.get(k), str) and body[k]:
                return body[k][:300]
    return str(body)[:200]


def retry_after_s(r: httpx.Response, default: float = 1.0) -> float:
    try:
        return max(0.0, float(r.headers.get("retry-after", default)))
    except ValueError:
        return default


def describe(exc: BaseException) -> str:
    """A transport failure in a few words (the exception class; httpx messages can be long)."""
    return type(exc).__name__


@dataclass
class ExchangeRest:
    """Authenticated (L2) access to one CLOB for one signer and its API credentials."""

    client: httpx.AsyncClient
    base_url: str
    signer: OrderSigner
    creds: ApiCreds
    timeout_s: float = 10.0
    wall_s: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")

    async def request(
        self,
        method: str,
        path: str,
        body: str | None = None,
        params: dict[str, str] | None = None,
        wait_s: float | None = None,
    ) -> httpx.Response:
        """One L2-signed request; ``body`` is the exact string to send (and sign). Raises httpx errors as is."""
        headers = l2_headers(self.signer.address, self.creds, method, path, body, timestamp=int(self.wall_s()))
        if body is not None:
            headers["Content-Type"] = "application/json"
        return await self.client.request(
            method,
            self.base_url + path,
            content=None if body is None else body.encode("utf-8"),
            params=params,
            headers=headers,
            timeout=self.timeout_s if wait_s is None else wait_s,
        )

    async def _json(self, method: str, path: str, body: str | None = None, params: dict[str, str] | None = None,
                    wait_s: float | None = None) -> Any:
        try:
            r = await self.request(method, path, body, params, wait_s)
        except httpx.HTTPError as exc:
            raise ExchangeError(f"{method} {path}: {describe(exc)}") from None
        if r.status_code != 200:
            ra = retry_after_s(r) if r.status_code in (425, 429, 503) else None
            raise ExchangeError(f"{method} {path}: HTTP {r.status_code} {error_text(r)}", r.status_code, ra)
        try:
            return r.json()
        except ValueError:
            raise ExchangeError(f"{method} {path}: reply is not JSON", r.status_code) from None

    async def _pages(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = START_CURSOR
        for _ in range(MAX_PAGES):
            page = await self._json("GET", path, params={**params, "next_cursor": cursor})
            if isinstance(page, list):  # an unpaginated listing
                return [x for x in page if isinstance(x, dict)]
            if not isinstance(page, dict) or not isinstance(page.get("data"), list):
                raise ExchangeError(f"GET {path}: unexpected reply shape")
            out += [x for x in page["data"] if isinstance(x, dict)]
            cursor = page.get("next_cursor") or END_CURSOR
            if cursor == END_CURSOR:
                return out
        raise ExchangeError(f"GET {path}: more than {MAX_PAGES} pages")

    async def open_orders(self, **filters: str) -> list[dict[str, Any]]:
        """Every open order of our address (``GET /data/orders``, all pages)."""
        return await self._pages("/data/orders", {k: v for k, v in filters.items() if v})

    async def trades(self, *, after_s: int | None = None) -> list[dict[str, Any]]:
        """Our trades (``GET /data/trades``, all pages), matched after ``after_s`` (unix seconds) if given."""
        return await self._pages("/data/trades", {} if after_s is None else {"after": str(after_s)})

    async def order(self, order_id: str, wait_s: float | None = None) -> dict[str, Any] | None:
        """One order by hash (``GET /data/order/{id}``); None when the venue does not know it."""
        try:
            r = await self.request("GET", f"/data/order/{order_id}", wait_s=wait_s)
        except httpx.HTTPError as exc:
            raise ExchangeError(f"GET /data/order: {describe(exc)}") from None
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise ExchangeError(f"GET /data/order: HTTP {r.status_code} {error_text(r)}", r.status_code)
        try:
            body = r.json()
        except ValueError:
            raise ExchangeError("GET /data/order: reply is not JSON") from None
        if body is None or body == {} or body == "":
            return None
        if not isinstance(body, dict):
            raise ExchangeError("GET /data/order: unexpected reply shape")
        return body

    async def cancel_all(self, wait_s: float | None = None) -> dict[str, Any]:
        res = await self._json("DELETE", "/cancel-all", wait_s=wait_s)
        return res if isinstance(res, dict) else {}

    async def cancel_orders(self, order_ids: list[str], wait_s: float | None = None) -> dict[str, Any]:
        from actors.edge.signing import serialize_body

        if len(order_ids) == 1:
            res = await self._json("DELETE", "/order", serialize_body({"orderID": order_ids[0]}), wait_s=wait_s)
        else:
            res = await self._json("DELETE", "/orders", serialize_body(order_ids), wait_s=wait_s)
        return res if isinstance(res, dict) else {}

    async def balance_allowance(self, asset_type: str = "COLLATERAL", token_id: str = "") -> dict[str, Any]:
        params = {"asset_type": asset_type, "signature_type": str(self.signer.signature_type)}
        if token_id:
            params["token_id"] = token_id
        res = await self._json("GET", "/balance-allowance", params=params)
        if not isinstance(res, dict):
            raise ExchangeError("GET /balance-allowance: unexpected reply shape")
        return res


def cancel_result(res: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """(canceled ids, {id: reason}) of a cancel reply."""
    canceled = [x for x in res.get("canceled") or [] if isinstance(x, str)]
    nc = res.get("not_canceled") or {}
    not_canceled = {str(k): str(v) for k, v in nc.items()} if isinstance(nc, dict) else {}
    return canceled, not_canceled


# ---------------------------------------------------------------- API credentials (L1)
async def derive_api_creds(
    client: httpx.AsyncClient, base_url: str, signer: OrderSigner, *, nonce: int = 0,
    wall_s: Callable[[], float] = time.time, timeout_s: float = 10.0,
) -> ApiCreds:
    """The API creds of this key and nonce: ``GET /auth/derive-api-key``, or ``POST /auth/api-key`` when the
    venue has none yet. Raises ``ExchangeError`` (one line, no secret)."""
    base = base_url.rstrip("/")
    last = ""
    for method, path in (("GET", "/auth/derive-api-key"), ("POST", "/auth/api-key")):
        headers = l1_headers(signer, timestamp=int(wall_s()), nonce=nonce)
        try:
            r = await client.request(method, base + path, headers=headers, timeout=timeout_s)
        except httpx.HTTPError as exc:
            raise ExchangeError(f"{method} {path}: {describe(exc)}") from None
        if r.status_code == 200:
            try:
                body = r.json()
                return ApiCreds.from_json(body)
            except (ValueError, KeyError, TypeError):
                raise ExchangeError(f"{method} {path}: reply has no apiKey/secret/passphrase") from None
        last = f"{method} {path}: HTTP {r.status_code} {error_text(r)}"
    raise ExchangeError(f"cannot get API credentials: {last}")


# ---------------------------------------------------------------- public checks
@dataclass
class GeoblockAnswer:
    ok: bool
    """True only for a readable answer saying ``blocked: false``."""
    blocked: bool
    detail: str


async def fetch_geoblock(client: httpx.AsyncClient, url: str, timeout_s: float = 10.0) -> GeoblockAnswer:
    """Ask the geoblock endpoint. Fail closed: an error, a timeout or an unreadable answer is not ok."""
    try:
        r = await client.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return GeoblockAnswer(False, False, f"geoblock check failed ({url}: {describe(exc)})")
    return judge_geoblock(r.status_code, _json_or_none(r), url)


def judge_geoblock(status: int, body: Any, url: str = "") -> GeoblockAnswer:
    """Pure: the verdict on one geoblock answer (HTTP status and decoded JSON body, None if unreadable)."""
    where = f" ({url})" if url else ""
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("blocked"), bool):
        return GeoblockAnswer(False, False, f"geoblock check failed{where}: HTTP {status}, no readable answer")
    loc = f"{body.get('country', '?')}/{body.get('region', '?')}"
    if body["blocked"]:
        return GeoblockAnswer(False, True, f"blocked: this location ({loc}) may not trade")
    return GeoblockAnswer(True, False, f"allowed ({loc})")


def _json_or_none(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return None


async def public_json(client: httpx.AsyncClient, url: str, timeout_s: float = 10.0) -> tuple[int, Any]:
    """(HTTP status, JSON body or None) of a public GET; (0, error name) when there is no answer."""
    try:
        r = await client.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return 0, describe(exc)
    return r.status_code, _json_or_none(r)


# ---------------------------------------------------------------- shared health of the live edges
@dataclass
class LiveHealth:
    """What the live edges know about the venue connection, read by the executor before each place.

    Places go out only while the user channel is connected and reconciled (fills and cancels can be seen), the
    heartbeat chain is alive (the venue's dead-man switch is armed and ours) and the last geoblock check passed.
    Cancels are never held back by any of this.
    """

    user_ready: bool = False
    heartbeat_ok: bool = False
    geoblock_ok: bool = True

    def why_not(self) -> str:
        """"" when places may go out, else why not."""
        if not self.geoblock_ok:
            return "geoblock check failed"
        if not self.heartbeat_ok:
            return "heartbeat not healthy"
        if not self.user_ready:
            return "user channel not connected and reconciled"
        return ""


# ---------------------------------------------------------------- where the exchange is
@dataclass
class LiveEndpoints:
    rest_url: str
    market_ws_url: str
    user_ws_url: str
    geoblock_url: str


def live_endpoints(exchange_url: str | None, *, rest_url: str = "", market_ws_url: str = "", user_ws_url: str = "",
                   geoblock_url: str = "") -> LiveEndpoints | None:
    """Endpoints from ``--exchange URL`` (a sandbox or an exchange laid out like it: ``/ws/market``,
    ``/ws/user`` and ``/api/geoblock`` on the same host), else from the config's exchange section. None when
    neither names an exchange (live trading never starts a built-in sandbox by itself)."""
    import re

    base = (exchange_url or rest_url).rstrip("/")
    if not base:
        return None
    ws = re.sub(r"^http", "ws", base)
    if exchange_url:
        return LiveEndpoints(base, f"{ws}/ws/market", f"{ws}/ws/user", f"{base}/api/geoblock")
    return LiveEndpoints(base, market_ws_url or f"{ws}/ws/market", user_ws_url or f"{ws}/ws/user",
                         geoblock_url or f"{base}/api/geoblock")
