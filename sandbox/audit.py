"""The audit trail of the order side: one record per thing the exchange received or did to a user's orders.

A chaos harness checks its invariants against this ("no order ever reached the exchange outside the limits",
"no order of ours left open after stop"), so every record is plain JSON. `sb.audit` is the live `Audit` (a list);
``GET /_sandbox/audit?since=SEQ&kind=K`` serves the same records.

Kinds (every record also has ``seq``, ``t`` = trio time, ``ts_ms`` = server clock ms, ``kind``):

* ``order``: one per order received (``POST /order``, each element of ``POST /orders``): ``endpoint, api_key,
  address, order_id, order`` (decoded fields, or the raw JSON if it did not decode), ``order_type, post_only,
  owner, market, asset_id, side, price, size, signer`` (recovered), ``accepted, reason, detail, status,
  making, taking, trade_ids``.
* ``request_rejected``: a whole request refused before the engine looked at its orders (425 restart, 429, 503
  playback): ``endpoint, status, reason, orders`` (decoded bodies when they decode).
* ``cancel``: ``endpoint`` (``DELETE /order`` ... or a sandbox cause: ``heartbeat_timeout``, ``expired``,
  ``tick_size_change``, ``ghost_restore``), ``api_key, address, requested, canceled, not_canceled``.
* ``heartbeat``: ``api_key, address, received, ok, next`` / ``expected``, ``fault``.
* ``heartbeat_timeout``: ``address, canceled``.
* ``trade``: ``trade_id, status, market, asset_id, side, size, price, taker_order_id, maker_order_ids,
  users, ghost`` (one record per status change).
* ``auth_reject``: ``endpoint, reason, api_key`` (the client only saw the generic 401).
* ``auth``: API key created or derived: ``endpoint, address, nonce, api_key``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any


class Audit(list):  # type: ignore[type-arg]
    def __init__(self, clock: Callable[[], tuple[float, int]]) -> None:
        super().__init__()
        self._clock = clock
        self._seq = itertools.count(1)

    def add(self, kind: str, **fields: Any) -> dict[str, Any]:
        t, ts_ms = self._clock()
        rec = {"seq": next(self._seq), "t": round(t, 6), "ts_ms": ts_ms, "kind": kind, **fields}
        self.append(rec)
        return rec

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self if r["kind"] == kind]

    def orders(self, accepted: bool | None = None) -> list[dict[str, Any]]:
        return [r for r in self if r["kind"] == "order" and (accepted is None or r["accepted"] is accepted)]

    def since(self, seq: int = 0, kind: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self if r["seq"] > seq and (kind is None or r["kind"] == kind)]
