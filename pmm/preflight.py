"""``pmm preflight``: everything that must hold before a live session may send an order. Fail closed.

Checks, in order (each PASS or FAIL with a reason; any FAIL refuses):
1. ``geoblock``: the geoblock endpoint answers ``blocked: false``. Blocked, an error, a timeout or an unreadable
   answer fail. Nothing skips this check (there is no flag or config for it; no proxy or VPN feature exists).
2. ``opt_in``: ``live.enabled`` is true in the config.
3. ``allowlist``: the config names 1 to 3 markets (``markets``); no automatic market choice in live trading.
4. ``caps``: the risk caps (``risk.max_order_size``, ``max_position``, ``max_total_notional``, ``daily_loss``) are
   set explicitly in the config file and within ``TINY_CAPS`` (all six listed there), unless
   ``live.caps_override``.
5. ``private_key``: from ``$PMM_PRIVATE_KEY`` or ``live.key_file`` (a regular file, ours, chmod 600), valid.
6. ``api_credentials``: from the environment, or derived with the key (L1).
7. ``clock``: ``/time`` within 5 s of our clock.
8. ``version``: ``/version`` is 2 (CLOB V2 orders).
9. ``balance``: pUSD balance and the exchange allowances cover ``risk.max_total_notional``.
10. ``smoke`` (once per machine, per address and exchange URL): a post-only BUY at the lowest price (one tick) and
    the market's minimum size is placed, seen on the user channel, cancelled and seen cancelled; the pass is
    recorded in ``live.state_dir``. Runs only when every other check passed.

Standalone, the results are journaled in a small journal of their own (``RunStarted(mode="preflight")``, one
``PreflightCheck`` per check, ``RunEnded``) under ``<journal_dir>-preflight/`` (a sibling of the session journals,
so it is never mistaken for the previous session when a halt is carried over). ``pmm live`` runs the same checks
and journals them in its own journal.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import trio

from actors.edge.auth import ApiCreds
from actors.edge.exchange import (
    ExchangeError,
    ExchangeRest,
    LiveEndpoints,
    derive_api_creds,
    fetch_geoblock,
    live_endpoints,
    public_json,
)
from actors.edge.signing import EXCHANGES, OrderSigner, SignatureError, order_body, serialize_body
from events.base import MICRO
from events.live import PreflightCheck
from pmm.args import EXIT_FAIL, EXIT_USAGE
from pmm.args import err as _err
from pmm.config import AppConfig, ConfigError, load_config
from pmm.secrets import Redactor, SecretError, load_api_creds, load_private_key, secret_forms

TINY_CAPS: dict[str, int] = {
    "max_order_size": 25 * MICRO,
    "max_order_notional": 15 * MICRO,
    "max_position": 100 * MICRO,
    "max_total_notional": 100 * MICRO,
    "daily_loss": 25 * MICRO,
    "max_loss": 50 * MICRO,
}
"""The largest caps live trading accepts without ``live.caps_override`` (micro-shares / micro-dollars)."""
REQUIRED_CAPS = ("max_order_size", "max_position", "max_total_notional", "daily_loss")
"""Caps that must be written explicitly in the config file's ``risk`` section."""
MAX_MARKETS = 3
MAX_SKEW_S = 5.0
SMOKE_TIMEOUT_S = 15.0
NAMES = ("geoblock", "opt_in", "allowlist", "caps", "private_key", "api_credentials", "clock", "version",
         "balance", "smoke")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name:<16} {self.detail}"

    def event(self) -> PreflightCheck:
        return PreflightCheck(name=self.name, ok=self.ok, detail=self.detail[:500])


# ---------------------------------------------------------------- pure judgements
def judge_opt_in(cfg: AppConfig) -> Check:
    if cfg.live.enabled:
        return Check("opt_in", True, "live.enabled is true")
    return Check("opt_in", False, 'live trading is off: set "live": {"enabled": true} in the config')


def judge_allowlist(cfg: AppConfig) -> Check:
    n = len(cfg.markets)
    if n == 0:
        return Check("allowlist", False, "no markets listed: live trading needs an explicit allowlist (config markets)")
    if n > MAX_MARKETS:
        return Check("allowlist", False, f"{n} markets listed; at most {MAX_MARKETS} in live trading")
    if any(not m.condition_id for m in cfg.markets):
        return Check("allowlist", False, "every listed market needs its condition_id")
    return Check("allowlist", True, f"{n} market(s): " + ", ".join(m.condition_id[:12] + "…" for m in cfg.markets))


def judge_caps(cfg: AppConfig, explicit: Collection[str] | None = None) -> Check:
    """``explicit``: the keys written in the config file's ``risk`` section (None: the config object is explicit)."""
    if explicit is not None:
        missing = [k for k in REQUIRED_CAPS if k not in explicit]
        if missing:
            return Check("caps", False, f"risk caps not set in the config: {', '.join(missing)}")
    risk = cfg.risk
    over = [f"{k} {getattr(risk, k) / MICRO:g} > {limit / MICRO:g}" for k, limit in TINY_CAPS.items()
            if getattr(risk, k) > limit]
    if over and not cfg.live.caps_override:
        return Check("caps", False, "caps above the tiny live limits (set live.caps_override to allow): " + "; ".join(over))
    if any(getattr(risk, k) <= 0 for k in REQUIRED_CAPS):
        return Check("caps", False, "a cap is zero")
    desc = ", ".join(f"{k} {getattr(risk, k) / MICRO:g}" for k in REQUIRED_CAPS)
    return Check("caps", True, desc + (" (override: above the tiny limits)" if over else ""))


def judge_geoblock(ok: bool, detail: str) -> Check:
    return Check("geoblock", ok, detail)


def judge_clock(status: int, body: Any, local_s: float) -> Check:
    if status != 200 or isinstance(body, bool) or not isinstance(body, int | float):
        return Check("clock", False, f"/time: no server time (HTTP {status})")
    skew = local_s - float(body)
    if abs(skew) >= MAX_SKEW_S:
        return Check("clock", False, f"our clock is {skew:+.1f} s off the exchange's (limit {MAX_SKEW_S:g} s)")
    return Check("clock", True, f"skew {skew:+.1f} s")


def judge_version(status: int, body: Any) -> Check:
    v = body.get("version") if isinstance(body, dict) else None
    if status == 200 and v == 2:
        return Check("version", True, "CLOB V2")
    return Check("version", False, f"/version: expected 2, got {v!r} (HTTP {status})")


def judge_balance(body: Any, need_micro: int, exchanges: Collection[str]) -> Check:
    """pUSD balance and allowances (6-decimal base units, as the venue answers) cover ``need_micro``."""
    if not isinstance(body, dict):
        return Check("balance", False, "/balance-allowance: unreadable")
    try:
        balance = int(str(body.get("balance", "")).split(".")[0])
    except ValueError:
        return Check("balance", False, f"/balance-allowance: balance {body.get('balance')!r} is not a number")
    if balance < need_micro:
        return Check("balance", False, f"pUSD balance {balance / MICRO:.2f} < max_total_notional {need_micro / MICRO:.2f}")
    allowances = body.get("allowances") or {}
    if not isinstance(allowances, dict):
        return Check("balance", False, "/balance-allowance: allowances unreadable")
    low = {k.lower(): v for k, v in allowances.items()}
    short = []
    for ex in exchanges:
        try:
            a = int(str(low.get(ex.lower(), "0")))
        except ValueError:
            a = 0
        if a < need_micro:
            short.append(ex)
    if short:
        return Check("balance", False, "allowance too low for " + ", ".join(short))
    return Check("balance", True, f"pUSD {balance / MICRO:.2f} >= {need_micro / MICRO:.2f}, allowances ok")


def explicit_risk_keys(raw_config: bytes | None) -> frozenset[str] | None:
    """The keys written in a config file's ``risk`` section (None when there is no file)."""
    if raw_config is None:
        return None
    try:
        obj = json.loads(raw_config)
    except ValueError:
        return frozenset()
    risk = obj.get("risk") if isinstance(obj, dict) else None
    return frozenset(risk) if isinstance(risk, dict) else frozenset()


def smoke_record_path(state_dir: Path, address: str, exchange_url: str) -> Path:
    key = hashlib.sha256(f"{address.lower()}|{exchange_url.rstrip('/')}".encode()).hexdigest()[:16]
    return Path(state_dir) / f"smoke-{key}.json"


# ---------------------------------------------------------------- the checks, with I/O
@dataclass
class PreflightResult:
    checks: list[Check] = field(default_factory=list)
    signer: OrderSigner | None = None
    creds: ApiCreds | None = None
    private_key: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if not c.ok), None)

    def redactor(self) -> Redactor:
        """Secrets -> ``<redacted>``, the API key -> its stand-in ``key:<key_id>``."""
        return Redactor(secret_forms(self.private_key, self.creds), api_key=self.creds.api_key if self.creds else "")


async def run_preflight(
    cfg: AppConfig,
    endpoints: LiveEndpoints,
    client: httpx.AsyncClient,
    *,
    explicit_caps: Collection[str] | None = None,
    env: Mapping[str, str] | None = None,
    smoke: bool = True,
    wall_s: Callable[[], float] = time.time,
) -> PreflightResult:
    """Every check of the module docstring, in order. Never raises for a failed check: it is a FAIL line."""
    res = PreflightResult()
    add = res.checks.append
    geo = await fetch_geoblock(client, endpoints.geoblock_url)
    add(judge_geoblock(geo.ok, geo.detail))
    add(judge_opt_in(cfg))
    add(judge_allowlist(cfg))
    add(judge_caps(cfg, explicit_caps))
    live = cfg.live
    try:
        key = load_private_key(live.key_file, env)
        res.signer = OrderSigner(key.hex, chain_id=live.chain_id, signature_type=live.signature_type,
                                 funder=live.funder or None)
        res.private_key = key.hex
        add(Check("private_key", True, f"{key.source}: address {res.signer.address}"))
    except (SecretError, SignatureError) as exc:
        add(Check("private_key", False, str(exc)))
    if not geo.ok:  # nothing more is said to the exchange from a location that may not trade
        for name in NAMES[5:] if smoke else NAMES[5:-1]:
            add(Check(name, False, "not run: the geoblock check failed"))
        return res
    try:
        res.creds = load_api_creds(env)
        if res.creds is not None:
            add(Check("api_credentials", True, "from the environment"))
        elif res.signer is None:
            add(Check("api_credentials", False, "no private key to derive them with"))
        else:
            res.creds = await derive_api_creds(client, endpoints.rest_url, res.signer, nonce=live.api_nonce, wall_s=wall_s)
            add(Check("api_credentials", True, f"derived with the key (nonce {live.api_nonce})"))
    except (SecretError, ExchangeError) as exc:
        res.creds = None
        add(Check("api_credentials", False, res.redactor().redact(str(exc))))
    status, body = await public_json(client, endpoints.rest_url + "/time")
    add(judge_clock(status, body, wall_s()))
    status, body = await public_json(client, endpoints.rest_url + "/version")
    add(judge_version(status, body))
    rest = None
    if res.signer is not None and res.creds is not None:
        rest = ExchangeRest(client, endpoints.rest_url, res.signer, res.creds, wall_s=wall_s)
        try:
            ba = await rest.balance_allowance("COLLATERAL")
            add(judge_balance(ba, cfg.risk.max_total_notional, EXCHANGES[live.chain_id]))
        except ExchangeError as exc:
            add(Check("balance", False, str(exc)))
    else:
        add(Check("balance", False, "no credentials"))
    if not smoke:
        return res
    if not res.ok or rest is None:
        add(Check("smoke", False, "not run: an earlier check failed"))
        return res
    record = smoke_record_path(Path(live.state_dir), res.signer.address, endpoints.rest_url)  # type: ignore[union-attr]
    if record.exists():
        add(Check("smoke", True, f"passed before on this machine ({record})"))
        return res
    check = await smoke_test(rest, endpoints, cfg, wall_s=wall_s)
    if check.ok:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"address": res.signer.address, "exchange": endpoints.rest_url,  # type: ignore[union-attr]
                                      "passed_at": datetime.now(tz=UTC).isoformat(), "detail": check.detail}) + "\n")
        check = Check("smoke", True, f"{check.detail}; recorded in {record}")
    add(check)
    return res


async def smoke_test(rest: ExchangeRest, endpoints: LiveEndpoints, cfg: AppConfig, *,
                     wall_s: Callable[[], float] = time.time, timeout_s: float = SMOKE_TIMEOUT_S) -> Check:
    """A post-only BUY at one tick (far below any mid) at the minimum size: placed, seen on the user channel,
    cancelled, seen cancelled. Whatever happens, the order is cancelled before this returns."""
    import secrets as _secrets

    from trio_websocket import open_websocket_url

    from actors.edge.exchange import cancel_result
    from actors.edge.rest import DiscoveryError, discover_markets

    m = cfg.markets[0]
    token = m.yes_token
    cid = m.condition_id
    try:
        if not token:
            token = (await discover_markets(rest.client, rest.base_url, [cid], 1))[0].yes_token
    except DiscoveryError as exc:
        return Check("smoke", False, f"market lookup: {exc}")
    status, book = await public_json(rest.client, f"{rest.base_url}/book?token_id={token}")
    if status != 200 or not isinstance(book, dict):
        return Check("smoke", False, f"/book for the smoke order: HTTP {status}")
    try:
        tick = round(float(book.get("tick_size", "0.01")) * MICRO)
        size = max(round(float(book.get("min_order_size", "5")) * MICRO), MICRO)
        neg_risk = bool(book.get("neg_risk", False))
    except (TypeError, ValueError):
        return Check("smoke", False, "/book: unreadable tick size or minimum size")
    try:
        signed = rest.signer.build_order(token, "BUY", price_micro=tick, size_micro=size, tick_micro=tick,
                                         neg_risk=neg_risk, salt=_secrets.randbelow(2**53),
                                         timestamp_ms=int(wall_s() * 1000))
    except SignatureError as exc:
        return Check("smoke", False, f"signing: {exc}")
    oid = signed.order_hash
    c = rest.creds
    sub = json.dumps({"auth": {"apiKey": c.api_key, "secret": c.secret, "passphrase": c.passphrase},
                      "type": "user", "markets": [cid]})
    seen: list[str] = []
    step = "connecting to the user channel"
    placed = False
    try:
        with trio.fail_after(timeout_s * 3):
            async with open_websocket_url(endpoints.user_ws_url, connect_timeout=timeout_s, disconnect_timeout=1) as ws:
                await ws.send_message(sub)

                async def wait_for(kind: str) -> None:
                    while kind not in seen:
                        with trio.fail_after(timeout_s):
                            text = await ws.get_message()
                        try:
                            ev = json.loads(text)
                        except ValueError:
                            continue
                        for e in ev if isinstance(ev, list) else [ev]:
                            if isinstance(e, dict) and e.get("event_type") == "order" and e.get("id") == oid:
                                seen.append(str(e.get("type", "")).upper())

                step = "placing the order"
                body = serialize_body(order_body(signed, c.api_key, "GTC", post_only=True))
                r = await rest.request("POST", "/order", body, wait_s=timeout_s)
                placed = True
                reply = r.json() if r.status_code == 200 else None
                if not isinstance(reply, dict) or reply.get("orderID") != oid or not reply.get("success", True):
                    from actors.edge.exchange import error_text

                    return Check("smoke", False, f"order refused: HTTP {r.status_code} {error_text(r)}")
                step = "waiting for the order on the user channel"
                await wait_for("PLACEMENT")
                step = "cancelling"
                canceled, not_canceled = cancel_result(await rest.cancel_orders([oid], wait_s=timeout_s))
                if oid not in canceled:
                    return Check("smoke", False, f"cancel refused: {not_canceled.get(oid, 'no answer')}")
                step = "waiting for the cancellation on the user channel"
                await wait_for("CANCELLATION")
                step = "confirming"
                left = await rest.order(oid, wait_s=timeout_s)
                if left is not None and str(left.get("status", "")).upper() == "LIVE":
                    return Check("smoke", False, "the order is still open after its cancellation")
        return Check("smoke", True, f"post-only BUY {size / MICRO:g} @ {tick / MICRO:g} placed, seen, cancelled, seen")
    except trio.TooSlowError:
        return Check("smoke", False, f"timed out {step}")
    except (OSError, httpx.HTTPError, ExchangeError, ValueError) as exc:
        return Check("smoke", False, f"{step}: {type(exc).__name__}")
    except Exception as exc:  # trio_websocket errors (handshake, closed) and anything unexpected: fail, never raise
        return Check("smoke", False, f"{step}: {type(exc).__name__}")
    finally:
        if placed:
            with trio.move_on_after(timeout_s) as cs:
                cs.shield = True
                try:
                    await rest.cancel_orders([oid], wait_s=timeout_s)
                except ExchangeError:
                    pass


# ---------------------------------------------------------------- standalone: pmm preflight
def preflight_journal_root(cfg: AppConfig, journal: str | None = None) -> Path:
    return Path((journal or cfg.journal_dir).rstrip("/") + "-preflight")


def journal_checks(root: Path, cfg: AppConfig, checks: list[Check], *, now_ns: int) -> Path:
    """A small journal of one preflight: RunStarted(mode="preflight"), the checks, RunEnded. Returns its folder."""
    from actors.sequencer import Sequencer
    from actors.version import run_version
    from actors.wiring import build_core
    from events.control import RunEnded, RunStarted
    from events.params import CoreParams
    from pmm.config import config_hash
    from replay.journal_io import open_sink

    run_id = f"{datetime.fromtimestamp(now_ns / 1e9, tz=UTC):%Y%m%d-%H%M%S}-preflight-{os.getpid()}"
    run_dir = root / run_id
    chash = config_hash(cfg)
    sink = open_sink(run_dir, run_id=run_id, seed=0, created_ns=now_ns, config_hash=chash)
    try:
        params = CoreParams(quoter=cfg.quoter, orders=cfg.orders, risk=cfg.risk, sim=cfg.sim, fills="live")
        seq = Sequencer(sink, build_core(params))
        seq.submit("session", now_ns, RunStarted(run_id=run_id, mode="preflight", version=run_version(), seed=0,
                                                 config_hash=chash, params=params))
        for c in checks:
            seq.submit("preflight", now_ns, c.event())
        ok = all(c.ok for c in checks)
        seq.submit("session", now_ns, RunEnded(reason="preflight passed" if ok else "preflight failed"))
        sink.flush()
    finally:
        sink.close()
    return run_dir


def preflight_main(argv: list[str] | None = None) -> int:
    """``pmm preflight [--config FILE] [--exchange URL] [--journal DIR]``. Exit 0 all pass, 1 a check failed,
    2 unusable input."""
    from pmm.args import Parser

    p = Parser(prog="pmm preflight", description="check everything live trading needs; place nothing but the "
                                                   "one-time smoke order")
    p.add_argument("--config", metavar="FILE", help="config.json")
    p.add_argument("--exchange", metavar="URL", help="base URL of the exchange (or a sandbox)")
    p.add_argument("--journal", metavar="DIR", help="session journal folder (the preflight journal goes beside it)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    raw: bytes | None = None
    try:
        cfg = load_config(Path(args.config) if args.config else None)
        if args.config:
            raw = Path(args.config).read_bytes()
    except (ConfigError, OSError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    ex = cfg.exchange
    endpoints = live_endpoints(args.exchange, rest_url=ex.rest_url, market_ws_url=ex.market_ws_url,
                               user_ws_url=ex.user_ws_url, geoblock_url=ex.geoblock_url)
    if endpoints is None:
        _err("preflight: no exchange: pass --exchange URL or set exchange.rest_url in the config")
        return EXIT_USAGE

    async def main() -> PreflightResult:
        async with httpx.AsyncClient() as client:
            return await run_preflight(cfg, endpoints, client, explicit_caps=explicit_risk_keys(raw))

    try:
        res = trio.run(main)
    except OSError as exc:
        _err(f"preflight: {exc.strerror or exc}")
        return EXIT_FAIL
    red = res.redactor()
    for c in res.checks:
        print(red.redact(c.line()), flush=True)
    try:
        run_dir = journal_checks(preflight_journal_root(cfg, args.journal),
                                 cfg, [Check(c.name, c.ok, red.redact(c.detail)) for c in res.checks],
                                 now_ns=time.time_ns())
        print(f"journal: {run_dir}")
    except Exception as exc:  # the verdict stands; a journal that could not be written is reported, and fails
        _err(f"preflight: cannot write the preflight journal: {str(exc).splitlines()[0]}")
        return EXIT_FAIL
    bad = res.first_failure()
    if bad is not None:
        _err(f"preflight failed: {bad.name}: {red.redact(bad.detail)}")
        return EXIT_FAIL
    print("preflight passed")
    return 0

