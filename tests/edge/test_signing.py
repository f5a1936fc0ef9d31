"""V2 order signing: byte-for-byte against py-clob-client-v2 (the official SDK), offline.

The official client is driven two ways: through its low-level ``ExchangeOrderBuilderV2`` (fixed salt and
timestamp passed in), and end to end through ``ClobClient.create_order`` / ``post_order`` with its salt
generator and clock patched, the tick/neg-risk/version given explicitly and every HTTP call intercepted.
"""
from __future__ import annotations

import copy
import functools
import json
import pickle
import random
import threading
from contextlib import ExitStack
from unittest import mock

import coincurve
import pytest
from eth_utils import keccak as eth_keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import py_clob_client_v2.client as pc_client
import py_clob_client_v2.order_builder.builder as pc_builder
from actors.edge import signing
from actors.edge.signing import (
    BYTES32_ZERO,
    EXCHANGES,
    TICKS_MICRO,
    OrderSigner,
    SignatureError,
    limit_amounts,
    order_body,
    order_hash,
    order_json,
    recover_signer,
    serialize_body,
)
from py_clob_client_v2 import ClobClient
from py_clob_client_v2.clob_types import ApiCreds as OfficialCreds
from py_clob_client_v2.clob_types import OrderArgsV2, PartialCreateOrderOptions
from py_clob_client_v2.config import get_contract_config
from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG, OrderBuilder
from py_clob_client_v2.order_builder.helpers import round_down
from py_clob_client_v2.order_utils import ExchangeOrderBuilderV2, OrderDataV2, Side, SignatureTypeV2
from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2
from py_clob_client_v2.signer import Signer as OfficialSigner

KEYS = [
    "0x" + "ab" * 32,
    "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",  # no 0x prefix
    "0x0000000000000000000000000000000000000000000000000000000000000001",
    "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140",  # n - 1
]
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
FUNDERS = {
    0: None,
    1: "0x1111111111111111111111111111111111111111",
    2: "0x2222222222222222222222222222222222222222",
    3: "0x3333333333333333333333333333333333333333",
}
TICK_STR = {100_000: "0.1", 10_000: "0.01", 5_000: "0.005", 2_500: "0.0025", 1_000: "0.001", 100: "0.0001"}


# ------------------------------------------------------------------------------------------------ official refs
def official_lowlevel(key, sig_type, funder, side, maker_amt, taker_amt, *, neg_risk, salt, ts, expiration=0):
    """SignedOrderV2 + order hash from the official ExchangeOrderBuilderV2 with injected salt/timestamp."""
    signer = OfficialSigner(key, 137)
    cc = get_contract_config(137)
    b = ExchangeOrderBuilderV2(
        cc.neg_risk_exchange_v2 if neg_risk else cc.exchange_v2, 137, signer, generate_salt=lambda: str(salt)
    )
    maker = funder or signer.address()
    od = OrderDataV2(
        maker=maker,
        tokenId=TOKEN,
        makerAmount=str(maker_amt),
        takerAmount=str(taker_amt),
        side=Side.BUY if side == "BUY" else Side.SELL,
        signer=maker if sig_type == 3 else signer.address(),
        signatureType=SignatureTypeV2(sig_type),
        timestamp=str(ts),
        expiration=str(expiration),
    )
    so = b.build_signed_order(od)
    return so, b.build_order_hash(b.build_order_typed_data(so))


@functools.cache
def official_client(key: str, sig_type: int = 0, creds: bool = False) -> ClobClient:
    c = ClobClient(
        "http://offline.invalid",
        137,
        key=key,
        creds=OfficialCreds("11111111-2222-4333-8444-555555555555", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=", "pass" * 16)
        if creds
        else None,
        signature_type=sig_type,
        funder=FUNDERS[sig_type],
        use_server_time=creds,
    )

    def no_network(*a, **k):
        raise AssertionError("the official client tried to make an HTTP call")

    c._get = no_network
    c._post = no_network
    c._delete = no_network
    return c


def official_create_order(c: ClobClient, token, side, price_micro, size_micro, tick_micro, *, neg_risk, salt, ts,
                          expiration=0):
    """ClobClient.create_order (the SDK's default path) with salt and clock pinned."""
    tick = TICK_STR[tick_micro]
    c._ClobClient__tick_sizes[token] = tick  # the market's minimum tick (else it would GET /tick-size)

    class FrozenTime:
        @staticmethod
        def time_ns():
            return ts * 1_000_000

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(pc_builder, "time", FrozenTime))
        stack.enter_context(mock.patch.object(
            pc_builder, "ExchangeOrderBuilderV2",
            functools.partial(ExchangeOrderBuilderV2, generate_salt=lambda: str(salt)),
        ))
        return c.create_order(
            OrderArgsV2(token_id=token, price=price_micro / 1e6, size=size_micro / 1e6, side=side,
                        expiration=expiration),
            PartialCreateOrderOptions(tick_size=tick, neg_risk=neg_risk, version=2),
        )


def official_amounts(side, price_micro, size_micro, tick_micro):
    rc = ROUNDING_CONFIG[TICK_STR[tick_micro]]
    _, mk, tk = OrderBuilder(None).get_order_amounts(side, size_micro / 1e6, price_micro / 1e6, rc)
    return mk, tk


def official_size_floor_is_exact(size_micro: int) -> bool:
    """The official client floors sizes with float math: floor(x * 100) / 100. For ~5% of 2-decimal sizes
    x * 100 lands just below the integer and it drops 0.01 share (5.02 -> 5.01)."""
    return round(round_down(size_micro / 1e6, 2) * 100) == size_micro // 10_000


# ------------------------------------------------------------------------------------------------ fixed vectors
@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("sig_type", [0, 1, 2, 3])
@pytest.mark.parametrize("neg_risk", [False, True])
@pytest.mark.parametrize("side", ["BUY", "SELL"])
def test_matches_official_builder(key, sig_type, neg_risk, side):
    s = OrderSigner(key, signature_type=sig_type, funder=FUNDERS[sig_type])
    ours = s.build_order(TOKEN, side, 470_000, 12_340_000, 10_000, neg_risk=neg_risk, salt=987654321,
                         timestamp_ms=1_777_777_777_777, expiration=0)
    theirs, their_hash = official_lowlevel(key, sig_type, FUNDERS[sig_type], side, ours.maker_amount,
                                           ours.taker_amount, neg_risk=neg_risk, salt=987654321,
                                           ts=1_777_777_777_777)
    assert ours.signature == theirs.signature
    assert ours.order_hash == their_hash
    assert (ours.maker_amount, ours.taker_amount) == official_amounts(side, 470_000, 12_340_000, 10_000)
    ours_body = order_body(ours, "owner-key", "GTC", post_only=True)
    theirs_body = order_to_json_v2(theirs, "owner-key", "GTC", True, False)
    assert ours_body == theirs_body
    assert serialize_body(ours_body) == json.dumps(theirs_body, separators=(",", ":"), ensure_ascii=False)
    # the sandbox side
    assert order_hash(ours_body, neg_risk=neg_risk) == their_hash
    assert order_hash(ours_body["order"], neg_risk=neg_risk) == their_hash
    assert recover_signer(theirs_body, neg_risk=neg_risk) == s.address
    if sig_type != 3:
        assert recover_signer(theirs_body, neg_risk=neg_risk) == theirs.signer


def test_fixed_vector_pinned():
    """A pinned vector, so a change in either implementation shows up even if both change together."""
    s = OrderSigner(KEYS[1])
    o = s.build_order(TOKEN, "BUY", 530_000, 10_000_000, 10_000, neg_risk=False, salt=1, timestamp_ms=1_777_000_000_000)
    assert s.address == "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
    assert (o.maker_amount, o.taker_amount) == (5_300_000, 10_000_000)
    assert o.signature == (
        "0x38608e724e31c23d4fdf60d59d4a3891edbfd89149ae46b90911de553504ad0e"
        "7bc54deb45ab47d923a0ea3066265ce441db88db1b769394ab7c96eca7a7a84e1c"
    )
    assert o.order_hash == "0x906da34924a27301756273873593e8e0dadc0427f36227249b18a0703b4f61e5"
    theirs, their_hash = official_lowlevel(KEYS[1], 0, None, "BUY", 5_300_000, 10_000_000, neg_risk=False,
                                           salt=1, ts=1_777_000_000_000)
    assert (o.signature, o.order_hash) == (theirs.signature, their_hash)
    assert o.signature.startswith("0x") and len(o.signature) == 132 and o.signature[-2:] in ("1b", "1c")


@pytest.mark.parametrize("sig_type", [0, 2, 3])
@pytest.mark.parametrize("neg_risk", [False, True])
def test_matches_official_client_end_to_end(sig_type, neg_risk):
    """ClobClient.create_order + post_order: the exact bytes on the wire and the L2 headers."""
    from actors.edge.auth import ApiCreds, l2_headers

    key = KEYS[0]
    c = official_client(key, sig_type, creds=True)
    theirs = official_create_order(c, TOKEN, "SELL", 995_000, 7_000_000, 5_000, neg_risk=neg_risk, salt=42,
                                   ts=1_777_123_456_789, expiration=1_800_000_000)
    sent = {}

    def capture(endpoint, headers=None, data=None, params=None):
        sent.update(endpoint=endpoint, headers=headers, data=data)
        return {"success": True, "orderID": "0x", "status": "live"}

    with mock.patch.object(pc_client, "get", lambda url: {"time": 1_777_123_456}), \
            mock.patch.object(c, "_post", capture):
        c.post_order(theirs, "GTD", post_only=True)

    s = OrderSigner(key, signature_type=sig_type, funder=FUNDERS[sig_type])
    ours = s.build_order(TOKEN, "SELL", 995_000, 7_000_000, 5_000, neg_risk=neg_risk, salt=42,
                         timestamp_ms=1_777_123_456_789, expiration=1_800_000_000)
    body = serialize_body(order_body(ours, c.creds.api_key, "GTD", post_only=True))
    assert sent["endpoint"] == "http://offline.invalid/order"
    assert body == sent["data"]
    creds = ApiCreds(c.creds.api_key, c.creds.api_secret, c.creds.api_passphrase)
    assert l2_headers(s.address, creds, "POST", "/order", body, timestamp=1_777_123_456) == sent["headers"]
    assert json.loads(body)["order"]["expiration"] == "1800000000"


# ------------------------------------------------------------------------------------------------ properties
sides = st.sampled_from(["BUY", "SELL"])
ticks = st.sampled_from(sorted(TICKS_MICRO))


@st.composite
def price_for_tick(draw, tick):
    return draw(st.integers(1, 1_000_000 // tick - 1)) * tick


@settings(max_examples=1500, deadline=None)
@given(side=sides, tick=ticks, data=st.data(),
       size=st.one_of(st.integers(1, 100_000_000_000), st.integers(1, 100_000).map(lambda k: k * 10_000)))
def test_amounts_equal_official(side, tick, data, size):
    """Sizes up to 100k shares, any micro value (sub-0.01 parts are floored, as the official client does)."""
    price = data.draw(price_for_tick(tick))
    if size < 10_000:
        with pytest.raises(SignatureError):
            limit_amounts(side, price, size, tick)
        return
    mk, tk, eff = limit_amounts(side, price, size, tick)
    assert eff == size - size % 10_000
    if official_size_floor_is_exact(size):
        assert (mk, tk) == official_amounts(side, price, size, tick)
    else:
        # the official float floor dropped one 0.01 step; otherwise identical
        assert limit_amounts(side, price, eff - 10_000, tick)[:2] == official_amounts(side, price, size, tick)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(side=sides, tick=ticks, data=st.data(), k=st.integers(1, 10_000_000), neg_risk=st.booleans(),
       salt=st.integers(0, 2**53 - 1), ts=st.integers(1, 2**63), sig_type=st.sampled_from([0, 1, 2, 3]),
       key=st.sampled_from(KEYS[:2]), expiration=st.sampled_from([0, 1_900_000_000]))
def test_signed_order_equals_official_create_order(side, tick, data, k, neg_risk, salt, ts, sig_type, key,
                                                   expiration):
    """Full SignedOrder (amounts, signature, JSON) vs ClobClient.create_order for random inputs."""
    price = data.draw(price_for_tick(tick))
    size = k * 10_000
    theirs = official_create_order(official_client(key, sig_type), TOKEN, side, price, size, tick,
                                   neg_risk=neg_risk, salt=salt, ts=ts, expiration=expiration)
    s = OrderSigner(key, signature_type=sig_type, funder=FUNDERS[sig_type])
    eff = size if official_size_floor_is_exact(size) else size - 10_000
    ours = s.build_order(TOKEN, side, price, eff, tick, neg_risk=neg_risk, salt=salt, timestamp_ms=ts,
                         expiration=expiration)
    assert order_json(ours) == order_to_json_v2(theirs, "", "GTC")["order"]
    assert recover_signer(order_json(ours), neg_risk=neg_risk) == s.address


def test_known_official_float_deviation():
    """Documented difference: the official client sends 5.01 shares when asked for 5.02; we send 5.02."""
    assert not official_size_floor_is_exact(5_020_000)
    assert official_amounts("BUY", 500_000, 5_020_000, 10_000) == (2_505_000, 5_010_000)
    assert limit_amounts("BUY", 500_000, 5_020_000, 10_000) == (2_510_000, 5_020_000, 5_020_000)
    # and at very large sizes (>~100k shares, fine ticks) its float amount clean-up loses a micro-dollar:
    assert official_amounts("BUY", 997_500, 730_772_200_000, 2_500) == (728_945_269_499, 730_772_200_000)
    assert limit_amounts("BUY", 997_500, 730_772_200_000, 2_500)[:2] == (728_945_269_500, 730_772_200_000)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=700))
def test_keccak_backend(data):
    assert signing.keccak256(data) == eth_keccak(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=20, max_size=20))
def test_checksum_address(raw):
    from eth_utils import to_checksum_address as eth_checksum

    assert signing.to_checksum_address(raw) == eth_checksum(raw) == signing.to_checksum_address("0x" + raw.hex())


def test_signed_order_journals():
    """SignedOrder is a msgspec Struct: it round-trips through msgspec (the journal's codec)."""
    import msgspec

    o = OrderSigner(KEYS[0]).build_order(TOKEN, "BUY", 10_000, 5_000_000, 10_000, neg_risk=True, salt=3, timestamp_ms=9)
    assert msgspec.json.decode(msgspec.json.encode(o), type=signing.SignedOrder) == o
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(o), type=signing.SignedOrder) == o


def test_keccak_threads():
    blobs = [random.Random(i).randbytes(300 + i) for i in range(64)]
    want = [eth_keccak(b) for b in blobs]
    errors = []

    def work():
        for _ in range(200):
            for b, w in zip(blobs, want, strict=True):
                if signing.keccak256(b) != w:
                    errors.append(1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# ------------------------------------------------------------------------------------------------ verification
def _body(neg_risk=False, sig_type=0, **kw):
    s = OrderSigner(KEYS[0], signature_type=sig_type, funder=FUNDERS[sig_type])
    o = s.build_order(TOKEN, "BUY", 420_000, 100_000_000, 10_000, neg_risk=neg_risk, salt=5, timestamp_ms=10**12, **kw)
    return s, o, order_body(o, "k")


@pytest.mark.parametrize("field,value", [
    ("makerAmount", "42000001"), ("takerAmount", "1"), ("side", "SELL"), ("salt", 6), ("tokenId", "1"),
    ("timestamp", "1000000000001"), ("signatureType", 1), ("maker", FUNDERS[1]), ("builder", "0x" + "01" * 32),
    ("metadata", "0x" + "02" * 32),
])
def test_tampering_changes_signer(field, value):
    s, o, body = _body()
    assert recover_signer(body, neg_risk=False) == s.address
    bad = copy.deepcopy(body)
    bad["order"][field] = value
    try:
        assert recover_signer(bad, neg_risk=False) != s.address
    except SignatureError:
        pass
    assert order_hash(bad, neg_risk=False) != o.order_hash


def test_expiration_and_wrapper_fields_are_not_signed():
    s, o, body = _body()
    b2 = copy.deepcopy(body)
    b2["order"]["expiration"] = "123"
    b2["owner"] = "someone"
    assert recover_signer(b2, neg_risk=False) == s.address
    assert order_hash(b2, neg_risk=False) == o.order_hash


def test_wrong_exchange_or_chain_does_not_verify():
    s, o, body = _body(neg_risk=True)
    assert recover_signer(body, neg_risk=True) == s.address
    assert recover_signer(body, neg_risk=False) != s.address
    assert order_hash(body, neg_risk=False) != o.order_hash
    with pytest.raises(SignatureError):
        recover_signer(body, chain_id=1, neg_risk=True)


def test_string_salt_and_lowercase_addresses_accepted():
    s, _o, body = _body()
    b2 = copy.deepcopy(body)
    b2["order"]["salt"] = "5"
    b2["order"]["maker"] = b2["order"]["maker"].lower()
    b2["order"]["signer"] = b2["order"]["signer"].lower()
    assert recover_signer(b2, neg_risk=False) == s.address


def test_malleable_and_malformed_signatures_rejected():
    _s, o, body = _body()
    sig = bytes.fromhex(o.signature[2:])
    r, sv, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    n = coincurve.utils.GROUP_ORDER_INT
    high = r + (n - sv).to_bytes(32, "big") + bytes([55 - v])  # same key, high-s twin
    for bad_sig in ("0x" + high.hex(), "0x" + (sig[:64] + b"\x00").hex(), "0x" + sig[:64].hex(), "0xzz", "", None):
        b2 = copy.deepcopy(body)
        b2["order"]["signature"] = bad_sig
        with pytest.raises(SignatureError):
            recover_signer(b2, neg_risk=False)
    for field in ("salt", "maker", "signer", "side", "tokenId"):
        b2 = copy.deepcopy(body)
        del b2["order"][field]
        with pytest.raises(SignatureError):
            recover_signer(b2, neg_risk=False)
    for field, value in (("side", "buy"), ("salt", -1), ("salt", True), ("makerAmount", "1e6"),
                         ("maker", "0x123"), ("signatureType", 256), ("metadata", "0x00")):
        b2 = copy.deepcopy(body)
        b2["order"][field] = value
        with pytest.raises(SignatureError):
            recover_signer(b2, neg_risk=False)


def test_poly_1271_wrapper_checked():
    s, _o, body = _body(sig_type=3)
    assert recover_signer(body, neg_risk=False) == s.address  # the wallet owner's EOA
    assert body["order"]["signer"] == body["order"]["maker"] == FUNDERS[3]
    sig = body["order"]["signature"]
    assert len(sig) == 2 + 2 * (65 + 64 + len(signing.ORDER_TYPE_STRING) + 2)
    b2 = copy.deepcopy(body)
    b2["order"]["signature"] = sig[:2 + 130] + "00" * 32 + sig[2 + 130 + 64:]  # other app domain
    with pytest.raises(SignatureError):
        recover_signer(b2, neg_risk=False)


# ------------------------------------------------------------------------------------------------ key hygiene
def test_repr_redacts_key_and_cannot_pickle():
    key = KEYS[0]
    s = OrderSigner(key)
    for text in (repr(s), str(s), f"{s}", repr([s])):
        assert "ab" * 8 not in text.lower()
        assert "redacted" in text and s.address in text
    for fn in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError):
            fn(s)
    assert not hasattr(s, "__dict__")


@pytest.mark.parametrize("bad", ["0x" + "zz" + "ab" * 31, "0x" + "ab" * 31, "ab" * 33, "0x" + "00" * 32,
                                 "0x" + "ff" * 32, 12345])
def test_bad_key_errors_do_not_echo_key(bad):
    with pytest.raises(SignatureError) as ei:
        OrderSigner(bad)
    text = str(ei.value) + repr(ei.value)
    assert (str(bad)[2:12] not in text) if isinstance(bad, str) else True
    assert ei.value.__cause__ is None and (ei.value.__context__ is None or ei.value.__suppress_context__)


# ------------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("kwargs", [
    dict(tick_micro=20_000),                       # unknown tick
    dict(price_micro=475_000),                     # not a tick multiple
    dict(price_micro=0), dict(price_micro=1_000_000), dict(price_micro=995_000),  # outside [tick, 1 - tick]
    dict(size_micro=9_999), dict(size_micro=0), dict(size_micro=-10_000), dict(size_micro=1.5),
    dict(side="buy"), dict(side=0),
    dict(salt=2**53), dict(salt=-1), dict(salt="1"),
    dict(timestamp_ms=0), dict(expiration=-1),
    dict(token_id="0123"), dict(token_id="0x12"), dict(token_id=""), dict(token_id="1" * 80),
    dict(neg_risk=None), dict(neg_risk="yes"),
])
def test_rejects_bad_inputs(kwargs):
    args = dict(token_id=TOKEN, side="BUY", price_micro=470_000, size_micro=10_000_000, tick_micro=10_000,
                neg_risk=False, salt=1, timestamp_ms=10**12)
    args.update(kwargs)
    with pytest.raises(SignatureError):
        OrderSigner(KEYS[0]).build_order(**args)


def test_wallet_config_rules():
    with pytest.raises(SignatureError):
        OrderSigner(KEYS[0], signature_type=1)  # proxy without funder
    with pytest.raises(SignatureError):
        OrderSigner(KEYS[0], signature_type=0, funder=FUNDERS[1])  # EOA with a different maker
    with pytest.raises(SignatureError):
        OrderSigner(KEYS[0], signature_type=4)
    with pytest.raises(SignatureError):
        OrderSigner(KEYS[0], chain_id=1)
    s = OrderSigner(KEYS[0], signature_type=2, funder=FUNDERS[2].lower())
    assert s.maker == FUNDERS[2] and s.order_signer == s.address


def test_size_floor_and_post_only_rules():
    s = OrderSigner(KEYS[0])
    o = s.build_order(TOKEN, "SELL", 10_000, 5_019_999, 10_000, neg_risk=False, salt=1, timestamp_ms=1)
    assert (o.size_micro, o.maker_amount, o.taker_amount) == (5_010_000, 5_010_000, 50_100)
    with pytest.raises(SignatureError):
        order_body(o, "k", "FOK", post_only=True)
    assert order_body(o, "k", "FAK", post_only=False)["orderType"] == "FAK"
    with pytest.raises(SignatureError):
        order_body(o, "k", "IOC")
    b = order_body(o, "k")
    assert list(b) == ["order", "owner", "orderType", "deferExec", "postOnly"]
    assert b["postOnly"] is True and b["orderType"] == "GTC"
    assert b["order"]["metadata"] == b["order"]["builder"] == BYTES32_ZERO


def test_exchange_addresses_match_official_config():
    for chain, (ex, nr) in EXCHANGES.items():
        cc = get_contract_config(chain)
        assert (ex, nr) == (cc.exchange_v2, cc.neg_risk_exchange_v2)
