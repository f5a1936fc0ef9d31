"""A minimal ASGI application (no framework): REST routes and WebSocket paths on one port, served by hypercorn's
trio worker. Routes are registered with `add_route` / `add_prefix_route` / `add_ws`, so the order side can add its
own (`POST /order`, `/ws/user` ...) without touching this file.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import trio

from . import rest
from .exchange import ExchangeState
from .faults import HTTP_ERROR_MESSAGES
from .rest import DropConnection, HTTPError, Reply
from .wire import encode

Handler = Callable[..., Awaitable[Any]]
WsHandler = Callable[[Any, Any], Awaitable[None]]
MAX_BODY = 4 * 1024 * 1024


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: bytes
    headers: dict[str, str]
    client_ip: str
    _json: Any = field(default=None, repr=False)

    def json(self) -> Any:
        if self._json is None:
            try:
                self._json = json.loads(self.body or b"null")
            except ValueError:
                raise HTTPError(400, "Invalid JSON body") from None
        return self._json


class SandboxApp:
    def __init__(self, state: ExchangeState, stepper: Callable[[int], list[Any]] | None = None) -> None:
        self.state = state
        self.stepper = stepper
        self._routes: dict[tuple[str, str], Handler] = {}
        self._prefix_routes: list[tuple[str, str, Handler]] = []
        self._ws: dict[str, WsHandler] = {"/ws/market": state.hub.serve}
        rest.register(self)

    # ---- registration -------------------------------------------------------------------------------------
    def add_route(self, method: str, path: str, handler: Handler) -> None:
        self._routes[(method.upper(), path)] = handler

    def add_prefix_route(self, method: str, prefix: str, handler: Handler) -> None:
        """`handler(req, rest_of_path)` for paths `prefix + X` (X non-empty, no further slash)."""
        self._prefix_routes.append((method.upper(), prefix, handler))

    def add_ws(self, path: str, handler: WsHandler) -> None:
        self._ws[path] = handler

    # ---- ASGI ---------------------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            handler = self._ws.get(scope["path"])
            if handler is None:
                await receive()  # websocket.connect
                await send({"type": "websocket.close", "code": 1008})  # before accept: HTTP 403
                return
            await handler(receive, send)
        elif kind == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    def _resolve(self, method: str, path: str) -> tuple[Handler, tuple[str, ...]] | None:
        h = self._routes.get((method, path))
        if h is not None:
            return h, ()
        known_path = any(p == path for (_, p) in self._routes)
        for m, prefix, handler in self._prefix_routes:
            if m == method and path.startswith(prefix):
                tail = path[len(prefix) :]
                if tail and "/" not in tail:
                    return handler, (tail,)
        if known_path or any(
            path.startswith(p) and path[len(p) :] and "/" not in path[len(p) :]
            for (_, p, _) in self._prefix_routes
        ):
            raise HTTPError(405, f"Method {method} not allowed for {path}")
        return None

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        st = self.state
        body = b""
        more = True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
            if len(body) > MAX_BODY:
                await self._respond(send, 413, {"error": "Payload too large"})
                return
        method = scope["method"].upper()
        path = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        client = scope.get("client") or ("127.0.0.1", 0)
        req = Request(
            method=method,
            path=path,
            query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)),
            body=body,
            headers=headers,
            client_ip=client[0],
        )
        st.stats["http_requests"] += 1
        delay, fault_status = st.faults.http_plan(path)
        if delay > 0:
            await trio.sleep(delay)
        if fault_status is not None:
            extra = {}
            if fault_status in (429, 503):
                extra["retry-after"] = str(st.faults.retry_after)
            msg_ = HTTP_ERROR_MESSAGES.get(fault_status, "sandbox fault")
            await self._respond(send, fault_status, {"error": msg_}, extra)
            return
        try:
            resolved = self._resolve(method, path)
            if resolved is None:
                raise HTTPError(404, f"Not found: {path}")
            handler, args = resolved
            result = await handler(req, *args)
            if isinstance(result, Reply):
                await self._respond(send, result.status, result.body, result.headers)
            else:
                await self._respond(send, 200, result)
        except HTTPError as e:
            await self._respond(send, e.status, {"error": e.message, **e.extra}, e.headers)
        except DropConnection as e:
            await self._drop(send, e.body)

    @staticmethod
    async def _drop(send: Any, obj: Any) -> None:
        """Announce a full JSON body, send half of it and stop: the server then closes the connection and the
        client sees a truncated response (an ASGI app cannot send a TCP reset)."""
        data = encode(obj).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data[: len(data) // 2], "more_body": True})
        # returning with the response unfinished makes hypercorn close the connection

    @staticmethod
    async def _respond(send: Any, status: int, obj: Any, extra: dict[str, str] | None = None) -> None:
        data = encode(obj).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        for k, v in (extra or {}).items():
            headers.append((k.encode(), v.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})
