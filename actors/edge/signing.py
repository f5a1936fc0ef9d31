"""Polymarket CLOB V2 order signing (EIP-712), fast and byte-compatible with ``py-clob-client-v2``.

Used by the live executor (``OrderSigner.build_order`` + ``order_body``) and by the sandbox exchange
(``recover_signer`` / ``order_hash``) to check what we sign. See ``docs/signing.md``.

What is signed (CTF Exchange V2, live since 2026-04-28)::

    Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,uint256 takerAmount,
          uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,bytes32 builder)
    domain = EIP712Domain(name="Polymarket CTF Exchange", version="2", chainId, verifyingContract)

``verifyingContract`` is the V2 exchange, or the neg-risk V2 exchange for neg-risk markets. ``expiration`` is
sent in the JSON body but is not part of the signed struct. The order hash (the order id the CLOB returns)
is the EIP-712 digest ``keccak256(0x1901 || domainSeparator || structHash)``.

Speed: the domain separators and type hash are precomputed, the struct is packed by hand, keccak comes from
pycryptodome's C library called directly (falling back to ``eth_hash``), and secp256k1 signing/recovery is
``coincurve`` (libsecp256k1). No ``eth_account`` on the hot path.

Amounts follow the official client's limit-order rules, computed exactly in integers (see ``limit_amounts``).
"""
from __future__ import annotations

import ctypes
import importlib.util
import json
import threading
from collections.abc import Mapping
from typing import Any, Literal

import coincurve
import msgspec

__all__ = [
    "BYTES32_ZERO",
    "EXCHANGES",
    "ORDER_TYPE_STRING",
    "TICKS_MICRO",
    "OrderSigner",
    "SignatureError",
    "SignedOrder",
    "domain_separator",
    "keccak256",
    "limit_amounts",
    "order_body",
    "order_hash",
    "order_json",
    "recover_signer",
    "serialize_body",
    "to_checksum_address",
]

# ------------------------------------------------------------------------------------------------ constants
BYTES32_ZERO = "0x" + "00" * 32

# chain id -> (V2 exchange, neg-risk V2 exchange); from py_clob_client_v2/config.py (same on Amoy).
EXCHANGES: dict[int, tuple[str, str]] = {
    137: ("0xE111180000d2663C0091e4f400237545B87B996B", "0xe2222d279d744050d28e00520010520000310F59"),
    80002: ("0xE111180000d2663C0091e4f400237545B87B996B", "0xe2222d279d744050d28e00520010520000310F59"),
}

# Tick size (micro) -> decimals of price, as py_clob_client_v2.order_builder.builder.ROUNDING_CONFIG.
# Sizes are always rounded down to 2 decimals (10_000 micro-shares).
TICKS_MICRO: dict[int, int] = {100_000: 1, 10_000: 2, 5_000: 3, 2_500: 4, 1_000: 3, 100: 4}
SIZE_STEP_MICRO = 10_000
ONE = 1_000_000

MAX_SALT = 2**53 - 1  # the official clients' salts are < 2**41; JSON numbers above 2**53 are not safe everywhere
_U64 = 2**64

DOMAIN_NAME = "Polymarket CTF Exchange"
DOMAIN_VERSION = "2"
ORDER_TYPE_STRING = (
    "Order(uint256 salt,address maker,address signer,uint256 tokenId,"
    "uint256 makerAmount,uint256 takerAmount,uint8 side,uint8 signatureType,"
    "uint256 timestamp,bytes32 metadata,bytes32 builder)"
)
DOMAIN_TYPE_STRING = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
# POLY_1271 (signature type 3, deposit wallets): ERC-7739 nested typed data (Solady), as the official builder.
_TYPED_DATA_SIGN_STRING = (
    "TypedDataSign(Order contents,string name,string version,uint256 chainId,"
    "address verifyingContract,bytes32 salt)" + ORDER_TYPE_STRING
)

SIG_EOA, SIG_POLY_PROXY, SIG_POLY_GNOSIS_SAFE, SIG_POLY_1271 = 0, 1, 2, 3
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = _SECP256K1_N // 2

OrderType = Literal["GTC", "GTD", "FOK", "FAK"]
_ORDER_TYPES = ("GTC", "GTD", "FOK", "FAK")


class SignatureError(ValueError):
    """An order or signature could not be parsed, signed or recovered."""


# ------------------------------------------------------------------------------------------------ keccak
def _make_keccak():
    """keccak256 through pycryptodome's C core with one reusable state per thread (~2.5x faster than the
    ``Crypto.Hash.keccak`` wrapper). Falls back to ``eth_hash`` if that library layout is not available."""
    try:
        spec = importlib.util.find_spec("Crypto.Hash._keccak")
        if spec is None or not spec.origin:
            raise ImportError("pycryptodome keccak core not found")
        lib = ctypes.PyDLL(spec.origin)  # PyDLL: keep the GIL (the calls are ~1 us; no point releasing it)
        init, reset, absorb, digest = lib.keccak_init, lib.keccak_reset, lib.keccak_absorb, lib.keccak_digest
        vp, sz, u8 = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint8
        init.argtypes, init.restype = [ctypes.POINTER(vp), sz, u8], ctypes.c_int
        reset.argtypes, reset.restype = [vp], ctypes.c_int
        absorb.argtypes, absorb.restype = [vp, ctypes.c_char_p, sz], ctypes.c_int
        digest.argtypes, digest.restype = [vp, ctypes.c_char_p, sz, u8], ctypes.c_int

        local = threading.local()

        def _state():
            st = ctypes.c_void_p()
            if init(ctypes.byref(st), 64, 24) != 0:  # capacity 512 bits = keccak256, 24 rounds
                raise RuntimeError("keccak_init failed")
            # The state is deliberately never freed: one per thread, for the life of the thread.
            local.st = st.value
            local.buf = ctypes.create_string_buffer(32)
            return local.st, local.buf

        def keccak256(data: bytes) -> bytes:
            if type(data) is not bytes:
                data = bytes(data)
            try:
                st, buf = local.st, local.buf
            except AttributeError:
                st, buf = _state()
            reset(st)
            absorb(st, data, len(data))
            digest(st, buf, 32, 1)  # padding 0x01 = original Keccak (Ethereum), not SHA3
            return buf.raw

        if keccak256(b"") != bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"):
            raise RuntimeError("keccak self-test failed")
        return keccak256, "pycryptodome-raw"
    except Exception:
        from eth_hash.auto import keccak as _eth_keccak

        return _eth_keccak, "eth_hash"


keccak256, KECCAK_BACKEND = _make_keccak()


# ------------------------------------------------------------------------------------------------ helpers
def _addr_bytes(addr: str, what: str = "address") -> bytes:
    if type(addr) is not str or len(addr) != 42 or addr[:2] not in ("0x", "0X"):
        raise SignatureError(f"{what} must be a 0x-prefixed 20-byte hex string")
    try:
        return bytes.fromhex(addr[2:])
    except ValueError:
        raise SignatureError(f"{what} is not hex") from None


def to_checksum_address(addr: str | bytes) -> str:
    """EIP-55 checksum form of a 20-byte address (bytes, or hex string with 0x)."""
    raw = addr if isinstance(addr, bytes | bytearray) else _addr_bytes(addr)
    if len(raw) != 20:
        raise SignatureError("address must be 20 bytes")
    h = raw.hex()
    d = keccak256(h.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if n >= "8" else c for c, n in zip(h, d[:40], strict=True))  # nibble >= 8


def _bytes32(value: str, what: str) -> bytes:
    if type(value) is not str or len(value) != 66 or value[:2] != "0x":
        raise SignatureError(f"{what} must be 0x + 64 hex chars")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise SignatureError(f"{what} is not hex") from None


def _w(n: int) -> bytes:
    return n.to_bytes(32, "big")


_ORDER_TYPE_HASH = keccak256(ORDER_TYPE_STRING.encode())
_DOMAIN_TYPE_HASH = keccak256(DOMAIN_TYPE_STRING.encode())
_NAME_HASH = keccak256(DOMAIN_NAME.encode())
_VERSION_HASH = keccak256(DOMAIN_VERSION.encode())
_TDS_TYPE_HASH = keccak256(_TYPED_DATA_SIGN_STRING.encode())
_DW_NAME_HASH = keccak256(b"DepositWallet")
_DW_VERSION_HASH = keccak256(b"1")
_ZERO32 = bytes(32)
_SIDE_WORDS = (_w(0), _w(1))
_ORDER_TYPE_BYTES = ORDER_TYPE_STRING.encode()
_1271_TAIL = _ORDER_TYPE_BYTES + len(_ORDER_TYPE_BYTES).to_bytes(2, "big")


def _exchange(chain_id: int, neg_risk: bool) -> str:
    try:
        ex, nr = EXCHANGES[chain_id]
    except KeyError:
        raise SignatureError(f"unsupported chain_id {chain_id}") from None
    return nr if neg_risk else ex


def domain_separator(chain_id: int, neg_risk: bool) -> bytes:
    """The V2 exchange domain separator for this chain and exchange (plain or neg-risk)."""
    return _domain_sep(chain_id, neg_risk)


_DOMAIN_CACHE: dict[tuple[int, bool], bytes] = {}


def _domain_sep(chain_id: int, neg_risk: bool) -> bytes:
    key = (chain_id, neg_risk)
    ds = _DOMAIN_CACHE.get(key)
    if ds is None:
        if neg_risk is not True and neg_risk is not False:
            raise SignatureError("neg_risk must be a bool")
        contract = _addr_bytes(_exchange(chain_id, neg_risk))
        ds = keccak256(
            _DOMAIN_TYPE_HASH + _NAME_HASH + _VERSION_HASH + _w(chain_id) + bytes(12) + contract
        )
        _DOMAIN_CACHE[key] = ds
    return ds


def limit_amounts(side: str, price_micro: int, size_micro: int, tick_micro: int) -> tuple[int, int, int]:
    """(makerAmount, takerAmount, effective size_micro) of a GTC/GTD limit order, in 6-decimal units.

    The official client's rules (``OrderBuilder.get_order_amounts``): price rounded to the tick's decimals
    (we *require* a tick multiple in ``[tick, 1 - tick]`` instead), size rounded DOWN to 2 decimals,
    BUY: maker = size * price (pUSD), taker = size (shares); SELL: maker = size, taker = size * price.
    With a 2-decimal size and a tick-aligned price, size * price always fits the tick's amount decimals
    (3/4/5/6), so the official float clean-up steps never round in exact arithmetic. We compute exactly;
    the official client's float arithmetic sometimes floors a size one step too low (e.g. 5.02 -> 5.01
    shares) -- see docs/signing.md.
    """
    if type(price_micro) is not int or type(size_micro) is not int or type(tick_micro) is not int:
        raise SignatureError("price_micro, size_micro and tick_micro must be int")
    if tick_micro not in TICKS_MICRO:
        raise SignatureError(f"unsupported tick {tick_micro} (micro); allowed: {sorted(TICKS_MICRO)}")
    if not (tick_micro <= price_micro <= ONE - tick_micro) or price_micro % tick_micro:
        raise SignatureError(f"price {price_micro} is not a multiple of tick {tick_micro} in [tick, 1 - tick]")
    if not (0 < size_micro < _U64):
        raise SignatureError(f"size {size_micro} out of range")
    size = size_micro - size_micro % SIZE_STEP_MICRO
    if size == 0:
        raise SignatureError(f"size {size_micro} rounds down to 0 (sizes have 2 decimals)")
    notional = size * price_micro // ONE  # exact: size % 10**4 == 0 and price % 10**2 == 0
    if side == "BUY":
        return notional, size, size
    if side == "SELL":
        return size, notional, size
    raise SignatureError(f"side must be 'BUY' or 'SELL', got {side!r}")


# ------------------------------------------------------------------------------------------------ signed order
class SignedOrder(msgspec.Struct, frozen=True):
    """A signed V2 order. Amounts are 6-decimal integers; ``order_hash`` is the EIP-712 digest (0x hex),
    which is what the CLOB returns as the order id."""

    token_id: str
    side: Literal["BUY", "SELL"]
    price_micro: int
    size_micro: int
    """Effective size (rounded down to 2 decimals)."""
    maker_amount: int
    taker_amount: int
    salt: int
    timestamp_ms: int
    expiration: int
    maker: str
    signer: str
    signature_type: int
    neg_risk: bool
    signature: str
    order_hash: str
    metadata: str = BYTES32_ZERO
    builder: str = BYTES32_ZERO


def order_json(signed: SignedOrder) -> dict[str, Any]:
    """The ``order`` object of the POST /order body, exactly as ``order_to_json_v2`` (keys, order, types)."""
    return {
        "salt": signed.salt,
        "maker": signed.maker,
        "signer": signed.signer,
        "tokenId": signed.token_id,
        "makerAmount": str(signed.maker_amount),
        "takerAmount": str(signed.taker_amount),
        "side": signed.side,
        "expiration": str(signed.expiration),
        "signatureType": signed.signature_type,
        "timestamp": str(signed.timestamp_ms),
        "metadata": signed.metadata,
        "builder": signed.builder,
        "signature": signed.signature,
    }


def order_body(
    signed: SignedOrder,
    owner_api_key: str,
    order_type: OrderType = "GTC",
    post_only: bool = True,
    defer_exec: bool = False,
) -> dict[str, Any]:
    """The POST /order JSON body exactly as ``ClobClient.post_order`` builds it. POST /orders (batch, max 15)
    takes a list of these. Serialize with ``serialize_body`` and HMAC-sign that same string."""
    if order_type not in _ORDER_TYPES:
        raise SignatureError(f"order_type must be one of {_ORDER_TYPES}")
    if post_only and order_type in ("FOK", "FAK"):
        raise SignatureError("post_only is not supported for FOK/FAK orders")
    return {
        "order": order_json(signed),
        "owner": owner_api_key or "",
        "orderType": order_type,
        "deferExec": bool(defer_exec),
        "postOnly": bool(post_only),
    }


def serialize_body(body: Any) -> str:
    """The exact request body string the official client sends (and HMAC-signs)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


# ------------------------------------------------------------------------------------------------ signer
class OrderSigner:
    """Signs V2 orders for one key. Holds the private key only inside a ``coincurve.PrivateKey``; never
    prints, pickles or raises it.

    ``signature_type``: 0 EOA (maker = signer = key's address; ``funder`` must be None or that address),
    1 POLY_PROXY / 2 POLY_GNOSIS_SAFE (maker = ``funder``, signer = key's address), 3 POLY_1271 deposit
    wallet (maker = signer = ``funder``, ERC-7739 wrapped signature by the wallet's owner key).
    """

    __slots__ = (
        "_1271",
        "_address",
        "_chain_id",
        "_funder",
        "_maker",
        "_maker_signer_words",
        "_pk",
        "_prefix",
        "_sig_type",
        "_sig_type_word",
        "_signer",
        "_tok_cache",
    )

    def __init__(
        self,
        private_key_hex: str,
        *,
        chain_id: int = 137,
        signature_type: int = 0,
        funder: str | None = None,
    ) -> None:
        pk = _parse_private_key(private_key_hex)
        if chain_id not in EXCHANGES:
            raise SignatureError(f"unsupported chain_id {chain_id}")
        if signature_type not in (0, 1, 2, 3) or type(signature_type) is not int:
            raise SignatureError(f"unsupported signature_type {signature_type!r}")
        self._pk = pk
        address = to_checksum_address(keccak256(pk.public_key.format(compressed=False)[1:])[12:])
        if funder is not None:
            funder = to_checksum_address(_addr_bytes(funder, "funder"))
        if signature_type == SIG_EOA:
            if funder is not None and funder != address:
                raise SignatureError("signature_type 0 (EOA) needs maker == signer: funder must be None")
            maker = signer = address
        elif funder is None:
            raise SignatureError(f"signature_type {signature_type} needs funder (the proxy/safe/wallet address)")
        elif signature_type == SIG_POLY_1271:
            maker = signer = funder
        else:
            maker, signer = funder, address
        self._address = address
        self._chain_id = chain_id
        self._sig_type = signature_type
        self._funder = funder
        self._maker = maker
        self._signer = signer
        self._maker_signer_words = bytes(12) + _addr_bytes(maker) + bytes(12) + _addr_bytes(signer)
        self._sig_type_word = _w(signature_type)
        self._prefix = (b"\x19\x01" + _domain_sep(chain_id, False), b"\x19\x01" + _domain_sep(chain_id, True))
        self._1271 = signature_type == SIG_POLY_1271
        self._tok_cache: dict[str, bytes] = {}

    # ---- public attributes (no key material)
    @property
    def address(self) -> str:
        """Checksum address of the signing key (the EOA)."""
        return self._address

    @property
    def maker(self) -> str:
        return self._maker

    @property
    def order_signer(self) -> str:
        """The ``signer`` field of our orders (the EOA, or the deposit wallet for type 3)."""
        return self._signer

    @property
    def chain_id(self) -> int:
        return self._chain_id

    @property
    def signature_type(self) -> int:
        return self._sig_type

    def __repr__(self) -> str:
        return (
            f"OrderSigner(address={self._address}, chain_id={self._chain_id}, "
            f"signature_type={self._sig_type}, funder={self._funder}, private_key=<redacted>)"
        )

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("OrderSigner holds a private key and cannot be pickled or copied")

    def __reduce_ex__(self, protocol):
        raise TypeError("OrderSigner holds a private key and cannot be pickled or copied")

    # ---- signing
    def _sign_digest(self, digest: bytes) -> bytes:
        """65-byte r || s || v (v = 27/28) over a 32-byte digest. Internal: used for orders and ClobAuth."""
        sig = self._pk.sign_recoverable(digest, hasher=None)
        return sig[:64] + bytes((27 + sig[64],))  # eth-account: v = 27 + recovery id

    def _token_word(self, token_id: str) -> bytes:
        if type(token_id) is not str or not token_id.isdigit() or not token_id.isascii():
            raise SignatureError("token_id must be a decimal string")
        n = int(token_id)
        if str(n) != token_id or n >= 2**256:
            raise SignatureError("token_id must be a canonical uint256 decimal string")
        if len(self._tok_cache) >= 4096:
            self._tok_cache.clear()
        word = self._tok_cache[token_id] = _w(n)
        return word

    def build_order(
        self,
        token_id: str,
        side: Literal["BUY", "SELL"],
        price_micro: int,
        size_micro: int,
        tick_micro: int,
        *,
        neg_risk: bool,
        salt: int,
        timestamp_ms: int,
        expiration: int = 0,
    ) -> SignedOrder:
        """Build and sign the V2 limit order ``py-clob-client-v2`` would build for these inputs (GTC/GTD).

        Deterministic: ``salt`` (0..2**53-1) and ``timestamp_ms`` (> 0) are chosen and journalled by the
        caller. ``expiration`` (unix seconds, 0 = none) goes in the JSON body only; it is not signed.
        """
        tok = self._tok_cache.get(token_id) or self._token_word(token_id)
        maker_amt, taker_amt, size = limit_amounts(side, price_micro, size_micro, tick_micro)
        if type(salt) is not int or not 0 <= salt <= MAX_SALT:
            raise SignatureError("salt must be an int in [0, 2**53)")
        if type(timestamp_ms) is not int or not 0 < timestamp_ms < _U64:
            raise SignatureError("timestamp_ms must be a positive int (unix ms)")
        if type(expiration) is not int or not 0 <= expiration < _U64:
            raise SignatureError("expiration must be a non-negative int (unix s, 0 = none)")
        if neg_risk is not True and neg_risk is not False:
            raise SignatureError("neg_risk must be a bool")
        struct_hash = keccak256(
            b"".join((
                _ORDER_TYPE_HASH,
                salt.to_bytes(32, "big"),
                self._maker_signer_words,
                tok,
                maker_amt.to_bytes(32, "big"),
                taker_amt.to_bytes(32, "big"),
                _SIDE_WORDS[side == "SELL"],
                self._sig_type_word,
                timestamp_ms.to_bytes(32, "big"),
                _ZERO32,  # metadata
                _ZERO32,  # builder
            ))
        )
        prefix = self._prefix[neg_risk]
        digest = keccak256(prefix + struct_hash)
        if self._1271:
            sig = self._sign_1271(prefix, struct_hash)
        else:
            sig = self._sign_digest(digest)
        return SignedOrder(
            token_id,
            side,
            price_micro,
            size,
            maker_amt,
            taker_amt,
            salt,
            timestamp_ms,
            expiration,
            self._maker,
            self._signer,
            self._sig_type,
            neg_risk,
            "0x" + sig.hex(),
            "0x" + digest.hex(),
        )

    def _sign_1271(self, prefix: bytes, struct_hash: bytes) -> bytes:
        app_domain = prefix[2:]
        digest = keccak256(prefix + _typed_data_sign_hash(struct_hash, self._chain_id, self._maker_signer_words[44:]))
        return self._sign_digest(digest) + app_domain + struct_hash + _1271_TAIL


def _typed_data_sign_hash(contents_hash: bytes, chain_id: int, wallet20: bytes) -> bytes:
    return keccak256(
        _TDS_TYPE_HASH + contents_hash + _DW_NAME_HASH + _DW_VERSION_HASH + _w(chain_id) + bytes(12) + wallet20
        + _ZERO32
    )


def _parse_private_key(private_key_hex: str) -> coincurve.PrivateKey:
    # Never echo the input: every failure is the same constant message, with no chained exception.
    if not isinstance(private_key_hex, str):
        raise SignatureError("private key must be a hex string")
    h = private_key_hex[2:] if private_key_hex[:2] in ("0x", "0X") else private_key_hex
    if len(h) != 64:
        raise SignatureError("private key must be 32 bytes of hex")
    try:
        raw = bytes.fromhex(h)
    except ValueError:
        raise SignatureError("private key is not valid hex") from None
    if not 0 < int.from_bytes(raw, "big") < _SECP256K1_N:
        raise SignatureError("private key out of range")
    try:
        return coincurve.PrivateKey(raw)
    except Exception:
        raise SignatureError("private key rejected by secp256k1") from None


# ------------------------------------------------------------------------------------------------ verification
def _order_obj(order_json: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(order_json, Mapping):
        raise SignatureError("order must be a JSON object")
    inner = order_json.get("order")
    return inner if isinstance(inner, Mapping) else order_json


def _uint(v: Any, what: str, *, bits: int = 256) -> int:
    if type(v) is int:
        n = v
    elif type(v) is str and v.isdigit() and v.isascii():
        n = int(v)
    else:
        raise SignatureError(f"{what} must be an unsigned integer (number or decimal string)")
    if not 0 <= n < 2**bits:
        raise SignatureError(f"{what} out of range")
    return n


def _side(v: Any) -> int:
    if v == "BUY" or (type(v) is int and v == 0):
        return 0
    if v == "SELL" or (type(v) is int and v == 1):
        return 1
    raise SignatureError("side must be 'BUY' or 'SELL'")


def _struct_hash(o: Mapping[str, Any]) -> bytes:
    try:
        return keccak256(
            b"".join((
                _ORDER_TYPE_HASH,
                _w(_uint(o["salt"], "salt")),
                bytes(12),
                _addr_bytes(o["maker"], "maker"),
                bytes(12),
                _addr_bytes(o["signer"], "signer"),
                _w(_uint(o["tokenId"], "tokenId")),
                _w(_uint(o["makerAmount"], "makerAmount")),
                _w(_uint(o["takerAmount"], "takerAmount")),
                _SIDE_WORDS[_side(o["side"])],
                _w(_uint(o["signatureType"], "signatureType", bits=8)),
                _w(_uint(o["timestamp"], "timestamp")),
                _bytes32(o.get("metadata", BYTES32_ZERO), "metadata"),
                _bytes32(o.get("builder", BYTES32_ZERO), "builder"),
            ))
        )
    except KeyError as exc:
        raise SignatureError(f"order field missing: {exc.args[0]}") from None


def order_hash(order_json: Mapping[str, Any], *, chain_id: int = 137, neg_risk: bool) -> str:
    """EIP-712 digest (0x hex) of an order object (or a whole POST /order body) -- the CLOB's order id."""
    return "0x" + keccak256(b"\x19\x01" + _domain_sep(chain_id, neg_risk) + _struct_hash(_order_obj(order_json))).hex()


def _recover(digest: bytes, sig65: bytes) -> str:
    v = sig65[64]
    if v not in (27, 28):
        raise SignatureError("signature v must be 27 or 28")
    if int.from_bytes(sig65[32:64], "big") > _HALF_N:
        raise SignatureError("signature s is not in the lower half order (malleable)")
    try:
        pub = coincurve.PublicKey.from_signature_and_message(sig65[:64] + bytes((v - 27,)), digest, hasher=None)
    except Exception:
        raise SignatureError("signature does not recover to a public key") from None
    return to_checksum_address(keccak256(pub.format(compressed=False)[1:])[12:])


def recover_signer(order_json: Mapping[str, Any], *, chain_id: int = 137, neg_risk: bool) -> str:
    """Checksum address of the key that signed this order (an order object or a whole POST /order body).

    For signature types 0-2 a valid order has ``recover_signer(o) == o["signer"]`` (compare checksummed or
    lower-case). For type 3 (POLY_1271) ``signer`` is the deposit wallet; this returns the EOA whose
    ERC-7739 signature is wrapped inside, after checking the wrapper (app domain, contents hash, type
    string) matches the order; the wallet contract decides whether that EOA is its owner.
    Raises ``SignatureError`` on malformed input or an unrecoverable / malleable signature.
    """
    o = _order_obj(order_json)
    struct_hash = _struct_hash(o)
    ds = _domain_sep(chain_id, neg_risk)
    sig_hex = o.get("signature")
    if type(sig_hex) is not str or sig_hex[:2] != "0x":
        raise SignatureError("signature must be a 0x hex string")
    try:
        sig = bytes.fromhex(sig_hex[2:])
    except ValueError:
        raise SignatureError("signature is not hex") from None
    if _uint(o["signatureType"], "signatureType", bits=8) == SIG_POLY_1271:
        if len(sig) != 65 + 64 + len(_1271_TAIL) or sig[129:] != _1271_TAIL:
            raise SignatureError("POLY_1271 signature has the wrong layout")
        if sig[65:97] != ds or sig[97:129] != struct_hash:
            raise SignatureError("POLY_1271 signature wraps another domain or order")
        digest = keccak256(b"\x19\x01" + ds + _typed_data_sign_hash(struct_hash, chain_id, _addr_bytes(o["signer"])))
        return _recover(digest, sig[:65])
    if len(sig) != 65:
        raise SignatureError("signature must be 65 bytes")
    return _recover(keccak256(b"\x19\x01" + ds + struct_hash), sig)
