"""Polymarket CLOB request authentication, byte-compatible with ``py-clob-client-v2`` (``headers/headers.py``,
``signing/hmac.py``, ``signing/eip712.py``), plus the verifying side for our sandbox exchange.

* **L1** (wallet, only to create/derive API creds): EIP-712 ``ClobAuth(address address,string timestamp,
  uint256 nonce,string message)`` under ``EIP712Domain(string name,string version,uint256 chainId)`` =
  ("ClobAuthDomain", "1", chainId), no verifyingContract. Headers ``POLY_ADDRESS``, ``POLY_SIGNATURE``,
  ``POLY_TIMESTAMP`` (unix s), ``POLY_NONCE``.
* **L2** (every trading call): ``POLY_SIGNATURE`` = urlsafe-base64(HMAC-SHA256(urlsafe_b64decode(secret),
  str(ts) + METHOD + path + body)), with ``POLY_ADDRESS`` (the EOA), ``POLY_TIMESTAMP``, ``POLY_API_KEY``,
  ``POLY_PASSPHRASE``. ``path`` has no query string; ``body`` is the exact string sent (see
  ``actors.edge.signing.serialize_body``). Quirk kept from the client: single quotes in the body are replaced
  by double quotes before signing, and an empty body adds nothing.

Timestamps are parameters (no clock reads here): the caller passes its clock (or the server's ``/time``).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from actors.edge.signing import (
    OrderSigner,
    SignatureError,
    _addr_bytes,
    _recover,
    keccak256,
    to_checksum_address,
)

__all__ = [
    "CLOB_AUTH_MESSAGE",
    "POLY_ADDRESS",
    "POLY_API_KEY",
    "POLY_NONCE",
    "POLY_PASSPHRASE",
    "POLY_SIGNATURE",
    "POLY_TIMESTAMP",
    "ApiCreds",
    "build_hmac_signature",
    "clob_auth_digest",
    "derive_api_creds",
    "l1_headers",
    "l2_headers",
    "verify_l1",
    "verify_l2",
]

POLY_ADDRESS = "POLY_ADDRESS"
POLY_SIGNATURE = "POLY_SIGNATURE"
POLY_TIMESTAMP = "POLY_TIMESTAMP"
POLY_NONCE = "POLY_NONCE"
POLY_API_KEY = "POLY_API_KEY"
POLY_PASSPHRASE = "POLY_PASSPHRASE"

CLOB_AUTH_MESSAGE = "This message attests that I control the given wallet"
_CLOB_DOMAIN_TYPE_HASH = keccak256(b"EIP712Domain(string name,string version,uint256 chainId)")
_CLOB_AUTH_TYPE_HASH = keccak256(b"ClobAuth(address address,string timestamp,uint256 nonce,string message)")
_CLOB_NAME_HASH = keccak256(b"ClobAuthDomain")
_CLOB_VERSION_HASH = keccak256(b"1")
_CLOB_MESSAGE_HASH = keccak256(CLOB_AUTH_MESSAGE.encode())


# ------------------------------------------------------------------------------------------------ creds
@dataclass(frozen=True, slots=True, repr=False)
class ApiCreds:
    """L2 API credentials as the CLOB returns them (``{"apiKey","secret","passphrase"}``).

    ``address`` is not part of Polymarket's reply: it is the address the creds belong to, set by our sandbox
    (``derive_api_creds``) so ``verify_l2`` can check ``POLY_ADDRESS``; leave it None on the client side.
    ``repr``/``str`` never show the secret or the passphrase.
    """

    api_key: str
    secret: str
    passphrase: str
    address: str | None = None

    def __repr__(self) -> str:
        addr = "" if self.address is None else f", address={self.address}"
        return f"ApiCreds(api_key={self.api_key!r}, secret=<redacted>, passphrase=<redacted>{addr})"

    __str__ = __repr__

    @classmethod
    def from_json(cls, obj: Mapping[str, str]) -> ApiCreds:
        """From the ``/auth/api-key`` / ``/auth/derive-api-key`` reply."""
        return cls(api_key=obj["apiKey"], secret=obj["secret"], passphrase=obj["passphrase"])

    def to_json(self) -> dict[str, str]:
        """The reply shape the sandbox serves (contains the secret: never log it)."""
        return {"apiKey": self.api_key, "secret": self.secret, "passphrase": self.passphrase}


def derive_api_creds(address: str, nonce: int, server_secret: bytes) -> ApiCreds:
    """Deterministic creds for ``address``/``nonce``, for OUR SANDBOX only (``/auth/api-key`` and
    ``/auth/derive-api-key`` both return these). Real Polymarket creds are minted by its server and cannot
    be derived client-side. Formats mimic the real ones: UUID api key, urlsafe-base64 32-byte secret,
    64-hex passphrase. Each field is HMAC-SHA256(server_secret, label || address || nonce)."""
    addr = to_checksum_address(_addr_bytes(address))
    if type(nonce) is not int or nonce < 0:
        raise ValueError("nonce must be a non-negative int")
    if not isinstance(server_secret, bytes | bytearray) or len(server_secret) < 16:
        raise ValueError("server_secret must be at least 16 bytes")
    base = b"\x00" + addr.lower().encode() + b"\x00" + str(nonce).encode()

    def mac(label: bytes) -> bytes:
        return hmac.new(bytes(server_secret), b"pmm-sandbox-creds/" + label + base, hashlib.sha256).digest()

    k = bytearray(mac(b"key")[:16])
    k[6] = (k[6] & 0x0F) | 0x40  # UUID version 4 layout
    k[8] = (k[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = k.hex()
    api_key = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    secret = base64.urlsafe_b64encode(mac(b"secret")).decode()
    passphrase = mac(b"passphrase").hex()
    return ApiCreds(api_key=api_key, secret=secret, passphrase=passphrase, address=addr)


# ------------------------------------------------------------------------------------------------ L2 (HMAC)
def _body_str(body: str | bytes | None) -> str | None:
    if body is None or isinstance(body, str):
        return body
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body).decode("utf-8")
    raise TypeError("body must be the exact request body: str, bytes or None")


def build_hmac_signature(secret: str, timestamp: int | str, method: str, path: str, body: str | bytes | None = None) -> str:
    """urlsafe-b64(HMAC-SHA256(urlsafe_b64decode(secret), str(ts) + method + path [+ body])), exactly as
    ``py_clob_client_v2.signing.hmac.build_hmac_signature`` (including its ``'`` -> ``"`` body rewrite)."""
    key = base64.urlsafe_b64decode(secret)
    message = str(timestamp) + str(method) + str(path)
    b = _body_str(body)
    if b:
        message += b.replace("'", '"')
    return base64.urlsafe_b64encode(hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()).decode("utf-8")


def l2_headers(
    address: str, creds: ApiCreds, method: str, path: str, body: str | bytes | None = None, *, timestamp: int
) -> dict[str, str]:
    """The five L2 headers for one request. ``address`` is the signing EOA (``OrderSigner.address``) even for
    proxy/safe/deposit-wallet accounts; ``path`` without query string; ``body`` the exact string sent."""
    return {
        POLY_ADDRESS: address,
        POLY_SIGNATURE: build_hmac_signature(creds.secret, timestamp, method, path, body),
        POLY_TIMESTAMP: str(timestamp),
        POLY_API_KEY: creds.api_key,
        POLY_PASSPHRASE: creds.passphrase,
    }


def _norm_headers(headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for k, v in items:
        ks = k.decode("latin-1") if isinstance(k, bytes | bytearray) else str(k)
        vs = v.decode("latin-1") if isinstance(v, bytes | bytearray) else str(v)
        out[ks.upper()] = vs  # HTTP header names are case-insensitive
    return out


def _ts_ok(ts: str, now_s: int | None, max_skew_s: int | None) -> bool:
    if not (ts.isascii() and ts.isdigit()) or len(ts) > 20:
        return False
    if now_s is not None and max_skew_s is not None and abs(int(ts) - now_s) > max_skew_s:
        return False
    return True


def verify_l2(
    headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
    method: str,
    path: str,
    body: str | bytes | None,
    creds_lookup: Callable[[str], ApiCreds | None],
    *,
    now_s: int | None = None,
    max_skew_s: int | None = None,
) -> bool:
    """Sandbox side of L2: True iff all five headers are present, the API key is known
    (``creds_lookup(api_key)``), the passphrase matches, ``POLY_ADDRESS`` is the creds' address (when
    ``creds.address`` is set) and ``POLY_SIGNATURE`` is the HMAC of ``POLY_TIMESTAMP + method + path + body``
    (constant-time compares). With ``now_s`` and ``max_skew_s`` the timestamp must also be that fresh."""
    h = _norm_headers(headers)
    try:
        address, sig, ts, api_key, passphrase = (
            h[POLY_ADDRESS], h[POLY_SIGNATURE], h[POLY_TIMESTAMP], h[POLY_API_KEY], h[POLY_PASSPHRASE]
        )
    except KeyError:
        return False
    if not _ts_ok(ts, now_s, max_skew_s):
        return False
    creds = creds_lookup(api_key)
    if creds is None:
        return False
    if not hmac.compare_digest(passphrase.encode("utf-8"), creds.passphrase.encode("utf-8")):
        return False
    if creds.address is not None and address.lower() != creds.address.lower():
        return False
    try:
        expected = build_hmac_signature(creds.secret, ts, method, path, body)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    return hmac.compare_digest(expected.encode("utf-8"), sig.encode("utf-8"))


# ------------------------------------------------------------------------------------------------ L1 (EIP-712)
def clob_auth_digest(address: str, timestamp: int | str, nonce: int, chain_id: int = 137) -> bytes:
    """EIP-712 digest of ``ClobAuth{address, timestamp: str(timestamp), nonce, message}`` under the
    ClobAuthDomain (name, version, chainId; no verifyingContract)."""
    if type(nonce) is not int or not 0 <= nonce < 2**256:
        raise SignatureError("nonce must be a uint256")
    domain = keccak256(_CLOB_DOMAIN_TYPE_HASH + _CLOB_NAME_HASH + _CLOB_VERSION_HASH + chain_id.to_bytes(32, "big"))
    struct = keccak256(
        _CLOB_AUTH_TYPE_HASH
        + bytes(12)
        + _addr_bytes(address)
        + keccak256(str(timestamp).encode("utf-8"))
        + nonce.to_bytes(32, "big")
        + _CLOB_MESSAGE_HASH
    )
    return keccak256(b"\x19\x01" + domain + struct)


def l1_headers(signer: OrderSigner, *, timestamp: int, nonce: int = 0) -> dict[str, str]:
    """The four L1 headers (for ``POST /auth/api-key`` / ``GET /auth/derive-api-key``), as
    ``create_level_1_headers``. The address is the signing EOA; chain id is the signer's."""
    sig = signer._sign_digest(clob_auth_digest(signer.address, timestamp, nonce, signer.chain_id))
    return {
        POLY_ADDRESS: signer.address,
        POLY_SIGNATURE: "0x" + sig.hex(),
        POLY_TIMESTAMP: str(timestamp),
        POLY_NONCE: str(nonce),
    }


def verify_l1(
    headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
    *,
    chain_id: int = 137,
    now_s: int | None = None,
    max_skew_s: int | None = None,
) -> str | None:
    """Sandbox side of L1: the checksum address if ``POLY_SIGNATURE`` is that address's EIP-712 ClobAuth
    signature over (``POLY_ADDRESS``, ``POLY_TIMESTAMP``, ``POLY_NONCE``), else None. Optional freshness
    check as in ``verify_l2``. Returns the nonce-independent address; the nonce selects which creds."""
    h = _norm_headers(headers)
    try:
        address, sig_hex, ts, nonce_s = h[POLY_ADDRESS], h[POLY_SIGNATURE], h[POLY_TIMESTAMP], h[POLY_NONCE]
    except KeyError:
        return None
    if not _ts_ok(ts, now_s, max_skew_s) or not (nonce_s.isascii() and nonce_s.isdigit()) or len(nonce_s) > 78:
        return None
    try:
        if sig_hex[:2] != "0x" or len(sig_hex) != 132:
            return None
        sig = bytes.fromhex(sig_hex[2:])
        claimed = to_checksum_address(_addr_bytes(address))
        recovered = _recover(clob_auth_digest(claimed, ts, int(nonce_s), chain_id), sig)
    except (SignatureError, ValueError):
        return None
    return recovered if recovered == claimed else None
