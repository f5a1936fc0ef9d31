"""The user channel `/ws/user`: authenticated sockets that receive `order` and `trade` events.

Subscribe with ``{"auth": {"apiKey", "secret", "passphrase"}, "type": "user", "markets": [condition ids]}``
(``markets`` empty or absent = every market). Bad credentials close the socket with code 1008 and the reason
``Unauthorized/Invalid api key``. ``{"operation": "subscribe" | "unsubscribe", "markets": [...]}`` changes the
set. The text ``PING`` is answered ``PONG`` (FIFO after queued events, so it is a barrier).

A socket receives the events of every order and trade of its API key's *address* (all that address's keys).
There is no replay: events produced while a socket is silent (half-open fault) or disconnected are lost, as on
Polymarket, and clients recover through REST.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import wsconn
from .wire import encode
from .wsconn import WsConnection

if TYPE_CHECKING:
    from .auth import ApiCreds
    from .faults import Faults

BAD_AUTH_CODE = 1008
BAD_AUTH_REASON = "Unauthorized/Invalid api key"


class UserConnection(WsConnection):
    def __init__(self, hub: UserHub) -> None:
        super().__init__()
        self.hub = hub
        self.address: str | None = None  # lower-case, once authenticated
        self.api_key: str | None = None
        self.markets: set[str] | None = None  # None = every market

    @property
    def silent(self) -> bool:
        return self.half_open or self.hub.faults.user_half_open

    def wants(self, address: str, market: str) -> bool:
        return self.address == address and (self.markets is None or market in self.markets)


class UserHub:
    def __init__(
        self,
        faults: Faults,
        lookup: Callable[[str], ApiCreds | None],
        stats: Any,
        all_markets: Callable[[], set[str]],
    ) -> None:
        self.faults = faults
        self.lookup = lookup
        self.stats = stats
        self.all_markets = all_markets
        self.conns: set[UserConnection] = set()
        faults._user_injector = self.inject

    def push(self, address: str, market: str, event: dict[str, Any]) -> int:
        """Send one event to the sockets of `address` subscribed to `market`; returns how many got it."""
        address = address.lower()
        text: str | None = None
        n = 0
        for c in self.conns:
            if c.drop_code is None and c.wants(address, market):
                if text is None:
                    text = encode(event)
                c.push(text)
                n += 1
        return n

    def inject(self, kind: str, opts: dict[str, Any]) -> int:
        hit = 0
        for c in list(self.conns):
            if c.drop_code is not None:
                continue
            if kind == "user_half_open":
                c.half_open = True
            elif kind == "user_drop":
                c.drop(int(opts.get("code", self.faults.drop_code)))
            hit += 1
        self.faults.counts[kind] += hit
        return hit

    def close_all(self, code: int = 1001) -> None:
        for c in list(self.conns):
            c.drop(code, "sandbox: shutting down")

    async def serve(self, receive: Any, send: Any) -> None:
        if not await wsconn.accept(receive, send):
            return
        conn = UserConnection(self)
        self.stats["user_ws_connections"] += 1
        stats = self.stats

        def sent() -> None:
            stats["user_ws_frames_sent"] += 1

        await wsconn.serve(conn, receive, send, conns=self.conns, on_text=lambda text: self._on_message(conn, text),
                           on_sent=sent)

    def _on_message(self, conn: UserConnection, text: str) -> None:
        if text.strip() == "PING":
            if conn.silent:
                self.stats["user_pings_ignored"] += 1
            else:
                conn.push("PONG")
            return
        try:
            msg = json.loads(text)
        except ValueError:
            self.stats["bad_user_messages"] += 1
            return
        if not isinstance(msg, dict):
            self.stats["bad_user_messages"] += 1
            return
        markets = msg.get("markets")
        if markets is not None and not (
            isinstance(markets, list) and all(isinstance(m, str) for m in markets)
        ):
            self.stats["bad_user_messages"] += 1
            return
        if "auth" in msg:
            creds = self._check_auth(msg.get("auth"))
            if creds is None:
                self.stats["user_auth_rejected"] += 1
                conn.drop(BAD_AUTH_CODE, BAD_AUTH_REASON)
                return
            conn.address, conn.api_key = creds.address.lower(), creds.api_key
            conn.markets = set(markets) if markets else None
            return
        op = msg.get("operation")
        if conn.address is None or op not in ("subscribe", "unsubscribe"):
            self.stats["bad_user_messages"] += 1
            return
        ids = set(markets or [])
        if op == "subscribe":
            if conn.markets is not None:
                conn.markets |= ids
        elif conn.markets is None:
            conn.markets = self.all_markets() - ids
        else:
            conn.markets -= ids

    def _check_auth(self, auth: Any) -> ApiCreds | None:
        if not isinstance(auth, dict):
            return None
        key, secret, passphrase = auth.get("apiKey"), auth.get("secret"), auth.get("passphrase")
        if not all(isinstance(x, str) and x for x in (key, secret, passphrase)):
            return None
        creds = self.lookup(key)  # type: ignore[arg-type]
        if creds is None:
            return None
        ok = hmac.compare_digest(creds.secret.encode(), secret.encode())  # type: ignore[union-attr]
        ok &= hmac.compare_digest(creds.passphrase.encode(), passphrase.encode())  # type: ignore[union-attr]
        return creds if ok else None
