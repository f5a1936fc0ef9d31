"""Secrets of live trading: the private key and the API credentials. Loading, permission checks, redaction.

Where they come from (nothing secret is ever in the config file or the journal):
- the private key: ``PMM_PRIVATE_KEY`` in the environment, else the file named by ``live.key_file``, which must be
  a regular file owned by the current user with no group or other permission bits (``chmod 600``);
- the API credentials: ``PMM_API_KEY`` + ``PMM_API_SECRET`` + ``PMM_API_PASSPHRASE`` (all three or none); when
  absent they are derived with the key (L1, ``/auth/derive-api-key``) at start and kept in memory only.

Errors are one line and never contain a secret. ``Redactor`` replaces every form of the secrets it knows (the key
with and without ``0x``, any case; the API secret and passphrase) in text about to be printed or stored, and the API
key with its stand-in ``key:<key_id>``.
"""
from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from actors.edge.auth import ApiCreds
from actors.edge.keymask import KeyMask

ENV_PRIVATE_KEY = "PMM_PRIVATE_KEY"
ENV_API_KEY = "PMM_API_KEY"
ENV_API_SECRET = "PMM_API_SECRET"
ENV_API_PASSPHRASE = "PMM_API_PASSPHRASE"
REDACTED = "<redacted>"
_HEX64 = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


class SecretError(ValueError):
    """A secret is missing, malformed or not protected. One line, never containing the secret."""


@dataclass(frozen=True, repr=False)
class PrivateKey:
    """A private key and where it came from (for messages). ``repr`` never shows it."""

    hex: str
    source: str

    def __repr__(self) -> str:
        return f"PrivateKey(source={self.source!r}, hex=<redacted>)"

    __str__ = __repr__


def owner_only_problem(path: Path) -> str:
    """Why ``path`` is not a secret file readable by its owner only ("" when it is)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"{path}: no such file"
    except OSError as exc:
        return f"{path}: cannot stat: {exc.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return f"{path}: not a regular file"
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"{path}: owned by uid {st.st_uid}, not by this user (uid {os.getuid()})"
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return f"{path}: permissions {mode:04o} let others read it; run `chmod 600 {path}`"
    return ""


def _normalize_key(text: str, source: str) -> str:
    key = text.strip()
    if not _HEX64.match(key):
        raise SecretError(f"{source}: not a private key (expected 64 hex digits, optionally with 0x)")
    return key if key.startswith("0x") else "0x" + key


def load_private_key(key_file: str = "", env: Mapping[str, str] | None = None) -> PrivateKey:
    """The private key from ``PMM_PRIVATE_KEY`` or ``key_file`` (owner-only permissions). Raises ``SecretError``."""
    env = os.environ if env is None else env
    value = env.get(ENV_PRIVATE_KEY, "")
    if value:
        return PrivateKey(_normalize_key(value, f"${ENV_PRIVATE_KEY}"), f"${ENV_PRIVATE_KEY}")
    if not key_file:
        raise SecretError(f"no private key: set ${ENV_PRIVATE_KEY} or live.key_file (a chmod 600 file)")
    path = Path(key_file).expanduser()
    problem = owner_only_problem(path)
    if problem:
        raise SecretError(f"key file {problem}")
    try:
        text = path.read_text(encoding="ascii", errors="strict")
    except (OSError, UnicodeDecodeError):
        raise SecretError(f"key file {path}: cannot read it as text") from None
    return PrivateKey(_normalize_key(text, f"key file {path}"), f"key file {path}")


def load_api_creds(env: Mapping[str, str] | None = None) -> ApiCreds | None:
    """API creds from the environment (all three variables), None when none is set. Raises when only some are."""
    env = os.environ if env is None else env
    names = (ENV_API_KEY, ENV_API_SECRET, ENV_API_PASSPHRASE)
    values = [env.get(n, "") for n in names]
    if not any(values):
        return None
    missing = [n for n, v in zip(names, values, strict=True) if not v]
    if missing:
        raise SecretError(f"API credentials: set all of {', '.join('$' + n for n in names)} (missing {', '.join(missing)})")
    return ApiCreds(api_key=values[0], secret=values[1], passphrase=values[2])


def secret_forms(private_key: str | None = None, creds: ApiCreds | None = None) -> list[str]:
    """Every string that must never appear anywhere: the key with and without 0x (as given, lower, upper), the
    API secret and passphrase."""
    forms: list[str] = []
    if private_key:
        bare = private_key[2:] if private_key[:2] in ("0x", "0X") else private_key
        for b in (bare, bare.lower(), bare.upper()):
            forms += [b, "0x" + b]
    if creds is not None:
        forms += [creds.secret, creds.passphrase]
    return sorted({f for f in forms if len(f) >= 8}, key=len, reverse=True)


class Redactor:
    """Replaces known secrets in text (longest first, so a form never leaves a fragment of a longer one).

    ``api_key``: the API key is not replaced by ``<redacted>`` but by its stable stand-in ``key:<key_id>``
    (``actors.edge.keymask.KeyMask``), as the live edges journal it."""

    def __init__(self, secrets: Iterable[str] = (), api_key: str = "") -> None:
        self._forms: list[str] = []
        self._mask = KeyMask(api_key)
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        forms = set(self._forms)
        forms.update(s for s in secrets if s and len(s) >= 8)
        self._forms = sorted(forms, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for f in self._forms:
            if f in text:
                text = text.replace(f, REDACTED)
        return self._mask.text(text)

    def __call__(self, text: str) -> str:
        return self.redact(text)

    def __repr__(self) -> str:
        return f"Redactor({len(self._forms)} forms)"
