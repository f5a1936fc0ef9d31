"""Signing benchmark: signed CLOB V2 orders per second, ours beside the official SDK, same run, offline.

- ``sign.v2_orders``: ``OrderSigner.build_order`` (amounts + EIP-712 struct + secp256k1 signature + order hash)
  against ``py-clob-client-v2``'s default path ``ClobClient(...).create_order(OrderArgs(...))`` with the tick
  size, neg-risk flag and version passed explicitly and its tick cache primed, so it makes no HTTP call (its
  HTTP methods are replaced by ones that raise). Same mix of orders on both sides (BUY/SELL, several prices
  and sizes, plain and neg-risk exchange). Target: >= 10x the official client.
- ``sign.v2_speedup``: that ratio as a value (unit ``x``, target 10), so it reads the same whichever way a
  report interprets ``target``.
- ``sign.verify_orders``: ``recover_signer`` on POST /order bodies (what the sandbox does per order) against
  the generic eth-account path (``encode_typed_data`` + ``Account.recover_message``). No target.

Before timing, one order is built both ways and compared byte for byte (raises if they differ).
Times are process CPU time, best of several interleaved runs. Run: ``pmm bench sign`` or
``.venv/bin/python -m bench.sign`` (``--quick`` for a short run).
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable

from actors.edge.signing import OrderSigner, order_body, order_json, recover_signer
from bench.common import Result, best_of_pair, standalone

_cpu = time.process_time
"""CPU-bound: timed in process CPU time, robust to load from other processes (as bench/journal.py)."""

KEY = "0x" + "5a" * 32  # a throwaway key: nothing is sent anywhere
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
TICK = 10_000
TS0 = 1_777_000_000_000
# (side, price_micro, size_micro, neg_risk)
MIX = [
    ("BUY", 470_000, 25_000_000, False),
    ("SELL", 530_000, 25_000_000, False),
    ("BUY", 120_000, 100_000_000, True),
    ("SELL", 880_000, 7_500_000, True),
    ("BUY", 10_000, 5_000_000, False),
    ("SELL", 990_000, 1_230_000_000, False),
]


def official_client():
    from py_clob_client_v2 import ClobClient

    c = ClobClient("http://offline.invalid", 137, key=KEY)

    def no_network(*a, **k):
        raise RuntimeError("bench: the official client tried to make an HTTP call")

    c._get = c._post = c._delete = no_network
    c._ClobClient__tick_sizes[TOKEN] = "0.01"  # the market's minimum tick, else it would GET /tick-size
    return c


def official_path(n: int) -> Callable[[], None]:
    from py_clob_client_v2.clob_types import OrderArgsV2, PartialCreateOrderOptions

    c = official_client()
    opts = [PartialCreateOrderOptions(tick_size="0.01", neg_risk=m[3], version=2) for m in MIX]

    def go() -> None:
        for i in range(n):
            side, price, size, _ = MIX[i % len(MIX)]
            c.create_order(OrderArgsV2(token_id=TOKEN, price=price / 1e6, size=size / 1e6, side=side), opts[i % len(MIX)])

    return go


def our_path(n: int) -> Callable[[], None]:
    s = OrderSigner(KEY)

    def go() -> None:
        build = s.build_order
        for i in range(n):
            side, price, size, neg_risk = MIX[i % len(MIX)]
            build(TOKEN, side, price, size, TICK, neg_risk=neg_risk, salt=i, timestamp_ms=TS0 + i)

    return go


def check_same() -> None:
    """One order both ways (official salt and clock pinned), compared byte for byte."""
    import functools
    from unittest import mock

    import py_clob_client_v2.order_builder.builder as pc_builder
    from py_clob_client_v2.clob_types import OrderArgsV2, PartialCreateOrderOptions
    from py_clob_client_v2.order_utils import ExchangeOrderBuilderV2
    from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2

    class FrozenTime:
        @staticmethod
        def time_ns() -> int:
            return TS0 * 1_000_000

    c = official_client()
    for side, price, size, neg_risk in MIX:
        with mock.patch.object(pc_builder, "time", FrozenTime), mock.patch.object(
            pc_builder, "ExchangeOrderBuilderV2", functools.partial(ExchangeOrderBuilderV2, generate_salt=lambda: "77")
        ):
            theirs = c.create_order(OrderArgsV2(token_id=TOKEN, price=price / 1e6, size=size / 1e6, side=side),
                                    PartialCreateOrderOptions(tick_size="0.01", neg_risk=neg_risk, version=2))
        ours = OrderSigner(KEY).build_order(TOKEN, side, price, size, TICK, neg_risk=neg_risk, salt=77, timestamp_ms=TS0)
        if order_json(ours) != order_to_json_v2(theirs, "", "GTC")["order"]:
            raise RuntimeError(f"bench: our order differs from the official client's for {side} {price} {size}")


def verify_inputs(n: int) -> list[tuple[dict, bool]]:
    s = OrderSigner(KEY)
    out = []
    for i in range(n):
        side, price, size, neg_risk = MIX[i % len(MIX)]
        o = s.build_order(TOKEN, side, price, size, TICK, neg_risk=neg_risk, salt=i, timestamp_ms=TS0 + i)
        out.append((order_body(o, "k"), neg_risk))
    return out


def our_verify(bodies: list[tuple[dict, bool]], address: str) -> Callable[[], None]:
    def go() -> None:
        for body, neg_risk in bodies:
            if recover_signer(body, neg_risk=neg_risk) != address:
                raise RuntimeError("bench: recover_signer mismatch")

    return go


def generic_verify(bodies: list[tuple[dict, bool]], address: str) -> Callable[[], None]:
    """What a sandbox would write with eth-account: rebuild the typed data, recover."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data
    from py_clob_client_v2.config import get_contract_config
    from py_clob_client_v2.order_utils.model.ctf_exchange_v2_typed_data import (
        CTF_EXCHANGE_V2_ORDER_STRUCT,
        EIP712_DOMAIN,
    )

    cc = get_contract_config(137)

    def go() -> None:
        for body, neg_risk in bodies:
            o = body["order"]
            typed = {
                "primaryType": "Order",
                "types": {"EIP712Domain": EIP712_DOMAIN, "Order": CTF_EXCHANGE_V2_ORDER_STRUCT},
                "domain": {"name": "Polymarket CTF Exchange", "version": "2", "chainId": 137,
                           "verifyingContract": cc.neg_risk_exchange_v2 if neg_risk else cc.exchange_v2},
                "message": {
                    "salt": int(o["salt"]), "maker": o["maker"], "signer": o["signer"], "tokenId": int(o["tokenId"]),
                    "makerAmount": int(o["makerAmount"]), "takerAmount": int(o["takerAmount"]),
                    "side": 0 if o["side"] == "BUY" else 1, "signatureType": int(o["signatureType"]),
                    "timestamp": int(o["timestamp"]), "metadata": bytes.fromhex(o["metadata"][2:]),
                    "builder": bytes.fromhex(o["builder"][2:]),
                },
            }
            if Account.recover_message(encode_typed_data(full_message=typed), signature=o["signature"]) != address:
                raise RuntimeError("bench: eth-account recover mismatch")

    return go


def run(quick: bool = False) -> list[Result]:
    check_same()
    n_ours, n_official = (3_000, 300) if quick else (30_000, 3_000)
    repeats = 3 if quick else 5
    t_ours, t_off = best_of_pair(our_path(n_ours), official_path(n_official), repeats, clock=_cpu)
    ours, official = n_ours / t_ours, n_official / t_off
    ratio = ours / official

    n_ver, n_ver_base = (2_000, 300) if quick else (20_000, 3_000)
    address = OrderSigner(KEY).address
    bodies = verify_inputs(n_ver)
    t_ver, t_ver_base = best_of_pair(
        our_verify(bodies, address), generic_verify(bodies[:n_ver_base], address), repeats, clock=_cpu
    )
    ver, ver_base = n_ver / t_ver, n_ver_base / t_ver_base

    per = (f"per order: ours {1e6 / ours:.1f} us, py-clob-client-v2 create_order {1e6 / official:.1f} us; "
           f"CPU time, best of {repeats}")
    return [
        Result("sign.v2_orders", round(ours), "orders/s", round(official), round(ratio, 2), None,
               f"OrderSigner.build_order vs ClobClient.create_order (offline, tick cache primed); {per}"),
        Result("sign.v2_speedup", round(ratio, 2), "x", 1.0, round(ratio, 2), 10.0,
               "sign.v2_orders ratio as a value, so the 10x target reads directly"),
        Result("sign.verify_orders", round(ver), "orders/s", round(ver_base), round(ver / ver_base, 2), None,
               f"recover_signer vs eth-account encode_typed_data + recover_message; ours {1e6 / ver:.1f} us, "
               f"eth-account {1e6 / ver_base:.1f} us"),
    ]


def main(argv: list[str] | None = None) -> int:
    return standalone(run, argv, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
