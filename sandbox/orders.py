"""Slot for the order side of the sandbox exchange (a later task; nothing here yet).

How it plugs in:
- `register(app)` is called once by `open_sandbox` after the market-data routes exist. Add routes with
  `app.add_route("POST", "/order", handler)` (handlers are `async def handler(req: Request) -> JSON`; raise
  `sandbox.rest.HTTPError(status, message)` for `{"error": ...}` answers) and sockets with
  `app.add_ws("/ws/user", handler)` (`async def handler(receive, send)`, raw ASGI).
- Keep order state on `app.state.orders` (the shared `ExchangeState`). Resting orders change the books of the
  simulator (`app.state.source.books[condition_id]`, a `BinaryBook` kept in YES terms: `set_level` returns the
  two `price_changes` entries to put in a `price_change` event) and the resulting frames go out with
  `app.state.hub.broadcast([frame, ...])`.
- HTTP faults (425/429/5xx, delays) already apply to every route that is not under `/_sandbox` or the geoblock.
"""

from __future__ import annotations

from typing import Any


def register(app: Any) -> None:
    """No order endpoints yet."""
    return None
