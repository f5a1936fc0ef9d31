"""The market channel: `/ws/market` connections, subscriptions, broadcast and WS fault injection.

Every connection has an unbounded outbox (a trio memory channel) drained by one writer task; the broadcaster
puts frames in synchronously, so an initial dump built at subscribe time is consistent with every later frame,
and a PONG answers a PING only after every frame queued before it (tests use PING as a barrier).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import trio

from . import faults as F
from . import wsconn
from .wsconn import WsConnection
from .wire import encode

if TYPE_CHECKING:
    from .exchange import ExchangeState

class MarketConnection(WsConnection):
    def __init__(self, hub: MarketHub) -> None:
        super().__init__()
        self.hub = hub
        self.subs: set[str] = set()
        self.sub_markets: set[str] = set()
        self.custom = False
        self.subscribed = False

    @property
    def silent(self) -> bool:
        return self.half_open or self.hub.state.faults.half_open

    def on_slow_consumer(self) -> None:
        self.hub.state.stats["slow_consumer_drops"] += 1

    def wants(self, e: dict[str, Any]) -> bool:
        et = e.get("event_type")
        if et == "best_bid_ask" and not self.custom:
            return False
        a = e.get("asset_id")
        if a is not None:
            return a in self.subs
        pcs = e.get("price_changes")
        if pcs is not None:
            return any(pc.get("asset_id") in self.subs for pc in pcs)
        return e.get("market") in self.sub_markets

    def set_subs(self, subs: set[str]) -> None:
        src = self.hub.state.source
        self.subs = subs
        self.sub_markets = {src.market_of(t).condition_id for t in subs if src.has(t)}


class MarketHub:
    def __init__(self, state: ExchangeState) -> None:
        self.state = state
        self.conns: set[MarketConnection] = set()
        self.first_subscribe = trio.Event()
        self._bad_price_n = 0

    # ---- broadcast ----------------------------------------------------------------------------------------
    def broadcast(self, frames: list[Any]) -> None:
        """Send sim frames (dict = one event, list = array frame) to each subscriber, filtered per socket."""
        conns = [c for c in self.conns if c.subscribed and c.drop_code is None]
        if not conns:
            return
        for frame in frames:
            evs = frame if isinstance(frame, list) else [frame]
            full: str | None = None
            for c in conns:
                sel = [e for e in evs if c.wants(e)]
                if not sel:
                    continue
                if len(sel) == len(evs):
                    if full is None:
                        full = encode(frame)
                    c.push(full)
                else:
                    c.push(encode(sel if isinstance(frame, list) else sel[0]))

    def broadcast_raw(self, text: str, assets: set[str] | None) -> None:
        """Send a recorded frame verbatim to the subscribers whose assets it mentions (all if it names none)."""
        for c in list(self.conns):
            if c.subscribed and (assets is None or assets & c.subs):
                c.push(text)

    # ---- faults -------------------------------------------------------------------------------------------
    def inject(self, kind: str, opts: dict[str, Any]) -> int:
        faults = self.state.faults
        hit = 0
        for c in list(self.conns):
            if c.drop_code is not None:
                continue
            if kind == "drop":
                c.drop(int(opts.get("code", faults.drop_code)))
            elif kind == "half_open":
                c.half_open = True
            elif kind == "stall":
                c.stall(float(opts.get("seconds", faults.stall_seconds)))
            else:
                if not c.subscribed:
                    continue
                c.push(self._fault_frame(kind, c))
            hit += 1
        faults.counts[kind] += hit
        return hit

    def _fault_frame(self, kind: str, c: MarketConnection) -> str:
        src = self.state.source
        known = sorted(t for t in c.subs if src.has(t))
        token = known[0] if known else (src.token_ids[0] if src.token_ids else "0")
        market = src.market_of(token).condition_id if src.has(token) else "0x" + "0" * 64
        ts = str(src.now_ms)
        if kind == "malformed":
            return F.malformed_frame(market, token, ts)
        if kind == "unknown_event":
            return encode(F.unknown_event(market, token, ts))
        self._bad_price_n += 1
        return encode(F.bad_price_event(market, token, ts, "1.5" if self._bad_price_n % 2 else "-0.1"))

    def close_all(self, code: int = 1001) -> None:
        for c in list(self.conns):
            c.drop(code, "sandbox: shutting down")

    # ---- one connection -----------------------------------------------------------------------------------
    async def serve(self, receive: Any, send: Any) -> None:
        if not await wsconn.accept(receive, send):
            return
        conn = MarketConnection(self)
        self.state.stats["ws_connections"] += 1
        stats = self.state.stats

        def sent() -> None:
            stats["ws_frames_sent"] += 1

        await wsconn.serve(conn, receive, send, conns=self.conns, on_text=lambda text: self._on_message(conn, text),
                           on_sent=sent)

    def _on_message(self, conn: MarketConnection, text: str) -> None:
        st = self.state
        if text.strip() == "PING":
            if conn.silent:
                st.stats["pings_ignored"] += 1
            else:
                conn.push("PONG")
            return
        try:
            msg = json.loads(text)
        except ValueError:
            st.stats["bad_client_messages"] += 1
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("assets_ids", []), list):
            st.stats["bad_client_messages"] += 1
            return
        ids = [str(a) for a in msg.get("assets_ids", [])]
        op = msg.get("operation")
        if "custom_feature_enabled" in msg:  # applied before the duplicate check, like the live server
            conn.custom = bool(msg["custom_feature_enabled"])
        if op is None:
            if "assets_ids" not in msg:
                st.stats["bad_client_messages"] += 1
                return
            # initial subscription (also accepted again later: it replaces the subscription)
            conn.set_subs(set(ids))
            conn.subscribed = True
            self.first_subscribe.set()
            if msg.get("initial_dump", True) and not getattr(st.source, "suppress_dump", False):
                self._dump(conn, ids)
        elif op == "subscribe":
            new = [a for a in dict.fromkeys(ids) if a not in conn.subs]  # duplicates are ignored
            conn.set_subs(conn.subs | set(new))
            conn.subscribed = True
            self.first_subscribe.set()
            if new and msg.get("initial_dump", True):
                self._dump(conn, new)
        elif op == "unsubscribe":
            conn.set_subs(conn.subs - set(ids))
        else:
            st.stats["bad_client_messages"] += 1

    def _dump(self, conn: MarketConnection, ids: list[str]) -> None:
        """One frame: an array with a `book` per known asset; `[]` if none is known."""
        src = self.state.source
        conn.push(encode([src.book_event(t) for t in dict.fromkeys(ids) if src.has(t)]))
