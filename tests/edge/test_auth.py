"""L1/L2 auth headers against py-clob-client-v2's own header functions, and the sandbox verifiers."""
from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.edge.auth import (
    ApiCreds,
    build_hmac_signature,
    clob_auth_digest,
    derive_api_creds,
    l1_headers,
    l2_headers,
    verify_l1,
    verify_l2,
)
from actors.edge.signing import OrderSigner
from py_clob_client_v2.clob_types import ApiCreds as OfficialCreds
from py_clob_client_v2.clob_types import RequestArgs
from py_clob_client_v2.headers import create_level_1_headers, create_level_2_headers
from py_clob_client_v2.signer import Signer as OfficialSigner
from py_clob_client_v2.signing.hmac import build_hmac_signature as official_hmac

KEY = "0x" + "ab" * 32
KEY2 = "0x" + "cd" * 32
SERVER_SECRET = b"sandbox-server-secret-0123456789"


@pytest.fixture
def signer():
    return OrderSigner(KEY)


def _lookup(*creds):
    table = {c.api_key: c for c in creds}
    return table.get


# ------------------------------------------------------------------------------------------------ L1
@pytest.mark.parametrize("chain_id", [137, 80002])
@pytest.mark.parametrize("nonce", [0, 1, 2**64, 2**255])
@pytest.mark.parametrize("ts", [0, 1_777_000_000, 9_999_999_999])
def test_l1_headers_match_official(chain_id, nonce, ts):
    ours = l1_headers(OrderSigner(KEY, chain_id=chain_id), timestamp=ts, nonce=nonce)
    theirs = create_level_1_headers(OfficialSigner(KEY, chain_id), nonce=nonce, timestamp=ts)
    assert ours == theirs
    assert verify_l1(ours, chain_id=chain_id) == OrderSigner(KEY).address


def test_l1_verify_rejects(signer):
    h = l1_headers(signer, timestamp=1_777_000_000, nonce=3)
    assert verify_l1(h) == signer.address
    assert verify_l1({k.lower(): v for k, v in h.items()}) == signer.address  # header names are case-insensitive
    assert verify_l1([(k.encode(), v.encode()) for k, v in h.items()]) == signer.address
    assert verify_l1(h, chain_id=80002) is None
    for field, value in (("POLY_NONCE", "4"), ("POLY_TIMESTAMP", "1777000001"),
                         ("POLY_ADDRESS", OrderSigner(KEY2).address), ("POLY_SIGNATURE", "0x1234"),
                         ("POLY_SIGNATURE", h["POLY_SIGNATURE"][:-2] + "00"), ("POLY_NONCE", "-1"),
                         ("POLY_TIMESTAMP", "1e9"), ("POLY_ADDRESS", "0xnothex")):
        assert verify_l1({**h, field: value}) is None, field
    for field in h:
        assert verify_l1({k: v for k, v in h.items() if k != field}) is None
    assert verify_l1(h, now_s=1_777_000_010, max_skew_s=30) == signer.address
    assert verify_l1(h, now_s=1_777_000_100, max_skew_s=30) is None


def test_clob_auth_digest_matches_poly_eip712_structs():
    from eth_utils import keccak
    from py_clob_client_v2.signing.eip712 import MSG_TO_SIGN, get_clob_auth_domain
    from py_clob_client_v2.signing.model import ClobAuth

    addr = OrderSigner(KEY).address
    msg = ClobAuth(address=addr, timestamp="123", nonce=9, message=MSG_TO_SIGN)
    assert clob_auth_digest(addr, 123, 9, 137) == keccak(msg.signable_bytes(get_clob_auth_domain(137)))


# ------------------------------------------------------------------------------------------------ L2
@pytest.fixture
def creds(signer):
    return derive_api_creds(signer.address, 0, SERVER_SECRET)


BODIES = [
    None,
    "",
    '{"order":{"salt":1},"owner":"k","orderType":"GTC","deferExec":false,"postOnly":true}',
    '["0xabc","0xdef"]',
    '{"note":"it\'s"}',  # the client rewrites ' to " before signing
    '{"name":"caf\u00e9 \u2603"}',
]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("method,path", [("POST", "/order"), ("DELETE", "/orders"), ("GET", "/data/orders")])
def test_l2_headers_match_official(signer, creds, body, method, path):
    official = OfficialCreds(creds.api_key, creds.secret, creds.passphrase)
    theirs = create_level_2_headers(OfficialSigner(KEY, 137), official,
                                    RequestArgs(method, path, body=None, serialized_body=body), timestamp=1_777_000_000)
    ours = l2_headers(signer.address, creds, method, path, body, timestamp=1_777_000_000)
    assert ours == theirs
    assert list(ours) == list(theirs)
    assert verify_l2(ours, method, path, body, _lookup(creds))
    if body:
        assert verify_l2(ours, method, path, body.encode("utf-8"), _lookup(creds))


@settings(max_examples=300, deadline=None)
@given(secret=st.binary(min_size=1, max_size=64), ts=st.integers(0, 2**40), method=st.sampled_from(["GET", "POST", "DELETE"]),
       path=st.text(min_size=1, max_size=40), body=st.one_of(st.none(), st.text(max_size=200)))
def test_hmac_property(secret, ts, method, path, body):
    s = base64.urlsafe_b64encode(secret).decode()
    assert build_hmac_signature(s, ts, method, path, body) == official_hmac(s, ts, method, path, body)


def test_l2_verify_rejects(signer, creds):
    body = '{"orderID":"0x1"}'
    h = l2_headers(signer.address, creds, "DELETE", "/order", body, timestamp=1_777_000_000)
    look = _lookup(creds)
    assert verify_l2(h, "DELETE", "/order", body, look)
    assert verify_l2({k.lower(): v for k, v in h.items()}, "DELETE", "/order", body, look)
    assert not verify_l2(h, "POST", "/order", body, look)
    assert not verify_l2(h, "DELETE", "/orders", body, look)
    assert not verify_l2(h, "DELETE", "/order", body + " ", look)
    assert not verify_l2(h, "DELETE", "/order", None, look)
    assert not verify_l2(h, "DELETE", "/order", body, _lookup())  # unknown key
    other = derive_api_creds(OrderSigner(KEY2).address, 0, SERVER_SECRET)
    for field, value in (("POLY_PASSPHRASE", "x" * 64), ("POLY_TIMESTAMP", "1777000001"),
                         ("POLY_ADDRESS", OrderSigner(KEY2).address), ("POLY_API_KEY", other.api_key),
                         ("POLY_SIGNATURE", h["POLY_SIGNATURE"][:-4] + "AAA="), ("POLY_TIMESTAMP", "-1"),
                         ("POLY_SIGNATURE", "\u00e9")):
        assert not verify_l2({**h, field: value}, "DELETE", "/order", body, _lookup(creds, other)), field
    for field in h:
        assert not verify_l2({k: v for k, v in h.items() if k != field}, "DELETE", "/order", body, look)
    assert verify_l2(h, "DELETE", "/order", body, look, now_s=1_777_000_005, max_skew_s=30)
    assert not verify_l2(h, "DELETE", "/order", body, look, now_s=1_777_000_100, max_skew_s=30)
    # the address check is skipped for creds that carry no address (creds minted elsewhere)
    loose = ApiCreds(creds.api_key, creds.secret, creds.passphrase)
    assert verify_l2({**h, "POLY_ADDRESS": OrderSigner(KEY2).address}, "DELETE", "/order", body, _lookup(loose))
    # a malformed stored secret fails closed
    broken = ApiCreds(creds.api_key, "not base64!", creds.passphrase)
    assert not verify_l2(h, "DELETE", "/order", body, _lookup(broken))


# ------------------------------------------------------------------------------------------------ creds
def test_derive_api_creds_deterministic_and_shaped(signer):
    a = derive_api_creds(signer.address, 0, SERVER_SECRET)
    assert a == derive_api_creds(signer.address.lower(), 0, SERVER_SECRET)
    assert a != derive_api_creds(signer.address, 1, SERVER_SECRET)
    assert a != derive_api_creds(signer.address, 0, SERVER_SECRET + b"x")
    assert a.address == signer.address
    parts = a.api_key.split("-")
    assert [len(p) for p in parts] == [8, 4, 4, 4, 12] and parts[2][0] == "4"
    assert len(base64.urlsafe_b64decode(a.secret)) == 32 and len(a.secret) == 44
    assert len(a.passphrase) == 64 and int(a.passphrase, 16) >= 0
    assert ApiCreds.from_json(a.to_json()) == ApiCreds(a.api_key, a.secret, a.passphrase)
    with pytest.raises(ValueError):
        derive_api_creds(signer.address, -1, SERVER_SECRET)
    with pytest.raises(ValueError):
        derive_api_creds(signer.address, 0, b"short")
    with pytest.raises(ValueError):
        derive_api_creds("0x1234", 0, SERVER_SECRET)


def test_creds_repr_redacts(creds):
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert creds.secret not in text and creds.passphrase not in text
        assert creds.secret[:8] not in text and creds.passphrase[:8] not in text
        assert creds.api_key in text and "redacted" in text
