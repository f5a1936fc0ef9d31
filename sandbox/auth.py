"""API authentication as the CLOB checks it, implemented independently of the trading code.

* **L1** (create / derive API creds): the ``ClobAuth`` EIP-712 struct (domain ``ClobAuthDomain`` v1, chainId,
  no verifyingContract) is hashed with eth_account's typed-data encoder and the ``POLY_SIGNATURE`` is recovered;
  the recovered address must be ``POLY_ADDRESS``.
* **Creds** are deterministic per (address, nonce) from a server secret: ``apiKey`` a UUIDv4-shaped string,
  ``secret`` url-safe base64 of 32 bytes, ``passphrase`` 64 hex characters.
* **L2** (every trading endpoint): ``POLY_SIGNATURE`` = url-safe base64 of HMAC-SHA256 keyed with the
  url-safe-base64-decoded secret over ``timestamp + METHOD + path + body`` (path without the query string; the
  body exactly as sent, with ``'`` replaced by ``"`` as py_clob_client_v2 does before signing), plus the API
  key, its passphrase, its address and a timestamp within the allowed skew.

Verifiers return ``(result, reason)``: the result is None when the check fails and `reason` says why (for the
audit; the client only ever sees the generic Polymarket error).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from eth_account import Account
from eth_account.messages import encode_typed_data

DEFAULT_SERVER_SECRET = b"pmm-sandbox/server-secret/not-a-real-secret"
CLOB_AUTH_MESSAGE = "This message attests that I control the given wallet"
DEFAULT_MAX_SKEW_S = 30.0

L1_HEADERS = ("poly_address", "poly_signature", "poly_timestamp", "poly_nonce")
L2_HEADERS = ("poly_address", "poly_signature", "poly_timestamp", "poly_api_key", "poly_passphrase")

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_DIGITS = re.compile(r"^[0-9]{1,20}$")


@dataclass(frozen=True)
class ApiCreds:
    api_key: str
    secret: str = field(repr=False)
    passphrase: str = field(repr=False)
    address: str = ""  # checksummed address the key belongs to
    nonce: int = 0

    def to_json(self) -> dict[str, str]:
        """The body of `POST /auth/api-key` / `GET /auth/derive-api-key`."""
        return {"apiKey": self.api_key, "secret": self.secret, "passphrase": self.passphrase}


def is_address(s: object) -> bool:
    return isinstance(s, str) and bool(_ADDRESS.match(s))


def checksum(address: str) -> str:
    from eth_utils import to_checksum_address

    return str(to_checksum_address(address))


def derive_creds(address: str, nonce: int, server_secret: bytes = DEFAULT_SERVER_SECRET) -> ApiCreds:
    if not is_address(address):
        raise ValueError(f"not an address: {address!r}")
    if nonce < 0:
        raise ValueError("nonce must be >= 0")
    addr = address.lower()

    def h(label: str) -> bytes:
        return hmac.new(server_secret, f"{label}|{addr}|{nonce}".encode(), hashlib.sha256).digest()

    k = bytearray(h("api-key")[:16])
    k[6] = (k[6] & 0x0F) | 0x40  # version 4
    k[8] = (k[8] & 0x3F) | 0x80  # RFC 4122 variant
    hx = k.hex()
    api_key = f"{hx[:8]}-{hx[8:12]}-{hx[12:16]}-{hx[16:20]}-{hx[20:]}"
    secret = base64.urlsafe_b64encode(h("secret")).decode()
    passphrase = h("passphrase").hex()
    return ApiCreds(api_key, secret, passphrase, checksum(address), nonce)


# ---- L1 ------------------------------------------------------------------------------------------------------
def clob_auth_typed_data(address: str, timestamp: str, nonce: int, chain_id: int) -> dict:
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            "ClobAuth": [
                {"name": "address", "type": "address"},
                {"name": "timestamp", "type": "string"},
                {"name": "nonce", "type": "uint256"},
                {"name": "message", "type": "string"},
            ],
        },
        "primaryType": "ClobAuth",
        "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": chain_id},
        "message": {"address": address, "timestamp": timestamp, "nonce": nonce, "message": CLOB_AUTH_MESSAGE},
    }


def parse_signature(sig: object) -> bytes | None:
    """A 65-byte ECDSA signature from 0x-hex, or None."""
    if not isinstance(sig, str):
        return None
    h = sig[2:] if sig[:2] in ("0x", "0X") else sig
    if len(h) != 130:
        return None
    try:
        return bytes.fromhex(h)
    except ValueError:
        return None


def recover_typed(typed: dict, signature: bytes) -> str | None:
    """Recover the signer of EIP-712 typed data (eth_account's encoder), or None if it does not recover."""
    try:
        msg = encode_typed_data(full_message=typed)
        return str(Account.recover_message(msg, signature=signature))
    except Exception:  # malformed signature / values: it simply does not verify
        return None


def verify_l1(
    headers: Mapping[str, str], *, chain_id: int, now_s: float, max_skew_s: float
) -> tuple[tuple[str, int] | None, str]:
    """((checksummed address, nonce), "") or (None, reason). Header names are lower-case."""
    missing = [h for h in L1_HEADERS if h != "poly_nonce" and not headers.get(h)]
    if missing:
        return None, f"missing {', '.join(missing)}"
    addr, sig, ts = headers["poly_address"], headers["poly_signature"], headers["poly_timestamp"]
    nonce_s = headers.get("poly_nonce") or "0"
    if not is_address(addr):
        return None, "POLY_ADDRESS is not an address"
    if not _DIGITS.match(ts):
        return None, "POLY_TIMESTAMP is not unix seconds"
    if not (nonce_s.isascii() and nonce_s.isdigit()):
        return None, "POLY_NONCE is not a non-negative integer"
    if abs(now_s - int(ts)) > max_skew_s:
        return None, f"POLY_TIMESTAMP {ts} is more than {max_skew_s:g} s from the server clock"
    raw = parse_signature(sig)
    if raw is None:
        return None, "POLY_SIGNATURE is not a 65-byte hex signature"
    nonce = int(nonce_s)
    if nonce >= 2**256:
        return None, "POLY_NONCE out of range"
    rec = recover_typed(clob_auth_typed_data(checksum(addr), ts, nonce, chain_id), raw)
    if rec is None or rec.lower() != addr.lower():
        return None, f"ClobAuth signature recovers to {rec}, not POLY_ADDRESS {addr}"
    return (checksum(addr), nonce), ""


# ---- L2 ------------------------------------------------------------------------------------------------------
def hmac_signature(secret: str, timestamp: str, method: str, path: str, body: str | None) -> str:
    key = base64.urlsafe_b64decode(secret)
    message = str(timestamp) + method + path
    if body:
        message += body.replace("'", '"')
    return base64.urlsafe_b64encode(hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()).decode()


def verify_l2(
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    lookup: Callable[[str], ApiCreds | None],
    *,
    now_s: float,
    max_skew_s: float,
) -> tuple[ApiCreds | None, str]:
    missing = [h for h in L2_HEADERS if not headers.get(h)]
    if missing:
        return None, f"missing {', '.join(missing)}"
    creds = lookup(headers["poly_api_key"])
    if creds is None:
        return None, "unknown POLY_API_KEY"
    if not hmac.compare_digest(headers["poly_passphrase"].encode(), creds.passphrase.encode()):
        return None, "wrong POLY_PASSPHRASE"
    if headers["poly_address"].lower() != creds.address.lower():
        return None, f"POLY_ADDRESS {headers['poly_address']} is not the API key's address {creds.address}"
    ts = headers["poly_timestamp"]
    if not _DIGITS.match(ts):
        return None, "POLY_TIMESTAMP is not unix seconds"
    if abs(now_s - int(ts)) > max_skew_s:
        return None, f"POLY_TIMESTAMP {ts} is more than {max_skew_s:g} s from the server clock"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None, "body is not UTF-8"
    try:
        expected = hmac_signature(creds.secret, ts, method, path, text)
    except (ValueError, TypeError):
        return None, "stored secret is not base64"
    if not hmac.compare_digest(headers["poly_signature"].encode("utf-8", "replace"), expected.encode()):
        return None, "HMAC signature mismatch"
    return creds, ""
