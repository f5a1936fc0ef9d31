"""Keeping the API key out of the journal: venue text is masked before an edge hands it to the sequencer.

The venue (Polymarket, and the sandbox like it) writes our API key into what it sends us: the ``owner`` of
user-channel ``order`` and ``trade`` events, ``order_owner`` / ``trade_owner``, every ``maker_orders[].owner``, the
same fields of ``/data/trades`` and ``/data/orders`` rows, and possibly the text of an error reply. The key is not a
secret the way the API secret is, but it is a credential, and the journal must not hold it.

``KeyMask`` replaces every occurrence of the key (as given, and in upper or lower case) with its stand-in
``key:<key_id>`` (``actors.core.live.key_stand_in``: 16 hex digits of sha256(key), as in ``LiveIdentity.key_id``)
in every string of an event, including strings inside tuples, lists and nested structs. The live session puts it in
front of the sequencer (``actors.live_session``), so every event any live edge or sink emits passes through it
exactly once. The core recognises the stand-in as ours (``LiveExec._ours``), and still recognises raw keys in
journals recorded before the mask existed, so they replay as they did.
"""
from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from actors.core.live import key_stand_in

T = TypeVar("T")
MIN_KEY_LEN = 8
"""A shorter "key" is not masked (it could match ordinary text); real API keys are UUIDs."""


class KeyMask:
    """Replaces one API key in text and in events. A mask for "" (no key known) changes nothing."""

    def __init__(self, api_key: str) -> None:
        key = api_key.strip() if api_key else ""
        self.forms: tuple[str, ...] = ()
        self.stand_in = ""
        if len(key) >= MIN_KEY_LEN:
            self.stand_in = key_stand_in(key)
            self.forms = tuple(dict.fromkeys((key, key.lower(), key.upper())))
        self.masked = 0
        """How many strings were changed (for tests and the curious)."""

    def __bool__(self) -> bool:
        return bool(self.forms)

    def text(self, s: str) -> str:
        for f in self.forms:
            if f in s:
                s = s.replace(f, self.stand_in)
        return s

    def event(self, ev: T) -> T:
        """``ev`` itself when it holds no form of the key, else a copy with every occurrence replaced."""
        if not self.forms:
            return ev
        return self._value(ev)

    def _value(self, v: Any) -> Any:
        if isinstance(v, str):
            out = self.text(v)
            if out is not v:
                self.masked += 1
            return out
        if isinstance(v, msgspec.Struct):
            changes = {}
            for name in v.__struct_fields__:
                old = getattr(v, name)
                if isinstance(old, str | tuple | list | msgspec.Struct):
                    new = self._value(old)
                    if new is not old:
                        changes[name] = new
            return msgspec.structs.replace(v, **changes) if changes else v
        if isinstance(v, tuple | list):
            items = [self._value(x) for x in v]
            if any(a is not b for a, b in zip(items, v, strict=True)):
                return type(v)(items)
            return v
        return v
