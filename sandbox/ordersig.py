"""CTF Exchange V2 orders: decoding the JSON body, the EIP-712 digest (= the order id) and signer recovery.

Implemented on eth_account's typed-data encoder (``encode_typed_data`` + ``Account._recover_hash``), independent
of the trading code's own signer, so the sandbox checks it against a second implementation.

Signed struct (CTF Exchange V2): ``Order(uint256 salt, address maker, address signer, uint256 tokenId,
uint256 makerAmount, uint256 takerAmount, uint8 side, uint8 signatureType, uint256 timestamp, bytes32 metadata,
bytes32 builder)``; domain ``{name: "Polymarket CTF Exchange", version: "2", chainId: 137, verifyingContract:
<V2 exchange, or the neg-risk V2 exchange for neg-risk markets>}``. ``expiration`` travels in the JSON body but is
not signed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from .auth import checksum, is_address, parse_signature

CHAIN_ID = 137
DOMAIN_NAME = "Polymarket CTF Exchange"
DOMAIN_VERSION = "2"
EXCHANGE_V2 = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_EXCHANGE_V2 = "0xe2222d279d744050d28e00520010520000310F59"
# only used to explain a bad signature in the audit ("signed for the V1 exchange", ...)
EXCHANGE_V1 = "0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E"
NEG_RISK_EXCHANGE_V1 = "0xC5d563A36AE78145C45a50134d48A1215220f80a"
ZERO_BYTES32 = "0x" + "00" * 32
UINT256 = 2**256
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

ORDER_TYPES = [
    {"name": "salt", "type": "uint256"},
    {"name": "maker", "type": "address"},
    {"name": "signer", "type": "address"},
    {"name": "tokenId", "type": "uint256"},
    {"name": "makerAmount", "type": "uint256"},
    {"name": "takerAmount", "type": "uint256"},
    {"name": "side", "type": "uint8"},
    {"name": "signatureType", "type": "uint8"},
    {"name": "timestamp", "type": "uint256"},
    {"name": "metadata", "type": "bytes32"},
    {"name": "builder", "type": "bytes32"},
]
DOMAIN_TYPES = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_BYTES32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
SIDES = {"BUY": 0, "SELL": 1}


class OrderPayloadError(ValueError):
    """The order JSON is malformed (answered as `Invalid order payload`)."""


@dataclass(frozen=True)
class DecodedOrder:
    salt: int
    maker: str
    signer: str
    token_id: str
    maker_amount: int
    taker_amount: int
    side: str  # "BUY" | "SELL"
    signature_type: int
    timestamp: int  # ms
    expiration: int  # unix s, 0 = none (not signed)
    metadata: str
    builder: str
    signature: str

    def to_json(self) -> dict[str, Any]:
        return {
            "salt": self.salt,
            "maker": self.maker,
            "signer": self.signer,
            "tokenId": self.token_id,
            "makerAmount": str(self.maker_amount),
            "takerAmount": str(self.taker_amount),
            "side": self.side,
            "signatureType": self.signature_type,
            "timestamp": str(self.timestamp),
            "expiration": str(self.expiration),
            "metadata": self.metadata,
            "builder": self.builder,
            "signature": self.signature,
        }


def _uint(v: Any, what: str, *, allow_int: bool = True) -> int:
    if isinstance(v, bool):
        raise OrderPayloadError(f"{what} is not an unsigned integer")
    if isinstance(v, int) and allow_int:
        n = v
    elif isinstance(v, str) and v.isascii() and v.isdigit():
        n = int(v)
    else:
        raise OrderPayloadError(f"{what} is not an unsigned integer")
    if not 0 <= n < UINT256:
        raise OrderPayloadError(f"{what} out of range")
    return n


def decode_order(obj: Any) -> DecodedOrder:
    if not isinstance(obj, dict):
        raise OrderPayloadError("order is not an object")
    missing = [
        k
        for k in (
            "salt",
            "maker",
            "signer",
            "tokenId",
            "makerAmount",
            "takerAmount",
            "side",
            "signatureType",
            "timestamp",
            "signature",
        )
        if k not in obj
    ]
    if missing:
        raise OrderPayloadError(f"order lacks {', '.join(missing)}")
    for k in ("maker", "signer"):
        if not is_address(obj[k]):
            raise OrderPayloadError(f"{k} is not an address")
    side = obj["side"]
    if side not in SIDES:
        raise OrderPayloadError("side must be BUY or SELL")
    st = obj["signatureType"]
    if isinstance(st, bool) or not isinstance(st, int) or not 0 <= st <= 3:
        raise OrderPayloadError("signatureType must be 0, 1, 2 or 3")
    meta = obj.get("metadata", ZERO_BYTES32)
    builder = obj.get("builder", ZERO_BYTES32)
    for k, v in (("metadata", meta), ("builder", builder)):
        if not isinstance(v, str) or not _BYTES32.match(v):
            raise OrderPayloadError(f"{k} is not bytes32 hex")
    sig = obj["signature"]
    if not isinstance(sig, str) or not sig.startswith("0x"):
        raise OrderPayloadError("signature is not 0x hex")
    token = obj["tokenId"]
    if not isinstance(token, str) or not (token.isascii() and token.isdigit()):
        raise OrderPayloadError("tokenId is not a decimal string")
    _uint(token, "tokenId")
    ma, ta = _uint(obj["makerAmount"], "makerAmount"), _uint(obj["takerAmount"], "takerAmount")
    if ma == 0 or ta == 0:
        raise OrderPayloadError("amounts must be positive")
    return DecodedOrder(
        salt=_uint(obj["salt"], "salt"),
        maker=checksum(obj["maker"]),
        signer=checksum(obj["signer"]),
        token_id=token,
        maker_amount=ma,
        taker_amount=ta,
        side=side,
        signature_type=st,
        timestamp=_uint(obj["timestamp"], "timestamp"),
        expiration=_uint(obj.get("expiration", "0"), "expiration"),
        metadata=meta.lower(),
        builder=builder.lower(),
        signature=sig,
    )


def typed_data(
    o: DecodedOrder, exchange: str, *, chain_id: int = CHAIN_ID, version: str = DOMAIN_VERSION
) -> dict[str, Any]:
    return {
        "primaryType": "Order",
        "types": {"EIP712Domain": DOMAIN_TYPES, "Order": ORDER_TYPES},
        "domain": {
            "name": DOMAIN_NAME,
            "version": version,
            "chainId": chain_id,
            "verifyingContract": exchange,
        },
        "message": {
            "salt": o.salt,
            "maker": o.maker,
            "signer": o.signer,
            "tokenId": int(o.token_id),
            "makerAmount": o.maker_amount,
            "takerAmount": o.taker_amount,
            "side": SIDES[o.side],
            "signatureType": o.signature_type,
            "timestamp": o.timestamp,
            "metadata": bytes.fromhex(o.metadata[2:]),
            "builder": bytes.fromhex(o.builder[2:]),
        },
    }


def digest(td: dict[str, Any]) -> bytes:
    """The EIP-712 digest keccak(0x19 0x01 || domainSeparator || hashStruct(order))."""
    m = encode_typed_data(full_message=td)
    return bytes(keccak(b"\x19" + m.version + m.header + m.body))


def exchange_for(neg_risk: bool) -> str:
    return NEG_RISK_EXCHANGE_V2 if neg_risk else EXCHANGE_V2


def order_id(o: DecodedOrder, neg_risk: bool) -> str:
    """The order id = the order hash (EIP-712 digest under the right V2 domain), 0x + 64 hex."""
    return "0x" + digest(typed_data(o, exchange_for(neg_risk))).hex()


def signature_shape_error(raw: bytes) -> str | None:
    """What the exchange contract (ecrecover via OpenZeppelin ECDSA) would refuse before recovering."""
    if raw[64] not in (27, 28):
        return f"signature v is {raw[64]}, must be 27 or 28"
    if int.from_bytes(raw[32:64], "big") > SECP256K1_N // 2:
        return "signature s is in the upper half of the curve order (malleable)"
    return None


def recover(o: DecodedOrder, dg: bytes) -> str | None:
    raw = parse_signature(o.signature)
    if raw is None or signature_shape_error(raw) is not None:
        return None
    try:
        return str(Account._recover_hash(dg, signature=raw))
    except Exception:  # a signature that does not recover (bad v, s out of range ...)
        return None


def diagnose(o: DecodedOrder, neg_risk: bool) -> str:
    """Explain a signature that does not recover to `signer` under the expected domain."""
    raw = parse_signature(o.signature)
    if raw is None:
        return "signature is not 65 bytes of hex"
    shape = signature_shape_error(raw)
    if shape is not None:
        return shape
    if o.signature_type == 3:
        return "signature type 3 (POLY_1271 / deposit wallet) is not supported by the sandbox"
    candidates = [
        (
            "the non-neg-risk V2 exchange" if neg_risk else "the neg-risk V2 exchange",
            exchange_for(not neg_risk),
            CHAIN_ID,
            "2",
        ),
        ("the V1 exchange", EXCHANGE_V1, CHAIN_ID, "1"),
        ("the V1 neg-risk exchange", NEG_RISK_EXCHANGE_V1, CHAIN_ID, "1"),
        ("chain 80002 (Amoy)", exchange_for(neg_risk), 80002, "2"),
    ]
    for what, ex, chain, ver in candidates:
        rec = recover(o, digest(typed_data(o, ex, chain_id=chain, version=ver)))
        if rec is not None and rec.lower() == o.signer.lower():
            return f"signed for {what} (domain {ver}/{chain}/{ex}); expected {exchange_for(neg_risk)}"
    rec = recover(o, digest(typed_data(o, exchange_for(neg_risk))))
    return f"signature recovers to {rec}, not signer {o.signer}"
